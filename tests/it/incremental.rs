//! Incremental saves: a save compares its walk with the base's state list
//! and reuses every unchanged part, so it costs what changed, not what
//! exists. Checked through the real binary, on local caches and a real
//! registry, always ending in a restore equal to the saved tree.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::common::registry::{RegistryOptions, TestRegistry};
use crate::common::{build_rich_tree, pseudo_random, regcache, set_mtime, snapshot};
use serde_json::Value;

/// Small parts, so a small tree makes many layers.
const PART_SIZE: &str = "16384";

/// A tree of many small files over several parts, plus every kind of
/// metadata.
fn build_tree(root: &Path) {
    build_rich_tree(root);
    for d in 0..6 {
        let dir = root.join(format!("pkg{d}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..12 {
            let path = dir.join(format!("file{f:02}.o"));
            fs::write(&path, pseudo_random(1500 + f * 10, (d * 100 + f) as u64)).unwrap();
            set_mtime(&path, 1_650_000_000 + (d * 100 + f) as i64, 5);
        }
        set_mtime(&dir, 1_650_000_000, 7);
    }
}

fn local(kind: &str, dir: &Path) -> String {
    format!("type=local,{kind}={}", dir.display())
}

/// Runs `regcache save`, with `prefix` before the binary (e.g. strace),
/// and returns the metadata file's object.
fn save(cwd: &Path, prefix: &[String], args: &[&str]) -> Value {
    let meta = cwd.join("meta.json");
    let bin = assert_cmd::cargo::cargo_bin("regcache");
    let mut cmd = if prefix.is_empty() {
        regcache(cwd)
    } else {
        let mut cmd = assert_cmd::Command::new(&prefix[0]);
        cmd.args(&prefix[1..])
            .arg(&bin)
            .current_dir(cwd)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1");
        cmd
    };
    cmd.env("REGCACHE_PART_SIZE", PART_SIZE)
        .args(["--metadata-file", meta.to_str().unwrap(), "save"])
        .args(args)
        .assert()
        .success();
    serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap()
}

fn restore_equals(cache_from: &str, tree: &Path) {
    let out = tempfile::tempdir().unwrap();
    regcache(out.path())
        .args(["restore", "--cache-from", cache_from, "tree"])
        .assert()
        .success();
    assert_eq!(snapshot(&out.path().join("tree")), snapshot(tree));
}

fn saved(meta: &Value) -> (u64, u64) {
    let saved = &meta["paths"][0]["saved"];
    (
        saved["layers"].as_u64().unwrap(),
        saved["reused_layers"].as_u64().unwrap(),
    )
}

fn sent(meta: &Value) -> (u64, u64) {
    let target = &meta["cache_to"][0];
    assert!(target["error"].is_null(), "{target}");
    (
        target["uploaded_blobs"].as_u64().unwrap(),
        target["reused_blobs"].as_u64().unwrap(),
    )
}

/// The regular files of `tree` whose names strace prints as they are,
/// without hard links (a tar stores a second name as a link: never read).
fn plain_files(tree: &Path) -> Vec<PathBuf> {
    let (nodes, _) = snapshot(tree);
    nodes
        .iter()
        .filter(|(rel, node)| node.kind == 'f' && rel.is_ascii())
        .map(|(rel, _)| tree.join(rel))
        .filter(|p| fs::metadata(p).unwrap().nlink() == 1)
        .collect()
}

/// The files of `files` that the traced process opened.
fn opened(trace: &Path, files: &[PathBuf]) -> Vec<PathBuf> {
    let trace = fs::read_to_string(trace).unwrap();
    let opens: Vec<&str> = trace.lines().filter(|l| l.contains("open")).collect();
    files
        .iter()
        .filter(|f| {
            let quoted = format!("\"{}\"", f.display());
            opens.iter().any(|l| l.contains(&quoted))
        })
        .cloned()
        .collect()
}

#[test]
fn an_unchanged_save_reads_no_file_and_sends_only_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, cache) = (tmp.path().join("work"), tmp.path().join("cache"));
    let tree = work.join("tree");
    build_tree(&tree);
    let to = local("dest", &cache);
    let trace = tmp.path().join("trace");
    let strace: Vec<String> = [
        "strace",
        "-f",
        "-qq",
        "-s",
        "4096",
        "-e",
        "trace=open,openat,openat2",
        "-o",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([trace.display().to_string()])
    .collect();
    let files = plain_files(&tree);
    assert!(files.len() > 70);

    // The first save reads every file: the trace sees them, so the check
    // below can fail.
    let first = save(&work, &strace, &["--cache-to", &to, "tree"]);
    assert_eq!(opened(&trace, &files).len(), files.len());
    let (layers, reused) = saved(&first);
    assert!(layers >= 6, "{layers} layers: too few to test");
    assert_eq!(reused, 0);

    let second = save(&work, &strace, &["--cache-to", &to, "tree"]);
    assert_eq!(opened(&trace, &files), Vec::<PathBuf>::new());
    assert_eq!(saved(&second), (layers, layers));
    let entry = &second["paths"][0]["saved"];
    assert_eq!(entry["plan"], "unchanged");
    assert_eq!(entry["read_files"], 0);
    assert_eq!(entry["reused_files"], entry["files"]);
    assert_eq!(first["paths"][0]["saved"]["plan"], "full");
    // Only the config (its createdAt) is new; the layers, the state list
    // and the entries list are the target's already.
    assert_eq!(sent(&second), (1, layers + 2));
    assert_ne!(first["cache_to"][0]["digest"], Value::Null);
    restore_equals(&local("src", &cache), &tree);
}

#[test]
fn one_changed_file_repacks_one_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, cache) = (tmp.path().join("work"), tmp.path().join("cache"));
    let tree = work.join("tree");
    build_tree(&tree);
    let to = local("dest", &cache);
    let first = save(&work, &[], &["--cache-to", &to, "tree"]);
    let (layers, _) = saved(&first);

    // Same size, new content and mtime: only its part differs.
    let changed = tree.join("pkg3/file05.o");
    let len = fs::metadata(&changed).unwrap().len() as usize;
    fs::write(&changed, pseudo_random(len, 999)).unwrap();
    set_mtime(&changed, 1_700_000_000, 1);
    let second = save(&work, &[], &["--cache-to", &to, "tree"]);
    assert_eq!(saved(&second), (layers, layers - 1));
    let entry = &second["paths"][0]["saved"];
    assert_eq!(entry["plan"], "parts");
    // Only the files of the changed file's part were read.
    let read = entry["read_files"].as_u64().unwrap();
    assert!((1..20).contains(&read), "{entry}");
    assert_eq!(
        read + entry["reused_files"].as_u64().unwrap(),
        entry["files"].as_u64().unwrap()
    );
    // The new layer, the new state list, the entries list and the config.
    assert_eq!(sent(&second), (4, layers - 1));
    restore_equals(&local("src", &cache), &tree);

    // Added and deleted files and a new directory: a full state, parts
    // reused around the change, and a restore that equals the tree.
    fs::remove_file(tree.join("pkg1/file03.o")).unwrap();
    fs::create_dir(tree.join("pkg4/new")).unwrap();
    fs::write(tree.join("pkg4/new/x"), "new").unwrap();
    let third = save(&work, &[], &["--cache-to", &to, "tree"]);
    let (layers, reused) = saved(&third);
    assert!(reused > 0 && reused < layers, "{reused} of {layers}");
    restore_equals(&local("src", &cache), &tree);
}

#[test]
fn save_cache_from_names_the_base_and_a_registry_gets_its_layers_copied() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let (work, base) = (tmp.path().join("work"), tmp.path().join("base"));
    let tree = work.join("tree");
    build_tree(&tree);
    let base_to = local("dest", &base);
    let first = save(&work, &[], &["--cache-to", &base_to, "tree"]);
    let (layers, _) = saved(&first);

    fs::write(tree.join("pkg0/file00.o"), "changed").unwrap();
    let reg = format!("type=registry,ref={}/app/cache:main", registry.host());
    let second = save(
        &work,
        &[],
        &[
            "--cache-from",
            &local("src", &base),
            "--cache-to",
            &reg,
            "tree",
        ],
    );
    let (new_layers, reused) = saved(&second);
    assert!(
        reused >= layers - 2 && reused < new_layers,
        "{reused} of {new_layers}"
    );
    // Every blob is new to this repository: reused layers are copied from
    // the base, never re-packed.
    assert_eq!(sent(&second), (new_layers + 3, 0));
    restore_equals(&reg, &tree);

    // Saved again into the registry, nothing changed: only the config.
    let third = save(&work, &[], &["--cache-to", &reg, "tree"]);
    assert_eq!(saved(&third), (new_layers, new_layers));
    assert_eq!(sent(&third), (1, new_layers + 2));
    restore_equals(&reg, &tree);
}

/// A cache from before state lists (or a different compression) is no
/// base: the save is a full one, and correct.
#[test]
fn a_base_of_another_compression_means_a_full_save() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, cache) = (tmp.path().join("work"), tmp.path().join("cache"));
    let tree = work.join("tree");
    build_tree(&tree);
    let gzip = format!("{},compression=gzip", local("dest", &cache));
    save(&work, &[], &["--cache-to", &gzip, "tree"]);
    let zstd = format!("{},compression=zstd", local("dest", &cache));
    let second = save(&work, &[], &["--cache-to", &zstd, "tree"]);
    assert_eq!(saved(&second).1, 0);
    restore_equals(&local("src", &cache), &tree);
}

fn deltas(meta: &Value) -> u64 {
    meta["paths"][0]["saved"]["delta_layers"].as_u64().unwrap()
}

/// mode=max: each save with changes adds one delta layer on the chain, and
/// every chain restores to the tree it saved, whatever the change.
#[test]
fn mode_max_keeps_a_chain_of_deltas_that_restores_every_change() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let tmp = tempfile::tempdir().unwrap();
    let (work, cache) = (tmp.path().join("work"), tmp.path().join("cache"));
    let tree = work.join("tree");
    build_tree(&tree);
    let to = format!("{},mode=max", local("dest", &cache));
    let from = local("src", &cache);
    let first = save(&work, &[], &["--cache-to", &to, "tree"]);
    let (full, _) = saved(&first);
    assert_eq!(deltas(&first), 0);

    type Change = Box<dyn Fn(&Path)>;
    let changes: Vec<(&str, Change)> = vec![
        (
            "add",
            Box::new(|t| fs::write(t.join("pkg2/added.o"), "added").unwrap()),
        ),
        (
            "edit",
            Box::new(|t| fs::write(t.join("src/main.rs"), "fn main() { edited(); }\n").unwrap()),
        ),
        (
            "delete a file",
            Box::new(|t| fs::remove_file(t.join("pkg0/file01.o")).unwrap()),
        ),
        (
            "delete a directory",
            Box::new(|t| fs::remove_dir_all(t.join("pkg5")).unwrap()),
        ),
        (
            "file to directory",
            Box::new(|t| {
                fs::remove_file(t.join("run.sh")).unwrap();
                fs::create_dir(t.join("run.sh")).unwrap();
                fs::write(t.join("run.sh/inside"), "inside").unwrap();
            }),
        ),
        (
            "directory to symlink",
            Box::new(|t| {
                fs::remove_dir_all(t.join("pkg4")).unwrap();
                symlink("pkg3", t.join("pkg4")).unwrap();
            }),
        ),
        (
            "rename",
            Box::new(|t| fs::rename(t.join("pkg1/file02.o"), t.join("pkg1/renamed.o")).unwrap()),
        ),
        (
            "mode only",
            Box::new(|t| {
                fs::set_permissions(t.join("pkg1/file05.o"), fs::Permissions::from_mode(0o700))
                    .unwrap();
            }),
        ),
    ];
    let mut layers = full;
    for (i, (what, change)) in changes.iter().enumerate() {
        change(&tree);
        let meta = save(&work, &[], &["--cache-to", &to, "tree"]);
        assert_eq!(saved(&meta), (layers + 1, layers), "{what}");
        assert_eq!(meta["paths"][0]["saved"]["plan"], "delta", "{what}");
        assert_eq!(deltas(&meta), i as u64 + 1, "{what}");
        layers += 1;
        restore_equals(&from, &tree);
    }

    // An unchanged tree adds nothing to the chain.
    let same = save(&work, &[], &["--cache-to", &to, "tree"]);
    assert_eq!(saved(&same), (layers, layers));
    assert_eq!(sent(&same).0, 1);

    // A ninth delta would make the chain too deep: squashed into fresh
    // full layers instead (an mtime-only change).
    set_mtime(&tree.join("pkg2/file07.o"), 1_800_000_000, 0);
    let squashed = save(&work, &[], &["--cache-to", &to, "tree"]);
    assert_eq!(deltas(&squashed), 0);
    assert_eq!(squashed["paths"][0]["saved"]["plan"], "squash");
    assert_eq!(
        saved(&squashed).1,
        0,
        "a chain with deltas is never reused as parts"
    );
    restore_equals(&from, &tree);

    // Then a delta again; and a change outweighing half the chain squashes.
    set_mtime(&tree.join("pkg2/file08.o"), 1_800_000_000, 0);
    let again = save(&work, &[], &["--cache-to", &to, "tree"]);
    assert_eq!(deltas(&again), 1);
    restore_equals(&from, &tree);
    fs::write(tree.join("big.bin"), pseudo_random(4 << 20, 5)).unwrap();
    let heavy = save(&work, &[], &["--cache-to", &to, "tree"]);
    assert_eq!(deltas(&heavy), 0);
    restore_equals(&from, &tree);
}

/// A restore onto a tree restored from an older state of the same chain,
/// as CI does: whiteouts delete what the later layers deleted.
#[test]
fn a_chain_restores_over_an_older_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, cache) = (tmp.path().join("work"), tmp.path().join("cache"));
    let tree = work.join("tree");
    build_tree(&tree);
    let to = format!("{},mode=max", local("dest", &cache));
    let from = local("src", &cache);
    save(&work, &[], &["--cache-to", &to, "tree"]);
    let out = tempfile::tempdir().unwrap();
    regcache(out.path())
        .args(["restore", "--cache-from", &from, "tree"])
        .assert()
        .success();
    fs::remove_dir_all(tree.join("pkg2")).unwrap();
    fs::remove_file(tree.join("secret")).unwrap();
    let meta = save(&work, &[], &["--cache-to", &to, "tree"]);
    assert_eq!(deltas(&meta), 1);
    regcache(out.path())
        .args(["restore", "--cache-from", &from, "tree"])
        .assert()
        .success();
    assert_eq!(snapshot(&out.path().join("tree")), snapshot(&tree));
}

/// A copied cache keeps its state lists: a save on top of the copy is
/// incremental too.
#[test]
fn a_copy_keeps_the_state_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, a, b) = (
        tmp.path().join("work"),
        tmp.path().join("a"),
        tmp.path().join("b"),
    );
    let tree = work.join("tree");
    build_tree(&tree);
    // From mode=max to mode=min: the copy is slimmed to the entries' chains.
    let max = format!("{},mode=max", local("dest", &a));
    let first = save(&work, &[], &["--cache-to", &max, "tree"]);
    let (layers, _) = saved(&first);
    regcache(&work)
        .args(["copy", "--cache-from", &local("src", &a)])
        .args(["--cache-to", &format!("{},mode=min", local("dest", &b))])
        .assert()
        .success();
    let second = save(&work, &[], &["--cache-to", &local("dest", &b), "tree"]);
    assert_eq!(saved(&second), (layers, layers));
    // The config, and perhaps the entries list as the copy re-encoded it;
    // no layer and no state list.
    assert!(sent(&second).0 <= 2, "{:?}", sent(&second));
    restore_equals(&local("src", &b), &tree);
}

/// Restoring a chain writes each path once: a layer's copy of a path that
/// a later layer replaces or deletes is skipped, so the restore writes as
/// many files as the tree has, however many deltas changed them.
#[test]
fn a_chain_restore_writes_each_file_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, cache) = (tmp.path().join("work"), tmp.path().join("cache"));
    let tree = work.join("tree");
    build_tree(&tree);
    let to = format!("{},mode=max", local("dest", &cache));
    let from = local("src", &cache);
    save(&work, &[], &["--cache-to", &to, "tree"]);
    for round in 0..3 {
        for f in ["pkg0/file00.o", "pkg2/file03.o", "src/main.rs"] {
            fs::write(tree.join(f), format!("round {round}")).unwrap();
        }
    }
    fs::remove_file(tree.join("pkg1/file04.o")).unwrap();
    fs::remove_dir_all(tree.join("src/deep")).unwrap();
    let last = save(&work, &[], &["--cache-to", &to, "tree"]);
    assert_eq!(deltas(&last), 1);
    fs::write(tree.join("pkg3/file01.o"), "again").unwrap();
    let last = save(&work, &[], &["--cache-to", &to, "tree"]);
    assert_eq!(deltas(&last), 2);
    // One file changed: the delta read it alone.
    assert_eq!(last["paths"][0]["saved"]["read_files"], 1);
    assert_eq!(last["paths"][0]["saved"]["read_bytes"], 5);

    let out = tempfile::tempdir().unwrap();
    let meta = out.path().join("meta.json");
    regcache(out.path())
        .args(["--metadata-file", meta.to_str().unwrap()])
        .args(["restore", "--cache-from", &from, "tree"])
        .assert()
        .success();
    let meta: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    let restored = &meta["paths"][0]["restored"];
    let saved = &last["paths"][0]["saved"];
    assert_eq!(restored["files"], saved["files"], "{restored}");
    assert_eq!(restored["bytes"], saved["bytes"], "{restored}");
    assert_eq!(snapshot(&out.path().join("tree")), snapshot(&tree));
}

/// Every compression reuses its own layers, eStargz (gzip's media type
/// plus a TOC) included.
#[test]
fn unchanged_saves_reuse_every_layer_whatever_the_compression() {
    for compression in ["zstd", "estargz", "uncompressed"] {
        let tmp = tempfile::tempdir().unwrap();
        let (work, cache) = (tmp.path().join("work"), tmp.path().join("cache"));
        let tree = work.join("tree");
        build_tree(&tree);
        let to = format!("{},compression={compression}", local("dest", &cache));
        let first = save(&work, &[], &["--cache-to", &to, "tree"]);
        let (layers, _) = saved(&first);
        let second = save(&work, &[], &["--cache-to", &to, "tree"]);
        assert_eq!(saved(&second), (layers, layers), "{compression}");
        assert_eq!(sent(&second).0, 1, "{compression}");
        restore_equals(&local("src", &cache), &tree);
    }
}

/// A delta chain through a real registry: the delta is the only layer
/// sent, and the chain restores.
#[test]
fn mode_max_deltas_through_a_registry() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let tree = work.join("tree");
    build_tree(&tree);
    let reg = format!(
        "type=registry,ref={}/app/cache:max,mode=max",
        registry.host()
    );
    let from = format!("type=registry,ref={}/app/cache:max", registry.host());
    let first = save(&work, &[], &["--cache-to", &reg, "tree"]);
    let (layers, _) = saved(&first);
    fs::remove_dir_all(tree.join("pkg3")).unwrap();
    fs::write(tree.join("src/main.rs"), "fn main() { changed(); }\n").unwrap();
    let second = save(&work, &[], &["--cache-to", &reg, "tree"]);
    assert_eq!(saved(&second), (layers + 1, layers));
    assert_eq!(deltas(&second), 1);
    // The delta, its state list, the entries list and the config.
    assert_eq!(sent(&second), (4, layers));
    restore_equals(&from, &tree);
}

/// A base in another repository of the same registry: its reused layers
/// are mounted, not downloaded and sent again.
#[test]
fn a_registry_base_is_mounted_into_another_repository() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let tree = work.join("tree");
    build_tree(&tree);
    let main = format!("type=registry,ref={}/app/cache:main", registry.host());
    let branch = format!("type=registry,ref={}/app/branch:pr1", registry.host());
    let first = save(&work, &[], &["--cache-to", &main, "tree"]);
    let (layers, _) = saved(&first);
    let second = save(
        &work,
        &[],
        &["--cache-from", &main, "--cache-to", &branch, "tree"],
    );
    assert_eq!(saved(&second), (layers, layers));
    // Mounted blobs count as reused: only the config is sent.
    assert_eq!(sent(&second), (1, layers + 2));
    restore_equals(&branch, &tree);
}

/// `-v --progress plain save --cache-to SPEC tree` in small parts: its
/// stderr and its metadata file.
fn verbose_save(work: &Path, cache_to: &str) -> (String, Value) {
    let out = regcache(work)
        .env("REGCACHE_PART_SIZE", PART_SIZE)
        .args(["-v", "--progress", "plain", "--metadata-file", "meta.json"])
        .args(["save", "--cache-to", cache_to, "tree"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let meta = serde_json::from_slice(&fs::read(work.join("meta.json")).unwrap()).unwrap();
    (stderr, meta)
}

/// A cold save to a registry sends each part as it is packed (followed
/// while its blob grows), not after: every layer is reported under its
/// part, none had to be sent again from the finished file, and the cache
/// restores to the saved tree.
#[test]
fn a_registry_save_streams_each_part_as_it_is_packed() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let tree = work.join("tree");
    build_tree(&tree);
    let reg = format!("type=registry,ref={}/app/stream:c", registry.host());
    let (stderr, meta) = verbose_save(&work, &reg);
    let (layers, _) = saved(&meta);
    assert!(layers > 2, "the tree should make several parts: {layers}");
    let streamed: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("tree: part ") && l.contains(" uploaded"))
        .collect();
    assert_eq!(streamed.len() as u64, layers, "{stderr}");
    assert!(!stderr.contains("sent again"), "{stderr}");
    // Each layer once, then its state list, the entries list and the config.
    assert_eq!(sent(&meta), (layers + 3, 0));
    restore_equals(&reg, &tree);
}

/// `-v` prints what the save decided before it sends anything: each part
/// reused or packed, and for the target which blobs are there already,
/// which went while packing and which are still to send.
#[test]
fn verbose_prints_the_plan_before_sending() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let tree = work.join("tree");
    build_tree(&tree);
    let reg = format!("type=registry,ref={}/app/plan:c", registry.host());
    let first = save(&work, &[], &["--cache-to", &reg, "tree"]);
    let (layers, _) = saved(&first);
    let (stderr, _) = verbose_save(&work, &reg);
    let lines: Vec<&str> = stderr.lines().collect();
    let unchanged = lines
        .iter()
        .filter(|l| l.starts_with("tree: part ") && l.contains(": unchanged, the base's layer"))
        .count() as u64;
    assert_eq!(unchanged, layers, "{stderr}");
    let plan = lines
        .iter()
        .position(|l| l.starts_with(&format!("plan for {}/app/plan:c: ", registry.host())))
        .unwrap_or_else(|| panic!("no plan: {stderr}"));
    assert!(
        lines[plan + 1].starts_with(&format!("  already there: {} blobs", layers + 2)),
        "the layers, the state list and the entries list: {stderr}"
    );
    assert!(
        lines[plan + 2].starts_with("  to send unless present or mountable: 1 blob")
            && lines[plan + 2].contains("cache config"),
        "{stderr}"
    );
    let sent = lines
        .iter()
        .position(|l| l.starts_with("cache config ") && l.contains(" uploaded"))
        .unwrap_or_else(|| panic!("config not sent: {stderr}"));
    assert!(plan < sent, "{stderr}");
}
