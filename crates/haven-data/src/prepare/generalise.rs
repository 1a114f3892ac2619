//! The generalising rules: coarsen a date, keep a prefix, band a number. Pure functions of
//! one value, written to avoid allocation since they run once per value of large files.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use super::spec::DateGranularity;

/// Generalises a `YYYY-MM-DD` date or a timestamp starting with one. Anything else is an
/// error, never passed through: a raw date of birth must not reach an extract.
pub(super) fn generalise_date(
    value: &str,
    to: DateGranularity,
    band_years: i32,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(());
    }
    let (year, month) = parse_date(value)?;
    match to {
        DateGranularity::Year => push_padded(out, year, 4),
        DateGranularity::YearMonth => {
            push_padded(out, year, 4);
            out.push(b'-');
            push_padded(out, month, 2);
        }
        DateGranularity::YearBand => {
            let year = i32::try_from(year).unwrap_or(i32::MAX);
            let start = year - year.rem_euclid(band_years);
            push_padded(out, start.unsigned_abs(), 4);
            out.push(b'-');
            push_padded(out, start.saturating_add(band_years - 1).unsigned_abs(), 4);
        }
    }
    Ok(())
}

const DATE_SHAPE: &str =
    "expected a date YYYY-MM-DD or a timestamp YYYY-MM-DDTHH:MM:SS (optionally with fraction and offset)";

/// The year and month of `value`, checked to exist (no 30 February, 29 February only in a
/// leap year). A timestamp must be complete and valid too; its date part is used as written.
fn parse_date(value: &str) -> Result<(u32, u32), String> {
    let bytes = value.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        bytes
            .get(range)?
            .iter()
            .try_fold(0u32, |n, b| b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0')))
    };
    let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return Err(DATE_SHAPE.into());
    };
    if bytes[4] != b'-' || bytes[7] != b'-' {
        return Err(DATE_SHAPE.into());
    }
    let real = i32::try_from(year).ok().and_then(|y| NaiveDate::from_ymd_opt(y, month, day));
    if real.is_none() {
        return Err("not a real calendar date".into());
    }
    if bytes.len() > 10 {
        let timestamp = DateTime::parse_from_rfc3339(value).is_ok()
            || NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
            || NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S%.f").is_ok();
        if !timestamp {
            return Err(DATE_SHAPE.into());
        }
    }
    Ok((year, month))
}

/// The first `chars` Unicode characters of `value`.
pub(super) fn truncate(value: &str, chars: usize) -> &str {
    if value.len() <= chars {
        return value;
    }
    value.char_indices().nth(chars).map_or(value, |(end, _)| &value[..end])
}

/// Replaces a number by its band: `[lo, lo + width - 1]` with `lo` a multiple of `width`,
/// or the top/bottom code.
pub(super) fn band(
    value: &str,
    width: i128,
    top_code: Option<i128>,
    bottom_code: Option<i128>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(());
    }
    let floor = parse_floor(value)?;
    // With integer codes, value >= top exactly when floor(value) >= top (and likewise below).
    if let Some(top) = top_code.filter(|top| floor >= *top) {
        push_int(out, top);
        out.push(b'+');
    } else if let Some(bottom) = bottom_code.filter(|bottom| floor < *bottom) {
        out.push(b'<');
        push_int(out, bottom);
    } else {
        let low = floor.div_euclid(width) * width;
        push_int(out, low);
        if width > 1 {
            out.push(b'-');
            push_int(out, low + width - 1);
        }
    }
    Ok(())
}

/// Parses `[+-]digits[.digits]` exactly (no float rounding) and returns its floor.
fn parse_floor(value: &str) -> Result<i128, String> {
    const NOT_A_NUMBER: &str = "expected an integer or decimal number like 42, -3 or 37.5";
    let (negative, unsigned) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return Err(NOT_A_NUMBER.into());
    }
    if whole.len() > 30 {
        return Err("number is too large to band".into());
    }
    let magnitude = whole.bytes().fold(0i128, |n, b| n * 10 + i128::from(b - b'0'));
    let has_fraction = fraction.bytes().any(|b| b != b'0');
    Ok(if negative { -magnitude - i128::from(has_fraction) } else { magnitude })
}

fn push_padded(out: &mut Vec<u8>, n: u32, width: usize) {
    let mut digits = [0u8; 10];
    let mut len = 0;
    let mut rest = n;
    while rest > 0 || len < width {
        digits[len] = b'0' + (rest % 10) as u8;
        rest /= 10;
        len += 1;
    }
    out.extend(digits[..len].iter().rev());
}

fn push_int(out: &mut Vec<u8>, n: i128) {
    if n < 0 {
        out.push(b'-');
    }
    let mut digits = [0u8; 40];
    let mut len = 0;
    let mut rest = n.unsigned_abs();
    loop {
        digits[len] = b'0' + (rest % 10) as u8;
        rest /= 10;
        len += 1;
        if rest == 0 {
            break;
        }
    }
    out.extend(digits[..len].iter().rev());
}
