//! The SPEC help text and the docs/spec.md table, written from the key
//! table so that neither can list a key the parser does not take, or miss
//! one it does.

use std::sync::LazyLock;

use super::keys::{KEYS, Key, Scope, Values};

/// Width the help text is wrapped to: clap's own when it cannot ask the
/// terminal, so that clap leaves these lines alone.
const WIDTH: usize = 100;
const INDENT: &str = "          ";

const INTRO: &str = "SPEC is written exactly as for `docker buildx build --cache-to/--cache-from`: \
comma-separated key=value fields (CSV quoting: \"dest=a,b\"), or a bare list of registry refs \
(user/app:cache,ghcr.io/org/app:cache). Keys are case-insensitive, values are not; fields are \
not trimmed.";

const DEFAULTS: &str = "Defaults are BuildKit's, except that save and run write compression=zstd \
unless compression= is given (only regcache reads their layers, and zstd is faster), and that \
copy keeps the source's mode, media types, form and compression for each key its --cache-to \
leaves out, so that a bare --cache-to is a byte-exact copy.";

const PATTERNS: &str = "A --cache-from tag may end in * (ghcr.io/org/app:cache-main-*, \
type=local,src=DIR,tag=cache-*): the newest cache whose tag starts with what precedes the * is \
used (a restore key); --cache-to takes no pattern.";

static HELP: LazyLock<String> = LazyLock::new(render_help);

/// The SPEC section of `--help` for every command that takes a spec.
pub fn help() -> &'static str {
    HELP.as_str()
}

/// Which specs take `key`, in words: `type=local, --cache-to`.
fn applies(key: &Key) -> String {
    match key.scope {
        Scope::Type => "every keyed spec".to_string(),
        Scope::Export => "--cache-to (ignored on --cache-from)".to_string(),
        Scope::Location { kinds, flags } => {
            let types: Vec<String> = kinds
                .iter()
                .map(|kind| format!("type={}", kind.name()))
                .collect();
            let flags: Vec<&str> = flags.iter().map(|flag| flag.as_str()).collect();
            if flags.len() == 2 {
                types.join(", ")
            } else {
                format!("{}, {}", types.join(", "), flags.join(", "))
            }
        }
    }
}

/// The default as the help and docs state it, or that there is none.
fn default(key: &Key) -> String {
    match (key.default, key.regcache_default) {
        (None, _) if key.name == super::keys::DIGEST => "optional".to_string(),
        (None, _) => "required".to_string(),
        (Some(buildkit), None) => format!("default: {buildkit}"),
        (Some(buildkit), Some(regcache)) => {
            format!("default: {buildkit}; save and run: {regcache}")
        }
    }
}

fn render_help() -> String {
    let mut out = String::new();
    push_wrapped(&mut out, "", INTRO);
    out.push('\n');
    let sections = [
        ("Keys of the location:", false),
        (
            "Keys of an export (--cache-to; accepted and ignored on --cache-from):",
            true,
        ),
    ];
    for (title, export) in sections {
        out.push_str(title);
        out.push('\n');
        for key in KEYS.iter().filter(|key| key.is_export() == export) {
            let place = match key.scope {
                Scope::Export => String::new(),
                _ => format!("{}; ", applies(key)),
            };
            out.push_str(&format!(
                "  {}={}  ({place}{})\n",
                key.name,
                key.placeholder,
                default(key)
            ));
            push_wrapped(&mut out, INDENT, key.about);
        }
        out.push('\n');
    }
    push_wrapped(
        &mut out,
        "",
        &format!(
            "BOOL is what Go's strconv.ParseBool takes: {}.",
            Values::Bool.accepted()
        ),
    );
    out.push('\n');
    push_wrapped(&mut out, "", DEFAULTS);
    out.push('\n');
    push_wrapped(&mut out, "", PATTERNS);
    out.truncate(out.trim_end().len());
    out
}

/// `text` word-wrapped to [`WIDTH`], every line starting with `indent`.
fn push_wrapped(out: &mut String, indent: &str, text: &str) {
    let mut line = String::from(indent);
    for word in text.split_whitespace() {
        if line.len() > indent.len() && line.chars().count() + 1 + word.chars().count() > WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

/// The table of docs/spec.md, one row per key.
pub fn markdown_table() -> String {
    let mut out =
        String::from("| key | values | taken by | default | meaning |\n|---|---|---|---|---|\n");
    for key in KEYS {
        let values = match key.values {
            Values::OneOf(words) => words
                .iter()
                .map(|w| format!("`{w}`"))
                .collect::<Vec<_>>()
                .join(", "),
            Values::Bool => "BOOL".to_string(),
            Values::Text(shape) => shape.replace('|', "\\|"),
        };
        let cell = |text: String| text.replace('|', "\\|");
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            key.name,
            values,
            cell(applies(key)),
            cell(default(key).replace("default: ", "")),
            cell(key.about.split_whitespace().collect::<Vec<_>>().join(" ")),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Flag;
    use crate::spec::keys::Kind;

    /// Every key the parser takes on some spec is in the help, and no
    /// other `key=` is (the drift that let registry.insecure go unlisted).
    #[test]
    fn the_help_lists_every_key_the_parser_takes() {
        let text = help();
        for flag in [Flag::CacheTo, Flag::CacheFrom] {
            for kind in Kind::ALL {
                for key in kind.accepted_keys(flag) {
                    assert!(text.contains(&format!("\n  {key}=")), "{key} missing");
                }
            }
        }
        assert!(text.contains("\n  type=registry|local"), "{text}");
        assert!(text.contains("registry.insecure=BOOL"), "{text}");
        let listed = text
            .lines()
            .filter(|l| l.starts_with("  ") && !l.starts_with("   "));
        assert_eq!(listed.count(), KEYS.len(), "{text}");
    }

    #[test]
    fn the_help_fits_clap_s_width() {
        for line in help().lines() {
            assert!(line.chars().count() <= WIDTH, "{line:?}");
        }
    }

    #[test]
    fn the_markdown_table_has_a_row_per_key() {
        let table = markdown_table();
        for key in KEYS {
            assert!(table.contains(&format!("| `{}` |", key.name)), "{table}");
        }
        assert_eq!(table.lines().count(), KEYS.len() + 2);
    }
}
