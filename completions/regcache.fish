# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_regcache_global_optspecs
    string join \n v/verbose q/quiet progress= metadata-file= insecure-registry= jobs= h/help V/version
end

function __fish_regcache_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_regcache_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_regcache_using_subcommand
    set -l cmd (__fish_regcache_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c regcache -n "__fish_regcache_needs_command" -l progress -d 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto' -r -f -a "auto\t''
tty\t''
plain\t''
quiet\t''"
complete -c regcache -n "__fish_regcache_needs_command" -l metadata-file -d 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does' -r -F
complete -c regcache -n "__fish_regcache_needs_command" -l insecure-registry -d 'Talk plain HTTP to this registry (repeatable), as dockerd\'s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it' -r
complete -c regcache -n "__fish_regcache_needs_command" -l jobs -d 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]' -r
complete -c regcache -n "__fish_regcache_needs_command" -s v -l verbose -d 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
complete -c regcache -n "__fish_regcache_needs_command" -s q -l quiet -d 'Only warnings and errors: no progress, no summary (= --progress quiet)'
complete -c regcache -n "__fish_regcache_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c regcache -n "__fish_regcache_needs_command" -s V -l version -d 'Print version'
complete -c regcache -n "__fish_regcache_needs_command" -f -a "save" -d 'Save directories and files to every --cache-to'
complete -c regcache -n "__fish_regcache_needs_command" -f -a "restore" -d 'Restore directories and files from the first --cache-from that holds each'
complete -c regcache -n "__fish_regcache_needs_command" -f -a "copy" -d 'Copy, merge, convert, recompress or slim BuildKit caches'
complete -c regcache -n "__fish_regcache_needs_command" -f -a "run" -d 'Restore, run a command, and save only if it succeeded'
complete -c regcache -n "__fish_regcache_needs_command" -f -a "inspect" -d 'Show what a cache holds: form, layers, records, entries'
complete -c regcache -n "__fish_regcache_needs_command" -f -a "prune" -d 'Delete old cache tags from a registry repository or a local cache directory'
complete -c regcache -n "__fish_regcache_needs_command" -f -a "ls" -d 'List the caches a registry repository or local cache directory holds, newest first'
complete -c regcache -n "__fish_regcache_needs_command" -f -a "completions" -d 'Print the shell completion script for SHELL to stdout'
complete -c regcache -n "__fish_regcache_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c regcache -n "__fish_regcache_using_subcommand save" -l cache-to -d 'Where to save (repeatable)' -r
complete -c regcache -n "__fish_regcache_using_subcommand save" -l cache-from -d 'The base to compare with (repeatable, first holding a path wins): parts it holds unchanged are reused, not read, packed or sent again. Without it, the base is what the first --cache-to holds now' -r
complete -c regcache -n "__fish_regcache_using_subcommand save" -l progress -d 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto' -r -f -a "auto\t''
tty\t''
plain\t''
quiet\t''"
complete -c regcache -n "__fish_regcache_using_subcommand save" -l metadata-file -d 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does' -r -F
complete -c regcache -n "__fish_regcache_using_subcommand save" -l insecure-registry -d 'Talk plain HTTP to this registry (repeatable), as dockerd\'s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it' -r
complete -c regcache -n "__fish_regcache_using_subcommand save" -l jobs -d 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]' -r
complete -c regcache -n "__fish_regcache_using_subcommand save" -l dry-run -d 'Print the plan, every spec at its effective parameters, and touch nothing'
complete -c regcache -n "__fish_regcache_using_subcommand save" -l json -d 'With --dry-run: print the plan as one JSON object (see docs/dry-run.md)'
complete -c regcache -n "__fish_regcache_using_subcommand save" -s v -l verbose -d 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
complete -c regcache -n "__fish_regcache_using_subcommand save" -s q -l quiet -d 'Only warnings and errors: no progress, no summary (= --progress quiet)'
complete -c regcache -n "__fish_regcache_using_subcommand save" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c regcache -n "__fish_regcache_using_subcommand restore" -l cache-from -d 'Where to look, in order of preference (repeatable)' -r
complete -c regcache -n "__fish_regcache_using_subcommand restore" -l progress -d 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto' -r -f -a "auto\t''
tty\t''
plain\t''
quiet\t''"
complete -c regcache -n "__fish_regcache_using_subcommand restore" -l metadata-file -d 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does' -r -F
complete -c regcache -n "__fish_regcache_using_subcommand restore" -l insecure-registry -d 'Talk plain HTTP to this registry (repeatable), as dockerd\'s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it' -r
complete -c regcache -n "__fish_regcache_using_subcommand restore" -l jobs -d 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]' -r
complete -c regcache -n "__fish_regcache_using_subcommand restore" -l fail-on-miss -d 'Exit 1 when no path at all could be restored'
complete -c regcache -n "__fish_regcache_using_subcommand restore" -l allow-root-symlink -d 'Restore into an entry root that is a symlink on disk (such as a target/ kept on a faster disk), writing where it points. Refused by default, since a hostile cache can plant such a link; never followed for a root inside another entry, nor anywhere on the way to a root'
complete -c regcache -n "__fish_regcache_using_subcommand restore" -l dry-run -d 'Print the plan, every spec at its effective parameters, and touch nothing'
complete -c regcache -n "__fish_regcache_using_subcommand restore" -l json -d 'With --dry-run: print the plan as one JSON object (see docs/dry-run.md)'
complete -c regcache -n "__fish_regcache_using_subcommand restore" -s v -l verbose -d 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
complete -c regcache -n "__fish_regcache_using_subcommand restore" -s q -l quiet -d 'Only warnings and errors: no progress, no summary (= --progress quiet)'
complete -c regcache -n "__fish_regcache_using_subcommand restore" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c regcache -n "__fish_regcache_using_subcommand copy" -l cache-from -d 'The caches to read and merge (repeatable)' -r
complete -c regcache -n "__fish_regcache_using_subcommand copy" -l cache-to -d 'Where to write the result, each with its own parameters (repeatable)' -r
complete -c regcache -n "__fish_regcache_using_subcommand copy" -l progress -d 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto' -r -f -a "auto\t''
tty\t''
plain\t''
quiet\t''"
complete -c regcache -n "__fish_regcache_using_subcommand copy" -l metadata-file -d 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does' -r -F
complete -c regcache -n "__fish_regcache_using_subcommand copy" -l insecure-registry -d 'Talk plain HTTP to this registry (repeatable), as dockerd\'s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it' -r
complete -c regcache -n "__fish_regcache_using_subcommand copy" -l jobs -d 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]' -r
complete -c regcache -n "__fish_regcache_using_subcommand copy" -l fail-on-miss -d 'Exit 1 when no --cache-from could be read'
complete -c regcache -n "__fish_regcache_using_subcommand copy" -l dry-run -d 'Print the plan, every spec at its effective parameters, and touch nothing'
complete -c regcache -n "__fish_regcache_using_subcommand copy" -l json -d 'With --dry-run: print the plan as one JSON object (see docs/dry-run.md)'
complete -c regcache -n "__fish_regcache_using_subcommand copy" -s v -l verbose -d 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
complete -c regcache -n "__fish_regcache_using_subcommand copy" -s q -l quiet -d 'Only warnings and errors: no progress, no summary (= --progress quiet)'
complete -c regcache -n "__fish_regcache_using_subcommand copy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c regcache -n "__fish_regcache_using_subcommand run" -l cache-from -d 'Where to restore from, in order of preference (repeatable)' -r
complete -c regcache -n "__fish_regcache_using_subcommand run" -l cache-to -d 'Where to save after a successful command (repeatable)' -r
complete -c regcache -n "__fish_regcache_using_subcommand run" -l path -d 'A directory or file to restore before and save after the command (repeatable)' -r
complete -c regcache -n "__fish_regcache_using_subcommand run" -l progress -d 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto' -r -f -a "auto\t''
tty\t''
plain\t''
quiet\t''"
complete -c regcache -n "__fish_regcache_using_subcommand run" -l metadata-file -d 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does' -r -F
complete -c regcache -n "__fish_regcache_using_subcommand run" -l insecure-registry -d 'Talk plain HTTP to this registry (repeatable), as dockerd\'s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it' -r
complete -c regcache -n "__fish_regcache_using_subcommand run" -l jobs -d 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]' -r
complete -c regcache -n "__fish_regcache_using_subcommand run" -l fail-on-miss -d 'Exit 1 without running the command when no path at all could be restored'
complete -c regcache -n "__fish_regcache_using_subcommand run" -l allow-root-symlink -d 'Restore into an entry root that is a symlink on disk (such as a target/ kept on a faster disk), writing where it points. Refused by default, since a hostile cache can plant such a link; never followed for a root inside another entry, nor anywhere on the way to a root'
complete -c regcache -n "__fish_regcache_using_subcommand run" -l dry-run -d 'Print the plan, every spec at its effective parameters, and touch nothing'
complete -c regcache -n "__fish_regcache_using_subcommand run" -l json -d 'With --dry-run: print the plan as one JSON object (see docs/dry-run.md)'
complete -c regcache -n "__fish_regcache_using_subcommand run" -s v -l verbose -d 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
complete -c regcache -n "__fish_regcache_using_subcommand run" -s q -l quiet -d 'Only warnings and errors: no progress, no summary (= --progress quiet)'
complete -c regcache -n "__fish_regcache_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c regcache -n "__fish_regcache_using_subcommand inspect" -l progress -d 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto' -r -f -a "auto\t''
tty\t''
plain\t''
quiet\t''"
complete -c regcache -n "__fish_regcache_using_subcommand inspect" -l metadata-file -d 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does' -r -F
complete -c regcache -n "__fish_regcache_using_subcommand inspect" -l insecure-registry -d 'Talk plain HTTP to this registry (repeatable), as dockerd\'s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it' -r
complete -c regcache -n "__fish_regcache_using_subcommand inspect" -l jobs -d 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]' -r
complete -c regcache -n "__fish_regcache_using_subcommand inspect" -l json -d 'Print one JSON object instead of tables'
complete -c regcache -n "__fish_regcache_using_subcommand inspect" -s v -l verbose -d 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
complete -c regcache -n "__fish_regcache_using_subcommand inspect" -s q -l quiet -d 'Only warnings and errors: no progress, no summary (= --progress quiet)'
complete -c regcache -n "__fish_regcache_using_subcommand inspect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c regcache -n "__fish_regcache_using_subcommand prune" -l keep -d 'Keep the newest N matching caches (by their own creation time)' -r
complete -c regcache -n "__fish_regcache_using_subcommand prune" -l older-than -d 'Delete only caches created more than DURATION ago: 7d, 36h, 90m, 1h30m, 2weeks' -r
complete -c regcache -n "__fish_regcache_using_subcommand prune" -l tag -d 'Only tags matching PATTERN, a glob (`*`, `?`) over the whole tag (repeatable) [default: every tag]' -r
complete -c regcache -n "__fish_regcache_using_subcommand prune" -l exclude -d 'Never touch tags matching PATTERN, even when --tag matches them (repeatable)' -r
complete -c regcache -n "__fish_regcache_using_subcommand prune" -l progress -d 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto' -r -f -a "auto\t''
tty\t''
plain\t''
quiet\t''"
complete -c regcache -n "__fish_regcache_using_subcommand prune" -l metadata-file -d 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does' -r -F
complete -c regcache -n "__fish_regcache_using_subcommand prune" -l insecure-registry -d 'Talk plain HTTP to this registry (repeatable), as dockerd\'s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it' -r
complete -c regcache -n "__fish_regcache_using_subcommand prune" -l jobs -d 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]' -r
complete -c regcache -n "__fish_regcache_using_subcommand prune" -l blobs-only -d 'Local directories only: remove the blobs no tag references, and no tag'
complete -c regcache -n "__fish_regcache_using_subcommand prune" -l dry-run -d 'List what would be deleted, and delete nothing'
complete -c regcache -n "__fish_regcache_using_subcommand prune" -l json -d 'Print the report as one JSON object instead of the table (see docs/prune.md)'
complete -c regcache -n "__fish_regcache_using_subcommand prune" -s v -l verbose -d 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
complete -c regcache -n "__fish_regcache_using_subcommand prune" -s q -l quiet -d 'Only warnings and errors: no progress, no summary (= --progress quiet)'
complete -c regcache -n "__fish_regcache_using_subcommand prune" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c regcache -n "__fish_regcache_using_subcommand ls" -l progress -d 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto' -r -f -a "auto\t''
tty\t''
plain\t''
quiet\t''"
complete -c regcache -n "__fish_regcache_using_subcommand ls" -l metadata-file -d 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does' -r -F
complete -c regcache -n "__fish_regcache_using_subcommand ls" -l insecure-registry -d 'Talk plain HTTP to this registry (repeatable), as dockerd\'s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it' -r
complete -c regcache -n "__fish_regcache_using_subcommand ls" -l jobs -d 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]' -r
complete -c regcache -n "__fish_regcache_using_subcommand ls" -l json -d 'Print one JSON object instead of the table (see docs/ls.md)'
complete -c regcache -n "__fish_regcache_using_subcommand ls" -s v -l verbose -d 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
complete -c regcache -n "__fish_regcache_using_subcommand ls" -s q -l quiet -d 'Only warnings and errors: no progress, no summary (= --progress quiet)'
complete -c regcache -n "__fish_regcache_using_subcommand ls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c regcache -n "__fish_regcache_using_subcommand completions" -l progress -d 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto' -r -f -a "auto\t''
tty\t''
plain\t''
quiet\t''"
complete -c regcache -n "__fish_regcache_using_subcommand completions" -l metadata-file -d 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does' -r -F
complete -c regcache -n "__fish_regcache_using_subcommand completions" -l insecure-registry -d 'Talk plain HTTP to this registry (repeatable), as dockerd\'s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it' -r
complete -c regcache -n "__fish_regcache_using_subcommand completions" -l jobs -d 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]' -r
complete -c regcache -n "__fish_regcache_using_subcommand completions" -s v -l verbose -d 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides'
complete -c regcache -n "__fish_regcache_using_subcommand completions" -s q -l quiet -d 'Only warnings and errors: no progress, no summary (= --progress quiet)'
complete -c regcache -n "__fish_regcache_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c regcache -n "__fish_regcache_using_subcommand help; and not __fish_seen_subcommand_from save restore copy run inspect prune ls completions help" -f -a "save" -d 'Save directories and files to every --cache-to'
complete -c regcache -n "__fish_regcache_using_subcommand help; and not __fish_seen_subcommand_from save restore copy run inspect prune ls completions help" -f -a "restore" -d 'Restore directories and files from the first --cache-from that holds each'
complete -c regcache -n "__fish_regcache_using_subcommand help; and not __fish_seen_subcommand_from save restore copy run inspect prune ls completions help" -f -a "copy" -d 'Copy, merge, convert, recompress or slim BuildKit caches'
complete -c regcache -n "__fish_regcache_using_subcommand help; and not __fish_seen_subcommand_from save restore copy run inspect prune ls completions help" -f -a "run" -d 'Restore, run a command, and save only if it succeeded'
complete -c regcache -n "__fish_regcache_using_subcommand help; and not __fish_seen_subcommand_from save restore copy run inspect prune ls completions help" -f -a "inspect" -d 'Show what a cache holds: form, layers, records, entries'
complete -c regcache -n "__fish_regcache_using_subcommand help; and not __fish_seen_subcommand_from save restore copy run inspect prune ls completions help" -f -a "prune" -d 'Delete old cache tags from a registry repository or a local cache directory'
complete -c regcache -n "__fish_regcache_using_subcommand help; and not __fish_seen_subcommand_from save restore copy run inspect prune ls completions help" -f -a "ls" -d 'List the caches a registry repository or local cache directory holds, newest first'
complete -c regcache -n "__fish_regcache_using_subcommand help; and not __fish_seen_subcommand_from save restore copy run inspect prune ls completions help" -f -a "completions" -d 'Print the shell completion script for SHELL to stdout'
complete -c regcache -n "__fish_regcache_using_subcommand help; and not __fish_seen_subcommand_from save restore copy run inspect prune ls completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
