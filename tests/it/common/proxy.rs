//! Misbehaving network rigs in front of the test registry: a TCP proxy on a
//! free loopback port that forwards HTTP/1.1 both ways and, on request,
//! drops a connection part-way through a request or response body, answers
//! matching requests itself with an error status, or redirects blob
//! downloads to a second loopback server ([`BlobHost`]) that records whether
//! credentials followed the redirect.
//!
//! The proxy speaks plain HTTP to both sides (it parses what it forwards),
//! so put it in front of a registry started without `tls`.
//!
//! Every server here runs on std threads (usable from sync or async tests),
//! and all of its threads stop when its handle drops.
//!
//! The [`http`] module holds the minimal HTTP/1.1 framing (request and
//! response heads, Content-Length and chunked bodies) and a tiny threaded
//! HTTP server that the token server shares.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Framing, Head, Piece, Reader, Server};

/// How long the proxy waits for the registry to finish a request whose body
/// it cut, before closing the client's side.
const DROP_SETTLE: Duration = Duration::from_secs(5);

/// Decides whether a request is subject to a rule.
pub type Matcher = Arc<dyn Fn(&RequestInfo) -> bool + Send + Sync>;

/// A request as the proxy saw it, given to [`Matcher`]s.
#[derive(Clone, Debug)]
pub struct RequestInfo {
    /// 0-based, in arrival order over all of the proxy's connections.
    pub index: usize,
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl RequestInfo {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        http::find_header(&self.headers, name)
    }
    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// Matches requests with one of these methods.
pub fn methods(methods: &[&str]) -> Matcher {
    let methods: Vec<String> = methods.iter().map(|m| m.to_ascii_uppercase()).collect();
    Arc::new(move |r: &RequestInfo| methods.contains(&r.method))
}

/// Matches every request.
pub fn any_request() -> Matcher {
    Arc::new(|_: &RequestInfo| true)
}

/// Matches requests whose path (query excluded) contains `needle`.
pub fn path_contains(needle: &str) -> Matcher {
    let needle = needle.to_string();
    Arc::new(move |r: &RequestInfo| r.path().contains(&needle))
}

/// Matches requests that both matchers match.
pub fn both(a: Matcher, b: Matcher) -> Matcher {
    Arc::new(move |r: &RequestInfo| a(r) && b(r))
}

/// Matches blob downloads: `GET /v2/<name>/blobs/<digest>` (not uploads).
pub fn blob_get() -> Matcher {
    Arc::new(|r: &RequestInfo| {
        r.method == "GET" && r.path().contains("/blobs/") && !r.path().contains("/blobs/uploads")
    })
}

/// Which body a [`DropRule`] cuts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropSide {
    /// The request body. With `forward_partial`, the registry receives the
    /// head and the first `after_bytes` body bytes before its connection is
    /// half-closed (the realistic case); without, the doomed request never
    /// reaches the registry at all.
    Request { forward_partial: bool },
    /// The response body: the client gets the head and `after_bytes` bytes.
    Response,
}

/// Drops the client's connection in the middle of a body: at the `nth`
/// (1-based) request that `matches`, and at each later match until `times`
/// drops were made. Drops happen after `after_bytes` bytes of the body (body
/// bytes proper: chunked framing isn't counted), or where the body ends if
/// it is shorter (then, for a request, the client never sees the response).
#[derive(Clone)]
pub struct DropRule {
    pub matches: Matcher,
    pub nth: usize,
    pub times: usize,
    pub after_bytes: u64,
    pub side: DropSide,
}

impl DropRule {
    /// Cut the `nth` PATCH or PUT after `after_bytes` of its body, the
    /// partial body reaching the registry.
    pub fn request_body(nth: usize, after_bytes: u64) -> DropRule {
        DropRule {
            matches: methods(&["PATCH", "PUT"]),
            nth,
            times: 1,
            after_bytes,
            side: DropSide::Request {
                forward_partial: true,
            },
        }
    }
    /// Cut the response to the `nth` GET after `after_bytes` of its body.
    pub fn response_body(nth: usize, after_bytes: u64) -> DropRule {
        DropRule {
            matches: methods(&["GET"]),
            nth,
            times: 1,
            after_bytes,
            side: DropSide::Response,
        }
    }
    /// The doomed request is not forwarded at all: the registry's state is
    /// as it was before the request.
    pub fn holding_back(mut self) -> DropRule {
        self.side = DropSide::Request {
            forward_partial: false,
        };
        self
    }
    pub fn matching(mut self, matches: Matcher) -> DropRule {
        self.matches = matches;
        self
    }
    pub fn times(mut self, times: usize) -> DropRule {
        self.times = times;
        self
    }
}

/// Answers the first `times` requests that `matches` with `status` (and
/// these headers and body) without forwarding them; the request body is read
/// and discarded first, so the connection stays usable.
#[derive(Clone)]
pub struct Fault {
    pub matches: Matcher,
    pub times: usize,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Fault {
    /// `status` with a Distribution-style JSON error body.
    pub fn status(status: u16, times: usize) -> Fault {
        let code = match status {
            429 => "TOOMANYREQUESTS",
            503 => "UNAVAILABLE",
            _ => "UNKNOWN",
        };
        Fault {
            matches: any_request(),
            times,
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: format!(
                r#"{{"errors":[{{"code":"{code}","message":"injected by the test proxy","detail":null}}]}}"#
            ),
        }
    }
    /// 429 with `Retry-After: <retry_after_secs>`.
    pub fn too_many_requests(times: usize, retry_after_secs: u64) -> Fault {
        let mut fault = Fault::status(429, times);
        fault
            .headers
            .push(("Retry-After".into(), retry_after_secs.to_string()));
        fault
    }
    pub fn matching(mut self, matches: Matcher) -> Fault {
        self.matches = matches;
        self
    }
}

/// Answers matching requests (by default [`blob_get`]) with a redirect to the
/// proxy's [`BlobHost`], like a registry on object storage: the proxy first
/// sends the request to the registry itself (so authorization is checked as
/// usual); a 200 is turned into `status` with a `Location` on the blob host,
/// which then serves the body; any other answer is relayed as it is.
#[derive(Clone)]
pub struct Redirect {
    pub matches: Matcher,
    pub status: u16,
    pub times: usize,
    /// The host name put in `Location` (the blob host listens on
    /// 127.0.0.1; "localhost" also reaches it).
    pub host_name: String,
}

impl Default for Redirect {
    fn default() -> Redirect {
        Redirect {
            matches: blob_get(),
            status: 307,
            times: usize::MAX,
            host_name: "127.0.0.1".into(),
        }
    }
}

/// What [`Proxy`] does besides forwarding. Faults are tried first, then the
/// redirect, then the drop rules.
#[derive(Clone, Default)]
pub struct ProxyOptions {
    pub drops: Vec<DropRule>,
    pub faults: Vec<Fault>,
    pub redirect: Option<Redirect>,
}

/// What became of a request that passed through the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Forwarded,
    /// Answered by the proxy with this status.
    Fault(u16),
    Redirected,
    /// Cut during its request body.
    DroppedRequest,
    /// Cut during its response body.
    DroppedResponse,
}

/// One entry of [`Proxy::seen`].
#[derive(Clone, Debug)]
pub struct Seen {
    pub index: usize,
    pub method: String,
    pub target: String,
    pub authorization: bool,
    /// The `Authorization` header itself: which token a request carried.
    pub authorization_value: Option<String>,
    pub outcome: Outcome,
}

#[derive(Default)]
struct Counters {
    next_index: usize,
    drop_matches: Vec<usize>,
    drops_done: Vec<usize>,
    fault_matches: Vec<usize>,
    redirects_done: usize,
    drops: usize,
    faults: usize,
    seen: Vec<Seen>,
}

struct ProxyState {
    upstream: SocketAddr,
    options: ProxyOptions,
    counters: Mutex<Counters>,
    blob_host: Option<BlobHost>,
}

/// What the client→upstream pump decided for one request.
enum Action {
    Forward,
    Fault(usize),
    Redirect,
    DropRequest { after: u64, forward_partial: bool },
    DropResponse { after: u64 },
}

/// The TCP proxy. Point clients at [`Proxy::host`] instead of the registry.
pub struct Proxy {
    /// `127.0.0.1:PORT`
    pub addr: SocketAddr,
    state: Arc<ProxyState>,
    _server: Server,
}

impl Proxy {
    /// Starts forwarding from a free loopback port to `upstream`.
    pub fn start(upstream: SocketAddr, options: ProxyOptions) -> Proxy {
        let blob_host = options.redirect.as_ref().map(|_| BlobHost::start());
        let counters = Counters {
            drop_matches: vec![0; options.drops.len()],
            drops_done: vec![0; options.drops.len()],
            fault_matches: vec![0; options.faults.len()],
            ..Counters::default()
        };
        let state = Arc::new(ProxyState {
            upstream,
            options,
            counters: Mutex::new(counters),
            blob_host,
        });
        let conn_state = state.clone();
        let server = Server::start_raw(Arc::new(move |client, tracker| {
            serve_connection(&conn_state, client, tracker);
        }));
        Proxy {
            addr: server.addr,
            state,
            _server: server,
        }
    }

    /// `127.0.0.1:PORT`, as a registry host in a ref.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Connections dropped so far.
    pub fn drops(&self) -> usize {
        self.state.counters.lock().unwrap().drops
    }

    /// Requests answered with an injected fault so far.
    pub fn faults(&self) -> usize {
        self.state.counters.lock().unwrap().faults
    }

    /// Requests answered with a redirect so far.
    pub fn redirects(&self) -> usize {
        self.state.counters.lock().unwrap().redirects_done
    }

    /// Every request the proxy has seen, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.counters.lock().unwrap().seen.clone()
    }

    /// The redirect target, with [`ProxyOptions::redirect`].
    pub fn blob_host(&self) -> Option<&BlobHost> {
        self.state.blob_host.as_ref()
    }
}

impl ProxyState {
    fn decide(&self, head: &Head) -> (RequestInfo, Action) {
        let mut c = self.counters.lock().unwrap();
        let info = RequestInfo {
            index: c.next_index,
            method: head.method().to_string(),
            target: head.target().to_string(),
            headers: head.headers.clone(),
        };
        c.next_index += 1;
        let mut action = Action::Forward;
        for (i, fault) in self.options.faults.iter().enumerate() {
            if (fault.matches)(&info) && c.fault_matches[i] < fault.times {
                c.fault_matches[i] += 1;
                c.faults += 1;
                action = Action::Fault(i);
                break;
            }
        }
        if matches!(action, Action::Forward)
            && let Some(redirect) = &self.options.redirect
            && (redirect.matches)(&info)
            && c.redirects_done < redirect.times
        {
            action = Action::Redirect;
        }
        if matches!(action, Action::Forward) {
            for (i, rule) in self.options.drops.iter().enumerate() {
                if !(rule.matches)(&info) {
                    continue;
                }
                c.drop_matches[i] += 1;
                if c.drop_matches[i] >= rule.nth && c.drops_done[i] < rule.times {
                    c.drops_done[i] += 1;
                    action = match rule.side {
                        DropSide::Request { forward_partial } => Action::DropRequest {
                            after: rule.after_bytes,
                            forward_partial,
                        },
                        DropSide::Response => Action::DropResponse {
                            after: rule.after_bytes,
                        },
                    };
                    break;
                }
            }
        }
        let outcome = match action {
            Action::Forward | Action::DropResponse { .. } => Outcome::Forwarded,
            Action::Fault(i) => Outcome::Fault(self.options.faults[i].status),
            Action::Redirect => Outcome::Redirected,
            Action::DropRequest { .. } => Outcome::DroppedRequest,
        };
        c.seen.push(Seen {
            index: info.index,
            method: info.method.clone(),
            target: info.target.clone(),
            authorization: info.header("authorization").is_some(),
            authorization_value: info.header("authorization").map(str::to_string),
            outcome,
        });
        (info, action)
    }

    fn count_drop(&self, index: usize, outcome: Outcome) {
        let mut c = self.counters.lock().unwrap();
        c.drops += 1;
        if let Some(seen) = c.seen.iter_mut().find(|s| s.index == index) {
            seen.outcome = outcome;
        }
    }
}

/// A response the upstream pump is waiting for.
struct Pending {
    index: usize,
    method: String,
    drop_after: Option<u64>,
}

/// State shared by the two pumps of one proxied connection.
struct Conn {
    client: TcpStream,
    upstream: TcpStream,
    client_writer: Mutex<TcpStream>,
    pending: Mutex<VecDeque<Pending>>,
    /// Set when the client→upstream pump cuts a request: what the registry
    /// answers to it is swallowed.
    dropping: AtomicBool,
    upstream_done: AtomicBool,
}

impl Conn {
    fn close_both(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.upstream.shutdown(Shutdown::Both);
    }
}

fn serve_connection(state: &Arc<ProxyState>, client: TcpStream, tracker: &http::Tracker) {
    let Ok(upstream) = TcpStream::connect_timeout(&state.upstream, Duration::from_secs(5)) else {
        return;
    };
    let _ = upstream.set_nodelay(true);
    let _ = upstream.set_read_timeout(Some(http::IDLE_TIMEOUT));
    tracker.track(&upstream);
    let (Ok(client_w), Ok(client_c), Ok(upstream_c), Ok(upstream_r)) = (
        client.try_clone(),
        client.try_clone(),
        upstream.try_clone(),
        upstream.try_clone(),
    ) else {
        return;
    };
    let conn = Conn {
        client: client_c,
        upstream: upstream_c,
        client_writer: Mutex::new(client_w),
        pending: Mutex::new(VecDeque::new()),
        dropping: AtomicBool::new(false),
        upstream_done: AtomicBool::new(false),
    };
    std::thread::scope(|scope| {
        scope.spawn(|| {
            pump_responses(state, &conn, Reader::new(upstream_r));
            conn.upstream_done.store(true, Ordering::SeqCst);
            let _ = conn.client.shutdown(Shutdown::Both);
        });
        pump_requests(state, &conn, Reader::new(client), upstream);
    });
}

/// Client → upstream: one request at a time.
fn pump_requests(state: &ProxyState, conn: &Conn, mut client: Reader, mut upstream: TcpStream) {
    while let Ok(Some(head)) = client.read_head() {
        let framing = head.request_framing();
        let (info, action) = state.decide(&head);
        match action {
            Action::Fault(i) => {
                if client.read_body(framing, &mut |_| Ok(true)).is_err() {
                    break;
                }
                let fault = &state.options.faults[i];
                let response = http::Response {
                    status: fault.status,
                    headers: fault.headers.clone(),
                    body: fault.body.clone().into_bytes(),
                };
                let mut w = conn.client_writer.lock().unwrap();
                if response.write_to(&mut *w, &info.method).is_err() {
                    break;
                }
            }
            Action::Redirect => {
                if client.read_body(framing, &mut |_| Ok(true)).is_err() {
                    break;
                }
                let response = redirect(state, &head).unwrap_or_else(|e| http::Response {
                    status: 502,
                    headers: vec![],
                    body: format!("proxy: upstream failed: {e}").into_bytes(),
                });
                let mut w = conn.client_writer.lock().unwrap();
                if response.write_to(&mut *w, &info.method).is_err() {
                    break;
                }
            }
            Action::DropRequest {
                after,
                forward_partial,
            } => {
                if forward_partial {
                    conn.pending.lock().unwrap().push_back(Pending {
                        index: info.index,
                        method: info.method.clone(),
                        drop_after: None,
                    });
                    let _ = upstream.write_all(&head.raw);
                    let mut seen = 0u64;
                    let _ = client.read_body(framing, &mut |piece| {
                        let (bytes, data) = match piece {
                            Piece::Framing(b) => (b, false),
                            Piece::Data(b) => (b, true),
                        };
                        if data && seen + bytes.len() as u64 >= after {
                            let take = (after - seen) as usize;
                            upstream.write_all(&bytes[..take])?;
                            return Ok(false);
                        }
                        if data {
                            seen += bytes.len() as u64;
                        }
                        upstream.write_all(bytes)?;
                        Ok(true)
                    });
                    // Let the registry see the end of its input and finish
                    // with the partial request before the client can retry.
                    conn.dropping.store(true, Ordering::SeqCst);
                    state.count_drop(info.index, Outcome::DroppedRequest);
                    let _ = upstream.flush();
                    let _ = upstream.shutdown(Shutdown::Write);
                    let deadline = Instant::now() + DROP_SETTLE;
                    while !conn.upstream_done.load(Ordering::SeqCst) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                } else {
                    // Take the client's bytes up to the cut, forward nothing.
                    let mut seen = 0u64;
                    let _ = client.read_body(framing, &mut |piece| {
                        if let Piece::Data(b) = piece {
                            seen += b.len() as u64;
                        }
                        Ok(seen < after)
                    });
                    conn.dropping.store(true, Ordering::SeqCst);
                    state.count_drop(info.index, Outcome::DroppedRequest);
                }
                conn.close_both();
                return;
            }
            Action::Forward | Action::DropResponse { .. } => {
                let drop_after = match action {
                    Action::DropResponse { after } => Some(after),
                    _ => None,
                };
                conn.pending.lock().unwrap().push_back(Pending {
                    index: info.index,
                    method: info.method.clone(),
                    drop_after,
                });
                if upstream.write_all(&head.raw).is_err() {
                    break;
                }
                let forwarded = client.read_body(framing, &mut |piece| {
                    let (Piece::Framing(b) | Piece::Data(b)) = piece;
                    upstream.write_all(b)?;
                    Ok(true)
                });
                if forwarded.is_err() {
                    // The registry stopped reading (it may have answered
                    // early) or the client went away: let the answer through.
                    let _ = upstream.shutdown(Shutdown::Write);
                    let deadline = Instant::now() + DROP_SETTLE;
                    while !conn.upstream_done.load(Ordering::SeqCst) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    conn.close_both();
                    return;
                }
            }
        }
    }
    // The client is done: let the registry finish and close.
    let _ = upstream.shutdown(Shutdown::Write);
}

/// Upstream → client: relays responses, cutting one if its request asked.
fn pump_responses(state: &ProxyState, conn: &Conn, mut upstream: Reader) {
    loop {
        let head = match upstream.read_head() {
            Ok(Some(head)) => head,
            _ => return,
        };
        let status = head.status();
        let interim = (100..200).contains(&status) && status != 101;
        let pending = if interim {
            None
        } else {
            conn.pending.lock().unwrap().pop_front()
        };
        let method = pending.as_ref().map_or("GET", |p| p.method.as_str());
        let framing = head.response_framing(method);
        if conn.dropping.load(Ordering::SeqCst) {
            // Swallow the registry's answer to a request that was cut.
            if upstream.read_body(framing, &mut |_| Ok(true)).is_err() {
                return;
            }
            continue;
        }
        let mut w = conn.client_writer.lock().unwrap();
        if w.write_all(&head.raw).is_err() {
            return;
        }
        let drop_after = pending.as_ref().and_then(|p| p.drop_after);
        let mut seen = 0u64;
        let mut cut = false;
        let relayed = upstream.read_body(framing, &mut |piece| {
            let (bytes, data) = match piece {
                Piece::Framing(b) => (b, false),
                Piece::Data(b) => (b, true),
            };
            if let Some(after) = drop_after
                && data
                && seen + bytes.len() as u64 >= after
            {
                let take = (after - seen) as usize;
                w.write_all(&bytes[..take])?;
                cut = true;
                return Ok(false);
            }
            if data {
                seen += bytes.len() as u64;
            }
            w.write_all(bytes)?;
            Ok(true)
        });
        let _ = w.flush();
        drop(w);
        if let Some(p) = &pending
            && p.drop_after.is_some()
            && (cut || relayed.is_ok())
        {
            // A body shorter than the cut point is cut at its end.
            state.count_drop(p.index, Outcome::DroppedResponse);
            conn.close_both();
            return;
        }
        if relayed.is_err() || matches!(framing, Framing::UntilClose) {
            return;
        }
    }
}

/// Sends a redirected request to the registry on a connection of its own and
/// turns a 200 into a redirect to the blob host.
fn redirect(state: &ProxyState, head: &Head) -> io::Result<http::Response> {
    let rule = state.options.redirect.as_ref().expect("redirect rule");
    let host = state.blob_host.as_ref().expect("blob host");
    let mut upstream = TcpStream::connect_timeout(&state.upstream, Duration::from_secs(5))?;
    upstream.set_read_timeout(Some(http::IDLE_TIMEOUT))?;
    let mut raw = format!("{}\r\n", head.first_line);
    for (name, value) in &head.headers {
        if !name.eq_ignore_ascii_case("connection") {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    raw.push_str("Connection: close\r\n\r\n");
    upstream.write_all(raw.as_bytes())?;
    let mut reader = Reader::new(upstream);
    let response_head = reader
        .read_head()?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no response"))?;
    let mut body = Vec::new();
    reader.read_body(response_head.response_framing(head.method()), &mut |p| {
        if let Piece::Data(b) = p {
            body.extend_from_slice(b);
        }
        Ok(true)
    })?;
    let status = response_head.status();
    let mut headers: Vec<(String, String)> = response_head
        .headers
        .iter()
        .filter(|(n, _)| {
            !["connection", "content-length", "transfer-encoding"]
                .iter()
                .any(|h| n.eq_ignore_ascii_case(h))
        })
        .cloned()
        .collect();
    if status != 200 {
        return Ok(http::Response {
            status,
            headers,
            body,
        });
    }
    let key = {
        let mut c = state.counters.lock().unwrap();
        c.redirects_done += 1;
        c.redirects_done.to_string()
    };
    let digest = head
        .target()
        .rsplit('/')
        .next()
        .unwrap_or("blob")
        .to_string();
    let digest = digest.split('?').next().unwrap_or("blob").to_string();
    let path = format!("/blob/{key}/{digest}?X-Test-Signature=not-a-credential");
    host.store(&format!("/blob/{key}/{digest}"), body);
    headers.retain(|(n, _)| {
        ![
            "content-type",
            "docker-content-digest",
            "etag",
            "accept-ranges",
        ]
        .iter()
        .any(|h| n.eq_ignore_ascii_case(h))
    });
    headers.push((
        "Location".into(),
        format!("http://{}:{}{path}", rule.host_name, host.addr.port()),
    ));
    Ok(http::Response {
        status: rule.status,
        headers,
        body: Vec::new(),
    })
}

/// A request the [`BlobHost`] received.
#[derive(Clone, Debug)]
pub struct HostRequest {
    pub method: String,
    pub target: String,
    /// The `Authorization` header, if one was sent.
    pub authorization: Option<String>,
    pub status: u16,
}

/// The second loopback server that redirected blob downloads land on: it
/// serves what the proxy stored (GET and HEAD, `Range: bytes=N-[M]`) and
/// records each request, notably whether an `Authorization` header came.
pub struct BlobHost {
    /// `127.0.0.1:PORT`
    pub addr: SocketAddr,
    blobs: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    requests: Arc<Mutex<Vec<HostRequest>>>,
    _server: Server,
}

impl BlobHost {
    /// Starts an empty blob host on a free loopback port.
    pub fn start() -> BlobHost {
        let blobs: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let requests: Arc<Mutex<Vec<HostRequest>>> = Arc::default();
        let (b, r) = (blobs.clone(), requests.clone());
        let server = Server::start(Arc::new(move |req: &http::Request| {
            let response = serve_blob(&b.lock().unwrap(), req);
            r.lock().unwrap().push(HostRequest {
                method: req.method.clone(),
                target: req.target.clone(),
                authorization: req.header("authorization").map(str::to_string),
                status: response.status,
            });
            response
        }));
        BlobHost {
            addr: server.addr,
            blobs,
            requests,
            _server: server,
        }
    }

    /// Serves `body` at `path` (no query).
    pub fn store(&self, path: &str, body: Vec<u8>) {
        self.blobs.lock().unwrap().insert(path.to_string(), body);
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<HostRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Whether any request carried an `Authorization` header.
    pub fn saw_authorization(&self) -> bool {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.authorization.is_some())
    }
}

fn serve_blob(blobs: &HashMap<String, Vec<u8>>, req: &http::Request) -> http::Response {
    let Some(body) = blobs.get(req.path()) else {
        return http::Response::text(404, "no such blob");
    };
    if req.method != "GET" && req.method != "HEAD" {
        return http::Response::text(405, "method not allowed");
    }
    let len = body.len() as u64;
    let mut headers = vec![
        (
            "Content-Type".to_string(),
            "application/octet-stream".to_string(),
        ),
        ("Accept-Ranges".to_string(), "bytes".to_string()),
    ];
    if let Some(range) = req.header("range").and_then(|r| r.strip_prefix("bytes=")) {
        let (start, end) = range.split_once('-').unwrap_or((range, ""));
        let start: u64 = start.trim().parse().unwrap_or(u64::MAX);
        let end: u64 = end.trim().parse().unwrap_or(len.saturating_sub(1));
        if start >= len || end < start {
            headers.push(("Content-Range".into(), format!("bytes */{len}")));
            return http::Response {
                status: 416,
                headers,
                body: Vec::new(),
            };
        }
        let end = end.min(len - 1);
        headers.push(("Content-Range".into(), format!("bytes {start}-{end}/{len}")));
        return http::Response {
            status: 206,
            headers,
            body: body[start as usize..=end as usize].to_vec(),
        };
    }
    http::Response {
        status: 200,
        headers,
        body: body.clone(),
    }
}

/// Minimal HTTP/1.1: message heads, body framing, and a threaded server.
pub mod http {
    use std::io::{self, Read, Write};
    use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    /// A connection idle this long is closed.
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// A server stops accepting after this long, whatever happens.
    pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
    const MAX_HEAD: usize = 64 * 1024;
    const MAX_BODY: usize = 512 << 20;

    pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A request or response head: its first line, headers, and raw bytes
    /// (through the blank line).
    #[derive(Clone, Debug)]
    pub struct Head {
        pub first_line: String,
        pub headers: Vec<(String, String)>,
        pub raw: Vec<u8>,
    }

    impl Head {
        pub fn header(&self, name: &str) -> Option<&str> {
            find_header(&self.headers, name)
        }
        pub fn method(&self) -> &str {
            self.first_line.split(' ').next().unwrap_or("")
        }
        pub fn target(&self) -> &str {
            self.first_line.split(' ').nth(1).unwrap_or("")
        }
        /// A response's status code (0 if unparseable).
        pub fn status(&self) -> u16 {
            self.first_line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        }
        fn chunked(&self) -> bool {
            self.header("transfer-encoding")
                .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        }
        fn content_length(&self) -> Option<u64> {
            self.header("content-length")
                .and_then(|v| v.trim().parse().ok())
        }
        pub fn request_framing(&self) -> Framing {
            if self.chunked() {
                Framing::Chunked
            } else {
                self.content_length().map_or(Framing::None, Framing::Length)
            }
        }
        pub fn response_framing(&self, request_method: &str) -> Framing {
            let status = self.status();
            if request_method == "HEAD"
                || (100..200).contains(&status)
                || status == 204
                || status == 304
            {
                Framing::None
            } else if self.chunked() {
                Framing::Chunked
            } else {
                self.content_length()
                    .map_or(Framing::UntilClose, Framing::Length)
            }
        }
    }

    /// How a message body is delimited.
    #[derive(Clone, Copy, Debug)]
    pub enum Framing {
        None,
        Length(u64),
        Chunked,
        UntilClose,
    }

    /// Part of a body as read off the wire: chunk framing, or body bytes.
    pub enum Piece<'a> {
        Framing(&'a [u8]),
        Data(&'a [u8]),
    }

    /// A buffered reader of HTTP messages on a stream.
    pub struct Reader {
        stream: TcpStream,
        buf: Vec<u8>,
        pos: usize,
    }

    impl Reader {
        pub fn new(stream: TcpStream) -> Reader {
            Reader {
                stream,
                buf: Vec::with_capacity(64 * 1024),
                pos: 0,
            }
        }

        fn available(&self) -> &[u8] {
            &self.buf[self.pos..]
        }

        /// Reads more bytes; `Ok(0)` at end of stream.
        fn fill(&mut self) -> io::Result<usize> {
            if self.pos == self.buf.len() {
                self.buf.clear();
                self.pos = 0;
            } else if self.pos > 32 * 1024 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            let old = self.buf.len();
            self.buf.resize(old + 64 * 1024, 0);
            let n = loop {
                match self.stream.read(&mut self.buf[old..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            self.buf.truncate(old + *n.as_ref().unwrap_or(&0));
            n
        }

        /// The next head; `None` if the stream ends cleanly before one.
        pub fn read_head(&mut self) -> io::Result<Option<Head>> {
            loop {
                if let Some(end) = find(self.available(), b"\r\n\r\n") {
                    let raw = self.available()[..end + 4].to_vec();
                    self.pos += end + 4;
                    return parse_head(raw).map(Some);
                }
                if self.available().len() > MAX_HEAD {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "head too long"));
                }
                if self.fill()? == 0 {
                    return if self.available().is_empty() {
                        Ok(None)
                    } else {
                        Err(io::ErrorKind::UnexpectedEof.into())
                    };
                }
            }
        }

        fn read_line(&mut self) -> io::Result<Vec<u8>> {
            loop {
                if let Some(end) = find(self.available(), b"\n") {
                    let line = self.available()[..=end].to_vec();
                    self.pos += end + 1;
                    return Ok(line);
                }
                if self.available().len() > 8192 {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
                }
                if self.fill()? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
        }

        /// Hands `n` body bytes to `sink` in pieces; `Ok(false)` if the
        /// sink stopped.
        fn data(
            &mut self,
            mut n: u64,
            sink: &mut dyn FnMut(Piece) -> io::Result<bool>,
        ) -> io::Result<bool> {
            while n > 0 {
                if self.available().is_empty() && self.fill()? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                let take = (self.available().len() as u64).min(n) as usize;
                let start = self.pos;
                self.pos += take;
                n -= take as u64;
                if !sink(Piece::Data(&self.buf[start..start + take]))? {
                    return Ok(false);
                }
            }
            Ok(true)
        }

        /// Reads one body, handing it to `sink` piece by piece. Returns
        /// `Ok(false)` if the sink stopped it (the stream is then not at a
        /// message boundary).
        pub fn read_body(
            &mut self,
            framing: Framing,
            sink: &mut dyn FnMut(Piece) -> io::Result<bool>,
        ) -> io::Result<bool> {
            match framing {
                Framing::None => Ok(true),
                Framing::Length(n) => self.data(n, sink),
                Framing::UntilClose => loop {
                    if self.available().is_empty() && self.fill()? == 0 {
                        return Ok(true);
                    }
                    let start = self.pos;
                    self.pos = self.buf.len();
                    if !sink(Piece::Data(&self.buf[start..]))? {
                        return Ok(false);
                    }
                },
                Framing::Chunked => loop {
                    let line = self.read_line()?;
                    if !sink(Piece::Framing(&line))? {
                        return Ok(false);
                    }
                    let text = String::from_utf8_lossy(&line);
                    let size = text.split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(size, 16)
                        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "chunk size"))?;
                    if size == 0 {
                        loop {
                            let trailer = self.read_line()?;
                            if !sink(Piece::Framing(&trailer))? {
                                return Ok(false);
                            }
                            if trailer == b"\r\n" || trailer == b"\n" {
                                return Ok(true);
                            }
                        }
                    }
                    if !self.data(size, sink)? {
                        return Ok(false);
                    }
                    let crlf = self.read_line()?;
                    if !sink(Piece::Framing(&crlf))? {
                        return Ok(false);
                    }
                },
            }
        }

        /// Reads a whole body into memory.
        pub fn read_body_to_vec(&mut self, framing: Framing) -> io::Result<Vec<u8>> {
            let mut body = Vec::new();
            self.read_body(framing, &mut |piece| {
                if let Piece::Data(b) = piece {
                    if body.len() + b.len() > MAX_BODY {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, "body too big"));
                    }
                    body.extend_from_slice(b);
                }
                Ok(true)
            })?;
            Ok(body)
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    fn parse_head(raw: Vec<u8>) -> io::Result<Head> {
        let text = String::from_utf8_lossy(&raw).into_owned();
        let mut lines = text.split("\r\n");
        let first_line = lines.next().unwrap_or("").to_string();
        if first_line.split(' ').count() < 2 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "bad first line"));
        }
        let headers = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        Ok(Head {
            first_line,
            headers,
            raw,
        })
    }

    /// A whole request, as [`Server`] handlers get it.
    #[derive(Clone, Debug)]
    pub struct Request {
        pub method: String,
        /// Path and query, as sent.
        pub target: String,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Request {
        pub fn header(&self, name: &str) -> Option<&str> {
            find_header(&self.headers, name)
        }
        pub fn path(&self) -> &str {
            self.target.split('?').next().unwrap_or("")
        }
        /// Decoded query parameters, in order, repeats kept.
        pub fn query(&self) -> Vec<(String, String)> {
            let query = self.target.split_once('?').map_or("", |(_, q)| q);
            decode_form(query)
        }
        /// Decoded `application/x-www-form-urlencoded` body parameters.
        pub fn form(&self) -> Vec<(String, String)> {
            decode_form(&String::from_utf8_lossy(&self.body))
        }
    }

    /// Decodes `a=b&c=d` with percent escapes and `+` for space.
    pub fn decode_form(s: &str) -> Vec<(String, String)> {
        let url = reqwest::Url::parse(&format!("http://form.invalid/?{s}")).expect("form url");
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// A response to write.
    #[derive(Clone, Debug)]
    pub struct Response {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Response {
        pub fn text(status: u16, body: &str) -> Response {
            Response {
                status,
                headers: vec![("Content-Type".into(), "text/plain".into())],
                body: body.as_bytes().to_vec(),
            }
        }
        pub fn json(status: u16, body: &serde_json::Value) -> Response {
            Response {
                status,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: body.to_string().into_bytes(),
            }
        }
        /// Writes with a Content-Length (no body after a HEAD).
        pub fn write_to(&self, w: &mut dyn Write, request_method: &str) -> io::Result<()> {
            let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
            for (name, value) in &self.headers {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
            out.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
            let mut bytes = out.into_bytes();
            if request_method != "HEAD" {
                bytes.extend_from_slice(&self.body);
            }
            w.write_all(&bytes)?;
            w.flush()
        }
    }

    fn reason(status: u16) -> &'static str {
        match status {
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            204 => "No Content",
            206 => "Partial Content",
            301 => "Moved Permanently",
            302 => "Found",
            307 => "Temporary Redirect",
            308 => "Permanent Redirect",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            416 => "Range Not Satisfiable",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Status",
        }
    }

    /// Registers a connection's sockets so that stopping the server can
    /// shut them down (which unblocks the threads reading them).
    #[derive(Clone, Default)]
    pub struct Tracker(Arc<Mutex<Vec<TcpStream>>>);

    impl Tracker {
        pub fn track(&self, stream: &TcpStream) {
            if let Ok(clone) = stream.try_clone() {
                self.0.lock().unwrap().push(clone);
            }
        }
        fn shutdown(&self) {
            for s in self.0.lock().unwrap().iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    type Conns = Arc<Mutex<Vec<(Tracker, JoinHandle<()>)>>>;
    type ConnHandler = Arc<dyn Fn(TcpStream, &Tracker) + Send + Sync>;
    /// Answers one request.
    pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

    /// A loopback TCP server with a thread per connection. Dropping it stops
    /// accepting, shuts every connection down and joins every thread.
    pub struct Server {
        /// `127.0.0.1:PORT`
        pub addr: SocketAddr,
        stop: Arc<AtomicBool>,
        acceptor: Option<JoinHandle<()>>,
        conns: Conns,
    }

    impl Server {
        /// Serves HTTP/1.1 requests (keep-alive) with `handler`.
        pub fn start(handler: Handler) -> Server {
            Server::start_raw(Arc::new(move |stream: TcpStream, _: &Tracker| {
                serve_http(stream, &handler)
            }))
        }

        /// Runs `conn` on a thread of its own for each accepted connection;
        /// the accepted stream is already tracked.
        pub fn start_raw(conn: ConnHandler) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
            let addr = listener.local_addr().expect("local addr");
            listener
                .set_nonblocking(true)
                .expect("nonblocking listener");
            let stop = Arc::new(AtomicBool::new(false));
            let conns: Conns = Arc::default();
            let (stop2, conns2) = (stop.clone(), conns.clone());
            let acceptor = std::thread::spawn(move || {
                let started = Instant::now();
                while !stop2.load(Ordering::SeqCst) && started.elapsed() < MAX_LIFETIME {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let _ = stream.set_nonblocking(false);
                            let _ = stream.set_nodelay(true);
                            let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
                            let tracker = Tracker::default();
                            tracker.track(&stream);
                            let (t, conn) = (tracker.clone(), conn.clone());
                            let thread = std::thread::spawn(move || conn(stream, &t));
                            let mut list = conns2.lock().unwrap();
                            list.retain(|(_, h)| !h.is_finished());
                            list.push((tracker, thread));
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
            Server {
                addr,
                stop,
                acceptor: Some(acceptor),
                conns,
            }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(acceptor) = self.acceptor.take() {
                let _ = acceptor.join();
            }
            let conns = std::mem::take(&mut *self.conns.lock().unwrap());
            for (tracker, _) in &conns {
                tracker.shutdown();
            }
            for (_, thread) in conns {
                let _ = thread.join();
            }
        }
    }

    fn serve_http(stream: TcpStream, handler: &Handler) {
        let Ok(mut writer) = stream.try_clone() else {
            return;
        };
        let mut reader = Reader::new(stream);
        while let Ok(Some(head)) = reader.read_head() {
            if head
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
                && writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
            {
                return;
            }
            let Ok(body) = reader.read_body_to_vec(head.request_framing()) else {
                return;
            };
            let request = Request {
                method: head.method().to_string(),
                target: head.target().to_string(),
                headers: head.headers.clone(),
                body,
            };
            let response = handler(&request);
            if response.write_to(&mut writer, &request.method).is_err() {
                return;
            }
            if request
                .header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"))
            {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}
