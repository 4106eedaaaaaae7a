//! What `regcache inspect` prints, human and `--json`, for every BuildKit
//! fixture variant and for a cache regcache saved, pinned by insta
//! snapshots (tests/snapshots/). Ages, and the regcache cache's creation
//! time and manifest digest, which change from run to run, are redacted.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{build_rich_tree, json_of, regcache, set_mtime};
use regcache::image::{CacheImage, RawManifest};

const VARIANTS: [&str; 12] = [
    "default",
    "min",
    "max",
    "max-docker",
    "max-estargz",
    "max-imgmf-false",
    "max-zstd",
    "max-zstd-imggzip",
    "local-min",
    "local-max",
    "local-max-zstd",
    "local-max-estargz",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/buildkit")
}

/// A `--cache-from` for the fixture. A registry export holds the manifest
/// and config but no layers, which inspect does not read: they are laid
/// out as an OCI layout with just those two blobs.
fn spec_for(variant: &str, tmp: &Path) -> String {
    let dir = fixtures().join(variant);
    if dir.join("layout").exists() {
        return format!("type=local,src={}", dir.join("layout").display());
    }
    let media_type = fs::read_to_string(dir.join("content-type.txt")).unwrap();
    let raw = RawManifest::new(
        media_type.trim(),
        fs::read(dir.join("manifest.json")).unwrap(),
    );
    let image = CacheImage::decode(&raw).unwrap();
    let layout = tmp.join(variant);
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    fs::write(blobs.join(raw.digest.hex()), &raw.bytes).unwrap();
    fs::write(
        blobs.join(image.config.digest.hex()),
        fs::read(dir.join("cacheconfig.json")).unwrap(),
    )
    .unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": raw.media_type,
            "digest": raw.digest.to_string(),
            "size": raw.bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    });
    fs::write(layout.join("index.json"), index.to_string()).unwrap();
    format!("type=local,src={}", layout.display())
}

/// The fixture's cache config, read as plain JSON.
fn cache_config(variant: &str) -> serde_json::Value {
    let dir = fixtures().join(variant);
    let read = |path: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    };
    if !dir.join("layout").exists() {
        return read(dir.join("cacheconfig.json"));
    }
    let blob = |digest: &serde_json::Value| {
        dir.join("layout/blobs/sha256")
            .join(digest.as_str().unwrap().trim_start_matches("sha256:"))
    };
    let index = read(dir.join("layout/index.json"));
    let manifest = read(blob(&index["manifests"][0]["digest"]));
    read(blob(&manifest["config"]["digest"]))
}

fn inspect(cwd: &Path, spec: &str, json: bool) -> std::process::Output {
    let mut cmd = regcache(cwd);
    cmd.arg("inspect");
    if json {
        cmd.arg("--json");
    }
    let output = cmd.arg(spec).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.add_filter(r"\(\d+[smhd](\d+[smhd])? ago\)", "([age] ago)");
    settings.add_redaction(".age_seconds", "[age]");
    settings
}

#[test]
fn inspect_of_every_buildkit_variant() {
    let tmp = tempfile::tempdir().unwrap();
    for variant in VARIANTS {
        let spec = spec_for(variant, tmp.path());
        let human = String::from_utf8(inspect(tmp.path(), &spec, false).stdout).unwrap();
        let json = json_of(&inspect(tmp.path(), &spec, true));
        // What the snapshots cannot say by themselves: one row per config
        // layer, and the blobs among them counted once.
        let config = cache_config(variant);
        let layers = config["layers"].as_array().unwrap();
        let reported = json["layers"].as_array().unwrap();
        assert_eq!(reported.len(), layers.len(), "{variant}");
        for (got, want) in reported.iter().zip(layers) {
            assert_eq!(got["digest"], want["blob"], "{variant}");
        }
        assert_eq!(json["version"], 1, "{variant}");
        settings().bind(|| {
            insta::assert_snapshot!(format!("inspect_human_{variant}"), human);
            insta::assert_json_snapshot!(format!("inspect_json_{variant}"), json);
        });
    }
}

/// BuildKit's own max export: 8 layers in the config and the manifest,
/// one blob in two places.
#[test]
fn inspect_of_buildkit_max_lists_8_layers_of_7_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    for variant in ["max", "local-max"] {
        let json = json_of(&inspect(tmp.path(), &spec_for(variant, tmp.path()), true));
        let layers = json["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 8, "{variant}");
        assert_eq!(json["blobs"], 7, "{variant}");
        let mut digests: Vec<&str> = layers
            .iter()
            .map(|l| l["digest"].as_str().unwrap())
            .collect();
        digests.sort();
        digests.dedup();
        assert_eq!(digests.len(), 7, "{variant}");
        // Every parent names an earlier or later layer of the same list.
        for layer in layers {
            if let Some(parent) = layer["parent"].as_u64() {
                assert!((parent as usize) < layers.len(), "{variant}: {layer}");
            }
        }
        let bases = layers.iter().filter(|l| l["parent"].is_null()).count();
        assert!(bases > 0 && bases < 8, "{variant}");
    }
}

/// A cache regcache saved: its entries table too. The tree's mtimes are
/// fixed so the layers are the same every run; the config records the
/// save's time, so the manifest digest and creation time are redacted.
#[test]
fn inspect_of_a_regcache_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    build_rich_tree(&tree);
    fs::create_dir_all(tmp.path().join("other")).unwrap();
    fs::write(tmp.path().join("other/file"), "x").unwrap();
    set_mtime(&tmp.path().join("other/file"), 1_600_000_000, 0);
    set_mtime(&tmp.path().join("other"), 1_600_000_000, 0);
    set_mtime(&tree, 1_600_000_000, 0);
    let cache = tmp.path().join("cache");
    regcache(tmp.path())
        .args([
            "save",
            "--cache-to",
            &format!("type=local,dest={},mode=max", cache.display()),
            "tree",
            "other",
        ])
        .assert()
        .success();
    let spec = format!("type=local,src={}", cache.display());
    let human = String::from_utf8(inspect(tmp.path(), &spec, false).stdout).unwrap();
    let json = json_of(&inspect(tmp.path(), &spec, true));
    assert!(json["age_seconds"].as_u64().unwrap() < 600, "{json}");
    let mut settings = settings();
    settings.add_filter(
        r"manifest:   sha256:[0-9a-f]{64}",
        "manifest:   sha256:[manifest]",
    );
    settings.add_filter(
        r"created:    \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
        "created:    [time]",
    );
    settings.add_redaction(".manifest_digest", "[manifest]");
    settings.add_redaction(".created_at", "[time]");
    settings.add_redaction(".total_size", "[size]");
    settings.add_filter(r"total size: .*", "total size: [size]");
    settings.bind(|| {
        insta::assert_snapshot!("inspect_human_regcache", human);
        insta::assert_json_snapshot!("inspect_json_regcache", json);
    });
}
