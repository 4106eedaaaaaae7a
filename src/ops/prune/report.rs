//! What prune reports: the table on stdout, the summary on stderr and the
//! JSON object of `--json` and `--metadata-file` (docs/prune.md).

use std::fmt::Write as _;

use serde::Serialize;

use super::policy::PolicyReport;
use super::{Policy, PruneOptions};
use crate::digest::Digest;
use crate::ops::ls::Repository;
use crate::progress::{human_bytes, printable};
use crate::spec::RepoTarget;

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

/// The version of the JSON report; keys may be added within a version,
/// never removed or changed in meaning (docs/prune.md).
pub const PRUNE_JSON_VERSION: u32 = 1;

/// What `prune --json` prints and `--metadata-file` writes (docs/prune.md).
#[derive(Debug, Clone, Serialize)]
pub struct PruneDocument {
    pub version: u32,
    /// Always `"prune"`.
    pub command: &'static str,
    pub target: Repository,
    pub dry_run: bool,
    pub policy: PolicyReport,
    /// Matching tags, newest first; unreadable ones last.
    pub tags: Vec<TagReport>,
    pub unmatched_tags: usize,
    pub untagged_manifests: usize,
    pub manifests: Vec<Digest>,
    pub blobs: Option<BlobReport>,
    pub spools: Option<Vec<SpoolReport>>,
    pub notes: Vec<String>,
    pub counts: Counts,
    pub seconds: f64,
    pub error: Option<String>,
}

/// How many matching tags ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub kept: usize,
    pub deleted: usize,
    pub would_delete: usize,
    pub skipped: usize,
    pub failed: usize,
}

pub struct PruneReport {
    pub target: RepoTarget,
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
    pub(super) fn new(options: &PruneOptions) -> PruneReport {
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

    /// The report as `--json` prints it and `--metadata-file` writes it
    /// (docs/prune.md); `seconds` is how long prune ran.
    pub fn document(&self, seconds: f64) -> PruneDocument {
        PruneDocument {
            version: PRUNE_JSON_VERSION,
            command: "prune",
            target: Repository::of(&self.target),
            dry_run: self.dry_run,
            policy: self.policy.report(self.blobs_only),
            tags: self.tags.clone(),
            unmatched_tags: self.unmatched,
            untagged_manifests: self.untagged,
            manifests: self.manifests.clone(),
            blobs: self.blobs.clone(),
            spools: self.spools.clone(),
            notes: self.notes.clone(),
            counts: Counts {
                kept: self.count(Action::Kept),
                deleted: self.count(Action::Deleted),
                would_delete: self.count(Action::WouldDelete),
                skipped: self.count(Action::Skipped),
                failed: self.count(Action::Failed),
            },
            seconds,
            error: self.error.clone(),
        }
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
        let registry = matches!(self.target, RepoTarget::Registry { .. });
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

pub fn plural(n: usize) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn local_report() -> PruneReport {
        PruneReport {
            target: RepoTarget::Local {
                dir: "/cache/app".into(),
            },
            dry_run: true,
            blobs_only: false,
            policy: Policy {
                keep: Some(2),
                older_than: Some(std::time::Duration::from_secs(7 * 86_400)),
                older_than_text: Some("7d".into()),
                tags: vec!["cache-*".into()],
                exclude: vec!["cache-main".into()],
            },
            tags: vec![TagReport {
                tag: "cache-1".into(),
                digest: Some(Digest::of(b"m")),
                created_at: Some("2026-01-01T00:00:00Z".into()),
                age_seconds: Some(9 * 86_400),
                action: Action::WouldDelete,
                reason: "older than 7d".into(),
            }],
            unmatched: 1,
            untagged: 0,
            manifests: Vec::new(),
            blobs: Some(BlobReport::default()),
            spools: Some(Vec::new()),
            notes: Vec::new(),
            error: None,
        }
    }

    /// The keys of the JSON report, as docs/prune.md's table lists them.
    fn documented_keys() -> Vec<String> {
        let doc = include_str!("../../../docs/prune.md");
        let table = doc
            .split("## The JSON report")
            .nth(1)
            .expect("docs/prune.md has a JSON report section");
        table
            .lines()
            .skip_while(|line| !line.starts_with("| key"))
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .filter_map(|line| line.split('`').nth(1).map(str::to_string))
            .collect()
    }

    #[test]
    fn the_json_report_has_the_documented_keys_and_a_version() {
        let value = serde_json::to_value(local_report().document(1.5)).unwrap();
        let object = value.as_object().expect("an object");
        let mut keys: Vec<String> = object.keys().cloned().collect();
        let mut documented = documented_keys();
        keys.sort();
        documented.sort();
        assert_eq!(keys, documented);
        assert_eq!(value["version"], PRUNE_JSON_VERSION);
        assert_eq!(value["version"], 1);
        assert_eq!(value["command"], "prune");
        assert_eq!(
            value["target"],
            serde_json::json!({"type": "local", "dir": "/cache/app"})
        );
        assert_eq!(
            value["policy"],
            serde_json::json!({
                "keep": 2,
                "older_than": "7d",
                "older_than_seconds": 7 * 86_400,
                "tags": ["cache-*"],
                "exclude": ["cache-main"],
                "blobs_only": false,
            })
        );
        assert_eq!(
            value["counts"],
            serde_json::json!({
                "kept": 0, "deleted": 0, "would_delete": 1, "skipped": 0, "failed": 0,
            })
        );
        assert_eq!(value["tags"][0]["action"], "would-delete");
        assert_eq!(value["tags"][0]["age_seconds"], 9 * 86_400);
        assert_eq!(value["unmatched_tags"], 1);
        assert_eq!(value["seconds"], 1.5);
        assert!(value["error"].is_null());
    }

    #[test]
    fn ages_read_as_people_write_them() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(65), "1m5s");
        assert_eq!(human_age(3600), "1h");
        assert_eq!(human_age(36 * 3600 + 60), "1d12h");
        assert_eq!(human_age(7 * 86_400), "7d");
    }
}
