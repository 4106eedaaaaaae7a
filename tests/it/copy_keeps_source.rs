//! `copy` keeps what the user did not ask to change: a key left out of a
//! `--cache-to` takes the source's value, so a bare `--cache-to` writes the
//! same manifest bytes (the same digest) for every form, mode, codec and
//! media-type family, locally and through a real registry; a merge of
//! sources that differ takes the richer value and says so; an explicit key
//! wins. The stderr of such a merge and the `--dry-run` plan are pinned by
//! insta snapshots.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::registry::{RegistryOptions, TestRegistry};
use crate::common::{json_of, regcache};

fn fixture(variant: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/buildkit/{variant}/layout"))
}

fn local(dir: &Path) -> String {
    format!("type=local,src={}", dir.display())
}

/// The digest of the manifest a local layout tags `latest`.
fn layout_digest(dir: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn copy(cwd: &Path, from: &[&str], to: &str) -> std::process::Output {
    let mut cmd = regcache(cwd);
    // One blob at a time: the progress lines come in one order.
    cmd.env("REGCACHE_JOBS", "1").arg("copy");
    for spec in from {
        cmd.args(["--cache-from", spec]);
    }
    let output = cmd.args(["--cache-to", to]).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn inspect(cwd: &Path, spec: &str) -> serde_json::Value {
    json_of(
        &regcache(cwd)
            .args(["inspect", "--json", spec])
            .output()
            .unwrap(),
    )
}

/// Every BuildKit variant with blobs (min and max; gzip, zstd, estargz),
/// and each also in the index and Docker forms (made by an explicit copy):
/// a bare copy to a local layout, to a registry, and from the registry
/// back keeps the manifest digest, and so the form and media types.
#[test]
fn a_bare_copy_is_byte_exact_for_every_variant() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let mut sources: Vec<(String, PathBuf)> = Vec::new();
    for variant in [
        "local-min",
        "local-max",
        "local-max-zstd",
        "local-max-estargz",
    ] {
        sources.push((variant.to_string(), fixture(variant)));
        for (form, keys) in [
            ("index", "image-manifest=false"),
            ("docker", "oci-mediatypes=false"),
        ] {
            let dir = cwd.join(format!("{variant}-{form}"));
            copy(
                cwd,
                &[&local(&fixture(variant))],
                &format!("type=local,dest={},{keys}", dir.display()),
            );
            sources.push((format!("{variant}-{form}"), dir));
        }
    }
    let mut forms = std::collections::BTreeSet::new();
    let mut codecs = std::collections::BTreeSet::new();
    for (name, dir) in &sources {
        let source = inspect(cwd, &local(dir));
        let digest = layout_digest(dir);
        forms.insert(source["form"].as_str().unwrap().to_string());
        for layer in source["layers"].as_array().unwrap() {
            codecs.insert(layer["compression"].as_str().unwrap().to_string());
        }

        let out = cwd.join(format!("out-{name}"));
        copy(
            cwd,
            &[&local(dir)],
            &format!("type=local,dest={}", out.display()),
        );
        assert_eq!(layout_digest(&out), digest, "{name}: to a local layout");

        let reference = format!("{}/exact/{name}:cache", registry.host());
        copy(cwd, &[&local(dir)], &reference);
        let pushed = inspect(cwd, &reference);
        assert_eq!(pushed["manifest_digest"], digest, "{name}: to a registry");
        assert_eq!(pushed["media_type"], source["media_type"], "{name}");

        let back = cwd.join(format!("back-{name}"));
        copy(
            cwd,
            &[&reference],
            &format!("type=local,dest={}", back.display()),
        );
        assert_eq!(layout_digest(&back), digest, "{name}: from a registry");
    }
    // The variants did cover every form and codec.
    assert_eq!(
        forms.into_iter().collect::<Vec<_>>(),
        ["docker-manifest-list", "image-manifest", "oci-index"]
    );
    assert_eq!(
        codecs.into_iter().collect::<Vec<_>>(),
        ["estargz", "gzip", "zstd"]
    );
}

/// Keys the spec gives win; the rest stay the source's.
#[test]
fn an_explicit_key_wins_and_the_others_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let index = cwd.join("index");
    copy(
        cwd,
        &[&local(&fixture("local-max-zstd"))],
        &format!("type=local,dest={},image-manifest=false", index.display()),
    );
    // mode=min slims, and the form and codec stay the index's and zstd.
    let min = cwd.join("min");
    copy(
        cwd,
        &[&local(&index)],
        &format!("type=local,dest={},mode=min", min.display()),
    );
    let report = inspect(cwd, &local(&min));
    let fixture_min = inspect(cwd, &local(&fixture("local-min")));
    assert_eq!(report["form"], "oci-index");
    assert_eq!(report["results"], fixture_min["results"]);
    assert!(
        report["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["compression"] == "zstd")
    );
    // oci-mediatypes=true on a Docker list: OCI media types, and the
    // image-manifest the source had (none: an index).
    let docker = cwd.join("docker");
    copy(
        cwd,
        &[&local(&fixture("local-max"))],
        &format!("type=local,dest={},oci-mediatypes=false", docker.display()),
    );
    let oci = cwd.join("oci");
    copy(
        cwd,
        &[&local(&docker)],
        &format!("type=local,dest={},oci-mediatypes=true", oci.display()),
    );
    let report = inspect(cwd, &local(&oci));
    assert_eq!(report["form"], "oci-index");
    assert_eq!(report["results"], 8);
    // image-manifest=true on a Docker list needs OCI media types: it gets them.
    let manifest = cwd.join("manifest");
    copy(
        cwd,
        &[&local(&docker)],
        &format!("type=local,dest={},image-manifest=true", manifest.display()),
    );
    assert_eq!(
        layout_digest(&manifest),
        layout_digest(&fixture("local-max")),
        "back to BuildKit's own bytes"
    );
}

/// A merge of a min and a max cache, in different forms: the result is
/// max and an image manifest, and stderr says which values were chosen.
#[test]
fn a_merge_takes_the_richer_and_says_so() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let index = cwd.join("min-index");
    copy(
        cwd,
        &[&local(&fixture("local-min"))],
        &format!("type=local,dest={},image-manifest=false", index.display()),
    );
    let reference = format!("{}/merged/app:cache", registry.host());
    let output = copy(
        cwd,
        &[&local(&index), &local(&fixture("local-max-zstd"))],
        &reference,
    );
    let report = inspect(cwd, &reference);
    assert_eq!(report["form"], "image-manifest");
    let max = inspect(cwd, &local(&fixture("local-max-zstd")));
    assert_eq!(report["results"], max["results"]);

    // Blobs go several at once, so their lines come in the order they
    // finish: sorted here, the rest kept in place.
    let stderr = String::from_utf8(output.stderr).unwrap();
    let is_transfer = |l: &&str| l.starts_with("blob ") || l.starts_with("cache config ");
    let mut transfers: Vec<&str> = stderr.lines().filter(is_transfer).collect();
    transfers.sort_unstable();
    let mut sorted = transfers.into_iter();
    let stderr: String = stderr
        .lines()
        .map(|l| {
            if is_transfer(&l) {
                sorted.next().unwrap_or(l)
            } else {
                l
            }
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.add_filter(&literal(&cwd.display().to_string()), "[tmp]");
    settings.add_filter(&literal(env!("CARGO_MANIFEST_DIR")), "[repo]");
    settings.add_filter(&literal(&registry.host()), "[registry]");
    settings.add_filter(r"\d+\.\d\ds", "[secs]");
    settings.bind(|| insta::assert_snapshot!("copy_merge_stderr", stderr));

    // A key given is no choice: nothing to say about it.
    let output = copy(
        cwd,
        &[&local(&index), &local(&fixture("local-max-zstd"))],
        &format!(
            "type=local,dest={},mode=max,image-manifest=true",
            cwd.join("quiet").display()
        ),
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("differ"), "{stderr}");
}

/// A regcache cache merged from a min and a max one records max, the mode
/// written, not the first cache's.
#[test]
fn a_merge_of_regcache_caches_records_the_mode_written() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    for dir in ["a", "b"] {
        fs::create_dir_all(cwd.join(dir)).unwrap();
        fs::write(cwd.join(dir).join("f"), dir).unwrap();
    }
    for (mode, path) in [("min", "a"), ("max", "b")] {
        regcache(cwd)
            .args([
                "save",
                "--cache-to",
                &format!("type=local,dest={},mode={mode}", cwd.join(mode).display()),
                path,
            ])
            .assert()
            .success();
    }
    let out = cwd.join("out");
    copy(
        cwd,
        &[&local(&cwd.join("min")), &local(&cwd.join("max"))],
        &format!("type=local,dest={}", out.display()),
    );
    let listing = json_of(
        &regcache(cwd)
            .args(["ls", "--json", &local(&out)])
            .output()
            .unwrap(),
    );
    assert_eq!(listing["tags"][0]["mode"], "max", "{listing}");
    assert_eq!(listing["tags"][0]["entries"], serde_json::json!(["a", "b"]));
}

#[test]
fn dry_run_shows_what_comes_from_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = |json: bool| {
        let mut cmd = regcache(tmp.path());
        cmd.args(["copy", "--dry-run"]);
        if json {
            cmd.arg("--json");
        }
        let output = cmd
            .args([
                "--cache-from",
                "type=local,src=in",
                "--cache-from",
                "user/app:cache",
            ])
            .args(["--cache-to", "type=local,dest=out"])
            .args([
                "--cache-to",
                "type=registry,ref=user/app:copy,mode=max,compression=zstd",
            ])
            .args([
                "--cache-to",
                "type=local,dest=lvl,compression-level=9,force-compression=true",
            ])
            .output()
            .unwrap();
        assert!(output.status.success());
        output
    };
    let text = String::from_utf8(plan(false).stdout).unwrap();
    let json = json_of(&plan(true));
    assert_eq!(json["cache_to"][0]["mode"], "as the source");
    assert_eq!(json["cache_to"][1]["mode"], "max");
    assert_eq!(json["cache_to"][1]["oci_mediatypes"], "as the source");
    assert_eq!(json["cache_to"][2]["compression"], "as the source");
    assert_eq!(json["cache_to"][2]["compression_level"], 9);
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::assert_snapshot!("copy_dry_run_text", text);
        insta::assert_json_snapshot!("copy_dry_run_json", json);
    });
}

/// `text` as a regex that matches it literally.
fn literal(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_ascii_alphanumeric() {
            true => c.to_string(),
            false => format!("\\x{{{:x}}}", c as u32),
        })
        .collect()
}
