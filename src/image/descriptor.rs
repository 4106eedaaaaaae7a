//! The OCI content descriptor, shaped like image-spec's Go struct so that
//! re-encoding a descriptor BuildKit wrote reproduces its bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::gojson::null_as_default;
use crate::digest::Digest;

/// A pointer to a blob. Fields are declared in the Go struct's order
/// (mediaType, digest, size, urls, annotations, data, platform,
/// artifactType) because that order is part of the encoded bytes, and every
/// optional field is omitted when empty, as Go's `omitempty` does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub urls: Vec<String>,
    /// Sorted by key, which is also how Go encodes a map.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    /// Embedded content, kept as the base64 text it arrived as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
}

/// image-spec's Platform, in its Go field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Descriptor {
    /// A descriptor with no annotations or optional fields.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            data: None,
            platform: None,
            artifact_type: None,
        }
    }

    /// The descriptor of `bytes`, as content to be stored.
    pub fn for_bytes(media_type: impl Into<String>, bytes: &[u8]) -> Descriptor {
        Descriptor::new(media_type, Digest::of(bytes), bytes.len() as u64)
    }

    pub fn with_annotation(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Descriptor {
        self.annotations.insert(key.into(), value.into());
        self
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::gojson;

    const LAYER: &str = r#"{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:c3ff41535f466b83cfe0b7670a57e5d61e434e00e232f02085f96460c499a3da","size":142,"annotations":{"buildkit/createdat":"2026-11-23T03:19:11.099937096Z","containerd.io/uncompressed":"sha256:0d4672c7070c634e3d476107ce485ef64c5447dc523be6c72c4fef106ad4a102"}}"#;

    #[test]
    fn buildkit_layer_descriptor_round_trips() {
        let d: Descriptor = serde_json::from_str(LAYER).unwrap();
        assert_eq!(d.size, 142);
        assert_eq!(
            d.annotation("containerd.io/uncompressed"),
            Some("sha256:0d4672c7070c634e3d476107ce485ef64c5447dc523be6c72c4fef106ad4a102")
        );
        assert_eq!(gojson::to_vec(&d).unwrap(), LAYER.as_bytes());
    }

    #[test]
    fn optional_fields_keep_go_order() {
        let json = r#"{"mediaType":"m","digest":"sha256:c3ff41535f466b83cfe0b7670a57e5d61e434e00e232f02085f96460c499a3da","size":1,"urls":["https://x/y"],"annotations":{"k":"v"},"data":"aGk=","platform":{"architecture":"arm64","os":"linux","os.version":"1","os.features":["f"],"variant":"v8"},"artifactType":"a"}"#;
        let d: Descriptor = serde_json::from_str(json).unwrap();
        assert_eq!(
            String::from_utf8(gojson::to_vec(&d).unwrap()).unwrap(),
            json
        );
    }

    #[test]
    fn empty_annotations_are_omitted() {
        let d = Descriptor::for_bytes("m", b"x");
        let text = String::from_utf8(gojson::to_vec(&d).unwrap()).unwrap();
        assert!(!text.contains("annotations"), "{text}");
    }

    #[test]
    fn negative_size_and_bad_digest_are_refused() {
        let bad_size = LAYER.replace("\"size\":142", "\"size\":-1");
        assert!(serde_json::from_str::<Descriptor>(&bad_size).is_err());
        let bad_digest = LAYER.replace("sha256:c3ff", "sha256:../");
        assert!(serde_json::from_str::<Descriptor>(&bad_digest).is_err());
    }
}
