//! Mount options: `mount.fuse.unistore` argv (`unistore_mount_helper::parse`)
//! and the daemon's own `-o`/`--view` parsers in the CLI (`unistore mount`).
//!
//! Input: UTF-8, one argument per line. Whatever the helper accepts, the
//! command it builds must parse (clap) and pass the CLI's option and view
//! parsers; the CLI is only ever run against a store that does not exist,
//! so it stops right after parsing, at "not a unistore store".
#![no_main]

use clap::Parser as _;
use libfuzzer_sys::fuzz_target;
use unistore_cli::{App, Cmd};
use unistore_store::StoreError;

const NO_STORE: &str = "/nonexistent/unistore-fuzz-store";

fn run_mount(options: Vec<String>, view: String) -> anyhow::Result<()> {
    unistore_cli::run(App {
        store: NO_STORE.into(),
        cmd: Cmd::Mount {
            mountpoint: "/nonexistent/unistore-fuzz-mnt".into(),
            foreground: true,
            options,
            view,
        },
    })
}

fn is_no_store(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<StoreError>(),
        Some(StoreError::NotInitialized { .. })
    )
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let args: Vec<&str> = text.split('\n').collect();

    // The CLI's parsers on their own: -o values are the lines, the last line the view.
    let (view, opts) = args.split_last().expect("split yields at least one item");
    let _ = run_mount(
        opts.iter().map(|s| s.to_string()).collect(),
        view.to_string(),
    );

    // The helper, and the agreement between helper and daemon.
    let Ok(inv) = unistore_mount_helper::parse(&args) else {
        return;
    };
    let mut argv = vec!["unistore".to_string()];
    argv.extend(inv.unistore_args());
    let app = App::try_parse_from(&argv).unwrap_or_else(|e| {
        panic!("helper accepted {args:?} but built argv {argv:?} that clap refuses: {e}")
    });
    let Cmd::Mount { options, view, .. } = app.cmd else {
        panic!("helper built a non-mount command: {argv:?}");
    };
    if let Err(e) = run_mount(options, view) {
        assert!(
            is_no_store(&e),
            "helper accepted {args:?} but `unistore {}` refuses it: {e:#}",
            argv[1..].join(" ")
        );
    }
});
