//! What a target gets of each blob of a cache image, decided from what is
//! known before anything is sent: blobs its current manifest names are
//! there already, blobs sent while the tree was packing are done, and the
//! rest are asked about, then mounted or sent. `-v` prints the plan before
//! the export carries it out.

use std::collections::HashSet;

use crate::digest::Digest;
use crate::progress::human_bytes;

use super::transfer::{EarlyUploads, Uploaded};

/// How one blob gets into the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placing {
    /// The target's current manifest names it: nothing to send.
    There,
    /// Placed while the tree was still packing.
    SentEarly(Uploaded),
    /// Asked about; sent unless the target has it or can mount it.
    Place,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlobStep {
    /// What the blob is, e.g. `target: layer sha256:…`.
    pub what: String,
    pub digest: Digest,
    pub size: u64,
    pub placing: Placing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetPlan {
    pub target: String,
    pub steps: Vec<BlobStep>,
}

/// The plan for `blobs` (what, digest, size; distinct digests) going to
/// `target`, which is known to hold `known`, with `early` placed already.
pub(crate) fn plan_target<'a>(
    target: &str,
    blobs: impl IntoIterator<Item = (&'a str, &'a Digest, u64)>,
    known: &HashSet<Digest>,
    early: &EarlyUploads,
) -> TargetPlan {
    let steps = blobs
        .into_iter()
        .map(|(what, digest, size)| {
            let placing = match early.get(digest) {
                Some(done) => Placing::SentEarly(*done),
                None if known.contains(digest) => Placing::There,
                None => Placing::Place,
            };
            BlobStep {
                what: what.to_string(),
                digest: digest.clone(),
                size,
                placing,
            }
        })
        .collect();
    TargetPlan {
        target: target.to_string(),
        steps,
    }
}

/// Names listed in a line before the rest is only counted.
const NAMED: usize = 6;

impl TargetPlan {
    /// The plan as `-v` prints it: a headline, then a line per kind of step.
    pub(crate) fn lines(&self) -> Vec<String> {
        let total: u64 = self.steps.iter().map(|s| s.size).sum();
        let mut lines = vec![format!(
            "plan for {}: {}, {}",
            self.target,
            blobs(self.steps.len()),
            human_bytes(total)
        )];
        for (title, kind) in [
            ("already there", Kind::There),
            ("sent while packing", Kind::SentEarly),
            ("to send unless present or mountable", Kind::Place),
        ] {
            let steps: Vec<&BlobStep> = self.steps.iter().filter(|s| kind.of(&s.placing)).collect();
            if steps.is_empty() {
                continue;
            }
            let bytes: u64 = steps.iter().map(|s| s.size).sum();
            let mut names: Vec<&str> = steps.iter().take(NAMED).map(|s| s.what.as_str()).collect();
            let more = steps.len().saturating_sub(NAMED);
            let more = format!("{more} more");
            if steps.len() > NAMED {
                names.push(&more);
            }
            lines.push(format!(
                "  {title}: {}, {}: {}",
                blobs(steps.len()),
                human_bytes(bytes),
                names.join(", ")
            ));
        }
        lines
    }
}

/// The kinds of step, as the plan's lines group them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    There,
    SentEarly,
    Place,
}

impl Kind {
    fn of(self, placing: &Placing) -> bool {
        let kind = match placing {
            Placing::There => Kind::There,
            Placing::SentEarly(_) => Kind::SentEarly,
            Placing::Place => Kind::Place,
        };
        kind == self
    }
}

fn blobs(n: usize) -> String {
    super::report::count(n as u64, "blob", "blobs")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn each_blob_is_there_sent_early_or_to_place() {
        let (a, b, c) = (digest(1), digest(2), digest(3));
        let known: HashSet<Digest> = [a.clone()].into();
        let early: EarlyUploads = [(b.clone(), Uploaded::Written(20))].into();
        let plan = plan_target(
            "reg/app:c",
            [("layer a", &a, 10), ("layer b", &b, 20), ("config", &c, 3)],
            &known,
            &early,
        );
        let placing: Vec<Placing> = plan.steps.iter().map(|s| s.placing).collect();
        assert_eq!(
            placing,
            [
                Placing::There,
                Placing::SentEarly(Uploaded::Written(20)),
                Placing::Place
            ]
        );
    }

    #[test]
    fn sent_early_wins_over_known() {
        // A blob both named by the old manifest and sent early counts as
        // sent: it was (the early upload found it or sent it).
        let a = digest(1);
        let known: HashSet<Digest> = [a.clone()].into();
        let early: EarlyUploads = [(a.clone(), Uploaded::Reused)].into();
        let plan = plan_target("t", [("layer a", &a, 1)], &known, &early);
        assert_eq!(plan.steps[0].placing, Placing::SentEarly(Uploaded::Reused));
    }

    #[test]
    fn the_lines_group_counted_and_named_steps() {
        let digests: Vec<Digest> = (0..9).map(digest).collect();
        let known: HashSet<Digest> = digests[..8].iter().cloned().collect();
        let names: Vec<String> = (0..9).map(|i| format!("layer {i}")).collect();
        let plan = plan_target(
            "reg/app:c",
            names
                .iter()
                .zip(&digests)
                .map(|(n, d)| (n.as_str(), d, 1024)),
            &known,
            &EarlyUploads::new(),
        );
        assert_eq!(
            plan.lines(),
            [
                "plan for reg/app:c: 9 blobs, 9.0 KiB",
                "  already there: 8 blobs, 8.0 KiB: layer 0, layer 1, layer 2, layer 3, layer 4, layer 5, 2 more",
                "  to send unless present or mountable: 1 blob, 1.0 KiB: layer 8",
            ]
        );
    }
}
