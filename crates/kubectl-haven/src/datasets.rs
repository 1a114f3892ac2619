//! `kubectl haven datasets`: the register of data held. One row per raw source in the data
//! store: who supplied it, which permits use it (and in what phase), when it was last prepared,
//! and until when it is needed, so an auditor can see what is held, why, and for how long.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use haven_api::{DataPermit, permit::PermitPhase, validation::parse_duration};
use kube::{Api, api::ListParams};
use serde::Serialize;

use crate::{
    connect::Connect,
    error,
    format::{self, OutputFormat, Table},
};

/// The register as `-o json|yaml` prints it.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Register {
    /// When the register was read from the cluster.
    pub as_of: DateTime<Utc>,
    pub datasets: Vec<HeldSource>,
}

/// One raw source and everything that holds it.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HeldSource {
    /// The path under the data store's `raw/`.
    pub source: String,
    /// The custodians the permits name for it, distinct; more than one is a discrepancy.
    pub custodians: Vec<String>,
    /// The dataset names it is granted under, distinct.
    pub names: Vec<String>,
    /// The permits that grant it, by name.
    pub permits: Vec<PermitUse>,
    /// The latest preparation of an extract from it, by any of its permits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prepared_at: Option<DateTime<Utc>>,
    /// The latest retention end of its permits not yet destroyed; absent once all are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needed_until: Option<DateTime<Utc>>,
}

/// How one permit uses a source.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PermitUse {
    pub name: String,
    pub permit_id: String,
    pub phase: PermitPhase,
    /// The permit's names for the source (usually one).
    pub datasets: Vec<String>,
    /// The custodian this permit names, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custodian: Option<String>,
    /// When this permit's latest extract of the source was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prepared_at: Option<DateTime<Utc>>,
    /// When this permit's data is destroyed: `status.destroyAfter`, else `validUntil` plus
    /// `retention`; absent once destroyed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_ends: Option<DateTime<Utc>>,
    /// When this permit's data was destroyed (its destruction record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destroyed_at: Option<DateTime<Utc>>,
}

impl PermitUse {
    fn destroyed(&self) -> bool {
        self.phase == PermitPhase::Destroyed || self.destroyed_at.is_some()
    }
}

pub async fn run(connect: &Connect, format: Option<OutputFormat>) -> anyhow::Result<()> {
    let session = connect.session().await?;
    let permits = Api::<DataPermit>::all(session.client)
        .list(&ListParams::default())
        .await
        .map_err(|e| error::listing("datapermit", e))?
        .items;
    let register = register(&permits, Utc::now());
    if format::print_structured(&register, format)? {
        return Ok(());
    }
    if register.datasets.is_empty() {
        eprintln!("No datasets found: no data permit grants any.");
        return Ok(());
    }
    print!("{}", render(&register, format == Some(OutputFormat::Wide)));
    Ok(())
}

/// When `permit`'s data is destroyed: its scheduled `destroyAfter` once archived, else
/// `validUntil` plus its retention.
pub fn retention_end(permit: &DataPermit) -> DateTime<Utc> {
    if let Some(at) = permit.status.as_ref().and_then(|s| s.destroy_after) {
        return at;
    }
    // The schema admits only valid durations; an unreadable one is read as the operator reads
    // it, the longest default.
    let retention = parse_duration(&permit.spec.retention).unwrap_or_else(|| Duration::days(183));
    permit.spec.valid_until + retention
}

/// The register of `permits`' sources: one entry per source, sorted by source, its permits by
/// name.
pub fn register(permits: &[DataPermit], now: DateTime<Utc>) -> Register {
    let mut by_source: BTreeMap<&str, Vec<PermitUse>> = BTreeMap::new();
    for permit in permits {
        let status = permit.status.clone().unwrap_or_default();
        let mut uses: BTreeMap<&str, PermitUse> = BTreeMap::new();
        for grant in &permit.spec.datasets {
            let prepared =
                status.datasets.iter().find(|report| report.name == grant.name).map(|r| r.prepared_at);
            let destroyed_at = status.destruction.as_ref().map(|record| record.destroyed_at);
            let destroyed = status.phase == PermitPhase::Destroyed || destroyed_at.is_some();
            let entry = uses.entry(&grant.source).or_insert_with(|| PermitUse {
                name: permit.metadata.name.clone().unwrap_or_default(),
                permit_id: permit.spec.permit_id.clone(),
                phase: status.phase,
                datasets: Vec::new(),
                custodian: None,
                prepared_at: None,
                retention_ends: (!destroyed).then(|| retention_end(permit)),
                destroyed_at,
            });
            entry.datasets.push(grant.name.clone());
            entry.custodian = entry.custodian.take().or_else(|| grant.custodian.clone());
            entry.prepared_at = entry.prepared_at.max(prepared);
        }
        for (source, used) in uses {
            by_source.entry(source).or_default().push(used);
        }
    }
    let datasets = by_source
        .into_iter()
        .map(|(source, mut permits)| {
            permits.sort_by(|a, b| a.name.cmp(&b.name));
            let custodians: BTreeSet<&String> = permits.iter().filter_map(|p| p.custodian.as_ref()).collect();
            let names: BTreeSet<&String> = permits.iter().flat_map(|p| &p.datasets).collect();
            HeldSource {
                source: source.to_owned(),
                custodians: custodians.into_iter().cloned().collect(),
                names: names.into_iter().cloned().collect(),
                prepared_at: permits.iter().filter_map(|p| p.prepared_at).max(),
                needed_until: permits
                    .iter()
                    .filter(|p| !p.destroyed())
                    .filter_map(|p| p.retention_ends)
                    .max(),
                permits,
            }
        })
        .collect();
    Register { as_of: now, datasets }
}

/// A permit in the PERMITS column: `name (Phase)`, with the date for a destroyed one.
fn permit_cell(permit: &PermitUse) -> String {
    match permit.destroyed_at {
        Some(at) => format!("{} (Destroyed {})", permit.name, format::date(at)),
        _ => format!("{} ({:?})", permit.name, permit.phase),
    }
}

fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() { "-".into() } else { items.join(", ") }
}

pub fn render(register: &Register, wide: bool) -> String {
    // PERMITS last: the one cell that grows with the number of permits.
    let mut headers = vec!["SOURCE", "CUSTODIAN", "DATASETS", "PREPARED", "NEEDED UNTIL", "PERMITS"];
    if wide {
        headers.push("PERMIT IDS");
    }
    let mut table = Table::new(&headers);
    for held in &register.datasets {
        let mut row = vec![
            held.source.clone(),
            list_or_dash(&held.custodians),
            held.names.join(", "),
            held.prepared_at.map_or_else(|| "not prepared yet".into(), format::date),
            held.needed_until.map_or_else(|| "no longer (all destroyed)".into(), format::date),
            held.permits.iter().map(permit_cell).collect::<Vec<_>>().join(", "),
        ];
        if wide {
            row.push(held.permits.iter().map(|p| p.permit_id.as_str()).collect::<Vec<_>>().join(", "));
        }
        table.row(row);
    }
    table.render("")
}

#[cfg(test)]
mod tests {
    use haven_api::permit::DatasetGrant;

    use super::*;
    use crate::fixtures::{NOW, permit};

    fn now() -> DateTime<Utc> {
        NOW.parse().expect("fixture time")
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("fixture time")
    }

    /// A dataset `name` from `source`, supplied by `custodian`.
    fn grant(name: &str, source: &str, custodian: Option<&str>) -> DatasetGrant {
        let mut grant = permit("").spec.datasets[0].clone();
        (grant.name, grant.source, grant.custodian) = (name.into(), source.into(), custodian.map(Into::into));
        grant
    }

    /// The fixture permit renamed `name` (id `ID-<name>`), granting `datasets`, with `status`.
    fn permit_of(name: &str, datasets: Vec<DatasetGrant>, status: &str) -> DataPermit {
        let mut permit = permit(status);
        permit.metadata.name = Some(name.into());
        permit.spec.permit_id = format!("ID-{name}");
        permit.spec.datasets = datasets;
        permit
    }

    const REGISTRY: &str = "National Cancer Registry";

    /// `old` was destroyed; `cohort` is Active and prepared; `followup` is Pending and shares
    /// the registry source with both (as `cancer`), and has a survey of its own.
    fn permits() -> Vec<DataPermit> {
        let old = permit_of(
            "old",
            vec![grant("registry", "registry/cancer-2024.csv", Some(REGISTRY))],
            r#"
phase: Destroyed
datasets:
- {name: registry, rowsIn: 3, rowsOut: 3, keyFingerprint: a, outputSha256: b, preparedAt: "2026-01-10T09:00:00Z"}
archivedAt: "2026-02-01T00:00:00Z"
destroyAfter: "2026-02-01T01:00:00Z"
destruction: {destroyedAt: "2026-02-01T01:00:05Z", deleted: [], keyFingerprint: a, keyShredded: true}
"#,
        );
        let cohort = permit_of(
            "cohort",
            vec![grant("registry", "registry/cancer-2024.csv", Some(REGISTRY))],
            r#"
phase: Active
datasets:
- {name: registry, rowsIn: 3, rowsOut: 3, keyFingerprint: c, outputSha256: d, preparedAt: "2026-05-01T12:05:00Z"}
"#,
        );
        let mut followup = permit_of(
            "followup",
            vec![
                grant("cancer", "registry/cancer-2024.csv", Some(REGISTRY)),
                grant("survey", "survey/2025.csv", None),
            ],
            "phase: Pending\n",
        );
        followup.spec.valid_until = at("2026-09-01T00:00:00Z");
        followup.spec.retention = "720h".into();
        vec![followup, old, cohort]
    }

    #[test]
    fn a_permit_retention_ends_at_destroy_after_once_set_else_valid_until_plus_retention() {
        let active = permit("phase: Active\n");
        assert_eq!(retention_end(&active), at("2026-06-13T16:30:00Z") + Duration::hours(4392));
        let mut short = permit("phase: Active\n");
        short.spec.retention = "1h30m".into();
        assert_eq!(retention_end(&short), at("2026-06-13T18:00:00Z"));
        let archived =
            permit("phase: Archived\narchivedAt: 2026-06-14T00:00:00Z\ndestroyAfter: 2026-12-14T00:00:00Z\n");
        assert_eq!(retention_end(&archived), at("2026-12-14T00:00:00Z"));
    }

    #[test]
    fn one_row_per_source_lists_every_permit_that_grants_it_under_any_name() {
        let register = register(&permits(), now());
        let sources: Vec<&str> = register.datasets.iter().map(|d| d.source.as_str()).collect();
        assert_eq!(sources, ["registry/cancer-2024.csv", "survey/2025.csv"]);
        let registry = &register.datasets[0];
        assert_eq!(registry.names, ["cancer", "registry"]);
        assert_eq!(registry.custodians, [REGISTRY]);
        let permits: Vec<(&str, PermitPhase)> =
            registry.permits.iter().map(|p| (p.name.as_str(), p.phase)).collect();
        assert_eq!(
            permits,
            [
                ("cohort", PermitPhase::Active),
                ("followup", PermitPhase::Pending),
                ("old", PermitPhase::Destroyed)
            ]
        );
        let survey = &register.datasets[1];
        assert!(survey.custodians.is_empty());
        assert_eq!(survey.permits.len(), 1);
        assert_eq!(survey.prepared_at, None, "the pending permit has not prepared it");
    }

    #[test]
    fn the_source_is_prepared_at_the_latest_preparation_of_any_permit() {
        let register = register(&permits(), now());
        assert_eq!(register.datasets[0].prepared_at, Some(at("2026-05-01T12:05:00Z")));
    }

    #[test]
    fn a_source_is_needed_until_the_latest_retention_end_of_permits_not_destroyed() {
        let register = register(&permits(), now());
        let registry = &register.datasets[0];
        // cohort: 2026-06-13 16:30 + 4392h (183d) = 2026-12-13 16:30; followup: 2026-10-01.
        assert_eq!(registry.needed_until, Some(at("2026-12-13T16:30:00Z")));
        let old = registry.permits.iter().find(|p| p.name == "old").expect("old listed");
        assert_eq!((old.retention_ends, old.destroyed_at), (None, Some(at("2026-02-01T01:00:05Z"))));
        assert_eq!(register.datasets[1].needed_until, Some(at("2026-10-01T00:00:00Z")));
    }

    #[test]
    fn a_source_whose_permits_are_all_destroyed_is_needed_no_longer() {
        let destroyed: Vec<DataPermit> =
            permits().into_iter().filter(|p| p.metadata.name.as_deref() == Some("old")).collect();
        let register = register(&destroyed, now());
        assert_eq!(register.datasets[0].needed_until, None);
        let text = render(&register, false);
        assert!(text.contains("old (Destroyed 2026-02-01 01:00 UTC)"), "{text}");
        assert!(text.contains("no longer (all destroyed)"), "{text}");
    }

    #[test]
    fn one_permit_granting_a_source_twice_is_listed_once_with_both_names() {
        let twice = permit_of(
            "twice",
            vec![grant("b-cut", "registry/x.csv", None), grant("a-cut", "registry/x.csv", Some(REGISTRY))],
            "phase: Active\n",
        );
        let register = register(&[twice], now());
        let held = &register.datasets[0];
        assert_eq!(held.permits.len(), 1);
        assert_eq!(held.permits[0].datasets, ["b-cut", "a-cut"]);
        assert_eq!(held.names, ["a-cut", "b-cut"]);
        assert_eq!(held.custodians, [REGISTRY]);
    }

    #[test]
    fn different_custodians_for_one_source_are_all_shown() {
        let a = permit_of("a", vec![grant("x", "x.csv", Some("Registry A"))], "phase: Active\n");
        let b = permit_of("b", vec![grant("x", "x.csv", Some("Registry B"))], "phase: Active\n");
        let text = render(&register(&[a, b], now()), false);
        assert!(text.contains("Registry A, Registry B"), "{text}");
    }

    #[test]
    fn the_table_shows_source_custodian_names_permits_with_phases_and_dates() {
        let text = render(&register(&permits(), now()), false);
        let expected = "\
SOURCE                     CUSTODIAN                  DATASETS           PREPARED               NEEDED UNTIL           PERMITS
registry/cancer-2024.csv   National Cancer Registry   cancer, registry   2026-05-01 12:05 UTC   2026-12-13 16:30 UTC   cohort (Active), followup (Pending), old (Destroyed 2026-02-01 01:00 UTC)
survey/2025.csv            -                          survey             not prepared yet       2026-10-01 00:00 UTC   followup (Pending)
";
        assert_eq!(text, expected);
    }

    #[test]
    fn wide_adds_the_permit_ids() {
        let text = render(&register(&permits(), now()), true);
        let header = text.lines().next().unwrap_or_default();
        assert!(header.ends_with("PERMIT IDS"), "{header}");
        assert!(text.contains("ID-cohort, ID-followup, ID-old"), "{text}");
    }

    #[test]
    fn the_json_register_names_its_fields_in_camel_case() -> anyhow::Result<()> {
        let json = serde_json::to_value(register(&permits(), now()))?;
        assert_eq!(json["asOf"], "2026-06-01T12:00:00Z");
        let registry = &json["datasets"][0];
        assert_eq!(registry["source"], "registry/cancer-2024.csv");
        assert_eq!(registry["neededUntil"], "2026-12-13T16:30:00Z");
        assert_eq!(registry["preparedAt"], "2026-05-01T12:05:00Z");
        let old = &registry["permits"][2];
        assert_eq!((&old["name"], &old["phase"]), (&"old".into(), &"Destroyed".into()));
        assert_eq!(old["destroyedAt"], "2026-02-01T01:00:05Z");
        assert_eq!(old["permitId"], "ID-old");
        assert!(old.get("retentionEnds").is_none(), "{old}");
        Ok(())
    }
}
