//! Bad specs and flags exit 2 before any I/O; --dry-run shows the plan.

mod common;

use common::{json_of, regcache};
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

#[test]
fn estargz_parses_but_save_refuses_it_for_now() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("d")).unwrap();
    let dest = tmp.path().join("cache");
    regcache(tmp.path())
        .args([
            "save",
            "--cache-to",
            &format!("type=local,dest={},compression=estargz", dest.display()),
            "d",
        ])
        .assert()
        .code(2)
        .stderr(contains("estargz").and(contains("not supported")));
    assert!(!dest.exists());
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
    assert_eq!(local["compression"], "gzip");
    assert!(local["compression_level"].is_null());
    assert_eq!(local["force_compression"], false);
    assert_eq!(local["ignore_error"], false);
    let registry = &plan["cache_to"][1];
    assert_eq!(registry["type"], "registry");
    assert_eq!(registry["ref"], "docker.io/user/app:cache");
    assert_eq!(registry["image_manifest"], true);
    assert!(!tmp.path().join("out").exists());

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
                .and(contains("compression=gzip"))
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
