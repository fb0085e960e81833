//! Opening, initialising and locking a store; reading what it holds.
//!
//! On-disk layout of a store root:
//!
//! ```text
//! STORE/
//!   repo/           composefs repository (objects/, streams/, meta.json)
//!   catalog.json    image names → image record streams (see `catalog`)
//!   lock            flock(2) target: exclusive for writers (import, tag, rmi, gc)
//!   tmp/            scratch space of interrupted operations (safe to empty)
//! ```

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use composefs::fsverity::{FsVerityHashValue, Sha256HashValue};
use composefs::repository::{Repository, RepositoryConfig};
use serde::Serialize;

use crate::catalog::{Catalog, CatalogEntry, CATALOG_FILE};
use crate::error::StoreError;
use crate::index::LayerIndex;
use crate::records::{ImageRecord, LayerMeta, IMAGE_CONTENT_TYPE, LAYER_META_CONTENT_TYPE};

/// Default store location.
pub const DEFAULT_STORE: &str = "/var/lib/unistore";
/// The composefs repository inside the store.
pub const REPO_DIR: &str = "repo";
/// The writers' lock file.
pub const LOCK_FILE: &str = "lock";

/// The composefs object ID type used by unistore (fs-verity sha256).
pub type ObjectId = Sha256HashValue;

/// An open store.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    repo: Arc<Repository<ObjectId>>,
}

/// What `init` did.
#[derive(Debug, Clone, Serialize)]
pub struct InitInfo {
    /// Store root.
    pub path: PathBuf,
    /// False if the store already existed.
    pub created: bool,
    /// Whether objects carry fs-verity (false: the repository's insecure mode).
    pub verity: bool,
}

/// Holds the store's exclusive writer lock until dropped.
#[derive(Debug)]
pub struct WriteLock {
    _file: File,
}

/// Figures of `unistore df`.
#[derive(Debug, Clone, Serialize)]
pub struct DiskUsage {
    /// Number of images.
    #[serde(rename = "Images")]
    pub images: usize,
    /// Sum over images of their uncompressed layer sizes (what separate copies would take).
    #[serde(rename = "LogicalBytes")]
    pub logical_bytes: u64,
    /// Bytes the store occupies on disk (allocated blocks, hard links counted once; `du -s --block-size=1 STORE`).
    #[serde(rename = "PhysicalBytes")]
    pub physical_bytes: u64,
    /// Number of objects in the repository.
    #[serde(rename = "Objects")]
    pub objects: u64,
    /// Sum of object sizes (distinct content).
    #[serde(rename = "DistinctBytes")]
    pub distinct_bytes: u64,
    /// `LogicalBytes / PhysicalBytes`.
    #[serde(rename = "DedupRatio")]
    pub dedup_ratio: f64,
}

fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64)
}

/// Format Unix seconds as RFC 3339 UTC.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

impl Store {
    /// Create a store at `root` (idempotent). fs-verity is used where the
    /// filesystem supports it; elsewhere the repository runs insecure.
    pub fn init(root: &Path) -> anyhow::Result<(Store, InitInfo)> {
        fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        fs::create_dir_all(root.join("tmp"))?;
        let existed = root.join(CATALOG_FILE).exists();
        let dir = File::open(root).with_context(|| format!("opening {}", root.display()))?;
        let secure = Repository::<ObjectId>::init_path(&dir, REPO_DIR, RepositoryConfig::default());
        let (repo, verity) = match secure {
            Ok((repo, _)) => {
                let v = !repo.is_insecure();
                (repo, v)
            }
            Err(e) => {
                tracing::info!(
                    "fs-verity unavailable ({e:#}); using the repository's insecure mode"
                );
                let (repo, _) = Repository::<ObjectId>::init_path(
                    &dir,
                    REPO_DIR,
                    RepositoryConfig::default().set_insecure(),
                )
                .context("initialising composefs repository")?;
                (repo, false)
            }
        };
        File::create(root.join(LOCK_FILE))?;
        // Only root may read the store or take its lock: a user who could
        // flock `lock` could stall every writer (views are served by the
        // daemon, which enforces each file's own mode).
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(root, fs::Permissions::from_mode(0o700))?;
        fs::set_permissions(root.join(LOCK_FILE), fs::Permissions::from_mode(0o600))?;
        if !existed {
            Catalog::default().publish(root)?;
        }
        let store = Store {
            root: root.to_path_buf(),
            repo: Arc::new(repo),
        };
        let info = InitInfo {
            path: root.to_path_buf(),
            created: !existed,
            verity,
        };
        Ok((store, info))
    }

    /// Open an existing store.
    pub fn open(root: &Path) -> anyhow::Result<Store> {
        if !root.join(CATALOG_FILE).exists() {
            return Err(StoreError::NotInitialized {
                path: root.to_path_buf(),
            }
            .into());
        }
        let dir = File::open(root).with_context(|| format!("opening {}", root.display()))?;
        let repo = Repository::<ObjectId>::open_path(&dir, REPO_DIR)
            .with_context(|| format!("opening composefs repository in {}", root.display()))?;
        Ok(Store {
            root: root.to_path_buf(),
            repo: Arc::new(repo),
        })
    }

    /// Store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The composefs repository.
    pub fn repo(&self) -> &Arc<Repository<ObjectId>> {
        &self.repo
    }

    /// Take the exclusive writer lock (blocks while another writer runs).
    pub fn write_lock(&self) -> anyhow::Result<WriteLock> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.root.join(LOCK_FILE))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .context("locking the store")?;
        Ok(WriteLock { _file: file })
    }

    /// Current catalog.
    pub fn catalog(&self) -> anyhow::Result<Catalog> {
        Catalog::load(&self.root)
    }

    /// Publish a new catalog (caller holds the write lock).
    pub fn publish(&self, catalog: &mut Catalog) -> anyhow::Result<()> {
        catalog.publish(&self.root)
    }

    /// Parse an object ID given in hex.
    pub fn object_id(hex: &str) -> anyhow::Result<ObjectId> {
        ObjectId::from_hex(hex).map_err(|e| anyhow::anyhow!("bad object id {hex}: {e:?}"))
    }

    /// Open an object by its hex ID.
    pub fn open_object(&self, hex: &str) -> anyhow::Result<OwnedFd> {
        self.repo.open_object(&Self::object_id(hex)?)
    }

    /// Read a whole object.
    pub fn read_object(&self, hex: &str) -> anyhow::Result<Vec<u8>> {
        self.repo.read_object(&Self::object_id(hex)?)
    }

    /// Path of an object's file relative to the store root.
    pub fn object_path(&self, hex: &str) -> anyhow::Result<PathBuf> {
        Ok(self
            .root
            .join(REPO_DIR)
            .join("objects")
            .join(Self::object_id(hex)?.to_object_pathname()))
    }

    fn read_inline_stream(&self, hex: &str, content_type: u64) -> anyhow::Result<Vec<u8>> {
        let id = Self::object_id(hex)?;
        let mut reader = self.repo.open_stream(hex, Some(&id), Some(content_type))?;
        let mut out = Vec::new();
        reader.cat(&self.repo, &mut out)?;
        Ok(out)
    }

    /// Load the record of a catalog entry.
    pub fn image(&self, entry: &CatalogEntry) -> anyhow::Result<ImageRecord> {
        let data = self
            .read_inline_stream(&entry.stream, IMAGE_CONTENT_TYPE)
            .with_context(|| format!("reading image record of {}", entry.id))?;
        Ok(serde_json::from_slice(&data)?)
    }

    /// Load a layer meta record by its stream object ID.
    pub fn layer_meta(&self, hex: &str) -> anyhow::Result<LayerMeta> {
        let data = self.read_inline_stream(hex, LAYER_META_CONTENT_TYPE)?;
        Ok(serde_json::from_slice(&data)?)
    }

    /// Load a layer's index.
    pub fn layer_index(&self, meta: &LayerMeta) -> anyhow::Result<LayerIndex> {
        let data = self
            .read_object(&meta.index_object)
            .with_context(|| format!("reading index of layer {}", meta.diff_id))?;
        LayerIndex::decode(&data)
            .with_context(|| format!("decoding index of layer {}", meta.diff_id))
    }

    /// Write a layer's original tar, bit for bit, to `out`.
    pub fn write_layer_tar(&self, meta: &LayerMeta, out: &mut impl Write) -> anyhow::Result<()> {
        let id = Self::object_id(&meta.tar_stream)?;
        let mut reader = self.repo.open_stream(&meta.tar_stream, Some(&id), None)?;
        reader.cat(&self.repo, out)
    }

    /// Add `new_name` to the image `name` refers to.
    pub fn tag(&self, name: &str, new_name: &str) -> anyhow::Result<String> {
        let _lock = self.write_lock()?;
        let mut cat = self.catalog()?;
        let id = cat
            .find(name)
            .ok_or_else(|| StoreError::ImageNotFound(name.to_string()))?
            .id
            .clone();
        let q = crate::source::qualify_name(new_name);
        cat.assign_name(&id, &q);
        self.publish(&mut cat)?;
        Ok(id)
    }

    /// Remove a name; the image leaves the catalog when it has no names left
    /// or when `name` is its ID. Its data stays until `gc`.
    pub fn rmi(&self, name: &str) -> anyhow::Result<CatalogEntry> {
        let _lock = self.write_lock()?;
        let mut cat = self.catalog()?;
        let entry = cat
            .find(name)
            .ok_or_else(|| StoreError::ImageNotFound(name.to_string()))?
            .clone();
        let q = crate::source::qualify_name(name);
        let by_name = entry.names.iter().any(|n| n == name || *n == q);
        let e = cat
            .images
            .iter_mut()
            .find(|e| e.id == entry.id)
            .expect("found above");
        if by_name && e.names.len() > 1 {
            e.names.retain(|n| n != name && *n != q);
        } else {
            cat.images.retain(|e| e.id != entry.id);
        }
        self.publish(&mut cat)?;
        Ok(entry)
    }

    /// Disk usage figures.
    pub fn df(&self) -> anyhow::Result<DiskUsage> {
        let cat = self.catalog()?;
        let logical: u64 = cat.images.iter().map(|e| e.size).sum();
        let mut seen = HashSet::new();
        let mut physical = 0u64;
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let md = fs::symlink_metadata(&dir)?;
            if seen.insert((md.dev(), md.ino())) {
                physical += md.blocks() * 512;
            }
            for ent in fs::read_dir(&dir)? {
                let ent = ent?;
                let md = ent.metadata()?;
                if md.is_dir() {
                    stack.push(ent.path());
                } else if seen.insert((md.dev(), md.ino())) {
                    physical += md.blocks() * 512;
                }
            }
        }
        let (mut objects, mut distinct) = (0u64, 0u64);
        let objdir = self.root.join(REPO_DIR).join("objects");
        if let Ok(rd) = fs::read_dir(&objdir) {
            for sub in rd {
                let sub = sub?;
                if !sub.file_type()?.is_dir() {
                    continue;
                }
                for o in fs::read_dir(sub.path())? {
                    let md = o?.metadata()?;
                    objects += 1;
                    distinct += md.len();
                }
            }
        }
        Ok(DiskUsage {
            images: cat.images.len(),
            logical_bytes: logical,
            physical_bytes: physical,
            objects,
            distinct_bytes: distinct,
            dedup_ratio: if physical > 0 {
                logical as f64 / physical as f64
            } else {
                0.0
            },
        })
    }
}

/// Current time as RFC 3339 (for records).
pub(crate) fn now() -> String {
    rfc3339_now()
}

/// `read_dir`, with a missing directory read as empty.
pub(crate) fn read_dir_if_exists(
    dir: &Path,
) -> std::io::Result<impl Iterator<Item = std::io::Result<fs::DirEntry>>> {
    match fs::read_dir(dir) {
        Ok(rd) => Ok(Some(rd).into_iter().flatten()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None.into_iter().flatten()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_format() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
