//! `--wait`: poll the request until the operator has acted on our change, with a spinner on a
//! terminal (a plain line otherwise) and a deadline.

use std::{io::IsTerminal, time::Duration};

use anyhow::bail;
use haven_api::{AirlockRequest, airlock::AirlockPhase};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    airlock::{KIND, get},
    connect::Session,
    format,
};

const POLL: Duration = Duration::from_millis(250);

/// Where the operator left the request once there is nothing more to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// A final phase: nothing will change any more.
    Final(AirlockPhase),
    /// Our review counts, but more approvals are needed (the approvals so far, e.g. `1/2`).
    MoreReviewsNeeded(String),
    /// Our review was recorded but does not count, with the operator's reason.
    NotCounted(String),
}

/// Whether `request` has settled after our change made it `generation`; for a review,
/// `reviewer` is who wrote it.
pub fn settled(request: &AirlockRequest, generation: i64, reviewer: Option<&str>) -> Option<Settled> {
    let status = request.status.as_ref()?;
    if status.phase.is_final() {
        return Some(Settled::Final(status.phase));
    }
    let seen = status.observed_generation.is_some_and(|observed| observed >= generation);
    let record = status.reviews.iter().find(|r| Some(r.reviewer.as_str()) == reviewer)?;
    if !seen || status.phase != AirlockPhase::AwaitingReview {
        return None;
    }
    if !record.counted {
        let reason = record.reason.clone().unwrap_or_else(|| "no reason given".into());
        return Some(Settled::NotCounted(reason));
    }
    let approvals = status.approvals.clone().unwrap_or_default();
    let more_needed = approvals
        .split_once('/')
        .is_some_and(|(have, need)| have.trim().parse::<u32>().ok() < need.trim().parse::<u32>().ok());
    more_needed.then_some(Settled::MoreReviewsNeeded(approvals))
}

/// One line on what the request is doing now, for the progress display.
pub fn progress(request: &AirlockRequest) -> String {
    let name = request.metadata.name.clone().unwrap_or_default();
    match &request.status {
        Some(status) => {
            let approvals =
                status.approvals.as_deref().map(|a| format!(", approvals {a}")).unwrap_or_default();
            format!("waiting for {KIND} {name}: {:?}{approvals}", status.phase)
        }
        None => format!("waiting for {KIND} {name}: not seen by the operator yet"),
    }
}

/// The message of the first False condition: why a request Failed.
pub fn failure_reason(request: &AirlockRequest) -> String {
    request
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.status == "False"))
        .map_or_else(|| "no condition says why".into(), |c| format!("{}: {}", c.reason, c.message))
}

/// Polls until [`settled`], or fails after `timeout` saying where the request is.
pub async fn until_settled(
    session: &Session,
    name: &str,
    generation: i64,
    reviewer: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<(Settled, AirlockRequest)> {
    let spinner = if std::io::stderr().is_terminal() {
        let spinner = ProgressBar::new_spinner();
        spinner.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})")?);
        spinner.enable_steady_tick(Duration::from_millis(100));
        Some(spinner)
    } else {
        eprintln!(
            "waiting up to {} for {KIND} {name} to settle",
            format::humanize(chrono::TimeDelta::from_std(timeout)?)
        );
        None
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let outcome = loop {
        let request = get(session, name).await?;
        if let Some(settled) = settled(&request, generation, reviewer) {
            break Ok((settled, request));
        }
        if let Some(spinner) = &spinner {
            spinner.set_message(progress(&request));
        }
        if tokio::time::Instant::now() >= deadline {
            let now = request
                .status
                .as_ref()
                .map_or_else(|| "not seen by the operator".into(), |s| format!("{:?}", s.phase));
            break Err(anyhow::anyhow!(
                "timed out after {} waiting for {KIND} {name}; it is {now}",
                format::humanize(chrono::TimeDelta::from_std(timeout)?)
            ));
        }
        tokio::time::sleep(POLL).await;
    };
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    outcome
}

/// Fails unless `phase` is what a cancellation should end in.
pub fn expect_cancelled(name: &str, phase: AirlockPhase) -> anyhow::Result<()> {
    if phase != AirlockPhase::Cancelled {
        bail!("{KIND} {name} ended {phase:?} before the cancellation took effect");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::request;

    #[test]
    fn a_final_phase_is_settled_whatever_was_observed() {
        let exported = request("phase: Exported\nobservedGeneration: 1\n");
        assert_eq!(
            settled(&exported, 5, Some("carol@example.org")),
            Some(Settled::Final(AirlockPhase::Exported))
        );
    }

    #[test]
    fn a_review_the_operator_has_not_observed_is_not_settled() {
        let stale = request(
            "phase: AwaitingReview\nobservedGeneration: 1\napprovals: 0/2\nreviews:\n- {reviewer: bob@example.org, decision: Approve, counted: false}\n",
        );
        assert_eq!(settled(&stale, 2, Some("carol@example.org")), None);
    }

    #[test]
    fn a_counted_approval_short_of_the_required_number_is_settled() {
        let one_of_two = request(
            "phase: AwaitingReview\nobservedGeneration: 2\napprovals: 1/2\nreviews:\n- {reviewer: carol@example.org, decision: Approve, counted: true}\n",
        );
        assert_eq!(
            settled(&one_of_two, 2, Some("carol@example.org")),
            Some(Settled::MoreReviewsNeeded("1/2".into()))
        );
    }

    #[test]
    fn enough_approvals_still_wait_for_delivery() {
        let approved_not_moved = request(
            "phase: AwaitingReview\nobservedGeneration: 2\napprovals: 1/1\nreviews:\n- {reviewer: carol@example.org, decision: Approve, counted: true}\n",
        );
        assert_eq!(settled(&approved_not_moved, 2, Some("carol@example.org")), None);
        assert_eq!(settled(&request("phase: Approved\nobservedGeneration: 2\n"), 2, None), None);
    }

    #[test]
    fn a_review_that_does_not_count_is_settled_with_the_reason() {
        let ignored = request(
            "phase: AwaitingReview\nobservedGeneration: 2\napprovals: 0/1\nreviews:\n- {reviewer: bob@example.org, decision: Approve, counted: false, reason: bob@example.org is a user of this project}\n",
        );
        assert_eq!(
            settled(&ignored, 2, Some("bob@example.org")),
            Some(Settled::NotCounted("bob@example.org is a user of this project".into()))
        );
    }

    #[test]
    fn a_cancellation_waits_for_a_final_phase() {
        assert_eq!(settled(&request("phase: AwaitingReview\nobservedGeneration: 3\n"), 3, None), None);
        assert!(expect_cancelled("t", AirlockPhase::Cancelled).is_ok());
        let late = expect_cancelled("t", AirlockPhase::Exported).err().map(|e| e.to_string());
        assert_eq!(
            late.as_deref(),
            Some("airlockrequest t ended Exported before the cancellation took effect")
        );
    }

    #[test]
    fn the_progress_line_names_phase_and_approvals() {
        let text = progress(&request("phase: AwaitingReview\napprovals: 1/2\n"));
        assert_eq!(text, "waiting for airlockrequest tables: AwaitingReview, approvals 1/2");
    }
}
