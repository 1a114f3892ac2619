//! The CRDs' CEL rules, evaluated client-side (kube-cel) on the examples with one thing
//! broken at a time. The e2e tier proves the same against a real API server.

mod common;

use common::{examples, schema_for};
use haven_api::{AirlockRequest, DataPermit, Workspace};
use kube::core::cel::Validator;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

fn example(file: &str) -> Value {
    examples().into_iter().find(|(name, _)| name == file).map(|(_, v)| v).expect("example exists")
}

/// Normalises through the Rust type, so defaults are filled in as the API server would.
fn typed<T: DeserializeOwned + Serialize>(value: Value) -> Value {
    serde_json::to_value(serde_json::from_value::<T>(value).expect("parses")).expect("serializes")
}

fn normalised(value: Value) -> Value {
    match value["kind"].as_str() {
        Some("DataPermit") => typed::<DataPermit>(value),
        Some("Workspace") => typed::<Workspace>(value),
        _ => typed::<AirlockRequest>(value),
    }
}

/// The CEL error messages for `new` (replacing `old`, or created when `old` is None).
fn cel_errors(new: Value, old: Option<Value>) -> String {
    let kind = new["kind"].as_str().expect("kind").to_owned();
    let (new, old) = (normalised(new), old.map(normalised));
    match Validator::new().validate(&schema_for(&kind), &new, old.as_ref()) {
        Ok(()) => String::new(),
        Err(errors) => format!("{errors:?}"),
    }
}

fn assert_rejected(new: Value, old: Option<Value>, expected: &str) {
    let errors = cel_errors(new, old);
    assert!(errors.contains(expected), "expected {expected:?} in {errors}");
}

#[test]
fn permit_must_end_after_it_starts() {
    let mut permit = example("datapermit.yaml");
    permit["spec"]["validUntil"] = json!("2025-12-31T00:00:00Z");
    assert_rejected(permit, None, "spec.validUntil must be after spec.validFrom");
}

#[test]
fn permit_reviewer_cannot_be_a_user() {
    let mut permit = example("datapermit.yaml");
    permit["spec"]["reviewers"] = json!(["carol@hdab.example", "alice@uhru.example"]);
    assert_rejected(permit, None, "spec.reviewers must not include any of spec.users");
}

#[test]
fn permit_cannot_require_more_approvals_than_reviewers() {
    let mut permit = example("datapermit-minimal.yaml");
    permit["spec"]["airlock"] = json!({"requiredApprovals": 2});
    assert_rejected(permit, None, "requiredApprovals cannot exceed the number of spec.reviewers");
}

#[test]
fn permit_revocation_needs_a_reason_and_is_final() {
    let mut revoked = example("datapermit.yaml");
    revoked["spec"]["revoked"] = json!(true);
    assert_rejected(revoked.clone(), None, "spec.revocationReason is required");

    revoked["spec"]["revocationReason"] = json!("Breach of the data access agreement");
    assert_eq!(cel_errors(revoked.clone(), None), "");
    let mut restored = revoked.clone();
    restored["spec"]["revoked"] = json!(false);
    assert_rejected(restored, Some(revoked), "spec.revoked cannot be undone");
}

#[test]
fn permit_id_is_immutable() {
    let old = example("datapermit.yaml");
    let mut new = old.clone();
    new["spec"]["permitId"] = json!("HDAB-2026-9999");
    assert_rejected(new, Some(old), "spec.permitId is immutable");
}

#[test]
fn column_rule_parameters_must_match_the_rule() {
    let mut permit = example("datapermit.yaml");
    permit["spec"]["datasets"][0]["columns"][2] = json!({"name": "postcode", "rule": "Truncate"});
    assert_rejected(permit.clone(), None, "truncate is required when rule is Truncate");
    permit["spec"]["datasets"][0]["columns"][2] =
        json!({"name": "postcode", "rule": "Keep", "truncate": {"length": 3}});
    assert_rejected(permit, None, "truncate is only allowed when rule is Truncate");
}

#[test]
fn package_mirror_may_not_reach_cloud_metadata() {
    let mut permit = example("datapermit.yaml");
    permit["spec"]["environment"]["packageMirror"]["cidr"] = json!("169.254.0.0/16");
    assert_rejected(permit, None, "must not include a cloud metadata or link-local address");
}

#[test]
fn workspace_permit_is_immutable_and_name_fits_a_namespace() {
    let old = example("workspace.yaml");
    let mut new = old.clone();
    new["spec"]["permit"] = json!("another-permit");
    assert_rejected(new, Some(old.clone()), "spec.permit is immutable");

    let mut long = old;
    long["metadata"]["name"] = json!("a".repeat(61));
    assert_rejected(long, None, "at most 60 characters");
}

#[test]
fn airlock_files_stay_inside_the_outbox() {
    let mut request = example("airlockrequest-export.yaml");
    request["spec"]["files"] = json!(["tables/../../../etc/shadow"]);
    assert_rejected(request.clone(), None, "'..' is not allowed");
    request["spec"]["files"] = json!(["/etc/shadow"]);
    assert_rejected(request, None, "an absolute path is not allowed");
}

#[test]
fn airlock_requester_cannot_review_their_own_request() {
    let mut request = example("airlockrequest-export.yaml");
    request["spec"]["reviews"] = json!([{"reviewer": "alice@uhru.example", "decision": "Approve"}]);
    assert_rejected(request, None, "the requester cannot review their own request");
}

#[test]
fn airlock_reviews_are_append_only() {
    let mut old = example("airlockrequest-export.yaml");
    old["spec"]["reviews"] = json!([{"reviewer": "carol@hdab.example", "decision": "Approve"}]);

    let mut appended = old.clone();
    appended["spec"]["reviews"]
        .as_array_mut()
        .expect("reviews")
        .push(json!({"reviewer": "dave@hdab.example", "decision": "Approve"}));
    assert_eq!(cel_errors(appended, Some(old.clone())), "");

    let mut removed = old.clone();
    removed["spec"]["reviews"] = json!([]);
    assert_rejected(removed, Some(old.clone()), "spec.reviews is append-only");

    let mut edited = old.clone();
    edited["spec"]["reviews"][0]["decision"] = json!("Reject");
    edited["spec"]["reviews"][0]["comment"] = json!("changed my mind");
    assert_rejected(edited, Some(old), "spec.reviews is append-only");
}

#[test]
fn airlock_rejection_needs_a_comment() {
    let mut request = example("airlockrequest-export-minimal.yaml");
    request["spec"]["reviews"] = json!([{"reviewer": "frank@example.org", "decision": "Reject"}]);
    assert_rejected(request, None, "comment is required when decision is Reject");
}

#[test]
fn every_quantity_must_be_greater_than_zero() {
    let fields: [(&str, &[&str]); 5] = [
        ("workspace.yaml", &["spec", "resources", "memory"]),
        ("workspace.yaml", &["spec", "resources", "cpu"]),
        ("workspace.yaml", &["spec", "homeStorage"]),
        ("datapermit.yaml", &["spec", "environment", "resourceCeiling", "cpu"]),
        ("datapermit.yaml", &["spec", "airlock", "maxFileSize"]),
    ];
    for (file, path) in fields {
        for bad in [json!("-16Gi"), json!("0"), json!("-1"), json!(0), json!("0.0"), json!("-500m")] {
            let mut object = example(file);
            let (last, parents) = path.split_last().expect("a path");
            let parent = parents.iter().fold(&mut object, |v, key| {
                if v[*key].is_null() {
                    v[*key] = json!({});
                }
                &mut v[*key]
            });
            parent[*last] = bad.clone();
            assert_rejected(object, None, "must be a quantity greater than zero");
        }
        let mut object = example(file);
        let (last, parents) = path.split_last().expect("a path");
        let parent = parents.iter().fold(&mut object, |v, key| {
            if v[*key].is_null() {
                v[*key] = json!({});
            }
            &mut v[*key]
        });
        parent[*last] = json!("500m");
        assert_eq!(cel_errors(object, None), "", "{path:?}: 500m is positive");
    }
}

const GOOD_IMAGES: &[&str] = &[
    "alpine",
    "alpine:3",
    "library/alpine:3.20",
    "quay.io/jupyter/scipy-notebook:2026-01-05",
    "localhost:5000/team/env:v1.2_3",
    "registry.example.org/a/b/c__d-e.f:latest",
    "ghcr.io/org/img@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "ghcr.io/org/img:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
];

const BAD_IMAGES: &[&str] = &[
    "quay.io/jupyter/scipy notebook:1",
    "Quay.io/Jupyter/Notebook",
    "img:",
    "img:-tag",
    "img@sha256:short",
    "/img",
    "img/",
    "img//x",
    "img:1:2",
    "img\n:1",
    "img\t",
    "-img",
    "img..x",
];

#[test]
fn a_workspace_image_must_be_an_image_reference() {
    for good in GOOD_IMAGES {
        let mut workspace = example("workspace.yaml");
        workspace["spec"]["image"] = json!(good);
        assert_eq!(cel_errors(workspace, None), "", "{good} is a reference");
    }
    for bad in BAD_IMAGES {
        let mut workspace = example("workspace.yaml");
        workspace["spec"]["image"] = json!(bad);
        assert_rejected(workspace, None, "spec.image must be an image reference");
    }
}

#[test]
fn allowed_images_are_references_or_references_ending_in_a_wildcard() {
    let patterns = ["quay.io/jupyter/scipy-notebook:*", "rocker/rstudio:4.5.*", "quay.io/jupyter/*", "img*"];
    for good in GOOD_IMAGES.iter().chain(&patterns) {
        let mut permit = example("datapermit.yaml");
        permit["spec"]["environment"]["allowedImages"] = json!([good]);
        assert_eq!(cel_errors(permit, None), "", "{good} is allowed as a pattern");
    }
    for bad in BAD_IMAGES.iter().chain(&["*", "img:*:*", "img*x", "quay.io/jupyter scipy:*"]) {
        let mut permit = example("datapermit.yaml");
        permit["spec"]["environment"]["allowedImages"] = json!([bad]);
        assert_rejected(permit, None, "spec.environment.allowedImages entries must be image references");
    }
}

#[test]
fn airlock_files_must_name_files_inside_the_outbox() {
    let cases = [
        (".", "not the outbox itself"),
        ("./", "no empty path segment"),
        ("results/", "no empty path segment"),
        ("results//t.csv", "no empty path segment"),
        ("a\u{7}b.csv", "control characters"),
        ("a\u{85}b.csv", "control characters"),
        ("a\\b.csv", "backslashes"),
        ("./.", "not the outbox itself"),
    ];
    for (bad, expected) in cases {
        let mut request = example("airlockrequest-export.yaml");
        request["spec"]["files"] = json!([bad]);
        assert_rejected(request, None, expected);
    }
    for good in ["t.csv", "./t.csv", "results/t.csv", ".hidden/t.csv", "a/./b.csv"] {
        let mut request = example("airlockrequest-export.yaml");
        request["spec"]["files"] = json!([good]);
        assert_eq!(cel_errors(request, None), "", "{good:?} is a file in the outbox");
    }
}

#[test]
fn a_package_mirror_is_a_cidr_never_a_metadata_or_link_local_address() {
    let with_mirror = |cidr: &str| {
        let mut permit = example("datapermit.yaml");
        permit["spec"]["environment"]["egress"] = json!("PackageMirror");
        permit["spec"]["environment"]["packageMirror"] = json!({"cidr": cidr, "ports": [443]});
        permit
    };
    // How wide, and where the cluster's own ranges are, is the platform's to say: the tier
    // admission policy judges those with the chart's values (e2e/invalid/permit-mirror-*).
    for not_a_cidr in ["10.20.30.40", "mirror.example.org", "10.20.30.0/33"] {
        assert_rejected(with_mirror(not_a_cidr), None, "must be a CIDR");
    }
    for metadata in [
        "169.254.169.254/32",
        "169.254.169.0/24",
        "169.254.3.0/24",
        "fd00:ec2::254/128",
        "fd00:ec2::/64",
        "fe80::/64",
    ] {
        assert_rejected(with_mirror(metadata), None, "cloud metadata or link-local");
    }
    for mirror in ["10.20.30.40/32", "10.20.30.0/24", "2001:db8:1:2::/64", "2001:db8::10/128"] {
        assert_eq!(cel_errors(with_mirror(mirror), None), "", "{mirror} is a mirror");
    }
}

#[test]
fn users_and_reviewers_are_people_never_system_identities() {
    let mut permit = example("datapermit.yaml");
    permit["spec"]["reviewers"] = json!(["system:serviceaccount:haven-system:haven"]);
    assert_rejected(permit, None, "spec.reviewers must name people, not system: identities");
    let mut permit = example("datapermit.yaml");
    permit["spec"]["users"] = json!(["system:admin"]);
    assert_rejected(permit, None, "spec.users must name people, not system: identities");
}
