//! `reusable_layer`: which layers of a base stand for their part as they
//! are, and the reason given for those that cannot.

use super::*;
use crate::image::media_types::{OCI_LAYER_GZIP, OCI_LAYER_ZSTD};

fn layer(media_type: &str, annotations: &[(&str, &str)]) -> Descriptor {
    let mut desc = Descriptor::new(media_type, Digest::of(b"layer"), 42);
    for (key, value) in annotations {
        desc.annotations
            .insert((*key).to_string(), (*value).to_string());
    }
    desc
}

fn diff_id() -> String {
    Digest::of(b"tar").to_string()
}

#[test]
fn a_complete_layer_of_the_written_compression_is_reused() {
    let desc = layer(
        OCI_LAYER_ZSTD,
        &[
            (ANNOTATION_UNCOMPRESSED, &diff_id()),
            (ANNOTATION_UNCOMPRESSED_SIZE, "1000"),
        ],
    );
    let packed = reusable_layer(&desc, Compression::Zstd).unwrap();
    assert!(packed.reused);
    assert_eq!(packed.digest, desc.digest);
    assert_eq!(packed.size, 42);
    assert_eq!(packed.diff_id.to_string(), diff_id());
    assert_eq!(packed.uncompressed_size, 1000);
    assert_eq!(packed.toc_digest, None);
}

#[test]
fn each_reason_a_layer_cannot_be_reused_is_its_own() {
    let id = diff_id();
    let complete = [
        (ANNOTATION_UNCOMPRESSED, id.as_str()),
        (ANNOTATION_UNCOMPRESSED_SIZE, "1000"),
    ];
    let err = |desc: Descriptor, compression| reusable_layer(&desc, compression).unwrap_err();

    assert_eq!(
        err(layer(OCI_LAYER_GZIP, &complete), Compression::Zstd),
        UnusableLayer::Compression {
            stored: Compression::Gzip,
            wanted: Compression::Zstd,
        }
    );
    // A gzip layer with a TOC is eStargz, not plain gzip.
    let toc = Digest::of(b"toc").to_string();
    let mut with_toc = complete.to_vec();
    with_toc.push((ANNOTATION_STARGZ_TOC, &toc));
    assert!(matches!(
        err(layer(OCI_LAYER_GZIP, &with_toc), Compression::Gzip),
        UnusableLayer::Compression {
            stored: Compression::Estargz,
            ..
        }
    ));
    assert!(reusable_layer(&layer(OCI_LAYER_GZIP, &with_toc), Compression::Estargz).is_ok());
    assert!(matches!(
        err(
            layer(OCI_LAYER_GZIP, &[(ANNOTATION_STARGZ_TOC, "nope")]),
            Compression::Estargz
        ),
        UnusableLayer::TocDigest(_)
    ));
    assert!(matches!(
        err(layer("application/json", &complete), Compression::Zstd),
        UnusableLayer::NotALayer(_)
    ));
    assert_eq!(
        err(
            layer(OCI_LAYER_ZSTD, &[(ANNOTATION_UNCOMPRESSED_SIZE, "1")]),
            Compression::Zstd
        ),
        UnusableLayer::NoDiffId
    );
    assert!(matches!(
        err(
            layer(OCI_LAYER_ZSTD, &[(ANNOTATION_UNCOMPRESSED, "sha256:x")]),
            Compression::Zstd
        ),
        UnusableLayer::DiffId(_)
    ));
    assert_eq!(
        err(
            layer(OCI_LAYER_ZSTD, &[(ANNOTATION_UNCOMPRESSED, &id)]),
            Compression::Zstd
        ),
        UnusableLayer::NoUncompressedSize
    );
    let bad_size = err(
        layer(
            OCI_LAYER_ZSTD,
            &[
                (ANNOTATION_UNCOMPRESSED, &id),
                (ANNOTATION_UNCOMPRESSED_SIZE, "-1"),
            ],
        ),
        Compression::Zstd,
    );
    assert!(matches!(bad_size, UnusableLayer::UncompressedSize(_)));
    // The caller logs the reason as text.
    assert!(String::from(bad_size).starts_with("uncompressed size: "));
}
