//! A restore's memory must not grow with the number of files in a layer: a
//! hostile cache packs a million empty files into 10 MB of gzip. Peak RSS
//! is measured by `/usr/bin/time -v` around this same test binary, re-run
//! as a child that only restores (`make deps` installs `time`).

use crate::many_files;

use std::path::Path;
use std::process::Command;

use crate::many_files::Layer;

/// Set in the child: the work dir holding `layer.gz`.
const CHILD_DIR: &str = "REGCACHE_MEMORY_CHILD_DIR";
/// Set in the child: digest, size, diff_id and uncompressed size.
const CHILD_LAYER: &str = "REGCACHE_MEMORY_CHILD_LAYER";
/// The test's full name in the one test binary, for --exact.
const TEST_NAME: &str = "layer_memory::restore_memory_does_not_grow_with_the_number_of_files";

#[test]
fn restore_memory_does_not_grow_with_the_number_of_files() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        return child(Path::new(&dir));
    }
    // Modest sizes: a debug build restores ~5k files a second here.
    let small = peak_rss_kib(10, 1000);
    let large = peak_rss_kib(100, 1000);
    eprintln!("peak RSS: 10k files {small} KiB, 100k files {large} KiB");
    // ~0.5 KB per entry once, so 90k more files cost ~45 MB more.
    assert!(
        large < small + 20 * 1024,
        "90k more files cost {} KiB more",
        large.saturating_sub(small)
    );
    assert!(large < 100 * 1024, "peak RSS {large} KiB");
}

fn child(dir: &Path) {
    let described = std::env::var(CHILD_LAYER).unwrap();
    let fields: Vec<&str> = described.split(' ').collect();
    let layer = Layer {
        digest: fields[0].parse().unwrap(),
        size: fields[1].parse().unwrap(),
        diff_id: fields[2].parse().unwrap(),
        uncompressed: fields[3].parse().unwrap(),
    };
    let expected: u64 = fields[4].parse().unwrap();
    let stats = many_files::restore(&dir.join("layer.gz"), &layer, &dir.join("out")).unwrap();
    assert_eq!(stats.files, expected);
}

/// Builds a layer of `dirs` × `files` empty files, restores it in a child
/// process and returns that process's peak RSS.
fn peak_rss_kib(dirs: usize, files: usize) -> u64 {
    let work = tempfile::tempdir().unwrap();
    let blob = work.path().join("layer.gz");
    let layer = many_files::build_layer(&blob, dirs, files).unwrap();
    let described = format!(
        "{} {} {} {} {}",
        layer.digest,
        layer.size,
        layer.diff_id,
        layer.uncompressed,
        dirs * files
    );
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, work.path())
        .env(CHILD_LAYER, described)
        .output()
        .expect("/usr/bin/time is needed (make deps)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stderr}");
    let restored = std::fs::read_dir(work.path().join("out/d0000")).unwrap();
    assert_eq!(restored.count(), files);
    stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|kib| kib.parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in:\n{stderr}"))
}
