use std::collections::BTreeMap;

use haven_api::constants::labels;
use k8s_openapi::api::{
    apps::v1::{StatefulSet, StatefulSetSpec},
    core::v1::{
        Capabilities, Container, ContainerPort, EmptyDirVolumeSource, PersistentVolumeClaimVolumeSource,
        PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
        SecurityContext, Service, ServicePort, ServiceSpec, TCPSocketAction, Toleration, Volume, VolumeMount,
    },
};
use k8s_openapi::apimachinery::pkg::{
    api::resource::Quantity,
    apis::meta::v1::{LabelSelector, ObjectMeta},
    util::intstr::IntOrString,
};

use super::{
    namespaced_meta,
    storage::{HOME_CLAIM, IMPORTS_CLAIM, dataset_claim},
    workspace_labels,
};
use crate::{config::OperatorConfig, workspace::plan::WorkspacePlan};

/// Name of the StatefulSet and Service of the analysis environment.
pub use haven_api::constants::ENVIRONMENT_NAME;
/// The non-root user the environment runs as (Jupyter's `jovyan` uid/gid).
const RUN_AS_USER: i64 = 1000;
const RUN_AS_GROUP: i64 = 100;

/// Selects the environment's pod.
pub fn environment_selector(plan: &WorkspacePlan) -> LabelSelector {
    LabelSelector { match_labels: Some(pod_labels(plan)), ..LabelSelector::default() }
}

fn pod_labels(plan: &WorkspacePlan) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "haven-workspace".to_owned()),
        (haven_api::constants::labels::WORKSPACE.to_owned(), plan.name.clone()),
    ])
}

/// The analysis environment: one replica (zero when paused) running the permitted image under
/// Pod Security `restricted`, with no service-account token, the datasets read-only at
/// `/data/<name>`, home at `/home`, the airlock outbox at `/outputs` (also `/home/outputs`)
/// and approved imports read-only at `/home/imports`.
pub fn build_stateful_set(plan: &WorkspacePlan, config: &OperatorConfig) -> StatefulSet {
    let mut volumes = vec![
        claim_volume(HOME_CLAIM, HOME_CLAIM, false),
        claim_volume(IMPORTS_CLAIM, IMPORTS_CLAIM, true),
        Volume { name: "tmp".into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Volume::default() },
    ];
    let mut mounts = vec![
        mount(HOME_CLAIM, "/home", None, false),
        mount(HOME_CLAIM, "/outputs", Some("outputs"), false),
        mount(IMPORTS_CLAIM, "/home/imports", None, true),
        mount("tmp", "/tmp", None, false),
    ];
    for dataset in &plan.datasets {
        let claim = dataset_claim(dataset);
        volumes.push(claim_volume(&claim, &claim, true));
        mounts.push(mount(&claim, &format!("/data/{dataset}"), None, true));
    }
    let resources = compute_resources(plan);
    let container = Container {
        name: "environment".into(),
        image: Some(plan.image.clone()),
        ports: Some(vec![ContainerPort {
            name: Some("ide".into()),
            container_port: config.ide_port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        env: None,
        resources: Some(ResourceRequirements {
            requests: Some(resources.clone()),
            limits: Some(resources),
            ..ResourceRequirements::default()
        }),
        // Ready when the IDE accepts connections: the workspace is Ready only then.
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction { port: IntOrString::String("ide".into()), host: None }),
            period_seconds: Some(2),
            ..Probe::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), add: None }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    let pod = PodSpec {
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS_USER),
            run_as_group: Some(RUN_AS_GROUP),
            fs_group: Some(RUN_AS_GROUP),
            // hostPath and NFS volumes ignore fsGroup: the data store's group opens home,
            // outbox, imports and datasets to the environment (and its files to the operator).
            supplemental_groups: config.data_store_group.map(|gid| vec![gid]),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), localhost_profile: None }),
            ..PodSecurityContext::default()
        }),
        containers: vec![container],
        volumes: Some(volumes),
        node_selector: plan
            .dedicated_nodes
            .then(|| BTreeMap::from([(labels::DEDICATED_NODE.to_owned(), plan.permit.clone())])),
        tolerations: plan.dedicated_nodes.then(|| vec![dedicated_node_toleration(&plan.permit)]),
        ..PodSpec::default()
    };
    let mut template_labels = workspace_labels(plan, "environment");
    template_labels.extend(pod_labels(plan));
    StatefulSet {
        metadata: namespaced_meta(plan, ENVIRONMENT_NAME, "environment"),
        spec: Some(StatefulSetSpec {
            replicas: Some(if plan.paused { 0 } else { 1 }),
            service_name: Some(ENVIRONMENT_NAME.into()),
            selector: environment_selector(plan),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(template_labels), ..ObjectMeta::default() }),
                spec: Some(pod),
            },
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

/// Tolerates the taint `node-restriction.kubernetes.io/haven-permit=<permit>:NoSchedule` that
/// keeps every other permit's pods off the nodes set aside for this one.
fn dedicated_node_toleration(permit: &str) -> Toleration {
    Toleration {
        key: Some(labels::DEDICATED_NODE.into()),
        operator: Some("Equal".into()),
        value: Some(permit.into()),
        effect: Some("NoSchedule".into()),
        ..Toleration::default()
    }
}

fn compute_resources(plan: &WorkspacePlan) -> BTreeMap<String, Quantity> {
    let mut resources = BTreeMap::from([
        ("cpu".to_owned(), plan.resources.cpu.clone()),
        ("memory".to_owned(), plan.resources.memory.clone()),
    ]);
    if plan.resources.gpu > 0 {
        resources.insert("nvidia.com/gpu".into(), Quantity(plan.resources.gpu.to_string()));
    }
    resources
}

fn claim_volume(name: &str, claim: &str, read_only: bool) -> Volume {
    Volume {
        name: name.into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim.into(),
            read_only: Some(read_only),
        }),
        ..Volume::default()
    }
}

fn mount(volume: &str, path: &str, sub_path: Option<&str>, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.into(),
        mount_path: path.into(),
        sub_path: sub_path.map(str::to_owned),
        read_only: Some(read_only),
        ..VolumeMount::default()
    }
}

/// The IDE's in-cluster address, reached only from the gateway namespace.
/// Carries the tier's rules for the access gateway (e.g. clipboard) as annotations.
pub fn build_service(plan: &WorkspacePlan, config: &OperatorConfig) -> Service {
    let mut metadata = namespaced_meta(plan, ENVIRONMENT_NAME, "environment");
    metadata.annotations = (!plan.gateway_annotations.is_empty()).then(|| plan.gateway_annotations.clone());
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(pod_labels(plan)),
            ports: Some(vec![ServicePort {
                name: Some("ide".into()),
                port: config.ide_port,
                target_port: Some(IntOrString::String("ide".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}
