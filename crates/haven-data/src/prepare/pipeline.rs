//! Reading on a thread of its own: the source is parsed and hashed in batches of records
//! while the calling thread transforms the batch before. Batches go round between the two
//! threads and are reused, so memory stays a few batches however large the file is.
//!
//! Order is kept: batches arrive in row order, and the reader stops at its first error after
//! handing over every row before it, so the caller sees the rows in order and the first error
//! in row order wins, as when one thread does everything.

use std::panic;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::thread;

use csv::ByteRecord;

use super::error::PrepareError;
use super::source::{RowAt, Source};

/// Records per batch: large enough that handing a batch over costs nothing per row, small
/// enough that a few in flight are a few megabytes. Tests use small ones to cross batches.
pub(crate) const BATCH_ROWS: usize = if cfg!(test) { 7 } else { 2048 };

/// Batches queued between two threads; more only adds memory once both are busy.
pub(crate) const QUEUE: usize = 2;

/// Consecutive records of the source and where each one is.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Reused records; only the first `at.len()` are this batch's.
    records: Vec<ByteRecord>,
    at: Vec<RowAt>,
}

impl Batch {
    /// The batch's records in order, with where each is.
    pub(crate) fn rows(&self) -> impl Iterator<Item = (&ByteRecord, RowAt)> {
        self.records.iter().zip(self.at.iter().copied())
    }
}

/// What reading the whole source found.
#[derive(Debug)]
pub(crate) struct Finished {
    /// Data rows read.
    pub rows: u64,
    /// Source bytes and their SHA-256.
    pub bytes: u64,
    pub sha256: String,
}

/// Reads `source` on another thread, calling `each` on this one with every batch in order.
/// The first error wins: one from `each` (its rows come before any the reader had trouble
/// with), else the reader's, including [`Source::finish`]'s check of the end of the file.
pub(crate) fn read_in_background(
    source: Source<'_>,
    each: impl FnMut(&Batch) -> Result<(), PrepareError>,
) -> Result<Finished, PrepareError> {
    thread::scope(|scope| {
        let (full_tx, full_rx) = sync_channel(QUEUE);
        let (empty_tx, empty_rx) = channel();
        let reader = scope.spawn(move || read_batches(source, &full_tx, &empty_rx));
        let consumed = consume(full_rx, empty_tx, each);
        let read = reader.join().unwrap_or_else(|panic| panic::resume_unwind(panic));
        consumed.and(read)
    })
}

/// Calls `each` on every batch, then returns it for reuse. Dropping `full` on an error is
/// what stops the reader.
fn consume(
    full: Receiver<Batch>,
    empty: Sender<Batch>,
    mut each: impl FnMut(&Batch) -> Result<(), PrepareError>,
) -> Result<(), PrepareError> {
    for batch in full {
        each(&batch)?;
        // The reader may be done already; then the batch is simply freed.
        let _ = empty.send(batch);
    }
    Ok(())
}

/// The reader thread: fills batches (reused ones when there are any) and sends them on.
fn read_batches(
    mut source: Source<'_>,
    full: &SyncSender<Batch>,
    empty: &Receiver<Batch>,
) -> Result<Finished, PrepareError> {
    loop {
        let mut batch = empty.try_recv().unwrap_or_default();
        batch.at.clear();
        let filled = fill(&mut source, &mut batch);
        let ended = !matches!(filled, Ok(true));
        if !batch.at.is_empty() && full.send(batch).is_err() {
            // The consumer stopped on an error of its own, which is the one that counts.
            return Err(stopped(&source));
        }
        if ended {
            filled?;
            break;
        }
    }
    let rows = source.at().row;
    let (bytes, sha256) = source.finish()?;
    Ok(Finished { rows, bytes, sha256 })
}

/// Reads up to [`BATCH_ROWS`] records into `batch`; false at the end of the file. On an
/// error the records read before it stay in the batch.
fn fill(source: &mut Source<'_>, batch: &mut Batch) -> Result<bool, PrepareError> {
    while batch.at.len() < BATCH_ROWS {
        let index = batch.at.len();
        if index == batch.records.len() {
            batch.records.push(ByteRecord::new());
        }
        if !source.next(&mut batch.records[index])? {
            return Ok(false);
        }
        batch.at.push(source.at());
    }
    Ok(true)
}

/// Stands in for the consumer's error, which [`read_in_background`] returns instead.
fn stopped(source: &Source<'_>) -> PrepareError {
    let origin = source.origin();
    PrepareError::ReadInput {
        dataset: origin.dataset().to_owned(),
        path: origin.path().to_path_buf(),
        source: std::io::Error::other("the reading thread was stopped"),
    }
}
