//! A small streaming tar reader for untrusted layers.
//!
//! It reads what layers in the wild contain: POSIX ustar and PAX (`path`,
//! `linkpath`, `size`, `mtime` records, split by length so names may hold
//! newlines), GNU headers with `L`/`K` long names and base-256 numbers, and
//! old V7 headers. It only parses: every decision about what an entry may do
//! to the file system belongs to the restorer.

use std::io::{self, BufRead, Write};

use super::pax::{self, MTime};
use super::tar_write::{BLOCK, padding};

/// Extended headers (PAX data, GNU long names) larger than this are refused:
/// real ones are a few hundred bytes, and they are held in memory.
const MAX_EXTENDED_HEADER: u64 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    CharDevice,
    BlockDevice,
    Fifo,
    /// GNU sparse files: content would need a sparse map to place.
    Sparse,
    /// A type this reader does not know; its content is skipped.
    Other(u8),
}

/// One entry's metadata; the content (for files) is read with
/// [`TarReader::copy_content`] before asking for the next entry.
#[derive(Debug)]
pub struct Header {
    /// The raw path bytes, exactly as the archive spells them.
    pub path: Vec<u8>,
    pub link: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    pub mtime: MTime,
    /// Content bytes that follow the header, as declared (untrusted).
    pub size: u64,
    /// The entry used PAX records this reader cannot honour (GNU sparse).
    pub pax_sparse: bool,
}

/// Why copying an entry's content stopped.
#[derive(Debug)]
pub enum CopyError {
    /// The archive is malformed or could not be read.
    Archive(io::Error),
    /// The destination refused the bytes.
    Output(io::Error),
}

pub struct TarReader<R> {
    inner: R,
    /// Content bytes of the current entry not yet consumed.
    remaining: u64,
    /// Zero padding after the current entry's content.
    pad: u64,
    /// Bytes consumed so far, for error messages.
    offset: u64,
    ended: bool,
}

fn corrupt(offset: u64, reason: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed tar at byte {offset}: {reason}"),
    )
}

impl<R: BufRead> TarReader<R> {
    pub fn new(inner: R) -> Self {
        TarReader {
            inner,
            remaining: 0,
            pad: 0,
            offset: 0,
            ended: false,
        }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next entry, after skipping what is left of the current one.
    /// `None` at the end-of-archive marker (or a clean end of input).
    pub fn next_entry(&mut self) -> io::Result<Option<Header>> {
        if self.ended {
            return Ok(None);
        }
        self.skip_rest()?;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax_data: Option<Vec<u8>> = None;
        loop {
            let mut block = [0u8; BLOCK];
            let start = self.offset;
            if !self.read_block(&mut block)? {
                if long_name.is_some() || long_link.is_some() || pax_data.is_some() {
                    return Err(corrupt(start, "archive ends after an extended header"));
                }
                self.ended = true;
                return Ok(None);
            }
            if block.iter().all(|&b| b == 0) {
                self.ended = true;
                return Ok(None);
            }
            check_checksum(&block).map_err(|reason| corrupt(start, reason))?;
            let typeflag = block[156];
            let size = parse_number(&block[124..136])
                .map_err(|r| corrupt(start, format!("size field: {r}")))?;
            let size = u64::try_from(size).map_err(|_| corrupt(start, "negative size"))?;
            match typeflag {
                b'x' | b'g' | b'L' | b'K' => {
                    if size > MAX_EXTENDED_HEADER {
                        return Err(corrupt(start, format!("extended header of {size} bytes")));
                    }
                    let data = self.read_small(size)?;
                    match typeflag {
                        // Global PAX headers are ignored, as Go and containerd do:
                        // they would otherwise rename every later entry.
                        b'g' => {}
                        b'x' => pax_data = Some(data),
                        b'L' => long_name = Some(trim_nuls(data)),
                        _ => long_link = Some(trim_nuls(data)),
                    }
                    continue;
                }
                _ => {}
            }
            return self
                .finish_header(&block, start, size, long_name, long_link, pax_data)
                .map(Some);
        }
    }

    fn finish_header(
        &mut self,
        block: &[u8; BLOCK],
        start: u64,
        mut size: u64,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
        pax_data: Option<Vec<u8>>,
    ) -> io::Result<Header> {
        let posix = &block[257..263] == b"ustar\0";
        let mut path = match long_name {
            Some(name) => name,
            None => {
                let name = field_str(&block[0..100]);
                let prefix = if posix {
                    field_str(&block[345..500])
                } else {
                    &[][..]
                };
                if prefix.is_empty() {
                    name.to_vec()
                } else {
                    [prefix, b"/", name].concat()
                }
            }
        };
        let mut link = long_link.unwrap_or_else(|| field_str(&block[157..257]).to_vec());
        let mode = parse_number(&block[100..108])
            .map_err(|r| corrupt(start, format!("mode field: {r}")))?;
        let secs = parse_number(&block[136..148])
            .map_err(|r| corrupt(start, format!("mtime field: {r}")))?;
        let mut mtime = MTime::new(i64::try_from(secs).unwrap_or(0), 0);
        let mut pax_sparse = false;
        if let Some(data) = &pax_data {
            let records =
                pax::parse_records(data).map_err(|r| corrupt(start, format!("PAX header: {r}")))?;
            for (key, value) in records {
                match key {
                    b"path" => path = value.to_vec(),
                    b"linkpath" => link = value.to_vec(),
                    b"size" => {
                        size = std::str::from_utf8(value)
                            .ok()
                            .and_then(|s| s.parse().ok())
                            .ok_or_else(|| corrupt(start, "PAX size is not a number"))?;
                    }
                    b"mtime" => {
                        mtime = MTime::from_pax(value)
                            .ok_or_else(|| corrupt(start, "PAX mtime is not a time"))?;
                    }
                    _ if key.starts_with(b"GNU.sparse.") => pax_sparse = true,
                    _ => {}
                }
            }
        }
        let typeflag = block[156];
        let kind = match typeflag {
            // Old tars mark directories only by a trailing slash.
            b'0' | 0 | b'7' if path.ends_with(b"/") => Kind::Dir,
            b'0' | 0 | b'7' => Kind::File,
            b'1' => Kind::Hardlink,
            b'2' => Kind::Symlink,
            b'3' => Kind::CharDevice,
            b'4' => Kind::BlockDevice,
            b'5' | b'D' => Kind::Dir,
            b'6' => Kind::Fifo,
            b'S' => Kind::Sparse,
            other => Kind::Other(other),
        };
        // Link, device, directory and FIFO headers carry no data, whatever
        // their size field says (Go's rule, which BuildKit layers follow).
        // Anything else (GNU dump directories, unknown types) has its data
        // skipped.
        let has_data = !matches!(typeflag, b'1' | b'2' | b'3' | b'4' | b'5' | b'6');
        self.remaining = if has_data { size } else { 0 };
        self.pad = padding(self.remaining) as u64;
        Ok(Header {
            path,
            link,
            kind,
            mode: u32::try_from(mode).unwrap_or(0) & 0o7777,
            mtime,
            size: self.remaining,
            pax_sparse,
        })
    }

    /// Copies the current entry's content to `out`, straight from the input
    /// buffer. Fails if the archive ends early; the error says whether the
    /// archive or `out` failed.
    pub fn copy_content<W: Write + ?Sized>(&mut self, out: &mut W) -> Result<u64, CopyError> {
        let mut copied = 0;
        while self.remaining > 0 {
            let available = self.inner.fill_buf().map_err(CopyError::Archive)?;
            if available.is_empty() {
                return Err(CopyError::Archive(corrupt(
                    self.offset,
                    "archive ends inside an entry's content",
                )));
            }
            let n = available
                .len()
                .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
            out.write_all(&available[..n]).map_err(CopyError::Output)?;
            self.inner.consume(n);
            self.remaining -= n as u64;
            self.offset += n as u64;
            copied += n as u64;
        }
        Ok(copied)
    }

    /// Skips the rest of the current entry's content and padding.
    fn skip_content(&mut self) -> io::Result<()> {
        match self.copy_content(&mut io::sink()) {
            Ok(_) => Ok(()),
            Err(CopyError::Archive(e) | CopyError::Output(e)) => Err(e),
        }
    }

    fn skip_rest(&mut self) -> io::Result<()> {
        // A hostile size near u64::MAX must not wrap to a short skip, which
        // would read the entry's content as the next headers; saturated,
        // the skip fails at the end of the input instead.
        self.remaining = self.remaining.saturating_add(std::mem::take(&mut self.pad));
        self.skip_content()
    }

    /// Reads one block; `false` on a clean end of input before it.
    fn read_block(&mut self, block: &mut [u8; BLOCK]) -> io::Result<bool> {
        let mut filled = 0;
        while filled < BLOCK {
            let n = self.inner.read(&mut block[filled..])?;
            if n == 0 {
                if filled == 0 {
                    return Ok(false);
                }
                return Err(corrupt(self.offset, "archive ends inside a header"));
            }
            filled += n;
        }
        self.offset += BLOCK as u64;
        Ok(true)
    }

    fn read_small(&mut self, size: u64) -> io::Result<Vec<u8>> {
        let mut data = Vec::with_capacity(size as usize);
        self.remaining = size;
        match self.copy_content(&mut data) {
            Ok(_) => {}
            Err(CopyError::Archive(e) | CopyError::Output(e)) => return Err(e),
        }
        self.remaining = padding(size) as u64;
        self.skip_content()?;
        Ok(data)
    }
}

/// The field up to its first NUL.
fn field_str(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

fn trim_nuls(mut data: Vec<u8>) -> Vec<u8> {
    while data.last() == Some(&0) {
        data.pop();
    }
    data
}

/// An octal field (leading spaces/NULs allowed) or GNU base-256.
fn parse_number(field: &[u8]) -> Result<i128, &'static str> {
    if let Some(&first) = field.first()
        && first & 0x80 != 0
    {
        if field.len() > 16 {
            return Err("base-256 number too long");
        }
        // Sign-extend from the first byte's remaining 7 bits.
        let negative = first & 0x40 != 0;
        let mut value: i128 = if negative { -1 } else { 0 };
        value = (value << 7) | i128::from(first & 0x7f);
        if negative {
            value |= !0x7f;
        }
        for &b in &field[1..] {
            value = (value << 8) | i128::from(b);
        }
        return Ok(value);
    }
    let text = field_str(field);
    let digits: &[u8] = {
        let start = text.iter().position(|&b| b != b' ').unwrap_or(text.len());
        let text = &text[start..];
        let end = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
        &text[..end]
    };
    let mut value: i128 = 0;
    for &d in digits {
        if !(b'0'..=b'7').contains(&d) {
            return Err("not an octal number");
        }
        value = value
            .checked_mul(8)
            .and_then(|v| v.checked_add(i128::from(d - b'0')))
            .ok_or("number too large")?;
    }
    Ok(value)
}

/// POSIX sums header bytes as unsigned; some old tars summed them signed.
fn check_checksum(block: &[u8; BLOCK]) -> Result<(), &'static str> {
    let stored = parse_number(&block[148..156])?;
    let unsigned: i128 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i128::from(b)
            }
        })
        .sum();
    let signed: i128 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i128::from(b as i8)
            }
        })
        .sum();
    if stored == unsigned || stored == signed {
        Ok(())
    } else {
        Err("header checksum mismatch")
    }
}

#[cfg(test)]
mod tests {
    use super::super::tar_write::{END_OF_ARCHIVE, EntryHeader, EntryKind, HeaderEncoder};
    use super::*;

    fn entries(bytes: &[u8]) -> Vec<(Header, Vec<u8>)> {
        let mut reader = TarReader::new(bytes);
        let mut out = Vec::new();
        while let Some(header) = reader.next_entry().unwrap() {
            let mut content = Vec::new();
            reader.copy_content(&mut content).unwrap();
            out.push((header, content));
        }
        out
    }

    #[test]
    fn reads_what_the_writer_writes_including_newlines_in_names() {
        let mut bytes = Vec::new();
        let mut enc = HeaderEncoder::default();
        let long = format!("{}\nnewline", "x".repeat(150));
        let mtime = MTime::new(1_700_000_000, 42);
        enc.encode(
            &EntryHeader {
                path: long.as_bytes(),
                kind: EntryKind::File { size: 3 },
                mode: 0o640,
                mtime,
            },
            &mut bytes,
        );
        bytes.extend_from_slice(b"abc");
        bytes.resize(bytes.len() + padding(3), 0);
        enc.encode(
            &EntryHeader {
                path: b"l",
                kind: EntryKind::Symlink { target: b"../t" },
                mode: 0o777,
                mtime,
            },
            &mut bytes,
        );
        bytes.extend_from_slice(&END_OF_ARCHIVE);
        let got = entries(&bytes);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0.path, long.as_bytes());
        assert_eq!(
            (got[0].0.kind, got[0].0.mode, got[0].0.mtime),
            (Kind::File, 0o640, mtime)
        );
        assert_eq!(got[0].1, b"abc");
        assert_eq!(
            (got[1].0.kind, &got[1].0.link[..]),
            (Kind::Symlink, &b"../t"[..])
        );
    }

    #[test]
    fn reads_gnu_long_names_from_the_tar_crate() {
        let long = format!("{}/file", "d".repeat(200));
        let link = "t".repeat(300);
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o600);
        header.set_mtime(1234);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, &long, &b"hi"[..]).unwrap();
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder.append_link(&mut header, "s", &link).unwrap();
        let bytes = builder.into_inner().unwrap();
        let got = entries(&bytes);
        assert_eq!(got[0].0.path, long.as_bytes());
        assert_eq!(got[0].0.mtime, MTime::new(1234, 0));
        assert_eq!(got[0].1, b"hi");
        assert_eq!(got[1].0.link, link.as_bytes());
    }

    #[test]
    fn reads_old_v7_headers_with_slash_directories() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_old();
        header.set_size(0);
        header.set_mode(0o755);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, "olddir/", &b""[..])
            .unwrap();
        let mut header = tar::Header::new_old();
        header.set_size(1);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, "olddir/f", &b"x"[..])
            .unwrap();
        let got = entries(&builder.into_inner().unwrap());
        assert_eq!(got[0].0.kind, Kind::Dir);
        assert_eq!(got[1].0.kind, Kind::File);
        assert_eq!(got[1].1, b"x");
    }

    #[test]
    fn corrupt_checksum_and_truncation_are_errors() {
        let mut bytes = Vec::new();
        HeaderEncoder::default().encode(
            &EntryHeader {
                path: b"f",
                kind: EntryKind::File { size: 600 },
                mode: 0o644,
                mtime: MTime::default(),
            },
            &mut bytes,
        );
        let mut truncated = bytes.clone();
        truncated.extend_from_slice(&[1; 100]);
        let mut reader = TarReader::new(&truncated[..]);
        reader.next_entry().unwrap();
        assert!(matches!(
            reader.copy_content(&mut io::sink()),
            Err(CopyError::Archive(_))
        ));

        let mut flipped = bytes;
        let last_header = flipped.len() - BLOCK;
        flipped[last_header] ^= 1;
        let err = TarReader::new(&flipped[..])
            .next_entry()
            .expect_err("bad checksum");
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    /// Found by `tar_fuzz`: skipping an entry whose base-256 size is
    /// u64::MAX overflowed (a panic in debug, a zero-byte skip in release).
    #[test]
    fn skipping_an_entry_of_the_largest_size_is_an_error() {
        let mut block = [0u8; BLOCK];
        block[0] = b'f';
        block[124] = 0x80;
        block[128..136].fill(0xff);
        block[156] = b'0';
        block[257..265].copy_from_slice(b"ustar\x0000");
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let mut bytes = block.to_vec();
        bytes.extend_from_slice(&[7; BLOCK]);
        let mut reader = TarReader::new(&bytes[..]);
        assert_eq!(reader.next_entry().unwrap().unwrap().path, b"f");
        let err = reader.next_entry().expect_err("content runs past the end");
        assert!(err.to_string().contains("ends inside"), "{err}");
    }

    #[test]
    fn base256_numbers_parse() {
        let mut field = [0u8; 12];
        field[0] = 0x80;
        field[4..].copy_from_slice(&(1u64 << 40).to_be_bytes());
        assert_eq!(parse_number(&field), Ok(1 << 40));
        let negative = [0xff; 12];
        assert_eq!(parse_number(&negative), Ok(-1));
        assert_eq!(parse_number(b"  0755 \0"), Ok(0o755));
        assert!(parse_number(b"0789\0").is_err());
    }
}
