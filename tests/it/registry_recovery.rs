//! The recovery paths docs/registry-client.md promises, through the real
//! binary and the real registry, with the faults made by the proxy: a HEAD
//! that redirects means present, connection errors are retried, and a
//! closing PUT whose answer is lost is settled by a HEAD instead of a new
//! upload.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::common::proxy::{
    self, DropRule, DropSide, Matcher, Outcome, Proxy, ProxyOptions, Redirect,
};
use crate::common::registry::{RegistryOptions, TestRegistry};
use crate::common::{pseudo_random, regcache, snapshot};

fn tree(root: &Path, big_mib: usize) {
    fs::create_dir_all(root).unwrap();
    fs::write(root.join("big.bin"), pseudo_random(big_mib << 20, 23)).unwrap();
    fs::write(root.join("small.txt"), "small").unwrap();
}

/// `save` of `tree` under `dir` to `host`, uncompressed (so a second save
/// makes the very same blobs); returns the target's metadata report.
fn save(dir: &Path, host: &str, tag: &str) -> serde_json::Value {
    let meta = dir.join("meta.json");
    regcache(dir)
        .args(["--metadata-file", meta.to_str().unwrap(), "save"])
        .args([
            "--cache-to",
            &format!("type=registry,ref={host}/app/cache:{tag},compression=uncompressed"),
            "tree",
        ])
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    report["cache_to"][0].clone()
}

/// `copy` of `from_tag` to `to_tag` in the same repository; returns the
/// target's metadata report. Unlike a save, whose fresh layers stream to
/// the registry as they are packed, a copy asks the target about each
/// large blob first.
fn copy(
    dir: &Path,
    from_host: &str,
    to_host: &str,
    from_tag: &str,
    to_tag: &str,
) -> serde_json::Value {
    let meta = dir.join("copy-meta.json");
    regcache(dir)
        .args(["--metadata-file", meta.to_str().unwrap(), "copy"])
        .args([
            "--cache-from",
            &format!("type=registry,ref={from_host}/app/cache:{from_tag}"),
            "--cache-to",
            &format!("type=registry,ref={to_host}/app/cache:{to_tag}"),
        ])
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    report["cache_to"][0].clone()
}

fn restore_and_compare(from: &Path, host: &str, tag: &str) {
    let dst = tempfile::tempdir().unwrap();
    regcache(dst.path())
        .args([
            "restore",
            "--cache-from",
            &format!("{host}/app/cache:{tag}"),
        ])
        .assert()
        .success();
    assert_eq!(
        snapshot(&from.join("tree")),
        snapshot(&dst.path().join("tree"))
    );
}

/// Cuts the first `times` requests `matches` picks before any answer: the
/// connection closes once the request head is read, and the registry never
/// sees it.
fn hang_up(matches: Matcher, times: usize) -> DropRule {
    DropRule {
        matches,
        nth: 1,
        times,
        after_bytes: 0,
        side: DropSide::Request {
            forward_partial: false,
        },
    }
}

fn is_blob_head() -> Matcher {
    proxy::both(
        proxy::methods(&["HEAD"]),
        proxy::path_contains("/blobs/sha256:"),
    )
}

/// A blob existence check answered with a 307 to storage means the blob
/// is there: it is not uploaded, and the redirect is not followed.
#[test]
fn a_head_that_redirects_means_the_blob_is_present() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    tree(&tmp.path().join("tree"), 1);
    save(tmp.path(), &registry.host(), "main");

    // A copy to another tag: no manifest there, so every large blob gets
    // a HEAD (blobs of 64 KiB or less are sent without asking). The proxy
    // turns the registry's 200 into a 307 to its blob host.
    let proxy = Proxy::start(
        registry.addr,
        ProxyOptions {
            redirect: Some(Redirect {
                matches: is_blob_head(),
                ..Redirect::default()
            }),
            ..Default::default()
        },
    );
    let report = copy(tmp.path(), &registry.host(), &proxy.host(), "main", "other");
    let seen = proxy.seen();
    let digest_of = |target: &str| target.rsplit("sha256").next().unwrap().replace("%3A", ":");
    let headed: BTreeSet<String> = seen
        .iter()
        .filter(|s| s.method == "HEAD" && s.target.contains("/blobs/sha256:"))
        .map(|s| digest_of(&s.target))
        .collect();
    let uploaded: BTreeSet<String> = seen
        .iter()
        .filter(|s| s.method == "PUT" && s.target.contains("/blobs/uploads/"))
        .map(|s| digest_of(&s.target))
        .collect();
    assert!(proxy.redirects() >= 1, "the layer: {seen:?}");
    assert_eq!(
        headed.difference(&uploaded).count(),
        proxy.redirects(),
        "a blob whose HEAD redirected was uploaded: {seen:?}"
    );
    assert_eq!(
        report["uploaded_blobs"].as_u64(),
        Some(uploaded.len() as u64)
    );
    assert_eq!(
        report["reused_blobs"].as_u64(),
        Some(proxy.redirects() as u64),
        "{report}"
    );
    assert_eq!(
        proxy.blob_host().unwrap().requests().len(),
        0,
        "a HEAD's redirect was followed"
    );
    restore_and_compare(tmp.path(), &registry.host(), "other");
}

/// Connections that close before any answer (the registry restarting, a
/// load balancer dropping idle connections) are retried with backoff, for
/// every kind of request that is not an upload chunk.
#[test]
fn requests_cut_before_an_answer_are_retried() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let manifest_get = || {
        proxy::both(
            proxy::methods(&["GET"]),
            proxy::path_contains("/manifests/"),
        )
    };
    let upload_post = || {
        proxy::both(
            proxy::methods(&["POST"]),
            proxy::path_contains("/blobs/uploads/"),
        )
    };
    let proxy = Proxy::start(
        registry.addr,
        ProxyOptions {
            drops: vec![
                hang_up(is_blob_head(), 2),
                hang_up(upload_post(), 2),
                hang_up(manifest_get(), 2),
                hang_up(proxy::blob_get(), 2),
            ],
            ..Default::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    tree(&tmp.path().join("tree"), 1);
    save(tmp.path(), &proxy.host(), "main");
    // A save streams its fresh layers; a copy asks about them (HEAD).
    copy(tmp.path(), &proxy.host(), &proxy.host(), "main", "copy");
    restore_and_compare(tmp.path(), &proxy.host(), "main");

    let seen = proxy.seen();
    assert_eq!(proxy.drops(), 8, "{seen:?}");
    for kind in [
        is_blob_head(),
        upload_post(),
        manifest_get(),
        proxy::blob_get(),
    ] {
        let matching: Vec<_> = seen
            .iter()
            .filter(|s| {
                kind(&proxy::RequestInfo {
                    index: s.index,
                    method: s.method.clone(),
                    target: s.target.clone(),
                    headers: Vec::new(),
                })
            })
            .collect();
        let cut: Vec<_> = matching
            .iter()
            .filter(|s| s.outcome == Outcome::DroppedRequest)
            .collect();
        assert_eq!(cut.len(), 2, "{matching:?}");
        // Requests run in parallel, so a retry need not come next; but
        // each cut request is sent again, whole, and gets through.
        for cut in cut {
            assert!(
                matching.iter().any(|s| s.index > cut.index
                    && s.target == cut.target
                    && s.outcome == Outcome::Forwarded),
                "{} {} was not retried: {matching:?}",
                cut.method,
                cut.target
            );
        }
    }
}

/// The closing `PUT ?digest=` of an upload reaches the registry whole, and
/// the connection breaks before its answer: the registry has committed the
/// blob. A HEAD finds it and the save goes on; nothing is uploaded twice.
/// Both kinds of closing PUT are cut: the empty one after a chunked
/// upload's PATCHes, and the one that carries a small blob whole.
#[test]
fn a_closing_put_whose_answer_is_lost_is_settled_by_a_head() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let closing_put = |empty: bool| -> Matcher {
        std::sync::Arc::new(move |r: &proxy::RequestInfo| {
            r.method == "PUT"
                && r.path().contains("/blobs/uploads/")
                && (r.header("content-length") == Some("0")) == empty
        })
    };
    // A cut "after" more bytes than the body has: the registry gets all of
    // it, the client gets no answer.
    let proxy = Proxy::start(
        registry.addr,
        ProxyOptions {
            drops: vec![
                DropRule::request_body(1, u64::MAX).matching(closing_put(true)),
                DropRule::request_body(1, u64::MAX).matching(closing_put(false)),
            ],
            ..Default::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    // 40 MiB: more than one 32 MiB chunk, so that blob goes up as PATCHes.
    tree(&tmp.path().join("tree"), 40);
    let report = save(tmp.path(), &proxy.host(), "main");
    let seen = proxy.seen();
    assert_eq!(proxy.drops(), 2, "{seen:?}");

    let uploaded = report["uploaded_blobs"].as_u64().unwrap();
    let count = |method: &str, needle: &str| {
        seen.iter()
            .filter(|s| s.method == method && s.target.contains(needle))
            .count() as u64
    };
    assert_eq!(
        count("POST", "/blobs/uploads/"),
        uploaded,
        "an upload started over: {seen:?}"
    );
    assert_eq!(
        count("PUT", "/blobs/uploads/"),
        uploaded,
        "a closing PUT was sent again: {seen:?}"
    );
    assert_eq!(
        count("PATCH", "/blobs/uploads/"),
        2,
        "40 MiB in two chunks, once: {seen:?}"
    );
    for cut in seen.iter().filter(|s| s.outcome == Outcome::DroppedRequest) {
        let hex = cut
            .target
            .split("digest=sha256%3A")
            .nth(1)
            .expect("a closing PUT names its digest");
        let head = format!("/v2/app/cache/blobs/sha256:{hex}");
        assert!(
            seen.iter()
                .any(|s| s.index > cut.index && s.method == "HEAD" && s.target == head),
            "no HEAD for {hex} after its PUT was cut: {seen:?}"
        );
    }
    restore_and_compare(tmp.path(), &registry.host(), "main");
}
