//! The recipes of docs/ci.md, run as written against a real registry:
//! shell recipes with bash, GitHub workflows step by step (`run:` with
//! bash, this repository's action with node, as the runner would; the
//! steps of other actions are skipped), GitLab jobs as one bash script.
//! A recipe is a fenced block whose first line is `# recipe: NAME`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::action::{ROOT, Runner, Step, no_state};
use crate::common::aging::{DAY, backdate};
use crate::common::regcache;
use crate::common::registry::{RegistryOptions, TestRegistry};
use serde_json::{Map, Value, json};

const RECIPES: [&str; 8] = [
    "github-action",
    "github-shell",
    "github-fork-pr",
    "gitlab",
    "ecr",
    "lockfile-key",
    "prune-schedule",
    "laptop",
];

/// Every `# recipe: NAME` block of docs/ci.md: name → (language, text).
fn recipes() -> BTreeMap<String, (String, String)> {
    let doc = fs::read_to_string(Path::new(ROOT).join("docs/ci.md")).expect("docs/ci.md");
    let mut found = BTreeMap::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(lang) = line.strip_prefix("```").filter(|l| !l.is_empty()) else {
            continue;
        };
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        if let Some(name) = body.first().and_then(|l| l.strip_prefix("# recipe: ")) {
            let previous = found.insert(name.to_string(), (lang.to_string(), body.join("\n")));
            assert!(previous.is_none(), "recipe {name} appears twice");
        }
    }
    found
}

fn recipe(name: &str) -> String {
    recipes()
        .remove(name)
        .unwrap_or_else(|| panic!("docs/ci.md has no recipe {name}"))
        .1
}

#[test]
fn every_recipe_in_the_doc_is_run_here() {
    let names: Vec<String> = recipes().into_keys().collect();
    let mut expected: Vec<String> = RECIPES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(names, expected);
    // And every recipe makes branch tags the one way the doc shows.
    for (name, (_, text)) in recipes() {
        for line in text.lines().filter(|l| l.contains("tr -c")) {
            assert!(
                line.contains("| tr -c 'A-Za-z0-9_.-' '-')"),
                "{name}: {line}"
            );
            assert!(line.contains("$(printf %s "), "{name}: {line}");
        }
    }
}

// ---- A YAML subset: mappings, sequences, block scalars, plain and
// quoted scalars; enough for the workflows of docs/ci.md.

struct Yaml {
    /// (indent, text) of each line, comments and blank lines kept for
    /// block scalars.
    lines: Vec<(usize, String)>,
    at: usize,
}

impl Yaml {
    fn parse(text: &str) -> Value {
        let lines = text
            .lines()
            .map(|l| (l.len() - l.trim_start().len(), l.trim_start().to_string()))
            .collect();
        let mut yaml = Yaml { lines, at: 0 };
        yaml.skip_blank();
        let indent = yaml.lines.get(yaml.at).map_or(0, |l| l.0);
        yaml.node(indent)
    }

    fn skip_blank(&mut self) {
        while self
            .lines
            .get(self.at)
            .is_some_and(|(_, t)| t.is_empty() || t.starts_with('#'))
        {
            self.at += 1;
        }
    }

    fn node(&mut self, indent: usize) -> Value {
        match self.lines.get(self.at) {
            Some((i, t)) if *i == indent && (t == "-" || t.starts_with("- ")) => {
                self.sequence(indent)
            }
            _ => self.mapping(indent),
        }
    }

    fn is_key(text: &str) -> Option<(String, String)> {
        let (key, rest) = text.split_once(':')?;
        let plain = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        (plain && (rest.is_empty() || rest.starts_with(' ')))
            .then(|| (key.to_string(), rest.trim().to_string()))
    }

    fn mapping(&mut self, indent: usize) -> Value {
        let mut map = Map::new();
        loop {
            self.skip_blank();
            let Some((i, text)) = self.lines.get(self.at).cloned() else {
                break;
            };
            if i != indent || text.starts_with("- ") {
                assert!(i < indent || text.starts_with("- "), "bad indent: {text}");
                break;
            }
            let (key, rest) = Yaml::is_key(&text).unwrap_or_else(|| panic!("not a key: {text:?}"));
            self.at += 1;
            let value = self.value(indent, &rest);
            map.insert(key, value);
        }
        Value::Object(map)
    }

    /// The value after `key:` (`rest`), on its line or below it.
    fn value(&mut self, indent: usize, rest: &str) -> Value {
        if rest == "|" || rest == "|-" {
            let mut block = Vec::new();
            let mut base = None;
            while let Some((i, text)) = self.lines.get(self.at) {
                if !text.is_empty() && *i <= indent {
                    break;
                }
                let base = *base.get_or_insert(*i);
                block.push(if text.is_empty() {
                    String::new()
                } else {
                    format!("{}{}", " ".repeat(i.saturating_sub(base)), text)
                });
                self.at += 1;
            }
            while block.last().is_some_and(String::is_empty) {
                block.pop();
            }
            let mut text = block.join("\n");
            if rest == "|" {
                text.push('\n');
            }
            return Value::String(text);
        }
        if !rest.is_empty() {
            return scalar(rest);
        }
        self.skip_blank();
        match self.lines.get(self.at) {
            Some((i, t)) if *i > indent || (*i == indent && t.starts_with("- ")) => {
                let i = *i;
                self.node(i)
            }
            _ => Value::Null,
        }
    }

    fn sequence(&mut self, indent: usize) -> Value {
        let mut items = Vec::new();
        loop {
            self.skip_blank();
            let Some((i, text)) = self.lines.get(self.at).cloned() else {
                break;
            };
            if i != indent || !text.starts_with("- ") {
                break;
            }
            let rest = text[2..].to_string();
            if Yaml::is_key(&rest).is_some() {
                // `- key: v` opens a mapping whose keys sit two further in.
                self.lines[self.at] = (indent + 2, rest);
                items.push(self.mapping(indent + 2));
            } else {
                self.at += 1;
                items.push(scalar(&rest));
            }
        }
        Value::Array(items)
    }
}

fn scalar(text: &str) -> Value {
    let t = text.trim();
    if t.starts_with('[') && t.ends_with(']') {
        return Value::Array(t[1..t.len() - 1].split(',').map(scalar).collect());
    }
    for q in ['\'', '"'] {
        if t.len() >= 2 && t.starts_with(q) && t.ends_with(q) {
            return Value::String(t[1..t.len() - 1].to_string());
        }
    }
    Value::String(t.to_string())
}

#[test]
fn the_yaml_subset_reads_what_the_recipes_write() {
    let v = Yaml::parse(
        "a: 1\nb:\n  c: 'x y'\n  d: |\n    line 1\n\n      line 2\n  e:\n    - k: v\n      l: w\n    - plain: [p, q]\n  f:\n  - s1 \"q\"\n# c\ng: \"z\"\n",
    );
    assert_eq!(
        v,
        json!({"a": "1", "b": {"c": "x y", "d": "line 1\n\n  line 2\n",
            "e": [{"k": "v", "l": "w"}, {"plain": ["p", "q"]}], "f": ["s1 \"q\""]}, "g": "z"})
    );
}

// ---- The machine the recipes run on.

/// Where the toolchain that runs these tests lives: recipes run cargo
/// with a fresh `$HOME`, where rustup's proxies would find no toolchain.
fn toolchain_bin() -> PathBuf {
    let cargo = std::env::var("CARGO").expect("cargo test sets CARGO");
    Path::new(&cargo)
        .parent()
        .expect("cargo's dir")
        .to_path_buf()
}

fn regcache_bin() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_regcache"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A runner whose PATH has regcache, node, cargo and `extra`.
fn machine(extra: Vec<PathBuf>) -> Runner {
    let mut dirs = vec![regcache_bin(), toolchain_bin()];
    dirs.extend(extra);
    dirs.extend(["/usr/local/bin".into(), "/usr/bin".into(), "/bin".into()]);
    Runner::with_path(dirs)
}

/// The next job's runner: the same `$HOME` path, as GitHub's runners
/// have (so `~/.cargo/registry` is one entry), holding only what a fresh
/// machine's does.
fn next_machine(previous: &Runner) -> Runner {
    let mut runner = machine(Vec::new());
    fs::remove_dir_all(&previous.home).unwrap();
    fs::create_dir_all(&previous.home).unwrap();
    runner.home = previous.home.clone();
    cargo_home(&runner);
    runner
}

/// What a cargo with dependencies leaves in `~/.cargo/registry`.
fn cargo_home(runner: &Runner) {
    let index = runner.home.join(".cargo/registry/index");
    fs::create_dir_all(&index).unwrap();
    fs::write(index.join("config.json"), "{}").unwrap();
}

/// A cargo project with no dependency (so no network), at `version`,
/// with its lock file.
fn project(dir: &Path, version: &str) {
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        format!("[package]\nname = \"app\"\nversion = \"{version}\"\nedition = \"2021\"\n"),
    )
    .unwrap();
    fs::write(dir.join("src/main.rs"), "fn main() { println!(\"hi\"); }\n").unwrap();
    let out = Command::new(toolchain_bin().join("cargo"))
        .args(["generate-lockfile", "--offline"])
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn lock_key(dir: &Path) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(fs::read(dir.join("Cargo.lock")).unwrap());
    hash.iter().map(|b| format!("{b:02x}")).collect::<String>()[..16].to_string()
}

struct Ran {
    output: Output,
}

impl Ran {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    fn log(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.output.status.code(),
            self.stdout(),
            self.stderr()
        )
    }
    fn assert_ok(&self) -> &Self {
        assert!(self.output.status.success(), "{}", self.log());
        self
    }
}

/// Runs `script` with bash as CI runs a script step, in the runner's
/// workspace, with nothing of this process's environment but `env`.
fn bash(runner: &Runner, script: &str, env: &BTreeMap<String, String>) -> Ran {
    let output = Command::new("/bin/bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .current_dir(runner.workspace())
        .env_clear()
        .env("PATH", &runner.path)
        .env("HOME", &runner.home)
        .envs(env)
        .output()
        .expect("bash runs");
    Ran { output }
}

fn tags(runner: &Runner, repo: &str) -> Vec<String> {
    let out = Command::new(regcache_bin().join("regcache"))
        .args(["ls", "--json", repo])
        .env("HOME", &runner.home)
        .env("PATH", &runner.path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut tags: Vec<String> = v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap().to_string())
        .collect();
    tags.sort();
    tags
}

fn owned(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ---- GitHub Actions

/// What a workflow job did: each action step's result by its id (or
/// its `uses:`), and every `run:` step's output.
struct Job {
    actions: BTreeMap<String, Step>,
    runs: Vec<Ran>,
    posts: Vec<Step>,
}

/// `${{ env.NAME }}` from `env`; any other expression is not something
/// these recipes may use in a step this harness runs.
fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("unclosed ${{") + start;
        let expr = rest[start + 3..end].trim();
        let name = expr
            .strip_prefix("env.")
            .unwrap_or_else(|| panic!("unsupported expression ${{{{ {expr} }}}}"));
        out.push_str(
            env.get(name)
                .unwrap_or_else(|| panic!("env.{name} is not set")),
        );
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs job `job` of `workflow` on `runner`: `github` are the variables the
/// runner sets (`GITHUB_REF_NAME`…), `overrides` replace workflow `env:`
/// values (the registry). Post steps run at the end, last first.
fn run_workflow(
    workflow: &str,
    job: &str,
    runner: &Runner,
    github: &[(&str, &str)],
    overrides: &[(&str, &str)],
) -> Job {
    let doc = Yaml::parse(workflow);
    let mut env = string_map(&doc["env"]);
    env.extend(owned(overrides));
    let job_doc = &doc["jobs"][job];
    assert!(job_doc.is_object(), "no job {job}");
    env.extend(string_map(&job_doc["env"]));
    let github_env_file = runner.tmp.path().join("github-env");
    fs::write(&github_env_file, "").unwrap();
    let mut base = owned(github);
    base.insert("GITHUB_ACTIONS".into(), "true".into());
    base.insert("CI".into(), "true".into());
    base.insert(
        "RUNNER_TEMP".into(),
        runner.tmp.path().join("temp").display().to_string(),
    );
    base.insert(
        "GITHUB_WORKSPACE".into(),
        runner.workspace().display().to_string(),
    );
    base.insert("GITHUB_ENV".into(), github_env_file.display().to_string());

    let mut result = Job {
        actions: BTreeMap::new(),
        runs: Vec::new(),
        posts: Vec::new(),
    };
    // The main action's post steps: its inputs, and its step's id.
    let mut posts: Vec<(Vec<(String, String)>, String)> = Vec::new();
    for step in job_doc["steps"].as_array().expect("steps") {
        assert!(step.get("if").is_none(), "`if:` is not run here: {step}");
        let mut step_env = env.clone();
        step_env.extend(string_map(&step["env"]));
        if let Some(uses) = step["uses"].as_str() {
            if uses.starts_with("actions/checkout@") {
                continue;
            }
            if uses.starts_with("docker/login-action@") {
                assert_eq!(step["with"]["registry"], "${{ env.REGISTRY }}");
                continue;
            }
            let (action, version) = uses.split_once('@').expect("a pinned action");
            assert!(version.starts_with('v'), "{uses}");
            let dir = match action {
                "regcache/regcache" => "",
                "regcache/regcache/restore" => "restore",
                "regcache/regcache/save" => "save",
                other => panic!("this harness does not run {other}"),
            };
            let inputs: Vec<(String, String)> = string_map(&step["with"])
                .into_iter()
                .map(|(k, v)| (k, expand(&v, &step_env)))
                .collect();
            let borrowed: Vec<(&str, &str)> = inputs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let extra: Vec<(&str, &str)> =
                base.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let ran = runner.step(dir, "main", &borrowed, &no_state(), &extra);
            assert!(ran.success(), "{uses}: {}", ran.log());
            let id = step["id"].as_str().unwrap_or(uses).to_string();
            if dir.is_empty() {
                posts.push((inputs.clone(), id.clone()));
            }
            result.actions.insert(id, ran);
            continue;
        }
        let script = step["run"].as_str().expect("a step runs or uses something");
        let mut all = base.clone();
        all.extend(step_env);
        let ran = bash(runner, script, &all);
        ran.assert_ok();
        result.runs.push(ran);
        // What the step appended to GITHUB_ENV is in every later step's env.
        for line in fs::read_to_string(&github_env_file).unwrap().lines() {
            let (k, v) = line.split_once('=').expect("KEY=VALUE in GITHUB_ENV");
            env.insert(k.to_string(), v.to_string());
        }
    }
    for (inputs, id) in posts.into_iter().rev() {
        let state = result.actions[&id].state.clone();
        let borrowed: Vec<(&str, &str)> = inputs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let extra: Vec<(&str, &str)> = base.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let ran = runner.step("", "post", &borrowed, &state, &extra);
        assert!(ran.success(), "post: {}", ran.log());
        result.posts.push(ran);
    }
    result
}

fn workflow_header_checks(workflow: &str, write: bool) {
    let doc = Yaml::parse(workflow);
    let packages = doc["permissions"]["packages"].as_str();
    assert_eq!(packages, Some(if write { "write" } else { "read" }));
}

/// Push on main makes main's cache; the first job on a branch whose name
/// is no valid tag starts from it and saves the branch's own, which the
/// next job on that branch restores.
#[test]
fn recipe_github_action() {
    let workflow = recipe("github-action");
    workflow_header_checks(&workflow, true);
    let registry = TestRegistry::start(RegistryOptions::default());
    let host = registry.host();
    let repo = format!("{host}/acme/app/cache");
    let github = |branch: &'static str| {
        vec![
            ("GITHUB_REPOSITORY", "Acme/App"),
            ("GITHUB_REF_NAME", branch),
            ("GITHUB_EVENT_NAME", "push"),
        ]
    };

    let main = machine(Vec::new());
    project(&main.workspace(), "0.1.0");
    cargo_home(&main);
    let job = run_workflow(
        &workflow,
        "build",
        &main,
        &github("main"),
        &[("REGISTRY", &host)],
    );
    assert_eq!(job.actions["cache"].output("cache-hit"), "false");
    assert_eq!(job.posts.len(), 1);
    assert_eq!(tags(&main, &repo), ["cache-main"]);

    let branch = next_machine(&main);
    project(&branch.workspace(), "0.1.0");
    let job = run_workflow(
        &workflow,
        "build",
        &branch,
        &github("feature/login"),
        &[("REGISTRY", &host)],
    );
    let cache = &job.actions["cache"];
    assert_eq!(cache.output("cache-hit"), "true", "{}", cache.log());
    let home_registry = branch.home.join(".cargo/registry");
    assert_eq!(
        cache.matched(),
        json!({
            "target": format!("{repo}:cache-main"),
            home_registry.to_str().unwrap(): format!("{repo}:cache-main"),
        })
    );
    assert_eq!(tags(&branch, &repo), ["cache-feature-login", "cache-main"]);

    let again = next_machine(&branch);
    project(&again.workspace(), "0.1.0");
    let job = run_workflow(
        &workflow,
        "build",
        &again,
        &github("feature/login"),
        &[("REGISTRY", &host)],
    );
    assert_eq!(
        job.actions["cache"].matched()["target"],
        json!(format!("{repo}:cache-feature-login"))
    );
    assert!(again.workspace().join("target/debug/app").is_file());
}

#[test]
fn recipe_github_shell() {
    let workflow = recipe("github-shell");
    workflow_header_checks(&workflow, true);
    let registry = TestRegistry::start(RegistryOptions::default());
    let host = registry.host();
    let repo = format!("{host}/acme/app/cache");
    let github = |branch: &'static str| {
        vec![
            ("GITHUB_REPOSITORY", "acme/app"),
            ("GITHUB_REF_NAME", branch),
        ]
    };

    let main = machine(Vec::new());
    project(&main.workspace(), "0.1.0");
    let job = run_workflow(
        &workflow,
        "build",
        &main,
        &github("main"),
        &[("REGISTRY", &host)],
    );
    // regcache is on PATH: the install step installs nothing.
    assert!(
        !job.runs[0].log().contains("Installing"),
        "{}",
        job.runs[0].log()
    );
    assert_eq!(tags(&main, &repo), ["cache-main"]);

    let branch = machine(Vec::new());
    project(&branch.workspace(), "0.1.0");
    let job = run_workflow(
        &workflow,
        "build",
        &branch,
        &github("fix/#12"),
        &[("REGISTRY", &host)],
    );
    assert!(
        job.runs[1]
            .stderr()
            .contains(&format!("from {repo}:cache-main")),
        "{}",
        job.runs[1].log()
    );
    assert_eq!(tags(&branch, &repo), ["cache-fix--12", "cache-main"]);
}

/// A fork's pull request restores the base's cache and writes nothing.
#[test]
fn recipe_github_fork_pr() {
    let workflow = recipe("github-fork-pr");
    workflow_header_checks(&workflow, false);
    let doc = Yaml::parse(&workflow);
    assert_eq!(doc["on"], "pull_request");
    let registry = TestRegistry::start(RegistryOptions::default());
    let host = registry.host();
    let repo = format!("{host}/acme/app/cache");
    let seed = machine(Vec::new());
    project(&seed.workspace(), "0.1.0");
    bash(&seed, "cargo build --locked", &BTreeMap::new()).assert_ok();
    regcache(&seed.workspace())
        .args([
            "save",
            "--cache-to",
            &format!("{repo}:cache-main"),
            "target",
        ])
        .assert()
        .success();

    let pr = machine(Vec::new());
    project(&pr.workspace(), "0.1.0");
    let job = run_workflow(
        &workflow,
        "build",
        &pr,
        &[
            ("GITHUB_REPOSITORY", "acme/app"),
            ("GITHUB_REF_NAME", "42/merge"),
            ("GITHUB_HEAD_REF", "patch-1"),
            ("GITHUB_EVENT_NAME", "pull_request"),
        ],
        &[("REGISTRY", &host)],
    );
    let restore = job.actions.values().next().expect("the restore step");
    assert_eq!(restore.output("cache-hit"), "true", "{}", restore.log());
    assert!(job.posts.is_empty());
    assert_eq!(tags(&pr, &repo), ["cache-main"]);
}

// ---- GitLab CI

/// A registry that takes `user` / `password` only (htpasswd).
fn registry_with_login(user: &str, password: &str) -> (TestRegistry, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash_with_result(password, 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let htpasswd = dir.path().join("htpasswd");
    fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
    let registry = TestRegistry::start(RegistryOptions {
        extra_config: Some(format!(
            "auth:\n  htpasswd:\n    realm: recipes\n    path: {}\n",
            htpasswd.display()
        )),
        ..RegistryOptions::default()
    });
    (registry, dir)
}

/// The job as GitLab runs it: its variables, then before_script and
/// script, each line failing the job.
fn gitlab_script(yaml: &str, job: &str) -> String {
    let doc = Yaml::parse(yaml);
    let job = &doc[job];
    let mut script = String::new();
    for (k, v) in string_map(&job["variables"]) {
        assert!(!v.contains('"'), "{v}");
        script.push_str(&format!("export {k}=\"{v}\"\n"));
    }
    for part in ["before_script", "script"] {
        for line in job[part].as_array().expect(part) {
            script.push_str(line.as_str().unwrap());
            script.push('\n');
        }
    }
    script
}

#[test]
fn recipe_gitlab() {
    let yaml = recipe("gitlab");
    let script = gitlab_script(&yaml, "build");
    let token = "glcbt-64_job-token";
    let (registry, _auth) = registry_with_login("gitlab-ci-token", token);
    let host = registry.host();
    let image = format!("{host}/group/project");
    let job = |branch: &str| {
        let runner = machine(Vec::new());
        project(&runner.workspace(), "0.1.0");
        let vars = owned(&[
            ("CI_REGISTRY", &host),
            ("CI_REGISTRY_IMAGE", &image),
            ("CI_JOB_TOKEN", token),
            ("CI_COMMIT_REF_NAME", branch),
            ("CI_PROJECT_DIR", runner.workspace().to_str().unwrap()),
        ]);
        let ran = bash(&runner, &script, &vars);
        ran.assert_ok();
        (runner, ran)
    };
    let (main, _) = job("main");
    assert_eq!(tags(&main, &format!("{image}/cache")), ["cache-main"]);
    let (branch, ran) = job("feature/gl");
    assert!(
        ran.stderr()
            .contains(&format!("from {image}/cache:cache-main")),
        "{}",
        ran.log()
    );
    assert_eq!(
        tags(&branch, &format!("{image}/cache")),
        ["cache-feature-gl", "cache-main"]
    );
    // The login is what let it in.
    let anonymous = tempfile::tempdir().unwrap();
    let out = Command::new(regcache_bin().join("regcache"))
        .args(["inspect", &format!("{image}/cache:cache-main")])
        .env("HOME", anonymous.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
}

// ---- Shell recipes

#[test]
fn recipe_ecr() {
    let script = recipe("ecr");
    let (registry, _auth) = registry_with_login("AWS", "ecr-password-from-sts");
    let host = registry.host();
    // Amazon's helper, as docker's credential-helper protocol runs it:
    // `get`, the server on stdin, JSON out.
    let helpers = tempfile::tempdir().unwrap();
    let calls = helpers.path().join("calls");
    let helper = helpers.path().join("docker-credential-ecr-login");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\necho \"$server\" >> {calls}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"AWS\",\"Secret\":\"ecr-password-from-sts\"}}' \"$server\"\n",
            calls = calls.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();

    let runner = machine(vec![helpers.path().to_path_buf()]);
    project(&runner.workspace(), "0.1.0");
    let vars = owned(&[("REGISTRY", &host), ("BRANCH", "release/1.2")]);
    bash(&runner, &script, &vars).assert_ok();
    assert_eq!(tags(&runner, &format!("{host}/app")), ["cache-release-1.2"]);
    let asked = fs::read_to_string(&calls).unwrap();
    assert!(asked.lines().all(|l| l.contains(&host)), "{asked}");
    assert!(!asked.is_empty());
}

/// The exact key first, then the branch's newest, then main's newest.
#[test]
fn recipe_lockfile_key() {
    let script = recipe("lockfile-key");
    let registry = TestRegistry::start(RegistryOptions::default());
    let host = registry.host();
    let repo = format!("{host}/app/cache");
    let job = |branch: &str, version: &str| {
        let runner = machine(Vec::new());
        project(&runner.workspace(), version);
        let key = lock_key(&runner.workspace());
        let ran = bash(
            &runner,
            &script,
            &owned(&[("REGISTRY", &host), ("BRANCH", branch)]),
        );
        ran.assert_ok();
        (runner, ran, key)
    };
    let (_, _, l1) = job("main", "0.1.0");
    let (_, ran, _) = job("feature/x", "0.1.0");
    assert!(
        ran.stderr().contains(&format!("from {repo}:cache-{l1},")),
        "{}",
        ran.log()
    );
    let (_, ran, l2) = job("feature/x", "0.2.0");
    assert_ne!(l1, l2);
    assert!(
        ran.stderr()
            .contains(&format!("from {repo}:cache-feature-x-{l1} (")),
        "{}",
        ran.log()
    );
    let (runner, ran, l3) = job("feature/y", "0.3.0");
    assert!(
        ran.stderr()
            .contains(&format!("from {repo}:cache-main-{l1} (")),
        "{}",
        ran.log()
    );
    let mut expected: Vec<String> = [
        format!("cache-{l1}"),
        format!("cache-{l2}"),
        format!("cache-{l3}"),
        format!("cache-main-{l1}"),
        format!("cache-feature-x-{l1}"),
        format!("cache-feature-x-{l2}"),
        format!("cache-feature-y-{l3}"),
    ]
    .into();
    expected.sort();
    assert_eq!(tags(&runner, &repo), expected);
}

#[test]
fn recipe_prune_schedule() {
    let workflow = recipe("prune-schedule");
    workflow_header_checks(&workflow, true);
    let doc = Yaml::parse(&workflow);
    assert!(doc["on"]["schedule"][0]["cron"].is_string());
    let registry = TestRegistry::start(RegistryOptions::default());
    let host = registry.host();
    let repo = format!("{host}/acme/app/cache");
    let seed = tempfile::tempdir().unwrap();
    fs::create_dir_all(seed.path().join("target")).unwrap();
    let save = |tag: &str| {
        regcache(seed.path())
            .args(["save", "--cache-to", &format!("{repo}:{tag}"), "target"])
            .assert()
            .success();
    };
    let mut fresh: Vec<String> = (1..=6).map(|i| format!("cache-pr-{i}")).collect();
    for tag in &fresh {
        save(tag);
    }
    for (tag, days) in [("cache-main", 40), ("cache-old-1", 20), ("cache-old-2", 30)] {
        save(tag);
        let r = format!("type=registry,ref={repo}:{tag}");
        backdate(&r, &r, days * DAY);
    }
    save("release-build");

    let runner = machine(Vec::new());
    let job = run_workflow(
        &workflow,
        "prune",
        &runner,
        &[("GITHUB_REPOSITORY", "Acme/App")],
        &[("REGISTRY", &host)],
    );
    // Old ones go unless excluded; the newest five stay, and so does the
    // sixth, for being younger than two weeks.
    fresh.extend(["cache-main".into(), "release-build".into()]);
    fresh.sort();
    assert_eq!(tags(&runner, &repo), fresh);
    assert!(
        job.runs[0].stdout().contains("cache-pr-6"),
        "{}",
        job.runs[0].log()
    );
}

#[test]
fn recipe_laptop() {
    let script = recipe("laptop");
    let registry = TestRegistry::start(RegistryOptions::default());
    let host = registry.host();
    let repo = format!("{host}/app/cache");
    let ci = machine(Vec::new());
    project(&ci.workspace(), "0.1.0");
    bash(&ci, "cargo build --locked", &BTreeMap::new()).assert_ok();
    regcache(&ci.workspace())
        .args([
            "save",
            "--cache-to",
            &format!("{repo}:cache-main"),
            "target",
        ])
        .assert()
        .success();

    let laptop = machine(Vec::new());
    project(&laptop.workspace(), "0.1.0");
    bash(&laptop, "git init -q -b feature/my-idea", &BTreeMap::new()).assert_ok();
    let ran = bash(&laptop, &script, &owned(&[("REGISTRY", &host)]));
    ran.assert_ok();
    assert!(ran.stdout().contains("cache-main"), "{}", ran.log());
    assert!(
        ran.stderr().contains(&format!("from {repo}:cache-main")),
        "{}",
        ran.log()
    );
    assert!(
        ran.stderr().contains("cache-feature-my-idea"),
        "{}",
        ran.log()
    );
}
