//! PAX extended-header records and the nanosecond timestamps they carry.
//!
//! A record is `"<len> <key>=<value>\n"` where `<len>` counts the whole
//! record, its own digits included. Values are raw bytes and may hold
//! newlines, so records are split by their length, never by `\n`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A modification time with nanosecond precision, as `stat` gives it:
/// seconds since the epoch (negative before 1970) plus `0..1e9` nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MTime {
    pub secs: i64,
    pub nanos: u32,
}

impl MTime {
    pub fn new(secs: i64, nanos: u32) -> MTime {
        MTime {
            secs: secs.saturating_add(i64::from(nanos / 1_000_000_000)),
            nanos: nanos % 1_000_000_000,
        }
    }

    pub fn to_system_time(self) -> SystemTime {
        let nanos = Duration::from_nanos(u64::from(self.nanos));
        if self.secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(self.secs.unsigned_abs()) + nanos
        } else {
            UNIX_EPOCH - Duration::from_secs(self.secs.unsigned_abs()) + nanos
        }
    }

    /// The PAX `mtime` value: decimal seconds with the fraction's trailing
    /// zeros dropped (`1700000000.5`, `1700000000`), negative times written
    /// as a negative decimal (`-1.25` is 1.25 s before the epoch). This is
    /// Go's archive/tar format, so BuildKit and regcache agree byte for byte.
    pub fn to_pax(self) -> String {
        if self.nanos == 0 {
            return self.secs.to_string();
        }
        let (sign, secs, nanos) = if self.secs < 0 {
            ("-", -(self.secs + 1), 1_000_000_000 - self.nanos)
        } else {
            ("", self.secs, self.nanos)
        };
        let text = format!("{sign}{secs}.{nanos:09}");
        text.trim_end_matches('0').to_string()
    }

    /// Parses a PAX time value; fraction digits beyond nanoseconds are
    /// truncated, as Go and GNU tar do.
    pub fn from_pax(value: &[u8]) -> Option<MTime> {
        let text = std::str::from_utf8(value).ok()?;
        let (negative, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, frac) = match text.split_once('.') {
            Some((whole, frac)) => (whole, frac),
            None => (text, ""),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || !(frac.is_empty() || digits(frac)) {
            return None;
        }
        let secs: i64 = whole.parse().ok()?;
        let mut nanos: u32 = 0;
        for (i, b) in frac.bytes().take(9).enumerate() {
            nanos += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
        }
        if !negative {
            return Some(MTime::new(secs, nanos));
        }
        if nanos == 0 {
            return Some(MTime::new(-secs, 0));
        }
        Some(MTime::new(-secs - 1, 1_000_000_000 - nanos))
    }
}

/// Appends one record to `out`.
pub fn push_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    // key, value, ' ', '=', '\n', plus the length's own digits, which can
    // push the total over a power of ten.
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + decimal_digits(len) {
        len = rest + decimal_digits(len);
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn decimal_digits(mut n: usize) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

/// One `(key, value)` record.
pub type Record<'a> = (&'a [u8], &'a [u8]);

/// Splits PAX data into records, by each record's length.
/// `Err` carries a reason for a malformed record.
pub fn parse_records(mut data: &[u8]) -> Result<Vec<Record<'_>>, &'static str> {
    let mut records = Vec::new();
    // Some writers pad the data with NULs.
    while !data.is_empty() && data[0] != 0 {
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or("record without a length")?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("record length is not a number")?;
        if len <= space + 1 || len > data.len() {
            return Err("record length out of range");
        }
        let record = &data[space + 1..len];
        let Some((&b'\n', body)) = record.split_last() else {
            return Err("record does not end with a newline");
        };
        let eq = body
            .iter()
            .position(|&b| b == b'=')
            .ok_or("record without '='")?;
        records.push((&body[..eq], &body[eq + 1..]));
        data = &data[len..];
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtime_formats_like_go() {
        assert_eq!(
            MTime::new(1_700_000_000, 123_456_789).to_pax(),
            "1700000000.123456789"
        );
        assert_eq!(
            MTime::new(1_700_000_000, 500_000_000).to_pax(),
            "1700000000.5"
        );
        assert_eq!(MTime::new(1_700_000_000, 0).to_pax(), "1700000000");
        assert_eq!(MTime::new(-2, 750_000_000).to_pax(), "-1.25");
        assert_eq!(MTime::new(0, 1).to_pax(), "0.000000001");
    }

    #[test]
    fn mtime_parse_inverts_format() {
        for t in [
            MTime::new(1_700_000_000, 123_456_789),
            MTime::new(5, 0),
            MTime::new(-2, 750_000_000),
            MTime::new(-7, 0),
            MTime::new(0, 1),
        ] {
            assert_eq!(
                MTime::from_pax(t.to_pax().as_bytes()),
                Some(t),
                "{}",
                t.to_pax()
            );
        }
        assert_eq!(
            MTime::from_pax(b"12.1234567899"),
            Some(MTime::new(12, 123_456_789))
        );
        // Go accepts a bare trailing dot; so do we.
        assert_eq!(MTime::from_pax(b"7."), Some(MTime::new(7, 0)));
        for bad in [&b""[..], b".5", b"abc", b"1.2.3", b"--1", b"1e5"] {
            assert_eq!(MTime::from_pax(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn system_time_conversion_handles_times_before_the_epoch() {
        let after = MTime::new(1, 5).to_system_time();
        assert_eq!(after, UNIX_EPOCH + Duration::new(1, 5));
        let before = MTime::new(-2, 750_000_000).to_system_time();
        assert_eq!(before, UNIX_EPOCH - Duration::from_millis(1250));
    }

    #[test]
    fn record_length_counts_its_own_digits() {
        let mut out = Vec::new();
        push_record(&mut out, "path", b"a");
        assert_eq!(out, b"9 path=a\n");
        // 4 + 93 + 3 = 100 bytes of text plus three digits: crosses 100.
        let mut out = Vec::new();
        let value = vec![b'x'; 93];
        push_record(&mut out, "path", &value);
        assert_eq!(&out[..4], b"103 ");
        assert_eq!(out.len(), 103);
    }

    #[test]
    fn records_are_split_by_length_so_values_may_hold_newlines() {
        let mut out = Vec::new();
        push_record(&mut out, "path", b"odd\nname");
        push_record(&mut out, "mtime", b"1.5");
        let records = parse_records(&out).unwrap();
        assert_eq!(
            records,
            vec![
                (&b"path"[..], &b"odd\nname"[..]),
                (&b"mtime"[..], &b"1.5"[..])
            ]
        );
    }

    #[test]
    fn malformed_records_are_refused() {
        for bad in [
            &b"5 a=b"[..],
            b"x path=a\n",
            b"99 path=a\n",
            b"9 pathxa\n",
            b"3 \n",
        ] {
            assert!(parse_records(bad).is_err(), "{bad:?}");
        }
    }
}
