//! Quarantine copies at rest: sealed with the permit's quarantine key, opened for the checks
//! only in a scratch directory that never outlives them, and delivered as the plaintext.

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::disclosure::{self, CheckPolicy};
use crate::sealed::SealError;

/// A table with a small cell and a pseudonym-looking column, so the checks have things to say.
const TABLE: &[u8] = b"region,count\nNorth,120\nSouth,4\nNE66 1XX,31\n";
const NOTES: &[u8] = b"# Methods\nPatient 9434765919 was excluded.\n";

fn scratch(fx: &Fixture) -> PathBuf {
    fx.quarantine().with_file_name(".check-req1")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_snapshot_s_copies_on_disk_hold_no_plaintext() {
    let fx = Fixture::new().with_output("t.csv", TABLE).with_output("d/notes.md", NOTES);
    let (manifest, _) = fx.snapshot(&["t.csv", "d/notes.md"]).expect("snapshot");
    for (rel, plaintext) in [("t.csv", TABLE), ("d/notes.md", NOTES)] {
        let on_disk = fs::read(fx.quarantine().join(FILES).join(rel)).expect("read");
        assert!(on_disk.starts_with(b"HAVNSEAL"), "{rel} is sealed");
        for secret in [&b"NE66 1XX"[..], b"South,4", b"9434765919", b"Methods"] {
            assert!(!contains(&on_disk, secret), "{rel} shows {}", String::from_utf8_lossy(secret));
        }
        assert_eq!(fx.opened(rel), plaintext, "{rel} opens to the submitted bytes");
    }
    // The manifest stays readable and describes the plaintext.
    let listed: AirlockManifest =
        serde_json::from_slice(&fs::read(fx.quarantine().join(MANIFEST)).expect("read")).expect("parse");
    assert_eq!(listed, manifest);
    assert_eq!(manifest.files[0].sha256, sha256_hex(TABLE));
}

#[test]
fn verifying_a_snapshot_opens_every_file_and_detects_a_changed_byte() {
    let fx = Fixture::new().with_output("t.csv", TABLE).with_output("n.md", NOTES);
    let taken = fx.snapshot(&["t.csv", "n.md"]).expect("snapshot");
    assert_eq!(verify_snapshot(&fx.quarantine(), &fx.request_as("uid-1"), &key()).expect("verify"), taken);
    let copy = fx.quarantine().join("files/n.md");
    let mut sealed = fs::read(&copy).expect("read");
    let last = sealed.len() - 1;
    sealed[last] ^= 0x01;
    fs::write(&copy, &sealed).expect("write");
    let error = verify_snapshot(&fx.quarantine(), &fx.request_as("uid-1"), &key()).expect_err("tampered");
    assert!(
        matches!(&error, AirlockError::Corrupt(ArchiveError::Sealed { source: SealError::Tampered { .. }, path }) if path.ends_with("n.md")),
        "{error}"
    );
    assert!(error.is_permanent());
    // A repeated snapshot verifies what is in place rather than copying again.
    assert!(fx.snapshot(&["t.csv", "n.md"]).is_err_and(|e| e.is_permanent()));
    // A copy cut short does not verify either.
    fs::write(&copy, &sealed[..40]).expect("write");
    assert!(
        verify_snapshot(&fx.quarantine(), &fx.request_as("uid-1"), &key()).is_err_and(|e| e.is_permanent())
    );
}

#[test]
fn checks_on_the_opened_snapshot_give_the_same_results_as_on_the_original_files() {
    let figure = [b"\x89PNG\r\n\x1a\n".as_slice(), &[0u8; 100]].concat();
    let fx = Fixture::new()
        .with_output("tables/t.csv", TABLE)
        .with_output("notes.md", NOTES)
        .with_output("fig.png", &figure)
        .with_output("tool.csv", b"\x7fELF\x02\x01\x01\x00binary");
    let files = ["tables/t.csv", "notes.md", "fig.png", "tool.csv"];
    fx.snapshot(&files).expect("snapshot");
    let policy = CheckPolicy::default();
    let on_snapshot = with_plaintext_snapshot(&fx.quarantine(), &fx.request_as("uid-1"), &key(), |m, dir| {
        m.files
            .iter()
            .map(|f| disclosure::check_file(&dir.join(&f.path), &f.path, &policy).expect("check"))
            .collect::<Vec<_>>()
    })
    .expect("opened");
    for (file, checks) in files.iter().zip(&on_snapshot) {
        let original = disclosure::check_file(&fx.outbox().join(file), file, &policy).expect("check");
        assert_eq!(checks, &original, "{file}");
    }
    let threshold = on_snapshot[0].iter().find(|c| c.check == "threshold").expect("threshold check");
    assert_eq!(threshold.outcome, disclosure::Outcome::Fail, "the small cell is seen: {threshold:?}");
}

#[test]
fn the_scratch_copy_is_private_and_removed_after_the_checks_whatever_happens() {
    let fx = Fixture::new().with_output("t.csv", TABLE);
    fx.snapshot(&["t.csv"]).expect("snapshot");
    // A crash left a scratch copy: it is removed before the next attempt.
    fs::create_dir_all(scratch(&fx).join("files")).expect("mkdir");
    fs::write(scratch(&fx).join("files/stale.csv"), b"left by a crash").expect("write");
    let request = fx.request_as("uid-1");
    let seen = with_plaintext_snapshot(&fx.quarantine(), &request, &key(), |_, dir| {
        let mode = |path: &Path| fs::metadata(path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(dir, scratch(&fx).join("files"));
        assert!(!dir.join("stale.csv").exists(), "a leftover is not reused");
        (mode(&scratch(&fx)), mode(&dir.join("t.csv")), fs::read(dir.join("t.csv")).expect("read"))
    })
    .expect("opened");
    assert_eq!(seen, (0o700, 0o600, TABLE.to_vec()));
    assert!(!scratch(&fx).exists(), "removed after the checks");

    // A check that panics (or fails) leaves nothing either.
    let panicked = std::panic::catch_unwind(|| {
        with_plaintext_snapshot(&fx.quarantine(), &request, &key(), |_, _| panic!("a check crashed"))
    });
    assert!(panicked.is_err());
    assert!(!scratch(&fx).exists(), "removed after a panic");
    let failed: Result<Result<(), &str>, _> =
        with_plaintext_snapshot(&fx.quarantine(), &request, &key(), |_, _| Err("scanner missing"));
    assert_eq!(failed.expect("opened"), Err("scanner missing"));
    assert!(!scratch(&fx).exists(), "removed after a failed check");

    // A copy that does not open: the checks never run, and nothing is left.
    fx.reseal("t.csv", b"other bytes");
    let corrupt = with_plaintext_snapshot(&fx.quarantine(), &request, &key(), |_, _| unreachable!());
    assert!(corrupt.is_err_and(|e| e.is_permanent()));
    assert!(!scratch(&fx).exists(), "removed after a corrupt snapshot");

    // Removing the snapshot takes a crash's leftover with it.
    fs::create_dir_all(scratch(&fx)).expect("mkdir");
    remove_snapshot(&fx.quarantine()).expect("remove");
    assert!(!scratch(&fx).exists() && !fx.quarantine().exists());
}

#[test]
fn delivery_opens_the_copies_into_exactly_the_submitted_bytes() {
    // Several chunks and a short last one.
    let large: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let fx = Fixture::new().with_output("big.bin", &large).with_output("t.csv", TABLE);
    let (manifest, snapshot_sha) = fx.snapshot_as("uid-1", &["big.bin", "t.csv"], 1 << 20).expect("snapshot");
    let delivered = fx.deliver_as("uid-1", b"{}").expect("deliver");
    assert_eq!(delivered.manifest_sha256, snapshot_sha, "the reviewed manifest, byte for byte");
    assert_eq!(fs::read(fx.egress().join("files/big.bin")).expect("read"), large);
    assert_eq!(fs::read(fx.egress().join("files/t.csv")).expect("read"), TABLE);
    assert_eq!(
        sha256_hex(&fs::read(fx.egress().join(MANIFEST)).expect("read")),
        snapshot_sha,
        "the delivered manifest is the snapshot's"
    );
    assert_eq!(manifest.files[0].sha256, sha256_hex(&large));
}

#[test]
fn another_key_opens_nothing_and_says_which_key_sealed_it() {
    let fx = Fixture::new().with_output("t.csv", TABLE);
    fx.snapshot(&["t.csv"]).expect("snapshot");
    let other = SealKey::quarantine(&[8; 32]).expect("key");
    let archive_key = SealKey::archive(&PERMIT_KEY).expect("key");
    let request = fx.request_as("uid-1");
    for wrong in [&other, &archive_key] {
        let error = verify_snapshot(&fx.quarantine(), &request, wrong).expect_err("wrong key");
        assert!(
            matches!(
                &error,
                AirlockError::Corrupt(ArchiveError::Sealed { source: SealError::WrongKey { .. }, .. })
            ),
            "{error}"
        );
        let message = error.to_string();
        assert!(message.contains("t.csv") && message.contains(&key().fingerprint()), "{message}");
        let checked = with_plaintext_snapshot(&fx.quarantine(), &request, wrong, |_, _| unreachable!());
        assert!(checked.is_err_and(|e| e.is_permanent()));
        assert!(!scratch(&fx).exists());
        let delivered = deliver(&fx.quarantine(), &fx.egress(), b"{}", &request, wrong);
        assert!(delivered.is_err_and(|e| e.is_permanent()));
        assert!(!fx.egress().exists(), "nothing delivered");
        assert!(Fixture::hidden_entries(fx.egress().parent().expect("parent")).is_empty());
    }
}

#[test]
fn a_scratch_copy_left_by_a_crash_is_removed_when_the_request_finishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let quarantine = dir.path().join("ws-a").join("tables");
    let scratch = dir.path().join("ws-a").join(".check-tables");
    std::fs::create_dir_all(scratch.join("tables")).expect("mkdir");
    std::fs::write(scratch.join("tables/t.csv"), b"plaintext left by a crash").expect("write");
    remove_scratch(&quarantine).expect("removed");
    assert!(!scratch.exists());
    remove_scratch(&quarantine).expect("idempotent");
}
