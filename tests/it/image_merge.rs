//! The pure half of `copy` (`image::merge`) against real BuildKit v0.32.2
//! exports (`tests/fixtures/buildkit/`, see its README) and against caches
//! regcache builds: merging, slimming to min, rewriting blob references and
//! putting a cache back together in each of the three forms.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use regcache::compression::Compression;
use regcache::digest::Digest;
use regcache::image::media_types::{
    ANNOTATION_UNCOMPRESSED, CACHE_CONFIG, DOCKER_LAYER_GZIP, DOCKER_LAYER_ZSTD, OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD, REGCACHE_ENTRIES,
};
use regcache::image::{
    BuildEntry, BuildParams, BuiltLayer, CacheConfig, CacheImage, CacheLayer, CacheParts,
    CacheRecord, CacheResult, Descriptor, EntriesBlob, Form, ImageError, MAX_CONFIG_SIZE,
    RawManifest, assemble, build_cache_image, entry_chain, merge, replace_blobs, slim_to_min,
};
use serde_json::Value;

fn fixture(variant: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/buildkit")
        .join(variant)
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fixture's manifest as served, and its config bytes.
fn load_raw(variant: &str) -> (RawManifest, Vec<u8>) {
    let dir = fixture(variant);
    if variant.starts_with("local-") {
        let blob = |d: &Digest| read(&dir.join("layout/blobs/sha256").join(d.hex()));
        let index: Value = serde_json::from_slice(&read(&dir.join("layout/index.json"))).unwrap();
        let entry = &index["manifests"][0];
        let digest: Digest = entry["digest"].as_str().unwrap().parse().unwrap();
        let raw = RawManifest::new(entry["mediaType"].as_str().unwrap(), blob(&digest));
        let image = CacheImage::decode(&raw).unwrap();
        let config = blob(&image.config.digest);
        (raw, config)
    } else {
        let content_type = String::from_utf8(read(&dir.join("content-type.txt"))).unwrap();
        let raw = RawManifest::new(content_type.trim(), read(&dir.join("manifest.json")));
        (raw, read(&dir.join("cacheconfig.json")))
    }
}

fn load(variant: &str) -> CacheParts {
    let (raw, config) = load_raw(variant);
    let image = CacheImage::decode(&raw).unwrap();
    CacheParts::from_image(&image, CacheConfig::from_json(&config).unwrap(), None).unwrap()
}

/// The chain of blobs (base first) a layer index stands for.
fn blob_chain(config: &CacheConfig, layer: usize) -> Vec<Digest> {
    config
        .chain(layer)
        .unwrap()
        .into_iter()
        .map(|i| config.layers[i].blob.clone())
        .collect()
}

/// Each record's results as blob chains, by record digest.
fn result_chains(config: &CacheConfig) -> BTreeMap<Digest, BTreeSet<Vec<Digest>>> {
    config
        .records
        .iter()
        .map(|r| {
            let chains = r
                .results
                .iter()
                .map(|res| blob_chain(config, res.layer))
                .collect();
            (r.digest.clone(), chains)
        })
        .collect()
}

/// Each record's input links as (group, selector, linked record digest).
fn input_links(
    config: &CacheConfig,
) -> BTreeMap<Digest, BTreeSet<(usize, Option<String>, Digest)>> {
    config
        .records
        .iter()
        .map(|r| {
            let links = r
                .inputs
                .iter()
                .enumerate()
                .flat_map(|(g, group)| {
                    group.iter().map(move |input| {
                        (
                            g,
                            input.selector.clone(),
                            config.records[input.link].digest.clone(),
                        )
                    })
                })
                .collect();
            (r.digest.clone(), links)
        })
        .collect()
}

/// Valid, every layer blob described, layers and records in canonical order.
fn assert_consistent(parts: &CacheParts) {
    let config = &parts.config;
    config.validate().unwrap();
    for layer in &config.layers {
        assert!(parts.blobs.contains_key(&layer.blob), "{}", layer.blob);
    }
    let chains: Vec<Vec<Digest>> = (0..config.layers.len())
        .map(|l| blob_chain(config, l))
        .collect();
    for pair in chains.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            a.iter().rev().cmp(b.iter().rev()).is_lt(),
            "layers out of order or duplicated: {a:?} {b:?}"
        );
    }
    assert!(
        config.records.windows(2).all(|w| w[0].digest < w[1].digest),
        "records sorted by digest, unique"
    );
    for record in &config.records {
        for group in &record.inputs {
            assert!(group.windows(2).all(|w| w[0].link <= w[1].link));
        }
    }
}

fn records_with_results(config: &CacheConfig) -> BTreeSet<&Digest> {
    config
        .records
        .iter()
        .filter(|r| !r.results.is_empty())
        .map(|r| &r.digest)
        .collect()
}

#[test]
fn a_cache_merged_with_itself_is_itself() {
    for variant in [
        "max",
        "min",
        "max-docker",
        "max-imgmf-false",
        "local-max",
        "local-min",
    ] {
        let parts = load(variant);
        let (_, config_bytes) = load_raw(variant);
        let merged = merge(vec![parts.clone(), parts.clone()]).unwrap();
        assert_consistent(&merged);
        assert_eq!(merged.config, parts.config, "{variant}");
        assert_eq!(merged.blobs, parts.blobs, "{variant}");
        // Even the bytes: BuildKit's own order is the canonical one.
        assert_eq!(merged.config.to_json().unwrap(), config_bytes, "{variant}");
        assert_eq!(merge(vec![parts.clone()]).unwrap().config, parts.config);
    }
}

#[test]
fn merging_two_builds_gives_the_union_with_consistent_indexes() {
    for (a, b) in [
        ("max", "min"),
        ("local-max", "local-min"),
        ("max", "local-max"),
    ] {
        let first = load(a);
        let second = load(b);
        let merged = merge(vec![first.clone(), second.clone()]).unwrap();
        assert_consistent(&merged);
        let got = result_chains(&merged.config);
        let links = input_links(&merged.config);
        let mut all_layers = BTreeSet::new();
        for input in [&first, &second] {
            for (digest, chains) in result_chains(&input.config) {
                assert!(chains.is_subset(&got[&digest]), "{a}+{b}: {digest}");
            }
            for (digest, inputs) in input_links(&input.config) {
                assert!(inputs.is_subset(&links[&digest]), "{a}+{b}: {digest}");
            }
            all_layers.extend((0..input.config.layers.len()).map(|l| blob_chain(&input.config, l)));
        }
        // Nothing but the union.
        assert_eq!(merged.config.layers.len(), all_layers.len(), "{a}+{b}");
        let digests: BTreeSet<&Digest> = first
            .config
            .records
            .iter()
            .chain(&second.config.records)
            .map(|r| &r.digest)
            .collect();
        assert_eq!(merged.config.records.len(), digests.len());
        let blobs: BTreeSet<&Digest> = first.blobs.keys().chain(second.blobs.keys()).collect();
        assert_eq!(merged.blobs.len(), blobs.len());
        // The first input's result comes first on a shared record.
        for record in &merged.config.records {
            if let Some(orig) = first
                .config
                .records
                .iter()
                .find(|r| r.digest == record.digest)
                && let Some(result) = orig.results.first()
            {
                assert_eq!(
                    blob_chain(&merged.config, record.results[0].layer),
                    blob_chain(&first.config, result.layer)
                );
                assert_eq!(record.results[0].created_at, result.created_at);
            }
        }
        // And it encodes and decodes.
        let assembled = assemble(&merged, Form::ImageManifest, true).unwrap();
        let image = CacheImage::decode(&assembled.manifest).unwrap();
        assert_eq!(image.layers().count(), merged.config.layers.len());
    }
    // Different builds: the record digests are the same, the layer chains
    // are not. Only the empty-ish top blob c3ff… is shared, on different
    // parents, so it is one descriptor but two config layers.
    let merged = merge(vec![load("max"), load("min")]).unwrap();
    assert_eq!(merged.config.records.len(), 14);
    assert_eq!(merged.config.layers.len(), 8 + 3);
    assert_eq!(merged.blobs.len(), 7 + 3 - 1);
    assert_eq!(records_with_results(&merged.config).len(), 8);
    let doubled = merged
        .config
        .records
        .iter()
        .filter(|r| r.results.len() == 2)
        .count();
    assert_eq!(
        doubled, 3,
        "the min result's records have both builds' results"
    );
}

fn built_layer(name: &str) -> BuiltLayer {
    BuiltLayer {
        digest: Digest::of(name.as_bytes()),
        size: 100,
        diff_id: Digest::of(format!("diff {name}").as_bytes()),
        uncompressed_size: 1000,
        toc_digest: None,
    }
}

fn build_entry(path: &str, layers: &[&str]) -> BuildEntry {
    BuildEntry {
        path: path.to_string(),
        layers: layers.iter().map(|l| built_layer(l)).collect(),
        files: layers.len() as u64,
        dirs: 1,
        symlinks: 0,
        hardlinks: 0,
        bytes: 10,
        filelist: None,
        kind: regcache::image::EntryKind::Dir,
    }
}

fn regcache_parts(entries: &[BuildEntry], mode: &str) -> CacheParts {
    let built = build_cache_image(
        entries,
        &BuildParams {
            form: Form::ImageManifest,
            compression: Compression::Gzip,
            oci_mediatypes: true,
            mode: mode.into(),
            created_at: "2026-11-23T03:19:11.064733251Z".into(),
        },
    )
    .unwrap();
    CacheParts::from_image(
        &built.image,
        CacheConfig::from_json(&built.config_bytes).unwrap(),
        Some(EntriesBlob::from_json(&built.entries_bytes).unwrap()),
    )
    .unwrap()
}

/// The entry's chain of blobs in the image `parts` assemble to.
fn entry_blobs(parts: &CacheParts, path: &str) -> Vec<Digest> {
    let assembled = assemble(parts, Form::OciIndex, true).unwrap();
    let image = CacheImage::decode(&assembled.manifest).unwrap();
    let config = CacheConfig::from_json(&assembled.config_bytes).unwrap();
    entry_chain(&image, &config, path)
        .unwrap()
        .into_iter()
        .map(|d| d.digest.clone())
        .collect()
}

#[test]
fn regcache_caches_merge_by_path_first_wins() {
    let a = regcache_parts(
        &[
            build_entry("target", &["t1", "t2"]),
            build_entry("shared", &["a-base", "a-delta"]),
        ],
        "max",
    );
    let b = regcache_parts(
        &[
            build_entry("shared", &["b-base"]),
            build_entry("node_modules", &["n1"]),
        ],
        "min",
    );
    let ab = merge(vec![a.clone(), b.clone()]).unwrap();
    assert_consistent(&ab);
    let entries = ab.entries.as_ref().unwrap();
    let paths: Vec<&str> = entries.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["node_modules", "shared", "target"]);
    assert_eq!(entries.mode, "max");
    assert!(ab.blobs.values().all(|d| d.media_type != REGCACHE_ENTRIES));
    let a_shared = vec![built_layer("a-base").digest, built_layer("a-delta").digest];
    assert_eq!(entries.find("shared").unwrap().layers, a_shared);
    assert_eq!(entry_blobs(&ab, "shared"), a_shared);
    assert_eq!(entry_blobs(&ab, "target").len(), 2);
    assert_eq!(entry_blobs(&ab, "node_modules"), [built_layer("n1").digest]);
    // Both chains are kept on the shared record, the first cache's first.
    let record = ab
        .config
        .records
        .iter()
        .find(|r| r.digest == entries.find("shared").unwrap().record)
        .unwrap();
    assert_eq!(record.results.len(), 2);

    // Entries have no inputs: each is a sink, so slimming keeps them all.
    assert_eq!(slim_to_min(&ab), ab);
    let single = regcache_parts(&[build_entry("x", &["x1", "x2"])], "max");
    assert_eq!(slim_to_min(&single), single, "the entries descriptor stays");

    let ba = merge(vec![b, a]).unwrap();
    let entries = ba.entries.as_ref().unwrap();
    assert_eq!(entries.mode, "min");
    assert_eq!(entry_blobs(&ba, "shared"), [built_layer("b-base").digest]);
    assert_eq!(
        entries.find("shared").unwrap().layers,
        [built_layer("b-base").digest]
    );
    // The assembled image carries the merged entries blob.
    let assembled = assemble(&ba, Form::ImageManifest, true).unwrap();
    let image = CacheImage::decode(&assembled.manifest).unwrap();
    assert_eq!(image.entries_blob(), assembled.entries.as_ref());
    assert_eq!(
        EntriesBlob::from_json(assembled.entries_bytes.as_ref().unwrap()).unwrap(),
        *entries
    );
}

#[test]
fn slimming_max_keeps_what_a_min_export_keeps() {
    for (max, min) in [("max", "min"), ("local-max", "local-min")] {
        let max_parts = load(max);
        let min_parts = load(min);
        let slim = slim_to_min(&max_parts);
        assert_consistent(&slim);
        // Same records, results on the same ones, chains of the same shape.
        assert_eq!(slim.config.records.len(), min_parts.config.records.len());
        assert_eq!(
            records_with_results(&slim.config),
            records_with_results(&min_parts.config),
            "{max}"
        );
        assert_eq!(slim.config.layers.len(), min_parts.config.layers.len());
        let lengths = |c: &CacheConfig| -> BTreeMap<Digest, Vec<usize>> {
            result_chains(c)
                .into_iter()
                .map(|(d, chains)| (d, chains.iter().map(Vec::len).collect()))
                .collect()
        };
        assert_eq!(lengths(&slim.config), lengths(&min_parts.config), "{max}");
        // Links are untouched.
        assert_eq!(input_links(&slim.config), input_links(&max_parts.config));
        let distinct: BTreeSet<&Digest> = slim.config.layers.iter().map(|l| &l.blob).collect();
        assert_eq!(slim.blobs.len(), distinct.len());
        // The top of the result keeps its diffID across builds.
        let top = |p: &CacheParts| {
            let tip = p.config.layers.iter().find(|l| {
                !p.config
                    .layers
                    .iter()
                    .any(|o| o.parent >= 0 && p.config.layers[o.parent as usize] == **l)
            });
            p.blobs[&tip.unwrap().blob]
                .annotation(ANNOTATION_UNCOMPRESSED)
                .map(str::to_string)
        };
        assert_eq!(top(&slim), top(&min_parts), "{max}");
        // Slimming a min cache changes nothing.
        assert_eq!(slim_to_min(&min_parts), min_parts, "{min}");
        assert_eq!(slim_to_min(&slim), slim);
    }
    // local-min and local-max come from builds that share their blobs: the
    // slimmed layers are exactly the min export's.
    assert_eq!(
        slim_to_min(&load("local-max")).config.layers,
        load("local-min").config.layers
    );
}

#[test]
fn assemble_writes_every_form_with_the_right_media_types() {
    let parts = load("max");
    for (form, oci, want_form, want_type) in [
        (
            Form::ImageManifest,
            true,
            Form::ImageManifest,
            OCI_LAYER_GZIP,
        ),
        (Form::OciIndex, true, Form::OciIndex, OCI_LAYER_GZIP),
        (
            Form::OciIndex,
            false,
            Form::DockerManifestList,
            DOCKER_LAYER_GZIP,
        ),
        (
            Form::DockerManifestList,
            false,
            Form::DockerManifestList,
            DOCKER_LAYER_GZIP,
        ),
    ] {
        let assembled = assemble(&parts, form, oci).unwrap();
        assert_eq!(assembled.manifest.media_type, want_form.media_type());
        let image = CacheImage::decode(&assembled.manifest).unwrap();
        assert_eq!(image.form, want_form);
        assert_eq!(image.config, assembled.config);
        assert_eq!(image.config.media_type, CACHE_CONFIG);
        assert_eq!(image.config.digest, Digest::of(&assembled.config_bytes));
        assert_eq!(assembled.entries, None);
        let layers: Vec<&Descriptor> = image.layers().collect();
        assert_eq!(layers.len(), parts.config.layers.len(), "duplicates kept");
        for (d, l) in layers.iter().zip(&parts.config.layers) {
            assert_eq!(d.digest, l.blob);
            assert_eq!(d.media_type, want_type);
            assert_eq!(d.annotations, parts.blobs[&l.blob].annotations);
        }
    }
    assert!(assemble(&parts, Form::ImageManifest, false).is_err());
    assert!(assemble(&parts, Form::DockerManifestList, true).is_err());

    // zstd keeps its compression across families.
    let zstd = load("max-zstd");
    let docker = assemble(&zstd, Form::OciIndex, false).unwrap();
    let image = CacheImage::decode(&docker.manifest).unwrap();
    assert!(image.layers().all(|d| d.media_type == DOCKER_LAYER_ZSTD));
    let back = CacheParts::from_image(
        &image,
        CacheConfig::from_json(&docker.config_bytes).unwrap(),
        None,
    )
    .unwrap();
    let oci =
        CacheImage::decode(&assemble(&back, Form::ImageManifest, true).unwrap().manifest).unwrap();
    assert!(oci.layers().all(|d| d.media_type == OCI_LAYER_ZSTD));
}

#[test]
fn an_unchanged_buildkit_cache_reassembles_to_its_own_bytes() {
    for (variant, form, oci) in [
        ("max", Form::ImageManifest, true),
        ("min", Form::ImageManifest, true),
        ("max-imgmf-false", Form::OciIndex, true),
        ("max-docker", Form::DockerManifestList, false),
        ("max-zstd", Form::ImageManifest, true),
        ("max-estargz", Form::ImageManifest, true),
        ("max-zstd-imggzip", Form::ImageManifest, true),
        ("local-max", Form::ImageManifest, true),
    ] {
        let (raw, config_bytes) = load_raw(variant);
        let assembled = assemble(&load(variant), form, oci).unwrap();
        assert_eq!(assembled.config_bytes, config_bytes, "{variant}");
        assert_eq!(
            String::from_utf8(assembled.manifest.bytes).unwrap(),
            String::from_utf8(raw.bytes).unwrap(),
            "{variant}"
        );
    }
}

#[test]
fn replace_blobs_rewrites_every_reference() {
    let mut parts = load("local-max");
    let original = parts.clone();
    let replacements: BTreeMap<Digest, Descriptor> = original
        .blobs
        .values()
        .map(|d| {
            let mut new = Descriptor::new(
                OCI_LAYER_ZSTD,
                Digest::of(format!("zstd of {}", d.digest).as_bytes()),
                d.size / 2,
            );
            new.annotations = d.annotations.clone();
            (d.digest.clone(), new)
        })
        .collect();
    replace_blobs(&mut parts, &replacements);
    assert_consistent(&parts);
    assert_eq!(parts.blobs.len(), original.blobs.len());
    assert!(parts.blobs.keys().all(|d| !original.blobs.contains_key(d)));
    assert!(
        parts
            .config
            .layers
            .iter()
            .all(|l| !original.blobs.contains_key(&l.blob))
    );
    // Every result still stands for the same chain, blob by blob.
    let mapped = |chain: &Vec<Digest>| -> Vec<Digest> {
        chain
            .iter()
            .map(|d| replacements[d].digest.clone())
            .collect()
    };
    let want: BTreeMap<Digest, BTreeSet<Vec<Digest>>> = result_chains(&original.config)
        .into_iter()
        .map(|(r, chains)| (r, chains.iter().map(mapped).collect()))
        .collect();
    assert_eq!(result_chains(&parts.config), want);
    let image = CacheImage::decode(
        &assemble(&parts, Form::ImageManifest, true)
            .unwrap()
            .manifest,
    )
    .unwrap();
    assert!(image.layers().all(|d| d.media_type == OCI_LAYER_ZSTD));
    for d in image.layers() {
        assert!(d.annotation(ANNOTATION_UNCOMPRESSED).is_some());
    }

    // regcache's entries follow.
    let mut cache = regcache_parts(&[build_entry("target", &["t1", "t2"])], "max");
    let renamed: BTreeMap<Digest, Descriptor> = ["t1", "t2"]
        .iter()
        .map(|n| {
            let old = built_layer(n).digest;
            let new = Descriptor::new(OCI_LAYER_ZSTD, Digest::of(format!("z{n}").as_bytes()), 7);
            (old, new)
        })
        .collect();
    replace_blobs(&mut cache, &renamed);
    let want: Vec<Digest> = ["t1", "t2"]
        .iter()
        .map(|n| Digest::of(format!("z{n}").as_bytes()))
        .collect();
    assert_eq!(cache.entries.as_ref().unwrap().entries[0].layers, want);
    assert_eq!(entry_blobs(&cache, "target"), want);
}

/// A BuildKit-like cache of `n` one-layer records, every name distinct.
fn big_cache(tag: &str, n: usize) -> CacheParts {
    let mut layers: Vec<CacheLayer> = (0..n)
        .map(|i| CacheLayer {
            blob: Digest::of(format!("{tag} layer {i}").as_bytes()),
            parent: -1,
            annotations: None,
        })
        .collect();
    layers.sort_by(|a, b| a.blob.cmp(&b.blob));
    let mut records: Vec<CacheRecord> = (0..n)
        .map(|i| CacheRecord {
            results: vec![CacheResult {
                layer: i,
                created_at: Some("2026-11-23T03:19:11.064733251Z".into()),
            }],
            chains: vec![],
            digest: Digest::of(format!("{tag} record {i}").as_bytes()),
            inputs: vec![],
        })
        .collect();
    records.sort_by(|a, b| a.digest.cmp(&b.digest));
    let blobs = layers
        .iter()
        .map(|l| {
            (
                l.blob.clone(),
                Descriptor::new(OCI_LAYER_GZIP, l.blob.clone(), 1),
            )
        })
        .collect();
    CacheParts {
        config: CacheConfig {
            layers,
            records,
            ..CacheConfig::default()
        },
        blobs,
        entries: None,
        annotations: BTreeMap::new(),
    }
}

#[test]
fn a_merge_over_the_import_limit_is_refused() {
    // About 700 KiB each: fine alone, not together.
    let a = big_cache("a", 3000);
    let b = big_cache("b", 3000);
    let size = a.config.to_json().unwrap().len();
    assert!(
        size < MAX_CONFIG_SIZE && 2 * size > MAX_CONFIG_SIZE,
        "{size}"
    );
    assert!(merge(vec![a.clone()]).is_ok());
    let err = merge(vec![a, b]).unwrap_err();
    assert!(
        matches!(err, ImageError::MergeTooLarge { caches: 2, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("merging 2 caches") && text.contains("1048576"),
        "{text}"
    );
}

#[test]
fn invalid_inputs_are_refused() {
    let mut missing = load("min");
    let blob = missing.config.layers[0].blob.clone();
    missing.blobs.remove(&blob);
    let err = merge(vec![load("max"), missing]).unwrap_err();
    assert!(err.to_string().contains(&blob.to_string()), "{err}");

    let mut bad = load("min");
    bad.config.records[0].results.push(CacheResult {
        layer: 99,
        created_at: None,
    });
    assert!(matches!(
        merge(vec![bad]),
        Err(ImageError::InvalidConfig(_))
    ));
}
