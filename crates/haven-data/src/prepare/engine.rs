//! The streaming engine: source CSV in, extract CSV out, in batches of rows with reused
//! buffers, so memory depends on the number of distinct values counted, never on the file.
//! Reading, transforming and writing run on their own threads, in row order, so the output
//! and the first error are exactly those of doing it all on one.
//!
//! With `kAnonymity.action: SuppressRows` the source is read twice: pass 1 counts the
//! equivalence classes from the transformed quasi-identifiers only, pass 2 writes the rows
//! of classes of at least k. Both passes hash the source, so a file that changed in between
//! is caught rather than half-suppressed.

use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::time::Instant;

use csv::ByteRecord;

use super::error::PrepareError;
use super::guard;
use super::pipeline::read_in_background;
use super::plan::{self, Plan, PlannedColumn};
use super::report::{ColumnReport, PreparationReport, k_anonymity_report, round_rate};
use super::sink::{WriteError, write_in_background};
use super::source::{RowAt, Source};
use super::spec::{KAnonymityAction, PreparationSpec, key_fingerprint, rules_sha256};
use super::stats::{ClassCounts, ClassKey};
use super::transform::Transform;

/// Rows between progress calls.
const PROGRESS_EVERY: u64 = 1 << 16;

/// Streams `input` (CSV with a header) to `output` (CSV), returning the report. `progress`
/// is called every ~64k rows and at the end with the rows read so far (over both passes when
/// suppressing). The extract is written beside `output` under a name of its own, synced, and
/// renamed to `output` only when whole, so `output` is never partial, even after a signal, and
/// a failed run removes only what it created. The input must be a regular file and the output
/// neither the input nor anything but a regular file ([`guard::check_paths`]).
pub fn prepare_csv(
    spec: &PreparationSpec,
    key: &[u8],
    input: &Path,
    output: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<PreparationReport, PrepareError> {
    plan::delimiter(spec)?; // bad rules are refused before any file is looked at
    plan::transforms(spec, key)?;
    guard::check_paths(&spec.name, input, output)?;
    let partial = crate::tree::partial_sibling(output);
    let report = write_csv(spec, key, input, &partial, progress)?;
    fs::rename(&partial, output).map_err(|source| {
        let _ = fs::remove_file(&partial); // ours: best effort, the error matters more
        PrepareError::WriteOutput { dataset: spec.name.clone(), path: output.to_path_buf(), source }
    })?;
    Ok(report)
}

/// The extract into `output`, a new file of the caller's own, removed on error.
fn write_csv(
    spec: &PreparationSpec,
    key: &[u8],
    input: &Path,
    output: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<PreparationReport, PrepareError> {
    let started = Instant::now();
    let delimiter = plan::delimiter(spec)?;
    plan::transforms(spec, key)?;
    let mut progress = Progress { report: progress, rows: 0 };
    let dataset = spec.name.as_str();

    let suppression = match &spec.k_anonymity {
        Some(k) if k.action == KAnonymityAction::SuppressRows => {
            let (classes, rows, input_sha256) = count_classes(spec, key, input, delimiter, &mut progress)?;
            let suppressed: u64 = classes.sizes().filter(|size| *size < u64::from(k.k)).sum();
            if u128::from(suppressed) * 100 > u128::from(rows) * u128::from(k.max_suppressed_percent) {
                return Err(PrepareError::TooManySuppressed {
                    dataset: dataset.to_owned(),
                    k: k.k,
                    suppressed,
                    rows,
                    max_percent: k.max_suppressed_percent,
                });
            }
            Some((classes, u64::from(k.k), input_sha256))
        }
        _ => None,
    };

    let mut source = Source::open(dataset, input, delimiter)?;
    let header = source.header()?;
    let plan = plan::plan(spec, key, &header)?;
    let write_error = |source: io::Error| PrepareError::WriteOutput {
        dataset: dataset.to_owned(),
        path: output.to_path_buf(),
        source,
    };
    let file = fs::OpenOptions::new().write(true).create_new(true).open(output).map_err(write_error)?;
    let keep_class = suppression.as_ref().map(|(classes, k, _)| (classes, *k));
    let written = write_extract(source, &plan, keep_class, delimiter, file, &mut progress, &write_error);
    let written = match written {
        Ok(written) => written,
        Err(e) => {
            // Best effort: the error matters more than a failure to clean up.
            let _ = fs::remove_file(output);
            return Err(e);
        }
    };
    if let Some((_, _, first_sha256)) = &suppression
        && *first_sha256 != written.input_sha256
    {
        let _ = fs::remove_file(output);
        return Err(PrepareError::InputChanged { dataset: dataset.to_owned() });
    }
    progress.finish();

    let k_anonymity = spec.k_anonymity.as_ref().map(|k| {
        let quasi_identifiers =
            plan.quasi_identifiers.iter().map(|&i| plan.columns[i].name.clone()).collect();
        let classes = suppression.as_ref().map_or(&written.classes, |(classes, _, _)| classes);
        let min_size = suppression.as_ref().map_or(1, |(_, k, _)| *k);
        k_anonymity_report(k.k, quasi_identifiers, classes.sizes(), min_size)
    });
    let seconds = started.elapsed().as_secs_f64().max(1e-6);
    Ok(PreparationReport {
        dataset: dataset.to_owned(),
        rows_in: written.rows_in,
        rows_out: written.rows_out,
        suppressed_rows: written.rows_in - written.rows_out,
        input_sha256: written.input_sha256,
        output_sha256: written.output_sha256,
        rules_sha256: rules_sha256(spec),
        key_fingerprint: key_fingerprint(key),
        columns: written.columns,
        k_anonymity,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        rows_per_second: round_rate(written.rows_in as f64 / seconds),
        megabytes_per_second: round_rate(written.input_bytes as f64 / 1e6 / seconds),
    })
}

/// Calls the caller's progress callback now and then.
struct Progress<'f> {
    report: &'f (dyn Fn(u64) + Sync),
    rows: u64,
}

impl Progress<'_> {
    fn row(&mut self) {
        self.rows += 1;
        if self.rows.is_multiple_of(PROGRESS_EVERY) {
            (self.report)(self.rows);
        }
    }

    fn finish(&self) {
        (self.report)(self.rows);
    }
}

/// Pass 1 of suppression: class sizes, data rows and the source's SHA-256. The source is
/// parsed and hashed on a second thread while this one transforms the quasi-identifiers.
fn count_classes(
    spec: &PreparationSpec,
    key: &[u8],
    input: &Path,
    delimiter: u8,
    progress: &mut Progress<'_>,
) -> Result<(ClassCounts, u64, String), PrepareError> {
    let mut source = Source::open(&spec.name, input, delimiter)?;
    let plan = plan::plan(spec, key, &source.header()?)?;
    let origin = source.origin().clone();
    let quasi: Vec<&PlannedColumn> = plan.quasi_identifiers.iter().map(|&i| &plan.columns[i]).collect();
    let (mut values, mut scratch) = (ByteRecord::new(), Vec::new());
    let (mut classes, mut class_key) = (ClassCounts::default(), ClassKey::default());
    let finished = read_in_background(source, |batch| {
        for (record, at) in batch.rows() {
            progress.row();
            values.clear();
            transform_columns(&spec.name, quasi.iter().copied(), record, at, &mut values, &mut scratch)
                .map_err(|e| origin.row_error(at, e))?;
            classes.add(class_key.of(values.iter()));
        }
        Ok(())
    })?;
    Ok((classes, finished.rows, finished.sha256))
}

/// What the writing pass produced.
struct Written {
    rows_in: u64,
    rows_out: u64,
    input_bytes: u64,
    input_sha256: String,
    output_sha256: String,
    columns: Vec<ColumnReport>,
    /// Class sizes of the rows written (empty when suppressing: pass 1 has them).
    classes: ClassCounts,
}

/// The writing pass, on three threads: one parses and hashes the source, this one
/// transforms, one writes and hashes the extract. With `keep_class`, rows whose class (in
/// pass 1's counts) is smaller than k are left out.
fn write_extract(
    source: Source<'_>,
    plan: &Plan,
    keep_class: Option<(&ClassCounts, u64)>,
    delimiter: u8,
    file: File,
    progress: &mut Progress<'_>,
    write_error: WriteError<'_>,
) -> Result<Written, PrepareError> {
    let origin = source.origin().clone();
    let dataset = origin.dataset();
    let track_classes = plan.k_anonymity.is_some() && keep_class.is_none();
    let (mut scratch, mut classes, mut class_key) = (Vec::new(), ClassCounts::default(), ClassKey::default());
    let (finished, output) = write_in_background(plan, delimiter, file, write_error, |rows| {
        read_in_background(source, |batch| {
            for (record, at) in batch.rows() {
                progress.row();
                let out = rows.next();
                transform_columns(dataset, plan.columns.iter(), record, at, out, &mut scratch)
                    .map_err(|e| origin.row_error(at, e))?;
                if plan.k_anonymity.is_some() {
                    let class = class_key.of(plan.quasi_identifiers.iter().map(|&i| &out[i]));
                    match keep_class {
                        Some((counts, k)) if counts.size(class) < k => continue,
                        _ if track_classes => classes.add(class),
                        _ => {}
                    }
                }
                rows.keep();
            }
            rows.send()
        })
    })?;
    Ok(Written {
        rows_in: finished.rows,
        rows_out: output.rows,
        input_bytes: finished.bytes,
        input_sha256: finished.sha256,
        output_sha256: output.sha256,
        columns: output.columns,
        classes,
    })
}

/// Appends the transformed values of `columns` of `record` to `out`. Dropped columns are
/// never looked at and suppressed ones never decoded, so only data that reaches the extract
/// has to be valid UTF-8.
pub(crate) fn transform_columns<'p>(
    dataset: &str,
    columns: impl Iterator<Item = &'p PlannedColumn>,
    record: &ByteRecord,
    at: RowAt,
    out: &mut ByteRecord,
    scratch: &mut Vec<u8>,
) -> Result<(), PrepareError> {
    // One check of the whole record is much cheaper than one per field; slicing a valid
    // record at a field's range is then O(1). Only a record with bad bytes somewhere (perhaps
    // in a dropped column) falls back to checking field by field.
    let whole = std::str::from_utf8(record.as_slice()).ok();
    for column in columns {
        let raw = record.get(column.input).unwrap_or_default();
        if raw.is_empty() || matches!(column.transform, Transform::Suppress) {
            out.push_field(b"");
            continue;
        }
        let checked = whole.zip(record.range(column.input)).and_then(|(whole, range)| whole.get(range));
        let value =
            checked.map_or_else(|| std::str::from_utf8(raw), Ok).map_err(|_| PrepareError::InvalidUtf8 {
                dataset: dataset.to_owned(),
                row: at.row,
                line: at.line,
                column: column.name.clone(),
            })?;
        if let Transform::Keep = column.transform {
            out.push_field(raw);
            continue;
        }
        scratch.clear();
        column.transform.apply(value, scratch).map_err(|reason| PrepareError::InvalidValue {
            dataset: dataset.to_owned(),
            row: at.row,
            line: at.line,
            column: column.name.clone(),
            rule: column.rule.as_str(),
            reason,
        })?;
        out.push_field(scratch);
    }
    Ok(())
}
