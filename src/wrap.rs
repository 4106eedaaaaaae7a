//! Messages on stderr (`error:`, `caused by:`, `hint:`, `warning:`, the
//! summaries) fitted to the terminal: wrapped at its width, continuation
//! lines indented to sit after the prefix, never a word broken (a URL or a
//! path longer than a line stays whole, on a line of its own).
//!
//! The width is `COLUMNS` when set, else the terminal's when stderr is one.
//! Otherwise (a CI log, a file) nothing is wrapped, so that a message
//! stays on one line for grep.
//!
//! The wrapping itself is textwrap's, splitting at ASCII spaces only: a
//! Unicode line breaker would also split after `-` and `/`, inside flag
//! names and paths.

use std::io::IsTerminal;

use textwrap::{Options, WordSeparator, WordSplitter, WrapAlgorithm};

/// The variable that sets the width, as shells and `ls` read it.
pub const COLUMNS: &str = "COLUMNS";

/// The width to wrap stderr at, or `None` to leave lines whole.
pub fn stderr_width() -> Option<usize> {
    let columns = std::env::var(COLUMNS).ok();
    let stderr = std::io::stderr();
    let terminal = if stderr.is_terminal() {
        terminal_size::terminal_size_of(&stderr).map(|(width, _)| usize::from(width.0))
    } else {
        None
    };
    width_from(columns.as_deref(), terminal)
}

/// `COLUMNS` (a positive number) wins; else the terminal's width, if
/// stderr is one.
pub fn width_from(columns: Option<&str>, terminal: Option<usize>) -> Option<usize> {
    columns
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&w| w > 0)
        .or(terminal.filter(|&w| w > 0))
}

/// `prefix` then `text`, wrapped at `width`: every line after the first
/// is indented by the prefix's width. Lines of `text` (it may have
/// several) are wrapped one by one. With no width, `prefix` + `text` as
/// they are. No newline at the end.
pub fn prefixed(prefix: &str, text: &str, width: Option<usize>) -> String {
    let indent = " ".repeat(textwrap::core::display_width(prefix));
    let body = after_prefix(indent.len(), text, width);
    format!("{prefix}{body}")
}

/// `text` as it goes after a prefix `prefix_width` columns wide (one the
/// caller writes itself, in colour say), wrapped at `width` with the
/// following lines indented by that many spaces.
pub fn after_prefix(prefix_width: usize, text: &str, width: Option<usize>) -> String {
    let Some(width) = width else {
        return text.to_string();
    };
    let indent = " ".repeat(prefix_width);
    let mut out = String::new();
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let wrapped = wrap_line(line, &indent, &indent, width);
        // The first line's indent stands for the prefix the caller writes.
        out.push_str(if i == 0 {
            wrapped.strip_prefix(&indent).unwrap_or(&wrapped)
        } else {
            &wrapped
        });
    }
    out
}

/// A summary (several lines, each ending with a newline) wrapped at
/// `width`. A line's continuation goes after its label (`save: `,
/// `restore: `, `note: `, `dry run: `…), or, for a line without one (a
/// row of a table, a location), two columns in from where it starts.
pub fn summary(text: &str, width: Option<usize>) -> String {
    let Some(width) = width else {
        return text.to_string();
    };
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let (line, newline) = match line.strip_suffix('\n') {
            Some(line) => (line, "\n"),
            None => (line, ""),
        };
        let body = line.trim_start_matches(' ');
        let lead = &line[..line.len() - body.len()];
        let hang = label_width(body).unwrap_or(2);
        let rest = format!("{lead}{}", " ".repeat(hang));
        out.push_str(&wrap_line(body, lead, &rest, width));
        out.push_str(newline);
    }
    out
}

/// The width of the label a summary line starts with: a few lowercase
/// words and a colon (`save: `, `dry run: `), not a location that happens
/// to end in one.
fn label_width(line: &str) -> Option<usize> {
    let (label, _) = line.split_once(": ")?;
    let is_label = !label.is_empty()
        && label.len() <= 12
        && label.bytes().all(|b| b.is_ascii_lowercase() || b == b' ');
    is_label.then_some(label.len() + 2)
}

/// One line (no newline in it) wrapped, the rows joined with newlines.
fn wrap_line(line: &str, first: &str, rest: &str, width: usize) -> String {
    if line.trim().is_empty() {
        return format!("{first}{line}").trim_end().to_string();
    }
    let options = Options::new(width)
        .initial_indent(first)
        .subsequent_indent(rest)
        .break_words(false)
        .word_separator(WordSeparator::AsciiSpace)
        .word_splitter(WordSplitter::NoHyphenation)
        .wrap_algorithm(WrapAlgorithm::FirstFit);
    textwrap::wrap(line, &options).join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widest(text: &str) -> usize {
        text.lines()
            .map(textwrap::core::display_width)
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn no_width_leaves_every_line_whole() {
        let long = "word ".repeat(50);
        assert_eq!(prefixed("error: ", &long, None), format!("error: {long}"));
        assert_eq!(summary(&format!("{long}\n"), None), format!("{long}\n"));
    }

    #[test]
    fn lines_fit_the_width_and_continue_after_the_prefix() {
        let text = "the registry 127.0.0.1:5000 refused the credentials from the docker config";
        let wrapped = prefixed("error: ", text, Some(30));
        assert_eq!(
            wrapped,
            "error: the registry\n       127.0.0.1:5000 refused\n       the credentials from\n       the docker config"
        );
        assert!(widest(&wrapped) <= 30, "{wrapped}");
        // Nothing lost, nothing reordered.
        let words: Vec<&str> = wrapped.split_whitespace().collect();
        let whole = format!("error: {text}");
        let expected: Vec<&str> = whole.split_whitespace().collect();
        assert_eq!(words, expected);
    }

    #[test]
    fn words_are_never_broken_and_a_long_one_stays_whole() {
        let url = "https://registry.example.com/v2/team/app/manifests/cache-main-branch";
        let wrapped = prefixed(
            "hint: ",
            &format!("see {url} then --cache-from again"),
            Some(24),
        );
        assert!(wrapped.lines().any(|l| l.trim() == url), "{wrapped}");
        // Split at spaces only: a flag keeps its dashes, a path its slashes.
        assert!(wrapped.contains("--cache-from"), "{wrapped}");
        for line in wrapped.lines().skip(1) {
            assert!(line.starts_with("      "), "{line:?} in {wrapped}");
        }
        let path = prefixed("error: ", "/a/very/long/path/that/does/not/fit", Some(10));
        assert_eq!(path, "error: /a/very/long/path/that/does/not/fit");
    }

    #[test]
    fn each_line_of_a_message_is_wrapped_under_the_prefix() {
        let wrapped = after_prefix(9, "one two three\nfour five six", Some(16));
        assert_eq!(
            wrapped,
            "one two\n         three\n         four\n         five\n         six"
        );
    }

    #[test]
    fn summary_lines_keep_their_indent_and_hang_after_their_label() {
        let text = "save: 3 paths, 120 files, 4.0 MiB\n  saved    target  100 files, 3.9 MiB in 2 layers\nnote: the repository does not exist yet\n/tmp/cache: deleted 2 of 3 matching tags\n";
        let wrapped = summary(text, Some(30));
        assert_eq!(
            wrapped,
            "save: 3 paths, 120 files, 4.0\n      MiB\n  saved    target  100 files,\n    3.9 MiB in 2 layers\nnote: the repository does not\n      exist yet\n/tmp/cache: deleted 2 of 3\n  matching tags\n"
        );
        assert!(widest(&wrapped) <= 30, "{wrapped}");
    }

    #[test]
    fn columns_wins_then_the_terminal_then_nothing() {
        assert_eq!(width_from(Some("40"), Some(120)), Some(40));
        assert_eq!(width_from(Some(" 40 "), None), Some(40));
        assert_eq!(width_from(None, Some(120)), Some(120));
        assert_eq!(width_from(Some("wide"), Some(120)), Some(120));
        assert_eq!(width_from(Some("0"), None), None);
        assert_eq!(width_from(None, None), None);
        assert_eq!(width_from(None, Some(0)), None);
    }
}
