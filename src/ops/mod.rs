//! The commands, written against the [`CacheStore`](crate::store::CacheStore)
//! trait: `save` exports, `restore` imports tolerantly, `inspect` reports,
//! `prune` removes old cache tags, `ls` lists a repository's caches.

pub mod copy;
pub mod entry_path;
pub mod import;
pub mod inspect;
pub mod ls;
pub mod pattern;
pub mod plan;
pub mod prune;
pub mod report;
pub mod restore;
pub mod run;
pub mod save;
mod save_base;
pub mod spool;
pub mod target;
mod target_plan;
pub mod transfer;

use crate::image::ImageError;
use crate::layer::{PackError, UnpackError};
use crate::spec::SpecError;
use crate::store::StoreError;

/// What can stop a command. [`OpsError::exit_code`] maps each kind to the
/// exit status the design promises: 2 for configuration, 1 for the rest.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// Boxed: a spec error carries the whole flag value and hint, and would
    /// make every `Result` of this module large.
    #[error(transparent)]
    Spec(Box<SpecError>),
    /// A request that parsed but cannot be carried out as configured.
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Image(#[from] ImageError),
    #[error("saving {path}: {source}")]
    Pack {
        path: String,
        #[source]
        source: Box<PackError>,
    },
    #[error("restoring {path} from {from}: {source}")]
    Unpack {
        path: String,
        from: String,
        #[source]
        source: Box<UnpackError>,
    },
    #[error("export to {target} failed: {message}")]
    Export {
        target: String,
        message: String,
        hint: Option<String>,
    },
    /// A cache the user asked about (inspect) cannot be read.
    #[error("{location}: {}", import::without_location(&source.to_string(), location))]
    Import {
        location: String,
        #[source]
        source: Box<import::ImportError>,
        /// For when the source has none of its own.
        hint: Option<String>,
    },
    #[error("{0}")]
    Failed(String),
}

impl OpsError {
    pub fn exit_code(&self) -> i32 {
        match self {
            OpsError::Spec(_) | OpsError::Usage { .. } => 2,
            _ => 1,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            OpsError::Usage { hint, .. } | OpsError::Export { hint, .. } => hint.clone(),
            OpsError::Unpack { source, .. } => source.hint(),
            OpsError::Store(err) => err.hint(),
            OpsError::Spec(err) => err.hint().map(str::to_string),
            OpsError::Import { source, hint, .. } => source.hint().or_else(|| hint.clone()),
            _ => None,
        }
    }
}

impl From<SpecError> for OpsError {
    fn from(err: SpecError) -> OpsError {
        OpsError::Spec(Box::new(err))
    }
}

/// Runs blocking work (file walking, compression, extraction) off the
/// async runtime's worker threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, OpsError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| OpsError::Failed(format!("a worker thread stopped: {err}")))
}
