//! The data store layout (DESIGN §5). Every path is derived from validated names, never from
//! raw user input, so no request can name a path outside its own area.
//!
//! ```text
//! raw/<source>                        custodian's source data
//! extracts/<permit>/<dataset>/        pseudonymised extract
//! workspaces/<workspace>/home/        researcher's files; home/outputs/ is the outbox
//! workspaces/<workspace>/imports/     approved imports, read-only in the workspace
//! quarantine/<namespace>/<request>/   snapshot of files under review
//! egress/<permit>/<namespace>/<request>/  approved exports (by namespace: one permit, many workspaces)
//! imports/<workspace>/                ingress drop zone
//! archive/<permit>/<workspace>/       workspace files kept after teardown
//! audit/                              hash-chained audit log
//! ```

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::names::{NameError, PathError, check_name, check_relative_path};

/// Mode of directories the store creates for a workspace: the data store's group may write
/// (the environment joins it), others get nothing; setgid, so the researcher's files stay in
/// that group and the operator can read them for the airlock and the archive.
const WORKSPACE_DIR_MODE: u32 = 0o2770;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("invalid {argument} name {value:?}: {reason}")]
    InvalidName { argument: &'static str, value: String, reason: NameError },
    #[error("invalid raw source path {value:?}: {reason}")]
    InvalidPath { value: String, reason: PathError },
    #[error("cannot create {path}: {source}", path = path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// The root of the data store; hands out paths for validated names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataStore {
    root: PathBuf,
}

/// Checks that `value` is a DNS-1123 label, naming `argument` in the error.
pub(crate) fn name<'a>(argument: &'static str, value: &'a str) -> Result<&'a str, StoreError> {
    check_name(value).map(|()| value).map_err(|reason| StoreError::InvalidName {
        argument,
        value: value.to_owned(),
        reason,
    })
}

impl DataStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A custodian's source file or directory under `raw/`. `source` is a relative path; it
    /// may have several segments but can never leave `raw/`.
    pub fn raw(&self, source: &str) -> Result<PathBuf, StoreError> {
        let rel = check_relative_path(source)
            .map_err(|reason| StoreError::InvalidPath { value: source.to_owned(), reason })?;
        Ok(self.root.join("raw").join(rel))
    }

    /// `extracts/<permit>/`: every extract prepared for a permit.
    pub fn permit_extracts(&self, permit: &str) -> Result<PathBuf, StoreError> {
        Ok(self.root.join("extracts").join(name("permit", permit)?))
    }

    /// `extracts/<permit>/<dataset>/`.
    pub fn extract(&self, permit: &str, dataset: &str) -> Result<PathBuf, StoreError> {
        Ok(self.permit_extracts(permit)?.join(name("dataset", dataset)?))
    }

    /// `workspaces/<workspace>/`: everything a workspace owns, and what gets archived.
    pub fn workspace(&self, workspace: &str) -> Result<PathBuf, StoreError> {
        Ok(self.root.join("workspaces").join(name("workspace", workspace)?))
    }

    /// `workspaces/<workspace>/home/`.
    pub fn workspace_home(&self, workspace: &str) -> Result<PathBuf, StoreError> {
        Ok(self.workspace(workspace)?.join("home"))
    }

    /// `workspaces/<workspace>/home/outputs/`: the outbox airlock requests draw from.
    pub fn outbox(&self, workspace: &str) -> Result<PathBuf, StoreError> {
        Ok(self.workspace_home(workspace)?.join("outputs"))
    }

    /// `workspaces/<workspace>/imports/`: approved imports, mounted read-only at `/home/imports`.
    pub fn workspace_imports(&self, workspace: &str) -> Result<PathBuf, StoreError> {
        Ok(self.workspace(workspace)?.join("imports"))
    }

    /// `quarantine/<namespace>/`: every snapshot taken in one workspace namespace.
    pub fn namespace_quarantine(&self, namespace: &str) -> Result<PathBuf, StoreError> {
        Ok(self.root.join("quarantine").join(name("namespace", namespace)?))
    }

    /// `quarantine/<namespace>/<request>/`.
    pub fn quarantine(&self, namespace: &str, request: &str) -> Result<PathBuf, StoreError> {
        Ok(self.namespace_quarantine(namespace)?.join(name("request", request)?))
    }

    /// `egress/<permit>/`: every approved export under one permit.
    pub fn permit_egress(&self, permit: &str) -> Result<PathBuf, StoreError> {
        Ok(self.root.join("egress").join(name("permit", permit)?))
    }

    /// `egress/<permit>/<namespace>/<request>/`: request names are unique per namespace only,
    /// and one permit has many workspace namespaces.
    pub fn egress(&self, permit: &str, namespace: &str, request: &str) -> Result<PathBuf, StoreError> {
        Ok(self.permit_egress(permit)?.join(name("namespace", namespace)?).join(name("request", request)?))
    }

    /// `imports/<workspace>/`.
    pub fn imports(&self, workspace: &str) -> Result<PathBuf, StoreError> {
        Ok(self.root.join("imports").join(name("workspace", workspace)?))
    }

    /// `archive/<permit>/`: every workspace archive kept for a permit.
    pub fn permit_archive(&self, permit: &str) -> Result<PathBuf, StoreError> {
        Ok(self.root.join("archive").join(name("permit", permit)?))
    }

    /// `archive/<permit>/<workspace>/`.
    pub fn archive(&self, permit: &str, workspace: &str) -> Result<PathBuf, StoreError> {
        Ok(self.permit_archive(permit)?.join(name("workspace", workspace)?))
    }

    /// `audit/`.
    pub fn audit_dir(&self) -> PathBuf {
        self.root.join("audit")
    }

    /// `audit/audit.log`.
    pub fn audit_log(&self) -> PathBuf {
        self.audit_dir().join("audit.log")
    }

    /// `audit/access.log`: the access gateway's chained log of logins, visits and refusals
    /// (its own writer, so a chain of its own).
    pub fn access_log(&self) -> PathBuf {
        self.audit_dir().join("access.log")
    }

    /// Creates `home/`, `home/outputs/` and `imports/` for a workspace with mode 0o2770
    /// whatever the umask; idempotent. Returns the home directory.
    pub fn ensure_workspace_home(&self, workspace: &str) -> Result<PathBuf, StoreError> {
        let home = self.workspace_home(workspace)?;
        for dir in [self.outbox(workspace)?, self.workspace_imports(workspace)?] {
            DirBuilder::new()
                .recursive(true)
                .mode(WORKSPACE_DIR_MODE)
                .create(&dir)
                .map_err(|source| StoreError::Io { path: dir.clone(), source })?;
        }
        for dir in [home.clone(), self.outbox(workspace)?, self.workspace_imports(workspace)?] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(WORKSPACE_DIR_MODE))
                .map_err(|source| StoreError::Io { path: dir, source })?;
        }
        Ok(home)
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
