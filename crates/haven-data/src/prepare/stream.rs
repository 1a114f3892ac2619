//! Byte streams with their SHA-256 computed on the way through, so the hash in a report is
//! always of the exact bytes read or written, without a second read of a large file.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// A reader that hashes and counts everything read through it.
#[derive(Debug)]
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self { inner, hasher: Sha256::new(), bytes: 0 }
    }

    /// Bytes read so far and their hex SHA-256.
    pub(crate) fn finish(self) -> (u64, String) {
        (self.bytes, hex::encode(self.hasher.finalize()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts everything written through it.
#[derive(Debug)]
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self { inner, hasher: Sha256::new(), bytes: 0 }
    }

    /// The inner writer, bytes written and their hex SHA-256.
    pub(crate) fn finish(self) -> (W, u64, String) {
        (self.inner, self.bytes, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Whether the CSV record starting at byte `start` of `path` opens a quoted field that is
/// never closed. The `csv` crate silently ends such a field at end of file, which would turn
/// the rest of the file into one value; this re-reads just that record (it ends at the first
/// unquoted line break) with the same RFC 4180 states the parser uses.
pub(crate) fn has_unclosed_quote(path: &Path, start: u64, delimiter: u8) -> io::Result<bool> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        StartField,
        InField,
        InQuoted,
        QuoteInQuoted,
    }
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(start))?;
    let mut state = State::StartField;
    let mut buf = vec![0u8; 64 * 1024];
    let mut started = false;
    loop {
        let n = match file.read(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => other?,
        };
        if n == 0 {
            return Ok(state == State::InQuoted);
        }
        for &byte in &buf[..n] {
            let line_break = byte == b'\n' || byte == b'\r';
            // Blank lines before a record are skipped by the parser, not record ends.
            if line_break && !started {
                continue;
            }
            started = true;
            state = match state {
                State::InQuoted if byte == b'"' => State::QuoteInQuoted,
                State::InQuoted => State::InQuoted,
                State::QuoteInQuoted if byte == b'"' => State::InQuoted,
                State::StartField if byte == b'"' => State::InQuoted,
                _ if line_break => return Ok(false),
                _ if byte == delimiter => State::StartField,
                _ => State::InField,
            };
        }
    }
}
