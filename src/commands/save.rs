//! `regcache save`: specs checked, the save run, its outcome summarised.

use std::sync::Arc;

use regcache::cli::SaveArgs;
use regcache::ops::plan::Plan;
use regcache::ops::report::{Outcome, SaveState};
use regcache::ops::save::{SaveOptions, save};
use regcache::spec::ExportDefaults;

use super::{
    Context, Finished, no_specs, parse_all_from, parse_all_to, part_size, print_plan, status_of,
};

pub(crate) async fn cmd_save(args: SaveArgs, ctx: &Context) -> Finished {
    // Only regcache reads what save writes, hence regcache's defaults.
    let cache_to = match parse_all_to(&args.cache_to, ExportDefaults::Regcache) {
        Ok(specs) if specs.is_empty() => return no_specs("--cache-to").into(),
        Ok(specs) => specs,
        Err(err) => return err.into(),
    };
    let cache_from = match parse_all_from(&args.cache_from) {
        Ok(specs) => specs,
        Err(err) => return err.into(),
    };
    if args.dry_run {
        print_plan(
            &Plan {
                command: "save",
                cache_to: &cache_to,
                cache_from: &cache_from,
                paths: &args.paths,
                argv: None,
            },
            args.json,
        );
        return Finished::ok();
    }
    let saved = save(
        SaveOptions {
            cache_to: cache_to.clone(),
            cache_from: cache_from.clone(),
            paths: args.paths.clone(),
            jobs: ctx.jobs,
            part_size: part_size(),
            store: ctx.store.clone(),
            progress: Arc::clone(&ctx.progress),
            mount_sources: Vec::new(),
        },
        &ctx.cwd,
    )
    .await;
    let (report, error) = match saved {
        Ok(report) => {
            // As in restore, a base that is not there is a warning: the
            // save goes on and packs what it would have reused.
            for base in report.bases.iter().filter(|b| !b.loaded) {
                let reason = base.reason.as_deref().unwrap_or("not read");
                tracing::warn!(
                    "cache {}: {reason}; going on without it as a base",
                    base.source
                );
            }
            let failure = report.failure();
            (Some(report), failure)
        }
        // Refused before any I/O: nothing to summarise or record.
        Err(err) if err.exit_code() == 2 => return err.into(),
        Err(err) => (None, Some(err)),
    };
    let outcome = Outcome {
        command: "save",
        cache_from: &cache_from,
        cache_to: &cache_to,
        paths: &args.paths,
        restore: None,
        save: match (&report, &error) {
            (Some(report), _) => SaveState::Done(report),
            (None, err) => {
                SaveState::Failed(err.as_ref().map(ToString::to_string).unwrap_or_default())
            }
        },
        run: None,
        seconds: ctx.started.elapsed().as_secs_f64(),
        error: error.as_ref().map(ToString::to_string),
    };
    Finished::from_outcome(&outcome, status_of(error.as_ref()), error)
}
