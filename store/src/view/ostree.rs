//! The ostree view: a read-only `bare` repository with one commit per image.
//! (Under construction: currently an empty repository skeleton.)

use std::collections::BTreeMap;

use super::tree::{Attr, Content, Node, Vfs};
use crate::catalog::Catalog;
use crate::repo::Store;

/// Nodes that survive catalog reloads.
#[derive(Debug, Default)]
pub struct OstreeCache {}

/// Build the view for `cat`; returns the node of the repository root.
pub fn build(
    _store: &Store,
    vfs: &Vfs,
    _cat: &Catalog,
    _cache: &mut OstreeCache,
) -> anyhow::Result<u64> {
    Ok(vfs.push(Node::new(
        Attr::dir(0o755),
        Content::Dir(BTreeMap::new()),
        true,
    )))
}
