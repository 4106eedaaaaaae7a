//! Self-tests of the network rigs in `tests/common` (token server, dropping
//! and fault-injecting proxy, redirecting blob host), driven with plain
//! reqwest against the real test registry.

mod common;

use std::time::Duration;

use common::proxy::{self, DropRule, Fault, Outcome, Proxy, ProxyOptions};
use common::registry::{RegistryOptions, TestRegistry};
use reqwest::{Client, Response, StatusCode};
use sha2::{Digest, Sha256};

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Pushes `blob` to `repo` monolithically (POST, then PUT with the digest).
async fn push_blob(
    client: &Client,
    base: &str,
    repo: &str,
    blob: &[u8],
    bearer: Option<&str>,
) -> StatusCode {
    let mut post = client.post(format!("{base}/v2/{repo}/blobs/uploads/"));
    if let Some(t) = bearer {
        post = post.bearer_auth(t);
    }
    let response = post.send().await.unwrap();
    if response.status() != StatusCode::ACCEPTED {
        return response.status();
    }
    let location = header(&response, "location");
    let mut put = client
        .put(&location)
        .query(&[("digest", digest_of(blob))])
        .header("content-type", "application/octet-stream")
        .body(blob.to_vec());
    if let Some(t) = bearer {
        put = put.bearer_auth(t);
    }
    put.send().await.unwrap().status()
}

// ---- dropping proxy ----

/// Starts a chunked upload through `base`; returns the first Location.
async fn start_upload(client: &Client, base: &str, repo: &str) -> String {
    let response = client
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    header(&response, "location")
}

/// PATCHes `chunk` to `location`, returning (status, next Location, Range).
async fn patch(
    client: &Client,
    location: &str,
    chunk: Vec<u8>,
    streamed: bool,
) -> Result<(StatusCode, String, String), reqwest::Error> {
    let mut request = client
        .patch(location)
        .header("content-type", "application/octet-stream");
    if streamed {
        // No length: the body goes with Transfer-Encoding: chunked.
        let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
            chunk.chunks(10_000).map(|c| Ok(c.to_vec())).collect();
        request = request.body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces,
        )));
    } else {
        request = request.body(chunk);
    }
    let response = request.send().await?;
    Ok((
        response.status(),
        header(&response, "location"),
        header(&response, "range"),
    ))
}

#[tokio::test]
async fn a_cut_patch_that_never_reached_the_registry_resumes() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let proxy = Proxy::start(
        registry.addr,
        ProxyOptions {
            drops: vec![DropRule::request_body(2, 30_000).holding_back()],
            ..ProxyOptions::default()
        },
    );
    let base = format!("http://{}", proxy.host());
    let client = client();
    let blob = common::pseudo_random(200_000, 3);
    let (first, second) = blob.split_at(80_000);

    let location = start_upload(&client, &base, "rigs/resume").await;
    let (status, location, range) = patch(&client, &location, first.to_vec(), false)
        .await
        .unwrap();
    assert_eq!((status.as_u16(), range.as_str()), (202, "0-79999"));
    assert!(location.starts_with(&base), "{location}");

    // The second PATCH (streamed, chunked) is cut 30 000 bytes in.
    let cut = patch(&client, &location, second.to_vec(), true).await;
    assert!(cut.is_err(), "{cut:?}");
    assert_eq!(proxy.drops(), 1);

    // The upload's status, through the proxy: still at the first chunk.
    let response = client.get(&location).send().await.unwrap();
    assert_eq!(response.status(), 204, "{}", registry.log());
    assert_eq!(header(&response, "range"), "0-79999");

    // Resume with the rest and finish.
    let (status, location, range) = patch(&client, &location, second.to_vec(), true)
        .await
        .unwrap();
    assert_eq!((status.as_u16(), range.as_str()), (202, "0-199999"));
    let response = client
        .put(&location)
        .query(&[("digest", digest_of(&blob))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", registry.log());
    let got = client
        .get(format!("{base}/v2/rigs/resume/blobs/{}", digest_of(&blob)))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&got[..], &blob[..]);
    let outcomes: Vec<Outcome> = proxy.seen().into_iter().map(|s| s.outcome).collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Outcome::DroppedRequest)
            .count(),
        1
    );
    assert_eq!(proxy.drops(), 1);
}

/// Distribution 2.8 keeps the bytes of a cut PATCH, but the client's
/// `_state` still holds the old offset: the next request on that upload URL
/// finds the size wrong, answers 404 BLOB_UPLOAD_INVALID and cancels the
/// upload (later requests on it get 404 too). The client has to start
/// over.
#[tokio::test]
async fn a_cut_patch_whose_bytes_reached_the_registry_kills_the_upload() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let proxy = Proxy::start(
        registry.addr,
        ProxyOptions {
            drops: vec![DropRule::request_body(2, 30_000)],
            ..ProxyOptions::default()
        },
    );
    let base = format!("http://{}", proxy.host());
    let client = client();
    let blob = common::pseudo_random(200_000, 4);
    let (first, second) = blob.split_at(80_000);

    let location = start_upload(&client, &base, "rigs/partial").await;
    let (_, location, _) = patch(&client, &location, first.to_vec(), false)
        .await
        .unwrap();
    assert!(
        patch(&client, &location, second.to_vec(), false)
            .await
            .is_err()
    );
    assert_eq!(proxy.drops(), 1);
    assert!(
        registry.log().contains("copied=30000"),
        "the registry got the partial body: {}",
        registry.log()
    );

    let error_code = |response: Response| async move {
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        (
            status.as_u16(),
            body["errors"][0]["code"].as_str().unwrap().to_string(),
        )
    };
    let response = client.get(&location).send().await.unwrap();
    assert_eq!(
        error_code(response).await,
        (404, "BLOB_UPLOAD_INVALID".into())
    );
    // It stays broken: resuming from the old offset is refused too.
    let response = client
        .patch(&location)
        .body(second.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response).await.0, 404);

    // Starting over works, through the same proxy.
    assert_eq!(
        push_blob(&client, &base, "rigs/partial", &blob, None).await,
        201
    );
    assert_eq!(proxy.drops(), 1);
}

#[tokio::test]
async fn a_cut_download_resumes_with_a_range_request() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let client = client();
    let blob = common::pseudo_random(300_000, 5);
    let direct = format!("http://{}", registry.host());
    assert_eq!(
        push_blob(&client, &direct, "rigs/dl", &blob, None).await,
        201
    );

    let proxy = Proxy::start(
        registry.addr,
        ProxyOptions {
            drops: vec![DropRule::response_body(1, 100_000)],
            ..ProxyOptions::default()
        },
    );
    let url = format!(
        "http://{}/v2/rigs/dl/blobs/{}",
        proxy.host(),
        digest_of(&blob)
    );
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), Some(300_000));
    let mut got = Vec::new();
    let mut response = response;
    let cut = loop {
        match response.chunk().await {
            Ok(Some(c)) => got.extend_from_slice(&c),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(cut, "the body ended early, not cleanly");
    assert_eq!(got.len(), 100_000);
    assert_eq!(proxy.drops(), 1);

    let response = client
        .get(&url)
        .header("range", format!("bytes={}-", got.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    got.extend_from_slice(&response.bytes().await.unwrap());
    assert_eq!(got, blob);
    assert_eq!(proxy.drops(), 1);
}

// ---- fault-injecting proxy ----

#[tokio::test]
async fn faults_answer_the_first_matching_requests_then_forward() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let proxy = Proxy::start(
        registry.addr,
        ProxyOptions {
            faults: vec![
                Fault::status(503, 2).matching(proxy::path_contains("/v2/rigs/")),
                Fault::too_many_requests(1, 1).matching(proxy::methods(&["PATCH"])),
            ],
            ..ProxyOptions::default()
        },
    );
    let base = format!("http://{}", proxy.host());
    let client = client();

    // /v2/ itself doesn't match the first fault.
    assert_eq!(
        client
            .get(format!("{base}/v2/"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for _ in 0..2 {
        let r = client
            .post(format!("{base}/v2/rigs/f/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "UNAVAILABLE");
    }
    let location = start_upload(&client, &base, "rigs/f").await;

    // A 429 with Retry-After, its body discarded; the connection lives on.
    let chunk = common::pseudo_random(50_000, 6);
    let response = client
        .patch(&location)
        .body(chunk.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(header(&response, "retry-after"), "1");
    let (status, location, range) = patch(&client, &location, chunk.clone(), false)
        .await
        .unwrap();
    assert_eq!((status.as_u16(), range.as_str()), (202, "0-49999"));
    let response = client
        .put(&location)
        .query(&[("digest", digest_of(&chunk))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    assert_eq!(proxy.faults(), 3);
    let outcomes: Vec<Outcome> = proxy.seen().into_iter().map(|s| s.outcome).collect();
    assert_eq!(
        outcomes,
        vec![
            Outcome::Forwarded,
            Outcome::Fault(503),
            Outcome::Fault(503),
            Outcome::Forwarded,
            Outcome::Fault(429),
            Outcome::Forwarded,
            Outcome::Forwarded,
        ]
    );
}
