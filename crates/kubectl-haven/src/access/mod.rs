//! `kubectl haven access`: who was inside a workspace, when and for how long, from the access
//! log the gateway keeps (`<data store>/audit/access.log`, hash-chained like the audit log).
//! The chain is verified first: a log that does not verify is not read as evidence.

mod visits;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;

pub use self::visits::{Refusal, Visit};
use crate::{
    cli::AccessArgs,
    format::{self, OutputFormat},
};

/// The log to read: `<root>/audit/access.log` for a data store root, else the file itself.
pub fn log_path(path: &Path) -> PathBuf {
    if path.is_dir() { haven_data::DataStore::new(path).access_log() } else { path.to_owned() }
}

/// `--since`: an instant, or how far back from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    At(DateTime<Utc>),
    Ago(TimeDelta),
}

impl Since {
    fn instant(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::At(at) => at,
            Self::Ago(ago) => now - ago,
        }
    }
}

impl std::str::FromStr for Since {
    type Err = String;

    /// RFC 3339 (`2026-06-01T09:00:00Z`), or a duration back from now (`24h`, `90m`, `7d`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(at) = DateTime::parse_from_rfc3339(text) {
            return Ok(Self::At(at.into()));
        }
        let days = text.strip_suffix('d').and_then(|n| n.parse::<i64>().ok()).and_then(TimeDelta::try_days);
        days.or_else(|| haven_api::validation::parse_duration(text))
            .map(Self::Ago)
            .ok_or_else(|| format!("{text:?} is neither an RFC 3339 time nor a duration like 24h, 90m or 7d"))
    }
}

/// What `access` found: the verified log, and the visits (and refusals) that pass the filters.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessReport {
    pub log: PathBuf,
    pub records: usize,
    /// The hash of the log's last line, as `audit verify` reports it.
    pub head: String,
    pub workspace: Option<String>,
    pub visits: Vec<Visit>,
    /// Only with `--refusals`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusals: Option<Vec<Refusal>>,
}

pub fn run(args: &AccessArgs) -> anyhow::Result<()> {
    let report = access(args, Utc::now())?;
    if !format::print_structured(&report, args.output.format)? {
        print!("{}", render(&report, args.output.format == Some(OutputFormat::Wide)));
    }
    Ok(())
}

/// Verifies the log and reads from it what the filters keep.
pub fn access(args: &AccessArgs, now: DateTime<Utc>) -> anyhow::Result<AccessReport> {
    let log = log_path(&args.log);
    if !log.is_file() {
        anyhow::bail!(
            "{} is not an access log, nor a data store root with audit/access.log",
            args.log.display()
        );
    }
    let (chain, records) = haven_data::audit::read_verified(&log)
        .context("the access log does not verify, so nothing is listed from it")?;
    let since = args.since.map(|since| since.instant(now));
    let workspace = args.workspace.as_deref();
    let chosen = |visit_workspace: Option<&str>, user: &str| {
        workspace.is_none_or(|ws| visit_workspace == Some(ws))
            && args.user.as_deref().is_none_or(|u| u == user)
    };
    let visits = visits::visits(&records)
        .into_iter()
        .filter(|v| chosen(Some(&v.workspace), &v.user))
        // A visit counts when it was still going at or after `since`; open ones may still be.
        .filter(|v| since.is_none_or(|since| v.end.is_none_or(|end| end >= since)))
        .collect();
    let refusals = args.refusals.then(|| {
        visits::refusals(&records)
            .into_iter()
            .filter(|r| chosen(r.workspace.as_deref(), &r.user))
            .filter(|r| since.is_none_or(|since| r.time >= since))
            .collect()
    });
    Ok(AccessReport {
        log,
        records: chain.records,
        head: chain.head,
        workspace: args.workspace.clone(),
        visits,
        refusals,
    })
}

/// The tables and the summary, as people read them.
pub fn render(report: &AccessReport, wide: bool) -> String {
    let every_workspace = report.workspace.is_none();
    let mut out = String::new();
    if report.visits.is_empty() {
        match &report.workspace {
            Some(ws) => out.push_str(&format!("No visits to workspace {ws}.\n")),
            None => out.push_str("No visits.\n"),
        }
    } else {
        out.push_str(&visit_table(&report.visits, every_workspace, wide).render(""));
    }
    if let Some(refusals) = &report.refusals {
        out.push('\n');
        if refusals.is_empty() {
            out.push_str("No refusals.\n");
        } else {
            out.push_str(&refusal_table(refusals, every_workspace, wide).render(""));
        }
    }
    out.push('\n');
    out.push_str(&summary(&report.visits));
    out.push_str(&format!(
        "{}: {} records, chain intact (head {})\n",
        report.log.display(),
        report.records,
        report.head
    ));
    out
}

fn visit_table(visits: &[Visit], every_workspace: bool, wide: bool) -> format::Table {
    let mut headers = vec![];
    if every_workspace {
        headers.push("WORKSPACE");
    }
    headers.extend(["USER", "KIND", "FROM", "TO", "DURATION", "REQUESTS", "IN", "OUT", "SOURCE", "ENDED"]);
    if wide {
        headers.extend(["VISIT", "PERMIT", "USER AGENT"]);
    }
    let mut table = format::Table::new(&headers);
    let dash = || "-".to_owned();
    for visit in visits {
        let mut row = vec![];
        if every_workspace {
            row.push(visit.workspace.clone());
        }
        row.extend([
            visit.user.clone(),
            visit.kind.clone(),
            timestamp(visit.start),
            visit.end.map_or_else(|| "open".into(), |end| until(visit.start, end)),
            visit.duration().map_or_else(dash, format::humanize),
            visit.requests.map_or_else(dash, |n| n.to_string()),
            visit.bytes_in.map_or_else(dash, format::bytes),
            visit.bytes_out.map_or_else(dash, format::bytes),
            visit.source.clone().unwrap_or_else(dash),
            visit.ended.clone().unwrap_or_else(dash),
        ]);
        if wide {
            row.extend([
                visit.visit.clone(),
                visit.permit.clone().unwrap_or_else(dash),
                visit.user_agent.clone().unwrap_or_else(dash),
            ]);
        }
        table.row(row);
    }
    table
}

fn refusal_table(refusals: &[Refusal], every_workspace: bool, wide: bool) -> format::Table {
    let mut headers = vec!["TIME"];
    if every_workspace {
        headers.push("WORKSPACE");
    }
    headers.extend(["USER", "REASON", "METHOD PATH", "SOURCE"]);
    if wide {
        headers.extend(["STATUS", "USER AGENT"]);
    }
    let mut table = format::Table::new(&headers);
    let dash = || "-".to_owned();
    for refusal in refusals {
        let mut row = vec![timestamp(refusal.time)];
        if every_workspace {
            row.push(refusal.workspace.clone().unwrap_or_else(|| "(gateway)".into()));
        }
        let request = match (&refusal.method, &refusal.path) {
            _ if refusal.action == "login-refused" => "login".to_owned(),
            (Some(method), Some(path)) => format!("{method} {path}"),
            (method, path) => method.clone().or_else(|| path.clone()).unwrap_or_else(dash),
        };
        row.extend([
            refusal.user.clone(),
            refusal.reason.clone().unwrap_or_else(dash),
            request,
            refusal.source.clone().unwrap_or_else(dash),
        ]);
        if wide {
            row.extend([
                refusal.status.map_or_else(dash, |status| status.to_string()),
                refusal.user_agent.clone().unwrap_or_else(dash),
            ]);
        }
        table.row(row);
    }
    table
}

/// `3 visits by 2 people, 1h 12m inside; 1 open (…)`: open visits are counted, their time is not.
fn summary(visits: &[Visit]) -> String {
    let people: BTreeSet<&str> = visits.iter().map(|visit| visit.user.as_str()).collect();
    let inside: TimeDelta = visits.iter().filter_map(Visit::duration).sum();
    let open = visits.iter().filter(|visit| visit.end.is_none()).count();
    let mut line = format!(
        "{} by {}, {} inside",
        plural(visits.len(), "visit", "visits"),
        plural(people.len(), "person", "people"),
        format::humanize(inside)
    );
    if open > 0 {
        line.push_str(&format!(
            "; {open} open, not in that time (no visit-end: still inside, or the gateway stopped without writing one)"
        ));
    }
    line.push('\n');
    line
}

fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// An instant to the second, in UTC, as RFC 3339: what `--since` takes back.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The end of a visit: the time of day alone when it is the start's day.
fn until(start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    if start.date_naive() == end.date_naive() { end.format("%H:%M:%SZ").to_string() } else { timestamp(end) }
}

#[cfg(test)]
mod tests;
