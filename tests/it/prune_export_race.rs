//! A local prune never removes a blob that an export in flight is about to
//! reference: the export holds the blob directory's shared lock from its
//! first blob until its manifest is in the index, and prune removes blobs
//! only under the exclusive lock.

use std::time::Duration;

use regcache::digest::Digest;
use regcache::image::{Descriptor, RawManifest, media_types};
use regcache::store::CacheStore;
use regcache::store::local::LocalStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_waits_for_an_export_in_flight() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    // An earlier cache, so the directory is a layout with an index.
    let earlier = LocalStore::new(dir.clone(), "earlier".into(), None);
    let empty = br#"{"layers":[],"records":[{"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}]}"#.to_vec();
    let empty_desc = Descriptor::new(
        media_types::CACHE_CONFIG,
        Digest::of(&empty),
        empty.len() as u64,
    );
    earlier.put_blob_bytes(&empty_desc, &empty).await.unwrap();
    earlier
        .put_manifest(&manifest_for(&empty_desc))
        .await
        .unwrap();

    let store = LocalStore::new(dir.clone(), "latest".into(), None);

    // The export writes its config blob; nothing references it yet.
    let config = br#"{"layers":[],"records":[]}"#.to_vec();
    let config_desc = Descriptor::new(
        media_types::CACHE_CONFIG,
        Digest::of(&config),
        config.len() as u64,
    );
    store.put_blob_bytes(&config_desc, &config).await.unwrap();

    let bin = assert_cmd::cargo::cargo_bin("regcache");
    let mut prune = std::process::Command::new(&bin)
        .args([
            "prune",
            "-q",
            "--blobs-only",
            &format!("type=local,dest={}", dir.display()),
        ])
        .spawn()
        .unwrap();
    // Synchronised on the event itself, not a sleep: prune is blocked on
    // the blob directory's lock. Under load a sleep passes without prune
    // having started, and the race is never exercised.
    let pid = prune.id();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !blocked_on_a_lock(pid) {
        assert!(
            prune.try_wait().unwrap().is_none(),
            "prune ended without waiting for the export"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "prune never blocked on the lock the export holds"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": { "mediaType": media_types::CACHE_CONFIG, "digest": config_desc.digest.to_string(), "size": config.len() },
        "layers": [],
    });
    let raw = RawManifest::new(
        media_types::OCI_MANIFEST,
        serde_json::to_vec(&manifest).unwrap(),
    );
    store.put_manifest(&raw).await.unwrap();

    let status = tokio::task::spawn_blocking(move || prune.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
    assert!(
        dir.join("blobs/sha256")
            .join(config_desc.digest.hex())
            .exists(),
        "prune removed a blob the export referenced"
    );
}

fn manifest_for(config: &Descriptor) -> RawManifest {
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": { "mediaType": media_types::CACHE_CONFIG, "digest": config.digest.to_string(), "size": config.size },
        "layers": [],
    });
    RawManifest::new(
        media_types::OCI_MANIFEST,
        serde_json::to_vec(&manifest).unwrap(),
    )
}

/// Whether process `pid` waits for a file lock: /proc/locks lists each
/// blocked request with `->` before its type, and the waiter's pid.
fn blocked_on_a_lock(pid: u32) -> bool {
    let locks = std::fs::read_to_string("/proc/locks").expect("read /proc/locks");
    locks.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&"->") && fields.get(5) == Some(&pid.to_string().as_str())
    })
}
