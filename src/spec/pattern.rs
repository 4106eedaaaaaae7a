//! Tag patterns: a `--cache-from` tag ending in `*` picks the newest cache
//! whose tag starts with what precedes it; a `*` anywhere else is refused.

use super::keys::REF;
use super::parse::{Parser, split_tag};
use super::{Flag, ImportSource, RepoTarget, SpecError};
use crate::reference::Reference;

impl Parser<'_> {
    /// A `--cache-from` registry ref: one cache, or with a tag ending in
    /// `*` the newest cache whose tag starts with what comes before it.
    pub(super) fn registry_source(
        &self,
        raw: &str,
        insecure: bool,
    ) -> Result<ImportSource, SpecError> {
        let Some(pattern) = raw.strip_suffix('*') else {
            return Ok(ImportSource::Registry {
                reference: self.reference(raw)?,
                insecure,
            });
        };
        let (name, Some(tag_prefix)) = split_tag(pattern) else {
            return Err(self.star_error(REF, raw));
        };
        if name.contains(['*', '@']) || tag_prefix.contains('*') {
            return Err(self.star_error(REF, raw));
        }
        let repository = self.reference(name)?;
        let prefix = self.pattern_prefix(REF, &format!("{tag_prefix}*"), |p| {
            p.is_empty() || Reference::parse(&format!("{name}:{p}x")).is_ok()
        })?;
        Ok(ImportSource::Pattern {
            repository: RepoTarget::Registry {
                repository,
                insecure,
            },
            prefix,
        })
    }

    /// The prefix of a tag pattern `raw` (`cache-main-*`): only a trailing
    /// `*` is a pattern, and what precedes it must be able to start a tag.
    pub(super) fn pattern_prefix(
        &self,
        field: &str,
        raw: &str,
        starts_a_tag: impl Fn(&str) -> bool,
    ) -> Result<String, SpecError> {
        let Some(prefix) = raw.strip_suffix('*').filter(|p| !p.contains('*')) else {
            return Err(self.star_error(field, raw));
        };
        if self.flag == Flag::CacheTo {
            return Err(self.star_error(field, raw));
        }
        if !starts_a_tag(prefix) {
            let hint = crate::reference::valid_tag(prefix).map(|valid| {
                format!(
                    "tags take letters, digits, \"_\", \".\" and \"-\", starting with a letter, \
                     digit or \"_\": make every other character \"-\", as in {valid}*"
                )
            });
            return Err(self.error(
                Some(field),
                format!("the tag pattern {raw:?} starts no valid tag"),
                hint,
            ));
        }
        Ok(prefix.to_string())
    }

    /// A `*` where it is not a pattern: anywhere on `--cache-to`, and
    /// anywhere but the end of a `--cache-from` tag.
    pub(super) fn star_error(&self, field: &str, raw: &str) -> SpecError {
        // A bare ref is the whole value, which the message shows already.
        let subject = if raw == self.value {
            "the ref".to_string()
        } else {
            format!("{field}={raw}")
        };
        match self.flag {
            Flag::CacheTo => self.error(
                Some(field),
                format!(
                    "{subject} holds \"*\": a tag pattern picks a cache to read, and \
                     --cache-to writes one tag"
                ),
                Some(
                    "name the tag to write, e.g. cache-main; patterns are for --cache-from".into(),
                ),
            ),
            Flag::CacheFrom => self.error(
                Some(field),
                format!(
                    "{subject} holds \"*\" where it is not a pattern: only a \"*\" ending \
                     the tag is one (the newest cache whose tag starts with what precedes it)"
                ),
                Some("e.g. ghcr.io/org/app:cache-main-* or type=local,src=DIR,tag=cache-*".into()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::test_support::*;
    use crate::spec::*;

    #[test]
    fn a_trailing_star_on_a_cache_from_tag_is_a_pattern() {
        let pattern = |value: &str| match one_from(value).source {
            ImportSource::Pattern { repository, prefix } => (repository.location(), prefix),
            other => panic!("{value}: not a pattern: {other:?}"),
        };
        assert_eq!(
            pattern("127.0.0.1:5000/app:cache-main-*"),
            ("127.0.0.1:5000/app".into(), "cache-main-".into())
        );
        assert_eq!(
            pattern("type=registry,ref=user/app:*"),
            ("docker.io/user/app".into(), String::new())
        );
        assert_eq!(
            pattern("type=local,src=/c,tag=cache-*"),
            ("/c".into(), "cache-".into())
        );
        let from_err = |value: &str| parse_cache_from(value).unwrap_err();
        for (value, field) in [
            ("127.0.0.1:5000/app:cache-*-main", "ref"),
            ("127.0.0.1:5000/app*", "ref"),
            ("127.0.0.1:5000/ap*p:x", "ref"),
            ("127.0.0.1:5000/app:**", "ref"),
            ("type=local,src=/c,tag=c*x", "tag"),
        ] {
            let err = from_err(value);
            assert_eq!(err.field(), Some(field), "{value}: {err}");
            assert!(
                err.to_string().contains("where it is not a pattern"),
                "{value}: {err}"
            );
        }
        let err = from_err(&format!("type=local,src=/c,tag=cache-*,digest={DIGEST}"));
        assert_eq!(err.field(), Some("digest"), "{err}");
        assert!(
            err.hint()
                .is_some_and(|h| h.contains("drop digest=") && h.contains("\"cache-\"")),
            "{err}"
        );
        let err = from_err("127.0.0.1:5000/app:.cache-*");
        assert!(err.to_string().contains("starts no valid tag"), "{err}");
        assert!(err.hint().is_some_and(|h| h.contains("cache-*")), "{err}");
        for (value, field) in [
            ("127.0.0.1:5000/app:cache-main-*", "ref"),
            ("type=registry,ref=r.io/a:*", "ref"),
            ("type=local,dest=/c,tag=cache-*", "tag"),
        ] {
            let err = parse_cache_to(value, ExportDefaults::BuildKit).unwrap_err();
            assert_eq!(err.field(), Some(field), "{value}: {err}");
            assert!(
                err.to_string().contains("--cache-to writes one tag"),
                "{value}: {err}"
            );
        }
    }
}
