//! Spool directories whose owner can be told after it is killed.
//!
//! A spool is `<prefix><pid>-<random>` holding `owner.lock`, on which its
//! process holds an exclusive `flock` for the spool's lifetime. The kernel
//! drops the lock when the process dies however it dies, and the lock
//! works across pid namespaces (containers sharing a cache directory),
//! so it decides: a held lock means a live owner. The lock file appears
//! under its name only once locked (made under another name, locked, then
//! renamed), so an unlocked `owner.lock` never belongs to a spool being
//! set up. Without `owner.lock` (killed while setting up, or a file system
//! without locks) the pid in the name decides.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::layer::leftovers::{owner_pid, process_gone, tree_bytes};

/// Spools beside a local cache's layout, hidden from listings.
pub const LOCAL_PREFIX: &str = ".regcache-spool-";
/// Spools in the system's temporary directory.
pub const TEMP_PREFIX: &str = "regcache-spool-";
const OWNER_LOCK: &str = "owner.lock";
const PENDING_LOCK: &str = ".owner.lock.new";

/// A spool directory, removed with its content when dropped.
pub struct SpoolDir {
    dir: tempfile::TempDir,
    /// Held (locked) until the directory is gone.
    _lock: Option<File>,
}

impl SpoolDir {
    pub fn new_in(parent: &Path, prefix: &str) -> io::Result<SpoolDir> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}{}-", std::process::id()))
            .tempdir_in(parent)?;
        let pending = dir.path().join(PENDING_LOCK);
        let lock = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&pending)?;
        // A file system without locks still spools: the pid in the name
        // then tells the owner.
        let lock = match lock.lock() {
            Ok(()) => {
                fs::rename(&pending, dir.path().join(OWNER_LOCK))?;
                Some(lock)
            }
            Err(err) => {
                tracing::debug!("{}: cannot lock ({err})", dir.path().display());
                drop(lock);
                fs::remove_file(&pending)?;
                None
            }
        };
        Ok(SpoolDir { dir, _lock: lock })
    }

    /// A spool in `$TMPDIR` (or `/tmp`).
    pub fn in_temp_dir() -> io::Result<SpoolDir> {
        SpoolDir::new_in(&std::env::temp_dir(), TEMP_PREFIX)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A new file in a spool. Spool files become blobs of a local cache by a
/// hard link, so they get the mode any other file of it gets (0666 less
/// the umask), not tempfile's 0600 that hides them from a web server or
/// another user serving the cache.
pub fn blob_file_in(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
}

/// A spool directory whose owner is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub path: PathBuf,
    /// What its files hold.
    pub bytes: u64,
}

/// The spools in `parent` named with `prefix` whose owner is gone; with
/// `remove`, removed (those that could not be are left out, with a
/// warning). Only directories of this user are considered: in a shared
/// `/tmp` another user's are neither ours to judge nor to remove. Never
/// fails: a listing that cannot be read finds nothing.
pub fn leftovers(parent: &Path, prefix: &str, remove: bool) -> Vec<Leftover> {
    let listing = match fs::read_dir(parent) {
        Ok(listing) => listing,
        Err(err) => {
            tracing::debug!(
                "looking for spools of killed saves in {}: {err}",
                parent.display()
            );
            return Vec::new();
        }
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let mut found = Vec::new();
    for entry in listing.flatten() {
        let name = entry.file_name();
        if !name.as_bytes().starts_with(prefix.as_bytes()) {
            continue;
        }
        // lstat: a symlink planted under a spool's name is not a spool.
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_dir() || meta.uid() != uid {
            continue;
        }
        let path = entry.path();
        let Some(_gone) = owner_gone(&path, name.as_bytes(), prefix) else {
            continue;
        };
        let bytes = tree_bytes(&path);
        if remove {
            match fs::remove_dir_all(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => {
                    tracing::warn!(
                        "cannot remove {}, the spool of a killed save: {err}",
                        path.display()
                    );
                    continue;
                }
            }
        }
        found.push(Leftover { path, bytes });
    }
    found
}

/// Removes the leftover spools in `parent` and logs what went.
pub fn sweep(parent: &Path, prefix: &str) {
    let removed = leftovers(parent, prefix, true);
    if !removed.is_empty() {
        tracing::info!(
            "{}: removed {} spool director{} left by killed runs ({} bytes)",
            parent.display(),
            removed.len(),
            if removed.len() == 1 { "y" } else { "ies" },
            removed.iter().map(|l| l.bytes).sum::<u64>()
        );
    }
}

/// `Some` when the spool's owner is gone: then the returned lock (if any)
/// is held by us, so a second sweeper judging meanwhile sees it alive.
fn owner_gone(path: &Path, name: &[u8], prefix: &str) -> Option<Option<File>> {
    match File::open(path.join(OWNER_LOCK)) {
        Ok(lock) => match lock.try_lock() {
            Ok(()) => return Some(Some(lock)),
            Err(fs::TryLockError::WouldBlock) => return None,
            Err(fs::TryLockError::Error(err)) => {
                tracing::debug!(
                    "{}: cannot test its lock ({err}); judging by the pid in its name",
                    path.display()
                );
            }
        },
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => {
            tracing::debug!("{}: {err}; judging by the pid in its name", path.display());
        }
    }
    // Spools of older versions carry no pid: their owner is unknowable.
    let pid = owner_pid(name, prefix.as_bytes())?;
    process_gone(pid).then_some(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn a_live_spool_is_kept_and_a_dead_one_goes() {
        let tmp = tempfile::tempdir().unwrap();
        let live = SpoolDir::new_in(tmp.path(), LOCAL_PREFIX).unwrap();
        fs::write(live.path().join("layer"), "live").unwrap();
        let name = live.path().file_name().unwrap().to_string_lossy();
        assert!(
            name.starts_with(&format!("{LOCAL_PREFIX}{}-", std::process::id())),
            "{name}"
        );
        assert!(live.path().join(OWNER_LOCK).is_file());

        // Killed after locking: the lock is free, whatever the pid says
        // (ours here, as if the pid had been reused or were another
        // namespace's).
        let killed = tmp
            .path()
            .join(format!("{LOCAL_PREFIX}{}-abc", std::process::id()));
        fs::create_dir(&killed).unwrap();
        fs::write(killed.join(OWNER_LOCK), "").unwrap();
        fs::write(killed.join("layer"), vec![0u8; 300]).unwrap();
        // Killed before locking: judged by its pid.
        let early = tmp.path().join(format!("{LOCAL_PREFIX}{}-def", dead_pid()));
        fs::create_dir(&early).unwrap();
        fs::write(early.join(PENDING_LOCK), "").unwrap();
        // An old spool without a pid, a symlink and a file: not ours to judge.
        let old = tmp.path().join(format!("{LOCAL_PREFIX}Ab3xYz"));
        fs::create_dir(&old).unwrap();
        std::os::unix::fs::symlink(&killed, tmp.path().join(format!("{LOCAL_PREFIX}1-x"))).unwrap();
        fs::write(tmp.path().join(format!("{LOCAL_PREFIX}1-y")), "").unwrap();
        // Another prefix.
        let other = tmp.path().join(format!("{TEMP_PREFIX}{}-x", dead_pid()));
        fs::create_dir(&other).unwrap();

        let mut listed = leftovers(tmp.path(), LOCAL_PREFIX, false);
        listed.sort_by(|a, b| a.path.cmp(&b.path));
        let mut expected = vec![
            Leftover {
                path: killed.clone(),
                bytes: 300,
            },
            Leftover {
                path: early.clone(),
                bytes: 0,
            },
        ];
        expected.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(listed, expected);
        assert!(
            killed.exists() && early.exists(),
            "a listing removes nothing"
        );

        let mut removed = leftovers(tmp.path(), LOCAL_PREFIX, true);
        removed.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(removed, expected);
        assert!(!killed.exists() && !early.exists());
        assert_eq!(fs::read(live.path().join("layer")).unwrap(), b"live");
        assert!(old.exists() && other.exists());
        assert!(fs::symlink_metadata(tmp.path().join(format!("{LOCAL_PREFIX}1-x"))).is_ok());

        let path = live.path().to_path_buf();
        drop(live);
        assert!(!path.exists());
    }

    #[test]
    fn a_spool_locked_by_another_process_is_alive_whatever_its_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = tmp.path().join(format!("{LOCAL_PREFIX}{}-x", dead_pid()));
        fs::create_dir(&spool).unwrap();
        let lock = spool.join(OWNER_LOCK);
        fs::write(&lock, "").unwrap();
        // flock(1) holds the lock in a child process until stdin closes.
        let mut holder = std::process::Command::new("flock")
            .arg(&lock)
            .args(["cat"])
            .stdin(std::process::Stdio::piped())
            .spawn();
        let Ok(holder) = holder.as_mut() else {
            eprintln!("flock(1) is not installed; skipping");
            return;
        };
        // Wait until the child holds it (our own try_lock fails).
        let probe = File::open(&lock).unwrap();
        while probe.try_lock().is_ok() {
            probe.unlock().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(leftovers(tmp.path(), LOCAL_PREFIX, true).is_empty());
        assert!(spool.exists());
        drop(holder.stdin.take());
        holder.wait().unwrap();
        assert_eq!(leftovers(tmp.path(), LOCAL_PREFIX, true).len(), 1);
        assert!(!spool.exists());
    }
}
