//! What a data site creates for a task: a workspace of its own (paused: no environment runs,
//! but the namespace, default-deny policies, quota, Pod Security and the read-only extracts
//! are a workspace's), a Job made from that workspace's own pod template, and an export
//! request for the task's outputs. Pure builders.

use std::collections::BTreeMap;

use haven_api::{
    AirlockRequest, Workspace,
    airlock::{AirlockRequestSpec, Direction},
    constants::labels,
    workspace::{WorkspaceResources, WorkspaceSpec},
};
use k8s_openapi::{
    api::{
        batch::v1::{Job, JobSpec},
        core::v1::{Container, EnvVar, PodTemplateSpec},
    },
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta},
};
use sha2::{Digest, Sha256};

use crate::wire::Offer;

/// Label: the requesting site a task workspace works for.
pub const REQUESTING_SITE_LABEL: &str = "haven.io/requesting-site";
/// Label: the task's uid at the requesting site.
pub const TASK_UID_LABEL: &str = "haven.io/task-uid";
/// Annotation: the task's `<namespace>/<name>` at the requesting site.
pub const TASK_ANNOTATION: &str = "haven.io/task";
/// Annotation: the sha256 of the offer as judged ([`offer_digest`]); a later offer must match it.
pub const OFFER_DIGEST_ANNOTATION: &str = "haven.io/offer-sha256";
/// The Job's name and the export request's, in the task's namespace.
pub const JOB_NAME: &str = "task";
pub const OUTPUTS_REQUEST: &str = "outputs";

/// The task's workspace here: derived from the requesting site and the task's uid, so a
/// restarted agent finds it again and never makes a second.
pub fn task_workspace_name(hub: &str, uid: &str) -> String {
    let digest = Sha256::digest(format!("{hub}/{uid}"));
    format!("task-{}", &hex::encode(digest)[..16])
}

/// The sha256 of everything in `offer` but whether it is cancelled: what this site judged, and
/// what it runs (a requesting site cannot swap the image or the command after the judgement).
pub fn offer_digest(offer: &Offer) -> String {
    let judged = Offer { cancelled: None, ..offer.clone() };
    let bytes = serde_json::to_vec(&judged).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

/// The workspace a task runs in: its requester as its one user, the first executor's image,
/// the task's resources, paused (the Job is its only pod).
pub fn build_workspace(hub: &str, offer: &Offer, permit: &str) -> Workspace {
    let metadata = ObjectMeta {
        name: Some(task_workspace_name(hub, &offer.uid)),
        labels: Some(BTreeMap::from([
            (labels::MANAGED_BY.to_owned(), labels::MANAGED_BY_VALUE.to_owned()),
            (REQUESTING_SITE_LABEL.to_owned(), hub.to_owned()),
            (TASK_UID_LABEL.to_owned(), offer.uid.clone()),
        ])),
        annotations: Some(BTreeMap::from([
            (TASK_ANNOTATION.to_owned(), offer.task.clone()),
            (OFFER_DIGEST_ANNOTATION.to_owned(), offer_digest(offer)),
        ])),
        ..ObjectMeta::default()
    };
    let spec = WorkspaceSpec {
        permit: permit.into(),
        users: vec![offer.requested_by.clone()],
        image: offer.executors.first().map(|e| e.image.clone()).unwrap_or_default(),
        resources: WorkspaceResources {
            cpu: Quantity(offer.resources.cpu_cores.to_string()),
            memory: Quantity(format!("{}Gi", offer.resources.ram_gb)),
            gpu: 0,
        },
        home_storage: Quantity("1Gi".into()),
        datasets: None,
        expires_at: None,
        paused: true,
    };
    Workspace { metadata, spec, status: None }
}

/// The Job: the workspace's own pod (restricted security context, no token, extracts
/// read-only, home and outbox) with each executor as a container in turn, never restarted,
/// ended at the task's deadline.
pub fn build_job(template: &PodTemplateSpec, offer: &Offer, namespace: &str) -> Option<Job> {
    let mut pod = template.spec.clone()?;
    let base = pod.containers.first()?.clone();
    let mut steps: Vec<Container> = offer
        .executors
        .iter()
        .enumerate()
        .map(|(i, executor)| Container {
            name: format!("step-{i}"),
            image: Some(executor.image.clone()),
            command: Some(executor.command.clone()),
            env: (!executor.env.is_empty()).then(|| {
                executor
                    .env
                    .iter()
                    .map(|(name, value)| EnvVar {
                        name: name.clone(),
                        value: Some(value.clone()),
                        value_from: None,
                    })
                    .collect()
            }),
            working_dir: Some("/home".into()),
            ports: None,
            readiness_probe: None,
            liveness_probe: None,
            startup_probe: None,
            ..base.clone()
        })
        .collect();
    let last = steps.pop()?;
    pod.init_containers = (!steps.is_empty()).then_some(steps);
    pod.containers = vec![last];
    pod.restart_policy = Some("Never".into());
    let mut pod_labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    pod_labels.insert("app.kubernetes.io/name".into(), "haven-task".into());
    pod_labels.insert(labels::COMPONENT.into(), "task".into());
    Some(Job {
        metadata: ObjectMeta {
            name: Some(JOB_NAME.into()),
            namespace: Some(namespace.into()),
            labels: Some(BTreeMap::from([
                (labels::MANAGED_BY.to_owned(), labels::MANAGED_BY_VALUE.to_owned()),
                (TASK_UID_LABEL.to_owned(), offer.uid.clone()),
            ])),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(i64::from(offer.resources.max_run_seconds)),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(pod_labels), ..ObjectMeta::default() }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        status: None,
    })
}

/// The export request for the task's outputs, made by this site's agent (`agent`, the user
/// the API server knows it as) on the requester's behalf: the site's own checks and its own
/// output checkers decide, as for any export.
pub fn build_outputs_request(
    offer: &Offer,
    hub: &str,
    namespace: &str,
    agent: &str,
    files: Vec<String>,
) -> AirlockRequest {
    let description =
        if offer.description.is_empty() { String::new() } else { format!(": {}", offer.description) };
    let justification = format!(
        "Outputs of task {} from site {hub}, submitted by {} under multi-site permit {}{description}. Only what is approved here goes back to {hub}.",
        offer.task, offer.requested_by, offer.multi_site_permit
    );
    let mut request = AirlockRequest::new(
        OUTPUTS_REQUEST,
        AirlockRequestSpec {
            direction: Direction::Export,
            requested_by: agent.into(),
            files,
            justification,
            cancelled: false,
            reviews: vec![],
        },
    );
    request.metadata.namespace = Some(namespace.into());
    request.metadata.labels = Some(BTreeMap::from([(TASK_UID_LABEL.to_owned(), offer.uid.clone())]));
    request.metadata.annotations = Some(BTreeMap::from([
        (TASK_ANNOTATION.to_owned(), offer.task.clone()),
        (haven_api::admission::REQUESTED_FOR_ANNOTATION.to_owned(), offer.requested_by.clone()),
    ]));
    request
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
