//! Moving a delivery between sites: what arrives is byte for byte what was delivered, and a
//! package that is not exactly what its manifest lists never writes a byte.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;

const TABLE: &[u8] = b"region,count\nNorth,120\nSouth,40\n";
const PLOT: &[u8] = b"\x89PNG\r\n\x1a\n\x00\xff";
const RESULTS: &[u8] = b"{\"results\":{\"t.csv\":\"pass\"}}";

/// A sending site with one delivered export, and an empty receiving site.
struct Sites {
    sender: Fixture,
    receiver: tempfile::TempDir,
}

impl Sites {
    fn with_delivery(files: &[(&str, &[u8])]) -> (Self, Delivered) {
        let mut sender = Fixture::new();
        for (rel, bytes) in files {
            sender = sender.with_output(rel, bytes);
        }
        let rels: Vec<&str> = files.iter().map(|(rel, _)| *rel).collect();
        sender.snapshot(&rels).expect("snapshot");
        let delivered = sender.deliver_as("uid-1", RESULTS).expect("deliver");
        (Self { sender, receiver: tempfile::tempdir().expect("tempdir") }, delivered)
    }

    fn two_files() -> (Self, Delivered) {
        Self::with_delivery(&[("t.csv", TABLE), ("figs/plot.png", PLOT)])
    }

    fn package(&self) -> (Package, String) {
        read_package(&self.sender.egress(), 1 << 20).expect("package")
    }

    fn target(&self) -> PathBuf {
        self.receiver.path().join("imports/site-a/req1")
    }

    /// Everything under the receiving site, so a test can see that nothing was written.
    fn received_entries(&self) -> Vec<PathBuf> {
        let mut entries = Vec::new();
        let mut pending = vec![self.receiver.path().to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).expect("read dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    pending.push(path.clone());
                }
                entries.push(path);
            }
        }
        entries.sort();
        entries
    }

    /// `receive_package` must fail, leaving no delivery and no partial directory behind.
    fn refused(&self, package: &Package, expected_sha: &str) -> AirlockError {
        let error = receive_package(&self.target(), package, expected_sha).expect_err("refused");
        assert!(error.is_permanent(), "{error}");
        assert!(!self.target().exists(), "nothing is published: {error}");
        let parent = self.target().parent().map(Path::to_path_buf).expect("parent");
        assert!(Fixture::hidden_entries(&parent).is_empty(), "no partial is left: {error}");
        error
    }
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A package whose manifest was rewritten to list `files`, with the SHA-256 of the rewrite.
fn with_manifest_listing(package: &Package, files: Vec<ManifestFile>) -> (Package, String) {
    let mut manifest: AirlockManifest = serde_json::from_slice(&package.manifest).expect("manifest");
    manifest.files = files;
    let bytes = serde_json::to_vec_pretty(&manifest).expect("json");
    let sha = sha256_hex(&bytes);
    (Package { manifest: bytes, ..package.clone() }, sha)
}

#[test]
fn a_delivery_sent_as_json_arrives_byte_for_byte_with_the_same_manifest_sha() {
    let (sites, delivered) = Sites::two_files();
    let (package, sha) = sites.package();
    assert_eq!(sha, delivered.manifest_sha256);
    let json = serde_json::to_value(&package).expect("to json");
    assert_eq!(json["files"][1]["path"], "figs/plot.png");
    assert_eq!(json["files"][1]["bytes"], STANDARD.encode(PLOT), "bytes travel as base64");
    assert_eq!(json["report"], STANDARD.encode(RESULTS));
    let travelled: Package = serde_json::from_value(json).expect("from json");
    assert_eq!(travelled, package);

    let received = receive_package(&sites.target(), &travelled, &sha).expect("receive");
    assert_eq!(received, delivered);
    let (sent, arrived) = (sites.sender.egress(), sites.target());
    for rel in ["MANIFEST.json", "results.json", "files/t.csv", "files/figs/plot.png"] {
        assert_eq!(read(&arrived.join(rel)), read(&sent.join(rel)), "{rel}");
    }
    let mode = fs::metadata(arrived.join("files/figs/plot.png")).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o444, "received files are read-only");
    assert_eq!(sha256_hex(&read(&arrived.join(MANIFEST))), sha);
}

#[test]
fn base64_that_does_not_decode_is_a_json_error() {
    let json = r#"{"manifest":"not base64!","report":"","files":[]}"#;
    assert!(serde_json::from_str::<Package>(json).is_err());
}

#[test]
fn a_changed_or_truncated_file_in_the_package_is_refused() {
    let (sites, _) = Sites::two_files();
    let (package, sha) = sites.package();
    let mut changed = package.clone();
    changed.files[0].bytes[0] ^= 0x01;
    let error = sites.refused(&changed, &sha);
    assert!(
        matches!(&error, AirlockError::Corrupt(ArchiveError::HashMismatch { path, .. }) if path.ends_with("files/t.csv")),
        "{error}"
    );
    let mut truncated = package;
    truncated.files[1].bytes.pop();
    let error = sites.refused(&truncated, &sha);
    assert!(matches!(error, AirlockError::Corrupt(ArchiveError::SizeMismatch { .. })), "{error}");
}

#[test]
fn a_package_whose_manifest_is_not_the_expected_one_is_refused() {
    let (sites, _) = Sites::two_files();
    let (package, sha) = sites.package();
    let error = sites.refused(&package, &sha256_hex(b"another release"));
    assert!(matches!(error, AirlockError::Corrupt(ArchiveError::BadManifest { .. })), "{error}");
    assert!(error.to_string().contains(&sha), "{error}");
    // A manifest rewritten to list fewer files is another release, even if the files match it.
    let manifest: AirlockManifest = serde_json::from_slice(&package.manifest).expect("manifest");
    let (mut fewer, _) = with_manifest_listing(&package, manifest.files[..1].to_vec());
    fewer.files.truncate(1);
    sites.refused(&fewer, &sha);
}

#[test]
fn a_file_the_manifest_does_not_list_is_refused() {
    let (sites, _) = Sites::two_files();
    let (mut package, sha) = sites.package();
    package.files.push(PackageFile { path: "extra.csv".into(), bytes: b"row-level".to_vec() });
    let error = sites.refused(&package, &sha);
    assert!(
        matches!(&error, AirlockError::Corrupt(ArchiveError::UnexpectedFile { path }) if path.ends_with("files/extra.csv")),
        "{error}"
    );
}

#[test]
fn a_listed_file_missing_from_the_package_is_refused() {
    let (sites, _) = Sites::two_files();
    let (mut package, sha) = sites.package();
    package.files.remove(0);
    let error = sites.refused(&package, &sha);
    assert!(
        matches!(&error, AirlockError::Corrupt(ArchiveError::FileMissing { path }) if path.ends_with("files/t.csv")),
        "{error}"
    );
}

#[test]
fn a_file_carried_twice_is_refused() {
    let (sites, _) = Sites::two_files();
    let (mut package, sha) = sites.package();
    package.files.push(package.files[0].clone());
    let error = sites.refused(&package, &sha);
    assert!(error.to_string().contains("twice"), "{error}");
}

#[test]
fn paths_leading_outside_the_target_are_refused_and_nothing_is_written() {
    let (sites, _) = Sites::two_files();
    let (package, sha) = sites.package();
    let outside = tempfile::tempdir().expect("tempdir");
    let absolute = outside.path().join("evil").to_string_lossy().into_owned();
    let hostile = ["../evil", "../../../evil", absolute.as_str(), "a//b", "./t.csv", "figs/../../evil", ""];
    for path in hostile {
        // Carried beside the listed files: not listed, so never written.
        let mut extra = package.clone();
        extra.files.push(PackageFile { path: path.into(), bytes: b"x".to_vec() });
        let error = sites.refused(&extra, &sha);
        assert!(
            matches!(error, AirlockError::Corrupt(ArchiveError::UnexpectedFile { .. })),
            "{path:?}: {error}"
        );
        // Listed by a hostile sender who also chose the expected SHA-256: the manifest is refused.
        let entry = ManifestFile { path: path.into(), size: 1, sha256: sha256_hex(b"x") };
        let (listed, listed_sha) = with_manifest_listing(&extra, vec![entry]);
        let listed =
            Package { files: vec![PackageFile { path: path.into(), bytes: b"x".to_vec() }], ..listed };
        let error = sites.refused(&listed, &listed_sha);
        assert!(
            matches!(error, AirlockError::Corrupt(ArchiveError::BadManifest { .. })),
            "{path:?}: {error}"
        );
    }
    assert_eq!(sites.received_entries(), Vec::<PathBuf>::new(), "nothing written at the receiving site");
    assert!(fs::read_dir(outside.path()).expect("read dir").next().is_none(), "nothing written outside");
    assert!(!sites.sender.store.root().join("evil").exists());
}

#[test]
fn receiving_the_same_package_twice_returns_the_delivery_in_place() {
    let (sites, delivered) = Sites::two_files();
    let (package, sha) = sites.package();
    assert_eq!(receive_package(&sites.target(), &package, &sha).expect("first"), delivered);
    let before = sites.received_entries();
    assert_eq!(receive_package(&sites.target(), &package, &sha).expect("again"), delivered);
    assert_eq!(sites.received_entries(), before);
    // A received delivery that was tampered with afterwards is not taken as received.
    let copy = sites.target().join("files/t.csv");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o644)).expect("chmod");
    fs::write(&copy, b"region,count\nNorth,120\nSouth,41\n").expect("write");
    let error = receive_package(&sites.target(), &package, &sha).expect_err("tampered");
    assert!(matches!(error, AirlockError::Corrupt(ArchiveError::HashMismatch { .. })), "{error}");
}

#[test]
fn another_package_at_an_occupied_target_is_refused_and_the_first_kept() {
    let (sites, _) = Sites::two_files();
    let (package, sha) = sites.package();
    receive_package(&sites.target(), &package, &sha).expect("receive");
    let (other_site, _) = Sites::with_delivery(&[("t.csv", b"other release")]);
    let (other, other_sha) = other_site.package();
    let error = receive_package(&sites.target(), &other, &other_sha).expect_err("occupied");
    assert!(matches!(error, AirlockError::Occupied { .. }), "{error}");
    assert_eq!(read(&sites.target().join("files/t.csv")), TABLE);
    assert_eq!(sha256_hex(&read(&sites.target().join(MANIFEST))), sha);
}

#[test]
fn a_delivery_over_max_bytes_is_not_packaged() {
    let (sites, delivered) = Sites::two_files();
    assert_eq!(delivered.bytes, (TABLE.len() + PLOT.len()) as u64);
    let error = read_package(&sites.sender.egress(), delivered.bytes - 1).expect_err("too large");
    assert!(
        matches!(error, AirlockError::TooLargeToPackage { bytes, max, .. } if bytes == delivered.bytes && max == delivered.bytes - 1),
        "{error}"
    );
    assert!(error.is_permanent());
    let (package, _) = read_package(&sites.sender.egress(), delivered.bytes).expect("exactly max");
    assert_eq!(package.files.len(), 2);
}

#[test]
fn a_delivery_changed_after_it_arrived_is_not_packaged() {
    let (sites, _) = Sites::two_files();
    let copy = sites.sender.egress().join("files/t.csv");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o644)).expect("chmod");
    fs::write(&copy, b"region,count\nNorth,120\nSouth,4\n").expect("write");
    let error = read_package(&sites.sender.egress(), 1 << 20).expect_err("changed");
    assert!(matches!(error, AirlockError::Corrupt(_)), "{error}");
}
