//! The image decoders (manifest in its three forms, descriptor, cache
//! config, entries blob) on JSON shaped like what BuildKit and regcache
//! write, with wrong types, nulls and out-of-range indexes mixed in, and on
//! byte-level mutations of that JSON.

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};

use super::{Bytes, check, mutated};
use crate::digest::Digest;
use crate::image::media_types::{
    CACHE_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST,
    REGCACHE_ENTRIES,
};
use crate::image::{
    CacheConfig, CacheImage, Descriptor, EntriesBlob, RawManifest, entry_chain, entry_record_digest,
};

const MEDIA_TYPES: &[&str] = &[
    CACHE_CONFIG,
    REGCACHE_ENTRIES,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    "application/json",
    "",
];

/// Paths whose record digests the generated configs use, so that
/// `entry_chain` finds records.
const PATHS: &[&str] = &["target", "node_modules", "a/b", "é", ""];

fn junk() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        text().prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
    ]
}

/// Strings with what Go escapes differently from serde (`<>&`, U+2028).
fn text() -> impl Strategy<Value = String> {
    "[a-z/.+<>&\u{2028}é\"\\\\ ]{0,10}"
}

/// A small pool, so that configs and manifests name the same blobs.
fn digest() -> impl Strategy<Value = String> {
    prop_oneof![
        20 => (0u8..4).prop_map(|n| Digest::of(&[n]).to_string()),
        1 => "sha256:[0-9a-f]{0,66}",
        1 => "\\PC{0,10}",
    ]
}

/// `value` most of the time, `junk()` otherwise: rarely enough that an
/// object of a dozen fields is still often all well-typed.
fn or_junk(value: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    prop_oneof![40 => value, 1 => junk()]
}

/// An object from fields each present most of the time; an absent field is
/// left out.
fn object(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> impl Strategy<Value = Value> {
    let fields: Vec<_> = fields
        .into_iter()
        .map(|(name, value)| prop::option::weighted(0.95, value.prop_map(move |v| (name, v))))
        .collect();
    fields.prop_map(|fields| {
        Value::Object(
            fields
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<Map<_, _>>(),
        )
    })
}

fn string_map() -> impl Strategy<Value = Value> {
    or_junk(prop::collection::btree_map(text(), text(), 0..3).prop_map(|m| json!(m)))
}

fn descriptor() -> BoxedStrategy<Value> {
    let platform = object(vec![
        (
            "architecture",
            or_junk(text().prop_map(Value::from)).boxed(),
        ),
        ("os", or_junk(text().prop_map(Value::from)).boxed()),
        ("os.version", or_junk(text().prop_map(Value::from)).boxed()),
        (
            "os.features",
            or_junk(prop::collection::vec(text(), 0..2).prop_map(|v| json!(v))).boxed(),
        ),
        ("variant", or_junk(text().prop_map(Value::from)).boxed()),
    ]);
    object(vec![
        (
            "mediaType",
            or_junk(select(MEDIA_TYPES).prop_map(Value::from)).boxed(),
        ),
        ("digest", or_junk(digest().prop_map(Value::from)).boxed()),
        (
            "size",
            or_junk(prop_oneof![
                8 => (0u64..1000).prop_map(Value::from),
                2 => any::<u64>().prop_map(Value::from),
                1 => Just(json!(-1)),
                1 => Just(json!(1.5)),
            ])
            .boxed(),
        ),
        (
            "urls",
            or_junk(prop::collection::vec(text(), 0..2).prop_map(|v| json!(v))).boxed(),
        ),
        ("annotations", string_map().boxed()),
        ("data", or_junk(text().prop_map(Value::from)).boxed()),
        ("platform", or_junk(platform).boxed()),
        (
            "artifactType",
            or_junk(text().prop_map(Value::from)).boxed(),
        ),
    ])
    .boxed()
}

/// A descriptor the decoders accept as a config, so index forms find one.
fn config_descriptor() -> impl Strategy<Value = Value> {
    (digest(), 0u64..1000)
        .prop_map(|(d, size)| json!({"mediaType": CACHE_CONFIG, "digest": d, "size": size}))
}

fn manifest() -> impl Strategy<Value = Value> {
    // How often the list holds a config: an index needs one, and a config
    // among an image manifest's layers is the case encode must refuse.
    let list = |config_weight: f64| {
        (
            prop::collection::vec(descriptor(), 0..4),
            prop::option::weighted(config_weight, config_descriptor()),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(mut list, config, at)| {
                if let Some(config) = config {
                    list.insert(at.index(list.len() + 1), config);
                }
                json!(list)
            })
    };
    object(vec![
        (
            "schemaVersion",
            prop_oneof![8 => Just(json!(2)), 1 => Just(json!(1)), 1 => junk()].boxed(),
        ),
        (
            "mediaType",
            or_junk(select(MEDIA_TYPES).prop_map(Value::from)).boxed(),
        ),
        (
            "config",
            prop_oneof![2 => config_descriptor().boxed(), 1 => descriptor()].boxed(),
        ),
        ("layers", or_junk(list(0.1)).boxed()),
        ("manifests", or_junk(list(0.8)).boxed()),
        ("annotations", string_map().boxed()),
    ])
}

/// JSON bytes of a generated value, or a mutation of them.
fn bytes_of(value: impl Strategy<Value = Value>) -> impl Strategy<Value = Bytes> {
    value.prop_flat_map(|value| {
        let bytes = serde_json::to_vec(&value).unwrap();
        prop_oneof![3 => Just(Bytes(bytes.clone())), 1 => mutated(bytes)]
    })
}

#[test]
fn manifests_decode_without_panicking_and_reencode_to_themselves() {
    let served = prop_oneof![
        3 => select(MEDIA_TYPES).prop_map(str::to_string),
        1 => text(),
    ];
    check(
        "manifests_decode_without_panicking_and_reencode_to_themselves",
        1500,
        (served, bytes_of(manifest())),
        |(served, Bytes(bytes))| {
            let Ok(image) = CacheImage::decode(&RawManifest::new(served, bytes)) else {
                return Ok(());
            };
            let _ = (image.layers().count(), image.entries_blob());
            match image.encode() {
                Ok(raw) => {
                    let again = CacheImage::decode(&raw).expect("re-encoded manifest decodes");
                    prop_assert_eq!(&again, &image);
                    prop_assert_eq!(again.encode().unwrap().bytes, raw.bytes);
                }
                // The one refusal a small decoded image can meet: a blob an
                // importer would mistake for the config.
                Err(e) => prop_assert!(
                    image.blobs.iter().any(|b| b.media_type == CACHE_CONFIG),
                    "decoded image refused on encode: {}",
                    e
                ),
            }
            Ok(())
        },
    );
}

#[test]
fn descriptors_decode_without_panicking_and_reencode_to_themselves() {
    check(
        "descriptors_decode_without_panicking_and_reencode_to_themselves",
        2000,
        bytes_of(descriptor()),
        |Bytes(bytes)| {
            if let Ok(descriptor) = serde_json::from_slice::<Descriptor>(&bytes) {
                let encoded = serde_json::to_vec(&descriptor).unwrap();
                let again: Descriptor = serde_json::from_slice(&encoded).unwrap();
                prop_assert_eq!(again, descriptor);
            }
            Ok(())
        },
    );
}

fn index() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => (0u64..6).prop_map(Value::from),
        1 => Just(json!(-1)),
        1 => junk(),
    ]
}

fn created_at() -> impl Strategy<Value = Value> {
    or_junk(prop_oneof![
        Just(json!("2026-01-01T00:00:00.123456789Z")),
        text().prop_map(Value::from),
    ])
}

fn cache_config() -> impl Strategy<Value = Value> {
    let annotations = object(vec![
        (
            "mediaType",
            or_junk(select(MEDIA_TYPES).prop_map(Value::from)).boxed(),
        ),
        ("diffID", or_junk(digest().prop_map(Value::from)).boxed()),
        ("size", or_junk(any::<i64>().prop_map(Value::from)).boxed()),
        ("createdAt", created_at().boxed()),
        ("additional", string_map().boxed()),
    ]);
    let layer = object(vec![
        ("blob", or_junk(digest().prop_map(Value::from)).boxed()),
        (
            "parent",
            prop_oneof![4 => Just(json!(-1)), 4 => index(), 1 => any::<i64>().prop_map(Value::from)]
                .boxed(),
        ),
        ("annotations", or_junk(annotations).boxed()),
    ]);
    let result = object(vec![
        ("layer", index().boxed()),
        ("createdAt", created_at().boxed()),
    ]);
    let chain = object(vec![
        (
            "layers",
            or_junk(prop::collection::vec(index(), 0..3).prop_map(Value::from)).boxed(),
        ),
        ("createdAt", created_at().boxed()),
    ]);
    let input = object(vec![
        (
            "selector",
            or_junk(prop_oneof![Just(String::new()), text()].prop_map(Value::from)).boxed(),
        ),
        ("link", index().boxed()),
    ]);
    let record_digest = prop_oneof![
        2 => select(PATHS).prop_map(|p| Value::from(entry_record_digest(p).to_string())),
        1 => digest().prop_map(Value::from),
    ];
    let record = object(vec![
        (
            "layers",
            or_junk(prop::collection::vec(result, 0..2).prop_map(Value::from)).boxed(),
        ),
        (
            "chains",
            or_junk(prop::collection::vec(chain, 0..2).prop_map(Value::from)).boxed(),
        ),
        ("digest", or_junk(record_digest).boxed()),
        (
            "inputs",
            or_junk(
                prop::collection::vec(prop::collection::vec(input, 0..3), 0..3)
                    .prop_map(|groups| json!(groups)),
            )
            .boxed(),
        ),
    ]);
    object(vec![
        (
            "layers",
            or_junk(prop::collection::vec(layer, 0..6).prop_map(Value::from)).boxed(),
        ),
        (
            "records",
            or_junk(prop::collection::vec(record, 0..4).prop_map(Value::from)).boxed(),
        ),
        // A field a newer BuildKit might add, which a copy must keep.
        ("futureField", junk().boxed()),
    ])
}

/// Pulls every numeric index of a generated config into range and makes
/// parents and input links point backwards, so the config is often valid
/// and the chain and entry properties have something to walk; untidied
/// configs keep testing the refusals.
fn tidy(mut config: Value) -> Value {
    let fit = |v: &mut Value, bound: usize| {
        if let (Some(n), true) = (v.as_i64(), bound > 0)
            && n != -1
        {
            *v = json!(n.rem_euclid(bound as i64));
        }
    };
    let layers = config["layers"].as_array().map_or(0, Vec::len);
    if let Some(list) = config["layers"].as_array_mut() {
        for (i, layer) in list.iter_mut().enumerate() {
            if let Some(parent) = layer.get_mut("parent") {
                fit(parent, i);
                if i == 0 {
                    *parent = json!(-1);
                }
            }
        }
    }
    if let Some(records) = config["records"].as_array_mut() {
        for (r, record) in records.iter_mut().enumerate() {
            for result in record["layers"].as_array_mut().into_iter().flatten() {
                if let Some(layer) = result.get_mut("layer") {
                    fit(layer, layers);
                }
            }
            for chain in record["chains"].as_array_mut().into_iter().flatten() {
                for layer in chain["layers"].as_array_mut().into_iter().flatten() {
                    fit(layer, layers);
                }
            }
            if let Some(groups) = record["inputs"].as_array_mut() {
                groups.retain(|g| g.as_array().is_some_and(|g| !g.is_empty()));
                for input in groups.iter_mut().flat_map(|g| g.as_array_mut().unwrap()) {
                    if let Some(link) = input.get_mut("link") {
                        fit(link, r);
                    }
                }
                if r == 0 {
                    groups.clear();
                }
            }
        }
    }
    config
}

/// No panic; an accepted config re-encodes to one that decodes equal; every
/// layer's chain runs from a base layer to it through parent links; and an
/// entry's chain, where one resolves, is that chain's blobs.
#[test]
fn cache_configs_decode_without_panicking_and_chains_follow_parents() {
    check(
        "cache_configs_decode_without_panicking_and_chains_follow_parents",
        1000,
        (
            bytes_of(
                (cache_config(), prop::bool::weighted(0.7))
                    .prop_map(|(c, t)| if t { tidy(c) } else { c }),
            ),
            manifest(),
        ),
        |(Bytes(bytes), manifest)| {
            let Ok(config) = CacheConfig::from_json(&bytes) else {
                return Ok(());
            };
            let encoded = config.to_json().expect("an accepted config encodes");
            prop_assert_eq!(CacheConfig::from_json(&encoded).unwrap(), config.clone());
            prop_assert_eq!(
                CacheConfig::from_json(&encoded).unwrap().to_json().unwrap(),
                encoded
            );
            for i in 0..config.layers.len() {
                let chain = config.chain(i).expect("a valid config's chains resolve");
                prop_assert_eq!(chain.last(), Some(&i));
                prop_assert_eq!(config.layers[chain[0]].parent, -1);
                for pair in chain.windows(2) {
                    prop_assert_eq!(config.layers[pair[1]].parent, pair[0] as i64);
                }
            }
            prop_assert!(config.chain(config.layers.len()).is_err());

            let manifest = serde_json::to_vec(&manifest).unwrap();
            let Ok(image) = CacheImage::decode(&RawManifest::new(OCI_MANIFEST, manifest)) else {
                return Ok(());
            };
            for path in PATHS {
                if let Ok(blobs) = entry_chain(&image, &config, path) {
                    let record = config
                        .records
                        .iter()
                        .find(|r| r.digest == entry_record_digest(path) && !r.results.is_empty())
                        .unwrap();
                    let layers = config.chain(record.results[0].layer).unwrap();
                    let expected: Vec<_> = layers.iter().map(|&l| &config.layers[l].blob).collect();
                    let got: Vec<_> = blobs.iter().map(|d| &d.digest).collect();
                    prop_assert_eq!(got, expected);
                }
            }
            Ok(())
        },
    );
}

fn entries_blob() -> impl Strategy<Value = Value> {
    let count = || {
        prop_oneof![
            8 => (0u64..100).prop_map(Value::from),
            1 => any::<u64>().prop_map(Value::from),
            1 => junk(),
        ]
        .boxed()
    };
    let entry = (select(PATHS), any::<bool>()).prop_flat_map(move |(path, honest)| {
        let record = if honest {
            Just(Value::from(entry_record_digest(path).to_string())).boxed()
        } else {
            or_junk(digest().prop_map(Value::from)).boxed()
        };
        object(vec![
            (
                "path",
                prop_oneof![8 => Just(Value::from(path)), 1 => junk()].boxed(),
            ),
            ("record", record),
            (
                "layers",
                or_junk(prop::collection::vec(digest(), 0..3).prop_map(|v| json!(v))).boxed(),
            ),
            ("files", count()),
            ("dirs", count()),
            ("symlinks", count()),
            ("hardlinks", count()),
            ("bytes", count()),
        ])
    });
    object(vec![
        (
            "version",
            prop_oneof![8 => Just(json!(1)), 1 => Just(json!(2)), 1 => junk()].boxed(),
        ),
        (
            "mode",
            or_junk(select(&["min", "max", "MAX", ""][..]).prop_map(Value::from)).boxed(),
        ),
        (
            "entries",
            or_junk(prop::collection::vec(entry, 0..4).prop_map(Value::from)).boxed(),
        ),
    ])
}

/// No panic; what is accepted holds only unique, non-empty paths whose
/// record digest is right, and re-encodes to an equal blob.
#[test]
fn entries_blobs_decode_without_panicking_and_hold_only_checked_entries() {
    check(
        "entries_blobs_decode_without_panicking_and_hold_only_checked_entries",
        2000,
        bytes_of(entries_blob()),
        |Bytes(bytes)| {
            let Ok(blob) = EntriesBlob::from_json(&bytes) else {
                return Ok(());
            };
            prop_assert!(blob.mode == "min" || blob.mode == "max");
            for (i, entry) in blob.entries.iter().enumerate() {
                prop_assert!(!entry.path.is_empty());
                prop_assert_eq!(&entry.record, &entry_record_digest(&entry.path));
                prop_assert_eq!(blob.find(&entry.path), Some(entry));
                prop_assert!(blob.entries[..i].iter().all(|e| e.path != entry.path));
            }
            let encoded = blob.to_json().expect("an accepted blob encodes");
            prop_assert_eq!(EntriesBlob::from_json(&encoded).unwrap(), blob);
            Ok(())
        },
    );
}
