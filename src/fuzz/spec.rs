//! The `--cache-to` / `--cache-from` parsers on CSV built from the known
//! keys and their values, quoted, misquoted and mixed with junk, so that
//! cases get past CSV splitting into the key checks and value parsers.

use proptest::prelude::*;
use proptest::sample::select;

use super::check;
use super::reference::{digest_text, reference_text};
use crate::spec::{ExportDefaults, Flag, parse_cache_from, parse_cache_to};

/// Every key the parser knows, from its own table, so that a new key is
/// fuzzed as soon as it exists.
fn keys() -> Vec<&'static str> {
    crate::spec::keys::names().collect()
}

fn export_keys() -> Vec<&'static str> {
    crate::spec::keys::export_keys().collect()
}

/// Values some key accepts, values close to them, and words with their own
/// branches in the error hints.
const WORDS: &[&str] = &[
    "registry",
    "local",
    "gha",
    "Registry",
    "min",
    "max",
    "Max",
    "mdoe",
    "true",
    "false",
    "1",
    "0",
    "T",
    "F",
    "TRUE",
    "yes",
    "off",
    "gzip",
    "zstd",
    "estargz",
    "uncompressed",
    "none",
    "-1",
    "+3",
    "9",
    "10",
    "22",
    "23",
    "99999999999999999999",
    "latest",
    "feature/x",
    "a--b",
    "a---b",
    "x/",
    "",
];

/// Text with the characters CSV and key=value splitting care about.
fn nasty() -> impl Strategy<Value = String> {
    "[a-z=\",\n\r é☃ /:@._-]{0,12}"
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => select(keys()).prop_map(str::to_string),
        1 => select(keys()).prop_map(str::to_uppercase),
        1 => select(keys()).prop_map(|k| format!(" {k}")),
        1 => nasty(),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(WORDS).prop_map(str::to_string),
        3 => reference_text(),
        1 => digest_text(),
        2 => nasty(),
    ]
}

/// One CSV field as written: raw, properly quoted, or with a stray quote.
fn written(field: String, quoting: u8) -> String {
    match quoting {
        0 => format!("\"{}\"", field.replace('"', "\"\"")),
        1 => format!("{field}\""),
        2 => format!("\"{field}"),
        _ => field,
    }
}

fn field() -> impl Strategy<Value = String> {
    let keyed = (key(), value()).prop_map(|(k, v)| format!("{k}={v}"));
    (
        prop_oneof![6 => keyed, 1 => value()],
        prop_oneof![1 => Just(0u8), 1 => 1u8..3, 10 => Just(3u8)],
    )
        .prop_map(|(field, quoting)| written(field, quoting))
}

/// A spec a user could mean: a type and its location key, then export keys
/// with the values they accept; most of these parse, so round trips run.
fn plausible() -> impl Strategy<Value = String> {
    let location = prop_oneof![
        reference_text().prop_map(|r| vec!["type=registry".to_string(), format!("ref={r}")]),
        (
            select(&["dest", "src"][..]),
            nasty(),
            prop::option::of(select(&["latest", "feature/x", "a--b", "v1.2_3", "x/"][..]))
        )
            .prop_map(|(key, dir, tag)| {
                let mut fields = vec!["type=local".to_string(), format!("{key}={dir}")];
                fields.extend(tag.map(|t| format!("tag={t}")));
                fields
            }),
    ];
    let export = (select(export_keys()), any::<prop::sample::Index>(), 0u8..5).prop_map(
        |(key, pick, stray)| {
            let accepted: &[&str] = match key {
                "mode" => &["min", "max"],
                "compression" => &["gzip", "zstd", "estargz", "uncompressed"],
                "compression-level" => &["0", "3", "9"],
                _ => &["true", "false", "1", "0", "T", "False"],
            };
            // Now and then a word another key takes, or none takes.
            let value = if stray == 0 {
                *pick.get(WORDS)
            } else {
                *pick.get(accepted)
            };
            format!("{key}={value}")
        },
    );
    (location, prop::collection::vec(export, 0..5), any::<bool>()).prop_map(
        |(location, export, quote_all)| {
            location
                .into_iter()
                .chain(export)
                .map(|f| written(f, if quote_all { 0 } else { 3 }))
                .collect::<Vec<_>>()
                .join(",")
        },
    )
}

fn spec_text() -> impl Strategy<Value = String> {
    let fields =
        (prop::collection::vec(field(), 0..7), any::<bool>()).prop_map(|(fields, newline)| {
            let mut text = fields.join(",");
            if newline {
                text.push('\n');
            }
            text
        });
    prop_oneof![
        4 => plausible(),
        4 => fields,
        1 => "\\PC{0,40}",
    ]
}

/// Both flags: no panic; a parsed spec prints as a value that parses back to
/// an equal spec; a refusal carries the flag and the value as given.
#[test]
fn specs_parse_without_panicking_and_print_back_to_themselves() {
    check(
        "specs_parse_without_panicking_and_print_back_to_themselves",
        2000,
        spec_text(),
        |text| {
            // Each command's defaults: a spec shown under one parses back
            // to the same spec under the same.
            for defaults in ExportDefaults::ALL {
                match parse_cache_to(&text, defaults) {
                    Ok(specs) => {
                        for spec in specs {
                            let shown = spec.to_string();
                            prop_assert_eq!(
                                parse_cache_to(&shown, defaults),
                                Ok(vec![spec.clone()]),
                                "{}",
                                shown
                            );
                            let _ = (spec.target.location(), spec.plan_json());
                        }
                    }
                    Err(e) => {
                        prop_assert_eq!((e.flag(), e.value()), (Flag::CacheTo, text.as_str()));
                        prop_assert!(e.to_string().starts_with("invalid --cache-to "));
                    }
                }
            }
            match parse_cache_from(&text) {
                Ok(specs) => {
                    for spec in specs {
                        let shown = spec.to_string();
                        prop_assert_eq!(
                            parse_cache_from(&shown),
                            Ok(vec![spec.clone()]),
                            "{}",
                            shown
                        );
                        let _ = (spec.location(), spec.plan_json());
                    }
                }
                Err(e) => {
                    prop_assert_eq!((e.flag(), e.value()), (Flag::CacheFrom, text.as_str()));
                    prop_assert!(e.to_string().starts_with("invalid --cache-from "));
                }
            }
            Ok(())
        },
    );
}
