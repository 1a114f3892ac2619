//! The register of data held (`kubectl haven datasets`) against the real control plane with the
//! operator running: two permits share a source under different names, one of them has a source
//! of its own; once one permit's data is destroyed, the register still lists it, as destroyed
//! and when, and the source stays needed until the other permit's retention ends.

use std::process::Output;

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};
use haven_api::{DataPermit, permit::PermitPhase};
use haven_e2e::{
    DEADLINE, Operator, admin, data_root, ensure_namespace, eventually, fixtures, kubectl_haven, unique_name,
};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

const CUSTODIAN: &str = "E2E Cancer Registry";

/// `kubectl haven <args>`, which must succeed; its stdout.
fn plugin(args: &[&str]) -> Result<String> {
    let Output { status, stdout, stderr } = kubectl_haven(args)?;
    anyhow::ensure!(
        status.success(),
        "kubectl haven {args:?}: {status}\n{}",
        String::from_utf8_lossy(&stderr)
    );
    Ok(String::from_utf8(stdout)?)
}

/// A dataset `name` from `source` with the fixture's one column, supplied by `custodian`.
fn grant(name: &str, source: &str, custodian: Option<&str>) -> Result<haven_api::permit::DatasetGrant> {
    let mut grant = json!({"name": name, "source": source, "columns": [{"name": "id", "rule": "Hmac"}]});
    if let Some(custodian) = custodian {
        grant["custodian"] = custodian.into();
    }
    Ok(serde_json::from_value(grant)?)
}

/// The permit once Active with every dataset's preparation report in its status.
async fn prepared(permits: &Api<DataPermit>, name: &str) -> Result<DataPermit> {
    eventually(DEADLINE, &format!("permit {name} Active and prepared"), || async {
        let permit = permits.get(name).await?;
        let status = permit.status.clone().unwrap_or_default();
        let done = status.phase == PermitPhase::Active && status.datasets.len() == permit.spec.datasets.len();
        Ok(done.then_some(permit))
    })
    .await
}

fn instant(value: &Value) -> Result<DateTime<Utc>> {
    Ok(value.as_str().with_context(|| format!("an instant, not {value}"))?.parse()?)
}

/// The register's row for `source`.
fn row<'a>(register: &'a Value, source: &str) -> Result<&'a Value> {
    register["datasets"]
        .as_array()
        .context("datasets")?
        .iter()
        .find(|held| held["source"] == source)
        .with_context(|| format!("{source} in the register: {register:#}"))
}

/// `(name, phase)` of each permit in a row, in the register's order.
fn permits_of(held: &Value) -> Vec<(String, String)> {
    let permits = held["permits"].as_array().cloned().unwrap_or_default();
    permits
        .iter()
        .map(|p| (p["name"].as_str().unwrap_or("").into(), p["phase"].as_str().unwrap_or("").into()))
        .collect()
}

#[tokio::test]
async fn the_register_lists_permits_and_dates_after_one_is_destroyed() -> Result<()> {
    let client = admin().await?;
    ensure_namespace(&client, "haven-system").await?;
    let root = data_root("register")?;
    // Sources under a directory of this test's own, so other tests' permits share no row.
    let dir = unique_name("reg");
    let (shared, own) = (format!("{dir}/registry.csv"), format!("{dir}/own.csv"));
    std::fs::create_dir_all(root.join("raw").join(&dir))?;
    for source in [&shared, &own] {
        std::fs::write(root.join("raw").join(source), format!("id\n{}\n", fixtures::RAW_IDS.join("\n")))?;
    }
    let _operator = Operator::start(&root).await?;

    // `gone` and `kept` both hold the registry source, under different names; `kept` also has
    // a source of its own. Retention is 3s (the fixture's).
    let permits: Api<DataPermit> = Api::all(client.clone());
    let (gone, kept) = (unique_name("reg-gone"), unique_name("reg-kept"));
    let mut gone_permit = fixtures::permit(&gone, "gone@example.org", -5, 600)?;
    gone_permit.spec.datasets = vec![grant("survey", &shared, Some(CUSTODIAN))?];
    let mut kept_permit = fixtures::permit(&kept, "kept@example.org", -5, 600)?;
    kept_permit.spec.datasets = vec![grant("cohort", &shared, Some(CUSTODIAN))?, grant("own", &own, None)?];
    permits.create(&PostParams::default(), &gone_permit).await?;
    permits.create(&PostParams::default(), &kept_permit).await?;
    prepared(&permits, &gone).await?;
    let kept_permit = prepared(&permits, &kept).await?;

    // `gone` ends now: it expires, is archived (it has no workspaces) and, 3s on, destroyed.
    let ends = json!({"spec": {"validUntil": (Utc::now() + Duration::seconds(1)).to_rfc3339()}});
    permits.patch(&gone, &PatchParams::default(), &Patch::Merge(&ends)).await?;
    let gone_permit = eventually(DEADLINE, "permit gone Destroyed", || async {
        let permit = permits.get(&gone).await?;
        let destroyed = permit.status.as_ref().is_some_and(|s| s.destruction.is_some());
        Ok(destroyed.then_some(permit))
    })
    .await?;
    let destroyed_at =
        gone_permit.status.as_ref().and_then(|s| s.destruction.as_ref()).context("record")?.destroyed_at;

    let register: Value = serde_json::from_str(&plugin(&["datasets", "-o", "json"])?)?;
    instant(&register["asOf"]).context("the register says when it was read")?;

    // The shared source: both permits, the destroyed one with its date and no retention end;
    // needed until the active permit's retention ends (validUntil + 3s: it is not archived).
    let kept_ends = kept_permit.spec.valid_until + Duration::seconds(3);
    let held = row(&register, &shared)?;
    let mut expected = vec![(gone.clone(), "Destroyed".to_owned()), (kept.clone(), "Active".to_owned())];
    expected.sort();
    assert_eq!(permits_of(held), expected, "{held:#}");
    assert_eq!(held["names"], json!(["cohort", "survey"]), "{held:#}");
    assert_eq!(held["custodians"], json!([CUSTODIAN]), "{held:#}");
    assert_eq!(instant(&held["neededUntil"])?, kept_ends, "{held:#}");
    let prepared_at = |permit: &DataPermit, dataset: &str| {
        let reports = permit.status.iter().flat_map(|s| &s.datasets);
        reports.filter(|d| d.name == dataset).map(|d| d.prepared_at).max()
    };
    let latest_preparation = prepared_at(&gone_permit, "survey").max(prepared_at(&kept_permit, "cohort"));
    assert_eq!(Some(instant(&held["preparedAt"])?), latest_preparation, "{held:#}");
    let listed = |name: &str| held["permits"].as_array().and_then(|ps| ps.iter().find(|p| p["name"] == name));
    let gone_use = listed(&gone).context("gone listed")?;
    assert_eq!(instant(&gone_use["destroyedAt"])?, destroyed_at, "{gone_use:#}");
    assert!(gone_use.get("retentionEnds").is_none(), "a destroyed permit needs nothing: {gone_use:#}");
    assert_eq!(gone_use["datasets"], json!(["survey"]));
    let kept_use = listed(&kept).context("kept listed")?;
    assert_eq!(instant(&kept_use["retentionEnds"])?, kept_ends, "{kept_use:#}");
    assert_eq!(kept_use["datasets"], json!(["cohort"]));
    assert_eq!(kept_use["permitId"], format!("E2E-{kept}"));

    // The source only `kept` holds: no custodian named, prepared by it, needed as long.
    let held = row(&register, &own)?;
    assert_eq!(permits_of(held), [(kept.clone(), "Active".to_owned())], "{held:#}");
    assert_eq!(held["custodians"], json!([]), "{held:#}");
    assert_eq!(instant(&held["neededUntil"])?, kept_ends, "{held:#}");
    assert_eq!(Some(instant(&held["preparedAt"])?), prepared_at(&kept_permit, "own"), "{held:#}");

    // The table says the same, one line per source.
    let table = plugin(&["datasets"])?;
    eprintln!("{table}");
    let line = table.lines().find(|l| l.starts_with(&format!("{shared} "))).context("shared row")?;
    assert!(line.contains(CUSTODIAN) && line.contains("cohort, survey"), "{line:?}");
    assert!(line.contains(&format!("{kept} (Active)")), "{line:?}");
    assert!(
        line.contains(&format!("{gone} (Destroyed {})", destroyed_at.format("%Y-%m-%d %H:%M UTC"))),
        "{line:?}"
    );
    assert!(line.contains(&kept_ends.format("%Y-%m-%d %H:%M UTC").to_string()), "{line:?}");
    let line = table.lines().find(|l| l.starts_with(&format!("{own} "))).context("own row")?;
    assert!(line.contains(&format!("{kept} (Active)")) && !line.contains(&gone), "{line:?}");

    // Leave nothing for later tests' operators.
    for name in [&gone, &kept] {
        permits.delete(name, &DeleteParams::default()).await?;
    }
    eventually(DEADLINE, "both permits deleted", || async {
        let left = permits.get_opt(&gone).await?.is_some() || permits.get_opt(&kept).await?.is_some();
        Ok((!left).then_some(()))
    })
    .await
}
