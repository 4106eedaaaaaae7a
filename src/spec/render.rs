//! A parsed spec shown back: the effective spec as one buildx CSV value,
//! and its entry in the `--dry-run` plan (docs/dry-run.md).

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};

use super::csv::write_csv;
use super::keys::{
    COMPRESSION, COMPRESSION_LEVEL, DEST, DIGEST, FORCE_COMPRESSION, IGNORE_ERROR, IMAGE_MANIFEST,
    INSECURE, Kind, MODE, OCI_MEDIATYPES, REF, SRC, TAG, TYPE,
};
use super::{CacheFrom, CacheTo, ExportParams, ExportTarget, ImportSource, RepoTarget};
use crate::digest::Digest;

impl ExportParams {
    /// The level the codec will use: an unset level is the codec's own
    /// default, which is still a definite number; `None` for
    /// `uncompressed`, which takes no level.
    pub fn effective_level(&self) -> Option<u32> {
        self.compression_level
            .or_else(|| self.compression.default_level())
    }
}

impl CacheTo {
    /// This destination as it appears in the `--dry-run` plan
    /// (docs/dry-run.md).
    pub fn plan_json(&self) -> Value {
        let (kind, location_key, location, tag) = match &self.target {
            ExportTarget::Registry { reference, .. } => (
                Kind::Registry,
                REF,
                reference.to_string(),
                reference.tag().map(str::to_string),
            ),
            ExportTarget::Local { dest, tag } => (
                Kind::Local,
                DEST,
                dest.to_string_lossy().into_owned(),
                Some(tag.clone()),
            ),
        };
        let p = &self.params;
        let mut plan = Map::new();
        plan.insert("type".into(), kind.name().into());
        plan.insert(location_key.into(), location.into());
        plan.insert("tag".into(), tag.into());
        if let ExportTarget::Registry { insecure, .. } = &self.target {
            plan.insert("registry_insecure".into(), (*insecure).into());
        }
        plan.insert("mode".into(), p.mode.name().into());
        plan.insert("oci_mediatypes".into(), p.oci_mediatypes.into());
        plan.insert("image_manifest".into(), p.image_manifest.into());
        plan.insert("compression".into(), p.compression.name().into());
        plan.insert("compression_level".into(), p.effective_level().into());
        plan.insert("force_compression".into(), p.force_compression.into());
        plan.insert("ignore_error".into(), p.ignore_error.into());
        plan.insert("defaults".into(), self.defaults.name().into());
        Value::Object(plan)
    }
}

impl CacheFrom {
    /// This source as it appears in the `--dry-run` plan (docs/dry-run.md).
    pub fn plan_json(&self) -> Value {
        let (kind, location_key, location, tag, digest) = match &self.source {
            ImportSource::Registry { reference, .. } => (
                Kind::Registry,
                REF,
                reference.to_string(),
                reference.tag().map(str::to_string),
                reference.digest(),
            ),
            ImportSource::Local { src, tag, digest } => (
                Kind::Local,
                SRC,
                src.to_string_lossy().into_owned(),
                Some(tag.clone()),
                digest.as_ref(),
            ),
            ImportSource::Pattern { repository, prefix } => match repository {
                RepoTarget::Registry { .. } => (
                    Kind::Registry,
                    REF,
                    repository.tag_location(&format!("{prefix}*")),
                    Some(format!("{prefix}*")),
                    None,
                ),
                RepoTarget::Local { dir } => (
                    Kind::Local,
                    SRC,
                    dir.to_string_lossy().into_owned(),
                    Some(format!("{prefix}*")),
                    None,
                ),
            },
        };
        let mut plan = Map::new();
        plan.insert("type".into(), kind.name().into());
        plan.insert(location_key.into(), location.into());
        plan.insert("tag".into(), tag.into());
        plan.insert("digest".into(), digest.map(Digest::to_string).into());
        if let ImportSource::Registry { insecure, .. }
        | ImportSource::Pattern {
            repository: RepoTarget::Registry { insecure, .. },
            ..
        } = &self.source
        {
            plan.insert("registry_insecure".into(), (*insecure).into());
        }
        plan.insert(
            "pattern".into(),
            matches!(self.source, ImportSource::Pattern { .. }).into(),
        );
        Value::Object(plan)
    }
}

/// The effective spec as one buildx CSV value, every parameter spelled out.
/// An unset compression level is left out rather than written as a word, so
/// that parsing this output gives back an equal spec.
impl fmt::Display for CacheTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut fields: Vec<(&str, Cow<'_, str>)> = Vec::new();
        match &self.target {
            ExportTarget::Registry {
                reference,
                insecure,
            } => {
                fields.push((TYPE, "registry".into()));
                fields.push((REF, reference.to_string().into()));
                fields.push((INSECURE, insecure.to_string().into()));
            }
            ExportTarget::Local { dest, tag } => {
                fields.push((TYPE, "local".into()));
                fields.push((DEST, dest.to_string_lossy()));
                fields.push((TAG, tag.as_str().into()));
            }
        }
        let p = &self.params;
        // A key taken from the source has no value yet: it is left out,
        // which is how it is asked for.
        let kept = p.from_source;
        if !kept.mode {
            fields.push((MODE, p.mode.name().into()));
        }
        if !kept.oci_mediatypes {
            fields.push((OCI_MEDIATYPES, p.oci_mediatypes.to_string().into()));
        }
        if !kept.image_manifest {
            fields.push((IMAGE_MANIFEST, p.image_manifest.to_string().into()));
        }
        if !kept.compression {
            fields.push((COMPRESSION, p.compression.name().into()));
        }
        if let Some(level) = p.compression_level {
            fields.push((COMPRESSION_LEVEL, level.to_string().into()));
        }
        fields.push((FORCE_COMPRESSION, p.force_compression.to_string().into()));
        fields.push((IGNORE_ERROR, p.ignore_error.to_string().into()));
        write_csv(f, &fields)
    }
}

/// The effective spec as one buildx CSV value; parses back to an equal spec.
impl fmt::Display for CacheFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut fields: Vec<(&str, Cow<'_, str>)> = Vec::new();
        match &self.source {
            ImportSource::Registry {
                reference,
                insecure,
            } => {
                fields.push((TYPE, "registry".into()));
                fields.push((REF, reference.to_string().into()));
                fields.push((INSECURE, insecure.to_string().into()));
            }
            ImportSource::Local { src, tag, digest } => {
                fields.push((TYPE, "local".into()));
                fields.push((SRC, src.to_string_lossy()));
                fields.push((TAG, tag.as_str().into()));
                if let Some(digest) = digest {
                    fields.push((DIGEST, digest.to_string().into()));
                }
            }
            ImportSource::Pattern {
                repository: RepoTarget::Registry { insecure, .. },
                prefix: _,
            } => {
                fields.push((TYPE, "registry".into()));
                fields.push((REF, self.location().into()));
                fields.push((INSECURE, insecure.to_string().into()));
            }
            ImportSource::Pattern {
                repository: RepoTarget::Local { dir },
                prefix,
            } => {
                fields.push((TYPE, "local".into()));
                fields.push((SRC, dir.to_string_lossy()));
                fields.push((TAG, format!("{prefix}*").into()));
            }
        }
        write_csv(f, &fields)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::spec::test_support::*;
    use crate::spec::*;

    #[test]
    fn plan_json_has_exactly_the_documented_keys() {
        assert_eq!(
            one_to("type=local,dest=out").plan_json(),
            json!({
                "type": "local",
                "dest": "out",
                "tag": "latest",
                "mode": "min",
                "oci_mediatypes": true,
                "image_manifest": true,
                "compression": "gzip",
                "compression_level": 6,
                "force_compression": false,
                "ignore_error": false,
                "defaults": "buildkit",
            })
        );
        let saved = one_to_with("type=local,dest=out", ExportDefaults::Regcache).plan_json();
        assert_eq!(saved["compression"], "zstd");
        assert_eq!(saved["compression_level"], 3);
        assert_eq!(saved["defaults"], "regcache");
        let uncompressed = one_to("type=local,dest=out,compression=uncompressed").plan_json();
        assert_eq!(uncompressed["compression_level"], Value::Null);
        assert_eq!(
            one_to("type=registry,ref=user/app:c,mode=max,compression=zstd,compression-level=3,oci-mediatypes=false,force-compression=true,ignore-error=true").plan_json(),
            json!({
                "type": "registry",
                "ref": "docker.io/user/app:c",
                "tag": "c",
                "registry_insecure": false,
                "mode": "max",
                "oci_mediatypes": false,
                "image_manifest": false,
                "compression": "zstd",
                "compression_level": 3,
                "force_compression": true,
                "ignore_error": true,
                "defaults": "buildkit",
            })
        );
        assert_eq!(
            one_from(&format!("type=registry,ref=r.io/a@{DIGEST}")).plan_json(),
            json!({"type": "registry", "ref": format!("r.io/a@{DIGEST}"), "tag": null, "digest": DIGEST, "registry_insecure": false, "pattern": false})
        );
        assert_eq!(
            one_from("type=registry,ref=a").plan_json(),
            json!({"type": "registry", "ref": "docker.io/library/a:latest", "tag": "latest", "digest": null, "registry_insecure": false, "pattern": false})
        );
        assert_eq!(
            one_from("type=local,src=in").plan_json(),
            json!({"type": "local", "src": "in", "tag": "latest", "digest": null, "pattern": false})
        );
        assert_eq!(
            one_from("127.0.0.1:5000/app:cache-main-*").plan_json(),
            json!({"type": "registry", "ref": "127.0.0.1:5000/app:cache-main-*", "tag": "cache-main-*", "digest": null, "registry_insecure": false, "pattern": true})
        );
        assert_eq!(
            one_from("type=local,src=in,tag=cache-*").plan_json(),
            json!({"type": "local", "src": "in", "tag": "cache-*", "digest": null, "pattern": true})
        );
        assert_eq!(
            one_from(&format!("type=local,src=in,tag=t,digest={DIGEST}")).plan_json(),
            json!({"type": "local", "src": "in", "tag": "t", "digest": DIGEST, "pattern": false})
        );
    }

    #[test]
    fn display_is_the_effective_spec() {
        assert_eq!(
            one_to("type=local,dest=out").to_string(),
            "type=local,dest=out,tag=latest,mode=min,oci-mediatypes=true,image-manifest=true,\
             compression=gzip,force-compression=false,ignore-error=false"
        );
        assert_eq!(
            one_to("user/app").to_string(),
            "type=registry,ref=docker.io/user/app:latest,registry.insecure=false,mode=min,\
             oci-mediatypes=true,image-manifest=true,compression=gzip,force-compression=false,\
             ignore-error=false"
        );
        assert_eq!(
            one_to("type=local,\"dest=a,b\",compression=zstd,compression-level=3").to_string(),
            "type=local,\"dest=a,b\",tag=latest,mode=min,oci-mediatypes=true,image-manifest=true,\
             compression=zstd,compression-level=3,force-compression=false,ignore-error=false"
        );
        assert_eq!(
            one_from(&format!("type=local,src=in,digest={DIGEST}")).to_string(),
            format!("type=local,src=in,tag=latest,digest={DIGEST}")
        );
        assert_eq!(
            one_from("alpine").to_string(),
            "type=registry,ref=docker.io/library/alpine:latest,registry.insecure=false"
        );
    }

    #[test]
    fn display_parses_back_to_an_equal_spec() {
        let to = [
            "type=local,dest=out",
            "user/app",
            "type=registry,ref=localhost:5000/c:t,registry.insecure=true,mode=max,ignore-error=1",
            "type=local,\"dest=a,b\",tag=feature/x,compression=zstd,compression-level=0",
            "type=local,\"dest=say \"\"hi\"\"\",force-compression=",
            "type=local,\"dest=line\nbreak\",oci-mediatypes=false",
            "type=local,dest= spaced ,compression=uncompressed,image-manifest=false",
            "type=registry,ref=[::1]:5000/a,compression=estargz,compression-level=9",
        ];
        for value in to {
            let spec = one_to(value);
            let shown = spec.to_string();
            assert_eq!(
                parse_cache_to(&shown, ExportDefaults::BuildKit),
                Ok(vec![spec]),
                "{value:?} shown as {shown:?}"
            );
        }
        let digested = format!("type=local,src=in,tag=t,digest={DIGEST}");
        let pinned = format!("type=registry,ref=r.io/a:t@{DIGEST},registry.insecure=true");
        let from = [
            "alpine",
            "type=local,src=in",
            "type=local,\"src=a,b\"",
            &digested,
            &pinned,
            "127.0.0.1:5000/app:cache-main-*",
            "type=registry,ref=r.io/a:*,registry.insecure=true",
            "type=local,src=in,tag=cache-*",
        ];
        for value in from {
            let spec = one_from(value);
            let shown = spec.to_string();
            assert_eq!(
                parse_cache_from(&shown),
                Ok(vec![spec]),
                "{value:?} shown as {shown:?}"
            );
        }
    }

    /// The examples in docs/dry-run.md are what this module produces.
    #[test]
    fn dry_run_doc_examples_match() {
        let doc = include_str!("../../docs/dry-run.md");
        // The example is a `run`, so regcache's defaults.
        let to = [
            "type=registry,ref=ghcr.io/acme/app:cache-main,mode=max",
            "type=local,dest=.cache/app,compression=gzip",
        ]
        .map(|value| one_to_with(value, ExportDefaults::Regcache));
        let from = [
            one_from("user/app:cache-main"),
            one_from("user/app:cache-*"),
        ];
        let json_block = doc
            .split("```json\n")
            .nth(1)
            .and_then(|rest| rest.split("\n```").next())
            .unwrap();
        let plan: Value = serde_json::from_str(json_block).unwrap();
        assert_eq!(
            plan["cache_to"],
            json!(to.iter().map(CacheTo::plan_json).collect::<Vec<_>>())
        );
        assert_eq!(
            plan["cache_from"],
            json!(from.iter().map(CacheFrom::plan_json).collect::<Vec<_>>())
        );
        for line in [
            to[0].to_string(),
            to[1].to_string(),
            from[0].to_string(),
            from[1].to_string(),
        ] {
            assert!(doc.contains(&format!("\n{line}\n")), "doc lacks {line}");
        }
    }
}
