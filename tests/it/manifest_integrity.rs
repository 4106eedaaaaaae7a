//! Nothing may tamper with a manifest or a cache config unnoticed, through
//! the real binary: a local cache whose manifest or config blob was
//! altered, and a registry that serves other bytes under a digest.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::common::proxy::http::{Request, Response, Server};
use crate::common::regcache;
use predicates::str::contains;
use sha2::{Digest as _, Sha256};

const CACHE_CONFIG: &str = "application/vnd.buildkit.cacheconfig.v0";

fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// A local cache of a small tree; returns the cache dir.
fn local_cache(tmp: &Path) -> PathBuf {
    let cache = tmp.join("cache");
    fs::create_dir_all(tmp.join("t")).unwrap();
    fs::write(tmp.join("t/file"), "cached content").unwrap();
    regcache(tmp)
        .args([
            "save",
            "--cache-to",
            &format!("type=local,dest={}", cache.display()),
            "t",
        ])
        .assert()
        .success();
    cache
}

fn blob_path(cache: &Path, digest: &str) -> PathBuf {
    cache
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The digests of the manifest the index names and of its cache config
/// (the manifest's config, or in an index the entry of the config type).
fn manifest_and_config(cache: &Path) -> (String, String) {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(cache.join("index.json")).unwrap()).unwrap();
    let manifest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let body: serde_json::Value =
        serde_json::from_slice(&fs::read(blob_path(cache, &manifest)).unwrap()).unwrap();
    let config = match body["config"]["mediaType"].as_str() {
        Some(CACHE_CONFIG) => body["config"]["digest"].as_str().unwrap().to_string(),
        _ => body["manifests"]
            .as_array()
            .or(body["layers"].as_array())
            .unwrap()
            .iter()
            .find(|d| d["mediaType"] == CACHE_CONFIG)
            .expect("a cache config descriptor")["digest"]
            .as_str()
            .unwrap()
            .to_string(),
    };
    (manifest, config)
}

/// Flips one byte: same size, other content.
fn flip_a_byte(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    fs::write(path, bytes).unwrap();
}

/// `inspect` refuses the cache with `expected` in its error, and `restore
/// --fail-on-miss` refuses it too (with the reason in its warning),
/// writing nothing.
fn refused(tmp: &Path, cache: &Path, expected: &str) {
    let from = format!("type=local,src={}", cache.display());
    regcache(tmp)
        .args(["inspect", &from])
        .assert()
        .failure()
        .stderr(contains(expected));
    let dst = tmp.join("dst");
    fs::create_dir_all(&dst).unwrap();
    regcache(&dst)
        .args(["restore", "--fail-on-miss", "--cache-from", &from])
        .assert()
        .code(1)
        .stderr(contains(expected));
    assert!(!dst.join("t").exists(), "a refused cache was restored");
}

#[test]
fn a_local_manifest_blob_that_does_not_hash_to_its_digest_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = local_cache(tmp.path());
    let (manifest, _) = manifest_and_config(&cache);
    let path = blob_path(&cache, &manifest);
    let original = fs::read(&path).unwrap();
    flip_a_byte(&path);
    let actual = sha256(&fs::read(&path).unwrap());
    refused(
        tmp.path(),
        &cache,
        &format!("manifest blob {manifest}: digest mismatch (content hashes to {actual})"),
    );
    // Longer than the index says: refused by its size before it is read.
    let mut longer = original.clone();
    longer.push(b'\n');
    fs::write(&path, &longer).unwrap();
    refused(
        tmp.path(),
        &cache,
        &format!(
            "manifest blob {manifest} has {} bytes, expected {}",
            longer.len(),
            original.len()
        ),
    );
    // The untouched blob is accepted: the refusals were about content.
    fs::write(&path, &original).unwrap();
    regcache(tmp.path())
        .args(["inspect", &format!("type=local,src={}", cache.display())])
        .assert()
        .success();
}

#[test]
fn a_local_config_blob_that_does_not_hash_to_its_digest_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = local_cache(tmp.path());
    let (_, config) = manifest_and_config(&cache);
    let path = blob_path(&cache, &config);
    flip_a_byte(&path);
    let actual = sha256(&fs::read(&path).unwrap());
    refused(
        tmp.path(),
        &cache,
        &format!("blob {config}: digest mismatch (content hashes to {actual})"),
    );
    refused(tmp.path(), &cache, "cache config: ");
}

/// A registry that answers a digest reference with other bytes (and even
/// claims the asked-for digest in `Docker-Content-Digest`) is refused by
/// `inspect` and `restore` alike.
#[test]
fn a_registry_serving_other_bytes_for_a_digest_is_refused() {
    let pushed = br#"{"schemaVersion":2,"note":"what was pushed"}"#;
    let served = br#"{"schemaVersion":2,"note":"what is served"}"#.to_vec();
    let (wanted, actual) = (sha256(pushed), sha256(&served));
    let claim = wanted.clone();
    let registry = Server::start(Arc::new(move |request: &Request| {
        if request.path() == "/v2/" {
            return Response::text(200, "");
        }
        Response {
            status: 200,
            headers: vec![
                (
                    "Content-Type".into(),
                    "application/vnd.oci.image.manifest.v1+json".into(),
                ),
                ("Docker-Content-Digest".into(), claim.clone()),
            ],
            body: served.clone(),
        }
    }));
    let reference = format!("{}/app/cache@{wanted}", registry.addr);
    let expected = format!("the manifest's content hashes to {actual}, not the {wanted} asked for");
    let tmp = tempfile::tempdir().unwrap();
    regcache(tmp.path())
        .args(["inspect", &reference])
        .assert()
        .failure()
        .stderr(contains(expected.as_str()));
    regcache(tmp.path())
        .args(["restore", "--fail-on-miss", "--cache-from", &reference])
        .assert()
        .code(1)
        .stderr(contains(expected.as_str()));
}
