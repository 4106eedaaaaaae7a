//! `regcache run` through the real binary on local caches: restore before
//! the command, save only after a success, exit with the command's status.

use std::fs;
use std::path::Path;

use crate::common::{json_of, regcache};
use predicates::prelude::*;
use predicates::str::contains;

fn local_to(dest: &Path) -> String {
    format!("type=local,dest={}", dest.display())
}

fn local_from(src: &Path) -> String {
    format!("type=local,src={}", src.display())
}

/// A cache at `cache` holding `tree/f` = `content`, saved through `run`.
fn seed(dir: &Path, cache: &Path, content: &str) {
    fs::create_dir_all(dir.join("tree")).unwrap();
    fs::write(dir.join("tree/f"), content).unwrap();
    regcache(dir)
        .args(["run", "--cache-to", &local_to(cache), "--path", "tree"])
        .args(["--", "true"])
        .assert()
        .success();
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_successful_command_saves_and_the_next_run_sees_the_restored_files() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let first = tmp.path().join("first");
    seed(&first, &cache, "cached content");
    assert!(cache.join("index.json").is_file(), "no cache was written");

    // A fresh directory: the command can only see tree/f if the restore
    // ran before it.
    let second = tmp.path().join("second");
    fs::create_dir_all(&second).unwrap();
    regcache(&second)
        .args(["run", "--cache-from", &local_from(&cache), "--path", "tree"])
        .args(["--", "sh", "-c", "cat tree/f > seen.txt"])
        .assert()
        .success();
    assert_eq!(
        fs::read_to_string(second.join("seen.txt")).unwrap(),
        "cached content"
    );
}

#[test]
fn a_failing_command_saves_nothing_and_its_status_is_ours() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    fs::create_dir_all(tmp.path().join("tree")).unwrap();
    fs::write(tmp.path().join("tree/f"), "x").unwrap();
    regcache(tmp.path())
        .args(["run", "--cache-to", &local_to(&cache), "--path", "tree"])
        .args(["--", "sh", "-c", "exit 3"])
        .assert()
        .code(3)
        .stderr(contains("exited 3"));
    assert!(!cache.exists(), "a failed command's tree was saved");
}

#[test]
fn a_failing_command_leaves_the_previous_cache_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    seed(tmp.path(), &cache, "good");
    let index = fs::read(cache.join("index.json")).unwrap();
    fs::write(tmp.path().join("tree/f"), "half-built").unwrap();
    regcache(tmp.path())
        .args(["run", "--cache-to", &local_to(&cache), "--path", "tree"])
        .args(["--", "false"])
        .assert()
        .code(1);
    assert_eq!(fs::read(cache.join("index.json")).unwrap(), index);
}

#[test]
fn a_command_killed_by_a_signal_exits_128_plus_the_signal() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    fs::create_dir_all(tmp.path().join("tree")).unwrap();
    regcache(tmp.path())
        .args(["run", "--cache-to", &local_to(&cache), "--path", "tree"])
        .args(["--", "sh", "-c", "kill -TERM $$"])
        .assert()
        .code(128 + 15)
        .stderr(contains("signal 15"));
    assert!(!cache.exists());
}

#[test]
fn the_command_inherits_stdin_stdout_stderr_and_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("tree")).unwrap();
    regcache(tmp.path())
        .env("REGCACHE_RUN_TEST", "from-env")
        .args(["run", "--path", "tree", "--"])
        .args([
            "sh",
            "-c",
            "read line; echo \"got:$line\"; echo \"env:$REGCACHE_RUN_TEST\"; echo to-stderr >&2",
        ])
        .write_stdin("hello\n")
        .assert()
        .success()
        .stdout(contains("got:hello").and(contains("env:from-env")))
        .stderr(contains("to-stderr"));
}

#[test]
fn arguments_reach_the_command_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    regcache(tmp.path())
        .args(["run", "--path", "tree", "--"])
        .args(["printf", "[%s]", "a b", "--path", "-x", ""])
        .assert()
        .success()
        .stdout("[a b][--path][-x][]");
}

#[test]
fn a_bad_spec_exits_2_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    for (flag, spec) in [
        ("--cache-to", format!("{},mdoe=max", local_to(&cache))),
        ("--cache-from", "type=gha".to_string()),
    ] {
        regcache(tmp.path())
            .args(["run", flag, &spec, "--path", "tree"])
            .args(["--", "touch", "ran"])
            .assert()
            .code(2);
        assert!(!tmp.path().join("ran").exists(), "{flag} {spec}: ran");
    }
}

#[test]
fn the_command_needs_the_double_dash() {
    let tmp = tempfile::tempdir().unwrap();
    regcache(tmp.path())
        .args(["run", "--path", "tree", "touch", "ran"])
        .assert()
        .code(2);
    assert!(!tmp.path().join("ran").exists());
}

#[test]
fn a_missing_command_exits_127_like_a_shell() {
    let tmp = tempfile::tempdir().unwrap();
    regcache(tmp.path())
        .args(["run", "--path", "tree", "--", "regcache-no-such-command"])
        .assert()
        .code(127)
        .stderr(contains("regcache-no-such-command"));
}

#[test]
fn a_failed_export_after_success_exits_1_unless_ignore_error() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("tree")).unwrap();
    fs::write(tmp.path().join("tree/f"), "x").unwrap();
    // A cache directory below a regular file cannot be created.
    fs::write(tmp.path().join("blocker"), "").unwrap();
    let broken = local_to(&tmp.path().join("blocker/cache"));
    let meta = tmp.path().join("meta.json");
    regcache(tmp.path())
        .args(["run", "--cache-to", &broken, "--path", "tree"])
        .arg("--metadata-file")
        .arg(&meta)
        .args(["--", "touch", "ran"])
        .assert()
        .code(1)
        .stderr(contains("blocker"));
    assert!(tmp.path().join("ran").exists());
    let metadata = read_json(&meta);
    assert_eq!(metadata["exit_code"], 0, "{metadata}");
    assert_eq!(metadata["cache_to"][0]["status"], "failed", "{metadata}");
    assert!(metadata["error"].is_string(), "{metadata}");

    let good = tmp.path().join("good");
    regcache(tmp.path())
        .args(["run", "--path", "tree"])
        .args(["--cache-to", &format!("{broken},ignore-error=true")])
        .args(["--cache-to", &local_to(&good)])
        .arg("--metadata-file")
        .arg(&meta)
        .args(["--", "true"])
        .assert()
        .success()
        .stderr(contains("warning:").and(contains("ignore-error")));
    assert!(
        good.join("index.json").is_file(),
        "the other target was skipped"
    );
    let metadata = read_json(&meta);
    assert_eq!(metadata["cache_to"][0]["status"], "ignored-error");
    assert!(metadata["cache_to"][0]["error"].is_string());
    assert_eq!(metadata["cache_to"][1]["status"], "written");
    assert!(metadata["error"].is_null(), "{metadata}");
}

#[test]
fn fail_on_miss_exits_1_without_running_the_command() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = local_from(&tmp.path().join("nope"));
    regcache(tmp.path())
        .args(["run", "--fail-on-miss", "--cache-from", &missing])
        .args(["--path", "tree", "--", "touch", "ran"])
        .assert()
        .code(1)
        .stderr(contains("--fail-on-miss"));
    assert!(!tmp.path().join("ran").exists());

    // Without anything to restore from, it can only be a mistake.
    regcache(tmp.path())
        .args(["run", "--fail-on-miss", "--path", "tree", "--", "true"])
        .assert()
        .code(2);
}

#[test]
fn a_missing_cache_is_only_a_warning_and_the_command_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = local_from(&tmp.path().join("nope"));
    regcache(tmp.path())
        .args(["run", "--cache-from", &missing, "--path", "tree"])
        .args(["--", "touch", "ran"])
        .assert()
        .success()
        .stderr(contains("warning:").and(contains("not found")));
    assert!(tmp.path().join("ran").exists());
}

#[test]
fn a_corrupt_cache_is_a_warning_and_the_run_replaces_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    seed(tmp.path(), &cache, "original");
    // Corrupt every layer blob in place (keep the size, flip the bytes).
    for entry in fs::read_dir(cache.join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = fs::read(&path).unwrap();
        if bytes.len() > 100 && !bytes.starts_with(b"{") {
            fs::write(&path, bytes.iter().map(|b| !b).collect::<Vec<u8>>()).unwrap();
        }
    }
    let fresh = tmp.path().join("fresh");
    fs::create_dir_all(&fresh).unwrap();
    regcache(&fresh)
        .args(["run", "--cache-from", &local_from(&cache)])
        .args(["--cache-to", &local_to(&cache), "--path", "tree", "--"])
        .args(["sh", "-c", "mkdir -p tree && echo rebuilt > tree/f"])
        .assert()
        .success()
        .stderr(contains("warning:").and(contains("going on without it")));
    let again = tmp.path().join("again");
    fs::create_dir_all(&again).unwrap();
    regcache(&again)
        .args(["restore", "--cache-from", &local_from(&cache)])
        .assert()
        .success();
    assert_eq!(
        fs::read_to_string(again.join("tree/f")).unwrap(),
        "rebuilt\n"
    );
}

#[test]
fn metadata_records_the_restore_the_exit_code_and_the_save() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    seed(tmp.path(), &cache, "v1");
    let meta = tmp.path().join("meta.json");
    regcache(tmp.path())
        .args(["run", "--cache-from", &local_from(&cache)])
        .args(["--cache-to", &local_to(&cache)])
        .args(["--path", "tree", "--path", "other"])
        .arg("--metadata-file")
        .arg(&meta)
        .args(["--", "true"])
        .assert()
        .success();
    let m = read_json(&meta);
    assert_eq!(m["command"], "run");
    assert_eq!(m["exit_code"], 0);
    assert_eq!(m["paths"][0]["path"], "tree");
    assert_eq!(m["paths"][0]["hit"], true);
    assert_eq!(m["paths"][0]["from"], cache.to_str().unwrap());
    assert_eq!(m["paths"][0]["saved"]["files"], 1);
    assert_eq!(m["paths"][1]["path"], "other");
    assert_eq!(m["paths"][1]["hit"], false);
    assert!(m["paths"][1]["saved"].is_null());
    assert_eq!(m["cache_to"][0]["status"], "written");
    assert!(
        m["cache_to"][0]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );

    regcache(tmp.path())
        .args(["run", "--cache-to", &local_to(&cache), "--path", "tree"])
        .arg("--metadata-file")
        .arg(&meta)
        .args(["--", "sh", "-c", "exit 4"])
        .assert()
        .code(4);
    let m = read_json(&meta);
    assert_eq!(m["exit_code"], 4);
    assert_eq!(m["cache_to"][0]["status"], "skipped");
    assert!(m["cache_to"][0]["digest"].is_null());
    // No restore was asked for: hit is unknown, not false.
    assert!(m["paths"][0]["hit"].is_null());
}

#[test]
fn dry_run_prints_the_plan_with_the_command_and_runs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let output = regcache(tmp.path())
        .args(["run", "--dry-run", "--json"])
        .args([
            "--cache-from",
            "user/app:cache",
            "--cache-to",
            "user/app:cache",
        ])
        .args(["--path", "target", "--", "touch", "ran"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let plan = json_of(&output);
    assert_eq!(plan["command"], "run");
    assert_eq!(plan["argv"], serde_json::json!(["touch", "ran"]));
    assert_eq!(plan["paths"], serde_json::json!(["target"]));
    assert_eq!(plan["cache_to"][0]["ref"], "docker.io/user/app:cache");
    assert_eq!(plan["cache_from"][0]["ref"], "docker.io/user/app:cache");
    assert!(!tmp.path().join("ran").exists());
}

/// Starts `regcache run` on a command that reports the signals it gets,
/// waits until the command is ready, sends `signal` to regcache alone and
/// returns regcache's exit code and what the command saw.
fn signal_regcache_alone(signal: i32) -> (Option<i32>, String) {
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let script = "trap 'echo TERM > got; exit 42' TERM; \
                  trap 'echo INT > got; exit 43' INT; \
                  touch ready; while :; do sleep 0.05; done";
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("regcache"))
        .current_dir(tmp.path())
        .env("NO_COLOR", "1")
        .args(["-q", "run", "--path", "tree", "--", "sh", "-c", script])
        .stdin(std::process::Stdio::null())
        // Its own process group: never a terminal's foreground, even when
        // the tests run in one, so a signal reaches regcache alone.
        .process_group(0)
        .spawn()
        .unwrap();
    let ready = tmp.path().join("ready");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ready.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on the child process this test spawned.
    unsafe {
        libc::kill(pid, signal);
    }
    let status = child.wait().unwrap();
    let got = fs::read_to_string(tmp.path().join("got")).unwrap_or_default();
    (status.code(), got)
}

#[test]
fn sigterm_to_regcache_is_passed_on_and_it_reports_the_commands_status() {
    let (code, got) = signal_regcache_alone(libc::SIGTERM);
    assert_eq!(got.trim(), "TERM");
    assert_eq!(code, Some(42));
}

#[test]
fn sigint_to_regcache_alone_is_passed_on_without_a_terminal() {
    let (code, got) = signal_regcache_alone(libc::SIGINT);
    assert_eq!(got.trim(), "INT");
    assert_eq!(code, Some(43));
}
