//! Helpers shared by haven-api's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use haven_api::crd;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every example manifest: (file name, parsed YAML as JSON).
pub fn examples() -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("examples"))
        .expect("examples/ exists")
        .map(|entry| entry.expect("readable dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable example");
            let value: Value =
                serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.file_name().expect("file name").to_string_lossy().into_owned(), value)
        })
        .collect()
}

/// The generated CRD serving `kind`.
pub fn crd_for(kind: &str) -> CustomResourceDefinition {
    crd::all()
        .into_iter()
        .find(|crd| crd.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for kind {kind}"))
}

/// The openAPIV3Schema of the CRD serving `kind`, as JSON.
pub fn schema_for(kind: &str) -> Value {
    let crd = crd_for(kind);
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("CRD has a schema");
    serde_json::to_value(schema).expect("schema serializes")
}

/// Every schema node below `schema` with its JSON path (e.g. `.spec.users[]`).
pub fn schema_nodes(schema: &Value) -> Vec<(String, Value)> {
    fn walk(path: String, node: &Value, out: &mut Vec<(String, Value)>) {
        out.push((path.clone(), node.clone()));
        if let Some(properties) = node.get("properties").and_then(Value::as_object) {
            for (name, child) in properties {
                walk(format!("{path}.{name}"), child, out);
            }
        }
        if let Some(items) = node.get("items") {
            walk(format!("{path}[]"), items, out);
        }
        if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
            walk(format!("{path}{{}}"), values, out);
        }
    }
    let mut out = Vec::new();
    walk(String::new(), schema, &mut out);
    out
}
