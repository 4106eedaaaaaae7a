//! The whole repository or directory `prune` and `ls` work on, parsed
//! from a registry repository or a `type=local` spec, without a tag.

use super::OpsError;
use crate::spec::{
    ExportDefaults, ExportTarget, ImportSource, RepoTarget, parse_cache_from, parse_cache_to,
};

/// How a command names its target in messages.
#[derive(Debug, Clone, Copy)]
pub struct TargetWords {
    pub command: &'static str,
    /// The argument as `--help` names it: `TARGET`, `REPO`.
    pub noun: &'static str,
    /// `prune TARGET`: how messages name the argument.
    pub name: &'static str,
    pub tag_hint: &'static str,
    pub one_at_a_time: &'static str,
}

impl TargetWords {
    pub const PRUNE: TargetWords = TargetWords {
        command: "prune",
        noun: "TARGET",
        name: "prune TARGET",
        tag_hint: "TARGET names a whole repository or directory; choose tags with \
                   --tag PATTERN, e.g. --tag 'cache-*'",
        one_at_a_time: "prune one repository at a time",
    };
    pub const LS: TargetWords = TargetWords {
        command: "ls",
        noun: "REPO",
        name: "ls REPO",
        tag_hint: "REPO names a whole repository or directory, and ls lists every tag in it; \
                   `regcache inspect` shows one cache",
        one_at_a_time: "list one repository at a time",
    };
}

/// `ghcr.io/org/app`, `type=registry,ref=ghcr.io/org/app`,
/// `type=local,dest=DIR` or `type=local,src=DIR`. A tag or digest in
/// the target is refused: tags are chosen with `--tag`.
pub fn parse_repo_target(value: &str, words: TargetWords) -> Result<RepoTarget, OpsError> {
    let usage = |message: String, hint: &str| OpsError::Usage {
        message,
        hint: Some(hint.to_string()),
    };
    let tag_hint = words.tag_hint;
    let name = words.name;
    let value = value.trim();
    if value.is_empty() {
        return Err(usage(
            format!("the {name} is empty"),
            "give a repository (ghcr.io/org/app) or type=local,dest=DIR",
        ));
    }
    let fields: Vec<(&str, &str)> = value
        .split(',')
        .filter_map(|field| field.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let raw_ref = if fields.is_empty() {
        Some(value)
    } else {
        if let Some((key, _)) = fields.iter().find(|(k, _)| matches!(*k, "tag" | "digest")) {
            return Err(usage(
                format!("{name} {value:?} has a {key}= field"),
                tag_hint,
            ));
        }
        fields.iter().find(|(k, _)| *k == "ref").map(|(_, v)| *v)
    };
    if let Some(raw) = raw_ref {
        let last = raw.rsplit('/').next().unwrap_or(raw);
        if raw.contains('@') || last.contains(':') {
            return Err(usage(
                format!("{name} {raw:?} names a tag or digest"),
                tag_hint,
            ));
        }
    }
    let reword = |err: crate::spec::SpecError| {
        let text = err.to_string();
        let text = text
            .replacen("--cache-from", name, 1)
            .replacen("--cache-to", name, 1);
        OpsError::Usage {
            message: text,
            hint: None,
        }
    };
    let from = parse_cache_from(value);
    let source = match from {
        Ok(mut specs) if specs.len() == 1 => Some(specs.remove(0).source),
        Ok(specs) => {
            return Err(usage(
                format!(
                    "{} takes one {}, {value:?} names {}",
                    words.command,
                    words.noun,
                    specs.len()
                ),
                words.one_at_a_time,
            ));
        }
        // Only the location is kept: the export defaults do not matter.
        Err(err) => match parse_cache_to(value, ExportDefaults::BuildKit) {
            Ok(mut specs) if specs.len() == 1 => {
                return Ok(match specs.remove(0).target {
                    ExportTarget::Registry {
                        reference,
                        insecure,
                    } => RepoTarget::Registry {
                        repository: reference,
                        insecure,
                    },
                    ExportTarget::Local { dest, .. } => RepoTarget::Local { dir: dest },
                });
            }
            _ => return Err(reword(err)),
        },
    };
    Ok(match source.expect("set above") {
        ImportSource::Registry {
            reference,
            insecure,
        } => RepoTarget::Registry {
            repository: reference,
            insecure,
        },
        ImportSource::Local { src, .. } => RepoTarget::Local { dir: src },
        // A pattern has a tag, refused above.
        ImportSource::Pattern { repository, .. } => repository,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let ok = |v: &str| parse_repo_target(v, TargetWords::PRUNE).unwrap();
        assert!(
            matches!(ok("ghcr.io/org/app"), RepoTarget::Registry { repository, .. } if repository.name() == "ghcr.io/org/app")
        );
        assert!(matches!(
            ok("type=registry,ref=localhost:5000/app"),
            RepoTarget::Registry { .. }
        ));
        assert_eq!(
            ok("type=local,dest=/tmp/c"),
            RepoTarget::Local {
                dir: "/tmp/c".into()
            }
        );
        assert_eq!(
            ok("type=local,src=/tmp/c"),
            RepoTarget::Local {
                dir: "/tmp/c".into()
            }
        );
        for bad in [
            "ghcr.io/org/app:cache",
            "ghcr.io/org/app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "type=registry,ref=ghcr.io/org/app:cache",
            "type=local,src=/tmp/c,tag=x",
            "type=gha",
            "",
            "ghcr.io/org/app:cache-*",
        ] {
            let err = parse_repo_target(bad, TargetWords::PRUNE).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}: {err}");
        }
    }
}
