//! `--dry-run`: the plan a command would carry out, with every parameter at
//! its effective value, and nothing touched. The JSON form is documented in
//! docs/dry-run.md.

use serde_json::{Value, json};

use crate::spec::{CacheFrom, CacheTo};

/// What the plan says for a key a copy takes from its source, whose value
/// is only known once the source is read.
pub const AS_THE_SOURCE: &str = "as the source";

pub struct Plan<'a> {
    pub command: &'a str,
    pub cache_to: &'a [CacheTo],
    pub cache_from: &'a [CacheFrom],
    pub paths: &'a [String],
    /// `run` only: the command it would run.
    pub argv: Option<&'a [String]>,
}

impl Plan<'_> {
    pub fn to_json(&self) -> Value {
        let mut plan = json!({
            "command": self.command,
            "cache_to": self.cache_to.iter().map(cache_to_json).collect::<Vec<_>>(),
            "cache_from": self.cache_from.iter().map(CacheFrom::plan_json).collect::<Vec<_>>(),
            "paths": self.paths,
        });
        if let Some(argv) = self.argv {
            plan["argv"] = json!(argv);
        }
        plan
    }

    pub fn render_human(&self) -> String {
        let mut out = format!("{} (dry run: nothing is read or written)\n", self.command);
        for spec in self.cache_from {
            out.push_str(&format!("  cache-from  {spec}\n"));
        }
        for spec in self.cache_to {
            out.push_str(&format!("  cache-to    {spec}\n"));
            // The spec line leaves these out; say what they will be.
            let params = &spec.params;
            let kept = params.from_source;
            if kept.any() {
                let mut keys = kept.names();
                if kept.compression && params.compression_level.is_none() {
                    keys.push("compression-level");
                }
                out.push_str(&format!(
                    "              {AS_THE_SOURCE}: {}\n",
                    keys.join(", ")
                ));
            }
            if let (false, None, Some(level)) = (
                kept.compression,
                params.compression_level,
                params.effective_level(),
            ) {
                // The line leaves an unset level out, so that it parses
                // back to the same spec; the level the codec will use is
                // said here.
                out.push_str(&format!(
                    "              compression-level {level}: {}'s default\n",
                    params.compression
                ));
            }
        }
        // Said once per set of defaults (one per command), since the spec
        // line cannot tell a default compression from a given one.
        let mut said = Vec::new();
        for defaults in self.cache_to.iter().map(|spec| spec.defaults) {
            if !said.contains(&defaults) {
                out.push_str(&format!("  defaults    {}\n", defaults.describe()));
                said.push(defaults);
            }
        }
        // copy works on whole caches: it has no paths to speak of.
        if self.paths.is_empty() && self.command != "copy" {
            out.push_str("  paths       (every path the cache holds)\n");
        }
        for path in self.paths {
            out.push_str(&format!("  path        {path}\n"));
        }
        if let Some(argv) = self.argv {
            out.push_str(&format!("  command     {}\n", shell_words(argv)));
        }
        out
    }
}

/// One `--cache-to` of the plan: its keys at their effective values, and
/// those a copy takes from its source marked as such.
fn cache_to_json(spec: &CacheTo) -> Value {
    let mut plan = spec.plan_json();
    let kept = spec.params.from_source;
    for (key, from_source) in [
        ("mode", kept.mode),
        ("oci_mediatypes", kept.oci_mediatypes),
        ("image_manifest", kept.image_manifest),
        ("compression", kept.compression),
        (
            "compression_level",
            kept.compression && spec.params.compression_level.is_none(),
        ),
    ] {
        if from_source {
            plan[key] = AS_THE_SOURCE.into();
        }
    }
    plan
}

/// `argv` as one line a shell would split back the same way, so the plan
/// shows exactly which words the command gets.
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|word| {
            let plain = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
