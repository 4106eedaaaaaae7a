//! The compression each command writes when the spec does not say: zstd for
//! `save` and `run` (only regcache reads their layers), the source's for
//! `copy` (a copy changes what it is asked to); an explicit `compression=`
//! wins.
//! Checked on the layer media types actually written, and on the bytes.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{build_rich_tree, regcache, snapshot};

const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The media types of the layers in the layout's (only) image manifest;
/// each blob's first bytes are checked to be that codec's magic number.
fn layer_types(layout: &Path) -> Vec<String> {
    let index = read_json(&layout.join("index.json"));
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest = read_json(&blob(layout, manifest_digest));
    // regcache's own entries blob sits among the layers; it is no layer.
    let layers: Vec<&serde_json::Value> = manifest["layers"]
        .as_array()
        .expect("an image manifest")
        .iter()
        .filter(|l| regcache::image::media_types::is_layer(l["mediaType"].as_str().unwrap()))
        .collect();
    assert!(!layers.is_empty(), "no layers in {}", layout.display());
    layers
        .into_iter()
        .map(|layer| {
            let media_type = layer["mediaType"].as_str().unwrap().to_string();
            let bytes = fs::read(blob(layout, layer["digest"].as_str().unwrap())).unwrap();
            let magic: &[u8] = match media_type.as_str() {
                GZIP => &[0x1f, 0x8b],
                ZSTD => &[0x28, 0xb5, 0x2f, 0xfd],
                other => panic!("unexpected layer type {other}"),
            };
            assert!(
                bytes.starts_with(magic),
                "{media_type} blob without its magic"
            );
            media_type
        })
        .collect()
}

fn assert_all(types: &[String], wanted: &str) {
    assert!(
        types.iter().all(|t| t == wanted),
        "{types:?}, wanted {wanted}"
    );
}

/// Saves a rich tree with `spec_extra` appended to a local spec; returns
/// the cache directory's layer types after checking the tree restores.
fn save_and_restore(spec_extra: &str) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let (run1, run2, cache) = (
        tmp.path().join("run1"),
        tmp.path().join("run2"),
        tmp.path().join("cache"),
    );
    build_rich_tree(&run1.join("tree"));
    fs::create_dir_all(&run2).unwrap();
    let spec = format!("type=local,dest={}{spec_extra}", cache.display());
    regcache(&run1)
        .args(["save", "--cache-to", &spec, "tree"])
        .assert()
        .success();
    regcache(&run2)
        .args([
            "restore",
            "--cache-from",
            &format!("type=local,src={}", cache.display()),
        ])
        .assert()
        .success();
    assert_eq!(snapshot(&run1.join("tree")), snapshot(&run2.join("tree")));
    layer_types(&cache)
}

#[test]
fn save_without_compression_writes_zstd() {
    assert_all(&save_and_restore(""), ZSTD);
}

#[test]
fn save_with_explicit_gzip_writes_gzip() {
    assert_all(&save_and_restore(",compression=gzip"), GZIP);
}

/// A level alone is the default codec's level: 19 is a zstd level, and
/// would be refused for gzip (0-9).
#[test]
fn save_with_a_level_alone_takes_it_as_a_zstd_level() {
    assert_all(&save_and_restore(",compression-level=19"), ZSTD);
}

#[test]
fn run_without_compression_writes_zstd() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    regcache(tmp.path())
        .args([
            "run",
            "--cache-to",
            &format!("type=local,dest={}", cache.display()),
            "--path",
            "out",
            "--",
            "sh",
            "-c",
            "mkdir -p out && echo built > out/file",
        ])
        .assert()
        .success();
    assert_all(&layer_types(&cache), ZSTD);
}

fn fixture(variant: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/buildkit/{variant}/layout"))
}

fn copy(from: &Path, to_extra: &str) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    regcache(tmp.path())
        .args([
            "copy",
            "--cache-from",
            &format!("type=local,src={}", from.display()),
            "--cache-to",
            &format!("type=local,dest={}{to_extra}", out.display()),
        ])
        .assert()
        .success();
    layer_types(&out)
}

/// A bare copy of a BuildKit gzip cache stays gzip.
#[test]
fn copy_keeps_gzip() {
    assert_all(&layer_types(&fixture("local-max")), GZIP);
    assert_all(&copy(&fixture("local-max"), ""), GZIP);
}

/// With force-compression and no compression=, copy has no other codec to
/// force: the layers keep the source's. With compression=gzip it has one.
#[test]
fn copy_forced_without_compression_keeps_the_source_s() {
    assert_all(&layer_types(&fixture("local-max-zstd")), ZSTD);
    assert_all(
        &copy(&fixture("local-max-zstd"), ",force-compression=true"),
        ZSTD,
    );
    assert_all(
        &copy(
            &fixture("local-max-zstd"),
            ",compression=gzip,force-compression=true",
        ),
        GZIP,
    );
}
