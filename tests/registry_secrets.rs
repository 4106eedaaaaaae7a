//! No credential reaches a log line at any level: every event of a whole
//! push and pull over HTTPS (HTTP/2) with basic auth is captured at TRACE,
//! including what the HTTP and TLS libraries log through `log`, and
//! searched for the password and its encodings.
//!
//! Alone in its test binary: it sets process-wide environment variables
//! and the global tracing subscriber.

// Its own binary, not a module of tests/it: it sets the environment and
// installs the tracing subscriber, which are the whole process's.
#[path = "it/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use common::registry::{PASSWORD, RegistryOptions, TestRegistry, USER};
use regcache::image::{Descriptor, RawManifest, media_types};
use regcache::progress::NoProgress;
use regcache::reference::Reference;
use regcache::store::registry::RegistryStore;
use regcache::store::{CacheStore, StoreOptions};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn credentials_never_appear_in_trace_logs() {
    let registry = TestRegistry::start(RegistryOptions {
        htpasswd: true,
        tls: true,
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let config = serde_json::json!({"auths": {registry.tls_host(): {"auth": basic}}});
    std::fs::write(tmp.path().join("config.json"), config.to_string()).unwrap();
    // SAFETY: set before any thread of this test binary reads the
    // environment; this is the binary's only test.
    unsafe {
        std::env::set_var("DOCKER_CONFIG", tmp.path());
        std::env::set_var("SSL_CERT_FILE", registry.ca_file.as_ref().unwrap());
    }
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the only subscriber of this binary");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let reference = Reference::parse(&format!("{}/secret/app:t", registry.tls_host())).unwrap();
        let store = RegistryStore::new(reference, false, &StoreOptions::default()).unwrap();
        // A miss, a small blob, a chunked one, a manifest, reads, a mount.
        assert_eq!(store.fetch_manifest().await.unwrap(), None);
        let config = br#"{"layers":[],"records":[]}"#.to_vec();
        let config_desc = Descriptor::for_bytes(media_types::CACHE_CONFIG, &config);
        store.put_blob_bytes(&config_desc, &config).await.unwrap();
        let layer = common::pseudo_random(
            regcache::store::registry::upload::DEFAULT_CHUNK as usize + 7,
            11,
        );
        let layer_desc = Descriptor::for_bytes(media_types::OCI_LAYER, &layer);
        let path = tmp.path().join("layer");
        std::fs::write(&path, &layer).unwrap();
        store
            .put_blob_file(&layer_desc, &path, &NoProgress)
            .await
            .unwrap();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_MANIFEST,
            "config": config_desc,
            "layers": [layer_desc],
        });
        let raw = RawManifest::new(
            media_types::OCI_MANIFEST,
            serde_json::to_vec(&manifest).unwrap(),
        );
        store.put_manifest(&raw).await.unwrap();
        assert_eq!(
            store.fetch_manifest().await.unwrap().unwrap().bytes,
            raw.bytes
        );
        let mut reader = store.open_blob(&layer_desc).await.unwrap();
        let back = tokio::task::spawn_blocking(move || {
            let mut back = Vec::new();
            reader.read_to_end(&mut back).unwrap();
            back
        })
        .await
        .unwrap();
        assert!(back == layer);
        let other = RegistryStore::new(
            Reference::parse(&format!("{}/secret/other:t", registry.tls_host())).unwrap(),
            false,
            &StoreOptions::default(),
        )
        .unwrap();
        assert!(other.mount_blob(&layer_desc, "secret/app").await.unwrap());
    });
    drop(runtime);

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("TRACE"), "TRACE events were captured");
    assert!(
        log.contains("HTTP/2") || log.contains("h2"),
        "the connection used HTTP/2"
    );
    assert!(
        log.contains("basic authentication"),
        "the registry asked for basic auth"
    );
    for secret in [
        PASSWORD.to_string(),
        basic.clone(),
        base64::engine::general_purpose::STANDARD.encode(PASSWORD),
    ] {
        assert!(!log.contains(&secret), "a secret is in the log");
    }
}
