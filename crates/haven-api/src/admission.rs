//! The admission rules a CRD schema cannot express, as ValidatingAdmissionPolicies with CEL, so
//! no webhook has to run: those that need to know who is asking (`request.userInfo`), and
//! those that compare a DataPermit with its tier's profile (configuration, not schema).
//!
//! On AirlockRequests (the main resource only; the operator writes `/status`):
//! - `spec.requestedBy` is the user who creates the request;
//! - the person a request was made for (annotation `haven.io/requested-for`) never reviews it;
//! - a review can only be added in one's own name, never to one's own request, and only
//!   once the checks are done and before a decision (phase `AwaitingReview`);
//! - reviews are never changed or removed (the CRD says so too; repeated here so the rule
//!   holds even if someone edits the CRD);
//! - only the requester can cancel;
//! - no finalizers or ownerReferences: a patch could otherwise have the garbage collector
//!   delete the request, or hold up its namespace's deletion.

use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, MatchResources, NamedRuleWithOperations, ParamKind, ParamRef, ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding, ValidatingAdmissionPolicyBindingSpec, ValidatingAdmissionPolicySpec,
    Validation, Variable,
};
use kube::api::ObjectMeta;

use crate::constants::{GROUP, labels};
use crate::mirror::{CLUSTER_RANGES_KEY, WIDEST_IPV4_KEY, WIDEST_IPV6_KEY};

/// Name of the policy and of its binding.
pub const AIRLOCK_POLICY: &str = "haven-airlock-requests";

/// Annotation on an AirlockRequest made by a service on a person's behalf (a data site's
/// federation agent exporting a task's outputs): that person, who may not review it either.
pub const REQUESTED_FOR_ANNOTATION: &str = "haven.io/requested-for";

/// Name of the analysis-task policy and of its binding.
pub const TASK_POLICY: &str = "haven-analysis-tasks";

/// The RBAC verb on `analysistasks` that lets a service submit (and cancel) tasks in a
/// person's name: the access gateway's TES API, after asking RBAC whether that person may.
/// Nobody else holds it (a cluster admin's wildcard does).
pub const SUBMIT_FOR_VERB: &str = "submit-for";

/// Name of the tier policy and of its binding.
pub const TIER_POLICY: &str = "haven-permit-tiers";

/// The ConfigMap, in the operator's namespace, holding the tier profiles
/// ([`crate::tier::TierProfiles::to_config_map`]); the chart renders it from its `tiers`.
pub const TIER_CONFIG_MAP: &str = "haven-tiers";

fn policy_metadata(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        labels: Some([(labels::MANAGED_BY.to_owned(), labels::MANAGED_BY_VALUE.to_owned())].into()),
        ..ObjectMeta::default()
    }
}

/// Matches creates and updates of the main resource (never `/status`, which the operator writes).
fn on_writes_of(resource: &str) -> MatchResources {
    MatchResources {
        resource_rules: Some(vec![NamedRuleWithOperations {
            api_groups: Some(vec![GROUP.into()]),
            api_versions: Some(vec!["*".into()]),
            operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
            resources: Some(vec![resource.into()]),
            ..NamedRuleWithOperations::default()
        }]),
        ..MatchResources::default()
    }
}

/// The policy and its binding, in the order they should be applied.
pub fn airlock_policy() -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    let policy = ValidatingAdmissionPolicy {
        metadata: policy_metadata(AIRLOCK_POLICY),
        spec: Some(ValidatingAdmissionPolicySpec {
            failure_policy: Some("Fail".into()),
            match_constraints: Some(on_writes_of("airlockrequests")),
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
                variable("forKey", &format!("'{REQUESTED_FOR_ANNOTATION}'")),
                variable(
                    "requestedFor",
                    "has(object.metadata.annotations) && variables.forKey in object.metadata.annotations ? object.metadata.annotations[variables.forKey] : ''",
                ),
                variable(
                    "wasRequestedFor",
                    "oldObject != null && has(oldObject.metadata.annotations) && variables.forKey in oldObject.metadata.annotations ? oldObject.metadata.annotations[variables.forKey] : ''",
                ),
            ]),
            validations: Some(vec![
                rule(
                    "request.operation != 'CREATE' || object.spec.requestedBy == variables.user",
                    "'spec.requestedBy must be the user creating the request (' + variables.user + '), not ' + object.spec.requestedBy",
                ),
                rule(
                    "variables.requestedFor == '' || variables.reviews.all(r, r.reviewer != variables.requestedFor)",
                    "'spec.reviews: this request was made for ' + variables.requestedFor + ', who cannot review it (four-eyes)'",
                ),
                rule(
                    "oldObject != null || variables.requestedFor == '' || variables.user.startsWith('system:serviceaccount:') || 'system:masters' in request.userInfo.groups",
                    &format!(
                        "'metadata.annotations[{REQUESTED_FOR_ANNOTATION}]: only a service (the federation agent of a data site) makes requests on behalf of a person, not ' + variables.user"
                    ),
                ),
                rule(
                    "oldObject == null || variables.requestedFor == variables.wasRequestedFor",
                    &format!(
                        "'metadata.annotations[{REQUESTED_FOR_ANNOTATION}] is immutable: it names whom the request was made for'"
                    ),
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
    (policy, deny_binding(AIRLOCK_POLICY))
}

/// On AnalysisTasks, as on AirlockRequests: `spec.requestedBy` is the user who creates the task,
/// only the requester cancels it, and no finalizers or ownerReferences can be added. A holder
/// of [`SUBMIT_FOR_VERB`] in the task's namespace (the access gateway) may do both for the
/// person, and only it: asked of the API server's own authorizer.
pub fn task_policy() -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    let policy = ValidatingAdmissionPolicy {
        metadata: policy_metadata(TASK_POLICY),
        spec: Some(ValidatingAdmissionPolicySpec {
            failure_policy: Some("Fail".into()),
            match_constraints: Some(on_writes_of("analysistasks")),
            variables: Some(vec![
                variable("user", "request.userInfo.username"),
                variable(
                    "wasCancelled",
                    "oldObject != null && has(oldObject.spec.cancelled) && oldObject.spec.cancelled",
                ),
                variable("isCancelled", "has(object.spec.cancelled) && object.spec.cancelled"),
                variable(
                    "submitsFor",
                    &format!(
                        "authorizer.group('{GROUP}').resource('analysistasks').namespace(object.metadata.namespace).check('{SUBMIT_FOR_VERB}').allowed()"
                    ),
                ),
            ]),
            validations: Some(vec![
                rule(
                    "request.operation != 'CREATE' || object.spec.requestedBy == variables.user || variables.submitsFor",
                    "'spec.requestedBy must be the user creating the task (' + variables.user + '), not ' + object.spec.requestedBy",
                ),
                rule(
                    "!variables.isCancelled || variables.wasCancelled || variables.user == object.spec.requestedBy || variables.submitsFor",
                    "'spec.cancelled: only the requester (' + object.spec.requestedBy + ') can cancel this task'",
                ),
                rule(
                    "(!has(object.metadata.finalizers) || size(object.metadata.finalizers) == 0) && (!has(object.metadata.ownerReferences) || size(object.metadata.ownerReferences) == 0)",
                    "'metadata: an AnalysisTask has no finalizers or ownerReferences (they could hold up or delete the record)'",
                ),
            ]),
            ..ValidatingAdmissionPolicySpec::default()
        }),
        status: None,
    };
    (policy, deny_binding(TASK_POLICY))
}

fn deny_binding(policy: &str) -> ValidatingAdmissionPolicyBinding {
    ValidatingAdmissionPolicyBinding {
        metadata: policy_metadata(policy),
        spec: Some(ValidatingAdmissionPolicyBindingSpec {
            policy_name: Some(policy.into()),
            validation_actions: Some(vec!["Deny".into()]),
            ..ValidatingAdmissionPolicyBindingSpec::default()
        }),
    }
}

/// A DataPermit never asks for more than its tier allows, nor for a package mirror the platform
/// does not allow: the same rules as [`crate::tier::TierProfiles::violations`] and
/// [`crate::mirror::MirrorRules::problem`], in CEL, with the tier profiles as parameters (the
/// ConfigMap [`TIER_CONFIG_MAP`] in `params_namespace`).
///
/// Without that ConfigMap the policy admits: Helm deletes the ConfigMap before the binding on
/// uninstall (and the API server's parameter cache lags a new one), and refusing every permit
/// in the cluster in those windows would be worse than what admitting costs, because the
/// operator enforces the tier's limits whatever was admitted and says so in `WithinTier`.
///
/// Only writes that change the tier, the reviewers, the environment or the airlock are
/// checked, so a permit admitted under looser profiles can still be suspended, revoked or
/// given a finalizer after the profiles were tightened (the operator then enforces the tighter
/// profile and says so in a condition).
pub fn tier_policy(params_namespace: &str) -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    let limit = |control: &str| format!("params.data[variables.tier + '.{control}']");
    let tier_is = "'tier ' + variables.tier";
    let policy = ValidatingAdmissionPolicy {
        metadata: policy_metadata(TIER_POLICY),
        spec: Some(ValidatingAdmissionPolicySpec {
            failure_policy: Some("Fail".into()),
            param_kind: Some(ParamKind { api_version: Some("v1".into()), kind: Some("ConfigMap".into()) }),
            match_constraints: Some(on_writes_of("datapermits")),
            match_conditions: Some(vec![MatchCondition {
                name: "tier-relevant-change".into(),
                expression: "oldObject == null || object.spec.tier != oldObject.spec.tier || object.spec.reviewers != oldObject.spec.reviewers || object.spec.environment != oldObject.spec.environment || object.spec.airlock != oldObject.spec.airlock".into(),
            }]),
            variables: Some(vec![
                variable("tier", "string(object.spec.tier)"),
                variable("openness", "{'None': 0, 'PackageMirror': 1, 'Internet': 2}"),
                variable("environment", "object.spec.environment"),
                variable("airlock", "object.spec.airlock"),
                variable("allowedTypes", &format!("{}.split(',')", limit("allowedFileTypes"))),
                variable("hasMirror", "has(variables.environment.packageMirror)"),
                variable("mirror", "variables.hasMirror ? variables.environment.packageMirror.cidr : ''"),
                variable(
                    "widestKey",
                    &format!("isCIDR(variables.mirror) && cidr(variables.mirror).ip().family() == 6 ? '{WIDEST_IPV6_KEY}' : '{WIDEST_IPV4_KEY}'"),
                ),
                variable(
                    "clusterRanges",
                    &format!("has(params.data) && '{CLUSTER_RANGES_KEY}' in params.data ? params.data['{CLUSTER_RANGES_KEY}'].split(',').map(r, r.trim()).filter(r, r != '') : []"),
                ),
            ]),
            validations: Some(vec![
                invalid(
                    &format!("size(object.spec.reviewers) >= int({})", limit("requiredApprovals")),
                    &format!(
                        "'spec.reviewers: ' + {tier_is} + ' needs ' + {} + ' approvals per export, but the permit names ' + string(size(object.spec.reviewers)) + ' reviewer(s)'",
                        limit("requiredApprovals")
                    ),
                ),
                invalid(
                    &format!("!has(variables.environment.egress) || variables.openness[variables.environment.egress] <= variables.openness[{}]", limit("egress")),
                    &format!(
                        "'spec.environment.egress: ' + variables.environment.egress + ' is more open than ' + {tier_is} + ' allows (at most ' + {} + ')'",
                        limit("egress")
                    ),
                ),
                longest("maxWorkspaceLifetime", &limit("maxWorkspaceLifetime"), tier_is),
                longest("idleTimeout", &limit("idleTimeout"), tier_is),
                invalid(
                    &format!("!has(variables.environment.requireMfa) || variables.environment.requireMfa || {} != 'true'", limit("requireMfa")),
                    &format!("'spec.environment.requireMfa: ' + {tier_is} + ' requires a second factor at the gateway'"),
                ),
                invalid(
                    &format!("!has(variables.airlock.requiredApprovals) || variables.airlock.requiredApprovals >= int({})", limit("requiredApprovals")),
                    &format!(
                        "'spec.airlock.requiredApprovals: ' + string(variables.airlock.requiredApprovals) + ' is fewer than ' + {tier_is} + ' requires (' + {} + ')'",
                        limit("requiredApprovals")
                    ),
                ),
                invalid(
                    &format!("!has(variables.airlock.importReview) || variables.airlock.importReview || {} != 'true'", limit("importReview")),
                    &format!("'spec.airlock.importReview: ' + {tier_is} + ' requires imports to be reviewed'"),
                ),
                invalid(
                    "!variables.hasMirror || !isCIDR(variables.mirror) || !has(params.data) || !(variables.widestKey in params.data) || cidr(variables.mirror).prefixLength() >= int(params.data[variables.widestKey])",
                    "'spec.environment.packageMirror.cidr: ' + variables.mirror + ' must be no wider than /' + params.data[variables.widestKey] + ': a mirror is a host or a few, never a network'",
                ),
                invalid(
                    "!variables.hasMirror || !isCIDR(variables.mirror) || variables.clusterRanges.all(r, !(cidr(r).containsCIDR(cidr(variables.mirror)) || cidr(variables.mirror).containsCIDR(cidr(r))))",
                    "'spec.environment.packageMirror.cidr: ' + variables.mirror + ' overlaps the cluster pod or Service range ' + variables.clusterRanges.filter(r, (cidr(r).containsCIDR(cidr(variables.mirror)) || cidr(variables.mirror).containsCIDR(cidr(r)))).join(', ')",
                ),
                invalid(
                    "!has(variables.airlock.allowedFileTypes) || variables.airlock.allowedFileTypes.all(t, t in variables.allowedTypes)",
                    &format!(
                        "'spec.airlock.allowedFileTypes: ' + {tier_is} + ' does not allow ' + variables.airlock.allowedFileTypes.filter(t, !(t in variables.allowedTypes)).join(', ')"
                    ),
                ),
            ]),
            ..ValidatingAdmissionPolicySpec::default()
        }),
        status: None,
    };
    let binding = ValidatingAdmissionPolicyBinding {
        metadata: policy_metadata(TIER_POLICY),
        spec: Some(ValidatingAdmissionPolicyBindingSpec {
            policy_name: Some(TIER_POLICY.into()),
            param_ref: Some(ParamRef {
                name: Some(TIER_CONFIG_MAP.into()),
                namespace: Some(params_namespace.into()),
                parameter_not_found_action: Some("Allow".into()),
                ..ParamRef::default()
            }),
            validation_actions: Some(vec!["Deny".into()]),
            ..ValidatingAdmissionPolicyBindingSpec::default()
        }),
    };
    (policy, binding)
}

/// A lifetime the permit sets is no longer than its tier's, when the tier has one.
fn longest(control: &str, limit: &str, tier_is: &str) -> Validation {
    invalid(
        &format!(
            "{limit} == '' || !has(variables.environment.{control}) || duration(variables.environment.{control}) <= duration({limit})"
        ),
        &format!(
            "'spec.environment.{control}: ' + variables.environment.{control} + ' is longer than ' + {tier_is} + ' allows (' + {limit} + ')'"
        ),
    )
}

/// Every policy and binding, in the order they should be applied; the tier binding reads its
/// parameters from `params_namespace` (the chart sets the release namespace instead).
pub fn all_policies(
    params_namespace: &str,
) -> Vec<(ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding)> {
    vec![airlock_policy(), task_policy(), tier_policy(params_namespace)]
}

/// The policies and bindings as one YAML stream, as `crds/` ships them (the tier binding's
/// parameters in `haven-system`).
pub fn to_yaml() -> Result<String, serde_saphyr::ser_error::Error> {
    let mut out = String::from("# Generated by `haven crd` (make crds); do not edit.\n");
    for (policy, binding) in all_policies("haven-system") {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&policy)?);
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&binding)?);
    }
    Ok(out)
}

fn variable(name: &str, expression: &str) -> Variable {
    Variable { name: name.into(), expression: expression.into() }
}

/// A rule on the content of a spec; its message names the field.
fn invalid(expression: &str, message_expression: &str) -> Validation {
    Validation { reason: Some("Invalid".into()), ..rule(expression, message_expression) }
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
