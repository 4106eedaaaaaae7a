//! The GitHub Action (action.yml, restore/, save/) run as the runner runs
//! it: `node` on its scripts with the environment GitHub gives an action
//! (every declared input as `INPUT_<NAME>`, defaults filled in;
//! `GITHUB_OUTPUT` and `GITHUB_STATE` files; `STATE_*` for the post step
//! from what the main step saved; `RUNNER_TEMP`; `GITHUB_ACTION_PATH`),
//! against a real registry and a local cache dir.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::action::{ROOT, Runner, no_state, node, read_yml};
use crate::common::registry::{RegistryOptions, TestRegistry};
use crate::common::{build_rich_tree, regcache, snapshot};

fn has_cache(cwd: &Path, spec: &str) -> bool {
    regcache(cwd)
        .args(["inspect", spec])
        .output()
        .expect("inspect")
        .status
        .success()
}

/// A cold job misses and saves at its end; a warm job on another runner
/// hits, says where from, gets the same tree, and saves what it changed.
#[test]
fn a_cold_job_saves_and_a_warm_job_restores_it() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let host = registry.host();
    let branch = format!("{host}/app/cache:cache-feature-x");
    let main = format!("{host}/app/cache:cache-main");
    let from = format!("{branch}\n{main}\n");

    let cold = Runner::new();
    let inputs = [
        ("cache-from", from.as_str()),
        ("cache-to", branch.as_str()),
        ("path", "target\n~/.cargo/registry\n"),
    ];
    let restored = cold.step("", "main", &inputs, &no_state(), &[]);
    assert!(restored.success(), "{}", restored.log());
    assert_eq!(restored.output("cache-hit"), "false", "{}", restored.log());
    assert_eq!(restored.matched(), serde_json::json!({}));
    assert!(!has_cache(cold.tmp.path(), &branch));
    // The job's build.
    build_rich_tree(&cold.workspace().join("target"));
    let registry_dir = cold.home.join(".cargo/registry");
    fs::create_dir_all(&registry_dir).unwrap();
    fs::write(registry_dir.join("index"), "crates").unwrap();
    let saved = cold.step("", "post", &inputs, &restored.state, &[]);
    assert!(saved.success(), "{}", saved.log());
    assert!(has_cache(cold.tmp.path(), &branch), "{}", saved.log());

    let warm = Runner::like(&cold);
    let inputs = [
        ("cache-from", from.as_str()),
        ("cache-to", branch.as_str()),
        ("path", "target\n~/.cargo/registry"),
        ("extra-args", "--jobs 2 -v"),
    ];
    let restored = warm.step("", "main", &inputs, &no_state(), &[]);
    assert!(restored.success(), "{}", restored.log());
    assert_eq!(restored.output("cache-hit"), "true", "{}", restored.log());
    let home = &warm.home;
    assert_eq!(
        restored.matched(),
        serde_json::json!({
            "target": branch,
            home.join(".cargo/registry").to_str().unwrap(): branch,
        })
    );
    assert_eq!(
        snapshot(&warm.workspace().join("target")),
        snapshot(&cold.workspace().join("target"))
    );
    assert_eq!(
        fs::read_to_string(home.join(".cargo/registry/index")).unwrap(),
        "crates"
    );
    // The post step compares with the cache the restore used.
    assert_eq!(
        serde_json::from_str::<Vec<String>>(&restored.state["bases"]).unwrap(),
        vec![branch.clone()]
    );

    fs::write(warm.workspace().join("target/run.sh"), "changed").unwrap();
    let saved = warm.step("", "post", &inputs, &restored.state, &[]);
    assert!(saved.success(), "{}", saved.log());
    let third = tempfile::tempdir().unwrap();
    regcache(third.path())
        .args(["restore", "--cache-from", &branch, "target"])
        .assert()
        .success();
    assert_eq!(
        fs::read_to_string(third.path().join("target/run.sh")).unwrap(),
        "changed"
    );
}

/// Only some paths in the cache: not a hit, and `matched` names those.
#[test]
fn a_partial_restore_is_not_a_cache_hit() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let main = format!("{}/app/cache:cache-main", registry.host());
    let seed = tempfile::tempdir().unwrap();
    fs::create_dir_all(seed.path().join("a")).unwrap();
    fs::write(seed.path().join("a/f"), "x").unwrap();
    regcache(seed.path())
        .args(["save", "--cache-to", &main, "a"])
        .assert()
        .success();

    let runner = Runner::new();
    let inputs = [("cache-from", main.as_str()), ("path", "a\nb")];
    let step = runner.step("", "main", &inputs, &no_state(), &[]);
    assert!(step.success(), "{}", step.log());
    assert_eq!(step.output("cache-hit"), "false");
    assert_eq!(step.matched(), serde_json::json!({ "a": main }));
    // No cache-to: the post step has nothing to do, and says so.
    let post = runner.step("", "post", &inputs, &step.state, &[]);
    assert!(post.success(), "{}", post.log());
    assert!(post.log().contains("nothing to save"), "{}", post.log());
}

#[test]
fn fail_on_miss_fails_the_step_with_an_error_annotation() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let missing = format!("{}/app/cache:nothing-here", registry.host());
    let runner = Runner::new();
    let inputs = [
        ("cache-from", missing.as_str()),
        ("cache-to", missing.as_str()),
        ("path", "target"),
        ("fail-on-miss", "true"),
    ];
    let step = runner.step("", "main", &inputs, &no_state(), &[]);
    assert!(!step.success(), "{}", step.log());
    let stdout = String::from_utf8_lossy(&step.output.stdout);
    assert!(
        stdout.contains("::error::regcache restore exited 1"),
        "{}",
        step.log()
    );
    assert_eq!(step.output("cache-hit"), "false");

    // The same with a hit passes; a bad boolean is refused before anything runs.
    let local = runner.tmp.path().join("local-cache");
    let seed = tempfile::tempdir().unwrap();
    fs::create_dir_all(seed.path().join("target")).unwrap();
    regcache(seed.path())
        .args(["save", "--cache-to"])
        .arg(format!("type=local,dest={}", local.display()))
        .arg("target")
        .assert()
        .success();
    let from = format!("type=local,src={}", local.display());
    let inputs = [
        ("cache-from", from.as_str()),
        ("path", "target"),
        ("fail-on-miss", "true"),
    ];
    let step = runner.step("", "main", &inputs, &no_state(), &[]);
    assert!(step.success(), "{}", step.log());
    assert_eq!(step.output("cache-hit"), "true");
    let inputs = [
        ("cache-from", from.as_str()),
        ("path", "target"),
        ("fail-on-miss", "yes please"),
    ];
    let step = runner.step("", "main", &inputs, &no_state(), &[]);
    assert!(!step.success());
    assert!(
        step.log().contains("::error::input fail-on-miss"),
        "{}",
        step.log()
    );
}

/// Jobs that split the two: `save/` at a step of its own, `restore/` in
/// another job, through a local cache dir; neither leaves state behind.
#[test]
fn the_restore_and_save_sub_actions_work_on_their_own() {
    let runner = Runner::new();
    let cache = runner.tmp.path().join("cache dir");
    build_rich_tree(&runner.workspace().join("node_modules"));
    let to = format!("type=local,dest={}", cache.display());
    let saved = runner.step(
        "save",
        "main",
        &[("cache-to", to.as_str()), ("path", "node_modules")],
        &no_state(),
        &[],
    );
    assert!(saved.success(), "{}", saved.log());
    assert!(saved.state.is_empty());

    let other = Runner::new();
    let from = format!("type=local,src={}", cache.display());
    let restored = other.step(
        "restore",
        "main",
        &[("cache-from", from.as_str()), ("path", "node_modules")],
        &no_state(),
        &[],
    );
    assert!(restored.success(), "{}", restored.log());
    assert_eq!(restored.output("cache-hit"), "true");
    assert_eq!(
        restored.matched(),
        serde_json::json!({ "node_modules": format!("{}:latest", cache.display()) })
    );
    assert!(restored.state.is_empty());
    assert_eq!(
        snapshot(&other.workspace().join("node_modules")),
        snapshot(&runner.workspace().join("node_modules"))
    );

    // save/ with cache-from as its base: an unchanged tree sends no layer.
    let meta = other.tmp.path().join("meta.json");
    let extra = format!("--metadata-file {}", meta.display());
    let again = other.step(
        "save",
        "main",
        &[
            ("cache-to", to.as_str()),
            ("cache-from", from.as_str()),
            ("path", "node_modules"),
            ("extra-args", extra.as_str()),
        ],
        &no_state(),
        &[],
    );
    assert!(again.success(), "{}", again.log());
    let meta: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(meta["paths"][0]["saved"]["plan"], "unchanged", "{meta}");
}

#[test]
fn the_action_files_declare_what_github_needs() {
    let main = read_yml(Path::new(ROOT));
    assert_eq!(main.runs["using"], "node20");
    assert_eq!(main.runs["post-if"], "success()");
    for input in ["cache-from", "cache-to", "path", "fail-on-miss"] {
        assert!(main.inputs.contains_key(input), "{input}");
    }
    assert_eq!(main.inputs["fail-on-miss"], "false");
    assert_eq!(main.outputs, ["cache-hit", "matched"]);

    let restore = read_yml(&Path::new(ROOT).join("restore"));
    assert_eq!(restore.outputs, ["cache-hit", "matched"]);
    assert!(!restore.inputs.contains_key("cache-to"));
    let save = read_yml(&Path::new(ROOT).join("save"));
    assert!(save.outputs.is_empty());
    for (dir, yml) in [("", &main), ("restore", &restore), ("save", &save)] {
        assert_eq!(yml.runs["using"], "node20", "{dir}");
        // Only the combined action saves at the end of the job.
        assert_eq!(yml.runs.contains_key("post"), dir.is_empty(), "{dir}");
        for script in ["main", "post"] {
            if let Some(file) = yml.runs.get(script) {
                let path = Path::new(ROOT).join(dir).join(file);
                let check = Command::new(node()).arg("--check").arg(&path).output();
                assert!(check.unwrap().status.success(), "{}", path.display());
            }
        }
    }
    // No npm dependency: every require is Node's own or the action's.
    for entry in walk_js(&Path::new(ROOT).join("action")) {
        let text = fs::read_to_string(&entry).unwrap();
        for (_, rest) in text
            .match_indices("require(")
            .map(|(i, _)| ((), &text[i + 9..]))
        {
            let name: String = rest.chars().take_while(|c| *c != '\'').collect();
            let builtin = [
                "fs",
                "os",
                "path",
                "crypto",
                "http",
                "https",
                "child_process",
            ];
            assert!(
                name.starts_with("./") || builtin.contains(&name.as_str()),
                "{}: require('{name}')",
                entry.display()
            );
        }
    }
}

fn walk_js(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk_js(&path));
        } else if path.extension().is_some_and(|e| e == "js") {
            out.push(path);
        }
    }
    out
}

/// Serves `files` over plain HTTP on loopback, as a release mirror would.
fn serve(files: BTreeMap<String, Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let name = path.rsplit('/').next().unwrap_or("");
            let (status, body) = match files.get(name) {
                Some(body) => ("200 OK", body.clone()),
                None => ("404 Not Found", b"not found".to_vec()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    format!("http://127.0.0.1:{}/releases/download/v1", addr.port())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// No regcache on PATH: the release binary is fetched, checked against its
/// published sha256 and run; a wrong checksum stops the step, and without a
/// release the fallback is cargo, which says when it is missing.
#[test]
fn without_regcache_on_path_the_release_binary_is_installed_and_verified() {
    let target = format!(
        "{}-unknown-linux-musl",
        match std::env::consts::ARCH {
            "x86_64" => "x86_64",
            "aarch64" => "aarch64",
            other => panic!("no release target for {other}"),
        }
    );
    let asset = format!("regcache-{target}");
    let binary = fs::read(env!("CARGO_BIN_EXE_regcache")).unwrap();
    let good = serve(BTreeMap::from([
        (
            format!("{asset}.sha256"),
            format!("{}  {asset}\n", sha256_hex(&binary)).into_bytes(),
        ),
        (asset.clone(), binary.clone()),
    ]));
    let runner = Runner::with_path(Vec::new());
    let cache = runner.tmp.path().join("cache");
    fs::create_dir_all(runner.workspace().join("out")).unwrap();
    fs::write(runner.workspace().join("out/f"), "x").unwrap();
    let inputs = [("cache-from", "type=local,src=nowhere"), ("path", "out")];
    let to = format!("type=local,dest={}", cache.display());
    let inputs_to = [inputs[0], inputs[1], ("cache-to", to.as_str())];
    let step = runner.step(
        "",
        "main",
        &inputs_to,
        &no_state(),
        &[("REGCACHE_RELEASE_URL", &good)],
    );
    assert!(step.success(), "{}", step.log());
    let installed = PathBuf::from(&step.state["regcache"]);
    assert!(
        installed.starts_with(runner.tmp.path().join("temp")),
        "{installed:?}"
    );
    assert_eq!(fs::read(&installed).unwrap(), binary);
    let post = runner.step("", "post", &inputs_to, &step.state, &[]);
    assert!(post.success(), "{}", post.log());
    assert!(cache.join("index.json").is_file());

    let mut tampered = binary.clone();
    tampered.extend_from_slice(b"extra");
    let bad = serve(BTreeMap::from([
        (
            format!("{asset}.sha256"),
            format!("{}  {asset}\n", sha256_hex(&binary)).into_bytes(),
        ),
        (asset.clone(), tampered),
    ]));
    let fresh = Runner::with_path(Vec::new());
    let step = fresh.step(
        "",
        "main",
        &inputs,
        &no_state(),
        &[("REGCACHE_RELEASE_URL", &bad)],
    );
    assert!(!step.success(), "{}", step.log());
    assert!(
        step.log().contains("does not match the published"),
        "{}",
        step.log()
    );
    assert!(!step.log().contains("cargo install"), "{}", step.log());

    let none = serve(BTreeMap::new());
    let step = fresh.step(
        "",
        "main",
        &inputs,
        &no_state(),
        &[("REGCACHE_RELEASE_URL", &none)],
    );
    assert!(!step.success(), "{}", step.log());
    assert!(step.log().contains("HTTP 404"), "{}", step.log());
    assert!(
        step.log().contains("cargo is not on PATH"),
        "{}",
        step.log()
    );
}

/// actions/cache's restore-keys habit: the branch's key first, then a
/// pattern; the newest matching cache wins and `matched` names its tag,
/// and the post step saves to the branch's key with that cache as base.
#[test]
fn a_tag_pattern_restores_the_newest_match_and_matched_names_it() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let repo = format!("{}/app/cache", registry.host());
    let seed = tempfile::tempdir().unwrap();
    fs::create_dir_all(seed.path().join("target")).unwrap();
    for n in ["1", "2"] {
        fs::write(seed.path().join("target/build"), n).unwrap();
        regcache(seed.path())
            .args(["save", "--cache-to", &format!("{repo}:cache-main-{n}")])
            .arg("target")
            .assert()
            .success();
    }
    let from = format!("{repo}:cache-feature-y\n{repo}:cache-main-*");
    let to = format!("{repo}:cache-feature-y");
    let inputs = [
        ("cache-from", from.as_str()),
        ("cache-to", to.as_str()),
        ("path", "target"),
    ];
    let runner = Runner::new();
    let step = runner.step("", "main", &inputs, &no_state(), &[]);
    assert!(step.success(), "{}", step.log());
    assert_eq!(step.output("cache-hit"), "true");
    assert_eq!(
        step.matched(),
        serde_json::json!({ "target": format!("{repo}:cache-main-2") })
    );
    assert_eq!(
        fs::read_to_string(runner.workspace().join("target/build")).unwrap(),
        "2"
    );
    let post = runner.step("", "post", &inputs, &step.state, &[]);
    assert!(post.success(), "{}", post.log());
    assert!(has_cache(runner.tmp.path(), &to));
}
