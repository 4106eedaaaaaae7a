//! The `regcache` binary: parse, set up logging, run, map errors to exit
//! codes. Everything else lives in the library.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

use regcache::cli::{Cli, Command, InspectArgs, RestoreArgs, SaveArgs};
use regcache::ops::plan::Plan;
use regcache::ops::restore::{RestoreOptions, RestoreReport, restore};
use regcache::ops::save::{SaveOptions, SaveReport, save};
use regcache::ops::{OpsError, inspect};
use regcache::spec::{CacheFrom, CacheTo, parse_cache_from, parse_cache_to};
use regcache::store::StoreOptions;

/// Uncompressed bytes per layer: small enough that a tree of a few hundred
/// MB spreads over every core, large enough to keep the blob count low.
const PART_SIZE: u64 = 64 << 20;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
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
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            if let Some(hint) = err.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(1))
        }
    }
}

async fn run(cli: Cli) -> Result<u8, OpsError> {
    let jobs = cli
        .jobs
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let cwd = std::env::current_dir()
        .map_err(|e| OpsError::Failed(format!("cannot read the working directory: {e}")))?;
    match cli.command {
        Command::Save(args) => run_save(args, jobs, cwd, cli.quiet).await,
        Command::Restore(args) => run_restore(args, cwd, cli.quiet).await,
        Command::Inspect(args) => run_inspect(args).await,
    }
}

fn parse_all_to(values: &[String]) -> Result<Vec<CacheTo>, OpsError> {
    let mut specs = Vec::new();
    for value in values {
        specs.extend(parse_cache_to(value)?);
    }
    if specs.is_empty() {
        return Err(no_specs("--cache-to"));
    }
    Ok(specs)
}

fn parse_all_from(values: &[String]) -> Result<Vec<CacheFrom>, OpsError> {
    let mut specs = Vec::new();
    for value in values {
        specs.extend(parse_cache_from(value)?);
    }
    if specs.is_empty() {
        return Err(no_specs("--cache-from"));
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

async fn run_save(args: SaveArgs, jobs: usize, cwd: PathBuf, quiet: bool) -> Result<u8, OpsError> {
    let cache_to = parse_all_to(&args.cache_to)?;
    if args.dry_run {
        print_plan(
            &Plan {
                command: "save",
                cache_to: &cache_to,
                cache_from: &[],
                paths: &args.paths,
            },
            args.json,
        );
        return Ok(0);
    }
    let report = save(
        SaveOptions {
            cache_to,
            paths: args.paths,
            jobs,
            part_size: PART_SIZE,
            store: StoreOptions {
                insecure_registries: Vec::new(),
                jobs,
            },
        },
        &cwd,
    )
    .await?;
    if !quiet {
        eprint!("{}", render_save(&report));
    }
    Ok(0)
}

async fn run_restore(args: RestoreArgs, cwd: PathBuf, quiet: bool) -> Result<u8, OpsError> {
    let cache_from = parse_all_from(&args.cache_from)?;
    if args.dry_run {
        print_plan(
            &Plan {
                command: "restore",
                cache_to: &[],
                cache_from: &cache_from,
                paths: &args.paths,
            },
            args.json,
        );
        return Ok(0);
    }
    let report = restore(
        RestoreOptions {
            cache_from,
            paths: args.paths,
            store: StoreOptions::default(),
        },
        &cwd,
    )
    .await?;
    if !quiet {
        eprint!("{}", render_restore(&report));
    }
    if args.fail_on_miss && report.hits() == 0 {
        eprintln!("error: nothing was restored (--fail-on-miss)");
        return Ok(1);
    }
    Ok(0)
}

async fn run_inspect(args: InspectArgs) -> Result<u8, OpsError> {
    let mut specs = parse_cache_from(&args.spec)?;
    if specs.len() != 1 {
        return Err(OpsError::Usage {
            message: format!(
                "inspect takes one cache, {:?} names {}",
                args.spec,
                specs.len()
            ),
            hint: None,
        });
    }
    let spec = specs.remove(0);
    let report = inspect::inspect(&spec, &StoreOptions::default()).await?;
    let mut stdout = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut stdout, &report)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(stdout))
    } else {
        write!(stdout, "{}", report.render_human())
    };
    written.map_err(|e| OpsError::Failed(format!("writing to stdout: {e}")))?;
    Ok(0)
}

fn render_save(report: &SaveReport) -> String {
    let mut out = String::new();
    for entry in &report.entries {
        out.push_str(&format!(
            "saved {}: {} files, {} in {} layer(s)\n",
            entry.path,
            entry.stats.files,
            human_bytes(entry.stats.bytes),
            entry.layers
        ));
    }
    for target in &report.cache_to {
        match (&target.digest, &target.ignored_error) {
            (_, Some(err)) => out.push_str(&format!(
                "  -> {}: failed (ignored): {err}\n",
                target.target
            )),
            (Some(digest), None) => out.push_str(&format!(
                "  -> {}: {} ({} written in {} blob(s), {} reused, {:.2}s)\n",
                target.target,
                digest,
                human_bytes(target.uploaded_bytes),
                target.uploaded_blobs,
                target.reused_blobs,
                target.seconds
            )),
            (None, None) => {}
        }
    }
    out
}

fn render_restore(report: &RestoreReport) -> String {
    let mut out = String::new();
    for path in &report.paths {
        match (&path.from, &path.stats) {
            (Some(from), Some(stats)) => out.push_str(&format!(
                "restored {} from {}: {} files, {} ({:.2}s)\n",
                path.path,
                from,
                stats.files,
                human_bytes(stats.bytes),
                path.seconds
            )),
            _ => out.push_str(&format!("miss {}\n", path.path)),
        }
    }
    out.push_str(&format!(
        "{} of {} path(s) restored\n",
        report.hits(),
        report.paths.len()
    ));
    out
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("regcache={default},warn")));
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
