//! ostree object formats for the ostree view: GVariant serialisation (normal
//! form) of the four object types a `bare` repository holds, their
//! checksums, and ref-name helpers. See `docs/views/ostree.md`.
//!
//! Formats (ostree 2022.7, byte-exact; integers `u`/`t` are stored
//! **big-endian** inside otherwise little-endian GVariants, as ostree does):
//!
//! | object | GVariant type | checksum |
//! |---|---|---|
//! | `.file` | header `(uuuusa(ayay))` = (uid, gid, st_mode, rdev = 0, symlink target, xattrs) | `sha256(BE32(len(header)) ‖ 0₃₂ ‖ header ‖ content)` ([`file_header`] returns everything before the content) |
//! | `.dirmeta` | `(uuua(ayay))` = (uid, gid, st_mode, xattrs) | sha256 of the bytes |
//! | `.dirtree` | `(a(say)a(sayay))` = (files: (name, content csum), dirs: (name, tree csum, meta csum)), both sorted by name bytes | sha256 of the bytes |
//! | `.commit` | `(a{sv}aya(say)sstayay)` = (metadata, parent, related, subject, body, timestamp, root tree, root meta) | sha256 of the bytes |
//!
//! Extended attributes `a(ayay)` are sorted by name (byte order); each name
//! carries its trailing NUL; attributes with an empty value are left out
//! (libglnx reads them that way from disk, so `ostree fsck` computes them
//! that way too).
//!
//! GVariant framing (normal form): members are padded to their alignment;
//! variable-size members of a tuple except the last record their end offset,
//! appended in reverse order; arrays of variable-size elements append one end
//! offset per element; offsets are 1, 2, 4 or 8 bytes, the smallest that can
//! address the whole container.

use sha2::{Digest as _, Sha256};

/// A raw sha256 checksum as ostree stores it inside objects.
pub type Checksum = [u8; 32];

/// sha256 of `data`.
pub fn checksum(data: &[u8]) -> Checksum {
    Sha256::digest(data).into()
}

/// Lowercase hex of a checksum (an ostree "checksum string").
pub fn to_hex(c: &Checksum) -> String {
    hex::encode(c)
}

/// Parse a 64-hex checksum string.
pub fn from_hex(s: &str) -> Option<Checksum> {
    let v = hex::decode(s).ok()?;
    v.try_into().ok()
}

/// Path of an object below `objects/`: `XX/YYYY….EXT`.
pub fn object_path(hex: &str, ext: &str) -> String {
    format!("{}/{}.{ext}", &hex[..2], &hex[2..])
}

/// A GVariant value (the subset ostree's objects use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `y`
    Byte(u8),
    /// `u`, serialised little-endian: pass `x.to_be()` for ostree's big-endian fields.
    U32(u32),
    /// `t`, serialised little-endian: pass `x.to_be()` for ostree's big-endian fields.
    U64(u64),
    /// `s`: the bytes, without the terminating NUL (must be UTF-8 without NUL).
    Str(Vec<u8>),
    /// `ay`
    Bytes(Vec<u8>),
    /// `a<T>`: element type signature and elements.
    Array(String, Vec<Value>),
    /// `(…)`
    Tuple(Vec<Value>),
    /// `{kv}` (only inside arrays).
    DictEntry(Box<Value>, Box<Value>),
    /// `v`
    Variant(Box<Value>),
}

impl Value {
    /// `s` from a string.
    pub fn str(s: &str) -> Value {
        Value::Str(s.as_bytes().to_vec())
    }

    /// `as` from strings.
    pub fn str_array<S: AsRef<str>>(items: &[S]) -> Value {
        Value::Array(
            "s".into(),
            items.iter().map(|s| Value::str(s.as_ref())).collect(),
        )
    }

    /// `a{sv}` from (key, value) pairs, in the given order.
    pub fn dict_sv(items: &[(String, Value)]) -> Value {
        Value::Array(
            "{sv}".into(),
            items
                .iter()
                .map(|(k, v)| {
                    Value::DictEntry(
                        Box::new(Value::str(k)),
                        Box::new(Value::Variant(Box::new(v.clone()))),
                    )
                })
                .collect(),
        )
    }

    /// The GVariant type signature.
    pub fn type_string(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::U32(_) => "u".into(),
            Value::U64(_) => "t".into(),
            Value::Str(_) => "s".into(),
            Value::Bytes(_) => "ay".into(),
            Value::Array(t, _) => format!("a{t}"),
            Value::Tuple(m) => {
                let inner: String = m.iter().map(Value::type_string).collect();
                format!("({inner})")
            }
            Value::DictEntry(k, v) => format!("{{{}{}}}", k.type_string(), v.type_string()),
            Value::Variant(_) => "v".into(),
        }
    }

    /// Serialise in GVariant normal form.
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Value::Byte(b) => out.push(*b),
            Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::Str(s) => {
                out.extend_from_slice(s);
                out.push(0);
            }
            Value::Bytes(b) => out.extend_from_slice(b),
            Value::Variant(v) => {
                v.write(out);
                out.push(0);
                out.extend_from_slice(v.type_string().as_bytes());
            }
            Value::Array(t, items) => {
                let align = alignment(t);
                let fixed = fixed_size(t).is_some();
                let start = out.len();
                let mut ends = Vec::new();
                for item in items {
                    pad(out, start, align);
                    item.write(out);
                    ends.push(out.len() - start);
                }
                if !fixed {
                    write_offsets(out, start, &ends);
                }
            }
            Value::Tuple(members) => {
                let types: Vec<String> = members.iter().map(Value::type_string).collect();
                write_tuple(out, members.iter().zip(types.iter()));
            }
            Value::DictEntry(k, v) => {
                let kt = k.type_string();
                let vt = v.type_string();
                write_tuple(out, [(&**k, &kt), (&**v, &vt)].into_iter());
            }
        }
    }
}

fn write_tuple<'a>(out: &mut Vec<u8>, members: impl Iterator<Item = (&'a Value, &'a String)>) {
    let members: Vec<(&Value, &String)> = members.collect();
    let start = out.len();
    let mut ends = Vec::new();
    let n = members.len();
    let mut all_fixed = true;
    let mut max_align = 1;
    for (i, (v, t)) in members.iter().enumerate() {
        let a = alignment(t);
        max_align = max_align.max(a);
        pad(out, start, a);
        v.write(out);
        if fixed_size(t).is_none() {
            all_fixed = false;
            if i + 1 != n {
                ends.push(out.len() - start);
            }
        }
    }
    if all_fixed {
        pad(out, start, max_align);
        if out.len() == start {
            out.push(0); // the unit tuple is one zero byte
        }
        return;
    }
    ends.reverse();
    write_offsets(out, start, &ends);
}

fn pad(out: &mut Vec<u8>, start: usize, align: usize) {
    while !(out.len() - start).is_multiple_of(align) {
        out.push(0);
    }
}

/// Append framing offsets for a container that began at `start`.
fn write_offsets(out: &mut Vec<u8>, start: usize, ends: &[usize]) {
    let body = out.len() - start;
    if ends.is_empty() {
        return;
    }
    let n = ends.len();
    let width = [1usize, 2, 4, 8]
        .into_iter()
        .find(|&w| w == 8 || ((body + w * n) as u128) < (1u128 << (8 * w)))
        .unwrap_or(8);
    for &e in ends {
        out.extend_from_slice(&(e as u64).to_le_bytes()[..width]);
    }
}

/// Split a concatenation of complete type signatures.
fn split_types(sig: &str) -> Vec<&str> {
    let b = sig.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let j = type_end(b, i);
        out.push(&sig[i..j]);
        i = j;
    }
    out
}

fn type_end(b: &[u8], i: usize) -> usize {
    match b[i] {
        b'a' | b'm' => type_end(b, i + 1),
        b'(' | b'{' => {
            let mut depth = 0;
            let mut j = i;
            loop {
                match b[j] {
                    b'(' | b'{' => depth += 1,
                    b')' | b'}' => depth -= 1,
                    _ => {}
                }
                j += 1;
                if depth == 0 {
                    return j;
                }
            }
        }
        _ => i + 1,
    }
}

fn basic_size(c: u8) -> Option<usize> {
    match c {
        b'y' | b'b' => Some(1),
        b'n' | b'q' => Some(2),
        b'i' | b'u' | b'h' => Some(4),
        b'x' | b't' | b'd' => Some(8),
        _ => None,
    }
}

fn alignment(t: &str) -> usize {
    let c = t.as_bytes()[0];
    if let Some(s) = basic_size(c) {
        return s;
    }
    match c {
        b'v' => 8,
        b'a' | b'm' => alignment(&t[1..]),
        b'(' | b'{' => split_types(&t[1..t.len() - 1])
            .into_iter()
            .map(alignment)
            .max()
            .unwrap_or(1),
        _ => 1,
    }
}

fn fixed_size(t: &str) -> Option<usize> {
    let c = t.as_bytes()[0];
    if let Some(s) = basic_size(c) {
        return Some(s);
    }
    if c == b'(' || c == b'{' {
        let mut size = 0usize;
        for m in split_types(&t[1..t.len() - 1]) {
            let fs = fixed_size(m)?;
            size = size.next_multiple_of(alignment(m)) + fs;
        }
        size = size.next_multiple_of(alignment(t));
        return Some(size.max(1));
    }
    None
}

/// `a(ayay)` of extended attributes as ostree checksums them: sorted by name,
/// names NUL-terminated, empty values left out.
pub fn xattrs_value(xattrs: &[(Vec<u8>, Vec<u8>)]) -> Value {
    Value::Array(
        "(ayay)".into(),
        canonical_xattrs(xattrs)
            .into_iter()
            .map(|(k, v)| {
                let mut name = k.to_vec();
                name.push(0);
                Value::Tuple(vec![Value::Bytes(name), Value::Bytes(v.to_vec())])
            })
            .collect(),
    )
}

/// The extended attributes ostree sees on disk, in its order: sorted by
/// name, without empty values (and, for duplicated names, the last value).
pub fn canonical_xattrs(xattrs: &[(Vec<u8>, Vec<u8>)]) -> Vec<(&[u8], &[u8])> {
    let mut map: std::collections::BTreeMap<&[u8], &[u8]> = std::collections::BTreeMap::new();
    for (k, v) in xattrs {
        map.insert(k, v);
    }
    map.into_iter().filter(|(_, v)| !v.is_empty()).collect()
}

/// The bytes that precede a file's content in its ostree content checksum:
/// `sha256(file_header(..) ‖ content)` is the name of the `.file` object in
/// a `bare` repository (for symlinks there is no content).
///
/// `mode` includes the file-type bits (`S_IFREG | perm`, `S_IFLNK | perm`);
/// `rdev` is 0 in everything ostree writes; `symlink` is the target of a
/// symlink and empty otherwise.
pub fn file_header(
    uid: u32,
    gid: u32,
    mode: u32,
    rdev: u32,
    symlink: &[u8],
    xattrs: &[(Vec<u8>, Vec<u8>)],
) -> Vec<u8> {
    let header = Value::Tuple(vec![
        Value::U32(uid.to_be()),
        Value::U32(gid.to_be()),
        Value::U32(mode.to_be()),
        Value::U32(rdev.to_be()),
        Value::Str(symlink.to_vec()),
        xattrs_value(xattrs),
    ])
    .serialize();
    let mut out = Vec::with_capacity(header.len() + 8);
    out.extend_from_slice(&(header.len() as u32).to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&header);
    out
}

/// Content checksum of a regular file whose bytes are `content`.
pub fn file_checksum(
    uid: u32,
    gid: u32,
    mode: u32,
    xattrs: &[(Vec<u8>, Vec<u8>)],
    content: &[u8],
) -> Checksum {
    let mut h = Sha256::new();
    h.update(file_header(
        uid,
        gid,
        S_IFREG | (mode & 0o7777),
        0,
        b"",
        xattrs,
    ));
    h.update(content);
    h.finalize().into()
}

/// Content checksum of a symlink.
pub fn symlink_checksum(
    uid: u32,
    gid: u32,
    mode: u32,
    target: &[u8],
    xattrs: &[(Vec<u8>, Vec<u8>)],
) -> Checksum {
    checksum(&file_header(
        uid,
        gid,
        S_IFLNK | (mode & 0o7777),
        0,
        target,
        xattrs,
    ))
}

/// `S_IFREG`
pub const S_IFREG: u32 = 0o100000;
/// `S_IFDIR`
pub const S_IFDIR: u32 = 0o040000;
/// `S_IFLNK`
pub const S_IFLNK: u32 = 0o120000;

/// A `.dirmeta` object; `mode` includes `S_IFDIR`.
pub fn dirmeta(uid: u32, gid: u32, mode: u32, xattrs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    Value::Tuple(vec![
        Value::U32(uid.to_be()),
        Value::U32(gid.to_be()),
        Value::U32(mode.to_be()),
        xattrs_value(xattrs),
    ])
    .serialize()
}

/// A `.dirtree` object. Entries are sorted here (byte order of names, as
/// ostree's binary-search lookups require); names are single path
/// components in UTF-8.
pub fn dirtree(files: &[(Vec<u8>, Checksum)], dirs: &[(Vec<u8>, Checksum, Checksum)]) -> Vec<u8> {
    let mut files: Vec<&(Vec<u8>, Checksum)> = files.iter().collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut dirs: Vec<&(Vec<u8>, Checksum, Checksum)> = dirs.iter().collect();
    dirs.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Tuple(vec![
        Value::Array(
            "(say)".into(),
            files
                .into_iter()
                .map(|(n, c)| Value::Tuple(vec![Value::Str(n.clone()), Value::Bytes(c.to_vec())]))
                .collect(),
        ),
        Value::Array(
            "(sayay)".into(),
            dirs.into_iter()
                .map(|(n, t, m)| {
                    Value::Tuple(vec![
                        Value::Str(n.clone()),
                        Value::Bytes(t.to_vec()),
                        Value::Bytes(m.to_vec()),
                    ])
                })
                .collect(),
        ),
    ])
    .serialize()
}

/// The fields of a `.commit` object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commit {
    /// Metadata `a{sv}`, serialised in this order.
    pub metadata: Vec<(String, Value)>,
    /// Parent commit, if any.
    pub parent: Option<Checksum>,
    /// One-line subject.
    pub subject: String,
    /// Body.
    pub body: String,
    /// Seconds since the epoch (UTC).
    pub timestamp: u64,
    /// Root `.dirtree`.
    pub root_tree: Checksum,
    /// Root `.dirmeta`.
    pub root_meta: Checksum,
}

impl Commit {
    /// The object bytes.
    pub fn serialize(&self) -> Vec<u8> {
        Value::Tuple(vec![
            Value::dict_sv(&self.metadata),
            Value::Bytes(self.parent.map(|p| p.to_vec()).unwrap_or_default()),
            Value::Array("(say)".into(), Vec::new()),
            Value::str(&self.subject),
            Value::str(&self.body),
            Value::U64(self.timestamp.to_be()),
            Value::Bytes(self.root_tree.to_vec()),
            Value::Bytes(self.root_meta.to_vec()),
        ])
        .serialize()
    }
}

/// Whether `name` is a valid ostree ref name (OSTREE_REF_REGEXP of 2022.7:
/// `(?:[\w\d][-._\w\d]*/)*[\w\d][-._\w\d]*`, ASCII word characters here).
pub fn is_valid_ref(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
                && b[1..]
                    .iter()
                    .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'-' | b'.'))
        })
}

/// Escape an arbitrary string into ref-name characters the way ostree-rs-ext
/// (`refescape`) does: ASCII alphanumerics and `-` pass; `/` passes when it
/// follows an alphanumeric and is not last; `_` becomes `__`; anything else
/// becomes `_<HEX>_` (uppercase hex of the Unicode scalar, at least 2 digits).
pub fn escape_ref_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_alnum = false;
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let last = i + 1 == chars.len();
        if c.is_ascii_alphanumeric() || c == '-' {
            out.push(c);
            prev_alnum = c.is_ascii_alphanumeric();
            continue;
        }
        if c == '/' && prev_alnum && !last {
            out.push('/');
        } else if c == '_' {
            out.push_str("__");
        } else {
            out.push_str(&format!("_{:02X}_", c as u32));
        }
        prev_alnum = false;
    }
    out
}

/// Inverse of [`escape_ref_component`].
pub fn unescape_ref_component(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if it.peek() == Some(&'_') {
            it.next();
            out.push('_');
            continue;
        }
        let mut hex = String::new();
        loop {
            match it.next()? {
                '_' => break,
                h if h.is_ascii_hexdigit() => hex.push(h),
                _ => return None,
            }
        }
        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
    }
    Some(out)
}

/// Parse an RFC 3339 timestamp (`2024-01-02T03:04:05.123Z`,
/// `…+02:00`) to Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        rest = &r[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let oh: i64 = o[1..3].parse().ok()?;
            let om: i64 = o[4..6].parse().ok()?;
            let v = oh * 3600 + om * 60;
            if o.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86400 + h * 3600 + mi * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    //! Expected checksums were produced with the real ostree 2022.7 CLI:
    //!
    //! ```sh
    //! mkdir -p tiny/etc tiny/usr/bin tiny/priv tiny/emptydir
    //! printf 'hello\n' > tiny/etc/hello; ln -s busybox tiny/usr/bin/sh
    //! printf 'secret\n' > tiny/priv/secret; chown 1000:1001 tiny/priv tiny/priv/secret
    //! chmod 0700 tiny/priv; chmod 0600 tiny/priv/secret
    //! printf 'suid\n' > tiny/usr/bin/suid; chmod 4755 tiny/usr/bin/suid; : > tiny/empty
    //! python3 -c "import os; os.setxattr('tiny/etc/hello','user.foo',b'bar'); \
    //!   os.setxattr('tiny/etc/hello','user.abc',b'xyz'); os.setxattr('tiny/etc','user.dirattr',b'd'); \
    //!   os.setxattr('tiny/usr/bin/suid','security.capability',bytes.fromhex('0100000200200000000000000000000000000000'))"
    //! ostree init --mode=bare --repo=tinyrepo
    //! ostree commit --repo=tinyrepo -b tiny/main --no-bindings --tree=dir=tiny -s "subject line" \
    //!   --body="body text" --timestamp="2023-11-14T22:13:20Z" --add-metadata-string=version=1.0
    //! ostree --repo=tinyrepo ls -R -C -X tiny/main
    //! ```
    use super::*;

    fn h(s: &str) -> Checksum {
        from_hex(s).unwrap()
    }

    fn x(pairs: &[(&str, &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
            .collect()
    }

    const CAP: &str = "0100000200200000000000000000000000000000";

    #[test]
    fn content_checksums_match_ostree() {
        // xattrs given unsorted: the header must sort them.
        let hello = file_checksum(
            0,
            0,
            0o644,
            &x(&[("user.foo", b"bar"), ("user.abc", b"xyz")]),
            b"hello\n",
        );
        assert_eq!(
            to_hex(&hello),
            "eefb98cecfe05e22379fe28b6c41cdea65580edcf179f7b6602257170bab8552"
        );
        assert_eq!(
            to_hex(&file_checksum(0, 0, 0o644, &[], b"")),
            "cc700d46f407c6c5ab2d5dde474366a928b7398277e61162e7f8ec06f469f07e"
        );
        assert_eq!(
            to_hex(&file_checksum(1000, 1001, 0o600, &[], b"secret\n")),
            "3b38ad9811253fa30bb2d5111fdc732381df6ec1330fc865900b17877005cc03"
        );
        let cap = hex::decode(CAP).unwrap();
        assert_eq!(
            to_hex(&file_checksum(
                0,
                0,
                0o4755,
                &x(&[("security.capability", &cap)]),
                b"suid\n"
            )),
            "768a3498bfa19d6f0b58de9b7c45a9db161d91f59a85d198a3a12b87f07d05fc"
        );
        assert_eq!(
            to_hex(&symlink_checksum(0, 0, 0o777, b"busybox", &[])),
            "db812ac9184103f3f6e10f0425f325cc657678376d1a515dc9e5512a2bf2c144"
        );
        // Empty values are not part of the checksum (libglnx skips them).
        assert_eq!(
            file_checksum(0, 0, 0o644, &x(&[("user.empty", b"")]), b""),
            file_checksum(0, 0, 0o644, &[], b"")
        );
    }

    #[test]
    fn header_bytes_match_reference_example() {
        // reference/ostree-repo.md §5.2: /etc/hello with user.foo=bar.
        let hdr = file_header(0, 0, 0o100644, 0, b"", &x(&[("user.foo", b"bar")]));
        assert_eq!(
            hex::encode(&hdr),
            concat!(
                "0000002000000000",
                "0000000000000000000081a400000000",
                "00",
                "757365722e666f6f00626172090d",
                "11"
            )
        );
        let mut with = hdr.clone();
        with.extend_from_slice(b"hello\n");
        assert_eq!(
            to_hex(&checksum(&with)),
            "28af666cd8036303fcab1a13f2ef7f9c9e92b6a392206017d50b932c8ff4daf9"
        );
    }

    #[test]
    fn tree_and_commit_match_ostree() {
        let root_meta = checksum(&dirmeta(0, 0, S_IFDIR | 0o755, &[]));
        assert_eq!(
            to_hex(&root_meta),
            "446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488"
        );
        let etc_meta = checksum(&dirmeta(
            0,
            0,
            S_IFDIR | 0o755,
            &x(&[("user.dirattr", b"d")]),
        ));
        assert_eq!(
            to_hex(&etc_meta),
            "df3f294304399fd48f36e53432ced7b16322c5d41e2f02769948bb5a8b2902ef"
        );
        let priv_meta = checksum(&dirmeta(1000, 1001, S_IFDIR | 0o700, &[]));
        assert_eq!(
            to_hex(&priv_meta),
            "7e93959548f37cc2a81b5fb8dbbf7dbe5ad1dacd652deb49e7690e6e1cd2d92e"
        );
        let empty = checksum(&dirtree(&[], &[]));
        assert_eq!(
            to_hex(&empty),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let n = |s: &str| s.as_bytes().to_vec();
        // Given in reverse order: dirtree sorts.
        let bin = checksum(&dirtree(
            &[
                (
                    n("suid"),
                    h("768a3498bfa19d6f0b58de9b7c45a9db161d91f59a85d198a3a12b87f07d05fc"),
                ),
                (
                    n("sh"),
                    h("db812ac9184103f3f6e10f0425f325cc657678376d1a515dc9e5512a2bf2c144"),
                ),
            ],
            &[],
        ));
        assert_eq!(
            to_hex(&bin),
            "eb4e07e40c99fcb6d20e8a1b356581cc8aa040fc13e3d7d7066fcab9577c08ce"
        );
        let usr = checksum(&dirtree(&[], &[(n("bin"), bin, root_meta)]));
        assert_eq!(
            to_hex(&usr),
            "aa93875e4cb02d6f58ad4f176ae2a99c24cdb8d278648070510efa4a3c04e317"
        );
        let etc = checksum(&dirtree(
            &[(
                n("hello"),
                h("eefb98cecfe05e22379fe28b6c41cdea65580edcf179f7b6602257170bab8552"),
            )],
            &[],
        ));
        assert_eq!(
            to_hex(&etc),
            "102367f171f88d654859582b18c3ee5df6c38e6b98d7927cdf92bd97c7ee97b4"
        );
        let privt = checksum(&dirtree(
            &[(
                n("secret"),
                h("3b38ad9811253fa30bb2d5111fdc732381df6ec1330fc865900b17877005cc03"),
            )],
            &[],
        ));
        assert_eq!(
            to_hex(&privt),
            "77066b9e0147707184713e254b01ec7848e5a2efa5e82ce5d0f9ed5969783bf7"
        );
        let root = checksum(&dirtree(
            &[(
                n("empty"),
                h("cc700d46f407c6c5ab2d5dde474366a928b7398277e61162e7f8ec06f469f07e"),
            )],
            &[
                (n("usr"), usr, root_meta),
                (n("priv"), privt, priv_meta),
                (n("etc"), etc, etc_meta),
                (n("emptydir"), empty, root_meta),
            ],
        ));
        assert_eq!(
            to_hex(&root),
            "f8c32cd59e01e44a8b67c2724106f9edb1ec03fe81750c0770836a019d6610ac"
        );
        let c = Commit {
            metadata: vec![("version".into(), Value::str("1.0"))],
            parent: None,
            subject: "subject line".into(),
            body: "body text".into(),
            timestamp: 1_700_000_000,
            root_tree: root,
            root_meta,
        };
        let bytes = c.serialize();
        assert_eq!(bytes.len(), 118);
        assert_eq!(
            to_hex(&checksum(&bytes)),
            "b5d0795f80e8bfd3a31327345282dd35aa6c9c5356ef8b1a4384e1d6e725f019"
        );
    }

    #[test]
    fn commit_with_string_array_metadata() {
        // reference/ostree-repo.md §5.5 / §9: `ostree commit -b test/main --tree=dir=src
        // -s "subject line" --body="body text" --timestamp=… --add-metadata-string=version=1.0`
        // has metadata {'version': <'1.0'>, 'ostree.ref-binding': <['test/main']>};
        // its framing must be the 158-byte object described there.
        let c = Commit {
            metadata: vec![
                ("version".into(), Value::str("1.0")),
                (
                    "ostree.ref-binding".into(),
                    Value::str_array(&["test/main"]),
                ),
            ],
            subject: "subject line".into(),
            body: "body text".into(),
            timestamp: 1_700_000_000,
            ..Default::default()
        };
        let b = c.serialize();
        assert_eq!(b.len(), 158);
        assert_eq!(
            &b[..16],
            &hex::decode("76657273696f6e00312e300000730800").unwrap()[..]
        );
    }

    #[test]
    fn offsets_grow_with_size() {
        // 300 one-byte strings: body > 255 bytes, so 2-byte offsets.
        let items: Vec<String> = (0..300).map(|_| "a".to_string()).collect();
        let v = Value::str_array(&items).serialize();
        assert_eq!(v.len(), 600 + 600);
        assert_eq!(&v[600..602], &2u16.to_le_bytes());
    }

    #[test]
    fn refs() {
        assert!(is_valid_ref("unistore/localhost/x_3A_1"));
        assert!(!is_valid_ref("a//b"));
        assert!(!is_valid_ref("a:b"));
        assert!(!is_valid_ref("/a"));
        assert!(!is_valid_ref("a/.b"));
        // Examples from reference/ostree-repo.md §10.
        assert_eq!(
            escape_ref_component("registry:quay.io/coreos/fedora:latest"),
            "registry_3A_quay_2E_io/coreos/fedora_3A_latest"
        );
        assert_eq!(
            escape_ref_component("containers-storage:localhost/my_img:1"),
            "containers-storage_3A_localhost/my__img_3A_1"
        );
        assert_eq!(
            escape_ref_component("docker://quay.io/fedora/fedora-bootc:40"),
            "docker_3A__2F__2F_quay_2E_io/fedora/fedora-bootc_3A_40"
        );
        for s in ["a/b:c", "x__y", "é/ü", "sha256:abc", "a/"] {
            let e = escape_ref_component(s);
            assert!(is_valid_ref(&e), "{e}");
            assert_eq!(unescape_ref_component(&e).as_deref(), Some(s));
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.123456789Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_rfc3339("2023-11-15T00:13:20+02:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
