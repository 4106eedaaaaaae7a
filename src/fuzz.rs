//! Property tests for everything that parses input a hostile cache (or a
//! user) controls: specs, references, manifests, configs, entries blobs and
//! tar layers. The property is always "no panic on any input", plus round
//! trips where a printed or re-encoded value must read back equal. The tar
//! reader's own properties live beside it, in `layer::tar_fuzz`, because
//! its module is private.
//!
//! A plain `cargo test` runs a fixed 800 to 3000 cases per property, sized
//! so the whole set stays under a minute in debug on a busy 2-core machine.
//! `make fuzz` runs every property for a wall-clock budget instead:
//!
//! - `REGCACHE_FUZZ_SECONDS=N`: repeat rounds of fresh random cases until N
//!   seconds have passed (the Makefile's `FUZZ_SECONDS`); 0 is one round;
//! - `PROPTEST_CASES=N`: cases per round, instead of each property's own;
//! - `PROPTEST_RNG_SEED=S`: replay the round a failure report names.
//!
//! Nothing is persisted to `proptest-regressions/`: a failure prints its
//! shrunk input and seed, and the project's rule is that the input becomes a
//! plain unit test beside the code it broke.

use std::collections::hash_map::RandomState;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};

mod image;
mod reference;
mod spec;

/// Runs `test` on values from `strategy`: `default_cases` of them once, or
/// rounds of them until the `REGCACHE_FUZZ_SECONDS` budget is spent. Panics
/// with the shrunk input and the seed that reproduces it.
pub(crate) fn check<S>(
    name: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let env_u64 = |var: &str| {
        std::env::var(var).ok().map(|v| {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("{var}={v:?} is not a number"))
        })
    };
    let budget = env_u64("REGCACHE_FUZZ_SECONDS").map(Duration::from_secs);
    // Timed rounds are a tenth of a plain run's, so the last one overshoots
    // the budget by seconds, not by a whole plain run.
    let round = match budget {
        Some(_) => (default_cases / 10).max(50),
        None => default_cases,
    };
    let cases = env_u64("PROPTEST_CASES").map_or(round, |n| n as u32);
    let fixed_seed = env_u64("PROPTEST_RNG_SEED");
    let start = Instant::now();
    let mut rounds = 0u64;
    loop {
        let seed = fixed_seed.unwrap_or_else(random_seed);
        let config = Config {
            cases,
            failure_persistence: None,
            rng_seed: RngSeed::Fixed(seed),
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        match runner.run(&strategy, &test) {
            Ok(()) => {}
            Err(TestError::Fail(reason, input)) => panic!(
                "{name}: {reason}\nminimal failing input: {input:#?}\n\
                 replay: PROPTEST_RNG_SEED={seed} PROPTEST_CASES={cases} cargo test --lib {name}"
            ),
            Err(TestError::Abort(reason)) => panic!("{name}: aborted: {reason}"),
        }
        rounds += 1;
        let Some(budget) = budget else { break };
        if fixed_seed.is_some() || start.elapsed() >= budget {
            break;
        }
    }
    if budget.is_some() {
        eprintln!(
            "{name}: {} cases in {rounds} rounds, {:.0?}",
            rounds * u64::from(cases),
            start.elapsed()
        );
    }
}

fn random_seed() -> u64 {
    RandomState::new().build_hasher().finish()
}

/// Test input bytes that print as an escaped byte string (`b"ab\\x00"`),
/// so that a shrunk tar or JSON input reads in a failure report and pastes
/// into a unit test.
#[derive(Clone)]
pub(crate) struct Bytes(pub Vec<u8>);

impl Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let escaped: String = self
            .0
            .iter()
            .flat_map(|&b| std::ascii::escape_default(b))
            .map(char::from)
            .collect();
        write!(f, "b\"{escaped}\" ({} bytes)", self.0.len())
    }
}

/// Bytes made from `valid` by a few of the edits that get past a format's
/// first checks and into its deeper paths: flip, overwrite, insert, delete,
/// duplicate a range elsewhere (splice), truncate.
pub(crate) fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Bytes> {
    let edits = prop::collection::vec(
        (
            0u8..6,
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            any::<u8>(),
        ),
        1..5,
    );
    edits.prop_map(move |edits| {
        let mut bytes = valid.clone();
        for (op, at, other, byte) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let i = at.index(bytes.len());
            let j = other.index(bytes.len());
            match op {
                0 => bytes[i] ^= 1 << (byte % 8),
                1 => bytes[i] = byte,
                2 => bytes.insert(i, byte),
                3 => {
                    bytes.remove(i);
                }
                4 => {
                    let (lo, hi) = (i.min(j), i.max(j));
                    let chunk = bytes[lo..hi.min(lo + 64)].to_vec();
                    let dest = (byte as usize * 7) % bytes.len();
                    bytes.splice(dest..dest, chunk);
                }
                _ => bytes.truncate(i),
            }
        }
        Bytes(bytes)
    })
}
