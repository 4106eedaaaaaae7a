//! The cache image model: BuildKit's cache config v0, the three manifest
//! forms a cache is stored as, regcache's entries blob, the pure exporter
//! logic that builds an image for `save`, and the report behind `inspect`.
//!
//! Everything here is pure data transformation: no I/O, no async. Manifests
//! and configs are decoded from and encoded to bytes that match what BuildKit
//! writes exactly, because their digests are how everything refers to them.

pub mod build;
pub mod config;
pub mod descriptor;
pub mod entries;
mod gojson;
pub mod inspect;
pub mod manifest;
pub mod media_types;
pub mod merge;
pub mod summary;

pub use build::{BuildEntry, BuildParams, BuiltImage, BuiltLayer, build_cache_image};
pub use config::{
    CacheConfig, CacheInput, CacheLayer, CacheRecord, CacheResult, ChainedResult, LayerAnnotations,
    MAX_CONFIG_SIZE,
};
pub use descriptor::{Descriptor, Platform};
pub use entries::{
    ENTRY_NAMESPACE, EntriesBlob, EntryKind, EntryMeta, entry_chain, entry_record_digest,
};
pub use inspect::{EntryInfo, InspectReport, LayerInfo};
pub use manifest::{CacheImage, Form, MAX_MANIFEST_SIZE, RawManifest};
pub use merge::{
    Assembled, CacheParts, assemble, holds_only_final_results, merge, replace_blobs, slim_to_min,
};
pub use summary::{CacheSummary, Writer, cache_created, parse_rfc3339};

use crate::digest::Digest;

/// Everything that can be wrong with a cache image or with a request to
/// build one. Messages name the object and the index or path at fault.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{what}: invalid JSON: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "cache config is {size} bytes, over BuildKit's import limit of {max} bytes \
         (BuildKit refuses to import it)"
    )]
    ConfigTooLarge { size: usize, max: usize },
    #[error(
        "merging {caches} caches gives a cache config of {size} bytes, over BuildKit's import \
         limit of {max} bytes (BuildKit would refuse to import it); merge fewer caches, or \
         slim them to mode=min first"
    )]
    MergeTooLarge {
        caches: usize,
        size: usize,
        max: usize,
    },
    #[error("invalid cache config: {0}")]
    InvalidConfig(String),
    #[error("not a cache image: {0}")]
    NotACacheImage(String),
    #[error("invalid cache manifest: {0}")]
    InvalidManifest(String),
    #[error(
        "manifest is {size} bytes, over BuildKit's import limit of {max} bytes \
         (BuildKit refuses to import it)"
    )]
    ManifestTooLarge { size: usize, max: usize },
    #[error("invalid regcache entries blob: {0}")]
    InvalidEntries(String),
    #[error("the cache holds no entry for path {path:?}")]
    EntryNotFound { path: String },
    #[error("the cache's record for path {path:?} has no result layer")]
    EntryWithoutResult { path: String },
    #[error("entry {path:?}: layer blob {digest} is not in the manifest")]
    MissingBlob { path: String, digest: Digest },
    #[error("cannot build cache image: {0}")]
    Build(String),
}
