//! The containers-storage view, through the real FUSE mount, driven by the
//! real podman and skopeo (podman 4.3.1 here), compared with podman's own
//! storage of the same images.
//!
//! 1. `podman images` / `image inspect` from the view agree with `podman load`;
//! 2. the tree a container sees (types, modes, owners, sizes, sha256, mtimes,
//!    symlinks, xattrs, hard-link groups, devices) equals the native one;
//! 3. `podman save` / `push` from the view reproduce every layer bit-exactly;
//! 4. skopeo reads the view and copies from it with the right digests;
//! 5. imports and removals show up while mounted; shared layers stay;
//! 6. everything under the mount is read-only (EROFS);
//! 7. `default_permissions`: file modes and owners are enforced for non-root;
//! 8. a missing/truncated backing object gives EIO (and nothing else breaks);
//!    SIGKILL of the daemon gives ENOTCONN, and a fresh mount recovers;
//! 9. passthrough on and off serve identical bytes (read and mmap).
//!
//! Every test needs root, /dev/fuse, podman, skopeo and runc and fails, never
//! skips, without them. Mounts, daemons, podman mounts and containers are
//! cleaned up by guards, also when a test panics.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::common::*;

// ---------------------------------------------------------------------------
// Prerequisites and fixture facts

/// Everything these tests need; panics (never skips) when something is missing.
pub(crate) fn prerequisites() -> &'static Fixtures {
    require_root();
    match fs::metadata("/dev/fuse") {
        Ok(m) if m.file_type().is_char_device() => {}
        Ok(_) => panic!("/dev/fuse exists but is not a character device"),
        Err(e) => panic!(
            "/dev/fuse is not available ({e}); the view tests need a kernel with FUSE \
             (modprobe fuse) — they fail rather than skip"
        ),
    }
    for t in [
        "podman", "skopeo", "runc", "setpriv", "umount", "mount", "timeout",
    ] {
        require_tool(t);
    }
    fixtures()
}

const DERIVED: &str = "localhost/unistore-fixture/derived:1";
const APP: &str = "localhost/unistore-fixture/app:1";
const BASE: &str = "localhost/unistore-fixture/base:1";

/// (image name, docker-archive variable, image ID variable) of every fixture image.
const IMAGES: [(&str, &str, &str); 3] = [
    (BASE, "FIXTURE_BASE_DOCKER_TAR", "FIXTURE_BASE_ID"),
    (DERIVED, "FIXTURE_DERIVED_DOCKER_TAR", "FIXTURE_DERIVED_ID"),
    (APP, "FIXTURE_APP_DOCKER_TAR", "FIXTURE_APP_ID"),
];

fn archive_of(image: &str) -> String {
    let fx = fixtures();
    let (_, var, _) = IMAGES
        .iter()
        .find(|(n, _, _)| *n == image)
        .expect("a fixture image");
    fx.get(var).to_string()
}

fn id_of(image: &str) -> String {
    let (_, _, var) = IMAGES
        .iter()
        .find(|(n, _, _)| *n == image)
        .expect("a fixture image");
    fixtures().get(var).to_string()
}

/// `rootfs.diff_ids` of a fixture image (from its docker-archive config).
fn diff_ids_of(image: &str) -> Vec<String> {
    config_diff_ids(&docker_archive_config(Path::new(&archive_of(image))))
}

/// Layer IDs as c/image computes them (reference/containers-storage.md §5),
/// written independently of the product's code.
fn layer_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in diff_ids {
        let hex = d.strip_prefix("sha256:").expect("sha256 diff ID");
        let id = match out.last() {
            None => hex.to_string(),
            Some(prev) => hex::encode(Sha256::digest(format!("{prev}+{hex}").as_bytes())),
        };
        out.push(id);
    }
    out
}

/// sha256 of a file in the golden listing of /srv/fixture (written by the
/// fixture script from a native container).
fn golden_sha(rel: &str) -> String {
    let fx = fixtures();
    let listing = fs::read_to_string(fx.path("FIXTURE_DERIVED_LISTING")).expect("golden listing");
    let want = format!("./{rel}");
    listing
        .lines()
        .skip_while(|l| !l.starts_with("## sha256sum"))
        .find_map(|l| {
            let (h, p) = l.split_once("  ")?;
            (p == want).then(|| format!("sha256:{h}"))
        })
        .unwrap_or_else(|| panic!("golden listing has no sha256 of {want}"))
}

/// A store with these fixture images imported from their docker-archives.
fn store_with(images: &[&str]) -> TempStore {
    let s = TempStore::new();
    for img in images {
        let r = s.import(&format!("docker-archive:{}", archive_of(img)));
        assert_eq!(
            r["Id"].as_str(),
            Some(id_of(img).as_str()),
            "import of {img}: {r}"
        );
    }
    s
}

// ---------------------------------------------------------------------------
// Processes with a time limit (a hung FUSE request must fail the test, not hang it)

/// `cmd` wrapped in `timeout -k 10 SECS`.
pub(crate) fn with_timeout(cmd: &Command, secs: u64) -> Command {
    let mut t = Command::new("timeout");
    t.args(["-k", "10", &secs.to_string()])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => t.env(k, v),
            None => t.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        t.current_dir(d);
    }
    t
}

/// Run with a time limit; panics if it had to be killed.
pub(crate) fn run_t(cmd: &mut Command, secs: u64) -> Output {
    let mut t = with_timeout(cmd, secs);
    let out = run(&mut t);
    assert!(
        !matches!(out.status.code(), Some(124) | Some(137)),
        "HANG: {} did not finish within {secs}s (killed); stderr:\n{}",
        describe(cmd),
        stderr(&out)
    );
    out
}

/// Run with a time limit and panic with the output unless it succeeds.
pub(crate) fn run_ok_t(cmd: &mut Command, secs: u64) -> Output {
    let out = run_t(cmd, secs);
    assert!(
        out.status.success(),
        "{} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        describe(cmd),
        out.status,
        stdout(&out),
        stderr(&out)
    );
    out
}

pub(crate) fn json_of(out: &Output, what: &str) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what} printed invalid JSON ({e}):\n{}", stdout(out)))
}

/// Run `f` on another thread; panic if it does not return within `limit`
/// (the thread is left behind: a request stuck in FUSE cannot be cancelled).
fn within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("HANG: {what} did not return within {limit:?}"))
}

/// Read a whole file with a time limit.
fn read_file_t(path: &Path) -> std::io::Result<Vec<u8>> {
    let p = path.to_path_buf();
    within(
        &format!("reading {}", path.display()),
        Duration::from_secs(30),
        move || fs::read(p),
    )
}

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

const EIO: i32 = 5;
const EROFS: i32 = 30;
const ENOTCONN: i32 = 107;
const ECONNABORTED: i32 = 103;
const ECANCELED: i32 = 125;

// ---------------------------------------------------------------------------
// The mount guard

/// Whether `path` is a FUSE mount point right now.
fn fuse_mounted(path: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let want = path.to_string_lossy();
    info.lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let Some(sep) = f.iter().position(|&x| x == "-") else {
            return false;
        };
        f.len() > sep + 1 && f[4].replace("\\040", " ") == want && f[sep + 1].starts_with("fuse")
    })
}

/// The command line of process `pid`, if it exists.
fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        return None; // zombie or kernel thread
    }
    Some(
        raw.split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// Whether `args` is the daemon `unistore --store STORE mount MNT --foreground ...`.
fn is_daemon_of(args: &[String], store: &Path, mnt: &Path) -> bool {
    let s = store.to_string_lossy();
    let m = mnt.to_string_lossy();
    args.windows(2).any(|w| w[0] == "--store" && w[1] == *s)
        && args
            .windows(3)
            .any(|w| w[0] == "mount" && w[1] == *m && w[2] == "--foreground")
}

/// PIDs of the daemons serving `store` at `mnt`.
fn daemon_pids(store: &Path, mnt: &Path) -> Vec<u32> {
    fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| cmdline(pid).is_some_and(|a| is_daemon_of(&a, store, mnt)))
        .collect()
}

/// A mounted store (`unistore mount`, background daemon). Drop unmounts it
/// (`unistore umount`, then `umount -l`) and kills the daemon it started if
/// that is still alive afterwards.
pub(crate) struct ViewMount {
    store: PathBuf,
    mnt: tempfile::TempDir,
    pid: u32,
    options: Vec<String>,
}

impl ViewMount {
    /// `unistore --store S mount MNT [-o OPT]...` at a fresh mount point.
    pub(crate) fn new(store: &TempStore, options: &[&str]) -> ViewMount {
        let mut m = ViewMount {
            store: store.path().to_path_buf(),
            mnt: tempdir("unistore-it-mnt-"),
            pid: 0,
            options: options.iter().map(|s| s.to_string()).collect(),
        };
        m.mount();
        m
    }

    fn unistore(&self) -> Command {
        let mut c = Command::new(unistore_bin());
        c.arg("--store").arg(&self.store);
        for v in [
            "UNISTORE_CRASH_AT",
            "UNISTORE_CRASH_TRACE",
            "UNISTORE_STORE",
        ] {
            c.env_remove(v);
        }
        c
    }

    /// Mount (again) at the same place.
    fn mount(&mut self) {
        let mut c = self.unistore();
        c.arg("mount").arg(self.mnt.path());
        for o in &self.options {
            c.args(["-o", o]);
        }
        run_ok_t(&mut c, 90);
        assert!(
            fuse_mounted(self.path()),
            "`unistore mount` succeeded but {} is not a FUSE mount",
            self.path().display()
        );
        let pids = daemon_pids(&self.store, self.path());
        assert_eq!(
            pids.len(),
            1,
            "expected exactly one daemon `unistore --store {} mount {} --foreground`, found {pids:?}",
            self.store.display(),
            self.path().display()
        );
        self.pid = pids[0];
    }

    pub(crate) fn path(&self) -> &Path {
        self.mnt.path()
    }

    /// The containers-storage view (the additional image store).
    pub(crate) fn cstor(&self) -> PathBuf {
        self.path().join("containers-storage")
    }

    /// `overlay/<layer id>/diff` of layer `index` of a fixture image.
    fn diff(&self, image: &str, index: usize) -> PathBuf {
        let ids = layer_ids(&diff_ids_of(image));
        self.cstor().join("overlay").join(&ids[index]).join("diff")
    }

    fn daemon_alive(&self) -> bool {
        cmdline(self.pid).is_some_and(|a| is_daemon_of(&a, &self.store, self.path()))
    }

    /// The daemon's log (`STORE/tmp/mount-<mnt>.log`, written by `unistore mount`).
    fn log(&self) -> String {
        let name = format!(
            "mount-{}.log",
            self.path().display().to_string().replace('/', "_")
        );
        fs::read_to_string(self.store.join("tmp").join(name)).unwrap_or_default()
    }

    /// SIGKILL the daemon and wait until it is gone.
    fn kill_daemon(&self) {
        assert!(self.daemon_alive(), "daemon {} is not running", self.pid);
        let pid = rustix::process::Pid::from_raw(self.pid as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("kill -9");
        let t = Instant::now();
        while self.daemon_alive() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "daemon {} survived SIGKILL for 10s",
                self.pid
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ViewMount {
    fn drop(&mut self) {
        let mnt = self.mnt.path().to_path_buf();
        if fuse_mounted(&mnt) {
            let mut c = self.unistore();
            c.arg("umount").arg(&mnt);
            let ok = with_timeout(&c, 30)
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if !ok || fuse_mounted(&mnt) {
                let _ = Command::new("umount").arg("-l").arg(&mnt).status();
            }
        }
        // The daemon exits once the kernel drops the connection; kill only ours.
        let t = Instant::now();
        while self.pid != 0 && self.daemon_alive() && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.pid != 0 && self.daemon_alive() {
            if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

/// A bind mount, unmounted on drop.
struct BindMount(tempfile::TempDir);

impl BindMount {
    fn new(src: &Path) -> BindMount {
        let b = BindMount(tempdir("unistore-it-bind-"));
        run_ok(Command::new("mount").arg("--bind").arg(src).arg(b.0.path()));
        b
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let p = self.0.path();
        let ok = Command::new("umount")
            .arg(p)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(p).status();
        }
    }
}

// ---------------------------------------------------------------------------
// podman: one with the view as additional image store, one native

/// An empty isolated podman whose only images come from the view.
pub(crate) struct ViewPodman {
    p: IsolatedPodman,
    ais: PathBuf,
}

impl ViewPodman {
    pub(crate) fn new(m: &ViewMount) -> ViewPodman {
        ViewPodman {
            p: IsolatedPodman::new(),
            ais: m.cstor(),
        }
    }

    fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.p.cmd([
            "--storage-opt".to_string(),
            format!("additionalimagestore={}", self.ais.display()),
        ]);
        c.args(args);
        c
    }
}

/// Something podman can run commands with.
pub(crate) trait Podman {
    fn podman<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>;

    fn ok<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_ok_t(&mut self.podman(args), 300)
    }

    fn json<I, S>(&self, args: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.podman(args);
        let out = run_ok_t(&mut c, 300);
        json_of(&out, &describe(&c))
    }

    /// `podman run --rm <fixture run flags> IMAGE ARGS...`.
    fn run_cmd(&self, image: &str, args: &[&str]) -> Command {
        let mut v: Vec<String> = vec!["run".into(), "--rm".into(), "--pull".into(), "never".into()];
        v.extend(
            fixtures()
                .get("FIXTURE_PODMAN_RUN_FLAGS")
                .split_whitespace()
                .map(String::from),
        );
        v.push(image.into());
        v.extend(args.iter().map(|s| s.to_string()));
        self.podman(v)
    }

    /// Names of `podman images` (fresh invocation), sorted, each once
    /// (podman lists an image once per name, each time with all its names).
    fn image_names(&self) -> Vec<String> {
        let v = self.json(["images", "--format", "json"]);
        let names: std::collections::BTreeSet<String> = v
            .as_array()
            .expect("images JSON array")
            .iter()
            .flat_map(|i| {
                i["Names"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|n| n.as_str().expect("name").to_string())
            })
            .collect();
        names.into_iter().collect()
    }
}

impl Podman for ViewPodman {
    fn podman<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd(args)
    }
}

impl Podman for IsolatedPodman {
    fn podman<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd(args)
    }
}

/// A podman store of its own into which `podman load` put these fixture images.
fn native_podman(images: &[&str]) -> IsolatedPodman {
    let p = IsolatedPodman::new();
    for img in images {
        let out = Podman::ok(&p, ["load", "-q", "-i", &archive_of(img)]);
        assert!(
            stdout(&out).contains(img),
            "podman load did not load {img}: {}",
            stdout(&out)
        );
    }
    p
}

/// A detached container, removed (`rm -f`) on drop.
struct Container<'a, P: Podman> {
    podman: &'a P,
    name: String,
}

impl<'a, P: Podman> Container<'a, P> {
    fn start(podman: &'a P, name: &str, image: &str, args: &[&str]) -> Self {
        let mut v: Vec<String> = vec!["run".into(), "-d".into(), "--pull".into(), "never".into()];
        v.extend(["--name".to_string(), name.to_string()]);
        v.extend(
            fixtures()
                .get("FIXTURE_PODMAN_RUN_FLAGS")
                .split_whitespace()
                .map(String::from),
        );
        v.push(image.into());
        v.extend(args.iter().map(|s| s.to_string()));
        podman.ok(v);
        Container {
            podman,
            name: name.to_string(),
        }
    }

    fn exec(&self, args: &[&str]) -> Output {
        let mut v = vec!["exec", self.name.as_str()];
        v.extend_from_slice(args);
        self.podman.ok(v)
    }
}

impl<P: Podman> Drop for Container<'_, P> {
    fn drop(&mut self) {
        let c = self
            .podman
            .podman(["rm", "-f", "-t", "0", self.name.as_str()]);
        let _ = with_timeout(&c, 60).output();
    }
}

// ---------------------------------------------------------------------------
// 1. podman images / image inspect

/// Replace a graph-root prefix in every string of a JSON value.
fn replace_prefix(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::String(s) => *s = s.replace(from, to),
        Value::Array(a) => a.iter_mut().for_each(|x| replace_prefix(x, from, to)),
        Value::Object(o) => o.values_mut().for_each(|x| replace_prefix(x, from, to)),
        _ => {}
    }
}

fn by_id(list: &Value) -> BTreeMap<String, Value> {
    list.as_array()
        .expect("JSON array")
        .iter()
        .map(|i| (i["Id"].as_str().expect("Id").to_string(), i.clone()))
        .collect()
}

#[test]
fn view_podman_images_and_inspect_match_podman_load() {
    prerequisites();
    let all: Vec<&str> = IMAGES.iter().map(|(n, _, _)| *n).collect();
    let store = store_with(&all);
    let m = ViewMount::new(&store, &[]);
    let view = ViewPodman::new(&m);
    let native = native_podman(&all);

    let v_images = view.json(["images", "--format", "json"]);
    let n_images = native.json(["images", "--format", "json"]);
    let (mut v_map, mut n_map) = (by_id(&v_images), by_id(&n_images));
    let want_ids: Vec<String> = all.iter().map(|i| id_of(i)).collect();
    assert_eq!(
        v_map.keys().cloned().collect::<Vec<_>>(),
        {
            let mut w = want_ids.clone();
            w.sort();
            w
        },
        "podman images from the view lists exactly the imported images:\n{v_images:#}"
    );
    for id in &want_ids {
        let v = v_map.get_mut(id).expect("listed");
        let n = n_map
            .get_mut(id)
            .unwrap_or_else(|| panic!("podman load gave no image {id}:\n{n_images:#}"));
        // Images from an additional image store are read-only; podman's own are not
        // (podman omits ReadOnly when false).
        assert_eq!(v["ReadOnly"], Value::Bool(true), "view image {id} is R/O");
        assert_ne!(n["ReadOnly"], Value::Bool(true), "native image {id}");
        v.as_object_mut().expect("object").remove("ReadOnly");
        n.as_object_mut().expect("object").remove("ReadOnly");
        // Everything else must be identical: Id, Digest (manifest digest: the
        // view serves the manifest podman load stores, byte for byte),
        // RepoDigests, Names, Size (layer diff-sizes + big-data sizes: the view
        // publishes the same diff-size and big-data sizes), Created, Labels, History.
        assert_eq!(
            v, n,
            "podman images entry of {id}: view (left) vs podman load (right)"
        );
        assert!(
            v["Digest"]
                .as_str()
                .is_some_and(|d| d.starts_with("sha256:")),
            "view image {id} has a Digest: {v}"
        );
        assert!(
            !v["RepoDigests"].as_array().is_none_or(|a| a.is_empty()),
            "view image {id} has RepoDigests: {v}"
        );
    }

    // podman image inspect: identical except the graph root in GraphDriver.Data
    // (LowerDir/UpperDir/WorkDir). After replacing the root the paths must
    // match too, which checks the layer IDs (overlay/<id>/diff) of every layer.
    let v_root = m.cstor().display().to_string();
    let n_root = native.root().display().to_string();
    for img in &all {
        let mut vi = view.json(["image", "inspect", img]);
        let mut ni = native.json(["image", "inspect", img]);
        replace_prefix(&mut vi, &v_root, "<GRAPHROOT>");
        replace_prefix(&mut ni, &n_root, "<GRAPHROOT>");
        assert!(
            vi.to_string().contains("<GRAPHROOT>/overlay/"),
            "inspect of {img} from the view names layer dirs in the view: {vi:#}"
        );
        assert_eq!(
            vi, ni,
            "podman image inspect {img}: view (left) vs podman load (right)"
        );
        assert_eq!(vi[0]["Id"].as_str(), Some(id_of(img).as_str()));
    }

    // unistore's own listing agrees on Id, Digest and RepoDigests. Its Size is
    // the sum of the layers' diff sizes only; podman's SIZE adds the big-data
    // (manifest, config) bytes, so those two differ by design and are not compared.
    for e in store.images() {
        let id = e["Id"].as_str().expect("Id");
        let v = &v_map[id];
        assert_eq!(
            e["Digest"], v["Digest"],
            "unistore images vs podman: Digest of {id}"
        );
        assert_eq!(e["RepoDigests"], v["RepoDigests"], "RepoDigests of {id}");
        assert_eq!(e["Names"], v["Names"], "Names of {id}");
    }
}

// ---------------------------------------------------------------------------
// 2. The tree oracle: a container from the view vs a container from podman's storage

/// Dumps every path of the container's root filesystem, one tagged line per
/// fact (busybox find/stat/sha256sum/readlink and getfattr from the attr
/// package). Excluded: API filesystems and what podman/runc put into every
/// container (/etc/hosts, /etc/resolv.conf, /etc/hostname bind mounts,
/// /etc/mtab created by runc at start, /run/.containerenv).
const DUMP_SCRIPT: &str = r#"
set -e
export LC_ALL=C
[ -x /usr/bin/getfattr ] || { echo "no /usr/bin/getfattr in the image" >&2; exit 3; }
walk() {
  find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run \
      -o -path /etc/hosts -o -path /etc/resolv.conf -o -path /etc/hostname -o -path /etc/mtab \) \
      -prune -o "$@"
}
walk -type d -exec stat -c 'D|%F|%a|%u|%g|%n' {} +
walk ! -type d -exec stat -c 'N|%F|%a|%u|%g|%s|%h|%i|%t,%T|%Y|%n' {} +
walk -type f -exec sha256sum {} + | sed 's/^/H|/'
walk -type l -exec sh -c 'for f; do printf "L|%s|%s\n" "$f" "$(readlink "$f")"; done' sh {} +
walk -exec /usr/bin/getfattr -h -d -m - -e hex --absolute-names {} + | sed 's/^/X|/'
echo END
"#;

/// One path's description, ready for comparison.
pub(crate) fn tree_dump(
    podman: &dyn Fn(&[&str]) -> Command,
    image: &str,
) -> BTreeMap<String, String> {
    let mut c = podman(&[image, "sh", "-c", DUMP_SCRIPT]);
    let out = run_ok_t(&mut c, 300);
    let text = stdout(&out);
    assert!(
        text.ends_with("END\n"),
        "tree dump of {image} is incomplete:\n{}\nstderr:\n{}",
        &text[text.len().saturating_sub(2000)..],
        stderr(&out)
    );

    #[derive(Default)]
    struct Rec {
        base: String,
        ino: Option<u64>,
        sha: Option<String>,
        target: Option<String>,
        xattrs: Vec<String>,
    }
    let mut recs: BTreeMap<String, Rec> = BTreeMap::new();
    let mut xattr_file: Option<String> = None;
    for line in text.lines() {
        if line == "END" {
            continue;
        }
        let (tag, rest) = line
            .split_once('|')
            .unwrap_or_else(|| panic!("bad dump line {line:?}"));
        match tag {
            "D" => {
                // type|mode|uid|gid|path — directory sizes, link counts and
                // times depend on the filesystem and are left out.
                let f: Vec<&str> = rest.splitn(5, '|').collect();
                recs.entry(f[4].to_string()).or_default().base =
                    format!("{} mode={} owner={}:{}", f[0], f[1], f[2], f[3]);
            }
            "N" => {
                // type|mode|uid|gid|size|nlink|ino|maj,min|mtime|path
                let f: Vec<&str> = rest.splitn(10, '|').collect();
                let (kind, path) = (f[0], f[9]);
                let mut d = format!("{kind} mode={} owner={}:{}", f[1], f[2], f[3]);
                match kind {
                    "regular file" | "regular empty file" => {
                        d += &format!(" size={} nlink={} mtime={}", f[4], f[5], f[8])
                    }
                    "character special file" | "block special file" => {
                        d += &format!(" rdev={} mtime={}", f[7], f[8])
                    }
                    _ => d += &format!(" mtime={}", f[8]),
                }
                let r = recs.entry(path.to_string()).or_default();
                r.base = d;
                r.ino = Some(f[6].parse().expect("inode number"));
            }
            "H" => {
                let (h, p) = rest.split_once("  ").expect("sha256sum line");
                recs.entry(p.to_string()).or_default().sha = Some(h.to_string());
            }
            "L" => {
                let (p, t) = rest.split_once('|').expect("readlink line");
                recs.entry(p.to_string()).or_default().target = Some(t.to_string());
            }
            "X" => {
                if let Some(p) = rest.strip_prefix("# file: ") {
                    xattr_file = Some(p.to_string());
                } else if !rest.is_empty() {
                    let p = xattr_file.clone().expect("xattr line after a # file: line");
                    recs.entry(p).or_default().xattrs.push(rest.to_string());
                }
            }
            _ => panic!("bad dump line {line:?}"),
        }
    }
    // Hard links: name each inode by the first path (in sorted order) that has it.
    let mut first_of_ino: BTreeMap<u64, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (path, r) in recs {
        assert!(!r.base.is_empty(), "{image}: no stat line for {path}");
        let mut d = r.base;
        if let Some(h) = r.sha {
            d += &format!(" sha256={h}");
        }
        if let Some(t) = r.target {
            d += &format!(" -> {t}");
        }
        if let Some(ino) = r.ino {
            let first = first_of_ino.entry(ino).or_insert_with(|| path.clone());
            if *first != path {
                d += &format!(" hardlink-of={first}");
            }
        }
        if !r.xattrs.is_empty() {
            d += &format!(" xattrs[{}]", r.xattrs.join(","));
        }
        out.insert(path, d);
    }
    out
}

pub(crate) fn assert_dump_has(dump: &BTreeMap<String, String>, path: &str, parts: &[&str]) {
    let d = dump
        .get(path)
        .unwrap_or_else(|| panic!("native dump has no {path}: the oracle itself is broken"));
    for p in parts {
        assert!(
            d.contains(p),
            "native dump of {path} = {d:?} lacks {p:?}: the oracle itself is broken"
        );
    }
}

/// `/sys/module/fuse/parameters/enable_uring` set to `Y` while alive, restored
/// when dropped (the kernel offers FUSE over io_uring only then).
struct UringEnabled(Option<String>);

impl UringEnabled {
    const PARAM: &'static str = "/sys/module/fuse/parameters/enable_uring";

    fn new() -> UringEnabled {
        Self::set("Y")
    }

    /// The parameter set to `value` ("Y" or "N") while alive.
    fn set(value: &str) -> UringEnabled {
        let old = fs::read_to_string(Self::PARAM).unwrap_or_else(|e| {
            panic!(
                "{}: {e} — this kernel has no FUSE over io_uring (Linux 6.14+, CONFIG_FUSE_IO_URING)",
                Self::PARAM
            )
        });
        fs::write(Self::PARAM, value)
            .unwrap_or_else(|e| panic!("setting {} to {value}: {e}", Self::PARAM));
        UringEnabled(Some(old.trim().to_string()))
    }
}

impl Drop for UringEnabled {
    fn drop(&mut self) {
        if let Some(old) = self.0.take() {
            let _ = fs::write(Self::PARAM, old);
        }
    }
}

/// Threads of process `pid` whose scheduling policy is not `SCHED_BATCH`
/// (field 41 of `/proc/PID/task/TID/stat`; 3 = `SCHED_BATCH`), with it.
fn threads_not_batch(pid: u32) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in fs::read_dir(format!("/proc/{pid}/task"))
        .expect("task dir")
        .flatten()
    {
        let Ok(stat) = fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        // The name (field 2) is in parentheses and may hold spaces.
        let (head, rest) = stat.rsplit_once(')').expect("stat");
        let name = head.split_once('(').map(|(_, n)| n).unwrap_or(head);
        let policy = rest.split_whitespace().nth(38).unwrap_or("?").to_string();
        if policy != "3" {
            out.push((name.to_string(), policy));
        }
    }
    out
}

/// Names of the threads of process `pid`.
fn thread_names(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .filter_map(|t| fs::read_to_string(t.path().join("comm")).ok())
                .map(|c| c.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The tree a container sees, through both of the daemon's transports:
/// `/dev/fuse` (`uring=off`) and FUSE over io_uring (`uring=on`, one ring per
/// CPU: every request of `podman run` and of the dump goes through the rings).
#[test]
fn view_container_tree_equals_native_container_tree() {
    prerequisites();
    let store = store_with(&[DERIVED, APP]);
    let native = native_podman(&[DERIVED, APP]);
    let native_dumps: Vec<_> = [DERIVED, APP]
        .into_iter()
        .map(|img| (img, tree_dump(&|a| native.run_cmd(a[0], &a[1..]), img)))
        .collect();
    {
        // Kernel switch off: uring=on refuses to mount, and says why.
        let _off = UringEnabled::set("N");
        let mnt = tempdir("unistore-it-mnt-");
        let out = Command::new(unistore_bin())
            .arg("--store")
            .arg(store.path())
            .arg("mount")
            .arg(mnt.path())
            .args(["-o", "uring=on"])
            .output()
            .expect("unistore mount");
        assert!(
            !out.status.success() && stderr(&out).contains("enable_uring"),
            "uring=on with the kernel switch off: {:?}\n{}",
            out.status,
            stderr(&out)
        );
        assert!(
            !fuse_mounted(mnt.path()),
            "uring=on mounted although refused"
        );
    }
    let _uring = UringEnabled::new();
    for transport in ["uring=off", "uring=on"] {
        let m = ViewMount::new(&store, &[transport]);
        let rings = thread_names(m.pid)
            .into_iter()
            .filter(|t| t.starts_with("fuser-ring-"))
            .count();
        if transport == "uring=on" {
            assert!(
                rings > 0,
                "uring=on: the daemon runs no ring queue thread ({:?})",
                thread_names(m.pid)
            );
        } else {
            assert_eq!(rings, 0, "uring=off: the daemon runs ring queue threads");
        }
        // Every thread (FUSE, ring, prefetch) runs under SCHED_BATCH.
        let other = threads_not_batch(m.pid);
        assert!(
            other.is_empty(),
            "{transport}: threads not under SCHED_BATCH (name, policy): {other:?}"
        );
        let view = ViewPodman::new(&m);
        compare_container_trees(&native_dumps, &view, transport);
    }
}

fn compare_container_trees(
    native_dumps: &[(&str, BTreeMap<String, String>)],
    view: &ViewPodman,
    transport: &str,
) {
    for (img, n) in native_dumps {
        let (img, n) = (*img, n);
        let v = tree_dump(&|a| view.run_cmd(a[0], &a[1..]), img);
        // The oracle must see what the fixture put there, or equality proves nothing.
        assert!(
            n.len() > 1000,
            "native dump of {img} has only {} paths",
            n.len()
        );
        assert_dump_has(n, "/bin/busybox", &["regular file", "sha256="]);
        if img == DERIVED {
            assert_dump_has(n, "/srv/fixture/xattr/file", &["user.unistore.test=0x"]);
            assert_dump_has(n, "/srv/fixture/xattr/dir", &["user.unistore.dir=0x"]);
            assert_dump_has(
                n,
                "/srv/fixture/hardlink-third",
                &["hardlink-of=/srv/fixture/a/hardlink-src", "nlink=3"],
            );
            assert_dump_has(n, "/srv/fixture/perm/setuid", &["mode=4755"]);
            assert_dump_has(n, "/srv/fixture/perm/sticky-dir", &["mode=1777"]);
            assert_dump_has(n, "/srv/fixture/special/char-null", &["rdev=1,3"]);
            assert_dump_has(n, "/srv/fixture/special/block-loop0", &["rdev=7,0"]);
            assert_dump_has(n, "/srv/fixture/special/fifo", &["fifo"]);
            assert_dump_has(
                n,
                "/srv/fixture/owner/nobody",
                &["mode=640", "owner=65534:65534"],
            );
            assert_dump_has(
                n,
                "/srv/fixture/links/dangling",
                &["-> /nonexistent/dangling/target"],
            );
            assert_dump_has(n, "/srv/fixture/empty", &["size=0"]);
            assert_dump_has(n, "/usr/share/common-licenses/REPLACED", &["regular file"]);
            for gone in [
                "/etc/issue.net",
                "/usr/share/zoneinfo/Antarctica",
                "/srv/fixture/delete-me.txt",
            ] {
                assert!(!n.contains_key(gone), "native dump has deleted {gone}");
            }
            assert!(
                n.contains_key("/srv/fixture/many/d19/f1999.txt"),
                "native dump lacks the small files"
            );
        } else {
            assert_dump_has(n, "/app/run.sh", &["mode=755"]);
        }
        let diff = listing_diff(n, &v);
        assert!(
            diff.is_empty(),
            "{img} ({transport}): the container tree from the view differs from podman's native \
             storage (removed = only native, added = only view, changed: native => view):\n{diff}"
        );
    }
}

// ---------------------------------------------------------------------------
// 3. podman save / push from the view

/// sha256 and size of every regular member of a tar; symlink members map to their targets.
fn tar_member_shas(archive: &Path) -> (BTreeMap<String, (String, u64)>, BTreeMap<String, String>) {
    let f = File::open(archive).unwrap_or_else(|e| panic!("{}: {e}", archive.display()));
    let mut ar = tar::Archive::new(f);
    let (mut files, mut links) = (BTreeMap::new(), BTreeMap::new());
    for e in ar.entries().expect("tar entries") {
        let e = e.expect("tar entry");
        let name = e
            .path()
            .expect("path")
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let et = e.header().entry_type();
        if et.is_symlink() {
            let t = e
                .link_name()
                .expect("link")
                .expect("target")
                .to_string_lossy()
                .into_owned();
            let dir = Path::new(&name).parent().unwrap_or(Path::new(""));
            let target = dir.join(t).to_string_lossy().into_owned();
            links.insert(name, target);
        } else if et.is_file() {
            files.insert(name, sha256_reader(e));
        }
    }
    (files, links)
}

/// sha256 of an OCI layer blob after undoing its compression. The format is
/// sniffed from the magic bytes, not taken from the media type: skopeo copy
/// `--dest-oci-accept-uncompressed-layers` of an image whose stored manifest
/// came from a docker-archive (docker `…tar.gzip` media types on uncompressed
/// tars) writes uncompressed blobs labelled `tar+gzip` — from podman's own
/// storage exactly as from the view (c/image quirk, not a view bug).
fn uncompressed_sha(blob: &Path) -> String {
    let mut magic = [0u8; 4];
    let n = File::open(blob)
        .and_then(|mut f| f.read(&mut magic))
        .unwrap_or_else(|e| panic!("{}: {e}", blob.display()));
    let f = File::open(blob).expect("open blob");
    match &magic[..n] {
        [0x1f, 0x8b, ..] => sha256_reader(flate2::read::GzDecoder::new(f)).0,
        [0x28, 0xb5, 0x2f, 0xfd] => sha256_reader(zstd::Decoder::new(f).expect("zstd")).0,
        _ => sha256_reader(f).0,
    }
}

/// Check an OCI layout written from the view: config = image ID, every blob
/// matches its digest, and every layer uncompresses to its diffID.
fn assert_oci_layout_bit_exact(dir: &Path, image: &str) -> (String, Value) {
    let index: Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).expect("index.json"))
            .expect("index.json");
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .expect("manifest digest")
        .to_string();
    let manifest = fs::read(oci_blob_path(dir, &mdigest)).expect("manifest blob");
    assert_eq!(sha256(&manifest), mdigest, "{image}: manifest blob digest");
    let m: Value = serde_json::from_slice(&manifest).expect("manifest JSON");
    let cdigest = m["config"]["digest"].as_str().expect("config digest");
    let config = fs::read(oci_blob_path(dir, cdigest)).expect("config blob");
    assert_eq!(sha256(&config), cdigest, "{image}: config blob digest");
    assert_eq!(
        cdigest,
        format!("sha256:{}", id_of(image)),
        "{image}: config = image ID"
    );
    let diff_ids = config_diff_ids(&config);
    assert_eq!(diff_ids, diff_ids_of(image), "{image}: diff IDs");
    let layers = m["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), diff_ids.len(), "{image}: layer count");
    for (i, l) in layers.iter().enumerate() {
        let d = l["digest"].as_str().expect("digest");
        let mt = l["mediaType"].as_str().expect("mediaType");
        let blob = oci_blob_path(dir, d);
        let (bsha, bsize) = sha256_reader(File::open(&blob).expect("layer blob"));
        assert_eq!(bsha, d, "{image}: layer {i} blob digest");
        assert_eq!(
            Some(bsize),
            l["size"].as_u64(),
            "{image}: layer {i} blob size"
        );
        assert_eq!(
            uncompressed_sha(&blob),
            diff_ids[i],
            "{image}: layer {i} ({mt}) does not uncompress to its diffID"
        );
    }
    (mdigest, m)
}

#[test]
fn view_podman_save_and_push_are_bit_exact() {
    prerequisites();
    let store = store_with(&[DERIVED]);
    let m = ViewMount::new(&store, &[]);
    let view = ViewPodman::new(&m);
    let out = tempdir("unistore-it-out-");
    let want = diff_ids_of(DERIVED);

    // podman save (docker-archive): the layers are <hex>.tar members named in manifest.json.
    let tarball = out.path().join("save.tar");
    view.ok([
        "save",
        "-q",
        "-o",
        tarball.to_str().expect("utf-8"),
        DERIVED,
    ]);
    let (files, links) = tar_member_shas(&tarball);
    let small = tar_members(&tarball, |n| n == "manifest.json");
    let mj: Value = serde_json::from_slice(&small["manifest.json"]).expect("manifest.json");
    let cfg_name = mj[0]["Config"].as_str().expect("Config");
    assert_eq!(
        files.get(cfg_name).map(|(h, _)| h.as_str()),
        Some(format!("sha256:{}", id_of(DERIVED)).as_str()),
        "podman save: config blob sha256 = image ID"
    );
    let members = mj[0]["Layers"].as_array().expect("Layers");
    assert_eq!(members.len(), want.len(), "podman save: layer count");
    for (i, mem) in members.iter().enumerate() {
        let mut name = mem.as_str().expect("layer member").to_string();
        while let Some(t) = links.get(&name) {
            name = t.clone();
        }
        let (sha, size) = files
            .get(&name)
            .unwrap_or_else(|| panic!("podman save: no member {name}"));
        assert_eq!(
            sha, &want[i],
            "podman save from the view: layer {i} ({name}, {size} bytes) is not its diffID"
        );
    }

    // podman push to an OCI layout (podman compresses layers by default).
    let oci = out.path().join("push");
    view.ok(["push", "-q", DERIVED, &format!("oci:{}:t", oci.display())]);
    assert_oci_layout_bit_exact(&oci, DERIVED);
}

// ---------------------------------------------------------------------------
// 4. skopeo

#[test]
fn view_skopeo_inspect_and_copy() {
    prerequisites();
    let store = store_with(&[DERIVED]);
    let m = ViewMount::new(&store, &[]);
    let native = native_podman(&[DERIVED]);
    let work = tempdir("unistore-it-skopeo-");
    // skopeo's own graph root (empty) with the view as additional image store.
    // A read-only store cannot be skopeo's *primary* graph root:
    // `containers-storage:[overlay@M/containers-storage+RUN]IMG` fails in
    // c/storage 1.43 with "mkdir …/mounts: read-only file system" — and with
    // "open …/storage.lock: read-only file system" on a read-only bind mount
    // of a real podman store, so that is not a property of the view.
    let graph = work.path().join("root");
    let run_root = work.path().join("run");
    let view_ref = format!(
        "containers-storage:[overlay@{}+{}:overlay.imagestore={}]{DERIVED}",
        graph.display(),
        run_root.display(),
        m.cstor().display()
    );
    let native_ref = format!(
        "containers-storage:[overlay@{}+{}]{DERIVED}",
        native.root().display(),
        work.path().join("native-run").display()
    );
    let skopeo = |args: &[&str]| {
        let mut c = Command::new("skopeo");
        c.args(args);
        c.env("CONTAINERS_STORAGE_CONF", work.path().join("none.conf"));
        c
    };
    fs::write(
        work.path().join("none.conf"),
        "[storage]\ndriver = \"overlay\"\n",
    )
    .expect("conf");
    let _cleanup = Unmounter(work.path().to_path_buf());

    let v = json_of(
        &run_ok_t(&mut skopeo(&["inspect", &view_ref]), 120),
        "skopeo inspect (view)",
    );
    let n = json_of(
        &run_ok_t(&mut skopeo(&["inspect", &native_ref]), 120),
        "skopeo inspect (native)",
    );
    assert_eq!(v, n, "skopeo inspect: view (left) vs podman load (right)");
    assert_eq!(
        v["Layers"].as_array().map(|a| a.len()),
        Some(diff_ids_of(DERIVED).len())
    );

    let raw = run_ok_t(&mut skopeo(&["inspect", "--raw", &view_ref]), 120).stdout;
    assert_eq!(
        Some(sha256(&raw).as_str()),
        v["Digest"].as_str(),
        "skopeo inspect --raw: the manifest hashes to the Digest"
    );
    let cfg = run_ok_t(
        &mut skopeo(&["inspect", "--config", "--raw", &view_ref]),
        120,
    )
    .stdout;
    assert_eq!(
        sha256(&cfg),
        format!("sha256:{}", id_of(DERIVED)),
        "config = image ID"
    );

    // skopeo copy to OCI layouts, keeping layers uncompressed: from the view
    // and from podman's own storage the result must be the same image
    // (manifest digest), and every layer must be its diffID.
    let mut digests = Vec::new();
    for (what, r) in [("view", &view_ref), ("native", &native_ref)] {
        let dir = work.path().join(format!("oci-{what}"));
        run_ok_t(
            &mut skopeo(&[
                "copy",
                "-q",
                "--dest-oci-accept-uncompressed-layers",
                r,
                &format!("oci:{}:t", dir.display()),
            ]),
            300,
        );
        digests.push(assert_oci_layout_bit_exact(&dir, DERIVED).0);
    }
    assert_eq!(
        digests[0], digests[1],
        "skopeo copy from the view and from podman's storage give different manifests"
    );
    // And the default (compressing) copy, from the view.
    let dir = work.path().join("oci-gzip");
    run_ok_t(
        &mut skopeo(&["copy", "-q", &view_ref, &format!("oci:{}:t", dir.display())]),
        300,
    );
    assert_oci_layout_bit_exact(&dir, DERIVED);
}

/// Unmounts everything below a directory on drop (skopeo and podman leave
/// `<graphroot>/overlay` bind-mounted).
struct Unmounter(PathBuf);

impl Drop for Unmounter {
    fn drop(&mut self) {
        unmount_below(&self.0);
    }
}

// ---------------------------------------------------------------------------
// 5. Live changes

fn layers_json_ids(m: &ViewMount) -> Vec<String> {
    let p = m.cstor().join("overlay-layers/layers.json");
    let v: Value = serde_json::from_slice(&fs::read(&p).expect("layers.json")).expect("JSON");
    v.as_array()
        .expect("array")
        .iter()
        .map(|l| l["id"].as_str().expect("id").to_string())
        .collect()
}

fn overlay_listing(m: &ViewMount) -> Vec<String> {
    fs::read_dir(m.cstor().join("overlay"))
        .expect("readdir overlay")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn view_follows_imports_and_removals_while_mounted() {
    prerequisites();
    let store = store_with(&[DERIVED]);
    let m = ViewMount::new(&store, &[]);
    let view = ViewPodman::new(&m);
    let big = golden_sha("big.bin");

    assert_eq!(view.image_names(), vec![DERIVED.to_string()]);
    // A running container keeps the derived layers (base layer included) mounted.
    let live = Container::start(&view, "unistore-it-live", DERIVED, &["sleep", "600"]);

    // Each step runs podman right after the unistore command returns.
    // Import: app:1 appears (shares the base layer with derived:1).
    store.import(&format!("docker-archive:{}", archive_of(APP)));
    assert_eq!(
        view.image_names(),
        vec![APP.to_string(), DERIVED.to_string()],
        "podman images right after `unistore import` (no remount)"
    );
    let out = view.ok_run(APP, &["/app/run.sh"]);
    assert_eq!(stdout(&out), "hello from the unistore app fixture\n");

    // A name added with `unistore tag` resolves at once.
    store.ok(["tag", APP, "localhost/unistore-it/renamed:1"]);
    let out = view.ok_run(
        "localhost/unistore-it/renamed:1",
        &["cat", "/app/hello.txt"],
    );
    assert_eq!(stdout(&out), "hello from the unistore app fixture\n");
    store.ok(["rmi", "localhost/unistore-it/renamed:1"]);
    assert_eq!(
        view.image_names(),
        vec![APP.to_string(), DERIVED.to_string()],
        "podman images right after `unistore rmi` of the extra name"
    );

    // Remove app:1: it disappears from podman, its own layer from the store's
    // layer list, the shared base layer stays.
    let app_ids = layer_ids(&diff_ids_of(APP));
    let derived_ids = layer_ids(&diff_ids_of(DERIVED));
    assert_eq!(
        app_ids[0], derived_ids[0],
        "fixture: app and derived share the base layer"
    );
    assert!(layers_json_ids(&m).contains(&app_ids[1]));
    store.ok(["rmi", APP]);
    assert_eq!(
        view.image_names(),
        vec![DERIVED.to_string()],
        "podman images right after `unistore rmi {APP}`"
    );
    let gone = run_t(&mut view.run_cmd(APP, &["true"]), 120);
    assert!(
        !gone.status.success(),
        "podman run {APP} after rmi succeeded"
    );
    let ids = layers_json_ids(&m);
    assert!(
        !ids.contains(&app_ids[1]),
        "layers.json still lists app's own layer"
    );
    for id in &derived_ids {
        assert!(ids.contains(id), "layers.json lost derived layer {id}");
    }
    let listing = overlay_listing(&m);
    assert!(
        !listing.contains(&app_ids[1]),
        "overlay/ still lists app's own layer"
    );
    assert!(
        listing.contains(&app_ids[0]),
        "overlay/ lost the shared base layer"
    );

    // The other image still runs, and the running container still reads
    // files of every layer, the shared base layer included.
    let out = view.ok_run(
        DERIVED,
        &[
            "sh",
            "-c",
            "cat /etc/debian_version; sha256sum /srv/fixture/big.bin",
        ],
    );
    assert!(
        stdout(&out).contains(big.trim_start_matches("sha256:")),
        "{}",
        stdout(&out)
    );
    let out = live.exec(&[
        "sh",
        "-c",
        "cat /etc/debian_version; sha256sum /srv/fixture/big.bin",
    ]);
    assert!(
        stdout(&out).contains(big.trim_start_matches("sha256:")),
        "{}",
        stdout(&out)
    );

    // Import base:1 and remove it: its (only) layer is derived's base layer and stays.
    store.import(&format!("docker-archive:{}", archive_of(BASE)));
    assert_eq!(
        view.image_names(),
        vec![BASE.to_string(), DERIVED.to_string()]
    );
    view.ok_run(BASE, &["true"]);
    store.ok(["rmi", BASE]);
    assert_eq!(view.image_names(), vec![DERIVED.to_string()]);
    assert!(
        layers_json_ids(&m).contains(&derived_ids[0]),
        "base layer removed with base:1"
    );
    let out = live.exec(&["cat", "/etc/os-release"]);
    assert!(stdout(&out).contains("Debian"), "{}", stdout(&out));
    view.ok_run(DERIVED, &["cat", "/srv/fixture/top-layer.txt"]);
}

impl ViewPodman {
    /// `podman run --rm IMAGE ARGS` that must succeed.
    fn ok_run(&self, image: &str, args: &[&str]) -> Output {
        run_ok_t(&mut self.run_cmd(image, args), 300)
    }
}

/// ACL policy. Default (`noacl`): asking for an ACL a file does not have
/// fails with ENOTSUP, so `ls -l` learns once per device that there are none
/// (a cold `ls -lR` made one GETXATTR round trip per entry before); with
/// `-o acl` the kernel enforces ACLs and the answer is "none" (ENODATA).
/// Either way the kernel still enforces owner, group and mode for every user.
#[test]
fn view_acl_policy() {
    use std::os::unix::process::CommandExt as _;
    prerequisites();
    let store = store_with(&[DERIVED]);
    for (opts, want, what) in [
        (&[][..], 95, "ENOTSUP (default noacl)"),
        (&["acl"][..], 61, "ENODATA (-o acl)"),
    ] {
        let m = ViewMount::new(&store, opts);
        let owner = m
            .path()
            .join("images")
            .join(DERIVED)
            .join("srv/fixture/owner");
        // 0640 65534:65534
        let f = owner.join("nobody");
        let mut buf = [0u8; 256];
        for name in ["system.posix_acl_access", "system.posix_acl_default"] {
            let target = if name.ends_with("default") {
                &owner
            } else {
                &f
            };
            let got = rustix::fs::lgetxattr(target, name, &mut buf).map_err(|e| e.raw_os_error());
            assert_eq!(
                got,
                Err(want),
                "{name} of {} with {opts:?}: want {what}",
                target.display()
            );
        }
        let ls = run_ok(Command::new("ls").arg("-l").arg(&owner));
        assert!(
            stdout(&ls).contains("nobody"),
            "ls -l {}: {}",
            owner.display(),
            stdout(&ls)
        );
        let cat_as = |uid: u32, gid: u32| {
            Command::new("cat")
                .arg(&f)
                .uid(uid)
                .gid(gid)
                .output()
                .expect("cat")
                .status
                .success()
        };
        assert!(
            cat_as(65534, 65534),
            "the owner cannot read {} ({opts:?})",
            f.display()
        );
        assert!(
            cat_as(1000, 65534),
            "the group cannot read {} ({opts:?})",
            f.display()
        );
        assert!(
            !cat_as(1000, 1000),
            "others can read 0640 {} ({opts:?})",
            f.display()
        );
    }
}

/// The three READDIRPLUS modes show the same trees: `readdirplus=off` (a
/// LOOKUP per entry), the default `dirs` (directories listed with their
/// attributes, other entries by name only) and `all` (every entry with its
/// attributes). Compared: `ls -lRan` with full timestamps, owners, sizes and
/// link targets, and what `readdir` itself returns (each entry's inode number
/// and type, read without a stat, as `find` uses them), of the per-image view
/// and the containers-storage view, each on a cold cache, then warm.
#[test]
fn view_readdirplus_modes_list_the_same() {
    prerequisites();
    let store = store_with(&[DERIVED]);
    const DIRENTS: &str = r#"
import os, sys
def walk(d, rel):
    with os.scandir(d) as it:
        for e in sorted(it, key=lambda e: e.name):
            t = "d" if e.is_dir(follow_symlinks=False) else "l" if e.is_symlink() else "f" if e.is_file(follow_symlinks=False) else "o"
            print(t, e.inode(), rel + "/" + e.name)
            if t == "d":
                walk(e.path, rel + "/" + e.name)
walk(sys.argv[1], ".")
"#;
    let listing = |m: &ViewMount| {
        let mut out = Vec::new();
        for round in 0..2 {
            if round == 0 {
                drop_page_cache();
            }
            for dir in [m.path().join("images").join(DERIVED), m.diff(DERIVED, 5)] {
                // The readdir walk first, while nothing of the tree was stat-ed.
                let o = run_ok(Command::new("python3").args(["-c", DIRENTS]).arg(&dir));
                out.push(stdout(&o));
                let o = run_ok(
                    Command::new("ls")
                        .args(["-lRan", "--time-style=+%s.%N"])
                        .arg(&dir)
                        .current_dir(&dir),
                );
                out.push(stdout(&o).replace(&*m.path().to_string_lossy(), "MNT"));
            }
        }
        out
    };
    let mut listings = Vec::new();
    for (label, opts) in [
        ("readdirplus=off", &["readdirplus=off"][..]),
        ("the default (dirs)", &[][..]),
        ("readdirplus=all", &["readdirplus=all"][..]),
    ] {
        let m = ViewMount::new(&store, opts);
        listings.push((label, listing(&m)));
    }
    let (_, a) = &listings[0];
    assert!(
        a[1].lines().count() > 1000 && a[1].contains("hardlink-third"),
        "the listing is too small to prove anything:\n{}",
        &a[1][..a[1].len().min(2000)]
    );
    assert!(
        a[0].lines().filter(|l| l.starts_with("d ")).count() > 50
            && a[0].lines().filter(|l| l.starts_with("f ")).count() > 500
            && a[0].lines().any(|l| l.starts_with("l ")),
        "the readdir walk saw too few directories, files or symlinks:\n{}",
        &a[0][..a[0].len().min(2000)]
    );
    for (opt, b) in &listings[1..] {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            if x != y {
                let d: Vec<_> = x
                    .lines()
                    .zip(y.lines())
                    .filter(|(p, q)| p != q)
                    .take(10)
                    .collect();
                panic!("listing {i}: readdirplus=off and {opt} differ; first lines (off, {opt}): {d:#?}");
            }
        }
    }
}

/// The default `readdirplus=dirs` hands the kernel each directory with the
/// listing it is in, so a cold `find` of an image's tree needs no LOOKUP per
/// directory; with `readdirplus=off` it needs one per directory. Counted with
/// the kernel's `fuse:fuse_request_send` tracepoint, in a trace instance of
/// its own, for this mount's connection only.
#[test]
fn view_readdirplus_dirs_spares_a_cold_find_its_lookups() {
    use std::os::unix::fs::MetadataExt;
    prerequisites();
    let store = store_with(&[DERIVED]);
    let tracing = Path::new("/sys/kernel/tracing");
    if !tracing.join("instances").is_dir() {
        run_ok(
            Command::new("mount")
                .args(["-t", "tracefs", "nodev"])
                .arg(tracing),
        );
    }
    let instance = tracing.join(format!("instances/unistore-it-{}", std::process::id()));
    fs::create_dir(&instance).expect("creating a trace instance");
    let lookups = |opts: &[&str]| -> (usize, usize) {
        let m = ViewMount::new(&store, opts);
        let tree = m.path().join("images").join(DERIVED);
        let dirs = stdout(&run_ok(
            Command::new("find").arg(&tree).args(["-type", "d"]),
        ))
        .lines()
        .count();
        let conn = fs::metadata(m.path()).expect("stat of the mount").dev();
        drop_page_cache();
        fs::write(instance.join("trace"), "").expect("clearing the trace");
        let enable = instance.join("events/fuse/fuse_request_send/enable");
        fs::write(&enable, "1").expect("enabling fuse:fuse_request_send");
        run_ok(Command::new("find").arg(&tree));
        fs::write(&enable, "0").expect("disabling fuse:fuse_request_send");
        let trace = fs::read_to_string(instance.join("trace")).expect("reading the trace");
        let mine = format!("connection {conn} ");
        let n = trace
            .lines()
            .filter(|l| l.contains(&mine) && l.contains("(FUSE_LOOKUP)"))
            .count();
        (n, dirs)
    };
    let off = lookups(&["readdirplus=off"]);
    let dirs = lookups(&[]);
    let _ = fs::remove_dir(&instance);
    let (off_n, ndirs) = off;
    assert!(
        ndirs > 50 && off_n >= ndirs,
        "readdirplus=off: {off_n} LOOKUPs for a cold find of {ndirs} directories; \
         expected at least one per directory (is the tracepoint counting this mount?)"
    );
    assert!(
        dirs.0 < 16,
        "readdirplus=dirs: {} LOOKUPs for a cold find of {ndirs} directories \
         (readdirplus=off: {off_n}); expected only the few of the path to the tree",
        dirs.0
    );
}

// ---------------------------------------------------------------------------
// 6. Read-only

#[test]
fn view_is_read_only() {
    use rustix::fs::{Mode, CWD};
    prerequisites();
    let store = store_with(&[DERIVED]);
    let m = ViewMount::new(&store, &[]);
    let cs = m.cstor();
    let top = m.diff(DERIVED, 5);
    let files = [
        cs.join("overlay-images/images.json"),
        cs.join("overlay-layers/layers.lock"),
        m.diff(DERIVED, 0).join("etc/passwd"),
        top.join("srv/fixture/top-layer.txt"),
        m.diff(DERIVED, 4).join("srv/fixture/big.bin"),
    ];
    let dirs = [
        m.path().to_path_buf(),
        cs.clone(),
        cs.join("overlay"),
        top.clone(),
        top.join("srv/fixture"),
    ];
    for f in &files {
        assert!(f.is_file(), "{} is not a file in the view", f.display());
    }
    let before = store.images();
    let mut failures = Vec::new();
    let mut check = |what: String, r: std::io::Result<()>| match r {
        Err(e) if errno_of(&e) == EROFS => {}
        Err(e) => failures.push(format!("{what}: {e} (want EROFS)")),
        Ok(()) => failures.push(format!("{what}: SUCCEEDED (want EROFS)")),
    };
    let io = |r: rustix::io::Result<()>| r.map_err(std::io::Error::from);
    for f in &files {
        let d = f.display();
        check(
            format!("open O_WRONLY {d}"),
            fs::OpenOptions::new().write(true).open(f).map(drop),
        );
        check(
            format!("open O_RDWR {d}"),
            fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(f)
                .map(drop),
        );
        check(
            format!("open O_APPEND {d}"),
            fs::OpenOptions::new().append(true).open(f).map(drop),
        );
        check(
            format!("open O_WRONLY|O_TRUNC {d}"),
            fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(f)
                .map(drop),
        );
        check(format!("unlink {d}"), fs::remove_file(f));
        check(
            format!("rename {d}"),
            fs::rename(f, f.with_extension("renamed")),
        );
        check(
            format!("chmod {d}"),
            io(rustix::fs::chmod(f, Mode::from_raw_mode(0o777))),
        );
        check(
            format!("chown {d}"),
            std::os::unix::fs::chown(f, Some(1), Some(1)),
        );
        check(
            format!("setxattr {d}"),
            io(rustix::fs::setxattr(
                f,
                "user.x",
                b"1",
                rustix::fs::XattrFlags::empty(),
            )),
        );
        check(
            format!("removexattr {d}"),
            io(rustix::fs::removexattr(f, "user.x")),
        );
        check(
            format!("utimensat {d}"),
            io(rustix::fs::utimensat(
                CWD,
                f,
                &rustix::fs::Timestamps {
                    last_access: rustix::fs::Timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    },
                    last_modification: rustix::fs::Timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    },
                },
                rustix::fs::AtFlags::empty(),
            )),
        );
    }
    for d in &dirs {
        let dd = d.display();
        check(
            format!("create file in {dd}"),
            File::create(d.join("new-file")).map(drop),
        );
        check(
            format!("O_CREAT|O_EXCL in {dd}"),
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(d.join("new-file2"))
                .map(drop),
        );
        check(format!("mkdir in {dd}"), fs::create_dir(d.join("new-dir")));
        check(
            format!("symlink in {dd}"),
            std::os::unix::fs::symlink("x", d.join("new-link")),
        );
        check(
            format!("hard link in {dd}"),
            fs::hard_link(&files[3], d.join("new-hardlink")),
        );
        check(
            format!("mkfifo in {dd}"),
            io(rustix::fs::mknodat(
                CWD,
                d.join("new-fifo"),
                rustix::fs::FileType::Fifo,
                Mode::from_raw_mode(0o644),
                0,
            )),
        );
        check(
            format!("chmod {dd}"),
            io(rustix::fs::chmod(d, Mode::from_raw_mode(0o777))),
        );
        check(
            format!("setxattr {dd}"),
            io(rustix::fs::setxattr(
                d,
                "user.x",
                b"1",
                rustix::fs::XattrFlags::empty(),
            )),
        );
    }
    for d in [
        cs.join("overlay-images"),
        top.join("srv/fixture/many"),
        top.join("srv"),
    ] {
        check(format!("rmdir {}", d.display()), fs::remove_dir(&d));
        check(
            format!("rename {}", d.display()),
            fs::rename(&d, d.with_extension("renamed")),
        );
    }
    assert!(
        failures.is_empty(),
        "writes to the view did not fail with EROFS:\n{}",
        failures.join("\n")
    );
    // Nothing changed: the files are still there and the catalog is as before.
    for f in &files {
        assert!(f.is_file(), "{} vanished", f.display());
    }
    assert_eq!(store.images(), before, "the catalog changed");
    assert!(!cs.join("new-file").exists());
}

// ---------------------------------------------------------------------------
// 7. Permissions (default_permissions)

/// `setpriv` as uid:gid without supplementary groups, running `cat FILE`.
fn cat_as(uid: u32, path: &Path) -> Output {
    run_t(
        Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg("--clear-groups")
            .arg("cat")
            .arg(path),
        30,
    )
}

#[test]
fn view_enforces_file_permissions_for_other_users() {
    prerequisites();
    let store = store_with(&[DERIVED]);
    let m = ViewMount::new(&store, &[]);
    let mounts = fs::read_to_string("/proc/self/mounts").expect("mounts");
    let opts = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(&*m.path().to_string_lossy()))
        .and_then(|l| l.split(' ').nth(3))
        .expect("the mount is listed")
        .to_string();
    for o in ["ro", "default_permissions", "allow_other"] {
        assert!(
            opts.split(',').any(|x| x == o),
            "mount options {opts:?} lack {o}"
        );
    }
    // containers-storage/, overlay/ and overlay/<id>/ are 0700 root as c/storage
    // makes them: another user cannot even get to a layer.
    let l3 = m.diff(DERIVED, 2);
    let denied = cat_as(65534, &l3.join("srv/fixture/perm/setuid"));
    assert!(
        !denied.status.success() && stderr(&denied).contains("Permission denied"),
        "uid 65534 reached a layer through the 0700 containers-storage dirs: {}{}",
        stdout(&denied),
        stderr(&denied)
    );
    for d in [m.cstor(), m.cstor().join("overlay")] {
        let md = fs::metadata(&d).expect("stat");
        assert_eq!(
            (md.mode() & 0o7777, md.uid()),
            (0o700, 0),
            "{}",
            d.display()
        );
    }
    // Bind-mount layer diffs elsewhere so that only the files' own modes decide.
    let b3 = BindMount::new(&l3);
    let b6 = BindMount::new(&m.diff(DERIVED, 5));
    let p = |b: &BindMount, rel: &str| b.0.path().join(rel);

    let cases: [(&Path, &str, u32, Option<&str>); 7] = [
        // (file, what, uid, Some(content) = readable)
        (
            &p(&b3, "srv/fixture/perm/mode-0400"),
            "0400 root:root",
            65534,
            None,
        ),
        (
            &p(&b3, "srv/fixture/perm/mode-0400"),
            "0400 root:root",
            0,
            Some("read only\n"),
        ),
        (
            &p(&b3, "srv/fixture/perm/setuid"),
            "4755 root:root",
            65534,
            Some("#!/bin/sh\necho setuid\n"),
        ),
        (
            &p(&b3, "srv/fixture/owner/uid1000"),
            "0644 1000:1000",
            65534,
            Some("owned by 1000\n"),
        ),
        (
            &p(&b6, "srv/fixture/owner/nobody"),
            "0640 65534:65534 (owner)",
            65534,
            Some("owned by nobody\n"),
        ),
        (
            &p(&b6, "srv/fixture/owner/nobody"),
            "0640 65534:65534 (other)",
            1000,
            None,
        ),
        (
            &p(&b3, "srv/fixture/owner/nobody"),
            "0644 65534:65534 (lower layer)",
            1000,
            Some("owned by nobody\n"),
        ),
    ];
    for (file, what, uid, want) in cases {
        let md = fs::metadata(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(md.is_file(), "{}", file.display());
        let out = cat_as(uid, file);
        match want {
            Some(content) => assert!(
                out.status.success() && stdout(&out) == content,
                "uid {uid} cannot read {what} file {} (mode {:o}): {}",
                file.display(),
                md.mode() & 0o7777,
                stderr(&out)
            ),
            None => assert!(
                !out.status.success() && stderr(&out).contains("Permission denied"),
                "uid {uid} read {what} file {} (mode {:o}), want EACCES: {}{}",
                file.display(),
                md.mode() & 0o7777,
                stdout(&out),
                stderr(&out)
            ),
        }
    }
    // A 0700 directory in a layer (base /root) is closed to others too.
    let b1 = BindMount::new(&m.diff(DERIVED, 0));
    let out = run_t(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "ls"])
            .arg(b1.0.path().join("root")),
        30,
    );
    assert!(
        !out.status.success() && stderr(&out).contains("Permission denied"),
        "uid 65534 listed a 0700 root directory: {}{}",
        stdout(&out),
        stderr(&out)
    );
    drop((b1, b3, b6));
}

// ---------------------------------------------------------------------------
// 8. Robustness: corrupt backing objects; SIGKILL of the daemon

/// The backing object of a file: the one object under `STORE/repo/objects`
/// with the same bytes (objects are stored as plain files in insecure mode).
fn backing_object(store: &TempStore, content: &[u8]) -> PathBuf {
    let mut found = Vec::new();
    let objects = store.path().join("repo/objects");
    for d in fs::read_dir(&objects).unwrap_or_else(|e| panic!("{}: {e}", objects.display())) {
        let d = d.expect("entry").path();
        if !d.is_dir() {
            continue;
        }
        for f in fs::read_dir(&d).expect("readdir") {
            let f = f.expect("entry").path();
            let md = fs::metadata(&f).expect("stat");
            if md.is_file()
                && md.len() == content.len() as u64
                && fs::read(&f).expect("read") == content
            {
                found.push(f);
            }
        }
    }
    assert_eq!(
        found.len(),
        1,
        "expected one backing object, found {found:?}"
    );
    found.pop().expect("one")
}

#[test]
fn view_corrupt_backing_object_gives_eio() {
    prerequisites();
    let store = store_with(&[DERIVED]);
    let rel = |i: u32| format!("srv/fixture/many/d0/f{i:04}.txt");
    // Read the good bytes first (through a mount that then goes away).
    let good: Vec<Vec<u8>> = {
        let m = ViewMount::new(&store, &[]);
        let l5 = m.diff(DERIVED, 4);
        (0..3)
            .map(|i| fs::read(l5.join(rel(i))).expect("read"))
            .collect()
    };
    for g in &good {
        assert!(
            g.len() > 64,
            "fixture file too small to have a backing object"
        );
    }
    let truncated = backing_object(&store, &good[0]);
    let deleted = backing_object(&store, &good[1]);
    File::options()
        .write(true)
        .open(&truncated)
        .expect("open object")
        .set_len(0)
        .expect("truncate");
    fs::remove_file(&deleted).expect("delete object");

    for pt in ["passthrough=off", "passthrough=auto"] {
        let m = ViewMount::new(&store, &[pt]);
        let l5 = m.diff(DERIVED, 4);
        for (i, what) in [(0, "truncated"), (1, "deleted")] {
            let p = l5.join(rel(i));
            let md = fs::metadata(&p).expect("stat still works");
            assert_eq!(
                md.len(),
                good[i as usize].len() as u64,
                "size is from the index"
            );
            match read_file_t(&p) {
                Err(e) if errno_of(&e) == EIO => {}
                Err(e) => {
                    panic!("{pt}: reading a file whose backing object was {what}: {e} (want EIO)")
                }
                Ok(d) => panic!(
                    "{pt}: reading a file whose backing object was {what} succeeded with {} bytes \
                     (stat says {}): silent wrong data, want EIO",
                    d.len(),
                    md.len()
                ),
            }
        }
        // Everything else still reads, and the daemon is alive.
        assert_eq!(read_file_t(&l5.join(rel(2))).expect("intact file"), good[2]);
        let (h, _) = sha256_reader(File::open(l5.join("srv/fixture/big.bin")).expect("big.bin"));
        assert_eq!(h, golden_sha("big.bin"), "{pt}: big.bin");
        assert!(
            m.daemon_alive(),
            "{pt}: the daemon died after EIO\n{}",
            m.log()
        );
        assert!(fs::metadata(m.cstor().join("overlay-images/images.json")).is_ok());
    }
}

#[test]
fn view_sigkill_of_daemon_gives_enotconn_and_remount_recovers() {
    prerequisites();
    let store = store_with(&[DERIVED]);
    let big_rel = "srv/fixture/big.bin";
    const AT: u64 = 32 << 20;
    let mut expected_chunk = Vec::new();

    // Both transports: the kernel tears a FUSE-over-io_uring connection down
    // through its rings, and ends what was in flight with ECONNABORTED.
    let _uring = UringEnabled::new();
    for (pt, transport) in [
        ("passthrough=off", "uring=off"),
        ("passthrough=on", "uring=off"),
        ("passthrough=off", "uring=on"),
        ("passthrough=on", "uring=on"),
    ] {
        let mut m = ViewMount::new(&store, &[pt, transport]);
        let pt = &*format!("{pt},{transport}");
        let path = m.diff(DERIVED, 4).join(big_rel);
        let reader = File::open(&path).expect("open big.bin");
        let mut head = [0u8; 4096];
        reader.read_exact_at(&mut head, 0).expect("read first page");
        let old_pid = m.pid;
        m.kill_daemon();

        // The reader gets an error (or, with passthrough, the kernel may keep
        // serving an already-open file from its backing file) — never a hang.
        let r = within("read after SIGKILL", Duration::from_secs(20), move || {
            let mut buf = vec![0u8; 4096];
            reader.read_exact_at(&mut buf, AT).map(|()| buf)
        });
        match (pt, r) {
            (_, Err(e)) if errno_of(&e) == ENOTCONN => {}
            (_, Err(e))
                if transport == "uring=on" && [ECONNABORTED, ECANCELED].contains(&errno_of(&e)) => {
            }
            ("passthrough=on,uring=off" | "passthrough=on,uring=on", Ok(buf)) => {
                eprintln!("note: passthrough keeps serving an open file after SIGKILL");
                if !expected_chunk.is_empty() {
                    assert_eq!(
                        buf, expected_chunk,
                        "passthrough read after SIGKILL: wrong bytes"
                    );
                }
            }
            (_, Err(e)) => panic!("{pt}: read of an open file after SIGKILL: {e} (want ENOTCONN)"),
            (_, Ok(_)) => {
                panic!("{pt}: read of an open file after SIGKILL succeeded (want ENOTCONN)")
            }
        }
        // Over io_uring, a request caught in the rings' teardown ends with
        // ECONNABORTED or ECANCELED; every later one gets ENOTCONN.
        let tries = if transport == "uring=on" { 3 } else { 1 };
        for i in 1..=tries {
            let p2 = path.clone();
            match within("stat after SIGKILL", Duration::from_secs(20), move || {
                fs::metadata(p2)
            }) {
                Err(e) if errno_of(&e) == ENOTCONN => break,
                Err(e) if i < tries && [ECONNABORTED, ECANCELED].contains(&errno_of(&e)) => {}
                other => panic!("{pt}: stat {i} in a dead mount: {other:?} (want ENOTCONN)"),
            }
        }

        // A fresh mount at the same place, without manual cleanup.
        m.mount();
        assert_ne!(m.pid, old_pid);
        let f = File::open(&path).expect("open after remount");
        let mut buf = vec![0u8; 4096];
        f.read_exact_at(&mut buf, AT).expect("read after remount");
        if expected_chunk.is_empty() {
            expected_chunk = buf;
        } else {
            assert_eq!(buf, expected_chunk);
        }
        let (h, _) = sha256_reader(File::open(&path).expect("open"));
        assert_eq!(h, golden_sha("big.bin"), "{pt}: big.bin after remount");
        // Exactly one mount there (the stale one is gone).
        let n = fs::read_to_string("/proc/self/mountinfo")
            .expect("mountinfo")
            .lines()
            .filter(|l| l.split(' ').nth(4) == Some(&*m.path().to_string_lossy()))
            .count();
        assert_eq!(n, 1, "{pt}: mounts at {} after remount", m.path().display());
    }
}

// ---------------------------------------------------------------------------
// 9. Passthrough on vs off

/// sha256 of a file read through a private read-only mapping.
fn mmap_sha(path: &Path) -> String {
    use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};
    let f = File::open(path).expect("open");
    let len = f.metadata().expect("stat").len() as usize;
    assert!(len > 0);
    // SAFETY: a fresh private read-only mapping of a file nobody writes, read
    // only within its length and unmapped before returning.
    unsafe {
        let p = mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ,
            MapFlags::PRIVATE,
            &f,
            0,
        )
        .expect("mmap");
        let h = sha256(std::slice::from_raw_parts(p as *const u8, len));
        munmap(p, len).expect("munmap");
        h
    }
}

#[test]
fn view_passthrough_on_and_off_serve_identical_bytes() {
    prerequisites();
    let store = store_with(&[DERIVED]);
    let want = golden_sha("big.bin");
    let mut listings = Vec::new();
    for (pt, log_says) in [
        ("passthrough=on", "reads are served by kernel passthrough"),
        ("passthrough=off", "reads are served by pread"),
    ] {
        let m = ViewMount::new(&store, &[pt]);
        assert!(
            m.log().contains(log_says),
            "{pt}: the daemon log does not say {log_says:?}:\n{}",
            m.log()
        );
        let l5 = m.diff(DERIVED, 4);
        let big = l5.join("srv/fixture/big.bin");
        let (h, n) = sha256_reader(File::open(&big).expect("big.bin"));
        assert_eq!(
            n,
            fixtures().get("FIXTURE_BIG_MB").parse::<u64>().expect("MB") << 20
        );
        assert_eq!(h, want, "{pt}: read() of big.bin");
        assert_eq!(mmap_sha(&big), want, "{pt}: mmap of big.bin");
        // Unaligned pread at the end and across a page boundary.
        let f = File::open(&big).expect("open");
        let mut tail = vec![0u8; 10000];
        let got = f.read_at(&mut tail, n - 4000).expect("pread at the end");
        assert_eq!(got, 4000, "{pt}: short read at EOF");
        let mut again = Vec::new();
        File::open(&big)
            .expect("open")
            .read_to_end(&mut again)
            .expect("read");
        assert_eq!(
            &again[(n - 4000) as usize..],
            &tail[..4000],
            "{pt}: pread at the end"
        );
        // The whole layer (2000 small files + big.bin) as a listing.
        listings.push(tree_listing(&l5));
    }
    let diff = listing_diff(&listings[0], &listings[1]);
    assert!(
        diff.is_empty(),
        "passthrough on (left) vs off (right):\n{diff}"
    );
    assert!(listings[0].len() > 2000);
}

// ---------------------------------------------------------------------------
// 10. Read-ahead across small files (`prefetch`)

/// Bytes of `path` in the page cache (`fincore`).
fn resident_bytes(path: &Path) -> u64 {
    let o = run_ok(
        Command::new("fincore")
            .args(["--bytes", "--noheadings", "--output", "RES"])
            .arg(path),
    );
    stdout(&o)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("fincore {}: {e}: {}", path.display(), stdout(&o)))
}

/// The store's objects of 65 bytes (larger than inline) to 128 KiB, by the
/// sha256 of their bytes.
fn small_objects_by_sha(store: &TempStore) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for d in fs::read_dir(store.path().join("repo/objects")).expect("objects") {
        let d = d.expect("entry").path();
        if !d.is_dir() {
            continue;
        }
        for f in fs::read_dir(&d).expect("readdir") {
            let f = f.expect("entry").path();
            let len = fs::metadata(&f).expect("stat").len();
            if (65..=128 << 10).contains(&len) {
                out.insert(sha256(&fs::read(&f).expect("read object")), f);
            }
        }
    }
    out
}

/// Regular files of 65 bytes to 128 KiB under `root` with their node
/// numbers and backing objects, sorted by node number.
fn small_files_by_node(
    root: &Path,
    objects: &BTreeMap<String, PathBuf>,
) -> Vec<(u64, PathBuf, PathBuf)> {
    use std::os::unix::ffi::OsStrExt as _;
    let out = run_ok(Command::new("find").arg(root).args([
        "-type", "f", "-size", "+64c", "-size", "-131073c", "-print0",
    ]));
    let mut files: Vec<_> = out
        .stdout
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let p = PathBuf::from(std::ffi::OsStr::from_bytes(p));
            let obj = objects
                .get(&sha256(&fs::read(&p).expect("read")))
                .unwrap_or_else(|| panic!("no backing object for {}", p.display()))
                .clone();
            (fs::metadata(&p).expect("stat").ino(), p, obj)
        })
        .collect();
    files.sort();
    files
}

/// Opening small files in node order (up or down) makes the daemon warm the
/// objects of the next ones (`prefetch=N`, default 4 threads); `prefetch=0`
/// warms nothing. Checked on cold caches with `fincore` on the objects.
#[test]
fn view_prefetch_warms_the_objects_of_the_next_small_files() {
    prerequisites();
    require_tool("fincore");
    let store = store_with(&[DERIVED]);
    let objects = small_objects_by_sha(&store);
    // (view, files ascending or descending by node number)
    let cases = |m: &ViewMount| {
        let img = small_files_by_node(&m.path().join("images").join(DERIVED), &objects);
        let mut diff = small_files_by_node(&m.diff(DERIVED, 4), &objects);
        diff.reverse();
        [("per-image view, up", img), ("layer diff, down", diff)]
    };
    // The objects of the files after the first three, within the window, not
    // shared with those three: what a stream of three opens should warm.
    let expected = |files: &[(u64, PathBuf, PathBuf)]| -> Vec<PathBuf> {
        let (first, rest) = files.split_at(3);
        let third = first[2].0;
        rest.iter()
            .take_while(|(ino, _, _)| ino.abs_diff(third) <= 32)
            .map(|(_, _, o)| o.clone())
            .filter(|o| first.iter().all(|(_, _, f)| f != o))
            .collect()
    };
    for (opts, on) in [(&[][..], true), (&["prefetch=0"][..], false)] {
        let m = ViewMount::new(&store, opts);
        for (what, files) in cases(&m) {
            // A run of files with neighbouring node numbers, as a tree walk has.
            let start = (0..files.len().saturating_sub(12))
                .find(|&k| {
                    files[k..k + 12]
                        .windows(2)
                        .all(|w| w[0].0.abs_diff(w[1].0) <= 4)
                })
                .unwrap_or_else(|| panic!("{what}: no 12 small files with neighbouring nodes"));
            let files = &files[start..];
            let want = expected(files);
            assert!(
                want.len() >= 8,
                "{what}: only {} objects to expect",
                want.len()
            );
            drop_page_cache();
            assert!(
                want.iter().all(|o| resident_bytes(o) == 0),
                "{what}: objects resident before any read"
            );
            for (_, p, _) in &files[..3] {
                fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            }
            let deadline = Instant::now() + Duration::from_secs(if on { 10 } else { 2 });
            let warm = loop {
                let warm = want.iter().filter(|o| resident_bytes(o) > 0).count();
                if (on && warm == want.len()) || Instant::now() > deadline {
                    break warm;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            if on {
                assert_eq!(
                    warm,
                    want.len(),
                    "{what}: objects warmed ahead of the reader"
                );
            } else {
                assert_eq!(warm, 0, "{what}: prefetch=0 warmed objects");
            }
        }
    }
}

/// A FIFO in place of a store object: every open of it waits for a writer,
/// like a disk read that does not end. After 30 s (a test that failed and
/// waits for a process stuck behind the FIFO) and when dropped, it ends the
/// waits; dropped, it puts the object back.
struct FifoInPlaceOf {
    path: PathBuf,
    saved: Vec<u8>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    releaser: Option<std::thread::JoinHandle<()>>,
}

impl FifoInPlaceOf {
    fn new(object: &Path) -> FifoInPlaceOf {
        use std::sync::atomic::Ordering;
        let saved = fs::read(object).expect("read object");
        fs::remove_file(object).expect("remove object");
        run_ok(Command::new("mkfifo").arg(object));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (path, flag) = (object.to_path_buf(), std::sync::Arc::clone(&stop));
        let releaser = std::thread::spawn(move || {
            let start = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                if start.elapsed() > Duration::from_secs(30) {
                    release_fifo(&path);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        FifoInPlaceOf {
            path: object.to_path_buf(),
            saved,
            stop,
            releaser: Some(releaser),
        }
    }

    /// Let whoever waits on the FIFO now go on.
    fn release(&self) {
        release_fifo(&self.path);
    }
}

/// Open FIFO `path` for writing and close it again: whoever waits in an open
/// of it goes on (ENXIO when nobody does).
fn release_fifo(path: &Path) {
    let _ = rustix::fs::open(
        path,
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::NONBLOCK,
        rustix::fs::Mode::empty(),
    );
}

impl Drop for FifoInPlaceOf {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.releaser.take() {
            let _ = t.join();
        }
        for _ in 0..100 {
            self.release();
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = fs::remove_file(&self.path);
        let _ = fs::write(&self.path, &self.saved);
    }
}

/// A small file's first READ that must wait for its object (here: the object
/// replaced by a FIFO nobody writes to, a disk read that never ends) is
/// answered by a prefetch worker, so the daemon thread of that CPU goes on
/// serving other readers on the same CPU: over io_uring there is one such
/// thread per CPU, and without this a cold read held up every request made
/// on its CPU. When the "read" ends, its reader gets EIO (the object is
/// damaged) and the daemon logs it. Through both transports.
#[test]
fn view_a_read_waiting_for_its_object_does_not_hold_up_other_readers() {
    prerequisites();
    require_tool("taskset");
    let store = store_with(&[DERIVED]);
    let objects = small_objects_by_sha(&store);
    let _uring = UringEnabled::new();
    for transport in ["uring=on", "uring=off"] {
        let m = ViewMount::new(&store, &[transport]);
        let root = m.path().join("images").join(DERIVED);
        let files = small_files_by_node(&root, &objects);
        // Two files with different objects, far apart (no read-ahead link).
        let (_, stuck, stuck_obj) = files.first().expect("small files").clone();
        let (_, other, other_obj) = files.last().expect("small files").clone();
        let stuck = stuck.strip_prefix(m.path()).unwrap().to_path_buf();
        let other = other.strip_prefix(m.path()).unwrap().to_path_buf();
        assert_ne!(
            stuck_obj, other_obj,
            "{transport}: the two files share an object"
        );
        let fifo = FifoInPlaceOf::new(&stuck_obj);
        // Remount: the view has served nothing of these files yet.
        drop(m);
        let m = ViewMount::new(&store, &[transport]);
        let (stuck, other) = (m.path().join(stuck), m.path().join(other));
        drop_page_cache();
        let mut blocked = Command::new("taskset")
            .args(["-c", "0", "cat"])
            .arg(&stuck)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("cat");
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            blocked.try_wait().expect("wait").is_none(),
            "{transport}: the read of a file whose object is a FIFO did not wait"
        );
        // Same CPU, meanwhile: a listing, a stat and another file's content.
        let t = Instant::now();
        let out = run_ok_t(
            Command::new("taskset")
                .args([
                    "-c",
                    "0",
                    "sh",
                    "-c",
                    "ls -l \"$1\" >/dev/null && cat \"$2\"",
                ])
                .arg("sh")
                .arg(other.parent().unwrap())
                .arg(&other),
            20,
        );
        assert_eq!(
            sha256(&out.stdout),
            sha256(&fs::read(&other_obj).expect("object")),
            "{transport}: another file read while the first waits"
        );
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{transport}: other readers waited {:?}",
            t.elapsed()
        );
        // End the wait: a writer's open lets the worker's open return, and it
        // finds a 0-byte "object". The kernel asks again after a failed
        // read-ahead (one more READ, one more wait), so keep ending waits.
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = blocked.try_wait().expect("wait") {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "{transport}: the waiting read never ended"
            );
            fifo.release();
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        blocked
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(
            !status.success() && err.contains("Input/output error"),
            "{transport}: read of a damaged object: {status:?} {err}"
        );
        drop(fifo);
        drop(m);
    }
}

// ---------------------------------------------------------------------------
// 11. A daemon that ends leaves a newer mount at its place alone

/// A daemon whose mount was detached must not unmount, when it ends, a new
/// mount at the same place: fuser 0.18.0 did (its "still mounted?" check read
/// the `POLLERR` of a dead connection the wrong way round), which also made
/// `unistore umount M && unistore mount M` lose the new mount when the old
/// daemon was slow to exit. The open file keeps the old connection alive past
/// the detach, so the old daemon ends only after the new mount exists.
#[test]
fn view_ending_daemon_leaves_a_new_mount_at_the_same_place_alone() {
    prerequisites();
    let store = store_with(&[BASE]);
    let mut m = ViewMount::new(&store, &[]);
    let old = m.pid;
    let held = File::open(m.cstor().join("overlay-images/images.json")).expect("open");
    run_ok(Command::new("umount").arg("-l").arg(m.path()));
    assert!(!fuse_mounted(m.path()), "still mounted after umount -l");
    run_ok_t(m.unistore().arg("mount").arg(m.path()), 90);
    let new: Vec<u32> = daemon_pids(&m.store, m.path())
        .into_iter()
        .filter(|&p| p != old)
        .collect();
    assert_eq!(new.len(), 1, "new daemons: {new:?}");
    m.pid = new[0];
    assert!(
        cmdline(old).is_some(),
        "the old daemon ended before its last file was closed"
    );
    drop(held);
    let t = Instant::now();
    while cmdline(old).is_some_and(|a| is_daemon_of(&a, &m.store, m.path())) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "old daemon {old} still running 10 s after its connection ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Give a wrongly aimed unmount time to land before looking.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        fuse_mounted(m.path()),
        "the old daemon's exit unmounted the new mount at {}",
        m.path().display()
    );
    assert!(m.daemon_alive(), "the new daemon {} is gone", m.pid);
    let images = fs::read(m.cstor().join("overlay-images/images.json")).expect("read");
    assert!(
        images.starts_with(b"["),
        "images.json through the new mount"
    );
}
