//! Output shared by the commands: `-o json|yaml|wide`, aligned tables, humanised times.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

/// `-o`: machine-readable formats, or more columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Json,
    Yaml,
    Wide,
}

/// Prints `value` as JSON or YAML and returns true, or returns false for human output.
/// Like kubectl, without `metadata.managedFields`.
pub fn print_structured<T: Serialize>(value: &T, format: Option<OutputFormat>) -> anyhow::Result<bool> {
    let structured = |value: &T| -> anyhow::Result<serde_json::Value> {
        let mut value = serde_json::to_value(value)?;
        drop_managed_fields(&mut value);
        Ok(value)
    };
    match format {
        Some(OutputFormat::Json) => println!("{}", serde_json::to_string_pretty(&structured(value)?)?),
        Some(OutputFormat::Yaml) => print!("{}", serde_saphyr::to_string(&structured(value)?)?),
        Some(OutputFormat::Wide) | None => return Ok(false),
    }
    Ok(true)
}

/// Removes `metadata.managedFields` from every object in `value`: noise for people.
fn drop_managed_fields(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(metadata)) = map.get_mut("metadata") {
                metadata.remove("managedFields");
            }
            map.values_mut().for_each(drop_managed_fields);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_managed_fields),
        _ => {}
    }
}

/// Items wrapped as a `v1` List, as `kubectl get -o json` prints several objects.
pub fn list_of<T: Serialize>(items: &[T]) -> serde_json::Value {
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// A table with left-aligned columns, three spaces apart, as kubectl prints them.
#[derive(Debug)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self { headers: headers.iter().map(|h| (*h).to_owned()).collect(), rows: Vec::new() }
    }

    /// Adds a row; line breaks in a cell become spaces so the table stays aligned.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.into_iter().map(|cell| cell.replace(['\n', '\r'], " ")).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table, each line prefixed by `indent`, with a trailing newline.
    pub fn render(&self, indent: &str) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (column, cell) in row.iter().enumerate() {
                if let Some(width) = widths.get_mut(column) {
                    *width = (*width).max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::from(indent);
            for (column, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if column + 1 < row.len() {
                    let width = widths.get(column).copied().unwrap_or(0);
                    line.push_str(&" ".repeat(width - cell.chars().count() + 3));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A duration in its two largest units, e.g. `12d 4h`, `3h 5m`, `42s` (sign ignored).
pub fn humanize(duration: TimeDelta) -> String {
    let seconds = duration.num_seconds().unsigned_abs();
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let Some(first) = units.iter().position(|(_, size)| seconds >= *size) else {
        return "0s".into();
    };
    let (name, size) = units[first];
    let mut out = format!("{}{name}", seconds / size);
    if let Some((next_name, next_size)) = units.get(first + 1) {
        let rest = (seconds % size) / next_size;
        if rest > 0 {
            out.push_str(&format!(" {rest}{next_name}"));
        }
    }
    out
}

/// How long until `at`: `12d 4h`, or `-` once it has passed.
pub fn time_left(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match at {
        Some(at) if at > now => humanize(at - now),
        _ => "-".into(),
    }
}

/// Age of an object from its creation time, `<unknown>` without one.
pub fn age(created: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    created.map_or_else(|| "<unknown>".into(), |created| humanize(now - created))
}

/// An instant as people read it: `2026-12-01 14:00 UTC`.
pub fn date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// An instant with how far it is from now: `2026-12-01 14:00 UTC (in 12d 4h)` or `(3h ago)`.
pub fn when(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if at >= now {
        format!("{} (in {})", date(at), humanize(at - now))
    } else {
        format!("{} ({} ago)", date(at), humanize(now - at))
    }
}

/// A byte count with a binary unit: `512 B`, `1.5 KiB`, `3.0 GiB`.
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if count < 1024 {
        return format!("{count} B");
    }
    let mut value = count as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The first 12 digits of a hash (after an `algorithm:` prefix, kept), enough to compare by
/// eye; the whole of it with `wide`.
pub fn short_hash(hash: &str, wide: bool) -> String {
    let (prefix, digits) = hash.rsplit_once(':').unwrap_or(("", hash));
    let separator = if prefix.is_empty() { "" } else { ":" };
    match digits.get(..12) {
        Some(start) if !wide && digits.len() > 12 => format!("{prefix}{separator}{start}…"),
        _ => hash.to_owned(),
    }
}

/// The creation time of an object, as chrono.
pub fn created(meta: &kube::api::ObjectMeta) -> Option<DateTime<Utc>> {
    meta.creation_timestamp.as_ref().and_then(instant)
}

/// A Kubernetes `Time` (a jiff timestamp) as chrono, to the second.
pub fn instant(time: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.0.as_second(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_humanised_in_their_two_largest_units() {
        let cases = [
            (TimeDelta::days(12) + TimeDelta::hours(4) + TimeDelta::minutes(59), "12d 4h"),
            (TimeDelta::days(3), "3d"),
            (TimeDelta::hours(3) + TimeDelta::minutes(5), "3h 5m"),
            (TimeDelta::minutes(2) + TimeDelta::seconds(7), "2m 7s"),
            (TimeDelta::seconds(42), "42s"),
            (TimeDelta::milliseconds(300), "0s"),
            (-TimeDelta::hours(2), "2h"),
        ];
        for (duration, expected) in cases {
            assert_eq!(humanize(duration), expected, "{duration:?}");
        }
    }

    #[test]
    fn time_left_is_a_dash_once_the_moment_has_passed() -> anyhow::Result<()> {
        let now: DateTime<Utc> = "2026-06-01T12:00:00Z".parse()?;
        assert_eq!(time_left(Some("2026-06-13T16:30:00Z".parse()?), now), "12d 4h");
        assert_eq!(time_left(Some("2026-05-01T00:00:00Z".parse()?), now), "-");
        assert_eq!(time_left(None, now), "-");
        Ok(())
    }

    #[test]
    fn instants_say_how_far_they_are_from_now() -> anyhow::Result<()> {
        let now: DateTime<Utc> = "2026-06-01T12:00:00Z".parse()?;
        assert_eq!(when("2026-06-01T15:00:00Z".parse()?, now), "2026-06-01 15:00 UTC (in 3h)");
        assert_eq!(when("2026-05-31T12:00:00Z".parse()?, now), "2026-05-31 12:00 UTC (1d ago)");
        Ok(())
    }

    #[test]
    fn tables_align_columns_and_keep_cells_on_one_line() {
        let mut table = Table::new(&["NAME", "PHASE", "NEXT"]);
        table.row(vec!["a-long-name".into(), "Ready".into(), "expires\nsoon".into()]);
        table.row(vec!["b".into(), "Pending".into(), "-".into()]);
        assert_eq!(
            table.render(""),
            "NAME          PHASE     NEXT\na-long-name   Ready     expires soon\nb             Pending   -\n"
        );
    }

    #[test]
    fn byte_counts_use_binary_units() {
        assert_eq!(bytes(44), "44 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn hashes_are_shortened_unless_wide() {
        let hash = "0123456789abcdef0123";
        assert_eq!(short_hash(hash, false), "0123456789ab…");
        assert_eq!(short_hash(hash, true), hash);
        assert_eq!(short_hash("sha256:8bf7d0e1c2b3a4958677", false), "sha256:8bf7d0e1c2b3…");
        assert_eq!(short_hash("00aa", false), "00aa");
    }

    #[test]
    fn structured_output_leaves_out_managed_fields() {
        let mut value = serde_json::json!({"items": [{"metadata": {"name": "a", "managedFields": [{}]}}]});
        drop_managed_fields(&mut value);
        assert_eq!(value, serde_json::json!({"items": [{"metadata": {"name": "a"}}]}));
    }
}
