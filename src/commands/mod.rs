//! The commands of the binary, one module each: each parses its specs,
//! calls the library, and says how it ended ([`Finished`]); [`dispatch`]
//! runs the one asked for and [`output::finish`] tells the user.

mod copy;
mod inspect;
mod ls;
mod output;
mod prune;
mod restore;
mod run;
mod save;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use regcache::cli::completions;
use regcache::cli::{Cli, Command, ProgressMode};
use regcache::ops::OpsError;
use regcache::ops::report::Outcome;
use regcache::progress::{NoProgress, PlainProgress, Progress, TerminalProgress};
use regcache::spec::{CacheFrom, CacheTo, ExportDefaults, parse_cache_from, parse_cache_to};
use regcache::store::StoreOptions;
use regcache::store::registry::clients::RegistryClients;

use copy::cmd_copy;
use inspect::cmd_inspect;
use ls::cmd_ls;
use output::finish;
pub(crate) use output::print_plan;
use prune::cmd_prune;
use restore::cmd_restore;
use run::cmd_run;
use save::cmd_save;

/// The average uncompressed bytes per layer (see `DEFAULT_PART_SIZE`).
/// `REGCACHE_PART_SIZE` (bytes) overrides it: a test knob, so small trees
/// can be cut into many parts; not a documented setting.
pub(crate) fn part_size() -> u64 {
    std::env::var("REGCACHE_PART_SIZE")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(regcache::layer::DEFAULT_PART_SIZE)
}

/// Tags per page of a registry's tag list. `REGCACHE_TAGS_PAGE_SIZE`
/// overrides the default: a test knob, so a few tags span many pages; not
/// a documented setting.
pub(crate) fn tags_page_size() -> Option<usize> {
    std::env::var("REGCACHE_TAGS_PAGE_SIZE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
}

/// Settings every command shares.
pub(crate) struct Context {
    jobs: usize,
    cwd: PathBuf,
    store: StoreOptions,
    progress: Arc<dyn Progress>,
    metadata_file: Option<PathBuf>,
    started: Instant,
    /// `--progress quiet` / `-q`.
    quiet: bool,
}

/// How a command ended: its status, what to tell the user and what to
/// record, and the error to print last.
pub(crate) struct Finished {
    code: u8,
    summary: Option<String>,
    metadata: Option<serde_json::Value>,
    error: Option<OpsError>,
}

impl Finished {
    fn ok() -> Finished {
        Finished {
            code: 0,
            summary: None,
            metadata: None,
            error: None,
        }
    }

    fn from_outcome(outcome: &Outcome<'_>, code: u8, error: Option<OpsError>) -> Finished {
        Finished {
            code,
            summary: Some(outcome.summary()),
            metadata: Some(outcome.metadata()),
            error,
        }
    }
}

/// The exit status for a command that ends with `error` (0 with none).
pub(crate) fn status_of(error: Option<&OpsError>) -> u8 {
    error.map_or(0, |err| u8::try_from(err.exit_code()).unwrap_or(1))
}

impl From<OpsError> for Finished {
    fn from(err: OpsError) -> Finished {
        Finished {
            code: status_of(Some(&err)),
            summary: None,
            metadata: None,
            error: Some(err),
        }
    }
}

pub(crate) async fn dispatch(cli: Cli, mode: ProgressMode, color: bool) -> u8 {
    let started = Instant::now();
    let jobs = cli
        .jobs
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(e) => {
            return finish(
                OpsError::Failed(format!("cannot read the working directory: {e}")).into(),
                None,
                true,
            );
        }
    };
    let progress: Arc<dyn Progress> = match mode {
        ProgressMode::Tty => Arc::new(TerminalProgress::stderr(color)),
        ProgressMode::Plain | ProgressMode::Auto => Arc::new(PlainProgress::stderr()),
        ProgressMode::Quiet => Arc::new(NoProgress),
    };
    let quiet = mode == ProgressMode::Quiet;
    let ctx = Context {
        jobs,
        cwd,
        store: StoreOptions {
            insecure_registries: cli.insecure_registries.clone(),
            jobs,
            // The one set of registry clients of this run: every store
            // opened below shares its tokens and connections.
            registry_clients: RegistryClients::new(),
            tags_page_size: tags_page_size(),
        },
        progress: Arc::clone(&progress),
        metadata_file: cli.metadata_file.clone(),
        started,
        quiet,
    };
    let finished = match cli.command {
        Command::Save(args) => cmd_save(args, &ctx).await,
        Command::Restore(args) => cmd_restore(args, &ctx).await,
        Command::Copy(args) => cmd_copy(args, &ctx).await,
        Command::Run(args) => cmd_run(args, &ctx).await,
        Command::Inspect(args) => cmd_inspect(args, &ctx).await,
        Command::Prune(args) => cmd_prune(args, &ctx).await,
        Command::Ls(args) => cmd_ls(args, &ctx).await,
        Command::Completions(args) => {
            match completions::write(args.shell, &mut std::io::stdout().lock()) {
                Ok(()) => Finished::ok(),
                Err(err) => OpsError::Failed(format!("writing the completions: {err}")).into(),
            }
        }
    };
    // The bars leave the screen before the summary is printed under them.
    progress.clear();
    drop(ctx);
    drop(progress);
    finish(finished, cli.metadata_file.as_deref(), quiet)
}

pub(crate) fn parse_all_to(
    values: &[String],
    defaults: ExportDefaults,
) -> Result<Vec<CacheTo>, OpsError> {
    let mut specs = Vec::new();
    for value in values {
        specs.extend(parse_cache_to(value, defaults)?);
    }
    Ok(specs)
}

pub(crate) fn parse_all_from(values: &[String]) -> Result<Vec<CacheFrom>, OpsError> {
    let mut specs = Vec::new();
    for value in values {
        specs.extend(parse_cache_from(value)?);
    }
    Ok(specs)
}

/// buildx skips empty flag values; a command left with none has nothing
/// to do, which is a configuration mistake worth stopping on.
pub(crate) fn no_specs(flag: &str) -> OpsError {
    OpsError::Usage {
        message: format!("every {flag} value is empty"),
        hint: Some(format!("give {flag} a spec such as type=local,dest=DIR")),
    }
}
