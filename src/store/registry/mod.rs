//! `type=registry`: a cache image in an OCI registry, spoken to through a
//! thin Distribution client on reqwest (why not oci-client:
//! `docs/registry-client.md`).
//!
//! - `transport`: HTTPS or plain HTTP, the endpoint, the HTTP client.
//! - `client`: the request loop (auth, retries, redirects) of one host.
//! - `auth`, `credentials`: challenges and tokens; docker's config and helpers.
//! - `upload`, `download`: blobs, chunked and resumable both ways.
//! - `retry`, `error`: backoff, `Retry-After`, the registry's error text.
//! - `manage`: listing tags and deleting manifests, for `prune`.

pub mod auth;
pub mod client;
pub mod clock;
pub mod credentials;
pub mod download;
pub mod error;
pub mod manage;
pub mod retry;
#[cfg(test)]
mod test_server;
pub mod transport;
pub mod upload;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderName};
use reqwest::{Method, StatusCode};

use self::auth::Scopes;
use self::client::{Body, RegistryClient, Request};
use self::error::RegistryError;
use self::transport::Transport;
use super::{BlobReader, CacheStore, StoreError, StoreOptions};
use crate::digest::Digest;
use crate::image::{Descriptor, RawManifest, media_types};
use crate::progress::BlobProgress;
use crate::reference::Reference;

/// Manifests larger than this are refused before they are read whole.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";
/// Every manifest type a cache can be stored as. Distribution answers
/// MANIFEST_UNKNOWN unless `Accept` names the stored type, so all of them
/// go in every request.
const MANIFEST_TYPES: [&str; 4] = [
    media_types::OCI_MANIFEST,
    media_types::OCI_INDEX,
    media_types::DOCKER_MANIFEST,
    media_types::DOCKER_MANIFEST_LIST,
];

/// Registry hosts this process talks to, keyed by host and scheme: every
/// store on one host shares its tokens, credentials and connections.
type ClientMap = HashMap<(String, Transport), Arc<RegistryClient>>;

static CLIENTS: LazyLock<Mutex<ClientMap>> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn client_for(host: &str, transport: Transport) -> Result<Arc<RegistryClient>, StoreError> {
    let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    let key = (host.to_string(), transport);
    if let Some(client) = clients.get(&key) {
        return Ok(client.clone());
    }
    let client = Arc::new(RegistryClient::new(host, transport).map_err(StoreError::Invalid)?);
    clients.insert(key, client.clone());
    Ok(client)
}

/// A cache image in a registry repository, named by a tag or a digest.
pub struct RegistryStore {
    reference: Reference,
    client: Arc<RegistryClient>,
}

impl RegistryStore {
    /// A store for `reference`. Does no I/O: the registry is first
    /// contacted by the first call that needs it.
    pub fn new(
        reference: Reference,
        insecure: bool,
        options: &StoreOptions,
    ) -> Result<RegistryStore, StoreError> {
        let transport =
            Transport::for_host(reference.registry(), insecure, &options.insecure_registries);
        let client = client_for(reference.registry(), transport)?;
        Ok(RegistryStore { reference, client })
    }

    /// How this store reaches its registry.
    pub fn transport(&self) -> Transport {
        self.client.transport
    }

    fn repository(&self) -> &str {
        self.reference.repository()
    }

    /// The digest if the reference has one, else the tag.
    fn manifest_reference(&self) -> String {
        match (self.reference.digest(), self.reference.tag()) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.to_string(),
            (None, None) => crate::reference::DEFAULT_TAG.to_string(),
        }
    }

    fn fail(&self, what: &str, err: RegistryError) -> StoreError {
        StoreError::Invalid(format!("{}: {what}: {}", self.describe(), err.message))
    }

    async fn fetch_manifest_inner(&self) -> Result<Option<RawManifest>, RegistryError> {
        let reference = self.manifest_reference();
        let url = self
            .client
            .url(&format!("v2/{}/manifests/{reference}", self.repository()))
            .await?;
        let request = Request::new(Method::GET, url, Scopes::pull(self.repository()))
            .header(ACCEPT, &MANIFEST_TYPES.join(", "));
        let mut response = self.client.send(request).await?;
        if !response.status().is_success() {
            let err = self.client.error(&Method::GET, response).await;
            if err.is_manifest_miss() {
                tracing::debug!("{}: no manifest: {err}", self.describe());
                return Ok(None);
            }
            return Err(err);
        }
        if let Some(length) = response.content_length()
            && length > MAX_MANIFEST_BYTES
        {
            return Err(RegistryError::protocol(format!(
                "the manifest is {length} bytes, more than the {MAX_MANIFEST_BYTES} accepted"
            )));
        }
        let header_digest = response
            .headers()
            .get(HeaderName::from_static(DOCKER_CONTENT_DIGEST))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| RegistryError::transport(&Method::GET, response.url(), e))?
        {
            if (bytes.len() + chunk.len()) as u64 > MAX_MANIFEST_BYTES {
                return Err(RegistryError::protocol(format!(
                    "the manifest is more than the {MAX_MANIFEST_BYTES} bytes accepted"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let actual = Digest::of(&bytes);
        if let Some(expected) = self.reference.digest()
            && &actual != expected
        {
            return Err(RegistryError::protocol(format!(
                "the manifest's content hashes to {actual}, not the {expected} asked for"
            )));
        }
        if let Some(stated) = header_digest {
            // Another algorithm than sha256 cannot be checked here.
            if let Ok(stated) = stated.trim().parse::<Digest>()
                && stated != actual
            {
                return Err(RegistryError::protocol(format!(
                    "the registry says the manifest is {stated}, its content hashes to {actual}"
                )));
            }
        }
        let media_type = match content_type {
            Some(t) if MANIFEST_TYPES.contains(&t.as_str()) => t,
            other => body_media_type(&bytes)
                .or(other)
                .unwrap_or_else(|| media_types::OCI_MANIFEST.to_string()),
        };
        Ok(Some(RawManifest::new(media_type, bytes)))
    }

    async fn has_blob_inner(&self, desc: &Descriptor) -> Result<bool, RegistryError> {
        let url = self
            .client
            .url(&format!("v2/{}/blobs/{}", self.repository(), desc.digest))
            .await?;
        // A redirect to storage means the registry has the blob; following
        // it with HEAD fails on backends that signed the URL for GET.
        let request =
            Request::new(Method::HEAD, url, Scopes::pull(self.repository())).no_redirects();
        let response = self.client.send(request).await?;
        let status = response.status();
        if status.is_success() {
            if let Some(length) = response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                && desc.size > 0
                && length != desc.size
            {
                tracing::debug!(
                    "{}: blob {} has {length} bytes in the registry, {} expected",
                    self.describe(),
                    desc.digest.short(),
                    desc.size
                );
                return Ok(false);
            }
            return Ok(true);
        }
        if status.is_redirection() {
            return Ok(true);
        }
        if status == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        Err(self.client.error(&Method::HEAD, response).await)
    }

    async fn mount_inner(&self, desc: &Descriptor, from: &str) -> Result<bool, RegistryError> {
        let mut url = self
            .client
            .url(&format!("v2/{}/blobs/uploads/", self.repository()))
            .await?;
        url.query_pairs_mut()
            .append_pair("mount", &desc.digest.to_string())
            .append_pair("from", from);
        let request = Request::new(Method::POST, url, Scopes::mount(from, self.repository()));
        let response = self.client.send(request).await?;
        match response.status() {
            StatusCode::CREATED => {
                tracing::debug!(
                    "{}: mounted blob {} from {from}",
                    self.describe(),
                    desc.digest.short()
                );
                Ok(true)
            }
            StatusCode::ACCEPTED => {
                // The registry would not mount (the source lacks the blob,
                // or the token lacks pull on it) and opened an upload
                // session instead. Cancel it; the caller uploads.
                if let Ok(session) = self.client.location(&response) {
                    let cancel =
                        Request::new(Method::DELETE, session, Scopes::push(self.repository()))
                            .no_retry();
                    if let Ok(answer) = self.client.send(cancel).await {
                        tracing::trace!("cancelled the upload session: {}", answer.status());
                    }
                }
                tracing::debug!(
                    "{}: mount of {} from {from} refused; it will be uploaded",
                    self.describe(),
                    desc.digest.short()
                );
                Ok(false)
            }
            _ => {
                let err = self.client.error(&Method::POST, response).await;
                if err.is_transient() || matches!(err.status(), Some(StatusCode::UNAUTHORIZED)) {
                    return Err(err);
                }
                tracing::debug!("{}: mount refused: {err}", self.describe());
                Ok(false)
            }
        }
    }

    async fn put_manifest_inner(&self, manifest: &RawManifest) -> Result<(), RegistryError> {
        let reference = match self.reference.tag() {
            Some(tag) => tag.to_string(),
            None => manifest.digest.to_string(),
        };
        let url = self
            .client
            .url(&format!("v2/{}/manifests/{reference}", self.repository()))
            .await?;
        let request = Request::new(Method::PUT, url, Scopes::push(self.repository()))
            .header(CONTENT_TYPE, &manifest.media_type)
            .body(Body::Bytes(Bytes::from(manifest.bytes.clone())));
        let response = self.client.send(request).await?;
        if !response.status().is_success() {
            return Err(self.client.error(&Method::PUT, response).await);
        }
        let stated = response
            .headers()
            .get(HeaderName::from_static(DOCKER_CONTENT_DIGEST))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<Digest>().ok());
        if let Some(stated) = stated
            && stated != manifest.digest
        {
            return Err(RegistryError::protocol(format!(
                "the registry stored the manifest as {stated}, not {}",
                manifest.digest
            )));
        }
        Ok(())
    }
}

/// The `mediaType` field of a manifest's JSON, when the registry's
/// Content-Type says nothing useful.
fn body_media_type(bytes: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()?
        .get("mediaType")?
        .as_str()
        .map(str::to_string)
}

#[async_trait]
impl CacheStore for RegistryStore {
    fn describe(&self) -> String {
        self.reference.to_string()
    }

    async fn fetch_manifest(&self) -> Result<Option<RawManifest>, StoreError> {
        self.fetch_manifest_inner()
            .await
            .map_err(|err| self.fail("fetch manifest", err))
    }

    async fn open_blob(&self, desc: &Descriptor) -> Result<BlobReader, StoreError> {
        download::open(self.client.clone(), self.repository(), desc)
            .await
            .map_err(|err| self.fail(&format!("blob {}", desc.digest.short()), err))
    }

    async fn has_blob(&self, desc: &Descriptor) -> Result<bool, StoreError> {
        self.has_blob_inner(desc)
            .await
            .map_err(|err| self.fail(&format!("blob {}", desc.digest.short()), err))
    }

    async fn put_blob_file(
        &self,
        desc: &Descriptor,
        file: &Path,
        progress: &dyn BlobProgress,
    ) -> Result<(), StoreError> {
        upload::upload_file(&self.client, self.repository(), desc, file, progress)
            .await
            .map_err(|err| StoreError::Invalid(format!("{}: {}", self.describe(), err.message)))
    }

    async fn put_blob_bytes(&self, desc: &Descriptor, bytes: &[u8]) -> Result<(), StoreError> {
        upload::upload_bytes(
            &self.client,
            self.repository(),
            desc,
            Bytes::copy_from_slice(bytes),
        )
        .await
        .map_err(|err| StoreError::Invalid(format!("{}: {}", self.describe(), err.message)))
    }

    async fn put_manifest(&self, manifest: &RawManifest) -> Result<(), StoreError> {
        self.put_manifest_inner(manifest)
            .await
            .map_err(|err| self.fail("push manifest", err))
    }

    fn registry_repository(&self) -> Option<(String, String)> {
        Some((
            self.reference.registry().to_string(),
            self.repository().to_string(),
        ))
    }

    async fn mount_blob(
        &self,
        desc: &Descriptor,
        from_repository: &str,
    ) -> Result<bool, StoreError> {
        if from_repository == self.repository() {
            return Ok(false);
        }
        self.mount_inner(desc, from_repository)
            .await
            .map_err(|err| self.fail(&format!("mount blob {}", desc.digest.short()), err))
    }
}
