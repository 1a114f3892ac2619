use std::path::Path;

use haven_data::{
    DataStore,
    audit::{AuditLog, AuditRecord},
};
use serde_json::{Value, json};

use super::*;
use crate::{cli::OutputArgs, fixtures::NOW};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("fixture time")
}

fn record(time: &str, actor: &str, action: &str, object: &str, detail: Value) -> AuditRecord {
    AuditRecord {
        time: at(time),
        actor: actor.into(),
        action: action.into(),
        object: object.into(),
        detail: detail.as_object().cloned().unwrap_or_default(),
    }
}

fn visit_start(time: &str, user: &str, workspace: &str, visit: &str, kind: &str) -> AuditRecord {
    let detail = json!({
        "visit": visit, "kind": kind, "permit": "study", "source": "10.0.0.7", "userAgent": "Firefox/140",
    });
    record(time, user, "visit-start", &format!("workspace/{workspace}"), detail)
}

/// A `visit-end` as the gateway writes it; `requests` only for http visits.
fn visit_end(
    time: &str,
    user: &str,
    workspace: &str,
    visit: &str,
    start: &str,
    traffic: Value,
) -> AuditRecord {
    let seconds = (at(time) - at(start)).num_seconds();
    let mut detail =
        json!({"visit": visit, "permit": "study", "start": start, "end": time, "seconds": seconds});
    if let (Some(detail), Some(traffic)) = (detail.as_object_mut(), traffic.as_object()) {
        detail.extend(traffic.clone());
    }
    record(time, user, "visit-end", &format!("workspace/{workspace}"), detail)
}

/// A morning at the gateway: alice's long http visit, bob's short WebSocket, carol in another
/// workspace, alice back over a WebSocket still open, and two refusals.
fn morning() -> Vec<AuditRecord> {
    let gateway = |time, actor, action, detail| record(time, actor, action, "gateway", detail);
    vec![
        gateway(
            "2026-06-01T09:00:00Z",
            "alice",
            "login",
            json!({"source": "10.0.0.7", "amr": ["pwd", "otp"], "mfa": true}),
        ),
        visit_start("2026-06-01T09:00:05Z", "alice", "analysis", "v1", "http"),
        visit_start("2026-06-01T09:10:00Z", "bob", "analysis", "v2", "websocket"),
        visit_end(
            "2026-06-01T09:20:00Z",
            "bob",
            "analysis",
            "v2",
            "2026-06-01T09:10:00Z",
            json!({"kind": "websocket", "bytesIn": 2048, "bytesOut": 1_048_576, "reason": "closed"}),
        ),
        record(
            "2026-06-01T09:30:00Z",
            "mallory",
            "refused",
            "workspace/analysis",
            json!({
                "reason": "not a user of the workspace", "method": "GET", "path": "/lab", "status": 403,
                "source": "10.0.0.9", "userAgent": "curl/8",
            }),
        ),
        gateway(
            "2026-06-01T09:31:00Z",
            "anonymous",
            "login-refused",
            json!({"reason": "bad password", "source": "10.0.0.9", "userAgent": "curl/8"}),
        ),
        visit_end(
            "2026-06-01T10:02:05Z",
            "alice",
            "analysis",
            "v1",
            "2026-06-01T09:00:05Z",
            json!({
                "kind": "http", "requests": 412, "bytesIn": 10_240, "bytesOut": 5_242_880, "reason": "idle",
            }),
        ),
        visit_start("2026-06-01T10:30:00Z", "carol", "survey", "v3", "http"),
        visit_start("2026-06-01T11:00:00Z", "alice", "analysis", "v4", "websocket"),
    ]
}

/// A data store whose `audit/access.log` holds `records`, chained as the gateway chains them.
fn store_with_access_log(records: Vec<AuditRecord>) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::tempdir()?;
    let access_log = DataStore::new(dir.path()).access_log();
    let log = AuditLog::open_at(&access_log)?;
    for record in records {
        log.append(record)?;
    }
    Ok((dir, access_log))
}

fn args(log: &Path, workspace: Option<&str>) -> AccessArgs {
    AccessArgs {
        workspace: workspace.map(str::to_owned),
        log: log.to_owned(),
        user: None,
        since: None,
        refusals: false,
        output: OutputArgs { format: None },
    }
}

fn now() -> DateTime<Utc> {
    at(NOW)
}

fn listed(report: &AccessReport) -> Vec<(&str, &str)> {
    report.visits.iter().map(|visit| (visit.visit.as_str(), visit.user.as_str())).collect()
}

#[test]
fn a_workspace_lists_its_visits_paired_by_id_in_order_of_start() -> anyhow::Result<()> {
    let (dir, _) = store_with_access_log(morning())?;
    let report = access(&args(dir.path(), Some("analysis")), now())?;
    assert_eq!(listed(&report), [("v1", "alice"), ("v2", "bob"), ("v4", "alice")]);
    let alice = &report.visits[0];
    assert_eq!(alice.end, Some(at("2026-06-01T10:02:05Z")));
    assert_eq!(alice.duration(), Some(TimeDelta::seconds(3720)));
    assert_eq!((alice.requests, alice.bytes_in, alice.bytes_out), (Some(412), Some(10_240), Some(5_242_880)));
    assert_eq!(alice.ended.as_deref(), Some("idle"));
    assert_eq!(report.visits[1].requests, None);
    Ok(())
}

#[test]
fn the_table_reads_as_people_read_it_with_a_summary_and_the_chain_head() -> anyhow::Result<()> {
    let (dir, log) = store_with_access_log(morning())?;
    let report = access(&args(dir.path(), Some("analysis")), now())?;
    let head = haven_data::audit::verify(&log)?.head;
    let expected = [
        "USER    KIND        FROM                   TO          DURATION   REQUESTS   IN         OUT       SOURCE     ENDED",
        "alice   http        2026-06-01T09:00:05Z   10:02:05Z   1h 2m      412        10.0 KiB   5.0 MiB   10.0.0.7   idle",
        "bob     websocket   2026-06-01T09:10:00Z   09:20:00Z   10m        -          2.0 KiB    1.0 MiB   10.0.0.7   closed",
        "alice   websocket   2026-06-01T11:00:00Z   open        -          -          -          -         10.0.0.7   -",
        "",
        "3 visits by 2 people, 1h 12m inside; 1 open, not in that time (no visit-end: still inside, or the gateway stopped without writing one)",
        &format!("{}: 9 records, chain intact (head {head})", log.display()),
    ];
    assert_eq!(render(&report, false), expected.join("\n") + "\n");
    Ok(())
}

#[test]
fn without_a_workspace_every_workspace_is_listed_in_its_own_column() -> anyhow::Result<()> {
    let (dir, _) = store_with_access_log(morning())?;
    let report = access(&args(dir.path(), None), now())?;
    assert_eq!(listed(&report), [("v1", "alice"), ("v2", "bob"), ("v3", "carol"), ("v4", "alice")]);
    let rendered = render(&report, false);
    assert!(rendered.starts_with("WORKSPACE   USER    KIND"), "{rendered}");
    assert!(rendered.contains("survey      carol"), "{rendered}");
    assert!(rendered.contains("4 visits by 3 people, 1h 12m inside; 2 open"), "{rendered}");
    Ok(())
}

#[test]
fn the_user_filter_keeps_only_that_users_visits_and_refusals() -> anyhow::Result<()> {
    let (dir, _) = store_with_access_log(morning())?;
    let mut alice = args(dir.path(), None);
    alice.user = Some("alice".into());
    alice.refusals = true;
    let report = access(&alice, now())?;
    assert_eq!(listed(&report), [("v1", "alice"), ("v4", "alice")]);
    assert_eq!(report.refusals.as_deref(), Some(&[][..]));
    assert!(render(&report, false).contains("2 visits by 1 person, 1h 2m inside; 1 open"));
    Ok(())
}

#[test]
fn since_keeps_visits_still_going_then_and_open_ones() -> anyhow::Result<()> {
    let (dir, _) = store_with_access_log(morning())?;
    let mut window = args(dir.path(), Some("analysis"));
    window.since = Some("2026-06-01T09:30:00Z".parse().map_err(anyhow::Error::msg)?);
    // bob left at 09:20; alice's first visit lasted until 10:02; her second is open.
    assert_eq!(listed(&access(&window, now())?), [("v1", "alice"), ("v4", "alice")]);
    window.since = Some("150m".parse().map_err(anyhow::Error::msg)?); // 12:00 less 2h30m
    assert_eq!(listed(&access(&window, now())?), [("v1", "alice"), ("v4", "alice")]);
    window.since = Some("2026-06-01T09:20:00Z".parse().map_err(anyhow::Error::msg)?);
    assert_eq!(listed(&access(&window, now())?), [("v1", "alice"), ("v2", "bob"), ("v4", "alice")]);
    Ok(())
}

#[test]
fn refusals_are_the_workspaces_own_and_refused_logins_only_without_a_workspace() -> anyhow::Result<()> {
    let (dir, _) = store_with_access_log(morning())?;
    let mut analysis = args(dir.path(), Some("analysis"));
    analysis.refusals = true;
    let report = access(&analysis, now())?;
    let refused: Vec<&str> = report.refusals.iter().flatten().map(|r| r.user.as_str()).collect();
    assert_eq!(refused, ["mallory"]);
    let rendered = render(&report, false);
    assert!(
        rendered.contains(
            "TIME                   USER      REASON                        METHOD PATH   SOURCE\n\
             2026-06-01T09:30:00Z   mallory   not a user of the workspace   GET /lab      10.0.0.9\n"
        ),
        "{rendered}"
    );
    let mut everywhere = args(dir.path(), None);
    everywhere.refusals = true;
    everywhere.since = Some("2026-06-01T09:30:30Z".parse().map_err(anyhow::Error::msg)?);
    let report = access(&everywhere, now())?;
    let refused: Vec<&str> = report.refusals.iter().flatten().map(|r| r.action.as_str()).collect();
    assert_eq!(refused, ["login-refused"]);
    let rendered = render(&report, false);
    assert!(rendered.contains("(gateway)   anonymous   bad password   login"), "{rendered}");
    assert!(!render(&access(&args(dir.path(), None), now())?, false).contains("TIME"));
    Ok(())
}

#[test]
fn a_log_with_an_edited_line_is_refused_naming_the_line() -> anyhow::Result<()> {
    let (dir, log) = store_with_access_log(morning())?;
    let text = std::fs::read_to_string(&log)?;
    // Line 3 is bob's visit-start: he was never there, says the edit.
    std::fs::write(&log, text.replacen("\"bob\"", "\"b0b\"", 1))?;
    let message = access(&args(dir.path(), Some("analysis")), now()).err().map(|e| format!("{e:#}"));
    let message = message.unwrap_or_default();
    assert!(message.contains("does not verify") && message.contains("line 4"), "{message}");
    Ok(())
}

#[test]
fn a_data_store_root_is_read_through_its_access_log_and_a_missing_one_is_named() -> anyhow::Result<()> {
    let (dir, log) = store_with_access_log(morning())?;
    assert_eq!(log_path(dir.path()), log);
    assert_eq!(access(&args(&log, None), now())?.records, 9);
    let empty = tempfile::tempdir()?;
    let message = access(&args(empty.path(), None), now()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("nor a data store root with audit/access.log"), "{message}");
    Ok(())
}

#[test]
fn a_visit_end_without_its_start_still_counts_from_the_start_it_gives() -> anyhow::Result<()> {
    let end = visit_end(
        "2026-06-01T09:05:00Z",
        "dave",
        "analysis",
        "v9",
        "2026-06-01T08:55:00Z",
        json!({"kind": "http", "requests": 3, "reason": "access removed: permit revoked"}),
    );
    let (dir, _) = store_with_access_log(vec![
        visit_start("2026-06-01T09:00:00Z", "erin", "analysis", "v8", "http"),
        end,
    ])?;
    let report = access(&args(dir.path(), Some("analysis")), now())?;
    assert_eq!(listed(&report), [("v9", "dave"), ("v8", "erin")]);
    assert_eq!(report.visits[0].start, at("2026-06-01T08:55:00Z"));
    assert_eq!(report.visits[0].ended.as_deref(), Some("access removed: permit revoked"));
    Ok(())
}

#[test]
fn the_same_visit_id_in_two_workspaces_is_two_visits() -> anyhow::Result<()> {
    let records = vec![
        visit_start("2026-06-01T09:00:00Z", "alice", "analysis", "v1", "http"),
        visit_start("2026-06-01T09:01:00Z", "alice", "survey", "v1", "http"),
        visit_end(
            "2026-06-01T09:02:00Z",
            "alice",
            "survey",
            "v1",
            "2026-06-01T09:01:00Z",
            json!({"reason": "idle"}),
        ),
    ];
    let (dir, _) = store_with_access_log(records)?;
    let report = access(&args(dir.path(), None), now())?;
    let ends: Vec<(&str, bool)> =
        report.visits.iter().map(|v| (v.workspace.as_str(), v.end.is_some())).collect();
    assert_eq!(ends, [("analysis", false), ("survey", true)]);
    Ok(())
}

#[test]
fn json_output_gives_an_open_visit_a_null_end_and_names_the_head() -> anyhow::Result<()> {
    let (dir, log) = store_with_access_log(morning())?;
    let value = serde_json::to_value(access(&args(dir.path(), Some("analysis")), now())?)?;
    assert_eq!(value["head"], json!(haven_data::audit::verify(&log)?.head));
    assert_eq!(value["visits"][0]["bytesOut"], json!(5_242_880));
    assert_eq!(value["visits"][2]["end"], Value::Null);
    assert_eq!(value.get("refusals"), None);
    Ok(())
}

#[test]
fn an_empty_log_lists_nothing_but_still_names_its_head() -> anyhow::Result<()> {
    let (dir, _) = store_with_access_log(vec![])?;
    let rendered = render(&access(&args(dir.path(), Some("analysis")), now())?, false);
    assert!(rendered.starts_with("No visits to workspace analysis.\n"), "{rendered}");
    assert!(rendered.contains("0 visits by 0 people, 0s inside\n"), "{rendered}");
    assert!(rendered.contains(&format!("0 records, chain intact (head {})", haven_data::audit::GENESIS)));
    Ok(())
}

#[test]
fn the_gateways_own_start_end_and_fractional_seconds_are_taken() -> anyhow::Result<()> {
    let records = vec![
        visit_start("2026-06-01T09:00:05.200Z", "alice", "analysis", "v1", "http"),
        record(
            "2026-06-01T09:01:05.300Z",
            "alice",
            "visit-end",
            "workspace/analysis",
            json!({
                "visit": "v1", "kind": "http", "permit": "study", "start": "2026-06-01T09:00:05.123Z",
                "end": "2026-06-01T09:01:05.023Z", "seconds": 59.9, "requests": 7, "bytesIn": 0,
                "bytesOut": 1, "reason": "gateway stopped",
            }),
        ),
    ];
    let (dir, _) = store_with_access_log(records)?;
    let report = access(&args(dir.path(), None), now())?;
    let visit = &report.visits[0];
    assert_eq!(
        (visit.start, visit.end),
        (at("2026-06-01T09:00:05.123Z"), Some(at("2026-06-01T09:01:05.023Z")))
    );
    assert_eq!(visit.duration(), Some(TimeDelta::milliseconds(59_900)));
    let rendered = render(&report, false);
    assert!(
        rendered.contains(
            "2026-06-01T09:00:05Z   09:01:05Z   59s        7          0 B   1 B   10.0.0.7   gateway stopped"
        ),
        "{rendered}"
    );
    Ok(())
}
