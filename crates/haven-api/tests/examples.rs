//! Every manifest in examples/ is a valid object of its kind: it round-trips through the Rust
//! types without losing a field, and passes the generated schema and its CEL rules.

mod common;

use common::{examples, schema_for};
use haven_api::{AirlockRequest, DataPermit, Workspace};
use kube::core::cel::Validator;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

/// Parses `value` as `T` and serializes it again.
fn round_trip<T: DeserializeOwned + Serialize>(name: &str, value: &Value) -> Value {
    let typed: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::to_value(&typed).expect("serializes")
}

/// Every key and value of `original` is present in `serialized` (defaults may add more).
/// Serde ignores unknown fields, so this is what catches a misspelt field in an example.
fn assert_nothing_lost(name: &str, path: &str, original: &Value, serialized: &Value) {
    match (original, serialized) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let other = b.get(key).unwrap_or_else(|| panic!("{name}: {path}.{key} was dropped"));
                assert_nothing_lost(name, &format!("{path}.{key}"), value, other);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{name}: {path} changed length");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_nothing_lost(name, &format!("{path}[{i}]"), x, y);
            }
        }
        // Timestamps are re-rendered (e.g. "2026-01-01T00:00:00Z"); compare them as instants.
        (Value::String(a), Value::String(b)) if a != b => {
            let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
            assert!(parse(a).is_some() && parse(a) == parse(b), "{name}: {path} changed: {a:?} -> {b:?}");
        }
        (a, b) => assert_eq!(a, b, "{name}: {path} changed"),
    }
}

fn serialized_example(name: &str, value: &Value) -> Value {
    match value["kind"].as_str() {
        Some("DataPermit") => round_trip::<DataPermit>(name, value),
        Some("Workspace") => round_trip::<Workspace>(name, value),
        Some("AirlockRequest") => round_trip::<AirlockRequest>(name, value),
        other => panic!("{name}: unexpected kind {other:?}"),
    }
}

#[test]
fn there_is_a_complete_and_a_minimal_example_of_each_kind() {
    let names: Vec<String> = examples().into_iter().map(|(name, _)| name).collect();
    for expected in [
        "datapermit.yaml",
        "datapermit-minimal.yaml",
        "workspace.yaml",
        "workspace-minimal.yaml",
        "airlockrequest-export.yaml",
        "airlockrequest-export-minimal.yaml",
    ] {
        assert!(names.iter().any(|n| n == expected), "examples/{expected} is missing");
    }
}

#[test]
fn every_example_round_trips_through_the_rust_types_without_losing_a_field() {
    for (name, value) in examples() {
        let serialized = serialized_example(&name, &value);
        assert_nothing_lost(&name, "", &value, &serialized);
        // And the serialized form parses back to the same object.
        assert_eq!(serialized_example(&name, &serialized), serialized, "{name}: second round trip differs");
    }
}

#[test]
fn every_example_is_valid_against_the_generated_schema() {
    for (name, value) in examples() {
        let kind = value["kind"].as_str().expect("kind").to_owned();
        let schema = openapi_as_json_schema(schema_for(&kind));
        let validator = jsonschema::validator_for(&schema).expect("schema compiles");
        let errors: Vec<String> =
            validator.iter_errors(&value).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

#[test]
fn every_example_passes_the_crd_cel_rules() {
    for (name, value) in examples() {
        let kind = value["kind"].as_str().expect("kind").to_owned();
        // Through the Rust types so defaulted fields are present, as the API server defaults them.
        let object = serialized_example(&name, &value);
        let result = Validator::new().validate(&schema_for(&kind), &object, Some(&object));
        assert!(result.is_ok(), "{name}: {result:?}");
    }
}

/// OpenAPI v3 `nullable` is not JSON Schema; turn `type: T, nullable: true` into `type: [T, null]`.
fn openapi_as_json_schema(mut schema: Value) -> Value {
    fn walk(node: &mut Value) {
        if let Value::Object(map) = node {
            if map.remove("nullable") == Some(Value::Bool(true))
                && let Some(Value::String(t)) = map.get("type").cloned()
            {
                map.insert("type".into(), serde_json::json!([t, "null"]));
            }
            map.values_mut().for_each(walk);
        }
        if let Value::Array(items) = node {
            items.iter_mut().for_each(walk);
        }
    }
    walk(&mut schema);
    schema
}

#[test]
fn user_names_with_control_characters_or_outer_spaces_are_refused_by_the_schema() {
    let errors_for = |mut value: Value, pointer: &str, user: &str| -> Vec<String> {
        *value.pointer_mut(pointer).expect("field") = serde_json::json!(user);
        let kind = value["kind"].as_str().expect("kind").to_owned();
        let schema = openapi_as_json_schema(schema_for(&kind));
        let validator = jsonschema::validator_for(&schema).expect("schema compiles");
        validator.iter_errors(&value).map(|e| e.instance_path().to_string()).collect()
    };
    let example = |file: &str| examples().into_iter().find(|(n, _)| n == file).expect("example").1;
    for (file, pointer) in [
        ("datapermit.yaml", "/spec/users/0"),
        ("datapermit.yaml", "/spec/reviewers/0"),
        ("workspace.yaml", "/spec/users/0"),
        ("airlockrequest-export.yaml", "/spec/requestedBy"),
    ] {
        for bad in [
            "alice\n@example.org",
            "alice@example.org\u{7}",
            " alice@example.org",
            "alice@example.org\t",
            "\u{85}bob",
        ] {
            assert_eq!(errors_for(example(file), pointer, bad), [pointer], "{file} {pointer} {bad:?}");
        }
        for good in ["alice@example.org", "oidc:Alice Smith", "ü@example.org"] {
            assert!(errors_for(example(file), pointer, good).is_empty(), "{file} {pointer} {good:?}");
        }
    }
}
