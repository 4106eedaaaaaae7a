//! `type=local`: an OCI image layout directory, exactly as buildx writes its
//! local cache (`oci-layout`, `index.json` naming manifests by
//! `org.opencontainers.image.ref.name`, blobs under `blobs/sha256/`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{BlobReader, CacheStore, StoreError, blob_file_name};
use crate::digest::Digest;
use crate::image::{Descriptor, RawManifest, media_types};
use crate::progress::BlobProgress;

const LAYOUT_FILE: &str = "oci-layout";
const INDEX_FILE: &str = "index.json";
const LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
const BLOB_BUFFER: usize = 256 << 10;

/// A local cache directory, for import (`src`, `tag`, `digest`) or export
/// (`dest`, `tag`).
pub struct LocalStore {
    root: PathBuf,
    tag: String,
    digest: Option<Digest>,
}

impl LocalStore {
    pub fn new(root: PathBuf, tag: String, digest: Option<Digest>) -> LocalStore {
        LocalStore { root, tag, digest }
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir().join(blob_file_name(digest))
    }

    fn io_error(&self, what: &str, path: &Path, source: io::Error) -> StoreError {
        StoreError::io(
            format!("{}: {what} {}", self.describe(), path.display()),
            source,
        )
    }

    /// The index's manifest descriptor this store's tag or digest names.
    fn find_in_index(&self, index: &Value) -> Result<Option<Descriptor>, StoreError> {
        let manifests = index
            .get("manifests")
            .and_then(Value::as_array)
            .ok_or_else(|| self.invalid("index.json has no manifests array"))?;
        // Later entries win, as with a tag moved by an append-only writer.
        for entry in manifests.iter().rev() {
            let descriptor: Descriptor = match serde_json::from_value(entry.clone()) {
                Ok(d) => d,
                Err(err) => {
                    tracing::debug!(
                        "{}: skipping unreadable index entry: {err}",
                        self.describe()
                    );
                    continue;
                }
            };
            let matches = match &self.digest {
                Some(digest) => &descriptor.digest == digest,
                None => {
                    descriptor.annotations.get(media_types::ANNOTATION_REF_NAME) == Some(&self.tag)
                }
            };
            if matches {
                return Ok(Some(descriptor));
            }
        }
        Ok(None)
    }

    fn invalid(&self, message: &str) -> StoreError {
        StoreError::Invalid(format!("{}: {message}", self.describe()))
    }

    fn read_index(&self) -> Result<Option<Value>, StoreError> {
        let path = self.root.join(INDEX_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(self.io_error("reading", &path, err)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| self.invalid(&format!("index.json is not valid JSON: {err}")))
    }

    fn fetch_manifest_blocking(&self) -> Result<Option<RawManifest>, StoreError> {
        let Some(index) = self.read_index()? else {
            return Ok(None);
        };
        let descriptor = match self.find_in_index(&index)? {
            Some(d) => d,
            // buildx also imports a `digest=` that only exists as a blob.
            None => match &self.digest {
                Some(digest) if self.blob_path(digest).is_file() => {
                    return self.read_untagged_manifest(digest).map(Some);
                }
                _ => return Ok(None),
            },
        };
        let bytes = self.read_verified(&descriptor.digest, Some(descriptor.size))?;
        Ok(Some(RawManifest::new(descriptor.media_type.clone(), bytes)))
    }

    fn read_untagged_manifest(&self, digest: &Digest) -> Result<RawManifest, StoreError> {
        let bytes = self.read_verified(digest, None)?;
        let media_type = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| media_types::OCI_MANIFEST.to_string());
        Ok(RawManifest::new(media_type, bytes))
    }

    /// Reads a manifest-sized blob and checks it against its digest.
    fn read_verified(&self, digest: &Digest, size: Option<u64>) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        let len = fs::metadata(&path)
            .map_err(|err| self.io_error("reading", &path, err))?
            .len();
        if len > super::MAX_SMALL_BLOB || size.is_some_and(|s| s != len) {
            return Err(self.invalid(&format!(
                "manifest blob {digest} has {len} bytes, expected {}",
                size.map_or_else(|| "a small manifest".to_string(), |s| s.to_string())
            )));
        }
        let bytes = fs::read(&path).map_err(|err| self.io_error("reading", &path, err))?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(self.invalid(&format!(
                "manifest blob {digest}: digest mismatch (content hashes to {actual})"
            )));
        }
        Ok(bytes)
    }

    fn ensure_layout(&self) -> Result<(), StoreError> {
        let blob_dir = self.blob_dir();
        fs::create_dir_all(&blob_dir).map_err(|err| self.io_error("creating", &blob_dir, err))?;
        let layout = self.root.join(LAYOUT_FILE);
        if !layout.exists() {
            write_atomically(&layout, LAYOUT_CONTENT)
                .map_err(|err| self.io_error("writing", &layout, err))?;
        }
        Ok(())
    }

    /// Moves a finished blob into place. Blobs are content-addressed, so an
    /// existing one of the right size is already the same content.
    fn install_blob(&self, desc: &Descriptor, source: &Path) -> Result<(), StoreError> {
        self.ensure_layout()?;
        let target = self.blob_path(&desc.digest);
        if has_blob_file(&target, desc.size) {
            return Ok(());
        }
        // A hard link is free when the spool is on the same file system
        // and keeps the spool file usable for the next target.
        match fs::hard_link(source, &target) {
            Ok(()) => {
                // The index is synced before it names this blob; the blob
                // must be on disk first, or a crash leaves a cache whose
                // index points at garbage.
                return File::open(&target)
                    .and_then(|f| f.sync_all())
                    .map_err(|err| self.io_error("syncing", &target, err));
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                // A concurrent writer won the race with the same content,
                // or a stale partial file sits there: replace it atomically.
            }
            Err(_) => {}
        }
        let temp = temp_name(&target);
        let copied = (|| -> io::Result<()> {
            fs::copy(source, &temp)?;
            File::open(&temp)?.sync_all()?;
            fs::rename(&temp, &target)
        })();
        if let Err(err) = copied {
            let _ = fs::remove_file(&temp);
            return Err(self.io_error("writing", &target, err));
        }
        Ok(())
    }

    fn write_blob_bytes(&self, desc: &Descriptor, bytes: &[u8]) -> Result<(), StoreError> {
        self.ensure_layout()?;
        let target = self.blob_path(&desc.digest);
        if has_blob_file(&target, desc.size) {
            return Ok(());
        }
        write_atomically(&target, bytes).map_err(|err| self.io_error("writing", &target, err))
    }

    fn put_manifest_blocking(&self, manifest: &RawManifest) -> Result<(), StoreError> {
        let descriptor = Descriptor::new(
            manifest.media_type.clone(),
            manifest.digest.clone(),
            manifest.bytes.len() as u64,
        );
        self.write_blob_bytes(&descriptor, &manifest.bytes)?;
        let lock_path = self.root.join(LAYOUT_FILE);
        // The layout file always exists, so locking it needs no extra file in
        // the layout; the lock makes read-modify-write of index.json atomic
        // between concurrent regcache writers.
        let lock = OpenOptions::new()
            .read(true)
            .open(&lock_path)
            .map_err(|err| self.io_error("opening", &lock_path, err))?;
        lock.lock()
            .map_err(|err| self.io_error("locking", &lock_path, err))?;
        let mut index = self.read_index()?.unwrap_or_else(empty_index);
        let manifests = index
            .get_mut("manifests")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| self.invalid("index.json has no manifests array"))?;
        // Other tags stay; only the entry carrying our tag moves.
        manifests.retain(|entry| {
            entry
                .get("annotations")
                .and_then(|a| a.get(media_types::ANNOTATION_REF_NAME))
                .and_then(Value::as_str)
                != Some(self.tag.as_str())
        });
        manifests.push(json!({
            "mediaType": manifest.media_type,
            "digest": manifest.digest.to_string(),
            "size": manifest.bytes.len(),
            "annotations": { media_types::ANNOTATION_REF_NAME: self.tag },
        }));
        let bytes = serde_json::to_vec(&index)
            .map_err(|err| self.invalid(&format!("cannot encode index.json: {err}")))?;
        let index_path = self.root.join(INDEX_FILE);
        let written = write_atomically(&index_path, &bytes)
            .map_err(|err| self.io_error("writing", &index_path, err));
        let _ = lock.unlock();
        written
    }
}

fn empty_index() -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": [],
    })
}

fn has_blob_file(path: &Path, size: u64) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == size)
}

fn temp_name(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".tmp-{}-{}-{name}", std::process::id(), unique()))
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Writes `bytes` to a temporary file beside `target`, syncs it and renames
/// it over `target`: readers see the old file or the new one, never half.
pub(crate) fn write_atomically(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let temp = temp_name(target);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

#[async_trait]
impl CacheStore for LocalStore {
    fn describe(&self) -> String {
        // The same form as the specs' `location()`, so messages that name
        // both say it once.
        match &self.digest {
            Some(digest) => format!("{}@{digest}", self.root.display()),
            None => format!("{}:{}", self.root.display(), self.tag),
        }
    }

    async fn fetch_manifest(&self) -> Result<Option<RawManifest>, StoreError> {
        tokio::task::block_in_place(|| self.fetch_manifest_blocking())
    }

    async fn open_blob(&self, desc: &Descriptor) -> Result<BlobReader, StoreError> {
        let path = self.blob_path(&desc.digest);
        let file = File::open(&path).map_err(|err| self.io_error("opening blob", &path, err))?;
        Ok(Box::new(BufReader::with_capacity(BLOB_BUFFER, file)))
    }

    async fn has_blob(&self, desc: &Descriptor) -> Result<bool, StoreError> {
        Ok(has_blob_file(&self.blob_path(&desc.digest), desc.size))
    }

    async fn put_blob_file(
        &self,
        desc: &Descriptor,
        file: &Path,
        progress: &dyn BlobProgress,
    ) -> Result<(), StoreError> {
        tokio::task::block_in_place(|| self.install_blob(desc, file))?;
        progress.advance(desc.size);
        Ok(())
    }

    async fn put_blob_bytes(&self, desc: &Descriptor, bytes: &[u8]) -> Result<(), StoreError> {
        tokio::task::block_in_place(|| self.write_blob_bytes(desc, bytes))
    }

    async fn put_manifest(&self, manifest: &RawManifest) -> Result<(), StoreError> {
        tokio::task::block_in_place(|| self.put_manifest_blocking(manifest))
    }

    fn spool_dir(&self) -> Option<PathBuf> {
        Some(self.root.clone())
    }
}
