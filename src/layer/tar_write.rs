//! Deterministic PAX tar headers.
//!
//! Every entry gets a PAX extended header carrying its nanosecond `mtime`
//! (plus `path`, `linkpath` or `size` when they do not fit the ustar fields),
//! followed by a ustar header. Ownership is always root with empty names and
//! no atime/ctime are written, so the bytes depend on the tree alone.

use super::pax::{self, MTime};

pub const BLOCK: usize = 512;

/// Largest value an 11-digit octal field holds (8 GiB - 1 for sizes).
const MAX_OCTAL_11: u64 = 0o77_777_777_777;

/// What a tar entry is; link targets are raw bytes, stored as-is.
#[derive(Clone, Copy, Debug)]
pub enum EntryKind<'a> {
    Dir,
    File { size: u64 },
    Symlink { target: &'a [u8] },
    Hardlink { target: &'a [u8] },
}

/// One entry's header data. `path` is relative, `/`-separated, without a
/// trailing slash (one is added for directories).
#[derive(Clone, Copy, Debug)]
pub struct EntryHeader<'a> {
    pub path: &'a [u8],
    pub kind: EntryKind<'a>,
    pub mode: u32,
    pub mtime: MTime,
}

/// Scratch space reused across entries so headers cost no allocation.
#[derive(Default)]
pub struct HeaderEncoder {
    name: Vec<u8>,
    records: Vec<u8>,
}

impl HeaderEncoder {
    /// Appends the PAX header (with its data, padded) and the ustar header
    /// for `entry` to `out`. The entry's content, if any, follows in the
    /// stream, then [`padding`] for its size.
    pub fn encode(&mut self, entry: &EntryHeader<'_>, out: &mut Vec<u8>) {
        self.name.clear();
        self.name.extend_from_slice(entry.path);
        let (typeflag, size, link): (u8, u64, &[u8]) = match entry.kind {
            EntryKind::Dir => {
                self.name.push(b'/');
                (b'5', 0, b"")
            }
            EntryKind::File { size } => (b'0', size, b""),
            EntryKind::Symlink { target } => (b'2', 0, target),
            EntryKind::Hardlink { target } => (b'1', 0, target),
        };
        let name = &self.name[..];
        let split = split_ustar_path(name);

        // Keys in byte order, as Go writes them, so the bytes are canonical.
        self.records.clear();
        if link.len() > 100 {
            pax::push_record(&mut self.records, "linkpath", link);
        }
        pax::push_record(&mut self.records, "mtime", entry.mtime.to_pax().as_bytes());
        if split.is_none() {
            pax::push_record(&mut self.records, "path", name);
        }
        if size > MAX_OCTAL_11 {
            pax::push_record(&mut self.records, "size", size.to_string().as_bytes());
        }

        let pax_header = Ustar {
            name: &pax_header_name(name),
            prefix: b"",
            mode: 0o644,
            size: self.records.len() as u64,
            mtime: 0,
            typeflag: b'x',
            link: b"",
        };
        pax_header.write(out);
        out.extend_from_slice(&self.records);
        out.resize(out.len() + padding(self.records.len() as u64), 0);

        let (prefix, short_name) = match split {
            Some((prefix, short)) => (prefix, short),
            // The real name is in the PAX record; keep a readable prefix of it
            // for tools that ignore PAX.
            None => (&b""[..], &name[..name.len().min(100)]),
        };
        Ustar {
            name: short_name,
            prefix,
            mode: entry.mode & 0o7777,
            size,
            mtime: entry.mtime.secs.clamp(0, MAX_OCTAL_11 as i64) as u64,
            typeflag,
            link: &link[..link.len().min(100)],
        }
        .write(out);
    }
}

/// Zero bytes needed after `size` bytes of content to reach a block boundary.
pub fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// The end-of-archive marker: two zero blocks (no padding to a 10 KiB record,
/// as Go's writer does not pad either).
pub const END_OF_ARCHIVE: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// Splits a name into ustar `prefix` and `name` fields, if it fits them;
/// same rule as Go's archive/tar.
fn split_ustar_path(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= 100 {
        return Some((b"", name));
    }
    let mut limit = name.len().min(156);
    if limit == name.len() && name[limit - 1] == b'/' {
        limit -= 1;
    }
    let slash = name[..limit].iter().rposition(|&b| b == b'/')?;
    let (prefix, rest) = (&name[..slash], &name[slash + 1..]);
    if slash == 0 || rest.is_empty() || rest.len() > 100 || prefix.len() > 155 {
        return None;
    }
    Some((prefix, rest))
}

/// `dir/PaxHeaders.0/file`, cut to 100 bytes: the name Go gives a PAX
/// header, constant so it does not depend on a process id.
fn pax_header_name(name: &[u8]) -> Vec<u8> {
    let trimmed = name.strip_suffix(b"/").unwrap_or(name);
    let (dir, file) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => (&b""[..], trimmed),
    };
    let mut out = Vec::with_capacity(dir.len() + file.len() + 13);
    out.extend_from_slice(dir);
    out.extend_from_slice(b"PaxHeaders.0/");
    out.extend_from_slice(file);
    out.truncate(100);
    out
}

struct Ustar<'a> {
    name: &'a [u8],
    prefix: &'a [u8],
    mode: u32,
    size: u64,
    mtime: u64,
    typeflag: u8,
    link: &'a [u8],
}

impl Ustar<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + BLOCK, 0);
        let block = &mut out[start..];
        block[..self.name.len()].copy_from_slice(self.name);
        octal(&mut block[100..108], u64::from(self.mode));
        octal(&mut block[108..116], 0); // uid
        octal(&mut block[116..124], 0); // gid
        if self.size > MAX_OCTAL_11 {
            // The PAX `size` record is authoritative; base-256 here helps
            // readers that know GNU numbers but not PAX.
            base256(&mut block[124..136], self.size);
        } else {
            octal(&mut block[124..136], self.size);
        }
        octal(&mut block[136..148], self.mtime);
        block[156] = self.typeflag;
        block[157..157 + self.link.len()].copy_from_slice(self.link);
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        // uname and gname stay empty: ownership is not part of a cache.
        octal(&mut block[329..337], 0); // devmajor
        octal(&mut block[337..345], 0); // devminor
        block[345..345 + self.prefix.len()].copy_from_slice(self.prefix);
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        octal(&mut block[148..155], u64::from(sum));
        block[155] = b' ';
    }
}

/// Zero-padded octal digits filling the field but its last byte (a NUL).
fn octal(field: &mut [u8], mut value: u64) {
    let digits = field.len() - 1;
    for i in (0..digits).rev() {
        field[i] = b'0' + (value & 7) as u8;
        value >>= 3;
    }
    field[digits] = 0;
}

/// GNU base-256: high bit set on the first byte, big-endian value after.
fn base256(field: &mut [u8], value: u64) {
    field.fill(0);
    let len = field.len();
    field[len - 8..].copy_from_slice(&value.to_be_bytes());
    field[0] |= 0x80;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(entry: EntryHeader<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        HeaderEncoder::default().encode(&entry, &mut out);
        out
    }

    fn file(path: &[u8], size: u64) -> EntryHeader<'_> {
        EntryHeader {
            path,
            kind: EntryKind::File { size },
            mode: 0o644,
            mtime: MTime::new(1_700_000_000, 123_456_789),
        }
    }

    /// One entry as the tar crate reads it.
    struct Seen {
        path: Vec<u8>,
        mtime: Vec<u8>,
        link: Option<Vec<u8>>,
        size: u64,
        mode: u32,
        uid: u64,
    }

    /// An independent reader (the tar crate) must see what we meant.
    fn read_back(mut bytes: Vec<u8>, content: &[u8]) -> Vec<Seen> {
        bytes.extend_from_slice(content);
        bytes.resize(bytes.len() + padding(content.len() as u64), 0);
        bytes.extend_from_slice(&END_OF_ARCHIVE);
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mtime_record = entry
                .pax_extensions()
                .unwrap()
                .and_then(|mut records| records.find(|r| r.as_ref().unwrap().key() == Ok("mtime")))
                .map(|r| r.unwrap().value_bytes().to_vec())
                .unwrap_or_default();
            out.push(Seen {
                path: entry.path_bytes().to_vec(),
                mtime: mtime_record,
                link: entry.link_name_bytes().map(|l| l.to_vec()),
                size: entry.size(),
                mode: entry.header().mode().unwrap(),
                uid: entry.header().uid().unwrap(),
            });
        }
        out
    }

    #[test]
    fn short_names_use_ustar_fields_and_mtime_is_in_pax() {
        let bytes = encode(file(b"a/b.txt", 5));
        assert_eq!(bytes.len(), 3 * BLOCK);
        let entries = read_back(bytes, b"hello");
        assert_eq!(entries.len(), 1);
        let seen = &entries[0];
        assert_eq!(seen.path, b"a/b.txt");
        assert_eq!(seen.mtime, b"1700000000.123456789");
        assert_eq!((seen.size, seen.mode, seen.uid), (5, 0o644, 0));
    }

    #[test]
    fn names_too_long_for_ustar_go_to_pax_path() {
        let long = vec![b'n'; 180];
        let bytes = encode(file(&long, 0));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains(&format!("path={}", "n".repeat(180))));
        assert_eq!(read_back(bytes, b"")[0].path, long);
    }

    #[test]
    fn names_that_split_use_the_ustar_prefix() {
        let name = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let bytes = encode(file(name.as_bytes(), 0));
        assert!(!String::from_utf8_lossy(&bytes).contains("path="));
        assert_eq!(read_back(bytes, b"")[0].path, name.as_bytes());
    }

    #[test]
    fn long_link_targets_go_to_pax_linkpath() {
        let target = vec![b't'; 150];
        let entry = EntryHeader {
            path: b"link",
            kind: EntryKind::Symlink { target: &target },
            mode: 0o777,
            mtime: MTime::new(1, 0),
        };
        let entries = read_back(encode(entry), b"");
        assert_eq!(entries[0].link.as_deref(), Some(&target[..]));
        assert_eq!(entries[0].mtime, b"1");
    }

    #[test]
    fn directories_get_a_trailing_slash() {
        let entry = EntryHeader {
            path: b"dir",
            kind: EntryKind::Dir,
            mode: 0o755,
            mtime: MTime::new(1, 5),
        };
        let entries = read_back(encode(entry), b"");
        assert_eq!(entries[0].path, b"dir/");
        assert_eq!(entries[0].mtime, b"1.000000005");
    }

    #[test]
    fn huge_sizes_get_a_pax_size_record() {
        let size = MAX_OCTAL_11 + 1;
        let bytes = encode(file(b"big", size));
        assert!(String::from_utf8_lossy(&bytes).contains(&format!("size={size}")));
        // Content is not appended (8 GiB); parse the headers only.
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut entries = archive.entries().unwrap();
        let entry = entries.next().unwrap().unwrap();
        assert_eq!(entry.size(), size);
    }

    #[test]
    fn setuid_and_sticky_bits_are_kept_in_the_header() {
        let mut entry = file(b"x", 0);
        entry.mode = 0o104755;
        assert_eq!(read_back(encode(entry), b"")[0].mode, 0o4755);
    }

    #[test]
    fn pax_header_name_follows_go() {
        assert_eq!(pax_header_name(b"a/b/c"), b"a/b/PaxHeaders.0/c");
        assert_eq!(pax_header_name(b"dir/"), b"PaxHeaders.0/dir");
        assert_eq!(pax_header_name(&[b'x'; 200]).len(), 100);
    }
}
