//! Registry credentials the way podman and skopeo keep them
//! (containers-auth.json(5)): `auth.json` files with base64 `user:password`
//! per registry or per repository namespace.
//!
//! Lookup order (c/image's): an explicit `--authfile` (or
//! `$REGISTRY_AUTH_FILE`) alone; otherwise `$XDG_RUNTIME_DIR/containers/auth.json`
//! (`/run/containers/UID/auth.json`), `$XDG_CONFIG_HOME/containers/auth.json`,
//! `~/.docker/config.json`. Within a file the most specific key wins:
//! `host/ns/repo`, then `host/ns`, then `host`. Credential helpers
//! (`credHelpers`, `credsStore`) are not run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::RegistryError;

/// A user name and password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

impl Credentials {
    /// Parse `--creds USER:PASSWORD`.
    pub fn parse(creds: &str) -> Result<Self, RegistryError> {
        match creds.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }),
            _ => Err(RegistryError::Auth(
                "--creds wants USERNAME:PASSWORD".to_string(),
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Debug, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The auth files to read, in order.
pub fn auth_files(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
        return vec![PathBuf::from(p)];
    }
    let mut out = Vec::new();
    let uid = rustix::process::getuid().as_raw();
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => out.push(PathBuf::from(d).join("containers/auth.json")),
        _ => out.push(PathBuf::from(format!("/run/containers/{uid}/auth.json"))),
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    match std::env::var_os("XDG_CONFIG_HOME") {
        Some(d) if !d.is_empty() => out.push(PathBuf::from(d).join("containers/auth.json")),
        _ => {
            if let Some(h) = &home {
                out.push(h.join(".config/containers/auth.json"));
            }
        }
    }
    if let Some(h) = &home {
        out.push(h.join(".docker/config.json"));
    }
    out
}

/// Credentials for `name` (`host[:port]/repo`, fully qualified) from `files`.
/// Missing files are skipped; an unreadable or malformed one is an error.
pub fn lookup(files: &[PathBuf], name: &str) -> Result<Option<Credentials>, RegistryError> {
    for f in files {
        let text = match std::fs::read(f) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(RegistryError::Auth(format!("{}: {e}", f.display())));
            }
        };
        if let Some(c) = lookup_in(&text, name)
            .map_err(|m| RegistryError::Auth(format!("{}: {m}", f.display())))?
        {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// Look `name` up in one file's bytes.
pub fn lookup_in(text: &[u8], name: &str) -> Result<Option<Credentials>, String> {
    let file: AuthFile =
        serde_json::from_slice(text).map_err(|e| format!("not a valid auth file: {e}"))?;
    // Normalise keys: docker's "https://index.docker.io/v1/" style too.
    let keys: BTreeMap<String, &AuthEntry> = file
        .auths
        .iter()
        .map(|(k, v)| {
            let k = k
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/');
            let k = k.strip_suffix("/v1").or(k.strip_suffix("/v2")).unwrap_or(k);
            let k = if k == "index.docker.io" {
                "docker.io"
            } else {
                k
            };
            (k.to_string(), v)
        })
        .collect();
    let mut candidate = name.to_string();
    loop {
        if let Some(e) = keys.get(&candidate) {
            return decode(e).map(Some);
        }
        match candidate.rsplit_once('/') {
            Some((head, _)) => candidate = head.to_string(),
            None => return Ok(None),
        }
    }
}

fn decode(e: &AuthEntry) -> Result<Credentials, String> {
    if let (Some(u), Some(p)) = (&e.username, &e.password) {
        return Ok(Credentials {
            username: u.clone(),
            password: p.clone(),
        });
    }
    let raw = e.auth.as_deref().ok_or("entry without \"auth\"")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .map_err(|e| format!("\"auth\" is not base64: {e}"))?;
    let s = String::from_utf8(bytes).map_err(|_| "\"auth\" is not UTF-8")?;
    let (u, p) = s.split_once(':').ok_or("\"auth\" is not USER:PASSWORD")?;
    Ok(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_key_wins() {
        let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let text = format!(
            r#"{{"auths": {{"r.example:5000": {{"auth": "{}"}},
                "r.example:5000/team": {{"auth": "{}"}},
                "https://index.docker.io/v1/": {{"auth": "{}"}}}}}}"#,
            b("all:pw1"),
            b("team:pw:2"),
            b("hub:pw3")
        );
        let t = text.as_bytes();
        let c = |n| lookup_in(t, n).unwrap().map(|c| (c.username, c.password));
        assert_eq!(
            c("r.example:5000/team/app"),
            Some(("team".into(), "pw:2".into()))
        );
        assert_eq!(
            c("r.example:5000/other"),
            Some(("all".into(), "pw1".into()))
        );
        assert_eq!(c("docker.io/library/x"), Some(("hub".into(), "pw3".into())));
        assert_eq!(c("r.example/x"), None);
        assert!(lookup_in(br#"{"auths": {"a": {"auth": "!!"}}}"#, "a/b").is_err());
        assert!(lookup_in(b"nope", "a").is_err());
    }

    #[test]
    fn creds_flag() {
        assert_eq!(Credentials::parse("u:p:q").unwrap().password, "p:q");
        assert!(Credentials::parse("nopass").is_err());
        assert!(!format!("{:?}", Credentials::parse("u:secret").unwrap()).contains("secret"));
    }
}
