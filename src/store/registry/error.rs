//! Registry failures as one-line messages in the registry's own words:
//! Distribution's `errors[].code/message`, the HTTP status, and the method
//! and URL (never its query, which may carry signatures).

use std::fmt;

use reqwest::{Method, Response, StatusCode, Url};
use serde::Deserialize;

use super::super::{StoreError, StoreErrorKind};
use super::credentials::CredentialsError;
use super::transport::TransportError;

/// Error bodies are read up to this size; the rest is not worth holding.
const MAX_ERROR_BODY: usize = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The registry could not be reached or the connection broke.
    Transport(Reach),
    /// The registry answered with an error status.
    Status(StatusCode),
    /// The registry answered, but not as the protocol says.
    Protocol,
    /// Credentials could not be found, read or used.
    Credentials,
    /// The docker config could not be read from disk.
    LocalFile,
    /// Nothing could be sent: the host makes no URL, or the HTTP client
    /// could not be built. Never worth a retry.
    Setup,
}

/// Why a request got no answer, as far as the error chain tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Nothing listens there.
    Refused,
    /// No answer in time.
    TimedOut,
    /// The TLS handshake failed.
    Tls,
    /// The host name does not resolve.
    NoSuchHost,
    /// Anything else: the connection broke, was reset…
    Broken,
}

/// The text of the last error in `err`'s chain.
fn innermost(err: &reqwest::Error) -> String {
    let mut last: &dyn std::error::Error = err;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

impl Reach {
    fn of(err: &reqwest::Error) -> Reach {
        if err.is_timeout() {
            return Reach::TimedOut;
        }
        let mut source: Option<&dyn std::error::Error> = Some(err);
        while let Some(cause) = source {
            if cause.downcast_ref::<rustls::Error>().is_some() {
                return Reach::Tls;
            }
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                // An io::Error's source() skips the error it wraps.
                if io
                    .get_ref()
                    .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
                {
                    return Reach::Tls;
                }
                match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => return Reach::Refused,
                    std::io::ErrorKind::TimedOut => return Reach::TimedOut,
                    _ => {}
                }
            }
            // hyper-util's resolver error has no type of its own to test,
            // and hyper-rustls may hand a handshake failure over as text.
            let text = cause.to_string();
            if text.starts_with("dns error") {
                return Reach::NoSuchHost;
            }
            if text.contains("certificate") || text.contains("handshake") {
                return Reach::Tls;
            }
            source = cause.source();
        }
        Reach::Broken
    }

    /// The words for it, where the error chain has nothing better.
    fn words(self) -> Option<&'static str> {
        match self {
            Reach::Refused => Some("connection refused"),
            Reach::TimedOut => Some("timed out"),
            Reach::NoSuchHost => Some("no such host"),
            Reach::Tls | Reach::Broken => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RegistryError {
    pub kind: ErrorKind,
    /// Distribution's error codes (`MANIFEST_UNKNOWN`, `DENIED`…), if any.
    pub codes: Vec<String>,
    pub message: String,
    /// What the user can do, when the error knows better than its kind
    /// (a broken docker config names the file to fix).
    pub hint: Option<String>,
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RegistryError {}

impl From<RegistryError> for StoreError {
    fn from(err: RegistryError) -> StoreError {
        err.into_store_error(None)
    }
}

impl RegistryError {
    /// The store error this is, its message prefixed with `location` (the
    /// ref as the user wrote it), with a hint for the kinds a user can act
    /// on.
    pub fn into_store_error(self, location: Option<&str>) -> StoreError {
        let message = match location {
            Some(location) => format!("{location}: {}", self.message),
            None => self.message,
        };
        let host = location.map(|l| l.split('/').next().unwrap_or(l).to_string());
        let host = host.as_deref().unwrap_or("the registry");
        let (kind, default_hint) = match self.kind {
            ErrorKind::Transport(Reach::Tls) => (
                StoreErrorKind::Tls,
                Some(format!(
                    "if {host} uses a private CA, point SSL_CERT_FILE at its certificate; \
                     for a test registry without TLS, add --insecure-registry {host}"
                )),
            ),
            ErrorKind::Transport(Reach::Refused) => (
                StoreErrorKind::Unreachable,
                Some(format!(
                    "is a registry running at {host}? Check the host and port of the ref"
                )),
            ),
            ErrorKind::Transport(Reach::TimedOut) => (
                StoreErrorKind::Unreachable,
                Some(format!(
                    "{host} did not answer in time: check the address, the network, and \
                     HTTPS_PROXY/NO_PROXY"
                )),
            ),
            ErrorKind::Transport(Reach::NoSuchHost) => (
                StoreErrorKind::Unreachable,
                Some(format!("check the registry host name {host}")),
            ),
            ErrorKind::Transport(Reach::Broken) => (StoreErrorKind::Unreachable, None),
            ErrorKind::Credentials => (StoreErrorKind::Unauthorized, None),
            ErrorKind::LocalFile => (StoreErrorKind::LocalIo, None),
            ErrorKind::Setup => (StoreErrorKind::Unreachable, None),
            ErrorKind::Status(StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => (
                StoreErrorKind::Unauthorized,
                Some(format!(
                    "log in with `docker login {host}` (regcache reads Docker's config.json \
                     and its credential helpers), or check that the account may use this \
                     repository"
                )),
            ),
            ErrorKind::Status(StatusCode::NOT_FOUND) => (StoreErrorKind::NotFound, None),
            ErrorKind::Status(_) | ErrorKind::Protocol => (StoreErrorKind::Protocol, None),
        };
        StoreError::Remote {
            kind,
            message,
            hint: self.hint.or(default_hint),
        }
    }
}

impl From<TransportError> for RegistryError {
    fn from(err: TransportError) -> RegistryError {
        RegistryError {
            kind: ErrorKind::Setup,
            codes: Vec::new(),
            message: err.to_string(),
            hint: err.hint(),
        }
    }
}

impl From<TransportError> for StoreError {
    fn from(err: TransportError) -> StoreError {
        RegistryError::from(err).into_store_error(None)
    }
}

impl From<&CredentialsError> for RegistryError {
    fn from(err: &CredentialsError) -> RegistryError {
        RegistryError {
            kind: if err.is_unreadable_file() {
                ErrorKind::LocalFile
            } else {
                ErrorKind::Credentials
            },
            codes: Vec::new(),
            message: err.to_string(),
            hint: err.hint(),
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    detail: serde_json::Value,
}

impl RegistryError {
    pub fn protocol(message: impl Into<String>) -> RegistryError {
        RegistryError {
            kind: ErrorKind::Protocol,
            codes: Vec::new(),
            message: message.into(),
            hint: None,
        }
    }

    /// A request that got no answer. reqwest's own text names the URL with
    /// its query; it is rebuilt here from the error's sources instead.
    pub fn transport(method: &Method, url: &Url, err: reqwest::Error) -> RegistryError {
        let reach = Reach::of(&err);
        let mut text = String::new();
        let err = err.without_url();
        let mut source: Option<&dyn std::error::Error> = Some(&err);
        while let Some(cause) = source {
            let part = cause.to_string();
            if !part.is_empty() && !text.contains(&part) {
                if !text.is_empty() {
                    text.push_str(": ");
                }
                text.push_str(&part);
            }
            source = cause.source();
        }
        // reqwest and hyper wrap the cause in layers of their own words
        // ("error sending request: client error (Connect): tcp connect
        // error: …"); the plain cause says it once, the chain stays at
        // debug level.
        tracing::debug!("{method} {}: {text}", display_url(url));
        let text = match reach.words() {
            Some(words) => words.to_string(),
            // The innermost cause is the news ("invalid peer certificate:
            // UnknownIssuer"), not the layers wrapped around it.
            None if reach == Reach::Tls => format!("TLS: {}", innermost(&err)),
            None => text,
        };
        RegistryError {
            kind: ErrorKind::Transport(reach),
            codes: Vec::new(),
            message: format!("{method} {}: {text}", display_url(url)),
            hint: None,
        }
    }

    /// A request that got no answer in time.
    pub fn timed_out(method: &Method, url: &Url, text: &str) -> RegistryError {
        RegistryError {
            kind: ErrorKind::Transport(Reach::TimedOut),
            codes: Vec::new(),
            message: format!("{method} {}: {text}", display_url(url)),
            hint: None,
        }
    }

    /// The error a non-success response stands for, read from its body.
    pub async fn from_response(method: &Method, response: Response) -> RegistryError {
        let status = response.status();
        let url = response.url().clone();
        let body = read_limited(response).await;
        RegistryError::from_parts(method, &url, status, &body)
    }

    pub fn from_parts(
        method: &Method,
        url: &Url,
        status: StatusCode,
        body: &[u8],
    ) -> RegistryError {
        let mut codes = Vec::new();
        let mut said = Vec::new();
        if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) {
            for entry in parsed.errors {
                let mut part = match (entry.code.is_empty(), entry.message.is_empty()) {
                    (false, false) => format!("{}: {}", entry.code, entry.message),
                    (false, true) => entry.code.clone(),
                    (true, false) => entry.message.clone(),
                    (true, true) => continue,
                };
                if let Some(detail) = short_detail(&entry.detail) {
                    part.push_str(&format!(" ({detail})"));
                }
                if !entry.code.is_empty() {
                    codes.push(entry.code);
                }
                said.push(part);
            }
        }
        if said.is_empty() {
            // Not Distribution's JSON: the first line of a text body, if any.
            let text = String::from_utf8_lossy(body);
            let line = text.lines().map(str::trim).find(|l| !l.is_empty());
            if let Some(line) = line.filter(|l| !l.starts_with('<')) {
                said.push(truncate(line, 200));
            }
        }
        let status_text = format!(
            "HTTP {}{}",
            status.as_u16(),
            status
                .canonical_reason()
                .map(|r| format!(" {r}"))
                .unwrap_or_default()
        );
        let message = if said.is_empty() {
            format!("{status_text} on {method} {}", display_url(url))
        } else {
            format!(
                "{} ({status_text} on {method} {})",
                said.join("; "),
                display_url(url)
            )
        };
        RegistryError {
            kind: ErrorKind::Status(status),
            codes,
            message,
            hint: None,
        }
    }

    pub fn status(&self) -> Option<StatusCode> {
        match self.kind {
            ErrorKind::Status(status) => Some(status),
            _ => None,
        }
    }

    pub fn has_code(&self, code: &str) -> bool {
        self.codes.iter().any(|c| c == code)
    }

    /// The manifest or repository does not exist: a cache miss.
    pub fn is_manifest_miss(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
            || self.has_code("MANIFEST_UNKNOWN")
            || self.has_code("NAME_UNKNOWN")
    }

    /// Worth retrying: the connection broke, or the server is overloaded.
    pub fn is_transient(&self) -> bool {
        match self.kind {
            ErrorKind::Transport(_) => true,
            ErrorKind::Status(status) => super::retry::is_retryable_status(status),
            _ => false,
        }
    }

    /// Prefixes the message with what was being done (`push manifest`).
    pub fn context(mut self, what: impl fmt::Display) -> RegistryError {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

/// A detail worth a place in a one-line message: a short string (a digest,
/// a tag), never a nested object.
fn short_detail(detail: &serde_json::Value) -> Option<String> {
    match detail {
        serde_json::Value::String(s) if !s.is_empty() && s.len() <= 120 => Some(s.clone()),
        _ => None,
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of a response body.
pub async fn read_limited(mut response: Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    body
}

/// A URL as messages and logs show it: scheme, host, port and path. The
/// query is left out: upload URLs carry state tokens there, and a storage
/// backend's redirect carries signatures.
pub fn display_url(url: &Url) -> String {
    let mut shown = format!("{}://", url.scheme());
    if let Some(host) = url.host_str() {
        // host_str gives IPv6 addresses in brackets already.
        shown.push_str(host);
    }
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn distribution_errors_are_quoted_with_status_and_path() {
        let body = br#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:abc"}]}"#;
        let err = RegistryError::from_parts(
            &Method::PUT,
            &url("http://127.0.0.1:5000/v2/team/app/manifests/cache?x=secret"),
            StatusCode::BAD_REQUEST,
            body,
        );
        assert_eq!(
            err.to_string(),
            "MANIFEST_BLOB_UNKNOWN: blob unknown to registry (sha256:abc) \
             (HTTP 400 Bad Request on PUT http://127.0.0.1:5000/v2/team/app/manifests/cache)"
        );
        assert!(err.has_code("MANIFEST_BLOB_UNKNOWN"));
        assert!(!err.is_manifest_miss());
    }

    #[test]
    fn several_errors_and_object_details() {
        let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository","Name":"x","Action":"pull"}]},{"code":"DENIED","message":"no"}]}"#;
        let err = RegistryError::from_parts(
            &Method::GET,
            &url("https://r.example/v2/x/manifests/t"),
            StatusCode::UNAUTHORIZED,
            body,
        );
        assert_eq!(
            err.to_string(),
            "UNAUTHORIZED: authentication required; DENIED: no \
             (HTTP 401 Unauthorized on GET https://r.example/v2/x/manifests/t)"
        );
    }

    #[test]
    fn non_json_bodies_give_their_first_line_and_html_is_dropped() {
        let err = RegistryError::from_parts(
            &Method::GET,
            &url("https://r.example/v2/"),
            StatusCode::BAD_GATEWAY,
            b"\n  upstream timed out\nmore",
        );
        assert_eq!(
            err.to_string(),
            "upstream timed out (HTTP 502 Bad Gateway on GET https://r.example/v2/)"
        );
        assert!(err.is_transient());
        let html = RegistryError::from_parts(
            &Method::GET,
            &url("https://r.example/v2/"),
            StatusCode::SERVICE_UNAVAILABLE,
            b"<html><body>busy</body></html>",
        );
        assert_eq!(
            html.to_string(),
            "HTTP 503 Service Unavailable on GET https://r.example/v2/"
        );
    }

    #[test]
    fn misses_are_recognised_by_status_or_code() {
        let miss = |status: u16, body: &[u8]| {
            RegistryError::from_parts(
                &Method::GET,
                &url("http://h/v2/x/manifests/t"),
                StatusCode::from_u16(status).unwrap(),
                body,
            )
            .is_manifest_miss()
        };
        assert!(miss(404, b""));
        assert!(miss(
            400,
            br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#
        ));
        assert!(miss(
            400,
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
        ));
        assert!(!miss(401, b""));
        assert!(!miss(
            403,
            br#"{"errors":[{"code":"DENIED","message":"x"}]}"#
        ));
    }

    #[test]
    fn setup_and_credentials_errors_keep_their_hints_and_map_to_their_kinds() {
        use super::super::credentials::EntryProblem;
        use std::path::PathBuf;

        let bad_host = super::super::transport::base_url("999.999.999.999", false).unwrap_err();
        let err = RegistryError::from(bad_host);
        assert!(!err.is_transient(), "a bad address is never retried");
        let store = err.into_store_error(Some("999.999.999.999/app:cache"));
        assert_eq!(store.kind(), StoreErrorKind::Unreachable);
        assert!(store.hint().unwrap().contains("999.999.999.999"));

        let unreadable = CredentialsError::Unreadable {
            path: PathBuf::from("/cfg/config.json"),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        let store = RegistryError::from(&unreadable).into_store_error(None);
        assert_eq!(store.kind(), StoreErrorKind::LocalIo);
        assert!(store.hint().unwrap().contains("/cfg/config.json"));

        let entry = CredentialsError::BadEntry {
            path: PathBuf::from("/cfg/config.json"),
            key: "https://r.io/v1/".into(),
            problem: EntryProblem::NoColon,
        };
        let err = RegistryError::from(&entry);
        assert!(!err.is_transient());
        let store = err.into_store_error(Some("r.io/app:cache"));
        assert_eq!(store.kind(), StoreErrorKind::Unauthorized);
        // The entry's own hint, not the generic one of its kind.
        assert!(
            store.hint().unwrap().contains("`docker login r.io`"),
            "{:?}",
            store.hint()
        );
    }

    #[test]
    fn urls_are_shown_without_query_or_user_info() {
        assert_eq!(
            display_url(&url(
                "https://user:pw@s3.example:8443/bucket/blob?X-Amz-Signature=abc"
            )),
            "https://s3.example:8443/bucket/blob"
        );
        assert_eq!(
            display_url(&url("http://[::1]:5000/v2/")),
            "http://[::1]:5000/v2/"
        );
    }
}
