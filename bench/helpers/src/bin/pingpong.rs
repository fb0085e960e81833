//! `unistore-bench-pingpong [ROUNDS]`: the cheapest request and reply between
//! two processes, a byte through a pipe and back, with both processes on CPU 0
//! and then with the other one on CPU 1; prints the mean round trip. A FUSE
//! request is at least this (the caller sleeps, the daemon runs, and back),
//! which is the scale for the OPEN round trip in docs/benchmarks.md.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use rustix::thread::{sched_setaffinity, CpuSet};

fn pin(cpu: usize) -> anyhow::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu);
    sched_setaffinity(None, &set)?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--echo") {
        // Child: pinned to CPU args[2], echoes every byte until EOF.
        pin(args[2].parse()?)?;
        let (mut i, mut o) = (std::io::stdin().lock(), std::io::stdout().lock());
        let mut b = [0u8; 1];
        while i.read(&mut b)? == 1 {
            o.write_all(&b)?;
            o.flush()?;
        }
        return Ok(());
    }
    let rounds: u32 = args.get(1).map_or(Ok(200_000), |r| r.parse())?;
    let exe = std::env::current_exe()?;
    for cpu in [0usize, 1] {
        pin(0)?;
        let mut child = Command::new(&exe)
            .args(["--echo", &cpu.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut to = child.stdin.take().expect("piped");
        let mut from = child.stdout.take().expect("piped");
        let mut b = [b'x'; 1];
        // Warm-up, then the timed rounds.
        for _ in 0..1000 {
            to.write_all(&b)?;
            from.read_exact(&mut b)?;
        }
        let t = Instant::now();
        for _ in 0..rounds {
            to.write_all(&b)?;
            from.read_exact(&mut b)?;
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        drop(to);
        child.wait()?;
        println!("caller on CPU 0, echo process on CPU {cpu}: round trip {us:.2} us");
    }
    Ok(())
}
