//! A cache is hostile input: these caches, built by hand as an attacker
//! would, try to make an ordinary `regcache restore` write outside the
//! directory it restores into — through entry roots, symlinks the cache
//! plants or finds on disk, and other spellings of the same path. Each test
//! checks that OUTSIDE is exactly as it was, and what the restore did
//! instead.

use crate::common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::common::hostile::{HostileCache, Item, tar};
use crate::common::{regcache, snapshot};
use predicates::prelude::*;

/// A victim's working directory, a directory outside it worth attacking,
/// and a cache directory, all in one temporary directory.
struct Scene {
    _tmp: tempfile::TempDir,
    work: PathBuf,
    outside: PathBuf,
    home: PathBuf,
    cache: PathBuf,
    before: (
        std::collections::BTreeMap<String, common::Node>,
        Vec<Vec<String>>,
    ),
}

impl Scene {
    fn new() -> Scene {
        let tmp = tempfile::tempdir().expect("tempdir");
        // Physical paths: the working directory a process sees is one.
        let base = tmp.path().canonicalize().expect("canonical tempdir");
        let work = base.join("work");
        let outside = base.join("outside");
        let home = base.join("home");
        let cache = base.join("cache");
        for dir in [&work, &outside, &home] {
            fs::create_dir_all(dir).expect("mkdir");
        }
        fs::create_dir_all(outside.join("deep")).expect("mkdir");
        fs::write(outside.join("authorized_keys"), "ssh-ed25519 AAAA owner\n").expect("write");
        let before = snapshot(&outside);
        Scene {
            _tmp: tmp,
            work,
            outside,
            home,
            cache,
            before,
        }
    }

    fn outside(&self) -> &str {
        self.outside.to_str().expect("utf-8 temp path")
    }

    fn spec(&self) -> String {
        format!("type=local,src={}", self.cache.display())
    }

    fn restore(&self, extra: &[&str]) -> assert_cmd::assert::Assert {
        let spec = self.spec();
        let mut args = vec!["restore", "--cache-from", spec.as_str()];
        args.extend_from_slice(extra);
        regcache(&self.work)
            .env("HOME", &self.home)
            .args(&args)
            .assert()
    }

    /// The one promise every test keeps.
    fn assert_outside_untouched(&self) {
        assert_eq!(
            snapshot(&self.outside),
            self.before,
            "the restore changed a directory outside the one it restored into"
        );
    }
}

fn is_real_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// Issue reproduction 1: entry `.` plants `tree -> OUTSIDE`, entry `tree`
/// holds files. The inner entry goes first and makes `tree` a real
/// directory; the outer one then meets it where its symlink would go.
#[test]
fn entry_dot_cannot_plant_a_symlink_at_another_entrys_root() {
    let scene = Scene::new();
    HostileCache::new()
        .entry(".", vec![tar(&[Item::Symlink("tree", scene.outside())])])
        .entry("tree", vec![tar(&[Item::File("pwned", b"x")])])
        .write(&scene.cache);
    scene
        .restore(&[])
        .failure()
        .stderr(predicate::str::contains(
            "a directory is on disk where this layer has a symlink",
        ));
    scene.assert_outside_untouched();
    assert!(is_real_dir(&scene.work.join("tree")));
    assert_eq!(fs::read(scene.work.join("tree/pwned")).expect("read"), b"x");
}

/// Issue reproduction 2: an absolute spelling of a parent entry. Nesting is
/// decided on canonical paths, so `<cwd>/tree` is the parent of `tree/sub`
/// however many components each spelling has.
#[test]
fn an_absolute_alias_of_a_parent_entry_is_ordered_as_the_parent() {
    let scene = Scene::new();
    let alias = format!("{}/tree", scene.work.display());
    HostileCache::new()
        .entry(&alias, vec![tar(&[Item::Symlink("sub", scene.outside())])])
        .entry("tree/sub", vec![tar(&[Item::File("pwned", b"x")])])
        .write(&scene.cache);
    scene.restore(&[]).failure();
    scene.assert_outside_untouched();
    assert!(is_real_dir(&scene.work.join("tree/sub")));
}

/// Issue reproduction 3: a symlink one restore planted (legitimately, inside
/// its entry) is not followed by the next restore of a nested entry, not
/// even with --allow-root-symlink, since an entry of the same cache holds it.
#[test]
fn a_symlink_an_earlier_restore_planted_is_not_followed() {
    let scene = Scene::new();
    HostileCache::new()
        .entry("tree", vec![tar(&[Item::Symlink("sub", scene.outside())])])
        .entry("tree/sub", vec![tar(&[Item::File("pwned", b"x")])])
        .write(&scene.cache);
    scene.restore(&["tree"]).success();
    assert!(
        fs::symlink_metadata(scene.work.join("tree/sub"))
            .expect("lstat")
            .file_type()
            .is_symlink()
    );
    let link = scene.work.join("tree/sub");
    for extra in [&["tree/sub"][..], &["--allow-root-symlink", "tree/sub"]] {
        scene
            .restore(extra)
            .failure()
            .stderr(predicate::str::contains(format!(
                "{} is a symlink to {}; refusing to restore through it",
                link.display(),
                scene.outside.display()
            )));
        scene.assert_outside_untouched();
    }
}

/// Two spellings of one directory are one entry: `./tree/` and `tree/.`
/// cannot be restored as two separate roots, one planting and one writing.
#[test]
fn two_spellings_of_one_entry_are_restored_once() {
    let scene = Scene::new();
    HostileCache::new()
        .entry("./tree/", vec![tar(&[Item::File("first", b"1")])])
        .entry("tree/.", vec![tar(&[Item::File("second", b"2")])])
        .write(&scene.cache);
    scene.restore(&[]).success();
    assert!(scene.work.join("tree/first").exists());
    assert!(!scene.work.join("tree/second").exists());
    scene.assert_outside_untouched();
}

/// A `..` spelling that leaves the working directory is not restored
/// unless the user names it.
#[test]
fn a_dotdot_entry_leaving_the_working_directory_needs_to_be_named() {
    let scene = Scene::new();
    HostileCache::new()
        .entry(
            "tree/../../outside",
            vec![tar(&[Item::File("authorized_keys", b"attacker")])],
        )
        .write(&scene.cache);
    scene
        .restore(&[])
        .success()
        .stderr(predicate::str::contains(
            "not restored unless named as a PATH",
        ));
    scene.assert_outside_untouched();
}

/// An absolute entry that names OUTSIDE through `..` of the working
/// directory is just as foreign.
#[test]
fn an_absolute_dotdot_entry_is_judged_by_where_it_leads() {
    let scene = Scene::new();
    let name = format!("{}/../outside", scene.work.display());
    HostileCache::new()
        .entry(
            &name,
            vec![tar(&[Item::File("authorized_keys", b"attacker")])],
        )
        .write(&scene.cache);
    scene.restore(&[]).success();
    scene.assert_outside_untouched();
}

/// `..` in an entry path is taken lexically: `link/../x` is `x` in the
/// working directory, even when `link` is a symlink the kernel would follow.
#[test]
fn dotdot_after_a_symlink_is_resolved_lexically() {
    let scene = Scene::new();
    symlink(scene.outside.join("deep"), scene.work.join("link")).expect("symlink");
    HostileCache::new()
        .entry("link/../x", vec![tar(&[Item::File("f", b"x")])])
        .write(&scene.cache);
    scene.restore(&[]).success();
    assert_eq!(fs::read(scene.work.join("x/f")).expect("read"), b"x");
    scene.assert_outside_untouched();
}

/// A symlink on disk on the way to a root (here planted before the restore
/// by anyone) is refused, and --allow-root-symlink does not cover it: it
/// permits the root itself only.
#[test]
fn a_symlinked_parent_on_disk_is_never_followed() {
    let scene = Scene::new();
    symlink(&scene.outside, scene.work.join("link")).expect("symlink");
    HostileCache::new()
        .entry("link/sub", vec![tar(&[Item::File("pwned", b"x")])])
        .write(&scene.cache);
    for extra in [&[][..], &["--allow-root-symlink"]] {
        scene
            .restore(extra)
            .failure()
            .stderr(predicate::str::contains("refusing to restore through it"))
            .stderr(predicate::str::contains("hint: remove"));
        scene.assert_outside_untouched();
    }
}

/// A root that is itself a symlink on disk is refused with the link, its
/// target and the flag that allows it; with the flag, the restore writes
/// where it points, as a user who moved `target/` to another disk wants.
#[test]
fn a_symlinked_root_needs_the_users_leave() {
    let scene = Scene::new();
    let elsewhere = scene.home.join("fast-disk-target");
    fs::create_dir_all(&elsewhere).expect("mkdir");
    symlink(&elsewhere, scene.work.join("target")).expect("symlink");
    HostileCache::new()
        .entry("target", vec![tar(&[Item::File("built", b"artifact")])])
        .write(&scene.cache);
    scene
        .restore(&[])
        .failure()
        .stderr(predicate::str::contains(format!(
            "{} is a symlink to {}",
            scene.work.join("target").display(),
            elsewhere.display()
        )))
        .stderr(
            predicate::str::contains("hint:").and(predicate::str::contains("--allow-root-symlink")),
        )
        // Said once: no `caused by:` line repeating what the error says.
        .stderr(predicate::str::contains("caused by").not());
    assert!(!elsewhere.join("built").exists());
    scene.restore(&["--allow-root-symlink"]).success();
    assert_eq!(
        fs::read(elsewhere.join("built")).expect("read"),
        b"artifact"
    );
    scene.assert_outside_untouched();
}

/// An entry `.` that is a file where another entry needs a directory: the
/// nested entry makes its directory first, and the file then conflicts.
#[test]
fn a_file_where_another_entry_needs_a_directory_conflicts() {
    let scene = Scene::new();
    HostileCache::new()
        .entry(".", vec![tar(&[Item::File("tree", b"file")])])
        .entry("tree/sub", vec![tar(&[Item::File("f", b"x")])])
        .write(&scene.cache);
    scene.restore(&[]).failure();
    assert!(is_real_dir(&scene.work.join("tree/sub")));
    scene.assert_outside_untouched();
}

/// A file already on disk where a root's parent must be is not replaced.
#[test]
fn a_file_on_disk_on_the_way_to_a_root_is_left_alone() {
    let scene = Scene::new();
    fs::write(scene.work.join("tree"), "mine").expect("write");
    HostileCache::new()
        .entry("tree/sub", vec![tar(&[Item::File("f", b"x")])])
        .write(&scene.cache);
    scene
        .restore(&[])
        .failure()
        .stderr(predicate::str::contains("exists and is not a directory"));
    assert_eq!(fs::read(scene.work.join("tree")).expect("read"), b"mine");
    scene.assert_outside_untouched();
}

/// Whiteouts at an entry's root delete only inside the root: `..` as a
/// whiteout target is refused, and an opaque whiteout empties the root
/// itself, not what lies beside it.
#[test]
fn whiteouts_at_an_entry_root_stay_inside_it() {
    let scene = Scene::new();
    fs::create_dir_all(scene.work.join("tree")).expect("mkdir");
    fs::write(scene.work.join("tree/old"), "old").expect("write");
    fs::write(scene.work.join("beside"), "keep").expect("write");
    HostileCache::new()
        .entry("tree", vec![tar(&[Item::File(".wh...", b"")])])
        .write(&scene.cache);
    scene
        .restore(&[])
        .failure()
        .stderr(predicate::str::contains("malformed whiteout name"));
    assert!(scene.work.join("tree/old").exists());

    let cache = HostileCache::new().entry(
        "tree",
        vec![tar(&[
            Item::File(".wh..wh..opq", b""),
            Item::File("new", b"n"),
        ])],
    );
    fs::remove_dir_all(&scene.cache).expect("rm");
    cache.write(&scene.cache);
    scene.restore(&[]).success();
    assert!(!scene.work.join("tree/old").exists());
    assert!(scene.work.join("tree/new").exists());
    assert!(scene.work.join("beside").exists());
    scene.assert_outside_untouched();
}

/// An opaque whiteout in an entry whose root is a symlink on disk would
/// empty whatever the link points at: refused like any symlinked root.
#[test]
fn an_opaque_whiteout_cannot_empty_a_planted_root_link() {
    let scene = Scene::new();
    symlink(&scene.outside, scene.work.join("tree")).expect("symlink");
    HostileCache::new()
        .entry("tree", vec![tar(&[Item::File(".wh..wh..opq", b"")])])
        .write(&scene.cache);
    scene.restore(&[]).failure();
    scene.assert_outside_untouched();
}

/// Two caches: the branch's entry `.` plants `tree -> OUTSIDE`, main's
/// holds `tree`. Entries of different caches nest as canonical paths too.
#[test]
fn entries_from_two_caches_nest_on_canonical_paths() {
    let scene = Scene::new();
    let main_cache = scene.cache.with_file_name("main-cache");
    HostileCache::new()
        .entry(".", vec![tar(&[Item::Symlink("tree", scene.outside())])])
        .write(&scene.cache);
    HostileCache::new()
        .entry("tree", vec![tar(&[Item::File("pwned", b"x")])])
        .write(&main_cache);
    let main_spec = format!("type=local,src={}", main_cache.display());
    scene
        .restore(&["--allow-root-symlink", "--cache-from", &main_spec])
        .failure();
    scene.assert_outside_untouched();
    assert!(is_real_dir(&scene.work.join("tree")));
}

/// A planted link deeper on the way: entry `.` puts `a/b -> OUTSIDE`, then
/// the user restores `a/b/c` by name. The walk from the working directory
/// meets the link before the root.
#[test]
fn a_planted_link_deeper_on_the_way_to_a_named_root_is_refused() {
    let scene = Scene::new();
    HostileCache::new()
        .entry(
            ".",
            vec![tar(&[
                Item::Dir("a/"),
                Item::Symlink("a/b", scene.outside()),
            ])],
        )
        .entry("a/b/c", vec![tar(&[Item::File("pwned", b"x")])])
        .write(&scene.cache);
    scene.restore(&["."]).success();
    scene
        .restore(&["--allow-root-symlink", "a/b/c"])
        .failure()
        .stderr(predicate::str::contains("refusing to restore through it"));
    scene.assert_outside_untouched();
}

/// An absolute entry elsewhere than the working and home directories is
/// walked from the parent of the outermost entry that contains it, so a
/// link its enclosing entry planted is not followed either.
#[test]
fn a_named_absolute_entry_is_walked_from_its_outermost_enclosing_entry() {
    let scene = Scene::new();
    let elsewhere = scene.home.with_file_name("elsewhere");
    fs::create_dir_all(&elsewhere).expect("mkdir");
    let outer = format!("{}/build", elsewhere.display());
    let inner = format!("{}/build/out/sub", elsewhere.display());
    HostileCache::new()
        .entry(&outer, vec![tar(&[Item::Symlink("out", scene.outside())])])
        .entry(&inner, vec![tar(&[Item::File("pwned", b"x")])])
        .write(&scene.cache);
    // The user names both (they lie outside cwd and $HOME).
    scene.restore(&[&outer]).success();
    scene
        .restore(&["--allow-root-symlink", &inner])
        .failure()
        .stderr(predicate::str::contains("refusing to restore through it"));
    scene.assert_outside_untouched();
}

/// A hard link at an entry's root may not reach out of it.
#[test]
fn a_hard_link_out_of_the_entry_root_is_refused() {
    let scene = Scene::new();
    let target = format!("{}/authorized_keys", scene.outside());
    HostileCache::new()
        .entry(
            "tree",
            vec![tar(&[
                Item::Hardlink("abs", &target),
                Item::Hardlink("rel", "../../outside/authorized_keys"),
            ])],
        )
        .write(&scene.cache);
    scene.restore(&[]).failure();
    assert!(!scene.work.join("tree/abs").exists());
    scene.assert_outside_untouched();
}
