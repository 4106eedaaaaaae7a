//! `regcache prune` against a real Distribution registry and local layout
//! directories. Ages are controlled by backdating caches that `regcache
//! save` wrote: their config's `createdAt` and layer annotations are
//! rewritten to a time in the past, and the manifest pushed again.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::common::aging::{DAY, backdate, options, runtime};
use crate::common::images::push_plain_image;
use crate::common::registry::{RegistryOptions, TestRegistry};
use crate::common::{json_of, regcache, snapshot};
use predicates::str::contains;

use regcache::reference::Reference;
use regcache::spec::{ExportDefaults, parse_cache_from, parse_cache_to};
use regcache::store::registry::RegistryStore;
use regcache::store::{open_export, open_import};

/// Saves `tree` (made with `content` in one file) to `spec`.
fn save(cwd: &Path, spec: &str, content: &str) {
    let tree = cwd.join("tree");
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("file"), content).unwrap();
    regcache(cwd)
        .args(["-q", "save", "--cache-to", spec, "tree"])
        .assert()
        .success();
}

/// Copies the manifest at `from` to `to` unchanged: two tags, one digest.
fn retag(from: &str, to: &str) {
    runtime().block_on(async {
        let source = open_import(&parse_cache_from(from).unwrap()[0], &options()).unwrap();
        let raw = source.fetch_manifest().await.unwrap().unwrap();
        let target = open_export(
            &parse_cache_to(to, ExportDefaults::BuildKit).unwrap()[0],
            &options(),
        )
        .unwrap();
        target.put_manifest(&raw).await.unwrap();
    });
}

fn tags(registry: &TestRegistry, repo: &str) -> BTreeSet<String> {
    runtime().block_on(async {
        let reference = Reference::parse(&format!("{}/{repo}", registry.host())).unwrap();
        let store = RegistryStore::new(reference, false, &options()).unwrap();
        store
            .list_tags()
            .await
            .unwrap()
            .unwrap_or_default()
            .into_iter()
            .collect()
    })
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn reg(registry: &TestRegistry, repo_tag: &str) -> String {
    format!("type=registry,ref={}/{repo_tag}", registry.host())
}

/// `app/cache` with cache-1..cache-4 created 4, 3, 2 and 1 days ago and
/// `main`, 10 days old, which `--tag 'cache-*'` leaves alone.
fn four_caches_and_main(registry: &TestRegistry, cwd: &Path) {
    for (tag, days) in [
        ("cache-1", 4),
        ("cache-2", 3),
        ("cache-3", 2),
        ("cache-4", 1),
        ("main", 10),
    ] {
        let spec = reg(registry, &format!("app/cache:{tag}"));
        save(cwd, &spec, tag);
        backdate(&spec, &spec, days * DAY);
    }
}

#[test]
fn keep_n_keeps_the_newest_and_the_pattern_leaves_other_tags_alone() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    four_caches_and_main(&registry, tmp.path());
    let repo = format!("{}/app/cache", registry.host());
    let out = regcache(tmp.path())
        .args(["prune", "--keep", "2", "--tag", "cache-*", &repo])
        .assert()
        .success()
        .get_output()
        .clone();
    let table = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(table.starts_with("TAG"), "{table}");
    for (tag, action) in [
        ("cache-4", "kept"),
        ("cache-3", "kept"),
        ("cache-2", "deleted"),
        ("cache-1", "deleted"),
    ] {
        let row = table
            .lines()
            .find(|l| l.starts_with(tag))
            .unwrap_or_else(|| panic!("no row for {tag}: {table}"));
        assert!(row.contains(action), "{row}");
    }
    assert!(!table.contains("main"), "{table}");
    assert!(stderr.contains("deleted 2 of 4 matching tags"), "{stderr}");
    assert!(stderr.contains("1 other tag untouched"), "{stderr}");
    assert_eq!(
        tags(&registry, "app/cache"),
        set(&["cache-3", "cache-4", "main"])
    );

    // What stays still restores.
    let other = tmp.path().join("restore");
    fs::create_dir_all(&other).unwrap();
    regcache(&other)
        .args([
            "restore",
            "--cache-from",
            &reg(&registry, "app/cache:cache-3"),
        ])
        .assert()
        .success();
    assert_eq!(
        fs::read_to_string(other.join("tree/file")).unwrap(),
        "cache-3"
    );
}

#[test]
fn older_than_deletes_by_the_caches_own_age_and_reports_json() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    four_caches_and_main(&registry, tmp.path());
    let meta = tmp.path().join("meta.json");
    let out = regcache(tmp.path())
        .args(["--metadata-file", meta.to_str().unwrap()])
        .args(["prune", "--json", "--older-than", "36h", "--tag", "cache-*"])
        .arg(reg(&registry, "app/cache"))
        .assert()
        .success()
        .get_output()
        .clone();
    let report = json_of(&out);
    assert_eq!(report["version"], 1);
    assert_eq!(report["command"], "prune");
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["policy"]["older_than"], "36h");
    assert_eq!(report["policy"]["older_than_seconds"], 36 * 3600);
    assert_eq!(report["unmatched_tags"], 1);
    assert_eq!(report["counts"]["deleted"], 3);
    assert_eq!(report["counts"]["kept"], 1);
    assert_eq!(report["manifests"].as_array().unwrap().len(), 3);
    let rows = report["tags"].as_array().unwrap();
    assert_eq!(rows[0]["tag"], "cache-4");
    assert_eq!(rows[0]["action"], "kept");
    assert!(rows[0]["age_seconds"].as_u64().unwrap() >= DAY);
    assert!(rows[0]["created_at"].as_str().unwrap().ends_with('Z'));
    for row in &rows[1..] {
        assert_eq!(row["action"], "deleted", "{row}");
        assert_eq!(row["reason"], "older than 36h");
    }
    assert_eq!(tags(&registry, "app/cache"), set(&["cache-4", "main"]));
    let written: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(written["tags"], report["tags"]);
}

#[test]
fn dry_run_touches_nothing() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    four_caches_and_main(&registry, tmp.path());
    let before = tags(&registry, "app/cache");
    regcache(tmp.path())
        .args(["prune", "--dry-run", "--keep", "1"])
        .arg(format!("{}/app/cache", registry.host()))
        .assert()
        .success()
        .stdout(contains("would delete"))
        .stderr(contains("dry run: "))
        .stderr(contains("would delete 4 of 5 matching tags (4 manifests)"));
    assert_eq!(tags(&registry, "app/cache"), before);
}

#[test]
fn non_cache_manifests_and_shared_digests_are_never_deleted() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    // An ordinary image under a cache-looking tag.
    push_plain_image(&format!(
        "type=registry,ref={}/app/cache:cache-image",
        registry.host()
    ));
    // An old cache also tagged `release`, which the pattern leaves alone.
    let old = reg(&registry, "app/cache:cache-old");
    save(tmp.path(), &old, "old");
    backdate(&old, &old, 9 * DAY);
    retag(&old, &reg(&registry, "app/cache:release"));
    // Two matching tags on one manifest: the newest is kept, so the other
    // cannot be deleted without it.
    let a = reg(&registry, "app/cache:cache-a");
    save(tmp.path(), &a, "a");
    backdate(&a, &a, DAY);
    retag(&a, &reg(&registry, "app/cache:cache-b"));
    // And one that really goes.
    let gone = reg(&registry, "app/cache:cache-gone");
    save(tmp.path(), &gone, "gone");
    backdate(&gone, &gone, 8 * DAY);

    let out = regcache(tmp.path())
        .args(["prune", "--json", "--keep", "1", "--tag", "cache-*"])
        .arg(reg(&registry, "app/cache"))
        .assert()
        .success()
        .get_output()
        .clone();
    let report = json_of(&out);
    let action = |tag: &str| -> (String, String) {
        let row = report["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["tag"] == tag)
            .unwrap_or_else(|| panic!("no row for {tag}: {report}"));
        (
            row["action"].as_str().unwrap().to_string(),
            row["reason"].as_str().unwrap().to_string(),
        )
    };
    let (act, why) = action("cache-image");
    assert_eq!(act, "skipped");
    assert!(why.contains("not a cache image"), "{why}");
    let (act, why) = action("cache-old");
    assert_eq!(act, "kept");
    assert!(why.contains("\"release\""), "{why}");
    assert_eq!(action("cache-a").0, "kept");
    let (act, why) = action("cache-b");
    assert_eq!(act, "kept");
    assert!(why.contains("\"cache-a\""), "{why}");
    assert_eq!(action("cache-gone").0, "deleted");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a cache image"));
    assert_eq!(
        tags(&registry, "app/cache"),
        set(&["cache-a", "cache-b", "cache-image", "cache-old", "release"])
    );
}

#[test]
fn a_registry_without_deletes_is_a_clear_error() {
    let registry = TestRegistry::start(RegistryOptions {
        no_delete: true,
        ..RegistryOptions::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    for tag in ["cache-1", "cache-2"] {
        save(
            tmp.path(),
            &reg(&registry, &format!("app/cache:{tag}")),
            tag,
        );
    }
    let out = regcache(tmp.path())
        .args(["prune", "--keep", "0"])
        .arg(format!("{}/app/cache", registry.host()))
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not allow deleting manifests"),
        "{stderr}"
    );
    assert!(
        stderr.contains("storage: delete: enabled: true"),
        "{stderr}"
    );
    assert!(stderr.contains("UNSUPPORTED"), "{stderr}");
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.contains(" failed ") && l.contains("refused the delete")),
        "{table}"
    );
    assert!(table.contains("an earlier delete failed"), "{table}");
    assert_eq!(tags(&registry, "app/cache"), set(&["cache-1", "cache-2"]));
}

#[test]
fn a_policy_is_required_and_tags_in_the_target_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    regcache(tmp.path())
        .args(["prune", "localhost:5000/app"])
        .assert()
        .code(2)
        .stderr(contains("--keep N and/or --older-than"))
        .stderr(contains("hint:"));
    regcache(tmp.path())
        .args(["prune", "--keep", "1", "localhost:5000/app:cache"])
        .assert()
        .code(2)
        .stderr(contains("--tag PATTERN"));
    regcache(tmp.path())
        .args(["prune", "--older-than", "soon", "localhost:5000/app"])
        .assert()
        .code(2);
    regcache(tmp.path())
        .args(["prune", "--blobs-only", "localhost:5000/app"])
        .assert()
        .code(2)
        .stderr(contains("garbage"));
}

fn blob_files(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Every blob the manifest tagged `tag` in `dir` references, itself included,
/// whatever the cache's form.
fn referenced(dir: &Path, tag: &str) -> BTreeSet<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap();
    let hex = |d: &serde_json::Value| {
        d.as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string()
    };
    let manifest_hex = hex(&entry["digest"]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("blobs/sha256").join(&manifest_hex)).unwrap())
            .unwrap();
    // An image manifest lists its blobs under `layers`, beside `config`; a
    // cache in index form (image-manifest=false, oci-mediatypes=false)
    // lists them all, its config included, under `manifests`.
    let mut all = BTreeSet::from([manifest_hex]);
    if manifest.get("config").is_some() {
        all.insert(hex(&manifest["config"]["digest"]));
    }
    for key in ["layers", "manifests"] {
        for child in manifest[key].as_array().into_iter().flatten() {
            all.insert(hex(&child["digest"]));
        }
    }
    all
}

#[test]
fn local_prune_removes_tags_and_unreferenced_blobs_and_the_rest_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let to = |tag: &str| format!("type=local,dest={},tag={tag}", dir.display());
    let from = |tag: &str| format!("type=local,src={},tag={tag}", dir.display());
    for (tag, days) in [("old", 5), ("older", 6), ("new", 1), ("keep-me", 30)] {
        save(tmp.path(), &to(tag), tag);
        backdate(&from(tag), &to(tag), days * DAY);
    }
    let orphan = "0".repeat(64);
    fs::write(dir.join("blobs/sha256").join(&orphan), "orphan").unwrap();
    let before = blob_files(&dir);

    // A dry run says what would go and leaves every file in place.
    regcache(tmp.path())
        .args([
            "prune",
            "--dry-run",
            "--older-than",
            "2d",
            "--exclude",
            "keep-*",
        ])
        .arg(format!("type=local,dest={}", dir.display()))
        .assert()
        .success()
        .stdout(contains("would delete"))
        .stderr(contains("would remove"));
    assert_eq!(blob_files(&dir), before);

    let out = regcache(tmp.path())
        .args([
            "prune",
            "--json",
            "--older-than",
            "2d",
            "--exclude",
            "keep-*",
        ])
        .arg(format!("type=local,src={}", dir.display()))
        .assert()
        .success()
        .get_output()
        .clone();
    let report = json_of(&out);
    assert_eq!(report["counts"]["deleted"], 2, "{report}");
    assert_eq!(report["counts"]["kept"], 1, "{report}");
    assert_eq!(report["unmatched_tags"], 1);
    let removed = report["blobs"]["removed"].as_u64().unwrap();
    assert!(removed >= 5, "{report}");

    let index = fs::read_to_string(dir.join("index.json")).unwrap();
    assert!(
        !index.contains("\"old\"") && !index.contains("\"older\""),
        "{index}"
    );
    let expected: BTreeSet<String> = referenced(&dir, "new")
        .union(&referenced(&dir, "keep-me"))
        .cloned()
        .collect();
    assert_eq!(blob_files(&dir), expected);
    assert_eq!(
        report["blobs"]["kept"].as_u64().unwrap() as usize,
        expected.len()
    );

    for tag in ["new", "keep-me"] {
        let cwd = tmp.path().join(format!("restore-{tag}"));
        fs::create_dir_all(&cwd).unwrap();
        regcache(&cwd)
            .args(["restore", "--fail-on-miss", "--cache-from", &from(tag)])
            .assert()
            .success();
        assert_eq!(fs::read_to_string(cwd.join("tree/file")).unwrap(), tag);
    }
    regcache(tmp.path())
        .args(["restore", "--fail-on-miss", "--cache-from", &from("old")])
        .assert()
        .code(1);
}

#[test]
fn local_blobs_only_removes_just_the_unreferenced_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    save(
        tmp.path(),
        &format!("type=local,dest={}", dir.display()),
        "one",
    );
    let kept = blob_files(&dir);
    // The same tag saved again leaves the first save's blobs unreferenced.
    save(
        tmp.path(),
        &format!("type=local,dest={}", dir.display()),
        "two",
    );
    let stale: Vec<String> = kept
        .difference(&referenced(&dir, "latest"))
        .cloned()
        .collect();
    assert!(!stale.is_empty());
    let index_before = fs::read(dir.join("index.json")).unwrap();
    regcache(tmp.path())
        .args(["prune", "--blobs-only"])
        .arg(format!("type=local,dest={}", dir.display()))
        .assert()
        .success()
        .stderr(contains(format!(
            "removed {} unreferenced blob",
            stale.len()
        )));
    assert_eq!(fs::read(dir.join("index.json")).unwrap(), index_before);
    assert_eq!(blob_files(&dir), referenced(&dir, "latest"));
    let cwd = tmp.path().join("restore");
    fs::create_dir_all(&cwd).unwrap();
    regcache(&cwd)
        .args(["restore", "--fail-on-miss", "--cache-from"])
        .arg(format!("type=local,src={}", dir.display()))
        .assert()
        .success();
    assert_eq!(
        snapshot(&cwd.join("tree")).0.len(),
        1,
        "the restored tree has its one file"
    );
}

#[test]
fn quiet_prints_no_table_and_no_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    for tag in ["a", "b"] {
        save(
            tmp.path(),
            &format!("type=local,dest={},tag={tag}", dir.display()),
            tag,
        );
    }
    regcache(tmp.path())
        .args(["--progress", "quiet", "prune", "--keep", "1"])
        .arg(format!("type=local,dest={}", dir.display()))
        .assert()
        .success()
        .stdout("")
        .stderr("");
    let index = fs::read_to_string(dir.join("index.json")).unwrap();
    assert_eq!(index.matches("ref.name").count(), 1, "{index}");
}

/// What a prune run printed, with what changes from run to run made a
/// placeholder: the temporary directory and the registry's port (in text
/// and JSON alike).
fn printed(out: &std::process::Output, tmp: &Path, host: Option<&str>) -> (String, String) {
    let redact = |bytes: &[u8]| {
        let mut text = String::from_utf8_lossy(bytes).replace(&tmp.display().to_string(), "[TMP]");
        if let Some(host) = host {
            text = text.replace(host, "[REGISTRY]");
        }
        text
    };
    (redact(&out.stdout), redact(&out.stderr))
}

/// Snapshots the table and the summary of a prune: digests (backdating
/// rewrites each config, so they differ every run) and sizes become
/// placeholders; ages stay, in whole days they do not move.
fn assert_table(name: &str, out: &std::process::Output, tmp: &Path, host: Option<&str>) {
    let (stdout, stderr) = printed(out, tmp, host);
    let text = format!(
        "exit status: {:?}\n--- stdout\n{stdout}--- stderr\n{stderr}",
        out.status.code()
    );
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"sha256:[0-9a-f]{12}\b", "sha256:[SHORT]");
    settings.add_filter(r"\d+(\.\d+)? (B|KiB|MiB)\b", "[SIZE]");
    settings.bind(|| insta::assert_snapshot!(name, text));
}

/// Snapshots the JSON report: digests, creation times, sizes and how long
/// prune ran become placeholders; an age is kept in whole days.
fn assert_report(name: &str, out: &std::process::Output, tmp: &Path, host: Option<&str>) {
    let (stdout, _) = printed(out, tmp, host);
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"));
    let days = insta::dynamic_redaction(|value, _| {
        let seconds = value.as_u64().expect("age_seconds is a number");
        format!("[{}d and seconds]", seconds / DAY)
    });
    insta::assert_json_snapshot!(name, report, {
        ".tags[].digest" => "[DIGEST]",
        ".tags[].created_at" => "[TIME]",
        ".tags[].age_seconds" => days,
        ".manifests[]" => "[DIGEST]",
        ".blobs.removed_bytes" => "[BYTES]",
        ".seconds" => "[SECONDS]",
    });
}

#[test]
fn the_registry_table_and_summary_read_as_documented() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    four_caches_and_main(&registry, tmp.path());
    let host = registry.host();
    let out = regcache(tmp.path())
        .args(["prune", "--keep", "2", "--tag", "cache-*"])
        .arg(format!("{host}/app/cache"))
        .output()
        .unwrap();
    assert_table(
        "prune_registry_table",
        &out,
        tmp.path(),
        Some(host.as_str()),
    );
}

#[test]
fn the_registry_json_report_is_pinned() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    four_caches_and_main(&registry, tmp.path());
    let host = registry.host();
    let out = regcache(tmp.path())
        .args(["prune", "--json", "--dry-run", "--older-than", "36h"])
        .args(["--tag", "cache-*", "--exclude", "cache-1"])
        .arg(format!("type=registry,ref={host}/app/cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_report("prune_registry_json", &out, tmp.path(), Some(host.as_str()));
}

/// A local directory with `old` (5 days), `older` (6 days), `new` (1 day)
/// and `keep-me` (30 days, excluded), plus a blob nothing references.
fn local_caches(tmp: &Path) -> std::path::PathBuf {
    let dir = tmp.join("cache");
    let to = |tag: &str| format!("type=local,dest={},tag={tag}", dir.display());
    let from = |tag: &str| format!("type=local,src={},tag={tag}", dir.display());
    for (tag, days) in [("old", 5), ("older", 6), ("new", 1), ("keep-me", 30)] {
        save(tmp, &to(tag), tag);
        backdate(&from(tag), &to(tag), days * DAY);
    }
    fs::write(dir.join("blobs/sha256").join("0".repeat(64)), "orphan").unwrap();
    dir
}

#[test]
fn the_local_json_report_and_table_are_pinned() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = local_caches(tmp.path());
    let target = format!("type=local,dest={}", dir.display());
    let prune = |extra: &[&str]| {
        regcache(tmp.path())
            .arg("prune")
            .args(extra)
            .args(["--older-than", "2d", "--exclude", "keep-*", &target])
            .output()
            .unwrap()
    };
    let out = prune(&["--json", "--dry-run"]);
    assert!(out.status.success(), "{out:?}");
    assert_report("prune_local_json", &out, tmp.path(), None);
    let out = prune(&[]);
    assert_table("prune_local_table", &out, tmp.path(), None);
}
