//! Packs a directory into one or more deterministic layer blobs.
//!
//! The walker (on the calling thread) cuts the tree into parts; `jobs`
//! workers each tar and compress one part at a time into its own spool file.
//! Parts are cut by tree content only, so the layers, and their digests, are
//! the same whatever `jobs` is.

use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use crate::compression::Compression;
use crate::digest::{Digest, Hasher, HashingWriter};
use crate::progress::{BlobProgress, NoProgress, human_bytes};

use super::codec::{IO_BUFFER, compress_writer_with_workers};
use super::estargz::{EntryMeta, EntryType, EstargzWriter};
use super::filelist::{FileListReader, FileListWriter, FileRecord};
use super::growing::{CountingFile, GrowingBlob};
use super::plan::{EntryPlan, plan_parts};
use super::reuse::{BaseEntry, BaseMatcher};
use super::single::{SingleFile, single_file, walk_single};
use super::tar_write::{END_OF_ARCHIVE, EntryHeader, EntryKind, HeaderEncoder, padding};
use super::walk::{Item, ItemKind, Part, item_path, walk};

pub use super::stats::EntryStats;

/// Target (average) uncompressed bytes per layer; parts fall between half
/// and twice this (see `walk::Cutter`). Large enough that per-layer
/// overhead (a descriptor, a request) is negligible and zstd/gzip run at
/// full speed, small enough that a 500 MB tree gives every core a part and
/// a changed file costs at most one part's packing and upload.
pub const DEFAULT_PART_SIZE: u64 = 32 << 20;

#[derive(Clone, Debug)]
pub struct PackOptions {
    pub compression: Compression,
    /// `None`: the codec's default (gzip 6, zstd 3).
    pub level: Option<u32>,
    /// Target uncompressed bytes per layer.
    pub part_size: u64,
    /// Parts compressed in parallel.
    pub jobs: usize,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            compression: Compression::Gzip,
            level: None,
            part_size: DEFAULT_PART_SIZE,
            jobs: default_jobs(),
        }
    }
}

/// The number of cores this process may use.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// One layer blob written to the spool directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedLayer {
    /// The compressed blob; the caller owns (and eventually removes) it.
    pub blob: PathBuf,
    pub digest: Digest,
    pub size: u64,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    pub uncompressed_size: u64,
    /// eStargz layers only: the digest of the TOC JSON, for the layer's
    /// `containerd.io/snapshot/stargz/toc.digest` annotation.
    pub toc_digest: Option<Digest>,
    /// A layer of the base cache whose part is unchanged: nothing was read
    /// or written, and `blob` is empty (the base's store has the bytes).
    pub reused: bool,
}

/// The entry's state list, spooled (see `filelist`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileListBlob {
    pub blob: PathBuf,
    pub digest: Digest,
    pub size: u64,
}

#[derive(Clone, Debug)]
pub struct PackedEntry {
    /// Base first: a restore applies them in this order.
    pub layers: Vec<PackedLayer>,
    pub stats: EntryStats,
    pub filelist: FileListBlob,
    /// `mode=max`: how many of the top layers are deltas on the full
    /// layers below them (0 for a full save).
    pub deltas: usize,
    /// What the save decided for this entry.
    pub plan: EntryPlan,
    pub counts: SaveCounts,
}

/// Regular files (and their bytes) this save read and packed, and those it
/// took from the base's layers without reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SaveCounts {
    pub read_files: u64,
    pub read_bytes: u64,
    pub reused_files: u64,
    pub reused_bytes: u64,
}

impl SaveCounts {
    pub(crate) fn add(&mut self, item: &Item, reused: bool) {
        let ItemKind::File { size } = item.kind else {
            return;
        };
        if reused {
            self.reused_files += 1;
            self.reused_bytes += size;
        } else {
            self.read_files += 1;
            self.read_bytes += size;
        }
    }
}

impl PackedEntry {
    /// Layers taken from the base cache as they were.
    pub fn reused_layers(&self) -> usize {
        self.layers.iter().filter(|l| l.reused).count()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{path}: not a directory")]
    NotADirectory { path: PathBuf },
    #[error("{path}: not a regular file")]
    NotAFile { path: PathBuf },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path}: file changed while it was being saved: it had {expected} bytes, {found}; a tar header must not lie about its size, so the save is stopped"
    )]
    SizeChanged {
        path: PathBuf,
        expected: u64,
        found: String,
    },
    #[error("writing layer to spool file {path}: {source}")]
    Spool {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{compression} compression: {source}")]
    Codec {
        compression: Compression,
        #[source]
        source: io::Error,
    },
    /// Internal: a worker stopped because another part failed first. Never
    /// returned by `pack_dir`, which reports that first failure instead.
    #[error("packing stopped after an earlier error")]
    Cancelled,
    #[error("a packing thread panicked")]
    WorkerPanicked,
    #[error("writing the state list {path}: {source}")]
    FileList {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What the caller of a pack hears while it runs.
#[derive(Clone, Copy)]
pub struct PackHooks<'a> {
    /// File content to read: its total grows as the walk hands parts to
    /// the workers (parts reused from the base are never read, so they
    /// never count), and it advances as the workers read.
    pub progress: &'a dyn BlobProgress,
    /// Each freshly packed layer, in any order, as soon as its blob is
    /// complete, so it can be uploaded while later parts still compress.
    /// The blob stays at that path until the pack returns and after.
    pub on_layer: &'a (dyn Fn(&Path, &PackedLayer) + Sync),
    /// Each part's blob as a worker starts writing it, for an upload that
    /// follows the file as it grows (`None`: nobody follows; `on_layer`
    /// still announces the finished blob).
    pub on_blob_started: Option<&'a (dyn Fn(Arc<GrowingBlob>) + Sync)>,
    /// How messages name the entry (its path as the user gave it).
    pub name: &'a str,
}

fn ignore_layer(_: &Path, _: &PackedLayer) {}

impl PackHooks<'static> {
    /// Nobody listens.
    pub const NONE: PackHooks<'static> = PackHooks {
        progress: &NoProgress,
        on_layer: &ignore_layer,
        on_blob_started: None,
        name: "",
    };
}

/// Packs the tree under `root` (a directory, or a symlink to one) into
/// layer blobs in `spool`. On error no blob is left behind.
pub fn pack_dir(root: &Path, spool: &Path, opts: &PackOptions) -> Result<PackedEntry, PackError> {
    pack_dir_with_base(root, spool, opts, None, PackHooks::NONE)
}

/// A part's outcome: packed by a worker (its blob file) or reused from the
/// base (no file), with the state list records of its items.
pub(crate) struct Finished {
    pub(crate) file: Option<tempfile::TempPath>,
    pub(crate) layer: PackedLayer,
    pub(crate) records: Vec<FileRecord>,
}

/// Like [`pack_dir`], and every part equal to a part of `base` (same
/// items, same metadata) is taken from it instead of read and packed.
pub fn pack_dir_with_base(
    root: &Path,
    spool: &Path,
    opts: &PackOptions,
    base: Option<&BaseEntry>,
    hooks: PackHooks<'_>,
) -> Result<PackedEntry, PackError> {
    let meta = std::fs::metadata(root).map_err(|source| PackError::Read {
        path: root.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(PackError::NotADirectory {
            path: root.to_path_buf(),
        });
    }
    pack_parts(
        root,
        |emit| walk(root, opts.part_size, emit),
        spool,
        opts,
        base,
        hooks,
    )
}

/// Like [`pack_dir_with_base`] for an entry of one regular file (see
/// [`super::single`]).
pub fn pack_file_with_base(
    file: &Path,
    spool: &Path,
    opts: &PackOptions,
    base: Option<&BaseEntry>,
    hooks: PackHooks<'_>,
) -> Result<PackedEntry, PackError> {
    let SingleFile { dir, item } = single_file(file)?;
    pack_parts(
        &dir,
        |emit| walk_single(item, emit),
        spool,
        opts,
        base,
        hooks,
    )
}

/// Packs the parts `walk` emits, each item read below `root`.
fn pack_parts(
    root: &Path,
    walk: impl FnOnce(&mut dyn FnMut(Part) -> bool) -> Result<EntryStats, PackError>,
    spool: &Path,
    opts: &PackOptions,
    base: Option<&BaseEntry>,
    hooks: PackHooks<'_>,
) -> Result<PackedEntry, PackError> {
    let jobs = opts.jobs.max(1);
    let cancel = AtomicBool::new(false);
    // Parts handed to the workers and not yet taken, and parts being
    // packed: a part packed alone at the end of the walk may use every
    // core (see `zstd_workers`).
    let queued = AtomicUsize::new(0);
    let active = AtomicUsize::new(0);
    let walk_done = AtomicBool::new(false);
    let (part_tx, part_rx) = mpsc::sync_channel::<Part>(jobs);
    let part_rx = Mutex::new(part_rx);
    let (done_tx, done_rx) = mpsc::channel::<(usize, Result<Finished, PackError>)>();
    let mut matcher = base.map(BaseMatcher::open);
    let had_base = matcher.as_ref().is_some_and(BaseMatcher::usable);
    let list_file = spool_file(spool)?;

    let (walked, panicked, collected) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                let done_tx = done_tx.clone();
                let (part_rx, cancel) = (&part_rx, &cancel);
                let (queued, active, walk_done) = (&queued, &active, &walk_done);
                scope.spawn(move || {
                    let mut worker = Worker::new(root, spool, opts, hooks.progress)
                        .followed_by(hooks.on_blob_started)
                        .named(hooks.name);
                    loop {
                        // A poisoned lock means another worker panicked; stop.
                        let next = match part_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => break,
                        };
                        let Ok(part) = next else { break };
                        queued.fetch_sub(1, Ordering::SeqCst);
                        let others = active.fetch_add(1, Ordering::SeqCst);
                        let alone = (part.last || walk_done.load(Ordering::SeqCst))
                            && others == 0
                            && queued.load(Ordering::SeqCst) == 0;
                        let index = part.index;
                        let result = worker.pack(part, cancel, if alone { jobs } else { 1 });
                        active.fetch_sub(1, Ordering::SeqCst);
                        if result.is_err() {
                            cancel.store(true, Ordering::Relaxed);
                        }
                        if done_tx.send((index, result)).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        // The list is written in tar order as parts finish, so only the
        // parts finished out of order are held.
        let reused_tx = done_tx.clone();
        drop(done_tx);
        let cancel_ref = &cancel;
        let collector =
            scope.spawn(move || collect(done_rx, list_file, base, cancel_ref, hooks.on_layer));
        let walked = walk(&mut |part| {
            if cancel.load(Ordering::Relaxed) {
                return false;
            }
            if let Some(reused) = matcher.as_mut().and_then(|m| m.find(&part.items)) {
                tracing::info!(
                    "{}: part {}: unchanged, the base's layer {} ({} paths, {})",
                    if hooks.name.is_empty() {
                        root.to_string_lossy()
                    } else {
                        hooks.name.into()
                    },
                    part.index,
                    reused.layer.digest.short(),
                    part.items.len(),
                    human_bytes(reused.layer.size)
                );
                let records = reused
                    .records
                    .into_iter()
                    .map(|r| FileRecord {
                        layer: part.index as u32,
                        ..r
                    })
                    .collect();
                let finished = Finished {
                    file: None,
                    layer: reused.layer,
                    records,
                };
                return reused_tx.send((part.index, Ok(finished))).is_ok();
            }
            hooks.progress.grow(part.content_bytes());
            queued.fetch_add(1, Ordering::SeqCst);
            part_tx.send(part).is_ok()
        });
        walk_done.store(true, Ordering::SeqCst);
        if walked.is_err() {
            cancel.store(true, Ordering::Relaxed);
        }
        drop(part_tx);
        drop(reused_tx);
        let panicked = workers.into_iter().map(|w| w.join()).any(|r| r.is_err());
        let collected = collector.join();
        (walked, panicked, collected)
    });

    let stats = walked?;
    let Ok(collected) = collected else {
        return Err(PackError::WorkerPanicked);
    };
    if panicked {
        return Err(PackError::WorkerPanicked);
    }
    let (finished, filelist, counts) = collected?;
    if cancel.load(Ordering::Relaxed) {
        return Err(PackError::Cancelled);
    }
    let reused = finished.iter().filter(|(file, _)| file.is_none()).count();
    let plan = plan_parts(had_base, finished.len(), reused);
    let mut layers = Vec::with_capacity(finished.len());
    for (file, layer) in finished {
        let blob = match file {
            Some(file) => file.keep().map_err(|e| PackError::Spool {
                path: e.path.to_path_buf(),
                source: e.error,
            })?,
            None => PathBuf::new(),
        };
        layers.push(PackedLayer { blob, ..layer });
    }
    Ok(PackedEntry {
        layers,
        stats,
        filelist,
        deltas: 0,
        plan,
        counts,
    })
}

/// A new file in the spool, with the mode blobs of a local cache get.
pub(crate) fn spool_file(spool: &Path) -> Result<tempfile::NamedTempFile, PackError> {
    // Spool files become blobs of a local cache by a hard link, so they get
    // the mode any other file of it gets (0666 less the umask), not
    // tempfile's 0600 that would hide them from a web server or another
    // user serving the cache.
    tempfile::Builder::new()
        .prefix(".regcache-layer-")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(spool)
        .map_err(|source| PackError::Spool {
            path: spool.to_path_buf(),
            source,
        })
}

type Collected = (
    Vec<(Option<tempfile::TempPath>, PackedLayer)>,
    FileListBlob,
    SaveCounts,
);

/// Receives finished parts in any order and writes their state list
/// records in part order; returns the parts in order and the list blob.
///
/// While every part so far is the base's part of the same index, their
/// records are the base list's own: nothing is written. A tree found
/// unchanged to the end gets the base's list as it is (a copy, not a
/// re-encoding, which was a tenth of a no-op save's CPU); at the first
/// part that differs, the base's records before it are copied over from
/// its list, which is on disk, so no record is held meanwhile.
fn collect(
    done: mpsc::Receiver<(usize, Result<Finished, PackError>)>,
    list_file: tempfile::NamedTempFile,
    base: Option<&BaseEntry>,
    cancel: &AtomicBool,
    on_layer: &(dyn Fn(&Path, &PackedLayer) + Sync),
) -> Result<Collected, PackError> {
    let (file, list_path) = list_file.into_parts();
    let list_err = |source: io::Error| PackError::FileList {
        path: list_path.to_path_buf(),
        source,
    };
    let out = HashingWriter::new(BufWriter::with_capacity(IO_BUFFER, file));
    let mut writer = FileListWriter::new(out).map_err(list_err)?;
    let mut waiting: std::collections::BTreeMap<usize, Finished> = Default::default();
    let mut parts = Vec::new();
    let mut first_error = None;
    let mut counts = SaveCounts::default();
    // Some while every part so far is the base's part of the same index.
    let mut echoing = base.filter(|b| b.deltas == 0);
    for (index, result) in done {
        match result {
            Ok(finished) if first_error.is_none() => {
                if let Some(file) = &finished.file {
                    on_layer(file, &finished.layer);
                }
                waiting.insert(index, finished);
            }
            Ok(_) | Err(PackError::Cancelled) => {}
            Err(err) => {
                cancel.store(true, Ordering::Relaxed);
                first_error.get_or_insert(err);
            }
        }
        while let Some(finished) = waiting.remove(&parts.len()) {
            for record in &finished.records {
                counts.add(&record.item, finished.file.is_none());
            }
            let index = parts.len();
            let same_as_base = finished.file.is_none()
                && echoing
                    .and_then(|b| b.layers.get(index))
                    .is_some_and(|l| l.digest == finished.layer.digest);
            if !same_as_base && first_error.is_none() {
                let written = match echoing.take() {
                    Some(base) => copy_base_records(&base.filelist.blob, index, &mut writer),
                    None => Ok(()),
                }
                .and_then(|()| finished.records.iter().try_for_each(|r| writer.write(r)));
                if let Err(err) = written {
                    cancel.store(true, Ordering::Relaxed);
                    first_error.get_or_insert(list_err(err));
                }
            }
            parts.push((finished.file, finished.layer));
        }
    }
    if let Some(err) = first_error {
        return Err(err);
    }
    if !waiting.is_empty() {
        // A part never came back: the walk or a worker stopped early.
        return Err(PackError::Cancelled);
    }
    if let Some(base) = echoing {
        if parts.len() == base.layers.len() {
            drop(writer);
            std::fs::copy(&base.filelist.blob, &list_path).map_err(list_err)?;
            let blob = list_path.keep().map_err(|e| PackError::Spool {
                path: e.path.to_path_buf(),
                source: e.error,
            })?;
            let (digest, size) = (base.filelist.digest.clone(), base.filelist.size);
            return Ok((parts, FileListBlob { blob, digest, size }, counts));
        }
        // The tree now ends earlier: its parts are the base's first ones.
        copy_base_records(&base.filelist.blob, parts.len(), &mut writer).map_err(list_err)?;
    }
    let out = writer.finish().map_err(list_err)?;
    let (buffered, digest, size) = out.finish();
    buffered
        .into_inner()
        .map_err(|e| list_err(e.into_error()))?;
    let blob = list_path.keep().map_err(|e| PackError::Spool {
        path: e.path.to_path_buf(),
        source: e.error,
    })?;
    Ok((parts, FileListBlob { blob, digest, size }, counts))
}

/// Writes the records of the base list's first `parts` layers.
fn copy_base_records<W: Write>(
    list: &Path,
    parts: usize,
    writer: &mut FileListWriter<W>,
) -> io::Result<()> {
    if parts == 0 {
        // Nothing to copy; the list may not even be readable.
        return Ok(());
    }
    let mut reader = FileListReader::new(io::BufReader::new(std::fs::File::open(list)?))?;
    while let Some(record) = reader
        .next_record()
        .map_err(|e| io::Error::other(e.to_string()))?
    {
        if record.layer as usize >= parts {
            break;
        }
        writer.write(&record)?;
    }
    Ok(())
}

/// A packed part's spool file (removed unless kept) and its layer.
struct Blob {
    file: tempfile::TempPath,
    layer: PackedLayer,
}

impl Blob {
    /// A layer just packed into `file` (not reused; its final path is set
    /// when it is moved out of the worker's temporary name).
    fn packed(
        file: tempfile::TempPath,
        (digest, size): (Digest, u64),
        diff_id: Digest,
        uncompressed_size: u64,
        toc_digest: Option<Digest>,
    ) -> Blob {
        Blob {
            file,
            layer: PackedLayer {
                blob: PathBuf::new(),
                digest,
                size,
                diff_id,
                uncompressed_size,
                toc_digest,
                reused: false,
            },
        }
    }
}

/// One packing thread's reusable state.
pub(crate) struct Worker<'a> {
    root: &'a Path,
    spool: &'a Path,
    opts: &'a PackOptions,
    progress: &'a dyn BlobProgress,
    headers: HeaderEncoder,
    header_buf: Vec<u8>,
    read_buf: Vec<u8>,
    follow: Option<&'a (dyn Fn(Arc<GrowingBlob>) + Sync)>,
    name: &'a str,
}

impl<'a> Worker<'a> {
    pub(crate) fn new(
        root: &'a Path,
        spool: &'a Path,
        opts: &'a PackOptions,
        progress: &'a dyn BlobProgress,
    ) -> Self {
        Worker {
            root,
            spool,
            opts,
            progress,
            headers: HeaderEncoder::default(),
            header_buf: Vec::with_capacity(4 * 1024),
            read_buf: vec![0; IO_BUFFER],
            follow: None,
            name: "",
        }
    }

    /// How this worker's messages name its entry.
    pub(crate) fn named(mut self, name: &'a str) -> Self {
        self.name = name;
        self
    }

    fn entry_name(&self) -> std::borrow::Cow<'_, str> {
        match self.name {
            "" => self.root.to_string_lossy(),
            name => name.into(),
        }
    }

    /// Announces each blob this worker starts to `follow`.
    pub(crate) fn followed_by(
        mut self,
        follow: Option<&'a (dyn Fn(Arc<GrowingBlob>) + Sync)>,
    ) -> Self {
        self.follow = follow;
        self
    }

    /// Packs one part; returns its blob with the state list
    /// records of its items (content digests computed on the way).
    /// `zstd_workers`: the threads zstd may use for it.
    pub(crate) fn pack(
        &mut self,
        part: Part,
        cancel: &AtomicBool,
        zstd_workers: usize,
    ) -> Result<Finished, PackError> {
        let (file, path) = spool_file(self.spool)?.into_parts();
        let growing = self.follow.map(|follow| {
            let blob = GrowingBlob::new(&path, part.index);
            follow(Arc::clone(&blob));
            blob
        });
        let file = CountingFile::new(file, growing);
        let (blob, digests) = if self.opts.compression == Compression::Estargz {
            self.pack_estargz(&part, cancel, file, path)?
        } else {
            self.pack_tar(&part, cancel, file, path, zstd_workers)?
        };
        let layer = part.index as u32;
        let records = part
            .items
            .into_iter()
            .zip(digests)
            .map(|(item, digest)| FileRecord {
                item,
                digest,
                layer,
            })
            .collect();
        Ok(Finished {
            file: Some(blob.file),
            layer: blob.layer,
            records,
        })
    }

    fn pack_tar(
        &mut self,
        part: &Part,
        cancel: &AtomicBool,
        file: CountingFile,
        path: tempfile::TempPath,
        zstd_workers: usize,
    ) -> Result<(Blob, Vec<Option<Digest>>), PackError> {
        let spool_err = |source: io::Error| PackError::Spool {
            path: path.to_path_buf(),
            source,
        };
        let compression = self.opts.compression;
        let codec_err = |source: io::Error| PackError::Codec {
            compression,
            source,
        };

        // A part packed alone (a tree of one part, or the last part once
        // the others are done) uses every core through zstd's workers;
        // parts packed side by side use one each, which bounds memory (a
        // worker holds its own buffers). zstd's output does not depend on
        // its worker count (from 1 up), so the layers are the same either
        // way, whatever `jobs` is.
        let zstd_workers = zstd_workers.max(1);
        let blob = HashingWriter::new(BufWriter::with_capacity(IO_BUFFER, file));
        let encoder =
            compress_writer_with_workers(blob, compression, self.opts.level, zstd_workers as u32)
                .map_err(codec_err)?;
        // Batches small header writes before they reach the hasher and codec.
        let mut tar = BufWriter::with_capacity(IO_BUFFER, HashingWriter::new(encoder));

        let mut digests = Vec::with_capacity(part.items.len());
        for item in &part.items {
            if cancel.load(Ordering::Relaxed) {
                return Err(PackError::Cancelled);
            }
            digests.push(self.write_item(item, &mut tar).map_err(|e| match e {
                ItemError::Pack(e) => e,
                ItemError::Write(source) => codec_or_spool(compression, &path, source),
            })?);
        }
        tar.write_all(&END_OF_ARCHIVE)
            .map_err(|e| codec_or_spool(compression, &path, e))?;
        let tar = tar
            .into_inner()
            .map_err(|e| codec_or_spool(compression, &path, e.into_error()))?;
        let (encoder, diff_id, uncompressed_size) = tar.finish();
        let blob = encoder
            .finish()
            .map_err(|e| codec_or_spool(compression, &path, e))?;
        let (out, digest, size) = blob.finish();
        out.into_inner()
            .map_err(|e| spool_err(e.into_error()))?
            .finish(&digest, size)
            .map_err(spool_err)?;
        tracing::info!(
            "{}: part {}: packed {} paths, {} -> {} ({})",
            self.entry_name(),
            part.index,
            part.items.len(),
            human_bytes(uncompressed_size),
            human_bytes(size),
            digest.short()
        );
        Ok((
            Blob::packed(path, (digest, size), diff_id, uncompressed_size, None),
            digests,
        ))
    }

    /// Like the rest of [`Worker::pack`] for an eStargz layer: each file's
    /// content in gzip members of its own, then the TOC and the footer.
    fn pack_estargz(
        &mut self,
        part: &Part,
        cancel: &AtomicBool,
        file: CountingFile,
        path: tempfile::TempPath,
    ) -> Result<(Blob, Vec<Option<Digest>>), PackError> {
        let compression = Compression::Estargz;
        let blob = HashingWriter::new(BufWriter::with_capacity(IO_BUFFER, file));
        let mut est =
            EstargzWriter::new(blob, self.opts.level).map_err(|source| PackError::Codec {
                compression,
                source,
            })?;
        let mut digests = Vec::with_capacity(part.items.len());
        for item in &part.items {
            if cancel.load(Ordering::Relaxed) {
                return Err(PackError::Cancelled);
            }
            digests.push(
                self.write_item_estargz(item, &mut est)
                    .map_err(|e| match e {
                        ItemError::Pack(e) => e,
                        ItemError::Write(source) => codec_or_spool(compression, &path, source),
                    })?,
            );
        }
        est.write_raw(&END_OF_ARCHIVE)
            .map_err(|e| codec_or_spool(compression, &path, e))?;
        let (blob, info) = est
            .finish()
            .map_err(|e| codec_or_spool(compression, &path, e))?;
        let (out, digest, size) = blob.finish();
        let spool_err = |source: io::Error| PackError::Spool {
            path: path.to_path_buf(),
            source,
        };
        out.into_inner()
            .map_err(|e| spool_err(e.into_error()))?
            .finish(&digest, size)
            .map_err(spool_err)?;
        tracing::info!(
            "{}: part {}: packed {} paths, {} -> {} ({}, TOC {})",
            self.entry_name(),
            part.index,
            part.items.len(),
            human_bytes(info.uncompressed_size),
            human_bytes(size),
            digest.short(),
            info.toc_digest.short()
        );
        Ok((
            Blob::packed(
                path,
                (digest, size),
                info.diff_id,
                info.uncompressed_size,
                Some(info.toc_digest),
            ),
            digests,
        ))
    }

    fn write_item_estargz<W: Write>(
        &mut self,
        item: &Item,
        est: &mut EstargzWriter<W>,
    ) -> Result<Option<Digest>, ItemError> {
        self.encode_header(item);
        est.write_raw(&self.header_buf).map_err(ItemError::Write)?;
        let (kind, link): (EntryType, &[u8]) = match &item.kind {
            ItemKind::Dir => (EntryType::Dir, b""),
            ItemKind::File { .. } | ItemKind::Whiteout => (EntryType::Reg, b""),
            ItemKind::Symlink { target } => (EntryType::Symlink, target),
            ItemKind::Hardlink { target } => (EntryType::Hardlink, target),
        };
        // The TOC names an entry as its tar header does.
        let dir_name;
        let name = if kind == EntryType::Dir {
            dir_name = [&item.path[..], b"/"].concat();
            &dir_name[..]
        } else {
            &item.path[..]
        };
        est.begin_entry(&EntryMeta {
            name,
            kind,
            mode: item.mode & 0o7777,
            mtime: item.mtime,
            link,
        });
        let ItemKind::File { size } = item.kind else {
            return Ok(None);
        };
        let digest = self.copy_file(&item.path, size, &mut est.content())?;
        est.write_raw(&END_OF_ARCHIVE[..padding(size)])
            .map_err(ItemError::Write)?;
        Ok(Some(digest))
    }

    /// Puts the tar header(s) of `item` in `header_buf`.
    fn encode_header(&mut self, item: &Item) {
        let kind = match &item.kind {
            ItemKind::Dir => EntryKind::Dir,
            ItemKind::File { size } => EntryKind::File { size: *size },
            ItemKind::Whiteout => EntryKind::File { size: 0 },
            ItemKind::Symlink { target } => EntryKind::Symlink { target },
            ItemKind::Hardlink { target } => EntryKind::Hardlink { target },
        };
        self.header_buf.clear();
        let header = EntryHeader {
            path: &item.path,
            kind,
            mode: item.mode,
            mtime: item.mtime,
        };
        self.headers.encode(&header, &mut self.header_buf);
    }

    /// Writes one item; returns a file's content digest.
    fn write_item(
        &mut self,
        item: &Item,
        tar: &mut impl Write,
    ) -> Result<Option<Digest>, ItemError> {
        self.encode_header(item);
        tar.write_all(&self.header_buf).map_err(ItemError::Write)?;
        let ItemKind::File { size } = item.kind else {
            return Ok(None);
        };
        let digest = self.copy_file(&item.path, size, tar)?;
        tar.write_all(&END_OF_ARCHIVE[..padding(size)])
            .map_err(ItemError::Write)?;
        Ok(Some(digest))
    }

    /// Copies exactly `size` bytes of the file, failing if it has more or
    /// fewer: the header already promised `size`. Returns the content's
    /// sha256 for the state list, hashed as it passes.
    fn copy_file(
        &mut self,
        rel: &[u8],
        size: u64,
        tar: &mut impl Write,
    ) -> Result<Digest, ItemError> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = item_path(self.root, rel);
        let read_err = |source: io::Error| {
            ItemError::Pack(PackError::Read {
                path: path.clone(),
                source,
            })
        };
        // O_NOFOLLOW: if the file was swapped for a symlink since the walk,
        // fail instead of archiving whatever it points at.
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(read_err)?;
        let mut hasher = Hasher::new();
        let mut left = size;
        while left > 0 {
            let want = self
                .read_buf
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match file.read(&mut self.read_buf[..want]) {
                Ok(0) => {
                    return Err(ItemError::Pack(PackError::SizeChanged {
                        path,
                        expected: size,
                        found: format!("but it ended after {}", size - left),
                    }));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(e)),
            };
            hasher.update(&self.read_buf[..n]);
            tar.write_all(&self.read_buf[..n])
                .map_err(ItemError::Write)?;
            self.progress.advance(n as u64);
            left -= n as u64;
        }
        let mut probe = [0u8; 1];
        match file.read(&mut probe) {
            Ok(0) => Ok(hasher.finish().0),
            Ok(_) => Err(ItemError::Pack(PackError::SizeChanged {
                path,
                expected: size,
                found: "but it has grown".to_string(),
            })),
            Err(e) => Err(read_err(e)),
        }
    }
}

enum ItemError {
    Pack(PackError),
    /// Writing the tar stream failed: the codec or the spool file.
    Write(io::Error),
}

/// The write chain is codec over spool file; an error from either surfaces
/// through the codec, so report the spool path as well as the codec.
fn codec_or_spool(compression: Compression, spool_file: &Path, source: io::Error) -> PackError {
    if source.raw_os_error().is_some() {
        PackError::Spool {
            path: spool_file.to_path_buf(),
            source,
        }
    } else {
        PackError::Codec {
            compression,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_error(worker: &mut Worker<'_>, size: u64) -> PackError {
        match worker.copy_file(b"f", size, &mut Vec::new()) {
            Err(ItemError::Pack(err)) => err,
            Err(ItemError::Write(err)) => panic!("unexpected write error {err}"),
            Ok(_) => panic!("a size change must be an error"),
        }
    }

    /// The walk saw one size; the file has another by the time it is read.
    #[test]
    fn a_file_whose_size_changed_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), [7u8; 10]).unwrap();
        let opts = PackOptions::default();
        let mut worker = Worker::new(dir.path(), dir.path(), &opts, &NoProgress);

        let shrunk = copy_error(&mut worker, 20).to_string();
        assert!(
            shrunk.contains(&dir.path().join("f").display().to_string()),
            "{shrunk}"
        );
        assert!(shrunk.contains("ended after 10"), "{shrunk}");
        let grown = copy_error(&mut worker, 5).to_string();
        assert!(grown.contains("grown"), "{grown}");

        let mut out = Vec::new();
        let digest = worker.copy_file(b"f", 10, &mut out).ok();
        assert_eq!(out, [7u8; 10]);
        assert_eq!(digest, Some(Digest::of(&[7u8; 10])));
    }

    #[test]
    fn a_missing_spool_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("no-such-spool");
        let err = pack_dir(dir.path(), &spool, &PackOptions::default()).unwrap_err();
        assert!(err.to_string().contains("no-such-spool"), "{err}");
    }
}

#[cfg(test)]
mod list_reuse_tests {
    use super::*;

    fn opts() -> PackOptions {
        PackOptions {
            compression: Compression::Uncompressed,
            level: None,
            part_size: 8 << 10,
            jobs: 2,
        }
    }

    fn base_of(entry: &PackedEntry) -> BaseEntry {
        BaseEntry::of(entry)
    }

    /// Twelve directories of four 1 KiB files: several parts of 8 KiB.
    fn tree(root: &Path) {
        for d in 0..12 {
            let dir = root.join(format!("d{d:02}"));
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..4 {
                std::fs::write(dir.join(format!("f{f}")), vec![(d * 4 + f) as u8; 1024]).unwrap();
            }
        }
        // Times pinned, so only the changes a test makes count.
        let pin = filetime::FileTime::from_unix_time(1_600_000_000, 0);
        for entry in walkdir(root) {
            filetime::set_symlink_file_times(&entry, pin, pin).unwrap();
        }
    }

    fn walkdir(root: &Path) -> Vec<PathBuf> {
        let mut out = vec![root.to_path_buf()];
        let mut i = 0;
        while i < out.len() {
            if out[i].is_dir() {
                let mut children: Vec<_> = std::fs::read_dir(&out[i])
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .collect();
                children.sort();
                out.extend(children);
            }
            i += 1;
        }
        out
    }

    fn records(list: &FileListBlob) -> Vec<FileRecord> {
        let mut reader =
            FileListReader::new(io::BufReader::new(std::fs::File::open(&list.blob).unwrap()))
                .unwrap();
        let mut out = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            out.push(record);
        }
        out
    }

    /// Packs `root` against the base `first`, and from scratch: the lists
    /// must be the same, record for record and byte for byte.
    fn assert_list_as_fresh(root: &Path, spool: &Path, first: &PackedEntry) -> PackedEntry {
        let again =
            pack_dir_with_base(root, spool, &opts(), Some(&base_of(first)), PackHooks::NONE)
                .unwrap();
        let fresh = pack_dir(root, spool, &opts()).unwrap();
        assert_eq!(records(&again.filelist), records(&fresh.filelist));
        assert_eq!(again.filelist.digest, fresh.filelist.digest);
        assert_eq!(
            std::fs::read(&again.filelist.blob).unwrap(),
            std::fs::read(&fresh.filelist.blob).unwrap()
        );
        again
    }

    #[test]
    fn an_unchanged_tree_keeps_the_base_list_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let (root, spool) = (dir.path().join("t"), dir.path().join("spool"));
        std::fs::create_dir_all(&spool).unwrap();
        tree(&root);
        let first = pack_dir(&root, &spool, &opts()).unwrap();
        assert!(first.layers.len() >= 4, "{} parts", first.layers.len());
        let again = assert_list_as_fresh(&root, &spool, &first);
        assert_eq!(again.plan, EntryPlan::Unchanged);
        assert_eq!(again.filelist.digest, first.filelist.digest);
        assert_ne!(
            again.filelist.blob, first.filelist.blob,
            "a copy of its own"
        );
    }

    #[test]
    fn a_change_in_any_part_writes_the_list_a_fresh_save_would() {
        for changed in ["d00/f1", "d05/f2", "d11/f3"] {
            let dir = tempfile::tempdir().unwrap();
            let (root, spool) = (dir.path().join("t"), dir.path().join("spool"));
            std::fs::create_dir_all(&spool).unwrap();
            tree(&root);
            let first = pack_dir(&root, &spool, &opts()).unwrap();
            std::fs::write(root.join(changed), b"changed").unwrap();
            let again = assert_list_as_fresh(&root, &spool, &first);
            assert_eq!(again.plan, EntryPlan::Parts, "{changed}");
        }
    }

    #[test]
    fn a_tree_that_lost_its_last_parts_writes_the_list_of_what_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let (root, spool) = (dir.path().join("t"), dir.path().join("spool"));
        std::fs::create_dir_all(&spool).unwrap();
        tree(&root);
        let first = pack_dir(&root, &spool, &opts()).unwrap();
        for d in 8..12 {
            std::fs::remove_dir_all(root.join(format!("d{d:02}"))).unwrap();
        }
        let pin = filetime::FileTime::from_unix_time(1_600_000_000, 0);
        filetime::set_symlink_file_times(&root, pin, pin).unwrap();
        let again = assert_list_as_fresh(&root, &spool, &first);
        assert!(again.layers.len() < first.layers.len());
    }
}
