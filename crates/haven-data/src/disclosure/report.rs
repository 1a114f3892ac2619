//! The ACRO-shaped `results.json` for one request: each file is one ACRO "output", so a
//! reviewer (or SACRO's viewer) reads Haven's checks the way it reads ACRO's.
//!
//! Shape, as `acro/record.py` `finalise_json` writes it: `{"version", "results": {uid: {uid,
//! status, type, properties, files: [{name, sdc: {summary, cells}}], outcome, command,
//! summary, timestamp, comments, exception, fair}}}`. Where Haven differs, and why:
//! - `version` is Haven's (`haven-<version>`), not ACRO's: ACRO's `load_records` refuses any
//!   version but its own, rightly, since these checks ran on finished tables.
//! - `properties` holds the file's size, SHA-256, the thresholds (with ACRO's names) and every
//!   check with its detail, which ACRO keeps in Python objects instead.
//! - `sdc.summary` counts flagged cells per Haven check name (`threshold`, `zeros`, `missing`,
//!   `negative`, `dominance` for ACRO's `nk-rule`, `p-ratio`, `degrees-of-freedom`), for the
//!   checks that ran, with ACRO's `suppressed: false` (Haven never suppresses).
//! - A count of 0 is one of Haven's `zeros`; ACRO fails it under `threshold` too, so
//!   `sdc.summary` and `sdc.cells` count it under both names.
//! - `sdc.cells` gives ACRO's `[row, column]` positions. A tidy table is a one-column table of
//!   cells, so a cell is `[data row counted from 0, 0]`; at most the first 20 per check.
//! - `outcome` (ACRO's cell-by-cell suppression table) is empty: nothing was suppressed.
//! - `timestamp` is RFC 3339 in UTC; ACRO writes local time without an offset.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::FileChecks;
use super::cells;
use super::check::{
    Check, DEGREES_OF_FREEDOM, DOMINANCE, MISSING, NEGATIVE, Outcome, P_RATIO, THRESHOLD, ZEROS,
};
use super::policy::Thresholds;

/// The report's `version`.
pub const REPORT_VERSION: &str = concat!("haven-", env!("CARGO_PKG_VERSION"));

/// Checks whose findings are cells, counted in `sdc.summary`.
const SDC_CHECKS: [&str; 7] = [THRESHOLD, ZEROS, MISSING, NEGATIVE, DOMINANCE, P_RATIO, DEGREES_OF_FREEDOM];

/// ACRO's `results.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Report {
    pub version: String,
    /// Keyed by `uid` in JSON, in request order.
    #[serde(with = "by_uid")]
    pub results: Vec<Output>,
}

impl Report {
    /// Whether any hard check failed: the request cannot be approved.
    pub fn blocks(&self) -> bool {
        self.results.iter().any(|output| output.properties.checks.iter().any(Check::blocks))
    }
}

/// One ACRO output: one file of the request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Output {
    /// `output_0`, `output_1`, … in request order, as ACRO numbers them.
    pub uid: String,
    /// The worst outcome of the file's checks.
    pub status: Outcome,
    #[serde(rename = "type")]
    pub output_type: OutputType,
    pub properties: Properties,
    pub files: Vec<OutputFile>,
    pub outcome: BTreeMap<String, serde_json::Value>,
    pub command: String,
    /// ACRO's summary: the status, then each check that did not pass.
    pub summary: String,
    pub timestamp: DateTime<Utc>,
    pub comments: Vec<String>,
    /// The researcher's case for an exception (ACRO's `exception`); empty here.
    pub exception: String,
    #[serde(default)]
    pub fair: BTreeMap<String, serde_json::Value>,
}

/// ACRO's output types that apply to a file.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OutputType {
    /// A tidy table the disclosure rules ran on.
    Table,
    /// A model output with residual degrees of freedom.
    Regression,
    /// Anything else: ACRO's outputs for a human to review.
    Custom,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Properties {
    /// `airlock`: these outputs were checked as files leaving through the airlock.
    pub method: String,
    /// The request, `<namespace>/<name>`.
    pub request: String,
    pub size: u64,
    pub sha256: String,
    pub risk_appetite: Thresholds,
    pub checks: Vec<Check>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct OutputFile {
    /// The file's path as requested.
    pub name: String,
    pub sdc: Sdc,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Sdc {
    pub summary: SdcSummary,
    /// Per check, the `[row, column]` of flagged cells.
    pub cells: BTreeMap<String, Vec<[u64; 2]>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct SdcSummary {
    /// Whether the cells were suppressed (ACRO's `suppress=True`): never, here.
    pub suppressed: bool,
    /// Per check, how many cells it flagged.
    #[serde(flatten)]
    pub counts: BTreeMap<String, u64>,
}

/// The `results.json` for `request`, one output per file in order.
pub fn report(
    request: &str,
    files: &[FileChecks],
    thresholds: &Thresholds,
    timestamp: DateTime<Utc>,
) -> Report {
    let results = files
        .iter()
        .enumerate()
        .map(|(index, file)| Output {
            uid: format!("output_{index}"),
            status: file.checks.iter().fold(Outcome::Pass, |worst, check| worst.worst(check.outcome)),
            output_type: output_type(&file.checks),
            properties: Properties {
                method: "airlock".into(),
                request: request.to_owned(),
                size: file.size,
                sha256: file.sha256.clone(),
                risk_appetite: thresholds.clone(),
                checks: file.checks.clone(),
            },
            files: vec![OutputFile { name: file.path.clone(), sdc: sdc(&file.checks) }],
            outcome: BTreeMap::new(),
            command: format!("airlock request {request}"),
            summary: output_summary(&file.checks),
            timestamp,
            comments: Vec::new(),
            exception: String::new(),
            fair: BTreeMap::new(),
        })
        .collect();
    Report { version: REPORT_VERSION.to_owned(), results }
}

fn output_type(checks: &[Check]) -> OutputType {
    let ran = |name: &str| checks.iter().any(|check| check.check == name);
    if ran(DEGREES_OF_FREEDOM) {
        OutputType::Regression
    } else if [THRESHOLD, ZEROS, NEGATIVE, DOMINANCE, P_RATIO].iter().any(|name| ran(name)) {
        OutputType::Table
    } else {
        OutputType::Custom
    }
}

/// Flagged cells of an SDC check: its count, and the rows its detail lists.
fn flagged(check: &Check) -> (u64, Vec<u64>) {
    if check.outcome == Outcome::Pass {
        return (0, Vec::new());
    }
    match cells::parse(&check.detail) {
        Some(found) => found,
        None => (u64::from(check.outcome == Outcome::Fail), Vec::new()),
    }
}

fn sdc(checks: &[Check]) -> Sdc {
    let mut sdc = Sdc::default();
    for check in checks.iter().filter(|check| SDC_CHECKS.contains(&check.check.as_str())) {
        let (count, rows) = flagged(check);
        sdc.summary.counts.insert(check.check.clone(), count);
        // Rows are spreadsheet rows (the header is row 1); ACRO counts data rows from 0.
        let positions = rows.into_iter().filter(|&row| row >= 2).map(|row| [row - 2, 0]).collect();
        sdc.cells.insert(check.check.clone(), positions);
    }
    // ACRO's threshold rule is `count < threshold`, which a zero meets too: Haven reports a
    // zero under `zeros` alone, so ACRO's `threshold` names it as well, as ACRO would show it.
    if let (Some(zeros), true) = (sdc.cells.get(ZEROS).cloned(), sdc.summary.counts.contains_key(THRESHOLD)) {
        let zero_count = sdc.summary.counts.get(ZEROS).copied().unwrap_or_default();
        *sdc.summary.counts.entry(THRESHOLD.to_owned()).or_default() += zero_count;
        let cells = sdc.cells.entry(THRESHOLD.to_owned()).or_default();
        cells.extend(zeros);
        cells.sort_unstable();
        cells.dedup();
    }
    sdc
}

/// ACRO's `get_summary` wording: `fail; threshold: 2 cells may need suppressing; …`.
fn output_summary(checks: &[Check]) -> String {
    let status = checks.iter().fold(Outcome::Pass, |worst, check| worst.worst(check.outcome));
    let parts: Vec<String> = checks
        .iter()
        .filter(|check| check.outcome != Outcome::Pass)
        .map(|check| match (check.check.as_str(), check.outcome) {
            (NEGATIVE, Outcome::Review) => "negative values found".to_owned(),
            (MISSING, Outcome::Review) => "missing values found".to_owned(),
            (name, Outcome::Fail) if SDC_CHECKS.contains(&name) && name != DEGREES_OF_FREEDOM => {
                format!("{name}: {} cells may need suppressing", flagged(check).0)
            }
            (name, outcome) => format!("{name}: {}", outcome.as_str()),
        })
        .collect();
    if parts.is_empty() {
        status.as_str().to_owned()
    } else {
        format!("{}; {}", status.as_str(), parts.join("; "))
    }
}

/// `results` as a JSON object keyed by uid, in order (ACRO's dict keeps insertion order; a
/// map type would sort `output_10` before `output_2`).
mod by_uid {
    use std::fmt;

    use serde::de::{MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserializer, Serializer};

    use super::Output;

    pub(super) fn serialize<S: Serializer>(outputs: &[Output], serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(outputs.len()))?;
        for output in outputs {
            map.serialize_entry(&output.uid, output)?;
        }
        map.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Output>, D::Error> {
        struct Outputs;
        impl<'de> Visitor<'de> for Outputs {
            type Value = Vec<Output>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of outputs keyed by uid")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut outputs = Vec::new();
                while let Some((uid, mut output)) = map.next_entry::<String, Output>()? {
                    output.uid = uid;
                    outputs.push(output);
                }
                Ok(outputs)
            }
        }
        deserializer.deserialize_map(Outputs)
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
