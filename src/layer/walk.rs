//! Walks a directory tree in tar order and cuts it into parts.
//!
//! Order: the names of each directory sorted by their bytes, depth first,
//! a directory before its children. Parts end at content-defined
//! boundaries (see [`Cutter`]): where a part ends depends on the paths near
//! it, not on everything before it, so a change to one file moves no
//! boundary but its own part's and the next save reuses every other part.
//! Only the current path's directory listings, a bounded number read ahead
//! (see `listing`), and one part's metadata are held: memory stays flat
//! however large the tree.

use std::collections::HashMap;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::leftovers::RESTORE_TEMP_PREFIX;
use super::listing::{Child, Listing, Listings};
use super::pack::PackError;
use super::pax::MTime;
use super::stats::EntryStats;
use super::tar_write::BLOCK;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind {
    Dir,
    File {
        size: u64,
    },
    Symlink {
        target: Vec<u8>,
    },
    /// A second name of a file already emitted; `target` is that first name.
    Hardlink {
        target: Vec<u8>,
    },
    /// An OCI whiteout (an empty file named `.wh.NAME`) in a delta layer:
    /// NAME is deleted from the layers below. Never produced by the walk.
    Whiteout,
}

/// One tar entry to write: metadata only, content is read by the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Relative to the root, `/`-separated, no trailing slash.
    pub path: Vec<u8>,
    pub kind: ItemKind,
    pub mode: u32,
    pub mtime: MTime,
}

/// A run of consecutive items that becomes one layer.
#[derive(Debug)]
pub struct Part {
    pub index: usize,
    pub items: Vec<Item>,
    /// No part follows: the walk has ended.
    pub last: bool,
}

impl Part {
    /// The file content this part holds: what packing it reads.
    pub fn content_bytes(&self) -> u64 {
        self.items
            .iter()
            .map(|item| match item.kind {
                ItemKind::File { size } => size,
                _ => 0,
            })
            .sum()
    }
}

/// What one item adds to a tar: PAX header and data, ustar header, content.
/// Long names make the PAX data a little longer; a block of slack covers it.
pub(crate) fn tar_cost(item: &Item) -> u64 {
    let names = (item.path.len() as u64).div_ceil(BLOCK as u64) * BLOCK as u64;
    let content = match item.kind {
        ItemKind::File { size } => size.div_ceil(BLOCK as u64) * BLOCK as u64,
        _ => 0,
    };
    3 * BLOCK as u64 + names + content
}

/// Walks `root`, calling `emit` with each part in order; `emit` returns
/// false to stop the walk early (a worker failed). Returns the tree's stats.
/// A second thread reads directory listings ahead of the walk (see
/// [`Listings`]).
pub fn walk(
    root: &Path,
    part_size: u64,
    emit: impl FnMut(Part) -> bool,
) -> Result<EntryStats, PackError> {
    let listings = Listings::new(root);
    std::thread::scope(|scope| {
        scope.spawn(|| listings.read_ahead());
        // Stops the read-ahead thread however the walk ends, a panic
        // included: the scope waits for that thread before unwinding on.
        let _stop = listings.stopper();
        walk_with(root, part_size, emit, &listings)
    })
}

fn walk_with(
    root: &Path,
    part_size: u64,
    mut emit: impl FnMut(Part) -> bool,
    listings: &Listings<'_>,
) -> Result<EntryStats, PackError> {
    let mut walker = Walker {
        root,
        listings,
        cutter: Cutter::new(part_size),
        stats: EntryStats::default(),
        seen_inodes: HashMap::new(),
        items: Vec::new(),
        part_bytes: 0,
        index: 0,
        temporaries: 0,
    };
    let mut stack: Vec<(Vec<u8>, Listing)> = vec![(Vec::new(), walker.listing(b"", root)?)];
    while let Some((dir, entries)) = stack.last_mut() {
        let Some(child) = entries.next() else {
            stack.pop();
            continue;
        };
        let mut rel = Vec::with_capacity(dir.len() + 1 + child.name.len());
        rel.extend_from_slice(dir);
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(child.name.as_bytes());
        let before = walker.items.len();
        if let Some(children) = walker.visit(rel.clone(), child)? {
            stack.push((rel, children));
        }
        let cut = walker.items.len() > before
            && walker.items.last().is_some_and(|item| {
                walker
                    .cutter
                    .cut_after(&item.path, walker.part_bytes, tar_cost(item))
            });
        if cut {
            let part = walker.take_part(false);
            if !emit(part) {
                return Ok(walker.stats);
            }
        }
    }
    if !walker.items.is_empty() || walker.index == 0 {
        // An empty tree still becomes one (empty) layer, so every entry has
        // a layer for its record to point at.
        let part = walker.take_part(true);
        emit(part);
    }
    walker.summarise_temporaries();
    Ok(walker.stats)
}

/// Content-defined part boundaries. A part may end after an item once it
/// holds `min` bytes (half the target), and does when a hash of the item's
/// path falls under a threshold proportional to the item's tar bytes, so
/// every byte past `min` has the same chance (1 in `target - min`) of
/// ending the part whatever the file sizes: parts average about `target`.
/// A part always ends at `max` (twice the target), which bounds a layer.
/// The decision looks only at the item's path and the part's size so far,
/// so after a change the boundaries fall back into step at the first
/// boundary path past it.
#[derive(Debug, Clone, Copy)]
pub struct Cutter {
    min: u64,
    max: u64,
}

impl Cutter {
    pub fn new(target: u64) -> Cutter {
        let target = target.max(2);
        Cutter {
            min: target / 2,
            max: target.saturating_mul(2),
        }
    }

    /// Whether the part ends after the item `path` that brought it to
    /// `part_bytes`, `cost` of them its own.
    pub fn cut_after(&self, path: &[u8], part_bytes: u64, cost: u64) -> bool {
        if part_bytes >= self.max {
            return true;
        }
        if part_bytes < self.min {
            return false;
        }
        // hash / 2^64 < cost / (target - min), in integers.
        let span = u128::from(self.min.max(1));
        u128::from(path_hash(path)) * span < u128::from(cost) << 64
    }
}

/// FNV-1a with a splitmix64 finish: fast, stable across versions and
/// machines (a boundary must not move when regcache is rebuilt), and well
/// spread in the high bits the threshold compares.
fn path_hash(path: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in path {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

struct Walker<'a> {
    root: &'a Path,
    listings: &'a Listings<'a>,
    cutter: Cutter,
    stats: EntryStats,
    /// First name of each multiply-linked file: (device, inode) -> path.
    seen_inodes: HashMap<(u64, u64), Vec<u8>>,
    items: Vec<Item>,
    part_bytes: u64,
    index: usize,
    /// Restore temporaries skipped so far.
    temporaries: usize,
}

/// Restore temporaries named one by one; beyond that only counted, so a
/// tree littered by many killed restores does not flood the log.
const TEMPORARIES_NAMED: usize = 10;

impl Walker<'_> {
    fn summarise_temporaries(&self) {
        if self.temporaries > TEMPORARIES_NAMED {
            tracing::warn!(
                "{}: not saving {} restore temporaries in all ({} more than named above)",
                self.root.display(),
                self.temporaries,
                self.temporaries - TEMPORARIES_NAMED
            );
        }
    }

    fn take_part(&mut self, last: bool) -> Part {
        let part = Part {
            index: self.index,
            items: std::mem::take(&mut self.items),
            last,
        };
        self.index += 1;
        self.part_bytes = 0;
        part
    }

    /// The sorted entries of the directory at `rel` (`full` on disk).
    fn listing(&self, rel: &[u8], full: &Path) -> Result<Listing, PackError> {
        self.listings
            .take(rel, full)
            .map(Vec::into_iter)
            .map_err(|source| PackError::Read {
                path: full.to_path_buf(),
                source,
            })
    }

    /// Records one entry; for a directory returns its sorted children.
    fn visit(&mut self, rel: Vec<u8>, entry: Child) -> Result<Option<Listing>, PackError> {
        let full = || self.root.join(Path::new(std::ffi::OsStr::from_bytes(&rel)));
        // A restore's temporary (a live one's, or debris of a killed one) is
        // half a file: packed, it would come back on every restore for good.
        if entry
            .name
            .as_bytes()
            .starts_with(RESTORE_TEMP_PREFIX.as_bytes())
        {
            self.temporaries += 1;
            if self.temporaries <= TEMPORARIES_NAMED {
                tracing::warn!(path = %full().display(), "not saving a restore's temporary (a killed restore's file or directory)");
            }
            return Ok(None);
        }
        // An lstat relative to the open directory, made with its listing.
        let meta = entry.meta.map_err(|source| PackError::Read {
            path: full(),
            source,
        })?;
        let file_type = meta.file_type();
        let mode = meta.mode() & 0o7777;
        let mtime = MTime::new(meta.mtime(), u32::try_from(meta.mtime_nsec()).unwrap_or(0));
        let (kind, children) = if file_type.is_dir() {
            self.stats.dirs += 1;
            (ItemKind::Dir, Some(self.listing(&rel, &full())?))
        } else if file_type.is_file() {
            let first_name = if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                match self.seen_inodes.get(&key) {
                    Some(first) => Some(first.clone()),
                    None => {
                        self.seen_inodes.insert(key, rel.clone());
                        None
                    }
                }
            } else {
                None
            };
            match first_name {
                Some(target) => {
                    self.stats.hardlinks += 1;
                    (ItemKind::Hardlink { target }, None)
                }
                None => {
                    self.stats.files += 1;
                    self.stats.bytes += meta.len();
                    (ItemKind::File { size: meta.len() }, None)
                }
            }
        } else if file_type.is_symlink() {
            let path = full();
            let target = fs::read_link(&path).map_err(|source| PackError::Read { path, source })?;
            self.stats.symlinks += 1;
            (
                ItemKind::Symlink {
                    target: target.into_os_string().into_vec(),
                },
                None,
            )
        } else {
            // Sockets, FIFOs and devices are runtime objects, not cache
            // content, and a restore would refuse them anyway.
            tracing::warn!(path = %full().display(), "skipping a socket, FIFO or device file: caches hold only files, directories and links");
            return Ok(None);
        };
        let item = Item {
            path: rel,
            kind,
            mode,
            mtime,
        };
        self.part_bytes += tar_cost(&item);
        self.items.push(item);
        Ok(children)
    }
}

/// The on-disk path of an item.
pub fn item_path(root: &Path, rel: &[u8]) -> PathBuf {
    root.join(Path::new(std::ffi::OsStr::from_bytes(rel)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn collect(root: &Path, part_size: u64) -> (Vec<Part>, EntryStats) {
        let mut parts = Vec::new();
        let stats = walk(root, part_size, |p| {
            parts.push(p);
            true
        })
        .unwrap();
        (parts, stats)
    }

    fn names(parts: &[Part]) -> Vec<String> {
        parts
            .iter()
            .flat_map(|p| &p.items)
            .map(|i| String::from_utf8_lossy(&i.path).into_owned())
            .collect()
    }

    #[test]
    fn order_is_sorted_bytes_depth_first() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["b", "a", "a/z", "a-c"] {
            fs::create_dir(root.join(d)).unwrap();
        }
        for f in ["a/z/1", "a/y", "B", "a-c/x"] {
            fs::write(root.join(f), f).unwrap();
        }
        let (parts, stats) = collect(root, u64::MAX);
        assert_eq!(
            names(&parts),
            ["B", "a", "a/y", "a/z", "a/z/1", "a-c", "a-c/x", "b"]
        );
        assert_eq!((stats.files, stats.dirs), (4, 4));
        assert_eq!(parts.len(), 1);
    }

    #[test]
    fn hard_links_point_at_the_first_name_and_symlinks_keep_targets() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("b"), "x").unwrap();
        fs::hard_link(root.join("b"), root.join("a")).unwrap();
        fs::hard_link(root.join("b"), root.join("c")).unwrap();
        symlink("../nowhere", root.join("d")).unwrap();
        let (parts, stats) = collect(root, u64::MAX);
        let items = &parts[0].items;
        assert_eq!(items[0].kind, ItemKind::File { size: 1 });
        assert_eq!(
            items[1].kind,
            ItemKind::Hardlink {
                target: b"a".to_vec()
            }
        );
        assert_eq!(
            items[2].kind,
            ItemKind::Hardlink {
                target: b"a".to_vec()
            }
        );
        assert_eq!(
            items[3].kind,
            ItemKind::Symlink {
                target: b"../nowhere".to_vec()
            }
        );
        assert_eq!(
            (stats.files, stats.hardlinks, stats.symlinks, stats.bytes),
            (1, 2, 1, 1)
        );
    }

    #[test]
    fn parts_are_cut_between_half_and_twice_the_target() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..200 {
            fs::write(dir.path().join(format!("f{i:03}")), vec![0u8; 1024]).unwrap();
        }
        // Each file costs 2 KiB of headers (estimated) + 1 KiB of content.
        let target = 24 * 1024;
        let (parts, _) = collect(dir.path(), target);
        assert!(parts.len() > 10, "{}", parts.len());
        for part in &parts[..parts.len() - 1] {
            let bytes = part.items.len() as u64 * 3 * 1024;
            assert!((target / 2..=target * 2).contains(&bytes), "{bytes}");
        }
        assert_eq!(
            parts.iter().map(|p| p.index).collect::<Vec<_>>(),
            (0..parts.len()).collect::<Vec<_>>()
        );

        let empty = tempfile::tempdir().unwrap();
        let (parts, _) = collect(empty.path(), 1024);
        assert_eq!(parts.len(), 1);
        assert!(parts[0].items.is_empty());
    }

    /// The point of content-defined boundaries: a file added in the middle
    /// changes its own part, and every part after it is cut as before.
    #[test]
    fn a_change_moves_no_boundary_but_its_own_parts() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..400 {
            fs::write(dir.path().join(format!("f{i:03}")), vec![0u8; 1024]).unwrap();
        }
        let firsts = |parts: &[Part]| -> Vec<Vec<u8>> {
            parts.iter().map(|p| p.items[0].path.clone()).collect()
        };
        let (before, _) = collect(dir.path(), 16 * 1024);
        fs::write(dir.path().join("f100x"), vec![0u8; 5000]).unwrap();
        let (after, _) = collect(dir.path(), 16 * 1024);
        let (old, new) = (firsts(&before), firsts(&after));
        let changed: Vec<_> = new.iter().filter(|p| !old.contains(p)).collect();
        assert!(changed.len() <= 2, "{} boundaries moved", changed.len());
        let tail = |v: &[Vec<u8>]| {
            v.iter()
                .filter(|p| p.as_slice() > b"f150".as_slice())
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(tail(&old), tail(&new));
        assert!(tail(&old).len() > 5);
    }

    #[test]
    fn restore_temporaries_are_skipped_wherever_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("d")).unwrap();
        fs::write(root.join("d/.regcache-tmp-1-0123456789ab-1"), "half").unwrap();
        fs::create_dir(root.join(".regcache-tmp-2-0123456789ab-2")).unwrap();
        fs::write(root.join(".regcache-tmp-2-0123456789ab-2/inner"), "x").unwrap();
        symlink("d", root.join(".regcache-tmp-3-x")).unwrap();
        fs::write(root.join("d/file"), "x").unwrap();
        // Only the prefix matters: not a temporary.
        fs::write(root.join("d/.regcache-tmpfile"), "x").unwrap();
        let (parts, stats) = collect(root, u64::MAX);
        assert_eq!(names(&parts), ["d", "d/.regcache-tmpfile", "d/file"]);
        assert_eq!((stats.files, stats.dirs, stats.symlinks), (2, 1, 0));
    }

    #[test]
    fn fifos_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        fs::write(dir.path().join("file"), "x").unwrap();
        let (parts, _) = collect(dir.path(), u64::MAX);
        assert_eq!(names(&parts), ["file"]);
    }
}
