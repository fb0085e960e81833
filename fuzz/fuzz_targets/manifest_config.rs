//! Manifest and config JSON as the importer consumes them:
//! `import::read_head` (store/src/import.rs), the validation every import
//! runs before writing anything, fed from memory.
//!
//! Input: `MANIFEST \0 CONFIG`.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use unistore_store::source::{Descriptor, ImageSource, LayerStream};

struct MemSource<'a> {
    manifest: &'a [u8],
    config: &'a [u8],
}

impl ImageSource for MemSource<'_> {
    fn describe(&self) -> String {
        "fuzz".into()
    }
    fn manifest(&mut self) -> anyhow::Result<Vec<u8>> {
        Ok(self.manifest.to_vec())
    }
    fn names(&self) -> Vec<String> {
        Vec::new()
    }
    fn config(&mut self, _desc: &Descriptor) -> anyhow::Result<Vec<u8>> {
        Ok(self.config.to_vec())
    }
    fn layer(&mut self, _: usize, _: &Descriptor, _: &str) -> anyhow::Result<LayerStream<'_>> {
        anyhow::bail!("no layers in memory")
    }
}

fuzz_target!(|data: &[u8]| {
    let parts = common::split_nul(data, 2);
    let mut src = MemSource {
        manifest: parts[0],
        config: parts[1],
    };
    match unistore_store::import::read_head(&mut src) {
        Ok(head) => {
            for d in head.diff_ids() {
                unistore_store::digest::parse_sha256("diff_id", d)
                    .expect("accepted diffID is sha256");
            }
        }
        Err(e) => assert!(
            e.downcast_ref::<unistore_store::StoreError>().is_some(),
            "error is not a StoreError: {e:#}"
        ),
    }
});
