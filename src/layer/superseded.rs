//! Restoring a `mode=max` chain writes each path once: the entry's state
//! list says which layer holds each path's final state, so a layer's copy
//! of a path a later layer replaces, or that a later layer deletes, is
//! skipped instead of written and then overwritten or removed.
//!
//! The list is read as a stream beside each layer's tar (both in tar order):
//! memory stays flat. When the layer is not in tar order the skipping stops
//! for the rest of it: a path is only ever skipped when the list is sure.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use super::filelist::{FileListReader, FileRecord, tar_order};

pub struct FinalLayers {
    reader: FileListReader<BufReader<File>>,
    /// The index of the layer being applied in the entry's chain.
    layer: u32,
    /// The first record not yet passed.
    next: Option<FileRecord>,
    /// The last path asked about, to notice a layer out of tar order.
    last: Vec<u8>,
    /// Skipping stopped: the list or the layer is not what was expected.
    off: bool,
    pub skipped: u64,
}

impl FinalLayers {
    pub fn open(list: &Path, layer: u32) -> io::Result<FinalLayers> {
        let reader = FileListReader::new(BufReader::new(File::open(list)?))?;
        let mut finals = FinalLayers {
            reader,
            layer,
            next: None,
            last: Vec::new(),
            off: false,
            skipped: 0,
        };
        finals.advance();
        Ok(finals)
    }

    fn advance(&mut self) {
        match self.reader.next_record() {
            Ok(next) => self.next = next,
            Err(err) => {
                tracing::debug!("{err}; writing every path of the layer");
                self.next = None;
                self.off = true;
            }
        }
    }

    /// Whether this layer's copy of `path` is replaced or deleted by a
    /// later layer of the chain.
    pub fn superseded(&mut self, path: &[u8]) -> bool {
        if self.off {
            return false;
        }
        if tar_order(&self.last, path) != Ordering::Less && !self.last.is_empty() {
            self.off = true;
            return false;
        }
        self.last = path.to_vec();
        loop {
            let Some(next) = &self.next else {
                // Past the end of the final state: deleted later.
                return self.skip(!self.off);
            };
            match tar_order(&next.item.path, path) {
                Ordering::Less => self.advance(),
                Ordering::Equal => return self.skip(next.layer != self.layer),
                // Not in the final state: deleted by a later layer.
                Ordering::Greater => return self.skip(true),
            }
            if self.off {
                return false;
            }
        }
    }

    fn skip(&mut self, skip: bool) -> bool {
        self.skipped += u64::from(skip);
        skip
    }
}
