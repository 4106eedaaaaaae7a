
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'regcache' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'regcache'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'regcache' {
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto')
            [CompletionResult]::new('--metadata-file', '--metadata-file', [CompletionResultType]::ParameterName, 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does')
            [CompletionResult]::new('--insecure-registry', '--insecure-registry', [CompletionResultType]::ParameterName, 'Talk plain HTTP to this registry (repeatable), as dockerd''s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors: no progress, no summary (= --progress quiet)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors: no progress, no summary (= --progress quiet)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('save', 'save', [CompletionResultType]::ParameterValue, 'Save directories and files to every --cache-to')
            [CompletionResult]::new('restore', 'restore', [CompletionResultType]::ParameterValue, 'Restore directories and files from the first --cache-from that holds each')
            [CompletionResult]::new('copy', 'copy', [CompletionResultType]::ParameterValue, 'Copy, merge, convert, recompress or slim BuildKit caches')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Restore, run a command, and save only if it succeeded')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Show what a cache holds: form, layers, records, entries')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Delete old cache tags from a registry repository or a local cache directory')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the caches a registry repository or local cache directory holds, newest first')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print the shell completion script for SHELL to stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'regcache;save' {
            [CompletionResult]::new('--cache-to', '--cache-to', [CompletionResultType]::ParameterName, 'Where to save (repeatable)')
            [CompletionResult]::new('--cache-from', '--cache-from', [CompletionResultType]::ParameterName, 'The base to compare with (repeatable, first holding a path wins): parts it holds unchanged are reused, not read, packed or sent again. Without it, the base is what the first --cache-to holds now')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto')
            [CompletionResult]::new('--metadata-file', '--metadata-file', [CompletionResultType]::ParameterName, 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does')
            [CompletionResult]::new('--insecure-registry', '--insecure-registry', [CompletionResultType]::ParameterName, 'Talk plain HTTP to this registry (repeatable), as dockerd''s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan, every spec at its effective parameters, and touch nothing')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'With --dry-run: print the plan as one JSON object (see docs/dry-run.md)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors: no progress, no summary (= --progress quiet)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors: no progress, no summary (= --progress quiet)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'regcache;restore' {
            [CompletionResult]::new('--cache-from', '--cache-from', [CompletionResultType]::ParameterName, 'Where to look, in order of preference (repeatable)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto')
            [CompletionResult]::new('--metadata-file', '--metadata-file', [CompletionResultType]::ParameterName, 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does')
            [CompletionResult]::new('--insecure-registry', '--insecure-registry', [CompletionResultType]::ParameterName, 'Talk plain HTTP to this registry (repeatable), as dockerd''s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]')
            [CompletionResult]::new('--fail-on-miss', '--fail-on-miss', [CompletionResultType]::ParameterName, 'Exit 1 when no path at all could be restored')
            [CompletionResult]::new('--allow-root-symlink', '--allow-root-symlink', [CompletionResultType]::ParameterName, 'Restore into an entry root that is a symlink on disk (such as a target/ kept on a faster disk), writing where it points. Refused by default, since a hostile cache can plant such a link; never followed for a root inside another entry, nor anywhere on the way to a root')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan, every spec at its effective parameters, and touch nothing')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'With --dry-run: print the plan as one JSON object (see docs/dry-run.md)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors: no progress, no summary (= --progress quiet)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors: no progress, no summary (= --progress quiet)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'regcache;copy' {
            [CompletionResult]::new('--cache-from', '--cache-from', [CompletionResultType]::ParameterName, 'The caches to read and merge (repeatable)')
            [CompletionResult]::new('--cache-to', '--cache-to', [CompletionResultType]::ParameterName, 'Where to write the result, each with its own parameters (repeatable)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto')
            [CompletionResult]::new('--metadata-file', '--metadata-file', [CompletionResultType]::ParameterName, 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does')
            [CompletionResult]::new('--insecure-registry', '--insecure-registry', [CompletionResultType]::ParameterName, 'Talk plain HTTP to this registry (repeatable), as dockerd''s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]')
            [CompletionResult]::new('--fail-on-miss', '--fail-on-miss', [CompletionResultType]::ParameterName, 'Exit 1 when no --cache-from could be read')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan, every spec at its effective parameters, and touch nothing')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'With --dry-run: print the plan as one JSON object (see docs/dry-run.md)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors: no progress, no summary (= --progress quiet)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors: no progress, no summary (= --progress quiet)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'regcache;run' {
            [CompletionResult]::new('--cache-from', '--cache-from', [CompletionResultType]::ParameterName, 'Where to restore from, in order of preference (repeatable)')
            [CompletionResult]::new('--cache-to', '--cache-to', [CompletionResultType]::ParameterName, 'Where to save after a successful command (repeatable)')
            [CompletionResult]::new('--path', '--path', [CompletionResultType]::ParameterName, 'A directory or file to restore before and save after the command (repeatable)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto')
            [CompletionResult]::new('--metadata-file', '--metadata-file', [CompletionResultType]::ParameterName, 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does')
            [CompletionResult]::new('--insecure-registry', '--insecure-registry', [CompletionResultType]::ParameterName, 'Talk plain HTTP to this registry (repeatable), as dockerd''s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]')
            [CompletionResult]::new('--fail-on-miss', '--fail-on-miss', [CompletionResultType]::ParameterName, 'Exit 1 without running the command when no path at all could be restored')
            [CompletionResult]::new('--allow-root-symlink', '--allow-root-symlink', [CompletionResultType]::ParameterName, 'Restore into an entry root that is a symlink on disk (such as a target/ kept on a faster disk), writing where it points. Refused by default, since a hostile cache can plant such a link; never followed for a root inside another entry, nor anywhere on the way to a root')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan, every spec at its effective parameters, and touch nothing')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'With --dry-run: print the plan as one JSON object (see docs/dry-run.md)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors: no progress, no summary (= --progress quiet)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors: no progress, no summary (= --progress quiet)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'regcache;inspect' {
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto')
            [CompletionResult]::new('--metadata-file', '--metadata-file', [CompletionResultType]::ParameterName, 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does')
            [CompletionResult]::new('--insecure-registry', '--insecure-registry', [CompletionResultType]::ParameterName, 'Talk plain HTTP to this registry (repeatable), as dockerd''s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object instead of tables')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors: no progress, no summary (= --progress quiet)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors: no progress, no summary (= --progress quiet)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'regcache;prune' {
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Keep the newest N matching caches (by their own creation time)')
            [CompletionResult]::new('--older-than', '--older-than', [CompletionResultType]::ParameterName, 'Delete only caches created more than DURATION ago: 7d, 36h, 90m, 1h30m, 2weeks')
            [CompletionResult]::new('--tag', '--tag', [CompletionResultType]::ParameterName, 'Only tags matching PATTERN, a glob (`*`, `?`) over the whole tag (repeatable) [default: every tag]')
            [CompletionResult]::new('--exclude', '--exclude', [CompletionResultType]::ParameterName, 'Never touch tags matching PATTERN, even when --tag matches them (repeatable)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto')
            [CompletionResult]::new('--metadata-file', '--metadata-file', [CompletionResultType]::ParameterName, 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does')
            [CompletionResult]::new('--insecure-registry', '--insecure-registry', [CompletionResultType]::ParameterName, 'Talk plain HTTP to this registry (repeatable), as dockerd''s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]')
            [CompletionResult]::new('--blobs-only', '--blobs-only', [CompletionResultType]::ParameterName, 'Local directories only: remove the blobs no tag references, and no tag')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'List what would be deleted, and delete nothing')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as one JSON object instead of the table (see docs/prune.md)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors: no progress, no summary (= --progress quiet)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors: no progress, no summary (= --progress quiet)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'regcache;ls' {
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto')
            [CompletionResult]::new('--metadata-file', '--metadata-file', [CompletionResultType]::ParameterName, 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does')
            [CompletionResult]::new('--insecure-registry', '--insecure-registry', [CompletionResultType]::ParameterName, 'Talk plain HTTP to this registry (repeatable), as dockerd''s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object instead of the table (see docs/ls.md)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors: no progress, no summary (= --progress quiet)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors: no progress, no summary (= --progress quiet)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'regcache;completions' {
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'How to show progress on stderr, as buildx: auto (tty when stderr is a terminal, else plain), tty (bars per blob and overall), plain (a line per blob, no escape codes), quiet (only warnings and errors). Without --progress, BUILDKIT_PROGRESS picks the mode, as in buildx (its rawjson is taken as plain); else auto')
            [CompletionResult]::new('--metadata-file', '--metadata-file', [CompletionResultType]::ParameterName, 'Write a JSON summary of what was restored, run and saved to FILE (see docs/metadata.md), as `docker buildx build --metadata-file` does')
            [CompletionResult]::new('--insecure-registry', '--insecure-registry', [CompletionResultType]::ParameterName, 'Talk plain HTTP to this registry (repeatable), as dockerd''s --insecure-registry. Loopback registries (localhost, 127.0.0.0/8, ::1) never need it')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'How many layers to compress, and blobs to send, at once [default: the number of CPUs]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v: progress of each step, -vv: debug). RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors: no progress, no summary (= --progress quiet)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors: no progress, no summary (= --progress quiet)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'regcache;help' {
            [CompletionResult]::new('save', 'save', [CompletionResultType]::ParameterValue, 'Save directories and files to every --cache-to')
            [CompletionResult]::new('restore', 'restore', [CompletionResultType]::ParameterValue, 'Restore directories and files from the first --cache-from that holds each')
            [CompletionResult]::new('copy', 'copy', [CompletionResultType]::ParameterValue, 'Copy, merge, convert, recompress or slim BuildKit caches')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Restore, run a command, and save only if it succeeded')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Show what a cache holds: form, layers, records, entries')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Delete old cache tags from a registry repository or a local cache directory')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the caches a registry repository or local cache directory holds, newest first')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print the shell completion script for SHELL to stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'regcache;help;save' {
            break
        }
        'regcache;help;restore' {
            break
        }
        'regcache;help;copy' {
            break
        }
        'regcache;help;run' {
            break
        }
        'regcache;help;inspect' {
            break
        }
        'regcache;help;prune' {
            break
        }
        'regcache;help;ls' {
            break
        }
        'regcache;help;completions' {
            break
        }
        'regcache;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
