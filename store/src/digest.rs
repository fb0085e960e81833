//! Digest helpers: OCI `sha256:` digests, streaming hashers, CRC-64 as tar-split wants it.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use crate::error::StoreError;

/// The CRC-64 tar-split records per file: Go's `crc64.ISO` table
/// ("CRC-64/GO-ISO": reflected, init and xorout all ones).
pub const CRC64_GO_ISO: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_GO_ISO);

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Validate an OCI digest string and return its hex part. Only sha256 is accepted.
pub fn parse_sha256(file: &str, digest: &str) -> Result<String, StoreError> {
    let hex = digest.strip_prefix("sha256:").ok_or_else(|| {
        StoreError::bad_input(file, format!("unsupported digest `{digest}` (only sha256)"))
    })?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(StoreError::bad_input(
            file,
            format!("malformed digest `{digest}`"),
        ));
    }
    Ok(hex.to_string())
}

/// A reader that hashes (sha256) and counts everything read through it.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Read the rest of the stream (hashing it) and return `(sha256:hex, size)`.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
        ))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A reader of exactly `len` bytes of `inner` that computes their CRC-64 and
/// fails (instead of returning a short stream) when `inner` ends early.
pub struct CrcTake<'a, R> {
    inner: &'a mut R,
    left: u64,
    digest: crc::Digest<'static, u64>,
    sha: Option<Sha256>,
}

impl<R> std::fmt::Debug for CrcTake<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrcTake").field("left", &self.left).finish()
    }
}

impl<'a, R: Read> CrcTake<'a, R> {
    /// Read `len` bytes of `inner`.
    pub fn new(inner: &'a mut R, len: u64) -> Self {
        CrcTake {
            inner,
            left: len,
            digest: CRC64_GO_ISO.digest(),
            sha: None,
        }
    }

    /// Also feed the bytes to `sha` (which may already hold a prefix).
    pub fn with_sha256(mut self, sha: Sha256) -> Self {
        self.sha = Some(sha);
        self
    }

    /// The CRC of what was read and, if requested, the sha256; only
    /// meaningful once all bytes were read.
    pub fn finish(self) -> (u64, Option<[u8; 32]>) {
        (
            self.digest.finalize(),
            self.sha.map(|s| s.finalize().into()),
        )
    }

    /// Bytes still to read.
    pub fn left(&self) -> u64 {
        self.left
    }
}

impl<R: Read> Read for CrcTake<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive ends in the middle of a file",
            ));
        }
        self.digest.update(&buf[..n]);
        if let Some(s) = &mut self.sha {
            s.update(&buf[..n]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_go_check_values() {
        // Values measured from podman's tar-split (reference §7.2).
        use base64::Engine as _;
        let b64 = |s: &[u8]| {
            base64::engine::general_purpose::STANDARD.encode(CRC64_GO_ISO.checksum(s).to_be_bytes())
        };
        assert_eq!(b64(b"new\n"), "YVqy3bAAAAA=");
        assert_eq!(b64(b"hello\n"), "YUw+7uLYEAA=");
    }

    #[test]
    fn short_stream_is_an_error() {
        let mut src: &[u8] = b"abc";
        let mut t = CrcTake::new(&mut src, 5);
        let mut out = vec![];
        assert!(t.read_to_end(&mut out).is_err());
    }

    #[test]
    fn digest_validation() {
        assert!(parse_sha256("f", "sha256:zz").is_err());
        assert!(parse_sha256("f", "md5:00").is_err());
        let d = sha256_digest(b"");
        assert_eq!(parse_sha256("f", &d).unwrap().len(), 64);
    }
}
