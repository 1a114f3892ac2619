use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::store::DataStore;

#[path = "sealed_snapshot_tests.rs"]
mod sealed_snapshot;

#[path = "package_tests.rs"]
mod package;

/// The permit key of the tests' permit.
const PERMIT_KEY: [u8; 32] = [7; 32];

fn key() -> SealKey {
    SealKey::quarantine(&PERMIT_KEY).expect("key")
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: DataStore,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::new(dir.path());
        store.ensure_workspace_home("ws1").expect("home");
        Self { _dir: dir, store }
    }

    fn outbox(&self) -> PathBuf {
        self.store.outbox("ws1").expect("outbox")
    }

    fn with_output(self, rel: &str, bytes: &[u8]) -> Self {
        let path = self.outbox().join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, bytes).expect("write");
        self
    }

    fn quarantine(&self) -> PathBuf {
        self.store.quarantine("ws-ws1", "req1").expect("quarantine")
    }

    fn egress(&self) -> PathBuf {
        self.store.egress("p1", "ws-ws1", "req1").expect("egress")
    }

    fn snapshot(&self, files: &[&str]) -> Result<(AirlockManifest, String), AirlockError> {
        self.snapshot_as("uid-1", files, 1 << 20)
    }

    fn snapshot_as(
        &self,
        uid: &str,
        files: &[&str],
        max: u64,
    ) -> Result<(AirlockManifest, String), AirlockError> {
        let source = SnapshotSource::outbox(&self.store, "ws1").expect("source");
        let files: Vec<String> = files.iter().map(|f| f.to_string()).collect();
        let request = SnapshotRequest { request: "ws-ws1/req1", uid, files: &files, max_file_size: max };
        take_snapshot(&source, &request, &self.quarantine(), &key())
    }

    /// The plaintext of the snapshot's copy of `rel`, opened with the key.
    fn opened(&self, rel: &str) -> Vec<u8> {
        let sealed = fs::File::open(self.quarantine().join(FILES).join(rel)).expect("open");
        let mut plaintext = Vec::new();
        crate::sealed::open(sealed, &mut plaintext, &key()).expect("sealed with the quarantine key");
        plaintext
    }

    /// Replaces the snapshot's copy of `rel` with `bytes`, sealed with the right key, as someone
    /// holding the key could.
    fn reseal(&self, rel: &str, bytes: &[u8]) {
        let path = self.quarantine().join(FILES).join(rel);
        let mut sealed = Vec::new();
        crate::sealed::seal(bytes, &mut sealed, &key()).expect("seal");
        fs::write(path, sealed).expect("write");
    }

    fn request_as<'a>(&self, uid: &'a str) -> SnapshotRequest<'a> {
        SnapshotRequest { request: "ws-ws1/req1", uid, files: &[], max_file_size: 0 }
    }

    fn deliver_as(&self, uid: &str, report: &[u8]) -> Result<Delivered, AirlockError> {
        deliver(&self.quarantine(), &self.egress(), report, &self.request_as(uid), &key())
    }

    fn refusal(&self, files: &[&str]) -> (usize, Refusal) {
        match self.snapshot(files) {
            Err(AirlockError::Refused { index, reason, .. }) => (index, reason),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn hidden_entries(dir: &std::path::Path) -> Vec<String> {
        fs::read_dir(dir)
            .map(|entries| {
                entries
                    .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[test]
fn a_snapshot_copies_and_hashes_every_requested_file() {
    let fx = Fixture::new().with_output("table.csv", b"a,count\nx,12\n").with_output("figs/plot.png", b"PNG");
    let (manifest, sha) = fx.snapshot(&["table.csv", "./figs/plot.png"]).expect("snapshot");
    assert_eq!(manifest.request, "ws-ws1/req1");
    let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["table.csv", "figs/plot.png"]);
    assert_eq!(manifest.files[0].size, 13);
    assert_eq!(manifest.files[0].sha256, sha256_hex(b"a,count\nx,12\n"));
    assert_eq!(fx.opened("figs/plot.png"), b"PNG");
    assert_eq!(sha, sha256_hex(&fs::read(fx.quarantine().join(MANIFEST)).expect("manifest")));
}

#[test]
fn a_repeated_snapshot_returns_the_first_one_even_if_the_outbox_changed() {
    let fx = Fixture::new().with_output("table.csv", b"original");
    let first = fx.snapshot(&["table.csv"]).expect("snapshot");
    fs::write(fx.outbox().join("table.csv"), b"changed after submission").expect("write");
    assert_eq!(fx.snapshot(&["table.csv"]).expect("again"), first);
    assert_eq!(fx.opened("table.csv"), b"original");
}

#[test]
fn links_that_lead_outside_the_outbox_are_refused() {
    let fx = Fixture::new().with_output("ok.csv", b"x");
    let secret = fx.store.root().join("extracts-secret.csv");
    fs::write(&secret, b"row-level data").expect("write");
    symlink(&secret, fx.outbox().join("absolute.csv")).expect("link");
    symlink("../../../../extracts-secret.csv", fx.outbox().join("relative.csv")).expect("link");
    fs::create_dir(fx.outbox().join("sub")).expect("mkdir");
    symlink("../../..", fx.outbox().join("sub/up")).expect("link");
    for (file, index) in [("absolute.csv", 1), ("relative.csv", 1), ("sub/up/outputs/ok.csv", 1)] {
        assert_eq!(fx.refusal(&["ok.csv", file]), (index, Refusal::Escapes { area: "outbox" }), "{file}");
    }
    assert!(!fx.quarantine().exists(), "nothing is published when a file is refused");
    let message = fx.snapshot(&["absolute.csv"]).expect_err("refused").to_string();
    assert!(message.starts_with("spec.files[0] \"absolute.csv\": leads outside the outbox"), "{message}");
}

#[test]
fn a_relative_link_that_stays_inside_the_outbox_is_followed() {
    let fx = Fixture::new().with_output("real/table.csv", b"a,count\n");
    symlink("real/table.csv", fx.outbox().join("alias.csv")).expect("link");
    let (manifest, _) = fx.snapshot(&["alias.csv"]).expect("snapshot");
    assert_eq!(manifest.files[0].sha256, sha256_hex(b"a,count\n"));
}

#[test]
fn an_outbox_replaced_by_a_link_is_refused() {
    let fx = Fixture::new();
    let elsewhere = fx.store.root().join("elsewhere");
    fs::create_dir_all(&elsewhere).expect("mkdir");
    fs::write(elsewhere.join("t.csv"), b"x").expect("write");
    fs::remove_dir(fx.outbox()).expect("rmdir");
    symlink(&elsewhere, fx.outbox()).expect("link");
    assert_eq!(fx.refusal(&["t.csv"]), (0, Refusal::NoArea { area: "outbox" }));
}

#[test]
fn missing_files_directories_fifos_and_duplicates_are_refused_without_blocking() {
    let fx = Fixture::new().with_output("a.csv", b"x");
    fs::create_dir(fx.outbox().join("dir")).expect("mkdir");
    let fifo = fx.outbox().join("pipe.csv");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    assert_eq!(fx.refusal(&["a.csv", "gone.csv"]), (1, Refusal::Missing { area: "outbox" }));
    assert_eq!(fx.refusal(&["dir"]), (0, Refusal::NotAFile { kind: "directory" }));
    assert_eq!(fx.refusal(&["pipe.csv"]), (0, Refusal::NotAFile { kind: "fifo" }));
    assert_eq!(fx.refusal(&["a.csv", "./a.csv"]), (1, Refusal::Duplicate));
    assert!(matches!(fx.refusal(&["../a.csv"]), (0, Refusal::UnsafePath(_))));
}

#[test]
fn a_crashed_snapshot_leaves_nothing_under_the_final_name_and_is_cleaned_up() {
    let fx = Fixture::new().with_output("a.csv", b"x");
    let leftover = fx.quarantine().with_file_name(".req1.partial-1-0");
    fs::create_dir_all(leftover.join("files")).expect("mkdir");
    fs::write(leftover.join("files/a.csv"), b"half").expect("write");
    fx.snapshot(&["a.csv"]).expect("snapshot");
    assert!(Fixture::hidden_entries(fx.quarantine().parent().expect("parent")).is_empty());
}

#[test]
fn delivery_copies_exactly_the_snapshot_read_only_with_the_same_manifest() {
    let fx = Fixture::new().with_output("t.csv", b"a,count\nx,12\n").with_output("d/n.txt", b"notes");
    let (_, snapshot_sha) = fx.snapshot(&["t.csv", "d/n.txt"]).expect("snapshot");
    fs::write(fx.outbox().join("t.csv"), b"edited later").expect("write");
    let delivered = fx.deliver_as("uid-1", b"{\"results\":{}}").expect("deliver");
    assert_eq!(delivered, Delivered { files: 2, bytes: 18, manifest_sha256: snapshot_sha.clone() });
    let egress = fx.egress();
    assert_eq!(fs::read(egress.join("files/t.csv")).expect("read"), b"a,count\nx,12\n");
    assert_eq!(fs::read(egress.join(REPORT)).expect("report"), b"{\"results\":{}}");
    let mode = fs::metadata(egress.join("files/t.csv")).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o444);
    assert_eq!(fx.deliver_as("uid-1", b"ignored").expect("again"), delivered);
}

#[test]
fn a_snapshot_changed_after_review_is_not_delivered() {
    let fx = Fixture::new().with_output("t.csv", b"reviewed");
    fx.snapshot(&["t.csv"]).expect("snapshot");
    // Even sealed with the right key, other bytes are not the reviewed ones.
    fx.reseal("t.csv", b"tampered");
    let error = fx.deliver_as("uid-1", b"{}").expect_err("refused");
    assert!(error.is_permanent(), "{error}");
    assert!(matches!(error, AirlockError::Corrupt(ArchiveError::HashMismatch { .. })), "{error}");
    assert!(!fx.egress().exists());
    assert!(Fixture::hidden_entries(fx.egress().parent().expect("parent")).is_empty());
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_it_is_copied() {
    let fx = Fixture::new().with_output("small.csv", b"x");
    let sparse = fs::File::create(fx.outbox().join("huge.csv")).expect("create");
    sparse.set_len(10 << 40).expect("a sparse 10 TiB file");
    let refused = fx.snapshot_as("uid-1", &["small.csv", "huge.csv"], 1 << 20);
    assert!(
        matches!(refused, Err(AirlockError::Refused { index: 1, reason: Refusal::TooLarge { size, max: 1048576 }, .. }) if size == 10 << 40),
        "{refused:?}"
    );
    assert!(!fx.quarantine().exists());
}

#[test]
fn a_snapshot_left_by_an_earlier_request_of_the_same_name_is_replaced() {
    let fx = Fixture::new().with_output("t.csv", b"first");
    fx.snapshot_as("uid-old", &["t.csv"], 100).expect("snapshot");
    fs::write(fx.outbox().join("t.csv"), b"second").expect("write");
    let (manifest, _) = fx.snapshot_as("uid-new", &["t.csv"], 100).expect("snapshot");
    assert_eq!(manifest.uid, "uid-new");
    assert_eq!(manifest.files[0].sha256, sha256_hex(b"second"));
    let stale = verify_snapshot(&fx.quarantine(), &fx.request_as("uid-old"), &key());
    assert!(stale.is_err_and(|e| e.is_permanent()));
}

#[test]
fn an_earlier_request_s_delivery_is_never_overwritten() {
    let fx = Fixture::new().with_output("t.csv", b"first");
    fx.snapshot_as("uid-old", &["t.csv"], 100).expect("snapshot");
    fx.deliver_as("uid-old", b"{}").expect("deliver");
    fs::write(fx.outbox().join("t.csv"), b"second").expect("write");
    fx.snapshot_as("uid-new", &["t.csv"], 100).expect("snapshot");
    let occupied = fx.deliver_as("uid-new", b"{}").expect_err("occupied");
    assert!(matches!(occupied, AirlockError::Occupied { .. }), "{occupied}");
    assert_eq!(fs::read(fx.egress().join("files/t.csv")).expect("read"), b"first");
}

#[test]
fn removing_a_snapshot_is_idempotent() {
    let fx = Fixture::new().with_output("t.csv", b"x");
    fx.snapshot(&["t.csv"]).expect("snapshot");
    remove_snapshot(&fx.quarantine()).expect("remove");
    remove_snapshot(&fx.quarantine()).expect("again");
    assert!(!fx.quarantine().exists());
}

fn shell_scanner(script: &str, timeout: Duration) -> Scanner {
    Scanner { program: "sh".into(), args: vec!["-c".into(), script.into(), "scan".into()], timeout }
}

#[test]
fn the_scanner_exit_status_is_its_verdict() {
    let fx = Fixture::new().with_output("clean.txt", b"hello").with_output("bad.txt", b"X5O!P%@AP EICAR");
    let scanner = shell_scanner(
        "if grep -q EICAR \"$1\"; then echo \"$1: Eicar FOUND\"; exit 1; fi",
        Duration::from_secs(10),
    );
    assert_eq!(scanner.scan(&fx.outbox().join("clean.txt")).expect("scan"), ScanVerdict::Clean);
    match scanner.scan(&fx.outbox().join("bad.txt")).expect("scan") {
        ScanVerdict::Flagged(detail) => assert!(detail.contains("Eicar FOUND"), "{detail}"),
        other => panic!("expected flagged, got {other:?}"),
    }
}

#[test]
fn a_scanner_that_hangs_is_stopped_and_blocks() {
    let fx = Fixture::new().with_output("a.txt", b"x");
    let scanner = shell_scanner("sleep 30", Duration::from_millis(200));
    let started = std::time::Instant::now();
    let verdict = scanner.scan(&fx.outbox().join("a.txt")).expect("scan");
    assert!(matches!(verdict, ScanVerdict::Flagged(ref d) if d.contains("did not finish")), "{verdict:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_scanner_that_cannot_run_is_an_error_not_a_verdict() {
    let scanner = Scanner::from_command_line("/nonexistent/clamscan --no-summary", Duration::from_secs(1))
        .expect("parsed");
    assert_eq!(scanner.args, ["--no-summary"]);
    assert!(scanner.scan(std::path::Path::new("/etc/hostname")).is_err());
}
