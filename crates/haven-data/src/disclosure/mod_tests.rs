use super::*;
use crate::disclosure::test_support::{TestFile, checks_of, find, names};

#[test]
fn files_that_cannot_be_checked_automatically_are_for_review() {
    for (name, bytes) in [
        ("figures/plot.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".as_slice()),
        ("paper.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".as_slice()),
        ("README.md", b"# Results\n".as_slice()),
        ("results.json", b"{\"a\": 1}".as_slice()),
    ] {
        let checks = checks_of(name, bytes);
        assert_eq!(names(&checks), [FILE_POLICY, CONTENT], "{name}");
        let content = find(&checks, CONTENT);
        assert_eq!(content.outcome, Outcome::Review, "{name}");
        assert!(
            content.detail.contains("cannot be checked automatically; the reviewers must look at it"),
            "{}",
            content.detail
        );
        assert!(!content.blocks());
    }
}

#[test]
fn svg_is_refused_by_default_and_reviewed_when_a_permit_allows_it() {
    let svg = TestFile::new("figure.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>");
    let refused = check_file(&svg.path, "figure.svg", &CheckPolicy::default()).expect("checks");
    assert_eq!((refused[0].check.as_str(), refused[0].outcome), (FILE_POLICY, Outcome::Fail));
    let mut policy = CheckPolicy::default();
    policy.files.allowed_extensions.push("svg".into());
    let allowed = check_file(&svg.path, "figure.svg", &policy).expect("checks");
    let content = find(&allowed, CONTENT);
    assert_eq!(content.outcome, Outcome::Review);
    assert!(content.detail.contains("can carry the plotted data points and scripts"), "{}", content.detail);
}

#[test]
fn the_requested_name_not_the_stored_path_decides_the_checks() {
    let file = TestFile::new("stored-as.bin", "region,count\nNorth,4\n");
    let checks = check_file(&file.path, "tables/ages.csv", &CheckPolicy::default()).expect("checks");
    assert_eq!(find(&checks, THRESHOLD).outcome, Outcome::Fail);
}

#[test]
fn file_checks_compute_records_size_and_sha256() {
    let file = TestFile::new("t.csv", "abc");
    let checked = FileChecks::compute(&file.path, "out/t.csv", &CheckPolicy::default()).expect("compute");
    assert_eq!(checked.path, "out/t.csv");
    assert_eq!(checked.size, 3);
    assert_eq!(checked.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_eq!(checked.checks[0].check, FILE_POLICY);
}

#[test]
fn a_missing_file_is_an_io_error() {
    let dir = tempfile::tempdir().expect("dir");
    assert!(check_file(&dir.path().join("nope.csv"), "nope.csv", &CheckPolicy::default()).is_err());
}

/// A minimal whole PNG: signature, an IHDR chunk and IEND (CRCs are not checked here).
fn whole_png() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&[0, 0, 0, 13]);
    png.extend_from_slice(b"IHDR");
    png.extend_from_slice(&[0; 13 + 4]);
    png.extend_from_slice(&[0, 0, 0, 0]);
    png.extend_from_slice(b"IEND");
    png.extend_from_slice(&[0xae, 0x42, 0x60, 0x82]);
    png
}

/// The end of a zip archive, as `zip` appends it.
const ZIP_TAIL: &[u8] = b"PK\x03\x04\x14\0\0\0\x08\0secret.csv PK\x05\x06\0\0\0\0\x01\0\x01\0";

#[test]
fn an_archive_appended_to_an_allowed_file_is_found_anywhere_in_it() {
    let png = whole_png();
    assert_eq!(find(&checks_of("plot.png", &png), FILE_POLICY).outcome, Outcome::Pass, "the canary");
    let mut hidden = png.clone();
    hidden.extend_from_slice(ZIP_TAIL);
    let policy = find(&checks_of("plot.png", &hidden), FILE_POLICY).clone();
    assert_eq!(policy.outcome, Outcome::Fail, "{}", policy.detail);
    assert!(policy.detail.contains("after the image's end"), "{}", policy.detail);

    // Far past the first blocks the type sniffing reads.
    let mut table = "region,count\n".to_owned();
    for i in 0..20_000 {
        table.push_str(&format!("r{i},{}\n", 10 + i % 90));
    }
    assert_eq!(find(&checks_of("t.csv", table.as_bytes()), FILE_POLICY).outcome, Outcome::Pass, "the canary");
    let mut csv = table.into_bytes();
    csv.extend_from_slice(ZIP_TAIL);
    let policy = find(&checks_of("t.csv", &csv), FILE_POLICY).clone();
    assert_eq!(policy.outcome, Outcome::Fail, "{}", policy.detail);
    assert!(policy.detail.contains("binary data at byte"), "{}", policy.detail);

    let pdf = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n".to_vec();
    assert_eq!(find(&checks_of("paper.pdf", &pdf), FILE_POLICY).outcome, Outcome::Pass, "the canary");
    let mut appended = pdf.clone();
    appended.extend_from_slice(ZIP_TAIL);
    assert_eq!(find(&checks_of("paper.pdf", &appended), FILE_POLICY).outcome, Outcome::Fail);
    let embedded = b"%PDF-1.7\n1 0 obj\n<</Type /EmbeddedFile>>\nendobj\n%%EOF\n";
    assert_eq!(find(&checks_of("paper.pdf", embedded), FILE_POLICY).outcome, Outcome::Fail);
}

#[test]
fn a_table_line_past_the_bound_is_unreadable_by_its_number_not_read_into_memory() {
    let mut table = "region,count\nNorth,40\n".to_owned();
    table.push_str(&"SECRET".repeat(200_000)); // one 1.2 MB line
    table.push_str(",5\n");
    let checks = checks_of("t.csv", table.as_bytes());
    let structure = find(&checks, TABLE_STRUCTURE);
    assert_ne!(structure.outcome, Outcome::Pass, "{}", structure.detail);
    assert!(structure.detail.contains("line 3 is longer than"), "{}", structure.detail);
    assert!(!structure.detail.contains("SECRETSECRET"));
}
