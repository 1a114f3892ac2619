use super::*;
use crate::disclosure::test_support::{TestFile, checks_of, find, names, policy};
use crate::disclosure::{FILE_POLICY, Outcome};

const ELF: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0";

fn zip_bytes() -> Vec<u8> {
    let mut bytes = b"PK\x03\x04\x14\0\0\0\x08\0".to_vec();
    bytes.extend_from_slice(&[0; 40]);
    bytes
}

fn tar_bytes() -> Vec<u8> {
    let mut bytes = vec![0u8; 1024];
    bytes[..9].copy_from_slice(b"notes.txt");
    bytes[257..263].copy_from_slice(b"ustar\0");
    bytes
}

fn pe_bytes() -> Vec<u8> {
    let mut bytes = vec![0u8; 256];
    bytes[..2].copy_from_slice(b"MZ");
    bytes[0x3c] = 0x80;
    bytes[0x80..0x84].copy_from_slice(b"PE\0\0");
    bytes
}

#[test]
fn an_executable_renamed_csv_fails_file_policy_and_nothing_else_runs() {
    let checks = checks_of("tables/ages.csv", ELF);
    let policy = find(&checks, FILE_POLICY);
    assert_eq!(policy.outcome, Outcome::Fail);
    assert!(policy.blocks());
    assert!(
        policy.detail.contains("content is an ELF executable, but the name says .csv"),
        "{}",
        policy.detail
    );
    assert_eq!(names(&checks), [FILE_POLICY]);
}

#[test]
fn a_zip_renamed_csv_is_named_in_the_detail() {
    let check = &checks_of("results.csv", zip_bytes())[0];
    assert_eq!(check.outcome, Outcome::Fail);
    assert!(check.detail.contains("content is a zip archive, but the name says .csv"), "{}", check.detail);
}

#[test]
fn a_zip_leaves_only_when_zip_is_an_allowed_extension() {
    let file = TestFile::new("bundle.zip", zip_bytes());
    let default = file.check(&policy(|_| {}));
    assert_eq!(default[0].outcome, Outcome::Fail);
    assert!(default[0].detail.contains("extension .zip is not allowed"), "{}", default[0].detail);

    let allowed = file.check(&policy(|p| p.files.allowed_extensions.push("zip".into())));
    assert_eq!(allowed[0].outcome, Outcome::Pass, "{}", allowed[0].detail);
}

#[test]
fn allowing_zip_does_not_let_a_zip_pass_under_another_name() {
    let checks = TestFile::new("data.csv", zip_bytes())
        .check(&policy(|p| p.files.allowed_extensions.push("zip".into())));
    assert_eq!(checks[0].outcome, Outcome::Fail);
}

#[test]
fn every_listed_executable_and_archive_format_is_recognised() {
    let mut bzip2 = b"BZh91AY&SY".to_vec();
    bzip2.extend_from_slice(&[0; 20]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (ELF.to_vec(), "ELF"),
        (pe_bytes(), "PE/MZ"),
        (b"\xcf\xfa\xed\xfe\x07\0\0\x01".to_vec(), "Mach-O"),
        (b"#!/usr/bin/env python3\nprint(1)\n".to_vec(), "#!/usr/bin/env python3"),
        (zip_bytes(), "zip"),
        (b"\x1f\x8b\x08\0\0\0\0\0".to_vec(), "gzip"),
        (bzip2, "bzip2"),
        (b"\xfd7zXZ\0\0\x04".to_vec(), "xz"),
        (b"\x28\xb5\x2f\xfd\x24\0".to_vec(), "zstd"),
        (b"7z\xbc\xaf\x27\x1c\0\x04".to_vec(), "7z"),
        (b"Rar!\x1a\x07\x01\0".to_vec(), "rar"),
        (tar_bytes(), "tar"),
    ];
    for (bytes, word) in cases {
        let check = &checks_of("out.txt", &bytes)[0];
        assert_eq!(check.outcome, Outcome::Fail, "{word}");
        assert!(check.detail.contains(word), "{word}: {}", check.detail);
    }
}

#[test]
fn text_that_happens_to_start_like_a_magic_number_is_not_flagged() {
    for text in ["MZ_code,count\nA1,12\n", "BZh,count\nx,12\n", "PK,count\n1,12\n"] {
        assert_eq!(sniff(text.as_bytes()), None, "{text}");
    }
}

#[test]
fn a_script_passes_only_under_an_allowed_script_extension() {
    let script = b"#!/bin/sh\necho hi\n";
    let file = TestFile::new("run.sh", script);
    assert_eq!(file.check(&policy(|_| {}))[0].outcome, Outcome::Fail);
    let allowed = file.check(&policy(|p| p.files.allowed_extensions.push("sh".into())));
    assert_eq!(allowed[0].outcome, Outcome::Pass, "{}", allowed[0].detail);
}

#[test]
fn the_extension_is_compared_case_insensitively() {
    let checks = checks_of("tables/AGES.CSV", "region,count\nNorth,12\n");
    assert_eq!(checks[0].outcome, Outcome::Pass, "{}", checks[0].detail);
    assert!(checks.len() > 1, "a .CSV is checked as a table");
}

#[test]
fn a_disallowed_or_missing_extension_fails() {
    let exe = &checks_of("model.rds", "x")[0];
    assert_eq!(exe.outcome, Outcome::Fail);
    assert!(exe.detail.contains("extension .rds is not allowed (allowed: csv, txt, md, pdf, png, json)"));
    let none = &checks_of("README", "x")[0];
    assert_eq!(none.outcome, Outcome::Fail);
    assert!(none.detail.contains("no extension"), "{}", none.detail);
}

#[test]
fn a_file_over_the_size_limit_fails() {
    let file = TestFile::new("big.csv", "region,count\nNorth,12\n");
    let checks = file.check(&policy(|p| p.files.max_file_size = 10));
    assert_eq!(checks[0].outcome, Outcome::Fail);
    assert!(checks[0].detail.contains("22 bytes is larger than the 10 bytes limit"), "{}", checks[0].detail);
    let at_limit = file.check(&policy(|p| p.files.max_file_size = 22));
    assert_eq!(at_limit[0].outcome, Outcome::Pass);
}

#[test]
fn human_sizes_read_naturally() {
    assert_eq!(human_bytes(512), "512 bytes");
    assert_eq!(human_bytes(10 * 1024 * 1024), "10 MiB");
    assert_eq!(human_bytes(1536), "1.5 KiB");
}
