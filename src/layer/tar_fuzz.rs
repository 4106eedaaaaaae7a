//! Property tests of the tar reader (see `crate::fuzz` for the harness and
//! `make fuzz`): no panic on forged headers, on random bytes or on mutated
//! valid archives, and a differential test against the tar crate on valid
//! archives written by both the tar crate and this crate's writer.

use std::io::{self, Read};

use proptest::prelude::*;
use proptest::sample::select;

use super::pax::MTime;
use super::tar_read::{Kind, TarReader};
use super::tar_write::{BLOCK, END_OF_ARCHIVE, EntryHeader, EntryKind, HeaderEncoder, padding};
use crate::fuzz::{Bytes, check, mutated};

/// Reads every entry, copying the content of those `copy` picks and
/// skipping the rest (the two ways a restorer leaves an entry), as the
/// restorer does: stop at the first error.
fn drain(bytes: &[u8], copy: &[bool]) {
    let mut reader = TarReader::new(bytes);
    let mut copy = copy.iter().cycle();
    while let Ok(Some(header)) = reader.next_entry() {
        // The restorer sets every entry's mtime; any header value must do.
        let _ = header.mtime.to_system_time();
        assert!(header.mode <= 0o7777, "mode {:o}", header.mode);
        if *copy.next().unwrap_or(&true) {
            let mut content = Vec::new();
            match reader.copy_content(&mut content) {
                Ok(n) => assert_eq!(n, content.len() as u64),
                Err(_) => break,
            }
            assert!(content.len() <= bytes.len());
        }
    }
}

// ---------------------------------------------------------------------------
// Forged headers: random field values under a correct checksum, so the
// reader's number, type, extended-header and PAX paths all get exercised.

/// Numeric field contents: octal of several widths, GNU base-256 (huge,
/// negative, u64::MAX), and junk.
fn number_field(width: usize) -> impl Strategy<Value = Vec<u8>> {
    let octal = (0u64..4096, any::<u64>(), any::<bool>()).prop_map(move |(small, big, pick)| {
        let value = if pick { small } else { big };
        let mut text = format!("{value:0w$o}", w = width - 1).into_bytes();
        text.truncate(width - 1);
        text.push(0);
        text
    });
    let base256 = prop::collection::vec(any::<u8>(), width).prop_map(|mut bytes| {
        bytes[0] |= 0x80;
        bytes
    });
    let max_u64 = Just(width).prop_map(|width| {
        let mut bytes = vec![0u8; width];
        bytes[0] = 0x80;
        bytes[width - 8..].fill(0xff);
        bytes
    });
    prop_oneof![
        12 => octal,
        1 => base256,
        1 => max_u64,
        1 => prop::collection::vec(select(&b" 0178\0x-"[..]), width),
    ]
}

fn pax_records() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        Just(b"18446744073709551615".to_vec()),
        Just(b"18446744073709551616".to_vec()),
        Just(b"-1".to_vec()),
        Just(b"1700000000.123456789123".to_vec()),
        Just(b"-9223372036854775808.5".to_vec()),
        Just(b"9223372036854775807.999999999".to_vec()),
        "[0-9.+-]{0,25}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..20),
    ];
    let key = select(
        &[
            "path",
            "linkpath",
            "size",
            "mtime",
            "GNU.sparse.map",
            "uid",
            "",
        ][..],
    );
    let record = (key, value, 0u8..6).prop_map(|(key, value, damage)| {
        let mut record = pax_record(key, &value);
        match damage {
            0 => record[0] = b'9',
            1 => {
                record.pop();
            }
            2 => record.retain(|&b| b != b'='),
            _ => {}
        }
        record
    });
    prop::collection::vec(record, 0..4).prop_map(|records| records.concat())
}

/// One header block and what follows it, with a valid checksum (or, now
/// and then, a signed-sum one or a wrong one).
fn forged_entry() -> impl Strategy<Value = Vec<u8>> {
    let name = prop_oneof![
        "[a-z/é.]{0,20}".prop_map(String::into_bytes),
        "[a-z/]{95,100}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..100),
    ];
    let typeflag = select(&b"0\x001234567xgLKSDVM?"[..]);
    // POSIX, GNU, and none (V7).
    const MAGICS: [&[u8; 8]; 3] = [b"ustar\x0000", b"ustar  \x00", &[0; 8]];
    let magic = select(&MAGICS[..]);
    let fields = (
        name.clone(),
        number_field(8),
        number_field(12),
        number_field(12),
        typeflag,
        name.clone(),
        magic,
        name,
    );
    let data = prop_oneof![
        3 => pax_records(),
        1 => "[a-z/]{0,300}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..1100),
    ];
    (fields, data, 0u8..10, any::<bool>(), any::<bool>()).prop_map(
        |(
            (name, mode, size, mtime, typeflag, link, magic, prefix),
            data,
            checksum,
            pad,
            honest,
        )| {
            // A size that matches the data keeps the next header in step.
            let size = if honest {
                format!("{:011o}\0", data.len()).into_bytes()
            } else {
                size
            };
            let mut block = [0u8; BLOCK];
            block[..name.len()].copy_from_slice(&name);
            block[100..108].copy_from_slice(&mode);
            block[124..136].copy_from_slice(&size);
            block[136..148].copy_from_slice(&mtime);
            block[156] = typeflag;
            block[157..157 + link.len()].copy_from_slice(&link);
            block[257..265].copy_from_slice(magic);
            let prefix = &prefix[..prefix.len().min(155)];
            block[345..345 + prefix.len()].copy_from_slice(prefix);
            block[148..156].fill(b' ');
            let sum: i64 = match checksum {
                0 => block.iter().map(|&b| i64::from(b as i8)).sum(),
                1 => 12345,
                _ => block.iter().map(|&b| i64::from(b)).sum(),
            };
            let text = format!("{:06o}\0 ", sum.rem_euclid(0o1000000));
            block[148..156].copy_from_slice(text.as_bytes());
            let mut out = block.to_vec();
            out.extend_from_slice(&data);
            if pad {
                out.resize(out.len() + padding(data.len() as u64), 0);
            }
            out
        },
    )
}

#[test]
fn tar_reader_survives_forged_headers() {
    let archive = (
        prop::collection::vec(
            prop_oneof![
                8 => forged_entry(),
                1 => Just(vec![0u8; BLOCK]),
                1 => prop::collection::vec(any::<u8>(), 0..BLOCK * 2),
            ],
            1..6,
        )
        .prop_map(|parts| Bytes(parts.concat())),
        prop::collection::vec(any::<bool>(), 1..4),
    );
    check(
        "tar_reader_survives_forged_headers",
        2000,
        archive,
        |(Bytes(bytes), copy)| {
            drain(&bytes, &copy);
            Ok(())
        },
    );
}

#[test]
fn tar_reader_survives_random_bytes() {
    check(
        "tar_reader_survives_random_bytes",
        1000,
        (
            prop::collection::vec(any::<u8>(), 0..4 * BLOCK).prop_map(Bytes),
            prop::collection::vec(any::<bool>(), 1..4),
        ),
        |(Bytes(bytes), copy)| {
            drain(&bytes, &copy);
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// Valid archives: a random tree, written by this crate's writer or by the
// tar crate in one of its header formats.

#[derive(Clone, Debug)]
enum TreeKind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    Hardlink(String),
}

#[derive(Clone, Debug)]
struct TreeEntry {
    path: String,
    kind: TreeKind,
    mode: u32,
    mtime: MTime,
    /// For the tar crate's archive: carry path, link and mtime in a PAX
    /// header instead of the ustar fields and GNU long-name entries.
    pax: bool,
}

/// Names never hold `\n`: this crate writes it in PAX records, which are
/// split by length, but the tar crate splits PAX records at newlines and
/// would read such a name wrongly. Nor `\0`, which no file name holds.
/// Components are never `.` or `..`, which the tar crate's writer drops or
/// refuses, so both writers are given the same names.
fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9._-]{1,12}",
        2 => "[é☃日本 a-z]{1,8}",
        // Past 100 bytes a name no longer fits the ustar name field.
        1 => "[a-z]{60,110}",
    ]
    .prop_map(|c| {
        if c == "." || c == ".." {
            format!("{c}x")
        } else {
            c
        }
    })
}

fn relative_path() -> impl Strategy<Value = String> {
    prop::collection::vec(component(), 1..5).prop_map(|parts| parts.join("/"))
}

fn mtime() -> impl Strategy<Value = MTime> {
    let secs = prop_oneof![
        4 => 0i64..(1 << 33),
        // Past the 11-digit octal field: PAX only, or base-256 in GNU.
        1 => (1i64 << 33)..(1 << 40),
        1 => -(1i64 << 31)..0,
    ];
    let nanos = prop_oneof![1 => Just(0u32), 2 => 0u32..1_000_000_000];
    (secs, nanos).prop_map(|(s, n)| MTime::new(s, n))
}

fn tree_entry() -> impl Strategy<Value = TreeEntry> {
    let kind = prop_oneof![
        1 => Just(TreeKind::Dir),
        4 => prop_oneof![
            4 => prop::collection::vec(any::<u8>(), 0..600),
            1 => prop::collection::vec(any::<u8>(), 1000..1600),
        ]
        .prop_map(TreeKind::File),
        1 => (any::<bool>(), relative_path())
            .prop_map(|(up, p)| TreeKind::Symlink(if up { format!("../{p}") } else { p })),
        1 => relative_path().prop_map(TreeKind::Hardlink),
    ];
    (relative_path(), kind, 0u32..=0o7777, mtime(), any::<bool>()).prop_map(
        |(path, kind, mode, mtime, pax)| TreeEntry {
            path,
            kind,
            mode,
            mtime,
            pax,
        },
    )
}

fn write_ours(tree: &[TreeEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = HeaderEncoder::default();
    for entry in tree {
        let kind = match &entry.kind {
            TreeKind::Dir => EntryKind::Dir,
            TreeKind::File(content) => EntryKind::File {
                size: content.len() as u64,
            },
            TreeKind::Symlink(target) => EntryKind::Symlink {
                target: target.as_bytes(),
            },
            TreeKind::Hardlink(target) => EntryKind::Hardlink {
                target: target.as_bytes(),
            },
        };
        encoder.encode(
            &EntryHeader {
                path: entry.path.as_bytes(),
                kind,
                mode: entry.mode,
                mtime: entry.mtime,
            },
            &mut out,
        );
        if let TreeKind::File(content) = &entry.kind {
            out.extend_from_slice(content);
            out.resize(out.len() + padding(content.len() as u64), 0);
        }
    }
    out.extend_from_slice(&END_OF_ARCHIVE);
    out
}

/// A PAX record, its length worked out here rather than by `pax.rs`, so
/// the test does not trust the code under test.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let len = (1..=20)
        .map(|digits| body + digits)
        .find(|len| len.to_string().len() == len - body)
        .unwrap();
    [format!("{len} {key}=").as_bytes(), value, b"\n"].concat()
}

#[derive(Clone, Copy, Debug)]
enum Format {
    Gnu,
    Ustar,
    Old,
}

fn write_tar_crate(tree: &[TreeEntry], format: Format) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in tree {
        let mut header = match format {
            Format::Gnu => tar::Header::new_gnu(),
            Format::Ustar => tar::Header::new_ustar(),
            Format::Old => tar::Header::new_old(),
        };
        header.set_mode(entry.mode);
        header.set_mtime(entry.mtime.secs.max(0) as u64);
        let (entry_type, link, content): (_, Option<&str>, &[u8]) = match &entry.kind {
            TreeKind::Dir => (tar::EntryType::Directory, None, b""),
            TreeKind::File(content) => (tar::EntryType::Regular, None, content),
            TreeKind::Symlink(target) => (tar::EntryType::Symlink, Some(target), b""),
            TreeKind::Hardlink(target) => (tar::EntryType::Link, Some(target), b""),
        };
        header.set_entry_type(entry_type);
        header.set_size(content.len() as u64);
        if entry.pax {
            let mut records = pax_record("path", entry.path.as_bytes());
            if let Some(link) = link {
                records.extend(pax_record("linkpath", link.as_bytes()));
            }
            records.extend(pax_record("mtime", entry.mtime.to_pax().as_bytes()));
            let mut pax = tar::Header::new_ustar();
            pax.set_entry_type(tar::EntryType::XHeader);
            pax.set_path("PaxHeaders.0/entry")?;
            pax.set_size(records.len() as u64);
            pax.set_cksum();
            builder.append(&pax, &records[..])?;
            header.set_path("pax-placeholder")?;
            if link.is_some() {
                header.set_link_name("pax-placeholder")?;
            }
            header.set_cksum();
            builder.append(&header, content)?;
        } else if let Some(link) = link {
            builder.append_link(&mut header, &entry.path, link)?;
        } else {
            builder.append_data(&mut header, &entry.path, content)?;
        }
    }
    builder.into_inner()
}

/// One entry as a reader reports it.
#[derive(Debug, PartialEq)]
struct Seen {
    path: Vec<u8>,
    kind: Kind,
    mode: u32,
    link: Vec<u8>,
    content: Vec<u8>,
    mtime_secs: i64,
}

fn read_ours(bytes: &[u8]) -> io::Result<Vec<(Seen, MTime)>> {
    let mut reader = TarReader::new(bytes);
    let mut out = Vec::new();
    while let Some(header) = reader.next_entry()? {
        let mut content = Vec::new();
        reader.copy_content(&mut content).map_err(|e| match e {
            super::tar_read::CopyError::Archive(e) | super::tar_read::CopyError::Output(e) => e,
        })?;
        let seen = Seen {
            path: header.path,
            kind: header.kind,
            mode: header.mode,
            link: header.link,
            content,
            mtime_secs: header.mtime.secs,
        };
        out.push((seen, header.mtime));
    }
    Ok(out)
}

/// Seconds of a PAX time, floored (`-1.25` is in second -2).
fn pax_secs(value: &str) -> i64 {
    let (whole, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: i64 = whole.parse().unwrap();
    if value.starts_with('-') && frac.bytes().any(|b| b != b'0') {
        secs - 1
    } else {
        secs
    }
}

fn read_tar_crate(bytes: &[u8]) -> io::Result<Vec<Seen>> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let pax_mtime = match entry.pax_extensions()? {
            Some(records) => records
                .filter_map(Result::ok)
                .find(|r| r.key() == Ok("mtime"))
                .map(|r| pax_secs(r.value().unwrap())),
            None => None,
        };
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Regular => Kind::File,
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink,
            tar::EntryType::Link => Kind::Hardlink,
            other => Kind::Other(other.as_byte()),
        };
        let mode = header.mode()? & 0o7777;
        let mtime_secs = match pax_mtime {
            Some(secs) => secs,
            None => header.mtime()? as i64,
        };
        let path = entry.path_bytes().into_owned();
        let link = entry
            .link_name_bytes()
            .map(|l| l.into_owned())
            .unwrap_or_default();
        let mut content = Vec::new();
        entry.read_to_end(&mut content)?;
        out.push(Seen {
            path,
            kind,
            mode,
            link,
            content,
            mtime_secs,
        });
    }
    Ok(out)
}

fn expected_kind(kind: &TreeKind) -> Kind {
    match kind {
        TreeKind::Dir => Kind::Dir,
        TreeKind::File(_) => Kind::File,
        TreeKind::Symlink(_) => Kind::Symlink,
        TreeKind::Hardlink(_) => Kind::Hardlink,
    }
}

/// Both readers see the same entries in archives from both writers; on
/// this crate's archives that is also exactly the tree written, with the
/// mtime to the nanosecond.
#[test]
fn tar_reader_agrees_with_the_tar_crate_on_valid_archives() {
    let format = select(&[Format::Gnu, Format::Ustar, Format::Old][..]);
    check(
        "tar_reader_agrees_with_the_tar_crate_on_valid_archives",
        800,
        (prop::collection::vec(tree_entry(), 1..6), format),
        |(tree, format)| {
            let ours_bytes = write_ours(&tree);
            let ours = read_ours(&ours_bytes).expect("our reader reads our archive");
            prop_assert_eq!(ours.len(), tree.len());
            for ((seen, mtime), entry) in ours.iter().zip(&tree) {
                let mut path = entry.path.clone().into_bytes();
                if matches!(entry.kind, TreeKind::Dir) {
                    path.push(b'/');
                }
                prop_assert_eq!(&seen.path, &path);
                prop_assert_eq!(seen.kind, expected_kind(&entry.kind));
                prop_assert_eq!(seen.mode, entry.mode);
                prop_assert_eq!(*mtime, entry.mtime);
                match &entry.kind {
                    TreeKind::File(content) => prop_assert_eq!(&seen.content, content),
                    TreeKind::Symlink(t) | TreeKind::Hardlink(t) => {
                        prop_assert_eq!(&seen.link, t.as_bytes())
                    }
                    TreeKind::Dir => {}
                }
            }
            let theirs = read_tar_crate(&ours_bytes).expect("the tar crate reads our archive");
            let ours: Vec<Seen> = ours.into_iter().map(|(seen, _)| seen).collect();
            prop_assert_eq!(&ours, &theirs);

            let crate_bytes = write_tar_crate(&tree, format).expect("the tar crate writes");
            let ours = read_ours(&crate_bytes).expect("our reader reads the tar crate's archive");
            let theirs = read_tar_crate(&crate_bytes).expect("the tar crate reads its archive");
            let ours: Vec<Seen> = ours.into_iter().map(|(seen, _)| seen).collect();
            prop_assert_eq!(&ours, &theirs);
            prop_assert_eq!(ours.len(), tree.len());
            for (seen, entry) in ours.iter().zip(&tree) {
                prop_assert_eq!(
                    seen.path.strip_suffix(b"/").unwrap_or(&seen.path),
                    entry.path.as_bytes()
                );
            }
            Ok(())
        },
    );
}

/// Mutations of valid archives get past the checksum now and then (a flip
/// in content, a splice of whole headers), which random bytes rarely do.
#[test]
fn tar_reader_survives_mutated_archives() {
    let archive = (prop::collection::vec(tree_entry(), 1..4), any::<bool>())
        .prop_map(|(tree, ours)| {
            if ours {
                write_ours(&tree)
            } else {
                write_tar_crate(&tree, Format::Gnu).unwrap()
            }
        })
        .prop_flat_map(mutated);
    check(
        "tar_reader_survives_mutated_archives",
        1000,
        (archive, prop::collection::vec(any::<bool>(), 1..4)),
        |(Bytes(bytes), copy)| {
            drain(&bytes, &copy);
            Ok(())
        },
    );
}
