//! A real registry for the pull tests: Debian's `docker-registry` (the CNCF
//! distribution registry) on a loopback port, serving the storage that
//! `tests/registry/build-registry-fixtures.sh` fills (cached), and a
//! byte-counting TCP proxy in front of it that can throttle and can cut every
//! connection after N bytes ("the registry dies mid-pull").
//!
//! Everything listens on 127.0.0.1 only. Processes are stopped by the PID this
//! module started; temporary directories are removed on drop.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::*;

// ---------------------------------------------------------------------------
// Fixtures

/// The variables of `registry.env` (REG_*), written by
/// `tests/registry/build-registry-fixtures.sh`.
#[derive(Debug)]
pub struct RegFixtures {
    vars: BTreeMap<String, String>,
}

impl RegFixtures {
    /// A variable; panics with the list of known ones if absent.
    pub fn get(&self, key: &str) -> &str {
        match self.vars.get(key) {
            Some(v) => v,
            None => panic!(
                "registry.env has no {key}; it has: {:?}",
                self.vars.keys().collect::<Vec<_>>()
            ),
        }
    }

    /// A variable as a path.
    pub fn path(&self, key: &str) -> PathBuf {
        PathBuf::from(self.get(key))
    }

    /// Manifest digest of `repo:tag` as pushed (`fixture/app:gzip`).
    pub fn digest(&self, repo_tag: &str) -> &str {
        let key: String = format!("REG_DIGEST_{}", repo_tag.replacen(':', "__", 1))
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        self.get(&key)
    }

    /// The bytes of a blob in the storage of the open registry.
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let p = blob_data_path(&self.path("REG_OPEN_DIR"), digest);
        fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// The manifest of `repo:tag` as JSON.
    pub fn manifest(&self, repo_tag: &str) -> serde_json::Value {
        serde_json::from_slice(&self.blob(self.digest(repo_tag))).expect("manifest JSON")
    }
}

/// `STORAGE/docker/registry/v2/blobs/sha256/xx/<hex>/data`.
pub fn blob_data_path(storage: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

/// Build (or confirm up to date) the registry fixtures, once per test process.
/// Needs root, podman, skopeo, docker-registry, htpasswd; fails without them.
pub fn registry_fixtures() -> &'static RegFixtures {
    static FIX: OnceLock<RegFixtures> = OnceLock::new();
    FIX.get_or_init(|| {
        fixtures();
        for t in [
            "docker-registry",
            "htpasswd",
            "skopeo",
            "podman",
            "unshare",
            "python3",
        ] {
            require_tool(t);
        }
        let script = workspace_root().join("tests/registry/build-registry-fixtures.sh");
        let out = run(Command::new("bash").arg(&script));
        assert!(
            out.status.success(),
            "{} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            script.display(),
            out.status,
            stdout(&out),
            stderr(&out)
        );
        // The script's last line names the directory of this version's fixtures.
        let dir = stdout(&out)
            .lines()
            .filter_map(|l| l.strip_prefix("REGISTRY_FIXTURES_DIR="))
            .next_back()
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!(
                    "{} printed no REGISTRY_FIXTURES_DIR=: {}",
                    script.display(),
                    stdout(&out)
                )
            });
        let env_file = dir.join("registry.env");
        let out = run(Command::new("bash")
            .arg("-c")
            .arg(r#"set -e; . "$1"; for v in ${!REG_@}; do printf '%s=%s\0' "$v" "${!v}"; done"#)
            .arg("bash")
            .arg(&env_file));
        assert!(
            out.status.success(),
            "sourcing {} failed: {}",
            env_file.display(),
            stderr(&out)
        );
        let mut vars = BTreeMap::new();
        for rec in out.stdout.split(|&b| b == 0).filter(|r| !r.is_empty()) {
            let rec = String::from_utf8(rec.to_vec()).expect("registry.env is UTF-8");
            let (k, v) = rec.split_once('=').expect("NAME=VALUE");
            vars.insert(k.to_string(), v.to_string());
        }
        RegFixtures { vars }
    })
}

// ---------------------------------------------------------------------------
// The registry process

/// A free TCP port on 127.0.0.1 (released again; the registry binds it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

/// The status code of `GET PATH` on 127.0.0.1:PORT, if it answers.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split(' ').nth(1)?.parse().ok()
}

/// A running `docker-registry serve` on 127.0.0.1. Drop stops it (SIGTERM,
/// then SIGKILL, by its PID) and removes its temporary directory (and the
/// private storage copy, if any).
#[derive(Debug)]
pub struct Registry {
    child: Option<Child>,
    port: u16,
    storage: PathBuf,
    dir: tempfile::TempDir,
    copy: Option<tempfile::TempDir>,
}

impl Registry {
    /// Serve `storage` (read-only when `readonly`), with basic auth against
    /// `htpasswd` if given.
    pub fn start(storage: &Path, htpasswd: Option<&Path>, readonly: bool) -> Registry {
        require_tool("docker-registry");
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let dir = tempdir("unistore-it-registry-");
            let port = free_port();
            let mut conf = format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
                 delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n    \
                 readonly:\n      enabled: {readonly}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.display()
            );
            if let Some(h) = htpasswd {
                conf += &format!(
                    "auth:\n  htpasswd:\n    realm: unistore-test\n    path: {}\n",
                    h.display()
                );
            }
            let cfg = dir.path().join("config.yml");
            fs::write(&cfg, conf).expect("writing config.yml");
            let log = fs::File::create(dir.path().join("registry.log")).expect("log file");
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log)
                .spawn()
                .expect("starting docker-registry");
            let mut r = Registry {
                child: Some(child),
                port,
                storage: storage.to_path_buf(),
                dir,
                copy: None,
            };
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(15) {
                if let Some(Ok(Some(_))) = r.child.as_mut().map(|c| c.try_wait()) {
                    break; // exited (port taken?): retry with another port
                }
                if matches!(http_status(port, "/v2/"), Some(200) | Some(401)) {
                    return r;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            last_log = r.log();
            r.stop();
        }
        panic!("docker-registry did not start on 127.0.0.1 (5 attempts); last log:\n{last_log}");
    }

    /// The fixture registry without auth, read-only, on the shared cached storage.
    pub fn open() -> Registry {
        Registry::start(&registry_fixtures().path("REG_OPEN_DIR"), None, true)
    }

    /// The fixture registry with basic auth (htpasswd), read-only.
    pub fn auth() -> Registry {
        let f = registry_fixtures();
        Registry::start(&f.path("REG_AUTH_DIR"), Some(&f.path("REG_HTPASSWD")), true)
    }

    /// A registry on a private copy of the open storage (hard links: modify
    /// files only by replacing them, see [`Registry::replace_blob`]).
    pub fn open_private_copy() -> Registry {
        let src = registry_fixtures().path("REG_OPEN_DIR");
        let copy = tempdir("unistore-it-regcopy-");
        let dst = copy.path().join("storage");
        run_ok(Command::new("cp").arg("-al").arg(&src).arg(&dst));
        let mut r = Registry::start(&dst, None, false);
        r.copy = Some(copy);
        r
    }

    /// Replace the stored bytes of a blob (a new file: the storage may be hard-linked).
    pub fn replace_blob(&self, digest: &str, data: &[u8]) {
        let p = blob_data_path(&self.storage, digest);
        assert!(
            p.is_file(),
            "{} is not a blob of this registry",
            p.display()
        );
        let tmp = p.with_extension("tampered");
        fs::write(&tmp, data).expect("writing tampered blob");
        fs::rename(&tmp, &p).expect("replacing blob");
    }

    /// The bytes of a blob of this registry.
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let p = blob_data_path(&self.storage, digest);
        fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// SIGKILL the registry now ("the registry dies").
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then SIGKILL after 5 s.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Some(pid) = rustix::process::Pid::from_raw(c.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------
// The byte-counting proxy

/// One HTTP request the proxy forwarded, and the bytes of its response.
#[derive(Debug, Clone)]
pub struct ProxyRequest {
    pub method: String,
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// Response bytes (headers and body) sent to the client.
    pub bytes: u64,
    pub conn: u64,
}

#[derive(Debug)]
struct ProxyState {
    upstream: SocketAddr,
    /// Bytes sent to clients (responses, headers included).
    sent: AtomicU64,
    /// Cut every connection once `sent` reaches this (u64::MAX: never).
    cut_at: AtomicU64,
    /// Down: new connections are closed at once, open ones were shut down.
    down: AtomicBool,
    /// Throttle: bytes per second to each client (0: unlimited).
    rate: AtomicU64,
    stop: AtomicBool,
    next_conn: AtomicU64,
    requests: Mutex<Vec<ProxyRequest>>,
    conns: Mutex<BTreeMap<u64, (TcpStream, TcpStream)>>,
}

impl ProxyState {
    fn cut_all(&self) {
        self.down.store(true, Ordering::SeqCst);
        for (a, b) in self.conns.lock().expect("conns").values() {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
    }
}

/// A TCP proxy on 127.0.0.1 in front of a registry that counts what it sends
/// to clients, in total and per request, can throttle, and can cut all
/// connections after N bytes. Drop stops it and closes every connection.
#[derive(Debug)]
pub struct Proxy {
    port: u16,
    st: Arc<ProxyState>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// A proxy in front of `registry`.
    pub fn new(registry: &Registry) -> Proxy {
        Proxy::to(registry.port())
    }

    /// A proxy in front of 127.0.0.1:`port`.
    pub fn to(port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let my_port = listener.local_addr().expect("addr").port();
        let st = Arc::new(ProxyState {
            upstream: SocketAddr::from(([127, 0, 0, 1], port)),
            sent: AtomicU64::new(0),
            cut_at: AtomicU64::new(u64::MAX),
            down: AtomicBool::new(false),
            rate: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            next_conn: AtomicU64::new(0),
            requests: Mutex::new(Vec::new()),
            conns: Mutex::new(BTreeMap::new()),
        });
        let st2 = st.clone();
        let accept = std::thread::spawn(move || {
            for c in listener.incoming() {
                if st2.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = c else { continue };
                if st2.down.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let st3 = st2.clone();
                std::thread::spawn(move || serve_conn(st3, client));
            }
        });
        Proxy {
            port: my_port,
            st,
            accept: Some(accept),
        }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Bytes sent to clients since the last [`Proxy::reset`].
    pub fn bytes(&self) -> u64 {
        self.st.sent.load(Ordering::SeqCst)
    }

    /// Requests since the last reset.
    pub fn requests(&self) -> Vec<ProxyRequest> {
        self.st.requests.lock().expect("requests").clone()
    }

    /// Response bytes of requests whose path contains `needle`.
    pub fn bytes_for(&self, needle: &str) -> u64 {
        self.requests()
            .iter()
            .filter(|r| r.path.contains(needle))
            .map(|r| r.bytes)
            .sum()
    }

    /// A readable summary of the requests (for assertion messages).
    pub fn summary(&self) -> String {
        let mut s = format!("proxy sent {} bytes in all:\n", self.bytes());
        for r in self.requests() {
            s += &format!(
                "  #{} {} {}{} -> {} bytes\n",
                r.conn,
                r.method,
                r.path,
                r.range
                    .as_ref()
                    .map(|x| format!(" [Range: {}]", if x.len() > 80 { &x[..80] } else { x }))
                    .unwrap_or_default(),
                r.bytes
            );
        }
        s
    }

    /// Zero the counters and the request log (connections stay open).
    pub fn reset(&self) {
        let mut reqs = self.st.requests.lock().expect("requests");
        reqs.clear();
        self.st.sent.store(0, Ordering::SeqCst);
    }

    /// Cut every connection once `n` more bytes have been sent; later
    /// connections are closed at once until [`Proxy::revive`].
    pub fn cut_after(&self, n: u64) {
        let at = self.bytes().saturating_add(n);
        self.st.cut_at.store(at, Ordering::SeqCst);
    }

    /// Whether the proxy has cut the connections.
    pub fn is_down(&self) -> bool {
        self.st.down.load(Ordering::SeqCst)
    }

    /// Accept and forward connections again; no cut pending.
    pub fn revive(&self) {
        self.st.cut_at.store(u64::MAX, Ordering::SeqCst);
        self.st.down.store(false, Ordering::SeqCst);
    }

    /// Limit each connection to `bytes_per_sec` (0: unlimited).
    pub fn throttle(&self, bytes_per_sec: u64) {
        self.st.rate.store(bytes_per_sec, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.st.stop.store(true, Ordering::SeqCst);
        self.st.cut_all();
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake accept()
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Forward one client connection to the upstream, counting and logging.
fn serve_conn(st: Arc<ProxyState>, client: TcpStream) {
    let id = st.next_conn.fetch_add(1, Ordering::SeqCst);
    let Ok(upstream) = TcpStream::connect_timeout(&st.upstream, Duration::from_secs(5)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    st.conns
        .lock()
        .expect("conns")
        .insert(id, (c2, u2.try_clone().expect("dup")));
    // The index (in st.requests) of the request whose response is flowing.
    let current: Arc<Mutex<Option<usize>>> = Arc::new(Mutex::new(None));

    // client -> upstream: parse request heads (pull requests have no bodies).
    let up_st = st.clone();
    let up_cur = current.clone();
    let (mut c_read, mut u_write) = (client.try_clone().expect("dup"), u2);
    let up = std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 << 10];
        let mut head = Vec::<u8>::new();
        loop {
            let n = match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            head.extend_from_slice(&buf[..n]);
            while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&head[..end]).into_owned();
                head.drain(..end + 4);
                let mut lines = text.lines();
                let first: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
                let range = lines
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("range"))
                    .map(|(_, v)| v.trim().to_string());
                let mut reqs = up_st.requests.lock().expect("requests");
                reqs.push(ProxyRequest {
                    method: first.first().unwrap_or(&"").to_string(),
                    path: first.get(1).unwrap_or(&"").to_string(),
                    range,
                    bytes: 0,
                    conn: id,
                });
                *up_cur.lock().expect("current") = Some(reqs.len() - 1);
            }
            if u_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = u_write.shutdown(Shutdown::Write);
    });

    // upstream -> client: count, throttle, cut.
    let (mut u_read, mut c_write) = (upstream, client);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        if st.down.load(Ordering::SeqCst) {
            break;
        }
        let rate = st.rate.load(Ordering::SeqCst);
        let chunk = if rate > 0 {
            buf.len().min((rate / 20).max(1024) as usize)
        } else {
            buf.len()
        };
        let n = match u_read.read(&mut buf[..chunk]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let cut_at = st.cut_at.load(Ordering::SeqCst);
        let before = st.sent.fetch_add(n as u64, Ordering::SeqCst);
        let allowed = if cut_at == u64::MAX {
            n
        } else {
            (cut_at.saturating_sub(before) as usize).min(n)
        };
        if allowed < n {
            // Give back what is not sent.
            st.sent.fetch_sub((n - allowed) as u64, Ordering::SeqCst);
        }
        {
            let mut reqs = st.requests.lock().expect("requests");
            if let Some(i) = *current.lock().expect("current") {
                if let Some(r) = reqs.get_mut(i) {
                    r.bytes += allowed as u64;
                }
            }
        }
        if allowed > 0 && c_write.write_all(&buf[..allowed]).is_err() {
            break;
        }
        if allowed < n {
            st.cut_all();
            break;
        }
        if rate > 0 {
            std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
        }
    }
    let _ = c_write.shutdown(Shutdown::Both);
    let _ = u_read.shutdown(Shutdown::Both);
    let _ = up.join();
    st.conns.lock().expect("conns").remove(&id);
}
