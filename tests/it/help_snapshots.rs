//! What `--help` prints for every command, and the head of a completion
//! script, pinned as snapshots (tests/snapshots/): a change to what users
//! read shows up in review as a diff of the text itself. After an intended
//! change, `INSTA_UPDATE=always cargo test --test help_snapshots` rewrites
//! them; read the diff before committing it.

use crate::common::regcache;

/// The binary's stdout for `args`, at a fixed width and with no
/// environment leaking into the text (`[env: REGCACHE_JOBS=…]`).
fn stdout_of(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let output = regcache(dir.path())
        .env("COLUMNS", "100")
        .env_remove("REGCACHE_JOBS")
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

#[test]
fn help_of_regcache() {
    insta::assert_snapshot!("help", stdout_of(&["--help"]));
}

/// Every command the definition has, so that a new one cannot go without
/// its snapshot (insta fails on a missing one).
#[test]
fn help_of_every_command() {
    let names: Vec<String> = regcache::cli::command()
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .collect();
    assert!(names.len() >= 8, "{names:?}");
    for name in names {
        insta::assert_snapshot!(format!("help_{name}"), stdout_of(&[&name, "--help"]));
    }
}

/// `help save` is the same text as `save --help`.
#[test]
fn help_subcommand_prints_the_same_text() {
    assert_eq!(stdout_of(&["help", "save"]), stdout_of(&["save", "--help"]));
}

#[test]
fn completions_bash_head() {
    let script = stdout_of(&["completions", "bash"]);
    let head: Vec<&str> = script.lines().take(40).collect();
    insta::assert_snapshot!("completions_bash_head", head.join("\n"));
    // The whole script is what `make generated` committed.
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/regcache.bash"),
    )
    .unwrap();
    assert_eq!(script, committed, "run `make generated`");
}

#[test]
fn completions_refuse_an_unknown_shell() {
    let dir = tempfile::tempdir().unwrap();
    regcache(dir.path())
        .args(["completions", "tcsh"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "possible values: bash, elvish, fish, powershell, zsh",
        ));
}

#[test]
fn completions_into_a_closed_pipe_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // A pipe whose reading end is closed before regcache starts, as when
    // `| head` has exited: every write gets EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("regcache"))
        .current_dir(dir.path())
        .args(["completions", "zsh"])
        .stdout(writer)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}
