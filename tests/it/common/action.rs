//! Runs the GitHub Action's scripts as the runner does: `node` on a
//! script with the environment GitHub gives an action (every declared
//! input as `INPUT_<NAME>`, defaults filled in; `GITHUB_OUTPUT` and
//! `GITHUB_STATE` files; `STATE_*` for a post step; `RUNNER_TEMP`;
//! `GITHUB_ACTION_PATH`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub fn node() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("node"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("node is not on PATH: the action's tests need Node 20 (`make test` installs Debian's nodejs)")
    })
}

/// The subset of YAML the action files use: top-level keys, and the
/// mappings under `inputs` (name → default) and `runs` (key → value).
#[derive(Debug, Default)]
pub struct ActionYml {
    pub inputs: BTreeMap<String, String>,
    pub outputs: Vec<String>,
    pub runs: BTreeMap<String, String>,
}

pub fn unquote(value: &str) -> String {
    let v = value.trim();
    if v.len() >= 2
        && ((v.starts_with('\'') && v.ends_with('\'')) || (v.starts_with('"') && v.ends_with('"')))
    {
        return v[1..v.len() - 1].to_string();
    }
    v.to_string()
}

pub fn read_yml(action_dir: &Path) -> ActionYml {
    let text = fs::read_to_string(action_dir.join("action.yml")).expect("action.yml");
    let mut yml = ActionYml::default();
    let (mut section, mut name) = (String::new(), String::new());
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (key, value) = trimmed.split_once(':').unwrap_or((trimmed, ""));
        match indent {
            0 => section = key.to_string(),
            2 if section == "inputs" => {
                name = key.to_string();
                yml.inputs.insert(name.clone(), String::new());
            }
            2 if section == "outputs" => yml.outputs.push(key.to_string()),
            2 if section == "runs" => {
                yml.runs.insert(key.to_string(), unquote(value));
            }
            4 if section == "inputs" && key == "default" => {
                yml.inputs.insert(name.clone(), unquote(value));
            }
            _ => {}
        }
    }
    yml
}

/// One step's result: its process output, and what it wrote to
/// `GITHUB_OUTPUT` and `GITHUB_STATE`.
pub struct Step {
    pub output: Output,
    pub outputs: BTreeMap<String, String>,
    pub state: BTreeMap<String, String>,
}

impl Step {
    pub fn success(&self) -> bool {
        self.output.status.success()
    }
    pub fn log(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.output.status.code(),
            String::from_utf8_lossy(&self.output.stdout),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }
    pub fn output(&self, name: &str) -> &str {
        self.outputs
            .get(name)
            .unwrap_or_else(|| panic!("no output {name}:\n{}", self.log()))
    }
    pub fn matched(&self) -> serde_json::Value {
        serde_json::from_str(self.output("matched")).expect("matched is JSON")
    }
}

/// `name<<DELIM` … `DELIM` records, as the runner reads them.
pub fn parse_command_file(path: &Path) -> BTreeMap<String, String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut map = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let (name, delimiter) = line
            .split_once("<<")
            .unwrap_or_else(|| panic!("not a heredoc record: {line:?} in {text:?}"));
        let mut value = Vec::new();
        for l in lines.by_ref() {
            if l == delimiter {
                break;
            }
            value.push(l);
        }
        map.insert(name.to_string(), value.join("\n"));
    }
    map
}

/// A job's runner: a workspace, a home, `RUNNER_TEMP`, and the PATH the
/// steps see.
pub struct Runner {
    pub tmp: tempfile::TempDir,
    pub path: String,
    /// Real runners give every job the same `$HOME` (/home/runner).
    pub home: PathBuf,
    pub steps: std::cell::Cell<usize>,
}

impl Runner {
    /// A runner whose PATH has node and the built regcache.
    pub fn new() -> Runner {
        let bin = Path::new(env!("CARGO_BIN_EXE_regcache"))
            .parent()
            .expect("bin dir")
            .to_path_buf();
        Runner::with_path(vec![bin])
    }

    pub fn with_path(mut dirs: Vec<PathBuf>) -> Runner {
        let node_dir = node().parent().expect("node's dir").to_path_buf();
        dirs.push(node_dir);
        let tmp = tempfile::tempdir().unwrap();
        for d in ["work", "home", "temp"] {
            fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        let path = std::env::join_paths(dirs).unwrap();
        let home = tmp.path().join("home");
        Runner {
            tmp,
            path: path.to_string_lossy().into_owned(),
            home,
            steps: Default::default(),
        }
    }

    /// The same runner image as `other`: the same `$HOME` path (emptied).
    pub fn like(other: &Runner) -> Runner {
        let mut runner = Runner::new();
        fs::remove_dir_all(&other.home).unwrap();
        fs::create_dir_all(&other.home).unwrap();
        runner.home = other.home.clone();
        runner
    }

    pub fn workspace(&self) -> PathBuf {
        self.tmp.path().join("work")
    }

    /// Runs `script` (`main` or `post` of `runs:`) of the action in
    /// `action` (`""`, `"restore"`, `"save"`) as the runner would.
    pub fn step(
        &self,
        action: &str,
        script: &str,
        inputs: &[(&str, &str)],
        state: &BTreeMap<String, String>,
        env: &[(&str, &str)],
    ) -> Step {
        let action_dir = Path::new(ROOT).join(action);
        let yml = read_yml(&action_dir);
        let file = yml
            .runs
            .get(script)
            .unwrap_or_else(|| panic!("{action}/action.yml has no runs.{script}"));
        let mut values = yml.inputs.clone();
        for (name, value) in inputs {
            assert!(
                values.contains_key(*name),
                "{action}/action.yml declares no input {name}"
            );
            values.insert(name.to_string(), value.to_string());
        }
        let n = self.steps.get();
        self.steps.set(n + 1);
        let (out_file, state_file) = (
            self.tmp.path().join(format!("output-{n}")),
            self.tmp.path().join(format!("state-{n}")),
        );
        fs::write(&out_file, "").unwrap();
        fs::write(&state_file, "").unwrap();
        let mut cmd = Command::new(node());
        cmd.arg(action_dir.join(file))
            .current_dir(self.workspace())
            .env_clear()
            .env("PATH", &self.path)
            .env("HOME", &self.home)
            .env("RUNNER_TEMP", self.tmp.path().join("temp"))
            .env("GITHUB_ACTION_PATH", &action_dir)
            .env("GITHUB_WORKSPACE", self.workspace())
            .env("GITHUB_OUTPUT", &out_file)
            .env("GITHUB_STATE", &state_file)
            .env("GITHUB_ACTIONS", "true")
            .env("CI", "true")
            .env("NO_COLOR", "1");
        for (name, value) in values {
            cmd.env(
                format!("INPUT_{}", name.replace(' ', "_").to_uppercase()),
                value,
            );
        }
        for (name, value) in state {
            cmd.env(format!("STATE_{name}"), value);
        }
        for (name, value) in env {
            cmd.env(name, value);
        }
        let output = cmd.output().expect("run node");
        Step {
            output,
            outputs: parse_command_file(&out_file),
            state: parse_command_file(&state_file),
        }
    }
}

pub fn no_state() -> BTreeMap<String, String> {
    BTreeMap::new()
}
