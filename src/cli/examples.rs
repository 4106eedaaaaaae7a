//! The examples closing each command's `--help`. They are written as shell
//! lines (`#` lines say what the command under them does, `\` continues a
//! command on the next line) and put under one heading, so that the man
//! pages can find them in the same clap definition and set them apart as
//! literal, copyable text (see `super::man`).

/// The heading the examples follow, last in the after-help text.
pub const HEADING: &str = "Examples:";

/// The examples' indent under [`HEADING`] in `--help`.
const INDENT: &str = "  ";

/// The after-help text of a command: `notes` (may be empty), then the
/// `examples` under [`HEADING`], indented.
pub fn after_help(notes: &str, examples: &str) -> String {
    let mut text = String::new();
    if !notes.is_empty() {
        text.push_str(notes);
        text.push_str("\n\n");
    }
    text.push_str(HEADING);
    for line in examples.lines() {
        text.push('\n');
        text.push_str(INDENT);
        text.push_str(line);
    }
    text
}

/// An after-help text taken apart again: what [`after_help`] was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterHelp<'a> {
    pub notes: &'a str,
    /// The example lines, without their indent; empty when the text has
    /// no examples.
    pub examples: Vec<&'a str>,
}

/// Splits a command's after-help text into notes and examples.
pub fn split(text: &str) -> AfterHelp<'_> {
    let heading = format!("{HEADING}\n");
    let (notes, examples) = if let Some(rest) = text.strip_prefix(&heading) {
        ("", Some(rest))
    } else if let Some((notes, rest)) = text.split_once(&format!("\n\n{heading}")) {
        (notes, Some(rest))
    } else {
        (text, None)
    };
    AfterHelp {
        notes,
        examples: examples
            .map(|rest| {
                rest.lines()
                    .map(|line| line.strip_prefix(INDENT).unwrap_or(line))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// One example: what it does (its `#` lines) and the command, its
/// continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub about: Vec<String>,
    /// The command's lines as written, `\` continuations included.
    pub lines: Vec<String>,
}

/// Groups example lines into examples: the `#` lines before a command
/// describe it; a line ending in `\` continues on the next.
pub fn group(lines: &[&str]) -> Vec<Example> {
    let mut examples = Vec::new();
    let mut about = Vec::new();
    let mut command: Vec<String> = Vec::new();
    for line in lines {
        let continued = command.last().is_some_and(|l| l.ends_with('\\'));
        if !continued && let Some(comment) = line.strip_prefix('#') {
            if !command.is_empty() {
                examples.push(Example {
                    about: std::mem::take(&mut about),
                    lines: std::mem::take(&mut command),
                });
            }
            about.push(comment.trim().to_string());
        } else {
            // Commands under one description are one example.
            command.push((*line).to_string());
        }
    }
    if !command.is_empty() || !about.is_empty() {
        examples.push(Example {
            about,
            lines: command,
        });
    }
    examples
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::spec::{ExportDefaults, parse_cache_from, parse_cache_to};
    use clap::Parser;

    /// Every command but clap's own `help`, as `--help` shows them.
    fn commands() -> Vec<clap::Command> {
        let mut root = crate::cli::command();
        root.build();
        let mut all = vec![root.clone()];
        all.extend(
            root.get_subcommands()
                .filter(|sub| sub.get_name() != "help")
                .cloned(),
        );
        all
    }

    fn examples_of(command: &clap::Command) -> Vec<String> {
        let text = command
            .get_after_help()
            .map(ToString::to_string)
            .unwrap_or_default();
        split(&text)
            .examples
            .iter()
            .map(|l| l.to_string())
            .collect()
    }

    /// The words of a shell command line as the shell would pass them,
    /// for the simple lines the examples are: quotes removed, a
    /// redirection dropped.
    fn words(command: &str) -> Vec<String> {
        command
            .split_whitespace()
            .take_while(|w| !w.starts_with('>'))
            .map(|w| w.replace('\'', ""))
            .collect()
    }

    #[test]
    fn split_gives_back_what_after_help_joined() {
        let text = after_help("Some notes.\n\nMore.", "# one\nregcache a \\\n  --b c");
        assert_eq!(
            split(&text),
            AfterHelp {
                notes: "Some notes.\n\nMore.",
                examples: vec!["# one", "regcache a \\", "  --b c"],
            }
        );
        let bare = after_help("", "regcache x");
        assert_eq!(split(&bare).notes, "");
        assert_eq!(split(&bare).examples, vec!["regcache x"]);
        assert!(split("only notes").examples.is_empty());
    }

    #[test]
    fn group_joins_continuations_and_takes_comments_as_descriptions() {
        let lines = [
            "# first",
            "regcache a \\",
            "  --b # not a comment",
            "# second",
            "# more about it",
            "regcache c",
            "regcache d",
        ];
        let examples = group(&lines);
        assert_eq!(examples.len(), 2, "{examples:?}");
        assert_eq!(examples[0].about, ["first"]);
        assert_eq!(
            examples[0].lines,
            ["regcache a \\", "  --b # not a comment"]
        );
        assert_eq!(examples[1].about, ["second", "more about it"]);
        assert_eq!(examples[1].lines, ["regcache c", "regcache d"]);
    }

    #[test]
    fn every_command_has_examples_that_fit_80_columns() {
        for command in commands() {
            let lines = examples_of(&command);
            assert!(
                lines.iter().any(|l| l.starts_with("regcache ")),
                "{} has no example",
                command.get_name()
            );
            for line in lines {
                // Shown indented; clap wraps (and so breaks) longer lines
                // on an 80-column terminal.
                assert!(
                    INDENT.len() + line.chars().count() <= 78,
                    "too long for 80 columns: {line:?}"
                );
            }
        }
    }

    /// Every example is a command line regcache accepts, specs included:
    /// an example that stops working with a change fails here.
    #[test]
    fn every_example_parses() {
        let mut checked = 0;
        for command in commands() {
            let lines = examples_of(&command);
            for example in group(&lines.iter().map(String::as_str).collect::<Vec<_>>()) {
                for line in example.lines.join("\n").replace("\\\n", " ").lines() {
                    let argv = words(line);
                    let cli = Cli::try_parse_from(&argv)
                        .unwrap_or_else(|err| panic!("{line:?} does not parse: {err}"));
                    let (from, to, to_defaults): (&[String], &[String], _) = match &cli.command {
                        Command::Save(a) => (&a.cache_from, &a.cache_to, ExportDefaults::Regcache),
                        Command::Run(a) => (&a.cache_from, &a.cache_to, ExportDefaults::Regcache),
                        Command::Restore(a) => (&a.cache_from, &[], ExportDefaults::Regcache),
                        Command::Copy(a) => (&a.cache_from, &a.cache_to, ExportDefaults::BuildKit),
                        Command::Inspect(a) => {
                            (std::slice::from_ref(&a.spec), &[], ExportDefaults::BuildKit)
                        }
                        _ => (&[], &[], ExportDefaults::BuildKit),
                    };
                    for spec in from {
                        parse_cache_from(spec)
                            .unwrap_or_else(|err| panic!("{line:?}: {spec:?}: {err}"));
                    }
                    for spec in to {
                        parse_cache_to(spec, to_defaults)
                            .unwrap_or_else(|err| panic!("{line:?}: {spec:?}: {err}"));
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked >= 20, "only {checked} examples found");
    }
}
