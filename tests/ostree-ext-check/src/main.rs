//! `unistore-ostree-ext-check REPO`: what the `ostree-ext` crate (ostree-rs-ext,
//! the library behind `ostree container image …`, rpm-ostree and bootc) sees
//! in an ostree repository, printed as JSON on stdout.
//!
//! A test helper for `tests/src/ostree.rs`, not part of unistore. It only
//! reads: the repository is opened with libostree (read-only when the
//! filesystem is, as on a unistore mount) and the calls below are ostree-ext's
//! query functions, none of which writes:
//!
//! - `container::store::list_images` (the refs under `ostree/container/image/`,
//!   un-escaped with `refescape`);
//! - `container::store::query_image` for each (resolves the merge commit and
//!   parses `ostree.manifest-digest`, `ostree.manifest`,
//!   `ostree.container.image-config`; fails unless the first layer's
//!   `ostree/container/blob/…` ref resolves), and `query_image_commit` on the
//!   merge commit checksum it returned;
//! - `container::store::manifest_digest_from_commit` and
//!   `image_filtered_content_warning` (which parses `ostree.tar-filtered` as
//!   `a{sa{su}}`);
//! - for every manifest layer, the layer ref ostree-ext derives
//!   (`refescape::prefix_escape_for_ref("ostree/container/blob", digest)`, as its
//!   `query_layer` does) and whether it resolves (`ManifestLayerState.commit`).
//!
//! Any error (a ref it cannot un-escape, metadata of the wrong type, a missing
//! base layer ref) ends the program with a non-zero status and the error chain
//! on stderr.

use std::io::Write as _;

use anyhow::{anyhow, Context as _, Result};
use ostree_ext::container::store;
use ostree_ext::container::ImageReference;
use ostree_ext::ostree;
use ostree_ext::{gio, glib};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// ostree-ext's prefix for layer refs (`LAYER_PREFIX`, private in the crate).
const LAYER_PREFIX: &str = "ostree/container/blob";
/// ostree-ext's prefix for image refs (`IMAGE_PREFIX`, private in the crate).
const IMAGE_PREFIX: &str = "ostree/container/image";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [repo_path] = args.as_slice() else {
        let _ = writeln!(std::io::stderr(), "usage: unistore-ostree-ext-check REPO");
        std::process::exit(2);
    };
    match check(repo_path) {
        Ok(v) => {
            let mut out = std::io::stdout().lock();
            let text = serde_json::to_string_pretty(&v).expect("JSON values serialize");
            if writeln!(out, "{text}").is_err() {
                std::process::exit(1);
            }
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "unistore-ostree-ext-check: {e:#}");
            std::process::exit(1);
        }
    }
}

fn check(repo_path: &str) -> Result<Value> {
    let repo = ostree::Repo::new_for_path(repo_path);
    repo.open(gio::Cancellable::NONE)
        .with_context(|| format!("opening ostree repository {repo_path}"))?;
    let writable = repo.is_writable().is_ok();

    let mut images = Vec::new();
    for name in store::list_images(&repo).context("list_images")? {
        images.push(check_image(&repo, &name).with_context(|| format!("image {name}"))?);
    }

    let layer_refs = repo
        .list_refs_ext(
            Some(LAYER_PREFIX),
            ostree::RepoListRefsExtFlags::empty(),
            gio::Cancellable::NONE,
        )
        .context("listing layer refs")?;
    let mut layer_refs: Vec<Value> = layer_refs
        .iter()
        .map(|(r, commit)| {
            let digest = ostree_ext::refescape::unprefix_unescape_ref(LAYER_PREFIX, r)?;
            Ok(json!({ "ref": r.as_str(), "digest": digest, "commit": commit.as_str() }))
        })
        .collect::<Result<_>>()?;
    layer_refs.sort_by(|a, b| a["ref"].as_str().cmp(&b["ref"].as_str()));

    Ok(json!({
        "repo": repo_path,
        "writable": writable,
        "images": images,
        "layer_refs": layer_refs,
    }))
}

fn check_image(repo: &ostree::Repo, name: &str) -> Result<Value> {
    let imgref = ImageReference::try_from(name).context("parsing the image reference")?;
    let image_ref =
        ostree_ext::refescape::prefix_escape_for_ref(IMAGE_PREFIX, &imgref.to_string())?;
    let state = store::query_image(repo, &imgref)
        .context("query_image")?
        .ok_or_else(|| anyhow!("query_image found no image for a listed reference"))?;
    let by_commit =
        store::query_image_commit(repo, &state.merge_commit).context("query_image_commit")?;
    if by_commit != state {
        return Err(anyhow!(
            "query_image_commit({}) differs from query_image",
            state.merge_commit
        ));
    }

    // The merge commit as ostree-ext's other helpers read it.
    let (commit, _) = repo
        .load_commit(&state.merge_commit)
        .context("loading the merge commit")?;
    let digest_from_commit = store::manifest_digest_from_commit(&commit)?;
    let meta = glib::VariantDict::new(Some(&commit.child_value(0)));
    let manifest_text: Option<String> = meta.lookup("ostree.manifest")?;
    let config_text: Option<String> = meta.lookup("ostree.container.image-config")?;
    let importer_version: Option<String> = meta.lookup("ostree.importer.version")?;
    let filtered_warning = store::image_filtered_content_warning(repo, &imgref)
        .context("image_filtered_content_warning")?;

    // Every layer as ostree-ext's query_layer sees it (ManifestLayerState).
    let mut layers = Vec::new();
    for layer in state.manifest.layers() {
        let digest = layer.digest().to_string();
        let layer_ref = ostree_ext::refescape::prefix_escape_for_ref(LAYER_PREFIX, &digest)?;
        let commit = repo
            .resolve_rev(&layer_ref, true)
            .with_context(|| format!("resolving {layer_ref}"))?
            .map(|c| c.to_string());
        let importer_version = match &commit {
            Some(c) => {
                let (obj, _) = repo.load_commit(c)?;
                let m = glib::VariantDict::new(Some(&obj.child_value(0)));
                m.lookup::<String>("ostree.importer.version")?
            }
            None => None,
        };
        layers.push(json!({
            "digest": digest,
            "size": layer.size(),
            "media_type": layer.media_type().to_string(),
            "ostree_ref": layer_ref,
            "commit": commit,
            "importer_version": importer_version,
        }));
    }

    let config = &state.configuration;
    Ok(json!({
        "reference": name,
        "transport": imgref.transport.to_string(),
        "name": imgref.name,
        "ostree_ref": image_ref,
        "merge_commit": state.merge_commit,
        "base_commit": state.base_commit,
        "manifest_digest": state.manifest_digest.to_string(),
        "manifest_digest_from_commit": digest_from_commit.to_string(),
        "manifest_sha256": manifest_text.as_deref().map(sha256),
        "manifest_layers": state.manifest.layers().len(),
        "config_digest": state.manifest.config().digest().to_string(),
        "config_sha256": config_text.as_deref().map(sha256),
        "architecture": config.architecture().to_string(),
        "os": config.os().to_string(),
        "diff_ids": config.rootfs().diff_ids(),
        "version": state.version(),
        "importer_version": importer_version,
        "filtered_content_warning": filtered_warning,
        "cached_update": state.cached_update.is_some(),
        "layers": layers,
    }))
}

fn sha256(s: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(s.as_bytes())))
}
