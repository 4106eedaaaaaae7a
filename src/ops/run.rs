//! `regcache run`: restore the paths, run a command, save the paths only if
//! the command succeeded, and exit with the command's status, so that
//! `regcache run … -- make` can stand in for `make` in a CI script.

use std::io;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Instant;

use super::OpsError;
use super::restore::{RestoreOptions, RestoreReport, restore};
use super::save::{SaveOptions, SaveReport, save};
use crate::progress::Progress;
use crate::spec::{CacheFrom, CacheTo};
use crate::store::StoreOptions;

pub struct RunOptions {
    pub cache_from: Vec<CacheFrom>,
    pub cache_to: Vec<CacheTo>,
    pub paths: Vec<String>,
    /// The command and its arguments; never empty.
    pub argv: Vec<String>,
    pub fail_on_miss: bool,
    /// See [`RestoreOptions::allow_root_symlink`].
    pub allow_root_symlink: bool,
    pub jobs: usize,
    pub part_size: u64,
    pub store: StoreOptions,
    pub progress: Arc<dyn Progress>,
    /// Told what was restored before the command starts, so the user reads
    /// which cache the build got before the build's own output.
    pub on_restored: Option<OnRestored>,
}

/// See [`RunOptions::on_restored`].
pub type OnRestored = Box<dyn Fn(&RestoreReport) + Send + Sync>;

/// What happened to the command itself.
#[derive(Debug)]
pub enum CommandOutcome {
    /// Not started, and why (`--fail-on-miss` and nothing restored).
    NotRun(String),
    /// Could not be started (not found, not executable): the status a
    /// shell gives for that, 127 or 126.
    SpawnFailed {
        code: u8,
        message: String,
    },
    Exited {
        code: i32,
        seconds: f64,
    },
    /// Killed by a signal; exits 128 + signal, as shells report it.
    Signalled {
        signal: i32,
        seconds: f64,
    },
}

impl CommandOutcome {
    /// The status `run` exits with on the command's account.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandOutcome::NotRun(_) => 1,
            CommandOutcome::SpawnFailed { code, .. } => *code,
            CommandOutcome::Exited { code, .. } => u8::try_from(*code).unwrap_or(1),
            CommandOutcome::Signalled { signal, .. } => {
                u8::try_from(128 + signal).unwrap_or(u8::MAX)
            }
        }
    }

    pub fn succeeded(&self) -> bool {
        matches!(self, CommandOutcome::Exited { code: 0, .. })
    }
}

/// What happened to the save after the command.
#[derive(Debug)]
pub enum SaveOutcome {
    /// No `--cache-to` was given.
    NotRequested,
    /// Not attempted, and why (the command failed).
    Skipped(String),
    Done(SaveReport),
    /// Stopped before any target was written (a path could not be read).
    Failed(OpsError),
}

#[derive(Debug)]
pub struct RunReport {
    /// `None` when no `--cache-from` was given.
    pub restore: Option<RestoreReport>,
    pub command: CommandOutcome,
    pub save: SaveOutcome,
}

impl RunReport {
    /// The command's status, unless it succeeded and an export then failed
    /// without `ignore-error=true`: 1, as for `save`.
    pub fn exit_code(&self) -> u8 {
        if !self.command.succeeded() {
            return self.command.exit_code();
        }
        match self.error() {
            Some(err) => u8::try_from(err.exit_code()).unwrap_or(1),
            None => 0,
        }
    }

    /// The error to print after the summary, if any.
    pub fn error(&self) -> Option<OpsError> {
        match (&self.command, &self.save) {
            (CommandOutcome::NotRun(why), _) => Some(OpsError::Failed(why.clone())),
            (CommandOutcome::SpawnFailed { message, .. }, _) => {
                Some(OpsError::Failed(message.clone()))
            }
            (_, SaveOutcome::Failed(err)) => Some(OpsError::Failed(err.to_string())),
            (_, SaveOutcome::Done(report)) => report.failure(),
            _ => None,
        }
    }
}

pub async fn run(options: RunOptions, cwd: &Path) -> Result<RunReport, OpsError> {
    let restore_report = if options.cache_from.is_empty() {
        None
    } else {
        let report = restore(
            RestoreOptions {
                cache_from: options.cache_from.clone(),
                paths: options.paths.clone(),
                store: options.store.clone(),
                progress: Arc::clone(&options.progress),
                // A broken cache must not keep the build from running: the
                // command rebuilds what is missing and its save replaces
                // the cache.
                keep_going: true,
                allow_root_symlink: options.allow_root_symlink,
            },
            cwd,
        )
        .await?;
        Some(report)
    };
    // The child writes to the same terminal: no bar may be drawn over it.
    options.progress.clear();
    if let (Some(report), Some(tell)) = (&restore_report, &options.on_restored) {
        tell(report);
    }

    if options.fail_on_miss && restore_report.as_ref().is_none_or(|r| r.hits() == 0) {
        return Ok(RunReport {
            restore: restore_report,
            command: CommandOutcome::NotRun(
                "nothing was restored (--fail-on-miss); the command was not run".into(),
            ),
            save: SaveOutcome::Skipped("the command was not run".into()),
        });
    }

    let command = run_command(&options.argv, cwd).await;
    let save_outcome = if options.cache_to.is_empty() {
        SaveOutcome::NotRequested
    } else if !command.succeeded() {
        let why = match &command {
            CommandOutcome::Exited { code, .. } => format!("the command exited {code}"),
            CommandOutcome::Signalled { signal, .. } => {
                format!("the command was killed by signal {signal}")
            }
            _ => "the command did not run".to_string(),
        };
        tracing::info!("not saving: {why}");
        SaveOutcome::Skipped(why)
    } else {
        let saved = save(
            SaveOptions {
                cache_to: options.cache_to,
                // The caches the paths were restored from are the bases:
                // what the command left unchanged is reused, not re-read.
                cache_from: options.cache_from.clone(),
                paths: options.paths,
                jobs: options.jobs,
                part_size: options.part_size,
                store: options.store,
                progress: Arc::clone(&options.progress),
                mount_sources: restore_report
                    .as_ref()
                    .map(|r| r.mount_sources.clone())
                    .unwrap_or_default(),
            },
            cwd,
        )
        .await;
        options.progress.clear();
        match saved {
            Ok(report) => SaveOutcome::Done(report),
            Err(err) => SaveOutcome::Failed(err),
        }
    };
    Ok(RunReport {
        restore: restore_report,
        command,
        save: save_outcome,
    })
}

/// Runs `argv` with this process's stdio, environment and working
/// directory, and waits for it.
async fn run_command(argv: &[String], cwd: &Path) -> CommandOutcome {
    let Some((program, args)) = argv.split_first() else {
        return CommandOutcome::SpawnFailed {
            code: 127,
            message: "no command given".into(),
        };
    };
    let mut command = tokio::process::Command::new(program);
    command.args(args).current_dir(cwd);
    // SAFETY: between fork and exec only async-signal-safe calls are
    // allowed; signal(2) is one. The child gets back the default actions
    // that `ParentSignals` sets aside in this process.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            Ok(())
        });
    }
    let started = Instant::now();
    // Ctrl-C at a terminal reaches the whole foreground process group, the
    // command included: then this process only has to stay alive to report
    // its status. Anywhere else an interrupt was sent to this process alone
    // (`kill -INT`, a CI runner) and must be passed on, or the command
    // would never see it.
    let terminal_interrupts = terminal_delivers_interrupts();
    handle_termination_signals(!terminal_interrupts);
    let signals = terminal_interrupts.then(ParentSignals::ignore_interrupts);
    let child = command.spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) => {
            drop(signals);
            // What a shell answers for a missing or unrunnable command.
            let code = match err.kind() {
                io::ErrorKind::NotFound => 127,
                io::ErrorKind::PermissionDenied => 126,
                _ => 1,
            };
            return CommandOutcome::SpawnFailed {
                code,
                message: format!("cannot run {program:?}: {err}"),
            };
        }
    };
    let status = wait_forwarding_signals(&mut child).await;
    drop(signals);
    let seconds = started.elapsed().as_secs_f64();
    match status {
        Ok(status) => outcome_of(status, seconds),
        Err(err) => CommandOutcome::SpawnFailed {
            code: 1,
            message: format!("waiting for {program:?}: {err}"),
        },
    }
}

fn outcome_of(status: ExitStatus, seconds: f64) -> CommandOutcome {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => CommandOutcome::Exited { code, seconds },
        (None, Some(signal)) => CommandOutcome::Signalled { signal, seconds },
        (None, None) => CommandOutcome::Exited { code: 1, seconds },
    }
}

/// The pid of the running command, 0 when none: where SIGTERM and SIGHUP
/// sent to this process go.
static CHILD: AtomicI32 = AtomicI32::new(0);

/// Waits for the child, passing on the termination signals sent to this
/// process alone (a CI runner cancelling the job): the child must get the
/// chance to stop cleanly, and this process must outlive it to report its
/// status.
async fn wait_forwarding_signals(child: &mut tokio::process::Child) -> io::Result<ExitStatus> {
    let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    CHILD.store(pid, Ordering::SeqCst);
    let status = child.wait().await;
    CHILD.store(0, Ordering::SeqCst);
    status
}

/// Whether this process is in the foreground process group of a
/// controlling terminal, whose interrupt keys signal the whole group.
fn terminal_delivers_interrupts() -> bool {
    // SAFETY: open/tcgetpgrp/getpgrp/close on a descriptor we own; the
    // path is a NUL-terminated literal.
    unsafe {
        let fd = libc::open(
            c"/dev/tty".as_ptr(),
            libc::O_RDONLY | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return false;
        }
        let foreground = libc::tcgetpgrp(fd) == libc::getpgrp();
        libc::close(fd);
        foreground
    }
}

/// Takes over SIGTERM and SIGHUP (and SIGINT and SIGQUIT with
/// `interrupts`) for the rest of the process: passed on to the command
/// while it runs, and otherwise ending this process with the status their
/// default action would give (128 + signal).
fn handle_termination_signals(interrupts: bool) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut kinds = vec![
        (SignalKind::terminate(), libc::SIGTERM),
        (SignalKind::hangup(), libc::SIGHUP),
    ];
    if interrupts {
        kinds.push((SignalKind::interrupt(), libc::SIGINT));
        kinds.push((SignalKind::quit(), libc::SIGQUIT));
    }
    for (kind, number) in kinds {
        let Ok(mut stream) = signal(kind) else {
            // Not able to listen: the default action stays, which ends
            // this process but leaves the command running.
            continue;
        };
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                let pid = CHILD.load(Ordering::SeqCst);
                if pid == 0 {
                    std::process::exit(128 + number);
                }
                tracing::debug!("passing signal {number} on to the command (pid {pid})");
                // SAFETY: kill(2) on the pid of the child we spawned and
                // have not reaped yet (CHILD is reset right after the wait).
                unsafe {
                    libc::kill(pid, number);
                }
            }
        });
    }
}

/// While the child runs in a terminal's foreground, this process ignores
/// SIGINT and SIGQUIT, as system(3) does: Ctrl-C reaches the whole process
/// group, so the child gets it anyway and decides; this process waits to
/// report its status. Dropping restores the previous actions.
struct ParentSignals {
    int: libc::sighandler_t,
    quit: libc::sighandler_t,
}

impl ParentSignals {
    fn ignore_interrupts() -> ParentSignals {
        // SAFETY: signal(2) with SIG_IGN installs no handler code.
        unsafe {
            ParentSignals {
                int: libc::signal(libc::SIGINT, libc::SIG_IGN),
                quit: libc::signal(libc::SIGQUIT, libc::SIG_IGN),
            }
        }
    }
}

impl Drop for ParentSignals {
    fn drop(&mut self) {
        // SAFETY: puts back the actions signal(2) returned above.
        unsafe {
            if self.int != libc::SIG_ERR {
                libc::signal(libc::SIGINT, self.int);
            }
            if self.quit != libc::SIG_ERR {
                libc::signal(libc::SIGQUIT, self.quit);
            }
        }
    }
}
