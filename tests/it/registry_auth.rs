//! Credentials as docker finds them, against Distribution with htpasswd
//! basic auth: a docker config file's `auths`, a credential helper on
//! PATH, none at all, wrong ones, and no secret in any log line.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::registry::{PASSWORD, RegistryOptions, TestRegistry, USER};
use crate::common::{regcache, snapshot};
use base64::Engine as _;

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

struct Setup {
    registry: TestRegistry,
    tmp: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let registry = TestRegistry::start(RegistryOptions {
            htpasswd: true,
            ..Default::default()
        });
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("work/tree/sub")).unwrap();
        fs::write(tmp.path().join("work/tree/sub/file"), "cached content").unwrap();
        fs::create_dir_all(tmp.path().join("home")).unwrap();
        fs::create_dir_all(tmp.path().join("bin")).unwrap();
        Setup { registry, tmp }
    }

    fn reference(&self, repo: &str) -> String {
        format!("{}/{repo}:cache", self.registry.host())
    }

    /// A docker config directory holding `config`.
    fn docker_config(&self, name: &str, config: &serde_json::Value) -> PathBuf {
        let dir = self.tmp.path().join(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("config.json"), config.to_string()).unwrap();
        dir
    }

    /// The binary with HOME and DOCKER_CONFIG pointing into the test's
    /// directory, never at the user's own docker login.
    fn regcache(&self, cwd: &Path, docker_config: &Path) -> assert_cmd::Command {
        let mut cmd = regcache(cwd);
        let path = format!(
            "{}:{}",
            self.tmp.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.env("HOME", self.tmp.path().join("home"))
            .env("DOCKER_CONFIG", docker_config)
            .env("PATH", path);
        cmd
    }

    fn save(&self, docker_config: &Path, repo: &str) -> std::process::Output {
        self.regcache(&self.tmp.path().join("work"), docker_config)
            .args([
                "save",
                "--cache-to",
                &format!("type=registry,ref={}", self.reference(repo)),
                "tree",
            ])
            .output()
            .unwrap()
    }

    fn restore(&self, docker_config: &Path, repo: &str, into: &str) -> std::process::Output {
        let dir = self.tmp.path().join(into);
        fs::create_dir_all(&dir).unwrap();
        self.regcache(&dir, docker_config)
            .args(["restore", "--cache-from", &self.reference(repo)])
            .output()
            .unwrap()
    }

    fn assert_restored(&self, into: &str) {
        let (expected, _) = snapshot(&self.tmp.path().join("work/tree"));
        let (actual, _) = snapshot(&self.tmp.path().join(into).join("tree"));
        assert_eq!(expected, actual, "restored tree in {into}");
    }

    /// A `docker-credential-NAME` script first on PATH that logs how it was
    /// called and, if `answers`, has credentials for the registry's host
    /// (and for nothing else).
    fn helper(&self, name: &str, answers: bool) -> PathBuf {
        let log = self.tmp.path().join(format!("{name}.log"));
        let script = format!(
            r#"#!/bin/sh
read -r server || true
echo "$1 $server" >> "{log}"
if [ "$1" = get ] && [ "$server" = "{host}" ] && {answers}; then
  printf '{{"ServerURL":"%s","Username":"{USER}","Secret":"{PASSWORD}"}}\n' "$server"
else
  echo "credentials not found in native keychain"
  exit 1
fi
"#,
            log = log.display(),
            answers = if answers { "true" } else { "false" },
            host = self.registry.host(),
        );
        let path = self
            .tmp
            .path()
            .join("bin")
            .join(format!("docker-credential-{name}"));
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        log
    }
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_ok(output: &std::process::Output, what: &str) {
    assert!(output.status.success(), "{what}: {}", stderr(output));
}

/// Neither the password nor its base64 forms appear in `text`.
fn assert_no_secret(text: &str) {
    for secret in [
        PASSWORD.to_string(),
        b64(&format!("{USER}:{PASSWORD}")),
        b64(PASSWORD),
    ] {
        assert!(!text.contains(&secret), "a secret leaked: {text}");
    }
}

#[test]
fn credentials_from_the_docker_config_file() {
    let setup = Setup::new();
    let host = setup.registry.host();
    let forms = [
        (
            "auth-field",
            serde_json::json!({"auths": {host.clone(): {"auth": b64(&format!("{USER}:{PASSWORD}"))}}}),
        ),
        (
            "user-password",
            serde_json::json!({"auths": {format!("http://{host}"): {"username": USER, "password": PASSWORD}}}),
        ),
    ];
    for (name, config) in forms {
        let dir = setup.docker_config(name, &config);
        let saved = setup.save(&dir, name);
        assert_ok(&saved, name);
        let restored = setup.restore(&dir, name, &format!("out-{name}"));
        assert_ok(&restored, name);
        setup.assert_restored(&format!("out-{name}"));
    }
}

#[test]
fn credentials_from_a_credential_helper() {
    let setup = Setup::new();
    let log = setup.helper("test", true);
    // credHelpers for this host.
    let helpers = setup.docker_config(
        "helpers",
        &serde_json::json!({"credHelpers": {setup.registry.host(): "test"}}),
    );
    assert_ok(&setup.save(&helpers, "by-helper"), "credHelpers");
    assert_ok(
        &setup.restore(&helpers, "by-helper", "out-helper"),
        "credHelpers",
    );
    setup.assert_restored("out-helper");
    // credsStore, which also wins over an auths entry with a wrong password.
    let store = setup.docker_config(
        "store",
        &serde_json::json!({
            "credsStore": "test",
            "auths": {setup.registry.host(): {"auth": b64(&format!("{USER}:wrong"))}},
        }),
    );
    assert_ok(&setup.save(&store, "by-store"), "credsStore");
    let calls = fs::read_to_string(&log).unwrap();
    assert!(
        calls
            .lines()
            .all(|line| line == format!("get {}", setup.registry.host())),
        "the helper is run as `get` with the server on stdin: {calls}"
    );
    assert!(!calls.is_empty());
}

#[test]
fn no_credentials_is_a_clear_error_for_save_and_a_warning_for_restore() {
    let setup = Setup::new();
    let empty = setup.docker_config("empty", &serde_json::json!({}));
    let saved = setup.save(&empty, "nocreds");
    assert_eq!(saved.status.code(), Some(1), "{}", stderr(&saved));
    let text = stderr(&saved);
    assert!(text.contains("HTTP 401 Unauthorized"), "{text}");
    assert!(
        text.contains(&format!("docker login {}", setup.registry.host())),
        "{text}"
    );

    // A helper that has nothing for the host means anonymous, the same error.
    setup.helper("empty", false);
    let nothing = setup.docker_config("nothing", &serde_json::json!({"credsStore": "empty"}));
    let saved = setup.save(&nothing, "nocreds");
    assert_eq!(saved.status.code(), Some(1));
    assert!(
        stderr(&saved).contains("docker-credential-empty"),
        "{}",
        stderr(&saved)
    );

    // Importing is tolerant: a warning naming the ref and the reason.
    let restored = setup.restore(&empty, "nocreds", "out-nocreds");
    assert!(restored.status.success(), "{}", stderr(&restored));
    let text = stderr(&restored);
    assert!(text.contains(&setup.reference("nocreds")), "{text}");
    assert!(text.contains("authentication required"), "{text}");
    assert!(text.contains("docker login"), "{text}");
}

#[test]
fn refused_credentials_say_where_they_came_from_and_never_show() {
    let setup = Setup::new();
    let wrong = setup.docker_config(
        "wrong",
        &serde_json::json!({"auths": {setup.registry.host(): {"username": USER, "password": "not-the-password"}}}),
    );
    let saved = setup.save(&wrong, "wrong");
    assert_eq!(saved.status.code(), Some(1));
    let text = stderr(&saved);
    assert!(text.contains("were refused"), "{text}");
    assert!(text.contains("wrong/config.json"), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");

    // The most verbose logging of a whole save and restore holds no secret.
    let right = setup.docker_config(
        "right",
        &serde_json::json!({"auths": {setup.registry.host(): {"auth": b64(&format!("{USER}:{PASSWORD}"))}}}),
    );
    let saved = setup
        .regcache(&setup.tmp.path().join("work"), &right)
        .env("RUST_LOG", "trace")
        .args([
            "-vv",
            "save",
            "--cache-to",
            &format!("type=registry,ref={}", setup.reference("logged")),
            "tree",
        ])
        .output()
        .unwrap();
    assert_ok(&saved, "save at trace");
    let log = stderr(&saved);
    assert!(log.contains("trace:"), "logging was on: {log}");
    assert_no_secret(&log);
    assert_no_secret(&String::from_utf8_lossy(&saved.stdout));
}
