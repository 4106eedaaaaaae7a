//! The exporter's pure half: from the layers `save` produced for each entry,
//! build the cache config, the entries blob and the manifest, shaped as
//! BuildKit shapes its own exports so that BuildKit imports them.

use std::collections::{BTreeMap, BTreeSet};

use super::ImageError;
use super::config::{CacheConfig, CacheLayer, CacheRecord, CacheResult};
use super::descriptor::Descriptor;
use super::entries::{EntriesBlob, EntryKind, EntryMeta, entry_record_digest};
use super::manifest::{CacheImage, Form, RawManifest};
use super::media_types::{
    ANNOTATION_CREATED_AT, ANNOTATION_ESTARGZ_UNCOMPRESSED_SIZE, ANNOTATION_REGCACHE_MODE,
    ANNOTATION_REGCACHE_VERSION, ANNOTATION_STARGZ_TOC, ANNOTATION_UNCOMPRESSED,
    ANNOTATION_UNCOMPRESSED_SIZE, CACHE_CONFIG, REGCACHE_ENTRIES, REGCACHE_FILELIST,
    layer_media_type,
};
use crate::compression::Compression;
use crate::digest::Digest;

/// A compressed layer blob as `save` wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltLayer {
    pub digest: Digest,
    pub size: u64,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    pub uncompressed_size: u64,
    /// eStargz layers only: the digest of the TOC JSON.
    pub toc_digest: Option<Digest>,
}

/// One saved PATH and its layer chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildEntry {
    pub path: String,
    /// Base first.
    pub layers: Vec<BuiltLayer>,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub bytes: u64,
    pub filelist: Option<BuiltFileList>,
    pub kind: EntryKind,
}

/// An entry's state list blob, and the shape of the chain it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltFileList {
    pub digest: Digest,
    pub size: u64,
    /// How many of the top layers are deltas (`mode=max`).
    pub deltas: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildParams {
    /// With `oci_mediatypes == false` the form is always a Docker manifest
    /// list (an OCI index request is mapped to it); an image manifest with
    /// Docker media types is refused, as BuildKit refuses it.
    pub form: Form,
    pub compression: Compression,
    pub oci_mediatypes: bool,
    /// "min" or "max".
    pub mode: String,
    /// RFC 3339 with nanoseconds, UTC, like BuildKit's `createdAt`.
    pub created_at: String,
}

/// Everything `save` must upload besides the layers: the config and entries
/// blobs with their descriptors, and the manifest (pushed last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    pub config_bytes: Vec<u8>,
    pub config: Descriptor,
    pub entries_bytes: Vec<u8>,
    pub entries: Descriptor,
    pub image: CacheImage,
    pub manifest: RawManifest,
}

/// Builds the cache image for `entries`. The result depends only on the set
/// of entries and the parameters, not on the order entries are given in, so
/// saving an unchanged tree gives the same manifest digest.
///
/// As BuildKit does: one config layer per distinct chain prefix (a blob and
/// its ancestors), sorted by blob digest with a base layer before the same
/// blob on top of a parent, `parent` -1 for a base; one record per entry
/// whose single result is the tip of its chain; records sorted by digest;
/// one manifest layer descriptor per config layer, in the same order,
/// duplicates kept.
pub fn build_cache_image(
    entries: &[BuildEntry],
    params: &BuildParams,
) -> Result<BuiltImage, ImageError> {
    let form = effective_form(params)?;
    let mut sorted: Vec<&BuildEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let blobs = check_entries(&sorted)?;

    let chains = Chains::new(&sorted);
    let config = CacheConfig {
        layers: chains.config_layers(),
        records: records(&sorted, &chains, &params.created_at)?,
        ..CacheConfig::default()
    };
    let config_bytes = config.to_json()?;
    let config_descriptor = Descriptor::for_bytes(CACHE_CONFIG, &config_bytes);

    let entries_blob = EntriesBlob {
        version: 1,
        mode: params.mode.clone(),
        entries: sorted.iter().map(|e| entry_meta(e)).collect(),
    };
    let entries_bytes = entries_blob.to_json()?;
    let entries_descriptor = Descriptor::for_bytes(REGCACHE_ENTRIES, &entries_bytes);

    let media_type = layer_media_type(params.compression, params.oci_mediatypes);
    let mut descriptors = Vec::with_capacity(config.layers.len() + 1);
    for layer in &config.layers {
        let built = blobs
            .get(&layer.blob)
            .ok_or_else(|| ImageError::Build(format!("layer {} is in no entry", layer.blob)))?;
        let mut descriptor = Descriptor::new(media_type, built.digest.clone(), built.size)
            .with_annotation(ANNOTATION_CREATED_AT, params.created_at.as_str())
            .with_annotation(ANNOTATION_UNCOMPRESSED, built.diff_id.to_string())
            .with_annotation(
                ANNOTATION_UNCOMPRESSED_SIZE,
                built.uncompressed_size.to_string(),
            );
        // What BuildKit adds to an eStargz layer, and how readers tell it
        // from plain gzip.
        if let Some(toc) = &built.toc_digest {
            descriptor = descriptor
                .with_annotation(ANNOTATION_STARGZ_TOC, toc.to_string())
                .with_annotation(
                    ANNOTATION_ESTARGZ_UNCOMPRESSED_SIZE,
                    built.uncompressed_size.to_string(),
                );
        }
        descriptors.push(descriptor);
    }
    descriptors.push(entries_descriptor.clone());
    // State lists ride beside the entries blob, sorted and once each (two
    // entries with the same tree share one), so the manifest depends on
    // the content alone.
    let lists: BTreeMap<&Digest, u64> = sorted
        .iter()
        .filter_map(|e| e.filelist.as_ref().map(|l| (&l.digest, l.size)))
        .collect();
    for (digest, size) in lists {
        descriptors.push(Descriptor::new(REGCACHE_FILELIST, digest.clone(), size));
    }

    let image = CacheImage {
        form,
        config: config_descriptor.clone(),
        blobs: descriptors,
        annotations: BTreeMap::from([
            (ANNOTATION_REGCACHE_VERSION.to_string(), "1".to_string()),
            (ANNOTATION_REGCACHE_MODE.to_string(), params.mode.clone()),
        ]),
    };
    let manifest = image.encode()?;
    tracing::debug!(
        manifest = %manifest.digest,
        form = form.name(),
        entries = sorted.len(),
        layers = config.layers.len(),
        config_bytes = config_bytes.len(),
        "built cache image"
    );
    Ok(BuiltImage {
        config_bytes,
        config: config_descriptor,
        entries_bytes,
        entries: entries_descriptor,
        image,
        manifest,
    })
}

fn effective_form(params: &BuildParams) -> Result<Form, ImageError> {
    if params.mode != "min" && params.mode != "max" {
        return Err(ImageError::Build(format!(
            "mode {:?} is neither \"min\" nor \"max\"",
            params.mode
        )));
    }
    if params.created_at.is_empty() {
        return Err(ImageError::Build("created_at is empty".into()));
    }
    form_for(params.form, params.oci_mediatypes)
}

/// The form written for a requested form and media type family: without OCI
/// media types always a Docker manifest list (an OCI index request is mapped
/// to it); an image manifest with Docker media types is refused, as BuildKit
/// refuses it, and so is a Docker list with OCI media types.
pub(super) fn form_for(form: Form, oci_mediatypes: bool) -> Result<Form, ImageError> {
    match (oci_mediatypes, form) {
        (true, Form::DockerManifestList) => Err(ImageError::Build(
            "a Docker manifest list needs oci-mediatypes=false".into(),
        )),
        (false, Form::ImageManifest) => Err(ImageError::Build(
            "image-manifest=true needs oci-mediatypes=true".into(),
        )),
        (true, form) => Ok(form),
        (false, _) => Ok(Form::DockerManifestList),
    }
}

/// The order of config layers, each given as its chain of blobs (base
/// first): by blob digest, then by ancestors nearest first, so a base layer
/// sorts before the same blob on top of a parent. BuildKit sorts by blob,
/// then by parent index with -1 first; its parent indexes depend on its
/// traversal order, and this gives the same "base first" rule with an order
/// that depends only on content.
pub(super) fn cmp_layer_chains<T: Ord>(a: &[T], b: &[T]) -> std::cmp::Ordering {
    a.iter().rev().cmp(b.iter().rev())
}

/// Refuses empty or duplicate paths and entries without layers, and a blob
/// described differently by two entries. Returns each blob's description.
fn check_entries<'a>(
    entries: &[&'a BuildEntry],
) -> Result<BTreeMap<&'a Digest, &'a BuiltLayer>, ImageError> {
    let mut paths = BTreeSet::new();
    let mut blobs: BTreeMap<&Digest, &BuiltLayer> = BTreeMap::new();
    for entry in entries {
        if entry.path.is_empty() {
            return Err(ImageError::Build("an entry has an empty path".into()));
        }
        if !paths.insert(entry.path.as_str()) {
            return Err(ImageError::Build(format!(
                "path {:?} is given twice",
                entry.path
            )));
        }
        if entry.layers.is_empty() {
            return Err(ImageError::Build(format!(
                "entry {:?} has no layers",
                entry.path
            )));
        }
        for layer in &entry.layers {
            let known = blobs.entry(&layer.digest).or_insert(layer);
            if *known != layer {
                return Err(ImageError::Build(format!(
                    "entry {:?}: blob {} is described with a different size or diff_id by another entry",
                    entry.path, layer.digest
                )));
            }
        }
    }
    Ok(blobs)
}

/// The distinct chain prefixes of all entries, in config order.
struct Chains<'a> {
    /// Each prefix (base first), sorted as BuildKit sorts config layers.
    ordered: Vec<Vec<&'a Digest>>,
    index: BTreeMap<Vec<&'a Digest>, usize>,
}

impl<'a> Chains<'a> {
    fn new(entries: &[&'a BuildEntry]) -> Chains<'a> {
        let mut prefixes = BTreeSet::new();
        for entry in entries {
            let digests: Vec<&Digest> = entry.layers.iter().map(|l| &l.digest).collect();
            for end in 1..=digests.len() {
                prefixes.insert(digests[..end].to_vec());
            }
        }
        let mut ordered: Vec<Vec<&Digest>> = prefixes.into_iter().collect();
        ordered.sort_by(|a, b| cmp_layer_chains(a, b));
        let index = ordered
            .iter()
            .enumerate()
            .map(|(i, p)| (p.clone(), i))
            .collect();
        Chains { ordered, index }
    }

    fn config_layers(&self) -> Vec<CacheLayer> {
        // Prefixes are never empty, and every prefix's parent prefix was
        // inserted along with it, so nothing is skipped or left parentless.
        self.ordered
            .iter()
            .filter_map(|prefix| {
                let (blob, parents) = prefix.split_last()?;
                let parent = match parents {
                    [] => -1,
                    _ => self.index.get(parents).map_or(-1, |&i| i as i64),
                };
                Some(CacheLayer {
                    blob: (*blob).clone(),
                    parent,
                    annotations: None,
                })
            })
            .collect()
    }

    fn tip(&self, entry: &BuildEntry) -> Option<usize> {
        let digests: Vec<&Digest> = entry.layers.iter().map(|l| &l.digest).collect();
        self.index.get(&digests).copied()
    }
}

fn records(
    entries: &[&BuildEntry],
    chains: &Chains,
    created_at: &str,
) -> Result<Vec<CacheRecord>, ImageError> {
    let mut records = entries
        .iter()
        .map(|entry| {
            let tip = chains.tip(entry).ok_or_else(|| {
                ImageError::Build(format!("entry {:?}: its chain was not indexed", entry.path))
            })?;
            Ok(CacheRecord {
                results: vec![CacheResult {
                    layer: tip,
                    created_at: Some(created_at.to_string()),
                }],
                chains: Vec::new(),
                digest: entry_record_digest(&entry.path),
                inputs: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>, ImageError>>()?;
    records.sort_by(|a, b| a.digest.cmp(&b.digest));
    Ok(records)
}

fn entry_meta(entry: &BuildEntry) -> EntryMeta {
    EntryMeta {
        path: entry.path.clone(),
        record: entry_record_digest(&entry.path),
        layers: entry.layers.iter().map(|l| l.digest.clone()).collect(),
        files: entry.files,
        dirs: entry.dirs,
        symlinks: entry.symlinks,
        hardlinks: entry.hardlinks,
        bytes: entry.bytes,
        filelist: entry.filelist.as_ref().map(|l| l.digest.clone()),
        deltas: entry.filelist.as_ref().map_or(0, |l| l.deltas),
        kind: entry.kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::config::CacheConfig;
    use crate::image::entries::entry_chain;
    use crate::image::media_types::{DOCKER_LAYER_ZSTD, OCI_LAYER_GZIP};

    fn layer(name: &str) -> BuiltLayer {
        BuiltLayer {
            digest: Digest::of(name.as_bytes()),
            size: name.len() as u64 * 100,
            diff_id: Digest::of(format!("diff {name}").as_bytes()),
            uncompressed_size: name.len() as u64 * 1000,
            toc_digest: None,
        }
    }

    fn entry(path: &str, layers: &[&str]) -> BuildEntry {
        BuildEntry {
            path: path.to_string(),
            layers: layers.iter().map(|l| layer(l)).collect(),
            files: 10,
            dirs: 2,
            symlinks: 1,
            hardlinks: 0,
            bytes: 1234,
            filelist: None,
            kind: EntryKind::Dir,
        }
    }

    fn params() -> BuildParams {
        BuildParams {
            form: Form::ImageManifest,
            compression: Compression::Gzip,
            oci_mediatypes: true,
            mode: "max".into(),
            created_at: "2026-11-23T03:19:11.064733251Z".into(),
        }
    }

    /// Two entries share a base; one shares a delta blob on a different parent.
    fn sample() -> Vec<BuildEntry> {
        vec![
            entry("target", &["base", "delta1", "shared"]),
            entry("node_modules", &["base", "shared"]),
            entry("/root/.cargo/registry", &["registry"]),
        ]
    }

    #[test]
    fn built_image_decodes_and_finds_every_chain() {
        let built = build_cache_image(&sample(), &params()).unwrap();
        let decoded = CacheImage::decode(&built.manifest).unwrap();
        assert_eq!(decoded, built.image);
        let config = CacheConfig::from_json(&built.config_bytes).unwrap();
        assert_eq!(
            decoded.config,
            Descriptor::for_bytes(CACHE_CONFIG, &built.config_bytes)
        );
        assert_eq!(decoded.entries_blob(), Some(&built.entries));
        for e in sample() {
            let chain = entry_chain(&decoded, &config, &e.path).unwrap();
            let got: Vec<&Digest> = chain.iter().map(|d| &d.digest).collect();
            let want: Vec<&Digest> = e.layers.iter().map(|l| &l.digest).collect();
            assert_eq!(got, want, "{}", e.path);
        }
        let entries = EntriesBlob::from_json(&built.entries_bytes).unwrap();
        assert_eq!(entries.mode, "max");
        assert_eq!(entries.find("target").map(|m| m.layers.len()), Some(3));
    }

    #[test]
    fn config_layers_follow_buildkit_rules() {
        let built = build_cache_image(&sample(), &params()).unwrap();
        let config = CacheConfig::from_json(&built.config_bytes).unwrap();
        // base, delta1, registry, and "shared" twice (on delta1 and on base),
        // target's full chain and node_modules' share the base prefix.
        assert_eq!(config.layers.len(), 5);
        let blobs: Vec<&Digest> = config.layers.iter().map(|l| &l.blob).collect();
        let mut sorted = blobs.clone();
        sorted.sort();
        assert_eq!(blobs, sorted, "layers sorted by blob digest");
        for l in &config.layers {
            let is_base = l.blob == layer("base").digest || l.blob == layer("registry").digest;
            assert_eq!(l.parent == -1, is_base, "{:?}", l);
        }
        assert_eq!(config.records.len(), 3);
        assert!(config.records.windows(2).all(|w| w[0].digest < w[1].digest));
        assert!(
            config
                .records
                .iter()
                .all(|r| r.inputs.is_empty() && r.results.len() == 1)
        );
        // One manifest descriptor per config layer, same order, plus entries.
        let layers: Vec<&Descriptor> = built.image.layers().collect();
        assert_eq!(layers.len(), 5);
        for (d, l) in layers.iter().zip(&config.layers) {
            assert_eq!(d.digest, l.blob);
            assert_eq!(d.media_type, OCI_LAYER_GZIP);
            assert!(d.annotation(ANNOTATION_UNCOMPRESSED).is_some());
            assert_eq!(
                d.annotation(ANNOTATION_CREATED_AT),
                Some(params().created_at.as_str())
            );
        }
        let shared = layer("shared");
        let d = built.image.find_blob(&shared.digest).unwrap();
        assert_eq!(
            d.annotation(ANNOTATION_UNCOMPRESSED),
            Some(shared.diff_id.to_string().as_str())
        );
        assert_eq!(d.annotation(ANNOTATION_UNCOMPRESSED_SIZE), Some("6000"));
        assert_eq!(
            built
                .image
                .annotations
                .get(ANNOTATION_REGCACHE_MODE)
                .map(String::as_str),
            Some("max")
        );
        assert_eq!(built.image.blobs.last(), Some(&built.entries));
    }

    #[test]
    fn same_blob_as_base_sorts_before_same_blob_on_a_parent() {
        let entries = vec![entry("a", &["x", "y"]), entry("b", &["y"])];
        let built = build_cache_image(&entries, &params()).unwrap();
        let config = CacheConfig::from_json(&built.config_bytes).unwrap();
        let y = layer("y").digest;
        let ys: Vec<i64> = config
            .layers
            .iter()
            .filter(|l| l.blob == y)
            .map(|l| l.parent)
            .collect();
        assert_eq!(ys.len(), 2);
        assert_eq!(ys[0], -1);
        assert!(ys[1] >= 0);
    }

    #[test]
    fn deterministic_and_independent_of_entry_order() {
        let first = build_cache_image(&sample(), &params()).unwrap();
        let again = build_cache_image(&sample(), &params()).unwrap();
        assert_eq!(first, again);
        let mut reversed = sample();
        reversed.reverse();
        let other = build_cache_image(&reversed, &params()).unwrap();
        assert_eq!(first.manifest.digest, other.manifest.digest);
    }

    #[test]
    fn docker_media_types_give_a_manifest_list() {
        let p = BuildParams {
            form: Form::OciIndex,
            compression: Compression::Zstd,
            oci_mediatypes: false,
            ..params()
        };
        let built = build_cache_image(&sample(), &p).unwrap();
        assert_eq!(built.image.form, Form::DockerManifestList);
        assert!(
            built
                .image
                .layers()
                .all(|d| d.media_type == DOCKER_LAYER_ZSTD)
        );
        let decoded = CacheImage::decode(&built.manifest).unwrap();
        assert_eq!(decoded.form, Form::DockerManifestList);
        let bad = BuildParams {
            form: Form::ImageManifest,
            oci_mediatypes: false,
            ..params()
        };
        assert!(build_cache_image(&sample(), &bad).is_err());
    }

    #[test]
    fn bad_input_is_refused() {
        let dup = vec![entry("a", &["x"]), entry("a", &["y"])];
        assert!(
            build_cache_image(&dup, &params())
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        assert!(build_cache_image(&[entry("", &["x"])], &params()).is_err());
        assert!(build_cache_image(&[entry("a", &[])], &params()).is_err());
        let mut conflicting = entry("b", &["x"]);
        conflicting.layers[0].size += 1;
        assert!(build_cache_image(&[entry("a", &["x"]), conflicting], &params()).is_err());
        let bad_mode = BuildParams {
            mode: "maximum".into(),
            ..params()
        };
        assert!(build_cache_image(&sample(), &bad_mode).is_err());
    }

    #[test]
    fn entry_chain_reports_what_is_missing() {
        let built = build_cache_image(&sample(), &params()).unwrap();
        let config = CacheConfig::from_json(&built.config_bytes).unwrap();
        assert!(matches!(
            entry_chain(&built.image, &config, "nope"),
            Err(ImageError::EntryNotFound { .. })
        ));
        let mut no_result = config.clone();
        for r in &mut no_result.records {
            r.results.clear();
        }
        assert!(matches!(
            entry_chain(&built.image, &no_result, "target"),
            Err(ImageError::EntryWithoutResult { .. })
        ));
        let mut missing = built.image.clone();
        missing.blobs.retain(|d| d.digest != layer("delta1").digest);
        match entry_chain(&missing, &config, "target") {
            Err(ImageError::MissingBlob { digest, .. }) => {
                assert_eq!(digest, layer("delta1").digest)
            }
            other => panic!("expected MissingBlob, got {other:?}"),
        }
    }
}
