//! `unistore fsck`: verify everything, report problems as data, repair what
//! can be rebuilt.
//!
//! Checks, in order:
//! 1. every object's content against its name (fs-verity digest computed in
//!    userspace; the kernel does it where fs-verity is enabled);
//! 2. every stream link points at an existing object;
//! 3. every catalog entry: image record readable, manifest and config bytes
//!    hash to the recorded digests, every layer meta, index and tar-split
//!    present and decodable, every file object of the layer present.
//!
//! `--repair` then rebuilds missing or corrupt indexes and tar-splits from
//! the layer's tar stream (when that is intact), removes orphans (gc), and
//! names the images it cannot repair without touching the healthy ones.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;

use composefs::fsverity::{FsVerityHashValue, FsVerityHasher};
use serde::Serialize;

use crate::gc::{mark_image, Live};
use crate::repo::{ObjectId, Store, REPO_DIR};

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Finding {
    /// What is wrong: `corrupt-object`, `missing-object`, `dangling-stream`,
    /// `bad-image-record`, `manifest-digest`, `config-digest`, `bad-index`,
    /// `orphan-object`.
    #[serde(rename = "Kind")]
    pub kind: String,
    /// Image ID affected, if any.
    #[serde(rename = "Image", skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Layer diffID affected, if any.
    #[serde(rename = "Layer", skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// Path inside the layer, if any.
    #[serde(rename = "Path", skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Object (hex) concerned, if any.
    #[serde(rename = "Object", skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Details.
    #[serde(rename = "Detail")]
    pub detail: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fsck: {}", self.kind)?;
        for v in [&self.image, &self.layer, &self.path, &self.object]
            .into_iter()
            .flatten()
        {
            write!(f, ": {v}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// Result of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FsckReport {
    /// Objects verified.
    #[serde(rename = "ObjectsChecked")]
    pub objects_checked: u64,
    /// Images checked.
    #[serde(rename = "ImagesChecked")]
    pub images_checked: u64,
    /// Problems.
    #[serde(rename = "Findings")]
    pub findings: Vec<Finding>,
    /// Images that `--repair` could not repair (IDs).
    #[serde(rename = "Unrepairable")]
    pub unrepairable: Vec<String>,
    /// What `--repair` did.
    #[serde(rename = "Repaired")]
    pub repaired: Vec<String>,
}

impl FsckReport {
    /// No findings.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

fn finding(kind: &str, detail: impl Into<String>) -> Finding {
    Finding {
        kind: kind.into(),
        image: None,
        layer: None,
        path: None,
        object: None,
        detail: detail.into(),
    }
}

/// Compute an object's fs-verity digest in userspace.
pub fn object_digest(path: &std::path::Path) -> std::io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut h = FsVerityHasher::<ObjectId>::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        std::io::Write::write_all(&mut h, &buf[..n])?;
    }
    Ok(h.digest().to_hex())
}

/// Check the store; with `repair`, fix what can be fixed.
pub fn fsck(store: &Store, repair: bool) -> anyhow::Result<FsckReport> {
    let _lock = store.write_lock()?;
    let mut rep = FsckReport::default();
    let objdir = store.root().join(REPO_DIR).join("objects");
    let mut present: HashSet<String> = HashSet::new();
    let mut corrupt: HashSet<String> = HashSet::new();
    // 1. objects
    // A store no import has written to yet has no objects directory.
    for sub in crate::repo::read_dir_if_exists(&objdir)?.flatten() {
        let d = sub.file_name().to_string_lossy().into_owned();
        if d.len() != 2 || !sub.file_type()?.is_dir() {
            continue;
        }
        for o in fs::read_dir(sub.path())?.flatten() {
            let hex = format!("{d}{}", o.file_name().to_string_lossy());
            rep.objects_checked += 1;
            match object_digest(&o.path()) {
                Ok(got) if got == hex => {
                    present.insert(hex);
                }
                Ok(got) => {
                    let mut f = finding("corrupt-object", format!("content hashes to {got}"));
                    f.object = Some(hex.clone());
                    rep.findings.push(f);
                    corrupt.insert(hex);
                }
                Err(e) => {
                    let mut f = finding("corrupt-object", format!("unreadable: {e}"));
                    f.object = Some(hex.clone());
                    rep.findings.push(f);
                    corrupt.insert(hex);
                }
            }
        }
    }
    // 2. stream links
    let sdir = store.root().join(REPO_DIR).join("streams");
    if let Ok(rd) = fs::read_dir(&sdir) {
        for e in rd.flatten() {
            if e.file_name() == "refs" {
                continue;
            }
            if fs::metadata(e.path()).is_err() {
                let mut f = finding("dangling-stream", "stream link points to a missing object");
                f.path = Some(e.file_name().to_string_lossy().into_owned());
                rep.findings.push(f);
            }
        }
    }
    // 3. catalog
    let cat = store.catalog()?;
    let mut bad_images: HashMap<String, bool> = HashMap::new(); // id -> repairable
    let mut live = Live::default();
    for e in &cat.images {
        rep.images_checked += 1;
        let img_finding =
            |kind: &str, layer: Option<&str>, object: Option<&str>, detail: String| {
                let mut f = finding(kind, detail);
                f.image = Some(e.id.clone());
                f.layer = layer.map(str::to_string);
                f.object = object.map(str::to_string);
                f
            };
        let rec = match store.image(e) {
            Ok(r) => r,
            Err(err) => {
                rep.findings.push(img_finding(
                    "bad-image-record",
                    None,
                    Some(&e.stream),
                    format!("{err:#}"),
                ));
                bad_images.insert(e.id.clone(), false);
                continue;
            }
        };
        let _ = mark_image(store, &e.stream, &mut live);
        let check = |hex: &str, want: &str| -> Option<String> {
            match store.read_object(hex) {
                Ok(b) => {
                    let got = crate::digest::sha256_digest(&b);
                    (got != want).then(|| format!("bytes hash to {got}, expected {want}"))
                }
                Err(err) => Some(format!("{err:#}")),
            }
        };
        if let Some(d) = check(&rec.manifest_object, &e.digest) {
            rep.findings.push(img_finding(
                "manifest-digest",
                None,
                Some(&rec.manifest_object),
                d,
            ));
            bad_images.insert(e.id.clone(), false);
        }
        if let Some(d) = check(&rec.config_object, &format!("sha256:{}", e.id)) {
            rep.findings.push(img_finding(
                "config-digest",
                None,
                Some(&rec.config_object),
                d,
            ));
            bad_images.insert(e.id.clone(), false);
        }
        for l in &rec.layers {
            let layer = Some(l.meta.diff_id.as_str());
            // Tar stream and its objects: the canonical data.
            let tar_ok = (|| -> anyhow::Result<Vec<String>> {
                let id = Store::object_id(&l.meta.tar_stream)?;
                let mut r = store
                    .repo()
                    .open_stream(&l.meta.tar_stream, Some(&id), None)?;
                let mut refs = Vec::new();
                r.get_object_refs(|o| refs.push(o.to_hex()))?;
                Ok(refs)
            })();
            match tar_ok {
                Ok(refs) => {
                    for o in refs {
                        if !present.contains(&o) {
                            let kind = if corrupt.contains(&o) {
                                "corrupt-object"
                            } else {
                                "missing-object"
                            };
                            rep.findings.push(img_finding(
                                kind,
                                layer,
                                Some(&o),
                                "file content of the layer".into(),
                            ));
                            bad_images.insert(e.id.clone(), false);
                        }
                    }
                }
                Err(err) => {
                    rep.findings.push(img_finding(
                        "missing-object",
                        layer,
                        Some(&l.meta.tar_stream),
                        format!("layer tar stream: {err:#}"),
                    ));
                    bad_images.insert(e.id.clone(), false);
                }
            }
            // Derived data: index and tar-split.
            let idx_ok = store.layer_index(&l.meta).is_ok();
            if !idx_ok {
                rep.findings.push(img_finding(
                    "bad-index",
                    layer,
                    Some(&l.meta.index_object),
                    "layer index missing or undecodable".into(),
                ));
                bad_images.entry(e.id.clone()).or_insert(true);
            }
            if !present.contains(&l.meta.tarsplit_object) {
                rep.findings.push(img_finding(
                    "bad-index",
                    layer,
                    Some(&l.meta.tarsplit_object),
                    "tar-split missing or corrupt".into(),
                ));
                bad_images.entry(e.id.clone()).or_insert(true);
            }
        }
    }
    // Orphans (left by an interrupted import or rmi; gc material). Images a
    // daemon still serves or a podman container uses are not orphans.
    let catalog_streams: std::collections::HashSet<String> =
        cat.images.iter().map(|e| e.stream.clone()).collect();
    crate::gc::mark_pinned(store, &catalog_streams, &mut live);
    let orphans: Vec<&String> = present
        .iter()
        .filter(|h| !live.objects.contains(*h))
        .collect();
    if !orphans.is_empty() && bad_images.is_empty() {
        rep.findings.push(finding(
            "orphan-object",
            format!(
                "{} objects no image reaches (removed by gc or fsck --repair)",
                orphans.len()
            ),
        ));
    }

    if repair {
        for (id, repairable) in &bad_images {
            if *repairable {
                match crate::import::rebuild_derived(store, id) {
                    Ok(()) => rep.repaired.push(format!("rebuilt indexes of image {id}")),
                    Err(err) => {
                        tracing::warn!("cannot rebuild image {id}: {err:#}");
                        rep.unrepairable.push(id.clone());
                    }
                }
            } else {
                rep.unrepairable.push(id.clone());
            }
        }
        // Corrupt objects nobody can use are removed so gc/fsck come back clean;
        // unrepairable images keep theirs (they are named above).
        let g = crate::gc::gc_locked(store, false)?;
        if g.objects_removed > 0 {
            rep.repaired.push(format!(
                "removed {} orphan objects ({} bytes)",
                g.objects_removed, g.bytes_removed
            ));
        }
    }
    rep.unrepairable.sort();
    Ok(rep)
}
