//! `type=registry` against the real Distribution registry: round trips
//! through the binary, what the registry stores, misses, chunked uploads,
//! resumable downloads and cross-repository mounts through `RegistryStore`.

use crate::common;

use std::fs;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::common::registry::{RegistryOptions, TestRegistry};
use crate::common::{build_rich_tree, json_of, pseudo_random, regcache, snapshot};
use regcache::digest::Digest;
use regcache::image::{CacheImage, Descriptor, RawManifest, media_types};
use regcache::progress::BlobProgress;
use regcache::reference::Reference;
use regcache::store::registry::RegistryStore;
use regcache::store::registry::upload::DEFAULT_CHUNK;
use regcache::store::{CacheStore, StoreOptions};

fn store(registry: &TestRegistry, name: &str) -> RegistryStore {
    let reference = Reference::parse(&format!("{}/{name}", registry.host())).unwrap();
    RegistryStore::new(reference, false, &StoreOptions::default()).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Reads a whole blob through the store's streaming reader, on a blocking
/// thread as the callers do.
async fn read_blob(store: &RegistryStore, desc: &Descriptor) -> Vec<u8> {
    let mut reader = store.open_blob(desc).await.unwrap();
    tokio::task::spawn_blocking(move || {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).unwrap();
        bytes
    })
    .await
    .unwrap()
}

/// Plain HTTP GET with one Accept header, as another client would.
fn get(url: &str, accept: &str) -> (u16, Option<String>, Option<String>, Vec<u8>) {
    runtime().block_on(async {
        let response = common::http_client()
            .build()
            .unwrap()
            .get(url)
            .header("Accept", accept)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (content_type, digest) = (header("content-type"), header("docker-content-digest"));
        (
            status,
            content_type,
            digest,
            response.bytes().await.unwrap().to_vec(),
        )
    })
}

#[test]
fn round_trip_through_a_plain_registry() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let (run1, run2) = (tmp.path().join("run1"), tmp.path().join("run2"));
    build_rich_tree(&run1.join("tree"));
    fs::create_dir_all(&run2).unwrap();
    let reference = format!("{}/team/app:cache", registry.host());
    let first_meta = tmp.path().join("first.json");
    regcache(&run1)
        .args([
            "save",
            "--metadata-file",
            first_meta.to_str().unwrap(),
            "--cache-to",
            &format!("type=registry,ref={reference}"),
            "tree",
        ])
        .assert()
        .success();
    regcache(&run2)
        .args(["restore", "--cache-from", &reference])
        .assert()
        .success();
    let (expected, expected_links) = snapshot(&run1.join("tree"));
    let (actual, actual_links) = snapshot(&run2.join("tree"));
    assert_eq!(expected, actual);
    assert_eq!(expected_links, actual_links);

    let inspect = regcache(&run2)
        .args(["inspect", "--json", &reference])
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{inspect:?}");
    let report = json_of(&inspect);
    let entries = report["entries"].as_array().expect("inspect lists entries");
    assert_eq!(entries.len(), 1, "{report}");
    assert_eq!(entries[0]["path"], "tree", "{report}");

    // Saved again unchanged: every layer and the entries list are reused;
    // only the cache config, which records the save time, is sent again.
    let again_meta = tmp.path().join("again.json");
    regcache(&run1)
        .args([
            "save",
            "--metadata-file",
            again_meta.to_str().unwrap(),
            "--cache-to",
            &format!("type=registry,ref={reference}"),
            "tree",
        ])
        .assert()
        .success();
    let read = |path: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    };
    let (first, again) = (read(&first_meta), read(&again_meta));
    let first_sent = first["cache_to"][0]["uploaded_blobs"].as_u64().unwrap();
    assert!(first_sent >= 3, "layers, config and entries list: {first}");
    assert_eq!(first["cache_to"][0]["reused_blobs"], 0, "{first}");
    assert_eq!(again["cache_to"][0]["uploaded_blobs"], 1, "{again}");
    assert_eq!(
        again["cache_to"][0]["reused_blobs"].as_u64().unwrap(),
        first_sent - 1,
        "{again}"
    );
    // The config and the manifest: a few hundred bytes, not the 3 MiB tree.
    let bytes = again["cache_to"][0]["uploaded_bytes"].as_u64().unwrap();
    assert!(bytes < 4096, "{bytes} bytes sent for an unchanged tree");
}

/// Each cache form is stored as BuildKit stores it, served under its own
/// media type, and read back by regcache from the same bytes.
#[test]
fn every_form_is_stored_as_buildkit_would_and_served_for_its_accept() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("tree/d")).unwrap();
    fs::write(tmp.path().join("tree/d/f"), "content").unwrap();
    let forms = [
        ("oci-manifest", "", media_types::OCI_MANIFEST),
        ("oci-index", ",image-manifest=false", media_types::OCI_INDEX),
        (
            "docker-list",
            ",oci-mediatypes=false",
            media_types::DOCKER_MANIFEST_LIST,
        ),
    ];
    for (tag, params, media_type) in forms {
        let reference = format!("{}/forms:{tag}", registry.host());
        regcache(tmp.path())
            .args([
                "save",
                "--cache-to",
                &format!("type=registry,ref={reference}{params}"),
                "tree",
            ])
            .assert()
            .success();
        let url = format!("http://{}/v2/forms/manifests/{tag}", registry.host());
        let (status, content_type, digest, bytes) = get(&url, media_type);
        assert_eq!(status, 200, "{tag}: {}", String::from_utf8_lossy(&bytes));
        assert_eq!(content_type.as_deref(), Some(media_type), "{tag}");
        assert_eq!(
            digest.as_deref(),
            Some(Digest::of(&bytes).to_string().as_str()),
            "{tag}"
        );
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["mediaType"], media_type, "{tag}");

        // regcache's own fetch sends every type and gets the same bytes.
        let store = store(&registry, &format!("forms:{tag}"));
        let rt = runtime();
        let raw = rt
            .block_on(store.fetch_manifest())
            .unwrap()
            .expect("the manifest exists");
        assert_eq!(raw.bytes, bytes, "{tag}");
        assert_eq!(raw.media_type, media_type, "{tag}");
        let image = CacheImage::decode(&raw).unwrap();
        assert_eq!(image.config.media_type, media_types::CACHE_CONFIG, "{tag}");
        // Every blob the manifest names is in this repository.
        for desc in image.descriptors() {
            assert!(
                rt.block_on(store.has_blob(desc)).unwrap(),
                "{tag}: {}",
                desc.digest
            );
        }
        let config = rt.block_on(store.read_small_blob(&image.config)).unwrap();
        assert!(serde_json::from_slice::<serde_json::Value>(&config).unwrap()["layers"].is_array());
        if tag == "oci-manifest" {
            // Why every type goes into Accept: Distribution will not serve
            // an OCI manifest to a client asking for Docker's type only.
            let (status, _, _, _) = get(&url, media_types::DOCKER_MANIFEST);
            assert_eq!(status, 404, "Distribution hides types not accepted");
        }
    }
}

#[test]
fn a_missing_ref_is_a_miss_and_an_unreachable_registry_an_error() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let rt = runtime();
    // No such repository.
    assert_eq!(
        rt.block_on(store(&registry, "nobody/here:t").fetch_manifest())
            .unwrap(),
        None
    );
    // The repository exists, the tag does not.
    let existing = store(&registry, "some/repo:one");
    let blob = b"a config".to_vec();
    let desc = Descriptor::for_bytes(media_types::CACHE_CONFIG, &blob);
    rt.block_on(existing.put_blob_bytes(&desc, &blob)).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": desc,
        "layers": [],
    });
    let raw = RawManifest::new(
        media_types::OCI_MANIFEST,
        serde_json::to_vec(&manifest).unwrap(),
    );
    rt.block_on(existing.put_manifest(&raw)).unwrap();
    assert_eq!(
        rt.block_on(store(&registry, "some/repo:two").fetch_manifest())
            .unwrap(),
        None
    );
    // By digest: present, and absent.
    let by_digest = store(&registry, &format!("some/repo@{}", raw.digest));
    assert_eq!(
        rt.block_on(by_digest.fetch_manifest())
            .unwrap()
            .unwrap()
            .bytes,
        raw.bytes
    );
    let absent = store(&registry, &format!("some/repo@{}", Digest::of(b"nothing")));
    assert_eq!(rt.block_on(absent.fetch_manifest()).unwrap(), None);
    // A registry that is not there: an error that says so.
    let port = common::registry::free_loopback_port().port();
    let gone = Reference::parse(&format!("127.0.0.1:{port}/a:b")).unwrap();
    let gone = RegistryStore::new(gone, false, &StoreOptions::default()).unwrap();
    let err = rt.block_on(gone.fetch_manifest()).unwrap_err().to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}/a:b")), "{err}");
    assert!(err.to_lowercase().contains("connect"), "{err}");
}

#[derive(Default)]
struct Counted(AtomicU64);

impl BlobProgress for Counted {
    fn advance(&self, bytes: u64) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }
    fn finish(&self, _outcome: &str) {}
}

#[test]
fn large_blobs_go_up_in_chunks_and_come_back_whole() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let rt = runtime();
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&registry, "big/blob:t");
    // Over two default chunks, not a multiple of the chunk size; and a
    // blob small enough for a single PUT.
    let large = 2 * DEFAULT_CHUNK as usize + 12345;
    for (name, len) in [("large", large), ("small", 1000)] {
        let content = pseudo_random(len, len as u64);
        let path = tmp.path().join(name);
        fs::write(&path, &content).unwrap();
        let desc = Descriptor::for_bytes(media_types::OCI_LAYER_GZIP, &content);
        assert!(!rt.block_on(store.has_blob(&desc)).unwrap());
        let progress = Counted::default();
        rt.block_on(store.put_blob_file(&desc, &path, &progress))
            .unwrap();
        assert_eq!(progress.0.load(Ordering::Relaxed), len as u64, "{name}");
        assert!(rt.block_on(store.has_blob(&desc)).unwrap(), "{name}");
        let back = rt.block_on(read_blob(&store, &desc));
        assert_eq!(back.len(), content.len(), "{name}");
        assert!(back == content, "{name}: content differs");
        // A second upload of the same blob is harmless.
        rt.block_on(store.put_blob_file(&desc, &path, &Counted::default()))
            .unwrap();
    }
    // A file that does not match its descriptor is refused before upload.
    let path = tmp.path().join("small");
    let wrong = Descriptor::new(media_types::OCI_LAYER, Digest::of(b"x"), 7);
    let err = rt
        .block_on(store.put_blob_file(&wrong, &path, &Counted::default()))
        .unwrap_err();
    assert!(err.to_string().contains("1000 bytes"), "{err}");
}

/// Distribution links blobs per repository: a manifest naming blobs that
/// live only in another repository is refused with the registry's own
/// words, and mounting them (201) makes the same manifest acceptable.
#[test]
fn blobs_are_mounted_across_repositories_of_one_registry() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let rt = runtime();
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("tree")).unwrap();
    fs::write(tmp.path().join("tree/f"), pseudo_random(100_000, 3)).unwrap();
    regcache(tmp.path())
        .args([
            "save",
            "--cache-to",
            &format!("type=registry,ref={}/src/app:main", registry.host()),
            "tree",
        ])
        .assert()
        .success();
    let source = store(&registry, "src/app:main");
    let raw = rt.block_on(source.fetch_manifest()).unwrap().unwrap();
    let image = CacheImage::decode(&raw).unwrap();
    assert_eq!(
        source.registry_repository(),
        Some((registry.host(), "src/app".to_string()))
    );

    let target = store(&registry, "dst/app:branch");
    let err = rt.block_on(target.put_manifest(&raw)).unwrap_err();
    assert!(
        err.to_string().contains("MANIFEST_BLOB_UNKNOWN"),
        "Distribution wants the blobs linked in the target: {err}"
    );
    for desc in image.descriptors() {
        assert!(!rt.block_on(target.has_blob(desc)).unwrap());
        assert!(
            rt.block_on(target.mount_blob(desc, "src/app")).unwrap(),
            "mount of {} answered 201",
            desc.digest
        );
        assert!(rt.block_on(target.has_blob(desc)).unwrap());
    }
    rt.block_on(target.put_manifest(&raw)).unwrap();
    assert_eq!(
        rt.block_on(target.fetch_manifest()).unwrap().unwrap().bytes,
        raw.bytes
    );

    // A blob the source does not hold: the registry opens an upload
    // session instead (202); the mount reports false and the upload works.
    let bytes = b"only here".to_vec();
    let desc = Descriptor::for_bytes(media_types::OCI_LAYER, &bytes);
    assert!(!rt.block_on(target.mount_blob(&desc, "src/app")).unwrap());
    assert!(!rt.block_on(target.has_blob(&desc)).unwrap());
    rt.block_on(target.put_blob_bytes(&desc, &bytes)).unwrap();
    assert!(rt.block_on(target.has_blob(&desc)).unwrap());
    // From a repository that does not exist at all: the same fallback.
    assert!(
        !rt.block_on(target.mount_blob(&desc, "no/such/repo"))
            .unwrap()
    );
}

#[test]
fn describe_and_errors_name_the_reference() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let rt = runtime();
    let s = store(&registry, "x/y:z");
    assert_eq!(s.describe(), format!("{}/x/y:z", registry.host()));
    let missing = Descriptor::new(media_types::OCI_LAYER, Digest::of(b"absent"), 6);
    let err = match rt.block_on(s.open_blob(&missing)) {
        Ok(_) => panic!("an absent blob opened"),
        Err(err) => err.to_string(),
    };
    assert!(
        err.starts_with(&format!("{}/x/y:z: blob ", registry.host())),
        "{err}"
    );
    assert!(
        err.contains("BLOB_UNKNOWN") && err.contains("HTTP 404"),
        "{err}"
    );
}

/// Bytes of the registry's open upload sessions for `repository`, as they
/// sit on its disk (Distribution's filesystem layout).
fn bytes_in_upload_sessions(registry: &TestRegistry, repository: &str) -> u64 {
    let uploads = registry
        .dir
        .path()
        .join("data/docker/registry/v2/repositories")
        .join(repository)
        .join("_uploads");
    let Ok(sessions) = fs::read_dir(uploads) else {
        return 0;
    };
    sessions
        .filter_map(Result::ok)
        .filter_map(|s| fs::metadata(s.path().join("data")).ok())
        .map(|m| m.len())
        .sum()
}

/// A layer still being packed reaches the registry as it grows, and is
/// committed under the digest known only at its end.
#[test]
fn a_growing_blob_is_sent_while_it_is_written() {
    use regcache::layer::growing::{CountingFile, GrowingBlob};
    use std::io::Write;

    let registry = TestRegistry::start(RegistryOptions::default());
    let store = store(&registry, "growing");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let first = pseudo_random(3 << 20, 7);
    let second = pseudo_random(1 << 20, 8);
    let blob = GrowingBlob::new(&path, 0);
    let mut file = CountingFile::new(fs::File::create(&path).unwrap(), Some(blob.clone()));
    runtime().block_on(async {
        let upload = store.put_growing_blob(&blob, &regcache::progress::NoProgress);
        let writer = async {
            file.write_all(&first).unwrap();
            // The first bytes must reach the registry before the rest is
            // even written.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while bytes_in_upload_sessions(&registry, "growing") < first.len() as u64 - 65536 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the registry got {} bytes of the {} written so far",
                    bytes_in_upload_sessions(&registry, "growing"),
                    first.len()
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            file.write_all(&second).unwrap();
            let whole = [first.as_slice(), second.as_slice()].concat();
            file.finish(&Digest::of(&whole), whole.len() as u64)
                .unwrap();
            whole
        };
        let (uploaded, whole) = tokio::join!(upload, writer);
        let (digest, size) = uploaded.unwrap().expect("a finished blob is committed");
        assert_eq!(digest, Digest::of(&whole));
        assert_eq!(size, whole.len() as u64);
        let desc = Descriptor::new(media_types::OCI_LAYER_ZSTD, digest, size);
        assert_eq!(read_blob(&store, &desc).await, whole);
    });
}

/// A blob whose packer gives up is never committed.
#[test]
fn an_abandoned_growing_blob_is_not_committed() {
    use regcache::layer::growing::{CountingFile, GrowingBlob};
    use std::io::Write;

    let registry = TestRegistry::start(RegistryOptions::default());
    let store = store(&registry, "abandoned");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let bytes = pseudo_random(1 << 20, 9);
    let blob = GrowingBlob::new(&path, 0);
    let mut file = CountingFile::new(fs::File::create(&path).unwrap(), Some(blob.clone()));
    runtime().block_on(async {
        let upload = store.put_growing_blob(&blob, &regcache::progress::NoProgress);
        let writer = async {
            file.write_all(&bytes).unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            drop(file);
        };
        let (uploaded, ()) = tokio::join!(upload, writer);
        assert_eq!(uploaded.unwrap(), None);
        let desc = Descriptor::new(
            media_types::OCI_LAYER_ZSTD,
            Digest::of(&bytes),
            bytes.len() as u64,
        );
        assert!(!store.has_blob(&desc).await.unwrap());
    });
}
