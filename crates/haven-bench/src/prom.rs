//! Prometheus text: the operator's `/metrics` (plain HTTP on loopback) and kube-apiserver's
//! (through the admin client), parsed just enough to sum series.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use kube::{Client, api::ListParams};
use serde_json::{Value, json};
use tokio::time::Instant;

/// One sample line: `name{label="value",...} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> &str {
        self.labels.get(key).map_or("", String::as_str)
    }
}

/// Every sample of `text`; comments and lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let (labels, rest) = parse_labels(&line[open + 1..])?;
            (&line[..open], labels, rest)
        }
        None => {
            let (name, rest) = line.split_once(' ')?;
            (name, BTreeMap::new(), rest)
        }
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample { name: name.to_owned(), labels, value })
}

/// Labels up to the closing brace, and the text after it.
fn parse_labels(text: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(',');
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after_key) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after_key.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()? {
                    (_, 'n') => value.push('\n'),
                    (_, c) => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.trim().to_owned(), value);
        rest = &after_key[end + 1..];
    }
}

/// The sum of `name`'s samples whose labels include every pair of `matching`.
pub fn sum(samples: &[Sample], name: &str, matching: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && matching.iter().all(|(k, v)| s.label(k) == *v))
        .map(|s| s.value)
        .sum()
}

/// GET http://ADDR/metrics from the operator.
pub async fn scrape_operator(address: &str) -> anyhow::Result<String> {
    let address = address.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        let mut stream = TcpStream::connect(&address).with_context(|| format!("connecting to {address}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(stream, "GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| anyhow!("no HTTP body"))?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            bail!("{address}/metrics: {}", head.lines().next().unwrap_or_default());
        }
        Ok(body.to_owned())
    })
    .await?
}

/// kube-apiserver's `/metrics`, read with the admin credentials of the client.
pub async fn scrape_apiserver(client: &Client) -> anyhow::Result<String> {
    // kube builds the request type; only its path changes.
    let mut request = kube::core::Request::new("/metrics").list(&ListParams::default())?;
    *request.uri_mut() = "/metrics".parse()?;
    Ok(client.request_text(request).await?)
}

/// The operator's reconciles so far, by controller.
pub fn reconciles(samples: &[Sample]) -> BTreeMap<String, f64> {
    let mut by_controller = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.name == "haven_reconciles_total") {
        *by_controller.entry(sample.label("controller").to_owned()).or_insert(0.0) += sample.value;
    }
    by_controller
}

/// Waits until the operator answers, has reconciled `permits` permits, and then ran no
/// reconcile for `quiet`: its caches are full and the work of starting up is done.
pub async fn settle(
    address: &str,
    permits: u64,
    quiet: Duration,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    let mut last: Option<(f64, Instant)> = None;
    loop {
        if let Ok(text) = scrape_operator(address).await {
            let counts = reconciles(&parse(&text));
            let total: f64 = counts.values().sum();
            let permit_reconciles = counts.get("permit").copied().unwrap_or(0.0);
            match last {
                Some((seen, since)) if seen == total => {
                    if permit_reconciles >= permits as f64 && since.elapsed() >= quiet {
                        return Ok(json!({
                            "figure": "settle",
                            "seconds": started.elapsed().as_secs_f64(),
                            "reconciles": counts,
                        }));
                    }
                }
                _ => last = Some((total, Instant::now())),
            }
        }
        if started.elapsed() > timeout {
            bail!("the operator at {address} did not settle within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APISERVER: &str = r#"# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="namespaces",scope="resource",subresource="",verb="APPLY",version="v1"} 12
apiserver_request_total{code="201",component="apiserver",dry_run="",group="haven.io",resource="workspaces",scope="resource",subresource="status",verb="APPLY",version="v1alpha1"} 3
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 7
"#;

    #[test]
    fn samples_are_summed_by_labels() {
        let samples = parse(APISERVER);
        assert_eq!(samples.len(), 3);
        assert_eq!(sum(&samples, "apiserver_request_total", &[("verb", "APPLY")]), 15.0);
        assert_eq!(sum(&samples, "apiserver_request_total", &[("group", "haven.io")]), 3.0);
    }

    #[test]
    fn label_values_may_hold_escaped_quotes_and_commas() {
        let samples = parse(r#"m{a="x\"y,z",b="2"} 1.5 1700000000"#);
        assert_eq!(samples[0].label("a"), "x\"y,z");
        assert_eq!(samples[0].label("b"), "2");
        assert_eq!(samples[0].value, 1.5);
    }

    #[test]
    fn reconciles_are_counted_per_controller() {
        let text = "haven_reconciles_total{controller=\"workspace\"} 4\nhaven_reconciles_total{controller=\"permit\"} 2\nhaven_objects{kind=\"Workspace\",phase=\"Ready\"} 4\n";
        let counts = reconciles(&parse(text));
        assert_eq!(counts.get("workspace"), Some(&4.0));
        assert_eq!(counts.get("permit"), Some(&2.0));
    }
}
