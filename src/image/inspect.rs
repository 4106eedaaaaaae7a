//! What `regcache inspect` reports about a cache image: the data behind
//! `--json` (docs/inspect.md) and the table `ops::inspect` renders.

use std::collections::BTreeSet;
use std::time::SystemTime;

use serde::Serialize;

use super::config::{CacheConfig, CacheLayer};
use super::descriptor::Descriptor;
use super::entries::{EntriesBlob, EntryKind};
use super::manifest::{CacheImage, RawManifest};
use super::media_types::{ANNOTATION_STARGZ_TOC, ANNOTATION_UNCOMPRESSED, layer_compression};
use super::summary::cache_created;
use crate::compression::Compression;
use crate::digest::Digest;

/// The version of the `--json` object (docs/inspect.md); raised when a key
/// changes meaning.
pub const INSPECT_JSON_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InspectReport {
    pub version: u32,
    /// "image-manifest", "oci-index" or "docker-manifest-list".
    pub form: String,
    pub manifest_digest: Digest,
    pub media_type: String,
    /// The cache's own creation time as it wrote it (as `ls` reads it).
    pub created_at: Option<String>,
    /// Seconds from `created_at` to when the report was made.
    pub age_seconds: Option<u64>,
    /// Every layer of the cache config, in its order: one blob can be the
    /// layer of several chains (BuildKit's max export lists one twice).
    pub layers: Vec<LayerInfo>,
    /// Distinct layer blobs in the manifest.
    pub blobs: usize,
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
    /// For the human form's date: `created_at` as a time.
    #[serde(skip)]
    pub created: Option<SystemTime>,
}

/// One layer of the cache config: a blob on top of its parent layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerInfo {
    /// The index of the parent layer in `layers`; `None` for a base layer.
    pub parent: Option<usize>,
    /// The layer's blob.
    pub digest: Digest,
    pub size: u64,
    /// Empty when the manifest does not list the blob (a broken cache).
    pub media_type: String,
    /// "gzip", "estargz", "zstd", "uncompressed", or "unknown" (a media
    /// type that is not a layer's, or no descriptor).
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
    /// Ages are measured up to `now`.
    pub fn new(
        raw: &RawManifest,
        image: &CacheImage,
        config: &CacheConfig,
        entries: Option<&EntriesBlob>,
        now: SystemTime,
    ) -> InspectReport {
        let layers = config
            .layers
            .iter()
            .map(|layer| layer_info(layer, image.find_blob(&layer.blob)))
            .collect();
        let blobs = image
            .layers()
            .map(|d| &d.digest)
            .collect::<BTreeSet<_>>()
            .len();

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
        let created = cache_created(config, image);
        InspectReport {
            version: INSPECT_JSON_VERSION,
            form: image.form.name().to_string(),
            manifest_digest: raw.digest.clone(),
            media_type,
            age_seconds: created
                .as_ref()
                .map(|(t, _)| now.duration_since(*t).unwrap_or_default().as_secs()),
            created_at: created.as_ref().map(|(_, text)| text.clone()),
            created: created.map(|(t, _)| t),
            layers,
            blobs,
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
}

fn layer_info(layer: &CacheLayer, desc: Option<&Descriptor>) -> LayerInfo {
    let compression = desc
        .and_then(|d| {
            Some(match layer_compression(&d.media_type)? {
                // estargz shares the gzip media type; only its TOC
                // annotation tells.
                Compression::Gzip if d.annotations.contains_key(ANNOTATION_STARGZ_TOC) => {
                    Compression::Estargz
                }
                other => other,
            })
        })
        .map_or("unknown", Compression::name);
    LayerInfo {
        parent: usize::try_from(layer.parent).ok(),
        digest: layer.blob.clone(),
        size: desc.map_or(0, |d| d.size),
        media_type: desc.map(|d| d.media_type.clone()).unwrap_or_default(),
        compression: compression.to_string(),
        uncompressed_digest: desc
            .and_then(|d| d.annotation(ANNOTATION_UNCOMPRESSED))
            .and_then(|s| s.parse().ok()),
    }
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
        let created = crate::image::parse_rfc3339("2026-01-02T03:04:05.000000006Z").unwrap();
        let now = created + std::time::Duration::from_secs(60);
        let report = InspectReport::new(&built.manifest, &built.image, &config, Some(&blob), now);

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

        // One layer per chain, in the config's (digest) order: the shared
        // base, and the delta on it.
        let chains: Vec<(Option<u64>, u64)> = report
            .layers
            .iter()
            .map(|l| (l.parent.map(|p| report.layers[p].size), l.size))
            .collect();
        let mut sorted = chains.clone();
        sorted.sort();
        assert_eq!(sorted, vec![(None, 5000), (Some(5000), 700)]);
        assert_eq!(
            report.layers.iter().map(|l| &l.digest).collect::<Vec<_>>(),
            config.layers.iter().map(|l| &l.blob).collect::<Vec<_>>()
        );
        assert_eq!(report.blobs, 2);
        assert_eq!(report.version, INSPECT_JSON_VERSION);
        assert_eq!(
            report.created_at.as_deref(),
            Some("2026-01-02T03:04:05.000000006Z")
        );
        assert_eq!(report.age_seconds, Some(60));
    }
}
