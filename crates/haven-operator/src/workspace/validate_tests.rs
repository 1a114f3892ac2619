use haven_api::{DataPermit, DataPermitStatus, Workspace, constants::reasons, permit::PermitPhase};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::*;

fn example<T: serde::de::DeserializeOwned>(file: &str) -> T {
    let path = format!("{}/../../examples/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("example exists");
    serde_saphyr::from_str(&text).expect("example parses")
}

fn active_permit() -> DataPermit {
    let mut permit: DataPermit = example("datapermit.yaml");
    permit.status = Some(DataPermitStatus { phase: PermitPhase::Active, ..DataPermitStatus::default() });
    permit
}

fn workspace() -> Workspace {
    let mut workspace: Workspace = example("workspace.yaml");
    workspace.metadata.uid = Some("uid-1".into());
    workspace
}

/// Plans under the default tier profiles, now.
fn plan(workspace: &Workspace, permit: &DataPermit) -> Result<WorkspacePlan, Vec<Violation>> {
    plan_with_siblings(workspace, permit, &[])
}

fn plan_with_siblings(
    workspace: &Workspace,
    permit: &DataPermit,
    siblings: &[Sibling],
) -> Result<WorkspacePlan, Vec<Violation>> {
    let tiers = haven_api::tier::TierProfiles::default();
    plan_workspace(
        workspace,
        permit,
        &tiers.controls(&permit.spec),
        tiers.mirror_rules(),
        siblings,
        chrono::Utc::now(),
    )
}

fn reasons_of(result: Result<WorkspacePlan, Vec<Violation>>) -> Vec<&'static str> {
    result.err().unwrap_or_default().into_iter().map(|v| v.reason).collect()
}

#[test]
fn the_example_workspace_is_allowed_by_the_example_permit() {
    let plan = plan(&workspace(), &active_permit()).expect("allowed");
    assert_eq!(plan.namespace, "ws-cancer-outcomes");
    assert_eq!(plan.datasets, ["cancer-registry"]);
    assert_eq!(plan.reviewers, ["carol@hdab.example", "dave@hdab.example"]);
    assert_eq!(plan.owner.uid, "uid-1");
}

#[test]
fn all_permitted_datasets_are_mounted_when_none_are_chosen() {
    let mut ws = workspace();
    ws.spec.datasets = None;
    assert_eq!(plan(&ws, &active_permit()).expect("allowed").datasets, ["cancer-registry"]);
}

#[test]
fn a_permit_that_is_not_active_provisions_nothing() {
    for phase in [PermitPhase::Pending, PermitPhase::Preparing, PermitPhase::Suspended, PermitPhase::Expired]
    {
        let mut permit = active_permit();
        permit.status = Some(DataPermitStatus { phase, ..DataPermitStatus::default() });
        assert_eq!(reasons_of(plan(&workspace(), &permit)), [reasons::PERMIT_NOT_ACTIVE], "{phase:?}");
    }
}

#[test]
fn a_user_outside_the_permit_is_named() {
    let mut ws = workspace();
    ws.spec.users.push("mallory@evil.example".into());
    let violations = plan(&ws, &active_permit()).expect_err("refused");
    assert_eq!(violations[0].reason, reasons::USER_NOT_PERMITTED);
    assert!(
        violations[0].message.starts_with("spec.users: mallory@evil.example"),
        "{}",
        violations[0].message
    );
}

#[test]
fn an_image_outside_the_allow_list_is_refused_but_a_wildcard_tag_is_allowed() {
    let mut ws = workspace();
    ws.spec.image = "docker.io/library/alpine:3".into();
    assert_eq!(reasons_of(plan(&ws, &active_permit())), [reasons::IMAGE_NOT_ALLOWED]);
    ws.spec.image = "rocker/rstudio:4.5.1".into();
    assert!(plan(&ws, &active_permit()).is_ok());
}

#[test]
fn a_dataset_outside_the_permit_is_refused() {
    let mut ws = workspace();
    ws.spec.datasets = Some(vec!["cancer-registry".into(), "genomes".into()]);
    assert_eq!(reasons_of(plan(&ws, &active_permit())), [reasons::DATASET_NOT_PERMITTED]);
}

#[test]
fn an_expiry_after_the_permit_is_refused() {
    let mut ws = workspace();
    ws.spec.expires_at = Some(active_permit().spec.valid_until + chrono::Duration::seconds(1));
    assert_eq!(reasons_of(plan(&ws, &active_permit())), [reasons::EXPIRY_AFTER_PERMIT]);
}

#[test]
fn resources_above_the_ceiling_are_refused_field_by_field() {
    let mut ws = workspace();
    ws.spec.resources.cpu = Quantity("8001m".into());
    ws.spec.resources.memory = Quantity("33Gi".into());
    ws.spec.resources.gpu = 1;
    let violations = plan(&ws, &active_permit()).expect_err("refused");
    let fields: Vec<&str> =
        violations.iter().map(|v| v.message.split(':').next().unwrap_or_default()).collect();
    assert_eq!(fields, ["spec.resources.cpu", "spec.resources.memory", "spec.resources.gpu"]);
    ws.spec.resources.cpu = Quantity("8".into());
    ws.spec.resources.memory = Quantity("32Gi".into());
    ws.spec.resources.gpu = 0;
    assert!(plan(&ws, &active_permit()).is_ok(), "the ceiling itself is allowed");
}

#[test]
fn the_workspace_limit_counts_only_workspaces_created_earlier() {
    let ws = workspace(); // no creation timestamp: sorts first
    let later = |n: usize| Sibling { created: format!("2026-0{n}-01T00:00:00Z"), name: format!("w{n}") };
    let siblings: Vec<Sibling> = (1..=5).map(later).collect();
    assert!(plan_with_siblings(&ws, &active_permit(), &siblings).is_ok());

    let mut newest = workspace();
    newest.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2026-09-01T00:00:00Z".parse().expect("timestamp"),
    ));
    assert_eq!(
        reasons_of(plan_with_siblings(&newest, &active_permit(), &siblings)),
        [reasons::WORKSPACE_LIMIT_REACHED]
    );
}

#[test]
fn only_a_request_within_the_grant_can_hold_a_slot() {
    let permit = active_permit();
    assert!(request_violations(&workspace(), &permit).is_empty(), "the example asks within the grant");
    let mut outsider = workspace();
    outsider.spec.users.push("mallory@elsewhere.example".into());
    assert_eq!(
        request_violations(&outsider, &permit).iter().map(|v| v.reason).collect::<Vec<_>>(),
        [reasons::USER_NOT_PERMITTED]
    );
    let mut inactive = permit.clone();
    inactive.status = None;
    assert!(
        request_violations(&workspace(), &inactive).is_empty(),
        "the permit's own state is not the request's fault"
    );
}

fn created_at(workspace: &mut Workspace, at: chrono::DateTime<chrono::Utc>) {
    let timestamp = k8s_openapi::jiff::Timestamp::from_millisecond(at.timestamp_millis()).expect("in range");
    workspace.metadata.creation_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(timestamp));
}

#[test]
fn a_workspace_lives_no_longer_than_its_tiers_lifetime() {
    use chrono::TimeZone;
    let mut permit = active_permit();
    permit.spec.valid_until = chrono::Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).single().expect("date");
    let created = chrono::Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).single().expect("date");
    let mut ws = workspace();
    ws.spec.expires_at = None;
    created_at(&mut ws, created);
    let tiers = haven_api::tier::TierProfiles::default();
    for (tier, lifetime) in [(0, None), (3, None), (4, Some(720))] {
        permit.spec.tier = tier;
        let controls = tiers.controls(&permit.spec);
        let expected =
            lifetime.map_or(permit.spec.valid_until, |hours| created + chrono::Duration::hours(hours));
        assert_eq!(workspace_expiry(&ws, &permit, &controls), expected, "tier {tier}");
    }
    // The workspace's own, earlier expiry still wins.
    permit.spec.tier = 4;
    let soon = created + chrono::Duration::hours(1);
    ws.spec.expires_at = Some(soon);
    assert_eq!(workspace_expiry(&ws, &permit, &tiers.controls(&permit.spec)), soon);
}

#[test]
fn an_environment_idle_past_its_timeout_is_stopped_until_activity_is_reported() {
    let mut permit = active_permit();
    permit.spec.tier = 4;
    permit.spec.reviewers = vec!["carol@example.org".into(), "dave@example.org".into()];
    permit.spec.environment.egress = haven_api::permit::EgressProfile::None;
    let controls = haven_api::tier::TierProfiles::default().controls(&permit.spec);
    // Whole seconds, as the API server records creation.
    let created =
        chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() - 9 * 3600, 0).expect("in range");
    let mut ws = workspace();
    ws.spec.expires_at = None;
    created_at(&mut ws, created);
    assert_eq!(idle_deadline(&ws, &controls, chrono::Utc::now()), Some(created + chrono::Duration::hours(8)));
    let plan = plan_workspace(&ws, &permit, &controls, &Default::default(), &[], chrono::Utc::now())
        .expect("allowed");
    assert!(plan.paused && plan.idle, "never active since creation 9 h ago: stopped");

    let active = chrono::Utc::now() - chrono::Duration::minutes(5);
    ws.metadata.annotations =
        Some([(haven_api::tier::LAST_ACTIVE_ANNOTATION.to_owned(), active.to_rfc3339())].into());
    let plan = plan_workspace(&ws, &permit, &controls, &Default::default(), &[], chrono::Utc::now())
        .expect("allowed");
    assert!(!plan.paused && !plan.idle, "active 5 minutes ago: running");

    permit.spec.tier = 3;
    let controls = haven_api::tier::TierProfiles::default().controls(&permit.spec);
    assert_eq!(
        idle_deadline(&ws, &controls, chrono::Utc::now()),
        None,
        "tier 3 has no idle timeout by default"
    );
}

#[test]
fn quantities_that_are_not_positive_are_refused_even_when_stored_before_the_schema_said_so() {
    let mut ws = workspace();
    ws.spec.resources.memory = Quantity("-16Gi".into());
    ws.spec.home_storage = Quantity("0".into());
    let violations = plan(&ws, &active_permit()).expect_err("refused");
    let named: Vec<(&str, &str)> =
        violations.iter().map(|v| (v.reason, v.message.split(':').next().unwrap_or_default())).collect();
    assert_eq!(
        named,
        [
            (reasons::INVALID_QUANTITY, "spec.resources.memory"),
            (reasons::INVALID_QUANTITY, "spec.homeStorage")
        ]
    );
}

#[test]
fn a_mirror_the_platform_does_not_allow_is_never_given_to_a_workspace() {
    let mut permit = active_permit();
    permit.spec.environment.egress = haven_api::permit::EgressProfile::PackageMirror;
    permit.spec.environment.package_mirror =
        Some(serde_json::from_value(serde_json::json!({"cidr": "10.0.0.0/8"})).expect("mirror"));
    assert_eq!(reasons_of(plan(&workspace(), &permit)), [reasons::MIRROR_NOT_ALLOWED]);
    permit.spec.environment.package_mirror =
        Some(serde_json::from_value(serde_json::json!({"cidr": "10.96.0.10/32"})).expect("mirror"));
    assert_eq!(reasons_of(plan(&workspace(), &permit)), [reasons::MIRROR_NOT_ALLOWED], "the Service range");
    permit.spec.environment.package_mirror =
        Some(serde_json::from_value(serde_json::json!({"cidr": "10.20.30.40/32"})).expect("mirror"));
    assert!(plan(&workspace(), &permit).is_ok());
}
