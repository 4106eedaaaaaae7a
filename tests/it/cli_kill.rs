//! `kill -9` in the middle of a restore or a save: what it leaves behind is
//! removed by the next run, the old cache is intact, and nothing of the
//! debris reaches a cache.
//!
//! Each kill waits until the debris it is about exists (a `.regcache-tmp-`
//! name in the tree, a `.regcache-spool-` directory in the cache), then
//! lets the run go on a little longer by a different amount, so the kills
//! land at different points without depending on how fast the machine is.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Node, pseudo_random, snapshot};

const TEMP: &str = ".regcache-tmp-";
const SPOOL: &str = ".regcache-spool-";
/// Uncompressed: the window to kill in comes from the amount of data, and
/// gzip in a debug build would make the test slow for nothing.
const FORMAT: &str = "compression=uncompressed";

struct Rig {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    cache: PathBuf,
    tmpdir: PathBuf,
}

impl Rig {
    fn new() -> Rig {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let tmpdir = base.join("tmpdir");
        fs::create_dir_all(&tmpdir).unwrap();
        Rig {
            cache: base.join("cache"),
            base,
            tmpdir,
            _tmp: tmp,
        }
    }

    /// A fresh working directory under the rig.
    fn dir(&self, name: &str) -> PathBuf {
        let dir = self.base.join(name);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn command(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_regcache"));
        cmd.current_dir(cwd)
            .args(args)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .env("TMPDIR", &self.tmpdir);
        cmd
    }

    /// Runs to completion and must succeed; returns stderr.
    fn run(&self, cwd: &Path, args: &[&str]) -> String {
        let out = self.command(cwd, args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "regcache {args:?} failed:\n{stderr}");
        stderr
    }

    fn save_args(&self, tag: &str) -> Vec<String> {
        vec![
            "save".into(),
            "-q".into(),
            "--cache-to".into(),
            format!(
                "type=local,dest={},tag={tag},{FORMAT}",
                self.cache.display()
            ),
            "tree".into(),
        ]
    }

    fn restore_args(&self, tag: &str) -> Vec<String> {
        vec![
            "restore".into(),
            "-q".into(),
            "--cache-from".into(),
            format!("type=local,src={},tag={tag}", self.cache.display()),
        ]
    }

    fn save(&self, cwd: &Path, tag: &str) -> String {
        let args = self.save_args(tag);
        self.run(cwd, &args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn restore(&self, cwd: &Path, tag: &str) {
        let args = self.restore_args(tag);
        self.run(cwd, &args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    fn spawn(&self, cwd: &Path, args: &[String]) -> Child {
        self.command(cwd, &args.iter().map(String::as_str).collect::<Vec<_>>())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

/// Every path at or below `root` whose name starts with `prefix`, not
/// looking inside them; tolerant of a tree changing under it.
fn find(root: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(listing) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in listing.flatten() {
            if entry.file_name().as_bytes().starts_with(prefix.as_bytes()) {
                found.push(entry.path());
            } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(entry.path());
            }
        }
    }
    found
}

fn bytes_below(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        fs::read_dir(path)
            .map(|l| l.flatten().map(|e| bytes_below(&e.path())).sum())
            .unwrap_or(0)
    } else {
        meta.len()
    }
}

/// Debris found after a kill: how many names, how many bytes.
#[derive(Debug, Default, Clone, Copy)]
struct Debris {
    names: usize,
    bytes: u64,
}

fn debris(root: &Path, prefix: &str) -> Debris {
    let found = find(root, prefix);
    Debris {
        names: found.len(),
        bytes: found.iter().map(|p| bytes_below(p)).sum(),
    }
}

/// Waits until `root` holds a `<prefix><child's pid>-` name, lets the run
/// go on for `extra`, then SIGKILLs it. Returns what the kill left (names
/// carrying the child's pid), or `None` when the run finished first.
fn kill_once_debris_appears(
    mut child: Child,
    root: &Path,
    prefix: &str,
    extra: Duration,
) -> Option<Debris> {
    let own = format!("{prefix}{}-", child.id());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        if !find(root, &own).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "no {own} name ever appeared");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Not synchronisation: a different point of the run for each kill.
    std::thread::sleep(extra);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    // Finished in between: then nothing was killed.
    status.code().is_none().then(|| debris(root, &own))
}

/// A tree large enough that a run takes a while: a few dozen files of
/// pseudo-random data in a few directories.
fn build_tree(root: &Path) {
    for i in 0..24u64 {
        let dir = root.join(format!("d{}", i % 4));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("f{i}")), pseudo_random(1 << 20, i + 1)).unwrap();
    }
    fs::write(root.join("small"), "small").unwrap();
}

fn without_temporaries(nodes: BTreeMap<String, Node>) -> BTreeMap<String, Node> {
    nodes
        .into_iter()
        .filter(|(path, _)| !path.contains(TEMP))
        .collect()
}

fn assert_same_tree(expected: &Path, actual: &Path, what: &str) {
    let (expected, expected_links) = snapshot(expected);
    let (actual, actual_links) = snapshot(actual);
    assert_eq!(expected, actual, "{what}");
    assert_eq!(expected_links, actual_links, "{what}: hard links");
}

fn plant_dead_spool(parent: &Path, prefix: &str) -> PathBuf {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let spool = parent.join(format!("{prefix}{pid}-planted"));
    fs::create_dir_all(&spool).unwrap();
    fs::write(spool.join("owner.lock"), "").unwrap();
    fs::write(spool.join(".regcache-layer-x"), vec![7u8; 4096]).unwrap();
    spool
}

#[test]
fn killed_restores_and_saves_leave_nothing_behind() {
    let rig = Rig::new();
    let origin = rig.dir("origin");
    build_tree(&origin.join("tree"));
    rig.save(&origin, "old");

    // Restores killed at three points, into the same tree.
    let target = rig.dir("target");
    let mut restore_kills = Vec::new();
    for extra_ms in [0, 30, 150] {
        let child = rig.spawn(&target, &rig.restore_args("old"));
        let killed =
            kill_once_debris_appears(child, &target, TEMP, Duration::from_millis(extra_ms));
        eprintln!("restore killed after +{extra_ms} ms: {killed:?} (None: it had finished)");
        restore_kills.push(killed);
    }
    assert!(
        restore_kills.iter().flatten().any(|d| d.names > 0),
        "no killed restore left debris: the test proves nothing ({restore_kills:?})"
    );

    // A save of the littered tree carries none of the debris.
    let (littered, _) = snapshot(&target.join("tree"));
    let stderr = rig.save(&target, "littered");
    assert!(
        stderr.contains("not saving a restore's temporary"),
        "{stderr}"
    );
    let elsewhere = rig.dir("elsewhere");
    rig.restore(&elsewhere, "littered");
    assert!(find(&elsewhere, TEMP).is_empty());
    let (restored, _) = snapshot(&elsewhere.join("tree"));
    assert_eq!(restored, without_temporaries(littered));

    // The next restore removes the debris and completes the tree.
    rig.restore(&target, "old");
    assert_eq!(find(&target, TEMP), Vec::<PathBuf>::new());
    assert_same_tree(
        &origin.join("tree"),
        &target.join("tree"),
        "restore after kills",
    );

    // Saves killed at three points, over the existing tag.
    let changed = rig.dir("changed");
    build_tree(&changed.join("tree"));
    fs::write(changed.join("tree/small"), "changed").unwrap();
    let mut save_kills = Vec::new();
    for extra_ms in [0, 30, 150] {
        let child = rig.spawn(&changed, &rig.save_args("old"));
        let killed =
            kill_once_debris_appears(child, &rig.cache, SPOOL, Duration::from_millis(extra_ms));
        eprintln!("save killed after +{extra_ms} ms: {killed:?} (None: it had finished)");
        save_kills.push(killed);
    }
    let spools = debris(&rig.cache, SPOOL);
    assert!(
        spools.names > 0,
        "no killed save left a spool: the test proves nothing ({save_kills:?})"
    );

    // The old tag still restores the old tree (unless a save finished
    // before its kill and moved the tag, as it may).
    let old_again = rig.dir("old-again");
    rig.restore(&old_again, "old");
    let old_tree = if save_kills.iter().all(Option::is_some) {
        origin.join("tree")
    } else {
        eprintln!("a save finished before its kill: the tag moved");
        changed.join("tree")
    };
    assert_same_tree(
        &old_tree,
        &old_again.join("tree"),
        "old tag after killed saves",
    );

    // prune --dry-run lists the spools (and removes nothing).
    let local = format!("type=local,dest={}", rig.cache.display());
    let out = rig
        .command(
            &rig.base,
            &["prune", "--dry-run", "--json", "--blobs-only", &local],
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = common::json_of(&out);
    let listed = report["spools"].as_array().unwrap();
    assert_eq!(listed.len(), spools.names, "{report}");
    assert_eq!(
        listed
            .iter()
            .map(|s| s["bytes"].as_u64().unwrap())
            .sum::<u64>(),
        spools.bytes
    );
    let out = rig
        .command(&rig.base, &["prune", "--dry-run", "--blobs-only", &local])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("would remove"), "{stderr}");
    let first = find(&rig.cache, SPOOL);
    assert!(stderr.contains(&*first[0].to_string_lossy()), "{stderr}");
    assert_eq!(debris(&rig.cache, SPOOL).names, spools.names);

    // The next save removes them, and those of $TMPDIR (a registry save
    // spools there; one killed is planted).
    let planted = plant_dead_spool(&rig.tmpdir, "regcache-spool-");
    rig.save(&changed, "new");
    assert_eq!(find(&rig.cache, SPOOL), Vec::<PathBuf>::new());
    assert!(!planted.exists());
    assert_eq!(find(&rig.tmpdir, "regcache-spool-"), Vec::<PathBuf>::new());
    let new = rig.dir("new");
    rig.restore(&new, "new");
    assert_same_tree(&changed.join("tree"), &new.join("tree"), "save after kills");

    // A save killed once more; prune removes its spool.
    let child = rig.spawn(&changed, &rig.save_args("again"));
    let killed = kill_once_debris_appears(child, &rig.cache, SPOOL, Duration::ZERO);
    eprintln!("save killed before prune: {killed:?}");
    rig.run(&rig.base, &["prune", "--blobs-only", &local]);
    assert_eq!(find(&rig.cache, SPOOL), Vec::<PathBuf>::new());
    let old_last = rig.dir("old-last");
    rig.restore(&old_last, "old");
    assert_same_tree(
        &origin.join("tree"),
        &old_last.join("tree"),
        "old tag after prune",
    );
}
