//! Schema fragments shared by the three resources.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use schemars::{Schema, SchemaGenerator, json_schema};

/// A Kubernetes quantity ("500m", "8Gi"), validated at admission with the same pattern the
/// Kubernetes API uses, so a typo is rejected with the field's name. Every quantity in Haven
/// is a size or an amount of compute, so it must also be greater than zero: a negative or
/// zero one would only fail later, on a child object the API server refuses.
pub fn quantity(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
        "maxLength": 64,
        "x-kubernetes-int-or-string": true,
        "x-kubernetes-validations": [{
            "rule": "!isQuantity(string(self)) || quantity(string(self)).isGreaterThan(quantity('0'))",
            "message": "must be a quantity greater than zero, such as 500m, 2 or 8Gi",
        }],
    })
}

/// A user name as the API server gives it (`--oidc-username-claim`, a certificate's CN): no
/// control character anywhere and no space at either end, so what Haven grants is exactly a
/// name someone can log in as, and what it logs cannot be forged into several lines.
pub const USER_NAME: &str = r"^[^\s\p{Cc}]([^\p{Cc}]*[^\s\p{Cc}])?$";

/// One component of a repository path: lower case, digits, single separators.
const PATH_COMPONENT: &str = "[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*";
/// A registry host (optionally with a port) as the distribution reference grammar has it.
const REGISTRY: &str =
    "[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?([.][a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:[0-9]+)?";
const TAG: &str = ":[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
const DIGEST: &str = "@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";

/// `registry/path/name` without tag or digest.
fn repository() -> String {
    format!("({REGISTRY}/)?{PATH_COMPONENT}(/{PATH_COMPONENT})*")
}

/// An image reference (`[registry[:port]/]name[:tag][@digest]`), as RE2 for CEL; written
/// without backslashes so it needs no escaping inside a CEL string.
pub fn image_reference_regex() -> String {
    format!("^{}({TAG})?({DIGEST})?$", repository())
}

/// An `allowedImages` entry: an image reference, or the start of one followed by `*`: a
/// repository and `:*` (any tag), `:4.5.*` (tags starting so), `/*` (any repository under it)
/// or `*` (repositories starting so).
pub fn image_pattern_regex() -> String {
    let repository = repository();
    format!("^({repository}({TAG})?({DIGEST})?|{repository}(/|:([A-Za-z0-9_][A-Za-z0-9_.-]{{0,126}})?)?[*])$")
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
