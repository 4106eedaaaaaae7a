//! A whole repository (registry) or cache directory (local OCI layout):
//! what works across its tags. `prune`, `ls` and restore-key patterns are
//! written once against [`RepoStore`]; each backend says what it can do
//! (a registry deletes manifests, not tags, and collects no garbage).

use std::path::PathBuf;
use std::time::SystemTime;

use async_trait::async_trait;

use super::{CacheStore, StoreError};
use crate::digest::Digest;
use crate::image::{CacheConfig, CacheImage, CacheSummary, EntriesBlob, ImageError, RawManifest};

/// The tags of a repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagListing {
    /// Every tag, each once, in the store's order.
    pub tags: Vec<String>,
    /// Manifests no tag names (a local index's untagged entries).
    pub untagged: usize,
}

/// What deleting one tag takes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteScope {
    /// The manifest goes, and with it every tag that points at it
    /// (a registry: `DELETE /v2/NAME/manifests/DIGEST`).
    Manifest,
    /// Only that tag goes; other tags on the manifest stay (a local index).
    Tag,
}

/// What became of one requested delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// Deleted; in a dry run, would be.
    Deleted,
    /// The store no longer had it (deleted by someone else meanwhile).
    AlreadyGone,
    /// The tag moved to another manifest meanwhile: left alone.
    Changed,
    /// The delete was tried and refused: see [`DeleteOutcome::error`].
    Failed,
    /// Not tried, because an earlier delete failed.
    NotTried,
}

pub struct DeleteOutcome {
    /// One per request, in the order given.
    pub results: Vec<Deletion>,
    /// The error that stopped the deletes, if one did.
    pub error: Option<StoreError>,
}

/// What a garbage collection removed (or, in a dry run, would).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Garbage {
    /// Blobs no remaining manifest references, with their sizes.
    pub removed: Vec<(Digest, u64)>,
    /// Blobs still referenced.
    pub kept: usize,
    /// Why no blob was removed although some may be unreferenced: a
    /// remaining manifest could not be read, so what it references is
    /// unknown.
    pub skipped: Option<String>,
}

/// One tag, read as a cache.
#[derive(Debug, Clone)]
pub struct TagInfo {
    pub tag: String,
    /// The manifest's digest; `None` when it could not be read.
    pub digest: Option<Digest>,
    pub content: TagContent,
}

#[derive(Debug, Clone)]
pub enum TagContent {
    Cache(Box<CacheSummary>),
    /// A manifest that is not a cache image (an ordinary image, a
    /// multi-platform index), and why.
    NotACache(String),
    /// The manifest, config or entries list could not be read: the reason,
    /// whole (`unreadable: …`, `cache config unreadable: …`).
    Unreadable(String),
    /// The tag disappeared between listing and reading.
    Gone,
}

impl TagInfo {
    /// The cache's creation time, for a cache that records one.
    pub fn created(&self) -> Option<SystemTime> {
        match &self.content {
            TagContent::Cache(summary) => summary.created.as_ref().map(|(t, _)| *t),
            _ => None,
        }
    }
}

/// A repository or cache directory.
#[async_trait]
pub trait RepoStore: Send + Sync {
    /// How messages name it: `ghcr.io/org/app`, or the directory.
    fn describe(&self) -> String;

    /// Every tag. `None`: the repository does not exist (a registry says
    /// so; a directory that is not a layout is an error).
    async fn list_tags(&self) -> Result<Option<TagListing>, StoreError>;

    /// The digest of the manifest `tag` names, or `None` when no such tag.
    async fn resolve_tag(&self, tag: &str) -> Result<Option<Digest>, StoreError>;

    /// `tag` as a cache store, sharing this store's connections.
    fn open_tag(&self, tag: &str) -> Result<Box<dyn CacheStore>, StoreError>;

    fn delete_scope(&self) -> DeleteScope;

    /// Deletes each `(tag, digest)` read earlier, in order, stopping at the
    /// first failure; with [`DeleteScope::Manifest`] a digest is deleted
    /// once however many requests name it. `dry_run`: decides the same and
    /// touches nothing.
    async fn delete_tags(&self, requests: &[(String, Digest)], dry_run: bool) -> DeleteOutcome;

    /// Removes the blobs no tag references. `pending`: tags a dry run would
    /// have deleted, judged as gone. `Ok(None)`: this store cannot (a
    /// registry frees blobs in its own garbage collection).
    async fn collect_garbage(
        &self,
        dry_run: bool,
        pending: &[String],
    ) -> Result<Option<Garbage>, StoreError>;

    /// A directory writers spool into beside the store, where a killed
    /// save leaves its spool. `None`: nothing is spooled there.
    fn spool_dir(&self) -> Option<PathBuf> {
        None
    }

    /// Reads `tag` as a cache: its manifest and config, and with
    /// `with_entries` a regcache cache's entries list (for its paths and
    /// mode). Never fails: what cannot be read is said in the content.
    async fn read_cache(&self, tag: &str, with_entries: bool) -> TagInfo {
        let content = |content| TagInfo {
            tag: tag.to_string(),
            digest: None,
            content,
        };
        let store = match self.open_tag(tag) {
            Ok(store) => store,
            Err(err) => return content(TagContent::Unreadable(err.to_string())),
        };
        let raw = match store.fetch_manifest().await {
            Ok(Some(raw)) => raw,
            Ok(None) => return content(TagContent::Gone),
            Err(err) => return content(TagContent::Unreadable(format!("unreadable: {err}"))),
        };
        TagInfo {
            tag: tag.to_string(),
            digest: Some(raw.digest.clone()),
            content: summarize(store.as_ref(), &raw, with_entries).await,
        }
    }
}

async fn summarize(store: &dyn CacheStore, raw: &RawManifest, with_entries: bool) -> TagContent {
    let image = match CacheImage::decode(raw) {
        Ok(image) => image,
        Err(ImageError::NotACacheImage(why)) => return TagContent::NotACache(why),
        Err(err) => return TagContent::Unreadable(format!("not a readable cache: {err}")),
    };
    let config = match store.read_small_blob(&image.config).await {
        Ok(bytes) => match CacheConfig::from_json(&bytes) {
            Ok(config) => config,
            Err(err) => return TagContent::Unreadable(format!("cache config unreadable: {err}")),
        },
        Err(err) => return TagContent::Unreadable(format!("cache config unreadable: {err}")),
    };
    let entries = match image.entries_blob() {
        Some(desc) if with_entries => {
            let read = match store.read_small_blob(desc).await {
                Ok(bytes) => EntriesBlob::from_json(&bytes).map_err(|e| e.to_string()),
                Err(err) => Err(err.to_string()),
            };
            match read {
                Ok(blob) => Some(blob),
                Err(err) => {
                    return TagContent::Unreadable(format!("entries list unreadable: {err}"));
                }
            }
        }
        _ => None,
    };
    TagContent::Cache(Box::new(CacheSummary::new(
        raw,
        &image,
        &config,
        entries.as_ref(),
    )))
}
