//! Restore-key patterns: a `--cache-from` tag ending in `*` restores the
//! newest cache whose tag matches, by the caches' own creation times, as
//! actions/cache's `restore-keys` prefixes do. Against a real Distribution
//! registry and local layout directories. Tag names are chosen so that
//! neither name order nor listing order picks the newest by accident.

use std::fs;
use std::path::Path;

use crate::common::aging::{DAY, backdate};
use crate::common::images::push_plain_image;
use crate::common::registry::{RegistryOptions, TestRegistry};
use crate::common::{json_of, regcache};
use predicates::str::contains;
use serde_json::Value;

/// Saves `paths`, each a directory with one file holding `content`.
fn save(cwd: &Path, spec: &str, paths: &[&str], content: &str) {
    for path in paths {
        fs::create_dir_all(cwd.join(path)).unwrap();
        fs::write(cwd.join(path).join("file"), content).unwrap();
    }
    regcache(cwd)
        .args(["-q", "save", "--cache-to", spec])
        .args(paths)
        .assert()
        .success();
}

/// `cache-main-a` (2 days old), `cache-main-b` (1 day: the newest),
/// `cache-main-c` (3 days), a newer `cache-other` the pattern must not
/// match, and an ordinary image under a matching tag.
fn three_mains(cwd: &Path, spec: &dyn Fn(&str) -> (String, String)) {
    for (tag, age) in [
        ("cache-main-a", 2 * DAY),
        ("cache-main-b", DAY),
        ("cache-main-c", 3 * DAY),
        ("cache-other", 60),
    ] {
        let (to, from) = spec(tag);
        save(cwd, &to, &["target"], tag);
        backdate(&from, &to, age);
    }
    push_plain_image(&spec("cache-main-zz").0);
}

fn restored(dir: &Path) -> String {
    fs::read_to_string(dir.join("target/file")).unwrap()
}

#[test]
fn a_registry_pattern_restores_the_newest_matching_cache() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let host = registry.host();
    let spec = |tag: &str| {
        let r = format!("type=registry,ref={host}/app:{tag}");
        (r.clone(), r)
    };
    three_mains(tmp.path(), &spec);
    let out_dir = tmp.path().join("out");
    fs::create_dir_all(&out_dir).unwrap();
    let meta = out_dir.join("meta.json");
    let pattern = format!("{host}/app:cache-main-*");
    let out = regcache(&out_dir)
        .args(["--metadata-file", meta.to_str().unwrap()])
        .args(["restore", "--cache-from", &pattern])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(restored(&out_dir), "cache-main-b");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "from {host}/app:cache-main-b (newest of cache-main-*)"
        )),
        "{stderr}"
    );
    let meta: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    let from = &meta["cache_from"][0];
    assert_eq!(from["ref"], pattern);
    assert_eq!(from["status"], "loaded");
    assert_eq!(from["matched"], format!("{host}/app:cache-main-b"));
    assert_eq!(meta["paths"][0]["hit"], true);
    assert_eq!(meta["paths"][0]["from_index"], 0);

    // The same through type=registry,ref=…, and inspect resolves it too.
    let out = regcache(&out_dir)
        .args(["inspect", "--json"])
        .arg(format!("type=registry,ref={pattern}"))
        .assert()
        .success()
        .get_output()
        .clone();
    let by_tag = regcache(&out_dir)
        .args(["inspect", "--json", &format!("{host}/app:cache-main-b")])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(
        json_of(&out)["manifest_digest"],
        json_of(&by_tag)["manifest_digest"]
    );
}

#[test]
fn a_local_pattern_restores_the_newest_matching_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let spec = |tag: &str| {
        (
            format!("type=local,dest={},tag={tag}", dir.display()),
            format!("type=local,src={},tag={tag}", dir.display()),
        )
    };
    three_mains(tmp.path(), &spec);
    let out_dir = tmp.path().join("out");
    fs::create_dir_all(&out_dir).unwrap();
    let meta = out_dir.join("meta.json");
    regcache(&out_dir)
        .args(["--metadata-file", meta.to_str().unwrap()])
        .args(["restore", "--cache-from"])
        .arg(format!("type=local,src={},tag=cache-main-*", dir.display()))
        .assert()
        .success();
    assert_eq!(restored(&out_dir), "cache-main-b");
    let meta: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(meta["cache_from"][0]["src"], dir.display().to_string());
    assert_eq!(meta["cache_from"][0]["matched"], "cache-main-b");
}

#[test]
fn several_cache_froms_keep_their_order_and_a_pattern_miss_is_a_warning() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let host = registry.host();
    let reg = |tag: &str| format!("type=registry,ref={host}/app:{tag}");
    // The branch's cache holds target only; main's, older, holds both.
    save(
        tmp.path(),
        &reg("cache-main-1"),
        &["target", "vendor"],
        "main",
    );
    backdate(&reg("cache-main-1"), &reg("cache-main-1"), 2 * DAY);
    save(tmp.path(), &reg("cache-feat-1"), &["target"], "feat");
    let out_dir = tmp.path().join("out");
    fs::create_dir_all(&out_dir).unwrap();
    let meta = out_dir.join("meta.json");
    let out = regcache(&out_dir)
        .args(["--metadata-file", meta.to_str().unwrap(), "restore"])
        .args(["--cache-from", &format!("{host}/app:cache-nothing-*")])
        .args(["--cache-from", &format!("{host}/app:cache-feat-*")])
        .args(["--cache-from", &format!("{host}/app:cache-main-*")])
        .args(["target", "vendor"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(restored(&out_dir), "feat");
    assert_eq!(
        fs::read_to_string(out_dir.join("vendor/file")).unwrap(),
        "main"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning:") && stderr.contains("no tag matches cache-nothing-*"),
        "{stderr}"
    );
    let meta: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(meta["cache_from"][0]["status"], "missed");
    assert_eq!(meta["cache_from"][0]["matched"], Value::Null);
    assert_eq!(
        meta["cache_from"][1]["matched"],
        format!("{host}/app:cache-feat-1")
    );
    assert_eq!(meta["paths"][0]["from_index"], 1);
    assert_eq!(meta["paths"][1]["from_index"], 2);

    // Nothing matches at all: a miss, exit 0; with --fail-on-miss, exit 1.
    regcache(&out_dir)
        .args(["restore", "--cache-from", &format!("{host}/app:nope-*")])
        .assert()
        .success()
        .stderr(contains("no tag matches nope-*"));
    regcache(&out_dir)
        .args(["restore", "--fail-on-miss"])
        .args(["--cache-from", &format!("{host}/app:nope-*")])
        .assert()
        .code(1);
}

#[test]
fn run_save_and_copy_take_patterns_too() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let host = registry.host();
    let reg = |tag: &str| format!("type=registry,ref={host}/app:{tag}");
    save(tmp.path(), &reg("cache-main-x"), &["target"], "older");
    backdate(&reg("cache-main-x"), &reg("cache-main-x"), 2 * DAY);
    save(tmp.path(), &reg("cache-main-w"), &["target"], "newer");
    backdate(&reg("cache-main-w"), &reg("cache-main-w"), DAY);
    let pattern = format!("{host}/app:cache-main-*");

    // run: restores the newest, runs, saves.
    let run_dir = tmp.path().join("run");
    fs::create_dir_all(&run_dir).unwrap();
    regcache(&run_dir)
        .args(["run", "--cache-from", &pattern])
        .args(["--cache-to", &reg("cache-run")])
        .args([
            "--path",
            "target",
            "--",
            "sh",
            "-c",
            "cat target/file > seen",
        ])
        .assert()
        .success();
    assert_eq!(fs::read_to_string(run_dir.join("seen")).unwrap(), "newer");

    // save --cache-from: the newest is the base, whose unchanged layer
    // is reused rather than packed again.
    let meta = run_dir.join("save.json");
    regcache(&run_dir)
        .args(["--metadata-file", meta.to_str().unwrap(), "save"])
        .args(["--cache-from", &pattern])
        .args(["--cache-to", &reg("cache-saved")])
        .arg("target")
        .assert()
        .success();
    let meta: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(meta["paths"][0]["saved"]["plan"], "unchanged", "{meta}");
    assert_eq!(
        meta["cache_from"][0]["matched"],
        format!("{host}/app:cache-main-w")
    );

    // copy --cache-from: the newest is what is copied.
    let copy_dir = tmp.path().join("copy");
    fs::create_dir_all(&copy_dir).unwrap();
    let meta = copy_dir.join("copy.json");
    regcache(&copy_dir)
        .args(["--metadata-file", meta.to_str().unwrap(), "copy"])
        .args(["--cache-from", &pattern])
        .args(["--cache-to", &reg("copied")])
        .assert()
        .success();
    let meta: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(
        meta["cache_from"][0]["matched"],
        format!("{host}/app:cache-main-w")
    );
    regcache(&copy_dir)
        .args(["restore", "--cache-from", &format!("{host}/app:copied")])
        .assert()
        .success();
    assert_eq!(restored(&copy_dir), "newer");
}

#[test]
fn patterns_are_refused_where_they_mean_nothing_and_shown_by_dry_run() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    for (args, field) in [
        (
            // A bare ref is the whole value, which the message quotes once.
            vec!["save", "--cache-to", "127.0.0.1:5000/app:cache-*", "x"],
            "\"127.0.0.1:5000/app:cache-*\": the ref holds \"*\"",
        ),
        (
            vec!["save", "--cache-to", "type=local,dest=d,tag=c-*", "x"],
            "tag=c-*",
        ),
    ] {
        regcache(cwd)
            .args(&args)
            .assert()
            .code(2)
            .stderr(contains(field))
            .stderr(contains("--cache-to writes one tag"));
    }
    regcache(cwd)
        .args(["restore", "--cache-from", "127.0.0.1:5000/app:cache-*-main"])
        .assert()
        .code(2)
        .stderr(contains("where it is not a pattern"));

    let out = regcache(cwd)
        .args(["restore", "--dry-run", "--json"])
        .args(["--cache-from", "127.0.0.1:5000/app:cache-main-*"])
        .args(["--cache-from", "type=local,src=d,tag=cache-*"])
        .assert()
        .success()
        .get_output()
        .clone();
    let plan = json_of(&out);
    assert_eq!(plan["cache_from"][0]["tag"], "cache-main-*");
    assert_eq!(plan["cache_from"][0]["pattern"], true);
    assert_eq!(plan["cache_from"][1]["tag"], "cache-*");
    assert_eq!(plan["cache_from"][1]["pattern"], true);
    regcache(cwd)
        .args(["restore", "--dry-run"])
        .args(["--cache-from", "127.0.0.1:5000/app:cache-main-*"])
        .assert()
        .success()
        .stdout(contains("ref=127.0.0.1:5000/app:cache-main-*"));
}

#[test]
fn a_tag_from_a_branch_name_gets_a_hint_with_the_tag_made_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let out = regcache(tmp.path())
        .args([
            "restore",
            "--cache-from",
            "127.0.0.1:5000/app:cache-feature/foo",
        ])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid tag \"cache-feature/foo\""),
        "{stderr}"
    );
    let hint = stderr
        .lines()
        .find(|l| l.starts_with("hint:"))
        .unwrap_or_else(|| panic!("no hint: {stderr}"));
    assert!(
        hint.ends_with("127.0.0.1:5000/app:cache-feature-foo"),
        "{hint}"
    );
}
