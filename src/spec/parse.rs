//! The parser: a flag value split into fields, its keys checked against
//! the table in [`super::keys`], each value turned into typed spec parts.

use std::path::PathBuf;

use super::keys::{
    self, DEST, DIGEST, INSECURE, Kind, REF, REF_SHAPE, SRC, TAG, TYPE, UNSUPPORTED_TYPES,
};
use super::{
    CacheFrom, CacheTo, ExportDefaults, ExportTarget, Flag, ImportSource, RepoTarget, SpecError,
};
use crate::digest::Digest;
use crate::reference::Reference;

/// Fields of a keyed record, in first-seen order; a later duplicate
/// overwrites the value, as buildx's map does.
#[derive(Default)]
pub(super) struct Attrs(pub(super) Vec<(String, String)>);

impl Attrs {
    pub(super) fn set(&mut self, key: String, value: &str) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.0.push((key, value.to_string())),
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn take(&mut self, key: &str) -> Option<String> {
        let at = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(at).1)
    }
}

pub(super) enum Record {
    Empty,
    Refs(Vec<String>),
    Keyed(Kind, Attrs),
}

pub(super) struct Parser<'a> {
    pub(super) flag: Flag,
    pub(super) value: &'a str,
}

impl Parser<'_> {
    pub(super) fn error(
        &self,
        field: Option<&str>,
        problem: String,
        hint: Option<String>,
    ) -> SpecError {
        SpecError {
            flag: self.flag,
            value: self.value.to_string(),
            field: field.map(str::to_string),
            problem,
            hint,
        }
    }

    /// `raw` is not a value `key` takes; the accepted values are the table's.
    pub(super) fn bad_value(&self, key: &str, raw: &str, hint: Option<String>) -> SpecError {
        self.bad_value_with(key, raw, &keys::accepted(key), hint)
    }

    /// As [`Self::bad_value`], for a key whose accepted values depend on
    /// another key's (`compression-level` on `compression`).
    pub(super) fn bad_value_with(
        &self,
        key: &str,
        raw: &str,
        accepted: &str,
        hint: Option<String>,
    ) -> SpecError {
        self.error(
            Some(key),
            format!("invalid value {raw:?} for {key} (accepted: {accepted})"),
            hint,
        )
    }

    pub(super) fn record(&self) -> Result<Record, SpecError> {
        if self.value.is_empty() {
            tracing::debug!("{} \"\": empty value skipped, as buildx does", self.flag);
            return Ok(Record::Empty);
        }
        let fields = self.fields()?;
        // buildx decides on the raw value, before CSV unquoting.
        if !self.value.contains('=') {
            return Ok(Record::Refs(fields));
        }
        let mut attrs = Attrs::default();
        for field in &fields {
            let Some((key, value)) = field.split_once('=') else {
                return Err(self.error(
                    Some(field),
                    format!("field {field:?} is not key=value"),
                    Some(
                        "once any field has \"=\", every field must be key=value; \
                         a value of bare refs (a,b) has no \"=\" at all"
                            .into(),
                    ),
                ));
            };
            attrs.set(key.to_lowercase(), value);
        }
        // `tpye=local` leaves the type missing: name the typo there.
        let typo = attrs
            .0
            .iter()
            .find(|(key, _)| did_you_mean(key, &[TYPE]).is_some())
            .map(|(key, _)| key.clone());
        let kind = self.kind(attrs.take(TYPE), typo.as_deref())?;
        self.check_keys(kind, &attrs)?;
        Ok(Record::Keyed(kind, attrs))
    }

    pub(super) fn kind(&self, raw: Option<String>, typo: Option<&str>) -> Result<Kind, SpecError> {
        let supported = keys::accepted(TYPE);
        let raw = match raw.as_deref() {
            None | Some("") => {
                let lead = match typo {
                    Some(typo) => format!("{typo:?} is not a key: did you mean \"type\"? "),
                    None => String::new(),
                };
                return Err(self.error(
                    Some(TYPE),
                    format!("missing type (accepted: {supported})"),
                    Some(format!(
                        "{lead}write type=registry,ref=… or type=local,…; \
                         a value without any \"=\" is read as a list of registry refs"
                    )),
                ));
            }
            Some(raw) => raw,
        };
        if let Some(kind) = Kind::ALL.into_iter().find(|k| k.name() == raw) {
            return Ok(kind);
        }
        if UNSUPPORTED_TYPES.contains(&raw) {
            return Err(self.error(
                Some(TYPE),
                format!("type {raw:?} is not supported by regcache (supported: {supported})"),
                Some(format!(
                    "regcache reads and writes registries and OCI layout directories only; \
                     keep type={raw} for docker buildx, or use type=registry,ref=… here"
                )),
            ));
        }
        let names = Kind::ALL.map(Kind::name);
        Err(self.bad_value(TYPE, raw, did_you_mean(raw, &names)))
    }

    pub(super) fn check_keys(&self, kind: Kind, attrs: &Attrs) -> Result<(), SpecError> {
        let accepted = kind.accepted_keys(self.flag);
        let mut ignored = Vec::new();
        for (key, _) in &attrs.0 {
            if accepted.contains(&key.as_str()) {
                continue;
            }
            let export = keys::key(key).is_some_and(|k| k.is_export());
            if self.flag == Flag::CacheFrom && export {
                ignored.push(key.as_str());
                continue;
            }
            return Err(self.unknown_key(kind, key, &accepted));
        }
        if !ignored.is_empty() {
            tracing::warn!(
                "{} {:?}: ignoring {}: --cache-to settings have no effect on an import",
                self.flag,
                self.value,
                ignored.join(", ")
            );
        }
        Ok(())
    }

    pub(super) fn unknown_key(
        &self,
        kind: Kind,
        key: &str,
        accepted: &[&'static str],
    ) -> SpecError {
        let list = format!(
            "accepted keys for type={}: {}",
            kind.name(),
            accepted.join(", ")
        );
        let mut candidates = accepted.to_vec();
        if self.flag == Flag::CacheFrom {
            candidates.extend(keys::export_keys());
        }
        let other_flag = match self.flag {
            Flag::CacheTo => Flag::CacheFrom,
            Flag::CacheFrom => Flag::CacheTo,
        };
        // Prefer "belongs to the other type" over "belongs to the other flag".
        let elsewhere = [self.flag, other_flag]
            .into_iter()
            .flat_map(|flag| Kind::ALL.map(|kind| (flag, kind)))
            .find(|(flag, kind)| kind.accepted_keys(*flag).contains(&key));
        let (problem, lead) = match elsewhere {
            Some(_) if kind == Kind::Registry && (key == TAG || key == DIGEST) => (
                format!("key {key:?} does not apply to type=registry"),
                "a registry cache takes its tag or digest inside ref, \
                 e.g. ref=ghcr.io/owner/app:cache."
                    .to_string(),
            ),
            Some((flag, other)) => {
                let place = if flag == self.flag {
                    format!("type={}", other.name())
                } else {
                    format!("{flag} type={}", other.name())
                };
                (
                    format!(
                        "key {key:?} does not apply to {} type={}",
                        self.flag,
                        kind.name()
                    ),
                    format!("{key:?} only applies to {place}."),
                )
            }
            None => {
                let lead = match did_you_mean(key, &candidates) {
                    Some(_) if candidates.contains(&key.trim()) => format!(
                        "fields are not trimmed (as in buildx): remove the spaces around {:?}.",
                        key.trim()
                    ),
                    Some(suggestion)
                        if self.flag == Flag::CacheFrom
                            && keys::export_keys()
                                .any(|k| suggestion.contains(&format!("{k:?}"))) =>
                    {
                        format!("{suggestion} (an export key: --cache-from ignores it)")
                    }
                    Some(suggestion) => suggestion,
                    None => String::new(),
                };
                (format!("unknown key {key:?}"), lead)
            }
        };
        let hint = if lead.is_empty() {
            list
        } else {
            format!("{lead} {list}")
        };
        self.error(Some(key), problem, Some(hint))
    }

    pub(super) fn cache_to(
        &self,
        kind: Kind,
        attrs: &Attrs,
        defaults: ExportDefaults,
    ) -> Result<CacheTo, SpecError> {
        let target = match kind {
            Kind::Registry => ExportTarget::Registry {
                reference: self.reference(self.required(kind, attrs, REF)?)?,
                insecure: self.optional_bool(attrs, INSECURE, false)?,
            },
            Kind::Local => ExportTarget::Local {
                dest: PathBuf::from(self.required(kind, attrs, DEST)?),
                tag: self.local_tag(attrs)?,
            },
        };
        Ok(CacheTo {
            target,
            params: self.export_params(attrs, defaults.params())?,
            defaults,
        })
    }

    pub(super) fn cache_from(&self, kind: Kind, attrs: &Attrs) -> Result<CacheFrom, SpecError> {
        let source = match kind {
            Kind::Registry => self.registry_source(
                self.required(kind, attrs, REF)?,
                self.optional_bool(attrs, INSECURE, false)?,
            )?,
            Kind::Local if attrs.get(TAG).is_some_and(|t| t.contains('*')) => {
                let raw = attrs.get(TAG).unwrap_or_default();
                if attrs.get(DIGEST).is_some() {
                    return Err(self.error(
                        Some(DIGEST),
                        format!(
                            "tag={raw} is a pattern and digest= pins one manifest: give one or the other"
                        ),
                        Some(format!(
                            "drop digest= for the newest cache whose tag starts with {:?}, \
                             or drop the * to read the manifest digest= names",
                            raw.trim_end_matches('*')
                        )),
                    ));
                }
                ImportSource::Pattern {
                    repository: RepoTarget::Local {
                        dir: PathBuf::from(self.required(kind, attrs, SRC)?),
                    },
                    prefix: self.pattern_prefix(TAG, raw, |p| {
                        p.is_empty() || is_oci_ref_name(&format!("{p}x"))
                    })?,
                }
            }
            Kind::Local => ImportSource::Local {
                src: PathBuf::from(self.required(kind, attrs, SRC)?),
                tag: self.local_tag(attrs)?,
                digest: attrs
                    .get(DIGEST)
                    .map(|raw| {
                        raw.parse::<Digest>()
                            .map_err(|_| self.bad_value(DIGEST, raw, None))
                    })
                    .transpose()?,
            },
        };
        Ok(CacheFrom { source })
    }

    pub(super) fn required<'a>(
        &self,
        kind: Kind,
        attrs: &'a Attrs,
        key: &str,
    ) -> Result<&'a str, SpecError> {
        let what = match key {
            REF => "an image reference",
            DEST => "the OCI layout directory to write",
            _ => "the OCI layout directory to read",
        };
        let example = match key {
            REF => "type=registry,ref=ghcr.io/owner/app:cache",
            DEST => "type=local,dest=.cache/app",
            _ => "type=local,src=.cache/app",
        };
        match attrs.get(key) {
            Some(value) if !value.is_empty() => Ok(value),
            found => Err(self.error(
                Some(key),
                format!(
                    "type={} needs {key}=… ({what}){}",
                    kind.name(),
                    if found.is_some() {
                        ", got an empty value"
                    } else {
                        ""
                    }
                ),
                Some(format!("e.g. {} {example}", self.flag)),
            )),
        }
    }

    pub(super) fn reference(&self, raw: &str) -> Result<Reference, SpecError> {
        if raw.contains('*') {
            return Err(self.star_error(REF, raw));
        }
        let reference = Reference::parse(raw).map_err(|e| {
            let lowercase = raw.to_lowercase();
            let path_like =
                raw == "." || [".", "/", "~"].iter().any(|start| raw.starts_with(start));
            let hint = if let Some(valid) = &e.valid_tag {
                valid_tag_hint(raw, valid)
            } else if path_like {
                // A directory given where a ref goes: buildx reads a bare
                // value as a registry ref, so a local cache needs its type.
                let key = if self.flag == Flag::CacheTo {
                    DEST
                } else {
                    SRC
                };
                format!("for a cache in a local directory, write type=local,{key}={raw}")
            } else if lowercase != raw && Reference::parse(&lowercase).is_ok() {
                format!("did you mean {lowercase:?}? {REF_SHAPE}")
            } else {
                REF_SHAPE.to_string()
            };
            self.error(
                Some(REF),
                // A bare ref is the whole value, which the message shows already.
                if raw == self.value {
                    format!("invalid ref: {}", e.reason)
                } else {
                    format!("invalid ref {raw:?}: {}", e.reason)
                },
                Some(hint),
            )
        })?;
        if self.flag == Flag::CacheTo
            && let Some(digest) = reference.digest()
        {
            return Err(self.error(
                Some(REF),
                format!(
                    "the ref pins digest {}…, but an export writes a new manifest and needs a tag \
                     (accepted: a ref without @sha256:…)",
                    digest.short()
                ),
                Some("drop the @sha256:… part; digests only make sense on --cache-from".into()),
            ));
        }
        Ok(reference)
    }
}

/// `did you mean "x"?` for the candidate closest to `input`, if any is close
/// enough to be a plausible typo (or a case slip: values are exact).
pub(super) fn did_you_mean(input: &str, candidates: &[&str]) -> Option<String> {
    let wanted = input.trim().to_lowercase();
    if wanted.is_empty() {
        return None;
    }
    let exact = candidates.iter().find(|c| **c == wanted);
    // `insecure` for `registry.insecure`, `level` for `compression-level`.
    let suffix = || {
        candidates.iter().find(|c| {
            c.strip_suffix(wanted.as_str())
                .is_some_and(|head| head.ends_with(['.', '-']))
        })
    };
    let similar = || {
        candidates
            .iter()
            .map(|c| (strsim::jaro_winkler(&wanted, c), c))
            .filter(|(score, _)| *score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, c)| c)
    };
    exact
        .or_else(suffix)
        .or_else(similar)
        .map(|c| format!("did you mean {c:?}?"))
}

/// The hint for a ref whose tag is invalid: the ref with its tag made
/// valid, the way a CI script makes a tag of a branch name.
pub(super) fn valid_tag_hint(raw: &str, valid: &str) -> String {
    let name = match raw.split_once('@') {
        Some((name, _)) => name,
        None => raw,
    };
    let (repository, _) = split_tag(name);
    format!(
        "made valid as for a branch name, every character but letters, digits, \"_\", \".\" \
         and \"-\" replaced by \"-\": {repository}:{valid}"
    )
}

/// A ref without digest split into its name and its tag, as Docker
/// splits it: the first component is a host when it looks like one, and
/// the first `:` after it starts the tag (which may hold anything, `/`
/// included, when it is invalid).
pub(super) fn split_tag(raw: &str) -> (&str, Option<&str>) {
    let host_len = match raw.split_once('/') {
        Some((first, _)) if first == "localhost" || first.contains(['.', ':']) => first.len() + 1,
        _ => 0,
    };
    match raw[host_len..].find(':') {
        Some(i) => (&raw[..host_len + i], Some(&raw[host_len + i + 1..])),
        None => (raw, None),
    }
}

/// The OCI image-spec grammar for `org.opencontainers.image.ref.name`:
/// `component ("/" component)*`, `component ::= alphanum (separator
/// alphanum)*`, `separator ::= [-._:@+] | "--"`.
pub(super) fn is_oci_ref_name(name: &str) -> bool {
    name.split('/').all(|component| {
        let bytes = component.as_bytes();
        let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
            return false;
        };
        if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
            return false;
        }
        bytes
            .split(|b| b.is_ascii_alphanumeric())
            .all(|sep| matches!(sep, b"" | b"-" | b"." | b"_" | b":" | b"@" | b"+" | b"--"))
    })
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use crate::compression::Compression;
    use crate::spec::keys::{FALSE_WORDS, TRUE_WORDS};
    use crate::spec::test_support::*;
    use crate::spec::*;

    #[test]
    fn cache_from_defaults() {
        assert_eq!(
            one_from("type=local,src=in"),
            CacheFrom {
                source: ImportSource::Local {
                    src: "in".into(),
                    tag: "latest".into(),
                    digest: None
                }
            }
        );
        assert_eq!(
            one_from("type=registry,ref=alpine"),
            CacheFrom {
                source: ImportSource::Registry {
                    reference: reference("docker.io/library/alpine:latest"),
                    insecure: false
                }
            }
        );
    }

    #[test]
    fn every_location_key_is_parsed() {
        assert_eq!(
            one_to("type=registry,ref=localhost:5000/c:t,registry.insecure=true").target,
            ExportTarget::Registry {
                reference: reference("localhost:5000/c:t"),
                insecure: true
            }
        );
        assert_eq!(
            local_dest(&one_to("type=local,dest=out,tag=feature/x-1.2")),
            (std::path::Path::new("out"), "feature/x-1.2")
        );
        assert_eq!(
            one_from(&format!("type=local,src=in,tag=v1,digest={DIGEST}")).source,
            ImportSource::Local {
                src: "in".into(),
                tag: "v1".into(),
                digest: Some(DIGEST.parse().unwrap())
            }
        );
        assert_eq!(
            one_from(&format!(
                "type=registry,ref=r.io/a@{DIGEST},registry.insecure=1"
            ))
            .source,
            ImportSource::Registry {
                reference: reference(&format!("r.io/a@{DIGEST}")),
                insecure: true
            }
        );
    }

    #[test]
    fn every_export_key_is_parsed() {
        let d = || ExportDefaults::BuildKit.params();
        let cases = [
            (
                "mode=max",
                ExportParams {
                    mode: Mode::Max,
                    ..d()
                },
            ),
            ("mode=min", d()),
            // The image-manifest default follows oci-mediatypes.
            (
                "oci-mediatypes=false",
                ExportParams {
                    oci_mediatypes: false,
                    image_manifest: false,
                    ..d()
                },
            ),
            (
                "oci-mediatypes=false,image-manifest=false",
                ExportParams {
                    oci_mediatypes: false,
                    image_manifest: false,
                    ..d()
                },
            ),
            (
                "image-manifest=false",
                ExportParams {
                    image_manifest: false,
                    ..d()
                },
            ),
            ("oci-mediatypes=true,image-manifest=true", d()),
            (
                "compression=zstd",
                ExportParams {
                    compression: Compression::Zstd,
                    ..d()
                },
            ),
            (
                "compression=estargz",
                ExportParams {
                    compression: Compression::Estargz,
                    ..d()
                },
            ),
            (
                "compression=uncompressed",
                ExportParams {
                    compression: Compression::Uncompressed,
                    ..d()
                },
            ),
            (
                "compression=gzip,compression-level=0",
                ExportParams {
                    compression_level: Some(0),
                    ..d()
                },
            ),
            (
                "compression-level=9",
                ExportParams {
                    compression_level: Some(9),
                    ..d()
                },
            ),
            (
                "compression-level=+5",
                ExportParams {
                    compression_level: Some(5),
                    ..d()
                },
            ),
            (
                "compression=estargz,compression-level=9",
                ExportParams {
                    compression: Compression::Estargz,
                    compression_level: Some(9),
                    ..d()
                },
            ),
            (
                "compression=zstd,compression-level=22",
                ExportParams {
                    compression: Compression::Zstd,
                    compression_level: Some(22),
                    ..d()
                },
            ),
            // Order does not matter: the level is checked against the final codec.
            (
                "compression-level=15,compression=zstd",
                ExportParams {
                    compression: Compression::Zstd,
                    compression_level: Some(15),
                    ..d()
                },
            ),
            (
                "force-compression=",
                ExportParams {
                    force_compression: true,
                    ..d()
                },
            ),
            (
                "force-compression=true",
                ExportParams {
                    force_compression: true,
                    ..d()
                },
            ),
            ("force-compression=0", d()),
            (
                "ignore-error=true",
                ExportParams {
                    ignore_error: true,
                    ..d()
                },
            ),
            ("ignore-error=false", d()),
        ];
        for (fields, expected) in cases {
            for base in ["type=local,dest=out", "type=registry,ref=a"] {
                let value = format!("{base},{fields}");
                assert_eq!(one_to(&value).params, expected, "{value}");
            }
        }
    }

    #[test]
    fn booleans_accept_exactly_what_go_parsebool_accepts() {
        for word in TRUE_WORDS {
            assert!(
                one_to(&format!("type=local,dest=o,ignore-error={word}"))
                    .params
                    .ignore_error,
                "{word}"
            );
        }
        for word in FALSE_WORDS {
            assert!(
                !one_to(&format!("type=local,dest=o,ignore-error={word}"))
                    .params
                    .ignore_error,
                "{word}"
            );
        }
        let accepted = "1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False";
        for (word, hint) in [
            ("yes", Some("did you mean \"true\"?")),
            ("off", Some("did you mean \"false\"?")),
            ("tRUE", Some("did you mean \"true\"?")),
            ("", None),
            ("2", None),
            (" true", None),
            ("true ", None),
        ] {
            let value = format!("type=local,dest=o,ignore-error={word}");
            let err = parse_err(Flag::CacheTo, &value);
            assert_eq!(err.field(), Some("ignore-error"), "{value}");
            assert!(
                err.to_string().contains(&format!(
                    "invalid value {word:?} for ignore-error (accepted: {accepted})"
                )),
                "{err}"
            );
            assert_eq!(err.hint(), hint, "{value}");
        }
    }

    #[test]
    fn unknown_key_message_matches_the_documented_form() {
        let err = parse_err(Flag::CacheTo, "type=local,dest=out,mdoe=max");
        assert_eq!(
            format!("{err}\nhint: {}", err.hint().unwrap_or_default()),
            "invalid --cache-to \"type=local,dest=out,mdoe=max\": unknown key \"mdoe\"\n\
             hint: did you mean \"mode\"? accepted keys for type=local: dest, tag, mode, \
             oci-mediatypes, image-manifest, compression, compression-level, force-compression, \
             ignore-error"
        );
        assert_eq!(err.flag(), Flag::CacheTo);
        assert_eq!(err.field(), Some("mdoe"));
        assert_eq!(err.value(), "type=local,dest=out,mdoe=max");
    }

    #[test]
    fn refusals_name_flag_value_field_and_accepted_values() {
        use Flag::{CacheFrom, CacheTo};
        let pinned = format!("type=registry,ref=a@{DIGEST}");
        // (flag, value, field, fragments the message must hold)
        let cases: &[(Flag, &str, Option<&str>, &[&str])] = &[
            (
                CacheTo,
                "dest=out",
                Some("type"),
                &["missing type (accepted: registry, local)"],
            ),
            (CacheTo, "type=,dest=out", Some("type"), &["missing type"]),
            (
                CacheTo,
                "type=gha,scope=x",
                Some("type"),
                &["type \"gha\" is not supported by regcache (supported: registry, local)"],
            ),
            (
                CacheTo,
                "type=s3,bucket=b",
                Some("type"),
                &["type \"s3\" is not supported by regcache"],
            ),
            (
                CacheTo,
                "type=azblob,name=n",
                Some("type"),
                &["type \"azblob\" is not supported"],
            ),
            (
                CacheTo,
                "type=inline",
                Some("type"),
                &["type \"inline\" is not supported"],
            ),
            (
                CacheFrom,
                "type=gha",
                Some("type"),
                &["type \"gha\" is not supported"],
            ),
            (
                CacheTo,
                "type=Registry,ref=a",
                Some("type"),
                &[
                    "invalid value \"Registry\" for type (accepted: registry, local)",
                    "hint: did you mean \"registry\"?",
                ],
            ),
            (
                CacheTo,
                "type=ftp,ref=a",
                Some("type"),
                &["invalid value \"ftp\" for type (accepted: registry, local)"],
            ),
            (
                CacheTo,
                "type=local",
                Some("dest"),
                &["type=local needs dest=…"],
            ),
            (
                CacheTo,
                "type=local,dest=",
                Some("dest"),
                &["type=local needs dest=…", "got an empty value"],
            ),
            (
                CacheTo,
                "type=registry",
                Some("ref"),
                &["type=registry needs ref=…"],
            ),
            (
                CacheFrom,
                "type=registry,ref=",
                Some("ref"),
                &["type=registry needs ref=…", "empty value"],
            ),
            (
                CacheFrom,
                "type=local,tag=t",
                Some("src"),
                &["type=local needs src=…"],
            ),
            (
                CacheTo,
                "type=local,dest=out,compresion=zstd",
                Some("compresion"),
                &[
                    "unknown key \"compresion\"",
                    "hint: did you mean \"compression\"?",
                ],
            ),
            (
                CacheTo,
                "type=registry,ref=a,insecure=true",
                Some("insecure"),
                &[
                    "did you mean \"registry.insecure\"?",
                    "accepted keys for type=registry: ref, registry.insecure, mode,",
                ],
            ),
            (
                CacheTo,
                "type=registry,ref=a,level=3",
                Some("level"),
                &["did you mean \"compression-level\"?"],
            ),
            (
                CacheTo,
                "type=local,dest=out,zzz=1",
                Some("zzz"),
                &["unknown key \"zzz\"\nhint: accepted keys for type=local: dest, tag, mode,"],
            ),
            (
                CacheTo,
                "type=local,dest=out, tag=x",
                Some(" tag"),
                &["unknown key \" tag\"", "remove the spaces around \"tag\""],
            ),
            (
                CacheTo,
                "type=local,dest=out,src=x",
                Some("src"),
                &[
                    "key \"src\" does not apply to --cache-to type=local",
                    "\"src\" only applies to --cache-from type=local.",
                ],
            ),
            (
                CacheFrom,
                "type=local,src=x,dest=y",
                Some("dest"),
                &[
                    "\"dest\" only applies to --cache-to type=local.",
                    "accepted keys for type=local: src, tag, digest",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,ref=x",
                Some("ref"),
                &["\"ref\" only applies to type=registry."],
            ),
            (
                CacheTo,
                "type=local,dest=out,registry.insecure=true",
                Some("registry.insecure"),
                &["\"registry.insecure\" only applies to type=registry."],
            ),
            (
                CacheTo,
                "type=registry,ref=a,tag=x",
                Some("tag"),
                &["takes its tag or digest inside ref"],
            ),
            (
                CacheFrom,
                "type=registry,ref=a,digest=x",
                Some("digest"),
                &["takes its tag or digest inside ref"],
            ),
            (
                CacheFrom,
                "type=local,src=x,mdoe=max",
                Some("mdoe"),
                &[
                    "unknown key \"mdoe\"",
                    "did you mean \"mode\"? (an export key: --cache-from ignores it)",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,mode=MAX",
                Some("mode"),
                &[
                    "invalid value \"MAX\" for mode (accepted: min, max)",
                    "hint: did you mean \"max\"?",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,mode=",
                Some("mode"),
                &["invalid value \"\" for mode (accepted: min, max)"],
            ),
            (
                CacheTo,
                "type=local,dest=out,mode=full",
                Some("mode"),
                &["invalid value \"full\" for mode"],
            ),
            (
                CacheTo,
                "type=local,dest=out,oci-mediatypes=no",
                Some("oci-mediatypes"),
                &[
                    "invalid value \"no\" for oci-mediatypes",
                    "did you mean \"false\"?",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,image-manifest=maybe",
                Some("image-manifest"),
                &["invalid value \"maybe\" for image-manifest"],
            ),
            (
                CacheTo,
                "type=local,dest=out,force-compression=yes",
                Some("force-compression"),
                &["invalid value \"yes\" for force-compression"],
            ),
            (
                CacheFrom,
                "type=registry,ref=a,registry.insecure=maybe",
                Some("registry.insecure"),
                &["invalid value \"maybe\" for registry.insecure"],
            ),
            (
                CacheTo,
                "type=local,dest=out,oci-mediatypes=false,image-manifest=true",
                Some("image-manifest"),
                &["image-manifest=true needs oci-mediatypes=true, but oci-mediatypes=false"],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression=GZIP",
                Some("compression"),
                &[
                    "invalid value \"GZIP\" for compression (accepted: gzip, estargz, zstd, uncompressed)",
                    "did you mean \"gzip\"?",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression=none",
                Some("compression"),
                &["did you mean \"uncompressed\"?"],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression=zst",
                Some("compression"),
                &["did you mean \"zstd\"?"],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression=brotli",
                Some("compression"),
                &[
                    "invalid value \"brotli\" for compression (accepted: gzip, estargz, zstd, uncompressed)",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression-level=high",
                Some("compression-level"),
                &[
                    "invalid value \"high\" for compression-level (accepted: an integer from 0 to 9 for compression=gzip, the default here)",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression=gzip,compression-level=high",
                Some("compression-level"),
                &["(accepted: an integer from 0 to 9 for compression=gzip)"],
            ),
            (
                CacheTo,
                "tpye=local,dest=out",
                Some("type"),
                &[
                    "missing type",
                    "hint: \"tpye\" is not a key: did you mean \"type\"?",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression-level=",
                Some("compression-level"),
                &["invalid value \"\" for compression-level"],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression-level=1.5",
                Some("compression-level"),
                &["invalid value \"1.5\" for compression-level"],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression-level=10",
                Some("compression-level"),
                &[
                    "compression-level \"10\" is out of range for compression=gzip, the default here (accepted: 0 to 9)",
                    "hint: compression=zstd takes levels up to 22",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression=estargz,compression-level=99",
                Some("compression-level"),
                &[
                    "compression-level \"99\" is out of range for compression=estargz (accepted: 0 to 9)",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression=zstd,compression-level=23",
                Some("compression-level"),
                &[
                    "compression-level \"23\" is out of range for compression=zstd (accepted: 0 to 22)",
                ],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression-level=-1",
                Some("compression-level"),
                &["compression-level \"-1\" is out of range for compression=gzip"],
            ),
            (
                CacheTo,
                "type=local,dest=out,compression=uncompressed,compression-level=0",
                Some("compression-level"),
                &["compression-level=0 has no effect with compression=uncompressed"],
            ),
            (
                CacheTo,
                "type=local,dest=out,foo",
                Some("foo"),
                &["field \"foo\" is not key=value"],
            ),
            (
                CacheTo,
                "type=local,,dest=out",
                Some(""),
                &["field \"\" is not key=value"],
            ),
            (
                CacheTo,
                "type=local,dest=out,",
                Some(""),
                &["field \"\" is not key=value"],
            ),
            (
                CacheTo,
                "type=registry,ref=User/app",
                Some("ref"),
                &[
                    "invalid ref \"User/app\": repository name \"User/app\" must be lowercase",
                    "hint: did you mean \"user/app\"?",
                ],
            ),
            (
                CacheTo,
                &pinned,
                Some("ref"),
                &["pins digest sha256:e3b0c44298fc", "needs a tag"],
            ),
            (
                CacheTo,
                "type=registry,\"ref=a,b\"",
                Some("ref"),
                &["invalid ref \"a,b\": invalid repository path component \"a,b\""],
            ),
            (
                CacheTo,
                "User/app",
                Some("ref"),
                &["\"User/app\": invalid ref: repository name \"User/app\" must be lowercase"],
            ),
            (
                CacheFrom,
                "a,,b",
                Some("ref"),
                &["invalid ref \"\": the reference is empty"],
            ),
            (CacheFrom, " ", Some("ref"), &["\" \": invalid ref: "]),
            (CacheFrom, "\"a,b\"", Some("ref"), &["invalid ref \"a,b\""]),
            (
                CacheFrom,
                "type=local,src=x,digest=sha256:abc",
                Some("digest"),
                &[
                    "invalid value \"sha256:abc\" for digest (accepted: sha256: followed by 64 lowercase hex digits)",
                ],
            ),
            (
                CacheFrom,
                "type=local,src=x,tag=",
                Some("tag"),
                &["invalid value \"\" for tag (accepted: letters and digits"],
            ),
            (
                CacheTo,
                "type=local,dest=x,tag=a//b",
                Some("tag"),
                &["invalid value \"a//b\" for tag"],
            ),
            (
                CacheTo,
                "type=local,dest=x,tag=-a",
                Some("tag"),
                &["invalid value \"-a\" for tag"],
            ),
            (
                CacheTo,
                "type=local,dest=my\"dir",
                None,
                &[
                    "field \"dest=my\\\"dir\" holds a quote but does not start with one",
                    "hint: quote the whole field and double the quotes inside it: \"dest=my\"\"dir\"",
                ],
            ),
            (
                CacheTo,
                "type=local,\"dest=a\"b",
                None,
                &["text after the closing quote"],
            ),
            (
                CacheTo,
                "type=local,\"dest=a",
                None,
                &["a quoted field is never closed"],
            ),
            (
                CacheTo,
                "type=local,dest=a\nb",
                None,
                &["a line break outside quotes"],
            ),
            (CacheFrom, "\n", None, &["the value is empty"]),
        ];
        for &(flag, value, field, fragments) in cases {
            let err = parse_err(flag, value);
            let message = err.to_string();
            assert_eq!(err.flag(), flag, "{message}");
            assert_eq!(err.value(), value);
            assert_eq!(err.field(), field, "{message}");
            assert!(
                message.starts_with(&format!("invalid {flag} {value:?}: ")),
                "{message}"
            );
            // The hint is data, printed by main after the message.
            assert!(!message.contains("hint:"), "{message}");
            let shown = match err.hint() {
                Some(hint) => format!("{message}\nhint: {hint}"),
                None => message.clone(),
            };
            for fragment in fragments {
                assert!(
                    shown.contains(fragment),
                    "{value:?}: missing {fragment:?} in\n{shown}"
                );
            }
        }
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn warnings_during(run: impl FnOnce()) -> String {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        tracing::subscriber::with_default(subscriber, run);
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn cache_from_accepts_and_ignores_export_keys_with_a_warning() {
        let value =
            "type=registry,ref=a,mode=max,compression=zstd,compression-level=99,ignore-error=true";
        let mut parsed = None;
        let warnings = warnings_during(|| parsed = Some(parse_cache_from(value)));
        assert_eq!(
            parsed.map(|r| r.unwrap()),
            Some(vec![CacheFrom {
                source: ImportSource::Registry {
                    reference: reference("a"),
                    insecure: false
                }
            }])
        );
        assert!(warnings.contains("WARN"), "{warnings}");
        assert!(
            warnings.contains("ignoring mode, compression, compression-level, ignore-error"),
            "{warnings}"
        );
        assert!(warnings.contains("--cache-from"), "{warnings}");

        let quiet = warnings_during(|| {
            one_from("type=local,src=in");
        });
        assert_eq!(quiet, "");
    }

    #[test]
    fn a_value_without_equals_is_a_list_of_registry_refs() {
        let to = parse_cache_to("a,ghcr.io/o/b:cache", ExportDefaults::BuildKit).unwrap();
        assert_eq!(
            to,
            vec![
                CacheTo {
                    target: ExportTarget::Registry {
                        reference: reference("docker.io/library/a:latest"),
                        insecure: false
                    },
                    params: ExportDefaults::BuildKit.params(),
                    defaults: ExportDefaults::BuildKit,
                },
                CacheTo {
                    target: ExportTarget::Registry {
                        reference: reference("ghcr.io/o/b:cache"),
                        insecure: false
                    },
                    params: ExportDefaults::BuildKit.params(),
                    defaults: ExportDefaults::BuildKit,
                },
            ]
        );
        let from = parse_cache_from(&format!("user/app:cache,x@{DIGEST}")).unwrap();
        let refs: Vec<String> = from
            .iter()
            .map(|c| match &c.source {
                ImportSource::Registry {
                    reference,
                    insecure: false,
                } => reference.to_string(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            refs,
            [
                "docker.io/user/app:cache".to_string(),
                format!("docker.io/library/x@{DIGEST}")
            ]
        );
        assert_eq!(parse_cache_from("user/app").unwrap().len(), 1);
    }

    #[test]
    fn an_empty_value_yields_no_specs_as_in_buildx() {
        for defaults in ExportDefaults::ALL {
            assert_eq!(parse_cache_to("", defaults).unwrap(), vec![]);
        }
        assert_eq!(parse_cache_from("").unwrap(), vec![]);
    }

    #[test]
    fn keys_are_case_insensitive_values_exact_and_a_later_duplicate_wins() {
        assert_eq!(
            one_to("type=local,dest=out,MODE=max").params.mode,
            Mode::Max
        );
        assert_eq!(
            local_dest(&one_to("TYPE=local,Dest=Out")).0,
            std::path::Path::new("Out")
        );
        assert_eq!(
            one_to("type=local,dest=out,mode=min,mode=max").params.mode,
            Mode::Max
        );
        assert_eq!(
            one_to("type=local,dest=out,mode=max,Mode=min").params.mode,
            Mode::Min
        );
        assert_eq!(
            local_dest(&one_to("type=local,dest=a,dest=b")).0,
            std::path::Path::new("b")
        );
        assert!(matches!(
            one_to("type=registry,type=local,dest=x").target,
            ExportTarget::Local { .. }
        ));
        // An earlier bad value is forgiven when a later one replaces it.
        assert_eq!(
            one_to("type=local,dest=o,mode=bad,mode=max").params.mode,
            Mode::Max
        );
    }

    #[test]
    fn paths_are_kept_as_given() {
        for dest in ["../x/./y/", "~/cache", "/abs/path", "rel", "C:\\win"] {
            let value = format!("type=local,dest={dest}");
            assert_eq!(local_dest(&one_to(&value)).0, std::path::Path::new(dest));
            match one_from(&format!("type=local,src={dest}")).source {
                ImportSource::Local { src, .. } => assert_eq!(src, std::path::Path::new(dest)),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn an_invalid_tag_hints_at_the_tag_made_valid() {
        let err = parse_cache_from("127.0.0.1:5000/app:cache-feature/foo").unwrap_err();
        assert!(
            err.to_string()
                .contains("invalid tag \"cache-feature/foo\""),
            "{err}"
        );
        assert!(
            err.hint()
                .is_some_and(|h| h.ends_with("127.0.0.1:5000/app:cache-feature-foo")),
            "{err}"
        );
        let err = parse_cache_to(
            "type=registry,ref=ghcr.io/o/a:-fix/ü#x",
            ExportDefaults::Regcache,
        )
        .unwrap_err();
        assert!(
            err.hint()
                .is_some_and(|h| h.ends_with("ghcr.io/o/a:fix---x")),
            "{err}"
        );
    }

    #[test]
    fn mode_names_and_serialization() {
        assert_eq!(Mode::from_name("max"), Some(Mode::Max));
        assert_eq!(Mode::from_name("Max"), None);
        assert_eq!(Mode::Min.name(), "min");
        assert_eq!(serde_json::to_string(&Mode::Max).unwrap(), "\"max\"");
        assert_eq!(Flag::CacheFrom.to_string(), "--cache-from");
    }
}
