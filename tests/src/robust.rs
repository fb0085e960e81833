//! Issue 6, "tests that try": unistore against hostile input, a full disk,
//! garbage collection and fsck with damage and users, and `verify=on`.
//!
//! - `hostile_corpus`: every case of `tests/hostile/gen.py` (generated at
//!   test time, deterministically) against a store holding a real image: one
//!   clear `Error:` line, no panic, no hang, bounded memory, nothing written
//!   outside the store, the store unchanged but for orphan objects that
//!   `gc` removes; the positive controls import and read back bit-exactly.
//! - `full_disk`: an import that does not fit fails cleanly and leaves the
//!   store as it was; with room, the same import succeeds.
//! - gc: `--dry-run` reports exactly what gc then removes; a file open through
//!   the view keeps reading after its image is removed and collected; podman
//!   containers keep their image (rmi refuses, `--force` + gc keeps the data).
//! - fsck: a corrupt object is reported with image, layer and object, and
//!   `--repair` spares the healthy image; a deleted index is rebuilt.
//! - `verify=on`: a corrupt object gives EIO; without it, its bytes are served.
//!
//! Everything needs root and the fixtures; missing tools fail, never skip.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::host::Mounted;

// ---------------------------------------------------------------------------
// Driving a store wherever it lives

/// A store at a chosen path (a private directory, a loop-mounted filesystem).
struct StoreAt {
    root: PathBuf,
}

impl StoreAt {
    fn init(root: &Path) -> StoreAt {
        let s = StoreAt {
            root: root.to_path_buf(),
        };
        s.cli_ok(&["init"]);
        s
    }
}

/// `unistore --store S ...` for any store.
trait Cli {
    fn root(&self) -> &Path;

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(unistore_bin());
        c.arg("--store").arg(self.root()).args(args);
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

    fn cli_ok(&self, args: &[&str]) -> Output {
        let out = run_ok(&mut self.command(args));
        assert_no_panic(&out, &describe(&self.command(args)));
        out
    }

    /// Run a command that prints JSON; its exit status is returned, not checked.
    fn json_any(&self, args: &[&str]) -> (Output, Value) {
        let c = self.command(args);
        let out = run(&mut self.command(args));
        assert_no_panic(&out, &describe(&c));
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{} printed no JSON ({e}; {}):\nstdout: {}\nstderr: {}",
                describe(&c),
                out.status,
                stdout(&out),
                stderr(&out)
            )
        });
        (out, v)
    }

    fn cli_json(&self, args: &[&str]) -> Value {
        let (out, v) = self.json_any(args);
        assert!(
            out.status.success(),
            "{} failed ({}): {}",
            describe(&self.command(args)),
            out.status,
            stderr(&out)
        );
        v
    }

    fn fsck(&self) -> Value {
        self.json_any(&["fsck", "--json"]).1
    }

    fn image_ids(&self) -> BTreeSet<String> {
        self.cli_json(&["images", "--json"])
            .as_array()
            .expect("images --json is an array")
            .iter()
            .map(|e| e["Id"].as_str().expect("Id").to_string())
            .collect()
    }

    /// sha256 and size of `unistore layer-tar NAME I`, streamed.
    fn layer_sha(&self, name: &str, i: usize) -> (String, u64) {
        let mut c = self.command(&["layer-tar", name, &i.to_string()]);
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn layer-tar");
        let res = sha256_reader(child.stdout.take().expect("stdout"));
        let mut err = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .ok();
        let st = child.wait().expect("wait layer-tar");
        assert!(st.success(), "{} failed ({st}): {err}", describe(&c));
        res
    }

    /// Every layer of `name` reads back as the tar its diffID names.
    fn bit_exact(&self, name: &str, diff_ids: &[String]) {
        let insp = self.cli_json(&["inspect", "--json", name]);
        let n = insp["Layers"].as_array().expect("Layers").len();
        assert_eq!(n, diff_ids.len(), "{name}: number of layers");
        for (i, want) in diff_ids.iter().enumerate() {
            let (got, size) = self.layer_sha(name, i);
            assert_eq!(
                &got, want,
                "{name}: layer {i} ({size} bytes) does not read back bit-exactly"
            );
        }
    }
}

impl Cli for StoreAt {
    fn root(&self) -> &Path {
        &self.root
    }
}

impl Cli for TempStore {
    fn root(&self) -> &Path {
        self.path()
    }
}

fn assert_no_panic(out: &Output, what: &str) {
    for s in [stdout(out), stderr(out)] {
        assert!(
            !s.contains("panicked"),
            "{what} panicked ({}):\n{s}",
            out.status
        );
    }
}

/// Run `cmd` with a deadline; kill it when the deadline passes.
/// Returns the output and whether it was killed for taking too long.
fn run_bounded(cmd: &mut Command, limit: Duration) -> (Output, bool) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", describe(cmd)));
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let to = std::thread::spawn(move || {
        let mut v = Vec::new();
        so.read_to_end(&mut v).ok();
        v
    });
    let te = std::thread::spawn(move || {
        let mut v = Vec::new();
        se.read_to_end(&mut v).ok();
        v
    });
    let deadline = Instant::now() + limit;
    let mut killed = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            killed = true;
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = Output {
        status,
        stdout: to.join().expect("stdout reader"),
        stderr: te.join().expect("stderr reader"),
    };
    (out, killed)
}

/// Objects of a store: file name (hex) → size.
fn objects(root: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let dir = root.join("repo/objects");
    for sub in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let sub = sub.expect("readdir");
        let d = sub.file_name().to_string_lossy().into_owned();
        if d.len() != 2 || !sub.file_type().expect("type").is_dir() {
            continue;
        }
        for o in fs::read_dir(sub.path()).expect("readdir") {
            let o = o.expect("entry");
            let md = o.metadata().expect("stat object");
            out.insert(format!("{d}{}", o.file_name().to_string_lossy()), md.len());
        }
    }
    out
}

/// Stream links of a store: name → target.
fn streams(root: &Path) -> BTreeMap<String, String> {
    let dir = root.join("repo/streams");
    fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let e = e.expect("entry");
            let t = fs::read_link(e.path())
                .map(|t| t.display().to_string())
                .unwrap_or_else(|_| "(not a link)".into());
            (e.file_name().to_string_lossy().into_owned(), t)
        })
        .collect()
}

fn object_path(root: &Path, hex: &str) -> PathBuf {
    root.join("repo/objects").join(&hex[..2]).join(&hex[2..])
}

/// The objects of a store whose content is exactly `data`.
fn objects_with_content(root: &Path, data: &[u8]) -> Vec<String> {
    let want = sha256(data);
    objects(root)
        .into_iter()
        .filter(|(_, size)| *size == data.len() as u64)
        .filter(|(hex, _)| sha256(&fs::read(object_path(root, hex)).expect("read object")) == want)
        .map(|(hex, _)| hex)
        .collect()
}

/// Kinds of the findings of an `fsck --json` report.
fn finding_kinds(report: &Value) -> Vec<String> {
    report["Findings"]
        .as_array()
        .expect("Findings")
        .iter()
        .map(|f| f["Kind"].as_str().expect("Kind").to_string())
        .collect()
}

fn base_diff_ids() -> Vec<String> {
    let (_, _, cfg) = oci_dir_image(&fixtures().path("FIXTURE_BASE_OCI_DIR"));
    config_diff_ids(&cfg)
}

fn docker_diff_ids(key: &str) -> Vec<String> {
    config_diff_ids(&docker_archive_config(&fixtures().path(key)))
}

const TEMPLATE_PREFIX: &str = "unistore-it-robust-template-";

/// A store holding base:1, derived:1 and app:1 (from their docker-archives),
/// built once per test process in /var/tmp and copied by each test (importing
/// derived takes ~15 s). Templates of earlier test processes that are gone
/// are removed here.
fn template() -> &'static Path {
    static T: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let fx = fixtures();
        for e in fs::read_dir("/var/tmp").expect("/var/tmp").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(TEMPLATE_PREFIX) {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = PathBuf::from(format!("/var/tmp/{TEMPLATE_PREFIX}{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let s = StoreAt::init(&dir);
        for k in [
            "FIXTURE_BASE_DOCKER_TAR",
            "FIXTURE_DERIVED_DOCKER_TAR",
            "FIXTURE_APP_DOCKER_TAR",
        ] {
            s.cli_ok(&["import", "-q", &format!("docker-archive:{}", fx.get(k))]);
        }
        dir
    })
}

/// A copy of the [`template`] store: base:1, derived:1 and app:1.
fn store_all() -> TempStore {
    TempStore::copy_of(template())
}

/// sha256 of a file of derived:1's /srv/fixture in the fixtures' golden listing.
fn golden_sha(rel: &str) -> String {
    let text = fs::read_to_string(fixtures().path("FIXTURE_DERIVED_LISTING")).expect("listing");
    let want = format!("  ./{rel}");
    let line = text
        .lines()
        .find(|l| l.ends_with(&want) && l.len() == 64 + want.len())
        .unwrap_or_else(|| panic!("no sha256 of {rel} in the golden listing"));
    format!("sha256:{}", &line[..64])
}

/// The bytes of member `path` of layer `i` of image `name`.
fn layer_member(store: &dyn Cli, name: &str, i: usize, path: &str) -> Vec<u8> {
    let dir = tempdir("unistore-it-layer-");
    let f = dir.path().join("layer.tar");
    let fstr = f.display().to_string();
    store.cli_ok(&["layer-tar", name, &i.to_string(), "-o", &fstr]);
    tar_members(&f, |n| n == path)
        .remove(path)
        .unwrap_or_else(|| panic!("layer {i} of {name} has no file {path}"))
}

fn errno_of(r: &std::io::Result<Vec<u8>>) -> Option<i32> {
    r.as_ref().err().and_then(|e| e.raw_os_error())
}

const EIO: i32 = 5;

// ---------------------------------------------------------------------------
// 1. The hostile corpus

/// One case of the corpus README.
#[derive(Debug, Clone)]
struct Case {
    name: String,
    transport: String,
    rel: String,
    /// `None`: must import. `Some(alternatives)`: must fail naming one of them.
    expect: Option<Vec<String>>,
    desc: String,
}

fn gen_py() -> PathBuf {
    workspace_root().join("tests/hostile/gen.py")
}

fn generate_corpus(out: &Path) {
    run_ok(Command::new("python3").arg(gen_py()).arg(out));
}

fn parse_corpus_readme(corpus: &Path) -> Vec<Case> {
    let text = fs::read_to_string(corpus.join("README")).expect("corpus README");
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "bad corpus README line: {l:?}");
            let (transport, rel) = f[1].split_once(':').expect("TRANSPORT:PATH");
            let expect = match f[2] {
                "OK" => None,
                e => Some(
                    e.strip_prefix("ERR ")
                        .unwrap_or_else(|| panic!("bad expectation {e:?}"))
                        .split('|')
                        .map(|s| s.to_lowercase())
                        .collect(),
                ),
            };
            Case {
                name: f[0].to_string(),
                transport: transport.to_string(),
                rel: rel.to_string(),
                expect,
                desc: f[3].to_string(),
            }
        })
        .collect()
}

/// Cheap per-case fingerprint of a tree: path → size, mtime, ctime, mode
/// (no content reads; a write or a new file shows up).
fn stat_listing(root: &Path, skip: &dyn Fn(&str) -> bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("entry").path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if skip(&rel) {
                continue;
            }
            let md = fs::symlink_metadata(&p).expect("lstat");
            if md.is_dir() {
                stack.push(p.clone());
            }
            out.insert(
                rel,
                format!(
                    "size={} mtime={}.{} ctime={}.{} mode={:o}",
                    md.len(),
                    md.mtime(),
                    md.mtime_nsec(),
                    md.ctime(),
                    md.ctime_nsec(),
                    md.mode()
                ),
            );
        }
    }
    out
}

fn top_level_names(dir: &str) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What the store looks like to a user, and its objects.
#[derive(Debug, PartialEq)]
struct Snap {
    catalog: Vec<u8>,
    streams: BTreeMap<String, String>,
    images: BTreeSet<String>,
    objects: BTreeMap<String, u64>,
}

fn snap(s: &StoreAt) -> Snap {
    Snap {
        catalog: fs::read(s.root.join("catalog.json")).expect("catalog.json"),
        streams: streams(&s.root),
        images: s.image_ids(),
        objects: objects(&s.root),
    }
}

const ESCAPE_NAME: &str = "unistore-hostile-escape";

/// Largest address space an import of the corpus may use.
const IMPORT_AS_LIMIT: u64 = 3 << 30;

/// Every case of the generated corpus, against a store that already holds
/// the base fixture image. See the module doc for what is checked.
#[test]
fn hostile_corpus() {
    let started = Instant::now();
    let fx = fixtures();
    require_tool("python3");
    require_tool("prlimit");
    let work = tempdir("unistore-it-robust-");
    let w = work.path();

    // The generator: deterministic, and its case table is the one in the README.
    let corpus = w.join("corpus");
    generate_corpus(&corpus);
    let again = w.join("corpus-again");
    generate_corpus(&again);
    let (l1, l2) = (tree_listing(&corpus), tree_listing(&again));
    assert!(
        l1 == l2,
        "tests/hostile/gen.py is not deterministic:\n{}",
        listing_diff(&l1, &l2)
    );
    fs::remove_dir_all(&again).expect("rm corpus-again");
    let table = stdout(&run_ok(
        Command::new("python3").arg(gen_py()).arg("--markdown"),
    ));
    let readme =
        fs::read_to_string(workspace_root().join("tests/hostile/README.md")).expect("README.md");
    assert!(
        readme.contains(&table),
        "tests/hostile/README.md does not hold the current case table; replace it with the \
         output of `python3 tests/hostile/gen.py --markdown`:\n{table}"
    );
    let cases = parse_corpus_readme(&corpus);
    let hostile = cases.iter().filter(|c| c.expect.is_some()).count();
    let controls = cases.len() - hostile;
    assert!(
        hostile >= 40 && controls >= 3,
        "{hostile} hostile cases, {controls} controls"
    );
    let corpus_bytes: u64 = l1
        .keys()
        .map(|k| {
            fs::symlink_metadata(corpus.join(k))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum();
    eprintln!(
        "corpus: {} cases ({hostile} hostile, {controls} positive controls), {} bytes, generated in {:.1}s",
        cases.len(),
        corpus_bytes,
        started.elapsed().as_secs_f64()
    );

    // Sentinels: the import's TMPDIR and working directory, and the names a
    // traversal would create.
    let tmp = w.join("tmp");
    let cwd = w.join("cwd");
    fs::create_dir(&tmp).unwrap();
    fs::create_dir(&cwd).unwrap();
    let store = StoreAt::init(&w.join("store"));
    store.cli_ok(&[
        "import",
        "-q",
        &format!("oci:{}", fx.get("FIXTURE_BASE_OCI_DIR")),
    ]);
    let ctl = StoreAt {
        root: w.join("ctl-store"),
    };
    run_ok(Command::new("cp").arg("-a").arg(&store.root).arg(&ctl.root));
    let escapes: Vec<PathBuf> = [
        PathBuf::from("/"),
        PathBuf::from("/tmp"),
        PathBuf::from("/var/tmp"),
        PathBuf::from("/etc"),
        w.to_path_buf(),
        store.root.clone(),
        store.root.join("repo"),
        cwd.clone(),
        tmp.clone(),
    ]
    .iter()
    .map(|d| d.join(ESCAPE_NAME))
    .collect();
    for e in &escapes {
        assert!(
            fs::symlink_metadata(e).is_err(),
            "{} exists before the test",
            e.display()
        );
    }
    let outside = |rel: &str| rel == "store" || rel == "ctl-store";
    let outside_content_before = tree_listing_filtered(w, |rel| {
        !outside(rel) && !rel.starts_with("store/") && !rel.starts_with("ctl-store/")
    });
    let top_before: BTreeSet<String> = top_level_names("/tmp")
        .into_iter()
        .map(|n| format!("/tmp/{n}"))
        .chain(
            top_level_names("/var/tmp")
                .into_iter()
                .map(|n| format!("/var/tmp/{n}")),
        )
        .collect();

    let mut report: Vec<String> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for case in &cases {
        let t0 = Instant::now();
        let path = corpus.join(&case.rel);
        let src = format!("{}:{}", case.transport, path.display());
        let target = if case.expect.is_some() { &store } else { &ctl };
        let before = snap(target);
        let outside_before = stat_listing(w, &|rel| {
            outside(rel) || rel.starts_with("store/") || rel.starts_with("ctl-store/")
        });
        let mut c = Command::new("prlimit");
        c.arg(format!("--as={IMPORT_AS_LIMIT}"))
            .arg("--")
            .arg(unistore_bin())
            .arg("--store")
            .arg(&target.root)
            .args(["import", "--json"])
            .arg(&src)
            .current_dir(&cwd)
            .env("TMPDIR", &tmp);
        for v in ["UNISTORE_CRASH_AT", "UNISTORE_CRASH_TRACE", "UNISTORE_LOG"] {
            c.env_remove(v);
        }
        let (out, killed) = run_bounded(&mut c, Duration::from_secs(60));
        let secs = t0.elapsed().as_secs_f64();
        let err = stderr(&out);
        let mut p: Vec<String> = Vec::new();
        if killed {
            p.push("HANG: killed after 60 s".into());
        }
        if out.status.code().is_none() {
            p.push(format!("died by signal {:?}", out.status.signal()));
        }
        if err.contains("panicked") || stdout(&out).contains("panicked") {
            p.push("PANIC".into());
        }
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        let outcome;
        match &case.expect {
            Some(alts) => {
                if out.status.success() {
                    p.push(format!("import SUCCEEDED: {}", stdout(&out).trim()));
                }
                if lines.len() != 1 {
                    p.push(format!("stderr has {} lines, not 1: {err:?}", lines.len()));
                }
                let line = lines.first().copied().unwrap_or("");
                if !line.starts_with("Error: ") {
                    p.push(format!("stderr does not start with `Error: `: {err:?}"));
                }
                let lower = line.to_lowercase();
                if !alts.iter().any(|a| lower.contains(a.as_str())) {
                    p.push(format!(
                        "error does not name the problem (want one of {alts:?})"
                    ));
                }
                if !line.contains(&path.display().to_string()) {
                    p.push("error does not name the file".to_string());
                }
                if line.chars().any(|c| c.is_control()) {
                    p.push("error contains control characters".into());
                }
                if !out.status.success() && !stdout(&out).trim().is_empty() {
                    p.push(format!("failed import printed to stdout: {}", stdout(&out)));
                }
                outcome = line.to_string();
            }
            None => {
                if !out.status.success() {
                    p.push(format!("positive control FAILED to import: {err:?}"));
                    outcome = format!("FAILED: {}", err.trim());
                } else {
                    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
                    let id = r["Id"].as_str().unwrap_or("").to_string();
                    let diff_ids = match case.transport.as_str() {
                        "oci" => config_diff_ids(&oci_dir_image(&path).2),
                        "oci-archive" => config_diff_ids(&oci_archive_image(&path).2),
                        _ => config_diff_ids(&docker_archive_config(&path)),
                    };
                    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        ctl.bit_exact(&id, &diff_ids)
                    }));
                    if let Err(e) = res {
                        let m = e
                            .downcast_ref::<String>()
                            .cloned()
                            .unwrap_or_else(|| "panic".into());
                        p.push(format!("not bit-exact: {m}"));
                    }
                    outcome = format!(
                        "imported {} ({} layers), every layer bit-exact",
                        &id[..12.min(id.len())],
                        diff_ids.len()
                    );
                }
            }
        }

        // The store: unchanged for a refused import, but for orphan objects.
        let after = snap(target);
        let mut note = String::new();
        if case.expect.is_some() {
            if after.catalog != before.catalog {
                p.push("catalog.json changed".into());
            }
            if after.streams != before.streams {
                p.push(format!(
                    "stream links changed: before {:?}, after {:?}",
                    before.streams.keys().collect::<Vec<_>>(),
                    after.streams.keys().collect::<Vec<_>>()
                ));
            }
            if after.images != before.images {
                p.push(format!("images changed: {:?}", after.images));
            }
            for (hex, size) in &before.objects {
                match after.objects.get(hex) {
                    Some(s) if s == size => {}
                    other => p.push(format!("existing object {hex} changed: {other:?}")),
                }
            }
            let new: BTreeSet<&String> = after
                .objects
                .keys()
                .filter(|k| !before.objects.contains_key(*k))
                .collect();
            let f = store.fsck();
            let kinds = finding_kinds(&f);
            if kinds.iter().any(|k| k != "orphan-object") {
                p.push(format!("fsck after the refused import: {}", f["Findings"]));
            }
            let has_orphans = kinds.iter().any(|k| k == "orphan-object");
            if has_orphans == new.is_empty() {
                p.push(format!(
                    "fsck orphan-object finding ({has_orphans}) disagrees with {} new objects",
                    new.len()
                ));
            }
            if !new.is_empty() {
                let g = store.cli_json(&["gc", "--json"]);
                if g["ObjectsRemoved"].as_u64() != Some(new.len() as u64) {
                    p.push(format!(
                        "gc removed {} objects, the refused import left {}",
                        g["ObjectsRemoved"],
                        new.len()
                    ));
                }
                let f = store.fsck();
                if !finding_kinds(&f).is_empty() {
                    p.push(format!("fsck after gc: {}", f["Findings"]));
                }
                note = format!(" [{} orphan objects, removed by gc]", new.len());
            }
            let end = snap(&store);
            if end != before {
                p.push("the store after gc differs from before the import".into());
            }
        } else {
            if after.images.len() != before.images.len() + 1 {
                p.push(format!("images after the control: {:?}", after.images));
            }
        }

        // Nothing outside the store.
        let outside_after = stat_listing(w, &|rel| {
            outside(rel) || rel.starts_with("store/") || rel.starts_with("ctl-store/")
        });
        if outside_after != outside_before {
            p.push(format!(
                "wrote outside the store:\n{}",
                listing_diff(&outside_before, &outside_after)
            ));
        }
        for e in &escapes {
            if fs::symlink_metadata(e).is_ok() {
                p.push(format!("{} was created", e.display()));
            }
        }

        let verdict = if p.is_empty() { "ok " } else { "BAD" };
        report.push(format!(
            "{verdict} {:<34} {:>5.2}s  {}{note}",
            case.name, secs, outcome
        ));
        if !p.is_empty() {
            problems.push(format!(
                "{} ({}; expect {}):\n    {}\n    stderr: {:?}",
                case.name,
                case.desc,
                match &case.expect {
                    None => "OK".to_string(),
                    Some(a) => format!("ERR {}", a.join("|")),
                },
                p.join("\n    "),
                err
            ));
        }
    }

    // The whole run: corpus, sentinels and the base image are intact, the
    // control store is clean, no stray files in /tmp or /var/tmp.
    let outside_content_after = tree_listing_filtered(w, |rel| {
        !outside(rel) && !rel.starts_with("store/") && !rel.starts_with("ctl-store/")
    });
    if outside_content_after != outside_content_before {
        problems.push(format!(
            "the corpus or the sentinels changed:\n{}",
            listing_diff(&outside_content_before, &outside_content_after)
        ));
    }
    for d in [&tmp, &cwd] {
        let n = fs::read_dir(d).unwrap().count();
        if n != 0 {
            problems.push(format!("{} is not empty ({n} entries)", d.display()));
        }
    }
    let top_after: BTreeSet<String> = top_level_names("/tmp")
        .into_iter()
        .map(|n| format!("/tmp/{n}"))
        .chain(
            top_level_names("/var/tmp")
                .into_iter()
                .map(|n| format!("/var/tmp/{n}")),
        )
        .collect();
    let new_top: Vec<&String> = top_after.difference(&top_before).collect();
    for n in &new_top {
        if n.contains("hostile") || n.contains(ESCAPE_NAME) {
            problems.push(format!("{n} appeared during the corpus run"));
        }
    }
    let base_id = fx.get("FIXTURE_BASE_ID");
    store.bit_exact(base_id, &base_diff_ids());
    ctl.bit_exact(base_id, &base_diff_ids());
    let f = ctl.fsck();
    if !finding_kinds(&f).is_empty() {
        problems.push(format!(
            "fsck of the store holding the controls: {}",
            f["Findings"]
        ));
    }

    // The odd-but-legal controls through the view: link targets are data,
    // served verbatim (never followed by the daemon); names are bytes.
    if let Err(e) = std::panic::catch_unwind(|| controls_through_the_view(&ctl, &corpus)) {
        let m = e
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "panic".into());
        problems.push(format!("controls through the view: {m}"));
    }

    eprintln!("\nhostile corpus results:\n{}", report.join("\n"));
    if !new_top.is_empty() {
        eprintln!(
            "(new top-level entries in /tmp and /var/tmp during the run, from this or \
             concurrent processes: {new_top:?})"
        );
    }
    eprintln!(
        "hostile corpus: {} cases in {:.1}s",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        problems.is_empty(),
        "{} of {} corpus cases misbehave:\n\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n\n")
    );
}

/// Mount `store` (holding the corpus' controls) and look at the odd entries.
fn controls_through_the_view(store: &StoreAt, corpus: &Path) {
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::fs::FileTypeExt as _;
    let mnt = tempdir("unistore-it-mnt-");
    store.cli_ok(&[
        "mount",
        &mnt.path().display().to_string(),
        "--view",
        "images",
    ]);
    struct Umount<'a>(&'a Path);
    impl Drop for Umount<'_> {
        fn drop(&mut self) {
            let _ = Command::new(unistore_bin())
                .arg("umount")
                .arg(self.0)
                .status();
            if crate::host::is_mount_point(self.0) {
                let _ = Command::new("umount").arg("-l").arg(self.0).status();
            }
        }
    }
    let _guard = Umount(mnt.path());
    let id = |case: &str| -> String {
        sha256(&oci_dir_image(&corpus.join(case)).2)
            .trim_start_matches("sha256:")
            .to_string()
    };
    let odd = mnt
        .path()
        .join("images/by-id")
        .join(id("control-odd-but-legal-content"))
        .join("data");
    for (link, target) in [
        ("to-root", "/"),
        ("up", "../../../.."),
        ("shadow", "/etc/shadow"),
        ("dangling", "/nonexistent/x"),
        ("hard-to-symlink", "/etc/shadow"),
    ] {
        let p = odd.join(link);
        let md = fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(
            md.file_type().is_symlink(),
            "{link} is not a symlink in the view"
        );
        assert_eq!(fs::read_link(&p).unwrap(), Path::new(target), "{link}");
    }
    let null = fs::symlink_metadata(odd.join("null")).unwrap();
    assert!(null.file_type().is_char_device() && null.rdev() == libc_makedev(1, 3));
    let sda = fs::symlink_metadata(odd.join("sda")).unwrap();
    assert!(sda.file_type().is_block_device() && sda.mode() & 0o7777 == 0o660);
    assert!(fs::symlink_metadata(odd.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        fs::metadata(odd.join("setuid")).unwrap().mode() & 0o7777,
        0o4755
    );
    for hidden in [".wh.removed", "opaque/.wh..wh..opq", "removed"] {
        assert!(
            fs::symlink_metadata(odd.join(hidden)).is_err(),
            "{hidden} is visible in the flattened image"
        );
    }
    let names = mnt
        .path()
        .join("images/by-id")
        .join(id("control-non-utf8-names"))
        .join("data");
    let listed: BTreeSet<Vec<u8>> = fs::read_dir(&names)
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    for want in [
        &b"caf\xe9.txt"[..],
        b"\xff\xfe\xfd",
        b"dir-\xc3\x28",
        b"link-\xe9",
    ] {
        assert!(
            listed.contains(want),
            "{:?} not listed: {listed:?}",
            String::from_utf8_lossy(want)
        );
    }
    assert_eq!(
        fs::read(names.join(OsStr::from_bytes(b"caf\xe9.txt"))).unwrap(),
        b"latin-1\n"
    );
}

fn libc_makedev(major: u64, minor: u64) -> u64 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32)
}

// ---------------------------------------------------------------------------
// 2. A full disk

/// A file-backed ext4 filesystem, loop-mounted; unmounted on drop.
struct LoopFs {
    dir: tempfile::TempDir,
}

impl LoopFs {
    fn new(size: &str) -> LoopFs {
        let dir = tempdir("unistore-it-fulldisk-");
        let img = dir.path().join("fs.img");
        run_ok(Command::new("truncate").args(["-s", size]).arg(&img));
        run_ok(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-m", "0"])
                .arg(&img),
        );
        let l = LoopFs { dir };
        fs::create_dir(l.mnt()).unwrap();
        l.mount();
        l
    }

    fn img(&self) -> PathBuf {
        self.dir.path().join("fs.img")
    }

    fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    fn mount(&self) {
        run_ok(
            Command::new("mount")
                .args(["-o", "loop"])
                .arg(self.img())
                .arg(self.mnt()),
        );
    }

    fn umount(&self) {
        run_ok(Command::new("umount").arg(self.mnt()));
    }

    /// Unmount, grow the image to `size`, check and resize the filesystem, remount.
    fn grow(&self, size: &str) {
        self.umount();
        run_ok(Command::new("truncate").args(["-s", size]).arg(self.img()));
        let fsck = run(Command::new("e2fsck").arg("-fy").arg(self.img()));
        // 0: clean, 1: errors corrected. Anything else is a damaged filesystem.
        assert!(
            matches!(fsck.status.code(), Some(0) | Some(1)),
            "e2fsck -fy after the full disk: {}\n{}{}",
            fsck.status,
            stdout(&fsck),
            stderr(&fsck)
        );
        run_ok(Command::new("resize2fs").arg(self.img()));
        self.mount();
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let m = self.mnt();
        if crate::host::is_mount_point(&m) {
            let ok = Command::new("umount")
                .arg(&m)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                let _ = Command::new("umount").arg("-l").arg(&m).status();
            }
        }
    }
}

/// An import that does not fit fails with ENOSPC named, and leaves the store
/// exactly usable; once there is room, the same import succeeds.
#[test]
fn full_disk() {
    let started = Instant::now();
    let fx = fixtures();
    for t in [
        "truncate",
        "mkfs.ext4",
        "e2fsck",
        "resize2fs",
        "mount",
        "umount",
    ] {
        require_tool(t);
    }
    let lfs = LoopFs::new("48M");
    let store = StoreAt::init(&lfs.mnt().join("store"));
    let base_id = fx.get("FIXTURE_BASE_ID");
    let base_ids = base_diff_ids();
    store.cli_ok(&[
        "import",
        "-q",
        &format!("oci:{}", fx.get("FIXTURE_BASE_OCI_DIR")),
    ]);
    store.bit_exact(base_id, &base_ids);
    let catalog = fs::read(store.root.join("catalog.json")).unwrap();
    let streams_before = streams(&store.root);
    let df = run_ok(Command::new("df").arg("-B1").arg(lfs.mnt()));
    eprintln!("after base:\n{}", stdout(&df));

    let derived = format!("docker-archive:{}", fx.get("FIXTURE_DERIVED_DOCKER_TAR"));
    let (out, killed) = run_bounded(
        &mut store.command(&["import", "-q", &derived]),
        Duration::from_secs(300),
    );
    let err = stderr(&out);
    eprintln!("import of derived on the full disk: {} {err}", out.status);
    assert!(!killed, "the import on a full disk hung");
    assert!(!out.status.success(), "derived:1 fit on 48 MiB?");
    assert!(
        out.status.code().is_some(),
        "died by a signal: {}",
        out.status
    );
    assert_no_panic(&out, "import on a full disk");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("Error: "),
        "not one `Error:` line: {err:?}"
    );
    assert!(
        lines[0].contains("No space left on device"),
        "the error does not say the disk is full: {err:?}"
    );
    assert_eq!(
        fs::read(store.root.join("catalog.json")).unwrap(),
        catalog,
        "catalog.json changed by the failed import"
    );
    // Layers completed before the disk filled up are kept on purpose (a
    // re-run resumes); nothing else may appear.
    let streams_after = streams(&store.root);
    for (k, v) in &streams_before {
        assert_eq!(streams_after.get(k), Some(v), "stream {k} changed");
    }
    let added: Vec<&String> = streams_after
        .keys()
        .filter(|k| !streams_before.contains_key(*k))
        .collect();
    assert!(
        added
            .iter()
            .all(|k| k.starts_with("unistore-layer-") || k.starts_with("unistore-layermeta-")),
        "the failed import added streams other than completed layers: {added:?}"
    );
    assert_eq!(store.image_ids(), BTreeSet::from([base_id.to_string()]));
    store.bit_exact(base_id, &base_ids);
    let f = store.fsck();
    let kinds = finding_kinds(&f);
    eprintln!("fsck on the full disk: {kinds:?}");
    assert!(
        kinds.iter().all(|k| k == "orphan-object"),
        "fsck after ENOSPC: {}",
        f["Findings"]
    );

    // Room again: grow the filesystem; the store survives and the import completes.
    lfs.grow("256M");
    let r = store.cli_json(&["import", "--json", &derived]);
    eprintln!(
        "after growing: imported derived, {} of {} layers reused",
        r["LayersReused"], r["Layers"]
    );
    let derived_id = fx.get("FIXTURE_DERIVED_ID");
    assert_eq!(r["Id"].as_str(), Some(derived_id));
    store.bit_exact(derived_id, &docker_diff_ids("FIXTURE_DERIVED_DOCKER_TAR"));
    store.bit_exact(base_id, &base_ids);
    let f = store.fsck();
    assert!(
        finding_kinds(&f).is_empty(),
        "fsck after the successful re-import is not clean: {}",
        f["Findings"]
    );
    eprintln!("full_disk: {:.1}s", started.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------
// 3. Garbage collection

/// After `rmi app`, `gc --dry-run` reports N objects / B bytes and removes
/// nothing (fsck still sees them as orphans); `gc` removes exactly N objects
/// of B bytes; the other images stay bit-exact and fsck is clean.
#[test]
fn gc_removes_exactly_what_dry_run_reports() {
    let fx = fixtures();
    let store = store_all();
    let f = store.fsck();
    assert!(finding_kinds(&f).is_empty(), "{}", f["Findings"]);
    store.cli_ok(&["rmi", fx.get("FIXTURE_APP_IMAGE")]);
    let before = objects(store.path());
    let streams_before = streams(store.path());
    let dry = store.cli_json(&["gc", "--dry-run", "--json"]);
    eprintln!("gc --dry-run: {dry}");
    let n = dry["ObjectsRemoved"].as_u64().expect("ObjectsRemoved");
    let b = dry["BytesRemoved"].as_u64().expect("BytesRemoved");
    assert_eq!(dry["DryRun"], Value::Bool(true));
    assert!(n > 0 && b > 0, "rmi of app left nothing to collect: {dry}");
    assert_eq!(
        objects(store.path()),
        before,
        "gc --dry-run removed objects"
    );
    assert_eq!(
        streams(store.path()),
        streams_before,
        "gc --dry-run removed streams"
    );
    let f = store.fsck();
    assert_eq!(
        finding_kinds(&f),
        vec!["orphan-object"],
        "{}",
        f["Findings"]
    );
    let detail = f["Findings"][0]["Detail"].as_str().unwrap_or("");
    assert!(
        detail.starts_with(&format!("{n} objects")),
        "fsck counts other orphans than gc --dry-run ({n}): {detail}"
    );

    let g = store.cli_json(&["gc", "--json"]);
    eprintln!("gc: {g}");
    assert_eq!(g["DryRun"], Value::Bool(false));
    assert_eq!(
        g["ObjectsRemoved"].as_u64(),
        Some(n),
        "gc vs dry run: {g} / {dry}"
    );
    assert_eq!(
        g["BytesRemoved"].as_u64(),
        Some(b),
        "gc vs dry run: {g} / {dry}"
    );
    assert_eq!(g["StreamsRemoved"], dry["StreamsRemoved"]);
    let after = objects(store.path());
    let gone: Vec<(&String, &u64)> = before
        .iter()
        .filter(|(k, _)| !after.contains_key(*k))
        .collect();
    assert!(
        after.keys().all(|k| before.contains_key(k)),
        "gc created objects"
    );
    assert_eq!(gone.len() as u64, n, "objects that vanished");
    assert_eq!(
        gone.iter().map(|(_, s)| **s).sum::<u64>(),
        b,
        "bytes that vanished"
    );
    store.bit_exact(fx.get("FIXTURE_BASE_ID"), &base_diff_ids());
    store.bit_exact(
        fx.get("FIXTURE_DERIVED_ID"),
        &docker_diff_ids("FIXTURE_DERIVED_DOCKER_TAR"),
    );
    let f = store.fsck();
    assert!(
        finding_kinds(&f).is_empty(),
        "fsck after gc: {}",
        f["Findings"]
    );
    let again = store.cli_json(&["gc", "--json"]);
    assert_eq!(again["ObjectsRemoved"].as_u64(), Some(0), "{again}");
}

/// A file open through the view keeps reading its full, correct content
/// after its image is removed and its objects are collected.
#[test]
fn gc_while_a_file_is_open_through_the_view() {
    let fx = fixtures();
    let store = store_all();
    let derived_id = fx.get("FIXTURE_DERIVED_ID");
    let big_size = 64u64 << 20;
    assert!(
        objects(store.path()).values().any(|&s| s == big_size),
        "no 64 MiB object for big.bin"
    );
    let m = Mounted::new(&store, &[]);
    let big = m
        .path()
        .join("images/by-id")
        .join(derived_id)
        .join("srv/fixture/big.bin");
    let mut f = fs::File::open(&big).unwrap_or_else(|e| panic!("{}: {e}", big.display()));
    let mut first = vec![0u8; 1 << 20];
    f.read_exact(&mut first).expect("first MiB of big.bin");

    store.cli_ok(&["rmi", fx.get("FIXTURE_DERIVED_IMAGE")]);
    // gc right away: the daemon may still serve derived (its pin file).
    let g1 = store.cli_json(&["gc", "--json"]);
    eprintln!("gc right after rmi: {g1}");
    // Once the daemon has seen the catalog change, nothing pins derived.
    let t = Instant::now();
    while fs::read_dir(m.path().join("images/by-id"))
        .unwrap()
        .flatten()
        .any(|e| e.file_name() == derived_id)
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "derived still in the view"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let g2 = store.cli_json(&["gc", "--json"]);
    eprintln!("gc after the view dropped derived: {g2}");
    assert!(
        !objects(store.path()).values().any(|&s| s == big_size),
        "big.bin's object survived gc although nothing uses derived any more: {g1} / {g2}"
    );
    // The open file still reads everything, correctly.
    let mut rest = Vec::new();
    f.read_to_end(&mut rest).expect("reading big.bin after gc");
    first.extend_from_slice(&rest);
    assert_eq!(
        first.len() as u64,
        big_size,
        "big.bin read after gc is short"
    );
    assert_eq!(
        sha256(&first),
        golden_sha("big.bin"),
        "big.bin read after gc is not the original"
    );
    drop(f);
    let fr = store.fsck();
    assert!(finding_kinds(&fr).is_empty(), "{}", fr["Findings"]);
    store.bit_exact(fx.get("FIXTURE_BASE_ID"), &base_diff_ids());
}

/// podman containers created from an image of the view: `rmi` refuses and
/// names the container, `rmi --force` works, gc keeps the image's data
/// (PinnedImages) and `podman start` of the container still works.
#[test]
fn podman_container_pins_its_image() {
    let fx = fixtures();
    require_tool("podman");
    require_tool("runc");
    let store = store_all();
    let app = fx.get("FIXTURE_APP_IMAGE");
    let app_id = fx.get("FIXTURE_APP_ID");
    let cat: Value =
        serde_json::from_slice(&fs::read(store.path().join("catalog.json")).unwrap()).unwrap();
    let app_stream = cat["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == app_id)
        .expect("app in catalog")["stream"]
        .as_str()
        .unwrap()
        .to_string();
    let m = Mounted::new(&store, &["--view", "containers-storage"]);
    let pm = IsolatedPodman::new();
    let ais = format!(
        "additionalimagestore={}",
        m.path().join("containers-storage").display()
    );
    let podman = |args: &[&str]| -> Command {
        let mut c = pm.cmd(["--storage-opt", ais.as_str()]);
        c.args(args);
        c
    };
    let name = "unistore-robust-pinned";
    let mut create = vec!["create", "--name", name, "--pull", "never"];
    let flags = fx.get("FIXTURE_PODMAN_RUN_FLAGS").to_string();
    create.extend(flags.split_whitespace());
    create.extend([app, "/app/run.sh"]);
    let cid = stdout(&run_ok(&mut podman(&create))).trim().to_string();
    assert!(!cid.is_empty());
    // What podman itself applies to a container's root filesystem (the
    // overlay it mounts on top of the view).
    let merged = stdout(&run_ok(&mut podman(&["mount", name])))
        .trim()
        .to_string();
    let flags = mount_flags(Path::new(&merged));
    eprintln!("podman's overlay for the container: {merged}: {flags:?}");
    run_ok(&mut podman(&["umount", name]));
    let roots = pm.root().display().to_string();
    let with_roots = |args: &[&str]| -> Output {
        let mut c = store.command(args);
        c.env("UNISTORE_PODMAN_ROOTS", &roots);
        run(&mut c)
    };

    let out = with_roots(&["rmi", app]);
    assert!(
        !out.status.success(),
        "rmi of an image a container uses succeeded"
    );
    assert_no_panic(&out, "rmi");
    let err = stderr(&out);
    assert!(
        err.contains(name) || err.contains(&cid[..12]),
        "rmi's error does not name the container: {err}"
    );
    assert!(
        store.image_ids().contains(app_id),
        "refused rmi removed the image"
    );

    let out = with_roots(&["rmi", "--force", app]);
    assert!(out.status.success(), "rmi --force: {}", stderr(&out));
    assert!(!store.image_ids().contains(app_id));
    eprintln!("rmi --force: {}", stderr(&out).trim());
    // (Diagnostic) podman start between rmi --force and gc.
    let early = run(&mut podman(&["start", "-a", name]));
    eprintln!(
        "podman start after rmi --force, before gc: {} {}",
        early.status,
        stderr(&early).lines().last().unwrap_or("")
    );
    let before = objects(store.path());
    let out = with_roots(&["gc", "--json"]);
    assert!(out.status.success(), "gc: {}", stderr(&out));
    let g: Value = serde_json::from_slice(&out.stdout).expect("gc --json");
    eprintln!("gc with the container: {g}");
    let pinned: Vec<&str> = g["PinnedImages"]
        .as_array()
        .expect("PinnedImages")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        pinned.contains(&app_stream.as_str()),
        "gc did not pin app's image stream {app_stream}: {g}"
    );
    assert_eq!(
        objects(store.path()),
        before,
        "gc removed objects although the container's image is pinned"
    );
    // As `rmi --force` warns: the image left the views, so the container
    // cannot start; its data was kept, so re-importing the image (which
    // writes nothing new) repairs the container.
    assert!(
        !early.status.success(),
        "podman start succeeded although the image was removed from the view"
    );
    let re = store.import(&format!(
        "docker-archive:{}",
        fx.get("FIXTURE_APP_DOCKER_TAR")
    ));
    assert_eq!(
        re["NewBytes"].as_u64(),
        Some(0),
        "re-import wrote file data: {re}"
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let start = run(&mut podman(&["start", "-a", name]));
    let _ = run(&mut podman(&["rm", "-f", name]));
    assert!(
        start.status.success() && stdout(&start).contains("hello from the unistore app fixture"),
        "podman start of the container after rmi --force + gc failed ({}):\n{}{}",
        start.status,
        stdout(&start),
        stderr(&start)
    );
}

// ---------------------------------------------------------------------------
// 4. fsck

/// A corrupt file object (bytes appended) is reported with its image, layer
/// and object; `--repair` names that image unrepairable and leaves the
/// healthy one untouched.
#[test]
fn fsck_reports_corrupt_object_and_repair_spares_healthy_images() {
    let fx = fixtures();
    let store = store_all();
    let derived = fx.get("FIXTURE_DERIVED_ID");
    let base_id = fx.get("FIXTURE_BASE_ID");
    let app_id = fx.get("FIXTURE_APP_ID");
    let d_ids = docker_diff_ids("FIXTURE_DERIVED_DOCKER_TAR");
    let rel = "srv/fixture/many/d0/f0000.txt";
    let data = layer_member(&store, derived, 4, rel);
    let objs = objects_with_content(store.path(), &data);
    assert_eq!(objs.len(), 1, "backing object of {rel}: {objs:?}");
    let hex = &objs[0];
    fs::OpenOptions::new()
        .append(true)
        .open(object_path(store.path(), hex))
        .unwrap()
        .write_all(b"corruption")
        .unwrap();

    let (out, f) = store.json_any(&["fsck", "--json"]);
    eprintln!("fsck: {}", f["Findings"]);
    assert!(
        !out.status.success(),
        "fsck exit status with a corrupt object"
    );
    let findings = f["Findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|x| x["Kind"] == "corrupt-object"
            && x["Image"] == derived
            && x["Layer"].as_str() == Some(d_ids[4].as_str())
            && x["Object"].as_str() == Some(hex.as_str())),
        "no corrupt-object finding naming image {derived}, layer {} and object {hex}: {}",
        d_ids[4],
        f["Findings"]
    );
    assert!(
        !findings
            .iter()
            .any(|x| x["Image"] == base_id || x["Image"] == app_id),
        "fsck blames a healthy image: {}",
        f["Findings"]
    );

    let (out, r) = store.json_any(&["fsck", "--repair", "--json"]);
    eprintln!(
        "fsck --repair: Unrepairable {} Repaired {}",
        r["Unrepairable"], r["Repaired"]
    );
    assert!(
        !out.status.success(),
        "fsck --repair with an unrepairable image exits 0"
    );
    assert_eq!(r["Unrepairable"], serde_json::json!([derived]));
    assert_eq!(
        store.image_ids(),
        BTreeSet::from([base_id.to_string(), derived.to_string(), app_id.to_string()]),
        "fsck --repair changed the catalog"
    );
    store.bit_exact(base_id, &base_diff_ids());
    store.bit_exact(app_id, &docker_diff_ids("FIXTURE_APP_DOCKER_TAR"));
    for (i, d) in d_ids.iter().enumerate().take(4) {
        assert_eq!(
            &store.layer_sha(derived, i).0,
            d,
            "derived layer {i} (healthy)"
        );
    }
}

/// A deleted layer index is reported as `bad-index`, rebuilt by
/// `fsck --repair`, and the containers-storage view serves that layer again.
#[test]
fn fsck_rebuilds_a_deleted_index() {
    let fx = fixtures();
    let store = store_all();
    let app = fx.get("FIXTURE_APP_IMAGE");
    let insp = store.cli_json(&["inspect", "--json", app]);
    let layer = &insp["Layers"][1];
    let diff_id = layer["DiffID"].as_str().unwrap().to_string();
    let index = layer["IndexObject"].as_str().unwrap().to_string();
    fs::remove_file(object_path(store.path(), &index)).expect("delete the index object");

    let (out, f) = store.json_any(&["fsck", "--json"]);
    eprintln!("fsck: {}", f["Findings"]);
    assert!(!out.status.success());
    assert!(
        f["Findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["Kind"] == "bad-index"
                && x["Layer"].as_str() == Some(diff_id.as_str())
                && x["Object"].as_str() == Some(index.as_str())),
        "no bad-index finding for layer {diff_id} / object {index}: {}",
        f["Findings"]
    );
    let (out, r) = store.json_any(&["fsck", "--repair", "--json"]);
    eprintln!(
        "fsck --repair: Repaired {} Unrepairable {}",
        r["Repaired"], r["Unrepairable"]
    );
    assert!(out.status.success(), "fsck --repair: {}", stderr(&out));
    assert!(!r["Repaired"].as_array().unwrap().is_empty(), "{r}");
    let f = store.fsck();
    assert!(
        finding_kinds(&f).is_empty(),
        "fsck after --repair: {}",
        f["Findings"]
    );
    store.bit_exact(app, &docker_diff_ids("FIXTURE_APP_DOCKER_TAR"));

    let m = Mounted::new(&store, &["--view", "containers-storage"]);
    let cs = m.path().join("containers-storage");
    let layers: Value =
        serde_json::from_slice(&fs::read(cs.join("overlay-layers/layers.json")).unwrap()).unwrap();
    let id = layers
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["diff-digest"].as_str() == Some(diff_id.as_str()))
        .unwrap_or_else(|| panic!("layer {diff_id} not in layers.json"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let hello = cs.join("overlay").join(&id).join("diff/app/hello.txt");
    assert_eq!(
        fs::read(&hello).unwrap_or_else(|e| panic!("{}: {e}", hello.display())),
        b"hello from the unistore app fixture\n"
    );
}

// ---------------------------------------------------------------------------
// 5. verify=on

/// With `-o verify=on`, a file whose backing object was corrupted (same size,
/// one byte flipped) reads as EIO and the others read fine; without
/// verification the daemon serves the corrupted bytes (objects are trusted
/// unless fs-verity or verify=on checks them).
#[test]
fn verify_on_gives_eio_for_a_corrupt_object() {
    let fx = fixtures();
    let store = store_all();
    let derived = fx.get("FIXTURE_DERIVED_ID");
    let rel = "srv/fixture/many/d0/f0000.txt";
    let other = "srv/fixture/many/d0/f0001.txt";
    let data = layer_member(&store, derived, 4, rel);
    assert_eq!(sha256(&data), golden_sha("many/d0/f0000.txt"));
    let objs = objects_with_content(store.path(), &data);
    assert_eq!(objs.len(), 1, "backing object of {rel}");
    let path = object_path(store.path(), &objs[0]);
    let mut bad = data.clone();
    bad[0] ^= 0xff;
    fs::write(&path, &bad).expect("corrupting the object");

    for pt in ["passthrough=auto", "passthrough=off"] {
        let m = Mounted::new(&store, &["-o", "verify=on", "-o", pt]);
        let root = m.path().join("images/by-id").join(derived);
        let r = fs::read(root.join(rel));
        assert_eq!(
            errno_of(&r),
            Some(EIO),
            "verify=on,{pt}: reading {rel} over a corrupt object gave {:?}",
            r.as_ref().map(|d| d.len())
        );
        let ok = fs::read(root.join(other)).expect("an intact file reads fine");
        assert_eq!(
            sha256(&ok),
            golden_sha("many/d0/f0001.txt"),
            "{pt}: {other}"
        );
        let big = fs::File::open(root.join("srv/fixture/big.bin")).expect("big.bin");
        assert_eq!(sha256_reader(big).0, golden_sha("big.bin"), "{pt}: big.bin");
        // Still EIO on a second try (not a one-off).
        assert_eq!(errno_of(&fs::read(root.join(rel))), Some(EIO));
    }
    // Without verification the corrupted bytes are what the view serves.
    let m = Mounted::new(&store, &[]);
    let got = fs::read(m.path().join("images/by-id").join(derived).join(rel))
        .expect("reading without verify");
    assert_eq!(
        got, bad,
        "without verify=on the view serves the object's bytes as they are"
    );
}

// ---------------------------------------------------------------------------
// 6. setuid programs and device nodes of an image, seen by other users

/// A minimal static x86-64 ELF that exits with its effective UID (mod 256):
/// `geteuid(); exit(euid)`. Setuid root, it exits 0 when the kernel honours
/// the bit, and 254 (65534 mod 256) when run by nobody without it.
fn euid_elf() -> Vec<u8> {
    let code: [u8; 16] = [
        0xb8, 0x6b, 0, 0, 0, // mov eax, 107 (geteuid)
        0x0f, 0x05, // syscall
        0x89, 0xc7, // mov edi, eax
        0xb8, 0x3c, 0, 0, 0, // mov eax, 60 (exit)
        0x0f, 0x05, // syscall
    ];
    let base: u64 = 0x400000;
    let total = (64 + 56 + code.len()) as u64;
    let mut e = Vec::new();
    e.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&0x3eu16.to_le_bytes()); // x86-64
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&(base + 120).to_le_bytes()); // entry
    e.extend_from_slice(&64u64.to_le_bytes()); // phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // shoff
    e.extend_from_slice(&0u32.to_le_bytes()); // flags
    for v in [64u16, 56, 1, 64, 0, 0] {
        e.extend_from_slice(&v.to_le_bytes()); // ehsize phentsize phnum shentsize shnum shstrndx
    }
    e.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    e.extend_from_slice(&5u32.to_le_bytes()); // R+X
    for v in [0, base, base, total, total, 0x1000u64] {
        e.extend_from_slice(&v.to_le_bytes());
    }
    e.extend_from_slice(&code);
    e
}

/// An OCI layout in `dir` with one layer: a setuid-root copy of [`euid_elf`]
/// at bin/euid and a char device 1,3 (what /dev/null is) that everyone may
/// read and write, at dev/null-rw. Returns the image ID.
fn write_setuid_image(dir: &Path) -> String {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], dev: (u32, u32)| {
        let mut h = tar::Header::new_ustar();
        h.set_path(path).unwrap();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        h.set_device_major(dev.0).unwrap();
        h.set_device_minor(dev.1).unwrap();
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    add("bin/", tar::EntryType::Directory, 0o755, b"", (0, 0));
    add(
        "bin/euid",
        tar::EntryType::Regular,
        0o4755,
        &euid_elf(),
        (0, 0),
    );
    add("dev/", tar::EntryType::Directory, 0o755, b"", (0, 0));
    add("dev/null-rw", tar::EntryType::Char, 0o666, b"", (1, 3));
    let layer = b.into_inner().unwrap();
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| -> (String, usize) {
        let d = sha256(data);
        fs::write(oci_blob_path(dir, &d), data).unwrap();
        (d, data.len())
    };
    let (ld, ls) = put(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/euid"]},
        "rootfs": {"type": "layers", "diff_ids": [ld]},
    }))
    .unwrap();
    let (cd, cs) = put(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}],
    }))
    .unwrap();
    let (md, ms) = put(&manifest);
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": md, "size": ms,
                "annotations": {"org.opencontainers.image.ref.name": "localhost/unistore-robust/setuid:1"}}],
        }))
        .unwrap(),
    )
    .unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    cd.trim_start_matches("sha256:").to_string()
}

/// Per-mount flags of the mount at `mnt` (mountinfo field 6).
fn mount_flags(mnt: &Path) -> Vec<String> {
    let want = mnt.to_string_lossy().replace(' ', "\\040");
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(want.as_str()))
        .unwrap_or_else(|| panic!("{} is not mounted", mnt.display()));
    line.split(' ')
        .nth(5)
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect()
}

/// What an unprivileged user (nobody) can do with the image's setuid program
/// and device nodes through the view at `root`.
#[derive(Debug)]
struct AsNobody {
    /// Effective UID `bin/euid` ran with (mod 256), or how it failed.
    euid: Result<i32, String>,
    /// Opening `dev/null-rw` for writing.
    char_dev: Result<(), String>,
}

fn as_nobody(root: &Path) -> AsNobody {
    use std::os::unix::process::CommandExt as _;
    let nobody = |c: &mut Command| -> Output {
        c.uid(65534).gid(65534);
        run(c)
    };
    let out = nobody(&mut Command::new(root.join("bin/euid")));
    let euid = out.status.code().ok_or_else(|| format!("{}", out.status));
    let out = nobody(
        Command::new("sh")
            .arg("-c")
            .arg("exec 3>\"$1\"")
            .arg("sh")
            .arg(root.join("dev/null-rw")),
    );
    let char_dev = if out.status.success() {
        Ok(())
    } else {
        Err(stderr(&out).trim().to_string())
    };
    AsNobody { euid, char_dev }
}

/// The threat-model facts about setuid programs and device nodes in images:
/// - `unistore mount` mounts `nosuid,nodev` by default: a local non-root user
///   can neither run an image's setuid-root program as root nor open its
///   device nodes (an image can ship any major/minor, world-writable);
/// - `-o suid,dev` opts in, and then both work (root's explicit choice);
/// - `mount -o remount,bind,nosuid,nodev MNT` takes both away again;
/// - `-o nosuid,nodev` given to the mount(8) helper is honoured;
/// - podman still runs containers from a `nosuid,nodev` view.
#[test]
fn view_setuid_and_device_nodes() {
    require_root();
    assert_eq!(std::env::consts::ARCH, "x86_64", "euid_elf is x86-64 code");
    let store = TempStore::new();
    let dir = tempdir("unistore-it-setuid-");
    let id = write_setuid_image(dir.path());
    store.import(&format!("oci:{}", dir.path().display()));
    let mut failures = Vec::new();

    // 1. The default mount: nosuid,nodev.
    {
        let m = Mounted::new(&store, &["--view", "images+containers-storage"]);
        let flags = mount_flags(m.path());
        let r = as_nobody(&m.path().join("images/by-id").join(&id));
        eprintln!("unistore mount: flags {flags:?}; as nobody: {r:?}");
        if !flags.iter().any(|f| f == "nosuid") || !flags.iter().any(|f| f == "nodev") {
            failures.push(format!("default mount is not nosuid,nodev: {flags:?}"));
        }
        if r.euid == Ok(0) || r.char_dev.is_ok() {
            failures.push(format!(
                "default mount: nobody ran the setuid program as root or opened a device: {r:?}"
            ));
        }
    }
    // 1b. Opting in with -o suid,dev.
    {
        let m = Mounted::new(
            &store,
            &["--view", "images+containers-storage", "-o", "suid,dev"],
        );
        let flags = mount_flags(m.path());
        let r = as_nobody(&m.path().join("images/by-id").join(&id));
        eprintln!("unistore mount -o suid,dev: flags {flags:?}; as nobody: {r:?}");
        if flags.iter().any(|f| f == "nosuid" || f == "nodev") {
            failures.push(format!("-o suid,dev mount still has {flags:?}"));
        }
        if r.euid != Ok(0) || r.char_dev.is_err() {
            failures.push(format!("-o suid,dev: setuid/devices not honoured: {r:?}"));
        }

        // 2. The remount workaround.
        run_ok(
            Command::new("mount")
                .args(["-o", "remount,bind,nosuid,nodev"])
                .arg(m.path()),
        );
        let flags = mount_flags(m.path());
        let r = as_nobody(&m.path().join("images/by-id").join(&id));
        eprintln!("after remount,bind,nosuid,nodev: flags {flags:?}; as nobody: {r:?}");
        if r.euid == Ok(0) || r.char_dev.is_ok() {
            failures.push(format!(
                "remount,bind,nosuid,nodev did not take effect: {r:?}"
            ));
        }
        // podman still runs containers from a nosuid,nodev view: the flags of
        // its own overlay mount govern the container, not the view's.
        require_tool("podman");
        let pm = IsolatedPodman::new();
        let ais = format!(
            "additionalimagestore={}",
            m.path().join("containers-storage").display()
        );
        let mut c = pm.cmd([
            "--storage-opt",
            ais.as_str(),
            "run",
            "--rm",
            "--pull",
            "never",
        ]);
        c.args(
            fixtures()
                .get("FIXTURE_PODMAN_RUN_FLAGS")
                .split_whitespace(),
        )
        .arg("localhost/unistore-robust/setuid:1");
        let out = run(&mut c);
        eprintln!(
            "podman run from the nosuid,nodev view: {} {}",
            out.status,
            stderr(&out).trim()
        );
        if out.status.code() != Some(0) {
            failures.push(format!(
                "podman run from the view remounted nosuid,nodev: {} (want exit 0 = euid 0 in \
                 the container): {}",
                out.status,
                stderr(&out)
            ));
        }
        drop(pm);
    }

    // 3. The mount(8) helper, asked for nosuid,nodev.
    let helper = Path::new("/usr/sbin/mount.fuse.unistore");
    let installed_here = fs::symlink_metadata(helper).is_err();
    if installed_here {
        std::os::unix::fs::symlink(unistore_bin(), helper).expect("installing the mount helper");
    }
    let mdir = tempdir("unistore-it-mnt-");
    let out = run(Command::new("mount")
        .args(["-t", "fuse.unistore"])
        .arg(store.path())
        .arg(mdir.path())
        .args(["-o", "ro,nosuid,nodev,view=images"]));
    let result = if out.status.success() {
        let flags = mount_flags(mdir.path());
        let r = as_nobody(&mdir.path().join("images/by-id").join(&id));
        let _ = run(Command::new("umount").arg(mdir.path()));
        Ok((flags, r))
    } else {
        Err(stderr(&out))
    };
    if installed_here {
        let _ = fs::remove_file(helper);
    }
    match result {
        Err(e) => failures.push(format!(
            "mount -t fuse.unistore -o ro,nosuid,nodev failed: {e}"
        )),
        Ok((flags, r)) => {
            eprintln!(
                "mount -t fuse.unistore -o ro,nosuid,nodev: flags {flags:?}; as nobody: {r:?}"
            );
            if !flags.iter().any(|f| f == "nosuid") || !flags.iter().any(|f| f == "nodev") {
                failures.push(format!(
                    "`mount -t fuse.unistore -o nosuid,nodev` accepted the options but the mount \
                     has flags {flags:?}: the helper drops nosuid/nodev"
                ));
            }
            if r.euid == Ok(0) || r.char_dev.is_ok() {
                failures.push(format!(
                    "with -o nosuid,nodev, nobody still ran the setuid program as root or \
                     opened device nodes: {r:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// 7. The store's lock, seen by other users

/// A local user without privileges must not be able to stall the store's
/// writers: `unistore init` makes the store directory 0755 and the lock file
/// 0644, and flock(2) needs no write access, so `flock STORE/lock` by anyone
/// would block every import, rmi, gc and fsck for as long as they like.
#[test]
fn unprivileged_user_cannot_stall_writers() {
    use std::os::unix::fs::PermissionsExt as _;
    use std::os::unix::process::CommandExt as _;
    require_root();
    require_tool("flock");
    let dir = tempdir("unistore-it-lock-");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let store = StoreAt::init(&dir.path().join("store"));
    let lock = store.root.join("lock");
    eprintln!(
        "store {:o}, lock {:o}",
        fs::metadata(&store.root).unwrap().mode() & 0o7777,
        fs::metadata(&lock).unwrap().mode() & 0o7777
    );
    let mut holder = Command::new("flock")
        .args(["--exclusive", "--nonblock"])
        .arg(&lock)
        .args(["sleep", "30"])
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flock as nobody");
    std::thread::sleep(Duration::from_millis(500));
    let held = holder.try_wait().unwrap().is_none();
    let (out, killed) = run_bounded(
        &mut store.command(&["gc", "--json"]),
        Duration::from_secs(5),
    );
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(
        !held && !killed,
        "nobody holds STORE/lock ({held}) and `unistore gc` {} : the lock file must not be \
         lockable by other users (mode 0600, or a 0700 store root)",
        if killed {
            "hung until killed after 5 s".to_string()
        } else {
            format!("finished: {}", out.status)
        }
    );
}
