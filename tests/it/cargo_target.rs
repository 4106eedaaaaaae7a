//! The reason regcache exists: a restored cargo `target/` must make the
//! next `cargo build` compile nothing. That needs every mtime back to the
//! nanosecond, so this runs real cargo on a real project.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::regcache;

fn cargo(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(dir).args(args);
    // The outer `cargo test` sets variables that would redirect the inner
    // build (target dir, flags); the project must build as a user's would.
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_") && key != "CARGO_HOME" {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("RUSTFLAGS").env("CARGO_TERM_COLOR", "never");
    cmd.output().expect("cargo runs")
}

#[test]
fn restored_target_makes_cargo_build_a_no_op() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("hello");
    fs::create_dir_all(project.join("src")).unwrap();
    fs::write(
        project.join("Cargo.toml"),
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\npath = \"src/lib.rs\"\n\n[[bin]]\nname = \"hello\"\npath = \"src/main.rs\"\n",
    )
    .unwrap();
    fs::write(
        project.join("src/lib.rs"),
        "pub fn greet() -> &'static str { \"hi\" }\n",
    )
    .unwrap();
    fs::write(
        project.join("src/main.rs"),
        "fn main() { println!(\"{}\", hello::greet()); }\n",
    )
    .unwrap();

    let first = cargo(&project, &["build"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stderr).contains("Compiling hello"));

    let cache = tmp.path().join("cache");
    regcache(&project)
        .args([
            "save",
            "--cache-to",
            &format!("type=local,dest={},compression=zstd", cache.display()),
            "target",
        ])
        .assert()
        .success();
    fs::remove_dir_all(project.join("target")).unwrap();
    regcache(&project)
        .args([
            "restore",
            "--cache-from",
            &format!("type=local,src={}", cache.display()),
        ])
        .assert()
        .success();

    let second = cargo(&project, &["build"]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(
        !stderr.contains("Compiling"),
        "cargo rebuilt after restore:\n{stderr}"
    );
    let run = Command::new(project.join("target/debug/hello"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "hi\n");
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the README says of a fresh clone: a restored `target/` keeps the
/// dependencies fresh, but the workspace's own crate rebuilds once, since
/// the clone gives its sources new mtimes and cargo judges them by those.
/// The dependency comes from cargo's local registry cache (`--offline`):
/// `itoa`, which building regcache itself put there.
#[test]
fn in_a_fresh_clone_dependencies_stay_fresh_and_the_workspace_rebuilds() {
    let tmp = tempfile::tempdir().unwrap();
    let ci = tmp.path().join("ci");
    fs::create_dir_all(ci.join("src")).unwrap();
    fs::write(
        ci.join("Cargo.toml"),
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"=1.0.19\"\n",
    )
    .unwrap();
    fs::write(
        ci.join("src/main.rs"),
        "fn main() { println!(\"{}\", itoa::Buffer::new().format(42)); }\n",
    )
    .unwrap();
    fs::write(ci.join(".gitignore"), "/target\n").unwrap();
    let first = cargo(&ci, &["build", "--offline"]);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        first.status.success(),
        "itoa 1.0.19 must be in cargo's registry cache (building regcache puts it there):\n{stderr}"
    );
    assert!(stderr.contains("Compiling itoa"), "{stderr}");
    git(&ci, &["init", "-q"]);
    git(&ci, &["add", "."]);
    git(&ci, &["commit", "-q", "-m", "init"]);

    let cache = tmp.path().join("cache");
    regcache(&ci)
        .args([
            "save",
            "--cache-to",
            &format!("type=local,dest={}", cache.display()),
        ])
        .arg("target")
        .assert()
        .success();
    // The next CI run: a clone at the same path (as a runner's checkout
    // is), a second later, so only the sources' mtimes differ.
    fs::rename(&ci, tmp.path().join("origin")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    git(tmp.path(), &["clone", "-q", "origin", "ci"]);
    let clone = ci;
    regcache(&clone)
        .args([
            "restore",
            "--cache-from",
            &format!("type=local,src={}", cache.display()),
        ])
        .assert()
        .success();
    let second = cargo(&clone, &["build", "--offline"]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(!stderr.contains("Compiling itoa"), "{stderr}");
    assert!(stderr.contains("Compiling hello"), "{stderr}");
    // And once rebuilt, the clone is a checkout like any other.
    let third = cargo(&clone, &["build", "--offline"]);
    assert!(!String::from_utf8_lossy(&third.stderr).contains("Compiling"));
}
