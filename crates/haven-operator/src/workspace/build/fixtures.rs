//! Chainable test constructors: `WorkspacePlan::test().with_datasets(&["a"]).paused()`.

use std::collections::BTreeMap;

use std::path::PathBuf;

use haven_api::permit::{EgressProfile, PackageMirror};
use haven_api::workspace::WorkspaceResources;
use k8s_openapi::apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::OwnerReference};

use crate::{config::OperatorConfig, workspace::plan::WorkspacePlan};

impl WorkspacePlan {
    pub fn test() -> Self {
        Self {
            name: "study".into(),
            namespace: "ws-study".into(),
            permit: "permit-1".into(),
            owner: OwnerReference {
                api_version: "haven.io/v1alpha1".into(),
                kind: "Workspace".into(),
                name: "study".into(),
                uid: "uid-1".into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            },
            users: vec!["alice@example.org".into()],
            reviewers: vec!["carol@example.org".into()],
            image: "quay.io/jupyter/minimal-notebook:2026-01-05".into(),
            resources: WorkspaceResources::default(),
            home_storage: Quantity("10Gi".into()),
            datasets: vec!["survey".into()],
            egress: EgressProfile::None,
            package_mirror: None,
            paused: false,
            idle: false,
            dedicated_nodes: false,
            multi_site: false,
            gateway_annotations: BTreeMap::new(),
        }
    }

    pub fn with_datasets(mut self, datasets: &[&str]) -> Self {
        self.datasets = datasets.iter().map(|d| (*d).to_owned()).collect();
        self
    }

    pub fn with_mirror(mut self, cidr: &str) -> Self {
        self.egress = EgressProfile::PackageMirror;
        self.package_mirror = Some(PackageMirror { cidr: cidr.into(), ports: vec![443] });
        self
    }

    pub fn with_gpus(mut self, gpus: u32) -> Self {
        self.resources.gpu = gpus;
        self
    }

    pub fn paused(mut self) -> Self {
        self.paused = true;
        self
    }
}

pub fn test_config() -> OperatorConfig {
    OperatorConfig::for_local_data_root(PathBuf::from("/srv/haven"))
}
