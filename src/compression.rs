//! The layer compressions a cache can use, shared by the spec parser, the
//! layer codecs and the image model.

use std::fmt;

use serde::Serialize;

/// gzip (and estargz) level when none is asked for; BuildKit's default, so a
/// regcache layer and a BuildKit layer of the same tar are equally sized.
pub const DEFAULT_GZIP_LEVEL: u32 = 6;
/// zstd level when none is asked for (zstd's own default, as BuildKit uses).
pub const DEFAULT_ZSTD_LEVEL: u32 = 3;

/// A layer compression, as named by buildx's `compression=` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    Estargz,
    Zstd,
    Uncompressed,
}

impl Compression {
    /// Every accepted value, in the order error messages list them.
    pub const ALL: [Compression; 4] = [
        Compression::Gzip,
        Compression::Estargz,
        Compression::Zstd,
        Compression::Uncompressed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Estargz => "estargz",
            Compression::Zstd => "zstd",
            Compression::Uncompressed => "uncompressed",
        }
    }

    pub fn from_name(name: &str) -> Option<Compression> {
        Compression::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The range `compression-level` accepts for this codec, as BuildKit
    /// validates it. `None` for codecs that take no level.
    pub fn level_range(self) -> Option<std::ops::RangeInclusive<u32>> {
        match self {
            Compression::Gzip | Compression::Estargz => Some(0..=9),
            Compression::Zstd => Some(0..=22),
            Compression::Uncompressed => None,
        }
    }

    /// The level the codec uses when `compression-level` is not given.
    /// `None` for codecs that take no level.
    pub fn default_level(self) -> Option<u32> {
        match self {
            Compression::Gzip | Compression::Estargz => Some(DEFAULT_GZIP_LEVEL),
            Compression::Zstd => Some(DEFAULT_ZSTD_LEVEL),
            Compression::Uncompressed => None,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
