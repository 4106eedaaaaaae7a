//! The values of a location's tag and of the export parameters, checked
//! against what the table in [`super::keys`] says each key accepts.

use super::keys::{
    COMPRESSION, COMPRESSION_LEVEL, FALSE_WORDS, FORCE_COMPRESSION, IGNORE_ERROR, IMAGE_MANIFEST,
    MODE, OCI_MEDIATYPES, TAG, TRUE_WORDS,
};
use super::parse::{Attrs, Parser, did_you_mean, is_oci_ref_name};
use super::{ExportParams, Mode, SourceKeys, SpecError};
use crate::compression::Compression;
use crate::reference::DEFAULT_TAG;

impl Parser<'_> {
    /// `tag` names the cache inside an OCI layout's index.json, so it takes
    /// the grammar of `org.opencontainers.image.ref.name` rather than
    /// Docker's stricter tag grammar: BuildKit accepts e.g. `feature/x`.
    pub(super) fn local_tag(&self, attrs: &Attrs) -> Result<String, SpecError> {
        match attrs.get(TAG) {
            None => Ok(DEFAULT_TAG.to_string()),
            Some(raw) if raw.contains('*') => Err(self.star_error(TAG, raw)),
            Some(raw) if is_oci_ref_name(raw) => Ok(raw.to_string()),
            Some(raw) => Err(self.bad_value(TAG, raw, None)),
        }
    }

    pub(super) fn export_params(
        &self,
        attrs: &Attrs,
        defaults: ExportParams,
    ) -> Result<ExportParams, SpecError> {
        let mode = match attrs.get(MODE) {
            None => defaults.mode,
            Some(raw) => Mode::from_name(raw).ok_or_else(|| {
                let names = Mode::ALL.map(Mode::name);
                self.bad_value(MODE, raw, did_you_mean(raw, &names))
            })?,
        };
        let oci_mediatypes = self.optional_bool(attrs, OCI_MEDIATYPES, defaults.oci_mediatypes)?;
        // BuildKit: an image manifest needs OCI media types, so the default
        // follows oci-mediatypes and an explicit contradiction is refused.
        let image_manifest = self.optional_bool(attrs, IMAGE_MANIFEST, oci_mediatypes)?;
        if image_manifest && !oci_mediatypes {
            return Err(self.error(
                Some(IMAGE_MANIFEST),
                format!(
                    "image-manifest={} needs oci-mediatypes=true, but oci-mediatypes={}",
                    attrs.get(IMAGE_MANIFEST).unwrap_or_default(),
                    attrs.get(OCI_MEDIATYPES).unwrap_or_default()
                ),
                Some(
                    "Docker media types have no image-manifest form: drop image-manifest \
                     (it defaults to false with oci-mediatypes=false) or set oci-mediatypes=true"
                        .into(),
                ),
            ));
        }
        let compression = match attrs.get(COMPRESSION) {
            None => defaults.compression,
            Some(raw) => Compression::from_name(raw).ok_or_else(|| {
                let names = Compression::ALL.map(Compression::name);
                let hint = match raw.to_lowercase().as_str() {
                    "none" | "no" | "off" | "raw" | "tar" => {
                        Some("did you mean \"uncompressed\"?".to_string())
                    }
                    _ => did_you_mean(raw, &names),
                };
                self.bad_value(COMPRESSION, raw, hint)
            })?,
        };
        let compression_level = attrs
            .get(COMPRESSION_LEVEL)
            .map(|raw| self.compression_level(compression, attrs.get(COMPRESSION).is_some(), raw))
            .transpose()?;
        let force_compression = match attrs.get(FORCE_COMPRESSION) {
            // BuildKit reads a bare `force-compression=` as true.
            Some("") => true,
            _ => self.optional_bool(attrs, FORCE_COMPRESSION, defaults.force_compression)?,
        };
        let kept = defaults.from_source;
        Ok(ExportParams {
            mode,
            oci_mediatypes,
            image_manifest,
            compression,
            compression_level,
            force_compression,
            ignore_error: self.optional_bool(attrs, IGNORE_ERROR, defaults.ignore_error)?,
            from_source: SourceKeys {
                mode: kept.mode && attrs.get(MODE).is_none(),
                oci_mediatypes: kept.oci_mediatypes && attrs.get(OCI_MEDIATYPES).is_none(),
                image_manifest: kept.image_manifest && attrs.get(IMAGE_MANIFEST).is_none(),
                compression: kept.compression && attrs.get(COMPRESSION).is_none(),
            },
        })
    }

    pub(super) fn compression_level(
        &self,
        compression: Compression,
        compression_given: bool,
        raw: &str,
    ) -> Result<u32, SpecError> {
        // The codec may be a default the user never wrote: say so.
        let codec = if compression_given {
            format!("compression={compression}")
        } else {
            format!("compression={compression}, the default here")
        };
        let Some(range) = compression.level_range() else {
            return Err(self.error(
                Some(COMPRESSION_LEVEL),
                format!(
                    "compression-level={raw} has no effect with compression={compression} \
                     (accepted: no compression-level)"
                ),
                Some(
                    "drop compression-level, or choose a compression that takes one: \
                     gzip or estargz (0-9), zstd (0-22)"
                        .into(),
                ),
            ));
        };
        let accepted = format!(
            "an integer from {} to {} for {codec}",
            range.start(),
            range.end()
        );
        // Go's ParseInt, which BuildKit uses, also accepts a leading sign.
        let Ok(level) = raw.parse::<i64>() else {
            return Err(self.bad_value_with(COMPRESSION_LEVEL, raw, &accepted, None));
        };
        match u32::try_from(level).ok().filter(|l| range.contains(l)) {
            Some(level) => Ok(level),
            None => {
                let zstd_fits = Compression::Zstd
                    .level_range()
                    .zip(u32::try_from(level).ok())
                    .is_some_and(|(zstd, l)| zstd.contains(&l));
                let hint = (compression != Compression::Zstd && zstd_fits)
                    .then(|| "compression=zstd takes levels up to 22".to_string());
                Err(self.error(
                    Some(COMPRESSION_LEVEL),
                    format!(
                        "compression-level {raw:?} is out of range for {codec} \
                         (accepted: {} to {})",
                        range.start(),
                        range.end()
                    ),
                    hint,
                ))
            }
        }
    }

    pub(super) fn optional_bool(
        &self,
        attrs: &Attrs,
        key: &str,
        default: bool,
    ) -> Result<bool, SpecError> {
        let Some(raw) = attrs.get(key) else {
            return Ok(default);
        };
        if TRUE_WORDS.contains(&raw) {
            return Ok(true);
        }
        if FALSE_WORDS.contains(&raw) {
            return Ok(false);
        }
        let hint = match raw.to_lowercase().as_str() {
            "true" | "yes" | "y" | "on" | "enable" | "enabled" => Some("did you mean \"true\"?"),
            "false" | "no" | "n" | "off" | "disable" | "disabled" => {
                Some("did you mean \"false\"?")
            }
            _ => None,
        };
        Err(self.bad_value(key, raw, hint.map(str::to_string)))
    }
}
