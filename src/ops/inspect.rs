//! `regcache inspect SPEC`: what a cache holds, for people and for scripts.

use super::OpsError;
use super::import;
use crate::image::InspectReport;
use crate::spec::CacheFrom;
use crate::spec::{ImportSource, RepoTarget};
use crate::store::{StoreErrorKind, StoreOptions};

/// Loads the cache `spec` names and describes it. Unlike restore, a cache
/// that cannot be read is an error here: the user asked about this one.
pub async fn inspect(spec: &CacheFrom, options: &StoreOptions) -> Result<InspectReport, OpsError> {
    let loaded = import::load(spec, options)
        .await
        .map_err(|source| OpsError::Import {
            location: spec.location(),
            hint: (source.kind() == StoreErrorKind::NotFound).then(|| list_hint(spec)),
            source: Box::new(source),
        })?;
    Ok(InspectReport::new(
        &loaded.raw,
        &loaded.image,
        &loaded.config,
        loaded.entries.as_ref(),
    ))
}

/// Where to look for the caches that do exist.
fn list_hint(spec: &CacheFrom) -> String {
    let repo = match &spec.source {
        ImportSource::Registry { reference, .. } => reference.name(),
        ImportSource::Local { src, .. } => format!("type=local,src={}", src.display()),
        ImportSource::Pattern { repository, .. } => match repository {
            RepoTarget::Local { dir } => format!("type=local,src={}", dir.display()),
            RepoTarget::Registry { .. } => repository.location(),
        },
    };
    format!("`regcache ls {repo}` lists the caches there")
}
