use haven_api::airlock::{Direction, Review};

use super::*;

/// The example permit with users alice and reviewers carol, dave and erin.
fn permit(required: u32) -> DataPermitSpec {
    let path = format!("{}/../../examples/datapermit.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("example exists");
    let mut permit: haven_api::DataPermit = serde_saphyr::from_str(&text).expect("example parses");
    permit.spec.users = vec!["alice".into()];
    permit.spec.reviewers = vec!["carol".into(), "dave".into(), "erin".into()];
    permit.spec.airlock.required_approvals = Some(required);
    permit.spec
}

fn request(reviews: &[(&str, Decision)]) -> AirlockRequestSpec {
    AirlockRequestSpec {
        direction: Direction::Export,
        requested_by: "alice".into(),
        files: vec!["t.csv".into()],
        justification: "counts".into(),
        cancelled: false,
        reviews: reviews
            .iter()
            .map(|(reviewer, decision)| Review {
                reviewer: (*reviewer).into(),
                decision: *decision,
                comment: (*decision == Decision::Reject).then(|| "cells below 10".into()),
            })
            .collect(),
    }
}

#[test]
fn one_approval_by_a_permit_reviewer_approves_by_default() {
    let tally = tally(&request(&[("carol", Decision::Approve)]), "p", &permit(1), 1, &[]);
    assert_eq!(tally.verdict(), Verdict::Approved);
    assert_eq!(tally.approvals_text(), "1/1");
    assert!(tally.records[0].counted);
}

#[test]
fn two_required_approvals_wait_for_the_second_reviewer() {
    let spec = request(&[("carol", Decision::Approve)]);
    assert_eq!(tally(&spec, "p", &permit(2), 2, &[]).verdict(), Verdict::Waiting);
    let spec = request(&[("carol", Decision::Approve), ("dave", Decision::Approve)]);
    let both = tally(&spec, "p", &permit(2), 2, &[]);
    assert_eq!((both.verdict(), both.approvals_text()), (Verdict::Approved, "2/2".into()));
}

#[test]
fn any_counted_rejection_rejects_even_after_enough_approvals() {
    let spec = request(&[("carol", Decision::Approve), ("dave", Decision::Reject)]);
    let tally = tally(&spec, "p", &permit(1), 1, &[]);
    assert_eq!(tally.verdict(), Verdict::Rejected);
    assert_eq!(tally.rejection, Some(("dave".into(), "cells below 10".into())));
}

#[test]
fn a_reviewer_outside_the_permit_is_ignored_with_the_reason() {
    let spec = request(&[("mallory", Decision::Approve)]);
    let tally = tally(&spec, "cancer", &permit(1), 1, &[]);
    assert_eq!(tally.verdict(), Verdict::Waiting);
    assert_eq!(tally.approvals_text(), "0/1");
    let record = &tally.records[0];
    assert!(!record.counted);
    assert_eq!(
        record.reason.as_deref(),
        Some("mallory is not one of permit cancer's reviewers (spec.reviewers)")
    );
}

#[test]
fn an_ignored_rejection_does_not_reject() {
    let spec = request(&[("mallory", Decision::Reject), ("carol", Decision::Approve)]);
    assert_eq!(tally(&spec, "p", &permit(1), 1, &[]).verdict(), Verdict::Approved);
}

#[test]
fn a_workspace_user_or_the_requester_never_counts_even_if_listed_as_reviewer() {
    let users = vec!["erin".to_owned()];
    let spec = request(&[("erin", Decision::Approve), ("alice", Decision::Approve)]);
    let tally = tally(&spec, "p", &permit(1), 1, &users);
    assert_eq!(tally.verdict(), Verdict::Waiting);
    assert!(tally.records.iter().all(|r| !r.counted));
    assert!(tally.records[0].reason.as_deref().is_some_and(|r| r.contains("user of this project")));
    assert!(tally.records[1].reason.as_deref().is_some_and(|r| r.contains("cannot review it")));
}

#[test]
fn a_second_review_by_the_same_reviewer_never_counts_twice() {
    let spec = request(&[("carol", Decision::Approve), ("carol", Decision::Approve)]);
    let tally = tally(&spec, "p", &permit(2), 2, &[]);
    assert_eq!((tally.verdict(), tally.approvals_text()), (Verdict::Waiting, "1/2".into()));
    assert!(tally.records[1].reason.as_deref().is_some_and(|r| r.contains("already reviewed")));
}
