//! What `regcache inspect` reports about a cache image, as JSON (`--json`)
//! or as a human-readable table.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use super::config::CacheConfig;
use super::descriptor::Descriptor;
use super::entries::{EntriesBlob, EntryKind};
use super::manifest::{CacheImage, RawManifest};
use super::media_types::{ANNOTATION_STARGZ_TOC, ANNOTATION_UNCOMPRESSED, layer_compression};
use crate::compression::Compression;
use crate::digest::Digest;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InspectReport {
    /// "image-manifest", "oci-index" or "docker-manifest-list".
    pub form: String,
    pub manifest_digest: Digest,
    pub media_type: String,
    /// Each distinct layer blob once, in manifest order.
    pub layers: Vec<LayerInfo>,
    /// Records in the cache config.
    pub records: usize,
    /// Records with at least one result or chained result: the cache keys
    /// that can actually produce a layer.
    pub results: usize,
    /// What the cache occupies in a store: the manifest's bytes plus the size
    /// of each distinct blob it references (config, layers, entries blob and
    /// any other descriptor), each counted once however often it is listed.
    pub total_size: u64,
    /// regcache's entries, empty for a cache written by BuildKit.
    pub entries: Vec<EntryInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerInfo {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// "gzip", "estargz", "zstd" or "uncompressed".
    pub compression: String,
    /// The diffID from `containerd.io/uncompressed`, if present and valid.
    pub uncompressed_digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryInfo {
    pub path: String,
    /// `dir`, or `file` for an entry of one regular file.
    pub kind: EntryKind,
    pub files: u64,
    pub bytes: u64,
    pub layers: usize,
}

impl InspectReport {
    pub fn new(
        raw: &RawManifest,
        image: &CacheImage,
        config: &CacheConfig,
        entries: Option<&EntriesBlob>,
    ) -> InspectReport {
        let mut seen = BTreeSet::new();
        let layers = image
            .layers()
            .filter(|d| seen.insert(&d.digest))
            .filter_map(layer_info)
            .collect();

        let mut distinct = BTreeSet::new();
        let blob_bytes: u64 = image
            .descriptors()
            .filter(|d| distinct.insert(&d.digest))
            .map(|d| d.size)
            .fold(0u64, u64::saturating_add);

        let media_type = if raw.media_type.is_empty() {
            image.form.media_type().to_string()
        } else {
            raw.media_type.clone()
        };
        InspectReport {
            form: image.form.name().to_string(),
            manifest_digest: raw.digest.clone(),
            media_type,
            layers,
            records: config.records.len(),
            results: config
                .records
                .iter()
                .filter(|r| !r.results.is_empty() || !r.chains.is_empty())
                .count(),
            total_size: (raw.bytes.len() as u64).saturating_add(blob_bytes),
            entries: entries
                .map(|blob| {
                    blob.entries
                        .iter()
                        .map(|e| EntryInfo {
                            path: e.path.clone(),
                            kind: e.kind,
                            files: e.files,
                            bytes: e.bytes,
                            layers: e.layers.len(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// A readable summary: the image, a table of layers, the record counts,
    /// a table of entries if any, and the total size.
    pub fn render_human(&self) -> String {
        let mut out = String::new();
        let header = [
            (
                "form",
                format!("{} ({})", self.form, printable(&self.media_type)),
            ),
            ("manifest", self.manifest_digest.to_string()),
            (
                "records",
                format!("{} ({} with results)", self.records, self.results),
            ),
            ("layers", format!("{} distinct", self.layers.len())),
            (
                "total size",
                format!(
                    "{} ({} bytes)",
                    human_bytes(self.total_size),
                    self.total_size
                ),
            ),
        ];
        let width = header.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
        for (key, value) in header {
            let _ = writeln!(out, "{:<width$} {value}", format!("{key}:"));
        }

        if !self.layers.is_empty() {
            out.push('\n');
            let rows = self
                .layers
                .iter()
                .map(|l| {
                    vec![
                        l.digest.short(),
                        human_bytes(l.size),
                        l.compression.clone(),
                        l.uncompressed_digest
                            .as_ref()
                            .map_or_else(|| "-".to_string(), Digest::short),
                    ]
                })
                .collect::<Vec<_>>();
            out.push_str(&table(
                &["LAYER", "SIZE", "COMPRESSION", "UNCOMPRESSED"],
                &[false, true, false, false],
                &rows,
            ));
        }

        if !self.entries.is_empty() {
            out.push('\n');
            let rows = self
                .entries
                .iter()
                .map(|e| {
                    vec![
                        printable(&e.path),
                        e.files.to_string(),
                        human_bytes(e.bytes),
                        e.layers.to_string(),
                    ]
                })
                .collect::<Vec<_>>();
            out.push_str(&table(
                &["ENTRY", "FILES", "SIZE", "LAYERS"],
                &[false, true, true, true],
                &rows,
            ));
        }
        out
    }
}

fn layer_info(d: &Descriptor) -> Option<LayerInfo> {
    let compression = match layer_compression(&d.media_type)? {
        // estargz shares the gzip media type; only its TOC annotation tells.
        Compression::Gzip if d.annotations.contains_key(ANNOTATION_STARGZ_TOC) => {
            Compression::Estargz
        }
        other => other,
    };
    Some(LayerInfo {
        digest: d.digest.clone(),
        size: d.size,
        media_type: d.media_type.clone(),
        compression: compression.name().to_string(),
        uncompressed_digest: d
            .annotation(ANNOTATION_UNCOMPRESSED)
            .and_then(|s| s.parse().ok()),
    })
}

/// Sizes in binary units with one decimal, as `du -h` readers expect.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Paths and media types come from an untrusted cache: control characters
/// (a terminal escape sequence, a newline) are shown escaped.
fn printable(text: &str) -> String {
    if text.chars().any(char::is_control) {
        format!("{text:?}")
    } else {
        text.to_string()
    }
}

/// Columns separated by two spaces, padded to the widest cell; `right`
/// says which columns are right-aligned (numbers).
fn table(headers: &[&str], right: &[bool], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            if i > 0 {
                line.push_str("  ");
            }
            if right.get(i).copied().unwrap_or(false) {
                let _ = write!(line, "{cell:>width$}");
            } else {
                let _ = write!(line, "{cell:<width$}");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::image::build::{BuildEntry, BuildParams, BuiltLayer, build_cache_image};
    use crate::image::entries::EntriesBlob;
    use crate::image::manifest::Form;

    fn layer(name: &str, size: u64) -> BuiltLayer {
        BuiltLayer {
            digest: Digest::of(name.as_bytes()),
            size,
            diff_id: Digest::of(format!("diff {name}").as_bytes()),
            uncompressed_size: size * 3,
            toc_digest: None,
        }
    }

    fn entry(path: &str, layers: Vec<BuiltLayer>, files: u64, bytes: u64) -> BuildEntry {
        BuildEntry {
            path: path.to_string(),
            layers,
            files,
            dirs: 1,
            symlinks: 0,
            hardlinks: 0,
            bytes,
            filelist: None,
            kind: crate::image::EntryKind::Dir,
        }
    }

    #[test]
    fn report_on_a_regcache_image_lists_entries_and_counts_each_blob_once() {
        let entries = vec![
            entry(
                "target",
                vec![layer("base", 5000), layer("delta", 700)],
                120,
                3 * 1024 * 1024,
            ),
            entry("node_modules", vec![layer("base", 5000)], 7, 512),
        ];
        let params = BuildParams {
            form: Form::OciIndex,
            compression: Compression::Zstd,
            oci_mediatypes: true,
            mode: "max".into(),
            created_at: "2026-01-02T03:04:05.000000006Z".into(),
        };
        let built = build_cache_image(&entries, &params).unwrap();
        let config = CacheConfig::from_json(&built.config_bytes).unwrap();
        let blob = EntriesBlob::from_json(&built.entries_bytes).unwrap();
        let report = InspectReport::new(&built.manifest, &built.image, &config, Some(&blob));

        assert_eq!(report.form, "oci-index");
        assert_eq!(report.media_type, crate::image::media_types::OCI_INDEX);
        assert_eq!(report.layers.len(), 2);
        assert!(report.layers.iter().all(|l| l.compression == "zstd"));
        assert_eq!((report.records, report.results), (2, 2));
        let expected = built.manifest.bytes.len() as u64
            + built.config_bytes.len() as u64
            + built.entries_bytes.len() as u64
            + 5000
            + 700;
        assert_eq!(report.total_size, expected);
        let paths: Vec<(&str, u64, usize)> = report
            .entries
            .iter()
            .map(|e| (e.path.as_str(), e.files, e.layers))
            .collect();
        assert_eq!(paths, vec![("node_modules", 7, 1), ("target", 120, 2)]);

        let text = report.render_human();
        assert!(text.contains("oci-index"), "{text}");
        assert!(text.contains("layers:     2 distinct"), "{text}");
        let entry_lines: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("ENTRY"))
            .collect();
        assert_eq!(entry_lines.len(), 3, "{text}");
        assert!(
            entry_lines[2].starts_with("target") && entry_lines[2].contains("3.0 MiB"),
            "{text}"
        );
        assert!(entry_lines[1].contains("512 B"), "{text}");
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(142), "142 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(2_098_130), "2.0 MiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("target"), "target");
        assert_eq!(printable("a\x1b[31mb"), "\"a\\u{1b}[31mb\"");
    }

    #[test]
    fn table_aligns_columns() {
        let rows = vec![
            vec!["a".to_string(), "1".to_string()],
            vec!["long".to_string(), "100".to_string()],
        ];
        let text = table(&["NAME", "N"], &[false, true], &rows);
        assert_eq!(text, "NAME    N\na       1\nlong  100\n");
    }
}
