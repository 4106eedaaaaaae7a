//! Caches built by hand, as an attacker would: a local OCI layout with gzip
//! layers whose tars say whatever the test wants (names the `tar` crate
//! would refuse included), a cache config with one record per entry, and
//! the entries blob. Nothing here goes through regcache's own writer, so
//! the restore under test meets exactly these bytes.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One tar member. Names are raw: `..`, absolute paths and whiteouts pass.
pub enum Item<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

/// An uncompressed tar of `items`, in the order given.
pub fn tar(items: &[Item]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_ustar();
        let (name, kind, mode, link, data): (&str, _, u32, Option<&str>, &[u8]) = match item {
            Item::Dir(n) => (n, tar::EntryType::Directory, 0o755, None, b""),
            Item::File(n, d) => (n, tar::EntryType::Regular, 0o644, None, d),
            Item::Symlink(n, t) => (n, tar::EntryType::Symlink, 0o777, Some(t), b""),
            Item::Hardlink(n, t) => (n, tar::EntryType::Link, 0o644, Some(t), b""),
        };
        // Written into the header field directly: `set_path` refuses the
        // very names these tests are about.
        let ustar = header.as_ustar_mut().expect("a ustar header");
        assert!(name.len() <= 100, "test names fit the ustar name field");
        ustar.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            ustar.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(1_600_000_000);
        header.set_cksum();
        builder
            .append(&header, data)
            .expect("append to an in-memory tar");
    }
    builder.into_inner().expect("finish an in-memory tar")
}

pub fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    format!(
        "sha256:{}",
        hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// Entries in the order the entries blob lists them, each a chain of
/// uncompressed tars, base first.
#[derive(Default)]
pub struct HostileCache {
    entries: Vec<(String, Vec<Vec<u8>>)>,
}

impl HostileCache {
    pub fn new() -> HostileCache {
        HostileCache::default()
    }

    pub fn entry(mut self, path: &str, layers: Vec<Vec<u8>>) -> HostileCache {
        self.entries.push((path.to_string(), layers));
        self
    }

    /// Writes the cache as tag `latest` of a new OCI layout at `dir`.
    pub fn write(&self, dir: &Path) {
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).expect("create the layout");
        let put = |bytes: &[u8]| {
            let d = digest(bytes);
            fs::write(blobs.join(&d["sha256:".len()..]), bytes).expect("write a blob");
            d
        };
        let created = "2026-01-01T00:00:00Z";
        let mut config_layers: Vec<Value> = Vec::new();
        let mut descriptors: Vec<Value> = Vec::new();
        let mut records: Vec<Value> = Vec::new();
        let mut meta: Vec<Value> = Vec::new();
        for (path, layers) in &self.entries {
            let mut parent: i64 = -1;
            let mut chain = Vec::new();
            for tar in layers {
                let blob = gzip(tar);
                let blob_digest = put(&blob);
                descriptors.push(json!({
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": blob_digest,
                    "size": blob.len(),
                    "annotations": {
                        "buildkit/createdat": created,
                        "containerd.io/uncompressed": digest(tar),
                        "dev.regcache.uncompressed-size": tar.len().to_string(),
                    }
                }));
                config_layers.push(json!({"blob": blob_digest, "parent": parent}));
                parent = config_layers.len() as i64 - 1;
                chain.push(blob_digest);
            }
            let record = digest(&[b"regcache.dev/entry/v1\0", path.as_bytes()].concat());
            records.push(json!({
                "layers": [{"layer": parent, "createdAt": created}],
                "digest": record,
            }));
            meta.push(json!({
                "path": path, "record": record, "layers": chain,
                "files": 0, "dirs": 0, "symlinks": 0, "hardlinks": 0, "bytes": 0,
            }));
        }
        let config = serde_json::to_vec(&json!({"layers": config_layers, "records": records}))
            .expect("serialise the config");
        let config_digest = put(&config);
        let entries = serde_json::to_vec(&json!({"version": 1, "mode": "min", "entries": meta}))
            .expect("serialise the entries blob");
        descriptors.push(json!({
            "mediaType": "application/vnd.regcache.entries.v1+json",
            "digest": put(&entries),
            "size": entries.len(),
        }));
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.buildkit.cacheconfig.v0",
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": descriptors,
            "annotations": {"dev.regcache.mode": "min", "dev.regcache.version": "1"},
        }))
        .expect("serialise the manifest");
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": put(&manifest),
                "size": manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": "latest"},
            }],
        });
        fs::write(dir.join("index.json"), index.to_string()).expect("write index.json");
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write oci-layout");
    }
}
