//! How the operator is deployed: where the data store is, how pods reach it, and which
//! namespaces hold the cluster DNS and the access gateway.

use std::path::PathBuf;
use std::time::Duration;

use haven_api::tier::TierProfiles;
use haven_data::airlock::Scanner;

/// How long a finished airlock request's snapshot is kept by default: 30 days.
pub const DEFAULT_AIRLOCK_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Operator settings, from `haven run` flags (the Helm chart sets them).
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// The data store as the operator sees it (it reads and writes files here).
    pub data_root: PathBuf,
    /// How workspace pods mount the data store.
    pub volume_backend: VolumeBackend,
    /// Namespace of the cluster DNS, the only egress every workspace has.
    pub dns_namespace: String,
    /// Namespace of the access gateway, the only source of ingress to the IDE.
    pub gateway_namespace: String,
    /// The gateway's TES API port, the one more egress the workspaces of multi-site permits get
    /// (to the gateway namespace); none: no TES API to reach.
    pub gateway_tes_port: Option<i32>,
    /// The ClusterRole letting the gateway write tasks for people (`submit-for`), bound to its
    /// ServiceAccount in each multi-site workspace's namespace and nowhere else; none: unbound.
    pub gateway_tes_role: Option<String>,
    /// The gateway's ServiceAccount, in `gateway_namespace`.
    pub gateway_service_account: String,
    /// Namespace the operator runs in; pseudonymisation keys live here.
    pub operator_namespace: String,
    /// The IDE port of the analysis environment.
    pub ide_port: i32,
    /// How long a finished airlock request's quarantine snapshot is kept before deletion.
    pub airlock_retention: Duration,
    /// A command every airlock file is scanned with (e.g. ClamAV); none by default.
    pub airlock_scanner: Option<Scanner>,
    /// The ConfigMap in the operator's namespace that holds the tier profiles; none: defaults.
    pub tier_config_map: Option<String>,
    /// The controls of each sensitivity tier: from `tier_config_map` when it exists (read at
    /// start-up), else Haven's defaults.
    pub tiers: TierProfiles,
    /// The group owning the data store's root (read at start-up). Workspace directories are
    /// this group's (setgid) and the environment joins it, so researcher and operator share
    /// the files; none when it is root's group.
    pub data_store_group: Option<i64>,
}

/// Where a PersistentVolume for a data-store path points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeBackend {
    /// A directory on every node (development and tests): `<root>/<path>`.
    HostPath { root: PathBuf },
    /// An NFS export holding the data store: `server:<export>/<path>`.
    Nfs { server: String, export: PathBuf },
}

impl OperatorConfig {
    /// Settings for a data store at `data_root`, mounted by hostPath at the same path.
    pub fn for_local_data_root(data_root: PathBuf) -> Self {
        Self {
            volume_backend: VolumeBackend::HostPath { root: data_root.clone() },
            data_root,
            dns_namespace: "kube-system".into(),
            gateway_namespace: "haven-gateway".into(),
            gateway_tes_port: None,
            gateway_tes_role: None,
            gateway_service_account: "haven-gateway".into(),
            operator_namespace: "haven-system".into(),
            ide_port: 8888,
            airlock_retention: DEFAULT_AIRLOCK_RETENTION,
            airlock_scanner: None,
            tier_config_map: None,
            tiers: TierProfiles::default(),
            data_store_group: None,
        }
    }
}
