//! `regcache ls REPO`: every tag of a registry repository or local cache
//! directory, newest first, with what each holds. Tags that are not caches
//! are listed as such, never hidden. The JSON form is documented in
//! docs/ls.md.

use std::fmt::Write as _;
use std::time::SystemTime;

use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use super::OpsError;
use super::prune::{human_age, plural};
use crate::digest::Digest;
use crate::image::{Form, Writer};
use crate::progress::{human_bytes, printable};
use crate::spec::RepoTarget;
use crate::store::{self, RepoStore, StoreOptions, TagContent, TagInfo};

/// The version of the `--json` object; raised when a key changes meaning.
pub const LS_JSON_VERSION: u32 = 1;

pub struct LsOptions {
    pub target: RepoTarget,
    pub store: StoreOptions,
    /// Ages are measured from here.
    pub now: SystemTime,
}

/// What `ls --json` prints (docs/ls.md).
#[derive(Debug, Clone, Serialize)]
pub struct LsReport {
    pub version: u32,
    pub repository: Repository,
    /// `false`: a registry says the repository does not exist.
    pub exists: bool,
    /// Newest first; then caches without a creation time, then tags that
    /// are not caches or could not be read, each group by tag name.
    pub tags: Vec<TagEntry>,
    /// Local: index entries without a tag.
    pub untagged_manifests: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Repository {
    Registry {
        #[serde(rename = "ref")]
        reference: String,
    },
    Local {
        dir: String,
    },
}

impl Repository {
    /// How the reports (ls's, prune's) name the repository `target` is.
    pub fn of(target: &RepoTarget) -> Repository {
        match target {
            RepoTarget::Registry { repository, .. } => Repository::Registry {
                reference: repository.name(),
            },
            RepoTarget::Local { dir } => Repository::Local {
                dir: dir.to_string_lossy().into_owned(),
            },
        }
    }
}

/// What a tag holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TagKind {
    /// A BuildKit cache image, written by regcache or by BuildKit.
    Cache,
    /// A manifest that is not a cache image (an ordinary image, say).
    NotACache,
    /// The manifest or its config could not be read.
    Unreadable,
    /// The tag disappeared between listing and reading.
    Gone,
}

#[derive(Debug, Clone, Serialize)]
pub struct TagEntry {
    pub tag: String,
    pub kind: TagKind,
    /// Caches only: `regcache` or `buildkit`.
    pub writer: Option<Writer>,
    pub digest: Option<Digest>,
    /// The cache's own creation time, as it wrote it.
    pub created_at: Option<String>,
    pub age_seconds: Option<u64>,
    /// The manifest plus each distinct blob it references, once.
    pub size: Option<u64>,
    pub form: Option<Form>,
    /// `min` or `max`.
    pub mode: Option<String>,
    /// regcache caches: the entry paths; `null` otherwise.
    pub entries: Option<Vec<String>>,
    /// Why a tag is not a cache, or could not be read.
    pub reason: Option<String>,
    /// For sorting: the creation time.
    #[serde(skip)]
    created: Option<SystemTime>,
}

impl TagEntry {
    fn new(info: TagInfo, now: SystemTime) -> TagEntry {
        let mut entry = TagEntry {
            created: info.created(),
            tag: info.tag,
            kind: TagKind::Cache,
            writer: None,
            digest: info.digest,
            created_at: None,
            age_seconds: None,
            size: None,
            form: None,
            mode: None,
            entries: None,
            reason: None,
        };
        match info.content {
            TagContent::Cache(summary) => {
                entry.writer = Some(summary.writer);
                entry.created_at = summary.created.as_ref().map(|(_, text)| text.clone());
                entry.age_seconds = summary
                    .created
                    .as_ref()
                    .map(|(t, _)| now.duration_since(*t).unwrap_or_default().as_secs());
                entry.size = Some(summary.total_size);
                entry.form = Some(summary.form);
                entry.mode = summary.mode;
                entry.entries = (summary.writer == Writer::Regcache).then_some(summary.entries);
            }
            TagContent::NotACache(why) => {
                entry.kind = TagKind::NotACache;
                entry.reason = Some(why);
            }
            TagContent::Unreadable(why) => {
                entry.kind = TagKind::Unreadable;
                entry.reason = Some(why);
            }
            TagContent::Gone => {
                entry.kind = TagKind::Gone;
                entry.reason = Some("the tag disappeared while listing".into());
            }
        }
        entry
    }

    /// Where the entry sorts: caches with a time, newest first, then
    /// caches without one, then the rest.
    fn rank(&self) -> (u8, std::cmp::Reverse<Option<SystemTime>>) {
        let group = match (self.kind, self.created) {
            (TagKind::Cache, Some(_)) => 0,
            (TagKind::Cache, None) => 1,
            _ => 2,
        };
        (group, std::cmp::Reverse(self.created))
    }
}

/// Lists the repository. A registry repository that does not exist is an
/// empty listing (`exists: false`), as prune treats it.
pub async fn ls(options: &LsOptions) -> Result<LsReport, OpsError> {
    let repo = store::open_repository(&options.target, &options.store)?;
    let mut report = LsReport {
        version: LS_JSON_VERSION,
        repository: Repository::of(&options.target),
        exists: true,
        tags: Vec::new(),
        untagged_manifests: 0,
    };
    let Some(listing) = repo.list_tags().await? else {
        tracing::warn!("{}: no such repository", repo.describe());
        report.exists = false;
        return Ok(report);
    };
    report.untagged_manifests = listing.untagged;
    let repo: &dyn RepoStore = repo.as_ref();
    let now = options.now;
    let mut tags: Vec<TagEntry> = stream::iter(listing.tags)
        .map(|tag| async move { TagEntry::new(repo.read_cache(&tag, true).await, now) })
        .buffered(options.store.jobs.max(1))
        .collect()
        .await;
    tags.sort_by(|a, b| a.rank().cmp(&b.rank()).then_with(|| a.tag.cmp(&b.tag)));
    report.tags = tags;
    Ok(report)
}

impl LsReport {
    fn location(&self) -> &str {
        match &self.repository {
            Repository::Registry { reference } => reference,
            Repository::Local { dir } => dir,
        }
    }

    /// The table on stdout: one row per tag.
    pub fn render_table(&self) -> String {
        let header = [
            "TAG", "CREATED", "AGE", "SIZE", "FORM", "MODE", "KIND", "ENTRIES",
        ];
        let dash = || "-".to_string();
        let rows: Vec<[String; 8]> = self
            .tags
            .iter()
            .map(|t| {
                let kind = match (t.kind, t.writer, &t.reason) {
                    (TagKind::Cache, Some(writer), _) => writer.name().to_string(),
                    (TagKind::Cache, None, _) => "cache".into(),
                    (TagKind::NotACache, _, Some(why)) => format!("not a cache ({why})"),
                    (TagKind::NotACache, _, None) => "not a cache".into(),
                    (_, _, Some(why)) => why.clone(),
                    (_, _, None) => "unreadable".into(),
                };
                [
                    t.tag.clone(),
                    t.created
                        .map_or_else(dash, |c| humantime::format_rfc3339_seconds(c).to_string()),
                    t.age_seconds.map_or_else(dash, human_age),
                    t.size.map_or_else(dash, human_bytes),
                    t.form.map_or_else(dash, |f| f.name().to_string()),
                    t.mode.clone().unwrap_or_else(dash),
                    kind,
                    t.entries
                        .as_ref()
                        .filter(|e| !e.is_empty())
                        .map_or_else(dash, |e| e.join(", ")),
                ]
                .map(|cell| printable(&cell).into_owned())
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: [&str; 8]| {
            let mut text = String::new();
            for (i, cell) in cells.iter().enumerate() {
                text.push_str(cell);
                if i + 1 < cells.len() {
                    text.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
                }
            }
            text.trim_end().to_string()
        };
        let mut out = String::new();
        if rows.is_empty() {
            return out;
        }
        let _ = writeln!(out, "{}", line(header));
        for row in &rows {
            let _ = writeln!(out, "{}", line(row.each_ref().map(String::as_str)));
        }
        out
    }

    /// The summary on stderr.
    pub fn summary(&self) -> String {
        let location = printable(self.location()).into_owned();
        if !self.exists {
            return format!("{location}: no such repository\n");
        }
        let count = |f: &dyn Fn(&TagEntry) -> bool| self.tags.iter().filter(|t| f(t)).count();
        let regcache = count(&|t| t.writer == Some(Writer::Regcache));
        let buildkit = count(&|t| t.writer == Some(Writer::Buildkit));
        let other = self.tags.len() - regcache - buildkit;
        let mut parts = vec![
            format!("{regcache} regcache cache{}", plural(regcache)),
            format!("{buildkit} BuildKit cache{}", plural(buildkit)),
        ];
        if other > 0 {
            parts.push(format!("{other} other (not caches, or unreadable)"));
        }
        if self.untagged_manifests > 0 {
            parts.push(format!("{} untagged manifest(s)", self.untagged_manifests));
        }
        format!(
            "{location}: {} tag{}: {}\n",
            self.tags.len(),
            plural(self.tags.len()),
            parts.join(", ")
        )
    }
}
