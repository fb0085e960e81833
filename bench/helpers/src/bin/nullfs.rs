//! `unistore-bench-nullfs [--no-open] SRC MNT`: the cheapest FUSE server of a tree, the
//! floor under unistore's views. It copies the metadata of SRC, and the
//! content of every regular file under 1 MiB, into memory once, then serves
//! it through the same fuser (the vendored one, with FUSE over io_uring, one
//! queue of 2 entries per CPU, as unistore) and the same mount options and
//! capabilities: read-only, `default_permissions`, `allow_other`, long entry
//! and attribute TTLs, `FOPEN_KEEP_CACHE`, no OPENDIR, cached symlinks. Its
//! OPEN is a table lookup and a constant reply, so what a warm small-file
//! read costs through it is what any FUSE server costs on this kernel and
//! machine: the OPEN and RELEASE round trips themselves. Larger files answer
//! EIO. With `--no-open` it answers the first OPEN with ENOSYS, and the kernel
//! sends no OPEN or RELEASE after it (`FUSE_NO_OPEN_SUPPORT`): the floor of a
//! design without passthrough. Runs in the foreground until unmounted (`umount MNT`); run it under
//! `chrt --batch 0`, as unistore's daemon switches itself to `SCHED_BATCH`.
//! Used by `bench/floor.sh` (docs/benchmarks.md).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, Request, SessionACL,
};

const TTL: Duration = Duration::from_secs(365 * 24 * 3600);
const SMALL_MAX: u64 = 1 << 20;
/// As unistore (`fuse/src/fs.rs`: `URING_DEPTH`, `URING_PAYLOAD`).
const URING_DEPTH: usize = 2;
const URING_PAYLOAD: u32 = 1 << 20;

enum Body {
    Dir(Vec<(OsString, u64)>, HashMap<OsString, u64>),
    File(Vec<u8>),
    Link(Vec<u8>),
    Other,
}

struct Node {
    attr: FileAttr,
    body: Body,
}

struct NullFs {
    /// Node `ino` at index `ino - 1`.
    nodes: Vec<Node>,
    /// `--no-open`: answer OPEN with ENOSYS (and offer `FUSE_NO_OPEN_SUPPORT`),
    /// after which the kernel sends no OPEN or RELEASE on this connection, the
    /// design that passthrough rules out (it attaches a backing file at OPEN).
    no_open: bool,
}

fn attr_of(ino: u64, m: &std::fs::Metadata) -> FileAttr {
    let ft = m.file_type();
    let kind = if ft.is_dir() {
        FileType::Directory
    } else if ft.is_symlink() {
        FileType::Symlink
    } else if ft.is_char_device() {
        FileType::CharDevice
    } else if ft.is_block_device() {
        FileType::BlockDevice
    } else if ft.is_fifo() {
        FileType::NamedPipe
    } else if ft.is_socket() {
        FileType::Socket
    } else {
        FileType::RegularFile
    };
    let t = UNIX_EPOCH + Duration::new(m.mtime().max(0) as u64, m.mtime_nsec() as u32);
    FileAttr {
        ino: INodeNo(ino),
        size: m.size(),
        blocks: m.blocks(),
        atime: t,
        mtime: t,
        ctime: t,
        crtime: t,
        kind,
        perm: (m.mode() & 0o7777) as u16,
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev() as u32,
        blksize: 4096,
        flags: 0,
    }
}

impl NullFs {
    fn load(src: &Path, no_open: bool) -> anyhow::Result<NullFs> {
        let mut fs = NullFs {
            nodes: Vec::new(),
            no_open,
        };
        fs.add(src)?;
        Ok(fs)
    }

    /// Adds `path` (and everything below it); returns its node number.
    fn add(&mut self, path: &Path) -> anyhow::Result<u64> {
        let m = std::fs::symlink_metadata(path).with_context(|| format!("{}", path.display()))?;
        let ino = self.nodes.len() as u64 + 1;
        let attr = attr_of(ino, &m);
        self.nodes.push(Node {
            attr,
            body: Body::Other,
        });
        let body = match attr.kind {
            FileType::Directory => {
                let mut names: Vec<OsString> = std::fs::read_dir(path)?
                    .map(|e| e.map(|e| e.file_name()))
                    .collect::<Result<_, _>>()?;
                names.sort();
                let mut list = Vec::with_capacity(names.len());
                for name in names {
                    let child = self.add(&path.join(&name))?;
                    list.push((name, child));
                }
                let index = list.iter().cloned().collect();
                Body::Dir(list, index)
            }
            FileType::Symlink => {
                Body::Link(std::fs::read_link(path)?.as_os_str().as_bytes().to_vec())
            }
            FileType::RegularFile if m.size() < SMALL_MAX => Body::File(std::fs::read(path)?),
            _ => Body::Other,
        };
        self.nodes[(ino - 1) as usize].body = body;
        Ok(ino)
    }

    fn node(&self, ino: INodeNo) -> Option<&Node> {
        self.nodes.get(ino.0.checked_sub(1)? as usize)
    }
}

impl Filesystem for NullFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_readahead(1 << 20);
        for cap in [
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_NO_OPENDIR_SUPPORT,
        ] {
            let _ = config.add_capabilities(cap);
        }
        if self.no_open {
            let _ = config.add_capabilities(InitFlags::FUSE_NO_OPEN_SUPPORT);
        }
        if config
            .add_capabilities(InitFlags::FUSE_OVER_IO_URING)
            .is_err()
            || config.set_max_write(URING_PAYLOAD).is_err()
        {
            return Err(std::io::Error::other(
                "kernel does not offer FUSE over io_uring (is /sys/module/fuse/parameters/enable_uring Y?)",
            ));
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.node(parent).map(|n| &n.body) {
            Some(Body::Dir(_, index)) => match index.get(name) {
                Some(&ino) => {
                    reply.entry(&TTL, &self.nodes[(ino - 1) as usize].attr, Generation(0))
                }
                None => reply.error(Errno::ENOENT),
            },
            Some(_) => reply.error(Errno::ENOTDIR),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.node(ino) {
            Some(n) => reply.attr(&TTL, &n.attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.node(ino).map(|n| &n.body) {
            Some(Body::Link(t)) => reply.data(t),
            _ => reply.error(Errno::EINVAL),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        if self.no_open {
            return reply.error(Errno::ENOSYS);
        }
        match self.node(ino).map(|n| &n.body) {
            Some(Body::File(_)) => reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE),
            Some(Body::Dir(..)) => reply.error(Errno::EISDIR),
            Some(_) => reply.error(Errno::EIO),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.node(ino).map(|n| &n.body) {
            Some(Body::File(b)) => {
                let start = (offset as usize).min(b.len());
                let end = (start + size as usize).min(b.len());
                reply.data(&b[start..end]);
            }
            _ => reply.error(Errno::EIO),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

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
        let Some(Body::Dir(list, _)) = self.node(ino).map(|n| &n.body) else {
            return reply.error(Errno::ENOTDIR);
        };
        for (i, (name, child)) in list.iter().enumerate().skip(offset as usize) {
            let kind = self.nodes[(*child - 1) as usize].attr.kind;
            if reply.add(INodeNo(*child), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }
}

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let no_open = args.first().is_some_and(|a| a == "--no-open");
    if no_open {
        args.remove(0);
    }
    let [src, mnt] = args.as_slice() else {
        anyhow::bail!("usage: unistore-bench-nullfs [--no-open] SRC MNT");
    };
    let fs = NullFs::load(Path::new(src), no_open)?;
    eprintln!("nullfs: {} nodes from {src}", fs.nodes.len());
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        MountOption::FSName("nullfs".into()),
        MountOption::RO,
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
    ];
    config.acl = SessionACL::All;
    config.n_threads = Some(2);
    config.io_uring_depth = URING_DEPTH;
    config.io_uring_payload = URING_PAYLOAD as usize;
    fuser::Session::new(fs, mnt, &config)
        .with_context(|| format!("mounting {mnt}"))?
        .run()
        .context("serving")
}
