//! Progress bars on standard error (hidden when it is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

/// A byte-count bar for reading an input of `len` bytes.
pub fn bytes_bar(len: u64, message: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(message.to_owned());
    bar
}

/// A count bar for `len` items.
pub fn count_bar(len: u64, message: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
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
