//! Which progress display a run gets, as buildx decides it: `-q` means
//! quiet; else `--progress` when given; else `BUILDKIT_PROGRESS`, the
//! variable buildx users set in CI; else auto, which is tty on a terminal
//! and plain elsewhere.

use std::ffi::OsStr;
use std::io::IsTerminal;

use super::ProgressMode;

/// The variable buildx reads for its `--progress` default.
pub const ENV: &str = "BUILDKIT_PROGRESS";

/// buildx's mode names. `rawjson` (buildx's stream of raw solve status
/// JSON) has no counterpart here: it is taken as plain, the other display
/// meant for logs rather than people at a terminal.
const ACCEPTED: &str = "auto, tty, plain, quiet or rawjson";

/// The mode a run uses, and what to warn about on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressChoice {
    /// Never [`ProgressMode::Auto`]: resolved against stderr.
    pub mode: ProgressMode,
    warning: Option<String>,
}

impl ProgressChoice {
    /// The mode for `--progress` (`flag`, `None` when not given) and `-q`,
    /// reading `BUILDKIT_PROGRESS` and whether stderr is a terminal.
    pub fn new(flag: Option<ProgressMode>, quiet: bool) -> ProgressChoice {
        let env = std::env::var_os(ENV);
        let (requested, warning) = requested(flag, quiet, env.as_deref());
        ProgressChoice {
            mode: resolve_auto(requested, stderr_draws()),
            warning,
        }
    }

    /// Logs the warning, if any: call once logging is set up.
    pub fn warn(&self) {
        if let Some(warning) = &self.warning {
            tracing::warn!("{warning}");
        }
    }
}

/// The mode asked for, `auto` still unresolved, and a warning when
/// `BUILDKIT_PROGRESS` was read but holds no mode. The variable is not
/// read at all when the command line decides.
pub fn requested(
    flag: Option<ProgressMode>,
    quiet: bool,
    env: Option<&OsStr>,
) -> (ProgressMode, Option<String>) {
    if quiet {
        return (ProgressMode::Quiet, None);
    }
    if let Some(mode) = flag {
        return (mode, None);
    }
    let Some(value) = env else {
        return (ProgressMode::Auto, None);
    };
    match value.to_str() {
        // buildx takes an empty value as unset.
        Some("" | "auto") => (ProgressMode::Auto, None),
        Some("tty") => (ProgressMode::Tty, None),
        Some("plain" | "rawjson") => (ProgressMode::Plain, None),
        Some("quiet") => (ProgressMode::Quiet, None),
        _ => (
            ProgressMode::Auto,
            Some(format!(
                "{ENV}={:?} is not a progress mode ({ACCEPTED}); using auto",
                value.to_string_lossy()
            )),
        ),
    }
}

/// `auto` as buildx resolves it: bars where they can be drawn, lines
/// elsewhere.
pub fn resolve_auto(mode: ProgressMode, stderr_draws: bool) -> ProgressMode {
    match mode {
        ProgressMode::Auto if stderr_draws => ProgressMode::Tty,
        ProgressMode::Auto => ProgressMode::Plain,
        other => other,
    }
}

/// stderr is a terminal that understands cursor movement.
fn stderr_draws() -> bool {
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    std::io::stderr().is_terminal() && !dumb
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProgressMode::*;

    fn env(value: &str) -> Option<&OsStr> {
        Some(OsStr::new(value))
    }

    #[test]
    fn the_variable_picks_the_mode_when_the_command_line_does_not() {
        for (value, mode) in [
            ("auto", Auto),
            ("tty", Tty),
            ("plain", Plain),
            ("quiet", Quiet),
            ("rawjson", Plain),
            ("", Auto),
        ] {
            assert_eq!(requested(None, false, env(value)), (mode, None), "{value}");
        }
        assert_eq!(requested(None, false, None), (Auto, None));
    }

    #[test]
    fn the_command_line_wins_over_the_variable() {
        assert_eq!(requested(Some(Plain), false, env("tty")), (Plain, None));
        assert_eq!(requested(Some(Auto), false, env("quiet")), (Auto, None));
        assert_eq!(requested(Some(Tty), true, env("plain")), (Quiet, None));
        assert_eq!(requested(None, true, env("tty")), (Quiet, None));
        // Not read, so not judged either.
        assert_eq!(requested(Some(Plain), false, env("fancy")), (Plain, None));
    }

    #[test]
    fn a_value_that_is_no_mode_is_a_warning_naming_the_modes_then_auto() {
        let (mode, warning) = requested(None, false, env("TTY"));
        assert_eq!(mode, Auto);
        let warning = warning.expect("a warning");
        assert!(warning.contains("BUILDKIT_PROGRESS=\"TTY\""), "{warning}");
        for name in ["auto", "tty", "plain", "quiet", "rawjson"] {
            assert!(warning.contains(name), "{warning}");
        }
    }

    #[test]
    fn auto_is_tty_only_where_bars_can_be_drawn() {
        assert_eq!(resolve_auto(Auto, true), Tty);
        assert_eq!(resolve_auto(Auto, false), Plain);
        assert_eq!(resolve_auto(Plain, true), Plain);
        assert_eq!(resolve_auto(Tty, false), Tty);
    }
}
