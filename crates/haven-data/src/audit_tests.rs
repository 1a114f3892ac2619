use std::sync::Arc;
use std::thread;

use chrono::TimeZone;
use serde_json::json;

use super::*;

fn record(n: u32) -> AuditRecord {
    let time = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, n % 60).single().expect("valid time");
    let detail = json!({ "n": n }).as_object().cloned().expect("object");
    AuditRecord {
        time,
        actor: "haven-operator".into(),
        action: "archive".into(),
        object: "workspace/ws1".into(),
        detail,
    }
}

fn log() -> (tempfile::TempDir, DataStore, AuditLog) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::new(dir.path());
    let log = AuditLog::open(&store).expect("open");
    (dir, store, log)
}

fn lines(store: &DataStore) -> Vec<String> {
    fs::read_to_string(store.audit_log()).expect("read").lines().map(str::to_owned).collect()
}

fn write_lines(store: &DataStore, lines: &[String]) {
    fs::write(store.audit_log(), lines.iter().map(|l| format!("{l}\n")).collect::<String>()).expect("write");
}

fn broken_line(result: Result<VerifyReport, AuditError>) -> usize {
    match result {
        Err(AuditError::BrokenChain { line, .. }) => line,
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[test]
fn appended_records_form_a_chain_that_verifies() {
    let (_dir, store, log) = log();
    for n in 1..=3 {
        log.append(record(n)).expect("append");
    }
    let lines = lines(&store);
    let first: Value = serde_json::from_str(&lines[0]).expect("json");
    assert_eq!(first["seq"], 1);
    assert_eq!(first["prev"], GENESIS);
    assert_eq!(first["time"], "2026-03-01T12:00:01Z");
    assert_eq!(first["detail"], json!({ "n": 1 }));
    let second: Value = serde_json::from_str(&lines[1]).expect("json");
    assert_eq!(second["prev"], sha256_hex(lines[0].as_bytes()));
    let keys: Vec<&str> =
        ["\"seq\"", "\"time\"", "\"actor\"", "\"action\"", "\"object\"", "\"detail\"", "\"prev\""]
            .into_iter()
            .filter(|k| lines[0].contains(k))
            .collect();
    assert_eq!(keys.len(), 7);
    let report = verify(&store.audit_log()).expect("verify");
    assert_eq!(report, VerifyReport { records: 3, head: sha256_hex(lines[2].as_bytes()) });
}

#[test]
fn an_empty_log_verifies_with_the_genesis_head() {
    let (_dir, store, _log) = log();
    assert_eq!(
        verify(&store.audit_log()).expect("verify"),
        VerifyReport { records: 0, head: GENESIS.into() }
    );
}

#[test]
fn reopening_continues_the_chain() {
    let (_dir, store, log) = log();
    log.append(record(1)).expect("append");
    log.append(record(2)).expect("append");
    drop(log);
    let reopened = AuditLog::open(&store).expect("reopen");
    reopened.append(record(3)).expect("append");
    assert_eq!(verify(&store.audit_log()).expect("verify").records, 3);
}

#[test]
fn appends_from_many_threads_keep_the_chain_intact() {
    let (_dir, store, log) = log();
    let log = Arc::new(log);
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                for n in 0..25 {
                    log.append(record(t * 100 + n)).expect("append");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("thread");
    }
    assert_eq!(verify(&store.audit_log()).expect("verify").records, 200);
}

#[test]
fn editing_a_record_breaks_the_chain_at_the_next_line() {
    let (_dir, store, log) = log();
    for n in 1..=4 {
        log.append(record(n)).expect("append");
    }
    let mut lines = lines(&store);
    lines[1] = lines[1].replace("haven-operator", "someone-else");
    write_lines(&store, &lines);
    assert_eq!(broken_line(verify(&store.audit_log())), 3);
}

#[test]
fn dropping_a_record_breaks_the_chain_where_it_was() {
    let (_dir, store, log) = log();
    for n in 1..=4 {
        log.append(record(n)).expect("append");
    }
    let mut lines = lines(&store);
    lines.remove(1);
    write_lines(&store, &lines);
    assert_eq!(broken_line(verify(&store.audit_log())), 2);
}

#[test]
fn dropping_the_first_record_breaks_the_chain_at_line_one() {
    let (_dir, store, log) = log();
    log.append(record(1)).expect("append");
    log.append(record(2)).expect("append");
    let lines = lines(&store);
    write_lines(&store, &lines[1..]);
    assert_eq!(broken_line(verify(&store.audit_log())), 1);
}

#[test]
fn a_truncated_last_line_is_reported_at_that_line() {
    let (_dir, store, log) = log();
    for n in 1..=3 {
        log.append(record(n)).expect("append");
    }
    let bytes = fs::read(store.audit_log()).expect("read");
    fs::write(store.audit_log(), &bytes[..bytes.len() - 10]).expect("truncate");
    assert_eq!(broken_line(verify(&store.audit_log())), 3);
}

#[test]
fn an_invalid_line_is_reported_at_that_line() {
    let (_dir, store, log) = log();
    log.append(record(1)).expect("append");
    log.append(record(2)).expect("append");
    let mut lines = lines(&store);
    lines.insert(1, "not json".into());
    write_lines(&store, &lines);
    assert_eq!(broken_line(verify(&store.audit_log())), 2);
}

#[test]
fn reopening_a_log_with_a_cut_short_last_line_is_refused_at_that_line() {
    let (_dir, store, log) = log();
    log.append(record(1)).expect("append");
    log.append(record(2)).expect("append");
    drop(log);
    let bytes = fs::read(store.audit_log()).expect("read");
    fs::write(store.audit_log(), &bytes[..bytes.len() - 1]).expect("drop the newline");
    match AuditLog::open(&store) {
        Err(AuditError::BrokenChain { line: 2, .. }) => {}
        other => panic!("expected line 2 to be reported, got {other:?}"),
    }
}

#[test]
fn the_last_line_is_found_across_read_chunks() {
    let (_dir, store, log) = log();
    let mut big = record(1);
    big.detail.insert("blob".into(), Value::String("x".repeat(3 * TAIL_CHUNK as usize)));
    log.append(big).expect("append");
    log.append(record(2)).expect("append");
    let mut big = record(3);
    big.detail.insert("blob".into(), Value::String("y".repeat(2 * TAIL_CHUNK as usize)));
    log.append(big).expect("append");
    drop(log);
    AuditLog::open(&store).expect("reopen").append(record(4)).expect("append");
    assert_eq!(verify(&store.audit_log()).expect("verify").records, 4);
}

/// An attacker who can write the data store rewrites record `from` (1-based) and everything
/// after it, re-chaining each line, so the chain alone still verifies.
fn rechain_from(store: &DataStore, from: usize) {
    let mut lines = lines(store);
    let mut prev = if from == 1 { GENESIS.to_owned() } else { sha256_hex(lines[from - 2].as_bytes()) };
    for line in lines.iter_mut().skip(from - 1) {
        let mut value: serde_json::Value = serde_json::from_str(line).expect("line");
        value["detail"] = json!({"n": "forged"});
        value["prev"] = json!(prev);
        *line = serde_json::to_string(&value).expect("serialise");
        prev = sha256_hex(line.as_bytes());
    }
    write_lines(store, &lines);
}

#[test]
fn an_anchor_detects_a_log_cut_short_or_rewritten_and_rechained() {
    let (_dir, store, log) = log();
    for n in 0..5 {
        log.append(record(n)).expect("append");
    }
    let anchor = log.head();
    assert_eq!(anchor.seq, 5);
    assert_eq!(verify_against(&store.audit_log(), &anchor).expect("intact").records, 5);
    for n in 5..7 {
        log.append(record(n)).expect("append");
    }
    verify_against(&store.audit_log(), &anchor).expect("records after the anchor are fine");
    let honest = lines(&store);

    // Cut short: the chain of what is left verifies; the anchor does not.
    write_lines(&store, &honest[..4]);
    verify(&store.audit_log()).expect("the chain alone cannot tell");
    let error = verify_against(&store.audit_log(), &anchor).expect_err("truncated").to_string();
    assert!(error.contains("cut short"), "{error}");

    // Rewritten from record 3 and re-chained: the chain verifies, the anchor does not.
    write_lines(&store, &honest);
    rechain_from(&store, 3);
    verify(&store.audit_log()).expect("the chain alone cannot tell");
    let error = verify_against(&store.audit_log(), &anchor).expect_err("rewritten").to_string();
    assert!(error.contains("rewritten"), "{error}");

    // Rewriting only after the anchor is what an anchor cannot see (README says so).
    write_lines(&store, &honest);
    rechain_from(&store, 6);
    verify_against(&store.audit_log(), &anchor).expect("after the anchor: undetected");
}

#[test]
fn an_anchor_is_read_as_seq_and_hash() {
    let hash = "ab".repeat(32);
    assert_eq!(format!("12:{hash}").parse(), Ok(Anchor { seq: 12, hash: hash.clone() }));
    for bad in ["12", "x:ab", "12:abc", &format!("12:{}", "zz".repeat(32))] {
        assert!(bad.parse::<Anchor>().is_err(), "{bad}");
    }
    let anchor = Anchor { seq: 12, hash };
    assert_eq!(
        Anchor::from_data(&anchor.to_data(Utc::now())),
        Ok(anchor),
        "the ConfigMap's form round-trips"
    );
    assert!(Anchor::from_data(&Default::default()).is_err());
}

#[test]
fn after_a_failed_append_the_log_recovers_without_the_partial_line_and_loses_nothing() {
    let (_dir, store, log) = log();
    log.append(record(1)).expect("append");
    log.append(record(2)).expect("append");
    // What a write cut short leaves: part of a line, never acknowledged.
    {
        let mut state = log.state.lock().expect("lock");
        state.file.write_all(b"{\"seq\":3,\"time\":").expect("partial");
        state.failed = true;
    }
    assert!(matches!(log.append(record(3)), Err(AuditError::Unusable { .. })), "refused until recovered");
    log.recover().expect("recover");
    log.append(record(3)).expect("append after recovering");
    let report = verify(&store.audit_log()).expect("the chain is whole");
    assert_eq!(report.records, 3);
    assert_eq!(log.head(), Anchor { seq: 3, hash: report.head });
    log.recover().expect("a usable log: nothing to do");
}
