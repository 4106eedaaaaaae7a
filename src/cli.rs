//! The command line, defined once: it drives parsing, `--help`, the man
//! page and the shell completions (see tests/generated_files.rs).

use clap::{ArgAction, Args, Parser, Subcommand};

const SPEC_HELP: &str = "\
SPEC is written exactly as for `docker buildx build --cache-to/--cache-from`: \
comma-separated key=value fields (CSV quoting: \"dest=a,b\"), or a bare list \
of registry refs. Types: registry (ref=…) and local (dest=… for --cache-to, \
src=… for --cache-from; tag=…, default latest; digest=… on import). \
Export keys: mode=min|max, oci-mediatypes=BOOL, image-manifest=BOOL, \
compression=gzip|zstd|uncompressed (estargz parses but is not written yet), \
compression-level=N, force-compression=BOOL, ignore-error=BOOL.";

#[derive(Debug, Parser)]
#[command(
    name = "regcache",
    version,
    about = "buildx-style --cache-to/--cache-from for any directory, and a toolbox for BuildKit caches",
    long_about = "regcache keeps directories (cargo target/, node_modules/, ccache…) in a \
BuildKit cache image — in an OCI registry or a local OCI-layout directory — using \
exactly the --cache-to/--cache-from syntax of docker buildx.\n\n\
Exit status: 0 on success (a missing --cache-from is only a warning), 1 when an \
export or a restore fails, 2 for a bad spec or flag (reported before any I/O).",
    after_help = "Examples:\n  \
regcache save --cache-to type=local,dest=/tmp/cache target\n  \
regcache restore --cache-from type=local,src=/tmp/cache\n  \
regcache inspect type=local,src=/tmp/cache"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Only warnings and errors; no summary.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// How many layers to compress at once [default: the number of CPUs].
    #[arg(long, global = true, value_name = "N", env = "REGCACHE_JOBS",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Save directories to every --cache-to.
    #[command(
        long_about = "Save directories to every --cache-to.\n\n\
Each PATH is one entry, stored under the name it was given: relative paths relative \
to the working directory, absolute paths as absolute. A PATH that does not exist is \
a warning and is skipped; with nothing to save, save warns and exits 0 without \
touching any target. Layers are compressed once per distinct compression and written \
to every target. The same tree with the same parameters gives the same layer digests, \
so saving an unchanged tree writes no layer.\n\n\
mode=max is accepted and recorded in the cache, but stores the same as mode=min \
until incremental saves land.",
        after_help = SPEC_HELP
    )]
    Save(SaveArgs),

    /// Restore directories from the first --cache-from that holds each.
    #[command(
        long_about = "Restore directories from the first --cache-from, in the order given, \
that holds each (branch first, then main).\n\n\
With no PATH, every path the caches hold is restored, except those outside the \
working and home directories, which must be named. A --cache-from that does not exist \
is a one-line warning. Restored files keep their bytes, modes, symlinks, hard links, \
empty directories and nanosecond mtimes; existing files are overwritten, and nothing \
is deleted except what the cache's own whiteouts name. Every blob is checked against \
its digest before any of its content reaches the target.",
        after_help = SPEC_HELP
    )]
    Restore(RestoreArgs),

    /// Show what a cache holds: form, layers, records, entries.
    #[command(after_help = SPEC_HELP)]
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Where to save (repeatable).
    #[arg(long = "cache-to", value_name = "SPEC", required = true)]
    pub cache_to: Vec<String>,

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
pub struct RestoreArgs {
    /// Where to look, in order of preference (repeatable).
    #[arg(long = "cache-from", value_name = "SPEC", required = true)]
    pub cache_from: Vec<String>,

    /// Exit 1 when no path at all could be restored.
    #[arg(long)]
    pub fail_on_miss: bool,

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
pub struct InspectArgs {
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,

    /// The cache to inspect, as a --cache-from spec.
    #[arg(value_name = "SPEC")]
    pub spec: String,
}

/// The clap command, for generating completions and the man page.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
