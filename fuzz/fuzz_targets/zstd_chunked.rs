//! The zstd:chunked TOC reader and planner (store/src/chunked.rs):
//! `TocLocation::from_annotations`, `Toc::parse`, `Toc::plan`.
//!
//! Input: one mode byte, two little-endian u32 (where the tar data ends in
//! the blob; the TOC's uncompressed length, used with bit 0 clear), then the
//! data. Mode bit 0 clear: the data is a compressed TOC as
//! a blob holds it. Set: the data is the TOC's JSON, compressed here first, so
//! that mutations reach the JSON checks. Bit 1: the data is instead a
//! `manifest-position` annotation value. The checksum annotation is always
//! right (computed here), so every input gets past it.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use unistore_store::chunked::{LocalContent, PlanOptions, Toc, TocLocation};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some((head, rest)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let (end, claimed) = head.split_at(4);
    let key = if mode & 4 == 0 {
        "io.github.containers.zstd-chunked."
    } else {
        "io.containers.zstd-chunked."
    };
    if mode & 2 != 0 {
        let ann = HashMap::from([
            (
                format!("{key}manifest-position"),
                String::from_utf8_lossy(rest).into_owned(),
            ),
            (
                format!("{key}manifest-checksum"),
                format!("sha256:{}", "0".repeat(64)),
            ),
        ]);
        let _ = TocLocation::from_annotations(&ann);
        return;
    }
    let data_end = u64::from(u32::from_le_bytes(end.try_into().unwrap()));
    let owned;
    let (toc, uncompressed) = if mode & 1 == 0 {
        let claimed = u32::from_le_bytes(claimed.try_into().unwrap());
        (rest, u64::from(claimed))
    } else {
        owned = zstd::encode_all(rest, 1).unwrap();
        (&owned[..], rest.len() as u64)
    };
    let offset = data_end + 8;
    let ann = HashMap::from([
        (
            format!("{key}manifest-position"),
            format!("{offset}:{}:{uncompressed}:1", toc.len()),
        ),
        (
            format!("{key}manifest-checksum"),
            format!("sha256:{}", hex::encode(Sha256::digest(toc))),
        ),
    ]);
    let Ok(Some(loc)) = TocLocation::from_annotations(&ann) else {
        return;
    };
    let Ok(toc) = Toc::parse(toc, &loc) else {
        return;
    };
    let blob_size = loc.range().end + 48;
    for gap in [0, 1 << 16] {
        let plan = toc
            .plan(blob_size, &PlanOptions { merge_gap: gap }, |_, size| {
                (size <= 1 << 16).then(|| LocalContent::Inline(vec![0; size as usize]))
            })
            .expect("a parsed TOC fits its blob");
        let ranges: Vec<_> = plan.fetch_ranges().collect();
        for w in ranges.windows(2) {
            assert!(w[0].end < w[1].start, "fetch ranges sorted and disjoint");
        }
        assert!(ranges.iter().all(|r| r.start < r.end && r.end <= data_end));
        assert_eq!(plan.fetch_bytes + plan.reused_compressed_bytes, data_end);
    }
});
