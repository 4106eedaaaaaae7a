//! Shell completions, generated from the clap definition: printed by
//! `regcache completions SHELL` and committed in completions/ (`make
//! generated`), by the same function.

use std::io::{self, Write};

use clap_complete::Shell;

/// Every shell clap_complete supports, with the name its completion file
/// has in completions/.
pub const FILES: [(Shell, &str); 5] = [
    (Shell::Bash, "regcache.bash"),
    (Shell::Zsh, "_regcache"),
    (Shell::Fish, "regcache.fish"),
    (Shell::PowerShell, "_regcache.ps1"),
    (Shell::Elvish, "regcache.elv"),
];

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut super::command(), "regcache", &mut out);
    out
}

/// Writes the completion script for `shell` to `out`. A reader that
/// stops early (`| head`) is not an error: it got what it wanted.
pub fn write(shell: Shell, out: &mut dyn Write) -> io::Result<()> {
    match out.write_all(&script(shell)).and_then(|()| out.flush()) {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn every_shell_clap_complete_knows_has_a_file() {
        for shell in Shell::value_variants() {
            assert!(
                FILES.iter().any(|(s, _)| s == shell),
                "{shell} has no file name"
            );
        }
    }

    #[test]
    fn a_script_completes_every_command() {
        let bash = String::from_utf8(script(Shell::Bash)).expect("bash script is UTF-8");
        for sub in super::super::command().get_subcommands() {
            assert!(bash.contains(sub.get_name()), "{}", sub.get_name());
        }
    }

    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Full;

    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(libc::ENOSPC))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_is_fine_and_a_full_disk_is_not() {
        assert!(write(Shell::Zsh, &mut ClosedPipe).is_ok());
        assert!(write(Shell::Zsh, &mut Full).is_err());
    }
}
