//! What a save does with each entry, decided by pure functions from what
//! the comparison with the base found, so the rules (and their thresholds)
//! are in one place and tested on their own; `pack` and `delta` carry the
//! decisions out, and `-v` and the metadata file report them.

use serde::Serialize;

/// Deltas a chain may hold on top of its full layers.
pub const MAX_DELTAS: usize = 8;

/// The chain is squashed when its deltas exceed this share of its full
/// layers' bytes (numerator, denominator): 50 %.
pub const MAX_DELTA_SHARE: (u64, u64) = (1, 2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryPlan {
    /// No usable base: every part packed.
    Full,
    /// Parts against a base: some reused, the others packed.
    Parts,
    /// Nothing changed: every layer is the base's.
    Unchanged,
    /// `mode=max`: one delta layer on the base's chain.
    Delta,
    /// `mode=max`: the chain was due for squashing; fresh full layers.
    Squash,
}

impl EntryPlan {
    pub fn name(self) -> &'static str {
        match self {
            EntryPlan::Full => "full",
            EntryPlan::Parts => "parts",
            EntryPlan::Unchanged => "unchanged",
            EntryPlan::Delta => "delta",
            EntryPlan::Squash => "squash",
        }
    }
}

/// A base chain as the delta decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainShape {
    pub deltas: usize,
    /// Uncompressed bytes of the full layers (the parts under the deltas).
    pub full_bytes: u64,
    /// Uncompressed bytes of the deltas already on it.
    pub delta_bytes: u64,
}

/// The most tar bytes one more delta may hold before the chain is due for
/// squashing: the comparison stops as soon as it finds more (no point
/// collecting a delta that will not be written).
pub fn delta_budget(chain: &ChainShape) -> u64 {
    if chain.deltas >= MAX_DELTAS {
        return 0;
    }
    let (num, den) = MAX_DELTA_SHARE;
    (chain.full_bytes.saturating_mul(num) / den).saturating_sub(chain.delta_bytes)
}

/// `mode=max`, given the paths and tar bytes of the delta the comparison
/// found: no new layer, one more delta, or a squash.
pub fn plan_delta(chain: &ChainShape, paths: usize, bytes: u64) -> EntryPlan {
    if paths == 0 {
        // An unchanged tree keeps even a full chain: nothing to add.
        EntryPlan::Unchanged
    } else if bytes > delta_budget(chain) {
        EntryPlan::Squash
    } else {
        EntryPlan::Delta
    }
}

/// A save by parts, after the fact: how many of its parts were reused.
pub fn plan_parts(had_base: bool, parts: usize, reused: usize) -> EntryPlan {
    match (had_base, reused) {
        (false, _) | (true, 0) => EntryPlan::Full,
        _ if reused == parts => EntryPlan::Unchanged,
        _ => EntryPlan::Parts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAIN: ChainShape = ChainShape {
        deltas: 2,
        full_bytes: 1000,
        delta_bytes: 100,
    };

    #[test]
    fn deltas_until_too_deep_or_too_heavy() {
        assert_eq!(plan_delta(&CHAIN, 0, 0), EntryPlan::Unchanged);
        assert_eq!(plan_delta(&CHAIN, 3, 400), EntryPlan::Delta);
        // 100 + 401 > half of 1000.
        assert_eq!(plan_delta(&CHAIN, 3, 401), EntryPlan::Squash);
        let deep = ChainShape {
            deltas: MAX_DELTAS,
            ..CHAIN
        };
        assert_eq!(plan_delta(&deep, 1, 1), EntryPlan::Squash);
        assert_eq!(plan_delta(&deep, 0, 0), EntryPlan::Unchanged);
    }

    #[test]
    fn parts_are_labelled_by_what_was_reused() {
        assert_eq!(plan_parts(false, 3, 0), EntryPlan::Full);
        assert_eq!(plan_parts(true, 3, 0), EntryPlan::Full);
        assert_eq!(plan_parts(true, 3, 1), EntryPlan::Parts);
        assert_eq!(plan_parts(true, 3, 3), EntryPlan::Unchanged);
    }
}
