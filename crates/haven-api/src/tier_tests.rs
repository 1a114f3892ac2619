use super::*;
use crate::DataPermit;

/// The minimal example permit (tier 3 by default, one reviewer).
fn permit() -> DataPermitSpec {
    let path = format!("{}/../../examples/datapermit-minimal.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("example exists");
    let permit: DataPermit = serde_saphyr::from_str(&text).expect("example parses");
    permit.spec
}

fn permit_at_tier(tier: u8) -> DataPermitSpec {
    DataPermitSpec { tier, ..permit() }
}

fn fields(violations: &[TierViolation]) -> Vec<&'static str> {
    violations.iter().map(|v| v.field).collect()
}

#[test]
fn an_unconfigured_permit_takes_its_tiers_profile() {
    let tiers = TierProfiles::default();
    let spec = permit();
    assert_eq!(spec.tier, 3);
    let controls = tiers.controls(&spec);
    assert_eq!(controls.egress, EgressProfile::None, "the permit asked for no egress: tighter than the tier");
    assert_eq!(controls.required_approvals, 1);
    assert_eq!(controls.allowed_file_types, ["csv", "txt", "md", "pdf", "png", "json"]);
    assert!(controls.import_review);
    assert_eq!(controls.max_workspace_lifetime, None, "tier 3 keeps workspaces until their permit ends");
    assert_eq!(controls.idle_timeout, None);
    assert!(controls.require_mfa);
    assert!(controls.in_force(&spec).require_mfa, "status.controls records it");
    assert_eq!(controls.gateway_annotations["haven.io/clipboard-out"], "disabled");
    assert!(tiers.violations(&spec).is_empty());
}

#[test]
fn the_gateway_requires_mfa_from_tier_2() {
    let tiers = TierProfiles::default();
    let required: Vec<bool> = TIERS.map(|tier| tiers.profile(tier).require_mfa).collect();
    assert_eq!(required, [false, false, true, true, true]);
}

#[test]
fn each_default_tier_is_at_least_as_strict_as_the_one_below() {
    let tiers = TierProfiles::default();
    for tier in 1..=4 {
        let (lower, higher) = (tiers.profile(tier - 1), tiers.profile(tier));
        assert!(higher.egress <= lower.egress, "egress of tier {tier}");
        assert!(higher.required_approvals >= lower.required_approvals, "approvals of tier {tier}");
        assert!(
            higher.allowed_file_types.iter().all(|t| lower.allowed_file_types.contains(t)),
            "types of {tier}"
        );
        assert!(higher.import_review >= lower.import_review, "import review of tier {tier}");
        assert!(higher.require_mfa >= lower.require_mfa, "MFA of tier {tier}");
        assert!(
            shorter(higher.max_workspace_lifetime, lower.max_workspace_lifetime)
                == higher.max_workspace_lifetime
        );
        assert!(shorter(higher.idle_timeout, lower.idle_timeout) == higher.idle_timeout);
    }
    let top = tiers.profile(4);
    assert_eq!((top.egress, top.required_approvals), (EgressProfile::None, 2));
    assert_eq!(tiers.profile(0).egress, EgressProfile::Internet);
}

#[test]
fn a_permit_may_tighten_its_tier() {
    let tiers = TierProfiles::default();
    let mut spec = permit();
    spec.tier = 1;
    spec.reviewers = vec!["r1".into(), "r2".into()];
    spec.environment.egress = EgressProfile::PackageMirror;
    spec.environment.max_workspace_lifetime = Some("48h".into());
    spec.environment.idle_timeout = Some("30m".into());
    spec.environment.require_mfa = Some(true);
    spec.airlock.required_approvals = Some(2);
    spec.airlock.import_review = Some(true);
    spec.airlock.allowed_file_types = Some(vec!["csv".into()]);
    assert!(tiers.violations(&spec).is_empty(), "{:?}", tiers.violations(&spec));
    let controls = tiers.controls(&spec);
    assert_eq!(controls.egress, EgressProfile::PackageMirror);
    assert_eq!(controls.required_approvals, 2);
    assert_eq!(controls.allowed_file_types, ["csv"]);
    assert!(controls.import_review);
    assert_eq!(controls.max_workspace_lifetime, Some(Duration::hours(48)));
    assert_eq!(controls.idle_timeout, Some(Duration::minutes(30)));
    assert!(controls.require_mfa, "tier 1 does not require MFA, but the permit may");
    assert!(!tiers.controls(&permit_at_tier(1)).require_mfa);
}

#[test]
fn a_permit_may_not_waive_mfa_its_tier_requires() {
    let tiers = TierProfiles::default();
    let mut spec = permit_at_tier(2);
    spec.environment.require_mfa = Some(false);
    let violations = tiers.violations(&spec);
    assert_eq!(fields(&violations), ["spec.environment.requireMfa"]);
    assert_eq!(
        violations[0].message,
        "spec.environment.requireMfa: tier 2 requires a second factor at the gateway"
    );
    assert!(tiers.controls(&spec).require_mfa, "clamped to the tier's");
    // Where the tier does not require it, saying so is no violation.
    let mut open = permit_at_tier(1);
    open.environment.require_mfa = Some(false);
    assert!(tiers.violations(&open).is_empty());
    assert!(!tiers.controls(&open).require_mfa);
}

#[test]
fn a_permit_that_loosens_its_tier_is_named_field_by_field_and_clamped() {
    let tiers = TierProfiles::default();
    let mut spec = permit();
    spec.tier = 4;
    spec.environment.egress = EgressProfile::PackageMirror;
    spec.environment.max_workspace_lifetime = Some("2000h".into());
    spec.environment.idle_timeout = Some("24h".into());
    spec.environment.require_mfa = Some(false);
    spec.airlock.required_approvals = Some(1);
    spec.airlock.import_review = Some(false);
    spec.airlock.allowed_file_types = Some(vec!["csv".into(), "png".into(), "json".into()]);
    let violations = tiers.violations(&spec);
    assert_eq!(
        fields(&violations),
        [
            "spec.reviewers",
            "spec.environment.egress",
            "spec.environment.maxWorkspaceLifetime",
            "spec.environment.idleTimeout",
            "spec.environment.requireMfa",
            "spec.airlock.requiredApprovals",
            "spec.airlock.importReview",
            "spec.airlock.allowedFileTypes",
        ]
    );
    assert!(violations.iter().all(|v| v.message.starts_with(v.field)), "{violations:?}");
    assert_eq!(
        violations[1].message,
        "spec.environment.egress: PackageMirror is more open than tier 4 allows (at most None)"
    );
    assert_eq!(violations[7].message, "spec.airlock.allowedFileTypes: tier 4 does not allow png, json");
    // Whatever slipped past admission, the tier's limits are what is enforced.
    let controls = tiers.controls(&spec);
    assert_eq!(controls.egress, EgressProfile::None);
    assert_eq!(controls.required_approvals, 2);
    assert_eq!(controls.allowed_file_types, ["csv"]);
    assert!(controls.import_review);
    assert_eq!(controls.max_workspace_lifetime, Some(Duration::hours(720)));
    assert_eq!(controls.idle_timeout, Some(Duration::hours(8)));
    assert!(controls.require_mfa);
}

#[test]
fn the_config_map_form_round_trips() {
    let tiers = TierProfiles::default();
    let data = tiers.to_config_map();
    assert_eq!(data["4.egress"], "None");
    assert_eq!(data["4.allowedFileTypes"], "csv,txt,md,pdf");
    assert_eq!(data["4.maxWorkspaceLifetime"], "720h");
    assert_eq!(data["0.maxWorkspaceLifetime"], "");
    assert_eq!((data["1.requireMfa"].as_str(), data["2.requireMfa"].as_str()), ("false", "true"));
    assert_eq!(TierProfiles::from_config_map(&data), Ok(tiers));
}

#[test]
fn a_bad_or_missing_config_map_key_is_named() {
    let mut data = TierProfiles::default().to_config_map();
    data.insert("2.egress".into(), "Everywhere".into());
    let error = TierProfiles::from_config_map(&data).expect_err("bad egress");
    assert_eq!(error.key, "2.egress");
    assert!(error.to_string().contains("None, PackageMirror or Internet"), "{error}");

    let mut data = TierProfiles::default().to_config_map();
    data.insert("3.idleTimeout".into(), "a week".into());
    assert_eq!(TierProfiles::from_config_map(&data).expect_err("bad duration").key, "3.idleTimeout");

    let mut data = TierProfiles::default().to_config_map();
    data.remove("1.importReview");
    let error = TierProfiles::from_config_map(&data).expect_err("missing");
    assert_eq!(error.to_string(), "tier configuration key 1.importReview: is missing");

    let mut data = TierProfiles::default().to_config_map();
    data.insert("3.requireMfa".into(), "yes".into());
    let error = TierProfiles::from_config_map(&data).expect_err("malformed");
    assert_eq!(error.to_string(), "tier configuration key 3.requireMfa: must be true or false");
    data.remove("3.requireMfa");
    let error = TierProfiles::from_config_map(&data).expect_err("missing");
    assert_eq!(error.to_string(), "tier configuration key 3.requireMfa: is missing");
}
