//! One registry host: its base URL, its authentication state, and the
//! request loop every call goes through (authorization, retries with
//! backoff, redirects followed by hand).

use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderMap, HeaderValue, LOCATION};
use reqwest::{Method, Response, StatusCode, Url};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc::UnboundedSender;

use super::auth::{AuthState, Scopes};
use super::error::{RegistryError, display_url};
use super::retry::{RetryPolicy, is_retryable_status, retry_after};
use super::transport::{self, Transport, TransportError};
use crate::layer::growing::{Ending, GrowingBlob};

/// How many redirects a request may follow.
const MAX_REDIRECTS: usize = 10;
/// Bytes read from a file per body chunk.
const FILE_READ_SIZE: usize = 512 << 10;
/// Bytes read from a growing blob per body chunk: its stream runs beside
/// the packers for as long as they pack, so it holds less at a time.
const GROWING_READ_SIZE: usize = 128 << 10;
/// How long the HTTPS-or-HTTP probe waits for an answer.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// A registry on this machine answers a TLS handshake at once or never: a
/// long wait there only delays every command against a plain-HTTP
/// registry behind something that does not answer TLS (a proxy, say).
const LOOPBACK_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// What a request sends. Every variant can be produced again for a retry:
/// a file section is re-read from the file at its offset.
#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    Bytes(Bytes),
    /// `len` bytes of `path` from `offset`. As bytes are read into the
    /// request, the offset reached in the file is sent on `progress`.
    File {
        path: PathBuf,
        offset: u64,
        len: u64,
        progress: Option<UnboundedSender<u64>>,
    },
    /// A blob still being written, from its first byte to its last as they
    /// reach its file; sent without a length (chunked).
    Growing {
        blob: Arc<GrowingBlob>,
        progress: Option<UnboundedSender<u64>>,
    },
}

impl Body {
    fn to_reqwest(&self) -> Option<reqwest::Body> {
        match self {
            Body::Empty => None,
            Body::Bytes(bytes) => Some(reqwest::Body::from(bytes.clone())),
            Body::File {
                path,
                offset,
                len,
                progress,
            } => Some(file_body(path.clone(), *offset, *len, progress.clone())),
            Body::Growing { blob, progress } => {
                Some(growing_body(Arc::clone(blob), progress.clone()))
            }
        }
    }

    fn len(&self) -> Option<u64> {
        match self {
            Body::Empty => None,
            Body::Bytes(bytes) => Some(bytes.len() as u64),
            Body::File { len, .. } => Some(*len),
            Body::Growing { .. } => None,
        }
    }
}

pub struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Body,
    pub scopes: Scopes,
    /// Retry connection errors, 5xx and 429 here. Off for upload chunks,
    /// whose recovery asks the registry how much arrived.
    pub retry: bool,
    /// Follow redirects of GET (on by default; other methods never follow).
    pub follow_redirects: bool,
}

impl Request {
    pub fn new(method: Method, url: Url, scopes: Scopes) -> Request {
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: Body::Empty,
            scopes,
            retry: true,
            follow_redirects: true,
        }
    }

    pub fn header(mut self, name: reqwest::header::HeaderName, value: &str) -> Request {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.insert(name, value);
        }
        self
    }

    pub fn body(mut self, body: Body) -> Request {
        self.body = body;
        self
    }

    pub fn no_retry(mut self) -> Request {
        self.retry = false;
        self
    }

    pub fn no_redirects(mut self) -> Request {
        self.follow_redirects = false;
        self
    }
}

/// A registry host as regcache talks to it. Shared by every store on that
/// host, so its tokens and connections are reused.
pub struct RegistryClient {
    /// As written in references: `ghcr.io`, `localhost:5000`, `docker.io`.
    pub host: String,
    pub transport: Transport,
    /// The base URL, once the scheme is settled (see [`Self::base`]).
    base: tokio::sync::OnceCell<Url>,
    pub auth: AuthState,
    pub retry: RetryPolicy,
}

impl RegistryClient {
    pub fn new(host: &str, transport: Transport) -> Result<RegistryClient, TransportError> {
        // Checked now so that a bad host fails before any I/O.
        transport::base_url(host, false)?;
        Ok(RegistryClient {
            host: host.to_string(),
            transport,
            base: tokio::sync::OnceCell::new(),
            auth: AuthState::new(host, transport.allow_plain_http),
            retry: RetryPolicy::default(),
        })
    }

    fn http(&self) -> Result<&'static reqwest::Client, RegistryError> {
        Ok(transport::http_client(self.transport.skip_verify)?)
    }

    /// The registry's base URL. HTTPS, unless plain HTTP is allowed and the
    /// registry does not speak HTTPS: then `GET /v2/` over HTTPS fails and
    /// the same over HTTP is answered, as docker probes insecure
    /// registries. Settled once per host and process.
    pub async fn base(&self) -> Result<&Url, RegistryError> {
        self.base.get_or_try_init(|| self.settle_base()).await
    }

    async fn settle_base(&self) -> Result<Url, RegistryError> {
        let https = transport::base_url(&self.host, false)?;
        if !self.transport.allow_plain_http {
            return Ok(https);
        }
        let plain = transport::base_url(&self.host, true)?;
        let http = self.http()?;
        let timeout = if super::auth::is_loopback_host(transport::host_without_port(&self.host)) {
            LOOPBACK_PROBE_TIMEOUT
        } else {
            PROBE_TIMEOUT
        };
        let probe = |base: &Url| {
            let url = base.join("v2/").expect("a base URL takes a path");
            async move {
                let sent = tokio::time::timeout(timeout, http.get(url.clone()).send()).await;
                match sent {
                    Ok(Ok(response)) => Ok(response.status()),
                    Ok(Err(err)) => Err(RegistryError::transport(&Method::GET, &url, err)),
                    Err(_) => Err(RegistryError::timed_out(
                        &Method::GET,
                        &url,
                        &format!("no answer within {} s", timeout.as_secs()),
                    )),
                }
            }
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tls_error = match probe(&https).await {
                Ok(_) => {
                    tracing::debug!("{}: speaks HTTPS", self.host);
                    return Ok(https);
                }
                Err(err) => err,
            };
            let plain_error = match probe(&plain).await {
                // A TLS-only server answers plain HTTP with 400: its HTTPS
                // failure (a certificate it cannot prove, say) is the news.
                Ok(StatusCode::BAD_REQUEST) => {
                    return Err(
                        tls_error.context(format!("cannot reach the registry {}", self.host))
                    );
                }
                Ok(_) => {
                    tracing::debug!(
                        "{}: does not speak HTTPS ({tls_error}); using plain HTTP",
                        self.host
                    );
                    return Ok(plain);
                }
                Err(err) => err,
            };
            if attempt >= self.retry.attempts {
                return Err(plain_error.context(format!("cannot reach the registry {}", self.host)));
            }
            let wait = self.retry.delay(attempt, None);
            tracing::info!(
                "{plain_error}; retrying in {} ms ({}/{})",
                wait.as_millis(),
                attempt + 1,
                self.retry.attempts
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// `v2/…` under the registry's base URL.
    pub async fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.base()
            .await?
            .join(path)
            .map_err(|err| RegistryError::protocol(format!("bad registry URL {path}: {err}")))
    }

    /// Resolves a `Location` header against the URL that sent it (it may
    /// be relative or absolute).
    pub fn location(&self, response: &Response) -> Result<Url, RegistryError> {
        let value = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                RegistryError::protocol(format!(
                    "{} {} answered without a Location header",
                    response.status().as_u16(),
                    display_url(response.url())
                ))
            })?;
        response.url().join(value).map_err(|_| {
            RegistryError::protocol(format!(
                "{} sent an invalid Location header",
                display_url(response.url())
            ))
        })
    }

    /// Whether `url` is this registry (scheme, host and port), the only
    /// place credentials are ever sent.
    pub fn is_registry_origin(&self, url: &Url) -> bool {
        self.base.get().is_some_and(|base| {
            url.scheme() == base.scheme()
                && url.host_str() == base.host_str()
                && url.port_or_known_default() == base.port_or_known_default()
        })
    }

    /// Sends a request: anonymously at first, then with whatever the
    /// registry's challenge asks; retrying transient failures with backoff
    /// (when `request.retry`); following redirects of GET, without
    /// credentials once they leave the registry. Returns the final
    /// response whatever its status; a request that got no answer is an
    /// error.
    pub async fn send(&self, request: Request) -> Result<Response, RegistryError> {
        let http = self.http()?;
        // Settles the scheme before the first request leaves.
        self.base().await?;
        let mut url = request.url.clone();
        let mut method = request.method.clone();
        let mut attempt: u32 = 0;
        let mut auth_retried = false;
        let mut redirects = 0;
        loop {
            let at_registry = self.is_registry_origin(&url);
            let authorization = if at_registry {
                self.auth
                    .header_for(http, &self.retry, &request.scopes)
                    .await?
            } else {
                None
            };
            let mut builder = http.request(method.clone(), url.clone());
            builder = builder.headers(request.headers.clone());
            if let Some(value) = &authorization {
                builder = builder.header(AUTHORIZATION, value.clone());
            }
            if redirects == 0
                && let Some(body) = request.body.to_reqwest()
            {
                if let Some(len) = request.body.len() {
                    builder = builder.header(CONTENT_LENGTH, len);
                }
                builder = builder.body(body);
            }
            tracing::trace!("{method} {}", display_url(&url));
            let result = builder.send().await;
            let response = match result {
                Ok(response) => response,
                Err(err) => {
                    let mut err = RegistryError::transport(&method, &url, err);
                    if at_registry {
                        err = err.context(format!("cannot reach the registry {}", self.host));
                    }
                    attempt += 1;
                    if request.retry && attempt < self.retry.attempts {
                        let wait = self.retry.delay(attempt, None);
                        tracing::info!(
                            "{err}; retrying in {} ms ({}/{})",
                            wait.as_millis(),
                            attempt + 1,
                            self.retry.attempts
                        );
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = response.status();
            tracing::debug!("{method} {} -> {}", display_url(&url), status.as_u16());
            if status == StatusCode::UNAUTHORIZED && at_registry {
                if !auth_retried {
                    auth_retried = true;
                    if self
                        .auth
                        .on_unauthorized(response.headers(), authorization.as_ref())
                        .await?
                    {
                        continue;
                    }
                } else if let Some(refused) = &authorization {
                    // A fresh token refused too: not worth keeping.
                    self.auth.forget(refused);
                }
            }
            if request.retry && is_retryable_status(status) {
                attempt += 1;
                if attempt < self.retry.attempts {
                    let wait = self.retry.delay(attempt, retry_after(response.headers()));
                    tracing::info!(
                        "{method} {}: HTTP {}; retrying in {} ms ({}/{})",
                        display_url(&url),
                        status.as_u16(),
                        wait.as_millis(),
                        attempt + 1,
                        self.retry.attempts
                    );
                    drop(response);
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            let follow = request.follow_redirects
                && status.is_redirection()
                && status != StatusCode::NOT_MODIFIED
                // GET only, as docs/registry-client.md promises: a HEAD's
                // redirect already answers it (storage often signs the URL
                // for GET alone), and a redirected PUT/PATCH/POST would
                // carry upload bytes to a place that was never chosen.
                && method == Method::GET
                && response.headers().contains_key(reqwest::header::LOCATION);
            if follow {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(RegistryError::protocol(format!(
                        "{method} {}: more than {MAX_REDIRECTS} redirects",
                        display_url(&request.url)
                    )));
                }
                let next = self.location(&response)?;
                tracing::debug!(
                    "{method} {} redirected to {}",
                    display_url(&url),
                    display_url(&next)
                );
                url = next;
                if status == StatusCode::SEE_OTHER {
                    method = Method::GET;
                }
                // A new place: its own retries, and no credentials unless it
                // is the registry again.
                attempt = 0;
                auth_retried = !self.is_registry_origin(&url);
                continue;
            }
            return Ok(response);
        }
    }

    /// Turns a response with an unexpected status into an error; a 401
    /// also says where credentials were looked for.
    pub async fn error(&self, method: &Method, response: Response) -> RegistryError {
        let unauthorized = response.status() == StatusCode::UNAUTHORIZED;
        let err = RegistryError::from_response(method, response).await;
        if unauthorized {
            let explanation = self.auth.explain().await;
            return RegistryError {
                message: format!("{}; {explanation}", err.message),
                ..err
            };
        }
        err
    }
}

/// A request body streaming `len` bytes of a file from `offset`, never
/// holding more than one read in memory.
pub fn file_body(
    path: PathBuf,
    offset: u64,
    len: u64,
    progress: Option<UnboundedSender<u64>>,
) -> reqwest::Body {
    struct State {
        path: PathBuf,
        file: Option<tokio::fs::File>,
        pos: u64,
        end: u64,
        progress: Option<UnboundedSender<u64>>,
    }
    let state = State {
        path,
        file: None,
        pos: offset,
        end: offset + len,
        progress,
    };
    let stream = futures_util::stream::try_unfold(state, |mut state| async move {
        if state.pos >= state.end {
            return Ok::<_, std::io::Error>(None);
        }
        let want = state.end - state.pos;
        let chunk = Chunk {
            path: &state.path,
            file: &mut state.file,
            pos: &mut state.pos,
            progress: &state.progress,
        }
        .read(want, FILE_READ_SIZE)
        .await?;
        Ok(Some((chunk, state)))
    });
    reqwest::Body::wrap_stream(stream)
}

/// One body chunk's read: the file opened at `pos` the first time, then
/// read on from where it is.
struct Chunk<'a> {
    path: &'a std::path::Path,
    file: &'a mut Option<tokio::fs::File>,
    pos: &'a mut u64,
    progress: &'a Option<UnboundedSender<u64>>,
}

impl Chunk<'_> {
    /// Up to `want` bytes (at most `max`), reporting the offset reached; an
    /// error if the file ends first.
    async fn read(self, want: u64, max: usize) -> std::io::Result<Bytes> {
        if self.file.is_none() {
            let mut file = tokio::fs::File::open(self.path).await?;
            file.seek(SeekFrom::Start(*self.pos)).await?;
            *self.file = Some(file);
        }
        let Some(file) = self.file.as_mut() else {
            unreachable!("opened above")
        };
        let mut buf = vec![0u8; usize::try_from(want).unwrap_or(usize::MAX).min(max)];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "{} ends at byte {}, {want} short",
                    self.path.display(),
                    *self.pos
                ),
            ));
        }
        buf.truncate(n);
        *self.pos += n as u64;
        if let Some(progress) = self.progress {
            let _ = progress.send(*self.pos);
        }
        Ok(Bytes::from(buf))
    }
}

/// The bytes of a growing blob as they reach its file, ending with its
/// last byte; an error if its packer gives up (the upload must then not
/// be committed), or if the file holds other than the blob's size.
pub fn growing_body(
    blob: Arc<GrowingBlob>,
    progress: Option<UnboundedSender<u64>>,
) -> reqwest::Body {
    struct State {
        blob: Arc<GrowingBlob>,
        file: Option<tokio::fs::File>,
        pos: u64,
        progress: Option<UnboundedSender<u64>>,
    }
    let state = State {
        blob,
        file: None,
        pos: 0,
        progress,
    };
    let stream = futures_util::stream::try_unfold(state, |mut state| async move {
        let available = loop {
            let growth = state.blob.growth();
            match growth.ending {
                Some(Ending::Abandoned) => {
                    return Err(std::io::Error::other(format!(
                        "{}: its packing stopped",
                        state.blob.path().display()
                    )));
                }
                Some(Ending::Done { size, .. }) if state.pos >= size => {
                    if state.pos > size {
                        return Err(std::io::Error::other(format!(
                            "{}: more bytes than the blob's {size}",
                            state.blob.path().display()
                        )));
                    }
                    return Ok(None);
                }
                _ if growth.written > state.pos => break growth.written - state.pos,
                _ => state.blob.changed().await,
            }
        };
        let blob = Arc::clone(&state.blob);
        let chunk = Chunk {
            path: blob.path(),
            file: &mut state.file,
            pos: &mut state.pos,
            progress: &state.progress,
        }
        .read(available, GROWING_READ_SIZE)
        .await?;
        Ok(Some((chunk, state)))
    });
    reqwest::Body::wrap_stream(stream)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::clock::ManualClock;
    use super::super::test_server::loopback_client as client;
    use super::super::test_server::{Reply, TestServer};
    use super::*;

    const BLOB: &str =
        "v2/r/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000";

    async fn get(client: &RegistryClient, path: &str) -> Result<Response, RegistryError> {
        let url = client.url(path).await?;
        client
            .send(Request::new(Method::GET, url, Scopes::pull("r")))
            .await
    }

    #[tokio::test]
    async fn plain_http_is_found_after_https_fails_on_loopback() {
        let server = TestServer::start(|_, _| Reply::new(200)).await;
        let client = client(server.port);
        assert_eq!(
            client.base().await.unwrap().as_str(),
            format!("http://127.0.0.1:{}/", server.port)
        );
        assert_eq!(server.seen()[0].target, "/v2/");
    }

    /// Blob GETs redirect to storage on another host: the token goes to
    /// the registry only, never to the storage host.
    #[tokio::test]
    async fn credentials_stay_with_the_registry_across_redirects() {
        let storage = TestServer::start(|_, _| Reply::new(200).body("blob bytes")).await;
        let storage_port = storage.port;
        let registry = TestServer::start(move |seen, _| {
            let port = seen
                .header("host")
                .and_then(|h| h.rsplit(':').next())
                .unwrap_or_default()
                .to_string();
            if seen.target == "/v2/" {
                return Reply::new(200);
            }
            if seen.target.starts_with("/token") {
                return Reply::new(200).body(r#"{"token":"tok-secret","expires_in":300}"#);
            }
            match seen.header("authorization") {
                Some("Bearer tok-secret") => Reply::new(307).header(
                    "Location",
                    &format!("http://localhost:{storage_port}/bucket/blob?sig=abc"),
                ),
                _ => Reply::new(401).header(
                    "WWW-Authenticate",
                    &format!(
                        r#"Bearer realm="http://127.0.0.1:{port}/token",service="test-registry""#
                    ),
                ),
            }
        })
        .await;
        let client = client(registry.port);
        let response = get(&client, BLOB).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.text().await.unwrap(), "blob bytes");

        let at_storage = storage.seen();
        assert_eq!(at_storage.len(), 1);
        assert_eq!(at_storage[0].target, "/bucket/blob?sig=abc");
        assert_eq!(at_storage[0].header("authorization"), None);

        let at_registry = registry.seen();
        let token_request = at_registry
            .iter()
            .find(|s| s.target.starts_with("/token"))
            .expect("a token was asked for");
        assert_eq!(
            token_request.target,
            "/token?service=test-registry&scope=repository%3Ar%3Apull"
        );
        assert_eq!(
            token_request.header("authorization"),
            None,
            "anonymous token"
        );
    }

    #[tokio::test]
    async fn transient_failures_are_retried_honouring_retry_after() {
        let server = TestServer::start(|seen, index| match (seen.target.as_str(), index) {
            ("/v2/", _) => Reply::new(200),
            (_, 1) => Reply::new(503).header("Retry-After", "1"),
            (_, 2) => Reply::new(429).header("Retry-After", "Thu, 01 Jan 1970 00:00:00 GMT"),
            _ => Reply::new(200).body("finally"),
        })
        .await;
        let client = client(server.port);
        let started = Instant::now();
        let response = get(&client, BLOB).await.unwrap();
        assert_eq!(response.text().await.unwrap(), "finally");
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "Retry-After: 1 was honoured"
        );
        assert_eq!(server.seen().len(), 4);
    }

    #[tokio::test]
    async fn client_errors_are_final_and_persistent_5xx_give_up_with_the_registry_text() {
        let server = TestServer::start(|seen, _| match seen.target.as_str() {
            "/v2/" => Reply::new(200),
            "/v2/r/manifests/bad" => Reply::new(400).body(
                r#"{"errors":[{"code":"TAG_INVALID","message":"manifest tag did not match URI"}]}"#,
            ),
            _ => Reply::new(500).body(
                r#"{"errors":[{"code":"UNKNOWN","message":"unknown error","detail":"disk full"}]}"#,
            ),
        })
        .await;
        let client = client(server.port);
        let response = get(&client, "v2/r/manifests/bad").await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let err = client.error(&Method::GET, response).await;
        assert!(
            err.to_string()
                .starts_with("TAG_INVALID: manifest tag did not match URI (HTTP 400"),
            "{err}"
        );
        assert_eq!(server.seen().len(), 2, "a 400 is not retried");

        let response = get(&client, BLOB).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let err = client.error(&Method::GET, response).await;
        assert_eq!(
            err.to_string(),
            format!(
                "UNKNOWN: unknown error (disk full) (HTTP 500 Internal Server Error on GET http://127.0.0.1:{}/{BLOB})",
                server.port
            )
        );
        assert_eq!(server.seen().len(), 2 + 5, "tried five times");
    }

    /// A token is renewed before it expires, and a token the registry
    /// refuses (revoked, or expired early) is replaced once.
    #[tokio::test]
    async fn tokens_are_renewed_when_they_expire_or_are_refused() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let issued = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = issued.clone();
        let server = TestServer::start(move |seen, _| {
            if seen.target == "/v2/" {
                return Reply::new(200);
            }
            let port = seen
                .header("host")
                .and_then(|h| h.rsplit(':').next())
                .unwrap_or_default()
                .to_string();
            if seen.target.starts_with("/token") {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                return Reply::new(200).body(format!(r#"{{"access_token":"t{n}","expires_in":1}}"#));
            }
            // The registry accepts the second token and later ones, and
            // refuses the third (as if revoked).
            let accepted = matches!(seen.header("authorization"), Some(v) if v.starts_with("Bearer t") && v != "Bearer t1" && v != "Bearer t3");
            if accepted {
                Reply::new(200).body("ok")
            } else {
                Reply::new(401).header(
                    "WWW-Authenticate",
                    &format!(r#"Bearer realm="http://127.0.0.1:{port}/token",service="s",error="invalid_token""#),
                )
            }
        })
        .await;
        let clock = std::sync::Arc::new(ManualClock::new());
        let mut client = client(server.port);
        client.auth =
            AuthState::new(&format!("127.0.0.1:{}", server.port), true).with_clock(clock.clone());
        // First request: anonymous → challenge → t1 refused → (one auth
        // retry only) the 401 comes back, and t1 is forgotten.
        let first = get(&client, BLOB).await.unwrap();
        assert_eq!(first.status(), StatusCode::UNAUTHORIZED);
        // Next: t2 is fetched and accepted.
        let second = get(&client, BLOB).await.unwrap();
        assert_eq!(second.status(), StatusCode::OK);
        assert_eq!(issued.load(Ordering::SeqCst), 2);
        // Still valid (renewed a quarter of its 1 s lifetime early): reused
        // without asking again.
        clock.advance(Duration::from_millis(700));
        assert_eq!(get(&client, BLOB).await.unwrap().status(), StatusCode::OK);
        assert_eq!(issued.load(Ordering::SeqCst), 2);
        // Past the renewal point, a new one (t3) is fetched before the
        // request; the registry refuses it, so the client fetches t4.
        clock.advance(Duration::from_millis(100));
        assert_eq!(get(&client, BLOB).await.unwrap().status(), StatusCode::OK);
        assert_eq!(issued.load(Ordering::SeqCst), 4);
    }

    /// Two redirect chains: one of exactly 10 hops (followed to the end),
    /// one of 11 (the 11th redirect is refused, never requested).
    #[tokio::test]
    async fn redirects_are_followed_at_most_ten_times() {
        let server = TestServer::start(|seen, _| {
            if seen.target == "/v2/" {
                return Reply::new(200);
            }
            // /v2/<hops>/hop/<n>: redirects until n reaches hops.
            let parts: Vec<&str> = seen.target.split('/').collect();
            let hops: usize = parts[2].parse().unwrap();
            let n: usize = parts[4].parse().unwrap();
            if n < hops {
                Reply::new(307).header("Location", &format!("/v2/{hops}/hop/{}", n + 1))
            } else {
                Reply::new(200).body(format!("arrived at {n}"))
            }
        })
        .await;
        let client = client(server.port);
        let response = get(&client, "v2/10/hop/0").await.unwrap();
        assert_eq!(response.text().await.unwrap(), "arrived at 10");
        let chain = |hops: &str| {
            server
                .seen()
                .iter()
                .filter(|s| s.target.starts_with(&format!("/v2/{hops}/")))
                .count()
        };
        assert_eq!(chain("10"), 11, "the request and its 10 redirects");

        let err = get(&client, "v2/11/hop/0").await.unwrap_err();
        assert_eq!(
            err.message,
            format!(
                "GET http://127.0.0.1:{}/v2/11/hop/0: more than 10 redirects",
                server.port
            )
        );
        assert_eq!(chain("11"), 11, "the 11th redirect was not followed");
    }

    /// Only GET follows a redirect. A HEAD's redirect is its answer (a
    /// blob on storage exists); a PUT, PATCH or POST would lose its body
    /// or land on a host that must not see it.
    #[tokio::test]
    async fn only_get_follows_redirects() {
        let server = TestServer::start(|seen, _| match seen.target.as_str() {
            "/v2/" => Reply::new(200),
            "/elsewhere" => Reply::new(200).body("followed"),
            _ => Reply::new(307).header("Location", "/elsewhere"),
        })
        .await;
        let client = client(server.port);
        for method in [Method::HEAD, Method::PUT, Method::PATCH, Method::POST] {
            let url = client.url("v2/r/blobs/uploads/x").await.unwrap();
            let request = Request::new(method.clone(), url, Scopes::push("r"))
                .body(Body::Bytes(Bytes::from_static(b"payload")));
            let response = client.send(request).await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::TEMPORARY_REDIRECT,
                "{method}"
            );
        }
        let followed = |server: &TestServer| {
            server
                .seen()
                .iter()
                .filter(|s| s.target == "/elsewhere")
                .count()
        };
        assert_eq!(followed(&server), 0, "{:?}", server.seen());
        let response = get(&client, BLOB).await.unwrap();
        assert_eq!(response.text().await.unwrap(), "followed");
        assert_eq!(followed(&server), 1);
    }

    /// Parallel transfers that meet the same challenge ask the token
    /// server once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_requests_share_one_token() {
        let server = TestServer::start(|seen, _| {
            let port = seen
                .header("host")
                .and_then(|h| h.rsplit(':').next())
                .unwrap_or_default()
                .to_string();
            match (seen.target.as_str(), seen.header("authorization")) {
                ("/v2/", _) => Reply::new(200),
                (t, _) if t.starts_with("/token") => {
                    // Slow enough that every request is waiting for it.
                    std::thread::sleep(Duration::from_millis(100));
                    Reply::new(200).body(r#"{"token":"shared"}"#)
                }
                (_, Some("Bearer shared")) => Reply::new(200),
                _ => Reply::new(401).header(
                    "WWW-Authenticate",
                    &format!(r#"Bearer realm="http://127.0.0.1:{port}/token""#),
                ),
            }
        })
        .await;
        let client = std::sync::Arc::new(client(server.port));
        client.base().await.unwrap();
        let requests: Vec<_> = (0..8)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { get(&client, BLOB).await.unwrap().status() })
            })
            .collect();
        for request in requests {
            assert_eq!(request.await.unwrap(), StatusCode::OK);
        }
        let tokens = server
            .seen()
            .iter()
            .filter(|s| s.target.starts_with("/token"))
            .count();
        assert_eq!(tokens, 1);
    }
}
