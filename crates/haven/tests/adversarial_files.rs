//! The standalone data tools given what a careless or hostile caller might: pipes, links to
//! endless devices, the source as the output, a device as the output, a full standard output.
//! Each case runs the built binary under a deadline, so a regression fails instead of hanging.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Generous: each case takes milliseconds; only a hang reaches it.
const DEADLINE: Duration = Duration::from_secs(60);

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `haven ARGS` in `dir` with stdout to `stdout` (a file path) or captured; kills it at
/// the deadline and fails the test.
fn haven(dir: &Path, args: &[&str], stdout: Option<&str>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_haven"));
    command.current_dir(dir).args(args).stdin(Stdio::null()).stderr(Stdio::piped());
    match stdout {
        Some(path) => {
            command.stdout(std::fs::OpenOptions::new().write(true).open(path).expect("stdout file"))
        }
        None => command.stdout(Stdio::piped()),
    };
    let mut child = command.spawn().expect("run haven");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("haven {args:?} still running after {DEADLINE:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    Run { status, stdout: out, stderr: err }
}

const SPEC: &str = "name: visits\ncolumns:\n  - {name: id, rule: Hmac}\n  - {name: region, rule: Keep}\n";
const RAW: &str = "id,region\n9434765919,North\n9434765870,South\n";

fn custodian_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("spec.yaml"), SPEC).expect("spec");
    std::fs::write(dir.path().join("key.bin"), [7u8; 32]).expect("key");
    std::fs::write(dir.path().join("raw.csv"), RAW).expect("raw");
    dir
}

fn pseudonymise(dir: &Path, input: &str, output: &str) -> Run {
    haven(dir, &["pseudonymise", "--spec", "spec.yaml", "--key-file", "key.bin", input, output], None)
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(made.success());
}

#[test]
fn pseudonymise_works_on_ordinary_files_the_canary() {
    let dir = custodian_dir();
    let run = pseudonymise(dir.path(), "raw.csv", "extract.csv");
    assert!(run.status.success(), "{}", run.stderr);
    let extract = std::fs::read_to_string(dir.path().join("extract.csv")).expect("extract");
    assert!(extract.starts_with("id,region\n") && !extract.contains("9434765919"), "{extract}");
}

#[test]
fn the_source_is_never_the_output_by_any_name() {
    let dir = custodian_dir();
    std::fs::hard_link(dir.path().join("raw.csv"), dir.path().join("same.csv")).expect("link");
    for output in ["raw.csv", "./raw.csv", "same.csv"] {
        let run = pseudonymise(dir.path(), "raw.csv", output);
        assert!(!run.status.success(), "{output}: refused");
        assert!(run.stderr.contains("source itself"), "{output}: {}", run.stderr);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("raw.csv")).expect("raw"),
            RAW,
            "the source is intact"
        );
    }
}

#[test]
fn pipes_and_endless_devices_are_refused_not_read_forever() {
    let dir = custodian_dir();
    mkfifo(&dir.path().join("pipe"));
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero")).expect("symlink");
    for (input, spec, key) in [
        ("pipe", "spec.yaml", "key.bin"),
        ("zero", "spec.yaml", "key.bin"),
        ("raw.csv", "zero", "key.bin"),
        ("raw.csv", "pipe", "key.bin"),
        ("raw.csv", "spec.yaml", "zero"),
        ("raw.csv", "spec.yaml", "pipe"),
    ] {
        let run =
            haven(dir.path(), &["pseudonymise", "--spec", spec, "--key-file", key, input, "out.csv"], None);
        assert!(!run.status.success(), "{input} {spec} {key}");
        assert!(run.stderr.contains("not a regular file"), "{input} {spec} {key}: {}", run.stderr);
        assert!(!dir.path().join("out.csv").exists(), "nothing written");
    }
}

#[test]
fn an_output_that_is_a_link_or_a_device_is_left_as_it_is() {
    let dir = custodian_dir();
    std::fs::write(dir.path().join("target.csv"), "kept\n").expect("target");
    std::os::unix::fs::symlink(dir.path().join("target.csv"), dir.path().join("link.csv")).expect("symlink");
    let run = pseudonymise(dir.path(), "raw.csv", "link.csv");
    assert!(!run.status.success() && run.stderr.contains("not a regular file"), "{}", run.stderr);
    assert!(std::fs::symlink_metadata(dir.path().join("link.csv")).expect("link").file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(dir.path().join("target.csv")).expect("target"), "kept\n");

    let null_before = std::fs::metadata("/dev/null").expect("/dev/null");
    let run = pseudonymise(dir.path(), "raw.csv", "/dev/null");
    assert!(!run.status.success(), "{}", run.stderr);
    let null_after = std::fs::metadata("/dev/null").expect("/dev/null is still there");
    assert_eq!(null_before.ino(), null_after.ino());
}

#[test]
fn a_failed_run_leaves_no_partial_extract_and_an_existing_one_untouched() {
    let dir = custodian_dir();
    std::fs::write(dir.path().join("extract.csv"), "previous\n").expect("previous");
    std::fs::write(dir.path().join("bad.csv"), "id,region\n1,North\n2\n").expect("ragged");
    let run = pseudonymise(dir.path(), "bad.csv", "extract.csv");
    assert!(!run.status.success());
    assert_eq!(std::fs::read_to_string(dir.path().join("extract.csv")).expect("kept"), "previous\n");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_full_standard_output_is_an_error_not_a_panic() {
    let dir = custodian_dir();
    let run = haven(
        dir.path(),
        &["pseudonymise", "--spec", "spec.yaml", "--key-file", "key.bin", "raw.csv", "out.csv"],
        Some("/dev/full"),
    );
    assert!(!run.status.success());
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(run.stderr.contains("standard output"), "{}", run.stderr);
    let run = haven(dir.path(), &["airlock", "check", "raw.csv"], Some("/dev/full"));
    assert!(!run.status.success() && !run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn airlock_check_refuses_pipes_and_devices_and_reports_the_other_files() {
    let dir = custodian_dir();
    mkfifo(&dir.path().join("pipe.csv"));
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.csv")).expect("symlink");
    let run =
        haven(dir.path(), &["airlock", "check", "pipe.csv", "zero.csv", "missing.csv", "raw.csv"], None);
    assert_eq!(run.status.code(), Some(1), "refused files block: {}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("the JSON report");
    let results = report["results"].as_object().expect("results");
    assert_eq!(results.len(), 4, "one output per file given, the bad ones included");
    let text = run.stdout;
    assert!(text.contains("not a regular file") && text.contains("cannot be read"), "{text}");
}

#[test]
fn archive_open_refuses_a_key_that_is_a_pipe_or_an_endless_device() {
    let dir = tempfile::tempdir().expect("dir");
    mkfifo(&dir.path().join("key.fifo"));
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("key.zero")).expect("symlink");
    std::fs::write(dir.path().join("key.big"), vec![7u8; 1 << 20]).expect("big key");
    for key in ["key.fifo", "key.zero", "key.big"] {
        let run = haven(
            dir.path(),
            &[
                "archive",
                "open",
                "--data-root",
                "store",
                "--permit",
                "p",
                "--workspace",
                "w",
                "--key-file",
                key,
                "--out",
                "restored",
            ],
            None,
        );
        assert!(!run.status.success(), "{key}: {}", run.stdout);
        assert!(run.stderr.contains(key), "{key}: the error names the file: {}", run.stderr);
        assert!(!dir.path().join("restored").exists(), "{key}: nothing restored");
    }
}
