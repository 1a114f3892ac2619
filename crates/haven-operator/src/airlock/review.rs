//! Counting reviews: pure, from the request, the permit and the workspace.

use haven_api::{
    AirlockRequestSpec, DataPermitSpec,
    airlock::{Decision, ReviewRecord},
};

/// The reviews as the operator judges them.
#[derive(Clone, Debug, PartialEq)]
pub struct Tally {
    pub records: Vec<ReviewRecord>,
    pub approvals: u32,
    pub required: u32,
    /// The first counted rejection: reviewer and comment.
    pub rejection: Option<(String, String)>,
}

/// What the reviews add up to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Approved,
    Rejected,
    Waiting,
}

impl Tally {
    /// Any counted rejection rejects; otherwise enough counted approvals approve.
    pub fn verdict(&self) -> Verdict {
        if self.rejection.is_some() {
            Verdict::Rejected
        } else if self.approvals >= self.required {
            Verdict::Approved
        } else {
            Verdict::Waiting
        }
    }

    /// `n/m` for the Approvals column.
    pub fn approvals_text(&self) -> String {
        format!("{}/{}", self.approvals, self.required)
    }
}

/// `required` is the approvals the permit's tier controls demand. Counts a review only if its reviewer is one of the permit's reviewers and neither the
/// requester nor a user of the permit or the workspace; every other review is kept in the
/// record as ignored, with the reason. The admission policy already stops self-review and
/// reviews in another's name; this is where "is an output checker for this permit" is known.
pub fn tally(
    request: &AirlockRequestSpec,
    permit_name: &str,
    permit: &DataPermitSpec,
    required: u32,
    workspace_users: &[String],
) -> Tally {
    let mut tally =
        Tally { records: Vec::with_capacity(request.reviews.len()), approvals: 0, required, rejection: None };
    let mut seen = std::collections::BTreeSet::new();
    for review in &request.reviews {
        let who = &review.reviewer;
        let ignored = if !seen.insert(who.as_str()) {
            // The schema keys reviews by reviewer; counting people, not entries, keeps four
            // eyes four even if that ever changes.
            Some(format!("{who} has already reviewed this request; only their first review counts"))
        } else if *who == request.requested_by {
            Some(format!("{who} requested this and cannot review it"))
        } else if permit.users.contains(who) || workspace_users.contains(who) {
            Some(format!("{who} is a user of this project; output checkers must be independent of it"))
        } else if !permit.reviewers.contains(who) {
            Some(format!("{who} is not one of permit {permit_name}'s reviewers (spec.reviewers)"))
        } else {
            None
        };
        if ignored.is_none() {
            match review.decision {
                Decision::Approve => tally.approvals += 1,
                Decision::Reject if tally.rejection.is_none() => {
                    tally.rejection = Some((who.clone(), review.comment.clone().unwrap_or_default()));
                }
                Decision::Reject => {}
            }
        }
        tally.records.push(ReviewRecord {
            reviewer: who.clone(),
            decision: review.decision,
            counted: ignored.is_none(),
            reason: ignored,
        });
    }
    tally
}

#[cfg(test)]
#[path = "review_tests.rs"]
mod tests;
