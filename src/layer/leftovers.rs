//! Debris of killed runs: temporaries a restore (`.regcache-tmp-<pid>-…`)
//! or a save (spool directories) leaves behind when it dies before its own
//! cleanup runs. Each name carries its owner's pid, and only names whose
//! owner is gone are removed: another restore may be staging into the same
//! tree right now.
//!
//! The pid can be misjudged alive (it was reused), which only delays the
//! cleanup. It can be misjudged gone when the tree is shared with a process
//! in another pid namespace (a container): that is why spools also carry a
//! lock, see `crate::ops::spool`.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What every restore temporary's name starts with (`stage::TempNames`);
/// the pid and a `-` follow.
pub const RESTORE_TEMP_PREFIX: &str = ".regcache-tmp-";

/// How many entries were removed and how many bytes of regular files they
/// held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub count: usize,
    pub bytes: u64,
}

/// The pid in `<prefix><pid>-…`, when `name` has that form. Pids that are
/// not positive are refused: `kill(0, …)` and `kill(-n, …)` address
/// process groups.
pub fn owner_pid(name: &[u8], prefix: &[u8]) -> Option<libc::pid_t> {
    let rest = name.strip_prefix(prefix)?;
    let end = rest.iter().position(|&b| b == b'-')?;
    let digits = &rest[..end];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let pid: libc::pid_t = std::str::from_utf8(digits).ok()?.parse().ok()?;
    (pid > 0).then_some(pid)
}

/// Whether no process with this pid exists. EPERM (someone else's process)
/// and any other doubt count as alive: a leftover kept too long costs disk,
/// one removed too early breaks a running restore.
pub fn process_gone(pid: libc::pid_t) -> bool {
    if pid <= 0 || u32::try_from(pid).is_ok_and(|p| p == std::process::id()) {
        return false;
    }
    // SAFETY: signal 0 only checks that the pid can be signalled.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return false;
    }
    io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Removes, anywhere below `root`, every restore temporary whose owner
/// process is gone, files and directories alike. Symlinks are never
/// followed (a symlink is removed as itself, never descended into), and a
/// directory that cannot be read is skipped: cleanup is a courtesy, it
/// never fails the restore.
pub fn remove_restore_leftovers(root: &Path) -> Removed {
    let prefix = RESTORE_TEMP_PREFIX.as_bytes();
    let mut removed = Removed::default();
    let mut pending: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let listing = match fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(err) => {
                tracing::debug!(
                    "looking for leftovers of killed restores: skipping {}: {err}",
                    dir.display()
                );
                continue;
            }
        };
        for entry in listing {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    tracing::debug!(
                        "looking for leftovers of killed restores: {}: {err}",
                        dir.display()
                    );
                    break;
                }
            };
            let name = entry.file_name();
            // The entry's own type (lstat): a symlink is never a directory.
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if !name.as_bytes().starts_with(prefix) {
                if is_dir {
                    pending.push(entry.path());
                }
                continue;
            }
            // A live owner's staging directory holds only its own work:
            // not descended into.
            let Some(pid) = owner_pid(name.as_bytes(), prefix) else {
                continue;
            };
            if !process_gone(pid) {
                continue;
            }
            let path = entry.path();
            let bytes = tree_bytes(&path);
            // Neither call follows a symlink: unlink removes the link
            // itself, and remove_dir_all does not descend through links.
            let result = if is_dir {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match result {
                Ok(()) => {
                    tracing::debug!(
                        "removed {} ({bytes} bytes), left by killed restore {pid}",
                        path.display()
                    );
                    removed.count += 1;
                    removed.bytes += bytes;
                }
                // Another restore's cleanup got there first.
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => {
                    tracing::debug!("cannot remove leftover {}: {err}", path.display());
                }
            }
        }
    }
    removed
}

/// The bytes of the regular files at or below `path`, not following
/// symlinks; unreadable parts count as nothing.
pub fn tree_bytes(path: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![path.to_path_buf()];
    while let Some(path) = pending.pop() {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_file() {
            total += meta.len();
        } else if meta.is_dir()
            && let Ok(listing) = fs::read_dir(&path)
        {
            pending.extend(listing.flatten().map(|e| e.path()));
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn dead_pid() -> libc::pid_t {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        libc::pid_t::try_from(pid).unwrap()
    }

    fn temp_name(pid: libc::pid_t, suffix: &str) -> String {
        format!("{RESTORE_TEMP_PREFIX}{pid}-0123456789ab-{suffix}")
    }

    #[test]
    fn pids_are_read_only_from_the_expected_form() {
        let p = RESTORE_TEMP_PREFIX.as_bytes();
        assert_eq!(owner_pid(b".regcache-tmp-42-abc-1", p), Some(42));
        assert_eq!(owner_pid(b".regcache-tmp-42-", p), Some(42));
        for name in [
            &b".regcache-tmp-42"[..],
            b".regcache-tmp--42-x",
            b".regcache-tmp-0-x",
            b".regcache-tmp-4a-x",
            b".regcache-tmp-99999999999-x",
            b"regcache-tmp-42-x",
        ] {
            assert_eq!(
                owner_pid(name, p),
                None,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn liveness() {
        let ours = libc::pid_t::try_from(std::process::id()).unwrap();
        assert!(!process_gone(ours));
        // pid 1 exists in every namespace; as another user it is EPERM.
        assert!(!process_gone(1));
        assert!(process_gone(dead_pid()));
    }

    #[test]
    fn removes_only_what_dead_owners_left_and_never_follows_links() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        let ours = libc::pid_t::try_from(std::process::id()).unwrap();
        let dead = dead_pid();

        // Outside the root: a dead owner's temporary a link points at, and
        // a precious file inside a linked directory.
        fs::write(outside.join(temp_name(dead, "victim")), "x").unwrap();
        fs::write(outside.join("precious"), "keep").unwrap();

        fs::write(root.join(temp_name(dead, "1")), vec![0u8; 1000]).unwrap();
        fs::write(root.join("a/b").join(temp_name(dead, "2")), vec![0u8; 24]).unwrap();
        let dead_dir = root.join("a").join(temp_name(dead, "3"));
        fs::create_dir_all(dead_dir.join("sub")).unwrap();
        fs::write(dead_dir.join("sub/f"), vec![0u8; 100]).unwrap();
        // Links inside a dead temporary directory, to outside: removing the
        // directory must remove the links, not what they point at.
        symlink(&outside, dead_dir.join("to-outside")).unwrap();
        symlink(outside.join("precious"), dead_dir.join("sub/to-precious")).unwrap();
        // A dead temporary that is itself a symlink: removed as a link.
        symlink(&outside, root.join(temp_name(dead, "4"))).unwrap();
        // A plain symlink to a directory holding a dead temporary: not
        // descended into.
        symlink(&outside, root.join("a/link")).unwrap();

        let live_file = root.join(temp_name(ours, "5"));
        fs::write(&live_file, "mine").unwrap();
        let live_dir = root.join("a/b").join(temp_name(ours, "6"));
        fs::create_dir_all(&live_dir).unwrap();
        fs::write(live_dir.join(temp_name(dead, "7")), "staged").unwrap();
        let unparsable = root.join(".regcache-tmp-notapid");
        fs::write(&unparsable, "?").unwrap();
        fs::write(root.join("a/regular"), "r").unwrap();

        let removed = remove_restore_leftovers(&root);
        assert_eq!(
            removed,
            Removed {
                count: 4,
                bytes: 1124
            }
        );
        assert!(!root.join(temp_name(dead, "1")).exists());
        assert!(!root.join("a/b").join(temp_name(dead, "2")).exists());
        assert!(fs::symlink_metadata(&dead_dir).is_err());
        assert!(fs::symlink_metadata(root.join(temp_name(dead, "4"))).is_err());
        assert_eq!(fs::read(outside.join("precious")).unwrap(), b"keep");
        assert!(outside.join(temp_name(dead, "victim")).exists());
        assert!(live_file.exists());
        assert!(live_dir.join(temp_name(dead, "7")).exists());
        assert!(unparsable.exists());
        assert!(root.join("a/regular").exists());
        assert!(fs::symlink_metadata(root.join("a/link")).is_ok());

        // Nothing left to do: a second pass removes nothing.
        assert_eq!(remove_restore_leftovers(&root), Removed::default());
    }

    #[test]
    fn an_unreadable_directory_is_skipped() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let locked = tmp.path().join("locked");
        fs::create_dir(&locked).unwrap();
        let dead = dead_pid();
        fs::write(locked.join(temp_name(dead, "1")), "x").unwrap();
        fs::write(tmp.path().join(temp_name(dead, "2")), "yy").unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
        let can_read = fs::read_dir(&locked).is_ok(); // root reads anyway
        let removed = remove_restore_leftovers(tmp.path());
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
        if can_read {
            assert_eq!(removed.count, 2);
        } else {
            assert_eq!(removed, Removed { count: 1, bytes: 2 });
            assert!(locked.join(temp_name(dead, "1")).exists());
        }
    }
}
