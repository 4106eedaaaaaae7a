//! `regcache save`: pack each PATH into layers once per distinct
//! compression, then write a cache image to every `--cache-to`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde::Serialize;

use super::import::LoadedCache;
use super::restore::SourceReport;
use super::save_base::{Bases, find_base, load_bases};
use super::spool::{self, SpoolDir};
pub use super::transfer::MountSource;
use super::transfer::{
    Announced, Content, EarlyUploads, PackedBlob, Placement, Spool, Upload, place_all, upload_early,
};
use super::{OpsError, blocking, entry_path};
use crate::digest::Digest;
use crate::image::build::{
    BuildEntry, BuildParams, BuiltFileList, BuiltImage, BuiltLayer, build_cache_image,
};
use crate::image::media_types::REGCACHE_FILELIST;
use crate::image::{Descriptor, EntryKind, Form};
use crate::layer::delta::pack_delta;
use crate::layer::growing::GrowingBlob;
use crate::layer::pack::SaveCounts;
use crate::layer::plan::EntryPlan;
use crate::layer::{
    EntryStats, PackHooks, PackOptions, PackedEntry, PackedLayer, pack_dir_with_base,
    pack_file_with_base,
};
use crate::progress::{BlobProgress, Progress, human_bytes};
use crate::spec::{CacheFrom, CacheTo, Mode};
use crate::store::{self, CacheStore, StoreOptions};

pub struct SaveOptions {
    pub cache_to: Vec<CacheTo>,
    /// Bases to compare with before the first `--cache-to` of each
    /// compression (`save --cache-from`, or the caches `run` restored from):
    /// parts they hold unchanged are reused, not read again.
    pub cache_from: Vec<CacheFrom>,
    pub paths: Vec<String>,
    pub jobs: usize,
    pub part_size: u64,
    pub store: StoreOptions,
    /// Told about every layer packed and every blob written or reused.
    pub progress: Arc<dyn Progress>,
    /// Repositories known to hold blobs (e.g. the caches `run` restored
    /// from), for cross-repository mounts. Targets written earlier in the
    /// same save are added as they complete.
    pub mount_sources: Vec<MountSource>,
}

/// What a save did. A failed export does not make [`save`] return an
/// error, so that the caller can still report and record what did happen:
/// check [`SaveReport::failure`].
#[derive(Debug, Serialize)]
#[must_use = "a failed export is only in the report: check SaveReport::failure"]
pub struct SaveReport {
    pub entries: Vec<SavedEntry>,
    pub skipped: Vec<SkippedPath>,
    /// One per `--cache-from` (the bases), in the order given; empty when
    /// there was nothing to save and no base was read.
    pub bases: Vec<SourceReport>,
    /// One per `--cache-to`, in the order given; empty when there was
    /// nothing to save and no target was touched.
    pub cache_to: Vec<TargetReport>,
}

#[derive(Debug, Serialize)]
pub struct SavedEntry {
    pub path: String,
    pub layers: usize,
    /// Layers taken unchanged from the base cache: not read, not packed.
    pub reused_layers: usize,
    /// `mode=max`: how many of the top layers are deltas (0 after a full
    /// save or a squash).
    pub delta_layers: usize,
    /// What the save decided for the entry.
    pub plan: EntryPlan,
    #[serde(flatten)]
    pub counts: SaveCounts,
    #[serde(flatten)]
    pub stats: EntryStats,
}

#[derive(Debug, Serialize)]
pub struct SkippedPath {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct TargetReport {
    /// The spec's location: the registry ref or the local dest.
    pub target: String,
    pub digest: Option<Digest>,
    pub uploaded_bytes: u64,
    pub uploaded_blobs: usize,
    pub reused_blobs: usize,
    pub seconds: f64,
    /// Why the export to this target failed.
    pub error: Option<String>,
    /// What the user can do about that failure.
    pub hint: Option<String>,
    /// The failure was only a warning: the spec said `ignore-error=true`.
    pub error_ignored: bool,
}

impl SaveReport {
    /// The exports that failed without `ignore-error=true`, as the error
    /// the command exits with (status 1).
    pub fn failure(&self) -> Option<OpsError> {
        let failed: Vec<&TargetReport> = self
            .cache_to
            .iter()
            .filter(|t| !t.error_ignored && t.error.is_some())
            .collect();
        let failures: Vec<String> = failed
            .iter()
            .filter_map(|t| {
                let error = t.error.as_ref()?;
                let error = super::import::without_location(error, &t.target);
                Some(format!("{}: {error}", t.target))
            })
            .collect();
        if failures.is_empty() {
            return None;
        }
        Some(OpsError::Export {
            target: if failures.len() == 1 {
                "1 target".into()
            } else {
                format!("{} targets", failures.len())
            },
            message: failures.join("; "),
            hint: failed.iter().find_map(|t| t.hint.clone()),
        })
    }
}

/// The layers of every entry packed with one (compression, level).
struct PackedSet {
    entries: Vec<(String, PackedEntry)>,
    /// Each entry's kind, in the order of `entries`.
    kinds: Vec<EntryKind>,
    /// The caches reused layers come from, and for each entry which one.
    bases: Vec<LoadedCache>,
    entry_base: Vec<Option<usize>>,
    /// Layers the first target of the group received while packing went on.
    early: EarlyUploads,
    /// Keeps the spooled blobs alive until every target has them.
    _spool: SpoolDir,
}

pub async fn save(options: SaveOptions, cwd: &Path) -> Result<SaveReport, OpsError> {
    let (sources, skipped) = collect_paths(&options.paths, cwd);
    let mut report = SaveReport {
        entries: Vec::new(),
        skipped,
        bases: Vec::new(),
        cache_to: Vec::new(),
    };
    if sources.is_empty() {
        tracing::warn!("nothing to save: none of the paths exists; no cache was written");
        return Ok(report);
    }

    let mut target_reports: Vec<Option<TargetReport>> =
        options.cache_to.iter().map(|_| None).collect();
    // A target that cannot even be opened fails before anything is packed,
    // unless its spec tolerates failure: then it is skipped with a warning.
    let mut stores: Vec<Option<Box<dyn CacheStore>>> = Vec::new();
    for (i, spec) in options.cache_to.iter().enumerate() {
        match store::open_export(spec, &options.store) {
            Ok(store) => stores.push(Some(store)),
            Err(err) if spec.params.ignore_error => {
                let target = spec.target.location();
                tracing::warn!("export to {target} failed (ignore-error=true): {err}");
                target_reports[i] = Some(TargetReport::failed(&target, err.to_string(), true));
                stores.push(None);
            }
            Err(err) => return Err(err.into()),
        }
    }

    // Each layer is compressed once per distinct (compression, level) and
    // written to every target that asks for it.
    let mut groups: BTreeMap<(String, Option<u32>, &str), Vec<usize>> = BTreeMap::new();
    for (i, spec) in options.cache_to.iter().enumerate() {
        if stores[i].is_none() {
            continue;
        }
        // The mode too: mode=max keeps a chain of deltas, mode=min does not.
        let key = (
            spec.params.compression.name().to_string(),
            spec.params.compression_level,
            spec.params.mode.name(),
        );
        groups.entry(key).or_default().push(i);
    }

    // Spools of saves killed before they could remove them, wherever this
    // save would spool: nothing else ever would.
    let mut spool_parents: Vec<PathBuf> = stores
        .iter()
        .flatten()
        .filter_map(|store| store.spool_dir())
        .collect();
    spool_parents.sort();
    spool_parents.dedup();
    tokio::task::block_in_place(|| {
        for parent in &spool_parents {
            spool::sweep(parent, spool::LOCAL_PREFIX);
        }
        spool::sweep(&std::env::temp_dir(), spool::TEMP_PREFIX);
    });

    let created_at = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
    let mut mount_sources = options.mount_sources.clone();
    for members in groups.values() {
        let first = &options.cache_to[members[0]];
        let spool_parent = stores[members[0]].as_ref().and_then(|s| s.spool_dir());
        let Bases {
            caches: bases,
            sources: base_reports,
            target_holds,
            target_unreachable,
        } = load_bases(&options.cache_from, first, &options.store).await;
        if report.bases.is_empty() {
            report.bases = base_reports;
        }
        // A target that does not answer fails now, before the tree is
        // packed for nothing.
        if let Some(err) = target_unreachable {
            let i = members[0];
            let spec = &options.cache_to[i];
            let target = spec.target.location();
            let ignored = spec.params.ignore_error;
            if ignored {
                tracing::warn!("export to {target} failed (ignore-error=true): {err}");
            }
            let mut failed = TargetReport::failed(&target, err.to_string(), ignored);
            failed.hint = err.hint();
            target_reports[i] = Some(failed);
            stores[i] = None;
        }
        let live: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| stores[i].is_some())
            .collect();
        let Some(&lead) = live.first() else {
            continue;
        };
        // A registry base's layers are mounted into another repository of
        // the same registry rather than downloaded and sent again.
        for base in &bases {
            if let Some((registry, repository)) = base.store.registry_repository() {
                mount_sources.push(MountSource {
                    registry,
                    repository,
                    blobs: base.image.descriptors().map(|d| d.digest.clone()).collect(),
                });
            }
        }
        // The group's first target receives each layer as soon as it is
        // packed, so that its upload overlaps the packing of the rest.
        let early_store = stores[lead].as_deref();
        let mut early_placement = match early_store {
            Some(store) if lead == members[0] => {
                Some(Placement::with_known(store, target_holds, &mount_sources))
            }
            Some(store) => Some(Placement::for_target(store, &mount_sources).await),
            None => None,
        };
        let early = early_store.zip(early_placement.as_ref());
        let packed = pack_all(&sources, first, spool_parent, bases, early, &options).await?;
        if report.entries.is_empty() {
            report.entries = packed
                .entries
                .iter()
                .map(|(path, entry)| SavedEntry {
                    path: path.clone(),
                    layers: entry.layers.len(),
                    reused_layers: entry.reused_layers(),
                    delta_layers: entry.deltas,
                    plan: entry.plan,
                    counts: entry.counts,
                    stats: entry.stats.clone(),
                })
                .collect();
        }
        for &i in &live {
            let Some(store) = stores[i].as_deref() else {
                continue;
            };
            let spec = &options.cache_to[i];
            let started = Instant::now();
            let (placement, early) = match early_placement.take() {
                Some(placement) if i == lead => (placement, &packed.early),
                _ => (
                    Placement::for_target(store, &mount_sources).await,
                    &EarlyUploads::new(),
                ),
            };
            let outcome = export(
                &packed,
                spec,
                store,
                &created_at,
                options.progress.as_ref(),
                options.jobs,
                (&placement, early),
            )
            .await;
            // Once a registry target holds the layers, the next targets in
            // the same registry can mount them instead of receiving them.
            if outcome.is_ok()
                && let Some((registry, repository)) = store.registry_repository()
            {
                mount_sources.push(MountSource {
                    registry,
                    repository,
                    blobs: packed
                        .entries
                        .iter()
                        .flat_map(|(_, e)| e.layers.iter().map(|l| l.digest.clone()))
                        .collect(),
                });
            }
            target_reports[i] = Some(TargetReport::settle(spec, outcome, started));
        }
    }
    report.cache_to = target_reports.into_iter().flatten().collect();
    Ok(report)
}

impl TargetReport {
    /// The report of one export, whatever its outcome: a failure the spec
    /// tolerates (`ignore-error=true`) is a warning here and stays one.
    pub(crate) fn settle(
        spec: &CacheTo,
        outcome: Result<TargetReport, OpsError>,
        started: Instant,
    ) -> TargetReport {
        let mut report = match outcome {
            Ok(report) => report,
            Err(err) => {
                let target = spec.target.location();
                let ignored = spec.params.ignore_error;
                if ignored {
                    tracing::warn!("export to {target} failed (ignore-error=true): {err}");
                }
                let mut failed = TargetReport::failed(&target, err.to_string(), ignored);
                failed.hint = err.hint();
                failed
            }
        };
        report.seconds = started.elapsed().as_secs_f64();
        report
    }

    pub(crate) fn failed(target: &str, error: String, ignored: bool) -> TargetReport {
        TargetReport {
            target: target.to_string(),
            digest: None,
            uploaded_bytes: 0,
            uploaded_blobs: 0,
            reused_blobs: 0,
            seconds: 0.0,
            error: Some(error),
            hint: None,
            error_ignored: ignored,
        }
    }
}

/// The entries to save: each existing directory or regular file once, by
/// its stored name.
fn collect_paths(args: &[String], cwd: &Path) -> (Vec<(String, PathBuf)>, Vec<SkippedPath>) {
    let mut sources: Vec<(String, PathBuf)> = Vec::new();
    let mut skipped = Vec::new();
    for arg in args {
        let Some(name) = entry_path::entry_name(arg) else {
            continue;
        };
        if sources.iter().any(|(n, _)| n == &name) {
            continue;
        }
        let resolved = entry_path::resolve(&name, cwd);
        let reason = match std::fs::metadata(&resolved) {
            Ok(meta) if meta.is_dir() || meta.is_file() => None,
            Ok(_) => Some("neither a directory nor a regular file".to_string()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                Some("does not exist".to_string())
            }
            Err(err) => Some(err.to_string()),
        };
        match reason {
            None => sources.push((name, resolved)),
            Some(reason) => {
                tracing::warn!("skipping {arg}: {reason}");
                skipped.push(SkippedPath { path: name, reason });
            }
        }
    }
    (sources, skipped)
}

async fn pack_all(
    sources: &[(String, PathBuf)],
    spec: &CacheTo,
    spool_parent: Option<PathBuf>,
    bases: Vec<LoadedCache>,
    early_target: Option<(&dyn CacheStore, &Placement)>,
    options: &SaveOptions,
) -> Result<PackedSet, OpsError> {
    // Spooling beside the store makes storing a layer a rename; when that
    // directory cannot be made, that target's export will say so itself,
    // and the other targets must not pay for it: spool in the system's
    // temporary directory instead.
    let beside_store = spool_parent.and_then(|parent| {
        std::fs::create_dir_all(&parent)
            .and_then(|()| SpoolDir::new_in(&parent, spool::LOCAL_PREFIX))
            .map_err(|e| {
                tracing::debug!("cannot spool in {}: {e}", parent.display());
            })
            .ok()
    });
    let spool = match beside_store {
        Some(spool) => spool,
        None => SpoolDir::in_temp_dir()
            .map_err(|e| OpsError::Failed(format!("creating a spool directory: {e}")))?,
    };
    let pack_options = Arc::new(PackOptions {
        compression: spec.params.compression,
        level: spec.params.compression_level,
        part_size: options.part_size,
        jobs: options.jobs,
    });
    let mut entries = Vec::new();
    let mut kinds = Vec::new();
    let mut entry_base = Vec::new();
    let mut early = EarlyUploads::new();
    let target = spec.target.location();
    for (name, root) in sources {
        let root = root.clone();
        let kind = match std::fs::metadata(&root) {
            Ok(meta) if meta.is_file() => EntryKind::File,
            _ => EntryKind::Dir,
        };
        let spool_dir = spool.path().to_path_buf();
        let opts = Arc::clone(&pack_options);
        let base = find_base(&bases, name, kind, spec.params.compression, &spool_dir).await;
        entry_base.push(base.as_ref().map(|b| b.base));
        let started = Instant::now();
        let progress: Arc<dyn BlobProgress> = Arc::from(options.progress.work(&format!(
            "{name}: pack ({})",
            spec.params.compression.name()
        )));
        let (announce, announced) = tokio::sync::mpsc::unbounded_channel::<Announced>();
        let on_layer = {
            let (name, target, announce) = (name.clone(), target.clone(), announce.clone());
            move |file: &Path, layer: &PackedLayer| {
                // The receiver is gone only when there is no early target.
                let _ = announce.send(Announced::Packed(Box::new(PackedBlob {
                    label: layer_label(&name, &layer.digest, &target),
                    desc: Descriptor::new(String::new(), layer.digest.clone(), layer.size),
                    file: file.to_path_buf(),
                })));
            }
        };
        // A registry receives each part as it is packed, so the last part's
        // upload does not wait for its packing to end.
        let follow = early_target.is_some_and(|(store, _)| store.follows_growing_blobs());
        let on_blob_started = {
            let (name, target) = (name.clone(), target.clone());
            move |blob: Arc<GrowingBlob>| {
                let _ = announce.send(Announced::Started {
                    label: format!("{name}: part {} -> {target}", blob.part()),
                    blob,
                });
            }
        };
        // mode=max keeps the chain and adds what changed as one delta
        // layer, unless the chain is due for squashing: then, as in
        // mode=min, fresh full layers (unchanged parts still reused). A
        // file has no history worth a chain: a changed file is the delta.
        let keep_chain = spec.params.mode == Mode::Max && kind == EntryKind::Dir;
        let pack_progress = Arc::clone(&progress);
        let pack_name = name.clone();
        let pack = blocking(move || {
            let hooks = PackHooks {
                progress: &*pack_progress,
                on_layer: &on_layer,
                on_blob_started: follow.then_some(&on_blob_started as _),
                name: &pack_name,
            };
            let base = base.as_ref().map(|b| &b.entry);
            if kind == EntryKind::File {
                return pack_file_with_base(&root, &spool_dir, &opts, base, hooks);
            }
            if keep_chain
                && let Some(base) = base
                && let Some(packed) = pack_delta(&root, &spool_dir, &opts, base, hooks)?
            {
                return Ok(packed);
            }
            let mut packed = pack_dir_with_base(&root, &spool_dir, &opts, base, hooks)?;
            if keep_chain && base.is_some() {
                packed.plan = EntryPlan::Squash;
            }
            Ok(packed)
        });
        let uploads = async {
            match early_target {
                Some((store, placement)) => {
                    upload_early(
                        store,
                        placement,
                        announced,
                        options.progress.as_ref(),
                        options.jobs,
                    )
                    .await
                }
                None => EarlyUploads::new(),
            }
        };
        let (packed, uploaded) = tokio::join!(pack, uploads);
        early.extend(uploaded);
        let packed = match packed? {
            Ok(packed) => packed,
            Err(source) => {
                progress.finish("failed");
                return Err(OpsError::Pack {
                    path: name.clone(),
                    source: Box::new(source),
                });
            }
        };
        let compressed: u64 = packed.layers.iter().map(|l| l.size).sum();
        let reused = packed.reused_layers();
        // The bar counted the bytes read (none for an unchanged tree).
        let read = if packed.counts.read_bytes > 0 {
            "read; "
        } else {
            ""
        };
        progress.finish(&format!(
            "{read}{}: {} -> {} in {} layer{}, {reused} reused",
            packed.plan.name(),
            super::report::count(packed.stats.files, "file", "files"),
            human_bytes(compressed),
            packed.layers.len(),
            if packed.layers.len() == 1 { "" } else { "s" },
        ));
        let counts = &packed.counts;
        tracing::info!(
            "packed {name} ({}): {} files, {} bytes in {} layer(s), {reused} reused from the base; read {} files ({} bytes), reused {} files ({} bytes) unread; {:.2}s",
            packed.plan.name(),
            packed.stats.files,
            packed.stats.bytes,
            packed.layers.len(),
            counts.read_files,
            counts.read_bytes,
            counts.reused_files,
            counts.reused_bytes,
            started.elapsed().as_secs_f64()
        );
        entries.push((name.clone(), packed));
        kinds.push(kind);
    }
    Ok(PackedSet {
        entries,
        kinds,
        bases,
        entry_base,
        early,
        _spool: spool,
    })
}

/// Writes one cache image: layers, config and entries list first (up to
/// `jobs` at once), the manifest last and only once every blob is in
/// place, so a failed export never moves the tag.
async fn export(
    packed: &PackedSet,
    spec: &CacheTo,
    store: &dyn CacheStore,
    created_at: &str,
    progress: &dyn Progress,
    jobs: usize,
    (placement, early): (&Placement, &EarlyUploads),
) -> Result<TargetReport, OpsError> {
    let params = &spec.params;
    let target = spec.target.location();
    let build_entries: Vec<BuildEntry> = packed
        .entries
        .iter()
        .zip(&packed.kinds)
        .map(|((path, entry), kind)| BuildEntry {
            path: path.clone(),
            layers: entry
                .layers
                .iter()
                .map(|l| BuiltLayer {
                    digest: l.digest.clone(),
                    size: l.size,
                    diff_id: l.diff_id.clone(),
                    uncompressed_size: l.uncompressed_size,
                    toc_digest: l.toc_digest.clone(),
                })
                .collect(),
            files: entry.stats.files,
            dirs: entry.stats.dirs,
            symlinks: entry.stats.symlinks,
            hardlinks: entry.stats.hardlinks,
            bytes: entry.stats.bytes,
            filelist: Some(BuiltFileList {
                digest: entry.filelist.digest.clone(),
                size: entry.filelist.size,
                deltas: u32::try_from(entry.deltas).unwrap_or(u32::MAX),
            }),
            kind: *kind,
        })
        .collect();
    let built: BuiltImage = build_cache_image(
        &build_entries,
        &BuildParams {
            form: Form::for_params(params.oci_mediatypes, params.image_manifest),
            compression: params.compression,
            oci_mediatypes: params.oci_mediatypes,
            mode: params.mode.name().to_string(),
            created_at: created_at.to_string(),
        },
    )?;

    let mut report = TargetReport {
        target: target.clone(),
        digest: Some(built.manifest.digest.clone()),
        uploaded_bytes: 0,
        uploaded_blobs: 0,
        reused_blobs: 0,
        seconds: 0.0,
        error: None,
        hint: None,
        error_ignored: false,
    };
    // Layers reused from a base that this target does not hold yet are
    // copied from the base (verified on the way), unless mounted.
    let remote = if packed.entries.iter().any(|(_, e)| e.reused_layers() > 0) {
        Some(Spool::new()?)
    } else {
        None
    };
    // Two entries with identical content share a layer: send it once.
    let mut seen: HashSet<&Digest> = HashSet::new();
    let mut uploads = Vec::new();
    for (i, (name, entry)) in packed.entries.iter().enumerate() {
        let base = packed
            .entry_base
            .get(i)
            .copied()
            .flatten()
            .and_then(|b| packed.bases.get(b));
        for layer in &entry.layers {
            if !seen.insert(&layer.digest) {
                continue;
            }
            let content = match (layer.reused, base, &remote) {
                (false, _, _) => Content::File(&layer.blob),
                (true, Some(base), Some(spool)) => Content::Remote {
                    from: base.store.as_ref(),
                    spool,
                },
                _ => {
                    return Err(OpsError::Failed(format!(
                        "{name}: layer {} was reused from a base that is gone",
                        layer.digest
                    )));
                }
            };
            uploads.push(Upload {
                label: layer_label(name, &layer.digest, &target),
                desc: Descriptor::new(String::new(), layer.digest.clone(), layer.size),
                content,
            });
        }
        if seen.insert(&entry.filelist.digest) {
            uploads.push(Upload {
                label: format!(
                    "{name}: state list {} -> {target}",
                    entry.filelist.digest.short()
                ),
                desc: Descriptor::new(
                    REGCACHE_FILELIST,
                    entry.filelist.digest.clone(),
                    entry.filelist.size,
                ),
                content: Content::File(&entry.filelist.blob),
            });
        }
    }
    for (what, desc, bytes) in [
        ("cache config", &built.config, &built.config_bytes),
        ("entries list", &built.entries, &built.entries_bytes),
    ] {
        uploads.push(Upload {
            label: format!("{what} {} -> {target}", desc.digest.short()),
            desc: desc.clone(),
            content: Content::Bytes(bytes),
        });
    }
    place_all(
        store,
        uploads,
        &built.manifest,
        placement,
        early,
        progress,
        jobs,
        &mut report,
    )
    .await?;
    Ok(report)
}

/// How progress names a layer going to a target, early or not.
fn layer_label(entry: &str, digest: &Digest, target: &str) -> String {
    format!("{entry}: layer {} -> {target}", digest.short())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;

    use super::*;
    use crate::image::RawManifest;
    use crate::progress::{BlobProgress, NoProgress};
    use crate::spec::{ExportDefaults, parse_cache_to};
    use crate::store::{BlobReader, StoreError};

    /// A store that takes a while per blob and records what it saw.
    #[derive(Default)]
    struct SlowStore {
        /// Large blobs being stored, and the most at once.
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
        /// The same for small ones.
        small_in_flight: AtomicUsize,
        max_small_in_flight: AtomicUsize,
        /// Blobs asked about before being sent.
        asked: AtomicUsize,
        blobs: AtomicUsize,
        fail_blob: Option<usize>,
        /// How many blobs were stored when the manifest came.
        manifest_after: Mutex<Option<usize>>,
        /// Follows growing blobs, as a registry does.
        follows: bool,
        /// Growing blobs followed to their end: (part, digest).
        followed: Mutex<Vec<(usize, Digest)>>,
    }

    /// Above this, a blob counts as large (as `transfer` sorts them).
    const LARGE: u64 = 64 * 1024;

    impl SlowStore {
        async fn slow_put(&self, size: u64) -> Result<(), StoreError> {
            let (in_flight, max) = if size > LARGE {
                (&self.in_flight, &self.max_in_flight)
            } else {
                (&self.small_in_flight, &self.max_small_in_flight)
            };
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            let n = self.blobs.fetch_add(1, Ordering::SeqCst);
            if Some(n) == self.fail_blob {
                return Err(StoreError::Invalid("injected failure".into()));
            }
            Ok(())
        }
    }

    #[async_trait]
    impl CacheStore for SlowStore {
        fn describe(&self) -> String {
            "slow".into()
        }
        async fn fetch_manifest(&self) -> Result<Option<RawManifest>, StoreError> {
            Ok(None)
        }
        async fn open_blob(&self, _desc: &Descriptor) -> Result<BlobReader, StoreError> {
            Err(StoreError::Invalid("not readable".into()))
        }
        async fn has_blob(&self, _desc: &Descriptor) -> Result<bool, StoreError> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            Ok(false)
        }
        async fn put_blob_file(
            &self,
            desc: &Descriptor,
            _file: &Path,
            _progress: &dyn BlobProgress,
        ) -> Result<(), StoreError> {
            self.slow_put(desc.size).await
        }
        async fn put_blob_bytes(&self, desc: &Descriptor, _bytes: &[u8]) -> Result<(), StoreError> {
            self.slow_put(desc.size).await
        }
        async fn put_manifest(&self, _manifest: &RawManifest) -> Result<(), StoreError> {
            *self.manifest_after.lock().unwrap() = Some(self.blobs.load(Ordering::SeqCst));
            Ok(())
        }
        fn follows_growing_blobs(&self) -> bool {
            self.follows
        }
        async fn put_growing_blob(
            &self,
            blob: &Arc<GrowingBlob>,
            _progress: &dyn BlobProgress,
        ) -> Result<Option<(Digest, u64)>, StoreError> {
            use crate::layer::growing::Ending;
            loop {
                match blob.growth().ending {
                    Some(Ending::Done { digest, size }) => {
                        self.followed
                            .lock()
                            .unwrap()
                            .push((blob.part(), digest.clone()));
                        return Ok(Some((digest, size)));
                    }
                    Some(Ending::Abandoned) => return Ok(None),
                    None => blob.changed().await,
                }
            }
        }
    }

    /// Packs a tree of eight 80 KiB files of noise (zstd cannot shrink
    /// them) into about eight large layers.
    async fn packed(dir: &Path) -> (PackedSet, CacheTo, SaveOptions) {
        let tree = dir.join("tree");
        std::fs::create_dir_all(&tree).unwrap();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..8u8 {
            let noise: Vec<u8> = (0..80 * 1024)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            std::fs::write(tree.join(format!("f{i}")), noise).unwrap();
        }
        let spec = parse_cache_to("type=local,dest=unused", ExportDefaults::Regcache)
            .unwrap()
            .remove(0);
        let options = SaveOptions {
            cache_to: vec![spec.clone()],
            cache_from: Vec::new(),
            paths: vec!["tree".into()],
            jobs: 3,
            part_size: 80 * 1024,
            store: StoreOptions::default(),
            progress: Arc::new(NoProgress),
            mount_sources: Vec::new(),
        };
        let sources = vec![("tree".to_string(), tree)];
        let set = pack_all(&sources, &spec, None, Vec::new(), None, &options)
            .await
            .unwrap();
        assert!(set.entries[0].1.layers.len() >= 4, "too few layers to test");
        (set, spec, options)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn uploads_run_concurrently_up_to_jobs_and_the_manifest_comes_last() {
        let dir = tempfile::tempdir().unwrap();
        let (set, spec, options) = packed(dir.path()).await;
        let store = SlowStore::default();
        let placement = Placement::for_target(&store, &[]).await;
        let early = EarlyUploads::new();
        let report = export(
            &set,
            &spec,
            &store,
            "t",
            &NoProgress,
            options.jobs,
            (&placement, &early),
        )
        .await
        .unwrap();
        // The layers, the state list, the config and the entries list.
        let blobs = set.entries[0].1.layers.len() + 3;
        assert_eq!(report.uploaded_blobs, blobs);
        assert_eq!(store.max_in_flight.load(Ordering::SeqCst), options.jobs);
        // The small ones (state list, config, entries list) go at once,
        // without asking first whether the target has them.
        assert_eq!(store.max_small_in_flight.load(Ordering::SeqCst), 3);
        assert_eq!(store.asked.load(Ordering::SeqCst), blobs - 3);
        assert_eq!(*store.manifest_after.lock().unwrap(), Some(blobs));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_upload_means_no_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let (set, spec, options) = packed(dir.path()).await;
        let store = SlowStore {
            fail_blob: Some(1),
            ..SlowStore::default()
        };
        let placement = Placement::for_target(&store, &[]).await;
        let early = EarlyUploads::new();
        let result = export(
            &set,
            &spec,
            &store,
            "t",
            &NoProgress,
            options.jobs,
            (&placement, &early),
        )
        .await;
        assert!(result.is_err());
        assert_eq!(*store.manifest_after.lock().unwrap(), None);
    }

    /// Packs `dir/tree` with `early` as the group's first target.
    async fn pack_early(
        dir: &Path,
        spec: &CacheTo,
        options: &SaveOptions,
        early: (&dyn CacheStore, &Placement),
    ) -> PackedSet {
        let sources = vec![("tree".to_string(), dir.join("tree"))];
        pack_all(&sources, spec, None, Vec::new(), Some(early), options)
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_that_follows_growing_blobs_gets_each_part_once_as_it_is_packed() {
        let dir = tempfile::tempdir().unwrap();
        let (_, spec, options) = packed(dir.path()).await;
        let store = SlowStore {
            follows: true,
            ..SlowStore::default()
        };
        let placement = Placement::for_target(&store, &[]).await;
        let set = pack_early(dir.path(), &spec, &options, (&store, &placement)).await;
        let layers = &set.entries[0].1.layers;
        // Every part followed, none also sent as a finished file.
        let mut followed = store.followed.lock().unwrap().clone();
        followed.sort();
        let expected: Vec<(usize, Digest)> = layers
            .iter()
            .enumerate()
            .map(|(part, layer)| (part, layer.digest.clone()))
            .collect();
        assert_eq!(followed, expected);
        assert_eq!(store.blobs.load(Ordering::SeqCst), 0);
        let report = export(
            &set,
            &spec,
            &store,
            "t",
            &NoProgress,
            options.jobs,
            (&placement, &set.early),
        )
        .await
        .unwrap();
        // The export sends only the state list, config and entries list.
        assert_eq!(store.blobs.load(Ordering::SeqCst), 3);
        assert_eq!(report.uploaded_blobs, layers.len() + 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_first_target_gets_every_packed_layer_during_the_pack() {
        let dir = tempfile::tempdir().unwrap();
        let (_, spec, options) = packed(dir.path()).await;
        let store = SlowStore::default();
        let placement = Placement::for_target(&store, &[]).await;
        let set = pack_early(dir.path(), &spec, &options, (&store, &placement)).await;
        let layers = &set.entries[0].1.layers;
        // Every layer is in place before the export starts...
        assert_eq!(store.blobs.load(Ordering::SeqCst), layers.len());
        for layer in layers {
            assert!(set.early.contains_key(&layer.digest), "{}", layer.digest);
        }
        let report = export(
            &set,
            &spec,
            &store,
            "t",
            &NoProgress,
            options.jobs,
            (&placement, &set.early),
        )
        .await
        .unwrap();
        // ...so the export sends only the state list, config and entries
        // list, yet reports every blob this save sent.
        assert_eq!(store.blobs.load(Ordering::SeqCst), layers.len() + 3);
        assert_eq!(report.uploaded_blobs, layers.len() + 3);
        assert_eq!(report.reused_blobs, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_announced_layer_is_uploaded_before_the_packer_hangs_up() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("blob");
        std::fs::write(&file, b"layer").unwrap();
        let store = SlowStore::default();
        let placement = Placement::for_target(&store, &[]).await;
        let (announce, announced) = tokio::sync::mpsc::unbounded_channel();
        let digest = Digest::of(b"layer");
        announce
            .send(Announced::Packed(Box::new(PackedBlob {
                label: "layer".into(),
                desc: Descriptor::new(String::new(), digest.clone(), 5),
                file,
            })))
            .unwrap();
        let uploader = upload_early(&store, &placement, announced, &NoProgress, 2);
        let watcher = async {
            // The sender is still open: the upload must not wait for it.
            while store.blobs.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            drop(announce);
        };
        let (early, ()) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(uploader, watcher)
        })
        .await
        .expect("the upload waited for the packer to finish");
        assert_eq!(
            early.get(&digest),
            Some(&crate::ops::transfer::Uploaded::Written(5))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_early_upload_is_sent_again_at_export() {
        let dir = tempfile::tempdir().unwrap();
        let (_, spec, options) = packed(dir.path()).await;
        let store = SlowStore {
            fail_blob: Some(0),
            ..SlowStore::default()
        };
        let placement = Placement::for_target(&store, &[]).await;
        let set = pack_early(dir.path(), &spec, &options, (&store, &placement)).await;
        let layers = set.entries[0].1.layers.len();
        assert_eq!(set.early.len(), layers - 1);
        let report = export(
            &set,
            &spec,
            &store,
            "t",
            &NoProgress,
            options.jobs,
            (&placement, &set.early),
        )
        .await
        .unwrap();
        assert_eq!(report.uploaded_blobs, layers + 3);
        assert_eq!(*store.manifest_after.lock().unwrap(), Some(layers + 4));
    }
}
