//! The CLI's status output in one place: what a command tells its operator on stderr while it
//! works (status lines, progress bars), kept apart from results (stdout) and from tracing events
//! (`--log` / `MEDU1_LOG`, which report the same run for logs and are off by default).
//!
//! Every progress bar is built here, so bars share one look and the same fallback when a template
//! does not parse; [`say`] prints a line above a bar without tearing it.

use indicatif::{ProgressBar, ProgressStyle};

/// A status line on stderr (progress, what was written where); results go to stdout.
macro_rules! note {
    ($($arg:tt)*) => {
        ::std::eprintln!($($arg)*)
    };
}
pub(crate) use note;

/// A progress bar of `len` units drawn with an indicatif `template`.
pub fn bar(len: u64, template: &str) -> ProgressBar {
    ProgressBar::new(len).with_style(style(template))
}

/// A bar in indicatif's default style, drawn only when `show` (small jobs finish before a bar
/// would tell anything).
pub fn plain_bar(len: u64, show: bool) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if !show {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

/// The style of [`bar`]: `template`, or indicatif's default bar if it does not parse.
pub fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// The bar of a training loop (`medu1 train`, `medu1 sft`), at step `pos` of `len`.
pub fn steps_bar(len: u64, pos: u64) -> ProgressBar {
    let bar = bar(
        len,
        "{bar:30} {pos}/{len} steps [{elapsed_precise}<{eta_precise}] {msg}",
    );
    bar.set_position(pos);
    bar
}

/// Prints above a progress bar, or plainly when the bar is hidden (not a terminal).
pub fn say(bar: &ProgressBar, msg: String) {
    if bar.is_hidden() {
        note!("{msg}");
    } else {
        bar.println(msg);
    }
}
