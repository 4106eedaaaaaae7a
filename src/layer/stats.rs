//! What a cache entry holds, counted the same way by pack and restore.

use serde::Serialize;

#[derive(Default, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntryStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// Content bytes of regular files (hard links not counted twice).
    pub bytes: u64,
}

impl EntryStats {
    pub fn add(&mut self, other: &EntryStats) {
        self.files += other.files;
        self.dirs += other.dirs;
        self.symlinks += other.symlinks;
        self.hardlinks += other.hardlinks;
        self.bytes += other.bytes;
    }
}
