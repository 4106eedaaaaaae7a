//! Bad specs and flags exit 2 before any I/O; --dry-run shows the plan.

use crate::common;

use crate::common::{build_rich_tree, json_of, regcache, snapshot};
use predicates::prelude::*;
use predicates::str::contains;

#[test]
fn a_bad_spec_exits_2_naming_the_field_and_touches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("d")).unwrap();
    let dest = tmp.path().join("cache");
    for (spec, needles) in [
        (
            format!("type=local,dest={},mdoe=max", dest.display()),
            vec!["mdoe", "did you mean", "mode"],
        ),
        (
            format!("type=local,dest={},mode=foo", dest.display()),
            vec!["mode", "foo", "max"],
        ),
        (
            format!("type=local,dest={},compression=lz4", dest.display()),
            vec!["compression", "lz4", "zstd"],
        ),
        (
            format!(
                "type=local,dest={},compression=zstd,compression-level=23",
                dest.display()
            ),
            vec!["compression-level", "23", "22"],
        ),
        (
            format!(
                "type=local,dest={},oci-mediatypes=false,image-manifest=true",
                dest.display()
            ),
            vec!["image-manifest", "oci-mediatypes"],
        ),
        (
            format!("type=local,dest={},ignore-error=maybe", dest.display()),
            vec!["ignore-error", "maybe"],
        ),
        ("type=gha".to_string(), vec!["gha", "not supported"]),
        ("type=local".to_string(), vec!["dest"]),
    ] {
        let assert = regcache(tmp.path())
            .args(["save", "--cache-to", &spec, "d"])
            .assert()
            .code(2);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "{spec}: stderr lacks {needle:?}: {stderr}"
            );
        }
        assert!(!dest.exists(), "{spec}: touched the target");
    }
}

/// compression=estargz: save writes eStargz layers with BuildKit's two
/// extra annotations, and restore reads them back to the same tree.
#[test]
fn estargz_saves_with_its_annotations_and_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let (run1, run2, cache) = (
        tmp.path().join("run1"),
        tmp.path().join("run2"),
        tmp.path().join("cache"),
    );
    build_rich_tree(&run1.join("tree"));
    std::fs::create_dir_all(&run2).unwrap();
    regcache(&run1)
        .args([
            "save",
            "--cache-to",
            &format!(
                "type=local,dest={},compression=estargz,image-manifest=true",
                cache.display()
            ),
            "tree",
        ])
        .assert()
        .success();

    let blob = |digest: &str| {
        cache
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let read_json = |path: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let index = read_json(cache.join("index.json"));
    let manifest = read_json(blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let layers: Vec<&serde_json::Value> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip")
        .collect();
    assert!(!layers.is_empty());
    for layer in layers {
        let a = &layer["annotations"];
        let toc = a["containerd.io/snapshot/stargz/toc.digest"]
            .as_str()
            .expect("a TOC digest annotation");
        assert!(toc.starts_with("sha256:"), "{toc}");
        let size: u64 = a["io.containers.estargz.uncompressed-size"]
            .as_str()
            .expect("an estargz uncompressed-size annotation")
            .parse()
            .unwrap();
        assert_eq!(
            a["dev.regcache.uncompressed-size"].as_str(),
            Some(size.to_string().as_str())
        );
        // The whole structure, read by the spec: the annotation names the
        // TOC actually in the blob, and the diffID and size are the tar's.
        let bytes = std::fs::read(blob(layer["digest"].as_str().unwrap())).unwrap();
        common::estargz::check_estargz(
            &bytes,
            &common::estargz::Expect {
                toc_digest: toc,
                diff_id: a["containerd.io/uncompressed"]
                    .as_str()
                    .expect("a diffID annotation"),
                uncompressed_size: size,
            },
        );
    }

    regcache(&run2)
        .args([
            "restore",
            "--cache-from",
            &format!("type=local,src={}", cache.display()),
        ])
        .assert()
        .success();
    let (expected, expected_links) = snapshot(&run1.join("tree"));
    let (actual, actual_links) = snapshot(&run2.join("tree"));
    assert_eq!(expected, actual);
    assert_eq!(expected_links, actual_links);
}

#[test]
fn dry_run_json_prints_every_effective_parameter() {
    let tmp = tempfile::tempdir().unwrap();
    let output = regcache(tmp.path())
        .args([
            "save",
            "--dry-run",
            "--json",
            "--cache-to",
            "type=local,dest=out,oci-mediatypes=false",
            "--cache-to",
            "user/app:cache",
            "target",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let plan = json_of(&output);
    assert_eq!(plan["command"], "save");
    assert_eq!(plan["paths"], serde_json::json!(["target"]));
    let local = &plan["cache_to"][0];
    assert_eq!(local["type"], "local");
    assert_eq!(local["dest"], "out");
    assert_eq!(local["tag"], "latest");
    assert_eq!(local["mode"], "min");
    assert_eq!(local["oci_mediatypes"], false);
    assert_eq!(local["image_manifest"], false);
    // save's own default, and the level zstd uses without one.
    assert_eq!(local["compression"], "zstd");
    assert_eq!(local["compression_level"], 3);
    assert_eq!(local["defaults"], "regcache");
    assert_eq!(local["force_compression"], false);
    assert_eq!(local["ignore_error"], false);
    let registry = &plan["cache_to"][1];
    assert_eq!(registry["type"], "registry");
    assert_eq!(registry["ref"], "docker.io/user/app:cache");
    assert_eq!(registry["image_manifest"], true);
    assert!(!tmp.path().join("out").exists());

    // copy keeps the source's compression, unless the spec names one.
    let output = regcache(tmp.path())
        .args(["copy", "--dry-run", "--json"])
        .args(["--cache-from", "type=local,src=in"])
        .args(["--cache-to", "type=local,dest=out"])
        .args(["--cache-to", "type=local,dest=out2,compression=gzip"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let plan = json_of(&output);
    assert_eq!(plan["cache_to"][0]["compression"], "as the source");
    assert_eq!(plan["cache_to"][0]["compression_level"], "as the source");
    assert_eq!(plan["cache_to"][0]["defaults"], "source");
    assert_eq!(plan["cache_to"][1]["compression"], "gzip");
    assert_eq!(plan["cache_to"][1]["compression_level"], 6);

    let output = regcache(tmp.path())
        .args(["restore", "--dry-run", "--json", "--cache-from", "type=local,src=in,digest=sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"])
        .output()
        .unwrap();
    let plan = json_of(&output);
    assert_eq!(plan["command"], "restore");
    assert_eq!(plan["cache_from"][0]["src"], "in");
    assert_eq!(plan["cache_from"][0]["tag"], "latest");
    assert_eq!(
        plan["cache_from"][0]["digest"],
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(plan["paths"], serde_json::json!([]));
}

#[test]
fn dry_run_human_shows_the_effective_spec() {
    let tmp = tempfile::tempdir().unwrap();
    regcache(tmp.path())
        .args([
            "save",
            "--dry-run",
            "--cache-to",
            "type=local,dest=out,MODE=max",
            "target",
        ])
        .assert()
        .success()
        .stdout(
            contains("mode=max")
                .and(contains("compression=zstd"))
                .and(contains("defaults    BuildKit's, except compression=zstd"))
                .and(contains("target")),
        );
}

#[test]
fn json_without_dry_run_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    regcache(tmp.path())
        .args([
            "save",
            "--json",
            "--cache-to",
            "type=local,dest=out",
            "target",
        ])
        .assert()
        .code(2);
}
