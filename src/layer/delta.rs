//! `mode=max`: an entry keeps its chain, and a save with changes adds one
//! delta layer on top of the base's chain: new and changed paths (any
//! change of type, size, mode, mtime or link target), and an OCI whiteout
//! (`.wh.NAME`) for each deletion — one for a deleted directory, not one
//! per child. A path whose type changed gets a whiteout and its new entry in
//! the same layer, which restore requires to replace a directory by a file
//! or a file by a directory.
//!
//! The delta comes from a streaming merge-join of the walk against the
//! base's state list. The new state list is the full state: unchanged paths
//! keep the base layer that holds them, changed ones point at the delta.
//!
//! The chain is squashed into fresh full layers instead (`pack_delta`
//! returns `None`) when it would hold more than [`MAX_DELTAS`] deltas, or
//! when its deltas would outweigh half of its full layers: a restore then
//! applies at most 8 extra layers and never writes more than 1.5 times the
//! tree's bytes (the rules are in `plan`). The comparison stops as soon as
//! the delta outgrows that budget, so only the metadata of a delta that
//! will be written is ever held in memory; the lists are streamed.

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::Path;
use std::sync::atomic::AtomicBool;

use super::codec::IO_BUFFER;
use super::filelist::{FileListReader, FileListWriter, FileRecord, same_metadata, tar_order};
use super::pack::{
    FileListBlob, PackError, PackHooks, PackOptions, PackedEntry, PackedLayer, SaveCounts, Worker,
    spool_file,
};
use super::plan::{ChainShape, EntryPlan, delta_budget, plan_delta};
use super::reuse::BaseEntry;
use super::walk::{Item, ItemKind, Part, tar_cost, walk};
use crate::digest::HashingWriter;

pub use super::plan::{MAX_DELTA_SHARE, MAX_DELTAS};

/// Packs what changed since `base` as one delta layer on top of its chain.
/// `None`: squash (or the base cannot serve): make a full save instead.
pub fn pack_delta(
    root: &Path,
    spool: &Path,
    opts: &PackOptions,
    base: &BaseEntry,
    hooks: PackHooks<'_>,
) -> Result<Option<PackedEntry>, PackError> {
    let full = base.layers.len().saturating_sub(base.deltas);
    if full == 0 {
        return Ok(None);
    }
    let reader = match File::open(&base.filelist.blob)
        .and_then(|f| FileListReader::new(BufReader::new(f)))
    {
        Ok(reader) => reader,
        Err(err) => {
            tracing::warn!("base state list: {err}; a full save");
            return Ok(None);
        }
    };
    let bytes = |layers: &[PackedLayer]| layers.iter().map(|l| l.uncompressed_size).sum::<u64>();
    let chain = ChainShape {
        deltas: base.deltas,
        full_bytes: bytes(&base.layers[..full]),
        delta_bytes: bytes(&base.layers[full..]),
    };
    let delta_index = base.layers.len() as u32;
    // The merged list, with changed paths still lacking their digest.
    let (draft_file, draft_path) = spool_file(spool)?.into_parts();
    let draft_err = |source: io::Error| PackError::FileList {
        path: draft_path.to_path_buf(),
        source,
    };
    let draft = FileListWriter::scratch(BufWriter::with_capacity(IO_BUFFER, draft_file))
        .map_err(draft_err)?;
    let mut join = Join {
        base: reader,
        next: None,
        gone: None,
        draft,
        delta: Vec::new(),
        delta_index,
        error: None,
        counts: SaveCounts::default(),
        delta_bytes: 0,
        budget: delta_budget(&chain),
    };
    join.advance();
    let stats = walk(root, 1, |part| {
        part.items.into_iter().all(|item| join.add(item))
    })?;
    while join.next.is_some() && join.error.is_none() && !join.over_budget() {
        join.base_only();
    }
    if join.over_budget() {
        tracing::info!(
            "{}: more than {} bytes changed on a chain of {} deltas ({} of {} bytes): squashing it",
            root.display(),
            join.budget,
            chain.deltas,
            chain.delta_bytes,
            chain.full_bytes
        );
        return Ok(None);
    }
    let Join {
        draft,
        delta,
        error,
        counts,
        ..
    } = join;
    if let Some(err) = error {
        // A broken base list is the base's fault: save in full instead.
        tracing::warn!("{err}; a full save");
        return Ok(None);
    }
    draft.finish().map_err(draft_err)?;

    let delta_bytes = delta.iter().map(tar_cost).sum::<u64>();
    let plan = plan_delta(&chain, delta.len(), delta_bytes);
    tracing::debug!(
        ?chain,
        paths = delta.len(),
        delta_bytes,
        plan = plan.name(),
        "delta decision"
    );
    if plan == EntryPlan::Squash {
        tracing::info!(
            "{}: a delta of {delta_bytes} bytes on a chain of {} deltas ({} of {} bytes): squashing it",
            root.display(),
            chain.deltas,
            chain.delta_bytes,
            chain.full_bytes
        );
        return Ok(None);
    }
    if plan == EntryPlan::Unchanged {
        // Nothing changed: the merged list is the base's, record for
        // record, so it is taken as it is instead of encoded again.
        return Ok(Some(PackedEntry {
            layers: base.layers.clone(),
            stats,
            filelist: copy_list(&base.filelist, spool)?,
            deltas: base.deltas,
            plan,
            counts,
        }));
    }

    let mut layers = base.layers.clone();
    let mut deltas = base.deltas;
    let mut changed = Vec::new().into_iter();
    let mut kept_blob = None;
    if !delta.is_empty() {
        let part = Part {
            index: delta_index as usize,
            items: delta,
            last: true,
        };
        hooks.progress.grow(part.content_bytes());
        let mut worker = Worker::new(root, spool, opts, hooks.progress).named(hooks.name);
        // The delta is the only part: it may use every core.
        let finished = worker.pack(part, &AtomicBool::new(false), opts.jobs)?;
        let blob = match finished.file {
            Some(file) => file.keep().map_err(|e| PackError::Spool {
                path: e.path.to_path_buf(),
                source: e.error,
            })?,
            None => Default::default(),
        };
        tracing::info!(
            "{}: {} changed path(s) in a delta layer {}",
            root.display(),
            finished.records.len(),
            finished.layer.digest
        );
        kept_blob = Some(blob.clone());
        layers.push(PackedLayer {
            blob,
            ..finished.layer
        });
        deltas += 1;
        changed = finished
            .records
            .into_iter()
            .filter(|r| r.item.kind != ItemKind::Whiteout)
            .collect::<Vec<_>>()
            .into_iter();
    }
    let filelist = match finish_list(&draft_path, spool, delta_index, &mut changed) {
        Ok(list) => list,
        Err(err) => {
            if let Some(blob) = kept_blob {
                let _ = std::fs::remove_file(blob);
            }
            return Err(err);
        }
    };
    Ok(Some(PackedEntry {
        layers,
        stats,
        filelist,
        deltas,
        plan,
        counts,
    }))
}

/// A copy of `list` in the spool (the base's file goes with its fetch).
fn copy_list(list: &FileListBlob, spool: &Path) -> Result<FileListBlob, PackError> {
    let (_, path) = spool_file(spool)?.into_parts();
    std::fs::copy(&list.blob, &path).map_err(|source| PackError::FileList {
        path: path.to_path_buf(),
        source,
    })?;
    let blob = path.keep().map_err(|e| PackError::Spool {
        path: e.path.to_path_buf(),
        source: e.error,
    })?;
    Ok(FileListBlob {
        blob,
        digest: list.digest.clone(),
        size: list.size,
    })
}

/// Writes the final list: the draft with each changed path's record (and
/// content digest) from the packed delta.
fn finish_list(
    draft: &Path,
    spool: &Path,
    delta_index: u32,
    changed: &mut impl Iterator<Item = FileRecord>,
) -> Result<FileListBlob, PackError> {
    let (file, path) = spool_file(spool)?.into_parts();
    let list_err = |source: io::Error| PackError::FileList {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = File::open(draft)
        .and_then(|f| FileListReader::new(BufReader::new(f)))
        .map_err(list_err)?;
    let mut writer = FileListWriter::new(HashingWriter::new(BufWriter::with_capacity(
        IO_BUFFER, file,
    )))
    .map_err(list_err)?;
    let mismatch = || list_err(io::Error::other("the delta and its list disagree"));
    loop {
        let record = match reader.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(err) => return Err(list_err(io::Error::other(err.to_string()))),
        };
        let record = if record.layer == delta_index {
            let packed = changed.next().ok_or_else(mismatch)?;
            if packed.item.path != record.item.path {
                return Err(mismatch());
            }
            packed
        } else {
            record
        };
        writer.write(&record).map_err(list_err)?;
    }
    if changed.next().is_some() {
        return Err(mismatch());
    }
    let (buffered, digest, size) = writer.finish().map_err(list_err)?.finish();
    buffered
        .into_inner()
        .map_err(|e| list_err(e.into_error()))?;
    let blob = path.keep().map_err(|e| PackError::Spool {
        path: e.path.to_path_buf(),
        source: e.error,
    })?;
    Ok(FileListBlob { blob, digest, size })
}

/// The merge-join of the walk (new) against the base list (old).
struct Join {
    base: FileListReader<BufReader<File>>,
    /// The base record under the cursor.
    next: Option<FileRecord>,
    /// A directory of the base that is gone (deleted, or now another type):
    /// its whiteout deletes everything below it, so its children are
    /// skipped without one each.
    gone: Option<Vec<u8>>,
    draft: FileListWriter<BufWriter<File>>,
    /// Items of the delta layer, whiteouts included, in order.
    delta: Vec<Item>,
    delta_index: u32,
    error: Option<String>,
    counts: SaveCounts,
    /// Tar bytes of `delta` so far, and the most it may reach.
    delta_bytes: u64,
    budget: u64,
}

impl Join {
    fn advance(&mut self) {
        self.next = match self.base.next_record() {
            Ok(next) => next,
            Err(err) => {
                self.error = Some(err.to_string());
                None
            }
        };
    }

    fn over_budget(&self) -> bool {
        self.delta_bytes > self.budget
    }

    /// Adds an item to the delta layer. Memory holds the delta's metadata
    /// only, and only up to the squash budget.
    fn push_delta(&mut self, item: Item) {
        self.delta_bytes = self.delta_bytes.saturating_add(tar_cost(&item));
        self.delta.push(item);
    }

    fn fail(&mut self, err: io::Error) -> bool {
        self.error = Some(format!("writing the state list: {err}"));
        false
    }

    /// Takes one walked item; false stops the walk (an error).
    fn add(&mut self, item: Item) -> bool {
        loop {
            if self.error.is_some() || self.over_budget() {
                return false;
            }
            let Some(old) = &self.next else {
                return self.changed(item, None);
            };
            match tar_order(&old.item.path, &item.path) {
                std::cmp::Ordering::Less => self.base_only(),
                std::cmp::Ordering::Greater => return self.changed(item, None),
                std::cmp::Ordering::Equal => {
                    let Some(old) = self.next.take() else {
                        return false;
                    };
                    self.advance();
                    if same_metadata(&old.item, &item) {
                        self.counts.add(&old.item, true);
                        return match self.draft.write(&old) {
                            Ok(()) => true,
                            Err(err) => self.fail(err),
                        };
                    }
                    return self.changed(item, Some(old));
                }
            }
        }
    }

    /// The record under the cursor is in the base only: deleted.
    fn base_only(&mut self) {
        let Some(old) = self.next.take() else {
            return;
        };
        self.advance();
        if self.below_gone(&old.item.path) {
            return;
        }
        self.push_delta(whiteout(&old.item.path));
        if old.item.kind == ItemKind::Dir {
            self.gone = Some(old.item.path);
        }
    }

    fn below_gone(&self, path: &[u8]) -> bool {
        self.gone.as_ref().is_some_and(|dir| {
            path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
        })
    }

    /// A new or changed path: into the delta, and into the list as the
    /// delta's (its digest comes once it is packed).
    fn changed(&mut self, item: Item, old: Option<FileRecord>) -> bool {
        if let Some(old) = old {
            let same_type =
                std::mem::discriminant(&old.item.kind) == std::mem::discriminant(&item.kind);
            if !same_type {
                // Restore replaces a path of another type only when this
                // layer also whites it out.
                self.push_delta(whiteout(&item.path));
                if old.item.kind == ItemKind::Dir {
                    self.gone = Some(old.item.path);
                }
            }
        }
        self.counts.add(&item, false);
        let record = FileRecord {
            item: item.clone(),
            digest: None,
            layer: self.delta_index,
        };
        self.push_delta(item);
        match self.draft.write(&record) {
            Ok(()) => true,
            Err(err) => self.fail(err),
        }
    }
}

/// The whiteout deleting `path` from the layers below.
fn whiteout(path: &[u8]) -> Item {
    let (parent, name) = match path.iter().rposition(|&c| c == b'/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => (&b""[..], path),
    };
    Item {
        path: [parent, b".wh.", name].concat(),
        kind: ItemKind::Whiteout,
        mode: 0o644,
        mtime: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::compression::Compression;
    use crate::layer::pack::pack_dir;

    fn opts() -> PackOptions {
        PackOptions {
            compression: Compression::Uncompressed,
            level: None,
            part_size: 1 << 20,
            jobs: 1,
        }
    }

    fn base_of(entry: &PackedEntry) -> BaseEntry {
        BaseEntry::of(entry)
    }

    /// The names in an uncompressed layer, in order.
    fn names(layer: &PackedLayer) -> Vec<String> {
        let mut archive = tar::Archive::new(File::open(&layer.blob).unwrap());
        archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn a_delta_holds_changes_and_one_whiteout_per_deleted_tree() {
        let dir = tempfile::tempdir().unwrap();
        let (root, spool) = (dir.path().join("t"), dir.path().join("spool"));
        fs::create_dir_all(root.join("gone/deep")).unwrap();
        fs::create_dir_all(&spool).unwrap();
        for f in ["gone/a", "gone/deep/b", "keep", "edit", "was-file"] {
            fs::write(root.join(f), f).unwrap();
        }
        fs::create_dir(root.join("was-dir")).unwrap();
        fs::write(root.join("was-dir/child"), "c").unwrap();
        // Heavy enough that the delta stays under half of the chain.
        fs::write(root.join("big"), vec![1u8; 256 << 10]).unwrap();
        // Directory times are pinned so only the named changes count.
        let pin = filetime::FileTime::from_unix_time(1_600_000_000, 0);
        let pin_all = |root: &Path| {
            for d in ["", "gone", "gone/deep", "was-dir", "was-file"] {
                let _ = filetime::set_symlink_file_times(root.join(d), pin, pin);
            }
        };
        pin_all(&root);
        let first = pack_dir(&root, &spool, &opts()).unwrap();

        fs::remove_dir_all(root.join("gone")).unwrap();
        fs::write(root.join("edit"), "edited!").unwrap();
        fs::remove_file(root.join("was-file")).unwrap();
        fs::create_dir(root.join("was-file")).unwrap();
        fs::remove_dir_all(root.join("was-dir")).unwrap();
        symlink("keep", root.join("was-dir")).unwrap();
        pin_all(&root);
        let second = pack_delta(&root, &spool, &opts(), &base_of(&first), PackHooks::NONE)
            .unwrap()
            .expect("a small change is a delta");
        assert_eq!(second.deltas, 1);
        assert_eq!(second.layers.len(), first.layers.len() + 1);
        let top = second.layers.last().unwrap();
        assert!(!top.reused);
        assert_eq!(
            names(top),
            [
                "edit",
                ".wh.gone",
                ".wh.was-dir",
                "was-dir",
                ".wh.was-file",
                "was-file/"
            ]
        );

        // The new list is the full state, each path at its layer.
        let mut reader =
            FileListReader::new(BufReader::new(File::open(&second.filelist.blob).unwrap()))
                .unwrap();
        let mut state = Vec::new();
        while let Some(r) = reader.next_record().unwrap() {
            state.push((String::from_utf8(r.item.path).unwrap(), r.layer));
        }
        let top_index = first.layers.len() as u32;
        assert_eq!(
            state,
            [
                ("big".to_string(), 0),
                ("edit".to_string(), top_index),
                ("keep".to_string(), 0),
                ("was-dir".to_string(), top_index),
                ("was-file".to_string(), top_index),
            ]
        );

        // Nothing changed since: no new layer, the same list.
        let third = pack_delta(&root, &spool, &opts(), &base_of(&second), PackHooks::NONE)
            .unwrap()
            .unwrap();
        let digests = |e: &PackedEntry| {
            e.layers
                .iter()
                .map(|l| l.digest.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(digests(&third), digests(&second));
        assert_eq!(third.reused_layers(), third.layers.len());
        assert_eq!(third.plan, EntryPlan::Unchanged);
        assert_eq!(third.counts.read_files, 0);
        // The base's list as it is, not encoded again.
        assert_eq!(third.filelist.digest, second.filelist.digest);
        assert_eq!(
            fs::read(&third.filelist.blob).unwrap(),
            fs::read(&second.filelist.blob).unwrap()
        );
    }
}
