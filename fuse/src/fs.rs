//! `fuser::Filesystem` over the store's views.
//!
//! Cache policy (see `docs/views/containers-storage.md`):
//! - a node never changes while it has its number (a catalog change builds
//!   new nodes): [`IMMUTABLE_TTL`] for entries and attributes,
//!   `FOPEN_KEEP_CACHE` on open, cached listings;
//! - the view roots (`MNT/containers-storage`, ...) get [`VIEW_ROOT_TTL`], and
//!   the daemon invalidates them the moment the catalog changes, so imports
//!   and removals show at once.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fuser::{
    BackingId, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr, Request,
};
use unistore_store::view::tree::Node;
use unistore_store::view::{cstor, images, ostree, Attr, Content, NodeKind, Vfs};
use unistore_store::Store;

/// Content-addressed nodes never change: cache them for a day. Catalog-derived
/// nodes (listings, images.json, ...) are never changed in place either: a
/// catalog change builds new nodes, and the daemon invalidates the kernel's
/// entries for the view roots (`daemon::watch_catalog`), so paths resolve to
/// the new nodes at once.
pub const IMMUTABLE_TTL: Duration = Duration::from_secs(86400);
/// The view roots (`MNT/containers-storage`, ...): a safety net should a
/// catalog change not be notified (no inotify): re-validated every second.
pub const VIEW_ROOT_TTL: Duration = Duration::from_secs(1);
/// Regular files up to this size are served from the kernel's page cache
/// (`FOPEN_KEEP_CACHE`, filled by `pread` at the first READ), even when
/// passthrough is on: per open they cost the daemon no syscall at all, where
/// passthrough costs an open, an fstat and two ioctls. Larger files use
/// passthrough when active (large reads and mmap at native speed).
pub const CACHED_MAX: u64 = 128 << 10;

/// Entries per FUSE-over-io_uring queue (one queue per CPU).
pub const URING_DEPTH: usize = 2;
/// Payload buffer of each ring entry, and the connection's `max_write`
/// (the views are read-only; reads are at most `max_readahead`, also 1 MiB).
pub const URING_PAYLOAD: u32 = 1 << 20;
/// How often (at most) requests check whether the catalog changed. Zero: a
/// lookup or readdir in a catalog-derived directory always compares the
/// catalog's stamp (one `stat`), so whatever `unistore import/tag/rmi` has
/// returned is what the next podman command sees (a 200 ms poll served a
/// listing from before an `rmi` to a podman started right after it).
const CATALOG_POLL: Duration = Duration::ZERO;

/// What READDIRPLUS replies carry (mount option `readdirplus=off|dirs|all`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaddirPlus {
    /// Plain READDIR: every entry is LOOKUP-ed on first access.
    Off,
    /// Directories with their attributes, other entries by name only (the
    /// default): a walk that descends (`find`, `du`, podman's overlay)
    /// needs no LOOKUP per directory, and the kernel builds no inode for the
    /// files it only lists.
    Dirs,
    /// Every entry with its attributes: a stat-ing walk (`ls -lR`) needs no
    /// LOOKUP at all, but the kernel builds an inode for every listed file.
    All,
}

/// Passthrough policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passthrough {
    /// Use it if the kernel offers it.
    Auto,
    /// Require it (mount fails otherwise).
    On,
    /// Never; serve reads with `pread`.
    Off,
}

enum Handle {
    /// A backing object read with `pread`.
    File(File),
    /// Kept alive while open: the kernel reads the backing file itself.
    Backing(#[allow(dead_code)] Arc<BackingId>),
}

/// The filesystem.
pub struct UnistoreFs {
    store: Arc<Store>,
    vfs: Vfs,
    state: Mutex<State>,
    handles: RwLock<HashMap<u64, Arc<Handle>>>,
    backing: Mutex<HashMap<u64, Weak<BackingId>>>,
    next_fh: AtomicU64,
    passthrough: Passthrough,
    passthrough_active: AtomicBool,
    views: ViewSet,
    /// `FUSE_POSIX_ACL` is asked for (mount option `acl`).
    acl: bool,
    /// FUSE over io_uring policy (mount option `uring`).
    uring: Passthrough,
    /// What READDIRPLUS replies carry (mount option `readdirplus`).
    readdirplus: ReaddirPlus,
    /// Read-ahead across small files (mount option `prefetch`).
    prefetch: Option<crate::prefetch::Prefetcher>,
    /// `verify=on`: objects whose digest was checked before first use.
    verified: Option<RwLock<std::collections::HashSet<String>>>,
}

impl std::fmt::Debug for UnistoreFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnistoreFs")
            .field("store", &self.store.root())
            .finish_non_exhaustive()
    }
}

struct State {
    /// `pins/<pid>` in the store, exclusively flocked while we live.
    pin_file: Option<File>,
    catalog_stamp: Option<(i64, i64, u64, u64)>,
    last_check: Instant,
    layers: cstor::LayerCache,
    ostree: ostree::OstreeCache,
    /// Whether the ostree view was looked at (it is built lazily until then).
    ostree_used: bool,
    images: images::ImagesCache,
}

/// Which views a mount shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewSet {
    /// `containers-storage/`
    pub containers_storage: bool,
    /// `ostree/`
    pub ostree: bool,
    /// `images/`
    pub images: bool,
    /// Mount one image's root filesystem alone (`--view image:NAME`).
    pub single_image: Option<String>,
}

impl Default for ViewSet {
    fn default() -> Self {
        ViewSet {
            containers_storage: true,
            ostree: true,
            images: true,
            single_image: None,
        }
    }
}

fn catalog_stamp(store: &Store) -> Option<(i64, i64, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(store.root().join(unistore_store::catalog::CATALOG_FILE)).ok()?;
    Some((md.mtime(), md.mtime_nsec(), md.ino(), md.size()))
}

impl UnistoreFs {
    /// Build the views of `store`.
    pub fn new(store: Store, passthrough: Passthrough, views: ViewSet) -> anyhow::Result<Self> {
        let loader_store = Store::open(store.root())?;
        let loader: unistore_store::view::tree::IndexLoader = Box::new(move |obj: &str| {
            let data = loader_store.read_object(obj)?;
            unistore_store::index::LayerIndex::decode(&data)
        });
        let fs = UnistoreFs {
            store: Arc::new(store),
            vfs: Vfs::new(loader),
            state: Mutex::new(State {
                pin_file: None,
                catalog_stamp: None,
                last_check: Instant::now() - CATALOG_POLL * 2,
                layers: cstor::LayerCache::default(),
                ostree: ostree::OstreeCache::default(),
                ostree_used: false,
                images: images::ImagesCache::default(),
            }),
            handles: RwLock::new(HashMap::new()),
            backing: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            passthrough,
            passthrough_active: AtomicBool::new(false),
            views,
            verified: None,
            acl: false,
            uring: Passthrough::Off,
            readdirplus: ReaddirPlus::Dirs,
            prefetch: None,
        };
        fs.refresh(true)?;
        Ok(fs)
    }

    /// `acl`: negotiate `FUSE_POSIX_ACL`, so that the kernel enforces ACLs
    /// stored in images and caches each inode's ACL answer. The price: the
    /// kernel asks for every inode's ACL once per inode lifetime (after a
    /// cache drop, one GETXATTR round trip per entry `ls -l` shows: 24177 of
    /// them, 430 ms, in a cold `ls -lR` of the bench image).
    ///
    /// Without it (the default, like a filesystem mounted `noacl`) mode bits
    /// alone decide access, ACL xattrs an image carries are still served as
    /// they are, and asking for an ACL a file does not have fails with
    /// `ENOTSUP`, which tells `ls` (coreutils caches it per device) that the
    /// filesystem has no ACLs: a cold `ls -lR` then makes no ACL round trip.
    pub fn with_acl(mut self, on: bool) -> Self {
        self.acl = on;
        self
    }

    /// FUSE over io_uring (Linux 6.14+, when
    /// `/sys/module/fuse/parameters/enable_uring` is `Y`): the kernel queues
    /// each request on a ring of the CPU it was made on, served by a daemon
    /// thread pinned to that CPU, instead of waking a `/dev/fuse` reader on
    /// whichever CPU it sleeps (when idle CPUs are slow to wake, a warm `cat`
    /// of 23k small files took 0.82–0.99 s with reader and daemon on one CPU
    /// against 1.33–1.60 s apart; docs/benchmarks.md). `Auto`
    /// uses it when the kernel offers it, `On` fails the mount otherwise.
    pub fn with_uring(mut self, uring: Passthrough) -> Self {
        self.uring = uring;
        self
    }

    /// `readdirplus=off|dirs|all` (default `dirs`): see [`ReaddirPlus`].
    /// Measured on the bench image (docs/benchmarks.md): `all` makes a cold
    /// `ls -lR` 0.17–0.20 s instead of 0.39–0.45 s but a cold `find` 0.09–0.17 s
    /// instead of 0.03 s (the kernel builds an inode for every listed file);
    /// `dirs` saves `find` its LOOKUP per directory and costs `ls -lR` nothing.
    pub fn with_readdirplus(mut self, mode: ReaddirPlus) -> Self {
        self.readdirplus = mode;
        self
    }

    /// Warm the objects of the small files a reader will open next with
    /// `workers` threads (mount option `prefetch=N`, default 4; 0 turns it
    /// off): see [`crate::prefetch`].
    pub fn with_prefetch(mut self, workers: usize) -> std::io::Result<Self> {
        self.prefetch = match workers {
            0 => None,
            n => Some(crate::prefetch::Prefetcher::new(n)?),
        };
        Ok(self)
    }

    /// A small file `ino` is being opened: hand the objects of the next small
    /// files of its reader's stream (not already in the kernel's cache) to
    /// the prefetch workers.
    fn prefetch_after_open(&self, ino: u64) {
        let Some(p) = &self.prefetch else { return };
        if p.is_cached(ino) {
            // The kernel holds this file: a warm reader, nothing to read
            // ahead now. Its first open of an uncached file starts again.
            return;
        }
        let paths = p
            .on_open(ino)
            .into_iter()
            .filter(|&i| !p.is_cached(i))
            .filter_map(|i| {
                let n = self.vfs.peek(i)?;
                match &n.content {
                    Content::Object(hex) if n.attr.size <= CACHED_MAX => {
                        self.store.object_path(hex).ok()
                    }
                    _ => None,
                }
            })
            .collect();
        p.submit(paths);
    }

    /// Check each object's digest before serving it the first time (`verify=on`).
    pub fn with_verify(mut self, on: bool) -> Self {
        self.verified = on.then(|| RwLock::new(Default::default()));
        self
    }

    fn check_object(&self, ino: INodeNo, hex: &str, path: &std::path::Path) -> Result<(), Errno> {
        let Some(v) = &self.verified else {
            return Ok(());
        };
        if v.read().expect("lock").contains(hex) {
            return Ok(());
        }
        match unistore_store::fsck::object_digest(path) {
            Ok(d) if d == hex => {
                v.write().expect("lock").insert(hex.to_string());
                Ok(())
            }
            Ok(d) => {
                self.log_bad_object(
                    ino,
                    hex,
                    &format!(
                        "object digest mismatch (content hashes to {d}): refusing to serve it"
                    ),
                );
                Err(Errno::EIO)
            }
            Err(e) => {
                tracing::error!(ino = ino.0, object = %hex, "cannot verify object: {e}");
                Err(Errno::EIO)
            }
        }
    }

    /// Log a broken backing object with every image, layer and path that
    /// uses it (a search of the indexes: error path only).
    fn log_bad_object(&self, ino: INodeNo, hex: &str, what: &str) {
        log_bad_object(&self.store, ino, hex, what);
    }
}

/// Log a missing or damaged backing object with every image, layer and path
/// that uses it.
fn log_bad_object(store: &Store, ino: INodeNo, hex: &str, what: &str) {
    let mut users = Vec::new();
    if let Ok(cat) = store.catalog() {
        for e in &cat.images {
            let Ok(rec) = store.image(e) else {
                continue;
            };
            for l in &rec.layers {
                let Ok(idx) = store.layer_index(&l.meta) else {
                    continue;
                };
                for ent in &idx.entries {
                    if matches!(&ent.data, unistore_store::index::Data::Object(h) if h == hex) {
                        users.push(format!(
                            "image {} layer {} path /{}",
                            e.names.first().unwrap_or(&e.id),
                            l.meta.diff_id,
                            String::from_utf8_lossy(&ent.path)
                        ));
                    }
                }
            }
        }
    }
    tracing::error!(ino = ino.0, object = %hex, used_by = ?users, "{what}");
}

impl UnistoreFs {
    /// Whether reads go through kernel passthrough.
    pub fn passthrough_active(&self) -> bool {
        self.passthrough_active.load(Ordering::Relaxed)
    }

    /// Rebuild the views if the catalog changed (or `force`).
    fn refresh(&self, force: bool) -> anyhow::Result<()> {
        let mut st = self.state.lock().expect("lock");
        if !force && st.last_check.elapsed() < CATALOG_POLL {
            return Ok(());
        }
        st.last_check = Instant::now();
        let stamp = catalog_stamp(&self.store);
        if !force && stamp == st.catalog_stamp {
            return Ok(());
        }
        let cat = self.store.catalog()?;
        if let Some(name) = &self.views.single_image {
            // The image's root filesystem is the mount's root (node 1), fixed at mount time.
            if force {
                let entry = cat
                    .find(name)
                    .ok_or_else(|| unistore_store::StoreError::ImageNotFound(name.clone()))?;
                let rec = self.store.image(entry)?;
                let objs = rec
                    .layers
                    .iter()
                    .map(|l| l.meta.index_object.clone())
                    .collect();
                self.vfs.replace(
                    1,
                    Node::new(
                        unistore_store::view::Attr::dir(0o755),
                        Content::LazyImage(Arc::new(objs)),
                        false,
                    ),
                );
                let pins = format!("{}\n", entry.stream);
                if let Err(e) = self.write_pins(&mut st, &pins) {
                    tracing::warn!("cannot write gc pin file: {e:#}");
                }
            }
            st.catalog_stamp = stamp;
            return Ok(());
        }
        let mut root = std::collections::BTreeMap::new();
        if self.views.containers_storage {
            let cs = cstor::build(&self.store, &self.vfs, &cat, &mut st.layers)?;
            root.insert(b"containers-storage".to_vec(), cs);
        }
        if self.views.images {
            let im = images::build(&self.store, &self.vfs, &cat, &mut st.images)?;
            root.insert(b"images".to_vec(), im);
        }
        if self.views.ostree {
            // Computing every commit is the costliest part of a view build:
            // defer it until someone first looks inside ostree/ (mount stays
            // fast); once built, later catalog changes rebuild it at once.
            let os = if st.ostree_used {
                ostree::build(&self.store, &self.vfs, &cat, &mut st.ostree)?
            } else {
                self.vfs.push(Node::new(
                    unistore_store::view::Attr::dir(0o755),
                    Content::Deferred,
                    true,
                ))
            };
            root.insert(b"ostree".to_vec(), os);
        }
        let mut attr = unistore_store::view::Attr::dir(0o755);
        attr.nlink = 2 + root.len() as u32;
        self.vfs
            .replace(1, Node::new(attr, Content::Dir(root), true));
        st.catalog_stamp = stamp;
        // Tell gc what this daemon serves (see unistore_store::gc).
        let pins: String = cat
            .images
            .iter()
            .map(|e| format!("{}\n", e.stream))
            .collect();
        if let Err(e) = self.write_pins(&mut st, &pins) {
            tracing::warn!("cannot write gc pin file: {e:#}");
        }
        tracing::info!(
            generation = cat.generation,
            images = cat.images.len(),
            "views rebuilt"
        );
        crate::sys::release_free_memory();
        Ok(())
    }

    fn write_pins(&self, st: &mut State, pins: &str) -> anyhow::Result<()> {
        use std::io::{Seek, Write};
        if st.pin_file.is_none() {
            let dir = self.store.root().join(unistore_store::gc::PINS_DIR);
            std::fs::create_dir_all(&dir)?;
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .read(true)
                .open(dir.join(std::process::id().to_string()))?;
            rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)?;
            st.pin_file = Some(f);
        }
        let f = st.pin_file.as_mut().expect("set above");
        f.set_len(0)?;
        f.rewind()?;
        f.write_all(pins.as_bytes())?;
        Ok(())
    }

    fn node(&self, ino: INodeNo) -> Result<Arc<Node>, Errno> {
        let n = self.vfs.peek(ino.0).ok_or(Errno::ENOENT)?;
        let lazy = matches!(
            n.content,
            Content::LazyLayer(_) | Content::LazyImage(_) | Content::Deferred
        );
        if !lazy {
            // `get` would return this same node: one lookup per request.
            return Ok(n);
        }
        drop(n);
        let n = self
            .vfs
            .get(ino.0)
            .map_err(internal)?
            .ok_or(Errno::ENOENT)?;
        let n = if matches!(n.content, Content::Deferred) {
            self.build_deferred(ino.0).map_err(internal)?;
            self.vfs
                .get(ino.0)
                .map_err(internal)?
                .ok_or(Errno::ENOENT)?
        } else {
            n
        };
        crate::sys::release_free_memory();
        Ok(n)
    }

    /// Build the deferred ostree view into placeholder node `ino`.
    fn build_deferred(&self, ino: u64) -> anyhow::Result<()> {
        let mut st = self.state.lock().expect("lock");
        let still = self
            .vfs
            .peek(ino)
            .is_some_and(|n| matches!(n.content, Content::Deferred));
        if !still {
            return Ok(());
        }
        let cat = self.store.catalog()?;
        let built = ostree::build(&self.store, &self.vfs, &cat, &mut st.ostree)?;
        let node = self.vfs.peek(built).expect("just built");
        self.vfs.replace(ino, (*node).clone());
        st.ostree_used = true;
        Ok(())
    }

    fn attr(&self, ino: u64, n: &Node) -> FileAttr {
        let a = &n.attr;
        let t = if a.mtime >= 0 {
            UNIX_EPOCH + Duration::new(a.mtime as u64, a.mtime_nsec)
        } else {
            UNIX_EPOCH - Duration::from_secs(a.mtime.unsigned_abs())
        };
        let (maj, min) = a.rdev;
        FileAttr {
            ino: INodeNo(ino),
            size: a.size,
            blocks: a.size.div_ceil(512),
            atime: t,
            mtime: t,
            ctime: t,
            crtime: t,
            kind: file_type(a.kind),
            perm: (a.perm & 0o7777) as u16,
            nlink: a.nlink,
            uid: a.uid,
            gid: a.gid,
            rdev: (min & 0xff) | ((maj & 0xfff) << 8) | ((min & !0xff) << 12),
            blksize: 4096,
            flags: 0,
        }
    }

    /// Entry/attribute TTL of node `ino` found in directory `parent`. The
    /// mount root's own attributes never change either (its listing is the
    /// fixed set of views): with `default_permissions` every path walk checks
    /// the root's permissions, and a zero TTL there cost one GETATTR round
    /// trip per path-based syscall.
    fn ttl(parent: Option<INodeNo>, _ino: u64) -> Duration {
        if parent == Some(INodeNo::ROOT) {
            VIEW_ROOT_TTL
        } else {
            IMMUTABLE_TTL
        }
    }

    fn do_lookup(&self, parent: INodeNo, name: &OsStr) -> Result<(u64, Arc<Node>), Errno> {
        // Only the view roots are ever re-looked-up after a catalog change
        // (see IMMUTABLE_TTL): check the catalog there, nowhere else.
        if parent == INodeNo::ROOT {
            self.refresh(false).map_err(internal)?;
        }
        let ino = self
            .vfs
            .lookup(parent.0, name.as_bytes())
            .map_err(internal)?
            .ok_or(Errno::ENOENT)?;
        Ok((ino, self.node(INodeNo(ino))?))
    }

    /// Directory `ino` for a listing (the current one for catalog-derived directories).
    fn listing(&self, ino: INodeNo) -> Result<Arc<Node>, Errno> {
        let n = self.node(ino)?;
        if n.dynamic {
            self.refresh(false).map_err(internal)?;
            return self.node(ino);
        }
        Ok(n)
    }

    /// `.`, `..` and the children of directory `ino` from listing offset
    /// `offset` on, each with the offset of the entry after it and its node as
    /// it is (not expanded). The skipped entries' nodes are not looked at: the
    /// READDIR that finds a listing's end skips every entry.
    fn entries<'a>(
        ino: INodeNo,
        children: &'a std::collections::BTreeMap<Vec<u8>, u64>,
        vfs: &'a Vfs,
        offset: u64,
    ) -> impl Iterator<Item = (u64, u64, &'a [u8], Option<Arc<Node>>)> + 'a {
        [(ino.0, &b"."[..]), (ino.0, &b".."[..])]
            .into_iter()
            .chain(
                children
                    .iter()
                    .map(|(name, &child)| (child, name.as_slice())),
            )
            .enumerate()
            .skip(offset as usize)
            .map(|(i, (child, name))| (i as u64 + 1, child, name, vfs.peek(child)))
    }

    fn do_open(
        &self,
        ino: INodeNo,
        reply: &ReplyOpen,
    ) -> Result<(u64, FopenFlags, Option<Arc<BackingId>>), Errno> {
        let n = self.node(ino)?;
        match &n.content {
            Content::Object(hex) if n.attr.size <= CACHED_MAX => {
                // Small file: no backing file is opened here (passthrough setup
                // is an open, an fstat and two ioctls per open, which a small
                // file never pays back). Its pages are read at the first READ
                // (`do_read`) and stay in the kernel's cache across opens.
                if self.verified.is_some() {
                    let path = self.store.object_path(hex).map_err(internal)?;
                    self.check_object(ino, hex, &path)?;
                }
                self.prefetch_after_open(ino.0);
                Ok((0, FopenFlags::FOPEN_KEEP_CACHE, None))
            }
            Content::Object(hex) => {
                let path = self.store.object_path(hex).map_err(internal)?;
                self.check_object(ino, hex, &path)?;
                // A truncated or replaced object shows as a size mismatch: refuse it
                // rather than serve a short file (cheap fstat; digests need verify=on).
                let file = open_object(&self.store, ino, hex, n.attr.size)?;
                let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
                if self.passthrough_active() {
                    let mut cache = self.backing.lock().expect("lock");
                    let id = match cache.get(&ino.0).and_then(Weak::upgrade) {
                        Some(id) => Some(id),
                        None => match reply.open_backing(&file) {
                            Ok(id) => {
                                let id = Arc::new(id);
                                cache.insert(ino.0, Arc::downgrade(&id));
                                Some(id)
                            }
                            Err(e) => {
                                tracing::debug!("passthrough open failed, using pread: {e}");
                                None
                            }
                        },
                    };
                    if let Some(id) = id {
                        self.handles
                            .write()
                            .expect("lock")
                            .insert(fh, Arc::new(Handle::Backing(Arc::clone(&id))));
                        return Ok((fh, FopenFlags::empty(), Some(id)));
                    }
                }
                self.handles
                    .write()
                    .expect("lock")
                    .insert(fh, Arc::new(Handle::File(file)));
                Ok((fh, FopenFlags::FOPEN_KEEP_CACHE, None))
            }
            Content::Bytes(_) | Content::None => {
                let flags = if n.dynamic {
                    FopenFlags::FOPEN_DIRECT_IO
                } else {
                    FopenFlags::FOPEN_KEEP_CACHE
                };
                Ok((0, flags, None))
            }
            Content::Dir(_) | Content::LazyLayer(_) | Content::LazyImage(_) | Content::Deferred => {
                Err(Errno::EISDIR)
            }
            Content::Symlink(_) => Err(Errno::ELOOP),
        }
    }

    fn do_read(
        &self,
        ino: INodeNo,
        n: Arc<Node>,
        fh: FileHandle,
        offset: u64,
        size: u32,
    ) -> Result<Vec<u8>, Errno> {
        // Lock files keep their node and change content: read the current one.
        let n = if n.dynamic {
            self.refresh(false).map_err(internal)?;
            self.node(ino)?
        } else {
            n
        };
        match &n.content {
            Content::Bytes(b) => {
                let start = (offset as usize).min(b.len());
                let end = (start + size as usize).min(b.len());
                Ok(b[start..end].to_vec())
            }
            Content::None => Ok(Vec::new()),
            Content::Object(hex) if fh.0 == 0 => {
                // A small file opened without a handle (see do_open).
                let file = open_object(&self.store, ino, hex, n.attr.size)?;
                let data = pread_object(&self.store, ino, hex, &file, offset, size)?;
                if let Some(p) = &self.prefetch {
                    p.mark_cached(ino.0);
                }
                Ok(data)
            }
            Content::Object(hex) => {
                let h = self
                    .handles
                    .read()
                    .expect("lock")
                    .get(&fh.0)
                    .cloned()
                    .ok_or(Errno::EBADF)?;
                let Handle::File(f) = &*h else {
                    return Err(Errno::EIO);
                };
                // The lock is released: I/O runs without it.
                pread_object(&self.store, ino, hex, f, offset, size)
            }
            _ => Err(Errno::EISDIR),
        }
    }
}

/// Open the backing object `hex` of `ino` and check its size against the index.
fn open_object(store: &Store, ino: INodeNo, hex: &str, size: u64) -> Result<File, Errno> {
    let path = store.object_path(hex).map_err(internal)?;
    let file = File::open(&path).map_err(|e| {
        log_bad_object(store, ino, hex, &format!("cannot open backing object: {e}"));
        Errno::EIO
    })?;
    match file.metadata() {
        Ok(md) if md.len() == size => Ok(file),
        Ok(md) => {
            log_bad_object(
                store,
                ino,
                hex,
                &format!("backing object is {} bytes, expected {size}", md.len()),
            );
            Err(Errno::EIO)
        }
        Err(e) => {
            log_bad_object(store, ino, hex, &format!("cannot stat backing object: {e}"));
            Err(Errno::EIO)
        }
    }
}

/// `size` bytes at `offset` of backing file `f` of `ino` (short only at its end).
fn pread_object(
    store: &Store,
    ino: INodeNo,
    hex: &str,
    f: &File,
    offset: u64,
    size: u32,
) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; size as usize];
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(k) => done += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                log_bad_object(store, ino, hex, &format!("read failed: {e}"));
                return Err(Errno::EIO);
            }
        }
    }
    buf.truncate(done);
    Ok(buf)
}

/// `size` bytes at `offset` of object `hex` (`file_size` bytes), if that
/// needs no disk read: its path resolves from the dentry cache
/// (`RESOLVE_CACHED`) and the pages are resident (`RWF_NOWAIT`). `None`: read
/// it the blocking way (which also reports a missing or damaged object).
fn read_object_nowait(
    store: &Store,
    hex: &str,
    file_size: u64,
    offset: u64,
    size: u32,
) -> Option<Vec<u8>> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let path = store.object_path(hex).ok()?;
    let fd = rustix::fs::openat2(
        rustix::fs::CWD,
        &path,
        // NONBLOCK: a damaged store's FIFO in place of an object must not
        // hold this thread either.
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::CACHED,
    )
    .ok()?;
    if rustix::fs::fstat(&fd).ok()?.st_size as u64 != file_size {
        return None;
    }
    let want = file_size.saturating_sub(offset).min(u64::from(size)) as usize;
    let mut buf = vec![0u8; want];
    if want == 0 {
        return Some(buf);
    }
    let n = rustix::io::preadv2(
        &fd,
        &mut [std::io::IoSliceMut::new(&mut buf)],
        offset,
        rustix::io::ReadWriteFlags::NOWAIT,
    )
    .ok()?;
    (n == want).then_some(buf)
}

fn file_type(k: NodeKind) -> FileType {
    match k {
        NodeKind::Dir => FileType::Directory,
        NodeKind::File => FileType::RegularFile,
        NodeKind::Symlink => FileType::Symlink,
        NodeKind::Char => FileType::CharDevice,
        NodeKind::Block => FileType::BlockDevice,
        NodeKind::Fifo => FileType::NamedPipe,
    }
}

/// The one mapping of unexpected errors to an errno.
fn internal(e: anyhow::Error) -> Errno {
    tracing::error!("internal error: {e:#}");
    Errno::EIO
}

impl Filesystem for UnistoreFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_readahead(1 << 20);
        // Cache symlink targets in the kernel (the trees are immutable), and
        // let directory operations run in parallel. ACLs: see `with_acl`.
        if self.acl && config.add_capabilities(InitFlags::FUSE_POSIX_ACL).is_err() {
            tracing::warn!("kernel does not offer FUSE_POSIX_ACL: ACLs are not enforced");
        }
        let readdirplus: &[InitFlags] = if self.readdirplus != ReaddirPlus::Off {
            &[
                InitFlags::FUSE_DO_READDIRPLUS,
                InitFlags::FUSE_READDIRPLUS_AUTO,
            ]
        } else {
            &[]
        };
        for &cap in [
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_NO_OPENDIR_SUPPORT,
        ]
        .iter()
        .chain(readdirplus)
        {
            if config.add_capabilities(cap).is_err() {
                tracing::debug!(?cap, "kernel does not offer");
            }
        }
        if self.uring != Passthrough::Off {
            let ok = config
                .add_capabilities(InitFlags::FUSE_OVER_IO_URING)
                .is_ok()
                && config.set_max_write(URING_PAYLOAD).is_ok();
            if !ok && self.uring == Passthrough::On {
                return Err(std::io::Error::other(
                    "kernel does not offer FUSE over io_uring (is /sys/module/fuse/parameters/enable_uring Y?)",
                ));
            }
            tracing::info!(
                uring = ok,
                "FUSE over io_uring {}",
                if ok { "negotiated" } else { "not offered" }
            );
        }
        if self.passthrough != Passthrough::Off {
            let ok = config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
                // Depth 1: our backing files sit on a plain filesystem, and podman's
                // overlay must still stack on top of us (kernel limit 2).
                && config.set_max_stack_depth(1).is_ok();
            self.passthrough_active.store(ok, Ordering::Relaxed);
            if !ok && self.passthrough == Passthrough::On {
                return Err(std::io::Error::other(
                    "kernel does not offer FUSE passthrough",
                ));
            }
        }
        tracing::info!(
            passthrough = self.passthrough_active(),
            "reads are served by {}",
            if self.passthrough_active() {
                "kernel passthrough"
            } else {
                "pread"
            }
        );
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.do_lookup(parent, name) {
            Ok((ino, n)) => reply.entry(
                &Self::ttl(Some(parent), ino),
                &self.attr(ino, &n),
                Generation(0),
            ),
            // Below the mount root every directory's listing is fixed for the
            // life of its node number (a catalog change builds new nodes), so
            // "no such name" can be cached as well: an entry with node 0 and a
            // TTL is a negative dentry. podman's overlay looks up most paths in
            // every lower layer, ld.so and $PATH searches miss in most dirs.
            Err(Errno::ENOENT)
                if parent != INodeNo::ROOT
                    && self
                        .vfs
                        .peek(parent.0)
                        .is_some_and(|p| matches!(p.content, Content::Dir(_))) =>
            {
                let mut attr = self.attr(0, &Node::new(Attr::dir(0), Content::None, false));
                attr.ino = INodeNo(0);
                reply.entry(&IMMUTABLE_TTL, &attr, Generation(0))
            }
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if ino == INodeNo::ROOT {
            if let Err(e) = self.refresh(false) {
                return reply.error(internal(e));
            }
        }
        match self.node(ino) {
            Ok(n) => reply.attr(&Self::ttl(None, ino.0), &self.attr(ino.0, &n)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.node(ino) {
            Ok(n) => match &n.content {
                Content::Symlink(t) => reply.data(t),
                _ => reply.error(Errno::EINVAL),
            },
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        match self.do_open(ino, &reply) {
            Ok((fh, _, Some(id))) => {
                reply.opened_passthrough(FileHandle(fh), FopenFlags::empty(), &id)
            }
            Ok((fh, flags, None)) => reply.opened(FileHandle(fh), flags),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        // A small file's first READ (see `do_open`). If its object must come
        // from disk, a prefetch worker reads it and answers, and this thread
        // (over io_uring, the only one serving this CPU's requests) goes on.
        let n = match self.node(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        if let (0, Some(p), Content::Object(hex), false) =
            (fh.0, &self.prefetch, &n.content, n.dynamic)
        {
            p.mark_cached(ino.0);
            if let Some(d) = read_object_nowait(&self.store, hex, n.attr.size, offset, size) {
                return reply.data(&d);
            }
            let (store, hex, file_size) = (Arc::clone(&self.store), hex.clone(), n.attr.size);
            p.run(Box::new(move || {
                let read = open_object(&store, ino, &hex, file_size)
                    .and_then(|f| pread_object(&store, ino, &hex, &f, offset, size));
                match read {
                    Ok(d) => reply.data(&d),
                    Err(e) => reply.error(e),
                }
            }));
            return;
        }
        match self.do_read(ino, n, fh, offset, size) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        if fh.0 != 0 {
            self.handles.write().expect("lock").remove(&fh.0);
        }
        reply.ok();
    }

    /// The kernel dropped its inode for `ino`, and with it the pages read
    /// (nodes themselves live as long as the mount).
    fn forget(&self, _req: &Request, ino: INodeNo, _nlookup: u64) {
        if let Some(p) = &self.prefetch {
            p.forget(ino.0);
        }
    }

    /// Not implemented, on purpose: after one ENOSYS the kernel stops sending
    /// OPENDIR and RELEASEDIR (two round trips per directory opened) and caches
    /// every listing (`FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR`). Every directory's
    /// listing is fixed for the life of its node number, except the mount
    /// root's, whose pages the catalog watcher invalidates (`daemon.rs`).
    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.error(Errno::ENOSYS);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let n = match self.listing(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let Content::Dir(children) = &n.content else {
            return reply.error(Errno::ENOTDIR);
        };
        for (next, child, name, c) in Self::entries(ino, children, &self.vfs, offset) {
            // peek: listing a directory must not expand the layer or image
            // trees of its entries.
            let kind = c.map_or(FileType::RegularFile, |c| file_type(c.attr.kind));
            if reply.add(INodeNo(child), next, kind, OsStr::from_bytes(name)) {
                break;
            }
        }
        reply.ok();
    }

    /// READDIRPLUS: the listing with the attributes of its directories (of
    /// every entry with `readdirplus=all`), so that a walk of a cold tree needs
    /// no LOOKUP for them (the kernel asks for it in "auto" mode: a listing's
    /// first batch, and later ones after lookups in it).
    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let n = match self.listing(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let Content::Dir(children) = &n.content else {
            return reply.error(Errno::ENOTDIR);
        };
        let all = self.readdirplus == ReaddirPlus::All;
        for (next, child, name, c) in Self::entries(ino, children, &self.vfs, offset) {
            let name = OsStr::from_bytes(name);
            let with_attrs = match c.as_deref().map(|c| &c.content) {
                Some(Content::Dir(_)) => true,
                // A lazy layer/image tree or the deferred ostree view is not
                // expanded by a listing: it goes by name, and the first real
                // lookup expands it.
                Some(Content::LazyLayer(_) | Content::LazyImage(_) | Content::Deferred) => false,
                Some(_) => all,
                None => false,
            };
            let buffer_full = match c {
                Some(c) if with_attrs => reply.add(
                    INodeNo(child),
                    next,
                    name,
                    &Self::ttl(Some(ino), child),
                    &self.attr(child, &c),
                    Generation(0),
                ),
                c => {
                    let kind = c.map_or(FileType::RegularFile, |c| file_type(c.attr.kind));
                    reply.add_name_only(INodeNo(child), next, kind, name)
                }
            };
            if buffer_full {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let (blocks, files) = rustix::fs::statvfs(self.store.root())
            .map(|s| (s.f_blocks * s.f_frsize / 4096, s.f_files))
            .unwrap_or((0, 0));
        reply.statfs(
            blocks,
            0,
            0,
            files.max(self.vfs.len() as u64),
            0,
            4096,
            255,
            4096,
        );
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let n = match self.node(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        match n
            .xattrs
            .iter()
            .find(|(k, _)| k.as_slice() == name.as_bytes())
        {
            // No labels in the views: say so, rather than "not set". FUSE never
            // caches xattrs, and `ls -l` asks for this one on every entry unless
            // it failed with ENOTSUP once on the device (coreutils then stops
            // asking): ls -lR made one round trip per entry for it.
            None if name.as_bytes() == b"security.selinux" => reply.error(Errno::ENOTSUP),
            // Without `acl`, the same for ACLs a file does not have (`with_acl`);
            // with it, the kernel caches "none" for the inode's life.
            None if !self.acl && name.as_bytes().starts_with(b"system.posix_acl_") => {
                reply.error(Errno::ENOTSUP)
            }
            None => reply.error(Errno::NO_XATTR),
            Some((_, v)) => {
                if size == 0 {
                    reply.size(v.len() as u32)
                } else if (size as usize) < v.len() {
                    reply.error(Errno::ERANGE)
                } else {
                    reply.data(v)
                }
            }
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let n = match self.node(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let mut buf = Vec::new();
        for (k, _) in &n.xattrs {
            buf.extend_from_slice(k);
            buf.push(0);
        }
        if size == 0 {
            reply.size(buf.len() as u32)
        } else if (size as usize) < buf.len() {
            reply.error(Errno::ERANGE)
        } else {
            reply.data(&buf)
        }
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<UnistoreFs>();
    let _ = SystemTime::now();
}
