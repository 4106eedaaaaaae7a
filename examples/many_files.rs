//! `make bench`'s memory check: builds a gzip layer of DIRS × FILES empty
//! files, or restores one, so the restore's peak RSS can be measured alone.
//!
//! usage: many_files build DIRS FILES BLOB
//!        many_files restore BLOB DEST   (reads BLOB.json from `build`)

#[path = "../tests/it/many_files/mod.rs"]
mod many_files;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use many_files::Layer;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["build", dirs, files, blob] => {
            let layer = many_files::build_layer(Path::new(blob), dirs.parse()?, files.parse()?)?;
            let described = serde_json::json!({
                "digest": layer.digest.to_string(),
                "size": layer.size,
                "diff_id": layer.diff_id.to_string(),
                "uncompressed": layer.uncompressed,
            });
            std::fs::write(descriptor(blob), described.to_string())?;
            Ok(())
        }
        ["restore", blob, dest] => {
            let text = std::fs::read_to_string(descriptor(blob)).context("run build first")?;
            let json: serde_json::Value = serde_json::from_str(&text)?;
            let field = |name: &str| {
                json[name]
                    .as_str()
                    .map(str::to_owned)
                    .context(name.to_owned())
            };
            let number = |name: &str| json[name].as_u64().context(name.to_owned());
            let layer = Layer {
                digest: field("digest")?.parse()?,
                size: number("size")?,
                diff_id: field("diff_id")?.parse()?,
                uncompressed: number("uncompressed")?,
            };
            let stats = many_files::restore(Path::new(blob), &layer, Path::new(dest))?;
            println!("{} files, {} dirs", stats.files, stats.dirs);
            Ok(())
        }
        _ => bail!("usage: many_files build DIRS FILES BLOB | many_files restore BLOB DEST"),
    }
}

fn descriptor(blob: &str) -> PathBuf {
    PathBuf::from(format!("{blob}.json"))
}
