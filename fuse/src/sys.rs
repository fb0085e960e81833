//! The daemon's only `unsafe` code: two glibc allocator calls and one
//! scheduler call. Every use has
//! a `SAFETY:` comment; the rest of the workspace denies `unsafe_code`.

/// Give the allocator's free pages back to the system. Expanding a layer or
/// image tree (or building the ostree view) decodes whole layer indexes and
/// builds merged trees that are dropped right after; glibc keeps those pages
/// (one arena per FUSE thread): walking every view of the bench store left
/// 100 MiB resident, 67 MiB once trimmed.
pub fn release_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; it has no
    // preconditions and is thread-safe.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// One malloc arena for all the daemon's threads (glibc's default is one per
/// thread, up to 8 per CPU, each holding on to its own free pages): with
/// `release_free_memory`, walking every view of the bench store leaves
/// 62 MiB resident instead of 100 MiB (docs/benchmarks.md). Two arenas were
/// enough with two `/dev/fuse` threads; with the io_uring queue threads the
/// trees got split over both (a `find` of every view: 64.9 MiB with two
/// arenas, 56.1 MiB with one; 55.3 MiB over `/dev/fuse`). Call before the FUSE
/// threads start.
pub fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets an allocator parameter; called before the
    // daemon's threads exist.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Run the calling thread, and every thread it creates after, under
/// `SCHED_BATCH` (same weight as `SCHED_OTHER`, but a woken thread does not
/// preempt the one running). A RELEASE is sent in the background when a
/// file is closed; under `SCHED_OTHER` the woken FUSE thread preempts the
/// reader at once (two more context switches per file), under `SCHED_BATCH`
/// it runs when the reader next waits, typically for its next OPEN, and both
/// are served in one wake-up: `close` of a small file 7.9 µs → 2.5 µs, a warm
/// `xargs cat` of 20000 small files 810 → 700 ms (docs/benchmarks.md).
/// Synchronous requests are unaffected: their sender is asleep until served.
pub fn batch_scheduling() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 is
    // the calling thread; the call changes only its scheduling policy.
    #[allow(unsafe_code)]
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
