//! Human and JSON output helpers, progress bars.

use std::io::{IsTerminal, Write};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use unistore_store::progress::Progress;

/// Print JSON (pretty, podman-style) to stdout.
pub fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Human-friendly size like podman prints ("12.3 MB", SI units).
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.3} {}", units[u]).replace(".000 ", " ")
    }
}

/// Progress bars on stderr when it is a terminal.
pub struct Bars {
    multi: MultiProgress,
    current: Option<ProgressBar>,
}

impl Bars {
    /// Bars if stderr is a terminal and not quiet; otherwise `None`.
    pub fn new(quiet: bool) -> Option<Self> {
        (!quiet && std::io::stderr().is_terminal()).then(|| Bars {
            multi: MultiProgress::new(),
            current: None,
        })
    }
}

impl Progress for Bars {
    fn layer_start(&mut self, index: usize, count: usize, diff_id: &str, _size: Option<u64>) {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{prefix} {spinner} {msg} {bytes} ({bytes_per_sec})")
                .expect("valid template"),
        );
        let short = diff_id.trim_start_matches("sha256:");
        bar.set_prefix(format!(
            "layer {}/{} {}",
            index + 1,
            count,
            &short[..12.min(short.len())]
        ));
        self.current = Some(bar);
    }
    fn layer_progress(&mut self, bytes: u64, files: u64) {
        if let Some(b) = &self.current {
            b.set_position(bytes);
            b.set_message(format!("{files} files"));
        }
    }
    fn layer_done(&mut self, reused: bool) {
        if let Some(b) = self.current.take() {
            if reused {
                b.finish_with_message("already stored");
            } else {
                b.finish();
            }
        }
    }
}
