//! `regcache restore`: each path from the first `--cache-from`, in the
//! order given, that holds it. Missing caches are warnings; a blob that
//! fails its digest is an error, and never reaches the target.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures_util::{StreamExt, stream};
use serde::Serialize;

use super::import::{self, ImportOutcome, LoadedCache};
use super::save::MountSource;
use super::transfer::fetch_verified;
use super::{OpsError, blocking, entry_path};
use crate::compression::Compression;
use crate::image::entries::{EntryKind, EntryMeta};
use crate::image::{entry_chain, media_types};
use crate::layer::root::RootPath;
use crate::layer::superseded::FinalLayers;
use crate::layer::{EntryRestorer, EntryStats, LayerSource};
use crate::progress::{BlobProgress, Progress, ProgressReader};
use crate::spec::CacheFrom;
use crate::store::StoreOptions;

pub struct RestoreOptions {
    pub cache_from: Vec<CacheFrom>,
    /// Empty: every path the caches hold (see
    /// [`entry_path::safe_to_restore_implicitly`]).
    pub paths: Vec<String>,
    pub store: StoreOptions,
    /// Told about every layer as it is downloaded and extracted.
    pub progress: Arc<dyn Progress>,
    /// A path that fails to restore (a corrupt or hostile blob) becomes a
    /// warning and a miss instead of stopping the restore. `run` wants
    /// this: the command rebuilds what is missing, and its save replaces
    /// the broken cache.
    pub keep_going: bool,
    /// An entry root that is a symlink on disk is followed instead of
    /// refused (`--allow-root-symlink`); never for a root inside another
    /// entry, whose restore may have planted it.
    pub allow_root_symlink: bool,
}

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub sources: Vec<SourceReport>,
    pub paths: Vec<PathReport>,
    /// The registry repositories that loaded, with the blobs they hold: a
    /// later save into the same registry mounts from them.
    #[serde(skip)]
    pub mount_sources: Vec<MountSource>,
    /// Every path the loaded caches hold, in order, each once: what a
    /// PATH that missed could have been.
    pub held: Vec<String>,
}

/// One per `--cache-from`, in the order given.
#[derive(Debug, Serialize)]
pub struct SourceReport {
    pub source: String,
    pub loaded: bool,
    /// What was read: the full registry ref, or a local tag; for a tag
    /// pattern, the tag it resolved to. `None` when nothing was.
    pub matched: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PathReport {
    pub path: String,
    pub hit: bool,
    /// The `--cache-from` the path came from, as its store names itself.
    pub from: Option<String>,
    /// Its position among the `--cache-from` specs.
    pub from_index: Option<usize>,
    pub stats: Option<EntryStats>,
    pub seconds: f64,
    /// Why a path held by a cache was not restored (with `keep_going`).
    pub error: Option<String>,
}

impl PathReport {
    /// A path that was not restored: in no cache, or (with `keep_going`)
    /// its restore failed with `error`.
    fn miss(path: String, seconds: f64, error: Option<String>) -> PathReport {
        PathReport {
            path,
            hit: false,
            from: None,
            from_index: None,
            stats: None,
            seconds,
            error,
        }
    }
}

impl RestoreReport {
    pub fn hits(&self) -> usize {
        self.paths.iter().filter(|p| p.hit).count()
    }
}

pub async fn restore(options: RestoreOptions, cwd: &Path) -> Result<RestoreReport, OpsError> {
    let mut sources = Vec::new();
    let mut report = RestoreReport {
        sources: Vec::new(),
        paths: Vec::new(),
        mount_sources: Vec::new(),
        held: Vec::new(),
    };
    for (index, spec) in options.cache_from.iter().enumerate() {
        match import::load_tolerantly(spec, &options.store).await {
            ImportOutcome::Loaded(loaded) => {
                report.sources.push(SourceReport {
                    source: loaded.label.clone(),
                    loaded: true,
                    matched: Some(loaded.matched.clone()),
                    reason: None,
                });
                if let Some((registry, repository)) = loaded.store.registry_repository() {
                    report.mount_sources.push(MountSource {
                        registry,
                        repository,
                        blobs: loaded
                            .image
                            .descriptors()
                            .map(|d| d.digest.clone())
                            .collect(),
                    });
                }
                for entry in loaded.entries.iter().flat_map(|e| &e.entries) {
                    if !report.held.contains(&entry.path) {
                        report.held.push(entry.path.clone());
                    }
                }
                sources.push((index, *loaded));
            }
            ImportOutcome::Missed {
                label,
                reason,
                hint,
            } => {
                ImportOutcome::warn_missed(&label, &reason, hint.as_deref());
                report.sources.push(SourceReport {
                    source: label,
                    loaded: false,
                    matched: None,
                    reason: Some(reason),
                });
            }
        }
    }

    let home = std::env::var_os("HOME").map(PathBuf::from);
    let wanted = wanted_paths(&options.paths, &sources, cwd, home.as_deref());
    // Entries restore concurrently (each one's layers stay in order), unless
    // one lies inside another: then their writes could meet. Nesting is
    // decided on canonical paths, so no spelling of a parent hides it.
    let nested = wanted.iter().any(|a| {
        wanted
            .iter()
            .any(|b| b.root != a.root && b.root.starts_with(&a.root))
    });
    let parallel = if nested { 1 } else { options.store.jobs.max(1) };
    // Nested entries go deepest first: an inner root is then made a real
    // directory before an outer entry's layers could put a symlink there,
    // and restoring a parent last lets its own record of the inner
    // directory's mtime have the final word.
    let mut order: Vec<usize> = (0..wanted.len()).collect();
    if nested {
        order.sort_by_key(|&i| std::cmp::Reverse(wanted[i].root.components().count()));
    }
    let context = Context {
        sources: &sources,
        wanted: &wanted,
        options: &options,
        cwd,
        home: home.as_deref(),
    };
    let context = &context;
    let mut outcomes = stream::iter(order)
        .map(|i| async move { (i, restore_path(&context.wanted[i], context).await) })
        .buffered(parallel);
    let mut by_index: Vec<Option<PathReport>> = wanted.iter().map(|_| None).collect();
    while let Some((i, outcome)) = outcomes.next().await {
        by_index[i] = Some(outcome?);
    }
    report.paths.extend(by_index.into_iter().flatten());
    Ok(report)
}

/// One path to restore.
struct Wanted {
    /// As reported: the PATH as the user wrote it (cleaned), or the entry's
    /// path as the cache names it.
    name: String,
    /// Canonical: what matches cache entries, and where it is restored.
    root: PathBuf,
}

/// What every path's restore reads.
struct Context<'a> {
    sources: &'a [(usize, LoadedCache)],
    wanted: &'a [Wanted],
    options: &'a RestoreOptions,
    cwd: &'a Path,
    home: Option<&'a Path>,
}

impl Context<'_> {
    /// How `wanted`'s root is reached: walked from its anchor without
    /// following a symlink. Its own root may be a symlink only with the
    /// user's leave, and never when it lies inside another entry being
    /// restored or held by `source`: that entry's layers may have put it
    /// there, now or in an earlier restore.
    fn root_path(&self, wanted: &Wanted, source: &LoadedCache) -> RootPath {
        let enclosing = self
            .wanted
            .iter()
            .map(|w| w.root.clone())
            .chain(
                source_entries(source)
                    .iter()
                    .map(|e| entry_path::canonical(&e.path, self.cwd)),
            )
            .filter(|other| *other != wanted.root && wanted.root.starts_with(other))
            .min_by_key(|other| other.components().count());
        entry_path::root_path(
            &wanted.root,
            enclosing.as_deref().unwrap_or(&wanted.root),
            self.cwd,
            self.home,
            self.options.allow_root_symlink && enclosing.is_none(),
        )
    }
}

/// Restores one path from the first source that holds it.
async fn restore_path(wanted: &Wanted, context: &Context<'_>) -> Result<PathReport, OpsError> {
    let started = Instant::now();
    let name = wanted.name.clone();
    let holder = context.sources.iter().find_map(|(index, source)| {
        entry_held(source, &wanted.root, context.cwd).map(|entry| (index, source, entry))
    });
    let Some((index, source, entry)) = holder else {
        tracing::warn!("{name}: not in any cache (miss)");
        return Ok(PathReport::miss(name, 0.0, None));
    };
    let root = context.root_path(wanted, source);
    let options = context.options;
    let stats = match restore_entry(source, entry, &name, root, options.progress.as_ref()).await {
        Ok(stats) => stats,
        Err(err) if options.keep_going => {
            tracing::warn!("{err}; going on without it");
            let seconds = started.elapsed().as_secs_f64();
            return Ok(PathReport::miss(name, seconds, Some(err.to_string())));
        }
        Err(err) => return Err(err),
    };
    tracing::info!(
        "restored {name} from {}: {} files, {} bytes",
        source.label,
        stats.files,
        stats.bytes
    );
    Ok(PathReport {
        path: name,
        hit: true,
        from: Some(source.label.clone()),
        from_index: Some(*index),
        stats: Some(stats),
        seconds: started.elapsed().as_secs_f64(),
        error: None,
    })
}

fn source_entries(source: &LoadedCache) -> &[EntryMeta] {
    source
        .entries
        .as_ref()
        .map_or(&[], |e| e.entries.as_slice())
}

/// The path under which `source` holds the entry whose canonical root is
/// `root`, whatever spelling it was saved under. Two spellings of one
/// directory in one cache are one entry: the first listed is used.
fn entry_held<'a>(source: &'a LoadedCache, root: &Path, cwd: &Path) -> Option<&'a str> {
    source_entries(source)
        .iter()
        .find(|entry| entry_path::canonical(&entry.path, cwd) == root)
        .map(|entry| entry.path.as_str())
}

/// The paths asked for, or every path the caches hold that may be restored
/// without being named; one per canonical path.
fn wanted_paths(
    args: &[String],
    sources: &[(usize, LoadedCache)],
    cwd: &Path,
    home: Option<&Path>,
) -> Vec<Wanted> {
    let mut wanted: Vec<Wanted> = Vec::new();
    let add = |name: String, wanted: &mut Vec<Wanted>| {
        let root = entry_path::canonical(&name, cwd);
        if !wanted.iter().any(|w| w.root == root) {
            wanted.push(Wanted { name, root });
        }
    };
    if !args.is_empty() {
        for arg in args {
            if let Some(name) = entry_path::entry_name(arg) {
                add(name, &mut wanted);
            }
        }
        return wanted;
    }
    for (_, source) in sources {
        for entry in source_entries(source) {
            if entry_path::safe_to_restore_implicitly(&entry.path, cwd, home) {
                add(entry.path.clone(), &mut wanted);
            } else {
                tracing::warn!(
                    "{}: outside the working and home directories; not restored unless named as a PATH",
                    entry.path
                );
            }
        }
    }
    wanted
}

async fn restore_entry(
    source: &LoadedCache,
    entry: &str,
    name: &str,
    root: RootPath,
    progress: &dyn Progress,
) -> Result<EntryStats, OpsError> {
    let unpack_error = |source_err| OpsError::Unpack {
        path: name.to_string(),
        from: source.label.clone(),
        source: Box::new(source_err),
    };
    let chain = entry_chain(&source.image, &source.config, entry)?;
    let list = final_state_list(source, entry).await;
    let kind = source
        .entries
        .as_ref()
        .and_then(|e| e.find(entry))
        .map_or(EntryKind::Dir, |meta| meta.kind);
    let mut restorer = blocking(move || match kind {
        EntryKind::Dir => EntryRestorer::open(&root),
        EntryKind::File => EntryRestorer::open_file(&root),
    })
    .await?
    .map_err(unpack_error)?;
    for (index, desc) in chain.into_iter().enumerate() {
        let compression = media_types::layer_compression(&desc.media_type).ok_or_else(|| {
            OpsError::Failed(format!(
                "{}: layer {} has media type {}, which is not a layer",
                source.label, desc.digest, desc.media_type
            ))
        })?;
        // eStargz shares gzip's media type; its TOC annotation tells it
        // apart, and the restorer then skips the TOC and landmark files an
        // eStargz tar may carry as entries.
        let compression = match compression {
            Compression::Gzip
                if desc
                    .annotations
                    .contains_key(media_types::ANNOTATION_STARGZ_TOC) =>
            {
                Compression::Estargz
            }
            other => other,
        };
        let diff_id = desc
            .annotations
            .get(media_types::ANNOTATION_UNCOMPRESSED)
            .and_then(|v| v.parse().ok());
        let max_uncompressed = desc
            .annotations
            .get(media_types::ANNOTATION_UNCOMPRESSED_SIZE)
            .and_then(|v| v.parse::<u64>().ok());
        if diff_id.is_none() || max_uncompressed.is_none() {
            return Err(OpsError::Failed(format!(
                "{}: layer {} of {name} does not declare its uncompressed digest and size; refusing to extract it",
                source.label, desc.digest
            )));
        }
        // Downloading and extracting are one streaming pass: the bytes
        // read from the store are the progress of both.
        let blob: Arc<dyn BlobProgress> =
            Arc::from(progress.blob(&format!("{name}: layer {}", desc.digest.short()), desc.size));
        let reader = match source.store.open_blob(desc).await {
            Ok(reader) => reader,
            Err(err) => {
                blob.finish("failed");
                return Err(err.into());
            }
        };
        let layer = LayerSource {
            reader: ProgressReader::new(reader, Arc::clone(&blob)),
            digest: desc.digest.clone(),
            size: desc.size,
            compression,
            diff_id,
            max_uncompressed,
        };
        let mut finals = list.as_ref().and_then(|list| {
            let index = u32::try_from(index).ok()?;
            FinalLayers::open(list.path(), index)
                .map_err(|e| tracing::debug!("{name}: state list: {e}"))
                .ok()
        });
        let applied = blocking(move || {
            let applied = restorer.apply_layer_skipping(layer, finals.as_mut());
            if let Some(finals) = finals.filter(|f| f.skipped > 0) {
                tracing::debug!(
                    "skipped {} path(s) later layers replace or delete",
                    finals.skipped
                );
            }
            applied.map(|()| restorer)
        })
        .await?;
        match applied {
            Ok(r) => {
                blob.finish("restored");
                restorer = r;
            }
            Err(err) => {
                blob.finish("failed");
                return Err(unpack_error(err));
            }
        }
    }
    blocking(move || restorer.finish())
        .await?
        .map_err(unpack_error)
}

/// For a chain with deltas, its state list (fetched and verified), so each
/// layer skips what a later one replaces or deletes. Anything wrong with it
/// only means every path of every layer is written, as without a list.
async fn final_state_list(source: &LoadedCache, entry: &str) -> Option<tempfile::NamedTempFile> {
    let meta = source.entries.as_ref()?.find(entry)?;
    if meta.deltas == 0 {
        return None;
    }
    let desc = source
        .image
        .find_blob(meta.filelist.as_ref()?)
        .filter(|d| d.media_type == media_types::REGCACHE_FILELIST)?;
    fetch_verified(source.store.as_ref(), desc, &std::env::temp_dir())
        .await
        .map_err(|e| tracing::warn!("{entry}: state list: {e}; restoring every layer in full"))
        .ok()
}
