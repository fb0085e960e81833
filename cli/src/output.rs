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

/// Bars of a pull (one per layer), shared with the download threads.
#[derive(Debug, Clone)]
pub struct PullBars {
    multi: MultiProgress,
    bars: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<usize, ProgressBar>>>,
}

impl PullBars {
    /// Remove unfinished bars (after an error).
    pub fn clear(&self) {
        let bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        for b in bars.values() {
            if !b.is_finished() {
                b.abandon();
            }
        }
        let _ = self.multi.clear();
    }

    fn event(&self, e: &unistore_registry::Event) {
        use unistore_registry::{Event, Mode};
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        match e {
            Event::Resolved { .. } => {}
            Event::LayerStart {
                index,
                digest,
                size,
                mode,
            } => {
                let bar = self.multi.add(ProgressBar::new(*size));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                let short = digest.trim_start_matches("sha256:");
                bar.set_prefix(format!("blob {}", &short[..12.min(short.len())]));
                if *mode == Mode::Present {
                    bar.finish_with_message("already stored");
                } else if *mode == Mode::Resumed {
                    bar.set_message("resuming");
                }
                bars.insert(*index, bar);
            }
            Event::LayerProgress { index, bytes, .. } => {
                if let Some(b) = bars.get(index) {
                    b.set_position(*bytes);
                }
            }
            Event::LayerDone {
                index,
                downloaded,
                mode,
            } => {
                if let Some(b) = bars.get(index) {
                    if !b.is_finished() {
                        b.finish_with_message(
                            format!("{mode:?}, {} received", human_size(*downloaded))
                                .to_lowercase(),
                        );
                    }
                }
            }
        }
    }
}

/// The event sink of a pull for `kind`, and the bars to clean up if any.
pub fn pull_events(
    kind: crate::ProgressKind,
    json_report: bool,
) -> (unistore_registry::pull::EventSink, Option<PullBars>) {
    use std::sync::Arc;
    match kind {
        crate::ProgressKind::Json => (
            Arc::new(|e: &unistore_registry::Event| {
                let mut out = std::io::stdout().lock();
                if serde_json::to_writer(&mut out, e).is_ok() {
                    let _ = writeln!(out);
                    let _ = out.flush();
                }
            }),
            None,
        ),
        crate::ProgressKind::Bar if !json_report && std::io::stderr().is_terminal() => {
            let bars = PullBars {
                multi: MultiProgress::new(),
                bars: Default::default(),
            };
            let b2 = bars.clone();
            (
                Arc::new(move |e: &unistore_registry::Event| b2.event(e)),
                Some(bars),
            )
        }
        _ => (Arc::new(|_: &unistore_registry::Event| {}), None),
    }
}
