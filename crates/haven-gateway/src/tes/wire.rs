//! GA4GH TES v1.1 messages and their meaning in Haven (pure): a TES task becomes an
//! AnalysisTask's spec, and an AnalysisTask is shown back as a TES task. What Haven cannot do
//! the way TES says (files fetched from URLs, outputs uploaded to URLs, volumes, redirected
//! streams) is refused naming the field: a task runs at the data sites exactly as submitted,
//! and its outputs come back only through each site's airlock, to
//! `/home/imports/<task>/<site>/`. Scheduling hints a site decides for itself (`disk_gb`,
//! `preemptible`, `zones`) and inputs' `name`/`description` are not kept, as TES allows.

use std::collections::BTreeMap;

use haven_api::task::{
    AnalysisTask, AnalysisTaskSpec, Executor, SiteProgress, TaskInput, TaskResources, TesState,
};
use serde::{Deserialize, Serialize};

/// Where a task's inputs land at each site; a TES input's `path` must lie under it.
pub const INPUTS_DIR: &str = "/home/inputs/";
/// `resources.backend_parameters` key: the data sites to run at, comma-separated (default all).
pub const SITES_PARAMETER: &str = "haven.io/sites";
/// `resources.backend_parameters` key: the longest a run may take, in seconds.
pub const MAX_RUN_PARAMETER: &str = "haven.io/max-run-seconds";
/// Annotation keeping the TES `name` (the AnalysisTask's own name is its TES id).
pub const NAME_ANNOTATION: &str = "haven.io/tes-name";
/// Annotation keeping the TES `tags` (JSON).
pub const TAGS_ANNOTATION: &str = "haven.io/tes-tags";

/// A TES task, as submitted and as shown (`tesTask`). Read-only fields sent on submission
/// (`id`, `state`, `logs`, `creation_time`) are ignored, as TES says.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct TesTask {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<TesInput>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<TesResources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executors: Option<Vec<TesExecutor>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Vec<TesTaskLog>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct TesInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub path: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streamable: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct TesResources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemptible: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ram_gb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_gb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_parameters: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_parameters_strict: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct TesExecutor {
    pub image: String,
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_error: Option<bool>,
}

/// One site's part of a task, shown as a TES task log: its state, reason and release
/// manifest hash in `metadata`, what it said in `system_logs`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct TesTaskLog {
    pub logs: Vec<serde_json::Value>,
    pub metadata: BTreeMap<String, String>,
    pub outputs: Vec<serde_json::Value>,
    pub system_logs: Vec<String>,
}

/// `POST /tasks` answers with the new task's id.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CreatedTask {
    pub id: String,
}

/// `GET /tasks`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TaskList {
    pub tasks: Vec<TesTask>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// How much of a task to show (`view`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// `id` and `state`.
    Minimal,
    /// All but the inputs' content.
    Basic,
    /// Everything.
    Full,
}

impl View {
    pub fn parse(text: Option<&str>, default: Self) -> Result<Self, FieldError> {
        match text {
            None | Some("") => Ok(default),
            Some("MINIMAL") => Ok(Self::Minimal),
            Some("BASIC") => Ok(Self::Basic),
            Some("FULL") => Ok(Self::Full),
            Some(other) => Err(FieldError::new("view", format!("{other:?} is not MINIMAL, BASIC or FULL"))),
        }
    }
}

/// A submission Haven cannot run as it stands, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { field: field.into(), problem: problem.into() }
    }
}

/// What a submission becomes: the AnalysisTask's spec and the annotations keeping its TES
/// name and tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub spec: AnalysisTaskSpec,
    pub annotations: BTreeMap<String, String>,
}

/// A TES task submitted by `requested_by`, as an AnalysisTask (the API server's schema
/// checks the rest: lengths, path characters, ranges).
pub fn submission(task: TesTask, requested_by: &str) -> Result<Submission, FieldError> {
    if task.outputs.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(FieldError::new(
            "outputs",
            "a task's outputs come back only through each data site's airlock, into /home/imports/<task>/<site>/; \
             write them under /outputs and leave outputs empty",
        ));
    }
    if task.volumes.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(FieldError::new("volumes", "not supported: each run has /outputs and the site's data"));
    }
    let executors = task.executors.unwrap_or_default();
    if executors.is_empty() {
        return Err(FieldError::new("executors", "at least one executor is required"));
    }
    let executors =
        executors.into_iter().enumerate().map(|(i, e)| executor(i, e)).collect::<Result<_, _>>()?;
    let inputs = task
        .inputs
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, input)| self::input(i, input))
        .collect::<Result<_, _>>()?;
    let (resources, sites) = resources(task.resources.unwrap_or_default())?;
    let mut annotations = BTreeMap::new();
    if let Some(name) = task.name.filter(|n| !n.is_empty()) {
        annotations.insert(NAME_ANNOTATION.to_owned(), name);
    }
    if let Some(tags) = task.tags.filter(|t| !t.is_empty()) {
        annotations.insert(TAGS_ANNOTATION.to_owned(), serde_json::to_string(&tags).unwrap_or_default());
    }
    let spec = AnalysisTaskSpec {
        requested_by: requested_by.to_owned(),
        description: task.description.unwrap_or_default(),
        sites,
        executors,
        inputs,
        resources,
        cancelled: false,
    };
    Ok(Submission { spec, annotations })
}

fn executor(index: usize, executor: TesExecutor) -> Result<Executor, FieldError> {
    let field = |name: &str| format!("executors[{index}].{name}");
    let unsupported = [
        ("workdir", executor.workdir.is_some(), "not supported: runs start in /home"),
        ("stdin", executor.stdin.is_some(), "not supported"),
        ("stdout", executor.stdout.is_some(), "not supported: write results under /outputs"),
        ("stderr", executor.stderr.is_some(), "not supported: write results under /outputs"),
        (
            "ignore_error",
            executor.ignore_error == Some(true),
            "not supported: a failed executor ends the run",
        ),
    ];
    if let Some((name, _, problem)) = unsupported.into_iter().find(|(_, set, _)| *set) {
        return Err(FieldError::new(field(name), problem));
    }
    if executor.command.is_empty() {
        return Err(FieldError::new(field("command"), "is required"));
    }
    Ok(Executor { image: executor.image, command: executor.command, env: executor.env.unwrap_or_default() })
}

fn input(index: usize, input: TesInput) -> Result<TaskInput, FieldError> {
    let field = |name: &str| format!("inputs[{index}].{name}");
    if input.url.as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(FieldError::new(
            field("url"),
            "only inline content travels to the data sites (nothing is fetched from a URL); put the file's text in content",
        ));
    }
    if input.kind.as_deref().is_some_and(|k| k != "FILE") {
        return Err(FieldError::new(field("type"), "only FILE inputs (inline content) are supported"));
    }
    let Some(content) = input.content else {
        return Err(FieldError::new(field("content"), "is required (inline text)"));
    };
    let Some(path) = input.path.strip_prefix(INPUTS_DIR).filter(|p| !p.is_empty()) else {
        return Err(FieldError::new(field("path"), format!("must be a file under {INPUTS_DIR}")));
    };
    Ok(TaskInput { path: path.to_owned(), content })
}

fn resources(resources: TesResources) -> Result<(TaskResources, Vec<String>), FieldError> {
    let mut out = TaskResources::default();
    if let Some(cores) = resources.cpu_cores {
        out.cpu_cores = cores;
    }
    if let Some(ram) = resources.ram_gb {
        if !ram.is_finite() || ram <= 0.0 || ram > f64::from(u32::MAX) {
            return Err(FieldError::new("resources.ram_gb", "must be a positive number of GB"));
        }
        // Whole GiB, rounded up: a task never gets less than it asked for.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = ram.ceil() as u32;
        out.ram_gb = whole;
    }
    let mut sites = Vec::new();
    let strict = resources.backend_parameters_strict.unwrap_or(false);
    for (key, value) in resources.backend_parameters.unwrap_or_default() {
        let field = format!("resources.backend_parameters[{key}]");
        match key.as_str() {
            SITES_PARAMETER => {
                sites =
                    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            }
            MAX_RUN_PARAMETER => {
                out.max_run_seconds = value
                    .trim()
                    .parse()
                    .map_err(|_| FieldError::new(field, "must be a whole number of seconds"))?;
            }
            // TES: unknown parameters are ignored unless the client asks for strictness.
            _ if strict => {
                return Err(FieldError::new(
                    field,
                    format!("unknown here; Haven reads {SITES_PARAMETER} and {MAX_RUN_PARAMETER}"),
                ));
            }
            _ => {}
        }
    }
    Ok((out, sites))
}

/// The task's TES state: as its status says, or `CANCELING` while a cancel is on its way.
pub fn state(task: &AnalysisTask) -> &'static str {
    let state = task.status.as_ref().map(|s| s.state).unwrap_or_default();
    let settled = matches!(
        state,
        TesState::Complete | TesState::ExecutorError | TesState::SystemError | TesState::Canceled
    );
    if task.spec.cancelled && !settled {
        return "CANCELING";
    }
    match state {
        TesState::Queued => "QUEUED",
        TesState::Initializing => "INITIALIZING",
        TesState::Running => "RUNNING",
        TesState::Complete => "COMPLETE",
        TesState::ExecutorError => "EXECUTOR_ERROR",
        TesState::SystemError => "SYSTEM_ERROR",
        TesState::Canceled => "CANCELED",
    }
}

/// The task's TES `name`: as submitted, else its id.
pub fn name(task: &AnalysisTask) -> String {
    let submitted = task.metadata.annotations.as_ref().and_then(|a| a.get(NAME_ANNOTATION));
    submitted.or(task.metadata.name.as_ref()).cloned().unwrap_or_default()
}

/// The task's TES `tags`, as submitted.
pub fn tags(task: &AnalysisTask) -> Option<BTreeMap<String, String>> {
    let json = task.metadata.annotations.as_ref()?.get(TAGS_ANNOTATION)?;
    serde_json::from_str(json).ok()
}

/// An AnalysisTask shown as a TES task.
pub fn shown(task: &AnalysisTask, view: View) -> TesTask {
    let mut tes =
        TesTask { id: task.metadata.name.clone(), state: Some(state(task).to_owned()), ..TesTask::default() };
    if view == View::Minimal {
        return tes;
    }
    let spec = &task.spec;
    tes.name = Some(name(task));
    tes.description = (!spec.description.is_empty()).then(|| spec.description.clone());
    tes.tags = tags(task);
    tes.creation_time = task.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string());
    tes.executors = Some(
        spec.executors
            .iter()
            .map(|e| TesExecutor {
                image: e.image.clone(),
                command: e.command.clone(),
                env: (!e.env.is_empty()).then(|| e.env.clone()),
                ..TesExecutor::default()
            })
            .collect(),
    );
    tes.inputs = Some(
        spec.inputs
            .iter()
            .map(|i| TesInput {
                path: format!("{INPUTS_DIR}{}", i.path),
                kind: Some("FILE".into()),
                content: (view == View::Full).then(|| i.content.clone()),
                ..TesInput::default()
            })
            .collect(),
    );
    let mut parameters =
        BTreeMap::from([(MAX_RUN_PARAMETER.to_owned(), spec.resources.max_run_seconds.to_string())]);
    if !spec.sites.is_empty() {
        parameters.insert(SITES_PARAMETER.to_owned(), spec.sites.join(","));
    }
    tes.resources = Some(TesResources {
        cpu_cores: Some(spec.resources.cpu_cores),
        ram_gb: Some(f64::from(spec.resources.ram_gb)),
        backend_parameters: Some(parameters),
        ..TesResources::default()
    });
    let sites = task.status.as_ref().map(|s| s.sites.as_slice()).unwrap_or_default();
    tes.logs = Some(sites.iter().map(site_log).collect());
    tes
}

fn site_log(site: &SiteProgress) -> TesTaskLog {
    let text = |value: &serde_json::Value| value.as_str().map(str::to_owned).unwrap_or_default();
    let mut metadata = BTreeMap::from([
        ("site".to_owned(), site.site.clone()),
        ("state".to_owned(), text(&serde_json::to_value(site.state).unwrap_or_default())),
    ]);
    let optional = [
        ("reason", Some(&site.reason).filter(|r| !r.is_empty())),
        ("manifestSha256", site.manifest_sha256.as_ref()),
        ("deliveredTo", site.delivered_to.as_ref()),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            metadata.insert(key.to_owned(), value.clone());
        }
    }
    let mut system_logs: Vec<String> = site
        .history
        .iter()
        .map(|change| {
            let state = text(&serde_json::to_value(change.state).unwrap_or_default());
            format!("{} {state}", change.at.to_rfc3339())
        })
        .collect();
    if !site.message.is_empty() {
        system_logs.push(site.message.clone());
    }
    TesTaskLog { logs: Vec::new(), metadata, outputs: Vec::new(), system_logs }
}

/// `GET /service-info`: who this is (a GA4GH service-info of type org.ga4gh:tes:1.1.0).
pub fn service_info(portal: &str, version: &str) -> serde_json::Value {
    serde_json::json!({
        "id": "io.haven.tes",
        "name": "Haven compute-to-data",
        "type": {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"},
        "description": "Runs each task at the data sites of the workspace's multi-site permit; \
                        only outputs each site's checkers approved come back, into /home/imports/<task>/<site>/.",
        "organization": {"name": "Haven", "url": portal},
        "version": version,
        "storage": [],
        "tesResources_backend_parameters": [SITES_PARAMETER, MAX_RUN_PARAMETER],
    })
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
