//! Haven's data store: the directory tree the operator owns on a shared filesystem, and the
//! file work done on it — preparing pseudonymised dataset extracts, archiving a workspace
//! before teardown, destroying a permit's data after retention, and the append-only,
//! hash-chained audit log.
//!
//! Plain Rust with no kube dependency, so the heavy file work can be tested with a temporary
//! directory and run on a blocking pool off the operator's async runtime.
#![forbid(unsafe_code)]

pub mod airlock;
pub mod archive;
pub mod audit;
pub mod destroy;
pub mod disclosure;
mod hashing;
mod line_limit;
pub mod manifest;
pub mod names;
pub mod prepare;
pub mod sealed;
pub mod store;
mod tree;

pub use archive::{
    ArchiveError, ArchiveRecord, archive_workspace, open_archive, remove_workspace_files, verify_archive,
};
pub use audit::{AuditError, AuditLog, AuditRecord, VerifyReport};
pub use destroy::{
    DestroyError, DestroyedArea, DestructionReport, archived_workspaces, destroy_permit_data,
    survey_permit_data,
};
pub use sealed::{SealError, SealKey};
pub use store::{DataStore, StoreError};
