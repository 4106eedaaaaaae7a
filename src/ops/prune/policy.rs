//! Which tags go: the policy (`--keep`, `--older-than`, `--tag`,
//! `--exclude`) applied to the caches read, newest first. Pure.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::report::{Action, TagReport};
use crate::digest::Digest;
use crate::store::{TagContent, TagInfo};

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

    /// The policy as the JSON report states it (docs/prune.md).
    pub(super) fn report(&self, blobs_only: bool) -> PolicyReport {
        PolicyReport {
            keep: self.keep,
            older_than: self.older_than_text.clone(),
            older_than_seconds: self.older_than.map(|d| d.as_secs()),
            tags: self.tags.clone(),
            exclude: self.exclude.clone(),
            blobs_only,
        }
    }
}

/// The `policy` object of the JSON report: the options as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyReport {
    pub keep: Option<usize>,
    /// `--older-than` as the user wrote it.
    pub older_than: Option<String>,
    pub older_than_seconds: Option<u64>,
    pub tags: Vec<String>,
    pub exclude: Vec<String>,
    pub blobs_only: bool,
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

/// A matching tag, read.
pub(super) struct Candidate {
    pub(super) tag: String,
    pub(super) digest: Option<Digest>,
    /// `Err`: why it is not judged (not a cache, unreadable).
    pub(super) created: Result<Option<(SystemTime, String)>, String>,
}

impl Candidate {
    /// A tag as read, judged: its creation time, or why it is not judged.
    pub(super) fn from_info(info: TagInfo) -> Candidate {
        let created = match info.content {
            TagContent::Cache(summary) => Ok(summary.created),
            TagContent::NotACache(why) => Err(format!("not a cache image ({why})")),
            TagContent::Unreadable(reason) => Err(reason),
            TagContent::Gone => Err("the tag disappeared while pruning".into()),
        };
        Candidate {
            tag: info.tag,
            digest: info.digest,
            created,
        }
    }
}

/// Decides every candidate: newest first, the policy's keepers kept.
pub(super) fn decide(
    candidates: Vec<Candidate>,
    policy: &Policy,
    now: SystemTime,
) -> Vec<TagReport> {
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
}
