//! The man pages: `regcache(1)` and one page per command, rendered from
//! the clap definition (`super::command`), with the sections a man page
//! has and `--help` does not: ENVIRONMENT, EXIT STATUS, FILES, SEE ALSO.
//! `make generated` writes them to docs/man/.
//!
//! A command's page is named `regcache-save` (the file `regcache-save.1`,
//! so that `man regcache-save` finds it, as with git), but it speaks of the
//! command as it is typed, `regcache save`.

use std::io;

use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

use super::examples;

/// One man page: its file name in docs/man/ and its roff source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub file_name: String,
    pub content: Vec<u8>,
}

/// Which pages a section's entry belongs on: the top page has them all.
#[derive(Debug, Clone, Copy)]
enum Scope {
    /// Every command that reads or writes caches (not `completions`).
    Caches,
    /// Only these commands.
    Only(&'static [&'static str]),
}

impl Scope {
    fn covers(self, command: Option<&str>) -> bool {
        match (self, command) {
            (_, None) => true,
            (Scope::Caches, Some(name)) => name != "completions",
            (Scope::Only(names), Some(name)) => names.contains(&name),
        }
    }
}

/// A `.TP` entry: the term, set in bold, and what it means.
struct Entry {
    term: &'static str,
    text: &'static str,
    scope: Scope,
}

const ENVIRONMENT: &[Entry] = &[
    Entry {
        term: "BUILDKIT_PROGRESS",
        text: "The progress display when --progress is not given, as in buildx: auto, tty, \
plain or quiet. buildx's rawjson (its raw JSON status stream) is taken as plain. Any other \
value is a warning, and auto is used. -q and --progress take precedence over it.",
        scope: Scope::Caches,
    },
    Entry {
        term: "DOCKER_CONFIG",
        text: "The directory of the docker config.json that registry credentials are read \
from (see FILES); when unset or empty, ~/.docker.",
        scope: Scope::Caches,
    },
    Entry {
        term: "SSL_CERT_FILE",
        text: "A PEM file of certificates to trust for registries' TLS, besides the system's \
(a registry with a private CA). A file with no certificate in it is a warning.",
        scope: Scope::Caches,
    },
    Entry {
        term: "REGCACHE_JOBS",
        text: "The default of --jobs: how many layers to compress, and blobs to send, at \
once; when unset, the number of CPUs.",
        scope: Scope::Caches,
    },
    Entry {
        term: "NO_COLOR",
        text: "When set and not empty, messages and progress bars use no colour \
(no-color.org).",
        scope: Scope::Caches,
    },
    Entry {
        term: "RUST_LOG",
        text: "Which log messages reach stderr, as tracing filter directives (e.g. \
RUST_LOG=regcache=debug); it overrides -v and -q.",
        scope: Scope::Caches,
    },
    Entry {
        term: "TERM",
        text: "When dumb, --progress auto prints lines, not bars.",
        scope: Scope::Caches,
    },
    Entry {
        term: "COLUMNS",
        text: "The width of the progress bars when stderr is not a terminal (--progress tty \
into a pipe or a log file), and of --help. Messages on stderr (error:, hint:, warning:, \
the summaries) are wrapped at it, else at the terminal's width when stderr is one, never \
inside a word; with neither, they are not wrapped.",
        scope: Scope::Caches,
    },
    Entry {
        term: "HOME",
        text: "A restore without PATH restores the paths the cache holds inside the working \
directory or HOME, and only those; also where ~/.docker is.",
        scope: Scope::Caches,
    },
    Entry {
        term: "TMPDIR",
        text: "Where blobs for a registry are spooled (default /tmp).",
        scope: Scope::Only(&["save", "run", "copy"]),
    },
];

const EXIT_STATUS: &[Entry] = &[
    Entry {
        term: "0",
        text: "Success. A --cache-from that does not exist is only a warning.",
        scope: Scope::Only(&[
            "save",
            "restore",
            "copy",
            "run",
            "inspect",
            "prune",
            "ls",
            "completions",
        ]),
    },
    Entry {
        term: "1",
        text: "Failure: an export or a restore failed, a cache could not be read, \
--fail-on-miss found nothing, or the --metadata-file could not be written.",
        scope: Scope::Only(&[
            "save",
            "restore",
            "copy",
            "run",
            "inspect",
            "prune",
            "ls",
            "completions",
        ]),
    },
    Entry {
        term: "2",
        text: "A bad spec, flag or argument, refused before anything was read or written.",
        scope: Scope::Only(&[
            "save",
            "restore",
            "copy",
            "run",
            "inspect",
            "prune",
            "ls",
            "completions",
        ]),
    },
    Entry {
        term: "COMMAND's status",
        text: "run exits with the status of the COMMAND it ran: 128+N when it was killed by \
signal N, 127 when it was not found, 126 when it could not be executed; and with 1 when it \
exited 0 but an export then failed without ignore-error=true.",
        scope: Scope::Only(&["run"]),
    },
];

const FILES: &[Entry] = &[
    Entry {
        term: "$DOCKER_CONFIG/config.json, ~/.docker/config.json",
        text: "Registry credentials, read as docker reads them: an auths entry for the \
registry, else the credential helper credHelpers or credsStore names, run as \
docker-credential-NAME get (from PATH). Without credentials a registry is used anonymously.",
        scope: Scope::Caches,
    },
    Entry {
        term: "DIR/index.json, DIR/oci-layout, DIR/blobs/sha256/",
        text: "A local cache (type=local,dest=DIR or src=DIR): an OCI image layout, as \
BuildKit's local cache exporter writes it. index.json names each tag's manifest, blobs/sha256/ \
holds every blob under its digest. A writer locks oci-layout while it updates index.json.",
        scope: Scope::Caches,
    },
    Entry {
        term: "DIR/.regcache-spool-*",
        text: "Where a save to a local cache compresses its layers before they are renamed \
into blobs/sha256/. Removed when the save ends; a killed save's is removed by the next save \
or prune of DIR.",
        scope: Scope::Only(&["save", "run", "prune"]),
    },
    Entry {
        term: "$TMPDIR/regcache-spool-*",
        text: "Where a save to a registry, and copy, spool blobs before they are sent. Removed \
as above.",
        scope: Scope::Only(&["save", "run", "copy"]),
    },
    Entry {
        term: ".regcache-tmp-*",
        text: "Files being restored, beside their final names until they are complete and \
verified. A killed restore's are removed by the next restore of the same path.",
        scope: Scope::Only(&["restore", "run"]),
    },
    Entry {
        term: "--metadata-file FILE",
        text: "The command's JSON report (docs/metadata.md, docs/prune.md, docs/ls.md), \
written to a temporary file beside FILE and renamed over it.",
        scope: Scope::Only(&["save", "restore", "copy", "run", "prune", "ls"]),
    },
];

/// Every page: `regcache.1`, then one per command (not clap's `help`).
pub fn pages() -> io::Result<Vec<Page>> {
    let mut root = super::command();
    // Building propagates the global options into every command and names
    // each one as it is typed (`regcache save`).
    root.build();
    let version = root.get_version().unwrap_or_default().to_string();
    let commands: Vec<&clap::Command> = root
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
        .collect();
    let mut names = vec![root.get_name().to_string()];
    names.extend(commands.iter().map(|sub| page_name(sub.get_name())));

    let mut pages = vec![Page {
        file_name: format!("{}.1", names[0]),
        content: render(&root, None, &commands, &version, &names)?,
    }];
    for sub in &commands {
        pages.push(Page {
            file_name: format!("{}.1", page_name(sub.get_name())),
            content: render(sub, Some(sub.get_name()), &[], &version, &names)?,
        });
    }
    Ok(pages)
}

/// `regcache-save`: the page of `regcache save`.
fn page_name(command: &str) -> String {
    format!("regcache-{command}")
}

/// One page; `command` is `None` for `regcache(1)`, whose `commands` are
/// listed.
fn render(
    cmd: &clap::Command,
    command: Option<&str>,
    commands: &[&clap::Command],
    version: &str,
    pages: &[String],
) -> io::Result<Vec<u8>> {
    let own = command.map_or_else(|| "regcache".to_string(), page_name);
    let typed = command.map_or_else(|| "regcache".to_string(), |c| format!("regcache {c}"));
    // The top page says the exit statuses in its EXIT STATUS section; the
    // pointer to that section that ends `--help` would only repeat it.
    let described = match cmd.get_long_about().map(ToString::to_string) {
        Some(text) if text.contains(super::EXIT_STATUS_POINTER) => cmd.clone().long_about(
            text.replace(super::EXIT_STATUS_POINTER, "")
                .trim_end()
                .to_string(),
        ),
        _ => cmd.clone(),
    };
    let man = Man::new(described);
    let mut out = Vec::new();
    // The preamble alone, once; then the title by hand: roff drops an
    // empty argument, which would put the source where the date goes.
    // No hyphenation: most long words here are flags, refs and paths,
    // which a hyphen would change.
    Roff::new().to_writer(&mut out)?;
    out.extend_from_slice(
        format!(
            ".TH {} 1 \"\" \"regcache {version}\" \"regcache Manual\"\n.nh\n",
            own.to_uppercase()
        )
        .as_bytes(),
    );

    let mut roff = Roff::new();
    roff.control("SH", ["NAME"]);
    let about = cmd.get_about().map(ToString::to_string).unwrap_or_default();
    roff.text([roman(format!("{typed} - {about}"))]);
    roff.control("SH", ["SYNOPSIS"]);
    synopsis(&mut roff, cmd, &typed);
    append(&mut out, &roff)?;

    let mut section = Vec::new();
    man.render_description_section(&mut section)?;
    out.extend_from_slice(without_preamble(&section));
    // OPTIONS, then GLOBAL OPTIONS (`super::GLOBAL`, the options every
    // command takes).
    let mut section = Vec::new();
    man.render_options_section(&mut section)?;
    out.extend_from_slice(without_preamble(&section));

    let mut roff = Roff::new();
    if !commands.is_empty() {
        roff.control("SH", ["COMMANDS"]);
        for sub in commands {
            roff.control("TP", []);
            roff.text([bold(format!("regcache {}", sub.get_name()))]);
            let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
            roff.text([
                roman(format!("{about}. See ")),
                bold(page_name(sub.get_name())),
                roman("(1)."),
            ]);
        }
    }
    let after = cmd
        .get_after_help()
        .map(ToString::to_string)
        .unwrap_or_default();
    let after = examples::split(&after);
    if !after.notes.is_empty() {
        roff.control("SH", ["NOTES"]);
        prose(&mut roff, after.notes);
    }
    if !after.examples.is_empty() {
        roff.control("SH", ["EXAMPLES"]);
        for example in examples::group(&after.examples) {
            if !example.about.is_empty() {
                roff.control("PP", []);
                roff.text([roman(example.about.join(" "))]);
            }
            literal(&mut roff, &example.lines);
        }
    }
    entries(&mut roff, "ENVIRONMENT", ENVIRONMENT, command);
    entries(&mut roff, "EXIT STATUS", EXIT_STATUS, command);
    entries(&mut roff, "FILES", FILES, command);
    roff.control("SH", ["SEE ALSO"]);
    let others: Vec<&String> = pages.iter().filter(|page| **page != own).collect();
    let mut line = Vec::new();
    for (i, page) in others.iter().enumerate() {
        line.push(bold(page.as_str()));
        line.push(roman(if i + 1 == others.len() {
            "(1)"
        } else {
            "(1), "
        }));
    }
    roff.text(line);
    append(&mut out, &roff)?;
    Ok(out)
}

/// The usage line `--help` shows, with the command in bold.
fn synopsis(roff: &mut Roff, cmd: &clap::Command, typed: &str) {
    let usage = cmd.clone().bin_name(typed).render_usage().to_string();
    let usage = usage.trim_start_matches("Usage:").trim();
    let rest = usage.strip_prefix(typed).unwrap_or(usage);
    roff.text([bold(typed), roman(rest)]);
}

/// Paragraphs of filled text; indented lines (a table of forms) are kept
/// as they are.
fn prose(roff: &mut Roff, text: &str) {
    for paragraph in text.split("\n\n") {
        roff.control("PP", []);
        let mut block: Vec<String> = Vec::new();
        for line in paragraph.lines() {
            if let Some(kept) = line.strip_prefix("  ") {
                block.push(kept.to_string());
                continue;
            }
            if !block.is_empty() {
                literal(roff, &std::mem::take(&mut block));
            }
            roff.text([roman(line)]);
        }
        if !block.is_empty() {
            literal(roff, &block);
        }
    }
}

/// Lines set exactly as written: not filled, not hyphenated, indented,
/// every `-` a real hyphen-minus, so that they can be copied into a shell.
fn literal(roff: &mut Roff, lines: &[String]) {
    roff.control("RS", ["4"]);
    roff.control("nf", []);
    for line in lines {
        roff.text([roman(line.as_str())]);
    }
    roff.control("fi", []);
    roff.control("RE", []);
}

fn entries(roff: &mut Roff, heading: &str, entries: &[Entry], command: Option<&str>) {
    let mut listed = entries
        .iter()
        .filter(|e| e.scope.covers(command))
        .peekable();
    if listed.peek().is_none() {
        return;
    }
    roff.control("SH", [heading]);
    for entry in listed {
        roff.control("TP", []);
        roff.text([bold(entry.term)]);
        roff.text([roman(entry.text)]);
    }
}

/// The lines roff puts before every document it writes, which a page
/// assembled from several needs only once.
fn without_preamble(rendered: &[u8]) -> &[u8] {
    let mut rest = rendered;
    while rest.starts_with(b".ie \\n(.g .ds Aq") || rest.starts_with(b".el .ds Aq") {
        match rest.iter().position(|&b| b == b'\n') {
            Some(end) => rest = &rest[end + 1..],
            None => return &[],
        }
    }
    rest
}

fn append(out: &mut Vec<u8>, roff: &Roff) -> io::Result<()> {
    let mut rendered = Vec::new();
    roff.to_writer(&mut rendered)?;
    out.extend_from_slice(without_preamble(&rendered));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(name: &str) -> String {
        let pages = pages().expect("rendering into memory");
        let page = pages
            .into_iter()
            .find(|p| p.file_name == name)
            .unwrap_or_else(|| panic!("no page {name}"));
        String::from_utf8(page.content).expect("UTF-8")
    }

    #[test]
    fn one_page_per_command_and_none_for_help() {
        let names: Vec<String> = pages()
            .expect("rendering")
            .into_iter()
            .map(|p| p.file_name)
            .collect();
        assert_eq!(names[0], "regcache.1");
        for sub in crate::cli::command().get_subcommands() {
            let name = format!("regcache-{}.1", sub.get_name());
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
    }

    #[test]
    fn a_command_page_names_the_command_as_typed() {
        let save = page("regcache-save.1");
        assert!(save.contains(".TH REGCACHE-SAVE 1"), "{save}");
        assert!(save.contains(".SH NAME\nregcache save \\- "), "{save}");
        assert!(
            save.contains(".SH SYNOPSIS\n\\fBregcache save\\fR ["),
            "{save}"
        );
        // The page's own name appears only in its title.
        assert_eq!(save.matches("regcache\\-save").count(), 0, "{save}");
        assert_eq!(save.matches(".ie \\n(.g .ds Aq").count(), 1, "{save}");
    }

    #[test]
    fn sections_are_scoped_to_the_commands_they_concern() {
        let run = page("regcache-run.1");
        assert!(run.contains("COMMAND\\*(Aqs status"), "{run}");
        assert!(run.contains(".regcache\\-tmp\\-*"), "{run}");
        let ls = page("regcache-ls.1");
        assert!(!ls.contains("COMMAND\\*(Aqs status"), "{ls}");
        assert!(!ls.contains("TMPDIR"), "{ls}");
        let completions = page("regcache-completions.1");
        assert!(!completions.contains(".SH ENVIRONMENT"), "{completions}");
        assert!(completions.contains(".SH \"EXIT STATUS\""), "{completions}");
        let top = page("regcache.1");
        for entry in ENVIRONMENT.iter().chain(EXIT_STATUS).chain(FILES) {
            let term = entry.term.replace('-', "\\-").replace('\'', "\\*(Aq");
            assert!(top.contains(&term), "{term} missing from regcache(1)");
        }
    }

    #[test]
    fn the_top_page_says_the_exit_statuses_once_in_their_section() {
        let top = page("regcache.1");
        assert!(top.contains(".SH \"EXIT STATUS\""), "{top}");
        let description = top
            .split(".SH DESCRIPTION")
            .nth(1)
            .and_then(|rest| rest.split(".SH ").next())
            .expect("a DESCRIPTION section");
        assert!(
            !description.to_lowercase().contains("exit status"),
            "{description}"
        );
        assert!(!top.contains("Exit statuses: see"), "{top}");
        // --help keeps a pointer to it.
        let help = <crate::cli::Cli as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        assert!(help.contains(super::super::EXIT_STATUS_POINTER), "{help}");
    }

    #[test]
    fn the_preamble_is_stripped_only_where_it_is() {
        assert_eq!(
            without_preamble(b".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n.SH X\n"),
            b".SH X\n"
        );
        assert_eq!(without_preamble(b".SH X\n"), b".SH X\n");
    }
}
