//! What a cache is, in a line: when it was made, its form and mode, who
//! wrote it, its entries and size. Read by `ls`, by `prune` (the creation
//! time it judges ages by) and by restore-key patterns (the newest match).
//! Pure: the caller fetches the manifest, config and entries list.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::config::CacheConfig;
use super::entries::EntriesBlob;
use super::manifest::{CacheImage, Form, RawManifest};
use super::media_types::ANNOTATION_CREATED_AT;
use super::merge::holds_only_final_results;

/// Who wrote a cache: regcache (it carries an entries list) or BuildKit
/// (or anything else that writes BuildKit's format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Writer {
    Regcache,
    Buildkit,
}

impl Writer {
    pub fn name(self) -> &'static str {
        match self {
            Writer::Regcache => "regcache",
            Writer::Buildkit => "buildkit",
        }
    }
}

/// One cache, summed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSummary {
    /// The cache's own creation time, with its text as written (see
    /// [`cache_created`]).
    pub created: Option<(SystemTime, String)>,
    pub form: Form,
    pub writer: Writer,
    /// `"min"` or `"max"`: as a regcache cache's entries list records it;
    /// for a BuildKit cache, `"max"` when it holds results a min export
    /// would drop, else `"min"`. `None`: a regcache cache whose entries list
    /// was not read.
    pub mode: Option<String>,
    /// regcache's entry paths, in the order saved; empty for BuildKit.
    pub entries: Vec<String>,
    /// The manifest's bytes plus each distinct blob it references, once.
    pub total_size: u64,
}

impl CacheSummary {
    pub fn new(
        raw: &RawManifest,
        image: &CacheImage,
        config: &CacheConfig,
        entries: Option<&EntriesBlob>,
    ) -> CacheSummary {
        let writer = if image.entries_blob().is_some() {
            Writer::Regcache
        } else {
            Writer::Buildkit
        };
        let mode = match (writer, entries) {
            (Writer::Regcache, Some(blob)) => Some(blob.mode.clone()),
            (Writer::Regcache, None) => None,
            (Writer::Buildkit, _) => Some(
                if holds_only_final_results(config) {
                    "min"
                } else {
                    "max"
                }
                .to_string(),
            ),
        };
        let mut distinct = BTreeSet::new();
        let blob_bytes = image
            .descriptors()
            .filter(|d| distinct.insert(&d.digest))
            .map(|d| d.size)
            .fold(0u64, u64::saturating_add);
        CacheSummary {
            created: cache_created(config, image),
            form: image.form,
            writer,
            mode,
            entries: entries
                .map(|blob| blob.entries.iter().map(|e| e.path.clone()).collect())
                .unwrap_or_default(),
            total_size: (raw.bytes.len() as u64).saturating_add(blob_bytes),
        }
    }
}

/// RFC 3339 as Go writes `time.Time` (`2024-05-01T10:00:00.123456789Z`,
/// or with a `+02:00` offset). Times before 1970 (Go's zero time) are
/// treated as absent.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = std::str::from_utf8(b.get(range)?).ok()?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: u64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let minutes = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let seconds = u64::try_from(seconds).ok()?;
    Some(UNIX_EPOCH + Duration::new(seconds, u32::try_from(nanos).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// When a cache was created: the newest `createdAt` among its config's
/// results, else the newest `buildkit/createdat` layer annotation (in the
/// manifest or the config). With its text as written.
pub fn cache_created(config: &CacheConfig, image: &CacheImage) -> Option<(SystemTime, String)> {
    let newest = |times: &mut dyn Iterator<Item = &String>| {
        times
            .filter_map(|text| parse_rfc3339(text).map(|t| (t, text.clone())))
            .max_by_key(|(t, _)| *t)
    };
    let mut results = config.records.iter().flat_map(|r| {
        r.results
            .iter()
            .filter_map(|res| res.created_at.as_ref())
            .chain(r.chains.iter().filter_map(|c| c.created_at.as_ref()))
    });
    if let Some(found) = newest(&mut results) {
        return Some(found);
    }
    let mut annotations = image
        .layers()
        .filter_map(|d| d.annotations.get(ANNOTATION_CREATED_AT))
        .chain(
            config
                .layers
                .iter()
                .filter_map(|l| l.annotations.as_ref()?.created_at.as_ref()),
        );
    newest(&mut annotations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_as_go_writes_it() {
        let at = |s| {
            parse_rfc3339(s)
                .map(|t| t.duration_since(UNIX_EPOCH).unwrap())
                .map(|d| (d.as_secs(), d.subsec_nanos()))
        };
        assert_eq!(at("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(
            at("2024-05-01T10:00:00.123456789Z"),
            Some((1_714_557_600, 123_456_789))
        );
        assert_eq!(
            at("2024-05-01T12:00:00.5+02:00"),
            Some((1_714_557_600, 500_000_000))
        );
        assert_eq!(at("2024-05-01T09:30:00-00:30"), Some((1_714_557_600, 0)));
        assert_eq!(at("0001-01-01T00:00:00Z"), None);
        assert_eq!(at("2024-05-01"), None);
        assert_eq!(at("2024-13-01T00:00:00Z"), None);
        assert_eq!(at("2024-05-01T10:00:00"), None);
    }

    fn fixture_config(variant: &str) -> CacheConfig {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/buildkit")
            .join(variant)
            .join("cacheconfig.json");
        CacheConfig::from_json(&std::fs::read(&path).unwrap()).unwrap()
    }

    #[test]
    fn a_buildkit_cache_s_mode_is_read_from_its_results() {
        for (variant, min) in [("min", true), ("max", false), ("max-zstd", false)] {
            assert_eq!(
                holds_only_final_results(&fixture_config(variant)),
                min,
                "{variant}"
            );
        }
    }
}
