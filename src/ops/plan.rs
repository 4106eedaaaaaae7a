//! `--dry-run`: the plan a command would carry out, with every parameter at
//! its effective value, and nothing touched. The JSON form is documented in
//! docs/dry-run.md.

use serde_json::{Value, json};

use crate::spec::{CacheFrom, CacheTo};

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
            "cache_to": self.cache_to.iter().map(CacheTo::plan_json).collect::<Vec<_>>(),
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
            // The line leaves an unset level out, so that it parses back
            // to the same spec; the level the codec will use is said here.
            let params = &spec.params;
            if let (None, Some(level)) = (params.compression_level, params.effective_level()) {
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
        // copy takes no PATH: it copies whole caches.
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
