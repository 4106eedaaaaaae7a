//! eStargz structure, checked against the spec by a parser written for the
//! tests (`common/estargz.rs`, independent of the writer): it is first run
//! on BuildKit's own estargz layers from the fixtures, then on what
//! regcache writes.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::common::estargz::{Expect, check_estargz, footer_toc_offset, members, sha, tar_entries};
use flate2::bufread::MultiGzDecoder;
use serde_json::Value;

use regcache::compression::Compression;
use regcache::layer::estargz::{DEFAULT_CHUNK_SIZE, tar_to_estargz, tar_to_estargz_chunked};
use regcache::layer::{PackOptions, pack_dir};

fn fixture_blobs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/buildkit/local-max-estargz/layout/blobs/sha256")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn buildkit_estargz_layers_pass_the_checks() {
    let dir = fixture_blobs();
    let index = read_json(&dir.join("../../index.json"));
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest = read_json(&dir.join(manifest_digest.trim_start_matches("sha256:")));
    let mut checked = BTreeSet::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        if !checked.insert(digest.to_string()) {
            continue;
        }
        let a = &layer["annotations"];
        let blob = fs::read(dir.join(digest.trim_start_matches("sha256:"))).unwrap();
        assert_eq!(sha(&blob), digest);
        let toc = check_estargz(
            &blob,
            &Expect {
                toc_digest: a["containerd.io/snapshot/stargz/toc.digest"]
                    .as_str()
                    .unwrap(),
                diff_id: a["containerd.io/uncompressed"].as_str().unwrap(),
                uncompressed_size: a["io.containers.estargz.uncompressed-size"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap(),
            },
        );
        assert!(!toc["entries"].as_array().unwrap().is_empty());
    }
    assert_eq!(
        checked.len(),
        7,
        "every distinct estargz layer of the fixture"
    );
}

/// A tree with every kind regcache packs, and a file over the chunk size.
fn build_tree(root: &Path) {
    use std::os::unix::fs::symlink;
    fs::create_dir_all(root.join("src/nested")).unwrap();
    for i in 0..20 {
        let body = format!("module {i}\n").repeat(50 + i * 7);
        fs::write(root.join(format!("src/m{i:02}.rs")), body).unwrap();
    }
    fs::write(root.join("src/nested/empty"), b"").unwrap();
    let big: Vec<u8> = (0..DEFAULT_CHUNK_SIZE as usize * 2 + 1000)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    fs::write(root.join("big.bin"), &big).unwrap();
    symlink("src/m00.rs", root.join("link")).unwrap();
    fs::hard_link(root.join("src/m01.rs"), root.join("hard")).unwrap();
    fs::write(root.join("a <&> b.txt"), b"odd name\n").unwrap();
}

fn pack_estargz(root: &Path, spool: &Path) -> regcache::layer::PackedEntry {
    let opts = PackOptions {
        compression: Compression::Estargz,
        level: Some(1),
        part_size: 1 << 20,
        jobs: 2,
    };
    pack_dir(root, spool, &opts).unwrap()
}

#[test]
fn pack_dir_writes_estargz_layers_that_pass_the_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    build_tree(&root);
    let spool = tmp.path().join("spool");
    fs::create_dir_all(&spool).unwrap();
    let packed = pack_estargz(&root, &spool);
    assert!(packed.layers.len() >= 2, "several parts");
    let mut chunks = 0;
    let mut names = Vec::new();
    for layer in &packed.layers {
        let blob = fs::read(&layer.blob).unwrap();
        assert_eq!(sha(&blob), layer.digest.to_string());
        assert_eq!(blob.len() as u64, layer.size);
        let toc_digest = layer.toc_digest.as_ref().expect("a TOC digest").to_string();
        let toc = check_estargz(
            &blob,
            &Expect {
                toc_digest: &toc_digest,
                diff_id: &layer.diff_id.to_string(),
                uncompressed_size: layer.uncompressed_size,
            },
        );
        for e in toc["entries"].as_array().unwrap() {
            names.push(e["name"].as_str().unwrap().to_string());
            if e["type"] == "chunk" {
                chunks += 1;
                assert_eq!(e["name"], "big.bin");
            }
            if e["name"] == "big.bin" {
                assert!(e["chunkOffset"].as_u64().unwrap_or(0) % DEFAULT_CHUNK_SIZE == 0);
            }
            if e["name"] == "link" {
                assert_eq!(e["linkName"], "src/m00.rs");
            }
            if e["name"] == "src/" {
                assert_eq!(e["type"], "dir");
                assert_eq!(e["mode"], 0o755);
                assert!(e["modtime"].as_str().unwrap().ends_with('Z'));
            }
        }
    }
    assert_eq!(chunks, 2, "big.bin is cut into three chunks");
    for name in [
        "big.bin",
        "link",
        "hard",
        "src/",
        "src/nested/empty",
        "a <&> b.txt",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in a TOC");
    }
}

#[test]
fn pack_dir_estargz_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    build_tree(&root);
    let (s1, s2) = (tmp.path().join("s1"), tmp.path().join("s2"));
    fs::create_dir_all(&s1).unwrap();
    fs::create_dir_all(&s2).unwrap();
    let a = pack_estargz(&root, &s1);
    let b = pack_estargz(&root, &s2);
    let digests = |p: &regcache::layer::PackedEntry| {
        p.layers
            .iter()
            .map(|l| (l.digest.clone(), l.toc_digest.clone(), l.diff_id.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(digests(&a), digests(&b));
}

/// An uncompressed tar of the tree, as regcache packs it.
fn plain_tar(root: &Path, spool: &Path) -> Vec<u8> {
    let opts = PackOptions {
        compression: Compression::Uncompressed,
        level: None,
        part_size: u64::MAX,
        jobs: 1,
    };
    let packed = pack_dir(root, spool, &opts).unwrap();
    assert_eq!(packed.layers.len(), 1);
    fs::read(&packed.layers[0].blob).unwrap()
}

#[test]
fn tar_to_estargz_keeps_the_tar_bytes_and_passes_the_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    build_tree(&root);
    let tar = plain_tar(&root, tmp.path());
    for chunk_size in [DEFAULT_CHUNK_SIZE, 1 << 20, 1000] {
        let mut blob = Vec::new();
        let info = tar_to_estargz_chunked(&tar[..], &mut blob, Some(1), chunk_size).unwrap();
        assert_eq!(info.size, blob.len() as u64);
        let toc = check_estargz(
            &blob,
            &Expect {
                toc_digest: &info.toc_digest.to_string(),
                diff_id: &info.diff_id.to_string(),
                uncompressed_size: info.uncompressed_size,
            },
        );
        assert_eq!(info.toc_offset as usize, footer_toc_offset(&blob));
        let mut whole = Vec::new();
        MultiGzDecoder::new(&blob[..])
            .read_to_end(&mut whole)
            .unwrap();
        assert_eq!(
            &whole[..tar.len()],
            &tar[..],
            "lossless: the input comes first"
        );
        let chunks = toc["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "chunk")
            .count();
        // A file of n bytes has ceil(n / chunk size) chunks, the first
        // being its "reg" entry.
        let expected: u64 = toc["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "reg")
            .map(|e| {
                e["size"]
                    .as_u64()
                    .unwrap_or(0)
                    .div_ceil(chunk_size)
                    .saturating_sub(1)
            })
            .sum();
        assert_eq!(chunks as u64, expected, "chunk size {chunk_size}");
        assert!(expected >= 2);
    }
    let mut again = Vec::new();
    let mut first = Vec::new();
    tar_to_estargz(&tar[..], &mut first, Some(1)).unwrap();
    tar_to_estargz(&tar[..], &mut again, Some(1)).unwrap();
    assert!(first == again, "deterministic");
}

#[test]
fn converting_an_estargz_layer_again_keeps_one_toc() {
    let dir = fixture_blobs();
    // The layer with twenty files, decompressed: its tar, then its TOC.
    let blob =
        fs::read(dir.join("4752cc314685b8c74d43924c7df5d71f9a39dc5352a1ebbcbf0902bd42127634"))
            .unwrap();
    let mut tar = Vec::new();
    MultiGzDecoder::new(&blob[..])
        .read_to_end(&mut tar)
        .unwrap();
    let mut out = Vec::new();
    let info = tar_to_estargz(&tar[..], &mut out, None).unwrap();
    let toc = check_estargz(
        &out,
        &Expect {
            toc_digest: &info.toc_digest.to_string(),
            diff_id: &info.diff_id.to_string(),
            uncompressed_size: info.uncompressed_size,
        },
    );
    // Same listing as BuildKit's TOC, offsets aside.
    let original = {
        let members = members(&blob);
        let toc_member = &members[members.len() - 2];
        let (_, _, json) = tar_entries(&toc_member.data).remove(0);
        serde_json::from_slice::<Value>(&json).unwrap()
    };
    let strip = |toc: &Value| {
        toc["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.as_object_mut().unwrap().remove("offset");
                e
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&toc), strip(&original));
    let mut whole = Vec::new();
    MultiGzDecoder::new(&out[..])
        .read_to_end(&mut whole)
        .unwrap();
    let tocs = whole
        .windows(b"stargz.index.json".len())
        .filter(|w| *w == b"stargz.index.json")
        .count();
    assert_eq!(tocs, 1, "the old TOC is dropped");
}

#[test]
fn a_tar_with_a_toc_entry_inside_is_converted_without_it() {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, body) in [
        ("a.txt", &b"first"[..]),
        ("stargz.index.json", &b"{\"version\":1}"[..]),
        ("b.txt", &b"second"[..]),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        builder.append_data(&mut header, name, body).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut out = Vec::new();
    let info = tar_to_estargz(&tar[..], &mut out, Some(9)).unwrap();
    let toc = check_estargz(
        &out,
        &Expect {
            toc_digest: &info.toc_digest.to_string(),
            diff_id: &info.diff_id.to_string(),
            uncompressed_size: info.uncompressed_size,
        },
    );
    let names: Vec<&str> = toc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.txt", "b.txt"]);
    assert_eq!(toc["entries"][0]["modtime"], "2023-11-14T22:13:20Z");
}

#[test]
fn an_empty_tar_gives_a_valid_estargz() {
    let tar = vec![0u8; 1024];
    let mut out = Vec::new();
    let info = tar_to_estargz(&tar[..], &mut out, None).unwrap();
    let toc = check_estargz(
        &out,
        &Expect {
            toc_digest: &info.toc_digest.to_string(),
            diff_id: &info.diff_id.to_string(),
            uncompressed_size: info.uncompressed_size,
        },
    );
    assert!(toc["entries"].as_array().unwrap().is_empty());
    // A level out of range is refused.
    let err = tar_to_estargz(&tar[..], std::io::sink(), Some(11)).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
}
