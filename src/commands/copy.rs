//! `regcache copy`: pre-warm, merge or convert caches for BuildKit.

use std::sync::Arc;

use regcache::cli::CopyArgs;
use regcache::ops::OpsError;
use regcache::ops::copy::{CopyOptions, copy};
use regcache::ops::plan::Plan;
use regcache::ops::report::{Outcome, SaveState};
use regcache::spec::ExportDefaults;

use super::{Context, Finished, no_specs, parse_all_from, parse_all_to, print_plan, status_of};

pub(crate) async fn cmd_copy(args: CopyArgs, ctx: &Context) -> Finished {
    let cache_from = match parse_all_from(&args.cache_from) {
        Ok(specs) if specs.is_empty() => return no_specs("--cache-from").into(),
        Ok(specs) => specs,
        Err(err) => return err.into(),
    };
    // A copy keeps the source's value of every key its spec leaves out.
    let cache_to = match parse_all_to(&args.cache_to, ExportDefaults::Source) {
        Ok(specs) if specs.is_empty() => return no_specs("--cache-to").into(),
        Ok(specs) => specs,
        Err(err) => return err.into(),
    };
    if args.dry_run {
        print_plan(
            &Plan {
                command: "copy",
                cache_to: &cache_to,
                cache_from: &cache_from,
                paths: &[],
                argv: None,
            },
            args.json,
        );
        return Finished::ok();
    }
    let result = copy(CopyOptions {
        cache_from: cache_from.clone(),
        cache_to: cache_to.clone(),
        store: ctx.store.clone(),
        progress: Arc::clone(&ctx.progress),
        jobs: ctx.jobs,
    })
    .await;
    let report = match result {
        Ok(report) => report,
        Err(err) => return err.into(),
    };
    let miss = args.fail_on_miss && !report.loaded_any();
    let error = if miss {
        Some(OpsError::Failed(
            "no --cache-from could be read (--fail-on-miss)".into(),
        ))
    } else {
        report.targets.failure()
    };
    let outcome = Outcome {
        command: "copy",
        cache_from: &cache_from,
        cache_to: &cache_to,
        paths: &[],
        restore: Some(&report.sources),
        save: SaveState::Done(&report.targets),
        run: None,
        seconds: ctx.started.elapsed().as_secs_f64(),
        error: error.as_ref().map(ToString::to_string),
    };
    Finished::from_outcome(&outcome, status_of(error.as_ref()), error)
}
