//! Finding the parts of a new walk that a base cache already holds: a
//! streaming merge-join of the walk's parts against the base's state list,
//! both in tar order. Only one base part's records are held at a time.

use std::cmp::Ordering;
use std::fs::File;
use std::io::BufReader;

use super::filelist::{FileListReader, FileRecord, same_metadata, tar_order};
use super::pack::{FileListBlob, PackedLayer};
use super::walk::Item;

/// What a save may reuse: the state list of the entry in the base cache and
/// the layers of its chain, base first (`reused` set, no blob file).
#[derive(Debug, Clone)]
pub struct BaseEntry {
    /// The state list blob, already verified against its digest.
    pub filelist: FileListBlob,
    pub layers: Vec<PackedLayer>,
    /// How many of the top layers are deltas (`mode=max`).
    pub deltas: usize,
}

#[cfg(test)]
impl BaseEntry {
    /// A save's own result as the next save's base, as a fetched cache
    /// would give it.
    pub(crate) fn of(entry: &super::pack::PackedEntry) -> BaseEntry {
        BaseEntry {
            filelist: entry.filelist.clone(),
            layers: entry
                .layers
                .iter()
                .map(|l| PackedLayer {
                    reused: true,
                    ..l.clone()
                })
                .collect(),
            deltas: entry.deltas,
        }
    }
}

/// A base part equal to a part of the walk.
pub struct Reused {
    pub layer: PackedLayer,
    /// The base's records of the part (their content digests are kept; no
    /// file is read again).
    pub records: Vec<FileRecord>,
}

pub struct BaseMatcher {
    reader: Option<FileListReader<BufReader<File>>>,
    layers: Vec<PackedLayer>,
    /// The base part under the cursor, all its records.
    group: Vec<FileRecord>,
    /// The first record of the part after `group`, already read.
    next: Option<FileRecord>,
}

impl BaseMatcher {
    /// A matcher over `base`; a list that cannot be opened only means
    /// nothing is reused (a warning), never a failed save.
    pub fn open(base: &BaseEntry) -> BaseMatcher {
        // In a chain with deltas, a full layer may hold paths a delta has
        // since deleted or replaced: reusing it as a part would bring them
        // back. Such a base serves deltas only.
        let reader = if base.deltas == 0 {
            File::open(&base.filelist.blob)
                .and_then(|f| FileListReader::new(BufReader::new(f)))
                .map_err(|e| tracing::warn!("base state list: {e}; packing everything"))
                .ok()
        } else {
            tracing::debug!("the base chain has deltas: packing everything");
            None
        };
        let mut matcher = BaseMatcher {
            reader,
            layers: base.layers.clone(),
            group: Vec::new(),
            next: None,
        };
        matcher.next = matcher.read();
        matcher.advance();
        matcher
    }

    /// Whether the base can serve parts at all (a list, no deltas).
    pub fn usable(&self) -> bool {
        self.reader.is_some() || !self.group.is_empty()
    }

    /// One record, or `None` at the end; a broken list ends the matching.
    fn read(&mut self) -> Option<FileRecord> {
        let reader = self.reader.as_mut()?;
        match reader.next_record() {
            Ok(Some(record)) if (record.layer as usize) < self.layers.len() => Some(record),
            Ok(Some(record)) => {
                tracing::warn!(
                    "base state list names layer {} of a {}-layer chain; reusing nothing more",
                    record.layer,
                    self.layers.len()
                );
                self.reader = None;
                None
            }
            Ok(None) => None,
            Err(err) => {
                tracing::warn!("{err}; reusing nothing more from the base");
                self.reader = None;
                None
            }
        }
    }

    /// Loads the next base part (the records sharing one layer) into `group`.
    fn advance(&mut self) {
        self.group.clear();
        let Some(first) = self.next.take() else {
            return;
        };
        let layer = first.layer;
        self.group.push(first);
        loop {
            match self.read() {
                Some(record) if record.layer == layer => self.group.push(record),
                other => {
                    self.next = other;
                    return;
                }
            }
        }
    }

    /// The base part holding exactly `items`, if there is one. Parts must be
    /// asked for in tar order.
    pub fn find(&mut self, items: &[Item]) -> Option<Reused> {
        let first = items.first()?;
        loop {
            let head = self.group.first()?;
            match tar_order(&head.item.path, &first.path) {
                Ordering::Less => self.advance(),
                Ordering::Greater => return None,
                Ordering::Equal => {
                    let equal = self.group.len() == items.len()
                        && self
                            .group
                            .iter()
                            .zip(items)
                            .all(|(r, i)| same_metadata(&r.item, i));
                    if !equal {
                        self.advance();
                        return None;
                    }
                    let index = head.layer as usize;
                    let records = std::mem::take(&mut self.group);
                    let layer = self.layers.get(index)?.clone();
                    self.advance();
                    return Some(Reused { layer, records });
                }
            }
        }
    }
}
