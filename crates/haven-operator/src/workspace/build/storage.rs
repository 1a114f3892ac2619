use std::{collections::BTreeMap, path::Path};

use haven_api::constants::labels;
use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, NFSVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{cluster_meta, namespaced_meta};
use crate::{
    config::{OperatorConfig, VolumeBackend},
    workspace::plan::WorkspacePlan,
};

/// Nominal size of a read-only dataset claim; the extract's real size is whatever it is.
pub const DATASET_CLAIM_SIZE: &str = "1Gi";
/// The claim holding `/home` (and the outbox `/home/outputs`).
pub const HOME_CLAIM: &str = "home";
/// The claim holding imported files, mounted read-only over `/home/imports`.
pub const IMPORTS_CLAIM: &str = "imports";
/// Nominal size of the imports claim; imports are limited by the airlock, not by this.
pub const IMPORTS_CLAIM_SIZE: &str = "1Gi";

/// The claim name of a dataset's read-only extract.
pub fn dataset_claim(dataset: &str) -> String {
    format!("data-{dataset}")
}

/// One PersistentVolume per data-store path the workspace mounts: its home (read-write), its
/// approved imports and each dataset extract (read-only). Pre-bound to their claims, `Retain`ed (Kubernetes never
/// deletes data-store files; the operator archives and destroys them), and with no storage
/// class, so nothing else can bind them.
pub fn build_volumes(plan: &WorkspacePlan, config: &OperatorConfig) -> Vec<PersistentVolume> {
    let home = volume(
        plan,
        config,
        HOME_CLAIM,
        &format!("workspaces/{}/home", plan.name),
        &plan.home_storage,
        "ReadWriteOnce",
    );
    let imports = volume(
        plan,
        config,
        IMPORTS_CLAIM,
        &format!("workspaces/{}/imports", plan.name),
        &Quantity(IMPORTS_CLAIM_SIZE.into()),
        "ReadOnlyMany",
    );
    let datasets = plan.datasets.iter().map(|dataset| {
        volume(
            plan,
            config,
            &dataset_claim(dataset),
            &format!("extracts/{}/{dataset}", plan.permit),
            &Quantity(DATASET_CLAIM_SIZE.into()),
            "ReadOnlyMany",
        )
    });
    [home, imports].into_iter().chain(datasets).collect()
}

/// Cluster-unique PV name for a workspace's claim.
pub fn volume_name(plan: &WorkspacePlan, claim: &str) -> String {
    format!("haven-{}-{claim}", plan.name)
}

fn volume(
    plan: &WorkspacePlan,
    config: &OperatorConfig,
    claim: &str,
    store_path: &str,
    capacity: &Quantity,
    access_mode: &str,
) -> PersistentVolume {
    let read_only = access_mode == "ReadOnlyMany";
    let mut spec = PersistentVolumeSpec {
        capacity: Some(BTreeMap::from([("storage".to_owned(), capacity.clone())])),
        access_modes: Some(vec![access_mode.to_owned()]),
        persistent_volume_reclaim_policy: Some("Retain".into()),
        storage_class_name: Some(String::new()),
        claim_ref: Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("PersistentVolumeClaim".into()),
            namespace: Some(plan.namespace.clone()),
            name: Some(claim.to_owned()),
            ..ObjectReference::default()
        }),
        ..PersistentVolumeSpec::default()
    };
    match &config.volume_backend {
        VolumeBackend::HostPath { root } => {
            spec.host_path = Some(HostPathVolumeSource {
                path: path_string(&root.join(store_path)),
                type_: Some(if read_only { "Directory" } else { "DirectoryOrCreate" }.into()),
            });
        }
        VolumeBackend::Nfs { server, export } => {
            spec.nfs = Some(NFSVolumeSource {
                server: server.clone(),
                path: path_string(&export.join(store_path)),
                read_only: Some(read_only),
            });
        }
    }
    let mut metadata = cluster_meta(plan, &volume_name(plan, claim), "storage");
    if let Some(dataset) = claim.strip_prefix("data-") {
        metadata.labels.get_or_insert_default().insert(labels::DATASET.into(), dataset.into());
    }
    PersistentVolume { metadata, spec: Some(spec), status: None }
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The claims, each pre-bound to its volume by name.
pub fn build_claims(plan: &WorkspacePlan) -> Vec<PersistentVolumeClaim> {
    let claim = |name: &str, size: &Quantity, access_mode: &str| PersistentVolumeClaim {
        metadata: namespaced_meta(plan, name, "storage"),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec![access_mode.to_owned()]),
            storage_class_name: Some(String::new()),
            volume_name: Some(volume_name(plan, name)),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_owned(), size.clone())])),
                limits: None,
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    };
    let dataset_size = Quantity(DATASET_CLAIM_SIZE.into());
    let imports = claim(IMPORTS_CLAIM, &Quantity(IMPORTS_CLAIM_SIZE.into()), "ReadOnlyMany");
    [claim(HOME_CLAIM, &plan.home_storage, "ReadWriteOnce"), imports]
        .into_iter()
        .chain(plan.datasets.iter().map(|d| claim(&dataset_claim(d), &dataset_size, "ReadOnlyMany")))
        .collect()
}
