//! `degrees-of-freedom` for model outputs (ACRO's `MinimumDoFCheck`: a model with fewer
//! residual degrees of freedom than `safe_dof_threshold` is close to a lookup table of its
//! records). This file reads text: a statsmodels summary (`Df Residuals:`) or R's
//! `summary()` (`Residual standard error: … on 5 degrees of freedom`, `Residual deviance: …
//! on 45 degrees of freedom`). CSV columns are read in `table::dof`.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use super::check::{Check, DEGREES_OF_FREEDOM};
use super::text::{number, plural};

/// One model's residual degrees of freedom, and where the file states it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Found {
    pub line: u64,
    pub dof: f64,
    pub source: &'static str,
}

/// The check for a text file, or `None` if it states no residual degrees of freedom.
pub(super) fn check_text(path: &Path, min: u64) -> io::Result<Option<Check>> {
    let mut found = Vec::new();
    let mut reader = BufReader::new(File::open(path)?);
    let mut line = Vec::new();
    let mut number_of_line = 0u64;
    while reader.read_until(b'\n', &mut line)? > 0 {
        number_of_line += 1;
        if let Some((dof, source)) = residual_dof(&String::from_utf8_lossy(&line)) {
            found.push(Found { line: number_of_line, dof, source });
        }
        line.clear();
    }
    Ok(judge(&found, min))
}

/// The residual degrees of freedom a line states, and in which format.
pub(super) fn residual_dof(line: &str) -> Option<(f64, &'static str)> {
    if let Some((_, rest)) = line.split_once("Df Residuals:") {
        let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
        return Some((value, "Df Residuals"));
    }
    let trimmed = line.trim_start();
    if trimmed.starts_with("Residual standard error:") || trimmed.starts_with("Residual deviance:") {
        let (before, _) = trimmed.split_once("degrees of freedom")?;
        let value = before.split_whitespace().last()?.parse::<f64>().ok()?;
        return Some((value, "R residual degrees of freedom"));
    }
    None
}

fn judge(found: &[Found], min: u64) -> Option<Check> {
    let lowest = found.iter().min_by(|a, b| a.dof.total_cmp(&b.dof))?;
    let below: Vec<&Found> = found.iter().filter(|f| f.dof < min as f64).collect();
    if below.is_empty() {
        let which = if found.len() == 1 {
            format!("{}, line {}", lowest.source, lowest.line)
        } else {
            format!("the lowest of {} models, line {}", found.len(), lowest.line)
        };
        return Some(dof_pass(lowest.dof, min, &which));
    }
    let lines: Vec<String> = below.iter().map(|f| f.line.to_string()).collect();
    let examples: Vec<String> =
        below.iter().take(5).map(|f| format!("{} {}", f.source, number(f.dof))).collect();
    let line_word = if below.len() == 1 { "line" } else { "lines" };
    Some(below_dof(format!(
        "{} with residual degrees of freedom below {min} ({line_word} {}): {}; dof={} < {min}",
        plural(below.len() as u64, "model"),
        lines.join(", "),
        examples.join("; "),
        number(lowest.dof)
    )))
}

/// A failing `degrees-of-freedom` check.
pub(super) fn below_dof(cells: String) -> Check {
    Check::fail(
        DEGREES_OF_FREEDOM,
        format!(
            "{cells}; a model with so few residual degrees of freedom can reveal the records it was fitted to"
        ),
    )
}

/// A passing `degrees-of-freedom` check, worded as ACRO's summary (`dof=95 >= 10`).
pub(super) fn dof_pass(lowest: f64, min: u64, which: &str) -> Check {
    Check::pass(DEGREES_OF_FREEDOM, format!("dof={} >= {min} ({which})", number(lowest)))
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
