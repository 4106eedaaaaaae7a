//! regcache's entries: each saved PATH is one record of the cache config,
//! keyed by a digest BuildKit never computes, whose result is the tip of the
//! entry's layer chain. The entries blob (`application/vnd.regcache.entries.v1+json`)
//! carries what the config cannot: the path itself and its counts. It rides
//! in the image as one more descriptor, which BuildKit's importer ignores
//! because the config does not name it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::ImageError;
use super::config::CacheConfig;
use super::descriptor::Descriptor;
use super::manifest::CacheImage;
use crate::digest::Digest;

pub const ENTRY_NAMESPACE: &str = "regcache.dev/entry/v1";

/// The version of the entries blob this code reads and writes.
const ENTRIES_VERSION: u32 = 1;

/// The record digest of the entry for `path`: sha256 of the namespace, a NUL
/// and the path. BuildKit's keys are digests of build steps, so it never
/// matches one of these and imports such a cache harmlessly.
pub fn entry_record_digest(path: &str) -> Digest {
    let mut input = Vec::with_capacity(ENTRY_NAMESPACE.len() + 1 + path.len());
    input.extend_from_slice(ENTRY_NAMESPACE.as_bytes());
    input.push(0);
    input.extend_from_slice(path.as_bytes());
    Digest::of(&input)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntriesBlob {
    pub version: u32,
    /// "min" or "max", the mode the cache was saved with.
    pub mode: String,
    pub entries: Vec<EntryMeta>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryMeta {
    /// The PATH as given to `save`.
    pub path: String,
    /// Always `entry_record_digest(path)`; stored so a reader can find the
    /// record without recomputing, and checked on read.
    pub record: Digest,
    /// Layer blob digests, base first.
    pub layers: Vec<Digest>,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// Bytes of file content (not of the tar).
    pub bytes: u64,
    /// The entry's state list (`application/vnd.regcache.filelist.v1+json+zstd`,
    /// a blob the manifest lists beside this one): what the next save
    /// compares its walk with. Absent in caches of older regcache versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filelist: Option<Digest>,
    /// `mode=max`: how many of the top layers are deltas on the full
    /// layers below (absent: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deltas: u32,
    /// What the PATH was: absent for a directory, so a directory entry's
    /// blob is byte for byte what earlier versions wrote.
    #[serde(default, skip_serializing_if = "EntryKind::is_dir")]
    pub kind: EntryKind,
}

/// A saved PATH is a directory (the layers hold paths below it) or a
/// single regular file (one layer, one file, restored at the PATH itself).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    #[default]
    Dir,
    File,
}

impl EntryKind {
    pub fn is_dir(&self) -> bool {
        *self == EntryKind::Dir
    }

    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Dir => "directory",
            EntryKind::File => "file",
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl EntriesBlob {
    /// Parses and checks an entries blob: a version this code knows, a known
    /// mode, and entries with a non-empty, unique path whose record digest
    /// matches it.
    pub fn from_json(bytes: &[u8]) -> Result<EntriesBlob, ImageError> {
        // The version is checked on its own first: a future version may
        // change the rest of the layout, and "unknown version" is the useful
        // message then, not a missing-field error.
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let versioned: Versioned =
            serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
                what: "regcache entries blob",
                source,
            })?;
        check_version(versioned.version)?;
        let blob: EntriesBlob =
            serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
                what: "regcache entries blob",
                source,
            })?;
        blob.validate()?;
        Ok(blob)
    }

    pub fn to_json(&self) -> Result<Vec<u8>, ImageError> {
        self.validate()?;
        serde_json::to_vec(self).map_err(|source| ImageError::Json {
            what: "encoding regcache entries blob",
            source,
        })
    }

    pub fn find(&self, path: &str) -> Option<&EntryMeta> {
        self.entries.iter().find(|e| e.path == path)
    }

    fn validate(&self) -> Result<(), ImageError> {
        check_version(self.version)?;
        if self.mode != "min" && self.mode != "max" {
            return Err(ImageError::InvalidEntries(format!(
                "mode {:?} is neither \"min\" nor \"max\"",
                self.mode
            )));
        }
        let mut seen = BTreeSet::new();
        for (i, entry) in self.entries.iter().enumerate() {
            if entry.path.is_empty() {
                return Err(ImageError::InvalidEntries(format!(
                    "entry {i} has an empty path"
                )));
            }
            if !seen.insert(entry.path.as_str()) {
                return Err(ImageError::InvalidEntries(format!(
                    "entry {i}: path {:?} appears more than once",
                    entry.path
                )));
            }
            let expected = entry_record_digest(&entry.path);
            if entry.record != expected {
                return Err(ImageError::InvalidEntries(format!(
                    "entry {i} ({:?}): record {} is not the path's record digest {expected}",
                    entry.path, entry.record
                )));
            }
        }
        Ok(())
    }
}

fn check_version(version: u32) -> Result<(), ImageError> {
    if version == ENTRIES_VERSION {
        return Ok(());
    }
    Err(ImageError::InvalidEntries(format!(
        "version {version} is not known to this regcache (it reads version {ENTRIES_VERSION}); \
         upgrade regcache to read this cache"
    )))
}

/// The layer descriptors of the entry for `path`, base first: its record,
/// the record's first result, that layer's parent chain, and each chain
/// layer's blob in the manifest.
pub fn entry_chain<'a>(
    image: &'a CacheImage,
    config: &CacheConfig,
    path: &str,
) -> Result<Vec<&'a Descriptor>, ImageError> {
    let digest = entry_record_digest(path);
    let mut records = config
        .records
        .iter()
        .filter(|r| r.digest == digest)
        .peekable();
    if records.peek().is_none() {
        return Err(ImageError::EntryNotFound {
            path: path.to_string(),
        });
    }
    let tip = records
        .find_map(|r| r.results.first())
        .ok_or_else(|| ImageError::EntryWithoutResult {
            path: path.to_string(),
        })?
        .layer;
    config
        .chain(tip)?
        .into_iter()
        .map(|index| {
            let blob = &config
                .layers
                .get(index)
                .ok_or_else(|| {
                    ImageError::InvalidConfig(format!("layer index {index} is out of range"))
                })?
                .blob;
            image
                .find_blob(blob)
                .ok_or_else(|| ImageError::MissingBlob {
                    path: path.to_string(),
                    digest: blob.clone(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(path: &str) -> EntryMeta {
        EntryMeta {
            path: path.to_string(),
            record: entry_record_digest(path),
            layers: vec![Digest::of(b"layer")],
            files: 3,
            dirs: 1,
            symlinks: 0,
            hardlinks: 0,
            bytes: 42,
            filelist: None,
            deltas: 0,
            kind: EntryKind::Dir,
        }
    }

    fn blob(entries: Vec<EntryMeta>) -> EntriesBlob {
        EntriesBlob {
            version: 1,
            mode: "max".into(),
            entries,
        }
    }

    #[test]
    fn record_digest_is_namespaced_sha256_of_the_path() {
        assert_eq!(
            entry_record_digest("target"),
            Digest::of(b"regcache.dev/entry/v1\0target")
        );
        assert_ne!(entry_record_digest("a"), entry_record_digest("b"));
    }

    #[test]
    fn round_trips() {
        let original = blob(vec![meta("target"), meta("/root/.cargo/registry")]);
        let parsed = EntriesBlob::from_json(&original.to_json().unwrap()).unwrap();
        assert_eq!(parsed, original);
        assert_eq!(parsed.find("target").map(|e| e.bytes), Some(42));
    }

    #[test]
    fn the_state_list_field_is_optional() {
        let with = EntryMeta {
            filelist: Some(Digest::of(b"list")),
            ..meta("target")
        };
        let parsed = EntriesBlob::from_json(&blob(vec![with.clone()]).to_json().unwrap()).unwrap();
        assert_eq!(parsed.entries[0], with);
        // Written by a regcache without state lists: the same bytes as before.
        let json = String::from_utf8(blob(vec![meta("a")]).to_json().unwrap()).unwrap();
        assert!(!json.contains("filelist"), "{json}");
    }

    #[test]
    fn a_file_entry_says_so_and_a_directory_entry_is_written_as_before() {
        let file = EntryMeta {
            kind: EntryKind::File,
            ..meta("Cargo.lock")
        };
        let json = String::from_utf8(blob(vec![file.clone()]).to_json().unwrap()).unwrap();
        assert!(json.contains(r#""kind":"file""#), "{json}");
        assert_eq!(
            EntriesBlob::from_json(json.as_bytes()).unwrap().entries[0],
            file
        );
        let json = String::from_utf8(blob(vec![meta("target")]).to_json().unwrap()).unwrap();
        assert!(!json.contains("kind"), "{json}");
        // Blobs of earlier versions have no kind: every entry a directory.
        let old = format!(
            r#"{{"version":1,"mode":"min","entries":[{{"path":"t","record":"{}","layers":[],"files":0,"dirs":0,"symlinks":0,"hardlinks":0,"bytes":0}}]}}"#,
            entry_record_digest("t")
        );
        let parsed = EntriesBlob::from_json(old.as_bytes()).unwrap();
        assert_eq!(parsed.entries[0].kind, EntryKind::Dir);
    }

    #[test]
    fn unknown_versions_are_refused() {
        let mut b = blob(vec![meta("x")]);
        b.version = 2;
        let json = serde_json::to_vec(&b).unwrap();
        let err = EntriesBlob::from_json(&json).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
        // Even when the rest of the layout is one this code cannot read.
        let err = EntriesBlob::from_json(br#"{"version":3,"paths":{}}"#).unwrap_err();
        assert!(err.to_string().contains("version 3"), "{err}");
    }

    #[test]
    fn empty_duplicate_and_mismatched_paths_are_refused() {
        for entries in [
            vec![meta("")],
            vec![meta("a"), meta("a")],
            vec![EntryMeta {
                record: entry_record_digest("b"),
                ..meta("a")
            }],
        ] {
            let json = serde_json::to_vec(&blob(entries)).unwrap();
            assert!(matches!(
                EntriesBlob::from_json(&json),
                Err(ImageError::InvalidEntries(_))
            ));
        }
    }

    #[test]
    fn unknown_modes_are_refused() {
        let mut b = blob(vec![]);
        b.mode = "maximum".into();
        assert!(EntriesBlob::from_json(&serde_json::to_vec(&b).unwrap()).is_err());
    }
}
