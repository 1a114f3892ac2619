//! Pure checks the operator, the plugin and the tests share: time windows, expiry, paths,
//! images. No client, no clock: time is always a parameter.

use chrono::{DateTime, Utc};

use crate::constants::WORKSPACE_NAMESPACE_PREFIX;

/// Where `now` falls in a permit's validity window `[valid_from, valid_until)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PermitWindow {
    /// Before `valid_from`; opens at the given time.
    NotYetOpen { opens_at: DateTime<Utc> },
    /// Inside the window; closes at the given time.
    Open { closes_at: DateTime<Utc> },
    /// At or after `valid_until`.
    Closed { closed_at: DateTime<Utc> },
}

impl PermitWindow {
    /// The window for `now`. The start is inclusive and the end exclusive, so at the instant
    /// `valid_until` the permit is already closed.
    pub fn at(now: DateTime<Utc>, valid_from: DateTime<Utc>, valid_until: DateTime<Utc>) -> Self {
        if now < valid_from {
            Self::NotYetOpen { opens_at: valid_from }
        } else if now < valid_until {
            Self::Open { closes_at: valid_until }
        } else {
            Self::Closed { closed_at: valid_until }
        }
    }

    /// When the window next changes, if it still will: the operator requeues for then.
    pub fn next_change(self) -> Option<DateTime<Utc>> {
        match self {
            Self::NotYetOpen { opens_at } => Some(opens_at),
            Self::Open { closes_at } => Some(closes_at),
            Self::Closed { .. } => None,
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, Self::Open { .. })
    }
}

/// When a workspace is torn down: its own `expiresAt` if set, but never after the permit's
/// `validUntil`.
pub fn effective_expiry(
    workspace_expires_at: Option<DateTime<Utc>>,
    permit_valid_until: DateTime<Utc>,
) -> DateTime<Utc> {
    workspace_expires_at.map_or(permit_valid_until, |at| at.min(permit_valid_until))
}

/// The longest duration Haven accepts anywhere (retention, lifetimes): 100 years. The schema
/// refuses longer ones; past it, date arithmetic could overflow.
pub const LONGEST_DURATION_HOURS: i64 = 876_000;

/// Parses a duration as the CRD writes it (`4392h`, `1h30m`, `2.5s`, `500ms`); `None` if it is
/// not one, or longer than [`LONGEST_DURATION_HOURS`]. The schema's pattern admits exactly these.
pub fn parse_duration(text: &str) -> Option<chrono::Duration> {
    let mut total = chrono::Duration::zero();
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, tail) = rest.split_at(number_end);
        let unit_end = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_end);
        let millis_per_unit = match unit {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            _ => return None,
        };
        let value: f64 = number.parse().ok()?;
        let millis = value * millis_per_unit;
        // Also refuses NaN and infinity, which a long enough number parses to.
        if !millis.is_finite() || millis > (LONGEST_DURATION_HOURS * 3_600_000) as f64 {
            return None;
        }
        total += chrono::Duration::milliseconds(millis.round() as i64);
        rest = next;
    }
    (total <= chrono::Duration::hours(LONGEST_DURATION_HOURS)).then_some(total)
}

/// The namespace a workspace owns.
pub fn workspace_namespace(workspace: &str) -> String {
    format!("{WORKSPACE_NAMESPACE_PREFIX}{workspace}")
}

/// Whether `image` is allowed by a permit's `allowedImages`: an exact match, or a prefix match
/// for an entry ending in `*`.
pub fn image_allowed(image: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|entry| match entry.strip_suffix('*') {
        Some(prefix) => image.starts_with(prefix),
        None => image == entry,
    })
}

pub use haven_data::names::{MAX_PATH_LEN, PathError};

/// A path that is safe to join onto a directory: relative, no `..`, no empty segments, no
/// control characters; `.` segments removed. The check lives in haven-data (which has no kube
/// dependency) so the data path and the API share one definition. Symlinks are checked where
/// the file is opened.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SafeRelativePath(String);

impl SafeRelativePath {
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        haven_data::names::check_relative_path(raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SafeRelativePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[path = "validation_tests.rs"]
mod tests;
