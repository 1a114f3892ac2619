use haven_api::task::{AnalysisTaskStatus, SiteTaskState, StateChange};
use serde_json::json;

use super::*;

fn submitted(body: serde_json::Value) -> Result<Submission, FieldError> {
    submission(serde_json::from_value(body).expect("a TES task"), "ada@haven.test")
}

fn py_tes_task() -> serde_json::Value {
    // As py-tes 1.1 sends it (None fields dropped; inputs carry type FILE).
    json!({
        "name": "count", "description": "count by answer", "tags": {"study": "s1"},
        "executors": [{"image": "haven.local/testenv:1", "command": ["sh", "-c", "echo hi"], "env": {"A": "1"}}],
        "inputs": [{"path": "/home/inputs/count.sh", "type": "FILE", "content": "echo 1"}],
        "resources": {"cpu_cores": 2, "ram_gb": 1.5,
                      "backend_parameters": {"haven.io/sites": "north, south", "haven.io/max-run-seconds": "600"}}
    })
}

#[test]
fn a_py_tes_submission_becomes_the_persons_analysis_task() {
    let Submission { spec, annotations } = submitted(py_tes_task()).expect("accepted");
    assert_eq!(spec.requested_by, "ada@haven.test");
    assert_eq!(spec.description, "count by answer");
    assert_eq!(spec.sites, ["north", "south"]);
    assert_eq!(spec.executors[0].command, ["sh", "-c", "echo hi"]);
    assert_eq!(spec.executors[0].env["A"], "1");
    assert_eq!(spec.inputs, [TaskInput { path: "count.sh".into(), content: "echo 1".into() }]);
    assert_eq!(
        (spec.resources.cpu_cores, spec.resources.ram_gb, spec.resources.max_run_seconds),
        (2, 2, 600)
    );
    assert!(!spec.cancelled);
    assert_eq!(annotations[NAME_ANNOTATION], "count");
    assert_eq!(annotations[TAGS_ANNOTATION], r#"{"study":"s1"}"#);
}

#[test]
fn what_haven_cannot_honour_is_refused_naming_the_field() {
    type Change = fn(&mut serde_json::Value);
    let cases: [(&str, Change); 14] = [
        ("outputs", |b| b["outputs"] = json!([{"path": "/outputs/a", "url": "s3://b/a"}])),
        ("volumes", |b| b["volumes"] = json!(["/scratch"])),
        ("executors", |b| b["executors"] = json!([])),
        ("executors[0].stdout", |b| b["executors"][0]["stdout"] = json!("/tmp/out")),
        ("executors[0].workdir", |b| b["executors"][0]["workdir"] = json!("/tmp")),
        ("executors[0].ignore_error", |b| b["executors"][0]["ignore_error"] = json!(true)),
        ("executors[0].command", |b| b["executors"][0]["command"] = json!([])),
        ("inputs[0].url", |b| b["inputs"][0]["url"] = json!("https://example.org/x")),
        ("inputs[0].type", |b| b["inputs"][0]["type"] = json!("DIRECTORY")),
        ("inputs[0].path", |b| b["inputs"][0]["path"] = json!("/etc/passwd")),
        ("inputs[0].path", |b| b["inputs"][0]["path"] = json!("/home/inputs/")),
        ("inputs[0].content", |b| b["inputs"][0] = json!({"path": "/home/inputs/a"})),
        ("resources.ram_gb", |b| b["resources"]["ram_gb"] = json!(-1.0)),
        ("resources.backend_parameters[haven.io/max-run-seconds]", |b| {
            b["resources"]["backend_parameters"]["haven.io/max-run-seconds"] = json!("soon");
        }),
    ];
    for (field, change) in cases {
        let mut body = py_tes_task();
        change(&mut body);
        let error = submitted(body).expect_err(field);
        assert_eq!(error.field, field, "{error}");
    }
}

#[test]
fn unknown_backend_parameters_are_ignored_unless_the_client_asks_for_strictness() {
    let mut body = py_tes_task();
    body["resources"]["backend_parameters"]["vm-size"] = json!("large");
    assert!(submitted(body.clone()).is_ok());
    body["resources"]["backend_parameters_strict"] = json!(true);
    let error = submitted(body).expect_err("strict");
    assert_eq!(error.field, "resources.backend_parameters[vm-size]");
}

fn task(state: TesState, cancelled: bool) -> AnalysisTask {
    let Submission { mut spec, annotations } = submitted(py_tes_task()).expect("accepted");
    spec.cancelled = cancelled;
    let mut task = AnalysisTask::new("tes-abc", spec);
    task.metadata.annotations = Some(annotations);
    task.status = Some(AnalysisTaskStatus {
        state,
        sites: vec![SiteProgress {
            site: "north".into(),
            state: SiteTaskState::Delivered,
            reason: String::new(),
            message: "approved by oli".into(),
            history: vec![StateChange {
                state: SiteTaskState::Pulled,
                at: "2026-12-07T10:00:00Z".parse().expect("time"),
            }],
            manifest_sha256: Some("ab".repeat(32)),
            delivered_to: Some("/home/imports/tes-abc/north".into()),
        }],
        ..AnalysisTaskStatus::default()
    });
    task
}

#[test]
fn a_task_is_shown_as_tes_with_each_sites_progress_as_a_log() {
    let full = shown(&task(TesState::Complete, false), View::Full);
    assert_eq!(full.id.as_deref(), Some("tes-abc"));
    assert_eq!(full.state.as_deref(), Some("COMPLETE"));
    assert_eq!(full.name.as_deref(), Some("count"));
    assert_eq!(full.inputs.as_ref().expect("inputs")[0].path, "/home/inputs/count.sh");
    assert_eq!(full.inputs.as_ref().expect("inputs")[0].content.as_deref(), Some("echo 1"));
    let log = &full.logs.as_ref().expect("logs")[0];
    assert_eq!(log.metadata["site"], "north");
    assert_eq!(log.metadata["state"], "Delivered");
    assert_eq!(log.metadata["deliveredTo"], "/home/imports/tes-abc/north");
    assert_eq!(log.system_logs, ["2026-12-07T10:00:00+00:00 Pulled", "approved by oli"]);
    // What was submitted reads back the same.
    let again = submission(TesTask { inputs: full.inputs.clone(), ..full.clone() }, "ada@haven.test");
    assert_eq!(again.expect("resubmittable").spec, task(TesState::Complete, false).spec);

    let basic = shown(&task(TesState::Running, false), View::Basic);
    assert_eq!(basic.inputs.as_ref().expect("inputs")[0].content, None, "BASIC leaves out input content");
    let minimal = shown(&task(TesState::Running, false), View::Minimal);
    assert_eq!(
        minimal,
        TesTask { id: Some("tes-abc".into()), state: Some("RUNNING".into()), ..TesTask::default() }
    );
}

#[test]
fn a_cancel_on_its_way_reads_canceling_until_the_task_settles() {
    assert_eq!(state(&task(TesState::Running, true)), "CANCELING");
    assert_eq!(state(&task(TesState::Canceled, true)), "CANCELED");
    assert_eq!(state(&task(TesState::Complete, true)), "COMPLETE");
    assert_eq!(state(&task(TesState::Queued, false)), "QUEUED");
}

#[test]
fn views_parse_as_tes_names_them() {
    assert_eq!(View::parse(None, View::Minimal), Ok(View::Minimal));
    assert_eq!(View::parse(Some("FULL"), View::Minimal), Ok(View::Full));
    assert_eq!(View::parse(Some("full"), View::Basic).expect_err("case").field, "view");
}
