//! A scripted HTTP/1.1 server for the client's unit tests: what the real
//! registry cannot be made to do on demand (redirect to another host,
//! answer 503 with `Retry-After`, cut a body short, expire a token). The
//! protocol itself is tested against the real Distribution registry in
//! `tests/registry_*.rs`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::client::RegistryClient;
use super::transport::Transport;

/// A client of a test server on loopback port `port`: plain HTTP, and
/// retries 10 ms apart so that tests of them stay quick.
pub fn loopback_client(port: u16) -> RegistryClient {
    let mut client = RegistryClient::new(
        &format!("127.0.0.1:{port}"),
        Transport {
            allow_plain_http: true,
            skip_verify: false,
        },
    )
    .expect("a client for a loopback test server");
    client.retry.base = Duration::from_millis(10);
    client
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What to answer: a status line's code, headers and body; `cut_after`
/// closes the connection after that many body bytes (the headers still
/// announce the whole body); `chunked` sends the body with
/// `Transfer-Encoding: chunked` and no length, as a streaming server does.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub cut_after: Option<usize>,
    pub chunked: bool,
}

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            cut_after: None,
            chunked: false,
        }
    }

    /// No answer at all: the connection closes once the request is read,
    /// as when a connection breaks after a request went out whole.
    pub fn hang_up() -> Reply {
        Reply::new(0)
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }

    pub fn cut_after(mut self, bytes: usize) -> Reply {
        self.cut_after = Some(bytes);
        self
    }

    pub fn chunked(mut self) -> Reply {
        self.chunked = true;
        self
    }
}

type Handler = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

pub struct TestServer {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    /// Serves on 127.0.0.1; `handler` gets each request and its index
    /// (counting only requests that were HTTP, not the TLS probe).
    pub async fn start(
        handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = handler.clone();
                let log = log.clone();
                tokio::spawn(serve(stream, handler, log));
            }
        });
        TestServer { port, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve(mut stream: TcpStream, handler: Arc<Handler>, log: Arc<Mutex<Vec<Seen>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // A TLS ClientHello (regcache probing for HTTPS): hang up.
        if buf.is_empty() && chunk[0] == 0x16 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let target = request_line.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        body.extend_from_slice(&chunk[..n]);
    }
    let seen = Seen {
        method,
        target,
        headers,
        body,
    };
    let index = {
        let mut log = log.lock().unwrap();
        log.push(seen.clone());
        log.len() - 1
    };
    let reply = handler(&seen, index);
    if reply.status == 0 {
        let _ = stream.shutdown().await;
        return;
    }
    let mut out = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
    let mut has_length = false;
    for (k, v) in &reply.headers {
        has_length |= k.eq_ignore_ascii_case("content-length");
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if reply.chunked {
        out.push_str("Transfer-Encoding: chunked\r\n");
    } else if !has_length {
        out.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes()).await;
    if seen.method == "HEAD" {
        return;
    }
    let body = match reply.cut_after {
        Some(n) => &reply.body[..n.min(reply.body.len())],
        None => &reply.body[..],
    };
    if reply.chunked {
        // 64 KiB chunks: the client sees many, as from a streaming server.
        for piece in body.chunks(64 << 10) {
            let _ = stream
                .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                .await;
            let _ = stream.write_all(piece).await;
            let _ = stream.write_all(b"\r\n").await;
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
    } else {
        let _ = stream.write_all(body).await;
    }
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
}
