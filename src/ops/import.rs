//! The tolerant importer: every `--cache-from` either loads or becomes a
//! one-line warning. A missing cache is the normal first run of a branch,
//! never a reason to fail a build.

use super::pattern;
use crate::image::{CacheConfig, CacheImage, EntriesBlob, ImageError, RawManifest};
use crate::spec::{CacheFrom, ImportSource, RepoTarget};
use crate::store::{self, CacheStore, StoreError, StoreErrorKind, StoreOptions};

/// Why a cache could not be used. For restore this is the reason of a miss
/// (a warning); for inspect, an error.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not found")]
    NotFound,
    #[error("no such repository")]
    NoRepository,
    #[error("no tag matches {pattern}")]
    NoMatch { pattern: String },
    #[error("{count} tag(s) match {pattern}, none of them a cache that records when it was made")]
    NoDatedMatch { count: usize, pattern: String },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Image(#[from] ImageError),
    /// One blob of the cache (its config, its entries list) is the problem.
    #[error("{what}: {source}")]
    Part {
        what: &'static str,
        #[source]
        source: Box<ImportError>,
    },
}

impl ImportError {
    fn part(what: &'static str) -> impl FnOnce(ImportError) -> ImportError {
        move |source| ImportError::Part {
            what,
            source: Box::new(source),
        }
    }

    pub fn kind(&self) -> StoreErrorKind {
        match self {
            ImportError::NotFound
            | ImportError::NoRepository
            | ImportError::NoMatch { .. }
            | ImportError::NoDatedMatch { .. } => StoreErrorKind::NotFound,
            ImportError::Store(err) => err.kind(),
            ImportError::Image(_) => StoreErrorKind::Corrupt,
            ImportError::Part { source, .. } => source.kind(),
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            ImportError::Store(err) => err.hint(),
            ImportError::Part { source, .. } => source.hint(),
            _ => None,
        }
    }
}

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
    Missed {
        label: String,
        reason: String,
        /// What the user can do about it, if anything.
        hint: Option<String>,
    },
}

/// Loads one `--cache-from`. Never fails: what would be an error elsewhere
/// is the reason of a miss here.
pub async fn load_tolerantly(spec: &CacheFrom, options: &StoreOptions) -> ImportOutcome {
    let label = spec.location();
    match load(spec, options).await {
        Ok(loaded) => ImportOutcome::Loaded(Box::new(loaded)),
        Err(reason) => ImportOutcome::Missed {
            hint: reason.hint(),
            reason: without_location(&reason.to_string(), &label).to_string(),
            label,
        },
    }
}

/// Loads one cache, with the reason as text when it cannot be used.
pub async fn load(spec: &CacheFrom, options: &StoreOptions) -> Result<LoadedCache, ImportError> {
    let (store, matched) = match &spec.source {
        ImportSource::Pattern { repository, prefix } => {
            let resolved = pattern::resolve(repository, prefix, options).await?;
            let matched = match repository {
                RepoTarget::Registry { .. } => repository.tag_location(&resolved.tag),
                RepoTarget::Local { .. } => resolved.tag,
            };
            (resolved.store, matched)
        }
        ImportSource::Registry { reference, .. } => {
            (store::open_import(spec, options)?, reference.to_string())
        }
        ImportSource::Local { tag, digest, .. } => (
            store::open_import(spec, options)?,
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
pub async fn load_from(store: Box<dyn CacheStore>) -> Result<LoadedCache, ImportError> {
    let label = store.describe();
    let raw = store.fetch_manifest().await?.ok_or(ImportError::NotFound)?;
    let image = CacheImage::decode(&raw)?;
    // Both are named by the manifest: one round trip instead of two.
    let (config_bytes, entries_bytes) = tokio::join!(store.read_small_blob(&image.config), async {
        match image.entries_blob() {
            Some(desc) => Some(store.read_small_blob(desc).await),
            None => None,
        }
    });
    let config_bytes = config_bytes.map_err(|e| ImportError::part("cache config")(e.into()))?;
    let config = CacheConfig::from_json(&config_bytes)
        .map_err(|e| ImportError::part("cache config")(e.into()))?;
    let entries = match entries_bytes {
        None => None,
        Some(bytes) => {
            let bytes = bytes.map_err(|e| ImportError::part("entries list")(e.into()))?;
            Some(
                EntriesBlob::from_json(&bytes)
                    .map_err(|e| ImportError::part("entries list")(e.into()))?,
            )
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

impl ImportOutcome {
    /// The warning a miss is: what, why, and what to do about it.
    pub fn warn_missed(label: &str, reason: &str, hint: Option<&str>) {
        match hint {
            Some(hint) => {
                tracing::warn!("cache {label}: {reason}; going on without it (hint: {hint})")
            }
            None => tracing::warn!("cache {label}: {reason}; going on without it"),
        }
    }
}

/// Store errors start with the location they concern; a message that names
/// the location itself need not say it twice.
pub(crate) fn without_location<'a>(message: &'a str, location: &str) -> &'a str {
    message
        .strip_prefix(location)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(message)
}
