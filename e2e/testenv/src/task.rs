//! The analyses the federation tests send to data sites as tasks: `count`, an aggregate that
//! may leave a site, and `copy`, which tries to smuggle the row-level extract out.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    path::Path,
};

use serde_json::json;

use crate::reported;

/// `count --input CSV --by COLUMN --output FILE`: writes `COLUMN,n`, one line per value of that
/// column with the number of rows holding it, sorted by value.
pub fn count(input: &Path, by: &str, output: &Path) -> bool {
    let counted = std::fs::File::open(input)
        .map_err(|error| format!("opening {}: {error}", input.display()))
        .and_then(|file| count_by(file, by))
        .and_then(|counts| {
            let mut table = Vec::new();
            write_counts(&mut table, by, &counts)?;
            create(output, &table)?;
            Ok(counts)
        });
    match counted {
        Ok(counts) => {
            let rows: u64 = counts.values().sum();
            let summary =
                json!({"count": input, "by": by, "output": output, "rows": rows, "values": counts.len()});
            reported(true, summary)
        }
        Err(error) => failed("count", json!({"count": input, "by": by, "error": error})),
    }
}

/// `copy --input FILE --output FILE`: the file, byte for byte.
pub fn copy(input: &Path, output: &Path) -> bool {
    let copied = std::fs::read(input)
        .map_err(|error| format!("reading {}: {error}", input.display()))
        .and_then(|bytes| create(output, &bytes).map(|()| bytes.len()));
    match copied {
        Ok(bytes) => reported(true, json!({"copy": input, "output": output, "bytes": bytes})),
        Err(error) => failed("copy", json!({"copy": input, "output": output, "error": error})),
    }
}

/// The number of rows per value of `column` in a CSV with a header line.
pub fn count_by(input: impl Read, column: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut reader = csv::Reader::from_reader(input);
    let headers = reader.headers().map_err(|error| format!("reading the header: {error}"))?;
    let index = headers.iter().position(|name| name == column).ok_or_else(|| {
        format!("no column {column:?} (the header has {:?})", headers.iter().collect::<Vec<_>>())
    })?;
    let mut counts = BTreeMap::new();
    for record in reader.records() {
        let record = record.map_err(|error| format!("reading a row: {error}"))?;
        let value = record.get(index).ok_or_else(|| format!("a row without column {column:?}"))?;
        *counts.entry(value.to_owned()).or_insert(0) += 1;
    }
    Ok(counts)
}

/// `column,n` and one `value,count` line per value, in the order given (sorted).
pub fn write_counts(out: impl Write, column: &str, counts: &BTreeMap<String, u64>) -> Result<(), String> {
    let mut writer = csv::Writer::from_writer(out);
    let error = |error: csv::Error| format!("writing the counts: {error}");
    writer.write_record([column, "n"]).map_err(error)?;
    for (value, n) in counts {
        writer.write_record([value.as_str(), n.to_string().as_str()]).map_err(error)?;
    }
    writer.flush().map_err(|error| format!("writing the counts: {error}"))
}

/// Writes `bytes` to `path`, creating its parent directories.
fn create(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|error| format!("creating {}: {error}", parent.display()))?;
    }
    std::fs::write(path, bytes).map_err(|error| format!("writing {}: {error}", path.display()))
}

/// A task that failed says why on standard error too: a Job's log is what a site's staff read.
fn failed(task: &str, value: serde_json::Value) -> bool {
    eprintln!("haven-testenv {task}: {}", value["error"].as_str().unwrap_or("failed"));
    reported(false, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_rows_per_value_sorted_by_value() {
        let csv = "respondent_id,region,answer\nR1,region-2,1\nR2,region-0,3\nR3,region-2,0\nR4,region-1,1\n";
        let counts = count_by(csv.as_bytes(), "region").expect("counted");
        let expected = [("region-0", 1), ("region-1", 1), ("region-2", 2)];
        assert_eq!(counts, expected.iter().map(|(v, n)| ((*v).to_owned(), *n)).collect());

        let mut table = Vec::new();
        write_counts(&mut table, "region", &counts).expect("written");
        assert_eq!(String::from_utf8_lossy(&table), "region,n\nregion-0,1\nregion-1,1\nregion-2,2\n");
    }

    #[test]
    fn quoted_values_are_counted_as_one_value_and_written_quoted() {
        let csv = "id,place\n1,\"Bergen, NO\"\n2,\"Bergen, NO\"\n3,Oslo\n";
        let counts = count_by(csv.as_bytes(), "place").expect("counted");
        assert_eq!(counts.get("Bergen, NO"), Some(&2));
        let mut table = Vec::new();
        write_counts(&mut table, "place", &counts).expect("written");
        assert_eq!(String::from_utf8_lossy(&table), "place,n\n\"Bergen, NO\",2\nOslo,1\n");
    }

    #[test]
    fn a_header_only_file_has_no_counts_and_a_missing_column_is_an_error() {
        assert!(count_by("id,region\n".as_bytes(), "region").expect("counted").is_empty());
        let error = count_by("id,answer\n1,2\n".as_bytes(), "region").expect_err("no region column");
        assert!(error.contains("no column \"region\""), "{error}");
    }

    #[test]
    fn a_row_shorter_than_the_header_is_an_error() {
        let error = count_by("id,region\n1\n".as_bytes(), "region").expect_err("a short row");
        assert!(error.contains("reading a row"), "{error}");
    }

    #[test]
    fn count_and_copy_create_the_output_directories() {
        let dir = std::env::temp_dir().join(format!("haven-testenv-task-{}", std::process::id()));
        let input = dir.join("in.csv");
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(&input, "id,region\n1,a\n2,b\n3,a\n").expect("input");

        assert!(count(&input, "region", &dir.join("out/counts.csv")));
        let counts = std::fs::read_to_string(dir.join("out/counts.csv")).expect("counts");
        assert_eq!(counts, "region,n\na,2\nb,1\n");
        assert!(copy(&input, &dir.join("deep/er/copy.csv")));
        assert_eq!(
            std::fs::read(dir.join("deep/er/copy.csv")).expect("copy"),
            std::fs::read(&input).expect("in")
        );
        assert!(!count(&input, "nope", &dir.join("never.csv")), "a missing column must fail");
        assert!(!dir.join("never.csv").exists(), "a failed count must write nothing");
        assert!(!copy(&dir.join("absent"), &dir.join("never.csv")), "a missing input must fail");
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }
}
