//! What the user sees when a command ends: the summary on stderr and the
//! `--metadata-file` JSON (docs/metadata.md), both made from the same
//! reports so they can never disagree.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use serde_json::{Map, Value, json};

use super::entry_path;
use super::restore::{PathReport, RestoreReport};
use super::run::CommandOutcome;
use super::save::{SaveReport, SavedEntry, SkippedPath, TargetReport};
use crate::layer::EntryStats;
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
        let mut top = Map::new();
        top.insert("command".into(), self.command.into());
        top.insert(
            "cache_from".into(),
            self.cache_from
                .iter()
                .enumerate()
                .map(|(i, spec)| self.cache_from_json(i, spec))
                .collect(),
        );
        top.insert(
            "cache_to".into(),
            self.cache_to
                .iter()
                .zip(self.targets())
                .map(|(spec, state)| cache_to_json(spec, &state))
                .collect(),
        );
        top.insert(
            "paths".into(),
            self.rows().iter().map(|row| self.path_json(row)).collect(),
        );
        if let Some(command) = self.run {
            let (code, signal, seconds) = match command {
                CommandOutcome::Exited { code, seconds } => (json!(code), Value::Null, *seconds),
                CommandOutcome::Signalled { signal, seconds } => {
                    (json!(command.exit_code()), json!(signal), *seconds)
                }
                CommandOutcome::SpawnFailed { code, .. } => (json!(code), Value::Null, 0.0),
                CommandOutcome::NotRun(_) => (Value::Null, Value::Null, 0.0),
            };
            top.insert("exit_code".into(), code);
            top.insert("signal".into(), signal);
            top.insert("command_seconds".into(), json!(seconds));
        }
        top.insert("seconds".into(), json!(self.seconds));
        top.insert("error".into(), json!(self.error));
        Value::Object(top)
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

    fn cache_from_json(&self, index: usize, spec: &CacheFrom) -> Value {
        let mut obj = Map::new();
        let (kind, key, location) = import_location(spec);
        obj.insert("type".into(), kind.into());
        obj.insert(key.into(), location.into());
        // A save reads its --cache-from as bases; a restore (or run) as
        // caches to restore from, which run's save then reuses as bases.
        let source = match (self.restore, &self.save) {
            (Some(restore), _) => restore.sources.get(index),
            (None, SaveState::Done(save)) => save.bases.get(index),
            (None, _) => None,
        };
        let (status, reason) = match source {
            None => ("not-read", Value::Null),
            Some(s) if s.loaded => ("loaded", Value::Null),
            Some(s) => ("missed", json!(s.reason)),
        };
        obj.insert("status".into(), status.into());
        obj.insert("reason".into(), reason);
        obj.insert(
            "matched".into(),
            json!(source.and_then(|s| s.matched.clone())),
        );
        Value::Object(obj)
    }

    fn path_json(&self, row: &PathRow<'_>) -> Value {
        let restored = row.restored;
        let from_index = restored.and_then(|p| p.from_index);
        let from = from_index
            .and_then(|i| self.cache_from.get(i))
            .map(|spec| import_location(spec).2);
        let mut obj = Map::new();
        obj.insert("path".into(), row.name.clone().into());
        // null, not false, where no restore was tried: a save is not a miss.
        obj.insert("hit".into(), json!(restored.map(|p| p.hit)));
        obj.insert("from".into(), json!(from));
        obj.insert("from_index".into(), json!(from_index));
        obj.insert(
            "restored".into(),
            match restored.and_then(|p| p.stats.as_ref().map(|s| (p, s))) {
                Some((p, stats)) => {
                    let mut v = stats_json(stats);
                    v["seconds"] = json!(p.seconds);
                    v
                }
                None => Value::Null,
            },
        );
        obj.insert(
            "saved".into(),
            match row.saved {
                Some(entry) => {
                    let mut v = stats_json(&entry.stats);
                    v["layers"] = json!(entry.layers);
                    v["reused_layers"] = json!(entry.reused_layers);
                    v["delta_layers"] = json!(entry.delta_layers);
                    v["plan"] = json!(entry.plan);
                    v["read_files"] = json!(entry.counts.read_files);
                    v["read_bytes"] = json!(entry.counts.read_bytes);
                    v["reused_files"] = json!(entry.counts.reused_files);
                    v["reused_bytes"] = json!(entry.counts.reused_bytes);
                    v
                }
                None => Value::Null,
            },
        );
        let error = restored
            .and_then(|p| p.error.clone())
            .or_else(|| row.skipped.map(|s| s.reason.clone()));
        obj.insert("error".into(), json!(error));
        Value::Object(obj)
    }
}

fn cache_to_json(spec: &CacheTo, state: &TargetState<'_>) -> Value {
    let mut obj = Map::new();
    let (kind, key, location) = match &spec.target {
        ExportTarget::Registry { reference, .. } => ("registry", "ref", reference.to_string()),
        ExportTarget::Local { dest, .. } => ("local", "dest", dest.to_string_lossy().into_owned()),
    };
    obj.insert("type".into(), kind.into());
    obj.insert(key.into(), location.into());
    obj.insert("status".into(), state.status().into());
    let written = match state {
        TargetState::Written(t) => Some(*t),
        _ => None,
    };
    obj.insert(
        "digest".into(),
        json!(written.and_then(|t| t.digest.as_ref().map(ToString::to_string))),
    );
    obj.insert(
        "uploaded_bytes".into(),
        json!(written.map_or(0, |t| t.uploaded_bytes)),
    );
    obj.insert(
        "uploaded_blobs".into(),
        json!(written.map_or(0, |t| t.uploaded_blobs)),
    );
    obj.insert(
        "reused_blobs".into(),
        json!(written.map_or(0, |t| t.reused_blobs)),
    );
    obj.insert("seconds".into(), json!(written.map_or(0.0, |t| t.seconds)));
    let (error, reason) = match state {
        TargetState::Failed { error, .. } => (json!(error), Value::Null),
        TargetState::Skipped(why) => (Value::Null, json!(why)),
        TargetState::Written(_) => (Value::Null, Value::Null),
    };
    obj.insert("error".into(), error);
    obj.insert("reason".into(), reason);
    Value::Object(obj)
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

fn stats_json(stats: &EntryStats) -> Value {
    json!({
        "files": stats.files,
        "dirs": stats.dirs,
        "symlinks": stats.symlinks,
        "hardlinks": stats.hardlinks,
        "bytes": stats.bytes,
    })
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
