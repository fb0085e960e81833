//! `unistore import`: bring an image from a source into the store.
//!
//! Order of writes (the crash-safety argument):
//! 1. objects of each new layer, while the bytes stream past;
//! 2. per layer, after its digests check out: the index and tar-split
//!    objects, the tar splitstream, then the layer meta stream (each
//!    `write_stream` syncs everything it references before naming it);
//! 3. manifest and config objects and the image record stream;
//! 4. the catalog, atomically, last.
//!
//! Killed anywhere before 4, the catalog still shows the old state and what
//! was written is unreferenced (gc removes it); a re-run reuses any layer
//! whose meta stream made it to disk.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::time::Instant;

use anyhow::Context as _;
use composefs::fsverity::FsVerityHashValue;
use serde::Serialize;

use crate::catalog::CatalogEntry;
use crate::digest::{parse_sha256, HashingReader};
use crate::error::StoreError;
use crate::index::Kind;
use crate::layer::import_layer;
use crate::progress::Progress;
use crate::records::*;
use crate::repo::Store;
use crate::source::{self, Descriptor, ImageSource, LayerStream};
use crate::transport::SourceRef;

/// Options of one import.
#[derive(Debug, Default, Clone)]
pub struct ImportOptions {
    /// Names to give the image (in addition to what the source names it).
    pub names: Vec<String>,
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// Image ID.
    #[serde(rename = "Id")]
    pub id: String,
    /// Manifest digest.
    #[serde(rename = "Digest")]
    pub digest: String,
    /// Names of the image after the import.
    #[serde(rename = "Names")]
    pub names: Vec<String>,
    /// True when the image was already stored (only names changed, if any).
    #[serde(rename = "AlreadyPresent")]
    pub already_present: bool,
    /// Layers in the image.
    #[serde(rename = "Layers")]
    pub layers: usize,
    /// Layers the store already had.
    #[serde(rename = "LayersReused")]
    pub layers_reused: usize,
    /// File content bytes written as new objects.
    #[serde(rename = "NewBytes")]
    pub new_bytes: u64,
    /// File content bytes that deduplicated against stored objects.
    #[serde(rename = "ReusedBytes")]
    pub reused_bytes: u64,
    /// Uncompressed size of the image's layers.
    #[serde(rename = "Size")]
    pub size: u64,
    /// Wall-clock seconds.
    #[serde(rename = "Seconds")]
    pub seconds: f64,
}

#[derive(Debug, serde::Deserialize)]
struct Manifest {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Compression a layer media type declares: `None` if unknown.
fn layer_compression(media_type: &str) -> Option<u8> {
    Some(match media_type {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar" => 0,
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => 2,
        "application/vnd.oci.image.layer.v1.tar+zstd"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => 4,
        _ => return None,
    })
}

/// The `rootfs.diff_ids` of a config, validated.
pub fn config_diff_ids(file: &str, cfg: &serde_json::Value) -> Result<Vec<String>, StoreError> {
    let ids = cfg
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(|d| d.as_array())
        .ok_or_else(|| StoreError::bad_input(file, "config has no rootfs.diff_ids"))?;
    ids.iter()
        .map(|v| {
            let s = v
                .as_str()
                .ok_or_else(|| StoreError::bad_input(file, "diff_id is not a string"))?;
            parse_sha256(file, s)?;
            Ok(s.to_string())
        })
        .collect()
}

/// A decompressor whose errors say which format failed (the decoders' own
/// messages, e.g. zstd's "Dictionary mismatch", do not).
struct Decoding<R>(&'static str, R);

impl<R: Read> Read for Decoding<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.1
            .read(buf)
            .map_err(|e| std::io::Error::new(e.kind(), format!("decompressing {}: {e}", self.0)))
    }
}

/// Wrap `r` in the decompressor its magic bytes call for.
fn decompress<'a>(r: impl BufRead + 'a, file: &str) -> anyhow::Result<(Box<dyn Read + 'a>, u8)> {
    let mut r = r;
    let head = r.fill_buf().with_context(|| format!("{file}: reading"))?;
    if head.is_empty() {
        return Err(StoreError::bad_input(file, "empty blob").into());
    }
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        let d = flate2::bufread::MultiGzDecoder::new(r);
        (Box::new(Decoding("gzip", d)), 2)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let d = zstd::stream::read::Decoder::with_buffer(r)?;
        (Box::new(Decoding("zstd", d)), 4)
    } else {
        (Box::new(r), 0)
    })
}

/// An image's manifest and config as read from its source and validated,
/// before the import writes anything.
#[doc(hidden)]
#[derive(Debug)]
pub struct ImageHead {
    manifest_bytes: Vec<u8>,
    manifest: Manifest,
    media_type: String,
    manifest_digest: String,
    config_bytes: Vec<u8>,
    config: serde_json::Value,
    diff_ids: Vec<String>,
    compressions: Vec<u8>,
    cfile: String,
}

impl ImageHead {
    /// The layers' diffIDs, base first.
    pub fn diff_ids(&self) -> &[String] {
        &self.diff_ids
    }
}

/// The first step of [`import`]: read the manifest and config from `source`
/// and validate them (no writes). Public for the fuzz targets.
#[doc(hidden)]
pub fn read_head(source: &mut dyn ImageSource) -> anyhow::Result<ImageHead> {
    let shown = source.describe();
    // Manifest and config: small, verified, before any write.
    let manifest_bytes = source.manifest()?;
    let mfile = format!("{shown}: manifest");
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| StoreError::bad_input(&mfile, format!("not a valid image manifest: {e}")))?;
    if manifest.schema_version != 2 {
        return Err(StoreError::bad_input(
            &mfile,
            format!("unsupported schemaVersion {}", manifest.schema_version),
        )
        .into());
    }
    let media_type = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| OCI_MANIFEST.to_string());
    if media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST {
        return Err(StoreError::bad_input(
            &mfile,
            format!(
                "unknown manifest media type `{}`",
                crate::layer::printable(media_type.as_bytes())
            ),
        )
        .into());
    }
    let manifest_digest = crate::digest::sha256_digest(&manifest_bytes);
    let config_bytes = source.config(&manifest.config)?;
    let cfile = format!("{shown}: config {}", manifest.config.digest);
    let config: serde_json::Value = serde_json::from_slice(&config_bytes)
        .map_err(|e| StoreError::bad_input(&cfile, format!("not valid JSON: {e}")))?;
    let diff_ids = config_diff_ids(&cfile, &config)?;
    if diff_ids.len() != manifest.layers.len() {
        return Err(StoreError::bad_input(
            &cfile,
            format!(
                "{} diffIDs for {} layers in the manifest",
                diff_ids.len(),
                manifest.layers.len()
            ),
        )
        .into());
    }
    let mut compressions = Vec::new();
    for l in &manifest.layers {
        parse_sha256(&mfile, &l.digest)?;
        compressions.push(layer_compression(&l.media_type).ok_or_else(|| {
            StoreError::bad_input(
                &mfile,
                format!(
                    "unknown layer media type `{}`",
                    crate::layer::printable(l.media_type.as_bytes())
                ),
            )
        })?);
    }
    Ok(ImageHead {
        manifest_bytes,
        manifest,
        media_type,
        manifest_digest,
        config_bytes,
        config,
        diff_ids,
        compressions,
        cfile,
    })
}

/// Import the image `src` names into `store`.
pub fn import(
    store: &Store,
    src: &SourceRef,
    opts: &ImportOptions,
    progress: &mut dyn Progress,
) -> anyhow::Result<ImportReport> {
    let started = Instant::now();
    let mut source = source::open(src)?;
    import_from(store, &mut *source, opts, progress, started)
}

/// Import the image `source` serves (e.g. a registry, see the
/// `unistore-registry` crate) into `store`. Layers the store already holds
/// are not read from the source at all; `started` is when the caller began
/// (for [`ImportReport::seconds`]).
pub fn import_from(
    store: &Store,
    source: &mut dyn ImageSource,
    opts: &ImportOptions,
    progress: &mut dyn Progress,
    started: Instant,
) -> anyhow::Result<ImportReport> {
    let ImageHead {
        manifest_bytes,
        manifest,
        media_type,
        manifest_digest,
        config_bytes,
        config,
        diff_ids,
        compressions,
        cfile,
    } = read_head(source)?;
    let shown = source.describe();
    let image_id = manifest
        .config
        .digest
        .trim_start_matches("sha256:")
        .to_string();
    let mut names: Vec<String> = opts.names.iter().map(|n| source::qualify_name(n)).collect();
    if names.is_empty() {
        names = source.names();
    }

    let _lock = store.write_lock()?;
    let mut cat = store.catalog()?;
    // One image per ID, as in containers-storage: another manifest of a stored
    // config (e.g. a recompressed copy) only adds names.
    if let Some(existing) = cat
        .images
        .iter()
        .find(|e| e.digest == manifest_digest || e.id == image_id)
        .cloned()
    {
        for n in &names {
            cat.assign_name(&existing.id, n);
        }
        let changed = cat
            .images
            .iter()
            .find(|e| e.id == existing.id)
            .map(|e| &e.names)
            != Some(&existing.names);
        if changed {
            store.publish(&mut cat)?;
        }
        let e = cat
            .images
            .iter()
            .find(|e| e.id == existing.id)
            .expect("present");
        return Ok(ImportReport {
            id: existing.id.clone(),
            digest: existing.digest.clone(),
            names: e.names.clone(),
            already_present: true,
            layers: diff_ids.len(),
            layers_reused: diff_ids.len(),
            new_bytes: 0,
            reused_bytes: 0,
            size: existing.size,
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    let repo = store.repo();
    let mut layers = Vec::new();
    let (mut new_bytes, mut reused_bytes, mut reused_layers) = (0u64, 0u64, 0usize);
    for (i, (desc, diff_id)) in manifest.layers.iter().zip(&diff_ids).enumerate() {
        let diff_hex = parse_sha256(&cfile, diff_id)?;
        progress.layer_start(i, diff_ids.len(), diff_id, Some(desc.size));
        let meta_name = layer_meta_id(&diff_hex);
        if let Some(meta_id) = repo.has_stream(&meta_name)? {
            let meta = store.layer_meta(&meta_id.to_hex())?;
            reused_bytes += meta.diff_size;
            reused_layers += 1;
            layers.push(ImageLayer {
                meta,
                meta_stream: meta_id.to_hex(),
                blob_digest: desc.digest.clone(),
                blob_size: desc.size,
                media_type: desc.media_type.clone(),
                compression: compressions[i],
            });
            progress.layer_done(true);
            continue;
        }
        let lfile = format!("{shown}: layer {}", desc.digest);
        let stream = source.layer(i, desc, diff_id)?;
        let (check_blob, blob) = match stream {
            LayerStream::Blob(r) => (true, r),
            LayerStream::Uncompressed(r) => (false, r),
        };
        let mut blob_h = HashingReader::new(blob);
        let (out, finished) = {
            let buffered = BufReader::with_capacity(256 * 1024, &mut blob_h);
            let (decoded, _) = decompress(buffered, &lfile)?;
            let mut diff_h = HashingReader::new(decoded);
            let mut cb = |b: u64, f: u64| progress.layer_progress(b, f);
            let out = import_layer(repo, &lfile, &mut diff_h, LAYER_TAR_CONTENT_TYPE, &mut cb)?;
            let finished = diff_h.finish().map_err(|e| {
                anyhow::Error::from(StoreError::bad_input(
                    &lfile,
                    format!("corrupt compressed data: {e}"),
                ))
            });
            (out, finished)
        };
        // Verify both digests; a refused layer leaves none of its objects behind.
        let verified = (|| -> anyhow::Result<(String, u64)> {
            let (diff_digest, diff_size) = finished?;
            let (blob_digest, blob_size) = blob_h.finish()?;
            if check_blob {
                if blob_digest != desc.digest {
                    return Err(StoreError::DigestMismatch {
                        file: lfile.clone(),
                        expected: desc.digest.clone(),
                        actual: blob_digest,
                    }
                    .into());
                }
                if blob_size != desc.size {
                    return Err(StoreError::bad_input(
                        &lfile,
                        format!("blob is {blob_size} bytes, manifest says {}", desc.size),
                    )
                    .into());
                }
            }
            if &diff_digest != diff_id {
                return Err(StoreError::DigestMismatch {
                    file: format!("{lfile} (uncompressed)"),
                    expected: diff_id.clone(),
                    actual: diff_digest,
                }
                .into());
            }
            Ok((diff_digest, diff_size))
        })();
        let (_, diff_size) = match verified {
            Ok(v) => v,
            Err(e) => {
                crate::layer::remove_objects(repo, &out.created);
                return Err(e);
            }
        };

        // Durable records of the layer.
        let index_obj = repo.ensure_object(&out.index.encode()?)?;
        crate::crash::point("index written");
        let tarsplit_obj = repo.ensure_object(&out.tarsplit_gz)?;
        crate::crash::point("tar-split written");
        let tar_obj = repo.write_stream(out.writer, &layer_tar_id(&diff_hex), None)?;
        crate::crash::point("layer stream written");
        let mut uids = BTreeSet::new();
        let mut gids = BTreeSet::new();
        for e in out
            .index
            .entries
            .iter()
            .filter(|e| !matches!(e.kind, Kind::Whiteout | Kind::Opaque))
        {
            uids.insert(e.uid);
            gids.insert(e.gid);
        }
        let meta = LayerMeta {
            diff_id: diff_id.clone(),
            diff_size,
            tar_stream: tar_obj.to_hex(),
            index_object: index_obj.to_hex(),
            tarsplit_object: tarsplit_obj.to_hex(),
            entries: out.entries,
            uids: uids.into_iter().collect(),
            gids: gids.into_iter().collect(),
        };
        let meta_obj = write_layer_meta(store, &meta)?;
        crate::crash::point("layer meta written");
        new_bytes += out.new_bytes;
        reused_bytes += out.reused_bytes;
        layers.push(ImageLayer {
            meta,
            meta_stream: meta_obj.to_hex(),
            blob_digest: desc.digest.clone(),
            blob_size: desc.size,
            media_type: desc.media_type.clone(),
            compression: compressions[i],
        });
        progress.layer_done(false);
    }

    // The image record.
    let manifest_obj = repo.ensure_object(&manifest_bytes)?;
    crate::crash::point("manifest written");
    let config_obj = repo.ensure_object(&config_bytes)?;
    crate::crash::point("config written");
    let s = |k: &str| config.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let record = ImageRecord {
        manifest_digest: manifest_digest.clone(),
        manifest_media_type: media_type,
        manifest_object: manifest_obj.to_hex(),
        manifest_size: manifest_bytes.len() as u64,
        config_digest: manifest.config.digest.clone(),
        config_object: config_obj.to_hex(),
        config_size: config_bytes.len() as u64,
        created: s("created"),
        architecture: s("architecture"),
        os: s("os"),
        layers,
    };
    let image_obj = write_image_record(store, &record)?;
    crate::crash::point("image record written");

    // Publish.
    let size = record.layers.iter().map(|l| l.meta.diff_size).sum();
    cat.images
        .retain(|e| e.id != image_id || e.digest != manifest_digest);
    cat.images.push(CatalogEntry {
        id: image_id.clone(),
        digest: manifest_digest.clone(),
        names: Vec::new(),
        stream: image_obj.to_hex(),
        created: record.created.clone(),
        imported: crate::repo::now(),
        size,
    });
    // Two manifests can share a config (same image ID); the newest entry wins names.
    let idx = cat.images.len() - 1;
    for n in &names {
        for (j, e) in cat.images.iter_mut().enumerate() {
            if j != idx {
                e.names.retain(|x| x != n);
            }
        }
        if !cat.images[idx].names.contains(n) {
            cat.images[idx].names.push(n.clone());
        }
    }
    store.publish(&mut cat)?;
    Ok(ImportReport {
        id: image_id,
        digest: manifest_digest,
        names: cat.images[idx].names.clone(),
        already_present: false,
        layers: record.layers.len(),
        layers_reused: reused_layers,
        new_bytes,
        reused_bytes,
        size,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Rebuild the derived data (indexes, tar-splits) of image `id` from its
/// layer tar streams, and republish it. The caller holds the writer lock.
pub fn rebuild_derived(store: &Store, id: &str) -> anyhow::Result<()> {
    let repo = store.repo();
    let mut cat = store.catalog()?;
    let entry = cat
        .images
        .iter()
        .find(|e| e.id == id)
        .cloned()
        .ok_or_else(|| StoreError::ImageNotFound(id.to_string()))?;
    let mut rec = store.image(&entry)?;
    for l in &mut rec.layers {
        let healthy = store.layer_index(&l.meta).is_ok()
            && store.read_object(&l.meta.tarsplit_object).is_ok();
        if healthy {
            continue;
        }
        let diff_hex = parse_sha256("layer", &l.meta.diff_id)?;
        // Stream the original tar back through the importer.
        let (mut rd, mut wr) = std::io::pipe()?;
        let meta = l.meta.clone();
        let out = std::thread::scope(|s| -> anyhow::Result<_> {
            let writer = s.spawn(move || -> anyhow::Result<()> {
                store.write_layer_tar(&meta, &mut wr)?;
                Ok(())
            });
            let mut h = HashingReader::new(&mut rd);
            let out = import_layer(
                repo,
                &l.meta.diff_id,
                &mut h,
                LAYER_TAR_CONTENT_TYPE,
                &mut |_, _| {},
            )?;
            let (digest, _) = h.finish()?;
            writer
                .join()
                .map_err(|_| anyhow::anyhow!("tar writer panicked"))??;
            anyhow::ensure!(
                digest == l.meta.diff_id,
                "layer tar stream no longer matches its diffID ({digest})"
            );
            Ok(out)
        })?;
        let index_obj = repo.ensure_object(&out.index.encode()?)?;
        let tarsplit_obj = repo.ensure_object(&out.tarsplit_gz)?;
        drop(out.writer); // the tar stream itself is intact and kept
        l.meta.index_object = index_obj.to_hex();
        l.meta.tarsplit_object = tarsplit_obj.to_hex();
        // The stream names stay; they now point to the rebuilt records.
        let name = layer_meta_id(&diff_hex);
        let _ = std::fs::remove_file(store.root().join("repo/streams").join(&name));
        l.meta_stream = write_layer_meta(store, &l.meta)?.to_hex();
    }
    let name = image_stream_id(rec.manifest_digest.trim_start_matches("sha256:"));
    let _ = std::fs::remove_file(store.root().join("repo/streams").join(&name));
    let obj = write_image_record(store, &rec)?;
    if let Some(e) = cat.images.iter_mut().find(|e| e.id == id) {
        e.stream = obj.to_hex();
    }
    store.publish(&mut cat)
}

/// Write a layer's meta stream (`unistore-layermeta-<diffid>`), referencing
/// its index, tar-split and tar stream so gc keeps them.
fn write_layer_meta(store: &Store, meta: &LayerMeta) -> anyhow::Result<crate::repo::ObjectId> {
    let repo = store.repo();
    let mut w = repo.create_stream(LAYER_META_CONTENT_TYPE)?;
    w.write_inline(&serde_json::to_vec(meta)?);
    w.add_object_ref(&Store::object_id(&meta.index_object)?);
    w.add_object_ref(&Store::object_id(&meta.tarsplit_object)?);
    w.add_named_stream_ref("tar", &Store::object_id(&meta.tar_stream)?);
    let name = layer_meta_id(parse_sha256("layer", &meta.diff_id)?.as_str());
    repo.write_stream(w, &name, None)
}

/// Write an image record stream (`unistore-image-<manifest>`), referencing
/// its manifest, config and every layer meta stream.
fn write_image_record(store: &Store, rec: &ImageRecord) -> anyhow::Result<crate::repo::ObjectId> {
    let repo = store.repo();
    let mut w = repo.create_stream(IMAGE_CONTENT_TYPE)?;
    w.write_inline(&serde_json::to_vec(rec)?);
    w.add_object_ref(&Store::object_id(&rec.manifest_object)?);
    w.add_object_ref(&Store::object_id(&rec.config_object)?);
    for l in &rec.layers {
        w.add_named_stream_ref(&l.meta.diff_id, &Store::object_id(&l.meta_stream)?);
    }
    let name = image_stream_id(rec.manifest_digest.trim_start_matches("sha256:"));
    repo.write_stream(w, &name, None)
}
