//! `registries.conf` (containers-registries.conf(5), version 2): where a
//! reference is pulled from (mirrors, `location` rewrites), which registries
//! are `insecure` or `blocked`, and how short names resolve (`[aliases]`,
//! `unqualified-search-registries`).
//!
//! Files are read as c/image does: `$CONTAINERS_REGISTRIES_CONF` or an
//! explicit path alone; otherwise `/etc/containers/registries.conf` (or the
//! user's `~/.config/containers/registries.conf` when present) followed by the
//! drop-ins of `registries.conf.d/*.conf` in name order, later files
//! overriding earlier ones entry by entry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::RegistryError;

/// One `[[registry.mirror]]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Mirror {
    /// `host[:port][/path]` replacing the registry entry's prefix.
    pub location: String,
    /// Plain HTTP / unverified TLS allowed.
    #[serde(default)]
    pub insecure: bool,
    /// `all` (default), `digest-only` or `tag-only`.
    #[serde(rename = "pull-from-mirror", default)]
    pub pull_from_mirror: Option<String>,
}

/// One `[[registry]]` table.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Registry {
    /// What references the entry applies to (`host[/path]` or `*.domain`);
    /// defaults to `location`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Where matching references are pulled from.
    #[serde(default)]
    pub location: Option<String>,
    /// Plain HTTP / unverified TLS allowed.
    #[serde(default)]
    pub insecure: bool,
    /// Pulls are refused.
    #[serde(default)]
    pub blocked: bool,
    /// Only use mirrors for references by digest.
    #[serde(rename = "mirror-by-digest-only", default)]
    pub mirror_by_digest_only: bool,
    /// Mirrors, tried in order before `location`.
    #[serde(default)]
    pub mirror: Vec<Mirror>,
}

impl Registry {
    fn prefix(&self) -> &str {
        self.prefix
            .as_deref()
            .or(self.location.as_deref())
            .unwrap_or("")
    }
}

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(rename = "unqualified-search-registries", default)]
    unqualified_search_registries: Option<Vec<String>>,
    #[serde(default)]
    registry: Vec<Registry>,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
}

/// The merged configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistriesConf {
    /// Registries tried, in order, for a short name with no alias.
    pub unqualified_search_registries: Vec<String>,
    /// `[[registry]]` entries (one per prefix).
    pub registries: Vec<Registry>,
    /// Short-name aliases.
    pub aliases: BTreeMap<String, String>,
    /// Files read, for messages.
    pub files: Vec<PathBuf>,
}

/// One place to pull a reference from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The reference rewritten for this endpoint (`host[:port]/repo[:tag|@digest]`).
    pub reference: String,
    /// Plain HTTP / unverified TLS allowed.
    pub insecure: bool,
    /// True for a mirror (failures fall through to the next endpoint).
    pub mirror: bool,
}

impl RegistriesConf {
    /// Load from `explicit` (or `$CONTAINERS_REGISTRIES_CONF`), else from the
    /// system and user locations. Missing files are not an error; a file
    /// that does not parse is.
    pub fn load(explicit: Option<&Path>) -> Result<Self, RegistryError> {
        let env = std::env::var_os("CONTAINERS_REGISTRIES_CONF").map(PathBuf::from);
        let mut conf = RegistriesConf::default();
        if let Some(p) = explicit.map(Path::to_path_buf).or(env) {
            conf.merge_file(&p)?;
            return Ok(conf);
        }
        let user = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".config/containers/registries.conf"))
            .filter(|p| p.exists() && !rustix_is_root());
        let main = user.unwrap_or_else(|| PathBuf::from("/etc/containers/registries.conf"));
        if main.exists() {
            conf.merge_file(&main)?;
        }
        let dir = main.with_extension("conf.d");
        if let Ok(rd) = std::fs::read_dir(&dir) {
            let mut files: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                .collect();
            files.sort();
            for f in files {
                conf.merge_file(&f)?;
            }
        }
        Ok(conf)
    }

    /// Parse one file's text (for tests and [`RegistriesConf::load`]).
    pub fn merge_str(&mut self, text: &str, name: &Path) -> Result<(), RegistryError> {
        let f: File = toml::from_str(text).map_err(|e| RegistryError::Config {
            file: name.display().to_string(),
            message: e.to_string(),
        })?;
        if let Some(u) = f.unqualified_search_registries {
            self.unqualified_search_registries = u;
        }
        for r in f.registry {
            if r.prefix().is_empty() {
                return Err(RegistryError::Config {
                    file: name.display().to_string(),
                    message: "[[registry]] without prefix or location".into(),
                });
            }
            self.registries.retain(|x| x.prefix() != r.prefix());
            self.registries.push(r);
        }
        self.aliases.extend(f.aliases);
        self.files.push(name.to_path_buf());
        Ok(())
    }

    fn merge_file(&mut self, path: &Path) -> Result<(), RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|e| RegistryError::Config {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
        self.merge_str(&text, path)
    }

    /// The `[[registry]]` entry for a fully qualified `name` (`host/repo`, no
    /// tag): the longest matching prefix.
    pub fn find(&self, name: &str) -> Option<&Registry> {
        let host = name.split('/').next().unwrap_or("");
        self.registries
            .iter()
            .filter(|r| {
                let p = r.prefix();
                if let Some(dom) = p.strip_prefix("*.") {
                    host.ends_with(&format!(".{dom}"))
                } else {
                    name == p
                        || name
                            .strip_prefix(p)
                            .is_some_and(|rest| rest.starts_with('/'))
                }
            })
            .max_by_key(|r| r.prefix().len())
    }

    /// Where to pull `name` (fully qualified, without tag) with `suffix`
    /// (`:tag` or `@digest`) from, in order. Errors if the registry is blocked.
    pub fn endpoints(&self, name: &str, suffix: &str) -> Result<Vec<Endpoint>, RegistryError> {
        let by_digest = suffix.starts_with('@');
        let Some(r) = self.find(name) else {
            return Ok(vec![Endpoint {
                reference: format!("{name}{suffix}"),
                insecure: false,
                mirror: false,
            }]);
        };
        if r.blocked {
            return Err(RegistryError::Blocked(name.to_string()));
        }
        let prefix = r.prefix();
        // A wildcard prefix rewrites nothing; otherwise the prefix is replaced.
        let rest = if prefix.starts_with("*.") {
            None
        } else {
            name.strip_prefix(prefix)
        };
        let rewrite = |loc: &str| match rest {
            Some(rest) => format!("{loc}{rest}{suffix}"),
            None => format!("{name}{suffix}"),
        };
        let mut out = Vec::new();
        if !r.mirror_by_digest_only || by_digest {
            for m in &r.mirror {
                let ok = match m.pull_from_mirror.as_deref() {
                    Some("digest-only") => by_digest,
                    Some("tag-only") => !by_digest,
                    _ => true,
                };
                if ok {
                    out.push(Endpoint {
                        reference: rewrite(&m.location),
                        insecure: m.insecure,
                        mirror: true,
                    });
                }
            }
        }
        out.push(Endpoint {
            reference: rewrite(r.location.as_deref().unwrap_or(prefix)),
            insecure: r.insecure,
            mirror: false,
        });
        Ok(out)
    }
}

fn rustix_is_root() -> bool {
    // Root reads the system files, as c/image does.
    rustix::process::getuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> RegistriesConf {
        let mut c = RegistriesConf::default();
        c.merge_str(text, Path::new("test.conf")).unwrap();
        c
    }

    #[test]
    fn mirrors_then_location() {
        let c = conf(
            r#"
unqualified-search-registries = ["a.example"]
[[registry]]
prefix = "example.com/foo"
location = "internal:5000/bar"
insecure = true
[[registry.mirror]]
location = "mirror.local/m"
[[registry.mirror]]
location = "digests.local"
pull-from-mirror = "digest-only"
"#,
        );
        let e = c.endpoints("example.com/foo/img", ":1").unwrap();
        assert_eq!(
            e.iter().map(|e| e.reference.as_str()).collect::<Vec<_>>(),
            ["mirror.local/m/img:1", "internal:5000/bar/img:1"]
        );
        assert!(e[1].insecure && !e[0].insecure && e[0].mirror);
        let d = c.endpoints("example.com/foo/img", "@sha256:ab").unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d[1].reference, "digests.local/img@sha256:ab");
        // Prefixes match at path boundaries only.
        assert_eq!(
            c.endpoints("example.com/foobar", ":1").unwrap()[0].reference,
            "example.com/foobar:1"
        );
        assert_eq!(c.unqualified_search_registries, ["a.example"]);
    }

    #[test]
    fn blocked_and_wildcard() {
        let c = conf(
            r#"
[[registry]]
prefix = "*.bad.example"
blocked = true
[[registry]]
location = "127.0.0.1:5000"
insecure = true
"#,
        );
        assert!(matches!(
            c.endpoints("x.bad.example/a", ":1"),
            Err(RegistryError::Blocked(_))
        ));
        let e = c.endpoints("127.0.0.1:5000/a/b", ":t").unwrap();
        assert_eq!(e.len(), 1);
        assert!(e[0].insecure);
        assert_eq!(e[0].reference, "127.0.0.1:5000/a/b:t");
    }

    #[test]
    fn later_files_override_and_bad_toml_is_an_error() {
        let mut c = conf("[[registry]]\nlocation = \"r.example\"\ninsecure = true\n");
        c.merge_str(
            "[[registry]]\nlocation = \"r.example\"\n[aliases]\n\"x\" = \"r.example/x\"\n",
            Path::new("b.conf"),
        )
        .unwrap();
        assert_eq!(c.registries.len(), 1);
        assert!(!c.registries[0].insecure);
        assert_eq!(c.aliases["x"], "r.example/x");
        let err = RegistriesConf::default()
            .merge_str("[[registry]\n", Path::new("bad.conf"))
            .unwrap_err();
        assert!(err.to_string().contains("bad.conf"), "{err}");
    }
}
