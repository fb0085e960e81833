//! Issue 5: per-image views, the standard mount (`mount -t fuse.unistore`),
//! the daemon started as the systemd unit starts it, and `unistore conf`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// Whether `mnt` is a mount point (per /proc/self/mountinfo).
pub fn is_mount_point(mnt: &Path) -> bool {
    let want = mnt.to_string_lossy().replace(' ', "\\040");
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// A store mounted with `unistore mount`; unmounted (and the daemon gone) on drop.
pub struct Mounted {
    pub dir: tempfile::TempDir,
}

impl Mounted {
    pub fn new(store: &TempStore, extra: &[&str]) -> Mounted {
        require_root();
        assert!(
            Path::new("/dev/fuse").exists(),
            "/dev/fuse is missing: FUSE tests cannot run"
        );
        let dir = tempdir("unistore-it-mnt-");
        let mut args: Vec<String> = vec!["mount".into(), dir.path().display().to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        store.ok(&args);
        assert!(
            is_mount_point(dir.path()),
            "unistore mount returned but {} is not mounted",
            dir.path().display()
        );
        Mounted { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new(unistore_bin())
            .arg("umount")
            .arg(self.dir.path())
            .status();
        if is_mount_point(self.dir.path()) {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Everything `ls -l`, `stat`, `getfattr` and `sha256sum` would tell about a
/// tree, keyed by path; hard links are reported as groups (first path of the
/// inode in sorted order) so inode numbers do not matter.
fn rich_listing(root: &Path, skip: &dyn Fn(&str) -> bool) -> BTreeMap<String, String> {
    let mut paths = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if skip(&rel) {
                continue;
            }
            let md = fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                stack.push(p.clone());
            }
            paths.push((rel, p, md));
        }
    }
    paths.sort_by(|a, b| a.0.cmp(&b.0));
    let mut first_of_inode: BTreeMap<u64, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (rel, p, md) in paths {
        let ft = md.file_type();
        let mut xattrs: Vec<String> = xattr_list(&p)
            .into_iter()
            .filter(|k| !k.starts_with("trusted.overlay.") && !k.starts_with("security.selinux"))
            .map(|k| format!("{k}={}", hex::encode(xattr_get(&p, &k))))
            .collect();
        xattrs.sort();
        let what = if ft.is_file() {
            let link = if md.nlink() > 1 {
                let first = first_of_inode
                    .entry(md.ino())
                    .or_insert_with(|| rel.clone());
                format!(" link-group={first}")
            } else {
                String::new()
            };
            let (sha, _) = sha256_reader(fs::File::open(&p).unwrap());
            format!(
                "file size={} {sha} mtime={} nlink={}{link}",
                md.len(),
                md.mtime(),
                md.nlink()
            )
        } else if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_symlink() {
            format!("symlink -> {}", fs::read_link(&p).unwrap().display())
        } else if ft.is_char_device() || ft.is_block_device() {
            format!("dev rdev={}", md.rdev())
        } else if ft.is_fifo() {
            "fifo".to_string()
        } else {
            "socket".to_string()
        };
        out.insert(
            rel,
            format!(
                "{what} mode={:o} uid={} gid={} xattrs=[{}]",
                md.mode() & 0o7777,
                md.uid(),
                md.gid(),
                xattrs.join(",")
            ),
        );
    }
    out
}

fn xattr_list(p: &Path) -> Vec<String> {
    let mut buf = vec![0u8; 64 * 1024];
    match rustix::fs::llistxattr(p, &mut buf) {
        Ok(n) => buf[..n]
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn xattr_get(p: &Path, name: &str) -> Vec<u8> {
    let mut buf = vec![0u8; 64 * 1024];
    match rustix::fs::lgetxattr(p, name, &mut buf) {
        Ok(n) => buf[..n].to_vec(),
        Err(_) => Vec::new(),
    }
}

/// `podman export` of a container of `image` (loaded from `archive` into an
/// isolated podman), extracted as root with owners, modes, devices, xattrs.
fn podman_export_tree(archive: &Path, image: &str) -> (tempfile::TempDir, IsolatedPodman) {
    let podman = IsolatedPodman::new();
    podman.ok(["load", "-i"]
        .iter()
        .map(|s| s.to_string())
        .chain([archive.display().to_string()]));
    let cid = stdout(&podman.ok(["create", image, "/bin/true"]))
        .trim()
        .to_string();
    let dir = tempdir("unistore-it-export-");
    let tarf = dir.path().join("export.tar");
    podman.ok([
        "export".to_string(),
        "-o".into(),
        tarf.display().to_string(),
        cid.clone(),
    ]);
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    run_ok(
        Command::new("tar")
            .args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf"])
            .arg(&tarf)
            .arg("-C")
            .arg(&root),
    );
    podman.ok(["rm", &cid]);
    (dir, podman)
}

/// The per-image view of derived:1 and app:1 equals `podman export` of a
/// container of the same image, entry for entry.
#[test]
fn images_view_equals_podman_export() {
    require_root();
    require_tool("podman");
    let fx = fixtures();
    let store = TempStore::new();
    for key in ["FIXTURE_DERIVED_DOCKER_TAR", "FIXTURE_APP_DOCKER_TAR"] {
        store.import(&format!("docker-archive:{}", fx.get(key)));
    }
    let m = Mounted::new(&store, &["--view", "images"]);
    assert!(
        !m.path().join("containers-storage").exists(),
        "--view images shows only images/"
    );
    for (key, image) in [
        (
            "FIXTURE_DERIVED_DOCKER_TAR",
            fx.get("FIXTURE_DERIVED_IMAGE"),
        ),
        ("FIXTURE_APP_DOCKER_TAR", fx.get("FIXTURE_APP_IMAGE")),
    ] {
        let (export, _podman) = podman_export_tree(&fx.path(key), image);
        // podman create adds nothing to the rootfs of these images; a
        // container's /run/.containerenv only exists while it runs.
        let skip = |p: &str| p == "run/.containerenv";
        let want = rich_listing(&export.path().join("root"), &skip);
        let view_root = m.path().join("images").join(image);
        let got = rich_listing(&view_root, &skip);
        assert!(
            want.len() > 100,
            "export of {image} has only {} entries",
            want.len()
        );
        let diff = listing_diff(&want, &got);
        assert!(
            diff.is_empty(),
            "images/{image} differs from podman export:\n{diff}"
        );
        // by-id shows the same tree.
        let id = store.inspect(image)["Id"].as_str().unwrap().to_string();
        let by_id = rich_listing(&m.path().join("images/by-id").join(&id), &skip);
        assert_eq!(by_id, got, "images/by-id/{id} differs from images/{image}");
        // No overlay artefacts anywhere.
        for (p, v) in &got {
            assert!(
                !p.rsplit('/').next().unwrap().starts_with(".wh."),
                "whiteout visible: {p}"
            );
            assert!(
                !v.contains("trusted.overlay"),
                "overlay xattr visible on {p}"
            );
        }
    }
}

/// `--view image:NAME` mounts one image's root filesystem alone.
#[test]
fn single_image_mount() {
    let fx = fixtures();
    let store = TempStore::new();
    store.import(&format!(
        "docker-archive:{}",
        fx.get("FIXTURE_APP_DOCKER_TAR")
    ));
    let image = fx.get("FIXTURE_APP_IMAGE");
    let all = Mounted::new(&store, &["--view", "images"]);
    let one = Mounted::new(&store, &["--view", &format!("image:{image}")]);
    let skip = |_: &str| false;
    assert_eq!(
        rich_listing(one.path(), &skip),
        rich_listing(&all.path().join("images").join(image), &skip)
    );
    // Unknown image: clear error, nothing mounted.
    let dir = tempdir("unistore-it-mnt-");
    let out = store.run([
        "mount".to_string(),
        dir.path().display().to_string(),
        "--view".into(),
        "image:nope:1".into(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
    assert!(!is_mount_point(dir.path()));
}

/// `mount -t fuse.unistore STORE MNT -o ...` through the FUSE type helper,
/// and `umount MNT` stops the daemon; unknown options are refused.
#[test]
fn mount_type_helper() {
    require_root();
    let fx = fixtures();
    let store = TempStore::new();
    store.import(&format!("oci:{}", fx.get("FIXTURE_BASE_OCI_DIR")));
    let helper = Path::new("/usr/sbin/mount.fuse.unistore");
    let installed_here = !helper.exists();
    if installed_here {
        std::os::unix::fs::symlink(unistore_bin(), helper)
            .expect("installing /usr/sbin/mount.fuse.unistore");
    }
    let dir = tempdir("unistore-it-mnt-");
    let out = run(Command::new("mount")
        .args(["-t", "fuse.unistore"])
        .arg(store.path())
        .arg(dir.path())
        .args([
            "-o",
            "ro,allow_other,view=containers-storage,passthrough=auto",
        ]));
    let mounted = is_mount_point(dir.path());
    let listing = fs::read_dir(dir.path()).map(|r| r.count()).unwrap_or(0);
    let has_cs = dir
        .path()
        .join("containers-storage/overlay-images/images.json")
        .is_file();
    let umount = run(Command::new("umount").arg(dir.path()));
    std::thread::sleep(Duration::from_millis(300));
    let daemon_left = run(Command::new("pgrep")
        .arg("-f")
        .arg(format!("mount {} --foreground", dir.path().display())));
    let bad = run(Command::new("mount")
        .args(["-t", "fuse.unistore"])
        .arg(store.path())
        .arg(dir.path())
        .args(["-o", "ro,frobnicate"]));
    if installed_here {
        let _ = fs::remove_file(helper);
    }
    assert!(
        out.status.success(),
        "mount -t fuse.unistore failed: {}",
        stderr(&out)
    );
    assert!(
        mounted && has_cs && listing == 1,
        "mounted={mounted} entries={listing} images.json={has_cs}"
    );
    assert!(umount.status.success(), "umount: {}", stderr(&umount));
    assert!(
        !daemon_left.status.success(),
        "daemon still running after umount: {}",
        stdout(&daemon_left)
    );
    assert!(!bad.status.success(), "unknown option accepted");
    assert!(stderr(&bad).contains("frobnicate"), "{}", stderr(&bad));
    assert!(!is_mount_point(dir.path()));
}

/// The daemon started as contrib/systemd/unistore.service starts it
/// (`--foreground`, Type=notify): READY=1 arrives once the mount answers,
/// SIGTERM unmounts and exits 0.
#[test]
fn service_readiness_and_sigterm() {
    require_root();
    let fx = fixtures();
    let store = TempStore::new();
    store.import(&format!("oci:{}", fx.get("FIXTURE_BASE_OCI_DIR")));
    let unit =
        fs::read_to_string(workspace_root().join("contrib/systemd/unistore.service")).unwrap();
    assert!(unit.contains("Type=notify") && unit.contains("mount /run/unistore --foreground"));
    let dir = tempdir("unistore-it-svc-");
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut child = store
        .cmd([
            "mount".to_string(),
            mnt.display().to_string(),
            "--foreground".into(),
        ])
        .env("NOTIFY_SOCKET", &sock_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = sock
        .recv(&mut buf)
        .expect("no READY=1 from the daemon within 30 s");
    assert_eq!(&buf[..n], b"READY=1");
    assert!(is_mount_point(&mnt), "READY=1 sent before the mount was up");
    assert!(mnt
        .join("containers-storage/overlay-layers/layers.json")
        .is_file());
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "daemon did not exit within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "daemon exit status after SIGTERM: {status}"
    );
    assert!(!is_mount_point(&mnt), "mount left behind after SIGTERM");
}

fn conf_cmd(conf: &Path, args: &[&str]) -> std::process::Output {
    run(Command::new(unistore_bin())
        .arg("conf")
        .args(args)
        .env("CONTAINERS_STORAGE_CONF", conf))
}

/// `conf install` edits the file podman reads, keeps everything else, is
/// idempotent; `conf remove` restores it byte for byte (or deletes a file it created).
#[test]
fn conf_install_show_remove() {
    let dir = tempdir("unistore-it-conf-");
    let conf = dir.path().join("storage.conf");
    let original = "# site settings, keep this comment\n[storage]\ndriver = \"overlay\"\n\n[storage.options]\n# pull options\npull_options = {enable_partial_images = \"false\"}\nadditionalimagestores = [\n  \"/srv/other-store\", # theirs\n]\n\n[storage.options.overlay]\nmountopt = \"nodev,metacopy=on\"\n";
    fs::write(&conf, original).unwrap();
    let mnt = "/run/unistore-test";
    let view = format!("{mnt}/containers-storage");
    let out = conf_cmd(&conf, &["install", "--mount", mnt]);
    assert!(out.status.success(), "{}", stderr(&out));
    let after = fs::read_to_string(&conf).unwrap();
    assert!(after.contains(&view), "{after}");
    assert!(
        after.contains("/srv/other-store")
            && after.contains("# site settings")
            && after.contains("metacopy=on"),
        "{after}"
    );
    assert!(conf_cmd(&conf, &["install", "--mount", mnt])
        .status
        .success());
    assert_eq!(
        fs::read_to_string(&conf).unwrap(),
        after,
        "second install changed the file"
    );
    let show = conf_cmd(&conf, &["show", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let stores: Vec<&str> = v["AdditionalImageStores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(stores, vec!["/srv/other-store", view.as_str()]);
    assert!(conf_cmd(&conf, &["remove", "--mount", mnt])
        .status
        .success());
    assert_eq!(
        fs::read_to_string(&conf).unwrap(),
        original,
        "remove did not restore the file exactly"
    );
    // No file at all: install creates a complete one, remove deletes it.
    let none = dir.path().join("absent.conf");
    assert!(conf_cmd(&none, &["install", "--mount", mnt])
        .status
        .success());
    assert!(fs::read_to_string(&none)
        .unwrap()
        .contains("driver = \"overlay\""));
    assert!(conf_cmd(&none, &["remove", "--mount", mnt])
        .status
        .success());
    assert!(!none.exists(), "remove left a file it had created");
    assert!(
        fs::read_dir(dir.path()).unwrap().count() == 1,
        "backup files left behind"
    );
}

/// After `conf install` and a mount, plain `podman images` (no flags, the
/// host's real configuration) lists the store's images read-only, and plain
/// `podman run` works; `conf remove` restores the host exactly.
#[test]
fn plain_podman_finds_the_store() {
    require_root();
    require_tool("podman");
    let fx = fixtures();
    let store = TempStore::new();
    store.import(&format!(
        "docker-archive:{}",
        fx.get("FIXTURE_APP_DOCKER_TAR")
    ));
    let m = Mounted::new(&store, &["--view", "containers-storage"]);
    let etc = PathBuf::from("/etc/containers/storage.conf");
    let before = fs::read(&etc).ok();
    let mnt = m.path().display().to_string();
    let inst = run(Command::new(unistore_bin())
        .args(["conf", "install", "--mount", &mnt])
        .env_remove("CONTAINERS_STORAGE_CONF"));
    let images = run(Command::new("podman")
        .args([
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ReadOnly}}",
        ])
        .env_remove("CONTAINERS_STORAGE_CONF"));
    let run_out = run(Command::new("podman")
        .args([
            "run",
            "--rm",
            "--pull",
            "never",
            "--runtime",
            "runc",
            "--network",
            "none",
            "--ulimit",
            "nofile=20000:20000",
            "--ulimit",
            "nproc=1000:1000",
        ])
        .arg(fx.get("FIXTURE_APP_IMAGE"))
        .args(["sh", "-c", "echo from-unistore"])
        .env_remove("CONTAINERS_STORAGE_CONF"));
    let rm = run(Command::new(unistore_bin())
        .args(["conf", "remove", "--mount", &mnt])
        .env_remove("CONTAINERS_STORAGE_CONF"));
    let after = fs::read(&etc).ok();
    unmount_below(Path::new("/var/lib/containers/storage/overlay"));
    assert!(inst.status.success(), "{}", stderr(&inst));
    assert!(
        stdout(&images).contains(&format!("{} true", fx.get("FIXTURE_APP_IMAGE"))),
        "plain podman images did not list the store's image read-only:\n{}{}",
        stdout(&images),
        stderr(&images)
    );
    assert!(
        stdout(&run_out).contains("from-unistore"),
        "plain podman run failed: {}",
        stderr(&run_out)
    );
    assert!(rm.status.success(), "{}", stderr(&rm));
    assert_eq!(
        before, after,
        "conf remove did not restore /etc/containers/storage.conf exactly"
    );
}
