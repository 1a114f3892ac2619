//! Whether this data site takes a task: checked against its own permit, whatever the
//! requesting site allowed. Pure, so every refusal reason has a test.

use haven_api::{
    DataPermit, constants::reasons, permit::PermitPhase, quantity::milli_units, task::SiteTaskState,
    validation::image_allowed,
};
use kube::ResourceExt;

use crate::wire::Offer;

/// The decision on an offer.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Run it under this local permit.
    Run { permit: String },
    /// Not here; the requesting site is told why.
    Refuse { state: SiteTaskState, reason: String, message: String },
}

fn refuse(reason: &str, message: String) -> Verdict {
    Verdict::Refuse { state: SiteTaskState::Refused, reason: reason.into(), message }
}

/// The local permit for `offer` from requesting site `hub`, if there is one.
pub fn local_permit<'a>(offer: &Offer, permits: &'a [DataPermit], hub: &str) -> Option<&'a DataPermit> {
    permits.iter().find(|p| {
        p.spec
            .multi_site
            .as_ref()
            .is_some_and(|m| m.id == offer.multi_site_permit && m.requesting_site == hub)
    })
}

/// What a data site takes from any requesting site, whatever that site's schema said: a task is
/// refused before anything is judged when its offer breaks these.
fn malformed(offer: &Offer) -> Option<String> {
    let uid = !offer.uid.is_empty()
        && offer.uid.len() <= 64
        && offer.uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    let inputs: usize = offer.inputs.iter().map(|i| i.content.len()).sum();
    if !uid {
        Some("its uid is not a Kubernetes uid".into())
    } else if offer.executors.is_empty() || offer.executors.len() > 4 {
        Some("a task has 1 to 4 executors".into())
    } else if offer.executors.iter().any(|e| e.command.is_empty() || e.command.len() > 64) {
        Some("each executor has a command of 1 to 64 words".into())
    } else if offer.inputs.len() > 20 || inputs > 1 << 20 {
        Some("a task takes at most 20 inputs and 1 MiB of them".into())
    } else if offer.resources.max_run_seconds > 604_800 {
        Some("a run takes at most 604800 s".into())
    } else {
        None
    }
}

/// Judges `offer` from `hub` at this site `here`; `held` counts the tasks a permit holds here.
pub fn judge(
    offer: &Offer,
    permits: &[DataPermit],
    here: &str,
    hub: &str,
    held: impl Fn(&str) -> u32,
) -> Verdict {
    if let Some(why) = malformed(offer) {
        return refuse("InvalidOffer", format!("refused at site {here}: {why}"));
    }
    let Some(permit) = local_permit(offer, permits, hub) else {
        return refuse(
            "NoPermit",
            format!(
                "no permit at site {here} is part of multi-site permit {} requested from {hub}",
                offer.multi_site_permit
            ),
        );
    };
    let (name, spec) = (permit.name_any(), &permit.spec);
    let multi = spec.multi_site.as_ref().expect("local_permit only finds multi-site permits");
    if !multi.sites.iter().any(|s| s == here) {
        return refuse("NotADataSite", format!("permit {name} does not make site {here} a data site"));
    }
    let phase = permit.status.as_ref().map(|s| s.phase).unwrap_or_default();
    if phase != PermitPhase::Active {
        return Verdict::Refuse {
            state: SiteTaskState::NotParticipating,
            reason: format!("{phase:?}"),
            message: format!("permit {name} at site {here} is {phase:?}: this site takes part in nothing"),
        };
    }
    if !spec.users.contains(&offer.requested_by) {
        return refuse(
            reasons::USER_NOT_PERMITTED,
            format!("{} is not named in permit {name} at site {here}", offer.requested_by),
        );
    }
    let allowed = &spec.environment.allowed_images;
    if let Some(executor) = offer.executors.iter().find(|e| !image_allowed(&e.image, allowed)) {
        return refuse(
            reasons::IMAGE_NOT_ALLOWED,
            format!(
                "image {} is not allowed by permit {name} at site {here} (allowed: {})",
                executor.image,
                allowed.join(", ")
            ),
        );
    }
    let ceiling = &spec.environment.resource_ceiling;
    let cpu = i128::from(offer.resources.cpu_cores) * 1000;
    let memory = i128::from(offer.resources.ram_gb) * (1 << 30) * 1000;
    let within = |asked: i128, limit: &str| milli_units(limit).is_some_and(|limit| asked <= limit);
    if !within(cpu, &ceiling.cpu.0) || !within(memory, &ceiling.memory.0) {
        return refuse(
            reasons::RESOURCES_EXCEED_CEILING,
            format!(
                "{} CPU and {} GiB exceed permit {name}'s ceiling at site {here} ({} CPU, {} memory)",
                offer.resources.cpu_cores, offer.resources.ram_gb, ceiling.cpu.0, ceiling.memory.0
            ),
        );
    }
    if held(&name) >= multi.max_tasks {
        return refuse(
            "TaskLimitReached",
            format!("permit {name} at site {here} already holds its limit of {} task(s)", multi.max_tasks),
        );
    }
    Verdict::Run { permit: name }
}

#[cfg(test)]
#[path = "judge_tests.rs"]
mod tests;
