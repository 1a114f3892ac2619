//! The generated CRDs are structural, documented, bounded and carry the designed printer
//! columns; crds/ holds exactly what `haven crd` generates.

mod common;

use common::{crd_for, repo_root, schema_for, schema_nodes};
use haven_api::crd;
use serde_json::Value;

const KINDS: [&str; 3] = ["DataPermit", "Workspace", "AirlockRequest"];

#[test]
fn crds_directory_matches_the_generated_crds() {
    for generated in crd::all() {
        let name = generated.metadata.name.clone().expect("CRD has a name");
        let path = repo_root().join("crds").join(format!("{name}.yaml"));
        let on_disk = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run `make crds`", path.display()));
        let expected = crd::to_yaml(&[generated]).expect("renders");
        assert!(on_disk == expected, "{} is stale; run `make crds` and commit it", path.display());
    }
}

#[test]
fn crds_directory_holds_the_generated_admission_policy() {
    let path = repo_root().join("crds").join("admission-policy.yaml");
    let on_disk =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}; run `make crds`", path.display()));
    let expected = haven_api::admission::to_yaml().expect("renders");
    assert!(on_disk == expected, "{} is stale; run `make crds` and commit it", path.display());
}

#[test]
fn every_schema_node_is_typed() {
    for kind in KINDS {
        for (path, node) in schema_nodes(&schema_for(kind)) {
            let typed = node.get("type").is_some()
                || node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
            assert!(typed, "{kind}{path} has no type");
            for forbidden in ["$ref", "oneOf", "allOf", "not"] {
                assert!(node.get(forbidden).is_none(), "{kind}{path} uses {forbidden}");
            }
        }
    }
}

#[test]
fn no_object_accepts_unknown_fields() {
    for kind in KINDS {
        for (path, node) in schema_nodes(&schema_for(kind)) {
            assert!(
                node.get("x-kubernetes-preserve-unknown-fields").is_none(),
                "{kind}{path} preserves unknown fields"
            );
            if node.get("type") == Some(&Value::String("object".into()))
                && !path.is_empty()
                && path != ".metadata"
            {
                assert!(
                    node.get("properties").is_some() || node.get("additionalProperties").is_some(),
                    "{kind}{path} is an object with no properties: any field would be accepted"
                );
            }
        }
    }
}

#[test]
fn every_spec_and_status_field_is_documented_for_kubectl_explain() {
    for kind in KINDS {
        for (path, node) in schema_nodes(&schema_for(kind)) {
            let documented_part = path.starts_with(".spec") || path.starts_with(".status");
            let list_item = path.ends_with("[]");
            if documented_part && !list_item {
                let description = node.get("description").and_then(Value::as_str).unwrap_or_default();
                assert!(!description.trim().is_empty(), "{kind}{path} has no description");
            }
        }
    }
}

#[test]
fn every_spec_list_is_bounded_and_has_a_list_type() {
    for kind in KINDS {
        for (path, node) in schema_nodes(&schema_for(kind)) {
            if path.starts_with(".spec") && node.get("type") == Some(&Value::String("array".into())) {
                assert!(node.get("maxItems").is_some(), "{kind}{path} has no maxItems");
                assert!(
                    node.get("x-kubernetes-list-type").is_some(),
                    "{kind}{path} has no x-kubernetes-list-type"
                );
            }
        }
    }
}

#[test]
fn every_cel_rule_explains_itself() {
    for kind in KINDS {
        for (path, node) in schema_nodes(&schema_for(kind)) {
            for rule in node.get("x-kubernetes-validations").and_then(Value::as_array).into_iter().flatten() {
                let message = rule.get("message").and_then(Value::as_str).unwrap_or_default();
                assert!(message.len() > 10, "{kind}{path}: rule {} has no useful message", rule["rule"]);
            }
        }
    }
}

#[test]
fn defaulted_fields_are_never_nullable() {
    for kind in KINDS {
        for (path, node) in schema_nodes(&schema_for(kind)) {
            if node.get("default").is_some() {
                assert!(node.get("nullable").is_none(), "{kind}{path} has a default but accepts null");
            }
        }
    }
}

fn printer_columns(kind: &str) -> Vec<String> {
    crd_for(kind).spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|column| column.name.clone())
        .collect()
}

#[test]
fn printer_columns_match_the_design() {
    assert_eq!(
        printer_columns("DataPermit"),
        ["Permit ID", "Tier", "Phase", "Valid Until", "Workspaces", "Age"]
    );
    assert_eq!(printer_columns("Workspace"), ["Permit", "Phase", "Namespace", "Users", "Expires", "Age"]);
    assert_eq!(
        printer_columns("AirlockRequest"),
        ["Direction", "Files", "Phase", "Checks", "Approvals", "Age"]
    );
}

#[test]
fn scopes_short_names_and_status_subresources_match_the_design() {
    let expectations = [
        ("DataPermit", "Cluster", vec!["dp", "permit"]),
        ("Workspace", "Cluster", vec!["ws"]),
        ("AirlockRequest", "Namespaced", vec!["ar"]),
    ];
    for (kind, scope, short_names) in expectations {
        let crd = crd_for(kind);
        assert_eq!(crd.spec.scope, scope, "{kind} scope");
        assert_eq!(crd.spec.names.short_names.clone().unwrap_or_default(), short_names, "{kind} short names");
        assert_eq!(crd.spec.group, "haven.io");
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(
            version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(),
            "{kind} has no status subresource"
        );
    }
}
