//! `regcache copy`: read every `--cache-from` (written by BuildKit or by
//! regcache), merge them, and write the result to every `--cache-to` with
//! that spec's parameters — form, media types, compression, mode — without
//! running BuildKit, and so that BuildKit still gets its cache hits. A key
//! the spec leaves out keeps the source's value, so a bare `--cache-to` is
//! a byte-exact copy.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::import::{self, ImportOutcome, LoadedCache};
use super::restore::{RestoreReport, SourceReport};
use super::save::{MountSource, SaveReport, TargetReport};
use super::transfer::{Content, EarlyUploads, Placement, Spool, Upload, place_all};
use super::{OpsError, blocking};
use crate::compression::Compression;
use crate::digest::{Digest, HashingWriter, VerifyingReader};
use crate::image::merge::{self, CacheParts};
use crate::image::{CacheSummary, Descriptor, Form, media_types};
use crate::layer::codec::{compress_writer, decompress_reader};
use crate::layer::estargz::tar_to_estargz;
use crate::progress::Progress;
use crate::spec::{CacheTo, ExportParams, Mode};
use crate::store::{self, CacheStore, StoreOptions};

pub struct CopyOptions {
    pub cache_from: Vec<crate::spec::CacheFrom>,
    pub cache_to: Vec<CacheTo>,
    pub store: StoreOptions,
    pub progress: Arc<dyn Progress>,
    pub jobs: usize,
}

/// What a copy did: which sources loaded (as a restore reports them) and
/// what each target got (as a save reports it).
pub struct CopyReport {
    pub sources: RestoreReport,
    pub targets: SaveReport,
}

impl CopyReport {
    /// Whether any `--cache-from` loaded.
    pub fn loaded_any(&self) -> bool {
        self.sources.sources.iter().any(|s| s.loaded)
    }
}

pub async fn copy(options: CopyOptions) -> Result<CopyReport, OpsError> {
    let mut report = CopyReport {
        sources: RestoreReport {
            sources: Vec::new(),
            paths: Vec::new(),
            mount_sources: Vec::new(),
            held: Vec::new(),
        },
        targets: SaveReport {
            bases: Vec::new(),
            entries: Vec::new(),
            skipped: Vec::new(),
            cache_to: Vec::new(),
        },
    };
    let mut loaded: Vec<LoadedCache> = Vec::new();
    for spec in &options.cache_from {
        match import::load_tolerantly(spec, &options.store).await {
            ImportOutcome::Loaded(cache) => {
                report.sources.sources.push(SourceReport {
                    source: cache.label.clone(),
                    loaded: true,
                    matched: Some(cache.matched.clone()),
                    reason: None,
                });
                if let Some((registry, repository)) = cache.store.registry_repository() {
                    report.sources.mount_sources.push(MountSource {
                        registry,
                        repository,
                        blobs: cache
                            .image
                            .descriptors()
                            .map(|d| d.digest.clone())
                            .collect(),
                    });
                }
                loaded.push(*cache);
            }
            ImportOutcome::Missed {
                label,
                reason,
                hint,
            } => {
                ImportOutcome::warn_missed(&label, &reason, hint.as_deref());
                report.sources.sources.push(SourceReport {
                    source: label,
                    loaded: false,
                    matched: None,
                    reason: Some(reason),
                });
            }
        }
    }
    if loaded.is_empty() {
        tracing::warn!("nothing to copy: no --cache-from could be read; no cache was written");
        return Ok(report);
    }

    let parts = loaded
        .iter()
        .map(|c| CacheParts::from_image(&c.image, c.config.clone(), c.entries.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = merge::merge(parts)?;
    let sources = SourceParams::of(&loaded);
    sources.say_choices(&options.cache_to);
    // Each blob is read from the first source that lists it.
    let mut holders: BTreeMap<Digest, usize> = BTreeMap::new();
    for (i, cache) in loaded.iter().enumerate() {
        for desc in cache.image.descriptors() {
            holders.entry(desc.digest.clone()).or_insert(i);
        }
    }
    let spool = Spool::new()?;

    let mut mount_sources = report.sources.mount_sources.clone();
    for spec in &options.cache_to {
        let started = Instant::now();
        let outcome = match store::open_export(spec, &options.store) {
            Ok(store) => {
                let job = TargetJob {
                    spec,
                    written: Written::resolve(&spec.params, &sources),
                    store: store.as_ref(),
                    loaded: &loaded,
                    holders: &holders,
                    spool: &spool,
                    progress: options.progress.as_ref(),
                    jobs: options.jobs,
                };
                let result = job.run(&merged, &mount_sources).await;
                if result.is_ok()
                    && let Some((registry, repository)) = store.registry_repository()
                {
                    mount_sources.push(MountSource {
                        registry,
                        repository,
                        blobs: merged.blobs.keys().cloned().collect(),
                    });
                }
                result
            }
            Err(err) => Err(err.into()),
        };
        report
            .targets
            .cache_to
            .push(TargetReport::settle(spec, outcome, started));
    }
    Ok(report)
}

/// What the sources are, for the keys a `--cache-to` leaves to them. Where
/// merged sources differ, the richer: `max` (it holds what `min` holds),
/// OCI media types (Docker's have no image manifest and no standard zstd),
/// an image manifest (BuildKit's default form since 0.22).
struct SourceParams {
    mode: Mode,
    oci_mediatypes: bool,
    image_manifest: bool,
    /// Each source's label, mode and form, for the line naming a choice.
    each: Vec<(String, Mode, Form)>,
}

impl SourceParams {
    fn of(loaded: &[LoadedCache]) -> SourceParams {
        let each: Vec<(String, Mode, Form)> = loaded
            .iter()
            .map(|c| {
                let summary = CacheSummary::new(&c.raw, &c.image, &c.config, c.entries.as_ref());
                // A regcache cache whose mode is unreadable is kept whole.
                let mode = summary
                    .mode
                    .as_deref()
                    .and_then(Mode::from_name)
                    .unwrap_or(Mode::Max);
                (c.label.clone(), mode, c.image.form)
            })
            .collect();
        let any = |f: &dyn Fn(&(String, Mode, Form)) -> bool| each.iter().any(f);
        SourceParams {
            mode: if any(&|s| s.1 == Mode::Max) {
                Mode::Max
            } else {
                Mode::Min
            },
            oci_mediatypes: any(&|s| s.2 != Form::DockerManifestList),
            image_manifest: any(&|s| s.2 == Form::ImageManifest),
            each,
        }
    }

    fn form(&self) -> Form {
        Form::for_params(self.oci_mediatypes, self.image_manifest)
    }

    /// One line per key on which the sources differ and some `--cache-to`
    /// takes the source's value: which value it takes, and how to choose.
    fn say_choices(&self, cache_to: &[CacheTo]) {
        let kept = |f: &dyn Fn(&ExportParams) -> bool| cache_to.iter().any(|s| f(&s.params));
        let differ = |f: &dyn Fn(&(String, Mode, Form)) -> String| {
            let values: Vec<String> = self.each.iter().map(f).collect();
            values.iter().any(|v| v != &values[0]).then(|| {
                self.each
                    .iter()
                    .zip(&values)
                    .map(|((label, ..), value)| format!("{value} in {label}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        };
        if kept(&|p| p.from_source.mode)
            && let Some(found) = differ(&|s| s.1.name().to_string())
        {
            tracing::warn!(
                "the caches differ in mode ({found}): writing mode={}, the richer; \
                 set mode= on --cache-to to choose",
                self.mode
            );
        }
        // Whether the form written depends on the sources' (see
        // `Written::resolve`): an explicit image-manifest=true, or
        // oci-mediatypes=false, leaves them nothing to choose.
        let form_kept = |p: &ExportParams| {
            let kept = p.from_source;
            (kept.image_manifest && (kept.oci_mediatypes || p.oci_mediatypes))
                || (kept.oci_mediatypes && !p.image_manifest)
        };
        if kept(&form_kept)
            && let Some(found) = differ(&|s| s.2.name().to_string())
        {
            tracing::warn!(
                "the caches differ in form ({found}): writing {}, the richer; set \
                 image-manifest= and oci-mediatypes= on --cache-to to choose",
                self.form().name()
            );
        }
    }
}

/// How one target is written, its spec's keys resolved against the
/// sources'.
#[derive(Debug, Clone, Copy)]
struct Written {
    /// Slim to what a `mode=min` export keeps: only when asked for.
    /// Keeping the sources' mode changes nothing, even of a merge of min
    /// caches, whose union a slimming could cut.
    slim: bool,
    /// The mode a regcache entries list records.
    mode: Mode,
    form: Form,
    oci_mediatypes: bool,
}

impl Written {
    fn resolve(params: &ExportParams, sources: &SourceParams) -> Written {
        let kept = params.from_source;
        let oci_mediatypes = match (kept.oci_mediatypes, kept.image_manifest) {
            (false, _) => params.oci_mediatypes,
            // An image manifest exists only with OCI media types.
            (true, false) if params.image_manifest => true,
            (true, _) => sources.oci_mediatypes,
        };
        let image_manifest = match kept.image_manifest {
            false => params.image_manifest,
            true => oci_mediatypes && sources.image_manifest,
        };
        Written {
            slim: !kept.mode && params.mode == Mode::Min,
            mode: if kept.mode { sources.mode } else { params.mode },
            form: Form::for_params(oci_mediatypes, image_manifest),
            oci_mediatypes,
        }
    }
}

/// Writing the merged cache to one `--cache-to`.
struct TargetJob<'a> {
    spec: &'a CacheTo,
    written: Written,
    store: &'a dyn CacheStore,
    loaded: &'a [LoadedCache],
    holders: &'a BTreeMap<Digest, usize>,
    spool: &'a Spool,
    progress: &'a dyn Progress,
    jobs: usize,
}

impl TargetJob<'_> {
    async fn run(
        &self,
        merged: &CacheParts,
        mount_sources: &[MountSource],
    ) -> Result<TargetReport, OpsError> {
        let Written {
            slim,
            mode,
            form,
            oci_mediatypes,
        } = self.written;
        let mut parts = match slim {
            true => merge::slim_to_min(merged),
            false => merged.clone(),
        };
        if let Some(entries) = &mut parts.entries {
            // The merge keeps the first cache's; this is what was written.
            entries.mode = mode.name().to_string();
        }
        let mut report = TargetReport::failed(&self.spec.target.location(), String::new(), false);
        report.error = None;

        // A copy that changes nothing keeps the manifest bytes, and so its
        // digest, as they are.
        if let Some(source) = self.unchanged_source(&parts, form) {
            report.digest = Some(source.raw.digest.clone());
            let uploads = source
                .image
                .descriptors()
                .map(|desc| match desc.digest == source.image.config.digest {
                    true => Upload {
                        label: format!("cache config {} -> {}", desc.digest.short(), report.target),
                        desc: desc.clone(),
                        content: Content::Bytes(&source.config_bytes),
                    },
                    false => self.remote_upload(desc, source.store.as_ref()),
                })
                .collect::<Vec<_>>();
            let uploads = dedup_uploads(uploads);
            let placement = Placement::for_target(self.store, mount_sources).await;
            place_all(
                self.store,
                uploads,
                &source.raw,
                &placement,
                &EarlyUploads::new(),
                self.progress,
                self.jobs,
                &mut report,
            )
            .await?;
            return Ok(report);
        }

        let recompressed = self.recompress_all(&parts).await?;
        let replacements: BTreeMap<Digest, Descriptor> = recompressed
            .iter()
            .map(|(old, new, _)| (old.clone(), new.clone()))
            .collect();
        merge::replace_blobs(&mut parts, &replacements);
        let assembled = merge::assemble(&parts, form, oci_mediatypes)?;
        report.digest = Some(assembled.manifest.digest.clone());

        let mut uploads = Vec::new();
        for desc in parts.blobs.values() {
            if parts.entries.is_some() && desc.media_type == media_types::REGCACHE_ENTRIES {
                continue;
            }
            match recompressed
                .iter()
                .find(|(_, new, _)| new.digest == desc.digest)
            {
                Some((_, new, file)) => uploads.push(Upload {
                    label: format!("layer {} -> {}", new.digest.short(), report.target),
                    desc: new.clone(),
                    content: Content::File(file.path()),
                }),
                None => {
                    let holder = self.holder(&desc.digest)?;
                    uploads.push(self.remote_upload(desc, holder));
                }
            }
        }
        uploads.push(Upload {
            label: format!(
                "cache config {} -> {}",
                assembled.config.digest.short(),
                report.target
            ),
            desc: assembled.config.clone(),
            content: Content::Bytes(&assembled.config_bytes),
        });
        if let (Some(desc), Some(bytes)) = (&assembled.entries, &assembled.entries_bytes) {
            uploads.push(Upload {
                label: format!("entries list {} -> {}", desc.digest.short(), report.target),
                desc: desc.clone(),
                content: Content::Bytes(bytes),
            });
        }
        let uploads = dedup_uploads(uploads);
        let placement = Placement::for_target(self.store, mount_sources).await;
        place_all(
            self.store,
            uploads,
            &assembled.manifest,
            &placement,
            &EarlyUploads::new(),
            self.progress,
            self.jobs,
            &mut report,
        )
        .await?;
        Ok(report)
    }

    fn holder(&self, digest: &Digest) -> Result<&dyn CacheStore, OpsError> {
        self.holders
            .get(digest)
            .map(|&i| self.loaded[i].store.as_ref())
            .ok_or_else(|| OpsError::Failed(format!("no source holds blob {digest}")))
    }

    fn remote_upload<'s>(&'s self, desc: &Descriptor, from: &'s dyn CacheStore) -> Upload<'s> {
        Upload {
            label: format!(
                "blob {} -> {}",
                desc.digest.short(),
                self.spec.target.location()
            ),
            desc: desc.clone(),
            content: Content::Remote {
                from,
                spool: self.spool,
            },
        }
    }

    /// The single source whose manifest this target would reproduce: same
    /// form and media-type family, nothing slimmed, nothing recompressed.
    fn unchanged_source(&self, parts: &CacheParts, form: Form) -> Option<&LoadedCache> {
        let [source] = self.loaded else {
            return None;
        };
        let same_family = source.image.layers().all(|l| {
            l.media_type.starts_with("application/vnd.oci.") == self.written.oci_mediatypes
        });
        let slimmed = parts.config.layers.len() != source.config.layers.len()
            || results(&parts.config) != results(&source.config);
        let recompress = source
            .image
            .layers()
            .any(|l| self.recompress_to(l).is_some());
        (source.image.form == form && same_family && !slimmed && !recompress).then_some(source)
    }

    /// The codec `layer` is recompressed to, if it is: only with
    /// force-compression, as in BuildKit; to the spec's codec when it
    /// differs or a level is asked for, and in its own codec when the
    /// spec leaves the codec to the source but asks for a level.
    fn recompress_to(&self, layer: &Descriptor) -> Option<Compression> {
        let params = &self.spec.params;
        if !params.force_compression {
            return None;
        }
        let current = media_types::layer_compression(&layer.media_type);
        let estargz = layer
            .annotations
            .contains_key(media_types::ANNOTATION_STARGZ_TOC);
        let current = match current {
            Some(Compression::Gzip) if estargz => Some(Compression::Estargz),
            other => other,
        };
        if params.from_source.compression {
            return current.filter(|_| params.compression_level.is_some());
        }
        (current != Some(params.compression) || params.compression_level.is_some())
            .then_some(params.compression)
    }

    /// Every layer [`Self::recompress_to`] names a codec for, recompressed
    /// into spool files.
    async fn recompress_all(
        &self,
        parts: &CacheParts,
    ) -> Result<Vec<(Digest, Descriptor, tempfile::NamedTempFile)>, OpsError> {
        let mut out = Vec::new();
        for desc in parts.blobs.values() {
            if !media_types::is_layer(&desc.media_type) {
                continue;
            }
            let Some(codec) = self.recompress_to(desc) else {
                continue;
            };
            let holder = self.holder(&desc.digest)?;
            let progress = self.progress.blob(
                &format!("recompress {} to {codec}", desc.digest.short()),
                desc.size,
            );
            let to = Recompression {
                codec,
                level: self.spec.params.compression_level,
                oci_mediatypes: self.written.oci_mediatypes,
            };
            let (new, file) = recompress(holder, desc, to, self.spool.path()).await?;
            progress.advance(desc.size);
            progress.finish("recompressed");
            out.push((desc.digest.clone(), new, file));
        }
        Ok(out)
    }
}

/// The (record, result layers) pairs of a config, to tell whether slimming
/// changed anything.
fn results(config: &crate::image::CacheConfig) -> Vec<(Digest, Vec<usize>)> {
    config
        .records
        .iter()
        .map(|r| {
            (
                r.digest.clone(),
                r.results.iter().map(|x| x.layer).collect(),
            )
        })
        .collect()
}

/// A manifest may name one blob several times (BuildKit keeps duplicate
/// layer descriptors); it is sent once.
fn dedup_uploads(uploads: Vec<Upload<'_>>) -> Vec<Upload<'_>> {
    let mut seen = std::collections::HashSet::new();
    uploads
        .into_iter()
        .filter(|u| seen.insert(u.desc.digest.clone()))
        .collect()
}

/// What one layer is recompressed to.
#[derive(Debug, Clone, Copy)]
struct Recompression {
    codec: Compression,
    level: Option<u32>,
    /// The media-type family of the new descriptor.
    oci_mediatypes: bool,
}

/// Decompresses one verified layer and compresses it again with `to`'s
/// codec and level. The diffID — the digest of the tar inside — must
/// not change; the blob digest does.
async fn recompress(
    from: &dyn CacheStore,
    desc: &Descriptor,
    to: Recompression,
    spool: &Path,
) -> Result<(Descriptor, tempfile::NamedTempFile), OpsError> {
    let source_compression = media_types::layer_compression(&desc.media_type).ok_or_else(|| {
        OpsError::Failed(format!(
            "{} is not a layer ({})",
            desc.digest, desc.media_type
        ))
    })?;
    let diff_id: Option<Digest> = desc
        .annotations
        .get(media_types::ANNOTATION_UNCOMPRESSED)
        .and_then(|v| v.parse().ok());
    let reader = from.open_blob(desc).await?;
    let (digest, size) = (desc.digest.clone(), desc.size);
    let (target, level) = (to.codec, to.level);
    let spool = spool.to_path_buf();
    let label = desc.digest.clone();
    let (file, new_digest, new_size, tar_digest, estargz) = blocking(move || -> io::Result<_> {
        let mut verifying = VerifyingReader::new(reader, digest, size);
        let mut file = super::spool::blob_file_in(&spool)?;
        if target == Compression::Estargz {
            // eStargz needs to see where each tar entry starts, so it reads
            // the decompressed tar rather than wrapping a writer. Its
            // diffID covers the TOC it appends, as BuildKit's does.
            let out =
                HashingWriter::new(io::BufWriter::with_capacity(256 << 10, file.as_file_mut()));
            let mut out = out;
            let (info, source_tar) = {
                let decoder = decompress_reader(&mut verifying, source_compression)?;
                let mut tar_hasher = HashingReader {
                    inner: decoder,
                    hasher: crate::digest::Hasher::new(),
                };
                let info = tar_to_estargz(&mut tar_hasher, &mut out, level)?;
                io::copy(&mut tar_hasher, &mut io::sink())?;
                (info, tar_hasher.hasher.finish().0)
            };
            let (mut inner, new_digest, new_size) = out.finish();
            inner.flush()?;
            drop(inner);
            verifying.finish()?;
            return Ok((file, new_digest, new_size, source_tar, Some(info)));
        }
        let (new_digest, new_size, tar_digest) = {
            let out =
                HashingWriter::new(io::BufWriter::with_capacity(256 << 10, file.as_file_mut()));
            let mut encoder = compress_writer(out, target, level)?;
            let mut tar_hasher = crate::digest::Hasher::new();
            {
                let mut decoder = decompress_reader(&mut verifying, source_compression)?;
                let mut buf = vec![0u8; 256 << 10];
                loop {
                    let n = decoder.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    tar_hasher.update(&buf[..n]);
                    encoder.write_all(&buf[..n])?;
                }
            }
            let out = encoder.finish()?;
            let (mut inner, new_digest, new_size) = out.finish();
            inner.flush()?;
            (new_digest, new_size, tar_hasher.finish().0)
        };
        verifying.finish()?;
        Ok((file, new_digest, new_size, tar_digest, None))
    })
    .await?
    .map_err(|err| OpsError::Failed(format!("recompressing {label}: {err}")))?;
    if let Some(expected) = &diff_id
        && expected != &tar_digest
    {
        return Err(OpsError::Failed(format!(
            "layer {}: its content hashes to {tar_digest}, not its diffID {expected}",
            desc.digest
        )));
    }
    let mut new = Descriptor::new(
        media_types::layer_media_type(target, to.oci_mediatypes),
        new_digest,
        new_size,
    );
    new.annotations = desc.annotations.clone();
    new.annotations.remove(media_types::ANNOTATION_STARGZ_TOC);
    new.annotations
        .remove(media_types::ANNOTATION_ESTARGZ_UNCOMPRESSED_SIZE);
    match estargz {
        Some(info) => {
            new.annotations.insert(
                media_types::ANNOTATION_UNCOMPRESSED.to_string(),
                info.diff_id.to_string(),
            );
            new.annotations.insert(
                media_types::ANNOTATION_STARGZ_TOC.to_string(),
                info.toc_digest.to_string(),
            );
            new.annotations.insert(
                media_types::ANNOTATION_ESTARGZ_UNCOMPRESSED_SIZE.to_string(),
                info.uncompressed_size.to_string(),
            );
        }
        None => {
            new.annotations.insert(
                media_types::ANNOTATION_UNCOMPRESSED.to_string(),
                tar_digest.to_string(),
            );
        }
    }
    Ok((new, file))
}

/// Hashes what passes through, to check the source layer's diffID while
/// the eStargz writer consumes it.
struct HashingReader<R> {
    inner: R,
    hasher: crate::digest::Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
