//! The per-value rules. A [`Transform`] is built once per column from its spec (and, for
//! `Hmac`, the permit key), then applied to every value of that column. Values are already
//! checked to be UTF-8; an empty value is null and stays null under every rule.
//!
//! Error reasons never quote the value: they end up in the permit's status, which more people
//! can read than the raw data.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::generalise::{band, generalise_date, truncate};
use super::spec::{BandSpec, ColumnSpec, DateGranularity, GeneraliseDateSpec, HmacSpec, RuleKind};

type HmacSha256 = Hmac<Sha256>;

/// Domain separation for per-column sub-keys, so one column's pseudonyms cannot be joined
/// with another's even when the values are the same.
const COLUMN_KEY_CONTEXT: &[u8] = b"haven-column:";

/// What happens to one column's values. `Drop` has no transform: the column is not read.
#[derive(Debug, Clone)]
pub(crate) enum Transform {
    Keep,
    Suppress,
    Hmac(HmacTransform),
    GeneraliseDate { to: DateGranularity, band_years: i32 },
    Truncate { chars: usize },
    Band { width: i128, top_code: Option<i128>, bottom_code: Option<i128> },
}

/// A keyed HMAC ready to clone per value: re-keying per value would cost two extra SHA-256
/// compressions each time.
#[derive(Clone)]
pub(crate) struct HmacTransform {
    mac: HmacSha256,
    length: usize,
    trim: bool,
    case_insensitive: bool,
}

impl fmt::Debug for HmacTransform {
    // Never print the keyed state.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacTransform")
            .field("length", &self.length)
            .field("trim", &self.trim)
            .field("case_insensitive", &self.case_insensitive)
            .finish_non_exhaustive()
    }
}

impl Transform {
    /// Builds the column's transform, or `None` for `Drop`. Parameters that do not belong to
    /// the rule are refused: `hmac:` under `rule: Keep` is more likely a mistake that leaks
    /// data than a harmless extra.
    pub(crate) fn for_column(column: &ColumnSpec, key: &[u8]) -> Result<Option<Self>, String> {
        let given = [
            ("hmac", column.hmac.is_some(), RuleKind::Hmac),
            ("generaliseDate", column.generalise_date.is_some(), RuleKind::GeneraliseDate),
            ("truncate", column.truncate.is_some(), RuleKind::Truncate),
            ("band", column.band.is_some(), RuleKind::Band),
        ];
        if let Some((field, _, rule)) =
            given.iter().find(|(_, present, rule)| *present && *rule != column.rule)
        {
            let (rule, actual) = (rule.as_str(), column.rule.as_str());
            return Err(format!("{field} parameters are only allowed with rule {rule}, not {actual}"));
        }
        if column.quasi_identifier && matches!(column.rule, RuleKind::Drop | RuleKind::Suppress) {
            return Err("a dropped or suppressed column cannot be a quasiIdentifier".into());
        }
        let transform = match column.rule {
            RuleKind::Drop => return Ok(None),
            RuleKind::Keep => Self::Keep,
            RuleKind::Suppress => Self::Suppress,
            RuleKind::Hmac => Self::Hmac(HmacTransform::new(
                column.hmac.as_ref().unwrap_or(&HmacSpec::default()),
                key,
                &column.name,
            )?),
            RuleKind::GeneraliseDate => {
                let spec =
                    column.generalise_date.as_ref().ok_or("rule GeneraliseDate needs generaliseDate")?;
                date_transform(spec)?
            }
            RuleKind::Truncate => {
                let spec = column.truncate.as_ref().ok_or("rule Truncate needs truncate")?;
                if spec.length == 0 {
                    return Err("truncate.length must be at least 1".into());
                }
                Self::Truncate { chars: spec.length as usize }
            }
            RuleKind::Band => band_transform(column.band.as_ref().ok_or("rule Band needs band")?)?,
        };
        Ok(Some(transform))
    }

    /// Writes the transformed `value` into `out` (which the caller has cleared); nothing is
    /// written for null.
    pub(crate) fn apply(&self, value: &str, out: &mut Vec<u8>) -> Result<(), String> {
        match self {
            Self::Keep => out.extend_from_slice(value.as_bytes()),
            Self::Suppress => {}
            Self::Hmac(hmac) => hmac.apply(value, out),
            Self::GeneraliseDate { to, band_years } => generalise_date(value, *to, *band_years, out)?,
            Self::Truncate { chars } => out.extend_from_slice(truncate(value, *chars).as_bytes()),
            Self::Band { width, top_code, bottom_code } => band(value, *width, *top_code, *bottom_code, out)?,
        }
        Ok(())
    }
}

impl HmacTransform {
    fn new(spec: &HmacSpec, key: &[u8], column: &str) -> Result<Self, String> {
        if !(8..=64).contains(&spec.length) {
            return Err(format!("hmac.length must be 8-64 hex characters, not {}", spec.length));
        }
        let mut derive = keyed(key)?;
        derive.update(COLUMN_KEY_CONTEXT);
        derive.update(column.as_bytes());
        let sub_key = derive.finalize().into_bytes();
        Ok(Self {
            mac: keyed(&sub_key)?,
            length: usize::from(spec.length),
            trim: spec.trim,
            case_insensitive: spec.case_insensitive,
        })
    }

    fn apply(&self, value: &str, out: &mut Vec<u8>) {
        let value = if self.trim { value.trim() } else { value };
        if value.is_empty() {
            return;
        }
        let mut mac = self.mac.clone();
        if !self.case_insensitive {
            mac.update(value.as_bytes());
        } else if value.is_ascii() {
            // Lower-case through a stack buffer: no allocation on the common path.
            let mut buf = [0u8; 64];
            for chunk in value.as_bytes().chunks(buf.len()) {
                let lower = &mut buf[..chunk.len()];
                lower.copy_from_slice(chunk);
                lower.make_ascii_lowercase();
                mac.update(lower);
            }
        } else {
            mac.update(value.to_lowercase().as_bytes());
        }
        let mut hex = [0u8; 64];
        // 32 bytes always fit 64 hex characters.
        if hex::encode_to_slice(mac.finalize().into_bytes(), &mut hex).is_ok() {
            out.extend_from_slice(&hex[..self.length]);
        }
    }
}

fn keyed(key: &[u8]) -> Result<HmacSha256, String> {
    HmacSha256::new_from_slice(key).map_err(|e| format!("cannot key HMAC-SHA256: {e}"))
}

fn date_transform(spec: &GeneraliseDateSpec) -> Result<Transform, String> {
    let band_years = match (spec.to, spec.band_years) {
        (DateGranularity::YearBand, None) => {
            return Err("generaliseDate.bandYears is required for YearBand".into());
        }
        (DateGranularity::YearBand, Some(0)) => {
            return Err("generaliseDate.bandYears must be at least 1".into());
        }
        (DateGranularity::YearBand, Some(n)) => {
            i32::try_from(n).map_err(|_| "generaliseDate.bandYears is too large")?
        }
        (_, Some(_)) => return Err("generaliseDate.bandYears is only allowed with to: YearBand".into()),
        (_, None) => 1,
    };
    Ok(Transform::GeneraliseDate { to: spec.to, band_years })
}

fn band_transform(spec: &BandSpec) -> Result<Transform, String> {
    if spec.width < 1 {
        return Err(format!("band.width must be at least 1, not {}", spec.width));
    }
    if let (Some(top), Some(bottom)) = (spec.top_code, spec.bottom_code)
        && top <= bottom
    {
        return Err(format!("band.topCode ({top}) must be greater than band.bottomCode ({bottom})"));
    }
    Ok(Transform::Band {
        width: i128::from(spec.width),
        top_code: spec.top_code.map(i128::from),
        bottom_code: spec.bottom_code.map(i128::from),
    })
}

#[cfg(test)]
#[path = "transform_tests.rs"]
mod tests;
