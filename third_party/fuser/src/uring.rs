//! unistore patch: FUSE over io_uring (Linux 6.14+).
//!
//! With `/dev/fuse`, every request wakes whichever worker thread waits first,
//! usually on another CPU than the process that made the request. With the
//! kernel's FUSE-over-io_uring transport the kernel queues a request on the
//! ring of the CPU it was made on; this module runs one queue per possible CPU,
//! each in a thread pinned to its CPU, so a request and its reply stay on one
//! CPU.
//!
//! The protocol (include/uapi/linux/fuse.h, fs/fuse/dev_uring.c): every entry
//! of a queue is a header buffer (`struct fuse_uring_req_header`: 128 bytes
//! for the in/out header, 128 for the opcode's own header, then `struct
//! fuse_uring_ent_in_out`) and a payload buffer, registered once with
//! `FUSE_IO_URING_CMD_REGISTER` (an `IORING_OP_URING_CMD` on the `/dev/fuse`
//! fd, 128-byte SQEs, `addr`/`len` = the two iovecs). The kernel completes the
//! command when it puts a request into the entry; the reply is written back
//! into the same buffers and `FUSE_IO_URING_CMD_COMMIT_AND_FETCH` both sends it
//! and hands the entry back for the next request.
//!
//! A request is reassembled into the `/dev/fuse` layout (in header, opcode
//! header, payload) and dispatched exactly as one read from `/dev/fuse`; the
//! reply, collected by [`RingReply`], is split back into out header and payload.
//! INIT, FORGET and INTERRUPT still come through `/dev/fuse`, so the ordinary
//! worker threads keep running.

use std::io;
use std::io::IoSlice;
use std::os::fd::AsFd;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread;

use io_uring::IoUring;
use io_uring::cqueue;
use io_uring::opcode;
use io_uring::squeue;
use io_uring::types;
use log::debug;
use log::info;
use log::warn;

use crate::Filesystem;
use crate::channel::ChannelSender;
use crate::request::RequestWithSender;
use crate::session::SessionEventLoop;

/// `sizeof(struct fuse_uring_req_header)`
const HEADER_SZ: usize = 128 + 128 + 32;
/// Offset of `op_in` in the header buffer.
const OP_IN_OFF: usize = 128;
/// Size of `op_in`.
const OP_IN_SZ: usize = 128;
/// Offset of `struct fuse_uring_ent_in_out` (flags u64, commit_id u64,
/// payload_sz u32, padding u32, reserved u64).
const ENT_OFF: usize = 256;
/// `sizeof(struct fuse_in_header)`
const IN_HEADER_SZ: usize = 40;
/// `sizeof(struct fuse_out_header)`
const OUT_HEADER_SZ: usize = 16;
const CMD_REGISTER: u32 = 1;
const CMD_COMMIT_AND_FETCH: u32 = 2;
/// `FUSE_URING_IOV_SEGS`: header buffer and payload buffer.
const IOV_SEGS: u32 = 2;

/// Where the reply to the request in one ring entry goes (see
/// `ReplySender::Ring`).
/// A handler answers while it is dispatched (the reply is committed at
/// once), or keeps its reply object and answers later from another thread
/// (e.g. after a disk read): then `send` queues the entry in `Deferred` and
/// wakes the queue's thread, which commits it, while it goes on serving the
/// queue's other entries meanwhile.
#[derive(Debug)]
pub(crate) struct RingReply {
    ch: ChannelSender,
    idx: usize,
    state: Mutex<ReplyState>,
    deferred: Arc<Deferred>,
}

#[derive(Debug, Default)]
struct ReplyState {
    buf: Vec<u8>,
    /// The request is being dispatched by the queue's thread.
    in_dispatch: bool,
    /// `buf` holds the reply.
    replied: bool,
}

/// Entries whose reply came after their dispatch, and the pipe that wakes
/// the queue's thread for them.
#[derive(Debug)]
struct Deferred {
    done: Mutex<Vec<usize>>,
    /// Write end, non-blocking: a full pipe already holds a wake-up.
    wake: std::os::fd::OwnedFd,
}

impl RingReply {
    pub(crate) fn send(&self, data: &[IoSlice<'_>]) -> io::Result<()> {
        let mut st = self.state.lock().expect("ring reply");
        st.buf.clear();
        for d in data {
            st.buf.extend_from_slice(d);
        }
        st.replied = true;
        if !st.in_dispatch {
            drop(st);
            self.deferred.done.lock().expect("deferred").push(self.idx);
            // Pushed before the byte is written, so the thread that reads the
            // byte finds the entry.
            let _ = nix::unistd::write(&self.deferred.wake, &[1u8]);
        }
        Ok(())
    }

    /// The `/dev/fuse` channel (for backing-file ioctls).
    pub(crate) fn channel(&self) -> &ChannelSender {
        &self.ch
    }
}

/// `struct iovec`
#[repr(C)]
struct IoVec {
    base: *mut u8,
    len: usize,
}

#[repr(C, align(64))]
struct Header([u8; HEADER_SZ]);

/// One ring entry's buffers; their addresses are given to the kernel at
/// registration and must not move or be freed while the ring lives.
struct Ent {
    header: Box<Header>,
    payload: Box<[u8]>,
    iov: Box<[IoVec; 2]>,
}

impl Ent {
    fn new(payload: usize) -> Ent {
        let mut header = Box::new(Header([0; HEADER_SZ]));
        let mut payload = vec![0u8; payload].into_boxed_slice();
        let iov = Box::new([
            IoVec {
                base: header.0.as_mut_ptr(),
                len: HEADER_SZ,
            },
            IoVec {
                base: payload.as_mut_ptr(),
                len: payload.len(),
            },
        ]);
        Ent {
            header,
            payload,
            iov,
        }
    }

    fn u32_at(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.header.0[off..off + 4].try_into().expect("4 bytes"))
    }

    fn u64_at(&self, off: usize) -> u64 {
        u64::from_ne_bytes(self.header.0[off..off + 8].try_into().expect("8 bytes"))
    }
}

/// An `IORING_OP_URING_CMD` for `/dev/fuse` (`struct fuse_uring_cmd_req` in
/// the SQE's command area).
fn uring_cmd(
    fd: types::Fd,
    op: u32,
    commit_id: u64,
    qid: u16,
    iov: Option<&[IoVec; 2]>,
    user_data: u64,
) -> squeue::Entry128 {
    let mut cmd = [0u8; 80];
    cmd[8..16].copy_from_slice(&commit_id.to_ne_bytes());
    cmd[16..18].copy_from_slice(&qid.to_ne_bytes());
    let mut b = opcode::UringCmd80::new(fd, op).cmd(cmd);
    if let Some(iov) = iov {
        b = b.addr(Some(iov.as_ptr() as u64));
    }
    let sqe = b.build().user_data(user_data);
    if iov.is_none() {
        return sqe;
    }
    // The builder has no `len`: REGISTER wants the iovec count there
    // (`struct io_uring_sqe`: `__u32 len` at byte offset 24).
    // SAFETY: `Entry128` is `#[repr(C)]` over the 128-byte kernel SQE; it is
    // plain data, and every bit pattern of those bytes is a valid SQE value.
    let mut raw: [u8; 128] = unsafe { std::mem::transmute::<squeue::Entry128, [u8; 128]>(sqe) };
    raw[24..28].copy_from_slice(&IOV_SEGS.to_ne_bytes());
    // SAFETY: as above.
    unsafe { std::mem::transmute::<[u8; 128], squeue::Entry128>(raw) }
}

/// The kernel's number of queues: `num_possible_cpus()`.
fn possible_cpus() -> usize {
    let Ok(s) = std::fs::read_to_string("/sys/devices/system/cpu/possible") else {
        return thread::available_parallelism().map_or(1, |n| n.get());
    };
    let mut n = 0;
    for part in s.trim().split(',') {
        n += match part.split_once('-') {
            Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 1,
            },
            None => 1,
        };
    }
    n.max(1)
}

/// Start one queue per possible CPU, `depth` entries each with `payload`-byte
/// payload buffers (at least the connection's largest request or reply).
/// Returns whether any queue thread was started (they hold the filesystem).
pub(crate) fn start<FS: Filesystem>(
    depth: usize,
    payload: usize,
    make: impl Fn(u16) -> SessionEventLoop<FS>,
) -> bool {
    let queues = possible_cpus();
    let (tx, rx) = mpsc::channel();
    let mut started = 0;
    for qid in 0..queues {
        let Ok(qid16) = u16::try_from(qid) else { break };
        let se = make(qid16);
        let tx = tx.clone();
        let spawned = thread::Builder::new()
            .name(format!("fuser-ring-{qid}"))
            .spawn(move || queue(&se, qid16, depth, payload, &tx));
        match spawned {
            Ok(_) => started += 1,
            Err(e) => {
                warn!("FUSE io_uring: cannot start queue {qid}: {e}");
                break;
            }
        }
    }
    drop(tx);
    let mut failed = started < queues;
    for _ in 0..started {
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                warn!("FUSE io_uring: {e}; requests go through /dev/fuse");
                failed = true;
            }
            Err(_) => failed = true,
        }
    }
    if !failed {
        info!("FUSE io_uring: {queues} queues of {depth} entries");
    }
    started > 0
}

fn pin_to_cpu(cpu: usize) {
    let mut set = nix::sched::CpuSet::new();
    if set.set(cpu).is_ok() {
        if let Err(e) = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set) {
            debug!("FUSE io_uring: queue {cpu} not pinned: {e}");
        }
    }
}

/// Serve queue `qid` until the kernel cancels its entries (unmount).
fn queue<FS: Filesystem>(
    se: &SessionEventLoop<FS>,
    qid: u16,
    depth: usize,
    payload: usize,
    registered: &mpsc::Sender<io::Result<()>>,
) {
    pin_to_cpu(usize::from(qid));
    // Declared before the ring, so dropped after it: the kernel lets go of
    // the buffers when the ring closes.
    let mut ents: Vec<Ent> = (0..depth).map(|_| Ent::new(payload)).collect();
    // Where the wake-up pipe's bytes are read to (see `Deferred`); likewise.
    let mut wake_buf = Box::new([0u8; 64]);
    // One more submission for the read of the wake-up pipe.
    let entries = u32::try_from((depth + 1).next_power_of_two()).unwrap_or(1024);
    let mut ring: IoUring<squeue::Entry128, cqueue::Entry> = match IoUring::builder().build(entries)
    {
        Ok(r) => r,
        Err(e) => {
            let _ = registered.send(Err(io::Error::other(format!("io_uring_setup: {e}"))));
            return;
        }
    };
    let fd = types::Fd(se.ch.as_fd().as_raw_fd());
    for (i, e) in ents.iter().enumerate() {
        let sqe = uring_cmd(fd, CMD_REGISTER, 0, qid, Some(&e.iov), i as u64);
        // SAFETY: the iovecs and the buffers they point to live in `ents`,
        // which outlives the ring.
        if unsafe { ring.submission().push(&sqe) }.is_err() {
            let _ = registered.send(Err(io::Error::other("submission queue full")));
            return;
        }
    }
    if let Err(e) = ring.submit() {
        let _ = registered.send(Err(io::Error::other(format!("register queue {qid}: {e}"))));
        return;
    }
    // A registration the kernel refuses completes at once with an error; an
    // accepted one stays pending until a request arrives.
    let early: Vec<(u64, i32)> = ring
        .completion()
        .map(|c| (c.user_data(), c.result()))
        .collect();
    if let Some((_, res)) = early.iter().find(|(_, r)| *r < 0) {
        let _ = registered.send(Err(io::Error::other(format!(
            "register queue {qid}: {}",
            io::Error::from_raw_os_error(-res)
        ))));
        return;
    }
    let (wake_rd, wake_wr) = match wake_pipe() {
        Ok(p) => p,
        Err(e) => {
            let _ = registered.send(Err(io::Error::other(format!("queue {qid}: pipe: {e}"))));
            return;
        }
    };
    let _ = registered.send(Ok(()));
    let mut buf = Vec::with_capacity(64 << 10);
    // One reply sink per entry, reused for every request of that entry.
    let deferred = Arc::new(Deferred {
        done: Mutex::new(Vec::new()),
        wake: wake_wr,
    });
    let sinks: Vec<Arc<RingReply>> = (0..depth)
        .map(|idx| {
            Arc::new(RingReply {
                ch: se.ch.sender(),
                idx,
                state: Mutex::new(ReplyState::default()),
                deferred: Arc::clone(&deferred),
            })
        })
        .collect();
    // Commit id and request id of each entry's request in flight.
    let mut pending = vec![(0u64, 0u64); depth];
    let wake_fd = types::Fd(wake_rd.as_raw_fd());
    let mut wake_armed = false;
    let mut ready = early;
    loop {
        for (i, res) in ready.drain(..) {
            if i == WAKE {
                wake_armed = false;
                if res < 0 && res != -libc::EINTR && res != -libc::EAGAIN {
                    warn!(
                        "FUSE io_uring: queue {qid}: wake-up pipe: {}",
                        io::Error::from_raw_os_error(-res)
                    );
                }
                let done = std::mem::take(&mut *deferred.done.lock().expect("deferred"));
                for idx in done {
                    let (Some(e), Some(sink)) = (ents.get_mut(idx), sinks.get(idx)) else {
                        continue;
                    };
                    let (commit_id, unique) = pending[idx];
                    fill_reply(e, &mut sink.state.lock().expect("ring reply"), unique);
                    let sqe = uring_cmd(fd, CMD_COMMIT_AND_FETCH, commit_id, qid, None, idx as u64);
                    // SAFETY: as below.
                    if unsafe { ring.submission().push(&sqe) }.is_err() {
                        warn!("FUSE io_uring: queue {qid}: submission queue full");
                        return;
                    }
                }
                continue;
            }
            if res < 0 {
                // ENOTCONN / ECANCELED / ENODEV: the connection is gone.
                debug!(
                    "FUSE io_uring: queue {qid} ends: {}",
                    io::Error::from_raw_os_error(-res)
                );
                return;
            }
            let (Some(e), Some(sink)) = (ents.get_mut(i as usize), sinks.get(i as usize)) else {
                continue;
            };
            let (commit_id, unique) = (e.u64_at(ENT_OFF + 8), e.u64_at(8));
            pending[i as usize] = (commit_id, unique);
            if !serve(se, e, &mut buf, sink) {
                // Answered later from another thread (see `RingReply`).
                continue;
            }
            let sqe = uring_cmd(fd, CMD_COMMIT_AND_FETCH, commit_id, qid, None, i);
            // SAFETY: the command carries no pointers (the kernel kept the
            // registered buffers); at most one SQE per entry is in flight.
            if unsafe { ring.submission().push(&sqe) }.is_err() {
                warn!("FUSE io_uring: queue {qid}: submission queue full");
                return;
            }
        }
        if !wake_armed {
            let sqe = opcode::Read::new(wake_fd, wake_buf.as_mut_ptr(), wake_buf.len() as u32)
                .build()
                .user_data(WAKE)
                .into();
            // SAFETY: `wake_buf` is boxed and declared before the ring, so it
            // outlives it; one read into it is in flight at a time.
            if unsafe { ring.submission().push(&sqe) }.is_err() {
                warn!("FUSE io_uring: queue {qid}: submission queue full");
                return;
            }
            wake_armed = true;
        }
        match ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => {
                warn!("FUSE io_uring: queue {qid}: {e}");
                return;
            }
        }
        ready.extend(ring.completion().map(|c| (c.user_data(), c.result())));
    }
}

/// The `user_data` of the wake-up pipe's read.
const WAKE: u64 = u64::MAX;

/// A pipe whose write end does not block.
fn wake_pipe() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    nix::fcntl::fcntl(&wr, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))?;
    Ok((rd, wr))
}

/// Dispatch the request in entry `e`. Returns true when its reply is in the
/// entry, ready to commit; false when the handler kept the reply to answer
/// later (the entry is committed when `RingReply::send` queues it).
fn serve<FS: Filesystem>(
    se: &SessionEventLoop<FS>,
    e: &mut Ent,
    buf: &mut Vec<u8>,
    sink: &Arc<RingReply>,
) -> bool {
    let len = e.u32_at(0) as usize;
    let unique = e.u64_at(8);
    let payload_sz = e.u32_at(ENT_OFF + 16) as usize;
    {
        let mut st = sink.state.lock().expect("ring reply");
        st.buf.clear();
        st.replied = false;
        st.in_dispatch = true;
    }
    let op_sz = len.checked_sub(IN_HEADER_SZ + payload_sz);
    match op_sz {
        Some(op_sz) if op_sz <= OP_IN_SZ && payload_sz <= e.payload.len() => {
            buf.clear();
            buf.extend_from_slice(&e.header.0[..IN_HEADER_SZ]);
            buf.extend_from_slice(&e.header.0[OP_IN_OFF..OP_IN_OFF + op_sz]);
            buf.extend_from_slice(&e.payload[..payload_sz]);
            if let Some(req) = RequestWithSender::new_ring(se.ch.sender(), Arc::clone(sink), buf) {
                req.dispatch(se);
            }
        }
        _ => warn!("FUSE io_uring: malformed request (len {len}, payload {payload_sz})"),
    }
    let mut st = sink.state.lock().expect("ring reply");
    st.in_dispatch = false;
    // Not answered, and a reply object is still alive (only the entry's own
    // reference is left otherwise): it answers later. Its `send` takes this
    // lock, so it cannot slip in between.
    if !st.replied && Arc::strong_count(sink) > 1 {
        return false;
    }
    fill_reply(e, &mut st, unique);
    true
}

/// Write the reply in `st` into entry `e` (EIO if there is none or it does
/// not fit).
fn fill_reply(e: &mut Ent, st: &mut ReplyState, unique: u64) {
    let reply = &mut st.buf;
    let body = if st.replied {
        reply.len().checked_sub(OUT_HEADER_SZ)
    } else {
        None
    };
    match body {
        Some(n) if n <= e.payload.len() => {
            e.header.0[..OUT_HEADER_SZ].copy_from_slice(&reply[..OUT_HEADER_SZ]);
            e.payload[..n].copy_from_slice(&reply[OUT_HEADER_SZ..]);
            e.header.0[ENT_OFF + 16..ENT_OFF + 20].copy_from_slice(&(n as u32).to_ne_bytes());
        }
        _ => {
            // No reply, or one larger than the entry: EIO.
            e.header.0[..4].copy_from_slice(&(OUT_HEADER_SZ as u32).to_ne_bytes());
            e.header.0[4..8].copy_from_slice(&(-libc::EIO).to_ne_bytes());
            e.header.0[8..16].copy_from_slice(&unique.to_ne_bytes());
            e.header.0[ENT_OFF + 16..ENT_OFF + 20].copy_from_slice(&0u32.to_ne_bytes());
        }
    }
    st.replied = false;
    // Keep a small buffer for the next request, not the largest reply seen.
    reply.clear();
    if reply.capacity() > 256 << 10 {
        reply.shrink_to(64 << 10);
    }
}
