//! `unistore-bench-cfs-fuse IMAGE.erofs OBJECTS_DIR MOUNTPOINT`: serve a
//! composefs EROFS image with composefs-rs's own FUSE server (`composefs-fuse`
//! crate, as it comes: its default single-threaded session, no passthrough),
//! file contents from OBJECTS_DIR (a composefs repository's `objects/`).
//! Prints `ready` on stdout once mounted; serves until unmounted.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use rustix::fs::{open, Mode, OFlags};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, image, objects, mnt] = &args[..] else {
        anyhow::bail!("usage: unistore-bench-cfs-fuse IMAGE.erofs OBJECTS_DIR MOUNTPOINT");
    };
    let image_fd = open(image.as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .with_context(|| format!("opening {image}"))?;
    let objects_fd = open(
        objects.as_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {objects}"))?;
    let (r, w) = rustix::pipe::pipe()?;
    let waiter = std::thread::spawn(move || {
        let mut b = [0u8; 1];
        if rustix::io::read(&r, &mut b).unwrap_or(0) == 1 {
            println!("ready");
            let _ = std::io::stdout().flush();
        }
    });
    composefs_fuse::serve_fuse(
        mnt,
        image_fd,
        Arc::new(objects_fd),
        &composefs_fuse::ServeFuseOptions::default(),
        Some(w),
    )
    .context("serving")?;
    let _ = waiter.join();
    Ok(())
}
