//! `regcache copy` on real BuildKit caches (the fixtures) through a real
//! registry: every conversion, recompression, slimming to min, merging,
//! same-registry mounts, cross-registry streaming and missing sources.
//! After each copy the result is read back and checked: form, media types,
//! annotations, config references, and every layer decompressing to its
//! diffID.

use crate::common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::common::registry::{RegistryOptions, TestRegistry};
use crate::common::{json_of, regcache};
use predicates::prelude::*;
use predicates::str::contains;
use regcache::compression::Compression;
use regcache::digest::Digest;
use regcache::image::{CacheConfig, CacheImage, RawManifest, media_types};

fn fixture(variant: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/buildkit/{variant}/layout"));
    format!("type=local,src={}", dir.display())
}

/// A cache read back from a local layout, with every blob checked.
struct ReadBack {
    image: CacheImage,
    config: CacheConfig,
    raw: RawManifest,
}

fn read_layout(dir: &Path) -> ReadBack {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let entry = &index["manifests"][0];
    let digest: Digest = entry["digest"].as_str().unwrap().parse().unwrap();
    let bytes = fs::read(blob_path(dir, &digest)).unwrap();
    let raw = RawManifest::new(entry["mediaType"].as_str().unwrap(), bytes);
    let image = CacheImage::decode(&raw).unwrap();
    let config =
        CacheConfig::from_json(&fs::read(blob_path(dir, &image.config.digest)).unwrap()).unwrap();
    for layer in config.layers.iter() {
        let desc = image
            .find_blob(&layer.blob)
            .unwrap_or_else(|| panic!("config names {} but the manifest does not", layer.blob));
        let blob = fs::read(blob_path(dir, &desc.digest)).unwrap();
        assert_eq!(Digest::of(&blob), desc.digest, "blob content");
        let compression = media_types::layer_compression(&desc.media_type).unwrap();
        let mut tar = Vec::new();
        regcache::layer::codec::decompress_reader(&blob[..], compression)
            .unwrap()
            .read_to_end(&mut tar)
            .unwrap();
        let diff_id = desc
            .annotation(media_types::ANNOTATION_UNCOMPRESSED)
            .expect("diffID annotation");
        assert_eq!(
            Digest::of(&tar).to_string(),
            diff_id,
            "layer {} does not decompress to its diffID",
            desc.digest
        );
    }
    ReadBack { image, config, raw }
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(digest.hex())
}

fn diff_ids(read: &ReadBack) -> Vec<String> {
    let mut ids: Vec<String> = read
        .image
        .layers()
        .map(|d| {
            d.annotation(media_types::ANNOTATION_UNCOMPRESSED)
                .unwrap()
                .to_string()
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn results(config: &CacheConfig) -> usize {
    config
        .records
        .iter()
        .filter(|r| !r.results.is_empty() || !r.chains.is_empty())
        .count()
}

/// Copies `from` into the registry under `repo_tag` with `params`, then
/// back into a fresh local layout, which is read and checked.
fn through_registry(registry: &TestRegistry, from: &str, repo_tag: &str, params: &str) -> ReadBack {
    let tmp = tempfile::tempdir().unwrap();
    let mut to = format!("type=registry,ref={}/{repo_tag}", registry.host());
    if !params.is_empty() {
        to.push(',');
        to.push_str(params);
    }
    regcache(tmp.path())
        .args(["copy", "--cache-from", from, "--cache-to", &to])
        .assert()
        .success();
    let back = tmp.path().join("back");
    regcache(tmp.path())
        .args([
            "copy",
            "--cache-from",
            &format!("{}/{repo_tag}", registry.host()),
        ])
        .args([
            "--cache-to",
            &format!("type=local,dest={},mode=max", back.display()),
        ])
        .assert()
        .success();
    read_layout(&back)
}

#[test]
fn every_form_conversion_round_trips_through_a_registry() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let original = read_layout(&PathBuf::from(
        fixture("local-max").trim_start_matches("type=local,src="),
    ));
    for (tag, params, form, oci) in [
        ("manifest", "mode=max", "image-manifest", true),
        ("index", "mode=max,image-manifest=false", "oci-index", true),
        (
            "docker",
            "mode=max,oci-mediatypes=false",
            "docker-manifest-list",
            false,
        ),
    ] {
        let copied = through_registry(
            &registry,
            &fixture("local-max"),
            &format!("conv/cache:{tag}"),
            params,
        );
        // Read back into a local layout (an image manifest) after the
        // registry held it in `form`; check the registry's form too.
        let tmp = tempfile::tempdir().unwrap();
        let report = json_of(
            &regcache(tmp.path())
                .args([
                    "inspect",
                    "--json",
                    &format!("{}/conv/cache:{tag}", registry.host()),
                ])
                .output()
                .unwrap(),
        );
        assert_eq!(report["form"], form, "{tag}");
        for layer in report["layers"].as_array().unwrap() {
            let media_type = layer["media_type"].as_str().unwrap();
            assert_eq!(
                media_type.starts_with("application/vnd.oci."),
                oci,
                "{tag}: {media_type}"
            );
        }
        assert_eq!(diff_ids(&copied), diff_ids(&original), "{tag}");
        assert_eq!(
            copied.config.records.len(),
            original.config.records.len(),
            "{tag}"
        );
        assert_eq!(results(&copied.config), results(&original.config), "{tag}");
    }
}

#[test]
fn force_compression_recompresses_and_keeps_diff_ids() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let original = read_layout(&PathBuf::from(
        fixture("local-max").trim_start_matches("type=local,src="),
    ));
    let copied = through_registry(
        &registry,
        &fixture("local-max"),
        "zstd/cache:forced",
        "mode=max,compression=zstd,force-compression=true",
    );
    for layer in copied.image.layers() {
        assert_eq!(
            media_types::layer_compression(&layer.media_type),
            Some(Compression::Zstd)
        );
        assert!(
            original.image.find_blob(&layer.digest).is_none(),
            "blob digest unchanged"
        );
    }
    assert_eq!(diff_ids(&copied), diff_ids(&original));

    // Without force-compression, layers keep their codec, as in BuildKit.
    let kept = through_registry(
        &registry,
        &fixture("local-max"),
        "zstd/cache:unforced",
        "mode=max,compression=zstd",
    );
    for layer in kept.image.layers() {
        assert_eq!(
            media_types::layer_compression(&layer.media_type),
            Some(Compression::Gzip)
        );
    }
}

#[test]
fn mode_min_slims_a_max_cache_like_buildkit_does() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let min = read_layout(&PathBuf::from(
        fixture("local-min").trim_start_matches("type=local,src="),
    ));
    let slimmed = through_registry(
        &registry,
        &fixture("local-max"),
        "slim/cache:min",
        "mode=min",
    );
    assert_eq!(results(&slimmed.config), results(&min.config));
    assert_eq!(slimmed.config.layers.len(), min.config.layers.len());
    assert_eq!(slimmed.config.records.len(), min.config.records.len());
}

#[test]
fn a_merge_is_the_union_of_its_sources() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let max = read_layout(&PathBuf::from(
        fixture("local-max").trim_start_matches("type=local,src="),
    ));
    let zstd = read_layout(&PathBuf::from(
        fixture("local-max-zstd").trim_start_matches("type=local,src="),
    ));
    let tmp = tempfile::tempdir().unwrap();
    let to = format!(
        "type=registry,ref={}/merged/cache:all,mode=max",
        registry.host()
    );
    regcache(tmp.path())
        .args([
            "copy",
            "--cache-from",
            &fixture("local-max"),
            "--cache-from",
            &fixture("local-max-zstd"),
        ])
        .args(["--cache-to", &to])
        .assert()
        .success();
    let back = tmp.path().join("back");
    regcache(tmp.path())
        .args([
            "copy",
            "--cache-from",
            &format!("{}/merged/cache:all", registry.host()),
        ])
        .args([
            "--cache-to",
            &format!("type=local,dest={},mode=max", back.display()),
        ])
        .assert()
        .success();
    let merged = read_layout(&back);
    let mut blobs: Vec<_> = max
        .image
        .layers()
        .chain(zstd.image.layers())
        .map(|d| d.digest.clone())
        .collect();
    blobs.sort();
    blobs.dedup();
    let mut got: Vec<_> = merged.image.layers().map(|d| d.digest.clone()).collect();
    got.sort();
    got.dedup();
    assert_eq!(got, blobs);
    // Records are united by digest: both builds ran the same steps, so
    // they share digests, and the merge holds each exactly once.
    let digests = |config: &regcache::image::CacheConfig| -> std::collections::BTreeSet<String> {
        config
            .records
            .iter()
            .map(|r| r.digest.to_string())
            .collect()
    };
    let union: std::collections::BTreeSet<String> = digests(&max.config)
        .union(&digests(&zstd.config))
        .cloned()
        .collect();
    assert!(union.len() < max.config.records.len() + zstd.config.records.len());
    assert_eq!(merged.config.records.len(), union.len());
    assert_eq!(digests(&merged.config), union);
}

#[test]
fn a_copy_without_conversion_keeps_the_manifest_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let original = read_layout(&PathBuf::from(
        fixture("local-max").trim_start_matches("type=local,src="),
    ));
    let dest = tmp.path().join("same");
    regcache(tmp.path())
        .args(["copy", "--cache-from", &fixture("local-max"), "--cache-to"])
        .arg(format!("type=local,dest={},mode=max", dest.display()))
        .assert()
        .success();
    let copied = read_layout(&dest);
    assert_eq!(copied.raw.digest, original.raw.digest);
}

#[test]
fn a_same_registry_copy_mounts_and_a_cross_registry_copy_streams() {
    let first = TestRegistry::start(RegistryOptions::default());
    let second = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let seed = format!("{}/team/app:main", first.host());
    regcache(tmp.path())
        .args([
            "copy",
            "--cache-from",
            &fixture("local-max"),
            "--cache-to",
            &format!("type=registry,ref={seed},mode=max"),
        ])
        .assert()
        .success();

    let meta = tmp.path().join("meta.json");
    regcache(tmp.path())
        .args([
            "--metadata-file",
            meta.to_str().unwrap(),
            "copy",
            "--cache-from",
            &seed,
        ])
        .args([
            "--cache-to",
            &format!(
                "type=registry,ref={}/team/app:branch,mode=max",
                first.host()
            ),
        ])
        .args([
            "--cache-to",
            &format!(
                "type=registry,ref={}/mirror/app:main,mode=max",
                second.host()
            ),
        ])
        .assert()
        .success();
    let meta: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    let mounted = &meta["cache_to"][0];
    assert!(
        mounted["uploaded_bytes"].as_u64().unwrap() < 16 * 1024,
        "same registry sent bytes: {mounted}"
    );
    let streamed = &meta["cache_to"][1];
    assert!(
        streamed["uploaded_bytes"].as_u64().unwrap() > 4_000_000,
        "{streamed}"
    );
    for source in [
        format!("{}/team/app:branch", first.host()),
        format!("{}/mirror/app:main", second.host()),
    ] {
        let back = tmp.path().join(source.replace([':', '/'], "_"));
        regcache(tmp.path())
            .args([
                "copy",
                "--cache-from",
                &source,
                "--cache-to",
                &format!("type=local,dest={},mode=max", back.display()),
            ])
            .assert()
            .success();
        read_layout(&back);
    }
}

#[test]
fn a_missing_source_is_a_warning_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    let missing = format!("type=local,src={}", tmp.path().join("nope").display());
    regcache(tmp.path())
        .args([
            "copy",
            "--cache-from",
            &missing,
            "--cache-to",
            &format!("type=local,dest={}", dest.display()),
        ])
        .assert()
        .success()
        .stderr(contains("not found").and(contains("nothing to copy")));
    assert!(!dest.exists());
    regcache(tmp.path())
        .args([
            "copy",
            "--fail-on-miss",
            "--cache-from",
            &missing,
            "--cache-to",
            &format!("type=local,dest={}", dest.display()),
        ])
        .assert()
        .code(1);
}

#[test]
fn a_regcache_cache_survives_a_copy_and_still_restores() {
    let tmp = tempfile::tempdir().unwrap();
    common::build_rich_tree(&tmp.path().join("tree"));
    let a = tmp.path().join("a");
    regcache(tmp.path())
        .args([
            "save",
            "--cache-to",
            &format!("type=local,dest={}", a.display()),
            "tree",
        ])
        .assert()
        .success();
    let b = tmp.path().join("b");
    regcache(tmp.path())
        .args([
            "copy",
            "--cache-from",
            &format!("type=local,src={}", a.display()),
        ])
        .args([
            "--cache-to",
            &format!(
                "type=local,dest={},compression=zstd,force-compression=true,image-manifest=false",
                b.display()
            ),
        ])
        .assert()
        .success();
    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    regcache(&dst)
        .args([
            "restore",
            "--cache-from",
            &format!("type=local,src={}", b.display()),
        ])
        .assert()
        .success();
    assert_eq!(
        common::snapshot(&tmp.path().join("tree")),
        common::snapshot(&dst.join("tree"))
    );
}

#[test]
fn force_compression_to_estargz_writes_toc_annotations() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("estargz");
    regcache(tmp.path())
        .args([
            "copy",
            "--cache-from",
            &fixture("local-max-zstd"),
            "--cache-to",
        ])
        .arg(format!(
            "type=local,dest={},mode=max,compression=estargz,force-compression=true",
            dest.display()
        ))
        .assert()
        .success();
    let copied = read_layout(&dest);
    for layer in copied.image.layers() {
        assert_eq!(
            media_types::layer_compression(&layer.media_type),
            Some(Compression::Gzip)
        );
        let annotation = |key: &str| {
            layer
                .annotation(key)
                .unwrap_or_else(|| panic!("{key} missing on {layer:?}"))
        };
        let blob = fs::read(blob_path(&dest, &layer.digest)).unwrap();
        // Read by the spec: the TOC annotation names the TOC in the blob,
        // and the recompressed blob still holds the layer's diffID.
        common::estargz::check_estargz(
            &blob,
            &common::estargz::Expect {
                toc_digest: annotation(media_types::ANNOTATION_STARGZ_TOC),
                diff_id: annotation(media_types::ANNOTATION_UNCOMPRESSED),
                uncompressed_size: annotation(media_types::ANNOTATION_ESTARGZ_UNCOMPRESSED_SIZE)
                    .parse()
                    .unwrap(),
            },
        );
    }
    let report = json_of(
        &regcache(tmp.path())
            .args([
                "inspect",
                "--json",
                &format!("type=local,src={}", dest.display()),
            ])
            .output()
            .unwrap(),
    );
    for layer in report["layers"].as_array().unwrap() {
        assert_eq!(layer["compression"], "estargz");
    }
}

#[test]
fn the_summary_names_the_caches_read_and_missed() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = format!("type=local,src={}", tmp.path().join("nope").display());
    regcache(tmp.path())
        .args([
            "copy",
            "--cache-from",
            &fixture("local-min"),
            "--cache-from",
            &missing,
        ])
        .args([
            "--cache-to",
            &format!("type=local,dest={}", tmp.path().join("out").display()),
        ])
        .assert()
        .success()
        .stderr(
            contains("copy: read 1 of 2 caches")
                .and(contains("miss  "))
                .and(contains("save:").not()),
        );
}

#[test]
fn a_blob_going_to_several_targets_is_downloaded_once() {
    use common::proxy::{Proxy, ProxyOptions};
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let seed = format!("{}/src/app:cache", registry.host());
    regcache(tmp.path())
        .args([
            "copy",
            "--cache-from",
            &fixture("local-max"),
            "--cache-to",
            &format!("type=registry,ref={seed},mode=max"),
        ])
        .assert()
        .success();
    let proxy = Proxy::start(registry.addr, ProxyOptions::default());
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    regcache(tmp.path())
        .args([
            "copy",
            "--cache-from",
            &format!("{}/src/app:cache", proxy.host()),
        ])
        .args([
            "--cache-to",
            &format!("type=local,dest={},mode=max", a.display()),
        ])
        .args([
            "--cache-to",
            &format!(
                "type=local,dest={},mode=max,image-manifest=false",
                b.display()
            ),
        ])
        .assert()
        .success();
    let mut gets: Vec<String> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET" && s.target.contains("/blobs/sha256:"))
        .map(|s| s.target)
        .collect();
    let total = gets.len();
    gets.sort();
    gets.dedup();
    assert_eq!(
        total,
        gets.len(),
        "a blob was downloaded more than once: {gets:?}"
    );
    read_layout(&a);
}
