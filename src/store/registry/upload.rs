//! Blob uploads: a single PUT for small blobs; for large ones, chunked
//! PATCHes of a size the registry accepts (`OCI-Chunk-Min-Length`), each
//! streamed from the file. After a failed chunk the registry is asked how
//! much it holds (`GET` on the upload URL, `Range` header) and the upload
//! resumes from there; only when the registry has dropped the session does
//! it start over.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderName, RANGE};
use reqwest::{Method, StatusCode, Url};
use tokio::sync::mpsc;

use super::auth::Scopes;
use super::client::{Body, RegistryClient, Request};
use super::error::{ErrorKind, RegistryError, display_url};
use super::retry::retry_after;
use crate::digest::Digest;
use crate::image::Descriptor;
use crate::layer::growing::{Ending, GrowingBlob};
use crate::progress::BlobProgress;

/// Chunk size when the registry states no minimum, and the largest blob
/// sent in a single request. Measured against Distribution 2.8 on
/// loopback (1 GiB blob): 16 MiB chunks reach ~215 MiB/s, 32 MiB ~255 MiB/s,
/// the same as one monolithic PUT by curl (~250 MiB/s); larger chunks gain
/// nothing and re-send more after a failure.
pub const DEFAULT_CHUNK: u64 = 32 << 20;
const CHUNK_MIN_LENGTH: &str = "oci-chunk-min-length";
const OCTET_STREAM: &str = "application/octet-stream";

/// Where an upload session stands: the URL of its next request and the
/// bytes the registry holds.
struct Session {
    url: Url,
    offset: u64,
    chunk: u64,
}

enum Step {
    Done,
    /// The registry forgot the session: start a new one.
    Restart(RegistryError),
}

/// Uploads `size` bytes of `path` as blob `digest` into `repository`,
/// reporting bytes to `progress` as they are sent (each byte once, even
/// when a chunk is re-sent).
pub async fn upload_file(
    client: &RegistryClient,
    repository: &str,
    desc: &Descriptor,
    path: &Path,
    progress: &dyn BlobProgress,
) -> Result<(), RegistryError> {
    let length = tokio::fs::metadata(path)
        .await
        .map_err(|err| RegistryError::protocol(format!("{}: {err}", path.display())))?
        .len();
    if length != desc.size {
        return Err(RegistryError::protocol(format!(
            "{}: {length} bytes, but blob {} has {}",
            path.display(),
            desc.digest,
            desc.size
        )));
    }
    let (sender, mut receiver) = mpsc::unbounded_channel::<u64>();
    let upload = upload_source(client, repository, desc, Source::File(path, sender));
    tokio::pin!(upload);
    let mut reported = 0u64;
    let mut report = |reached: u64| {
        if reached > reported {
            progress.advance(reached - reported);
            reported = reached;
        }
    };
    loop {
        tokio::select! {
            result = &mut upload => {
                while let Ok(reached) = receiver.try_recv() {
                    report(reached);
                }
                if result.is_ok() {
                    report(desc.size);
                }
                return result;
            }
            Some(reached) = receiver.recv() => report(reached),
        }
    }
}

/// Uploads a blob while its packer is still writing it, as `docker push`
/// streams a layer: one session, one `PATCH` whose body follows the file to
/// its last byte, then the closing `PUT ?digest=` with the digest known only
/// now. Returns the blob's digest and size, or `None` when its packer gave
/// up (the session is left for the registry to expire). Not retried: the
/// caller sends the finished file again if this fails.
pub async fn upload_growing(
    client: &RegistryClient,
    repository: &str,
    blob: &Arc<GrowingBlob>,
    progress: &dyn BlobProgress,
) -> Result<Option<(Digest, u64)>, RegistryError> {
    let what = format!("stream part {} to {repository}", blob.part());
    let session = start(client, repository)
        .await
        .map_err(|e| e.context(&what))?;
    let (sender, mut receiver) = mpsc::unbounded_channel::<u64>();
    let request = Request::new(Method::PATCH, session.url.clone(), Scopes::push(repository))
        .header(CONTENT_TYPE, OCTET_STREAM)
        .body(Body::Growing {
            blob: Arc::clone(blob),
            progress: Some(sender),
        })
        .no_retry();
    let send = client.send(request);
    tokio::pin!(send);
    let mut reported = 0u64;
    let result = loop {
        tokio::select! {
            result = &mut send => break result,
            Some(reached) = receiver.recv() => {
                progress.advance(reached.saturating_sub(reported));
                reported = reported.max(reached);
            }
        }
    };
    let abandoned = || matches!(blob.growth().ending, Some(Ending::Abandoned));
    let response = match result {
        Ok(response) => response,
        // The body stops with an error when its packer gives up.
        Err(_) if abandoned() => return Ok(None),
        Err(err) => return Err(err.context(&what)),
    };
    let Some(Ending::Done { digest, size }) = blob.growth().ending else {
        return Ok(None);
    };
    if response.status() != StatusCode::ACCEPTED {
        return Err(client.error(&Method::PATCH, response).await.context(&what));
    }
    if let Some(held) = parse_range(response.headers())
        && held != size
    {
        return Err(RegistryError::protocol(format!(
            "{what}: the registry holds {held} bytes of {size}"
        )));
    }
    progress.advance(size.saturating_sub(reported));
    let session = Session {
        url: client.location(&response)?,
        offset: size,
        chunk: session.chunk,
    };
    let desc = Descriptor::new(String::new(), digest.clone(), size);
    match finish(client, repository, &desc, session)
        .await
        .map_err(|e| e.context(&what))?
    {
        Step::Done => Ok(Some((digest, size))),
        Step::Restart(err) => Err(err.context(&what)),
    }
}

/// Uploads a small blob held in memory.
pub async fn upload_bytes(
    client: &RegistryClient,
    repository: &str,
    desc: &Descriptor,
    bytes: Bytes,
) -> Result<(), RegistryError> {
    if bytes.len() as u64 != desc.size {
        return Err(RegistryError::protocol(format!(
            "blob {} has {} bytes, not the {} its descriptor says",
            desc.digest,
            bytes.len(),
            desc.size
        )));
    }
    upload_source(client, repository, desc, Source::Bytes(bytes)).await
}

enum Source<'a> {
    File(&'a Path, mpsc::UnboundedSender<u64>),
    Bytes(Bytes),
}

impl Source<'_> {
    fn body(&self, offset: u64, len: u64) -> Body {
        match self {
            Source::File(path, progress) => Body::File {
                path: path.to_path_buf(),
                offset,
                len,
                progress: Some(progress.clone()),
            },
            Source::Bytes(bytes) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let end = usize::try_from(offset + len)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                Body::Bytes(bytes.slice(start..end))
            }
        }
    }
}

async fn upload_source(
    client: &RegistryClient,
    repository: &str,
    desc: &Descriptor,
    source: Source<'_>,
) -> Result<(), RegistryError> {
    let what = format!("upload blob {} to {}", desc.digest.short(), repository);
    let mut restarts = 0;
    loop {
        let session = start(client, repository)
            .await
            .map_err(|e| e.context(&what))?;
        let step = if desc.size <= session.chunk {
            monolithic(client, repository, desc, &source, session).await
        } else {
            chunked(client, repository, desc, &source, session).await
        };
        match step.map_err(|e| e.context(&what))? {
            Step::Done => return Ok(()),
            Step::Restart(err) => {
                restarts += 1;
                if restarts >= client.retry.attempts {
                    return Err(err.context(&what));
                }
                let wait = client.retry.delay(restarts, None);
                tracing::info!(
                    "{what}: {err}; starting the upload again in {} ms",
                    wait.as_millis()
                );
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// `POST /v2/NAME/blobs/uploads/`: a new upload session.
async fn start(client: &RegistryClient, repository: &str) -> Result<Session, RegistryError> {
    let url = client
        .url(&format!("v2/{repository}/blobs/uploads/"))
        .await?;
    let response = client
        .send(Request::new(Method::POST, url, Scopes::push(repository)))
        .await?;
    if response.status() != StatusCode::ACCEPTED {
        return Err(client.error(&Method::POST, response).await);
    }
    let min = response
        .headers()
        .get(HeaderName::from_static(CHUNK_MIN_LENGTH))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    Ok(Session {
        url: client.location(&response)?,
        offset: 0,
        chunk: chunk_size(min),
    })
}

/// The chunk size for a registry stating `min` as `OCI-Chunk-Min-Length`.
pub fn chunk_size(min: u64) -> u64 {
    DEFAULT_CHUNK.max(min)
}

/// The session URL with `digest=` added to its query (which may already
/// hold the registry's own state).
fn with_digest(url: &Url, digest: &Digest) -> Url {
    let mut url = url.clone();
    url.query_pairs_mut()
        .append_pair("digest", &digest.to_string());
    url
}

/// The whole blob in the closing `PUT ?digest=`.
async fn monolithic(
    client: &RegistryClient,
    repository: &str,
    desc: &Descriptor,
    source: &Source<'_>,
    session: Session,
) -> Result<Step, RegistryError> {
    let request = Request::new(
        Method::PUT,
        with_digest(&session.url, &desc.digest),
        Scopes::push(repository),
    )
    .header(CONTENT_TYPE, OCTET_STREAM)
    .body(source.body(0, desc.size))
    .no_retry();
    let err = match client.send(request).await {
        Ok(response) if response.status().is_success() => return Ok(Step::Done),
        Ok(response) => client.error(&Method::PUT, response).await,
        Err(err) => err,
    };
    // This PUT is also the closing one: as in `finish`, the commit may have
    // happened with only its answer lost, and sending the blob again would
    // be wasted.
    let recoverable = err.is_transient() || is_session_gone(&err);
    if recoverable && blob_exists(client, repository, &desc.digest).await? {
        return Ok(Step::Done);
    }
    if recoverable {
        Ok(Step::Restart(err))
    } else {
        Err(err)
    }
}

async fn chunked(
    client: &RegistryClient,
    repository: &str,
    desc: &Descriptor,
    source: &Source<'_>,
    mut session: Session,
) -> Result<Step, RegistryError> {
    let mut failures = 0;
    while session.offset < desc.size {
        let start = session.offset;
        let end = (start + session.chunk).min(desc.size);
        let request = Request::new(Method::PATCH, session.url.clone(), Scopes::push(repository))
            .header(CONTENT_TYPE, OCTET_STREAM)
            .header(
                HeaderName::from_static("content-range"),
                &format!("{start}-{}", end - 1),
            )
            .body(source.body(start, end - start))
            .no_retry();
        let failure = match client.send(request).await {
            Ok(response) if response.status() == StatusCode::ACCEPTED => {
                let next = client.location(&response)?;
                let held = parse_range(response.headers());
                session.url = next;
                session.offset = match held {
                    Some(held) if held != end && held <= desc.size => {
                        tracing::debug!(
                            "{}: registry holds {held} bytes after a chunk ending at {end}",
                            desc.digest.short()
                        );
                        held
                    }
                    _ => end,
                };
                failures = 0;
                continue;
            }
            Ok(response) => {
                let wait = retry_after(response.headers());
                let err = client.error(&Method::PATCH, response).await;
                if is_session_gone(&err) {
                    return Ok(Step::Restart(err));
                }
                if !err.is_transient() {
                    return Err(err);
                }
                (err, wait)
            }
            Err(err) if err.is_transient() => (err, None),
            Err(err) => return Err(err),
        };
        let (err, wait) = failure;
        failures += 1;
        if failures >= client.retry.attempts {
            return Err(err);
        }
        let wait = client.retry.delay(failures, wait);
        tracing::info!(
            "{}: chunk {start}-{} failed: {err}; asking the registry how much arrived in {} ms",
            desc.digest.short(),
            end - 1,
            wait.as_millis()
        );
        tokio::time::sleep(wait).await;
        match status(client, repository, &session.url).await? {
            Some((url, held)) if held <= desc.size => {
                tracing::info!(
                    "{}: resuming the upload at byte {held} of {}",
                    desc.digest.short(),
                    desc.size
                );
                session.url = url;
                session.offset = held;
            }
            Some(_) | None => {
                return Ok(Step::Restart(RegistryError::protocol(format!(
                    "the registry dropped the upload session of {}",
                    desc.digest.short()
                ))));
            }
        }
    }
    finish(client, repository, desc, session).await
}

/// The closing `PUT ?digest=` of a chunked upload.
async fn finish(
    client: &RegistryClient,
    repository: &str,
    desc: &Descriptor,
    session: Session,
) -> Result<Step, RegistryError> {
    let mut failures = 0;
    loop {
        let request = Request::new(
            Method::PUT,
            with_digest(&session.url, &desc.digest),
            Scopes::push(repository),
        )
        .header(CONTENT_TYPE, OCTET_STREAM)
        .body(Body::Bytes(Bytes::new()))
        .no_retry();
        let err = match client.send(request).await {
            Ok(response) if response.status().is_success() => return Ok(Step::Done),
            Ok(response) => client.error(&Method::PUT, response).await,
            Err(err) => err,
        };
        // The commit may have happened with only its answer lost: then the
        // session is gone but the blob is there.
        if (err.is_transient() || is_session_gone(&err))
            && blob_exists(client, repository, &desc.digest).await?
        {
            return Ok(Step::Done);
        }
        if is_session_gone(&err) {
            return Ok(Step::Restart(err));
        }
        if !err.is_transient() {
            return Err(err);
        }
        failures += 1;
        if failures >= client.retry.attempts {
            return Err(err);
        }
        tokio::time::sleep(client.retry.delay(failures, None)).await;
    }
}

/// `GET` on the upload URL: the registry's `Range` (how many bytes it
/// holds) and the URL to continue at. `None` when the session is gone.
async fn status(
    client: &RegistryClient,
    repository: &str,
    url: &Url,
) -> Result<Option<(Url, u64)>, RegistryError> {
    let response = client
        .send(Request::new(
            Method::GET,
            url.clone(),
            Scopes::push(repository),
        ))
        .await?;
    if matches!(response.status(), StatusCode::NO_CONTENT | StatusCode::OK) {
        let next = client.location(&response).unwrap_or_else(|_| url.clone());
        let held = parse_range(response.headers()).unwrap_or(0);
        return Ok(Some((next, held)));
    }
    let err = client.error(&Method::GET, response).await;
    if is_session_gone(&err) {
        tracing::debug!("upload session at {} is gone: {err}", display_url(url));
        return Ok(None);
    }
    Err(err)
}

async fn blob_exists(
    client: &RegistryClient,
    repository: &str,
    digest: &Digest,
) -> Result<bool, RegistryError> {
    let url = client
        .url(&format!("v2/{repository}/blobs/{digest}"))
        .await?;
    let response = client
        .send(Request::new(Method::HEAD, url, Scopes::push(repository)).no_redirects())
        .await?;
    // A redirect to storage means present, as in `has_blob`.
    Ok(response.status().is_success() || response.status().is_redirection())
}

/// The registry no longer knows the session (expired, cancelled after a
/// broken chunk, or never had it): only a new one can go on.
fn is_session_gone(err: &RegistryError) -> bool {
    err.has_code("BLOB_UPLOAD_UNKNOWN")
        || err.has_code("BLOB_UPLOAD_INVALID")
        || matches!(
            err.kind,
            ErrorKind::Status(StatusCode::NOT_FOUND | StatusCode::RANGE_NOT_SATISFIABLE)
        )
}

/// The bytes a registry holds, from `Range: 0-LAST` (also `bytes=0-LAST`).
/// `0-0` is read as nothing held: Distribution sends it for an empty
/// session. Were one byte held after all, the digest check of the closing
/// PUT fails and the upload starts over: never a corrupt blob.
pub fn parse_range(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let value = headers.get(RANGE)?.to_str().ok()?.trim();
    let value = value.strip_prefix("bytes=").unwrap_or(value);
    let (first, last) = value.split_once('-')?;
    let first: u64 = first.trim().parse().ok()?;
    let last: u64 = last.trim().parse().ok()?;
    if first != 0 {
        return None;
    }
    Some(if last == 0 { 0 } else { last + 1 })
}

#[cfg(test)]
mod tests {

    use super::super::test_server::{Reply, TestServer};
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    /// A closing PUT whose answer is a 5xx, or whose connection is cut
    /// after the registry got all of it, may still have committed the
    /// blob: a HEAD that finds it ends the upload, nothing is sent again.
    #[tokio::test]
    async fn a_failed_closing_put_whose_blob_is_there_is_not_uploaded_again() {
        let blob = Bytes::from_static(b"the blob's bytes");
        let desc = Descriptor::new(OCTET_STREAM, Digest::of(&blob), blob.len() as u64);
        let server = TestServer::start(|seen, _| {
            let path = seen.target.split('?').next().unwrap_or_default();
            let repository = path.split('/').nth(2).unwrap_or_default();
            match (seen.method.as_str(), path) {
                (_, "/v2/") => Reply::new(200),
                ("POST", _) => Reply::new(202).header(
                    "Location",
                    &format!("/v2/{repository}/blobs/uploads/session"),
                ),
                // The registry got the whole PUT; its answer is lost.
                ("PUT", _) if repository == "cut" => Reply::hang_up(),
                ("PUT", _) => {
                    Reply::new(500).body(r#"{"errors":[{"code":"UNKNOWN","message":"lost"}]}"#)
                }
                ("HEAD", _) => Reply::new(200),
                _ => Reply::new(404),
            }
        })
        .await;
        let client = super::super::test_server::loopback_client(server.port);
        for repository in ["failed", "cut"] {
            upload_bytes(&client, repository, &desc, blob.clone())
                .await
                .unwrap_or_else(|err| panic!("{repository}: {err}"));
            let seen: Vec<_> = server
                .seen()
                .into_iter()
                .filter(|s| s.target.starts_with(&format!("/v2/{repository}/")))
                .collect();
            let calls: Vec<(&str, &str)> = seen
                .iter()
                .map(|s| (s.method.as_str(), s.target.split('?').next().unwrap_or("")))
                .collect();
            let blob_path = format!("/v2/{repository}/blobs/{}", desc.digest);
            let uploads = format!("/v2/{repository}/blobs/uploads/");
            let session = format!("/v2/{repository}/blobs/uploads/session");
            assert_eq!(
                calls,
                vec![
                    ("POST", uploads.as_str()),
                    ("PUT", session.as_str()),
                    ("HEAD", blob_path.as_str()),
                ],
                "{repository}"
            );
            assert_eq!(seen[1].body, blob.to_vec());
            assert!(
                seen[1]
                    .target
                    .ends_with(&format!("?digest=sha256%3A{}", desc.digest.hex()))
            );
        }
    }

    fn range(value: &str) -> Option<u64> {
        let mut headers = HeaderMap::new();
        headers.insert(RANGE, HeaderValue::from_str(value).unwrap());
        parse_range(&headers)
    }

    #[test]
    fn ranges_as_registries_send_them() {
        assert_eq!(range("0-0"), Some(0));
        assert_eq!(range("0-1048575"), Some(1 << 20));
        assert_eq!(range("bytes=0-99"), Some(100));
        assert_eq!(range(" 0-9 "), Some(10));
        assert_eq!(range("5-9"), None);
        assert_eq!(range("0-"), None);
        assert_eq!(range("x"), None);
        assert_eq!(parse_range(&HeaderMap::new()), None);
    }

    #[test]
    fn chunk_size_honours_the_registry_minimum() {
        assert_eq!(chunk_size(0), DEFAULT_CHUNK);
        assert_eq!(chunk_size(1 << 20), DEFAULT_CHUNK);
        assert_eq!(chunk_size(64 << 20), 64 << 20);
        assert_eq!(chunk_size(4 << 30), 4 << 30);
    }

    #[test]
    fn digest_is_added_to_the_session_query() {
        let digest = Digest::of(b"x");
        let url = Url::parse("http://r/v2/a/blobs/uploads/u?_state=abc%3D").unwrap();
        let with = with_digest(&url, &digest);
        assert_eq!(
            with.as_str(),
            format!(
                "http://r/v2/a/blobs/uploads/u?_state=abc%3D&digest=sha256%3A{}",
                digest.hex()
            )
        );
        let bare = with_digest(
            &Url::parse("http://r/v2/a/blobs/uploads/u").unwrap(),
            &digest,
        );
        assert_eq!(
            bare.query(),
            Some(format!("digest=sha256%3A{}", digest.hex()).as_str())
        );
    }
}
