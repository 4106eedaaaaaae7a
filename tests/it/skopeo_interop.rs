//! Another OCI tool reads what regcache writes: skopeo inspects and copies
//! regcache caches through a real Distribution registry, and what it copies
//! (to another repository, or to an OCI layout directory) still restores.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::registry::{RegistryOptions, TestRegistry};
use crate::common::{build_rich_tree, regcache, snapshot};
use sha2::{Digest, Sha256};

fn skopeo(args: &[&str]) -> Output {
    let output = Command::new("skopeo").args(args).output();
    output.unwrap_or_else(|e| panic!("skopeo is required (make test installs it): {e}"))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn sha256(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// Saves `tree` to `reference` with `params`; returns the manifest digest
/// the metadata file names.
fn save(work: &Path, reference: &str, params: &str) -> String {
    let meta = work.join("meta.json");
    regcache(work)
        .args([
            "save",
            "--metadata-file",
            meta.to_str().unwrap(),
            "--cache-to",
            &format!("type=registry,ref={reference}{params}"),
            "tree",
        ])
        .assert()
        .success();
    let meta: serde_json::Value = serde_json::from_slice(&fs::read(meta).unwrap()).unwrap();
    meta["cache_to"][0]["digest"].as_str().unwrap().to_string()
}

/// Restores `tree` from `spec` into a fresh directory and compares it with
/// the saved one.
fn assert_restores(work: &Path, spec: &str) {
    let out = tempfile::tempdir().unwrap();
    regcache(out.path())
        .args(["restore", "--fail-on-miss", "--cache-from", spec])
        .assert()
        .success();
    assert_eq!(
        snapshot(&work.join("tree")),
        snapshot(&out.path().join("tree")),
        "{spec}"
    );
}

/// The image-manifest form (regcache's default) in both compressions
/// skopeo knows: its raw manifest is the one regcache wrote, its config
/// is the cache config, and a copy to a registry or to an OCI layout
/// restores the same tree.
#[test]
fn skopeo_inspects_and_copies_the_image_manifest_form() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    build_rich_tree(&work.join("tree"));
    let host = registry.host();
    for compression in ["gzip", "zstd"] {
        let source = format!("{host}/app/cache:{compression}");
        let digest = save(&work, &source, &format!(",compression={compression}"));

        let raw = skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{source}"),
        ]);
        assert!(raw.status.success(), "{}", stderr(&raw));
        assert_eq!(sha256(&raw.stdout), digest, "{compression}");
        let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
        let media_type = manifest["layers"][0]["mediaType"].as_str().unwrap();
        assert!(
            media_type.ends_with(&format!("+{compression}")),
            "{media_type}"
        );

        let config = skopeo(&[
            "inspect",
            "--config",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{source}"),
        ]);
        assert!(config.status.success(), "{}", stderr(&config));
        assert_eq!(
            sha256(&config.stdout),
            manifest["config"]["digest"].as_str().unwrap()
        );
        let config: serde_json::Value = serde_json::from_slice(&config.stdout).unwrap();
        assert_eq!(config["records"].as_array().map(Vec::len), Some(1));

        let copy = format!("{host}/app/copy:{compression}");
        let copied = skopeo(&[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{source}"),
            &format!("docker://{copy}"),
        ]);
        assert!(copied.status.success(), "{}", stderr(&copied));
        assert_restores(&work, &copy);

        let layout = tmp.path().join(format!("layout-{compression}"));
        let exported = skopeo(&[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{source}"),
            &format!("oci:{}:{compression}", layout.display()),
        ]);
        assert!(exported.status.success(), "{}", stderr(&exported));
        assert_restores(
            &work,
            &format!("type=local,src={},tag={compression}", layout.display()),
        );
    }
}

/// skopeo refuses the index forms (`image-manifest=false`, OCI index or
/// Docker manifest list), as it refuses BuildKit's own: it reads every
/// entry of an index as a child manifest, but a cache index lists blobs
/// (the layers and the cache config), which the registry will not serve
/// as manifests. Pinned so that a change on either side is noticed.
#[test]
fn skopeo_refuses_the_index_forms_because_their_entries_are_blobs() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    build_rich_tree(&work.join("tree"));
    let host = registry.host();
    for (tag, params) in [
        ("oci-index", ",image-manifest=false"),
        ("docker-list", ",oci-mediatypes=false"),
    ] {
        let source = format!("{host}/app/cache:{tag}");
        let digest = save(&work, &source, params);
        // The raw index itself is readable, byte for byte.
        let raw = skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{source}"),
        ]);
        assert!(raw.status.success(), "{}", stderr(&raw));
        assert_eq!(sha256(&raw.stdout), digest, "{tag}");
        let index: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
        let first_blob = index["manifests"][0]["digest"].as_str().unwrap();

        let copied = skopeo(&[
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{source}"),
            &format!("docker://{host}/app/copy:{tag}"),
        ]);
        assert!(
            !copied.status.success(),
            "{tag}: skopeo copied an index of blobs"
        );
        let text = stderr(&copied);
        assert!(
            text.contains(&format!("reading manifest {first_blob}")),
            "{tag}: {text}"
        );
        // The cache itself is untouched and still restores.
        assert_restores(&work, &source);
    }
}
