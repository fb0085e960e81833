//! Garbage collection and the reachability walk shared with `fsck`.
//!
//! Algorithm:
//! 1. Take the store's writer lock (imports and other gc/fsck --repair wait;
//!    see `docs/locking.md`).
//! 2. Roots: every catalog entry's image stream; image streams pinned by a
//!    running daemon (`pins/<pid>`, valid while the daemon holds its flock);
//!    image streams whose image a podman container still uses through the
//!    view (podman's `containers.json` in the configured graph roots).
//! 3. Walk: image record → manifest, config, layer meta streams → index,
//!    tar-split, layer tar stream → its file objects.
//! 4. Remove every object not reached and every `streams/` link to a removed
//!    object. Objects are only ever unlinked: a file already open through the
//!    view keeps reading its data until closed.
//!
//! composefs's own `Repository::gc` is not used because it takes an
//! exclusive `flock` on the repository that every open `Repository`
//! (the daemon's included) blocks, and it does not know unistore's roots.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use composefs::fsverity::FsVerityHashValue;
use serde::Serialize;

use crate::records::{ImageRecord, IMAGE_CONTENT_TYPE};
use crate::repo::{ObjectId, Store, REPO_DIR};

/// Directory of daemon pin files in the store root.
pub const PINS_DIR: &str = "pins";

/// What gc removed (or would remove).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// True for `--dry-run`.
    #[serde(rename = "DryRun")]
    pub dry_run: bool,
    /// Objects removed.
    #[serde(rename = "ObjectsRemoved")]
    pub objects_removed: u64,
    /// Bytes of those objects.
    #[serde(rename = "BytesRemoved")]
    pub bytes_removed: u64,
    /// Stream links removed.
    #[serde(rename = "StreamsRemoved")]
    pub streams_removed: u64,
    /// Objects kept.
    #[serde(rename = "ObjectsKept")]
    pub objects_kept: u64,
    /// Images kept alive only because a daemon or podman container uses them.
    #[serde(rename = "PinnedImages")]
    pub pinned_images: Vec<String>,
}

/// Everything reachable from a set of image streams.
#[derive(Debug, Default)]
pub struct Live {
    /// Objects (hex) reached.
    pub objects: HashSet<String>,
}

impl Live {
    fn add(&mut self, id: &ObjectId) {
        self.objects.insert(id.to_hex());
    }
}

/// Read an image record straight from its stream object.
pub fn read_image_stream(store: &Store, hex: &str) -> anyhow::Result<ImageRecord> {
    let id = Store::object_id(hex)?;
    let mut r = store
        .repo()
        .open_stream(hex, Some(&id), Some(IMAGE_CONTENT_TYPE))?;
    let mut out = Vec::new();
    r.cat(store.repo(), &mut out)?;
    Ok(serde_json::from_slice(&out)?)
}

/// Mark everything an image stream reaches.
pub fn mark_image(store: &Store, hex: &str, live: &mut Live) -> anyhow::Result<()> {
    let repo = store.repo();
    live.objects.insert(hex.to_string());
    let rec = read_image_stream(store, hex)?;
    live.objects.insert(rec.manifest_object.clone());
    live.objects.insert(rec.config_object.clone());
    for l in &rec.layers {
        if !live.objects.insert(l.meta_stream.clone()) {
            continue;
        }
        live.objects.insert(l.meta.index_object.clone());
        live.objects.insert(l.meta.tarsplit_object.clone());
        live.objects.insert(l.meta.tar_stream.clone());
        let tid = Store::object_id(&l.meta.tar_stream)?;
        let mut r = repo.open_stream(&l.meta.tar_stream, Some(&tid), None)?;
        r.get_object_refs(|id| live.add(id))?;
    }
    Ok(())
}

/// Image streams pinned by running daemons.
pub fn daemon_pins(store: &Store) -> Vec<String> {
    let dir = store.root().join(PINS_DIR);
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(&dir) else {
        return out;
    };
    for ent in rd.flatten() {
        let path = ent.path();
        let Ok(f) = fs::File::open(&path) else {
            continue;
        };
        // A live daemon holds an exclusive lock on its pin file.
        match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockShared) {
            Ok(()) => {
                tracing::debug!("removing stale pin file {}", path.display());
                let _ = fs::remove_file(&path);
            }
            Err(_) => {
                if let Ok(text) = fs::read_to_string(&path) {
                    out.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
                }
            }
        }
    }
    out
}

/// Graph roots whose podman containers we look at (env `UNISTORE_PODMAN_ROOTS`,
/// colon-separated, else the root default).
fn podman_roots() -> Vec<PathBuf> {
    match std::env::var("UNISTORE_PODMAN_ROOTS") {
        Ok(v) => v
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect(),
        Err(_) => vec![PathBuf::from("/var/lib/containers/storage")],
    }
}

/// A podman container that uses an image.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerUse {
    /// Container ID.
    #[serde(rename = "Id")]
    pub id: String,
    /// Container names.
    #[serde(rename = "Names")]
    pub names: Vec<String>,
    /// Image ID it was created from.
    #[serde(rename = "ImageId")]
    pub image: String,
    /// Graph root it lives in.
    #[serde(rename = "Root")]
    pub root: PathBuf,
}

/// Containers recorded in podman's stores (c/storage `containers.json`).
pub fn podman_containers() -> Vec<ContainerUse> {
    let mut out = Vec::new();
    for root in podman_roots() {
        let p = root.join("overlay-containers").join("containers.json");
        let Ok(data) = fs::read(&p) else { continue };
        let Ok(v) = serde_json::from_slice::<Vec<serde_json::Value>>(&data) else {
            tracing::warn!("cannot parse {}", p.display());
            continue;
        };
        for c in v {
            let s = |k: &str| c.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            out.push(ContainerUse {
                id: s("id"),
                names: c
                    .get("names")
                    .and_then(|n| n.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                image: s("image"),
                root: root.clone(),
            });
        }
    }
    out
}

fn all_image_streams(store: &Store) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dir = store.root().join(REPO_DIR).join("streams");
    if let Ok(rd) = fs::read_dir(&dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("unistore-image-") {
                continue;
            }
            if let Ok(t) = fs::read_link(e.path()) {
                if let Some(hex) = object_hex_from_link(&t) {
                    out.push((name, hex));
                }
            }
        }
    }
    out
}

fn object_hex_from_link(target: &Path) -> Option<String> {
    let s = target.to_string_lossy();
    let rest = s.strip_prefix("../objects/")?;
    let (dir, file) = rest.split_once('/')?;
    Some(format!("{dir}{file}"))
}

/// Mark the images outside the catalog that must stay: those a running
/// daemon still serves and those a podman container was created from.
/// Returns their image streams.
pub fn mark_pinned(
    store: &Store,
    catalog_streams: &HashSet<String>,
    live: &mut Live,
) -> Vec<String> {
    let pinned: HashSet<String> = daemon_pins(store).into_iter().collect();
    let used_ids: HashSet<String> = podman_containers().into_iter().map(|c| c.image).collect();
    let mut out = Vec::new();
    for (_, hex) in all_image_streams(store) {
        if catalog_streams.contains(&hex) {
            continue;
        }
        let keep = pinned.contains(&hex)
            || read_image_stream(store, &hex)
                .map(|r| used_ids.contains(r.id()))
                .unwrap_or(false);
        if keep && mark_image(store, &hex, live).is_ok() {
            out.push(hex);
        }
    }
    out
}

/// Run gc (or a dry run).
pub fn gc(store: &Store, dry_run: bool) -> anyhow::Result<GcReport> {
    let _lock = store.write_lock()?;
    gc_locked(store, dry_run)
}

/// gc with the writer lock already held.
pub fn gc_locked(store: &Store, dry_run: bool) -> anyhow::Result<GcReport> {
    let mut report = GcReport {
        dry_run,
        ..Default::default()
    };
    let cat = store.catalog()?;
    let mut live = Live::default();
    let catalog_streams: HashSet<String> = cat.images.iter().map(|e| e.stream.clone()).collect();
    for e in &cat.images {
        mark_image(store, &e.stream, &mut live)
            .with_context(|| format!("walking image {} (run `unistore fsck`)", e.id))?;
    }
    report.pinned_images = mark_pinned(store, &catalog_streams, &mut live);
    // Sweep objects.
    let objdir = store.root().join(REPO_DIR).join("objects");
    let mut removed = HashSet::new();
    // A store no import has written to yet has no objects directory.
    for sub in crate::repo::read_dir_if_exists(&objdir)?.flatten() {
        let dname = sub.file_name().to_string_lossy().into_owned();
        if dname.len() != 2 || !sub.file_type()?.is_dir() {
            continue;
        }
        for o in fs::read_dir(sub.path())?.flatten() {
            let fname = o.file_name().to_string_lossy().into_owned();
            let hex = format!("{dname}{fname}");
            if live.objects.contains(&hex) {
                report.objects_kept += 1;
                continue;
            }
            report.objects_removed += 1;
            report.bytes_removed += o.metadata().map(|m| m.len()).unwrap_or(0);
            removed.insert(hex);
            if !dry_run {
                fs::remove_file(o.path())
                    .with_context(|| format!("removing {}", o.path().display()))?;
            }
        }
    }
    // Stream links whose object is gone (or going).
    let sdir = store.root().join(REPO_DIR).join("streams");
    if let Ok(rd) = fs::read_dir(&sdir) {
        for e in rd.flatten() {
            if e.file_name() == "refs" {
                continue;
            }
            let dangling = match fs::read_link(e.path()) {
                Ok(t) => match object_hex_from_link(&t) {
                    Some(hex) => {
                        removed.contains(&hex)
                            || !live.objects.contains(&hex) && !sdir.join(&t).exists()
                    }
                    None => false,
                },
                Err(_) => false,
            };
            if dangling {
                report.streams_removed += 1;
                if !dry_run {
                    fs::remove_file(e.path())?;
                }
            }
        }
    }
    // Scratch files of interrupted operations.
    if !dry_run {
        if let Ok(rd) = fs::read_dir(store.root().join("tmp")) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with("import-") {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
    }
    Ok(report)
}
