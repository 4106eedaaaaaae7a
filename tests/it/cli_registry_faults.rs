//! The registry protocol under stress: a connection cut mid-upload, 5xx and
//! 429 answers, a bearer token that expires mid-push, blob redirects to
//! another host, and cross-repository mounts. Real registry, real token
//! server; the faults come from a proxy on loopback.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::common::proxy::{self, DropRule, Fault, Outcome, Proxy, ProxyOptions, Redirect};
use crate::common::registry::{PASSWORD, RegistryOptions, TestRegistry, USER};
use crate::common::token_server::{TokenServer, TokenServerOptions};
use crate::common::{pseudo_random, regcache, snapshot};

fn tree_with_big_file(root: &Path, mib: usize) {
    fs::create_dir_all(root).unwrap();
    fs::write(root.join("big.bin"), pseudo_random(mib << 20, 11)).unwrap();
    fs::write(root.join("small.txt"), "small").unwrap();
}

fn docker_config_with_password(dir: &Path, host: &str) -> std::path::PathBuf {
    use base64::Engine;
    let config = dir.join("docker-config");
    fs::create_dir_all(&config).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    fs::write(
        config.join("config.json"),
        serde_json::json!({ "auths": { host: { "auth": auth } } }).to_string(),
    )
    .unwrap();
    config
}

/// A proxy to `registry` that cuts the `nth` PATCH after 1 MiB, none of
/// which reaches the registry.
fn cutting_patch(registry: &TestRegistry, nth: usize) -> Proxy {
    Proxy::start(
        registry.addr,
        ProxyOptions {
            drops: vec![
                DropRule::request_body(nth, 1 << 20)
                    .holding_back()
                    .matching(proxy::methods(&["PATCH"])),
            ],
            ..Default::default()
        },
    )
}

/// `app/cache:main` of `registry` restores to the tree under `dir`.
fn restores_equal(registry: &TestRegistry, dir: &Path) {
    let dst = tempfile::tempdir().unwrap();
    regcache(dst.path())
        .args([
            "restore",
            "--cache-from",
            &format!("{}/app/cache:main", registry.host()),
        ])
        .assert()
        .success();
    assert_eq!(
        snapshot(&dir.join("tree")),
        snapshot(&dst.path().join("tree"))
    );
}

fn metadata(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).expect("metadata written")).expect("JSON")
}

/// Uploads of finished files (here a copy from a local cache; a save
/// streams its parts instead, see below) go in chunks, and a cut chunk
/// resumes where the registry says it is.
#[test]
fn an_upload_cut_mid_blob_resumes_from_the_registry_offset() {
    let registry = TestRegistry::start(RegistryOptions::default());
    // The second PATCH of the upload is cut after 1 MiB; none of it reaches
    // the registry, which still reports the first chunk as received.
    let proxy = cutting_patch(&registry, 2);
    let tmp = tempfile::tempdir().unwrap();
    tree_with_big_file(&tmp.path().join("tree"), 40);
    // Uncompressed, so the layer is larger than one chunk.
    let local = format!(
        "type=local,dest={},compression=uncompressed",
        tmp.path().join("cache").display()
    );
    regcache(tmp.path())
        .args(["save", "--cache-to", &local, "tree"])
        .assert()
        .success();
    let meta = tmp.path().join("meta.json");
    regcache(tmp.path())
        .args(["--metadata-file", meta.to_str().unwrap(), "copy"])
        .args(["--cache-from"])
        .arg(format!(
            "type=local,src={}",
            tmp.path().join("cache").display()
        ))
        .args([
            "--cache-to",
            &format!("type=registry,ref={}/app/cache:main", proxy.host()),
        ])
        .assert()
        .success();
    assert_eq!(
        proxy.drops(),
        1,
        "the proxy never cut the upload: {:?}",
        proxy.seen()
    );
    let seen = proxy.seen();
    let cut = seen
        .iter()
        .position(|s| s.outcome == Outcome::DroppedRequest)
        .unwrap();
    assert!(
        seen[cut..]
            .iter()
            .any(|s| s.method == "GET" && s.target.contains("/blobs/uploads/")),
        "the client did not ask the registry for the upload's offset: {seen:?}"
    );
    let posts = seen
        .iter()
        .filter(|s| s.method == "POST" && s.target.contains("/blobs/uploads/"))
        .count() as u64;
    let uploaded = metadata(&meta)["cache_to"][0]["uploaded_blobs"]
        .as_u64()
        .unwrap();
    assert_eq!(
        posts, uploaded,
        "an upload was started over instead of resumed: {seen:?}"
    );

    restores_equal(&registry, tmp.path());
}

/// A save streams each part while packing it; when that stream is cut, the
/// finished layer is sent again (resumably) and the save still succeeds.
#[test]
fn a_cut_streamed_part_is_sent_again_from_the_finished_layer() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let proxy = cutting_patch(&registry, 1);
    let tmp = tempfile::tempdir().unwrap();
    tree_with_big_file(&tmp.path().join("tree"), 8);
    let meta = tmp.path().join("meta.json");
    let reg = format!(
        "type=registry,ref={}/app/cache:main,compression=uncompressed",
        proxy.host()
    );
    let out = regcache(tmp.path())
        .args(["-v", "--progress", "plain"])
        .args(["--metadata-file", meta.to_str().unwrap(), "save"])
        .args(["--cache-to", &reg, "tree"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(proxy.drops(), 1, "the proxy never cut the stream: {stderr}");
    assert!(
        stderr.contains("tree: part 0 -> ") && stderr.contains("sent again when packed"),
        "{stderr}"
    );
    let target = &metadata(&meta)["cache_to"][0];
    assert!(target["error"].is_null(), "{target}");
    restores_equal(&registry, tmp.path());
}

#[test]
fn server_errors_and_rate_limits_are_retried() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let proxy = Proxy::start(
        registry.addr,
        ProxyOptions {
            faults: vec![Fault::status(503, 2), Fault::too_many_requests(1, 1)],
            ..Default::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    tree_with_big_file(&tmp.path().join("tree"), 1);
    regcache(tmp.path())
        .args([
            "save",
            "--cache-to",
            &format!("{}/app/cache:main", proxy.host()),
            "tree",
        ])
        .assert()
        .success();
    assert_eq!(proxy.faults(), 3);
    let dst = tempfile::tempdir().unwrap();
    regcache(dst.path())
        .args([
            "restore",
            "--cache-from",
            &format!("{}/app/cache:main", proxy.host()),
        ])
        .assert()
        .success();
    assert_eq!(
        snapshot(&tmp.path().join("tree")),
        snapshot(&dst.path().join("tree"))
    );
}

#[test]
fn a_bearer_token_that_expires_mid_push_is_refreshed() {
    let tokens = TokenServer::start(TokenServerOptions {
        lifetime: Duration::from_secs(2),
        ..TokenServerOptions::with_test_credentials()
    });
    let registry = TestRegistry::start(tokens.registry_options());
    // The manifest PUT is told to come back in 3 s: by then the token the
    // push started with has expired.
    let proxy = Proxy::start(
        registry.addr,
        ProxyOptions {
            faults: vec![Fault::too_many_requests(1, 3).matching(proxy::both(
                proxy::methods(&["PUT"]),
                proxy::path_contains("/manifests/"),
            ))],
            ..Default::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    tree_with_big_file(&tmp.path().join("tree"), 1);
    let config = docker_config_with_password(tmp.path(), &proxy.host());
    regcache(tmp.path())
        .env("DOCKER_CONFIG", &config)
        .args([
            "save",
            "--cache-to",
            &format!("{}/app/cache:main", proxy.host()),
            "tree",
        ])
        .assert()
        .success();
    assert_eq!(proxy.faults(), 1);
    // Renewed before it expired, not after a refusal: the retried manifest
    // PUT already carries a new token, so there are exactly two PUTs (a
    // client that waited for the registry's 401 would send a third).
    let puts: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "PUT" && s.target.contains("/manifests/"))
        .collect();
    assert_eq!(puts.len(), 2, "{puts:?}");
    let (first, retried) = (&puts[0].authorization_value, &puts[1].authorization_value);
    assert!(first.is_some() && retried.is_some(), "{puts:?}");
    assert_ne!(first, retried, "the retried PUT reused the expired token");
    let push_tokens = tokens
        .requests()
        .iter()
        .filter(|r| {
            r.status == 200
                && r.scopes
                    .iter()
                    .any(|s| s.actions.iter().any(|a| a == "push"))
        })
        .count();
    assert_eq!(push_tokens, 2, "one push token, then its renewal");
    let dst = tempfile::tempdir().unwrap();
    regcache(dst.path())
        .env("DOCKER_CONFIG", &config)
        .args([
            "restore",
            "--cache-from",
            &format!("{}/app/cache:main", proxy.host()),
        ])
        .assert()
        .success();
    assert_eq!(
        snapshot(&tmp.path().join("tree")),
        snapshot(&dst.path().join("tree"))
    );
}

#[test]
fn no_authorization_header_follows_a_redirect_to_another_host() {
    let tokens = TokenServer::start(TokenServerOptions::with_test_credentials());
    let registry = TestRegistry::start(tokens.registry_options());
    let tmp = tempfile::tempdir().unwrap();
    tree_with_big_file(&tmp.path().join("tree"), 1);
    let direct = docker_config_with_password(tmp.path(), &registry.host());
    regcache(tmp.path())
        .env("DOCKER_CONFIG", &direct)
        .args([
            "save",
            "--cache-to",
            &format!("{}/app/cache:main", registry.host()),
            "tree",
        ])
        .assert()
        .success();

    let proxy = Proxy::start(
        registry.addr,
        ProxyOptions {
            redirect: Some(Redirect::default()),
            ..Default::default()
        },
    );
    let via_proxy = tempfile::tempdir().unwrap();
    let config = docker_config_with_password(via_proxy.path(), &proxy.host());
    let dst = via_proxy.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    regcache(&dst)
        .env("DOCKER_CONFIG", &config)
        .args([
            "restore",
            "--cache-from",
            &format!("{}/app/cache:main", proxy.host()),
        ])
        .assert()
        .success();
    assert!(
        proxy.redirects() >= 1,
        "no blob was redirected: {:?}",
        proxy.seen()
    );
    let blob_host = proxy.blob_host().unwrap();
    assert!(!blob_host.requests().is_empty());
    assert!(
        !blob_host.saw_authorization(),
        "credentials were sent to the redirect target"
    );
    assert_eq!(
        snapshot(&tmp.path().join("tree")),
        snapshot(&dst.join("tree"))
    );
}

#[test]
fn a_second_repository_of_the_same_registry_gets_blobs_by_mount() {
    let tokens = TokenServer::start(TokenServerOptions::with_test_credentials());
    let registry = TestRegistry::start(tokens.registry_options());
    let tmp = tempfile::tempdir().unwrap();
    tree_with_big_file(&tmp.path().join("tree"), 4);
    let config = docker_config_with_password(tmp.path(), &registry.host());
    let meta = tmp.path().join("meta.json");
    regcache(tmp.path())
        .env("DOCKER_CONFIG", &config)
        .args(["--metadata-file", meta.to_str().unwrap(), "save"])
        .args([
            "--cache-to",
            &format!("{}/team/app-main:cache", registry.host()),
        ])
        .args([
            "--cache-to",
            &format!("{}/team/app-branch:cache", registry.host()),
        ])
        .arg("tree")
        .assert()
        .success();
    let meta = metadata(&meta);
    let second = &meta["cache_to"][1];
    assert!(
        second["uploaded_bytes"].as_u64().unwrap() < 64 * 1024,
        "layers were uploaded again instead of mounted: {second}"
    );
    assert!(
        tokens
            .requests()
            .iter()
            .any(|r| r.asks("team/app-main", "pull") && r.asks("team/app-branch", "push")),
        "no token covered the cross-repository mount"
    );
    let dst = tempfile::tempdir().unwrap();
    regcache(dst.path())
        .env("DOCKER_CONFIG", &config)
        .args([
            "restore",
            "--cache-from",
            &format!("{}/team/app-branch:cache", registry.host()),
        ])
        .assert()
        .success();
    assert_eq!(
        snapshot(&tmp.path().join("tree")),
        snapshot(&dst.path().join("tree"))
    );
}
