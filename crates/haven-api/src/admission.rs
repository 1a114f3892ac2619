//! The admission rules that need to know who is asking (`request.userInfo`), which a CRD
//! schema cannot see: a ValidatingAdmissionPolicy with CEL, so no webhook has to run.
//!
//! On AirlockRequests (the main resource only; the operator writes `/status`):
//! - `spec.requestedBy` is the user who creates the request;
//! - a review can only be added in one's own name, never to one's own request, and only
//!   once the checks are done and before a decision (phase `AwaitingReview`);
//! - reviews are never changed or removed (the CRD says so too; repeated here so the rule
//!   holds even if someone edits the CRD);
//! - only the requester can cancel;
//! - no finalizers or ownerReferences: a patch could otherwise have the garbage collector
//!   delete the request, or hold up its namespace's deletion.

use k8s_openapi::api::admissionregistration::v1::{
    MatchResources, NamedRuleWithOperations, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    ValidatingAdmissionPolicyBindingSpec, ValidatingAdmissionPolicySpec, Validation, Variable,
};
use kube::api::ObjectMeta;

use crate::constants::{GROUP, labels};

/// Name of the policy and of its binding.
pub const AIRLOCK_POLICY: &str = "haven-airlock-requests";

/// The policy and its binding, in the order they should be applied.
pub fn airlock_policy() -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    let metadata = || ObjectMeta {
        name: Some(AIRLOCK_POLICY.into()),
        labels: Some([(labels::MANAGED_BY.to_owned(), labels::MANAGED_BY_VALUE.to_owned())].into()),
        ..ObjectMeta::default()
    };
    let policy = ValidatingAdmissionPolicy {
        metadata: metadata(),
        spec: Some(ValidatingAdmissionPolicySpec {
            failure_policy: Some("Fail".into()),
            match_constraints: Some(MatchResources {
                resource_rules: Some(vec![NamedRuleWithOperations {
                    api_groups: Some(vec![GROUP.into()]),
                    api_versions: Some(vec!["*".into()]),
                    operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
                    resources: Some(vec!["airlockrequests".into()]),
                    ..NamedRuleWithOperations::default()
                }]),
                ..MatchResources::default()
            }),
            variables: Some(vec![
                variable("user", "request.userInfo.username"),
                variable("reviews", "has(object.spec.reviews) ? object.spec.reviews : []"),
                variable(
                    "earlierReviews",
                    "oldObject != null && has(oldObject.spec.reviews) ? oldObject.spec.reviews : []",
                ),
                variable("newReviews", "variables.reviews.filter(r, !(r in variables.earlierReviews))"),
                variable(
                    "phase",
                    "oldObject != null && has(oldObject.status) && has(oldObject.status.phase) ? oldObject.status.phase : 'Submitted'",
                ),
                variable(
                    "wasCancelled",
                    "oldObject != null && has(oldObject.spec.cancelled) && oldObject.spec.cancelled",
                ),
                variable("isCancelled", "has(object.spec.cancelled) && object.spec.cancelled"),
            ]),
            validations: Some(vec![
                rule(
                    "request.operation != 'CREATE' || object.spec.requestedBy == variables.user",
                    "'spec.requestedBy must be the user creating the request (' + variables.user + '), not ' + object.spec.requestedBy",
                ),
                rule(
                    "variables.newReviews.all(r, r.reviewer == variables.user)",
                    "'spec.reviews: a review can only be added in your own name (' + variables.user + ')'",
                ),
                rule(
                    "variables.reviews.all(r, r.reviewer != object.spec.requestedBy)",
                    "'spec.reviews: ' + object.spec.requestedBy + ' requested this and cannot review it (four-eyes)'",
                ),
                rule(
                    "size(variables.newReviews) == 0 || variables.phase == 'AwaitingReview'",
                    "'spec.reviews: reviews can be added only while the request is AwaitingReview (checked, not yet decided); it is ' + variables.phase",
                ),
                rule(
                    "variables.earlierReviews.all(e, e in variables.reviews)",
                    "'spec.reviews is append-only: an earlier review cannot be changed or removed'",
                ),
                rule(
                    "!variables.isCancelled || variables.wasCancelled || variables.user == object.spec.requestedBy",
                    "'spec.cancelled: only the requester (' + object.spec.requestedBy + ') can cancel this request'",
                ),
                rule(
                    "(!has(object.metadata.finalizers) || size(object.metadata.finalizers) == 0) && (!has(object.metadata.ownerReferences) || size(object.metadata.ownerReferences) == 0)",
                    "'metadata: an AirlockRequest has no finalizers or ownerReferences (they could hold up or delete the record)'",
                ),
            ]),
            ..ValidatingAdmissionPolicySpec::default()
        }),
        status: None,
    };
    let binding = ValidatingAdmissionPolicyBinding {
        metadata: metadata(),
        spec: Some(ValidatingAdmissionPolicyBindingSpec {
            policy_name: Some(AIRLOCK_POLICY.into()),
            validation_actions: Some(vec!["Deny".into()]),
            ..ValidatingAdmissionPolicyBindingSpec::default()
        }),
    };
    (policy, binding)
}

/// The policy and binding as one YAML stream, as `crds/` ships them.
pub fn to_yaml() -> Result<String, serde_saphyr::ser_error::Error> {
    let (policy, binding) = airlock_policy();
    let mut out = String::from("# Generated by `haven crd` (make crds); do not edit.\n---\n");
    out.push_str(&serde_saphyr::to_string(&policy)?);
    out.push_str("---\n");
    out.push_str(&serde_saphyr::to_string(&binding)?);
    Ok(out)
}

fn variable(name: &str, expression: &str) -> Variable {
    Variable { name: name.into(), expression: expression.into() }
}

/// A rule whose message names the field, computed so it can say who is asking.
fn rule(expression: &str, message_expression: &str) -> Validation {
    Validation {
        expression: expression.into(),
        message_expression: Some(message_expression.into()),
        reason: Some("Forbidden".into()),
        ..Validation::default()
    }
}
