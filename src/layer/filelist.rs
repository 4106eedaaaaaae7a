//! The state list of an entry: one record per path in tar order, saying
//! what the path is (type, size, mode, mtime, link target), what its content
//! hashes to, and which layer of the entry's chain holds it. The next save
//! merge-joins its walk against this list to find what changed without
//! reading a byte of content.
//!
//! Stored as zstd-compressed JSON lines (media type [`MEDIA_TYPE`]). Paths
//! and link targets are bytes: valid UTF-8 is written as a string (`path`,
//! `link`), anything else as hex (`path_hex`, `link_hex`), so any name
//! survives exactly. Lists are written and read as streams: memory stays
//! flat in the number of files.

use std::cmp::Ordering;
use std::io::{self, BufRead, BufReader, Read, Write};

use serde::{Deserialize, Serialize};

use super::pax::MTime;
use super::walk::{Item, ItemKind};
use crate::digest::Digest;

pub const MEDIA_TYPE: &str = "application/vnd.regcache.filelist.v1+json+zstd";

/// zstd level of the list: the list is small next to the layers, and a
/// fixed single-threaded level keeps its bytes (and digest) deterministic.
const LEVEL: i32 = 3;

/// A line longer than this is not one regcache wrote (a path is at most
/// PATH_MAX bytes, 8 KiB in hex): refused instead of buffered.
const MAX_LINE: u64 = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum FileListError {
    #[error("state list: {0}")]
    Io(#[from] io::Error),
    #[error("state list line {line}: {message}")]
    Invalid { line: u64, message: String },
}

/// One path of an entry as the state list records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub item: Item,
    /// sha256 of a regular file's content; `None` for other types.
    pub digest: Option<Digest>,
    /// Index in the entry's chain (base first) of the layer holding it.
    pub layer: u32,
}

#[derive(Serialize, Deserialize)]
struct Line {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path_hex: Option<String>,
    /// `dir`, `file`, `symlink` or `hardlink`.
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    size: u64,
    mode: u32,
    /// Seconds since the epoch and nanoseconds, as `stat` gives them.
    mtime: (i64, u32),
    #[serde(default, skip_serializing_if = "Option::is_none")]
    link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    link_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digest: Option<Digest>,
    layer: u32,
}

fn split_bytes(bytes: &[u8]) -> (Option<String>, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (Some(s.to_string()), None),
        Err(_) => (None, Some(hex::encode(bytes))),
    }
}

impl Line {
    fn from_record(record: &FileRecord) -> Line {
        let item = &record.item;
        let (path, path_hex) = split_bytes(&item.path);
        let (kind, size, link) = match &item.kind {
            ItemKind::Dir => ("dir", 0, None),
            ItemKind::File { size } => ("file", *size, None),
            ItemKind::Symlink { target } => ("symlink", 0, Some(target)),
            ItemKind::Hardlink { target } => ("hardlink", 0, Some(target)),
            // Not a path of the tree: never written by regcache, refused
            // on read.
            ItemKind::Whiteout => ("whiteout", 0, None),
        };
        let (link, link_hex) = link.map_or((None, None), |l| split_bytes(l));
        Line {
            path,
            path_hex,
            kind: kind.to_string(),
            size,
            mode: item.mode,
            mtime: (item.mtime.secs, item.mtime.nanos),
            link,
            link_hex,
            digest: record.digest.clone(),
            layer: record.layer,
        }
    }

    fn into_record(self) -> Result<FileRecord, String> {
        let bytes =
            |text: Option<String>, hex_text: Option<String>, what: &str| match (text, hex_text) {
                (Some(t), None) => Ok(t.into_bytes()),
                (None, Some(h)) => hex::decode(h).map_err(|e| format!("{what}_hex: {e}")),
                _ => Err(format!("exactly one of {what} and {what}_hex is needed")),
            };
        let path = bytes(self.path, self.path_hex, "path")?;
        if path.is_empty() {
            return Err("empty path".into());
        }
        let kind = match self.kind.as_str() {
            "dir" => ItemKind::Dir,
            "file" => ItemKind::File { size: self.size },
            "symlink" => ItemKind::Symlink {
                target: bytes(self.link, self.link_hex, "link")?,
            },
            "hardlink" => ItemKind::Hardlink {
                target: bytes(self.link, self.link_hex, "link")?,
            },
            other => return Err(format!("unknown type {other:?}")),
        };
        Ok(FileRecord {
            item: Item {
                path,
                kind,
                mode: self.mode,
                mtime: MTime::new(self.mtime.0, self.mtime.1),
            },
            digest: self.digest,
            layer: self.layer,
        })
    }
}

/// Writes records, in tar order, as a compressed stream into `W`.
pub struct FileListWriter<W: Write> {
    encoder: zstd::Encoder<'static, W>,
    line: Vec<u8>,
}

/// zstd level of a scratch list (a delta save's draft, read back once and
/// thrown away): its size hardly matters, its compression time does.
const SCRATCH_LEVEL: i32 = -5;

impl<W: Write> FileListWriter<W> {
    pub fn new(out: W) -> io::Result<Self> {
        FileListWriter::with_level(out, LEVEL)
    }

    /// A list only this process reads back, written at a fast level.
    pub fn scratch(out: W) -> io::Result<Self> {
        FileListWriter::with_level(out, SCRATCH_LEVEL)
    }

    fn with_level(out: W, level: i32) -> io::Result<Self> {
        let mut encoder = zstd::Encoder::new(out, level)?;
        encoder.include_checksum(true)?;
        Ok(FileListWriter {
            encoder,
            line: Vec::with_capacity(512),
        })
    }

    pub fn write(&mut self, record: &FileRecord) -> io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, &Line::from_record(record))?;
        self.line.push(b'\n');
        self.encoder.write_all(&self.line)
    }

    pub fn finish(self) -> io::Result<W> {
        self.encoder.finish()
    }
}

/// Reads records back, one line at a time.
pub struct FileListReader<R: Read> {
    lines: BufReader<zstd::Decoder<'static, BufReader<R>>>,
    buf: Vec<u8>,
    line: u64,
}

impl<R: Read> FileListReader<R> {
    pub fn new(input: R) -> io::Result<Self> {
        Ok(FileListReader {
            lines: BufReader::new(zstd::Decoder::new(input)?),
            buf: Vec::with_capacity(512),
            line: 0,
        })
    }

    pub fn next_record(&mut self) -> Result<Option<FileRecord>, FileListError> {
        self.buf.clear();
        let n = (&mut self.lines)
            .take(MAX_LINE)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        let invalid = |message: String| FileListError::Invalid {
            line: self.line,
            message,
        };
        if self.buf.last() != Some(&b'\n') {
            return Err(invalid("line too long or not terminated".into()));
        }
        let line: Line = serde_json::from_slice(&self.buf).map_err(|e| invalid(e.to_string()))?;
        line.into_record().map(Some).map_err(invalid)
    }
}

/// The order of paths in a tar: depth first, names compared by bytes, so
/// `a/z` comes before `a-c` although `/` sorts after `-`.
pub fn tar_order(a: &[u8], b: &[u8]) -> Ordering {
    a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/'))
}

/// What a part's reuse is judged on: everything the walk sees, without
/// reading content (size and mtime stand for the content, as make does).
pub fn same_metadata(a: &Item, b: &Item) -> bool {
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &[u8], kind: ItemKind, layer: u32) -> FileRecord {
        let digest = matches!(kind, ItemKind::File { .. }).then(|| Digest::of(path));
        FileRecord {
            item: Item {
                path: path.to_vec(),
                kind,
                mode: 0o644,
                mtime: MTime::new(-5, 123),
            },
            digest,
            layer,
        }
    }

    #[test]
    fn round_trips_every_type_and_non_utf8_names() {
        let records = vec![
            record(b"dir", ItemKind::Dir, 0),
            record(b"dir/f\xff\nx", ItemKind::File { size: 7 }, 0),
            record(
                b"l",
                ItemKind::Symlink {
                    target: b"../\xfe".to_vec(),
                },
                1,
            ),
            record(
                b"h",
                ItemKind::Hardlink {
                    target: b"dir/f\xff\nx".to_vec(),
                },
                1,
            ),
        ];
        let mut writer = FileListWriter::new(Vec::new()).unwrap();
        for r in &records {
            writer.write(r).unwrap();
        }
        let bytes = writer.finish().unwrap();
        let mut reader = FileListReader::new(&bytes[..]).unwrap();
        let mut back = Vec::new();
        while let Some(r) = reader.next_record().unwrap() {
            back.push(r);
        }
        assert_eq!(back, records);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut enc = zstd::Encoder::new(Vec::new(), 3).unwrap();
        enc.write_all(b"{\"type\":\"file\"}\n").unwrap();
        let bytes = enc.finish().unwrap();
        let mut reader = FileListReader::new(&bytes[..]).unwrap();
        assert!(reader.next_record().is_err());
        assert!(
            FileListReader::new(&b"not zstd"[..])
                .and_then(|mut r| r.next_record().map_err(|e| io::Error::other(e.to_string())))
                .is_err()
        );
    }

    #[test]
    fn tar_order_is_component_wise() {
        assert_eq!(tar_order(b"a/z", b"a-c"), Ordering::Less);
        assert_eq!(tar_order(b"a", b"a/b"), Ordering::Less);
        assert_eq!(tar_order(b"a/b", b"a/b"), Ordering::Equal);
        assert_eq!(tar_order(b"b", b"a/z/z"), Ordering::Greater);
    }
}
