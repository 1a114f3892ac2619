//! Site: a peer Haven in a multi-country SPE, and the part of a DataPermit that joins a
//! multi-site permit. Each site runs its own Haven under its own data access body; data sites
//! only ever connect out, to the requesting site, over mutual TLS.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema;

/// A peer site of a multi-site permit. At a requesting site, one per data site that may pull
/// work (no endpoint: nothing is dialled). At a data site, one for each requesting site it pulls
/// from (with its endpoint and the credential this site presents there).
// Each printcolumn(...) repeats `type_ = ...`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "haven.io",
    version = "v1alpha1",
    kind = "Site",
    plural = "sites",
    shortname = "site",
    category = "haven",
    status = "SiteStatus",
    doc = "A peer Haven site of a multi-site permit: its federation endpoint, its CA and the credential used with it.",
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".spec.endpoint"),
    printcolumn(name = "Connected", type_ = "string", json_path = ".status.conditions[?(@.type==\"Connected\")].status"),
    printcolumn(name = "Last Contact", type_ = "date", json_path = ".status.lastContact"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')")
        .message("metadata.name must be a DNS label: it is the site's name in every multi-site permit and in its certificate's common name")
)]
#[x_kube(validation = Rule::new("!has(self.endpoint) || has(self.credentialSecret)")
    .message("spec.credentialSecret is required with spec.endpoint: this site proves who it is to that peer with it (mutual TLS)")
    .field_path(".credentialSecret"))]
#[serde(rename_all = "camelCase")]
pub struct SiteSpec {
    /// The peer's federation endpoint (`https://host:port`) when this site pulls work from it;
    /// absent for a data site that pulls from us.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 9, max = 512), regex(pattern = r"^https://[^\s/?#]+$"))]
    pub endpoint: Option<String>,

    /// PEM certificates of the CA that issues the peer's certificates: its server certificate
    /// (when we dial it) or its client certificate (when it dials us), whose common name must be
    /// this Site's name.
    #[schemars(length(min = 1, max = 65536))]
    #[x_kube(validation = Rule::new("self.contains('-----BEGIN CERTIFICATE-----')")
        .message("spec.caBundle must hold PEM certificates (-----BEGIN CERTIFICATE-----)"))]
    pub ca_bundle: String,

    /// The Secret (`tls.crt`, `tls.key`) in the federation's namespace with this site's own
    /// client certificate for the peer; required with `endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$"))]
    pub credential_secret: Option<String>,
}

/// Observed state of a Site.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteStatus {
    /// `Connected`: the last exchange with the peer worked (or why it did not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::conditions")]
    pub conditions: Vec<Condition>,
    /// When this site's agent last saw the peer answer, as of the last change of `Connected`
    /// (written on changes only, so an idle federation writes nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_contact: Option<DateTime<Utc>>,
}

/// A DataPermit's part in a multi-site permit: every participating site's data access body
/// issues its own permit with the same `id`, for its own data; each can suspend or revoke it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MultiSitePermit {
    /// The multi-site permit's identifier, the same at every site (e.g. "EHDS-MS-2026-0007").
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9][-A-Za-z0-9_.]*$"))]
    pub id: String,
    /// The site whose researchers submit the analyses (a Site name, or this site's own name).
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub requesting_site: String,
    /// The data sites the analyses go to, by Site name (the requesting site too when it holds
    /// data of its own).
    #[schemars(
        length(min = 1, max = 32),
        inner(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))
    )]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub sites: Vec<String>,
    /// At a data site: the most tasks of this permit it holds at once (default 100).
    #[serde(default = "default_max_tasks")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_tasks: u32,
}

fn default_max_tasks() -> u32 {
    100
}
