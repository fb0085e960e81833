//! The containers-storage view: a read-only overlay-driver store that podman
//! uses as an additional image store. Layout and every field follow
//! `docs/views/containers-storage.md` (measured against podman 4.3.1).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::Engine as _;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::tree::{Attr, Content, Node, NodeKind, Vfs};
use crate::catalog::Catalog;
use crate::records::{ImageRecord, LayerMeta};
use crate::repo::Store;

/// Layer IDs as c/image computes them when storing an image:
/// `id0 = hex(diffID0)`, `idN = hex(sha256(id(N-1) + "+" + hex(diffIDN)))`.
pub fn layer_ids(diff_ids: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in diff_ids {
        let hex = d.trim_start_matches("sha256:");
        let id = match out.last() {
            None => hex.to_string(),
            Some(prev) => hex::encode(Sha256::digest(format!("{prev}+{hex}").as_bytes())),
        };
        out.push(id);
    }
    out
}

/// The `overlay/l/` link name of a layer: 26 base32 characters derived from
/// the layer ID with a unistore-specific prefix, so names never collide with
/// c/storage's random ones.
pub fn link_id(layer_id: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let h = Sha256::digest(format!("unistore:{layer_id}").as_bytes());
    (0..26)
        .map(|i| {
            let bit = i * 5;
            let word = u16::from_be_bytes([h[bit / 8], h[bit / 8 + 1]]);
            let v = (word >> (11 - bit % 8)) & 31;
            ALPHABET[v as usize] as char
        })
        .collect()
}

/// File name of big-data key `key` in `overlay-images/<id>/`.
pub fn big_data_name(key: &str) -> String {
    if key
        .bytes()
        .all(|b| b == b'.' || b.is_ascii_digit() || b.is_ascii_lowercase())
    {
        key.to_string()
    } else {
        format!(
            "={}",
            base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
        )
    }
}

/// A 64-byte lock-file token that changes with every catalog generation
/// (c/storage reloads when the first 64 bytes of a lock file change).
fn lock_token(generation: u64) -> Vec<u8> {
    let h = hex::encode(Sha256::digest(
        format!("unistore-generation-{generation}").as_bytes(),
    ));
    h.into_bytes()
}

fn bytes_node(vfs: &Vfs, perm: u32, data: Vec<u8>, dynamic: bool) -> u64 {
    let attr = Attr::file(perm, data.len() as u64);
    vfs.push(Node::new(attr, Content::Bytes(Arc::from(data)), dynamic))
}

fn dir_node(vfs: &Vfs, perm: u32, children: BTreeMap<Vec<u8>, u64>, dynamic: bool) -> u64 {
    let mut attr = Attr::dir(perm);
    attr.nlink = 2;
    vfs.push(Node::new(attr, Content::Dir(children), dynamic))
}

/// Nodes that survive catalog reloads.
#[derive(Debug, Default)]
pub struct LayerCache {
    /// layer ID → (`overlay/<id>` directory node, diff node).
    pub layers: HashMap<String, (u64, u64)>,
    /// `images.lock` and `layers.lock`: stable nodes whose content changes,
    /// because c/storage keeps them open and re-reads their first 64 bytes.
    pub lock_files: Option<(u64, u64)>,
}

/// Build the view for `cat` and return the node of its root directory.
pub fn build(
    store: &Store,
    vfs: &Vfs,
    cat: &Catalog,
    cache: &mut LayerCache,
) -> anyhow::Result<u64> {
    let mut images_json = Vec::new();
    let mut layers_json: Vec<serde_json::Value> = Vec::new();
    let mut layer_seen: HashMap<String, ()> = HashMap::new();
    let mut images_dir: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut overlay_dir: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut l_dir: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut layers_dir: BTreeMap<Vec<u8>, u64> = BTreeMap::new();

    for entry in &cat.images {
        let rec: ImageRecord = match store.image(entry) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(image = %entry.id, "cannot read image record, hiding it: {e:#}");
                continue;
            }
        };
        let diff_ids: Vec<&str> = rec.layers.iter().map(|l| l.meta.diff_id.as_str()).collect();
        let ids = layer_ids(&diff_ids);
        for (i, (l, id)) in rec.layers.iter().zip(&ids).enumerate() {
            if layer_seen.insert(id.clone(), ()).is_some() {
                continue;
            }
            let parent = i.checked_sub(1).map(|p| ids[p].clone());
            let mut rec_json = json!({
                "id": id,
                "created": entry.created.clone().unwrap_or_else(|| entry.imported.clone()),
                "compressed-diff-digest": l.blob_digest,
                "compressed-size": l.blob_size,
                "diff-digest": l.meta.diff_id,
                "diff-size": l.meta.diff_size,
                "compression": l.compression,
                "uidset": l.meta.uids,
                "gidset": l.meta.gids,
            });
            if let Some(p) = &parent {
                rec_json["parent"] = json!(p);
            }
            layers_json.push(rec_json);

            // overlay/<id>/{diff,link,lower} and l/<LINKID>.
            let (layer_dir, _) = match cache.layers.get(id) {
                Some(v) => *v,
                None => {
                    let v = layer_nodes(store, vfs, &l.meta, &ids[..i], id)?;
                    cache.layers.insert(id.clone(), v);
                    v
                }
            };
            overlay_dir.insert(id.as_bytes().to_vec(), layer_dir);
            let link = link_id(id);
            let target = format!("../{id}/diff").into_bytes();
            let mut attr = Attr::file(0o777, target.len() as u64);
            attr.kind = NodeKind::Symlink;
            l_dir.insert(
                link.into_bytes(),
                vfs.push(Node::new(attr, Content::Symlink(target), false)),
            );
            // tar-split
            let ts = vfs.push(Node::new(
                Attr::file(0o600, object_size(store, &l.meta.tarsplit_object)),
                Content::Object(l.meta.tarsplit_object.clone()),
                false,
            ));
            layers_dir.insert(format!("{id}.tar-split.gz").into_bytes(), ts);
        }

        // overlay-images/<id>/ big data.
        let cfg_key = rec.config_digest.clone();
        let man_key = format!("manifest-{}", rec.manifest_digest);
        let mut files = BTreeMap::new();
        let man = vfs.push(Node::new(
            Attr::file(0o600, rec.manifest_size),
            Content::Object(rec.manifest_object.clone()),
            false,
        ));
        files.insert(b"manifest".to_vec(), man);
        files.insert(big_data_name(&man_key).into_bytes(), man);
        let cfg = vfs.push(Node::new(
            Attr::file(0o600, rec.config_size),
            Content::Object(rec.config_object.clone()),
            false,
        ));
        files.insert(big_data_name(&cfg_key).into_bytes(), cfg);
        if let Some(n) = vfs.get(man)? {
            let mut attr = n.attr.clone();
            attr.nlink = 2;
            vfs.replace(man, Node::new(attr, n.content.clone(), false));
        }
        images_dir.insert(
            entry.id.as_bytes().to_vec(),
            dir_node(vfs, 0o700, files, false),
        );

        images_json.push(json!({
            "id": entry.id,
            "digest": rec.manifest_digest,
            "names": entry.names,
            "names-history": entry.names,
            "layer": ids.last().cloned().unwrap_or_default(),
            "metadata": "{}",
            "big-data-names": [cfg_key, man_key, "manifest"],
            "big-data-sizes": { cfg_key.clone(): rec.config_size, man_key.clone(): rec.manifest_size, "manifest": rec.manifest_size },
            "big-data-digests": { cfg_key.clone(): rec.config_digest, man_key.clone(): rec.manifest_digest, "manifest": rec.manifest_digest },
            "created": entry.created.clone().unwrap_or_else(|| entry.imported.clone()),
        }));
    }
    let token = lock_token(cat.generation);
    let ij = serde_json::to_vec(&images_json)?;
    let lj = serde_json::to_vec(&layers_json)?;
    images_dir.insert(b"images.json".to_vec(), bytes_node(vfs, 0o600, ij, true));
    let (il, ll) = match cache.lock_files {
        Some((il, ll)) => {
            for ino in [il, ll] {
                let attr = Attr::file(0o644, token.len() as u64);
                vfs.replace(
                    ino,
                    Node::new(attr, Content::Bytes(Arc::from(token.clone())), true),
                );
            }
            (il, ll)
        }
        None => {
            let v = (
                bytes_node(vfs, 0o644, token.clone(), true),
                bytes_node(vfs, 0o644, token, true),
            );
            cache.lock_files = Some(v);
            v
        }
    };
    images_dir.insert(b"images.lock".to_vec(), il);
    layers_dir.insert(b"layers.json".to_vec(), bytes_node(vfs, 0o600, lj, true));
    layers_dir.insert(b"layers.lock".to_vec(), ll);
    overlay_dir.insert(b"l".to_vec(), dir_node(vfs, 0o755, l_dir, true));

    let mut root = BTreeMap::new();
    root.insert(
        b"overlay-images".to_vec(),
        dir_node(vfs, 0o700, images_dir, true),
    );
    root.insert(
        b"overlay-layers".to_vec(),
        dir_node(vfs, 0o700, layers_dir, true),
    );
    root.insert(b"overlay".to_vec(), dir_node(vfs, 0o700, overlay_dir, true));
    Ok(dir_node(vfs, 0o700, root, true))
}

fn object_size(store: &Store, hex: &str) -> u64 {
    store
        .object_path(hex)
        .ok()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .unwrap_or(0)
}

/// Nodes of `overlay/<id>/`: `diff/` (lazy), `link`, `lower`.
fn layer_nodes(
    store: &Store,
    vfs: &Vfs,
    meta: &LayerMeta,
    ancestors: &[String],
    id: &str,
) -> anyhow::Result<(u64, u64)> {
    // The tree is read from the index only when someone looks inside diff/.
    let _ = store;
    let attr = Attr::dir(0o555);
    let diff = vfs.push(Node::new(
        attr,
        Content::LazyLayer(meta.index_object.clone()),
        false,
    ));
    let mut children = BTreeMap::new();
    children.insert(b"diff".to_vec(), diff);
    children.insert(
        b"link".to_vec(),
        bytes_node(vfs, 0o644, link_id(id).into_bytes(), false),
    );
    if !ancestors.is_empty() {
        let lower: Vec<String> = ancestors
            .iter()
            .rev()
            .map(|a| format!("l/{}", link_id(a)))
            .collect();
        children.insert(
            b"lower".to_vec(),
            bytes_node(vfs, 0o644, lower.join(":").into_bytes(), false),
        );
    }
    Ok((dir_node(vfs, 0o700, children, false), diff))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_id_chain_matches_measured() {
        // reference/containers-storage.md §5: sha256("1a591f…88fc+12383972…62f6") = a04f3d48…ce87
        let a = "sha256:1a591fa8b6f8f03041bf1162e77524f1e516f4c931cf0c0ab7ff63d12a0488fc";
        let b = "sha256:12383972faf06607603c05c4f56c7bd9fcd3772a0362812f4ae4f765056162f6";
        let ids = layer_ids(&[a, b]);
        assert_eq!(ids[0], a.trim_start_matches("sha256:"));
        assert_eq!(
            ids[1],
            "a04f3d48074f4c69425c0194a18cd0f1e73a45cf30c9ad8985da3c3bccecce87"
        );
    }

    #[test]
    fn big_data_names() {
        assert_eq!(big_data_name("manifest"), "manifest");
        assert_eq!(
            big_data_name("sha256:c349"),
            format!(
                "={}",
                base64::engine::general_purpose::STANDARD.encode("sha256:c349")
            )
        );
    }

    #[test]
    fn link_ids_are_base32() {
        let l = link_id("abc");
        assert_eq!(l.len(), 26);
        assert!(l
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        assert_ne!(l, link_id("abd"));
    }
}
