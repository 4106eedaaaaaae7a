//! Golden tests of the image model against real BuildKit v0.32.2 exports
//! (`tests/fixtures/buildkit/`, see its README): every variant decodes to the
//! right form, re-encodes to the exact bytes BuildKit wrote, and its cache
//! config parses, re-encodes exactly and agrees with the manifest.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use regcache::digest::Digest;
use regcache::image::media_types::{
    ANNOTATION_CREATED_AT, ANNOTATION_ESTARGZ_UNCOMPRESSED_SIZE, ANNOTATION_REF_NAME,
    ANNOTATION_STARGZ_TOC, ANNOTATION_UNCOMPRESSED, CACHE_CONFIG, DOCKER_LAYER_GZIP,
    OCI_LAYER_GZIP, OCI_LAYER_ZSTD,
};
use regcache::image::{
    CacheConfig, CacheImage, Form, ImageError, InspectReport, RawManifest, entry_chain,
};
use serde_json::Value;

const REGISTRY_VARIANTS: [&str; 8] = [
    "default",
    "min",
    "max",
    "max-imgmf-false",
    "max-docker",
    "max-zstd",
    "max-estargz",
    "max-zstd-imggzip",
];
const LOCAL_VARIANTS: [&str; 4] = [
    "local-min",
    "local-max",
    "local-max-zstd",
    "local-max-estargz",
];

fn fixture(variant: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/buildkit")
        .join(variant)
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn blob_path(variant: &str, digest: &Digest) -> PathBuf {
    fixture(variant)
        .join("layout/blobs/sha256")
        .join(digest.hex())
}

/// One exported cache: its manifest as served and its config blob.
struct Export {
    variant: &'static str,
    raw: RawManifest,
    config_bytes: Vec<u8>,
}

fn load(variant: &'static str) -> Export {
    let dir = fixture(variant);
    if variant.starts_with("local-") {
        let index: Value = serde_json::from_slice(&read(&dir.join("layout/index.json"))).unwrap();
        let entry = &index["manifests"][0];
        assert_eq!(
            entry["annotations"][ANNOTATION_REF_NAME], "latest",
            "{variant}"
        );
        let digest: Digest = entry["digest"].as_str().unwrap().parse().unwrap();
        let media_type = entry["mediaType"].as_str().unwrap();
        let raw = RawManifest::new(media_type, read(&blob_path(variant, &digest)));
        assert_eq!(raw.digest, digest, "{variant}: manifest blob digest");
        let image = CacheImage::decode(&raw).unwrap();
        let config_bytes = read(&blob_path(variant, &image.config.digest));
        Export {
            variant,
            raw,
            config_bytes,
        }
    } else {
        let content_type = String::from_utf8(read(&dir.join("content-type.txt"))).unwrap();
        let raw = RawManifest::new(content_type.trim(), read(&dir.join("manifest.json")));
        let served = String::from_utf8(read(&dir.join("digest.txt"))).unwrap();
        let served = served
            .lines()
            .find_map(|l| l.strip_prefix("Docker-Content-Digest: "))
            .unwrap();
        assert_eq!(raw.digest.to_string(), served, "{variant}: manifest digest");
        Export {
            variant,
            raw,
            config_bytes: read(&dir.join("cacheconfig.json")),
        }
    }
}

fn all() -> Vec<Export> {
    REGISTRY_VARIANTS
        .into_iter()
        .chain(LOCAL_VARIANTS)
        .map(load)
        .collect()
}

fn expected_form(variant: &str) -> Form {
    match variant {
        "max-imgmf-false" => Form::OciIndex,
        "max-docker" => Form::DockerManifestList,
        _ => Form::ImageManifest,
    }
}

/// The non-config descriptors as they appear in the raw JSON, read without
/// the model, to compare the model against.
fn raw_blob_descriptors(raw: &RawManifest) -> Vec<Value> {
    let json: Value = serde_json::from_slice(&raw.bytes).unwrap();
    let list = json
        .get("layers")
        .or_else(|| json.get("manifests"))
        .unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .filter(|d| d["mediaType"] != CACHE_CONFIG)
        .cloned()
        .collect()
}

/// The counts line of `summary.txt`, when the variant has one.
fn summary_counts(variant: &str) -> Option<BTreeMap<String, usize>> {
    let text = fs::read_to_string(fixture(variant).join("summary.txt")).ok()?;
    let line = text
        .lines()
        .find(|l| l.starts_with("cacheconfig layers:"))?;
    let words: Vec<&str> = line
        .trim_start_matches("cacheconfig ")
        .split_whitespace()
        .collect();
    Some(
        words
            .chunks(2)
            .map(|pair| {
                (
                    pair[0].trim_end_matches(':').to_string(),
                    pair[1].parse().unwrap(),
                )
            })
            .collect(),
    )
}

#[test]
fn every_variant_decodes_to_its_form() {
    for export in all() {
        let image = CacheImage::decode(&export.raw).unwrap();
        assert_eq!(
            image.form,
            expected_form(export.variant),
            "{}",
            export.variant
        );
        assert_eq!(image.config.media_type, CACHE_CONFIG, "{}", export.variant);
        assert!(
            image.annotations.is_empty(),
            "{}: BuildKit writes no top-level annotations",
            export.variant
        );
        assert!(image.entries_blob().is_none(), "{}", export.variant);
    }
}

#[test]
fn decoded_descriptors_match_the_json() {
    for export in all() {
        let image = CacheImage::decode(&export.raw).unwrap();
        let raw = raw_blob_descriptors(&export.raw);
        assert_eq!(image.blobs.len(), raw.len(), "{}", export.variant);
        for (d, r) in image.blobs.iter().zip(&raw) {
            assert_eq!(
                d.media_type,
                r["mediaType"].as_str().unwrap(),
                "{}",
                export.variant
            );
            assert_eq!(d.digest.to_string(), r["digest"].as_str().unwrap());
            assert_eq!(d.size, r["size"].as_u64().unwrap());
            let annotations: BTreeMap<String, String> =
                serde_json::from_value(r["annotations"].clone()).unwrap();
            assert_eq!(d.annotations, annotations);
            // BuildKit's two annotations are always there.
            assert!(d.annotation(ANNOTATION_UNCOMPRESSED).is_some());
            assert!(d.annotation(ANNOTATION_CREATED_AT).is_some());
        }
        assert_eq!(
            image.layers().count(),
            raw.len(),
            "{}: every blob is a layer",
            export.variant
        );
    }
}

#[test]
fn layer_media_types_follow_the_export_options() {
    let types = |variant: &'static str| -> BTreeSet<String> {
        CacheImage::decode(&load(variant).raw)
            .unwrap()
            .layers()
            .map(|d| d.media_type.clone())
            .collect()
    };
    for variant in [
        "default",
        "min",
        "max",
        "max-imgmf-false",
        "max-estargz",
        "local-max",
        "local-max-estargz",
    ] {
        assert_eq!(
            types(variant),
            BTreeSet::from([OCI_LAYER_GZIP.to_string()]),
            "{variant}"
        );
    }
    assert_eq!(
        types("max-docker"),
        BTreeSet::from([DOCKER_LAYER_GZIP.to_string()])
    );
    for variant in ["max-zstd", "local-max-zstd"] {
        assert_eq!(
            types(variant),
            BTreeSet::from([OCI_LAYER_ZSTD.to_string()]),
            "{variant}"
        );
    }
    assert_eq!(
        types("max-zstd-imggzip"),
        BTreeSet::from([OCI_LAYER_GZIP.to_string(), OCI_LAYER_ZSTD.to_string()])
    );
    for variant in ["max-estargz", "local-max-estargz"] {
        for d in CacheImage::decode(&load(variant).raw).unwrap().layers() {
            assert!(d.annotation(ANNOTATION_STARGZ_TOC).is_some(), "{variant}");
            assert!(
                d.annotation(ANNOTATION_ESTARGZ_UNCOMPRESSED_SIZE).is_some(),
                "{variant}"
            );
        }
    }
}

#[test]
fn manifests_re_encode_byte_for_byte() {
    for export in all() {
        let image = CacheImage::decode(&export.raw).unwrap();
        let encoded = image.encode().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&encoded.bytes),
            String::from_utf8_lossy(&export.raw.bytes),
            "{}",
            export.variant
        );
        assert_eq!(encoded.digest, export.raw.digest, "{}", export.variant);
        assert_eq!(
            encoded.media_type, export.raw.media_type,
            "{}",
            export.variant
        );
    }
}

#[test]
fn configs_parse_and_re_encode_byte_for_byte() {
    for export in all() {
        let image = CacheImage::decode(&export.raw).unwrap();
        assert_eq!(
            Digest::of(&export.config_bytes),
            image.config.digest,
            "{}",
            export.variant
        );
        assert_eq!(
            export.config_bytes.len() as u64,
            image.config.size,
            "{}",
            export.variant
        );
        let config = CacheConfig::from_json(&export.config_bytes).unwrap();
        assert_eq!(
            String::from_utf8(config.to_json().unwrap()).unwrap(),
            String::from_utf8(export.config_bytes.clone()).unwrap(),
            "{}",
            export.variant
        );
    }
}

#[test]
fn config_and_manifest_agree() {
    for export in all() {
        let image = CacheImage::decode(&export.raw).unwrap();
        let config = CacheConfig::from_json(&export.config_bytes).unwrap();
        for layer in &config.layers {
            let d = image
                .find_blob(&layer.blob)
                .unwrap_or_else(|| panic!("{}: {} not in manifest", export.variant, layer.blob));
            let diff_id: Result<Digest, _> =
                d.annotation(ANNOTATION_UNCOMPRESSED).unwrap_or("").parse();
            assert!(
                diff_id.is_ok(),
                "{}: {} lacks a diffID",
                export.variant,
                layer.blob
            );
        }
        // One descriptor per config layer, in the same (sorted) order.
        let manifest_order: Vec<&Digest> = image.layers().map(|d| &d.digest).collect();
        let config_order: Vec<&Digest> = config.layers.iter().map(|l| &l.blob).collect();
        assert_eq!(manifest_order, config_order, "{}", export.variant);
        // Every result resolves to a chain of blobs the manifest holds.
        for record in &config.records {
            for result in &record.results {
                for index in config.chain(result.layer).unwrap() {
                    assert!(image.find_blob(&config.layers[index].blob).is_some());
                }
            }
        }
    }
}

#[test]
fn counts_match_the_summaries() {
    let mut checked = 0;
    for export in all() {
        let Some(counts) = summary_counts(export.variant) else {
            continue;
        };
        let config = CacheConfig::from_json(&export.config_bytes).unwrap();
        assert_eq!(counts["layers"], config.layers.len(), "{}", export.variant);
        assert_eq!(
            counts["records"],
            config.records.len(),
            "{}",
            export.variant
        );
        let with_results = config
            .records
            .iter()
            .filter(|r| !r.results.is_empty())
            .count();
        assert_eq!(
            counts["records-with-results"], with_results,
            "{}",
            export.variant
        );
        if let Some(&chains) = counts.get("records-with-chains") {
            assert_eq!(
                chains,
                config
                    .records
                    .iter()
                    .filter(|r| !r.chains.is_empty())
                    .count()
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 10, "every variant with a summary.txt was checked");
}

#[test]
fn max_chain_follows_parents_across_the_sorted_layers() {
    let export = load("max");
    let config = CacheConfig::from_json(&export.config_bytes).unwrap();
    // L0 (687c…) sits on L3 (93dc…, parent 7), which sits on L7 (dd0d…, a base).
    assert_eq!(config.chain(0).unwrap(), vec![7, 3, 0]);
    assert_eq!(config.layers[0].parent, 3);
    assert_eq!(config.layers[2].parent, -1);
    assert_eq!(config.chain(2).unwrap(), vec![2]);
}

#[test]
fn local_layouts_hold_every_blob_with_its_size() {
    for variant in LOCAL_VARIANTS {
        let export = load(variant);
        let image = CacheImage::decode(&export.raw).unwrap();
        for d in image.descriptors() {
            let len = fs::metadata(blob_path(variant, &d.digest)).map(|m| m.len());
            assert_eq!(len.ok(), Some(d.size), "{variant}: {}", d.digest);
        }
    }
}

#[test]
fn buildkit_caches_have_no_regcache_entries() {
    let export = load("max");
    let image = CacheImage::decode(&export.raw).unwrap();
    let config = CacheConfig::from_json(&export.config_bytes).unwrap();
    assert!(matches!(
        entry_chain(&image, &config, "target"),
        Err(ImageError::EntryNotFound { .. })
    ));
}

/// BuildKit's max export lists one blob as two layers (two chains): the
/// report keeps both, and counts the blob once.
#[test]
fn inspect_max_lists_every_layer_and_counts_each_blob_once() {
    let export = load("max");
    let image = CacheImage::decode(&export.raw).unwrap();
    let config = CacheConfig::from_json(&export.config_bytes).unwrap();
    assert_eq!(image.layers().count(), 8);
    let report = InspectReport::new(&export.raw, &image, &config, None, SystemTime::now());
    assert_eq!(report.form, "image-manifest");
    assert_eq!(report.manifest_digest, export.raw.digest);
    assert_eq!(report.layers.len(), 8);
    assert_eq!(report.blobs, 7);
    // In the config's order, each with its parent.
    for (layer, config_layer) in report.layers.iter().zip(&config.layers) {
        assert_eq!(layer.digest, config_layer.blob);
        assert_eq!(layer.parent.map_or(-1, |p| p as i64), config_layer.parent);
    }
    assert_eq!(report.records, 14);
    assert_eq!(report.results, 8);
    // manifest 2875 + config 3061 + the 7 distinct layers (4200748).
    assert_eq!(report.total_size, 2875 + 3061 + 4_200_748);
    assert!(
        report
            .layers
            .iter()
            .all(|l| l.compression == "gzip" && l.uncompressed_digest.is_some())
    );
    assert!(report.entries.is_empty());

    let text = report.render_human();
    assert!(text.contains("image-manifest"), "{text}");
    assert!(text.contains("14 (8 with results)"), "{text}");
    assert!(text.contains("sha256:687c988ae2f2"), "{text}");
    assert!(text.contains("2.0 MiB"), "{text}");
    assert!(text.contains("8 (7 distinct blobs)"), "{text}");
    // A header, then one line per layer.
    let table_lines = text
        .lines()
        .skip_while(|l| !l.starts_with("LAYER"))
        .take_while(|l| !l.is_empty());
    assert_eq!(table_lines.count(), 1 + 8, "{text}");
}

#[test]
fn inspect_tells_compressions_apart() {
    let compressions = |variant: &'static str| -> BTreeSet<String> {
        let export = load(variant);
        let image = CacheImage::decode(&export.raw).unwrap();
        let config = CacheConfig::from_json(&export.config_bytes).unwrap();
        InspectReport::new(&export.raw, &image, &config, None, SystemTime::now())
            .layers
            .into_iter()
            .map(|l| l.compression)
            .collect()
    };
    assert_eq!(
        compressions("max-estargz"),
        BTreeSet::from(["estargz".to_string()])
    );
    assert_eq!(
        compressions("local-max-zstd"),
        BTreeSet::from(["zstd".to_string()])
    );
    assert_eq!(
        compressions("max-zstd-imggzip"),
        BTreeSet::from(["gzip".to_string(), "zstd".to_string()])
    );
    let export = load("max-imgmf-false");
    let image = CacheImage::decode(&export.raw).unwrap();
    let config = CacheConfig::from_json(&export.config_bytes).unwrap();
    let report = InspectReport::new(&export.raw, &image, &config, None, SystemTime::now());
    assert_eq!(
        (report.form.as_str(), report.layers.len(), report.blobs),
        ("oci-index", 8, 7)
    );
}

/// Feeding BuildKit's own layer chains to the builder must give back
/// BuildKit's config layer table: same blobs, same order, same parents.
#[test]
fn builder_reproduces_buildkit_layer_tables() {
    use regcache::compression::Compression;
    use regcache::image::{BuildEntry, BuildParams, BuiltLayer, build_cache_image};

    for variant in [
        "max",
        "max-imgmf-false",
        "max-docker",
        "max-zstd",
        "local-max",
        "local-min",
        "default",
    ] {
        let export = load(variant);
        let image = CacheImage::decode(&export.raw).unwrap();
        let config = CacheConfig::from_json(&export.config_bytes).unwrap();
        let mut entries = Vec::new();
        for (i, record) in config.records.iter().enumerate() {
            let Some(result) = record.results.first() else {
                continue;
            };
            let layers = config
                .chain(result.layer)
                .unwrap()
                .into_iter()
                .map(|index| {
                    let d = image.find_blob(&config.layers[index].blob).unwrap();
                    BuiltLayer {
                        digest: d.digest.clone(),
                        size: d.size,
                        diff_id: d
                            .annotation(ANNOTATION_UNCOMPRESSED)
                            .unwrap()
                            .parse()
                            .unwrap(),
                        uncompressed_size: 0,
                        toc_digest: None,
                    }
                })
                .collect();
            entries.push(BuildEntry {
                path: format!("record-{i}"),
                layers,
                files: 0,
                dirs: 0,
                symlinks: 0,
                hardlinks: 0,
                bytes: 0,
                filelist: None,
                kind: regcache::image::EntryKind::Dir,
            });
        }
        let params = BuildParams {
            form: expected_form(variant),
            compression: Compression::Gzip,
            oci_mediatypes: variant != "max-docker",
            mode: "max".into(),
            created_at: "2026-11-23T03:19:11.064733251Z".into(),
        };
        let built = build_cache_image(&entries, &params).unwrap();
        let rebuilt = CacheConfig::from_json(&built.config_bytes).unwrap();
        assert_eq!(rebuilt.layers, config.layers, "{variant}");
        assert_eq!(built.image.form, image.form, "{variant}");
        let ours: Vec<&Digest> = built.image.layers().map(|d| &d.digest).collect();
        let theirs: Vec<&Digest> = image.layers().map(|d| &d.digest).collect();
        assert_eq!(ours, theirs, "{variant}");
    }
}

/// `inspect` of every fixture: the form, one row per config layer with
/// its compression and diffID, the distinct blobs, and the record counts
/// of the config.
#[test]
fn inspect_reports_every_fixture() {
    for export in all() {
        let image = CacheImage::decode(&export.raw).unwrap();
        let config = CacheConfig::from_json(&export.config_bytes).unwrap();
        let report = InspectReport::new(&export.raw, &image, &config, None, SystemTime::now());
        let variant = export.variant;
        assert_eq!(report.form, expected_form(variant).name(), "{variant}");
        let distinct: BTreeSet<_> = config.layers.iter().map(|l| l.blob.clone()).collect();
        assert_eq!(report.layers.len(), config.layers.len(), "{variant}");
        assert_eq!(report.blobs, distinct.len(), "{variant}");
        assert_eq!(report.records, config.records.len(), "{variant}");
        let declared = declared_compressions(&export.raw.bytes);
        for layer in &report.layers {
            assert!(layer.uncompressed_digest.is_some(), "{variant}");
            let expected = declared
                .get(&layer.digest.to_string())
                .unwrap_or_else(|| panic!("{variant}: {} is not in the manifest", layer.digest));
            assert_eq!(&layer.compression, expected, "{variant}");
        }
        assert!(
            report
                .render_human()
                .contains(expected_form(variant).name())
        );
    }
}

/// Each blob's compression as the fixture's own JSON declares it, read
/// without regcache's model: the media type's suffix, and eStargz by the
/// TOC annotation BuildKit puts on such layers.
fn declared_compressions(raw: &[u8]) -> BTreeMap<String, String> {
    let json: serde_json::Value = serde_json::from_slice(raw).unwrap();
    let descriptors = json["layers"]
        .as_array()
        .or_else(|| json["manifests"].as_array())
        .expect("a manifest's layers or an index's manifests");
    descriptors
        .iter()
        .filter_map(|d| {
            let media_type = d["mediaType"].as_str()?;
            let compression =
                if d["annotations"]["containerd.io/snapshot/stargz/toc.digest"].is_string() {
                    "estargz"
                } else if media_type.ends_with("+zstd") {
                    "zstd"
                } else if media_type.ends_with("+gzip") || media_type.ends_with(".tar.gzip") {
                    "gzip"
                } else if media_type.ends_with(".tar") || media_type.ends_with("diff.tar") {
                    "uncompressed"
                } else {
                    return None; // the cache config
                };
            Some((d["digest"].as_str()?.to_string(), compression.to_string()))
        })
        .collect()
}
