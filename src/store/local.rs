//! `type=local`: an OCI image layout directory, exactly as buildx writes its
//! local cache (`oci-layout`, `index.json` naming manifests by
//! `org.opencontainers.image.ref.name`, blobs under `blobs/sha256/`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{
    BlobReader, CacheStore, DeleteOutcome, DeleteScope, Deletion, Garbage, RepoStore, StoreError,
    TagListing, blob_file_name,
};
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
    /// A shared lock on `blobs/sha256`, taken at this export's first look
    /// at a blob and released once the index names its manifest: prune
    /// removes unreferenced blobs only under the exclusive lock, so it
    /// never takes a blob an export is about to reference.
    export_lock: std::sync::Mutex<Option<File>>,
}

impl LocalStore {
    pub fn new(root: PathBuf, tag: String, digest: Option<Digest>) -> LocalStore {
        LocalStore {
            root,
            tag,
            digest,
            export_lock: std::sync::Mutex::new(None),
        }
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
    /// Takes the shared export lock on the blob directory, once.
    fn hold_export_lock(&self) -> Result<(), StoreError> {
        let mut guard = self
            .export_lock
            .lock()
            .map_err(|_| self.invalid("export lock poisoned"))?;
        if guard.is_none() {
            let dir = self.blob_dir();
            let file = File::open(&dir).map_err(|err| self.io_error("opening", &dir, err))?;
            file.lock_shared()
                .map_err(|err| self.io_error("locking", &dir, err))?;
            *guard = Some(file);
        }
        Ok(())
    }

    fn release_export_lock(&self) {
        if let Ok(mut guard) = self.export_lock.lock()
            && let Some(file) = guard.take()
        {
            let _ = file.unlock();
        }
    }

    fn install_blob(&self, desc: &Descriptor, source: &Path) -> Result<(), StoreError> {
        self.ensure_layout()?;
        self.hold_export_lock()?;
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
            // Not fs::copy: it would carry over the source's mode, and a
            // blob gets the mode of every other file of the layout.
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            io::copy(&mut File::open(source)?, &mut out)?;
            out.sync_all()?;
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
        self.hold_export_lock()?;
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

/// One entry of `index.json`: the tag it carries, if any, and the manifest
/// it names.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub tag: Option<String>,
    pub descriptor: Descriptor,
}

/// Media types whose blobs name further blobs: followed by the walk that
/// finds what a layout still references.
const MANIFEST_LIKE: [&str; 5] = [
    media_types::OCI_MANIFEST,
    media_types::OCI_INDEX,
    media_types::DOCKER_MANIFEST,
    media_types::DOCKER_MANIFEST_LIST,
    "application/vnd.oci.artifact.manifest.v1+json",
];

impl LocalStore {
    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every entry of `index.json`, in file order; `None` when there is no
    /// `index.json`. Entries that are not descriptors are skipped.
    pub fn index_entries(&self) -> Result<Option<Vec<IndexEntry>>, StoreError> {
        let Some(index) = self.read_index()? else {
            return Ok(None);
        };
        let manifests = index
            .get("manifests")
            .and_then(Value::as_array)
            .ok_or_else(|| self.invalid("index.json has no manifests array"))?;
        let mut entries = Vec::new();
        for entry in manifests {
            match serde_json::from_value::<Descriptor>(entry.clone()) {
                Ok(descriptor) => entries.push(IndexEntry {
                    tag: descriptor
                        .annotations
                        .get(media_types::ANNOTATION_REF_NAME)
                        .cloned(),
                    descriptor,
                }),
                Err(err) => {
                    tracing::debug!("{}: unreadable index entry: {err}", self.describe())
                }
            }
        }
        Ok(Some(entries))
    }

    /// The manifest an index entry names, checked against its digest.
    pub fn read_manifest(&self, descriptor: &Descriptor) -> Result<RawManifest, StoreError> {
        let bytes = self.read_verified(&descriptor.digest, Some(descriptor.size))?;
        Ok(RawManifest::new(descriptor.media_type.clone(), bytes))
    }

    /// Removes every index entry carrying each requested tag, provided
    /// the tag still names the digest given (a tag moved to another
    /// manifest meanwhile stays): the shadowed entries of a tag go with
    /// it, or they would take its place. Runs under the exporter's lock on
    /// `oci-layout`, and `index.json` is replaced atomically. `dry_run`:
    /// decides the same and touches nothing. One bool per request: removed.
    pub fn remove_tags(
        &self,
        remove: &[(String, Digest)],
        dry_run: bool,
    ) -> Result<Vec<bool>, StoreError> {
        let lock_path = self.root.join(LAYOUT_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .open(&lock_path)
            .map_err(|err| self.io_error("opening", &lock_path, err))?;
        if dry_run {
            lock.lock_shared()
        } else {
            lock.lock()
        }
        .map_err(|err| self.io_error("locking", &lock_path, err))?;
        let result = self.remove_tags_locked(remove, dry_run);
        let _ = lock.unlock();
        result
    }

    fn remove_tags_locked(
        &self,
        remove: &[(String, Digest)],
        dry_run: bool,
    ) -> Result<Vec<bool>, StoreError> {
        let mut index = self
            .read_index()?
            .ok_or_else(|| self.invalid("no index.json: not an OCI layout"))?;
        let manifests = index
            .get_mut("manifests")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| self.invalid("index.json has no manifests array"))?;
        let tag_of = |entry: &Value| -> Option<String> {
            entry
                .get("annotations")?
                .get(media_types::ANNOTATION_REF_NAME)?
                .as_str()
                .map(str::to_string)
        };
        // The last entry of a tag is the one it names.
        let mut current: HashMap<String, String> = HashMap::new();
        for entry in manifests.iter() {
            if let (Some(tag), Some(digest)) =
                (tag_of(entry), entry.get("digest").and_then(Value::as_str))
            {
                current.insert(tag, digest.to_string());
            }
        }
        let removed: Vec<bool> = remove
            .iter()
            .map(|(tag, digest)| current.get(tag) == Some(&digest.to_string()))
            .collect();
        let doomed: HashSet<&str> = remove
            .iter()
            .zip(&removed)
            .filter(|(_, removed)| **removed)
            .map(|((tag, _), _)| tag.as_str())
            .collect();
        if doomed.is_empty() || dry_run {
            return Ok(removed);
        }
        manifests.retain(|entry| tag_of(entry).is_none_or(|tag| !doomed.contains(tag.as_str())));
        let bytes = serde_json::to_vec(&index)
            .map_err(|err| self.invalid(&format!("cannot encode index.json: {err}")))?;
        let index_path = self.root.join(INDEX_FILE);
        write_atomically(&index_path, &bytes)
            .map_err(|err| self.io_error("writing", &index_path, err))?;
        Ok(removed)
    }

    /// Removes (or, in a dry run, lists) every blob under `blobs/sha256`
    /// that no manifest in the index references, following index manifests
    /// to their children: what buildx's `reset=true` leaves. `pending`:
    /// tags a dry run would have removed, judged as gone.
    ///
    /// Blobs go only under the exclusive lock on the blob directory, which
    /// waits for exports in flight (they hold it shared from their first
    /// blob until their manifest is in the index), so the index read here
    /// already names every export that finished, and none is halfway.
    pub fn collect_garbage(
        &self,
        dry_run: bool,
        pending: &[String],
    ) -> Result<Garbage, StoreError> {
        let blob_dir = self.blob_dir();
        let blob_lock =
            File::open(&blob_dir).map_err(|err| self.io_error("opening", &blob_dir, err))?;
        if dry_run {
            blob_lock.lock_shared()
        } else {
            blob_lock.lock()
        }
        .map_err(|err| self.io_error("locking", &blob_dir, err))?;
        let collected = self.collect_locked(dry_run, pending);
        let _ = blob_lock.unlock();
        collected
    }

    fn collect_locked(&self, dry_run: bool, pending: &[String]) -> Result<Garbage, StoreError> {
        let mut garbage = Garbage::default();
        let remaining: Vec<Value> = self
            .read_index()?
            .and_then(|index| index.get("manifests").and_then(Value::as_array).cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|entry| {
                let tag = entry
                    .get("annotations")
                    .and_then(|a| a.get(media_types::ANNOTATION_REF_NAME))
                    .and_then(Value::as_str);
                !(dry_run && tag.is_some_and(|t| pending.iter().any(|p| p == t)))
            })
            .collect();
        let referenced = match self.referenced_blobs(&remaining) {
            Ok(referenced) => referenced,
            Err(reason) => {
                garbage.skipped = Some(reason);
                return Ok(garbage);
            }
        };
        for (digest, size) in self.stored_blobs()? {
            if referenced.contains(&digest) {
                garbage.kept += 1;
                continue;
            }
            if !dry_run {
                let path = self.blob_path(&digest);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(self.io_error("removing", &path, err)),
                }
            }
            garbage.removed.push((digest, size));
        }
        Ok(garbage)
    }

    /// Every sha256 blob in the layout, with its size. Temporary files of
    /// writers in progress (`.tmp-…`) are not blobs.
    fn stored_blobs(&self) -> Result<BTreeMap<Digest, u64>, StoreError> {
        let dir = self.blob_dir();
        let mut blobs = BTreeMap::new();
        let listing = match fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(blobs),
            Err(err) => return Err(self.io_error("listing", &dir, err)),
        };
        for entry in listing {
            let entry = entry.map_err(|err| self.io_error("listing", &dir, err))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Ok(digest) = format!("sha256:{name}").parse::<Digest>() else {
                continue;
            };
            let meta = entry
                .metadata()
                .map_err(|err| self.io_error("reading", &entry.path(), err))?;
            if meta.is_file() {
                blobs.insert(digest, meta.len());
            }
        }
        Ok(blobs)
    }

    /// The digests the index entries reference, directly or through the
    /// manifests and indexes they name. `Err`: a manifest could not be
    /// read, so the set is incomplete and nothing may be removed.
    fn referenced_blobs(&self, entries: &[Value]) -> Result<HashSet<Digest>, String> {
        let mut referenced = HashSet::new();
        let mut queue: Vec<(Digest, Option<String>)> = Vec::new();
        collect_descriptors(entries, &mut referenced, &mut queue, true);
        let mut walked = HashSet::new();
        while let Some((digest, media_type)) = queue.pop() {
            if !walked.insert(digest.clone()) {
                continue;
            }
            let path = self.blob_path(&digest);
            let bytes = match fs::metadata(&path) {
                Ok(meta) if meta.len() <= super::MAX_SMALL_BLOB => {
                    fs::read(&path).map_err(|err| format!("manifest {digest}: {err}"))?
                }
                Ok(meta) => {
                    return Err(format!(
                        "manifest {digest} has {} bytes, too many to read",
                        meta.len()
                    ));
                }
                Err(err) => return Err(format!("manifest {digest} is missing: {err}")),
            };
            // A manifest whose bytes are not the ones its digest names (a
            // bit flip in a child's digest keeps it valid JSON) would send
            // the walk to the wrong children and leave the real ones to be
            // removed: its references are as unknown as an unreadable one's.
            let actual = Digest::of(&bytes);
            if actual != digest {
                return Err(format!(
                    "manifest {digest} is corrupt: its content hashes to {actual}"
                ));
            }
            let value: Value = serde_json::from_slice(&bytes).map_err(|err| {
                format!(
                    "manifest {digest} ({}) is not JSON: {err}",
                    media_type.as_deref().unwrap_or("no media type")
                )
            })?;
            for key in ["config", "subject"] {
                if let Some(child) = value.get(key) {
                    collect_descriptors(
                        std::slice::from_ref(child),
                        &mut referenced,
                        &mut queue,
                        false,
                    );
                }
            }
            for key in ["layers", "manifests", "blobs"] {
                if let Some(children) = value.get(key).and_then(Value::as_array) {
                    collect_descriptors(children, &mut referenced, &mut queue, false);
                }
            }
        }
        Ok(referenced)
    }
}

/// Adds each descriptor's digest to `referenced`, and queues those whose
/// media type names more blobs (`top`: index.json's entries, which are
/// manifests whatever they say).
fn collect_descriptors(
    descriptors: &[Value],
    referenced: &mut HashSet<Digest>,
    queue: &mut Vec<(Digest, Option<String>)>,
    top: bool,
) {
    for descriptor in descriptors {
        let Some(digest) = descriptor
            .get("digest")
            .and_then(Value::as_str)
            .and_then(|d| d.parse::<Digest>().ok())
        else {
            continue;
        };
        let media_type = descriptor
            .get("mediaType")
            .and_then(Value::as_str)
            .map(str::to_string);
        referenced.insert(digest.clone());
        if top
            || media_type
                .as_deref()
                .is_some_and(|t| MANIFEST_LIKE.contains(&t))
        {
            queue.push((digest, media_type));
        }
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
        // A blob found here is one the export will reference: from now on
        // prune must leave unreferenced blobs alone until the index is
        // written.
        if self.blob_dir().is_dir() {
            tokio::task::block_in_place(|| self.hold_export_lock())?;
        }
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
        let written = tokio::task::block_in_place(|| self.put_manifest_blocking(manifest));
        self.release_export_lock();
        written
    }

    fn spool_dir(&self) -> Option<PathBuf> {
        Some(self.root.clone())
    }
}

/// A local cache directory as a whole: its index's tags, deleted entry by
/// entry, and the blobs no tag references collected.
pub struct LocalRepo {
    store: LocalStore,
}

impl LocalRepo {
    pub fn new(dir: PathBuf) -> LocalRepo {
        LocalRepo {
            store: LocalStore::new(dir, crate::reference::DEFAULT_TAG.into(), None),
        }
    }

    fn dir(&self) -> &Path {
        self.store.root()
    }
}

#[async_trait]
impl RepoStore for LocalRepo {
    fn describe(&self) -> String {
        self.dir().display().to_string()
    }

    async fn list_tags(&self) -> Result<Option<TagListing>, StoreError> {
        if !self.dir().is_dir() {
            return Err(StoreError::Invalid(format!(
                "{}: no such directory",
                self.describe()
            )));
        }
        let entries =
            tokio::task::block_in_place(|| self.store.index_entries())?.ok_or_else(|| {
                StoreError::Invalid(format!(
                    "{}: not an OCI layout (no index.json)",
                    self.describe()
                ))
            })?;
        let mut listing = TagListing::default();
        for entry in entries {
            match entry.tag {
                Some(tag) if !listing.tags.contains(&tag) => listing.tags.push(tag),
                Some(_) => {}
                None => listing.untagged += 1,
            }
        }
        Ok(Some(listing))
    }

    async fn resolve_tag(&self, tag: &str) -> Result<Option<Digest>, StoreError> {
        let entries = tokio::task::block_in_place(|| self.store.index_entries())?;
        Ok(entries
            .unwrap_or_default()
            .into_iter()
            .rev()
            .find(|entry| entry.tag.as_deref() == Some(tag))
            .map(|entry| entry.descriptor.digest))
    }

    fn open_tag(&self, tag: &str) -> Result<Box<dyn CacheStore>, StoreError> {
        Ok(Box::new(LocalStore::new(
            self.dir().to_path_buf(),
            tag.to_string(),
            None,
        )))
    }

    fn delete_scope(&self) -> DeleteScope {
        DeleteScope::Tag
    }

    async fn delete_tags(&self, requests: &[(String, Digest)], dry_run: bool) -> DeleteOutcome {
        match tokio::task::block_in_place(|| self.store.remove_tags(requests, dry_run)) {
            Ok(removed) => DeleteOutcome {
                results: removed
                    .into_iter()
                    .map(|removed| {
                        if removed {
                            Deletion::Deleted
                        } else {
                            Deletion::Changed
                        }
                    })
                    .collect(),
                error: None,
            },
            Err(err) => DeleteOutcome {
                results: vec![Deletion::Failed; requests.len()],
                error: Some(err),
            },
        }
    }

    async fn collect_garbage(
        &self,
        dry_run: bool,
        pending: &[String],
    ) -> Result<Option<Garbage>, StoreError> {
        tokio::task::block_in_place(|| self.store.collect_garbage(dry_run, pending)).map(Some)
    }

    fn spool_dir(&self) -> Option<PathBuf> {
        Some(self.dir().to_path_buf())
    }
}
