//! Progress on standard error: bars on a terminal, and one plain line every [`LOG_EVERY`] (or
//! every `BMP_PROGRESS_SECS` seconds) when standard error is something else (a log file, a
//! pipe).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// How often progress goes to standard error as a line when it is not a terminal, unless the
/// environment variable `BMP_PROGRESS_SECS` says otherwise.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// The interval of progress lines: `BMP_PROGRESS_SECS` (seconds, 0 for every update), or
/// [`LOG_EVERY`].
fn log_every() -> Duration {
    std::env::var("BMP_PROGRESS_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(LOG_EVERY, Duration::from_secs_f64)
}

/// A byte-count bar for reading an input of `len` bytes.
pub fn bytes_bar(len: u64, message: &str) -> ProgressBar {
    bar(
        len,
        message,
        "{msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        "{msg}: {bytes}/{total_bytes} ({percent}%), {bytes_per_sec}, {elapsed} elapsed, eta {eta}",
    )
}

/// A count bar for `len` items.
pub fn count_bar(len: u64, message: &str) -> ProgressBar {
    bar(
        len,
        message,
        "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} eta {eta}",
        "{msg}: {pos}/{len} ({percent}%), {per_sec}, {elapsed} elapsed, eta {eta}",
    )
}

/// A bar drawn with `bar_template` on a terminal, or logged with `line_template`.
fn bar(len: u64, message: &str, bar_template: &str, line_template: &str) -> ProgressBar {
    let terminal = std::io::stderr().is_terminal();
    let (target, template) = if terminal {
        (ProgressDrawTarget::stderr(), bar_template)
    } else {
        (
            ProgressDrawTarget::term_like_with_hz(Box::new(LogLines::default()), 2),
            line_template,
        )
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(message.to_owned());
    bar
}

/// A callback for the index builder's `(stage, done, total)` progress reports.
pub fn stage_reporter(bar: &ProgressBar) -> impl FnMut(&'static str, u64, u64) + '_ {
    move |stage, done, total| {
        if bar.length() != Some(total) {
            bar.set_length(total);
        }
        bar.set_message(stage);
        bar.set_position(done);
    }
}

/// The pipeline's [`bmp_eval::Progress`] shown as bars (or lines): one bar per stage, notes
/// printed above it.
#[derive(Debug, Default)]
pub struct StageBars {
    current: Mutex<Option<(String, ProgressBar)>>,
}

impl bmp_eval::Progress for StageBars {
    fn update(&self, stage: &str, done: u64, total: u64) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_none_or(|(s, _)| s != stage) {
            if let Some((_, bar)) = current.take() {
                bar.finish_and_clear();
            }
            *current = Some((stage.to_owned(), count_bar(total, stage)));
        }
        if let Some((_, bar)) = current.as_ref() {
            if bar.length() != Some(total) {
                bar.set_length(total);
            }
            bar.set_position(done);
        }
    }

    fn finish(&self) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, bar)) = current.take() {
            bar.finish_and_clear();
        }
    }

    fn note(&self, message: &str) {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        match current.as_ref() {
            Some((_, bar)) => bar.suspend(|| eprintln!("{message}")),
            None => eprintln!("{message}"),
        }
    }
}

/// A "terminal" that writes what a bar draws as a plain line on standard error, once every
/// [`LOG_EVERY`] (work done sooner logs nothing; `BMP_PROGRESS_SECS` sets the interval), and
/// ignores cursor moves and clearing.
#[derive(Debug)]
struct LogLines {
    last: Mutex<Instant>,
    every: Duration,
}

impl Default for LogLines {
    fn default() -> Self {
        LogLines {
            last: Mutex::new(Instant::now()),
            every: log_every(),
        }
    }
}

impl LogLines {
    fn log(&self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() >= self.every {
            *last = Instant::now();
            eprintln!("{line}");
        }
    }
}

impl TermLike for LogLines {
    fn width(&self) -> u16 {
        160
    }

    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.log(s);
        Ok(())
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.log(s);
        Ok(())
    }

    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}
