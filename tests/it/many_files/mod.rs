//! A layer of many empty files, the cheapest way to make a restore hold
//! one record per entry: shared by `tests/layer_memory.rs` (memory bound)
//! and `examples/many_files.rs` (`make bench`).

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

use regcache::compression::Compression;
use regcache::digest::{Digest, HashingWriter};
use regcache::layer::{EntryRestorer, EntryStats, LayerSource, UnpackError};

/// A gzip layer blob on disk, with what its descriptor would say.
pub struct Layer {
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
    pub uncompressed: u64,
}

/// Writes `dirs` directories of `files` empty files each to `blob`.
pub fn build_layer(blob: &Path, dirs: usize, files: usize) -> io::Result<Layer> {
    let compressed = HashingWriter::new(BufWriter::new(File::create(blob)?));
    let gzip = flate2::write::GzEncoder::new(compressed, flate2::Compression::fast());
    let mut tar = tar::Builder::new(HashingWriter::new(gzip));
    for d in 0..dirs {
        let dir = format!("d{d:04}");
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        tar.append_data(&mut header, &dir, io::empty())?;
        for f in 0..files {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(0);
            tar.append_data(&mut header, format!("{dir}/f{f:04}"), io::empty())?;
        }
    }
    let (gzip, diff_id, uncompressed) = tar.into_inner()?.finish();
    let (buffered, digest, size) = gzip.finish()?.finish();
    buffered.into_inner().map_err(|e| e.into_error())?;
    Ok(Layer {
        digest,
        size,
        diff_id,
        uncompressed,
    })
}

/// Restores the blob into `dest` the way `regcache restore` does.
pub fn restore(blob: &Path, layer: &Layer, dest: &Path) -> Result<EntryStats, UnpackError> {
    let reader = File::open(blob).map_err(|source| UnpackError::Io {
        path: blob.to_path_buf(),
        source,
    })?;
    let mut restorer = EntryRestorer::new(dest)?;
    restorer.apply_layer(LayerSource {
        reader,
        digest: layer.digest.clone(),
        size: layer.size,
        compression: Compression::Gzip,
        diff_id: Some(layer.diff_id.clone()),
        max_uncompressed: Some(layer.uncompressed),
    })?;
    restorer.finish()
}
