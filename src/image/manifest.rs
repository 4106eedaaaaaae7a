//! The three forms a BuildKit cache image takes in a registry or an OCI
//! layout, decoded into one model and encoded back exactly as BuildKit
//! writes them:
//!
//! - `image-manifest=true`: an OCI image manifest whose config is the cache
//!   config and whose layers are the blobs;
//! - `image-manifest=false`: an OCI index, or a Docker manifest list with
//!   `oci-mediatypes=false`, whose entries are the blobs (not child
//!   manifests) followed by the cache config.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::ImageError;
use super::descriptor::Descriptor;
use super::gojson::{self, null_as_default};
use super::media_types::{
    CACHE_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, REGCACHE_ENTRIES,
    is_layer,
};
use crate::digest::Digest;

/// BuildKit reads a cache manifest with the same 1 MiB cap as the config, so
/// a bigger one is not a usable cache, and regcache never writes one.
pub const MAX_MANIFEST_SIZE: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Form {
    ImageManifest,
    OciIndex,
    DockerManifestList,
}

impl Form {
    pub fn name(self) -> &'static str {
        match self {
            Form::ImageManifest => "image-manifest",
            Form::OciIndex => "oci-index",
            Form::DockerManifestList => "docker-manifest-list",
        }
    }

    /// The form BuildKit exports for these `--cache-to` parameters. Without
    /// OCI media types it is always a Docker manifest list: the spec parser
    /// refuses `image-manifest=true` with `oci-mediatypes=false`, as BuildKit
    /// does, so `image_manifest` is not consulted then.
    pub fn for_params(oci_mediatypes: bool, image_manifest: bool) -> Form {
        match (oci_mediatypes, image_manifest) {
            (false, _) => Form::DockerManifestList,
            (true, true) => Form::ImageManifest,
            (true, false) => Form::OciIndex,
        }
    }

    /// The manifest media type of this form.
    pub fn media_type(self) -> &'static str {
        match self {
            Form::ImageManifest => OCI_MANIFEST,
            Form::OciIndex => OCI_INDEX,
            Form::DockerManifestList => DOCKER_MANIFEST_LIST,
        }
    }

    pub fn from_media_type(media_type: &str) -> Option<Form> {
        match media_type {
            OCI_MANIFEST => Some(Form::ImageManifest),
            OCI_INDEX => Some(Form::OciIndex),
            DOCKER_MANIFEST_LIST => Some(Form::DockerManifestList),
            _ => None,
        }
    }

    /// Whether blobs are listed under `manifests` (index and list forms).
    fn is_index(self) -> bool {
        self != Form::ImageManifest
    }

    /// "an OCI index" etc., for messages.
    fn article_name(self) -> &'static str {
        match self {
            Form::ImageManifest => "an OCI image manifest",
            Form::OciIndex => "an OCI image index",
            Form::DockerManifestList => "a Docker manifest list",
        }
    }
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A manifest as stored: its media type (the Content-Type it was served
/// with, or the media type of the descriptor that named it) and its exact
/// bytes. Kept raw because its digest is the digest of these bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawManifest {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub digest: Digest,
}

impl RawManifest {
    pub fn new(media_type: impl Into<String>, bytes: Vec<u8>) -> RawManifest {
        let digest = Digest::of(&bytes);
        RawManifest {
            media_type: media_type.into(),
            bytes,
            digest,
        }
    }

    /// The descriptor that points at this manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.media_type.clone(),
            self.digest.clone(),
            self.bytes.len() as u64,
        )
    }
}

/// A cache image, whatever its form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheImage {
    pub form: Form,
    /// The cache config descriptor (`application/vnd.buildkit.cacheconfig.v0`).
    pub config: Descriptor,
    /// Every other descriptor, in manifest order: layers (duplicates kept, as
    /// BuildKit writes one per config layer) and regcache's entries blob.
    pub blobs: Vec<Descriptor>,
    /// Top-level annotations.
    pub annotations: BTreeMap<String, String>,
}

/// What any of the three forms may hold, read leniently so that the form
/// can be worked out from the fields present.
#[derive(Deserialize)]
struct AnyManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<i64>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    #[serde(default, deserialize_with = "null_as_default")]
    annotations: BTreeMap<String, String>,
}

/// The image-manifest form, in image-spec's Go field order.
#[derive(Serialize)]
struct ImageManifestOut<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    config: &'a Descriptor,
    layers: &'a [Descriptor],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

/// The index and manifest-list forms, in image-spec's Go field order.
#[derive(Serialize)]
struct IndexOut<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    manifests: Vec<&'a Descriptor>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

impl CacheImage {
    /// Decodes a cache manifest of any form. The form comes from the media
    /// type it was served with, else from its own `mediaType` field, else
    /// from its shape (`config` or `manifests`).
    pub fn decode(raw: &RawManifest) -> Result<CacheImage, ImageError> {
        if raw.bytes.len() > MAX_MANIFEST_SIZE {
            return Err(ImageError::ManifestTooLarge {
                size: raw.bytes.len(),
                max: MAX_MANIFEST_SIZE,
            });
        }
        let any: AnyManifest =
            serde_json::from_slice(&raw.bytes).map_err(|source| ImageError::Json {
                what: "cache manifest",
                source,
            })?;
        if let Some(version) = any.schema_version
            && version != 2
        {
            return Err(ImageError::InvalidManifest(format!(
                "schemaVersion is {version}, expected 2"
            )));
        }
        let form = form_of(raw, &any)?;
        let (config, blobs) = if form.is_index() {
            split_index(form, any.manifests)?
        } else {
            split_image_manifest(any.config, any.layers)?
        };
        tracing::debug!(
            digest = %raw.digest,
            form = form.name(),
            config = %config.digest,
            blobs = blobs.len(),
            "decoded cache manifest"
        );
        Ok(CacheImage {
            form,
            config,
            blobs,
            annotations: any.annotations,
        })
    }

    /// Encodes as BuildKit does: `{schemaVersion, mediaType, config, layers}`
    /// for an image manifest, `{schemaVersion, mediaType, manifests}` with the
    /// config last for an index or list; annotations only when there are any.
    pub fn encode(&self) -> Result<RawManifest, ImageError> {
        if self.config.media_type != CACHE_CONFIG {
            return Err(ImageError::InvalidManifest(format!(
                "the config descriptor has media type {:?}, expected {CACHE_CONFIG}",
                self.config.media_type
            )));
        }
        if let Some(other) = self.blobs.iter().find(|b| b.media_type == CACHE_CONFIG) {
            return Err(ImageError::InvalidManifest(format!(
                "blob {} also has the cache config media type; an importer could not tell which config is meant",
                other.digest
            )));
        }
        let media_type = self.form.media_type();
        let encoded = if self.form.is_index() {
            gojson::to_vec(&IndexOut {
                schema_version: 2,
                media_type,
                manifests: self.blobs.iter().chain([&self.config]).collect(),
                annotations: &self.annotations,
            })
        } else {
            gojson::to_vec(&ImageManifestOut {
                schema_version: 2,
                media_type,
                config: &self.config,
                layers: &self.blobs,
                annotations: &self.annotations,
            })
        };
        let bytes = encoded.map_err(|source| ImageError::Json {
            what: "encoding cache manifest",
            source,
        })?;
        if bytes.len() > MAX_MANIFEST_SIZE {
            return Err(ImageError::ManifestTooLarge {
                size: bytes.len(),
                max: MAX_MANIFEST_SIZE,
            });
        }
        Ok(RawManifest::new(media_type, bytes))
    }

    /// The blobs with a layer media type, in manifest order.
    pub fn layers(&self) -> impl Iterator<Item = &Descriptor> {
        self.blobs.iter().filter(|d| is_layer(&d.media_type))
    }

    /// The config and every blob, config first.
    pub fn descriptors(&self) -> impl Iterator<Item = &Descriptor> {
        std::iter::once(&self.config).chain(&self.blobs)
    }

    /// regcache's entries blob, if this image was written by regcache.
    pub fn entries_blob(&self) -> Option<&Descriptor> {
        self.blobs.iter().find(|d| d.media_type == REGCACHE_ENTRIES)
    }

    /// The first descriptor (config included) with this digest.
    pub fn find_blob(&self, digest: &Digest) -> Option<&Descriptor> {
        self.descriptors().find(|d| &d.digest == digest)
    }
}

fn form_of(raw: &RawManifest, any: &AnyManifest) -> Result<Form, ImageError> {
    let served = raw.media_type.as_str();
    let declared = any.media_type.as_deref();
    for media_type in [Some(served), declared].into_iter().flatten() {
        if media_type == DOCKER_MANIFEST {
            return Err(ImageError::NotACacheImage(format!(
                "found a Docker image manifest ({DOCKER_MANIFEST}); BuildKit stores caches as an \
                 OCI image manifest, an OCI index or a Docker manifest list"
            )));
        }
    }
    if let (Some(from_served), Some(declared)) = (Form::from_media_type(served), declared)
        && let Some(from_declared) = Form::from_media_type(declared)
        && from_served != from_declared
    {
        return Err(ImageError::InvalidManifest(format!(
            "served as {served} but its mediaType field says {declared}"
        )));
    }
    if let Some(form) =
        Form::from_media_type(served).or_else(|| declared.and_then(Form::from_media_type))
    {
        return Ok(form);
    }
    match (&any.config, &any.manifests) {
        (Some(_), None) => Ok(Form::ImageManifest),
        (None, Some(_)) => Ok(Form::OciIndex),
        _ => Err(ImageError::NotACacheImage(format!(
            "found media type {:?} (mediaType field {:?}) with {}; expected an OCI image manifest, \
             an OCI index or a Docker manifest list",
            served,
            declared.unwrap_or(""),
            if any.config.is_some() {
                "both config and manifests"
            } else {
                "neither config nor manifests"
            }
        ))),
    }
}

fn split_image_manifest(
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
) -> Result<(Descriptor, Vec<Descriptor>), ImageError> {
    let config = config
        .ok_or_else(|| ImageError::InvalidManifest("image manifest without a config".into()))?;
    if config.media_type != CACHE_CONFIG {
        return Err(ImageError::NotACacheImage(format!(
            "found an image manifest whose config is {:?}, not {CACHE_CONFIG}: a container image \
             (an inline cache inside it, if any, is not read)",
            config.media_type
        )));
    }
    Ok((config, layers.unwrap_or_default()))
}

fn split_index(
    form: Form,
    manifests: Option<Vec<Descriptor>>,
) -> Result<(Descriptor, Vec<Descriptor>), ImageError> {
    let manifests = manifests.ok_or_else(|| {
        ImageError::InvalidManifest(format!("{} without a manifests list", form.article_name()))
    })?;
    let (mut configs, blobs): (Vec<_>, Vec<_>) = manifests
        .into_iter()
        .partition(|d| d.media_type == CACHE_CONFIG);
    if configs.len() > 1 {
        return Err(ImageError::InvalidManifest(format!(
            "{} with {} cache config entries; exactly one is expected",
            form.article_name(),
            configs.len()
        )));
    }
    let config = configs.pop().ok_or_else(|| {
        let mut kinds: Vec<&str> = blobs.iter().map(|d| d.media_type.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        ImageError::NotACacheImage(format!(
            "found {} of {} entries ({}) and no {CACHE_CONFIG} entry: a multi-platform image, not a cache",
            form.article_name(),
            blobs.len(),
            kinds.join(", ")
        ))
    })?;
    Ok((config, blobs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::media_types::OCI_LAYER_GZIP;

    fn digest(n: u8) -> Digest {
        Digest::of(&[n])
    }

    fn image(form: Form) -> CacheImage {
        CacheImage {
            form,
            config: Descriptor::new(CACHE_CONFIG, digest(0), 10),
            blobs: vec![
                Descriptor::new(OCI_LAYER_GZIP, digest(1), 11)
                    .with_annotation("containerd.io/uncompressed", digest(2).to_string()),
                Descriptor::new(OCI_LAYER_GZIP, digest(1), 11)
                    .with_annotation("containerd.io/uncompressed", digest(2).to_string()),
                Descriptor::new(REGCACHE_ENTRIES, digest(3), 12),
            ],
            annotations: BTreeMap::from([("dev.regcache.version".to_string(), "1".to_string())]),
        }
    }

    #[test]
    fn every_form_round_trips() {
        for form in [
            Form::ImageManifest,
            Form::OciIndex,
            Form::DockerManifestList,
        ] {
            let original = image(form);
            let raw = original.encode().unwrap();
            assert_eq!(raw.media_type, form.media_type());
            let decoded = CacheImage::decode(&raw).unwrap();
            assert_eq!(decoded, original, "{form}");
            assert_eq!(decoded.encode().unwrap(), raw);
            assert_eq!(decoded.layers().count(), 2);
            assert_eq!(decoded.entries_blob().map(|d| d.size), Some(12));
            assert_eq!(decoded.find_blob(&digest(0)).map(|d| d.size), Some(10));
            assert!(decoded.find_blob(&digest(9)).is_none());
        }
    }

    #[test]
    fn index_puts_config_last_and_finds_it_anywhere() {
        let raw = image(Form::OciIndex).encode().unwrap();
        let text = String::from_utf8(raw.bytes.clone()).unwrap();
        assert!(
            text.rfind(CACHE_CONFIG) > text.rfind(REGCACHE_ENTRIES),
            "{text}"
        );
        // Config first instead of last: still decoded.
        let config = format!(
            r#"{{"mediaType":"{CACHE_CONFIG}","digest":"{}","size":10}}"#,
            digest(0)
        );
        let layer = format!(
            r#"{{"mediaType":"{OCI_LAYER_GZIP}","digest":"{}","size":11}}"#,
            digest(1)
        );
        let json = format!(r#"{{"schemaVersion":2,"manifests":[{config},{layer}]}}"#);
        let decoded = CacheImage::decode(&RawManifest::new("", json.into_bytes())).unwrap();
        assert_eq!(decoded.form, Form::OciIndex);
        assert_eq!(decoded.config.digest, digest(0));
        assert_eq!(decoded.blobs.len(), 1);
    }

    #[test]
    fn form_falls_back_to_the_json_media_type_then_shape() {
        let raw = image(Form::DockerManifestList).encode().unwrap();
        let untyped = RawManifest::new("application/octet-stream", raw.bytes.clone());
        assert_eq!(
            CacheImage::decode(&untyped).unwrap().form,
            Form::DockerManifestList
        );
        let raw = image(Form::ImageManifest).encode().unwrap();
        let text = String::from_utf8(raw.bytes)
            .unwrap()
            .replace(&format!(r#""mediaType":"{OCI_MANIFEST}","#), "");
        let decoded = CacheImage::decode(&RawManifest::new("", text.into_bytes())).unwrap();
        assert_eq!(decoded.form, Form::ImageManifest);
    }

    #[test]
    fn contradicting_media_types_are_refused() {
        let raw = image(Form::OciIndex).encode().unwrap();
        let lying = RawManifest::new(OCI_MANIFEST, raw.bytes);
        assert!(matches!(
            CacheImage::decode(&lying),
            Err(ImageError::InvalidManifest(_))
        ));
    }

    #[test]
    fn a_container_image_is_not_a_cache() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":5}},"layers":[]}}"#,
            digest(0)
        );
        let err =
            CacheImage::decode(&RawManifest::new(OCI_MANIFEST, json.into_bytes())).unwrap_err();
        assert!(matches!(err, ImageError::NotACacheImage(_)));
        assert!(
            err.to_string()
                .contains("application/vnd.oci.image.config.v1+json"),
            "{err}"
        );
    }

    #[test]
    fn a_multi_platform_index_is_not_a_cache() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":5}}]}}"#,
            digest(0)
        );
        let err = CacheImage::decode(&RawManifest::new(OCI_INDEX, json.into_bytes())).unwrap_err();
        assert!(matches!(err, ImageError::NotACacheImage(_)));
        assert!(err.to_string().contains(OCI_MANIFEST), "{err}");
    }

    #[test]
    fn docker_v2_manifests_and_shapeless_json_are_not_caches() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"x","digest":"{}","size":1}},"layers":[]}}"#,
            digest(0)
        );
        assert!(matches!(
            CacheImage::decode(&RawManifest::new(DOCKER_MANIFEST, json.into_bytes())),
            Err(ImageError::NotACacheImage(_))
        ));
        assert!(matches!(
            CacheImage::decode(&RawManifest::new("", b"{}".to_vec())),
            Err(ImageError::NotACacheImage(_))
        ));
    }

    #[test]
    fn malformed_manifests_are_refused() {
        let bad_version = r#"{"schemaVersion":1,"manifests":[]}"#;
        assert!(matches!(
            CacheImage::decode(&RawManifest::new(
                OCI_INDEX,
                bad_version.as_bytes().to_vec()
            )),
            Err(ImageError::InvalidManifest(_))
        ));
        assert!(matches!(
            CacheImage::decode(&RawManifest::new(OCI_INDEX, b"not json".to_vec())),
            Err(ImageError::Json { .. })
        ));
        let big = vec![b' '; MAX_MANIFEST_SIZE + 1];
        assert!(matches!(
            CacheImage::decode(&RawManifest::new(OCI_INDEX, big)),
            Err(ImageError::ManifestTooLarge { .. })
        ));
        let config = format!(
            r#"{{"mediaType":"{CACHE_CONFIG}","digest":"{}","size":10}}"#,
            digest(0)
        );
        let two = format!(r#"{{"schemaVersion":2,"manifests":[{config},{config}]}}"#);
        assert!(matches!(
            CacheImage::decode(&RawManifest::new(OCI_INDEX, two.into_bytes())),
            Err(ImageError::InvalidManifest(_))
        ));
    }

    #[test]
    fn encode_refuses_what_an_importer_could_not_read() {
        let mut wrong_config = image(Form::ImageManifest);
        wrong_config.config.media_type = "application/json".into();
        assert!(wrong_config.encode().is_err());
        let mut second_config = image(Form::OciIndex);
        second_config
            .blobs
            .push(Descriptor::new(CACHE_CONFIG, digest(5), 1));
        assert!(second_config.encode().is_err());
    }

    #[test]
    fn for_params_matches_buildkit_defaults() {
        assert_eq!(Form::for_params(true, true), Form::ImageManifest);
        assert_eq!(Form::for_params(true, false), Form::OciIndex);
        assert_eq!(Form::for_params(false, false), Form::DockerManifestList);
        assert_eq!(Form::DockerManifestList.name(), "docker-manifest-list");
    }
}
