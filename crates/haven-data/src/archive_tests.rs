use std::os::unix::fs::symlink;

use super::*;
use crate::hashing::sha256_hex;
use crate::manifest::{FILES, MANIFEST};

fn key() -> SealKey {
    SealKey::archive(&[7; 32]).expect("key")
}

fn other_key() -> SealKey {
    SealKey::archive(&[8; 32]).expect("key")
}

struct Fixture {
    dir: tempfile::TempDir,
    store: DataStore,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::new(dir.path().join("store"));
        Self { dir, store }
    }

    /// Writes `bytes` at `rel` under `workspaces/ws1/`.
    fn with_file(self, rel: &str, bytes: &[u8]) -> Self {
        let path = self.store.workspace("ws1").expect("path").join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, bytes).expect("write");
        self
    }

    fn archive_dir(&self) -> PathBuf {
        self.store.archive("p1", "ws1").expect("path")
    }

    /// The sealed blob of the manifest's `n`-th file.
    fn blob(&self, n: usize) -> PathBuf {
        self.archive_dir().join("blobs").join(format!("{n}.sealed"))
    }

    /// Restores the archive into a fresh directory and returns it.
    fn opened(&self) -> PathBuf {
        let out = self.dir.path().join(format!("opened-{}", PARTIAL_SEQ.fetch_add(1, Ordering::Relaxed)));
        open_archive(&self.store, "p1", "ws1", &key(), &out).expect("open");
        out
    }

    fn manifest(&self) -> Manifest {
        let bytes = fs::read(self.opened().join(MANIFEST)).expect("read");
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

/// Every file under `dir`, with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    tree::walk(dir)
        .expect("walk")
        .into_iter()
        .map(|entry| (entry.rel.clone(), fs::read(dir.join(&entry.rel)).expect("read")))
        .collect()
}

#[test]
fn archive_seals_every_file_and_opens_to_a_sorted_manifest_and_the_same_bytes() {
    let fx = workspace();
    let record = archive_workspace(&fx.store, "p1", "ws1", &key()).expect("archive");
    assert_eq!(record.path, "archive/p1/ws1");
    assert_eq!((record.files, record.bytes, record.skipped), (3, 13, 0));
    let stored: Vec<PathBuf> = files_under(&fx.archive_dir()).into_iter().map(|(rel, _)| rel).collect();
    assert_eq!(
        stored,
        ["MANIFEST.sealed", "blobs/0.sealed", "blobs/1.sealed", "blobs/2.sealed"].map(PathBuf::from)
    );

    let opened = fx.opened();
    let manifest: Manifest =
        serde_json::from_slice(&fs::read(opened.join(MANIFEST)).expect("read")).expect("json");
    let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["home/notes.txt", "home/outputs/table1.csv", "home/z/deep/empty.bin"]);
    assert_eq!(manifest.files[1].sha256, sha256_hex(b"a,b\n1,2\n"));
    assert_eq!(manifest.files[1].size, 8);
    assert_eq!(fs::read(opened.join(FILES).join("home/outputs/table1.csv")).expect("copy"), b"a,b\n1,2\n");
    assert_eq!(fs::read(opened.join(FILES).join("home/z/deep/empty.bin")).expect("copy"), b"");
    assert_eq!(record.manifest_sha256, sha256_hex(&fs::read(opened.join(MANIFEST)).expect("read")));
    assert!(fx.partials().is_empty());
}

#[test]
fn an_archive_on_disk_shows_neither_the_contents_nor_the_names_of_its_files() {
    let fx = Fixture::new()
        .with_file("home/outputs/survival-by-region.csv", b"region,deaths\nnorthumberland,12\n")
        .with_file("home/participant-9434765919.txt", b"participant 9434765919 withdrew consent");
    archive_workspace(&fx.store, "p1", "ws1", &key()).expect("archive");
    let secrets: [&[u8]; 6] = [
        b"northumberland",
        b"9434765919",
        b"withdrew consent",
        b"survival-by-region",
        b"participant-",
        b"outputs",
    ];
    for (rel, bytes) in files_under(&fx.archive_dir()) {
        let name = rel.to_string_lossy();
        for secret in secrets {
            assert!(!name.contains(std::str::from_utf8(secret).expect("utf8")), "{name} names a file");
            assert!(!bytes.windows(secret.len()).any(|w| w == secret), "{name} shows {secret:?}");
        }
    }
}

#[test]
fn the_same_workspace_gives_the_same_manifest_but_never_the_same_ciphertext() {
    let fx = workspace();
    let first = archive_workspace(&fx.store, "p1", "ws1", &key()).expect("archive");
    let sealed = fs::read(fx.blob(0)).expect("read");
    tree::remove_all(&fx.archive_dir()).expect("remove");
    let second = archive_workspace(&fx.store, "p1", "ws1", &key()).expect("archive");
    assert_eq!(first.manifest_sha256, second.manifest_sha256, "manifests are deterministic");
    assert_ne!(fs::read(fx.blob(0)).expect("read"), sealed, "a fresh nonce per blob");
}

#[test]
fn an_archive_cannot_be_verified_or_opened_with_another_key() {
    let fx = workspace();
    archive_workspace(&fx.store, "p1", "ws1", &key()).expect("archive");
    match verify_archive(&fx.store, "p1", "ws1", &other_key()) {
        Err(ArchiveError::Sealed { path, source: SealError::WrongKey { .. } }) => {
            assert_eq!(path, fx.archive_dir().join("MANIFEST.sealed"));
        }
        other => panic!("expected a wrong key, got {other:?}"),
    }
    let out = fx.dir.path().join("restored");
    let err = open_archive(&fx.store, "p1", "ws1", &other_key(), &out).expect_err("wrong key");
    assert!(matches!(err, ArchiveError::Sealed { source: SealError::WrongKey { .. }, .. }), "{err:?}");
    assert!(!out.exists(), "a failed restore leaves nothing behind");
    // Archiving again with another key neither overwrites nor passes.
    assert!(archive_workspace(&fx.store, "p1", "ws1", &other_key()).is_err());
    verify_archive(&fx.store, "p1", "ws1", &key()).expect("the archive is intact");
}

#[test]
fn a_workspace_that_never_wrote_anything_archives_as_empty() {
    let fx = Fixture::new();
    let record = archive_workspace(&fx.store, "p1", "ws1", &key()).expect("archive");
    assert_eq!((record.files, record.bytes), (0, 0));
    assert_eq!(verify_archive(&fx.store, "p1", "ws1", &key()).expect("verify"), record);
    assert!(fx.manifest().files.is_empty());
}

#[test]
fn archiving_again_returns_the_existing_archive_without_rebuilding() {
    let fx = workspace();
    let first = archive_workspace(&fx.store, "p1", "ws1", &key()).expect("archive");
    let sealed = fs::read(fx.blob(0)).expect("read");
    let fx = fx.with_file("home/late.txt", b"written after the archive");
    let second = archive_workspace(&fx.store, "p1", "ws1", &key()).expect("again");
    assert_eq!(first, second);
    assert_eq!(fs::read(fx.blob(0)).expect("read"), sealed, "not sealed again");
    assert!(!fx.opened().join(FILES).join("home/late.txt").exists());
}

#[test]
fn archive_is_idempotent_after_a_crash_midway() {
    let fx = workspace();
    // What a crash during an earlier run leaves: a half-built partial directory.
    let stale = fx.store.permit_archive("p1").expect("path").join(".ws1.partial-999-0");
    fs::create_dir_all(stale.join("blobs")).expect("mkdir");
    fs::write(stale.join("blobs/0.sealed"), b"HAVNSEAL").expect("write");
    let record = archive_workspace(&fx.store, "p1", "ws1", &key()).expect("archive");
    assert_eq!(record.files, 3);
    assert!(fx.partials().is_empty(), "stale partials are removed: {:?}", fx.partials());
    assert_eq!(archive_workspace(&fx.store, "p1", "ws1", &key()).expect("again"), record);
}

#[test]
fn symlinks_are_recorded_as_skipped_and_never_followed() {
    let fx = workspace();
    let other = fx.dir.path().join("store/extracts/p2/secret");
    fs::create_dir_all(&other).expect("mkdir");
    fs::write(other.join("data.csv"), b"another project's data").expect("write");
    let home = fx.store.workspace_home("ws1").expect("home");
    symlink(&other, home.join("linked-dir")).expect("link");
    symlink(other.join("data.csv"), home.join("outputs/linked.csv")).expect("link");
    let record = archive_workspace(&fx.store, "p1", "ws1", &key()).expect("archive");
    assert_eq!((record.files, record.skipped), (3, 2));
    let skipped = fx.manifest().skipped;
    assert_eq!(skipped[0].path, "home/linked-dir");
    assert_eq!(skipped[0].kind, "symlink");
    assert_eq!(skipped[1].target.as_deref(), other.join("data.csv").to_str());
    assert!(!fx.blob(3).exists(), "no blob for a link");
    let opened = fx.opened().join(FILES);
    assert!(fs::symlink_metadata(opened.join("home/linked-dir")).is_err());
    assert!(fs::symlink_metadata(opened.join("home/outputs/linked.csv")).is_err());
}

#[test]
fn a_tampered_blob_fails_verification_naming_it() {
    let fx = workspace();
    archive_workspace(&fx.store, "p1", "ws1", &key()).expect("archive");
    let mut bytes = fs::read(fx.blob(0)).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs::write(fx.blob(0), &bytes).expect("tamper");
    match verify_archive(&fx.store, "p1", "ws1", &key()) {
        Err(ArchiveError::Sealed { path, source: SealError::Tampered { .. } }) => {
            assert_eq!(path, fx.blob(0))
        }
        other => panic!("expected tampering, got {other:?}"),
    }
    let out = fx.dir.path().join("restored");
    assert!(open_archive(&fx.store, "p1", "ws1", &key(), &out).is_err());
    assert!(!out.exists(), "a failed restore leaves nothing behind");
    let partials: Vec<_> = fs::read_dir(fx.dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".partial-"))
        .collect();
    assert!(partials.is_empty(), "nor a partial restore beside it: {partials:?}");
}

#[test]
fn a_truncated_blob_fails_verification() {
    let fx = workspace();
    archive_workspace(&fx.store, "p1", "ws1", &key()).expect("archive");
    let bytes = fs::read(fx.blob(1)).expect("read");
    fs::write(fx.blob(1), &bytes[..bytes.len() - 3]).expect("truncate");
    assert!(matches!(verify_archive(&fx.store, "p1", "ws1", &key()), Err(ArchiveError::Sealed { .. })));
}

#[test]
fn blobs_swapped_with_each_other_fail_verification() {
    // Each blob still opens with the key: only the manifest's sizes and hashes catch a swap.
    let fx = workspace().with_file("home/notes2.txt", b"world");
    archive_workspace(&fx.store, "p1", "ws1", &key()).expect("archive");
    let swap = |a: usize, b: usize| {
        let (first, second) = (fs::read(fx.blob(a)).expect("read"), fs::read(fx.blob(b)).expect("read"));
        fs::write(fx.blob(a), second).expect("swap");
        fs::write(fx.blob(b), first).expect("swap");
    };
    swap(0, 1); // home/notes.txt and home/notes2.txt: the same size
    match verify_archive(&fx.store, "p1", "ws1", &key()) {
        Err(ArchiveError::HashMismatch { path, expected, actual }) => {
            assert_eq!((path, expected, actual), (fx.blob(0), sha256_hex(b"hello"), sha256_hex(b"world")));
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    swap(0, 1);
    verify_archive(&fx.store, "p1", "ws1", &key()).expect("whole again");
    swap(1, 2); // home/notes2.txt and home/outputs/table1.csv
    match verify_archive(&fx.store, "p1", "ws1", &key()) {
        Err(ArchiveError::SizeMismatch { path, expected: 5, actual: 8 }) => assert_eq!(path, fx.blob(1)),
        other => panic!("expected a size mismatch, got {other:?}"),
    }
}

#[test]
fn a_missing_or_extra_blob_fails_verification() {
    let fx = workspace();
    archive_workspace(&fx.store, "p1", "ws1", &key()).expect("archive");
    let kept = fs::read(fx.blob(0)).expect("read");
    fs::remove_file(fx.blob(0)).expect("remove");
    match verify_archive(&fx.store, "p1", "ws1", &key()) {
        Err(ArchiveError::FileMissing { path }) => assert_eq!(path, fx.blob(0)),
        other => panic!("expected a missing file, got {other:?}"),
    }
    fs::write(fx.blob(0), &kept).expect("restore");
    verify_archive(&fx.store, "p1", "ws1", &key()).expect("whole again");
    for extra in ["3.sealed", "00.sealed", "smuggled.txt"] {
        let path = fx.archive_dir().join("blobs").join(extra);
        fs::write(&path, &kept).expect("add");
        match verify_archive(&fx.store, "p1", "ws1", &key()) {
            Err(ArchiveError::UnexpectedFile { path: found }) => assert_eq!(found, path),
            other => panic!("{extra}: expected an unexpected file, got {other:?}"),
        }
        fs::remove_file(&path).expect("remove");
    }
}

/// Replaces the sealed manifest with `edit` applied to its plaintext, sealed with the right
/// key: what someone holding the key could do.
fn reseal_manifest(fx: &Fixture, edit: impl Fn(String) -> String) {
    let path = fx.archive_dir().join("MANIFEST.sealed");
    let mut plain = Vec::new();
    crate::sealed::open(File::open(&path).expect("open"), &mut plain, &key()).expect("open");
    let edited = edit(String::from_utf8(plain).expect("utf8"));
    let mut sealed = Vec::new();
    crate::sealed::seal(edited.as_bytes(), &mut sealed, &key()).expect("seal");
    fs::write(&path, sealed).expect("write");
}

#[test]
fn an_edited_manifest_cannot_point_outside_the_archive() {
    let fx = workspace();
    archive_workspace(&fx.store, "p1", "ws1", &key()).expect("archive");
    reseal_manifest(&fx, |m| m.replace("home/notes.txt", "../../../raw/x"));
    assert!(matches!(verify_archive(&fx.store, "p1", "ws1", &key()), Err(ArchiveError::BadManifest { .. })));
    let out = fx.dir.path().join("restored");
    let err = open_archive(&fx.store, "p1", "ws1", &key(), &out).expect_err("refused");
    assert!(matches!(err, ArchiveError::BadManifest { .. }), "{err:?}");
    assert!(!fx.dir.path().join("raw").exists() && !out.exists());
}

#[test]
fn another_workspaces_archive_moved_into_place_is_refused() {
    let fx = workspace();
    archive_workspace(&fx.store, "p1", "ws1", &key()).expect("archive");
    archive_workspace(&fx.store, "p1", "ws2", &key()).expect("archive");
    tree::remove_all(&fx.archive_dir()).expect("remove");
    fs::rename(fx.store.archive("p1", "ws2").expect("path"), fx.archive_dir()).expect("move");
    match verify_archive(&fx.store, "p1", "ws1", &key()) {
        Err(ArchiveError::BadManifest { reason, .. }) => assert!(reason.contains("ws2"), "{reason}"),
        other => panic!("expected a foreign manifest, got {other:?}"),
    }
}

#[test]
fn a_corrupted_archive_is_not_overwritten_by_archiving_again() {
    let fx = workspace();
    archive_workspace(&fx.store, "p1", "ws1", &key()).expect("archive");
    fs::write(fx.blob(0), b"HELLO").expect("tamper");
    assert!(matches!(
        archive_workspace(&fx.store, "p1", "ws1", &key()),
        Err(ArchiveError::Sealed { source: SealError::NotSealed, .. })
    ));
    assert_eq!(fs::read(fx.blob(0)).expect("read"), b"HELLO");
}

#[test]
fn verifying_an_archive_that_does_not_exist_is_an_error() {
    let fx = Fixture::new();
    assert!(matches!(verify_archive(&fx.store, "p1", "ws1", &key()), Err(ArchiveError::Missing { .. })));
}

#[test]
fn opening_into_an_existing_directory_is_refused() {
    let fx = workspace();
    archive_workspace(&fx.store, "p1", "ws1", &key()).expect("archive");
    let out = fx.dir.path().join("restored");
    fs::create_dir(&out).expect("mkdir");
    fs::write(out.join("keep.txt"), b"mine").expect("write");
    assert!(matches!(open_archive(&fx.store, "p1", "ws1", &key(), &out), Err(ArchiveError::Io { .. })));
    assert_eq!(fs::read(out.join("keep.txt")).expect("kept"), b"mine");
    // Nor an empty one, nor a link to one: the restore never lands inside something already there.
    let empty = fx.dir.path().join("empty");
    fs::create_dir(&empty).expect("mkdir");
    assert!(open_archive(&fx.store, "p1", "ws1", &key(), &empty).is_err());
    assert_eq!(fs::read_dir(&empty).expect("list").count(), 0, "left empty");
    let link = fx.dir.path().join("link");
    std::os::unix::fs::symlink(&empty, &link).expect("symlink");
    assert!(open_archive(&fx.store, "p1", "ws1", &key(), &link).is_err());
    assert_eq!(fs::read_dir(&empty).expect("list").count(), 0, "nothing written through the link");
    // A fresh path gets the whole restore, renamed into place.
    let fresh = fx.dir.path().join("fresh");
    open_archive(&fx.store, "p1", "ws1", &key(), &fresh).expect("open");
    assert_eq!(fs::read(fresh.join("files/home/notes.txt")).expect("restored"), b"hello");
}

#[test]
fn removing_workspace_files_deletes_only_that_workspace_and_is_idempotent() {
    let fx = workspace().with_file("home/a", b"a");
    let other = fx.store.ensure_workspace_home("ws2").expect("ws2");
    let outside = fx.dir.path().join("store/raw/source.csv");
    fs::create_dir_all(outside.parent().expect("parent")).expect("mkdir");
    fs::write(&outside, b"source").expect("write");
    symlink(fx.dir.path().join("store/raw"), fx.store.workspace_home("ws1").expect("home").join("raw"))
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
    let err = archive_workspace(&fx.store, "p1", "../ws1", &key()).expect_err("bad");
    assert!(
        matches!(err, ArchiveError::Store(StoreError::InvalidName { argument: "workspace", .. })),
        "{err:?}"
    );
    assert!(!fx.dir.path().join("store/archive").exists());
}
