//! The pure half of `copy`: a cache taken apart into its config and blob
//! descriptors, several of them merged into one, a max cache slimmed to
//! what a min export keeps, blob references rewritten after recompression,
//! and the parts put back together as a manifest in any of the three forms.
//!
//! Every transformation keeps the config in the shape BuildKit writes it
//! (see `build.rs`): layers are one per distinct chain of blobs, sorted by
//! blob digest with a base before the same blob on a parent; records are
//! sorted by digest; every index is rewritten along with the order.

use std::collections::{BTreeMap, BTreeSet};

use super::ImageError;
use super::build::{cmp_layer_chains, form_for};
use super::config::{
    CacheConfig, CacheInput, CacheLayer, CacheRecord, CacheResult, ChainedResult, LayerAnnotations,
};
use super::descriptor::Descriptor;
use super::entries::{EntriesBlob, EntryMeta};
use super::manifest::{CacheImage, Form, RawManifest};
use super::media_types::{
    CACHE_CONFIG, DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_LAYER_ZSTD, OCI_LAYER, OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD, REGCACHE_ENTRIES, REGCACHE_FILELIST, layer_compression, layer_media_type,
};
use crate::digest::Digest;

/// A cache taken apart: its config and the descriptors of its blobs, by
/// digest.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheParts {
    pub config: CacheConfig,
    /// Layer descriptors by blob digest, and regcache's entries blob when
    /// the parts come straight from an image. [`merge`] drops entries-blob
    /// descriptors (the merged blob is a new one) and [`assemble`] ignores
    /// them: it encodes `entries` afresh.
    pub blobs: BTreeMap<Digest, Descriptor>,
    pub entries: Option<EntriesBlob>,
    /// The manifest's top-level annotations.
    pub annotations: BTreeMap<String, String>,
}

impl CacheParts {
    /// Takes `image` apart. `config` and `entries` are its config and
    /// entries blob, already fetched and parsed. Refuses an invalid config
    /// and a config layer whose blob the manifest does not list: such a
    /// cache could be neither copied nor imported.
    pub fn from_image(
        image: &CacheImage,
        config: CacheConfig,
        entries: Option<EntriesBlob>,
    ) -> Result<CacheParts, ImageError> {
        config.validate()?;
        let mut blobs = BTreeMap::new();
        for descriptor in &image.blobs {
            blobs
                .entry(descriptor.digest.clone())
                .or_insert_with(|| descriptor.clone());
        }
        check_blobs(&config, &blobs)?;
        Ok(CacheParts {
            config,
            blobs,
            entries,
            annotations: image.annotations.clone(),
        })
    }
}

fn check_blobs(
    config: &CacheConfig,
    blobs: &BTreeMap<Digest, Descriptor>,
) -> Result<(), ImageError> {
    for (i, layer) in config.layers.iter().enumerate() {
        if !blobs.contains_key(&layer.blob) {
            return Err(ImageError::InvalidManifest(format!(
                "cache config layer {i}: blob {} is not in the manifest",
                layer.blob
            )));
        }
    }
    Ok(())
}

/// Merges caches into one, earlier inputs taking precedence:
///
/// - layers: the union, two layers being the same when their blob and
///   their whole parent chain of blobs are; the first input's annotations
///   win;
/// - records: the union by digest; a record in several inputs gets their
///   results, chains and inputs united without duplicates, the first
///   input's results first (so a reader taking a record's first result,
///   like `entry_chain`, gets the first cache's);
/// - descriptors: the union by digest, the first one winning; entries-blob
///   descriptors are dropped, the merged `entries` replaces them;
/// - regcache entries: the union by path, the first cache winning a path;
///   the first blob's mode;
/// - top-level annotations and unknown config fields: the union by key,
///   the first winning.
///
/// Refuses a merged config over BuildKit's import limit, and invalid
/// inputs (a bad index, a layer blob without a descriptor).
pub fn merge(inputs: Vec<CacheParts>) -> Result<CacheParts, ImageError> {
    for parts in &inputs {
        parts.config.validate()?;
        check_blobs(&parts.config, &parts.blobs)?;
    }
    let configs: Vec<&CacheConfig> = inputs.iter().map(|p| &p.config).collect();
    let config = union_configs(&configs)?;
    match config.to_json() {
        Ok(_) => {}
        Err(ImageError::ConfigTooLarge { size, max }) => {
            return Err(ImageError::MergeTooLarge {
                caches: inputs.len(),
                size,
                max,
            });
        }
        Err(other) => return Err(other),
    }

    let mut blobs = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    let mut entries: Option<EntriesBlob> = None;
    for parts in inputs {
        for (digest, descriptor) in parts.blobs {
            if descriptor.media_type != REGCACHE_ENTRIES {
                blobs.entry(digest).or_insert(descriptor);
            }
        }
        for (key, value) in parts.annotations {
            annotations.entry(key).or_insert(value);
        }
        if let Some(blob) = parts.entries {
            entries = Some(match entries {
                None => blob,
                Some(mut merged) => {
                    let known: BTreeSet<String> =
                        merged.entries.iter().map(|e| e.path.clone()).collect();
                    merged.entries.extend(
                        blob.entries
                            .into_iter()
                            .filter(|e| !known.contains(&e.path)),
                    );
                    merged
                }
            });
        }
    }
    if let Some(blob) = &mut entries {
        blob.entries.sort_by(|a, b| a.path.cmp(&b.path));
    }
    tracing::debug!(
        layers = config.layers.len(),
        records = config.records.len(),
        blobs = blobs.len(),
        "merged caches"
    );
    Ok(CacheParts {
        config,
        blobs,
        entries,
        annotations,
    })
}

/// The chain of blobs (base first) of every layer of a valid config.
fn blob_chains(config: &CacheConfig) -> Result<Vec<Vec<Digest>>, ImageError> {
    (0..config.layers.len())
        .map(|l| {
            Ok(config
                .chain(l)?
                .into_iter()
                .map(|i| config.layers[i].blob.clone())
                .collect())
        })
        .collect()
}

/// The canonical layer list of the union of `configs`' layers, and for each
/// config the new index of each of its layers.
fn union_layers(
    configs: &[&CacheConfig],
) -> Result<(Vec<CacheLayer>, Vec<Vec<usize>>), ImageError> {
    let chains = configs
        .iter()
        .map(|c| blob_chains(c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut annotations: BTreeMap<&[Digest], Option<&LayerAnnotations>> = BTreeMap::new();
    for (config, chains) in configs.iter().zip(&chains) {
        for (layer, chain) in config.layers.iter().zip(chains) {
            let known = annotations.entry(chain.as_slice()).or_insert(None);
            if known.is_none() {
                *known = layer.annotations.as_ref();
            }
        }
    }
    let mut ordered: Vec<&[Digest]> = annotations.keys().copied().collect();
    ordered.sort_by(|a, b| cmp_layer_chains(a, b));
    let index: BTreeMap<&[Digest], usize> =
        ordered.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    // Every chain's parent prefix is the chain of its parent layer, which
    // is in the same config, so the lookups below always succeed.
    let layers = ordered
        .iter()
        .map(|chain| {
            let (blob, parents) = chain.split_last().expect("a layer chain is never empty");
            CacheLayer {
                blob: blob.clone(),
                parent: match parents {
                    [] => -1,
                    _ => index.get(parents).map_or(-1, |&i| i as i64),
                },
                annotations: annotations[chain].cloned(),
            }
        })
        .collect();
    let maps = chains
        .iter()
        .map(|chains| chains.iter().map(|c| index[c.as_slice()]).collect())
        .collect();
    Ok((layers, maps))
}

/// One record of the union, its inputs still named by record digest.
#[derive(Default)]
struct UnitedRecord {
    results: Vec<CacheResult>,
    chains: Vec<ChainedResult>,
    inputs: Vec<Vec<(Option<String>, Digest)>>,
}

/// The union of valid configs in canonical form (see [`merge`]).
fn union_configs(configs: &[&CacheConfig]) -> Result<CacheConfig, ImageError> {
    let (layers, layer_maps) = union_layers(configs)?;
    let mut united: BTreeMap<&Digest, UnitedRecord> = BTreeMap::new();
    for (config, map) in configs.iter().zip(&layer_maps) {
        for record in &config.records {
            let into = united.entry(&record.digest).or_default();
            for result in &record.results {
                let layer = map[result.layer];
                if !into.results.iter().any(|r| r.layer == layer) {
                    into.results.push(CacheResult {
                        layer,
                        created_at: result.created_at.clone(),
                    });
                }
            }
            for chain in &record.chains {
                let layers: Vec<usize> = chain.layers.iter().map(|&l| map[l]).collect();
                if !into.chains.iter().any(|c| c.layers == layers) {
                    into.chains.push(ChainedResult {
                        layers,
                        created_at: chain.created_at.clone(),
                    });
                }
            }
            if into.inputs.len() < record.inputs.len() {
                into.inputs.resize_with(record.inputs.len(), Vec::new);
            }
            for (group, inputs) in into.inputs.iter_mut().zip(&record.inputs) {
                for input in inputs {
                    let link = (
                        input.selector.clone(),
                        config.records[input.link].digest.clone(),
                    );
                    if !group.contains(&link) {
                        group.push(link);
                    }
                }
            }
        }
    }
    let index: BTreeMap<&Digest, usize> = united.keys().enumerate().map(|(i, d)| (*d, i)).collect();
    let records = united
        .iter()
        .map(|(digest, record)| CacheRecord {
            results: record.results.clone(),
            chains: record.chains.clone(),
            digest: (*digest).clone(),
            inputs: record
                .inputs
                .iter()
                .map(|group| {
                    let mut group: Vec<CacheInput> = group
                        .iter()
                        .map(|(selector, link)| CacheInput {
                            selector: selector.clone(),
                            link: index[link],
                        })
                        .collect();
                    // As BuildKit's sortConfig: each group by link index.
                    group.sort_by(|a, b| (a.link, &a.selector).cmp(&(b.link, &b.selector)));
                    group
                })
                .collect(),
        })
        .collect();
    let mut extra = BTreeMap::new();
    for config in configs {
        for (key, value) in &config.extra {
            extra.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    let config = CacheConfig {
        layers,
        records,
        extra,
    };
    // Records united across caches can link into a loop no input had.
    config.validate()?;
    Ok(config)
}

/// The layers on the chains of the sink records' results (records no
/// record names as an input): what a `mode=min` export keeps results on.
fn sink_chain_layers(config: &CacheConfig) -> BTreeSet<usize> {
    let chain = |layer: usize| config.chain(layer).unwrap_or_default();
    let linked: BTreeSet<usize> = config
        .records
        .iter()
        .flat_map(|r| r.inputs.iter().flatten().map(|input| input.link))
        .collect();
    let mut on_sink_chains = BTreeSet::new();
    for (_, record) in config
        .records
        .iter()
        .enumerate()
        .filter(|(r, _)| !linked.contains(r))
    {
        for result in &record.results {
            on_sink_chains.extend(chain(result.layer));
        }
        for chained in &record.chains {
            for &layer in &chained.layers {
                on_sink_chains.extend(chain(layer));
            }
        }
    }
    on_sink_chains
}

/// Whether a cache holds results only where a `mode=min` export keeps
/// them, i.e. slimming it to min would drop nothing. A BuildKit cache does
/// not record its mode; this is how `ls` tells one: a `mode=max` cache of a
/// build whose every step is on the final chain reads as min, correctly,
/// since it holds no more than a min one would.
pub fn holds_only_final_results(config: &CacheConfig) -> bool {
    let kept = sink_chain_layers(config);
    config.records.iter().all(|record| {
        record.results.iter().all(|r| kept.contains(&r.layer))
            && record
                .chains
                .iter()
                .all(|c| c.layers.iter().all(|l| kept.contains(l)))
    })
}

/// Slims a cache as BuildKit's `mode=min` exports it: results (and chained
/// results) stay only on records whose result layer lies on the layer chain
/// of a result of a sink record (one no record names as an input); layers
/// nothing refers to any more, and their descriptors, are dropped. Every
/// record stays, as in BuildKit's min export. `parts` must be valid (as
/// [`CacheParts::from_image`] and [`merge`] make them).
pub fn slim_to_min(parts: &CacheParts) -> CacheParts {
    let config = &parts.config;
    let chain = |layer: usize| config.chain(layer).unwrap_or_default();
    let on_sink_chains = sink_chain_layers(config);
    let mut records = config.records.clone();
    for record in &mut records {
        record.results.retain(|r| on_sink_chains.contains(&r.layer));
        record
            .chains
            .retain(|c| c.layers.iter().all(|l| on_sink_chains.contains(l)));
    }
    let mut kept = BTreeSet::new();
    for record in &records {
        for result in &record.results {
            kept.extend(chain(result.layer));
        }
        for chained in &record.chains {
            for &layer in &chained.layers {
                kept.extend(chain(layer));
            }
        }
    }
    // Filtering keeps the canonical order; only indexes change.
    let new_index: BTreeMap<usize, usize> = kept
        .iter()
        .enumerate()
        .map(|(new, &old)| (old, new))
        .collect();
    let layers = kept
        .iter()
        .map(|&old| {
            let mut layer = config.layers[old].clone();
            if let Ok(parent) = usize::try_from(layer.parent) {
                layer.parent = new_index.get(&parent).map_or(-1, |&p| p as i64);
            }
            layer
        })
        .collect::<Vec<_>>();
    for record in &mut records {
        for result in &mut record.results {
            result.layer = new_index[&result.layer];
        }
        for chained in &mut record.chains {
            for layer in &mut chained.layers {
                *layer = new_index[layer];
            }
        }
    }
    let blobs_kept: BTreeSet<&Digest> = layers.iter().map(|l| &l.blob).collect();
    let blobs = parts
        .blobs
        .iter()
        // State lists stay with the entries that name them: without them
        // the next save on top of this copy would be a full one.
        .filter(|(digest, d)| {
            d.media_type == REGCACHE_ENTRIES
                || d.media_type == REGCACHE_FILELIST
                || blobs_kept.contains(digest)
        })
        .map(|(digest, d)| (digest.clone(), d.clone()))
        .collect();
    tracing::debug!(
        layers_before = config.layers.len(),
        layers = layers.len(),
        "slimmed cache to min"
    );
    CacheParts {
        config: CacheConfig {
            layers,
            records,
            extra: config.extra.clone(),
        },
        blobs,
        entries: parts.entries.clone(),
        annotations: parts.annotations.clone(),
    }
}

/// Rewrites blob references after recompression: `replacements` maps an old
/// blob digest to its new descriptor (new digest, size and media type, the
/// annotations already carried over by the caller). Config layers, their
/// optional annotations, the descriptor map and the entries' layer lists
/// follow; the layers are then re-sorted by their new digests.
pub fn replace_blobs(parts: &mut CacheParts, replacements: &BTreeMap<Digest, Descriptor>) {
    for layer in &mut parts.config.layers {
        if let Some(new) = replacements.get(&layer.blob) {
            layer.blob = new.digest.clone();
            if let Some(annotations) = &mut layer.annotations {
                annotations.media_type = new.media_type.clone();
                annotations.size = i64::try_from(new.size).unwrap_or(i64::MAX);
            }
        }
    }
    for (old, new) in replacements {
        if parts.blobs.remove(old).is_some() {
            parts.blobs.insert(new.digest.clone(), new.clone());
        }
    }
    if let Some(entries) = &mut parts.entries {
        for EntryMeta { layers, .. } in &mut entries.entries {
            for digest in layers {
                if let Some(new) = replacements.get(digest) {
                    *digest = new.digest.clone();
                }
            }
        }
    }
    // Re-sort the layers; records keep their order (their digests did not
    // change). A config that was valid cannot fail here; should it, the
    // references are still right, only the order is not canonical.
    match union_layers(&[&parts.config]) {
        Ok((layers, maps)) => {
            let map = &maps[0];
            for record in &mut parts.config.records {
                for result in &mut record.results {
                    result.layer = map[result.layer];
                }
                for chained in &mut record.chains {
                    for layer in &mut chained.layers {
                        *layer = map[*layer];
                    }
                }
            }
            parts.config.layers = layers;
        }
        Err(e) => tracing::warn!("cache config not re-sorted after replacing blobs: {e}"),
    }
}

/// A cache put back together: the blobs to upload besides the layers, and
/// the manifest (pushed last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembled {
    pub config_bytes: Vec<u8>,
    pub config: Descriptor,
    pub entries_bytes: Option<Vec<u8>>,
    pub entries: Option<Descriptor>,
    pub manifest: RawManifest,
}

/// Encodes `parts` as a cache image in `form`: the config as BuildKit
/// encodes it, then one layer descriptor per config layer in config order
/// (duplicates kept, as BuildKit writes them) with its media type moved to
/// the OCI or Docker family keeping its compression, then regcache's
/// entries blob when there is one. Without OCI media types the form is a
/// Docker manifest list; an image manifest needs OCI media types.
pub fn assemble(
    parts: &CacheParts,
    form: Form,
    oci_mediatypes: bool,
) -> Result<Assembled, ImageError> {
    let form = form_for(form, oci_mediatypes)?;
    let config_bytes = parts.config.to_json()?;
    let config = Descriptor::for_bytes(CACHE_CONFIG, &config_bytes);
    let mut blobs = Vec::with_capacity(parts.config.layers.len() + 1);
    for (i, layer) in parts.config.layers.iter().enumerate() {
        let descriptor = parts.blobs.get(&layer.blob).ok_or_else(|| {
            ImageError::InvalidManifest(format!(
                "cache config layer {i}: blob {} has no descriptor",
                layer.blob
            ))
        })?;
        let mut descriptor = descriptor.clone();
        descriptor.media_type = convert_layer_media_type(&descriptor.media_type, oci_mediatypes);
        blobs.push(descriptor);
    }
    let (entries_bytes, entries) = match &parts.entries {
        Some(entries) => {
            let bytes = entries.to_json()?;
            let descriptor = Descriptor::for_bytes(REGCACHE_ENTRIES, &bytes);
            blobs.push(descriptor.clone());
            (Some(bytes), Some(descriptor))
        }
        None => (None, None),
    };
    let image = CacheImage {
        form,
        config: config.clone(),
        blobs,
        annotations: parts.annotations.clone(),
    };
    let manifest = image.encode()?;
    tracing::debug!(
        manifest = %manifest.digest,
        form = form.name(),
        layers = parts.config.layers.len(),
        config_bytes = config_bytes.len(),
        "assembled cache image"
    );
    Ok(Assembled {
        config_bytes,
        config,
        entries_bytes,
        entries,
        manifest,
    })
}

/// The media type of a layer in the OCI (`oci`) or Docker family, keeping
/// its compression. Types outside the six BuildKit writes (nondistributable,
/// foreign) are kept as they are: they have no counterpart.
fn convert_layer_media_type(media_type: &str, oci: bool) -> String {
    match media_type {
        OCI_LAYER | OCI_LAYER_GZIP | OCI_LAYER_ZSTD | DOCKER_LAYER | DOCKER_LAYER_GZIP
        | DOCKER_LAYER_ZSTD => match layer_compression(media_type) {
            Some(c) => layer_media_type(c, oci).to_string(),
            None => media_type.to_string(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_convert_keeping_compression() {
        for (oci, docker) in [
            (OCI_LAYER_GZIP, DOCKER_LAYER_GZIP),
            (OCI_LAYER_ZSTD, DOCKER_LAYER_ZSTD),
            (OCI_LAYER, DOCKER_LAYER),
        ] {
            assert_eq!(convert_layer_media_type(oci, false), docker);
            assert_eq!(convert_layer_media_type(docker, true), oci);
            assert_eq!(convert_layer_media_type(oci, true), oci);
            assert_eq!(convert_layer_media_type(docker, false), docker);
        }
        let foreign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
        assert_eq!(convert_layer_media_type(foreign, true), foreign);
    }
}
