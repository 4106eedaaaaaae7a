//! The tolerant importer: every `--cache-from` either loads or becomes a
//! one-line warning. A missing cache is the normal first run of a branch,
//! never a reason to fail a build.

use super::pattern;
use crate::image::{CacheConfig, CacheImage, EntriesBlob, RawManifest};
use crate::spec::{CacheFrom, ImportSource, RepoTarget};
use crate::store::{self, CacheStore, StoreOptions};

/// A cache that loaded: its manifest, the config BuildKit reads and, for
/// caches regcache wrote, the list of entries.
pub struct LoadedCache {
    pub label: String,
    /// What was read, as the metadata file's `matched` says it: the full
    /// registry ref, or a local cache's tag (or digest). For a tag pattern,
    /// the tag it resolved to.
    pub matched: String,
    pub store: Box<dyn CacheStore>,
    pub raw: RawManifest,
    pub image: CacheImage,
    pub config: CacheConfig,
    /// The config blob as stored: a copy that changes nothing sends these
    /// bytes instead of fetching them a second time.
    pub config_bytes: Vec<u8>,
    pub entries: Option<EntriesBlob>,
}

pub enum ImportOutcome {
    Loaded(Box<LoadedCache>),
    Missed { label: String, reason: String },
}

/// Loads one `--cache-from`. Never fails: what would be an error elsewhere
/// is the reason of a miss here.
pub async fn load_tolerantly(spec: &CacheFrom, options: &StoreOptions) -> ImportOutcome {
    let label = spec.location();
    match load(spec, options).await {
        Ok(loaded) => ImportOutcome::Loaded(Box::new(loaded)),
        Err(reason) => ImportOutcome::Missed {
            reason: without_location(&reason, &label).to_string(),
            label,
        },
    }
}

/// Loads one cache, with the reason as text when it cannot be used.
pub async fn load(spec: &CacheFrom, options: &StoreOptions) -> Result<LoadedCache, String> {
    let (store, matched) = match &spec.source {
        ImportSource::Pattern { repository, prefix } => {
            let resolved = pattern::resolve(repository, prefix, options).await?;
            let matched = match repository {
                RepoTarget::Registry { .. } => repository.tag_location(&resolved.tag),
                RepoTarget::Local { .. } => resolved.tag,
            };
            (resolved.store, matched)
        }
        ImportSource::Registry { reference, .. } => (
            store::open_import(spec, options).map_err(|e| e.to_string())?,
            reference.to_string(),
        ),
        ImportSource::Local { tag, digest, .. } => (
            store::open_import(spec, options).map_err(|e| e.to_string())?,
            digest
                .as_ref()
                .map_or_else(|| tag.clone(), ToString::to_string),
        ),
    };
    let mut loaded = load_from(store).await?;
    loaded.matched = matched;
    Ok(loaded)
}

/// Loads the cache an opened store holds (an export target's, to save on
/// top of it).
pub async fn load_from(store: Box<dyn CacheStore>) -> Result<LoadedCache, String> {
    let label = store.describe();
    let raw = match store.fetch_manifest().await {
        Ok(Some(raw)) => raw,
        Ok(None) => return Err("not found".to_string()),
        Err(err) => return Err(err.to_string()),
    };
    let image = CacheImage::decode(&raw).map_err(|e| e.to_string())?;
    let config_bytes = store
        .read_small_blob(&image.config)
        .await
        .map_err(|e| format!("cache config: {e}"))?;
    let config = CacheConfig::from_json(&config_bytes).map_err(|e| format!("cache config: {e}"))?;
    let entries = match image.entries_blob() {
        None => None,
        Some(desc) => {
            let bytes = store
                .read_small_blob(desc)
                .await
                .map_err(|e| format!("entries list: {e}"))?;
            Some(EntriesBlob::from_json(&bytes).map_err(|e| format!("entries list: {e}"))?)
        }
    };
    Ok(LoadedCache {
        matched: label.clone(),
        label,
        store,
        raw,
        image,
        config,
        config_bytes,
        entries,
    })
}

/// Store errors start with the location they concern; a message that names
/// the location itself need not say it twice.
pub(crate) fn without_location<'a>(message: &'a str, location: &str) -> &'a str {
    message
        .strip_prefix(location)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(message)
}
