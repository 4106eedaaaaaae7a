//! Caches made older than they are: prune judges a cache's age by its own
//! creation time, so tests rewrite the config's `createdAt` and the layer
//! annotations of a cache `regcache save` wrote, and push it again.

use std::time::{Duration, SystemTime};

use regcache::image::media_types::{ANNOTATION_CREATED_AT, CACHE_CONFIG};
use regcache::image::{CacheConfig, CacheImage, Descriptor};
use regcache::spec::{ExportDefaults, parse_cache_from, parse_cache_to};
use regcache::store::{StoreOptions, open_export, open_import};

pub const DAY: u64 = 86_400;

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

pub fn options() -> StoreOptions {
    StoreOptions {
        jobs: 2,
        ..StoreOptions::default()
    }
}

/// Rewrites the cache at `from` (a --cache-from spec) as created
/// `seconds_ago`, and writes it to `to` (the same place, as --cache-to).
/// The form (manifest, index, Docker list) is kept: CacheImage encodes the
/// form it decoded.
pub fn backdate(from: &str, to: &str, seconds_ago: u64) {
    runtime().block_on(async {
        let source = open_import(&parse_cache_from(from).unwrap()[0], &options()).unwrap();
        let raw = source
            .fetch_manifest()
            .await
            .unwrap()
            .expect("cache exists");
        let mut image = CacheImage::decode(&raw).unwrap();
        let bytes = source.read_small_blob(&image.config).await.unwrap();
        let mut config = CacheConfig::from_json(&bytes).unwrap();
        let when =
            humantime::format_rfc3339_nanos(SystemTime::now() - Duration::from_secs(seconds_ago))
                .to_string();
        for record in &mut config.records {
            for result in &mut record.results {
                result.created_at = Some(when.clone());
            }
        }
        for layer in &mut config.layers {
            if let Some(annotations) = &mut layer.annotations {
                annotations.created_at = Some(when.clone());
            }
        }
        let config_bytes = config.to_json().unwrap();
        image.config = Descriptor::for_bytes(CACHE_CONFIG, &config_bytes);
        for blob in &mut image.blobs {
            if blob.annotations.contains_key(ANNOTATION_CREATED_AT) {
                blob.annotations
                    .insert(ANNOTATION_CREATED_AT.to_string(), when.clone());
            }
        }
        let target = open_export(
            &parse_cache_to(to, ExportDefaults::BuildKit).unwrap()[0],
            &options(),
        )
        .unwrap();
        target
            .put_blob_bytes(&image.config, &config_bytes)
            .await
            .unwrap();
        target.put_manifest(&image.encode().unwrap()).await.unwrap();
    });
}
