//! Image sources: where manifests, configs and layer blobs are read from.
//!
//! Every source hands out the manifest bytes exactly as stored (their sha256
//! is the image digest), the config bytes, and one reader per layer. Paths
//! inside archives are only ever used as lookup keys, never opened on the host.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::digest::parse_sha256;
use crate::error::StoreError;
use crate::layer::printable;
use crate::transport::SourceRef;

/// Largest manifest / config / index JSON we read (real ones are KiB).
pub const MAX_JSON: u64 = 8 << 20;

/// An OCI/Docker descriptor.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct Descriptor {
    /// Media type.
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// `sha256:` digest.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Annotations (only used in OCI indexes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
}

/// How a layer's bytes reach the importer.
#[allow(missing_debug_implementations)]
pub enum LayerStream<'a> {
    /// The blob as the manifest describes it (digest/size of the blob itself).
    Blob(Box<dyn Read + 'a>),
    /// Already the uncompressed tar (containers-storage reassembly); only the
    /// diffID can be checked.
    Uncompressed(Box<dyn Read + 'a>),
}

/// One image in a source.
pub trait ImageSource {
    /// Human-readable description for messages (`file` in errors).
    fn describe(&self) -> String;
    /// Raw manifest bytes.
    fn manifest(&mut self) -> anyhow::Result<Vec<u8>>;
    /// Names the source attaches to the image (tags), fully qualified.
    fn names(&self) -> Vec<String>;
    /// Raw config bytes for the config descriptor.
    fn config(&mut self, desc: &Descriptor) -> anyhow::Result<Vec<u8>>;
    /// Open layer `index` (described by `desc`, with diffID `diff_id`).
    fn layer(
        &mut self,
        index: usize,
        desc: &Descriptor,
        diff_id: &str,
    ) -> anyhow::Result<LayerStream<'_>>;
}

impl std::fmt::Debug for dyn ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImageSource({})", self.describe())
    }
}

/// Open the source named by `src`.
pub fn open(src: &SourceRef) -> anyhow::Result<Box<dyn ImageSource>> {
    Ok(match src {
        SourceRef::OciDir { path, reference } => Box::new(OciSource::new(
            Blobs::Dir(path.clone()),
            path,
            reference.clone(),
        )?),
        SourceRef::OciArchive { path, reference } => {
            let ar = TarIndex::open(path)?;
            Box::new(OciSource::new(Blobs::Archive(ar), path, reference.clone())?)
        }
        SourceRef::DockerArchive { path, reference } => {
            Box::new(DockerArchive::open(path, reference.as_deref())?)
        }
        SourceRef::ContainersStorage { root, image } => {
            Box::new(CstorSource::open(root.as_deref(), image)?)
        }
    })
}

/// Normalise a user image name the way podman does for local names.
pub fn qualify_name(name: &str) -> String {
    let (repo, tagged) = match name.rsplit_once('/') {
        Some((_, last)) => (name, last.contains(':') || last.contains('@')),
        None => (name, name.contains(':') || name.contains('@')),
    };
    let first = repo.split('/').next().unwrap_or("");
    let has_domain =
        repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut out = if has_domain {
        repo.to_string()
    } else {
        format!("localhost/{repo}")
    };
    if !tagged {
        out.push_str(":latest");
    }
    out
}

/// Open a file of an OCI layout directory: it must be a regular file. A FIFO
/// (opened non-blocking, so the open itself cannot hang), a device such as
/// `/dev/zero` (endless input) or a directory is refused before any read.
fn open_regular(path: &Path, file: &str) -> Result<File, StoreError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let io_err = |e: io::Error| StoreError::Io {
        path: path.display().to_string(),
        source: e,
    };
    let f = File::options()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(io_err)?;
    let ft = f.metadata().map_err(io_err)?.file_type();
    if !ft.is_file() {
        use std::os::unix::fs::FileTypeExt as _;
        let kind = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else if ft.is_dir() {
            "a directory"
        } else {
            "a socket"
        };
        return Err(StoreError::bad_input(
            file,
            format!("not a regular file ({kind})"),
        ));
    }
    Ok(f)
}

fn read_limited(r: impl Read, file: &str) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(MAX_JSON + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("reading {file}"))?;
    if buf.len() as u64 > MAX_JSON {
        return Err(
            StoreError::bad_input(file, format!("JSON larger than {MAX_JSON} bytes")).into(),
        );
    }
    Ok(buf)
}

// ---------------------------------------------------------------------------
// Seekable tar archives (oci-archive, docker-archive)

/// Offsets of the members of an uncompressed tar file.
#[derive(Debug)]
pub struct TarIndex {
    path: PathBuf,
    members: HashMap<String, (u64, u64)>,
}

impl TarIndex {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|e| StoreError::Io {
            path: shown.clone(),
            source: e,
        })?;
        let mut ar = tar::Archive::new(file);
        let mut members = HashMap::new();
        let mut links = Vec::new();
        let entries = ar.entries_with_seek().map_err(|e| {
            StoreError::bad_input(&shown, format!("not a tar archive: {}", shown_err(&e)))
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| {
                StoreError::bad_input(&shown, format!("corrupt archive: {}", shown_err(&e)))
            })?;
            let name = entry.path().map_err(|e| {
                StoreError::bad_input(&shown, format!("bad member name: {}", shown_err(&e)))
            })?;
            let name = clean_member(&name.to_string_lossy());
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    members.insert(name, (entry.raw_file_position(), entry.size()));
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    if let Ok(Some(t)) = entry.link_name() {
                        links.push((name, t.to_string_lossy().into_owned()));
                    }
                }
                _ => {}
            }
        }
        for (name, target) in links {
            let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            let resolved = clean_member(&format!("{dir}/{target}"));
            if let Some(v) = members
                .get(&resolved)
                .or_else(|| members.get(&clean_member(&target)))
            {
                let v = *v;
                members.insert(name, v);
            }
        }
        Ok(TarIndex {
            path: path.to_path_buf(),
            members,
        })
    }

    fn open_member(&self, name: &str) -> anyhow::Result<(io::Take<File>, u64)> {
        let (off, size) = *self.members.get(&clean_member(name)).ok_or_else(|| {
            StoreError::bad_input(
                self.path.display().to_string(),
                format!("archive has no member `{}`", printable(name.as_bytes())),
            )
        })?;
        let mut f = File::open(&self.path)?;
        f.seek(SeekFrom::Start(off))?;
        Ok((f.take(size), size))
    }
}

/// An error of the tar crate, which may quote raw bytes of the archive.
fn shown_err(e: &io::Error) -> String {
    printable(e.to_string().as_bytes())
}

fn clean_member(name: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

// ---------------------------------------------------------------------------
// OCI layouts (directory or archive)

enum Blobs {
    Dir(PathBuf),
    Archive(TarIndex),
}

impl Blobs {
    fn open(&self, digest: &str, file: &str) -> anyhow::Result<Box<dyn Read + '_>> {
        let hex = parse_sha256(file, digest)?;
        let rel = format!("blobs/sha256/{hex}");
        match self {
            Blobs::Dir(dir) => {
                let p = dir.join(&rel);
                let f = open_regular(&p, file).map_err(|e| match e {
                    StoreError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                        StoreError::bad_input(file, format!("missing blob {digest}"))
                    }
                    e => e,
                })?;
                Ok(Box::new(f))
            }
            Blobs::Archive(ar) => {
                let (r, _) = ar
                    .open_member(&rel)
                    .map_err(|_| StoreError::bad_input(file, format!("missing blob {digest}")))?;
                Ok(Box::new(r))
            }
        }
    }

    fn read_file(&self, rel: &str, file: &str) -> anyhow::Result<Vec<u8>> {
        match self {
            Blobs::Dir(dir) => read_limited(open_regular(&dir.join(rel), file)?, file),
            Blobs::Archive(ar) => read_limited(ar.open_member(rel)?.0, file),
        }
    }

    /// Read a small JSON blob and verify its digest and size.
    fn read_verified(&self, desc: &Descriptor, file: &str) -> anyhow::Result<Vec<u8>> {
        if desc.size > MAX_JSON {
            return Err(
                StoreError::bad_input(file, format!("{} bytes is too large", desc.size)).into(),
            );
        }
        let data = read_limited(self.open(&desc.digest, file)?, file)?;
        verify_bytes(file, desc, &data)?;
        Ok(data)
    }
}

/// Check `data` against a descriptor's digest and size.
pub fn verify_bytes(file: &str, desc: &Descriptor, data: &[u8]) -> Result<(), StoreError> {
    let actual = crate::digest::sha256_digest(data);
    if actual != desc.digest {
        return Err(StoreError::DigestMismatch {
            file: file.to_string(),
            expected: desc.digest.clone(),
            actual,
        });
    }
    if data.len() as u64 != desc.size {
        return Err(StoreError::bad_input(
            file,
            format!(
                "size {} does not match descriptor size {}",
                data.len(),
                desc.size
            ),
        ));
    }
    Ok(())
}

struct OciSource {
    blobs: Blobs,
    shown: String,
    manifest_desc: Descriptor,
    names: Vec<String>,
}

#[derive(Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

const REF_NAME: &str = "org.opencontainers.image.ref.name";

impl OciSource {
    fn new(blobs: Blobs, path: &Path, reference: Option<String>) -> anyhow::Result<Self> {
        let shown = path.display().to_string();
        let index_file = format!("{shown}/index.json");
        let raw = blobs.read_file("index.json", &index_file).map_err(|e| {
            let missing = match e.downcast_ref::<StoreError>() {
                Some(StoreError::Io { source, .. }) => source.kind() == io::ErrorKind::NotFound,
                // An archive without the member.
                Some(StoreError::BadInput { problem, .. }) => {
                    problem.starts_with("archive has no member")
                }
                _ => false,
            };
            if missing {
                StoreError::bad_input(&shown, "not an OCI layout (no index.json)").into()
            } else {
                e
            }
        })?;
        let index: OciIndex = serde_json::from_slice(&raw)
            .map_err(|e| StoreError::bad_input(&index_file, format!("not valid JSON: {e}")))?;
        let ref_of = |d: &Descriptor| {
            d.annotations
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .cloned()
        };
        let desc = match &reference {
            Some(r) => index
                .manifests
                .iter()
                .find(|d| ref_of(d).as_deref() == Some(r.as_str()))
                .cloned()
                .ok_or_else(|| {
                    StoreError::bad_input(&index_file, format!("no image with reference `{r}`"))
                })?,
            None => match index.manifests.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(StoreError::bad_input(&index_file, "layout holds no image").into())
                }
                _ => {
                    return Err(StoreError::bad_input(
                        &index_file,
                        "layout holds several images; name one as oci:DIR:REF",
                    )
                    .into())
                }
            },
        };
        // A ref that is a full name (`localhost/x:1`) names the image; a bare
        // tag (`latest`) does not say which repository it belongs to.
        let names = reference
            .or_else(|| ref_of(&desc))
            .filter(|r| r.contains('/') || r.contains(':'))
            .map(|r| qualify_name(&r))
            .into_iter()
            .collect();
        Ok(OciSource {
            blobs,
            shown,
            manifest_desc: desc,
            names,
        })
    }
}

impl ImageSource for OciSource {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn manifest(&mut self) -> anyhow::Result<Vec<u8>> {
        let d = self.manifest_desc.clone();
        if d.media_type.contains("index") || d.media_type.contains("manifest.list") {
            return Err(StoreError::bad_input(
                &self.shown,
                "manifest lists / image indexes are not supported yet",
            )
            .into());
        }
        self.blobs
            .read_verified(&d, &format!("{}: manifest {}", self.shown, d.digest))
    }

    fn names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn config(&mut self, desc: &Descriptor) -> anyhow::Result<Vec<u8>> {
        self.blobs
            .read_verified(desc, &format!("{}: config {}", self.shown, desc.digest))
    }

    fn layer(
        &mut self,
        _i: usize,
        desc: &Descriptor,
        _diff_id: &str,
    ) -> anyhow::Result<LayerStream<'_>> {
        let file = format!("{}: layer {}", self.shown, desc.digest);
        Ok(LayerStream::Blob(self.blobs.open(&desc.digest, &file)?))
    }
}

// ---------------------------------------------------------------------------
// docker-archive

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestItem {
    config: String,
    #[serde(default)]
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

struct DockerArchive {
    ar: TarIndex,
    shown: String,
    item: DockerManifestItem,
    config: Vec<u8>,
    manifest: Vec<u8>,
    names: Vec<String>,
}

impl DockerArchive {
    fn open(path: &Path, reference: Option<&str>) -> anyhow::Result<Self> {
        let shown = path.display().to_string();
        let ar = TarIndex::open(path)?;
        let mfile = format!("{shown}: manifest.json");
        let raw = read_limited(
            ar.open_member("manifest.json")
                .map_err(|_| {
                    StoreError::bad_input(&shown, "not a docker archive (no manifest.json)")
                })?
                .0,
            &mfile,
        )?;
        let items: Vec<DockerManifestItem> = serde_json::from_slice(&raw)
            .map_err(|e| StoreError::bad_input(&mfile, format!("not valid JSON: {e}")))?;
        let item = match reference {
            Some(r) if r.starts_with('@') => {
                let i: usize = r[1..]
                    .parse()
                    .map_err(|_| StoreError::bad_input(&mfile, format!("bad index `{r}`")))?;
                items.into_iter().nth(i)
            }
            Some(r) => {
                let q = qualify_name(r);
                items
                    .into_iter()
                    .find(|it| it.repo_tags.iter().any(|t| t == r || qualify_name(t) == q))
            }
            None => {
                if items.len() > 1 {
                    return Err(StoreError::bad_input(
                        &mfile,
                        "archive holds several images; name one as docker-archive:FILE:NAME",
                    )
                    .into());
                }
                items.into_iter().next()
            }
        }
        .ok_or_else(|| StoreError::bad_input(&mfile, "no matching image in archive"))?;
        let (cfg_reader, _) = ar.open_member(&item.config).map_err(|_| {
            StoreError::bad_input(
                &mfile,
                format!("missing config `{}`", printable(item.config.as_bytes())),
            )
        })?;
        let config = read_limited(cfg_reader, &format!("{shown}: {}", item.config))?;
        let cfg: serde_json::Value = serde_json::from_slice(&config).map_err(|e| {
            StoreError::bad_input(
                format!("{shown}: {}", item.config),
                format!("not valid JSON: {e}"),
            )
        })?;
        let diff_ids = crate::import::config_diff_ids(&format!("{shown}: config"), &cfg)?;
        if diff_ids.len() != item.layers.len() {
            return Err(StoreError::bad_input(
                &mfile,
                format!(
                    "{} layers listed but config has {} diffIDs",
                    item.layers.len(),
                    diff_ids.len()
                ),
            )
            .into());
        }
        // The manifest c/image generates for a docker-archive source
        // (docker/internal/tarfile: Schema2FromComponents, Go json.Marshal).
        let mut m = String::from(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":"#,
        );
        m.push_str(&format!(
            r#"{},"digest":"{}"}},"layers":["#,
            config.len(),
            crate::digest::sha256_digest(&config)
        ));
        for (i, (l, d)) in item.layers.iter().zip(&diff_ids).enumerate() {
            let (_, size) = ar.open_member(l).map_err(|_| {
                StoreError::bad_input(
                    &mfile,
                    format!("missing layer `{}`", printable(l.as_bytes())),
                )
            })?;
            if i > 0 {
                m.push(',');
            }
            m.push_str(&format!(
                r#"{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{size},"digest":"{d}"}}"#
            ));
        }
        m.push_str("]}");
        let names = item.repo_tags.iter().map(|t| qualify_name(t)).collect();
        Ok(DockerArchive {
            ar,
            shown,
            item,
            config,
            manifest: m.into_bytes(),
            names,
        })
    }
}

impl ImageSource for DockerArchive {
    fn describe(&self) -> String {
        self.shown.clone()
    }
    fn manifest(&mut self) -> anyhow::Result<Vec<u8>> {
        Ok(self.manifest.clone())
    }
    fn names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn config(&mut self, desc: &Descriptor) -> anyhow::Result<Vec<u8>> {
        verify_bytes(&format!("{}: config", self.shown), desc, &self.config)?;
        Ok(self.config.clone())
    }
    fn layer(
        &mut self,
        i: usize,
        _desc: &Descriptor,
        _diff_id: &str,
    ) -> anyhow::Result<LayerStream<'_>> {
        let (r, _) = self.ar.open_member(&self.item.layers[i])?;
        // The synthesized descriptor's digest is the diffID; a compressed
        // member is decompressed and checked against it.
        Ok(LayerStream::Uncompressed(Box::new(r)))
    }
}

// ---------------------------------------------------------------------------
// containers-storage (podman's store, read in place)

struct CstorSource {
    storage: composefs_storage::Storage,
    image: composefs_storage::Image,
    shown: String,
    names: Vec<String>,
}

impl CstorSource {
    fn open(root: Option<&Path>, name: &str) -> anyhow::Result<Self> {
        let root = root
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/var/lib/containers/storage"));
        let shown = format!("containers-storage:[{}]{name}", root.display());
        let storage = composefs_storage::Storage::open(&root)
            .map_err(|e| StoreError::bad_input(&shown, format!("cannot open store: {e}")))?;
        let image = storage
            .find_image_by_name(name)
            .or_else(|_| storage.find_image_by_name(&qualify_name(name)))
            .or_else(|_| storage.get_image(name.trim_start_matches("sha256:")))
            .map_err(|_| StoreError::bad_input(&shown, "image not known in that store"))?;
        let names = image.names(&storage).unwrap_or_default();
        Ok(CstorSource {
            storage,
            image,
            shown,
            names,
        })
    }
}

impl ImageSource for CstorSource {
    fn describe(&self) -> String {
        self.shown.clone()
    }
    fn manifest(&mut self) -> anyhow::Result<Vec<u8>> {
        Ok(self.image.read_manifest_raw()?)
    }
    fn names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn config(&mut self, desc: &Descriptor) -> anyhow::Result<Vec<u8>> {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD.encode(desc.digest.as_bytes());
        let data = self.image.read_metadata(&key)?;
        verify_bytes(&format!("{}: config", self.shown), desc, &data)?;
        Ok(data)
    }
    fn layer(
        &mut self,
        i: usize,
        _desc: &Descriptor,
        _diff_id: &str,
    ) -> anyhow::Result<LayerStream<'_>> {
        let ids = self
            .image
            .storage_layer_ids(std::slice::from_ref(&self.storage))?;
        let id = ids
            .get(i)
            .ok_or_else(|| StoreError::bad_input(&self.shown, "layer missing from store"))?;
        let layer = composefs_storage::Layer::open(&self.storage, id)?;
        let stream = composefs_storage::TarSplitFdStream::new(&self.storage, &layer)?;
        Ok(LayerStream::Uncompressed(Box::new(TarSplitReader {
            stream,
            buf: Vec::new(),
            pos: 0,
            file: None,
        })))
    }
}

/// Reassembles a layer tar from tar-split + diff files (what c/storage's `Diff` does).
struct TarSplitReader {
    stream: composefs_storage::TarSplitFdStream,
    buf: Vec<u8>,
    pos: usize,
    file: Option<File>,
}

impl Read for TarSplitReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.buf.len() {
                let n = out.len().min(self.buf.len() - self.pos);
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if let Some(f) = &mut self.file {
                let n = f.read(out)?;
                if n > 0 {
                    return Ok(n);
                }
                self.file = None;
            }
            match self.stream.next().map_err(io::Error::other)? {
                None => return Ok(0),
                Some(composefs_storage::TarSplitItem::Segment(b)) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Some(composefs_storage::TarSplitItem::FileContent { fd, .. }) => {
                    self.file = Some(File::from(fd));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualify() {
        assert_eq!(qualify_name("x"), "localhost/x:latest");
        assert_eq!(qualify_name("x:1"), "localhost/x:1");
        assert_eq!(qualify_name("localhost/a/b:2"), "localhost/a/b:2");
        assert_eq!(qualify_name("quay.io/a/b"), "quay.io/a/b:latest");
        assert_eq!(qualify_name("a/b:3"), "localhost/a/b:3");
    }
}
