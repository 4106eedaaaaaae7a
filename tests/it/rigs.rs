//! Self-tests of the network rigs in `tests/common` (token server, dropping
//! and fault-injecting proxy, redirecting blob host), driven with plain
//! reqwest against the real test registry.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use crate::common::proxy::{self, DropRule, Fault, Outcome, Proxy, ProxyOptions, Redirect};
use crate::common::registry::{PASSWORD, RegistryOptions, TestRegistry, USER};
use crate::common::token_server::{Grant, TokenServer, TokenServerOptions};
use reqwest::{Client, Response, StatusCode};
use sha2::{Digest, Sha256};

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn client() -> Client {
    common::http_client()
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

/// `Bearer realm="…",service="…"` → its parameters.
fn challenge(www_authenticate: &str) -> HashMap<String, String> {
    let rest = www_authenticate
        .strip_prefix("Bearer ")
        .unwrap_or_else(|| panic!("not a Bearer challenge: {www_authenticate}"));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while let Some((key, after)) = rest.split_once("=\"") {
        let (value, after) = after.split_once('"').expect("closing quote");
        params.insert(
            key.trim_start_matches(',').trim().to_string(),
            value.to_string(),
        );
        rest = after;
    }
    params
}

/// Fetches a token from `realm` with GET.
async fn token(
    client: &Client,
    realm: &str,
    service: &str,
    scopes: &[&str],
    basic: bool,
) -> (StatusCode, serde_json::Value) {
    let mut query: Vec<(&str, &str)> = vec![("service", service)];
    query.extend(scopes.iter().map(|s| ("scope", *s)));
    let mut request = client.get(realm).query(&query);
    if basic {
        request = request.basic_auth(USER, Some(PASSWORD));
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
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

// ---- token server ----

#[tokio::test]
async fn token_auth_registry_challenges_then_accepts_a_pushing_token() {
    let tokens = TokenServer::start(TokenServerOptions::with_test_credentials());
    let registry = TestRegistry::start(tokens.registry_options());
    let base = format!("http://{}", registry.host());
    let client = client();

    let response = client.get(format!("{base}/v2/")).send().await.unwrap();
    assert_eq!(response.status(), 401, "{}", registry.log());
    let params = challenge(&header(&response, "www-authenticate"));
    assert_eq!(params["realm"], tokens.realm());
    assert_eq!(params["service"], tokens.service());

    // The token server wants the credentials.
    let (status, _) = token(&client, &params["realm"], &params["service"], &[], false).await;
    assert_eq!(status, 401);

    let (status, body) = token(&client, &params["realm"], &params["service"], &[], true).await;
    assert_eq!(status, 200);
    let t = body["token"].as_str().unwrap().to_string();
    assert_eq!(body["access_token"], body["token"]);
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    let response = client
        .get(format!("{base}/v2/"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", registry.log());

    // A push asks for pull,push on the repository; the challenge says so.
    let blob = common::pseudo_random(100_000, 1);
    let response = client
        .post(format!("{base}/v2/rigs/app/blobs/uploads/"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let params = challenge(&header(&response, "www-authenticate"));
    assert_eq!(params["error"], "insufficient_scope");
    let scope = &params["scope"];
    assert!(
        scope == "repository:rigs/app:pull,push" || scope == "repository:rigs/app:push,pull",
        "{scope}"
    );

    let (_, body) = token(&client, &tokens.realm(), tokens.service(), &[scope], true).await;
    let push = body["token"].as_str().unwrap().to_string();
    assert_eq!(
        push_blob(&client, &base, "rigs/app", &blob, Some(&push)).await,
        201,
        "{}",
        registry.log()
    );
    let response = client
        .head(format!("{base}/v2/rigs/app/blobs/{}", digest_of(&blob)))
        .bearer_auth(&push)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let requests = tokens.requests();
    assert_eq!(requests.len(), 3);
    assert!(!requests[0].auth_sent && requests[0].status == 401);
    assert_eq!(requests[1].user.as_deref(), Some(USER));
    assert!(requests[2].asks("rigs/app", "pull") && requests[2].asks("rigs/app", "push"));
    assert_eq!(tokens.tokens_issued(), 2);
}

#[tokio::test]
async fn a_mount_token_is_asked_for_in_one_request_with_both_scopes() {
    let tokens = TokenServer::start(TokenServerOptions::default());
    let registry = TestRegistry::start(tokens.registry_options());
    let base = format!("http://{}", registry.host());
    let client = client();
    let blob = common::pseudo_random(5000, 2);
    let source_token = tokens.mint(Some("x"), &["repository:rigs/source:pull,push"], 300);
    assert_eq!(
        push_blob(&client, &base, "rigs/source", &blob, Some(&source_token)).await,
        201
    );

    // Anonymous: no basic auth needed without `basic_auth`.
    let (status, body) = token(
        &client,
        &tokens.realm(),
        tokens.service(),
        &[
            "repository:rigs/target:pull,push",
            "repository:rigs/source:pull",
        ],
        false,
    )
    .await;
    assert_eq!(status, 200);
    let mount_token = body["token"].as_str().unwrap();
    let response = client
        .post(format!("{base}/v2/rigs/target/blobs/uploads/"))
        .query(&[
            ("mount", digest_of(&blob).as_str()),
            ("from", "rigs/source"),
        ])
        .bearer_auth(mount_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "mounted: {}", registry.log());

    let requests = tokens.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.scope_params.len(), 2);
    assert!(r.asks("rigs/target", "pull") && r.asks("rigs/target", "push"));
    assert!(r.asks("rigs/source", "pull") && !r.asks("rigs/source", "push"));
    assert!(r.user.is_none() && !r.auth_sent);
}

#[tokio::test]
async fn an_expired_token_is_refused_again() {
    let tokens = TokenServer::start(TokenServerOptions {
        lifetime: Duration::from_secs(2),
        ..TokenServerOptions::default()
    });
    let registry = TestRegistry::start(tokens.registry_options());
    let url = format!("http://{}/v2/", registry.host());
    let client = client();

    let (_, body) = token(&client, &tokens.realm(), tokens.service(), &[], false).await;
    assert_eq!(body["expires_in"], 2);
    let t = body["token"].as_str().unwrap().to_string();
    let status = |t: String| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let r = client.get(&url).bearer_auth(t).send().await.unwrap();
            (r.status(), header(&r, "www-authenticate"))
        }
    };
    assert_eq!(status(t.clone()).await.0, 200);
    // Whole seconds: past 2 s after issue on the registry's clock.
    std::thread::sleep(Duration::from_millis(3100));
    let (code, www) = status(t).await;
    assert_eq!(code, 401);
    assert_eq!(challenge(&www)["error"], "invalid_token");

    // Minted ones: already expired, and still good.
    assert_eq!(status(tokens.mint(None, &[], -1)).await.0, 401);
    assert_eq!(status(tokens.mint(None, &[], 30)).await.0, 200);
}

#[tokio::test]
async fn identity_tokens_through_the_oauth_post_endpoint() {
    let tokens = TokenServer::start(TokenServerOptions::with_test_credentials());
    let registry = TestRegistry::start(tokens.registry_options());
    let base = format!("http://{}", registry.host());
    let client = client();
    let scope = "repository:rigs/id:pull,push";

    // Password grant, asking for a refresh token.
    let response = client
        .post(tokens.realm())
        .form(&[
            ("grant_type", "password"),
            ("username", USER),
            ("password", PASSWORD),
            ("service", tokens.service()),
            ("scope", scope),
            ("client_id", "regcache"),
            ("access_type", "offline"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(body["scope"], scope);

    // Refresh grant: a fresh access token that pushes.
    let response = client
        .post(tokens.realm())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("service", tokens.service()),
            ("scope", scope),
            ("client_id", "regcache"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    let blob = b"identity".to_vec();
    assert_eq!(
        push_blob(&client, &base, "rigs/id", &blob, Some(access)).await,
        201
    );

    // Wrong password, unknown refresh token, unknown grant.
    for form in [
        vec![
            ("grant_type", "password"),
            ("username", USER),
            ("password", "nope"),
        ],
        vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", "rt-unknown"),
        ],
        vec![("grant_type", "client_credentials")],
    ] {
        let status = client
            .post(tokens.realm())
            .form(&form)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status == 401 || status == 400, "{form:?}: {status}");
    }
    // A minted identity token works until revoked.
    let id = tokens.identity_token(USER);
    let refresh_status = |t: String| {
        let client = client.clone();
        let realm = tokens.realm();
        async move {
            client
                .post(realm)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", t.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(refresh_status(id.clone()).await, 200);
    tokens.revoke_refresh_tokens();
    assert_eq!(refresh_status(id).await, 401);

    // GET with offline_token=true also hands out a refresh token.
    let response = client
        .get(tokens.realm())
        .query(&[("service", tokens.service()), ("offline_token", "true")])
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["refresh_token"].as_str().unwrap().starts_with("rt-"));

    let requests = tokens.requests();
    assert_eq!(requests[0].grant_type.as_deref(), Some("password"));
    assert!(requests[0].offline && requests[0].asks("rigs/id", "push"));
    assert_eq!(requests[1].user.as_deref(), Some(USER));
    assert_eq!(requests[1].client_id.as_deref(), Some("regcache"));
}

#[tokio::test]
async fn grants_can_be_narrowed_and_post_turned_off() {
    let tokens = TokenServer::start(TokenServerOptions {
        allow_post: false,
        grant: Some(std::sync::Arc::new(|g: &Grant| g.action == "pull")),
        ..TokenServerOptions::default()
    });
    let registry = TestRegistry::start(tokens.registry_options());
    let base = format!("http://{}", registry.host());
    let client = client();
    let (_, body) = token(
        &client,
        &tokens.realm(),
        tokens.service(),
        &["repository:rigs/ro:pull,push"],
        false,
    )
    .await;
    let t = body["token"].as_str().unwrap();
    let response = client
        .post(format!("{base}/v2/rigs/ro/blobs/uploads/"))
        .bearer_auth(t)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        challenge(&header(&response, "www-authenticate"))["error"],
        "insufficient_scope"
    );
    let status = client
        .post(tokens.realm())
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
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

#[tokio::test]
async fn redirected_blob_downloads_show_whether_credentials_leaked() {
    let tokens = TokenServer::start(TokenServerOptions::default());
    let registry = TestRegistry::start(tokens.registry_options());
    let pull = tokens.mint(Some("x"), &["repository:rigs/r:pull,push"], 300);
    let blob = common::pseudo_random(70_000, 7);
    let direct = format!("http://{}", registry.host());
    let plain = client();
    assert_eq!(
        push_blob(&plain, &direct, "rigs/r", &blob, Some(&pull)).await,
        201
    );

    let proxy = Proxy::start(
        registry.addr,
        ProxyOptions {
            redirect: Some(Redirect::default()),
            ..ProxyOptions::default()
        },
    );
    let url = format!(
        "http://{}/v2/rigs/r/blobs/{}",
        proxy.host(),
        digest_of(&blob)
    );
    let host = proxy.blob_host().unwrap();

    // Without a token the registry's 401 comes through, not a redirect.
    let response = plain.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(header(&response, "www-authenticate").starts_with("Bearer "));

    // With one: a 307 to the blob host, which serves the blob.
    let response = plain.get(&url).bearer_auth(&pull).send().await.unwrap();
    assert_eq!(response.status(), 307);
    let location = header(&response, "location");
    assert!(location.starts_with(&format!("http://127.0.0.1:{}/", host.addr.port())));
    let got = plain
        .get(&location)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&got[..], &blob[..]);
    assert!(!host.saw_authorization());

    // reqwest's own redirect handling drops Authorization across hosts.
    let following = common::http_client().build().unwrap();
    let response = following.get(&url).bearer_auth(&pull).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(&response.bytes().await.unwrap()[..], &blob[..]);
    assert!(!host.saw_authorization());
    assert_eq!(host.requests().len(), 2);

    // A client that forwards it is caught.
    let response = plain.get(&url).bearer_auth(&pull).send().await.unwrap();
    let location = header(&response, "location");
    let response = plain
        .get(&location)
        .bearer_auth(&pull)
        .header("range", "bytes=10-")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(&response.bytes().await.unwrap()[..], &blob[10..]);
    assert!(host.saw_authorization());
    assert_eq!(proxy.redirects(), 3);
}

#[tokio::test]
async fn rigs_stop_when_dropped_even_with_idle_connections() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let proxy = Proxy::start(registry.addr, ProxyOptions::default());
    let tokens = TokenServer::start(TokenServerOptions::default());
    let client = client();
    // Leave a keep-alive connection open to each.
    let url = format!("http://{}/v2/", proxy.host());
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    let (status, _) = token(&client, &tokens.realm(), tokens.service(), &[], false).await;
    assert_eq!(status, 200);

    let addrs = [proxy.addr, tokens.addr];
    // The promise is that dropping returns at all, not how fast: a rig
    // that waited on its idle connections would hang here forever, so
    // the drop runs on a thread and the test gives up on it after a
    // minute rather than hanging the suite.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(proxy);
        drop(tokens);
        let _ = done_tx.send(());
    });
    assert!(
        done_rx.recv_timeout(Duration::from_secs(60)).is_ok(),
        "dropping the rigs hung on their idle connections"
    );
    for addr in addrs {
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "{addr} still listens"
        );
    }
    // The pooled connections are dead, not hanging.
    assert!(client.get(&url).send().await.is_err());
}
