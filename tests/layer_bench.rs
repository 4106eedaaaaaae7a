//! Throughput check, not a pass/fail test: run by hand with
//! `LAYER_BENCH_DIR=/some/tree cargo test --release --test layer_bench -- --ignored --nocapture`
//! and compare with `tar -c | zstd -T0` and `zstd -d | tar -x` on the same tree.
//! `LAYER_BENCH_SYNC=1` includes a final sync in the restore time (fair on a
//! real disk); `LAYER_BENCH_CODECS=gzip|all` picks the codecs.

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use regcache::compression::Compression;
use regcache::layer::{EntryRestorer, LayerSource, PackOptions, pack_dir};

#[test]
#[ignore = "benchmark; needs LAYER_BENCH_DIR"]
fn pack_and_restore_throughput() {
    let Some(tree) = std::env::var_os("LAYER_BENCH_DIR").map(PathBuf::from) else {
        eprintln!("set LAYER_BENCH_DIR to a tree to measure");
        return;
    };
    let compressions = match std::env::var("LAYER_BENCH_CODECS").as_deref() {
        Ok("gzip") => vec![Compression::Gzip],
        Ok("all") => vec![Compression::Zstd, Compression::Gzip],
        _ => vec![Compression::Zstd],
    };
    let sync = std::env::var_os("LAYER_BENCH_SYNC").is_some();
    let work = tempfile::tempdir_in(tree.parent().unwrap()).unwrap();
    for compression in compressions {
        for round in 0..2 {
            let spool = work.path().join(format!("spool-{compression}-{round}"));
            fs::create_dir(&spool).unwrap();
            if sync {
                // SAFETY: sync has no preconditions.
                unsafe { libc::sync() };
            }
            let started = Instant::now();
            let opts = PackOptions {
                compression,
                ..PackOptions::default()
            };
            let packed = pack_dir(&tree, &spool, &opts).unwrap();
            let pack_time = started.elapsed();
            let compressed: u64 = packed.layers.iter().map(|l| l.size).sum();
            let tar: u64 = packed.layers.iter().map(|l| l.uncompressed_size).sum();

            let target = work.path().join(format!("out-{compression}-{round}"));
            let started = Instant::now();
            let mut restorer = EntryRestorer::new(&target).unwrap();
            for layer in &packed.layers {
                restorer
                    .apply_layer(LayerSource {
                        reader: fs::File::open(&layer.blob).unwrap(),
                        digest: layer.digest.clone(),
                        size: layer.size,
                        compression,
                        diff_id: Some(layer.diff_id.clone()),
                        max_uncompressed: Some(layer.uncompressed_size),
                    })
                    .unwrap();
            }
            restorer.finish().unwrap();
            if sync {
                // On a real disk, count the time until the data is durable:
                // page-cache tricks would otherwise decide the comparison.
                // SAFETY: sync has no preconditions.
                unsafe { libc::sync() };
            }
            let restore_time = started.elapsed();
            let mb = tar as f64 / 1e6;
            eprintln!(
                "{compression} round {round}: {} layers, tar {mb:.0} MB -> {:.0} MB; pack {:.2}s ({:.0} MB/s), restore {:.2}s ({:.0} MB/s)",
                packed.layers.len(),
                compressed as f64 / 1e6,
                pack_time.as_secs_f64(),
                mb / pack_time.as_secs_f64(),
                restore_time.as_secs_f64(),
                mb / restore_time.as_secs_f64(),
            );
            fs::remove_dir_all(&spool).unwrap();
            fs::remove_dir_all(&target).unwrap();
            if sync {
                // SAFETY: sync has no preconditions.
                unsafe { libc::sync() };
            }
        }
    }
}
