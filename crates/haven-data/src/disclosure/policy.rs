//! What the checks compare against: the permit's disclosure thresholds and file rules.

use serde::{Deserialize, Serialize};

/// Statistical disclosure control thresholds. `Default` is ACRO's `acro/default.yaml`; serialised
/// with ACRO's names, so a report shows the risk appetite the way ACRO's configuration does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Cells with 0 < count < this fail `threshold` (`safe_threshold`, 10).
    #[serde(rename = "safe_threshold")]
    pub min_cell_count: u64,
    /// N of the N-K rule (`safe_nk_n`, 2).
    #[serde(rename = "safe_nk_n")]
    pub dominance_n: usize,
    /// K of the N-K rule as a fraction (`safe_nk_k`, 0.9): the N largest contributors may make
    /// up at most this much of a cell's total.
    #[serde(rename = "safe_nk_k")]
    pub dominance_k: f64,
    /// p of the p% rule as a fraction (`safe_pratio_p`, 0.1).
    #[serde(rename = "safe_pratio_p")]
    pub p_ratio: f64,
    /// Fewest residual degrees of freedom a model may have (`safe_dof_threshold`, 10).
    #[serde(rename = "safe_dof_threshold")]
    pub min_degrees_of_freedom: u64,
    /// Zero cells fail `zeros`, and all-zero cells fail `p-ratio` (ACRO default true).
    pub zeros_are_disclosive: bool,
    /// Report empty cells as `missing` (ACRO default false).
    pub check_missing_values: bool,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_cell_count: 10,
            dominance_n: 2,
            dominance_k: 0.9,
            p_ratio: 0.1,
            min_degrees_of_freedom: 10,
            zeros_are_disclosive: true,
            check_missing_values: false,
        }
    }
}

impl Thresholds {
    /// From a permit's integers (`dominanceKPercent: 90`, `pPercent: 10`), keeping ACRO's
    /// defaults for zeros and missing values.
    pub fn from_percent(
        min_cell_count: u32,
        dominance_n: u32,
        dominance_k_percent: u32,
        p_percent: u32,
        min_degrees_of_freedom: u32,
    ) -> Self {
        Self {
            min_cell_count: min_cell_count.into(),
            dominance_n: usize::try_from(dominance_n).unwrap_or(usize::MAX),
            dominance_k: f64::from(dominance_k_percent) / 100.0,
            p_ratio: f64::from(p_percent) / 100.0,
            min_degrees_of_freedom: min_degrees_of_freedom.into(),
            ..Self::default()
        }
    }
}

/// Which files may leave at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePolicy {
    /// Extensions that may leave, lower case without the dot.
    pub allowed_extensions: Vec<String>,
    /// Largest file, in bytes.
    pub max_file_size: u64,
}

impl Default for FilePolicy {
    /// The permit's defaults: csv, txt, md, pdf, png, json; 10 MiB.
    fn default() -> Self {
        Self {
            allowed_extensions: ["csv", "txt", "md", "pdf", "png", "json"].map(String::from).to_vec(),
            max_file_size: 10 * 1024 * 1024,
        }
    }
}

impl FilePolicy {
    pub(crate) fn allows(&self, extension: &str) -> bool {
        self.allowed_extensions
            .iter()
            .any(|allowed| allowed.trim_start_matches('.').eq_ignore_ascii_case(extension))
    }
}

/// Everything [`check_file`](super::check_file) needs.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckPolicy {
    pub files: FilePolicy,
    pub thresholds: Thresholds,
    /// Lengths of the permit's pseudonyms in hex characters (16 by default).
    pub pseudonym_hex_lengths: Vec<usize>,
}

impl Default for CheckPolicy {
    fn default() -> Self {
        Self {
            files: FilePolicy::default(),
            thresholds: Thresholds::default(),
            pseudonym_hex_lengths: vec![16],
        }
    }
}
