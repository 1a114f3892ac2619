use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, ResourceQuota, ResourceQuotaSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::namespaced_meta;
use crate::workspace::plan::WorkspacePlan;

/// Caps the namespace at what the workspace asked for: one environment pod, its claims and
/// nothing that could be used to run more (no LoadBalancers or NodePorts). Storage needs no
/// byte quota: every claim is pre-bound by the operator and users cannot create claims.
pub fn build_resource_quota(plan: &WorkspacePlan) -> ResourceQuota {
    let resources = &plan.resources;
    let claims = 2 + plan.datasets.len(); // home, imports and one per dataset
    let mut hard: BTreeMap<String, Quantity> = BTreeMap::from([
        ("requests.cpu".into(), resources.cpu.clone()),
        ("limits.cpu".into(), resources.cpu.clone()),
        ("requests.memory".into(), resources.memory.clone()),
        ("limits.memory".into(), resources.memory.clone()),
        ("pods".into(), Quantity("1".into())),
        ("persistentvolumeclaims".into(), Quantity(claims.to_string())),
        ("services.loadbalancers".into(), Quantity("0".into())),
        ("services.nodeports".into(), Quantity("0".into())),
    ]);
    if resources.gpu > 0 {
        hard.insert("requests.nvidia.com/gpu".into(), Quantity(resources.gpu.to_string()));
    }
    ResourceQuota {
        metadata: namespaced_meta(plan, "workspace", "quota"),
        spec: Some(ResourceQuotaSpec { hard: Some(hard), ..ResourceQuotaSpec::default() }),
        status: None,
    }
}

/// Every container defaults to, and may not exceed, the workspace's resources.
pub fn build_limit_range(plan: &WorkspacePlan) -> LimitRange {
    let limits = BTreeMap::from([
        ("cpu".to_owned(), plan.resources.cpu.clone()),
        ("memory".to_owned(), plan.resources.memory.clone()),
    ]);
    LimitRange {
        metadata: namespaced_meta(plan, "workspace", "quota"),
        spec: Some(LimitRangeSpec {
            limits: vec![LimitRangeItem {
                type_: "Container".into(),
                default: Some(limits.clone()),
                default_request: Some(limits.clone()),
                max: Some(limits),
                ..LimitRangeItem::default()
            }],
        }),
    }
}
