//! Restore-key patterns: a `--cache-from` tag ending in `*` names the
//! newest cache whose tag starts with what precedes it, as actions/cache's
//! `restore-keys` prefixes do. Newest by the caches' own creation times,
//! as `prune` reads them (ties by tag name), never by the registry's.

use std::cmp::Reverse;

use futures_util::stream::{self, StreamExt};

use super::import::ImportError;
use crate::spec::RepoTarget;
use crate::store::{self, CacheStore, StoreOptions, TagInfo};

/// The cache a pattern resolved to.
pub struct Resolved {
    pub store: Box<dyn CacheStore>,
    pub tag: String,
}

/// Finds the newest cache in `repository` whose tag starts with `prefix`.
/// `Err`: why none is used (a miss, said as a warning).
pub async fn resolve(
    repository: &RepoTarget,
    prefix: &str,
    options: &StoreOptions,
) -> Result<Resolved, ImportError> {
    let pattern = format!("{prefix}*");
    let repo = store::open_repository(repository, options)?;
    let listing = repo.list_tags().await?.ok_or(ImportError::NoRepository)?;
    let matching: Vec<String> = listing
        .tags
        .into_iter()
        .filter(|tag| tag.starts_with(prefix))
        .collect();
    if matching.is_empty() {
        return Err(ImportError::NoMatch { pattern });
    }
    let repo = repo.as_ref();
    let infos: Vec<TagInfo> = stream::iter(&matching)
        .map(|tag| async move { repo.read_cache(tag, false).await })
        .buffered(options.jobs.max(1))
        .collect()
        .await;
    let Some(newest) = newest(&infos) else {
        return Err(ImportError::NoDatedMatch {
            count: matching.len(),
            pattern,
        });
    };
    tracing::info!(
        "{}: {pattern} matches {} tag(s); the newest cache is {}",
        repo.describe(),
        matching.len(),
        newest.tag
    );
    Ok(Resolved {
        store: repo.open_tag(&newest.tag)?,
        tag: newest.tag.clone(),
    })
}

/// The newest of the caches read, ties broken by tag name; tags that are
/// not caches, or record no creation time, are never chosen.
fn newest(infos: &[TagInfo]) -> Option<&TagInfo> {
    infos
        .iter()
        .filter_map(|info| info.created().map(|t| (info, t)))
        .min_by(|(a, ta), (b, tb)| {
            Reverse(ta)
                .cmp(&Reverse(tb))
                .then_with(|| a.tag.cmp(&b.tag))
        })
        .map(|(info, _)| info)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::image::{CacheSummary, Form, Writer};
    use crate::store::TagContent;

    fn cache(tag: &str, created: Option<SystemTime>) -> TagInfo {
        TagInfo {
            tag: tag.into(),
            digest: None,
            content: TagContent::Cache(Box::new(CacheSummary {
                created: created.map(|t| (t, String::new())),
                form: Form::ImageManifest,
                writer: Writer::Regcache,
                mode: None,
                entries: Vec::new(),
                total_size: 0,
            })),
        }
    }

    #[test]
    fn the_newest_cache_wins_and_ties_go_by_tag_name() {
        let now = SystemTime::now();
        let ago = |s| Some(now - Duration::from_secs(s));
        let infos = vec![
            cache("cache-a", ago(300)),
            cache("cache-z", ago(10)),
            TagInfo {
                tag: "cache-image".into(),
                digest: None,
                content: TagContent::NotACache("an image".into()),
            },
            cache("cache-untimed", None),
            cache("cache-m", ago(100)),
        ];
        assert_eq!(newest(&infos).map(|i| i.tag.as_str()), Some("cache-z"));
        let tied = vec![cache("b", ago(5)), cache("a", ago(5)), cache("c", ago(5))];
        assert_eq!(newest(&tied).map(|i| i.tag.as_str()), Some("a"));
        assert!(newest(&[cache("x", None)]).is_none());
    }
}
