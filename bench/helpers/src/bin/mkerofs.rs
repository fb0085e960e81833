//! `unistore-bench-mkerofs STORE IMAGE OUT.erofs`: the composefs EROFS image
//! (metadata only; regular files > 64 bytes are overlay metacopy/redirect
//! references to `STORE/repo/objects/XX/…`) of IMAGE's flattened root
//! filesystem, built with the `composefs` crate from the same merged tree the
//! per-image view serves. Mount it as composefs does:
//!
//! ```sh
//! mount -t erofs -o loop,ro OUT.erofs E
//! mount -t overlay overlay -o ro,metacopy=on,redirect_dir=on,lowerdir=E::STORE/repo/objects M
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use anyhow::Context as _;
use composefs::fsverity::{FsVerityHashValue, Sha256HashValue};
use composefs::generic_tree::{LeafContent, LeafId, Stat};
use composefs::tree::{Directory, FileSystem, Inode, RegularFile};
use unistore_store::index::{Data, Kind};
use unistore_store::view::merge::{merged_tree, MergedTree, NodeId};

type Fs = FileSystem<Sha256HashValue>;

fn stat_of(t: &MergedTree, id: NodeId) -> Stat {
    let e = &t.node(id).entry;
    Stat {
        st_mode: e.mode & 0o7777,
        st_uid: e.uid,
        st_gid: e.gid,
        st_mtim_sec: e.mtime,
        st_mtim_nsec: e.mtime_nsec,
        xattrs: e
            .xattrs
            .iter()
            .map(|(k, v)| (Box::from(OsStr::from_bytes(k)), v.clone().into_boxed_slice()))
            .collect(),
    }
}

fn dev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (major as u64, minor as u64);
    (mi & 0xff) | ((ma & 0xfff) << 8) | ((mi & !0xff) << 12) | ((ma & !0xfff) << 32)
}

fn build_dir(
    t: &MergedTree,
    id: NodeId,
    fs: &mut Fs,
    leaves: &mut HashMap<NodeId, LeafId>,
) -> anyhow::Result<Directory<Sha256HashValue>> {
    let mut dir = Directory::new(stat_of(t, id));
    for (name, child) in &t.node(id).children {
        let c = t.node(*child);
        let inode = if c.is_dir() {
            Inode::Directory(Box::new(build_dir(t, *child, fs, leaves)?))
        } else if let Some(l) = leaves.get(child) {
            Inode::leaf(*l) // another name of a hard-linked node
        } else {
            let e = &c.entry;
            let content = match e.kind {
                Kind::File => LeafContent::Regular(match &e.data {
                    Data::Object(hex) => RegularFile::External(
                        Sha256HashValue::from_hex(hex)
                            .with_context(|| format!("object id {hex}"))?,
                        e.size,
                    ),
                    Data::Inline(b) => RegularFile::Inline(b.clone().into_boxed_slice()),
                    Data::None => RegularFile::Inline(Box::new([])),
                }),
                Kind::Symlink => LeafContent::Symlink(Box::from(OsStr::from_bytes(&e.link))),
                Kind::Char => LeafContent::CharacterDevice(dev(e.rdev_major, e.rdev_minor)),
                Kind::Block => LeafContent::BlockDevice(dev(e.rdev_major, e.rdev_minor)),
                Kind::Fifo => LeafContent::Fifo,
                k => anyhow::bail!("unexpected {k:?} in a merged tree"),
            };
            let l = fs.push_leaf(stat_of(t, *child), content);
            leaves.insert(*child, l);
            Inode::leaf(l)
        };
        dir.insert(OsStr::from_bytes(name), inode);
    }
    Ok(dir)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, store, image, out] = &args[..] else {
        anyhow::bail!("usage: unistore-bench-mkerofs STORE IMAGE OUT.erofs");
    };
    let store = unistore_store::Store::open(std::path::Path::new(store))?;
    let cat = store.catalog()?;
    let entry = cat
        .find(image)
        .with_context(|| format!("no image {image} in the store"))?;
    let rec = store.image(entry)?;
    let layers = rec
        .layers
        .iter()
        .map(|l| store.layer_index(&l.meta))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let tree = merged_tree(&layers);
    let mut fs = Fs::new(stat_of(&tree, MergedTree::ROOT));
    let mut leaves = HashMap::new();
    let root = build_dir(&tree, MergedTree::ROOT, &mut fs, &mut leaves)?;
    fs.root = root;
    let fs = composefs::erofs::writer::ValidatedFileSystem::new(fs)?;
    let img = composefs::erofs::writer::mkfs_erofs(&fs);
    std::fs::write(out, &img).with_context(|| format!("writing {out}"))?;
    eprintln!(
        "{out}: {} bytes, {} nodes ({} leaves)",
        img.len(),
        tree.len(),
        fs.leaves.len()
    );
    Ok(())
}
