//! `unistore pull docker://…`: resolve, download what the store lacks,
//! import through the store's importer.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, SeekFrom};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol, SizedStream};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use unistore_store::chunked::{reassemble, ContentMap, PlanOptions, Toc, TocLocation};
use unistore_store::import::{import_from, ImportOptions, ImportReport};
use unistore_store::progress::NoProgress;
use unistore_store::records::layer_meta_id;
use unistore_store::source::{Descriptor, ImageSource, LayerStream, MAX_JSON};
use unistore_store::Store;

use crate::auth::{self, Credentials};
use crate::conf::{Endpoint, RegistriesConf};
use crate::RegistryError;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const ACCEPT: &[&str] = &[OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST];

/// Blob downloads running at once.
const PARALLEL_DOWNLOADS: usize = 3;
/// Range requests of one zstd:chunked layer in flight at once.
const RANGES_IN_FLIGHT: usize = 8;
/// A stored file is reused, rather than fetched with its neighbours, when its
/// compressed bytes are at least this many: below, the range request it adds
/// (headers both ways, a round trip) costs about what it saves.
const REUSE_MIN_COMPRESSED: u64 = 1024;

/// Options of one pull.
#[derive(Debug, Default, Clone)]
pub struct PullOptions {
    /// `OS/ARCH[/VARIANT]` to pick from a manifest list; the host's if `None`.
    pub platform: Option<String>,
    /// `Some(false)` allows plain HTTP and unverified TLS for every registry
    /// (podman's `--tls-verify=false`); `None` follows `registries.conf`.
    pub tls_verify: Option<bool>,
    /// `--authfile`.
    pub authfile: Option<PathBuf>,
    /// `--creds`.
    pub creds: Option<Credentials>,
    /// `registries.conf` to use instead of the system's.
    pub registries_conf: Option<PathBuf>,
    /// Names to give the image instead of the reference.
    pub names: Vec<String>,
}

/// How a layer reached the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The store already had it: nothing downloaded.
    Present,
    /// Downloaded whole.
    Full,
    /// zstd:chunked: only the ranges of files the store lacks were fetched.
    Partial,
    /// Continued from bytes an interrupted pull left (or reused a complete
    /// verified download).
    Resumed,
}

/// Per-layer outcome.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// Blob digest.
    #[serde(rename = "Digest")]
    pub digest: String,
    /// Blob size.
    #[serde(rename = "Size")]
    pub size: u64,
    /// Bytes received for it in this pull.
    #[serde(rename = "Downloaded")]
    pub downloaded: u64,
    /// How it reached the store.
    #[serde(rename = "Mode")]
    pub mode: Mode,
}

/// What a pull did.
#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    /// The import's report.
    #[serde(flatten)]
    pub import: ImportReport,
    /// Where the manifest came from (after mirrors and rewrites).
    #[serde(rename = "Source")]
    pub source: String,
    /// HTTP body bytes received (manifests, config, blobs, ranges).
    #[serde(rename = "BytesDownloaded")]
    pub bytes_downloaded: u64,
    /// Manifest + config + layer blob sizes: what a full download costs.
    #[serde(rename = "BytesImage")]
    pub bytes_image: u64,
    /// One entry per layer, base first.
    #[serde(rename = "LayerReports")]
    pub layer_reports: Vec<LayerReport>,
}

/// Progress of a pull, for bars or a JSON stream. Sent from download
/// threads too, so the sink is `Send + Sync`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// The manifest is known.
    Resolved {
        /// Where from.
        source: String,
        /// Manifest digest.
        digest: String,
        /// Number of layers.
        layers: usize,
        /// Bytes of a full download.
        bytes_image: u64,
    },
    /// A layer starts (download or reuse).
    LayerStart {
        /// Layer number, base first.
        index: usize,
        /// Blob digest.
        digest: String,
        /// Blob size.
        size: u64,
        /// How it will reach the store.
        mode: Mode,
    },
    /// Bytes of a layer received so far (including resumed bytes).
    LayerProgress {
        /// Layer number.
        index: usize,
        /// Bytes present of `total`.
        bytes: u64,
        /// Blob size.
        total: u64,
    },
    /// The layer is in the store.
    LayerDone {
        /// Layer number.
        index: usize,
        /// Bytes received for it.
        downloaded: u64,
        /// How it reached the store.
        mode: Mode,
    },
}

/// Receives [`Event`]s.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// Pull `reference` (`docker://HOST/REPO[:TAG|@DIGEST]`, the `docker://`
/// optional) into `store`.
pub fn pull(
    store: &Store,
    reference: &str,
    opts: &PullOptions,
    events: EventSink,
) -> anyhow::Result<PullReport> {
    let started = Instant::now();
    let raw = reference.strip_prefix("docker://").unwrap_or(reference);
    let conf = RegistriesConf::load(opts.registries_conf.as_deref())?;
    let candidates = qualify(raw, &conf)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let auth_files = auth::auth_files(opts.authfile.as_deref());

    let mut last_err: Option<anyhow::Error> = None;
    let mut remote = None;
    'outer: for (name, suffix) in &candidates {
        for ep in conf.endpoints(name, suffix)? {
            match rt.block_on(Remote::connect(&ep, name, suffix, opts, &auth_files)) {
                Ok(r) => {
                    remote = Some(r);
                    break 'outer;
                }
                Err(e) => {
                    tracing::info!("{}: {e:#}", ep.reference);
                    // A mirror or a search registry that fails is skipped;
                    // the last error is reported if nothing works.
                    last_err = Some(e);
                }
            }
        }
    }
    let remote = match (remote, last_err) {
        (Some(r), _) => r,
        (None, Some(e)) => return Err(e),
        (None, None) => return Err(RegistryError::ShortName(raw.to_string()).into()),
    };
    let remote = Arc::new(remote);

    let head = rt.block_on(remote.resolve(opts.platform.as_deref()))?;
    let bytes_image = head.manifest.len() as u64
        + head.config_desc.size
        + head.layers.iter().map(|l| l.size).sum::<u64>();
    events(&Event::Resolved {
        source: remote.shown.clone(),
        digest: head.digest.clone(),
        layers: head.layers.len(),
        bytes_image,
    });
    let config = rt.block_on(remote.fetch_small(&head.config_desc))?;
    let cfg: serde_json::Value = serde_json::from_slice(&config).map_err(|e| {
        RegistryError::Unsupported(remote.shown.clone(), format!("config is not JSON: {e}"))
    })?;
    let diff_ids = unistore_store::import::config_diff_ids(&remote.shown, &cfg)?;

    // Which layers the store lacks; start their downloads now (in parallel,
    // while earlier layers import).
    let dir = store.root().join("tmp/pull");
    fs::create_dir_all(&dir)?;
    let sem = Arc::new(Semaphore::new(PARALLEL_DOWNLOADS));
    let mut downloads = HashMap::new();
    let mut chunked = HashMap::new();
    let store_has_files = !store.catalog()?.images.is_empty();
    let mut reports = Vec::new();
    for (i, desc) in head.layers.iter().enumerate() {
        let present = match diff_ids.get(i) {
            Some(d) => {
                let hex = d.trim_start_matches("sha256:");
                store.repo().has_stream(&layer_meta_id(hex))?.is_some()
            }
            None => false,
        };
        let mut report = LayerReport {
            digest: desc.digest.clone(),
            size: desc.size,
            downloaded: 0,
            mode: Mode::Present,
        };
        let toc = match &desc.annotations {
            Some(a) if !present => TocLocation::from_annotations(a)?,
            _ => None,
        };
        if present {
            events(&Event::LayerStart {
                index: i,
                digest: desc.digest.clone(),
                size: desc.size,
                mode: Mode::Present,
            });
        } else if let (Some(toc), true) = (toc, store_has_files) {
            // zstd:chunked and the store may hold some of its files: planned
            // when the importer reaches it (see RegistrySource::layer).
            chunked.insert(i, toc);
            report.mode = Mode::Partial;
        } else {
            let task = Download {
                remote: remote.clone(),
                desc: desc.clone(),
                index: i,
                dir: dir.clone(),
                events: events.clone(),
                sem: sem.clone(),
            };
            downloads.insert(i, rt.spawn(task.run()));
            report.mode = Mode::Full;
        }
        reports.push(report);
    }

    let mut source = RegistrySource {
        rt: &rt,
        remote: remote.clone(),
        manifest: head.manifest.clone(),
        config,
        names: if opts.names.is_empty() {
            remote.names.clone()
        } else {
            Vec::new()
        },
        downloads,
        finished: Vec::new(),
        reports: &mut reports,
        dir,
        events: events.clone(),
        sem,
        store,
        chunked,
        content: None,
    };
    let import_opts = ImportOptions {
        names: opts.names.clone(),
    };
    let result = import_from(store, &mut source, &import_opts, &mut NoProgress, started);
    let finished = std::mem::take(&mut source.finished);
    let pending: Vec<JoinHandle<_>> = source.downloads.drain().map(|(_, h)| h).collect();
    drop(source);
    for h in pending {
        h.abort();
    }
    let import = result?;
    // The downloads are in the store now; their scratch files go.
    for f in finished {
        let _ = fs::remove_file(f);
    }
    for (i, r) in reports.iter().enumerate() {
        events(&Event::LayerDone {
            index: i,
            downloaded: r.downloaded,
            mode: r.mode,
        });
    }
    Ok(PullReport {
        import,
        source: remote.shown.clone(),
        bytes_downloaded: remote.received.load(Ordering::Relaxed),
        bytes_image,
        layer_reports: reports,
    })
}

/// Fully qualified `(name, suffix)` candidates for `raw`: the name itself if
/// it has a registry, else its alias, else one per unqualified-search registry.
fn qualify(raw: &str, conf: &RegistriesConf) -> Result<Vec<(String, String)>, RegistryError> {
    let bad = |m: &str| RegistryError::BadReference(raw.to_string(), m.to_string());
    if raw.is_empty() {
        return Err(bad("empty"));
    }
    let (name, suffix) = split_suffix(raw);
    if name.is_empty() || name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err(bad("expected HOST/REPO[:TAG|@DIGEST]"));
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(bad("repository names must be lowercase"));
    }
    let first = name.split('/').next().unwrap_or("");
    let qualified =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let suffix = if suffix.is_empty() {
        ":latest".to_string()
    } else {
        suffix.to_string()
    };
    if qualified {
        return Ok(vec![(name.to_string(), suffix)]);
    }
    if let Some(target) = conf.aliases.get(name) {
        let (t, tsuffix) = split_suffix(target);
        let s = if suffix == ":latest" && !tsuffix.is_empty() {
            tsuffix.to_string()
        } else {
            suffix
        };
        return Ok(vec![(t.to_string(), s)]);
    }
    if conf.unqualified_search_registries.is_empty() {
        return Err(RegistryError::ShortName(raw.to_string()));
    }
    Ok(conf
        .unqualified_search_registries
        .iter()
        .map(|r| {
            let n = if r == "docker.io" && !name.contains('/') {
                format!("docker.io/library/{name}")
            } else {
                format!("{r}/{name}")
            };
            (n, suffix.clone())
        })
        .collect())
}

/// `host/repo:tag@digest` → (`host/repo`, `:tag` / `@digest`).
fn split_suffix(s: &str) -> (&str, &str) {
    if let Some(i) = s.find('@') {
        // A tag before the digest is ignored, as c/image does for pulls.
        let name = &s[..i];
        let name = match name.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => n,
            _ => name,
        };
        return (name, &s[i..]);
    }
    match s.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') && !n.is_empty() => (n, &s[n.len()..]),
        _ => (s, ""),
    }
}

/// Map an oci-client error to a [`RegistryError`] naming `what`.
fn classify(what: &str, e: OciDistributionError) -> RegistryError {
    use OciDistributionError as E;
    let text = e.to_string();
    match &e {
        E::AuthenticationFailure(_) | E::UnauthorizedError { .. } => {
            RegistryError::Auth(format!("{what}: {text} (check --creds / --authfile)"))
        }
        E::ImageManifestNotFoundError(_) => RegistryError::NotFound(what.to_string()),
        E::RegistryError { envelope, .. } => {
            let codes: Vec<String> = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}", e.code))
                .collect();
            let joined = codes.join(",");
            if joined.contains("Unknown") || joined.contains("NotFound") {
                RegistryError::NotFound(what.to_string())
            } else if joined.contains("Unauthorized") || joined.contains("Denied") {
                RegistryError::Auth(format!("{what}: {text}"))
            } else {
                RegistryError::Transport(what.to_string(), text)
            }
        }
        E::ServerError { code: 404, .. } => RegistryError::NotFound(what.to_string()),
        E::ServerError {
            code: 401 | 403, ..
        } => RegistryError::Auth(format!("{what}: {text}")),
        // oci-client's own check (body vs Docker-Content-Digest header or
        // the digest asked for); its message carries both digests.
        E::DigestError(d) => {
            RegistryError::Transport(what.to_string(), format!("digest mismatch: {d}"))
        }
        _ => RegistryError::Transport(what.to_string(), format!("{text}{}", source_chain(&e))),
    }
}

/// The causes of `e` not already in its message, `: `-joined, plus a hint
/// for the common mistake of HTTPS against a plain-HTTP registry.
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut seen = e.to_string();
    let mut out = String::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !seen.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
            seen.push_str(&t);
        }
        cur = s.source();
    }
    if seen.contains("wrong version number") {
        out.push_str(" (a plain-HTTP registry? use --tls-verify=false or `insecure = true` in registries.conf)");
    }
    out
}

/// A registry endpoint we talk to.
struct Remote {
    client: Client,
    reference: Reference,
    auth: RegistryAuth,
    /// For messages: `docker://HOST/REPO:TAG`.
    shown: String,
    /// Names the image gets (the user's reference, not a mirror's).
    names: Vec<String>,
    received: AtomicU64,
}

/// The manifest the pull resolved to.
struct Head {
    manifest: Vec<u8>,
    digest: String,
    config_desc: Descriptor,
    layers: Vec<Descriptor>,
}

impl Remote {
    /// Find a working protocol for `ep` and fetch nothing yet but `/v2/`'s
    /// auth challenge (done lazily by oci-client on the first request).
    async fn connect(
        ep: &Endpoint,
        name: &str,
        suffix: &str,
        opts: &PullOptions,
        auth_files: &[PathBuf],
    ) -> anyhow::Result<Remote> {
        let reference = Reference::from_str(&ep.reference)
            .map_err(|e| RegistryError::BadReference(ep.reference.clone(), e.to_string()))?;
        let insecure = ep.insecure || opts.tls_verify == Some(false);
        let host = reference.registry().to_string();
        let creds = match &opts.creds {
            Some(c) => Some(c.clone()),
            None => auth::lookup(
                auth_files,
                &format!("{}/{}", reference.registry(), reference.repository()),
            )?,
        };
        let auth = match creds {
            Some(c) => RegistryAuth::Basic(c.username, c.password),
            None => RegistryAuth::Anonymous,
        };
        // The image is named after the user's reference, not a mirror's; a
        // pull by digest names nothing.
        let names = if suffix.starts_with('@') {
            Vec::new()
        } else {
            vec![format!("{name}{suffix}")]
        };
        // Secure: HTTPS only. Insecure: HTTPS without verification, then HTTP.
        let protocols: Vec<(ClientProtocol, bool)> = if insecure {
            vec![(ClientProtocol::Https, true), (ClientProtocol::Http, false)]
        } else {
            vec![(ClientProtocol::Https, false)]
        };
        let mut last = None;
        for (protocol, accept_invalid) in protocols {
            let scheme = if matches!(protocol, ClientProtocol::Http) {
                "http"
            } else {
                "https"
            };
            let client = Client::new(ClientConfig {
                protocol,
                accept_invalid_certificates: accept_invalid,
                accept_invalid_hostnames: accept_invalid,
                connect_timeout: Some(Duration::from_secs(30)),
                read_timeout: Some(Duration::from_secs(120)),
                user_agent: concat!("unistore/", env!("CARGO_PKG_VERSION")),
                platform_resolver: None,
                ..Default::default()
            });
            // Probe the endpoint: a connection-level failure tries the next
            // protocol, anything HTTP-level is the answer.
            match client.fetch_manifest_digest(&reference, &auth).await {
                Ok(_) => {
                    return Ok(Remote {
                        client,
                        reference,
                        auth,
                        shown: format!("docker://{}", ep.reference),
                        names,
                        received: AtomicU64::new(0),
                    })
                }
                Err(OciDistributionError::RequestError(e)) => {
                    last = Some(RegistryError::Transport(
                        format!("{scheme}://{host}"),
                        format!("{e}{}", source_chain(&e)),
                    ));
                }
                Err(e) => return Err(classify(&format!("docker://{}", ep.reference), e).into()),
            }
        }
        Err(last.expect("at least one protocol").into())
    }

    /// Fetch the manifest; pick the platform's entry of an index.
    async fn resolve(&self, platform: Option<&str>) -> anyhow::Result<Head> {
        let (bytes, digest) = self
            .client
            .pull_manifest_raw(&self.reference, &self.auth, ACCEPT)
            .await
            .map_err(|e| classify(&self.shown, e))?;
        self.count(bytes.len());
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            RegistryError::Unsupported(self.shown.clone(), format!("manifest is not JSON: {e}"))
        })?;
        let is_index = v.get("manifests").is_some();
        let (bytes, digest) = if is_index {
            let want = platform.map(str::to_string).unwrap_or_else(host_platform);
            let entry = pick_platform(&v, &want).ok_or_else(|| RegistryError::NoPlatform {
                reference: self.shown.clone(),
                platform: want.clone(),
                available: platforms(&v).join(", "),
            })?;
            let r = self.reference.clone_with_digest(entry.clone());
            let (b, d) = self
                .client
                .pull_manifest_raw(&r, &self.auth, ACCEPT)
                .await
                .map_err(|e| classify(&format!("{}@{entry}", self.shown), e))?;
            self.count(b.len());
            (b, d)
        } else {
            (bytes, digest)
        };
        // oci-client checked the body against the Docker-Content-Digest header
        // and a digest reference; check again here, independent of it.
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        if actual != digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("{}: manifest", self.shown),
                expected: digest,
                actual,
            }
            .into());
        }
        #[derive(serde::Deserialize)]
        struct M {
            #[serde(rename = "schemaVersion")]
            schema_version: u32,
            config: Option<Descriptor>,
            #[serde(default)]
            layers: Vec<Descriptor>,
        }
        let m: M = serde_json::from_slice(&bytes).map_err(|e| {
            RegistryError::Unsupported(self.shown.clone(), format!("manifest: {e}"))
        })?;
        if m.schema_version != 2 {
            return Err(RegistryError::Unsupported(
                self.shown.clone(),
                format!("schemaVersion {} (only schema 2 images)", m.schema_version),
            )
            .into());
        }
        let config_desc = m.config.ok_or_else(|| {
            RegistryError::Unsupported(self.shown.clone(), "manifest without config".into())
        })?;
        Ok(Head {
            manifest: bytes.to_vec(),
            digest,
            config_desc,
            layers: m.layers,
        })
    }

    /// One byte range of a blob, in memory; the registry must honour the
    /// range (a full response is an error: the blob may be large).
    async fn fetch_range(
        &self,
        desc: &OciDescriptor,
        range: std::ops::Range<u64>,
        what: &str,
    ) -> anyhow::Result<Vec<u8>> {
        let len = range.end - range.start;
        let resp = self
            .client
            .pull_blob_stream_partial(&self.reference, desc, range.start, Some(len))
            .await
            .map_err(|e| classify(what, e))?;
        let mut s = match resp {
            BlobResponse::Partial(s) => s,
            BlobResponse::Full(_) => {
                return Err(RegistryError::Transport(
                    what.to_string(),
                    "the registry ignored a Range request".into(),
                )
                .into())
            }
        };
        let mut out = Vec::with_capacity(len as usize);
        while let Some(chunk) = s.next().await {
            let chunk = chunk.map_err(|e| {
                RegistryError::Transport(what.to_string(), format!("range {range:?}: {e}"))
            })?;
            self.count(chunk.len());
            out.extend_from_slice(&chunk);
            if out.len() as u64 > len {
                break;
            }
        }
        if out.len() as u64 != len {
            return Err(RegistryError::Transport(
                what.to_string(),
                format!("range {range:?}: got {} of {len} bytes", out.len()),
            )
            .into());
        }
        Ok(out)
    }

    fn count(&self, n: usize) {
        self.received.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn oci_desc(desc: &Descriptor) -> OciDescriptor {
        OciDescriptor {
            media_type: desc.media_type.clone(),
            digest: desc.digest.clone(),
            size: desc.size as i64,
            ..Default::default()
        }
    }

    /// A small blob (config) into memory, verified.
    async fn fetch_small(&self, desc: &Descriptor) -> anyhow::Result<Vec<u8>> {
        let what = format!("{}: blob {}", self.shown, desc.digest);
        if desc.size > MAX_JSON {
            return Err(RegistryError::Unsupported(what, format!("{} bytes", desc.size)).into());
        }
        let mut s = self
            .client
            .pull_blob_stream(&self.reference, &Self::oci_desc(desc))
            .await
            .map_err(|e| classify(&what, e))?;
        let mut out = Vec::new();
        while let Some(chunk) = s.next().await {
            let chunk = chunk.map_err(|e| RegistryError::Transport(what.clone(), e.to_string()))?;
            self.count(chunk.len());
            out.extend_from_slice(&chunk);
            if out.len() as u64 > MAX_JSON {
                return Err(RegistryError::Unsupported(what, "too large".into()).into());
            }
        }
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&out)));
        if actual != desc.digest {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: desc.digest.clone(),
                actual,
            }
            .into());
        }
        Ok(out)
    }
}

fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("linux/{arch}")
}

fn platforms(index: &serde_json::Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| {
                    let p = m.get("platform")?;
                    let mut s = format!("{}/{}", p["os"].as_str()?, p["architecture"].as_str()?);
                    if let Some(v) = p.get("variant").and_then(|v| v.as_str()) {
                        s.push('/');
                        s.push_str(v);
                    }
                    Some(s)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The digest of the index entry for `want` (`os/arch[/variant]`).
fn pick_platform(index: &serde_json::Value, want: &str) -> Option<String> {
    let mut parts = want.split('/');
    let (os, arch, variant) = (parts.next()?, parts.next()?, parts.next());
    let entries = index["manifests"].as_array()?;
    let matches = |m: &&serde_json::Value, strict: bool| {
        let p = &m["platform"];
        p["os"].as_str() == Some(os)
            && p["architecture"].as_str() == Some(arch)
            && match (variant, p.get("variant").and_then(|v| v.as_str())) {
                (Some(w), Some(h)) => w == h,
                (Some(_), None) => !strict,
                (None, _) => true,
            }
    };
    entries
        .iter()
        .find(|m| matches(m, true))
        .or_else(|| entries.iter().find(|m| matches(m, false)))
        .and_then(|m| m["digest"].as_str().map(str::to_string))
}

/// One blob download into `dir`, resumable.
struct Download {
    remote: Arc<Remote>,
    desc: Descriptor,
    index: usize,
    dir: PathBuf,
    events: EventSink,
    sem: Arc<Semaphore>,
}

/// A finished download.
struct Downloaded {
    /// Open before anyone could remove it.
    file: File,
    path: PathBuf,
    received: u64,
    mode: Mode,
}

impl Download {
    async fn run(self) -> anyhow::Result<Downloaded> {
        let _permit = self.sem.acquire().await?;
        let hex = self.desc.digest.trim_start_matches("sha256:").to_string();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RegistryError::Unsupported(
                self.remote.shown.clone(),
                format!("layer digest `{}`", self.desc.digest),
            )
            .into());
        }
        let what = format!("{}: blob {}", self.remote.shown, self.desc.digest);
        let done = self.dir.join(format!("{hex}.blob"));
        let partial = self.dir.join(format!("{hex}.partial"));
        let size = self.desc.size;
        // One writer per blob: a second pull of the same blob waits here.
        let lock = lock_file(&partial).await?;
        if done.exists() {
            // A verified download an earlier (failed) pull left.
            let _ = fs::remove_file(&partial);
            self.events.as_ref()(&Event::LayerStart {
                index: self.index,
                digest: self.desc.digest.clone(),
                size,
                mode: Mode::Resumed,
            });
            return Ok(Downloaded {
                file: File::open(&done)?,
                path: done,
                received: 0,
                mode: Mode::Resumed,
            });
        }
        let mut have = fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        if have > size {
            have = 0;
        }
        let mode = if have > 0 { Mode::Resumed } else { Mode::Full };
        self.events.as_ref()(&Event::LayerStart {
            index: self.index,
            digest: self.desc.digest.clone(),
            size,
            mode,
        });
        let desc = Remote::oci_desc(&self.desc);
        let mut received = 0u64;
        if have < size {
            let stream: SizedStream = if have > 0 {
                match self
                    .remote
                    .client
                    .pull_blob_stream_partial(&self.remote.reference, &desc, have, None)
                    .await
                    .map_err(|e| classify(&what, e))?
                {
                    BlobResponse::Partial(s) => s,
                    BlobResponse::Full(s) => {
                        have = 0;
                        s
                    }
                }
            } else {
                self.remote
                    .client
                    .pull_blob_stream(&self.remote.reference, &desc)
                    .await
                    .map_err(|e| classify(&what, e))?
            };
            let mut file = tokio::fs::File::from_std(lock.try_clone()?);
            file.set_len(have).await?;
            file.seek(SeekFrom::Start(have)).await?;
            let mut stream = stream;
            let mut last = Instant::now();
            while let Some(chunk) = stream.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        file.flush().await?;
                        return Err(RegistryError::Transport(
                            what,
                            format!(
                                "download interrupted after {} of {size} bytes ({e}); run the pull again to resume",
                                have
                            ),
                        )
                        .into());
                    }
                };
                if have + chunk.len() as u64 > size {
                    drop(file);
                    let _ = fs::remove_file(&partial);
                    return Err(RegistryError::Transport(
                        what,
                        format!("size mismatch: the registry sent more than the {size} bytes the manifest says (corrupt or tampered blob)"),
                    )
                    .into());
                }
                file.write_all(&chunk).await?;
                have += chunk.len() as u64;
                received += chunk.len() as u64;
                self.remote.count(chunk.len());
                if last.elapsed() > Duration::from_millis(100) {
                    last = Instant::now();
                    self.events.as_ref()(&Event::LayerProgress {
                        index: self.index,
                        bytes: have,
                        total: size,
                    });
                }
            }
            file.flush().await?;
            file.sync_all().await?;
        }
        self.events.as_ref()(&Event::LayerProgress {
            index: self.index,
            bytes: have,
            total: size,
        });
        // Verify the whole file (resumed bytes included) before it counts.
        let p = partial.clone();
        let (actual, len) = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let mut f = File::open(&p)?;
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut n = 0u64;
            loop {
                let k = f.read(&mut buf)?;
                if k == 0 {
                    break;
                }
                h.update(&buf[..k]);
                n += k as u64;
            }
            Ok((format!("sha256:{}", hex::encode(h.finalize())), n))
        })
        .await??;
        if len != size || actual != self.desc.digest {
            let _ = fs::remove_file(&partial);
            if len != size {
                return Err(RegistryError::Transport(
                    what,
                    format!("size mismatch: blob ended after {len} of {size} bytes"),
                )
                .into());
            }
            return Err(RegistryError::DigestMismatch {
                what,
                expected: self.desc.digest.clone(),
                actual,
            }
            .into());
        }
        fs::rename(&partial, &done)?;
        drop(lock);
        Ok(Downloaded {
            file: File::open(&done)?,
            path: done,
            received,
            mode,
        })
    }
}

impl<'a> RegistrySource<'a> {
    /// Start downloading layer `index` whole (if it is not already).
    fn start_download(&mut self, index: usize, desc: &Descriptor) {
        if self.downloads.contains_key(&index) {
            return;
        }
        let task = Download {
            remote: self.remote.clone(),
            desc: desc.clone(),
            index,
            dir: self.dir.clone(),
            events: self.events.clone(),
            sem: self.sem.clone(),
        };
        self.downloads.insert(index, self.rt.spawn(task.run()));
        if let Some(r) = self.reports.get_mut(index) {
            r.mode = Mode::Full;
        }
    }

    /// zstd:chunked: fetch the TOC, plan which files the store has, fetch
    /// only the other ranges and rebuild the tar from both. `None` when
    /// nothing can be reused (the caller downloads the whole blob).
    fn partial(
        &mut self,
        index: usize,
        desc: &Descriptor,
        loc: &TocLocation,
    ) -> anyhow::Result<Option<LayerStream<'a>>> {
        let remote = self.remote.clone();
        let what = format!("{}: blob {}", remote.shown, desc.digest);
        let hex = desc.digest.trim_start_matches("sha256:").to_string();
        let odesc = Remote::oci_desc(desc);
        let toc_bytes = self
            .rt
            .block_on(remote.fetch_range(&odesc, loc.range(), &what))?;
        let toc = Toc::parse(&toc_bytes, loc)?;
        if self.content.is_none() {
            self.content = Some(ContentMap::build(self.store)?);
        }
        let map = self.content.as_mut().expect("built");
        let plan_opts = PlanOptions {
            merge_gap: REUSE_MIN_COMPRESSED,
        };
        let plan = toc.plan(desc.size, &plan_opts, |sha, size| map.find(sha, size))?;
        if let Err(e) = map.save() {
            tracing::warn!("content digest cache: {e:#}");
        }
        if plan.reused_files == 0 {
            tracing::info!("{what}: no file of this layer is stored; downloading it whole");
            self.start_download(index, desc);
            return Ok(None);
        }
        self.events.as_ref()(&Event::LayerStart {
            index,
            digest: desc.digest.clone(),
            size: desc.size,
            mode: Mode::Partial,
        });
        tracing::info!(
            "{what}: {} files ({} bytes) from the store, fetching {} of {} bytes",
            plan.reused_files,
            plan.reused_bytes,
            plan.fetch_bytes,
            desc.size
        );
        // The ranges, concatenated in order, into a scratch file.
        let path = self.dir.join(format!("{hex}.ranges"));
        let mut out = std::io::BufWriter::new(File::create(&path)?);
        let mut got = loc.length;
        let ranges: Vec<_> = plan.fetch_ranges().collect();
        let events = self.events.clone();
        self.rt.block_on(async {
            // Several requests in flight hide the round trips; results are
            // written in plan order.
            let mut results = futures_util::stream::iter(ranges)
                .map(|r| remote.fetch_range(&odesc, r, &what))
                .buffered(RANGES_IN_FLIGHT);
            while let Some(bytes) = results.next().await {
                let bytes = bytes?;
                std::io::Write::write_all(&mut out, &bytes)?;
                got += bytes.len() as u64;
                events.as_ref()(&Event::LayerProgress {
                    index,
                    bytes: got + plan.reused_compressed_bytes,
                    total: desc.size,
                });
            }
            anyhow::Ok(())
        })?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        drop(file);
        let fetched = std::io::BufReader::with_capacity(1 << 20, File::open(&path)?);
        self.finished.push(path);
        if let Some(r) = self.reports.get_mut(index) {
            r.downloaded = got;
            r.mode = Mode::Partial;
        }
        Ok(Some(LayerStream::Uncompressed(Box::new(reassemble(
            plan, self.store, fetched,
        )))))
    }
}

/// Open (creating) `path` and take an exclusive `flock` on it, waiting
/// while another process holds it.
async fn lock_file(path: &std::path::Path) -> anyhow::Result<File> {
    use rustix::fs::{flock, FlockOperation};
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)?;
    loop {
        match flock(&f, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(f),
            Err(rustix::io::Errno::WOULDBLOCK) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(std::io::Error::from(e).into()),
        }
    }
}

/// The registry as an [`ImageSource`] for the store's importer.
struct RegistrySource<'a> {
    rt: &'a Runtime,
    remote: Arc<Remote>,
    manifest: Vec<u8>,
    config: Vec<u8>,
    names: Vec<String>,
    downloads: HashMap<usize, JoinHandle<anyhow::Result<Downloaded>>>,
    /// Scratch files to delete once the image is published.
    finished: Vec<PathBuf>,
    reports: &'a mut Vec<LayerReport>,
    dir: PathBuf,
    events: EventSink,
    sem: Arc<Semaphore>,
    store: &'a Store,
    /// zstd:chunked layers to fetch partially, by index.
    chunked: HashMap<usize, TocLocation>,
    /// What the store holds, by content digest (built on first need).
    content: Option<ContentMap<'a>>,
}

impl ImageSource for RegistrySource<'_> {
    fn describe(&self) -> String {
        self.remote.shown.clone()
    }
    fn manifest(&mut self) -> anyhow::Result<Vec<u8>> {
        Ok(self.manifest.clone())
    }
    fn names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn config(&mut self, _desc: &Descriptor) -> anyhow::Result<Vec<u8>> {
        Ok(self.config.clone())
    }
    fn layer(
        &mut self,
        index: usize,
        desc: &Descriptor,
        _diff_id: &str,
    ) -> anyhow::Result<LayerStream<'_>> {
        if let Some(loc) = self.chunked.remove(&index) {
            match self.partial(index, desc, &loc) {
                Ok(Some(stream)) => return Ok(stream),
                Ok(None) => {}
                // The whole blob is verified by its digest, so it is always a
                // safe fallback (a registry without range support, a bad TOC).
                Err(e) => {
                    tracing::warn!(
                        "{}: partial fetch failed, downloading the whole layer: {e:#}",
                        desc.digest
                    );
                    self.start_download(index, desc);
                }
            }
        }
        // Not foreseen as missing (e.g. removed by gc meanwhile): start it now.
        self.start_download(index, desc);
        let handle = self.downloads.remove(&index).expect("download started");
        let d = self.rt.block_on(handle)??;
        if let Some(r) = self.reports.get_mut(index) {
            r.downloaded = d.received;
            r.mode = d.mode;
        }
        self.finished.push(d.path);
        Ok(LayerStream::Blob(Box::new(d.file)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifies_names() {
        let mut c = RegistriesConf::default();
        assert!(matches!(
            qualify("busybox", &c),
            Err(RegistryError::ShortName(_))
        ));
        assert_eq!(
            qualify("127.0.0.1:5000/a/b", &c).unwrap(),
            [("127.0.0.1:5000/a/b".to_string(), ":latest".to_string())]
        );
        assert_eq!(
            qualify("localhost/a@sha256:00", &c).unwrap(),
            [("localhost/a".to_string(), "@sha256:00".to_string())]
        );
        assert_eq!(
            qualify("r.example/a:1@sha256:00", &c).unwrap()[0].1,
            "@sha256:00"
        );
        assert!(qualify("r.example/A", &c).is_err());
        assert!(qualify("r.example//a", &c).is_err());
        c.unqualified_search_registries = vec!["docker.io".into(), "r.example".into()];
        assert_eq!(
            qualify("busybox:1", &c).unwrap(),
            [
                ("docker.io/library/busybox".to_string(), ":1".to_string()),
                ("r.example/busybox".to_string(), ":1".to_string())
            ]
        );
        c.aliases
            .insert("bb".into(), "r.example/tools/bb:stable".into());
        assert_eq!(
            qualify("bb", &c).unwrap(),
            [("r.example/tools/bb".to_string(), ":stable".to_string())]
        );
    }

    #[test]
    fn picks_platforms() {
        let idx = serde_json::json!({"manifests": [
            {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"digest": "sha256:b", "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "sha256:c", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}}
        ]});
        assert_eq!(
            pick_platform(&idx, "linux/amd64").as_deref(),
            Some("sha256:b")
        );
        assert_eq!(
            pick_platform(&idx, "linux/arm64").as_deref(),
            Some("sha256:a")
        );
        assert_eq!(
            pick_platform(&idx, "linux/arm/v7").as_deref(),
            Some("sha256:c")
        );
        assert_eq!(pick_platform(&idx, "linux/arm/v6"), None);
        assert_eq!(pick_platform(&idx, "windows/amd64"), None);
        assert_eq!(platforms(&idx).len(), 3);
    }
}
