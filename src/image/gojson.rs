//! JSON encoding that matches Go's `encoding/json.Marshal` byte for byte.
//!
//! Manifests and cache configs are content-addressed: re-encoding what
//! BuildKit wrote must give the same bytes, or the digest (and with it every
//! reference to the blob) changes. serde_json already emits compact output
//! with fields in declaration order; what differs is string escaping: Go
//! escapes `<`, `>`, `&`, U+2028 and U+2029 as `\u003c`-style sequences.

use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;

struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()>
    where
        W: ?Sized + io::Write,
    {
        let mut start = 0;
        for (at, ch) in fragment.char_indices() {
            let escaped = match ch {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..at])?;
            writer.write_all(escaped.as_bytes())?;
            start = at + ch.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Compact JSON, escaped as Go escapes it.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut serializer)?;
    Ok(out)
}

/// For `#[serde(deserialize_with)]`: Go encodes a nil slice or map as `null`
/// and decodes `null` as empty, so a reader of Go-written JSON must too.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    let value: Option<T> = serde::Deserialize::deserialize(deserializer)?;
    Ok(value.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn escapes_html_characters_like_go() {
        let mut map = BTreeMap::new();
        map.insert("a<b", "x>y & z\u{2028}\u{2029}");
        let bytes = to_vec(&map).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"a\u003cb":"x\u003ey \u0026 z\u2028\u2029"}"#
        );
    }

    #[test]
    fn control_characters_and_quotes_escape_as_go_does() {
        let bytes = to_vec("tab\t nl\n q\" bs\\ \u{1}").unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#""tab\t nl\n q\" bs\\ \u0001""#
        );
    }

    #[test]
    fn null_decodes_as_empty() {
        #[derive(serde::Deserialize)]
        struct S {
            #[serde(default, deserialize_with = "null_as_default")]
            v: Vec<u32>,
        }
        let s: S = serde_json::from_str(r#"{"v":null}"#).unwrap();
        assert!(s.v.is_empty());
        let s: S = serde_json::from_str(r#"{}"#).unwrap();
        assert!(s.v.is_empty());
    }
}
