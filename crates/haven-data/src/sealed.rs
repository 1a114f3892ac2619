//! Sealed files: data at rest (workspace archives, airlock quarantine copies) encrypted with a
//! key derived from the permit's key, so that shredding the permit's key (DESIGN §5, Destroy)
//! also makes every copy of a sealed file unreadable, including copies that escaped deletion
//! (a backup, a snapshot of the volume).
//!
//! Format (version 1), streaming with bounded memory:
//!
//! ```text
//! "HAVNSEAL"  8 bytes  magic
//! 0x01        1 byte   format version
//! key id      8 bytes  first bytes of SHA-256 of the sealing key, to tell a wrong key from damage
//! nonce       19 bytes random per file: the XChaCha20-Poly1305 STREAM (BE32) nonce prefix
//! chunks               each 64 KiB of plaintext + a 16-byte tag; the header is their associated data
//! ```
//!
//! Every chunk but the last holds exactly 64 KiB; the last holds less (possibly nothing) and is
//! sealed with STREAM's last-chunk flag, so a file cut short anywhere fails to open. [`open`]
//! writes each chunk as soon as it authenticates: treat its output as untrusted until it
//! returns `Ok`.

use std::io::{self, Read, Write};

use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305,
    aead::{
        generic_array::GenericArray,
        stream::{DecryptorBE32, EncryptorBE32},
    },
};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Plaintext bytes per chunk.
const CHUNK: usize = 64 * 1024;
/// Poly1305 tag per chunk.
const TAG: usize = 16;
const MAGIC: &[u8; 8] = b"HAVNSEAL";
const VERSION: u8 = 1;
const KEY_ID: usize = 8;
/// XChaCha20's 24-byte nonce less STREAM BE32's 4-byte counter and 1-byte last flag.
const NONCE_PREFIX: usize = 19;
const HEADER: usize = MAGIC.len() + 1 + KEY_ID + NONCE_PREFIX;

/// HKDF `info` per purpose: a new purpose gets a new string, never another purpose's key, so
/// a file sealed for one purpose never opens as another's.
const ARCHIVE_INFO: &str = "haven archive v1";
const QUARANTINE_INFO: &str = "haven quarantine v1";
/// Shorter permit keys are refused: a derived key can be no stronger than its input.
const MIN_PERMIT_KEY: usize = 32;

#[derive(Debug, Error)]
pub enum SealError {
    #[error(transparent)]
    Io(io::Error),
    #[error("the permit key has {0} bytes; at least {MIN_PERMIT_KEY} are needed")]
    KeyTooShort(usize),
    #[error("not a Haven sealed file (no HAVNSEAL header)")]
    NotSealed,
    #[error("sealed in format version {0}, which this version of Haven cannot read")]
    UnsupportedVersion(u8),
    #[error("sealed with key {sealed_with}, not with the given key {given}")]
    WrongKey { sealed_with: String, given: String },
    #[error("chunk {chunk} fails authentication: the file was modified or cut short")]
    Tampered { chunk: u64 },
    #[error("the file ends before its last chunk: it was cut short")]
    Truncated,
}

impl From<io::Error> for SealError {
    /// Unwraps a `SealError` that travelled through an `io::Read`/`io::Write` as an `io::Error`.
    fn from(error: io::Error) -> Self {
        if !error.get_ref().is_some_and(|inner| inner.is::<SealError>()) {
            return Self::Io(error);
        }
        let kind = error.kind();
        match error.into_inner().map(|inner| inner.downcast::<SealError>()) {
            Some(Ok(sealed)) => *sealed,
            Some(Err(other)) => Self::Io(io::Error::new(kind, other)),
            None => Self::Io(kind.into()),
        }
    }
}

fn invalid(error: SealError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// A key files are sealed with, derived from the permit's (pseudonymisation) key with
/// HKDF-SHA256, one per purpose, so the one Secret is all there is to shred. Never printed:
/// `Debug` shows only its purpose and fingerprint.
#[derive(Clone)]
pub struct SealKey {
    key: [u8; 32],
    id: [u8; KEY_ID],
    /// The HKDF `info` it was derived with.
    purpose: &'static str,
}

impl SealKey {
    /// The key workspace archives are sealed with.
    pub fn archive(permit_key: &[u8]) -> Result<Self, SealError> {
        Self::derive(permit_key, ARCHIVE_INFO)
    }

    /// The key the airlock's quarantine copies are sealed with.
    pub fn quarantine(permit_key: &[u8]) -> Result<Self, SealError> {
        Self::derive(permit_key, QUARANTINE_INFO)
    }

    fn derive(permit_key: &[u8], purpose: &'static str) -> Result<Self, SealError> {
        if permit_key.len() < MIN_PERMIT_KEY {
            return Err(SealError::KeyTooShort(permit_key.len()));
        }
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(None, permit_key)
            .expand(purpose.as_bytes(), &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let mut id = [0u8; KEY_ID];
        id.copy_from_slice(&Sha256::digest(key)[..KEY_ID]);
        Ok(Self { key, id, purpose })
    }

    /// `sha256:<16 hex>`: names the key in errors and records without revealing it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.id)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(GenericArray::from_slice(&self.key))
    }
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealKey")
            .field("purpose", &self.purpose)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

fn fingerprint(id: &[u8]) -> String {
    format!("sha256:{}", hex::encode(id))
}

/// Seals `reader` into `writer`; returns the plaintext length.
pub fn seal(mut reader: impl Read, writer: impl Write, key: &SealKey) -> Result<u64, SealError> {
    let mut sealer = SealWriter::new(writer, key)?;
    let copied = io::copy(&mut reader, &mut sealer)?;
    sealer.finish()?;
    Ok(copied)
}

/// Whether the regular file at `path` starts as a sealed file does (its magic): what a
/// destruction record may claim about a copy of it made earlier. Its bytes are not checked.
pub fn is_sealed(path: &std::path::Path) -> io::Result<bool> {
    let mut magic = [0u8; MAGIC.len()];
    let mut file = std::fs::File::open(path)?.take(MAGIC.len() as u64);
    let mut read = 0;
    while read < magic.len() {
        match file.read(&mut magic[read..])? {
            0 => break,
            n => read += n,
        }
    }
    Ok(read == magic.len() && &magic == MAGIC)
}

/// Opens a sealed `reader` into `writer`; returns the plaintext length. Fails on a wrong key,
/// on any changed byte and on a file cut short.
pub fn open(reader: impl Read, mut writer: impl Write, key: &SealKey) -> Result<u64, SealError> {
    let mut opener = OpenReader::new(reader, key)?;
    let copied = io::copy(&mut opener, &mut writer)?;
    writer.flush()?;
    Ok(copied)
}

/// Seals what is written to it into `inner`. Call [`SealWriter::finish`]: without its last
/// chunk the file does not open.
pub struct SealWriter<W: Write> {
    inner: W,
    encryptor: Option<EncryptorBE32<XChaCha20Poly1305>>,
    header: [u8; HEADER],
    buf: Vec<u8>,
}

impl<W: Write> SealWriter<W> {
    /// Writes the header, with a fresh random nonce, to `inner`.
    pub fn new(mut inner: W, key: &SealKey) -> io::Result<Self> {
        let mut nonce = [0u8; NONCE_PREFIX];
        getrandom::fill(&mut nonce).map_err(|e| io::Error::other(e.to_string()))?;
        let mut header = [0u8; HEADER];
        header[..MAGIC.len()].copy_from_slice(MAGIC);
        header[MAGIC.len()] = VERSION;
        header[MAGIC.len() + 1..][..KEY_ID].copy_from_slice(&key.id);
        header[HEADER - NONCE_PREFIX..].copy_from_slice(&nonce);
        inner.write_all(&header)?;
        let encryptor = EncryptorBE32::from_aead(key.cipher(), GenericArray::from_slice(&nonce));
        Ok(Self { inner, encryptor: Some(encryptor), header, buf: Vec::with_capacity(CHUNK + TAG) })
    }

    /// Seals the last chunk and flushes; returns the inner writer (to sync a file, say).
    pub fn finish(mut self) -> io::Result<W> {
        let encryptor = self.encryptor.take().ok_or_else(|| io::Error::other("sealer already failed"))?;
        encryptor
            .encrypt_last_in_place(&self.header, &mut self.buf)
            .map_err(|_| io::Error::other("sealing the last chunk failed"))?;
        self.inner.write_all(&self.buf)?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    fn seal_full_chunk(&mut self) -> io::Result<()> {
        let encryptor = self.encryptor.as_mut().ok_or_else(|| io::Error::other("sealer already failed"))?;
        if encryptor.encrypt_next_in_place(&self.header, &mut self.buf).is_err() {
            self.encryptor = None;
            return Err(io::Error::other("too many chunks for one sealed file"));
        }
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let taken = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..taken]);
        // Seal a chunk as soon as it is full, so the last one is always shorter.
        if self.buf.len() == CHUNK {
            self.seal_full_chunk()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> std::fmt::Debug for SealWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealWriter").field("buffered", &self.buf.len()).finish_non_exhaustive()
    }
}

/// Reads the plaintext of a sealed `inner`. A read fails with `InvalidData` (holding a
/// [`SealError`]) at the first chunk that does not authenticate or where the file ends early.
pub struct OpenReader<R: Read> {
    inner: R,
    decryptor: Option<DecryptorBE32<XChaCha20Poly1305>>,
    header: [u8; HEADER],
    buf: Vec<u8>,
    /// How much of `buf` was already returned.
    consumed: usize,
    chunk: u64,
}

impl<R: Read> OpenReader<R> {
    /// Reads and checks the header: magic, version, and that `key` is the one it was sealed with.
    pub fn new(mut inner: R, key: &SealKey) -> Result<Self, SealError> {
        let mut header = [0u8; HEADER];
        let got = read_full(&mut inner, &mut header)?;
        if got < MAGIC.len() || header[..MAGIC.len()] != MAGIC[..] {
            return Err(SealError::NotSealed);
        }
        if got > MAGIC.len() && header[MAGIC.len()] != VERSION {
            return Err(SealError::UnsupportedVersion(header[MAGIC.len()]));
        }
        if got < HEADER {
            return Err(SealError::Truncated);
        }
        let id = &header[MAGIC.len() + 1..][..KEY_ID];
        if id != key.id {
            return Err(SealError::WrongKey { sealed_with: fingerprint(id), given: key.fingerprint() });
        }
        let nonce = GenericArray::from_slice(&header[HEADER - NONCE_PREFIX..]);
        let decryptor = DecryptorBE32::from_aead(key.cipher(), nonce);
        Ok(Self { inner, decryptor: Some(decryptor), header, buf: Vec::new(), consumed: 0, chunk: 0 })
    }

    /// Reads and authenticates the next chunk into `buf`; `Ok(false)` after the last one.
    fn next_chunk(&mut self) -> io::Result<bool> {
        if self.decryptor.is_none() {
            return Ok(false);
        }
        self.buf.resize(CHUNK + TAG, 0);
        self.consumed = 0;
        let got = read_full(&mut self.inner, &mut self.buf)?;
        self.buf.truncate(got);
        let chunk = self.chunk;
        let tampered = |_| invalid(SealError::Tampered { chunk });
        if got == CHUNK + TAG {
            let decryptor = self.decryptor.as_mut().ok_or_else(|| invalid(SealError::Truncated))?;
            decryptor.decrypt_next_in_place(&self.header, &mut self.buf).map_err(tampered)?;
        } else if got == 0 {
            // Ended at a chunk boundary without the last chunk.
            return Err(invalid(SealError::Truncated));
        } else {
            let decryptor = self.decryptor.take().ok_or_else(|| invalid(SealError::Truncated))?;
            decryptor.decrypt_last_in_place(&self.header, &mut self.buf).map_err(tampered)?;
        }
        self.chunk += 1;
        Ok(true)
    }
}

impl<R: Read> Read for OpenReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.consumed == self.buf.len() {
            if !self.next_chunk()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.consumed);
        out[..n].copy_from_slice(&self.buf[self.consumed..][..n]);
        self.consumed += n;
        Ok(n)
    }
}

impl<R: Read> std::fmt::Debug for OpenReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenReader").field("chunk", &self.chunk).finish_non_exhaustive()
    }
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
#[path = "sealed_tests.rs"]
mod tests;
