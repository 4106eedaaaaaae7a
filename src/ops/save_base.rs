//! The base of an incremental save: the cache a save compares its walk
//! with, so that unchanged parts are reused instead of read and packed.
//!
//! Candidates, first match per entry wins: `save --cache-from` (or, in
//! `run`, the caches it restored from), then what the group's first
//! `--cache-to` holds now. A candidate serves an entry when it is a regcache
//! cache holding the entry with a state list, and layers of the compression
//! being written. Anything else about a base (missing, unreadable, corrupt)
//! only means a full save, with a debug or warning line.

use std::collections::HashSet;
use std::path::Path;

use super::import::{self, ImportError, LoadedCache};
use super::restore::SourceReport;
use super::transfer::fetch_verified;
use crate::compression::Compression;
use crate::digest::Digest;
use crate::image::entry_chain;
use crate::image::media_types::{
    ANNOTATION_STARGZ_TOC, ANNOTATION_UNCOMPRESSED, ANNOTATION_UNCOMPRESSED_SIZE,
    REGCACHE_FILELIST, layer_compression,
};
use crate::image::{Descriptor, EntryKind};
use crate::layer::{BaseEntry, FileListBlob, PackedLayer};
use crate::spec::{CacheFrom, CacheTo};
use crate::store::{self, StoreErrorKind, StoreOptions};

/// What a save found to compare with.
pub(crate) struct Bases {
    /// The caches that may serve as a base, in order of preference.
    pub caches: Vec<LoadedCache>,
    /// One per `--cache-from`, in order: read, or missed and why.
    pub sources: Vec<SourceReport>,
    /// The blobs the first target holds now (what its current cache names).
    pub target_holds: HashSet<Digest>,
    /// The first target did not answer (refused, timed out, TLS failed):
    /// its export would fail after packing the whole tree for nothing.
    pub target_unreachable: Option<ImportError>,
}

pub(crate) async fn load_bases(
    cache_from: &[CacheFrom],
    first_target: &CacheTo,
    options: &StoreOptions,
) -> Bases {
    let mut caches = Vec::new();
    let mut sources = Vec::new();
    let mut target_holds = HashSet::new();
    let mut target_unreachable = None;
    for spec in cache_from {
        let (loaded, matched, reason) = match import::load(spec, options).await {
            Ok(loaded) => {
                let matched = loaded.matched.clone();
                caches.push(loaded);
                (true, Some(matched), None)
            }
            Err(reason) => {
                tracing::debug!("base {}: {reason}", spec.location());
                (false, None, Some(reason.to_string()))
            }
        };
        sources.push(SourceReport {
            source: spec.location(),
            loaded,
            matched,
            reason,
        });
    }
    match store::open_export(first_target, options) {
        Ok(store) => match import::load_from(store).await {
            Ok(loaded) => {
                target_holds.extend(loaded.image.descriptors().map(|d| d.digest.clone()));
                caches.push(loaded);
            }
            Err(reason)
                if matches!(
                    reason.kind(),
                    StoreErrorKind::Unreachable | StoreErrorKind::Tls
                ) =>
            {
                target_unreachable = Some(reason);
            }
            Err(reason) => tracing::debug!(
                "base {}: {reason}; a full save",
                first_target.target.location()
            ),
        },
        Err(err) => tracing::debug!("base {}: {err}", first_target.target.location()),
    }
    Bases {
        caches,
        sources,
        target_holds,
        target_unreachable,
    }
}

/// A base entry, with its state list fetched into `spool` (the file is
/// removed when the handle drops).
pub(crate) struct FetchedBase {
    /// Index into the bases given to [`find_base`].
    pub base: usize,
    pub entry: BaseEntry,
    _list: tempfile::NamedTempFile,
}

/// The first base that can serve the entry `path`, a `kind`, for layers of
/// `compression`.
pub(crate) async fn find_base(
    bases: &[LoadedCache],
    path: &str,
    kind: EntryKind,
    compression: Compression,
    spool: &Path,
) -> Option<FetchedBase> {
    for (index, base) in bases.iter().enumerate() {
        let (list, layers, deltas) = match usable(base, path, kind, compression) {
            Ok(found) => found,
            Err(why) => {
                tracing::debug!("{path}: base {} not used: {why}", base.label);
                continue;
            }
        };
        let file = match fetch_verified(base.store.as_ref(), &list, spool).await {
            Ok(file) => file,
            Err(err) => {
                tracing::warn!("{path}: base state list: {err}; not used");
                continue;
            }
        };
        tracing::info!("{path}: comparing with the cache in {}", base.label);
        return Some(FetchedBase {
            base: index,
            entry: BaseEntry {
                filelist: FileListBlob {
                    blob: file.path().to_path_buf(),
                    digest: list.digest.clone(),
                    size: list.size,
                },
                layers,
                deltas,
            },
            _list: file,
        });
    }
    None
}

/// The entry's state list descriptor and its chain as reusable layers.
fn usable(
    base: &LoadedCache,
    path: &str,
    kind: EntryKind,
    compression: Compression,
) -> Result<(Descriptor, Vec<PackedLayer>, usize), String> {
    let entries = base.entries.as_ref().ok_or("not a regcache cache")?;
    let meta = entries.find(path).ok_or("does not hold this path")?;
    // A layer means one thing under a directory root and another as a
    // single file: never reuse one across a change of kind.
    if meta.kind != kind {
        return Err(format!(
            "it holds a {} there, this is a {}",
            meta.kind.name(),
            kind.name()
        ));
    }
    let list_digest = meta.filelist.as_ref().ok_or("no state list")?;
    let list = base
        .image
        .find_blob(list_digest)
        .filter(|d| d.media_type == REGCACHE_FILELIST)
        .ok_or("its state list is not in the manifest")?
        .clone();
    // The chain restore would apply is the config's, not the entries
    // blob's: both must agree for a reused layer to mean what the list says.
    let chain = entry_chain(&base.image, &base.config, path).map_err(|e| e.to_string())?;
    let digests: Vec<&Digest> = chain.iter().map(|d| &d.digest).collect();
    if digests != meta.layers.iter().collect::<Vec<_>>() {
        return Err("its entries list and config disagree on the chain".into());
    }
    let layers: Vec<PackedLayer> = chain
        .into_iter()
        .map(|desc| reusable_layer(desc, compression))
        .collect::<Result<_, _>>()?;
    let deltas = meta.deltas as usize;
    if deltas >= layers.len() {
        return Err(format!("{deltas} deltas in a chain of {}", layers.len()));
    }
    Ok((list, layers, deltas))
}

/// Why a layer of a base cannot stand for its part in this save.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum UnusableLayer {
    #[error("toc digest: {0}")]
    TocDigest(#[source] crate::digest::DigestParseError),
    #[error("{0} is not a layer")]
    NotALayer(Digest),
    #[error("its layers are {}, this save writes {}", stored.name(), wanted.name())]
    Compression {
        stored: Compression,
        wanted: Compression,
    },
    #[error("a layer has no diffID")]
    NoDiffId,
    #[error("diffID: {0}")]
    DiffId(#[source] crate::digest::DigestParseError),
    #[error("a layer has no uncompressed size")]
    NoUncompressedSize,
    #[error("uncompressed size: {0}")]
    UncompressedSize(#[source] std::num::ParseIntError),
}

/// Its caller, `usable`, gives its reason as text, for a log line.
impl From<UnusableLayer> for String {
    fn from(err: UnusableLayer) -> String {
        err.to_string()
    }
}

fn reusable_layer(
    desc: &Descriptor,
    compression: Compression,
) -> Result<PackedLayer, UnusableLayer> {
    let toc_digest = desc
        .annotation(ANNOTATION_STARGZ_TOC)
        .map(|t| t.parse::<Digest>().map_err(UnusableLayer::TocDigest))
        .transpose()?;
    let stored = match (layer_compression(&desc.media_type), &toc_digest) {
        (Some(Compression::Gzip), Some(_)) => Compression::Estargz,
        (Some(c), _) => c,
        (None, _) => return Err(UnusableLayer::NotALayer(desc.digest.clone())),
    };
    if stored != compression {
        return Err(UnusableLayer::Compression {
            stored,
            wanted: compression,
        });
    }
    let diff_id = desc
        .annotation(ANNOTATION_UNCOMPRESSED)
        .ok_or(UnusableLayer::NoDiffId)?
        .parse::<Digest>()
        .map_err(UnusableLayer::DiffId)?;
    let uncompressed_size = desc
        .annotation(ANNOTATION_UNCOMPRESSED_SIZE)
        .ok_or(UnusableLayer::NoUncompressedSize)?
        .parse::<u64>()
        .map_err(UnusableLayer::UncompressedSize)?;
    Ok(PackedLayer {
        blob: Default::default(),
        digest: desc.digest.clone(),
        size: desc.size,
        diff_id,
        uncompressed_size,
        toc_digest,
        reused: true,
    })
}

#[cfg(test)]
#[path = "save_base_tests.rs"]
mod reusable_layer_tests;
