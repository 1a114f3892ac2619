//! The report written beside every extract (`report.json`): what went in, what came out,
//! under which rules and key, and how identifiable the result still is. Its presence is the
//! extract's completion marker.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What one preparation did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreparationReport {
    pub dataset: String,
    /// Data rows read from the source (the header not counted).
    pub rows_in: u64,
    /// Data rows written to the extract.
    pub rows_out: u64,
    /// Rows left out by k-anonymity suppression.
    pub suppressed_rows: u64,
    /// SHA-256 of the source bytes.
    pub input_sha256: String,
    /// SHA-256 of the extract's bytes (`data.csv`).
    pub output_sha256: String,
    /// [`rules_sha256`](super::rules_sha256) of the spec applied.
    pub rules_sha256: String,
    /// [`key_fingerprint`](super::key_fingerprint) of the permit key used.
    pub key_fingerprint: String,
    /// The extract's columns, in output order, measured over the rows written.
    pub columns: Vec<ColumnReport>,
    /// Present when the spec asks for k-anonymity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k_anonymity: Option<KAnonymityReport>,
    pub duration_ms: u64,
    /// Source rows per second over the whole preparation (both passes when suppressing).
    pub rows_per_second: f64,
    /// Source megabytes (10^6 bytes) per second, likewise.
    pub megabytes_per_second: f64,
}

/// One column of the extract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnReport {
    pub name: String,
    /// The rule applied (`Keep`, `Hmac`, ...).
    pub rule: String,
    /// Null (empty) values written.
    pub nulls: u64,
    /// Distinct non-null values written, counted exactly up to a cap.
    pub distinct: u64,
    /// True when the cap was reached: `distinct` is then only a lower bound.
    pub distinct_is_lower_bound: bool,
}

/// How identifiable the extract is by its quasi-identifiers (after any suppression).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KAnonymityReport {
    /// The k required.
    pub k: u32,
    /// The quasi-identifier columns, in output order.
    pub quasi_identifiers: Vec<String>,
    /// The size of the smallest equivalence class; `None` when the extract has no rows.
    pub minimum_k: Option<u64>,
    /// Equivalence classes: distinct combinations of quasi-identifier values.
    pub classes: u64,
    /// Classes by size, in the buckets of [`HISTOGRAM_BUCKETS`].
    pub class_size_histogram: BTreeMap<String, u64>,
}

/// The class-size buckets: exact where re-identification risk is highest, coarser beyond.
pub const HISTOGRAM_BUCKETS: [&str; 8] = ["1", "2", "3-4", "5-9", "10-19", "20-49", "50-99", "100+"];

/// The histogram bucket of a class of `size` rows.
pub(crate) fn bucket(size: u64) -> &'static str {
    let index = match size {
        0 | 1 => 0,
        2 => 1,
        3..=4 => 2,
        5..=9 => 3,
        10..=19 => 4,
        20..=49 => 5,
        50..=99 => 6,
        _ => 7,
    };
    HISTOGRAM_BUCKETS[index]
}

/// Builds the k-anonymity report from class sizes, counting only classes of at least
/// `min_size` rows (1 when reporting; k when small classes were suppressed). Every bucket is
/// present, zero or not, so reports compare shape for shape.
pub(crate) fn k_anonymity_report(
    k: u32,
    quasi_identifiers: Vec<String>,
    class_sizes: impl Iterator<Item = u64>,
    min_size: u64,
) -> KAnonymityReport {
    let mut histogram: BTreeMap<String, u64> =
        HISTOGRAM_BUCKETS.iter().map(|b| ((*b).to_owned(), 0)).collect();
    let mut classes = 0;
    let mut minimum_k = None;
    for size in class_sizes.filter(|size| *size >= min_size.max(1)) {
        classes += 1;
        minimum_k = Some(minimum_k.map_or(size, |m: u64| m.min(size)));
        *histogram.entry(bucket(size).to_owned()).or_default() += 1;
    }
    KAnonymityReport { k, quasi_identifiers, minimum_k, classes, class_size_histogram: histogram }
}

/// Rounds a rate to one decimal, so the value survives a JSON round trip unchanged and the
/// report read back from disk equals the one returned.
pub(crate) fn round_rate(rate: f64) -> f64 {
    if rate.is_finite() { (rate * 10.0).round() / 10.0 } else { 0.0 }
}
