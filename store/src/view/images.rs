//! The per-image views: `images/<name>/` and `images/by-id/<id>/`, each the
//! flattened root filesystem of an image (see [`super::merge`]): layers
//! applied, whiteouts and opaque markers resolved, no overlay xattrs.
//!
//! Name mapping: the image's fully qualified name with its tag, with `/`
//! becoming directories: `localhost/app/web:1` → `images/localhost/app/web:1/`,
//! `quay.io/x/y@sha256:…` → `images/quay.io/x/y@sha256:…/`. Names are unique
//! in the catalog and tags cannot contain `/`, so paths never collide; a
//! name component equal to `by-id` at the top is skipped (the ID directory wins).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::tree::{Attr, Content, Node, Vfs};
use crate::catalog::{Catalog, CatalogEntry};
use crate::repo::Store;

/// Image roots that survive catalog reloads: image stream → (by-name root, by-id root).
#[derive(Debug, Default)]
pub struct ImagesCache {
    roots: HashMap<String, (u64, u64)>,
}

/// A lazy root directory for the image whose record is `entry`.
pub fn image_root(store: &Store, vfs: &Vfs, entry: &CatalogEntry) -> anyhow::Result<u64> {
    let rec = store.image(entry)?;
    let objs: Vec<String> = rec
        .layers
        .iter()
        .map(|l| l.meta.index_object.clone())
        .collect();
    Ok(vfs.push(Node::new(
        Attr::dir(0o755),
        Content::LazyImage(Arc::new(objs)),
        false,
    )))
}

/// Build `images/`; returns its node.
pub fn build(
    store: &Store,
    vfs: &Vfs,
    cat: &Catalog,
    cache: &mut ImagesCache,
) -> anyhow::Result<u64> {
    // A tree of name components; leaves are image roots.
    #[derive(Default)]
    struct Dir {
        dirs: BTreeMap<Vec<u8>, Dir>,
        leaves: BTreeMap<Vec<u8>, u64>,
    }
    let mut top = Dir::default();
    let mut by_id = BTreeMap::new();
    for e in &cat.images {
        let (by_name_root, id_root) = match cache.roots.get(&e.stream) {
            Some(v) => *v,
            None => match (image_root(store, vfs, e), image_root(store, vfs, e)) {
                (Ok(a), Ok(b)) => {
                    cache.roots.insert(e.stream.clone(), (a, b));
                    (a, b)
                }
                (Err(err), _) | (_, Err(err)) => {
                    tracing::error!(image = %e.id, "hiding image from images/: {err:#}");
                    continue;
                }
            },
        };
        by_id.insert(e.id.as_bytes().to_vec(), id_root);
        for name in &e.names {
            let comps: Vec<&str> = name.split('/').collect();
            let Some((last, dirs)) = comps.split_last() else {
                continue;
            };
            if dirs.first() == Some(&"by-id") || (dirs.is_empty() && *last == "by-id") {
                continue;
            }
            let mut d = &mut top;
            for c in dirs {
                d = d.dirs.entry(c.as_bytes().to_vec()).or_default();
            }
            d.leaves.insert(last.as_bytes().to_vec(), by_name_root);
        }
    }
    fn emit(vfs: &Vfs, d: Dir) -> u64 {
        let mut children = d.leaves;
        for (name, sub) in d.dirs {
            let ino = emit(vfs, sub);
            children.entry(name).or_insert(ino);
        }
        vfs.push(Node::new(Attr::dir(0o755), Content::Dir(children), true))
    }
    let by_id_ino = vfs.push(Node::new(Attr::dir(0o755), Content::Dir(by_id), true));
    let mut root = top;
    root.leaves.insert(b"by-id".to_vec(), by_id_ino);
    Ok(emit(vfs, root))
}
