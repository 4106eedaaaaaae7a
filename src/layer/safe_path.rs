//! Archive names made safe to join onto the restore root.
//!
//! A name is kept as bytes (Linux file names need not be UTF-8), cleaned of
//! empty and `.` components, and refused if it could leave the root.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Normalises an archive path to `a/b/c` (no leading, trailing or doubled
/// slashes, no `.`); the empty string names the root itself. Refuses
/// absolute paths, `..` anywhere, and NUL bytes.
pub fn normalize(raw: &[u8]) -> Result<Vec<u8>, &'static str> {
    if raw.first() == Some(&b'/') {
        return Err("absolute path");
    }
    if raw.contains(&0) {
        return Err("NUL byte in name");
    }
    let mut out = Vec::with_capacity(raw.len());
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => continue,
            b".." => return Err("`..` component escapes the entry root"),
            name => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(name);
            }
        }
    }
    Ok(out)
}

/// `(parent, name)` of a normalised, non-empty path.
pub fn split_last(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&[], rel),
    }
}

/// `parent/name`, or `name` when the parent is the root.
pub fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parent.len() + 1 + name.len());
    out.extend_from_slice(parent);
    if !parent.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// Every proper ancestor of `rel`, shallowest first (`a`, `a/b` for `a/b/c`).
pub fn ancestors(rel: &[u8]) -> impl Iterator<Item = &[u8]> {
    rel.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .map(move |(i, _)| &rel[..i])
}

/// Number of components, for deepest-first ordering.
pub fn depth(rel: &[u8]) -> usize {
    if rel.is_empty() {
        0
    } else {
        1 + rel.iter().filter(|&&b| b == b'/').count()
    }
}

/// `true` if `rel` is `prefix` or lies below it.
pub fn is_within(rel: &[u8], prefix: &[u8]) -> bool {
    prefix.is_empty()
        || rel == prefix
        || (rel.starts_with(prefix) && rel.get(prefix.len()) == Some(&b'/'))
}

/// The on-disk path of a root-relative path.
pub fn on_disk(root: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(OsStr::from_bytes(rel))
    }
}

/// A name for messages: lossy UTF-8 is fine there.
pub fn lossy(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_cleans_and_refuses() {
        assert_eq!(normalize(b"./a//b/./c/").unwrap(), b"a/b/c");
        assert_eq!(normalize(b"./").unwrap(), b"");
        assert_eq!(normalize("ü/名前".as_bytes()).unwrap(), "ü/名前".as_bytes());
        assert!(normalize(b"/etc/passwd").is_err());
        assert!(normalize(b"a/../../b").is_err());
        assert!(normalize(b"..").is_err());
        assert!(normalize(b"a/..").is_err());
        assert!(normalize(b"a\0b").is_err());
        // `..` inside a longer name is an ordinary name.
        assert_eq!(normalize(b"a/..b/c..").unwrap(), b"a/..b/c..");
    }

    #[test]
    fn path_helpers() {
        assert_eq!(split_last(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_last(b"c"), (&b""[..], &b"c"[..]));
        assert_eq!(join(b"", b"c"), b"c");
        assert_eq!(join(b"a", b"c"), b"a/c");
        assert_eq!(ancestors(b"a/b/c").collect::<Vec<_>>(), [&b"a"[..], b"a/b"]);
        assert_eq!((depth(b""), depth(b"a"), depth(b"a/b")), (0, 1, 2));
        assert!(is_within(b"a/b", b"a") && is_within(b"a", b"a") && !is_within(b"ab", b"a"));
    }
}
