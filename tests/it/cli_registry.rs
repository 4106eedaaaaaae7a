//! The main job against a real Distribution registry: round trips, several
//! targets, fallback order and every tolerance rule of the design.

use std::fs;
use std::path::Path;

use crate::common::registry::{RegistryOptions, TestRegistry, free_loopback_port};
use crate::common::{build_rich_tree, json_of, regcache, snapshot};
use predicates::prelude::*;
use predicates::str::contains;

fn reg_to(registry: &TestRegistry, repo_tag: &str, extra: &str) -> String {
    let mut spec = format!("type=registry,ref={}/{repo_tag}", registry.host());
    if !extra.is_empty() {
        spec.push(',');
        spec.push_str(extra);
    }
    spec
}

fn reg_from(registry: &TestRegistry, repo_tag: &str) -> String {
    format!("type=registry,ref={}/{repo_tag}", registry.host())
}

fn metadata(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).expect("metadata file written"))
        .expect("metadata is JSON")
}

#[test]
fn round_trip_through_a_registry_keeps_every_metadata_field() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let (run1, run2) = (tmp.path().join("run1"), tmp.path().join("run2"));
    build_rich_tree(&run1.join("tree"));
    fs::create_dir_all(&run2).unwrap();
    regcache(&run1)
        .args([
            "save",
            "--cache-to",
            &reg_to(&registry, "app/cache:main", "compression=zstd"),
            "tree",
        ])
        .assert()
        .success();
    regcache(&run2)
        .args([
            "restore",
            "--cache-from",
            &reg_from(&registry, "app/cache:main"),
        ])
        .assert()
        .success();
    assert_eq!(snapshot(&run1.join("tree")), snapshot(&run2.join("tree")));
}

#[test]
fn several_targets_of_both_types_each_get_a_complete_cache() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    build_rich_tree(&tmp.path().join("tree"));
    let local = tmp.path().join("local-cache");
    let meta = tmp.path().join("meta.json");
    regcache(tmp.path())
        .args(["--metadata-file", meta.to_str().unwrap(), "save"])
        .args([
            "--cache-to",
            &reg_to(&registry, "app/cache:gzip", "compression=gzip"),
        ])
        .args([
            "--cache-to",
            &reg_to(
                &registry,
                "app/cache:zstd",
                "compression=zstd,image-manifest=false",
            ),
        ])
        .args([
            "--cache-to",
            &format!("type=local,dest={},compression=gzip", local.display()),
        ])
        .arg("tree")
        .assert()
        .success();
    let meta = metadata(&meta);
    let targets = meta["cache_to"].as_array().unwrap();
    assert_eq!(targets.len(), 3);
    assert!(
        targets[0]["ref"]
            .as_str()
            .unwrap()
            .ends_with("app/cache:gzip")
    );
    assert!(
        targets[2]["dest"]
            .as_str()
            .unwrap()
            .ends_with("local-cache")
    );
    for target in targets {
        assert!(target["digest"].as_str().unwrap().starts_with("sha256:"));
    }
    for from in [
        reg_from(&registry, "app/cache:gzip"),
        reg_from(&registry, "app/cache:zstd"),
        format!("type=local,src={}", local.display()),
    ] {
        let dst = tempfile::tempdir().unwrap();
        regcache(dst.path())
            .args(["restore", "--cache-from", &from])
            .assert()
            .success();
        assert_eq!(
            snapshot(&tmp.path().join("tree")),
            snapshot(&dst.path().join("tree")),
            "{from}"
        );
    }
    // gzip to the registry and gzip to the local dir share their layers:
    // compressed once, written twice.
    let inspect = |spec: &str| -> serde_json::Value {
        let out = regcache(tmp.path())
            .args(["inspect", "--json", spec])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let a = inspect(&reg_from(&registry, "app/cache:gzip"));
    let b = inspect(&format!("type=local,src={}", local.display()));
    assert_eq!(a["layers"], b["layers"]);
    assert_eq!(
        inspect(&reg_from(&registry, "app/cache:zstd"))["form"],
        "oci-index"
    );
}

#[test]
fn each_path_comes_from_the_first_ref_that_holds_it() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("x")).unwrap();
    fs::create_dir_all(src.join("y")).unwrap();
    fs::write(src.join("x/f"), "x main").unwrap();
    fs::write(src.join("y/f"), "y main").unwrap();
    regcache(&src)
        .args([
            "save",
            "--cache-to",
            &reg_to(&registry, "app/cache:main", ""),
            "x",
            "y",
        ])
        .assert()
        .success();
    fs::write(src.join("x/f"), "x branch").unwrap();
    regcache(&src)
        .args([
            "save",
            "--cache-to",
            &reg_to(&registry, "app/cache:feature", ""),
            "x",
        ])
        .assert()
        .success();
    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    let meta = tmp.path().join("meta.json");
    regcache(&dst)
        .args(["--metadata-file", meta.to_str().unwrap(), "restore"])
        .args([
            "--cache-from",
            &reg_from(&registry, "app/cache:missing-branch"),
        ])
        .args(["--cache-from", &reg_from(&registry, "app/cache:feature")])
        .args(["--cache-from", &reg_from(&registry, "app/cache:main")])
        .assert()
        .success()
        .stderr(contains("missing-branch").and(contains("not found")));
    assert_eq!(fs::read_to_string(dst.join("x/f")).unwrap(), "x branch");
    assert_eq!(fs::read_to_string(dst.join("y/f")).unwrap(), "y main");
    let meta = metadata(&meta);
    let paths = meta["paths"].as_array().unwrap();
    let x = paths.iter().find(|p| p["path"] == "x").unwrap();
    assert_eq!(x["hit"], true);
    assert!(x["from"].as_str().unwrap().contains("feature"));
}

#[test]
fn unreachable_and_unauthorized_caches_are_warnings() {
    let auth_registry = TestRegistry::start(RegistryOptions {
        htpasswd: true,
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let dead = free_loopback_port();
    let empty_config = tmp.path().join("docker-config");
    fs::create_dir_all(&empty_config).unwrap();
    for from in [
        format!("{dead}/app/cache:main"),
        reg_from(&auth_registry, "app/cache:main"),
    ] {
        regcache(tmp.path())
            .env("DOCKER_CONFIG", &empty_config)
            .args(["restore", "--cache-from", &from, "target"])
            .assert()
            .success()
            .stderr(
                contains("warning:").and(contains(from.trim_start_matches("type=registry,ref="))),
            );
        regcache(tmp.path())
            .env("DOCKER_CONFIG", &empty_config)
            .args(["restore", "--fail-on-miss", "--cache-from", &from, "target"])
            .assert()
            .code(1);
    }
}

#[test]
fn a_failed_export_exits_1_unless_ignore_error_and_a_bad_spec_still_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("d")).unwrap();
    fs::write(tmp.path().join("d/f"), "x").unwrap();
    let dead = free_loopback_port();
    let target = format!("type=registry,ref={dead}/app/cache:main");
    regcache(tmp.path())
        .args(["save", "--cache-to", &target, "d"])
        .assert()
        .code(1)
        .stderr(contains(dead.to_string()));
    regcache(tmp.path())
        .args([
            "save",
            "--cache-to",
            &format!("{target},ignore-error=true"),
            "d",
        ])
        .assert()
        .success()
        .stderr(contains("warning:"));
    regcache(tmp.path())
        .args([
            "save",
            "--cache-to",
            &format!("{target},ignore-error=true,mode=maximum"),
            "d",
        ])
        .assert()
        .code(2);
}

#[test]
fn an_unchanged_tree_uploads_only_manifest_and_config() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    build_rich_tree(&tmp.path().join("tree"));
    let spec = reg_to(&registry, "app/cache:main", "");
    regcache(tmp.path())
        .args(["save", "--cache-to", &spec, "tree"])
        .assert()
        .success();
    let meta_path = tmp.path().join("meta.json");
    regcache(tmp.path())
        .args([
            "--metadata-file",
            meta_path.to_str().unwrap(),
            "save",
            "--cache-to",
            &spec,
            "tree",
        ])
        .assert()
        .success();
    let meta = metadata(&meta_path);
    let target = &meta["cache_to"][0];
    // The config (it carries the save time) and the manifest: a few KiB.
    assert!(
        target["uploaded_bytes"].as_u64().unwrap() < 16 * 1024,
        "{target}"
    );
    // The rich tree is one layer; with its state list and the entries
    // list, three blobs reused.
    assert_eq!(target["uploaded_blobs"], 1, "{target}");
    assert_eq!(target["reused_blobs"], 3, "{target}");
}

#[test]
fn inspect_works_on_registry_refs() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("d")).unwrap();
    regcache(tmp.path())
        .args([
            "save",
            "--cache-to",
            &reg_to(&registry, "app/cache:main", "oci-mediatypes=false"),
            "d",
        ])
        .assert()
        .success();
    regcache(tmp.path())
        .args(["inspect", &format!("{}/app/cache:main", registry.host())])
        .assert()
        .success()
        .stdout(contains("docker-manifest-list"));
    let inspect = regcache(tmp.path())
        .args([
            "inspect",
            "--json",
            &format!("{}/app/cache:main", registry.host()),
        ])
        .output()
        .unwrap();
    let report = json_of(&inspect);
    assert_eq!(report["form"], "docker-manifest-list", "{report}");
    let paths: Vec<&str> = report["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    assert_eq!(paths, ["d"], "{report}");
}
