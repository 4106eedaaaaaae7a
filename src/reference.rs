//! Docker-style image references (`alpine`, `ghcr.io/o/r:tag`,
//! `localhost:5000/x@sha256:…`), normalised exactly as Docker's
//! `ParseNormalizedNamed` does so that a ref means the same image here as in
//! `docker buildx build --cache-to`.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::digest::Digest;

/// The registry a name without a host refers to. Its real endpoint is
/// `registry-1.docker.io`; that mapping is the registry client's business.
pub const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's legacy name, which Docker folds into [`DOCKER_HUB`].
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// Single-component Docker Hub names live under this namespace.
const OFFICIAL_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";
/// Docker's `NameTotalLengthMax`, counted over `registry/repository`.
const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// A parsed, normalised image reference. A reference always has a tag or a
/// digest: with neither, the tag is `latest`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {value:?}: {reason}")]
pub struct ReferenceError {
    /// The reference as given.
    pub value: String,
    /// What is wrong with it, naming the offending part.
    pub reason: ReferenceProblem,
    /// When the tag is what is wrong: the tag made valid (see
    /// [`valid_tag`]), for a hint. A branch name is the usual culprit.
    pub valid_tag: Option<String>,
}

/// What is wrong with a reference, naming the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceProblem {
    #[error("the reference is empty")]
    Empty,
    #[error("a 64-digit hex string is an image ID, not a repository name")]
    ImageId,
    #[error("invalid digest {0:?}: expected sha256: followed by 64 lowercase hex digits")]
    Digest(String),
    #[error("repository name {0:?} must be lowercase")]
    Uppercase(String),
    #[error("invalid registry host {host:?}: {problem}")]
    Registry { host: String, problem: HostProblem },
    #[error(
        "invalid repository path component {component:?} in {path:?}: components are lowercase \
         letters and digits, joined by \".\", \"_\", \"__\" or dashes, separated by \"/\""
    )]
    PathComponent { component: String, path: String },
    #[error(
        "invalid tag {0:?}: a tag is 1 to {TAG_MAX} letters, digits, \"_\", \".\" and \"-\", \
         not starting with \".\" or \"-\""
    )]
    Tag(String),
    #[error("the name {name} is {length} characters long, more than the {NAME_MAX} allowed")]
    TooLong { name: String, length: usize },
}

/// What is wrong with a reference's registry host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostProblem {
    #[error("'[' opens an IPv6 address that is never closed")]
    UnclosedBracket,
    #[error("{0:?} is not an IPv6 address")]
    NotIpv6(String),
    #[error("only :PORT may follow an IPv6 address")]
    AfterIpv6,
    #[error("a host is dot-separated labels of letters, digits and inner dashes, or [IPv6]")]
    Labels,
    #[error("port {0:?} is not a number from 0 to 65535")]
    Port(String),
}

/// A reference that failed to parse: why, and the tag made valid when the
/// tag was at fault.
struct Failure {
    reason: ReferenceProblem,
    valid_tag: Option<String>,
}

impl From<ReferenceProblem> for Failure {
    fn from(reason: ReferenceProblem) -> Failure {
        Failure {
            reason,
            valid_tag: None,
        }
    }
}

/// `text` made a valid tag, as CI scripts make one of a branch name: every
/// character but letters, digits, `_`, `.` and `-` becomes `-`, leading
/// `.` and `-` go (a tag starts with a letter, digit or `_`), and it is cut
/// at 128 characters. `None` when nothing is left.
pub fn valid_tag(text: &str) -> Option<String> {
    let replaced: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = replaced.trim_start_matches(['.', '-']);
    let tag: String = trimmed.chars().take(TAG_MAX).collect();
    (!tag.is_empty()).then_some(tag)
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        parse(s).map_err(|failure| ReferenceError {
            value: s.to_string(),
            reason: failure.reason,
            valid_tag: failure.valid_tag,
        })
    }

    /// The registry host, with its port if one was given: `docker.io`,
    /// `localhost:5000`, `[::1]:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry: `library/alpine`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Whether the registry is on this machine (`localhost`, 127.0.0.0/8,
    /// `::1`), where plain HTTP is acceptable as Docker does.
    pub fn is_loopback(&self) -> bool {
        let host = host_without_port(&self.registry);
        if host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            return inner.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
        }
        host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

fn parse(s: &str) -> Result<Reference, Failure> {
    if s.is_empty() {
        return Err(ReferenceProblem::Empty.into());
    }
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ReferenceProblem::ImageId.into());
    }
    // Neither a name nor a tag may hold '@', so the first one starts the digest.
    let (name_and_tag, digest) = match s.split_once('@') {
        Some((rest, digest)) => {
            let digest = digest
                .parse::<Digest>()
                .map_err(|_| ReferenceProblem::Digest(digest.to_string()))?;
            (rest, Some(digest))
        }
        None => (s, None),
    };
    let (registry, remainder) = split_registry(name_and_tag);
    // A path never holds ':', so the first one (after the host) starts the tag.
    let (path, tag) = match remainder.split_once(':') {
        Some((path, tag)) => (path, Some(tag)),
        None => (remainder, None),
    };
    if path.chars().any(|c| c.is_uppercase()) {
        return Err(ReferenceProblem::Uppercase(path.to_string()).into());
    }
    check_registry(registry)?;
    check_path(path)?;
    if let Some(tag) = tag {
        check_tag(tag).map_err(|reason| Failure {
            reason,
            valid_tag: valid_tag(tag),
        })?;
    }
    let repository = if registry == DOCKER_HUB && !path.contains('/') {
        format!("{OFFICIAL_PREFIX}{path}")
    } else {
        path.to_string()
    };
    let name_len = registry.len() + 1 + repository.len();
    if name_len > NAME_MAX {
        return Err(ReferenceProblem::TooLong {
            name: format!("{registry}/{repository}"),
            length: name_len,
        }
        .into());
    }
    let tag = match (tag, &digest) {
        (Some(tag), _) => Some(tag.to_string()),
        (None, None) => Some(DEFAULT_TAG.to_string()),
        (None, Some(_)) => None,
    };
    Ok(Reference {
        registry: registry.to_string(),
        repository,
        tag,
        digest,
    })
}

/// Docker's rule: the first component is a host only if it looks like one
/// (has `.` or `:`, or is `localhost`). Newer Docker also takes a component
/// with uppercase letters for a host; regcache does not, because `User/app`
/// is far more often a mistyped Docker Hub name than a registry called
/// `User`, and refusing it is the older Docker behaviour.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((DOCKER_HUB_LEGACY, rest)) => (DOCKER_HUB, rest),
        Some((first, rest)) if first == "localhost" || first.contains(['.', ':']) => (first, rest),
        _ => (DOCKER_HUB, name),
    }
}

fn host_without_port(registry: &str) -> &str {
    if registry.starts_with('[') {
        match registry.find(']') {
            Some(end) => &registry[..=end],
            None => registry,
        }
    } else {
        registry.split_once(':').map_or(registry, |(host, _)| host)
    }
}

fn check_registry(registry: &str) -> Result<(), ReferenceProblem> {
    let bad = |problem: HostProblem| ReferenceProblem::Registry {
        host: registry.to_string(),
        problem,
    };
    let port = if let Some(rest) = registry.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| bad(HostProblem::UnclosedBracket))?;
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(bad(HostProblem::NotIpv6(addr.to_string())));
        }
        match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| bad(HostProblem::AfterIpv6))?,
            ),
        }
    } else {
        let (host, port) = match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        };
        if !host.split('.').all(is_domain_component) {
            return Err(bad(HostProblem::Labels));
        }
        port
    };
    if let Some(port) = port {
        let digits = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || port.parse::<u16>().is_err() {
            return Err(bad(HostProblem::Port(port.to_string())));
        }
    }
    Ok(())
}

fn is_domain_component(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

fn check_path(path: &str) -> Result<(), ReferenceProblem> {
    match path
        .split('/')
        .find(|component| !is_path_component(component))
    {
        None => Ok(()),
        Some(component) => Err(ReferenceProblem::PathComponent {
            component: component.to_string(),
            path: path.to_string(),
        }),
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`, written out because the crate
/// has no regex engine and this is the only pattern it needs.
fn is_path_component(component: &str) -> bool {
    let is_alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !is_alnum(first) || !is_alnum(last) {
        return false;
    }
    let mut rest = bytes;
    while let Some(start) = rest.iter().position(|b| !is_alnum(b)) {
        let len = rest[start..].iter().take_while(|b| !is_alnum(b)).count();
        let separator = &rest[start..start + len];
        let valid =
            matches!(separator, b"." | b"_" | b"__") || separator.iter().all(|b| *b == b'-');
        if !valid {
            return false;
        }
        rest = &rest[start + len..];
    }
    true
}

fn check_tag(tag: &str) -> Result<(), ReferenceProblem> {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let valid = match tag.as_bytes().split_first() {
        Some((first, rest)) => {
            is_word(*first)
                && tag.len() <= TAG_MAX
                && rest.iter().all(|b| is_word(*b) || matches!(b, b'.' | b'-'))
        }
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(ReferenceProblem::Tag(tag.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_is_typed_by_the_part_at_fault() {
        let reason = |s: &str| Reference::parse(s).unwrap_err().reason;
        assert_eq!(reason(""), ReferenceProblem::Empty);
        assert_eq!(
            reason("r.io/a:feature/x"),
            ReferenceProblem::Tag("feature/x".into())
        );
        assert_eq!(
            reason("r.io/a/-b"),
            ReferenceProblem::PathComponent {
                component: "-b".into(),
                path: "a/-b".into(),
            }
        );
        assert_eq!(reason("r.io/a:-x"), ReferenceProblem::Tag("-x".into()));
        assert_eq!(
            reason("r.io:99999/a"),
            ReferenceProblem::Registry {
                host: "r.io:99999".into(),
                problem: HostProblem::Port("99999".into()),
            }
        );
        assert_eq!(
            reason("[::1/a"),
            ReferenceProblem::Registry {
                host: "[::1".into(),
                problem: HostProblem::UnclosedBracket,
            }
        );
        assert_eq!(
            reason("r.io/App"),
            ReferenceProblem::Uppercase("App".into())
        );
        assert!(matches!(
            reason("r.io/a@sha256:zz"),
            ReferenceProblem::Digest(d) if d == "sha256:zz"
        ));
    }

    #[test]
    fn tags_made_valid_as_ci_scripts_make_them() {
        assert_eq!(
            valid_tag("cache-feature/foo").as_deref(),
            Some("cache-feature-foo")
        );
        assert_eq!(valid_tag("Fix #12: ü").as_deref(), Some("Fix--12---"));
        assert_eq!(valid_tag(".-x").as_deref(), Some("x"));
        assert_eq!(valid_tag("/").as_deref(), None);
        assert_eq!(valid_tag(&"a".repeat(300)).map(|t| t.len()), Some(TAG_MAX));
        for text in ["cache-feature/foo", "Fix #12: ü", ".-x", &"b/".repeat(100)] {
            let tag = valid_tag(text).unwrap();
            assert!(check_tag(&tag).is_ok(), "{text:?} made {tag:?}");
        }
        let err = Reference::parse("r.io/a:cache-feature/foo").unwrap_err();
        assert_eq!(err.valid_tag.as_deref(), Some("cache-feature-foo"));
        assert_eq!(Reference::parse("r.io/A:x").unwrap_err().valid_tag, None);
    }

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn parsed(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    #[test]
    fn normalises_like_docker() {
        let with_digest_only = format!("x@{DIGEST}");
        let with_both = format!("r.io/a:t@{DIGEST}");
        // (input, registry, repository, tag, digest)
        type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);
        let cases: &[Case] = &[
            (
                "alpine",
                "docker.io",
                "library/alpine",
                Some("latest"),
                None,
            ),
            (
                "alpine:3.19",
                "docker.io",
                "library/alpine",
                Some("3.19"),
                None,
            ),
            ("user/app", "docker.io", "user/app", Some("latest"), None),
            (
                "user/app:cache",
                "docker.io",
                "user/app",
                Some("cache"),
                None,
            ),
            (
                "docker.io/alpine",
                "docker.io",
                "library/alpine",
                Some("latest"),
                None,
            ),
            (
                "docker.io/library/alpine",
                "docker.io",
                "library/alpine",
                Some("latest"),
                None,
            ),
            (
                "index.docker.io/library/a",
                "docker.io",
                "library/a",
                Some("latest"),
                None,
            ),
            (
                "index.docker.io/a",
                "docker.io",
                "library/a",
                Some("latest"),
                None,
            ),
            ("localhost/x", "localhost", "x", Some("latest"), None),
            (
                "localhost:5000/x",
                "localhost:5000",
                "x",
                Some("latest"),
                None,
            ),
            ("ghcr.io/o/r:t", "ghcr.io", "o/r", Some("t"), None),
            (
                "example.com/a/b/c",
                "example.com",
                "a/b/c",
                Some("latest"),
                None,
            ),
            (
                "registry:5000/a",
                "registry:5000",
                "a",
                Some("latest"),
                None,
            ),
            (
                "Registry.Example.COM/a",
                "Registry.Example.COM",
                "a",
                Some("latest"),
                None,
            ),
            ("[::1]:5000/a", "[::1]:5000", "a", Some("latest"), None),
            ("[::1]/a", "[::1]", "a", Some("latest"), None),
            (
                "127.0.0.1:5000/a/b:V1_x.y-z",
                "127.0.0.1:5000",
                "a/b",
                Some("V1_x.y-z"),
                None,
            ),
            (
                "a__b/c-d---e.f_g",
                "docker.io",
                "a__b/c-d---e.f_g",
                Some("latest"),
                None,
            ),
            // Docker's own quirk, kept for fidelity: a lone "localhost:5000"
            // is the Hub repository "localhost" with tag "5000".
            (
                "localhost:5000",
                "docker.io",
                "library/localhost",
                Some("5000"),
                None,
            ),
            (
                &with_digest_only,
                "docker.io",
                "library/x",
                None,
                Some(DIGEST),
            ),
            (&with_both, "r.io", "a", Some("t"), Some(DIGEST)),
        ];
        for &(input, registry, repository, tag, digest) in cases {
            let r = parsed(input);
            assert_eq!(r.registry(), registry, "registry of {input}");
            assert_eq!(r.repository(), repository, "repository of {input}");
            assert_eq!(r.tag(), tag, "tag of {input}");
            assert_eq!(
                r.digest().map(|d| d.to_string()).as_deref(),
                digest,
                "digest of {input}"
            );
        }
    }

    #[test]
    fn display_is_fully_normalised_and_reparses_to_the_same_reference() {
        let cases = [
            ("alpine", "docker.io/library/alpine:latest".to_string()),
            ("user/app:c", "docker.io/user/app:c".to_string()),
            (
                &*format!("host:5000/a/b@{DIGEST}"),
                format!("host:5000/a/b@{DIGEST}"),
            ),
            (
                &*format!("r.io/a:tag@{DIGEST}"),
                format!("r.io/a:tag@{DIGEST}"),
            ),
            ("[::1]:5000/a", "[::1]:5000/a:latest".to_string()),
        ];
        for (input, expected) in cases {
            let r = parsed(input);
            assert_eq!(r.to_string(), expected, "display of {input}");
            assert_eq!(parsed(&r.to_string()), r, "reparse of {input}");
        }
        assert_eq!(parsed("ghcr.io/o/r:t").name(), "ghcr.io/o/r");
    }

    #[test]
    fn refuses_invalid_references_naming_the_bad_part() {
        let long_path = format!("a/{}", "b".repeat(260));
        let long_tag = format!("a:{}", "t".repeat(129));
        let image_id = DIGEST.trim_start_matches("sha256:").to_string();
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            (
                "User/app",
                r#"repository name "User/app" must be lowercase"#,
            ),
            ("ALPINE", r#"repository name "ALPINE" must be lowercase"#),
            (
                "ghcr.io/Owner/app",
                r#"repository name "Owner/app" must be lowercase"#,
            ),
            (&image_id, "image ID"),
            ("a:", r#"invalid tag """#),
            ("a:-x", r#"invalid tag "-x""#),
            ("a:.x", r#"invalid tag ".x""#),
            ("a:t:u", r#"invalid tag "t:u""#),
            (&long_tag, "invalid tag"),
            ("a@sha256:abc", r#"invalid digest "sha256:abc""#),
            ("a@", r#"invalid digest """#),
            ("a@md5:d41d8cd98f00b204e9800998ecf8427e", "invalid digest"),
            ("a,b", r#"invalid repository path component "a,b""#),
            ("a b", r#"invalid repository path component "a b""#),
            ("a//b", r#"invalid repository path component """#),
            ("/a", r#"invalid repository path component """#),
            ("a/", r#"invalid repository path component """#),
            ("a..b", r#"invalid repository path component "a..b""#),
            ("a___b", r#"invalid repository path component "a___b""#),
            ("-a", r#"invalid repository path component "-a""#),
            ("a-", r#"invalid repository path component "a-""#),
            ("a/_b", r#"invalid repository path component "_b""#),
            ("bad_host.io/a", r#"invalid registry host "bad_host.io""#),
            ("-host.io/a", r#"invalid registry host "-host.io""#),
            ("host.io./a", r#"invalid registry host "host.io.""#),
            ("host:port/a", r#"port "port""#),
            ("host:99999/a", r#"port "99999""#),
            ("host:+80/a", r#"port "+80""#),
            ("host:/a", r#"port """#),
            ("::1/a", r#"invalid registry host "::1""#),
            ("[::1/a", "never closed"),
            ("[zz]:5000/a", r#""zz" is not an IPv6 address"#),
            ("[::1]x/a", "only :PORT may follow"),
            (&long_path, "more than the 255 allowed"),
        ];
        for &(input, fragment) in cases {
            match Reference::parse(input) {
                Ok(r) => panic!("{input:?} should be refused, parsed as {r}"),
                Err(e) => {
                    let message = e.to_string();
                    assert!(message.contains(fragment), "{input:?}: {message}");
                    assert!(
                        message.starts_with(&format!("invalid image reference {input:?}: ")),
                        "{message}"
                    );
                }
            }
        }
    }

    #[test]
    fn is_loopback_only_for_this_machine() {
        let cases = [
            ("localhost/x", true),
            ("localhost:5000/x", true),
            ("127.0.0.1/x", true),
            ("127.1.2.3:5000/x", true),
            ("[::1]/x", true),
            ("[::1]:5000/x", true),
            ("[0:0:0:0:0:0:0:1]:5000/x", true),
            ("alpine", false),
            ("ghcr.io/x", false),
            ("128.0.0.1/x", false),
            ("10.0.0.1:5000/x", false),
            ("[::2]:5000/x", false),
            ("localhost.example.com/x", false),
            ("127.0.0.1.nip.io/x", false),
        ];
        for (input, expected) in cases {
            assert_eq!(parsed(input).is_loopback(), expected, "{input}");
        }
    }

    #[test]
    fn from_str_and_serialize_use_the_normalised_form() {
        let r: Reference = "user/app".parse().unwrap();
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#""docker.io/user/app:latest""#
        );
    }
}
