//! Blob downloads as a plain `Read`: a task pulls the response body and
//! hands its chunks over a small channel, so memory stays flat whatever
//! the blob's size. A connection that breaks mid-body is re-requested with
//! `Range: bytes=N-` and the stream goes on where it stopped.

use std::io::{self, Read};
use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::{Method, Response, StatusCode, Url};
use tokio::sync::mpsc;

use super::auth::Scopes;
use super::client::{RegistryClient, Request};
use super::error::RegistryError;
use crate::image::Descriptor;
use crate::store::BlobReader;

/// Chunks in flight between the network task and the reader.
const CHANNEL_DEPTH: usize = 32;

/// Opens a blob for reading. Errors that the first request meets (unknown
/// blob, refused credentials, unreachable registry) are returned here;
/// later ones come out of `read`.
pub async fn open(
    client: Arc<RegistryClient>,
    repository: &str,
    desc: &Descriptor,
) -> Result<BlobReader, RegistryError> {
    let url = client
        .url(&format!("v2/{repository}/blobs/{}", desc.digest))
        .await?;
    let (response, skip) = request_from(&client, repository, &url, 0).await?;
    let (sender, receiver) = mpsc::channel(CHANNEL_DEPTH);
    let pump = Pump {
        client,
        repository: repository.to_string(),
        url,
        desc: desc.clone(),
        sender,
    };
    tokio::spawn(pump.run(response, skip));
    Ok(Box::new(ChannelReader {
        receiver,
        current: Bytes::new(),
        done: false,
    }))
}

/// GET from `offset` on. Returns the response and how many bytes of its
/// body to skip (a registry that ignores `Range` sends the whole blob).
async fn request_from(
    client: &RegistryClient,
    repository: &str,
    url: &Url,
    offset: u64,
) -> Result<(Response, u64), RegistryError> {
    let mut request = Request::new(Method::GET, url.clone(), Scopes::pull(repository));
    if offset > 0 {
        request = request.header(RANGE, &format!("bytes={offset}-"));
    }
    let response = client.send(request).await?;
    match response.status() {
        StatusCode::OK => Ok((response, offset)),
        StatusCode::PARTIAL_CONTENT if offset > 0 => {
            let starts_right = response
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok())
                == Some(offset);
            if starts_right {
                Ok((response, 0))
            } else {
                Err(RegistryError::protocol(format!(
                    "asked for blob bytes from {offset} on, the registry sent another range"
                )))
            }
        }
        _ => Err(client.error(&Method::GET, response).await),
    }
}

struct Pump {
    client: Arc<RegistryClient>,
    repository: String,
    url: Url,
    desc: Descriptor,
    sender: mpsc::Sender<io::Result<Bytes>>,
}

impl Pump {
    async fn run(self, mut response: Response, mut skip: u64) {
        let size = self.desc.size;
        let mut offset = 0u64;
        let mut failures = 0;
        loop {
            match response.chunk().await {
                Ok(Some(mut chunk)) => {
                    if skip > 0 {
                        let n = usize::try_from(skip).unwrap_or(usize::MAX).min(chunk.len());
                        chunk = chunk.slice(n..);
                        skip -= n as u64;
                        if chunk.is_empty() {
                            continue;
                        }
                    }
                    offset += chunk.len() as u64;
                    failures = 0;
                    let too_long = offset > size;
                    if self.sender.send(Ok(chunk)).await.is_err() {
                        return; // the reader was dropped
                    }
                    if too_long {
                        // The reader's digest check will refuse this blob;
                        // no point downloading an endless body.
                        return;
                    }
                }
                Ok(None) => return,
                Err(err) => {
                    if offset >= size {
                        return;
                    }
                    let err = RegistryError::transport(&Method::GET, &self.url, err);
                    failures += 1;
                    if failures >= self.client.retry.attempts {
                        let _ = self.sender.send(Err(io::Error::other(err.message))).await;
                        return;
                    }
                    let wait = self.client.retry.delay(failures, None);
                    tracing::info!(
                        "blob {}: download broke at byte {offset} of {size} ({err}); resuming in {} ms",
                        self.desc.digest.short(),
                        wait.as_millis()
                    );
                    tokio::time::sleep(wait).await;
                    match request_from(&self.client, &self.repository, &self.url, offset).await {
                        Ok((next, next_skip)) => {
                            response = next;
                            skip = next_skip;
                        }
                        Err(err) => {
                            let _ = self.sender.send(Err(io::Error::other(err.message))).await;
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// The reading end. It blocks on the channel, so it must be read from a
/// blocking thread (as every caller of [`crate::store::CacheStore::open_blob`] does).
struct ChannelReader {
    receiver: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
    done: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.current.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.receiver.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(err)) => {
                    self.done = true;
                    return Err(err);
                }
                None => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {

    use super::super::test_server::{Reply, TestServer};
    use super::*;
    use crate::digest::Digest;

    /// A body cut short is re-requested from where it stopped; a server
    /// that ignores `Range` is handled by skipping what was already read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broken_body_resumes_with_range_requests() {
        let blob: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let served = blob.clone();
        let server = TestServer::start(move |seen, _| {
            if seen.target == "/v2/" {
                return Reply::new(200);
            }
            let total = served.len();
            match seen.header("range") {
                None => Reply::new(200).body(served.clone()).cut_after(30_000),
                Some("bytes=30000-") => Reply::new(206)
                    .header(
                        "Content-Range",
                        &format!("bytes 30000-{}/{total}", total - 1),
                    )
                    .body(served[30_000..].to_vec())
                    .cut_after(30_000),
                // The third time the server ignores Range.
                Some(_) => Reply::new(200).body(served.clone()),
            }
        })
        .await;
        let client = super::super::test_server::loopback_client(server.port);
        let desc = Descriptor::new(
            "application/octet-stream",
            Digest::of(&blob),
            blob.len() as u64,
        );
        let mut reader = open(Arc::new(client), "r", &desc).await.unwrap();
        let back = tokio::task::spawn_blocking(move || {
            let mut back = Vec::new();
            reader.read_to_end(&mut back).map(|_| back)
        })
        .await
        .unwrap()
        .unwrap();
        assert!(back == blob, "{} bytes back", back.len());
        let ranges: Vec<Option<String>> = server
            .seen()
            .iter()
            .filter(|s| s.target != "/v2/")
            .map(|s| s.header("range").map(str::to_string))
            .collect();
        assert_eq!(
            ranges,
            vec![
                None,
                Some("bytes=30000-".into()),
                Some("bytes=60000-".into())
            ]
        );
    }
}
