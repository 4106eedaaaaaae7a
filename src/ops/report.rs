//! What the user sees when a command ends: the summary on stderr and the
//! `--metadata-file` JSON (docs/metadata.md), both made from the same
//! reports so they can never disagree.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::entry_path;
use super::restore::{PathReport, RestoreReport};
use super::run::CommandOutcome;
use super::save::{SaveReport, SavedEntry, SkippedPath, TargetReport};
use crate::layer::EntryStats;
use crate::layer::pack::SaveCounts;
use crate::layer::plan::EntryPlan;
use crate::progress::{human_bytes, printable};
use crate::spec::{CacheFrom, CacheTo, ExportTarget, ImportSource, RepoTarget};

/// Where the save stands when the command ends.
pub enum SaveState<'a> {
    /// The command does not save (`restore`).
    NotRequested,
    /// Not attempted, and why (`run` whose command failed).
    Skipped(String),
    Done(&'a SaveReport),
    /// Stopped before any target was written, with the error.
    Failed(String),
}

/// Everything one command did, for [`Outcome::summary`] and
/// [`Outcome::metadata`].
pub struct Outcome<'a> {
    /// `"save"`, `"restore"` or `"run"`.
    pub command: &'a str,
    pub cache_from: &'a [CacheFrom],
    pub cache_to: &'a [CacheTo],
    /// The PATH arguments as given (`--path` for run).
    pub paths: &'a [String],
    pub restore: Option<&'a RestoreReport>,
    pub save: SaveState<'a>,
    /// `run` only: what became of the command.
    pub run: Option<&'a CommandOutcome>,
    pub seconds: f64,
    /// The error regcache exits with, if any (after this summary).
    pub error: Option<String>,
}

/// One path, as restored and/or saved.
struct PathRow<'a> {
    name: String,
    restored: Option<&'a PathReport>,
    saved: Option<&'a SavedEntry>,
    skipped: Option<&'a SkippedPath>,
}

/// How one `--cache-to` ended.
enum TargetState<'a> {
    Written(&'a TargetReport),
    Failed { error: &'a str, ignored: bool },
    Skipped(String),
}

impl TargetState<'_> {
    fn status(&self) -> &'static str {
        match self {
            TargetState::Written(_) => "written",
            TargetState::Failed { ignored: false, .. } => "failed",
            TargetState::Failed { ignored: true, .. } => "ignored-error",
            TargetState::Skipped(_) => "skipped",
        }
    }
}

impl<'a> Outcome<'a> {
    /// The paths in the order the user named them (or, for a restore of
    /// everything, the order they were restored in), each once.
    fn rows(&self) -> Vec<PathRow<'a>> {
        let mut names: Vec<String> = Vec::new();
        let mut push = |name: String| {
            if !names.contains(&name) {
                names.push(name);
            }
        };
        for arg in self.paths {
            if let Some(name) = entry_path::entry_name(arg) {
                push(name);
            }
        }
        if let Some(restore) = self.restore {
            restore.paths.iter().for_each(|p| push(p.path.clone()));
        }
        if let SaveState::Done(save) = &self.save {
            save.entries.iter().for_each(|e| push(e.path.clone()));
            save.skipped.iter().for_each(|s| push(s.path.clone()));
        }
        names
            .into_iter()
            .map(|name| PathRow {
                restored: self
                    .restore
                    .and_then(|r| r.paths.iter().find(|p| p.path == name)),
                saved: match &self.save {
                    SaveState::Done(save) => save.entries.iter().find(|e| e.path == name),
                    _ => None,
                },
                skipped: match &self.save {
                    SaveState::Done(save) => save.skipped.iter().find(|s| s.path == name),
                    _ => None,
                },
                name,
            })
            .collect()
    }

    /// One state per `--cache-to`, in the order given.
    fn targets(&self) -> Vec<TargetState<'_>> {
        self.cache_to
            .iter()
            .enumerate()
            .map(|(i, _)| match &self.save {
                SaveState::NotRequested => TargetState::Skipped("not a save".into()),
                SaveState::Skipped(why) => TargetState::Skipped(why.clone()),
                SaveState::Failed(error) => TargetState::Failed {
                    error,
                    ignored: false,
                },
                SaveState::Done(save) => match save.cache_to.get(i) {
                    None => TargetState::Skipped("nothing to save".into()),
                    Some(t) => match &t.error {
                        Some(error) => TargetState::Failed {
                            error,
                            ignored: t.error_ignored,
                        },
                        None => TargetState::Written(t),
                    },
                },
            })
            .collect()
    }

    /// The summary printed on stderr at the end: per path hit or miss and
    /// where from, per target what was written and reused, and how long.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let rows = self.rows();
        let width = rows
            .iter()
            .map(|r| printable(&r.name).chars().count())
            .max()
            .unwrap_or(0);

        // copy reads whole caches, not paths: say which sources it read.
        let copying = self.command == "copy";
        if let (true, Some(restore)) = (copying, self.restore) {
            let read = restore.sources.iter().filter(|s| s.loaded).count();
            let _ = writeln!(
                out,
                "copy: read {read} of {}",
                count(restore.sources.len() as u64, "cache", "caches")
            );
            for source in &restore.sources {
                let state = if source.loaded { "read" } else { "miss" };
                let _ = writeln!(out, "  {state}  {}", printable(&source.source));
            }
        } else if let Some(restore) = self.restore.filter(|_| self.command != "run") {
            // run says what it restored before the command starts (see
            // RunOptions::on_restored), so that it comes before the
            // command's own output; here that would be said twice.
            let loaded = restore.sources.iter().any(|s| s.loaded);
            let head = if !loaded {
                "nothing restored: no cache found".to_string()
            } else if restore.paths.is_empty() {
                "nothing restored: the caches hold no path".to_string()
            } else {
                format!(
                    "restore: {} of {} hit",
                    restore.hits(),
                    count(restore.paths.len() as u64, "path", "paths")
                )
            };
            let _ = writeln!(out, "{head}");
            for row in &rows {
                let Some(path) = row.restored else { continue };
                let name = printable(&row.name);
                match (&path.from, &path.stats, &path.error) {
                    (Some(from), Some(stats), _) => {
                        let _ = writeln!(
                            out,
                            "  hit   {name:width$}  from {}{}, {}, {:.2}s",
                            printable(from),
                            self.pattern_note(path.from_index),
                            stats_text(stats),
                            path.seconds
                        );
                    }
                    (_, _, Some(error)) => {
                        let _ = writeln!(out, "  miss  {name:width$}  {}", printable(error));
                    }
                    _ if restore.held.is_empty() => {
                        let _ = writeln!(out, "  miss  {name:width$}  in no cache");
                    }
                    _ => {
                        let held: Vec<_> = restore.held.iter().map(|p| printable(p)).collect();
                        let _ = writeln!(
                            out,
                            "  miss  {name:width$}  in no cache (they hold: {})",
                            held.join(", ")
                        );
                    }
                }
            }
        }

        if let Some(command) = self.run {
            let _ = writeln!(out, "command: {}", command_text(command));
        }

        match &self.save {
            SaveState::NotRequested => {}
            SaveState::Skipped(why) => {
                if !self.cache_to.is_empty() {
                    let _ = writeln!(out, "save: skipped, {why}");
                }
            }
            SaveState::Failed(error) => {
                let _ = writeln!(out, "save: failed: {}", printable(error));
            }
            SaveState::Done(_) if copying => {}
            SaveState::Done(save) => {
                let mut total = EntryStats::default();
                save.entries.iter().for_each(|e| total.add(&e.stats));
                // A path is saved when some target holds it now: with
                // every export failed, none does, whatever was packed.
                let written = save.cache_to.iter().any(|t| t.error.is_none());
                if written {
                    let _ = writeln!(
                        out,
                        "save: {}, {}",
                        count(save.entries.len() as u64, "path", "paths"),
                        stats_text(&total)
                    );
                } else if !save.cache_to.is_empty() {
                    let _ = writeln!(out, "save: nothing saved: no target was written");
                }
                for row in &rows {
                    let name = printable(&row.name);
                    if let Some(entry) = row.saved.filter(|_| written) {
                        let _ = writeln!(
                            out,
                            "  saved    {name:width$}  {} in {}",
                            stats_text(&entry.stats),
                            count(entry.layers as u64, "layer", "layers")
                        );
                    } else if let Some(skipped) = row.skipped {
                        let _ = writeln!(
                            out,
                            "  skipped  {name:width$}  {}",
                            printable(&skipped.reason)
                        );
                    }
                }
            }
        }

        let targets = self.targets();
        let locations: Vec<String> = self
            .cache_to
            .iter()
            .map(|s| printable(&s.target.location()).into_owned())
            .collect();
        let loc_width = locations
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0);
        if !matches!(self.save, SaveState::Done(_)) {
            // Nothing was attempted: the "save:" line above says why.
            return out;
        }
        for (location, state) in locations.iter().zip(&targets) {
            let text = match state {
                TargetState::Written(t) => format!(
                    "wrote {} in {}, {} reused, {:.2}s: {}",
                    human_bytes(t.uploaded_bytes),
                    count(t.uploaded_blobs as u64, "blob", "blobs"),
                    t.reused_blobs,
                    t.seconds,
                    t.digest
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                ),
                // The error printed last says why; here it would be twice.
                TargetState::Failed { ignored: false, .. } => "failed (see below)".to_string(),
                TargetState::Failed {
                    error,
                    ignored: true,
                } => format!("failed (ignore-error=true): {}", printable(error)),
                TargetState::Skipped(why) => format!("not written: {why}"),
            };
            let _ = writeln!(out, "  -> {location:loc_width$}  {text}");
        }
        out
    }

    /// The `--metadata-file` object (docs/metadata.md).
    pub fn metadata(&self) -> Value {
        // A typed document can always be encoded: every key is a string.
        serde_json::to_value(self.metadata_file()).unwrap_or(Value::Null)
    }

    /// The `--metadata-file` document, typed.
    pub fn metadata_file(&self) -> MetadataFile {
        let run = self.run.map(|command| {
            let (exit_code, signal, command_seconds) = match command {
                CommandOutcome::Exited { code, seconds } => {
                    (Some(i64::from(*code)), None, *seconds)
                }
                CommandOutcome::Signalled { signal, seconds } => (
                    Some(i64::from(command.exit_code())),
                    Some(i64::from(*signal)),
                    *seconds,
                ),
                CommandOutcome::SpawnFailed { code, .. } => (Some(i64::from(*code)), None, 0.0),
                CommandOutcome::NotRun(_) => (None, None, 0.0),
            };
            RunMeta {
                exit_code,
                signal,
                command_seconds,
            }
        });
        MetadataFile {
            version: METADATA_VERSION,
            command: self.command.to_string(),
            cache_from: self
                .cache_from
                .iter()
                .enumerate()
                .map(|(i, spec)| self.cache_from_meta(i, spec))
                .collect(),
            cache_to: self
                .cache_to
                .iter()
                .zip(self.targets())
                .map(|(spec, state)| cache_to_meta(spec, &state))
                .collect(),
            paths: self.rows().iter().map(|row| self.path_meta(row)).collect(),
            run,
            seconds: self.seconds,
            error: self.error.clone(),
        }
    }

    /// ` (newest of TAG*)` after a cache a tag pattern chose.
    fn pattern_note(&self, from_index: Option<usize>) -> String {
        match from_index.and_then(|i| self.cache_from.get(i)) {
            Some(CacheFrom {
                source: ImportSource::Pattern { prefix, .. },
            }) => format!(" (newest of {}*)", printable(prefix)),
            _ => String::new(),
        }
    }

    fn cache_from_meta(&self, index: usize, spec: &CacheFrom) -> CacheFromMeta {
        let (kind, key, location) = import_location(spec);
        // A save reads its --cache-from as bases; a restore (or run) as
        // caches to restore from, which run's save then reuses as bases.
        let source = match (self.restore, &self.save) {
            (Some(restore), _) => restore.sources.get(index),
            (None, SaveState::Done(save)) => save.bases.get(index),
            (None, _) => None,
        };
        let (status, reason) = match source {
            None => ("not-read", None),
            Some(s) if s.loaded => ("loaded", None),
            Some(s) => ("missed", s.reason.clone()),
        };
        CacheFromMeta {
            kind,
            location: Location::new(key, location),
            status,
            reason,
            matched: source.and_then(|s| s.matched.clone()),
        }
    }

    fn path_meta(&self, row: &PathRow<'_>) -> PathMeta {
        let restored = row.restored;
        let from_index = restored.and_then(|p| p.from_index);
        let from = from_index
            .and_then(|i| self.cache_from.get(i))
            .map(|spec| import_location(spec).2);
        PathMeta {
            path: row.name.clone(),
            // null, not false, where no restore was tried: a save is not a miss.
            hit: restored.map(|p| p.hit),
            from,
            from_index,
            restored: restored.and_then(|p| {
                p.stats.as_ref().map(|stats| RestoredMeta {
                    stats: stats.clone(),
                    seconds: p.seconds,
                })
            }),
            saved: row.saved.map(|entry| SavedMeta {
                stats: entry.stats.clone(),
                layers: entry.layers,
                reused_layers: entry.reused_layers,
                delta_layers: entry.delta_layers,
                plan: entry.plan,
                counts: entry.counts,
            }),
            error: restored
                .and_then(|p| p.error.clone())
                .or_else(|| row.skipped.map(|s| s.reason.clone())),
        }
    }
}

fn cache_to_meta(spec: &CacheTo, state: &TargetState<'_>) -> CacheToMeta {
    let (kind, key, location) = match &spec.target {
        ExportTarget::Registry { reference, .. } => ("registry", "ref", reference.to_string()),
        ExportTarget::Local { dest, .. } => ("local", "dest", dest.to_string_lossy().into_owned()),
    };
    let written = match state {
        TargetState::Written(t) => Some(*t),
        _ => None,
    };
    let (error, reason) = match state {
        TargetState::Failed { error, .. } => (Some(error.to_string()), None),
        TargetState::Skipped(why) => (None, Some(why.clone())),
        TargetState::Written(_) => (None, None),
    };
    CacheToMeta {
        kind,
        location: Location::new(key, location),
        status: state.status(),
        digest: written.and_then(|t| t.digest.as_ref().map(ToString::to_string)),
        uploaded_bytes: written.map_or(0, |t| t.uploaded_bytes),
        uploaded_blobs: written.map_or(0, |t| t.uploaded_blobs),
        reused_blobs: written.map_or(0, |t| t.reused_blobs),
        seconds: written.map_or(0.0, |t| t.seconds),
        error,
        reason,
    }
}

/// `(type, key, location)`: the registry ref as normalised, or the local
/// `src` as given.
fn import_location(spec: &CacheFrom) -> (&'static str, &'static str, String) {
    match &spec.source {
        ImportSource::Registry { reference, .. } => ("registry", "ref", reference.to_string()),
        ImportSource::Local { src, .. } => ("local", "src", src.to_string_lossy().into_owned()),
        ImportSource::Pattern {
            repository: RepoTarget::Registry { .. },
            ..
        } => ("registry", "ref", spec.location()),
        ImportSource::Pattern {
            repository: RepoTarget::Local { dir },
            ..
        } => ("local", "src", dir.to_string_lossy().into_owned()),
    }
}

/// The version of the metadata file's layout (docs/metadata.md): keys
/// may be added within a version, never removed or changed in meaning.
pub const METADATA_VERSION: u32 = 1;

/// The `--metadata-file` document (docs/metadata.md).
#[derive(Debug, Serialize)]
pub struct MetadataFile {
    pub version: u32,
    pub command: String,
    pub cache_from: Vec<CacheFromMeta>,
    pub cache_to: Vec<CacheToMeta>,
    pub paths: Vec<PathMeta>,
    /// `run` only.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunMeta>,
    pub seconds: f64,
    pub error: Option<String>,
}

/// Where a cache is, under the key its type uses: `ref`, `src` or `dest`.
#[derive(Debug, Serialize)]
pub struct Location {
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest: Option<String>,
}

impl Location {
    fn new(key: &str, location: String) -> Location {
        let mut place = Location {
            reference: None,
            src: None,
            dest: None,
        };
        match key {
            "ref" => place.reference = Some(location),
            "src" => place.src = Some(location),
            _ => place.dest = Some(location),
        }
        place
    }
}

#[derive(Debug, Serialize)]
pub struct CacheFromMeta {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(flatten)]
    pub location: Location,
    pub status: &'static str,
    pub reason: Option<String>,
    pub matched: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CacheToMeta {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(flatten)]
    pub location: Location,
    pub status: &'static str,
    pub digest: Option<String>,
    pub uploaded_bytes: u64,
    pub uploaded_blobs: usize,
    pub reused_blobs: usize,
    pub seconds: f64,
    pub error: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PathMeta {
    pub path: String,
    pub hit: Option<bool>,
    pub from: Option<String>,
    pub from_index: Option<usize>,
    pub restored: Option<RestoredMeta>,
    pub saved: Option<SavedMeta>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RestoredMeta {
    #[serde(flatten)]
    pub stats: EntryStats,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct SavedMeta {
    #[serde(flatten)]
    pub stats: EntryStats,
    pub layers: usize,
    pub reused_layers: usize,
    pub delta_layers: usize,
    pub plan: EntryPlan,
    #[serde(flatten)]
    pub counts: SaveCounts,
}

#[derive(Debug, Serialize)]
pub struct RunMeta {
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub command_seconds: f64,
}

fn stats_text(stats: &EntryStats) -> String {
    format!(
        "{}, {}",
        count(stats.files, "file", "files"),
        human_bytes(stats.bytes)
    )
}

/// `1 path`, `2 paths`: a count with its noun agreeing.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn command_text(command: &CommandOutcome) -> String {
    match command {
        // Why is the error printed last: said once, there.
        CommandOutcome::NotRun(_) => "not run".to_string(),
        CommandOutcome::SpawnFailed { code, .. } => {
            format!("could not be started (exit status {code})")
        }
        CommandOutcome::Exited { code, seconds } => format!("exited {code} after {seconds:.2}s"),
        CommandOutcome::Signalled { signal, seconds } => format!(
            "killed by signal {signal} after {seconds:.2}s (exit status {})",
            command.exit_code()
        ),
    }
}

/// Writes `value` to `path` atomically: a temporary file beside it, synced,
/// then renamed over it, so a reader never sees half an object.
pub fn write_metadata(path: &Path, value: &Value) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".regcache-metadata-")
        .tempfile_in(dir)?;
    serde_json::to_writer_pretty(&mut file, value).map_err(io::Error::other)?;
    file.write_all(b"\n")?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_cache_from;

    #[test]
    fn names_from_a_cache_cannot_put_escape_codes_in_the_summary() {
        let cache_from = parse_cache_from("type=local,src=/c").unwrap();
        let restore = RestoreReport {
            held: Vec::new(),
            sources: Vec::new(),
            paths: vec![PathReport {
                path: "evil\x1b]0;pwned\x07".into(),
                hit: true,
                from: Some("/c:latest".into()),
                from_index: Some(0),
                stats: Some(EntryStats::default()),
                seconds: 0.0,
                error: None,
            }],
            mount_sources: Vec::new(),
        };
        let outcome = Outcome {
            command: "restore",
            cache_from: &cache_from,
            cache_to: &[],
            paths: &[],
            restore: Some(&restore),
            save: SaveState::NotRequested,
            run: None,
            seconds: 0.0,
            error: None,
        };
        let summary = outcome.summary();
        assert!(
            !summary.contains('\x1b') && !summary.contains('\x07'),
            "{summary:?}"
        );
        assert!(summary.contains("evil\\u{1b}]0;pwned\\u{7}"), "{summary:?}");
        // The metadata keeps the real name: JSON escapes it safely.
        assert_eq!(
            outcome.metadata()["paths"][0]["path"],
            "evil\x1b]0;pwned\x07"
        );
        assert_eq!(outcome.metadata()["paths"][0]["from"], "/c");
    }
}
