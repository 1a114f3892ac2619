//! `degrees-of-freedom` for a CSV with a `df_resid` or `dof` column (e.g. a statsmodels
//! coefficient table with the model's residual degrees of freedom on each row).

use csv::ByteRecord;

use super::values::{Value, parse_value};
use crate::disclosure::cells::Flagged;
use crate::disclosure::check::{Check, DEGREES_OF_FREEDOM};
use crate::disclosure::model::{below_dof, dof_pass};
use crate::disclosure::text::number;

#[derive(Debug)]
pub(super) struct DofRows {
    column: usize,
    min: u64,
    lowest: Option<f64>,
    below: Flagged,
}

impl DofRows {
    pub(super) fn new(column: usize, min: u64) -> Self {
        Self { column, min, lowest: None, below: Flagged::default() }
    }

    pub(super) fn observe(&mut self, row: u64, record: &ByteRecord, label: impl FnOnce() -> String) {
        let Value::Number(dof) = parse_value(record.get(self.column).unwrap_or_default()) else { return };
        self.lowest = Some(self.lowest.map_or(dof, |lowest| lowest.min(dof)));
        if dof < self.min as f64 {
            self.below.flag(row, || {
                let label = label();
                if label.is_empty() {
                    format!("dof {}", number(dof))
                } else {
                    format!("{label}, dof {}", number(dof))
                }
            });
        }
    }

    pub(super) fn finish(self) -> Check {
        if !self.below.is_empty() {
            return below_dof(
                self.below.detail("row", &format!("with residual degrees of freedom below {}", self.min)),
            );
        }
        match self.lowest {
            Some(lowest) => dof_pass(lowest, self.min, "the lowest in the degrees-of-freedom column"),
            None => Check::review(
                DEGREES_OF_FREEDOM,
                "the degrees-of-freedom column holds no numbers; the reviewers must check the model",
            ),
        }
    }
}
