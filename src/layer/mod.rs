//! Layer tarballs: deterministic packing of a directory into compressed
//! layer blobs, and safe restoring of (untrusted) layer blobs into one.
//!
//! - [`codec`]: gzip / zstd / uncompressed streams.
//! - [`estargz`]: eStargz blobs (gzip members per file, TOC, footer).
//! - [`pack`]: directory → parts → layer blobs, in parallel.
//! - [`growing`]: a blob still being packed, for an upload to follow.
//! - [`filelist`]: an entry's state list, what the next save compares with.
//! - [`reuse`]: which parts of a walk a base cache already holds.
//! - [`unpack`]: layer blobs → directory, verified and confined to its root.
//! - [`root`]: an entry's root opened beneath its anchor, no symlink followed.
//! - `single`: an entry of one regular file.
//! - [`leftovers`]: what killed restores left behind, removed.
//! - `listing`: directory listings for the walk, read ahead by a second thread.

pub mod codec;
pub mod delta;
pub mod estargz;
pub mod filelist;
pub mod growing;
pub mod leftovers;
mod listing;
pub mod pack;
mod pax;
pub mod plan;
pub mod reuse;
pub mod root;
mod safe_path;
mod single;
mod stage;
mod stats;
pub mod superseded;
#[cfg(test)]
mod tar_fuzz;
mod tar_read;
mod tar_write;
pub mod unpack;
#[cfg(test)]
mod unpack_tests;
mod walk;

pub use estargz::{EstargzInfo, tar_to_estargz};
pub use pack::{
    DEFAULT_PART_SIZE, EntryStats, FileListBlob, PackError, PackHooks, PackOptions, PackedEntry,
    PackedLayer, pack_dir, pack_dir_with_base, pack_file_with_base,
};
pub use reuse::BaseEntry;
pub use unpack::{EntryRestorer, LayerSource, UnpackError};
