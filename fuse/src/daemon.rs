//! Mounting and the daemon's life: readiness, signals, stale mounts.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fuser::{Config, MountOption, SessionACL};
use unistore_store::Store;

use crate::fs::UnistoreFs;
pub use crate::fs::{Passthrough, ReaddirPlus};

/// How to mount.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Passthrough policy.
    pub passthrough: Passthrough,
    /// FUSE worker threads.
    pub threads: usize,
    /// Views to show.
    pub views: crate::fs::ViewSet,
    /// Check every object's digest before serving it the first time.
    pub verify: bool,
    /// Honour setuid/setgid bits of files in the views (default: `nosuid`).
    pub suid: bool,
    /// Let device nodes in the views be opened (default: `nodev`).
    pub dev: bool,
    /// Have the kernel enforce POSIX ACLs stored in images (`acl`; default
    /// `noacl`): see [`crate::fs::UnistoreFs::with_acl`].
    pub acl: bool,
    /// FUSE over io_uring (`uring=auto|on|off`): see [`crate::fs::UnistoreFs::with_uring`].
    pub uring: Passthrough,
    /// What READDIRPLUS replies carry (`readdirplus=off|dirs|all`; default
    /// `dirs`): see [`crate::fs::ReaddirPlus`].
    pub readdirplus: crate::fs::ReaddirPlus,
    /// Threads warming the next small files of readers that walk a tree
    /// (`prefetch=N`, default 4; 0 = off): see [`crate::prefetch`].
    pub prefetch: usize,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            passthrough: Passthrough::Auto,
            threads: 2,
            views: crate::fs::ViewSet::default(),
            verify: false,
            suid: false,
            dev: false,
            acl: false,
            uring: Passthrough::Auto,
            readdirplus: crate::fs::ReaddirPlus::Dirs,
            prefetch: 4,
        }
    }
}

/// The kernel's switch for FUSE over io_uring (off by default).
const URING_PARAM: &str = "/sys/module/fuse/parameters/enable_uring";

/// Whether the kernel offers FUSE over io_uring to new mounts.
fn uring_enabled() -> bool {
    std::fs::read_to_string(URING_PARAM).is_ok_and(|v| v.trim() == "Y")
}

/// Whether `mnt` is a FUSE mount point (fuser mounts with fstype `fuse`, source = store).
pub fn is_mounted(mnt: &Path) -> bool {
    let Ok(canon) = std::fs::canonicalize(mnt).or_else(|_| Ok::<_, ()>(mnt.to_path_buf())) else {
        return false;
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|&x| x == "-");
        match sep {
            Some(s) if f.len() > s + 1 && f.len() > 4 => {
                unescape(f[4]) == canon.to_string_lossy()
                    && (f[s + 1] == "fuse.unistore" || f[s + 1] == "fuse")
            }
            _ => false,
        }
    })
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// If `mnt` is a dead FUSE mount (daemon killed), detach it so it can be reused.
pub fn clear_stale_mount(mnt: &Path) -> anyhow::Result<bool> {
    match std::fs::metadata(mnt) {
        // ENOTCONN; over FUSE-over-io_uring, the first requests after the
        // daemon died may end with ECONNABORTED or ECANCELED instead.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOTCONN | libc::ECONNABORTED | libc::ECANCELED)
            ) =>
        {
            rustix::mount::unmount(mnt, rustix::mount::UnmountFlags::DETACH)
                .with_context(|| format!("detaching stale mount {}", mnt.display()))?;
            tracing::warn!("detached stale mount at {}", mnt.display());
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Unmount `mnt`; the daemon serving it then exits.
pub fn unmount(mnt: &Path) -> anyhow::Result<()> {
    match rustix::mount::unmount(mnt, rustix::mount::UnmountFlags::empty()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::BUSY) => anyhow::bail!(
            "{} is busy (files open or a mount on top of it)",
            mnt.display()
        ),
        Err(rustix::io::Errno::INVAL) => anyhow::bail!("{} is not mounted", mnt.display()),
        Err(rustix::io::Errno::NOTCONN) => {
            rustix::mount::unmount(mnt, rustix::mount::UnmountFlags::DETACH)?;
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("unmounting {}", mnt.display())),
    }
}

/// Invalidate the kernel's entries for the view roots whenever the catalog
/// is replaced, so the next path lookup reaches the daemon, which rebuilds
/// the views (new nodes) — imports and removals show up at once while
/// everything else keeps long cache times.
fn watch_catalog(store_root: &Path, notifier: fuser::Notifier) {
    use rustix::fs::inotify;
    let fd = match inotify::init(inotify::CreateFlags::CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::warn!(
                "inotify unavailable ({e}); catalog changes show within {:?}",
                crate::fs::VIEW_ROOT_TTL
            );
            return;
        }
    };
    if let Err(e) = inotify::add_watch(
        &fd,
        store_root,
        inotify::WatchFlags::MOVED_TO | inotify::WatchFlags::CLOSE_WRITE,
    ) {
        tracing::warn!("cannot watch {}: {e}", store_root.display());
        return;
    }
    std::thread::spawn(move || {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(&fd, &mut buf);
        loop {
            let changed = match reader.next() {
                Ok(ev) => ev.file_name().is_some_and(|n| {
                    n.to_bytes() == unistore_store::catalog::CATALOG_FILE.as_bytes()
                }),
                Err(rustix::io::Errno::INTR) => false,
                Err(e) => {
                    tracing::warn!("catalog watch stopped: {e}");
                    return;
                }
            };
            if changed {
                tracing::debug!("catalog changed: invalidating view roots");
                for name in ["containers-storage", "ostree", "images"] {
                    // ENOENT (not cached / view not shown) is fine.
                    let _ = notifier.inval_entry(fuser::INodeNo::ROOT, std::ffi::OsStr::new(name));
                }
                let _ = notifier.inval_inode(fuser::INodeNo::ROOT, 0, 0);
            }
        }
    });
}

/// Serve the store at `mnt` until unmounted or SIGTERM/SIGINT.
/// `ready` runs once the mount is live.
pub fn serve(
    store_root: &Path,
    mnt: &Path,
    opts: &MountOptions,
    ready: impl FnOnce(),
) -> anyhow::Result<()> {
    clear_stale_mount(mnt)?;
    crate::sys::limit_malloc_arenas();
    // Before any thread exists: they all inherit it.
    if let Err(e) = crate::sys::batch_scheduling() {
        tracing::warn!("cannot switch to SCHED_BATCH: {e}");
    }
    let uring = match (opts.uring, uring_enabled()) {
        (Passthrough::Off, _) => Passthrough::Off,
        (_, true) => opts.uring,
        (Passthrough::On, false) => anyhow::bail!(
            "uring=on: the kernel does not offer FUSE over io_uring (needs Linux 6.14+ with \
             CONFIG_FUSE_IO_URING, and `echo Y > {URING_PARAM}` as root)"
        ),
        (Passthrough::Auto, false) => Passthrough::Off,
    };
    let store = Store::open(store_root)?;
    let fs = UnistoreFs::new(store, opts.passthrough, opts.views.clone())?
        .with_verify(opts.verify)
        .with_acl(opts.acl)
        .with_uring(uring)
        .with_readdirplus(opts.readdirplus)
        .with_prefetch(opts.prefetch)
        .context("starting the prefetch threads")?;
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(store_root.display().to_string()),
        MountOption::Subtype("unistore".into()),
        MountOption::RO,
        MountOption::DefaultPermissions,
        // Images are untrusted input: a setuid-root program or a world-writable
        // device node in an image must not become usable by local users through
        // the views. podman's own overlay mount decides for containers.
        if opts.dev {
            MountOption::Dev
        } else {
            MountOption::NoDev
        },
        if opts.suid {
            MountOption::Suid
        } else {
            MountOption::NoSuid
        },
        MountOption::NoAtime,
    ];
    config.acl = SessionACL::All;
    config.n_threads = Some(opts.threads.max(1));
    if uring != Passthrough::Off {
        config.io_uring_depth = crate::fs::URING_DEPTH;
        config.io_uring_payload = crate::fs::URING_PAYLOAD as usize;
    }
    let mut session = fuser::Session::new(fs, mnt, &config)
        .with_context(|| format!("mounting {}", mnt.display()))?;
    watch_catalog(store_root, session.notifier());
    let mut unmounter = session.unmount_callable();
    let mnt_owned: PathBuf = mnt.to_path_buf();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])?;
    let handle = signals.handle();
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            tracing::info!(sig, "signal received, unmounting {}", mnt_owned.display());
            if let Err(e) = unmounter.unmount() {
                tracing::warn!("unmount failed ({e}); detaching");
                let _ = rustix::mount::unmount(&mnt_owned, rustix::mount::UnmountFlags::DETACH);
            }
        }
    });
    ready();
    let r = session.run();
    handle.close();
    r.context("serving FUSE requests")
}
