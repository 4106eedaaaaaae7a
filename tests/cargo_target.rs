//! The reason regcache exists: a restored cargo `target/` must make the
//! next `cargo build` compile nothing. That needs every mtime back to the
//! nanosecond, so this runs real cargo on a real project.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::regcache;

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
