//! Credentials found where docker keeps them: `$DOCKER_CONFIG/config.json`
//! (else `~/.docker/config.json`), its `credHelpers`, `credsStore` and
//! `auths`, and credential helpers run as `docker-credential-NAME get`.
//!
//! Nothing here ever logs or formats a secret: [`Credentials`] prints
//! redacted, and errors name the file or helper, never what it returned.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;

use crate::reference::DOCKER_HUB;

/// The key docker stores Docker Hub credentials under.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";
/// Host names docker folds into Docker Hub when matching `auths` keys.
const DOCKER_HUB_HOSTS: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];
/// What a helper prints when it has nothing for the server.
const NOT_FOUND: &str = "credentials not found";
/// A helper that hangs (a locked keychain waiting for a prompt nobody sees)
/// must not hang the cache step.
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Sent as HTTP basic auth, to the registry or to its token server.
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (`identitytoken`, or a helper's `<token>`
    /// user), exchanged at the token server.
    IdentityToken(String),
    /// A bearer token to send as it is (`registrytoken`).
    RegistryToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => {
                write!(
                    f,
                    "Basic {{ username: {username:?}, password: <redacted> }}"
                )
            }
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
            Credentials::RegistryToken(_) => f.write_str("RegistryToken(<redacted>)"),
        }
    }
}

/// Credentials and where they came from (for messages; never the secret).
#[derive(Debug, Clone)]
pub struct Found {
    pub credentials: Credentials,
    pub source: String,
}

/// The outcome of a lookup with no credentials, with where it looked.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub found: Option<Found>,
    /// e.g. `no entry for ghcr.io in /home/u/.docker/config.json`.
    pub searched: String,
}

/// Why credentials could not be looked up. Never holds a secret: a
/// malformed file is described by where it breaks, not by serde's text,
/// which can quote the value it choked on.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The docker config exists but cannot be read.
    #[error("cannot read the docker config {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The docker config is not the JSON object docker writes.
    #[error(
        "{} is not a valid docker config: {} at line {line}, column {column}",
        path.display(),
        problem_words(*problem)
    )]
    Malformed {
        path: PathBuf,
        problem: serde_json::error::Category,
        line: usize,
        column: usize,
    },
    /// An `auths` entry for the registry cannot be decoded.
    #[error("{}: auths[{key:?}]: {problem}", path.display())]
    BadEntry {
        path: PathBuf,
        key: String,
        problem: EntryProblem,
    },
    /// The credential helper the config names for the registry failed.
    #[error("{source}")]
    Helper {
        path: PathBuf,
        /// `credHelpers` or `credsStore`: where the config names it.
        from: &'static str,
        /// What the helper was asked for (its stdin).
        server: String,
        #[source]
        source: HelperError,
    },
}

fn problem_words(problem: serde_json::error::Category) -> &'static str {
    use serde_json::error::Category;
    match problem {
        Category::Syntax => "not JSON",
        Category::Eof => "the JSON ends early",
        Category::Data => "a key holds the wrong kind of value",
        Category::Io => "a read error",
    }
}

impl CredentialsError {
    /// The file itself could not be read (a local I/O failure), as opposed
    /// to credentials that are there but unusable.
    pub fn is_unreadable_file(&self) -> bool {
        matches!(self, CredentialsError::Unreadable { .. })
    }

    /// What to fix, naming the file or the helper.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            CredentialsError::Unreadable { path, .. } => format!(
                "make {} readable, or point DOCKER_CONFIG at a directory with a readable \
                 config.json",
                path.display()
            ),
            CredentialsError::Malformed { path, .. } => format!(
                "fix {} (a JSON object with \"auths\", \"credsStore\" or \"credHelpers\", \
                 as `docker login` writes it), or move it away to pull and push anonymously",
                path.display()
            ),
            CredentialsError::BadEntry { path, key, .. } => format!(
                "log in again (`docker login {}`) to rewrite the entry, or remove \
                 auths[{key:?}] from {}",
                key_host(key),
                path.display()
            ),
            CredentialsError::Helper {
                path,
                from,
                server,
                source,
            } => match source {
                HelperError::Spawn { program, source }
                    if source.kind() == io::ErrorKind::NotFound =>
                {
                    format!(
                        "install {program} on PATH, or remove it from \"{from}\" in {}",
                        path.display()
                    )
                }
                HelperError::Spawn { .. } => return None,
                HelperError::TimedOut { program, .. } => format!(
                    "{program} may be waiting for a prompt nobody sees (a locked keychain): \
                     unlock it, or remove it from \"{from}\" in {}",
                    path.display()
                ),
                HelperError::Failed { program, .. } | HelperError::Wait { program, .. } => {
                    format!(
                        "run `echo {server} | {program} get` to see what it says, or remove it \
                         from \"{from}\" in {}",
                        path.display()
                    )
                }
                HelperError::BadAnswer { program } => format!(
                    "{program} does not answer as docker's credential helpers do; remove it \
                     from \"{from}\" in {}",
                    path.display()
                ),
            },
        })
    }
}

/// The host an `auths` key names (`https://r.io/v2/` → `r.io`).
fn key_host(key: &str) -> &str {
    let stripped = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    stripped.split('/').next().unwrap_or(stripped)
}

/// What is wrong with an `auths` entry's `auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("\"auth\" is not base64")]
    NotBase64,
    #[error("\"auth\" is not UTF-8 text")]
    NotUtf8,
    #[error("\"auth\" does not decode to user:password")]
    NoColon,
}

/// A credential helper that did not give an answer. Only its first line
/// of complaint is kept, never what it printed on success.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error("cannot run credential helper {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("credential helper {program} did not answer within {seconds}s")]
    TimedOut { program: String, seconds: u64 },
    #[error("credential helper {program} failed: {source}")]
    Wait {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("credential helper {program} failed: {said}")]
    Failed { program: String, said: String },
    #[error("credential helper {program} printed something other than its JSON answer")]
    BadAnswer { program: String },
}

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: Map<String, Value>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: Map<String, Value>,
}

/// The docker config file this process would use.
pub fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".docker").join("config.json"))
}

/// The server address docker uses for a registry host in `auths` keys and
/// on a helper's stdin.
pub fn server_address(host: &str) -> &str {
    if host == DOCKER_HUB {
        DOCKER_HUB_SERVER
    } else {
        host
    }
}

/// Looks up the credentials for `host` (a registry as written in a
/// reference: `ghcr.io`, `localhost:5000`, `docker.io`).
pub async fn lookup(host: &str) -> Result<Lookup, CredentialsError> {
    let Some(path) = config_path() else {
        return Ok(Lookup {
            found: None,
            searched: "no docker config (neither DOCKER_CONFIG nor HOME is set)".into(),
        });
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Lookup {
                found: None,
                searched: format!("{} does not exist", path.display()),
            });
        }
        Err(source) => return Err(CredentialsError::Unreadable { path, source }),
    };
    let config: ConfigFile =
        serde_json::from_slice(&bytes).map_err(|err| CredentialsError::Malformed {
            path: path.clone(),
            problem: err.classify(),
            line: err.line(),
            column: err.column(),
        })?;
    lookup_in(&config, &path, host, &|helper, server| {
        Box::pin(run_helper(helper.to_string(), server.to_string()))
    })
    .await
}

type HelperFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Option<Credentials>, HelperError>> + Send + 'a>,
>;

/// The lookup order docker uses: `credHelpers[host]`, then `credsStore`,
/// then `auths`. A helper that has nothing means anonymous, as in docker:
/// the `auths` entry beside a `credsStore` holds no secret.
async fn lookup_in(
    config: &ConfigFile,
    path: &Path,
    host: &str,
    run: &(dyn for<'a> Fn(&'a str, &'a str) -> HelperFuture<'a> + Sync),
) -> Result<Lookup, CredentialsError> {
    let server = server_address(host);
    let helper = config
        .cred_helpers
        .iter()
        .find(|(key, _)| key.as_str() == server || key.as_str() == host)
        .or_else(|| {
            config
                .cred_helpers
                .iter()
                .find(|(key, _)| same_registry(key, host))
        })
        .and_then(|(_, value)| value.as_str())
        .filter(|name| !name.is_empty())
        .map(|name| (name.to_string(), "credHelpers"))
        .or_else(|| {
            config
                .creds_store
                .as_deref()
                .filter(|name| !name.is_empty())
                .map(|name| (name.to_string(), "credsStore"))
        });
    if let Some((name, from)) = helper {
        let program = format!("docker-credential-{name}");
        let credentials = run(&name, server)
            .await
            .map_err(|source| CredentialsError::Helper {
                path: path.to_path_buf(),
                from,
                server: server.to_string(),
                source,
            })?;
        return Ok(Lookup {
            found: credentials.map(|credentials| Found {
                credentials,
                source: format!("{program} ({from} in {})", path.display()),
            }),
            searched: format!(
                "{program} ({from} in {}) has none for {server}",
                path.display()
            ),
        });
    }
    let entry = auth_entry(&config.auths, host, server);
    let found = match entry {
        Some((key, value)) => parse_auth_entry(value)
            .map_err(|problem| CredentialsError::BadEntry {
                path: path.to_path_buf(),
                key: key.clone(),
                problem,
            })?
            .map(|credentials| Found {
                credentials,
                source: format!("auths[{key:?}] in {}", path.display()),
            }),
        None => None,
    };
    Ok(Lookup {
        found,
        searched: format!("no credentials for {server} in {}", path.display()),
    })
}

/// The `auths` entry for a host: the exact key first, then the URL forms
/// docker writes, then any key naming the same host.
fn auth_entry<'a>(
    auths: &'a Map<String, Value>,
    host: &str,
    server: &str,
) -> Option<(&'a String, &'a Value)> {
    let preferred = [
        server.to_string(),
        host.to_string(),
        format!("https://{host}"),
        format!("http://{host}"),
    ];
    for key in &preferred {
        if let Some(found) = auths.get_key_value(key.as_str()) {
            return Some(found);
        }
    }
    auths.iter().find(|(key, _)| same_registry(key, host))
}

/// Whether an `auths`/`credHelpers` key names `host`, as docker's
/// `ConvertToHostname` compares them: scheme and path stripped, Docker
/// Hub's several names taken as one.
fn same_registry(key: &str, host: &str) -> bool {
    let stripped = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let key_host = stripped.split('/').next().unwrap_or(stripped);
    if key_host.eq_ignore_ascii_case(host) {
        return true;
    }
    host == DOCKER_HUB
        && DOCKER_HUB_HOSTS
            .iter()
            .any(|h| key_host.eq_ignore_ascii_case(h))
}

fn non_empty(value: &Value, field: &str) -> Option<String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// One `auths` entry: `identitytoken` wins (docker exchanges it for a
/// token), then `registrytoken`, then `auth` (base64 `user:password`), then
/// `username`/`password`. `{}` (docker's marker beside a credsStore) is none.
fn parse_auth_entry(value: &Value) -> Result<Option<Credentials>, EntryProblem> {
    if let Some(token) = non_empty(value, "identitytoken") {
        return Ok(Some(Credentials::IdentityToken(token)));
    }
    if let Some(token) = non_empty(value, "registrytoken") {
        return Ok(Some(Credentials::RegistryToken(token)));
    }
    if let Some(auth) = non_empty(value, "auth") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| EntryProblem::NotBase64)?;
        let decoded = String::from_utf8(decoded).map_err(|_| EntryProblem::NotUtf8)?;
        let (username, password) = decoded.split_once(':').ok_or(EntryProblem::NoColon)?;
        return Ok(Some(Credentials::Basic {
            username: username.to_string(),
            password: password.to_string(),
        }));
    }
    match (non_empty(value, "username"), non_empty(value, "password")) {
        (Some(username), Some(password)) => Ok(Some(Credentials::Basic { username, password })),
        _ => Ok(None),
    }
}

#[derive(Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-NAME get` with the server address on stdin.
async fn run_helper(name: String, server: String) -> Result<Option<Credentials>, HelperError> {
    let program = format!("docker-credential-{name}");
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| HelperError::Spawn {
            program: program.clone(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading stdin is fine.
        let _ = stdin.write_all(server.as_bytes()).await;
        drop(stdin);
    }
    let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| HelperError::TimedOut {
            program: program.clone(),
            seconds: HELPER_TIMEOUT.as_secs(),
        })?
        .map_err(|source| HelperError::Wait {
            program: program.clone(),
            source,
        })?;
    parse_helper_output(
        &program,
        output.status.success(),
        &output.stdout,
        &output.stderr,
    )
}

fn parse_helper_output(
    program: &str,
    success: bool,
    stdout: &[u8],
    stderr: &[u8],
) -> Result<Option<Credentials>, HelperError> {
    if !success {
        let said = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_string();
        let (out, err) = (said(stdout), said(stderr));
        if out.contains(NOT_FOUND) || err.contains(NOT_FOUND) {
            return Ok(None);
        }
        // A failing helper prints its complaint, not a secret; still, only
        // its first line is shown.
        let line = [err, out]
            .into_iter()
            .find(|s| !s.is_empty())
            .and_then(|s| s.lines().next().map(str::to_string))
            .unwrap_or_else(|| "no output".into());
        return Err(HelperError::Failed {
            program: program.to_string(),
            said: line,
        });
    }
    let parsed: HelperOutput =
        serde_json::from_slice(stdout).map_err(|_| HelperError::BadAnswer {
            program: program.to_string(),
        })?;
    if parsed.secret.is_empty() {
        return Ok(None);
    }
    if parsed.username == "<token>" {
        return Ok(Some(Credentials::IdentityToken(parsed.secret)));
    }
    Ok(Some(Credentials::Basic {
        username: parsed.username,
        password: parsed.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn basic(u: &str, p: &str) -> Option<Credentials> {
        Some(Credentials::Basic {
            username: u.into(),
            password: p.into(),
        })
    }

    fn config(json: &str) -> ConfigFile {
        serde_json::from_str(json).unwrap()
    }

    /// Looks up with a fake helper runner that answers by helper name.
    fn lookup_with(json: &str, host: &str) -> Result<Lookup, CredentialsError> {
        let config = config(json);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(lookup_in(
            &config,
            Path::new("/cfg/config.json"),
            host,
            &|helper, server| {
                let answer = match helper {
                    "good" => Ok(Some(Credentials::Basic {
                        username: format!("from-helper-for-{server}"),
                        password: "pw".into(),
                    })),
                    "empty" => Ok(None),
                    _ => Err(HelperError::Spawn {
                        program: format!("docker-credential-{helper}"),
                        source: io::Error::from(io::ErrorKind::NotFound),
                    }),
                };
                Box::pin(async move { answer })
            },
        ))
    }

    fn found(json: &str, host: &str) -> Option<Credentials> {
        lookup_with(json, host)
            .unwrap()
            .found
            .map(|f| f.credentials)
    }

    #[test]
    fn auths_by_every_key_form() {
        let auth = b64("u:p:with:colons");
        for key in [
            "r.io:5000",
            "https://r.io:5000",
            "http://r.io:5000",
            "https://r.io:5000/v2/",
        ] {
            let json = format!(r#"{{"auths":{{"{key}":{{"auth":"{auth}"}}}}}}"#);
            assert_eq!(
                found(&json, "r.io:5000"),
                basic("u", "p:with:colons"),
                "{key}"
            );
        }
        let json = format!(r#"{{"auths":{{"other.io":{{"auth":"{auth}"}}}}}}"#);
        assert_eq!(found(&json, "r.io"), None);
        // A port is part of the host: r.io and r.io:5000 are not the same.
        let json = format!(r#"{{"auths":{{"r.io":{{"auth":"{auth}"}}}}}}"#);
        assert_eq!(found(&json, "r.io:5000"), None);
    }

    #[test]
    fn the_exact_key_wins_over_url_forms() {
        let json = format!(
            r#"{{"auths":{{"http://r.io":{{"auth":"{}"}},"r.io":{{"auth":"{}"}}}}}}"#,
            b64("http:x"),
            b64("exact:y")
        );
        assert_eq!(found(&json, "r.io"), basic("exact", "y"));
    }

    #[test]
    fn docker_hub_uses_the_index_url() {
        let json = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}}}}}}"#,
            b64("hub:pw")
        );
        assert_eq!(found(&json, "docker.io"), basic("hub", "pw"));
        let json = format!(
            r#"{{"auths":{{"registry-1.docker.io":{{"auth":"{}"}}}}}}"#,
            b64("hub:pw")
        );
        assert_eq!(found(&json, "docker.io"), basic("hub", "pw"));
    }

    #[test]
    fn entry_forms() {
        assert_eq!(
            found(
                r#"{"auths":{"r.io":{"username":"u","password":"p"}}}"#,
                "r.io"
            ),
            basic("u", "p")
        );
        assert_eq!(
            found(
                r#"{"auths":{"r.io":{"auth":"eDp5","identitytoken":"refresh"}}}"#,
                "r.io"
            ),
            Some(Credentials::IdentityToken("refresh".into()))
        );
        assert_eq!(
            found(r#"{"auths":{"r.io":{"registrytoken":"bearer"}}}"#, "r.io"),
            Some(Credentials::RegistryToken("bearer".into()))
        );
        assert_eq!(found(r#"{"auths":{"r.io":{}}}"#, "r.io"), None);
        assert_eq!(found(r#"{}"#, "r.io"), None);
        let bad = lookup_with(r#"{"auths":{"r.io":{"auth":"!!!"}}}"#, "r.io").unwrap_err();
        assert!(
            matches!(&bad, CredentialsError::BadEntry { key, problem: EntryProblem::NotBase64, .. } if key == "r.io"),
            "{bad:?}"
        );
        let text = bad.to_string();
        assert!(
            text.contains("auths[\"r.io\"]") && text.contains("base64"),
            "{text}"
        );
        let hint = bad.hint().expect("a hint");
        assert!(
            hint.contains("docker login r.io") && hint.contains("/cfg/config.json"),
            "{hint}"
        );
        let no_colon = lookup_with(
            &format!(r#"{{"auths":{{"r.io":{{"auth":"{}"}}}}}}"#, b64("nocolon")),
            "r.io",
        )
        .unwrap_err();
        assert!(no_colon.to_string().contains("user:password"), "{no_colon}");
    }

    #[test]
    fn cred_helpers_then_creds_store_then_auths() {
        let auths = format!(r#""auths":{{"r.io":{{"auth":"{}"}}}}"#, b64("file:pw"));
        // credHelpers for this host wins over everything.
        let json = format!(r#"{{{auths},"credsStore":"empty","credHelpers":{{"r.io":"good"}}}}"#);
        assert_eq!(found(&json, "r.io"), basic("from-helper-for-r.io", "pw"));
        // credsStore wins over auths; a helper with nothing = anonymous.
        let json = format!(r#"{{{auths},"credsStore":"empty"}}"#);
        assert_eq!(found(&json, "r.io"), None);
        let json = format!(r#"{{{auths},"credsStore":"good","credHelpers":{{"o.io":"empty"}}}}"#);
        assert_eq!(found(&json, "r.io"), basic("from-helper-for-r.io", "pw"));
        // Only auths.
        assert_eq!(found(&format!("{{{auths}}}"), "r.io"), basic("file", "pw"));
        // Docker Hub's helper is asked with the index URL.
        let json = r#"{"credHelpers":{"https://index.docker.io/v1/":"good"}}"#;
        assert_eq!(
            found(json, "docker.io"),
            basic("from-helper-for-https://index.docker.io/v1/", "pw")
        );
        // A helper that cannot run is an error naming it.
        let err = lookup_with(r#"{"credsStore":"missing"}"#, "r.io").unwrap_err();
        assert!(
            err.to_string().contains("docker-credential-missing"),
            "{err}"
        );
        let hint = err.hint().expect("a hint");
        assert!(
            hint.contains("install docker-credential-missing")
                && hint.contains("\"credsStore\" in /cfg/config.json"),
            "{hint}"
        );
    }

    #[test]
    fn helper_answers() {
        let ok = br#"{"ServerURL":"r.io","Username":"u","Secret":"s"}"#;
        assert_eq!(
            parse_helper_output("h", true, ok, b"").unwrap(),
            basic("u", "s")
        );
        let token = br#"{"ServerURL":"r.io","Username":"<token>","Secret":"refresh"}"#;
        assert_eq!(
            parse_helper_output("h", true, token, b"").unwrap(),
            Some(Credentials::IdentityToken("refresh".into()))
        );
        assert_eq!(
            parse_helper_output(
                "h",
                false,
                b"credentials not found in native keychain\n",
                b""
            )
            .unwrap(),
            None
        );
        let err = parse_helper_output("h", false, b"", b"keychain locked\nmore").unwrap_err();
        assert_eq!(
            err.to_string(),
            "credential helper h failed: keychain locked"
        );
        let garbage = parse_helper_output("h", true, b"u s", b"").unwrap_err();
        assert!(
            matches!(garbage, HelperError::BadAnswer { .. }),
            "{garbage:?}"
        );
        assert!(!garbage.to_string().contains("u s"), "{garbage}");
    }

    #[test]
    fn a_malformed_config_is_described_without_quoting_it() {
        // (No unwrap_err: ConfigFile has no Debug, it may hold secrets.)
        let err = serde_json::from_str::<ConfigFile>(r#"{"auths": "hunter2"}"#)
            .err()
            .expect("a string is no map");
        let err = CredentialsError::Malformed {
            path: PathBuf::from("/cfg/config.json"),
            problem: err.classify(),
            line: err.line(),
            column: err.column(),
        };
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(
            text,
            "/cfg/config.json is not a valid docker config: a key holds the wrong kind of \
             value at line 1, column 19"
        );
        assert!(err.hint().unwrap().contains("fix /cfg/config.json"));
        assert!(!err.is_unreadable_file());
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        for creds in [
            Credentials::Basic {
                username: "u".into(),
                password: "hunter2".into(),
            },
            Credentials::IdentityToken("hunter2".into()),
            Credentials::RegistryToken("hunter2".into()),
        ] {
            let shown = format!("{creds:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }
}
