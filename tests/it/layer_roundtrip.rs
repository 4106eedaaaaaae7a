//! Pack a tree, restore it, and compare every piece of metadata a cache
//! relies on; plus determinism, splitting and damaged blobs, all through the
//! public API.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use regcache::compression::Compression;
use regcache::layer::{
    EntryRestorer, LayerSource, PackOptions, PackedEntry, UnpackError, pack_dir,
};

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(Vec<u8>),
}

#[derive(Debug, PartialEq, Eq)]
struct Snap {
    kind: Kind,
    mode: u32,
    mtime: (i64, i64),
    /// First path (in sorted order) sharing this inode: hard link groups.
    link_group: Option<String>,
}

/// Everything under `root` (not root itself), by relative path.
fn snapshot(root: &Path) -> BTreeMap<String, Snap> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), String> = BTreeMap::new();
    let mut paths = Vec::new();
    collect(root, &mut paths);
    paths.sort();
    for path in paths {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let meta = fs::symlink_metadata(&path).unwrap();
        let kind = if meta.is_dir() {
            Kind::Dir
        } else if meta.file_type().is_symlink() {
            Kind::Symlink(
                fs::read_link(&path)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            )
        } else {
            Kind::File(fs::read(&path).unwrap())
        };
        let link_group = (meta.is_file() && meta.nlink() > 1).then(|| {
            inodes
                .entry((meta.dev(), meta.ino()))
                .or_insert_with(|| rel.clone())
                .clone()
        });
        let mode = if meta.file_type().is_symlink() {
            0
        } else {
            meta.mode() & 0o7777
        };
        out.insert(
            rel,
            Snap {
                kind,
                mode,
                mtime: (meta.mtime(), meta.mtime_nsec()),
                link_group,
            },
        );
    }
    out
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push(path.clone());
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            collect(&path, out);
        }
    }
}

fn set_mtime(path: &Path, secs: i64, nanos: u32) {
    filetime::set_symlink_file_times(
        path,
        FileTime::from_unix_time(secs, nanos),
        FileTime::from_unix_time(secs, nanos),
    )
    .unwrap();
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A tree with every kind of metadata a restore must keep.
fn build_tree(root: &Path) {
    let write = |rel: &str, data: &[u8], mode: u32| {
        let path = root.join(rel);
        fs::write(&path, data).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    };
    fs::create_dir_all(root.join("src/nested/deeper")).unwrap();
    fs::create_dir(root.join("empty")).unwrap();
    fs::create_dir(root.join("private")).unwrap();
    write("src/main.rs", b"fn main() {}\n", 0o644);
    write("src/nested/secret", b"s", 0o600);
    write("src/nested/deeper/tool.sh", b"#!/bin/sh\necho hi\n", 0o755);
    write("readonly.txt", b"do not touch", 0o444);
    write("setuid-bin", b"\x7fELF", 0o4755);
    write("big.bin", &pseudo_random(5 << 20, 7), 0o644);
    write("unicode-ü-名前-🦀.txt", "ünïcödé".as_bytes(), 0o644);
    write("private/key", b"k", 0o600);
    // A name longer than ustar's 100 bytes, and a path longer than 255.
    write(&"n".repeat(150), b"long name", 0o644);
    let deep: PathBuf = (0..6).map(|i| format!("{i}{}", "d".repeat(60))).collect();
    fs::create_dir_all(root.join(&deep)).unwrap();
    fs::write(root.join(&deep).join("leaf.txt"), b"deep leaf").unwrap();
    assert!(deep.as_os_str().len() > 255);
    // Names need not be UTF-8, and may hold newlines (PAX records are split
    // by length, so a long one survives the PAX path record too).
    fs::write(
        root.join(std::ffi::OsStr::from_bytes(b"bad-\xff-name")),
        b"latin1",
    )
    .unwrap();
    fs::write(root.join("line\nbreak"), b"nl").unwrap();
    fs::write(
        root.join(format!("{}\nnewline-in-a-long-name", "x".repeat(120))),
        b"pax nl",
    )
    .unwrap();
    // Hard links: three names of one file.
    write("hl-a", b"shared inode", 0o640);
    fs::hard_link(root.join("hl-a"), root.join("hl-b")).unwrap();
    fs::hard_link(root.join("hl-a"), root.join("src/hl-c")).unwrap();
    symlink("src/main.rs", root.join("link-to-main")).unwrap();
    symlink("../../nowhere/at/all", root.join("dangling")).unwrap();
    // Nanosecond mtimes everywhere, directories last (writing bumps them).
    let mut n = 0;
    let mut paths = Vec::new();
    collect(root, &mut paths);
    paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for path in paths {
        n += 1;
        set_mtime(&path, 1_700_000_000 + n, 123_456_789 + n as u32);
    }
    fs::set_permissions(root.join("private"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(root.join("src/nested"), fs::Permissions::from_mode(0o2750)).unwrap();
}

fn restore(
    entry: &PackedEntry,
    target: &Path,
    compression: Compression,
) -> Result<regcache::layer::EntryStats, UnpackError> {
    let mut restorer = EntryRestorer::new(target)?;
    for layer in &entry.layers {
        restorer.apply_layer(LayerSource {
            reader: fs::File::open(&layer.blob).unwrap(),
            digest: layer.digest.clone(),
            size: layer.size,
            compression,
            diff_id: Some(layer.diff_id.clone()),
            max_uncompressed: Some(layer.uncompressed_size),
        })?;
    }
    restorer.finish()
}

fn opts(compression: Compression, jobs: usize) -> PackOptions {
    PackOptions {
        compression,
        jobs,
        ..PackOptions::default()
    }
}

/// The source tree as a restore should reproduce it: setuid/setgid dropped.
fn expected(source: &Path) -> BTreeMap<String, Snap> {
    let mut snap = snapshot(source);
    for s in snap.values_mut() {
        s.mode &= 0o1777;
    }
    snap
}

#[test]
fn round_trip_keeps_every_kind_of_metadata() {
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    let want = expected(src.path());
    assert_eq!(
        want["setuid-bin"].mode, 0o755,
        "setuid bit is dropped on restore"
    );
    assert_eq!(
        want["src/nested"].mode, 0o750,
        "setgid bit is dropped on restore"
    );

    for compression in [
        Compression::Gzip,
        Compression::Estargz,
        Compression::Zstd,
        Compression::Uncompressed,
    ] {
        let spool = tempfile::tempdir().unwrap();
        let packed = pack_dir(src.path(), spool.path(), &opts(compression, 2)).unwrap();
        assert_eq!(packed.stats.hardlinks, 2);
        assert_eq!(packed.stats.symlinks, 2);
        let dst = tempfile::tempdir().unwrap();
        let target = dst.path().join("restored");
        let stats = restore(&packed, &target, compression).unwrap();
        let got = snapshot(&target);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{compression}"
        );
        for (path, snap) in &want {
            assert_eq!(&got[path], snap, "{compression}: {path}");
        }
        assert_eq!(stats.files, packed.stats.files);
        assert_eq!(stats.dirs, packed.stats.dirs);
        assert_eq!(stats.bytes, packed.stats.bytes);
        assert_eq!(stats.hardlinks, 2);
    }
}

#[test]
fn same_tree_gives_same_digests_whatever_the_jobs() {
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    for compression in [Compression::Gzip, Compression::Estargz, Compression::Zstd] {
        let digests = |jobs: usize, part_size: u64| {
            let spool = tempfile::tempdir().unwrap();
            let options = PackOptions {
                part_size,
                ..opts(compression, jobs)
            };
            let packed = pack_dir(src.path(), spool.path(), &options).unwrap();
            let blobs: Vec<Vec<u8>> = packed
                .layers
                .iter()
                .map(|l| fs::read(&l.blob).unwrap())
                .collect();
            let ids: Vec<_> = packed
                .layers
                .iter()
                .map(|l| (l.digest.clone(), l.diff_id.clone(), l.size))
                .collect();
            (ids, blobs)
        };
        let one = digests(1, 8 * 1024);
        assert!(one.0.len() > 2, "the small part size should split the tree");
        assert_eq!(one, digests(4, 8 * 1024), "{compression}: jobs=1 vs jobs=4");
        assert_eq!(one, digests(1, 8 * 1024), "{compression}: packing twice");
        let whole = digests(1, u64::MAX);
        assert_eq!(
            whole,
            digests(3, u64::MAX),
            "{compression}: one part, many zstd workers"
        );
        assert_eq!(whole.0.len(), 1);
    }
}

#[test]
fn a_small_part_size_gives_several_layers_that_restore_the_tree() {
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    let spool = tempfile::tempdir().unwrap();
    let options = PackOptions {
        part_size: 16 * 1024,
        ..opts(Compression::Zstd, 3)
    };
    let packed = pack_dir(src.path(), spool.path(), &options).unwrap();
    assert!(
        packed.layers.len() >= 3,
        "got {} layers",
        packed.layers.len()
    );
    for layer in &packed.layers {
        assert_eq!(fs::metadata(&layer.blob).unwrap().len(), layer.size);
    }
    let dst = tempfile::tempdir().unwrap();
    restore(&packed, dst.path(), Compression::Zstd).unwrap();
    assert_eq!(snapshot(dst.path()), expected(src.path()));
}

#[test]
fn gzip_levels_change_the_blob_but_not_the_tar() {
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    let pack = |level| {
        let spool = tempfile::tempdir().unwrap();
        let options = PackOptions {
            level,
            ..opts(Compression::Gzip, 2)
        };
        let packed = pack_dir(src.path(), spool.path(), &options).unwrap();
        (spool, packed)
    };
    let (_s1, fast) = pack(Some(1));
    let (_s9, best) = pack(Some(9));
    assert_ne!(fast.layers[0].digest, best.layers[0].digest);
    assert_eq!(fast.layers[0].diff_id, best.layers[0].diff_id);
    let dst = tempfile::tempdir().unwrap();
    restore(&best, dst.path(), Compression::Gzip).unwrap();
    assert_eq!(snapshot(dst.path()), expected(src.path()));
}

#[test]
fn a_flipped_byte_is_a_digest_error_and_the_target_is_untouched() {
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    let spool = tempfile::tempdir().unwrap();
    let packed = pack_dir(
        src.path(),
        spool.path(),
        &opts(Compression::Uncompressed, 1),
    )
    .unwrap();
    let layer = &packed.layers[0];
    let mut blob = fs::read(&layer.blob).unwrap();
    // Inside the big file's content: the tar still parses, only the digest
    // can tell.
    let at = blob.len() / 2;
    blob[at] ^= 0x01;

    let dst = tempfile::tempdir().unwrap();
    fs::write(dst.path().join("big.bin"), b"old content").unwrap();
    fs::write(dst.path().join("mine.txt"), b"unrelated").unwrap();
    let before = snapshot(dst.path());
    let mut restorer = EntryRestorer::new(dst.path()).unwrap();
    let err = restorer
        .apply_layer(LayerSource {
            reader: &blob[..],
            digest: layer.digest.clone(),
            size: layer.size,
            compression: Compression::Uncompressed,
            diff_id: None,
            max_uncompressed: None,
        })
        .unwrap_err();
    assert!(err.to_string().contains("digest"), "{err}");
    assert!(
        err.to_string().contains(&layer.digest.to_string()),
        "names the blob: {err}"
    );
    restorer.finish().unwrap();
    assert_eq!(
        snapshot(dst.path()),
        before,
        "target must be untouched, with no temporaries left"
    );
}

#[test]
fn a_flipped_byte_in_a_compressed_blob_is_a_digest_error() {
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    for compression in [Compression::Gzip, Compression::Zstd] {
        let spool = tempfile::tempdir().unwrap();
        let packed = pack_dir(src.path(), spool.path(), &opts(compression, 1)).unwrap();
        let layer = &packed.layers[0];
        let mut blob = fs::read(&layer.blob).unwrap();
        let at = blob.len() / 3;
        blob[at] ^= 0x10;
        let dst = tempfile::tempdir().unwrap();
        let mut restorer = EntryRestorer::new(dst.path()).unwrap();
        let err = restorer
            .apply_layer(LayerSource {
                reader: &blob[..],
                digest: layer.digest.clone(),
                size: layer.size,
                compression,
                diff_id: Some(layer.diff_id.clone()),
                max_uncompressed: Some(layer.uncompressed_size),
            })
            .unwrap_err();
        assert!(err.to_string().contains("digest"), "{compression}: {err}");
        assert_eq!(
            fs::read_dir(dst.path()).unwrap().count(),
            0,
            "{compression}: nothing restored"
        );
    }
}

#[test]
fn restoring_over_an_existing_tree_overwrites_and_keeps_unrelated_files() {
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    let spool = tempfile::tempdir().unwrap();
    let packed = pack_dir(src.path(), spool.path(), &opts(Compression::Zstd, 2)).unwrap();

    let dst = tempfile::tempdir().unwrap();
    fs::create_dir_all(dst.path().join("src")).unwrap();
    fs::write(
        dst.path().join("src/main.rs"),
        b"stale and much longer than the cached file",
    )
    .unwrap();
    fs::write(dst.path().join("src/untracked.rs"), b"keep me").unwrap();
    fs::write(dst.path().join("readonly.txt"), b"old").unwrap();
    fs::set_permissions(
        dst.path().join("readonly.txt"),
        fs::Permissions::from_mode(0o444),
    )
    .unwrap();
    restore(&packed, dst.path(), Compression::Zstd).unwrap();
    assert_eq!(
        fs::read(dst.path().join("src/main.rs")).unwrap(),
        b"fn main() {}\n"
    );
    assert_eq!(
        fs::read(dst.path().join("readonly.txt")).unwrap(),
        b"do not touch"
    );
    assert_eq!(
        fs::read(dst.path().join("src/untracked.rs")).unwrap(),
        b"keep me"
    );

    // And a second restore over the first (hard links onto themselves,
    // read-only files and directories) still gives the same tree.
    restore(&packed, dst.path(), Compression::Zstd).unwrap();
    let mut got = snapshot(dst.path());
    assert!(got.remove("src/untracked.rs").is_some());
    let want = expected(src.path());
    for (path, snap) in &want {
        assert_eq!(&got[path], snap, "{path}");
    }
}

#[test]
fn an_empty_directory_packs_to_one_empty_layer() {
    let src = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let packed = pack_dir(src.path(), spool.path(), &opts(Compression::Gzip, 2)).unwrap();
    assert_eq!(packed.layers.len(), 1);
    assert_eq!(packed.layers[0].uncompressed_size, 1024);
    let dst = tempfile::tempdir().unwrap();
    let target = dst.path().join("a/b/c");
    let stats = restore(&packed, &target, Compression::Gzip).unwrap();
    assert!(target.is_dir());
    assert_eq!(stats, regcache::layer::EntryStats::default());
}

#[test]
fn the_root_may_be_a_symlink_to_a_directory_but_not_a_file() {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir(src.path().join("real")).unwrap();
    fs::write(src.path().join("real/f"), "x").unwrap();
    symlink("real", src.path().join("via-link")).unwrap();
    let spool = tempfile::tempdir().unwrap();
    let packed = pack_dir(
        &src.path().join("via-link"),
        spool.path(),
        &opts(Compression::Gzip, 1),
    )
    .unwrap();
    assert_eq!(packed.stats.files, 1);

    let dst = tempfile::tempdir().unwrap();
    fs::create_dir(dst.path().join("real")).unwrap();
    symlink("real", dst.path().join("via-link")).unwrap();
    restore(&packed, &dst.path().join("via-link"), Compression::Gzip).unwrap();
    assert_eq!(fs::read(dst.path().join("real/f")).unwrap(), b"x");

    let err = pack_dir(
        &src.path().join("real/f"),
        spool.path(),
        &opts(Compression::Gzip, 1),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
    assert!(EntryRestorer::new(&dst.path().join("real/f")).is_err());
}

/// GNU tar, an independent implementation, reads our layers the same way.
#[test]
fn gnu_tar_extracts_our_layers_identically() {
    // The comparison is the point of this test: no tar, no pass.
    let version = std::process::Command::new("tar").arg("--version").output();
    assert!(
        version.is_ok_and(|o| o.status.success()),
        "GNU tar is required (make test installs it)"
    );
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    let spool = tempfile::tempdir().unwrap();
    let packed = pack_dir(
        src.path(),
        spool.path(),
        &opts(Compression::Uncompressed, 1),
    )
    .unwrap();
    let dst = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xpf")
        .arg(&packed.layers[0].blob)
        .arg("-C")
        .arg(dst.path())
        .status()
        .unwrap();
    assert!(status.success());
    let got = snapshot(dst.path());
    // GNU tar sets directory times itself as it extracts: compare content
    // and symlink targets (both in `kind`), hard link groups, every mode,
    // and the mtimes of all but directories.
    let want = snapshot(src.path());
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (path, want) in want {
        let got = &got[&path];
        assert_eq!(got.kind, want.kind, "{path}");
        assert_eq!(got.link_group, want.link_group, "{path}");
        assert_eq!(
            got.mode, want.mode,
            "{path}: mode {:o} vs {:o}",
            got.mode, want.mode
        );
        if want.kind != Kind::Dir {
            assert_eq!(got.mtime, want.mtime, "{path}");
        }
    }
}
