//! An entry of one regular file: its layer is a tar of that one file,
//! named as the file is on disk, and a restore writes it at the entry's
//! PATH whatever the name in the tar (see `stage::Stage::single_file`).
//!
//! A PATH that is a symlink to a file is followed, as a directory root
//! is: the file is read where the link points.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::pack::PackError;
use super::pax::MTime;
use super::stats::EntryStats;
use super::walk::{Item, ItemKind, Part};

/// The file's directory (what the packer reads below) and its one item.
#[derive(Debug)]
pub(crate) struct SingleFile {
    pub dir: PathBuf,
    pub item: Item,
}

/// Looks `file` up (following a symlink at it, as for a directory root).
pub(crate) fn single_file(file: &Path) -> Result<SingleFile, PackError> {
    let read_err = |source| PackError::Read {
        path: file.to_path_buf(),
        source,
    };
    let real = std::fs::canonicalize(file).map_err(read_err)?;
    let meta = std::fs::symlink_metadata(&real).map_err(read_err)?;
    if !meta.is_file() {
        return Err(PackError::NotAFile {
            path: file.to_path_buf(),
        });
    }
    let (Some(dir), Some(name)) = (real.parent(), real.file_name()) else {
        return Err(PackError::NotAFile {
            path: file.to_path_buf(),
        });
    };
    let item = Item {
        path: OsString::from(name).as_bytes().to_vec(),
        kind: ItemKind::File { size: meta.len() },
        mode: meta.mode() & 0o7777,
        mtime: MTime::new(meta.mtime(), u32::try_from(meta.mtime_nsec()).unwrap_or(0)),
    };
    Ok(SingleFile {
        dir: dir.to_path_buf(),
        item,
    })
}

/// The walk of a one-file entry: one part, one item.
pub(crate) fn walk_single(
    item: Item,
    mut emit: impl FnMut(Part) -> bool,
) -> Result<EntryStats, PackError> {
    let stats = EntryStats {
        files: 1,
        bytes: match item.kind {
            ItemKind::File { size } => size,
            _ => 0,
        },
        ..EntryStats::default()
    };
    emit(Part {
        index: 0,
        items: vec![item],
        last: true,
    });
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_one_item_named_as_on_disk_and_a_link_to_it_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("Cargo.lock");
        std::fs::write(&file, "lock").unwrap();
        std::os::unix::fs::symlink("Cargo.lock", dir.path().join("link")).unwrap();
        for path in [file.clone(), dir.path().join("link")] {
            let single = single_file(&path).unwrap();
            assert_eq!(single.dir, std::fs::canonicalize(dir.path()).unwrap());
            assert_eq!(single.item.path, b"Cargo.lock");
            assert_eq!(single.item.kind, ItemKind::File { size: 4 });
        }
        let mut parts = Vec::new();
        let stats = walk_single(single_file(&file).unwrap().item, |p| {
            parts.push(p);
            true
        })
        .unwrap();
        assert_eq!((stats.files, stats.bytes, stats.dirs), (1, 4, 0));
        assert_eq!(parts.len(), 1);
        assert!(matches!(
            single_file(dir.path()),
            Err(PackError::NotAFile { .. })
        ));
    }
}
