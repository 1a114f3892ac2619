//! Schema fragments shared by the three resources.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use schemars::{Schema, SchemaGenerator, json_schema};

/// A Kubernetes quantity ("500m", "8Gi"), validated at admission with the same
/// pattern the Kubernetes API uses, so a typo is rejected with the field's name.
pub fn quantity(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
        "x-kubernetes-int-or-string": true,
    })
}

/// Kubernetes conditions: a list keyed by `type`, as `kubectl wait --for=condition=...` expects.
pub fn conditions(generator: &mut SchemaGenerator) -> Schema {
    let mut schema =
        generator.subschema_for::<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert("x-kubernetes-list-map-keys".into(), serde_json::json!(["type"]));
    schema
}

pub(crate) fn quantity_of(value: &str) -> Quantity {
    Quantity(value.to_owned())
}
