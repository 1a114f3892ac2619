//! What travels between sites, as JSON over mutual TLS. Data sites only ever call the
//! requesting site: they pull offers and push back reports and approved packages.

use chrono::{DateTime, Utc};
use haven_api::task::{Executor, SiteTaskState, TaskInput, TaskResources};
use haven_data::airlock::Package;
use serde::{Deserialize, Serialize};

/// `GET`: the tasks offered to the calling site.
pub const OFFERS_PATH: &str = "/federation/v1/offers";

/// `POST` a [`Report`] on task `uid`.
pub fn report_path(uid: &str) -> String {
    format!("/federation/v1/tasks/{uid}/report")
}

/// `PUT` a [`PackageUpload`] for task `uid`.
pub fn package_path(uid: &str) -> String {
    format!("/federation/v1/tasks/{uid}/package")
}

/// The requesting site's answer to a pull.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Offers {
    /// The requesting site's own name.
    pub requesting_site: String,
    /// Every task for the caller that has not ended there.
    pub tasks: Vec<Offer>,
    /// Tasks the caller has finished (its state there is final): what it may clean up. A task
    /// merely missing from `tasks` is never cleaned up on that ground alone.
    #[serde(default)]
    pub closed: Vec<String>,
}

/// One task, as a data site sees it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    /// The task's uid at the requesting site: the key of everything done for it.
    pub uid: String,
    /// `<namespace>/<name>` at the requesting site, for the record.
    pub task: String,
    /// The multi-site permit's id.
    pub multi_site_permit: String,
    /// Who submitted it (bound at admission at the requesting site).
    pub requested_by: String,
    pub description: String,
    pub executors: Vec<Executor>,
    pub inputs: Vec<TaskInput>,
    pub resources: TaskResources,
    /// Set when the task must stop everywhere, with why (cancelled, permit expired or revoked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<String>,
}

/// Where a task stands at the reporting site.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub state: SiteTaskState,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
    /// When the site saw it so.
    pub at: DateTime<Utc>,
    /// The release manifest's SHA-256, once approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
}

/// An approved package, exactly as the data site's airlock delivered it.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct PackageUpload {
    pub manifest_sha256: String,
    pub package: Package,
}
