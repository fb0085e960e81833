//! Image archives (`docker-archive:FILE`, `oci-archive:FILE`): the tar
//! member index, `manifest.json` / `index.json`, configs and layers, all the
//! way through `unistore import` into a throwaway store (one per process).
#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use unistore_store::progress::NoProgress;
use unistore_store::{ImportOptions, SourceRef};

fuzz_target!(|data: &[u8]| {
    let store = common::store();
    let path = common::scratch().join("image.tar");
    std::fs::write(&path, data).unwrap();
    for src in [
        SourceRef::DockerArchive {
            path: path.clone(),
            reference: None,
        },
        SourceRef::OciArchive {
            path: path.clone(),
            reference: None,
        },
    ] {
        if let Err(e) =
            unistore_store::import(store, &src, &ImportOptions::default(), &mut NoProgress)
        {
            assert!(
                e.downcast_ref::<unistore_store::StoreError>().is_some(),
                "error is not a StoreError: {e:#}"
            );
        }
    }
});
