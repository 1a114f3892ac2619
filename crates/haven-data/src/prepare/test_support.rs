//! Chainable constructors and a runner shared by the preparation tests.

use std::fs;
use std::path::PathBuf;

use super::*;

/// A permit key as long as the operator's would be.
pub(crate) const KEY: &[u8] = b"permit-key-0123456789abcdef";
/// Another permit's key.
pub(crate) const OTHER_KEY: &[u8] = b"another-permit-key-0123456789";

impl ColumnSpec {
    pub(crate) fn test(name: &str, rule: RuleKind) -> Self {
        Self {
            name: name.into(),
            rule,
            hmac: None,
            generalise_date: None,
            truncate: None,
            band: None,
            quasi_identifier: false,
        }
    }
    pub(crate) fn keep(name: &str) -> Self {
        Self::test(name, RuleKind::Keep)
    }
    pub(crate) fn drop(name: &str) -> Self {
        Self::test(name, RuleKind::Drop)
    }
    pub(crate) fn hmac(name: &str) -> Self {
        Self::test(name, RuleKind::Hmac)
    }
    pub(crate) fn date(name: &str, to: DateGranularity, band_years: Option<u32>) -> Self {
        Self {
            generalise_date: Some(GeneraliseDateSpec { to, band_years }),
            ..Self::test(name, RuleKind::GeneraliseDate)
        }
    }
    pub(crate) fn truncate(name: &str, length: u32) -> Self {
        Self { truncate: Some(TruncateSpec { length }), ..Self::test(name, RuleKind::Truncate) }
    }
    pub(crate) fn band(name: &str, width: i64, top_code: Option<i64>, bottom_code: Option<i64>) -> Self {
        Self { band: Some(BandSpec { width, top_code, bottom_code }), ..Self::test(name, RuleKind::Band) }
    }
    pub(crate) fn with_hmac(self, length: u8, trim: bool, case_insensitive: bool) -> Self {
        Self { hmac: Some(HmacSpec { length, trim, case_insensitive }), ..self }
    }
    pub(crate) fn quasi(self) -> Self {
        Self { quasi_identifier: true, ..self }
    }
}

impl PreparationSpec {
    pub(crate) fn test(columns: Vec<ColumnSpec>) -> Self {
        Self {
            name: "visits".into(),
            source: "cohort/visits.csv".into(),
            custodian: None,
            delimiter: ",".into(),
            columns,
            on_unknown_column: UnknownColumnPolicy::Fail,
            k_anonymity: None,
        }
    }
    pub(crate) fn dropping_unknown(self) -> Self {
        Self { on_unknown_column: UnknownColumnPolicy::Drop, ..self }
    }
    pub(crate) fn delimited(self, delimiter: &str) -> Self {
        Self { delimiter: delimiter.into(), ..self }
    }
    pub(crate) fn k_anonymous(self, k: u32, action: KAnonymityAction, max_suppressed_percent: u32) -> Self {
        Self { k_anonymity: Some(KAnonymitySpec { k, action, max_suppressed_percent }), ..self }
    }
}

/// A scratch directory holding one source file.
pub(crate) struct Scratch {
    pub dir: tempfile::TempDir,
    pub input: PathBuf,
}

impl Scratch {
    pub(crate) fn with_input(bytes: impl AsRef<[u8]>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("source.csv");
        fs::write(&input, bytes).expect("write source");
        Self { dir, input }
    }

    pub(crate) fn output(&self) -> PathBuf {
        self.dir.path().join("out.csv")
    }
}

/// Prepares `input` with `spec` and [`KEY`]; the output as text and the report.
pub(crate) fn run(
    spec: &PreparationSpec,
    input: impl AsRef<[u8]>,
) -> Result<(String, PreparationReport), PrepareError> {
    let scratch = Scratch::with_input(input);
    let report = prepare_csv(spec, KEY, &scratch.input, &scratch.output(), &|_| {})?;
    let output = fs::read_to_string(scratch.output()).expect("read output");
    Ok((output, report))
}

/// Like [`run`], for inputs that must fail; also checks no output was left behind.
pub(crate) fn run_err(spec: &PreparationSpec, input: impl AsRef<[u8]>) -> PrepareError {
    let scratch = Scratch::with_input(input);
    let err = prepare_csv(spec, KEY, &scratch.input, &scratch.output(), &|_| {}).expect_err("must fail");
    assert!(!scratch.output().exists(), "a failed run leaves no output: {err}");
    err
}

/// Applies one column's rule to one value, as the engine would.
pub(crate) fn apply(column: &ColumnSpec, key: &[u8], value: &str) -> Result<String, String> {
    let transform = super::transform::Transform::for_column(column, key)?.ok_or("dropped")?;
    let mut out = Vec::new();
    if !value.is_empty() {
        transform.apply(value, &mut out)?;
    }
    Ok(String::from_utf8(out).expect("utf-8 output"))
}
