//! Uploads through a proxy that cuts the connection once, in the middle of
//! a chunk, in front of the real Distribution registry: the upload must
//! recover (resume where the registry says, or start the session over when
//! the registry cancelled it) and the blob must arrive intact.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::common::pseudo_random;
use crate::common::registry::{RegistryOptions, TestRegistry};
use regcache::image::{Descriptor, media_types};
use regcache::progress::BlobProgress;
use regcache::reference::Reference;
use regcache::store::registry::RegistryStore;
use regcache::store::registry::upload::DEFAULT_CHUNK;
use regcache::store::{CacheStore, StoreOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Forwards to `upstream`. The `skip`+1-th request starting with
/// `method` is cut: exactly `cut_after` of its bytes (head included) reach
/// the registry, then both sides of the connection are closed. Counts the
/// bytes that reached the registry.
struct CuttingProxy {
    addr: SocketAddr,
    sent: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
}

#[derive(Clone, Copy)]
struct Cut {
    method: &'static str,
    skip: u64,
    cut_after: u64,
}

impl CuttingProxy {
    async fn start(upstream: SocketAddr, cut: Cut) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicU64::new(0));
        let (total, flag) = (sent.clone(), done.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                tokio::spawn(pipe(
                    client,
                    server,
                    cut,
                    total.clone(),
                    flag.clone(),
                    seen.clone(),
                ));
            }
        });
        CuttingProxy {
            addr,
            sent,
            cut: done,
        }
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    cut: Cut,
    total: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    seen: Arc<AtomicU64>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut buf = vec![0u8; 64 << 10];
        let marker = format!("{} /v2/", cut.method);
        // Bytes of the doomed request forwarded so far.
        let mut doomed: Option<u64> = None;
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let mut chunk = &buf[..n];
            if doomed.is_none()
                && !done.load(Ordering::SeqCst)
                && let Some(at) = chunk
                    .windows(marker.len())
                    .position(|w| w == marker.as_bytes())
                && seen.fetch_add(1, Ordering::SeqCst) == cut.skip
            {
                // Up to the request's start passes untouched.
                let before = &chunk[..at];
                if server_write.write_all(before).await.is_err() {
                    return;
                }
                total.fetch_add(before.len() as u64, Ordering::SeqCst);
                chunk = &chunk[at..];
                doomed = Some(0);
            }
            if let Some(forwarded) = doomed.as_mut() {
                let room = (cut.cut_after - *forwarded) as usize;
                if chunk.len() >= room {
                    let _ = server_write.write_all(&chunk[..room]).await;
                    total.fetch_add(room as u64, Ordering::SeqCst);
                    done.store(true, Ordering::SeqCst);
                    return;
                }
                *forwarded += chunk.len() as u64;
            }
            total.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            if server_write.write_all(chunk).await.is_err() {
                return;
            }
        }
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    };
    tokio::select! {
        _ = upstream => {},
        _ = downstream => {},
    }
}

#[derive(Default)]
struct Counted(AtomicU64);

impl BlobProgress for Counted {
    fn advance(&self, bytes: u64) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }
    fn finish(&self, _: &str) {}
}

/// Uploads a blob of two and a half chunks through a proxy making `cut`;
/// returns the bytes that reached the registry over the blob's size.
fn upload_through(cut: Cut) -> f64 {
    let registry = TestRegistry::start(RegistryOptions::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let len = (DEFAULT_CHUNK as usize * 5 / 2) + 999;
    let content = pseudo_random(len, 5);
    let path = tmp.path().join("blob");
    std::fs::write(&path, &content).unwrap();
    let desc = Descriptor::for_bytes(media_types::OCI_LAYER, &content);
    runtime.block_on(async {
        let proxy = CuttingProxy::start(registry.addr, cut).await;
        let reference =
            Reference::parse(&format!("127.0.0.1:{}/resume/app:t", proxy.addr.port())).unwrap();
        let store = RegistryStore::new(reference, false, &StoreOptions::default()).unwrap();
        let progress = Counted::default();
        store.put_blob_file(&desc, &path, &progress).await.unwrap();
        assert!(
            proxy.cut.load(Ordering::SeqCst),
            "the proxy did cut a connection"
        );
        assert_eq!(
            progress.0.load(Ordering::Relaxed),
            len as u64,
            "each byte reported once"
        );
        let mut reader = store.open_blob(&desc).await.unwrap();
        let back = tokio::task::spawn_blocking(move || {
            let mut back = Vec::new();
            reader.read_to_end(&mut back).unwrap();
            back
        })
        .await
        .unwrap();
        assert!(back == content, "the blob arrived intact");
        let ratio = proxy.sent.load(Ordering::SeqCst) as f64 / len as f64;
        eprintln!("{len} bytes uploaded with {ratio:.3}x sent");
        ratio
    })
}

/// The connection dies before any byte of the second chunk reaches the
/// registry (a stale keep-alive connection, say): the registry's `Range`
/// says one chunk is in, and the upload goes on from there.
#[test]
fn an_upload_resumes_from_the_registry_range() {
    let ratio = upload_through(Cut {
        method: "PATCH",
        skip: 1,
        cut_after: 0,
    });
    assert!(ratio < 1.01, "resumed, not restarted: {ratio:.3}x sent");
}

/// The connection dies 4 MiB into the second chunk. Distribution 2.8 then
/// refuses to resume (its upload URL's state says one chunk, its file
/// holds 4 MiB more) and cancels the session (BLOB_UPLOAD_INVALID): the
/// upload starts over, once, and still arrives intact.
#[test]
fn an_upload_cut_mid_chunk_recovers_and_arrives_intact() {
    let ratio = upload_through(Cut {
        method: "PATCH",
        skip: 1,
        cut_after: 4 << 20,
    });
    // One chunk and 4 MiB lost, then the whole blob again.
    assert!(ratio < 1.6, "{ratio:.3}x sent");
}
