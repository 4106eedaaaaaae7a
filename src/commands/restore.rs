//! `regcache restore`: every PATH from the first cache that holds it.

use std::sync::Arc;

use regcache::cli::RestoreArgs;
use regcache::ops::OpsError;
use regcache::ops::plan::Plan;
use regcache::ops::report::{Outcome, SaveState};
use regcache::ops::restore::{RestoreOptions, restore};

use super::{Context, Finished, no_specs, parse_all_from, print_plan, status_of};

pub(crate) async fn cmd_restore(args: RestoreArgs, ctx: &Context) -> Finished {
    let cache_from = match parse_all_from(&args.cache_from) {
        Ok(specs) if specs.is_empty() => return no_specs("--cache-from").into(),
        Ok(specs) => specs,
        Err(err) => return err.into(),
    };
    if args.dry_run {
        print_plan(
            &Plan {
                command: "restore",
                cache_to: &[],
                cache_from: &cache_from,
                paths: &args.paths,
                argv: None,
            },
            args.json,
        );
        return Finished::ok();
    }
    let result = restore(
        RestoreOptions {
            cache_from: cache_from.clone(),
            paths: args.paths.clone(),
            store: ctx.store.clone(),
            progress: Arc::clone(&ctx.progress),
            keep_going: false,
            allow_root_symlink: args.allow_root_symlink,
        },
        &ctx.cwd,
    )
    .await;
    let report = match result {
        Ok(report) => report,
        Err(err) => {
            // Record what was asked and why it stopped, for CI to read.
            let outcome = Outcome {
                command: "restore",
                cache_from: &cache_from,
                cache_to: &[],
                paths: &args.paths,
                restore: None,
                save: SaveState::NotRequested,
                run: None,
                seconds: ctx.started.elapsed().as_secs_f64(),
                error: Some(err.to_string()),
            };
            let code = status_of(Some(&err));
            return Finished {
                summary: None,
                ..Finished::from_outcome(&outcome, code, Some(err))
            };
        }
    };
    let miss = args.fail_on_miss && report.hits() == 0;
    let error = miss.then(|| OpsError::Failed("nothing was restored (--fail-on-miss)".into()));
    let outcome = Outcome {
        command: "restore",
        cache_from: &cache_from,
        cache_to: &[],
        paths: &args.paths,
        restore: Some(&report),
        save: SaveState::NotRequested,
        run: None,
        seconds: ctx.started.elapsed().as_secs_f64(),
        error: error.as_ref().map(ToString::to_string),
    };
    Finished::from_outcome(&outcome, u8::from(miss), error)
}
