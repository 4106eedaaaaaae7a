//! What users read when things go wrong or come out empty: each error said
//! once with its hint last, and summaries that say what happened. Pinned
//! as insta snapshots (tests/snapshots/), with temporary paths, ports,
//! digests and times redacted.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::common::regcache;
use crate::common::registry::{RegistryOptions, TestRegistry};

/// stderr with what changes from run to run replaced by placeholders.
fn redacted(output: &Output, tmp: &Path, host: Option<&str>) -> String {
    // Plain progress says every 5 s how a transfer still running is doing:
    // on a loaded machine a tiny one may last that long. Those lines come
    // or not with the machine's load, so they are no part of what is read.
    let mut text: String = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| !(l.ends_with("/s") && l.contains(", ") && !l.starts_with("error")))
        .map(|l| format!("{l}\n"))
        .collect();
    text = text.replace(&tmp.display().to_string(), "[TMP]");
    if let Some(host) = host {
        text = text.replace(host, "[REGISTRY]");
    }
    format!("exit status: {:?}\n{text}", output.status.code())
}

/// Snapshots `text` with digests, sizes and times made placeholders.
fn assert_reads(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]");
    settings.add_filter(r"sha256:[0-9a-f]{12}", "sha256:[SHORT]");
    settings.add_filter(r"\d+\.\d+s\b", "[T]s");
    settings.add_filter(r"\d+(\.\d+)? (B|KiB|MiB)\b", "[SIZE]");
    settings.bind(|| insta::assert_snapshot!(name, text));
}

fn tree(dir: &Path) {
    fs::create_dir_all(dir.join("tree/sub")).unwrap();
    fs::write(dir.join("tree/f"), "hello").unwrap();
    fs::write(dir.join("tree/sub/g"), "world").unwrap();
}

fn local(dir: &Path) -> String {
    format!("type=local,dest={}", dir.display())
}

#[test]
fn a_registry_that_is_down_fails_the_save_before_packing_with_a_hint() {
    let tmp = tempfile::tempdir().unwrap();
    tree(tmp.path());
    // Port 1 on loopback: nothing listens there.
    let output = regcache(tmp.path())
        .args(["--progress", "plain", "save"])
        .args([
            "--cache-to",
            "type=registry,ref=127.0.0.1:1/app:cache",
            "tree",
        ])
        .output()
        .unwrap();
    let text = redacted(&output, tmp.path(), None);
    // Nothing was packed: the registry was asked first.
    assert!(!text.contains("pack ("), "{text}");
    assert_reads(
        "a_registry_that_is_down_fails_the_save_before_packing_with_a_hint",
        &text,
    );
}

#[test]
fn an_unauthorized_registry_says_how_to_log_in() {
    let registry = TestRegistry::start(RegistryOptions {
        htpasswd: true,
        ..RegistryOptions::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let docker = tmp.path().join("docker");
    fs::create_dir_all(&docker).unwrap();
    let host = registry.host();
    let output = regcache(tmp.path())
        .env("DOCKER_CONFIG", &docker)
        .args(["inspect", &format!("{host}/app:cache")])
        .output()
        .unwrap();
    assert_reads(
        "an_unauthorized_registry_says_how_to_log_in",
        &redacted(&output, tmp.path(), Some(&host)),
    );
}

#[test]
fn an_untrusted_certificate_says_how_to_trust_it() {
    let registry = TestRegistry::start(RegistryOptions {
        tls: true,
        ..RegistryOptions::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let host = registry.tls_host();
    let output = regcache(tmp.path())
        .env_remove("SSL_CERT_FILE")
        .args(["inspect", &format!("{host}/app:cache")])
        .output()
        .unwrap();
    let text = redacted(&output, tmp.path(), Some(&host));
    assert!(
        text.contains("hint: if [REGISTRY] uses a private CA"),
        "{text}"
    );
    assert_reads("an_untrusted_certificate_says_how_to_trust_it", &text);
}

#[test]
fn inspect_of_a_missing_cache_points_at_ls() {
    let tmp = tempfile::tempdir().unwrap();
    let output = regcache(tmp.path())
        .args([
            "inspect",
            &format!("type=local,src={}", tmp.path().join("c").display()),
        ])
        .output()
        .unwrap();
    assert_reads(
        "inspect_of_a_missing_cache_points_at_ls",
        &redacted(&output, tmp.path(), None),
    );
}

#[test]
fn a_restore_that_finds_no_cache_says_so_once() {
    let tmp = tempfile::tempdir().unwrap();
    let output = regcache(tmp.path())
        .args(["restore", "--cache-from"])
        .arg(format!(
            "type=local,src={}",
            tmp.path().join("none").display()
        ))
        .output()
        .unwrap();
    assert_reads(
        "a_restore_that_finds_no_cache_says_so_once",
        &redacted(&output, tmp.path(), None),
    );
}

#[test]
fn a_path_no_cache_holds_is_told_what_they_do_hold() {
    let tmp = tempfile::tempdir().unwrap();
    tree(tmp.path());
    let cache = tmp.path().join("cache");
    regcache(tmp.path())
        .args(["-q", "save", "--cache-to", &local(&cache), "tree"])
        .assert()
        .success();
    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    let output = regcache(&dst)
        .args(["restore", "--cache-from"])
        .arg(format!("type=local,src={}", cache.display()))
        .args(["tree", "trea"])
        .output()
        .unwrap();
    assert_reads(
        "a_path_no_cache_holds_is_told_what_they_do_hold",
        &redacted(&output, tmp.path(), None),
    );
}

#[test]
fn save_summaries_count_in_words_that_agree() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("one")).unwrap();
    fs::write(tmp.path().join("one/only"), "x").unwrap();
    let output = regcache(tmp.path())
        .args(["save", "--cache-to", &local(&tmp.path().join("c")), "one"])
        .output()
        .unwrap();
    assert_reads(
        "save_summaries_count_in_words_that_agree",
        &redacted(&output, tmp.path(), None),
    );
}

#[test]
fn run_says_what_it_restored_before_the_command_speaks() {
    let tmp = tempfile::tempdir().unwrap();
    tree(tmp.path());
    let cache = tmp.path().join("cache");
    regcache(tmp.path())
        .args(["-q", "save", "--cache-to", &local(&cache), "tree"])
        .assert()
        .success();
    fs::remove_dir_all(tmp.path().join("tree")).unwrap();
    let output = regcache(tmp.path())
        .args(["run", "--cache-from"])
        .arg(format!("type=local,src={}", cache.display()))
        .args([
            "--path",
            "tree",
            "--",
            "sh",
            "-c",
            "echo THE-BUILD-SPEAKS >&2",
        ])
        .output()
        .unwrap();
    let text = redacted(&output, tmp.path(), None);
    let restored = text.find("restore: 1 of 1 path hit").expect(&text);
    let build = text.find("THE-BUILD-SPEAKS").expect(&text);
    assert!(restored < build, "{text}");
    assert_reads("run_says_what_it_restored_before_the_command_speaks", &text);
}

#[test]
fn run_fail_on_miss_gives_its_reason_once() {
    let tmp = tempfile::tempdir().unwrap();
    let output = regcache(tmp.path())
        .args(["run", "--fail-on-miss", "--cache-from"])
        .arg(format!(
            "type=local,src={}",
            tmp.path().join("none").display()
        ))
        .args(["--path", "tree", "--", "true"])
        .output()
        .unwrap();
    let text = redacted(&output, tmp.path(), None);
    assert_eq!(text.matches("--fail-on-miss").count(), 1, "{text}");
    assert_reads("run_fail_on_miss_gives_its_reason_once", &text);
}

#[test]
fn a_run_command_without_the_separator_gets_a_tip() {
    let tmp = tempfile::tempdir().unwrap();
    let output = regcache(tmp.path())
        .args(["run", "--path", "tree", "cargo", "build"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_reads(
        "a_run_command_without_the_separator_gets_a_tip",
        &redacted(&output, tmp.path(), None),
    );
}

#[test]
fn a_directory_given_as_a_ref_is_shown_how_to_name_a_local_cache() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("cache")).unwrap();
    let from = regcache(tmp.path())
        .args(["restore", "--cache-from", "./cache"])
        .output()
        .unwrap();
    assert_eq!(from.status.code(), Some(2));
    let to = regcache(tmp.path())
        .args(["save", "--cache-to", "./cache", "tree"])
        .output()
        .unwrap();
    assert_eq!(to.status.code(), Some(2));
    let text = format!(
        "{}\n{}",
        redacted(&from, tmp.path(), None),
        redacted(&to, tmp.path(), None)
    );
    assert!(text.contains("hint: for a cache in a local directory, write type=local,src=./cache"));
    assert!(text.contains("write type=local,dest=./cache"));
    assert_reads(
        "a_directory_given_as_a_ref_is_shown_how_to_name_a_local_cache",
        &text,
    );
}

/// `regcache inspect` of a cache on a registry that asks for a password,
/// with DOCKER_CONFIG at `docker` (made by `setup`) and PATH led by
/// `bin`: the credentials lookup is what fails.
fn inspect_with_docker_config(setup: impl FnOnce(&Path, &Path, &str)) -> String {
    with_docker_config(
        |host| vec!["inspect".into(), format!("{host}/app:cache")],
        setup,
    )
}

/// `args(host)` run against a registry that asks for a password, with
/// DOCKER_CONFIG and PATH as [`inspect_with_docker_config`] sets them.
fn with_docker_config(
    args: impl FnOnce(&str) -> Vec<String>,
    setup: impl FnOnce(&Path, &Path, &str),
) -> String {
    let registry = TestRegistry::start(RegistryOptions {
        htpasswd: true,
        ..RegistryOptions::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let docker = tmp.path().join("docker");
    let bin = tmp.path().join("bin");
    fs::create_dir_all(&docker).unwrap();
    fs::create_dir_all(&bin).unwrap();
    let host = registry.host();
    setup(&docker, &bin, &host);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin.clone()];
    paths.extend(std::env::split_paths(&path));
    let output = regcache(tmp.path())
        .env("DOCKER_CONFIG", &docker)
        .env("PATH", std::env::join_paths(paths).unwrap())
        .args(args(&host))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    redacted(&output, tmp.path(), Some(&host))
}

#[test]
fn a_broken_docker_config_names_the_file_and_what_to_fix() {
    let text = inspect_with_docker_config(|docker, _, _| {
        fs::write(docker.join("config.json"), "{\"auths\": {\n").unwrap();
    });
    assert!(
        text.contains("hint: fix [TMP]/docker/config.json"),
        "{text}"
    );
    assert_reads(
        "a_broken_docker_config_names_the_file_and_what_to_fix",
        &text,
    );
}

#[test]
fn prune_keeps_the_hint_of_a_broken_docker_config() {
    let text = with_docker_config(
        |host| {
            ["prune", "--keep", "1", &format!("{host}/app")]
                .map(String::from)
                .to_vec()
        },
        |docker, _, _| fs::write(docker.join("config.json"), "{\"auths\": []}").unwrap(),
    );
    assert!(
        text.contains("hint: fix [TMP]/docker/config.json"),
        "{text}"
    );
    assert_eq!(text.matches("error:").count(), 1, "{text}");
    assert_reads("prune_keeps_the_hint_of_a_broken_docker_config", &text);
}

#[test]
fn a_docker_config_that_cannot_be_read_says_so() {
    // A directory where the file should be: unreadable even for root.
    let text = inspect_with_docker_config(|docker, _, _| {
        fs::create_dir_all(docker.join("config.json")).unwrap();
    });
    assert_reads("a_docker_config_that_cannot_be_read_says_so", &text);
}

#[test]
fn an_auths_entry_that_does_not_decode_says_to_log_in_again() {
    let text = inspect_with_docker_config(|docker, _, host| {
        let config = format!(r#"{{"auths":{{"{host}":{{"auth":"not base64!"}}}}}}"#);
        fs::write(docker.join("config.json"), config).unwrap();
    });
    assert!(text.contains("docker login [REGISTRY]"), "{text}");
    assert_reads(
        "an_auths_entry_that_does_not_decode_says_to_log_in_again",
        &text,
    );
}

#[test]
fn a_missing_credential_helper_says_to_install_it() {
    let text = inspect_with_docker_config(|docker, _, _| {
        let config = r#"{"credsStore":"regcache-test-absent"}"#;
        fs::write(docker.join("config.json"), config).unwrap();
    });
    assert!(
        text.contains("install docker-credential-regcache-test-absent"),
        "{text}"
    );
    assert_reads("a_missing_credential_helper_says_to_install_it", &text);
}

#[test]
fn a_failing_credential_helper_is_quoted_and_named() {
    use std::os::unix::fs::PermissionsExt;
    let text = inspect_with_docker_config(|docker, bin, host| {
        let config = format!(r#"{{"credHelpers":{{"{host}":"regcache-test-locked"}}}}"#);
        fs::write(docker.join("config.json"), config).unwrap();
        let helper = bin.join("docker-credential-regcache-test-locked");
        fs::write(
            &helper,
            "#!/bin/sh\necho 'the keychain is locked' >&2\necho 'second line' >&2\nexit 1\n",
        )
        .unwrap();
        fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    });
    assert!(text.contains("the keychain is locked"), "{text}");
    assert!(!text.contains("second line"), "{text}");
    assert_reads("a_failing_credential_helper_is_quoted_and_named", &text);
}

#[test]
fn a_registry_host_that_makes_no_url_is_named_with_a_hint() {
    let tmp = tempfile::tempdir().unwrap();
    // It passes as a host name, but a URL reads it as an IPv4 address.
    let output = regcache(tmp.path())
        .args(["inspect", "999.999.999.999:5000/app:cache"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_reads(
        "a_registry_host_that_makes_no_url_is_named_with_a_hint",
        &redacted(&output, tmp.path(), None),
    );
}

/// With COLUMNS=40 every message fits 40 columns, continuing after its
/// prefix, unless it is one word too long for any line; without COLUMNS
/// (and stderr not a terminal) the same messages are not wrapped. Paths
/// are relative, so the wrapping does not depend on where the test runs.
#[test]
fn messages_fit_the_width_columns_gives() {
    let tmp = tempfile::tempdir().unwrap();
    tree(tmp.path());
    regcache(tmp.path())
        .args(["-q", "save", "--cache-to", "type=local,dest=cache", "tree"])
        .assert()
        .success();
    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    let long = "a-directory-name-too-long-for-any-line-of-forty-columns";
    let runs: [(&Path, Vec<String>); 3] = [
        // An error with a hint, one word of it longer than a line.
        (
            tmp.path(),
            vec!["inspect".into(), format!("type=local,src={long}")],
        ),
        // A warning and a summary.
        (
            &dst,
            [
                "restore",
                "--cache-from",
                "type=local,src=../cache",
                "tree",
                "trea",
            ]
            .map(String::from)
            .to_vec(),
        ),
        // A usage error whose hint is long.
        (
            tmp.path(),
            ["prune", "localhost:5000/app"].map(String::from).to_vec(),
        ),
    ];
    let mut text = String::new();
    for (cwd, args) in &runs {
        let run = |columns: Option<&str>| {
            let mut cmd = regcache(cwd);
            if let Some(columns) = columns {
                cmd.env("COLUMNS", columns);
            }
            let output = cmd.args(args).output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            // Progress lines (`tree: layer …`) are not messages: left out.
            stderr
                .lines()
                .filter(|l| !l.contains(": layer sha256:"))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
        };
        let wrapped = run(Some("40"));
        let whole = run(None);
        for line in wrapped.lines() {
            let fits = line.chars().count() <= 40;
            let body = ["error: ", "hint: ", "warning: ", "  caused by: "]
                .iter()
                .find_map(|prefix| line.strip_prefix(prefix))
                .unwrap_or(line);
            let one_word = body.split_whitespace().count() == 1;
            assert!(fits || one_word, "{line:?} is wider than 40:\n{wrapped}");
        }
        // Only where lines break changed: the words are the same (but
        // for how long each run took).
        let words = |text: &str| -> Vec<String> {
            text.split_whitespace()
                .map(|w| {
                    let number = w.trim_end_matches(',').trim_end_matches('s');
                    if number.contains('.') && number.parse::<f64>().is_ok() {
                        "[T]".to_string()
                    } else {
                        w.to_string()
                    }
                })
                .collect()
        };
        assert_eq!(words(&wrapped), words(&whole));
        assert!(whole.lines().all(|l| !l.starts_with("      ")), "{whole}");
        text.push_str(&format!("$ regcache {}\n{wrapped}", args.join(" ")));
    }
    assert!(
        text.lines()
            .any(|l| l.trim().ends_with(&format!("{long}:latest:"))),
        "{text}"
    );
    assert_reads("messages_fit_the_width_columns_gives", &text);
}

/// At a terminal, without COLUMNS, the terminal's width is used. The
/// terminal is a pseudo-terminal made by script(1) (util-linux), 50
/// columns wide.
#[test]
fn at_a_terminal_messages_fit_its_width() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("script(1) is not installed; skipping");
        return;
    }
    let bin = assert_cmd::cargo::cargo_bin("regcache");
    let output = std::process::Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "stty rows 20 cols 50; {} prune localhost:5000/app",
            bin.display()
        ))
        .arg("/dev/null")
        .env_remove("COLUMNS")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    // The terminal's output, with its CR LF line ends.
    let text = String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n");
    assert!(text.contains("hint: e.g."), "{text}");
    assert!(text.lines().count() > 2, "not wrapped:\n{text}");
    for line in text.lines() {
        assert!(line.chars().count() <= 50, "{line:?} is wider than 50");
    }
    assert!(
        text.lines().any(|l| l.starts_with("      --")),
        "the hint goes on after `hint: `:\n{text}"
    );
}
