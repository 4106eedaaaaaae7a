//! One layer's changes, staged beside their destinations and committed only
//! after the whole blob has been verified.
//!
//! Every file, symlink and hard link is written under a temporary name in
//! its destination directory; whiteouts are only recorded. `commit` checks
//! for type conflicts, applies the whiteouts, then renames everything into
//! place (atomically, one file at a time). `rollback` removes what staging
//! made. Nothing ever follows a symlink below the root: parents are checked
//! with `lstat` (or are directories this layer made), and staging creates
//! names with `O_EXCL` semantics.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File, FileTimes, Metadata, OpenOptions, Permissions};
use std::io::{self, BufRead};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::digest::Digest;

use super::pax::MTime;
use super::safe_path::{ancestors, depth, is_within, join, lossy, normalize, on_disk, split_last};
use super::stats::EntryStats;
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
        }
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

enum Node {
    Dir {
        /// Where it is now: its real path, or a temporary one if it must
        /// replace a non-directory (see `replaces`).
        actual: Vec<u8>,
        /// The real path a temporary directory is renamed to at commit.
        replaces: Option<Vec<u8>>,
        /// Made by this layer, so nothing under it can pre-exist on disk.
        fresh: bool,
        /// From the archive's entry; `None` for a parent it only implies.
        meta: Option<(u32, MTime)>,
    },
    Staged {
        kind: StagedKind,
        temp: Vec<u8>,
        dest: Vec<u8>,
        /// The parent pre-existed, so a directory may sit at `dest`.
        check: bool,
    },
}

pub struct Stage<'a> {
    root: &'a Path,
    layer: &'a Digest,
    temps: &'a mut TempNames,
    /// Every archive path this layer places or passes through.
    nodes: HashMap<Vec<u8>, Node>,
    /// Staged paths in archive order: renamed in this order.
    order: Vec<Vec<u8>>,
    /// Directories built under a temporary name, in archive order.
    redirects: Vec<Vec<u8>>,
    whiteouts: Vec<Vec<u8>>,
    opaques: Vec<Vec<u8>>,
    /// Directories this layer created in place, parents first.
    created: Vec<Vec<u8>>,
    /// Existing directories made writable to stage into: path, old mode.
    loosened: Vec<(Vec<u8>, u32)>,
    /// Skip estargz's own metadata files at the root.
    estargz: bool,
    stats: EntryStats,
}

impl<'a> Stage<'a> {
    pub fn new(
        root: &'a Path,
        layer: &'a Digest,
        temps: &'a mut TempNames,
        estargz: bool,
    ) -> Stage<'a> {
        Stage {
            root,
            layer,
            temps,
            nodes: HashMap::new(),
            order: Vec::new(),
            redirects: Vec::new(),
            whiteouts: Vec::new(),
            opaques: Vec::new(),
            created: Vec::new(),
            loosened: Vec::new(),
            estargz,
            stats: EntryStats::default(),
        }
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

    fn lstat(&self, rel: &[u8]) -> Result<Option<Metadata>, UnpackError> {
        match fs::symlink_metadata(on_disk(self.root, rel)) {
            Ok(meta) => Ok(Some(meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(rel, e)),
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
        if rel.is_empty() {
            return match header.kind {
                Kind::Dir => {
                    self.nodes.insert(
                        Vec::new(),
                        Node::Dir {
                            actual: Vec::new(),
                            replaces: None,
                            fresh: false,
                            meta: Some((header.mode & KEPT_MODE_BITS, header.mtime)),
                        },
                    );
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
        matches!(self.nodes.get(rel), Some(Node::Dir { fresh: true, .. }))
    }

    /// The current on-disk path of directory `rel`, creating it (and its
    /// parents) if missing. Refuses to pass through anything but a real
    /// directory.
    fn ensure_dir(&mut self, entry: &[u8], rel: &[u8]) -> Result<Vec<u8>, UnpackError> {
        if rel.is_empty() {
            return Ok(Vec::new());
        }
        match self.nodes.get(rel) {
            Some(Node::Dir { actual, .. }) => return Ok(actual.clone()),
            Some(Node::Staged { kind, .. }) => {
                let reason = format!(
                    "its parent {:?} is a {} in this layer",
                    lossy(rel),
                    kind.noun()
                );
                return Err(self.unsafe_entry(entry, reason));
            }
            None => {}
        }
        let (parent, name) = split_last(rel);
        let parent_actual = self.ensure_dir(entry, parent)?;
        let actual = join(&parent_actual, name);
        let existing = if self.is_fresh(parent) {
            None
        } else {
            self.lstat(&actual)?
        };
        let fresh = match existing {
            None => {
                self.mkdir(&actual)?;
                true
            }
            Some(meta) if meta.file_type().is_symlink() => {
                let reason = format!(
                    "{:?} is a symlink on disk; refusing to write through it",
                    lossy(rel)
                );
                return Err(self.unsafe_entry(entry, reason));
            }
            Some(meta) if meta.is_dir() => {
                self.loosen(&actual, &meta)?;
                false
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
        self.nodes.insert(
            rel.to_vec(),
            Node::Dir {
                actual: actual.clone(),
                replaces: None,
                fresh,
                meta: None,
            },
        );
        Ok(actual)
    }

    fn mkdir(&mut self, actual: &[u8]) -> Result<(), UnpackError> {
        fs::create_dir(on_disk(self.root, actual)).map_err(|e| self.io(actual, e))?;
        self.created.push(actual.to_vec());
        Ok(())
    }

    /// An existing directory we cannot write into (a read-only tree from an
    /// earlier restore, such as Go's module cache) is made writable for
    /// the restore; `finish` puts the mode back unless the archive sets one.
    fn loosen(&mut self, actual: &[u8], meta: &Metadata) -> Result<(), UnpackError> {
        let mode = meta.mode() & 0o7777;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let ours = meta.uid() == unsafe { libc::geteuid() };
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
        match self.nodes.get_mut(rel) {
            Some(Node::Dir { meta: known, .. }) => {
                if known.is_none() {
                    self.stats.dirs += 1;
                }
                *known = meta;
                return Ok(());
            }
            Some(Node::Staged { kind, .. }) => {
                let reason = format!(
                    "appears twice in this layer, as a {} and as a directory",
                    kind.noun()
                );
                return Err(self.unsafe_entry(rel, reason));
            }
            None => {}
        }
        let (parent, name) = split_last(rel);
        let parent_actual = self.ensure_dir(rel, parent)?;
        let actual = join(&parent_actual, name);
        let existing = if self.is_fresh(parent) {
            None
        } else {
            self.lstat(&actual)?
        };
        let node = match existing {
            None => {
                self.mkdir(&actual)?;
                Node::Dir {
                    actual,
                    replaces: None,
                    fresh: true,
                    meta,
                }
            }
            Some(on_disk_meta) if on_disk_meta.is_dir() => {
                self.loosen(&actual, &on_disk_meta)?;
                Node::Dir {
                    actual,
                    replaces: None,
                    fresh: false,
                    meta,
                }
            }
            Some(_) => {
                // A file or symlink is in the way. Build the directory under
                // a temporary name: it takes that path at commit only if this
                // layer also whites the path out, else it is a type conflict.
                let temp = self.make_temp(&parent_actual, |path| fs::create_dir(path))?;
                self.redirects.push(rel.to_vec());
                Node::Dir {
                    actual: temp,
                    replaces: Some(actual),
                    fresh: true,
                    meta,
                }
            }
        };
        self.nodes.insert(rel.to_vec(), node);
        self.stats.dirs += 1;
        Ok(())
    }

    /// Creates something under a fresh temporary name in `dir` with
    /// `create`, which must fail with `AlreadyExists` rather than replace.
    fn make_temp(
        &mut self,
        dir: &[u8],
        mut create: impl FnMut(&Path) -> io::Result<()>,
    ) -> Result<Vec<u8>, UnpackError> {
        for _ in 0..64 {
            let temp = join(dir, &self.temps.next());
            match create(&on_disk(self.root, &temp)) {
                Ok(()) => return Ok(temp),
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
    /// directory of that name and returns `(parent's on-disk path, check)`.
    fn prepare_staged(
        &mut self,
        rel: &[u8],
        kind: StagedKind,
    ) -> Result<(Vec<u8>, bool), UnpackError> {
        if let Some(Node::Dir { .. }) = self.nodes.get(rel) {
            let reason = format!(
                "appears twice in this layer, as a directory and as a {}",
                kind.noun()
            );
            return Err(self.unsafe_entry(rel, reason));
        }
        let (parent, _) = split_last(rel);
        let parent_actual = self.ensure_dir(rel, parent)?;
        Ok((parent_actual, !self.is_fresh(parent)))
    }

    /// Records a staged temporary. A later entry of the same name in one
    /// layer replaces the earlier one, as in any tar extraction.
    fn insert_staged(
        &mut self,
        rel: &[u8],
        kind: StagedKind,
        temp: Vec<u8>,
        parent_actual: &[u8],
        check: bool,
    ) {
        let (_, name) = split_last(rel);
        let node = Node::Staged {
            kind,
            temp,
            dest: join(parent_actual, name),
            check,
        };
        match self.nodes.insert(rel.to_vec(), node) {
            None => self.order.push(rel.to_vec()),
            Some(Node::Staged { temp, .. }) => {
                if let Err(e) = fs::remove_file(on_disk(self.root, &temp)) {
                    tracing::debug!(temp = %lossy(&temp), error = %e, "removing a superseded temporary");
                }
            }
            Some(Node::Dir { .. }) => {} // refused in prepare_staged
        }
    }

    fn add_file<R: BufRead>(
        &mut self,
        rel: &[u8],
        header: &Header,
        tar: &mut TarReader<R>,
    ) -> Result<(), UnpackError> {
        let (parent_actual, check) = self.prepare_staged(rel, StagedKind::File)?;
        let mut file: Option<File> = None;
        let temp = self.make_temp(&parent_actual, |path| {
            let created = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
            file = Some(created);
            Ok(())
        })?;
        // Recorded before writing, so a failure below removes the temporary.
        self.insert_staged(rel, StagedKind::File, temp, &parent_actual, check);
        let Some(mut file) = file else {
            return Err(self.io(rel, io::Error::other("temporary file was not opened")));
        };
        let written = tar.copy_content(&mut file).map_err(|e| match e {
            CopyError::Archive(source) => UnpackError::Blob {
                layer: self.layer.clone(),
                source,
            },
            CopyError::Output(source) => self.io(rel, source),
        })?;
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
        let (parent_actual, check) = self.prepare_staged(rel, StagedKind::Symlink)?;
        // The target is stored as-is, dangling or not: restore never
        // follows a symlink, so where it points is harmless here.
        let target = OsStr::from_bytes(&header.link);
        let temp = self.make_temp(&parent_actual, |path| {
            std::os::unix::fs::symlink(target, path)
        })?;
        self.insert_staged(
            rel,
            StagedKind::Symlink,
            temp.clone(),
            &parent_actual,
            check,
        );
        let time = filetime::FileTime::from_system_time(header.mtime.to_system_time());
        filetime::set_symlink_file_times(on_disk(self.root, &temp), time, time)
            .map_err(|e| self.io(rel, e))?;
        self.stats.symlinks += 1;
        Ok(())
    }

    fn add_hardlink(&mut self, rel: &[u8], header: &Header) -> Result<(), UnpackError> {
        let target = normalize(&header.link).map_err(|reason| {
            self.unsafe_entry(
                rel,
                format!("hard link target {:?}: {reason}", lossy(&header.link)),
            )
        })?;
        if target.is_empty() {
            return Err(self.unsafe_entry(rel, "hard link to the entry root"));
        }
        let source = self.link_source(rel, &target)?;
        let (parent_actual, check) = self.prepare_staged(rel, StagedKind::Hardlink)?;
        let source_path = on_disk(self.root, &source);
        let temp = self.make_temp(&parent_actual, |path| fs::hard_link(&source_path, path))?;
        self.insert_staged(rel, StagedKind::Hardlink, temp, &parent_actual, check);
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
        match self.nodes.get(target) {
            Some(Node::Staged {
                kind: StagedKind::File | StagedKind::Hardlink,
                temp,
                ..
            }) => return Ok(temp.clone()),
            Some(Node::Staged { kind, .. }) => {
                return Err(refuse(format!("is a {}, not a regular file", kind.noun())));
            }
            Some(Node::Dir { .. }) => {
                return Err(refuse("is a directory, not a regular file".into()));
            }
            None => {}
        }
        let mut parent_actual = Vec::new();
        for ancestor in ancestors(target) {
            match self.nodes.get(ancestor) {
                Some(Node::Dir { actual, .. }) => {
                    parent_actual = actual.clone();
                    continue;
                }
                Some(Node::Staged { kind, .. }) => {
                    return Err(refuse(format!(
                        "goes through {:?}, a {} in this layer",
                        lossy(ancestor),
                        kind.noun()
                    )));
                }
                None => {}
            }
            let actual = join(&parent_actual, split_last(ancestor).1);
            match self.lstat(&actual)? {
                Some(meta) if meta.is_dir() => parent_actual = actual,
                Some(meta) if meta.file_type().is_symlink() => {
                    return Err(refuse(format!(
                        "goes through {:?}, a symlink",
                        lossy(ancestor)
                    )));
                }
                Some(_) => return Err(refuse(format!("{:?} is not a directory", lossy(ancestor)))),
                None => return Err(refuse("does not exist".into())),
            }
        }
        let actual = join(&parent_actual, split_last(target).1);
        match self.lstat(&actual)? {
            Some(meta) if meta.is_file() => Ok(actual),
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
        for rel in &self.order {
            if let Some(Node::Staged {
                dest,
                check: true,
                kind,
                ..
            }) = self.nodes.get(rel)
                && let Some(meta) = self.lstat(dest)?
                && meta.is_dir()
                && !self.hidden(rel, &whiteouts, &opaques)
            {
                return Err(conflict(
                    rel,
                    &format!(
                        "a directory is on disk where this layer has a {}",
                        kind.noun()
                    ),
                ));
            }
        }
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

        for rel in &self.order {
            let Some(Node::Staged {
                kind, temp, dest, ..
            }) = self.nodes.get(rel)
            else {
                continue;
            };
            let temp_path = on_disk(self.root, temp);
            fs::rename(&temp_path, on_disk(self.root, dest)).map_err(|e| self.io(rel, e))?;
            // rename() between two names of one inode does nothing, leaving
            // the temporary behind: that happens when a hard link is
            // restored over itself.
            if *kind == StagedKind::Hardlink && fs::symlink_metadata(&temp_path).is_ok() {
                fs::remove_file(&temp_path).map_err(|e| self.io(temp, e))?;
            }
        }

        for i in 0..self.redirects.len() {
            let rel = self.redirects[i].clone();
            let Some(Node::Dir {
                actual, replaces, ..
            }) = self.nodes.get_mut(&rel)
            else {
                continue;
            };
            let Some(dest) = replaces.clone() else {
                continue;
            };
            let (from, to) = (on_disk(self.root, actual), on_disk(self.root, &dest));
            fs::rename(from, to).map_err(|e| UnpackError::Io {
                path: on_disk(self.root, &rel),
                source: e,
            })?;
            // Now in place: a rollback must no longer remove it.
            *actual = dest;
            *replaces = None;
        }

        for (rel, node) in &self.nodes {
            if let Node::Dir {
                meta: Some((mode, mtime)),
                ..
            } = node
            {
                restored.dirs.insert(
                    rel.clone(),
                    DirMeta {
                        mode: Some(*mode),
                        mtime: Some(*mtime),
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
        self.created.clear();
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
            match self.nodes.get(&rel) {
                Some(Node::Dir { replaces: None, .. }) if meta.is_dir() => {
                    for name in self.children(&rel)? {
                        work.push(join(&rel, &name));
                    }
                }
                // The staged rename replaces a non-directory atomically.
                Some(Node::Staged { .. }) if !meta.is_dir() => {}
                _ if meta.is_dir() => {
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

    /// Removes every temporary, every directory this layer created that is
    /// still empty, and gives loosened directories their mode back.
    pub fn rollback(&mut self) {
        for rel in &self.order {
            if let Some(Node::Staged { temp, .. }) = self.nodes.get(rel) {
                let path = on_disk(self.root, temp);
                if let Err(e) = fs::remove_file(&path)
                    && e.kind() != io::ErrorKind::NotFound
                {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove a temporary file");
                }
            }
        }
        for rel in &self.redirects {
            if let Some(Node::Dir {
                actual,
                replaces: Some(_),
                ..
            }) = self.nodes.get(rel)
            {
                let path = on_disk(self.root, actual);
                if let Err(e) = fs::remove_dir_all(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove a temporary directory");
                }
            }
        }
        for rel in self.created.iter().rev() {
            // Fails, as it should, if a committed file now lives there.
            let _ = fs::remove_dir(on_disk(self.root, rel));
        }
        for (rel, mode) in self.loosened.drain(..) {
            let _ = fs::set_permissions(on_disk(self.root, &rel), Permissions::from_mode(mode));
        }
        self.created.clear();
    }
}
