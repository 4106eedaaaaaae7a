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
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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
