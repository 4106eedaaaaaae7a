//! How long-running work reports progress, without knowing who shows it:
//! the operations and stores call this trait; the binary picks a terminal,
//! plain-line or silent implementation.
//!
//! Also the glue between indicatif and tracing: while terminal bars are on
//! screen, log lines must be printed *above* them, or each warning would be
//! drawn over by the next redraw (see [`LogWriter`]).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// One transfer (an upload, a download, a layer being packed).
pub trait BlobProgress: Send + Sync {
    /// `bytes` more were moved.
    fn advance(&self, bytes: u64);
    /// The transfer ended; `outcome` says how ("uploaded", "reused",
    /// "mounted", "restored"…).
    fn finish(&self, outcome: &str);
    /// `bytes` more are to be moved: for work whose size is found as it
    /// goes (see [`Progress::work`]).
    fn grow(&self, _bytes: u64) {}
}

/// Creates a [`BlobProgress`] per transfer.
pub trait Progress: Send + Sync {
    /// A transfer of `total` bytes (0 when unknown) named `label`.
    fn blob(&self, label: &str, total: u64) -> Box<dyn BlobProgress>;

    /// Work (packing a tree) whose total is found as it goes, through
    /// [`BlobProgress::grow`]: shown with bytes of the total and a rate, but
    /// not counted among the transfers.
    fn work(&self, label: &str) -> Box<dyn BlobProgress> {
        self.blob(label, 0)
    }

    /// Every transfer so far is over: take any display off the terminal, so
    /// that what is printed next (a child command's output, the summary) is
    /// not drawn over. Reporters that draw nothing have nothing to clear.
    fn clear(&self) {}
}

/// Lets a progress handle be shared between a reader that advances it and
/// the code that finishes it.
impl<T: BlobProgress + ?Sized> BlobProgress for Arc<T> {
    fn advance(&self, bytes: u64) {
        (**self).advance(bytes);
    }
    fn finish(&self, outcome: &str) {
        (**self).finish(outcome);
    }
    fn grow(&self, bytes: u64) {
        (**self).grow(bytes);
    }
}

/// Reports nothing: for `--progress quiet` and for tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl BlobProgress for NoProgress {
    fn advance(&self, _bytes: u64) {}
    fn finish(&self, _outcome: &str) {}
}

impl Progress for NoProgress {
    fn blob(&self, _label: &str, _total: u64) -> Box<dyn BlobProgress> {
        Box::new(NoProgress)
    }
}

/// Counts the bytes read through it into a [`BlobProgress`]: how a download
/// or an extraction reports progress without the code reading it knowing.
pub struct ProgressReader<R> {
    inner: R,
    progress: Arc<dyn BlobProgress>,
}

impl<R> ProgressReader<R> {
    pub fn new(inner: R, progress: Arc<dyn BlobProgress>) -> ProgressReader<R> {
        ProgressReader { inner, progress }
    }
}

impl<R: io::Read> io::Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// `1.5 MiB`, `512 B`: sizes as people read them.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `s` with every control character escaped. Labels and paths can come
/// from a cache, which is untrusted: an entry named with an escape sequence
/// must not be able to rewrite the user's terminal, and plain output
/// promises no escape codes at all.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The line a finished transfer leaves behind, in plain and terminal mode
/// alike: what, how big, what happened, how long.
fn finished_line(label: &str, size: u64, outcome: &str, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if size > 0 {
        format!("{label}: {} {outcome} in {secs:.2}s", human_bytes(size))
    } else {
        format!("{label}: {outcome} in {secs:.2}s")
    }
}

/// One line per transfer when it ends, and one every few seconds while a
/// long one runs (bytes, of the total when known, and the rate): for CI
/// logs and any stderr that is not a terminal. Never writes an escape code.
pub struct PlainProgress {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    interval: Duration,
}

/// How often plain mode reports a transfer still running: often enough
/// that a CI log shows a save is alive, rarely enough to stay readable.
pub const PLAIN_INTERVAL: Duration = Duration::from_secs(5);

impl PlainProgress {
    pub fn new(out: Box<dyn Write + Send>) -> PlainProgress {
        PlainProgress::with_interval(out, PLAIN_INTERVAL)
    }

    pub fn with_interval(out: Box<dyn Write + Send>, interval: Duration) -> PlainProgress {
        PlainProgress {
            out: Arc::new(Mutex::new(out)),
            interval,
        }
    }

    pub fn stderr() -> PlainProgress {
        PlainProgress::new(Box::new(io::stderr()))
    }
}

impl Progress for PlainProgress {
    fn blob(&self, label: &str, total: u64) -> Box<dyn BlobProgress> {
        Box::new(PlainBlob {
            label: printable(label).into_owned(),
            total: AtomicU64::new(total),
            fixed_total: total > 0,
            moved: AtomicU64::new(0),
            started: Instant::now(),
            interval: self.interval,
            last_report_ms: AtomicU64::new(0),
            finished: AtomicBool::new(false),
            out: Arc::clone(&self.out),
        })
    }
}

struct PlainBlob {
    label: String,
    total: AtomicU64,
    /// The size was known up front: the finished line shows it, rather
    /// than the bytes moved (a reused blob moves none).
    fixed_total: bool,
    moved: AtomicU64,
    started: Instant,
    interval: Duration,
    /// When the last line was printed, in milliseconds since `started`.
    last_report_ms: AtomicU64,
    finished: AtomicBool,
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl PlainBlob {
    fn print(&self, line: &str) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        // Progress output is best effort: a closed stderr must not fail
        // the save it describes.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// A line saying how far a running transfer got, at most once per
    /// interval.
    fn report_running(&self, moved: u64) {
        let elapsed = self.started.elapsed();
        let now_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let last = self.last_report_ms.load(Ordering::Relaxed);
        let interval_ms = u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX);
        if now_ms.saturating_sub(last) < interval_ms.max(1) {
            return;
        }
        // Several threads advance one pack: only one of them prints.
        if self
            .last_report_ms
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let total = self.total.load(Ordering::Relaxed);
        self.print(&running_line(&self.label, moved, total, elapsed));
    }
}

/// `tree: pack: 120.0 MiB of 500.0 MiB (24%), 80.0 MiB/s`
fn running_line(label: &str, moved: u64, total: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        human_bytes((moved as f64 / secs) as u64)
    } else {
        human_bytes(0)
    };
    if total > 0 {
        let percent = moved.saturating_mul(100) / total.max(1);
        format!(
            "{label}: {} of {} ({percent}%), {rate}/s",
            human_bytes(moved),
            human_bytes(total)
        )
    } else {
        format!("{label}: {}, {rate}/s", human_bytes(moved))
    }
}

impl BlobProgress for PlainBlob {
    fn advance(&self, bytes: u64) {
        let moved = self.moved.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if !self.finished.load(Ordering::Relaxed) {
            self.report_running(moved);
        }
    }

    fn grow(&self, bytes: u64) {
        self.total.fetch_add(bytes, Ordering::Relaxed);
    }

    fn finish(&self, outcome: &str) {
        if self.finished.swap(true, Ordering::Relaxed) {
            return;
        }
        let size = if self.fixed_total {
            self.total.load(Ordering::Relaxed)
        } else {
            self.moved.load(Ordering::Relaxed)
        };
        let line = finished_line(
            &self.label,
            size,
            &printable(outcome),
            self.started.elapsed(),
        );
        self.print(&line);
    }
}

/// The MultiProgress currently on screen, if any, so that [`LogWriter`]
/// can print log lines above the bars instead of through them.
static ACTIVE: Mutex<Option<MultiProgress>> = Mutex::new(None);

fn active() -> Option<MultiProgress> {
    ACTIVE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// A `tracing_subscriber` writer for stderr that suspends the terminal
/// bars, if some are drawn, while a log line is written.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine
    }
}

/// One log event on its way to stderr (see [`LogWriter`]).
pub struct LogLine;

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // tracing's fmt layer formats a whole event before writing it, so
        // one call is one complete line: suspending the bars around it
        // keeps the line intact.
        match active() {
            Some(multi) => multi.suspend(|| io::stderr().write_all(buf))?,
            None => io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// indicatif bars on stderr: one per transfer with bytes and rate, and an
/// overall one below them. A finished transfer leaves the same line plain
/// mode prints, above the bars, so the scrollback tells what happened.
pub struct TerminalProgress {
    multi: MultiProgress,
    color: bool,
    /// The overall bar of the current phase; [`Progress::clear`] ends it,
    /// so a save after a restore (in `run`) starts from zero.
    overall: Mutex<Option<Overall>>,
}

#[derive(Clone)]
struct Overall {
    bar: ProgressBar,
    counts: Arc<Mutex<(u64, u64)>>,
}

impl Overall {
    fn update_message(&self) {
        let (done, started) = *self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        self.bar.set_message(format!("{done}/{started} done"));
    }
}

impl TerminalProgress {
    /// Draws on stderr whether or not it is a terminal (`--progress tty`
    /// forces it, as buildx's does). `color`: false under `NO_COLOR`.
    pub fn stderr(color: bool) -> TerminalProgress {
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(StderrTerm), 10);
        let multi = MultiProgress::with_draw_target(target);
        *ACTIVE.lock().unwrap_or_else(PoisonError::into_inner) = Some(multi.clone());
        TerminalProgress {
            multi,
            color,
            overall: Mutex::new(None),
        }
    }

    fn style(&self, template_color: &str, template_plain: &str) -> ProgressStyle {
        let template = if self.color {
            template_color
        } else {
            template_plain
        };
        ProgressStyle::with_template(template)
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
    }

    fn overall(&self) -> Overall {
        let mut slot = self.overall.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(overall) = slot.as_ref() {
            return overall.clone();
        }
        let bar = self.multi.add(ProgressBar::new(0));
        bar.set_style(self.style(
            "{prefix:.bold} [{bar:30.green}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} {elapsed}",
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} {elapsed}",
        ));
        bar.set_prefix("total");
        let overall = Overall {
            bar,
            counts: Arc::new(Mutex::new((0, 0))),
        };
        *slot = Some(overall.clone());
        overall
    }
}

impl Drop for TerminalProgress {
    fn drop(&mut self) {
        self.clear();
        let mut active = ACTIVE.lock().unwrap_or_else(PoisonError::into_inner);
        *active = None;
    }
}

impl Progress for TerminalProgress {
    fn blob(&self, label: &str, total: u64) -> Box<dyn BlobProgress> {
        let label = printable(label).into_owned();
        // Only transfers of a known size count in the overall bar; work of
        // unknown size (packing) shows as a spinner of its own.
        let overall = (total > 0).then(|| self.overall());
        let bar = match &overall {
            Some(overall) => {
                overall.bar.inc_length(total);
                overall
                    .counts
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .1 += 1;
                overall.update_message();
                self.multi
                    .insert_before(&overall.bar, ProgressBar::new(total))
            }
            None => self.multi.add(ProgressBar::new(total)),
        };
        if total > 0 {
            bar.set_style(self.style(
                "{wide_msg} [{bar:25.cyan/blue}] {bytes}/{total_bytes} {binary_bytes_per_sec}",
                "{wide_msg} [{bar:25}] {bytes}/{total_bytes} {binary_bytes_per_sec}",
            ));
        } else {
            bar.set_style(self.style(
                "{wide_msg} {spinner} {elapsed}",
                "{wide_msg} {spinner} {elapsed}",
            ));
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        bar.set_message(label.clone());
        Box::new(TerminalBlob {
            bar,
            multi: self.multi.clone(),
            overall,
            label,
            total,
            moved: AtomicU64::new(0),
            started: Instant::now(),
            finished: AtomicBool::new(false),
        })
    }

    fn work(&self, label: &str) -> Box<dyn BlobProgress> {
        let label = printable(label).into_owned();
        let bar = match self
            .overall
            .lock()
            .map(|o| o.as_ref().map(|o| o.bar.clone()))
        {
            Ok(Some(overall)) => self.multi.insert_before(&overall, ProgressBar::new(0)),
            _ => self.multi.add(ProgressBar::new(0)),
        };
        bar.set_style(self.style(
            "{wide_msg} [{bar:25.yellow}] {bytes}/{total_bytes} {binary_bytes_per_sec} {elapsed}",
            "{wide_msg} [{bar:25}] {bytes}/{total_bytes} {binary_bytes_per_sec} {elapsed}",
        ));
        bar.set_message(label.clone());
        // Redrawn even while no byte moves (a walk through unchanged files).
        bar.enable_steady_tick(Duration::from_millis(250));
        Box::new(TerminalBlob {
            bar,
            multi: self.multi.clone(),
            overall: None,
            label,
            total: 0,
            moved: AtomicU64::new(0),
            started: Instant::now(),
            finished: AtomicBool::new(false),
        })
    }

    fn clear(&self) {
        if let Some(overall) = self
            .overall
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            overall.bar.finish_and_clear();
            self.multi.remove(&overall.bar);
        }
        let _ = self.multi.clear();
    }
}

struct TerminalBlob {
    bar: ProgressBar,
    multi: MultiProgress,
    overall: Option<Overall>,
    label: String,
    total: u64,
    moved: AtomicU64,
    started: Instant,
    finished: AtomicBool,
}

impl BlobProgress for TerminalBlob {
    fn advance(&self, bytes: u64) {
        self.moved.fetch_add(bytes, Ordering::Relaxed);
        self.bar.inc(bytes);
        if let Some(overall) = &self.overall {
            overall.bar.inc(bytes);
        }
    }

    fn grow(&self, bytes: u64) {
        self.bar.inc_length(bytes);
    }

    fn finish(&self, outcome: &str) {
        if self.finished.swap(true, Ordering::Relaxed) {
            return;
        }
        let moved = self.moved.load(Ordering::Relaxed);
        // The overall bar counts bytes actually moved: a reused blob leaves
        // the total instead of filling it, so the rate stays honest.
        if let Some(overall) = &self.overall {
            if self.total > moved {
                overall.bar.dec_length(self.total - moved);
            }
            overall
                .counts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .0 += 1;
            overall.update_message();
        }
        self.bar.finish_and_clear();
        self.multi.remove(&self.bar);
        let size = if self.total > 0 { self.total } else { moved };
        let _ = self.multi.println(finished_line(
            &self.label,
            size,
            &printable(outcome),
            self.started.elapsed(),
        ));
    }
}

impl Drop for TerminalBlob {
    /// A transfer abandoned by an error must not leave a frozen bar behind.
    fn drop(&mut self) {
        if !self.finished.load(Ordering::Relaxed) {
            self.bar.finish_and_clear();
            self.multi.remove(&self.bar);
        }
    }
}

/// stderr as indicatif's terminal, drawn with plain ANSI sequences whether
/// or not it is a TTY: `--progress tty` means draw, as in buildx.
#[derive(Debug)]
struct StderrTerm;

impl StderrTerm {
    fn write(s: &str) -> io::Result<()> {
        io::stderr().lock().write_all(s.as_bytes())
    }

    fn size() -> (u16, u16) {
        // SAFETY: TIOCGWINSZ only writes a winsize into the struct given;
        // on failure (not a terminal) it is left zeroed and we fall back.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
        if ok && ws.ws_col > 0 {
            return (ws.ws_col, ws.ws_row.max(2));
        }
        let cols = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(100);
        (cols, 24)
    }
}

impl TermLike for StderrTerm {
    fn width(&self) -> u16 {
        Self::size().0
    }

    fn height(&self) -> u16 {
        Self::size().1
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        Self::write(&format!("\x1b[{n}A"))
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        Self::write(&format!("\x1b[{n}B"))
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        Self::write(&format!("\x1b[{n}C"))
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        Self::write(&format!("\x1b[{n}D"))
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        Self::write(&format!("{s}\n"))
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        Self::write(s)
    }

    fn clear_line(&self) -> io::Result<()> {
        Self::write("\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plain_prints_one_line_per_blob_when_it_finishes() {
        let out = Shared::default();
        let progress = PlainProgress::new(Box::new(out.clone()));
        let blob = progress.blob("tree: layer sha256:0123", 2048);
        blob.advance(1024);
        assert!(out.0.lock().unwrap().is_empty(), "printed before finishing");
        blob.advance(1024);
        blob.finish("uploaded");
        blob.finish("uploaded");
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.starts_with("tree: layer sha256:0123: 2.0 KiB uploaded in "),
            "{text}"
        );
    }

    #[test]
    fn plain_escapes_control_characters_from_untrusted_labels() {
        let out = Shared::default();
        let progress = PlainProgress::new(Box::new(out.clone()));
        progress.blob("evil\x1b[2Jname\n", 0).finish("restored");
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains('\x1b'), "{text:?}");
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(text.contains("evil\\u{1b}[2Jname\\u{a}"), "{text:?}");
    }

    #[test]
    fn unknown_size_shows_the_bytes_moved() {
        let out = Shared::default();
        let progress = PlainProgress::new(Box::new(out.clone()));
        let blob = progress.blob("pack", 0);
        blob.advance(3 << 20);
        blob.finish("packed");
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(text.starts_with("pack: 3.0 MiB packed in "), "{text}");
    }

    #[test]
    fn plain_reports_a_running_transfer_every_interval_with_rate_and_total() {
        let out = Shared::default();
        let progress =
            PlainProgress::with_interval(Box::new(out.clone()), Duration::from_millis(20));
        let pack = progress.work("tree: pack");
        pack.grow(4 << 20);
        pack.advance(1 << 20);
        assert!(
            out.0.lock().unwrap().is_empty(),
            "printed before an interval"
        );
        std::thread::sleep(Duration::from_millis(30));
        pack.advance(1 << 20);
        pack.advance(1 << 20);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "one line per interval: {text}");
        assert!(
            text.starts_with("tree: pack: 2.0 MiB of 4.0 MiB (50%), ") && text.ends_with("/s\n"),
            "{text}"
        );
        pack.finish("packed");
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with("tree: pack: 3.0 MiB packed in "),
            "{text}"
        );
    }

    #[test]
    fn a_running_line_without_a_total_shows_bytes_and_rate() {
        let line = running_line("x", 10 << 20, 0, Duration::from_secs(2));
        assert_eq!(line, "x: 10.0 MiB, 5.0 MiB/s");
        let line = running_line("x", 1 << 20, 4 << 20, Duration::from_secs(1));
        assert_eq!(line, "x: 1.0 MiB of 4.0 MiB (25%), 1.0 MiB/s");
    }

    #[test]
    fn progress_reader_counts_every_byte() {
        #[derive(Default)]
        struct Count(AtomicU64);
        impl BlobProgress for Count {
            fn advance(&self, bytes: u64) {
                self.0.fetch_add(bytes, Ordering::Relaxed);
            }
            fn finish(&self, _: &str) {}
        }
        let count = Arc::new(Count::default());
        let mut reader = ProgressReader::new(&[7u8; 10_000][..], count.clone());
        let mut sink = Vec::new();
        io::copy(&mut reader, &mut sink).unwrap();
        assert_eq!(count.0.load(Ordering::Relaxed), 10_000);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }
}
