//! Reading one value of a finished table.

/// One evidence value, as written in the CSV.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Value {
    Number(f64),
    /// Empty, or how pandas and R write a missing value (`NA`, `NaN`, `null`, `None`, `N/A`).
    Missing,
    /// Already suppressed by the researcher: `*`, `c`, `[c]`, `suppressed`, `redacted`, or a
    /// bound such as `<10`. Nothing is shown, so nothing is checked.
    Suppressed,
    /// Anything else: the table cannot be read as the convention says.
    Invalid,
}

pub(super) fn parse_value(raw: &[u8]) -> Value {
    let Ok(text) = std::str::from_utf8(raw) else {
        return Value::Invalid;
    };
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "" | "na" | "nan" | "null" | "none" | "n/a" => return Value::Missing,
        "*" | "c" | "[c]" | "suppressed" | "redacted" => return Value::Suppressed,
        _ => {}
    }
    if text.starts_with('<') || text.starts_with('≤') {
        return Value::Suppressed;
    }
    match text.parse::<f64>() {
        Ok(number) if number.is_finite() => Value::Number(number),
        _ => Value::Invalid,
    }
}

/// Whether `value` exceeds `limit` by more than floating-point noise: `(top1 + top2) / total`
/// computed from exact percentages must not fail a rule at its own boundary.
pub(super) fn exceeds(value: f64, limit: f64) -> bool {
    value > limit + tolerance(limit)
}

/// Whether `value` is below `limit` by more than floating-point noise.
pub(super) fn below(value: f64, limit: f64) -> bool {
    value < limit - tolerance(limit)
}

fn tolerance(limit: f64) -> f64 {
    1e-9 * limit.abs().max(1.0)
}
