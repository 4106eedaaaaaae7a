//! Hostile and edge-case archives against the restorer. Tars are built by
//! hand (`RawTar`) because well-behaved tar writers refuse to produce them.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use crate::compression::Compression;
use crate::digest::Digest;

use super::codec::compress_writer;
use super::unpack::{EntryRestorer, LayerSource, UnpackError};

/// Writes ustar headers with whatever bytes it is given.
#[derive(Default)]
struct RawTar(Vec<u8>);

impl RawTar {
    fn header(
        &mut self,
        name: &[u8],
        typeflag: u8,
        mode: u32,
        size: u64,
        link: &[u8],
    ) -> &mut Self {
        let mut block = [0u8; 512];
        block[..name.len()].copy_from_slice(name);
        block[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
        block[108..116].copy_from_slice(b"0000000\0");
        block[116..124].copy_from_slice(b"0000000\0");
        block[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        block[136..148].copy_from_slice(format!("{:011o}\0", 1_600_000_000u64).as_bytes());
        block[156] = typeflag;
        block[157..157 + link.len()].copy_from_slice(link);
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.0.extend_from_slice(&block);
        self
    }

    fn data(&mut self, content: &[u8]) -> &mut Self {
        self.0.extend_from_slice(content);
        self.0.resize(self.0.len().div_ceil(512) * 512, 0);
        self
    }

    fn file(&mut self, name: &str, content: &[u8]) -> &mut Self {
        self.file_mode(name, content, 0o644)
    }

    fn file_mode(&mut self, name: &str, content: &[u8], mode: u32) -> &mut Self {
        self.header(name.as_bytes(), b'0', mode, content.len() as u64, b"")
            .data(content)
    }

    fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.header(name.as_bytes(), b'5', mode, 0, b"")
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.header(name.as_bytes(), b'2', 0o777, 0, target.as_bytes())
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.header(name.as_bytes(), b'1', 0o644, 0, target.as_bytes())
    }

    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (key, value) in records {
            super::pax::push_record(&mut data, key, value);
        }
        self.header(b"PaxHeaders.0/x", b'x', 0o644, data.len() as u64, b"")
            .data(&data)
    }

    fn build(&self) -> Vec<u8> {
        let mut out = self.0.clone();
        out.extend_from_slice(&[0; 1024]);
        out
    }
}

fn source(blob: &[u8]) -> LayerSource<&[u8]> {
    LayerSource {
        reader: blob,
        digest: Digest::of(blob),
        size: blob.len() as u64,
        compression: Compression::Uncompressed,
        diff_id: Some(Digest::of(blob)),
        max_uncompressed: None,
    }
}

fn apply(root: &Path, tar: &RawTar) -> Result<(), UnpackError> {
    let blob = tar.build();
    let mut restorer = EntryRestorer::new(root)?;
    restorer.apply_layer(source(&blob))?;
    restorer.finish().map(|_| ())
}

/// Applies a layer that must fail; checks nothing was left behind in
/// `root` beyond what `before` lists, and returns the message.
fn refused(root: &Path, tar: &RawTar) -> String {
    let before = listing(root);
    let err = apply(root, tar).expect_err("the layer must be refused");
    assert_eq!(
        listing(root),
        before,
        "a refused layer must leave the target as it was"
    );
    err.to_string()
}

/// Every path under `dir` (not following symlinks), sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            out.push(
                path.strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
}

/// A restore root next to an "outside" directory holding a secret.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"secret").unwrap();
    Fixture {
        _dir: dir,
        root,
        outside,
    }
}

impl Fixture {
    fn outside_untouched(&self) {
        assert_eq!(listing(&self.outside), ["secret"]);
        assert_eq!(fs::read(self.outside.join("secret")).unwrap(), b"secret");
        assert_eq!(
            fs::metadata(self.outside.join("secret")).unwrap().nlink(),
            1,
            "no hard link to it"
        );
        assert_eq!(
            listing(self.outside.parent().unwrap()),
            listing_top(&self.root)
        );
    }
}

/// What the fixture's parent should hold: root's listing prefixed, outside.
fn listing_top(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = listing(root)
        .into_iter()
        .map(|p| format!("root/{p}"))
        .collect();
    out.extend([
        "outside".to_string(),
        "outside/secret".to_string(),
        "root".to_string(),
    ]);
    out.sort();
    out
}

#[test]
fn absolute_paths_are_refused() {
    let f = fixture();
    let evil = f.outside.join("evil");
    let msg = refused(
        &f.root,
        RawTar::default().file("ok", b"x").header(
            evil.to_str().unwrap().as_bytes(),
            b'0',
            0o644,
            0,
            b"",
        ),
    );
    assert!(msg.contains("absolute"), "{msg}");
    assert!(msg.contains("evil"), "names the entry: {msg}");
    f.outside_untouched();
}

#[test]
fn dot_dot_components_are_refused() {
    let f = fixture();
    for name in [
        "../evil",
        "a/../../evil",
        "a/b/../../../evil",
        "..",
        "ok/..",
    ] {
        let msg = refused(&f.root, RawTar::default().dir("a/", 0o755).file(name, b"x"));
        assert!(msg.contains(".."), "{name}: {msg}");
    }
    f.outside_untouched();
}

#[test]
fn writing_through_a_symlink_from_the_archive_is_refused() {
    let f = fixture();
    let outside = f.outside.to_str().unwrap();
    for (link, target) in [
        ("link", outside),
        ("up", ".."),
        ("dot", "."),
        ("rel", "../outside"),
    ] {
        let mut tar = RawTar::default();
        tar.symlink(link, target)
            .file(&format!("{link}/evil"), b"x");
        let msg = refused(&f.root, &tar);
        assert!(msg.contains("symlink"), "{link}: {msg}");
        let mut tar = RawTar::default();
        tar.symlink(link, target)
            .dir(&format!("{link}/sub/"), 0o755);
        assert!(refused(&f.root, &tar).contains("symlink"));
    }
    f.outside_untouched();
}

#[test]
fn writing_through_a_symlink_already_on_disk_is_refused() {
    let f = fixture();
    symlink(&f.outside, f.root.join("link")).unwrap();
    fs::create_dir(f.root.join("real")).unwrap();
    symlink("../../outside", f.root.join("real/nested-link")).unwrap();
    for name in ["link/evil", "link/sub/evil", "real/nested-link/evil"] {
        let msg = refused(&f.root, RawTar::default().file(name, b"x"));
        assert!(msg.contains("symlink"), "{name}: {msg}");
    }
    // A directory entry over the symlink is a type conflict, not a way in.
    let msg = refused(
        &f.root,
        RawTar::default()
            .dir("link/", 0o755)
            .file("link/evil", b"x"),
    );
    assert!(msg.contains("link"), "{msg}");
    assert!(
        fs::symlink_metadata(f.root.join("link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    f.outside_untouched();
}

#[test]
fn hard_links_must_stay_inside_and_point_at_regular_files() {
    let f = fixture();
    symlink(&f.outside, f.root.join("sl")).unwrap();
    symlink(f.outside.join("secret"), f.root.join("file-link")).unwrap();
    let secret = f.outside.join("secret");
    let cases: Vec<(RawTar, &str)> = vec![
        (
            {
                let mut t = RawTar::default();
                t.hardlink("h", secret.to_str().unwrap());
                t
            },
            "absolute",
        ),
        (
            {
                let mut t = RawTar::default();
                t.hardlink("h", "../outside/secret");
                t
            },
            "..",
        ),
        (
            {
                let mut t = RawTar::default();
                t.hardlink("h", "sl/secret");
                t
            },
            "symlink",
        ),
        (
            {
                let mut t = RawTar::default();
                t.hardlink("h", "file-link");
                t
            },
            "not a regular file",
        ),
        (
            {
                let mut t = RawTar::default();
                t.symlink("s", secret.to_str().unwrap()).hardlink("h", "s");
                t
            },
            "symlink",
        ),
        (
            {
                let mut t = RawTar::default();
                t.dir("d/", 0o755).hardlink("h", "d");
                t
            },
            "directory",
        ),
        (
            {
                let mut t = RawTar::default();
                t.hardlink("h", "missing");
                t
            },
            "does not exist",
        ),
        (
            {
                let mut t = RawTar::default();
                t.hardlink("h", "");
                t
            },
            "root",
        ),
    ];
    for (tar, expected) in cases {
        let msg = refused(&f.root, &tar);
        assert!(msg.contains(expected), "want {expected:?} in: {msg}");
        assert!(msg.contains("\"h\""), "names the entry: {msg}");
    }
    f.outside_untouched();
}

#[test]
fn devices_and_fifos_are_refused() {
    let f = fixture();
    for (flag, what) in [(b'3', "device"), (b'4', "device"), (b'6', "FIFO")] {
        let msg = refused(
            &f.root,
            RawTar::default()
                .file("ok", b"x")
                .header(b"dev", flag, 0o644, 0, b""),
        );
        assert!(msg.contains(what) && msg.contains("dev"), "{msg}");
    }
}

#[test]
fn setuid_and_setgid_bits_are_dropped_sticky_is_kept() {
    let f = fixture();
    apply(
        &f.root,
        RawTar::default()
            .file_mode("suid", b"x", 0o6755)
            .dir("tmpdir/", 0o3777),
    )
    .unwrap();
    assert_eq!(
        fs::metadata(f.root.join("suid")).unwrap().mode() & 0o7777,
        0o755
    );
    assert_eq!(
        fs::metadata(f.root.join("tmpdir")).unwrap().mode() & 0o7777,
        0o1777
    );
}

#[test]
fn type_conflicts_are_errors_and_nothing_is_deleted() {
    let f = fixture();
    fs::create_dir(f.root.join("d")).unwrap();
    fs::write(f.root.join("d/keep"), b"keep").unwrap();
    fs::write(f.root.join("file"), b"file").unwrap();
    let msg = refused(&f.root, RawTar::default().file("d", b"x"));
    assert!(msg.contains("\"d\"") && msg.contains("directory"), "{msg}");
    let msg = refused(
        &f.root,
        RawTar::default().dir("file/", 0o755).file("file/x", b"x"),
    );
    assert!(msg.contains("\"file\""), "{msg}");
    let msg = refused(&f.root, RawTar::default().file("file/x", b"x"));
    assert!(msg.contains("\"file\""), "{msg}");
    assert_eq!(fs::read(f.root.join("d/keep")).unwrap(), b"keep");
    assert_eq!(fs::read(f.root.join("file")).unwrap(), b"file");
}

#[test]
fn whiteouts_delete_and_opaque_directories_hide_lower_content() {
    let f = fixture();
    let r = &f.root;
    fs::write(r.join("gone.txt"), b"x").unwrap();
    fs::write(r.join("keep.txt"), b"x").unwrap();
    fs::create_dir_all(r.join("dir/sub")).unwrap();
    fs::write(r.join("dir/sub/b"), b"x").unwrap();
    fs::create_dir_all(r.join("opq/olddir")).unwrap();
    fs::write(r.join("opq/old"), b"x").unwrap();
    fs::write(r.join("opq/olddir/x"), b"x").unwrap();
    fs::write(r.join("opq/same"), b"old").unwrap();
    fs::write(r.join("file-then-dir"), b"x").unwrap();
    let mut tar = RawTar::default();
    tar.file(".wh.gone.txt", b"")
        .file(".wh.dir", b"")
        .file(".wh.file-then-dir", b"")
        .file(".wh.never-existed", b"")
        .dir("file-then-dir/", 0o755)
        .file("file-then-dir/inside", b"new")
        .dir("opq/", 0o755)
        .file("opq/.wh..wh..opq", b"")
        .file("opq/new", b"new")
        .file("opq/same", b"new");
    apply(r, &tar).unwrap();
    assert_eq!(
        listing(r),
        [
            "file-then-dir",
            "file-then-dir/inside",
            "keep.txt",
            "opq",
            "opq/new",
            "opq/same"
        ]
    );
    assert_eq!(fs::read(r.join("opq/same")).unwrap(), b"new");
}

#[test]
fn whiteouts_never_follow_symlinks() {
    let f = fixture();
    symlink(&f.outside, f.root.join("sl")).unwrap();
    for name in ["sl/.wh.secret", "sl/.wh..wh..opq"] {
        let msg = refused(&f.root, RawTar::default().file(name, b""));
        assert!(msg.contains("symlink"), "{name}: {msg}");
    }
    // Whiting out the symlink itself removes the link, not its target.
    apply(&f.root, RawTar::default().file(".wh.sl", b"")).unwrap();
    assert!(fs::symlink_metadata(f.root.join("sl")).is_err());
    let msg = refused(&f.root, RawTar::default().file(".wh..", b""));
    assert!(msg.contains("whiteout"), "{msg}");
    f.outside_untouched();
}

#[test]
fn a_failing_layer_applies_no_whiteout() {
    let f = fixture();
    fs::write(f.root.join("keep.txt"), b"x").unwrap();
    let mut tar = RawTar::default();
    tar.file(".wh.keep.txt", b"")
        .dir("newdir/sub/", 0o755)
        .file("newdir/sub/f", b"x")
        .header(b"fifo", b'6', 0o644, 0, b"");
    refused(&f.root, &tar);

    // The same with a good tar but a wrong digest.
    let tar = RawTar::default()
        .file(".wh.keep.txt", b"")
        .file("new", b"x")
        .build();
    let mut restorer = EntryRestorer::new(&f.root).unwrap();
    let err = restorer
        .apply_layer(LayerSource {
            digest: Digest::of(b"other"),
            ..source(&tar)
        })
        .unwrap_err();
    assert!(err.to_string().contains("digest"), "{err}");
    assert_eq!(listing(&f.root), ["keep.txt"]);
}

#[test]
fn a_wrong_diff_id_is_a_digest_error() {
    let f = fixture();
    let tar = RawTar::default().file("f", b"x").build();
    let mut restorer = EntryRestorer::new(&f.root).unwrap();
    let err = restorer
        .apply_layer(LayerSource {
            diff_id: Some(Digest::of(b"nope")),
            ..source(&tar)
        })
        .unwrap_err();
    assert!(matches!(err, UnpackError::DiffIdMismatch { .. }), "{err}");
    assert!(err.to_string().contains("digest"), "{err}");
    assert!(listing(&f.root).is_empty());
}

#[test]
fn blobs_larger_or_smaller_than_declared_are_refused() {
    let f = fixture();
    let tar = RawTar::default().file("f", b"x").build();
    let mut restorer = EntryRestorer::new(&f.root).unwrap();
    let short = LayerSource {
        size: tar.len() as u64 - 512,
        ..source(&tar)
    };
    assert!(
        restorer
            .apply_layer(short)
            .unwrap_err()
            .to_string()
            .contains("size")
    );
    let mut longer = tar.clone();
    longer.extend_from_slice(&[0; 512]);
    let long = LayerSource {
        reader: &longer[..],
        ..source(&tar)
    };
    assert!(
        restorer
            .apply_layer(long)
            .unwrap_err()
            .to_string()
            .contains("size")
    );
    assert!(listing(&f.root).is_empty());
}

#[test]
fn a_decompression_bomb_is_refused() {
    let f = fixture();
    // 64 MiB of zeros in one file: a few kilobytes compressed.
    let size: u64 = 64 << 20;
    let mut encoder = compress_writer(Vec::new(), Compression::Zstd, None).unwrap();
    let mut head = RawTar::default();
    head.header(b"bomb", b'0', 0o644, size, b"");
    encoder.write_all(&head.0).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(size >> 20) + 2 {
        encoder.write_all(&zeros).unwrap();
    }
    let blob = encoder.finish().unwrap();
    assert!(blob.len() < 1 << 20);
    let mut restorer = EntryRestorer::new(&f.root).unwrap();
    let layer = LayerSource {
        compression: Compression::Zstd,
        diff_id: None,
        max_uncompressed: Some(1 << 20),
        ..source(&blob)
    };
    let err = restorer.apply_layer(layer).unwrap_err();
    assert!(
        matches!(
            err,
            UnpackError::TooLarge {
                limit: 1_048_576,
                ..
            }
        ),
        "{err}"
    );
    assert!(listing(&f.root).is_empty());
}

#[test]
fn an_exact_uncompressed_limit_is_allowed() {
    let f = fixture();
    let tar = RawTar::default().file("f", b"x").build();
    let mut restorer = EntryRestorer::new(&f.root).unwrap();
    restorer
        .apply_layer(LayerSource {
            max_uncompressed: Some(tar.len() as u64),
            ..source(&tar)
        })
        .unwrap();
    assert_eq!(fs::read(f.root.join("f")).unwrap(), b"x");
}

#[test]
fn a_later_entry_of_the_same_name_wins() {
    let f = fixture();
    apply(
        &f.root,
        RawTar::default().file("f", b"first").file("f", b"second"),
    )
    .unwrap();
    assert_eq!(fs::read(f.root.join("f")).unwrap(), b"second");
    assert_eq!(listing(&f.root), ["f"]);
}

#[test]
fn a_hard_link_restored_over_itself_leaves_no_temporary() {
    let f = fixture();
    apply(
        &f.root,
        RawTar::default().file("a", b"x").hardlink("b", "a"),
    )
    .unwrap();
    // A later layer holding only the link, whose target is already on disk
    // and already linked at that name: rename() is then a no-op.
    apply(&f.root, RawTar::default().hardlink("b", "a")).unwrap();
    assert_eq!(listing(&f.root), ["a", "b"]);
    let (a, b) = (
        fs::metadata(f.root.join("a")).unwrap(),
        fs::metadata(f.root.join("b")).unwrap(),
    );
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
}

#[test]
fn hard_links_can_point_into_an_earlier_layer() {
    let f = fixture();
    let first = RawTar::default()
        .dir("d/", 0o755)
        .file("d/a", b"shared")
        .build();
    let second = RawTar::default().hardlink("z", "d/a").build();
    let mut restorer = EntryRestorer::new(&f.root).unwrap();
    restorer.apply_layer(source(&first)).unwrap();
    restorer.apply_layer(source(&second)).unwrap();
    let stats = restorer.finish().unwrap();
    assert_eq!((stats.files, stats.hardlinks, stats.dirs), (1, 1, 1));
    assert_eq!(
        fs::metadata(f.root.join("z")).unwrap().ino(),
        fs::metadata(f.root.join("d/a")).unwrap().ino()
    );
}

#[test]
fn pax_gnu_and_v7_names_are_read() {
    let f = fixture();
    let long = format!("{}/{}", "p".repeat(120), "q".repeat(120));
    let mut tar = RawTar::default();
    tar.pax(&[
        ("path", long.as_bytes()),
        ("mtime", b"1700000000.987654321"),
    ])
    .file("ignored", b"pax");
    let mut builder = tar::Builder::new(Vec::new());
    let gnu_long = format!("{}/gnu.txt", "g".repeat(150));
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o640);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, &gnu_long, &b"gnu"[..])
        .unwrap();
    let mut header = tar::Header::new_old();
    header.set_size(0);
    header.set_mode(0o700);
    builder
        .append_data(&mut header, "v7dir/", &b""[..])
        .unwrap();
    let gnu = builder.into_inner().unwrap();
    let mut blob = tar.0.clone();
    blob.extend_from_slice(&gnu);
    let mut restorer = EntryRestorer::new(&f.root).unwrap();
    restorer.apply_layer(source(&blob)).unwrap();
    restorer.finish().unwrap();
    let meta = fs::metadata(f.root.join(&long)).unwrap();
    assert_eq!(
        (meta.mtime(), meta.mtime_nsec()),
        (1_700_000_000, 987_654_321)
    );
    assert_eq!(fs::read(f.root.join(&gnu_long)).unwrap(), b"gnu");
    assert_eq!(
        fs::metadata(f.root.join(&gnu_long)).unwrap().mode() & 0o777,
        0o640
    );
    assert_eq!(
        fs::metadata(f.root.join("v7dir")).unwrap().mode() & 0o777,
        0o700
    );
}

#[test]
fn read_only_directories_on_disk_are_restored_into_and_keep_their_mode() {
    let f = fixture();
    fs::create_dir(f.root.join("ro")).unwrap();
    fs::write(f.root.join("ro/old"), b"x").unwrap();
    fs::set_permissions(f.root.join("ro"), fs::Permissions::from_mode(0o555)).unwrap();
    apply(&f.root, RawTar::default().file("ro/new", b"y")).unwrap();
    assert_eq!(fs::read(f.root.join("ro/new")).unwrap(), b"y");
    assert_eq!(
        fs::metadata(f.root.join("ro")).unwrap().mode() & 0o777,
        0o555
    );
    // And a failing layer puts the mode back too.
    refused(
        &f.root,
        RawTar::default()
            .file("ro/newer", b"y")
            .header(b"fifo", b'6', 0o644, 0, b""),
    );
    assert_eq!(
        fs::metadata(f.root.join("ro")).unwrap().mode() & 0o777,
        0o555
    );
}

#[test]
fn directory_modes_and_mtimes_are_applied_at_finish() {
    let f = fixture();
    let mut tar = RawTar::default();
    tar.pax(&[("mtime", b"1500000000.25")])
        .dir("locked/", 0o500);
    tar.file("locked/inner", b"x");
    apply(&f.root, &tar).unwrap();
    let meta = fs::metadata(f.root.join("locked")).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o500);
    assert_eq!(
        (meta.mtime(), meta.mtime_nsec()),
        (1_500_000_000, 250_000_000)
    );
    assert_eq!(fs::read(f.root.join("locked/inner")).unwrap(), b"x");
}

#[test]
fn estargz_metadata_files_are_not_restored_as_content() {
    let f = fixture();
    let mut tar = RawTar::default();
    tar.file("data", b"x")
        .file(".prefetch.landmark", b"L")
        .file("stargz.index.json", b"{}");
    let mut gz = compress_writer(Vec::new(), Compression::Gzip, None).unwrap();
    gz.write_all(&tar.build()).unwrap();
    let blob = gz.finish().unwrap();
    let layer = |compression| LayerSource {
        compression,
        diff_id: None,
        ..source(&blob)
    };

    let mut restorer = EntryRestorer::new(&f.root).unwrap();
    restorer.apply_layer(layer(Compression::Estargz)).unwrap();
    assert_eq!(listing(&f.root), ["data"]);
    // The same names in an ordinary gzip layer are ordinary files.
    restorer.apply_layer(layer(Compression::Gzip)).unwrap();
    assert_eq!(
        listing(&f.root),
        [".prefetch.landmark", "data", "stargz.index.json"]
    );
}

#[test]
fn an_opaque_root_clears_it_even_through_the_users_root_symlink() {
    let f = fixture();
    fs::create_dir(f.root.join("real")).unwrap();
    fs::write(f.root.join("real/old"), b"x").unwrap();
    symlink("real", f.root.join("via")).unwrap();
    apply(
        &f.root.join("via"),
        RawTar::default()
            .file(".wh..wh..opq", b"")
            .file("new", b"y"),
    )
    .unwrap();
    assert_eq!(listing(&f.root), ["real", "real/new", "via"]);
}

#[test]
fn superseded_entries_leave_the_stats() {
    let f = fixture();
    let blob = RawTar::default()
        .file("f", b"first")
        .symlink("f", "elsewhere")
        .file("g", b"xy")
        .hardlink("f", "g")
        .build();
    let mut restorer = EntryRestorer::new(&f.root).unwrap();
    restorer.apply_layer(source(&blob)).unwrap();
    let stats = restorer.finish().unwrap();
    assert_eq!(
        (stats.files, stats.symlinks, stats.hardlinks, stats.bytes),
        (1, 0, 1, 2)
    );
    assert_eq!(listing(&f.root), ["f", "g"]);
    assert_eq!(fs::read(f.root.join("f")).unwrap(), b"xy");
}

#[test]
fn a_file_larger_than_the_free_space_is_refused_before_it_is_written() {
    let f = fixture();
    // 2^50 bytes, declared in a PAX record; no content follows, so reading
    // any of it would be a truncation error instead.
    let mut tar = RawTar::default();
    tar.pax(&[("size", b"1125899906842624")])
        .header(b"big.bin", b'0', 0o644, 0, b"");
    let message = refused(&f.root, &tar);
    assert!(
        message.contains("entry \"big.bin\" declares 1024.0 TiB (1125899906842624 bytes)")
            && message.contains("free"),
        "{message}"
    );
}

/// Applies `tar` as the layer of an entry of one file at `dir/name`.
fn apply_single(dir: &Path, name: &str, tar: &RawTar) -> Result<(), UnpackError> {
    let blob = tar.build();
    let mut restorer = EntryRestorer::open_file(&super::root::RootPath {
        anchor: dir.to_path_buf(),
        below: vec![name.into()],
        allow_symlink: false,
    })?;
    restorer.apply_layer(source(&blob))?;
    restorer.finish().map(|_| ())
}

/// A file entry's layer is one regular file, restored under the entry's
/// name whatever the tar calls it; anything that would touch another name
/// in the file's directory (a second file, a path below it, a whiteout, a
/// directory record for the root, a link) is refused with nothing written.
#[test]
fn a_file_entry_restores_one_file_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::write(root.join("sibling"), "keep").unwrap();
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
    apply_single(
        root,
        "Cargo.lock",
        RawTar::default().file_mode("lock-v2", b"new", 0o640),
    )
    .unwrap();
    assert_eq!(fs::read(root.join("Cargo.lock")).unwrap(), b"new");
    let meta = fs::metadata(root.join("Cargo.lock")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_eq!(meta.mtime(), 1_600_000_000);
    assert!(!root.join("lock-v2").exists());

    let hostile: Vec<RawTar> = vec![
        {
            let mut t = RawTar::default();
            t.file("a", b"1").file("b", b"2");
            t
        },
        {
            let mut t = RawTar::default();
            t.file("sub/x", b"1");
            t
        },
        {
            let mut t = RawTar::default();
            t.file(".wh.sibling", b"");
            t
        },
        {
            let mut t = RawTar::default();
            t.dir("./", 0o777).file("x", b"1");
            t
        },
        {
            let mut t = RawTar::default();
            t.symlink("x", "/etc/passwd");
            t
        },
        {
            let mut t = RawTar::default();
            t.file("x", b"1").hardlink("y", "x");
            t
        },
    ];
    for tar in &hostile {
        let before = listing(root);
        let err = apply_single(root, "Cargo.lock", tar).expect_err("refused");
        assert!(err.to_string().contains("a file entry's layer"), "{err}");
        assert_eq!(listing(root), before);
        assert_eq!(fs::read(root.join("Cargo.lock")).unwrap(), b"new");
        assert_eq!(fs::read(root.join("sibling")).unwrap(), b"keep");
        assert_eq!(fs::metadata(root).unwrap().mode() & 0o7777, 0o755);
    }
}

/// What one layer leaves at `<dir>x` (and `<dir>g`): kind, content or
/// target, and whether x and g are one inode; plus the layer's stats.
fn duplicates_outcome(dir: &str, build: &dyn Fn(&str, &mut RawTar)) -> Result<String, String> {
    let f = fixture();
    if dir == "old/" {
        fs::create_dir(f.root.join("old")).unwrap();
    }
    let mut tar = RawTar::default();
    build(dir, &mut tar);
    let blob = tar.build();
    let mut restorer = EntryRestorer::new(&f.root).unwrap();
    let applied = restorer
        .apply_layer(source(&blob))
        .and_then(|()| restorer.finish());
    let listed: Vec<String> = listing(&f.root)
        .into_iter()
        .filter_map(|p| p.strip_prefix(dir).map(str::to_string))
        .filter(|p| !p.is_empty())
        .collect();
    let stats = match applied {
        Ok(stats) => stats,
        Err(e) => {
            assert_eq!(listed, Vec::<String>::new(), "refused, yet left {listed:?}");
            let message = e.to_string();
            // The layer's digest differs with the names: not compared.
            let message = message.split_once(": ").map_or(&*message, |(_, m)| m);
            return Err(message.replace(dir, ""));
        }
    };
    let x = f.root.join(dir).join("x");
    let meta = fs::symlink_metadata(&x).unwrap();
    let what = if meta.is_symlink() {
        format!("symlink to {}", fs::read_link(&x).unwrap().display())
    } else {
        let g = fs::symlink_metadata(f.root.join(dir).join("g")).ok();
        format!(
            "file {:?}, linked to g: {}",
            String::from_utf8_lossy(&fs::read(&x).unwrap()),
            g.is_some_and(|g| g.ino() == meta.ino())
        )
    };
    f.outside_untouched();
    Ok(format!(
        "{listed:?}: {what}; files {} symlinks {} hardlinks {} bytes {}",
        stats.files, stats.symlinks, stats.hardlinks, stats.bytes
    ))
}

/// Names given twice in one layer end the same wherever they are: in the
/// root, in a directory already on disk, or in one this layer makes (where
/// files are staged at their own names, not under temporaries).
#[test]
fn same_layer_duplicates_end_alike_in_fresh_and_existing_directories() {
    type Build = Box<dyn Fn(&str, &mut RawTar)>;
    let cases: Vec<(&str, Build)> = vec![
        (
            "file twice",
            Box::new(|d, t| {
                t.file(&format!("{d}x"), b"first")
                    .file(&format!("{d}x"), b"second");
            }),
        ),
        (
            "file then symlink",
            Box::new(|d, t| {
                t.file(&format!("{d}x"), b"first")
                    .symlink(&format!("{d}x"), "elsewhere");
            }),
        ),
        (
            "symlink then file",
            Box::new(|d, t| {
                t.symlink(&format!("{d}x"), "elsewhere")
                    .file(&format!("{d}x"), b"file");
            }),
        ),
        (
            "file, symlink, link",
            Box::new(|d, t| {
                t.file(&format!("{d}x"), b"first")
                    .symlink(&format!("{d}x"), "elsewhere")
                    .file(&format!("{d}g"), b"xy")
                    .hardlink(&format!("{d}x"), &format!("{d}g"));
            }),
        ),
        (
            "link then file",
            Box::new(|d, t| {
                t.file(&format!("{d}g"), b"xy")
                    .hardlink(&format!("{d}x"), &format!("{d}g"))
                    .file(&format!("{d}x"), b"new");
            }),
        ),
        (
            "link, file, link",
            Box::new(|d, t| {
                t.file(&format!("{d}g"), b"xy")
                    .hardlink(&format!("{d}x"), &format!("{d}g"))
                    .file(&format!("{d}x"), b"new")
                    .hardlink(&format!("{d}x"), &format!("{d}g"));
            }),
        ),
        (
            "link twice",
            Box::new(|d, t| {
                t.file(&format!("{d}g"), b"xy")
                    .hardlink(&format!("{d}x"), &format!("{d}g"))
                    .hardlink(&format!("{d}x"), &format!("{d}g"));
            }),
        ),
        (
            "link to itself",
            Box::new(|d, t| {
                t.file(&format!("{d}x"), b"self")
                    .hardlink(&format!("{d}x"), &format!("{d}x"));
            }),
        ),
        (
            "link to a superseded file",
            Box::new(|d, t| {
                t.file(&format!("{d}g"), b"old")
                    .file(&format!("{d}g"), b"new")
                    .hardlink(&format!("{d}x"), &format!("{d}g"));
            }),
        ),
        (
            "symlink then directory",
            Box::new(|d, t| {
                t.symlink(&format!("{d}x"), "elsewhere")
                    .dir(&format!("{d}x/"), 0o755);
            }),
        ),
        (
            "file then a path below it",
            Box::new(|d, t| {
                t.file(&format!("{d}x"), b"first")
                    .file(&format!("{d}x/y"), b"below");
            }),
        ),
        (
            "directory then file",
            Box::new(|d, t| {
                t.dir(&format!("{d}x/"), 0o755)
                    .file(&format!("{d}x"), b"file");
            }),
        ),
    ];
    for (what, build) in &cases {
        let outcomes: Vec<_> = ["", "old/", "new/"]
            .iter()
            .map(|dir| duplicates_outcome(dir, build.as_ref()))
            .collect();
        eprintln!("{what}: {:?}", outcomes[0]);
        assert_eq!(
            outcomes[0], outcomes[1],
            "{what}: root vs existing directory"
        );
        assert_eq!(outcomes[0], outcomes[2], "{what}: root vs fresh directory");
    }
}
