//! `unistore-bench-orc LIST [PASSES]`: open, read to the end and close every
//! file named in LIST (one path per line, or NUL-separated as bench/run.sh
//! writes its lists), PASSES times (default 3), and print
//! the mean time of each of the three steps per file. Run it on a native tree
//! and on a view of the same files, warm (after one untimed pass) or after
//! `echo 3 > /proc/sys/vm/drop_caches`: the difference is what FUSE adds per
//! open (OPEN round trip) and per close (RELEASE), without `cat`'s own cost.

use std::io::Read;
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        (2..=3).contains(&args.len()),
        "usage: unistore-bench-orc LIST [PASSES]"
    );
    let paths: Vec<String> = std::fs::read_to_string(&args[1])?
        .split(['\0', '\n'])
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(!paths.is_empty(), "{} names no file", args[1]);
    let passes: u32 = args.get(2).map_or(Ok(3), |p| p.parse())?;
    let (mut open, mut read, mut close) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut buf = vec![0u8; 64 << 10];
    for _ in 0..passes {
        for p in &paths {
            let t0 = Instant::now();
            let mut f = std::fs::File::open(p).map_err(|e| anyhow::anyhow!("{p}: {e}"))?;
            let t1 = Instant::now();
            while f.read(&mut buf)? > 0 {}
            let t2 = Instant::now();
            drop(f);
            let t3 = Instant::now();
            open += t1 - t0;
            read += t2 - t1;
            close += t3 - t2;
        }
    }
    let n = f64::from(passes) * paths.len() as f64;
    let us = |d: Duration| d.as_secs_f64() * 1e6 / n;
    println!(
        "{} files x {passes}: open {:.2} us, read {:.2} us, close {:.2} us per file",
        paths.len(),
        us(open),
        us(read),
        us(close)
    );
    Ok(())
}
