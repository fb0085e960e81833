//! tar-split (`<layer-id>.tar-split.gz`) generation, byte-compatible with
//! what containers/storage writes (vbatts/tar-split `asm` + Go's
//! `json.Encoder`), see `docs/format.md`.
//!
//! The importer feeds raw tar bytes and file entries in archive order; the
//! result is the gzip-compressed JSON-lines stream c/storage reassembles
//! layer tars from.

use std::io::Write;

use base64::Engine as _;
use flate2::{write::GzEncoder, Compression};

/// Go emits trailing archive padding in segments of at most this size.
const MAX_SEGMENT: usize = 1024 * 1024;

/// Builds one layer's tar-split stream.
#[derive(Debug)]
pub struct TarSplitWriter {
    out: Vec<u8>,
    position: u64,
}

impl Default for TarSplitWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl TarSplitWriter {
    /// An empty stream.
    pub fn new() -> Self {
        TarSplitWriter {
            out: Vec::new(),
            position: 0,
        }
    }

    /// A type-2 segment: raw bytes reassembly writes verbatim.
    pub fn segment(&mut self, payload: &[u8]) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(payload);
        let _ = writeln!(
            self.out,
            "{{\"type\":2,\"payload\":\"{b64}\",\"position\":{}}}",
            self.position
        );
        self.position += 1;
    }

    /// Trailing bytes after the end-of-archive blocks, split as Go does.
    pub fn trailer(&mut self, payload: &[u8]) {
        for chunk in payload.chunks(MAX_SEGMENT) {
            self.segment(chunk);
        }
    }

    /// A type-1 file entry: `size` content bytes with CRC-64 `crc` (ignored when size is 0).
    pub fn file(&mut self, name: &[u8], size: u64, crc: u64) {
        self.out.extend_from_slice(b"{\"type\":1,");
        match std::str::from_utf8(name) {
            Ok("") => {}
            Ok(s) => {
                self.out.extend_from_slice(b"\"name\":");
                go_json_string(&mut self.out, s);
                self.out.push(b',');
            }
            Err(_) => {
                let b64 = base64::engine::general_purpose::STANDARD.encode(name);
                let _ = write!(self.out, "\"name_raw\":\"{b64}\",");
            }
        }
        if size > 0 {
            let b64 = base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes());
            let _ = write!(self.out, "\"size\":{size},\"payload\":\"{b64}\",");
        } else {
            self.out.extend_from_slice(b"\"payload\":null,");
        }
        let _ = writeln!(self.out, "\"position\":{}}}", self.position);
        self.position += 1;
    }

    /// Close the stream (final empty segment) and gzip it.
    pub fn finish(mut self) -> std::io::Result<Vec<u8>> {
        self.segment(b"");
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&self.out)?;
        gz.finish()
    }
}

/// Encode `s` as Go's `encoding/json` does by default (HTML-safe escaping).
fn go_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", ch as u32);
            }
            c if (c as u32) < 0x20 => {
                let b = c as u8;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(w: TarSplitWriter) -> String {
        let gz = w.finish().unwrap();
        let mut s = String::new();
        use std::io::Read;
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    #[test]
    fn lines_match_go_shape() {
        let mut w = TarSplitWriter::new();
        w.segment(b"ab");
        w.file(b"d/b", 4, crate::digest::CRC64_GO_ISO.checksum(b"new\n"));
        w.file(b"d/hard2", 0, 0);
        w.file(b"\xff", 0, 0);
        w.file(b"a<b", 0, 0);
        let s = plain(w);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], r#"{"type":2,"payload":"YWI=","position":0}"#);
        assert_eq!(
            lines[1],
            r#"{"type":1,"name":"d/b","size":4,"payload":"YVqy3bAAAAA=","position":1}"#
        );
        assert_eq!(
            lines[2],
            r#"{"type":1,"name":"d/hard2","payload":null,"position":2}"#
        );
        assert_eq!(
            lines[3],
            r#"{"type":1,"name_raw":"/w==","payload":null,"position":3}"#
        );
        assert_eq!(
            lines[4],
            r#"{"type":1,"name":"a\u003cb","payload":null,"position":4}"#
        );
        assert_eq!(lines[5], r#"{"type":2,"payload":"","position":5}"#);
    }
}
