//! `regcache inspect SPEC`: what a cache holds, for people and for scripts.

use std::fmt::Write as _;
use std::time::SystemTime;

use super::OpsError;
use super::import;
use super::prune::human_age;
use crate::digest::Digest;
use crate::image::InspectReport;
use crate::progress::{human_bytes, printable};
use crate::spec::CacheFrom;
use crate::spec::{ImportSource, RepoTarget};
use crate::store::{StoreErrorKind, StoreOptions};

/// Loads the cache `spec` names and describes it. Unlike restore, a cache
/// that cannot be read is an error here: the user asked about this one.
pub async fn inspect(spec: &CacheFrom, options: &StoreOptions) -> Result<InspectReport, OpsError> {
    let loaded = import::load(spec, options)
        .await
        .map_err(|source| OpsError::Import {
            location: spec.location(),
            hint: (source.kind() == StoreErrorKind::NotFound).then(|| list_hint(spec)),
            source: Box::new(source),
        })?;
    Ok(InspectReport::new(
        &loaded.raw,
        &loaded.image,
        &loaded.config,
        loaded.entries.as_ref(),
        SystemTime::now(),
    ))
}

/// Where to look for the caches that do exist.
fn list_hint(spec: &CacheFrom) -> String {
    let repo = match &spec.source {
        ImportSource::Registry { reference, .. } => reference.name(),
        ImportSource::Local { src, .. } => format!("type=local,src={}", src.display()),
        ImportSource::Pattern { repository, .. } => match repository {
            RepoTarget::Local { dir } => format!("type=local,src={}", dir.display()),
            RepoTarget::Registry { .. } => repository.location(),
        },
    };
    format!("`regcache ls {repo}` lists the caches there")
}

impl InspectReport {
    /// A readable summary: the image, when it was made, a table of the
    /// config's layers, the record counts, a table of entries if any, and
    /// the total size.
    pub fn render_human(&self) -> String {
        let mut out = String::new();
        let created = match (&self.created, self.age_seconds) {
            // As `ls` shows them: to the second, then the age.
            (Some(at), Some(age)) => format!(
                "{} ({} ago)",
                humantime::format_rfc3339_seconds(*at),
                human_age(age)
            ),
            _ => "- (the cache records no creation time)".to_string(),
        };
        let header = [
            (
                "form",
                format!("{} ({})", self.form, printable(&self.media_type)),
            ),
            ("manifest", self.manifest_digest.to_string()),
            ("created", created),
            (
                "records",
                format!("{} ({} with results)", self.records, self.results),
            ),
            (
                "layers",
                format!(
                    "{} ({} distinct blob{})",
                    self.layers.len(),
                    self.blobs,
                    if self.blobs == 1 { "" } else { "s" }
                ),
            ),
            (
                "total size",
                format!(
                    "{} ({} bytes)",
                    human_bytes(self.total_size),
                    self.total_size
                ),
            ),
        ];
        let width = header.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
        for (key, value) in header {
            let _ = writeln!(out, "{:<width$} {value}", format!("{key}:"));
        }

        if !self.layers.is_empty() {
            out.push('\n');
            let rows = self
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    vec![
                        i.to_string(),
                        l.parent.map_or_else(|| "-".to_string(), |p| p.to_string()),
                        l.digest.short(),
                        human_bytes(l.size),
                        l.compression.clone(),
                        l.uncompressed_digest
                            .as_ref()
                            .map_or_else(|| "-".to_string(), Digest::short),
                    ]
                })
                .collect::<Vec<_>>();
            out.push_str(&table(
                &[
                    "LAYER",
                    "PARENT",
                    "BLOB",
                    "SIZE",
                    "COMPRESSION",
                    "UNCOMPRESSED",
                ],
                &[true, true, false, true, false, false],
                &rows,
            ));
        }

        if !self.entries.is_empty() {
            out.push('\n');
            let rows = self
                .entries
                .iter()
                .map(|e| {
                    vec![
                        printable(&e.path).into_owned(),
                        e.files.to_string(),
                        human_bytes(e.bytes),
                        e.layers.to_string(),
                    ]
                })
                .collect::<Vec<_>>();
            out.push_str(&table(
                &["ENTRY", "FILES", "SIZE", "LAYERS"],
                &[false, true, true, true],
                &rows,
            ));
        }
        out
    }
}

/// Columns separated by two spaces, padded to the widest cell; `right`
/// says which columns are right-aligned (numbers).
fn table(headers: &[&str], right: &[bool], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            if i > 0 {
                line.push_str("  ");
            }
            if right.get(i).copied().unwrap_or(false) {
                let _ = write!(line, "{cell:>width$}");
            } else {
                let _ = write!(line, "{cell:<width$}");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let rows = vec![
            vec!["a".to_string(), "1".to_string()],
            vec!["long".to_string(), "100".to_string()],
        ];
        let text = table(&["NAME", "N"], &[false, true], &rows);
        assert_eq!(text, "NAME    N\na       1\nlong  100\n");
    }
}
