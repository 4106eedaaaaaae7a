
use builtin;
use str;

set edit:completion:arg-completer[regcache] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'regcache'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'regcache'= {
            cand --progress 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto'
            cand --metadata-file 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does'
            cand --insecure-registry 'Talk plain HTTP to this registry (repeatable), as dockerd''s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it'
            cand --jobs 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]'
            cand -v 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
            cand --verbose 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
            cand -q 'Only warnings and errors: no progress, no summary (= --progress quiet)'
            cand --quiet 'Only warnings and errors: no progress, no summary (= --progress quiet)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand save 'Save directories and files to every --cache-to'
            cand restore 'Restore directories and files from the first --cache-from that holds each'
            cand copy 'Copy, merge, convert, recompress or slim BuildKit caches'
            cand run 'Restore, run a command, and save only if it succeeded'
            cand inspect 'Show what a cache holds: form, layers, records, entries'
            cand prune 'Delete old cache tags from a registry repository or a local cache directory'
            cand ls 'List the caches a registry repository or local cache directory holds, newest first'
            cand completions 'Print the shell completion script for SHELL to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'regcache;save'= {
            cand --cache-to 'Where to save (repeatable)'
            cand --cache-from 'The base to compare with (repeatable, first holding a path wins): parts it holds unchanged are reused, not read, packed or sent again. Without it, the base is what the first --cache-to holds now'
            cand --progress 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto'
            cand --metadata-file 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does'
            cand --insecure-registry 'Talk plain HTTP to this registry (repeatable), as dockerd''s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it'
            cand --jobs 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]'
            cand --dry-run 'Print the plan, every spec at its effective parameters, and touch nothing'
            cand --json 'With --dry-run: print the plan as one JSON object (see docs/dry-run.md)'
            cand -v 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
            cand --verbose 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
            cand -q 'Only warnings and errors: no progress, no summary (= --progress quiet)'
            cand --quiet 'Only warnings and errors: no progress, no summary (= --progress quiet)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'regcache;restore'= {
            cand --cache-from 'Where to look, in order of preference (repeatable)'
            cand --progress 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto'
            cand --metadata-file 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does'
            cand --insecure-registry 'Talk plain HTTP to this registry (repeatable), as dockerd''s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it'
            cand --jobs 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]'
            cand --fail-on-miss 'Exit 1 when no path at all could be restored'
            cand --allow-root-symlink 'Restore into an entry root that is a symlink on disk (such as a target/ kept on a faster disk), writing where it points. Refused by default, since a hostile cache can plant such a link; never followed for a root inside another entry, nor anywhere on the way to a root'
            cand --dry-run 'Print the plan, every spec at its effective parameters, and touch nothing'
            cand --json 'With --dry-run: print the plan as one JSON object (see docs/dry-run.md)'
            cand -v 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
            cand --verbose 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
            cand -q 'Only warnings and errors: no progress, no summary (= --progress quiet)'
            cand --quiet 'Only warnings and errors: no progress, no summary (= --progress quiet)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'regcache;copy'= {
            cand --cache-from 'The caches to read and merge (repeatable)'
            cand --cache-to 'Where to write the result, each with its own parameters (repeatable)'
            cand --progress 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto'
            cand --metadata-file 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does'
            cand --insecure-registry 'Talk plain HTTP to this registry (repeatable), as dockerd''s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it'
            cand --jobs 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]'
            cand --fail-on-miss 'Exit 1 when no --cache-from could be read'
            cand --dry-run 'Print the plan, every spec at its effective parameters, and touch nothing'
            cand --json 'With --dry-run: print the plan as one JSON object (see docs/dry-run.md)'
            cand -v 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
            cand --verbose 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
            cand -q 'Only warnings and errors: no progress, no summary (= --progress quiet)'
            cand --quiet 'Only warnings and errors: no progress, no summary (= --progress quiet)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'regcache;run'= {
            cand --cache-from 'Where to restore from, in order of preference (repeatable)'
            cand --cache-to 'Where to save after a successful command (repeatable)'
            cand --path 'A directory or file to restore before and save after the command (repeatable)'
            cand --progress 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto'
            cand --metadata-file 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does'
            cand --insecure-registry 'Talk plain HTTP to this registry (repeatable), as dockerd''s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it'
            cand --jobs 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]'
            cand --fail-on-miss 'Exit 1 without running the command when no path at all could be restored'
            cand --allow-root-symlink 'Restore into an entry root that is a symlink on disk (such as a target/ kept on a faster disk), writing where it points. Refused by default, since a hostile cache can plant such a link; never followed for a root inside another entry, nor anywhere on the way to a root'
            cand --dry-run 'Print the plan, every spec at its effective parameters, and touch nothing'
            cand --json 'With --dry-run: print the plan as one JSON object (see docs/dry-run.md)'
            cand -v 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
            cand --verbose 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
            cand -q 'Only warnings and errors: no progress, no summary (= --progress quiet)'
            cand --quiet 'Only warnings and errors: no progress, no summary (= --progress quiet)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'regcache;inspect'= {
            cand --progress 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto'
            cand --metadata-file 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does'
            cand --insecure-registry 'Talk plain HTTP to this registry (repeatable), as dockerd''s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it'
            cand --jobs 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]'
            cand --json 'Print one JSON object instead of tables'
            cand -v 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
            cand --verbose 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
            cand -q 'Only warnings and errors: no progress, no summary (= --progress quiet)'
            cand --quiet 'Only warnings and errors: no progress, no summary (= --progress quiet)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'regcache;prune'= {
            cand --keep 'Keep the newest N matching caches (by their own creation time)'
            cand --older-than 'Delete only caches created more than DURATION ago: 7d, 36h, 90m, 1h30m, 2weeks'
            cand --tag 'Only tags matching PATTERN, a glob (`*`, `?`) over the whole tag (repeatable) [default: every tag]'
            cand --exclude 'Never touch tags matching PATTERN, even when --tag matches them (repeatable)'
            cand --progress 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto'
            cand --metadata-file 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does'
            cand --insecure-registry 'Talk plain HTTP to this registry (repeatable), as dockerd''s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it'
            cand --jobs 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]'
            cand --blobs-only 'Local directories only: remove the blobs no tag references, and no tag'
            cand --dry-run 'List what would be deleted, and delete nothing'
            cand --json 'Print the report as one JSON object instead of the table (see docs/prune.md)'
            cand -v 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
            cand --verbose 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
            cand -q 'Only warnings and errors: no progress, no summary (= --progress quiet)'
            cand --quiet 'Only warnings and errors: no progress, no summary (= --progress quiet)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'regcache;ls'= {
            cand --progress 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto'
            cand --metadata-file 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does'
            cand --insecure-registry 'Talk plain HTTP to this registry (repeatable), as dockerd''s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it'
            cand --jobs 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]'
            cand --json 'Print one JSON object instead of the table (see docs/ls.md)'
            cand -v 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
            cand --verbose 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
            cand -q 'Only warnings and errors: no progress, no summary (= --progress quiet)'
            cand --quiet 'Only warnings and errors: no progress, no summary (= --progress quiet)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'regcache;completions'= {
            cand --progress 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto'
            cand --metadata-file 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does'
            cand --insecure-registry 'Talk plain HTTP to this registry (repeatable), as dockerd''s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it'
            cand --jobs 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]'
            cand -v 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
            cand --verbose 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
            cand -q 'Only warnings and errors: no progress, no summary (= --progress quiet)'
            cand --quiet 'Only warnings and errors: no progress, no summary (= --progress quiet)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'regcache;help'= {
            cand save 'Save directories and files to every --cache-to'
            cand restore 'Restore directories and files from the first --cache-from that holds each'
            cand copy 'Copy, merge, convert, recompress or slim BuildKit caches'
            cand run 'Restore, run a command, and save only if it succeeded'
            cand inspect 'Show what a cache holds: form, layers, records, entries'
            cand prune 'Delete old cache tags from a registry repository or a local cache directory'
            cand ls 'List the caches a registry repository or local cache directory holds, newest first'
            cand completions 'Print the shell completion script for SHELL to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'regcache;help;save'= {
        }
        &'regcache;help;restore'= {
        }
        &'regcache;help;copy'= {
        }
        &'regcache;help;run'= {
        }
        &'regcache;help;inspect'= {
        }
        &'regcache;help;prune'= {
        }
        &'regcache;help;ls'= {
        }
        &'regcache;help;completions'= {
        }
        &'regcache;help;help'= {
        }
    ]
    $completions[$command]
}
