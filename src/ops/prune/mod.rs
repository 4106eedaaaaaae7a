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
//! Written once against [`RepoStore`]: where a delete takes the manifest
//! and every tag on it (a registry), a manifest that a kept or unmatched
//! tag also points at stays. Where the store collects garbage (a
//! directory), the blobs no remaining manifest references go too (what
//! buildx's `reset=true` does at export).
//!
//! - `policy`: which tags go.
//! - `report`: the table, the summary and the JSON.

mod policy;
mod report;

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use futures_util::stream::{self, StreamExt};

use super::OpsError;
use super::spool;
use crate::digest::Digest;
use crate::spec::RepoTarget;
use crate::store::{self, DeleteScope, Deletion, RepoStore, StoreError, StoreOptions};

use self::policy::{Candidate, decide};
pub use self::policy::{Policy, PolicyReport, glob_match};
pub use self::report::{
    Action, BlobReport, Counts, PRUNE_JSON_VERSION, PruneDocument, PruneReport, SpoolReport,
    TagReport, human_age, plural,
};

pub struct PruneOptions {
    pub target: RepoTarget,
    pub policy: Policy,
    /// Local only: remove unreferenced blobs, no tag.
    pub blobs_only: bool,
    pub dry_run: bool,
    pub store: StoreOptions,
    /// Ages are measured from here.
    pub now: SystemTime,
}

/// Runs the prune. The report is returned even when it stops on an error,
/// so that what was already deleted is said.
pub async fn prune(options: PruneOptions) -> (PruneReport, Option<OpsError>) {
    let mut report = PruneReport::new(&options);
    let result = match store::open_repository(&options.target, &options.store) {
        Ok(repo) => run(repo.as_ref(), &options, &mut report).await,
        Err(err) => Err(err.into()),
    };
    // A store error stays one: its kind and its hint (log in, fix the
    // docker config…) reach the user. Its text is the message; the error
    // printer does not repeat it as a cause.
    let error = result.err();
    report.error = error.as_ref().map(ToString::to_string);
    (report, error)
}

async fn run(
    repo: &dyn RepoStore,
    options: &PruneOptions,
    report: &mut PruneReport,
) -> Result<(), OpsError> {
    let Some(listing) = repo.list_tags().await? else {
        let note = format!("{}: no such repository; nothing to prune", repo.describe());
        tracing::warn!("{note}");
        report.notes.push(note);
        return Ok(());
    };
    let mut requests: Vec<(String, Digest)> = Vec::new();
    if !options.blobs_only {
        report.untagged = listing.untagged;
        let (matched, unmatched): (Vec<String>, Vec<String>) = listing
            .tags
            .into_iter()
            .partition(|t| options.policy.matches(t));
        report.unmatched = unmatched.len();
        tracing::info!(
            "{}: {} tags match, {} do not",
            repo.describe(),
            matched.len(),
            unmatched.len()
        );
        let jobs = options.store.jobs.max(1);
        let candidates: Vec<Candidate> = stream::iter(matched)
            .map(|tag| async move { Candidate::from_info(repo.read_cache(&tag, false).await) })
            .buffered(jobs)
            .collect()
            .await;
        let mut decided = decide(candidates, &options.policy, options.now);
        for t in decided.iter().filter(|t| t.action == Action::Skipped) {
            tracing::warn!("{}:{}: left alone: {}", repo.describe(), t.tag, t.reason);
        }
        if !decided.iter().any(|t| t.action == Action::WouldDelete) {
            report.tags = decided;
        } else {
            if repo.delete_scope() == DeleteScope::Manifest
                && let Err(err) = protect_shared(repo, unmatched, &mut decided, jobs).await
            {
                report.tags = decided;
                return Err(err);
            }
            for t in decided.iter().filter(|t| t.action == Action::WouldDelete) {
                if let Some(digest) = &t.digest {
                    requests.push((t.tag.clone(), digest.clone()));
                }
            }
            report.tags = decided;
        }
    }
    if !requests.is_empty() {
        delete(repo, &requests, options.dry_run, report).await?;
    }
    collect(repo, &requests, options.dry_run, report).await
}

/// A manifest delete removes every tag pointing at it: the digests of the
/// tags that stay (kept, skipped, unmatched) are protected, and a cache to
/// delete that shares one is kept.
async fn protect_shared(
    repo: &dyn RepoStore,
    unmatched: Vec<String>,
    decided: &mut [TagReport],
    jobs: usize,
) -> Result<(), OpsError> {
    let unmatched_digests: Vec<(String, Result<Option<Digest>, StoreError>)> =
        stream::iter(unmatched)
            .map(|tag| async move {
                let digest = repo.resolve_tag(&tag).await;
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
    Ok(())
}

/// Deletes the tags `requests` names (in a dry run, decides the same) and
/// says in the report what became of each.
async fn delete(
    repo: &dyn RepoStore,
    requests: &[(String, Digest)],
    dry_run: bool,
    report: &mut PruneReport,
) -> Result<(), OpsError> {
    let outcome = repo.delete_tags(requests, dry_run).await;
    let by_manifest = repo.delete_scope() == DeleteScope::Manifest;
    if by_manifest {
        let mut digests: Vec<Digest> = Vec::new();
        for ((_, digest), result) in requests.iter().zip(&outcome.results) {
            let gone = matches!(result, Deletion::Deleted | Deletion::AlreadyGone);
            if gone && !digests.contains(digest) {
                digests.push(digest.clone());
            }
        }
        report.manifests = digests;
    }
    let results: HashMap<&str, Deletion> = requests
        .iter()
        .zip(&outcome.results)
        .map(|((tag, _), result)| (tag.as_str(), *result))
        .collect();
    for t in report
        .tags
        .iter_mut()
        .filter(|t| t.action == Action::WouldDelete)
    {
        match results.get(t.tag.as_str()) {
            Some(Deletion::Deleted) if !dry_run => t.action = Action::Deleted,
            Some(Deletion::Deleted) | None => {}
            Some(Deletion::AlreadyGone) => {
                t.action = Action::Deleted;
                t.reason = format!("{} (already gone)", t.reason);
            }
            Some(Deletion::Changed) => {
                t.action = Action::Kept;
                t.reason = format!("{}; but the tag changed while pruning", t.reason);
            }
            Some(Deletion::Failed) => {
                // The whole error is printed once, last.
                t.action = Action::Failed;
                t.reason = if by_manifest {
                    "the registry refused the delete (see the error)".into()
                } else {
                    "the delete failed (see the error)".into()
                };
            }
            Some(Deletion::NotTried) => {
                t.action = Action::Kept;
                t.reason = format!("{}; not deleted: an earlier delete failed", t.reason);
            }
        }
    }
    match outcome.error {
        Some(err) => Err(OpsError::Store(err)),
        None => Ok(()),
    }
}

/// Where the store collects garbage: the spools of killed saves, then the
/// blobs no remaining tag references.
async fn collect(
    repo: &dyn RepoStore,
    requests: &[(String, Digest)],
    dry_run: bool,
    report: &mut PruneReport,
) -> Result<(), OpsError> {
    if let Some(dir) = repo.spool_dir() {
        // A spool's owner holds a lock on it while it lives, so one of a
        // save running now is never taken (see ops::spool).
        let spools =
            tokio::task::block_in_place(|| spool::leftovers(&dir, spool::LOCAL_PREFIX, !dry_run));
        report.spools = Some(
            spools
                .into_iter()
                .map(|leftover| SpoolReport {
                    path: leftover.path.to_string_lossy().into_owned(),
                    bytes: leftover.bytes,
                })
                .collect(),
        );
    }
    // A dry run deleted nothing: the blobs are judged as if it had.
    let going: HashSet<&str> = report
        .tags
        .iter()
        .filter(|t| t.action == Action::WouldDelete)
        .map(|t| t.tag.as_str())
        .collect();
    let pending: Vec<String> = requests
        .iter()
        .filter(|(tag, _)| dry_run && going.contains(tag.as_str()))
        .map(|(tag, _)| tag.clone())
        .collect();
    let Some(garbage) = repo.collect_garbage(dry_run, &pending).await? else {
        return Ok(());
    };
    if let Some(reason) = &garbage.skipped {
        tracing::warn!("{}: no blob removed: {reason}", repo.describe());
    }
    report.blobs = Some(BlobReport {
        removed: garbage.removed.len(),
        removed_bytes: garbage.removed.iter().map(|(_, size)| size).sum(),
        kept: garbage.kept,
        skipped_reason: garbage.skipped,
    });
    Ok(())
}
