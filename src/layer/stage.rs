//! One layer's changes, staged beside their destinations and committed only
//! after the whole blob has been verified.
//!
//! In a directory already on disk, every file, symlink and hard link is
//! written under a temporary name; a directory missing on disk is made
//! under a temporary name in the nearest directory that exists, and what
//! this layer puts in it (subdirectories, files, symlinks) is made at its
//! final names there, since nothing but this layer can be in it (hard
//! links alone keep a temporary, so a superseded entry's kind can be
//! told). Whiteouts are only recorded. `commit` checks for type conflicts,
//! applies the whiteouts, then renames everything into place: each staged
//! name in an existing directory, then each new directory tree as a whole
//! (atomically, one name at a time: no name is ever visible half-written).
//! `rollback` removes what staging made. A killed restore leaves only
//! temporary names behind (`.regcache-tmp-<pid>-…`), removed by the next
//! restore into the tree (see `leftovers`).
//!
//! Nothing ever follows a symlink below the root: parents are checked with
//! `lstat` (or are directories this layer made), and staging creates names
//! with `O_EXCL` semantics. Staging and renaming go through open
//! directories ([`DirFds`]): every call names one entry of a directory
//! opened beneath its parent without following a symlink, so no path is
//! walked twice, and a symlink swapped in on the way after a check is
//! refused rather than followed.
//!
//! A directory this layer made (`fresh`) is trusted to hold only what this
//! layer put there, and is not looked into before a name is made in it.
//! Only a concurrent process could break that trust (a cache only names
//! entries); what it plants there is refused or replaced, never followed:
//! `mkdirat` and `O_CREAT | O_EXCL` fail on any name already taken, a taken
//! file name is then removed (unlink does not follow) and made again, a
//! taken directory name fails the layer, and a directory is only ever
//! opened with `O_NOFOLLOW` (see the `planted` tests).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, FileTimes, Metadata, Permissions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, Timespec, Timestamps};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

use super::pax::MTime;
use super::root::{DirFd, DirFds};
use super::safe_path::{ancestors, depth, is_within, join, lossy, normalize, on_disk, split_last};
use super::stats::EntryStats;
use super::superseded::FinalLayers;
use super::tar_read::{CopyError, Header, Kind, TarReader};
use super::unpack::UnpackError;

/// Permission bits a restore keeps: setuid and setgid are dropped, a cache
/// has no business granting privileges.
const KEPT_MODE_BITS: u32 = 0o1777;

/// Files an estargz layer carries at its root as format metadata (the
/// table of contents and prefetch landmarks), not as content.
const ESTARGZ_METADATA: [&[u8]; 3] = [
    b"stargz.index.json",
    b".prefetch.landmark",
    b".no.prefetch.landmark",
];

/// Unpredictable temporary names, unique to one restorer.
pub struct TempNames {
    prefix: String,
    counter: u64,
    /// Layers staged so far: part of staged names, so a temporary a failed
    /// rollback left behind is never taken for one of a later layer.
    layer: u64,
}

impl TempNames {
    pub fn new() -> TempNames {
        use std::hash::{BuildHasher, Hasher};
        // RandomState is seeded from the OS: enough that an archive cannot
        // name (and so pre-empt or collide with) our temporaries.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        TempNames {
            prefix: format!(
                ".regcache-tmp-{}-{:012x}-",
                std::process::id(),
                random & 0xffff_ffff_ffff
            ),
            counter: 0,
            layer: 0,
        }
    }

    fn next_layer(&mut self) {
        self.layer += 1;
    }

    /// The temporary name of a staged `name`, in its destination directory:
    /// derived from the name, so the file system itself tells whether this
    /// layer staged that name (no per-entry memory), and of fixed length
    /// however long the name.
    fn staged(&self, name: &[u8], slot: Slot) -> Vec<u8> {
        let hash = Sha256::digest(name);
        let suffix = match slot {
            Slot::Plain => "",
            Slot::Hardlink => "-h",
        };
        format!(
            "{}{}-{}{suffix}",
            self.prefix,
            self.layer,
            hex::encode(&hash[..16])
        )
        .into_bytes()
    }

    fn next(&mut self) -> Vec<u8> {
        self.counter += 1;
        format!("{}{}", self.prefix, self.counter).into_bytes()
    }

    fn is_temp(&self, name: &[u8]) -> bool {
        name.starts_with(self.prefix.as_bytes())
    }
}

/// Directory metadata applied by `finish`, deepest first.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirMeta {
    pub mode: Option<u32>,
    pub mtime: Option<MTime>,
}

/// What survives between layers of one restore.
#[derive(Default)]
pub struct Restored {
    /// Keyed by root-relative path; "" is the root.
    pub dirs: BTreeMap<Vec<u8>, DirMeta>,
    pub stats: EntryStats,
}

impl Restored {
    /// Forgets metadata for a directory tree a whiteout deleted.
    fn purge(&mut self, rel: &[u8]) {
        let doomed: Vec<Vec<u8>> = self
            .dirs
            .range(rel.to_vec()..)
            .take_while(|(key, _)| key.starts_with(rel))
            .filter(|(key, _)| is_within(key, rel))
            .map(|(key, _)| key.clone())
            .collect();
        for key in doomed {
            self.dirs.remove(&key);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum StagedKind {
    File,
    Hardlink,
    Symlink,
}

impl StagedKind {
    fn noun(self) -> &'static str {
        match self {
            StagedKind::File => "regular file",
            StagedKind::Hardlink => "hard link",
            StagedKind::Symlink => "symlink",
        }
    }
}

/// Which of a staged name's two temporaries holds it. Hard links get
/// their own, so a superseded entry's kind (and so its stats) can be told
/// from `lstat`: a hard link's inode looks like any regular file's.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Slot {
    /// A regular file or a symlink.
    Plain,
    Hardlink,
}

impl Slot {
    fn of(kind: StagedKind) -> Slot {
        match kind {
            StagedKind::Hardlink => Slot::Hardlink,
            StagedKind::File | StagedKind::Symlink => Slot::Plain,
        }
    }

    fn other(self) -> Slot {
        match self {
            Slot::Plain => Slot::Hardlink,
            Slot::Hardlink => Slot::Plain,
        }
    }
}

/// A directory this layer places or passes through. Directories stay in
/// memory (they are few); everything else is found on disk by the name it
/// is staged as (see [`Stage::staged_name`]), and listed in a [`Journal`]
/// when a rename of its own must put it in place.
struct Dir {
    /// Where it is now: its real path, or a temporary one until commit if
    /// this layer made it (or the fresh directory it lies in) where nothing
    /// was, or where a non-directory must be replaced (see `replaces`).
    actual: Vec<u8>,
    /// The real path a temporary directory is renamed to at commit.
    replaces: Option<Vec<u8>>,
    /// Made by this layer, under a temporary name (its own, or that of
    /// the fresh directory it lies in): nothing under it pre-exists on
    /// disk, what this layer puts in it is staged at its final name (see
    /// [`Stage::staged_name`]), and the whole tree takes its real path when
    /// its top is renamed at commit.
    fresh: bool,
    /// From the archive's entry; `None` for a parent it only implies.
    meta: Option<(u32, MTime)>,
    /// A hard link was staged in it, so names there have two temporaries
    /// to look at.
    links: bool,
}

impl Dir {
    fn new(actual: Vec<u8>, fresh: bool, meta: Option<(u32, MTime)>) -> Dir {
        Dir {
            actual,
            replaces: None,
            fresh,
            meta,
            links: false,
        }
    }
}

/// A non-directory this layer staged, as found on disk.
struct Staged {
    kind: StagedKind,
    temp: Vec<u8>,
}

pub struct Stage<'a> {
    /// The root's path, for messages and the rare path-based steps
    /// (whiteouts); `root_fd` is the same directory.
    root: &'a Path,
    /// Open directories below the root, which staging and renaming go
    /// through.
    fds: RefCell<DirFds<'a>>,
    layer: &'a Digest,
    temps: &'a mut TempNames,
    /// Every directory this layer places or passes through; "" is the root.
    dirs: HashMap<Vec<u8>, Dir>,
    /// Staged non-directories in archive order: renamed in this order.
    journal: Option<Journal>,
    /// Directories built under a temporary name, in archive order.
    redirects: Vec<Vec<u8>>,
    whiteouts: Vec<Vec<u8>>,
    opaques: Vec<Vec<u8>>,
    /// Directories this layer made under a temporary name in a directory
    /// that is not fresh itself, in archive order: each is renamed to its
    /// real path (where nothing was) at commit.
    births: Vec<Vec<u8>>,
    /// Existing directories made writable to stage into: path, old mode.
    loosened: Vec<(Vec<u8>, u32)>,
    /// Skip estargz's own metadata files at the root.
    estargz: bool,
    /// Bytes free on the root's file system when the layer started, if
    /// known; content this layer staged since then is `written`.
    free: Option<u64>,
    written: u64,
    stats: EntryStats,
    /// Which paths later layers replace or delete (see `superseded`).
    finals: Option<&'a mut FinalLayers>,
    /// An entry of one file: the name it is restored as, in the root (its
    /// directory), and whether this layer brought it yet.
    single: Option<(&'a [u8], bool)>,
}

impl<'a> Stage<'a> {
    /// Skips the paths whose final state a later layer of the chain holds.
    pub fn skip_superseded(&mut self, finals: &'a mut FinalLayers) {
        self.finals = Some(finals);
    }

    /// Stages into the root directory `root_fd`, whose path (for messages
    /// and whiteouts) is `root`.
    pub fn new(
        root: &'a Path,
        root_fd: BorrowedFd<'a>,
        layer: &'a Digest,
        temps: &'a mut TempNames,
        estargz: bool,
    ) -> Stage<'a> {
        temps.next_layer();
        let free = match free_space(root_fd) {
            Ok(free) => Some(free),
            Err(e) => {
                tracing::warn!(root = %root.display(), error = %e, "cannot tell the free space; entry sizes are not checked against it");
                None
            }
        };
        let mut dirs = HashMap::new();
        dirs.insert(Vec::new(), Dir::new(Vec::new(), false, None));
        Stage {
            root,
            fds: RefCell::new(DirFds::new(root_fd)),
            layer,
            temps,
            dirs,
            journal: None,
            redirects: Vec::new(),
            whiteouts: Vec::new(),
            opaques: Vec::new(),
            births: Vec::new(),
            loosened: Vec::new(),
            estargz,
            free,
            written: 0,
            stats: EntryStats::default(),
            finals: None,
            single: None,
        }
    }

    /// Restores an entry of one file: the layer must hold exactly one
    /// regular file, which becomes `name` in the root whatever the tar
    /// calls it. Anything else is refused, so nothing but `name` in the
    /// file's directory is ever written, deleted or given metadata.
    pub fn single_file(&mut self, name: &'a [u8]) {
        self.single = Some((name, false));
    }

    /// The archive path `rel` as an entry of one file, or why not.
    fn single_name(&mut self, header: &Header, rel: &[u8]) -> Result<Option<Vec<u8>>, UnpackError> {
        let Some((name, seen)) = self.single else {
            return Ok(Some(rel.to_vec()));
        };
        if self.estargz && header.kind == Kind::File && ESTARGZ_METADATA.contains(&rel) {
            return Ok(None);
        }
        let reason = if header.kind != Kind::File {
            "a file entry's layer holds one regular file, and this is not one"
        } else if rel.is_empty() || rel.contains(&b'/') || rel.starts_with(b".wh.") {
            "a file entry's layer holds one regular file, not a path below a directory"
        } else if seen {
            "a file entry's layer holds one regular file, and this is a second one"
        } else {
            self.single = Some((name, true));
            return Ok(Some(name.to_vec()));
        };
        Err(self.unsafe_entry(&header.path, reason))
    }

    /// Pretends the file system has `bytes` free, so tests need no full disk.
    #[cfg(test)]
    pub fn set_free_space(&mut self, bytes: u64) {
        self.free = Some(bytes);
    }

    fn unsafe_entry(&self, entry: &[u8], reason: impl Into<String>) -> UnpackError {
        UnpackError::UnsafeEntry {
            layer: self.layer.clone(),
            entry: lossy(entry),
            reason: reason.into(),
        }
    }

    fn io(&self, rel: &[u8], source: io::Error) -> UnpackError {
        UnpackError::Io {
            path: on_disk(self.root, rel),
            source,
        }
    }

    /// `lstat` by path, for the whiteout steps.
    fn lstat(&self, rel: &[u8]) -> Result<Option<Metadata>, UnpackError> {
        match fs::symlink_metadata(on_disk(self.root, rel)) {
            Ok(meta) => Ok(Some(meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(rel, e)),
        }
    }

    /// The on-disk directory `actual`, open (see [`DirFds`]).
    fn dir_fd(&self, actual: &[u8]) -> Result<DirFd<'a>, UnpackError> {
        self.fds
            .borrow_mut()
            .get(actual)
            .map_err(|e| self.io(actual, e))
    }

    /// `lstat` of `name` in the on-disk directory `dir`.
    fn lstat_in(&self, dir: &[u8], name: &[u8]) -> Result<Option<Lstat>, UnpackError> {
        let fd = self.dir_fd(dir)?;
        match rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(Lstat {
                mode: stat.st_mode,
                uid: stat.st_uid,
                size: u64::try_from(stat.st_size).unwrap_or(0),
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.io(&join(dir, name), e.into())),
        }
    }

    /// Stages one archive entry, reading its content from `tar`.
    pub fn add<R: BufRead>(
        &mut self,
        header: &Header,
        tar: &mut TarReader<R>,
    ) -> Result<(), UnpackError> {
        let rel =
            normalize(&header.path).map_err(|reason| self.unsafe_entry(&header.path, reason))?;
        match header.kind {
            Kind::CharDevice | Kind::BlockDevice => {
                return Err(self.unsafe_entry(&header.path, "device nodes are never restored"));
            }
            Kind::Fifo => return Err(self.unsafe_entry(&header.path, "FIFOs are never restored")),
            Kind::Sparse => {
                return Err(self.unsafe_entry(&header.path, "GNU sparse files are not supported"));
            }
            Kind::Other(flag) => {
                tracing::warn!(layer = %self.layer, entry = %lossy(&header.path), typeflag = %char::from(flag), "skipping a tar entry of unknown type");
                return Ok(());
            }
            _ if header.pax_sparse => {
                return Err(self.unsafe_entry(&header.path, "GNU sparse files are not supported"));
            }
            _ => {}
        }
        let Some(rel) = self.single_name(header, &rel)? else {
            return Ok(());
        };
        if rel.is_empty() {
            return match header.kind {
                Kind::Dir => {
                    if let Some(root) = self.dirs.get_mut(&Vec::new()) {
                        root.meta = Some((header.mode & KEPT_MODE_BITS, header.mtime));
                    }
                    Ok(())
                }
                _ => Err(self.unsafe_entry(&header.path, "names the entry root itself")),
            };
        }
        if self.estargz && header.kind == Kind::File && ESTARGZ_METADATA.contains(&rel.as_slice()) {
            tracing::debug!(layer = %self.layer, entry = %lossy(&rel), "skipping estargz metadata");
            return Ok(());
        }
        let (parent, name) = split_last(&rel);
        if let Some(target) = name.strip_prefix(b".wh.") {
            return self.whiteout(&header.path, parent, target);
        }
        // Directories are always placed: the paths below them need them,
        // and their metadata is applied last anyway.
        if matches!(header.kind, Kind::File | Kind::Symlink | Kind::Hardlink)
            && let Some(finals) = self.finals.as_deref_mut()
            && finals.superseded(&rel)
        {
            tracing::trace!(layer = %self.layer, entry = %lossy(&rel), "a later layer replaces or deletes it: skipped");
            return Ok(());
        }
        match header.kind {
            Kind::Dir => self.add_dir(&rel, header),
            Kind::File => self.add_file(&rel, header, tar),
            Kind::Symlink => self.add_symlink(&rel, header),
            Kind::Hardlink => self.add_hardlink(&rel, header),
            _ => Ok(()),
        }
    }

    fn whiteout(&mut self, entry: &[u8], parent: &[u8], target: &[u8]) -> Result<(), UnpackError> {
        if target == b".wh..opq" {
            self.opaques.push(parent.to_vec());
        } else if target.starts_with(b".wh.") {
            // aufs bookkeeping (.wh..wh.plnk and friends), not a deletion.
            tracing::debug!(entry = %lossy(entry), "ignoring aufs metadata entry");
        } else if target.is_empty() || target == b"." || target == b".." {
            return Err(self.unsafe_entry(entry, "malformed whiteout name"));
        } else {
            self.whiteouts.push(join(parent, target));
        }
        Ok(())
    }

    fn is_fresh(&self, rel: &[u8]) -> bool {
        self.dirs.get(rel).is_some_and(|dir| dir.fresh)
    }

    /// The current on-disk path of directory `rel`, creating it (and its
    /// parents) if missing. Refuses to pass through anything but a real
    /// directory.
    fn ensure_dir(&mut self, entry: &[u8], rel: &[u8]) -> Result<Vec<u8>, UnpackError> {
        if rel.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(dir) = self.dirs.get(rel) {
            return Ok(dir.actual.clone());
        }
        if let Some(staged) = self.find_staged(rel)? {
            let reason = format!(
                "its parent {:?} is a {} in this layer",
                lossy(rel),
                staged.kind.noun()
            );
            return Err(self.unsafe_entry(entry, reason));
        }
        let (parent, name) = split_last(rel);
        let parent_actual = self.ensure_dir(entry, parent)?;
        let actual = join(&parent_actual, name);
        let existing = if self.is_fresh(parent) {
            None
        } else {
            self.lstat_in(&parent_actual, name)?
        };
        let dir = match existing {
            None => self.make_dir(rel, &parent_actual, None)?,
            Some(meta) if meta.is_symlink() => {
                let reason = format!(
                    "{:?} is a symlink on disk; refusing to write through it",
                    lossy(rel)
                );
                return Err(self.unsafe_entry(entry, reason));
            }
            Some(meta) if meta.is_dir() => {
                self.loosen(&actual, &meta)?;
                Dir::new(actual, false, None)
            }
            Some(_) => {
                return Err(UnpackError::TypeConflict {
                    layer: self.layer.clone(),
                    path: lossy(rel),
                    reason: format!(
                        "a file is on disk where entry {:?} needs a directory",
                        lossy(entry)
                    ),
                });
            }
        };
        let actual = dir.actual.clone();
        self.dirs.insert(rel.to_vec(), dir);
        Ok(actual)
    }

    /// Makes the directory `rel`, missing on disk, in the on-disk directory
    /// `parent_actual`: at its name if that directory is fresh (a tree this
    /// layer builds under a temporary name), else under a temporary name of
    /// its own, renamed into place at commit. `mkdirat` fails rather than
    /// use anything already there.
    fn make_dir(
        &mut self,
        rel: &[u8],
        parent_actual: &[u8],
        meta: Option<(u32, MTime)>,
    ) -> Result<Dir, UnpackError> {
        let (parent, name) = split_last(rel);
        let real = join(parent_actual, name);
        if self.is_fresh(parent) {
            let fd = self.dir_fd(parent_actual)?;
            rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(0o777))
                .map_err(|e| self.io(&real, e.into()))?;
            return Ok(Dir::new(real, true, meta));
        }
        let temp = self.make_temp(parent_actual, |dir, name| {
            Ok(rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o777))?)
        })?;
        self.births.push(rel.to_vec());
        Ok(Dir {
            replaces: Some(real),
            ..Dir::new(temp, true, meta)
        })
    }

    /// An existing directory we cannot write into (a read-only tree from an
    /// earlier restore, such as Go's module cache) is made writable for
    /// the restore; `finish` puts the mode back unless the archive sets one.
    fn loosen(&mut self, actual: &[u8], meta: &Lstat) -> Result<(), UnpackError> {
        let mode = meta.mode & 0o7777;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let ours = meta.uid == unsafe { libc::geteuid() };
        if mode & 0o700 == 0o700 || !ours {
            return Ok(());
        }
        fs::set_permissions(
            on_disk(self.root, actual),
            Permissions::from_mode(mode | 0o700),
        )
        .map_err(|e| self.io(actual, e))?;
        self.loosened.push((actual.to_vec(), mode));
        Ok(())
    }

    fn add_dir(&mut self, rel: &[u8], header: &Header) -> Result<(), UnpackError> {
        let meta = Some((header.mode & KEPT_MODE_BITS, header.mtime));
        if let Some(dir) = self.dirs.get_mut(rel) {
            if dir.meta.is_none() {
                self.stats.dirs += 1;
            }
            dir.meta = meta;
            return Ok(());
        }
        if let Some(staged) = self.find_staged(rel)? {
            let reason = format!(
                "appears twice in this layer, as a {} and as a directory",
                staged.kind.noun()
            );
            return Err(self.unsafe_entry(rel, reason));
        }
        let (parent, name) = split_last(rel);
        let parent_actual = self.ensure_dir(rel, parent)?;
        let actual = join(&parent_actual, name);
        let existing = if self.is_fresh(parent) {
            None
        } else {
            self.lstat_in(&parent_actual, name)?
        };
        let dir = match existing {
            None => self.make_dir(rel, &parent_actual, meta)?,
            Some(on_disk_meta) if on_disk_meta.is_dir() => {
                self.loosen(&actual, &on_disk_meta)?;
                Dir::new(actual, false, meta)
            }
            Some(_) => {
                // A file or symlink is in the way. Build the directory under
                // a temporary name: it takes that path at commit only if this
                // layer also whites the path out, else it is a type conflict.
                let temp = self.make_temp(&parent_actual, |dir, name| {
                    Ok(rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o777))?)
                })?;
                self.redirects.push(rel.to_vec());
                Dir {
                    replaces: Some(actual),
                    ..Dir::new(temp, true, meta)
                }
            }
        };
        self.dirs.insert(rel.to_vec(), dir);
        self.stats.dirs += 1;
        Ok(())
    }

    /// Creates something under a fresh temporary name in `dir` with
    /// `create` (given the open `dir` and the name), which must fail with
    /// `AlreadyExists` rather than replace.
    fn make_temp(
        &mut self,
        dir: &[u8],
        mut create: impl FnMut(&DirFd<'a>, &[u8]) -> io::Result<()>,
    ) -> Result<Vec<u8>, UnpackError> {
        let fd = self.dir_fd(dir)?;
        for _ in 0..64 {
            let name = self.temps.next();
            match create(&fd, &name) {
                Ok(()) => return Ok(join(dir, &name)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(self.io(dir, e)),
            }
        }
        Err(self.io(
            dir,
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "could not find a free temporary name",
            ),
        ))
    }

    /// Common start of staging a non-directory: refuses a same-layer
    /// directory of that name and returns where it goes.
    fn prepare_staged(&mut self, rel: &[u8], kind: StagedKind) -> Result<Target, UnpackError> {
        if self.dirs.contains_key(rel) {
            let reason = format!(
                "appears twice in this layer, as a directory and as a {}",
                kind.noun()
            );
            return Err(self.unsafe_entry(rel, reason));
        }
        let (parent, _) = split_last(rel);
        let parent_actual = self.ensure_dir(rel, parent)?;
        Ok(Target {
            check: !self.is_fresh(parent),
            parent_actual,
        })
    }

    /// The temporary of `name` in the on-disk directory `dir`.
    fn temp_in(&self, dir: &[u8], name: &[u8], slot: Slot) -> Vec<u8> {
        join(dir, &self.temps.staged(name, slot))
    }

    /// The name a non-directory `name` is staged as in its directory: its
    /// temporary, or in a fresh directory (which is not at its real path
    /// before commit, and holds nothing but this layer's staging) its own
    /// name for a regular file or symlink. A hard link keeps its temporary
    /// everywhere, so a superseded entry's kind can still be told.
    fn staged_name(&self, fresh: bool, name: &[u8], slot: Slot) -> Vec<u8> {
        if fresh && slot == Slot::Plain {
            name.to_vec()
        } else {
            self.temps.staged(name, slot)
        }
    }

    /// What this layer staged at archive path `rel`, found on disk by the
    /// names it is staged as; `None` if nothing, or a directory.
    fn find_staged(&self, rel: &[u8]) -> Result<Option<Staged>, UnpackError> {
        let (parent, name) = split_last(rel);
        let Some(dir) = self.dirs.get(parent) else {
            // Staging always goes through its parent first.
            return Ok(None);
        };
        let plain = self.staged_name(dir.fresh, name, Slot::Plain);
        if let Some(meta) = self.lstat_in(&dir.actual, &plain)?
            // In a fresh directory, its subdirectories are at their names
            // too; they are not staged non-directories.
            && !meta.is_dir()
        {
            let kind = if meta.is_symlink() {
                StagedKind::Symlink
            } else {
                StagedKind::File
            };
            return Ok(Some(Staged {
                kind,
                temp: join(&dir.actual, &plain),
            }));
        }
        if dir.links {
            let link = self.temps.staged(name, Slot::Hardlink);
            if self.lstat_in(&dir.actual, &link)?.is_some() {
                return Ok(Some(Staged {
                    kind: StagedKind::Hardlink,
                    temp: join(&dir.actual, &link),
                }));
            }
        }
        Ok(None)
    }

    /// Creates `rel`'s temporary with `create` (given its open directory
    /// and its name there), which must fail with `AlreadyExists` rather
    /// than replace. A later entry of the same name in one layer replaces
    /// the earlier one, as in any tar extraction, and is renamed where the
    /// first one would have been.
    fn stage(
        &mut self,
        rel: &[u8],
        kind: StagedKind,
        target: &Target,
        mut create: impl FnMut(&DirFd<'a>, &[u8]) -> io::Result<()>,
    ) -> Result<Vec<u8>, UnpackError> {
        let (parent, name) = split_last(rel);
        let slot = Slot::of(kind);
        let fresh = self.is_fresh(parent);
        let dir = self.dir_fd(&target.parent_actual)?;
        let temp_name = self.staged_name(fresh, name, slot);
        let mut seen = match create(&dir, &temp_name) {
            Ok(()) => false,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.supersede(&target.parent_actual, &temp_name, slot)?;
                create(&dir, &temp_name).map_err(|e| self.io(rel, e))?;
                true
            }
            Err(e) => return Err(self.io(rel, e)),
        };
        // A hard link's temporary in a fresh directory: this one, or one
        // an earlier entry of the name staged (and listed) there.
        let listed_link = seen && kind == StagedKind::Hardlink;
        let links_here = self.dirs.get(parent).is_some_and(|dir| dir.links);
        if kind == StagedKind::Hardlink || links_here {
            let other = self.staged_name(fresh, name, slot.other());
            seen |= self.supersede(&target.parent_actual, &other, slot.other())?;
        }
        if kind == StagedKind::Hardlink
            && let Some(dir) = self.dirs.get_mut(parent)
        {
            dir.links = true;
        }
        // Listed in the journal once, to be renamed at commit; in a fresh
        // directory only a hard link's temporary needs that (a name listed
        // twice finds nothing to rename the second time).
        let list = if fresh {
            kind == StagedKind::Hardlink && !listed_link
        } else {
            !seen
        };
        if list && let Err(e) = self.record(rel, target) {
            // Not in the journal, so rollback would not find it.
            let _ = rustix::fs::unlinkat(&dir, &temp_name, AtFlags::empty());
            return Err(e);
        }
        Ok(join(&target.parent_actual, &temp_name))
    }

    /// Removes an earlier entry's temporary `name` in the on-disk
    /// directory `dir`, if there is one, and takes it back out of the
    /// stats. `true` if there was one.
    fn supersede(&mut self, dir: &[u8], name: &[u8], slot: Slot) -> Result<bool, UnpackError> {
        let Some(meta) = self.lstat_in(dir, name)? else {
            return Ok(false);
        };
        let stats = &mut self.stats;
        match slot {
            Slot::Hardlink => stats.hardlinks = stats.hardlinks.saturating_sub(1),
            Slot::Plain if meta.is_symlink() => {
                stats.symlinks = stats.symlinks.saturating_sub(1);
            }
            Slot::Plain => {
                stats.files = stats.files.saturating_sub(1);
                stats.bytes = stats.bytes.saturating_sub(meta.size);
                self.written = self.written.saturating_sub(meta.size);
            }
        }
        let temp = join(dir, name);
        tracing::debug!(temp = %lossy(&temp), "removing a superseded temporary");
        let fd = self.dir_fd(dir)?;
        rustix::fs::unlinkat(&fd, name, AtFlags::empty()).map_err(|e| self.io(&temp, e.into()))?;
        Ok(true)
    }

    /// Lists a newly staged name in the journal, made on first use.
    fn record(&mut self, rel: &[u8], target: &Target) -> Result<(), UnpackError> {
        let journal = match &mut self.journal {
            Some(journal) => journal,
            None => self
                .journal
                .insert(Journal::create(self.root).map_err(|e| self.io(b"", e))?),
        };
        journal
            .push(rel, &target.parent_actual, target.check)
            .map_err(|e| UnpackError::Io {
                path: on_disk(self.root, b""),
                source: e,
            })
    }

    /// Refuses, before a byte of it is written, content that cannot fit in
    /// what the file system had free minus what this layer already wrote
    /// (its temporaries hold that space until commit).
    fn check_space(&self, rel: &[u8], size: u64) -> Result<(), UnpackError> {
        let Some(free) = self.free else {
            return Ok(());
        };
        let left = free.saturating_sub(self.written);
        if size > left {
            return Err(UnpackError::NoSpace {
                layer: self.layer.clone(),
                entry: lossy(rel),
                size,
                path: self.root.to_path_buf(),
                free: left,
            });
        }
        Ok(())
    }

    fn add_file<R: BufRead>(
        &mut self,
        rel: &[u8],
        header: &Header,
        tar: &mut TarReader<R>,
    ) -> Result<(), UnpackError> {
        let target = self.prepare_staged(rel, StagedKind::File)?;
        let mut file: Option<File> = None;
        // Recorded before writing, so a failure below removes the temporary.
        self.stage(rel, StagedKind::File, &target, |dir, name| {
            let created = rustix::fs::openat(
                dir,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            file = Some(File::from(created));
            Ok(())
        })?;
        let Some(mut file) = file else {
            return Err(self.io(rel, io::Error::other("temporary file was not opened")));
        };
        // After staging, so a superseded duplicate's space counts as free;
        // the temporary is still empty.
        self.check_space(rel, header.size)?;
        let written = tar.copy_content(&mut file).map_err(|e| match e {
            CopyError::Archive(source) => UnpackError::Blob {
                layer: self.layer.clone(),
                source,
            },
            CopyError::Output(source) => self.io(rel, source),
        })?;
        self.written += written;
        file.set_permissions(Permissions::from_mode(header.mode & KEPT_MODE_BITS))
            .map_err(|e| self.io(rel, e))?;
        // Last, so nothing bumps the mtime afterwards.
        file.set_times(FileTimes::new().set_modified(header.mtime.to_system_time()))
            .map_err(|e| self.io(rel, e))?;
        self.stats.files += 1;
        self.stats.bytes += written;
        Ok(())
    }

    fn add_symlink(&mut self, rel: &[u8], header: &Header) -> Result<(), UnpackError> {
        let target = self.prepare_staged(rel, StagedKind::Symlink)?;
        // The target is stored as-is, dangling or not: restore never
        // follows a symlink, so where it points is harmless here.
        let link = &header.link[..];
        let temp = self.stage(rel, StagedKind::Symlink, &target, |dir, name| {
            Ok(rustix::fs::symlinkat(link, dir, name)?)
        })?;
        let time = timespec(header.mtime);
        let times = Timestamps {
            last_access: time,
            last_modification: time,
        };
        let (dir, name) = split_last(&temp);
        let fd = self.dir_fd(dir)?;
        rustix::fs::utimensat(&fd, name, &times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io(rel, e.into()))?;
        self.stats.symlinks += 1;
        Ok(())
    }

    fn add_hardlink(&mut self, rel: &[u8], header: &Header) -> Result<(), UnpackError> {
        let link = normalize(&header.link).map_err(|reason| {
            self.unsafe_entry(
                rel,
                format!("hard link target {:?}: {reason}", lossy(&header.link)),
            )
        })?;
        if link.is_empty() {
            return Err(self.unsafe_entry(rel, "hard link to the entry root"));
        }
        let source = self.link_source(rel, &link)?;
        let target = self.prepare_staged(rel, StagedKind::Hardlink)?;
        if source == self.temp_in(&target.parent_actual, split_last(rel).1, Slot::Hardlink) {
            // The same link staged again, over itself: already in place.
            return Ok(());
        }
        let (source_dir, source_name) = split_last(&source);
        let source_fd = self.dir_fd(source_dir)?;
        self.stage(rel, StagedKind::Hardlink, &target, |dir, name| {
            Ok(rustix::fs::linkat(
                &source_fd,
                source_name,
                dir,
                name,
                AtFlags::empty(),
            )?)
        })?;
        self.stats.hardlinks += 1;
        Ok(())
    }

    /// The on-disk path of a hard link's target: a regular file staged by
    /// this layer, or one already inside the root reached only through real
    /// directories.
    fn link_source(&self, entry: &[u8], target: &[u8]) -> Result<Vec<u8>, UnpackError> {
        let refuse = |reason: String| {
            self.unsafe_entry(
                entry,
                format!("hard link target {:?}: {reason}", lossy(target)),
            )
        };
        if self.dirs.contains_key(target) {
            return Err(refuse("is a directory, not a regular file".into()));
        }
        match self.find_staged(target)? {
            Some(Staged {
                kind: kind @ StagedKind::Symlink,
                ..
            }) => {
                return Err(refuse(format!("is a {}, not a regular file", kind.noun())));
            }
            Some(staged) => return Ok(staged.temp),
            None => {}
        }
        let mut parent_actual = Vec::new();
        for ancestor in ancestors(target) {
            if let Some(dir) = self.dirs.get(ancestor) {
                parent_actual = dir.actual.clone();
                continue;
            }
            if let Some(staged) = self.find_staged(ancestor)? {
                return Err(refuse(format!(
                    "goes through {:?}, a {} in this layer",
                    lossy(ancestor),
                    staged.kind.noun()
                )));
            }
            let name = split_last(ancestor).1;
            match self.lstat_in(&parent_actual, name)? {
                Some(meta) if meta.is_dir() => parent_actual = join(&parent_actual, name),
                Some(meta) if meta.is_symlink() => {
                    return Err(refuse(format!(
                        "goes through {:?}, a symlink",
                        lossy(ancestor)
                    )));
                }
                Some(_) => return Err(refuse(format!("{:?} is not a directory", lossy(ancestor)))),
                None => return Err(refuse("does not exist".into())),
            }
        }
        let name = split_last(target).1;
        match self.lstat_in(&parent_actual, name)? {
            Some(meta) if meta.is_file() => Ok(join(&parent_actual, name)),
            Some(_) => Err(refuse("is not a regular file".into())),
            None => Err(refuse("does not exist".into())),
        }
    }

    /// `rel` is hidden from lower layers by this layer's whiteouts: it, or
    /// an ancestor, is whited out or sits directly in an opaque directory.
    fn hidden(&self, rel: &[u8], whiteouts: &HashSet<&[u8]>, opaques: &HashSet<&[u8]>) -> bool {
        ancestors(rel)
            .chain(std::iter::once(rel))
            .any(|a| whiteouts.contains(a) || opaques.contains(split_last(a).0))
    }

    /// All checks that can fail, before anything on disk changes.
    fn check(&self) -> Result<(), UnpackError> {
        let whiteouts: HashSet<&[u8]> = self.whiteouts.iter().map(Vec::as_slice).collect();
        let opaques: HashSet<&[u8]> = self.opaques.iter().map(Vec::as_slice).collect();
        let conflict = |rel: &[u8], reason: &str| UnpackError::TypeConflict {
            layer: self.layer.clone(),
            path: lossy(rel),
            reason: reason.to_string(),
        };
        self.each_record(|record| {
            if record.check
                && let Some(meta) =
                    self.lstat_in(&record.parent_actual, split_last(&record.rel).1)?
                && meta.is_dir()
                && !self.hidden(&record.rel, &whiteouts, &opaques)
            {
                let kind = self.find_staged(&record.rel)?.map(|s| s.kind);
                return Err(conflict(
                    &record.rel,
                    &format!(
                        "a directory is on disk where this layer has a {}",
                        kind.map_or("non-directory", StagedKind::noun)
                    ),
                ));
            }
            Ok(())
        })?;
        for rel in &self.redirects {
            if !self.hidden(rel, &whiteouts, &opaques) {
                return Err(conflict(
                    rel,
                    "a file or symlink is on disk where this layer has a directory",
                ));
            }
        }
        for rel in &self.opaques {
            // The root itself may be a symlink: the user's choice.
            if !rel.is_empty()
                && !self.hidden(rel, &whiteouts, &opaques)
                && self.lstat(rel)?.is_some_and(|m| m.file_type().is_symlink())
            {
                return Err(self.unsafe_entry(rel, "opaque whiteout on a symlink"));
            }
        }
        for rel in self.whiteouts.iter().chain(&self.opaques) {
            for ancestor in ancestors(rel) {
                if self.hidden(ancestor, &whiteouts, &opaques) {
                    break; // deleted first; nothing below it is reached
                }
                match self.lstat(ancestor)? {
                    Some(meta) if meta.file_type().is_symlink() => {
                        let reason =
                            format!("whiteout goes through {:?}, a symlink", lossy(ancestor));
                        return Err(self.unsafe_entry(rel, reason));
                    }
                    Some(meta) if meta.is_dir() => {}
                    _ => break, // nothing exists below a file or a missing path
                }
            }
        }
        Ok(())
    }

    /// Verifies, applies whiteouts, renames everything into place and hands
    /// the results to `restored`. On error, undoes what it can.
    pub fn commit(mut self, restored: &mut Restored) -> Result<(), UnpackError> {
        let result = self.check().and_then(|()| self.apply(restored));
        if result.is_err() {
            self.rollback();
        }
        result
    }

    fn apply(&mut self, restored: &mut Restored) -> Result<(), UnpackError> {
        // Shallowest first: a whiteout below a deleted directory is then a
        // no-op instead of a walk through whatever replaced it.
        let mut deletions: Vec<(Vec<u8>, bool)> = self
            .whiteouts
            .iter()
            .map(|w| (w.clone(), false))
            .chain(self.opaques.iter().map(|o| (o.clone(), true)))
            .collect();
        deletions.sort_by_key(|(rel, _)| depth(rel));
        if !deletions.is_empty() {
            // Open directories are cached by path, and deleting changes
            // what a path names.
            self.fds.borrow_mut().clear();
        }
        for (rel, opaque) in deletions {
            if !self.real_dirs_up_to(&rel)? {
                continue;
            }
            if opaque {
                // The root was checked to be a directory (perhaps through
                // the user's symlink) when the restorer was made.
                let is_dir = rel.is_empty() || self.lstat(&rel)?.is_some_and(|m| m.is_dir());
                if is_dir {
                    for name in self.children(&rel)? {
                        self.delete_lower(&join(&rel, &name), restored)?;
                    }
                }
            } else {
                self.delete_lower(&rel, restored)?;
            }
        }

        self.each_record(|record| self.rename_staged(record))?;

        for i in 0..self.redirects.len() {
            let rel = self.redirects[i].clone();
            let Some(dir) = self.dirs.get_mut(&rel) else {
                continue;
            };
            let Some(dest) = dir.replaces.clone() else {
                continue;
            };
            let (from, to) = (on_disk(self.root, &dir.actual), on_disk(self.root, &dest));
            fs::rename(from, to).map_err(|e| UnpackError::Io {
                path: on_disk(self.root, &rel),
                source: e,
            })?;
            self.fds.borrow_mut().forget(&dir.actual);
            // Now in place: a rollback must no longer remove it.
            dir.actual = dest;
            dir.replaces = None;
        }

        // Fresh trees take their real paths, where staging found nothing.
        for i in 0..self.births.len() {
            let rel = self.births[i].clone();
            let Some(dir) = self.dirs.get(&rel) else {
                continue;
            };
            let Some(dest) = dir.replaces.clone() else {
                continue;
            };
            let (temp, real_name) = (dir.actual.clone(), split_last(&dest).1.to_vec());
            let (parent_actual, temp_name) = split_last(&temp);
            let parent = self.dir_fd(parent_actual)?;
            rename_noreplace(&parent, temp_name, &real_name).map_err(|e| self.io(&rel, e))?;
            self.fds.borrow_mut().forget(&temp);
            if let Some(dir) = self.dirs.get_mut(&rel) {
                // Now in place: a rollback must no longer remove it.
                dir.actual = dest;
                dir.replaces = None;
            }
        }

        for (rel, dir) in &self.dirs {
            if let Some((mode, mtime)) = dir.meta {
                restored.dirs.insert(
                    rel.clone(),
                    DirMeta {
                        mode: Some(mode),
                        mtime: Some(mtime),
                    },
                );
            }
        }
        for (actual, mode) in std::mem::take(&mut self.loosened) {
            restored.dirs.entry(actual).or_insert(DirMeta {
                mode: Some(mode),
                mtime: None,
            });
        }
        restored.stats.add(&self.stats);
        Ok(())
    }

    /// Renames a staged name's temporary (whichever slot holds it) into place.
    fn rename_staged(&self, record: &Record) -> Result<(), UnpackError> {
        let (parent, name) = split_last(&record.rel);
        let fresh = self.is_fresh(parent);
        let dir = self.dir_fd(&record.parent_actual)?;
        if !fresh {
            let plain = self.temps.staged(name, Slot::Plain);
            match rustix::fs::renameat(&dir, &plain, &dir, name) {
                Ok(()) => return Ok(()),
                Err(Errno::NOENT) => {}
                Err(e) => return Err(self.io(&record.rel, e.into())),
            }
        }
        let link = self.temps.staged(name, Slot::Hardlink);
        match rustix::fs::renameat(&dir, &link, &dir, name) {
            Ok(()) => {}
            // In a fresh directory, a file or symlink staged at the name
            // superseded the link, or the name was listed twice.
            Err(Errno::NOENT) if fresh => return Ok(()),
            Err(e) => return Err(self.io(&record.rel, e.into())),
        }
        // rename() between two names of one inode does nothing, leaving the
        // temporary behind: that happens when a hard link is restored over
        // itself.
        if rustix::fs::statat(&dir, &link, AtFlags::SYMLINK_NOFOLLOW).is_ok() {
            rustix::fs::unlinkat(&dir, &link, AtFlags::empty())
                .map_err(|e| self.io(&join(&record.parent_actual, &link), e.into()))?;
        }
        Ok(())
    }

    /// Calls `f` on every journal record, in archive order.
    fn each_record(
        &self,
        mut f: impl FnMut(&Record) -> Result<(), UnpackError>,
    ) -> Result<(), UnpackError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let journal_err = |source| UnpackError::Io {
            path: on_disk(self.root, b""),
            source,
        };
        let mut records = journal.records();
        while let Some(record) = records.next().map_err(journal_err)? {
            f(&record)?;
        }
        Ok(())
    }

    /// `true` if every ancestor of `rel` is a real directory (not a symlink).
    fn real_dirs_up_to(&self, rel: &[u8]) -> Result<bool, UnpackError> {
        for ancestor in ancestors(rel) {
            match self.lstat(ancestor)? {
                Some(meta) if meta.is_dir() => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Names in a directory, without our own temporaries.
    fn children(&self, rel: &[u8]) -> Result<Vec<Vec<u8>>, UnpackError> {
        let mut names = Vec::new();
        let dir = fs::read_dir(on_disk(self.root, rel)).map_err(|e| self.io(rel, e))?;
        for entry in dir {
            let name = entry.map_err(|e| self.io(rel, e))?.file_name();
            if !self.temps.is_temp(name.as_bytes()) {
                names.push(name.as_bytes().to_vec());
            }
        }
        Ok(names)
    }

    /// Removes what lower layers (or the disk) hold at `rel`, keeping what
    /// this layer stages there: a directory this layer also has is emptied
    /// of everything else instead of removed. Never follows a symlink.
    fn delete_lower(&self, rel: &[u8], restored: &mut Restored) -> Result<(), UnpackError> {
        let mut work = vec![rel.to_vec()];
        while let Some(rel) = work.pop() {
            let Some(meta) = self.lstat(&rel)? else {
                continue;
            };
            let path = on_disk(self.root, &rel);
            let ours = self.dirs.get(&rel);
            if meta.is_dir() && ours.is_some_and(|dir| dir.replaces.is_none()) {
                for name in self.children(&rel)? {
                    work.push(join(&rel, &name));
                }
                continue;
            }
            match meta.is_dir() {
                // The staged rename replaces a non-directory atomically.
                false if self.find_staged(&rel)?.is_some() => {}
                true => {
                    tracing::debug!(path = %path.display(), "whiteout removes directory");
                    fs::remove_dir_all(&path).map_err(|e| self.io(&rel, e))?;
                    restored.purge(&rel);
                }
                _ => {
                    tracing::debug!(path = %path.display(), "whiteout removes file");
                    fs::remove_file(&path).map_err(|e| self.io(&rel, e))?;
                }
            }
        }
        Ok(())
    }

    /// Removes both possible temporaries of a staged name.
    fn remove_staged(&self, record: &Record) {
        let (parent, name) = split_last(&record.rel);
        // A fresh directory holds its files at their names: removed with
        // the directory, and never here, where a committed one may be.
        let slots: &[Slot] = if self.is_fresh(parent) {
            &[Slot::Hardlink]
        } else {
            &[Slot::Plain, Slot::Hardlink]
        };
        let dir = match self.fds.borrow_mut().get(&record.parent_actual) {
            Ok(dir) => dir,
            // A fresh directory already renamed into place (its temporary
            // path is gone) or removed: nothing left to remove here.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => {
                let path = on_disk(self.root, &record.parent_actual);
                tracing::warn!(path = %path.display(), error = %e, "could not remove temporary files");
                return;
            }
        };
        for &slot in slots {
            let temp = self.temps.staged(name, slot);
            if let Err(e) = rustix::fs::unlinkat(&dir, &temp, AtFlags::empty())
                && e != Errno::NOENT
            {
                let path = on_disk(self.root, &join(&record.parent_actual, &temp));
                tracing::warn!(path = %path.display(), error = %e, "could not remove a temporary file");
            }
        }
    }

    /// Removes every temporary, every directory this layer made that is not
    /// in place yet, and gives loosened directories their mode back.
    pub fn rollback(&mut self) {
        let removed = self.each_record(|record| {
            self.remove_staged(record);
            Ok(())
        });
        if let Err(e) = removed {
            tracing::warn!(error = %e, "could not read back what this layer staged; temporaries may remain");
        }
        for rel in self.redirects.iter().chain(&self.births) {
            if let Some(Dir {
                actual,
                replaces: Some(_),
                ..
            }) = self.dirs.get(rel)
            {
                let path = on_disk(self.root, actual);
                if let Err(e) = fs::remove_dir_all(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove a temporary directory");
                }
            }
        }
        self.fds.borrow_mut().clear();
        for (rel, mode) in self.loosened.drain(..) {
            let _ = fs::set_permissions(on_disk(self.root, &rel), Permissions::from_mode(mode));
        }
    }
}

/// Where a staged non-directory goes.
struct Target {
    /// Its parent's on-disk path (a temporary one for a redirected parent).
    parent_actual: Vec<u8>,
    /// The parent pre-existed, so a directory may sit at the destination.
    check: bool,
}

/// One staged name, as the journal lists it.
struct Record {
    rel: Vec<u8>,
    parent_actual: Vec<u8>,
    check: bool,
}

/// Longest name the journal reads back: far above what the tar reader
/// accepts, only there to keep a damaged journal from asking for gigabytes.
const MAX_JOURNAL_NAME: usize = 16 << 20;

/// The names one layer staged (non-directories), in archive order, spilled
/// to an unnamed file: a layer may hold millions of them, and memory must
/// not grow with that.
struct Journal {
    out: BufWriter<File>,
}

impl Journal {
    fn create(root: &Path) -> io::Result<Journal> {
        // Beside the restore, on its file system, rather than in a /tmp
        // that may be RAM; there if the root refuses (a read-only root
        // whose subdirectories are restored into).
        let file = tempfile::tempfile_in(root).or_else(|e| {
            tracing::debug!(root = %root.display(), error = %e, "journal goes to the temporary directory");
            tempfile::tempfile()
        })?;
        Ok(Journal {
            out: BufWriter::with_capacity(64 * 1024, file),
        })
    }

    fn push(&mut self, rel: &[u8], parent_actual: &[u8], check: bool) -> io::Result<()> {
        self.out.write_all(&[u8::from(check)])?;
        for field in [rel, parent_actual] {
            let len = u32::try_from(field.len()).map_err(io::Error::other)?;
            self.out.write_all(&len.to_le_bytes())?;
            self.out.write_all(field)?;
        }
        Ok(())
    }

    /// Everything pushed so far: what reached the file, then what is still
    /// buffered. Never flushes, so a rollback after a failed write (a full
    /// disk) still finds every temporary.
    fn records(&self) -> Records<'_> {
        let written = ReadAt {
            file: self.out.get_ref(),
            pos: 0,
        };
        Records {
            input: BufReader::new(written.chain(self.out.buffer())),
        }
    }
}

struct Records<'a> {
    input: BufReader<io::Chain<ReadAt<'a>, &'a [u8]>>,
}

impl Records<'_> {
    fn next(&mut self) -> io::Result<Option<Record>> {
        let mut check = [0u8; 1];
        if self.input.read(&mut check)? == 0 {
            return Ok(None);
        }
        let rel = self.field()?;
        let parent_actual = self.field()?;
        Ok(Some(Record {
            rel,
            parent_actual,
            check: check[0] != 0,
        }))
    }

    fn field(&mut self) -> io::Result<Vec<u8>> {
        let mut len = [0u8; 4];
        self.input.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_JOURNAL_NAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "damaged staging journal",
            ));
        }
        let mut field = vec![0; len];
        self.input.read_exact(&mut field)?;
        Ok(field)
    }
}

/// Reads a file from `pos` on without moving the file's own offset, which
/// the journal's writer goes on appending at.
struct ReadAt<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Renames `from` to `to` in `dir`, failing if anything is at `to`.
fn rename_noreplace(dir: &DirFd<'_>, from: &[u8], to: &[u8]) -> io::Result<()> {
    match rustix::fs::renameat_with(dir, from, dir, to, RenameFlags::NOREPLACE) {
        // A file system without RENAME_NOREPLACE: check, then rename (a
        // name made in between is replaced only if it is an empty
        // directory, else the rename fails).
        Err(Errno::INVAL) | Err(Errno::NOSYS) => {
            match rustix::fs::statat(dir, to, AtFlags::SYMLINK_NOFOLLOW) {
                Err(Errno::NOENT) => Ok(rustix::fs::renameat(dir, from, dir, to)?),
                Ok(_) => Err(io::Error::from(Errno::EXIST)),
                Err(e) => Err(e.into()),
            }
        }
        other => Ok(other?),
    }
}

/// Bytes an unprivileged writer may still use on the file system of `dir`.
fn free_space(dir: BorrowedFd<'_>) -> io::Result<u64> {
    let stat = rustix::fs::fstatvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// An mtime as `utimensat` takes it (both count whole seconds down, and
/// nanoseconds up from there).
pub fn timespec(mtime: MTime) -> Timespec {
    Timespec {
        tv_sec: mtime.secs,
        tv_nsec: mtime.nanos.into(),
    }
}

/// What `lstat` tells of a name in an open directory.
#[derive(Clone, Copy, Debug)]
struct Lstat {
    mode: u32,
    uid: u32,
    size: u64,
}

impl Lstat {
    fn file_type(&self) -> FileType {
        FileType::from_raw_mode(self.mode)
    }

    fn is_dir(&self) -> bool {
        self.file_type() == FileType::Directory
    }

    fn is_file(&self) -> bool {
        self.file_type() == FileType::RegularFile
    }

    fn is_symlink(&self) -> bool {
        self.file_type() == FileType::Symlink
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, usize)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, size) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(*size as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, name, &vec![b'x'; *size][..])
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// Stages every entry of `files` with `free` bytes free; returns the
    /// first refusal and what was on disk at that moment.
    fn stage_with_free_space(
        files: &[(&str, usize)],
        free: u64,
    ) -> (Result<EntryStats, UnpackError>, usize) {
        let root = tempfile::tempdir().unwrap();
        let digest = Digest::of(b"layer");
        let mut temps = TempNames::new();
        let bytes = tar_of(files);
        let mut tar = TarReader::new(&bytes[..]);
        let root_dir = File::open(root.path()).unwrap();
        let mut stage = Stage::new(
            root.path(),
            std::os::fd::AsFd::as_fd(&root_dir),
            &digest,
            &mut temps,
            false,
        );
        stage.set_free_space(free);
        let on_disk = || fs::read_dir(root.path()).unwrap().count();
        while let Some(header) = tar.next_entry().unwrap() {
            if let Err(e) = stage.add(&header, &mut tar) {
                let left = on_disk();
                stage.rollback();
                assert_eq!(on_disk(), 0, "rollback left temporaries");
                return (Err(e), left);
            }
        }
        let mut restored = Restored::default();
        stage.commit(&mut restored).unwrap();
        (Ok(restored.stats), on_disk())
    }

    #[test]
    fn content_beyond_the_free_space_left_is_refused_before_it_is_written() {
        let (result, on_disk) = stage_with_free_space(&[("a", 6), ("b", 5)], 10);
        match result {
            Err(UnpackError::NoSpace {
                entry, size, free, ..
            }) => assert_eq!((entry.as_str(), size, free), ("b", 5, 4)),
            other => panic!("expected NoSpace, got {other:?}"),
        }
        // a's temporary and b's, still empty.
        assert_eq!(on_disk, 2);
    }

    #[test]
    fn content_that_fits_the_free_space_is_restored() {
        let (result, on_disk) = stage_with_free_space(&[("a", 6), ("b", 4)], 10);
        assert_eq!(result.unwrap().bytes, 10);
        assert_eq!(on_disk, 2);
    }

    #[test]
    fn a_superseded_duplicate_gives_its_space_and_stats_back() {
        let (result, on_disk) = stage_with_free_space(&[("a", 6), ("a", 7)], 10);
        let stats = result.unwrap();
        assert_eq!((stats.files, stats.bytes), (1, 7));
        assert_eq!(on_disk, 1);
    }
}

/// A fresh directory is trusted to hold only what this layer put there: it
/// is not looked into before a name is made in it. These plant things in
/// one between two entries, as a concurrent process could (the cache
/// itself cannot: it only names entries), and check that every such plant
/// is refused or replaced, never followed, and that nothing outside the
/// root changes.
#[cfg(test)]
mod planted {
    use std::os::unix::fs::{MetadataExt, symlink};
    use std::path::PathBuf;

    use super::*;

    enum Entry {
        Dir(&'static str),
        File(&'static str, &'static [u8]),
        Hardlink(&'static str, &'static str),
    }

    fn tar_of(entries: &[Entry]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for entry in entries {
            let mut header = tar::Header::new_ustar();
            header.set_mode(0o644);
            header.set_mtime(1_600_000_000);
            match entry {
                Entry::Dir(name) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    builder.append_data(&mut header, name, &[][..]).unwrap();
                }
                Entry::File(name, content) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(content.len() as u64);
                    builder.append_data(&mut header, name, *content).unwrap();
                }
                Entry::Hardlink(name, target) => {
                    header.set_entry_type(tar::EntryType::Link);
                    header.set_size(0);
                    builder.append_link(&mut header, name, target).unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    struct Scene {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    impl Scene {
        fn new() -> Scene {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().join("root");
            let outside = tmp.path().join("outside");
            fs::create_dir(&root).unwrap();
            fs::create_dir(&outside).unwrap();
            fs::write(outside.join("secret"), "secret").unwrap();
            Scene {
                _tmp: tmp,
                root,
                outside,
            }
        }

        /// Stages `entries`, calling `plant` with the number of entries
        /// staged so far before each next one (and once after the last),
        /// then commits; rolls back on the first error and returns it.
        fn stage(
            &self,
            entries: &[Entry],
            mut plant: impl FnMut(usize, &Path),
        ) -> Result<(), UnpackError> {
            let bytes = tar_of(entries);
            let digest = Digest::of(&bytes);
            let mut temps = TempNames::new();
            let root_dir = File::open(&self.root).unwrap();
            let mut stage = Stage::new(
                &self.root,
                std::os::fd::AsFd::as_fd(&root_dir),
                &digest,
                &mut temps,
                false,
            );
            let mut tar = TarReader::new(&bytes[..]);
            let mut staged = 0;
            let result = (|| {
                while let Some(header) = tar.next_entry().unwrap() {
                    plant(staged, &self.root);
                    stage.add(&header, &mut tar)?;
                    staged += 1;
                }
                plant(staged, &self.root);
                Ok(())
            })();
            match result {
                Ok(()) => stage.commit(&mut Restored::default()),
                Err(e) => {
                    stage.rollback();
                    Err(e)
                }
            }
        }

        fn outside_untouched(&self, extra: &[&str]) {
            let mut names: Vec<String> = fs::read_dir(&self.outside)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            let mut expected: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            expected.push("secret".into());
            expected.sort();
            assert_eq!(names, expected);
            let secret = self.outside.join("secret");
            assert_eq!(fs::read(&secret).unwrap(), b"secret");
            assert_eq!(fs::metadata(&secret).unwrap().nlink(), 1);
        }

        fn root_names(&self) -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(&self.root)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    /// The temporary name the fresh directory is built under, in the root.
    fn building(root: &Path) -> PathBuf {
        let temps: Vec<PathBuf> = fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .as_bytes()
                    .starts_with(super::super::leftovers::RESTORE_TEMP_PREFIX.as_bytes())
            })
            .collect();
        assert_eq!(temps.len(), 1, "one fresh directory being built: {temps:?}");
        temps[0].clone()
    }

    #[test]
    fn a_fresh_directory_appears_whole_at_commit() {
        let s = Scene::new();
        s.stage(
            &[
                Entry::Dir("d/"),
                Entry::File("d/f", b"ours"),
                Entry::File("d/e/g", b"deep"),
            ],
            |staged, root| {
                if staged > 0 {
                    // Built under a temporary name, at its final names inside.
                    assert!(fs::symlink_metadata(root.join("d")).is_err());
                    let tree = building(root);
                    if staged > 1 {
                        assert_eq!(fs::read(tree.join("f")).unwrap(), b"ours");
                    }
                }
            },
        )
        .unwrap();
        assert_eq!(s.root_names(), ["d"]);
        assert_eq!(fs::read(s.root.join("d/f")).unwrap(), b"ours");
        assert_eq!(fs::read(s.root.join("d/e/g")).unwrap(), b"deep");
        s.outside_untouched(&[]);
    }

    #[test]
    fn a_symlink_planted_at_a_file_name_is_replaced_not_followed() {
        let s = Scene::new();
        let secret = s.outside.join("secret");
        s.stage(
            &[Entry::Dir("d/"), Entry::File("d/f", b"ours")],
            |staged, root| {
                if staged == 1 {
                    symlink(&secret, building(root).join("f")).unwrap();
                }
            },
        )
        .unwrap();
        let f = s.root.join("d/f");
        assert!(fs::symlink_metadata(&f).unwrap().is_file());
        assert_eq!(fs::read(&f).unwrap(), b"ours");
        s.outside_untouched(&[]);
    }

    #[test]
    fn a_symlink_planted_at_a_directory_name_is_refused() {
        let s = Scene::new();
        let outside = s.outside.clone();
        let err = s
            .stage(
                &[Entry::Dir("d/"), Entry::File("d/sub/evil", b"x")],
                |staged, root| {
                    if staged == 1 {
                        symlink(&outside, building(root).join("sub")).unwrap();
                    }
                },
            )
            .unwrap_err();
        // Taken for a symlink this layer staged at that name: refused.
        assert!(err.to_string().contains("symlink"), "{err}");
        assert!(
            s.root_names().is_empty(),
            "rolled back: {:?}",
            s.root_names()
        );
        s.outside_untouched(&[]);
    }

    #[test]
    fn a_hard_link_source_swapped_for_a_symlink_is_refused() {
        let s = Scene::new();
        let secret = s.outside.join("secret");
        let err = s
            .stage(
                &[
                    Entry::Dir("d/"),
                    Entry::File("d/a", b"ours"),
                    Entry::Hardlink("d/h", "d/a"),
                ],
                |staged, root| {
                    if staged == 2 {
                        let a = building(root).join("a");
                        fs::remove_file(&a).unwrap();
                        symlink(&secret, &a).unwrap();
                    }
                },
            )
            .unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        assert!(s.root_names().is_empty());
        s.outside_untouched(&[]);
    }

    #[test]
    fn a_fresh_directory_moved_away_for_a_symlink_is_refused() {
        let s = Scene::new();
        let outside = s.outside.clone();
        let err = s
            .stage(
                &[Entry::Dir("d/"), Entry::File("d/e/f", b"x")],
                |staged, root| {
                    if staged == 1 {
                        // Before anything was made in it: not open yet.
                        let tree = building(root);
                        fs::rename(&tree, outside.join("moved")).unwrap();
                        symlink(&outside, &tree).unwrap();
                    }
                },
            )
            .unwrap_err();
        assert!(err.to_string().contains("Not a directory"), "{err}");
        // Nothing was made through the link, nor in the moved directory.
        assert_eq!(fs::read_dir(s.outside.join("moved")).unwrap().count(), 0);
        s.outside_untouched(&["moved"]);
    }

    #[test]
    fn a_name_taken_before_a_fresh_directory_is_renamed_in_is_kept() {
        let s = Scene::new();
        let outside = s.outside.clone();
        let err = s
            .stage(
                &[Entry::Dir("d/"), Entry::File("d/f", b"x")],
                |staged, root| {
                    if staged == 2 {
                        symlink(&outside, root.join("d")).unwrap();
                    }
                },
            )
            .unwrap_err();
        assert!(err.to_string().contains("exists"), "{err}");
        assert!(fs::symlink_metadata(s.root.join("d")).unwrap().is_symlink());
        assert_eq!(s.root_names(), ["d"], "the fresh directory is rolled back");
        s.outside_untouched(&[]);
    }
}
