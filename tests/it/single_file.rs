//! A PATH that is a regular file is an entry of one file: saved and
//! restored with its bytes, mode and nanosecond mtime, through a local dir
//! and a real registry, incrementally, and with the same refusal of
//! symlinks a cache (or anyone) may have planted on the way to it.

use crate::common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use crate::common::registry::{RegistryOptions, TestRegistry};
use crate::common::{regcache, set_mtime, snapshot};
use predicates::str::contains;

fn metadata(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).expect("metadata file")).expect("JSON")
}

/// Bytes, mode and mtime to the nanosecond.
fn file_state(path: &Path) -> (Vec<u8>, u32, i64, i64) {
    let meta = fs::symlink_metadata(path).unwrap();
    assert!(meta.is_file(), "{} is not a file", path.display());
    (
        fs::read(path).unwrap(),
        meta.permissions().mode() & 0o7777,
        meta.mtime(),
        meta.mtime_nsec(),
    )
}

/// A checkout with a lock file at its root, a file two directories down,
/// and a directory entry beside them.
fn checkout(root: &Path) {
    fs::create_dir_all(root.join("config/env")).unwrap();
    fs::write(root.join("Cargo.lock"), "# lock\nversion = 4\n").unwrap();
    fs::set_permissions(root.join("Cargo.lock"), fs::Permissions::from_mode(0o640)).unwrap();
    set_mtime(&root.join("Cargo.lock"), 1_700_000_000, 123_456_789);
    fs::write(root.join("config/env/ci.toml"), vec![7u8; 100_000]).unwrap();
    fs::set_permissions(
        root.join("config/env/ci.toml"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    set_mtime(&root.join("config/env/ci.toml"), 1_600_000_000, 1);
    fs::create_dir_all(root.join("target/debug")).unwrap();
    fs::write(root.join("target/debug/app"), "bin").unwrap();
}

fn round_trip(to: &str, from: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    checkout(&a);
    fs::create_dir_all(&b).unwrap();
    let meta = tmp.path().join("meta.json");
    regcache(&a)
        .arg("--metadata-file")
        .arg(&meta)
        .args(["save", "--cache-to", to])
        .args(["Cargo.lock", "./config/env/ci.toml", "target"])
        .assert()
        .success();
    let saved = metadata(&meta);
    assert_eq!(saved["paths"][0]["path"], "Cargo.lock");
    assert_eq!(saved["paths"][0]["saved"]["files"], 1);
    assert_eq!(saved["paths"][0]["saved"]["dirs"], 0);
    assert_eq!(saved["paths"][1]["path"], "config/env/ci.toml");

    // No PATH: every entry, files included, lands where it was.
    regcache(&b)
        .args(["restore", "--cache-from", from])
        .assert()
        .success();
    for file in ["Cargo.lock", "config/env/ci.toml", "target/debug/app"] {
        assert_eq!(
            file_state(&a.join(file)),
            file_state(&b.join(file)),
            "{file}"
        );
    }
    // Nothing but the file is written in its directory.
    let names: Vec<_> = fs::read_dir(b.join("config/env"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["ci.toml"]);
    assert_eq!(snapshot(&a.join("target")), snapshot(&b.join("target")));

    // Named, over an older copy of the file.
    fs::write(b.join("Cargo.lock"), "stale").unwrap();
    regcache(&b)
        .args(["restore", "--cache-from", from, "Cargo.lock"])
        .assert()
        .success();
    assert_eq!(
        file_state(&a.join("Cargo.lock")),
        file_state(&b.join("Cargo.lock"))
    );
}

#[test]
fn a_file_round_trips_through_a_local_dir() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().display();
    round_trip(
        &format!("type=local,dest={dir}"),
        &format!("type=local,src={dir}"),
    );
}

#[test]
fn a_file_round_trips_through_a_registry() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let r = format!("{}/app/cache:files", registry.host());
    round_trip(&r, &r);
}

/// An unchanged file saved again reuses its layer without reading it; a
/// changed one is read and packed again; `inspect` says which entry is a
/// file.
#[test]
fn an_unchanged_file_saved_again_reuses_its_layer() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    checkout(tmp.path());
    let r = format!("{}/app/cache:lock", registry.host());
    let meta = tmp.path().join("meta.json");
    let save = |mode: &str| {
        regcache(tmp.path())
            .arg("--metadata-file")
            .arg(&meta)
            .args([
                "save",
                "--cache-to",
                &format!("type=registry,ref={r},mode={mode}"),
            ])
            .arg("config/env/ci.toml")
            .assert()
            .success();
        metadata(&meta)
    };
    let first = save("min");
    assert_eq!(first["paths"][0]["saved"]["plan"], "full");
    assert_eq!(first["paths"][0]["saved"]["read_files"], 1);

    let again = save("min");
    let saved = &again["paths"][0]["saved"];
    assert_eq!(saved["plan"], "unchanged", "{again}");
    assert_eq!(saved["reused_layers"], 1);
    assert_eq!(saved["read_files"], 0);
    assert_eq!(saved["reused_bytes"], 100_000);
    // Only the cache config is new.
    assert_eq!(again["cache_to"][0]["uploaded_blobs"], 1, "{again}");

    // mode=max keeps no chain for a file: a change is one fresh layer.
    fs::write(tmp.path().join("config/env/ci.toml"), "changed").unwrap();
    let changed = save("max");
    let saved = &changed["paths"][0]["saved"];
    assert_eq!(saved["read_files"], 1, "{changed}");
    assert_eq!(saved["layers"], 1);
    assert_eq!(saved["delta_layers"], 0);

    let inspect = regcache(tmp.path())
        .args(["inspect", "--json", &r])
        .output()
        .unwrap();
    let report = common::json_of(&inspect);
    assert_eq!(
        report["entries"][0]["path"], "config/env/ci.toml",
        "{report}"
    );
    assert_eq!(report["entries"][0]["kind"], "file", "{report}");
}

/// A symlink where the file goes is refused, and the file it points at is
/// left alone, unless the user says it is theirs; a symlink on the way to
/// the file is refused even then.
#[test]
fn a_symlink_planted_at_or_above_the_file_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    checkout(&a);
    let cache = tmp.path().join("cache");
    let (to, from) = (
        format!("type=local,dest={}", cache.display()),
        format!("type=local,src={}", cache.display()),
    );
    regcache(&a)
        .args([
            "save",
            "--cache-to",
            &to,
            "Cargo.lock",
            "config/env/ci.toml",
        ])
        .assert()
        .success();

    let outside = tmp.path().join("outside");
    fs::create_dir_all(outside.join("env")).unwrap();
    fs::write(outside.join("victim"), "untouched").unwrap();
    fs::create_dir_all(&b).unwrap();
    symlink(outside.join("victim"), b.join("Cargo.lock")).unwrap();
    regcache(&b)
        .args(["restore", "--cache-from", &from, "Cargo.lock"])
        .assert()
        .code(1)
        .stderr(contains("is a symlink to"))
        .stderr(contains("--allow-root-symlink"));
    assert_eq!(
        fs::read_to_string(outside.join("victim")).unwrap(),
        "untouched"
    );
    assert!(
        fs::symlink_metadata(b.join("Cargo.lock"))
            .unwrap()
            .is_symlink()
    );

    // On the way: config -> outside, so config/env/ci.toml would land there.
    symlink(&outside, b.join("config")).unwrap();
    regcache(&b)
        .args(["restore", "--allow-root-symlink", "--cache-from", &from])
        .arg("config/env/ci.toml")
        .assert()
        .code(1)
        .stderr(contains("refusing to restore through it"));
    assert!(!outside.join("env/ci.toml").exists());

    // The user's own link at the file: followed when they say so.
    regcache(&b)
        .args([
            "restore",
            "--allow-root-symlink",
            "--cache-from",
            &from,
            "Cargo.lock",
        ])
        .assert()
        .success();
    assert!(
        fs::symlink_metadata(b.join("Cargo.lock"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(
        file_state(&outside.join("victim")),
        file_state(&a.join("Cargo.lock"))
    );
}

/// What stands on disk changed kind since the cache was saved.
#[test]
fn a_file_replaced_by_a_directory_is_neither_overwritten_nor_mixed_up() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    checkout(&a);
    let cache = tmp.path().join("cache");
    let (to, from) = (
        format!("type=local,dest={}", cache.display()),
        format!("type=local,src={}", cache.display()),
    );
    regcache(&a)
        .args(["save", "--cache-to", &to, "Cargo.lock"])
        .assert()
        .success();

    // Restore: a directory where the cache has a file is the user's.
    fs::create_dir_all(b.join("Cargo.lock")).unwrap();
    fs::write(b.join("Cargo.lock/inside"), "mine").unwrap();
    regcache(&b)
        .args(["restore", "--cache-from", &from, "Cargo.lock"])
        .assert()
        .code(1)
        .stderr(contains("a directory stands where the cache has a file"));
    assert_eq!(
        fs::read_to_string(b.join("Cargo.lock/inside")).unwrap(),
        "mine"
    );

    // Save: the path is a directory now; the base's file layer is not
    // reused for it, and the next restore brings a directory.
    fs::remove_file(a.join("Cargo.lock")).unwrap();
    fs::create_dir_all(a.join("Cargo.lock")).unwrap();
    fs::write(a.join("Cargo.lock/inside"), "now a dir").unwrap();
    let meta = tmp.path().join("meta.json");
    regcache(&a)
        .arg("--metadata-file")
        .arg(&meta)
        .args(["save", "--cache-to", &to, "Cargo.lock"])
        .assert()
        .success();
    assert_eq!(metadata(&meta)["paths"][0]["saved"]["plan"], "full");
    let c = tmp.path().join("c");
    fs::create_dir_all(&c).unwrap();
    regcache(&c)
        .args(["restore", "--cache-from", &from])
        .assert()
        .success();
    assert_eq!(
        fs::read_to_string(c.join("Cargo.lock/inside")).unwrap(),
        "now a dir"
    );

    // And back: a directory entry is not restored over a file either.
    let d = tmp.path().join("d");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("Cargo.lock"), "a file").unwrap();
    regcache(&d)
        .args(["restore", "--cache-from", &from])
        .assert()
        .code(1)
        .stderr(contains("exists and is not a directory"));
    assert_eq!(fs::read_to_string(d.join("Cargo.lock")).unwrap(), "a file");
}

/// Sockets, FIFOs and devices are still not entries.
#[test]
fn a_fifo_is_skipped_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let cache = tmp.path().join("cache");
    regcache(tmp.path())
        .args(["save", "--cache-to"])
        .arg(format!("type=local,dest={}", cache.display()))
        .arg("pipe")
        .assert()
        .success()
        .stderr(contains("neither a directory nor a regular file"));
    assert!(!cache.exists());
}
