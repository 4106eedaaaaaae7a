//! What the user sees: `--progress` modes, the summary and the metadata
//! file, through the real binary on local caches.

use std::fs;
use std::path::Path;

use crate::common::{pseudo_random, regcache};
use predicates::prelude::*;
use predicates::str::contains;

fn local_to(dest: &Path) -> String {
    format!("type=local,dest={}", dest.display())
}

fn local_from(src: &Path) -> String {
    format!("type=local,src={}", src.display())
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A small tree at `dir/tree`, saved to `dir/cache`.
fn saved_tree(dir: &Path) -> std::path::PathBuf {
    let cache = dir.join("cache");
    fs::create_dir_all(dir.join("tree/sub")).unwrap();
    fs::write(dir.join("tree/big"), pseudo_random(300_000, 1)).unwrap();
    fs::write(dir.join("tree/sub/small"), "small").unwrap();
    regcache(dir)
        .args(["-q", "save", "--cache-to", &local_to(&cache), "tree"])
        .assert()
        .success();
    cache
}

#[test]
fn plain_progress_prints_a_line_per_blob_and_no_escape_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = saved_tree(tmp.path());
    fs::write(tmp.path().join("tree/new"), "changed").unwrap();
    let output = regcache(tmp.path())
        .args(["--progress", "plain", "save"])
        .args(["--cache-to", &local_to(&cache), "tree"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = stderr_of(&output);
    assert!(
        !stderr.contains('\x1b'),
        "escape code in plain output: {stderr:?}"
    );
    let layer_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("tree: layer sha256:"))
        .collect();
    assert!(!layer_lines.is_empty(), "{stderr}");
    for line in &layer_lines {
        // What, where, size, outcome, time.
        assert!(line.contains(&format!("-> {}", cache.display())), "{line}");
        assert!(
            line.contains(" uploaded in ") || line.contains(" reused in "),
            "{line}"
        );
        assert!(line.ends_with('s'), "{line}");
    }
    // save's default codec.
    assert!(stderr.contains("tree: pack (zstd): "), "{stderr}");
    assert!(stderr.contains("manifest sha256:"), "{stderr}");

    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    let output = regcache(&dst)
        .args([
            "--progress=plain",
            "restore",
            "--cache-from",
            &local_from(&cache),
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = stderr_of(&output);
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("tree: layer sha256:") && l.contains(" restored in ")),
        "{stderr}"
    );
}

#[test]
fn auto_progress_is_plain_when_stderr_is_not_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("tree")).unwrap();
    fs::write(tmp.path().join("tree/f"), "x").unwrap();
    let output = regcache(tmp.path())
        .env_remove("NO_COLOR")
        .args([
            "save",
            "--cache-to",
            &local_to(&tmp.path().join("c")),
            "tree",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = stderr_of(&output);
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
    assert!(stderr.contains("tree: layer sha256:"), "{stderr}");
}

#[test]
fn quiet_prints_nothing_on_success_but_still_warns() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = saved_tree(tmp.path());
    for quiet in [&["-q"][..], &["--progress", "quiet"][..]] {
        regcache(tmp.path())
            .args(quiet)
            .args(["save", "--cache-to", &local_to(&cache), "tree"])
            .assert()
            .success()
            .stderr("");
        let dst = tmp.path().join("dst");
        fs::create_dir_all(&dst).unwrap();
        regcache(&dst)
            .args(quiet)
            .args(["restore", "--cache-from", &local_from(&cache)])
            .assert()
            .success()
            .stderr("");
        regcache(tmp.path())
            .args(quiet)
            .args(["run", "--cache-from", &local_from(&cache)])
            .args(["--cache-to", &local_to(&cache), "--path", "tree"])
            .args(["--", "true"])
            .assert()
            .success()
            .stderr("");
        // A warning is not progress: quiet keeps it.
        regcache(tmp.path())
            .args(quiet)
            .args(["save", "--cache-to", &local_to(&cache), "tree", "nope"])
            .assert()
            .success()
            .stderr(contains("warning:").and(contains("nope")));
    }
}

#[test]
fn tty_progress_draws_bars_and_keeps_warnings_and_summary_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = saved_tree(tmp.path());
    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    let missing = local_from(&tmp.path().join("missing"));
    let output = regcache(&dst)
        .env("COLUMNS", "120")
        .args(["--progress", "tty", "restore"])
        .args([
            "--cache-from",
            &missing,
            "--cache-from",
            &local_from(&cache),
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = stderr_of(&output);
    // Cursor movement and line clearing: bars were drawn (forced, as with
    // buildx's --progress tty, although stderr is a pipe here).
    assert!(stderr.contains("\x1b[2K"), "{stderr:?}");
    // NO_COLOR: no colour or bold sequences, only cursor control.
    assert!(
        !stderr.contains("\x1b[1;") && !stderr.contains("m\x1b"),
        "{stderr:?}"
    );
    // The warning reached stderr as one intact line of its own.
    assert!(
        stderr.lines().any(|l| l.starts_with("warning: cache /")
            && l.contains("missing")
            && l.ends_with("going on without it")),
        "{stderr:?}"
    );
    // The summary comes after the bars are gone, unbroken.
    let summary = stderr
        .rsplit_once("restore: 1 of 1 path hit\n")
        .map(|(_, after)| after)
        .unwrap_or_else(|| panic!("no summary in {stderr:?}"));
    assert!(!summary.contains('\x1b'), "{summary:?}");
    assert!(
        summary.starts_with(&format!("  hit   tree  from {}:latest", cache.display())),
        "{summary:?}"
    );
}

#[test]
fn tty_progress_shows_packing_as_bytes_read_of_the_total_with_a_rate() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("tree")).unwrap();
    // Enough content that packing outlasts a few redraws of the bar.
    for i in 0..4 {
        fs::write(
            tmp.path().join(format!("tree/f{i}")),
            pseudo_random(8 << 20, i),
        )
        .unwrap();
    }
    let output = regcache(tmp.path())
        .env("COLUMNS", "160")
        .args(["--progress", "tty", "save"])
        .args(["--cache-to", &local_to(&tmp.path().join("c")), "tree"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    // A drawn pack bar: bytes read of the bytes to read, and a rate.
    let drawn = stderr.split(['\r', '\n']).find(|line| {
        line.contains("tree: pack (zstd)") && line.contains("/32.00 MiB") && line.contains("/s")
    });
    assert!(drawn.is_some(), "no pack bar with a total in {stderr:?}");
    // And the line it leaves: what was read and what came of it.
    assert!(
        stderr.contains("tree: pack (zstd): 32.0 MiB read; full: 4 files -> "),
        "{stderr:?}"
    );
}

/// stderr of a restore of `cache` into a fresh directory, with
/// BUILDKIT_PROGRESS set to `env` (unset for `None`) and `args` before the
/// command.
fn restore_stderr(dir: &Path, cache: &Path, env: Option<&str>, args: &[&str]) -> String {
    let dst = tempfile::tempdir_in(dir).unwrap();
    let mut cmd = regcache(dst.path());
    if let Some(value) = env {
        cmd.env("BUILDKIT_PROGRESS", value);
    }
    let output = cmd
        .env("COLUMNS", "120")
        .args(args)
        .args(["restore", "--cache-from", &local_from(cache)])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    stderr_of(&output)
}

/// Bars were drawn: cursor control, which plain output never has.
fn drew_bars(stderr: &str) -> bool {
    stderr.contains("\x1b[2K")
}

/// A line per blob, and no escape code at all.
fn printed_lines(stderr: &str) -> bool {
    !stderr.contains('\x1b') && stderr.lines().any(|l| l.starts_with("tree: layer sha256:"))
}

#[test]
fn buildkit_progress_picks_the_mode_when_progress_is_not_given() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = saved_tree(tmp.path());
    // stderr is a pipe: auto alone would print lines.
    let tty = restore_stderr(tmp.path(), &cache, Some("tty"), &[]);
    assert!(drew_bars(&tty), "{tty:?}");
    for value in ["plain", "rawjson", "auto", ""] {
        let plain = restore_stderr(tmp.path(), &cache, Some(value), &[]);
        assert!(printed_lines(&plain), "{value}: {plain:?}");
        assert!(!plain.contains("warning"), "{value}: {plain:?}");
    }
    let quiet = restore_stderr(tmp.path(), &cache, Some("quiet"), &[]);
    assert_eq!(quiet, "");
}

#[test]
fn progress_on_the_command_line_wins_over_buildkit_progress() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = saved_tree(tmp.path());
    let plain = restore_stderr(tmp.path(), &cache, Some("tty"), &["--progress", "plain"]);
    assert!(printed_lines(&plain), "{plain:?}");
    let tty = restore_stderr(tmp.path(), &cache, Some("plain"), &["--progress=tty"]);
    assert!(drew_bars(&tty), "{tty:?}");
    // auto given is auto, whatever the variable says.
    let auto = restore_stderr(tmp.path(), &cache, Some("tty"), &["--progress", "auto"]);
    assert!(printed_lines(&auto), "{auto:?}");
    for quiet in [&["-q"][..], &["--progress", "quiet"][..]] {
        let stderr = restore_stderr(tmp.path(), &cache, Some("tty"), quiet);
        assert_eq!(stderr, "", "{quiet:?}");
    }
    // A value the command line overrides is not read, so not judged.
    let stderr = restore_stderr(tmp.path(), &cache, Some("fancy"), &["--progress", "plain"]);
    assert!(!stderr.contains("warning"), "{stderr:?}");
}

#[test]
fn an_unknown_buildkit_progress_is_a_warning_naming_the_modes_then_auto() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = saved_tree(tmp.path());
    let stderr = restore_stderr(tmp.path(), &cache, Some("fancy"), &[]);
    let warning = stderr
        .lines()
        .find(|l| l.starts_with("warning: "))
        .unwrap_or_else(|| panic!("no warning in {stderr:?}"));
    assert!(warning.contains("BUILDKIT_PROGRESS=\"fancy\""), "{warning}");
    for mode in ["auto", "tty", "plain", "quiet", "rawjson"] {
        assert!(warning.contains(mode), "{mode} not named: {warning}");
    }
    // Then auto, which is plain into a pipe; the restore itself goes on
    // (`restore_stderr` checks its exit status).
    assert!(printed_lines(&stderr), "{stderr:?}");
}

#[test]
fn the_summary_names_hits_misses_and_where_each_came_from() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = saved_tree(tmp.path());
    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    let output = regcache(&dst)
        .args([
            "restore",
            "--cache-from",
            &local_from(&cache),
            "tree",
            "other",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = stderr_of(&output);
    assert!(stderr.contains("restore: 1 of 2 paths hit"), "{stderr}");
    let hit = stderr
        .lines()
        .find(|l| l.starts_with("  hit "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(hit.contains("tree"), "{hit}");
    assert!(hit.contains(&cache.display().to_string()), "{hit}");
    assert!(hit.contains("2 files"), "{hit}");
    let miss = stderr
        .lines()
        .find(|l| l.starts_with("  miss "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(miss.contains("other"), "{miss}");
}

#[test]
fn the_save_summary_gives_per_target_bytes_blobs_reuse_and_time() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = saved_tree(tmp.path());
    let output = regcache(tmp.path())
        .args(["--progress", "quiet", "save"])
        .args(["--cache-to", &local_to(&cache), "tree"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(output.stderr.is_empty());
    let output = regcache(tmp.path())
        .args(["save", "--cache-to", &local_to(&cache), "tree"])
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    let target = stderr
        .lines()
        .find(|l| l.starts_with(&format!("  -> {}", cache.display())))
        .unwrap_or_else(|| panic!("{stderr}"));
    // An unchanged tree: only the config (it carries the save time) is new;
    // the layer, the state list and the entries list are reused.
    assert!(target.contains("wrote"), "{target}");
    assert!(target.contains("in 1 blob, 3 reused"), "{target}");
    assert!(target.contains("sha256:"), "{target}");
    assert!(stderr.contains("saved    tree"), "{stderr}");
}

#[test]
fn metadata_file_for_save_has_one_object_per_target_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("tree")).unwrap();
    fs::write(tmp.path().join("tree/f"), pseudo_random(50_000, 3)).unwrap();
    fs::write(tmp.path().join("blocker"), "").unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let broken = format!(
        "{},ignore-error=true",
        local_to(&tmp.path().join("blocker/c"))
    );
    let meta_dir = tmp.path().join("out");
    fs::create_dir_all(&meta_dir).unwrap();
    let meta = meta_dir.join("meta.json");
    regcache(tmp.path())
        .args(["save", "--cache-to", &local_to(&a), "--cache-to", &broken])
        // A second codec beside save's default zstd, so two packs run.
        .args(["--cache-to", &format!("{},compression=gzip", local_to(&b))])
        .arg("--metadata-file")
        .arg(&meta)
        .args(["tree", "absent"])
        .assert()
        .success();
    let m: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(m["version"], 1, "{m}");
    assert_eq!(m["command"], "save");
    let targets = m["cache_to"].as_array().unwrap();
    assert_eq!(targets.len(), 3);
    assert_eq!(targets[0]["type"], "local");
    assert_eq!(targets[0]["dest"], a.to_str().unwrap());
    assert_eq!(targets[1]["status"], "ignored-error");
    assert!(targets[1]["error"].as_str().unwrap().contains("blocker"));
    assert_eq!(targets[2]["dest"], b.to_str().unwrap());
    for t in [&targets[0], &targets[2]] {
        assert_eq!(t["status"], "written", "{t}");
        assert!(t["digest"].as_str().unwrap().starts_with("sha256:"), "{t}");
        // layer + state list + config + entries list (+ the manifest's bytes).
        assert_eq!(t["uploaded_blobs"], 4, "{t}");
        assert_eq!(t["reused_blobs"], 0, "{t}");
        assert!(t["uploaded_bytes"].as_u64().unwrap() > 0, "{t}");
        assert!(t["error"].is_null(), "{t}");
    }
    // The digest is the manifest the local index now names.
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(a.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], targets[0]["digest"]);
    let paths = m["paths"].as_array().unwrap();
    assert_eq!(paths[0]["path"], "tree");
    assert_eq!(paths[0]["saved"]["bytes"], 50_000);
    assert!(paths[0]["hit"].is_null());
    assert_eq!(paths[1]["path"], "absent");
    assert!(paths[1]["saved"].is_null());
    assert_eq!(paths[1]["error"], "does not exist");
    assert!(m["error"].is_null());
    // Written by rename: no temporary file is left beside it.
    let left: Vec<_> = fs::read_dir(&meta_dir).unwrap().collect();
    assert_eq!(left.len(), 1);
}

#[test]
fn metadata_file_for_save_records_each_base_read_or_missed() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = saved_tree(tmp.path());
    let missing = tmp.path().join("missing");
    let meta = tmp.path().join("meta.json");
    let output = regcache(tmp.path())
        .args(["save", "--cache-from", &local_from(&missing)])
        .args(["--cache-from", &local_from(&cache)])
        .args(["--cache-to", &local_to(&tmp.path().join("copy")), "tree"])
        .arg("--metadata-file")
        .arg(&meta)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    // A missing base is a warning, as a missing cache is for restore.
    assert!(
        stderr_of(&output)
            .lines()
            .any(|l| l.starts_with("warning: cache ")
                && l.contains("missing")
                && l.ends_with("going on without it as a base")),
        "{}",
        stderr_of(&output)
    );
    let m: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    let bases = m["cache_from"].as_array().unwrap();
    assert_eq!(bases.len(), 2, "{m}");
    assert_eq!(bases[0]["src"], missing.to_str().unwrap());
    assert_eq!(bases[0]["status"], "missed");
    assert!(bases[0]["reason"].is_string(), "{m}");
    assert_eq!(bases[1]["src"], cache.to_str().unwrap());
    assert_eq!(bases[1]["status"], "loaded");
    // The loaded base served: the unchanged tree was not packed again.
    assert_eq!(m["paths"][0]["saved"]["plan"], "unchanged", "{m}");
}

#[test]
fn metadata_file_is_written_when_an_export_fails() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("tree")).unwrap();
    fs::write(tmp.path().join("blocker"), "").unwrap();
    let meta = tmp.path().join("meta.json");
    regcache(tmp.path())
        .args([
            "save",
            "--cache-to",
            &local_to(&tmp.path().join("blocker/c")),
        ])
        .arg("--metadata-file")
        .arg(&meta)
        .arg("tree")
        .assert()
        .code(1);
    let m: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(m["cache_to"][0]["status"], "failed");
    assert!(m["cache_to"][0]["digest"].is_null());
    assert!(m["error"].as_str().unwrap().contains("blocker"));
}

#[test]
fn metadata_file_for_restore_has_hit_and_from_per_path() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = saved_tree(tmp.path());
    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    let meta = tmp.path().join("meta.json");
    let missing = local_from(&tmp.path().join("missing"));
    regcache(&dst)
        .args(["restore", "--cache-from", &missing])
        .args(["--cache-from", &local_from(&cache), "tree", "./other/"])
        .arg("--metadata-file")
        .arg(&meta)
        .assert()
        .success();
    let m: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(m["command"], "restore");
    assert_eq!(m["cache_to"], serde_json::json!([]));
    assert_eq!(m["cache_from"][0]["status"], "missed");
    assert_eq!(m["cache_from"][0]["reason"], "not found");
    assert_eq!(m["cache_from"][1]["status"], "loaded");
    assert_eq!(m["paths"][0]["path"], "tree");
    assert_eq!(m["paths"][0]["hit"], true);
    assert_eq!(m["paths"][0]["from"], cache.to_str().unwrap());
    assert_eq!(m["paths"][0]["from_index"], 1);
    assert_eq!(m["paths"][0]["restored"]["files"], 2);
    // Paths are named as stored: `./other/` is the entry `other`.
    assert_eq!(m["paths"][1]["path"], "other");
    assert_eq!(m["paths"][1]["hit"], false);
    assert!(m["paths"][1]["from"].is_null());

    // --fail-on-miss: exit 1, and the record is still written.
    fs::remove_file(&meta).unwrap();
    regcache(&dst)
        .args([
            "restore",
            "--fail-on-miss",
            "--cache-from",
            &missing,
            "tree",
        ])
        .arg("--metadata-file")
        .arg(&meta)
        .assert()
        .code(1);
    let m: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(m["paths"][0]["hit"], false);
    assert!(m["error"].as_str().unwrap().contains("--fail-on-miss"));
}

#[test]
fn a_bad_spec_writes_no_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let meta = tmp.path().join("meta.json");
    regcache(tmp.path())
        .args(["save", "--cache-to", "type=local,dest=x,mode=maxx"])
        .arg("--metadata-file")
        .arg(&meta)
        .arg("tree")
        .assert()
        .code(2);
    assert!(!meta.exists());
}

#[test]
fn insecure_registry_takes_a_host_and_refuses_a_url() {
    let tmp = tempfile::tempdir().unwrap();
    for good in [
        "registry.local",
        "registry.local:5000",
        "10.0.0.1:80",
        "[::1]:5000",
    ] {
        regcache(tmp.path())
            .args(["--insecure-registry", good, "save", "--dry-run"])
            .args(["--cache-to", "type=local,dest=c", "tree"])
            .assert()
            .success();
    }
    for bad in [
        "http://registry.local",
        "registry.local/repo",
        "reg:port",
        "",
    ] {
        regcache(tmp.path())
            .args(["--insecure-registry", bad, "save", "--dry-run"])
            .args(["--cache-to", "type=local,dest=c", "tree"])
            .assert()
            .code(2)
            .stderr(contains("--insecure-registry"));
    }
}

#[test]
fn verbose_adds_detail_and_rust_log_overrides() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = saved_tree(tmp.path());
    regcache(tmp.path())
        .args(["-v", "save", "--cache-to", &local_to(&cache), "tree"])
        .assert()
        .success()
        .stderr(contains("wrote cache sha256:"));
    regcache(tmp.path())
        .env("RUST_LOG", "off")
        .args(["save", "--cache-to", &local_to(&cache), "tree", "nope"])
        .assert()
        .success()
        .stderr(contains("warning:").not());
}

/// Every key path (`cache_to[].digest`…) in a JSON value.
fn key_paths(
    value: &serde_json::Value,
    prefix: &str,
    out: &mut std::collections::BTreeSet<String>,
) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                let path = format!("{prefix}.{key}");
                out.insert(path.clone());
                key_paths(v, &path, out);
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                key_paths(v, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_example_in_docs_metadata_md_is_what_run_writes() {
    let doc = include_str!("../../docs/metadata.md");
    let example = doc
        .rsplit_once("```json\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(json, _)| json)
        .expect("docs/metadata.md has a JSON example");
    let documented: serde_json::Value = serde_json::from_str(example).unwrap();

    // The scenario the doc describes.
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("target")).unwrap();
    fs::write(tmp.path().join("target/a"), "hi\n").unwrap();
    regcache(tmp.path())
        .args(["-q", "run", "--cache-to", "type=local,dest=.cache/app"])
        .args(["--path", "target", "--", "true"])
        .assert()
        .success();
    regcache(tmp.path())
        .args(["-q", "run", "--metadata-file", "meta.json"])
        .args(["--cache-from", "type=local,src=.cache/branch"])
        .args(["--cache-from", "type=local,src=.cache/app"])
        .args(["--cache-to", "type=local,dest=.cache/branch"])
        .args(["--path", "target", "--path", "node_modules", "--", "true"])
        .assert()
        .success();
    let actual: serde_json::Value =
        serde_json::from_slice(&fs::read(tmp.path().join("meta.json")).unwrap()).unwrap();

    let (mut want, mut got) = Default::default();
    key_paths(&documented, "", &mut want);
    key_paths(&actual, "", &mut got);
    assert_eq!(want, got, "the documented keys differ from those written");
    // Everything but timings, the digest and the bytes sent (the config
    // records the save time, whose length varies) is the same.
    let mut stable = actual.clone();
    let mut doc_stable = documented.clone();
    for v in [&mut stable, &mut doc_stable] {
        v["seconds"] = 0.into();
        v["command_seconds"] = 0.into();
        v["cache_to"][0]["seconds"] = 0.into();
        v["cache_to"][0]["digest"] = "".into();
        v["cache_to"][0]["uploaded_bytes"] = 0.into();
        v["paths"][0]["restored"]["seconds"] = 0.into();
    }
    assert_eq!(doc_stable, stable);
}
