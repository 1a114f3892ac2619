use haven_api::task::{Executor, TaskResources};
use k8s_openapi::api::core::v1::{ContainerPort, PodSpec, SecurityContext, Volume, VolumeMount};

use super::*;

fn offer(steps: usize) -> Offer {
    Offer {
        uid: "3f6c2a7e-0000-4000-8000-000000000001".into(),
        task: "ws-study/count".into(),
        multi_site_permit: "MS-1".into(),
        requested_by: "ada@haven.test".into(),
        description: "regional counts".into(),
        executors: (0..steps)
            .map(|i| Executor {
                image: "haven.local/testenv:0.1.0".into(),
                command: vec!["count".into(), format!("--step={i}")],
                env: BTreeMap::from([("STEP".to_owned(), i.to_string())]),
            })
            .collect(),
        inputs: vec![],
        resources: TaskResources { cpu_cores: 1, ram_gb: 2, max_run_seconds: 600 },
        cancelled: None,
    }
}

/// The shape of the operator's environment pod: what the Job must keep.
fn environment_template() -> PodTemplateSpec {
    let container = Container {
        name: "environment".into(),
        image: Some("ide".into()),
        ports: Some(vec![ContainerPort { container_port: 8888, ..ContainerPort::default() }]),
        security_context: Some(SecurityContext {
            read_only_root_filesystem: Some(true),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "home".into(),
            mount_path: "/home".into(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(BTreeMap::from([
                ("app.kubernetes.io/name".to_owned(), "haven-workspace".to_owned()),
                (labels::WORKSPACE.to_owned(), "task-1".to_owned()),
            ])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            automount_service_account_token: Some(false),
            containers: vec![container],
            volumes: Some(vec![Volume { name: "home".into(), ..Volume::default() }]),
            ..PodSpec::default()
        }),
    }
}

#[test]
fn a_task_workspace_name_is_stable_per_site_and_task_and_a_valid_workspace_name() {
    let name = task_workspace_name("hub", "uid-1");
    assert_eq!(name, task_workspace_name("hub", "uid-1"));
    assert_ne!(name, task_workspace_name("east", "uid-1"));
    assert!(
        name.len() <= 60 && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    );
}

#[test]
fn the_task_workspace_is_paused_for_the_requester_alone_with_the_tasks_resources() {
    let workspace = build_workspace("hub", &offer(1), "survey-north");
    assert!(workspace.spec.paused);
    assert_eq!(workspace.spec.users, ["ada@haven.test"]);
    assert_eq!(workspace.spec.permit, "survey-north");
    assert_eq!(
        (workspace.spec.resources.cpu.0.as_str(), workspace.spec.resources.memory.0.as_str()),
        ("1", "2Gi")
    );
    let labels = workspace.metadata.labels.expect("present");
    assert_eq!(labels[TASK_UID_LABEL], offer(1).uid);
}

#[test]
fn the_job_runs_each_executor_in_turn_in_the_workspaces_own_pod() {
    let job = build_job(&environment_template(), &offer(3), "ws-task-1").expect("present");
    let spec = job.spec.expect("present");
    assert_eq!((spec.backoff_limit, spec.active_deadline_seconds), (Some(0), Some(600)));
    let pod = spec.template.spec.expect("present");
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert!(pod.volumes.is_some());
    let init: Vec<_> = pod.init_containers.expect("present").iter().map(|c| c.name.clone()).collect();
    assert_eq!(init, ["step-0", "step-1"]);
    let last = &pod.containers[0];
    assert_eq!(last.command.as_ref().expect("present")[1], "--step=2");
    assert!(last.ports.is_none(), "a task serves nothing");
    assert_eq!(last.security_context.as_ref().expect("present").read_only_root_filesystem, Some(true));
    assert_eq!(last.volume_mounts.as_ref().expect("present")[0].mount_path, "/home");
    // Not an endpoint of the workspace's IDE Service.
    let labels = spec.template.metadata.expect("present").labels.expect("present");
    assert_eq!(labels["app.kubernetes.io/name"], "haven-task");
}

#[test]
fn the_outputs_request_is_the_agents_and_names_the_researcher_and_the_task() {
    let request = build_outputs_request(
        &offer(1),
        "hub",
        "ws-task-1",
        "system:serviceaccount:haven-system:haven",
        vec!["counts.csv".into()],
    );
    assert_eq!(request.spec.requested_by, "system:serviceaccount:haven-system:haven");
    assert_eq!(request.spec.direction, Direction::Export);
    assert!(
        request.spec.justification.contains("ada@haven.test") && request.spec.justification.contains("MS-1")
    );
    assert_eq!(request.metadata.annotations.expect("present")["haven.io/requested-for"], "ada@haven.test");
}

#[test]
fn the_judged_offer_is_pinned_by_a_digest_that_ignores_only_cancellation() {
    let judged = offer(1);
    let workspace = build_workspace("hub", &judged, "survey-north");
    let pinned = workspace.metadata.annotations.expect("annotations")[OFFER_DIGEST_ANNOTATION].clone();
    assert_eq!(pinned, offer_digest(&judged));
    let cancelled = Offer { cancelled: Some("cancelled by ada".into()), ..judged.clone() };
    assert_eq!(offer_digest(&cancelled), pinned);
    let mut swapped = judged.clone();
    swapped.executors[0].image = "registry.example.org/exfil:1".into();
    assert_ne!(offer_digest(&swapped), pinned);
    let mut other_person = judged;
    other_person.requested_by = "mallory@example.org".into();
    assert_ne!(offer_digest(&other_person), pinned);
}
