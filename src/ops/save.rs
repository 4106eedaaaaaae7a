//! `regcache save`: pack each PATH into layers once per distinct
//! compression, then write a cache image to every `--cache-to`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde::Serialize;

use super::{OpsError, blocking, entry_path};
use crate::compression::Compression;
use crate::digest::Digest;
use crate::image::build::{BuildEntry, BuildParams, BuiltImage, BuiltLayer, build_cache_image};
use crate::image::{Descriptor, Form};
use crate::layer::{EntryStats, PackOptions, PackedEntry, pack_dir};
use crate::spec::CacheTo;
use crate::store::{self, CacheStore, StoreOptions};

pub struct SaveOptions {
    pub cache_to: Vec<CacheTo>,
    pub paths: Vec<String>,
    pub jobs: usize,
    pub part_size: u64,
    pub store: StoreOptions,
}

#[derive(Debug, Serialize)]
pub struct SaveReport {
    pub entries: Vec<SavedEntry>,
    pub skipped: Vec<SkippedPath>,
    pub cache_to: Vec<TargetReport>,
}

#[derive(Debug, Serialize)]
pub struct SavedEntry {
    pub path: String,
    pub layers: usize,
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
    /// Set when the export failed and the spec said `ignore-error=true`.
    pub ignored_error: Option<String>,
}

/// The layers of every entry packed with one (compression, level).
struct PackedSet {
    entries: Vec<(String, PackedEntry)>,
    /// Keeps the spooled blobs alive until every target has them.
    _spool: tempfile::TempDir,
}

pub async fn save(options: SaveOptions, cwd: &Path) -> Result<SaveReport, OpsError> {
    refuse_unsupported(&options.cache_to)?;
    let (sources, skipped) = collect_paths(&options.paths, cwd);
    let mut report = SaveReport {
        entries: Vec::new(),
        skipped,
        cache_to: Vec::new(),
    };
    if sources.is_empty() {
        tracing::warn!("nothing to save: none of the paths exists; no cache was written");
        return Ok(report);
    }

    let stores = options
        .cache_to
        .iter()
        .map(|spec| store::open_export(spec, &options.store))
        .collect::<Result<Vec<_>, _>>()?;

    // Each layer is compressed once per distinct (compression, level) and
    // written to every target that asks for it.
    let mut groups: BTreeMap<(String, Option<u32>), Vec<usize>> = BTreeMap::new();
    for (i, spec) in options.cache_to.iter().enumerate() {
        let key = (
            spec.params.compression.name().to_string(),
            spec.params.compression_level,
        );
        groups.entry(key).or_default().push(i);
    }

    let created_at = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
    let mut failures = Vec::new();
    let mut target_reports: Vec<Option<TargetReport>> =
        options.cache_to.iter().map(|_| None).collect();
    for members in groups.values() {
        let first = &options.cache_to[members[0]];
        let spool_parent = stores[members[0]].spool_dir();
        let packed = pack_all(&sources, first, spool_parent, &options).await?;
        if report.entries.is_empty() {
            report.entries = packed
                .entries
                .iter()
                .map(|(path, entry)| SavedEntry {
                    path: path.clone(),
                    layers: entry.layers.len(),
                    stats: entry.stats.clone(),
                })
                .collect();
        }
        for &i in members {
            let spec = &options.cache_to[i];
            let started = Instant::now();
            let outcome = export(&packed, spec, stores[i].as_ref(), &created_at).await;
            let target = spec.target.location();
            let mut target_report = match outcome {
                Ok(r) => r,
                Err(err) if spec.params.ignore_error => {
                    tracing::warn!("export to {target} failed (ignore-error=true): {err}");
                    TargetReport::failed(&target, err.to_string())
                }
                Err(err) => {
                    failures.push(format!("{target}: {err}"));
                    TargetReport::failed(&target, err.to_string())
                }
            };
            target_report.seconds = started.elapsed().as_secs_f64();
            target_reports[i] = Some(target_report);
        }
    }
    report.cache_to = target_reports.into_iter().flatten().collect();
    if !failures.is_empty() {
        return Err(OpsError::Export {
            target: if failures.len() == 1 {
                "1 target".into()
            } else {
                format!("{} targets", failures.len())
            },
            message: failures.join("; "),
        });
    }
    Ok(report)
}

impl TargetReport {
    fn failed(target: &str, error: String) -> TargetReport {
        TargetReport {
            target: target.to_string(),
            digest: None,
            uploaded_bytes: 0,
            uploaded_blobs: 0,
            reused_blobs: 0,
            seconds: 0.0,
            ignored_error: Some(error),
        }
    }
}

/// Refuses, before any I/O, what parses but this build cannot write.
fn refuse_unsupported(cache_to: &[CacheTo]) -> Result<(), OpsError> {
    if let Some(spec) = cache_to
        .iter()
        .find(|s| s.params.compression == Compression::Estargz)
    {
        return Err(OpsError::Usage {
            message: format!("--cache-to {spec}: compression=estargz is not supported by save yet"),
            hint: Some(
                "use compression=gzip (what estargz readers fall back to) or compression=zstd"
                    .into(),
            ),
        });
    }
    Ok(())
}

/// The entries to save: each existing directory once, by its stored name.
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
            Ok(meta) if meta.is_dir() => None,
            Ok(_) => Some("not a directory".to_string()),
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
    options: &SaveOptions,
) -> Result<PackedSet, OpsError> {
    // Spooling beside the store makes storing a layer a rename; when that
    // directory cannot be made, that target's export will say so itself,
    // and the other targets must not pay for it: spool in the system's
    // temporary directory instead.
    let beside_store = spool_parent.and_then(|parent| {
        std::fs::create_dir_all(&parent)
            .and_then(|()| {
                tempfile::Builder::new()
                    .prefix(".regcache-spool-")
                    .tempdir_in(&parent)
            })
            .map_err(|e| {
                tracing::debug!("cannot spool in {}: {e}", parent.display());
            })
            .ok()
    });
    let spool = match beside_store {
        Some(spool) => spool,
        None => tempfile::Builder::new()
            .prefix("regcache-spool-")
            .tempdir()
            .map_err(|e| OpsError::Failed(format!("creating a spool directory: {e}")))?,
    };
    let pack_options = Arc::new(PackOptions {
        compression: spec.params.compression,
        level: spec.params.compression_level,
        part_size: options.part_size,
        jobs: options.jobs,
    });
    let mut entries = Vec::new();
    for (name, root) in sources {
        let root = root.clone();
        let spool_dir = spool.path().to_path_buf();
        let opts = Arc::clone(&pack_options);
        let started = Instant::now();
        let packed = blocking(move || pack_dir(&root, &spool_dir, &opts))
            .await?
            .map_err(|source| OpsError::Pack {
                path: name.clone(),
                source: Box::new(source),
            })?;
        tracing::info!(
            "packed {name}: {} files, {} bytes in {} layer(s), {:.2}s",
            packed.stats.files,
            packed.stats.bytes,
            packed.layers.len(),
            started.elapsed().as_secs_f64()
        );
        entries.push((name.clone(), packed));
    }
    Ok(PackedSet {
        entries,
        _spool: spool,
    })
}

/// Writes one cache image: layers, config and entries list first, the
/// manifest last, so a failed export never moves the tag.
async fn export(
    packed: &PackedSet,
    spec: &CacheTo,
    store: &dyn CacheStore,
    created_at: &str,
) -> Result<TargetReport, OpsError> {
    let params = &spec.params;
    let build_entries: Vec<BuildEntry> = packed
        .entries
        .iter()
        .map(|(path, entry)| BuildEntry {
            path: path.clone(),
            layers: entry
                .layers
                .iter()
                .map(|l| BuiltLayer {
                    digest: l.digest.clone(),
                    size: l.size,
                    diff_id: l.diff_id.clone(),
                    uncompressed_size: l.uncompressed_size,
                })
                .collect(),
            files: entry.stats.files,
            dirs: entry.stats.dirs,
            symlinks: entry.stats.symlinks,
            hardlinks: entry.stats.hardlinks,
            bytes: entry.stats.bytes,
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
        target: spec.target.location(),
        digest: Some(built.manifest.digest.clone()),
        uploaded_bytes: 0,
        uploaded_blobs: 0,
        reused_blobs: 0,
        seconds: 0.0,
        ignored_error: None,
    };
    let mut written: Vec<&Digest> = Vec::new();
    for (_, entry) in &packed.entries {
        for layer in &entry.layers {
            if written.contains(&&layer.digest) {
                continue;
            }
            written.push(&layer.digest);
            let desc = Descriptor::new(String::new(), layer.digest.clone(), layer.size);
            if store.has_blob(&desc).await? {
                report.reused_blobs += 1;
                continue;
            }
            store
                .put_blob_file(&desc, &layer.blob, &crate::progress::NoProgress)
                .await?;
            report.uploaded_blobs += 1;
            report.uploaded_bytes += layer.size;
        }
    }
    for (desc, bytes) in [
        (&built.config, &built.config_bytes),
        (&built.entries, &built.entries_bytes),
    ] {
        if store.has_blob(desc).await? {
            report.reused_blobs += 1;
        } else {
            store.put_blob_bytes(desc, bytes).await?;
            report.uploaded_blobs += 1;
            report.uploaded_bytes += desc.size;
        }
    }
    store.put_manifest(&built.manifest).await?;
    report.uploaded_bytes += built.manifest.bytes.len() as u64;
    tracing::info!(
        "{}: wrote cache {} ({} blob(s) written, {} reused)",
        store.describe(),
        built.manifest.digest,
        report.uploaded_blobs,
        report.reused_blobs
    );
    Ok(report)
}
