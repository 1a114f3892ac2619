//! Reading the source CSV record by record, hashing its bytes on the way and turning the
//! parser's errors into ones that name the data row and the line.

use std::fs::File;
use std::path::{Path, PathBuf};

use csv::{ByteRecord, ErrorKind};

use super::error::PrepareError;
use super::guard::MAX_LINE_BYTES;
use super::stream::{HashingReader, has_unclosed_quote};
use crate::line_limit::LineLimit;

/// Large reads keep the parser fed; one buffer per pass, allocated once.
const READ_BUFFER: usize = 1 << 20;

/// Where a record is: its 1-based data row and the line it starts on.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RowAt {
    pub row: u64,
    pub line: u64,
    /// Byte offset of the record's start, to re-check its quoting after an error.
    byte: u64,
}

/// Which source a pass reads, enough to explain a bad row from any thread.
#[derive(Debug, Clone)]
pub(crate) struct Origin<'a> {
    dataset: &'a str,
    path: PathBuf,
    delimiter: u8,
}

impl<'a> Origin<'a> {
    pub(crate) fn dataset(&self) -> &'a str {
        self.dataset
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The error to report for a bad value at `at`: an unclosed quote there explains the bad
    /// value better than the value itself does.
    pub(crate) fn row_error(&self, at: RowAt, error: PrepareError) -> PrepareError {
        if self.unclosed_quote(at.byte) { self.unterminated(at) } else { error }
    }

    fn unclosed_quote(&self, byte: u64) -> bool {
        // An I/O error here just means the original error stands.
        has_unclosed_quote(&self.path, byte, self.delimiter).unwrap_or(false)
    }

    fn unterminated(&self, at: RowAt) -> PrepareError {
        PrepareError::UnterminatedQuote { dataset: self.dataset.to_owned(), row: at.row, line: at.line }
    }
}

/// One pass over the source.
#[derive(Debug)]
pub(crate) struct Source<'a> {
    origin: Origin<'a>,
    reader: csv::Reader<HashingReader<LineLimit<File>>>,
    /// The last record read: the header until the first data row.
    last: RowAt,
}

impl<'a> Source<'a> {
    pub(crate) fn open(dataset: &'a str, path: &Path, delimiter: u8) -> Result<Self, PrepareError> {
        let file = File::open(path).map_err(|source| PrepareError::ReadInput {
            dataset: dataset.to_owned(),
            path: path.to_path_buf(),
            source,
        })?;
        let reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(false)
            .buffer_capacity(READ_BUFFER)
            .from_reader(HashingReader::new(LineLimit::new(file, MAX_LINE_BYTES)));
        let origin = Origin { dataset, path: path.to_path_buf(), delimiter };
        Ok(Self { origin, reader, last: RowAt::default() })
    }

    /// The header row (empty for an empty file).
    pub(crate) fn header(&mut self) -> Result<ByteRecord, PrepareError> {
        let header = match self.reader.byte_headers() {
            Ok(header) => header.clone(),
            Err(e) => return Err(self.csv_error(e)),
        };
        if let Some(position) = header.position() {
            self.last = RowAt { row: 0, line: position.line(), byte: position.byte() };
        }
        Ok(header)
    }

    /// Reads the next data row into `record`; false at the end of the file.
    pub(crate) fn next(&mut self, record: &mut ByteRecord) -> Result<bool, PrepareError> {
        match self.reader.read_byte_record(record) {
            Ok(false) => Ok(false),
            Ok(true) => {
                let (line, byte) = record.position().map_or((0, 0), |p| (p.line(), p.byte()));
                self.last = RowAt { row: self.last.row + 1, line, byte };
                Ok(true)
            }
            Err(e) => Err(self.csv_error(e)),
        }
    }

    pub(crate) fn origin(&self) -> &Origin<'a> {
        &self.origin
    }

    /// Where the last record read is.
    pub(crate) fn at(&self) -> RowAt {
        self.last
    }

    /// Checks the file ended cleanly and returns its size and SHA-256. An unclosed quote can
    /// only be in the last record, since it swallows everything after it.
    pub(crate) fn finish(self) -> Result<(u64, String), PrepareError> {
        if self.origin.unclosed_quote(self.last.byte) {
            return Err(self.origin.unterminated(self.last));
        }
        Ok(self.reader.into_inner().finish())
    }

    fn csv_error(&self, error: csv::Error) -> PrepareError {
        let dataset = self.origin.dataset.to_owned();
        let row = self.last.row + 1;
        let line_of = |pos: Option<&csv::Position>| pos.map_or(0, csv::Position::line);
        match error.into_kind() {
            ErrorKind::Io(source) => {
                PrepareError::ReadInput { dataset, path: self.origin.path.clone(), source }
            }
            ErrorKind::UnequalLengths { pos, expected_len, len } => {
                let at = RowAt {
                    row,
                    line: line_of(pos.as_ref()),
                    byte: pos.as_ref().map_or(self.last.byte, csv::Position::byte),
                };
                let ragged = PrepareError::RaggedRow {
                    dataset,
                    row,
                    line: at.line,
                    expected: expected_len,
                    found: len,
                };
                self.origin.row_error(at, ragged)
            }
            ErrorKind::Utf8 { pos, err } => PrepareError::MalformedCsv {
                dataset,
                row,
                line: line_of(pos.as_ref()),
                reason: err.to_string(),
            },
            other => PrepareError::MalformedCsv {
                dataset,
                row,
                line: self.last.line,
                reason: format!("{other:?}"),
            },
        }
    }
}
