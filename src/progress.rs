//! How long-running work reports progress, without knowing who shows it:
//! the operations and stores call this trait; the binary picks a terminal,
//! plain-line or silent implementation.

/// One transfer (an upload, a download, a layer being packed).
pub trait BlobProgress: Send + Sync {
    /// `bytes` more were moved.
    fn advance(&self, bytes: u64);
    /// The transfer ended; `outcome` says how ("uploaded", "reused",
    /// "mounted", "restored"…).
    fn finish(&self, outcome: &str);
}

/// Creates a [`BlobProgress`] per transfer.
pub trait Progress: Send + Sync {
    /// A transfer of `total` bytes (0 when unknown) named `label`.
    fn blob(&self, label: &str, total: u64) -> Box<dyn BlobProgress>;
}

/// Reports nothing: for quiet runs and for tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl BlobProgress for NoProgress {
    fn advance(&self, _bytes: u64) {}
    fn finish(&self, _outcome: &str) {}
}

impl Progress for NoProgress {
    fn blob(&self, _label: &str, _total: u64) -> Box<dyn BlobProgress> {
        Box::new(NoProgress)
    }
}
