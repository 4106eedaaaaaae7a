//! A bearer token server for Distribution's `auth: token` mode, on a free
//! loopback port.
//!
//! Tokens are ES256 JWTs whose `x5c` header holds a self-signed certificate
//! that is also the registry's `rootcertbundle`. The claims are the ones
//! Distribution 2.8 checks (`registry/auth/token/token.go`): `iss` must be
//! the configured issuer, `aud` the configured service (a single string in
//! 2.8: an array is a malformed token), `exp`/`nbf` are checked with a
//! 60-second leeway, and `access` lists what is granted.
//!
//! Endpoints, at `/token`:
//! - `GET ?service=…&scope=…[&scope=…][&account=…][&offline_token=true]`
//!   answers `{"token","access_token","expires_in","issued_at"}` (plus
//!   `refresh_token` with `offline_token=true` and credentials).
//! - `POST` form `grant_type=password` (`username`, `password`,
//!   `access_type=offline` for a refresh token) or
//!   `grant_type=refresh_token` (`refresh_token`), with `service`, `scope`
//!   (space-separated) and `client_id`: the OAuth2 flow of identity tokens.
//!
//! Every request is recorded for assertions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::json;

use super::proxy::http::{Request, Response, Server};
use super::registry::RegistryOptions;

/// Distribution's clock-skew allowance on `exp` and `nbf`.
pub const REGISTRY_LEEWAY_SECS: i64 = 60;

/// Decides, per requested action, whether to grant it.
pub type GrantFilter = Arc<dyn Fn(&Grant) -> bool + Send + Sync>;

/// One action a client asked for, given to a [`GrantFilter`].
#[derive(Clone, Debug)]
pub struct Grant {
    /// The authenticated user, if any.
    pub user: Option<String>,
    /// `repository`, `registry`, …
    pub resource_type: String,
    pub name: String,
    pub action: String,
}

#[derive(Clone)]
pub struct TokenServerOptions {
    /// Require these credentials (HTTP basic auth on GET, the form fields of
    /// the password grant); 401 otherwise. Without it anyone gets tokens,
    /// and basic auth, if sent, only names the subject.
    pub basic_auth: Option<(String, String)>,
    /// The lifetime reported as `expires_in`.
    pub lifetime: Duration,
    /// Back-date `exp` by the registry's 60 s leeway, so that the registry
    /// really refuses the token once `lifetime` has passed (the JWT's own
    /// `exp` is then earlier than `expires_in` says).
    pub compensate_leeway: bool,
    pub service: String,
    pub issuer: String,
    /// Serve the POST (OAuth2) endpoint; without it, POST gets a 404 like
    /// token servers that only know GET.
    pub allow_post: bool,
    /// Which requested actions to grant; all of them without.
    pub grant: Option<GrantFilter>,
}

impl Default for TokenServerOptions {
    fn default() -> TokenServerOptions {
        TokenServerOptions {
            basic_auth: None,
            lifetime: Duration::from_secs(300),
            compensate_leeway: true,
            service: "regcache-test-registry".into(),
            issuer: "regcache-test-issuer".into(),
            allow_post: true,
            grant: None,
        }
    }
}

impl TokenServerOptions {
    /// Requires `registry::USER` / `registry::PASSWORD`.
    pub fn with_test_credentials() -> TokenServerOptions {
        TokenServerOptions {
            basic_auth: Some((
                super::registry::USER.into(),
                super::registry::PASSWORD.into(),
            )),
            ..TokenServerOptions::default()
        }
    }
}

/// A scope: `type:name:action[,action…]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub resource_type: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl Scope {
    /// Parses one scope (the name may itself hold colons, as in
    /// `repository:host:5000/x:pull`).
    pub fn parse(s: &str) -> Option<Scope> {
        let (resource_type, rest) = s.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        Some(Scope {
            resource_type: resource_type.to_string(),
            name: name.to_string(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

/// One request the token server received.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub method: String,
    pub service: Option<String>,
    /// Each `scope` parameter as sent.
    pub scope_params: Vec<String>,
    /// Every scope asked for, space-separated lists split.
    pub scopes: Vec<Scope>,
    /// Whether an `Authorization` header came.
    pub auth_sent: bool,
    /// The user the request authenticated as (basic auth, password grant or
    /// refresh token), if it did.
    pub user: Option<String>,
    /// POST only.
    pub grant_type: Option<String>,
    /// `offline_token=true` (GET) or `access_type=offline` (POST).
    pub offline: bool,
    pub client_id: Option<String>,
    pub account: Option<String>,
    pub status: u16,
}

impl TokenRequest {
    /// Whether the request asked for `action` on repository `name`.
    pub fn asks(&self, name: &str, action: &str) -> bool {
        self.scopes.iter().any(|s| {
            s.resource_type == "repository"
                && s.name == name
                && s.actions.iter().any(|a| a == action)
        })
    }
}

struct State {
    options: TokenServerOptions,
    signer: EcdsaKeyPair,
    rng: SystemRandom,
    cert_b64: String,
    requests: Mutex<Vec<TokenRequest>>,
    refresh_tokens: Mutex<HashMap<String, String>>,
    issued: AtomicUsize,
}

/// The running token server; stops when dropped.
pub struct TokenServer {
    /// `127.0.0.1:PORT`
    pub addr: SocketAddr,
    state: Arc<State>,
    bundle: PathBuf,
    _dir: tempfile::TempDir,
    _server: Server,
}

impl TokenServer {
    /// Makes a signing key and certificate, writes the bundle, and serves.
    pub fn start(options: TokenServerOptions) -> TokenServer {
        let key = rcgen::KeyPair::generate().expect("token signing key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "regcache test token signer");
        let cert = params.self_signed(&key).expect("token signing cert");
        let dir = tempfile::tempdir().expect("token server temp dir");
        let bundle = dir.path().join("token-root.pem");
        std::fs::write(&bundle, cert.pem()).expect("write root cert bundle");
        let rng = SystemRandom::new();
        let signer =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der(), &rng)
                .expect("load the signing key into ring");
        let state = Arc::new(State {
            options,
            signer,
            rng,
            cert_b64: STANDARD.encode(cert.der()),
            requests: Mutex::default(),
            refresh_tokens: Mutex::default(),
            issued: AtomicUsize::new(0),
        });
        let s = state.clone();
        let server = Server::start(Arc::new(move |req: &Request| s.handle(req)));
        TokenServer {
            addr: server.addr,
            state,
            bundle,
            _dir: dir,
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT/token`
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    pub fn service(&self) -> &str {
        &self.state.options.service
    }

    /// The PEM file the registry trusts token signers from.
    pub fn root_cert_bundle(&self) -> &std::path::Path {
        &self.bundle
    }

    /// The registry's `auth: token:` block, for
    /// [`RegistryOptions::extra_config`] (don't combine with `htpasswd`,
    /// which adds an `auth:` block of its own).
    pub fn registry_config(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            self.realm(),
            self.state.options.service,
            self.state.options.issuer,
            self.bundle.display()
        )
    }

    /// Registry options with just [`TokenServer::registry_config`].
    pub fn registry_options(&self) -> RegistryOptions {
        RegistryOptions {
            extra_config: Some(self.registry_config()),
            ..RegistryOptions::default()
        }
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn clear_requests(&self) {
        self.state.requests.lock().unwrap().clear();
    }

    /// Access tokens issued so far (by requests, not by [`TokenServer::mint`]).
    pub fn tokens_issued(&self) -> usize {
        self.state.issued.load(Ordering::SeqCst)
    }

    /// Signs a token directly, granting `scopes` as written (no filter),
    /// valid (to the registry) for `lifetime_secs`, which may be negative
    /// for one that is already expired.
    pub fn mint(&self, user: Option<&str>, scopes: &[&str], lifetime_secs: i64) -> String {
        let scopes: Vec<Scope> = scopes.iter().filter_map(|s| Scope::parse(s)).collect();
        self.state.sign(user, &scopes, lifetime_secs)
    }

    /// A refresh (identity) token for `user` that the POST endpoint accepts.
    pub fn identity_token(&self, user: &str) -> String {
        self.state.new_refresh_token(user)
    }

    /// Forgets every refresh token: later refresh grants get 401.
    pub fn revoke_refresh_tokens(&self) {
        self.state.refresh_tokens.lock().unwrap().clear();
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn oauth_error(status: u16, error: &str) -> Response {
    Response::json(status, &json!({ "error": error }))
}

impl State {
    fn sign(&self, user: Option<&str>, scopes: &[Scope], lifetime_secs: i64) -> String {
        let now = unix_now();
        let mut exp = now + lifetime_secs;
        if self.options.compensate_leeway {
            exp -= REGISTRY_LEEWAY_SECS;
        }
        let mut jti = [0u8; 12];
        self.rng.fill(&mut jti).expect("random jti");
        let access: Vec<_> = scopes
            .iter()
            .filter(|s| !s.actions.is_empty())
            .map(|s| json!({ "type": s.resource_type, "name": s.name, "actions": s.actions }))
            .collect();
        let header = json!({ "typ": "JWT", "alg": "ES256", "x5c": [self.cert_b64] });
        let claims = json!({
            "iss": self.options.issuer,
            "sub": user.unwrap_or(""),
            "aud": self.options.service,
            "exp": exp,
            "nbf": now,
            "iat": now,
            "jti": hex::encode(jti),
            "access": access,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .signer
            .sign(&self.rng, input.as_bytes())
            .expect("ES256 signature");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    fn new_refresh_token(&self, user: &str) -> String {
        let mut bytes = [0u8; 24];
        self.rng.fill(&mut bytes).expect("random refresh token");
        let token = format!("rt-{}", hex::encode(bytes));
        self.refresh_tokens
            .lock()
            .unwrap()
            .insert(token.clone(), user.to_string());
        token
    }

    /// The scopes with only the granted actions.
    fn granted(&self, user: Option<&str>, asked: &[Scope]) -> Vec<Scope> {
        asked
            .iter()
            .map(|s| {
                let actions = s
                    .actions
                    .iter()
                    .filter(|a| {
                        self.options.grant.as_ref().is_none_or(|f| {
                            f(&Grant {
                                user: user.map(str::to_string),
                                resource_type: s.resource_type.clone(),
                                name: s.name.clone(),
                                action: (*a).clone(),
                            })
                        })
                    })
                    .cloned()
                    .collect();
                Scope {
                    actions,
                    ..s.clone()
                }
            })
            .collect()
    }

    fn credentials_ok(&self, user: &str, password: &str) -> bool {
        self.options
            .basic_auth
            .as_ref()
            .is_none_or(|(u, p)| u == user && p == password)
    }

    fn handle(&self, req: &Request) -> Response {
        let mut record = TokenRequest {
            method: req.method.clone(),
            service: None,
            scope_params: Vec::new(),
            scopes: Vec::new(),
            auth_sent: req.header("authorization").is_some(),
            user: None,
            grant_type: None,
            offline: false,
            client_id: None,
            account: None,
            status: 0,
        };
        let response = if req.path() != "/token" {
            Response::text(404, "not found")
        } else if req.method == "GET" {
            self.handle_get(req, &mut record)
        } else if req.method == "POST" && self.options.allow_post {
            self.handle_post(req, &mut record)
        } else if req.method == "POST" {
            Response::text(404, "not found")
        } else {
            Response::text(405, "method not allowed")
        };
        record.status = response.status;
        self.requests.lock().unwrap().push(record);
        response
    }

    fn read_params(&self, params: &[(String, String)], record: &mut TokenRequest) {
        for (k, v) in params {
            match k.as_str() {
                "service" => record.service = Some(v.clone()),
                "scope" => {
                    record.scope_params.push(v.clone());
                    record.scopes.extend(v.split(' ').filter_map(Scope::parse));
                }
                "client_id" => record.client_id = Some(v.clone()),
                "account" => record.account = Some(v.clone()),
                "grant_type" => record.grant_type = Some(v.clone()),
                "offline_token" => record.offline |= v == "true",
                "access_type" => record.offline |= v == "offline",
                _ => {}
            }
        }
    }

    fn service_ok(&self, record: &TokenRequest) -> bool {
        record
            .service
            .as_ref()
            .is_none_or(|s| *s == self.options.service)
    }

    fn handle_get(&self, req: &Request, record: &mut TokenRequest) -> Response {
        self.read_params(&req.query(), record);
        let basic = req
            .header("authorization")
            .and_then(|h| {
                h.strip_prefix("Basic ")
                    .or_else(|| h.strip_prefix("basic "))
            })
            .and_then(|b| STANDARD.decode(b.trim()).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            });
        match &basic {
            Some((u, p)) if self.credentials_ok(u, p) => record.user = Some(u.clone()),
            _ if self.options.basic_auth.is_none() => {}
            _ => {
                let mut response = Response::json(
                    401,
                    &json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required", "detail": null}]}),
                );
                response.headers.push((
                    "WWW-Authenticate".into(),
                    "Basic realm=\"regcache-test-token\"".into(),
                ));
                return response;
            }
        }
        if !self.service_ok(record) {
            return oauth_error(400, "invalid_request");
        }
        let lifetime = self.options.lifetime.as_secs() as i64;
        let token = self.sign(
            record.user.as_deref(),
            &self.granted(record.user.as_deref(), &record.scopes),
            lifetime,
        );
        self.issued.fetch_add(1, Ordering::SeqCst);
        let mut body = json!({
            "token": token,
            "access_token": token,
            "expires_in": lifetime,
            "issued_at": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        });
        if record.offline
            && let Some(user) = &record.user
        {
            body["refresh_token"] = json!(self.new_refresh_token(user));
        }
        Response::json(200, &body)
    }

    fn handle_post(&self, req: &Request, record: &mut TokenRequest) -> Response {
        let form = req.form();
        self.read_params(&form, record);
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let mut refresh = None;
        match record.grant_type.as_deref() {
            Some("password") => {
                let (user, password) = (
                    field("username").unwrap_or_default(),
                    field("password").unwrap_or_default(),
                );
                if !self.credentials_ok(&user, &password) {
                    return oauth_error(401, "invalid_grant");
                }
                if record.offline {
                    refresh = Some(self.new_refresh_token(&user));
                }
                record.user = Some(user);
            }
            Some("refresh_token") => {
                let token = field("refresh_token").unwrap_or_default();
                let Some(user) = self.refresh_tokens.lock().unwrap().get(&token).cloned() else {
                    return oauth_error(401, "invalid_grant");
                };
                refresh = Some(token);
                record.user = Some(user);
            }
            _ => return oauth_error(400, "unsupported_grant_type"),
        }
        if !self.service_ok(record) {
            return oauth_error(400, "invalid_request");
        }
        let lifetime = self.options.lifetime.as_secs() as i64;
        let granted = self.granted(record.user.as_deref(), &record.scopes);
        let token = self.sign(record.user.as_deref(), &granted, lifetime);
        self.issued.fetch_add(1, Ordering::SeqCst);
        let scope: Vec<String> = granted
            .iter()
            .filter(|s| !s.actions.is_empty())
            .map(|s| format!("{}:{}:{}", s.resource_type, s.name, s.actions.join(",")))
            .collect();
        let mut body = json!({
            "access_token": token,
            "scope": scope.join(" "),
            "expires_in": lifetime,
            "issued_at": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        });
        if let Some(refresh) = refresh {
            body["refresh_token"] = json!(refresh);
        }
        Response::json(200, &body)
    }
}
