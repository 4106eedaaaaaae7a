//! How a registry is reached: HTTPS unless it is on this machine or the
//! user named it insecure, the endpoint behind a reference's host, and the
//! one HTTP client of the process (system roots plus `SSL_CERT_FILE`).

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::{Certificate, Client, Url};

use super::auth::is_loopback_host;
use crate::reference::DOCKER_HUB;

/// Docker Hub's API endpoint: `docker.io` is only a name.
const DOCKER_HUB_ENDPOINT: &str = "registry-1.docker.io";
/// System CA bundles, as the common distributions place them. They are
/// added to `SSL_CERT_FILE`'s certificates, because the platform verifier
/// reads only that file when the variable is set.
const SYSTEM_BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// What [`Url::parse`] fails with (the `url` crate's `ParseError`, named
/// through reqwest, which does not re-export it).
pub type UrlError = <Url as std::str::FromStr>::Err;

/// Why nothing can be sent to a registry: found before any request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// The host as written in the ref makes no URL: `999.999.999.999`
    /// passes as a name but is read as an IPv4 address, and is none.
    #[error("{host} is not a usable registry address: {source}")]
    BadAddress {
        host: String,
        #[source]
        source: UrlError,
    },
    /// The process's HTTP client could not be built (its TLS setup).
    #[error("cannot set up the HTTP client: {source}")]
    Client {
        #[source]
        source: Arc<reqwest::Error>,
    },
}

impl TransportError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            TransportError::BadAddress { host, .. } => Some(format!(
                "check the registry host {host} in the ref: a DNS name, an IPv4 address or \
                 [IPv6], then :PORT if any"
            )),
            TransportError::Client { .. } => None,
        }
    }
}

/// How to reach one registry host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transport {
    /// Plain HTTP may be used when the host does not speak HTTPS: for
    /// loopback registries, `registry.insecure=true` in the spec and hosts
    /// named by `--insecure-registry`. HTTPS is still tried first, as
    /// docker does, so a loopback registry with TLS (the test registry's
    /// `localhost:PORT`) keeps it.
    pub allow_plain_http: bool,
    /// Certificates are not verified: only for hosts the user named
    /// insecure (as docker and BuildKit treat insecure registries), never
    /// merely for being on loopback.
    pub skip_verify: bool,
}

impl Transport {
    /// `host` is a reference's registry, with its port if any.
    /// `--insecure-registry HOST` covers every port of HOST, `HOST:PORT`
    /// only that port.
    pub fn for_host(host: &str, spec_insecure: bool, insecure_registries: &[String]) -> Transport {
        let listed = insecure_registries.iter().any(|entry| {
            let entry = entry.trim();
            let entry = entry
                .strip_prefix("http://")
                .or_else(|| entry.strip_prefix("https://"))
                .unwrap_or(entry)
                .trim_end_matches('/');
            entry.eq_ignore_ascii_case(host)
                || (!has_port(entry) && entry.eq_ignore_ascii_case(host_without_port(host)))
        });
        let insecure = spec_insecure || listed;
        Transport {
            allow_plain_http: insecure || is_loopback_host(host_without_port(host)),
            skip_verify: insecure,
        }
    }
}

fn has_port(host: &str) -> bool {
    host_without_port(host).len() != host.len()
}

/// `host:5000` → `host`, `[::1]:5000` → `[::1]`.
pub fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// The base URL of a registry's API (`…/` with `v2/…` joined onto it).
pub fn base_url(host: &str, plain_http: bool) -> Result<Url, TransportError> {
    let endpoint = if host == DOCKER_HUB {
        DOCKER_HUB_ENDPOINT
    } else {
        host
    };
    let scheme = if plain_http { "http" } else { "https" };
    Url::parse(&format!("{scheme}://{endpoint}/")).map_err(|source| TransportError::BadAddress {
        host: host.to_string(),
        source,
    })
}

/// The process's HTTP client, built on first use: one that verifies
/// certificates and one that does not (for insecure registries). Each
/// serves every registry: it pools connections per host by itself.
pub fn http_client(skip_verify: bool) -> Result<&'static Client, TransportError> {
    static VERIFYING: OnceLock<Result<Client, TransportError>> = OnceLock::new();
    static TRUSTING: OnceLock<Result<Client, TransportError>> = OnceLock::new();
    let cell = if skip_verify { &TRUSTING } else { &VERIFYING };
    cell.get_or_init(|| build_client(skip_verify))
        .as_ref()
        .map_err(Clone::clone)
}

/// Makes ring the process's TLS provider, which every reqwest client needs
/// (reqwest is built without one). Idempotent.
///
/// ring, not aws-lc-rs (reqwest's default): aws-lc seeds its generator by
/// measuring CPU jitter, about 20 ms of CPU in every process that builds a
/// client, which was a sixth of a no-op save; and ring builds without
/// cmake.
pub fn install_crypto_provider() {
    // An error only says a provider is installed already, as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn build_client(skip_verify: bool) -> Result<Client, TransportError> {
    install_crypto_provider();
    let builder = Client::builder()
        .user_agent(concat!("regcache/", env!("CARGO_PKG_VERSION")))
        // Redirects are followed by hand, so that credentials only ever
        // go to the registry itself (see client.rs).
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(30))
        // A read that stalls this long is a dead connection; retries and
        // resumption take over.
        .read_timeout(Duration::from_secs(120))
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true);
    let builder = if skip_verify {
        builder.tls_danger_accept_invalid_certs(true)
    } else {
        builder.tls_certs_merge(extra_roots())
    };
    builder.build().map_err(|err| TransportError::Client {
        source: Arc::new(err),
    })
}

/// Certificates to trust beside the platform's: those in `SSL_CERT_FILE`,
/// plus the system bundle, which the platform verifier skips when that
/// variable is set.
fn extra_roots() -> Vec<Certificate> {
    let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) else {
        return Vec::new();
    };
    let file = Path::new(&file);
    let mut roots = read_bundle(file);
    if roots.is_empty() {
        tracing::warn!(
            "SSL_CERT_FILE={}: no certificate could be read from it",
            file.display()
        );
    }
    let same = |p: &Path| std::fs::canonicalize(p).ok() == std::fs::canonicalize(file).ok();
    if let Some(system) = SYSTEM_BUNDLES
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .filter(|p| !same(p))
    {
        roots.extend(read_bundle(system));
    }
    roots
}

fn read_bundle(path: &Path) -> Vec<Certificate> {
    match std::fs::read(path) {
        Ok(pem) => Certificate::from_pem_bundle(&pem).unwrap_or_else(|err| {
            tracing::warn!("{}: not a PEM certificate bundle: {err}", path.display());
            Vec::new()
        }),
        Err(err) => {
            tracing::warn!("cannot read {}: {err}", path.display());
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insecure(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn plain(host: &str, spec: bool, list: &[&str]) -> bool {
        Transport::for_host(host, spec, &insecure(list)).allow_plain_http
    }

    #[test]
    fn loopback_registries_may_use_plain_http_and_keep_verification() {
        for host in [
            "localhost",
            "localhost:5000",
            "LOCALHOST:1",
            "127.0.0.1",
            "127.0.0.1:5000",
            "127.200.3.4:80",
            "[::1]",
            "[::1]:5000",
            "[0:0:0:0:0:0:0:1]:5000",
        ] {
            let t = Transport::for_host(host, false, &[]);
            assert!(t.allow_plain_http, "{host}");
            assert!(!t.skip_verify, "{host}");
        }
        for host in [
            "docker.io",
            "ghcr.io",
            "registry.example.com:5000",
            "128.0.0.1:5000",
            "10.0.0.1",
            "[::2]:5000",
            "localhost.example.com",
            "127.0.0.1.nip.io:5000",
        ] {
            assert_eq!(
                Transport::for_host(host, false, &[]),
                Transport {
                    allow_plain_http: false,
                    skip_verify: false
                },
                "{host}"
            );
        }
    }

    #[test]
    fn spec_insecure_and_insecure_registry_flags() {
        assert_eq!(
            Transport::for_host("r.example:5000", true, &[]),
            Transport {
                allow_plain_http: true,
                skip_verify: true
            }
        );
        let list = ["r.example", "other.example:5000", "http://third.example/"];
        assert!(plain("r.example", false, &list));
        assert!(
            plain("r.example:5000", false, &list),
            "HOST covers every port"
        );
        assert!(plain("R.EXAMPLE:443", false, &list));
        assert!(plain("other.example:5000", false, &list));
        assert!(
            !plain("other.example", false, &list),
            "HOST:PORT is that port only"
        );
        assert!(!plain("other.example:5001", false, &list));
        assert!(plain("third.example", false, &list));
        assert!(!plain("r.example.org", false, &list));
        assert!(plain("[fd00::1]:5000", false, &["[fd00::1]"]));
        assert!(Transport::for_host("r.example", false, &insecure(&list)).skip_verify);
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            base_url("docker.io", false).unwrap().as_str(),
            "https://registry-1.docker.io/"
        );
        assert_eq!(
            base_url("ghcr.io", false).unwrap().as_str(),
            "https://ghcr.io/"
        );
        assert_eq!(
            base_url("127.0.0.1:5000", true).unwrap().as_str(),
            "http://127.0.0.1:5000/"
        );
        assert_eq!(
            base_url("[::1]:5000", true).unwrap().as_str(),
            "http://[::1]:5000/"
        );
        assert_eq!(
            base_url("localhost:5000", true)
                .unwrap()
                .join("v2/a/b/manifests/t")
                .unwrap()
                .as_str(),
            "http://localhost:5000/v2/a/b/manifests/t"
        );
    }

    #[test]
    fn a_host_that_makes_no_url_is_a_typed_error_naming_it() {
        let err = base_url("999.999.999.999:5000", false).unwrap_err();
        assert!(
            matches!(&err, TransportError::BadAddress { host, .. } if host == "999.999.999.999:5000"),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("999.999.999.999:5000 is not a usable registry address: "),
            "{err}"
        );
        let hint = err.hint().expect("a hint");
        assert!(hint.contains("999.999.999.999:5000"), "{hint}");
    }

    #[test]
    fn ports_are_split_off_correctly() {
        assert_eq!(host_without_port("h:5000"), "h");
        assert_eq!(host_without_port("h"), "h");
        assert_eq!(host_without_port("[::1]:5000"), "[::1]");
        assert_eq!(host_without_port("[::1]"), "[::1]");
    }
}
