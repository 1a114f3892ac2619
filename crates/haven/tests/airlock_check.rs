//! `haven airlock check` as a researcher runs it: the built binary on real files.

use std::path::Path;
use std::process::{Command, Output};

fn haven_airlock_check(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_haven"))
        .current_dir(dir)
        .args(["airlock", "check"])
        .args(args)
        .output()
        .expect("run haven")
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("stdout is the JSON report")
}

#[test]
fn a_table_with_small_cells_is_reported_but_does_not_block() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("ages.csv"), "region,count\nNorth,4\nSouth,40\n").expect("write");
    let output = haven_airlock_check(dir.path(), &["ages.csv"]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let report = json(&output);
    assert_eq!(report["results"]["output_0"]["status"], "fail");
    assert_eq!(report["results"]["output_0"]["files"][0]["sdc"]["summary"]["threshold"], 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ages.csv: 5 pass, 0 review, 1 fail"), "{stderr}");
}

#[test]
fn an_executable_renamed_csv_blocks_with_exit_status_one() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("data.csv"), b"\x7fELF\x02\x01\x01\0").expect("write");
    std::fs::write(dir.path().join("notes.md"), "# notes\n").expect("write");
    let output = haven_airlock_check(dir.path(), &["--out", "results.json", "data.csv", "notes.md"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "the report went to --out");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).expect("results.json"))
            .expect("JSON");
    assert_eq!(report["results"]["output_0"]["properties"]["checks"][0]["check"], "file-policy");
    assert_eq!(report["results"]["output_1"]["status"], "review");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("data.csv: 0 pass, 0 review, 1 fail (blocked: file-policy)"), "{stderr}");
}

#[test]
fn a_missing_file_is_refused_in_the_report() {
    let dir = tempfile::tempdir().expect("dir");
    let output = haven_airlock_check(dir.path(), &["nope.csv"]);
    assert_eq!(output.status.code(), Some(1), "a file that cannot be read blocks");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nope.csv") && stderr.contains("blocked: file-policy"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("cannot be read"));
}
