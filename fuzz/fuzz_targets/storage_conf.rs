//! storage.conf editing (containers-conf/src/lib.rs): `add_store`,
//! `remove_store`, `list_stores` on arbitrary files and store paths.
//!
//! Input: `TEXT \0 STORE` (no NUL: STORE is the default mount's view).
//! Invariants: no panic; after `add_store` the store is listed, a second
//! `add_store` changes nothing, and `remove_store` of it leaves exactly the
//! stores the file listed before (none extra, none lost, same order).
#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use unistore_containers_conf::{add_store, list_stores, remove_store};

fuzz_target!(|data: &[u8]| {
    let (text, store) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"/run/unistore/containers-storage"[..]),
    };
    let (Ok(text), Ok(store)) = (std::str::from_utf8(text), std::str::from_utf8(store)) else {
        return;
    };
    let _ = remove_store(text, store);
    let before = list_stores(text);
    let Ok(added) = add_store(text, store) else {
        return;
    };
    let before = before.expect("add_store accepted a file list_stores refuses");
    let listed = list_stores(&added)
        .unwrap_or_else(|e| panic!("add_store wrote a file list_stores refuses ({e}):\n{added}"));
    assert!(
        listed.iter().any(|s| s == store),
        "{store:?} not listed after add_store: {listed:?}\n{added}"
    );
    assert_eq!(
        add_store(&added, store).as_deref(),
        Ok(added.as_str()),
        "add_store is not idempotent"
    );
    let removed = remove_store(&added, store).expect("remove_store refuses what add_store wrote");
    let after = list_stores(&removed).expect("list_stores refuses what remove_store wrote");
    let want: Vec<String> = before.iter().filter(|s| *s != store).cloned().collect();
    assert_eq!(after, want, "remove(add(x)) lists other stores than x:\n--- x\n{text}\n--- add\n{added}\n--- remove\n{removed}");
    if !before.iter().any(|s| s == store) && text.ends_with('\n') {
        // Nothing but our own entry changed: a second round trip is stable.
        let again = remove_store(&add_store(&removed, store).unwrap(), store).unwrap();
        assert_eq!(list_stores(&again).unwrap(), want);
    }
});
