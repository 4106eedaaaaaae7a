//! `--cache-to` / `--cache-from` values, parsed with buildx's syntax into
//! typed specs.
//!
//! The syntax and defaults follow buildx and BuildKit ≥ 0.22 so that one
//! string works for both tools. Where BuildKit silently ignores a value it
//! does not understand (`mode=MAX`, `mdoe=max`), regcache refuses it: a typo
//! must not quietly turn a max cache into a min one. Parsing does no I/O.

mod csv;
mod defaults;
pub mod help;
pub mod keys;
mod parse;
mod pattern;
mod render;
#[cfg(test)]
mod test_support;
mod values;

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::compression::Compression;
use crate::digest::Digest;
use crate::reference::Reference;

pub use defaults::ExportDefaults;
use parse::{Parser, Record};

/// Which flag a value came from; error messages and exit codes depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    CacheTo,
    CacheFrom,
}

impl Flag {
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::CacheTo => "--cache-to",
            Flag::CacheFrom => "--cache-from",
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Min,
    Max,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::Min, Mode::Max];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Min => "min",
            Mode::Max => "max",
        }
    }

    pub fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a cache is written, every field at its effective value.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportParams {
    pub mode: Mode,
    pub oci_mediatypes: bool,
    pub image_manifest: bool,
    pub compression: Compression,
    /// `None` means the codec's own default level.
    pub compression_level: Option<u32>,
    pub force_compression: bool,
    pub ignore_error: bool,
    /// The keys that take the source's value instead of the field's:
    /// those a `copy --cache-to` leaves out. Empty under any other
    /// defaults, where nothing has a source.
    pub from_source: SourceKeys,
}

/// The export keys a copy can take from the cache it reads, each `true`
/// when it does. With `compression` kept, each layer keeps its codec and,
/// unless `compression-level` is given, its level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceKeys {
    pub mode: bool,
    pub oci_mediatypes: bool,
    pub image_manifest: bool,
    pub compression: bool,
}

impl SourceKeys {
    pub const ALL: SourceKeys = SourceKeys {
        mode: true,
        oci_mediatypes: true,
        image_manifest: true,
        compression: true,
    };

    pub fn any(self) -> bool {
        self != SourceKeys::default()
    }

    /// The spec keys taken from the source, as written in a spec.
    pub fn names(self) -> Vec<&'static str> {
        [
            (self.mode, keys::MODE),
            (self.oci_mediatypes, keys::OCI_MEDIATYPES),
            (self.image_manifest, keys::IMAGE_MANIFEST),
            (self.compression, keys::COMPRESSION),
        ]
        .into_iter()
        .filter_map(|(kept, name)| kept.then_some(name))
        .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExportTarget {
    Registry {
        reference: Reference,
        insecure: bool,
    },
    /// An OCI layout directory; `tag` names the cache in its index.json.
    Local { dest: PathBuf, tag: String },
}

/// One `--cache-to` destination.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheTo {
    pub target: ExportTarget,
    pub params: ExportParams,
    /// The defaults `params` were filled in from, which the plan shows.
    pub defaults: ExportDefaults,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImportSource {
    Registry {
        reference: Reference,
        insecure: bool,
    },
    /// An OCI layout directory; a `digest`, when given, wins over `tag`.
    Local {
        src: PathBuf,
        tag: String,
        digest: Option<Digest>,
    },
    /// A tag ending in `*` (`ref=…/app:cache-main-*`, `tag=cache-*`): the
    /// newest cache in `repository` whose tag starts with `prefix`, as
    /// actions/cache's `restore-keys`. buildx refuses `*` in a tag, so no
    /// buildx spec means something else.
    Pattern {
        repository: RepoTarget,
        prefix: String,
    },
}

/// A whole registry repository or local cache directory: what `prune`
/// and `ls` work on, and where a tag pattern is looked up.
#[derive(Debug, Clone, PartialEq)]
pub enum RepoTarget {
    Registry {
        /// Names the repository; its tag is not used.
        repository: Reference,
        insecure: bool,
    },
    Local {
        dir: PathBuf,
    },
}

impl RepoTarget {
    /// `registry/repository`, or the directory.
    pub fn location(&self) -> String {
        match self {
            RepoTarget::Registry { repository, .. } => repository.name(),
            RepoTarget::Local { dir } => dir.display().to_string(),
        }
    }

    /// `tag` in this repository as messages name it: a registry ref, or
    /// `DIR:tag` as [`CacheFrom::location`] writes a local one.
    pub fn tag_location(&self, tag: &str) -> String {
        format!("{}:{tag}", self.location())
    }
}

/// One `--cache-from` source.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheFrom {
    pub source: ImportSource,
}

/// A refused spec. Its Display names the flag, the value as given, the field
/// and what is accepted, then a `hint:` line where one helps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    flag: Flag,
    value: String,
    field: Option<String>,
    problem: String,
    hint: Option<String>,
}

impl SpecError {
    /// The flag the bad value was given to.
    pub fn flag(&self) -> Flag {
        self.flag
    }

    /// The whole flag value, as given.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The key at fault, when one is (`ref` for a bare ref list).
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hint is not part of the message: `main` prints it last,
        // once, as `hint:` (see `OpsError::hint`).
        write!(
            f,
            "invalid {} {:?}: {}",
            self.flag, self.value, self.problem
        )
    }
}

impl std::error::Error for SpecError {}

/// Parses one `--cache-to` value, filling in what it leaves out from
/// `defaults`. A value of bare refs (`a,b`) yields one registry spec per
/// ref; an empty value yields none, as buildx skips it.
pub fn parse_cache_to(value: &str, defaults: ExportDefaults) -> Result<Vec<CacheTo>, SpecError> {
    let parser = Parser {
        flag: Flag::CacheTo,
        value,
    };
    match parser.record()? {
        Record::Empty => Ok(Vec::new()),
        Record::Refs(refs) => refs
            .iter()
            .map(|raw| {
                Ok(CacheTo {
                    target: ExportTarget::Registry {
                        reference: parser.reference(raw)?,
                        insecure: false,
                    },
                    params: defaults.params(),
                    defaults,
                })
            })
            .collect(),
        Record::Keyed(kind, attrs) => Ok(vec![parser.cache_to(kind, &attrs, defaults)?]),
    }
}

/// Parses one `--cache-from` value; see [`parse_cache_to`].
pub fn parse_cache_from(value: &str) -> Result<Vec<CacheFrom>, SpecError> {
    let parser = Parser {
        flag: Flag::CacheFrom,
        value,
    };
    match parser.record()? {
        Record::Empty => Ok(Vec::new()),
        Record::Refs(refs) => refs
            .iter()
            .map(|raw| {
                Ok(CacheFrom {
                    source: parser.registry_source(raw, false)?,
                })
            })
            .collect(),
        Record::Keyed(kind, attrs) => Ok(vec![parser.cache_from(kind, &attrs)?]),
    }
}

impl ExportTarget {
    /// The location as users name it in messages and reports: the
    /// normalised registry ref, or the local `dest` as given.
    pub fn location(&self) -> String {
        match self {
            ExportTarget::Registry { reference, .. } => reference.to_string(),
            ExportTarget::Local { dest, tag } => format!("{}:{tag}", dest.display()),
        }
    }
}

impl CacheFrom {
    /// The location as users name it in messages: the normalised registry
    /// ref, or the local `src` with its tag or digest.
    pub fn location(&self) -> String {
        match &self.source {
            ImportSource::Registry { reference, .. } => reference.to_string(),
            ImportSource::Local { src, tag, digest } => match digest {
                Some(digest) => format!("{}@{digest}", src.display()),
                None => format!("{}:{tag}", src.display()),
            },
            ImportSource::Pattern { repository, prefix } => {
                repository.tag_location(&format!("{prefix}*"))
            }
        }
    }
}
