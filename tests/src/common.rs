//! Helpers shared by the integration tests: the unistore binary, the real
//! image fixtures, prerequisites (which fail, never skip), temporary stores,
//! tree hashes and process running.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Root of the cargo workspace (the parent of this crate).
pub fn workspace_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests crate has a parent directory")
            .to_path_buf()
    })
}

/// The `unistore` binary under test: `$UNISTORE_BIN`, else
/// `<workspace>/target/debug/unistore`, built with `cargo build -p unistore-cli`
/// (once per test process) when it is missing.
///
/// `cargo test -p unistore-integration-tests` does not rebuild the CLI by
/// itself; run `cargo build -p unistore-cli` first (or set `UNISTORE_BIN`)
/// to test current sources.
pub fn unistore_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("UNISTORE_BIN") {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "UNISTORE_BIN={} does not name an existing file",
                p.display()
            );
            return p;
        }
        let bin = workspace_root().join("target/debug/unistore");
        if !bin.is_file() {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let out = run(Command::new(cargo).current_dir(workspace_root()).args([
                "build",
                "-p",
                "unistore-cli",
            ]));
            assert!(
                out.status.success(),
                "`cargo build -p unistore-cli` failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                bin.is_file(),
                "`cargo build -p unistore-cli` succeeded but {} does not exist",
                bin.display()
            );
        }
        bin
    })
}

/// The `unistore-ostree-ext-check` binary (crate `tests/ostree-ext-check`, the
/// ostree-ext crate reading a repository): `$UNISTORE_OSTREE_EXT_CHECK`, else
/// next to [`unistore_bin`]. Built with `cargo build -p
/// unistore-ostree-ext-check` (once per test process) when it is missing and
/// `UNISTORE_BIN` is not set; `scripts/test.sh` builds it before the tests.
pub fn ostree_ext_check_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("UNISTORE_OSTREE_EXT_CHECK") {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "UNISTORE_OSTREE_EXT_CHECK={} does not name an existing file",
                p.display()
            );
            return p;
        }
        let bin = unistore_bin().with_file_name("unistore-ostree-ext-check");
        if !bin.is_file() && std::env::var_os("UNISTORE_BIN").is_none() {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let out = run(Command::new(cargo).current_dir(workspace_root()).args([
                "build",
                "-p",
                "unistore-ostree-ext-check",
            ]));
            assert!(
                out.status.success(),
                "`cargo build -p unistore-ostree-ext-check` failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            bin.is_file(),
            "{} does not exist: run `cargo build -p unistore-ostree-ext-check` \
             (needs libostree-dev, libzstd-dev: scripts/deps.sh)",
            bin.display()
        );
        bin
    })
}

/// The variables of `$FIXTURE_DIR/fixtures.env` (FIXTURE_*).
#[derive(Debug)]
pub struct Fixtures {
    vars: BTreeMap<String, String>,
}

impl Fixtures {
    /// A variable; panics with the list of known ones if absent.
    pub fn get(&self, key: &str) -> &str {
        match self.vars.get(key) {
            Some(v) => v,
            None => panic!(
                "fixtures.env has no {key}; it has: {:?}",
                self.vars.keys().collect::<Vec<_>>()
            ),
        }
    }

    /// A variable as a path.
    pub fn path(&self, key: &str) -> PathBuf {
        PathBuf::from(self.get(key))
    }

    /// `containers-storage:[overlay@STORAGE+RUNROOT]IMAGE` for an image of the fixture store.
    pub fn cstor_ref(&self, image: &str) -> String {
        format!(
            "containers-storage:[{}@{}+{}]{}",
            self.get("FIXTURE_STORAGE_DRIVER"),
            self.get("FIXTURE_STORAGE"),
            self.get("FIXTURE_RUNROOT"),
            image
        )
    }
}

/// Build (or confirm up to date) the fixtures, once per test process, and
/// return the variables of `fixtures.env`. Needs root and podman.
pub fn fixtures() -> &'static Fixtures {
    static FIX: OnceLock<Fixtures> = OnceLock::new();
    FIX.get_or_init(|| {
        require_root();
        for t in ["podman", "skopeo", "runc", "jq", "bash"] {
            require_tool(t);
        }
        let script = workspace_root().join("tests/fixtures/build-fixtures.sh");
        let out = run(Command::new("bash").arg(&script));
        assert!(
            out.status.success(),
            "{} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = std::env::var_os("UNISTORE_FIXTURES")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp/unistore-fixtures"));
        let env_file = dir.join("fixtures.env");
        // Let bash do the unquoting of the %q values.
        let out = run(Command::new("bash")
            .arg("-c")
            .arg(
                r#"set -e; . "$1"; for v in ${!FIXTURE_@}; do printf '%s=%s\0' "$v" "${!v}"; done"#,
            )
            .arg("bash")
            .arg(&env_file));
        assert!(
            out.status.success(),
            "sourcing {} failed: {}",
            env_file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut vars = BTreeMap::new();
        for rec in out.stdout.split(|&b| b == 0).filter(|r| !r.is_empty()) {
            let rec = String::from_utf8(rec.to_vec()).expect("fixtures.env is UTF-8");
            let (k, v) = rec.split_once('=').expect("NAME=VALUE");
            vars.insert(k.to_string(), v.to_string());
        }
        assert!(
            vars.contains_key("FIXTURE_DERIVED_DOCKER_TAR"),
            "{} looks incomplete: {vars:?}",
            env_file.display()
        );
        Fixtures { vars }
    })
}

/// Fail (never skip) unless running as root.
pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the integration tests must run as root (they run podman with its own \
         graph root, create device nodes and chown); run them with sudo"
    );
}

/// Full path of `tool` in `$PATH`, if any.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| {
            fs::metadata(p)
                .map(|m| m.is_file() && m.mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Fail (never skip) unless `tool` is in `$PATH`.
pub fn require_tool(tool: &str) -> PathBuf {
    which(tool).unwrap_or_else(|| {
        panic!(
            "required tool `{tool}` is not installed (not found in PATH={}); \
             install it (e.g. apt-get install {tool}) — these tests fail rather than skip",
            std::env::var("PATH").unwrap_or_default()
        )
    })
}

/// Run a command to completion, capturing stdout and stderr.
/// Panics only if the command cannot be started.
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null());
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", describe(cmd)))
}

/// Run a command and panic with its output unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        describe(cmd),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A command line as a string, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// stdout as a string.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr as a string.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `sha256:<hex>` of bytes.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// `sha256:<hex>` of everything `r` yields.
pub fn sha256_reader(mut r: impl Read) -> (String, u64) {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf).expect("reading");
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    (format!("sha256:{}", hex::encode(h.finalize())), n)
}

/// A unistore store in a fresh temporary directory (removed on drop).
#[derive(Debug)]
pub struct TempStore {
    dir: tempfile::TempDir,
}

impl TempStore {
    /// `unistore --store DIR init` in a new temporary directory.
    pub fn new() -> TempStore {
        let s = TempStore::uninitialized();
        s.ok(["init"]);
        s
    }

    /// A temporary directory for a store, not initialised.
    pub fn uninitialized() -> TempStore {
        TempStore {
            dir: tempdir("unistore-it-store-"),
        }
    }

    /// A copy (`cp -a`) of the store at `src` in a new temporary directory.
    pub fn copy_of(src: &Path) -> TempStore {
        let s = TempStore::uninitialized();
        let dst = s.path();
        fs::remove_dir(dst).expect("removing empty temp dir");
        run_ok(Command::new("cp").arg("-a").arg(src).arg(dst));
        s
    }

    /// Store root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `unistore --store DIR ARGS...` (not yet run).
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(unistore_bin());
        c.arg("--store").arg(self.path()).args(args);
        // Keep the environment of crash/trace variables out unless a test sets them.
        for v in [
            "UNISTORE_CRASH_AT",
            "UNISTORE_CRASH_TRACE",
            "UNISTORE_LOG",
            "UNISTORE_STORE",
        ] {
            c.env_remove(v);
        }
        c
    }

    /// Run `unistore ARGS`, capturing output.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(&mut self.cmd(args))
    }

    /// Run `unistore ARGS` and panic unless it succeeds.
    pub fn ok<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_ok(&mut self.cmd(args))
    }

    /// Run `unistore ARGS` (which must print JSON) and parse stdout.
    pub fn json<I, S>(&self, args: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.cmd(args);
        let out = run_ok(&mut c);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{} printed invalid JSON ({e}):\n{}",
                describe(&c),
                stdout(&out)
            )
        })
    }

    /// `unistore import --json SRC`: the import report.
    pub fn import(&self, src: &str) -> Value {
        self.json(["import", "--json", src])
    }

    /// `unistore inspect --json NAME`.
    pub fn inspect(&self, name: &str) -> Value {
        self.json(["inspect", "--json", name])
    }

    /// `unistore images --json`.
    pub fn images(&self) -> Vec<Value> {
        match self.json(["images", "--json"]) {
            Value::Array(v) => v,
            other => panic!("images --json is not an array: {other}"),
        }
    }

    /// `unistore df --json` PhysicalBytes.
    pub fn physical_bytes(&self) -> u64 {
        self.json(["df", "--json"])["PhysicalBytes"]
            .as_u64()
            .expect("df --json has PhysicalBytes")
    }

    /// sha256 and size of `unistore layer-tar NAME INDEX` (streamed, not buffered).
    pub fn layer_tar_sha(&self, name: &str, index: usize) -> (String, u64) {
        let mut c = self.cmd(["layer-tar", name, &index.to_string()]);
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", describe(&c)));
        let res = sha256_reader(child.stdout.take().expect("piped stdout"));
        let mut err = String::new();
        child
            .stderr
            .take()
            .expect("piped stderr")
            .read_to_string(&mut err)
            .ok();
        let st = child.wait().expect("waiting for layer-tar");
        assert!(st.success(), "{} failed ({st}): {err}", describe(&c));
        res
    }

    /// Assert every layer of image `name` reads back as the tar whose sha256
    /// is the corresponding entry of `diff_ids` (bit-exact), and that
    /// `inspect` reports those diffIDs.
    pub fn assert_layers_bit_exact(&self, name: &str, diff_ids: &[String]) {
        let insp = self.inspect(name);
        let layers = insp["Layers"].as_array().expect("inspect has Layers");
        assert_eq!(
            layers.len(),
            diff_ids.len(),
            "{name}: inspect shows {} layers, source has {}",
            layers.len(),
            diff_ids.len()
        );
        for (i, want) in diff_ids.iter().enumerate() {
            assert_eq!(
                layers[i]["DiffID"].as_str(),
                Some(want.as_str()),
                "{name}: inspect DiffID of layer {i}"
            );
            assert_eq!(
                insp["RootFS"]["Layers"][i].as_str(),
                Some(want.as_str()),
                "{name}: inspect RootFS.Layers[{i}]"
            );
            let (got, size) = self.layer_tar_sha(name, i);
            assert_eq!(
                &got, want,
                "{name}: layer-tar {i} ({size} bytes) is not bit-exact"
            );
            assert_eq!(
                layers[i]["Size"].as_u64(),
                Some(size),
                "{name}: inspect Size of layer {i}"
            );
        }
    }
}

/// A temporary directory under /var/tmp (same filesystem as the fixtures).
pub fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/var/tmp")
        .expect("creating a temporary directory")
}

/// What one path of a tree looks like, for [`tree_hash`].
fn describe_entry(path: &Path, md: &fs::Metadata) -> String {
    let ft = md.file_type();
    let mode = md.mode() & 0o7777;
    if ft.is_symlink() {
        let t = fs::read_link(path).expect("readlink");
        format!("symlink {mode:o} -> {}", t.display())
    } else if ft.is_dir() {
        format!("dir {mode:o}")
    } else if ft.is_file() {
        let (h, n) = sha256_reader(fs::File::open(path).expect("open"));
        assert_eq!(n, md.len(), "{} changed while hashing", path.display());
        format!("file {mode:o} {} {h}", md.len())
    } else if ft.is_fifo() {
        format!("fifo {mode:o}")
    } else if ft.is_char_device() || ft.is_block_device() {
        format!(
            "{} {mode:o} {}",
            if ft.is_char_device() { "char" } else { "block" },
            md.rdev()
        )
    } else {
        format!("socket {mode:o}")
    }
}

/// Content description of a whole directory tree: relative path → type,
/// mode, size, sha256 of contents, symlink target. Two equal maps mean the
/// trees are byte-identical (timestamps and inode numbers aside).
pub fn tree_listing(root: &Path) -> BTreeMap<String, String> {
    tree_listing_filtered(root, |_| true)
}

/// [`tree_listing`] of the paths (relative, `/`-separated) for which `keep` is true.
/// Directories that are not kept are not descended into.
pub fn tree_listing_filtered(root: &Path, keep: impl Fn(&str) -> bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let md = fs::symlink_metadata(root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    out.insert(".".to_string(), describe_entry(root, &md));
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for ent in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let ent = ent.expect("readdir");
            let p = ent.path();
            let rel = p
                .strip_prefix(root)
                .expect("below root")
                .to_string_lossy()
                .into_owned();
            if !keep(&rel) {
                continue;
            }
            let md = fs::symlink_metadata(&p).expect("lstat");
            out.insert(rel, describe_entry(&p, &md));
            if md.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

/// sha256 over a [`tree_listing`].
pub fn tree_hash(root: &Path) -> String {
    listing_hash(&tree_listing(root))
}

/// sha256 over a listing.
pub fn listing_hash(l: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in l {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([b'\n']);
    }
    hex::encode(h.finalize())
}

/// Human-readable difference of two listings (empty if equal).
pub fn listing_diff(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> String {
    let mut s = String::new();
    let mut n = 0;
    for (k, v) in before {
        match after.get(k) {
            None => {
                n += 1;
                if n <= 40 {
                    s.push_str(&format!("  removed  {k}: {v}\n"));
                }
            }
            Some(w) if w != v => {
                n += 1;
                if n <= 40 {
                    s.push_str(&format!("  changed  {k}: {v}  =>  {w}\n"));
                }
            }
            _ => {}
        }
    }
    for (k, v) in after {
        if !before.contains_key(k) {
            n += 1;
            if n <= 40 {
                s.push_str(&format!("  added    {k}: {v}\n"));
            }
        }
    }
    if n > 40 {
        s.push_str(&format!("  ... {} differences in all\n", n));
    }
    s
}

/// Unmount everything mounted at or below `dir` (podman's overlay driver may
/// leave mounts behind in a temporary graph root).
pub fn unmount_below(dir: &Path) {
    let Ok(mounts) = fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    let prefix = dir.to_string_lossy().into_owned();
    let mut mps: Vec<String> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .map(|m| m.replace("\\040", " "))
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .collect();
    mps.sort_by(|a, b| b.cmp(a));
    for m in mps {
        let _ = Command::new("umount").arg("-l").arg(&m).status();
    }
}

/// A podman with its own graph root, run root and tmp dir in a temporary
/// directory (the host's and the fixtures' stores are never touched).
#[derive(Debug)]
pub struct IsolatedPodman {
    dir: tempfile::TempDir,
}

impl IsolatedPodman {
    /// A fresh, empty podman store.
    pub fn new() -> IsolatedPodman {
        require_root();
        require_tool("podman");
        let dir = tempdir("unistore-it-podman-");
        let d = dir.path();
        fs::create_dir_all(d.join("tmp")).expect("mkdir tmp");
        // A private storage.conf so no host option (additional image stores, ...) leaks in.
        fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                d.join("root").display(),
                d.join("run").display()
            ),
        )
        .expect("writing storage.conf");
        IsolatedPodman { dir }
    }

    /// Graph root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `podman --root ... ARGS` (not yet run).
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .args(["--storage-driver", "overlay", "--tmpdir"])
            .arg(d.join("tmp"))
            .args([
                "--runtime",
                "runc",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "none",
            ])
            .args(args);
        // No host storage.conf options (additional image stores, ...) leak in.
        if let Some(f) = fixtures().vars.get("FIXTURE_CONTAINERS_CONF") {
            c.env("CONTAINERS_CONF", f);
        }
        c.env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"));
        c
    }

    /// Run `podman ARGS` and panic unless it succeeds.
    pub fn ok<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_ok(&mut self.cmd(args))
    }
}

impl Drop for IsolatedPodman {
    fn drop(&mut self) {
        unmount_below(self.dir.path());
    }
}

/// Diff IDs (`rootfs.diff_ids`) of a config blob.
pub fn config_diff_ids(config: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(config).expect("config is JSON");
    v["rootfs"]["diff_ids"]
        .as_array()
        .expect("config has rootfs.diff_ids")
        .iter()
        .map(|d| d.as_str().expect("diff_id is a string").to_string())
        .collect()
}

/// Path of a blob in an OCI layout directory.
pub fn oci_blob_path(dir: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').expect("algo:hex digest");
    dir.join("blobs").join(alg).join(hex)
}

/// The (single) image of an OCI layout directory: (manifest digest, manifest bytes, config bytes).
pub fn oci_dir_image(dir: &Path) -> (String, Vec<u8>, Vec<u8>) {
    let index: Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).expect("index.json"))
            .expect("index.json is JSON");
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .expect("index has a manifest")
        .to_string();
    let manifest = fs::read(oci_blob_path(dir, &mdigest)).expect("manifest blob");
    assert_eq!(sha256(&manifest), mdigest, "fixture manifest digest");
    let m: Value = serde_json::from_slice(&manifest).expect("manifest is JSON");
    let cdigest = m["config"]["digest"].as_str().expect("config digest");
    let config = fs::read(oci_blob_path(dir, cdigest)).expect("config blob");
    assert_eq!(sha256(&config), cdigest, "fixture config digest");
    (mdigest, manifest, config)
}

/// Read named members of a tar archive (paths compared without a leading `./`).
pub fn tar_members(archive: &Path, want: impl Fn(&str) -> bool) -> BTreeMap<String, Vec<u8>> {
    let f = fs::File::open(archive).unwrap_or_else(|e| panic!("{}: {e}", archive.display()));
    let mut ar = tar::Archive::new(f);
    let mut out = BTreeMap::new();
    for e in ar.entries().expect("tar entries") {
        let mut e = e.expect("tar entry");
        let name = e
            .path()
            .expect("member path")
            .to_string_lossy()
            .into_owned();
        let name = name.trim_start_matches("./").to_string();
        if e.header().entry_type().is_file() && want(&name) {
            let mut v = Vec::new();
            e.read_to_end(&mut v).expect("reading member");
            out.insert(name, v);
        }
    }
    out
}

/// The image of an oci-archive: (manifest digest, manifest bytes, config bytes).
pub fn oci_archive_image(archive: &Path) -> (String, Vec<u8>, Vec<u8>) {
    let small = tar_members(archive, |n| n == "index.json" || n.starts_with("blobs/"));
    let index: Value = serde_json::from_slice(&small["index.json"]).expect("index.json");
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .expect("manifest")
        .to_string();
    let blob = |d: &str| {
        small
            .get(&format!("blobs/{}", d.replacen(':', "/", 1)))
            .unwrap_or_else(|| panic!("{}: no blob {d}", archive.display()))
            .clone()
    };
    let manifest = blob(&mdigest);
    let m: Value = serde_json::from_slice(&manifest).expect("manifest is JSON");
    let config = blob(m["config"]["digest"].as_str().expect("config digest"));
    (mdigest, manifest, config)
}

/// The config bytes of a docker-archive's (single) image.
pub fn docker_archive_config(archive: &Path) -> Vec<u8> {
    let m = tar_members(archive, |n| n == "manifest.json");
    let items: Value = serde_json::from_slice(&m["manifest.json"]).expect("manifest.json");
    let cfg_name = items[0]["Config"].as_str().expect("Config").to_string();
    let c = tar_members(archive, |n| n == cfg_name);
    c.get(&cfg_name)
        .unwrap_or_else(|| panic!("{}: no member {cfg_name}", archive.display()))
        .clone()
}

/// The config bytes of an image in a containers-storage graph root, read from
/// `overlay-images/<id>/=base64(sha256:<id>)` as c/storage stores it.
pub fn cstor_config(graphroot: &Path, id: &str) -> Vec<u8> {
    let key = base64_std(format!("sha256:{id}").as_bytes());
    let p = graphroot
        .join("overlay-images")
        .join(id)
        .join(format!("={key}"));
    fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Standard base64 with padding (small inputs only).
pub fn base64_std(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Write back and drop the page cache (and the kernel's dentries and inodes):
/// the next accesses to a view reach the FUSE daemon.
pub fn drop_page_cache() {
    let _ = Command::new("sync").status();
    fs::write("/proc/sys/vm/drop_caches", "3").expect("dropping the page cache");
}
