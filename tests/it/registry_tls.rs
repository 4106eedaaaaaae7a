//! HTTPS against Distribution serving a certificate from a CA made in the
//! test: trusted through `SSL_CERT_FILE`, refused without it (never
//! silently downgraded to plain HTTP), accepted unverified only when the
//! spec says `registry.insecure=true`.

use std::fs;
use std::path::Path;

use crate::common::registry::{RegistryOptions, TestRegistry};
use crate::common::{regcache, snapshot};

fn save(cwd: &Path, spec: &str, cert_file: &Path) -> std::process::Output {
    regcache(cwd)
        .env("SSL_CERT_FILE", cert_file)
        .env("HOME", cwd)
        .env("DOCKER_CONFIG", cwd.join("no-docker-config"))
        .args(["save", "--cache-to", spec, "tree"])
        .output()
        .unwrap()
}

#[test]
fn tls_registry_trusted_through_ssl_cert_file() {
    let registry = TestRegistry::start(RegistryOptions {
        tls: true,
        ..Default::default()
    });
    let ca = registry.ca_file.clone().expect("a TLS registry has a CA");
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    fs::create_dir_all(work.join("tree")).unwrap();
    fs::write(work.join("tree/f"), "over TLS").unwrap();
    let reference = format!("{}/tls/app:cache", registry.tls_host());

    let saved = save(&work, &format!("type=registry,ref={reference}"), &ca);
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    let out = tmp.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let restored = regcache(&out)
        .env("SSL_CERT_FILE", &ca)
        .args(["restore", "--cache-from", &reference])
        .output()
        .unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert_eq!(snapshot(&work.join("tree")), snapshot(&out.join("tree")));

    // The system bundle alone does not know the test CA: the export fails
    // with the TLS reason, and is not retried over plain HTTP.
    let system = Path::new("/etc/ssl/certs/ca-certificates.crt");
    assert!(
        system.is_file(),
        "{} is required (make test installs ca-certificates)",
        system.display()
    );
    let refused = save(&work, &format!("type=registry,ref={reference}"), system);
    assert_eq!(refused.status.code(), Some(1));
    let text = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(text.contains("https://"), "{text}");
    assert!(text.contains("certificate"), "{text}");

    // registry.insecure=true: HTTPS without verification, as BuildKit.
    let insecure = save(
        &work,
        &format!("type=registry,ref={reference},registry.insecure=true"),
        system,
    );
    assert!(
        insecure.status.success(),
        "{}",
        String::from_utf8_lossy(&insecure.stderr)
    );
}
