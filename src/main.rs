//! The `regcache` binary: parse the command line, set up logging, run the
//! command (each in its own module under `commands/`), map the outcome to
//! an exit status. Everything else lives in the library.

mod commands;

use std::fmt;
use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

use regcache::cli::progress_mode::ProgressChoice;
use regcache::cli::{Cli, ProgressMode};
use regcache::progress::{LogWriter, printable};

fn main() -> ExitCode {
    let cli = Cli::try_parse().unwrap_or_else(|err| with_tips(err).exit());
    let progress = ProgressChoice::new(cli.progress, cli.quiet);
    let mode = progress.mode;
    let color = std::io::stderr().is_terminal() && !no_color();
    init_logging(cli.verbose, mode == ProgressMode::Quiet, color);
    progress.warn();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            let message = format!("cannot start the async runtime: {err}");
            let width = regcache::wrap::stderr_width();
            eprintln!("{}", regcache::wrap::prefixed("error: ", &message, width));
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(commands::dispatch(cli, mode, color));
    ExitCode::from(code)
}

/// `NO_COLOR` set to anything but the empty string (no-color.org).
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
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
/// instead of tracing's timestamped default; fitted to the terminal as
/// the other messages are (see `regcache::wrap`).
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
        let width = regcache::wrap::stderr_width();
        let text = regcache::wrap::after_prefix(label.len(), &printable(&message), width);
        writeln!(writer, "{text}")
    }
}

/// clap's error, with a tip where regcache knows the likely slip: a `run`
/// command given without the `--` that separates it from regcache's own
/// options.
fn with_tips(mut err: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    // The usage line clap prints names the subcommand that was parsed.
    let is_run = err.render().to_string().contains("Usage: regcache run ");
    if is_run && err.kind() == ErrorKind::UnknownArgument {
        err.insert(
            ContextKind::Suggested,
            ContextValue::StyledStrs(vec![
                "put the command after `--`, e.g. `regcache run --path target -- cargo build`"
                    .into(),
            ]),
        );
    }
    err
}
