//! `mount -t fuse.unistore STORE MNT -o OPTIONS` support.
//!
//! mount(8) runs `mount.fuse.unistore STORE MNT -o OPTIONS` for that type
//! (and for fstab lines of that type). [`parse`] turns its argv into an
//! [`Invocation`] — a pure function, table-tested — and the binary starts the
//! daemon with `unistore --store STORE mount MNT ...`, which returns once the
//! mount is ready. `umount MNT` ends the daemon.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// What the helper was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Store directory (the "device").
    pub store: String,
    /// Mount point.
    pub mountpoint: String,
    /// `view=` value, passed to `unistore mount --view`.
    pub view: Option<String>,
    /// Options for `unistore mount -o` (passthrough=, threads=).
    pub daemon_options: Vec<String>,
    /// `-f`: stay in the foreground.
    pub foreground: bool,
    /// `-n`/`-v`/`-s` (accepted and ignored, as mount.fuse does).
    pub fake: bool,
}

/// Why the arguments were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not `STORE MNT [-o OPTS]`.
    #[error("usage: mount.fuse.unistore STORE MOUNTPOINT [-o OPTIONS]")]
    Usage,
    /// An option we do not know.
    #[error("unknown mount option `{0}` (known: ro, allow_other, default_permissions, view=, passthrough=, uring=, threads=, prefetch=, verify=, suid, dev, acl, readdirplus=, and the generic fstab options)")]
    Unknown(String),
    /// An option with a bad value.
    #[error("bad value for mount option `{0}`: {1}")]
    BadValue(String, String),
    /// `rw` asked for: the views are read-only.
    #[error("unistore mounts are read-only; `rw` is not supported")]
    ReadWrite,
}

/// Options mount(8) or the kernel handle, or that are implied by the daemon
/// (it always mounts read-only with allow_other and default_permissions).
const ACCEPTED: &[&str] = &[
    "ro",
    "allow_other",
    "default_permissions",
    "defaults",
    "auto",
    "noauto",
    "user",
    "nouser",
    "users",
    "nofail",
    "_netdev",
    "exec",
    "noexec",
    "atime",
    "noatime",
    "relatime",
    "nodiratime",
    "sync",
    "async",
];

/// Parse the helper's arguments (without `argv[0]`).
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Invocation, ParseError> {
    let mut pos = Vec::new();
    let mut opts: Vec<String> = Vec::new();
    let mut foreground = false;
    let mut fake = false;
    let mut it = args.iter().map(AsRef::as_ref);
    while let Some(a) = it.next() {
        match a {
            "-o" => opts.push(it.next().ok_or(ParseError::Usage)?.to_string()),
            "-f" => foreground = true,
            "-n" | "-v" | "-s" => fake = fake || a == "-n",
            a if a.starts_with("-o") => opts.push(a[2..].to_string()),
            a if a.starts_with('-') => return Err(ParseError::Unknown(a.to_string())),
            a => pos.push(a.to_string()),
        }
    }
    let [store, mountpoint] = <[String; 2]>::try_from(pos).map_err(|_| ParseError::Usage)?;
    // Empty operands would reach `unistore --store '' mount ...` (issue 6, fuzzing).
    if store.is_empty() || mountpoint.is_empty() {
        return Err(ParseError::Usage);
    }
    let mut inv = Invocation {
        store,
        mountpoint,
        view: None,
        daemon_options: Vec::new(),
        foreground,
        fake,
    };
    for o in opts
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
    {
        match o.split_once('=') {
            Some(("view", v)) => {
                let ok = v.split('+').all(|p| {
                    matches!(p, "all" | "containers-storage" | "ostree" | "images")
                        || p.strip_prefix("image:").is_some_and(|n| !n.is_empty())
                });
                if !ok {
                    return Err(ParseError::BadValue(
                        o.into(),
                        "expected all, containers-storage, ostree, images or image:NAME".into(),
                    ));
                }
                inv.view = Some(v.to_string());
            }
            Some(("passthrough" | "uring", v)) => {
                if !matches!(v, "auto" | "on" | "off") {
                    return Err(ParseError::BadValue(
                        o.into(),
                        "expected auto, on or off".into(),
                    ));
                }
                inv.daemon_options.push(o.to_string());
            }
            Some(("readdirplus", v)) => {
                if !matches!(v, "off" | "dirs" | "all") {
                    return Err(ParseError::BadValue(
                        o.into(),
                        "expected off, dirs or all".into(),
                    ));
                }
                inv.daemon_options.push(o.to_string());
            }
            Some(("verify", v)) => {
                if !matches!(v, "on" | "off") {
                    return Err(ParseError::BadValue(o.into(), "expected on or off".into()));
                }
                inv.daemon_options.push(o.to_string());
            }
            Some(("threads", v)) => {
                if !v.parse::<u32>().is_ok_and(|n| (1..=64).contains(&n)) {
                    return Err(ParseError::BadValue(o.into(), "expected 1..64".into()));
                }
                inv.daemon_options.push(o.to_string());
            }
            Some(("prefetch", v)) => {
                if !v.parse::<u32>().is_ok_and(|n| n <= 64) {
                    return Err(ParseError::BadValue(
                        o.into(),
                        "expected 0..64 (0 = off)".into(),
                    ));
                }
                inv.daemon_options.push(o.to_string());
            }
            Some((k, _)) if k.starts_with("x-") || k == "comment" => {}
            None if o == "rw" => return Err(ParseError::ReadWrite),
            // Passed to the daemon: it mounts nosuid,nodev unless told otherwise.
            None if matches!(
                o,
                "suid"
                    | "nosuid"
                    | "dev"
                    | "nodev"
                    | "acl"
                    | "noacl"
                    | "readdirplus"
                    | "noreaddirplus"
            ) =>
            {
                inv.daemon_options.push(o.to_string())
            }
            None if ACCEPTED.contains(&o) => {}
            _ => return Err(ParseError::Unknown(o.to_string())),
        }
    }
    Ok(inv)
}

impl Invocation {
    /// Arguments for `unistore` that perform this mount.
    pub fn unistore_args(&self) -> Vec<String> {
        let mut a = vec![
            "--store".to_string(),
            self.store.clone(),
            "mount".to_string(),
            self.mountpoint.clone(),
        ];
        if let Some(v) = &self.view {
            a.push("--view".into());
            a.push(v.clone());
        }
        for o in &self.daemon_options {
            a.push("-o".into());
            a.push(o.clone());
        }
        if self.foreground {
            a.push("--foreground".into());
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let ok: &[(&[&str], &[&str])] = &[
            (&["/s", "/m"], &["--store", "/s", "mount", "/m"]),
            (
                &["/s", "/m", "-o", "ro,allow_other"],
                &["--store", "/s", "mount", "/m"],
            ),
            (
                &["/s", "/m", "-o", "ro,suid,nodev,acl"],
                &[
                    "--store", "/s", "mount", "/m", "-o", "suid", "-o", "nodev", "-o", "acl",
                ],
            ),
            (
                &[
                    "/s",
                    "/m",
                    "-o",
                    "ro,view=containers-storage,passthrough=off,uring=on",
                ],
                &[
                    "--store",
                    "/s",
                    "mount",
                    "/m",
                    "--view",
                    "containers-storage",
                    "-o",
                    "passthrough=off",
                    "-o",
                    "uring=on",
                ],
            ),
            (
                &["/s", "/m", "-oro,threads=4", "-f"],
                &[
                    "--store",
                    "/s",
                    "mount",
                    "/m",
                    "-o",
                    "threads=4",
                    "--foreground",
                ],
            ),
            (
                &[
                    "/s",
                    "/m",
                    "-o",
                    "defaults,nofail,_netdev,x-systemd.requires=a.service",
                ],
                &["--store", "/s", "mount", "/m"],
            ),
            (
                &["/s", "/m", "-o", "view=image:localhost/x:1"],
                &[
                    "--store",
                    "/s",
                    "mount",
                    "/m",
                    "--view",
                    "image:localhost/x:1",
                ],
            ),
        ];
        for (args, want) in ok {
            let inv = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(
                inv.unistore_args(),
                want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "{args:?}"
            );
        }
        let bad: &[(&[&str], ParseError)] = &[
            (&["/s"], ParseError::Usage),
            (&["/s", "/m", "/x"], ParseError::Usage),
            (&["/s", "/m", "-o"], ParseError::Usage),
            (&["/s", "/m", "-o", "rw"], ParseError::ReadWrite),
            (
                &["/s", "/m", "-o", "bogus"],
                ParseError::Unknown("bogus".into()),
            ),
            (
                &["/s", "/m", "-o", "frob=1"],
                ParseError::Unknown("frob=1".into()),
            ),
            (&["/s", "/m", "-x"], ParseError::Unknown("-x".into())),
        ];
        for (args, want) in bad {
            assert_eq!(&parse(args).unwrap_err(), want, "{args:?}");
        }
        assert!(matches!(
            parse(&["/s", "/m", "-o", "passthrough=maybe"]),
            Err(ParseError::BadValue(..))
        ));
        assert!(matches!(
            parse(&["/s", "/m", "-o", "threads=0"]),
            Err(ParseError::BadValue(..))
        ));
        assert!(matches!(
            parse(&["/s", "/m", "-o", "prefetch=65"]),
            Err(ParseError::BadValue(..))
        ));
        assert_eq!(
            parse(&["/s", "/m", "-o", "prefetch=0"])
                .expect("prefetch=0")
                .daemon_options,
            vec!["prefetch=0".to_string()]
        );
        assert_eq!(
            parse(&[
                "/s",
                "/m",
                "-o",
                "readdirplus=all,noreaddirplus,readdirplus=dirs"
            ])
            .expect("readdirplus")
            .daemon_options,
            ["readdirplus=all", "noreaddirplus", "readdirplus=dirs"]
        );
        assert!(matches!(
            parse(&["/s", "/m", "-o", "readdirplus=some"]),
            Err(ParseError::BadValue(..))
        ));
        assert!(matches!(
            parse(&["/s", "/m", "-o", "view=bogus"]),
            Err(ParseError::BadValue(..))
        ));
    }

    /// Found by the mount_options fuzzer: `mount.fuse.unistore "" /m` was
    /// accepted and then refused by the CLI with an unrelated clap message.
    #[test]
    fn regression_issue6_empty_operands() {
        assert_eq!(parse(&["", "/m"]).unwrap_err(), ParseError::Usage);
        assert_eq!(parse(&["/s", ""]).unwrap_err(), ParseError::Usage);
    }
}
