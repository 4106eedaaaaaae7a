//! Repository housekeeping for `prune`: list a repository's tags
//! (following `Link` pagination), read the digest a tag points at, and
//! delete a manifest by digest.

use std::collections::HashSet;

use reqwest::header::{ACCEPT, HeaderName, LINK};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

use super::auth::Scopes;
use super::client::Request;
use super::error::RegistryError;
use super::{DOCKER_CONTENT_DIGEST, MANIFEST_TYPES, RegistryStore};
use crate::digest::Digest;
use crate::reference::Reference;
use crate::store::{CacheStore, StoreError};

/// Tags asked for per page. Registries may answer with fewer and a `Link`
/// to the next page; some ignore `n` and answer everything at once.
pub const TAGS_PAGE_SIZE: usize = 1000;
/// A safety stop for a registry whose `Link` never ends.
const MAX_TAG_PAGES: usize = 10_000;

/// What a manifest delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    /// The registry no longer had it (deleted by someone else meanwhile).
    AlreadyGone,
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl RegistryStore {
    /// `registry/repository`, without tag or digest.
    pub fn repository_name(&self) -> String {
        self.reference.name()
    }

    /// The same repository, at `tag`, sharing this store's client (its
    /// tokens and connections).
    pub fn at_tag(&self, tag: &str) -> Result<RegistryStore, StoreError> {
        let reference = Reference::parse(&format!("{}:{tag}", self.reference.name()))
            .map_err(|err| StoreError::Invalid(err.to_string()))?;
        Ok(RegistryStore {
            reference,
            client: self.client.clone(),
        })
    }

    /// Every tag of the repository, in the registry's order, following
    /// `Link: <…>; rel="next"` pages. `None`: the repository does not exist.
    pub async fn list_tags(&self) -> Result<Option<Vec<String>>, StoreError> {
        self.list_tags_inner(TAGS_PAGE_SIZE)
            .await
            .map_err(|err| self.fail_repository("list tags", err))
    }

    pub(super) async fn list_tags_inner(
        &self,
        page_size: usize,
    ) -> Result<Option<Vec<String>>, RegistryError> {
        let mut url = self
            .client
            .url(&format!("v2/{}/tags/list", self.repository()))
            .await?;
        url.query_pairs_mut()
            .append_pair("n", &page_size.to_string());
        let mut tags = Vec::new();
        let mut seen_tags = HashSet::new();
        let mut seen_urls = HashSet::new();
        for _ in 0..MAX_TAG_PAGES {
            seen_urls.insert(url.clone());
            let request = Request::new(Method::GET, url.clone(), Scopes::pull(self.repository()))
                .header(ACCEPT, "application/json");
            let response = self.client.send(request).await?;
            if !response.status().is_success() {
                let err = self.client.error(&Method::GET, response).await;
                if err.status() == Some(StatusCode::NOT_FOUND) || err.has_code("NAME_UNKNOWN") {
                    return Ok(None);
                }
                return Err(err);
            }
            let next = next_link(&response)?;
            let body = response
                .bytes()
                .await
                .map_err(|e| RegistryError::transport(&Method::GET, &url, e))?;
            let page: TagList = serde_json::from_slice(&body).map_err(|err| {
                RegistryError::protocol(format!("the tag list is not valid JSON: {err}"))
            })?;
            let page = page.tags.unwrap_or_default();
            let full = page.len() == page_size;
            let last = page.last().cloned();
            let mut added = false;
            for tag in page {
                if seen_tags.insert(tag.clone()) {
                    tags.push(tag);
                    added = true;
                }
            }
            // A registry that cuts the list at `n` without a `Link` is
            // asked for what follows the last tag (the spec's `last`),
            // until a page brings nothing new.
            let next = match (next, last) {
                (None, Some(last)) if full && added => {
                    let mut url = url.clone();
                    url.query_pairs_mut()
                        .clear()
                        .append_pair("n", &page_size.to_string())
                        .append_pair("last", &last);
                    Some(url)
                }
                (next, _) => next,
            };
            match next {
                None => return Ok(Some(tags)),
                Some(next) if seen_urls.contains(&next) => {
                    return Err(RegistryError::protocol(format!(
                        "the tag list's Link header loops back to {}",
                        super::error::display_url(&next)
                    )));
                }
                Some(next) => url = next,
            }
        }
        Err(RegistryError::protocol(format!(
            "the tag list has more than {MAX_TAG_PAGES} pages"
        )))
    }

    /// The digest this store's tag points at (`HEAD`, its
    /// `Docker-Content-Digest`), or `None` when the tag does not exist.
    /// A registry that does not say is asked for the manifest itself.
    pub async fn manifest_digest(&self) -> Result<Option<Digest>, StoreError> {
        let url = self
            .client
            .url(&format!(
                "v2/{}/manifests/{}",
                self.repository(),
                self.manifest_reference()
            ))
            .await
            .map_err(|err| self.fail("manifest digest", err))?;
        let request = Request::new(Method::HEAD, url, Scopes::pull(self.repository()))
            .header(ACCEPT, &MANIFEST_TYPES.join(", "));
        let response = self
            .client
            .send(request)
            .await
            .map_err(|err| self.fail("manifest digest", err))?;
        if response.status().is_success() {
            let stated = response
                .headers()
                .get(HeaderName::from_static(DOCKER_CONTENT_DIGEST))
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<Digest>().ok());
            if let Some(digest) = stated {
                return Ok(Some(digest));
            }
        } else {
            let err = self.client.error(&Method::HEAD, response).await;
            if err.is_manifest_miss() {
                return Ok(None);
            }
            // Some registries refuse HEAD; GET below says what is wrong.
            tracing::debug!("{}: HEAD manifest: {err}", self.describe());
        }
        Ok(self
            .fetch_manifest_inner()
            .await
            .map_err(|err| self.fail("fetch manifest", err))?
            .map(|m| m.digest))
    }

    /// Deletes the manifest `digest` from the repository, and with it every
    /// tag that points at it. A registry that does not allow deletes
    /// (Distribution's 405 `UNSUPPORTED`) is [`StoreError::Unsupported`].
    pub async fn delete_manifest(&self, digest: &Digest) -> Result<Deleted, StoreError> {
        let fail = |err: RegistryError| self.fail_repository(&format!("delete {digest}"), err);
        let url = self
            .client
            .url(&format!("v2/{}/manifests/{digest}", self.repository()))
            .await
            .map_err(fail)?;
        let request = Request::new(Method::DELETE, url, Scopes::delete(self.repository()));
        let response = self.client.send(request).await.map_err(fail)?;
        let status = response.status();
        if status.is_success() {
            return Ok(Deleted::Deleted);
        }
        let err = self.client.error(&Method::DELETE, response).await;
        if status == StatusCode::METHOD_NOT_ALLOWED || err.has_code("UNSUPPORTED") {
            return Err(StoreError::Unsupported {
                location: self.reference.registry().to_string(),
                message: format!(
                    "the registry does not allow deleting manifests ({}); a Distribution \
                     registry allows it with `storage: delete: enabled: true` in its \
                     configuration (REGISTRY_STORAGE_DELETE_ENABLED=true); other registries \
                     offer deletion in their own API or web interface",
                    err.message
                ),
            });
        }
        if err.is_manifest_miss() {
            return Ok(Deleted::AlreadyGone);
        }
        Err(fail(err))
    }

    pub(super) fn fail_repository(&self, what: &str, err: RegistryError) -> StoreError {
        err.context(what)
            .into_store_error(Some(&self.reference.name()))
    }
}

/// The `rel="next"` target of a response's `Link` headers, resolved
/// against the URL that sent it.
fn next_link(response: &reqwest::Response) -> Result<Option<Url>, RegistryError> {
    for value in response.headers().get_all(LINK) {
        let Ok(value) = value.to_str() else { continue };
        if let Some(target) = parse_next_link(value) {
            return response.url().join(target).map(Some).map_err(|_| {
                RegistryError::protocol(format!("the tag list sent an invalid Link {value:?}"))
            });
        }
    }
    Ok(None)
}

/// `</v2/r/tags/list?last=b&n=2>; rel="next"` → the part in brackets, for
/// the link whose `rel` includes `next` (a header may hold several links).
fn parse_next_link(value: &str) -> Option<&str> {
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after.find('>')?;
        let target = &after[..end];
        let params_end = after[end..].find('<').map_or(after.len(), |i| end + i);
        let params = &after[end + 1..params_end];
        let is_next = params.split(';').any(|param| {
            let Some((key, value)) = param.split_once('=') else {
                return false;
            };
            key.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target);
        }
        rest = &after[params_end..];
    }
    None
}

#[cfg(test)]
mod tests {

    use super::super::test_server::{Reply, TestServer};
    use super::*;
    use std::sync::Arc;

    fn store(port: u16) -> RegistryStore {
        let client = super::super::test_server::loopback_client(port);
        RegistryStore {
            reference: Reference::parse(&format!("127.0.0.1:{port}/app/cache")).unwrap(),
            client: Arc::new(client),
        }
    }

    #[test]
    fn next_links_in_every_shape() {
        assert_eq!(
            parse_next_link(r#"</v2/r/tags/list?last=b&n=2>; rel="next""#),
            Some("/v2/r/tags/list?last=b&n=2")
        );
        assert_eq!(
            parse_next_link("<https://x/a>;rel=next"),
            Some("https://x/a")
        );
        assert_eq!(
            parse_next_link(r#"</prev>; rel="prev", </next>; rel="next""#),
            Some("/next")
        );
        assert_eq!(parse_next_link(r#"</a>; rel="first next""#), Some("/a"));
        assert_eq!(parse_next_link(r#"</prev>; rel="prev""#), None);
        assert_eq!(parse_next_link("garbage"), None);
    }

    #[tokio::test]
    async fn tags_are_listed_across_pages() {
        let server = TestServer::start(|seen, _| match seen.target.as_str() {
            "/v2/" => Reply::new(200),
            "/v2/app/cache/tags/list?n=2" => Reply::new(200)
                .header(
                    "Link",
                    r#"</v2/app/cache/tags/list?last=b&n=2>; rel="next""#,
                )
                .body(r#"{"name":"app/cache","tags":["a","b"]}"#),
            "/v2/app/cache/tags/list?last=b&n=2" => {
                Reply::new(200).body(r#"{"name":"app/cache","tags":["c"]}"#)
            }
            _ => Reply::new(404),
        })
        .await;
        let store = store(server.port);
        let tags = store.list_tags_inner(2).await.unwrap();
        assert_eq!(tags, Some(vec!["a".into(), "b".into(), "c".into()]));
    }

    #[tokio::test]
    async fn a_full_page_without_a_link_is_followed_by_last() {
        let server = TestServer::start(|seen, _| match seen.target.as_str() {
            "/v2/" => Reply::new(200),
            "/v2/app/cache/tags/list?n=2" => Reply::new(200).body(r#"{"tags":["a","b"]}"#),
            "/v2/app/cache/tags/list?n=2&last=b" => Reply::new(200).body(r#"{"tags":["c","d"]}"#),
            "/v2/app/cache/tags/list?n=2&last=d" => Reply::new(200).body(r#"{"tags":["e"]}"#),
            // A registry that ignores n and last answers everything, and
            // the second, unchanged page ends the walk.
            "/v2/app/all/tags/list?n=2" | "/v2/app/all/tags/list?n=2&last=b" => {
                Reply::new(200).body(r#"{"tags":["a","b"]}"#)
            }
            _ => Reply::new(404),
        })
        .await;
        let store = store(server.port);
        let tags = store.list_tags_inner(2).await.unwrap();
        assert_eq!(
            tags,
            Some(["a", "b", "c", "d", "e"].map(String::from).to_vec())
        );
        let all = RegistryStore {
            reference: Reference::parse(&format!("127.0.0.1:{}/app/all", server.port)).unwrap(),
            client: store.client.clone(),
        };
        assert_eq!(
            all.list_tags_inner(2).await.unwrap(),
            Some(vec!["a".into(), "b".into()])
        );
    }

    #[tokio::test]
    async fn an_unknown_repository_has_no_tags_and_a_looping_link_is_refused() {
        let server = TestServer::start(|seen, _| match seen.target.as_str() {
            "/v2/" => Reply::new(200),
            "/v2/app/cache/tags/list?n=2" => Reply::new(200)
                .header("Link", r#"</v2/app/cache/tags/list?n=2>; rel="next""#)
                .body(r#"{"tags":null}"#),
            _ => Reply::new(404).body(r#"{"errors":[{"code":"NAME_UNKNOWN"}]}"#),
        })
        .await;
        let store = store(server.port);
        let err = store.list_tags_inner(2).await.unwrap_err();
        assert!(err.message.contains("loops"), "{}", err.message);
        let other = store.at_tag("x").unwrap();
        let other = RegistryStore {
            reference: Reference::parse(&format!("127.0.0.1:{}/gone:x", server.port)).unwrap(),
            ..other
        };
        assert_eq!(other.list_tags_inner(2).await.unwrap(), None);
    }

    #[tokio::test]
    async fn deletion_disabled_names_the_registry_setting() {
        let server = TestServer::start(|seen, _| match seen.target.as_str() {
            "/v2/" => Reply::new(200),
            _ => Reply::new(405).body(
                r#"{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}"#,
            ),
        })
        .await;
        let digest = Digest::of(b"x");
        let err = store(server.port)
            .delete_manifest(&digest)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Unsupported { .. }), "{text}");
        assert!(text.contains("storage: delete: enabled: true"), "{text}");
        assert!(text.contains("UNSUPPORTED"), "{text}");
        let seen = server.seen();
        let last = seen.last().unwrap();
        assert_eq!(last.method, "DELETE");
        assert_eq!(last.target, format!("/v2/app/cache/manifests/{digest}"));
    }
}
