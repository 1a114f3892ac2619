//! May this person enter this workspace now? Both halves must say yes: the Workspace names
//! them (a cluster admin's RBAC allows everything, so RBAC alone would let admins in), and the
//! API server's RBAC, asked with a SubjectAccessReview for `connect` on the Workspace, which
//! only the workspace's own Role grants. So revocation, expiry, removal from the permit and
//! deletion take effect here exactly as they do for every other access.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use haven_api::{
    DataPermit, Workspace, constants::GROUP, permit::PermitPhase, validation::workspace_namespace,
    workspace::WorkspacePhase,
};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::{Api, Client, api::PostParams};

use crate::directory::Directory;

/// The verb the operator grants in each workspace's Role, asked for every visit.
pub const CONNECT_VERB: &str = "connect";

/// Why someone may not enter; each is shown on the refusal page and recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("there is no workspace {0}")]
    NoWorkspace(String),
    #[error("workspace {workspace} is {phase:?}: nobody may enter it")]
    Closed { workspace: String, phase: WorkspacePhase },
    #[error("permit {permit} is {phase}: its workspaces are closed")]
    PermitNotActive { permit: String, phase: String },
    #[error("{user} is not one of workspace {workspace}'s users")]
    NotAUser { user: String, workspace: String },
    #[error("workspace {0} needs a login with a second factor (MFA)")]
    SecondFactorRequired(String),
    #[error("the cluster does not allow {user} to connect to workspace {workspace}{reason}")]
    Rbac { user: String, workspace: String, reason: String },
    #[error("the access check could not be made ({0}); try again")]
    Unavailable(String),
}

impl Refusal {
    /// What the refusal page says: to someone who is not one of its users, a workspace is
    /// not there (its name and state are not theirs to learn); the record says more.
    pub fn shown(&self) -> String {
        match self {
            Self::NoWorkspace(workspace) | Self::NotAUser { workspace, .. } => {
                format!("There is no workspace {workspace} that you may enter.")
            }
            Self::Unavailable(_) => "The access check could not be made; try again in a moment.".into(),
            other => other.to_string(),
        }
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> http::StatusCode {
        match self {
            Self::NoWorkspace(_) | Self::NotAUser { .. } => http::StatusCode::NOT_FOUND,
            Self::Unavailable(_) => http::StatusCode::SERVICE_UNAVAILABLE,
            _ => http::StatusCode::FORBIDDEN,
        }
    }

    /// A stable word for Events and for grouping refusals.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoWorkspace(_) => "NoWorkspace",
            Self::Closed { .. } => "WorkspaceClosed",
            Self::PermitNotActive { .. } => "PermitNotActive",
            Self::NotAUser { .. } => "NotAUser",
            Self::SecondFactorRequired(_) => "SecondFactorRequired",
            Self::Rbac { .. } => "RbacDenied",
            Self::Unavailable(_) => "Unavailable",
        }
    }
}

/// What an allowed visit carries along.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub permit: String,
}

/// The half of the decision the gateway makes from the objects it watches (pure).
pub fn judge(
    name: &str,
    workspace: Option<&Workspace>,
    permit: Option<&DataPermit>,
    user: &str,
    mfa: bool,
) -> Result<Grant, Refusal> {
    let workspace = workspace.ok_or_else(|| Refusal::NoWorkspace(name.to_owned()))?;
    if workspace.metadata.deletion_timestamp.is_some() {
        return Err(Refusal::NoWorkspace(name.to_owned()));
    }
    if !workspace.spec.users.iter().any(|u| u == user) {
        return Err(Refusal::NotAUser { user: user.to_owned(), workspace: name.to_owned() });
    }
    let phase = workspace.status.as_ref().map(|s| s.phase).unwrap_or_default();
    if matches!(phase, WorkspacePhase::Expiring | WorkspacePhase::Archived | WorkspacePhase::Failed) {
        return Err(Refusal::Closed { workspace: name.to_owned(), phase });
    }
    let permit_name = workspace.spec.permit.clone();
    let status = permit.and_then(|p| p.status.as_ref());
    let permit_phase = status.map(|s| s.phase).unwrap_or_default();
    if permit_phase != PermitPhase::Active {
        let phase = if permit.is_none() { "missing".to_owned() } else { format!("{permit_phase:?}") };
        return Err(Refusal::PermitNotActive { permit: permit_name, phase });
    }
    // A permit whose controls are not recorded yet counts as requiring a second factor.
    let needs_mfa = status.and_then(|s| s.controls.as_ref()).is_none_or(|c| c.require_mfa);
    if needs_mfa && !mfa {
        return Err(Refusal::SecondFactorRequired(name.to_owned()));
    }
    Ok(Grant { permit: permit_name })
}

/// (user, workspace, second factor) → when asked, and the answer.
type Decisions = HashMap<(String, String, bool), (Instant, Result<Grant, Refusal>)>;

/// The question asked for every visit: may `user` `connect` to `workspace` (in its namespace,
/// by name)? As the API server sees a person it authenticated: a grant to every signed-in user
/// counts here too (and membership in the Workspace still decides).
pub fn connect_review(workspace: &str, user: &str) -> SubjectAccessReview {
    workspace_review(user, workspace, "workspaces", Some(workspace), CONNECT_VERB)
}

/// May `user` do `verb` on `resource` (of Haven's group; one object when `name` is given) in
/// `workspace`'s namespace?
pub fn workspace_review(
    user: &str,
    workspace: &str,
    resource: &str,
    name: Option<&str>,
    verb: &str,
) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_owned()),
            groups: Some(vec!["system:authenticated".to_owned()]),
            resource_attributes: Some(ResourceAttributes {
                group: Some(GROUP.to_owned()),
                resource: Some(resource.to_owned()),
                name: name.map(str::to_owned),
                namespace: Some(workspace_namespace(workspace)),
                verb: Some(verb.to_owned()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    }
}

/// What the API server said to a SubjectAccessReview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Allowed,
    /// Not allowed; `: <the authorizer's reason>`, or empty.
    Denied(String),
    /// The question could not be asked.
    Unavailable(String),
}

/// Decisions, cached for a short while per person, workspace and factor.
#[derive(Clone)]
pub struct Authorizer {
    client: Client,
    directory: Directory,
    ttl: Duration,
    cache: Arc<Mutex<Decisions>>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl Authorizer {
    pub fn new(client: Client, directory: Directory, ttl: Duration) -> Self {
        Self { client, directory, ttl, cache: Arc::default() }
    }

    /// The decision for one request: from the cache when younger than the ttl. The watched
    /// objects are read every time, so a deleted workspace is refused at once.
    pub async fn decide(&self, workspace: &str, user: &str, mfa: bool) -> Result<Grant, Refusal> {
        let grant = self.judge_now(workspace, user, mfa)?;
        let key = (user.to_owned(), workspace.to_owned(), mfa);
        let cached = self.lock().get(&key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, d)| d.clone());
        match cached {
            Some(decision) => decision.map(|_| grant),
            None => self.review_and_remember(workspace, user, mfa, grant).await,
        }
    }

    /// The decision asked anew (the sweeper's recheck), then cached.
    pub async fn ask_fresh(&self, workspace: &str, user: &str, mfa: bool) -> Result<Grant, Refusal> {
        match self.judge_now(workspace, user, mfa) {
            Ok(grant) => self.review_and_remember(workspace, user, mfa, grant).await,
            Err(refusal) => {
                self.remember(workspace, user, mfa, Err(refusal.clone()));
                Err(refusal)
            }
        }
    }

    async fn review_and_remember(
        &self,
        workspace: &str,
        user: &str,
        mfa: bool,
        grant: Grant,
    ) -> Result<Grant, Refusal> {
        let decision = self.review(workspace, user).await.map(|()| grant);
        self.remember(workspace, user, mfa, decision.clone());
        decision
    }

    /// Caches a decision; an unavailable API server is not remembered (the next request asks).
    fn remember(&self, workspace: &str, user: &str, mfa: bool, decision: Result<Grant, Refusal>) {
        if !matches!(decision, Err(Refusal::Unavailable(_))) {
            self.lock().insert((user.to_owned(), workspace.to_owned(), mfa), (Instant::now(), decision));
        }
    }

    fn judge_now(&self, workspace: &str, user: &str, mfa: bool) -> Result<Grant, Refusal> {
        let found = self.directory.workspace(workspace);
        let permit = found.as_ref().and_then(|w| self.directory.permit(&w.spec.permit));
        judge(workspace, found.as_deref(), permit.as_deref(), user, mfa)
    }

    async fn review(&self, workspace: &str, user: &str) -> Result<(), Refusal> {
        match self.ask(&connect_review(workspace, user)).await {
            Answer::Allowed => Ok(()),
            Answer::Denied(reason) => {
                Err(Refusal::Rbac { user: user.to_owned(), workspace: workspace.to_owned(), reason })
            }
            Answer::Unavailable(error) => Err(Refusal::Unavailable(error)),
        }
    }

    /// Asks the API server a SubjectAccessReview (never cached).
    pub async fn ask(&self, review: &SubjectAccessReview) -> Answer {
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer = match api.create(&PostParams::default(), review).await {
            Ok(answer) => answer,
            Err(e) => return Answer::Unavailable(format!("SubjectAccessReview: {e}")),
        };
        let status = answer.status.unwrap_or_default();
        if status.allowed && !status.denied.unwrap_or(false) {
            return Answer::Allowed;
        }
        Answer::Denied(status.reason.filter(|r| !r.is_empty()).map(|r| format!(": {r}")).unwrap_or_default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Decisions> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        // Bounded by the people inside: old answers go whenever the cache is touched.
        if cache.len() > 1024 {
            let ttl = self.ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        cache
    }
}

#[cfg(test)]
mod tests {
    use haven_api::{DataPermitStatus, WorkspaceStatus, permit::ControlsInForce};

    use super::*;

    fn workspace(users: &[&str], phase: WorkspacePhase) -> Workspace {
        let mut ws: Workspace = serde_json::from_value(serde_json::json!({
            "apiVersion": "haven.io/v1alpha1", "kind": "Workspace",
            "metadata": {"name": "w"},
            "spec": {"permit": "p", "users": users, "image": "img"}
        }))
        .expect("workspace");
        ws.status = Some(WorkspaceStatus { phase, ..WorkspaceStatus::default() });
        ws
    }

    fn permit(phase: PermitPhase, require_mfa: Option<bool>) -> DataPermit {
        let mut permit: DataPermit = serde_json::from_value(serde_json::json!({
            "apiVersion": "haven.io/v1alpha1", "kind": "DataPermit",
            "metadata": {"name": "p"},
            "spec": {
                "permitId": "X-1", "holder": {"organisation": "o", "principalInvestigator": "pi@o"},
                "purpose": "Statistics", "users": ["ada@x"], "reviewers": ["oli@x"],
                "validFrom": "2026-01-01T00:00:00Z", "validUntil": "2027-01-01T00:00:00Z",
                "datasets": [], "environment": {"allowedImages": ["img"]}
            }
        }))
        .expect("permit");
        let controls =
            require_mfa.map(|require_mfa| ControlsInForce { require_mfa, ..ControlsInForce::default() });
        permit.status = Some(DataPermitStatus { phase, controls, ..DataPermitStatus::default() });
        permit
    }

    #[test]
    fn a_named_user_of_an_open_workspace_under_an_active_permit_is_let_through() {
        let ws = workspace(&["ada@x"], WorkspacePhase::Ready);
        let p = permit(PermitPhase::Active, Some(false));
        assert_eq!(judge("w", Some(&ws), Some(&p), "ada@x", false), Ok(Grant { permit: "p".into() }));
    }

    #[test]
    fn output_checkers_and_admins_are_not_users() {
        let ws = workspace(&["ada@x"], WorkspacePhase::Ready);
        let p = permit(PermitPhase::Active, Some(false));
        for who in ["oli@x", "system:admin", "kubernetes-admin", "ADA@x"] {
            assert!(
                matches!(judge("w", Some(&ws), Some(&p), who, true), Err(Refusal::NotAUser { .. })),
                "{who}"
            );
        }
    }

    #[test]
    fn a_deleted_closing_or_unpermitted_workspace_is_refused() {
        let p = permit(PermitPhase::Active, Some(false));
        assert_eq!(judge("w", None, Some(&p), "ada@x", true), Err(Refusal::NoWorkspace("w".into())));
        for phase in [WorkspacePhase::Expiring, WorkspacePhase::Archived, WorkspacePhase::Failed] {
            let ws = workspace(&["ada@x"], phase);
            assert!(matches!(judge("w", Some(&ws), Some(&p), "ada@x", true), Err(Refusal::Closed { .. })));
        }
        let ws = workspace(&["ada@x"], WorkspacePhase::Ready);
        for phase in [PermitPhase::Suspended, PermitPhase::Revoked, PermitPhase::Expired] {
            let p = permit(phase, Some(false));
            let refused = judge("w", Some(&ws), Some(&p), "ada@x", true);
            assert!(matches!(refused, Err(Refusal::PermitNotActive { .. })), "{phase:?}");
        }
        assert!(matches!(judge("w", Some(&ws), None, "ada@x", true), Err(Refusal::PermitNotActive { .. })));
    }

    #[test]
    fn a_tier_that_requires_a_second_factor_refuses_a_password_only_login() {
        let ws = workspace(&["ada@x"], WorkspacePhase::Ready);
        let strict = permit(PermitPhase::Active, Some(true));
        assert_eq!(
            judge("w", Some(&ws), Some(&strict), "ada@x", false),
            Err(Refusal::SecondFactorRequired("w".into()))
        );
        assert!(judge("w", Some(&ws), Some(&strict), "ada@x", true).is_ok());
        let unknown = permit(PermitPhase::Active, None);
        assert!(judge("w", Some(&ws), Some(&unknown), "ada@x", false).is_err(), "no recorded controls: MFA");
    }
}
