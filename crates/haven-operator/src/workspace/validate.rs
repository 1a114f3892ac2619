//! A workspace checked against its permit (pure): either a [`WorkspacePlan`] to build, or
//! every reason it may not run, each naming the field.

use crate::conditions::time_of;
use chrono::{DateTime, Utc};
use haven_api::{
    DataPermit, Workspace,
    constants::reasons,
    mirror::MirrorRules,
    permit::{EgressProfile, PermitPhase},
    quantity::milli_units,
    tier::{Controls, LAST_ACTIVE_ANNOTATION},
    validation::{effective_expiry, image_allowed, workspace_namespace},
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{Resource, ResourceExt};

use super::plan::WorkspacePlan;

/// Why a workspace may not be provisioned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Condition reason (CamelCase), e.g. `UserNotPermitted`.
    pub reason: &'static str,
    /// What is wrong, starting with the field: "spec.users: bob@x is not a user of permit p".
    pub message: String,
}

impl Violation {
    fn new(reason: &'static str, message: String) -> Self {
        Self { reason, message }
    }
}

/// Another workspace of the same permit, for the workspace limit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sibling {
    /// Creation time (RFC 3339 sorts chronologically) then name: the order slots are given in.
    pub created: String,
    pub name: String,
}

/// Checks `workspace` against `permit`; `siblings` are the permit's other live workspaces that
/// hold or wait for a slot.
pub fn plan_workspace(
    workspace: &Workspace,
    permit: &DataPermit,
    controls: &Controls,
    mirror_rules: &MirrorRules,
    siblings: &[Sibling],
    now: DateTime<Utc>,
) -> Result<WorkspacePlan, Vec<Violation>> {
    let spec = &workspace.spec;
    let grant = &permit.spec;
    let permit_name = permit.name_any();
    let mut violations = Vec::new();

    let phase = permit.status.as_ref().map(|s| s.phase).unwrap_or_default();
    if phase != PermitPhase::Active {
        violations.push(Violation::new(
            reasons::PERMIT_NOT_ACTIVE,
            format!("spec.permit: permit {permit_name} is {phase:?}, not Active"),
        ));
    }
    violations.extend(request_violations(workspace, permit));
    // Checked here as well as at admission: the platform's rules may have changed since, and
    // the admission policy may not be installed.
    if let (EgressProfile::PackageMirror, Some(mirror)) = (controls.egress, &grant.environment.package_mirror)
        && let Some(problem) = mirror_rules.problem(&mirror.cidr)
    {
        violations.push(Violation::new(
            reasons::MIRROR_NOT_ALLOWED,
            format!("spec.environment.packageMirror.cidr of permit {permit_name}: {problem}"),
        ));
    }
    let datasets = chosen_datasets(workspace, permit);
    let me = Sibling { created: created(workspace), name: workspace.name_any() };
    let ahead = siblings.iter().filter(|s| **s < me).count();
    if ahead >= grant.environment.max_workspaces as usize {
        violations.push(Violation::new(
            reasons::WORKSPACE_LIMIT_REACHED,
            format!(
                "spec.permit: permit {permit_name} allows {} workspaces and has {ahead} already",
                grant.environment.max_workspaces
            ),
        ));
    }
    let idle = idle_deadline(workspace, controls, now).is_some_and(|deadline| now >= deadline);
    let Some(owner) = workspace.controller_owner_ref(&()) else {
        violations.push(Violation::new(reasons::PROGRESSING, "metadata.uid: not yet assigned".into()));
        return Err(violations);
    };
    if !violations.is_empty() {
        return Err(violations);
    }
    Ok(WorkspacePlan {
        name: workspace.name_any(),
        namespace: workspace_namespace(&workspace.name_any()),
        permit: permit_name,
        owner,
        users: spec.users.clone(),
        reviewers: grant.reviewers.clone(),
        image: spec.image.clone(),
        resources: spec.resources.clone(),
        home_storage: spec.home_storage.clone(),
        datasets,
        egress: controls.egress,
        package_mirror: grant.environment.package_mirror.clone(),
        paused: spec.paused || idle,
        idle: idle && !spec.paused,
        dedicated_nodes: grant.environment.dedicated_nodes,
        multi_site: grant.multi_site.is_some(),
        gateway_annotations: controls.gateway_annotations.clone(),
    })
}

/// When the environment's idle timeout runs out: the idle timeout after the user was last
/// active, as the access gateway reports in [`LAST_ACTIVE_ANNOTATION`], or after the
/// workspace was created if it never reported. `None` without an idle timeout.
pub fn idle_deadline(
    workspace: &Workspace,
    controls: &Controls,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let timeout = controls.idle_timeout?;
    let reported = workspace
        .annotations()
        .get(LAST_ACTIVE_ANNOTATION)
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map(|at| at.with_timezone(&Utc));
    let created = workspace.meta().creation_timestamp.as_ref().map(|t| time_of(&t.0));
    // A report from the future counts as now, so a wrong clock cannot switch the timeout off.
    let since = reported.map_or(created, |at| Some(at.min(now)))?;
    since.checked_add_signed(timeout)
}

/// When the workspace is torn down: its own `expiresAt`, the permit's `validUntil` and its
/// creation plus the tier's longest lifetime, whichever comes first.
pub fn workspace_expiry(workspace: &Workspace, permit: &DataPermit, controls: &Controls) -> DateTime<Utc> {
    let expiry = effective_expiry(workspace.spec.expires_at, permit.spec.valid_until);
    let lifetime_end = controls.max_workspace_lifetime.zip(workspace.meta().creation_timestamp.as_ref());
    match lifetime_end.and_then(|(lifetime, created)| time_of(&created.0).checked_add_signed(lifetime)) {
        Some(lifetime_ends) => expiry.min(lifetime_ends),
        None => expiry,
    }
}

/// The ordering key of a workspace for the permit's workspace limit.
pub fn created(workspace: &Workspace) -> String {
    workspace.meta().creation_timestamp.as_ref().map(|t| t.0.to_string()).unwrap_or_default()
}

/// Unparseable quantities count as exceeding: the schema already refuses them, so this only
/// fails closed.
/// What the workspace asks for that its permit does not grant (users, image, datasets, expiry,
/// resources), each naming the field. A workspace with any of these never holds one of the
/// permit's slots, so bad requests cannot lock permitted users out.
pub fn request_violations(workspace: &Workspace, permit: &DataPermit) -> Vec<Violation> {
    let spec = &workspace.spec;
    let grant = &permit.spec;
    let permit_name = permit.name_any();
    let mut violations = Vec::new();
    for user in spec.users.iter().filter(|u| !grant.users.contains(u)) {
        violations.push(Violation::new(
            reasons::USER_NOT_PERMITTED,
            format!("spec.users: {user} is not a user of permit {permit_name}"),
        ));
    }
    if !image_allowed(&spec.image, &grant.environment.allowed_images) {
        violations.push(Violation::new(
            reasons::IMAGE_NOT_ALLOWED,
            format!("spec.image: {} is not in permit {permit_name}'s environment.allowedImages", spec.image),
        ));
    }
    let permitted: Vec<&str> = grant.datasets.iter().map(|d| d.name.as_str()).collect();
    let datasets = chosen_datasets(workspace, permit);
    for dataset in datasets.iter().filter(|d| !permitted.contains(&d.as_str())) {
        violations.push(Violation::new(
            reasons::DATASET_NOT_PERMITTED,
            format!("spec.datasets: {dataset} is not a dataset of permit {permit_name}"),
        ));
    }
    if let Some(expires_at) = spec.expires_at.filter(|at| *at > grant.valid_until) {
        violations.push(Violation::new(
            reasons::EXPIRY_AFTER_PERMIT,
            format!(
                "spec.expiresAt: {expires_at} is after permit {permit_name}'s validUntil {}",
                grant.valid_until
            ),
        ));
    }
    let ceiling = &grant.environment.resource_ceiling;
    for (field, asked, limit) in [
        ("spec.resources.cpu", &spec.resources.cpu, &ceiling.cpu),
        ("spec.resources.memory", &spec.resources.memory, &ceiling.memory),
        ("spec.homeStorage", &spec.home_storage, &ceiling.storage),
    ] {
        // The schema refuses these at admission; an object stored before it did is refused here.
        if milli_units(&asked.0).is_none_or(|m| m <= 0) {
            violations.push(Violation::new(
                reasons::INVALID_QUANTITY,
                format!("{field}: {} must be a quantity greater than zero", asked.0),
            ));
        } else if exceeds(asked, limit) {
            violations.push(Violation::new(
                reasons::RESOURCES_EXCEED_CEILING,
                format!("{field}: {} exceeds permit {permit_name}'s resourceCeiling of {}", asked.0, limit.0),
            ));
        }
    }
    if spec.resources.gpu > ceiling.gpu {
        violations.push(Violation::new(
            reasons::RESOURCES_EXCEED_CEILING,
            format!(
                "spec.resources.gpu: {} exceeds permit {permit_name}'s resourceCeiling of {}",
                spec.resources.gpu, ceiling.gpu
            ),
        ));
    }
    violations
}

/// The datasets the workspace mounts: those it names, or all of the permit's.
fn chosen_datasets(workspace: &Workspace, permit: &DataPermit) -> Vec<String> {
    match &workspace.spec.datasets {
        Some(chosen) => chosen.clone(),
        None => permit.spec.datasets.iter().map(|d| d.name.clone()).collect(),
    }
}

fn exceeds(asked: &Quantity, limit: &Quantity) -> bool {
    match (milli_units(&asked.0), milli_units(&limit.0)) {
        (Some(asked), Some(limit)) => asked > limit,
        _ => true,
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
