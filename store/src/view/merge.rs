//! The flattened root filesystem of an image, from its per-layer indexes.
//!
//! [`merged_tree`] applies the layers base first, with the semantics podman
//! shows through overlayfs (and `podman export` writes):
//!
//! - a whiteout (`Kind::Whiteout`, or an overlay-form `0:0` character
//!   device) deletes the path and everything below it from lower layers;
//! - an opaque directory (`Kind::Opaque`, or a directory entry carrying
//!   `trusted.overlay.opaque=y`) hides everything lower layers put in it;
//! - whiteouts and opaque markers act on lower layers only, wherever they
//!   appear in their own layer's archive;
//! - a directory entry over an existing directory replaces its metadata and
//!   keeps its children; any other entry replaces what was at its path;
//! - a parent directory a layer does not list is created the way
//!   containers/storage creates it when applying the layer (`0755`,
//!   `0:0`, no xattrs), and, as the upper directory of the overlay, its
//!   metadata wins over a lower directory of the same path;
//! - the root takes the metadata of the last layer that lists `./`
//!   (default `0755 0:0`);
//! - hard links (`Kind::HardLink`) resolve to the node of their target in the
//!   same layer: both names share one [`MergedNode`] (a hard-link group);
//!   a later layer that rewrites one of the names breaks the link, as a
//!   copy-up does.
//!
//! The result has no whiteouts, no opaque markers and no `trusted.overlay.*`
//! / `user.overlay.*` xattrs on directories (regular files keep their xattrs
//! exactly, because their ostree checksums were computed over them at
//! import).

use std::collections::{BTreeMap, HashMap};

use crate::index::{Data, Entry, Kind, LayerIndex};

/// Index of a node in a [`MergedTree`].
pub type NodeId = usize;

/// One file, directory, symlink or special file of the merged tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedNode {
    /// Metadata and content location. `entry.path` is the path (relative,
    /// no leading `/`, empty for the root) where the node was created;
    /// `entry.kind` is never `HardLink`, `Whiteout` or `Opaque`.
    pub entry: Entry,
    /// Index (base = 0) of the layer the node comes from (for implicitly
    /// created directories: the layer that needed them).
    pub layer: usize,
    /// For directories: children sorted by name (byte order). Empty otherwise.
    pub children: Vec<(Vec<u8>, NodeId)>,
    /// Link count: number of names of a non-directory; `2 + subdirectories`
    /// for a directory.
    pub nlink: u32,
}

impl MergedNode {
    /// Whether the node is a directory.
    pub fn is_dir(&self) -> bool {
        self.entry.kind == Kind::Dir
    }

    /// Child `name` of a directory.
    pub fn child(&self, name: &[u8]) -> Option<NodeId> {
        self.children
            .binary_search_by(|(n, _)| n.as_slice().cmp(name))
            .ok()
            .map(|i| self.children[i].1)
    }
}

/// The flattened tree of an image. Node 0 is the root directory; every node
/// is reachable from it. Every directory is numbered after its parent (so a
/// reverse scan of the directories visits children first); a hard-linked
/// non-directory is numbered after the first of its parents only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedTree {
    nodes: Vec<MergedNode>,
}

impl MergedTree {
    /// The root directory.
    pub const ROOT: NodeId = 0;

    /// Node `id`.
    pub fn node(&self, id: NodeId) -> &MergedNode {
        &self.nodes[id]
    }

    /// All nodes (index = [`NodeId`]).
    pub fn nodes(&self) -> &[MergedNode] {
        &self.nodes
    }

    /// Number of nodes (distinct inodes).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never true: there is always a root.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node at `path` (relative or absolute, `/`-separated; symlinks are
    /// not followed).
    pub fn lookup(&self, path: &[u8]) -> Option<NodeId> {
        let mut cur = Self::ROOT;
        for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            cur = self.nodes[cur].child(comp)?;
        }
        Some(cur)
    }

    /// Every path (relative, `""` for the root) with its node, depth first,
    /// children in name order; hard-linked nodes appear once per name.
    pub fn walk(&self) -> Vec<(Vec<u8>, NodeId)> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = vec![(Vec::new(), Self::ROOT)];
        while let Some((path, id)) = stack.pop() {
            for (name, child) in self.nodes[id].children.iter().rev() {
                let mut p = path.clone();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(name);
                stack.push((p, *child));
            }
            out.push((path, id));
        }
        out
    }

    /// Hard-link groups: for every non-directory with more than one name,
    /// its node and its paths (sorted).
    pub fn hardlink_groups(&self) -> Vec<(NodeId, Vec<Vec<u8>>)> {
        let mut groups: BTreeMap<NodeId, Vec<Vec<u8>>> = BTreeMap::new();
        for (path, id) in self.walk() {
            if !self.nodes[id].is_dir() && self.nodes[id].nlink > 1 {
                groups.entry(id).or_default().push(path);
            }
        }
        groups
            .into_iter()
            .map(|(id, mut paths)| {
                paths.sort();
                (id, paths)
            })
            .collect()
    }
}

/// Whether an xattr name is overlayfs bookkeeping.
fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

fn is_opaque_dir(e: &Entry) -> bool {
    e.kind == Kind::Dir
        && e.xattrs
            .iter()
            .any(|(k, v)| k == b"trusted.overlay.opaque" && v == b"y")
}

fn is_overlay_whiteout(e: &Entry) -> bool {
    e.kind == Kind::Char && e.rdev_major == 0 && e.rdev_minor == 0
}

fn dir_entry(path: &[u8], mtime: i64) -> Entry {
    Entry {
        path: path.to_vec(),
        kind: Kind::Dir,
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime,
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

struct Builder {
    entry: Entry,
    layer: usize,
    children: Option<BTreeMap<Vec<u8>, NodeId>>,
}

struct Build {
    nodes: Vec<Builder>,
}

impl Build {
    fn is_dir(&self, id: NodeId) -> bool {
        self.nodes[id].children.is_some()
    }

    fn push(&mut self, entry: Entry, layer: usize) -> NodeId {
        let children = (entry.kind == Kind::Dir).then(BTreeMap::new);
        self.nodes.push(Builder {
            entry,
            layer,
            children,
        });
        self.nodes.len() - 1
    }

    fn lookup(&self, path: &[u8]) -> Option<NodeId> {
        let mut cur = 0;
        for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            cur = *self.nodes[cur].children.as_ref()?.get(comp)?;
        }
        Some(cur)
    }

    fn remove(&mut self, path: &[u8]) {
        let (parent, name) = split(path);
        if name.is_empty() {
            return; // never remove the root
        }
        if let Some(p) = self.lookup(parent) {
            if let Some(c) = self.nodes[p].children.as_mut() {
                c.remove(name);
            }
        }
    }

    /// The directory at `path`, creating missing (or non-directory)
    /// components as this layer's implicit directories.
    fn ensure_dir(
        &mut self,
        path: &[u8],
        layer: usize,
        mtime: i64,
        listed: &HashMap<Vec<u8>, NodeId>,
        implicit: &mut HashMap<Vec<u8>, NodeId>,
    ) -> NodeId {
        let mut cur = 0;
        let mut so_far: Vec<u8> = Vec::new();
        for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            if !so_far.is_empty() {
                so_far.push(b'/');
            }
            so_far.extend_from_slice(comp);
            let existing = self.nodes[cur]
                .children
                .as_ref()
                .and_then(|c| c.get(comp))
                .copied();
            let in_layer = listed.contains_key(&so_far) || implicit.contains_key(&so_far);
            cur = match existing {
                Some(id) if self.is_dir(id) => {
                    if !in_layer {
                        // containers/storage mkdirs the parent in this layer's
                        // diff (0755 root); the upper directory's attributes win.
                        self.nodes[id].entry = dir_entry(&so_far, mtime);
                        self.nodes[id].layer = layer;
                        implicit.insert(so_far.clone(), id);
                    }
                    id
                }
                _ => {
                    let new = self.push(dir_entry(&so_far, mtime), layer);
                    self.link(cur, comp, new);
                    implicit.insert(so_far.clone(), new);
                    new
                }
            };
        }
        cur
    }

    fn link(&mut self, parent: NodeId, name: &[u8], child: NodeId) {
        if let Some(c) = self.nodes[parent].children.as_mut() {
            c.insert(name.to_vec(), child);
        }
    }
}

fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

/// Flatten `layers` (base first) into one tree. See the module docs for the
/// exact semantics.
pub fn merged_tree(layers: &[LayerIndex]) -> MergedTree {
    let mut b = Build { nodes: Vec::new() };
    b.push(dir_entry(b"", 0), 0);

    for (li, layer) in layers.iter().enumerate() {
        // 1. What this layer deletes from the lower ones.
        for e in &layer.entries {
            match e.kind {
                Kind::Whiteout => b.remove(&e.path),
                _ if is_overlay_whiteout(e) => b.remove(&e.path),
                Kind::Opaque => {
                    if let Some(id) = b.lookup(&e.path) {
                        if let Some(c) = b.nodes[id].children.as_mut() {
                            c.clear();
                        }
                    }
                }
                Kind::Dir if is_opaque_dir(e) => {
                    if let Some(id) = b.lookup(&e.path) {
                        if let Some(c) = b.nodes[id].children.as_mut() {
                            c.clear();
                        }
                    }
                }
                _ => {}
            }
        }
        // 2. What it adds, in archive order.
        let mut listed: HashMap<Vec<u8>, NodeId> = HashMap::new();
        let mut implicit: HashMap<Vec<u8>, NodeId> = HashMap::new();
        for e in &layer.entries {
            // Whiteouts and opaque markers are members too: applying the
            // layer creates their parent directory like any other member's.
            match e.kind {
                Kind::Whiteout => {
                    b.ensure_dir(split(&e.path).0, li, e.mtime, &listed, &mut implicit);
                    continue;
                }
                Kind::Opaque => {
                    b.ensure_dir(&e.path, li, e.mtime, &listed, &mut implicit);
                    continue;
                }
                _ if is_overlay_whiteout(e) => {
                    b.ensure_dir(split(&e.path).0, li, e.mtime, &listed, &mut implicit);
                    continue;
                }
                _ => {}
            }
            if e.path.is_empty() {
                if e.kind == Kind::Dir {
                    let mut entry = e.clone();
                    entry.xattrs.retain(|(k, _)| !is_overlay_xattr(k));
                    b.nodes[0].entry = entry;
                    b.nodes[0].layer = li;
                }
                continue;
            }
            let (parent, name) = split(&e.path);
            let pid = b.ensure_dir(parent, li, e.mtime, &listed, &mut implicit);
            let existing = b.nodes[pid]
                .children
                .as_ref()
                .and_then(|c| c.get(name))
                .copied();
            let id = match e.kind {
                Kind::Dir => {
                    let mut entry = e.clone();
                    entry.xattrs.retain(|(k, _)| !is_overlay_xattr(k));
                    match existing {
                        // A directory over a directory: new metadata, same children.
                        Some(id) if b.is_dir(id) => {
                            b.nodes[id].entry = entry;
                            b.nodes[id].layer = li;
                            id
                        }
                        _ => b.push(entry, li),
                    }
                }
                Kind::HardLink => {
                    let target = listed
                        .get(&e.link)
                        .copied()
                        .or_else(|| b.lookup(&e.link))
                        .filter(|&t| !b.is_dir(t));
                    match target {
                        Some(t) => t,
                        None => {
                            tracing::warn!(
                                path = %String::from_utf8_lossy(&e.path),
                                target = %String::from_utf8_lossy(&e.link),
                                "hard link to a missing member; left out"
                            );
                            continue;
                        }
                    }
                }
                _ => b.push(e.clone(), li),
            };
            b.link(pid, name, id);
            listed.insert(e.path.clone(), id);
        }
    }
    compact(b)
}

/// Keep the reachable nodes, renumbered in walk order, with sorted child
/// vectors and link counts.
fn compact(b: Build) -> MergedTree {
    let mut map: HashMap<NodeId, NodeId> = HashMap::new();
    let mut order: Vec<NodeId> = Vec::new();
    let mut refs: HashMap<NodeId, u32> = HashMap::new();
    let mut stack = vec![0usize];
    map.insert(0, 0);
    order.push(0);
    while let Some(id) = stack.pop() {
        if let Some(children) = &b.nodes[id].children {
            for &c in children.values().rev() {
                *refs.entry(c).or_default() += 1;
                if let std::collections::hash_map::Entry::Vacant(v) = map.entry(c) {
                    v.insert(order.len());
                    order.push(c);
                    stack.push(c);
                }
            }
        }
    }
    let mut nodes: Vec<MergedNode> = Vec::with_capacity(order.len());
    let mut b = b;
    for &old in &order {
        let n = &mut b.nodes[old];
        let children: Vec<(Vec<u8>, NodeId)> = n
            .children
            .take()
            .map(|c| c.into_iter().map(|(k, v)| (k, map[&v])).collect())
            .unwrap_or_default();
        let entry = std::mem::replace(&mut n.entry, dir_entry(b"", 0));
        nodes.push(MergedNode {
            nlink: 0,
            entry,
            layer: n.layer,
            children,
        });
    }
    for i in 0..nodes.len() {
        let nlink = if nodes[i].is_dir() {
            2 + nodes[i]
                .children
                .iter()
                .filter(|(_, c)| nodes[*c].is_dir())
                .count() as u32
        } else {
            refs.get(&order[i]).copied().unwrap_or(1)
        };
        nodes[i].nlink = nlink;
    }
    MergedTree { nodes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::INDEX_VERSION;

    fn e(path: &str, kind: Kind) -> Entry {
        Entry {
            path: path.as_bytes().to_vec(),
            kind,
            mode: if kind == Kind::Dir { 0o755 } else { 0o644 },
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

    fn file(path: &str, body: &str) -> Entry {
        let mut x = e(path, Kind::File);
        x.data = Data::Inline(body.as_bytes().to_vec());
        x.size = body.len() as u64;
        x
    }

    fn link(path: &str, kind: Kind, target: &str) -> Entry {
        let mut x = e(path, kind);
        x.link = target.as_bytes().to_vec();
        x
    }

    fn layer(entries: Vec<Entry>) -> LayerIndex {
        LayerIndex {
            version: INDEX_VERSION,
            entries,
        }
    }

    fn paths(t: &MergedTree) -> Vec<String> {
        t.walk()
            .into_iter()
            .map(|(p, id)| {
                let n = t.node(id);
                format!(
                    "{}:{:?}:{:o}:{}",
                    String::from_utf8_lossy(&p),
                    n.entry.kind,
                    n.entry.mode,
                    n.nlink
                )
            })
            .collect()
    }

    #[test]
    fn whiteouts_opaque_and_replacement() {
        let base = layer(vec![
            e("", Kind::Dir),
            e("etc", Kind::Dir),
            file("etc/issue", "v1"),
            file("etc/issue.net", "net"),
            e("usr", Kind::Dir),
            e("usr/lic", Kind::Dir),
            file("usr/lic/GPL", "gpl"),
            e("usr/zone", Kind::Dir),
            e("usr/zone/Ant", Kind::Dir),
            file("usr/zone/Ant/x", "x"),
            file("usr/zone/UTC", "utc"),
        ]);
        let mut etc2 = e("etc", Kind::Dir);
        etc2.mode = 0o700;
        let upper = layer(vec![
            etc2,
            e("etc/issue.net", Kind::Whiteout),
            file("etc/issue", "v2"),
            e("usr", Kind::Dir),
            e("usr/lic", Kind::Dir),
            file("usr/lic/NEW", "new"),
            e("usr/lic", Kind::Opaque), // after the new file: still only hides lower
            e("usr/zone", Kind::Dir),
            e("usr/zone/Ant", Kind::Whiteout),
        ]);
        let t = merged_tree(&[base, upper]);
        assert_eq!(
            paths(&t),
            vec![
                ":Dir:755:4",
                "etc:Dir:700:2",
                "etc/issue:File:644:1",
                "usr:Dir:755:4",
                "usr/lic:Dir:755:2",
                "usr/lic/NEW:File:644:1",
                "usr/zone:Dir:755:2",
                "usr/zone/UTC:File:644:1",
            ]
        );
        let issue = t.node(t.lookup(b"/etc/issue").unwrap());
        assert_eq!(issue.entry.data, Data::Inline(b"v2".to_vec()));
        assert_eq!(issue.layer, 1);
    }

    #[test]
    fn hard_links_group_and_break_on_rewrite() {
        let l1 = layer(vec![
            e("a", Kind::Dir),
            file("a/src", "data"),
            e("b", Kind::Dir),
            link("b/dst", Kind::HardLink, "a/src"),
            link("third", Kind::HardLink, "b/dst"), // chain through a link
        ]);
        let t = merged_tree(std::slice::from_ref(&l1));
        let groups = t.hardlink_groups();
        assert_eq!(groups.len(), 1);
        assert_eq!(
            groups[0].1,
            vec![b"a/src".to_vec(), b"b/dst".to_vec(), b"third".to_vec()]
        );
        assert_eq!(t.node(groups[0].0).nlink, 3);
        assert_eq!(t.node(groups[0].0).entry.kind, Kind::File);

        let l2 = layer(vec![file("b/dst", "new"), e("a/src", Kind::Whiteout)]);
        let t = merged_tree(&[l1, l2]);
        let groups = t.hardlink_groups();
        assert!(groups.is_empty(), "{groups:?}");
        let third = t.node(t.lookup(b"third").unwrap());
        assert_eq!(third.entry.data, Data::Inline(b"data".to_vec()));
        assert_eq!(third.nlink, 1);
        assert!(t.lookup(b"a/src").is_none());
    }

    #[test]
    fn implicit_parents_and_type_changes() {
        let mut owned = e("srv", Kind::Dir);
        owned.uid = 1000;
        owned.mode = 0o700;
        let l1 = layer(vec![
            owned,
            file("srv/x", "x"),
            file("f", "was a file"),
            e("d", Kind::Dir),
            file("d/inner", "i"),
        ]);
        let l2 = layer(vec![
            file("srv/y", "y"), // parent not listed: recreated 0755 root, children kept
            e("f", Kind::Dir),  // file -> dir
            file("d", "dir -> file"),
            file("new/deep/file", "z"),
        ]);
        let t = merged_tree(&[l1, l2]);
        let srv = t.node(t.lookup(b"srv").unwrap());
        assert_eq!((srv.entry.uid, srv.entry.mode), (0, 0o755));
        assert!(t.lookup(b"srv/x").is_some() && t.lookup(b"srv/y").is_some());
        assert_eq!(t.node(t.lookup(b"f").unwrap()).entry.kind, Kind::Dir);
        assert_eq!(t.node(t.lookup(b"d").unwrap()).entry.kind, Kind::File);
        assert!(t.lookup(b"d/inner").is_none());
        assert_eq!(t.node(t.lookup(b"new/deep").unwrap()).entry.kind, Kind::Dir);
    }

    #[test]
    fn overlay_forms_and_xattrs() {
        let mut root = e("", Kind::Dir);
        root.mode = 0o555;
        let l1 = layer(vec![
            root,
            e("d", Kind::Dir),
            file("d/old", "o"),
            file("gone", "g"),
        ]);
        let mut opq = e("d", Kind::Dir);
        opq.xattrs = vec![
            (b"trusted.overlay.opaque".to_vec(), b"y".to_vec()),
            (b"user.keep".to_vec(), b"1".to_vec()),
        ];
        let mut wh = e("gone", Kind::Char); // overlay-form whiteout
        wh.mode = 0;
        let mut fifo = e("fifo", Kind::Fifo);
        fifo.mode = 0o600;
        let l2 = layer(vec![opq, wh, fifo]);
        let t = merged_tree(&[l1, l2]);
        assert_eq!(t.node(MergedTree::ROOT).entry.mode, 0o555);
        let d = t.node(t.lookup(b"d").unwrap());
        assert!(d.children.is_empty());
        assert_eq!(d.entry.xattrs, vec![(b"user.keep".to_vec(), b"1".to_vec())]);
        assert!(t.lookup(b"gone").is_none());
        assert_eq!(t.node(t.lookup(b"fifo").unwrap()).entry.kind, Kind::Fifo);
    }
}
