//! The daemon's only `unsafe` code: two glibc allocator calls. Every use has
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
