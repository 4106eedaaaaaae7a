//! Helpers shared by the integration tests: running the real binary and
//! comparing directory trees field by field.
#![allow(dead_code)]

pub mod action;
pub mod aging;
pub mod estargz;
pub mod hostile;
pub mod images;
pub mod proxy;
pub mod registry;
pub mod token_server;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use assert_cmd::Command;
use sha2::{Digest, Sha256};

/// The regcache binary, run in `cwd` with a clean logging environment
/// (and no BUILDKIT_PROGRESS from a CI runner picking the display, nor a
/// COLUMNS from the shell wrapping its messages).
pub fn regcache(cwd: &Path) -> Command {
    let mut cmd = Command::cargo_bin("regcache").expect("the regcache binary is built");
    cmd.current_dir(cwd)
        .env_remove("RUST_LOG")
        .env_remove("BUILDKIT_PROGRESS")
        .env_remove("COLUMNS")
        .env("NO_COLOR", "1");
    cmd
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: char,
    pub mode: u32,
    pub size: u64,
    pub mtime_ns: i128,
    pub link: Option<String>,
    pub sha: Option<String>,
}

/// Every entry below `root` (not `root` itself): kind, permission bits,
/// size, mtime to the nanosecond, symlink target and content hash. Hard
/// links are reported as groups of paths sharing an inode.
pub fn snapshot(root: &Path) -> (BTreeMap<String, Node>, Vec<Vec<String>>) {
    let mut nodes = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    walk(root, root, &mut nodes, &mut inodes);
    let groups = inodes.into_values().filter(|g| g.len() > 1).collect();
    (nodes, groups)
}

fn walk(
    root: &Path,
    dir: &Path,
    nodes: &mut BTreeMap<String, Node>,
    inodes: &mut BTreeMap<u64, Vec<String>>,
) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let rel = path
            .strip_prefix(root)
            .expect("below root")
            .to_string_lossy()
            .into_owned();
        let meta = fs::symlink_metadata(&path).expect("lstat");
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_symlink() {
            'l'
        } else if ft.is_file() {
            'f'
        } else {
            '?'
        };
        let mtime_ns = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
        let link = ft.is_symlink().then(|| {
            fs::read_link(&path)
                .expect("readlink")
                .to_string_lossy()
                .into_owned()
        });
        let sha = ft
            .is_file()
            .then(|| hex(&Sha256::digest(fs::read(&path).expect("read"))));
        if ft.is_file() && meta.nlink() > 1 {
            inodes.entry(meta.ino()).or_default().push(rel.clone());
        }
        nodes.insert(
            rel,
            Node {
                kind,
                mode: meta.permissions().mode() & 0o7777,
                size: if ft.is_dir() { 0 } else { meta.len() },
                mtime_ns,
                link,
                sha,
            },
        );
        if ft.is_dir() {
            walk(root, &path, nodes, inodes);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sets an mtime with nanoseconds, on the link itself for symlinks.
pub fn set_mtime(path: &Path, secs: i64, nanos: u32) {
    let time = filetime::FileTime::from_unix_time(secs, nanos);
    filetime::set_symlink_file_times(path, time, time).expect("set mtime");
}

/// A tree with every kind of metadata a cache must keep.
pub fn build_rich_tree(root: &Path) {
    use std::os::unix::fs::symlink;
    fs::create_dir_all(root.join("src/deep/deeper")).unwrap();
    fs::create_dir_all(root.join("empty/also-empty")).unwrap();
    fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
    fs::write(
        root.join("src/deep/deeper/data.bin"),
        pseudo_random(3 << 20, 7),
    )
    .unwrap();
    fs::write(root.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("secret"), "s").unwrap();
    fs::set_permissions(root.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(root.join("zero-length"), "").unwrap();
    fs::write(root.join("ünïcødé-名前.txt"), "unicode").unwrap();
    let long_dir = root.join("a".repeat(120)).join("b".repeat(120));
    fs::create_dir_all(&long_dir).unwrap();
    fs::write(long_dir.join("c".repeat(200)), "long").unwrap();
    symlink("src/main.rs", root.join("link")).unwrap();
    symlink("does/not/exist", root.join("dangling")).unwrap();
    fs::hard_link(root.join("src/main.rs"), root.join("hardlink.rs")).unwrap();
    let mut n = 0u32;
    let (nodes, _) = snapshot(root);
    for rel in nodes.keys().rev() {
        n += 1;
        set_mtime(
            &root.join(rel),
            1_600_000_000 + i64::from(n),
            123_456_789 + n,
        );
    }
}

pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Parses stdout as JSON.
pub fn json_of(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// A reqwest client builder for tests that talk HTTP themselves, with the
/// TLS provider regcache installs (reqwest is built without one).
pub fn http_client() -> reqwest::ClientBuilder {
    regcache::store::registry::transport::install_crypto_provider();
    reqwest::Client::builder()
}
