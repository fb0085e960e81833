//! The on-disk layer index reader, `LayerIndex::decode` (store/src/index.rs).
//!
//! Input: one mode byte, then the data. Mode bit 0 clear: the data is an
//! index object as stored (zstd'd bincode). Set: the data is raw bincode,
//! compressed here first, so that mutations reach the bincode decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unistore_store::index::LayerIndex;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let owned;
    let obj = if mode & 1 == 0 {
        rest
    } else {
        owned = zstd::encode_all(rest, 1).unwrap();
        &owned[..]
    };
    if let Ok(idx) = LayerIndex::decode(obj) {
        let again = LayerIndex::decode(&idx.encode().expect("re-encoding")).expect("re-decoding");
        assert_eq!(again, idx, "index does not round-trip");
    }
});
