//! `regcache prune`: tags removed by age and count, blobs collected.

use std::io::Write;

use regcache::cli::PruneArgs;
use regcache::ops::OpsError;
use regcache::ops::prune::{Policy, PruneOptions, prune};
use regcache::ops::target::{TargetWords, parse_repo_target};
use regcache::spec::RepoTarget;

use super::{Context, Finished, status_of};

pub(crate) async fn cmd_prune(args: PruneArgs, ctx: &Context) -> Finished {
    if !args.blobs_only && args.keep.is_none() && args.older_than.is_none() {
        return OpsError::Usage {
            message: "prune needs --keep N and/or --older-than DURATION to know what to keep"
                .into(),
            hint: Some(
                "e.g. `regcache prune --dry-run --keep 5 --older-than 7d --tag 'cache-*' TARGET`; \
                 --blobs-only removes only unreferenced blobs of a local directory"
                    .into(),
            ),
        }
        .into();
    }
    let target = match parse_repo_target(&args.target, TargetWords::PRUNE) {
        Ok(target) => target,
        Err(err) => return err.into(),
    };
    if args.blobs_only && matches!(target, RepoTarget::Registry { .. }) {
        return OpsError::Usage {
            message: "--blobs-only is for local directories".into(),
            hint: Some(
                "a registry frees unreferenced blobs itself, when its garbage collection runs \
                 (Distribution: `registry garbage-collect`)"
                    .into(),
            ),
        }
        .into();
    }
    let (report, error) = prune(PruneOptions {
        target,
        policy: Policy {
            keep: args.keep,
            older_than: args.older_than.as_ref().map(|a| a.duration),
            older_than_text: args.older_than.map(|a| a.text),
            tags: args.tags,
            exclude: args.exclude,
        },
        blobs_only: args.blobs_only,
        dry_run: args.dry_run,
        store: ctx.store.clone(),
        now: std::time::SystemTime::now(),
    })
    .await;
    let document = report.document(ctx.started.elapsed().as_secs_f64());
    let mut stdout = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut stdout, &document)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(stdout))
    } else if ctx.quiet {
        Ok(())
    } else {
        write!(stdout, "{}", report.render_table())
    };
    drop(stdout);
    let error = match (error, written) {
        (Some(err), _) => Some(err),
        (None, Err(e)) => Some(OpsError::Failed(format!("writing to stdout: {e}"))),
        (None, Ok(())) => None,
    };
    Finished {
        code: status_of(error.as_ref()),
        // With --json the object says it all; stderr keeps notes only.
        summary: (!args.json && (error.is_none() || !report.tags.is_empty()))
            .then(|| report.summary()),
        // A typed document always encodes: every key is a string.
        metadata: serde_json::to_value(&document).ok(),
        error,
    }
}
