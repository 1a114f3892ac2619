//! `kubectl haven status`: permits and workspaces at a glance, with the time left until expiry
//! and what happens next.

use chrono::{DateTime, Utc};
use haven_api::{DataPermit, Workspace};
use kube::{Api, api::ListParams};
use serde::Serialize;

use crate::{
    connect::Connect,
    error,
    format::{self, OutputFormat, Table},
    next,
};

/// One permit as `status` summarises it (also the `-o json|yaml` shape).
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PermitLine {
    pub name: String,
    pub permit_id: String,
    pub phase: String,
    pub workspaces: u32,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    pub time_left: String,
    pub next: String,
}

/// One workspace as `status` summarises it.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceLine {
    pub name: String,
    pub permit: String,
    pub phase: String,
    pub namespace: String,
    pub users: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    pub time_left: String,
    pub next: String,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub permits: Vec<PermitLine>,
    pub workspaces: Vec<WorkspaceLine>,
}

pub async fn run(connect: &Connect, format: Option<OutputFormat>) -> anyhow::Result<()> {
    let session = connect.session().await?;
    let permits = Api::<DataPermit>::all(session.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| error::listing("datapermit", e))?
        .items;
    let workspaces = Api::<Workspace>::all(session.client)
        .list(&ListParams::default())
        .await
        .map_err(|e| error::listing("workspace", e))?
        .items;
    let summary = summarise(&permits, &workspaces, Utc::now());
    if !format::print_structured(&summary, format)? {
        print!("{}", render(&summary, format == Some(OutputFormat::Wide)));
    }
    Ok(())
}

pub fn summarise(permits: &[DataPermit], workspaces: &[Workspace], now: DateTime<Utc>) -> Summary {
    let permit_named = |name: &str| permits.iter().find(|p| p.metadata.name.as_deref() == Some(name));
    Summary {
        permits: permits.iter().map(|permit| permit_line(permit, now)).collect(),
        workspaces: workspaces
            .iter()
            .map(|workspace| workspace_line(workspace, permit_named(&workspace.spec.permit), now))
            .collect(),
    }
}

pub fn permit_line(permit: &DataPermit, now: DateTime<Utc>) -> PermitLine {
    let status = permit.status.clone().unwrap_or_default();
    PermitLine {
        name: permit.metadata.name.clone().unwrap_or_default(),
        permit_id: permit.spec.permit_id.clone(),
        phase: format!("{:?}", status.phase),
        workspaces: status.workspaces,
        valid_from: permit.spec.valid_from,
        valid_until: permit.spec.valid_until,
        time_left: format::time_left(next::permit_expiry(permit), now),
        next: next::permit_next(permit, now),
    }
}

pub fn workspace_line(
    workspace: &Workspace,
    permit: Option<&DataPermit>,
    now: DateTime<Utc>,
) -> WorkspaceLine {
    let status = workspace.status.clone().unwrap_or_default();
    let expires_at = next::workspace_expiry(workspace, permit);
    WorkspaceLine {
        name: workspace.metadata.name.clone().unwrap_or_default(),
        permit: workspace.spec.permit.clone(),
        phase: format!("{:?}", status.phase),
        namespace: status.namespace.unwrap_or_else(|| "-".into()),
        users: workspace.spec.users.clone(),
        expires_at,
        time_left: format::time_left(expires_at, now),
        next: next::workspace_next(workspace, permit),
    }
}

pub fn render(summary: &Summary, wide: bool) -> String {
    let mut out = String::new();
    if summary.permits.is_empty() {
        out.push_str("No data permits found.\n");
    } else {
        let mut headers = vec!["PERMIT", "PERMIT ID", "PHASE", "WORKSPACES", "TIME LEFT", "NEXT"];
        if wide {
            headers.extend(["VALID FROM", "VALID UNTIL"]);
        }
        let mut table = Table::new(&headers);
        for line in &summary.permits {
            let mut row = vec![
                line.name.clone(),
                line.permit_id.clone(),
                line.phase.clone(),
                line.workspaces.to_string(),
                line.time_left.clone(),
                line.next.clone(),
            ];
            if wide {
                row.extend([format::date(line.valid_from), format::date(line.valid_until)]);
            }
            table.row(row);
        }
        out.push_str(&table.render(""));
    }
    out.push('\n');
    if summary.workspaces.is_empty() {
        out.push_str("No workspaces found.\n");
    } else {
        let mut headers = vec!["WORKSPACE", "PERMIT", "PHASE", "NAMESPACE", "TIME LEFT", "NEXT"];
        if wide {
            headers.push("USERS");
        }
        let mut table = Table::new(&headers);
        for line in &summary.workspaces {
            let mut row = vec![
                line.name.clone(),
                line.permit.clone(),
                line.phase.clone(),
                line.namespace.clone(),
                line.time_left.clone(),
                line.next.clone(),
            ];
            if wide {
                row.push(line.users.join(","));
            }
            table.row(row);
        }
        out.push_str(&table.render(""));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{NOW, permit, workspace};

    fn now() -> DateTime<Utc> {
        NOW.parse().expect("fixture time")
    }

    #[test]
    fn status_shows_each_permit_and_workspace_with_time_left_and_what_is_next() {
        let permits = [permit("phase: Active\nworkspaces: 1\n")];
        let workspaces =
            [workspace("phase: Ready\nnamespace: ws-analysis\nexpiresAt: 2026-06-13T16:30:00Z\n")];
        let text = render(&summarise(&permits, &workspaces, now()), false);
        let expected = "\
PERMIT   PERMIT ID        PHASE    WORKSPACES   TIME LEFT   NEXT
study    HDAB-2026-0042   Active   1            12d 4h      expires 2026-06-13 16:30 UTC → workspaces archived

WORKSPACE   PERMIT   PHASE   NAMESPACE     TIME LEFT   NEXT
analysis    study    Ready   ws-analysis   12d 4h      expires 2026-06-13 16:30 UTC → archived and torn down
";
        assert_eq!(text, expected);
    }

    #[test]
    fn wide_status_adds_validity_and_users() {
        let text = render(&summarise(&[permit("phase: Active\n")], &[workspace("")], now()), true);
        assert!(text.contains("VALID UNTIL") && text.contains("2026-06-13 16:30 UTC"), "{text}");
        assert!(text.contains("USERS") && text.contains("alice@example.org"), "{text}");
    }

    #[test]
    fn an_empty_cluster_says_so() {
        let text = render(&summarise(&[], &[], now()), false);
        assert_eq!(text, "No data permits found.\n\nNo workspaces found.\n");
    }

    #[test]
    fn the_json_summary_names_its_fields_in_camel_case() -> anyhow::Result<()> {
        let summary =
            summarise(&[permit("phase: Archived\ndestroyAfter: 2026-12-14T00:00:00Z\n")], &[], now());
        let json = serde_json::to_value(&summary)?;
        assert_eq!(json["permits"][0]["permitId"], "HDAB-2026-0042");
        assert_eq!(json["permits"][0]["timeLeft"], "-");
        assert_eq!(json["permits"][0]["next"], "destroyed after retention on 2026-12-14 00:00 UTC");
        Ok(())
    }
}
