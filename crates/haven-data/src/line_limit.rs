//! A bound on one line of a text file being read: a CSV record is held in memory whole (and
//! several times over while it is parsed and transformed), so one endless line would exhaust
//! memory. The error names the line by number, never its text.

use std::io;

/// A reader that fails once a line grows past `limit` bytes, naming the line, never its text.
#[derive(Debug)]
pub(crate) struct LineLimit<R> {
    inner: R,
    limit: u64,
    line: u64,
    since_newline: u64,
}

impl<R> LineLimit<R> {
    pub(crate) fn new(inner: R, limit: u64) -> Self {
        Self { inner, limit, line: 1, since_newline: 0 }
    }
}

impl<R: io::Read> io::Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &byte in &buf[..n] {
            if byte == b'\n' {
                self.line += 1;
                self.since_newline = 0;
            } else {
                self.since_newline += 1;
                if self.since_newline > self.limit {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "line {} is longer than {} bytes: not a table of records",
                            self.line, self.limit
                        ),
                    ));
                }
            }
        }
        Ok(n)
    }
}
