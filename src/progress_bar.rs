//! Progress bars on stderr, drawn only when it is a terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

use crate::snapshot::{Progress, Silent};

struct Bar {
    bar: ProgressBar,
    /// Counting bytes (restore knows them up front) rather than files.
    by_bytes: AtomicBool,
}

impl Progress for Bar {
    fn start(&self, files: u64, bytes: u64) {
        let by_bytes = bytes > 0;
        self.by_bytes.store(by_bytes, Ordering::Relaxed);
        let template = if by_bytes {
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}"
        } else {
            "{msg} [{bar:30}] {pos}/{len} files {eta}"
        };
        self.bar.set_style(
            ProgressStyle::with_template(template)
                .expect("valid template")
                .progress_chars("=> "),
        );
        self.bar.set_length(if by_bytes { bytes } else { files });
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(if self.by_bytes.load(Ordering::Relaxed) {
            bytes
        } else {
            1
        });
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A bar labelled `message` when stderr is a terminal, else nothing.
pub fn for_terminal(message: &'static str) -> Arc<dyn Progress> {
    if !std::io::stderr().is_terminal() {
        return Arc::new(Silent);
    }
    Arc::new(Bar {
        bar: ProgressBar::new(0).with_message(message),
        by_bytes: AtomicBool::new(false),
    })
}
