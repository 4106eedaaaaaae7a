//! Restores layer blobs into a directory, treating every blob as hostile.
//!
//! Three threads per layer: the caller's reads the raw blob through a
//! [`VerifyingReader`] (digest and size), decompresses it and bounds the
//! output; one helper hashes the tar stream (diff_id), another stages its
//! entries (see [`super::stage`]). Each decompressed chunk is shared by the
//! two helpers, so the hashing (the bulk of the work for large files) and
//! the file system calls (for small ones) each run beside the
//! decompression. Staged content is renamed into place only after every
//! check passed; any failure removes it again.

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};

use crate::compression::Compression;
use crate::digest::{Digest, Hasher, VerifyingReader};
use crate::progress::human_bytes;

use super::codec::{IO_BUFFER, decoder};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, UTIME_OMIT};

use super::root::{DirFds, OpenRoot, RootPath, open_file_root, open_root};
use super::safe_path::{depth, on_disk, split_last};
use super::stage::{DirMeta, Restored, Stage, TempNames, timespec};
use super::stats::EntryStats;
use super::superseded::FinalLayers;
use super::tar_read::TarReader;

/// Decompressed bytes handed from the decoding thread to the extracting one.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight from the decoding thread to each helper (each chunk is
/// shared by both: this bounds memory to ~2 MiB).
const CHUNKS_IN_FLIGHT: usize = 8;

/// One layer blob to apply, as its descriptor describes it.
pub struct LayerSource<R> {
    /// The raw (compressed) blob bytes, untrusted.
    pub reader: R,
    pub digest: Digest,
    pub size: u64,
    pub compression: Compression,
    /// sha256 of the uncompressed tar, checked when given.
    pub diff_id: Option<Digest>,
    /// Refuse the layer once it decompresses to more than this.
    pub max_uncompressed: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("restore root {path}: {reason}")]
    Root { path: PathBuf, reason: String },
    /// A symlink stands where the walk to an entry's root needs a real
    /// directory: a cache may have planted it to redirect the restore.
    #[error(
        "{} is a symlink to {}; refusing to restore through it",
        link.display(),
        target.display()
    )]
    RootSymlink {
        link: PathBuf,
        target: PathBuf,
        /// The link is the root itself (not a directory on the way to it),
        /// which `--allow-root-symlink` permits.
        at_root: bool,
    },
    #[error("restoring {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The blob could not be read, failed its digest or size check, or is
    /// not a valid compressed tar.
    #[error("layer {layer}: {source}")]
    Blob {
        layer: Digest,
        #[source]
        source: io::Error,
    },
    #[error(
        "layer {layer}: uncompressed content digest mismatch: the tar hashes to {actual}, its diff_id is {expected}"
    )]
    DiffIdMismatch {
        layer: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "layer {layer}: decompresses to more than the allowed {limit} bytes; refusing it (decompression bomb or wrong descriptor)"
    )]
    TooLarge { layer: Digest, limit: u64 },
    /// Refused before any of its content was written: `free` is what the
    /// file system had left once this layer's earlier entries were staged.
    #[error(
        "layer {layer}: entry {entry:?} declares {} ({size} bytes) but the file system of {} has only {} ({free} bytes) free",
        human_bytes(*size),
        path.display(),
        human_bytes(*free)
    )]
    NoSpace {
        layer: Digest,
        entry: String,
        size: u64,
        path: PathBuf,
        free: u64,
    },
    #[error("layer {layer}: entry {entry:?}: {reason}")]
    UnsafeEntry {
        layer: Digest,
        entry: String,
        reason: String,
    },
    #[error("layer {layer}: {path:?}: {reason}; nothing was deleted")]
    TypeConflict {
        layer: Digest,
        path: String,
        reason: String,
    },
    #[error("layer {layer}: the extracting thread panicked")]
    Panicked { layer: Digest },
}

impl UnpackError {
    /// What the user can do about it, for a `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            UnpackError::RootSymlink { at_root: true, .. } => Some(
                "if you made that link yourself (a directory or file kept on another disk), \
                 pass --allow-root-symlink to restore where it points"
                    .to_string(),
            ),
            UnpackError::RootSymlink {
                at_root: false,
                link,
                ..
            } => Some(format!(
                "remove {} (or replace it with a real directory) and restore again",
                link.display()
            )),
            _ => None,
        }
    }
}

/// Applies the layers of one cache entry to a directory, in order.
pub struct EntryRestorer {
    /// The path every operation goes through: it names the opened root
    /// directory itself (see [`OpenRoot`]).
    root: PathBuf,
    open: OpenRoot,
    temps: TempNames,
    restored: Restored,
    /// An entry of one file: its name in `root`, its directory.
    single: Option<Vec<u8>>,
}

impl EntryRestorer {
    /// Prepares to restore into `root`, a directory the caller trusts (it
    /// is opened as it is, symlinks followed), creating it if missing.
    /// Restores of cache entries go through [`EntryRestorer::open`].
    pub fn new(root: &Path) -> Result<EntryRestorer, UnpackError> {
        EntryRestorer::open(&RootPath {
            anchor: root.to_path_buf(),
            below: Vec::new(),
            allow_symlink: true,
        })
    }

    /// Prepares to restore into the root `root` describes, reached from its
    /// anchor without following a symlink (see [`super::root`]).
    pub fn open(root: &RootPath) -> Result<EntryRestorer, UnpackError> {
        let open = open_root(root)?;
        log_leftovers(
            open.display_path(),
            super::leftovers::remove_restore_leftovers(open.access_path()),
        );
        Ok(EntryRestorer {
            root: open.access_path().to_path_buf(),
            open,
            temps: TempNames::new(),
            restored: Restored::default(),
            single: None,
        })
    }

    /// Prepares to restore an entry of one file at the path `root`
    /// describes: its directory is reached as a directory root is, and
    /// each layer may only bring that one file (see [`super::root::open_file_root`]).
    pub fn open_file(root: &RootPath) -> Result<EntryRestorer, UnpackError> {
        let (open, name) = open_file_root(root)?;
        // No sweep for killed restores' temporaries: that walks the whole
        // directory tree, which for a file is someone else's (a checkout).
        Ok(EntryRestorer {
            root: open.access_path().to_path_buf(),
            open,
            temps: TempNames::new(),
            restored: Restored::default(),
            single: Some(std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str()).to_vec()),
        })
    }

    /// Errors name paths as the user knows them, not through the
    /// descriptor path the restore works with.
    fn shown(&self, err: UnpackError) -> UnpackError {
        let display = self.open.display_path();
        let rewrite = |path: PathBuf| match path.strip_prefix(&self.root) {
            Ok(rest) if rest.as_os_str().is_empty() => display.to_path_buf(),
            Ok(rest) => display.join(rest),
            Err(_) => path,
        };
        match err {
            UnpackError::Io { path, source } => UnpackError::Io {
                path: rewrite(path),
                source,
            },
            UnpackError::Root { path, reason } => UnpackError::Root {
                path: rewrite(path),
                reason,
            },
            other => other,
        }
    }

    /// The root as the user knows it.
    pub fn root(&self) -> &Path {
        self.open.display_path()
    }

    /// Verifies and applies one layer. On error nothing of this layer is
    /// left in the target (files already there are untouched) and the
    /// restorer may still be finished or given another layer.
    pub fn apply_layer<R: Read>(&mut self, layer: LayerSource<R>) -> Result<(), UnpackError> {
        self.apply_layer_skipping(layer, None)
    }

    /// [`EntryRestorer::apply_layer`], skipping the paths `finals` says a
    /// later layer of the chain replaces or deletes.
    pub fn apply_layer_skipping<R: Read>(
        &mut self,
        layer: LayerSource<R>,
        finals: Option<&mut FinalLayers>,
    ) -> Result<(), UnpackError> {
        let LayerSource {
            reader,
            digest,
            size,
            compression,
            diff_id,
            max_uncompressed,
        } = layer;
        let estargz = compression == Compression::Estargz;
        let mut stage = Stage::new(
            &self.root,
            self.open.fd(),
            &digest,
            &mut self.temps,
            estargz,
        );
        if let Some(name) = &self.single {
            stage.single_file(name);
        }
        if let Some(finals) = finals {
            stage.skip_superseded(finals);
        }
        let streamed = stream(
            reader,
            &digest,
            size,
            compression,
            max_uncompressed,
            &mut stage,
        )
        .and_then(|(actual, _)| match diff_id {
            Some(expected) if expected != actual => Err(UnpackError::DiffIdMismatch {
                layer: digest.clone(),
                expected,
                actual,
            }),
            _ => Ok(()),
        });
        let applied = match streamed {
            Ok(()) => stage.commit(&mut self.restored),
            Err(e) => {
                stage.rollback();
                Err(e)
            }
        };
        applied.map_err(|e| self.shown(e))
    }

    /// Applies directory modes and mtimes, deepest first (creating files
    /// bumps a directory's mtime, and a read-only parent would block its
    /// children), and returns what was restored.
    pub fn finish(mut self) -> Result<EntryStats, UnpackError> {
        let restored = std::mem::take(&mut self.restored);
        let mut dirs: Vec<(Vec<u8>, DirMeta)> = restored.dirs.into_iter().collect();
        dirs.sort_by_key(|(rel, _)| std::cmp::Reverse(depth(rel)));
        let mut fds = DirFds::new(self.open.fd());
        for (rel, meta) in dirs {
            apply_dir_meta(&mut fds, &self.root, &rel, meta).map_err(|e| self.shown(e))?;
        }
        Ok(restored.stats)
    }
}

/// A killed restore leaves its temporaries beside their targets; the next
/// restore into the tree is where they get noticed.
fn log_leftovers(root: &Path, removed: super::leftovers::Removed) {
    if removed.count > 0 {
        tracing::info!(
            "{}: removed {} temporary file(s) left by killed restores ({} bytes)",
            root.display(),
            removed.count,
            removed.bytes
        );
    }
}

/// Gives the directory `rel` its mode and mtime, through its parent opened
/// beneath the root (see [`DirFds`]). Checked again here, not trusted from
/// staging: a later layer may have replaced the directory or one on the
/// way to it, and neither a chmod nor a utimes may follow a link. One that
/// is gone or no longer a real directory is skipped.
fn apply_dir_meta(
    fds: &mut DirFds<'_>,
    root: &Path,
    rel: &[u8],
    meta: DirMeta,
) -> Result<(), UnpackError> {
    let path = on_disk(root, rel);
    let io_err = |source: io::Error| UnpackError::Io {
        path: path.clone(),
        source,
    };
    let gone = || {
        tracing::debug!(path = %path.display(), "directory gone or replaced before its metadata was applied");
        Ok(())
    };
    let (parent, name) = split_last(rel);
    // A parent that cannot be opened as a real directory is gone or
    // replaced (ENOENT, ENOTDIR: a symlink or a file on the way).
    let Ok(dir) = fds.get(parent) else {
        return gone();
    };
    let stat = if rel.is_empty() {
        rustix::fs::fstat(&dir)
    } else {
        rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
    };
    let Ok(stat) = stat else {
        return gone();
    };
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        return gone();
    }
    if let Some(mode) = meta.mode
        && stat.st_mode & 0o7777 != mode
    {
        if rel.is_empty() {
            rustix::fs::fchmod(&dir, Mode::from_raw_mode(mode))
        } else {
            // Opened (no symlink followed) to chmod what was checked:
            // fchmodat would follow a link swapped in meanwhile.
            rustix::fs::openat(
                &dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .and_then(|fd| rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)))
        }
        .map_err(|e| io_err(e.into()))?;
    }
    if let Some(mtime) = meta.mtime {
        let times = Timestamps {
            last_access: Timespec {
                tv_sec: 0,
                tv_nsec: UTIME_OMIT,
            },
            last_modification: timespec(mtime),
        };
        if rel.is_empty() {
            rustix::fs::futimens(&dir, &times)
        } else {
            // Never follows a symlink: at worst a link swapped in
            // meanwhile gets this mtime, never what it points at.
            rustix::fs::utimensat(&dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)
        }
        .map_err(|e| io_err(e.into()))?;
    }
    Ok(())
}

/// How the decoding side ended.
enum Flow {
    /// The whole blob was decoded and handed over.
    Complete,
    /// The extractor stopped reading (it has an error to report).
    ConsumerStopped,
}

struct Chunk {
    buf: Vec<u8>,
    len: usize,
}

/// Where the decoded chunks go.
struct Outlets {
    extract: SyncSender<Arc<Chunk>>,
    hash: SyncSender<Arc<Chunk>>,
}

/// Hands a chunk's buffer back for reuse, when this was its last holder.
fn recycle(chunk: Arc<Chunk>, free: &Sender<Vec<u8>>) {
    if let Ok(chunk) = Arc::try_unwrap(chunk) {
        let _ = free.send(chunk.buf);
    }
}

/// Runs decoding (this thread), hashing and extraction (helpers)
/// concurrently. Returns the tar stream's digest and size.
fn stream<R: Read>(
    reader: R,
    digest: &Digest,
    size: u64,
    compression: Compression,
    max_uncompressed: Option<u64>,
    stage: &mut Stage<'_>,
) -> Result<(Digest, u64), UnpackError> {
    let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Arc<Chunk>>(CHUNKS_IN_FLIGHT);
    let (hash_tx, hash_rx) = mpsc::sync_channel::<Arc<Chunk>>(CHUNKS_IN_FLIGHT);
    let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
    let (produced, extracted, hashed) = std::thread::scope(|scope| {
        let hash_free = free_tx.clone();
        let hasher = scope.spawn(move || hash(hash_rx, hash_free));
        let extractor = scope.spawn(move || extract(chunk_rx, free_tx, stage, digest));
        let outlets = Outlets {
            extract: chunk_tx,
            hash: hash_tx,
        };
        let produced = produce(
            reader,
            digest,
            size,
            compression,
            max_uncompressed,
            outlets,
            free_rx,
        );
        (produced, extractor.join(), hasher.join())
    });
    // A blob that fails its digest is reported as such even when the
    // garbage it decoded to upset the tar reader first.
    match (produced?, extracted, hashed) {
        (_, Err(_), _) | (_, _, Err(_)) => Err(UnpackError::Panicked {
            layer: digest.clone(),
        }),
        (_, Ok(Err(e)), _) => Err(e),
        (Flow::Complete, Ok(Ok(())), Ok(tar)) => Ok(tar),
        (Flow::ConsumerStopped, Ok(Ok(())), _) => Err(UnpackError::Blob {
            layer: digest.clone(),
            source: io::Error::other("tar reader stopped before the end of the layer"),
        }),
    }
}

/// Reads, verifies and decompresses the blob, sending the tar stream on.
fn produce<R: Read>(
    reader: R,
    digest: &Digest,
    size: u64,
    compression: Compression,
    max_uncompressed: Option<u64>,
    outlets: Outlets,
    free: Receiver<Vec<u8>>,
) -> Result<Flow, UnpackError> {
    let mut raw = VerifyingReader::new(reader, digest.clone(), size);
    let flow = {
        let buffered = BufReader::with_capacity(IO_BUFFER, &mut raw);
        decode(
            buffered,
            compression,
            max_uncompressed,
            &outlets,
            &free,
            digest,
        )
    };
    // Let the helpers finish while the rest of the blob is checked.
    drop(outlets);
    // Whatever happened, read the blob to its end and check it: a corrupt
    // blob must be reported as a digest mismatch, not as the codec or tar
    // error it caused.
    match raw.finish() {
        Err(source) => Err(UnpackError::Blob {
            layer: digest.clone(),
            source,
        }),
        Ok(()) => flow,
    }
}

/// Decodes `input`, sending every chunk of it to be hashed (the diff_id
/// covers everything, the end marker and what follows it too) and
/// extracted.
fn decode<B: BufRead>(
    input: B,
    compression: Compression,
    max_uncompressed: Option<u64>,
    outlets: &Outlets,
    free: &Receiver<Vec<u8>>,
    digest: &Digest,
) -> Result<Flow, UnpackError> {
    let blob_err = |source| UnpackError::Blob {
        layer: digest.clone(),
        source,
    };
    let mut decoder = decoder(input, compression).map_err(blob_err)?;
    let mut total: u64 = 0;
    loop {
        let mut buf = free.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
        let len = read_full(&mut decoder, &mut buf).map_err(blob_err)?;
        if len == 0 {
            return Ok(Flow::Complete);
        }
        total += len as u64;
        if let Some(limit) = max_uncompressed
            && total > limit
        {
            return Err(UnpackError::TooLarge {
                layer: digest.clone(),
                limit,
            });
        }
        let chunk = Arc::new(Chunk { buf, len });
        if outlets.hash.send(Arc::clone(&chunk)).is_err() || outlets.extract.send(chunk).is_err() {
            return Ok(Flow::ConsumerStopped);
        }
    }
}

/// Fills `buf` unless the input ends first; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Hashes every chunk it is sent: the tar stream's digest and size.
fn hash(rx: Receiver<Arc<Chunk>>, free: Sender<Vec<u8>>) -> (Digest, u64) {
    let mut hasher = Hasher::new();
    for chunk in rx {
        hasher.update(&chunk.buf[..chunk.len]);
        recycle(chunk, &free);
    }
    hasher.finish()
}

/// Parses the tar stream and stages its entries.
fn extract(
    rx: Receiver<Arc<Chunk>>,
    free: Sender<Vec<u8>>,
    stage: &mut Stage<'_>,
    digest: &Digest,
) -> Result<(), UnpackError> {
    let blob_err = |source| UnpackError::Blob {
        layer: digest.clone(),
        source,
    };
    let mut tar = TarReader::new(ChunkReader {
        rx,
        free,
        current: None,
        pos: 0,
    });
    while let Some(header) = tar.next_entry().map_err(blob_err)? {
        stage.add(&header, &mut tar)?;
    }
    // The decoder goes on to the end of the stream (the hasher needs it
    // all): take the rest, so it is not left waiting.
    tar.into_inner().drain();
    Ok(())
}

/// The decompressed stream, as received chunk by chunk; hands drained
/// buffers back for reuse.
struct ChunkReader {
    rx: Receiver<Arc<Chunk>>,
    free: Sender<Vec<u8>>,
    current: Option<Arc<Chunk>>,
    pos: usize,
}

impl ChunkReader {
    fn drain(&mut self) {
        if let Some(done) = self.current.take() {
            recycle(done, &self.free);
        }
        while let Ok(chunk) = self.rx.recv() {
            recycle(chunk, &self.free);
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChunkReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        // A loop, so an empty chunk is skipped rather than read as the end.
        while self.current.as_ref().is_none_or(|c| self.pos >= c.len) {
            if let Some(done) = self.current.take() {
                recycle(done, &self.free);
            }
            match self.rx.recv() {
                Ok(chunk) => {
                    self.current = Some(chunk);
                    self.pos = 0;
                }
                // The sender is gone: end of stream (or the decoder failed,
                // which the caller reports).
                Err(_) => return Ok(&[]),
            }
        }
        match &self.current {
            Some(chunk) => Ok(&chunk.buf[self.pos..chunk.len]),
            None => Ok(&[]),
        }
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::layer::codec::compress_writer;

    /// The decoder stops at the limit instead of inflating the whole bomb:
    /// what it hands on is at most one chunk past the limit.
    #[test]
    fn decoding_stops_soon_after_the_uncompressed_limit() {
        let mut encoder = compress_writer(Vec::new(), Compression::Zstd, None).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            encoder.write_all(&zeros).unwrap();
        }
        let blob = encoder.finish().unwrap();
        // Room for everything, so only the limit can stop the decoder.
        let (tx, rx) = mpsc::sync_channel(1024);
        let (hash_tx, _hash_rx) = mpsc::sync_channel(1024);
        let (_free_tx, free_rx) = mpsc::channel();
        let limit = 3 << 20;
        let digest = Digest::of(&blob);
        let outlets = Outlets {
            extract: tx,
            hash: hash_tx,
        };
        let result = decode(
            &blob[..],
            Compression::Zstd,
            Some(limit),
            &outlets,
            &free_rx,
            &digest,
        );
        assert!(matches!(result, Err(UnpackError::TooLarge { .. })));
        drop(outlets);
        let handed_on: u64 = rx.iter().map(|c| c.len as u64).sum();
        assert!(
            handed_on <= limit,
            "{handed_on} bytes passed a {limit}-byte limit"
        );
    }

    /// The diff_id is of every decompressed byte, whatever the extractor
    /// reads of them; a buffer both helpers are done with is reused.
    #[test]
    fn every_decoded_byte_is_hashed_and_extracted() {
        let content: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let mut encoder = compress_writer(Vec::new(), Compression::Zstd, None).unwrap();
        encoder.write_all(&content).unwrap();
        let blob = encoder.finish().unwrap();
        let (tx, rx) = mpsc::sync_channel(1024);
        let (hash_tx, hash_rx) = mpsc::sync_channel(1024);
        let (free_tx, free_rx) = mpsc::channel();
        let outlets = Outlets {
            extract: tx,
            hash: hash_tx,
        };
        let flow = decode(
            &blob[..],
            Compression::Zstd,
            None,
            &outlets,
            &free_rx,
            &Digest::of(&blob),
        )
        .unwrap();
        assert!(matches!(flow, Flow::Complete));
        drop(outlets);
        let extracted: Vec<u8> = rx
            .iter()
            .flat_map(|c: Arc<Chunk>| c.buf[..c.len].to_vec())
            .collect();
        assert_eq!(extracted, content);
        // The extractor's references are gone: the hasher holds the last.
        let hashed = hash(hash_rx, free_tx);
        assert_eq!(hashed, (Digest::of(&content), content.len() as u64));
        assert_eq!(free_rx.try_iter().count(), 4, "every buffer came back");
    }

    #[test]
    fn chunk_reader_reads_every_chunk_in_order() {
        let (tx, rx) = mpsc::sync_channel(4);
        let (free_tx, _free_rx) = mpsc::channel();
        for piece in [&b"hello "[..], b"", b"world"] {
            let mut buf = piece.to_vec();
            buf.extend_from_slice(b"padding that is not part of the stream");
            tx.send(Arc::new(Chunk {
                buf,
                len: piece.len(),
            }))
            .unwrap();
        }
        drop(tx);
        let mut reader = ChunkReader {
            rx,
            free: free_tx,
            current: None,
            pos: 0,
        };
        let mut first = [0u8; 3];
        reader.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"hel");
        // The empty chunk in the middle is not the end of the stream.
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"lo world");
        reader.drain();
    }
}
