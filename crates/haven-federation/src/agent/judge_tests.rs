use haven_api::{
    DataPermit, DataPermitStatus,
    task::{Executor, TaskResources},
};

use super::*;

const IMAGE: &str = "haven.local/testenv:0.1.0";

fn permit(phase: PermitPhase) -> DataPermit {
    let yaml = format!(
        r#"
apiVersion: haven.io/v1alpha1
kind: DataPermit
metadata: {{name: survey-north}}
spec:
  permitId: NORTH-1
  holder: {{organisation: North, principalInvestigator: pi@north}}
  purpose: Statistics
  users: [ada@haven.test]
  reviewers: [oli@haven.test]
  validFrom: "2026-01-01T00:00:00Z"
  validUntil: "2028-01-01T00:00:00Z"
  datasets: [{{name: survey, source: survey/2025.csv, columns: [{{name: region, rule: Keep}}]}}]
  environment: {{allowedImages: ["{IMAGE}"], resourceCeiling: {{cpu: "2", memory: 4Gi}}}}
  multiSite: {{id: MS-1, requestingSite: hub, sites: [hub, north], maxTasks: 2}}
"#
    );
    let mut permit: DataPermit = serde_saphyr::from_str(&yaml).expect("present");
    permit.status = Some(DataPermitStatus { phase, ..DataPermitStatus::default() });
    permit
}

fn offer() -> Offer {
    Offer {
        uid: "3f6c2a7e-0000-4000-8000-000000000001".into(),
        task: "ws-study/count".into(),
        multi_site_permit: "MS-1".into(),
        requested_by: "ada@haven.test".into(),
        description: String::new(),
        executors: vec![Executor {
            image: IMAGE.into(),
            command: vec!["count".into()],
            env: Default::default(),
        }],
        inputs: vec![],
        resources: TaskResources::default(),
        cancelled: None,
    }
}

fn verdict(offer: &Offer, phase: PermitPhase) -> Verdict {
    judge(offer, &[permit(phase)], "north", "hub", |_| 0)
}

fn reason(verdict: Verdict) -> (SiteTaskState, String) {
    match verdict {
        Verdict::Refuse { state, reason, .. } => (state, reason),
        Verdict::Run { permit } => panic!("ran under {permit}"),
    }
}

#[test]
fn a_task_within_the_local_permit_runs_under_it() {
    assert_eq!(verdict(&offer(), PermitPhase::Active), Verdict::Run { permit: "survey-north".into() });
}

#[test]
fn a_site_whose_permit_is_not_active_takes_part_in_nothing() {
    for phase in [PermitPhase::Suspended, PermitPhase::Revoked, PermitPhase::Preparing] {
        let (state, why) = reason(verdict(&offer(), phase));
        assert_eq!((state, why), (SiteTaskState::NotParticipating, format!("{phase:?}")));
    }
}

#[test]
fn a_user_or_image_the_local_permit_does_not_name_is_refused_with_the_reason() {
    let mut stranger = offer();
    stranger.requested_by = "mallory@haven.test".into();
    assert_eq!(reason(verdict(&stranger, PermitPhase::Active)).1, reasons::USER_NOT_PERMITTED);
    let mut other_image = offer();
    other_image.executors.push(Executor {
        image: "evil.example/exfil:1".into(),
        command: vec!["x".into()],
        env: Default::default(),
    });
    let Verdict::Refuse { reason, message, .. } = verdict(&other_image, PermitPhase::Active) else {
        panic!("ran")
    };
    assert_eq!(reason, reasons::IMAGE_NOT_ALLOWED);
    assert!(message.contains("evil.example/exfil:1"), "{message}");
}

#[test]
fn resources_over_the_ceiling_and_tasks_over_the_limit_are_refused() {
    let mut big = offer();
    big.resources = TaskResources { cpu_cores: 3, ..TaskResources::default() };
    assert_eq!(reason(verdict(&big, PermitPhase::Active)).1, reasons::RESOURCES_EXCEED_CEILING);
    let mut hungry = offer();
    hungry.resources = TaskResources { ram_gb: 5, ..TaskResources::default() };
    assert_eq!(reason(verdict(&hungry, PermitPhase::Active)).1, reasons::RESOURCES_EXCEED_CEILING);
    let full = judge(&offer(), &[permit(PermitPhase::Active)], "north", "hub", |_| 2);
    assert_eq!(reason(full).1, "TaskLimitReached");
}

#[test]
fn an_offer_without_a_matching_local_permit_is_refused() {
    let mut other = offer();
    other.multi_site_permit = "MS-2".into();
    assert_eq!(reason(verdict(&other, PermitPhase::Active)).1, "NoPermit");
    // The same id requested from another site is another permit.
    assert_eq!(reason(judge(&offer(), &[permit(PermitPhase::Active)], "north", "east", |_| 0)).1, "NoPermit");
    assert_eq!(
        reason(judge(&offer(), &[permit(PermitPhase::Active)], "south", "hub", |_| 0)).1,
        "NotADataSite"
    );
}

#[test]
fn an_offer_outside_what_any_task_may_be_is_refused_before_it_is_judged() {
    let mut odd = offer();
    odd.uid = "../../etc".into();
    assert_eq!(reason(verdict(&odd, PermitPhase::Active)).1, "InvalidOffer");
    let mut many = offer();
    many.executors = vec![many.executors[0].clone(); 5];
    assert_eq!(reason(verdict(&many, PermitPhase::Active)).1, "InvalidOffer");
    let mut long = offer();
    long.resources.max_run_seconds = 10_000_000;
    assert_eq!(reason(verdict(&long, PermitPhase::Active)).1, "InvalidOffer");
}
