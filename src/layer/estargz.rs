//! eStargz layers, written as BuildKit (through stargz-snapshotter's
//! `estargz` package) writes them.
//!
//! An eStargz blob is a gzip stream of several members. The tar stream is
//! split so that each regular file's content starts a new member (a large
//! file is cut into chunks of [`DEFAULT_CHUNK_SIZE`], each starting one); tar
//! headers, padding and the end-of-archive marker go into whatever member is
//! open. After the tar comes a member holding one more tar entry,
//! `stargz.index.json` (the TOC: every entry with the blob offset of its
//! content's member and the digest of that content), followed by its own
//! end-of-archive marker, and last the 51-byte footer: an empty gzip member
//! whose header's extra field names the TOC member's offset.
//!
//! Decompressed as a whole, the blob is the input tar, then the TOC entry:
//! a reader that does not know eStargz stops at the input's end-of-archive
//! marker and sees an ordinary layer. The diffID covers every byte,
//! TOC included, as BuildKit's does.

use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::compression::Compression;
use crate::digest::{Digest, Hasher};

use super::codec::{DEFAULT_GZIP_LEVEL, IO_BUFFER, check_level};
use super::pax::MTime;
use super::tar_read::{Kind, TarReader};
use super::tar_write::{BLOCK, END_OF_ARCHIVE, padding};

/// The name of the TOC's tar entry.
pub const TOC_TAR_NAME: &str = "stargz.index.json";
/// Size of the footer: gzip header (10), XLEN (2), extra subfield header (4)
/// and data (`%016xSTARGZ`, 22), an empty stored deflate block (5), CRC32
/// and ISIZE (8).
pub const FOOTER_SIZE: usize = 51;
/// Largest piece of a file in one gzip member: the reference's default.
pub const DEFAULT_CHUNK_SIZE: u64 = 4 << 20;

/// What writing an eStargz blob produced, besides the blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EstargzInfo {
    /// sha256 of the uncompressed TOC JSON: the value of the
    /// `containerd.io/snapshot/stargz/toc.digest` annotation.
    pub toc_digest: Digest,
    /// sha256 of the whole decompressed blob (the layer's diffID).
    pub diff_id: Digest,
    /// Bytes of the whole decompressed blob: the value of the
    /// `io.containers.estargz.uncompressed-size` annotation.
    pub uncompressed_size: u64,
    /// Blob offset of the gzip member holding the TOC.
    pub toc_offset: u64,
    /// Bytes of the blob (compressed), footer included. Its digest is left
    /// to the caller, who usually hashes the output anyway.
    pub size: u64,
}

/// The TOC JSON (`stargz.index.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toc {
    pub version: u32,
    #[serde(default)]
    pub entries: Vec<TocEntry>,
}

/// One TOC entry. Fields, their order and their omission when empty follow
/// the reference's `TOCEntry`, so a reader written for it reads this.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TocEntry {
    /// The tar entry's name (a directory's ends with `/`).
    pub name: String,
    /// `dir`, `reg`, `symlink`, `hardlink`, `char`, `block`, `fifo`, or
    /// `chunk` for the second and later pieces of a large file.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    /// UTC RFC 3339, whole seconds; empty for the epoch.
    #[serde(rename = "modtime", default, skip_serializing_if = "String::is_empty")]
    pub mod_time: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub link_name: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mode: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uid: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gid: u64,
    #[serde(rename = "userName", default, skip_serializing_if = "String::is_empty")]
    pub user_name: String,
    #[serde(
        rename = "groupName",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub group_name: String,
    /// Blob offset of the gzip member this content (or chunk) starts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inner_offset: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dev_major: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dev_minor: u64,
    /// sha256 of the whole file (regular files only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chunk_offset: u64,
    /// Set on full-size chunks; 0 means "to the end of the file".
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chunk_size: u64,
    /// sha256 of this chunk's bytes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub chunk_digest: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The kind of a tar entry, as the TOC names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryType {
    Dir,
    Reg,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
}

impl EntryType {
    fn name(self) -> &'static str {
        match self {
            EntryType::Dir => "dir",
            EntryType::Reg => "reg",
            EntryType::Symlink => "symlink",
            EntryType::Hardlink => "hardlink",
            EntryType::Char => "char",
            EntryType::Block => "block",
            EntryType::Fifo => "fifo",
        }
    }
}

/// One tar entry's metadata, for its TOC entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EntryMeta<'a> {
    /// The tar name (a directory's with its trailing `/`).
    pub name: &'a [u8],
    pub kind: EntryType,
    pub mode: u32,
    pub mtime: MTime,
    pub link: &'a [u8],
}

/// Counts the compressed bytes, so member starts are known.
struct Counter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Gzip members back to back, with one deflate state reset between them
/// rather than built anew for every file.
struct Members<W> {
    out: Counter<W>,
    z: flate2::Compress,
    level: u32,
    buf: Vec<u8>,
    /// The open member's CRC32 and length; `None` between members.
    open: Option<flate2::Crc>,
    /// A write failed: the stream is cut somewhere unknown.
    broken: bool,
}

impl<W: Write> Members<W> {
    fn new(out: W, level: u32) -> Self {
        Members {
            out: Counter {
                inner: out,
                count: 0,
            },
            z: flate2::Compress::new(flate2::Compression::new(level), false),
            level,
            buf: Vec::with_capacity(64 * 1024),
            open: None,
            broken: false,
        }
    }

    /// Compresses `data` into the open member, opening one if needed.
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let result = self.write_inner(data);
        self.broken |= result.is_err();
        result
    }

    fn write_inner(&mut self, data: &[u8]) -> io::Result<()> {
        if self.broken {
            return Err(broken());
        }
        if self.open.is_none() {
            self.out.write_all(&gzip_header(self.level))?;
            self.open = Some(flate2::Crc::new());
        }
        if let Some(crc) = self.open.as_mut() {
            crc.update(data);
        }
        self.deflate(data, flate2::FlushCompress::None)
    }

    /// Ends the open member, if any; returns the offset of the next one.
    fn close(&mut self) -> io::Result<u64> {
        let result = self.close_inner();
        self.broken |= result.is_err();
        result
    }

    fn close_inner(&mut self) -> io::Result<u64> {
        if self.broken {
            return Err(broken());
        }
        if let Some(crc) = self.open.take() {
            self.deflate(&[], flate2::FlushCompress::Finish)?;
            self.out.write_all(&crc.sum().to_le_bytes())?;
            self.out.write_all(&crc.amount().to_le_bytes())?;
            self.z.reset();
        }
        Ok(self.out.count)
    }

    fn deflate(&mut self, mut input: &[u8], flush: flate2::FlushCompress) -> io::Result<()> {
        loop {
            self.buf.clear();
            let before = self.z.total_in();
            let status = self
                .z
                .compress_vec(input, &mut self.buf, flush)
                .map_err(io::Error::other)?;
            let consumed = usize::try_from(self.z.total_in() - before).unwrap_or(usize::MAX);
            input = &input[consumed.min(input.len())..];
            self.out.write_all(&self.buf)?;
            let done = match flush {
                flate2::FlushCompress::Finish => status == flate2::Status::StreamEnd,
                _ => input.is_empty() && self.buf.len() < self.buf.capacity(),
            };
            if done {
                return Ok(());
            }
            if consumed == 0 && self.buf.is_empty() {
                return Err(io::Error::other("deflate made no progress"));
            }
        }
    }
}

/// A gzip member header as Go's compress/gzip writes it with no name, no
/// time and OS "unknown"; XFL marks the best (9) and fastest (1) levels.
fn gzip_header(level: u32) -> [u8; 10] {
    let xfl = match level {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// The regular file whose content is being written.
struct OpenFile {
    /// Its `reg` TOC entry.
    entry: usize,
    whole: Hasher,
    /// The TOC entry of the chunk being written and its hasher.
    chunk: Option<(usize, Hasher)>,
}

/// Writes an eStargz blob from a tar stream given piece by piece: the
/// caller says where each entry starts ([`EstargzWriter::begin_entry`]) and
/// which bytes are a regular file's content ([`EstargzWriter::content`]);
/// everything else (headers, padding, the end-of-archive marker) goes
/// through [`EstargzWriter::write_raw`]. The same calls give the same bytes.
pub struct EstargzWriter<W: Write> {
    members: Members<W>,
    chunk_size: u64,
    /// The whole uncompressed stream.
    diff: Hasher,
    toc: Vec<TocEntry>,
    file: Option<OpenFile>,
}

impl<W: Write> EstargzWriter<W> {
    /// `level`: gzip level 0-9, `None` for the default (6).
    pub fn new(out: W, level: Option<u32>) -> io::Result<Self> {
        check_level(Compression::Estargz, level)?;
        Ok(EstargzWriter {
            members: Members::new(out, level.unwrap_or(DEFAULT_GZIP_LEVEL)),
            chunk_size: DEFAULT_CHUNK_SIZE,
            diff: Hasher::new(),
            toc: Vec::new(),
            file: None,
        })
    }

    /// Largest piece of a file per gzip member (at least 1 byte).
    pub fn with_chunk_size(mut self, chunk_size: u64) -> Self {
        self.chunk_size = chunk_size.max(1);
        self
    }

    /// Tar bytes that are not file content: headers, padding, the
    /// end-of-archive marker. They go into the open member.
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.end_file();
        if bytes.is_empty() {
            return Ok(());
        }
        self.diff.update(bytes);
        self.members.write(bytes)
    }

    /// Records the TOC entry of the tar entry whose header was (or is about
    /// to be) written raw. For a regular file, its content follows through
    /// [`EstargzWriter::content`].
    pub(crate) fn begin_entry(&mut self, meta: &EntryMeta<'_>) {
        self.end_file();
        self.toc.push(TocEntry {
            name: String::from_utf8_lossy(meta.name).into_owned(),
            kind: meta.kind.name().to_string(),
            mod_time: format_modtime(meta.mtime),
            link_name: String::from_utf8_lossy(meta.link).into_owned(),
            mode: u64::from(meta.mode),
            ..TocEntry::default()
        });
        if meta.kind == EntryType::Reg {
            self.file = Some(OpenFile {
                entry: self.toc.len() - 1,
                whole: Hasher::new(),
                chunk: None,
            });
        }
    }

    /// A writer for the current regular file's content.
    pub fn content(&mut self) -> FileContent<'_, W> {
        FileContent(self)
    }

    fn write_content(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            return Err(io::Error::other(
                "estargz: file content written outside a regular file",
            ));
        }
        while !bytes.is_empty() {
            let full = match self.file.as_ref().and_then(|f| f.chunk.as_ref()) {
                None => true,
                Some((_, hasher)) => hasher.len() >= self.chunk_size,
            };
            if full {
                self.start_chunk()?;
            }
            let Some(OpenFile {
                whole,
                chunk: Some((_, hasher)),
                ..
            }) = self.file.as_mut()
            else {
                return Err(io::Error::other("estargz: no chunk open"));
            };
            let room = self.chunk_size - hasher.len();
            let n = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            let (now, rest) = bytes.split_at(n);
            hasher.update(now);
            whole.update(now);
            self.diff.update(now);
            self.members.write(now)?;
            bytes = rest;
        }
        Ok(())
    }

    /// Ends the open member and starts the next chunk of the current file
    /// in a new one, at a known offset.
    fn start_chunk(&mut self) -> io::Result<()> {
        let offset = self.members.close()?;
        let chunk_size = self.chunk_size;
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("estargz: no file open"));
        };
        let index = match file.chunk.take() {
            None => file.entry,
            Some((previous, hasher)) => {
                finish_chunk(&mut self.toc[previous], hasher, chunk_size);
                let name = self.toc[file.entry].name.clone();
                self.toc.push(TocEntry {
                    name,
                    kind: "chunk".to_string(),
                    ..TocEntry::default()
                });
                self.toc.len() - 1
            }
        };
        let entry = &mut self.toc[index];
        entry.offset = offset;
        entry.chunk_offset = file.whole.len();
        file.chunk = Some((index, Hasher::new()));
        Ok(())
    }

    /// Completes the TOC entries of the current file, if any.
    fn end_file(&mut self) {
        let Some(file) = self.file.take() else { return };
        if let Some((index, hasher)) = file.chunk {
            finish_chunk(&mut self.toc[index], hasher, self.chunk_size);
        }
        let (digest, size) = file.whole.finish();
        let entry = &mut self.toc[file.entry];
        entry.size = size;
        entry.digest = digest.to_string();
    }

    /// Writes the TOC member and the footer; returns the output and what
    /// the layer's descriptor needs.
    pub fn finish(mut self) -> io::Result<(W, EstargzInfo)> {
        self.end_file();
        let toc_offset = self.members.close()?;
        let toc = Toc {
            version: 1,
            entries: std::mem::take(&mut self.toc),
        };
        let json = toc_json(&toc)?;
        let toc_digest = Digest::of(&json);
        let mut tar = Vec::with_capacity(json.len() + 4 * BLOCK);
        toc_header(json.len() as u64, &mut tar)?;
        tar.extend_from_slice(&json);
        tar.resize(tar.len() + padding(json.len() as u64), 0);
        tar.extend_from_slice(&END_OF_ARCHIVE);
        self.write_raw(&tar)?;
        self.members.close()?;
        let mut counter = self.members.out;
        counter.write_all(&footer(toc_offset))?;
        let (diff_id, uncompressed_size) = self.diff.finish();
        let info = EstargzInfo {
            toc_digest,
            diff_id,
            uncompressed_size,
            toc_offset,
            size: counter.count,
        };
        Ok((counter.inner, info))
    }
}

fn broken() -> io::Error {
    io::Error::other("estargz: an earlier write failed")
}

fn finish_chunk(entry: &mut TocEntry, hasher: Hasher, chunk_size: u64) {
    let (digest, len) = hasher.finish();
    entry.chunk_digest = digest.to_string();
    // The reference records the size of full chunks only; the last one
    // runs to the end of the file.
    if len == chunk_size {
        entry.chunk_size = len;
    }
}

/// [`Write`] for a regular file's content, see [`EstargzWriter::content`].
pub struct FileContent<'a, W: Write>(&'a mut EstargzWriter<W>);

impl<W: Write> Write for FileContent<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_content(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The TOC as the reference encodes it: indented with tabs.
fn toc_json(toc: &Toc) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    toc.serialize(&mut serializer).map_err(io::Error::other)?;
    Ok(out)
}

/// The TOC entry's ustar header, as Go's archive/tar writes the reference's
/// (mode 0, owner root, mtime 0).
fn toc_header(size: u64, out: &mut Vec<u8>) -> io::Result<()> {
    if size >= 1 << 33 {
        return Err(io::Error::other("estargz: TOC too large"));
    }
    let start = out.len();
    out.resize(start + BLOCK, 0);
    let block = &mut out[start..];
    block[..TOC_TAR_NAME.len()].copy_from_slice(TOC_TAR_NAME.as_bytes());
    octal(&mut block[100..108], 0); // mode
    octal(&mut block[108..116], 0); // uid
    octal(&mut block[116..124], 0); // gid
    octal(&mut block[124..136], size);
    octal(&mut block[136..148], 0); // mtime
    block[156] = b'0';
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    octal(&mut block[329..337], 0);
    octal(&mut block[337..345], 0);
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    octal(&mut block[148..155], u64::from(sum));
    block[155] = b' ';
    Ok(())
}

fn octal(field: &mut [u8], mut value: u64) {
    let digits = field.len() - 1;
    for i in (0..digits).rev() {
        field[i] = b'0' + (value & 7) as u8;
        value >>= 3;
    }
    field[digits] = 0;
}

/// The 51-byte footer, built byte by byte: a gzip member with an empty
/// body whose header carries, in an extra subfield `SG`, the offset of the
/// TOC member as `%016xSTARGZ`.
pub fn footer(toc_offset: u64) -> [u8; FOOTER_SIZE] {
    let mut f = [0u8; FOOTER_SIZE];
    // ID1 ID2, CM = deflate, FLG = FEXTRA, MTIME = 0, XFL = 0, OS = unknown.
    f[..10].copy_from_slice(&[0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 255]);
    f[10..12].copy_from_slice(&26u16.to_le_bytes()); // XLEN
    f[12..14].copy_from_slice(b"SG"); // SI1 SI2
    f[14..16].copy_from_slice(&22u16.to_le_bytes()); // LEN
    f[16..38].copy_from_slice(format!("{toc_offset:016x}STARGZ").as_bytes());
    // One final stored block of length 0 (LEN, then NLEN = !LEN).
    f[38..43].copy_from_slice(&[1, 0, 0, 0xff, 0xff]);
    // CRC32 and ISIZE of the empty body are 0: f[43..51] stays zero.
    f
}

/// The TOC offset a footer names, or `None` if it is not an eStargz footer.
pub fn parse_footer(f: &[u8]) -> Option<u64> {
    if f.len() != FOOTER_SIZE
        || f[..4] != [0x1f, 0x8b, 8, 4]
        || f[10..16] != [26, 0, b'S', b'G', 22, 0]
        || &f[32..38] != b"STARGZ"
    {
        return None;
    }
    let hex = std::str::from_utf8(&f[16..32]).ok()?;
    u64::from_str_radix(hex, 16).ok()
}

/// UTC RFC 3339 rounded to the second, as the reference writes `modtime`;
/// empty for the epoch.
fn format_modtime(t: MTime) -> String {
    if t.secs == 0 {
        return String::new();
    }
    let secs = if t.nanos >= 500_000_000 {
        t.secs.saturating_add(1)
    } else {
        t.secs
    };
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// Converts an uncompressed tar stream into an eStargz blob written to
/// `out`. The input's bytes are kept as they are (headers, padding, its
/// end-of-archive marker), as BuildKit's lossless conversion keeps them;
/// a TOC entry already in the input (an eStargz layer decompressed) is
/// dropped, along with anything non-zero after the end-of-archive marker.
pub fn tar_to_estargz<R: Read, W: Write>(
    tar: R,
    out: W,
    level: Option<u32>,
) -> io::Result<EstargzInfo> {
    tar_to_estargz_chunked(tar, out, level, DEFAULT_CHUNK_SIZE)
}

/// [`tar_to_estargz`] with files cut into pieces of `chunk_size` bytes.
pub fn tar_to_estargz_chunked<R: Read, W: Write>(
    tar: R,
    out: W,
    level: Option<u32>,
    chunk_size: u64,
) -> io::Result<EstargzInfo> {
    let mut writer = EstargzWriter::new(out, level)?.with_chunk_size(chunk_size);
    let log = Rc::new(RefCell::new(Log::default()));
    let mut reader = TarReader::new(Recorder {
        inner: BufReader::with_capacity(IO_BUFFER, tar),
        log: Rc::clone(&log),
    });
    // Padding still owed by the entry before, which the reader consumes
    // (and the log records) while reading the next header.
    let mut pending_pad = 0usize;
    let mut drop_pad = false;
    loop {
        log.borrow_mut().start();
        let header = reader.next_entry()?;
        let raw = log.borrow_mut().stop();
        let pad = pending_pad.min(raw.len());
        let (prev_pad, rest) = raw.split_at(pad);
        if !drop_pad {
            writer.write_raw(prev_pad)?;
        }
        let Some(header) = header else {
            let zeros = trailing_zeros(reader.into_inner())?;
            // `rest` is the zero block that ended the archive, if any.
            let kept = match zeros {
                Some(zeros) => rest.len() as u64 + zeros,
                None => 0,
            };
            if let Some(zeros) = zeros {
                writer.write_raw(rest)?;
                write_zeros(&mut writer, zeros)?;
            }
            // A proper end-of-archive marker, so that the TOC entry after
            // it is never read as part of the layer.
            let missing = (END_OF_ARCHIVE.len() as u64).saturating_sub(kept);
            write_zeros(&mut writer, missing)?;
            break;
        };
        if is_toc_name(&header.path) {
            let size = copy_content(&mut reader, &mut io::sink())?;
            pending_pad = padding(size);
            drop_pad = true;
            continue;
        }
        drop_pad = false;
        let kind = match header.kind {
            Kind::File => EntryType::Reg,
            Kind::Dir => EntryType::Dir,
            Kind::Symlink => EntryType::Symlink,
            Kind::Hardlink => EntryType::Hardlink,
            Kind::CharDevice => EntryType::Char,
            Kind::BlockDevice => EntryType::Block,
            Kind::Fifo => EntryType::Fifo,
            Kind::Sparse | Kind::Other(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!(
                        "estargz: tar entry {} has a type eStargz cannot index",
                        String::from_utf8_lossy(&header.path)
                    ),
                ));
            }
        };
        writer.write_raw(rest)?;
        writer.begin_entry(&EntryMeta {
            name: &header.path,
            kind,
            mode: header.mode,
            mtime: header.mtime,
            link: &header.link,
        });
        pending_pad = 0;
        if kind == EntryType::Reg {
            let size = copy_content(&mut reader, &mut writer.content())?;
            pending_pad = padding(size);
        }
    }
    let (_, info) = writer.finish()?;
    Ok(info)
}

fn copy_content<R: BufRead, W: Write>(reader: &mut TarReader<R>, out: &mut W) -> io::Result<u64> {
    reader.copy_content(out).map_err(|e| match e {
        super::tar_read::CopyError::Archive(e) | super::tar_read::CopyError::Output(e) => e,
    })
}

fn write_zeros<W: Write>(writer: &mut EstargzWriter<W>, mut n: u64) -> io::Result<()> {
    while n > 0 {
        let now = n.min(END_OF_ARCHIVE.len() as u64) as usize;
        writer.write_raw(&END_OF_ARCHIVE[..now])?;
        n -= now as u64;
    }
    Ok(())
}

/// Reads `r` to its end: `Some(count)` if every byte is zero.
fn trailing_zeros<R: Read>(mut r: R) -> io::Result<Option<u64>> {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut count, mut all_zero) = (0u64, true);
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        all_zero &= buf[..n].iter().all(|&b| b == 0);
        count += n as u64;
    }
    Ok(all_zero.then_some(count))
}

/// `stargz.index.json` at the root, however spelled (`./`, `/`).
fn is_toc_name(path: &[u8]) -> bool {
    let mut p = path;
    loop {
        if let Some(rest) = p.strip_prefix(b"./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix(b"/") {
            p = rest;
        } else {
            break;
        }
    }
    p == TOC_TAR_NAME.as_bytes()
}

/// The bytes a [`Recorder`] saw consumed while recording.
#[derive(Default)]
struct Log {
    on: bool,
    bytes: Vec<u8>,
}

impl Log {
    fn start(&mut self) {
        self.on = true;
        self.bytes.clear();
    }

    fn stop(&mut self) -> Vec<u8> {
        self.on = false;
        std::mem::take(&mut self.bytes)
    }
}

/// A buffered reader that logs the bytes consumed through it, so the tar
/// headers the tar reader parses can be copied as they were.
struct Recorder<R> {
    inner: R,
    log: Rc<RefCell<Log>>,
}

impl<R: BufRead> Read for Recorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(buf.len());
            buf[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Recorder<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        let mut log = self.log.borrow_mut();
        // The bytes are still in the buffer: fill_buf returns them again
        // without reading.
        if log.on
            && amt > 0
            && let Ok(available) = self.inner.fill_buf()
        {
            log.bytes
                .extend_from_slice(&available[..amt.min(available.len())]);
        }
        self.inner.consume(amt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_is_51_bytes_and_parses_back() {
        let f = footer(0xc46);
        assert_eq!(f.len(), FOOTER_SIZE);
        // BuildKit's footer for a TOC at 0xc46, from the fixtures.
        let expected = "1f8b08040000000000ff1a00534716003030303030303030303030303063343653544152475a010000ffff0000000000000000";
        assert_eq!(hex::encode(f), expected);
        assert_eq!(parse_footer(&f), Some(0xc46));
        assert_eq!(parse_footer(&f[1..]), None);
        // A valid, empty gzip member.
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&f[..])
            .read_to_end(&mut out)
            .unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn modtime_is_rfc3339_rounded_to_the_second() {
        assert_eq!(format_modtime(MTime::new(0, 0)), "");
        assert_eq!(
            format_modtime(MTime::new(1_795_405_134, 400_000_000)),
            "2026-11-23T03:38:54Z"
        );
        assert_eq!(
            format_modtime(MTime::new(1_795_405_134, 500_000_000)),
            "2026-11-23T03:38:55Z"
        );
        assert_eq!(
            format_modtime(MTime::new(951_782_400, 0)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(format_modtime(MTime::new(-1, 0)), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn toc_header_matches_go() {
        let mut block = Vec::new();
        toc_header(6870, &mut block).unwrap();
        assert_eq!(block.len(), BLOCK);
        assert_eq!(&block[124..136], b"00000015326\0");
        assert_eq!(&block[148..156], b"012511\0 ");
        let mut archive = tar::Archive::new(&block[..]);
        let entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.path_bytes().as_ref(), TOC_TAR_NAME.as_bytes());
        assert_eq!(entry.size(), 6870);
    }

    #[test]
    fn chunks_split_large_files_and_record_full_sizes_only() {
        let mut w = EstargzWriter::new(Vec::new(), None)
            .unwrap()
            .with_chunk_size(10);
        w.begin_entry(&EntryMeta {
            name: b"f",
            kind: EntryType::Reg,
            mode: 0o644,
            mtime: MTime::new(1, 0),
            link: b"",
        });
        for b in [[7u8; 5], [7u8; 5], [7u8; 5], [7u8; 5], [7u8; 5]] {
            w.content().write_all(&b).unwrap();
        }
        w.end_file();
        let toc = w.toc.clone();
        assert_eq!(toc.len(), 3);
        assert_eq!(toc[0].kind, "reg");
        assert_eq!(toc[0].size, 25);
        assert_eq!(toc[0].digest, Digest::of(&[7u8; 25]).to_string());
        assert_eq!(
            (toc[0].chunk_offset, toc[0].chunk_size),
            (0, 10),
            "first chunk is full"
        );
        assert_eq!((toc[1].kind.as_str(), toc[1].chunk_offset), ("chunk", 10));
        assert_eq!(toc[1].chunk_size, 10);
        assert_eq!((toc[2].chunk_offset, toc[2].chunk_size), (20, 0));
        assert_eq!(toc[2].chunk_digest, Digest::of(&[7u8; 5]).to_string());
        assert!(toc[0].offset < toc[1].offset && toc[1].offset < toc[2].offset);
    }

    #[test]
    fn content_outside_a_file_is_an_error() {
        let mut w = EstargzWriter::new(Vec::new(), None).unwrap();
        assert!(w.content().write_all(b"x").is_err());
        assert!(EstargzWriter::new(Vec::new(), Some(10)).is_err());
    }

    #[test]
    fn toc_names_are_recognised_however_spelled() {
        assert!(is_toc_name(b"stargz.index.json"));
        assert!(is_toc_name(b"./stargz.index.json"));
        assert!(is_toc_name(b"/stargz.index.json"));
        assert!(!is_toc_name(b"a/stargz.index.json"));
    }
}
