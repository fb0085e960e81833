//! Read-ahead across small files (mount option `prefetch`, on by default).
//!
//! A small file is served with `pread` from its backing object at its first
//! READ (see `UnistoreFs::do_open`). Cold, that READ waits for two disk
//! reads in a row, the object's inode (the objects are spread over 256
//! directories by digest, so their inodes have no locality) and then its
//! data, where a native tree needs mostly the data read. Programs that read
//! many files (`tar`, `cp -r`, `cat` of a `find` list, podman's copy-up) open
//! them in tree order, and a tree's files have neighbouring node numbers
//! (each image or layer tree is numbered in one go, in index order). So when
//! the opens of small files walk the node numbers in one direction, the
//! worker threads here open the next files' objects and ask for their pages
//! (`POSIX_FADV_WILLNEED`), several at once, while the reader is still busy
//! with the current file: the disk reads overlap instead of queueing behind
//! one another.
//!
//! Nothing is prefetched for a file the kernel already holds: a node whose
//! content was READ is marked, and the mark is cleared when the kernel
//! forgets the node (its pages went with it). Warm readers therefore cost
//! the workers nothing. The measurements are in docs/benchmarks.md.
//!
//! The same threads serve the READs that would block (see
//! `UnistoreFs::read`): a small file's first READ whose object is not in the
//! page cache is answered from here, ahead of any read-ahead, so that the
//! daemon thread of a CPU (one per CPU over io_uring) goes on serving other
//! readers instead of waiting for the disk.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// How many files ahead of the reader the workers go.
pub const WINDOW: u64 = 32;
/// Opens at most this many node numbers apart still count as one stream
/// (directories, symlinks and large files sit between small files).
const GAP: u64 = 16;
/// Readers followed at once (e.g. `tar` of several trees side by side).
const STREAMS: usize = 8;
/// Queued objects at most; the oldest are dropped beyond it.
const QUEUE_MAX: usize = 1024;

/// One reader walking node numbers.
#[derive(Debug, Clone, Copy, Default)]
struct Stream {
    /// Node opened last.
    last: u64,
    /// +1 or -1 once the direction is known, else 0.
    dir: i64,
    /// Furthest node already handed to the workers, in `dir`.
    frontier: u64,
    /// For replacing the least recently used stream.
    used: u64,
}

/// Work a reader is waiting for (it answers a request).
pub type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    /// Served first, never dropped.
    jobs: VecDeque<Job>,
    paths: VecDeque<PathBuf>,
    stop: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

/// Follows readers and warms the objects they will open next.
pub struct Prefetcher {
    shared: Arc<Shared>,
    streams: Mutex<([Stream; STREAMS], u64)>,
    /// Bit per node: its content was READ and the kernel has not forgotten it.
    cached: Mutex<Vec<u64>>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Prefetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefetcher")
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

impl Prefetcher {
    /// Start `workers` threads.
    pub fn new(workers: usize) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        });
        let workers = (0..workers.max(1))
            .map(|i| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("prefetch-{i}"))
                    .spawn(move || work(&shared))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Prefetcher {
            shared,
            streams: Mutex::new(([Stream::default(); STREAMS], 0)),
            cached: Mutex::new(Vec::new()),
            workers,
        })
    }

    /// A small file `ino` was opened: the node numbers whose objects to warm
    /// now (nearest first), if the opens so far form a stream.
    pub fn on_open(&self, ino: u64) -> Vec<u64> {
        let mut guard = self.streams.lock().expect("lock");
        let (streams, clock) = &mut *guard;
        *clock += 1;
        let now = *clock;
        let hit = streams.iter().position(|s| {
            let d = ino as i64 - s.last as i64;
            s.last != 0 && d != 0 && d.unsigned_abs() <= GAP && (s.dir == 0 || s.dir == d.signum())
        });
        let Some(i) = hit else {
            let lru = (0..STREAMS)
                .min_by_key(|&i| streams[i].used)
                .expect("STREAMS > 0");
            streams[lru] = Stream {
                last: ino,
                dir: 0,
                frontier: ino,
                used: now,
            };
            return Vec::new();
        };
        let s = &mut streams[i];
        let dir = (ino as i64 - s.last as i64).signum();
        if s.dir != dir {
            s.frontier = ino;
        }
        s.dir = dir;
        s.last = ino;
        s.used = now;
        let mut out = Vec::new();
        if dir > 0 {
            let from = s.frontier.max(ino) + 1;
            let to = ino.saturating_add(WINDOW);
            out.extend(from..=to);
            s.frontier = s.frontier.max(to);
        } else {
            let from = s.frontier.min(ino).saturating_sub(1);
            let to = ino.saturating_sub(WINDOW).max(1);
            out.extend((to..=from).rev());
            s.frontier = s.frontier.min(to);
        }
        out
    }

    /// Whether the kernel holds `ino`'s content (it was READ and not forgotten).
    pub fn is_cached(&self, ino: u64) -> bool {
        let bits = self.cached.lock().expect("lock");
        bits.get((ino / 64) as usize)
            .is_some_and(|w| w & (1 << (ino % 64)) != 0)
    }

    /// `ino`'s content was READ: the kernel keeps it (`FOPEN_KEEP_CACHE`).
    pub fn mark_cached(&self, ino: u64) {
        let mut bits = self.cached.lock().expect("lock");
        let w = (ino / 64) as usize;
        if bits.len() <= w {
            bits.resize(w + 1, 0);
        }
        bits[w] |= 1 << (ino % 64);
    }

    /// The kernel forgot `ino`, and its pages with it.
    pub fn forget(&self, ino: u64) {
        let mut bits = self.cached.lock().expect("lock");
        if let Some(w) = bits.get_mut((ino / 64) as usize) {
            *w &= !(1 << (ino % 64));
        }
    }

    /// Queue objects to open and warm.
    pub fn submit(&self, paths: Vec<PathBuf>) {
        if paths.is_empty() {
            return;
        }
        let mut q = self.shared.queue.lock().expect("lock");
        q.paths.extend(paths);
        let excess = q.paths.len().saturating_sub(QUEUE_MAX);
        q.paths.drain(..excess);
        drop(q);
        self.shared.wake.notify_all();
    }

    /// Run `job` on a worker, before any queued read-ahead.
    pub fn run(&self, job: Job) {
        self.shared.queue.lock().expect("lock").jobs.push_back(job);
        self.shared.wake.notify_one();
    }

    /// Stop and join the workers (again: nothing to do).
    fn stop(&mut self) {
        self.shared.queue.lock().expect("lock").stop = true;
        self.shared.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.stop();
    }
}

fn work(shared: &Shared) {
    loop {
        let path = {
            let mut q = shared.queue.lock().expect("lock");
            loop {
                if let Some(job) = q.jobs.pop_front() {
                    drop(q);
                    job();
                    q = shared.queue.lock().expect("lock");
                    continue;
                }
                if q.stop {
                    return;
                }
                if let Some(p) = q.paths.pop_front() {
                    break p;
                }
                q = shared.wake.wait(q).expect("lock");
            }
        };
        // Opening reads the object's inode; WILLNEED starts reading its
        // pages without waiting for them. A missing or unreadable object is
        // left to the READ, which reports it.
        if let Ok(f) = std::fs::File::open(&path) {
            let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::WillNeed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_up_warms_the_window_ahead_once() {
        let p = Prefetcher::new(1).unwrap();
        assert!(p.on_open(100).is_empty(), "one open is not a stream");
        assert_eq!(p.on_open(101), (102..=101 + WINDOW).collect::<Vec<_>>());
        // The next open moves the window by one: only the new node.
        assert_eq!(p.on_open(102), vec![102 + WINDOW]);
        // A skipped directory node still counts.
        assert_eq!(p.on_open(104), vec![103 + WINDOW, 104 + WINDOW]);
    }

    #[test]
    fn a_stream_down_warms_lower_nodes() {
        let p = Prefetcher::new(1).unwrap();
        assert!(p.on_open(500).is_empty());
        let got = p.on_open(499);
        assert_eq!(got.first(), Some(&498));
        assert_eq!(got.last(), Some(&(499 - WINDOW)));
        assert_eq!(p.on_open(498), vec![498 - WINDOW]);
    }

    #[test]
    fn random_opens_warm_nothing_and_streams_are_kept_apart() {
        let p = Prefetcher::new(1).unwrap();
        for ino in [10, 5000, 90_000, 300, 70_000] {
            assert!(p.on_open(ino).is_empty(), "{ino}");
        }
        // Two readers interleaved: each keeps its own stream.
        assert!(p.on_open(1000).is_empty());
        assert!(p.on_open(9000).is_empty());
        assert_eq!(p.on_open(1001).len() as u64, WINDOW);
        assert_eq!(p.on_open(9001).len() as u64, WINDOW);
        assert_eq!(p.on_open(1002), vec![1002 + WINDOW]);
    }

    #[test]
    fn cached_marks_follow_reads_and_forgets() {
        let p = Prefetcher::new(1).unwrap();
        assert!(!p.is_cached(70));
        p.mark_cached(70);
        p.mark_cached(3);
        assert!(p.is_cached(70) && p.is_cached(3) && !p.is_cached(71));
        p.forget(70);
        assert!(!p.is_cached(70) && p.is_cached(3));
        p.forget(1 << 40); // never marked, beyond the bitmap: no effect
    }

    #[test]
    fn workers_warm_queued_objects_and_stop() {
        let dir = std::env::temp_dir().join(format!("unistore-prefetch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("obj");
        std::fs::write(&f, b"content").unwrap();
        let mut p = Prefetcher::new(2).unwrap();
        // A missing object is skipped, the queue goes on.
        p.submit(vec![dir.join("missing"), f.clone()]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !p.shared.queue.lock().unwrap().paths.is_empty() {
            assert!(std::time::Instant::now() < deadline, "queue not drained");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        p.stop();
        assert!(p.workers.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn jobs_run_in_order_and_all_run_before_stop() {
        let mut p = Prefetcher::new(1).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Hold the only worker so that everything below queues up.
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        p.run(Box::new(move || {
            let _ = hold_rx.recv();
        }));
        p.submit(vec![PathBuf::from("/nonexistent/unistore-prefetch-test")]);
        for i in 0..3 {
            let tx = tx.clone();
            p.run(Box::new(move || tx.send(i).unwrap()));
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while p.shared.queue.lock().unwrap().jobs.len() < 3 {
            assert!(std::time::Instant::now() < deadline, "jobs not queued");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(p.shared.queue.lock().unwrap().paths.len(), 1);
        hold_tx.send(()).unwrap();
        let got: Vec<i32> = (0..3)
            .map(|_| rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, vec![0, 1, 2]);
        // A job queued just before stop still runs (it answers a request).
        let tx2 = tx.clone();
        p.run(Box::new(move || tx2.send(9).unwrap()));
        p.stop();
        assert_eq!(rx.try_recv().ok(), Some(9));
    }
}
