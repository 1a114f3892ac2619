use std::os::unix::fs::symlink;

use super::*;
use crate::hashing::sha256_hex;

struct Fixture {
    dir: tempfile::TempDir,
    store: DataStore,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::new(dir.path());
        Self { dir, store }
    }

    /// Writes `bytes` at `rel` under `workspaces/ws1/`.
    fn with_file(self, rel: &str, bytes: &[u8]) -> Self {
        let path = self.store.workspace("ws1").expect("path").join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, bytes).expect("write");
        self
    }

    fn archived(&self, rel: &str) -> PathBuf {
        self.store.archive("p1", "ws1").expect("path").join("files").join(rel)
    }

    fn manifest(&self) -> Manifest {
        let bytes =
            fs::read(self.store.archive("p1", "ws1").expect("path").join("MANIFEST.json")).expect("read");
        serde_json::from_slice(&bytes).expect("manifest")
    }

    fn partials(&self) -> Vec<String> {
        fs::read_dir(self.store.permit_archive("p1").expect("path"))
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with('.'))
            .collect()
    }
}

fn workspace() -> Fixture {
    Fixture::new()
        .with_file("home/notes.txt", b"hello")
        .with_file("home/outputs/table1.csv", b"a,b\n1,2\n")
        .with_file("home/z/deep/empty.bin", b"")
}

#[test]
fn archive_copies_every_file_and_writes_a_sorted_manifest() {
    let fx = workspace();
    let record = archive_workspace(&fx.store, "p1", "ws1").expect("archive");
    assert_eq!(record.path, "archive/p1/ws1");
    assert_eq!((record.files, record.bytes, record.skipped), (3, 13, 0));
    let manifest = fx.manifest();
    let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["home/notes.txt", "home/outputs/table1.csv", "home/z/deep/empty.bin"]);
    assert_eq!(manifest.files[1].sha256, sha256_hex(b"a,b\n1,2\n"));
    assert_eq!(manifest.files[1].size, 8);
    assert_eq!(fs::read(fx.archived("home/outputs/table1.csv")).expect("copy"), b"a,b\n1,2\n");
    let manifest_bytes =
        fs::read(fx.store.archive("p1", "ws1").expect("p").join("MANIFEST.json")).expect("read");
    assert_eq!(record.manifest_sha256, sha256_hex(&manifest_bytes));
    assert!(fx.partials().is_empty());
}

#[test]
fn a_workspace_that_never_wrote_anything_archives_as_empty() {
    let fx = Fixture::new();
    let record = archive_workspace(&fx.store, "p1", "ws1").expect("archive");
    assert_eq!((record.files, record.bytes), (0, 0));
    assert_eq!(verify_archive(&fx.store, "p1", "ws1").expect("verify"), record);
}

#[test]
fn archiving_again_returns_the_existing_archive_without_rebuilding() {
    let fx = workspace();
    let first = archive_workspace(&fx.store, "p1", "ws1").expect("archive");
    let fx = fx.with_file("home/late.txt", b"written after the archive");
    let second = archive_workspace(&fx.store, "p1", "ws1").expect("again");
    assert_eq!(first, second);
    assert!(!fx.archived("home/late.txt").exists());
}

#[test]
fn archive_is_idempotent_after_a_crash_midway() {
    let fx = workspace();
    // What a crash during an earlier run leaves: a half-built partial directory.
    let stale = fx.store.permit_archive("p1").expect("path").join(".ws1.partial-999-0");
    fs::create_dir_all(stale.join("files/home")).expect("mkdir");
    fs::write(stale.join("files/home/notes.txt"), b"hel").expect("write");
    let record = archive_workspace(&fx.store, "p1", "ws1").expect("archive");
    assert_eq!(record.files, 3);
    assert!(fx.partials().is_empty(), "stale partials are removed: {:?}", fx.partials());
    assert_eq!(archive_workspace(&fx.store, "p1", "ws1").expect("again"), record);
}

#[test]
fn symlinks_are_recorded_as_skipped_and_never_followed() {
    let fx = workspace();
    let other = fx.dir.path().join("extracts/p2/secret");
    fs::create_dir_all(&other).expect("mkdir");
    fs::write(other.join("data.csv"), b"another project's data").expect("write");
    let home = fx.store.workspace_home("ws1").expect("home");
    symlink(&other, home.join("linked-dir")).expect("link");
    symlink(other.join("data.csv"), home.join("outputs/linked.csv")).expect("link");
    let record = archive_workspace(&fx.store, "p1", "ws1").expect("archive");
    assert_eq!((record.files, record.skipped), (3, 2));
    let skipped = fx.manifest().skipped;
    assert_eq!(skipped[0].path, "home/linked-dir");
    assert_eq!(skipped[0].kind, "symlink");
    assert_eq!(skipped[1].target.as_deref(), other.join("data.csv").to_str());
    assert!(fs::symlink_metadata(fx.archived("home/linked-dir")).is_err());
    assert!(fs::symlink_metadata(fx.archived("home/outputs/linked.csv")).is_err());
}

#[test]
fn a_modified_archived_file_fails_verification_naming_it() {
    let fx = workspace();
    archive_workspace(&fx.store, "p1", "ws1").expect("archive");
    fs::write(fx.archived("home/notes.txt"), b"HELLO").expect("tamper");
    match verify_archive(&fx.store, "p1", "ws1") {
        Err(ArchiveError::HashMismatch { path, .. }) => assert_eq!(path, fx.archived("home/notes.txt")),
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    fs::write(fx.archived("home/notes.txt"), b"hi").expect("tamper");
    assert!(matches!(verify_archive(&fx.store, "p1", "ws1"), Err(ArchiveError::SizeMismatch { .. })));
}

#[test]
fn a_missing_or_extra_archived_file_fails_verification() {
    let fx = workspace();
    archive_workspace(&fx.store, "p1", "ws1").expect("archive");
    fs::remove_file(fx.archived("home/notes.txt")).expect("remove");
    match verify_archive(&fx.store, "p1", "ws1") {
        Err(ArchiveError::FileMissing { path }) => assert_eq!(path, fx.archived("home/notes.txt")),
        other => panic!("expected a missing file, got {other:?}"),
    }
    fs::write(fx.archived("home/notes.txt"), b"hello").expect("restore");
    fs::write(fx.archived("home/smuggled.txt"), b"x").expect("add");
    assert!(matches!(verify_archive(&fx.store, "p1", "ws1"), Err(ArchiveError::UnexpectedFile { .. })));
}

#[test]
fn an_edited_manifest_cannot_point_outside_the_archive() {
    let fx = workspace();
    archive_workspace(&fx.store, "p1", "ws1").expect("archive");
    let path = fx.store.archive("p1", "ws1").expect("path").join("MANIFEST.json");
    let edited = fs::read_to_string(&path).expect("read").replace("home/notes.txt", "../../../raw/x");
    fs::write(&path, edited).expect("write");
    assert!(matches!(verify_archive(&fx.store, "p1", "ws1"), Err(ArchiveError::BadManifest { .. })));
}

#[test]
fn a_corrupted_archive_is_not_overwritten_by_archiving_again() {
    let fx = workspace();
    archive_workspace(&fx.store, "p1", "ws1").expect("archive");
    fs::write(fx.archived("home/notes.txt"), b"HELLO").expect("tamper");
    assert!(matches!(archive_workspace(&fx.store, "p1", "ws1"), Err(ArchiveError::HashMismatch { .. })));
}

#[test]
fn verifying_an_archive_that_does_not_exist_is_an_error() {
    let fx = Fixture::new();
    assert!(matches!(verify_archive(&fx.store, "p1", "ws1"), Err(ArchiveError::Missing { .. })));
}

#[test]
fn removing_workspace_files_deletes_only_that_workspace_and_is_idempotent() {
    let fx = workspace().with_file("home/a", b"a");
    let other = fx.store.ensure_workspace_home("ws2").expect("ws2");
    let outside = fx.dir.path().join("raw/source.csv");
    fs::create_dir_all(outside.parent().expect("parent")).expect("mkdir");
    fs::write(&outside, b"source").expect("write");
    symlink(fx.dir.path().join("raw"), fx.store.workspace_home("ws1").expect("home").join("raw"))
        .expect("link");
    remove_workspace_files(&fx.store, "ws1").expect("remove");
    assert!(!fx.store.workspace("ws1").expect("path").exists());
    assert!(other.is_dir());
    assert!(outside.exists(), "links are removed, not followed");
    remove_workspace_files(&fx.store, "ws1").expect("again");
}

#[test]
fn bad_names_are_refused_before_touching_the_disk() {
    let fx = Fixture::new();
    let err = archive_workspace(&fx.store, "p1", "../ws1").expect_err("bad");
    assert!(
        matches!(err, ArchiveError::Store(StoreError::InvalidName { argument: "workspace", .. })),
        "{err:?}"
    );
    assert!(!fx.dir.path().join("archive").exists());
}
