//! save → restore → inspect through the real binary on local cache
//! directories (`type=local`).

use crate::common;

use std::fs;
use std::path::Path;

use crate::common::{build_rich_tree, json_of, regcache, snapshot};
use predicates::prelude::*;
use predicates::str::contains;

fn local_to(dest: &Path, extra: &str) -> String {
    let mut spec = format!("type=local,dest={}", dest.display());
    if !extra.is_empty() {
        spec.push(',');
        spec.push_str(extra);
    }
    spec
}

fn local_from(src: &Path) -> String {
    format!("type=local,src={}", src.display())
}

/// Saves `name` from `from_cwd` and restores it into `to_cwd`.
fn round_trip(extra: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let (run1, run2, cache) = (
        tmp.path().join("run1"),
        tmp.path().join("run2"),
        tmp.path().join("cache"),
    );
    build_rich_tree(&run1.join("tree"));
    fs::create_dir_all(&run2).unwrap();
    regcache(&run1)
        .args(["save", "--cache-to", &local_to(&cache, extra), "tree"])
        .assert()
        .success();
    regcache(&run2)
        .args(["restore", "--cache-from", &local_from(&cache)])
        .assert()
        .success();
    let (expected, expected_links) = snapshot(&run1.join("tree"));
    let (actual, actual_links) = snapshot(&run2.join("tree"));
    for (path, node) in &expected {
        let got = actual
            .get(path)
            .unwrap_or_else(|| panic!("{extra}: {path} missing after restore"));
        assert_eq!(got, node, "{extra}: {path} differs");
    }
    assert_eq!(
        expected.len(),
        actual.len(),
        "{extra}: extra entries restored"
    );
    assert_eq!(expected_links, actual_links, "{extra}: hard links");
}

#[test]
fn round_trip_keeps_every_metadata_field_with_gzip() {
    round_trip("compression=gzip");
}

#[test]
fn round_trip_keeps_every_metadata_field_with_zstd_and_a_level() {
    round_trip("compression=zstd,compression-level=19");
}

#[test]
fn round_trip_keeps_every_metadata_field_uncompressed_in_docker_form() {
    round_trip("compression=uncompressed,oci-mediatypes=false");
}

#[test]
fn round_trip_with_image_index_form() {
    round_trip("image-manifest=false,mode=max");
}

#[test]
fn setuid_and_setgid_bits_are_dropped_on_restore() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let (run1, run2, cache) = (
        tmp.path().join("run1"),
        tmp.path().join("run2"),
        tmp.path().join("cache"),
    );
    fs::create_dir_all(run1.join("t")).unwrap();
    fs::create_dir_all(&run2).unwrap();
    fs::write(run1.join("t/suid"), "x").unwrap();
    fs::set_permissions(run1.join("t/suid"), fs::Permissions::from_mode(0o6755)).unwrap();
    regcache(&run1)
        .args(["save", "--cache-to", &local_to(&cache, ""), "t"])
        .assert()
        .success();
    regcache(&run2)
        .args(["restore", "--cache-from", &local_from(&cache)])
        .assert()
        .success();
    let mode = fs::metadata(run2.join("t/suid"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o755);
}

#[test]
fn absolute_paths_are_stored_and_restored_as_absolute() {
    let tmp = tempfile::tempdir().unwrap();
    let abs = tmp.path().join("abs-dir");
    let cache = tmp.path().join("cache");
    fs::create_dir_all(&abs).unwrap();
    fs::write(abs.join("f"), "absolute").unwrap();
    let abs_str = abs.to_string_lossy().into_owned();
    regcache(tmp.path())
        .args(["save", "--cache-to", &local_to(&cache, ""), &abs_str])
        .assert()
        .success();
    fs::remove_dir_all(&abs).unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    // Named explicitly: an absolute entry outside cwd and $HOME needs that.
    regcache(&elsewhere)
        .args(["restore", "--cache-from", &local_from(&cache), &abs_str])
        .assert()
        .success();
    assert_eq!(fs::read_to_string(abs.join("f")).unwrap(), "absolute");
}

#[test]
fn entries_outside_cwd_and_home_need_to_be_named() {
    let tmp = tempfile::tempdir().unwrap();
    let abs = tmp.path().join("outside");
    let cache = tmp.path().join("cache");
    fs::create_dir_all(&abs).unwrap();
    fs::write(abs.join("f"), "x").unwrap();
    let abs_str = abs.to_string_lossy().into_owned();
    regcache(tmp.path())
        .args(["save", "--cache-to", &local_to(&cache, ""), &abs_str])
        .assert()
        .success();
    fs::remove_dir_all(&abs).unwrap();
    let cwd = tmp.path().join("cwd");
    fs::create_dir_all(&cwd).unwrap();
    regcache(&cwd)
        .env("HOME", &cwd)
        .args(["restore", "--cache-from", &local_from(&cache)])
        .assert()
        .success()
        .stderr(contains("not restored unless named"));
    assert!(
        !abs.exists(),
        "an unnamed entry outside cwd and HOME was restored"
    );
}

#[test]
fn unchanged_tree_gives_the_same_layers_and_writes_none() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    build_rich_tree(&tmp.path().join("tree"));
    let spec = local_to(&cache, "compression=zstd");
    regcache(tmp.path())
        .args(["save", "--cache-to", &spec, "tree"])
        .assert()
        .success();
    let first = json_of(
        &regcache(tmp.path())
            .args(["inspect", "--json", &local_from(&cache)])
            .output()
            .unwrap(),
    );
    let second_save = regcache(tmp.path())
        .args(["save", "--cache-to", &spec, "tree"])
        .output()
        .unwrap();
    assert!(second_save.status.success());
    let second = json_of(
        &regcache(tmp.path())
            .args(["inspect", "--json", &local_from(&cache)])
            .output()
            .unwrap(),
    );
    assert_eq!(
        first["layers"], second["layers"],
        "layer digests changed for an unchanged tree"
    );
    let layer_count = first["layers"].as_array().unwrap().len();
    let stderr = String::from_utf8_lossy(&second_save.stderr);
    // Only the config, which carries the save time, is new; every layer,
    // the state list and the entries list are reused.
    assert!(
        stderr.contains(&format!("in 1 blob, {} reused", layer_count + 2)),
        "{stderr}"
    );
}

#[test]
fn each_path_comes_from_the_first_cache_that_holds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (branch, main_cache) = (tmp.path().join("branch"), tmp.path().join("main"));
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("x")).unwrap();
    fs::create_dir_all(src.join("y")).unwrap();
    fs::write(src.join("x/f"), "x from main").unwrap();
    fs::write(src.join("y/f"), "y from main").unwrap();
    regcache(&src)
        .args(["save", "--cache-to", &local_to(&main_cache, ""), "x", "y"])
        .assert()
        .success();
    fs::write(src.join("x/f"), "x from branch").unwrap();
    regcache(&src)
        .args(["save", "--cache-to", &local_to(&branch, ""), "x"])
        .assert()
        .success();

    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    let missing = tmp.path().join("missing");
    regcache(&dst)
        .args(["restore", "--cache-from", &local_from(&missing)])
        .args([
            "--cache-from",
            &local_from(&branch),
            "--cache-from",
            &local_from(&main_cache),
        ])
        .assert()
        .success()
        .stderr(contains("not found"));
    assert_eq!(
        fs::read_to_string(dst.join("x/f")).unwrap(),
        "x from branch"
    );
    assert_eq!(fs::read_to_string(dst.join("y/f")).unwrap(), "y from main");
}

#[test]
fn missing_cache_is_a_warning_and_fail_on_miss_makes_it_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = local_from(&tmp.path().join("nope"));
    regcache(tmp.path())
        .args(["restore", "--cache-from", &missing, "target"])
        .assert()
        .success()
        .stderr(
            contains("warning:")
                .and(contains("nope"))
                .and(contains("not found")),
        );
    regcache(tmp.path())
        .args([
            "restore",
            "--fail-on-miss",
            "--cache-from",
            &missing,
            "target",
        ])
        .assert()
        .code(1);
}

#[test]
fn a_missing_tag_is_a_miss_too() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    fs::create_dir_all(tmp.path().join("d")).unwrap();
    regcache(tmp.path())
        .args(["save", "--cache-to", &local_to(&cache, "tag=one"), "d"])
        .assert()
        .success();
    regcache(tmp.path())
        .args([
            "restore",
            "--cache-from",
            &format!("{},tag=two", local_from(&cache)),
        ])
        .assert()
        .success()
        .stderr(contains("not found"));
}

#[test]
fn restore_overwrites_files_and_keeps_unrelated_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    fs::create_dir_all(tmp.path().join("t")).unwrap();
    fs::write(tmp.path().join("t/cached"), "from cache").unwrap();
    regcache(tmp.path())
        .args(["save", "--cache-to", &local_to(&cache, ""), "t"])
        .assert()
        .success();
    fs::write(
        tmp.path().join("t/cached"),
        "stale local edit that is longer",
    )
    .unwrap();
    fs::write(tmp.path().join("t/local-only"), "mine").unwrap();
    regcache(tmp.path())
        .args(["restore", "--cache-from", &local_from(&cache)])
        .assert()
        .success();
    assert_eq!(
        fs::read_to_string(tmp.path().join("t/cached")).unwrap(),
        "from cache"
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("t/local-only")).unwrap(),
        "mine"
    );
}

#[test]
fn a_corrupted_blob_is_refused_and_the_target_stays_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    fs::create_dir_all(tmp.path().join("t")).unwrap();
    fs::write(tmp.path().join("t/file"), common::pseudo_random(200_000, 3)).unwrap();
    regcache(tmp.path())
        .args([
            "save",
            "--cache-to",
            &local_to(&cache, "compression=uncompressed"),
            "t",
        ])
        .assert()
        .success();
    let report = json_of(
        &regcache(tmp.path())
            .args(["inspect", "--json", &local_from(&cache)])
            .output()
            .unwrap(),
    );
    let layer = report["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let blob = cache.join("blobs/sha256").join(layer);
    let mut bytes = fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&blob, bytes).unwrap();

    let dst = tmp.path().join("dst");
    fs::create_dir_all(dst.join("t")).unwrap();
    fs::write(dst.join("t/file"), "precious").unwrap();
    regcache(&dst)
        .args(["restore", "--cache-from", &local_from(&cache)])
        .assert()
        .code(1)
        .stderr(contains("digest"));
    assert_eq!(fs::read_to_string(dst.join("t/file")).unwrap(), "precious");
    let names: Vec<_> = fs::read_dir(dst.join("t"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "leftovers after a refused blob: {names:?}");
}

#[test]
fn nothing_to_save_warns_and_touches_no_target() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    regcache(tmp.path())
        .args([
            "save",
            "--cache-to",
            &local_to(&cache, ""),
            "does-not-exist",
        ])
        .assert()
        .success()
        .stderr(contains("does-not-exist").and(contains("nothing to save")));
    assert!(!cache.exists());
}

#[test]
fn export_keeps_other_tags_and_digest_import_works() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    fs::create_dir_all(tmp.path().join("d")).unwrap();
    fs::write(tmp.path().join("d/f"), "one").unwrap();
    regcache(tmp.path())
        .args(["save", "--cache-to", &local_to(&cache, "tag=one"), "d"])
        .assert()
        .success();
    let one = json_of(
        &regcache(tmp.path())
            .args([
                "inspect",
                "--json",
                &format!("{},tag=one", local_from(&cache)),
            ])
            .output()
            .unwrap(),
    );
    fs::write(tmp.path().join("d/f"), "two").unwrap();
    regcache(tmp.path())
        .args(["save", "--cache-to", &local_to(&cache, "tag=two"), "d"])
        .assert()
        .success();
    fs::write(tmp.path().join("d/f"), "latest").unwrap();
    regcache(tmp.path())
        .args(["save", "--cache-to", &local_to(&cache, ""), "d"])
        .assert()
        .success();

    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(cache.join("index.json")).unwrap()).unwrap();
    let mut tags: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    tags.sort();
    assert_eq!(tags, ["latest", "one", "two"]);
    assert_eq!(
        fs::read_to_string(cache.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );

    let digest = one["manifest_digest"].as_str().unwrap();
    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    regcache(&dst)
        .args([
            "restore",
            "--cache-from",
            &format!("{},digest={digest}", local_from(&cache)),
        ])
        .assert()
        .success();
    assert_eq!(fs::read_to_string(dst.join("d/f")).unwrap(), "one");
}

#[test]
fn concurrent_writers_to_one_directory_both_land() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    for i in 0..6 {
        let dir = tmp.path().join(format!("d{i}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("f"), common::pseudo_random(100_000, i)).unwrap();
    }
    let bin = assert_cmd::cargo::cargo_bin("regcache");
    let children: Vec<_> = (0..6)
        .map(|i| {
            std::process::Command::new(&bin)
                .current_dir(tmp.path())
                .args([
                    "save",
                    "-q",
                    "--cache-to",
                    &local_to(&cache, &format!("tag=t{i}")),
                    &format!("d{i}"),
                ])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    for i in 0..6 {
        let spec = format!("{},tag=t{i}", local_from(&cache));
        regcache(tmp.path())
            .args(["inspect", &spec])
            .assert()
            .success();
    }
}

#[test]
fn inspect_reports_form_layers_records_and_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    build_rich_tree(&tmp.path().join("tree"));
    fs::create_dir_all(tmp.path().join("other")).unwrap();
    regcache(tmp.path())
        .args([
            "save",
            "--cache-to",
            &local_to(&cache, "image-manifest=false,compression=zstd"),
            "tree",
            "other",
        ])
        .assert()
        .success();
    let report = json_of(
        &regcache(tmp.path())
            .args(["inspect", "--json", &local_from(&cache)])
            .output()
            .unwrap(),
    );
    assert_eq!(report["form"], "oci-index");
    assert_eq!(report["records"], 2);
    assert_eq!(report["results"], 2);
    // The layout holds this one cache: its manifest and every blob it names.
    let on_disk: u64 = fs::read_dir(cache.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(report["total_size"].as_u64(), Some(on_disk), "{report}");
    let layers = report["layers"].as_array().unwrap();
    // Two entries, each one part.
    assert_eq!(layers.len(), 2, "{report}");
    for layer in layers {
        assert_eq!(layer["compression"], "zstd");
        assert_eq!(
            layer["media_type"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
        assert!(
            layer["uncompressed_digest"]
                .as_str()
                .unwrap()
                .starts_with("sha256:")
        );
    }
    let entries = report["entries"].as_array().unwrap();
    let paths: Vec<&str> = entries
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    // Sorted, so the same paths give the same manifest in any order.
    assert_eq!(paths, ["other", "tree"]);
    // Files are counted once per inode: a hard link is not another file.
    let (nodes, links) = snapshot(&tmp.path().join("tree"));
    let names = nodes.values().filter(|n| n.kind == 'f').count();
    let extra_links: usize = links.iter().map(|group| group.len() - 1).sum();
    assert_eq!(
        entries[1]["files"].as_u64().unwrap(),
        (names - extra_links) as u64
    );

    regcache(tmp.path())
        .args(["inspect", &local_from(&cache)])
        .assert()
        .success()
        .stdout(
            contains("oci-index")
                .and(contains("tree"))
                .and(contains("zstd")),
        );
}

#[test]
fn mode_is_recorded_in_the_image() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    fs::create_dir_all(tmp.path().join("d")).unwrap();
    regcache(tmp.path())
        .args(["save", "--cache-to", &local_to(&cache, "mode=max"), "d"])
        .assert()
        .success();
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(cache.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(cache.join("blobs/sha256").join(digest)).unwrap())
            .unwrap();
    assert_eq!(manifest["annotations"]["dev.regcache.mode"], "max");
}

#[test]
fn inspect_of_a_missing_cache_fails() {
    let tmp = tempfile::tempdir().unwrap();
    regcache(tmp.path())
        .args(["inspect", &local_from(&tmp.path().join("nope"))])
        .assert()
        .code(1)
        .stderr(contains("not found"));
}

fn buildkit_layout(variant: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/buildkit/{variant}/layout"))
}

#[test]
fn inspect_reads_caches_that_buildkit_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    for (variant, compression) in [
        ("local-max", "gzip"),
        ("local-max-zstd", "zstd"),
        ("local-max-estargz", "estargz"),
        ("local-min", "gzip"),
    ] {
        let report = json_of(
            &regcache(tmp.path())
                .args(["inspect", "--json", &local_from(&buildkit_layout(variant))])
                .output()
                .unwrap(),
        );
        assert_eq!(report["form"], "image-manifest", "{variant}");
        assert_eq!(report["records"], 14, "{variant}");
        assert!(
            report["entries"].as_array().unwrap().is_empty(),
            "{variant}"
        );
        for layer in report["layers"].as_array().unwrap() {
            assert_eq!(layer["compression"], compression, "{variant}");
        }
    }
}

#[test]
fn restoring_from_a_buildkit_cache_is_a_miss_not_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    regcache(tmp.path())
        .args([
            "restore",
            "--cache-from",
            &local_from(&buildkit_layout("local-max")),
            "target",
        ])
        .assert()
        .success()
        .stderr(contains("target").and(contains("miss")));
    assert!(!tmp.path().join("target").exists());
}

#[test]
fn nested_and_sibling_entries_restore_side_by_side() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let src = tmp.path().join("src");
    for dir in ["a/b", "c", "d"] {
        fs::create_dir_all(src.join(dir)).unwrap();
        fs::write(
            src.join(dir).join("f"),
            common::pseudo_random(300_000, dir.len() as u64),
        )
        .unwrap();
    }
    regcache(&src)
        .args([
            "--jobs",
            "4",
            "save",
            "--cache-to",
            &local_to(&cache, ""),
            "a",
            "a/b",
            "c",
            "d",
        ])
        .assert()
        .success();
    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    for jobs in ["1", "4"] {
        regcache(&dst)
            .args([
                "--jobs",
                jobs,
                "restore",
                "--cache-from",
                &local_from(&cache),
            ])
            .assert()
            .success();
        for dir in ["a", "c", "d"] {
            assert_eq!(
                snapshot(&src.join(dir)),
                snapshot(&dst.join(dir)),
                "{dir} with --jobs {jobs}"
            );
        }
    }
}

/// Blobs are as readable as `index.json` (0666 less the umask), so another
/// user or a web server serving the cache can read the layers too.
#[test]
fn blobs_get_the_mode_of_the_other_files() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let (run, cache) = (tmp.path().join("run"), tmp.path().join("cache"));
    build_rich_tree(&run.join("tree"));
    for extra in ["", "compression=zstd", "compression=estargz"] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_regcache"));
        cmd.current_dir(&run)
            .args(["save", "-q", "--cache-to", &local_to(&cache, extra), "tree"]);
        // SAFETY: umask is async-signal-safe and touches nothing else.
        unsafe {
            cmd.pre_exec(|| {
                libc::umask(0o022);
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache.join("index.json")), 0o644);
    let blobs: Vec<_> = fs::read_dir(cache.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(blobs.len() > 6, "{blobs:?}");
    for blob in blobs {
        assert_eq!(mode(&blob), 0o644, "{}", blob.display());
    }
}
