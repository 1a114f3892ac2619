//! Automated disclosure checks for airlock export requests, following ACRO
//! (<https://github.com/AI-SDC/ACRO>: `acro/default.yaml`, `acro_tables.py`, `sdcchecks.py`,
//! `acro_regression.py`, `record.py`).
//!
//! ACRO checks an output while it is made, from the raw data. The airlock sees only finished
//! files, so a table must carry its own evidence. [`check_file`] runs, on every file:
//!
//! - `file-policy` (hard): extension allowed, size within the limit, and no executable or
//!   archive content (by magic bytes) unless that type is explicitly allowed.
//!
//! and then, by the requested name's extension:
//!
//! - `.csv`: `row-level` (hard: a column of pseudonyms, or a unique key in
//!   [`UNIQUE_KEY_MIN_ROWS`] or more rows), `table-structure`, and ACRO's rules below;
//! - `.txt` stating a model's residual degrees of freedom (statsmodels `Df Residuals:`, R's
//!   `… on N degrees of freedom`): `degrees-of-freedom`;
//! - anything else (pdf, png, svg, md, json, free text): `content` review — the reviewers
//!   must look at it.
//!
//! # The table convention
//!
//! A CSV is checked as a *tidy* table: one row per table cell, category columns, and evidence
//! columns recognised by header (trimmed, case-insensitive):
//!
//! | header | meaning | rules |
//! |---|---|---|
//! | `count`, `n`, `freq`, `frequency` | contributors to the cell | `threshold` (0 < count < `min_cell_count` fails), `zeros` (count 0 fails when zeros are disclosive), `missing`, `negative` |
//! | `top1`, `top2`, … (`largest`/`max` = top1, `second_largest`/`second` = top2) | the k-th largest single contribution | `dominance` (N-K), `p-ratio` |
//! | `total`, `sum` | the cell's total | `dominance`, `p-ratio` |
//! | `df_resid`, `dof` | a model's residual degrees of freedom | `degrees-of-freedom` |
//!
//! ```text
//! region,sex,count,top1,top2,total
//! North,F,112,4000,3500,91000
//! ```
//!
//! Empty values (and `NA`, `NaN`, `null`) are missing: skipped, or reported by `missing` when
//! the permit asks. Cells the researcher already suppressed (`*`, `c`, `[c]`, `suppressed`,
//! `redacted`, `<10`) are skipped. A CSV with none of these columns gets `table-structure:
//! review` explaining this convention; nothing is guessed.
//!
//! # Outcomes
//!
//! Only `file-policy`, `row-level` and `scanner` block ([`Check::blocks`]). Disclosure-control
//! failures (`threshold`, `zeros`, `dominance`, `p-ratio`, `degrees-of-freedom`) are `fail`
//! but, as in ACRO, an output checker may approve an exception; they are for the reviewers.
//!
//! # Differences from ACRO
//!
//! - A zero count is reported by `zeros` only; ACRO's `threshold` (`count < 10`) also counts
//!   it. With `zeros_are_disclosive: false` the zero passes here, which is what that setting
//!   asks for (ACRO 1.0 does the same for histogram bins).
//! - The N-K rule fails when the N largest make *more than* K of the total, as ACRO 0.4's
//!   `agg_nk` and the rule's definition; ACRO 1.0's `NKCheck` fails at exactly K too.
//! - Rule boundaries allow for floating-point noise (1e-9 relative): a cell exactly at the
//!   threshold passes whatever the division rounds to.
//! - A one-contributor cell fails `p-ratio` whatever `zeros_are_disclosive` says (p = 0 by
//!   the formula, as ACRO 1.0 computes); ACRO 0.4 returned `zeros_are_disclosive` for it.
//! - Negative values make `negative` a `review` (ACRO 0.4) and, as ACRO 1.0 says, leave the
//!   dominance rules undefined for their cells; but where ACRO 1.0 then returns `review` for
//!   the whole table, the other cells are still judged here, so `dominance`/`p-ratio` fail
//!   when some other cell breaks them, and are `review` otherwise.
//! - ACRO's `all-values-are-same` (for tables of modes) and linked-table checks need the raw
//!   data and are not run.

mod cells;
mod check;
mod embedded;
mod model;
mod policy;
mod report;
mod sniff;
mod table;
#[cfg(test)]
mod test_support;
mod text;

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use check::{
    CONTENT, Check, DEGREES_OF_FREEDOM, DOMINANCE, FILE_POLICY, HARD_CHECKS, MISSING, NEGATIVE, Outcome,
    P_RATIO, ROW_LEVEL, SCANNER, TABLE_STRUCTURE, THRESHOLD, ZEROS, summary,
};
pub use policy::{CheckPolicy, FilePolicy, Thresholds};
pub use report::{
    Output, OutputFile, OutputType, Properties, REPORT_VERSION, Report, Sdc, SdcSummary, report,
};
pub use table::{CONVENTION, UNIQUE_KEY_MIN_ROWS};

/// One file's checks, as the report and the request's status record them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FileChecks {
    /// The path as requested (relative, e.g. `tables/ages.csv`).
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub checks: Vec<Check>,
}

impl FileChecks {
    /// Hashes the file at `path` and runs [`check_file`] on it (for callers that have no
    /// snapshot manifest to take the size and SHA-256 from).
    ///
    /// Only a regular file is opened (after following links): a FIFO would block and a link
    /// to a device would never end, so anything else fails `file-policy` unread, as the
    /// operator's snapshot refuses it. A file over the size limit is not read either.
    pub fn compute(path: &Path, name: &str, policy: &CheckPolicy) -> io::Result<Self> {
        let metadata = std::fs::metadata(path)?;
        let refused = |size: u64, why: String| Self {
            path: name.to_owned(),
            size,
            sha256: String::new(),
            checks: vec![Check::fail(FILE_POLICY, why)],
        };
        if !metadata.is_file() {
            return Ok(refused(
                0,
                "not a regular file: a directory, device, pipe or socket cannot leave".into(),
            ));
        }
        if metadata.len() > policy.files.max_file_size {
            let checks = check_file(path, name, policy)?; // file-policy fails on the size alone
            return Ok(Self { path: name.to_owned(), size: metadata.len(), sha256: String::new(), checks });
        }
        let file = File::open(path)?;
        if !file.metadata()?.is_file() {
            return Ok(refused(0, "not a regular file: it changed while being opened".into()));
        }
        // Never more than the limit, whatever the file grows to meanwhile.
        let (size, sha256) = crate::hashing::hash_reader(file.take(policy.files.max_file_size + 1))?;
        if size > policy.files.max_file_size {
            return Ok(refused(
                size,
                format!("grew past the limit of {} bytes while being read", policy.files.max_file_size),
            ));
        }
        Ok(Self { path: name.to_owned(), size, sha256, checks: check_file(path, name, policy)? })
    }
}

/// Runs every check that applies to one file.
///
/// `name` is the file's path as requested (relative, e.g. `tables/ages.csv`): the extension
/// and the details use it; `path` is where the bytes are. When `file-policy` fails nothing
/// else runs: the file cannot leave whatever its content.
pub fn check_file(path: &Path, name: &str, policy: &CheckPolicy) -> io::Result<Vec<Check>> {
    let size = std::fs::metadata(path)?.len();
    let mut head = Vec::with_capacity(sniff::HEAD_LEN);
    File::open(path)?.take(sniff::HEAD_LEN as u64).read_to_end(&mut head)?;

    let file_policy = sniff::file_policy(name, size, &head, &policy.files);
    if file_policy.outcome == Outcome::Fail {
        return Ok(vec![file_policy]);
    }
    if let Some(why) = embedded::hidden_content(path, sniff::extension(name).as_deref())? {
        let detail = format!("{why}; the file cannot leave, and was not checked further");
        return Ok(vec![Check::fail(FILE_POLICY, detail)]);
    }
    let mut checks = vec![file_policy];
    match sniff::extension(name).as_deref() {
        Some("csv") => checks.extend(table::check_csv(path, policy)?),
        Some("txt") => match model::check_text(path, policy.thresholds.min_degrees_of_freedom)? {
            Some(dof) => checks.push(dof),
            None => checks.push(content_review("txt")),
        },
        extension => checks.push(content_review(extension.unwrap_or_default())),
    }
    Ok(checks)
}

fn content_review(extension: &str) -> Check {
    let why = match extension {
        "svg" => {
            ": an SVG is text that can carry the plotted data points and scripts (ACRO refuses .svg), so read \
             its source"
        }
        "txt" => ": no model summary with residual degrees of freedom was found in it",
        "json" => ": its structure is not one the checks recognise",
        _ => "",
    };
    Check::review(
        CONTENT,
        format!(".{extension} cannot be checked automatically; the reviewers must look at it{why}"),
    )
}
#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
