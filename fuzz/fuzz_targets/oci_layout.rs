//! An OCI layout directory (`oci:DIR[:REF]`): `index.json`, then the
//! manifest and config blobs it leads to, through the real source
//! (store/src/source.rs) and the importer's validation (`import::read_head`).
//!
//! Input: `INDEX \0 MANIFEST \0 CONFIG \0 REF`. So that digests can match,
//! `@MD@`/`@MS@` in the index become the manifest's digest/size and
//! `@CD@`/`@CS@` in the manifest the config's. An empty REF means none.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::fs;

use libfuzzer_sys::fuzz_target;
use unistore_store::digest::sha256_digest;
use unistore_store::SourceRef;

fuzz_target!(|data: &[u8]| {
    let parts = common::split_nul(data, 4);
    let config = parts[2];
    let manifest = common::replace(parts[1], b"@CD@", sha256_digest(config).as_bytes());
    let manifest = common::replace(&manifest, b"@CS@", config.len().to_string().as_bytes());
    let index = common::replace(parts[0], b"@MD@", sha256_digest(&manifest).as_bytes());
    let index = common::replace(&index, b"@MS@", manifest.len().to_string().as_bytes());

    let dir = common::scratch().join("layout");
    let blobs = dir.join("blobs/sha256");
    if !blobs.is_dir() {
        fs::create_dir_all(&blobs).unwrap();
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    }
    fs::write(dir.join("index.json"), &index).unwrap();
    let blob_paths: Vec<_> = [&manifest[..], config]
        .iter()
        .map(|blob| {
            let p = blobs.join(&sha256_digest(blob)["sha256:".len()..]);
            fs::write(&p, blob).unwrap();
            p
        })
        .collect();
    let reference = std::str::from_utf8(parts[3])
        .ok()
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    let src = SourceRef::OciDir {
        path: dir.clone(),
        reference,
    };
    let res = unistore_store::source::open(&src).and_then(|mut s| {
        let _ = s.names();
        unistore_store::import::read_head(&mut *s)
    });
    for p in blob_paths {
        let _ = fs::remove_file(p);
    }
    if let Err(e) = res {
        assert!(
            e.downcast_ref::<unistore_store::StoreError>().is_some(),
            "error is not a StoreError: {e:#}"
        );
    }
});
