//! Real BuildKit layers (gzip, zstd, estargz; copied from the project's
//! BuildKit fixtures into tests/layer_fixtures) restore with their digests and diff_ids checked,
//! to the same tree GNU tar extracts from them.
//!
//! `LAYER_FIXTURE_LIST=file` checks another list: lines of
//! `compression digest diff_id [path]` (path defaults to the digest's hex in
//! tests/layer_fixtures).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use regcache::compression::Compression;
use regcache::digest::Digest;
use regcache::layer::{EntryRestorer, LayerSource};

struct Fixture {
    compression: Compression,
    digest: Digest,
    diff_id: Digest,
    blob: PathBuf,
}

fn fixtures() -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/layer_fixtures");
    let list = std::env::var_os("LAYER_FIXTURE_LIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("layers.txt"));
    let text = fs::read_to_string(&list).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let digest: Digest = fields[1].parse().unwrap();
            let blob = fields
                .get(3)
                .map(PathBuf::from)
                .unwrap_or_else(|| dir.join(digest.hex()));
            Fixture {
                compression: Compression::from_name(fields[0]).unwrap(),
                digest,
                diff_id: fields[2].parse().unwrap(),
                blob,
            }
        })
        .collect()
}

/// One restored path: (path, is_dir, content or symlink target, permission
/// bits restore keeps (setuid and setgid are dropped by design), (mtime s,
/// ns)).
type Seen = (String, bool, Vec<u8>, u32, (i64, i64));

/// Everything under `root`, sorted.
fn tree(root: &Path) -> Vec<Seen> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let content = if meta.is_file() {
                fs::read(&path).unwrap()
            } else if meta.file_type().is_symlink() {
                fs::read_link(&path)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                Vec::new()
            };
            // A symlink's own mode means nothing on Linux.
            let mode = if meta.file_type().is_symlink() {
                0
            } else {
                meta.mode() & 0o1777
            };
            out.push((
                rel,
                meta.is_dir(),
                content,
                mode,
                (meta.mtime(), meta.mtime_nsec()),
            ));
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn buildkit_layers_restore_like_gnu_tar_extracts_them() {
    // The comparison is the point of this test: no tar, no pass.
    let gnu_tar = Command::new("tar").arg("--version").output();
    assert!(
        gnu_tar.is_ok_and(|o| o.status.success()),
        "GNU tar is required (make test installs it)"
    );
    let fixtures = fixtures();
    assert!(fixtures.len() >= 12);
    for fixture in fixtures {
        let blob = fs::read(&fixture.blob).unwrap();
        let dst = tempfile::tempdir().unwrap();
        let mut restorer = EntryRestorer::new(dst.path()).unwrap();
        restorer
            .apply_layer(LayerSource {
                reader: &blob[..],
                digest: fixture.digest.clone(),
                size: blob.len() as u64,
                compression: fixture.compression,
                diff_id: Some(fixture.diff_id.clone()),
                max_uncompressed: None,
            })
            .unwrap_or_else(|e| panic!("{}: {e}", fixture.digest));
        let stats = restorer.finish().unwrap();
        assert!(stats.files > 0, "{}", fixture.digest);
        let restored = tree(dst.path());
        assert!(
            restored
                .iter()
                .all(|(path, ..)| path != "stargz.index.json")
        );

        {
            let reference = tempfile::tempdir().unwrap();
            let ok = Command::new("tar")
                .arg("-xpf")
                .arg(&fixture.blob)
                .arg("-C")
                .arg(reference.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "GNU tar failed on {}", fixture.digest);
            for landmark in [
                "stargz.index.json",
                ".prefetch.landmark",
                ".no.prefetch.landmark",
            ] {
                let _ = fs::remove_file(reference.path().join(landmark));
            }
            assert_eq!(restored, tree(reference.path()), "{}", fixture.digest);
        }
    }
}
