//! What prune reports: the table on stdout, the summary on stderr and the
//! JSON object of `--json` and `--metadata-file` (docs/prune.md).

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use super::{Policy, PruneOptions};
use crate::digest::Digest;
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

    /// The report as `--json` and `--metadata-file` give it (docs/prune.md).
    pub fn to_json(&self, seconds: f64) -> Value {
        json!({
            "command": "prune",
            "target": target_json(&self.target),
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

fn target_json(target: &RepoTarget) -> Value {
    match target {
        RepoTarget::Registry { repository, .. } => {
            json!({"type": "registry", "ref": repository.name()})
        }
        RepoTarget::Local { dir } => {
            json!({"type": "local", "dir": dir.to_string_lossy()})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_people_write_them() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(65), "1m5s");
        assert_eq!(human_age(3600), "1h");
        assert_eq!(human_age(36 * 3600 + 60), "1d12h");
        assert_eq!(human_age(7 * 86_400), "7d");
    }
}
