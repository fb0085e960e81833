//! The layer tar stream → `import_layer` (store/src/layer.rs), against a
//! throwaway composefs repository (one per process).
//!
//! Besides "never panics", a layer the importer accepts must satisfy what
//! the rest of unistore relies on:
//! - its splitstream reproduces the input bit for bit (`layer-tar`);
//! - its tar-split stream, with the file contents, reassembles the input
//!   bit for bit and carries each file's CRC-64 (what containers/storage does);
//! - its index survives `encode` → `LayerIndex::decode` unchanged;
//! - every index path is normalised (no `/` at either end, no `.`/`..`, no `//`).
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::io::Read;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use unistore_store::index::{Kind, LayerIndex};
use unistore_store::layer::import_layer;
use unistore_store::records::LAYER_TAR_CONTENT_TYPE;

fuzz_target!(|data: &[u8]| {
    let store = common::store();
    let repo = store.repo();
    let mut input = data;
    let out = match import_layer(
        repo,
        "fuzz",
        &mut input,
        LAYER_TAR_CONTENT_TYPE,
        &mut |_, _| {},
    ) {
        Ok(out) => out,
        Err(e) => {
            // Refusals must be attributed to the input, not look like an internal failure.
            assert!(
                e.downcast_ref::<unistore_store::StoreError>().is_some(),
                "error is not a StoreError: {e:#}"
            );
            return;
        }
    };

    // 1. The splitstream is the original tar.
    let index = out.index.clone();
    let tarsplit_gz = out.tarsplit_gz.clone();
    let id = out.writer.done().expect("writing the splitstream");
    let mut reader = repo
        .open_stream("", Some(&id), Some(LAYER_TAR_CONTENT_TYPE))
        .expect("opening the splitstream");
    let mut cat = Vec::new();
    reader.cat(repo, &mut cat).expect("reading the splitstream");
    assert!(
        cat == data,
        "splitstream differs from the input ({} vs {} bytes)",
        cat.len(),
        data.len()
    );

    // 2. tar-split + file contents reassemble the input, CRCs match.
    let mut json = String::new();
    flate2::read::GzDecoder::new(&tarsplit_gz[..])
        .read_to_string(&mut json)
        .expect("tar-split is gzip'd UTF-8");
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut pos = 0usize;
    let mut files = 0usize;
    for line in json.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("tar-split line is JSON");
        match v["type"].as_u64() {
            Some(2) => {
                let p = b64
                    .decode(v["payload"].as_str().expect("segment payload"))
                    .unwrap();
                assert!(
                    data[pos..].starts_with(&p),
                    "tar-split segment at {pos} differs"
                );
                pos += p.len();
            }
            Some(1) => {
                files += 1;
                let size = v["size"].as_u64().unwrap_or(0) as usize;
                if size > 0 {
                    let crc = b64
                        .decode(v["payload"].as_str().expect("file payload"))
                        .unwrap();
                    let body = data.get(pos..pos + size);
                    let sum = body.map(|b| {
                        unistore_store::digest::CRC64_GO_ISO
                            .checksum(b)
                            .to_be_bytes()
                    });
                    if sum.as_ref().map(|s| &s[..]) == Some(&crc[..]) {
                        pos += size;
                    } else {
                        // A header-only member (link, device, directory...) with a
                        // size field: Go's reader skips no content and tar-split
                        // records the CRC of nothing. So do we.
                        assert_eq!(crc, [0u8; 8], "tar-split CRC of the member at {pos}");
                    }
                }
            }
            t => panic!("tar-split entry of type {t:?}: {line}"),
        }
    }
    assert_eq!(pos, data.len(), "tar-split does not cover the input");
    assert!(
        files as u64 >= out.entries,
        "tar-split lists fewer files than the index"
    );

    // 3. The index round-trips.
    let enc = index.encode().expect("encoding the index");
    assert_eq!(LayerIndex::decode(&enc).expect("decoding the index"), index);

    // 4. Paths are normalised.
    for e in &index.entries {
        let p = &e.path;
        let bad = p.starts_with(b"/")
            || p.ends_with(b"/")
            || p.split(|&b| b == b'/')
                .any(|c| (c.is_empty() && !p.is_empty()) || c == b"." || c == b"..");
        assert!(!bad, "unnormalised path {:?}", String::from_utf8_lossy(p));
        if e.kind == Kind::HardLink {
            assert!(
                !e.link.is_empty() && !e.link.starts_with(b"/"),
                "bad hard link target"
            );
        }
    }
});
