//! Kubernetes conditions, kept so that `lastTransitionTime` only moves when the status does
//! and an unchanged status compares equal (so nothing is written).

use chrono::{DateTime, Utc};
use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};

/// A condition to set, without its transition time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired<'a> {
    pub type_: &'a str,
    pub status: bool,
    pub reason: &'a str,
    pub message: String,
}

/// Sets each desired condition in `conditions`, keeping the transition time of those whose
/// status did not change.
pub fn set_conditions(
    conditions: &mut Vec<Condition>,
    desired: Vec<Desired<'_>>,
    generation: Option<i64>,
    now: DateTime<Utc>,
) {
    for want in desired {
        let status = if want.status { "True" } else { "False" }.to_owned();
        let previous = conditions.iter().position(|c| c.type_ == want.type_);
        let last_transition_time = match previous.map(|i| &conditions[i]) {
            Some(existing) if existing.status == status => existing.last_transition_time.clone(),
            _ => to_time(now),
        };
        let condition = Condition {
            type_: want.type_.to_owned(),
            status,
            reason: want.reason.to_owned(),
            message: want.message,
            observed_generation: generation,
            last_transition_time,
        };
        match previous {
            Some(i) => conditions[i] = condition,
            None => conditions.push(condition),
        }
    }
}

pub fn to_time(at: DateTime<Utc>) -> Time {
    Time(Timestamp::from_second(at.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// A Kubernetes timestamp (a condition's transition time) as chrono's.
pub fn time_of(at: &Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.as_millisecond()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, second).single().expect("valid")
    }

    fn ready(status: bool) -> Desired<'static> {
        Desired { type_: "Ready", status, reason: "Because", message: "m".into() }
    }

    #[test]
    fn an_unchanged_status_keeps_its_transition_time_and_compares_equal() {
        let mut conditions = Vec::new();
        set_conditions(&mut conditions, vec![ready(true)], Some(1), at(0));
        let before = conditions.clone();
        set_conditions(&mut conditions, vec![ready(true)], Some(1), at(30));
        assert_eq!(conditions, before);
    }

    #[test]
    fn a_changed_status_moves_the_transition_time() {
        let mut conditions = Vec::new();
        set_conditions(&mut conditions, vec![ready(true)], Some(1), at(0));
        set_conditions(&mut conditions, vec![ready(false)], Some(2), at(30));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].status, "False");
        assert_eq!(conditions[0].last_transition_time, to_time(at(30)));
        assert_eq!(conditions[0].observed_generation, Some(2));
    }
}
