//! `Reference::parse` on text shaped like image references, so that most
//! cases reach the host, path, tag and digest checks rather than stopping
//! at the first character.

use proptest::prelude::*;
use proptest::sample::select;

use super::check;
use crate::reference::Reference;

const HOSTS: &[&str] = &[
    "docker.io",
    "index.docker.io",
    "localhost",
    "localhost:5000",
    "[::1]:5000",
    "[::1]",
    "[fe80::1%eth0]:1",
    "127.0.0.1:5000",
    "ghcr.io",
    "Registry.Example.COM",
    "a-b.c",
    "-bad.io",
    "x.io:99999",
    "x.io:",
    "x.io:+1",
    "[::1",
    "[zz]:1",
    "[::1]x",
    "é.io",
];

const COMPONENTS: &[&str] = &[
    "alpine", "library", "a", "a.b", "a_b", "a__b", "a___b", "a---b", "a..b", "_a", "a-", "UPPER",
    "ünï", "", ".", "..",
];

const TAGS: &[&str] = &["latest", "3.19", "_", ".x", "-x", "", ":", " ", "Ü", "a@b"];

fn registry() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(HOSTS).prop_map(str::to_string),
        1 => "[a-z0-9]{1,5}(\\.[a-z0-9]{1,5}){1,2}(:[0-9]{1,5})?",
        1 => "[a-zA-Z0-9.-]{1,12}(:[0-9]{0,6})?",
    ]
}

fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => select(COMPONENTS).prop_map(str::to_string),
        16 => "[a-z0-9]{1,8}([._]|__|-{1,3})?[a-z0-9]{1,8}",
        1 => "[a-z0-9._A-Z-]{0,6}",
        // Long enough to cross the 255-byte name limit.
        1 => "[a-z]{120,250}",
    ]
}

fn tag() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => select(TAGS).prop_map(str::to_string),
        8 => "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}",
        1 => "[A-Za-z0-9_][A-Za-z0-9_.-]{125,130}",
    ]
}

pub(super) fn digest_text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "sha256:[0-9a-f]{64}",
        1 => "sha256:[0-9a-fA-F]{62,66}",
        1 => "(sha512|SHA256|sha256)?:?[0-9a-f]{0,64}",
    ]
}

/// `[registry/]path[:tag][@digest]`, each part valid most of the time, or
/// arbitrary text now and then.
pub(super) fn reference_text() -> impl Strategy<Value = String> {
    let shaped = (
        prop::option::weighted(0.5, registry()),
        prop::collection::vec(component(), 1..4),
        prop::option::weighted(0.5, tag()),
        prop::option::weighted(0.2, digest_text()),
    )
        .prop_map(|(registry, path, tag, digest)| {
            let mut text = String::new();
            if let Some(registry) = registry {
                text.push_str(&registry);
                text.push('/');
            }
            text.push_str(&path.join("/"));
            if let Some(tag) = tag {
                text.push(':');
                text.push_str(&tag);
            }
            if let Some(digest) = digest {
                text.push('@');
                text.push_str(&digest);
            }
            text
        });
    prop_oneof![
        16 => shaped,
        1 => "[0-9a-f]{64}",
        1 => "\\PC{0,40}",
    ]
}

#[test]
fn references_parse_without_panicking_and_print_back_to_themselves() {
    check(
        "references_parse_without_panicking_and_print_back_to_themselves",
        3000,
        reference_text(),
        |text| {
            match Reference::parse(&text) {
                Ok(reference) => {
                    let shown = reference.to_string();
                    prop_assert_eq!(Reference::parse(&shown), Ok(reference.clone()), "{}", shown);
                    prop_assert!(reference.tag().is_some() || reference.digest().is_some());
                    prop_assert_eq!(
                        reference.name(),
                        format!("{}/{}", reference.registry(), reference.repository())
                    );
                    prop_assert!(shown.starts_with(&reference.name()));
                    prop_assert_eq!(
                        serde_json::to_value(&reference).unwrap(),
                        serde_json::Value::String(shown.clone())
                    );
                    // Only for its lack of panics: any host string must do.
                    let _ = reference.is_loopback();
                }
                Err(e) => {
                    prop_assert_eq!(&e.value, &text);
                    prop_assert!(!e.reason.to_string().is_empty());
                }
            }
            Ok(())
        },
    );
}
