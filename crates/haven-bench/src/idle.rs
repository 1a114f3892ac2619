//! Writes while idle: after convergence, nothing changes, so the operator should send no
//! write to the API server. kube-apiserver counts requests by verb and resource, not by
//! client, so every write in the window is listed and classed: Haven's kinds (its custom
//! resources and the child kinds it applies, not their status, which controllers write),
//! Events (written by Haven and by controllers), and the rest (the control plane and kwok).
//! The operator's own reconcile count over the window says whether it was Haven.

use std::{collections::BTreeMap, time::Duration};

use kube::Client;
use serde_json::{Value, json};

use crate::prom::{self, Sample};

/// Kinds (group, resource) the operator writes: its own and its workspaces' children.
const HAVEN_KINDS: &[(&str, &str)] = &[
    ("", "namespaces"),
    ("", "persistentvolumes"),
    ("", "persistentvolumeclaims"),
    ("", "services"),
    ("", "resourcequotas"),
    ("", "limitranges"),
    ("", "secrets"),
    ("", "pods"),
    ("apps", "statefulsets"),
    ("networking.k8s.io", "networkpolicies"),
    ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "rolebindings"),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
];

const READ_VERBS: &[&str] = &["GET", "LIST", "WATCH", "WATCHLIST", "CONNECT", "HEAD", "OPTIONS"];

/// Verb, group, resource, subresource.
type Series = (String, String, String, String);

pub async fn run(client: Client, metrics: &str, count: usize, window: Duration) -> anyhow::Result<Value> {
    // Best effort: an operator that never goes quiet is exactly what this should report.
    let settled = prom::settle(metrics, 0, Duration::from_secs(2), Duration::from_secs(30)).await.is_ok();
    let api_before = prom::parse(&prom::scrape_apiserver(&client).await?);
    let operator_before = prom::reconciles(&prom::parse(&prom::scrape_operator(metrics).await?));
    tokio::time::sleep(window).await; // the measurement is this window
    let api_after = prom::parse(&prom::scrape_apiserver(&client).await?);
    let operator_after = prom::reconciles(&prom::parse(&prom::scrape_operator(metrics).await?));

    let writes = write_diff(&api_before, &api_after);
    let mut totals: BTreeMap<&str, f64> = BTreeMap::new();
    let listed: Vec<Value> = writes
        .iter()
        .map(|((verb, group, resource, subresource), n)| {
            let class = class_of(group, resource, subresource);
            *totals.entry(class).or_default() += n;
            json!({ "verb": verb, "group": group, "resource": resource, "subresource": subresource, "count": n, "class": class })
        })
        .collect();
    let reconciles: BTreeMap<&String, f64> = operator_after
        .iter()
        .map(|(controller, n)| (controller, n - operator_before.get(controller).unwrap_or(&0.0)))
        .collect();
    Ok(json!({
        "figure": "idle",
        "n": count,
        "window_s": window.as_secs_f64(),
        "settled_before": settled,
        "haven_writes": totals.get("haven").copied().unwrap_or(0.0),
        "event_writes": totals.get("events").copied().unwrap_or(0.0),
        "other_writes": totals.get("other").copied().unwrap_or(0.0),
        "writes": listed,
        "reconciles": reconciles,
    }))
}

/// Write requests that happened between two scrapes, by series; only those that did.
fn write_diff(before: &[Sample], after: &[Sample]) -> BTreeMap<Series, f64> {
    let by_series = |samples: &[Sample]| {
        let mut sums: BTreeMap<Series, f64> = BTreeMap::new();
        for s in samples.iter().filter(|s| s.name == "apiserver_request_total") {
            if READ_VERBS.contains(&s.label("verb")) {
                continue;
            }
            let key = (
                s.label("verb").to_owned(),
                s.label("group").to_owned(),
                s.label("resource").to_owned(),
                s.label("subresource").to_owned(),
            );
            *sums.entry(key).or_default() += s.value;
        }
        sums
    };
    let before = by_series(before);
    by_series(after)
        .into_iter()
        .map(|(key, n)| {
            let earlier = before.get(&key).copied().unwrap_or(0.0);
            (key, n - earlier)
        })
        .filter(|(_, n)| *n > 0.0)
        .collect()
}

fn class_of(group: &str, resource: &str, subresource: &str) -> &'static str {
    if group == haven_api::constants::GROUP
        || (subresource.is_empty() && HAVEN_KINDS.contains(&(group, resource)))
    {
        "haven"
    } else if resource == "events" {
        "events"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(lines: &[(&str, &str, &str, &str, f64)]) -> Vec<Sample> {
        let text: String = lines
            .iter()
            .map(|(verb, group, resource, sub, n)| {
                format!("apiserver_request_total{{code=\"200\",group=\"{group}\",resource=\"{resource}\",subresource=\"{sub}\",verb=\"{verb}\"}} {n}\n")
            })
            .collect();
        prom::parse(&text)
    }

    #[test]
    fn only_writes_that_happened_in_the_window_are_counted() {
        let before = scrape(&[("APPLY", "", "namespaces", "", 10.0), ("LIST", "", "pods", "", 5.0)]);
        let after = scrape(&[
            ("APPLY", "", "namespaces", "", 12.0),
            ("LIST", "", "pods", "", 9.0),
            ("PUT", "coordination.k8s.io", "leases", "", 3.0),
        ]);
        let diff = write_diff(&before, &after);
        assert_eq!(diff.len(), 2);
        assert_eq!(diff[&("APPLY".into(), "".into(), "namespaces".into(), "".into())], 2.0);
    }

    #[test]
    fn status_written_by_controllers_is_not_counted_as_haven() {
        assert_eq!(class_of("apps", "statefulsets", ""), "haven");
        assert_eq!(class_of("apps", "statefulsets", "status"), "other");
        assert_eq!(class_of("haven.io", "workspaces", "status"), "haven");
        assert_eq!(class_of("", "events", ""), "events");
        assert_eq!(class_of("coordination.k8s.io", "leases", ""), "other");
    }
}
