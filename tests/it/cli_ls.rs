//! `regcache ls` against a real Distribution registry and local layout
//! directories: every tag, newest first by the caches' own creation times,
//! with what each holds; tags that are not caches listed as such.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use crate::common::aging::{DAY, backdate};
use crate::common::images::{push_plain_image, retag};
use crate::common::proxy::{Fault, Proxy, ProxyOptions, RequestInfo};
use crate::common::registry::{RegistryOptions, TestRegistry};
use crate::common::{json_of, regcache};
use serde_json::Value;

/// Saves the directories `paths` (each made with one file holding
/// `content`) to `spec`, with the spec's own parameters.
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

fn ls_json(cwd: &Path, repo: &str) -> Value {
    let out = regcache(cwd)
        .args(["ls", "--json", repo])
        .assert()
        .success()
        .get_output()
        .clone();
    json_of(&out)
}

fn inspect_size(cwd: &Path, spec: &str) -> u64 {
    let out = regcache(cwd)
        .args(["inspect", "--json", spec])
        .assert()
        .success()
        .get_output()
        .clone();
    json_of(&out)["total_size"].as_u64().unwrap()
}

fn tag_names(listing: &Value) -> Vec<String> {
    listing["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap().to_string())
        .collect()
}

fn row<'a>(listing: &'a Value, tag: &str) -> &'a Value {
    listing["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tag"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {listing}"))
}

#[test]
fn a_registry_repository_is_listed_newest_first_with_what_each_tag_holds() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let reg = |tag: &str| format!("type=registry,ref={}/app:{tag}", registry.host());
    // Names sort opposite to the ages, so a listing by name fails.
    save(cwd, &reg("a-old"), &["target"], "old");
    backdate(&reg("a-old"), &reg("a-old"), 3 * DAY);
    save(
        cwd,
        &format!("{},mode=max", reg("b-mid")),
        &["target", "node_modules"],
        "mid",
    );
    backdate(&reg("b-mid"), &reg("b-mid"), 2 * DAY);
    // A cache BuildKit wrote with mode=max, copied as is.
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/buildkit/local-max/layout");
    regcache(cwd)
        .args(["-q", "copy", "--cache-from"])
        .arg(format!("type=local,src={}", fixture.display()))
        .args(["--cache-to", &format!("{},mode=max", reg("c-new"))])
        .assert()
        .success();
    backdate(&reg("c-new"), &reg("c-new"), DAY);
    push_plain_image(&reg("image"));

    let repo = format!("{}/app", registry.host());
    let listing = ls_json(cwd, &repo);
    assert_eq!(listing["version"], 1);
    assert_eq!(listing["exists"], true);
    assert_eq!(listing["repository"]["type"], "registry");
    assert_eq!(listing["repository"]["ref"], repo);
    assert_eq!(tag_names(&listing), ["c-new", "b-mid", "a-old", "image"]);

    let old = row(&listing, "a-old");
    assert_eq!(old["kind"], "cache");
    assert_eq!(old["writer"], "regcache");
    assert_eq!(old["form"], "image-manifest");
    assert_eq!(old["mode"], "min");
    assert_eq!(old["entries"], serde_json::json!(["target"]));
    let age = old["age_seconds"].as_u64().unwrap();
    assert!((3 * DAY..3 * DAY + 600).contains(&age), "{age}");
    assert!(old["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        old["size"].as_u64().unwrap(),
        inspect_size(cwd, &reg("a-old"))
    );
    assert!(old["digest"].as_str().unwrap().starts_with("sha256:"));

    let mid = row(&listing, "b-mid");
    assert_eq!(mid["mode"], "max");
    assert_eq!(
        mid["entries"],
        serde_json::json!(["node_modules", "target"])
    );
    assert_eq!(
        mid["size"].as_u64().unwrap(),
        inspect_size(cwd, &reg("b-mid"))
    );

    let buildkit = row(&listing, "c-new");
    assert_eq!(buildkit["writer"], "buildkit");
    assert_eq!(buildkit["mode"], "max");
    assert_eq!(buildkit["entries"], Value::Null);

    let image = row(&listing, "image");
    assert_eq!(image["kind"], "not-a-cache");
    assert_eq!(image["writer"], Value::Null);
    assert!(
        image["reason"].as_str().unwrap().len() > 3,
        "a non-cache says why: {image}"
    );

    // The table: a header, one row per tag in the same order.
    let out = regcache(cwd)
        .args(["ls", &repo])
        .assert()
        .success()
        .get_output()
        .clone();
    let table = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("TAG"), "{table}");
    let firsts: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(firsts, ["c-new", "b-mid", "a-old", "image"], "{table}");
    assert!(lines[2].contains("node_modules, target"), "{table}");
    assert!(lines[4].contains("not a cache"), "{table}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("4 tags: 2 regcache caches, 1 BuildKit cache"),
        "{stderr}"
    );
}

/// The tag list of `repo` served in pages of `n`, as a registry that
/// paginates does (Distribution 2.8, the one the tests run, answers every
/// tag at once whatever `n` says): one proxy fault per page, answering
/// `GET …/tags/list?n=N` and each `Link` target with the next slice.
fn paged_tag_list(repo: &str, tags: &[String], n: usize) -> Vec<Fault> {
    let mut faults = Vec::new();
    let mut target = format!("/v2/{repo}/tags/list?n={n}");
    for (i, page) in tags.chunks(n).enumerate() {
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        let next = format!("/v2/{repo}/tags/list?last={}&n={n}", page[page.len() - 1]);
        if (i + 1) * n < tags.len() {
            headers.push(("Link".into(), format!("<{next}>; rel=\"next\"")));
        }
        let wanted = target.clone();
        faults.push(Fault {
            matches: Arc::new(move |r: &RequestInfo| r.method == "GET" && r.target == wanted),
            times: usize::MAX,
            status: 200,
            headers,
            body: serde_json::json!({"name": repo, "tags": page}).to_string(),
        });
        target = next;
    }
    faults
}

#[test]
fn tags_on_many_pages_are_all_listed() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let reg = |tag: &str| format!("type=registry,ref={}/paged:{tag}", registry.host());
    save(tmp.path(), &reg("t00"), &["dir"], "x");
    let mut expected = vec!["t00".to_string()];
    for i in 1..23 {
        let tag = format!("t{i:02}");
        retag(&reg("t00"), &reg(&tag));
        expected.push(tag);
    }
    let proxy = Proxy::start(
        registry.addr,
        ProxyOptions {
            faults: paged_tag_list("paged", &expected, 4),
            ..ProxyOptions::default()
        },
    );
    let out = regcache(tmp.path())
        .env("REGCACHE_TAGS_PAGE_SIZE", "4")
        .args(["ls", "--json"])
        .arg(format!("{}/paged", proxy.host()))
        .assert()
        .success()
        .get_output()
        .clone();
    let listing = json_of(&out);
    // One manifest under every tag: equal times, so the order is by name.
    assert_eq!(tag_names(&listing), expected);
    for t in listing["tags"].as_array().unwrap() {
        assert_eq!(t["kind"], "cache", "{t}");
    }
    let pages = proxy
        .seen()
        .iter()
        .filter(|s| s.target.contains("/tags/list"))
        .count();
    assert_eq!(pages, 6, "23 tags in pages of 4");
}

#[test]
fn a_local_directory_is_listed_with_untagged_entries_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let dir = cwd.join("cache");
    let dest = |tag: &str| format!("type=local,dest={},tag={tag}", dir.display());
    let src = |tag: &str| format!("type=local,src={},tag={tag}", dir.display());
    save(cwd, &dest("z-newest"), &["target"], "new");
    backdate(&src("z-newest"), &dest("z-newest"), DAY);
    save(cwd, &dest("m-oldest"), &["target"], "old");
    backdate(&src("m-oldest"), &dest("m-oldest"), 5 * DAY);
    save(cwd, &dest("a-middle"), &["vendor"], "mid");
    backdate(&src("a-middle"), &dest("a-middle"), 2 * DAY);
    push_plain_image(&dest("plain"));
    // An entry without a tag, as buildx's export of a digest leaves one.
    let index_path = dir.join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    let mut untagged = index["manifests"][0].clone();
    untagged.as_object_mut().unwrap().remove("annotations");
    index["manifests"].as_array_mut().unwrap().push(untagged);
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();

    let listing = ls_json(cwd, &format!("type=local,src={}", dir.display()));
    assert_eq!(listing["repository"]["type"], "local");
    assert_eq!(
        tag_names(&listing),
        ["z-newest", "a-middle", "m-oldest", "plain"]
    );
    assert_eq!(listing["untagged_manifests"], 1);
    assert_eq!(
        row(&listing, "a-middle")["entries"],
        serde_json::json!(["vendor"])
    );
    assert_eq!(row(&listing, "plain")["kind"], "not-a-cache");
    assert_eq!(
        row(&listing, "m-oldest")["size"].as_u64().unwrap(),
        inspect_size(cwd, &src("m-oldest"))
    );
}

#[test]
fn a_missing_repository_is_empty_and_a_tag_in_repo_is_refused() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let out = regcache(tmp.path())
        .args(["ls", "--json"])
        .arg(format!("{}/nothing/here", registry.host()))
        .assert()
        .success()
        .get_output()
        .clone();
    let listing = json_of(&out);
    assert_eq!(listing["exists"], false);
    assert_eq!(listing["tags"], serde_json::json!([]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such repository"));

    let out = regcache(tmp.path())
        .args(["ls", &format!("{}/app:cache", registry.host())])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ls REPO"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");

    // A directory that is not there is an error, as for prune.
    regcache(tmp.path())
        .args(["ls", "type=local,src=no-such-dir"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("no such directory"));
}
