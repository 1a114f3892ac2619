//! Writing on a thread of its own: the extract's rows are counted for the column report,
//! encoded as CSV and hashed while the calling thread transforms the next rows. Rows travel
//! in reused batches over a bounded queue, in order, so the bytes written are exactly those
//! one thread would write.

use std::fs::File;
use std::io;
use std::mem;
use std::panic;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::thread;

use csv::ByteRecord;

use super::error::PrepareError;
use super::pipeline::QUEUE;
use super::plan::Plan;
use super::report::ColumnReport;
use super::stats::{DISTINCT_CAP, DistinctCounter};
use super::stream::HashingWriter;

/// Large writes: the extract goes to a shared filesystem where small writes are slow.
const WRITE_BUFFER: usize = 1 << 20;

/// Turns an I/O error on the output into the preparation's error; shared by both threads.
pub(crate) type WriteError<'e> = &'e (dyn Fn(io::Error) -> PrepareError + Sync);

/// Transformed rows on their way to the writer; only the first `len` records are rows.
#[derive(Debug, Default)]
struct OutBatch {
    records: Vec<ByteRecord>,
    len: usize,
}

enum ToWriter {
    Rows(OutBatch),
    /// Everything was sent: flush, sync and report. Without it the writer gives up.
    End,
}

/// What the writer produced.
#[derive(Debug)]
pub(crate) struct Output {
    pub rows: u64,
    pub sha256: String,
    pub columns: Vec<ColumnReport>,
}

/// The calling thread's end: where the next row is transformed to, and how it is sent.
pub(crate) struct Rows<'e> {
    batch: OutBatch,
    to_writer: SyncSender<ToWriter>,
    reused: Receiver<OutBatch>,
    write_error: WriteError<'e>,
}

impl Rows<'_> {
    /// An empty record for the next row; it is only written if [`Rows::keep`] follows.
    pub(crate) fn next(&mut self) -> &mut ByteRecord {
        let batch = &mut self.batch;
        if batch.len == batch.records.len() {
            batch.records.push(ByteRecord::new());
        }
        let record = &mut batch.records[batch.len];
        record.clear();
        record
    }

    /// Writes the record last handed out by [`Rows::next`].
    pub(crate) fn keep(&mut self) {
        self.batch.len += 1;
    }

    /// Hands the rows kept so far to the writer.
    pub(crate) fn send(&mut self) -> Result<(), PrepareError> {
        if self.batch.len == 0 {
            return Ok(());
        }
        let mut next = self.reused.try_recv().unwrap_or_default();
        next.len = 0;
        let full = mem::replace(&mut self.batch, next);
        self.to_writer.send(ToWriter::Rows(full)).map_err(|_| self.stopped())
    }

    /// Stands in for the writer's own error, which [`write_in_background`] returns instead.
    fn stopped(&self) -> PrepareError {
        (self.write_error)(io::Error::other("the writing thread stopped"))
    }
}

/// Writes `plan`'s header and then every row `produce` keeps to `file` on another thread,
/// then flushes and syncs it. The writer's error wins over `produce`'s: it can only be about
/// rows before the ones `produce` stopped at.
pub(crate) fn write_in_background<T>(
    plan: &Plan,
    delimiter: u8,
    file: File,
    write_error: WriteError<'_>,
    produce: impl FnOnce(&mut Rows<'_>) -> Result<T, PrepareError>,
) -> Result<(T, Output), PrepareError> {
    thread::scope(|scope| {
        let (to_writer, rows_rx) = sync_channel(QUEUE);
        let (reuse_tx, reused) = channel();
        let writer = scope.spawn(move || write_rows(plan, delimiter, file, &rows_rx, &reuse_tx, write_error));
        let mut rows = Rows { batch: OutBatch::default(), to_writer, reused, write_error };
        let produced = match produce(&mut rows) {
            Ok(produced) => rows
                .send()
                .and_then(|()| rows.to_writer.send(ToWriter::End).map_err(|_| rows.stopped()))
                .map(|()| produced),
            Err(e) => {
                // The rows before the error still go out, so a write failing on them is
                // reported as it would be by one thread.
                let _ = rows.send();
                Err(e)
            }
        };
        // Without `End` (and with the sender gone) the writer stops without flushing.
        drop(rows);
        let written = writer.join().unwrap_or_else(|panic| panic::resume_unwind(panic))?;
        let produced = produced?;
        let output = written.ok_or_else(|| write_error(io::Error::other("the writing thread stopped")))?;
        Ok((produced, output))
    })
}

/// The writer thread. `None` when the rows stopped coming without an `End`.
fn write_rows(
    plan: &Plan,
    delimiter: u8,
    file: File,
    rows: &Receiver<ToWriter>,
    reuse: &Sender<OutBatch>,
    write_error: WriteError<'_>,
) -> Result<Option<Output>, PrepareError> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .buffer_capacity(WRITE_BUFFER)
        .from_writer(HashingWriter::new(file));
    let csv_write_error = |e: csv::Error| write_error(io::Error::other(e));
    writer.write_byte_record(&plan.header()).map_err(csv_write_error)?;
    let mut stats: Vec<(u64, DistinctCounter)> =
        plan.columns.iter().map(|_| (0, DistinctCounter::with_cap(DISTINCT_CAP))).collect();
    let mut rows_out = 0;
    for message in rows {
        let batch = match message {
            ToWriter::Rows(batch) => batch,
            ToWriter::End => {
                let hashing = writer.into_inner().map_err(|e| write_error(e.into_error()))?;
                let (file, _, sha256) = hashing.finish();
                file.sync_all().map_err(write_error)?;
                return Ok(Some(Output { rows: rows_out, sha256, columns: column_reports(plan, stats) }));
            }
        };
        for out in &batch.records[..batch.len] {
            for ((nulls, distinct), value) in stats.iter_mut().zip(out.iter()) {
                if value.is_empty() {
                    *nulls += 1;
                } else {
                    distinct.observe(value);
                }
            }
            writer.write_byte_record(out).map_err(csv_write_error)?;
        }
        rows_out += batch.len as u64;
        // The producer may be done already; then the batch is simply freed.
        let _ = reuse.send(batch);
    }
    Ok(None)
}

fn column_reports(plan: &Plan, stats: Vec<(u64, DistinctCounter)>) -> Vec<ColumnReport> {
    plan.columns
        .iter()
        .zip(stats)
        .map(|(column, (nulls, distinct))| {
            let (distinct, distinct_is_lower_bound) = distinct.result();
            ColumnReport {
                name: column.name.clone(),
                rule: column.rule.as_str().to_owned(),
                nulls,
                distinct,
                distinct_is_lower_bound,
            }
        })
        .collect()
}
