//! Whose defaults fill in what a `--cache-to` value leaves out.

use super::{ExportParams, Mode, SourceKeys};
use crate::compression::Compression;

/// Whose defaults fill in the export parameters a `--cache-to` value leaves
/// out. There is deliberately no `ExportParams::default()`: each command
/// names its defaults once, where it parses its `--cache-to` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportDefaults {
    /// BuildKit ≥ 0.22's, for a cache BuildKit reads: `copy` writes caches
    /// for `docker buildx build --cache-from`.
    BuildKit,
    /// BuildKit's, except `compression=zstd`: `save` and `run` write layers
    /// that only regcache reads, and zstd saves about 2.2× and restores
    /// about 1.3× faster than gzip. An explicit `compression=` still wins.
    Regcache,
    /// `copy`'s: the source's mode, form, media types and compression, so
    /// that a bare `--cache-to` copies and changes nothing; BuildKit's for
    /// the rest. Someone who says "copy" expects a copy.
    Source,
}

impl ExportDefaults {
    pub const ALL: [ExportDefaults; 3] = [
        ExportDefaults::BuildKit,
        ExportDefaults::Regcache,
        ExportDefaults::Source,
    ];

    /// The name the `--dry-run` plan gives them (docs/dry-run.md).
    pub fn name(self) -> &'static str {
        match self {
            ExportDefaults::BuildKit => "buildkit",
            ExportDefaults::Regcache => "regcache",
            ExportDefaults::Source => "source",
        }
    }

    /// What they mean, for the human-readable plan.
    pub fn describe(self) -> &'static str {
        match self {
            ExportDefaults::BuildKit => "BuildKit's",
            ExportDefaults::Regcache => {
                "BuildKit's, except compression=zstd unless the spec sets compression= \
                 (regcache's own default: only regcache reads these layers)"
            }
            ExportDefaults::Source => {
                "the source's for the keys marked \"as the source\" (of merged sources that \
                 differ, the richer: max over min, OCI over Docker, an image manifest over an \
                 index); BuildKit's for the rest"
            }
        }
    }

    /// Every parameter at the value it takes when the spec does not set it.
    pub fn params(self) -> ExportParams {
        let buildkit = ExportParams {
            mode: Mode::Min,
            oci_mediatypes: true,
            image_manifest: true,
            compression: Compression::Gzip,
            compression_level: None,
            force_compression: false,
            ignore_error: false,
            from_source: SourceKeys::default(),
        };
        match self {
            ExportDefaults::BuildKit => buildkit,
            ExportDefaults::Regcache => ExportParams {
                compression: Compression::Zstd,
                ..buildkit
            },
            // The values stand in until the source is read; `from_source`
            // says they do.
            ExportDefaults::Source => ExportParams {
                from_source: SourceKeys::ALL,
                ..buildkit
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::test_support::*;
    use crate::spec::*;

    #[test]
    fn cache_to_defaults() {
        let buildkit = ExportParams {
            mode: Mode::Min,
            oci_mediatypes: true,
            image_manifest: true,
            compression: Compression::Gzip,
            compression_level: None,
            force_compression: false,
            ignore_error: false,
            from_source: SourceKeys::default(),
        };
        assert_eq!(ExportDefaults::BuildKit.params(), buildkit);
        // regcache's differ from BuildKit's in the compression alone.
        assert_eq!(
            ExportDefaults::Regcache.params(),
            ExportParams {
                compression: Compression::Zstd,
                ..buildkit.clone()
            }
        );
        for defaults in ExportDefaults::ALL {
            assert_eq!(
                one_to_with("type=local,dest=out", defaults),
                CacheTo {
                    target: ExportTarget::Local {
                        dest: "out".into(),
                        tag: "latest".into()
                    },
                    params: defaults.params(),
                    defaults,
                }
            );
            assert_eq!(
                one_to_with("type=registry,ref=user/app", defaults),
                CacheTo {
                    target: ExportTarget::Registry {
                        reference: reference("docker.io/user/app:latest"),
                        insecure: false
                    },
                    params: defaults.params(),
                    defaults,
                }
            );
        }
    }

    /// `copy` writes for BuildKit, so it keeps BuildKit's gzip.
    #[test]
    fn copy_defaults_to_gzip() {
        for value in [
            "type=local,dest=out",
            "user/app",
            "type=registry,ref=a,mode=max",
        ] {
            let spec = one_to_with(value, ExportDefaults::BuildKit);
            assert_eq!(spec.params.compression, Compression::Gzip, "{value:?}");
            assert_eq!(spec.params.compression_level, None, "{value:?}");
        }
    }

    /// `save` and `run` write layers only regcache reads: zstd, and every
    /// other parameter as BuildKit's, including a bare ref list.
    #[test]
    fn save_and_run_default_to_zstd() {
        for value in ["type=local,dest=out", "type=registry,ref=a,mode=max"] {
            let spec = one_to_with(value, ExportDefaults::Regcache);
            assert_eq!(spec.params.compression, Compression::Zstd, "{value:?}");
            assert_eq!(spec.params.compression_level, None, "{value:?}");
            assert!(!spec.params.force_compression, "{value:?}");
        }
        let refs = parse_cache_to("a,b", ExportDefaults::Regcache).unwrap();
        assert_eq!(refs.len(), 2);
        for spec in refs {
            assert_eq!(spec.params, ExportDefaults::Regcache.params());
        }
        // A level alone keeps the default codec and is checked against it.
        let leveled = one_to_with(
            "type=local,dest=out,compression-level=19",
            ExportDefaults::Regcache,
        );
        assert_eq!(leveled.params.compression, Compression::Zstd);
        assert_eq!(leveled.params.compression_level, Some(19));
        assert!(
            parse_cache_to(
                "type=local,dest=out,compression-level=19",
                ExportDefaults::BuildKit
            )
            .is_err()
        );
    }

    /// An explicit compression wins over either command's default, gzip too.
    #[test]
    fn an_explicit_compression_wins_over_the_default() {
        for defaults in ExportDefaults::ALL {
            for compression in Compression::ALL {
                let value = format!("type=local,dest=out,compression={compression}");
                let spec = one_to_with(&value, defaults);
                assert_eq!(
                    spec.params.compression, compression,
                    "{value:?} {defaults:?}"
                );
            }
            let gzip = one_to_with(
                "type=local,dest=out,compression=gzip,compression-level=9",
                defaults,
            );
            assert_eq!(gzip.params.compression, Compression::Gzip);
            assert_eq!(gzip.params.compression_level, Some(9));
            // The effective spec spells the compression out, so it means
            // the same whichever command reads it back; a copy's leaves
            // out what it takes from the source, and means that to a copy.
            let shown = one_to_with("type=local,dest=out", defaults).to_string();
            let readers = match defaults {
                ExportDefaults::Source => vec![ExportDefaults::Source],
                _ => vec![ExportDefaults::BuildKit, ExportDefaults::Regcache],
            };
            for other in readers {
                assert_eq!(
                    one_to_with(&shown, other).params,
                    defaults.params(),
                    "{shown:?} under {other:?}"
                );
            }
        }
    }

    /// A copy takes from its source exactly the keys its spec leaves out.
    #[test]
    fn a_copy_spec_leaves_to_the_source_what_it_does_not_say() {
        let kept = |value: &str| {
            one_to_with(value, ExportDefaults::Source)
                .params
                .from_source
        };
        assert_eq!(kept("type=local,dest=out"), SourceKeys::ALL);
        assert_eq!(kept("user/app"), SourceKeys::ALL);
        assert_eq!(
            kept("type=local,dest=out,mode=max,compression=zstd"),
            SourceKeys {
                mode: false,
                compression: false,
                ..SourceKeys::ALL
            }
        );
        assert_eq!(
            kept("type=local,dest=out,oci-mediatypes=false,compression-level=3"),
            SourceKeys {
                oci_mediatypes: false,
                ..SourceKeys::ALL
            }
        );
        assert_eq!(
            kept("type=local,dest=out,image-manifest=false"),
            SourceKeys {
                image_manifest: false,
                ..SourceKeys::ALL
            }
        );
        for defaults in [ExportDefaults::BuildKit, ExportDefaults::Regcache] {
            assert!(
                !one_to_with("type=local,dest=out", defaults)
                    .params
                    .from_source
                    .any()
            );
        }
        let shown = one_to_with("type=local,dest=out,mode=max", ExportDefaults::Source).to_string();
        assert_eq!(
            shown,
            "type=local,dest=out,tag=latest,mode=max,force-compression=false,ignore-error=false"
        );
    }
}
