//! Where caches live. One trait over every location a spec can name, so the
//! operations (`ops`) never know whether they talk to a directory or a
//! registry.

pub mod local;
pub mod registry;
pub mod repo;

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use crate::digest::{Digest, VerifyingReader};
use crate::image::{Descriptor, RawManifest};
use crate::layer::growing::GrowingBlob;
use crate::progress::BlobProgress;
use crate::spec::{CacheFrom, CacheTo, ExportTarget, ImportSource, RepoTarget};

pub use repo::{
    DeleteOutcome, DeleteScope, Deletion, Garbage, RepoStore, TagContent, TagInfo, TagListing,
};

/// Raw, unverified blob content. Callers wrap it in a
/// [`VerifyingReader`] before trusting a byte.
pub type BlobReader = Box<dyn Read + Send>;

/// Small blobs (configs, manifests, regcache's entries list) are read whole;
/// anything claiming to be larger is refused before a byte is read.
pub const MAX_SMALL_BLOB: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{location}: {message}")]
    Unsupported { location: String, message: String },
    /// A registry request that failed, classified, with what the user can
    /// do about it.
    #[error("{message}")]
    Remote {
        kind: StoreErrorKind,
        message: String,
        hint: Option<String>,
    },
}

/// What kind of failure a store met: callers decide on it (an unreachable
/// registry fails a save before anything is packed) and the user's hint
/// follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// No such manifest, blob or repository.
    NotFound,
    /// Credentials missing, wrong, or not allowed this.
    Unauthorized,
    /// The registry did not answer: refused, timed out, no such host.
    Unreachable,
    /// The TLS handshake failed (an untrusted or wrong certificate).
    Tls,
    /// The content is not what it claims (digest, size, format).
    Corrupt,
    /// Reading or writing local files.
    LocalIo,
    /// The store cannot do this (a registry with deletes disabled).
    Unsupported,
    /// The registry answered, but not as the protocol says, or failed.
    Protocol,
}

impl StoreError {
    pub fn io(what: impl Into<String>, source: io::Error) -> StoreError {
        StoreError::Io {
            what: what.into(),
            source,
        }
    }

    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::Io { .. } => StoreErrorKind::LocalIo,
            StoreError::Invalid(_) => StoreErrorKind::Corrupt,
            StoreError::Unsupported { .. } => StoreErrorKind::Unsupported,
            StoreError::Remote { kind, .. } => *kind,
        }
    }

    /// What the user can do about it, printed last as `hint:`.
    pub fn hint(&self) -> Option<String> {
        match self {
            StoreError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC) => {
                Some("free some space, or point TMPDIR at a larger disk".into())
            }
            StoreError::Remote { hint, .. } => hint.clone(),
            _ => None,
        }
    }
}

/// One cache location: the manifest a spec names, and the blobs beside it.
#[async_trait]
pub trait CacheStore: Send + Sync {
    /// How messages name this location, e.g. `/tmp/cache:latest` or
    /// `ghcr.io/org/app:cache`.
    fn describe(&self) -> String;

    /// The cache manifest this location's spec names, or `None` when the
    /// location, tag or digest does not exist (a miss, not an error).
    async fn fetch_manifest(&self) -> Result<Option<RawManifest>, StoreError>;

    /// The blob's bytes, unverified.
    async fn open_blob(&self, desc: &Descriptor) -> Result<BlobReader, StoreError>;

    /// Whether the location already holds this blob.
    async fn has_blob(&self, desc: &Descriptor) -> Result<bool, StoreError>;

    /// Stores a blob whose content is in `file` and whose digest and size
    /// the caller has already computed, reporting bytes as they go.
    async fn put_blob_file(
        &self,
        desc: &Descriptor,
        file: &Path,
        progress: &dyn BlobProgress,
    ) -> Result<(), StoreError>;

    async fn put_blob_bytes(&self, desc: &Descriptor, bytes: &[u8]) -> Result<(), StoreError>;

    /// Whether [`CacheStore::put_growing_blob`] sends a blob while it is
    /// still being written. Stores where storing a finished file is a link
    /// gain nothing from it.
    fn follows_growing_blobs(&self) -> bool {
        false
    }

    /// Stores a blob as its packer writes it; its digest and size once
    /// complete, or `None` when the packer gave up or the store does not
    /// follow growing blobs (see [`CacheStore::follows_growing_blobs`]).
    async fn put_growing_blob(
        &self,
        _blob: &Arc<GrowingBlob>,
        _progress: &dyn BlobProgress,
    ) -> Result<Option<(Digest, u64)>, StoreError> {
        Ok(None)
    }

    /// Points the spec's tag at `manifest`. Called last, after every blob
    /// it names is in place, so a failed export never moves the tag.
    async fn put_manifest(&self, manifest: &RawManifest) -> Result<(), StoreError>;

    /// `(registry host, repository)` for stores in a registry, so blobs can
    /// be mounted across repositories of one registry instead of uploaded.
    fn registry_repository(&self) -> Option<(String, String)> {
        None
    }

    /// Makes a blob that `from_repository` (same registry) holds available
    /// here without sending its bytes. `Ok(false)`: not mounted; upload it.
    async fn mount_blob(
        &self,
        _desc: &Descriptor,
        _from_repository: &str,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// A directory on the same file system as the store, where `save` can
    /// spool compressed layers so that storing them is a rename or a link
    /// instead of a copy. `None`: use the system's temporary directory.
    fn spool_dir(&self) -> Option<PathBuf> {
        None
    }

    /// Reads a small blob whole and checks it against its descriptor.
    async fn read_small_blob(&self, desc: &Descriptor) -> Result<Vec<u8>, StoreError> {
        if desc.size > MAX_SMALL_BLOB {
            return Err(StoreError::Invalid(format!(
                "blob {} claims {} bytes, more than the {} allowed for a {}",
                desc.digest, desc.size, MAX_SMALL_BLOB, desc.media_type
            )));
        }
        let reader = self.open_blob(desc).await?;
        let digest = desc.digest.clone();
        let size = desc.size;
        let read = tokio::task::spawn_blocking(move || -> io::Result<Vec<u8>> {
            let mut verifying = VerifyingReader::new(reader, digest, size);
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            verifying.read_to_end(&mut bytes)?;
            verifying.finish()?;
            Ok(bytes)
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("blob reader stopped: {e}")))?;
        read.map_err(|e| StoreError::io(format!("{}: blob {}", self.describe(), desc.digest), e))
    }
}

/// What every store may need beyond its spec: command-line settings.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// `--insecure-registry HOST[:PORT]`: plain HTTP for these hosts.
    pub insecure_registries: Vec<String>,
    /// `--jobs`: how many transfers may run at once.
    pub jobs: usize,
    /// The registry clients stores share: made once, in `main`, so every
    /// store on one host shares its tokens and connections.
    pub registry_clients: registry::clients::RegistryClients,
    /// Tags asked for per page of a registry's tag list; `None`: the
    /// default ([`registry::manage::TAGS_PAGE_SIZE`]).
    pub tags_page_size: Option<usize>,
}

/// The store an import spec names.
pub fn open_import(
    spec: &CacheFrom,
    options: &StoreOptions,
) -> Result<Box<dyn CacheStore>, StoreError> {
    match &spec.source {
        ImportSource::Local { src, tag, digest } => Ok(Box::new(local::LocalStore::new(
            src.clone(),
            tag.clone(),
            digest.clone(),
        ))),
        ImportSource::Registry {
            reference,
            insecure,
        } => Ok(Box::new(registry::RegistryStore::new(
            reference.clone(),
            *insecure,
            options,
        )?)),
        // The caller resolves a pattern to one tag first (ops::import).
        ImportSource::Pattern { .. } => Err(StoreError::Invalid(format!(
            "{}: a tag pattern names no single cache",
            spec.location()
        ))),
    }
}

/// The store an export spec names.
pub fn open_export(
    spec: &CacheTo,
    options: &StoreOptions,
) -> Result<Box<dyn CacheStore>, StoreError> {
    match &spec.target {
        ExportTarget::Local { dest, tag } => Ok(Box::new(local::LocalStore::new(
            dest.clone(),
            tag.clone(),
            None,
        ))),
        ExportTarget::Registry {
            reference,
            insecure,
        } => Ok(Box::new(registry::RegistryStore::new(
            reference.clone(),
            *insecure,
            options,
        )?)),
    }
}

/// The repository or cache directory `target` names, as a whole.
pub fn open_repository(
    target: &RepoTarget,
    options: &StoreOptions,
) -> Result<Box<dyn RepoStore>, StoreError> {
    match target {
        RepoTarget::Local { dir } => Ok(Box::new(local::LocalRepo::new(dir.clone()))),
        RepoTarget::Registry {
            repository,
            insecure,
        } => Ok(Box::new(registry::repo::RegistryRepo::new(
            repository.clone(),
            *insecure,
            options,
        )?)),
    }
}

/// A digest known to be valid as a file name (it is 64 hex digits).
pub(crate) fn blob_file_name(digest: &Digest) -> &str {
    digest.hex()
}
