//! Image source references in containers-transports(5) syntax.

use std::path::PathBuf;

use crate::error::StoreError;

/// A parsed `SRC` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRef {
    /// `oci:DIR[:REF]`
    OciDir {
        /// Layout directory.
        path: PathBuf,
        /// `org.opencontainers.image.ref.name` to pick, if any.
        reference: Option<String>,
    },
    /// `oci-archive:FILE[:REF]`
    OciArchive {
        /// Tar of an OCI layout.
        path: PathBuf,
        /// Reference to pick, if any.
        reference: Option<String>,
    },
    /// `docker-archive:FILE[:NAME|:@INDEX]`
    DockerArchive {
        /// `docker save` / `podman save` tar.
        path: PathBuf,
        /// `RepoTags` entry to pick.
        reference: Option<String>,
    },
    /// `containers-storage:[[DRIVER@]ROOT[+RUNROOT][:OPTIONS]]IMAGE`
    ContainersStorage {
        /// Graph root; podman's default when absent.
        root: Option<PathBuf>,
        /// Image name or ID.
        image: String,
    },
}

impl SourceRef {
    /// Parse `SRC`. Transports we know of but do not implement get
    /// [`StoreError::UnsupportedTransport`].
    pub fn parse(src: &str) -> Result<Self, StoreError> {
        let bad = |m: &str| StoreError::BadReference(src.to_string(), m.to_string());
        let (transport, rest) = src
            .split_once(':')
            .ok_or_else(|| bad("expected TRANSPORT:REFERENCE, e.g. oci-archive:image.tar"))?;
        let split_path = |rest: &str| -> (PathBuf, Option<String>) {
            // FILE[:REF]: the reference is after the last ':' unless that is
            // part of the path (no ':' allowed in refs of paths we create).
            match rest.rsplit_once(':') {
                Some((p, r)) if !p.is_empty() && !r.contains('/') => (
                    PathBuf::from(p),
                    Some(r.to_string()).filter(|r| !r.is_empty()),
                ),
                _ => (PathBuf::from(rest), None),
            }
        };
        match transport {
            "oci" | "oci-archive" | "docker-archive" => {
                if rest.is_empty() {
                    return Err(bad("missing path"));
                }
                let (path, reference) = if transport == "docker-archive" {
                    // NAME may contain ':' (repo:tag): split at the first ':' after the path.
                    match rest.split_once(':') {
                        Some((p, r)) if !p.is_empty() => (
                            PathBuf::from(p),
                            Some(r.to_string()).filter(|r| !r.is_empty()),
                        ),
                        _ => (PathBuf::from(rest), None),
                    }
                } else {
                    split_path(rest)
                };
                Ok(match transport {
                    "oci" => SourceRef::OciDir { path, reference },
                    "oci-archive" => SourceRef::OciArchive { path, reference },
                    _ => SourceRef::DockerArchive { path, reference },
                })
            }
            "containers-storage" => {
                let (root, image) = if let Some(spec) = rest.strip_prefix('[') {
                    let (spec, image) = spec
                        .split_once(']')
                        .ok_or_else(|| bad("unterminated [store specification]"))?;
                    let spec = spec.split_once('@').map(|(_, r)| r).unwrap_or(spec);
                    let root = spec.split(['+', ':']).next().unwrap_or("");
                    (
                        Some(PathBuf::from(root)).filter(|p| !p.as_os_str().is_empty()),
                        image,
                    )
                } else {
                    (None, rest)
                };
                if image.is_empty() {
                    return Err(bad("missing image name"));
                }
                Ok(SourceRef::ContainersStorage {
                    root,
                    image: image.to_string(),
                })
            }
            "docker" | "docker-daemon" | "dir" | "ostree" | "sif" | "atomic" | "tarball" => {
                Err(StoreError::UnsupportedTransport {
                    transport: transport.to_string(),
                })
            }
            other => Err(StoreError::UnsupportedTransport {
                transport: other.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transports() {
        assert_eq!(
            SourceRef::parse("oci:/tmp/x:latest").unwrap(),
            SourceRef::OciDir {
                path: "/tmp/x".into(),
                reference: Some("latest".into())
            }
        );
        assert_eq!(
            SourceRef::parse("oci-archive:/tmp/x.tar").unwrap(),
            SourceRef::OciArchive {
                path: "/tmp/x.tar".into(),
                reference: None
            }
        );
        assert_eq!(
            SourceRef::parse("docker-archive:/a.tar:localhost/x:1").unwrap(),
            SourceRef::DockerArchive {
                path: "/a.tar".into(),
                reference: Some("localhost/x:1".into())
            }
        );
        assert_eq!(
            SourceRef::parse("containers-storage:[overlay@/s+/r]localhost/x:1").unwrap(),
            SourceRef::ContainersStorage {
                root: Some("/s".into()),
                image: "localhost/x:1".into()
            }
        );
        assert!(matches!(
            SourceRef::parse("docker://quay.io/x"),
            Err(StoreError::UnsupportedTransport { .. })
        ));
        assert!(matches!(
            SourceRef::parse("foo:bar"),
            Err(StoreError::UnsupportedTransport { .. })
        ));
        assert!(SourceRef::parse("nocolon").is_err());
    }
}
