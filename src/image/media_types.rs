//! Media types and annotation keys of BuildKit cache images, and the mapping
//! between a layer compression and its media type.

use crate::compression::Compression;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The config blob of a cache image (BuildKit's `CacheConfigMediaTypeV0`).
pub const CACHE_CONFIG: &str = "application/vnd.buildkit.cacheconfig.v0";
/// regcache's own metadata blob (see `entries.rs`).
pub const REGCACHE_ENTRIES: &str = "application/vnd.regcache.entries.v1+json";
/// An entry's state list (see `layer::filelist`).
pub const REGCACHE_FILELIST: &str = crate::layer::filelist::MEDIA_TYPE;

pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Not part of any Docker spec: BuildKit writes it for
/// `oci-mediatypes=false,compression=zstd`, so it must be read and written.
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";

// Layer types regcache never writes but must still recognise as layers when
// reading someone else's image.
const OCI_LAYER_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
const OCI_LAYER_NONDIST_GZIP: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
const OCI_LAYER_NONDIST_ZSTD: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
const DOCKER_LAYER_FOREIGN_GZIP: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// The diffID (digest of the uncompressed tar). BuildKit's importer needs it:
/// without it a hit is reported, then silently rebuilt.
pub const ANNOTATION_UNCOMPRESSED: &str = "containerd.io/uncompressed";
pub const ANNOTATION_CREATED_AT: &str = "buildkit/createdat";
/// Present on estargz layers only; it is how estargz is told apart from gzip,
/// since both share the gzip media type.
pub const ANNOTATION_STARGZ_TOC: &str = "containerd.io/snapshot/stargz/toc.digest";
pub const ANNOTATION_ESTARGZ_UNCOMPRESSED_SIZE: &str = "io.containers.estargz.uncompressed-size";
/// regcache's own: the uncompressed tar size, the bound restore enforces.
pub const ANNOTATION_UNCOMPRESSED_SIZE: &str = "dev.regcache.uncompressed-size";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Top-level annotations regcache puts on the images it writes.
pub const ANNOTATION_REGCACHE_VERSION: &str = "dev.regcache.version";
pub const ANNOTATION_REGCACHE_MODE: &str = "dev.regcache.mode";

/// The media type of a layer compressed with `c`. estargz is a valid gzip
/// stream and BuildKit labels it with the gzip type.
pub fn layer_media_type(c: Compression, oci: bool) -> &'static str {
    match (c, oci) {
        (Compression::Gzip | Compression::Estargz, true) => OCI_LAYER_GZIP,
        (Compression::Zstd, true) => OCI_LAYER_ZSTD,
        (Compression::Uncompressed, true) => OCI_LAYER,
        (Compression::Gzip | Compression::Estargz, false) => DOCKER_LAYER_GZIP,
        (Compression::Zstd, false) => DOCKER_LAYER_ZSTD,
        (Compression::Uncompressed, false) => DOCKER_LAYER,
    }
}

/// The compression a layer media type names, or `None` if it is not a layer
/// type. Gzip types answer `Gzip`: estargz needs the descriptor's annotations.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP | OCI_LAYER_NONDIST_GZIP | DOCKER_LAYER_FOREIGN_GZIP => {
            Some(Compression::Gzip)
        }
        OCI_LAYER_ZSTD | DOCKER_LAYER_ZSTD | OCI_LAYER_NONDIST_ZSTD => Some(Compression::Zstd),
        OCI_LAYER | DOCKER_LAYER | OCI_LAYER_NONDIST => Some(Compression::Uncompressed),
        _ => None,
    }
}

pub fn is_layer(media_type: &str) -> bool {
    layer_compression(media_type).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_written_type_maps_back_to_its_compression() {
        for c in [
            Compression::Gzip,
            Compression::Zstd,
            Compression::Uncompressed,
        ] {
            for oci in [true, false] {
                assert_eq!(
                    layer_compression(layer_media_type(c, oci)),
                    Some(c),
                    "{c} oci={oci}"
                );
            }
        }
    }

    #[test]
    fn estargz_uses_the_gzip_type() {
        assert_eq!(layer_media_type(Compression::Estargz, true), OCI_LAYER_GZIP);
        assert_eq!(
            layer_media_type(Compression::Estargz, false),
            DOCKER_LAYER_GZIP
        );
    }

    #[test]
    fn buildkit_docker_zstd_type_is_a_layer() {
        assert_eq!(
            layer_media_type(Compression::Zstd, false),
            "application/vnd.docker.image.rootfs.diff.tar.zstd"
        );
        assert!(is_layer(DOCKER_LAYER_ZSTD));
    }

    #[test]
    fn config_and_manifest_types_are_not_layers() {
        for t in [
            CACHE_CONFIG,
            REGCACHE_ENTRIES,
            OCI_MANIFEST,
            OCI_INDEX,
            "application/octet-stream",
        ] {
            assert!(!is_layer(t), "{t}");
        }
    }
}
