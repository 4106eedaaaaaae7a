//! Things a repository holds besides caches, and tags made cheaply:
//! an ordinary image manifest, and a manifest copied under another tag.

use regcache::image::media_types::OCI_MANIFEST;
use regcache::image::{Descriptor, RawManifest};
use regcache::spec::{ExportDefaults, parse_cache_from, parse_cache_to};
use regcache::store::{open_export, open_import};

use super::aging::{options, runtime};

/// Pushes an ordinary (non-cache) image manifest to `spec`, a --cache-to
/// spec (`type=registry,ref=…` or `type=local,dest=…,tag=…`).
pub fn push_plain_image(spec: &str) {
    runtime().block_on(async {
        let target = open_export(
            &parse_cache_to(spec, ExportDefaults::BuildKit).unwrap()[0],
            &options(),
        )
        .unwrap();
        let config_bytes =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config =
            Descriptor::for_bytes("application/vnd.oci.image.config.v1+json", config_bytes);
        let layer_bytes = b"not really a tar";
        let layer = Descriptor::for_bytes("application/vnd.oci.image.layer.v1.tar", layer_bytes);
        target.put_blob_bytes(&config, config_bytes).await.unwrap();
        target.put_blob_bytes(&layer, layer_bytes).await.unwrap();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": [layer],
        });
        let raw = RawManifest::new(OCI_MANIFEST, serde_json::to_vec(&manifest).unwrap());
        target.put_manifest(&raw).await.unwrap();
    });
}

/// Copies the manifest at `from` (a --cache-from spec) to `to` (a
/// --cache-to spec) unchanged: two tags, one digest.
pub fn retag(from: &str, to: &str) {
    runtime().block_on(async {
        let source = open_import(&parse_cache_from(from).unwrap()[0], &options()).unwrap();
        let raw = source.fetch_manifest().await.unwrap().unwrap();
        let target = open_export(
            &parse_cache_to(to, ExportDefaults::BuildKit).unwrap()[0],
            &options(),
        )
        .unwrap();
        target.put_manifest(&raw).await.unwrap();
    });
}
