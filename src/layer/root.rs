//! Opening an entry's root directory without following a symlink a cache
//! may have planted.
//!
//! A root is reached from an *anchor* the user chose (the working directory,
//! `$HOME`, or the parent of a PATH they named), which is opened as it is.
//! Every component between the anchor and the root is then opened with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` where the kernel has it
//! (Linux ≥ 5.6), or one `O_NOFOLLOW` component at a time otherwise, and
//! created when missing. The restore then works through the opened
//! descriptor, so a symlink swapped in afterwards cannot redirect it.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::unpack::UnpackError;

/// Where an entry's root is, as a walk from an anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootPath {
    /// Opened as it is, symlinks and all: the user's own directory.
    pub anchor: PathBuf,
    /// Plain names (never empty, `.` or `..`) from the anchor to the root;
    /// empty when the root is the anchor itself.
    pub below: Vec<OsString>,
    /// The last component may be a symlink to a directory, followed: the
    /// user asked for it (a `target/` on a faster disk).
    pub allow_symlink: bool,
}

impl RootPath {
    /// The root's canonical path, for messages.
    pub fn display_path(&self) -> PathBuf {
        let mut path = self.anchor.clone();
        path.extend(&self.below);
        path
    }
}

/// An entry root, open.
#[derive(Debug)]
pub struct OpenRoot {
    /// Keeps the directory the restore works in, whatever is renamed or
    /// replaced on the way to it meanwhile.
    _dir: OwnedFd,
    /// A path that reaches `dir` itself: `/proc/self/fd/N` where /proc is
    /// mounted, else the checked path.
    access: PathBuf,
    display: PathBuf,
}

impl OpenRoot {
    /// The path file operations go through; it names the opened directory.
    pub fn access_path(&self) -> &Path {
        &self.access
    }

    /// The root as the user knows it.
    pub fn display_path(&self) -> &Path {
        &self.display
    }

    /// The opened root directory itself.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self._dir.as_fd()
    }
}

/// Opens (creating what is missing) the root `root` describes.
pub fn open_root(root: &RootPath) -> Result<OpenRoot, UnpackError> {
    let display = root.display_path();
    let root_err = |reason: String| UnpackError::Root {
        path: display.clone(),
        reason,
    };
    if let Some(bad) = root.below.iter().find(|c| !is_plain_name(c)) {
        return Err(root_err(format!("{bad:?} is not a plain directory name")));
    }
    let anchor = open_or_create_anchor(&root.anchor)?;
    let dir = match beneath_all_at_once(&anchor, &root.below) {
        Some(Ok(fd)) => fd,
        // Missing components, a symlink, or no openat2: walk one component
        // at a time, which creates what is missing and tells what is wrong.
        Some(Err(_)) | None => walk(anchor, root, &display)?,
    };
    let access = access_path(&dir).unwrap_or_else(|| display.clone());
    Ok(OpenRoot {
        _dir: dir,
        access,
        display,
    })
}

/// Opens the directory of an entry of one file, as [`open_root`] opens a
/// directory root, and returns the name the file is restored as in it.
/// What stands at that name now must be nothing or a regular file: a
/// directory is the user's and is never replaced, and a symlink is
/// followed only with the user's leave (`allow_symlink`), as a directory
/// root's is.
pub fn open_file_root(root: &RootPath) -> Result<(OpenRoot, OsString), UnpackError> {
    let display = root.display_path();
    let root_err = |reason: String| UnpackError::Root {
        path: display.clone(),
        reason,
    };
    let Some((name, parents)) = root.below.split_last() else {
        return Err(root_err(
            "a file entry cannot be restored at its anchor".into(),
        ));
    };
    let dir = open_root(&RootPath {
        anchor: root.anchor.clone(),
        below: parents.to_vec(),
        allow_symlink: false,
    })?;
    let stat = match rustix::fs::statat(&dir._dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => return Ok((dir, name.clone())),
        Err(e) => {
            return Err(UnpackError::Io {
                path: display,
                source: e.into(),
            });
        }
        Ok(stat) => stat,
    };
    match rustix::fs::FileType::from_raw_mode(stat.st_mode) {
        rustix::fs::FileType::RegularFile => Ok((dir, name.clone())),
        rustix::fs::FileType::Directory => Err(root_err(
            "a directory stands where the cache has a file; nothing was changed \
             (remove the directory to restore the file)"
                .into(),
        )),
        rustix::fs::FileType::Symlink => {
            let target = rustix::fs::readlinkat(&dir._dir, name.as_os_str(), Vec::new())
                .map(|t| PathBuf::from(OsStr::from_bytes(t.as_bytes())))
                .unwrap_or_else(|_| PathBuf::from("?"));
            if !root.allow_symlink {
                return Err(UnpackError::RootSymlink {
                    link: display,
                    target,
                    at_root: true,
                });
            }
            follow_file_link(&display, &target)
        }
        _ => Err(root_err("exists and is not a regular file".into())),
    }
}

/// The user's own link to a file, followed: the file is restored where it
/// points, which must be a regular file or nothing in an existing directory.
fn follow_file_link(link: &Path, target: &Path) -> Result<(OpenRoot, OsString), UnpackError> {
    let not_usable = |why: &str| UnpackError::Root {
        path: link.to_path_buf(),
        reason: format!("a symlink to {}, {why}", target.display()),
    };
    let pointed = link.parent().unwrap_or(Path::new("/")).join(target);
    let real = match fs::canonicalize(&pointed) {
        Ok(real) if real.is_file() => real,
        Ok(_) => return Err(not_usable("which is not a regular file")),
        // Dangling: the file is made where it points, if that directory is there.
        Err(_) => match (pointed.parent().map(fs::canonicalize), pointed.file_name()) {
            (Some(Ok(dir)), Some(name)) => dir.join(name),
            _ => return Err(not_usable("which does not exist")),
        },
    };
    let (Some(dir), Some(name)) = (real.parent(), real.file_name()) else {
        return Err(not_usable("which is not a file's path"));
    };
    let open = open_root(&RootPath {
        anchor: dir.to_path_buf(),
        below: Vec::new(),
        allow_symlink: true,
    })?;
    Ok((open, name.to_os_string()))
}

fn is_plain_name(name: &OsStr) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty() && bytes != b"." && bytes != b".." && !bytes.contains(&b'/')
}

/// The anchor is the user's: a missing one (the parent of a PATH they
/// named, a `$HOME` not made yet) is created as `mkdir -p` would.
fn open_or_create_anchor(anchor: &Path) -> Result<OwnedFd, UnpackError> {
    let io_err = |source| UnpackError::Io {
        path: anchor.to_path_buf(),
        source,
    };
    match open_dir(anchor) {
        Ok(fd) => Ok(fd),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(anchor).map_err(io_err)?;
            open_dir(anchor).map_err(io_err)
        }
        Err(e) => Err(io_err(e)),
    }
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(fd)
}

/// The fast path: every component exists and none is a symlink. `None`
/// where the kernel has no openat2 (or the root is the anchor).
fn beneath_all_at_once(anchor: &OwnedFd, below: &[OsString]) -> Option<io::Result<OwnedFd>> {
    if below.is_empty() {
        return rustix::fs::openat(
            anchor,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)
        .into();
    }
    let mut relative = PathBuf::new();
    relative.extend(below);
    match rustix::fs::openat2(
        anchor,
        &relative,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
    ) {
        Err(Errno::NOSYS) | Err(Errno::PERM) => None, // no openat2, or a seccomp filter
        other => Some(other.map_err(io::Error::from)),
    }
}

/// One component at a time with `O_NOFOLLOW`, creating missing ones.
fn walk(anchor: OwnedFd, root: &RootPath, display: &Path) -> Result<OwnedFd, UnpackError> {
    let mut dir = anchor;
    let mut reached = root.anchor.clone();
    for (i, name) in root.below.iter().enumerate() {
        reached.push(name);
        let last = i + 1 == root.below.len();
        dir = step(&dir, name, last && root.allow_symlink, &reached, display)?;
    }
    Ok(dir)
}

fn step(
    dir: &OwnedFd,
    name: &OsStr,
    follow: bool,
    reached: &Path,
    display: &Path,
) -> Result<OwnedFd, UnpackError> {
    let io_err = |source: Errno| UnpackError::Io {
        path: reached.to_path_buf(),
        source: source.into(),
    };
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    for _ in 0..2 {
        match rustix::fs::openat(dir, name, flags, Mode::empty()) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(dir, name, Mode::from_bits_truncate(0o777)) {
                    // Made by someone else meanwhile: open what is there.
                    Ok(()) | Err(Errno::EXIST) => continue,
                    Err(e) => return Err(io_err(e)),
                }
            }
            // O_NOFOLLOW on a symlink: ELOOP; O_DIRECTORY on a file: ENOTDIR.
            Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                return symlink_or_file(dir, name, follow, reached, display);
            }
            Err(e) => return Err(io_err(e)),
        }
    }
    Err(io_err(Errno::NOENT))
}

/// What stands where a directory was expected: a symlink is followed only
/// with the user's leave, and only at the root itself.
fn symlink_or_file(
    dir: &OwnedFd,
    name: &OsStr,
    follow: bool,
    reached: &Path,
    display: &Path,
) -> Result<OwnedFd, UnpackError> {
    let stat =
        rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| UnpackError::Io {
            path: reached.to_path_buf(),
            source: e.into(),
        })?;
    let is_symlink = rustix::fs::FileType::from_raw_mode(stat.st_mode).is_symlink();
    if !is_symlink {
        return Err(UnpackError::Root {
            path: display.to_path_buf(),
            reason: format!("{} exists and is not a directory", reached.display()),
        });
    }
    let target = rustix::fs::readlinkat(dir, name, Vec::new())
        .map(|t| PathBuf::from(OsStr::from_bytes(t.as_bytes())))
        .unwrap_or_else(|_| PathBuf::from("?"));
    if !follow {
        return Err(UnpackError::RootSymlink {
            link: reached.to_path_buf(),
            target,
            at_root: reached == display,
        });
    }
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| UnpackError::Root {
        path: display.to_path_buf(),
        reason: format!(
            "{} is a symlink to {}, which is not a usable directory ({})",
            reached.display(),
            target.display(),
            io::Error::from(e)
        ),
    })
}

/// `/proc/self/fd/N`, if it reaches `dir` here: the kernel resolves it to
/// the open directory itself, so paths below it cannot be redirected by a
/// symlink swapped in on the way to the root.
fn access_path(dir: &OwnedFd) -> Option<PathBuf> {
    let path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd()));
    let via_proc = fs::metadata(&path).ok()?;
    let direct = rustix::fs::fstat(dir).ok()?;
    use std::os::unix::fs::MetadataExt;
    (via_proc.dev() == direct.st_dev && via_proc.ino() == direct.st_ino).then_some(path)
}

/// How many directories a [`DirFds`] keeps open. Tar order visits a
/// directory's entries together and descends one level at a time, so a
/// short stack of the most recently used is nearly always enough (a miss
/// costs one lookup of one name beneath the nearest open ancestor); the
/// cap keeps a restore well below the common limit of 1024 open files with
/// an entry per CPU restored at once, and when the limit is hit anyway the
/// cached ones are closed and the open tried again.
const OPEN_DIRS: usize = 16;

/// An open directory below a root: the root itself, or one [`DirFds`]
/// opened (it stays open while a caller holds it, even once evicted).
#[derive(Debug, Clone)]
pub enum DirFd<'r> {
    Root(BorrowedFd<'r>),
    Below(Arc<OwnedFd>),
}

impl AsFd for DirFd<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            DirFd::Root(fd) => *fd,
            DirFd::Below(fd) => fd.as_fd(),
        }
    }
}

/// The directories below an open root, by root-relative path, each opened
/// beneath its already-open parent one name at a time with
/// `O_PATH | O_DIRECTORY | O_NOFOLLOW`: a symlink (or anything but a real
/// directory) anywhere on the way is an error, never followed, and once
/// open a directory stays the one that was checked, whatever is swapped in
/// at its path meanwhile. Every call made through one is a lookup of a
/// single name in a directory, instead of the walk of a long path (and of
/// `/proc/self/fd/N`) per call.
///
/// A cache by path: whoever renames or removes a directory below the root
/// must [`DirFds::forget`] it (or [`DirFds::clear`]), or the old path would
/// still reach it.
#[derive(Debug)]
pub struct DirFds<'r> {
    root: BorrowedFd<'r>,
    open: Vec<OpenDir>,
    clock: u64,
}

#[derive(Debug)]
struct OpenDir {
    rel: Vec<u8>,
    fd: Arc<OwnedFd>,
    used: u64,
}

impl<'r> DirFds<'r> {
    pub fn new(root: BorrowedFd<'r>) -> DirFds<'r> {
        DirFds {
            root,
            open: Vec::with_capacity(OPEN_DIRS),
            clock: 0,
        }
    }

    /// The directory at `rel` (`a/b`, no empty, `.` or `..` component; ""
    /// is the root), opened beneath its parent. `ENOTDIR` if something on
    /// the way is a symlink or not a directory, `ENOENT` if missing.
    pub fn get(&mut self, rel: &[u8]) -> io::Result<DirFd<'r>> {
        if rel.is_empty() {
            return Ok(DirFd::Root(self.root));
        }
        if let Some(fd) = self.cached(rel) {
            return Ok(fd);
        }
        // The deepest ancestor already open, and where the rest starts.
        let (mut dir, mut start) = (DirFd::Root(self.root), 0);
        for (i, _) in rel.iter().enumerate().rev().filter(|(_, b)| **b == b'/') {
            if let Some(fd) = self.cached(&rel[..i]) {
                (dir, start) = (fd, i + 1);
                break;
            }
        }
        loop {
            let end = rel[start..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(rel.len(), |p| start + p);
            let name = &rel[start..end];
            if name.is_empty() || name == b"." || name == b".." {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a plain relative path",
                ));
            }
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = match rustix::fs::openat(&dir, name, flags, Mode::empty()) {
                // Out of file descriptors: give back the cached ones (`dir`
                // stays open while held here) and try once more.
                Err(Errno::MFILE | Errno::NFILE) if !self.open.is_empty() => {
                    self.open.clear();
                    rustix::fs::openat(&dir, name, flags, Mode::empty())?
                }
                other => other?,
            };
            let fd = Arc::new(fd);
            self.insert(&rel[..end], fd.clone());
            dir = DirFd::Below(fd);
            if end == rel.len() {
                return Ok(dir);
            }
            start = end + 1;
        }
    }

    /// Drops `rel` and everything below it: it was renamed or removed.
    pub fn forget(&mut self, rel: &[u8]) {
        self.open.retain(|d| {
            !(d.rel.starts_with(rel) && (d.rel.len() == rel.len() || d.rel[rel.len()] == b'/'))
        });
    }

    /// Drops every open directory.
    pub fn clear(&mut self) {
        self.open.clear();
    }

    fn cached(&mut self, rel: &[u8]) -> Option<DirFd<'r>> {
        self.clock += 1;
        let clock = self.clock;
        // Newest last: the directory used just before is found first.
        self.open.iter_mut().rev().find(|d| d.rel == rel).map(|d| {
            d.used = clock;
            DirFd::Below(d.fd.clone())
        })
    }

    fn insert(&mut self, rel: &[u8], fd: Arc<OwnedFd>) {
        if self.open.len() >= OPEN_DIRS
            && let Some(oldest) = (0..self.open.len()).min_by_key(|&i| self.open[i].used)
        {
            self.open.swap_remove(oldest);
        }
        self.clock += 1;
        self.open.push(OpenDir {
            rel: rel.to_vec(),
            fd,
            used: self.clock,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File};
    use std::os::unix::fs::symlink;

    use super::*;

    fn errno(result: io::Result<DirFd<'_>>) -> Option<i32> {
        result.err().and_then(|e| e.raw_os_error())
    }

    #[test]
    fn dir_fds_open_real_directories_only_and_never_follow_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::create_dir(tmp.path().join("outside")).unwrap();
        symlink(tmp.path().join("outside"), root.join("a/link")).unwrap();
        symlink("b", root.join("a/rel")).unwrap();
        fs::write(root.join("a/file"), "x").unwrap();
        let root_dir = File::open(&root).unwrap();
        let mut fds = DirFds::new(root_dir.as_fd());

        assert!(fds.get(b"a/b").is_ok());
        for through in [&b"a/link"[..], b"a/link/x", b"a/rel", b"a/file"] {
            assert_eq!(errno(fds.get(through)), Some(libc::ENOTDIR), "{through:?}");
        }
        assert_eq!(errno(fds.get(b"a/missing")), Some(libc::ENOENT));
        for bad in [&b"a/../a"[..], b"a//b", b"./a", b"a/"] {
            let err = fds.get(bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn dir_fds_forget_renamed_directories_and_outlive_their_cap() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for i in 0..3 * OPEN_DIRS {
            fs::create_dir_all(root.join(format!("d/{i}/sub"))).unwrap();
        }
        let root_dir = File::open(root).unwrap();
        let mut fds = DirFds::new(root_dir.as_fd());
        let held = fds.get(b"d/0/sub").unwrap();
        for i in 0..3 * OPEN_DIRS {
            fds.get(format!("d/{i}/sub").as_bytes()).unwrap();
        }
        assert!(fds.open.len() <= OPEN_DIRS);
        // Evicted, yet still open while held.
        fs::write(root.join("d/0/sub/f"), "x").unwrap();
        assert!(rustix::fs::statat(&held, "f", AtFlags::empty()).is_ok());

        // A renamed directory is not reached by its old path once forgotten.
        fds.get(b"d/1/sub").unwrap();
        fs::rename(root.join("d/1"), root.join("d/moved")).unwrap();
        fds.forget(b"d/1");
        assert_eq!(errno(fds.get(b"d/1/sub")), Some(libc::ENOENT));
        assert!(fds.get(b"d/moved/sub").is_ok());
    }
}
