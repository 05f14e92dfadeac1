//! Writing a command's output to stdout when the reader may have gone: `weir runs list |
//! head -1` closes the pipe after one line, which means "seen enough", not a failure. Once
//! stdout is closed the rest of the output is dropped and the command ends as it would
//! have (same work done, same exit code), without `println!`'s panic.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout refused a write: later output is dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` to stdout; a closed pipe silences the rest of the output, any other write
/// error is reported once on stderr.
pub(crate) fn write(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the output to stdout: {e}");
        }
    }
}

/// `println!` that survives a closed stdout (see [`write`]).
macro_rules! outln {
    () => { $crate::cli::out::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::out::write(format_args!("{}\n", format_args!($($arg)*))) };
}
