//! Haven's API: the DataPermit, Workspace, AirlockRequest, Site and AnalysisTask custom resources
//! (`haven.io/v1alpha1`), the names shared across the project, and pure validation helpers.
//! No client I/O lives here.
#![forbid(unsafe_code)]

pub mod admission;
pub mod airlock;
pub mod constants;
pub mod crd;
mod dataset;
pub mod mirror;
pub mod permit;
mod policy;
pub mod quantity;
pub mod schema;
pub mod site;
pub mod task;
pub mod tier;
pub mod validation;
pub mod workspace;

pub use airlock::{AirlockRequest, AirlockRequestSpec, AirlockRequestStatus};
pub use permit::{DataPermit, DataPermitSpec, DataPermitStatus};
pub use site::{Site, SiteSpec, SiteStatus};
pub use task::{AnalysisTask, AnalysisTaskSpec, AnalysisTaskStatus};
pub use workspace::{Workspace, WorkspaceSpec, WorkspaceStatus};
