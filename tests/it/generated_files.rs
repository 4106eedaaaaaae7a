//! The shell completions and man pages are generated from the clap
//! definitions by library code (`regcache::cli::completions`,
//! `regcache::cli::man`); this fails when the committed copies are out of
//! date. `make generated` (REGCACHE_BLESS=1) rewrites them.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for (shell, name) in regcache::cli::completions::FILES {
        files.push((
            root().join("completions").join(name),
            regcache::cli::completions::script(shell),
        ));
    }
    for page in regcache::cli::man::pages().expect("rendering man pages into memory") {
        files.push((root().join("docs/man").join(page.file_name), page.content));
    }
    files
}

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("generated files live in a folder"))
        .expect("create folder");
    std::fs::write(path, content).expect("write generated file");
}

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let bless = std::env::var_os("REGCACHE_BLESS").is_some();
    let mut stale = Vec::new();
    for (path, content) in generated() {
        let current = std::fs::read(&path).ok();
        if current.as_deref() != Some(content.as_slice()) {
            if bless {
                write(&path, &content);
            } else {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "out of date (run `make generated`): {}",
        stale.join(", ")
    );
}

/// A page in docs/man/ that no command renders any more (a command was
/// removed or renamed) would be installed and read as current.
#[test]
fn no_stale_page_is_left_in_docs_man() {
    let rendered: Vec<String> = regcache::cli::man::pages()
        .expect("rendering man pages into memory")
        .into_iter()
        .map(|page| page.file_name)
        .collect();
    for entry in std::fs::read_dir(root().join("docs/man")).expect("docs/man") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        assert!(
            rendered.contains(&name),
            "docs/man/{name} is no longer generated: remove it"
        );
    }
}

/// The committed pages (the test above keeps them current), by file name.
fn man_pages() -> Vec<(String, String)> {
    let mut pages = Vec::new();
    for entry in std::fs::read_dir(root().join("docs/man")).expect("docs/man") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        pages.push((
            name,
            std::fs::read_to_string(&path).expect("a page is UTF-8"),
        ));
    }
    pages.sort();
    pages
}

/// The lines of section `name` (`.SH NAME` or `.SH "TWO WORDS"`).
fn section<'a>(page: &'a str, name: &str) -> Vec<&'a str> {
    let heading = if name.contains(' ') {
        format!(".SH \"{name}\"")
    } else {
        format!(".SH {name}")
    };
    page.lines()
        .skip_while(|line| *line != heading)
        .skip(1)
        .take_while(|line| !line.starts_with(".SH "))
        .collect()
}

/// roff's escapes taken back out, as `man` shows the text.
fn unescape(line: &str) -> String {
    line.replace("\\-", "-")
        .replace("\\*(Aq", "'")
        .replace("\\\\", "\\")
        .replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
}

#[test]
fn every_command_has_a_page_titled_and_named_as_it_is_typed() {
    let pages = man_pages();
    let commands: Vec<String> = regcache::cli::command()
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .collect();
    assert_eq!(
        pages.len(),
        commands.len() + 1,
        "{:?}",
        pages.iter().map(|p| &p.0)
    );
    for command in &commands {
        let file = format!("regcache-{command}.1");
        let (_, page) = pages
            .iter()
            .find(|(name, _)| *name == file)
            .unwrap_or_else(|| panic!("no {file}"));
        let title = format!(".TH REGCACHE-{} 1 ", command.to_uppercase());
        assert!(page.contains(&title), "{file}: no {title:?}");
        let typed = format!("regcache {command}");
        let name = section(page, "NAME");
        assert!(
            unescape(name[0]).starts_with(&format!("{typed} - ")),
            "{file}: NAME {name:?}"
        );
        let synopsis = section(page, "SYNOPSIS");
        assert!(
            unescape(synopsis[0]).starts_with(&format!("{typed} [OPTIONS]")),
            "{file}: SYNOPSIS {synopsis:?}"
        );
        // `regcache-save` is no command: it is only ever a page name.
        for line in name.iter().chain(&synopsis) {
            assert!(!line.contains("regcache\\-"), "{file}: {line}");
        }
    }
}

#[test]
fn command_pages_list_the_global_options_and_not_version() {
    for (file, page) in man_pages() {
        let global = section(&page, "GLOBAL OPTIONS").join("\n");
        for option in [
            "\\-\\-verbose",
            "\\-\\-quiet",
            "\\-\\-progress",
            "\\-\\-metadata\\-file",
        ] {
            assert!(
                global.contains(option),
                "{file}: {option} not in GLOBAL OPTIONS"
            );
        }
        assert!(global.contains("\\-\\-insecure\\-registry") && global.contains("\\-\\-jobs"));
        // Commands refuse -V (`regcache save -V` is a usage error).
        let has_version = page.contains("\\-\\-version");
        assert_eq!(has_version, file == "regcache.1", "{file}");
    }
}

#[test]
fn no_page_refers_to_a_page_that_does_not_exist() {
    let pages = man_pages();
    let names: Vec<String> = pages
        .iter()
        .map(|(file, _)| file.trim_end_matches(".1").replace('-', "\\-"))
        .collect();
    for (file, page) in &pages {
        assert!(
            !page.contains("help(1)") && !page.contains("regcache\\-help"),
            "{file}"
        );
        let see_also = section(page, "SEE ALSO").join(" ");
        let mut cited = 0;
        for reference in see_also.split("\\fB").skip(1) {
            let name = reference.split("\\fR").next().unwrap_or_default();
            assert!(names.iter().any(|n| n == name), "{file} cites {name}(1)");
            cited += 1;
        }
        // Every other page, and not itself.
        assert_eq!(cited, pages.len() - 1, "{file}: {see_also}");
    }
}

#[test]
fn pages_have_environment_exit_status_and_files() {
    for (file, page) in man_pages() {
        let status = section(&page, "EXIT STATUS").join("\n");
        for code in ["\\fB0\\fR", "\\fB1\\fR", "\\fB2\\fR"] {
            assert!(status.contains(code), "{file}: no exit status {code}");
        }
        assert_eq!(
            status.contains("128+N"),
            file == "regcache.1" || file == "regcache-run.1",
            "{file}: run's COMMAND status"
        );
        if file == "regcache-completions.1" {
            continue;
        }
        let environment = section(&page, "ENVIRONMENT").join("\n");
        for variable in [
            "DOCKER_CONFIG",
            "SSL_CERT_FILE",
            "REGCACHE_JOBS",
            "BUILDKIT_PROGRESS",
            "NO_COLOR",
            "RUST_LOG",
        ] {
            assert!(
                environment.contains(&format!("\\fB{variable}\\fR")),
                "{file}: {variable} not in ENVIRONMENT"
            );
        }
        let files = section(&page, "FILES").join("\n");
        assert!(files.contains("config.json"), "{file}: {files}");
        assert!(files.contains("index.json"), "{file}: {files}");
    }
}

/// Examples are set literally: no filling (which would join the lines of
/// a `\` continuation), no hyphenation, every character as typed.
#[test]
fn examples_are_set_as_copyable_lines() {
    let root = regcache::cli::command();
    let mut commands = vec![("regcache.1".to_string(), root.clone())];
    for sub in root.get_subcommands() {
        commands.push((format!("regcache-{}.1", sub.get_name()), sub.clone()));
    }
    let pages = man_pages();
    for (file, command) in commands {
        let (_, page) = pages.iter().find(|(name, _)| *name == file).expect("page");
        assert!(page.contains("\n.nh\n"), "{file}: hyphenation is on");
        let examples = section(page, "EXAMPLES");
        let help = command
            .get_after_help()
            .map(|t| t.to_string())
            .unwrap_or_default();
        let lines = regcache::cli::examples::split(&help).examples;
        let commands: Vec<&&str> = lines.iter().filter(|l| !l.starts_with('#')).collect();
        assert!(!commands.is_empty(), "{file}: no examples in --help");
        let mut literal = false;
        let mut set = Vec::new();
        for line in &examples {
            match *line {
                ".nf" => literal = true,
                ".fi" => literal = false,
                _ if literal => set.push(unescape(line)),
                _ => {}
            }
        }
        let expected: Vec<String> = commands.iter().map(|l| l.to_string()).collect();
        assert_eq!(
            set, expected,
            "{file}: EXAMPLES are not the --help lines, unfilled"
        );
    }
}
/// docs/spec.md's key table is the parser's own (src/spec/keys.rs).
#[test]
fn the_spec_keys_table_in_the_docs_is_up_to_date() {
    const BEGIN: &str = "<!-- BEGIN generated keys table -->\n";
    const END: &str = "<!-- END generated keys table -->";
    let path = root().join("docs/spec.md");
    let doc = std::fs::read_to_string(&path).expect("docs/spec.md");
    let (head, rest) = doc
        .split_once(BEGIN)
        .expect("docs/spec.md has the begin marker");
    let (_, tail) = rest
        .split_once(END)
        .expect("docs/spec.md has the end marker");
    let fresh = format!(
        "{head}{BEGIN}{}{END}{tail}",
        regcache::spec::help::markdown_table()
    );
    if fresh == doc {
        return;
    }
    assert!(
        std::env::var_os("REGCACHE_BLESS").is_some(),
        "docs/spec.md's key table is out of date (run `make generated`)"
    );
    write(&path, fresh.as_bytes());
}
