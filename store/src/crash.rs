//! Crash points for the crash-safety tests.
//!
//! When `UNISTORE_CRASH_AT=N` is set, the N-th crash point reached (counting
//! from 1) kills the process with SIGKILL, exactly as an outside `kill -9`
//! at that moment would. `UNISTORE_CRASH_TRACE=1` logs every point reached
//! (at `info`), so tests can count them. Unset, a crash point costs one
//! relaxed atomic load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static COUNT: AtomicU64 = AtomicU64::new(0);

fn target() -> Option<u64> {
    static T: OnceLock<Option<u64>> = OnceLock::new();
    *T.get_or_init(|| {
        std::env::var("UNISTORE_CRASH_AT")
            .ok()
            .and_then(|v| v.parse().ok())
    })
}

/// Mark a crash point named `what`.
pub fn point(what: &str) {
    let n = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
    if std::env::var_os("UNISTORE_CRASH_TRACE").is_some() {
        tracing::info!(n, what, "crash point");
    }
    if target() == Some(n) {
        tracing::warn!(n, what, "crash point reached: SIGKILL");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}
