//! BuildKit's cache config v0 (`application/vnd.buildkit.cacheconfig.v0`),
//! the blob that gives a cache image its meaning: `layers` is a forest of
//! blobs linked to their parent, `records` are cache keys whose results point
//! at a layer (the tip of a chain) and whose inputs link to other records.
//!
//! The structs mirror BuildKit's `cache/remotecache/v1/spec.go`: fields in
//! the Go declaration order and `omitempty` where Go has it, so that
//! re-encoding a config BuildKit wrote gives back the same bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::ImageError;
use super::gojson::{self, null_as_default};
use crate::digest::Digest;

/// BuildKit refuses to read a cache config (or manifest) bigger than this on
/// import, so regcache refuses to write one.
pub const MAX_CONFIG_SIZE: usize = 1 << 20;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheConfig {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub layers: Vec<CacheLayer>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub records: Vec<CacheRecord>,
    /// Top-level fields this version does not know, kept so that a copy
    /// does not silently drop what a newer BuildKit added.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheLayer {
    pub blob: Digest,
    /// Index of the parent layer; -1 for a base layer. Go omits 0, so a
    /// missing `parent` means 0, not "no parent".
    #[serde(default, skip_serializing_if = "is_zero")]
    pub parent: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<LayerAnnotations>,
}

/// BuildKit's optional per-layer annotations (written only by exporters that
/// have no manifest to carry them, such as the gha and s3 backends).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerAnnotations {
    #[serde(
        rename = "mediaType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub media_type: String,
    #[serde(rename = "diffID", default, skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<Digest>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: i64,
    #[serde(rename = "createdAt", default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub additional: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    #[serde(
        rename = "layers",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub results: Vec<CacheResult>,
    #[serde(
        rename = "chains",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub chains: Vec<ChainedResult>,
    pub digest: Digest,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub inputs: Vec<Vec<CacheInput>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheResult {
    pub layer: usize,
    /// Kept as the exact text BuildKit wrote (RFC 3339 with nanoseconds):
    /// re-formatting a time could change the bytes.
    #[serde(rename = "createdAt", default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainedResult {
    #[serde(default, deserialize_with = "null_as_default")]
    pub layers: Vec<usize>,
    #[serde(rename = "createdAt", default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheInput {
    /// Go omits an empty selector, so `""` is read as none.
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub selector: Option<String>,
    pub link: usize,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

fn empty_as_none<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value: Option<String> = Option::deserialize(deserializer)?;
    Ok(value.filter(|s| !s.is_empty()))
}

impl CacheConfig {
    /// Parses and validates a config. Refuses what BuildKit would refuse on
    /// import (too big, an index out of range, a loop) so that a broken cache
    /// is reported here rather than silently missing in BuildKit.
    pub fn from_json(bytes: &[u8]) -> Result<CacheConfig, ImageError> {
        if bytes.len() > MAX_CONFIG_SIZE {
            return Err(ImageError::ConfigTooLarge {
                size: bytes.len(),
                max: MAX_CONFIG_SIZE,
            });
        }
        let config: CacheConfig =
            serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
                what: "cache config",
                source,
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Encodes as BuildKit does. Refuses an invalid config, and one BuildKit
    /// could not import because it is over [`MAX_CONFIG_SIZE`].
    pub fn to_json(&self) -> Result<Vec<u8>, ImageError> {
        self.validate()?;
        let bytes = gojson::to_vec(self).map_err(|source| ImageError::Json {
            what: "encoding cache config",
            source,
        })?;
        if bytes.len() > MAX_CONFIG_SIZE {
            return Err(ImageError::ConfigTooLarge {
                size: bytes.len(),
                max: MAX_CONFIG_SIZE,
            });
        }
        Ok(bytes)
    }

    /// Checks every index: parents in range or -1 and free of cycles, result
    /// and chain layers in range, input links in range, no empty input group
    /// and no loop through input links.
    pub fn validate(&self) -> Result<(), ImageError> {
        self.validate_layers()?;
        self.validate_records()
    }

    /// The layer indexes of the chain ending at `layer`: base first, `layer`
    /// last, following `parent`.
    pub fn chain(&self, layer: usize) -> Result<Vec<usize>, ImageError> {
        let mut chain = Vec::new();
        let mut current = Some(layer);
        while let Some(index) = current {
            // parent_of also checks that `index` is in range.
            let parent = self.parent_of(index)?;
            // A chain longer than the layer list must have visited a layer
            // twice: refuse it rather than walk forever.
            if chain.len() >= self.layers.len() {
                return Err(ImageError::InvalidConfig(format!(
                    "layer {layer}: the parent chain loops"
                )));
            }
            chain.push(index);
            current = parent;
        }
        chain.reverse();
        Ok(chain)
    }

    /// The parent of layer `index`, `None` for a base layer.
    fn parent_of(&self, index: usize) -> Result<Option<usize>, ImageError> {
        let count = self.layers.len();
        let layer = self.layers.get(index).ok_or_else(|| {
            ImageError::InvalidConfig(format!(
                "layer index {index} is out of range ({count} layers)"
            ))
        })?;
        match layer.parent {
            -1 => Ok(None),
            p => usize::try_from(p)
                .ok()
                .filter(|&p| p < count)
                .map(Some)
                .ok_or_else(|| {
                    ImageError::InvalidConfig(format!(
                        "layer {index}: parent {p} is neither -1 nor a layer index (0..{count})"
                    ))
                }),
        }
    }

    fn validate_layers(&self) -> Result<(), ImageError> {
        // Each layer is walked towards its base once: a walk stops at a
        // layer already known to reach a base, so the check is linear.
        #[derive(Clone, Copy, PartialEq)]
        enum State {
            Unseen,
            OnPath,
            Done,
        }
        let mut state = vec![State::Unseen; self.layers.len()];
        let mut path = Vec::new();
        for start in 0..self.layers.len() {
            let mut current = Some(start);
            while let Some(index) = current {
                match state[index] {
                    State::Done => break,
                    State::OnPath => {
                        return Err(ImageError::InvalidConfig(format!(
                            "layer {index}: the parent chain loops back to it"
                        )));
                    }
                    State::Unseen => {
                        state[index] = State::OnPath;
                        path.push(index);
                        current = self.parent_of(index)?;
                    }
                }
            }
            for index in path.drain(..) {
                state[index] = State::Done;
            }
        }
        Ok(())
    }

    fn validate_records(&self) -> Result<(), ImageError> {
        let layers = self.layers.len();
        let records = self.records.len();
        for (r, record) in self.records.iter().enumerate() {
            for result in &record.results {
                if result.layer >= layers {
                    return Err(ImageError::InvalidConfig(format!(
                        "record {r} ({}): result layer {} is out of range ({layers} layers)",
                        record.digest, result.layer
                    )));
                }
            }
            for chain in &record.chains {
                if let Some(bad) = chain.layers.iter().find(|&&l| l >= layers) {
                    return Err(ImageError::InvalidConfig(format!(
                        "record {r} ({}): chain layer {bad} is out of range ({layers} layers)",
                        record.digest
                    )));
                }
            }
            for (i, group) in record.inputs.iter().enumerate() {
                // BuildKit refuses this on import ("invalid empty input").
                if group.is_empty() {
                    return Err(ImageError::InvalidConfig(format!(
                        "record {r} ({}): input {i} links to nothing",
                        record.digest
                    )));
                }
                if let Some(bad) = group.iter().find(|input| input.link >= records) {
                    return Err(ImageError::InvalidConfig(format!(
                        "record {r} ({}): input {i} links to record {} which is out of range ({records} records)",
                        record.digest, bad.link
                    )));
                }
            }
        }
        self.check_link_loops()
    }

    /// BuildKit refuses a record that links to itself through its inputs
    /// ("invalid looping record"). Depth-first search with an explicit stack:
    /// a 1 MiB config can hold link chains deep enough to overflow recursion.
    fn check_link_loops(&self) -> Result<(), ImageError> {
        #[derive(Clone, Copy, PartialEq)]
        enum State {
            Unseen,
            Open,
            Done,
        }
        let links = |r: usize| {
            self.records[r]
                .inputs
                .iter()
                .flatten()
                .map(|input| input.link)
                .collect::<Vec<_>>()
        };
        let mut state = vec![State::Unseen; self.records.len()];
        for root in 0..self.records.len() {
            if state[root] != State::Unseen {
                continue;
            }
            state[root] = State::Open;
            let mut stack = vec![(root, links(root), 0usize)];
            while let Some((record, next, at)) = stack.last_mut() {
                let Some(&target) = next.get(*at) else {
                    state[*record] = State::Done;
                    stack.pop();
                    continue;
                };
                *at += 1;
                match state[target] {
                    State::Done => {}
                    State::Open => {
                        return Err(ImageError::InvalidConfig(format!(
                            "record {target} ({}): its input links loop back to it",
                            self.records[target].digest
                        )));
                    }
                    State::Unseen => {
                        state[target] = State::Open;
                        stack.push((target, links(target), 0));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    fn parse(json: &str) -> Result<CacheConfig, ImageError> {
        CacheConfig::from_json(json.as_bytes())
    }

    /// Found by `fuzz::image`: without serde_json's exact float parsing,
    /// this value came back as 1.825226899519952e25 after a re-encode.
    #[test]
    fn an_unknown_float_field_survives_a_reencode() {
        let mut config = CacheConfig::default();
        config.extra.insert(
            "futureField".into(),
            serde_json::json!(1.8252268995199518e25),
        );
        let again = parse(std::str::from_utf8(&config.to_json().unwrap()).unwrap()).unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn missing_parent_means_zero_and_is_omitted_again() {
        let json = format!(
            r#"{{"layers":[{{"blob":"{}","parent":-1}},{{"blob":"{}"}}],"records":[{{"layers":[{{"layer":1,"createdAt":"2026-01-01T00:00:00.5Z"}}],"digest":"{}"}}]}}"#,
            d(1),
            d(2),
            d(3)
        );
        let config = parse(&json).unwrap();
        assert_eq!(config.layers[1].parent, 0);
        assert_eq!(config.chain(1).unwrap(), vec![0, 1]);
        assert_eq!(String::from_utf8(config.to_json().unwrap()).unwrap(), json);
    }

    #[test]
    fn chain_follows_parents_base_first() {
        let json = format!(
            r#"{{"layers":[{{"blob":"{}","parent":2}},{{"blob":"{}","parent":-1}},{{"blob":"{}","parent":1}}]}}"#,
            d(1),
            d(2),
            d(3)
        );
        let config = parse(&json).unwrap();
        assert_eq!(config.chain(0).unwrap(), vec![1, 2, 0]);
        assert_eq!(config.chain(1).unwrap(), vec![1]);
        let err = config.chain(3).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
        let empty = CacheConfig::default();
        assert!(
            empty
                .chain(0)
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
    }

    #[test]
    fn parent_cycles_are_refused() {
        let json = format!(
            r#"{{"layers":[{{"blob":"{}","parent":1}},{{"blob":"{}"}}]}}"#,
            d(1),
            d(2)
        );
        let err = parse(&json).unwrap_err();
        assert!(err.to_string().contains("loops"), "{err}");
        // A layer that is its own parent.
        let json = format!(r#"{{"layers":[{{"blob":"{}"}}]}}"#, d(1));
        assert!(parse(&json).is_err());
        // chain() must not spin on a config built in memory.
        let config = CacheConfig {
            layers: vec![CacheLayer {
                blob: d(1).parse().unwrap(),
                parent: 0,
                annotations: None,
            }],
            ..CacheConfig::default()
        };
        assert!(config.chain(0).is_err());
    }

    #[test]
    fn out_of_range_indexes_are_refused_with_their_place() {
        let parent = format!(r#"{{"layers":[{{"blob":"{}","parent":5}}]}}"#, d(1));
        assert!(
            parse(&parent)
                .unwrap_err()
                .to_string()
                .contains("layer 0: parent 5")
        );
        let parent = format!(r#"{{"layers":[{{"blob":"{}","parent":-2}}]}}"#, d(1));
        assert!(parse(&parent).is_err());
        let result = format!(
            r#"{{"records":[{{"layers":[{{"layer":0}}],"digest":"{}"}}]}}"#,
            d(1)
        );
        assert!(
            parse(&result)
                .unwrap_err()
                .to_string()
                .contains("result layer 0")
        );
        let chain = format!(
            r#"{{"records":[{{"chains":[{{"layers":[0]}}],"digest":"{}"}}]}}"#,
            d(1)
        );
        assert!(
            parse(&chain)
                .unwrap_err()
                .to_string()
                .contains("chain layer 0")
        );
        let link = format!(
            r#"{{"records":[{{"digest":"{}","inputs":[[{{"link":1}}]]}}]}}"#,
            d(1)
        );
        assert!(parse(&link).unwrap_err().to_string().contains("record 1"));
        let empty = format!(r#"{{"records":[{{"digest":"{}","inputs":[[]]}}]}}"#, d(1));
        assert!(
            parse(&empty)
                .unwrap_err()
                .to_string()
                .contains("links to nothing")
        );
    }

    #[test]
    fn looping_record_links_are_refused() {
        let json = format!(
            r#"{{"records":[{{"digest":"{}","inputs":[[{{"link":1}}]]}},{{"digest":"{}","inputs":[[{{"link":0}}]]}}]}}"#,
            d(1),
            d(2)
        );
        assert!(parse(&json).unwrap_err().to_string().contains("loop"));
    }

    #[test]
    fn deep_link_chains_do_not_overflow_the_stack() {
        let records = (0..50_000usize)
            .map(|i| CacheRecord {
                results: vec![],
                chains: vec![],
                digest: Digest::of(&i.to_le_bytes()),
                inputs: if i == 0 {
                    vec![]
                } else {
                    vec![vec![CacheInput {
                        selector: None,
                        link: i - 1,
                    }]]
                },
            })
            .collect();
        let config = CacheConfig {
            records,
            ..CacheConfig::default()
        };
        assert!(config.validate().is_ok());
    }

    #[test]
    fn oversized_configs_are_refused_both_ways() {
        let big = vec![b' '; MAX_CONFIG_SIZE + 1];
        assert!(matches!(
            CacheConfig::from_json(&big),
            Err(ImageError::ConfigTooLarge { .. })
        ));
        let layers = (0..MAX_CONFIG_SIZE / 80 + 1)
            .map(|i| CacheLayer {
                blob: Digest::of(&i.to_le_bytes()),
                parent: -1,
                annotations: None,
            })
            .collect();
        let config = CacheConfig {
            layers,
            ..CacheConfig::default()
        };
        assert!(matches!(
            config.to_json(),
            Err(ImageError::ConfigTooLarge { .. })
        ));
    }

    #[test]
    fn unknown_top_level_fields_survive_and_empty_selectors_vanish() {
        let json = format!(
            r#"{{"records":[{{"digest":"{}"}},{{"digest":"{}","inputs":[[{{"selector":"","link":0}}]]}}],"future":{{"x":1}}}}"#,
            d(1),
            d(2)
        );
        let config = parse(&json).unwrap();
        assert_eq!(config.records[1].inputs[0][0].selector, None);
        let out = String::from_utf8(config.to_json().unwrap()).unwrap();
        assert!(out.ends_with(r#","future":{"x":1}}"#), "{out}");
        assert!(!out.contains("selector"), "{out}");
    }

    #[test]
    fn null_lists_read_as_empty() {
        let json = format!(
            r#"{{"layers":null,"records":[{{"layers":null,"digest":"{}","inputs":null}}]}}"#,
            d(1)
        );
        let config = parse(&json).unwrap();
        assert!(config.layers.is_empty() && config.records[0].inputs.is_empty());
    }

    #[test]
    fn layer_annotations_round_trip_in_go_order() {
        let json = format!(
            r#"{{"layers":[{{"blob":"{}","parent":-1,"annotations":{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","diffID":"{}","size":10,"createdAt":"2026-01-01T00:00:00Z","additional":{{"a":"b"}}}}}}]}}"#,
            d(1),
            d(2)
        );
        let config = parse(&json).unwrap();
        assert_eq!(String::from_utf8(config.to_json().unwrap()).unwrap(), json);
    }
}
