//! The `regcache` binary: parse, set up logging and progress, run, print
//! the summary, write the metadata file, map errors to exit codes.
//! Everything else lives in the library.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

use regcache::cli::{
    Cli, Command, CopyArgs, InspectArgs, LsArgs, ProgressMode, PruneArgs, RestoreArgs, RunArgs,
    SaveArgs,
};
use regcache::ops::copy::{CopyOptions, copy};
use regcache::ops::ls::{LsOptions, ls};
use regcache::ops::plan::Plan;
use regcache::ops::prune::{Policy, PruneOptions, prune};
use regcache::ops::report::{Outcome, SaveState, write_metadata};
use regcache::ops::restore::{RestoreOptions, restore};
use regcache::ops::run::{RunOptions, SaveOutcome, run as run_command};
use regcache::ops::save::{SaveOptions, save};
use regcache::ops::target::{TargetWords, parse_repo_target};
use regcache::ops::{OpsError, inspect};
use regcache::progress::{
    LogWriter, NoProgress, PlainProgress, Progress, TerminalProgress, printable,
};
use regcache::spec::{
    CacheFrom, CacheTo, ExportDefaults, RepoTarget, parse_cache_from, parse_cache_to,
};
use regcache::store::StoreOptions;
use regcache::store::registry::clients::RegistryClients;

/// The average uncompressed bytes per layer (see `DEFAULT_PART_SIZE`).
/// `REGCACHE_PART_SIZE` (bytes) overrides it: a test knob, so small trees
/// can be cut into many parts; not a documented setting.
fn part_size() -> u64 {
    std::env::var("REGCACHE_PART_SIZE")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(regcache::layer::DEFAULT_PART_SIZE)
}

/// Tags per page of a registry's tag list. `REGCACHE_TAGS_PAGE_SIZE`
/// overrides the default: a test knob, so a few tags span many pages; not
/// a documented setting.
fn tags_page_size() -> Option<usize> {
    std::env::var("REGCACHE_TAGS_PAGE_SIZE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mode = effective_progress(cli.progress, cli.quiet);
    let color = std::io::stderr().is_terminal() && !no_color();
    init_logging(cli.verbose, mode == ProgressMode::Quiet, color);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(dispatch(cli, mode, color));
    ExitCode::from(code)
}

/// `NO_COLOR` set to anything but the empty string (no-color.org).
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// `auto` resolved as buildx does: bars on a terminal, lines elsewhere.
/// `-q` is `--progress quiet`.
fn effective_progress(mode: ProgressMode, quiet: bool) -> ProgressMode {
    if quiet {
        return ProgressMode::Quiet;
    }
    match mode {
        ProgressMode::Auto => {
            let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
            if std::io::stderr().is_terminal() && !dumb {
                ProgressMode::Tty
            } else {
                ProgressMode::Plain
            }
        }
        other => other,
    }
}

/// Settings every command shares.
struct Context {
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
struct Finished {
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
fn status_of(error: Option<&OpsError>) -> u8 {
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

async fn dispatch(cli: Cli, mode: ProgressMode, color: bool) -> u8 {
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
    };
    // The bars leave the screen before the summary is printed under them.
    progress.clear();
    drop(ctx);
    drop(progress);
    finish(finished, cli.metadata_file.as_deref(), quiet)
}

/// Prints the summary, writes the metadata file, prints the error; returns
/// the exit status.
fn finish(finished: Finished, metadata_file: Option<&Path>, quiet: bool) -> u8 {
    let mut code = finished.code;
    if let Some(summary) = &finished.summary
        && !quiet
    {
        eprint!("{summary}");
    }
    // Exit status 2 means the request was refused before any I/O: then
    // there is nothing to record, and nothing is written.
    if let (Some(path), Some(metadata)) = (metadata_file, &finished.metadata)
        && code != 2
        && let Err(err) = write_metadata(path, metadata)
    {
        eprintln!("error: writing the metadata file {}: {err}", path.display());
        if code == 0 {
            code = 1;
        }
    }
    if let Some(err) = &finished.error {
        print_error(err);
    }
    code
}

fn print_error(err: &OpsError) {
    let message = err.to_string();
    eprintln!("error: {}", printable_lines(&message));
    // A cause whose text the line above already says adds nothing: errors
    // that wrap another put its text in their own.
    let mut said = message;
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !said.contains(&text) {
            eprintln!("  caused by: {}", printable_lines(&text));
            said = text;
        }
        source = cause.source();
    }
    if let Some(hint) = err.hint() {
        eprintln!("hint: {}", printable_lines(&hint));
    }
}

/// An error's text with its own line breaks kept (a spec error ends with
/// a `hint:` line) but any other control character, which may come from a
/// cache, escaped.
fn printable_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| printable(line).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse_all_to(values: &[String], defaults: ExportDefaults) -> Result<Vec<CacheTo>, OpsError> {
    let mut specs = Vec::new();
    for value in values {
        specs.extend(parse_cache_to(value, defaults)?);
    }
    Ok(specs)
}

fn parse_all_from(values: &[String]) -> Result<Vec<CacheFrom>, OpsError> {
    let mut specs = Vec::new();
    for value in values {
        specs.extend(parse_cache_from(value)?);
    }
    Ok(specs)
}

/// buildx skips empty flag values; a command left with none has nothing
/// to do, which is a configuration mistake worth stopping on.
fn no_specs(flag: &str) -> OpsError {
    OpsError::Usage {
        message: format!("every {flag} value is empty"),
        hint: Some(format!("give {flag} a spec such as type=local,dest=DIR")),
    }
}

fn print_plan(plan: &Plan<'_>, json: bool) {
    if json {
        println!("{}", plan.to_json());
    } else {
        print!("{}", plan.render_human());
    }
}

async fn cmd_save(args: SaveArgs, ctx: &Context) -> Finished {
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

async fn cmd_copy(args: CopyArgs, ctx: &Context) -> Finished {
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

async fn cmd_restore(args: RestoreArgs, ctx: &Context) -> Finished {
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

async fn cmd_run(args: RunArgs, ctx: &Context) -> Finished {
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

async fn cmd_inspect(args: InspectArgs, ctx: &Context) -> Finished {
    if ctx.metadata_file.is_some() {
        tracing::warn!(
            "inspect does not write --metadata-file; use `inspect --json` for a machine-readable report"
        );
    }
    let mut specs = match parse_cache_from(&args.spec) {
        Ok(specs) => specs,
        Err(err) => return OpsError::from(err).into(),
    };
    if specs.len() != 1 {
        return OpsError::Usage {
            message: format!(
                "inspect takes one cache, {:?} names {}",
                args.spec,
                specs.len()
            ),
            hint: None,
        }
        .into();
    }
    let spec = specs.remove(0);
    let report = match inspect::inspect(&spec, &ctx.store).await {
        Ok(report) => report,
        Err(err) => return err.into(),
    };
    let mut stdout = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut stdout, &report)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(stdout))
    } else {
        write!(stdout, "{}", report.render_human())
    };
    match written {
        Ok(()) => Finished::ok(),
        Err(e) => OpsError::Failed(format!("writing to stdout: {e}")).into(),
    }
}

async fn cmd_prune(args: PruneArgs, ctx: &Context) -> Finished {
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
    let json = report.to_json(ctx.started.elapsed().as_secs_f64());
    let mut stdout = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut stdout, &json)
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
        metadata: Some(json),
        error,
    }
}

async fn cmd_ls(args: LsArgs, ctx: &Context) -> Finished {
    let target = match parse_repo_target(&args.repo, TargetWords::LS) {
        Ok(target) => target,
        Err(err) => return err.into(),
    };
    let report = match ls(&LsOptions {
        target,
        store: ctx.store.clone(),
        now: std::time::SystemTime::now(),
    })
    .await
    {
        Ok(report) => report,
        Err(err) => return err.into(),
    };
    let json = match serde_json::to_value(&report) {
        Ok(json) => json,
        Err(e) => return OpsError::Failed(format!("encoding the listing: {e}")).into(),
    };
    let mut stdout = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut stdout, &json)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(stdout))
    } else {
        write!(stdout, "{}", report.render_table())
    };
    drop(stdout);
    let error = written
        .err()
        .map(|e| OpsError::Failed(format!("writing to stdout: {e}")));
    Finished {
        code: status_of(error.as_ref()),
        summary: (!args.json).then(|| report.summary()),
        metadata: Some(json),
        error,
    }
}

fn init_logging(verbose: u8, quiet: bool, color: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = EnvFilter::try_from_default_env()
        // rustls-platform-verifier logs a certificate failure at error level
        // on its own; regcache's error already says it, with the registry.
        .unwrap_or_else(|_| {
            EnvFilter::new(format!(
                "regcache={default},warn,rustls_platform_verifier=off"
            ))
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogWriter)
        .event_format(PlainFormat { color })
        .init();
}

/// `warning: …` / `error: …` lines, as compilers and buildx print them,
/// instead of tracing's timestamped default.
struct PlainFormat {
    color: bool,
}

impl<S, N> FormatEvent<S, N> for PlainFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let (label, color) = match *event.metadata().level() {
            Level::ERROR => ("error: ", "\x1b[1;31m"),
            Level::WARN => ("warning: ", "\x1b[1;33m"),
            Level::INFO => ("", ""),
            Level::DEBUG => ("debug: ", "\x1b[2m"),
            Level::TRACE => ("trace: ", "\x1b[2m"),
        };
        if self.color && !color.is_empty() {
            write!(writer, "{color}{label}\x1b[0m")?;
        } else {
            write!(writer, "{label}")?;
        }
        // Messages can quote names that come from a cache (untrusted): no
        // control character of theirs may reach the terminal.
        let mut message = String::new();
        ctx.field_format()
            .format_fields(Writer::new(&mut message), event)?;
        writeln!(writer, "{}", printable(&message))
    }
}
