//! What users read when things go wrong or come out empty: each error said
//! once with its hint last, and summaries that say what happened. Pinned
//! as insta snapshots (tests/snapshots/), with temporary paths, ports,
//! digests and times redacted.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::common::regcache;
use crate::common::registry::{RegistryOptions, TestRegistry};

/// stderr with what changes from run to run replaced by placeholders.
fn redacted(output: &Output, tmp: &Path, host: Option<&str>) -> String {
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text = text.replace(&tmp.display().to_string(), "[TMP]");
    if let Some(host) = host {
        text = text.replace(host, "[REGISTRY]");
    }
    format!("exit status: {:?}\n{text}", output.status.code())
}

/// Snapshots `text` with digests, sizes and times made placeholders.
fn assert_reads(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]");
    settings.add_filter(r"sha256:[0-9a-f]{12}", "sha256:[SHORT]");
    settings.add_filter(r"\d+\.\d+s\b", "[T]s");
    settings.add_filter(r"\d+(\.\d+)? (B|KiB|MiB)\b", "[SIZE]");
    settings.bind(|| insta::assert_snapshot!(name, text));
}

fn tree(dir: &Path) {
    fs::create_dir_all(dir.join("tree/sub")).unwrap();
    fs::write(dir.join("tree/f"), "hello").unwrap();
    fs::write(dir.join("tree/sub/g"), "world").unwrap();
}

fn local(dir: &Path) -> String {
    format!("type=local,dest={}", dir.display())
}

#[test]
fn a_registry_that_is_down_fails_the_save_before_packing_with_a_hint() {
    let tmp = tempfile::tempdir().unwrap();
    tree(tmp.path());
    // Port 1 on loopback: nothing listens there.
    let output = regcache(tmp.path())
        .args(["--progress", "plain", "save"])
        .args([
            "--cache-to",
            "type=registry,ref=127.0.0.1:1/app:cache",
            "tree",
        ])
        .output()
        .unwrap();
    let text = redacted(&output, tmp.path(), None);
    // Nothing was packed: the registry was asked first.
    assert!(!text.contains("pack ("), "{text}");
    assert_reads(
        "a_registry_that_is_down_fails_the_save_before_packing_with_a_hint",
        &text,
    );
}

#[test]
fn an_unauthorized_registry_says_how_to_log_in() {
    let registry = TestRegistry::start(RegistryOptions {
        htpasswd: true,
        ..RegistryOptions::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let docker = tmp.path().join("docker");
    fs::create_dir_all(&docker).unwrap();
    let host = registry.host();
    let output = regcache(tmp.path())
        .env("DOCKER_CONFIG", &docker)
        .args(["inspect", &format!("{host}/app:cache")])
        .output()
        .unwrap();
    assert_reads(
        "an_unauthorized_registry_says_how_to_log_in",
        &redacted(&output, tmp.path(), Some(&host)),
    );
}

#[test]
fn an_untrusted_certificate_says_how_to_trust_it() {
    let registry = TestRegistry::start(RegistryOptions {
        tls: true,
        ..RegistryOptions::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let host = registry.tls_host();
    let output = regcache(tmp.path())
        .env_remove("SSL_CERT_FILE")
        .args(["inspect", &format!("{host}/app:cache")])
        .output()
        .unwrap();
    let text = redacted(&output, tmp.path(), Some(&host));
    assert!(
        text.contains("hint: if [REGISTRY] uses a private CA"),
        "{text}"
    );
    assert_reads("an_untrusted_certificate_says_how_to_trust_it", &text);
}

#[test]
fn inspect_of_a_missing_cache_points_at_ls() {
    let tmp = tempfile::tempdir().unwrap();
    let output = regcache(tmp.path())
        .args([
            "inspect",
            &format!("type=local,src={}", tmp.path().join("c").display()),
        ])
        .output()
        .unwrap();
    assert_reads(
        "inspect_of_a_missing_cache_points_at_ls",
        &redacted(&output, tmp.path(), None),
    );
}

#[test]
fn a_restore_that_finds_no_cache_says_so_once() {
    let tmp = tempfile::tempdir().unwrap();
    let output = regcache(tmp.path())
        .args(["restore", "--cache-from"])
        .arg(format!(
            "type=local,src={}",
            tmp.path().join("none").display()
        ))
        .output()
        .unwrap();
    assert_reads(
        "a_restore_that_finds_no_cache_says_so_once",
        &redacted(&output, tmp.path(), None),
    );
}

#[test]
fn a_path_no_cache_holds_is_told_what_they_do_hold() {
    let tmp = tempfile::tempdir().unwrap();
    tree(tmp.path());
    let cache = tmp.path().join("cache");
    regcache(tmp.path())
        .args(["-q", "save", "--cache-to", &local(&cache), "tree"])
        .assert()
        .success();
    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    let output = regcache(&dst)
        .args(["restore", "--cache-from"])
        .arg(format!("type=local,src={}", cache.display()))
        .args(["tree", "trea"])
        .output()
        .unwrap();
    assert_reads(
        "a_path_no_cache_holds_is_told_what_they_do_hold",
        &redacted(&output, tmp.path(), None),
    );
}

#[test]
fn save_summaries_count_in_words_that_agree() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("one")).unwrap();
    fs::write(tmp.path().join("one/only"), "x").unwrap();
    let output = regcache(tmp.path())
        .args(["save", "--cache-to", &local(&tmp.path().join("c")), "one"])
        .output()
        .unwrap();
    assert_reads(
        "save_summaries_count_in_words_that_agree",
        &redacted(&output, tmp.path(), None),
    );
}

#[test]
fn run_says_what_it_restored_before_the_command_speaks() {
    let tmp = tempfile::tempdir().unwrap();
    tree(tmp.path());
    let cache = tmp.path().join("cache");
    regcache(tmp.path())
        .args(["-q", "save", "--cache-to", &local(&cache), "tree"])
        .assert()
        .success();
    fs::remove_dir_all(tmp.path().join("tree")).unwrap();
    let output = regcache(tmp.path())
        .args(["run", "--cache-from"])
        .arg(format!("type=local,src={}", cache.display()))
        .args([
            "--path",
            "tree",
            "--",
            "sh",
            "-c",
            "echo THE-BUILD-SPEAKS >&2",
        ])
        .output()
        .unwrap();
    let text = redacted(&output, tmp.path(), None);
    let restored = text.find("restore: 1 of 1 path hit").expect(&text);
    let build = text.find("THE-BUILD-SPEAKS").expect(&text);
    assert!(restored < build, "{text}");
    assert_reads("run_says_what_it_restored_before_the_command_speaks", &text);
}

#[test]
fn run_fail_on_miss_gives_its_reason_once() {
    let tmp = tempfile::tempdir().unwrap();
    let output = regcache(tmp.path())
        .args(["run", "--fail-on-miss", "--cache-from"])
        .arg(format!(
            "type=local,src={}",
            tmp.path().join("none").display()
        ))
        .args(["--path", "tree", "--", "true"])
        .output()
        .unwrap();
    let text = redacted(&output, tmp.path(), None);
    assert_eq!(text.matches("--fail-on-miss").count(), 1, "{text}");
    assert_reads("run_fail_on_miss_gives_its_reason_once", &text);
}

#[test]
fn a_run_command_without_the_separator_gets_a_tip() {
    let tmp = tempfile::tempdir().unwrap();
    let output = regcache(tmp.path())
        .args(["run", "--path", "tree", "cargo", "build"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_reads(
        "a_run_command_without_the_separator_gets_a_tip",
        &redacted(&output, tmp.path(), None),
    );
}

#[test]
fn a_directory_given_as_a_ref_is_shown_how_to_name_a_local_cache() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("cache")).unwrap();
    let from = regcache(tmp.path())
        .args(["restore", "--cache-from", "./cache"])
        .output()
        .unwrap();
    assert_eq!(from.status.code(), Some(2));
    let to = regcache(tmp.path())
        .args(["save", "--cache-to", "./cache", "tree"])
        .output()
        .unwrap();
    assert_eq!(to.status.code(), Some(2));
    let text = format!(
        "{}\n{}",
        redacted(&from, tmp.path(), None),
        redacted(&to, tmp.path(), None)
    );
    assert!(text.contains("hint: for a cache in a local directory, write type=local,src=./cache"));
    assert!(text.contains("write type=local,dest=./cache"));
    assert_reads(
        "a_directory_given_as_a_ref_is_shown_how_to_name_a_local_cache",
        &text,
    );
}
