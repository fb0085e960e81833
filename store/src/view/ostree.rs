//! The ostree view: a read-only `mode=bare` ostree repository in which every
//! image of the catalog is a commit of its flattened root filesystem. Layout,
//! ref names and checksums are documented in `docs/views/ostree.md`; the
//! object formats are in [`crate::ostree_format`].
//!
//! ```text
//! ostree/
//!   config                      [core] repo_version=1 mode=bare
//!   objects/XX/YYYY….file       content objects: regular files (backed by the
//!                               store's object, or inline bytes) and symlinks,
//!                               with exactly the checksummed uid/gid/mode/xattrs
//!   objects/XX/YYYY….dirtree    \
//!   objects/XX/YYYY….dirmeta     } GVariant bytes
//!   objects/XX/YYYY….commit     /
//!   refs/heads/unistore/<escaped name>                 plain commit of the image
//!   refs/heads/unistore/id/<image id>                  (images without a name)
//!   refs/heads/ostree/container/image/<escaped ref>    ostree-rs-ext merge commit
//!   refs/heads/ostree/container/blob/<escaped digest>  ostree-rs-ext layer commit
//!   refs/remotes/  refs/mirrors/  tmp/                 empty
//! ```
//!
//! **Plain commits** ([`plain_commit`]): the tree is [`merged_tree`] of the
//! image's layers. Regular files use the content checksum computed at import
//! (`Entry::ostree`); symlinks are checksummed from their header; directories
//! get `.dirmeta`/`.dirtree` objects. What ostree cannot represent — FIFOs,
//! sockets, character and block devices, names or symlink targets that are
//! not UTF-8 — is left out and listed (absolute paths, sorted) under the
//! commit metadata key [`SKIPPED_KEY`]. Commit metadata:
//! `unistore.manifest-digest`, `unistore.config-digest`, `version` (from the
//! `org.opencontainers.image.version` label, if any) and
//! [`SKIPPED_KEY`] (if anything was left out); no parent, no ref binding;
//! subject `Image <config digest>`; body lists manifest and layer diffIDs;
//! timestamp = config `created` (0 if absent). The commit therefore depends
//! only on the image, not on its names.
//!
//! **ostree-rs-ext commits** (`ostree container image list` conventions):
//! see `container_commits` below and `docs/views/ostree.md`.
//!
//! **Laziness**: the commits of an image are computed when the view is
//! built (at mount and after a catalog change) from the per-layer indexes
//! only (no file data is read), and kept in [`OstreeCache`] across catalog
//! reloads; object nodes are shared by all images and created once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::Context as _;

use super::merge::{merged_tree, MergedTree};
use super::tree::{Attr, Content, Node, NodeKind, Vfs};
use crate::catalog::{Catalog, CatalogEntry};
use crate::index::{Data, Entry, Kind, LayerIndex};
use crate::ostree_format::{
    self as fmt, canonical_xattrs, escape_ref_component, is_valid_ref, Checksum, Commit, Value,
    S_IFDIR,
};
use crate::records::ImageRecord;
use crate::repo::Store;

/// Commit metadata key (`as`) listing the absolute paths left out of a commit.
pub const SKIPPED_KEY: &str = "unistore.skipped";
/// Prefix of the refs of plain commits.
pub const REF_PREFIX: &str = "unistore";
/// ostree-rs-ext's prefix of image (merge commit) refs.
pub const IMAGE_REF_PREFIX: &str = "ostree/container/image";
/// ostree-rs-ext's prefix of layer refs.
pub const BLOB_REF_PREFIX: &str = "ostree/container/blob";
/// Transport the ostree-rs-ext image refs name (the images are also in the
/// containers-storage view).
pub const IMAGE_TRANSPORT: &str = "containers-storage:";
/// `ostree.importer.version` of the ostree-rs-ext commits.
pub const IMPORTER_VERSION: &str = concat!("unistore ", env!("CARGO_PKG_VERSION"));
/// The repository's `config`.
pub const CONFIG: &str = "[core]\nrepo_version=1\nmode=bare\n";

/// What an object of the repository looks like on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectData {
    /// A regular file's `.file` object.
    File {
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
        /// Permission bits incl. setuid/setgid/sticky.
        perm: u32,
        /// Exactly the checksummed xattrs (sorted, no empty values).
        xattrs: Vec<(Vec<u8>, Vec<u8>)>,
        /// Size.
        size: u64,
        /// Where the bytes are.
        data: Data,
    },
    /// A symlink's `.file` object.
    Symlink {
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
        /// Permission bits.
        perm: u32,
        /// Target.
        target: Vec<u8>,
        /// Exactly the checksummed xattrs.
        xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// `.dirtree`, `.dirmeta` or `.commit` bytes.
    Meta(Arc<[u8]>),
}

/// Objects by name (`<64 hex>.<ext>`).
pub type Objects = BTreeMap<String, ObjectData>;

fn add_meta(objs: &mut Objects, bytes: Vec<u8>, ext: &str) -> Checksum {
    let c = fmt::checksum(&bytes);
    objs.entry(format!("{}.{ext}", fmt::to_hex(&c)))
        .or_insert_with(|| ObjectData::Meta(Arc::from(bytes)));
    c
}

/// A directory about to be committed.
#[derive(Debug, Clone)]
struct ODir {
    uid: u32,
    gid: u32,
    perm: u32,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    children: BTreeMap<Vec<u8>, OTree>,
}

impl ODir {
    fn new(uid: u32, gid: u32, perm: u32) -> ODir {
        ODir {
            uid,
            gid,
            perm,
            xattrs: Vec::new(),
            children: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone)]
enum OTree {
    /// A content object (regular file or symlink) by checksum.
    File(Checksum),
    Dir(Box<ODir>),
}

fn content_object(
    e: &Entry,
    kind: Kind,
    objs: &mut Objects,
    check_inline: bool,
) -> anyhow::Result<Checksum> {
    let (csum, data) = content_object_data(e, kind, check_inline)?;
    objs.entry(format!("{}.file", fmt::to_hex(&csum)))
        .or_insert(data);
    Ok(csum)
}

/// Checksum and on-disk form of a content object.
fn content_object_data(
    e: &Entry,
    kind: Kind,
    check_inline: bool,
) -> anyhow::Result<(Checksum, ObjectData)> {
    let xattrs: Vec<(Vec<u8>, Vec<u8>)> = canonical_xattrs(&e.xattrs)
        .into_iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect();
    let (csum, data) = match kind {
        Kind::Symlink => (
            fmt::symlink_checksum(e.uid, e.gid, e.mode, &e.link, &e.xattrs),
            ObjectData::Symlink {
                uid: e.uid,
                gid: e.gid,
                perm: e.mode & 0o7777,
                target: e.link.clone(),
                xattrs,
            },
        ),
        _ => {
            let csum = match (&e.ostree, kind) {
                // Whiteout and opaque markers are empty regular files in the layer tar.
                (_, Kind::Whiteout | Kind::Opaque) => {
                    fmt::file_checksum(e.uid, e.gid, e.mode, &e.xattrs, b"")
                }
                (Some(h), _) => fmt::from_hex(h).with_context(|| {
                    format!(
                        "bad ostree checksum `{h}` in the index for `{}`",
                        String::from_utf8_lossy(&e.path)
                    )
                })?,
                (None, _) => anyhow::bail!(
                    "no ostree checksum in the index for `{}`; re-import the image",
                    String::from_utf8_lossy(&e.path)
                ),
            };
            if check_inline {
                let body: Option<&[u8]> = match &e.data {
                    Data::Inline(b) => Some(b),
                    Data::None => Some(b""),
                    Data::Object(_) => None,
                };
                if let Some(body) = body {
                    let want = fmt::file_checksum(e.uid, e.gid, e.mode, &e.xattrs, body);
                    anyhow::ensure!(
                        want == csum,
                        "the index has a wrong ostree checksum for `{}` (layer imported by an \
                         older unistore?); re-import the image",
                        String::from_utf8_lossy(&e.path)
                    );
                }
            }
            let size = if matches!(kind, Kind::Whiteout | Kind::Opaque) {
                0
            } else {
                e.size
            };
            let data = if size == 0 {
                Data::None
            } else {
                e.data.clone()
            };
            (
                csum,
                ObjectData::File {
                    uid: e.uid,
                    gid: e.gid,
                    perm: e.mode & 0o7777,
                    xattrs,
                    size,
                    data,
                },
            )
        }
    };
    Ok((csum, data))
}

/// The ostree form of a merged tree; fills `objs` with content objects and
/// returns the root and the paths left out.
fn otree_of_merged(tree: &MergedTree, objs: &mut Objects) -> anyhow::Result<(ODir, Vec<String>)> {
    let n = tree.len();
    let mut built: Vec<Option<OTree>> = vec![None; n];
    let mut bad: Vec<bool> = vec![false; n];
    // Content objects of the files that end up in the tree (a file below a
    // skipped directory makes none).
    let mut data: HashMap<Checksum, ObjectData> = HashMap::new();
    // Non-directories first (a hard-linked file may be numbered before one
    // of its parents); then directories bottom-up (a directory has exactly
    // one parent, numbered before it).
    for id in 0..n {
        let e = &tree.node(id).entry;
        let (csum, d) = match e.kind {
            Kind::Dir => continue,
            Kind::File => content_object_data(e, Kind::File, true)?,
            Kind::Symlink if std::str::from_utf8(&e.link).is_ok() => {
                content_object_data(e, Kind::Symlink, false)?
            }
            _ => {
                bad[id] = true;
                continue;
            }
        };
        built[id] = Some(OTree::File(csum));
        data.entry(csum).or_insert(d);
    }
    for id in (0..n).rev() {
        let node = tree.node(id);
        let e = &node.entry;
        built[id] = match e.kind {
            Kind::Dir => {
                let mut d = ODir::new(e.uid, e.gid, e.mode & 0o7777);
                d.xattrs = e.xattrs.clone();
                for (name, cid) in &node.children {
                    if std::str::from_utf8(name).is_err() || bad[*cid] {
                        continue;
                    }
                    let child = match &built[*cid] {
                        Some(OTree::File(c)) => OTree::File(*c),
                        Some(OTree::Dir(_)) => built[*cid].take().expect("checked"),
                        None => continue,
                    };
                    d.children.insert(name.clone(), child);
                }
                Some(OTree::Dir(Box::new(d)))
            }
            _ => continue,
        };
    }
    // Paths left out: specials, bad symlinks, non-UTF-8 names (topmost only).
    let mut skipped = Vec::new();
    let mut skip_prefix: Option<Vec<u8>> = None;
    for (path, id) in tree.walk() {
        if let Some(p) = &skip_prefix {
            if path.starts_with(p) && path.get(p.len()) == Some(&b'/') {
                continue;
            }
        }
        let name = path.rsplit(|&b| b == b'/').next().unwrap_or(b"");
        if bad[id] || std::str::from_utf8(name).is_err() {
            skipped.push(format!("/{}", String::from_utf8_lossy(&path)));
            skip_prefix = Some(path.clone());
        }
    }
    skipped.sort();
    let root = match built[0].take() {
        Some(OTree::Dir(root)) => *root,
        _ => anyhow::bail!("merged tree has no root directory"),
    };
    let mut stack = vec![&root];
    while let Some(d) = stack.pop() {
        for child in d.children.values() {
            match child {
                OTree::Dir(sub) => stack.push(sub),
                OTree::File(c) => {
                    if let Some(obj) = data.get(c) {
                        objs.entry(format!("{}.file", fmt::to_hex(c)))
                            .or_insert_with(|| obj.clone());
                    }
                }
            }
        }
    }
    Ok((root, skipped))
}

/// Write the `.dirtree`/`.dirmeta` objects of `root`; returns (tree, meta).
fn write_tree(root: &ODir, objs: &mut Objects) -> (Checksum, Checksum) {
    struct Frame<'a> {
        dir: &'a ODir,
        it: std::collections::btree_map::Iter<'a, Vec<u8>, OTree>,
        name: Vec<u8>,
        files: Vec<(Vec<u8>, Checksum)>,
        dirs: Vec<(Vec<u8>, Checksum, Checksum)>,
    }
    fn frame(dir: &ODir, name: Vec<u8>) -> Frame<'_> {
        Frame {
            dir,
            it: dir.children.iter(),
            name,
            files: Vec::new(),
            dirs: Vec::new(),
        }
    }
    let mut stack = vec![frame(root, Vec::new())];
    loop {
        let top = stack.last_mut().expect("stack is never empty here");
        match top.it.next() {
            Some((name, OTree::File(c))) => top.files.push((name.clone(), *c)),
            Some((name, OTree::Dir(d))) => {
                let f = frame(d, name.clone());
                stack.push(f);
            }
            None => {
                let f = stack.pop().expect("non-empty");
                let tree = add_meta(objs, fmt::dirtree(&f.files, &f.dirs), "dirtree");
                let meta = add_meta(
                    objs,
                    fmt::dirmeta(f.dir.uid, f.dir.gid, S_IFDIR | f.dir.perm, &f.dir.xattrs),
                    "dirmeta",
                );
                match stack.last_mut() {
                    Some(parent) => parent.dirs.push((f.name, tree, meta)),
                    None => return (tree, meta),
                }
            }
        }
    }
}

/// The commits one image contributes to the repository.
#[derive(Debug, Clone, Default)]
pub struct ImageCommits {
    /// Plain commit of the flattened root filesystem (hex).
    pub commit: String,
    /// Paths left out of the plain commit.
    pub skipped: Vec<String>,
    /// ostree-rs-ext merge commit (hex), if it could be built.
    pub container_commit: Option<String>,
    /// ostree-rs-ext layer commits: (blob digest, commit hex), base first.
    pub layer_commits: Vec<(String, String)>,
    /// Every object the commits reach.
    pub objects: Objects,
}

fn config_json(store: &Store, rec: &ImageRecord) -> Option<serde_json::Value> {
    let bytes = store.read_object(&rec.config_object).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn timestamp(rec: &ImageRecord) -> u64 {
    rec.created
        .as_deref()
        .and_then(fmt::parse_rfc3339)
        .map(|t| t.max(0) as u64)
        .unwrap_or(0)
}

/// Build the plain commit of an image from its layer indexes (base first).
/// Returns the commit checksum and the paths left out; objects go to `objs`.
pub fn plain_commit(
    rec: &ImageRecord,
    config: Option<&serde_json::Value>,
    layers: &[LayerIndex],
    objs: &mut Objects,
) -> anyhow::Result<(String, Vec<String>)> {
    let tree = merged_tree(layers);
    let (root, skipped) = otree_of_merged(&tree, objs)?;
    let commit = commit_from_root(rec, config, &root, &skipped, objs);
    Ok((commit, skipped))
}

/// First path component as ostree-rs-ext maps it (`tar/write.rs`,
/// `normalize_validate_path`, default options): `usr` stays, `etc` becomes
/// `usr/etc`, `var` becomes `usr/share/factory/var`, anything else is filtered.
fn container_toplevel(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "usr" => Some(&["usr"]),
        "etc" => Some(&["usr", "etc"]),
        "var" => Some(&["usr", "share", "factory", "var"]),
        _ => None,
    }
}

/// Place `child` at `dest` (components) below `root`, creating missing
/// directories `0755` with `uid:gid`.
fn place(root: &mut ODir, dest: &[&str], child: OTree, uid: u32, gid: u32) {
    let mut cur = root;
    for (i, comp) in dest.iter().enumerate() {
        let key = comp.as_bytes().to_vec();
        if i + 1 == dest.len() {
            match (cur.children.get_mut(&key), child) {
                // Merge a directory into an existing one (etc into an existing usr/etc).
                (Some(OTree::Dir(existing)), OTree::Dir(new)) => {
                    let new = *new;
                    existing.uid = new.uid;
                    existing.gid = new.gid;
                    existing.perm = new.perm;
                    existing.xattrs = new.xattrs;
                    existing.children.extend(new.children);
                }
                (_, child) => {
                    cur.children.insert(key, child);
                }
            }
            return;
        }
        let next = cur
            .children
            .entry(key)
            .or_insert_with(|| OTree::Dir(Box::new(ODir::new(uid, gid, 0o755))));
        if let OTree::File(_) = next {
            *next = OTree::Dir(Box::new(ODir::new(uid, gid, 0o755)));
        }
        let OTree::Dir(d) = next else { unreachable!() };
        cur = d;
    }
}

/// The ostree-rs-ext layer commit tree of one layer tar, as
/// `ostree commit --tar-autocreate-parents` builds it from the tar that
/// ostree-rs-ext's `filter_tar` writes: paths remapped by
/// [`container_toplevel`], whiteouts kept as `.wh.*` files, parents that
/// are not in the archive created `0755` with the owner of the member that
/// needs them (resetting the metadata of the root and of every directory
/// on that path, as libostree does), root `0755 0:0` if nothing set it.
/// Returns the root and the filtered counts per top-level name.
fn layer_tree(
    layer: &LayerIndex,
    objs: &mut Objects,
) -> anyhow::Result<(ODir, BTreeMap<String, u32>)> {
    let mut children: BTreeMap<Vec<u8>, OTree> = BTreeMap::new();
    let mut filtered: BTreeMap<String, u32> = BTreeMap::new();
    let mut root_attrs = (0u32, 0u32, 0o755u32, Vec::new());

    // Member path as it appeared in the tar.
    let member_path = |e: &Entry| -> Vec<u8> {
        match e.kind {
            Kind::Whiteout => {
                let (parent, name) = match e.path.iter().rposition(|&b| b == b'/') {
                    Some(i) => (&e.path[..=i], &e.path[i + 1..]),
                    None => (&b""[..], &e.path[..]),
                };
                [parent, b".wh.", name].concat()
            }
            Kind::Opaque if e.path.is_empty() => b".wh..wh..opq".to_vec(),
            Kind::Opaque => [&e.path[..], b"/.wh..wh..opq"].concat(),
            _ => e.path.clone(),
        }
    };
    // Remap a member path; None = filtered (counted under its top-level name).
    let remap = |p: &[u8], filtered: &mut BTreeMap<String, u32>, count: bool| {
        let s = String::from_utf8_lossy(p).into_owned();
        let mut comps = s.split('/').filter(|c| !c.is_empty());
        let first = comps.next()?.to_string();
        match container_toplevel(&first) {
            Some(prefix) => {
                let mut out: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
                out.extend(comps.map(str::to_string));
                Some(out)
            }
            None => {
                if count {
                    *filtered.entry(first).or_default() += 1;
                }
                None
            }
        }
    };

    fn walk_mut<'a>(
        children: &'a mut BTreeMap<Vec<u8>, OTree>,
        comps: &[String],
    ) -> Option<&'a mut ODir> {
        let (first, rest) = comps.split_first()?;
        match children.get_mut(first.as_bytes())? {
            OTree::Dir(d) => {
                if rest.is_empty() {
                    Some(d)
                } else {
                    walk_mut(&mut d.children, rest)
                }
            }
            OTree::File(_) => None,
        }
    }
    fn lookup_file(children: &BTreeMap<Vec<u8>, OTree>, comps: &[String]) -> Option<Checksum> {
        let (first, rest) = comps.split_first()?;
        match (children.get(first.as_bytes())?, rest.is_empty()) {
            (OTree::File(c), true) => Some(*c),
            (OTree::Dir(d), false) => lookup_file(&d.children, rest),
            _ => None,
        }
    }

    for e in &layer.entries {
        let path = member_path(e);
        if path.is_empty() {
            if e.kind == Kind::Dir {
                root_attrs = (e.uid, e.gid, e.mode & 0o7777, e.xattrs.clone());
            }
            continue;
        }
        let Some(comps) = remap(&path, &mut filtered, true) else {
            continue;
        };
        if std::str::from_utf8(&path).is_err() {
            continue;
        }
        let (parent, name) = comps.split_at(comps.len() - 1);
        // Parent directory, autocreated (with libostree's metadata reset) if missing.
        if !parent.is_empty() && walk_mut(&mut children, parent).is_none() {
            root_attrs = (e.uid, e.gid, 0o755, Vec::new());
            let mut cur = &mut children;
            for c in parent {
                let slot = cur
                    .entry(c.as_bytes().to_vec())
                    .or_insert_with(|| OTree::Dir(Box::new(ODir::new(e.uid, e.gid, 0o755))));
                if let OTree::File(_) = slot {
                    *slot = OTree::Dir(Box::new(ODir::new(e.uid, e.gid, 0o755)));
                }
                let OTree::Dir(d) = slot else { unreachable!() };
                d.uid = e.uid;
                d.gid = e.gid;
                d.perm = 0o755;
                d.xattrs.clear();
                cur = &mut d.children;
            }
        }
        let dir_children = if parent.is_empty() {
            &mut children
        } else {
            match walk_mut(&mut children, parent) {
                Some(d) => &mut d.children,
                None => continue,
            }
        };
        let key = name[0].as_bytes().to_vec();
        match e.kind {
            Kind::Dir => match dir_children.get_mut(&key) {
                Some(OTree::Dir(d)) => {
                    d.uid = e.uid;
                    d.gid = e.gid;
                    d.perm = e.mode & 0o7777;
                    d.xattrs = e.xattrs.clone();
                }
                _ => {
                    let mut d = ODir::new(e.uid, e.gid, e.mode & 0o7777);
                    d.xattrs = e.xattrs.clone();
                    dir_children.insert(key, OTree::Dir(Box::new(d)));
                }
            },
            Kind::File | Kind::Whiteout | Kind::Opaque => {
                let c = content_object(e, e.kind, objs, false)?;
                dir_children.insert(key, OTree::File(c));
            }
            Kind::Symlink if std::str::from_utf8(&e.link).is_ok() => {
                let c = content_object(e, Kind::Symlink, objs, false)?;
                dir_children.insert(key, OTree::File(c));
            }
            Kind::HardLink => {
                let target = remap(&e.link, &mut filtered, false);
                if let Some(c) = target.and_then(|t| lookup_file(&children, &t)) {
                    let dir_children = if parent.is_empty() {
                        &mut children
                    } else {
                        match walk_mut(&mut children, parent) {
                            Some(d) => &mut d.children,
                            None => continue,
                        }
                    };
                    dir_children.insert(key, OTree::File(c));
                }
            }
            _ => {} // devices, FIFOs: ostree cannot store them
        }
    }
    let (uid, gid, perm, xattrs) = root_attrs;
    let mut r = ODir::new(uid, gid, perm);
    r.xattrs = xattrs;
    r.children = children;
    Ok((r, filtered))
}

/// The ostree-rs-ext commits of an image (reference/ostree-repo.md §10):
///
/// - per layer, `ostree/container/blob/<escaped blob digest>` → a commit of
///   the layer tar as ostree-rs-ext imports it ([`layer_tree`]): metadata
///   `ostree.importer.version`, timestamp 0, empty subject and body;
/// - per name, `ostree/container/image/<escaped containers-storage:NAME>` →
///   the merge commit: the image's flattened tree (whiteouts and opaque
///   directories applied as in the plain commit) with ostree-rs-ext's
///   top-level mapping (`/usr` kept, `/etc` → `/usr/etc`,
///   `/var` → `/usr/share/factory/var`, everything else dropped); metadata
///   `ostree.manifest-digest`, `ostree.manifest`,
///   `ostree.container.image-config`, `ostree.importer.version`,
///   `ostree.tar-filtered` (per layer: top-level name → dropped members);
///   timestamp = config `created`; empty subject and body.
fn container_commits(
    rec: &ImageRecord,
    manifest: &[u8],
    config: &[u8],
    layers: &[LayerIndex],
    src: &ODir,
    objs: &mut Objects,
) -> anyhow::Result<(String, Vec<(String, String)>)> {
    let mut layer_commits = Vec::new();
    let mut tar_filtered: Vec<(String, BTreeMap<String, u32>)> = Vec::new();
    for (l, idx) in rec.layers.iter().zip(layers) {
        let (root, filtered) = layer_tree(idx, objs)?;
        let (t, m) = write_tree(&root, objs);
        let commit = Commit {
            metadata: vec![(
                "ostree.importer.version".into(),
                Value::str(IMPORTER_VERSION),
            )],
            root_tree: t,
            root_meta: m,
            ..Default::default()
        };
        let c = add_meta(objs, commit.serialize(), "commit");
        layer_commits.push((l.blob_digest.clone(), fmt::to_hex(&c)));
        if !filtered.is_empty() {
            tar_filtered.push((l.blob_digest.clone(), filtered));
        }
    }
    // Merge commit: the flattened tree with the top-level mapping.
    let mut root = ODir {
        children: BTreeMap::new(),
        ..ODir::new(src.uid, src.gid, src.perm)
    };
    root.xattrs = src.xattrs.clone();
    for (name, child) in &src.children {
        let Some(dest) = container_toplevel(&String::from_utf8_lossy(name)) else {
            continue;
        };
        place(&mut root, dest, child.clone(), 0, 0);
    }
    let (t, m) = write_tree(&root, objs);
    let mut metadata = vec![
        (
            "ostree.manifest-digest".to_string(),
            Value::str(&rec.manifest_digest),
        ),
        ("ostree.manifest".to_string(), Value::Str(manifest.to_vec())),
        (
            "ostree.container.image-config".to_string(),
            Value::Str(config.to_vec()),
        ),
        (
            "ostree.importer.version".to_string(),
            Value::str(IMPORTER_VERSION),
        ),
    ];
    if !tar_filtered.is_empty() {
        metadata.push((
            "ostree.tar-filtered".to_string(),
            Value::Array(
                "{sa{su}}".into(),
                tar_filtered
                    .into_iter()
                    .map(|(digest, m)| {
                        Value::DictEntry(
                            Box::new(Value::str(&digest)),
                            Box::new(Value::Array(
                                "{su}".into(),
                                m.into_iter()
                                    .map(|(k, v)| {
                                        Value::DictEntry(
                                            Box::new(Value::str(&k)),
                                            Box::new(Value::U32(v)),
                                        )
                                    })
                                    .collect(),
                            )),
                        )
                    })
                    .collect(),
            ),
        ));
    }
    let commit = Commit {
        metadata,
        timestamp: timestamp(rec),
        root_tree: t,
        root_meta: m,
        ..Default::default()
    };
    let c = add_meta(objs, commit.serialize(), "commit");
    Ok((fmt::to_hex(&c), layer_commits))
}

/// Compute every commit of `entry`'s image. Reads the image record, the
/// manifest, the config and the layer indexes — never file data.
pub fn image_commits(store: &Store, entry: &CatalogEntry) -> anyhow::Result<ImageCommits> {
    let rec = store.image(entry)?;
    let layers = rec
        .layers
        .iter()
        .map(|l| store.layer_index(&l.meta))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let manifest = store.read_object(&rec.manifest_object)?;
    let config = store.read_object(&rec.config_object)?;
    let config_v: Option<serde_json::Value> = serde_json::from_slice(&config).ok();
    let mut objs = Objects::new();

    let tree = merged_tree(&layers);
    let (root, skipped) = otree_of_merged(&tree, &mut objs)?;
    drop(tree);
    let commit = commit_from_root(&rec, config_v.as_ref(), &root, &skipped, &mut objs);
    let (container_commit, layer_commits) =
        match container_commits(&rec, &manifest, &config, &layers, &root, &mut objs) {
            Ok((c, l)) => (Some(c), l),
            Err(e) => {
                tracing::warn!(image = %entry.id, "no ostree-rs-ext commits: {e:#}");
                (None, Vec::new())
            }
        };
    Ok(ImageCommits {
        commit,
        skipped,
        container_commit,
        layer_commits,
        objects: objs,
    })
}

fn commit_from_root(
    rec: &ImageRecord,
    config: Option<&serde_json::Value>,
    root: &ODir,
    skipped: &[String],
    objs: &mut Objects,
) -> String {
    let (root_tree, root_meta) = write_tree(root, objs);
    let mut metadata = vec![
        (
            "unistore.manifest-digest".to_string(),
            Value::str(&rec.manifest_digest),
        ),
        (
            "unistore.config-digest".to_string(),
            Value::str(&rec.config_digest),
        ),
    ];
    if let Some(v) =
        config.and_then(|c| c["config"]["Labels"]["org.opencontainers.image.version"].as_str())
    {
        metadata.push(("version".to_string(), Value::str(v)));
    }
    if !skipped.is_empty() {
        metadata.push((SKIPPED_KEY.to_string(), Value::str_array(skipped)));
    }
    let mut body = format!("manifest {}\n", rec.manifest_digest);
    for l in &rec.layers {
        body.push_str(&format!("layer {}\n", l.meta.diff_id));
    }
    let commit = Commit {
        metadata,
        parent: None,
        subject: format!("Image {}", rec.config_digest),
        body,
        timestamp: timestamp(rec),
        root_tree,
        root_meta,
    };
    fmt::to_hex(&add_meta(objs, commit.serialize(), "commit"))
}

/// The ref of a plain commit for image name `name`
/// (`unistore/<escaped name>`, escaping as ostree-rs-ext does:
/// `localhost/x:1` → `unistore/localhost/x_3A_1`).
pub fn name_ref(name: &str) -> Option<String> {
    let r = format!("{REF_PREFIX}/{}", escape_ref_component(name));
    is_valid_ref(&r).then_some(r)
}

/// The ref of a plain commit for an image without names: `unistore/id/<id>`.
pub fn id_ref(id: &str) -> String {
    format!("{REF_PREFIX}/id/{id}")
}

/// ostree-rs-ext's image ref for `name`:
/// `ostree/container/image/<escaped containers-storage:NAME>`.
pub fn container_image_ref(name: &str) -> Option<String> {
    let r = format!(
        "{IMAGE_REF_PREFIX}/{}",
        escape_ref_component(&format!("{IMAGE_TRANSPORT}{name}"))
    );
    is_valid_ref(&r).then_some(r)
}

/// ostree-rs-ext's layer ref: `ostree/container/blob/<escaped digest>`.
pub fn blob_ref(digest: &str) -> Option<String> {
    let r = format!("{BLOB_REF_PREFIX}/{}", escape_ref_component(digest));
    is_valid_ref(&r).then_some(r)
}

/// Refs of the plain commit of `entry` (one per name; the id ref if none).
pub fn plain_refs(entry: &CatalogEntry) -> Vec<String> {
    let refs: Vec<String> = entry.names.iter().filter_map(|n| name_ref(n)).collect();
    if refs.is_empty() {
        vec![id_ref(&entry.id)]
    } else {
        refs
    }
}

/// The ref and plain commit checksum of an image, as the mounted view shows
/// them (for `unistore inspect`).
pub fn commit_for(store: &Store, entry: &CatalogEntry) -> anyhow::Result<(String, String)> {
    let rec = store.image(entry)?;
    let layers = rec
        .layers
        .iter()
        .map(|l| store.layer_index(&l.meta))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let config = config_json(store, &rec);
    let mut objs = Objects::new();
    let (commit, _) = plain_commit(&rec, config.as_ref(), &layers, &mut objs)?;
    let r = plain_refs(entry)
        .into_iter()
        .next()
        .expect("at least one ref");
    Ok((r, commit))
}

/// What the view keeps of one image across catalog reloads.
#[derive(Debug)]
struct CachedImage {
    commits: ImageCommits,
    /// Object name → node.
    nodes: Vec<(String, u64)>,
}

/// Nodes and commits that survive catalog reloads.
#[derive(Debug, Default)]
pub struct OstreeCache {
    /// Manifest digest → the image's commits and object nodes.
    images: HashMap<String, Arc<CachedImage>>,
    /// Object name → node (shared by all images).
    objects: HashMap<String, u64>,
}

fn object_node(vfs: &Vfs, data: &ObjectData) -> u64 {
    let node = match data {
        ObjectData::File {
            uid,
            gid,
            perm,
            xattrs,
            size,
            data,
        } => {
            let attr = Attr {
                kind: NodeKind::File,
                perm: *perm,
                uid: *uid,
                gid: *gid,
                size: *size,
                mtime: 0,
                mtime_nsec: 0,
                rdev: (0, 0),
                nlink: 1,
            };
            let content = match data {
                Data::Object(h) => Content::Object(h.clone()),
                Data::Inline(b) => Content::Bytes(Arc::from(b.as_slice())),
                Data::None => Content::None,
            };
            let mut n = Node::new(attr, content, false);
            n.xattrs = xattrs.clone();
            n
        }
        ObjectData::Symlink {
            uid,
            gid,
            perm,
            target,
            xattrs,
        } => {
            let attr = Attr {
                kind: NodeKind::Symlink,
                perm: *perm,
                uid: *uid,
                gid: *gid,
                size: target.len() as u64,
                mtime: 0,
                mtime_nsec: 0,
                rdev: (0, 0),
                nlink: 1,
            };
            let mut n = Node::new(attr, Content::Symlink(target.clone()), false);
            n.xattrs = xattrs.clone();
            n
        }
        ObjectData::Meta(b) => Node::new(
            Attr::file(0o644, b.len() as u64),
            Content::Bytes(Arc::clone(b)),
            false,
        ),
    };
    vfs.push(node)
}

fn dir_node(vfs: &Vfs, children: BTreeMap<Vec<u8>, u64>, dynamic: bool) -> u64 {
    let mut attr = Attr::dir(0o755);
    let subdirs = children
        .values()
        .filter(|&&c| {
            vfs.get(c)
                .ok()
                .flatten()
                .is_some_and(|n| n.attr.kind == NodeKind::Dir)
        })
        .count();
    attr.nlink = 2 + subdirs as u32;
    vfs.push(Node::new(attr, Content::Dir(children), dynamic))
}

/// A directory tree of refs: name components → subtree or commit.
#[derive(Debug, Default)]
struct RefDir {
    dirs: BTreeMap<String, RefDir>,
    files: BTreeMap<String, String>,
}

impl RefDir {
    fn insert(&mut self, name: &str, commit: &str) {
        let comps: Vec<&str> = name.split('/').collect();
        let (last, parents) = comps.split_last().expect("non-empty ref");
        let mut cur = self;
        for p in parents {
            if cur.files.contains_key(*p) {
                tracing::warn!(r#ref = name, "ref conflicts with another ref; left out");
                return;
            }
            cur = cur.dirs.entry(p.to_string()).or_default();
        }
        if cur.dirs.contains_key(*last) {
            tracing::warn!(r#ref = name, "ref conflicts with another ref; left out");
            return;
        }
        cur.files.insert(last.to_string(), commit.to_string());
    }

    fn build(&self, vfs: &Vfs) -> u64 {
        let mut children = BTreeMap::new();
        for (name, d) in &self.dirs {
            children.insert(name.as_bytes().to_vec(), d.build(vfs));
        }
        for (name, commit) in &self.files {
            let data = format!("{commit}\n").into_bytes();
            let n = vfs.push(Node::new(
                Attr::file(0o644, data.len() as u64),
                Content::Bytes(Arc::from(data)),
                false,
            ));
            children.insert(name.as_bytes().to_vec(), n);
        }
        dir_node(vfs, children, false)
    }
}

/// Build the view for `cat`; returns the node of the repository root.
pub fn build(
    store: &Store,
    vfs: &Vfs,
    cat: &Catalog,
    cache: &mut OstreeCache,
) -> anyhow::Result<u64> {
    let started = std::time::Instant::now();
    let mut refs = RefDir::default();
    let mut buckets: BTreeMap<String, BTreeMap<Vec<u8>, u64>> = BTreeMap::new();
    let mut live: HashMap<String, Arc<CachedImage>> = HashMap::new();
    let mut computed = 0usize;

    for entry in &cat.images {
        let img = match cache.images.get(&entry.digest) {
            Some(img) => Arc::clone(img),
            None => {
                let commits = match image_commits(store, entry) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(image = %entry.id, "no ostree commit for this image, hiding it: {e:#}");
                        continue;
                    }
                };
                computed += 1;
                let mut nodes = Vec::with_capacity(commits.objects.len());
                for (name, data) in &commits.objects {
                    let ino = *cache
                        .objects
                        .entry(name.clone())
                        .or_insert_with(|| object_node(vfs, data));
                    nodes.push((name.clone(), ino));
                }
                let mut commits = commits;
                commits.objects.clear(); // the nodes hold what is needed
                Arc::new(CachedImage { commits, nodes })
            }
        };
        for (name, ino) in &img.nodes {
            buckets
                .entry(name[..2].to_string())
                .or_default()
                .insert(name.as_bytes()[2..].to_vec(), *ino);
        }
        for r in plain_refs(entry) {
            refs.insert(&r, &img.commits.commit);
        }
        if let Some(c) = &img.commits.container_commit {
            for n in &entry.names {
                if let Some(r) = container_image_ref(n) {
                    refs.insert(&r, c);
                }
            }
            for (digest, c) in &img.commits.layer_commits {
                if let Some(r) = blob_ref(digest) {
                    refs.insert(&r, c);
                }
            }
        }
        live.insert(entry.digest.clone(), img);
    }
    cache.images = live;

    // Every node below the view root is new on each rebuild and never
    // changes, so only the root is dynamic: the kernel revalidates `ostree/`
    // on every path walk, gets the new root's number after a catalog change
    // and so never uses a stale dentry below it, while everything below is
    // cached (entries, attributes, directory listings, file pages).
    let mut objects = BTreeMap::new();
    for (prefix, children) in buckets {
        objects.insert(prefix.into_bytes(), dir_node(vfs, children, false));
    }
    let objects = dir_node(vfs, objects, false);
    let heads = refs.build(vfs);
    let mut refs_dir = BTreeMap::new();
    refs_dir.insert(b"heads".to_vec(), heads);
    refs_dir.insert(b"remotes".to_vec(), dir_node(vfs, BTreeMap::new(), false));
    refs_dir.insert(b"mirrors".to_vec(), dir_node(vfs, BTreeMap::new(), false));
    let refs_dir = dir_node(vfs, refs_dir, false);

    let mut root = BTreeMap::new();
    root.insert(
        b"config".to_vec(),
        vfs.push(Node::new(
            Attr::file(0o644, CONFIG.len() as u64),
            Content::Bytes(Arc::from(CONFIG.as_bytes())),
            false,
        )),
    );
    root.insert(b"objects".to_vec(), objects);
    root.insert(b"refs".to_vec(), refs_dir);
    root.insert(b"tmp".to_vec(), dir_node(vfs, BTreeMap::new(), false));
    let ino = dir_node(vfs, root, true);
    tracing::info!(
        images = cache.images.len(),
        computed,
        objects = cache.objects.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "ostree view built"
    );
    Ok(ino)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::INDEX_VERSION;
    use crate::records::{ImageLayer, LayerMeta};

    fn entry(path: &str, kind: Kind, mode: u32) -> Entry {
        Entry {
            path: path.as_bytes().to_vec(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 1,
            mtime_nsec: 0,
            size: 0,
            rdev_major: 0,
            rdev_minor: 0,
            link: Vec::new(),
            xattrs: Vec::new(),
            data: Data::None,
            ostree: None,
        }
    }

    /// A regular file with its import-time checksum, as `layer.rs` computes it.
    fn file(
        path: &str,
        mode: u32,
        ids: (u32, u32),
        body: &[u8],
        xattrs: &[(&str, &[u8])],
    ) -> Entry {
        let mut e = entry(path, Kind::File, mode);
        (e.uid, e.gid) = ids;
        e.xattrs = xattrs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
            .collect();
        e.size = body.len() as u64;
        e.data = if body.is_empty() {
            Data::None
        } else {
            Data::Inline(body.to_vec())
        };
        e.ostree = Some(fmt::to_hex(&fmt::file_checksum(
            e.uid, e.gid, mode, &e.xattrs, body,
        )));
        e
    }

    fn layer(entries: Vec<Entry>) -> LayerIndex {
        LayerIndex {
            version: INDEX_VERSION,
            entries,
        }
    }

    fn record(n_layers: usize) -> ImageRecord {
        let meta = LayerMeta {
            diff_id: "sha256:00".into(),
            diff_size: 0,
            tar_stream: String::new(),
            index_object: String::new(),
            tarsplit_object: String::new(),
            entries: 0,
            uids: vec![],
            gids: vec![],
        };
        ImageRecord {
            manifest_digest: "sha256:aa".into(),
            manifest_media_type: String::new(),
            manifest_object: String::new(),
            manifest_size: 0,
            config_digest: "sha256:bb".into(),
            config_object: String::new(),
            config_size: 0,
            created: Some("2023-11-14T22:13:20Z".into()),
            architecture: None,
            os: None,
            layers: (0..n_layers)
                .map(|_| ImageLayer {
                    meta: meta.clone(),
                    meta_stream: String::new(),
                    blob_digest: "sha256:cc".into(),
                    blob_size: 0,
                    media_type: String::new(),
                    compression: 0,
                })
                .collect(),
        }
    }

    fn root_of(layers: &[LayerIndex], objs: &mut Objects) -> (ODir, Vec<String>) {
        otree_of_merged(&merged_tree(layers), objs).unwrap()
    }

    /// The tree of `ostree_format`'s tests, as a layer: the same root dirtree
    /// checksum the real `ostree commit` produced.
    #[test]
    fn tree_matches_ostree_commit() {
        let cap = hex::decode("0100000200200000000000000000000000000000").unwrap();
        let mut etc = entry("etc", Kind::Dir, 0o755);
        etc.xattrs = vec![(b"user.dirattr".to_vec(), b"d".to_vec())];
        let mut privd = entry("priv", Kind::Dir, 0o700);
        (privd.uid, privd.gid) = (1000, 1001);
        let mut sh = entry("usr/bin/sh", Kind::Symlink, 0o777);
        sh.link = b"busybox".to_vec();
        let l = layer(vec![
            entry("", Kind::Dir, 0o755),
            file("empty", 0o644, (0, 0), b"", &[]),
            entry("emptydir", Kind::Dir, 0o755),
            etc,
            file(
                "etc/hello",
                0o644,
                (0, 0),
                b"hello\n",
                &[("user.foo", b"bar"), ("user.abc", b"xyz")],
            ),
            privd,
            file("priv/secret", 0o600, (1000, 1001), b"secret\n", &[]),
            entry("usr", Kind::Dir, 0o755),
            entry("usr/bin", Kind::Dir, 0o755),
            sh,
            file(
                "usr/bin/suid",
                0o4755,
                (0, 0),
                b"suid\n",
                &[("security.capability", &cap)],
            ),
        ]);
        let mut objs = Objects::new();
        let (root, skipped) = root_of(&[l], &mut objs);
        assert!(skipped.is_empty());
        let (t, m) = write_tree(&root, &mut objs);
        assert_eq!(
            fmt::to_hex(&t),
            "f8c32cd59e01e44a8b67c2724106f9edb1ec03fe81750c0770836a019d6610ac"
        );
        assert_eq!(
            fmt::to_hex(&m),
            "446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488"
        );
        // 5 content objects, 6 dirtrees (emptydir and usr/bin… distinct), 3 dirmetas.
        let count = |ext: &str| objs.keys().filter(|k| k.ends_with(ext)).count();
        assert_eq!(count(".file"), 5);
        assert_eq!(count(".dirmeta"), 3);
        let suid = objs
            .get("768a3498bfa19d6f0b58de9b7c45a9db161d91f59a85d198a3a12b87f07d05fc.file")
            .expect("suid object");
        assert!(matches!(suid, ObjectData::File { perm: 0o4755, xattrs, .. } if xattrs.len() == 1));
    }

    #[test]
    fn hard_links_across_directories_keep_every_name() {
        // `third` (in /srv) is numbered before `a/src`'s directory `a`.
        let mut dst = entry("srv/b/dst", Kind::HardLink, 0o644);
        dst.link = b"srv/a/src".to_vec();
        let mut third = entry("srv/third", Kind::HardLink, 0o644);
        third.link = b"srv/a/src".to_vec();
        let l = layer(vec![
            entry("srv", Kind::Dir, 0o755),
            entry("srv/a", Kind::Dir, 0o755),
            file("srv/a/src", 0o644, (0, 0), b"data", &[]),
            entry("srv/b", Kind::Dir, 0o755),
            dst,
            third,
        ]);
        let mut objs = Objects::new();
        let (root, _) = root_of(&[l], &mut objs);
        let OTree::Dir(srv) = &root.children[&b"srv".to_vec()] else {
            panic!()
        };
        let file_in = |d: &str, n: &str| -> Checksum {
            let OTree::Dir(d) = &srv.children[&d.as_bytes().to_vec()] else {
                panic!()
            };
            match d.children.get(n.as_bytes()) {
                Some(OTree::File(c)) => *c,
                _ => panic!("{n} missing"),
            }
        };
        let c = file_in("a", "src");
        assert_eq!(file_in("b", "dst"), c);
        assert!(matches!(srv.children.get(b"third".as_slice()), Some(OTree::File(x)) if *x == c));
        assert_eq!(objs.keys().filter(|k| k.ends_with(".file")).count(), 1);
    }

    #[test]
    fn specials_and_non_utf8_are_skipped_and_listed() {
        let mut bad = entry("d/\u{0}", Kind::Dir, 0o755);
        bad.path = b"d/caf\xe9".to_vec();
        let mut inner = file("x", 0o644, (0, 0), b"x", &[]);
        inner.path = b"d/caf\xe9/inner".to_vec();
        let mut badlink = entry("d/link", Kind::Symlink, 0o777);
        badlink.link = b"\xff".to_vec();
        let mut dev = entry("d/null", Kind::Char, 0o666);
        (dev.rdev_major, dev.rdev_minor) = (1, 3);
        let l = layer(vec![
            entry("d", Kind::Dir, 0o755),
            bad,
            inner,
            badlink,
            dev,
            entry("d/fifo", Kind::Fifo, 0o600),
            file("d/ok", 0o644, (0, 0), b"ok", &[]),
        ]);
        let mut objs = Objects::new();
        let (commit, skipped) = plain_commit(&record(1), None, &[l], &mut objs).unwrap();
        assert_eq!(
            skipped,
            vec!["/d/caf\u{fffd}", "/d/fifo", "/d/link", "/d/null"]
        );
        assert_eq!(objs.keys().filter(|k| k.ends_with(".file")).count(), 1);
        // The list is in the commit metadata.
        let ObjectData::Meta(bytes) = &objs[&format!("{commit}.commit")] else {
            panic!()
        };
        let needle = b"unistore.skipped\0";
        assert!(bytes.windows(needle.len()).any(|w| w == needle));
    }

    #[test]
    fn placeholder_checksums_are_refused() {
        // An index written while file_header was a placeholder: sha256(content).
        let mut f = file("f", 0o644, (0, 0), b"hello", &[]);
        f.ostree = Some(fmt::to_hex(&fmt::checksum(b"hello")));
        let err = plain_commit(&record(1), None, &[layer(vec![f])], &mut Objects::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("re-import"), "{err}");
    }

    #[test]
    fn commit_is_deterministic_and_name_independent() {
        let l = || layer(vec![file("a", 0o644, (0, 0), b"a", &[])]);
        let (c1, _) = plain_commit(&record(1), None, &[l()], &mut Objects::new()).unwrap();
        let (c2, _) = plain_commit(&record(1), None, &[l()], &mut Objects::new()).unwrap();
        assert_eq!(c1, c2);
        let mut other = record(1);
        other.created = None;
        let (c3, _) = plain_commit(&other, None, &[l()], &mut Objects::new()).unwrap();
        assert_ne!(c1, c3, "timestamp comes from created");
    }

    #[test]
    fn layer_tree_autocreates_like_libostree() {
        // `usr/bin/x` owned by 7:7 with no parents in the tar; then `etc/`.
        let mut x = file("usr/bin/x", 0o755, (7, 7), b"x", &[]);
        x.mtime = 5;
        let mut etc = entry("etc", Kind::Dir, 0o750);
        (etc.uid, etc.gid) = (0, 4);
        let wh = entry("etc/gone", Kind::Whiteout, 0o644);
        let opq = entry("var/lib", Kind::Opaque, 0o644);
        let l = layer(vec![x, etc, wh, opq, entry("srv", Kind::Dir, 0o755)]);
        let mut objs = Objects::new();
        let (root, filtered) = layer_tree(&l, &mut objs).unwrap();
        assert_eq!(
            (root.uid, root.gid, root.perm),
            (0, 0, 0o755),
            "reset by var/lib's parents"
        );
        let OTree::Dir(usr) = &root.children[&b"usr".to_vec()] else {
            panic!()
        };
        // usr was autocreated 7:7 for x, then reset to 0:0 for var/… (etc/ had its parent).
        assert_eq!((usr.uid, usr.gid, usr.perm), (0, 0, 0o755));
        let OTree::Dir(uetc) = &usr.children[&b"etc".to_vec()] else {
            panic!()
        };
        assert_eq!((uetc.gid, uetc.perm), (4, 0o750));
        assert!(uetc.children.contains_key(b".wh.gone".as_slice()));
        let OTree::Dir(share) = &usr.children[&b"share".to_vec()] else {
            panic!()
        };
        let OTree::Dir(factory) = &share.children[&b"factory".to_vec()] else {
            panic!()
        };
        let OTree::Dir(var) = &factory.children[&b"var".to_vec()] else {
            panic!()
        };
        let OTree::Dir(lib) = &var.children[&b"lib".to_vec()] else {
            panic!()
        };
        assert!(lib.children.contains_key(b".wh..wh..opq".as_slice()));
        assert_eq!(filtered.get("srv"), Some(&1));
    }

    #[test]
    fn ref_names() {
        assert_eq!(
            name_ref("localhost/unistore-fixture/derived:1").as_deref(),
            Some("unistore/localhost/unistore-fixture/derived_3A_1")
        );
        assert_eq!(
            container_image_ref("localhost/my_img:1").as_deref(),
            Some("ostree/container/image/containers-storage_3A_localhost/my__img_3A_1")
        );
        assert_eq!(
            blob_ref("sha256:2c26").as_deref(),
            Some("ostree/container/blob/sha256_3A_2c26")
        );
        let e = CatalogEntry {
            id: "abc".into(),
            digest: "sha256:d".into(),
            names: vec![],
            stream: String::new(),
            created: None,
            imported: String::new(),
            size: 0,
        };
        assert_eq!(plain_refs(&e), vec!["unistore/id/abc".to_string()]);
        let mut refs = RefDir::default();
        refs.insert("a/b", "1");
        refs.insert("a/b/c", "2"); // conflicts: left out
        refs.insert("a/c", "3");
        assert_eq!(refs.dirs["a"].files.len(), 2);
        assert!(refs.dirs["a"].dirs.is_empty());
    }
}
