//! What ends up on the terminal when a command is over: the summary, the
//! metadata file, the error with its causes and hint, and dry-run plans.

use std::path::Path;

use regcache::ops::OpsError;
use regcache::ops::plan::Plan;
use regcache::ops::report::write_metadata;
use regcache::progress::printable;
use regcache::wrap;

use super::Finished;

/// Prints the summary, writes the metadata file, prints the error; returns
/// the exit status.
pub(crate) fn finish(finished: Finished, metadata_file: Option<&Path>, quiet: bool) -> u8 {
    let mut code = finished.code;
    let width = wrap::stderr_width();
    if let Some(summary) = &finished.summary
        && !quiet
    {
        eprint!("{}", wrap::summary(summary, width));
    }
    // Exit status 2 means the request was refused before any I/O: then
    // there is nothing to record, and nothing is written.
    if let (Some(path), Some(metadata)) = (metadata_file, &finished.metadata)
        && code != 2
        && let Err(err) = write_metadata(path, metadata)
    {
        let message = format!("writing the metadata file {}: {err}", path.display());
        eprintln!("{}", wrap::prefixed("error: ", &message, width));
        if code == 0 {
            code = 1;
        }
    }
    if let Some(err) = &finished.error {
        print_error(err);
    }
    code
}

/// The error, then each cause that says something new, then the hint:
/// each fitted to the terminal (see [`wrap`]).
pub(crate) fn print_error(err: &OpsError) {
    let width = wrap::stderr_width();
    let message = err.to_string();
    eprintln!(
        "{}",
        wrap::prefixed("error: ", &printable_lines(&message), width)
    );
    // A cause whose text the line above already says adds nothing: errors
    // that wrap another put its text in their own.
    let mut said = message;
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !said.contains(&text) {
            eprintln!(
                "{}",
                wrap::prefixed("  caused by: ", &printable_lines(&text), width)
            );
            said = text;
        }
        source = cause.source();
    }
    if let Some(hint) = err.hint() {
        eprintln!(
            "{}",
            wrap::prefixed("hint: ", &printable_lines(&hint), width)
        );
    }
}

/// An error's text with its own line breaks kept (a spec error ends with
/// a `hint:` line) but any other control character, which may come from a
/// cache, escaped.
pub(crate) fn printable_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| printable(line).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn print_plan(plan: &Plan<'_>, json: bool) {
    if json {
        println!("{}", plan.to_json());
    } else {
        print!("{}", plan.render_human());
    }
}
