//! `unistore pull docker://…` against a real registry (issue 8).
//!
//! Debian's `docker-registry` serves, on 127.0.0.1, the storage that
//! `tests/registry/build-registry-fixtures.sh` filled with skopeo (the fixture
//! images as gzip, zstd:chunked and Docker schema 2, two "update" images, a
//! multi-platform index, and one repository behind basic auth). A
//! byte-counting proxy ([`crate::registry::Proxy`]) sits in front of it and
//! can throttle or cut the connections. The tests check:
//!
//! 1. the image ID and the container tree from the containers-storage view
//!    equal what `podman pull` of the same reference gives;
//! 2. a second image sharing the base downloads only its own layers;
//! 3. a zstd:chunked update downloads only the changed files (range
//!    requests), and the layers stay bit-exact (diffIDs);
//! 4. media types, manifest lists, pull by digest, `import docker://`,
//!    registries.conf (insecure, mirror);
//! 5. auth: podman-login auth files, `--creds`, wrong and missing credentials;
//! 6. a missing tag, a tampered manifest or layer in the registry's storage,
//!    a registry cut or killed mid-pull, SIGKILL of the pull: a clear one-line
//!    error and an unchanged store (images, objects, fsck);
//! 7. a re-run after an interrupted pull downloads less than a fresh one;
//! 8. `--progress=json` lines.
//!
//! Every test needs root, podman, skopeo, docker-registry, htpasswd and fails,
//! never skips, without them. Registries and proxies are stopped by guards.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::registry::*;
use crate::view::{
    assert_dump_has, json_of, prerequisites, run_t, tree_dump, Podman, ViewMount, ViewPodman,
};

const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------
// Client environment and running `unistore pull`

/// A private client configuration: an empty registries.conf and an auth file
/// without credentials (the host's configuration and credentials never leak in).
struct ClientEnv {
    dir: tempfile::TempDir,
}

impl ClientEnv {
    fn new() -> ClientEnv {
        let dir = tempdir("unistore-it-client-");
        fs::write(dir.path().join("registries.conf"), "").expect("registries.conf");
        fs::write(dir.path().join("auth.json"), "{\"auths\":{}}").expect("auth.json");
        ClientEnv { dir }
    }

    fn registries_conf(&self) -> PathBuf {
        self.dir.path().join("registries.conf")
    }

    fn set_registries_conf(&self, text: &str) {
        fs::write(self.registries_conf(), text).expect("registries.conf");
    }

    fn apply(&self, c: &mut Command) {
        c.env("CONTAINERS_REGISTRIES_CONF", self.registries_conf());
        c.env("REGISTRY_AUTH_FILE", self.dir.path().join("auth.json"));
        c.env("HOME", self.dir.path()); // no ~/.docker/config.json either
        c.env_remove("DOCKER_CONFIG");
    }
}

/// Words one of which an authentication failure's message must contain.
const AUTH_ERROR_WORDS: &[&str] = &[
    "auth",
    "401",
    "unauthorized",
    "credential",
    "denied",
    "login",
];

/// Pull fixture/derived:gzip again after an interrupted pull: it completes,
/// is the right image and reads back bit-exact. Returns the report and the
/// bytes the proxy forwarded for it.
fn rerun_derived(
    store: &TempStore,
    env: &ClientEnv,
    proxy: &Proxy,
    reference: &str,
) -> (Value, u64) {
    proxy.reset();
    let rep = pull_ok(store, env, &[], reference);
    check_report(&rep, "fixture/derived:gzip", Some(proxy));
    let rerun = proxy.bytes();
    let id = fixtures().get("FIXTURE_DERIVED_ID");
    assert_eq!(rep["Id"].as_str(), Some(id));
    store.assert_layers_bit_exact(id, &registry_diff_ids("fixture/derived:gzip"));
    (rep, rerun)
}

/// `unistore --store S pull ARGS... REF`, not yet run.
fn pull_cmd(store: &TempStore, env: &ClientEnv, args: &[&str], reference: &str) -> Command {
    let mut c = store.cmd(["pull"]);
    c.args(args).arg(reference);
    env.apply(&mut c);
    c
}

/// Pull with `--tls-verify=false --json --quiet` (plus `args`); the report.
fn pull_ok(store: &TempStore, env: &ClientEnv, args: &[&str], reference: &str) -> Value {
    let mut a = vec!["--tls-verify=false", "--json", "--quiet"];
    a.extend_from_slice(args);
    let mut c = pull_cmd(store, env, &a, reference);
    let out = run_t(&mut c, 600);
    assert!(
        out.status.success(),
        "{} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        describe(&c),
        out.status,
        stdout(&out),
        stderr(&out)
    );
    json_of(&out, &describe(&c))
}

fn u64_of(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("report has no number {key}: {v:#}"))
}

/// The layer reports of a pull report.
fn layer_reports(rep: &Value) -> Vec<Value> {
    rep["LayerReports"]
        .as_array()
        .unwrap_or_else(|| panic!("report has no LayerReports: {rep:#}"))
        .clone()
}

fn modes(rep: &Value) -> Vec<String> {
    layer_reports(rep)
        .iter()
        .map(|l| l["Mode"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Check the report against the registry's manifest of `repo_tag`: Id =
/// config digest, Digest = manifest digest, BytesImage, LayerReports digests
/// and sizes; BytesDownloaded <= what the proxy sent (HTTP bodies vs bodies
/// and headers) and not far below it.
fn check_report(rep: &Value, repo_tag: &str, proxy: Option<&Proxy>) {
    let rf = registry_fixtures();
    let digest = rf.digest(repo_tag);
    let manifest_bytes = rf.blob(digest);
    let m: Value = serde_json::from_slice(&manifest_bytes).expect("manifest");
    let cdigest = m["config"]["digest"].as_str().expect("config digest");
    assert_eq!(
        rep["Id"].as_str().map(|s| format!("sha256:{s}")).as_deref(),
        Some(cdigest),
        "{repo_tag}: report Id is not the config digest: {rep:#}"
    );
    assert_eq!(
        rep["Digest"].as_str(),
        Some(digest),
        "{repo_tag}: report Digest is not the manifest digest: {rep:#}"
    );
    let layers = m["layers"].as_array().expect("layers");
    let image_bytes = manifest_bytes.len() as u64
        + m["config"]["size"].as_u64().expect("config size")
        + layers
            .iter()
            .map(|l| l["size"].as_u64().expect("size"))
            .sum::<u64>();
    assert_eq!(
        u64_of(rep, "BytesImage"),
        image_bytes,
        "{repo_tag}: BytesImage = manifest + config + layer blobs: {rep:#}"
    );
    let lr = layer_reports(rep);
    assert_eq!(lr.len(), layers.len(), "{repo_tag}: LayerReports: {rep:#}");
    for (i, (r, l)) in lr.iter().zip(layers).enumerate() {
        assert_eq!(r["Digest"], l["digest"], "{repo_tag}: LayerReports[{i}]");
        assert_eq!(r["Size"], l["size"], "{repo_tag}: LayerReports[{i}]");
        let mode = r["Mode"].as_str().unwrap_or("?");
        assert!(
            ["present", "full", "partial", "resumed"].contains(&mode),
            "{repo_tag}: LayerReports[{i}].Mode {mode:?}"
        );
        let d = u64_of(r, "Downloaded");
        if mode == "present" {
            assert_eq!(d, 0, "{repo_tag}: a present layer downloaded bytes: {r}");
        }
    }
    let sum: u64 = lr.iter().map(|r| u64_of(r, "Downloaded")).sum();
    let total = u64_of(rep, "BytesDownloaded");
    assert!(
        total >= sum,
        "{repo_tag}: BytesDownloaded {total} < sum of layer Downloaded {sum}: {rep:#}"
    );
    if let Some(p) = proxy {
        let sent = p.bytes();
        let n = p.requests().len() as u64;
        assert!(
            total <= sent,
            "{repo_tag}: BytesDownloaded {total} > bytes the registry sent {sent}\n{}",
            p.summary()
        );
        assert!(
            sent <= total + 4096 * n.max(1),
            "{repo_tag}: the registry sent {sent} bytes in {n} responses, the report says \
             {total} were downloaded (more than 4 KiB of headers per response?)\n{}",
            p.summary()
        );
    }
}

/// `sha256:<id>` → config diffIDs of an image in the registry.
fn registry_diff_ids(repo_tag: &str) -> Vec<String> {
    let rf = registry_fixtures();
    let m = rf.manifest(repo_tag);
    config_diff_ids(&rf.blob(m["config"]["digest"].as_str().expect("config")))
}

/// A store holding base:1 (imported from its docker-archive).
fn store_with_base() -> TempStore {
    let s = TempStore::new();
    let r = s.import(&format!(
        "docker-archive:{}",
        fixtures().get("FIXTURE_BASE_DOCKER_TAR")
    ));
    assert_eq!(r["Id"].as_str(), Some(fixtures().get("FIXTURE_BASE_ID")));
    s
}

// ---------------------------------------------------------------------------
// "Fails cleanly": one error line, store unchanged

/// What the store looks like: images, every path (type and size; tmp/ left
/// out), and how fsck judges it.
#[derive(Debug)]
struct Snap {
    images: Vec<Value>,
    files: BTreeMap<String, String>,
}

fn snap(store: &TempStore) -> Snap {
    let mut files = BTreeMap::new();
    let root = store.path();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let e = e.expect("entry");
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .expect("below")
                .to_string_lossy()
                .into_owned();
            if rel == "tmp" || rel.starts_with("tmp/") {
                continue;
            }
            let md = fs::symlink_metadata(&p).expect("lstat");
            if md.is_dir() {
                files.insert(rel, "dir".into());
                stack.push(p);
            } else if md.is_file() {
                files.insert(rel, format!("file {}", md.len()));
            } else {
                files.insert(rel, "other".into());
            }
        }
    }
    Snap {
        images: store.images(),
        files,
    }
}

/// Findings of `unistore fsck --json` (kind: detail).
fn fsck_findings(store: &TempStore) -> Vec<(String, String)> {
    let out = store.run(["fsck", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "fsck --json printed invalid JSON ({e}): {}\n{}",
            stdout(&out),
            stderr(&out)
        )
    });
    v["Findings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| (f["Kind"].as_str().unwrap_or("?").to_string(), f.to_string()))
        .collect()
}

/// Assert `out` is a clean failure — non-zero exit (not a signal), no panic,
/// stderr exactly one non-empty line starting `Error: ` that names one of
/// `what`, nothing on stdout — and that the store is unchanged: same images,
/// fsck without findings and, when `strict`, no new or changed path outside
/// tmp/. Without `strict` (a pull that had downloaded something), new objects
/// and layer streams kept for a re-run are allowed and fsck may report them
/// as orphans only. Returns the error line.
fn assert_failed_cleanly(
    store: &TempStore,
    before: &Snap,
    out: &Output,
    what: &[&str],
    strict: bool,
    context: &str,
) -> String {
    let err = stderr(out);
    let ctx = format!(
        "{context}\n  status: {}\n  stderr: {err:?}\n  stdout: {:?}",
        out.status,
        stdout(out)
    );
    assert!(
        !out.status.success(),
        "the pull unexpectedly succeeded:\n{ctx}"
    );
    assert!(
        out.status.code().is_some(),
        "the pull died by a signal:\n{ctx}"
    );
    assert!(!err.contains("panicked"), "the pull panicked:\n{ctx}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "stderr is not exactly one line:\n{ctx}");
    assert!(
        lines[0].starts_with("Error: "),
        "stderr does not start with `Error: `:\n{ctx}"
    );
    let lower = lines[0].to_lowercase();
    assert!(
        what.iter().any(|w| lower.contains(&w.to_lowercase())),
        "the error does not name the problem (expected one of {what:?}):\n{ctx}"
    );
    assert!(
        stdout(out).trim().is_empty(),
        "a failed pull printed to stdout:\n{ctx}"
    );
    check_unchanged(store, before, strict, &ctx);
    lines[0].to_string()
}

/// The store after a failed or killed pull: see [`assert_failed_cleanly`].
fn check_unchanged(store: &TempStore, before: &Snap, strict: bool, ctx: &str) {
    let after = snap(store);
    assert_eq!(
        after.images, before.images,
        "`unistore images --json` changed after the failed pull:\n{ctx}"
    );
    let allowed = |k: &str| {
        !strict
            && (k == "repo/objects"
                || k.starts_with("repo/objects/")
                || k.starts_with("repo/streams/unistore-layer"))
    };
    let mut changed = Vec::new();
    for (k, v) in &after.files {
        match before.files.get(k) {
            Some(w) if w == v => {}
            Some(w) if !allowed(k) => changed.push(format!("  changed {k}: {w} => {v}")),
            None if !allowed(k) => changed.push(format!("  added   {k}: {v}")),
            _ => {}
        }
    }
    for k in before.files.keys() {
        if !after.files.contains_key(k) {
            changed.push(format!("  removed {k}"));
        }
    }
    assert!(
        changed.is_empty(),
        "the failed pull changed the store{}:\n{}\n{ctx}",
        if strict {
            ""
        } else {
            " (beyond objects and layer streams kept for a re-run)"
        },
        changed.join("\n")
    );
    let new_objects = after
        .files
        .keys()
        .filter(|k| !before.files.contains_key(*k))
        .count();
    if new_objects > 0 {
        eprintln!("NOTE: the failed pull left {new_objects} new path(s) for a re-run");
    }
    let findings = fsck_findings(store);
    let bad: Vec<&(String, String)> = findings
        .iter()
        .filter(|(k, _)| strict || k != "orphan-object")
        .collect();
    assert!(
        bad.is_empty(),
        "fsck after the failed pull: {bad:#?}\n{ctx}"
    );
}

/// Run a failing pull with `--quiet` and check it fails cleanly.
fn pull_fails(
    store: &TempStore,
    env: &ClientEnv,
    args: &[&str],
    reference: &str,
    what: &[&str],
    strict: bool,
) -> String {
    let before = snap(store);
    let mut a = vec!["--quiet"];
    a.extend_from_slice(args);
    let mut c = pull_cmd(store, env, &a, reference);
    let out = run_t(&mut c, 300);
    let line = assert_failed_cleanly(store, &before, &out, what, strict, &describe(&c));
    eprintln!("{reference}: {line}");
    line
}

// ---------------------------------------------------------------------------
// 1. Same image and tree as podman pull

/// `podman pull` (isolated store) of `reference` with the client env.
fn podman_pull(p: &IsolatedPodman, env: &ClientEnv, reference: &str) -> Value {
    let mut c = p.cmd(["pull", "-q", "--tls-verify=false", reference]);
    env.apply(&mut c);
    let out = run_t(&mut c, 600);
    assert!(
        out.status.success(),
        "{} failed: {}",
        describe(&c),
        stderr(&out)
    );
    let id = stdout(&out).trim().to_string();
    let v = Podman::json(p, ["image", "inspect", &id]);
    v[0].clone()
}

#[test]
fn pull_then_view_matches_podman_pull() {
    let fx = prerequisites();
    let rf = registry_fixtures();
    let env = ClientEnv::new();
    let reg = Registry::open();
    let proxy = Proxy::new(&reg);
    for tag in ["gzip", "zstd-chunked"] {
        let repo_tag = format!("fixture/derived:{tag}");
        let reference = format!("docker://{}/{repo_tag}", proxy.addr());
        let store = TempStore::new();
        proxy.reset();
        let rep = pull_ok(&store, &env, &[], &reference);
        check_report(&rep, &repo_tag, Some(&proxy));
        let id = rep["Id"].as_str().expect("Id").to_string();
        assert_eq!(id, fx.get("FIXTURE_DERIVED_ID"), "{tag}: image ID");
        assert!(
            modes(&rep).iter().all(|m| m == "full"),
            "{tag}: a fresh pull into an empty store downloads every layer whole: {rep:#}"
        );
        assert_eq!(rep["AlreadyPresent"], Value::Bool(false), "{rep:#}");
        store.assert_layers_bit_exact(&id, &registry_diff_ids(&repo_tag));
        eprintln!(
            "{tag}: BytesDownloaded {} of BytesImage {}; the registry sent {}",
            rep["BytesDownloaded"],
            rep["BytesImage"],
            proxy.bytes()
        );

        let native = IsolatedPodman::new();
        let n = podman_pull(&native, &env, &reference);
        assert_eq!(n["Id"].as_str(), Some(id.as_str()), "{tag}: podman's ID");
        assert_eq!(
            n["Digest"].as_str(),
            Some(rf.digest(&repo_tag)),
            "{tag}: podman's Digest"
        );

        let m = ViewMount::new(&store, &[]);
        let view = ViewPodman::new(&m);
        let vi = view.json(["image", "inspect", &id]);
        for k in [
            "Id", "Digest", "RepoTags", "Created", "Config", "RootFS", "Size",
        ] {
            assert_eq!(
                vi[0][k], n[k],
                "{tag}: podman image inspect {k}: view (left) vs podman pull (right)"
            );
        }
        let v_dump = tree_dump(&|a| view.run_cmd(a[0], &a[1..]), &id);
        let n_dump = tree_dump(&|a| native.run_cmd(a[0], &a[1..]), &id);
        assert!(
            n_dump.len() > 1000,
            "native dump has {} paths",
            n_dump.len()
        );
        assert_dump_has(
            &n_dump,
            "/srv/fixture/big.bin",
            &["regular file", "sha256="],
        );
        assert_dump_has(
            &n_dump,
            "/srv/fixture/hardlink-third",
            &["hardlink-of=/srv/fixture/a/hardlink-src"],
        );
        let diff = listing_diff(&n_dump, &v_dump);
        assert!(
            diff.is_empty(),
            "{tag}: container tree from the view (pulled by unistore) vs podman pull \
             (removed = only podman, added = only view):\n{diff}"
        );
    }
}

// ---------------------------------------------------------------------------
// 2. Layer sharing

#[test]
fn pull_second_image_sharing_base_downloads_only_its_own_layers() {
    prerequisites();
    let rf = registry_fixtures();
    let env = ClientEnv::new();
    let reg = Registry::open();
    let proxy = Proxy::new(&reg);
    let store = TempStore::new();
    pull_ok(
        &store,
        &env,
        &[],
        &format!("docker://{}/fixture/derived:gzip", proxy.addr()),
    );
    proxy.reset();
    let rep = pull_ok(
        &store,
        &env,
        &[],
        &format!("docker://{}/fixture/app:gzip", proxy.addr()),
    );
    check_report(&rep, "fixture/app:gzip", Some(&proxy));
    assert_eq!(
        rep["Id"].as_str(),
        Some(fixtures().get("FIXTURE_APP_ID")),
        "{rep:#}"
    );
    assert_eq!(modes(&rep), ["present", "full"], "{rep:#}");
    assert_eq!(u64_of(&rep, "LayersReused"), 1, "{rep:#}");
    let m = rf.manifest("fixture/app:gzip");
    let base_blob = m["layers"][0]["digest"].as_str().expect("digest");
    let own = rf.blob(rf.digest("fixture/app:gzip")).len() as u64
        + m["config"]["size"].as_u64().expect("size")
        + m["layers"][1]["size"].as_u64().expect("size");
    assert_eq!(
        proxy.bytes_for(base_blob),
        0,
        "the shared base layer was requested:\n{}",
        proxy.summary()
    );
    assert!(
        u64_of(&rep, "BytesDownloaded") <= own,
        "BytesDownloaded {} > manifest + config + app layer = {own}: {rep:#}",
        rep["BytesDownloaded"]
    );
    assert!(
        proxy.bytes() < own + 16 * 1024,
        "the registry sent {} bytes for app:gzip, its own blobs are {own}:\n{}",
        proxy.bytes(),
        proxy.summary()
    );
    store.assert_layers_bit_exact(
        fixtures().get("FIXTURE_APP_ID"),
        &registry_diff_ids("fixture/app:gzip"),
    );
    // Pulling it again downloads the manifest only.
    proxy.reset();
    let again = pull_ok(
        &store,
        &env,
        &[],
        &format!("docker://{}/fixture/app:gzip", proxy.addr()),
    );
    assert_eq!(again["AlreadyPresent"], Value::Bool(true), "{again:#}");
    assert!(
        again["LayerReports"]
            .as_array()
            .is_none_or(|a| a.iter().all(|l| l["Mode"] == "present")),
        "{again:#}"
    );
    assert!(
        proxy.bytes() < 16 * 1024,
        "a re-pull of a present image transferred {} bytes:\n{}",
        proxy.bytes(),
        proxy.summary()
    );
}

// ---------------------------------------------------------------------------
// 3. zstd:chunked: only the changed files

/// The top layer of an update image in the registry: (blob digest, blob size).
fn top_layer(repo_tag: &str) -> (String, u64) {
    let m = registry_fixtures().manifest(repo_tag);
    let l = m["layers"]
        .as_array()
        .expect("layers")
        .last()
        .expect("a layer");
    (
        l["digest"].as_str().expect("digest").to_string(),
        l["size"].as_u64().expect("size"),
    )
}

/// Bytes of the three files update:2 changed (large.bin is incompressible).
const UPDATE_CHANGED_MIN: u64 = 8 * MIB;

fn check_update2(store: &TempStore, rep: &Value, proxy: &Proxy, what: &str) {
    let rf = registry_fixtures();
    check_report(rep, "fixture/update:2", Some(proxy));
    assert_eq!(
        rep["Id"].as_str(),
        Some(rf.get("REG_UPDATE2_ID")),
        "{what}: {rep:#}"
    );
    let (blob, size) = top_layer("fixture/update:2");
    let lr = layer_reports(rep);
    assert_eq!(lr[0]["Mode"], "present", "{what}: base layer: {rep:#}");
    assert_eq!(
        lr[1]["Mode"], "partial",
        "{what}: the changed zstd:chunked layer must be fetched partially: {rep:#}"
    );
    let sent = proxy.bytes();
    eprintln!(
        "{what}: update:2 top layer blob {size} bytes; the registry sent {sent} bytes in all \
         ({:.1}%), {} for the layer; BytesDownloaded {}",
        100.0 * sent as f64 / size as f64,
        proxy.bytes_for(&blob),
        rep["BytesDownloaded"]
    );
    assert!(
        sent < size / 4,
        "{what}: the registry sent {sent} bytes for an update whose changed layer is {size} \
         bytes and whose changed files are ~{UPDATE_CHANGED_MIN}:\n{}",
        proxy.summary()
    );
    assert!(
        proxy.bytes_for(&blob) >= UPDATE_CHANGED_MIN,
        "{what}: only {} bytes of the changed layer arrived, the changed large.bin alone is \
         {UPDATE_CHANGED_MIN}:\n{}",
        proxy.bytes_for(&blob),
        proxy.summary()
    );
    let ranged = proxy
        .requests()
        .iter()
        .filter(|r| r.path.contains(&blob) && r.range.is_some())
        .count();
    assert!(
        ranged > 0,
        "{what}: no range request for the changed layer:\n{}",
        proxy.summary()
    );
    store.assert_layers_bit_exact(
        rf.get("REG_UPDATE2_ID"),
        &registry_diff_ids("fixture/update:2"),
    );
}

#[test]
fn pull_zstd_chunked_update_downloads_only_changed_files() {
    prerequisites();
    let rf = registry_fixtures();
    let env = ClientEnv::new();
    let reg = Registry::open();
    let proxy = Proxy::new(&reg);
    let store = TempStore::new();
    let r1 = pull_ok(
        &store,
        &env,
        &[],
        &format!("docker://{}/fixture/update:1", proxy.addr()),
    );
    check_report(&r1, "fixture/update:1", Some(&proxy));
    assert_eq!(r1["Id"].as_str(), Some(rf.get("REG_UPDATE1_ID")));
    proxy.reset();
    let r2 = pull_ok(
        &store,
        &env,
        &[],
        &format!("docker://{}/fixture/update:2", proxy.addr()),
    );
    check_update2(&store, &r2, &proxy, "update:1 -> update:2");
    // Both images read back bit-exactly, and update:1 is unharmed.
    store.assert_layers_bit_exact(
        rf.get("REG_UPDATE1_ID"),
        &registry_diff_ids("fixture/update:1"),
    );
}

#[test]
fn pull_zstd_chunked_reuses_files_of_other_images() {
    prerequisites();
    let env = ClientEnv::new();
    let reg = Registry::open();
    let proxy = Proxy::new(&reg);
    // derived:1 (imported from its docker-archive) holds big.bin and the 2000
    // small files that update:2's layer has too.
    let store = TempStore::new();
    store.import(&format!(
        "docker-archive:{}",
        fixtures().get("FIXTURE_DERIVED_DOCKER_TAR")
    ));
    let rep = pull_ok(
        &store,
        &env,
        &[],
        &format!("docker://{}/fixture/update:2", proxy.addr()),
    );
    check_update2(&store, &rep, &proxy, "derived:1 -> update:2");
}

/// skopeo 1.9.3 wrote fixture/base:zstd-chunked without the trailing record
/// padding of base:1's GNU tar: the blob decompresses to 1024 bytes less
/// than the config's diffID (podman 4.3 stores it anyway, under the wrong
/// layer digest). unistore refuses it: the layer is not the config's.
#[test]
fn pull_zstd_chunked_layer_not_matching_its_diffid_fails_cleanly() {
    prerequisites();
    let env = ClientEnv::new();
    let reg = Registry::open();
    // An empty store: every fixture image has the base layer.
    let store = TempStore::new();
    pull_fails(
        &store,
        &env,
        &["--tls-verify=false"],
        &format!("docker://{}/fixture/base:zstd-chunked", reg.addr()),
        &["digest", "diffid", "mismatch"],
        false,
    );
}

// ---------------------------------------------------------------------------
// 4. Media types, manifest lists, digests, import alias, registries.conf

#[test]
fn pull_media_types_index_digest_and_import_alias() {
    prerequisites();
    let rf = registry_fixtures();
    let fx = fixtures();
    let env = ClientEnv::new();
    let reg = Registry::open();
    let proxy = Proxy::new(&reg);
    let a = proxy.addr();
    let app = fx.get("FIXTURE_APP_ID");

    // Docker schema 2.
    let s = TempStore::new();
    let r = pull_ok(&s, &env, &[], &format!("docker://{a}/fixture/app:v2s2"));
    check_report(&r, "fixture/app:v2s2", None);
    s.assert_layers_bit_exact(app, &registry_diff_ids("fixture/app:v2s2"));

    // By digest.
    let s = TempStore::new();
    let d = rf.digest("fixture/app:zstd-chunked");
    let r = pull_ok(&s, &env, &[], &format!("docker://{a}/fixture/app@{d}"));
    check_report(&r, "fixture/app:zstd-chunked", None);
    s.assert_layers_bit_exact(app, &registry_diff_ids("fixture/app:zstd-chunked"));

    // `import docker://` is the same pull.
    let s = TempStore::new();
    let mut c = s.cmd(["import", "--json", "--tls-verify=false"]);
    c.arg(format!("docker://{a}/fixture/app:gzip"));
    env.apply(&mut c);
    let out = run_t(&mut c, 300);
    assert!(
        out.status.success(),
        "{} failed: {}",
        describe(&c),
        stderr(&out)
    );
    let r = json_of(&out, "import docker://");
    assert_eq!(r["Id"].as_str(), Some(app), "{r:#}");

    // A multi-platform index: the host's platform (amd64 -> app), or --platform.
    let host_arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let s = TempStore::new();
    let multi = format!("docker://{a}/fixture/multi:1");
    if host_arch == "amd64" {
        let r = pull_ok(&s, &env, &[], &multi);
        assert_eq!(r["Id"].as_str(), Some(app), "default platform: {r:#}");
    }
    let r = pull_ok(&s, &env, &["--platform", "linux/arm64"], &multi);
    assert_eq!(
        r["Id"].as_str(),
        Some(fx.get("FIXTURE_BASE_ID")),
        "--platform linux/arm64 picks base: {r:#}"
    );
    let r = pull_ok(&s, &env, &["--platform", "linux/amd64"], &multi);
    assert_eq!(
        r["Id"].as_str(),
        Some(app),
        "--platform linux/amd64 picks app: {r:#}"
    );
    pull_fails(
        &s,
        &env,
        &["--tls-verify=false", "--platform", "linux/s390x"],
        &multi,
        &["platform", "s390x"],
        true,
    );
}

#[test]
fn pull_honours_registries_conf_insecure_and_mirror() {
    prerequisites();
    let env = ClientEnv::new();
    let reg = Registry::open();
    let proxy = Proxy::new(&reg);
    let a = proxy.addr();
    let app = fixtures().get("FIXTURE_APP_ID");
    // Without --tls-verify=false or an insecure entry, plain HTTP is refused.
    let s = store_with_base();
    pull_fails(
        &s,
        &env,
        &[],
        &format!("docker://{a}/fixture/app:gzip"),
        &[
            "tls",
            "https",
            "http",
            "certificate",
            "handshake",
            "insecure",
        ],
        true,
    );
    // insecure = true in registries.conf.
    env.set_registries_conf(&format!(
        "[[registry]]\nlocation = \"{a}\"\ninsecure = true\n"
    ));
    let mut c = pull_cmd(
        &s,
        &env,
        &["--json", "--quiet"],
        &format!("docker://{a}/fixture/app:gzip"),
    );
    let out = run_t(&mut c, 300);
    assert!(
        out.status.success(),
        "{} with `insecure = true` failed: {}",
        describe(&c),
        stderr(&out)
    );
    assert_eq!(json_of(&out, "pull")["Id"].as_str(), Some(app));
    assert_eq!(s.images().len(), 2, "base and app");
    // A mirror: a registry name that cannot resolve (.invalid), mirrored here.
    env.set_registries_conf(&format!(
        "[[registry]]\nlocation = \"registry.unistore.invalid\"\n\
         [[registry.mirror]]\nlocation = \"{a}\"\ninsecure = true\n"
    ));
    let s = TempStore::new();
    proxy.reset();
    let mut c = pull_cmd(
        &s,
        &env,
        &["--json", "--quiet"],
        "docker://registry.unistore.invalid/fixture/app:gzip",
    );
    let out = run_t(&mut c, 300);
    assert!(
        out.status.success(),
        "{} through a registries.conf mirror failed: {}",
        describe(&c),
        stderr(&out)
    );
    assert_eq!(json_of(&out, "pull")["Id"].as_str(), Some(app));
    assert!(
        proxy.bytes() > 0,
        "the mirror was not used:\n{}",
        proxy.summary()
    );
}

// ---------------------------------------------------------------------------
// 5. Auth

#[test]
fn pull_auth_without_credentials_fails_cleanly() {
    prerequisites();
    let env = ClientEnv::new();
    let reg = Registry::auth();
    let store = store_with_base();
    pull_fails(
        &store,
        &env,
        &["--tls-verify=false"],
        &format!("docker://{}/private/app:1", reg.addr()),
        AUTH_ERROR_WORDS,
        true,
    );
}

#[test]
fn pull_auth_wrong_credentials_fails_cleanly() {
    prerequisites();
    let rf = registry_fixtures();
    let env = ClientEnv::new();
    let reg = Registry::auth();
    let store = store_with_base();
    let r = format!("docker://{}/private/app:1", reg.addr());
    for creds in [
        format!("{}:wrong-password", rf.get("REG_USER")),
        format!("nobody:{}", rf.get("REG_PASS")),
    ] {
        pull_fails(
            &store,
            &env,
            &["--tls-verify=false", "--creds", &creds],
            &r,
            AUTH_ERROR_WORDS,
            true,
        );
    }
    // A wrong password in an auth file too.
    let f = tempdir("unistore-it-auth-");
    let authfile = f.path().join("auth.json");
    let token = base64_std(format!("{}:wrong", rf.get("REG_USER")).as_bytes());
    fs::write(
        &authfile,
        format!(
            "{{\"auths\":{{\"{}\":{{\"auth\":\"{token}\"}}}}}}",
            reg.addr()
        ),
    )
    .expect("auth.json");
    pull_fails(
        &store,
        &env,
        &[
            "--tls-verify=false",
            "--authfile",
            &authfile.to_string_lossy(),
        ],
        &r,
        AUTH_ERROR_WORDS,
        true,
    );
}

#[test]
fn pull_auth_with_podman_login_authfile_and_creds() {
    prerequisites();
    let rf = registry_fixtures();
    let env = ClientEnv::new();
    let reg = Registry::auth();
    let app = fixtures().get("FIXTURE_APP_ID");
    let r = format!("docker://{}/private/app:1", reg.addr());
    // The real podman login writes the auth file.
    let f = tempdir("unistore-it-auth-");
    let authfile = f.path().join("auth.json");
    let p = IsolatedPodman::new();
    let mut c = p.cmd([
        "login",
        "--authfile",
        &authfile.to_string_lossy(),
        "--tls-verify=false",
        "-u",
        rf.get("REG_USER"),
        "--password-stdin",
        &reg.addr(),
    ]);
    env.apply(&mut c);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("podman login");
    {
        use std::io::Write;
        let mut si = child.stdin.take().expect("stdin");
        si.write_all(rf.get("REG_PASS").as_bytes())
            .expect("password");
    }
    let out = child.wait_with_output().expect("podman login");
    assert!(
        out.status.success(),
        "podman login failed: {}",
        stderr(&out)
    );
    let written: Value =
        serde_json::from_slice(&fs::read(&authfile).expect("auth.json")).expect("JSON");
    assert!(
        written["auths"][reg.addr()]["auth"].is_string(),
        "podman login wrote {written}"
    );

    let s = TempStore::new();
    let rep = pull_ok(&s, &env, &["--authfile", &authfile.to_string_lossy()], &r);
    assert_eq!(rep["Id"].as_str(), Some(app), "--authfile: {rep:#}");

    // REGISTRY_AUTH_FILE as podman.
    let s = TempStore::new();
    let mut c = pull_cmd(&s, &env, &["--tls-verify=false", "--json", "--quiet"], &r);
    c.env("REGISTRY_AUTH_FILE", &authfile);
    let out = run_t(&mut c, 300);
    assert!(
        out.status.success(),
        "REGISTRY_AUTH_FILE={}: {}",
        authfile.display(),
        stderr(&out)
    );
    assert_eq!(json_of(&out, "pull")["Id"].as_str(), Some(app));

    // --creds.
    let s = TempStore::new();
    let creds = format!("{}:{}", rf.get("REG_USER"), rf.get("REG_PASS"));
    let rep = pull_ok(&s, &env, &["--creds", &creds], &r);
    assert_eq!(rep["Id"].as_str(), Some(app), "--creds: {rep:#}");
    s.assert_layers_bit_exact(app, &registry_diff_ids("fixture/app:gzip"));
}

// ---------------------------------------------------------------------------
// 6. Errors leave the store unchanged

#[test]
fn pull_missing_tag_and_repository_fail_cleanly() {
    prerequisites();
    let env = ClientEnv::new();
    let reg = Registry::open();
    let store = store_with_base();
    for r in ["fixture/app:no-such-tag", "fixture/no-such-repo:1"] {
        pull_fails(
            &store,
            &env,
            &["--tls-verify=false"],
            &format!("docker://{}/{r}", reg.addr()),
            &["not found", "unknown", "404", "no-such"],
            true,
        );
    }
    // A digest the registry does not have.
    let missing = format!("sha256:{}", "0".repeat(64));
    pull_fails(
        &store,
        &env,
        &["--tls-verify=false"],
        &format!("docker://{}/fixture/app@{missing}", reg.addr()),
        &["not found", "unknown", "404", "0000000"],
        true,
    );
}

/// The same JSON with a different byte sequence (an extra trailing newline).
fn reencoded(manifest: &[u8]) -> Vec<u8> {
    let mut v = manifest.to_vec();
    v.extend_from_slice(b"\n");
    v
}

#[test]
fn pull_tampered_manifest_fails_cleanly() {
    prerequisites();
    let rf = registry_fixtures();
    let env = ClientEnv::new();
    let reg = Registry::open_private_copy();
    let store = store_with_base();
    let d = rf.digest("fixture/app:gzip");
    reg.replace_blob(d, &reencoded(&reg.blob(d)));
    // By digest: the bytes must hash to the digest asked for.
    pull_fails(
        &store,
        &env,
        &["--tls-verify=false"],
        &format!("docker://{}/fixture/app@{d}", reg.addr()),
        &["digest"],
        true,
    );
}

#[test]
fn pull_tampered_manifest_by_tag_fails_cleanly() {
    prerequisites();
    let rf = registry_fixtures();
    let env = ClientEnv::new();
    let reg = Registry::open_private_copy();
    let store = store_with_base();
    let d = rf.digest("fixture/app:gzip");
    reg.replace_blob(d, &reencoded(&reg.blob(d)));
    // By tag: the registry's Docker-Content-Digest header still names the
    // original digest; the bytes do not match it.
    pull_fails(
        &store,
        &env,
        &["--tls-verify=false"],
        &format!("docker://{}/fixture/app:gzip", reg.addr()),
        &["digest"],
        true,
    );
}

#[test]
fn pull_tampered_layer_fails_cleanly() {
    prerequisites();
    let rf = registry_fixtures();
    let env = ClientEnv::new();
    let reg = Registry::open_private_copy();
    let m = rf.manifest("fixture/app:gzip");
    let blob = m["layers"][1]["digest"].as_str().expect("digest");
    // The same tar, gzip-compressed differently: valid data, wrong digest (and size).
    let orig = reg.blob(blob);
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&orig[..]), &mut tar)
        .expect("gunzip");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
    std::io::Write::write_all(&mut e, &tar).expect("gzip");
    std::io::Write::write_all(&mut e, &[0u8; 1024]).expect("gzip");
    let other = e.finish().expect("gzip");
    assert_ne!(sha256(&other), blob);
    reg.replace_blob(blob, &other);
    let store = store_with_base();
    pull_fails(
        &store,
        &env,
        &["--tls-verify=false"],
        &format!("docker://{}/fixture/app:gzip", reg.addr()),
        &["digest", "size", "mismatch", "verif", "bytes"],
        false,
    );
    // The same tar again, recompressed to exactly the original length (the
    // gzip header's comment field pads it): only the digest can tell.
    let same_len = gzip_of_len(&tar, orig.len());
    assert_ne!(sha256(&same_len), blob);
    reg.replace_blob(blob, &same_len);
    let store = store_with_base();
    pull_fails(
        &store,
        &env,
        &["--tls-verify=false"],
        &format!("docker://{}/fixture/app:gzip", reg.addr()),
        &["digest"],
        false,
    );
    // Same length, one byte flipped in the middle of the big derived layer.
    let dm = rf.manifest("fixture/derived:gzip");
    let big = dm["layers"][4]["digest"].as_str().expect("digest");
    let mut data = reg.blob(big);
    let mid = data.len() / 2;
    data[mid] ^= 0x55;
    reg.replace_blob(big, &data);
    let store = store_with_base();
    pull_fails(
        &store,
        &env,
        &["--tls-verify=false"],
        &format!("docker://{}/fixture/derived:gzip", reg.addr()),
        &[
            "digest", "mismatch", "verif", "corrupt", "gzip", "crc", "invalid",
        ],
        false,
    );
}

/// A valid gzip of `data` exactly `len` bytes long (padded with a header comment).
fn gzip_of_len(data: &[u8], len: usize) -> Vec<u8> {
    for level in [9, 6, 1, 0] {
        let gz = |comment: &[u8]| {
            let mut e = flate2::GzBuilder::new()
                .comment(comment)
                .write(Vec::new(), flate2::Compression::new(level));
            std::io::Write::write_all(&mut e, data).expect("gzip");
            e.finish().expect("gzip")
        };
        let base = gz(b"").len(); // the empty comment costs its NUL byte
        if base <= len {
            let out = gz(&vec![b'x'; len - base]);
            assert_eq!(out.len(), len);
            return out;
        }
    }
    panic!("cannot recompress {} bytes into {len}", data.len());
}

/// Words a network failure may be described with.
const NETWORK_WORDS: &[&str] = &[
    "connection",
    "reset",
    "closed",
    "eof",
    "network",
    "broken",
    "refused",
    "timed out",
    "timeout",
    "incomplete",
    "interrupted",
    "short",
    "body",
    "error sending",
    "error reading",
    "error decoding",
];

/// A fresh pull of derived:gzip into a store holding base, through `proxy`:
/// the bytes the registry sent.
fn fresh_derived_bytes(env: &ClientEnv, proxy: &Proxy) -> u64 {
    let s = store_with_base();
    proxy.reset();
    let r = pull_ok(
        &s,
        env,
        &[],
        &format!("docker://{}/fixture/derived:gzip", proxy.addr()),
    );
    check_report(&r, "fixture/derived:gzip", Some(proxy));
    proxy.bytes()
}

#[test]
fn pull_registry_cut_mid_pull_fails_cleanly_and_rerun_resumes() {
    prerequisites();
    let env = ClientEnv::new();
    let reg = Registry::open();
    let proxy = Proxy::new(&reg);
    let fresh = fresh_derived_bytes(&env, &proxy);
    assert!(fresh > 60 * MIB, "derived:gzip over base is {fresh} bytes");

    let store = store_with_base();
    let reference = format!("docker://{}/fixture/derived:gzip", proxy.addr());
    proxy.reset();
    let cut = 30 * MIB;
    proxy.cut_after(cut);
    pull_fails(
        &store,
        &env,
        &["--tls-verify=false"],
        &reference,
        NETWORK_WORDS,
        false,
    );
    assert!(proxy.is_down(), "the proxy never cut the connections");
    let before_cut = proxy.bytes();

    // The registry is back: the re-run completes and downloads less.
    proxy.revive();
    let (rep, rerun) = rerun_derived(&store, &env, &proxy, &reference);
    eprintln!(
        "fresh pull {fresh} bytes; cut after {before_cut}; re-run {rerun} bytes; modes {:?}",
        modes(&rep)
    );
    assert!(
        rerun < fresh,
        "the re-run after a cut downloaded {rerun} bytes, a fresh pull {fresh}\n{}",
        proxy.summary()
    );
    // What arrived before the cut is not downloaded again (within 1 MiB per layer).
    assert!(
        rerun + before_cut <= fresh + 6 * MIB,
        "the re-run downloaded {rerun} bytes after {before_cut} had arrived before the cut; \
         a fresh pull is {fresh}: it fetched again what had arrived (modes {:?})\n{}",
        modes(&rep),
        proxy.summary()
    );
    assert!(
        modes(&rep).iter().any(|m| m == "resumed"),
        "no layer was resumed: {rep:#}"
    );
}

#[test]
fn pull_registry_killed_mid_pull_fails_cleanly() {
    prerequisites();
    let env = ClientEnv::new();
    let mut reg = Registry::open();
    let proxy = Proxy::new(&reg);
    proxy.throttle(16 * MIB);
    let store = store_with_base();
    let before = snap(&store);
    let mut c = pull_cmd(
        &store,
        &env,
        &["--tls-verify=false", "--quiet"],
        &format!("docker://{}/fixture/derived:gzip", proxy.addr()),
    );
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().expect("spawn pull");
    let t = Instant::now();
    while proxy.bytes() < 10 * MIB && t.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let at = proxy.bytes();
    reg.kill();
    let (out, done) = wait_bounded(child, Duration::from_secs(180));
    assert!(done, "the pull hung after the registry died");
    eprintln!("registry killed after {at} bytes");
    let line = assert_failed_cleanly(&store, &before, &out, NETWORK_WORDS, false, &describe(&c));
    eprintln!("registry killed: {line}");
}

/// Wait for a child with a limit (SIGKILL after it); (output, finished in time).
fn wait_bounded(mut child: std::process::Child, limit: Duration) -> (Output, bool) {
    let t = Instant::now();
    let mut done = true;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            done = false;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().expect("wait"), done)
}

#[test]
fn pull_sigkill_mid_pull_leaves_no_image_and_rerun_completes() {
    prerequisites();
    let env = ClientEnv::new();
    let reg = Registry::open();
    let proxy = Proxy::new(&reg);
    let fresh = fresh_derived_bytes(&env, &proxy);
    let store = store_with_base();
    let before = snap(&store);
    let reference = format!("docker://{}/fixture/derived:gzip", proxy.addr());
    proxy.reset();
    proxy.throttle(16 * MIB);
    let mut c = pull_cmd(&store, &env, &["--tls-verify=false", "--quiet"], &reference);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().expect("spawn pull");
    let t = Instant::now();
    while proxy.bytes() < 30 * MIB && t.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the pull ended before it could be killed"
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    let killed_at = proxy.bytes();
    check_unchanged(&store, &before, false, "after SIGKILL of the pull");

    proxy.throttle(0);
    let (rep, rerun) = rerun_derived(&store, &env, &proxy, &reference);
    eprintln!(
        "fresh {fresh}; SIGKILL after {killed_at}; re-run {rerun}; modes {:?}",
        modes(&rep)
    );
    assert!(
        rerun < fresh,
        "the re-run after SIGKILL downloaded {rerun} bytes, a fresh pull {fresh}"
    );
    assert!(
        fsck_findings(&store)
            .iter()
            .all(|(k, _)| k == "orphan-object"),
        "fsck after the completed re-run: {:?}",
        fsck_findings(&store)
    );
}

// ---------------------------------------------------------------------------
// 7. Progress stream

#[test]
fn pull_progress_json_lines_end_with_done() {
    prerequisites();
    let rf = registry_fixtures();
    let env = ClientEnv::new();
    let reg = Registry::open();
    let store = store_with_base();
    let mut c = pull_cmd(
        &store,
        &env,
        &["--tls-verify=false", "--progress=json"],
        &format!("docker://{}/fixture/derived:gzip", reg.addr()),
    );
    let out = run_t(&mut c, 300);
    assert!(
        out.status.success(),
        "{} failed: {}",
        describe(&c),
        stderr(&out)
    );
    let text = stdout(&out);
    let events: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("--progress=json line is not JSON ({e}): {l:?}"))
        })
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| {
            e["event"]
                .as_str()
                .unwrap_or_else(|| panic!("event without \"event\": {e}"))
        })
        .collect();
    assert_eq!(
        kinds.last(),
        Some(&"done"),
        "the stream does not end with done:\n{text}"
    );
    assert_eq!(kinds.iter().filter(|k| **k == "done").count(), 1, "{text}");
    let m = rf.manifest("fixture/derived:gzip");
    let layers: Vec<&str> = m["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest"))
        .collect();
    // Every layer starts and finishes; the big one reports progress.
    for (i, d) in layers.iter().enumerate() {
        let mentions =
            |e: &Value| e.to_string().contains(d) || e["index"].as_u64() == Some(i as u64);
        assert!(
            events
                .iter()
                .any(|e| e["event"] == "layer-start" && mentions(e)),
            "no layer-start for layer {i} {d}:\n{text}"
        );
        assert!(
            events
                .iter()
                .any(|e| e["event"] == "layer-done" && mentions(e)),
            "no layer-done for layer {i} {d}:\n{text}"
        );
    }
    let progress_big = events
        .iter()
        .filter(|e| e["event"] == "layer-progress" && e["index"].as_u64() == Some(4))
        .count();
    assert!(
        progress_big >= 2,
        "the 64 MiB layer reported {progress_big} layer-progress events:\n{text}"
    );
    let set: BTreeSet<&str> = kinds.iter().copied().collect();
    eprintln!("progress events: {set:?}, {} lines", kinds.len());
    assert!(
        stderr(&out).trim().is_empty() || !stderr(&out).contains('\r'),
        "--progress=json drew a terminal bar on stderr"
    );
}

// ---------------------------------------------------------------------------
// 0. The harness itself (no unistore involved): the oracle must work

#[test]
fn pull_harness_registry_proxy_and_podman_pull() {
    prerequisites();
    let rf = registry_fixtures();
    let env = ClientEnv::new();
    let reg = Registry::open();
    let auth = Registry::auth();
    assert_eq!(
        http_status(reg.port(), "/v2/"),
        Some(200),
        "open registry /v2/"
    );
    assert_eq!(
        http_status(auth.port(), "/v2/"),
        Some(401),
        "auth registry /v2/ without credentials"
    );
    let proxy = Proxy::new(&reg);
    // podman pulls through the proxy; the proxy counts at least every blob byte.
    let p = IsolatedPodman::new();
    let repo_tag = "fixture/derived:zstd-chunked";
    let n = podman_pull(&p, &env, &format!("docker://{}/{repo_tag}", proxy.addr()));
    assert_eq!(n["Id"].as_str(), Some(fixtures().get("FIXTURE_DERIVED_ID")));
    let m = rf.manifest(repo_tag);
    let blobs: u64 = m["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["size"].as_u64().expect("size"))
        .sum();
    eprintln!(
        "podman pull {repo_tag}: blobs {blobs}, proxy {}",
        proxy.bytes()
    );
    assert!(
        proxy.bytes() >= blobs && proxy.bytes() < blobs + MIB,
        "proxy count {} vs layer blobs {blobs}:\n{}",
        proxy.bytes(),
        proxy.summary()
    );
    for l in m["layers"].as_array().expect("layers") {
        let d = l["digest"].as_str().expect("digest");
        assert!(
            proxy.bytes_for(d) >= l["size"].as_u64().expect("size"),
            "per-path count of {d}:\n{}",
            proxy.summary()
        );
    }
    // A cut after 5 MiB makes podman's pull fail; revived, it works again.
    let p2 = IsolatedPodman::new();
    proxy.reset();
    proxy.cut_after(5 * MIB);
    let mut c = p2.cmd([
        "pull",
        "-q",
        "--tls-verify=false",
        &format!("docker://{}/fixture/derived:gzip", proxy.addr()),
    ]);
    env.apply(&mut c);
    let out = run_t(&mut c, 300);
    assert!(
        !out.status.success(),
        "podman pull succeeded through a proxy that cut after 5 MiB"
    );
    assert!(proxy.is_down());
    assert!(
        proxy.bytes() <= 5 * MIB,
        "the proxy sent {} bytes after a cut at 5 MiB",
        proxy.bytes()
    );
    proxy.revive();
    proxy.reset();
    proxy.throttle(64 * MIB);
    let n2 = podman_pull(
        &p2,
        &env,
        &format!("docker://{}/fixture/app:gzip", proxy.addr()),
    );
    assert_eq!(n2["Id"].as_str(), Some(fixtures().get("FIXTURE_APP_ID")));
    // Tampering a private copy leaves the shared storage alone.
    let copy = Registry::open_private_copy();
    let d = rf.digest("fixture/app:gzip");
    copy.replace_blob(d, &reencoded(&copy.blob(d)));
    assert_eq!(sha256(&rf.blob(d)), d, "the shared storage was modified");
    assert_ne!(sha256(&copy.blob(d)), d);
}
