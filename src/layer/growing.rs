//! A layer blob still being written, which an upload may follow as it
//! grows: the packer counts the bytes that reached the spool file, and
//! says at the end what the blob turned out to be (digest and size) or
//! that it never will be (an error, a cancelled save). A registry upload
//! then costs about the longer of packing and sending, not their sum.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

use crate::digest::Digest;

/// How a growing blob ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Complete: every byte is in the file.
    Done { digest: Digest, size: u64 },
    /// Never complete: its packer failed or was cancelled.
    Abandoned,
}

/// What a follower sees at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Growth {
    /// Bytes in the file so far, all final (the file is only appended to).
    pub written: u64,
    pub ending: Option<Ending>,
}

#[derive(Debug)]
pub struct GrowingBlob {
    path: PathBuf,
    /// Which part of its entry the blob packs.
    part: usize,
    written: AtomicU64,
    ending: Mutex<Option<Ending>>,
    /// One follower waits here; a permit is kept when it is not waiting,
    /// so no growth between its look and its wait is missed.
    changed: Notify,
}

impl GrowingBlob {
    pub fn new(path: &Path, part: usize) -> Arc<GrowingBlob> {
        Arc::new(GrowingBlob {
            path: path.to_path_buf(),
            part,
            written: AtomicU64::new(0),
            ending: Mutex::new(None),
            changed: Notify::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn part(&self) -> usize {
        self.part
    }

    /// The written count is read before the ending, and the packer sets the
    /// ending after its last write, so a `Done` here always comes with
    /// every byte counted.
    pub fn growth(&self) -> Growth {
        let written = self.written.load(Ordering::Acquire);
        let ending = self.ending.lock().map(|e| e.clone()).unwrap_or(None);
        let written = match ending {
            Some(_) => self.written.load(Ordering::Acquire),
            None => written,
        };
        Growth { written, ending }
    }

    /// Waits until the blob grows or ends (returns at once if it did since
    /// the last wait).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    fn wrote(&self, bytes: u64) {
        self.written.fetch_add(bytes, Ordering::Release);
        self.changed.notify_one();
    }

    fn end(&self, ending: Ending) {
        if let Ok(mut slot) = self.ending.lock()
            && slot.is_none()
        {
            *slot = Some(ending);
        }
        self.changed.notify_one();
    }

    /// Every byte is in the file: it is the blob `digest` of `size` bytes.
    pub fn finish(&self, digest: Digest, size: u64) {
        self.end(Ending::Done { digest, size });
    }
}

/// The spool file a packer writes, counting what reaches it for a follower.
/// Dropped before [`GrowingBlob::finish`], it marks the blob abandoned, so a
/// follower never waits for a packer that is gone.
pub struct CountingFile {
    file: std::fs::File,
    blob: Option<Arc<GrowingBlob>>,
}

impl CountingFile {
    /// `blob`: the follower's view, or `None` when nobody follows.
    pub fn new(file: std::fs::File, blob: Option<Arc<GrowingBlob>>) -> CountingFile {
        CountingFile { file, blob }
    }

    /// Flushes and closes; the blob is then complete on disk and its
    /// follower learns its digest and size.
    pub fn finish(mut self, digest: &Digest, size: u64) -> io::Result<()> {
        self.file.flush()?;
        if let Some(blob) = self.blob.take() {
            blob.finish(digest.clone(), size);
        }
        Ok(())
    }
}

impl Write for CountingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        if let Some(blob) = &self.blob {
            blob.wrote(n as u64);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for CountingFile {
    fn drop(&mut self) {
        if let Some(blob) = self.blob.take() {
            blob.end(Ending::Abandoned);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> Digest {
        Digest::of(b"x")
    }

    #[test]
    fn counts_what_reaches_the_file_and_ends_done() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let blob = GrowingBlob::new(&path, 3);
        let mut out = CountingFile::new(std::fs::File::create(&path).unwrap(), Some(blob.clone()));
        out.write_all(b"hello").unwrap();
        assert_eq!(
            blob.growth(),
            Growth {
                written: 5,
                ending: None
            }
        );
        out.write_all(b" world").unwrap();
        out.finish(&digest(), 11).unwrap();
        let growth = blob.growth();
        assert_eq!(growth.written, 11);
        assert_eq!(
            growth.ending,
            Some(Ending::Done {
                digest: digest(),
                size: 11
            })
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
        assert_eq!(blob.part(), 3);
    }

    #[test]
    fn a_packer_that_goes_away_abandons_the_blob() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let blob = GrowingBlob::new(&path, 0);
        let mut out = CountingFile::new(std::fs::File::create(&path).unwrap(), Some(blob.clone()));
        out.write_all(b"part of it").unwrap();
        drop(out);
        assert_eq!(blob.growth().ending, Some(Ending::Abandoned));
    }

    #[tokio::test]
    async fn a_follower_wakes_for_growth_that_came_before_it_waited() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let blob = GrowingBlob::new(&path, 0);
        let mut out = CountingFile::new(std::fs::File::create(&path).unwrap(), Some(blob.clone()));
        out.write_all(b"abc").unwrap();
        // The write happened before the wait: the kept permit wakes it.
        tokio::time::timeout(std::time::Duration::from_secs(5), blob.changed())
            .await
            .expect("woken by the earlier write");
        out.finish(&digest(), 3).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), blob.changed())
            .await
            .expect("woken by the ending");
    }
}
