//! The `unistore` command line, as a library so tests and other binaries can
//! drive it through [`run_from_iter`].
#![forbid(unsafe_code)]
// Doc comments here are also the CLI help text, where `[:REF]` means "optional".
#![allow(rustdoc::broken_intra_doc_links)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod output;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde_json::json;
use unistore_store::progress::NoProgress;
use unistore_store::{ImportOptions, SourceRef, Store};

/// unistore: one copy of every container image, every tool's view of it.
#[derive(Debug, Parser)]
#[command(name = "unistore", version, about, long_about = None)]
pub struct App {
    /// Store directory.
    #[arg(long, global = true, env = "UNISTORE_STORE", default_value = unistore_store::repo::DEFAULT_STORE)]
    pub store: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create a store (idempotent).
    Init {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Import an image: oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME], containers-storage:IMAGE, docker://HOST/REPO[:TAG|@DIGEST].
    Import {
        /// Source, in containers-transports(5) syntax.
        src: String,
        /// Name to give the image (repeatable); defaults to the names in the source.
        #[arg(long = "name", short = 'n')]
        names: Vec<String>,
        /// No progress bars.
        #[arg(long, short = 'q')]
        quiet: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Registry options (docker:// sources only).
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Pull an image from a registry (docker://HOST/REPO[:TAG|@DIGEST]), downloading only what the store lacks.
    Pull {
        /// Image reference; `docker://` is optional.
        reference: String,
        /// Name to give the image (repeatable); defaults to the reference.
        #[arg(long = "name", short = 'n')]
        names: Vec<String>,
        /// No progress output (same as --progress=none).
        #[arg(long, short = 'q')]
        quiet: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Registry options.
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// List images.
    Images {
        /// Print JSON (podman field names).
        #[arg(long)]
        json: bool,
        /// Only image IDs.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Show an image's manifest digest, ID, layers and names.
    Inspect {
        /// Image name, ID or digest.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add names to an image.
    Tag {
        /// Image name or ID.
        name: String,
        /// New names.
        #[arg(required = true)]
        new_names: Vec<String>,
    },
    /// Remove image names (the image goes with its last name; data goes with gc).
    Rmi {
        /// Image names or IDs.
        #[arg(required = true)]
        names: Vec<String>,
        /// Remove even if podman containers use the image through the view.
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// Remove objects and streams no image reaches.
    Gc {
        /// Only report what would be removed.
        #[arg(long, short = 'n')]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify every object, stream, index and catalog entry.
    Fsck {
        /// Rebuild derived data, remove orphans, name unrepairable images.
        #[arg(long)]
        repair: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show logical and physical space use and the dedup ratio.
    Df {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mount the store's views at MOUNTPOINT (returns when the mount is ready).
    Mount {
        /// Where to mount.
        mountpoint: PathBuf,
        /// Stay attached (for systemd); default is to run the daemon in the background.
        #[arg(long)]
        foreground: bool,
        /// Mount options: passthrough=auto|on|off, uring=auto|on|off, threads=N, prefetch=N, verify=on|off, suid, dev, acl, readdirplus=off|dirs|all (default prefetch=4,nosuid,nodev,noacl,readdirplus=dirs); comma-separated, repeatable.
        #[arg(short = 'o', long = "options")]
        options: Vec<String>,
        /// Views to show: all, or containers-storage, ostree, images joined with `+`.
        #[arg(long, default_value = "all")]
        view: String,
    },
    /// Point podman at the store's containers-storage view (storage.conf).
    Conf {
        /// install, show or remove.
        #[command(subcommand)]
        action: ConfAction,
    },
    /// Unmount a mounted store and stop its daemon.
    Umount {
        /// The mount point.
        mountpoint: PathBuf,
    },
    /// Generate man pages or shell completions from this CLI definition.
    #[command(hide = true)]
    Generate {
        /// `man DIR` or `completions SHELL`.
        #[command(subcommand)]
        what: Generate,
    },
    /// Write a layer's original tar (bit-exact) to stdout or a file.
    #[command(name = "layer-tar")]
    LayerTar {
        /// Image name or ID.
        name: String,
        /// Layer index, 0 = base.
        index: usize,
        /// Output file (default stdout).
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
}

/// How a pull shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressKind {
    /// Bars per layer on stderr when it is a terminal.
    Bar,
    /// One JSON event per line on stdout, the last one `{"event":"done",...}`.
    Json,
    /// Nothing.
    None,
}

/// Options of registry (docker://) sources, named as podman's.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// Credentials file as `podman login` writes it (default: $REGISTRY_AUTH_FILE, then podman's and docker's).
    #[arg(long)]
    pub authfile: Option<PathBuf>,
    /// USERNAME:PASSWORD for the registry.
    #[arg(long)]
    pub creds: Option<String>,
    /// Require HTTPS with verified certificates (`--tls-verify=false` allows plain HTTP); default: registries.conf's `insecure`.
    #[arg(long, require_equals = true, num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
    /// Platform to pick from a multi-platform image: OS/ARCH[/VARIANT] (default: this host's).
    #[arg(long)]
    pub platform: Option<String>,
    /// registries.conf to use instead of the system's (mirrors, insecure, blocked, aliases).
    #[arg(long, env = "CONTAINERS_REGISTRIES_CONF")]
    pub registries_conf: Option<PathBuf>,
    /// Progress: bar, json or none.
    #[arg(long, value_enum, default_value = "bar")]
    pub progress: ProgressKind,
}

impl RegistryArgs {
    fn options(&self, names: &[String]) -> anyhow::Result<unistore_registry::PullOptions> {
        Ok(unistore_registry::PullOptions {
            platform: self.platform.clone(),
            tls_verify: self.tls_verify,
            authfile: self.authfile.clone(),
            creds: self
                .creds
                .as_deref()
                .map(unistore_registry::auth::Credentials::parse)
                .transpose()?,
            registries_conf: self.registries_conf.clone(),
            names: names.to_vec(),
        })
    }
}

/// `unistore pull` / `import docker://…`.
fn run_pull(
    app: &App,
    reference: &str,
    names: &[String],
    quiet: bool,
    json: bool,
    registry: &RegistryArgs,
) -> anyhow::Result<()> {
    let store = open(app)?;
    let opts = registry.options(names)?;
    let kind = if quiet {
        ProgressKind::None
    } else {
        registry.progress
    };
    let (sink, bars) = output::pull_events(kind, json);
    let report = unistore_registry::pull(&store, reference, &opts, sink);
    if let Some(b) = bars {
        b.clear();
    }
    let report = report?;
    if kind == ProgressKind::Json {
        let mut v = serde_json::to_value(&report)?;
        v["event"] = "done".into();
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &v)?;
        writeln!(out)?;
    } else if json {
        output::json(&report)?;
    } else {
        if !quiet {
            let i = &report.import;
            let pct = if report.bytes_image > 0 {
                100.0 * report.bytes_downloaded as f64 / report.bytes_image as f64
            } else {
                0.0
            };
            eprintln!(
                "{} {} layers ({} already stored): downloaded {} of {} ({pct:.1}%), {} new, {} reused, in {:.2}s",
                if i.already_present { "Already stored;" } else { "Pulled" },
                i.layers,
                i.layers_reused,
                output::human_size(report.bytes_downloaded),
                output::human_size(report.bytes_image),
                output::human_size(i.new_bytes),
                output::human_size(i.reused_bytes),
                i.seconds
            );
        }
        println!("{}", report.import.id);
    }
    Ok(())
}

/// `unistore conf` actions.
#[derive(Debug, Subcommand)]
pub enum ConfAction {
    /// Add MNT/containers-storage to podman's additionalimagestores (idempotent).
    Install {
        /// Where the store is (or will be) mounted.
        #[arg(long, default_value = DEFAULT_MOUNT)]
        mount: PathBuf,
    },
    /// Show the storage configuration podman reads and its additional image stores.
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Undo `install`, restoring the file exactly as it was.
    Remove {
        /// The mount point given to install.
        #[arg(long, default_value = DEFAULT_MOUNT)]
        mount: PathBuf,
    },
}

/// What `unistore generate` writes.
#[derive(Debug, Subcommand)]
pub enum Generate {
    /// Man pages (unistore.1, unistore-SUBCOMMAND.1) into DIR.
    Man {
        /// Output directory.
        dir: PathBuf,
    },
    /// Shell completions to stdout.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// Write man pages for the whole CLI into `dir`.
pub fn write_man_pages(dir: &std::path::Path) -> anyhow::Result<()> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)?;
    let cmd = App::command();
    let render = |c: &clap::Command, file: String| -> anyhow::Result<()> {
        let mut buf = Vec::new();
        clap_mangen::Man::new(c.clone()).render(&mut buf)?;
        std::fs::write(dir.join(file), buf)?;
        Ok(())
    };
    render(&cmd, "unistore.1".into())?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("unistore-{}", sub.get_name());
        let sub = sub.clone().name(name.clone().leak() as &str);
        render(&sub, format!("{name}.1"))?;
    }
    Ok(())
}

/// Default mount point of the system store (see the systemd unit).
pub const DEFAULT_MOUNT: &str = "/run/unistore";

/// Run the CLI with these arguments (argv[0] first).
pub fn run_from_iter<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let app = App::parse_from(args);
    run(app)
}

fn open(app: &App) -> anyhow::Result<Store> {
    Store::open(&app.store)
}

/// `mount.fuse.unistore STORE MNT -o OPTS` (mount(8)'s FUSE type helper).
pub fn mount_helper_main(args: Vec<String>) -> anyhow::Result<()> {
    let inv = unistore_mount_helper::parse(&args)?;
    if inv.fake {
        return Ok(());
    }
    let mut argv = vec!["unistore".to_string()];
    argv.extend(inv.unistore_args());
    run_from_iter(argv)
}

/// Execute a parsed command line.
pub fn run(app: App) -> anyhow::Result<()> {
    match &app.cmd {
        Cmd::Init { json } => {
            let (_, info) = Store::init(&app.store)?;
            if *json {
                output::json(&info)?;
            } else {
                println!(
                    "{} store at {} (fs-verity: {})",
                    if info.created { "Created" } else { "Existing" },
                    info.path.display(),
                    if info.verity {
                        "on"
                    } else {
                        "off, insecure mode"
                    }
                );
            }
        }
        Cmd::Pull {
            reference,
            names,
            quiet,
            json,
            registry,
        } => run_pull(&app, reference, names, *quiet, *json, registry)?,
        Cmd::Import {
            src,
            names,
            quiet,
            json,
            registry,
        } => {
            if src.starts_with("docker://") {
                return run_pull(&app, src, names, *quiet, *json, registry);
            }
            let store = open(&app)?;
            let src = SourceRef::parse(src)?;
            let opts = ImportOptions {
                names: names.clone(),
            };
            let report = match output::Bars::new(*quiet || *json) {
                Some(mut bars) => unistore_store::import(&store, &src, &opts, &mut bars)?,
                None => unistore_store::import(&store, &src, &opts, &mut NoProgress)?,
            };
            if *json {
                output::json(&report)?;
            } else if report.already_present {
                println!("{} already stored ({})", report.id, report.names.join(", "));
            } else {
                if !*quiet {
                    eprintln!(
                        "Imported {} layers ({} already stored): {} new, {} reused, in {:.2}s",
                        report.layers,
                        report.layers_reused,
                        output::human_size(report.new_bytes),
                        output::human_size(report.reused_bytes),
                        report.seconds
                    );
                }
                println!("{}", report.id);
            }
        }
        Cmd::Images { json, quiet } => {
            let store = open(&app)?;
            let cat = store.catalog()?;
            if *json {
                let v: Vec<_> = cat
                    .images
                    .iter()
                    .map(|e| {
                        let repo_digests: Vec<String> = e
                            .names
                            .iter()
                            .map(|n| format!("{}@{}", strip_tag(n), e.digest))
                            .collect();
                        json!({
                            "Id": e.id, "Names": e.names, "Digest": e.digest,
                            "RepoDigests": repo_digests, "Size": e.size,
                            "CreatedAt": e.created, "ReadOnly": true,
                        })
                    })
                    .collect();
                output::json(&v)?;
            } else if *quiet {
                for e in &cat.images {
                    println!("{}", &e.id[..12]);
                }
            } else {
                let mut out = std::io::stdout().lock();
                writeln!(
                    out,
                    "{:<50} {:<12} {:<14} {:<22} SIZE",
                    "REPOSITORY", "TAG", "IMAGE ID", "CREATED"
                )?;
                for e in &cat.images {
                    let names = if e.names.is_empty() {
                        vec!["<none>:<none>".to_string()]
                    } else {
                        e.names.clone()
                    };
                    for n in names {
                        let (r, t) = split_tag(&n);
                        writeln!(
                            out,
                            "{:<50} {:<12} {:<14} {:<22} {}",
                            r,
                            t,
                            &e.id[..12],
                            e.created
                                .as_deref()
                                .map(|c| &c[..c.len().min(19)])
                                .unwrap_or("-"),
                            output::human_size(e.size)
                        )?;
                    }
                }
            }
        }
        Cmd::Inspect { name, json } => {
            let store = open(&app)?;
            let cat = store.catalog()?;
            let e = cat
                .find(name)
                .ok_or_else(|| unistore_store::StoreError::ImageNotFound(name.clone()))?;
            let rec = store.image(e)?;
            let layers: Vec<_> = rec
                .layers
                .iter()
                .map(|l| {
                    json!({
                        "DiffID": l.meta.diff_id, "Digest": l.blob_digest, "MediaType": l.media_type,
                        "Size": l.meta.diff_size, "CompressedSize": l.blob_size, "Files": l.meta.entries,
                        "IndexObject": l.meta.index_object, "TarSplitObject": l.meta.tarsplit_object,
                    })
                })
                .collect();
            // The image's commit in the ostree view (computed from the indexes).
            let (ostree_ref, ostree_commit) =
                match unistore_store::view::ostree::commit_for(&store, e) {
                    Ok((r, c)) => (Some(r), Some(c)),
                    Err(err) => {
                        tracing::warn!("no ostree commit for {}: {err:#}", e.id);
                        (None, None)
                    }
                };
            let v = json!({
                "Id": e.id, "Digest": e.digest, "RepoTags": e.names, "Names": e.names,
                "RepoDigests": e.names.iter().map(|n| format!("{}@{}", strip_tag(n), e.digest)).collect::<Vec<_>>(),
                "Created": rec.created, "Architecture": rec.architecture, "Os": rec.os,
                "Size": e.size, "ManifestMediaType": rec.manifest_media_type,
                "ConfigDigest": rec.config_digest,
                "RootFS": { "Type": "layers", "Layers": rec.layers.iter().map(|l| &l.meta.diff_id).collect::<Vec<_>>() },
                "Layers": layers,
                "OstreeRef": ostree_ref, "OstreeCommit": ostree_commit,
            });
            if *json {
                output::json(&v)?;
            } else {
                println!("Id:        {}", e.id);
                println!("Digest:    {}", e.digest);
                println!("Names:     {}", e.names.join(", "));
                println!("Created:   {}", rec.created.as_deref().unwrap_or("-"));
                println!(
                    "Platform:  {}/{}",
                    rec.os.as_deref().unwrap_or("?"),
                    rec.architecture.as_deref().unwrap_or("?")
                );
                println!("Size:      {}", output::human_size(e.size));
                println!("Layers:");
                for (i, l) in rec.layers.iter().enumerate() {
                    println!(
                        "  {i}: {} {:>10} {} files",
                        l.meta.diff_id,
                        output::human_size(l.meta.diff_size),
                        l.meta.entries
                    );
                }
            }
        }
        Cmd::Tag { name, new_names } => {
            let store = open(&app)?;
            for n in new_names {
                store.tag(name, n)?;
            }
        }
        Cmd::Rmi { names, force } => {
            let store = open(&app)?;
            let containers = unistore_store::gc::podman_containers();
            for n in names {
                let cat = store.catalog()?;
                let e = cat
                    .find(n)
                    .ok_or_else(|| unistore_store::StoreError::ImageNotFound(n.clone()))?;
                let users: Vec<String> = containers
                    .iter()
                    .filter(|c| c.image == e.id)
                    .map(|c| format!("{} ({})", c.names.join(","), &c.id[..12.min(c.id.len())]))
                    .collect();
                let last_name =
                    e.names.len() <= 1 || e.id.starts_with(n.trim_start_matches("sha256:"));
                if !users.is_empty() && last_name {
                    if *force {
                        eprintln!(
                            "Warning: removing {n} although podman containers use it: {}; they will no longer start (the image leaves the views now); its data is kept until they are removed, so re-importing the image repairs them",
                            users.join(", ")
                        );
                    } else {
                        anyhow::bail!(
                            "image {n} is in use by podman containers: {} (remove them first or use --force)",
                            users.join(", ")
                        );
                    }
                }
                let e = store.rmi(n)?;
                println!("Untagged: {n} ({})", e.id);
            }
        }
        Cmd::Gc { dry_run, json } => {
            let store = open(&app)?;
            let r = unistore_store::gc::gc(&store, *dry_run)?;
            if *json {
                output::json(&r)?;
            } else {
                println!(
                    "{} {} objects ({}), {} stream links{}",
                    if *dry_run { "Would remove" } else { "Removed" },
                    r.objects_removed,
                    output::human_size(r.bytes_removed),
                    r.streams_removed,
                    if r.pinned_images.is_empty() {
                        String::new()
                    } else {
                        format!("; kept {} images still in use", r.pinned_images.len())
                    }
                );
            }
        }
        Cmd::Fsck { repair, json } => {
            let store = open(&app)?;
            let r = unistore_store::fsck::fsck(&store, *repair)?;
            if *json {
                output::json(&r)?;
            } else {
                for f in &r.findings {
                    println!("{f}");
                }
                for x in &r.repaired {
                    println!("repaired: {x}");
                }
                for x in &r.unrepairable {
                    println!("unrepairable: image {x}");
                }
                println!(
                    "{} objects, {} images checked: {}",
                    r.objects_checked,
                    r.images_checked,
                    if r.is_clean() {
                        "clean".to_string()
                    } else {
                        format!("{} problems", r.findings.len())
                    }
                );
            }
            let still_bad = !r.is_clean() && (!*repair || !r.unrepairable.is_empty());
            if still_bad {
                std::process::exit(1);
            }
        }
        Cmd::Df { json } => {
            let store = open(&app)?;
            let df = store.df()?;
            if *json {
                output::json(&df)?;
            } else {
                println!("Images:         {}", df.images);
                println!(
                    "Logical size:   {} ({} bytes)",
                    output::human_size(df.logical_bytes),
                    df.logical_bytes
                );
                println!(
                    "On disk:        {} ({} bytes, du -s --block-size=1 {})",
                    output::human_size(df.physical_bytes),
                    df.physical_bytes,
                    app.store.display()
                );
                println!(
                    "Distinct data:  {} in {} objects",
                    output::human_size(df.distinct_bytes),
                    df.objects
                );
                println!("Dedup ratio:    {:.2}", df.dedup_ratio);
            }
        }
        Cmd::Mount {
            mountpoint,
            foreground,
            options,
            view,
        } => mount(&app, mountpoint, *foreground, options, view)?,
        Cmd::Conf { action } => conf(action)?,
        Cmd::Umount { mountpoint } => {
            unistore_fuse::daemon::unmount(mountpoint)?;
            // The daemon exits once the kernel drops the connection.
        }
        Cmd::Generate { what } => match what {
            Generate::Man { dir } => write_man_pages(dir)?,
            Generate::Completions { shell } => {
                use clap::CommandFactory;
                clap_complete::generate(
                    *shell,
                    &mut App::command(),
                    "unistore",
                    &mut std::io::stdout(),
                );
            }
        },
        Cmd::LayerTar {
            name,
            index,
            output,
        } => {
            let store = open(&app)?;
            let cat = store.catalog()?;
            let e = cat
                .find(name)
                .ok_or_else(|| unistore_store::StoreError::ImageNotFound(name.clone()))?;
            let rec = store.image(e)?;
            let l = rec
                .layers
                .get(*index)
                .with_context(|| format!("image has {} layers", rec.layers.len()))?;
            match output {
                Some(p) => {
                    let mut f = std::io::BufWriter::new(std::fs::File::create(p)?);
                    store.write_layer_tar(&l.meta, &mut f)?;
                    f.flush()?;
                }
                None => {
                    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                    store.write_layer_tar(&l.meta, &mut out)?;
                    out.flush()?;
                }
            }
        }
    }
    Ok(())
}

/// `auto`, `on` or `off`, the value of mount option `name`.
fn auto_on_off(name: &str, v: &str) -> anyhow::Result<unistore_fuse::Passthrough> {
    Ok(match v {
        "auto" => unistore_fuse::Passthrough::Auto,
        "on" => unistore_fuse::Passthrough::On,
        "off" => unistore_fuse::Passthrough::Off,
        _ => anyhow::bail!("{name} must be auto, on or off, not `{v}`"),
    })
}

fn parse_mount_options(options: &[String]) -> anyhow::Result<unistore_fuse::MountOptions> {
    let mut o = unistore_fuse::MountOptions::default();
    for opt in options
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
    {
        match opt.split_once('=') {
            Some(("passthrough", v)) => o.passthrough = auto_on_off("passthrough", v)?,
            Some(("uring", v)) => o.uring = auto_on_off("uring", v)?,
            None if opt == "suid" => o.suid = true,
            None if opt == "nosuid" => o.suid = false,
            None if opt == "dev" => o.dev = true,
            None if opt == "nodev" => o.dev = false,
            None if opt == "acl" => o.acl = true,
            None if opt == "noacl" => o.acl = false,
            Some(("readdirplus", v)) => {
                o.readdirplus = match v {
                    "off" => unistore_fuse::ReaddirPlus::Off,
                    "dirs" => unistore_fuse::ReaddirPlus::Dirs,
                    "all" => unistore_fuse::ReaddirPlus::All,
                    _ => anyhow::bail!("readdirplus must be off, dirs or all, not `{v}`"),
                }
            }
            None if opt == "readdirplus" => o.readdirplus = unistore_fuse::ReaddirPlus::All,
            None if opt == "noreaddirplus" => o.readdirplus = unistore_fuse::ReaddirPlus::Off,
            Some(("threads", v)) => {
                o.threads = v.parse().with_context(|| format!("threads={v}"))?
            }
            Some(("prefetch", v)) => {
                o.prefetch = v
                    .parse()
                    .ok()
                    .filter(|&n| n <= 64)
                    .with_context(|| format!("prefetch must be a number of threads (0..=64, 0 = off), not `{v}`"))?
            }
            Some(("verify", v)) => {
                o.verify = match v {
                    "on" => true,
                    "off" => false,
                    _ => anyhow::bail!("verify must be on or off, not `{v}`"),
                }
            }
            _ => anyhow::bail!(
                "unknown mount option `{opt}` (known: passthrough=auto|on|off, threads=N, prefetch=N, uring=auto|on|off, verify=on|off, suid, nosuid, dev, nodev, acl, noacl, readdirplus=off|dirs|all)"
            ),
        }
    }
    Ok(o)
}

fn conf(action: &ConfAction) -> anyhow::Result<()> {
    use unistore_containers_conf as cc;
    let view = |m: &std::path::Path| m.join("containers-storage").display().to_string();
    match action {
        ConfAction::Install { mount } => match cc::install(&view(mount))? {
            cc::Outcome::Changed(p) => println!("Added {} to {}", view(mount), p.display()),
            cc::Outcome::Unchanged(p) => println!("{} already lists {}", p.display(), view(mount)),
        },
        ConfAction::Remove { mount } => match cc::remove(&view(mount))? {
            cc::Outcome::Changed(p) => println!("Restored {}", p.display()),
            cc::Outcome::Unchanged(p) => println!("{} does not list {}", p.display(), view(mount)),
        },
        ConfAction::Show { json } => {
            let (path, exists) = cc::effective_path();
            let text = if exists {
                std::fs::read_to_string(&path)?
            } else {
                String::new()
            };
            let stores =
                cc::list_stores(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            if *json {
                output::json(
                    &json!({"Path": path, "Exists": exists, "AdditionalImageStores": stores}),
                )?;
            } else {
                println!(
                    "# {} ({})",
                    path.display(),
                    if exists {
                        "read by podman"
                    } else {
                        "absent: podman uses built-in defaults"
                    }
                );
                print!("{text}");
                println!(
                    "# additionalimagestores: {}",
                    if stores.is_empty() {
                        "(none)".to_string()
                    } else {
                        stores.join(", ")
                    }
                );
            }
        }
    }
    Ok(())
}

fn parse_views(view: &str) -> anyhow::Result<unistore_fuse::fs::ViewSet> {
    let mut v = unistore_fuse::fs::ViewSet {
        containers_storage: false,
        ostree: false,
        images: false,
        single_image: None,
    };
    for part in view.split(['+', ',']) {
        match part {
            "all" => v = unistore_fuse::fs::ViewSet::default(),
            "containers-storage" => v.containers_storage = true,
            "ostree" => v.ostree = true,
            "images" => v.images = true,
            p if p.starts_with("image:") => {
                v = unistore_fuse::fs::ViewSet {
                    containers_storage: false,
                    ostree: false,
                    images: false,
                    single_image: Some(p["image:".len()..].to_string()),
                };
            }
            p => anyhow::bail!(
                "unknown view `{p}` (all, containers-storage, ostree, images, image:NAME)"
            ),
        }
    }
    Ok(v)
}

fn mount(
    app: &App,
    mnt: &std::path::Path,
    foreground: bool,
    options: &[String],
    view: &str,
) -> anyhow::Result<()> {
    let mut opts = parse_mount_options(options)?;
    opts.views = parse_views(view)?;
    Store::open(&app.store)?; // fail early, in the foreground, on a bad store
    if !mnt.is_dir() && !unistore_fuse::daemon::clear_stale_mount(mnt)? {
        anyhow::bail!("mount point {} is not a directory", mnt.display());
    }
    if unistore_fuse::daemon::is_mounted(mnt) {
        anyhow::bail!("{} is already mounted", mnt.display());
    }
    if foreground {
        return unistore_fuse::serve(&app.store, mnt, &opts, || {
            tracing::info!("mounted {}", mnt.display());
            notify_systemd_ready();
        });
    }
    // Background: re-run ourselves in the foreground, detached, and wait for the mount.
    let log_path = app.store.join("tmp").join(format!(
        "mount-{}.log",
        mnt.display().to_string().replace('/', "_")
    ));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    use std::os::unix::process::CommandExt as _;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("--store")
        .arg(&app.store)
        .arg("mount")
        .arg(mnt)
        .arg("--foreground")
        .arg("--view")
        .arg(view)
        .args(options.iter().flat_map(|o| ["-o", o.as_str()]))
        .env(
            "UNISTORE_LOG",
            std::env::var("UNISTORE_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting the daemon")?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if unistore_fuse::daemon::is_mounted(mnt) {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let last = log
                .lines()
                .rev()
                .find(|l| l.contains("Error") || l.contains("ERROR"))
                .unwrap_or("")
                .trim();
            anyhow::bail!(
                "daemon exited ({status}) before the mount was ready: {last} (log: {})",
                log_path.display()
            );
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            anyhow::bail!(
                "timed out waiting for the mount (log: {})",
                log_path.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Tell systemd (Type=notify) that the mount is ready, if it asked.
fn notify_systemd_ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(_) => return,
    };
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec();
    let r = if let Some(abs) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt as _;
        std::os::unix::net::SocketAddr::from_abstract_name(abs)
            .and_then(|a| sock.send_to_addr(b"READY=1", &a))
    } else {
        sock.send_to(b"READY=1", std::path::Path::new(&path))
    };
    if let Err(e) = r {
        tracing::warn!("sd_notify failed: {e}");
    }
}

fn split_tag(name: &str) -> (&str, &str) {
    match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (name, "<none>"),
    }
}

fn strip_tag(name: &str) -> &str {
    split_tag(name).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_are_current() {
        // docs/man is generated by `unistore generate man docs/man`; keep it in sync.
        let dir = tempfile_dir();
        write_man_pages(&dir).unwrap();
        let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/man");
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let want = std::fs::read(e.path()).unwrap();
            let have = std::fs::read(committed.join(e.file_name())).unwrap_or_default();
            assert!(
                want == have,
                "docs/man/{} is stale: run `cargo run -p unistore-cli -- generate man docs/man`",
                e.file_name().to_string_lossy()
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("unistore-man-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn parses() {
        let app = App::try_parse_from([
            "unistore", "--store", "/s", "import", "oci:/x", "--name", "a",
        ])
        .unwrap();
        assert!(matches!(app.cmd, Cmd::Import { .. }));
        assert!(App::try_parse_from(["unistore", "rmi"]).is_err());
    }
}
