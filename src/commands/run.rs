//! `regcache run`: restore, run the command, save if it succeeded.

use std::sync::Arc;

use regcache::cli::RunArgs;
use regcache::ops::OpsError;
use regcache::ops::plan::Plan;
use regcache::ops::report::{Outcome, SaveState};
use regcache::ops::run::{OnRestored, RunOptions, SaveOutcome, run as run_command};
use regcache::spec::CacheFrom;
use regcache::spec::ExportDefaults;

use super::{Context, Finished, parse_all_from, parse_all_to, part_size, print_plan};

pub(crate) async fn cmd_run(args: RunArgs, ctx: &Context) -> Finished {
    // Every spec is checked before anything runs: a typo exits 2 and
    // neither restores nor runs the command.
    let (cache_from, cache_to) = match (
        parse_all_from(&args.cache_from),
        // run saves as save does, for regcache alone to read.
        parse_all_to(&args.cache_to, ExportDefaults::Regcache),
    ) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(err), _) | (_, Err(err)) => return err.into(),
    };
    if args.fail_on_miss && cache_from.is_empty() {
        return OpsError::Usage {
            message: "--fail-on-miss needs a --cache-from to restore from".into(),
            hint: Some("add --cache-from SPEC, or drop --fail-on-miss".into()),
        }
        .into();
    }
    if args.dry_run {
        print_plan(
            &Plan {
                command: "run",
                cache_to: &cache_to,
                cache_from: &cache_from,
                paths: &args.paths,
                argv: Some(&args.command),
            },
            args.json,
        );
        return Finished::ok();
    }
    let result = run_command(
        RunOptions {
            cache_from: cache_from.clone(),
            cache_to: cache_to.clone(),
            paths: args.paths.clone(),
            argv: args.command.clone(),
            fail_on_miss: args.fail_on_miss,
            allow_root_symlink: args.allow_root_symlink,
            jobs: ctx.jobs,
            part_size: part_size(),
            store: ctx.store.clone(),
            progress: Arc::clone(&ctx.progress),
            on_restored: (!ctx.quiet).then(|| restored_line(&cache_from, &args.paths)),
        },
        &ctx.cwd,
    )
    .await;
    let report = match result {
        Ok(report) => report,
        Err(err) => return err.into(),
    };
    let error = report.error();
    let save = match &report.save {
        SaveOutcome::NotRequested => SaveState::NotRequested,
        SaveOutcome::Skipped(why) => SaveState::Skipped(why.clone()),
        SaveOutcome::Done(save) => SaveState::Done(save),
        SaveOutcome::Failed(err) => SaveState::Failed(err.to_string()),
    };
    let outcome = Outcome {
        command: "run",
        cache_from: &cache_from,
        cache_to: &cache_to,
        paths: &args.paths,
        restore: report.restore.as_ref(),
        save,
        run: Some(&report.command),
        seconds: ctx.started.elapsed().as_secs_f64(),
        error: error.as_ref().map(ToString::to_string),
    };
    Finished::from_outcome(&outcome, report.exit_code(), error)
}

/// Prints what run restored, as restore's summary says it, before the
/// command starts.
fn restored_line(cache_from: &[CacheFrom], paths: &[String]) -> OnRestored {
    let (cache_from, paths) = (cache_from.to_vec(), paths.to_vec());
    Box::new(move |report| {
        let outcome = Outcome {
            command: "restore",
            cache_from: &cache_from,
            cache_to: &[],
            paths: &paths,
            restore: Some(report),
            save: SaveState::NotRequested,
            run: None,
            seconds: 0.0,
            error: None,
        };
        eprint!(
            "{}",
            regcache::wrap::summary(&outcome.summary(), regcache::wrap::stderr_width())
        );
    })
}
