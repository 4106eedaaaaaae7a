//! The shell completions and man pages are generated from the clap
//! definitions; this fails when the committed copies are out of date.
//! `make generated` (REGCACHE_BLESS=1) rewrites them.

use std::path::{Path, PathBuf};

use clap_complete::Shell;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for (shell, name) in [
        (Shell::Bash, "regcache.bash"),
        (Shell::Zsh, "_regcache"),
        (Shell::Fish, "regcache.fish"),
        (Shell::PowerShell, "_regcache.ps1"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut regcache::cli::command(), "regcache", &mut out);
        files.push((root().join("completions").join(name), out));
    }
    let command = regcache::cli::command();
    files.push((root().join("docs/man/regcache.1"), man_page(&command)));
    for sub in command.get_subcommands() {
        let name = format!("regcache-{}", sub.get_name());
        let page = sub
            .clone()
            .name(name.clone())
            .version(command.get_version().unwrap_or("").to_string());
        files.push((root().join(format!("docs/man/{name}.1")), man_page(&page)));
    }
    files
}

fn man_page(command: &clap::Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut out)
        .expect("rendering a man page into memory cannot fail");
    out
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
