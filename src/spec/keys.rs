//! Every key a spec may hold, in one table: which types and flags take it,
//! what values it accepts, its defaults and what it means. Parsing, "did
//! you mean", the SPEC help text and docs/spec.md are all read off it, so
//! they cannot drift apart.

use super::Flag;

pub const TYPE: &str = "type";
pub const REF: &str = "ref";
pub const INSECURE: &str = "registry.insecure";
pub const DEST: &str = "dest";
pub const SRC: &str = "src";
pub const TAG: &str = "tag";
pub const DIGEST: &str = "digest";
pub const MODE: &str = "mode";
pub const OCI_MEDIATYPES: &str = "oci-mediatypes";
pub const IMAGE_MANIFEST: &str = "image-manifest";
pub const COMPRESSION: &str = "compression";
pub const COMPRESSION_LEVEL: &str = "compression-level";
pub const FORCE_COMPRESSION: &str = "force-compression";
pub const IGNORE_ERROR: &str = "ignore-error";

/// buildx cache types that regcache knows of but does not implement.
pub const UNSUPPORTED_TYPES: [&str; 4] = ["gha", "s3", "azblob", "inline"];

/// What Go's strconv.ParseBool accepts, which is what BuildKit uses.
pub const TRUE_WORDS: [&str; 6] = ["1", "t", "T", "TRUE", "true", "True"];
pub const FALSE_WORDS: [&str; 6] = ["0", "f", "F", "FALSE", "false", "False"];

pub const REF_SHAPE: &str =
    "a ref is [HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST] in lowercase, e.g. ghcr.io/owner/app:cache";

/// A cache type regcache implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Registry,
    Local,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Registry, Kind::Local];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Registry => "registry",
            Kind::Local => "local",
        }
    }

    /// The keys a spec of this type takes on `flag`, in table order:
    /// the location's, then (on `--cache-to`) the export parameters.
    pub fn accepted_keys(self, flag: Flag) -> Vec<&'static str> {
        KEYS.iter()
            .filter(|key| key.applies_to(flag, self))
            .map(|key| key.name)
            .collect()
    }
}

/// Where a key may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `type=`, which every keyed spec needs and which picks the others.
    Type,
    /// Says where the cache is, for these types on these flags.
    Location {
        kinds: &'static [Kind],
        flags: &'static [Flag],
    },
    /// Shapes an export: taken by `--cache-to` of every type, and tolerated
    /// (with a warning) on `--cache-from`, since people pass one string to
    /// both flags.
    Export,
}

/// What a key's value may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// Exactly one of these words (values are case-sensitive, as in BuildKit).
    OneOf(&'static [&'static str]),
    /// What Go's strconv.ParseBool accepts: [`TRUE_WORDS`], [`FALSE_WORDS`].
    Bool,
    /// Free text of this shape.
    Text(&'static str),
}

impl Values {
    /// The accepted values as error messages list them.
    pub fn accepted(self) -> String {
        match self {
            Values::OneOf(words) => words.join(", "),
            Values::Bool => [TRUE_WORDS, FALSE_WORDS].concat().join(", "),
            Values::Text(shape) => shape.to_string(),
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub name: &'static str,
    pub scope: Scope,
    /// The placeholder the help text writes after `=`.
    pub placeholder: &'static str,
    pub values: Values,
    /// BuildKit's default; `None` for a key that must be given.
    pub default: Option<&'static str>,
    /// regcache's default for `save` and `run`, where it differs.
    pub regcache_default: Option<&'static str>,
    pub about: &'static str,
}

impl Key {
    /// Whether `flag` takes this key on a spec of type `kind`. Export keys
    /// on `--cache-from` are not taken but tolerated: see [`Scope::Export`].
    pub fn applies_to(&self, flag: Flag, kind: Kind) -> bool {
        match self.scope {
            Scope::Type => false,
            Scope::Location { kinds, flags } => kinds.contains(&kind) && flags.contains(&flag),
            Scope::Export => flag == Flag::CacheTo,
        }
    }

    pub fn is_export(&self) -> bool {
        self.scope == Scope::Export
    }
}

const BOTH_FLAGS: &[Flag] = &[Flag::CacheTo, Flag::CacheFrom];
const REGISTRY: &[Kind] = &[Kind::Registry];
const LOCAL: &[Kind] = &[Kind::Local];

/// Every key, in the order help and error messages list them.
pub const KEYS: &[Key] = &[
    Key {
        name: TYPE,
        scope: Scope::Type,
        placeholder: "registry|local",
        values: Values::OneOf(&["registry", "local"]),
        default: None,
        regcache_default: None,
        about: "the kind of cache: an OCI registry, or an OCI layout directory \
                (buildx's gha, s3, azblob and inline are not supported)",
    },
    Key {
        name: REF,
        scope: Scope::Location {
            kinds: REGISTRY,
            flags: BOTH_FLAGS,
        },
        placeholder: "REF",
        values: Values::Text("[HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST] in lowercase"),
        default: None,
        regcache_default: None,
        about: "the image reference, e.g. ghcr.io/owner/app:cache; on --cache-from it may \
                pin @sha256:DIGEST, or end its tag in * for the newest cache whose tag \
                starts with what precedes the *",
    },
    Key {
        name: INSECURE,
        scope: Scope::Location {
            kinds: REGISTRY,
            flags: BOTH_FLAGS,
        },
        placeholder: "BOOL",
        values: Values::Bool,
        default: Some("false"),
        regcache_default: None,
        about: "allow plain HTTP and unverified TLS for this registry (loopback registries \
                never need it; --insecure-registry names hosts for every spec)",
    },
    Key {
        name: DEST,
        scope: Scope::Location {
            kinds: LOCAL,
            flags: &[Flag::CacheTo],
        },
        placeholder: "DIR",
        values: Values::Text("a directory path, kept as given"),
        default: None,
        regcache_default: None,
        about: "the OCI layout directory to write",
    },
    Key {
        name: SRC,
        scope: Scope::Location {
            kinds: LOCAL,
            flags: &[Flag::CacheFrom],
        },
        placeholder: "DIR",
        values: Values::Text("a directory path, kept as given"),
        default: None,
        regcache_default: None,
        about: "the OCI layout directory to read",
    },
    Key {
        name: TAG,
        scope: Scope::Location {
            kinds: LOCAL,
            flags: BOTH_FLAGS,
        },
        placeholder: "TAG",
        values: Values::Text(
            "letters and digits joined by one of - . _ : @ + or --, in /-separated parts",
        ),
        default: Some("latest"),
        regcache_default: None,
        about: "the cache's name in the directory's index.json; on --cache-from it may end \
                in * for the newest cache whose tag starts with what precedes the *",
    },
    Key {
        name: DIGEST,
        scope: Scope::Location {
            kinds: LOCAL,
            flags: &[Flag::CacheFrom],
        },
        placeholder: "sha256:…",
        values: Values::Text("sha256: followed by 64 lowercase hex digits"),
        default: None,
        regcache_default: None,
        about: "the manifest to read, whatever tag it has; wins over tag",
    },
    Key {
        name: MODE,
        scope: Scope::Export,
        placeholder: "min|max",
        values: Values::OneOf(&["min", "max"]),
        default: Some("min"),
        regcache_default: None,
        about: "min keeps the layers of the final result only; max keeps every step's \
                (for save and run: a delta layer per save on the base's chain)",
    },
    Key {
        name: OCI_MEDIATYPES,
        scope: Scope::Export,
        placeholder: "BOOL",
        values: Values::Bool,
        default: Some("true"),
        regcache_default: None,
        about: "OCI media types (true) or Docker's (false)",
    },
    Key {
        name: IMAGE_MANIFEST,
        scope: Scope::Export,
        placeholder: "BOOL",
        values: Values::Bool,
        default: Some("the value of oci-mediatypes"),
        regcache_default: None,
        about: "write an image manifest (true) or an image index (false); true needs \
                oci-mediatypes=true",
    },
    Key {
        name: COMPRESSION,
        scope: Scope::Export,
        placeholder: "gzip|estargz|zstd|uncompressed",
        values: Values::OneOf(&["gzip", "estargz", "zstd", "uncompressed"]),
        default: Some("gzip"),
        regcache_default: Some("zstd"),
        about: "the codec of the layers written (copy keeps each layer's own unless \
                force-compression=true)",
    },
    Key {
        name: COMPRESSION_LEVEL,
        scope: Scope::Export,
        placeholder: "N",
        values: Values::Text("an integer: 0 to 9 for gzip and estargz, 0 to 22 for zstd"),
        default: Some("the codec's own: 6 for gzip and estargz, 3 for zstd"),
        regcache_default: None,
        about: "the codec's level; uncompressed takes none",
    },
    Key {
        name: FORCE_COMPRESSION,
        scope: Scope::Export,
        placeholder: "BOOL",
        values: Values::Bool,
        default: Some("false"),
        regcache_default: None,
        about: "recompress layers that already exist in another codec or level \
                (a bare force-compression= is true, as in BuildKit)",
    },
    Key {
        name: IGNORE_ERROR,
        scope: Scope::Export,
        placeholder: "BOOL",
        values: Values::Bool,
        default: Some("false"),
        regcache_default: None,
        about: "a failed export is a warning, not exit status 1",
    },
];

/// The row for `name`, if it is a key.
pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| key.name == name)
}

/// The accepted values of `name` as error messages list them.
pub fn accepted(name: &str) -> String {
    key(name)
        .map(|key| key.values.accepted())
        .unwrap_or_default()
}

/// The keys that shape an export, in table order.
pub fn export_keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter()
        .filter(|key| key.is_export())
        .map(|key| key.name)
}

/// Every key name, for "did you mean".
pub fn names() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|key| key.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::Compression;
    use crate::spec::{ExportDefaults, Mode, parse_cache_from, parse_cache_to};

    #[test]
    fn names_are_unique_and_lowercase() {
        let mut names: Vec<_> = names().collect();
        assert!(names.iter().all(|n| *n == n.to_lowercase()), "{names:?}");
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KEYS.len());
    }

    /// The words the table lists are exactly the ones the types parse.
    #[test]
    fn enum_values_match_the_types() {
        let words = |name| match key(name).map(|k| k.values) {
            Some(Values::OneOf(words)) => words.to_vec(),
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(words(MODE), Mode::ALL.map(Mode::name));
        assert_eq!(words(COMPRESSION), Compression::ALL.map(Compression::name));
        assert_eq!(words(TYPE), Kind::ALL.map(Kind::name));
    }

    /// The defaults the table states are the ones a bare spec gets.
    #[test]
    fn defaults_match_what_parsing_fills_in() {
        for defaults in ExportDefaults::ALL {
            for (value, kind) in [
                ("type=local,dest=out", Kind::Local),
                ("type=registry,ref=a", Kind::Registry),
            ] {
                let shown = parse_cache_to(value, defaults).unwrap()[0].to_string();
                for key in KEYS.iter().filter(|k| k.applies_to(Flag::CacheTo, kind)) {
                    let default = match defaults {
                        ExportDefaults::Regcache => key.regcache_default.or(key.default),
                        ExportDefaults::BuildKit => key.default,
                        // What a copy takes from its source has no value
                        // in the line: it is left out.
                        ExportDefaults::Source
                            if crate::spec::SourceKeys::ALL.names().contains(&key.name) =>
                        {
                            continue;
                        }
                        ExportDefaults::Source => key.default,
                    };
                    // Prose defaults are pinned by the tests of what they describe.
                    let Some(default) = default.filter(|d| !d.contains(' ')) else {
                        continue;
                    };
                    assert!(
                        shown.contains(&format!("{}={default}", key.name)),
                        "{value} under {defaults:?}: {shown} lacks {}={default}",
                        key.name
                    );
                }
            }
        }
        let from = parse_cache_from("type=local,src=in").unwrap()[0].to_string();
        assert!(from.contains("tag=latest"), "{from}");
    }

    #[test]
    fn every_key_applies_somewhere_and_export_keys_only_to_cache_to() {
        for key in KEYS.iter().filter(|k| k.scope != Scope::Type) {
            let somewhere = [Flag::CacheTo, Flag::CacheFrom]
                .into_iter()
                .any(|flag| Kind::ALL.into_iter().any(|kind| key.applies_to(flag, kind)));
            assert!(somewhere, "{}", key.name);
        }
        for key in export_keys() {
            for kind in Kind::ALL {
                assert!(Kind::accepted_keys(kind, Flag::CacheTo).contains(&key));
                assert!(!Kind::accepted_keys(kind, Flag::CacheFrom).contains(&key));
            }
        }
    }
}
