//! The node arena and the layer-tree builder.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use crate::index::{Data, Kind, LayerIndex};

/// File type of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// Directory.
    Dir,
    /// Regular file.
    File,
    /// Symbolic link.
    Symlink,
    /// Character device.
    Char,
    /// Block device.
    Block,
    /// FIFO.
    Fifo,
}

/// Attributes of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Type.
    pub kind: NodeKind,
    /// Permission bits (incl. setuid/setgid/sticky).
    pub perm: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (seconds).
    pub mtime: i64,
    /// Modification time (nanoseconds).
    pub mtime_nsec: u32,
    /// Device numbers `(major, minor)`.
    pub rdev: (u32, u32),
    /// Link count.
    pub nlink: u32,
}

impl Attr {
    /// A root-owned directory.
    pub fn dir(perm: u32) -> Self {
        Attr {
            kind: NodeKind::Dir,
            perm,
            uid: 0,
            gid: 0,
            size: 4096,
            mtime: 0,
            mtime_nsec: 0,
            rdev: (0, 0),
            nlink: 2,
        }
    }
    /// A root-owned regular file of `size` bytes.
    pub fn file(perm: u32, size: u64) -> Self {
        Attr {
            kind: NodeKind::File,
            size,
            nlink: 1,
            ..Attr::dir(perm)
        }
    }
}

/// Where a node's content comes from.
#[derive(Debug, Clone)]
pub enum Content {
    /// Directory: sorted children.
    Dir(BTreeMap<Vec<u8>, u64>),
    /// Directory whose children are the tree of a layer (index object, hex), built on first use.
    LazyLayer(String),
    /// A directory its consumer builds on first access (a whole view whose
    /// construction is too costly for mount time, e.g. the ostree view).
    Deferred,
    /// Directory whose children are the flattened tree of an image (its
    /// layers' index objects, base first), built on first use.
    LazyImage(Arc<Vec<String>>),
    /// Bytes held in memory (synthesized files, small files).
    Bytes(Arc<[u8]>),
    /// A composefs object (hex id) in the store.
    Object(String),
    /// Symlink target.
    Symlink(Vec<u8>),
    /// Nothing (devices, fifos, empty files).
    None,
}

/// One node.
#[derive(Debug, Clone)]
pub struct Node {
    /// Attributes.
    pub attr: Attr,
    /// Content.
    pub content: Content,
    /// Extended attributes.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// True for nodes whose attributes or listing can change (catalog-derived).
    pub dynamic: bool,
}

impl Node {
    /// A new node without xattrs.
    pub fn new(attr: Attr, content: Content, dynamic: bool) -> Self {
        Node {
            attr,
            content,
            xattrs: Vec::new(),
            dynamic,
        }
    }
}

/// Loads a layer index by its object ID.
pub type IndexLoader = Box<dyn Fn(&str) -> anyhow::Result<LayerIndex> + Send + Sync>;

/// The arena of nodes.
pub struct Vfs {
    nodes: RwLock<Vec<Arc<Node>>>,
    loader: IndexLoader,
}

impl std::fmt::Debug for Vfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vfs").field("nodes", &self.len()).finish()
    }
}

impl Vfs {
    /// An arena with a root directory (node 1); `loader` reads layer indexes.
    pub fn new(loader: IndexLoader) -> Self {
        let v = Vfs {
            nodes: RwLock::new(Vec::new()),
            loader,
        };
        v.push(Node::new(
            Attr::dir(0o755),
            Content::Dir(BTreeMap::new()),
            true,
        ));
        v
    }

    /// Append a node; returns its number.
    pub fn push(&self, node: Node) -> u64 {
        let mut n = self.nodes.write().expect("lock");
        n.push(Arc::new(node));
        n.len() as u64
    }

    /// Replace node `ino` (used to swap in a rebuilt root listing or an expanded layer).
    pub fn replace(&self, ino: u64, node: Node) {
        let mut n = self.nodes.write().expect("lock");
        if let Some(slot) = n.get_mut((ino - 1) as usize) {
            *slot = Arc::new(node);
        }
    }

    /// Node `ino` as it is, without expanding a lazy directory (its kind
    /// and the names of its parent's entries are all a listing needs).
    pub fn peek(&self, ino: u64) -> Option<Arc<Node>> {
        let i = ino.checked_sub(1)? as usize;
        self.nodes.read().expect("lock").get(i).cloned()
    }

    /// Node `ino`, if it exists. Expands a lazy layer directory first.
    pub fn get(&self, ino: u64) -> anyhow::Result<Option<Arc<Node>>> {
        let Some(node) = ino
            .checked_sub(1)
            .and_then(|i| self.nodes.read().expect("lock").get(i as usize).cloned())
        else {
            return Ok(None);
        };
        if let Content::LazyLayer(obj) = &node.content {
            let idx = (self.loader)(obj)?;
            self.expand_layer(ino, &node, &idx);
            return Ok(self
                .nodes
                .read()
                .expect("lock")
                .get((ino - 1) as usize)
                .cloned());
        }
        if let Content::LazyImage(objs) = &node.content {
            let layers = objs
                .iter()
                .map(|o| (self.loader)(o))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let tree = super::merge::merged_tree(&layers);
            self.expand_image(ino, &tree);
            return Ok(self
                .nodes
                .read()
                .expect("lock")
                .get((ino - 1) as usize)
                .cloned());
        }
        Ok(Some(node))
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.read().expect("lock").len()
    }

    /// Whether the arena is empty (never, after `new`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Child `name` of directory `parent`.
    pub fn lookup(&self, parent: u64, name: &[u8]) -> anyhow::Result<Option<u64>> {
        Ok(match self.get(parent)?.as_deref().map(|n| &n.content) {
            Some(Content::Dir(children)) => children.get(name).copied(),
            _ => None,
        })
    }

    /// Materialise a merged image tree at the (lazy) directory `root`.
    fn expand_image(&self, root: u64, tree: &super::merge::MergedTree) {
        let mut guard = self.nodes.write().expect("lock");
        if !matches!(guard[(root - 1) as usize].content, Content::LazyImage(_)) {
            return;
        }
        // Node numbers: the root keeps `root`; the others are appended in order.
        let base = guard.len() as u64 + 1;
        let ino_of = |id: usize| -> u64 {
            if id == super::merge::MergedTree::ROOT {
                root
            } else {
                base + id as u64 - 1
            }
        };
        let mut new_nodes = Vec::with_capacity(tree.len());
        for (id, m) in tree.nodes().iter().enumerate() {
            let e = &m.entry;
            let kind = match e.kind {
                Kind::Dir => NodeKind::Dir,
                Kind::Symlink => NodeKind::Symlink,
                Kind::Char => NodeKind::Char,
                Kind::Block => NodeKind::Block,
                Kind::Fifo => NodeKind::Fifo,
                _ => NodeKind::File,
            };
            let content = match kind {
                NodeKind::Dir => Content::Dir(
                    m.children
                        .iter()
                        .map(|(n, c)| (n.clone(), ino_of(*c)))
                        .collect(),
                ),
                NodeKind::Symlink => Content::Symlink(e.link.clone()),
                NodeKind::File => match &e.data {
                    Data::Object(h) => Content::Object(h.clone()),
                    Data::Inline(b) => Content::Bytes(Arc::from(b.as_slice())),
                    Data::None => Content::None,
                },
                _ => Content::None,
            };
            let size = match kind {
                NodeKind::Dir => 4096,
                NodeKind::Symlink => e.link.len() as u64,
                NodeKind::File => e.size,
                _ => 0,
            };
            let attr = Attr {
                kind,
                perm: e.mode & 0o7777,
                uid: e.uid,
                gid: e.gid,
                size,
                mtime: e.mtime,
                mtime_nsec: e.mtime_nsec,
                rdev: (e.rdev_major, e.rdev_minor),
                nlink: m.nlink,
            };
            let mut n = Node::new(attr, content, false);
            n.xattrs = e.xattrs.clone();
            if id == super::merge::MergedTree::ROOT {
                guard[(root - 1) as usize] = Arc::new(n);
            } else {
                new_nodes.push(Arc::new(n));
            }
        }
        guard.extend(new_nodes);
    }

    /// Build the overlay-form tree of `idx` below the (lazy) directory `root`.
    fn expand_layer(&self, root: u64, root_node: &Node, idx: &LayerIndex) {
        // Build into a local arena segment, then publish under the write lock.
        let mut guard = self.nodes.write().expect("lock");
        // Another thread may have expanded it meanwhile.
        if !matches!(guard[(root - 1) as usize].content, Content::LazyLayer(_)) {
            return;
        }
        let base = guard.len() as u64 + 1;
        let mut nodes: Vec<Node> = Vec::new();
        let mut root_children: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        let mut root_xattrs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut by_path: HashMap<Vec<u8>, u64> = HashMap::new();
        let dir_default_mtime = idx.entries.first().map(|e| e.mtime).unwrap_or(0);

        // Helpers operating on (nodes, root_children).
        fn node_mut(nodes: &mut [Node], base: u64, ino: u64) -> &mut Node {
            &mut nodes[(ino - base) as usize]
        }
        let ensure_dir = |path: &[u8],
                          nodes: &mut Vec<Node>,
                          root_children: &mut BTreeMap<Vec<u8>, u64>,
                          by_path: &mut HashMap<Vec<u8>, u64>|
         -> u64 {
            // Returns the node number of the directory at `path` ("" = root).
            let mut cur: Option<u64> = None;
            let mut so_far: Vec<u8> = Vec::new();
            for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
                if !so_far.is_empty() {
                    so_far.push(b'/');
                }
                so_far.extend_from_slice(comp);
                let existing = by_path.get(&so_far).copied();
                let ino = match existing {
                    Some(i) if matches!(nodes[(i - base) as usize].content, Content::Dir(_)) => i,
                    _ => {
                        let mut attr = Attr::dir(0o755);
                        attr.mtime = dir_default_mtime;
                        nodes.push(Node::new(attr, Content::Dir(BTreeMap::new()), false));
                        let ino = base + nodes.len() as u64 - 1;
                        by_path.insert(so_far.clone(), ino);
                        match cur {
                            None => {
                                root_children.insert(comp.to_vec(), ino);
                            }
                            Some(p) => {
                                if let Content::Dir(c) = &mut node_mut(nodes, base, p).content {
                                    c.insert(comp.to_vec(), ino);
                                }
                            }
                        }
                        ino
                    }
                };
                cur = Some(ino);
            }
            cur.unwrap_or(0)
        };

        for e in &idx.entries {
            if e.path.is_empty() {
                if e.kind == Kind::Opaque {
                    root_xattrs.push((b"trusted.overlay.opaque".to_vec(), b"y".to_vec()));
                }
                continue; // the layer root entry: diff/ itself stays 0555
            }
            let (parent, name) = match e.path.iter().rposition(|&b| b == b'/') {
                Some(i) => (&e.path[..i], &e.path[i + 1..]),
                None => (&b""[..], &e.path[..]),
            };
            let pino = ensure_dir(parent, &mut nodes, &mut root_children, &mut by_path);
            let attr_of = |kind: NodeKind| Attr {
                kind,
                perm: e.mode & 0o7777,
                uid: e.uid,
                gid: e.gid,
                size: e.size,
                mtime: e.mtime,
                mtime_nsec: e.mtime_nsec,
                rdev: (e.rdev_major, e.rdev_minor),
                nlink: 1,
            };
            let new_ino = match e.kind {
                Kind::Dir => {
                    let ino = ensure_dir(&e.path, &mut nodes, &mut root_children, &mut by_path);
                    let n = node_mut(&mut nodes, base, ino);
                    let nlink = n.attr.nlink;
                    n.attr = Attr {
                        nlink,
                        size: 4096,
                        ..attr_of(NodeKind::Dir)
                    };
                    n.xattrs.retain(|(k, _)| k == b"trusted.overlay.opaque");
                    n.xattrs.extend(e.xattrs.iter().cloned());
                    continue;
                }
                Kind::Opaque => {
                    let ino = ensure_dir(&e.path, &mut nodes, &mut root_children, &mut by_path);
                    node_mut(&mut nodes, base, ino)
                        .xattrs
                        .push((b"trusted.overlay.opaque".to_vec(), b"y".to_vec()));
                    continue;
                }
                Kind::HardLink => match by_path.get(&e.link).copied() {
                    Some(t) => {
                        node_mut(&mut nodes, base, t).attr.nlink += 1;
                        t
                    }
                    None => continue, // refused at import; tolerate old indexes
                },
                Kind::Whiteout => {
                    let attr = Attr {
                        kind: NodeKind::Char,
                        perm: 0,
                        uid: 0,
                        gid: 0,
                        size: 0,
                        mtime: e.mtime,
                        mtime_nsec: e.mtime_nsec,
                        rdev: (0, 0),
                        nlink: 1,
                    };
                    nodes.push(Node::new(attr, Content::None, false));
                    base + nodes.len() as u64 - 1
                }
                kind => {
                    let (nk, content) = match kind {
                        Kind::File => (
                            NodeKind::File,
                            match &e.data {
                                Data::Object(h) => Content::Object(h.clone()),
                                Data::Inline(b) => Content::Bytes(Arc::from(b.as_slice())),
                                Data::None => Content::None,
                            },
                        ),
                        Kind::Symlink => (NodeKind::Symlink, Content::Symlink(e.link.clone())),
                        Kind::Char => (NodeKind::Char, Content::None),
                        Kind::Block => (NodeKind::Block, Content::None),
                        _ => (NodeKind::Fifo, Content::None),
                    };
                    let mut attr = attr_of(nk);
                    if nk == NodeKind::Symlink {
                        attr.size = e.link.len() as u64;
                    }
                    let mut n = Node::new(attr, content, false);
                    n.xattrs = e.xattrs.clone();
                    nodes.push(n);
                    base + nodes.len() as u64 - 1
                }
            };
            by_path.insert(e.path.clone(), new_ino);
            // Link into the parent (replacing a previous entry of that name).
            let parent_children = if pino == 0 {
                &mut root_children
            } else {
                match &mut node_mut(&mut nodes, base, pino).content {
                    Content::Dir(c) => c,
                    _ => continue,
                }
            };
            parent_children.insert(name.to_vec(), new_ino);
        }
        // Directory link counts: 2 + subdirectories.
        let mut subdirs: HashMap<u64, u32> = HashMap::new();
        let count_subdirs = |c: &BTreeMap<Vec<u8>, u64>, nodes: &[Node]| -> u32 {
            c.values()
                .filter(|&&i| i >= base && nodes[(i - base) as usize].attr.kind == NodeKind::Dir)
                .count() as u32
        };
        for (i, n) in nodes.iter().enumerate() {
            if let Content::Dir(c) = &n.content {
                subdirs.insert(base + i as u64, count_subdirs(c, &nodes));
            }
        }
        for (ino, s) in subdirs {
            node_mut(&mut nodes, base, ino).attr.nlink = 2 + s;
        }
        let mut root_attr = root_node.attr.clone();
        root_attr.nlink = 2 + count_subdirs(&root_children, &nodes);
        let mut root_new = Node::new(root_attr, Content::Dir(root_children), false);
        root_new.xattrs = root_xattrs;
        guard.extend(nodes.into_iter().map(Arc::new));
        guard[(root - 1) as usize] = Arc::new(root_new);
    }
}
