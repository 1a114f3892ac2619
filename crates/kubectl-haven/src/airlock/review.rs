//! `approve`, `reject` and `cancel`: changes to a request made as the current user. The API
//! server's admission policy decides who may do what; its refusals are shown verbatim.

use anyhow::{Context, bail};
use haven_api::{
    AirlockRequest,
    airlock::{AirlockPhase, Decision, Review},
};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

use super::{
    KIND, api, get,
    wait::{self, Settled},
};
use crate::{
    cli::{ReviewArgs, WaitArgs},
    connect::Session,
    error::{self, Target, UsageError},
};

/// How often a review is retried when another reviewer wrote at the same moment.
const CONFLICT_RETRIES: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
}

/// The user the API server sees: who we are, or whom we impersonate (`--as`).
pub async fn current_user(client: &Client) -> anyhow::Result<String> {
    let review = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .map_err(error::server)
        .context("asking the API server who you are (SelfSubjectReview)")?;
    review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .filter(|name| !name.is_empty())
        .context("the API server did not say who you are (SelfSubjectReview has no username)")
}

/// A merge patch appending `review` to the request's reviews. It carries the resourceVersion
/// read, so a review written meanwhile by someone else is never dropped: the write conflicts
/// and is retried on the new list.
pub fn review_patch(request: &AirlockRequest, review: Review) -> anyhow::Result<Value> {
    let mut reviews = request.spec.reviews.clone();
    reviews.push(review);
    Ok(json!({
        "metadata": {"resourceVersion": request.metadata.resource_version},
        "spec": {"reviews": serde_json::to_value(reviews)?},
    }))
}

pub async fn review(session: &Session, verdict: Verdict, args: ReviewArgs) -> anyhow::Result<()> {
    let ReviewArgs { name, comment, wait } = args;
    let comment = comment.filter(|c| !c.trim().is_empty());
    if verdict == Verdict::Reject && comment.is_none() {
        return Err(UsageError(
            "reject needs --comment \"why\": the requester must be told the reason (the AirlockRequest schema requires it)".into(),
        )
        .into());
    }
    let user = current_user(&session.client).await?;
    let decision = match verdict {
        Verdict::Approve => Decision::Approve,
        Verdict::Reject => Decision::Reject,
    };
    let mut attempt = 0;
    let patched = loop {
        let request = get(session, &name).await?;
        if let Some(earlier) = request.spec.reviews.iter().find(|r| r.reviewer == user) {
            bail!(
                "{user} already reviewed {KIND} {name} ({:?}); a review cannot be changed",
                earlier.decision
            );
        }
        let review = Review { reviewer: user.clone(), decision, comment: comment.clone() };
        let patch = review_patch(&request, review)?;
        match api(session).patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(patched) => break patched,
            Err(kube::Error::Api(status)) if status.is_conflict() && attempt < CONFLICT_RETRIES => {
                attempt += 1
            }
            Err(other) => {
                return Err(error::about(Target::namespaced(KIND, &name, &session.namespace), other));
            }
        }
    };
    let done = match verdict {
        Verdict::Approve => "approved",
        Verdict::Reject => "rejected",
    };
    println!("{KIND}/{name} {done} by {user}");
    if !wait.wait {
        return Ok(());
    }
    let generation = patched.metadata.generation.unwrap_or_default();
    let (settled, request) =
        wait::until_settled(session, &name, generation, Some(&user), wait.timeout).await?;
    match settled {
        Settled::Final(AirlockPhase::Failed) => {
            bail!("{KIND} {name} Failed: {}", wait::failure_reason(&request))
        }
        Settled::Final(phase) => println!("{KIND}/{name} {phase:?}"),
        Settled::MoreReviewsNeeded(approvals) => {
            println!(
                "{KIND}/{name} AwaitingReview: your review counts ({approvals} approvals); more reviewers are needed"
            )
        }
        Settled::NotCounted(reason) => {
            bail!("your review of {KIND} {name} was recorded but does not count: {reason}")
        }
    }
    Ok(())
}

pub async fn cancel(session: &Session, name: &str, wait: &WaitArgs) -> anyhow::Result<()> {
    let request = get(session, name).await?;
    let generation = if request.spec.cancelled {
        println!("{KIND}/{name} was already cancelled");
        request.metadata.generation.unwrap_or_default()
    } else {
        let patch = json!({"spec": {"cancelled": true}});
        let patched = api(session)
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| error::about(Target::namespaced(KIND, name, &session.namespace), e))?;
        println!("{KIND}/{name} cancelled");
        patched.metadata.generation.unwrap_or_default()
    };
    if wait.wait {
        let (_, request) = wait::until_settled(session, name, generation, None, wait.timeout).await?;
        let phase = request.status.map(|s| s.phase).unwrap_or_default();
        wait::expect_cancelled(name, phase)?;
        println!("{KIND}/{name} {phase:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::request;

    #[test]
    fn a_review_is_appended_to_the_existing_ones_under_the_version_read() -> anyhow::Result<()> {
        let mut request = request("");
        request.metadata.resource_version = Some("42".into());
        let review =
            Review { reviewer: "dave@example.org".into(), decision: Decision::Approve, comment: None };
        let patch = review_patch(&request, review)?;
        assert_eq!(
            patch,
            json!({
                "metadata": {"resourceVersion": "42"},
                "spec": {"reviews": [
                    {"reviewer": "bob@example.org", "decision": "Approve"},
                    {"reviewer": "carol@example.org", "decision": "Reject", "comment": "cell 30-39 is 4"},
                    {"reviewer": "dave@example.org", "decision": "Approve"},
                ]},
            })
        );
        Ok(())
    }
}
