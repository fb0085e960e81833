//! The catalog: image names → image records, published atomically.
//!
//! `catalog.json` in the store root is the only mutable file that decides
//! what images exist. It is replaced with write-to-temporary, `fsync`,
//! `rename`, `fsync(dir)`, always last in an import, so a crash leaves either
//! the old or the new catalog, never a mix. Everything it points at (image
//! streams in the composefs repository) is durable before it is written.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// File name of the catalog in the store root.
pub const CATALOG_FILE: &str = "catalog.json";

/// Current catalog format version.
pub const CATALOG_VERSION: u32 = 1;

/// One image in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// Image ID: hex of the config digest (as podman shows it).
    pub id: String,
    /// Manifest digest, `sha256:...`.
    pub digest: String,
    /// Fully qualified names (`localhost/x:1`).
    pub names: Vec<String>,
    /// Object ID (hex fs-verity digest) of the image's record stream.
    pub stream: String,
    /// Image creation time from the config (RFC 3339), if any.
    #[serde(default)]
    pub created: Option<String>,
    /// When it was imported (RFC 3339, UTC).
    pub imported: String,
    /// Sum of the uncompressed layer sizes.
    pub size: u64,
}

/// The whole catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Format version.
    pub version: u32,
    /// Incremented on every change; the daemon and podman's lock files follow it.
    pub generation: u64,
    /// Images, in import order.
    pub images: Vec<CatalogEntry>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            version: CATALOG_VERSION,
            generation: 0,
            images: Vec::new(),
        }
    }
}

impl Catalog {
    /// Load the catalog of the store at `root`.
    pub fn load(root: &Path) -> anyhow::Result<Self> {
        let path = root.join(CATALOG_FILE);
        let data = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let cat: Catalog =
            serde_json::from_slice(&data).with_context(|| format!("parsing {}", path.display()))?;
        anyhow::ensure!(
            cat.version == CATALOG_VERSION,
            "{}: unsupported catalog version {}",
            path.display(),
            cat.version
        );
        Ok(cat)
    }

    /// Atomically replace the catalog at `root` with `self` (generation + 1).
    pub fn publish(&mut self, root: &Path) -> anyhow::Result<()> {
        self.generation += 1;
        let data = serde_json::to_vec_pretty(self)?;
        let tmp = root.join(format!(".{CATALOG_FILE}.tmp"));
        {
            let mut f =
                File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            f.write_all(&data)
                .and_then(|_| f.sync_all())
                .with_context(|| format!("writing {}", tmp.display()))?;
        }
        crate::crash::point("catalog temporary written");
        fs::rename(&tmp, root.join(CATALOG_FILE)).context("publishing catalog")?;
        crate::crash::point("catalog renamed");
        File::open(root)
            .and_then(|d| d.sync_all())
            .context("syncing store directory")?;
        Ok(())
    }

    /// Find an image by name (exact or podman-qualified), ID, ID prefix (≥ 3 chars) or digest.
    pub fn find(&self, name: &str) -> Option<&CatalogEntry> {
        let q = crate::source::qualify_name(name);
        let id = name.strip_prefix("sha256:").unwrap_or(name);
        self.images
            .iter()
            .find(|e| e.names.iter().any(|n| n == name || *n == q))
            .or_else(|| self.images.iter().find(|e| e.id == id || e.digest == name))
            .or_else(|| {
                // Short names match a unique name ending in `/NAME[:latest]` (podman's local lookup).
                let want = if name.contains(':') {
                    format!("/{name}")
                } else {
                    format!("/{name}:latest")
                };
                let mut it = self
                    .images
                    .iter()
                    .filter(|e| e.names.iter().any(|n| n.ends_with(&want)));
                match (it.next(), it.next()) {
                    (Some(one), None) => Some(one),
                    _ => None,
                }
            })
            .or_else(|| {
                if id.len() < 3 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                let mut it = self.images.iter().filter(|e| e.id.starts_with(id));
                match (it.next(), it.next()) {
                    (Some(one), None) => Some(one),
                    _ => None,
                }
            })
    }

    /// Give `name` to image `id`, taking it from any other image (as podman does).
    pub fn assign_name(&mut self, id: &str, name: &str) {
        for e in &mut self.images {
            if e.id != id {
                e.names.retain(|n| n != name);
            }
        }
        if let Some(e) = self.images.iter_mut().find(|e| e.id == id) {
            if !e.names.iter().any(|n| n == name) {
                e.names.push(name.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, names: &[&str]) -> CatalogEntry {
        CatalogEntry {
            id: id.into(),
            digest: format!("sha256:{id}"),
            names: names.iter().map(|s| s.to_string()).collect(),
            stream: String::new(),
            created: None,
            imported: String::new(),
            size: 0,
        }
    }

    #[test]
    fn find_and_assign() {
        let mut c = Catalog::default();
        c.images.push(entry("abcdef", &["localhost/x:1"]));
        c.images.push(entry("abc999", &["localhost/y:1"]));
        assert_eq!(c.find("x:1").unwrap().id, "abcdef");
        assert_eq!(c.find("abcd").unwrap().id, "abcdef");
        assert!(c.find("abc").is_none(), "ambiguous prefix");
        c.assign_name("abc999", "localhost/x:1");
        assert_eq!(c.find("x:1").unwrap().id, "abc999");
        assert!(c.images[0].names.is_empty());
    }

    #[test]
    fn publish_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::default();
        c.images.push(entry("abcdef", &["localhost/x:1"]));
        c.publish(dir.path()).unwrap();
        let back = Catalog::load(dir.path()).unwrap();
        assert_eq!(back.generation, 1);
        assert_eq!(back, c);
    }
}
