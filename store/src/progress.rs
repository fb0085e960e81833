//! Progress reporting for long operations, without a terminal.

/// Receives progress events from an import. Implemented by the CLI (bars)
/// and by [`NoProgress`].
pub trait Progress {
    /// Layer `index` of `count` starts; `size` is the blob size if known.
    fn layer_start(&mut self, index: usize, count: usize, diff_id: &str, size: Option<u64>);
    /// Bytes of uncompressed tar and members processed so far in this layer.
    fn layer_progress(&mut self, bytes: u64, files: u64);
    /// The layer is done; `reused` when the store already had it.
    fn layer_done(&mut self, reused: bool);
}

/// Ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn layer_start(&mut self, _: usize, _: usize, _: &str, _: Option<u64>) {}
    fn layer_progress(&mut self, _: u64, _: u64) {}
    fn layer_done(&mut self, _: bool) {}
}
