//! What users read about specs, pinned as snapshots through the real
//! binary: every kind of refused spec (stderr and exit status), the SPEC
//! help text, and the `--dry-run` plan of save, restore and copy in both
//! forms. Rewrite with `INSTA_UPDATE=always cargo test --test spec_snapshots`
//! and review every changed snapshot: they are what users see.

use std::path::Path;

use crate::common::regcache;
use crate::common::registry::{RegistryOptions, TestRegistry};

/// Temp paths and loopback ports differ per run; the rest must not.
fn settings(tmp: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    let tmp = tmp.canonicalize().unwrap_or_else(|_| tmp.to_path_buf());
    settings.add_filter(&escape(&tmp.display().to_string()), "[TMP]");
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    settings
}

/// `text` as a regex that matches it literally.
fn escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// One run as a user sees it: the command line, the exit status and both
/// streams.
fn transcript(cwd: &Path, args: &[&str]) -> String {
    let output = regcache(cwd).args(args).output().expect("run regcache");
    let shown: Vec<String> = args
        .iter()
        .map(|a| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@".contains(c))
            {
                a.to_string()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect();
    format!(
        "$ regcache {}\nexit status: {}\n--- stdout\n{}--- stderr\n{}",
        shown.join(" "),
        output
            .status
            .code()
            .map_or("killed".to_string(), |c| c.to_string()),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    )
}

/// Every value refused as `flag` on the command that takes it, one
/// transcript after another; each must exit 2 and print nothing on stdout.
fn refusals(cwd: &Path, cases: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (flag, value) in cases {
        let args: Vec<&str> = match *flag {
            "--cache-to" => vec!["save", "--cache-to", value, "d"],
            _ => vec!["restore", "--cache-from", value],
        };
        let shown = transcript(cwd, &args);
        assert!(
            shown.contains("\nexit status: 2\n--- stdout\n--- stderr\nerror: "),
            "{shown}"
        );
        out.push_str(&shown);
        out.push('\n');
    }
    out
}

#[test]
fn refused_keys() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("d")).unwrap();
    let shown = refusals(
        tmp.path(),
        &[
            ("--cache-to", "type=local,dest=out,mdoe=max"),
            ("--cache-to", "type=registry,ref=a,insecure=true"),
            ("--cache-to", "type=registry,ref=a,level=3"),
            ("--cache-to", "type=local,dest=out,zzz=1"),
            ("--cache-to", "type=local,dest=out, tag=x"),
            ("--cache-to", "type=local,dest=out,src=x"),
            ("--cache-from", "type=local,src=x,dest=y"),
            ("--cache-to", "type=local,dest=out,ref=x"),
            ("--cache-to", "type=registry,ref=a,tag=x"),
            ("--cache-from", "type=local,src=x,mdoe=max"),
            ("--cache-to", "type=registry,ref=a,scope=main"),
            ("--cache-to", "tpye=local,dest=out"),
            ("--cache-to", "dest=out"),
            ("--cache-to", "type=local"),
            ("--cache-from", "type=registry,ref="),
        ],
    );
    settings(tmp.path()).bind(|| insta::assert_snapshot!("spec_refused_keys", shown));
}

#[test]
fn refused_values() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("d")).unwrap();
    let shown = refusals(
        tmp.path(),
        &[
            ("--cache-to", "type=gha,scope=x"),
            ("--cache-to", "type=Registry,ref=a"),
            ("--cache-to", "type=local,dest=out,mode=MAX"),
            ("--cache-to", "type=local,dest=out,mode=full"),
            ("--cache-to", "type=local,dest=out,oci-mediatypes=no"),
            ("--cache-to", "type=local,dest=out,ignore-error=maybe"),
            ("--cache-from", "type=registry,ref=a,registry.insecure=yes"),
            (
                "--cache-to",
                "type=local,dest=out,oci-mediatypes=false,image-manifest=true",
            ),
            ("--cache-to", "type=local,dest=out,compression=none"),
            ("--cache-to", "type=local,dest=out,compression=brotli"),
            ("--cache-to", "type=local,dest=out,compression-level=high"),
            ("--cache-to", "type=local,dest=out,compression-level=23"),
            (
                "--cache-to",
                "type=local,dest=out,compression=gzip,compression-level=10",
            ),
            (
                "--cache-to",
                "type=local,dest=out,compression=uncompressed,compression-level=0",
            ),
            ("--cache-to", "type=local,dest=x,tag=a//b"),
            ("--cache-from", "type=local,src=x,digest=sha256:abc"),
            ("--cache-to", "type=registry,ref=User/app"),
            ("--cache-from", "ghcr.io/org/app:cache-feature/foo"),
            (
                "--cache-to",
                "type=registry,ref=a@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
        ],
    );
    settings(tmp.path()).bind(|| insta::assert_snapshot!("spec_refused_values", shown));
}

#[test]
fn refused_patterns_and_csv() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("d")).unwrap();
    let shown = refusals(
        tmp.path(),
        &[
            ("--cache-to", "ghcr.io/org/app:cache-main-*"),
            ("--cache-to", "type=local,dest=/c,tag=cache-*"),
            ("--cache-from", "ghcr.io/org/app:cache-*-main"),
            ("--cache-from", "ghcr.io/org/app:.cache-*"),
            (
                "--cache-from",
                "type=local,src=/c,tag=cache-*,digest=sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            ("--cache-to", "type=local,dest=out,foo"),
            ("--cache-to", "type=local,dest=my\"dir"),
            ("--cache-to", "type=local,\"dest=a\"b"),
            ("--cache-to", "type=local,\"dest=a"),
            ("--cache-to", "type=local,dest=a\nb"),
        ],
    );
    settings(tmp.path()).bind(|| insta::assert_snapshot!("spec_refused_patterns_and_csv", shown));
}

/// The SPEC section is the same on every command that takes specs.
#[test]
fn spec_help_text() {
    let tmp = tempfile::tempdir().unwrap();
    let section = |command: &str| {
        let output = regcache(tmp.path())
            .args([command, "--help"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{command} --help");
        let help = String::from_utf8(output.stdout).unwrap();
        let start = help
            .find("SPEC is written")
            .unwrap_or_else(|| panic!("{command} --help has no SPEC section:\n{help}"));
        // Up to the command's own examples, which differ.
        let section = &help[start..];
        let end = section.find("\n\nExamples:").unwrap_or(section.len());
        section[..end].to_string()
    };
    let save = section("save");
    // inspect takes one cache, and lists the forms of one instead.
    for command in ["restore", "copy", "run"] {
        assert_eq!(section(command), save, "{command} --help");
    }
    settings(tmp.path()).bind(|| insta::assert_snapshot!("spec_help", save));
}

/// The plan of each command in both forms, with every parameter at its
/// effective value; a real registry is named and must not be asked.
#[test]
fn dry_run_plans() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = TestRegistry::start(RegistryOptions::default());
    let host = registry.host();
    let cache = tmp.path().join("cache");
    let local = format!("type=local,dest={}", cache.display());
    let local_from = format!("type=local,src={}", cache.display());
    let to_zstd = format!("type=registry,ref={host}/app:cache-main,mode=max");
    let to_estargz =
        format!("type=registry,ref={host}/app:cache-sz,compression=estargz,registry.insecure=true");
    let to_raw = "type=local,dest=.cache/raw,compression=uncompressed".to_string();
    let to_gzip9 = "type=local,dest=.cache/gz,compression=gzip,compression-level=9".to_string();
    let from_pattern = format!("{host}/app:cache-feature-*");
    let from_main = format!("{host}/app:cache-main");
    let runs: [(&str, Vec<&str>); 3] = [
        (
            "save",
            vec![
                "save",
                "--cache-to",
                &to_zstd,
                "--cache-to",
                &local,
                "--cache-to",
                &to_raw,
                "--cache-to",
                &to_gzip9,
                "--cache-from",
                &from_main,
                "target",
                "node_modules",
            ],
        ),
        (
            "restore",
            vec![
                "restore",
                "--cache-from",
                &from_pattern,
                "--cache-from",
                &from_main,
                "--cache-from",
                &local_from,
            ],
        ),
        (
            "copy",
            vec![
                "copy",
                "--cache-from",
                &from_main,
                "--cache-to",
                &local,
                "--cache-to",
                &to_estargz,
            ],
        ),
    ];
    let settings = settings(tmp.path());
    for (name, args) in runs {
        let mut human = args.clone();
        human.push("--dry-run");
        let mut json = human.clone();
        json.push("--json");
        let human = transcript(tmp.path(), &human);
        assert!(human.contains("\nexit status: 0\n"), "{human}");
        let output = regcache(tmp.path()).args(&json).output().unwrap();
        assert!(output.status.success(), "{name} --dry-run --json");
        let plan: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
        settings.bind(|| {
            insta::assert_snapshot!(format!("dry_run_{name}"), human);
            insta::assert_json_snapshot!(format!("dry_run_{name}_json"), plan);
        });
    }
    assert!(!cache.exists(), "a dry run wrote the local cache");
    assert!(
        !registry.log().contains("/v2/app"),
        "a dry run asked the registry:\n{}",
        registry.log()
    );
}
