//! A real CNCF Distribution registry (`/usr/bin/docker-registry`, from
//! Debian's docker-registry package, which `make test` installs) started
//! on a free loopback port with its own configuration and storage, and
//! stopped when the handle is dropped.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "ci-bot";
pub const PASSWORD: &str = "s3cret-for-tests";

#[derive(Default, Clone)]
pub struct RegistryOptions {
    /// Require basic auth (htpasswd) for USER / PASSWORD.
    pub htpasswd: bool,
    /// Serve HTTPS with a certificate from a CA made for this registry.
    pub tls: bool,
    /// Extra YAML appended under the top level (e.g. a token auth block).
    pub extra_config: Option<String>,
    /// Disable deletes (for prune tests).
    pub no_delete: bool,
}

pub struct TestRegistry {
    child: Child,
    /// `127.0.0.1:PORT`
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    /// The CA that signed the registry's certificate (PEM), with `tls`.
    pub ca_file: Option<PathBuf>,
}

impl TestRegistry {
    pub fn start(options: RegistryOptions) -> TestRegistry {
        let bin = std::env::var("REGCACHE_TEST_REGISTRY")
            .unwrap_or_else(|_| "/usr/bin/docker-registry".to_string());
        assert!(
            Path::new(&bin).exists(),
            "{bin} is missing: run `make test`, which installs Debian's docker-registry"
        );
        let dir = tempfile::tempdir().expect("registry temp dir");
        // Retry on the rare port race between probing and the registry's bind.
        for _ in 0..5 {
            let addr = free_loopback_port();
            let mut config = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: {delete}\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: {addr}\n  secret: regcache-test-secret\n",
                root = dir.path().join("data").display(),
                delete = !options.no_delete,
            );
            let mut ca_file = None;
            if options.tls {
                let (ca, cert, key) = make_tls(dir.path());
                config.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                ));
                ca_file = Some(ca);
            }
            if options.htpasswd {
                let hash = bcrypt::hash_with_result(PASSWORD, 4)
                    .expect("bcrypt")
                    .format_for_version(bcrypt::Version::TwoY);
                let htpasswd = dir.path().join("htpasswd");
                fs::write(&htpasswd, format!("{USER}:{hash}\n")).expect("write htpasswd");
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: regcache-test\n    path: {}\n",
                    htpasswd.display()
                ));
            }
            if let Some(extra) = &options.extra_config {
                config.push_str(extra);
            }
            let config_path = dir.path().join("config.yml");
            fs::write(&config_path, config).expect("write registry config");
            let log = fs::File::create(dir.path().join("registry.log")).expect("log file");
            let child = Command::new(&bin)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            let mut child = child;
            if wait_ready(&mut child, addr) {
                return TestRegistry {
                    child,
                    addr,
                    dir,
                    ca_file,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start; see its log in the test's temp dir");
    }

    /// `127.0.0.1:PORT`, as a registry host in a ref.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `localhost:PORT`: the name the TLS certificate is issued for.
    pub fn tls_host(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_ready(child: &mut Child, addr: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

pub fn free_loopback_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free loopback port")
}

/// A CA, and a server certificate it signed for localhost and 127.0.0.1.
fn make_tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "regcache test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server params");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).expect("server cert");
    let (ca_path, cert_path, key_path) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    fs::write(&ca_path, ca_cert.pem()).expect("write CA");
    fs::write(&cert_path, cert.pem()).expect("write cert");
    fs::write(&key_path, key.serialize_pem()).expect("write key");
    (ca_path, cert_path, key_path)
}
