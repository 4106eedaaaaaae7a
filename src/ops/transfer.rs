//! Putting blobs into a target the cheapest way — already there, mounted
//! from another repository of the same registry, or sent — and the manifest
//! last. Shared by `save` and `copy`.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::{StreamExt, TryStreamExt, stream};

use super::save::TargetReport;
use super::spool::{self, SpoolDir};
use super::target_plan::{Placing, plan_target};
use super::{OpsError, blocking};
use crate::digest::{Digest, VerifyingReader};
use crate::image::{CacheImage, Descriptor, RawManifest};
use crate::layer::growing::GrowingBlob;
use crate::progress::Progress;
use crate::store::CacheStore;

/// A blob on its way to one target.
pub(crate) struct Upload<'a> {
    pub label: String,
    pub desc: Descriptor,
    pub content: Content<'a>,
}

/// Where a blob's bytes come from, fetched only when the target needs them.
pub(crate) enum Content<'a> {
    File(&'a Path),
    Bytes(&'a [u8]),
    /// Another store holds it: copied through a verified spool file, so a
    /// blob that fails its digest never reaches the target.
    Remote {
        from: &'a dyn CacheStore,
        spool: &'a Spool,
    },
}

/// How a blob got into a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Uploaded {
    Written(u64),
    Reused,
    Mounted,
}

/// Blobs placed in a target while the save was still packing, and how.
pub(crate) type EarlyUploads = HashMap<Digest, Uploaded>;

/// Blobs a repository of some registry is known to hold, so another
/// repository of that registry can mount them instead of receiving their
/// bytes again.
#[derive(Debug, Clone)]
pub struct MountSource {
    pub registry: String,
    pub repository: String,
    pub blobs: HashSet<Digest>,
}

/// What one target needs to place its blobs the cheapest way.
pub(crate) struct Placement {
    /// Blobs the target's current manifest names: present without a HEAD.
    known: HashSet<Digest>,
    /// Other repositories of the same registry that hold some blobs.
    mount_from: Vec<MountSource>,
}

impl Placement {
    pub(crate) async fn for_target(store: &dyn CacheStore, sources: &[MountSource]) -> Placement {
        let mut known = HashSet::new();
        // The manifest the tag points at now names blobs the repository
        // surely holds (Distribution links them into it); anything wrong
        // with it only costs HEAD requests.
        if let Ok(Some(raw)) = store.fetch_manifest().await
            && let Ok(image) = CacheImage::decode(&raw)
        {
            known.extend(image.descriptors().map(|d| d.digest.clone()));
        }
        Placement::with_known(store, known, sources)
    }

    /// When the caller has already read the target's current manifest:
    /// `known` is what it names.
    pub(crate) fn with_known(
        store: &dyn CacheStore,
        known: HashSet<Digest>,
        sources: &[MountSource],
    ) -> Placement {
        let mount_from = match store.registry_repository() {
            Some((registry, repository)) => sources
                .iter()
                .filter(|s| s.registry == registry && s.repository != repository)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        Placement { known, mount_from }
    }
}

/// A freshly packed layer, ready to go to the target while the rest of the
/// tree is still being packed.
pub(crate) struct PackedBlob {
    pub label: String,
    pub desc: Descriptor,
    pub file: PathBuf,
}

/// What the packer tells the early uploader.
pub(crate) enum Announced {
    /// A part's blob as a worker starts writing it: a store that follows
    /// growing blobs sends it as it grows.
    Started {
        label: String,
        blob: Arc<GrowingBlob>,
    },
    /// A finished layer: sent now unless it was followed as it grew.
    Packed(Box<PackedBlob>),
}

/// Uploads layers as the packer announces them (up to `jobs` at once),
/// until the packer hangs up. A failure is not an error here: the blob is
/// simply not in the result, and the export sends it again and reports
/// what went wrong there.
pub(crate) async fn upload_early(
    store: &dyn CacheStore,
    placement: &Placement,
    announced: tokio::sync::mpsc::UnboundedReceiver<Announced>,
    progress: &dyn Progress,
    jobs: usize,
) -> EarlyUploads {
    let incoming = stream::unfold(announced, |mut rx| async move {
        rx.recv().await.map(|message| (message, rx))
    });
    // Blobs followed as they grew; their finished announcement is only
    // news. Decided in arrival order: a blob's start always comes first.
    let mut followed: HashSet<PathBuf> = HashSet::new();
    incoming
        .filter_map(|message| {
            let job = match message {
                Announced::Started { label, blob } if store.follows_growing_blobs() => {
                    followed.insert(blob.path().to_path_buf());
                    Some(EarlyJob::Follow { label, blob })
                }
                Announced::Started { .. } => None,
                Announced::Packed(packed) if followed.contains(&packed.file) => None,
                Announced::Packed(packed) => Some(EarlyJob::Send(packed)),
            };
            async move { job }
        })
        .map(|job| async move {
            match job {
                EarlyJob::Follow { label, blob } => {
                    follow_one(store, &label, &blob, progress).await
                }
                EarlyJob::Send(blob) => {
                    let upload = Upload {
                        label: blob.label,
                        desc: blob.desc,
                        content: Content::File(&blob.file),
                    };
                    let digest = upload.desc.digest.clone();
                    match upload_one(store, &upload, placement, progress).await {
                        Ok(done) => Some((digest, done)),
                        Err(err) => {
                            tracing::debug!(
                                "early upload of {digest}: {err}; sent again at export"
                            );
                            None
                        }
                    }
                }
            }
        })
        .buffer_unordered(jobs.max(1))
        .filter_map(|outcome| async move { outcome })
        .collect()
        .await
}

enum EarlyJob {
    Follow {
        label: String,
        blob: Arc<GrowingBlob>,
    },
    Send(Box<PackedBlob>),
}

/// Sends a blob as it grows; `None` if that did not work out (the export
/// then sends the finished file, and reports any error there).
async fn follow_one(
    store: &dyn CacheStore,
    label: &str,
    blob: &Arc<GrowingBlob>,
    progress: &dyn Progress,
) -> Option<(Digest, Uploaded)> {
    let bar = progress.blob(label, 0);
    match store.put_growing_blob(blob, &*bar).await {
        Ok(Some((digest, size))) => {
            bar.finish("uploaded");
            Some((digest, Uploaded::Written(size)))
        }
        Ok(None) => {
            bar.finish("stopped");
            None
        }
        Err(err) => {
            bar.finish("failed; sent again when packed");
            tracing::debug!(
                "streaming part {} of {}: {err}; sent again at export",
                blob.part(),
                label
            );
            None
        }
    }
}

/// Sends every upload (up to `jobs` at once), counting what was written and
/// reused into `report`, then the manifest — only once every blob is in
/// place, so a failed export never moves the tag.
/// Blobs in `early` are in place already and only counted.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn place_all(
    store: &dyn CacheStore,
    uploads: Vec<Upload<'_>>,
    manifest: &RawManifest,
    placement: &Placement,
    early: &EarlyUploads,
    progress: &dyn Progress,
    jobs: usize,
    report: &mut TargetReport,
) -> Result<(), OpsError> {
    let target = report.target.clone();
    let suffix = format!(" -> {target}");
    let plan = plan_target(
        &target,
        uploads.iter().map(|u| {
            let what = u.label.strip_suffix(&suffix).unwrap_or(&u.label);
            (what, &u.desc.digest, u.desc.size)
        }),
        &placement.known,
        early,
    );
    for line in plan.lines() {
        tracing::info!("{line}");
    }
    let (done, uploads): (Vec<_>, Vec<_>) = uploads
        .into_iter()
        .zip(&plan.steps)
        .partition(|(_, step)| matches!(step.placing, Placing::SentEarly(_)));
    let done = done.iter().filter_map(|(_, step)| match step.placing {
        Placing::SentEarly(done) => Some(done),
        _ => None,
    });
    // Blobs already there still pass through `upload_one`, which counts
    // them as reused without asking the target.
    let uploads = uploads.into_iter().map(|(upload, _)| upload);
    // The blobs are distinct, so their order does not matter; a failure
    // drops the uploads still running and the manifest is never written.
    // Small blobs (a config, an entries list) cost round trips, not
    // bandwidth: they go all at once beside the large ones, whose number
    // `jobs` bounds.
    let (small, large): (Vec<_>, Vec<_>) = uploads.partition(|u| u.desc.size <= SMALL_BLOB);
    let (mut outcomes, small) = futures_util::future::try_join(
        send_all(store, large, placement, progress, jobs.max(1)),
        send_all(store, small, placement, progress, SMALL_AT_ONCE),
    )
    .await?;
    outcomes.extend(small);
    outcomes.extend(done);
    for outcome in outcomes {
        match outcome {
            Uploaded::Written(bytes) => {
                report.uploaded_blobs += 1;
                report.uploaded_bytes += bytes;
            }
            Uploaded::Reused | Uploaded::Mounted => report.reused_blobs += 1,
        }
    }

    let manifest_progress = progress.blob(
        &format!("manifest {} -> {target}", manifest.digest.short()),
        manifest.bytes.len() as u64,
    );
    if let Err(err) = store.put_manifest(manifest).await {
        manifest_progress.finish("failed");
        return Err(err.into());
    }
    manifest_progress.advance(manifest.bytes.len() as u64);
    manifest_progress.finish("written");
    report.uploaded_bytes += manifest.bytes.len() as u64;
    tracing::info!(
        "{}: wrote cache {} ({} blob(s) written, {} reused)",
        store.describe(),
        manifest.digest,
        report.uploaded_blobs,
        report.reused_blobs
    );
    Ok(())
}

/// Sends `uploads`, `at_once` at a time; the first failure drops the rest.
async fn send_all(
    store: &dyn CacheStore,
    uploads: Vec<Upload<'_>>,
    placement: &Placement,
    progress: &dyn Progress,
    at_once: usize,
) -> Result<Vec<Uploaded>, OpsError> {
    stream::iter(uploads)
        .map(|upload| async move { upload_one(store, &upload, placement, progress).await })
        .buffer_unordered(at_once)
        .try_collect()
        .await
}

/// Blobs this small are sent without asking first whether the target has
/// them: the question costs the round trip the answer would save.
const SMALL_BLOB: u64 = 64 * 1024;
/// Small blobs sent at once.
const SMALL_AT_ONCE: usize = 8;

/// Sends one blob unless the target has it already.
async fn upload_one(
    store: &dyn CacheStore,
    upload: &Upload<'_>,
    placement: &Placement,
    progress: &dyn Progress,
) -> Result<Uploaded, OpsError> {
    let blob = progress.blob(&upload.label, upload.desc.size);
    let result = async {
        let digest = &upload.desc.digest;
        if placement.known.contains(digest) {
            return Ok(Uploaded::Reused);
        }
        if upload.desc.size > SMALL_BLOB && store.has_blob(&upload.desc).await? {
            return Ok(Uploaded::Reused);
        }
        for source in placement
            .mount_from
            .iter()
            .filter(|s| s.blobs.contains(digest))
        {
            match store.mount_blob(&upload.desc, &source.repository).await {
                Ok(true) => return Ok(Uploaded::Mounted),
                Ok(false) => {}
                Err(err) => tracing::debug!(
                    "mounting {digest} from {}: {err}; uploading instead",
                    source.repository
                ),
            }
        }
        match &upload.content {
            Content::File(path) => store.put_blob_file(&upload.desc, path, &*blob).await?,
            Content::Bytes(bytes) => {
                store.put_blob_bytes(&upload.desc, bytes).await?;
                blob.advance(upload.desc.size);
            }
            Content::Remote { from, spool } => {
                let file = spool.fetch(*from, &upload.desc).await?;
                store
                    .put_blob_file(&upload.desc, file.path(), &*blob)
                    .await?;
            }
        }
        Ok::<_, OpsError>(Uploaded::Written(upload.desc.size))
    }
    .await;
    blob.finish(match &result {
        Ok(Uploaded::Written(_)) => "uploaded",
        Ok(Uploaded::Reused) => "reused",
        Ok(Uploaded::Mounted) => "mounted",
        Err(_) => "failed",
    });
    result
}

/// Blobs fetched from other stores, kept until the operation ends so that
/// a blob going to several targets is downloaded and verified once.
pub(crate) struct Spool {
    dir: SpoolDir,
    fetched: Mutex<HashMap<Digest, Arc<tempfile::NamedTempFile>>>,
}

impl Spool {
    pub(crate) fn new() -> Result<Spool, OpsError> {
        // Spools of runs killed before they could remove theirs: nothing
        // else ever would.
        tokio::task::block_in_place(|| {
            spool::sweep(&std::env::temp_dir(), spool::TEMP_PREFIX);
        });
        let dir = SpoolDir::in_temp_dir()
            .map_err(|e| OpsError::Failed(format!("creating a spool directory: {e}")))?;
        Ok(Spool {
            dir,
            fetched: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The blob's verified spool file, fetching it on first use. Callers
    /// send each digest once per target, and targets one after another, so
    /// no two fetches of one blob race.
    async fn fetch(
        &self,
        from: &dyn CacheStore,
        desc: &Descriptor,
    ) -> Result<Arc<tempfile::NamedTempFile>, OpsError> {
        if let Some(file) = self.cached(&desc.digest) {
            return Ok(file);
        }
        let file = Arc::new(fetch_verified(from, desc, self.path()).await?);
        if let Ok(mut fetched) = self.fetched.lock() {
            fetched.insert(desc.digest.clone(), Arc::clone(&file));
        }
        Ok(file)
    }

    fn cached(&self, digest: &Digest) -> Option<Arc<tempfile::NamedTempFile>> {
        self.fetched.lock().ok()?.get(digest).cloned()
    }
}

/// Copies a blob from `from` into a spool file, checking its digest and
/// size on the way; the file is gone when the handle drops.
pub(crate) async fn fetch_verified(
    from: &dyn CacheStore,
    desc: &Descriptor,
    spool: &Path,
) -> Result<tempfile::NamedTempFile, OpsError> {
    let reader = from.open_blob(desc).await?;
    let digest = desc.digest.clone();
    let size = desc.size;
    let spool = spool.to_path_buf();
    let label = from.describe();
    blocking(move || -> io::Result<tempfile::NamedTempFile> {
        let mut file = super::spool::blob_file_in(&spool)?;
        let mut verifying = VerifyingReader::new(reader, digest, size);
        let mut out = io::BufWriter::with_capacity(256 << 10, file.as_file_mut());
        io::copy(&mut verifying, &mut out)?;
        out.flush()?;
        drop(out);
        verifying.finish()?;
        Ok(file)
    })
    .await?
    .map_err(|err| OpsError::Failed(format!("{label}: blob {}: {err}", desc.digest)))
}
