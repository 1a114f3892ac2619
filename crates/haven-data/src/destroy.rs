//! Destroying a permit's data once its retention has passed (DESIGN §5 "Destroy"): its
//! extracts, archives and egress staging, and the quarantine of each of its workspaces'
//! namespaces. Key shredding happens in the operator, which owns the Secret.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

use crate::store::{DataStore, StoreError};
use crate::tree::{self, WalkError};

#[derive(Debug, Error)]
pub enum DestroyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot destroy {path}: {source}", path = path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl From<WalkError> for DestroyError {
    fn from(e: WalkError) -> Self {
        Self::Io { path: e.path, source: e.source }
    }
}

/// What was deleted from one area of the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestroyedArea {
    /// The area, relative to the store root: `extracts/<permit>`, `quarantine/<namespace>`…
    pub path: String,
    /// Regular files deleted (symlinks are deleted too, but hold no data and are not counted).
    pub files: u64,
    pub bytes: u64,
}

/// Every area the destruction covered, in a fixed order: extracts, archive, egress, then
/// each quarantine namespace in name order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestructionReport {
    pub areas: Vec<DestroyedArea>,
}

impl DestructionReport {
    pub fn files(&self) -> u64 {
        self.areas.iter().map(|a| a.files).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.areas.iter().map(|a| a.bytes).sum()
    }
}

/// Deletes `extracts/<permit>`, `archive/<permit>`, `egress/<permit>` and
/// `quarantine/<namespace>` for each given namespace, counting files and bytes first.
///
/// Every area is reported, with zeros when it held nothing or did not exist, so the report
/// always has the same shape and shows what was checked, not only what was found. Idempotent:
/// a second call succeeds and reports zeros. All names are validated before anything is
/// deleted, so a bad namespace cannot leave the destruction half done.
pub fn destroy_permit_data(
    store: &DataStore,
    permit: &str,
    workspace_namespaces: &[String],
) -> Result<DestructionReport, DestroyError> {
    let mut areas: Vec<(String, PathBuf)> = vec![
        (format!("extracts/{permit}"), store.permit_extracts(permit)?),
        (format!("archive/{permit}"), store.permit_archive(permit)?),
        (format!("egress/{permit}"), store.permit_egress(permit)?),
    ];
    let namespaces: BTreeSet<&str> = workspace_namespaces.iter().map(String::as_str).collect();
    for namespace in namespaces {
        areas.push((format!("quarantine/{namespace}"), store.namespace_quarantine(namespace)?));
    }
    let mut report = DestructionReport { areas: Vec::with_capacity(areas.len()) };
    for (name, path) in areas {
        report.areas.push(destroy_area(name, &path)?);
    }
    Ok(report)
}

fn destroy_area(name: String, path: &Path) -> Result<DestroyedArea, DestroyError> {
    let (files, bytes) = tree::count(path)?;
    tree::remove_all(path)?;
    Ok(DestroyedArea { path: name, files, bytes })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    fn write(path: &Path, bytes: &[u8]) {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, bytes).expect("write");
    }

    fn area(path: &str, files: u64, bytes: u64) -> DestroyedArea {
        DestroyedArea { path: path.into(), files, bytes }
    }

    #[test]
    fn destroys_every_area_of_the_permit_and_counts_what_it_held() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::new(dir.path());
        write(&store.extract("p1", "visits").expect("path").join("data.csv"), b"0123456789");
        write(&store.archive("p1", "ws1").expect("path").join("files/a"), b"abc");
        write(&store.archive("p1", "ws1").expect("path").join("MANIFEST.json"), b"{}");
        write(&store.quarantine("ws-ws1", "r1").expect("path").join("t.csv"), b"12345");
        write(&store.extract("p2", "visits").expect("path").join("data.csv"), b"other permit");

        let namespaces = vec!["ws-ws1".to_string(), "ws-ws2".to_string(), "ws-ws1".to_string()];
        let report = destroy_permit_data(&store, "p1", &namespaces).expect("destroy");
        assert_eq!(
            report.areas,
            vec![
                area("extracts/p1", 1, 10),
                area("archive/p1", 2, 5),
                area("egress/p1", 0, 0),
                area("quarantine/ws-ws1", 1, 5),
                area("quarantine/ws-ws2", 0, 0),
            ]
        );
        assert_eq!((report.files(), report.bytes()), (4, 20));
        assert!(!store.permit_extracts("p1").expect("path").exists());
        assert!(!store.permit_archive("p1").expect("path").exists());
        assert!(!store.namespace_quarantine("ws-ws1").expect("path").exists());
        assert!(
            store.extract("p2", "visits").expect("path").join("data.csv").exists(),
            "other permits untouched"
        );
    }

    #[test]
    fn destroying_twice_succeeds_and_reports_zeros() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::new(dir.path());
        write(&store.extract("p1", "visits").expect("path").join("data.csv"), b"x");
        destroy_permit_data(&store, "p1", &[]).expect("first");
        let again = destroy_permit_data(&store, "p1", &[]).expect("second");
        assert_eq!(again.areas.len(), 3);
        assert_eq!((again.files(), again.bytes()), (0, 0));
    }

    #[test]
    fn symlinks_are_deleted_but_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::new(dir.path());
        let precious = dir.path().join("raw/precious.csv");
        write(&precious, b"source data");
        let extract = store.extract("p1", "visits").expect("path");
        fs::create_dir_all(&extract).expect("mkdir");
        symlink(dir.path().join("raw"), extract.join("raw-link")).expect("link");
        let report = destroy_permit_data(&store, "p1", &[]).expect("destroy");
        assert_eq!(report.areas[0], area("extracts/p1", 0, 0));
        assert!(precious.exists());
        assert!(!extract.exists());
    }

    #[test]
    fn a_bad_namespace_deletes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::new(dir.path());
        let data = store.extract("p1", "visits").expect("path").join("data.csv");
        write(&data, b"x");
        let err = destroy_permit_data(&store, "p1", &["../raw".to_string()]).expect_err("bad name");
        assert!(
            matches!(err, DestroyError::Store(StoreError::InvalidName { argument: "namespace", .. })),
            "{err:?}"
        );
        assert!(data.exists());
    }
}
