//! What to prepare: the dataset's columns and their rules. The types mirror `haven_api`'s
//! `DatasetGrant` field for field and share its JSON shape, so the operator converts with
//! `serde_json` and this crate stays free of kube.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// One dataset's preparation rules (the JSON shape of `haven_api`'s `DatasetGrant`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreparationSpec {
    /// The dataset's name; every error and the report name it.
    pub name: String,
    /// Where the raw source lives. Unused here: the caller resolves it to a path, and it is
    /// left out of [`rules_sha256`] because moving a file does not change the extract.
    #[serde(default)]
    pub source: String,
    /// Who supplied the source, for the register of data held. Unused here and, like
    /// `source`, left out of [`rules_sha256`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custodian: Option<String>,
    /// The CSV field delimiter: exactly one byte.
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// The permitted columns and the rule applied to each.
    pub columns: Vec<ColumnSpec>,
    /// What to do with a source column that has no rule.
    #[serde(default)]
    pub on_unknown_column: UnknownColumnPolicy,
    /// The k-anonymity requirement over the quasi-identifier columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k_anonymity: Option<KAnonymitySpec>,
}

fn default_delimiter() -> String {
    ",".into()
}

/// How one column is transformed.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ColumnSpec {
    /// The column's name in the source header.
    pub name: String,
    pub rule: RuleKind,
    /// Parameters of `Hmac`; defaults apply when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac: Option<HmacSpec>,
    /// Parameters of `GeneraliseDate` (required for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generalise_date: Option<GeneraliseDateSpec>,
    /// Parameters of `Truncate` (required for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<TruncateSpec>,
    /// Parameters of `Band` (required for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band: Option<BandSpec>,
    /// Whether the column counts towards k-anonymity.
    #[serde(default)]
    pub quasi_identifier: bool,
}

/// The transformation applied to a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum RuleKind {
    Keep,
    Drop,
    Hmac,
    GeneraliseDate,
    Truncate,
    Band,
    Suppress,
}

impl RuleKind {
    /// The rule's name as written in the spec, for reports and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "Keep",
            Self::Drop => "Drop",
            Self::Hmac => "Hmac",
            Self::GeneraliseDate => "GeneraliseDate",
            Self::Truncate => "Truncate",
            Self::Band => "Band",
            Self::Suppress => "Suppress",
        }
    }
}

/// Parameters of the `Hmac` rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HmacSpec {
    /// Hex characters kept of the HMAC output (8-64).
    #[serde(default = "default_hmac_length")]
    pub length: u8,
    /// Trim surrounding white space before hashing.
    #[serde(default = "yes")]
    pub trim: bool,
    /// Lower-case before hashing, so "AB12" and "ab12" give one pseudonym.
    #[serde(default)]
    pub case_insensitive: bool,
}

impl Default for HmacSpec {
    fn default() -> Self {
        Self { length: default_hmac_length(), trim: true, case_insensitive: false }
    }
}

fn default_hmac_length() -> u8 {
    16
}

fn yes() -> bool {
    true
}

/// Parameters of the `GeneraliseDate` rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GeneraliseDateSpec {
    pub to: DateGranularity,
    /// Width of a band in years, for `YearBand`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band_years: Option<u32>,
}

/// How far a date is generalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum DateGranularity {
    /// 1987-06-15 → 1987.
    Year,
    /// 1987-06-15 → 1987-06.
    YearMonth,
    /// 1987-06-15 → 1985-1989 (with bandYears 5).
    YearBand,
}

/// Parameters of the `Truncate` rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TruncateSpec {
    /// Unicode characters kept from the start of the value.
    pub length: u32,
}

/// Parameters of the `Band` rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BandSpec {
    /// Width of each band (10 gives 30-39).
    pub width: i64,
    /// Values at or above this become one band ("90+").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_code: Option<i64>,
    /// Values below this become one band ("<18").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bottom_code: Option<i64>,
}

/// What to do with a source column that has no rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum UnknownColumnPolicy {
    /// Stop with an error naming the column (fail closed).
    #[default]
    Fail,
    /// Leave the column out of the extract.
    Drop,
}

/// A k-anonymity requirement over the quasi-identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KAnonymitySpec {
    /// Every combination of quasi-identifier values should occur at least k times.
    pub k: u32,
    #[serde(default)]
    pub action: KAnonymityAction,
    /// With `SuppressRows`, fail if more than this percentage of rows would go.
    #[serde(default = "default_max_suppressed_percent")]
    pub max_suppressed_percent: u32,
}

fn default_max_suppressed_percent() -> u32 {
    5
}

/// What preparation does about equivalence classes smaller than k.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum KAnonymityAction {
    /// Measure and report; change nothing.
    #[default]
    Report,
    /// Remove the rows of classes smaller than k.
    SuppressRows,
}

/// The hex SHA-256 of the spec's canonical JSON without `source`. An extract records it so
/// the operator can tell an extract made under other rules from a current one.
///
/// Canonical means object keys sorted at every level, written compactly: the hash then does
/// not depend on serde_json's `preserve_order` feature, which another crate in a build may
/// switch on.
pub fn rules_sha256(spec: &PreparationSpec) -> String {
    // Serialising plain structs of strings, numbers and enums cannot fail; Null keeps the
    // hash well defined even if it somehow did.
    let mut value = serde_json::to_value(spec).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("source");
        map.remove("custodian");
    }
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Identifies a permit key without revealing it: `sha256:` and the first 16 hex characters
/// of its SHA-256. Reports carry it so a stale extract (made with a shredded or rotated key)
/// is recognised.
pub fn key_fingerprint(key: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(key));
    format!("sha256:{}", &digest[..16])
}
