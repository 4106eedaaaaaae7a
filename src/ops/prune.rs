//! `regcache prune`: remove cache tags nobody needs any more.
//!
//! The tags of one repository (or one OCI-layout directory) that match the
//! `--tag` patterns are read as cache images; their age is the cache's own
//! creation time (the newest `createdAt` of the config's results, else the
//! newest `buildkit/createdat` layer annotation), never the registry's
//! upload time. The newest `--keep N` and those younger than
//! `--older-than` stay; the rest go. Nothing that is not a cache, or whose
//! age cannot be read, is ever deleted.
//!
//! In a registry a manifest is deleted by digest, which removes every tag
//! pointing at it: one that a kept or unmatched tag also points at stays.
//! In a directory the index entries go, then every blob no remaining
//! manifest references (what buildx's `reset=true` does at export).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};

use super::OpsError;
use super::spool;
use crate::digest::Digest;
use crate::image::media_types::ANNOTATION_CREATED_AT;
use crate::image::{CacheConfig, CacheImage, ImageError, RawManifest};
use crate::progress::{human_bytes, printable};
use crate::reference::Reference;
use crate::spec::{ExportDefaults, ExportTarget, ImportSource, parse_cache_from, parse_cache_to};
use crate::store::local::LocalStore;
use crate::store::registry::RegistryStore;
use crate::store::registry::manage::Deleted;
use crate::store::{CacheStore, StoreError, StoreOptions};

/// Where to prune: a registry repository or a local OCI layout.
#[derive(Debug, Clone, PartialEq)]
pub enum PruneTarget {
    Registry {
        reference: Reference,
        insecure: bool,
    },
    Local {
        dir: PathBuf,
    },
}

impl PruneTarget {
    /// `ghcr.io/org/app`, `type=registry,ref=ghcr.io/org/app`,
    /// `type=local,dest=DIR` or `type=local,src=DIR`. A tag or digest in
    /// the target is refused: tags are chosen with `--tag`.
    pub fn parse(value: &str) -> Result<PruneTarget, OpsError> {
        let usage = |message: String, hint: &str| OpsError::Usage {
            message,
            hint: Some(hint.to_string()),
        };
        let tag_hint = "TARGET names a whole repository or directory; choose tags with \
                        --tag PATTERN, e.g. --tag 'cache-*'";
        let value = value.trim();
        if value.is_empty() {
            return Err(usage(
                "the prune TARGET is empty".into(),
                "give a repository (ghcr.io/org/app) or type=local,dest=DIR",
            ));
        }
        let fields: Vec<(&str, &str)> = value
            .split(',')
            .filter_map(|field| field.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let raw_ref = if fields.is_empty() {
            Some(value)
        } else {
            if let Some((key, _)) = fields.iter().find(|(k, _)| matches!(*k, "tag" | "digest")) {
                return Err(usage(
                    format!("prune TARGET {value:?} has a {key}= field"),
                    tag_hint,
                ));
            }
            fields.iter().find(|(k, _)| *k == "ref").map(|(_, v)| *v)
        };
        if let Some(raw) = raw_ref {
            let last = raw.rsplit('/').next().unwrap_or(raw);
            if raw.contains('@') || last.contains(':') {
                return Err(usage(
                    format!("prune TARGET {raw:?} names a tag or digest"),
                    tag_hint,
                ));
            }
        }
        let reword = |err: crate::spec::SpecError| {
            let text = err.to_string();
            let text = text.replacen("--cache-from", "prune TARGET", 1).replacen(
                "--cache-to",
                "prune TARGET",
                1,
            );
            OpsError::Usage {
                message: text,
                hint: None,
            }
        };
        let from = parse_cache_from(value);
        let source = match from {
            Ok(mut specs) if specs.len() == 1 => Some(specs.remove(0).source),
            Ok(specs) => {
                return Err(usage(
                    format!("prune takes one TARGET, {value:?} names {}", specs.len()),
                    "prune one repository at a time",
                ));
            }
            // Only the location is kept: the export defaults do not matter.
            Err(err) => match parse_cache_to(value, ExportDefaults::BuildKit) {
                Ok(mut specs) if specs.len() == 1 => {
                    return Ok(match specs.remove(0).target {
                        ExportTarget::Registry {
                            reference,
                            insecure,
                        } => PruneTarget::Registry {
                            reference,
                            insecure,
                        },
                        ExportTarget::Local { dest, .. } => PruneTarget::Local { dir: dest },
                    });
                }
                _ => return Err(reword(err)),
            },
        };
        Ok(match source.expect("set above") {
            ImportSource::Registry {
                reference,
                insecure,
            } => PruneTarget::Registry {
                reference,
                insecure,
            },
            ImportSource::Local { src, .. } => PruneTarget::Local { dir: src },
        })
    }

    /// `registry/repository`, or the directory.
    pub fn location(&self) -> String {
        match self {
            PruneTarget::Registry { reference, .. } => reference.name(),
            PruneTarget::Local { dir } => dir.display().to_string(),
        }
    }

    fn json(&self) -> Value {
        match self {
            PruneTarget::Registry { reference, .. } => {
                json!({"type": "registry", "ref": reference.name()})
            }
            PruneTarget::Local { dir } => {
                json!({"type": "local", "dir": dir.to_string_lossy()})
            }
        }
    }
}

/// Which tags are considered and which of them stay.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Keep the newest N matching caches.
    pub keep: Option<usize>,
    /// Keep caches younger than this; `older_than_text` is how the user
    /// wrote it, for messages.
    pub older_than: Option<Duration>,
    pub older_than_text: Option<String>,
    /// Globs (`*`, `?`) a tag must match one of; empty: every tag.
    pub tags: Vec<String>,
    /// Globs of tags never touched.
    pub exclude: Vec<String>,
}

impl Policy {
    pub fn matches(&self, tag: &str) -> bool {
        (self.tags.is_empty() || self.tags.iter().any(|p| glob_match(p, tag)))
            && !self.exclude.iter().any(|p| glob_match(p, tag))
    }

    fn json(&self, blobs_only: bool) -> Value {
        json!({
            "keep": self.keep,
            "older_than": self.older_than_text,
            "older_than_seconds": self.older_than.map(|d| d.as_secs()),
            "tags": self.tags,
            "exclude": self.exclude,
            "blobs_only": blobs_only,
        })
    }
}

pub struct PruneOptions {
    pub target: PruneTarget,
    pub policy: Policy,
    /// Local only: remove unreferenced blobs, no tag.
    pub blobs_only: bool,
    pub dry_run: bool,
    pub store: StoreOptions,
    /// Ages are measured from here.
    pub now: SystemTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Kept,
    Deleted,
    WouldDelete,
    /// Not a cache, or unreadable: never deleted.
    Skipped,
    /// The delete was attempted and failed.
    Failed,
}

impl Action {
    fn label(self) -> &'static str {
        match self {
            Action::Kept => "kept",
            Action::Deleted => "deleted",
            Action::WouldDelete => "would delete",
            Action::Skipped => "skipped",
            Action::Failed => "failed",
        }
    }
}

/// One matching tag and what happened to it.
#[derive(Debug, Clone, Serialize)]
pub struct TagReport {
    pub tag: String,
    pub digest: Option<Digest>,
    /// The cache's creation time as it wrote it.
    pub created_at: Option<String>,
    pub age_seconds: Option<u64>,
    pub action: Action,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BlobReport {
    pub removed: usize,
    pub removed_bytes: u64,
    pub kept: usize,
    /// Why no blob was removed although some may be unreferenced.
    pub skipped_reason: Option<String>,
}

/// Local: a spool directory a killed save left in the cache directory.
#[derive(Debug, Clone, Serialize)]
pub struct SpoolReport {
    pub path: String,
    pub bytes: u64,
}

pub struct PruneReport {
    pub target: PruneTarget,
    pub dry_run: bool,
    pub blobs_only: bool,
    pub policy: Policy,
    /// Matching tags, newest first; unreadable ones last.
    pub tags: Vec<TagReport>,
    /// Tags that did not match the patterns (or were excluded): untouched.
    pub unmatched: usize,
    /// Local: index entries without a tag, never touched.
    pub untagged: usize,
    /// Registry: the manifests deleted (or to delete, in a dry run).
    pub manifests: Vec<Digest>,
    pub blobs: Option<BlobReport>,
    /// Local: spools of killed saves, removed (or, in a dry run, to be).
    pub spools: Option<Vec<SpoolReport>>,
    /// Said on stderr and in the report (a missing repository, say).
    pub notes: Vec<String>,
    pub error: Option<String>,
}

impl PruneReport {
    fn new(options: &PruneOptions) -> PruneReport {
        PruneReport {
            target: options.target.clone(),
            dry_run: options.dry_run,
            blobs_only: options.blobs_only,
            policy: options.policy.clone(),
            tags: Vec::new(),
            unmatched: 0,
            untagged: 0,
            manifests: Vec::new(),
            blobs: None,
            spools: None,
            notes: Vec::new(),
            error: None,
        }
    }

    fn count(&self, action: Action) -> usize {
        self.tags.iter().filter(|t| t.action == action).count()
    }

    /// The report as `--json` and `--metadata-file` give it (docs/prune.md).
    pub fn to_json(&self, seconds: f64) -> Value {
        json!({
            "command": "prune",
            "target": self.target.json(),
            "dry_run": self.dry_run,
            "policy": self.policy.json(self.blobs_only),
            "tags": self.tags,
            "unmatched_tags": self.unmatched,
            "untagged_manifests": self.untagged,
            "manifests": self.manifests,
            "blobs": self.blobs,
            "spools": self.spools,
            "notes": self.notes,
            "counts": {
                "kept": self.count(Action::Kept),
                "deleted": self.count(Action::Deleted),
                "would_delete": self.count(Action::WouldDelete),
                "skipped": self.count(Action::Skipped),
                "failed": self.count(Action::Failed),
            },
            "seconds": seconds,
            "error": self.error,
        })
    }

    /// The table on stdout: one row per matching tag.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        if self.tags.is_empty() {
            return out;
        }
        let rows: Vec<[String; 5]> = self
            .tags
            .iter()
            .map(|t| {
                [
                    printable(&t.tag).into_owned(),
                    t.digest.as_ref().map_or_else(|| "-".into(), Digest::short),
                    t.age_seconds.map_or_else(|| "-".into(), human_age),
                    t.action.label().to_string(),
                    printable(&t.reason).into_owned(),
                ]
            })
            .collect();
        let header = ["TAG", "DIGEST", "AGE", "ACTION", "REASON"];
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: [&str; 5]| {
            let mut text = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i == 4 {
                    text.push_str(cell);
                } else {
                    let pad = widths[i] - cell.chars().count();
                    text.push_str(cell);
                    text.push_str(&" ".repeat(pad + 2));
                }
            }
            text.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(header));
        for row in &rows {
            let _ = writeln!(
                out,
                "{}",
                line([&row[0], &row[1], &row[2], &row[3], &row[4]])
            );
        }
        out
    }

    /// The summary on stderr.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for note in &self.notes {
            let _ = writeln!(out, "note: {}", printable(note));
        }
        let location = printable(&self.target.location()).into_owned();
        let registry = matches!(self.target, PruneTarget::Registry { .. });
        if !self.blobs_only {
            let (gone, verb) = if self.dry_run {
                (self.count(Action::WouldDelete), "would delete")
            } else {
                (self.count(Action::Deleted), "deleted")
            };
            let mut parts = vec![format!("{} kept", self.count(Action::Kept))];
            for (action, word) in [
                (Action::Skipped, "skipped (not caches or unreadable)"),
                (Action::Failed, "failed"),
            ] {
                let n = self.count(action);
                if n > 0 {
                    parts.push(format!("{n} {word}"));
                }
            }
            let manifests = if registry && gone > 0 {
                format!(
                    " ({} manifest{})",
                    self.manifests.len(),
                    plural(self.manifests.len())
                )
            } else {
                String::new()
            };
            let _ = write!(
                out,
                "{}{location}: {verb} {gone} of {} matching tag{}{manifests}; {}",
                if self.dry_run { "dry run: " } else { "" },
                self.tags.len(),
                plural(self.tags.len()),
                parts.join(", ")
            );
            if self.unmatched > 0 {
                let _ = write!(
                    out,
                    "; {} other tag{} untouched",
                    self.unmatched,
                    plural(self.unmatched)
                );
            }
            out.push('\n');
        }
        if let Some(blobs) = &self.blobs {
            match &blobs.skipped_reason {
                Some(reason) => {
                    let _ = writeln!(out, "{location}: no blob removed: {}", printable(reason));
                }
                None => {
                    let _ = writeln!(
                        out,
                        "{}{location}: {} {} unreferenced blob{} ({}); {} blob{} still referenced",
                        if self.dry_run { "dry run: " } else { "" },
                        if self.dry_run {
                            "would remove"
                        } else {
                            "removed"
                        },
                        blobs.removed,
                        plural(blobs.removed),
                        human_bytes(blobs.removed_bytes),
                        blobs.kept,
                        plural(blobs.kept),
                    );
                }
            }
        }
        if let Some(spools) = self.spools.as_ref().filter(|s| !s.is_empty()) {
            let _ = writeln!(
                out,
                "{}{location}: {} {} spool director{} of killed saves ({}):",
                if self.dry_run { "dry run: " } else { "" },
                if self.dry_run {
                    "would remove"
                } else {
                    "removed"
                },
                spools.len(),
                if spools.len() == 1 { "y" } else { "ies" },
                human_bytes(spools.iter().map(|s| s.bytes).sum()),
            );
            for spool in spools {
                let _ = writeln!(
                    out,
                    "  {} ({})",
                    printable(&spool.path),
                    human_bytes(spool.bytes)
                );
            }
        }
        if registry && !self.dry_run && self.count(Action::Deleted) > 0 {
            let _ = writeln!(
                out,
                "the registry frees the blobs of deleted manifests when its garbage collection runs \
                 (Distribution: `registry garbage-collect`)"
            );
        }
        out
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `3d4h`, `36m`, `12s`: the two largest units of an age.
pub fn human_age(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    let (big, small) = if d > 0 {
        ((d, 'd'), (h, 'h'))
    } else if h > 0 {
        ((h, 'h'), (m, 'm'))
    } else if m > 0 {
        ((m, 'm'), (s, 's'))
    } else {
        return format!("{s}s");
    };
    if small.0 == 0 {
        format!("{}{}", big.0, big.1)
    } else {
        format!("{}{}{}{}", big.0, big.1, small.0, small.1)
    }
}

/// A shell-style glob over a whole tag: `*` any run of characters, `?` one
/// character, anything else itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// RFC 3339 as Go writes `time.Time` (`2024-05-01T10:00:00.123456789Z`,
/// or with a `+02:00` offset). Times before 1970 (Go's zero time) are
/// treated as absent.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = std::str::from_utf8(b.get(range)?).ok()?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: u64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let minutes = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let seconds = u64::try_from(seconds).ok()?;
    Some(UNIX_EPOCH + Duration::new(seconds, u32::try_from(nanos).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// When a cache was created: the newest `createdAt` among its config's
/// results, else the newest `buildkit/createdat` layer annotation (in the
/// manifest or the config). With its text as written.
pub fn cache_created(config: &CacheConfig, image: &CacheImage) -> Option<(SystemTime, String)> {
    let newest = |times: &mut dyn Iterator<Item = &String>| {
        times
            .filter_map(|text| parse_rfc3339(text).map(|t| (t, text.clone())))
            .max_by_key(|(t, _)| *t)
    };
    let mut results = config.records.iter().flat_map(|r| {
        r.results
            .iter()
            .filter_map(|res| res.created_at.as_ref())
            .chain(r.chains.iter().filter_map(|c| c.created_at.as_ref()))
    });
    if let Some(found) = newest(&mut results) {
        return Some(found);
    }
    let mut annotations = image
        .layers()
        .filter_map(|d| d.annotations.get(ANNOTATION_CREATED_AT))
        .chain(
            config
                .layers
                .iter()
                .filter_map(|l| l.annotations.as_ref()?.created_at.as_ref()),
        );
    newest(&mut annotations)
}

/// A matching tag, read.
struct Candidate {
    tag: String,
    digest: Option<Digest>,
    /// `Err`: why it is not judged (not a cache, unreadable).
    created: Result<Option<(SystemTime, String)>, String>,
}

/// Reads a cache manifest's config and creation time.
async fn judge(
    store: &dyn CacheStore,
    tag: String,
    raw: Result<Option<RawManifest>, StoreError>,
) -> Candidate {
    let raw = match raw {
        Ok(Some(raw)) => raw,
        Ok(None) => {
            return Candidate {
                tag,
                digest: None,
                created: Err("the tag disappeared while pruning".into()),
            };
        }
        Err(err) => {
            return Candidate {
                tag,
                digest: None,
                created: Err(format!("unreadable: {err}")),
            };
        }
    };
    let digest = Some(raw.digest.clone());
    let created = match CacheImage::decode(&raw) {
        Err(ImageError::NotACacheImage(why)) => Err(format!("not a cache image ({why})")),
        Err(err) => Err(format!("not a readable cache: {err}")),
        Ok(image) => match store.read_small_blob(&image.config).await {
            Err(err) => Err(format!("cache config unreadable: {err}")),
            Ok(bytes) => match CacheConfig::from_json(&bytes) {
                Err(err) => Err(format!("cache config unreadable: {err}")),
                Ok(config) => Ok(cache_created(&config, &image)),
            },
        },
    };
    Candidate {
        tag,
        digest,
        created,
    }
}

/// Decides every candidate: newest first, the policy's keepers kept.
fn decide(candidates: Vec<Candidate>, policy: &Policy, now: SystemTime) -> Vec<TagReport> {
    let (mut timed, rest): (Vec<_>, Vec<_>) = candidates
        .into_iter()
        .partition(|c| matches!(c.created, Ok(Some(_))));
    let time_of = |c: &Candidate| match &c.created {
        Ok(Some((t, _))) => *t,
        _ => UNIX_EPOCH,
    };
    timed.sort_by(|a, b| time_of(b).cmp(&time_of(a)).then_with(|| a.tag.cmp(&b.tag)));
    let older_text = policy.older_than_text.clone().unwrap_or_default();
    let mut reports = Vec::new();
    for (rank, c) in timed.into_iter().enumerate() {
        let Ok(Some((created, text))) = c.created else {
            unreachable!("partitioned above")
        };
        let age = now.duration_since(created).unwrap_or_default();
        let newest = policy.keep.is_some_and(|n| rank < n);
        let young = policy.older_than.is_some_and(|d| age <= d);
        let (action, reason) = if newest {
            let n = policy.keep.unwrap_or(0);
            (Action::Kept, format!("among the newest {n}"))
        } else if young {
            (Action::Kept, format!("younger than {older_text}"))
        } else {
            let mut why = Vec::new();
            match policy.keep {
                Some(0) => why.push("--keep 0".to_string()),
                Some(n) => why.push(format!("not among the newest {n}")),
                None => {}
            }
            if policy.older_than.is_some() {
                why.push(format!("older than {older_text}"));
            }
            (Action::WouldDelete, why.join(", "))
        };
        reports.push(TagReport {
            tag: c.tag,
            digest: c.digest,
            created_at: Some(text),
            age_seconds: Some(age.as_secs()),
            action,
            reason,
        });
    }
    for c in rest {
        let (action, reason) = match c.created {
            Ok(_) => (
                Action::Kept,
                "the cache records no creation time".to_string(),
            ),
            Err(why) => (Action::Skipped, why),
        };
        reports.push(TagReport {
            tag: c.tag,
            digest: c.digest,
            created_at: None,
            age_seconds: None,
            action,
            reason,
        });
    }
    reports
}

/// Runs the prune. The report is returned even when it stops on an error,
/// so that what was already deleted is said.
pub async fn prune(options: PruneOptions) -> (PruneReport, Option<OpsError>) {
    let mut report = PruneReport::new(&options);
    let result = match &options.target {
        PruneTarget::Registry {
            reference,
            insecure,
        } => prune_registry(reference, *insecure, &options, &mut report).await,
        PruneTarget::Local { dir } => prune_local(dir, &options, &mut report).await,
    };
    // A store error's text is the whole story; as a source it would be
    // printed twice.
    let error = result.err().map(|err| match err {
        OpsError::Store(err) => OpsError::Failed(err.to_string()),
        other => other,
    });
    report.error = error.as_ref().map(ToString::to_string);
    (report, error)
}

async fn prune_registry(
    reference: &Reference,
    insecure: bool,
    options: &PruneOptions,
    report: &mut PruneReport,
) -> Result<(), OpsError> {
    let jobs = options.store.jobs.max(1);
    let base = RegistryStore::new(reference.clone(), insecure, &options.store)?;
    let Some(tags) = base.list_tags().await? else {
        let note = format!(
            "{}: no such repository; nothing to prune",
            base.repository_name()
        );
        tracing::warn!("{note}");
        report.notes.push(note);
        return Ok(());
    };
    let (matched, unmatched): (Vec<String>, Vec<String>) =
        tags.into_iter().partition(|t| options.policy.matches(t));
    report.unmatched = unmatched.len();
    tracing::info!(
        "{}: {} tags match, {} do not",
        base.repository_name(),
        matched.len(),
        unmatched.len()
    );
    let base = &base;
    let candidates: Vec<Candidate> = stream::iter(matched)
        .map(|tag| async move {
            let store = match base.at_tag(&tag) {
                Ok(store) => store,
                Err(err) => {
                    return Candidate {
                        tag,
                        digest: None,
                        created: Err(err.to_string()),
                    };
                }
            };
            let raw = store.fetch_manifest().await;
            judge(&store, tag, raw).await
        })
        .buffered(jobs)
        .collect()
        .await;
    let mut decided = decide(candidates, &options.policy, options.now);
    for t in &decided {
        if t.action == Action::Skipped {
            tracing::warn!(
                "{}:{}: left alone: {}",
                base.repository_name(),
                t.tag,
                t.reason
            );
        }
    }
    if !decided.iter().any(|t| t.action == Action::WouldDelete) {
        report.tags = decided;
        return Ok(());
    }

    // A manifest delete removes every tag pointing at it: the digests of
    // the tags that stay (kept, skipped, unmatched) are protected.
    let unmatched_digests: Vec<(String, Result<Option<Digest>, StoreError>)> =
        stream::iter(unmatched)
            .map(|tag| async move {
                let digest = match base.at_tag(&tag) {
                    Ok(store) => store.manifest_digest().await,
                    Err(err) => Err(err),
                };
                (tag, digest)
            })
            .buffered(jobs)
            .collect()
            .await;
    let mut protected: HashMap<Digest, String> = HashMap::new();
    for (tag, digest) in unmatched_digests {
        match digest {
            Ok(Some(digest)) => {
                protected.entry(digest).or_insert(tag);
            }
            Ok(None) => {}
            Err(err) => {
                report.tags = decided;
                return Err(OpsError::Failed(format!(
                    "cannot tell whether tag {tag:?}, which --tag leaves alone, shares a manifest \
                     with a cache to delete: {err}"
                )));
            }
        }
    }
    for t in decided.iter().filter(|t| t.action != Action::WouldDelete) {
        if let Some(digest) = &t.digest {
            protected
                .entry(digest.clone())
                .or_insert_with(|| t.tag.clone());
        }
    }
    for t in decided
        .iter_mut()
        .filter(|t| t.action == Action::WouldDelete)
    {
        if let Some(other) = t.digest.as_ref().and_then(|d| protected.get(d)) {
            t.action = Action::Kept;
            t.reason = format!(
                "{}, but its manifest is also tagged {other:?}, which stays",
                t.reason
            );
        }
    }
    let mut digests: Vec<Digest> = Vec::new();
    for t in decided.iter().filter(|t| t.action == Action::WouldDelete) {
        if let Some(d) = &t.digest
            && !digests.contains(d)
        {
            digests.push(d.clone());
        }
    }
    report.manifests = digests.clone();
    if options.dry_run {
        report.tags = decided;
        return Ok(());
    }
    let mut failure = None;
    let mut done: HashMap<Digest, Result<Deleted, ()>> = HashMap::new();
    for digest in &digests {
        if failure.is_some() {
            break;
        }
        tracing::info!("{}: deleting {digest}", base.repository_name());
        match base.delete_manifest(digest).await {
            Ok(outcome) => {
                done.insert(digest.clone(), Ok(outcome));
            }
            Err(err) => {
                done.insert(digest.clone(), Err(()));
                failure = Some(err);
            }
        }
    }
    report.manifests = digests
        .into_iter()
        .filter(|d| matches!(done.get(d), Some(Ok(_))))
        .collect();
    for t in decided
        .iter_mut()
        .filter(|t| t.action == Action::WouldDelete)
    {
        let outcome = t.digest.as_ref().and_then(|d| done.get(d));
        match outcome {
            Some(Ok(Deleted::Deleted)) => t.action = Action::Deleted,
            Some(Ok(Deleted::AlreadyGone)) => {
                t.action = Action::Deleted;
                t.reason = format!("{} (already gone)", t.reason);
            }
            Some(Err(_)) => {
                // The whole error is printed once, last.
                t.action = Action::Failed;
                t.reason = "the registry refused the delete (see the error)".into();
            }
            None => {
                t.action = Action::Kept;
                t.reason = format!("{}; not deleted: an earlier delete failed", t.reason);
            }
        }
    }
    report.tags = decided;
    match failure {
        Some(err) => Err(OpsError::Store(err)),
        None => Ok(()),
    }
}

async fn prune_local(
    dir: &std::path::Path,
    options: &PruneOptions,
    report: &mut PruneReport,
) -> Result<(), OpsError> {
    if !dir.is_dir() {
        return Err(OpsError::Failed(format!(
            "{}: no such directory",
            dir.display()
        )));
    }
    let store = LocalStore::new(
        dir.to_path_buf(),
        crate::reference::DEFAULT_TAG.into(),
        None,
    );
    let entries = store.index_entries()?.ok_or_else(|| {
        OpsError::Failed(format!(
            "{}: not an OCI layout (no index.json)",
            dir.display()
        ))
    })?;
    let mut removals: Vec<(String, Digest)> = Vec::new();
    if !options.blobs_only {
        // The last entry of a tag is the one it names; earlier ones with the
        // same tag go with it, or they would take its place.
        let mut by_tag: BTreeMap<String, Vec<crate::store::local::IndexEntry>> = BTreeMap::new();
        let mut order = Vec::new();
        for entry in entries {
            match entry.tag.clone() {
                Some(tag) => {
                    if !by_tag.contains_key(&tag) {
                        order.push(tag.clone());
                    }
                    by_tag.entry(tag).or_default().push(entry);
                }
                None => report.untagged += 1,
            }
        }
        let (matched, unmatched): (Vec<String>, Vec<String>) =
            order.into_iter().partition(|t| options.policy.matches(t));
        report.unmatched = unmatched.len();
        let store_ref = &store;
        let by_tag_ref = &by_tag;
        let candidates: Vec<Candidate> = stream::iter(matched)
            .map(|tag| async move {
                let last = by_tag_ref[&tag].last().expect("a tag has an entry");
                let raw = tokio::task::block_in_place(|| store_ref.read_manifest(&last.descriptor))
                    .map(Some);
                judge(store_ref, tag, raw).await
            })
            .buffered(options.store.jobs.max(1))
            .collect()
            .await;
        let decided = decide(candidates, &options.policy, options.now);
        for t in &decided {
            if t.action == Action::Skipped {
                tracing::warn!("{}:{}: left alone: {}", dir.display(), t.tag, t.reason);
            }
            if t.action == Action::WouldDelete {
                // Every entry of the tag: the shadowed ones too.
                for entry in &by_tag[&t.tag] {
                    removals.push((t.tag.clone(), entry.descriptor.digest.clone()));
                }
            }
        }
        report.tags = decided;
    }
    let dry_run = options.dry_run;
    // A spool's owner holds a lock on it while it lives, so one of a save
    // running now is never taken (see ops::spool).
    let spools =
        tokio::task::block_in_place(|| spool::leftovers(dir, spool::LOCAL_PREFIX, !dry_run));
    report.spools = Some(
        spools
            .into_iter()
            .map(|leftover| SpoolReport {
                path: leftover.path.to_string_lossy().into_owned(),
                bytes: leftover.bytes,
            })
            .collect(),
    );
    let outcome = tokio::task::block_in_place(|| store.prune(&removals, dry_run))?;
    let removed: HashSet<&str> = outcome
        .removed_tags
        .iter()
        .map(|(tag, _)| tag.as_str())
        .collect();
    for t in report
        .tags
        .iter_mut()
        .filter(|t| t.action == Action::WouldDelete)
    {
        if !removed.contains(t.tag.as_str()) {
            t.action = Action::Kept;
            t.reason = format!("{}; but the tag changed while pruning", t.reason);
        } else if !dry_run {
            t.action = Action::Deleted;
        }
    }
    if let Some(reason) = &outcome.blobs_skipped {
        tracing::warn!("{}: no blob removed: {reason}", dir.display());
    }
    report.blobs = Some(BlobReport {
        removed: outcome.removed_blobs.len(),
        removed_bytes: outcome.removed_blobs.iter().map(|(_, size)| size).sum(),
        kept: outcome.kept_blobs,
        skipped_reason: outcome.blobs_skipped,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, t) in [
            ("*", "anything"),
            ("cache-*", "cache-main"),
            ("cache-*", "cache-"),
            ("*-main", "cache-main"),
            ("c?che", "cache"),
            ("a*b*c", "aXbYbZc"),
            ("exact", "exact"),
        ] {
            assert!(glob_match(p, t), "{p} {t}");
        }
        for (p, t) in [
            ("cache-*", "main"),
            ("cache", "cache-main"),
            ("c?che", "cche"),
            ("a*b*c", "aXbY"),
            ("", "x"),
        ] {
            assert!(!glob_match(p, t), "{p} {t}");
        }
    }

    #[test]
    fn rfc3339_as_go_writes_it() {
        let at = |s| {
            parse_rfc3339(s)
                .map(|t| t.duration_since(UNIX_EPOCH).unwrap())
                .map(|d| (d.as_secs(), d.subsec_nanos()))
        };
        assert_eq!(at("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(
            at("2024-05-01T10:00:00.123456789Z"),
            Some((1_714_557_600, 123_456_789))
        );
        assert_eq!(
            at("2024-05-01T12:00:00.5+02:00"),
            Some((1_714_557_600, 500_000_000))
        );
        assert_eq!(at("2024-05-01T09:30:00-00:30"), Some((1_714_557_600, 0)));
        assert_eq!(at("0001-01-01T00:00:00Z"), None);
        assert_eq!(at("2024-05-01"), None);
        assert_eq!(at("2024-13-01T00:00:00Z"), None);
        assert_eq!(at("2024-05-01T10:00:00"), None);
    }

    #[test]
    fn ages_read_as_people_write_them() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(65), "1m5s");
        assert_eq!(human_age(3600), "1h");
        assert_eq!(human_age(36 * 3600 + 60), "1d12h");
        assert_eq!(human_age(7 * 86_400), "7d");
    }

    fn candidate(tag: &str, days_ago: u64, now: SystemTime) -> Candidate {
        let t = now - Duration::from_secs(days_ago * 86_400);
        Candidate {
            tag: tag.into(),
            digest: Some(Digest::of(tag.as_bytes())),
            created: Ok(Some((t, format!("{days_ago} days ago")))),
        }
    }

    #[test]
    fn keep_and_older_than_both_protect() {
        let now = SystemTime::now();
        let candidates = || {
            vec![
                candidate("d", 10, now),
                candidate("a", 1, now),
                candidate("c", 5, now),
                candidate("b", 3, now),
                Candidate {
                    tag: "x".into(),
                    digest: None,
                    created: Err("not a cache image".into()),
                },
                Candidate {
                    tag: "y".into(),
                    digest: None,
                    created: Ok(None),
                },
            ]
        };
        let verdicts = |policy: &Policy| -> Vec<(String, Action)> {
            decide(candidates(), policy, now)
                .into_iter()
                .map(|t| (t.tag, t.action))
                .collect()
        };
        use Action::*;
        let keep2 = Policy {
            keep: Some(2),
            ..Policy::default()
        };
        assert_eq!(
            verdicts(&keep2),
            [
                ("a", Kept),
                ("b", Kept),
                ("c", WouldDelete),
                ("d", WouldDelete),
                ("x", Skipped),
                ("y", Kept)
            ]
            .map(|(t, a)| (t.to_string(), a))
        );
        let older4 = Policy {
            older_than: Some(Duration::from_secs(4 * 86_400)),
            older_than_text: Some("4d".into()),
            ..Policy::default()
        };
        assert_eq!(
            verdicts(&older4)[..4],
            [
                ("a", Kept),
                ("b", Kept),
                ("c", WouldDelete),
                ("d", WouldDelete)
            ]
            .map(|(t, a)| (t.to_string(), a))
        );
        let both = Policy {
            keep: Some(1),
            older_than: Some(Duration::from_secs(6 * 86_400)),
            older_than_text: Some("6d".into()),
            ..Policy::default()
        };
        assert_eq!(
            verdicts(&both)[..4],
            [("a", Kept), ("b", Kept), ("c", Kept), ("d", WouldDelete)]
                .map(|(t, a)| (t.to_string(), a))
        );
    }

    #[test]
    fn targets() {
        let ok = |v: &str| PruneTarget::parse(v).unwrap();
        assert!(
            matches!(ok("ghcr.io/org/app"), PruneTarget::Registry { reference, .. } if reference.name() == "ghcr.io/org/app")
        );
        assert!(matches!(
            ok("type=registry,ref=localhost:5000/app"),
            PruneTarget::Registry { .. }
        ));
        assert_eq!(
            ok("type=local,dest=/tmp/c"),
            PruneTarget::Local {
                dir: "/tmp/c".into()
            }
        );
        assert_eq!(
            ok("type=local,src=/tmp/c"),
            PruneTarget::Local {
                dir: "/tmp/c".into()
            }
        );
        for bad in [
            "ghcr.io/org/app:cache",
            "ghcr.io/org/app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "type=registry,ref=ghcr.io/org/app:cache",
            "type=local,src=/tmp/c,tag=x",
            "type=gha",
            "",
        ] {
            let err = PruneTarget::parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}: {err}");
        }
    }
}
