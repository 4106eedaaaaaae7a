//! Registry authentication as docker does it: anonymous first; on a 401,
//! the `WWW-Authenticate` challenge decides between basic auth and a bearer
//! token from the registry's token server, asked for exactly the scopes a
//! request needs and cached until shortly before it expires.
//!
//! Secrets never reach a log line or an error message: headers are marked
//! sensitive, and messages name where credentials came from, never what
//! they are.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Client, Method, StatusCode, Url};
use serde::Deserialize;

use super::clock::{Clock, SystemClock};
use super::credentials::{self, Credentials, CredentialsError, Lookup};
use super::error::{RegistryError, display_url};
use super::retry::{RetryPolicy, is_retryable_status, retry_after};

/// A token server that states no lifetime gives tokens of 60 seconds
/// (the Docker token spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// A token is renewed this long before it expires (at most a quarter of
/// its lifetime), so that a request never leaves with a token about to die.
const RENEW_MARGIN: Duration = Duration::from_secs(10);
const MAX_TOKEN_RESPONSE: usize = 1 << 20;

/// One challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: Option<String>,
    },
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
        error: Option<String>,
    },
}

/// Parses every challenge in the given `WWW-Authenticate` values (a header
/// may hold several, and several headers may be sent). Unknown schemes and
/// malformed parameters are skipped rather than failing the request.
pub fn parse_challenges<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    let mut challenges = Vec::new();
    for value in values {
        for (scheme, params) in split_challenges(value) {
            let get = |name: &str| {
                params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
            };
            if scheme.eq_ignore_ascii_case("basic") {
                challenges.push(Challenge::Basic {
                    realm: get("realm"),
                });
            } else if scheme.eq_ignore_ascii_case("bearer")
                && let Some(realm) = get("realm").filter(|r| !r.is_empty())
            {
                challenges.push(Challenge::Bearer {
                    realm,
                    service: get("service"),
                    scope: get("scope"),
                    error: get("error"),
                });
            }
        }
    }
    challenges
}

/// RFC 9110 §11.6.1: `challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]`,
/// challenges separated by commas, parameter values tokens or quoted strings
/// with backslash escapes.
fn split_challenges(value: &str) -> Vec<(String, Vec<(String, String)>)> {
    let bytes = value.as_bytes();
    let mut pos = 0;
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let skip_ws = |pos: &mut usize| {
        while *pos < bytes.len() && matches!(bytes[*pos], b' ' | b'\t' | b',') {
            *pos += 1;
        }
    };
    let read_token = |pos: &mut usize| {
        let start = *pos;
        while *pos < bytes.len() && is_tchar(bytes[*pos]) {
            *pos += 1;
        }
        value[start..*pos].to_string()
    };
    loop {
        skip_ws(&mut pos);
        if pos >= bytes.len() {
            break;
        }
        let word = read_token(&mut pos);
        if word.is_empty() {
            // Not a token: skip one byte and resynchronise.
            pos += 1;
            continue;
        }
        // Look past spaces: `=` makes this a parameter of the current
        // challenge, anything else makes it a new scheme.
        let mut look = pos;
        while look < bytes.len() && matches!(bytes[look], b' ' | b'\t') {
            look += 1;
        }
        let is_param = look < bytes.len() && bytes[look] == b'=' && !out.is_empty();
        if !is_param {
            out.push((word, Vec::new()));
            // A token68 credential right after the scheme (`Negotiate
            // abc==`) is no parameter: step over it.
            let mut after = look;
            let start = after;
            while after < bytes.len() && (is_tchar(bytes[after]) || bytes[after] == b'/') {
                after += 1;
            }
            while after < bytes.len() && bytes[after] == b'=' {
                after += 1;
            }
            let run_end = after;
            while after < bytes.len() && matches!(bytes[after], b' ' | b'\t') {
                after += 1;
            }
            if run_end > start && (after >= bytes.len() || bytes[after] == b',') {
                pos = after;
            }
            continue;
        }
        pos = look + 1;
        while pos < bytes.len() && matches!(bytes[pos], b' ' | b'\t') {
            pos += 1;
        }
        let mut param_value = String::new();
        if pos < bytes.len() && bytes[pos] == b'"' {
            pos += 1;
            let mut raw = Vec::new();
            while pos < bytes.len() && bytes[pos] != b'"' {
                if bytes[pos] == b'\\' && pos + 1 < bytes.len() {
                    pos += 1;
                }
                raw.push(bytes[pos]);
                pos += 1;
            }
            pos += 1; // the closing quote, if any
            param_value = String::from_utf8_lossy(&raw).into_owned();
        } else {
            let start = pos;
            while pos < bytes.len() && !matches!(bytes[pos], b',' | b' ' | b'\t') {
                pos += 1;
            }
            param_value.push_str(&value[start..pos]);
        }
        if let Some((_, params)) = out.last_mut() {
            params.push((word.to_ascii_lowercase(), param_value));
        }
    }
    out
}

/// The access a request needs: `repository:NAME:ACTION[,ACTION]` scopes,
/// merged per resource so that equal sets compare equal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeMap<String, BTreeSet<String>>);

impl Scopes {
    pub fn pull(repository: &str) -> Scopes {
        Scopes::default().with(repository, &["pull"])
    }

    pub fn push(repository: &str) -> Scopes {
        Scopes::default().with(repository, &["pull", "push"])
    }

    /// A cross-repository mount: pull on the source, push on the target,
    /// in one token.
    pub fn mount(from: &str, to: &str) -> Scopes {
        Scopes::push(to).with(from, &["pull"])
    }

    /// Deleting manifests (`prune`): Distribution's token servers grant
    /// it as the `delete` action.
    pub fn delete(repository: &str) -> Scopes {
        Scopes::default().with(repository, &["pull", "delete"])
    }

    pub fn none() -> Scopes {
        Scopes::default()
    }

    fn with(mut self, repository: &str, actions: &[&str]) -> Scopes {
        let set = self
            .0
            .entry(format!("repository:{repository}"))
            .or_default();
        set.extend(actions.iter().map(|a| a.to_string()));
        self
    }

    /// The scope parameters of a token request.
    pub fn to_params(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(resource, actions)| {
                let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
                format!("{resource}:{}", actions.join(","))
            })
            .collect()
    }

    /// Whether a token granted for `self` also covers `other`.
    pub fn covers(&self, other: &Scopes) -> bool {
        other.0.iter().all(|(resource, actions)| {
            self.0
                .get(resource)
                .is_some_and(|have| actions.is_subset(have))
        })
    }
}

struct CachedToken {
    scopes: Scopes,
    header: HeaderValue,
    renew_at: Instant,
}

/// Authentication state of one registry host, shared by every store that
/// talks to it, so tokens and credentials are looked up once.
pub struct AuthState {
    host: String,
    plain_http: bool,
    /// The lookup, done once; its error is kept whole (it names the file
    /// and carries the hint) and turned into a [`RegistryError`] per use.
    credentials: tokio::sync::OnceCell<Result<Lookup, CredentialsError>>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<Vec<CachedToken>>,
    /// Serialises token fetches so that parallel transfers hitting the
    /// same 401 ask the token server once.
    fetching: tokio::sync::Mutex<()>,
    /// What token lifetimes are measured against.
    clock: Arc<dyn Clock>,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl AuthState {
    pub fn new(host: &str, plain_http: bool) -> AuthState {
        AuthState {
            host: host.to_string(),
            plain_http,
            credentials: tokio::sync::OnceCell::new(),
            challenge: Mutex::new(None),
            tokens: Mutex::new(Vec::new()),
            fetching: tokio::sync::Mutex::new(()),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same, with token lifetimes measured on `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> AuthState {
        self.clock = clock;
        self
    }

    async fn lookup(&self) -> Result<&Lookup, RegistryError> {
        let host = self.host.clone();
        let result = self
            .credentials
            .get_or_init(|| async move { credentials::lookup(&host).await })
            .await;
        result.as_ref().map_err(RegistryError::from)
    }

    async fn credentials(&self) -> Result<Option<Credentials>, RegistryError> {
        Ok(self
            .lookup()
            .await?
            .found
            .as_ref()
            .map(|f| f.credentials.clone()))
    }

    /// Where credentials for this host were looked for and what was found,
    /// for the message of a refused request.
    pub async fn explain(&self) -> String {
        match self.lookup().await {
            Ok(Lookup {
                found: Some(found), ..
            }) => format!("the credentials from {} were refused", found.source),
            // How to log in is the error's hint (see RegistryError), said
            // once, last.
            Ok(Lookup {
                found: None,
                searched,
            }) => searched.to_string(),
            Err(err) => err.message,
        }
    }

    fn current_challenge(&self) -> Option<Challenge> {
        self.challenge
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The Authorization header for a request needing `scopes`, or `None`
    /// while the registry has not asked for any (anonymous first).
    pub async fn header_for(
        &self,
        http: &Client,
        retry: &RetryPolicy,
        scopes: &Scopes,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let Some(challenge) = self.current_challenge() else {
            return Ok(None);
        };
        match challenge {
            Challenge::Basic { .. } => match self.credentials().await? {
                Some(Credentials::Basic { username, password }) => {
                    Ok(Some(basic_header(&username, &password)))
                }
                Some(Credentials::RegistryToken(token)) => Ok(Some(bearer_header(&token)?)),
                Some(Credentials::IdentityToken(_)) | None => Ok(None),
            },
            Challenge::Bearer { realm, service, .. } => {
                if let Some(Credentials::RegistryToken(token)) = self.credentials().await? {
                    return Ok(Some(bearer_header(&token)?));
                }
                if let Some(header) = self.cached(scopes) {
                    return Ok(Some(header));
                }
                let _guard = self.fetching.lock().await;
                if let Some(header) = self.cached(scopes) {
                    return Ok(Some(header));
                }
                let credentials = self.credentials().await?;
                let (token, lifetime) = self
                    .fetch_token(http, retry, &realm, service.as_deref(), scopes, credentials)
                    .await?;
                let header = bearer_header(&token)?;
                let margin = RENEW_MARGIN.min(lifetime / 4);
                let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
                tokens.retain(|t| t.scopes != *scopes);
                tokens.push(CachedToken {
                    scopes: scopes.clone(),
                    header: header.clone(),
                    renew_at: self.clock.now() + lifetime - margin,
                });
                Ok(Some(header))
            }
        }
    }

    fn cached(&self, scopes: &Scopes) -> Option<HeaderValue> {
        let now = self.clock.now();
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|t| t.renew_at > now);
        // An exact match first, then any token that covers these scopes
        // (a push token serves the HEADs of the same push).
        tokens
            .iter()
            .find(|t| t.scopes == *scopes)
            .or_else(|| tokens.iter().find(|t| t.scopes.covers(scopes)))
            .map(|t| t.header.clone())
    }

    /// Drops a token the registry refused.
    pub fn forget(&self, refused: &HeaderValue) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|t| t.header != refused);
    }

    /// Learns from a 401: stores the challenge and drops the token that was
    /// refused. Returns whether sending the request again can succeed.
    pub async fn on_unauthorized(
        &self,
        headers: &HeaderMap,
        sent: Option<&HeaderValue>,
    ) -> Result<bool, RegistryError> {
        let values = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok());
        let challenges = parse_challenges(values);
        let chosen = challenges
            .iter()
            .find(|c| matches!(c, Challenge::Bearer { .. }))
            .or_else(|| challenges.first())
            .cloned();
        let Some(challenge) = chosen else {
            return Ok(false);
        };
        if let Some(sent) = sent {
            self.forget(sent);
        }
        let previous = self
            .challenge
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(challenge.clone());
        tracing::debug!(
            "{}: registry asks for {} authentication",
            self.host,
            match &challenge {
                Challenge::Basic { .. } => "basic",
                Challenge::Bearer { .. } => "bearer-token",
            }
        );
        Ok(match challenge {
            // Basic: worth another try only if credentials exist and were
            // not just sent.
            Challenge::Basic { .. } => {
                sent.is_none()
                    && matches!(
                        self.credentials().await?,
                        Some(Credentials::Basic { .. } | Credentials::RegistryToken(_))
                    )
            }
            // Bearer: a first challenge, or a token that expired or was
            // revoked: a fresh token may do. A refused fresh token is final
            // (the caller tries once).
            Challenge::Bearer { .. } => sent.is_none() || previous.is_some(),
        })
    }

    /// Asks the token server for a token covering `scopes`: with an
    /// identity token, the OAuth2 refresh-token grant (POST); otherwise a
    /// GET, with basic auth when credentials exist.
    async fn fetch_token(
        &self,
        http: &Client,
        retry: &RetryPolicy,
        realm: &str,
        service: Option<&str>,
        scopes: &Scopes,
        credentials: Option<Credentials>,
    ) -> Result<(String, Duration), RegistryError> {
        let realm_url = Url::parse(realm).map_err(|_| {
            RegistryError::protocol(format!(
                "{}: the registry names an invalid token realm {realm:?}",
                self.host
            ))
        })?;
        if !matches!(realm_url.scheme(), "https" | "http") {
            return Err(RegistryError::protocol(format!(
                "{}: the token realm {} is not an http(s) URL",
                self.host,
                display_url(&realm_url)
            )));
        }
        let credentials = credentials.filter(|_| self.may_send_credentials_to(&realm_url));
        let scope_params = scopes.to_params();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = match &credentials {
                Some(Credentials::IdentityToken(refresh)) => {
                    let mut form: Vec<(&str, String)> = vec![
                        ("grant_type", "refresh_token".into()),
                        ("refresh_token", refresh.clone()),
                        ("client_id", "regcache".into()),
                    ];
                    if let Some(service) = service {
                        form.push(("service", service.to_string()));
                    }
                    if !scope_params.is_empty() {
                        form.push(("scope", scope_params.join(" ")));
                    }
                    http.post(realm_url.clone()).form(&form)
                }
                other => {
                    let mut query: Vec<(&str, &str)> = Vec::new();
                    if let Some(service) = service {
                        query.push(("service", service));
                    }
                    for scope in &scope_params {
                        query.push(("scope", scope));
                    }
                    let mut request = http.get(realm_url.clone());
                    if let Some(Credentials::Basic { username, password }) = other {
                        query.push(("account", username));
                        request = request.header(AUTHORIZATION, basic_header(username, password));
                    }
                    request.query(&query)
                }
            };
            let method = if matches!(credentials, Some(Credentials::IdentityToken(_))) {
                Method::POST
            } else {
                Method::GET
            };
            let response = match request.send().await {
                Ok(response) => response,
                Err(err) => {
                    let err = RegistryError::transport(&method, &realm_url, err)
                        .context(format!("{}: token server", self.host));
                    if attempt < retry.attempts {
                        tokio::time::sleep(retry.delay(attempt, None)).await;
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = response.status();
            if status.is_success() {
                let body = read_limited_to(response, MAX_TOKEN_RESPONSE).await;
                let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
                    RegistryError::protocol(format!(
                        "{}: the token server at {} did not answer with a token",
                        self.host,
                        display_url(&realm_url)
                    ))
                })?;
                let token = if parsed.token.is_empty() {
                    parsed.access_token
                } else {
                    parsed.token
                };
                if token.is_empty() {
                    return Err(RegistryError::protocol(format!(
                        "{}: the token server at {} answered without a token",
                        self.host,
                        display_url(&realm_url)
                    )));
                }
                let lifetime = parsed
                    .expires_in
                    .filter(|s| *s > 0)
                    .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
                tracing::debug!(
                    "{}: got a token for {} from {} (valid {}s)",
                    self.host,
                    scope_params.join(" "),
                    display_url(&realm_url),
                    lifetime.as_secs()
                );
                return Ok((token, lifetime));
            }
            // A token server without the OAuth2 endpoint: docker falls back
            // to a plain GET.
            if method == Method::POST
                && matches!(
                    status,
                    StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
                )
            {
                return Box::pin(self.fetch_token(http, retry, realm, service, scopes, None)).await;
            }
            if is_retryable_status(status) && attempt < retry.attempts {
                let wait = retry.delay(attempt, retry_after(response.headers()));
                tokio::time::sleep(wait).await;
                continue;
            }
            let err = RegistryError::from_response(&method, response).await;
            let mut message = format!("{}: token server refused: {}", self.host, err.message);
            if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                message.push_str(&format!("; {}", self.explain().await));
            }
            return Err(RegistryError { message, ..err });
        }
    }

    /// Credentials go to a token server over HTTPS, or over plain HTTP only
    /// to this machine or when the registry itself is plain HTTP (the user
    /// chose that).
    fn may_send_credentials_to(&self, realm: &Url) -> bool {
        if realm.scheme() == "https" || self.plain_http {
            return true;
        }
        let loopback = realm.host_str().is_some_and(is_loopback_host);
        if !loopback {
            tracing::warn!(
                "{}: not sending credentials to the plain-HTTP token server {}",
                self.host,
                display_url(realm)
            );
        }
        loopback
    }
}

/// `localhost`, 127.0.0.0/8 or `::1` (as a URL shows it: `[::1]`).
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

async fn read_limited_to(mut response: reqwest::Response, max: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        if body.len() + chunk.len() > max {
            break;
        }
        body.extend_from_slice(&chunk);
    }
    body
}

fn basic_header(username: &str, password: &str) -> HeaderValue {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    value.set_sensitive(true);
    value
}

fn bearer_header(token: &str) -> Result<HeaderValue, RegistryError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        RegistryError::protocol("the token server sent a token that is not a valid header value")
    })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(realm: &str, service: Option<&str>, scope: Option<&str>) -> Challenge {
        Challenge::Bearer {
            realm: realm.into(),
            service: service.map(Into::into),
            scope: scope.map(Into::into),
            error: None,
        }
    }

    #[test]
    fn docker_hub_challenge() {
        let got = parse_challenges([
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        ]);
        assert_eq!(
            got,
            vec![bearer(
                "https://auth.docker.io/token",
                Some("registry.docker.io"),
                Some("repository:samalba/my-app:pull,push")
            )]
        );
    }

    #[test]
    fn basic_challenge_and_case() {
        assert_eq!(
            parse_challenges([r#"Basic realm="regcache-test""#]),
            vec![Challenge::Basic {
                realm: Some("regcache-test".into())
            }]
        );
        assert_eq!(
            parse_challenges([r#"basic REALM=x"#]),
            vec![Challenge::Basic {
                realm: Some("x".into())
            }]
        );
        assert_eq!(
            parse_challenges(["Basic"]),
            vec![Challenge::Basic { realm: None }]
        );
    }

    #[test]
    fn quoted_strings_with_commas_escapes_and_spaces() {
        let got = parse_challenges([
            r#"Bearer  realm = "https://a/t?x=1,2" , service="s \"q\" \\ x", scope="repository:a:pull,push repository:b:pull", error="insufficient_scope""#,
        ]);
        assert_eq!(
            got,
            vec![Challenge::Bearer {
                realm: "https://a/t?x=1,2".into(),
                service: Some(r#"s "q" \ x"#.into()),
                scope: Some("repository:a:pull,push repository:b:pull".into()),
                error: Some("insufficient_scope".into()),
            }]
        );
    }

    #[test]
    fn several_challenges_in_one_header_and_across_headers() {
        let got = parse_challenges([
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#,
            r#"Bearer realm=https://t.example/token,service=reg"#,
        ]);
        assert_eq!(
            got,
            vec![
                Challenge::Basic {
                    realm: Some("simple".into())
                },
                bearer("https://t.example/token", Some("reg"), None),
            ]
        );
    }

    #[test]
    fn token68_and_garbage_do_not_derail_parsing() {
        let got = parse_challenges([r#"Negotiate abc123==, Basic realm="r""#]);
        assert_eq!(
            got,
            vec![Challenge::Basic {
                realm: Some("r".into())
            }]
        );
        assert_eq!(parse_challenges([r#"Bearer service="no realm""#]), vec![]);
        assert_eq!(
            parse_challenges([r#"Bearer realm="unterminated"#]),
            vec![bearer("unterminated", None, None)]
        );
        assert_eq!(parse_challenges(["", " , ", "=\"x\""]), vec![]);
    }

    #[test]
    fn scopes_merge_compare_and_cover() {
        assert_eq!(Scopes::pull("a/b").to_params(), vec!["repository:a/b:pull"]);
        assert_eq!(
            Scopes::push("a").to_params(),
            vec!["repository:a:pull,push"]
        );
        assert_eq!(
            Scopes::mount("src/x", "dst").to_params(),
            vec!["repository:dst:pull,push", "repository:src/x:pull"]
        );
        assert!(Scopes::push("a").covers(&Scopes::pull("a")));
        assert!(!Scopes::pull("a").covers(&Scopes::push("a")));
        assert!(!Scopes::push("a").covers(&Scopes::pull("b")));
        assert!(Scopes::mount("s", "d").covers(&Scopes::pull("s")));
        assert!(Scopes::none().to_params().is_empty());
    }

    #[test]
    fn headers_are_sensitive() {
        assert!(basic_header("u", "p").is_sensitive());
        assert_eq!(basic_header("u", "p"), "Basic dTpw");
        assert!(bearer_header("t").unwrap().is_sensitive());
    }

    fn state() -> AuthState {
        AuthState::new("127.0.0.1:1", true)
    }

    async fn token_server() -> super::super::test_server::TestServer {
        use super::super::test_server::Reply;
        super::super::test_server::TestServer::start(|seen, _| {
            if seen.method == "POST" {
                Reply::new(200).body(r#"{"access_token":"from-refresh","expires_in":120}"#)
            } else {
                Reply::new(200).body(r#"{"token":"from-get"}"#)
            }
        })
        .await
    }

    #[tokio::test]
    async fn token_requests_with_basic_credentials_and_identity_tokens() {
        let server = token_server().await;
        crate::store::registry::transport::install_crypto_provider();
        let http = Client::new();
        let realm = format!("http://127.0.0.1:{}/token", server.port);
        let scopes = Scopes::mount("src/a", "dst/b");
        let basic = Credentials::Basic {
            username: "me".into(),
            password: "pw".into(),
        };
        let (token, lifetime) = state()
            .fetch_token(
                &http,
                &RetryPolicy::default(),
                &realm,
                Some("svc"),
                &scopes,
                Some(basic),
            )
            .await
            .unwrap();
        assert_eq!(
            (token.as_str(), lifetime),
            ("from-get", DEFAULT_TOKEN_LIFETIME)
        );
        let (token, lifetime) = state()
            .fetch_token(
                &http,
                &RetryPolicy::default(),
                &realm,
                Some("svc"),
                &scopes,
                Some(Credentials::IdentityToken("refresh-me".into())),
            )
            .await
            .unwrap();
        assert_eq!(
            (token.as_str(), lifetime),
            ("from-refresh", Duration::from_secs(120))
        );

        let seen = server.seen();
        // GET with both scopes in one request, basic auth and the account.
        assert_eq!(seen[0].method, "GET");
        assert_eq!(
            seen[0].target,
            "/token?service=svc&scope=repository%3Adst%2Fb%3Apull%2Cpush&scope=repository%3Asrc%2Fa%3Apull&account=me"
        );
        assert_eq!(seen[0].header("authorization"), Some("Basic bWU6cHc="));
        // The OAuth2 refresh-token grant, scopes space-separated.
        assert_eq!(seen[1].method, "POST");
        assert_eq!(seen[1].header("authorization"), None);
        let form = String::from_utf8(seen[1].body.clone()).unwrap();
        assert_eq!(
            form,
            "grant_type=refresh_token&refresh_token=refresh-me&client_id=regcache&service=svc&scope=repository%3Adst%2Fb%3Apull%2Cpush+repository%3Asrc%2Fa%3Apull"
        );
    }

    #[test]
    fn credentials_go_to_plain_http_token_servers_only_on_loopback_or_by_choice() {
        let https_registry = AuthState::new("r.example", false);
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(https_registry.may_send_credentials_to(&url("https://auth.example/token")));
        assert!(https_registry.may_send_credentials_to(&url("http://127.0.0.1:9/token")));
        assert!(https_registry.may_send_credentials_to(&url("http://[::1]:9/token")));
        assert!(!https_registry.may_send_credentials_to(&url("http://auth.example/token")));
        let insecure = AuthState::new("r.example", true);
        assert!(insecure.may_send_credentials_to(&url("http://auth.example/token")));
    }
}
