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
//! - `clients`: the per-host clients one process shares.
//! - `repo`: the whole repository, as a [`RepoStore`](crate::store::RepoStore).

pub mod auth;
pub mod client;
pub mod clients;
pub mod clock;
pub mod credentials;
pub mod download;
pub mod error;
pub mod manage;
pub mod repo;
pub mod retry;
#[cfg(test)]
mod test_server;
pub mod transport;
pub mod upload;

use std::path::Path;
use std::sync::Arc;

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
use crate::layer::growing::GrowingBlob;
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
        let client = options
            .registry_clients
            .client_for(reference.registry(), transport)?;
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
        err.context(what).into_store_error(Some(&self.describe()))
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
            .map_err(|err| err.into_store_error(Some(&self.describe())))
    }

    async fn put_blob_bytes(&self, desc: &Descriptor, bytes: &[u8]) -> Result<(), StoreError> {
        upload::upload_bytes(
            &self.client,
            self.repository(),
            desc,
            Bytes::copy_from_slice(bytes),
        )
        .await
        .map_err(|err| err.into_store_error(Some(&self.describe())))
    }

    fn follows_growing_blobs(&self) -> bool {
        true
    }

    async fn put_growing_blob(
        &self,
        blob: &Arc<GrowingBlob>,
        progress: &dyn BlobProgress,
    ) -> Result<Option<(Digest, u64)>, StoreError> {
        upload::upload_growing(&self.client, self.repository(), blob, progress)
            .await
            .map_err(|err| err.into_store_error(Some(&self.describe())))
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

#[cfg(test)]
mod tests {

    use super::test_server::{Reply, TestServer};
    use super::*;

    fn store(port: u16, path: &str) -> RegistryStore {
        let client = super::test_server::loopback_client(port);
        RegistryStore {
            reference: Reference::parse(&format!("127.0.0.1:{port}/{path}")).unwrap(),
            client: Arc::new(client),
        }
    }

    /// A small manifest body: its bytes are what matters, not its meaning.
    fn manifest_body(marker: &str) -> Vec<u8> {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","annotations":{{"m":"{marker}"}}}}"#,
            media_types::OCI_MANIFEST
        )
        .into_bytes()
    }

    /// A body of exactly `len` bytes that still reads as an OCI manifest.
    fn manifest_of_size(len: usize) -> Vec<u8> {
        let mut body = manifest_body("");
        let pad = len - body.len();
        // Padding inside the annotation keeps it JSON.
        let at = body.len() - 3;
        body.splice(at..at, std::iter::repeat_n(b'x', pad));
        assert_eq!(body.len(), len);
        body
    }

    /// A registry that serves other bytes under a digest is caught: the
    /// body must hash to the digest the reference names. No
    /// `Docker-Content-Digest` is sent, so only that check can refuse it.
    #[tokio::test]
    async fn a_manifest_fetched_by_digest_must_hash_to_that_digest() {
        let pushed = manifest_body("what was pushed");
        let served = manifest_body("what the registry serves");
        let (wanted, good) = (Digest::of(&pushed), Digest::of(&served));
        let body = served.clone();
        let server = TestServer::start(move |seen, _| {
            if seen.target == "/v2/" {
                return Reply::new(200);
            }
            Reply::new(200)
                .header("Content-Type", media_types::OCI_MANIFEST)
                .body(body.clone())
        })
        .await;
        let err = store(server.port, &format!("app/cache@{wanted}"))
            .fetch_manifest_inner()
            .await
            .unwrap_err();
        assert_eq!(
            err.message,
            format!("the manifest's content hashes to {good}, not the {wanted} asked for")
        );
        assert_eq!(
            server.seen().last().unwrap().target,
            format!("/v2/app/cache/manifests/{wanted}")
        );
        // The same bytes asked for by their own digest are accepted.
        let fetched = store(server.port, &format!("app/cache@{good}"))
            .fetch_manifest_inner()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(fetched.bytes, served);
        assert_eq!(fetched.digest, good);
    }

    /// By tag there is no digest to expect, but the registry's
    /// `Docker-Content-Digest` must agree with the body.
    #[tokio::test]
    async fn a_tag_whose_docker_content_digest_disagrees_with_the_body_is_refused() {
        let body = manifest_body("served");
        let (actual, stated) = (Digest::of(&body), Digest::of(b"another manifest"));
        let (served, header_for_lie) = (body.clone(), stated.to_string());
        let header_for_truth = actual.to_string();
        let server = TestServer::start(move |seen, _| {
            let reply = Reply::new(200)
                .header("Content-Type", media_types::OCI_MANIFEST)
                .body(served.clone());
            match seen.target.as_str() {
                "/v2/" => Reply::new(200),
                "/v2/app/cache/manifests/lie" => {
                    reply.header("Docker-Content-Digest", &header_for_lie)
                }
                "/v2/app/cache/manifests/truth" => {
                    reply.header("Docker-Content-Digest", &header_for_truth)
                }
                _ => reply,
            }
        })
        .await;
        let err = store(server.port, "app/cache:lie")
            .fetch_manifest_inner()
            .await
            .unwrap_err();
        assert_eq!(
            err.message,
            format!("the registry says the manifest is {stated}, its content hashes to {actual}")
        );
        for tag in ["truth", "silent"] {
            let fetched = store(server.port, &format!("app/cache:{tag}"))
                .fetch_manifest_inner()
                .await
                .unwrap()
                .unwrap();
            assert_eq!(fetched.digest, actual, "{tag}");
        }
    }

    /// Over 4 MiB by `Content-Length` is refused before the body is read;
    /// exactly 4 MiB is accepted.
    #[tokio::test]
    async fn a_manifest_over_four_mib_by_content_length_is_refused() {
        let limit = MAX_MANIFEST_BYTES as usize;
        assert_eq!(limit, 4 << 20);
        let (at_limit, over) = (manifest_of_size(limit), manifest_of_size(limit + 1));
        let server = TestServer::start(move |seen, _| match seen.target.as_str() {
            "/v2/" => Reply::new(200),
            "/v2/app/cache/manifests/over" => Reply::new(200)
                .header("Content-Type", media_types::OCI_MANIFEST)
                .body(over.clone()),
            _ => Reply::new(200)
                .header("Content-Type", media_types::OCI_MANIFEST)
                .body(at_limit.clone()),
        })
        .await;
        let err = store(server.port, "app/cache:over")
            .fetch_manifest_inner()
            .await
            .unwrap_err();
        // This wording is the Content-Length check's; the streaming check
        // words it differently.
        assert_eq!(
            err.message,
            "the manifest is 4194305 bytes, more than the 4194304 accepted"
        );
        let fetched = store(server.port, "app/cache:limit")
            .fetch_manifest_inner()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(fetched.bytes.len(), limit);
    }

    /// A chunked response has no length to check up front: the cap holds
    /// while the body streams in.
    #[tokio::test]
    async fn a_chunked_manifest_over_four_mib_is_refused_while_streaming() {
        let limit = MAX_MANIFEST_BYTES as usize;
        let (at_limit, over) = (manifest_of_size(limit), manifest_of_size(limit + 1));
        let server = TestServer::start(move |seen, _| match seen.target.as_str() {
            "/v2/" => Reply::new(200),
            "/v2/app/cache/manifests/over" => Reply::new(200)
                .header("Content-Type", media_types::OCI_MANIFEST)
                .body(over.clone())
                .chunked(),
            _ => Reply::new(200)
                .header("Content-Type", media_types::OCI_MANIFEST)
                .body(at_limit.clone())
                .chunked(),
        })
        .await;
        let err = store(server.port, "app/cache:over")
            .fetch_manifest_inner()
            .await
            .unwrap_err();
        assert_eq!(
            err.message,
            "the manifest is more than the 4194304 bytes accepted"
        );
        let fetched = store(server.port, "app/cache:limit")
            .fetch_manifest_inner()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(fetched.bytes.len(), limit);
    }

    /// The digest a registry reports for a pushed manifest must be the
    /// manifest's own: anything else means it stored other bytes.
    #[tokio::test]
    async fn a_pushed_manifest_stored_under_another_digest_is_an_error() {
        let manifest = RawManifest::new(media_types::OCI_MANIFEST, manifest_body("pushed"));
        let other = Digest::of(b"what the registry stored");
        let (right, wrong) = (manifest.digest.to_string(), other.to_string());
        let server = TestServer::start(move |seen, _| match seen.target.as_str() {
            "/v2/" => Reply::new(200),
            "/v2/app/cache/manifests/wrong" => {
                Reply::new(201).header("Docker-Content-Digest", &wrong)
            }
            "/v2/app/cache/manifests/right" => {
                Reply::new(201).header("Docker-Content-Digest", &right)
            }
            _ => Reply::new(201),
        })
        .await;
        let err = store(server.port, "app/cache:wrong")
            .put_manifest_inner(&manifest)
            .await
            .unwrap_err();
        assert_eq!(
            err.message,
            format!(
                "the registry stored the manifest as {other}, not {}",
                manifest.digest
            )
        );
        for tag in ["right", "silent"] {
            store(server.port, &format!("app/cache:{tag}"))
                .put_manifest_inner(&manifest)
                .await
                .unwrap_or_else(|err| panic!("{tag}: {err}"));
        }
        let puts: Vec<_> = server
            .seen()
            .into_iter()
            .filter(|s| s.method == "PUT")
            .collect();
        assert_eq!(puts.len(), 3);
        for put in &puts {
            assert_eq!(put.body, manifest.bytes);
            assert_eq!(put.header("content-type"), Some(media_types::OCI_MANIFEST));
        }
    }
}
