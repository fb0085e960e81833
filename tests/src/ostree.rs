//! The ostree view (`MNT/ostree`) read by the real ostree 2022.7 CLI: refs,
//! log, show, ls, cat, checkout (owners, modes, setuid, xattrs), fsck,
//! pull-local --untrusted, diff; the checksum oracle (`ostree commit
//! --tree=tar=` of `podman export` gives the same content, dirtree and
//! dirmeta checksums, path by path and at the root); the ostree-rs-ext
//! layer commits against `ostree commit` of the layer tar filtered the way
//! ostree-rs-ext filters it; the ostree-ext crate itself listing and
//! querying the images (`tests/ostree-ext-check`); and catalog changes while
//! mounted.
//!
//! Everything here needs root, FUSE, podman and ostree, and fails (never
//! skips) without them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

const DERIVED: &str = "localhost/unistore-fixture/derived:1";
const APP: &str = "localhost/unistore-fixture/app:1";
const BASE: &str = "localhost/unistore-fixture/base:1";
const DERIVED_REF: &str = "unistore/localhost/unistore-fixture/derived_3A_1";
const APP_REF: &str = "unistore/localhost/unistore-fixture/app_3A_1";
const BASE_REF: &str = "unistore/localhost/unistore-fixture/base_3A_1";
const DERIVED_IMAGE_REF: &str =
    "ostree/container/image/containers-storage_3A_localhost/unistore-fixture/derived_3A_1";
const APP_IMAGE_REF: &str =
    "ostree/container/image/containers-storage_3A_localhost/unistore-fixture/app_3A_1";

fn prerequisites() -> &'static Fixtures {
    require_root();
    for t in ["ostree", "podman", "tar", "date"] {
        require_tool(t);
    }
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: the FUSE tests cannot run (modprobe fuse)"
    );
    fixtures()
}

// ------------------------------------------------------------------ mounting

/// A mounted store; Drop unmounts it (`unistore umount`, else `umount -l`).
struct Mounted {
    store: PathBuf,
    mnt: tempfile::TempDir,
}

impl Mounted {
    fn new(store: &TempStore) -> Mounted {
        let m = Mounted {
            store: store.path().to_path_buf(),
            mnt: tempdir("unistore-it-ostree-mnt-"),
        };
        let out = run(store.cmd(["mount"]).arg(m.mnt.path()));
        assert!(
            out.status.success(),
            "unistore mount failed ({}): {}\n{}",
            out.status,
            stderr(&out),
            m.log()
        );
        assert!(
            m.repo().join("config").is_file(),
            "{} has no ostree/config after mount; daemon log:\n{}",
            m.mnt.path().display(),
            m.log()
        );
        m
    }

    /// `MNT/ostree`.
    fn repo(&self) -> PathBuf {
        self.mnt.path().join("ostree")
    }

    fn log(&self) -> String {
        let name = format!(
            "mount-{}.log",
            self.mnt.path().display().to_string().replace('/', "_")
        );
        fs::read_to_string(self.store.join("tmp").join(name)).unwrap_or_default()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let mnt = self.mnt.path().to_path_buf();
        let ok = Command::new(unistore_bin())
            .arg("--store")
            .arg(&self.store)
            .arg("umount")
            .arg(&mnt)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&mnt).status();
        }
        // The daemon exits when the kernel drops the connection; wait for it
        // so the temporary mount point can be removed.
        let t = Instant::now();
        while fs::read_to_string("/proc/self/mounts")
            .map(|m| m.contains(&*mnt.to_string_lossy()))
            .unwrap_or(false)
            && t.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

// ------------------------------------------------------------------ ostree

fn ostree_cmd(repo: &Path) -> Command {
    let mut c = Command::new("ostree");
    c.arg(format!("--repo={}", repo.display()));
    c
}

/// `ostree --repo=REPO ARGS`, which must succeed; stdout.
fn ostree_ok(repo: &Path, args: &[&str]) -> String {
    stdout(&run_ok(ostree_cmd(repo).args(args)))
}

fn ostree_run(repo: &Path, args: &[&str]) -> Output {
    run(ostree_cmd(repo).args(args))
}

fn init_bare(dir: &Path) {
    run_ok(
        Command::new("ostree")
            .arg("init")
            .arg("--mode=bare")
            .arg(format!("--repo={}", dir.display())),
    );
}

/// `ostree fsck` must pass and say so.
fn assert_fsck_clean(repo: &Path, what: &str) {
    let out = ostree_run(repo, &["fsck"]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        out.status.success() && text.contains("no errors found") && !text.contains("Corrupted"),
        "ostree fsck of {what} ({}) failed ({}):\n{text}",
        repo.display(),
        out.status
    );
}

/// `ostree ls -R -C REF` (paths, modes, owners, sizes, checksums).
fn ls_rc(repo: &Path, rev: &str) -> String {
    ostree_ok(repo, &["ls", "-R", "-C", rev])
}

/// `ls -R -C` output keyed by path, for readable diffs.
fn ls_by_path(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(|l| {
            let path = l
                .split_whitespace()
                .find(|w| w.starts_with('/'))
                .unwrap_or(l)
                .to_string();
            (path, l.to_string())
        })
        .collect()
}

fn rev_parse(repo: &Path, rev: &str) -> String {
    ostree_ok(repo, &["rev-parse", rev]).trim().to_string()
}

fn content_checksum(repo: &Path, rev: &str) -> String {
    let show = ostree_ok(repo, &["show", rev]);
    show.lines()
        .find_map(|l| l.strip_prefix("ContentChecksum:"))
        .unwrap_or_else(|| panic!("ostree show {rev} has no ContentChecksum:\n{show}"))
        .trim()
        .to_string()
}

/// The ref names ostree lists.
fn refs_of(repo: &Path) -> BTreeSet<String> {
    ostree_ok(repo, &["refs"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// `ostree/container/blob/<escaped digest>` (ostree-rs-ext escaping of `sha256:hex`).
fn blob_ref(digest: &str) -> String {
    format!(
        "ostree/container/blob/{}",
        digest.replace('_', "__").replace(':', "_3A_")
    )
}

/// (manifest JSON, config JSON, layer blob digests) of an OCI layout dir.
fn oci_image(dir: &Path) -> (Value, Value, Vec<String>) {
    let (_, manifest, config) = oci_dir_image(dir);
    let m: Value = serde_json::from_slice(&manifest).expect("manifest JSON");
    let c: Value = serde_json::from_slice(&config).expect("config JSON");
    let layers = m["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_string())
        .collect();
    (m, c, layers)
}

/// `ostree log` date line of an RFC 3339 time (`date -u`).
fn ostree_date(rfc3339: &str) -> String {
    let out = run_ok(Command::new("date").args(["-u", "-d", rfc3339, "+%Y-%m-%d %H:%M:%S +0000"]));
    stdout(&out).trim().to_string()
}

// ------------------------------------------------------------ tar rewriting

/// One member of a tar archive as raw blocks: its extension headers
/// (`x`, `g`, `L`, `K` with data) and its own header with data.
struct RawMember<'a> {
    ext: Vec<(u8, &'a [u8])>,
    header: &'a [u8],
    all: &'a [u8],
}

fn octal(field: &[u8]) -> usize {
    let s: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let s = s.trim();
    if s.is_empty() {
        0
    } else {
        usize::from_str_radix(s, 8).unwrap_or_else(|_| panic!("bad octal field {s:?}"))
    }
}

fn raw_members(data: &[u8]) -> Vec<RawMember<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut start = 0;
    let mut ext = Vec::new();
    while i + 512 <= data.len() {
        let h = &data[i..i + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let size = octal(&h[124..136]);
        let blk = 512 + size.div_ceil(512) * 512;
        let t = h[156];
        if matches!(t, b'x' | b'g' | b'L' | b'K') {
            ext.push((t, &data[i..i + blk]));
            i += blk;
            continue;
        }
        out.push(RawMember {
            ext: std::mem::take(&mut ext),
            header: h,
            all: &data[start..i + blk],
        });
        i += blk;
        start = i;
    }
    out
}

/// PAX records of an `x` header block (with data).
fn pax_records(block: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let size = octal(&block[124..136]);
    let body = &block[512..512 + size];
    let mut out = Vec::new();
    let mut j = 0;
    while j < body.len() && body[j] != 0 {
        let sp = j + body[j..]
            .iter()
            .position(|&b| b == b' ')
            .expect("pax length");
        let n: usize = std::str::from_utf8(&body[j..sp]).unwrap().parse().unwrap();
        let rec = &body[sp + 1..j + n - 1];
        let eq = rec.iter().position(|&b| b == b'=').expect("pax =");
        out.push((rec[..eq].to_vec(), rec[eq + 1..].to_vec()));
        j += n;
    }
    out
}

/// A PAX `x` header (block + data) holding `records`.
fn pax_header(records: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in records {
        let rest = k.len() + v.len() + 3; // ' ', '=', '\n'
        let mut n = rest + 1;
        while n.to_string().len() + rest != n {
            n = n.to_string().len() + rest;
        }
        body.extend_from_slice(n.to_string().as_bytes());
        body.push(b' ');
        body.extend_from_slice(k);
        body.push(b'=');
        body.extend_from_slice(v);
        body.push(b'\n');
    }
    let mut h = vec![0u8; 512];
    h[..10].copy_from_slice(b"PaxHeaders");
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", body.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'x';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h.extend_from_slice(&body);
    h.resize(512 + body.len().div_ceil(512) * 512, 0);
    h
}

/// The member's path as archive readers see it (PAX path > GNU long name >
/// ustar prefix/name).
fn member_path(m: &RawMember<'_>) -> Vec<u8> {
    let cstr = |b: &[u8]| b[..b.iter().position(|&x| x == 0).unwrap_or(b.len())].to_vec();
    let mut name = cstr(&m.header[0..100]);
    if &m.header[257..263] == b"ustar\0" {
        let prefix = cstr(&m.header[345..500]);
        if !prefix.is_empty() {
            name = [&prefix[..], b"/", &name[..]].concat();
        }
    }
    for (t, block) in &m.ext {
        if *t == b'L' {
            name = cstr(&block[512..]);
        }
    }
    for (t, block) in &m.ext {
        if *t == b'x' {
            for (k, v) in pax_records(block) {
                if k == b"path" {
                    name = v;
                }
            }
        }
    }
    name
}

/// PAX records with the `SCHILY.xattr.*` ones in descending name order.
///
/// libarchive (3.6, Debian 12) hands xattrs to ostree in reverse archive
/// order, and `ostree commit --tree=tar=` (2022.7) checksums them in that
/// order, while ostree (fsck, checkout, commit from a directory) sorts
/// them ascending: without this, a file with two xattrs gets a checksum
/// that the oracle repository's own `ostree fsck` rejects. Reversing the
/// (sorted, as Go writes them) records makes ostree see the canonical order;
/// the set of records is unchanged.
fn xattrs_descending(records: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut xs: Vec<(Vec<u8>, Vec<u8>)> = records
        .iter()
        .filter(|(k, _)| k.starts_with(b"SCHILY.xattr."))
        .cloned()
        .collect();
    xs.sort_by(|a, b| b.0.cmp(&a.0));
    let mut it = xs.into_iter();
    records
        .into_iter()
        .map(|r| {
            if r.0.starts_with(b"SCHILY.xattr.") {
                it.next().expect("same count")
            } else {
                r
            }
        })
        .collect()
}

/// The `podman export` tar made committable by `ostree commit`: FIFOs and
/// device nodes removed (ostree has no such objects; the view lists them in
/// `unistore.skipped` instead), xattr records reordered (see
/// [`xattrs_descending`]). Everything else is copied byte for byte.
fn oracle_tar(data: &[u8]) -> (Vec<u8>, Vec<String>) {
    let mut out = Vec::with_capacity(data.len());
    let mut dropped = Vec::new();
    for m in raw_members(data) {
        if matches!(m.header[156], b'3' | b'4' | b'6') {
            dropped.push(format!(
                "/{}",
                String::from_utf8_lossy(&member_path(&m)).trim_start_matches("./")
            ));
            continue;
        }
        for (t, block) in &m.ext {
            if *t == b'x' {
                let recs = xattrs_descending(pax_records(block));
                let h = pax_header(&recs);
                out.extend_from_slice(&h);
            } else {
                out.extend_from_slice(block);
            }
        }
        out.extend_from_slice(&m.all[m.all.len() - member_len(m.header)..]);
    }
    out.resize(out.len() + 1024, 0);
    dropped.sort();
    (out, dropped)
}

fn member_len(header: &[u8]) -> usize {
    512 + octal(&header[124..136]).div_ceil(512) * 512
}

/// A layer tar filtered as ostree-rs-ext's `filter_tar` (default options)
/// writes it for `ostree commit --tar-autocreate-parents`: the first path
/// component `usr` stays, `etc` → `usr/etc`, `var` → `usr/share/factory/var`,
/// every other member is dropped; paths get a `./` prefix (through a PAX
/// `path` record); link targets are left alone. xattrs reordered as in
/// [`oracle_tar`].
fn rsext_tar(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for m in raw_members(data) {
        let path = member_path(&m);
        let comps: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .collect();
        let new: Vec<u8> = match comps.split_first() {
            None => b".".to_vec(),
            Some((first, rest)) => {
                let prefix: &[u8] = match *first {
                    b"usr" => b"./usr",
                    b"etc" => b"./usr/etc",
                    b"var" => b"./usr/share/factory/var",
                    _ => continue,
                };
                let mut p = prefix.to_vec();
                for c in rest {
                    p.push(b'/');
                    p.extend_from_slice(c);
                }
                p
            }
        };
        let mut recs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (t, block) in &m.ext {
            match t {
                b'x' => recs.extend(pax_records(block).into_iter().filter(|(k, _)| k != b"path")),
                b'K' => out.extend_from_slice(block),
                _ => {}
            }
        }
        recs = xattrs_descending(recs);
        recs.push((b"path".to_vec(), new));
        out.extend_from_slice(&pax_header(&recs));
        out.extend_from_slice(&m.all[m.all.len() - member_len(m.header)..]);
    }
    out.resize(out.len() + 1024, 0);
    out
}

// ------------------------------------------------------------------ oracle

/// `podman export` (uncompressed tar) of a container of `image`, loaded from
/// the docker archive `archive` into an isolated podman.
fn podman_export(archive: &Path, image: &str, dest: &Path) {
    let podman = IsolatedPodman::new();
    podman.ok(["load", "-q", "-i", &archive.display().to_string()]);
    let cid = stdout(&podman.ok(["create", image, "/bin/true"]))
        .trim()
        .to_string();
    podman.ok(["export", "-o", &dest.display().to_string(), &cid]);
    podman.ok(["rm", &cid]);
}

/// `ostree commit --tree=tar=` of `podman export` of `image` into a fresh
/// bare repository under `work`; returns (repository, ref, paths left out of the tar).
fn oracle_commit(archive: &Path, image: &str, work: &Path) -> (PathBuf, String, Vec<String>) {
    let short = image.rsplit('/').next().unwrap().replace(':', "-");
    let export = work.join(format!("{short}.export.tar"));
    podman_export(archive, image, &export);
    let (tar, dropped) = oracle_tar(&fs::read(&export).expect("reading export"));
    let tarf = work.join(format!("{short}.oracle.tar"));
    fs::write(&tarf, tar).expect("writing oracle tar");
    let repo = work.join(format!("{short}.repo"));
    init_bare(&repo);
    // No `./` member in the export: --tar-autocreate-parents gives the root
    // 0755 0:0 (every other directory is listed before its contents).
    ostree_ok(
        &repo,
        &[
            "commit",
            "--no-bindings",
            "--tar-autocreate-parents",
            &format!("--tree=tar={}", tarf.display()),
            "-b",
            "oracle",
            "-s",
            "podman export",
        ],
    );
    (repo, "oracle".to_string(), dropped)
}

// ------------------------------------------------------------------ tests

/// refs, log, show, ls, cat, checkout, fsck, pull-local --untrusted, diff and
/// `unistore inspect`, on derived:1 and app:1.
#[test]
fn ostree_view_serves_images_to_the_ostree_cli() {
    let fx = prerequisites();
    let store = TempStore::new();
    for (dir, name) in [
        ("FIXTURE_DERIVED_OCI_DIR", DERIVED),
        ("FIXTURE_APP_OCI_DIR", APP),
    ] {
        store.ok([
            "import",
            "-q",
            &format!("oci:{}", fx.get(dir)),
            "--name",
            name,
        ]);
    }
    let m = Mounted::new(&store);
    let repo = m.repo();

    // Layout: what a read-only bare repository needs.
    assert_eq!(
        fs::read_to_string(repo.join("config")).unwrap(),
        "[core]\nrepo_version=1\nmode=bare\n"
    );
    for d in ["objects", "refs/heads", "refs/remotes", "tmp"] {
        assert!(repo.join(d).is_dir(), "ostree/{d} is missing");
    }
    assert_eq!(fs::read_dir(repo.join("tmp")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(repo.join("refs/remotes")).unwrap().count(), 0);

    // refs: plain commits, ostree-rs-ext image and blob refs.
    let (dm, dc, dlayers) = oci_image(&fx.path("FIXTURE_DERIVED_OCI_DIR"));
    let (_, _, alayers) = oci_image(&fx.path("FIXTURE_APP_OCI_DIR"));
    let mut want: BTreeSet<String> = [DERIVED_REF, APP_REF, DERIVED_IMAGE_REF, APP_IMAGE_REF]
        .into_iter()
        .map(str::to_string)
        .collect();
    want.extend(dlayers.iter().chain(&alayers).map(|d| blob_ref(d)));
    assert_eq!(refs_of(&repo), want, "ostree refs");

    // Objects are listable: every objects/XX entry is a 62-hex name with a
    // known extension, and the commit is among them.
    let commit = rev_parse(&repo, DERIVED_REF);
    let mut n_objects = 0;
    for d in fs::read_dir(repo.join("objects")).unwrap() {
        let d = d.unwrap();
        let prefix = d.file_name().into_string().unwrap();
        assert!(prefix.len() == 2 && prefix.bytes().all(|b| b.is_ascii_hexdigit()));
        for o in fs::read_dir(d.path()).unwrap() {
            let name = o.unwrap().file_name().into_string().unwrap();
            let (hex, ext) = name.split_once('.').expect("object has an extension");
            assert_eq!(hex.len(), 62, "objects/{prefix}/{name}");
            assert!(
                ["file", "dirtree", "dirmeta", "commit"].contains(&ext),
                "objects/{prefix}/{name}"
            );
            n_objects += 1;
        }
    }
    assert!(n_objects > 3000, "only {n_objects} objects listed");
    assert!(repo
        .join("objects")
        .join(&commit[..2])
        .join(format!("{}.commit", &commit[2..]))
        .is_file());

    // inspect reports the ref and commit the view serves.
    let insp = store.inspect(DERIVED);
    assert_eq!(insp["OstreeRef"].as_str(), Some(DERIVED_REF), "{insp}");
    assert_eq!(insp["OstreeCommit"].as_str(), Some(commit.as_str()));
    let insp_app = store.inspect(APP);
    assert_eq!(
        insp_app["OstreeCommit"].as_str().map(str::to_string),
        Some(rev_parse(&repo, APP_REF))
    );

    // log / show: subject, date = config created, no parent, metadata.
    let log = ostree_ok(&repo, &["log", DERIVED_REF]);
    assert!(log.contains(&format!("commit {commit}")), "{log}");
    let created = dc["created"].as_str().expect("config created");
    assert!(
        log.contains(&format!("Date:  {}", ostree_date(created))),
        "log date is not the config's created ({created}):\n{log}"
    );
    assert!(
        log.contains(&format!("Image {}", insp["ConfigDigest"].as_str().unwrap())),
        "{log}"
    );
    assert!(!log.contains("History beyond"), "{log}");
    let skipped = ostree_ok(
        &repo,
        &["show", "--print-metadata-key=unistore.skipped", DERIVED_REF],
    );
    assert_eq!(
        skipped.trim(),
        "['/srv/fixture/special/block-loop0', '/srv/fixture/special/char-null', '/srv/fixture/special/fifo']"
    );
    let no_skip = ostree_run(
        &repo,
        &["show", "--print-metadata-key=unistore.skipped", APP_REF],
    );
    assert!(!no_skip.status.success(), "app:1 has nothing to skip");
    let md = ostree_ok(
        &repo,
        &[
            "show",
            "--print-metadata-key=unistore.manifest-digest",
            DERIVED_REF,
        ],
    );
    assert_eq!(md.trim(), format!("'{}'", insp["Digest"].as_str().unwrap()));

    // ls: modes, owners, setuid/setgid/sticky, xattrs, symlinks.
    let ls = ostree_ok(&repo, &["ls", "-R", "-X", DERIVED_REF, "/srv/fixture"]);
    for want in [
        "-04755 0 0     22 { @a(ayay) [] } /srv/fixture/perm/setuid",
        "-02755 0 0     22 { @a(ayay) [] } /srv/fixture/perm/setgid",
        "d02775 0 0      0 { @a(ayay) [] } /srv/fixture/perm/setgid-dir",
        "d01777 0 0      0 { @a(ayay) [] } /srv/fixture/perm/sticky-dir",
        "-00400 0 0     10 { @a(ayay) [] } /srv/fixture/perm/mode-0400",
        "-00640 65534 65534     16 { @a(ayay) [] } /srv/fixture/owner/nobody",
        "-00644 1000 65534     12 { @a(ayay) [] } /srv/fixture/owner/uid1000-gid65534",
        "d00755 1000 1000      0 { @a(ayay) [] } /srv/fixture/owner/dir1000",
        "l00777 0 0      0 { @a(ayay) [] } /srv/fixture/links/dangling -> /nonexistent/dangling/target",
        "user.unistore.dir",
        "/srv/fixture/top-layer.txt",
    ] {
        assert!(ls.contains(want), "ostree ls lacks `{want}`:\n{ls}");
    }
    let xf = ostree_ok(&repo, &["ls", "-X", DERIVED_REF, "/srv/fixture/xattr/file"]);
    assert!(
        xf.contains("(b'user.unistore.second', [byte 0x00, 0xff, 0x10]), (b'user.unistore.test'"),
        "xattrs of /srv/fixture/xattr/file: {xf}"
    );
    for gone in [
        "/srv/fixture/delete-me.txt",
        "/srv/fixture/special/fifo",
        "/srv/fixture/special/char-null",
    ] {
        assert!(!ls.contains(gone), "{gone} must not be in the commit");
    }
    // Hard links: one content object for the three names.
    let lsc = ls_by_path(&ls_rc(&repo, DERIVED_REF));
    let csum_of = |p: &str| -> String {
        lsc.get(p)
            .unwrap_or_else(|| panic!("{p} missing from ls -R -C"))
            .split_whitespace()
            .nth(4)
            .unwrap()
            .to_string()
    };
    let h = csum_of("/srv/fixture/a/hardlink-src");
    assert_eq!(csum_of("/srv/fixture/b/hardlink-dst"), h);
    assert_eq!(csum_of("/srv/fixture/hardlink-third"), h);

    // cat: layers applied (overwrite, whiteouts, opaque directory).
    assert_eq!(
        ostree_ok(&repo, &["cat", DERIVED_REF, "/etc/issue"]),
        "unistore derived fixture \\n \\l\n"
    );
    assert_eq!(
        ostree_ok(&repo, &["cat", DERIVED_REF, "/srv/fixture/overwrite.txt"]),
        "version 2 of the overwritten file, longer than version 1\n"
    );
    assert!(!ostree_run(&repo, &["cat", DERIVED_REF, "/etc/issue.net"])
        .status
        .success());
    assert!(ostree_run(&repo, &["cat", APP_REF, "/etc/issue.net"])
        .status
        .success());
    let lic = ostree_ok(&repo, &["ls", DERIVED_REF, "/usr/share/common-licenses"]);
    assert_eq!(
        lic.lines().count(),
        2,
        "opaque dir keeps only REPLACED:\n{lic}"
    );
    assert!(
        !ostree_run(
            &repo,
            &["ls", DERIVED_REF, "/usr/share/zoneinfo/Antarctica"]
        )
        .status
        .success(),
        "/usr/share/zoneinfo/Antarctica is whited out in derived:1"
    );
    assert_eq!(
        ostree_ok(&repo, &["cat", APP_REF, "/app/hello.txt"]),
        "hello from the unistore app fixture\n"
    );

    // fsck of the view: every object re-checksummed through FUSE.
    assert_fsck_clean(&repo, "the view");

    // checkout: owners, modes, setuid, xattrs, contents = the golden listing.
    let work = tempdir("unistore-it-ostree-work-");
    let co = work.path().join("co");
    ostree_ok(&repo, &["checkout", DERIVED_REF, &co.display().to_string()]);
    check_against_golden_listing(&co.join("srv/fixture"), &fx.path("FIXTURE_DERIVED_LISTING"));
    let md = fs::symlink_metadata(co.join("srv/fixture/perm/setuid")).unwrap();
    assert_eq!(md.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(
        xattr(&co.join("srv/fixture/xattr/file"), "user.unistore.second"),
        vec![0x00, 0xff, 0x10]
    );
    assert_eq!(
        xattr(&co.join("srv/fixture/xattr/dir"), "user.unistore.dir"),
        b"dir xattr"
    );
    assert_eq!(
        fs::read_link(co.join("bin/sh")).unwrap(),
        PathBuf::from("/bin/busybox")
    );
    assert!(!co.join("srv/fixture/special").join("fifo").exists());

    // pull-local --untrusted (verifies every checksum) into a real repo.
    let dest = work.path().join("dest");
    init_bare(&dest);
    for r in [DERIVED_REF, APP_REF, DERIVED_IMAGE_REF] {
        ostree_ok(
            &dest,
            &["pull-local", "--untrusted", &repo.display().to_string(), r],
        );
        assert_eq!(rev_parse(&dest, r), rev_parse(&repo, r));
        assert_eq!(ls_rc(&dest, r), ls_rc(&repo, r), "{r} after pull-local");
    }
    assert_fsck_clean(&dest, "the pull-local destination");

    // diff between two image commits.
    let diff = ostree_ok(&repo, &["diff", APP_REF, DERIVED_REF]);
    for want in [
        "M    /etc/issue",
        "D    /app",
        "D    /etc/issue.net",
        "D    /usr/share/zoneinfo/Antarctica",
        "A    /srv/fixture/top-layer.txt",
        "A    /usr/share/common-licenses/REPLACED",
    ] {
        assert!(
            diff.lines().any(|l| l == want),
            "ostree diff lacks `{want}`:\n{diff}"
        );
    }

    // ostree-rs-ext conventions: merge commit metadata and layer commits.
    let show = |key: &str| {
        ostree_ok(
            &repo,
            &[
                "show",
                &format!("--print-metadata-key={key}"),
                DERIVED_IMAGE_REF,
            ],
        )
    };
    assert_eq!(
        show("ostree.manifest-digest").trim(),
        format!("'{}'", insp["Digest"].as_str().unwrap())
    );
    let manifest: Value = serde_json::from_str(&gvariant_string(&show("ostree.manifest")))
        .expect("ostree.manifest is JSON");
    assert_eq!(manifest, dm);
    let config: Value =
        serde_json::from_str(&gvariant_string(&show("ostree.container.image-config")))
            .expect("ostree.container.image-config is JSON");
    assert_eq!(config, dc);
    let merged = ostree_ok(&repo, &["ls", DERIVED_IMAGE_REF, "/"]);
    assert_eq!(
        merged.lines().count(),
        2,
        "merge commit has only /usr:\n{merged}"
    );
    assert_eq!(
        ostree_ok(&repo, &["cat", DERIVED_IMAGE_REF, "/usr/etc/issue"]),
        "unistore derived fixture \\n \\l\n"
    );
    check_layer_commits(
        &repo,
        &fx.path("FIXTURE_DERIVED_OCI_DIR"),
        &dlayers,
        work.path(),
    );
}

/// The value of a GVariant string as `ostree show --print-metadata-key`
/// prints it (`'…'`, or `"…"` with backslash escapes when it contains `'`).
fn gvariant_string(text: &str) -> String {
    let t = text.trim();
    let quote = t.chars().next().expect("non-empty");
    assert!(
        (quote == '\'' || quote == '"') && t.ends_with(quote),
        "not a GVariant string: {t}"
    );
    let mut out = String::new();
    let mut it = t[1..t.len() - 1].chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn xattr(p: &Path, name: &str) -> Vec<u8> {
    let mut buf = vec![0u8; 64 * 1024];
    let n = rustix::fs::lgetxattr(p, name, &mut buf)
        .unwrap_or_else(|e| panic!("getxattr {} {name}: {e}", p.display()));
    buf[..n].to_vec()
}

/// Compare a checked-out `/srv/fixture` with the fixture's golden listing
/// (`stat` lines and `sha256sum` lines): type, mode, owner, size, symlink
/// target and content of everything ostree can store.
fn check_against_golden_listing(dir: &Path, listing: &Path) {
    let text = fs::read_to_string(listing).expect("golden listing");
    let mut checked = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.splitn(8, '|').collect();
        if f.len() == 8 && !line.starts_with('#') {
            let (kind, mode, uid, gid, size) = (f[0], f[1], f[2], f[3], f[4]);
            if ["fifo", "character special file", "block special file"].contains(&kind) {
                continue;
            }
            let (name, target) = match f[7].split_once(" -> ") {
                Some((n, t)) => (n.trim_matches('\''), Some(t.trim_matches('\''))),
                None => (f[7], None),
            };
            let p = dir.join(name.trim_start_matches("./"));
            let md = fs::symlink_metadata(&p)
                .unwrap_or_else(|e| panic!("checkout lacks {}: {e}", p.display()));
            assert_eq!(
                format!("{:o}", md.mode() & 0o7777),
                mode,
                "mode of {}",
                p.display()
            );
            assert_eq!(md.uid().to_string(), uid, "uid of {}", p.display());
            assert_eq!(md.gid().to_string(), gid, "gid of {}", p.display());
            match kind {
                "directory" => assert!(md.is_dir(), "{}", p.display()),
                "symbolic link" => {
                    assert!(md.file_type().is_symlink(), "{}", p.display());
                    assert_eq!(
                        fs::read_link(&p).unwrap(),
                        PathBuf::from(target.unwrap()),
                        "{}",
                        p.display()
                    );
                }
                _ => {
                    assert!(md.is_file(), "{} is not a regular file", p.display());
                    assert_eq!(md.len().to_string(), size, "size of {}", p.display());
                }
            }
            checked += 1;
        } else if let Some((hash, name)) = line.split_once("  ./") {
            if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                let p = dir.join(name);
                let (got, _) = sha256_reader(fs::File::open(&p).unwrap());
                assert_eq!(got, format!("sha256:{hash}"), "content of {}", p.display());
                checked += 1;
            }
        }
    }
    assert!(checked > 4000, "only {checked} golden lines checked");
}

/// Each layer's `ostree/container/blob/…` commit has the tree `ostree commit
/// --tar-autocreate-parents` makes of the layer tar filtered as ostree-rs-ext
/// filters it.
fn check_layer_commits(repo: &Path, oci_dir: &Path, layers: &[String], work: &Path) {
    let lrepo = work.join("layers.repo");
    init_bare(&lrepo);
    for (i, digest) in layers.iter().enumerate() {
        let tar = rsext_tar(&fs::read(oci_blob_path(oci_dir, digest)).expect("layer blob"));
        let tarf = work.join(format!("layer{i}.tar"));
        fs::write(&tarf, tar).unwrap();
        let b = format!("layer{i}");
        ostree_ok(
            &lrepo,
            &[
                "commit",
                "--no-bindings",
                "--tar-autocreate-parents",
                &format!("--tree=tar={}", tarf.display()),
                "-b",
                &b,
            ],
        );
        assert_eq!(
            content_checksum(repo, &blob_ref(digest)),
            content_checksum(&lrepo, &b),
            "layer {i} ({digest}): blob commit tree differs from ostree's import of the filtered tar:\n{}",
            listing_diff(
                &ls_by_path(&ls_rc(&lrepo, &b)),
                &ls_by_path(&ls_rc(repo, &blob_ref(digest)))
            )
        );
    }
}

/// The oracle: `ostree commit --tree=tar=` of `podman export` of a container
/// of each image gives the same content, dirtree and dirmeta checksums as
/// the view, for every path and at the root (`ostree ls -R -C` identical,
/// same ContentChecksum). Commit checksums differ (subject, body, metadata,
/// timestamp are ours).
#[test]
fn ostree_view_checksums_equal_ostree_commit_of_podman_export() {
    let fx = prerequisites();
    let store = TempStore::new();
    let images = [
        ("FIXTURE_DERIVED_DOCKER_TAR", DERIVED, DERIVED_REF),
        ("FIXTURE_APP_DOCKER_TAR", APP, APP_REF),
    ];
    for (key, _, _) in images {
        store.import(&format!("docker-archive:{}", fx.get(key)));
    }
    let m = Mounted::new(&store);
    let repo = m.repo();
    let work = tempdir("unistore-it-ostree-oracle-");
    for (key, image, r) in images {
        let (orepo, oref, dropped) = oracle_commit(&fx.path(key), image, work.path());
        assert_fsck_clean(&orepo, &format!("the oracle repository of {image}"));
        let want = ls_rc(&orepo, &oref);
        let got = ls_rc(&repo, r);
        assert!(
            want == got,
            "{image}: the view differs from ostree commit of podman export:\n{}",
            listing_diff(&ls_by_path(&want), &ls_by_path(&got))
        );
        assert_eq!(
            content_checksum(&repo, r),
            content_checksum(&orepo, &oref),
            "{image}: root (ContentChecksum)"
        );
        assert_ne!(rev_parse(&repo, r), rev_parse(&orepo, &oref));
        // What the oracle tar had to drop is exactly what the view skips.
        let skipped = ostree_run(&repo, &["show", "--print-metadata-key=unistore.skipped", r]);
        let skipped: Vec<String> = if skipped.status.success() {
            stdout(&skipped)
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split(", ")
                .map(|s| s.trim_matches('\'').to_string())
                .collect()
        } else {
            Vec::new()
        };
        assert_eq!(skipped, dropped, "{image}: unistore.skipped");
        println!(
            "{image}: view {} == oracle {} (ContentChecksum {}), {} paths",
            rev_parse(&repo, r),
            rev_parse(&orepo, &oref),
            content_checksum(&repo, r),
            got.lines().count()
        );
    }
}

/// Imports and removals while mounted show up in the ostree view.
#[test]
fn ostree_view_follows_catalog_changes() {
    let fx = prerequisites();
    let store = TempStore::new();
    store.ok([
        "import",
        "-q",
        &format!("oci:{}", fx.get("FIXTURE_APP_OCI_DIR")),
        "--name",
        APP,
    ]);
    let m = Mounted::new(&store);
    let repo = m.repo();
    assert!(refs_of(&repo).contains(APP_REF));
    assert!(!refs_of(&repo).contains(BASE_REF));

    store.ok([
        "import",
        "-q",
        &format!("oci:{}", fx.get("FIXTURE_BASE_OCI_DIR")),
        "--name",
        BASE,
    ]);
    let wait_for = |pred: &dyn Fn(&BTreeSet<String>) -> bool, what: &str| {
        let t = Instant::now();
        loop {
            let refs = refs_of(&repo);
            if pred(&refs) {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{what} within 10 s; refs: {refs:?}\n{}",
                m.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let listed = |commit: &str| -> bool {
        fs::read_dir(repo.join("objects").join(&commit[..2]))
            .map(|d| {
                d.filter_map(Result::ok)
                    .any(|e| e.file_name().to_string_lossy() == format!("{}.commit", &commit[2..]))
            })
            .unwrap_or(false)
    };
    // Listings cached before the import must not hide the new objects.
    let app_commit = rev_parse(&repo, APP_REF);
    assert!(listed(&app_commit));
    wait_for(&|r| r.contains(BASE_REF), "base:1 appears");
    let base_commit = rev_parse(&repo, BASE_REF);
    assert!(listed(&base_commit), "objects/ lists the new commit");
    assert_eq!(
        store.inspect(BASE)["OstreeCommit"]
            .as_str()
            .map(str::to_string),
        Some(rev_parse(&repo, BASE_REF))
    );
    // base:1 is app:1's lower layer: same /etc/passwd object.
    assert_eq!(
        ostree_ok(&repo, &["cat", BASE_REF, "/etc/passwd"]),
        ostree_ok(&repo, &["cat", APP_REF, "/etc/passwd"])
    );
    assert_fsck_clean(&repo, "the view after an import");

    store.ok(["rmi", APP]);
    wait_for(
        &|r| !r.contains(APP_REF) && !r.contains(APP_IMAGE_REF) && r.contains(BASE_REF),
        "app:1 disappears",
    );
    assert_fsck_clean(&repo, "the view after rmi");
    assert!(
        !listed(&app_commit),
        "objects/ no longer lists app:1's commit"
    );
    assert!(listed(&base_commit));
}

// ------------------------------------------------------------------ ostree-ext

/// `unistore-ostree-ext-check REPO` (the ostree-ext crate, see
/// `tests/ostree-ext-check`): its JSON report, or its failure.
fn ostree_ext_check(repo: &Path) -> Result<Value, String> {
    let out = run(Command::new(ostree_ext_check_bin()).arg(repo));
    if !out.status.success() {
        return Err(format!("{}: {}", out.status, stderr(&out)));
    }
    Ok(serde_json::from_slice(&out.stdout).expect("unistore-ostree-ext-check prints JSON"))
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
}

fn strings_of(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

/// The ostree-ext crate (ostree-rs-ext, what `ostree container image list`,
/// rpm-ostree and bootc use) lists the view's images and queries each one:
/// `list_images` = the store's names, `query_image`/`query_image_commit`
/// give the manifest digest `unistore inspect` reports and the fixture's
/// manifest hashes to, the fixture's config (digest, architecture, diffIDs),
/// and every layer's `ostree/container/blob/…` ref resolves.
#[test]
fn ostree_view_images_are_listed_and_queried_by_ostree_ext() {
    const EXTRA: &str = "localhost:5000/my_app:v1";
    let fx = prerequisites();

    // First: the checker fails where ostree-ext must (so a pass below means
    // something). A real repository written by the ostree CLI, with a merge
    // commit but no layer ref for its first layer: "Missing base image ref".
    let work = tempdir("unistore-it-ostree-ext-");
    let neg = work.path().join("repo");
    init_bare(&neg);
    let empty = work.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let (app_digest, app_manifest, _) = oci_dir_image(&fx.path("FIXTURE_APP_OCI_DIR"));
    let app_manifest = String::from_utf8(app_manifest).expect("UTF-8 manifest");
    let (_, _, app_layers) = oci_image(&fx.path("FIXTURE_APP_OCI_DIR"));
    let neg_image = "ostree/container/image/containers-storage_3A_neg";
    ostree_ok(
        &neg,
        &[
            "commit",
            "--no-bindings",
            &format!("--branch={neg_image}"),
            &format!("--tree=dir={}", empty.display()),
            &format!("--add-metadata-string=ostree.manifest-digest={app_digest}"),
            &format!("--add-metadata-string=ostree.manifest={app_manifest}"),
        ],
    );
    let err = ostree_ext_check(&neg).expect_err("ostree-ext accepted an image without layer refs");
    assert!(
        err.contains(&format!(
            "Missing base image ref {}",
            blob_ref(&app_layers[0])
        )),
        "{err}"
    );
    ostree_ok(
        &neg,
        &[
            "commit",
            "--no-bindings",
            &format!("--branch={}", blob_ref(&app_layers[0])),
            &format!("--tree=dir={}", empty.display()),
        ],
    );
    let ok =
        ostree_ext_check(&neg).expect("ostree-ext reads the image once its base layer ref exists");
    assert_eq!(
        ok["images"][0]["reference"], "containers-storage:neg",
        "{ok}"
    );
    assert_eq!(
        ok["images"][0]["manifest_digest"],
        app_digest.as_str(),
        "{ok}"
    );
    assert_eq!(ok["images"][0]["layers"][1]["commit"], Value::Null, "{ok}");

    // The view: three import forms, one image with two names (one needs
    // escaping: ':' in the host, '_').
    let store = TempStore::new();
    store.ok([
        "import",
        "-q",
        &format!("oci:{}", fx.get("FIXTURE_DERIVED_OCI_DIR")),
        "--name",
        DERIVED,
    ]);
    store.ok([
        "import",
        "-q",
        &format!("oci-archive:{}", fx.get("FIXTURE_APP_OCI_TAR")),
        "--name",
        APP,
    ]);
    store.import(&format!(
        "docker-archive:{}",
        fx.get("FIXTURE_BASE_DOCKER_TAR")
    ));
    store.ok(["tag", APP, EXTRA]);

    // Oracles: the fixture files (manifest bytes where the source has them,
    // config bytes), and the image refs spelled out by hand.
    let (dm_digest, dm, dc) = oci_dir_image(&fx.path("FIXTURE_DERIVED_OCI_DIR"));
    let (am_digest, am, ac) = oci_archive_image(&fx.path("FIXTURE_APP_OCI_TAR"));
    let bc = docker_archive_config(&fx.path("FIXTURE_BASE_DOCKER_TAR"));
    let manifests: BTreeMap<&str, (String, Vec<u8>)> = [
        (DERIVED, (dm_digest, dm)),
        (APP, (am_digest.clone(), am.clone())),
        (EXTRA, (am_digest, am)),
    ]
    .into_iter()
    .collect();
    let configs: BTreeMap<&str, Vec<u8>> =
        [(DERIVED, dc), (APP, ac.clone()), (EXTRA, ac), (BASE, bc)]
            .into_iter()
            .collect();
    let image_refs: BTreeMap<&str, &str> = [
        (DERIVED, DERIVED_IMAGE_REF),
        (APP, APP_IMAGE_REF),
        (
            BASE,
            "ostree/container/image/containers-storage_3A_localhost/unistore-fixture/base_3A_1",
        ),
        (
            EXTRA,
            "ostree/container/image/containers-storage_3A_localhost_3A_5000/my__app_3A_v1",
        ),
    ]
    .into_iter()
    .collect();

    let m = Mounted::new(&store);
    let repo = m.repo();
    let got = ostree_ext_check(&repo)
        .unwrap_or_else(|e| panic!("ostree-ext rejects the view: {e}\n{}", m.log()));
    assert_eq!(got["writable"], false, "the view is opened read-only");

    // list_images = every name of every stored image, containers-storage: transport.
    let want: BTreeSet<String> = store
        .images()
        .iter()
        .flat_map(|i| strings_of(&i["Names"]))
        .map(|n| format!("containers-storage:{n}"))
        .collect();
    assert_eq!(want.len(), 4, "{want:?}");
    let images = got["images"].as_array().expect("images");
    let listed: Vec<String> = images
        .iter()
        .map(|i| str_of(i, "reference").to_string())
        .collect();
    assert_eq!(listed.len(), want.len(), "list_images: {listed:?}");
    assert_eq!(
        listed.into_iter().collect::<BTreeSet<_>>(),
        want,
        "list_images"
    );

    let layer_refs: BTreeMap<String, String> = got["layer_refs"]
        .as_array()
        .expect("layer_refs")
        .iter()
        .map(|l| {
            assert_eq!(str_of(l, "ref"), blob_ref(str_of(l, "digest")), "{l}");
            (
                str_of(l, "digest").to_string(),
                str_of(l, "commit").to_string(),
            )
        })
        .collect();
    let mut referenced = BTreeSet::new();
    let mut merge_commits = BTreeMap::new();
    for img in images {
        let reference = str_of(img, "reference");
        let name = reference
            .strip_prefix("containers-storage:")
            .unwrap_or_else(|| panic!("{reference}: not containers-storage:"));
        assert_eq!(str_of(img, "name"), name);
        let image_ref = image_refs[name];
        assert_eq!(str_of(img, "ostree_ref"), image_ref, "{name}");
        let merge = str_of(img, "merge_commit");
        assert_eq!(merge, rev_parse(&repo, image_ref), "{name}: merge commit");
        merge_commits.insert(name, merge.to_string());

        // Manifest: ostree-ext's digest = inspect's = the stored bytes' sha256
        // (= the fixture's manifest, where the source has one).
        let insp = store.inspect(name);
        let digest = str_of(&insp, "Digest");
        assert_eq!(
            str_of(img, "manifest_digest"),
            digest,
            "{name}: query_image digest"
        );
        assert_eq!(str_of(img, "manifest_digest_from_commit"), digest, "{name}");
        assert_eq!(
            str_of(img, "manifest_sha256"),
            digest,
            "{name}: ostree.manifest bytes"
        );
        let inspect_layers: Vec<String> = insp["Layers"]
            .as_array()
            .expect("Layers")
            .iter()
            .map(|l| str_of(l, "Digest").to_string())
            .collect();
        let layers = img["layers"].as_array().expect("layers");
        let layer_digests: Vec<String> = layers
            .iter()
            .map(|l| str_of(l, "digest").to_string())
            .collect();
        assert_eq!(layer_digests, inspect_layers, "{name}: manifest layers");
        if let Some((mdigest, mbytes)) = manifests.get(name) {
            assert_eq!(digest, mdigest, "{name}: fixture manifest digest");
            let fm: Value = serde_json::from_slice(mbytes).unwrap();
            let flayers: Vec<String> = fm["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| str_of(l, "digest").to_string())
                .collect();
            assert_eq!(layer_digests, flayers, "{name}: fixture manifest layers");
        }

        // Config: digest, architecture, OS and diffIDs of the fixture config.
        let config = &configs[name];
        let cj: Value = serde_json::from_slice(config).unwrap();
        assert_eq!(
            str_of(img, "config_digest"),
            sha256(config),
            "{name}: config digest"
        );
        assert_eq!(
            str_of(img, "config_sha256"),
            sha256(config),
            "{name}: ostree.container.image-config bytes"
        );
        assert_eq!(
            str_of(img, "config_digest"),
            str_of(&insp, "ConfigDigest"),
            "{name}"
        );
        assert_eq!(
            str_of(img, "architecture"),
            str_of(&cj, "architecture"),
            "{name}"
        );
        assert_eq!(str_of(img, "os"), str_of(&cj, "os"), "{name}");
        assert_eq!(
            strings_of(&img["diff_ids"]),
            config_diff_ids(config),
            "{name}: diffIDs"
        );
        assert_eq!(
            layers.len(),
            config_diff_ids(config).len(),
            "{name}: one layer per diffID"
        );

        // Every layer is stored: its ref resolves (ostree-ext and the ostree CLI agree).
        for l in layers {
            let d = str_of(l, "digest");
            assert_eq!(
                str_of(l, "ostree_ref"),
                blob_ref(d),
                "{name}: layer ref of {d}"
            );
            let c = l["commit"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: ostree-ext reports layer {d} missing: {l}"));
            assert_eq!(c, rev_parse(&repo, &blob_ref(d)), "{name}: layer {d}");
            assert_eq!(
                layer_refs.get(d).map(String::as_str),
                Some(c),
                "{name}: {d}"
            );
            assert!(l["importer_version"].is_string(), "{name}: {l}");
            referenced.insert(d.to_string());
        }
        assert_eq!(
            str_of(img, "base_commit"),
            str_of(&layers[0], "commit"),
            "{name}"
        );
        assert!(img["importer_version"].is_string(), "{name}: {img}");
        assert_eq!(img["cached_update"], false, "{name}");
        // ostree.tar-filtered parses (a{sa{su}}): these images have /bin etc.
        assert!(
            str_of(img, "filtered_content_warning").contains("non-ostree compatible"),
            "{name}: {img}"
        );
    }
    // Every layer ref belongs to a listed image (ostree-ext's gc would keep all).
    assert_eq!(
        layer_refs.keys().cloned().collect::<BTreeSet<_>>(),
        referenced
    );
    // Both names of app:1 are the same merge commit.
    assert_eq!(merge_commits[APP], merge_commits[EXTRA]);
    println!(
        "ostree-ext: {} images, {} layer refs, all layers present",
        images.len(),
        layer_refs.len()
    );
}
