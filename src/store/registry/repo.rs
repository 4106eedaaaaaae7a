//! A registry repository as a whole: tags listed with pagination, resolved
//! with `HEAD`, deleted by manifest digest. A registry frees blobs in its
//! own garbage collection, so there is none to run from here.

use std::collections::HashMap;

use async_trait::async_trait;

use super::RegistryStore;
use super::manage::{Deleted, TAGS_PAGE_SIZE};
use crate::digest::Digest;
use crate::reference::Reference;
use crate::store::{
    CacheStore, DeleteOutcome, DeleteScope, Deletion, Garbage, RepoStore, StoreError, StoreOptions,
    TagListing,
};

pub struct RegistryRepo {
    base: RegistryStore,
    page_size: usize,
}

impl RegistryRepo {
    /// The repository `repository` names (its tag is not used). No I/O.
    pub fn new(
        repository: Reference,
        insecure: bool,
        options: &StoreOptions,
    ) -> Result<RegistryRepo, StoreError> {
        Ok(RegistryRepo {
            base: RegistryStore::new(repository, insecure, options)?,
            page_size: options
                .tags_page_size
                .filter(|&n| n > 0)
                .unwrap_or(TAGS_PAGE_SIZE),
        })
    }
}

#[async_trait]
impl RepoStore for RegistryRepo {
    fn describe(&self) -> String {
        self.base.repository_name()
    }

    async fn list_tags(&self) -> Result<Option<TagListing>, StoreError> {
        let tags = self
            .base
            .list_tags_inner(self.page_size)
            .await
            .map_err(|err| self.base.fail_repository("list tags", err))?;
        Ok(tags.map(|tags| TagListing { tags, untagged: 0 }))
    }

    async fn resolve_tag(&self, tag: &str) -> Result<Option<Digest>, StoreError> {
        self.base.at_tag(tag)?.manifest_digest().await
    }

    fn open_tag(&self, tag: &str) -> Result<Box<dyn CacheStore>, StoreError> {
        Ok(Box::new(self.base.at_tag(tag)?))
    }

    fn delete_scope(&self) -> DeleteScope {
        DeleteScope::Manifest
    }

    async fn delete_tags(&self, requests: &[(String, Digest)], dry_run: bool) -> DeleteOutcome {
        let mut done: HashMap<&Digest, Deletion> = HashMap::new();
        let mut error = None;
        let mut results = Vec::with_capacity(requests.len());
        for (_, digest) in requests {
            if let Some(result) = done.get(digest) {
                results.push(*result);
                continue;
            }
            let result = if error.is_some() {
                Deletion::NotTried
            } else if dry_run {
                Deletion::Deleted
            } else {
                tracing::info!("{}: deleting {digest}", self.describe());
                match self.base.delete_manifest(digest).await {
                    Ok(Deleted::Deleted) => Deletion::Deleted,
                    Ok(Deleted::AlreadyGone) => Deletion::AlreadyGone,
                    Err(err) => {
                        error = Some(err);
                        Deletion::Failed
                    }
                }
            };
            done.insert(digest, result);
            results.push(result);
        }
        DeleteOutcome { results, error }
    }

    async fn collect_garbage(
        &self,
        _dry_run: bool,
        _pending: &[String],
    ) -> Result<Option<Garbage>, StoreError> {
        Ok(None)
    }
}
