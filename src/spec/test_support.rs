//! Helpers the spec module's unit tests share.

use super::*;

pub const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// `value` parsed as `copy` parses it, with BuildKit's defaults: most
/// tests here are about buildx's syntax and BuildKit's meaning.
pub fn one_to(value: &str) -> CacheTo {
    one_to_with(value, ExportDefaults::BuildKit)
}

pub fn one_to_with(value: &str, defaults: ExportDefaults) -> CacheTo {
    let mut specs = parse_cache_to(value, defaults).unwrap_or_else(|e| panic!("{value:?}: {e}"));
    assert_eq!(specs.len(), 1, "{value:?}");
    specs.remove(0)
}

pub fn one_from(value: &str) -> CacheFrom {
    let mut specs = parse_cache_from(value).unwrap_or_else(|e| panic!("{value:?}: {e}"));
    assert_eq!(specs.len(), 1, "{value:?}");
    specs.remove(0)
}

pub fn parse_err(flag: Flag, value: &str) -> SpecError {
    let result = match flag {
        Flag::CacheTo => parse_cache_to(value, ExportDefaults::BuildKit).map(|s| format!("{s:?}")),
        Flag::CacheFrom => parse_cache_from(value).map(|s| format!("{s:?}")),
    };
    match result {
        Ok(specs) => panic!("{flag} {value:?} should be refused, parsed as {specs}"),
        Err(e) => e,
    }
}

pub fn reference(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

pub fn local_dest(spec: &CacheTo) -> (&std::path::Path, &str) {
    match &spec.target {
        ExportTarget::Local { dest, tag } => (dest, tag),
        other => panic!("expected a local target, got {other:?}"),
    }
}
