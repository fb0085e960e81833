//! Streaming import of one layer tar (already decompressed).
//!
//! One pass over the bytes produces, at the same time:
//! - the layer's composefs splitstream (headers and small files inline,
//!   file bodies as deduplicated objects): `cat` of it is the original tar,
//!   bit for bit;
//! - the [`LayerIndex`] (the layer's tree as data);
//! - the tar-split stream c/storage needs, with each file's CRC-64;
//! - counters for progress and the summary.
//!
//! Hostile input is refused here: absolute paths, `..`, paths through a
//! symlink of the same layer, hard links to missing members, duplicates,
//! names longer than `PATH_MAX`, absurd PAX headers, sparse files.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::Arc;

use composefs::fsverity::{FsVerityHashValue, Sha256HashValue};
use composefs::repository::Repository;
use composefs::splitstream::SplitStreamWriter;

use sha2::{Digest as _, Sha256};

use crate::digest::CrcTake;
use crate::error::StoreError;
use crate::index::{Data, Entry, Kind, LayerIndex, INDEX_VERSION};
use crate::tarsplit::TarSplitWriter;

/// Files up to this size are kept inline in the splitstream and index
/// (composefs's own `INLINE_CONTENT_MAX_V0`); larger ones become objects.
pub const INLINE_MAX: u64 = composefs::INLINE_CONTENT_MAX_V0 as u64;

/// Largest PAX or GNU long-name extension we accept; real ones are a few KiB.
/// Also the limit for all extension headers before one member together (a
/// chain of them is otherwise buffered without bound).
const MAX_EXTENSION: u64 = 1 << 20;

/// Most data we accept after the end-of-archive blocks (it is kept, for
/// bit-exact layer tars, and buffered while the layer is imported; GNU tar
/// pads to 10 KiB records, so real archives have at most a few KiB).
const MAX_TRAILER: u64 = 16 << 20;

/// Linux `PATH_MAX`: longer member names cannot exist on any filesystem.
const PATH_MAX: usize = 4096;

/// Linux `NAME_MAX`.
const NAME_MAX: usize = 255;

const BLOCK: usize = 512;

/// Callback for progress: `(uncompressed bytes so far, files so far)`.
pub type LayerProgress<'a> = &'a mut dyn FnMut(u64, u64);

/// What importing one layer produced.
pub struct LayerOutput {
    /// The layer's splitstream, not yet committed.
    pub writer: SplitStreamWriter<Sha256HashValue>,
    /// The layer's tree.
    pub index: LayerIndex,
    /// gzip-compressed tar-split.
    pub tarsplit_gz: Vec<u8>,
    /// Number of members.
    pub entries: u64,
    /// Bytes of file content stored as objects, new to the store.
    pub new_bytes: u64,
    /// Bytes of file content that deduplicated against existing objects.
    pub reused_bytes: u64,
    /// Objects this layer created (to remove if the layer is refused later,
    /// e.g. because its digest does not match).
    pub created: Vec<Sha256HashValue>,
}

impl std::fmt::Debug for LayerOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerOutput")
            .field("entries", &self.entries)
            .field("new_bytes", &self.new_bytes)
            .finish_non_exhaustive()
    }
}

/// Parsed numeric header field (octal text or GNU base-256).
fn parse_numeric(field: &[u8]) -> Option<u64> {
    if let Some(&first) = field.first() {
        if first & 0x80 != 0 {
            if first == 0xff {
                return None; // negative base-256
            }
            let mut v: u64 = (first & 0x7f) as u64;
            for &b in &field[1..] {
                v = v.checked_mul(256)?.checked_add(b as u64)?;
            }
            return Some(v);
        }
    }
    let s: Vec<u8> = field
        .iter()
        .copied()
        .take_while(|&b| b != 0)
        .filter(|&b| b != b' ')
        .collect();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(std::str::from_utf8(&s).ok()?, 8).ok()
}

fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

fn header_checksum_ok(h: &[u8]) -> bool {
    let Some(stored) = parse_numeric(&h[148..156]) else {
        return false;
    };
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += b as u64;
        signed += (b as i8) as i64;
    }
    stored == unsigned || stored as i64 == signed
}

/// PAX records that matter to us.
#[derive(Default, Debug)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u32>,
    gid: Option<u32>,
    mtime: Option<(i64, u32)>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let sec: i64 = sec.parse().ok()?;
    let mut nsec: u32 = 0;
    for (i, c) in frac.bytes().take(9).enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        nsec += (c - b'0') as u32 * 10u32.pow(8 - i as u32);
    }
    if neg {
        if nsec > 0 {
            Some((-sec - 1, 1_000_000_000 - nsec))
        } else {
            Some((-sec, 0))
        }
    } else {
        Some((sec, nsec))
    }
}

fn parse_pax(file: &str, data: &[u8], pax: &mut Pax) -> Result<(), StoreError> {
    let bad = |m: &str| StoreError::bad_input(file, format!("malformed PAX header: {m}"));
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("no length"))?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad length"))?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(bad("record length out of range"));
        }
        let rec = &rest[sp + 1..len - 1];
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| bad("record without ="))?;
        let (key, val) = (&rec[..eq], &rec[eq + 1..]);
        let num = |v: &[u8]| -> Result<u64, StoreError> {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("bad number"))
        };
        match key {
            b"path" => pax.path = Some(val.to_vec()),
            b"linkpath" => pax.linkpath = Some(val.to_vec()),
            b"size" => pax.size = Some(num(val)?),
            b"uid" => pax.uid = Some(u32::try_from(num(val)?).map_err(|_| bad("uid too large"))?),
            b"gid" => pax.gid = Some(u32::try_from(num(val)?).map_err(|_| bad("gid too large"))?),
            b"mtime" => pax.mtime = Some(parse_pax_time(val).ok_or_else(|| bad("bad mtime"))?),
            k if k.starts_with(b"GNU.sparse.") => {
                return Err(StoreError::bad_input(
                    file,
                    "sparse files are not supported",
                ))
            }
            k if k.starts_with(b"SCHILY.xattr.") => {
                pax.xattrs.push((k[13..].to_vec(), val.to_vec()));
            }
            _ => {}
        }
        rest = &rest[len..];
    }
    Ok(())
}

/// A name from an archive as it may appear in a message: lossy UTF-8 with
/// control characters escaped, so a hostile name can neither add lines to an
/// error nor send escape sequences to the terminal.
pub fn printable(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in String::from_utf8_lossy(raw).chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Normalise a member path; refuse absolute paths, `..` and oversize names.
pub fn normalize_path(file: &str, raw: &[u8]) -> Result<Vec<u8>, StoreError> {
    let shown = printable(raw);
    if raw.len() > PATH_MAX {
        return Err(StoreError::bad_input(
            file,
            format!("member name longer than PATH_MAX ({} bytes)", raw.len()),
        ));
    }
    if raw.first() == Some(&b'/') {
        return Err(StoreError::bad_input(
            file,
            format!("absolute member path `{shown}`"),
        ));
    }
    let mut out = Vec::with_capacity(raw.len());
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => continue,
            b".." => {
                return Err(StoreError::bad_input(
                    file,
                    format!("member path `{shown}` contains `..`"),
                ))
            }
            c => {
                if c.len() > NAME_MAX {
                    return Err(StoreError::bad_input(
                        file,
                        format!("member path `{shown}` has a component longer than NAME_MAX"),
                    ));
                }
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(out)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

/// Import one uncompressed layer tar from `input`.
///
/// `file` names the layer in error messages. Objects are written to `repo`
/// as they stream past; the returned writer must be committed by the caller
/// (only after the layer's digest is verified).
pub fn import_layer(
    repo: &Arc<Repository<Sha256HashValue>>,
    file: &str,
    input: &mut impl Read,
    content_type: u64,
    progress: LayerProgress<'_>,
) -> anyhow::Result<LayerOutput> {
    let mut created = Vec::new();
    match import_layer_inner(repo, file, input, content_type, progress, &mut created) {
        Ok(mut out) => {
            out.created = created;
            Ok(out)
        }
        Err(e) => {
            // A refused layer leaves nothing behind: the objects it created are
            // referenced by nothing (imports are serialised by the store lock).
            remove_objects(repo, &created);
            Err(e)
        }
    }
}

/// Unlink objects (created by a refused import); errors are logged.
pub fn remove_objects(repo: &Repository<Sha256HashValue>, ids: &[Sha256HashValue]) {
    let Ok(dir) = repo.objects_dir() else {
        return;
    };
    for id in ids {
        let path = id.to_object_pathname();
        if let Err(e) = rustix::fs::unlinkat(dir, path.as_str(), rustix::fs::AtFlags::empty()) {
            tracing::debug!("removing object {path} of a refused import: {e}");
        }
    }
}

fn import_layer_inner(
    repo: &Arc<Repository<Sha256HashValue>>,
    file: &str,
    input: &mut impl Read,
    content_type: u64,
    progress: LayerProgress<'_>,
    created: &mut Vec<Sha256HashValue>,
) -> anyhow::Result<LayerOutput> {
    let io_err = |e: io::Error| -> anyhow::Error {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            StoreError::bad_input(file, "truncated layer (archive ends early)").into()
        } else {
            StoreError::bad_input(file, format!("reading layer: {e}")).into()
        }
    };
    let started = std::time::SystemTime::now();
    let mut writer = repo.create_stream(content_type)?;
    let mut ts = TarSplitWriter::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut entries: Vec<Entry> = Vec::new();
    let mut by_path: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut symlinks: HashSet<Vec<u8>> = HashSet::new();
    let mut seen_objects: HashSet<Sha256HashValue> = HashSet::new();
    let mut pax = Pax::default();
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    // Bytes of the extension headers read since the last member.
    let mut extension_run: u64 = 0;
    let (mut total, mut new_bytes, mut reused_bytes) = (0u64, 0u64, 0u64);
    let mut block = [0u8; BLOCK];
    let mut first = true;

    loop {
        let n = read_full(input, &mut block).map_err(io_err)?;
        if n == 0 {
            if first {
                return Err(StoreError::bad_input(file, "empty layer: not a tar archive").into());
            }
            // EOF at a header boundary without end-of-archive blocks: Go accepts it.
            if !pending.is_empty() {
                ts.segment(&pending);
            }
            break;
        }
        if n < BLOCK {
            return Err(StoreError::bad_input(file, "truncated layer (partial tar header)").into());
        }
        total += BLOCK as u64;
        writer.write_inline(&block);
        pending.extend_from_slice(&block);

        if block.iter().all(|&b| b == 0) {
            // End of archive: the second zero block, then whatever padding follows.
            let n = read_full(input, &mut block).map_err(io_err)?;
            writer.write_inline(&block[..n]);
            pending.extend_from_slice(&block[..n]);
            ts.segment(&pending);
            let mut rest = Vec::new();
            input
                .by_ref()
                .take(MAX_TRAILER + 1)
                .read_to_end(&mut rest)
                .map_err(io_err)?;
            if rest.len() as u64 > MAX_TRAILER {
                return Err(StoreError::bad_input(
                    file,
                    format!("more than {MAX_TRAILER} bytes of data after the end of the archive"),
                )
                .into());
            }
            writer.write_inline(&rest);
            ts.trailer(&rest);
            total += (n + rest.len()) as u64;
            break;
        }
        if !header_checksum_ok(&block) {
            let at = total - BLOCK as u64;
            return Err(StoreError::bad_input(
                file,
                if first {
                    "not a tar archive (bad header checksum at offset 0)".to_string()
                } else {
                    format!("corrupt tar header at offset {at}")
                },
            )
            .into());
        }
        first = false;
        let typeflag = block[156];
        let header_size = parse_numeric(&block[124..136])
            .ok_or_else(|| StoreError::bad_input(file, "bad size field in tar header"))?;

        // Extension headers: their data is part of the next member's raw header bytes.
        if matches!(typeflag, b'x' | b'g' | b'L' | b'K') {
            if header_size > MAX_EXTENSION {
                return Err(StoreError::bad_input(
                    file,
                    format!("extension header of {header_size} bytes is too large"),
                )
                .into());
            }
            extension_run += header_size;
            if extension_run > MAX_EXTENSION {
                return Err(StoreError::bad_input(
                    file,
                    format!(
                        "extension headers of more than {MAX_EXTENSION} bytes before one member are too large"
                    ),
                )
                .into());
            }
            let padded = (header_size as usize).next_multiple_of(BLOCK);
            let mut data = vec![0u8; padded];
            let got = read_full(input, &mut data).map_err(io_err)?;
            if got < padded {
                return Err(
                    StoreError::bad_input(file, "truncated layer (in extension header)").into(),
                );
            }
            total += padded as u64;
            writer.write_inline(&data);
            pending.extend_from_slice(&data);
            let data = &data[..header_size as usize];
            match typeflag {
                b'x' => parse_pax(file, data, &mut pax)?,
                b'g' => {
                    // Global headers are returned by Go's reader as a member of their own.
                    let mut ignored = Pax::default();
                    parse_pax(file, data, &mut ignored)?;
                    ts.segment(&pending);
                    pending.clear();
                    ts.file(cstr(&block[0..100]), 0, 0);
                }
                b'L' => long_name = Some(cstr(data).to_vec()),
                _ => long_link = Some(cstr(data).to_vec()),
            }
            continue;
        }

        extension_run = 0;
        // The member's name as Go's archive/tar reports it.
        let is_ustar = &block[257..263] == b"ustar\0";
        let mut raw_name = cstr(&block[0..100]).to_vec();
        if is_ustar {
            let prefix = cstr(&block[345..500]);
            if !prefix.is_empty() {
                let mut p = prefix.to_vec();
                p.push(b'/');
                p.extend_from_slice(&raw_name);
                raw_name = p;
            }
        }
        if let Some(n) = long_name.take() {
            raw_name = n;
        }
        if let Some(p) = pax.path.take() {
            raw_name = p;
        }
        let mut raw_link = cstr(&block[157..257]).to_vec();
        if let Some(l) = long_link.take() {
            raw_link = l;
        }
        if let Some(l) = pax.linkpath.take() {
            raw_link = l;
        }
        let size = pax.size.take().unwrap_or(header_size);
        let num = |range: std::ops::Range<usize>, what: &str| -> Result<u64, StoreError> {
            parse_numeric(&block[range]).ok_or_else(|| {
                StoreError::bad_input(file, format!("bad {what} field in tar header"))
            })
        };
        let uid = match pax.uid.take() {
            Some(u) => u,
            None => u32::try_from(num(108..116, "uid")?)
                .map_err(|_| StoreError::bad_input(file, "uid out of range"))?,
        };
        let gid = match pax.gid.take() {
            Some(g) => g,
            None => u32::try_from(num(116..124, "gid")?)
                .map_err(|_| StoreError::bad_input(file, "gid out of range"))?,
        };
        let (mtime, mtime_nsec) = match pax.mtime.take() {
            Some(t) => t,
            None => (num(136..148, "mtime")? as i64, 0),
        };
        let mode = (num(100..108, "mode")? & 0o7777) as u32;
        let xattrs = std::mem::take(&mut pax.xattrs);

        let kind = match typeflag {
            b'0' | 0 | b'7' => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' => Kind::Char,
            b'4' => Kind::Block,
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            b'S' => {
                return Err(StoreError::bad_input(file, "sparse files are not supported").into())
            }
            t => {
                return Err(StoreError::bad_input(
                    file,
                    format!(
                        "unsupported tar member type `{}` for `{}`",
                        t.escape_ascii(),
                        printable(&raw_name)
                    ),
                )
                .into())
            }
        };
        // Header-only types carry no data in the stream (Go's reader skips none).
        let content_len = if kind == Kind::File { size } else { 0 };

        let path = normalize_path(file, &raw_name)?;
        let shown = printable(&raw_name);
        // A member below a symlink of this layer would be written through it.
        {
            let mut p: &[u8] = &path;
            while let Some(i) = p.iter().rposition(|&b| b == b'/') {
                p = &p[..i];
                if symlinks.contains(p) {
                    return Err(StoreError::bad_input(
                        file,
                        format!("member `{shown}` lies below symlink `{}`", printable(p)),
                    )
                    .into());
                }
            }
        }

        // tar-split: raw header bytes, then the file entry.
        ts.segment(&pending);
        pending.clear();

        // Content. Regular files also get their ostree content checksum
        // here, in the same pass: sha256(file header || bytes).
        let mut data = Data::None;
        let mut crc = 0u64;
        let mut ostree = None;
        let ostree_hasher = || {
            let mut h = Sha256::new();
            h.update(crate::ostree_format::file_header(
                uid,
                gid,
                0o100000 | mode,
                0,
                b"",
                &xattrs,
            ));
            h
        };
        if kind == Kind::File && content_len == 0 {
            ostree = Some(hex::encode(ostree_hasher().finalize()));
        }
        if content_len > 0 {
            if content_len <= INLINE_MAX {
                let mut buf = vec![0u8; content_len as usize];
                let got = read_full(input, &mut buf).map_err(io_err)?;
                if got < buf.len() {
                    return Err(StoreError::bad_input(
                        file,
                        "truncated layer (archive ends in a file)",
                    )
                    .into());
                }
                writer.write_inline(&buf);
                crc = crate::digest::CRC64_GO_ISO.checksum(&buf);
                let mut h = ostree_hasher();
                h.update(&buf);
                ostree = Some(hex::encode(h.finalize()));
                data = Data::Inline(buf);
            } else {
                let mut take = CrcTake::new(input, content_len).with_sha256(ostree_hasher());
                let id = repo
                    .ensure_object_from_reader(&mut take, content_len)
                    .map_err(|e| match e.root_cause().downcast_ref::<io::Error>() {
                        Some(ioe) if ioe.kind() == io::ErrorKind::UnexpectedEof => {
                            StoreError::bad_input(file, "truncated layer (archive ends in a file)")
                                .into()
                        }
                        _ => e.context(format!("storing `{shown}`")),
                    })?;
                if take.left() != 0 {
                    return Err(StoreError::bad_input(
                        file,
                        "truncated layer (archive ends in a file)",
                    )
                    .into());
                }
                let (c, sha) = take.finish();
                crc = c;
                ostree = sha.map(hex::encode);
                crate::crash::point("object written");
                if seen_objects.insert(id.clone()) && object_is_new(repo, &id, started) {
                    new_bytes += content_len;
                    created.push(id.clone());
                } else {
                    reused_bytes += content_len;
                }
                writer.write_reference(id.clone())?;
                writer.add_external_size(content_len);
                data = Data::Object(id.to_hex());
            }
            total += content_len;
            let pad = (content_len as usize).next_multiple_of(BLOCK) - content_len as usize;
            if pad > 0 {
                let mut p = [0u8; BLOCK];
                let got = read_full(input, &mut p[..pad]).map_err(io_err)?;
                if got < pad {
                    return Err(StoreError::bad_input(file, "truncated layer (in padding)").into());
                }
                writer.write_inline(&p[..pad]);
                pending.extend_from_slice(&p[..pad]);
                total += pad as u64;
            }
        }
        ts.file(&raw_name, size, crc);

        // Index entry, in overlay terms.
        let (parent, base) = split_parent(&path);
        let (kind, path) = if let Some(hidden) = base.strip_prefix(b".wh.") {
            if hidden == b".wh..opq" {
                (Kind::Opaque, parent.to_vec())
            } else if hidden.starts_with(b".wh.") {
                return Err(StoreError::bad_input(
                    file,
                    format!("unsupported aufs metadata member `{shown}`"),
                )
                .into());
            } else if hidden.is_empty() {
                return Err(
                    StoreError::bad_input(file, format!("empty whiteout `{shown}`")).into(),
                );
            } else {
                let mut p = parent.to_vec();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(hidden);
                (Kind::Whiteout, p)
            }
        } else {
            (kind, path)
        };
        let link = match kind {
            Kind::HardLink => {
                let target = normalize_path(file, &raw_link)?;
                match by_path.get(&target).map(|&i| &entries[i]) {
                    Some(t) if matches!(t.kind, Kind::Dir | Kind::Whiteout | Kind::Opaque) => {
                        return Err(StoreError::bad_input(
                            file,
                            format!("hard link `{shown}` points to a directory or whiteout"),
                        )
                        .into())
                    }
                    Some(_) => target,
                    None => {
                        return Err(StoreError::bad_input(
                            file,
                            format!(
                                "hard link `{shown}` points to `{}`, which is not in the layer",
                                printable(&raw_link)
                            ),
                        )
                        .into())
                    }
                }
            }
            Kind::Symlink => {
                if raw_link.len() > PATH_MAX {
                    return Err(
                        StoreError::bad_input(file, "symlink target longer than PATH_MAX").into(),
                    );
                }
                symlinks.insert(path.clone());
                raw_link
            }
            _ => Vec::new(),
        };
        let key = match kind {
            Kind::Opaque => {
                let mut k = path.clone();
                k.extend_from_slice(b"/.wh..wh..opq");
                k
            }
            _ => path.clone(),
        };
        if by_path.insert(key, entries.len()).is_some() {
            return Err(StoreError::bad_input(file, format!("duplicate member `{shown}`")).into());
        }
        entries.push(Entry {
            path,
            kind,
            mode,
            uid,
            gid,
            mtime,
            mtime_nsec,
            size: if kind == Kind::File { size } else { 0 },
            rdev_major: num(329..337, "devmajor")? as u32,
            rdev_minor: num(337..345, "devminor")? as u32,
            link,
            xattrs,
            data,
            ostree,
        });
        progress(total, entries.len() as u64);
    }
    progress(total, entries.len() as u64);

    let n = entries.len() as u64;
    Ok(LayerOutput {
        writer,
        index: LayerIndex {
            version: INDEX_VERSION,
            entries,
        },
        tarsplit_gz: ts.finish()?,
        entries: n,
        new_bytes,
        reused_bytes,
        created: Vec::new(),
    })
}

/// Whether the object was created by this import (its inode changed after `since`).
fn object_is_new(
    repo: &Repository<Sha256HashValue>,
    id: &Sha256HashValue,
    since: std::time::SystemTime,
) -> bool {
    let Ok(dir) = repo.objects_dir() else {
        return true;
    };
    let path = id.to_object_pathname();
    match rustix::fs::statat(dir, path.as_str(), rustix::fs::AtFlags::empty()) {
        Ok(st) => {
            let ctime = std::time::UNIX_EPOCH
                + std::time::Duration::new(st.st_ctime as u64, st.st_ctime_nsec as u32);
            ctime >= since
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize() {
        assert_eq!(normalize_path("f", b"./a//b/").unwrap(), b"a/b");
        assert_eq!(normalize_path("f", b"./").unwrap(), b"");
        assert!(normalize_path("f", b"/etc/passwd").is_err());
        assert!(normalize_path("f", b"a/../../x").is_err());
        assert!(normalize_path("f", &vec![b'a'; 300]).is_err());
    }

    #[test]
    fn printable_names() {
        assert_eq!(printable(b"a/b c"), "a/b c");
        assert_eq!(printable(b"x\n\x1b[2Jy\r"), "x\\n\\u{1b}[2Jy\\r");
        assert_eq!(printable(b"caf\xe9"), "caf\u{fffd}");
    }

    #[test]
    fn numeric_fields() {
        assert_eq!(parse_numeric(b"0000644\0"), Some(0o644));
        assert_eq!(parse_numeric(b"       \0"), Some(0));
        assert_eq!(parse_numeric(&[0x80, 0, 0, 0, 0, 0, 1, 0]), Some(256));
        assert_eq!(parse_numeric(b"99\0"), None);
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time(b"12.5"), Some((12, 500_000_000)));
        assert_eq!(
            parse_pax_time(b"1700000000.123456789123"),
            Some((1700000000, 123456789))
        );
        assert_eq!(parse_pax_time(b"-1.5"), Some((-2, 500_000_000)));
    }
}
