//! Content digests (`sha256:<64 hex>`) and the streaming hashers that check
//! them. Every blob regcache reads is untrusted until its digest and size
//! match its descriptor.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A validated `sha256:` digest. Other algorithms are refused on parse: the
/// OCI layouts and registries regcache writes only ever use sha256, and a
/// digest string is also used as a file name, so it must never hold `/`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid digest {value:?}: expected sha256: followed by 64 lowercase hex digits")]
pub struct DigestParseError {
    pub value: String,
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_sha256(Sha256::digest(bytes).into())
    }

    pub fn from_sha256(raw: [u8; 32]) -> Digest {
        Digest {
            hex: hex::encode(raw),
        }
    }

    /// The 64 hex digits, which is also the blob's file name in an OCI layout.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// A short form for human output: `sha256:0123456789ab`.
    pub fn short(&self) -> String {
        format!("sha256:{}", &self.hex[..12])
    }
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let bad = || DigestParseError {
            value: value.to_string(),
        };
        let hex = value.strip_prefix("sha256:").ok_or_else(bad)?;
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !valid {
            return Err(bad());
        }
        Ok(Digest {
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        value.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental sha256 plus a byte count.
#[derive(Clone, Default)]
pub struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    pub fn new() -> Hasher {
        Hasher::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.len += bytes.len() as u64;
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_sha256(self.sha.finalize().into()), self.len)
    }
}

/// A writer that hashes everything passing through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::new(),
        }
    }

    pub fn bytes_written(&self) -> u64 {
        self.hasher.len()
    }

    /// The inner writer, the digest and the size of what was written.
    pub fn finish(self) -> (W, Digest, u64) {
        let (digest, size) = self.hasher.finish();
        (self.inner, digest, size)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what it yields and refuses to yield more than the
/// descriptor's size, so a hostile blob cannot stream without end.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Hasher,
    expected_digest: Digest,
    expected_size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("blob {digest}: digest mismatch (content hashes to {actual})")]
    DigestMismatch { digest: Digest, actual: Digest },
    #[error(
        "blob {digest}: size mismatch: descriptor says {expected} bytes, content has {actual}; digest not verified"
    )]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected_digest: Digest, expected_size: u64) -> Self {
        VerifyingReader {
            inner,
            hasher: Hasher::new(),
            expected_digest,
            expected_size,
        }
    }

    /// Reads whatever is left (a tar reader stops at its end marker and a
    /// decoder may not read trailing padding), then checks digest and size.
    pub fn finish(mut self) -> Result<(), io::Error> {
        io::copy(&mut self, &mut io::sink())?;
        let (actual, size) = self.hasher.finish();
        if size != self.expected_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                VerifyError::SizeMismatch {
                    digest: self.expected_digest,
                    expected: self.expected_size,
                    actual: size,
                },
            ));
        }
        if actual != self.expected_digest {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                VerifyError::DigestMismatch {
                    digest: self.expected_digest,
                    actual,
                },
            ));
        }
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.expected_size.saturating_sub(self.hasher.len());
        // Read one byte past the declared size so an oversized blob is
        // noticed instead of silently truncated.
        let limit = buf
            .len()
            .min(usize::try_from(remaining + 1).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..limit])?;
        self.hasher.update(&buf[..n]);
        if self.hasher.len() > self.expected_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                VerifyError::SizeMismatch {
                    digest: self.expected_digest.clone(),
                    expected: self.expected_size,
                    actual: self.hasher.len(),
                },
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_of_empty_input_matches_sha256() {
        assert_eq!(Digest::of(b"").to_string(), EMPTY);
    }

    #[test]
    fn parse_refuses_other_algorithms_and_path_tricks() {
        assert!("sha512:abcd".parse::<Digest>().is_err());
        assert!("sha256:../../etc/passwd".parse::<Digest>().is_err());
        assert!(EMPTY.to_uppercase().parse::<Digest>().is_err());
        assert_eq!(
            EMPTY.parse::<Digest>().map(|d| d.to_string()).ok(),
            Some(EMPTY.into())
        );
    }

    #[test]
    fn verifying_reader_accepts_matching_content() {
        let data = b"hello";
        let reader = VerifyingReader::new(&data[..], Digest::of(data), 5);
        assert!(reader.finish().is_ok());
    }

    #[test]
    fn verifying_reader_names_digest_on_mismatch() {
        let reader = VerifyingReader::new(&b"hellO"[..], Digest::of(b"hello"), 5);
        let err = reader.finish().expect_err("tampered content must fail");
        assert!(err.to_string().contains("digest"), "{err}");
    }

    #[test]
    fn verifying_reader_refuses_oversized_content() {
        let mut reader = VerifyingReader::new(&b"hello world"[..], Digest::of(b"hello"), 5);
        let mut sink = Vec::new();
        assert!(reader.read_to_end(&mut sink).is_err());
    }

    #[test]
    fn verifying_reader_refuses_short_content() {
        let reader = VerifyingReader::new(&b"hell"[..], Digest::of(b"hello"), 5);
        assert!(reader.finish().is_err());
    }
}
