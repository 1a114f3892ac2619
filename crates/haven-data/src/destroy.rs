//! Destroying a permit's data once its retention has passed (DESIGN §5 "Destroy"): its
//! extracts, archives and egress staging, and for each of its workspaces the quarantine of its
//! namespace and its import drop zone. Key shredding happens in the operator, which owns the
//! Secret.
//!
//! Destruction is two steps so that a crash at any point still yields the true record: first
//! [`survey_permit_data`] counts what each area holds (nothing is deleted), and the caller
//! makes that survey durable; then [`destroy_permit_data`] deletes, and may be run again after
//! a crash. The record is the survey, never a count taken after a partial deletion.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;
use thiserror::Error;

use crate::store::{DataStore, StoreError};
use crate::tree::{self, EntryKind, WalkError};

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

/// What one area of the store held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestroyedArea {
    /// The area, relative to the store root: `extracts/<permit>`, `quarantine/<namespace>`…
    pub path: String,
    /// Regular files (symlinks are deleted too, but hold no data and are not counted).
    pub files: u64,
    pub bytes: u64,
}

/// Every area of a permit, in a fixed order: extracts, archive, egress, then per workspace in
/// name order its quarantine and its imports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestructionReport {
    pub areas: Vec<DestroyedArea>,
    /// Whether every file of the permit's workspace archives was sealed (encrypted with a key
    /// derived from the permit's key), checked file by file: vacuously true with no archive.
    pub archives_sealed: bool,
}

impl DestructionReport {
    pub fn files(&self) -> u64 {
        self.areas.iter().map(|a| a.files).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.areas.iter().map(|a| a.bytes).sum()
    }
}

/// The workspaces that have an archive under `archive/<permit>/`: every workspace of the
/// permit that was torn down, whether or not its Workspace object still exists.
pub fn archived_workspaces(store: &DataStore, permit: &str) -> Result<Vec<String>, DestroyError> {
    let dir = store.permit_archive(permit)?;
    let listing = match std::fs::read_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other.map_err(|source| DestroyError::Io { path: dir.clone(), source })?,
    };
    let mut names = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|source| DestroyError::Io { path: dir.clone(), source })?;
        // `.<workspace>.partial-…` are unfinished archives; the workspace is counted by its
        // finished one or by the caller's list.
        if let Some(name) = entry.file_name().to_str().filter(|n| !n.starts_with('.')) {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The permit's areas: `extracts/<permit>`, `archive/<permit>`, `egress/<permit>`, and for
/// each workspace `quarantine/ws-<workspace>` and `imports/<workspace>`. All names are
/// validated first, so a bad one cannot leave a destruction half done.
fn permit_areas(
    store: &DataStore,
    permit: &str,
    workspaces: &[String],
) -> Result<Vec<(String, PathBuf)>, DestroyError> {
    let mut areas: Vec<(String, PathBuf)> = vec![
        (format!("extracts/{permit}"), store.permit_extracts(permit)?),
        (format!("archive/{permit}"), store.permit_archive(permit)?),
        (format!("egress/{permit}"), store.permit_egress(permit)?),
    ];
    let workspaces: BTreeSet<&str> = workspaces.iter().map(String::as_str).collect();
    for workspace in workspaces {
        let namespace = format!("{}{workspace}", crate::names::WORKSPACE_NAMESPACE_PREFIX);
        areas.push((format!("quarantine/{namespace}"), store.namespace_quarantine(&namespace)?));
        areas.push((format!("imports/{workspace}"), store.imports(workspace)?));
    }
    Ok(areas)
}

/// Counts what each of the permit's areas holds, deleting nothing. Every area is reported,
/// with zeros when it held nothing or did not exist, so the report shows what was checked.
pub fn survey_permit_data(
    store: &DataStore,
    permit: &str,
    workspaces: &[String],
) -> Result<DestructionReport, DestroyError> {
    let archive = store.permit_archive(permit)?;
    let mut archives_sealed = true;
    for entry in tree::walk(&archive)? {
        if let EntryKind::File { .. } = entry.kind {
            let path = archive.join(&entry.rel);
            archives_sealed &=
                crate::sealed::is_sealed(&path).map_err(|source| DestroyError::Io { path, source })?;
        }
    }
    let mut areas = Vec::new();
    for (name, path) in permit_areas(store, permit, workspaces)? {
        let (files, bytes) = tree::count(&path)?;
        areas.push(DestroyedArea { path: name, files, bytes });
    }
    Ok(DestructionReport { areas, archives_sealed })
}

/// Deletes every one of the permit's areas. Idempotent: run again after a crash, it deletes
/// what is left; the record of what was there is the survey taken before.
pub fn destroy_permit_data(
    store: &DataStore,
    permit: &str,
    workspaces: &[String],
) -> Result<(), DestroyError> {
    for (_, path) in permit_areas(store, permit, workspaces)? {
        tree::remove_all(&path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    use super::*;

    fn write(path: &Path, bytes: &[u8]) {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, bytes).expect("write");
    }

    fn area(path: &str, files: u64, bytes: u64) -> DestroyedArea {
        DestroyedArea { path: path.into(), files, bytes }
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn every_area_of_the_permit_is_surveyed_then_destroyed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::new(dir.path());
        write(&store.extract("p1", "visits").expect("path").join("data.csv"), b"0123456789");
        write(&store.archive("p1", "ws1").expect("path").join("MANIFEST.sealed"), b"HAVNSEAL-abc");
        write(&store.archive("p1", "gone").expect("path").join("blobs/0.sealed"), b"HAVNSEAL-xy");
        write(&store.quarantine("ws-ws1", "r1").expect("path").join("t.csv"), b"12345");
        write(&store.quarantine("ws-gone", "r1").expect("path").join("t.csv"), b"123");
        write(&store.imports("gone").expect("path").join("in.csv"), b"1234");
        write(&store.extract("p2", "visits").expect("path").join("data.csv"), b"other permit");
        write(&store.quarantine("ws-other", "r1").expect("path").join("t.csv"), b"other");

        // `gone` was deleted long ago: only its archive says it was the permit's.
        assert_eq!(archived_workspaces(&store, "p1").expect("list"), names(&["gone", "ws1"]));
        let workspaces = names(&["ws1", "gone", "ws2", "ws1"]);
        let survey = survey_permit_data(&store, "p1", &workspaces).expect("survey");
        assert_eq!(
            survey.areas,
            vec![
                area("extracts/p1", 1, 10),
                area("archive/p1", 2, 23),
                area("egress/p1", 0, 0),
                area("quarantine/ws-gone", 1, 3),
                area("imports/gone", 1, 4),
                area("quarantine/ws-ws1", 1, 5),
                area("imports/ws1", 0, 0),
                area("quarantine/ws-ws2", 0, 0),
                area("imports/ws2", 0, 0),
            ]
        );
        assert!(survey.archives_sealed);
        assert_eq!((survey.files(), survey.bytes()), (6, 45));
        assert!(store.permit_extracts("p1").expect("path").exists(), "a survey deletes nothing");

        destroy_permit_data(&store, "p1", &workspaces).expect("destroy");
        let after = survey_permit_data(&store, "p1", &workspaces).expect("survey");
        assert_eq!((after.files(), after.bytes()), (0, 0), "every area is empty: {after:?}");
        assert!(!store.imports("gone").expect("path").exists());
        assert!(store.extract("p2", "visits").expect("path").join("data.csv").exists(), "other permits kept");
        assert!(store.quarantine("ws-other", "r1").expect("path").exists(), "other workspaces kept");
        destroy_permit_data(&store, "p1", &workspaces).expect("again, after a crash: idempotent");
    }

    #[test]
    fn an_archive_with_any_plaintext_file_is_not_called_sealed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::new(dir.path());
        write(&store.archive("p1", "ws1").expect("path").join("MANIFEST.sealed"), b"HAVNSEAL-abc");
        assert!(survey_permit_data(&store, "p1", &[]).expect("survey").archives_sealed);
        write(&store.archive("p1", "ws1").expect("path").join("files/notes.txt"), b"plain");
        assert!(!survey_permit_data(&store, "p1", &[]).expect("survey").archives_sealed);
        write(&store.archive("p1", "ws1").expect("path").join("files/notes.txt"), b"HAVN");
        assert!(!survey_permit_data(&store, "p1", &[]).expect("survey").archives_sealed, "too short");
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
        let survey = survey_permit_data(&store, "p1", &[]).expect("survey");
        assert_eq!(survey.areas[0], area("extracts/p1", 0, 0));
        destroy_permit_data(&store, "p1", &[]).expect("destroy");
        assert!(precious.exists());
        assert!(!extract.exists());
    }

    #[test]
    fn a_bad_workspace_name_deletes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::new(dir.path());
        let data = store.extract("p1", "visits").expect("path").join("data.csv");
        write(&data, b"x");
        let err = destroy_permit_data(&store, "p1", &names(&["../raw"])).expect_err("bad name");
        assert!(matches!(err, DestroyError::Store(StoreError::InvalidName { .. })), "{err:?}");
        assert!(data.exists());
    }
}
