//! `unistore import` against the real binary, real fixture images and real podman.
//!
//! - every source form imports, and every layer reads back bit-exactly;
//! - image IDs and manifest digests agree with `podman load`;
//! - re-imports are no-ops and shared layers are stored once;
//! - hostile and corrupt inputs fail with one clear line and leave the store alone;
//! - SIGKILL at any crash point of an import leaves a consistent store, and
//!   re-running the import completes it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Output;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;

// ---------------------------------------------------------------------------
// Fixture facts

/// `rootfs.diff_ids` of the base image, read from its OCI layout.
fn base_diff_ids() -> Vec<String> {
    let (_, _, cfg) = oci_dir_image(&fixtures().path("FIXTURE_BASE_OCI_DIR"));
    config_diff_ids(&cfg)
}

/// A store holding only the base image (imported from its OCI layout).
fn store_with_base() -> TempStore {
    let fx = fixtures();
    let s = TempStore::new();
    let r = s.import(&format!("oci:{}", fx.get("FIXTURE_BASE_OCI_DIR")));
    assert_eq!(r["Id"].as_str(), Some(fx.get("FIXTURE_BASE_ID")));
    s
}

fn image_ids(s: &TempStore) -> Vec<String> {
    s.images()
        .iter()
        .map(|e| e["Id"].as_str().expect("Id").to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// 1. Every source form

#[test]
fn import_every_fixture_form_is_bit_exact() {
    let fx = fixtures();
    require_tool("podman");
    let derived_id = fx.get("FIXTURE_DERIVED_ID");
    let oci_dir = |k: &str| {
        let (d, _, c) = oci_dir_image(&fx.path(k));
        (Some(d), c)
    };
    // (source, manifest digest the source promises if it has one, config bytes of the source)
    let forms: Vec<(String, Option<String>, Vec<u8>)> = vec![
        {
            let (d, c) = oci_dir("FIXTURE_DERIVED_OCI_DIR");
            (format!("oci:{}", fx.get("FIXTURE_DERIVED_OCI_DIR")), d, c)
        },
        {
            let (d, c) = oci_dir("FIXTURE_DERIVED_OCI_GZIP_DIR");
            (
                format!("oci:{}", fx.get("FIXTURE_DERIVED_OCI_GZIP_DIR")),
                d,
                c,
            )
        },
        {
            let (d, c) = oci_dir("FIXTURE_DERIVED_OCI_ZSTD_DIR");
            (
                format!("oci:{}", fx.get("FIXTURE_DERIVED_OCI_ZSTD_DIR")),
                d,
                c,
            )
        },
        {
            let (d, _, c) = oci_archive_image(&fx.path("FIXTURE_DERIVED_OCI_TAR"));
            (
                format!("oci-archive:{}", fx.get("FIXTURE_DERIVED_OCI_TAR")),
                Some(d),
                c,
            )
        },
        (
            format!("docker-archive:{}", fx.get("FIXTURE_DERIVED_DOCKER_TAR")),
            None,
            docker_archive_config(&fx.path("FIXTURE_DERIVED_DOCKER_TAR")),
        ),
        (
            fx.cstor_ref(fx.get("FIXTURE_DERIVED_IMAGE")),
            // c/storage keeps the manifest under the key "manifest-<digest>"; checked below.
            None,
            cstor_config(&fx.path("FIXTURE_STORAGE"), derived_id),
        ),
    ];
    let want_layers: usize = fx.get("FIXTURE_DERIVED_LAYERS").parse().expect("number");
    for (src, promised_digest, config) in &forms {
        let t0 = Instant::now();
        assert_eq!(
            sha256(config).trim_start_matches("sha256:"),
            derived_id,
            "{src}: the source's config is not the derived image's config"
        );
        let diff_ids = config_diff_ids(config);
        assert_eq!(diff_ids.len(), want_layers, "{src}: fixture layer count");

        let s = TempStore::new();
        let r = s.import(src);
        assert_eq!(
            r["Id"].as_str(),
            Some(derived_id),
            "{src}: import report Id"
        );
        assert_eq!(r["AlreadyPresent"], json!(false), "{src}: {r}");
        assert_eq!(r["Layers"].as_u64(), Some(want_layers as u64), "{src}: {r}");
        assert_eq!(r["LayersReused"].as_u64(), Some(0), "{src}: {r}");
        let names: Vec<&str> = r["Names"]
            .as_array()
            .expect("Names")
            .iter()
            .filter_map(|n| n.as_str())
            .collect();
        if !src.starts_with("oci:") {
            // Archives and podman's store name the image; the OCI layout dirs
            // carry only the bare tag `latest`.
            assert!(
                names.contains(&fx.get("FIXTURE_DERIVED_IMAGE")),
                "{src}: names {names:?}"
            );
        }
        let insp = s.inspect(derived_id);
        assert_eq!(insp["Id"].as_str(), Some(derived_id));
        assert_eq!(
            insp["Digest"], r["Digest"],
            "{src}: inspect vs import Digest"
        );
        if let Some(d) = promised_digest {
            assert_eq!(
                insp["Digest"].as_str(),
                Some(d.as_str()),
                "{src}: manifest digest"
            );
        }
        if src.starts_with("containers-storage:") {
            let key = base64_std(
                format!("manifest-{}", insp["Digest"].as_str().expect("Digest")).as_bytes(),
            );
            let p = fx
                .path("FIXTURE_STORAGE")
                .join("overlay-images")
                .join(derived_id)
                .join(format!("={key}"));
            assert!(
                p.exists(),
                "{src}: podman's store has no manifest with our digest {} ({})",
                insp["Digest"],
                p.display()
            );
        }
        // inspect's DiffIDs, RootFS.Layers and sizes match the source config,
        // and layer-tar of every layer hashes to its DiffID.
        s.assert_layers_bit_exact(derived_id, &diff_ids);
        eprintln!("{src}: ok in {:.1}s", t0.elapsed().as_secs_f64());
    }
}

// ---------------------------------------------------------------------------
// 2. IDs and digests agree with podman load

#[test]
fn ids_and_digests_match_podman_load() {
    let fx = fixtures();
    require_tool("podman");
    let mut problems = Vec::new();
    for (transport, key) in [
        ("docker-archive", "FIXTURE_DERIVED_DOCKER_TAR"),
        ("oci-archive", "FIXTURE_DERIVED_OCI_TAR"),
    ] {
        let archive = fx.get(key);
        let pm = IsolatedPodman::new();
        pm.ok(["load", "-q", "-i", archive]);
        let ids = stdout(&pm.ok(["images", "-q", "--no-trunc"]));
        let ids: Vec<&str> = ids.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(ids.len(), 1, "podman load {archive}: images {ids:?}");
        let pid = ids[0].trim_start_matches("sha256:").to_string();
        let line = stdout(&pm.ok([
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{.Digest}} {{.RepoTags}}",
            &pid,
        ]));
        let mut f = line.split_whitespace();
        let (p_id, p_digest) = (
            f.next().expect("Id").to_string(),
            f.next().expect("Digest").to_string(),
        );
        let p_tags = f.collect::<Vec<_>>().join(" ");
        let manifest_path = pm
            .root()
            .join("overlay-images")
            .join(&p_id)
            .join("manifest");
        let p_manifest =
            fs::read(&manifest_path).unwrap_or_else(|e| panic!("{}: {e}", manifest_path.display()));
        assert_eq!(
            sha256(&p_manifest),
            p_digest,
            "podman's stored manifest does not hash to its Digest"
        );

        let s = TempStore::new();
        let src = format!("{transport}:{archive}");
        let r = s.import(&src);
        let insp = s.inspect(r["Id"].as_str().expect("Id"));
        let (u_id, u_digest) = (
            insp["Id"].as_str().expect("Id").to_string(),
            insp["Digest"].as_str().expect("Digest").to_string(),
        );
        eprintln!(
            "{src}:\n  podman   {p_id} {p_digest} {p_tags}\n  unistore {u_id} {u_digest} {:?}",
            insp["Names"]
        );
        if u_id != p_id {
            problems.push(format!("{src}: image ID: podman {p_id}, unistore {u_id}"));
        }
        if u_digest != p_digest {
            problems.push(format!(
                "{src}: manifest digest: podman {p_digest}, unistore {u_digest}\n  \
                 podman's manifest ({}):\n  {}",
                manifest_path.display(),
                String::from_utf8_lossy(&p_manifest)
            ));
        }
        let p_tag = p_tags.trim_matches(['[', ']']).to_string();
        let u_names: Vec<&str> = insp["Names"]
            .as_array()
            .expect("Names")
            .iter()
            .filter_map(|n| n.as_str())
            .collect();
        if !p_tag.is_empty() && u_names != p_tag.split(' ').collect::<Vec<_>>() {
            problems.push(format!(
                "{src}: names: podman [{p_tag}], unistore {u_names:?}"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "disagreements with podman:\n{}",
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------
// 3. No-op re-imports and layer sharing

#[test]
fn reimport_is_a_noop_and_shared_layers_are_stored_once() {
    let fx = fixtures();
    let base_src = format!("oci:{}", fx.get("FIXTURE_BASE_OCI_DIR"));
    let app_src = format!("oci:{}", fx.get("FIXTURE_APP_OCI_DIR"));
    let derived_src = format!("docker-archive:{}", fx.get("FIXTURE_DERIVED_DOCKER_TAR"));

    let s = TempStore::new();
    let r = s.import(&base_src);
    assert_eq!(r["AlreadyPresent"], json!(false), "{r}");
    let base_bytes = s.physical_bytes();
    let repo_before = tree_listing(&s.path().join("repo"));

    // Same image again: nothing written.
    let t0 = Instant::now();
    let r2 = s.import(&base_src);
    let took = t0.elapsed();
    assert_eq!(r2["AlreadyPresent"], json!(true), "{r2}");
    assert_eq!(r2["Id"], r["Id"]);
    assert_eq!(r2["Digest"], r["Digest"]);
    assert_eq!(r2["NewBytes"].as_u64(), Some(0), "{r2}");
    assert!(
        took < Duration::from_secs(2),
        "no-op re-import took {took:?} (first import: {}s)",
        r["Seconds"]
    );
    let after = s.physical_bytes();
    assert!(
        after.abs_diff(base_bytes) <= 8 * 1024,
        "no-op re-import changed PhysicalBytes: {base_bytes} -> {after}"
    );
    let repo_after = tree_listing(&s.path().join("repo"));
    assert!(
        repo_before == repo_after,
        "no-op re-import changed the repository:\n{}",
        listing_diff(&repo_before, &repo_after)
    );

    // app shares the base layer: only its own small layer is new.
    let before_app = s.physical_bytes();
    let ra = s.import(&app_src);
    assert_eq!(ra["AlreadyPresent"], json!(false), "{ra}");
    assert_eq!(ra["Layers"].as_u64(), Some(2), "{ra}");
    assert_eq!(ra["LayersReused"].as_u64(), Some(1), "{ra}");
    let growth = s.physical_bytes() - before_app;
    let alone = {
        let t = TempStore::new();
        t.import(&app_src);
        t.physical_bytes()
    };
    assert!(
        growth < 1024 * 1024 && growth * 20 < alone,
        "importing app after base grew the store by {growth} bytes; app alone takes {alone}"
    );
    let app_id = ra["Id"].as_str().expect("Id");
    let (_, _, app_cfg) = oci_dir_image(&fx.path("FIXTURE_APP_OCI_DIR"));
    s.assert_layers_bit_exact(app_id, &config_diff_ids(&app_cfg));
    s.assert_layers_bit_exact(fx.get("FIXTURE_BASE_ID"), &base_diff_ids());

    // derived (docker-archive) reuses base too; a second import of it, and of
    // the same image from another source form (same config = same image ID),
    // are no-ops.
    let rd = s.import(&derived_src);
    assert_eq!(rd["LayersReused"].as_u64(), Some(1), "{rd}");
    let before = s.physical_bytes();
    let repo_before = tree_listing(&s.path().join("repo"));
    for src in [
        derived_src.clone(),
        format!("oci:{}", fx.get("FIXTURE_DERIVED_OCI_ZSTD_DIR")),
    ] {
        let t0 = Instant::now();
        let r = s.import(&src);
        assert_eq!(r["AlreadyPresent"], json!(true), "{src}: {r}");
        assert_eq!(r["Id"], rd["Id"], "{src}");
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "{src}: took {:?}",
            t0.elapsed()
        );
    }
    let after = s.physical_bytes();
    assert!(
        after.abs_diff(before) <= 8 * 1024,
        "no-op re-imports of derived changed PhysicalBytes: {before} -> {after}"
    );
    let repo_after = tree_listing(&s.path().join("repo"));
    assert!(
        repo_before == repo_after,
        "no-op re-imports of derived changed the repository:\n{}",
        listing_diff(&repo_before, &repo_after)
    );
    assert_eq!(image_ids(&s).len(), 3);
}

// ---------------------------------------------------------------------------
// 4. Hostile and corrupt inputs

/// A tar archive built header by header (the `tar` crate refuses to write
/// some of the hostile names we need).
#[derive(Default)]
struct RawTar {
    buf: Vec<u8>,
}

impl RawTar {
    fn header(&mut self, name: &str, typeflag: u8, size: u64, link: &str, mode: u32) {
        let mut h = [0u8; 512];
        let put = |h: &mut [u8; 512], at: usize, len: usize, v: &[u8]| {
            assert!(
                v.len() <= len,
                "tar field too long: {:?}",
                String::from_utf8_lossy(v)
            );
            h[at..at + v.len()].copy_from_slice(v);
        };
        put(&mut h, 0, 100, name.as_bytes());
        put(&mut h, 100, 8, format!("{mode:07o}\0").as_bytes());
        put(&mut h, 108, 8, b"0000000\0");
        put(&mut h, 116, 8, b"0000000\0");
        put(&mut h, 124, 12, format!("{size:011o}\0").as_bytes());
        put(
            &mut h,
            136,
            12,
            format!("{:011o}\0", 1_700_000_000u64).as_bytes(),
        );
        put(&mut h, 148, 8, b"        ");
        h[156] = typeflag;
        put(&mut h, 157, 100, link.as_bytes());
        put(&mut h, 257, 6, b"ustar\0");
        put(&mut h, 263, 2, b"00");
        put(&mut h, 265, 32, b"root");
        put(&mut h, 297, 32, b"root");
        put(&mut h, 329, 8, b"0000000\0");
        put(&mut h, 337, 8, b"0000000\0");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        put(&mut h, 148, 8, format!("{sum:06o}\0 ").as_bytes());
        self.buf.extend_from_slice(&h);
    }

    fn file(mut self, name: &str, data: &[u8]) -> Self {
        self.header(name, b'0', data.len() as u64, "", 0o644);
        self.buf.extend_from_slice(data);
        let pad = data.len().next_multiple_of(512) - data.len();
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    fn dir(mut self, name: &str) -> Self {
        self.header(name, b'5', 0, "", 0o755);
        self
    }

    fn symlink(mut self, name: &str, target: &str) -> Self {
        self.header(name, b'2', 0, target, 0o777);
        self
    }

    fn hardlink(mut self, name: &str, target: &str) -> Self {
        self.header(name, b'1', 0, target, 0o644);
        self
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf.extend(std::iter::repeat_n(0u8, 1024));
        self.buf
    }
}

/// Deterministic incompressible bytes, different for every `seed`.
fn noise(seed: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = sha256(seed.as_bytes()).into_bytes();
    while out.len() < len {
        block = sha256(&block).into_bytes();
        // the hex digest: 64 ASCII chars; decode to 32 raw bytes
        let raw = hex::decode(&block[7..]).expect("hex");
        out.extend_from_slice(&raw);
    }
    out.truncate(len);
    out
}

/// The start of every test layer: a directory and a file large enough to be
/// stored as an object (unique per case, so no case dedups against another),
/// so a failure later in the layer happens after objects were written.
fn payload(case: &str) -> RawTar {
    RawTar::default()
        .dir("data/")
        .file("data/payload.bin", &noise(case, 256 * 1024))
        .file("data/small.txt", format!("case {case}\n").as_bytes())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

fn zstd_compress(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).expect("zstd")
}

const MT_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const MT_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const MT_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// One layer of a generated OCI layout.
struct TestLayer {
    media_type: String,
    /// Bytes stored in the blob file.
    blob: Vec<u8>,
    /// Digest of the uncompressed tar, for the config.
    diff_id: String,
    /// Digest the manifest claims (default: the blob's).
    claimed_digest: Option<String>,
    /// Whether the blob file exists.
    present: bool,
}

impl TestLayer {
    fn new(media_type: &str, tar: &[u8], blob: Vec<u8>) -> Self {
        TestLayer {
            media_type: media_type.to_string(),
            blob,
            diff_id: sha256(tar),
            claimed_digest: None,
            present: true,
        }
    }
    fn tar(tar: Vec<u8>) -> Self {
        Self::new(MT_TAR, &tar, tar.clone())
    }
    fn gzip(tar: Vec<u8>) -> Self {
        let blob = gzip(&tar);
        Self::new(MT_GZIP, &tar, blob)
    }
    fn zstd(tar: Vec<u8>) -> Self {
        let blob = zstd_compress(&tar);
        Self::new(MT_ZSTD, &tar, blob)
    }
}

/// A generated OCI layout: layers, config and manifest are consistent unless
/// a field says otherwise.
struct TestImage {
    name: String,
    layers: Vec<TestLayer>,
    /// Number of diff_ids to put in the config (default: one per layer).
    diff_ids: Option<usize>,
    /// Raw manifest bytes to use instead of the generated manifest.
    manifest: Option<Vec<u8>>,
}

impl TestImage {
    fn new(case: &str, layers: Vec<TestLayer>) -> Self {
        TestImage {
            name: format!("localhost/unistore-hostile/{case}:1"),
            layers,
            diff_ids: None,
            manifest: None,
        }
    }

    fn write(&self, dir: &Path) {
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).expect("mkdir blobs");
        let put = |data: &[u8]| -> (String, u64) {
            let d = sha256(data);
            fs::write(oci_blob_path(dir, &d), data).expect("write blob");
            (d, data.len() as u64)
        };
        let mut layer_descs = Vec::new();
        for l in &self.layers {
            let digest = l.claimed_digest.clone().unwrap_or_else(|| sha256(&l.blob));
            if l.present {
                fs::write(oci_blob_path(dir, &digest), &l.blob).expect("write layer");
            }
            layer_descs.push(json!({
                "mediaType": l.media_type, "digest": digest, "size": l.blob.len(),
            }));
        }
        let diff_ids: Vec<&str> = self
            .layers
            .iter()
            .take(self.diff_ids.unwrap_or(self.layers.len()))
            .map(|l| l.diff_id.as_str())
            .collect();
        let config = serde_json::to_vec(&json!({
            "created": "2024-01-01T00:00:00Z",
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [],
        }))
        .expect("config json");
        let (cd, cs) = put(&config);
        let manifest = match &self.manifest {
            Some(m) => m.clone(),
            None => serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": cd, "size": cs,
                },
                "layers": layer_descs,
            }))
            .expect("manifest json"),
        };
        let (md, ms) = put(&manifest);
        let index = json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": md, "size": ms,
                "annotations": {"org.opencontainers.image.ref.name": self.name},
            }],
        });
        fs::write(
            dir.join("index.json"),
            serde_json::to_vec(&index).expect("json"),
        )
        .expect("index.json");
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("oci-layout");
    }
}

/// Whether a failed import must leave `repo/objects` untouched too.
///
/// A refused layer removes the objects it created (store/src/layer.rs
/// `remove_objects`), so the before/after comparison covers the whole store,
/// `repo/objects/` included.
const FAILED_IMPORT_LEAVES_NO_OBJECTS: bool = true;

fn is_objects(rel: &str) -> bool {
    rel == "repo/objects" || rel.starts_with("repo/objects/")
}

/// Run `unistore import SRC` in `store` and assert it fails cleanly: non-zero
/// exit, stderr one line `Error: ...` that mentions one of `what`
/// (case-insensitive), no panic, and the store unchanged.
fn assert_import_fails_cleanly(store: &TempStore, src: &str, what: &[&str]) -> Output {
    assert_import_fails_cleanly_allowing(store, src, what, &BTreeSet::new())
}

/// [`assert_import_fails_cleanly`], except that the store paths in `allowed`
/// may be added by the failed import.
fn assert_import_fails_cleanly_allowing(
    store: &TempStore,
    src: &str,
    what: &[&str],
    allowed: &BTreeSet<String>,
) -> Output {
    let full_before = tree_listing(store.path());
    let out = store.run(["import", src]);
    let full_after = tree_listing(store.path());
    let err = stderr(&out);
    let context = format!(
        "unistore import {src}\n  status: {}\n  stderr: {err:?}\n  stdout: {:?}",
        out.status,
        stdout(&out)
    );
    assert!(
        !out.status.success(),
        "import unexpectedly succeeded:\n{context}"
    );
    assert!(
        out.status.code().is_some(),
        "import died by a signal:\n{context}"
    );
    assert!(!err.contains("panicked"), "import panicked:\n{context}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "stderr is not exactly one line:\n{context}");
    assert!(
        lines[0].starts_with("Error: "),
        "stderr does not start with `Error: `:\n{context}"
    );
    let lower = lines[0].to_lowercase();
    assert!(
        what.iter().any(|w| lower.contains(&w.to_lowercase())),
        "the error does not name the problem (expected one of {what:?}):\n{context}"
    );
    assert!(
        stdout(&out).trim().is_empty(),
        "a failed import printed to stdout:\n{context}"
    );

    let keep = |l: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        l.iter()
            .filter(|(k, _)| !is_objects(k) && !allowed.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let (b, a) = (keep(&full_before), keep(&full_after));
    assert!(
        listing_hash(&b) == listing_hash(&a),
        "the failed import changed the store (outside repo/objects):\n{}\n{context}",
        listing_diff(&b, &a)
    );
    if full_before != full_after {
        let leftover = full_after
            .keys()
            .filter(|k| !full_before.contains_key(*k))
            .count();
        eprintln!(
            "NOTE: failed import of {src} left {leftover} new path(s) in repo/objects:\n{}",
            listing_diff(&full_before, &full_after)
        );
        // Verified layers kept for a resumed import (`allowed`) keep their objects.
        if FAILED_IMPORT_LEAVES_NO_OBJECTS && allowed.is_empty() {
            panic!(
                "the failed import left objects behind:\n{}",
                listing_diff(&full_before, &full_after)
            );
        }
    }
    // The store still works and still holds exactly what it held.
    assert_eq!(
        image_ids(store),
        vec![fixtures().get("FIXTURE_BASE_ID").to_string()]
    );
    out
}

/// Generate `image` as an OCI layout in a temp dir, import it into a store
/// holding base, and check it fails cleanly with a message naming `what`.
fn hostile(case: &str, image: TestImage, what: &[&str]) {
    let store = store_with_base();
    let dir = tempdir("unistore-it-hostile-");
    image.write(dir.path());
    let out = assert_import_fails_cleanly(&store, &format!("oci:{}", dir.path().display()), what);
    eprintln!("{case}: {}", stderr(&out).trim());
}

fn one_layer(case: &str, layer: TestLayer) -> TestImage {
    TestImage::new(case, vec![layer])
}

/// The generator itself is right: a clean image built the same way imports
/// and reads back bit-exactly (in every compression), so the failures below
/// come from the one defect each case injects.
#[test]
fn generated_control_image_imports() {
    let store = store_with_base();
    let t1 = payload("control-1").symlink("data/link", "/etc").finish();
    let t2 = payload("control-2")
        .hardlink("data/hard", "data/payload.bin")
        .finish();
    let t3 = payload("control-3")
        .file("data/more.txt", b"more\n")
        .finish();
    let ids = vec![sha256(&t1), sha256(&t2), sha256(&t3)];
    let image = TestImage::new(
        "control",
        vec![TestLayer::tar(t1), TestLayer::gzip(t2), TestLayer::zstd(t3)],
    );
    let dir = tempdir("unistore-it-control-");
    image.write(dir.path());
    let r = store.import(&format!("oci:{}", dir.path().display()));
    assert_eq!(
        r["Names"],
        json!(["localhost/unistore-hostile/control:1"]),
        "{r}"
    );
    store.assert_layers_bit_exact("localhost/unistore-hostile/control:1", &ids);
}

#[test]
fn hostile_absolute_member_path() {
    let c = "absolute";
    let t = payload(c).file("/etc/evil", b"evil\n").finish();
    hostile(c, one_layer(c, TestLayer::tar(t)), &["absolute"]);
}

#[test]
fn hostile_dotdot_member_path() {
    let c = "dotdot";
    let t = payload(c).file("data/../../evil", b"evil\n").finish();
    hostile(
        c,
        one_layer(c, TestLayer::tar(t)),
        &["`..`", "'..'", "\"..\""],
    );
}

#[test]
fn hostile_hardlink_to_missing_target() {
    let c = "hardlink-missing";
    let t = payload(c)
        .hardlink("data/hard", "data/nonexistent")
        .finish();
    hostile(c, one_layer(c, TestLayer::tar(t)), &["nonexistent"]);
}

#[test]
fn hostile_hardlink_outside_the_layer() {
    let c = "hardlink-outside";
    let t = payload(c).hardlink("data/hard", "../outside").finish();
    hostile(c, one_layer(c, TestLayer::tar(t)), &["../outside"]);
}

#[test]
fn hostile_member_below_symlink() {
    let c = "below-symlink";
    let t = payload(c)
        .symlink("link", "/etc")
        .file("link/passwd", b"root::0:0::/:/bin/sh\n")
        .finish();
    hostile(c, one_layer(c, TestLayer::tar(t)), &["symlink"]);
}

#[test]
fn hostile_duplicate_member() {
    let c = "duplicate";
    let t = payload(c)
        .file("data/dup.txt", b"first\n")
        .file("data/dup.txt", b"second\n")
        .finish();
    hostile(c, one_layer(c, TestLayer::tar(t)), &["duplicate"]);
}

#[test]
fn corrupt_truncated_gzip_layer() {
    let c = "truncated-gzip";
    let mut l = TestLayer::gzip(payload(c).file("data/after.txt", b"after\n").finish());
    l.blob.truncate(l.blob.len() * 3 / 5);
    hostile(
        c,
        one_layer(c, l),
        &["truncated", "corrupt", "unexpected end"],
    );
}

#[test]
fn corrupt_truncated_zstd_layer() {
    let c = "truncated-zstd";
    let mut l = TestLayer::zstd(payload(c).file("data/after.txt", b"after\n").finish());
    l.blob.truncate(l.blob.len() * 3 / 5);
    hostile(
        c,
        one_layer(c, l),
        &["truncated", "corrupt", "unexpected end"],
    );
}

#[test]
fn corrupt_garbage_gzip_layer() {
    let c = "garbage-gzip";
    let tar = payload(c).finish();
    let mut blob = vec![0x1f, 0x8b, 0x08, 0x00];
    blob.extend_from_slice(&noise("garbage", 4096));
    let l = TestLayer::new(MT_GZIP, &tar, blob);
    hostile(
        c,
        one_layer(c, l),
        &["corrupt", "invalid", "gzip", "deflate"],
    );
}

#[test]
fn corrupt_layer_digest_mismatch() {
    let c = "digest-mismatch";
    let mut l = TestLayer::tar(payload(c).finish());
    // The manifest promises the digest of different bytes; the blob file at
    // that digest holds our (valid) layer.
    l.claimed_digest = Some(sha256(b"some other layer"));
    hostile(c, one_layer(c, l), &["digest mismatch"]);
}

#[test]
fn corrupt_missing_blob() {
    // The missing blob is the first layer to import: a failure in layer k
    // keeps the (verified, complete) records of layers before k on purpose,
    // so that a re-run resumes; see `failed_import_keeps_only_verified_layers`.
    let c = "missing-blob";
    let mut l = TestLayer::tar(payload(c).finish());
    l.present = false;
    hostile(c, one_layer(c, l), &["missing blob"]);
}

/// A failure in layer k keeps the complete, verified records of layers
/// before k (so a re-run resumes), and nothing else: no record of layer k,
/// no image record, no catalog change. The re-run then reuses them.
#[test]
fn failed_import_keeps_only_verified_layers() {
    let c = "resume";
    let store = store_with_base();
    let t0 = payload("resume-0").finish();
    let t1 = payload("resume-1")
        .symlink("data/l", "payload.bin")
        .finish();
    let t2 = payload("resume-2").finish();
    let ids = vec![sha256(&t0), sha256(&t1), sha256(&t2)];
    let mut missing = TestLayer::gzip(t2);
    missing.present = false;
    let blob2 = missing.blob.clone();
    let image = TestImage::new(c, vec![TestLayer::tar(t0), TestLayer::zstd(t1), missing]);
    let dir = tempdir("unistore-it-resume-");
    image.write(dir.path());
    let src = format!("oci:{}", dir.path().display());
    let allowed: BTreeSet<String> = ids[..2]
        .iter()
        .flat_map(|d| {
            let hex = d.trim_start_matches("sha256:");
            [
                format!("repo/streams/unistore-layer-{hex}"),
                format!("repo/streams/unistore-layermeta-{hex}"),
            ]
        })
        .collect();
    assert_import_fails_cleanly_allowing(&store, &src, &["missing blob"], &allowed);
    let streams: BTreeSet<String> = fs::read_dir(store.path().join("repo/streams"))
        .expect("streams")
        .map(|e| {
            format!(
                "repo/streams/{}",
                e.expect("entry").file_name().to_string_lossy()
            )
        })
        .collect();
    assert!(
        allowed.is_subset(&streams),
        "the verified layers were not kept: {allowed:?} vs {streams:?}"
    );

    // Supply the missing blob: the re-run reuses the two kept layers.
    fs::write(oci_blob_path(dir.path(), &sha256(&blob2)), &blob2).expect("write blob");
    let r = store.import(&src);
    assert_eq!(r["LayersReused"].as_u64(), Some(2), "{r}");
    assert_eq!(r["Layers"].as_u64(), Some(3), "{r}");
    store.assert_layers_bit_exact("localhost/unistore-hostile/resume:1", &ids);
}

#[test]
fn corrupt_manifest_not_json() {
    let c = "manifest-not-json";
    let mut image = one_layer(c, TestLayer::tar(payload(c).finish()));
    image.manifest = Some(b"this is not a manifest {".to_vec());
    hostile(c, image, &["manifest"]);
}

#[test]
fn corrupt_unknown_layer_media_type() {
    let c = "unknown-media-type";
    let mut l = TestLayer::tar(payload(c).finish());
    l.media_type = "application/vnd.example.unknown.layer".to_string();
    hostile(c, one_layer(c, l), &["media type"]);
}

#[test]
fn corrupt_layer_not_a_tar() {
    let c = "not-a-tar";
    let text: Vec<u8> = "This is a plain text file, not a tar archive at all.\n"
        .repeat(60)
        .into_bytes();
    hostile(
        c,
        one_layer(c, TestLayer::new(MT_TAR, &text, text.clone())),
        &["not a tar"],
    );
}

#[test]
fn corrupt_config_missing_diff_id() {
    let c = "missing-diff-id";
    let mut image = TestImage::new(
        c,
        vec![
            TestLayer::tar(payload(c).finish()),
            TestLayer::tar(payload("missing-diff-id-2").finish()),
        ],
    );
    image.diff_ids = Some(1);
    hostile(c, image, &["diffid"]);
}

#[test]
fn unsupported_and_unknown_transports_fail_cleanly() {
    let store = store_with_base();
    // docker:// is a registry pull (tests/src/pull.rs); these are known
    // transports unistore does not read.
    let out = assert_import_fails_cleanly(&store, "docker-daemon:x/y:1", &["not supported yet"]);
    assert!(stderr(&out).contains("docker-daemon"), "{}", stderr(&out));
    let out = assert_import_fails_cleanly(&store, "dir:/tmp/x", &["not supported yet"]);
    assert!(stderr(&out).contains("dir"), "{}", stderr(&out));
    let out = assert_import_fails_cleanly(&store, "foo:bar", &["foo"]);
    eprintln!("foo:bar: {}", stderr(&out).trim());
    let out = assert_import_fails_cleanly(
        &store,
        "oci:/nonexistent/unistore/layout",
        &["/nonexistent/unistore/layout"],
    );
    eprintln!("missing dir: {}", stderr(&out).trim());
}

// ---------------------------------------------------------------------------
// 5. Crash safety

/// One `crash point` line of `UNISTORE_CRASH_TRACE=1 UNISTORE_LOG=info`.
#[derive(Debug, Clone)]
struct CrashPoint {
    n: u64,
    what: String,
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\x1b' && it.peek() == Some(&'[') {
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_crash_points(stderr: &str) -> Vec<CrashPoint> {
    let mut v = Vec::new();
    for line in stderr.lines().map(strip_ansi) {
        if !line.contains("crash point") {
            continue;
        }
        let n = line
            .split_once(" n=")
            .and_then(|(_, r)| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("no n= in crash point line: {line}"));
        let what = line
            .split_once("what=\"")
            .and_then(|(_, r)| r.split_once('"'))
            .map(|(w, _)| w.to_string())
            .unwrap_or_else(|| panic!("no what= in crash point line: {line}"));
        v.push(CrashPoint { n, what });
    }
    v
}

#[test]
fn sigkill_at_crash_points_leaves_a_consistent_store() {
    let started = Instant::now();
    let fx = fixtures();
    let base_id = fx.get("FIXTURE_BASE_ID").to_string();
    let derived_id = fx.get("FIXTURE_DERIVED_ID").to_string();
    let base_ids = base_diff_ids();
    let derived_ids = config_diff_ids(&docker_archive_config(
        &fx.path("FIXTURE_DERIVED_DOCKER_TAR"),
    ));
    let src = format!("docker-archive:{}", fx.get("FIXTURE_DERIVED_DOCKER_TAR"));

    let template = store_with_base();

    // Count the crash points of an uninterrupted import.
    let scratch = TempStore::copy_of(template.path());
    let mut c = scratch.cmd(["import", "--json", &src]);
    c.env("UNISTORE_CRASH_TRACE", "1")
        .env("UNISTORE_LOG", "info");
    let out = run_ok(&mut c);
    let report: Value = serde_json::from_slice(&out.stdout).expect("import --json");
    let want_digest = report["Digest"].as_str().expect("Digest").to_string();
    let points = parse_crash_points(&stderr(&out));
    let total = points.len() as u64;
    assert!(total >= 10, "only {total} crash points:\n{}", stderr(&out));
    for (i, p) in points.iter().enumerate() {
        assert_eq!(
            p.n,
            i as u64 + 1,
            "crash points are not numbered 1..: {points:?}"
        );
    }
    let last6: Vec<&str> = points[points.len() - 6..]
        .iter()
        .map(|p| p.what.as_str())
        .collect();
    eprintln!("{total} crash points; the last six: {last6:?}");
    assert_eq!(last6.last(), Some(&"catalog renamed"), "{last6:?}");
    for must in ["image record written", "catalog temporary written"] {
        assert!(
            last6.contains(&must),
            "`{must}` not among the last six points: {last6:?}"
        );
    }
    drop(scratch);
    // The catalog rename is the commit point.
    let commit = points
        .iter()
        .find(|p| p.what == "catalog renamed")
        .expect("a catalog renamed point")
        .n;
    let meta_points: Vec<u64> = points
        .iter()
        .filter(|p| p.what == "layer meta written")
        .map(|p| p.n)
        .collect();

    // Which N to kill at: the last six individually, the first point of each
    // kind, every point of the big layer's commit sequence, and an even spread
    // over the rest.
    let mut ns: BTreeSet<u64> = (total - 5..=total).collect();
    let mut kinds = BTreeSet::new();
    for p in &points {
        if kinds.insert(p.what.clone()) {
            ns.insert(p.n);
        }
    }
    for w in points.windows(4) {
        if w[0].what == "object written" && w[1].what == "index written" {
            // the commit sequence after the last object of a layer with objects
            ns.extend([w[0].n, w[1].n, w[2].n, w[3].n]);
        }
    }
    let spread = 12u64;
    for i in 0..spread {
        ns.insert(1 + i * (total - 7) / (spread - 1));
    }
    let ns: Vec<u64> = ns.into_iter().collect();
    assert!(
        ns.len() >= 24,
        "only {} distinct crash points chosen",
        ns.len()
    );
    eprintln!("killing at {} points: {ns:?}", ns.len());

    let what_at = |n: u64| points[(n - 1) as usize].what.clone();
    let failures = Mutex::new(Vec::<String>::new());
    let queue = Mutex::new(ns.clone());
    let check_one = |n: u64| {
        let s = TempStore::copy_of(template.path());
        let mut c = s.cmd(["import", "-q", &src]);
        c.env("UNISTORE_CRASH_AT", n.to_string());
        let out = run(&mut c);
        let ctx = format!("UNISTORE_CRASH_AT={n} ({})", what_at(n));
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{ctx}: the import was not killed by SIGKILL ({}):\n{}",
            out.status,
            stderr(&out)
        );

        // The store is readable and shows derived completely or not at all.
        let images = s.images();
        let listed: Vec<&Value> = images
            .iter()
            .filter(|e| e["Id"].as_str() == Some(derived_id.as_str()))
            .collect();
        assert!(
            images
                .iter()
                .any(|e| e["Id"].as_str() == Some(base_id.as_str())),
            "{ctx}: base vanished from the catalog: {images:?}"
        );
        assert_eq!(
            images.len(),
            1 + listed.len(),
            "{ctx}: unexpected images: {images:?}"
        );
        if listed.is_empty() {
            assert!(
                n < commit,
                "{ctx}: derived is not listed although the catalog was renamed"
            );
        } else {
            assert!(
                n >= commit,
                "{ctx}: derived listed before the catalog was renamed"
            );
            assert_eq!(
                listed[0]["Digest"].as_str(),
                Some(want_digest.as_str()),
                "{ctx}"
            );
            s.assert_layers_bit_exact(&derived_id, &derived_ids);
        }
        s.assert_layers_bit_exact(&base_id, &base_ids);

        // fsck finds nothing but orphans of the interrupted import (the
        // re-run below adopts them; afterwards fsck is clean).
        let f = s.run(["fsck", "--json"]);
        let fj: Value = serde_json::from_slice(&f.stdout)
            .unwrap_or_else(|e| panic!("{ctx}: fsck --json ({e}): {}", stderr(&f)));
        let kinds: Vec<&str> = fj["Findings"]
            .as_array()
            .expect("Findings")
            .iter()
            .filter_map(|x| x["Kind"].as_str())
            .collect();
        assert!(
            kinds.iter().all(|k| *k == "orphan-object"),
            "{ctx}: fsck after the kill found more than orphans: {fj}"
        );

        // Re-running the import completes it, reusing every layer whose meta
        // record made it to disk.
        let r = s.import(&src);
        assert_eq!(r["Id"].as_str(), Some(derived_id.as_str()), "{ctx}: {r}");
        assert_eq!(
            r["Digest"].as_str(),
            Some(want_digest.as_str()),
            "{ctx}: {r}"
        );
        if listed.is_empty() {
            assert_eq!(r["AlreadyPresent"], json!(false), "{ctx}: {r}");
            let done = 1 + meta_points.iter().filter(|&&m| m <= n).count() as u64;
            assert_eq!(
                r["LayersReused"].as_u64(),
                Some(done),
                "{ctx}: re-run should reuse the base layer and every layer whose meta was written: {r}"
            );
        } else {
            assert_eq!(r["AlreadyPresent"], json!(true), "{ctx}: {r}");
        }
        s.assert_layers_bit_exact(&derived_id, &derived_ids);
        s.assert_layers_bit_exact(&base_id, &base_ids);
        let ids = image_ids(&s);
        assert_eq!(ids.len(), 2, "{ctx}: images after re-run: {ids:?}");
        let f = s.run(["fsck"]);
        assert!(
            f.status.success(),
            "{ctx}: fsck after the re-run is not clean:\n{}",
            stdout(&f)
        );
    };
    // Two workers (the machine has two cores); each N in its own store copy.
    std::thread::scope(|sc| {
        for _ in 0..2 {
            sc.spawn(|| loop {
                let Some(n) = queue.lock().expect("queue").pop() else {
                    break;
                };
                let t0 = Instant::now();
                let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_one(n)));
                match res {
                    Ok(()) => eprintln!(
                        "crash at {n:>5} ({}): ok in {:.1}s",
                        what_at(n),
                        t0.elapsed().as_secs_f64()
                    ),
                    Err(e) => {
                        let msg = e
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "panic".into());
                        failures
                            .lock()
                            .expect("failures")
                            .push(format!("N={n}: {msg}"));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().expect("failures");
    eprintln!(
        "crash test: {} points in {:.1}s",
        ns.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} crash points failed:\n{}",
        failures.len(),
        ns.len(),
        failures.join("\n\n")
    );
}
