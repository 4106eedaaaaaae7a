//! Directory listings for the walk, each with its entries' metadata, read
//! ahead by a second thread. On these machines a walk of a many-small-files
//! tree is system calls (a `getdents` per directory, a `statx` per entry)
//! and it is most of what a save of an unchanged tree costs; two threads
//! reading listings halve that wall time. The walk's order and results do
//! not change: only who reads a listing does.
//!
//! Whoever reads a listing (the walker or the read-ahead thread) announces
//! its subdirectories. The read-ahead thread takes the second-earliest
//! announced directory in walk order, leaving the earliest to the walker,
//! which is about to need it; the walker reads any listing nobody has
//! started, waits for one being read, and takes one that is ready. Ready
//! listings are bounded ([`HELD_ENTRIES`]), so memory stays flat however
//! large the tree.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};

use super::leftovers::RESTORE_TEMP_PREFIX;

/// One entry of a directory, with what `lstat` said of it.
#[derive(Debug)]
pub(crate) struct Child {
    pub name: OsString,
    pub meta: io::Result<fs::Metadata>,
}

/// A directory's remaining entries, sorted by name.
pub(crate) type Listing = std::vec::IntoIter<Child>;

/// Entries held in listings read ahead and not yet taken.
const HELD_ENTRIES: usize = 2 * 1024;

/// Reads `dir`'s entries sorted by name bytes, each with its metadata
/// (`lstat` relative to the open directory).
pub(crate) fn read_listing(dir: &Path) -> io::Result<Vec<Child>> {
    let mut children = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        children.push(Child {
            name: entry.file_name(),
            meta: entry.metadata(),
        });
    }
    children.sort_unstable_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    Ok(children)
}

/// A directory's place in walk order: its path relative to the root with
/// each `/` as a NUL, which no name holds, so byte order is depth-first
/// order of names sorted by bytes.
fn walk_key(rel: &[u8]) -> Vec<u8> {
    rel.iter().map(|&b| if b == b'/' { 0 } else { b }).collect()
}

enum Slot {
    Reading,
    Ready(io::Result<Vec<Child>>),
}

#[derive(Default)]
struct State {
    /// Announced directories nobody has started, in walk order.
    announced: BTreeSet<Vec<u8>>,
    /// Directories the read-ahead thread has taken.
    slots: HashMap<Vec<u8>, Slot>,
    held: usize,
    stop: bool,
}

/// The listings of one walk, shared by the walker and the read-ahead thread.
pub(crate) struct Listings<'a> {
    root: &'a Path,
    state: Mutex<State>,
    changed: Condvar,
}

impl<'a> Listings<'a> {
    pub(crate) fn new(root: &'a Path) -> Self {
        Listings {
            root,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only listings behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The listing of the directory at `rel` (`full` on disk), for the
    /// walker: taken if read ahead, waited for if being read, else read now.
    pub(crate) fn take(&self, rel: &[u8], full: &Path) -> io::Result<Vec<Child>> {
        let key = walk_key(rel);
        let mut state = self.lock();
        loop {
            match state.slots.remove(&key) {
                Some(Slot::Ready(listing)) => {
                    state.held -= listing.as_ref().map_or(0, Vec::len);
                    self.changed.notify_all();
                    return listing;
                }
                Some(Slot::Reading) => {
                    state.slots.insert(key.clone(), Slot::Reading);
                    state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                None => {
                    state.announced.remove(&key);
                    break;
                }
            }
        }
        drop(state);
        let listing = read_listing(full);
        if let Ok(children) = &listing {
            self.announce(rel, children);
        }
        listing
    }

    /// Makes the subdirectories in `children` of `rel` known to the
    /// read-ahead thread (not those the walk skips).
    fn announce(&self, rel: &[u8], children: &[Child]) {
        let mut dirs = children
            .iter()
            .filter(|c| c.meta.as_ref().is_ok_and(|m| m.is_dir()))
            .filter(|c| {
                !c.name
                    .as_bytes()
                    .starts_with(RESTORE_TEMP_PREFIX.as_bytes())
            })
            .peekable();
        if dirs.peek().is_none() {
            return;
        }
        let mut state = self.lock();
        for dir in dirs {
            let mut child = Vec::with_capacity(rel.len() + 1 + dir.name.len());
            child.extend_from_slice(rel);
            if !rel.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(dir.name.as_bytes());
            state.announced.insert(walk_key(&child));
        }
        self.changed.notify_all();
    }

    /// The read-ahead thread's loop, until [`Listings::stop`].
    pub(crate) fn read_ahead(&self) {
        let mut state = self.lock();
        loop {
            if state.stop {
                return;
            }
            let next = if state.held < HELD_ENTRIES {
                // The earliest is the walker's next; take the one after it.
                state.announced.iter().nth(1).cloned()
            } else {
                None
            };
            let Some(key) = next else {
                state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            state.announced.remove(&key);
            state.slots.insert(key.clone(), Slot::Reading);
            drop(state);
            let rel: Vec<u8> = key.iter().map(|&b| if b == 0 { b'/' } else { b }).collect();
            let full = self.root.join(Path::new(std::ffi::OsStr::from_bytes(&rel)));
            let listing = read_listing(&full);
            if let Ok(children) = &listing {
                self.announce(&rel, children);
            }
            state = self.lock();
            state.held += listing.as_ref().map_or(0, Vec::len);
            state.slots.insert(key, Slot::Ready(listing));
            self.changed.notify_all();
        }
    }

    /// Ends the read-ahead thread (the walk is over, or stopped early).
    pub(crate) fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_all();
    }

    /// Calls [`Listings::stop`] when dropped.
    pub(crate) fn stopper(&self) -> Stopper<'_, 'a> {
        Stopper(self)
    }
}

pub(crate) struct Stopper<'l, 'a>(&'l Listings<'a>);

impl Drop for Stopper<'_, '_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_keys_sort_depth_first_by_name_bytes() {
        let mut paths: Vec<&[u8]> = vec![b"a-x", b"a/z", b"ab", b"a", b"a/b/c", b"a/b"];
        paths.sort_by_key(|p| walk_key(p));
        assert_eq!(paths, [&b"a"[..], b"a/b", b"a/b/c", b"a/z", b"a-x", b"ab"]);
    }

    #[test]
    fn listings_read_ahead_are_the_same_as_read_by_the_walker() {
        let dir = tempfile::tempdir().unwrap();
        for d in 0..20 {
            for s in 0..3 {
                let sub = dir.path().join(format!("d{d:02}/s{s}"));
                fs::create_dir_all(&sub).unwrap();
                fs::write(sub.join("f"), [d as u8, s as u8]).unwrap();
            }
        }
        let listings = Listings::new(dir.path());
        let names = |c: &[Child]| c.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        std::thread::scope(|scope| {
            scope.spawn(|| listings.read_ahead());
            let top = listings.take(b"", dir.path()).unwrap();
            assert_eq!(top.len(), 20);
            for d in 0..20 {
                let rel = format!("d{d:02}");
                let got = listings
                    .take(rel.as_bytes(), &dir.path().join(&rel))
                    .unwrap();
                assert_eq!(names(&got), ["s0", "s1", "s2"]);
                for s in 0..3 {
                    let rel = format!("d{d:02}/s{s}");
                    let got = listings
                        .take(rel.as_bytes(), &dir.path().join(&rel))
                        .unwrap();
                    assert_eq!(names(&got), ["f"]);
                    assert_eq!(got[0].meta.as_ref().unwrap().len(), 2);
                }
            }
            listings.stop();
        });
        assert_eq!(
            listings.lock().held,
            0,
            "every listing read ahead was taken"
        );
    }

    #[test]
    fn a_walker_that_panics_does_not_leave_the_read_ahead_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let listings = Listings::new(dir.path());
        let walked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::thread::scope(|scope| {
                scope.spawn(|| listings.read_ahead());
                let _stop = listings.stopper();
                panic!("a bug in the walk");
            })
        }));
        // Reaching here at all means the scope could join the thread.
        assert!(walked.is_err());
    }

    #[test]
    fn a_listing_that_fails_fails_for_the_walker() {
        let dir = tempfile::tempdir().unwrap();
        let listings = Listings::new(dir.path());
        let gone = dir.path().join("gone");
        assert!(listings.take(b"gone", &gone).is_err());
    }
}
