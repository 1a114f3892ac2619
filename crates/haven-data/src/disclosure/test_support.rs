//! Helpers for the disclosure tests: files in a temporary directory, checks by name.

use std::path::PathBuf;

use tempfile::TempDir;

use super::{Check, CheckPolicy, Outcome, check_file};

/// A file named `name` holding `bytes`, in a directory that lives as long as the value.
pub(crate) struct TestFile {
    _dir: TempDir,
    pub path: PathBuf,
    pub name: String,
}

impl TestFile {
    pub(crate) fn new(name: &str, bytes: impl AsRef<[u8]>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(name.replace('/', "_"));
        std::fs::write(&path, bytes).expect("write test file");
        Self { _dir: dir, path, name: name.to_owned() }
    }

    pub(crate) fn check(&self, policy: &CheckPolicy) -> Vec<Check> {
        check_file(&self.path, &self.name, policy).expect("check_file")
    }
}

/// The checks on a file named `name` holding `bytes`, with the default policy.
pub(crate) fn checks_of(name: &str, bytes: impl AsRef<[u8]>) -> Vec<Check> {
    TestFile::new(name, bytes).check(&CheckPolicy::default())
}

/// The checks on a CSV with the given policy.
pub(crate) fn csv_checks(text: &str, policy: &CheckPolicy) -> Vec<Check> {
    TestFile::new("table.csv", text).check(policy)
}

/// The one check named `name`; panics, listing what ran, if there is none.
pub(crate) fn find<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|check| check.check == name)
        .unwrap_or_else(|| panic!("no {name} check in {checks:#?}"))
}

pub(crate) fn outcome(checks: &[Check], name: &str) -> Outcome {
    find(checks, name).outcome
}

pub(crate) fn names(checks: &[Check]) -> Vec<&str> {
    checks.iter().map(|check| check.check.as_str()).collect()
}

/// A policy with the given thresholds tweak.
pub(crate) fn policy(tweak: impl FnOnce(&mut CheckPolicy)) -> CheckPolicy {
    let mut policy = CheckPolicy::default();
    tweak(&mut policy);
    policy
}
