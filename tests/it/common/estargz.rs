//! An eStargz reader written from the spec, independent of regcache's
//! writer, shared by the tests that check what regcache writes.
//!
//! What `check_estargz` checks: the blob is gzip members back to back, the
//! last the 51-byte footer naming the TOC member's offset; that member
//! decompresses to a tar whose one entry is `stargz.index.json`, whose
//! sha256 is the toc.digest annotation; every file (and chunk) `offset` is
//! the start of a member that decompresses to that content, with the
//! recorded digests; the TOC lists the tar's entries in order; the whole
//! blob decompresses to the diffID and the uncompressed size.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use flate2::bufread::{GzDecoder, MultiGzDecoder};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

pub fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// One gzip member: where it starts, its compressed length, its content.
pub struct Member {
    pub offset: usize,
    pub len: usize,
    pub data: Vec<u8>,
}

/// Decompresses the single gzip member at the start of `bytes`.
pub fn one_member(bytes: &[u8]) -> (usize, Vec<u8>) {
    let mut decoder = GzDecoder::new(bytes);
    let mut data = Vec::new();
    decoder.read_to_end(&mut data).expect("a gzip member");
    let rest = decoder.into_inner();
    (bytes.len() - rest.len(), data)
}

pub fn members(blob: &[u8]) -> Vec<Member> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < blob.len() {
        let (len, data) = one_member(&blob[offset..]);
        assert!(len > 0);
        out.push(Member { offset, len, data });
        offset += len;
    }
    out
}

/// The footer, read by the spec: gzip header with FEXTRA, XLEN 26, subfield
/// `SG` of 22 bytes `%016xSTARGZ`, an empty body.
pub fn footer_toc_offset(blob: &[u8]) -> usize {
    assert!(blob.len() >= 51);
    let f = &blob[blob.len() - 51..];
    assert_eq!(&f[..3], &[0x1f, 0x8b, 8], "gzip magic and deflate");
    assert_eq!(f[3] & 4, 4, "FEXTRA set");
    assert_eq!(u16::from_le_bytes([f[10], f[11]]), 26, "XLEN");
    assert_eq!(&f[12..14], b"SG", "subfield id");
    assert_eq!(u16::from_le_bytes([f[14], f[15]]), 22, "subfield length");
    assert_eq!(&f[32..38], b"STARGZ");
    let (len, data) = one_member(f);
    assert_eq!(len, 51, "the footer is one whole gzip member");
    assert!(data.is_empty(), "the footer's body is empty");
    usize::from_str_radix(std::str::from_utf8(&f[16..32]).unwrap(), 16).unwrap()
}

/// Every entry of a tar (stopping at its end marker): name, type, content.
pub fn tar_entries(tar: &[u8]) -> Vec<(String, u8, Vec<u8>)> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        let kind = entry.header().entry_type().as_byte();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.push((name, kind, data));
    }
    out
}

pub struct Expect<'a> {
    pub toc_digest: &'a str,
    pub diff_id: &'a str,
    pub uncompressed_size: u64,
}

/// Checks everything the module doc lists; returns the TOC.
pub fn check_estargz(blob: &[u8], expect: &Expect<'_>) -> Value {
    let members = members(blob);
    let toc_offset = footer_toc_offset(blob);
    let n = members.len();
    assert!(n >= 2);
    assert_eq!(members[n - 1].offset, blob.len() - 51, "footer last");
    let toc_member = &members[n - 2];
    assert_eq!(toc_member.offset, toc_offset, "footer names the TOC member");
    assert_eq!(toc_member.offset + toc_member.len, blob.len() - 51);

    // The TOC member: a tar with the one entry stargz.index.json.
    let toc_tar = tar_entries(&toc_member.data);
    assert_eq!(toc_tar.len(), 1);
    let (name, kind, json) = &toc_tar[0];
    assert_eq!(name, "stargz.index.json");
    assert_eq!(*kind, b'0');
    assert_eq!(sha(json), expect.toc_digest, "TOC digest");
    let toc: Value = serde_json::from_slice(json).unwrap();
    assert_eq!(toc["version"], 1);

    // The whole blob: the diffID and the size.
    let mut whole = Vec::new();
    MultiGzDecoder::new(blob).read_to_end(&mut whole).unwrap();
    assert_eq!(sha(&whole), expect.diff_id, "diffID");
    assert_eq!(whole.len() as u64, expect.uncompressed_size);
    let layer = tar_entries(&whole);
    assert!(
        layer.iter().all(|(n, _, _)| n != "stargz.index.json"),
        "the TOC comes after the layer's end marker"
    );

    // Every TOC entry against the tar, in order; every offset a member
    // start whose content is the file's (chunk's) bytes.
    let starts: BTreeMap<usize, &Member> = members.iter().map(|m| (m.offset, m)).collect();
    let entries = toc["entries"].as_array().unwrap();
    let mut tar_iter = layer.iter();
    let mut current: Option<&(String, u8, Vec<u8>)> = None;
    let mut offsets = BTreeSet::new();
    for e in entries {
        let kind = e["type"].as_str().unwrap();
        if kind != "chunk" {
            let t = tar_iter.next().expect("a tar entry for each TOC entry");
            assert_eq!(e["name"].as_str().unwrap(), t.0, "TOC order");
            let expected_kind = match t.1 {
                b'0' | 0 => "reg",
                b'5' => "dir",
                b'2' => "symlink",
                b'1' => "hardlink",
                other => panic!("unexpected tar type {other}"),
            };
            assert_eq!(kind, expected_kind, "{}", t.0);
            current = Some(t);
        }
        let Some((name, _, content)) = current else {
            panic!("chunk before any file")
        };
        if kind == "reg" {
            assert_eq!(e["size"].as_u64().unwrap_or(0), content.len() as u64);
            assert_eq!(e["digest"].as_str().unwrap(), sha(content), "{name}");
        }
        if (kind == "reg" && !content.is_empty()) || kind == "chunk" {
            let offset = e["offset"].as_u64().unwrap() as usize;
            assert!(offsets.insert(offset), "{name}: offset used twice");
            let member = starts
                .get(&offset)
                .unwrap_or_else(|| panic!("{name}: offset {offset} is not a member start"));
            let from = e["chunkOffset"].as_u64().unwrap_or(0) as usize;
            let size = match e["chunkSize"].as_u64().unwrap_or(0) as usize {
                0 => content.len() - from,
                n => n,
            };
            let chunk = &content[from..from + size];
            assert_eq!(&member.data[..size], chunk, "{name} at {from}");
            assert_eq!(e["chunkDigest"].as_str().unwrap(), sha(chunk), "{name}");
        }
    }
    assert!(tar_iter.next().is_none(), "every tar entry is in the TOC");
    toc
}
