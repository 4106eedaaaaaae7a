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
use super::{OpsError, blocking, entry_path};
use crate::compression::Compression;
use crate::image::{entry_chain, media_types};
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
}

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub sources: Vec<SourceReport>,
    pub paths: Vec<PathReport>,
    /// The registry repositories that loaded, with the blobs they hold: a
    /// later save into the same registry mounts from them.
    #[serde(skip)]
    pub mount_sources: Vec<MountSource>,
}

/// One per `--cache-from`, in the order given.
#[derive(Debug, Serialize)]
pub struct SourceReport {
    pub source: String,
    pub loaded: bool,
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
    };
    for (index, spec) in options.cache_from.iter().enumerate() {
        match import::load_tolerantly(spec, &options.store).await {
            ImportOutcome::Loaded(loaded) => {
                report.sources.push(SourceReport {
                    source: loaded.label.clone(),
                    loaded: true,
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
                sources.push((index, *loaded));
            }
            ImportOutcome::Missed { label, reason } => {
                tracing::warn!("cache {label}: {reason}; going on without it");
                report.sources.push(SourceReport {
                    source: label,
                    loaded: false,
                    reason: Some(reason),
                });
            }
        }
    }

    let names = wanted_paths(&options.paths, &sources, cwd);
    // Entries restore concurrently (each one's layers stay in order), unless
    // one lies inside another: then their writes could meet.
    let nested = names.iter().any(|a| {
        names
            .iter()
            .any(|b| a != b && entry_path::resolve(b, cwd).starts_with(entry_path::resolve(a, cwd)))
    });
    let parallel = if nested { 1 } else { options.store.jobs.max(1) };
    // Nested entries go deepest first: restoring a parent last lets its own
    // record of the inner directory's mtime have the final word.
    let mut order: Vec<usize> = (0..names.len()).collect();
    if nested {
        order.sort_by_key(|&i| std::cmp::Reverse(Path::new(&names[i]).components().count()));
    }
    let sources = &sources;
    let options = &options;
    let names = &names;
    let mut outcomes = stream::iter(order)
        .map(|i| async move {
            (
                i,
                restore_path(names[i].clone(), sources, options, cwd).await,
            )
        })
        .buffered(parallel);
    let mut by_index: Vec<Option<PathReport>> = names.iter().map(|_| None).collect();
    while let Some((i, outcome)) = outcomes.next().await {
        by_index[i] = Some(outcome?);
    }
    report.paths.extend(by_index.into_iter().flatten());
    Ok(report)
}

/// Restores one path from the first source that holds it.
async fn restore_path(
    name: String,
    sources: &[(usize, LoadedCache)],
    options: &RestoreOptions,
    cwd: &Path,
) -> Result<PathReport, OpsError> {
    let started = Instant::now();
    let holder = sources.iter().find(|(_, s)| holds(s, &name));
    let Some((index, source)) = holder else {
        tracing::warn!("{name}: not in any cache (miss)");
        return Ok(PathReport::miss(name, 0.0, None));
    };
    let root = entry_path::resolve(&name, cwd);
    let stats = match restore_entry(source, &name, root, options.progress.as_ref()).await {
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

fn holds(source: &LoadedCache, name: &str) -> bool {
    source
        .entries
        .as_ref()
        .is_some_and(|e| e.entries.iter().any(|entry| entry.path == name))
}

/// The paths asked for, or every path the caches hold that may be restored
/// without being named.
fn wanted_paths(args: &[String], sources: &[(usize, LoadedCache)], cwd: &Path) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if !args.is_empty() {
        for arg in args {
            if let Some(name) = entry_path::entry_name(arg)
                && !names.contains(&name)
            {
                names.push(name);
            }
        }
        return names;
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    for (_, source) in sources {
        let Some(entries) = &source.entries else {
            continue;
        };
        for entry in &entries.entries {
            if names.contains(&entry.path) {
                continue;
            }
            if entry_path::safe_to_restore_implicitly(&entry.path, cwd, home.as_deref()) {
                names.push(entry.path.clone());
            } else {
                tracing::warn!(
                    "{}: outside the working and home directories; not restored unless named as a PATH",
                    entry.path
                );
            }
        }
    }
    names
}

async fn restore_entry(
    source: &LoadedCache,
    name: &str,
    root: PathBuf,
    progress: &dyn Progress,
) -> Result<EntryStats, OpsError> {
    let unpack_error = |source_err| OpsError::Unpack {
        path: name.to_string(),
        from: source.label.clone(),
        source: Box::new(source_err),
    };
    let chain = entry_chain(&source.image, &source.config, name)?;
    let mut restorer = blocking(move || EntryRestorer::new(&root))
        .await?
        .map_err(unpack_error)?;
    for desc in chain {
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
        let applied = blocking(move || restorer.apply_layer(layer).map(|()| restorer)).await?;
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
