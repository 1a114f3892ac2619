//! A dataset granted by a permit, and the rules that minimise and pseudonymise it.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One dataset of a permit: where its raw source is, which columns are permitted, and how each
/// is transformed before anyone sees it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("!has(self.kAnonymity) || self.columns.exists(c, c.quasiIdentifier)")
        .message("kAnonymity needs at least one column marked quasiIdentifier: true")
        .field_path(".kAnonymity"),
)]
#[serde(rename_all = "camelCase")]
pub struct DatasetGrant {
    /// The dataset's name: a DNS label, used in paths (`/data/<name>` in workspaces).
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,

    /// Path of the raw source file under the data store's `raw/` directory
    /// (e.g. `registry/cancer-2024.csv`). Relative; never `..`.
    #[schemars(length(min = 1, max = 512), regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9._/-]*$"))]
    #[x_kube(validation = Rule::new("!self.matches('(^|/)[.][.](/|$)')")
        .message("source must stay inside the data store: '..' is not allowed"))]
    pub source: String,

    /// The organisation that supplied the source (its data holder, e.g. a national cancer
    /// registry), for the register of data held (`kubectl haven datasets`). Informational:
    /// changing it does not prepare the dataset again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub custodian: Option<String>,

    /// Field delimiter of the CSV source; defaults to a comma.
    #[serde(default = "default_delimiter")]
    #[schemars(length(min = 1, max = 1))]
    pub delimiter: String,

    /// The permitted columns and the rule applied to each. Columns of the source not listed
    /// here are handled by `onUnknownColumn`.
    #[schemars(length(min = 1, max = 500))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub columns: Vec<ColumnRule>,

    /// What to do with a source column not listed in `columns`: `Fail` (default, fail closed)
    /// or `Drop`.
    #[serde(default)]
    pub on_unknown_column: UnknownColumnPolicy,

    /// k-anonymity requirement over the columns marked `quasiIdentifier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k_anonymity: Option<KAnonymity>,
}

fn default_delimiter() -> String {
    ",".into()
}

/// How one column is transformed.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("self.rule != 'GeneraliseDate' || has(self.generaliseDate)")
        .message("generaliseDate is required when rule is GeneraliseDate").field_path(".generaliseDate"),
    validation = Rule::new("self.rule != 'Truncate' || has(self.truncate)")
        .message("truncate is required when rule is Truncate").field_path(".truncate"),
    validation = Rule::new("self.rule != 'Band' || has(self.band)")
        .message("band is required when rule is Band").field_path(".band"),
    validation = Rule::new("!has(self.hmac) || self.rule == 'Hmac'")
        .message("hmac is only allowed when rule is Hmac").field_path(".hmac"),
    validation = Rule::new("!has(self.generaliseDate) || self.rule == 'GeneraliseDate'")
        .message("generaliseDate is only allowed when rule is GeneraliseDate").field_path(".generaliseDate"),
    validation = Rule::new("!has(self.truncate) || self.rule == 'Truncate'")
        .message("truncate is only allowed when rule is Truncate").field_path(".truncate"),
    validation = Rule::new("!has(self.band) || self.rule == 'Band'")
        .message("band is only allowed when rule is Band").field_path(".band"),
    validation = Rule::new("!(self.quasiIdentifier && (self.rule == 'Drop' || self.rule == 'Suppress'))")
        .message("a dropped or suppressed column cannot be a quasiIdentifier").field_path(".quasiIdentifier"),
)]
#[serde(rename_all = "camelCase")]
pub struct ColumnRule {
    /// The column's name in the source header.
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    /// What to do with the column.
    pub rule: ColumnRuleKind,
    /// Parameters of `Hmac` (optional; defaults apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac: Option<HmacRule>,
    /// Parameters of `GeneraliseDate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generalise_date: Option<GeneraliseDateRule>,
    /// Parameters of `Truncate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<TruncateRule>,
    /// Parameters of `Band`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band: Option<BandRule>,
    /// Whether the column is a quasi-identifier for the k-anonymity check.
    #[serde(default)]
    pub quasi_identifier: bool,
}

/// The transformation applied to a column.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ColumnRuleKind {
    /// Copy the value unchanged.
    Keep,
    /// Remove the column from the extract.
    Drop,
    /// Replace the value by a keyed HMAC-SHA256 pseudonym, unlinkable across permits.
    Hmac,
    /// Coarsen a date to a year, a year-month or a band of years.
    GeneraliseDate,
    /// Keep only the first characters (e.g. the postcode district).
    Truncate,
    /// Replace a number by its band (e.g. age 30-39), with an optional top code.
    Band,
    /// Keep the column but replace every value by null.
    Suppress,
}

/// Parameters of the `Hmac` rule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HmacRule {
    /// Hex characters kept of the HMAC output (8-64; default 16, i.e. 64 bits).
    #[serde(default = "default_hmac_length")]
    #[schemars(range(min = 8, max = 64))]
    pub length: u8,
    /// Trim surrounding white space before hashing (default true).
    #[serde(default = "yes")]
    pub trim: bool,
    /// Lower-case before hashing, so "AB12" and "ab12" give one pseudonym (default false).
    #[serde(default)]
    pub case_insensitive: bool,
}

fn default_hmac_length() -> u8 {
    16
}

fn yes() -> bool {
    true
}

/// Parameters of the `GeneraliseDate` rule.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.to != 'YearBand' || has(self.bandYears)")
    .message("bandYears is required when to is YearBand").field_path(".bandYears"))]
#[serde(rename_all = "camelCase")]
pub struct GeneraliseDateRule {
    /// The granularity kept.
    pub to: DateGranularity,
    /// Width of a band in years, for `YearBand`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 100))]
    pub band_years: Option<u32>,
}

/// How far a date is generalised.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DateGranularity {
    /// 1987-06-15 → 1987.
    Year,
    /// 1987-06-15 → 1987-06.
    YearMonth,
    /// 1987-06-15 → 1985-1989 (with bandYears 5).
    YearBand,
}

/// Parameters of the `Truncate` rule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TruncateRule {
    /// Characters kept from the start of the value.
    #[schemars(range(min = 1, max = 64))]
    pub length: u32,
}

/// Parameters of the `Band` rule.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("!has(self.topCode) || !has(self.bottomCode) || self.topCode > self.bottomCode")
    .message("topCode must be greater than bottomCode").field_path(".topCode"))]
#[serde(rename_all = "camelCase")]
pub struct BandRule {
    /// Width of each band (e.g. 10 gives 30-39).
    #[schemars(range(min = 1))]
    pub width: i64,
    /// Values at or above this become one band ("90+").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_code: Option<i64>,
    /// Values below this become one band ("<18").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bottom_code: Option<i64>,
}

/// What to do with a source column that the permit does not mention.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum UnknownColumnPolicy {
    /// Stop preparation with an error naming the column (fail closed).
    #[default]
    Fail,
    /// Leave the column out of the extract.
    Drop,
}

/// A k-anonymity requirement over the quasi-identifiers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KAnonymity {
    /// Every combination of quasi-identifier values must occur at least k times.
    #[schemars(range(min = 2, max = 1000))]
    pub k: u32,
    /// `Report` only measures; `SuppressRows` removes rows in classes smaller than k.
    #[serde(default)]
    pub action: KAnonymityAction,
    /// With `SuppressRows`, fail preparation if more than this percentage of rows would go
    /// (default 5).
    #[serde(default = "default_max_suppressed_percent")]
    #[schemars(range(min = 0, max = 100))]
    pub max_suppressed_percent: u32,
}

fn default_max_suppressed_percent() -> u32 {
    5
}

/// What preparation does about equivalence classes smaller than k.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum KAnonymityAction {
    /// Measure and report the minimum k; change nothing.
    #[default]
    Report,
    /// Remove the rows of classes smaller than k.
    SuppressRows,
}
