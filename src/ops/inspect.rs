//! `regcache inspect SPEC`: what a cache holds, for people and for scripts.

use super::OpsError;
use super::import;
use crate::image::InspectReport;
use crate::spec::CacheFrom;
use crate::store::StoreOptions;

/// Loads the cache `spec` names and describes it. Unlike restore, a cache
/// that cannot be read is an error here: the user asked about this one.
pub async fn inspect(spec: &CacheFrom, options: &StoreOptions) -> Result<InspectReport, OpsError> {
    let loaded = import::load(spec, options)
        .await
        .map_err(|reason| OpsError::Failed(format!("{spec}: {reason}")))?;
    Ok(InspectReport::new(
        &loaded.raw,
        &loaded.image,
        &loaded.config,
        loaded.entries.as_ref(),
    ))
}
