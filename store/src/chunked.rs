//! zstd:chunked partial fetch: download only the file contents the store
//! lacks and still reproduce the layer's tar bit for bit.
//!
//! A zstd:chunked blob (containers/storage's `pkg/chunked/compressor`) is a
//! sequence of zstd frames whose concatenated output is the layer tar. Tar
//! headers (with the padding of the previous member) sit in frames between
//! file contents; every regular file's content starts a new frame (large files
//! are split into several frames, `chunk` entries of the TOC) and the frame
//! after its last byte starts again with tar header bytes. The TOC, a JSON
//! table of every member with the blob range `[offset, endOffset)` of its
//! content and the sha256 of that content, is zstd-compressed inside a
//! skippable frame near the end (newer writers add a tar-split skippable
//! frame after it), followed by a skippable footer frame. The manifest's
//! layer annotations give the TOC's position and its digest, so a client
//! fetches the TOC with one range request, without reading the footer.
//!
//! Use, per layer:
//! 1. [`TocLocation::from_annotations`] (None: an ordinary blob, fetch it whole);
//! 2. fetch `TocLocation::range()`, then [`Toc::parse`] (verifies the digest);
//! 3. [`Toc::plan`] with a lookup of local content ([`ContentMap::find`]);
//! 4. fetch [`Plan::fetch_ranges`] and hand their bytes, concatenated in plan
//!    order, to [`reassemble`], which yields the uncompressed tar;
//! 5. import that tar as an uncompressed layer: the importer checks its
//!    diffID, so a lying TOC or a wrong local object shows as a digest
//!    mismatch and nothing is committed.
//!
//! Only whole files are reused (a file's content digest must match); the
//! per-chunk digests are not used. A file is reused only when its compressed
//! range is at least [`PlanOptions::merge_gap`] long: skipping a shorter one
//! would split a range request to save fewer bytes than a request costs, so it
//! is fetched with its neighbours instead. This also makes tiny files
//! irrelevant (their compressed range is far below the gap).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Take, Write};
use std::ops::Range;
use std::path::PathBuf;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::error::StoreError;
use crate::index::{Data, Kind};
use crate::repo::Store;

/// Annotation key prefixes: current c/storage, then the original spelling
/// (c/storage ≤ 1.45, skopeo 1.9).
pub const ANNOTATION_PREFIXES: [&str; 2] = [
    "io.github.containers.zstd-chunked.",
    "io.containers.zstd-chunked.",
];
/// Largest TOC accepted, compressed or not (containers/storage's `maxTocSize`).
pub const MAX_TOC_SIZE: u64 = 150 << 20;
/// Size of a zstd skippable frame header (magic + length).
const SKIPPABLE_HEADER: u64 = 8;
/// Default [`PlanOptions::merge_gap`].
pub const DEFAULT_MERGE_GAP: u64 = 64 << 10;
/// File name (under the store root) of the content-digest cache.
pub const CONTENT_CACHE: &str = "cache/content-sha256";

const WHAT: &str = "zstd:chunked TOC";

fn bad(problem: impl Into<String>) -> StoreError {
    StoreError::bad_input(WHAT, problem)
}

/// Where a layer blob's TOC is, from the layer descriptor's annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TocLocation {
    /// Offset of the compressed TOC in the blob (after its skippable frame header).
    pub offset: u64,
    /// Compressed TOC length.
    pub length: u64,
    /// Uncompressed TOC length.
    pub uncompressed_length: u64,
    /// `sha256:<hex>` of the compressed TOC.
    pub checksum: String,
    /// The tar-split frame (offset, length, uncompressed length), if announced
    /// (not needed here: the tar headers are fetched as frames).
    pub tar_split: Option<(u64, u64, u64)>,
}

fn parse_numbers(key: &str, value: &str, n: usize) -> Result<Vec<u64>, StoreError> {
    let parts: Vec<&str> = value.split(':').collect();
    let nums: Option<Vec<u64>> = parts
        .iter()
        .map(|p| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                p.parse().ok()
            }
        })
        .collect();
    match nums {
        Some(v) if v.len() == n => Ok(v),
        _ => Err(StoreError::bad_input(
            "layer annotations",
            format!("{key}: expected {n} decimal numbers separated by `:`, got {value:?}"),
        )),
    }
}

/// `sha256:<64 lowercase hex>` → the hex part.
fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(hex)
}

impl TocLocation {
    /// Read the zstd:chunked annotations (either key spelling). `Ok(None)`
    /// when the layer is not zstd:chunked; an error when the annotations are
    /// present but malformed or incomplete.
    pub fn from_annotations(
        annotations: &HashMap<String, String>,
    ) -> Result<Option<TocLocation>, StoreError> {
        for prefix in ANNOTATION_PREFIXES {
            let pos_key = format!("{prefix}manifest-position");
            let sum_key = format!("{prefix}manifest-checksum");
            let split_key = format!("{prefix}tarsplit-position");
            let (pos, sum) = match (annotations.get(&pos_key), annotations.get(&sum_key)) {
                (None, None) => continue,
                (Some(p), Some(s)) => (p, s),
                (Some(_), None) => {
                    return Err(StoreError::bad_input(
                        "layer annotations",
                        format!("{pos_key} without {sum_key}"),
                    ))
                }
                (None, Some(_)) => {
                    return Err(StoreError::bad_input(
                        "layer annotations",
                        format!("{sum_key} without {pos_key}"),
                    ))
                }
            };
            let v = parse_numbers(&pos_key, pos, 4)?;
            let bad_ann = |m: String| StoreError::bad_input("layer annotations", m);
            if v[3] != 1 {
                return Err(bad_ann(format!(
                    "{pos_key}: TOC type {} (only 1, zstd-compressed JSON, is known)",
                    v[3]
                )));
            }
            if v[0] < SKIPPABLE_HEADER || v[1] == 0 || v[0].checked_add(v[1]).is_none() {
                return Err(bad_ann(format!(
                    "{pos_key}: impossible TOC position {pos:?}"
                )));
            }
            if v[1] > MAX_TOC_SIZE || v[2] > MAX_TOC_SIZE {
                return Err(bad_ann(format!(
                    "{pos_key}: TOC larger than {MAX_TOC_SIZE} bytes"
                )));
            }
            if sha256_hex(sum).is_none() {
                return Err(bad_ann(format!(
                    "{sum_key}: expected sha256:<64 hex digits>, got {sum:?}"
                )));
            }
            let tar_split = match annotations.get(&split_key) {
                None => None,
                Some(s) => {
                    let t = parse_numbers(&split_key, s, 3)?;
                    Some((t[0], t[1], t[2]))
                }
            };
            return Ok(Some(TocLocation {
                offset: v[0],
                length: v[1],
                uncompressed_length: v[2],
                checksum: sum.clone(),
                tar_split,
            }));
        }
        Ok(None)
    }

    /// The blob range holding the compressed TOC (what to fetch first).
    pub fn range(&self) -> Range<u64> {
        self.offset..self.offset.saturating_add(self.length)
    }

    /// End of the tar data: the TOC's skippable frame starts here and nothing
    /// after it decompresses to anything.
    pub fn data_end(&self) -> u64 {
        self.offset.saturating_sub(SKIPPABLE_HEADER)
    }
}

/// One TOC entry (containers/storage's `FileMetadata`; unknown fields ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TocEntry {
    /// `reg`, `hardlink`, `symlink`, `dir`, `char`, `block`, `fifo` or `chunk`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Path as in the tar header.
    pub name: String,
    /// Link target.
    #[serde(rename = "linkName", default)]
    pub link_name: String,
    /// Mode bits (with file-type bits for some writers).
    #[serde(default)]
    pub mode: u64,
    /// Content size of regular files.
    #[serde(default)]
    pub size: u64,
    /// Owner.
    #[serde(default)]
    pub uid: u64,
    /// Group.
    #[serde(default)]
    pub gid: u64,
    /// Modification time (RFC 3339).
    #[serde(default)]
    pub modtime: Option<String>,
    /// Device major.
    #[serde(rename = "devMajor", default)]
    pub dev_major: u64,
    /// Device minor.
    #[serde(rename = "devMinor", default)]
    pub dev_minor: u64,
    /// Extended attributes (values base64).
    #[serde(default)]
    pub xattrs: BTreeMap<String, String>,
    /// `sha256:<hex>` of the whole content (regular files with content).
    #[serde(default)]
    pub digest: String,
    /// Blob offset of the content's first frame (or of this chunk's frame).
    #[serde(default)]
    pub offset: u64,
    /// Blob offset after the content's last frame (regular entries).
    #[serde(rename = "endOffset", default)]
    pub end_offset: u64,
    /// Chunk length (uncompressed).
    #[serde(rename = "chunkSize", default)]
    pub chunk_size: u64,
    /// Chunk position in the file (uncompressed).
    #[serde(rename = "chunkOffset", default)]
    pub chunk_offset: u64,
    /// `sha256:` of the chunk.
    #[serde(rename = "chunkDigest", default)]
    pub chunk_digest: String,
    /// `""` (data) or `zeros`.
    #[serde(rename = "chunkType", default)]
    pub chunk_type: String,
}

#[derive(Deserialize)]
struct RawToc {
    version: u64,
    #[serde(default)]
    entries: Vec<TocEntry>,
    #[serde(rename = "tarSplitDigest", default)]
    tar_split_digest: String,
}

/// A regular file with content, as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TocFile {
    /// Index of its `reg` entry in [`Toc::entries`].
    pub entry: usize,
    /// Content size.
    pub size: u64,
    /// Hex sha256 of the content (None for other digest algorithms).
    pub sha256: Option<String>,
    /// Blob range of all its content frames (chunks included).
    pub range: Range<u64>,
}

/// A parsed, verified TOC.
#[derive(Debug, Clone)]
pub struct Toc {
    /// Entries as the TOC lists them.
    pub entries: Vec<TocEntry>,
    /// `sha256:` of the tar-split frame, if the TOC names one.
    pub tar_split_digest: Option<String>,
    /// Regular files with content, sorted by blob offset, ranges disjoint.
    pub files: Vec<TocFile>,
    location: TocLocation,
}

impl Toc {
    /// Verify and parse the compressed TOC (the bytes of [`TocLocation::range`]).
    /// Checks the digest, the sizes, that every content range lies in the tar
    /// data before the TOC, that chunks follow their file and stay inside its
    /// range, and that no two files' ranges overlap.
    pub fn parse(compressed_toc: &[u8], loc: &TocLocation) -> Result<Toc, StoreError> {
        if compressed_toc.len() as u64 != loc.length {
            return Err(bad(format!(
                "{} bytes, the annotation says {}",
                compressed_toc.len(),
                loc.length
            )));
        }
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(compressed_toc)));
        if actual != loc.checksum {
            return Err(StoreError::DigestMismatch {
                file: WHAT.into(),
                expected: loc.checksum.clone(),
                actual,
            });
        }
        if loc.uncompressed_length > MAX_TOC_SIZE {
            return Err(bad(format!("larger than {MAX_TOC_SIZE} bytes")));
        }
        let mut json = Vec::new();
        zstd::stream::read::Decoder::new(compressed_toc)
            .and_then(|d| d.take(loc.uncompressed_length + 1).read_to_end(&mut json))
            .map_err(|e| bad(format!("decompressing: {e}")))?;
        if json.len() as u64 != loc.uncompressed_length {
            return Err(bad(format!(
                "decompresses to {}{} bytes, the annotation says {}",
                if json.len() as u64 > loc.uncompressed_length {
                    "more than "
                } else {
                    ""
                },
                json.len().min(loc.uncompressed_length as usize),
                loc.uncompressed_length
            )));
        }
        let raw: RawToc =
            serde_json::from_slice(&json).map_err(|e| bad(format!("parsing JSON: {e}")))?;
        if raw.version != 1 {
            return Err(bad(format!("version {} (only 1 is known)", raw.version)));
        }
        let data_end = loc.data_end();
        let mut files = Vec::new();
        let mut i = 0;
        while i < raw.entries.len() {
            let e = &raw.entries[i];
            i += 1;
            match e.kind.as_str() {
                "chunk" => {
                    return Err(bad(format!("chunk of {:?} without its file", e.name)));
                }
                "reg" => {}
                "hardlink" | "symlink" | "dir" | "char" | "block" | "fifo" => continue,
                other => return Err(bad(format!("{:?}: unknown entry type {other:?}", e.name))),
            }
            let first = i - 1;
            let mut last_chunk = e.offset;
            while i < raw.entries.len() && raw.entries[i].kind == "chunk" {
                let c = &raw.entries[i];
                if c.name != e.name {
                    return Err(bad(format!(
                        "chunk of {:?} after file {:?}",
                        c.name, e.name
                    )));
                }
                if c.offset < last_chunk || c.offset >= e.end_offset {
                    return Err(bad(format!(
                        "{:?}: chunk at {} outside or out of order in {}..{}",
                        e.name, c.offset, e.offset, e.end_offset
                    )));
                }
                last_chunk = c.offset;
                i += 1;
            }
            if e.size == 0 {
                continue;
            }
            if e.offset == 0 || e.offset >= e.end_offset || e.end_offset > data_end {
                return Err(bad(format!(
                    "{:?}: content range {}..{} not inside the tar data 0..{data_end}",
                    e.name, e.offset, e.end_offset
                )));
            }
            let sha256 = if e.digest.starts_with("sha256:") {
                Some(
                    sha256_hex(&e.digest)
                        .ok_or_else(|| bad(format!("{:?}: bad digest {:?}", e.name, e.digest)))?
                        .to_string(),
                )
            } else {
                None
            };
            files.push(TocFile {
                entry: first,
                size: e.size,
                sha256,
                range: e.offset..e.end_offset,
            });
        }
        files.sort_by_key(|f| f.range.start);
        for w in files.windows(2) {
            if w[1].range.start < w[0].range.end {
                return Err(bad(format!(
                    "content ranges of {:?} ({:?}) and {:?} ({:?}) overlap",
                    raw.entries[w[0].entry].name,
                    w[0].range,
                    raw.entries[w[1].entry].name,
                    w[1].range
                )));
            }
        }
        let tar_split_digest = (!raw.tar_split_digest.is_empty()).then_some(raw.tar_split_digest);
        Ok(Toc {
            entries: raw.entries,
            tar_split_digest,
            files,
            location: loc.clone(),
        })
    }

    /// Where this TOC was found.
    pub fn location(&self) -> &TocLocation {
        &self.location
    }

    /// Plan a partial fetch of the blob (`blob_size` bytes, from the
    /// manifest). `have(sha256_hex, size)` returns local content with that
    /// digest and size; it is asked only about files worth skipping.
    pub fn plan(
        &self,
        blob_size: u64,
        opts: &PlanOptions,
        mut have: impl FnMut(&str, u64) -> Option<LocalContent>,
    ) -> Result<Plan, StoreError> {
        let loc = &self.location;
        if loc.offset < SKIPPABLE_HEADER || loc.offset.saturating_add(loc.length) > blob_size {
            return Err(bad(format!(
                "TOC at {:?} past the end of the {blob_size}-byte blob",
                loc.range()
            )));
        }
        let data_end = loc.data_end();
        let mut plan = Plan {
            segments: Vec::new(),
            fetch_bytes: 0,
            reused_bytes: 0,
            reused_compressed_bytes: 0,
            reused_files: 0,
            blob_size,
        };
        let mut cursor = 0;
        for f in &self.files {
            let Some(sha) = &f.sha256 else { continue };
            if f.range.end - f.range.start < opts.merge_gap.max(1) {
                continue;
            }
            let Some(content) = have(sha, f.size) else {
                continue;
            };
            if let LocalContent::Inline(b) = &content {
                if b.len() as u64 != f.size {
                    continue;
                }
            }
            if f.range.start > cursor {
                plan.segments.push(Segment::Fetch(cursor..f.range.start));
            }
            plan.segments.push(Segment::Local {
                size: f.size,
                content,
            });
            plan.reused_bytes += f.size;
            plan.reused_compressed_bytes += f.range.end - f.range.start;
            plan.reused_files += 1;
            cursor = f.range.end;
        }
        if data_end > cursor {
            plan.segments.push(Segment::Fetch(cursor..data_end));
        }
        plan.fetch_bytes = plan.fetch_ranges().map(|r| r.end - r.start).sum();
        Ok(plan)
    }
}

/// Tuning of [`Toc::plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// A file is reused only if its compressed range is at least this long;
    /// shorter ones are fetched with the ranges around them (one request
    /// instead of two, for fewer bytes than a request's round trip costs).
    pub merge_gap: u64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            merge_gap: DEFAULT_MERGE_GAP,
        }
    }
}

/// Content the store already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalContent {
    /// The bytes themselves.
    Inline(Vec<u8>),
    /// A composefs object by hex ID.
    Object(String),
}

/// One piece of the tar, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Blob bytes to fetch and decompress (whole zstd frames).
    Fetch(Range<u64>),
    /// A file's content from the store, in place of its frames.
    Local {
        /// Content size.
        size: u64,
        /// Where it is.
        content: LocalContent,
    },
}

/// What to fetch and what to take from the store, for one layer blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The tar in order: fetched frames and local files.
    pub segments: Vec<Segment>,
    /// Blob bytes to fetch (sum of [`Plan::fetch_ranges`]).
    pub fetch_bytes: u64,
    /// Uncompressed bytes taken from the store.
    pub reused_bytes: u64,
    /// Blob bytes not fetched thanks to them (the TOC and what follows aside).
    pub reused_compressed_bytes: u64,
    /// Number of files taken from the store.
    pub reused_files: usize,
    /// The blob's size.
    pub blob_size: u64,
}

impl Plan {
    /// Blob ranges to fetch, sorted, disjoint and not adjacent; their bytes,
    /// concatenated in this order, are what [`reassemble`] reads.
    pub fn fetch_ranges(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.segments.iter().filter_map(|s| match s {
            Segment::Fetch(r) => Some(r.clone()),
            Segment::Local { .. } => None,
        })
    }
}

type FrameDecoder<R> = zstd::stream::read::Decoder<'static, BufReader<Take<R>>>;

enum State<R> {
    Idle(R),
    Fetch(FrameDecoder<R>),
    Local {
        reader: Box<dyn Read + Send>,
        remaining: u64,
        input: R,
    },
    Poisoned,
}

/// The uncompressed tar of a planned layer (see [`reassemble`]).
pub struct Reassembler<'a, R> {
    store: &'a Store,
    segments: std::vec::IntoIter<Segment>,
    state: State<R>,
}

impl<R> std::fmt::Debug for Reassembler<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reassembler")
            .field("segments_left", &self.segments.len())
            .finish()
    }
}

/// Rebuild the layer tar: `fetched` yields the bytes of
/// [`Plan::fetch_ranges`] concatenated in order; fetched frames are
/// decompressed, local files are read from `store` in their place.
pub fn reassemble<R: Read>(plan: Plan, store: &Store, fetched: R) -> Reassembler<'_, R> {
    Reassembler {
        store,
        segments: plan.segments.into_iter(),
        state: State::Idle(fetched),
    }
}

fn io_err(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl<R: Read> Reassembler<'_, R> {
    /// Move to the next segment; false at the end.
    fn next_segment(&mut self) -> io::Result<bool> {
        let input = match std::mem::replace(&mut self.state, State::Poisoned) {
            State::Idle(input) => input,
            State::Fetch(dec) => {
                let buffered = dec.finish();
                if !buffered.buffer().is_empty() {
                    return Err(io_err(
                        "zstd:chunked: data after the last frame of a range".into(),
                    ));
                }
                let take = buffered.into_inner();
                if take.limit() != 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "zstd:chunked: fetched data ended early",
                    ));
                }
                take.into_inner()
            }
            State::Local {
                remaining, input, ..
            } => {
                debug_assert_eq!(remaining, 0);
                input
            }
            State::Poisoned => {
                return Err(io_err("zstd:chunked: reassembly failed earlier".into()))
            }
        };
        match self.segments.next() {
            None => {
                self.state = State::Idle(input);
                Ok(false)
            }
            Some(Segment::Fetch(r)) => {
                let dec = zstd::stream::read::Decoder::new(input.take(r.end - r.start))?;
                self.state = State::Fetch(dec);
                Ok(true)
            }
            Some(Segment::Local { size, content }) => {
                let reader: Box<dyn Read + Send> = match content {
                    LocalContent::Inline(b) => Box::new(io::Cursor::new(b)),
                    LocalContent::Object(hex) => {
                        let fd = self
                            .store
                            .open_object(&hex)
                            .map_err(|e| io::Error::other(format!("object {hex}: {e:#}")))?;
                        Box::new(File::from(fd))
                    }
                };
                self.state = State::Local {
                    reader,
                    remaining: size,
                    input,
                };
                Ok(true)
            }
        }
    }
}

impl<R: Read> Read for Reassembler<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match &mut self.state {
                State::Fetch(dec) => {
                    let n = dec.read(buf)?;
                    if n > 0 {
                        return Ok(n);
                    }
                }
                State::Local {
                    reader, remaining, ..
                } if *remaining > 0 => {
                    let want = buf
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    let n = reader.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "zstd:chunked: local content shorter than the TOC says",
                        ));
                    }
                    *remaining -= n as u64;
                    return Ok(n);
                }
                _ => {}
            }
            if !self.next_segment()? {
                return Ok(0);
            }
        }
    }
}

/// Local content by sha256 and size, over every layer the catalog's images
/// reference; built once per pull.
///
/// The layer indexes record object IDs (fs-verity digests), not plain
/// sha256s, so candidates of the wanted size are hashed on demand, and the
/// results (object → sha256, immutable facts) are kept in
/// [`CONTENT_CACHE`] under the store root. Reading needs no lock: a missing
/// or corrupt cache is rebuilt; concurrent savers replace it atomically
/// (last one wins, it is only a cache).
#[derive(Debug)]
pub struct ContentMap<'a> {
    store: &'a Store,
    by_size: HashMap<u64, Vec<String>>,
    known: HashMap<String, String>,
    dirty: bool,
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl<'a> ContentMap<'a> {
    /// Collect the regular files stored as objects in every layer of every
    /// image in the catalog (layers that cannot be read are skipped with a
    /// warning) and load the digest cache.
    pub fn build(store: &'a Store) -> anyhow::Result<ContentMap<'a>> {
        let cat = store.catalog()?;
        let mut layers = std::collections::HashSet::new();
        let mut by_size: HashMap<u64, Vec<String>> = HashMap::new();
        let mut objects = std::collections::HashSet::new();
        for entry in &cat.images {
            let rec = match store.image(entry) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("content map: image {}: {e:#}", entry.id);
                    continue;
                }
            };
            for layer in rec.layers {
                if !layers.insert(layer.meta.diff_id.clone()) {
                    continue;
                }
                let index = match store.layer_index(&layer.meta) {
                    Ok(i) => i,
                    Err(e) => {
                        tracing::warn!("content map: {e:#}");
                        continue;
                    }
                };
                for e in index.entries {
                    if let (Kind::File, Data::Object(hex)) = (e.kind, e.data) {
                        if objects.insert(hex.clone()) {
                            by_size.entry(e.size).or_default().push(hex);
                        }
                    }
                }
            }
        }
        let mut known = HashMap::new();
        if let Ok(text) = fs::read_to_string(Self::cache_path(store)) {
            for line in text.lines() {
                if let Some((obj, sha)) = line.split_once(' ') {
                    if is_hex64(obj) && is_hex64(sha) && objects.contains(obj) {
                        known.insert(obj.to_string(), sha.to_string());
                    }
                }
            }
        }
        Ok(ContentMap {
            store,
            by_size,
            known,
            dirty: false,
        })
    }

    fn cache_path(store: &Store) -> PathBuf {
        store.root().join(CONTENT_CACHE)
    }

    /// Number of distinct objects known.
    pub fn len(&self) -> usize {
        self.by_size.values().map(Vec::len).sum()
    }

    /// Whether the store holds no file objects.
    pub fn is_empty(&self) -> bool {
        self.by_size.is_empty()
    }

    fn hash_object(&self, hex: &str, size: u64) -> anyhow::Result<Option<String>> {
        let mut f = File::from(self.store.open_object(hex)?);
        let mut h = Sha256::new();
        let n = io::copy(&mut (&mut f).take(size + 1), &mut h)?;
        Ok((n == size).then(|| hex::encode(h.finalize())))
    }

    /// Local content with this sha256 (hex) and size, hashing candidates of
    /// that size not hashed before. Errors (an object removed by a
    /// concurrent `gc`) are logged and the candidate skipped: reuse is an
    /// optimisation, the caller then fetches.
    pub fn find(&mut self, sha256_hex: &str, size: u64) -> Option<LocalContent> {
        let candidates = self.by_size.get(&size)?.clone();
        for obj in &candidates {
            if self.known.get(obj).is_some_and(|s| s == sha256_hex) {
                return Some(LocalContent::Object(obj.clone()));
            }
        }
        for obj in candidates {
            if self.known.contains_key(&obj) {
                continue;
            }
            match self.hash_object(&obj, size) {
                Ok(Some(sha)) => {
                    let hit = sha == sha256_hex;
                    self.known.insert(obj.clone(), sha);
                    self.dirty = true;
                    if hit {
                        return Some(LocalContent::Object(obj));
                    }
                }
                Ok(None) => tracing::warn!("content map: object {obj} is not {size} bytes"),
                Err(e) => tracing::warn!("content map: object {obj}: {e:#}"),
            }
        }
        None
    }

    /// Write the digest cache if [`ContentMap::find`] computed new digests
    /// (temporary file, fsync, rename). No lock needed.
    pub fn save(&mut self) -> anyhow::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let path = Self::cache_path(self.store);
        let dir = path.parent().expect("cache path has a parent");
        fs::create_dir_all(dir)?;
        let mut text = String::with_capacity(self.known.len() * 130);
        let mut entries: Vec<_> = self.known.iter().collect();
        entries.sort();
        for (obj, sha) in entries {
            text.push_str(obj);
            text.push(' ');
            text.push_str(sha);
            text.push('\n');
        }
        let tmp = dir.join(format!(".content-sha256.{}.tmp", std::process::id()));
        let res = (|| -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res.map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::print_stderr)] // the hostile and fixture tests show what they saw
mod tests {
    use super::*;

    type TocEdit = Box<dyn Fn(&mut serde_json::Value)>;

    const REAL_BLOB: &[u8] = include_bytes!("../tests/data/zstd-chunked/layer.tar.zst");
    const REAL_ANNOTATIONS: &str = include_str!("../tests/data/zstd-chunked/annotations.json");

    fn real() -> (TocLocation, Toc) {
        let ann: HashMap<String, String> = serde_json::from_str(REAL_ANNOTATIONS).unwrap();
        let loc = TocLocation::from_annotations(&ann).unwrap().unwrap();
        let toc = Toc::parse(
            &REAL_BLOB[loc.offset as usize..][..loc.length as usize],
            &loc,
        )
        .unwrap();
        (loc, toc)
    }

    fn fetched(blob: &[u8], plan: &Plan) -> Vec<u8> {
        let mut out = Vec::new();
        for r in plan.fetch_ranges() {
            out.extend_from_slice(&blob[r.start as usize..r.end as usize]);
        }
        out
    }

    fn run(plan: Plan, store: &Store, input: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        reassemble(plan, store, input).read_to_end(&mut out)?;
        Ok(out)
    }

    fn scratch_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(&dir.path().join("s")).unwrap();
        (dir, store)
    }

    /// sha256 hex → content of every regular file in a tar.
    fn contents(tar_bytes: &[u8]) -> HashMap<String, Vec<u8>> {
        let mut ar = tar::Archive::new(tar_bytes);
        let mut map = HashMap::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            map.insert(hex::encode(Sha256::digest(&data)), data);
        }
        map
    }

    fn check_plan_shape(plan: &Plan, data_end: u64) {
        let ranges: Vec<_> = plan.fetch_ranges().collect();
        for w in ranges.windows(2) {
            assert!(
                w[0].end < w[1].start,
                "ranges sorted, disjoint, not adjacent"
            );
        }
        assert!(ranges.iter().all(|r| r.start < r.end && r.end <= data_end));
        assert_eq!(
            plan.fetch_bytes + plan.reused_compressed_bytes,
            data_end,
            "every data byte is fetched or replaced"
        );
    }

    #[test]
    fn real_blob_full_reassembly() {
        let (loc, toc) = real();
        assert_eq!(loc.data_end(), 3012);
        assert!(toc.files.iter().any(|f| f.size == 2298));
        let plan = toc
            .plan(REAL_BLOB.len() as u64, &PlanOptions::default(), |_, _| {
                panic!("nothing is worth asking about in a 4 KiB blob")
            })
            .unwrap();
        assert_eq!(plan.fetch_ranges().collect::<Vec<_>>(), vec![0..3012]);
        check_plan_shape(&plan, loc.data_end());
        let (_d, store) = scratch_store();
        let input = fetched(REAL_BLOB, &plan);
        let out = run(plan, &store, &input).unwrap();
        assert_eq!(out, zstd::decode_all(REAL_BLOB).unwrap());
        assert_eq!(
            hex::encode(Sha256::digest(&out)),
            "d7807d94983887d1191bab988096a4b80a8cceee1abadc8e20e957aa9f895c24"
        );
    }

    #[test]
    fn real_blob_every_file_local() {
        let (loc, toc) = real();
        let tar = zstd::decode_all(REAL_BLOB).unwrap();
        let local = contents(&tar);
        let opts = PlanOptions { merge_gap: 0 };
        let mut asked = 0;
        let plan = toc
            .plan(REAL_BLOB.len() as u64, &opts, |sha, size| {
                asked += 1;
                let c = local.get(sha)?;
                assert_eq!(c.len() as u64, size);
                Some(LocalContent::Inline(c.clone()))
            })
            .unwrap();
        assert_eq!(asked, toc.files.len());
        assert_eq!(plan.reused_files, toc.files.len());
        assert_eq!(
            plan.reused_bytes,
            toc.files.iter().map(|f| f.size).sum::<u64>()
        );
        assert!(plan.fetch_bytes < loc.data_end());
        check_plan_shape(&plan, loc.data_end());
        let (_d, store) = scratch_store();
        let input = fetched(REAL_BLOB, &plan);
        assert_eq!(input.len() as u64, plan.fetch_bytes);
        assert_eq!(run(plan, &store, &input).unwrap(), tar);
    }

    #[test]
    fn short_or_long_input_is_an_error() {
        let (_, toc) = real();
        let (_d, store) = scratch_store();
        let plan = toc
            .plan(
                REAL_BLOB.len() as u64,
                &PlanOptions { merge_gap: 0 },
                |_, _| None,
            )
            .unwrap();
        let input = fetched(REAL_BLOB, &plan);
        // Cut inside a frame, and at a frame boundary (the Berlin file starts at 158).
        assert!(run(plan.clone(), &store, &input[..2000]).is_err());
        let err = run(plan.clone(), &store, &input[..158]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        // Garbage instead of frames.
        assert!(run(plan, &store, &vec![0x55; input.len()]).is_err());
    }

    #[test]
    fn local_object_from_the_store() {
        let (loc, toc) = real();
        let tar = zstd::decode_all(REAL_BLOB).unwrap();
        let local = contents(&tar);
        let (_d, store) = scratch_store();
        let berlin = toc.files.iter().find(|f| f.size == 2298).unwrap();
        let sha = berlin.sha256.clone().unwrap();
        let id = store.repo().ensure_object(&local[&sha]).unwrap();
        let hex = composefs::fsverity::FsVerityHashValue::to_hex(&id);
        let plan = toc
            .plan(
                REAL_BLOB.len() as u64,
                &PlanOptions { merge_gap: 0 },
                |s, _| (s == sha).then(|| LocalContent::Object(hex.clone())),
            )
            .unwrap();
        assert_eq!(plan.reused_files, 1);
        assert_eq!(plan.fetch_ranges().count(), 2);
        assert_eq!(plan.fetch_bytes, loc.data_end() - (1217 - 158));
        let input = fetched(REAL_BLOB, &plan);
        assert_eq!(run(plan.clone(), &store, &input).unwrap(), tar);

        // A local object shorter than the TOC claims: an error, not a short tar.
        let short = store.repo().ensure_object(b"too short").unwrap();
        let mut bad_plan = plan;
        for s in &mut bad_plan.segments {
            if let Segment::Local { content, .. } = s {
                *content =
                    LocalContent::Object(composefs::fsverity::FsVerityHashValue::to_hex(&short));
            }
        }
        assert!(run(bad_plan, &store, &input).is_err());
    }

    /// An OCI layout whose one layer is the real zstd:chunked blob.
    fn oci_layout(dir: &std::path::Path) {
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).unwrap();
        let put = |data: &[u8]| {
            let hex = hex::encode(Sha256::digest(data));
            fs::write(blobs.join(&hex), data).unwrap();
            (format!("sha256:{hex}"), data.len())
        };
        let diff = hex::encode(Sha256::digest(zstd::decode_all(REAL_BLOB).unwrap()));
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff}")]},
        });
        let (cd, cs) = put(&serde_json::to_vec(&config).unwrap());
        let (ld, ls) = put(REAL_BLOB);
        let ann: serde_json::Value = serde_json::from_str(REAL_ANNOTATIONS).unwrap();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                        "digest": ld, "size": ls, "annotations": ann}],
        });
        let (md, ms) = put(&serde_json::to_vec(&manifest).unwrap());
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": "chunked"}}]});
        fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    }

    #[test]
    fn content_map_finds_stored_files_and_caches_digests() {
        let (d, store) = scratch_store();
        let layout = d.path().join("oci");
        oci_layout(&layout);
        let src = crate::SourceRef::parse(&format!("oci:{}", layout.display())).unwrap();
        crate::import(
            &store,
            &src,
            &crate::ImportOptions::default(),
            &mut crate::progress::NoProgress,
        )
        .unwrap();

        let (_, toc) = real();
        let berlin = toc.files.iter().find(|f| f.size == 2298).unwrap();
        let sha = berlin.sha256.clone().unwrap();
        let mut map = ContentMap::build(&store).unwrap();
        assert!(!map.is_empty());
        assert_eq!(map.find(&"0".repeat(64), 2298), None);
        assert_eq!(map.find(&sha, 2297), None);
        let found = map.find(&sha, 2298).unwrap();
        let LocalContent::Object(obj) = found.clone() else {
            panic!("{found:?}")
        };
        map.save().unwrap();
        let cache = fs::read_to_string(store.root().join(CONTENT_CACHE)).unwrap();
        assert!(cache.contains(&format!("{obj} {sha}\n")), "{cache}");

        // Through a plan, the importer's way.
        let plan = toc
            .plan(
                REAL_BLOB.len() as u64,
                &PlanOptions { merge_gap: 0 },
                |s, n| map.find(s, n),
            )
            .unwrap();
        assert_eq!(
            plan.reused_files, 1,
            "only Berlin is an object; the rest is inline"
        );
        let input = fetched(REAL_BLOB, &plan);
        assert_eq!(
            run(plan, &store, &input).unwrap(),
            zstd::decode_all(REAL_BLOB).unwrap()
        );

        // A corrupt cache is ignored and rebuilt.
        fs::write(
            store.root().join(CONTENT_CACHE),
            b"\0garbage\nnot hex at all\n",
        )
        .unwrap();
        let mut map = ContentMap::build(&store).unwrap();
        assert_eq!(map.find(&sha, 2298), Some(found));
        map.save().unwrap();
        let cache = fs::read_to_string(store.root().join(CONTENT_CACHE)).unwrap();
        assert_eq!(cache, format!("{obj} {sha}\n"));
    }

    // --- A minimal zstd:chunked writer, after containers/storage's layout. ---

    fn skippable(out: &mut Vec<u8>, data: &[u8]) {
        out.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }

    /// Files (name, content, chunk length); returns the blob, its
    /// annotations (new key spelling) and the tar. `edit` may alter the TOC.
    fn encode(
        files: &[(&str, Vec<u8>, usize)],
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> (Vec<u8>, HashMap<String, String>, Vec<u8>) {
        let (mut blob, mut tar, mut pending) = (Vec::new(), Vec::new(), Vec::new());
        let mut entries = vec![serde_json::json!({"type": "dir", "name": "d/", "mode": 0o755})];
        let mut h = tar::Header::new_ustar();
        h.set_path("d/").unwrap();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_cksum();
        pending.extend_from_slice(h.as_bytes());
        for (name, data, chunk) in files {
            let mut h = tar::Header::new_ustar();
            h.set_path(name).unwrap();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            pending.extend_from_slice(h.as_bytes());
            blob.extend(zstd::encode_all(&pending[..], 3).unwrap());
            tar.append(&mut pending);
            let start = blob.len() as u64;
            let mut chunks = Vec::new();
            for (i, c) in data.chunks(*chunk).enumerate() {
                chunks.push(serde_json::json!({"type": "chunk", "name": name,
                    "offset": blob.len(), "chunkSize": c.len(), "chunkOffset": i * chunk}));
                blob.extend(zstd::encode_all(c, 3).unwrap());
            }
            tar.extend_from_slice(data);
            let mut e = serde_json::json!({"type": "reg", "name": name, "mode": 0o644,
                "size": data.len(), "offset": start, "endOffset": blob.len(),
                "digest": format!("sha256:{}", hex::encode(Sha256::digest(data)))});
            entries.push(e.take());
            if chunks.len() > 1 {
                entries.last_mut().unwrap()["chunkSize"] = chunks[0]["chunkSize"].clone();
                entries.extend(chunks.into_iter().skip(1));
            }
            pending.resize(data.len().next_multiple_of(512) - data.len(), 0);
        }
        pending.extend_from_slice(&[0; 1024]);
        blob.extend(zstd::encode_all(&pending[..], 3).unwrap());
        tar.append(&mut pending);
        let mut toc = serde_json::json!({"version": 1, "entries": entries});
        edit(&mut toc);
        let json = serde_json::to_vec(&toc).unwrap();
        let compressed = zstd::encode_all(&json[..], 3).unwrap();
        let offset = blob.len() + 8;
        skippable(&mut blob, &compressed);
        let mut footer = Vec::new();
        for v in [offset as u64, compressed.len() as u64, json.len() as u64, 1] {
            footer.extend_from_slice(&v.to_le_bytes());
        }
        footer.extend_from_slice(b"GnUlInUx");
        skippable(&mut blob, &footer);
        let p = "io.github.containers.zstd-chunked.";
        let ann = HashMap::from([
            (
                format!("{p}manifest-checksum"),
                format!("sha256:{}", hex::encode(Sha256::digest(&compressed))),
            ),
            (
                format!("{p}manifest-position"),
                format!("{offset}:{}:{}:1", compressed.len(), json.len()),
            ),
        ]);
        (blob, ann, tar)
    }

    /// Incompressible bytes (xorshift), so compressed ranges are as long as the data.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn sample() -> Vec<(&'static str, Vec<u8>, usize)> {
        vec![
            ("d/big", noise(300_000, 1), 70_000),
            ("d/small", b"hello\n".to_vec(), 4096),
            ("d/mid", noise(100_000, 2), 1 << 20),
            ("d/other", noise(90_000, 3), 1 << 20),
        ]
    }

    fn parse_blob(blob: &[u8], ann: &HashMap<String, String>) -> Result<Toc, StoreError> {
        let loc = TocLocation::from_annotations(ann)?.unwrap();
        let r = loc.range();
        let Some(bytes) = blob.get(r.start as usize..r.end as usize) else {
            return Err(bad("TOC range past the end"));
        };
        Toc::parse(bytes, &loc)
    }

    #[test]
    fn chunked_files_reused_whole() {
        let files = sample();
        let (blob, ann, tar) = encode(&files, |_| {});
        assert_eq!(
            zstd::decode_all(&blob[..]).unwrap(),
            tar,
            "the writer is sound"
        );
        let toc = parse_blob(&blob, &ann).unwrap();
        assert_eq!(toc.entries.iter().filter(|e| e.kind == "chunk").count(), 4);
        assert_eq!(toc.files.len(), 4);
        // big (chunked) and other are local; mid is not.
        let local: HashMap<String, Vec<u8>> = [&files[0].1, &files[3].1, &files[1].1]
            .into_iter()
            .map(|d| (hex::encode(Sha256::digest(d)), d.clone()))
            .collect();
        let mut asked = Vec::new();
        let plan = toc
            .plan(blob.len() as u64, &PlanOptions::default(), |sha, size| {
                asked.push(size);
                local.get(sha).map(|d| LocalContent::Inline(d.clone()))
            })
            .unwrap();
        asked.sort();
        assert_eq!(
            asked,
            vec![90_000, 100_000, 300_000],
            "the tiny file is not asked about"
        );
        assert_eq!(plan.reused_files, 2);
        assert_eq!(plan.reused_bytes, 390_000);
        assert_eq!(plan.fetch_ranges().count(), 3);
        check_plan_shape(&plan, toc.location().data_end());
        assert!(plan.fetch_bytes < 110_000, "{}", plan.fetch_bytes);
        let (_d, store) = scratch_store();
        let input = fetched(&blob, &plan);
        assert_eq!(run(plan, &store, &input).unwrap(), tar);
    }

    #[test]
    fn annotations() {
        let none = HashMap::new();
        assert_eq!(TocLocation::from_annotations(&none).unwrap(), None);
        let sum = format!("sha256:{}", "a".repeat(64));
        let old = |pos: &str, sum: &str| {
            HashMap::from([
                (
                    "io.containers.zstd-chunked.manifest-position".to_string(),
                    pos.to_string(),
                ),
                (
                    "io.containers.zstd-chunked.manifest-checksum".to_string(),
                    sum.to_string(),
                ),
            ])
        };
        let loc = TocLocation::from_annotations(&old("573:430:2039:1", &sum))
            .unwrap()
            .unwrap();
        assert_eq!(
            (loc.offset, loc.length, loc.uncompressed_length),
            (573, 430, 2039)
        );
        assert_eq!(loc.range(), 573..1003);
        for (pos, s) in [
            ("573:430:2039", sum.as_str()),
            ("573:430:2039:2", &sum),
            ("573:-430:2039:1", &sum),
            ("573:430:2039:1:", &sum),
            ("+573:430:2039:1", &sum),
            ("4:430:2039:1", &sum),
            ("573:0:2039:1", &sum),
            ("18446744073709551615:430:2039:1", &sum),
            ("573:430:99999999999:1", &sum),
            ("573:430:2039:1", "sha256:abc"),
            ("573:430:2039:1", &sum.to_uppercase()),
        ] {
            let e = TocLocation::from_annotations(&old(pos, s)).unwrap_err();
            assert!(matches!(e, StoreError::BadInput { .. }), "{pos} {s}: {e}");
        }
        let mut only = old("573:430:2039:1", &sum);
        only.remove("io.containers.zstd-chunked.manifest-checksum");
        assert!(TocLocation::from_annotations(&only).is_err());
        let mut split = old("573:430:2039:1", &sum);
        split.insert(
            "io.containers.zstd-chunked.tarsplit-position".into(),
            "1:2:3".into(),
        );
        let loc = TocLocation::from_annotations(&split).unwrap().unwrap();
        assert_eq!(loc.tar_split, Some((1, 2, 3)));
        split.insert(
            "io.containers.zstd-chunked.tarsplit-position".into(),
            "1:2".into(),
        );
        assert!(TocLocation::from_annotations(&split).is_err());
    }

    #[test]
    fn hostile_tocs() {
        let files = sample();
        let expect_bad =
            |blob: &[u8], ann: &HashMap<String, String>, what: &str| match parse_blob(blob, ann) {
                Err(e @ (StoreError::BadInput { .. } | StoreError::DigestMismatch { .. })) => {
                    eprintln!("{what}: {e}")
                }
                other => panic!("{what}: {other:?}"),
            };
        // Bad checksum.
        let (blob, mut ann, _) = encode(&files, |_| {});
        let k = "io.github.containers.zstd-chunked.manifest-checksum";
        ann.insert(k.into(), format!("sha256:{}", "0".repeat(64)));
        expect_bad(&blob, &ann, "checksum");
        // Wrong uncompressed length.
        let (blob, mut ann, _) = encode(&files, |_| {});
        let k = "io.github.containers.zstd-chunked.manifest-position";
        let v: Vec<u64> = ann[k].split(':').map(|x| x.parse().unwrap()).collect();
        ann.insert(k.into(), format!("{}:{}:{}:1", v[0], v[1], v[2] - 1));
        expect_bad(&blob, &ann, "uncompressed length");
        // A file's range past the TOC, and starting at 0.
        for (field, val) in [("endOffset", 1u64 << 40), ("offset", 0)] {
            let (blob, ann, _) = encode(&files, |t| t["entries"][1][field] = val.into());
            expect_bad(&blob, &ann, field);
        }
        // Overlapping files.
        let (blob, ann, _) = encode(&files, |t| {
            let o = t["entries"][5]["offset"].clone();
            t["entries"][6]["offset"] = o;
        });
        expect_bad(&blob, &ann, "overlap");
        // A chunk outside its file, a chunk alone, an unknown type, version 2,
        // a negative size, a bad digest.
        let edits: Vec<(&str, TocEdit)> = vec![
            (
                "chunk outside",
                Box::new(|t| t["entries"][2]["offset"] = 5.into()),
            ),
            (
                "chunk alone",
                Box::new(|t| {
                    t["entries"].as_array_mut().unwrap().remove(1);
                }),
            ),
            (
                "type",
                Box::new(|t| t["entries"][0]["type"] = "sock".into()),
            ),
            ("version", Box::new(|t| t["version"] = 2.into())),
            (
                "negative",
                Box::new(|t| t["entries"][1]["size"] = (-1).into()),
            ),
            (
                "digest",
                Box::new(|t| t["entries"][1]["digest"] = "sha256:zz".into()),
            ),
            ("not a toc", Box::new(|t| *t = serde_json::json!([1, 2]))),
        ];
        for (what, edit) in edits {
            let (blob, ann, _) = encode(&files, |t| edit(t));
            expect_bad(&blob, &ann, what);
        }
        // Not zstd at all (checksum right).
        let (mut blob, mut ann, _) = encode(&files, |_| {});
        let loc = TocLocation::from_annotations(&ann).unwrap().unwrap();
        blob[loc.offset as usize..loc.range().end as usize].fill(7);
        let sum = Sha256::digest(&blob[loc.offset as usize..loc.range().end as usize]);
        ann.insert(
            "io.github.containers.zstd-chunked.manifest-checksum".into(),
            format!("sha256:{}", hex::encode(sum)),
        );
        expect_bad(&blob, &ann, "not zstd");
        // A truncated blob (footer cut off): the TOC parses, the plan refuses
        // a blob that ends before the TOC does.
        let (blob, ann, _) = encode(&files, |_| {});
        let toc = parse_blob(&blob, &ann).unwrap();
        let loc = toc.location().clone();
        assert!(toc
            .plan(blob.len() as u64 - 48, &PlanOptions::default(), |_, _| None)
            .is_ok());
        let e = toc
            .plan(loc.range().end - 1, &PlanOptions::default(), |_, _| None)
            .unwrap_err();
        assert!(matches!(e, StoreError::BadInput { .. }), "{e}");
        // Short TOC bytes.
        let r = loc.range();
        let e = Toc::parse(&blob[r.start as usize..r.end as usize - 1], &loc).unwrap_err();
        assert!(matches!(e, StoreError::BadInput { .. }), "{e}");
    }

    /// The big fixture layer (67 MiB), when /tmp/zc exists: skopeo's own
    /// zstd:chunked output, every file local vs nothing local.
    #[test]
    #[ignore = "needs /tmp/zc/out from skopeo copy --dest-compress-format zstd:chunked"]
    fn big_fixture_blob() {
        let dir = std::path::Path::new("/tmp/zc/out/blobs/sha256");
        let manifest: serde_json::Value = serde_json::from_slice(
            &fs::read(dir.join("aa3e9d48d4729e7143ddbbb10a01391eb7847d060c16f5369df6b18439b6386b"))
                .unwrap(),
        )
        .unwrap();
        let (_d, store) = scratch_store();
        for layer in manifest["layers"].as_array().unwrap() {
            let blob = fs::read(dir.join(&layer["digest"].as_str().unwrap()[7..])).unwrap();
            let ann: HashMap<String, String> =
                serde_json::from_value(layer["annotations"].clone()).unwrap();
            let toc = parse_blob(&blob, &ann).unwrap();
            let tar = zstd::decode_all(&blob[..]).unwrap();
            let local = contents(&tar);
            let plan = toc
                .plan(blob.len() as u64, &PlanOptions::default(), |s, _| {
                    local.get(s).map(|d| LocalContent::Inline(d.clone()))
                })
                .unwrap();
            eprintln!(
                "{}: {} bytes, fetch {} in {} ranges, {} files local",
                layer["digest"],
                blob.len(),
                plan.fetch_bytes,
                plan.fetch_ranges().count(),
                plan.reused_files
            );
            check_plan_shape(&plan, toc.location().data_end());
            let input = fetched(&blob, &plan);
            assert_eq!(run(plan, &store, &input).unwrap(), tar);
        }
    }
}
