//! Every promise docs/prune.md makes, each pinned by a test that fails
//! when the promise is broken: local prune of every cache form (an OCI
//! image manifest, an OCI index, a Docker manifest list, and BuildKit's own
//! local caches), and prune's safety stops against a real Distribution
//! registry and real layout directories.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::aging::{DAY, backdate, options, runtime};
use crate::common::proxy::{self, Fault, Proxy, ProxyOptions, RequestInfo};
use crate::common::registry::{RegistryOptions, TestRegistry};
use crate::common::token_server::{TokenServer, TokenServerOptions};
use crate::common::{build_rich_tree, json_of, regcache, snapshot};
use regcache::digest::Digest;
use regcache::image::media_types::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST,
};
use regcache::reference::Reference;
use regcache::store::registry::RegistryStore;
use serde_json::{Value, json};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Saves `cwd/tree` to `spec`.
fn save_tree(cwd: &Path, spec: &str) {
    regcache(cwd)
        .args(["-q", "save", "--cache-to", spec, "tree"])
        .assert()
        .success();
}

/// A small tree of its own in `cwd/tree`, different for each `label`.
fn small_tree(cwd: &Path, label: &str) {
    let tree = cwd.join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    fs::write(tree.join("file"), label).unwrap();
    fs::write(tree.join("sub/other"), format!("{label} again")).unwrap();
}

fn hex_of(descriptor: &Value) -> String {
    descriptor["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("a descriptor without a digest: {descriptor}"))
        .trim_start_matches("sha256:")
        .to_string()
}

fn index_of(dir: &Path) -> Value {
    serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap()
}

/// The index entry tagged `tag` (the last one, as readers take it).
fn entry(dir: &Path, tag: &str) -> Value {
    index_of(dir)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["annotations"][REF_NAME] == tag)
        .unwrap_or_else(|| panic!("no entry tagged {tag} in {}", dir.display()))
        .clone()
}

fn is_manifest_type(media_type: &str) -> bool {
    [
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
    ]
    .contains(&media_type)
}

/// Every blob `descriptor` references, itself included: an image
/// manifest's `config` and `layers`, an index's or Docker list's
/// `manifests` (a cache in index form lists its layers and config there),
/// followed into children that are manifests themselves. Written
/// independently of the code under test, from the OCI spec.
fn referenced_by(dir: &Path, descriptor: &Value) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    let mut queue = vec![descriptor.clone()];
    while let Some(d) = queue.pop() {
        let hex = hex_of(&d);
        if !all.insert(hex.clone()) {
            continue;
        }
        let media_type = d["mediaType"].as_str().unwrap_or_default();
        if !is_manifest_type(media_type) {
            continue;
        }
        let bytes = fs::read(dir.join("blobs/sha256").join(&hex))
            .unwrap_or_else(|e| panic!("manifest {hex} is not in the layout: {e}"));
        let manifest: Value = serde_json::from_slice(&bytes).unwrap();
        for key in ["config", "subject"] {
            if manifest.get(key).is_some_and(Value::is_object) {
                queue.push(manifest[key].clone());
            }
        }
        for key in ["layers", "manifests"] {
            for child in manifest[key].as_array().into_iter().flatten() {
                queue.push(child.clone());
            }
        }
    }
    all
}

fn referenced(dir: &Path, tag: &str) -> BTreeSet<String> {
    referenced_by(dir, &entry(dir, tag))
}

fn blob_files(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Each of `blobs` is in the layout and its content hashes to its name.
fn assert_intact(dir: &Path, blobs: &BTreeSet<String>) {
    for hex in blobs {
        let bytes = fs::read(dir.join("blobs/sha256").join(hex))
            .unwrap_or_else(|e| panic!("blob {hex} is gone: {e}"));
        assert_eq!(Digest::of(&bytes).hex(), hex, "blob {hex} is corrupt");
    }
}

fn local(dir: &Path) -> String {
    format!("type=local,dest={}", dir.display())
}

fn prune_json(cwd: &Path, args: &[&str], target: &str) -> (Value, String) {
    let out = regcache(cwd)
        .args(["prune", "--json"])
        .args(args)
        .arg(target)
        .assert()
        .success()
        .get_output()
        .clone();
    (
        json_of(&out),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn row<'a>(report: &'a Value, tag: &str) -> &'a Value {
    report["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tag"] == tag)
        .unwrap_or_else(|| panic!("no row for {tag}: {report}"))
}

/// The three forms regcache writes, by the --cache-to parameters that pick
/// them, with the media type the index entry must then carry.
const FORMS: [(&str, &str, &str); 3] = [
    ("image manifest", "", OCI_MANIFEST),
    ("OCI index", ",image-manifest=false", OCI_INDEX),
    (
        "Docker manifest list",
        ",oci-mediatypes=false",
        DOCKER_MANIFEST_LIST,
    ),
];

/// Restores `spec` into a fresh directory and compares the tree with
/// `original` field by field.
fn assert_restores(tmp: &Path, spec: &str, original: &Path, label: &str) {
    let cwd = tmp.join(format!("restore-{}", label.replace(' ', "-")));
    fs::create_dir_all(&cwd).unwrap();
    regcache(&cwd)
        .args(["-q", "restore", "--fail-on-miss", "--cache-from", spec])
        .assert()
        .success();
    assert_eq!(
        snapshot(&cwd.join("tree")),
        snapshot(original),
        "{label}: the restored tree differs"
    );
}

#[test]
fn keep_prunes_every_cache_form_and_the_kept_cache_is_whole() {
    let tmp = tempfile::tempdir().unwrap();
    for (label, params, media_type) in FORMS {
        let base = tmp.path().join(label.replace(' ', "-"));
        let dir = base.join("cache");
        let to = |tag: &str| format!("type=local,dest={},tag={tag}{params}", dir.display());
        let from = |tag: &str| format!("type=local,src={},tag={tag}", dir.display());
        let old_cwd = base.join("old");
        small_tree(&old_cwd, "old");
        save_tree(&old_cwd, &to("old"));
        backdate(&from("old"), &to("old"), 5 * DAY);
        let new_cwd = base.join("new");
        build_rich_tree(&new_cwd.join("tree"));
        save_tree(&new_cwd, &to("new"));
        backdate(&from("new"), &to("new"), DAY);
        fs::write(dir.join("blobs/sha256").join("0".repeat(64)), "orphan").unwrap();
        assert_eq!(entry(&dir, "new")["mediaType"], media_type, "{label}");
        assert_eq!(entry(&dir, "old")["mediaType"], media_type, "{label}");
        let keep = referenced(&dir, "new");
        // An index-form cache lists its layers under `manifests`: the
        // helper must see them, or this test proves nothing.
        assert!(keep.len() >= 4, "{label}: {keep:?}");
        let before = blob_files(&dir);
        let gone: BTreeSet<String> = before.difference(&keep).cloned().collect();
        assert!(
            !referenced(&dir, "old").is_subset(&keep),
            "{label}: the old cache has blobs of its own"
        );

        let (report, _) = prune_json(&base, &["--keep", "1"], &local(&dir));
        assert_eq!(report["counts"]["deleted"], 1, "{label}: {report}");
        assert_eq!(report["counts"]["kept"], 1, "{label}: {report}");
        assert_eq!(row(&report, "new")["action"], "kept", "{label}");
        assert_eq!(row(&report, "old")["action"], "deleted", "{label}");
        assert_eq!(report["blobs"]["removed"], gone.len(), "{label}: {report}");
        assert_eq!(report["blobs"]["kept"], keep.len(), "{label}: {report}");
        assert_eq!(report["blobs"]["skipped_reason"], Value::Null, "{label}");
        assert_eq!(blob_files(&dir), keep, "{label}");
        assert_intact(&dir, &keep);
        assert_restores(&base, &from("new"), &new_cwd.join("tree"), label);
        regcache(&base)
            .args([
                "-q",
                "restore",
                "--fail-on-miss",
                "--cache-from",
                &from("old"),
            ])
            .assert()
            .code(1);
    }
}

#[test]
fn blobs_only_keeps_everything_every_cache_form_references() {
    let tmp = tempfile::tempdir().unwrap();
    for (label, params, media_type) in FORMS {
        let base = tmp.path().join(label.replace(' ', "-"));
        let dir = base.join("cache");
        let to = format!("type=local,dest={}{params}", dir.display());
        let from = format!("type=local,src={}", dir.display());
        let first = base.join("first");
        small_tree(&first, "first");
        save_tree(&first, &to);
        // The same tag saved again: the first save's blobs are what
        // buildx's reset=true would leave behind.
        let second = base.join("second");
        build_rich_tree(&second.join("tree"));
        save_tree(&second, &to);
        assert_eq!(entry(&dir, "latest")["mediaType"], media_type, "{label}");
        let keep = referenced(&dir, "latest");
        assert!(keep.len() >= 4, "{label}: {keep:?}");
        let before = blob_files(&dir);
        let stale: BTreeSet<String> = before.difference(&keep).cloned().collect();
        assert!(!stale.is_empty(), "{label}");
        let index_before = fs::read(dir.join("index.json")).unwrap();

        let (report, stderr) = prune_json(&base, &["--blobs-only"], &local(&dir));
        assert_eq!(report["blobs"]["removed"], stale.len(), "{label}: {report}");
        assert_eq!(report["blobs"]["kept"], keep.len(), "{label}: {report}");
        assert_eq!(report["tags"], json!([]), "{label}");
        assert!(!stderr.contains("warning"), "{label}: {stderr}");
        assert_eq!(fs::read(dir.join("index.json")).unwrap(), index_before);
        assert_eq!(blob_files(&dir), keep, "{label}");
        assert_intact(&dir, &keep);
        assert_restores(&base, &from, &second.join("tree"), label);
    }
}

fn fixture_layout(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/buildkit")
        .join(name)
        .join("layout")
}

/// The one entry of a BuildKit fixture layout's index.json (tagged
/// `latest`).
fn fixture_entry(name: &str) -> Value {
    let index: Value =
        serde_json::from_slice(&fs::read(fixture_layout(name).join("index.json")).unwrap())
            .unwrap();
    index["manifests"][0].clone()
}

/// Copies the blobs of BuildKit fixture layouts into `dir` (a layout with
/// an empty index).
fn layout_with_blobs_of(dir: &Path, fixtures: &[&str]) {
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    for name in fixtures {
        for file in fs::read_dir(fixture_layout(name).join("blobs/sha256")).unwrap() {
            let file = file.unwrap();
            fs::copy(file.path(), dir.join("blobs/sha256").join(file.file_name())).unwrap();
        }
    }
}

fn write_index(dir: &Path, entries: &[Value]) {
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

fn tagged(mut descriptor: Value, tag: &str) -> Value {
    descriptor["annotations"] = json!({ REF_NAME: tag });
    descriptor
}

/// The fixture's image-manifest cache rewritten the way BuildKit exports
/// `image-manifest=false` (see fixtures/buildkit/max-imgmf-false): an OCI
/// index whose entries are the layer descriptors, in manifest order, then
/// the cache config's descriptor last. Written into `dir`; returns its
/// descriptor. The fixtures hold no local layout of that form, so it is
/// made from the real blobs of one that BuildKit exported.
fn buildkit_index_form(dir: &Path, fixture: &str) -> Value {
    let manifest_entry = fixture_entry(fixture);
    let manifest: Value = serde_json::from_slice(
        &fs::read(
            fixture_layout(fixture)
                .join("blobs/sha256")
                .join(hex_of(&manifest_entry)),
        )
        .unwrap(),
    )
    .unwrap();
    let mut children = manifest["layers"].as_array().unwrap().clone();
    children.push(manifest["config"].clone());
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children});
    let bytes = serde_json::to_vec(&index).unwrap();
    let digest = Digest::of(&bytes);
    fs::write(dir.join("blobs/sha256").join(digest.hex()), &bytes).unwrap();
    json!({"mediaType": OCI_INDEX, "digest": digest.to_string(), "size": bytes.len()})
}

/// `regcache copy` reads every blob of the cache through a verified spool:
/// the kept cache is complete and readable by a cache reader.
fn assert_copies(cwd: &Path, dir: &Path, tag: &str) {
    let out = cwd.join(format!("copy-of-{tag}"));
    regcache(cwd)
        .args(["-q", "copy", "--fail-on-miss", "--cache-from"])
        .arg(format!("type=local,src={},tag={tag}", dir.display()))
        .arg("--cache-to")
        .arg(format!("type=local,dest={}", out.display()))
        .assert()
        .success();
    assert!(out.join("index.json").is_file());
}

#[test]
fn buildkit_local_caches_in_both_forms_keep_every_blob_they_reference() {
    // local-min (created 03:19:46.6) is newer than local-max (03:19:46.1),
    // and its three layers are among local-max's seven: keeping min and
    // deleting max must take max's own four layers, its manifest and its
    // config, and none of the layers the two share.
    let tmp = tempfile::tempdir().unwrap();
    for form in ["manifest", "index"] {
        let dir = tmp.path().join(form);
        layout_with_blobs_of(&dir, &["local-min", "local-max"]);
        let min = match form {
            "manifest" => fixture_entry("local-min"),
            _ => buildkit_index_form(&dir, "local-min"),
        };
        write_index(
            &dir,
            &[
                tagged(fixture_entry("local-max"), "max"),
                tagged(min, "min"),
            ],
        );
        fs::write(dir.join("blobs/sha256").join("0".repeat(64)), "orphan").unwrap();
        let keep = referenced(&dir, "min");
        // Manifest or index, config, three layers.
        assert_eq!(keep.len(), 5, "{form}: {keep:?}");
        let before = blob_files(&dir);
        let gone: BTreeSet<String> = before.difference(&keep).cloned().collect();
        // max's manifest, config and four own layers, and the orphan; in
        // index form also min's original image manifest, which nothing
        // references any more.
        assert_eq!(gone.len(), if form == "index" { 8 } else { 7 }, "{form}");

        let (report, _) = prune_json(tmp.path(), &["--keep", "1"], &local(&dir));
        assert_eq!(row(&report, "min")["action"], "kept", "{form}: {report}");
        assert_eq!(row(&report, "max")["action"], "deleted", "{form}: {report}");
        assert_eq!(report["blobs"]["removed"], gone.len(), "{form}: {report}");
        assert_eq!(blob_files(&dir), keep, "{form}");
        assert_intact(&dir, &keep);
        assert_copies(tmp.path(), &dir, "min");
    }
}

#[test]
fn blobs_only_keeps_a_buildkit_index_cache_whole() {
    // What buildx's reset=true leaves: the index names only the new cache
    // (BuildKit's index form), the previous export's blobs lie around.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    layout_with_blobs_of(&dir, &["local-min", "local-max"]);
    let min = buildkit_index_form(&dir, "local-min");
    write_index(&dir, &[tagged(min, "latest")]);
    let keep = referenced(&dir, "latest");
    assert_eq!(keep.len(), 5, "{keep:?}");
    let before = blob_files(&dir);
    // local-max's manifest, config, four own layers; local-min's manifest.
    assert_eq!(before.len() - keep.len(), 7);

    let (report, _) = prune_json(tmp.path(), &["--blobs-only"], &local(&dir));
    assert_eq!(report["blobs"]["removed"], 7, "{report}");
    assert_eq!(report["blobs"]["kept"], 5, "{report}");
    assert_eq!(blob_files(&dir), keep);
    assert_intact(&dir, &keep);
    assert_copies(tmp.path(), &dir, "latest");
}

// ---------------------------------------------------------------------
// Safety stops.
// ---------------------------------------------------------------------

fn registry_tags(host: &str, repo: &str) -> BTreeSet<String> {
    runtime().block_on(async {
        let reference = Reference::parse(&format!("{host}/{repo}")).unwrap();
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

/// The digest `host/repo_tag` points at, read straight from the registry.
fn registry_digest(host: &str, repo_tag: &str) -> Option<Digest> {
    runtime().block_on(async {
        let reference = Reference::parse(&format!("{host}/{repo_tag}")).unwrap();
        let store = RegistryStore::new(reference, false, &options()).unwrap();
        store.manifest_digest().await.unwrap()
    })
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Saves a small tree labelled `tag` as `host/app/cache:tag`, created
/// `days` ago.
fn registry_cache(host: &str, cwd: &Path, tag: &str, days: u64) {
    let cwd = cwd.join(format!("save-{tag}"));
    small_tree(&cwd, tag);
    let spec = format!("type=registry,ref={host}/app/cache:{tag}");
    save_tree(&cwd, &spec);
    backdate(&spec, &spec, days * DAY);
}

#[test]
fn an_unreadable_unmatched_tag_stops_prune_before_any_delete() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let host = registry.host();
    registry_cache(&host, tmp.path(), "cache-old", 5);
    registry_cache(&host, tmp.path(), "cache-new", 1);
    registry_cache(&host, tmp.path(), "main", 10);
    // `main`, which --tag leaves alone, cannot be read: prune cannot tell
    // whether it shares the manifest of cache-old, which it would delete.
    let proxy = Proxy::start(
        registry.addr,
        ProxyOptions {
            faults: vec![
                Fault::status(500, usize::MAX).matching(proxy::path_contains("/manifests/main")),
            ],
            ..Default::default()
        },
    );
    let out = regcache(tmp.path())
        .args(["prune", "--json", "--keep", "1", "--tag", "cache-*"])
        .arg(format!("{}/app/cache", proxy.host()))
        .assert()
        .code(1)
        .get_output()
        .clone();
    let report = json_of(&out);
    let error = report["error"].as_str().unwrap_or_default();
    assert!(error.contains("\"main\""), "{report}");
    assert_eq!(report["counts"]["deleted"], 0, "{report}");
    assert_ne!(row(&report, "cache-old")["action"], "deleted", "{report}");
    let seen = proxy.seen();
    assert!(proxy.faults() > 0, "the fault never fired: {seen:?}");
    assert!(
        !seen.iter().any(|s| s.method == "DELETE"),
        "prune deleted although it could not read main: {seen:?}"
    );
    assert_eq!(
        registry_tags(&host, "app/cache"),
        set(&["cache-new", "cache-old", "main"])
    );
}

/// Makes the manifest blob at `path` unreadable in one of three ways.
fn spoil_manifest(path: &Path, how: &str) {
    match how {
        "missing" => fs::remove_file(path).unwrap(),
        "not JSON" => fs::write(path, "{\"schemaVersion\": 2, \"layers\": [").unwrap(),
        // Still JSON, but not the manifest its digest names: one layer
        // digest differs in its last hex digit, as after a bit flip. Read
        // without checking the digest, it would name a blob that does not
        // exist and leave the real layer unreferenced.
        "another manifest" => {
            let mut manifest: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
            let key = if manifest.get("layers").is_some() {
                "layers"
            } else {
                "manifests"
            };
            let digest = manifest[key][0]["digest"].as_str().unwrap().to_string();
            let last = if digest.ends_with('0') { "1" } else { "0" };
            manifest[key][0]["digest"] = json!(format!("{}{last}", &digest[..digest.len() - 1]));
            fs::write(path, serde_json::to_vec(&manifest).unwrap()).unwrap();
        }
        _ => unreachable!("{how}"),
    }
}

#[test]
fn an_unreadable_remaining_manifest_means_no_blob_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    for how in ["missing", "not JSON", "another manifest"] {
        let base = tmp.path().join(how.replace(' ', "-"));
        let dir = base.join("cache");
        for (tag, days) in [("old", 5), ("new", 1)] {
            let cwd = base.join(tag);
            small_tree(&cwd, tag);
            let to = format!("type=local,dest={},tag={tag}", dir.display());
            save_tree(&cwd, &to);
            let from = format!("type=local,src={},tag={tag}", dir.display());
            backdate(&from, &to, days * DAY);
        }
        fs::write(dir.join("blobs/sha256").join("0".repeat(64)), "orphan").unwrap();
        let new_manifest = hex_of(&entry(&dir, "new"));
        spoil_manifest(&dir.join("blobs/sha256").join(&new_manifest), how);
        let before = blob_files(&dir);
        let old_blobs = referenced(&dir, "old");

        // Only `old` is judged; `new` remains, and what it references is
        // unknown.
        let (report, stderr) = prune_json(&base, &["--keep", "0", "--tag", "old"], &local(&dir));
        assert_eq!(row(&report, "old")["action"], "deleted", "{how}: {report}");
        assert!(
            !index_of(&dir).to_string().contains("\"old\""),
            "{how}: the old tag stayed"
        );
        assert_eq!(report["blobs"]["removed"], 0, "{how}: {report}");
        let reason = report["blobs"]["skipped_reason"]
            .as_str()
            .unwrap_or_default();
        assert!(reason.contains(&new_manifest), "{how}: {report}");
        assert!(stderr.contains("no blob removed"), "{how}: {stderr}");
        assert_eq!(blob_files(&dir), before, "{how}: a blob was removed");
        assert!(old_blobs.is_subset(&before));
    }
}

#[test]
fn a_missing_repository_is_a_warning_and_exit_0() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    // Another repository exists: the registry itself answers.
    registry_cache(&registry.host(), tmp.path(), "cache-1", 1);
    let (report, stderr) = prune_json(
        tmp.path(),
        &["--keep", "1"],
        &format!("{}/app/never-pushed", registry.host()),
    );
    assert_eq!(report["error"], Value::Null, "{report}");
    assert_eq!(report["tags"], json!([]));
    assert_eq!(report["manifests"], json!([]));
    let notes = report["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{report}");
    assert!(
        notes[0].as_str().unwrap().contains("no such repository"),
        "{report}"
    );
    assert!(
        stderr.contains("warning:") && stderr.contains("no such repository"),
        "{stderr}"
    );
    assert_eq!(
        registry_tags(&registry.host(), "app/cache"),
        set(&["cache-1"])
    );
}

#[test]
fn tmp_files_and_untagged_entries_are_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    for (tag, days) in [("a", 5), ("b", 1), ("c", 3)] {
        let cwd = tmp.path().join(tag);
        small_tree(&cwd, tag);
        let to = format!("type=local,dest={},tag={tag}", dir.display());
        save_tree(&cwd, &to);
        let from = format!("type=local,src={},tag={tag}", dir.display());
        backdate(&from, &to, days * DAY);
    }
    // `c` loses its tag: an untagged entry, as `docker buildx` or an OCI
    // tool may leave. --keep 0 would delete it if prune touched it.
    let mut index = index_of(&dir);
    let untagged = {
        let entries = index["manifests"].as_array_mut().unwrap();
        let c = entries
            .iter_mut()
            .find(|m| m["annotations"][REF_NAME] == "c")
            .unwrap();
        c.as_object_mut().unwrap().remove("annotations");
        c.clone()
    };
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    // A blob a writer is still writing, named as regcache's writers name
    // them (`.tmp-PID-N-<digest hex>`), and one named like BuildKit's
    // content store ingest.
    let in_flight = [
        format!(".tmp-4242-0-{}", "a".repeat(64)),
        ".tmp-ingest-1234".to_string(),
    ];
    for name in &in_flight {
        fs::write(dir.join("blobs/sha256").join(name), "half a blob").unwrap();
    }
    let untagged_blobs = referenced_by(&dir, &untagged);
    assert!(untagged_blobs.len() >= 4, "{untagged_blobs:?}");

    let (report, _) = prune_json(tmp.path(), &["--keep", "0"], &local(&dir));
    assert_eq!(report["counts"]["deleted"], 2, "{report}");
    assert_eq!(report["untagged_manifests"], 1, "{report}");
    assert_eq!(index_of(&dir)["manifests"], json!([untagged]));
    let mut expected = untagged_blobs.clone();
    expected.extend(in_flight.iter().cloned());
    assert_eq!(blob_files(&dir), expected);
    assert_eq!(report["blobs"]["kept"], untagged_blobs.len(), "{report}");
    for name in &in_flight {
        assert_eq!(
            fs::read(dir.join("blobs/sha256").join(name)).unwrap(),
            b"half a blob"
        );
    }
    assert_intact(&dir, &untagged_blobs);
    let by_digest = format!(
        "type=local,src={},digest={}",
        dir.display(),
        untagged["digest"].as_str().unwrap()
    );
    assert_restores(
        tmp.path(),
        &by_digest,
        &tmp.path().join("c/tree"),
        "untagged",
    );
}

/// Whether process `pid` waits for a file lock: /proc/locks lists each
/// blocked request with `->` before its type, and the waiter's pid.
fn blocked_on_a_lock(pid: u32) -> bool {
    let locks = fs::read_to_string("/proc/locks").expect("read /proc/locks");
    locks.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&"->") && fields.get(5) == Some(&pid.to_string().as_str())
    })
}

#[test]
fn a_local_tag_moved_while_prune_waits_for_the_lock_stays() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    for (tag, days) in [("a", 5), ("next", 1)] {
        let cwd = tmp.path().join(tag);
        small_tree(&cwd, tag);
        let to = format!("type=local,dest={},tag={tag}", dir.display());
        save_tree(&cwd, &to);
        let from = format!("type=local,src={},tag={tag}", dir.display());
        backdate(&from, &to, days * DAY);
    }
    let old_a = referenced(&dir, "a");

    // Hold the lock `save` takes to update the index, so that prune judges
    // `a` and then waits where a concurrent save could move it.
    let lock = fs::File::open(dir.join("oci-layout")).unwrap();
    lock.lock().unwrap();
    let mut prune = std::process::Command::new(assert_cmd::cargo::cargo_bin("regcache"))
        .args(["prune", "--json", "--keep", "0", "--tag", "a"])
        .arg(local(&dir))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = prune.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !blocked_on_a_lock(pid) {
        assert!(
            prune.try_wait().unwrap().is_none(),
            "prune ended without waiting for the index lock"
        );
        assert!(Instant::now() < deadline, "prune never blocked on the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    // What a save of `a` does under the lock: the entry tagged `a` now
    // names another manifest (next's).
    let mut index = index_of(&dir);
    let next = entry(&dir, "next");
    for m in index["manifests"].as_array_mut().unwrap() {
        if m["annotations"][REF_NAME] == "a" {
            *m = tagged(next.clone(), "a");
        }
    }
    let temp = dir.join(".tmp-index.json");
    fs::write(&temp, serde_json::to_vec(&index).unwrap()).unwrap();
    fs::rename(&temp, dir.join("index.json")).unwrap();
    lock.unlock().unwrap();

    let out = prune.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let report = json_of(&out);
    let a = row(&report, "a");
    assert_eq!(a["action"], "kept", "{report}");
    assert!(
        a["reason"].as_str().unwrap().contains("tag changed"),
        "{report}"
    );
    assert_eq!(report["counts"]["deleted"], 0, "{report}");
    assert_eq!(entry(&dir, "a")["digest"], next["digest"]);
    // The manifest `a` named before is no longer referenced: its blobs go,
    // next's stay.
    let keep = referenced(&dir, "next");
    assert_eq!(blob_files(&dir), keep);
    assert!(!old_a.is_subset(&keep));
    assert_restores(
        tmp.path(),
        &format!("type=local,src={},tag=a", dir.display()),
        &tmp.path().join("next/tree"),
        "moved",
    );
}

#[test]
fn a_registry_tag_moved_before_the_delete_stays() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let host = registry.host();
    registry_cache(&host, tmp.path(), "cache-old", 5);
    registry_cache(&host, tmp.path(), "cache-new", 1);
    let judged = registry_digest(&host, "app/cache:cache-old").unwrap();
    // When prune sends its first DELETE, everything is judged; right then
    // another job saves cache-old again (straight to the registry, not
    // through the proxy). The proxy forwards the DELETE once the save is
    // done.
    let moved_tree = tmp.path().join("moved");
    small_tree(&moved_tree, "moved");
    let hook_host = host.clone();
    let hook_cwd = moved_tree.clone();
    let fired = Arc::new(AtomicBool::new(false));
    let hook_fired = fired.clone();
    let hook: proxy::Matcher = Arc::new(move |r: &RequestInfo| {
        if r.method == "DELETE" && !hook_fired.swap(true, Ordering::SeqCst) {
            save_tree(
                &hook_cwd,
                &format!("type=registry,ref={hook_host}/app/cache:cache-old"),
            );
        }
        false
    });
    let proxy = Proxy::start(
        registry.addr,
        ProxyOptions {
            // Never answers (times 0): its matcher is only the hook.
            faults: vec![Fault::status(500, 0).matching(hook)],
            ..Default::default()
        },
    );
    let (report, _) = prune_json(
        tmp.path(),
        &["--keep", "1"],
        &format!("{}/app/cache", proxy.host()),
    );
    assert!(fired.load(Ordering::SeqCst), "prune sent no DELETE");
    // The manifest judged old went, by digest; the tag, which names
    // another manifest by then, stays.
    assert_eq!(report["manifests"], json!([judged.to_string()]), "{report}");
    let deletes: Vec<String> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "DELETE")
        .map(|s| s.target)
        .collect();
    assert_eq!(deletes, [format!("/v2/app/cache/manifests/{judged}")]);
    assert_eq!(
        registry_tags(&host, "app/cache"),
        set(&["cache-new", "cache-old"])
    );
    let now = registry_digest(&host, "app/cache:cache-old").unwrap();
    assert_ne!(now, judged);
    assert_restores(
        tmp.path(),
        &format!("type=registry,ref={host}/app/cache:cache-old"),
        &moved_tree.join("tree"),
        "moved-registry",
    );
}

#[test]
fn prune_asks_a_token_registry_for_the_delete_action() {
    let tokens = TokenServer::start(TokenServerOptions::default());
    let registry = TestRegistry::start(tokens.registry_options());
    let tmp = tempfile::tempdir().unwrap();
    let host = registry.host();
    registry_cache(&host, tmp.path(), "cache-old", 5);
    registry_cache(&host, tmp.path(), "cache-new", 1);
    tokens.clear_requests();

    let (report, _) = prune_json(tmp.path(), &["--keep", "1"], &format!("{host}/app/cache"));
    assert_eq!(report["counts"]["deleted"], 1, "{report}");
    assert_eq!(row(&report, "cache-old")["action"], "deleted", "{report}");
    let requests = tokens.requests();
    assert!(
        requests.iter().any(|r| r.asks("app/cache", "delete")),
        "no token asked for delete: {requests:?}"
    );
    assert_eq!(registry_tags(&host, "app/cache"), set(&["cache-new"]));
}
