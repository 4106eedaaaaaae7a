//! The command line, defined once: it drives parsing, `--help`, the man
//! pages ([`man`]) and the shell completions ([`completions`]), so that
//! none of them can tell a different story.

pub mod completions;
pub mod examples;
pub mod man;
pub mod progress_mode;

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::spec::help::help as spec_help;
use examples::after_help;

/// The heading of the options every command takes: `--help`, the man
/// pages' GLOBAL OPTIONS section and the completions all read it.
const GLOBAL: &str = "Global options";

/// What `inspect` takes: one cache, in any form --cache-from accepts.
const INSPECT_SPECS: &str = "\
SPEC is one cache, written as for --cache-from:\n\
\x20 ghcr.io/org/app:cache             a registry ref (no tag: latest)\n\
\x20 ghcr.io/org/app@sha256:DIGEST     a manifest by digest\n\
\x20 'ghcr.io/org/app:cache-main-*'    the newest tag starting with cache-main-\n\
\x20 type=registry,ref=REF             a registry ref, as key=value fields\n\
\x20 type=local,src=DIR                an OCI layout directory, tag latest\n\
\x20 type=local,src=DIR,tag=TAG        its manifest tagged TAG\n\
\x20 'type=local,src=DIR,tag=cache-*'  its newest tag starting with cache-\n\
\x20 type=local,src=DIR,digest=DIGEST  its manifest with that digest\n\
type=registry also takes registry.insecure=true: plain HTTP or an unverified \
certificate, as --insecure-registry. A list of several refs is refused: inspect reads one \
cache.";

// Examples: shell lines, each at most 76 characters so that `--help`
// never wraps one on an 80-column terminal; `#` lines say what the next
// command does (see `examples`).

const TOP_EXAMPLES: &str = "\
# Save target/, restore it elsewhere, or both around a build
regcache save --cache-to type=local,dest=/tmp/cache target
regcache restore --cache-from type=local,src=/tmp/cache
regcache run --cache-from type=local,src=/tmp/cache \\
  --cache-to type=local,dest=/tmp/cache --path target -- cargo build
# Look at a cache, list a repository's caches
regcache inspect type=local,src=/tmp/cache
regcache ls ghcr.io/org/app";

const SAVE_EXAMPLES: &str = "\
# Save target/ into a local OCI-layout directory
regcache save --cache-to type=local,dest=/tmp/cache target
# Save to a registry, sending only what differs from main's cache
regcache save --cache-from ghcr.io/org/app:cache-main \\
  --cache-to ghcr.io/org/app:cache-pr-42 target node_modules
# Print the plan, every spec at its effective values, and save nothing
regcache save --dry-run \\
  --cache-to type=registry,ref=ghcr.io/org/app:cache,mode=max target";

const RESTORE_EXAMPLES: &str = "\
# Restore every path the cache holds
regcache restore --cache-from type=local,src=/tmp/cache
# Only target/: this branch's cache first, else main's
regcache restore --cache-from ghcr.io/org/app:cache-pr-42 \\
  --cache-from ghcr.io/org/app:cache-main target
# The newest cache tagged cache-main-…, failing when there is none
regcache restore --fail-on-miss --cache-from 'ghcr.io/org/app:cache-main-*'";

const COPY_EXAMPLES: &str = "\
# Copy a cache from one registry to another
regcache copy --cache-from ghcr.io/org/app:cache \\
  --cache-to registry.example.com/app:cache
# Merge two caches into a local directory BuildKit can read
regcache copy --cache-from ghcr.io/org/app:cache-main \\
  --cache-from ghcr.io/org/app:cache-pr-42 \\
  --cache-to type=local,dest=/tmp/merged
# Slim a cache to mode=min
regcache copy --cache-from ghcr.io/org/app:cache \\
  --cache-to type=registry,ref=ghcr.io/org/app:cache-slim,mode=min";

const RUN_EXAMPLES: &str = "\
# Restore target/, build, and save target/ only if the build succeeded
regcache run --cache-from type=local,src=/tmp/cache \\
  --cache-to type=local,dest=/tmp/cache --path target -- cargo build
# In CI: this branch's cache, else main's; save to this branch's tag
regcache run --cache-from ghcr.io/org/app:cache-pr-42 \\
  --cache-from ghcr.io/org/app:cache-main \\
  --cache-to ghcr.io/org/app:cache-pr-42 --path node_modules -- npm ci";

const INSPECT_EXAMPLES: &str = "\
# The cache tagged latest in a local directory
regcache inspect type=local,src=/tmp/cache
# A registry cache, as one JSON object
regcache inspect --json ghcr.io/org/app:cache";

const PRUNE_EXAMPLES: &str = "\
# See what keeping the newest 5 cache-* tags would delete
regcache prune --dry-run --tag 'cache-*' --keep 5 ghcr.io/org/app
# Delete pull-request caches older than a week
regcache prune --tag 'cache-pr-*' --older-than 7d ghcr.io/org/app
# Keep the newest 3 caches of a local directory, and always main
regcache prune --keep 3 --exclude main type=local,dest=/cache/app
# Remove only the blobs no tag of a local directory references
regcache prune --blobs-only type=local,dest=/cache/app";

const LS_EXAMPLES: &str = "\
# A registry repository's caches, newest first
regcache ls ghcr.io/org/app
# A local cache directory's, as one JSON object
regcache ls --json type=local,src=/cache/app";

const COMPLETIONS_EXAMPLES: &str = "\
# bash
regcache completions bash \\
  > ~/.local/share/bash-completion/completions/regcache
# zsh (a directory on $fpath: fpath+=~/.zfunc in ~/.zshrc)
regcache completions zsh > ~/.zfunc/_regcache
# fish
regcache completions fish > ~/.config/fish/completions/regcache.fish";

/// The last paragraph of `regcache --help`: where the exit statuses are.
/// The man page has them in its EXIT STATUS section and leaves this out
/// (see `man::render`).
macro_rules! exit_status_pointer {
    () => {
        "Exit statuses: see EXIT STATUS in `man regcache` (docs/man/regcache.1)."
    };
}

/// [`exit_status_pointer`]'s text, for the man page to leave out.
pub const EXIT_STATUS_POINTER: &str = exit_status_pointer!();

const LONG_ABOUT: &str = concat!(
    "regcache keeps directories (cargo target/, node_modules/, ccache…) in a \
BuildKit cache image — in an OCI registry or a local OCI-layout directory — using \
exactly the --cache-to/--cache-from syntax of docker buildx.\n\n",
    exit_status_pointer!()
);

#[derive(Debug, Parser)]
#[command(
    name = "regcache",
    version,
    about = "buildx-style --cache-to/--cache-from for any directory, and a toolbox for BuildKit caches",
    long_about = LONG_ABOUT,
    after_help = after_help(
        "A --cache-from tag may end in * (ghcr.io/org/app:cache-main-*): the newest cache whose \
tag starts with what precedes it is used, as actions/cache's restore-keys.",
        TOP_EXAMPLES,
    ),
    subcommand_value_name = "COMMAND",
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true, help_heading = GLOBAL)]
    pub verbose: u8,

    /// Only warnings and errors: no progress, no summary (= --progress quiet).
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = GLOBAL
    )]
    pub quiet: bool,

    /// How to show progress on stderr, as buildx: auto (tty when stderr is a terminal,
    /// else plain), tty (bars per blob and overall), plain (a line per blob, no escape
    /// codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS
    /// picks the mode, as in buildx (its rawjson is taken as plain); else auto.
    #[arg(long, global = true, value_name = "MODE", value_enum, help_heading = GLOBAL)]
    pub progress: Option<ProgressMode>,

    /// Write a JSON summary of what was restored, run and saved to FILE (see
    /// docs/metadata.md), as `docker buildx build --metadata-file` does.
    #[arg(long, global = true, value_name = "FILE", help_heading = GLOBAL)]
    pub metadata_file: Option<PathBuf>,

    /// Talk plain HTTP to this registry (repeatable), as dockerd's --insecure-registry.
    /// Loopback registries (localhost, 127.0.0.0/8, ::1) never need it.
    #[arg(long = "insecure-registry", global = true, value_name = "HOST[:PORT]",
          value_parser = parse_registry_host, help_heading = GLOBAL)]
    pub insecure_registries: Vec<String>,

    /// How many layers to compress, and blobs to send, at once [default: the number of CPUs].
    #[arg(long, global = true, value_name = "N", env = "REGCACHE_JOBS",
          value_parser = clap::value_parser!(u16).range(1..), help_heading = GLOBAL)]
    pub jobs: Option<u16>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Save directories and files to every --cache-to.
    #[command(
        long_about = "Save directories and files to every --cache-to.\n\n\
Each PATH, a directory or a regular file, is one entry, stored under the name it was given: relative paths relative \
to the working directory, absolute paths as absolute. A PATH that does not exist is \
a warning and is skipped; with nothing to save, save warns and exits 0 without \
touching any target. Layers are compressed once per distinct compression and written \
to every target. The same tree with the same parameters gives the same layer digests, \
so saving an unchanged tree writes no layer.\n\n\
Layers are zstd-compressed unless the spec sets compression= (compression=gzip for \
gzip): only regcache reads them, and zstd saves about 2.2× and restores about 1.3× \
faster than gzip. Every other default is BuildKit's.\n\n\
Saves are incremental. The base is the cache --cache-from names, else what the \
first --cache-to holds now; each entry's file list (type, size, mode, mtime, content \
digest) is compared with the tree's stat data, and only files whose size or mtime \
differ are read. mode=min reuses every unchanged part by digest (parts are cut by \
path, so a change touches one part); mode=max adds one delta layer (changed files and \
whiteouts) on the base's chain, squashed after 8 deltas or when they outweigh half \
the base. An unchanged tree reads no file content and writes only the cache config \
and manifest.",
        after_help = after_help(spec_help(), SAVE_EXAMPLES)
    )]
    Save(SaveArgs),

    /// Restore directories and files from the first --cache-from that holds each.
    #[command(
        long_about = "Restore directories and files from the first --cache-from, in the order given, \
that holds each (branch first, then main).\n\n\
With no PATH, every path the caches hold is restored, except those outside the \
working and home directories, which must be named. A --cache-from that does not exist \
is a one-line warning. Restored files keep their bytes, modes, symlinks, hard links, \
empty directories and nanosecond mtimes; existing files are overwritten, and nothing \
is deleted except what the cache's own whiteouts name. Every blob is checked against \
its digest before any of its content reaches the target.\n\n\
Each path's directory is reached from the working directory, $HOME, or the PATH as \
named, without following a symlink on the way: a cache may have planted one. A path \
that is itself a symlink on disk is refused unless --allow-root-symlink is given.",
        after_help = after_help(spec_help(), RESTORE_EXAMPLES)
    )]
    Restore(RestoreArgs),

    /// Copy, merge, convert, recompress or slim BuildKit caches.
    #[command(
        long_about = "Copy, merge, convert, recompress or slim BuildKit caches, without BuildKit.\n\n\
Reads every --cache-from (written by `docker buildx build --cache-to` or by regcache), \
merges them (the union of layers and records, deduplicated by digest) and writes the \
result to every --cache-to with that spec's parameters. A key the spec leaves out keeps \
the source's value (mode, oci-mediatypes, image-manifest, compression, compression-level), \
so a bare --cache-to is a byte-exact copy; sources that differ give the richer value (max \
over min, OCI over Docker, an image manifest over an index), named on stderr; --dry-run \
shows such keys \"as the source\". image-manifest and \
oci-mediatypes pick the form (OCI manifest, OCI index, Docker manifest list); mode=min \
keeps results only on the final steps' layer chains and drops the layers nothing needs \
(mode=max keeps everything). Layers keep their compression unless force-compression=true \
is set, as in BuildKit, where compression= only applies to newly created layers and a \
copy creates none: with it, every layer is recompressed to the requested codec and \
level (the diffID stays, the blob digest changes). Blobs the target has are skipped, blobs in \
another repository of the same registry are mounted, the rest stream through a \
verified spool file. A missing --cache-from is a warning; when none can be read, \
nothing is written (exit 0, or 1 with --fail-on-miss).",
        after_help = after_help(spec_help(), COPY_EXAMPLES)
    )]
    Copy(CopyArgs),

    /// Restore, run a command, and save only if it succeeded.
    #[command(
        long_about = "Restore the --path directories, run COMMAND, and save the directories \
to every --cache-to only if COMMAND exited 0. As with save, layers are \
zstd-compressed unless the spec sets compression=.\n\n\
The restore is as tolerant as `restore`: a missing --cache-from is a warning, and here \
even a cache that fails to restore (a corrupt blob) is only a warning, so the command \
still runs and its save replaces the broken cache. Without --cache-from nothing is \
restored; without --cache-to nothing is saved.\n\n\
COMMAND inherits stdin, stdout, stderr, the environment and the working directory. \
regcache exits with its status (128+N when it is killed by signal N, as shells \
report it; 127 when it is not found, 126 when it cannot be executed), or with 1 when \
it succeeded but an export failed without ignore-error=true. While COMMAND runs, \
regcache passes SIGTERM and SIGHUP on to it, and SIGINT and SIGQUIT too unless they \
come from the terminal, which sends them to COMMAND itself.",
        after_help = after_help(spec_help(), RUN_EXAMPLES)
    )]
    Run(RunArgs),

    /// Show what a cache holds: form, layers, records, entries.
    #[command(
        long_about = "Show what a cache holds: its form (image manifest, OCI index, Docker \
manifest list), its layers, records and size, and for a cache regcache wrote, the paths it \
holds. The cache is only read; one that cannot be read is an error (exit 1), not the \
warning it is in restore. --json prints one object instead of tables.",
        after_help = after_help(INSPECT_SPECS, INSPECT_EXAMPLES)
    )]
    Inspect(InspectArgs),

    /// Delete old cache tags from a registry repository or a local cache directory.
    #[command(
        long_about = "Delete old cache tags from a registry repository, or from a local cache \
directory together with the blobs no remaining tag references.\n\n\
The tags matching --tag (every tag by default, minus --exclude) are read as cache images. \
A cache's age is its own creation time: the newest createdAt of its config's results, else \
the newest buildkit/createdat layer annotation. The newest --keep N stay, and so do those \
younger than --older-than; with both, a cache goes only when neither keeps it. A tag that is \
not a cache, that cannot be read, or whose cache records no creation time is never deleted.\n\n\
In a registry a manifest is deleted by digest (DELETE /v2/NAME/manifests/DIGEST), which \
removes every tag pointing at it: a manifest that a kept or unmatched tag also points at \
stays. The registry must allow deletes (Distribution: storage.delete.enabled) and frees the \
blobs when its garbage collection runs. In a local directory the index.json entries go under \
the exporter's lock, then every blob no remaining manifest references, as buildx's \
reset=true does; --blobs-only does only the latter. Blobs are removed only once saves in \
flight to the same directory have written their index.\n\n\
The table goes to stdout, the summary to stderr; --json prints one object instead \
(docs/prune.md), and --metadata-file writes the same object.",
        after_help = after_help(
            "TARGET: a repository (ghcr.io/org/app, type=registry,ref=ghcr.io/org/app) or a \
local directory (type=local,dest=DIR or type=local,src=DIR), without a tag.",
            PRUNE_EXAMPLES,
        )
    )]
    Prune(PruneArgs),

    /// List the caches a registry repository or local cache directory holds, newest first.
    #[command(
        long_about = "List every tag of a registry repository or local cache directory, newest \
first: when each cache was made (its own createdAt, as prune reads it) and how long ago, its \
total size (each blob once), its form (image-manifest, oci-index, docker-manifest-list), its \
mode (min or max), whether regcache or BuildKit wrote it, and for regcache caches the paths \
it holds. Tags that are not caches (an ordinary image) or cannot be read are listed as such.\n\n\
The table goes to stdout, a summary to stderr; --json prints one object instead (docs/ls.md), \
and --metadata-file writes the same object.",
        after_help = after_help(
            "REPO: a repository (ghcr.io/org/app, type=registry,ref=ghcr.io/org/app) or a \
local directory (type=local,src=DIR or type=local,dest=DIR), without a tag.",
            LS_EXAMPLES,
        )
    )]
    Ls(LsArgs),

    /// Print the shell completion script for SHELL to stdout.
    #[command(
        long_about = "Print the shell completion script for SHELL to stdout, generated from this \
very command line, so it always matches the installed regcache. Write it where your shell \
loads completions from (see the examples), or load it in your shell's startup file.",
        after_help = after_help("", COMPLETIONS_EXAMPLES)
    )]
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for.
    #[arg(value_name = "SHELL", value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Where to save (repeatable).
    #[arg(long = "cache-to", value_name = "SPEC", required = true)]
    pub cache_to: Vec<String>,

    /// The base to compare with (repeatable, first holding a path wins):
    /// parts it holds unchanged are reused, not read, packed or sent again.
    /// Without it, the base is what the first --cache-to holds now.
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,

    /// Print the plan, every spec at its effective parameters, and touch nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run: print the plan as one JSON object (see docs/dry-run.md).
    #[arg(long, requires = "dry_run")]
    pub json: bool,

    /// Directories to save.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The caches to read and merge (repeatable).
    #[arg(long = "cache-from", value_name = "SPEC", required = true)]
    pub cache_from: Vec<String>,

    /// Where to write the result, each with its own parameters (repeatable).
    #[arg(long = "cache-to", value_name = "SPEC", required = true)]
    pub cache_to: Vec<String>,

    /// Exit 1 when no --cache-from could be read.
    #[arg(long)]
    pub fail_on_miss: bool,

    /// Print the plan, every spec at its effective parameters, and touch nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run: print the plan as one JSON object (see docs/dry-run.md).
    #[arg(long, requires = "dry_run")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Where to look, in order of preference (repeatable).
    #[arg(long = "cache-from", value_name = "SPEC", required = true)]
    pub cache_from: Vec<String>,

    /// Exit 1 when no path at all could be restored.
    #[arg(long)]
    pub fail_on_miss: bool,

    /// Restore into an entry root that is a symlink on disk (such as a
    /// target/ kept on a faster disk), writing where it points. Refused by
    /// default, since a hostile cache can plant such a link; never followed
    /// for a root inside another entry, nor anywhere on the way to a root.
    #[arg(long)]
    pub allow_root_symlink: bool,

    /// Print the plan, every spec at its effective parameters, and touch nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run: print the plan as one JSON object (see docs/dry-run.md).
    #[arg(long, requires = "dry_run")]
    pub json: bool,

    /// Paths to restore [default: every path the caches hold].
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where to restore from, in order of preference (repeatable).
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,

    /// Where to save after a successful command (repeatable).
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,

    /// A directory or file to restore before and save after the command (repeatable).
    #[arg(long = "path", value_name = "PATH", required = true)]
    pub paths: Vec<String>,

    /// Exit 1 without running the command when no path at all could be restored.
    #[arg(long)]
    pub fail_on_miss: bool,

    /// Restore into an entry root that is a symlink on disk (such as a
    /// target/ kept on a faster disk), writing where it points. Refused by
    /// default, since a hostile cache can plant such a link; never followed
    /// for a root inside another entry, nor anywhere on the way to a root.
    #[arg(long)]
    pub allow_root_symlink: bool,

    /// Print the plan, every spec at its effective parameters, and touch nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run: print the plan as one JSON object (see docs/dry-run.md).
    #[arg(long, requires = "dry_run")]
    pub json: bool,

    /// The command to run, after `--`.
    #[arg(value_name = "COMMAND", required = true, last = true, num_args = 1..)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,

    /// The cache to inspect, as a --cache-from spec.
    #[arg(value_name = "SPEC")]
    pub spec: String,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Keep the newest N matching caches (by their own creation time).
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,

    /// Delete only caches created more than DURATION ago: 7d, 36h, 90m, 1h30m, 2weeks.
    #[arg(long, value_name = "DURATION", value_parser = parse_age)]
    pub older_than: Option<AgeLimit>,

    /// Only tags matching PATTERN, a glob (`*`, `?`) over the whole tag (repeatable)
    /// [default: every tag].
    #[arg(long = "tag", value_name = "PATTERN")]
    pub tags: Vec<String>,

    /// Never touch tags matching PATTERN, even when --tag matches them (repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,

    /// Local directories only: remove the blobs no tag references, and no tag.
    #[arg(long, conflicts_with_all = ["keep", "older_than", "tags", "exclude"])]
    pub blobs_only: bool,

    /// List what would be deleted, and delete nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the report as one JSON object instead of the table (see docs/prune.md).
    #[arg(long)]
    pub json: bool,

    /// The repository or directory to prune, without a tag.
    #[arg(value_name = "TARGET")]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Print one JSON object instead of the table (see docs/ls.md).
    #[arg(long)]
    pub json: bool,

    /// The repository or directory to list, without a tag.
    #[arg(value_name = "REPO")]
    pub repo: String,
}

/// `--older-than`: the duration, and how it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgeLimit {
    pub duration: std::time::Duration,
    pub text: String,
}

fn parse_age(value: &str) -> Result<AgeLimit, String> {
    let text = value.trim();
    let duration = humantime::parse_duration(text)
        .map_err(|err| format!("{err}; write a duration such as 7d, 36h, 90m or 1h30m"))?;
    Ok(AgeLimit {
        duration,
        text: text.to_string(),
    })
}

/// `--progress`, as buildx spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    Auto,
    Tty,
    Plain,
    Quiet,
}

/// A registry as `--insecure-registry` takes it: a host, optionally with a
/// port, and nothing else. A URL is refused rather than half-matched.
fn parse_registry_host(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("give a registry host such as registry.local:5000".into());
    }
    if value.contains("://") {
        return Err(format!(
            "{value:?} is a URL; give the host and port only, e.g. registry.local:5000"
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| c.is_whitespace() || *c == '/' || *c == '@')
    {
        return Err(format!(
            "{value:?} contains {bad:?}; give the host and port only, e.g. registry.local:5000"
        ));
    }
    // The port, if any, follows the last ':' outside an IPv6 literal.
    let port = match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && (!host.contains(':') || host.ends_with(']')) => {
            Some(port)
        }
        _ => None,
    };
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(format!(
            "{value:?}: the port {port:?} is not a number from 0 to 65535"
        ));
    }
    Ok(value.to_string())
}

/// The clap command, for generating completions and the man page.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
