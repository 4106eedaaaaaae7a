//! `--cache-to` / `--cache-from` values, parsed with buildx's syntax into
//! typed specs.
//!
//! The syntax and defaults follow buildx and BuildKit ≥ 0.22 so that one
//! string works for both tools. Where BuildKit silently ignores a value it
//! does not understand (`mode=MAX`, `mdoe=max`), regcache refuses it: a typo
//! must not quietly turn a max cache into a min one. Parsing does no I/O.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::compression::Compression;
use crate::digest::Digest;
use crate::reference::{DEFAULT_TAG, Reference};

const TYPE: &str = "type";
const REF: &str = "ref";
const INSECURE: &str = "registry.insecure";
const DEST: &str = "dest";
const SRC: &str = "src";
const TAG: &str = "tag";
const DIGEST: &str = "digest";
const MODE: &str = "mode";
const OCI_MEDIATYPES: &str = "oci-mediatypes";
const IMAGE_MANIFEST: &str = "image-manifest";
const COMPRESSION: &str = "compression";
const COMPRESSION_LEVEL: &str = "compression-level";
const FORCE_COMPRESSION: &str = "force-compression";
const IGNORE_ERROR: &str = "ignore-error";

/// Keys that shape an export. On `--cache-from` they are tolerated and
/// ignored, because people pass one string to both flags.
const EXPORT_KEYS: [&str; 7] = [
    MODE,
    OCI_MEDIATYPES,
    IMAGE_MANIFEST,
    COMPRESSION,
    COMPRESSION_LEVEL,
    FORCE_COMPRESSION,
    IGNORE_ERROR,
];

/// buildx cache types that regcache knows of but does not implement.
const UNSUPPORTED_TYPES: [&str; 4] = ["gha", "s3", "azblob", "inline"];

/// What Go's strconv.ParseBool accepts, which is what BuildKit uses.
const TRUE_WORDS: [&str; 6] = ["1", "t", "T", "TRUE", "true", "True"];
const FALSE_WORDS: [&str; 6] = ["0", "f", "F", "FALSE", "false", "False"];

const REF_SHAPE: &str =
    "a ref is [HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST] in lowercase, e.g. ghcr.io/owner/app:cache";

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
            (self.mode, MODE),
            (self.oci_mediatypes, OCI_MEDIATYPES),
            (self.image_manifest, IMAGE_MANIFEST),
            (self.compression, COMPRESSION),
        ]
        .into_iter()
        .filter_map(|(kept, name)| kept.then_some(name))
        .collect()
    }
}

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
        write!(
            f,
            "invalid {} {:?}: {}",
            self.flag, self.value, self.problem
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
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

impl CacheTo {
    /// This destination as it appears in the `--dry-run` plan
    /// (docs/dry-run.md).
    pub fn plan_json(&self) -> Value {
        let (kind, location_key, location, tag) = match &self.target {
            ExportTarget::Registry { reference, .. } => (
                Kind::Registry,
                REF,
                reference.to_string(),
                reference.tag().map(str::to_string),
            ),
            ExportTarget::Local { dest, tag } => (
                Kind::Local,
                DEST,
                dest.to_string_lossy().into_owned(),
                Some(tag.clone()),
            ),
        };
        let p = &self.params;
        let mut plan = Map::new();
        plan.insert("type".into(), kind.name().into());
        plan.insert(location_key.into(), location.into());
        plan.insert("tag".into(), tag.into());
        plan.insert("mode".into(), p.mode.name().into());
        plan.insert("oci_mediatypes".into(), p.oci_mediatypes.into());
        plan.insert("image_manifest".into(), p.image_manifest.into());
        plan.insert("compression".into(), p.compression.name().into());
        // The level the codec will use: an unset level is the codec's own
        // default, which is still a definite number.
        let level = p
            .compression_level
            .or_else(|| p.compression.default_level());
        plan.insert("compression_level".into(), level.into());
        plan.insert("force_compression".into(), p.force_compression.into());
        plan.insert("ignore_error".into(), p.ignore_error.into());
        plan.insert("defaults".into(), self.defaults.name().into());
        Value::Object(plan)
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

    /// This source as it appears in the `--dry-run` plan (docs/dry-run.md).
    pub fn plan_json(&self) -> Value {
        let (kind, location_key, location, tag, digest) = match &self.source {
            ImportSource::Registry { reference, .. } => (
                Kind::Registry,
                REF,
                reference.to_string(),
                reference.tag().map(str::to_string),
                reference.digest(),
            ),
            ImportSource::Local { src, tag, digest } => (
                Kind::Local,
                SRC,
                src.to_string_lossy().into_owned(),
                Some(tag.clone()),
                digest.as_ref(),
            ),
            ImportSource::Pattern { repository, prefix } => match repository {
                RepoTarget::Registry { .. } => (
                    Kind::Registry,
                    REF,
                    repository.tag_location(&format!("{prefix}*")),
                    Some(format!("{prefix}*")),
                    None,
                ),
                RepoTarget::Local { dir } => (
                    Kind::Local,
                    SRC,
                    dir.to_string_lossy().into_owned(),
                    Some(format!("{prefix}*")),
                    None,
                ),
            },
        };
        let mut plan = Map::new();
        plan.insert("type".into(), kind.name().into());
        plan.insert(location_key.into(), location.into());
        plan.insert("tag".into(), tag.into());
        plan.insert("digest".into(), digest.map(Digest::to_string).into());
        plan.insert(
            "pattern".into(),
            matches!(self.source, ImportSource::Pattern { .. }).into(),
        );
        Value::Object(plan)
    }
}

/// The effective spec as one buildx CSV value, every parameter spelled out.
/// An unset compression level is left out rather than written as a word, so
/// that parsing this output gives back an equal spec.
impl fmt::Display for CacheTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut fields: Vec<(&str, Cow<'_, str>)> = Vec::new();
        match &self.target {
            ExportTarget::Registry {
                reference,
                insecure,
            } => {
                fields.push((TYPE, "registry".into()));
                fields.push((REF, reference.to_string().into()));
                fields.push((INSECURE, insecure.to_string().into()));
            }
            ExportTarget::Local { dest, tag } => {
                fields.push((TYPE, "local".into()));
                fields.push((DEST, dest.to_string_lossy()));
                fields.push((TAG, tag.as_str().into()));
            }
        }
        let p = &self.params;
        // A key taken from the source has no value yet: it is left out,
        // which is how it is asked for.
        let kept = p.from_source;
        if !kept.mode {
            fields.push((MODE, p.mode.name().into()));
        }
        if !kept.oci_mediatypes {
            fields.push((OCI_MEDIATYPES, p.oci_mediatypes.to_string().into()));
        }
        if !kept.image_manifest {
            fields.push((IMAGE_MANIFEST, p.image_manifest.to_string().into()));
        }
        if !kept.compression {
            fields.push((COMPRESSION, p.compression.name().into()));
        }
        if let Some(level) = p.compression_level {
            fields.push((COMPRESSION_LEVEL, level.to_string().into()));
        }
        fields.push((FORCE_COMPRESSION, p.force_compression.to_string().into()));
        fields.push((IGNORE_ERROR, p.ignore_error.to_string().into()));
        write_csv(f, &fields)
    }
}

/// The effective spec as one buildx CSV value; parses back to an equal spec.
impl fmt::Display for CacheFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut fields: Vec<(&str, Cow<'_, str>)> = Vec::new();
        match &self.source {
            ImportSource::Registry {
                reference,
                insecure,
            } => {
                fields.push((TYPE, "registry".into()));
                fields.push((REF, reference.to_string().into()));
                fields.push((INSECURE, insecure.to_string().into()));
            }
            ImportSource::Local { src, tag, digest } => {
                fields.push((TYPE, "local".into()));
                fields.push((SRC, src.to_string_lossy()));
                fields.push((TAG, tag.as_str().into()));
                if let Some(digest) = digest {
                    fields.push((DIGEST, digest.to_string().into()));
                }
            }
            ImportSource::Pattern {
                repository: RepoTarget::Registry { insecure, .. },
                prefix: _,
            } => {
                fields.push((TYPE, "registry".into()));
                fields.push((REF, self.location().into()));
                fields.push((INSECURE, insecure.to_string().into()));
            }
            ImportSource::Pattern {
                repository: RepoTarget::Local { dir },
                prefix,
            } => {
                fields.push((TYPE, "local".into()));
                fields.push((SRC, dir.to_string_lossy()));
                fields.push((TAG, format!("{prefix}*").into()));
            }
        }
        write_csv(f, &fields)
    }
}

/// Quotes only the fields that need it, as Go's encoding/csv writer does.
fn write_csv(f: &mut fmt::Formatter<'_>, fields: &[(&str, Cow<'_, str>)]) -> fmt::Result {
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        let field = format!("{key}={value}");
        if field.contains([',', '"', '\n', '\r']) {
            write!(f, "\"{}\"", field.replace('"', "\"\""))?;
        } else {
            f.write_str(&field)?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Registry,
    Local,
}

impl Kind {
    const ALL: [Kind; 2] = [Kind::Registry, Kind::Local];

    fn name(self) -> &'static str {
        match self {
            Kind::Registry => "registry",
            Kind::Local => "local",
        }
    }

    /// The keys of this type's location, before any export parameters.
    fn own_keys(self, flag: Flag) -> &'static [&'static str] {
        match (self, flag) {
            (Kind::Registry, _) => &[REF, INSECURE],
            (Kind::Local, Flag::CacheTo) => &[DEST, TAG],
            (Kind::Local, Flag::CacheFrom) => &[SRC, TAG, DIGEST],
        }
    }

    fn accepted_keys(self, flag: Flag) -> Vec<&'static str> {
        let mut keys = self.own_keys(flag).to_vec();
        if flag == Flag::CacheTo {
            keys.extend(EXPORT_KEYS);
        }
        keys
    }
}

/// Fields of a keyed record, in first-seen order; a later duplicate
/// overwrites the value, as buildx's map does.
#[derive(Default)]
struct Attrs(Vec<(String, String)>);

impl Attrs {
    fn set(&mut self, key: String, value: &str) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.0.push((key, value.to_string())),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn take(&mut self, key: &str) -> Option<String> {
        let at = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(at).1)
    }
}

enum Record {
    Empty,
    Refs(Vec<String>),
    Keyed(Kind, Attrs),
}

struct Parser<'a> {
    flag: Flag,
    value: &'a str,
}

impl Parser<'_> {
    fn error(&self, field: Option<&str>, problem: String, hint: Option<String>) -> SpecError {
        SpecError {
            flag: self.flag,
            value: self.value.to_string(),
            field: field.map(str::to_string),
            problem,
            hint,
        }
    }

    fn bad_value(&self, key: &str, raw: &str, accepted: &str, hint: Option<String>) -> SpecError {
        self.error(
            Some(key),
            format!("invalid value {raw:?} for {key} (accepted: {accepted})"),
            hint,
        )
    }

    fn record(&self) -> Result<Record, SpecError> {
        if self.value.is_empty() {
            tracing::debug!("{} \"\": empty value skipped, as buildx does", self.flag);
            return Ok(Record::Empty);
        }
        let fields = self.fields()?;
        // buildx decides on the raw value, before CSV unquoting.
        if !self.value.contains('=') {
            return Ok(Record::Refs(fields));
        }
        let mut attrs = Attrs::default();
        for field in &fields {
            let Some((key, value)) = field.split_once('=') else {
                return Err(self.error(
                    Some(field),
                    format!("field {field:?} is not key=value"),
                    Some(
                        "once any field has \"=\", every field must be key=value; \
                         a value of bare refs (a,b) has no \"=\" at all"
                            .into(),
                    ),
                ));
            };
            attrs.set(key.to_lowercase(), value);
        }
        let kind = self.kind(attrs.take(TYPE))?;
        self.check_keys(kind, &attrs)?;
        Ok(Record::Keyed(kind, attrs))
    }

    /// Splits the value as one CSV record, as strictly as Go's csv reader
    /// that buildx uses, so a value buildx refuses is refused here too.
    fn fields(&self) -> Result<Vec<String>, SpecError> {
        // Go's single-line reader tolerates one trailing newline.
        let line = self
            .value
            .strip_suffix("\r\n")
            .or_else(|| self.value.strip_suffix('\n'))
            .unwrap_or(self.value);
        self.check_quoting(line)?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(line.as_bytes());
        let mut records = reader.records();
        match (records.next(), records.next()) {
            (Some(Ok(record)), None) => Ok(record.iter().map(str::to_string).collect()),
            (Some(Err(e)), _) => Err(self.error(None, format!("not valid CSV: {e}"), None)),
            (None, _) => Err(self.error(None, "the value is empty".into(), None)),
            (Some(Ok(_)), Some(_)) => {
                Err(self.error(None, "the value holds more than one CSV line".into(), None))
            }
        }
    }

    fn check_quoting(&self, line: &str) -> Result<(), SpecError> {
        #[derive(PartialEq)]
        enum State {
            FieldStart,
            Unquoted,
            Quoted,
            QuoteInQuoted,
        }
        let mut state = State::FieldStart;
        let mut field_start = 0;
        for (at, c) in line.char_indices() {
            state = match (state, c) {
                (State::FieldStart | State::Unquoted | State::QuoteInQuoted, ',') => {
                    field_start = at + 1;
                    State::FieldStart
                }
                (State::FieldStart, '"') => State::Quoted,
                (State::FieldStart | State::Unquoted, '\n' | '\r') => {
                    return Err(self.error(
                        None,
                        "a line break outside quotes: a value is one CSV line".into(),
                        None,
                    ));
                }
                (State::Unquoted, '"') => {
                    let field = line[field_start..].split(',').next().unwrap_or_default();
                    return Err(self.error(
                        None,
                        format!("field {field:?} holds a quote but does not start with one"),
                        Some(format!(
                            "quote the whole field and double the quotes inside it: \"{}\"",
                            field.replace('"', "\"\"")
                        )),
                    ));
                }
                (State::FieldStart | State::Unquoted, _) => State::Unquoted,
                (State::Quoted, '"') => State::QuoteInQuoted,
                (State::Quoted, _) => State::Quoted,
                (State::QuoteInQuoted, '"') => State::Quoted,
                (State::QuoteInQuoted, _) => {
                    return Err(self.error(
                        None,
                        format!("text after the closing quote of a quoted field, at byte {at}"),
                        Some("a quoted field ends at its closing quote; write a quote inside it as \"\"".into()),
                    ));
                }
            };
        }
        if state == State::Quoted {
            return Err(self.error(
                None,
                "a quoted field is never closed".into(),
                Some("add the closing \", or write a quote inside a quoted field as \"\"".into()),
            ));
        }
        Ok(())
    }

    fn kind(&self, raw: Option<String>) -> Result<Kind, SpecError> {
        let supported = "registry, local";
        let raw = match raw.as_deref() {
            None | Some("") => {
                return Err(self.error(
                    Some(TYPE),
                    format!("missing type (accepted: {supported})"),
                    Some(
                        "write type=registry,ref=… or type=local,…; \
                         a value without any \"=\" is read as a list of registry refs"
                            .into(),
                    ),
                ));
            }
            Some(raw) => raw,
        };
        if let Some(kind) = Kind::ALL.into_iter().find(|k| k.name() == raw) {
            return Ok(kind);
        }
        if UNSUPPORTED_TYPES.contains(&raw) {
            return Err(self.error(
                Some(TYPE),
                format!("type {raw:?} is not supported by regcache (supported: {supported})"),
                Some(format!(
                    "regcache reads and writes registries and OCI layout directories only; \
                     keep type={raw} for docker buildx, or use type=registry,ref=… here"
                )),
            ));
        }
        let names = Kind::ALL.map(Kind::name);
        Err(self.bad_value(TYPE, raw, supported, did_you_mean(raw, &names)))
    }

    fn check_keys(&self, kind: Kind, attrs: &Attrs) -> Result<(), SpecError> {
        let accepted = kind.accepted_keys(self.flag);
        let mut ignored = Vec::new();
        for (key, _) in &attrs.0 {
            if accepted.contains(&key.as_str()) {
                continue;
            }
            if self.flag == Flag::CacheFrom && EXPORT_KEYS.contains(&key.as_str()) {
                ignored.push(key.as_str());
                continue;
            }
            return Err(self.unknown_key(kind, key, &accepted));
        }
        if !ignored.is_empty() {
            tracing::warn!(
                "{} {:?}: ignoring {}: --cache-to settings have no effect on an import",
                self.flag,
                self.value,
                ignored.join(", ")
            );
        }
        Ok(())
    }

    fn unknown_key(&self, kind: Kind, key: &str, accepted: &[&str]) -> SpecError {
        let list = format!(
            "accepted keys for type={}: {}",
            kind.name(),
            accepted.join(", ")
        );
        let mut candidates = accepted.to_vec();
        if self.flag == Flag::CacheFrom {
            candidates.extend(EXPORT_KEYS);
        }
        let other_flag = match self.flag {
            Flag::CacheTo => Flag::CacheFrom,
            Flag::CacheFrom => Flag::CacheTo,
        };
        // Prefer "belongs to the other type" over "belongs to the other flag".
        let elsewhere = [self.flag, other_flag]
            .into_iter()
            .flat_map(|flag| Kind::ALL.map(|kind| (flag, kind)))
            .find(|(flag, kind)| kind.accepted_keys(*flag).contains(&key));
        let (problem, lead) = match elsewhere {
            Some(_) if kind == Kind::Registry && (key == TAG || key == DIGEST) => (
                format!("key {key:?} does not apply to type=registry"),
                "a registry cache takes its tag or digest inside ref, \
                 e.g. ref=ghcr.io/owner/app:cache."
                    .to_string(),
            ),
            Some((flag, other)) => {
                let place = if flag == self.flag {
                    format!("type={}", other.name())
                } else {
                    format!("{flag} type={}", other.name())
                };
                (
                    format!(
                        "key {key:?} does not apply to {} type={}",
                        self.flag,
                        kind.name()
                    ),
                    format!("{key:?} only applies to {place}."),
                )
            }
            None => {
                let lead = match did_you_mean(key, &candidates) {
                    Some(_) if candidates.contains(&key.trim()) => format!(
                        "fields are not trimmed (as in buildx): remove the spaces around {:?}.",
                        key.trim()
                    ),
                    Some(suggestion) => suggestion,
                    None => String::new(),
                };
                (format!("unknown key {key:?}"), lead)
            }
        };
        let hint = if lead.is_empty() {
            list
        } else {
            format!("{lead} {list}")
        };
        self.error(Some(key), problem, Some(hint))
    }

    fn cache_to(
        &self,
        kind: Kind,
        attrs: &Attrs,
        defaults: ExportDefaults,
    ) -> Result<CacheTo, SpecError> {
        let target = match kind {
            Kind::Registry => ExportTarget::Registry {
                reference: self.reference(self.required(kind, attrs, REF)?)?,
                insecure: self.optional_bool(attrs, INSECURE, false)?,
            },
            Kind::Local => ExportTarget::Local {
                dest: PathBuf::from(self.required(kind, attrs, DEST)?),
                tag: self.local_tag(attrs)?,
            },
        };
        Ok(CacheTo {
            target,
            params: self.export_params(attrs, defaults.params())?,
            defaults,
        })
    }

    fn cache_from(&self, kind: Kind, attrs: &Attrs) -> Result<CacheFrom, SpecError> {
        let source = match kind {
            Kind::Registry => self.registry_source(
                self.required(kind, attrs, REF)?,
                self.optional_bool(attrs, INSECURE, false)?,
            )?,
            Kind::Local if attrs.get(TAG).is_some_and(|t| t.contains('*')) => {
                let raw = attrs.get(TAG).unwrap_or_default();
                if attrs.get(DIGEST).is_some() {
                    return Err(self.error(
                        Some(DIGEST),
                        format!("tag={raw} is a pattern and digest= pins one manifest; give one"),
                        None,
                    ));
                }
                ImportSource::Pattern {
                    repository: RepoTarget::Local {
                        dir: PathBuf::from(self.required(kind, attrs, SRC)?),
                    },
                    prefix: self.pattern_prefix(TAG, raw, |p| {
                        p.is_empty() || is_oci_ref_name(&format!("{p}x"))
                    })?,
                }
            }
            Kind::Local => ImportSource::Local {
                src: PathBuf::from(self.required(kind, attrs, SRC)?),
                tag: self.local_tag(attrs)?,
                digest: attrs
                    .get(DIGEST)
                    .map(|raw| {
                        raw.parse::<Digest>().map_err(|_| {
                            self.bad_value(
                                DIGEST,
                                raw,
                                "sha256: followed by 64 lowercase hex digits",
                                None,
                            )
                        })
                    })
                    .transpose()?,
            },
        };
        Ok(CacheFrom { source })
    }

    fn required<'a>(&self, kind: Kind, attrs: &'a Attrs, key: &str) -> Result<&'a str, SpecError> {
        let what = match key {
            REF => "an image reference",
            DEST => "the OCI layout directory to write",
            _ => "the OCI layout directory to read",
        };
        let example = match key {
            REF => "type=registry,ref=ghcr.io/owner/app:cache",
            DEST => "type=local,dest=.cache/app",
            _ => "type=local,src=.cache/app",
        };
        match attrs.get(key) {
            Some(value) if !value.is_empty() => Ok(value),
            found => Err(self.error(
                Some(key),
                format!(
                    "type={} needs {key}=… ({what}){}",
                    kind.name(),
                    if found.is_some() {
                        ", got an empty value"
                    } else {
                        ""
                    }
                ),
                Some(format!("e.g. {} {example}", self.flag)),
            )),
        }
    }

    fn reference(&self, raw: &str) -> Result<Reference, SpecError> {
        if raw.contains('*') {
            return Err(self.star_error(REF, raw));
        }
        let reference = Reference::parse(raw).map_err(|e| {
            let lowercase = raw.to_lowercase();
            let hint = if let Some(valid) = &e.valid_tag {
                valid_tag_hint(raw, valid)
            } else if lowercase != raw && Reference::parse(&lowercase).is_ok() {
                format!("did you mean {lowercase:?}? {REF_SHAPE}")
            } else {
                REF_SHAPE.to_string()
            };
            self.error(
                Some(REF),
                format!("invalid ref {raw:?}: {}", e.reason),
                Some(hint),
            )
        })?;
        if self.flag == Flag::CacheTo
            && let Some(digest) = reference.digest()
        {
            return Err(self.error(
                Some(REF),
                format!(
                    "ref {raw:?} pins digest {}, but an export writes a new manifest and needs a tag (accepted: a ref without @digest)",
                    digest.short()
                ),
                Some("drop the @sha256:… part; digests only make sense on --cache-from".into()),
            ));
        }
        Ok(reference)
    }

    /// A `--cache-from` registry ref: one cache, or with a tag ending in
    /// `*` the newest cache whose tag starts with what comes before it.
    fn registry_source(&self, raw: &str, insecure: bool) -> Result<ImportSource, SpecError> {
        let Some(pattern) = raw.strip_suffix('*') else {
            return Ok(ImportSource::Registry {
                reference: self.reference(raw)?,
                insecure,
            });
        };
        let (name, Some(tag_prefix)) = split_tag(pattern) else {
            return Err(self.star_error(REF, raw));
        };
        if name.contains(['*', '@']) || tag_prefix.contains('*') {
            return Err(self.star_error(REF, raw));
        }
        let repository = self.reference(name)?;
        let prefix = self.pattern_prefix(REF, &format!("{tag_prefix}*"), |p| {
            p.is_empty() || Reference::parse(&format!("{name}:{p}x")).is_ok()
        })?;
        Ok(ImportSource::Pattern {
            repository: RepoTarget::Registry {
                repository,
                insecure,
            },
            prefix,
        })
    }

    /// The prefix of a tag pattern `raw` (`cache-main-*`): only a trailing
    /// `*` is a pattern, and what precedes it must be able to start a tag.
    fn pattern_prefix(
        &self,
        field: &str,
        raw: &str,
        starts_a_tag: impl Fn(&str) -> bool,
    ) -> Result<String, SpecError> {
        let Some(prefix) = raw.strip_suffix('*').filter(|p| !p.contains('*')) else {
            return Err(self.star_error(field, raw));
        };
        if self.flag == Flag::CacheTo {
            return Err(self.star_error(field, raw));
        }
        if !starts_a_tag(prefix) {
            let hint = crate::reference::valid_tag(prefix).map(|valid| {
                format!(
                    "tags take letters, digits, \"_\", \".\" and \"-\", starting with a letter, \
                     digit or \"_\": make every other character \"-\", as in {valid}*"
                )
            });
            return Err(self.error(
                Some(field),
                format!("the tag pattern {raw:?} starts no valid tag"),
                hint,
            ));
        }
        Ok(prefix.to_string())
    }

    /// A `*` where it is not a pattern: anywhere on `--cache-to`, and
    /// anywhere but the end of a `--cache-from` tag.
    fn star_error(&self, field: &str, raw: &str) -> SpecError {
        match self.flag {
            Flag::CacheTo => self.error(
                Some(field),
                format!(
                    "{field}={raw} holds \"*\": a tag pattern picks a cache to read, and \
                     --cache-to writes one tag"
                ),
                Some(
                    "name the tag to write, e.g. cache-main; patterns are for --cache-from".into(),
                ),
            ),
            Flag::CacheFrom => self.error(
                Some(field),
                format!(
                    "{field}={raw} holds \"*\" where it is not a pattern: only a \"*\" ending \
                     the tag is one (the newest cache whose tag starts with what precedes it)"
                ),
                Some("e.g. ghcr.io/org/app:cache-main-* or type=local,src=DIR,tag=cache-*".into()),
            ),
        }
    }

    /// `tag` names the cache inside an OCI layout's index.json, so it takes
    /// the grammar of `org.opencontainers.image.ref.name` rather than
    /// Docker's stricter tag grammar: BuildKit accepts e.g. `feature/x`.
    fn local_tag(&self, attrs: &Attrs) -> Result<String, SpecError> {
        match attrs.get(TAG) {
            None => Ok(DEFAULT_TAG.to_string()),
            Some(raw) if raw.contains('*') => Err(self.star_error(TAG, raw)),
            Some(raw) if is_oci_ref_name(raw) => Ok(raw.to_string()),
            Some(raw) => Err(self.bad_value(
                TAG,
                raw,
                "letters and digits joined by one of - . _ : @ + or --, in /-separated parts",
                None,
            )),
        }
    }

    fn export_params(
        &self,
        attrs: &Attrs,
        defaults: ExportParams,
    ) -> Result<ExportParams, SpecError> {
        let mode = match attrs.get(MODE) {
            None => defaults.mode,
            Some(raw) => Mode::from_name(raw).ok_or_else(|| {
                let names = Mode::ALL.map(Mode::name);
                self.bad_value(MODE, raw, &names.join(", "), did_you_mean(raw, &names))
            })?,
        };
        let oci_mediatypes = self.optional_bool(attrs, OCI_MEDIATYPES, defaults.oci_mediatypes)?;
        // BuildKit: an image manifest needs OCI media types, so the default
        // follows oci-mediatypes and an explicit contradiction is refused.
        let image_manifest = self.optional_bool(attrs, IMAGE_MANIFEST, oci_mediatypes)?;
        if image_manifest && !oci_mediatypes {
            return Err(self.error(
                Some(IMAGE_MANIFEST),
                format!(
                    "image-manifest={} needs oci-mediatypes=true, but oci-mediatypes={}",
                    attrs.get(IMAGE_MANIFEST).unwrap_or_default(),
                    attrs.get(OCI_MEDIATYPES).unwrap_or_default()
                ),
                Some(
                    "Docker media types have no image-manifest form: drop image-manifest \
                     (it defaults to false with oci-mediatypes=false) or set oci-mediatypes=true"
                        .into(),
                ),
            ));
        }
        let compression = match attrs.get(COMPRESSION) {
            None => defaults.compression,
            Some(raw) => Compression::from_name(raw).ok_or_else(|| {
                let names = Compression::ALL.map(Compression::name);
                let hint = match raw.to_lowercase().as_str() {
                    "none" | "no" | "off" | "raw" | "tar" => {
                        Some("did you mean \"uncompressed\"?".to_string())
                    }
                    _ => did_you_mean(raw, &names),
                };
                self.bad_value(COMPRESSION, raw, &names.join(", "), hint)
            })?,
        };
        let compression_level = attrs
            .get(COMPRESSION_LEVEL)
            .map(|raw| self.compression_level(compression, raw))
            .transpose()?;
        let force_compression = match attrs.get(FORCE_COMPRESSION) {
            // BuildKit reads a bare `force-compression=` as true.
            Some("") => true,
            _ => self.optional_bool(attrs, FORCE_COMPRESSION, defaults.force_compression)?,
        };
        let kept = defaults.from_source;
        Ok(ExportParams {
            mode,
            oci_mediatypes,
            image_manifest,
            compression,
            compression_level,
            force_compression,
            ignore_error: self.optional_bool(attrs, IGNORE_ERROR, defaults.ignore_error)?,
            from_source: SourceKeys {
                mode: kept.mode && attrs.get(MODE).is_none(),
                oci_mediatypes: kept.oci_mediatypes && attrs.get(OCI_MEDIATYPES).is_none(),
                image_manifest: kept.image_manifest && attrs.get(IMAGE_MANIFEST).is_none(),
                compression: kept.compression && attrs.get(COMPRESSION).is_none(),
            },
        })
    }

    fn compression_level(&self, compression: Compression, raw: &str) -> Result<u32, SpecError> {
        let Some(range) = compression.level_range() else {
            return Err(self.error(
                Some(COMPRESSION_LEVEL),
                format!(
                    "compression-level={raw} has no effect with compression={compression} \
                     (accepted: no compression-level)"
                ),
                Some(
                    "drop compression-level, or choose a compression that takes one: \
                     gzip or estargz (0-9), zstd (0-22)"
                        .into(),
                ),
            ));
        };
        let accepted = format!(
            "an integer from {} to {} for compression={compression}",
            range.start(),
            range.end()
        );
        // Go's ParseInt, which BuildKit uses, also accepts a leading sign.
        let Ok(level) = raw.parse::<i64>() else {
            return Err(self.bad_value(COMPRESSION_LEVEL, raw, &accepted, None));
        };
        match u32::try_from(level).ok().filter(|l| range.contains(l)) {
            Some(level) => Ok(level),
            None => {
                let zstd_fits = Compression::Zstd
                    .level_range()
                    .zip(u32::try_from(level).ok())
                    .is_some_and(|(zstd, l)| zstd.contains(&l));
                let hint = (compression != Compression::Zstd && zstd_fits)
                    .then(|| "compression=zstd takes levels up to 22".to_string());
                Err(self.error(
                    Some(COMPRESSION_LEVEL),
                    format!(
                        "compression-level {raw:?} is out of range for compression={compression} \
                         (accepted: {} to {})",
                        range.start(),
                        range.end()
                    ),
                    hint,
                ))
            }
        }
    }

    fn optional_bool(&self, attrs: &Attrs, key: &str, default: bool) -> Result<bool, SpecError> {
        let Some(raw) = attrs.get(key) else {
            return Ok(default);
        };
        if TRUE_WORDS.contains(&raw) {
            return Ok(true);
        }
        if FALSE_WORDS.contains(&raw) {
            return Ok(false);
        }
        let hint = match raw.to_lowercase().as_str() {
            "true" | "yes" | "y" | "on" | "enable" | "enabled" => Some("did you mean \"true\"?"),
            "false" | "no" | "n" | "off" | "disable" | "disabled" => {
                Some("did you mean \"false\"?")
            }
            _ => None,
        };
        let accepted = [TRUE_WORDS, FALSE_WORDS].concat().join(", ");
        Err(self.bad_value(key, raw, &accepted, hint.map(str::to_string)))
    }
}

/// `did you mean "x"?` for the candidate closest to `input`, if any is close
/// enough to be a plausible typo (or a case slip: values are exact).
fn did_you_mean(input: &str, candidates: &[&str]) -> Option<String> {
    let wanted = input.trim().to_lowercase();
    if wanted.is_empty() {
        return None;
    }
    let exact = candidates.iter().find(|c| **c == wanted);
    // `insecure` for `registry.insecure`, `level` for `compression-level`.
    let suffix = || {
        candidates.iter().find(|c| {
            c.strip_suffix(wanted.as_str())
                .is_some_and(|head| head.ends_with(['.', '-']))
        })
    };
    let similar = || {
        candidates
            .iter()
            .map(|c| (strsim::jaro_winkler(&wanted, c), c))
            .filter(|(score, _)| *score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, c)| c)
    };
    exact
        .or_else(suffix)
        .or_else(similar)
        .map(|c| format!("did you mean {c:?}?"))
}

/// The hint for a ref whose tag is invalid: the ref with its tag made
/// valid, the way a CI script makes a tag of a branch name.
fn valid_tag_hint(raw: &str, valid: &str) -> String {
    let name = match raw.split_once('@') {
        Some((name, _)) => name,
        None => raw,
    };
    let (repository, _) = split_tag(name);
    format!(
        "made valid as for a branch name, every character but letters, digits, \"_\", \".\" \
         and \"-\" replaced by \"-\": {repository}:{valid}"
    )
}

/// A ref without digest split into its name and its tag, as Docker
/// splits it: the first component is a host when it looks like one, and
/// the first `:` after it starts the tag (which may hold anything, `/`
/// included, when it is invalid).
fn split_tag(raw: &str) -> (&str, Option<&str>) {
    let host_len = match raw.split_once('/') {
        Some((first, _)) if first == "localhost" || first.contains(['.', ':']) => first.len() + 1,
        _ => 0,
    };
    match raw[host_len..].find(':') {
        Some(i) => (&raw[..host_len + i], Some(&raw[host_len + i + 1..])),
        None => (raw, None),
    }
}

/// The OCI image-spec grammar for `org.opencontainers.image.ref.name`:
/// `component ("/" component)*`, `component ::= alphanum (separator
/// alphanum)*`, `separator ::= [-._:@+] | "--"`.
fn is_oci_ref_name(name: &str) -> bool {
    name.split('/').all(|component| {
        let bytes = component.as_bytes();
        let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
            return false;
        };
        if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
            return false;
        }
        bytes
            .split(|b| b.is_ascii_alphanumeric())
            .all(|sep| matches!(sep, b"" | b"-" | b"." | b"_" | b":" | b"@" | b"+" | b"--"))
    })
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use serde_json::json;

    use super::*;

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// `value` parsed as `copy` parses it, with BuildKit's defaults: most
    /// tests here are about buildx's syntax and BuildKit's meaning.
    fn one_to(value: &str) -> CacheTo {
        one_to_with(value, ExportDefaults::BuildKit)
    }

    fn one_to_with(value: &str, defaults: ExportDefaults) -> CacheTo {
        let mut specs =
            parse_cache_to(value, defaults).unwrap_or_else(|e| panic!("{value:?}: {e}"));
        assert_eq!(specs.len(), 1, "{value:?}");
        specs.remove(0)
    }

    fn one_from(value: &str) -> CacheFrom {
        let mut specs = parse_cache_from(value).unwrap_or_else(|e| panic!("{value:?}: {e}"));
        assert_eq!(specs.len(), 1, "{value:?}");
        specs.remove(0)
    }

    fn parse_err(flag: Flag, value: &str) -> SpecError {
        let result = match flag {
            Flag::CacheTo => {
                parse_cache_to(value, ExportDefaults::BuildKit).map(|s| format!("{s:?}"))
            }
            Flag::CacheFrom => parse_cache_from(value).map(|s| format!("{s:?}")),
        };
        match result {
            Ok(specs) => panic!("{flag} {value:?} should be refused, parsed as {specs}"),
            Err(e) => e,
        }
    }

    fn reference(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    fn local_dest(spec: &CacheTo) -> (&std::path::Path, &str) {
        match &spec.target {
            ExportTarget::Local { dest, tag } => (dest, tag),
            other => panic!("expected a local target, got {other:?}"),
        }
    }

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

    #[test]
    fn cache_from_defaults() {
        assert_eq!(
            one_from("type=local,src=in"),
            CacheFrom {
                source: ImportSource::Local {
                    src: "in".into(),
                    tag: "latest".into(),
                    digest: None
                }
            }
        );
        assert_eq!(
            one_from("type=registry,ref=alpine"),
            CacheFrom {
                source: ImportSource::Registry {
                    reference: reference("docker.io/library/alpine:latest"),
                    insecure: false
                }
            }
        );
    }

    #[test]
    fn every_location_key_is_parsed() {
        assert_eq!(
            one_to("type=registry,ref=localhost:5000/c:t,registry.insecure=true").target,
            ExportTarget::Registry {
                reference: reference("localhost:5000/c:t"),
                insecure: true
            }
        );
        assert_eq!(
            local_dest(&one_to("type=local,dest=out,tag=feature/x-1.2")),
            (std::path::Path::new("out"), "feature/x-1.2")
        );
        assert_eq!(
            one_from(&format!("type=local,src=in,tag=v1,digest={DIGEST}")).source,
            ImportSource::Local {
                src: "in".into(),
                tag: "v1".into(),
                digest: Some(DIGEST.parse().unwrap())
            }
        );
        assert_eq!(
            one_from(&format!(
                "type=registry,ref=r.io/a@{DIGEST},registry.insecure=1"
            ))
            .source,
            ImportSource::Registry {
                reference: reference(&format!("r.io/a@{DIGEST}")),
                insecure: true
            }
        );
    }

    #[test]
    fn every_export_key_is_parsed() {
        let d = || ExportDefaults::BuildKit.params();
        let cases = [
            (
                "mode=max",
                ExportParams {
                    mode: Mode::Max,
                    ..d()
                },
            ),
            ("mode=min", d()),
            // The image-manifest default follows oci-mediatypes.
            (
                "oci-mediatypes=false",
                ExportParams {
                    oci_mediatypes: false,
                    image_manifest: false,
                    ..d()
                },
            ),
            (
                "oci-mediatypes=false,image-manifest=false",
                ExportParams {
                    oci_mediatypes: false,
                    image_manifest: false,
                    ..d()
                },
            ),
            (
                "image-manifest=false",
                ExportParams {
                    image_manifest: false,
                    ..d()
                },
            ),
            ("oci-mediatypes=true,image-manifest=true", d()),
            (
                "compression=zstd",
                ExportParams {
                    compression: Compression::Zstd,
                    ..d()
                },
            ),
            (
                "compression=estargz",
                ExportParams {
                    compression: Compression::Estargz,
                    ..d()
                },
            ),
            (
                "compression=uncompressed",
                ExportParams {
                    compression: Compression::Uncompressed,
                    ..d()
                },
            ),
            (
                "compression=gzip,compression-level=0",
                ExportParams {
                    compression_level: Some(0),
                    ..d()
                },
            ),
            (
                "compression-level=9",
                ExportParams {
                    compression_level: Some(9),
                    ..d()
                },
            ),
            (
                "compression-level=+5",
                ExportParams {
                    compression_level: Some(5),
                    ..d()
                },
            ),
            (
                "compression=estargz,compression-level=9",
                ExportParams {
                    compression: Compression::Estargz,
                    compression_level: Some(9),
                    ..d()
                },
            ),
            (
                "compression=zstd,compression-level=22",
                ExportParams {
                    compression: Compression::Zstd,
                    compression_level: Some(22),
                    ..d()
                },
            ),
            // Order does not matter: the level is checked against the final codec.
            (
                "compression-level=15,compression=zstd",
                ExportParams {
                    compression: Compression::Zstd,
                    compression_level: Some(15),
                    ..d()
                },
            ),
            (
                "force-compression=",
                ExportParams {
                    force_compression: true,
                    ..d()
                },
            ),
            (
                "force-compression=true",
                ExportParams {
                    force_compression: true,
                    ..d()
                },
            ),
            ("force-compression=0", d()),
            (
                "ignore-error=true",
                ExportParams {
                    ignore_error: true,
                    ..d()
                },
            ),
            ("ignore-error=false", d()),
        ];
        for (fields, expected) in cases {
            for base in ["type=local,dest=out", "type=registry,ref=a"] {
                let value = format!("{base},{fields}");
                assert_eq!(one_to(&value).params, expected, "{value}");
            }
        }
    }

    #[test]
    fn booleans_accept_exactly_what_go_parsebool_accepts() {
        for word in TRUE_WORDS {
            assert!(
                one_to(&format!("type=local,dest=o,ignore-error={word}"))
                    .params
                    .ignore_error,
                "{word}"
            );
        }
        for word in FALSE_WORDS {
            assert!(
                !one_to(&format!("type=local,dest=o,ignore-error={word}"))
                    .params
                    .ignore_error,
                "{word}"
            );
        }
        let accepted = "1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False";
        for (word, hint) in [
            ("yes", Some("did you mean \"true\"?")),
            ("off", Some("did you mean \"false\"?")),
            ("tRUE", Some("did you mean \"true\"?")),
            ("", None),
            ("2", None),
            (" true", None),
            ("true ", None),
        ] {
            let value = format!("type=local,dest=o,ignore-error={word}");
            let err = parse_err(Flag::CacheTo, &value);
            assert_eq!(err.field(), Some("ignore-error"), "{value}");
            assert!(
                err.to_string().contains(&format!(
                    "invalid value {word:?} for ignore-error (accepted: {accepted})"
                )),
                "{err}"
            );
            assert_eq!(err.hint(), hint, "{value}");
        }
    }

    #[test]
    fn unknown_key_message_matches_the_documented_form() {
        let err = parse_err(Flag::CacheTo, "type=local,dest=out,mdoe=max");
        assert_eq!(
            err.to_string(),
            "invalid --cache-to \"type=local,dest=out,mdoe=max\": unknown key \"mdoe\"\n\
             hint: did you mean \"mode\"? accepted keys for type=local: dest, tag, mode, \
             oci-mediatypes, image-manifest, compression, compression-level, force-compression, \
             ignore-error"
        );
        assert_eq!(err.flag(), Flag::CacheTo);
        assert_eq!(err.field(), Some("mdoe"));
        assert_eq!(err.value(), "type=local,dest=out,mdoe=max");
    }

    #[test]
    fn refusals_name_flag_value_field_and_accepted_values() {
        use Flag::{CacheFrom, CacheTo};
        let pinned = format!("type=registry,ref=a@{DIGEST}");
        // (flag, value, field, fragments the message must hold)
        let cases: &[(Flag, &str, Option<&str>, &[&str])] = &[
            (
                CacheTo,
                "dest=out",
                Some("type"),
                &["missing type (accepted: registry, local)"],
            ),
            (CacheTo, "type=,dest=out", Some("type"), &["missing type"]),
            (
                CacheTo,
                "type=gha,scope=x",
                Some("type"),
                &["type \"gha\" is not supported by regcache (supported: registry, local)"],
            ),
            (
                CacheTo,
                "type=s3,bucket=b",
                Some("type"),
                &["type \"s3\" is not supported by regcache"],
            ),
            (
                CacheTo,
                "type=azblob,name=n",
                Some("type"),
                &["type \"azblob\" is not supported"],
            ),
            (
                CacheTo,
                "type=inline",
                Some("type"),
                &["type \"inline\" is not supported"],
            ),
            (
                CacheFrom,
                "type=gha",
                Some("type"),
                &["type \"gha\" is not supported"],
            ),
            (
                CacheTo,
                "type=Registry,ref=a",
                Some("type"),
                &[
                    "invalid value \"Registry\" for type (accepted: registry, local)",
                    "hint: did you mean \"registry\"?",
                ],
            ),
            (
                CacheTo,
                "type=ftp,ref=a",
                Some("type"),
                &["invalid value \"ftp\" for type (accepted: registry, local)"],
            ),
            (
                CacheTo,
                "type=local",
                Some("dest"),
                &["type=local needs dest=…"],
            ),
            (
                CacheTo,
                "type=local,dest=",
                Some("dest"),
                &["type=local needs dest=…", "got an empty value"],
            ),
            (
                CacheTo,
                "type=registry",
                Some("ref"),
                &["type=registry needs ref=…"],
            ),
            (
                CacheFrom,
                "type=registry,ref=",
                Some("ref"),
                &["type=registry needs ref=…", "empty value"],
            ),
            (
                CacheFrom,
                "type=local,tag=t",
                Some("src"),
                &["type=local needs src=…"],
            ),
            (
                CacheTo,
                "type=local,dest=out,compresion=zstd",
                Some("compresion"),
                &[
                    "unknown key \"compresion\"",
                    "hint: did you mean \"compression\"?",
                ],
            ),
            (
                CacheTo,
                "type=registry,ref=a,insecure=true",
                Some("insecure"),
                &[
                    "did you mean \"registry.insecure\"?",
                    "accepted keys for type=registry: ref, registry.insecure, mode,",
                ],
            ),
            (
                CacheTo,
                "type=registry,ref=a,level=3",
                Some("level"),
                &["did you mean \"compression-level\"?"],
            ),
            (
                CacheTo,
                "type=local,dest=out,zzz=1",
                Some("zzz"),
                &["unknown key \"zzz\"\nhint: accepted keys for type=local: dest, tag, mode,"],
            ),
            (
                CacheTo,
                "type=local,dest=out, tag=x",
                Some(" tag"),
                &["unknown key \" tag\"", "remove the spaces around \"tag\""],
            ),
            (
                CacheTo,
                "type=local,dest=out,src=x",
                Some("src"),
                &[
                    "key \"src\" does not apply to --cache-to type=local",
                    "\"src\" only applies to --cache-from type=local.",
                ],
            ),
            (
                CacheFrom,
                "type=local,src=x,dest=y",
                Some("dest"),
                &[
                    "\"dest\" only applies to --cache-to type=local.",
                    "accepted keys for type=local: src, tag, digest",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,ref=x",
                Some("ref"),
                &["\"ref\" only applies to type=registry."],
            ),
            (
                CacheTo,
                "type=local,dest=out,registry.insecure=true",
                Some("registry.insecure"),
                &["\"registry.insecure\" only applies to type=registry."],
            ),
            (
                CacheTo,
                "type=registry,ref=a,tag=x",
                Some("tag"),
                &["takes its tag or digest inside ref"],
            ),
            (
                CacheFrom,
                "type=registry,ref=a,digest=x",
                Some("digest"),
                &["takes its tag or digest inside ref"],
            ),
            (
                CacheFrom,
                "type=local,src=x,mdoe=max",
                Some("mdoe"),
                &["unknown key \"mdoe\"", "did you mean \"mode\"?"],
            ),
            (
                CacheTo,
                "type=local,dest=out,mode=MAX",
                Some("mode"),
                &[
                    "invalid value \"MAX\" for mode (accepted: min, max)",
                    "hint: did you mean \"max\"?",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,mode=",
                Some("mode"),
                &["invalid value \"\" for mode (accepted: min, max)"],
            ),
            (
                CacheTo,
                "type=local,dest=out,mode=full",
                Some("mode"),
                &["invalid value \"full\" for mode"],
            ),
            (
                CacheTo,
                "type=local,dest=out,oci-mediatypes=no",
                Some("oci-mediatypes"),
                &[
                    "invalid value \"no\" for oci-mediatypes",
                    "did you mean \"false\"?",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,image-manifest=maybe",
                Some("image-manifest"),
                &["invalid value \"maybe\" for image-manifest"],
            ),
            (
                CacheTo,
                "type=local,dest=out,force-compression=yes",
                Some("force-compression"),
                &["invalid value \"yes\" for force-compression"],
            ),
            (
                CacheFrom,
                "type=registry,ref=a,registry.insecure=maybe",
                Some("registry.insecure"),
                &["invalid value \"maybe\" for registry.insecure"],
            ),
            (
                CacheTo,
                "type=local,dest=out,oci-mediatypes=false,image-manifest=true",
                Some("image-manifest"),
                &["image-manifest=true needs oci-mediatypes=true, but oci-mediatypes=false"],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression=GZIP",
                Some("compression"),
                &[
                    "invalid value \"GZIP\" for compression (accepted: gzip, estargz, zstd, uncompressed)",
                    "did you mean \"gzip\"?",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression=none",
                Some("compression"),
                &["did you mean \"uncompressed\"?"],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression=zst",
                Some("compression"),
                &["did you mean \"zstd\"?"],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression=brotli",
                Some("compression"),
                &[
                    "invalid value \"brotli\" for compression (accepted: gzip, estargz, zstd, uncompressed)",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression-level=high",
                Some("compression-level"),
                &[
                    "invalid value \"high\" for compression-level (accepted: an integer from 0 to 9 for compression=gzip)",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression-level=",
                Some("compression-level"),
                &["invalid value \"\" for compression-level"],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression-level=1.5",
                Some("compression-level"),
                &["invalid value \"1.5\" for compression-level"],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression-level=10",
                Some("compression-level"),
                &[
                    "compression-level \"10\" is out of range for compression=gzip (accepted: 0 to 9)",
                    "hint: compression=zstd takes levels up to 22",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression=estargz,compression-level=99",
                Some("compression-level"),
                &[
                    "compression-level \"99\" is out of range for compression=estargz (accepted: 0 to 9)",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression=zstd,compression-level=23",
                Some("compression-level"),
                &[
                    "compression-level \"23\" is out of range for compression=zstd (accepted: 0 to 22)",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression-level=-1",
                Some("compression-level"),
                &["compression-level \"-1\" is out of range for compression=gzip"],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression=uncompressed,compression-level=0",
                Some("compression-level"),
                &["compression-level=0 has no effect with compression=uncompressed"],
            ),
            (
                CacheTo,
                "type=local,dest=out,foo",
                Some("foo"),
                &["field \"foo\" is not key=value"],
            ),
            (
                CacheTo,
                "type=local,,dest=out",
                Some(""),
                &["field \"\" is not key=value"],
            ),
            (
                CacheTo,
                "type=local,dest=out,",
                Some(""),
                &["field \"\" is not key=value"],
            ),
            (
                CacheTo,
                "type=registry,ref=User/app",
                Some("ref"),
                &[
                    "invalid ref \"User/app\": repository name \"User/app\" must be lowercase",
                    "hint: did you mean \"user/app\"?",
                ],
            ),
            (
                CacheTo,
                &pinned,
                Some("ref"),
                &["pins digest sha256:e3b0c44298fc", "needs a tag"],
            ),
            (
                CacheTo,
                "type=registry,\"ref=a,b\"",
                Some("ref"),
                &["invalid ref \"a,b\": invalid repository path component \"a,b\""],
            ),
            (
                CacheTo,
                "User/app",
                Some("ref"),
                &["invalid ref \"User/app\""],
            ),
            (
                CacheFrom,
                "a,,b",
                Some("ref"),
                &["invalid ref \"\": the reference is empty"],
            ),
            (CacheFrom, " ", Some("ref"), &["invalid ref \" \""]),
            (CacheFrom, "\"a,b\"", Some("ref"), &["invalid ref \"a,b\""]),
            (
                CacheFrom,
                "type=local,src=x,digest=sha256:abc",
                Some("digest"),
                &[
                    "invalid value \"sha256:abc\" for digest (accepted: sha256: followed by 64 lowercase hex digits)",
                ],
            ),
            (
                CacheFrom,
                "type=local,src=x,tag=",
                Some("tag"),
                &["invalid value \"\" for tag (accepted: letters and digits"],
            ),
            (
                CacheTo,
                "type=local,dest=x,tag=a//b",
                Some("tag"),
                &["invalid value \"a//b\" for tag"],
            ),
            (
                CacheTo,
                "type=local,dest=x,tag=-a",
                Some("tag"),
                &["invalid value \"-a\" for tag"],
            ),
            (
                CacheTo,
                "type=local,dest=my\"dir",
                None,
                &[
                    "field \"dest=my\\\"dir\" holds a quote but does not start with one",
                    "hint: quote the whole field and double the quotes inside it: \"dest=my\"\"dir\"",
                ],
            ),
            (
                CacheTo,
                "type=local,\"dest=a\"b",
                None,
                &["text after the closing quote"],
            ),
            (
                CacheTo,
                "type=local,\"dest=a",
                None,
                &["a quoted field is never closed"],
            ),
            (
                CacheTo,
                "type=local,dest=a\nb",
                None,
                &["a line break outside quotes"],
            ),
            (CacheFrom, "\n", None, &["the value is empty"]),
        ];
        for &(flag, value, field, fragments) in cases {
            let err = parse_err(flag, value);
            let message = err.to_string();
            assert_eq!(err.flag(), flag, "{message}");
            assert_eq!(err.value(), value);
            assert_eq!(err.field(), field, "{message}");
            assert!(
                message.starts_with(&format!("invalid {flag} {value:?}: ")),
                "{message}"
            );
            for fragment in fragments {
                assert!(
                    message.contains(fragment),
                    "{value:?}: missing {fragment:?} in\n{message}"
                );
            }
            assert_eq!(
                message.contains("\nhint: "),
                err.hint().is_some(),
                "{message}"
            );
        }
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn warnings_during(run: impl FnOnce()) -> String {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        tracing::subscriber::with_default(subscriber, run);
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn cache_from_accepts_and_ignores_export_keys_with_a_warning() {
        let value =
            "type=registry,ref=a,mode=max,compression=zstd,compression-level=99,ignore-error=true";
        let mut parsed = None;
        let warnings = warnings_during(|| parsed = Some(parse_cache_from(value)));
        assert_eq!(
            parsed.map(|r| r.unwrap()),
            Some(vec![CacheFrom {
                source: ImportSource::Registry {
                    reference: reference("a"),
                    insecure: false
                }
            }])
        );
        assert!(warnings.contains("WARN"), "{warnings}");
        assert!(
            warnings.contains("ignoring mode, compression, compression-level, ignore-error"),
            "{warnings}"
        );
        assert!(warnings.contains("--cache-from"), "{warnings}");

        let quiet = warnings_during(|| {
            one_from("type=local,src=in");
        });
        assert_eq!(quiet, "");
    }

    #[test]
    fn a_value_without_equals_is_a_list_of_registry_refs() {
        let to = parse_cache_to("a,ghcr.io/o/b:cache", ExportDefaults::BuildKit).unwrap();
        assert_eq!(
            to,
            vec![
                CacheTo {
                    target: ExportTarget::Registry {
                        reference: reference("docker.io/library/a:latest"),
                        insecure: false
                    },
                    params: ExportDefaults::BuildKit.params(),
                    defaults: ExportDefaults::BuildKit,
                },
                CacheTo {
                    target: ExportTarget::Registry {
                        reference: reference("ghcr.io/o/b:cache"),
                        insecure: false
                    },
                    params: ExportDefaults::BuildKit.params(),
                    defaults: ExportDefaults::BuildKit,
                },
            ]
        );
        let from = parse_cache_from(&format!("user/app:cache,x@{DIGEST}")).unwrap();
        let refs: Vec<String> = from
            .iter()
            .map(|c| match &c.source {
                ImportSource::Registry {
                    reference,
                    insecure: false,
                } => reference.to_string(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            refs,
            [
                "docker.io/user/app:cache".to_string(),
                format!("docker.io/library/x@{DIGEST}")
            ]
        );
        assert_eq!(parse_cache_from("user/app").unwrap().len(), 1);
    }

    #[test]
    fn an_empty_value_yields_no_specs_as_in_buildx() {
        for defaults in ExportDefaults::ALL {
            assert_eq!(parse_cache_to("", defaults).unwrap(), vec![]);
        }
        assert_eq!(parse_cache_from("").unwrap(), vec![]);
    }

    #[test]
    fn csv_quoting_follows_go_encoding_csv() {
        let cases = [
            ("type=local,\"dest=a,b\"", "a,b"),
            ("\"type=local\",\"dest=say \"\"hi\"\"\"", "say \"hi\""),
            ("type=local,dest=a=b", "a=b"),
            ("type=local,dest= spaced ", " spaced "),
            ("type=local,dest=out\n", "out"),
            ("type=local,dest=out\r\n", "out"),
            ("type=local,\"dest=line\nbreak\"", "line\nbreak"),
        ];
        for (value, dest) in cases {
            assert_eq!(
                local_dest(&one_to(value)).0,
                std::path::Path::new(dest),
                "{value:?}"
            );
        }
    }

    #[test]
    fn keys_are_case_insensitive_values_exact_and_a_later_duplicate_wins() {
        assert_eq!(
            one_to("type=local,dest=out,MODE=max").params.mode,
            Mode::Max
        );
        assert_eq!(
            local_dest(&one_to("TYPE=local,Dest=Out")).0,
            std::path::Path::new("Out")
        );
        assert_eq!(
            one_to("type=local,dest=out,mode=min,mode=max").params.mode,
            Mode::Max
        );
        assert_eq!(
            one_to("type=local,dest=out,mode=max,Mode=min").params.mode,
            Mode::Min
        );
        assert_eq!(
            local_dest(&one_to("type=local,dest=a,dest=b")).0,
            std::path::Path::new("b")
        );
        assert!(matches!(
            one_to("type=registry,type=local,dest=x").target,
            ExportTarget::Local { .. }
        ));
        // An earlier bad value is forgiven when a later one replaces it.
        assert_eq!(
            one_to("type=local,dest=o,mode=bad,mode=max").params.mode,
            Mode::Max
        );
    }

    #[test]
    fn paths_are_kept_as_given() {
        for dest in ["../x/./y/", "~/cache", "/abs/path", "rel", "C:\\win"] {
            let value = format!("type=local,dest={dest}");
            assert_eq!(local_dest(&one_to(&value)).0, std::path::Path::new(dest));
            match one_from(&format!("type=local,src={dest}")).source {
                ImportSource::Local { src, .. } => assert_eq!(src, std::path::Path::new(dest)),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn plan_json_has_exactly_the_documented_keys() {
        assert_eq!(
            one_to("type=local,dest=out").plan_json(),
            json!({
                "type": "local",
                "dest": "out",
                "tag": "latest",
                "mode": "min",
                "oci_mediatypes": true,
                "image_manifest": true,
                "compression": "gzip",
                "compression_level": 6,
                "force_compression": false,
                "ignore_error": false,
                "defaults": "buildkit",
            })
        );
        let saved = one_to_with("type=local,dest=out", ExportDefaults::Regcache).plan_json();
        assert_eq!(saved["compression"], "zstd");
        assert_eq!(saved["compression_level"], 3);
        assert_eq!(saved["defaults"], "regcache");
        let uncompressed = one_to("type=local,dest=out,compression=uncompressed").plan_json();
        assert_eq!(uncompressed["compression_level"], Value::Null);
        assert_eq!(
            one_to("type=registry,ref=user/app:c,mode=max,compression=zstd,compression-level=3,oci-mediatypes=false,force-compression=true,ignore-error=true").plan_json(),
            json!({
                "type": "registry",
                "ref": "docker.io/user/app:c",
                "tag": "c",
                "mode": "max",
                "oci_mediatypes": false,
                "image_manifest": false,
                "compression": "zstd",
                "compression_level": 3,
                "force_compression": true,
                "ignore_error": true,
                "defaults": "buildkit",
            })
        );
        assert_eq!(
            one_from(&format!("type=registry,ref=r.io/a@{DIGEST}")).plan_json(),
            json!({"type": "registry", "ref": format!("r.io/a@{DIGEST}"), "tag": null, "digest": DIGEST, "pattern": false})
        );
        assert_eq!(
            one_from("type=registry,ref=a").plan_json(),
            json!({"type": "registry", "ref": "docker.io/library/a:latest", "tag": "latest", "digest": null, "pattern": false})
        );
        assert_eq!(
            one_from("type=local,src=in").plan_json(),
            json!({"type": "local", "src": "in", "tag": "latest", "digest": null, "pattern": false})
        );
        assert_eq!(
            one_from("127.0.0.1:5000/app:cache-main-*").plan_json(),
            json!({"type": "registry", "ref": "127.0.0.1:5000/app:cache-main-*", "tag": "cache-main-*", "digest": null, "pattern": true})
        );
        assert_eq!(
            one_from("type=local,src=in,tag=cache-*").plan_json(),
            json!({"type": "local", "src": "in", "tag": "cache-*", "digest": null, "pattern": true})
        );
        assert_eq!(
            one_from(&format!("type=local,src=in,tag=t,digest={DIGEST}")).plan_json(),
            json!({"type": "local", "src": "in", "tag": "t", "digest": DIGEST, "pattern": false})
        );
    }

    #[test]
    fn display_is_the_effective_spec() {
        assert_eq!(
            one_to("type=local,dest=out").to_string(),
            "type=local,dest=out,tag=latest,mode=min,oci-mediatypes=true,image-manifest=true,\
             compression=gzip,force-compression=false,ignore-error=false"
        );
        assert_eq!(
            one_to("user/app").to_string(),
            "type=registry,ref=docker.io/user/app:latest,registry.insecure=false,mode=min,\
             oci-mediatypes=true,image-manifest=true,compression=gzip,force-compression=false,\
             ignore-error=false"
        );
        assert_eq!(
            one_to("type=local,\"dest=a,b\",compression=zstd,compression-level=3").to_string(),
            "type=local,\"dest=a,b\",tag=latest,mode=min,oci-mediatypes=true,image-manifest=true,\
             compression=zstd,compression-level=3,force-compression=false,ignore-error=false"
        );
        assert_eq!(
            one_from(&format!("type=local,src=in,digest={DIGEST}")).to_string(),
            format!("type=local,src=in,tag=latest,digest={DIGEST}")
        );
        assert_eq!(
            one_from("alpine").to_string(),
            "type=registry,ref=docker.io/library/alpine:latest,registry.insecure=false"
        );
    }

    #[test]
    fn a_trailing_star_on_a_cache_from_tag_is_a_pattern() {
        let pattern = |value: &str| match one_from(value).source {
            ImportSource::Pattern { repository, prefix } => (repository.location(), prefix),
            other => panic!("{value}: not a pattern: {other:?}"),
        };
        assert_eq!(
            pattern("127.0.0.1:5000/app:cache-main-*"),
            ("127.0.0.1:5000/app".into(), "cache-main-".into())
        );
        assert_eq!(
            pattern("type=registry,ref=user/app:*"),
            ("docker.io/user/app".into(), String::new())
        );
        assert_eq!(
            pattern("type=local,src=/c,tag=cache-*"),
            ("/c".into(), "cache-".into())
        );
        let from_err = |value: &str| parse_cache_from(value).unwrap_err();
        for (value, field) in [
            ("127.0.0.1:5000/app:cache-*-main", "ref"),
            ("127.0.0.1:5000/app*", "ref"),
            ("127.0.0.1:5000/ap*p:x", "ref"),
            ("127.0.0.1:5000/app:**", "ref"),
            ("type=local,src=/c,tag=c*x", "tag"),
        ] {
            let err = from_err(value);
            assert_eq!(err.field(), Some(field), "{value}: {err}");
            assert!(
                err.to_string().contains("where it is not a pattern"),
                "{value}: {err}"
            );
        }
        let err = from_err(&format!("type=local,src=/c,tag=cache-*,digest={DIGEST}"));
        assert_eq!(err.field(), Some("digest"), "{err}");
        let err = from_err("127.0.0.1:5000/app:.cache-*");
        assert!(err.to_string().contains("starts no valid tag"), "{err}");
        assert!(err.hint().is_some_and(|h| h.contains("cache-*")), "{err}");
        for (value, field) in [
            ("127.0.0.1:5000/app:cache-main-*", "ref"),
            ("type=registry,ref=r.io/a:*", "ref"),
            ("type=local,dest=/c,tag=cache-*", "tag"),
        ] {
            let err = parse_cache_to(value, ExportDefaults::BuildKit).unwrap_err();
            assert_eq!(err.field(), Some(field), "{value}: {err}");
            assert!(
                err.to_string().contains("--cache-to writes one tag"),
                "{value}: {err}"
            );
        }
    }

    #[test]
    fn an_invalid_tag_hints_at_the_tag_made_valid() {
        let err = parse_cache_from("127.0.0.1:5000/app:cache-feature/foo").unwrap_err();
        assert!(
            err.to_string()
                .contains("invalid tag \"cache-feature/foo\""),
            "{err}"
        );
        assert!(
            err.hint()
                .is_some_and(|h| h.ends_with("127.0.0.1:5000/app:cache-feature-foo")),
            "{err}"
        );
        let err = parse_cache_to(
            "type=registry,ref=ghcr.io/o/a:-fix/ü#x",
            ExportDefaults::Regcache,
        )
        .unwrap_err();
        assert!(
            err.hint()
                .is_some_and(|h| h.ends_with("ghcr.io/o/a:fix---x")),
            "{err}"
        );
    }

    #[test]
    fn display_parses_back_to_an_equal_spec() {
        let to = [
            "type=local,dest=out",
            "user/app",
            "type=registry,ref=localhost:5000/c:t,registry.insecure=true,mode=max,ignore-error=1",
            "type=local,\"dest=a,b\",tag=feature/x,compression=zstd,compression-level=0",
            "type=local,\"dest=say \"\"hi\"\"\",force-compression=",
            "type=local,\"dest=line\nbreak\",oci-mediatypes=false",
            "type=local,dest= spaced ,compression=uncompressed,image-manifest=false",
            "type=registry,ref=[::1]:5000/a,compression=estargz,compression-level=9",
        ];
        for value in to {
            let spec = one_to(value);
            let shown = spec.to_string();
            assert_eq!(
                parse_cache_to(&shown, ExportDefaults::BuildKit),
                Ok(vec![spec]),
                "{value:?} shown as {shown:?}"
            );
        }
        let digested = format!("type=local,src=in,tag=t,digest={DIGEST}");
        let pinned = format!("type=registry,ref=r.io/a:t@{DIGEST},registry.insecure=true");
        let from = [
            "alpine",
            "type=local,src=in",
            "type=local,\"src=a,b\"",
            &digested,
            &pinned,
            "127.0.0.1:5000/app:cache-main-*",
            "type=registry,ref=r.io/a:*,registry.insecure=true",
            "type=local,src=in,tag=cache-*",
        ];
        for value in from {
            let spec = one_from(value);
            let shown = spec.to_string();
            assert_eq!(
                parse_cache_from(&shown),
                Ok(vec![spec]),
                "{value:?} shown as {shown:?}"
            );
        }
    }

    #[test]
    fn mode_names_and_serialization() {
        assert_eq!(Mode::from_name("max"), Some(Mode::Max));
        assert_eq!(Mode::from_name("Max"), None);
        assert_eq!(Mode::Min.name(), "min");
        assert_eq!(serde_json::to_string(&Mode::Max).unwrap(), "\"max\"");
        assert_eq!(Flag::CacheFrom.to_string(), "--cache-from");
    }

    /// The examples in docs/dry-run.md are what this module produces.
    #[test]
    fn dry_run_doc_examples_match() {
        let doc = include_str!("../docs/dry-run.md");
        // The example is a `run`, so regcache's defaults.
        let to = [
            "type=registry,ref=ghcr.io/acme/app:cache-main,mode=max",
            "type=local,dest=.cache/app,compression=gzip",
        ]
        .map(|value| one_to_with(value, ExportDefaults::Regcache));
        let from = [
            one_from("user/app:cache-main"),
            one_from("user/app:cache-*"),
        ];
        let json_block = doc
            .split("```json\n")
            .nth(1)
            .and_then(|rest| rest.split("\n```").next())
            .unwrap();
        let plan: Value = serde_json::from_str(json_block).unwrap();
        assert_eq!(
            plan["cache_to"],
            json!(to.iter().map(CacheTo::plan_json).collect::<Vec<_>>())
        );
        assert_eq!(
            plan["cache_from"],
            json!(from.iter().map(CacheFrom::plan_json).collect::<Vec<_>>())
        );
        for line in [
            to[0].to_string(),
            to[1].to_string(),
            from[0].to_string(),
            from[1].to_string(),
        ] {
            assert!(doc.contains(&format!("\n{line}\n")), "doc lacks {line}");
        }
    }
}
