//! The five figures of `make bench` as Markdown tables, from one run's JSON lines: medians
//! over repetitions, the operator side by side with the raw floor.

use std::{collections::BTreeMap, fmt::Write};

use serde_json::Value;

use crate::stats::median;

pub fn render(lines: &str) -> anyhow::Result<String> {
    let records: Vec<Value> = lines
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let of = |figure: &'static str| records.iter().filter(move |r| r["figure"] == figure);
    let mut out = String::new();

    let date = of("machine").next_back().map_or_else(|| "–".to_owned(), |m| text(&m["date"]));
    if let Some(m) = of("machine").next_back() {
        writeln!(
            out,
            "Machine: {} cores ({}), {} GiB, Linux {}; Kubernetes {} with kwok {} ({} fake nodes); haven {}; {}\n",
            m["nproc"],
            text(&m["cpu"]),
            m["memory_gib"],
            text(&m["kernel"]),
            text(&m["kubernetes"]),
            text(&m["kwok"]),
            m["kwok_nodes"],
            text(&m["haven"]),
            text(&m["date"]),
        )?;
    }

    // Provisioning: (n, mode) -> repetitions.
    let mut runs: BTreeMap<(u64, String), Vec<&Value>> = BTreeMap::new();
    for r in of("provision") {
        runs.entry((r["n"].as_u64().unwrap_or(0), text(&r["mode"]))).or_default().push(r);
    }
    let sizes: Vec<u64> = {
        let mut s: Vec<u64> = runs.keys().map(|(n, _)| *n).collect();
        s.dedup();
        s
    };
    let med = |n: u64, mode: &str, path: &[&str]| -> Option<f64> {
        let values: Vec<f64> = runs.get(&(n, mode.to_owned()))?.iter().filter_map(|r| at(r, path)).collect();
        median(&values)
    };
    let reps = |n: u64, mode: &str| runs.get(&(n, mode.to_owned())).map_or(0, Vec::len);

    writeln!(out, "1. Provisioning throughput (N workspaces created at once; medians over repetitions)\n")?;
    writeln!(
        out,
        "| date | N | reps | floor: all Ready | operator: all Ready | operator / floor | floor p50 / p99 | operator p50 / p99 |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|")?;
    for &n in &sizes {
        let (floor, operator) = (med(n, "floor", &["total_s"]), med(n, "operator", &["total_s"]));
        writeln!(
            out,
            "| {date} | {n} | {}/{} | {} | {} | {} | {} / {} | {} / {} |",
            reps(n, "floor"),
            reps(n, "operator"),
            secs(floor),
            secs(operator),
            ratio(operator, floor),
            secs(med(n, "floor", &["latency", "p50_s"])),
            secs(med(n, "floor", &["latency", "p99_s"])),
            secs(med(n, "operator", &["latency", "p50_s"])),
            secs(med(n, "operator", &["latency", "p99_s"])),
        )?;
    }

    writeln!(
        out,
        "\n1b. The same runs, until every workspace's last child (its ClusterRoleBinding) exists\n"
    )?;
    writeln!(
        out,
        "| date | N | floor: all applied | operator: all applied | operator / floor | floor p50 / p99 | operator p50 / p99 |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for &n in &sizes {
        let (floor, operator) =
            (med(n, "floor", &["applied_total_s"]), med(n, "operator", &["applied_total_s"]));
        writeln!(
            out,
            "| {date} | {n} | {} | {} | {} | {} / {} | {} / {} |",
            secs(floor),
            secs(operator),
            ratio(operator, floor),
            secs(med(n, "floor", &["applied_latency", "p50_s"])),
            secs(med(n, "floor", &["applied_latency", "p99_s"])),
            secs(med(n, "operator", &["applied_latency", "p50_s"])),
            secs(med(n, "operator", &["applied_latency", "p99_s"])),
        )?;
    }

    writeln!(out, "\n2. Writes while idle (after convergence)\n")?;
    writeln!(
        out,
        "| date | N | window | writes to Haven's kinds | Events | other components | operator reconciles |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for r in of("idle") {
        writeln!(
            out,
            "| {date} | {} | {} s | {} | {} | {} | {} |",
            r["n"],
            num(r["window_s"].as_f64()),
            num(r["haven_writes"].as_f64()),
            num(r["event_writes"].as_f64()),
            num(r["other_writes"].as_f64()),
            counts(&r["reconciles"]),
        )?;
        for w in r["writes"].as_array().into_iter().flatten().filter(|w| w["class"] != "other") {
            let resource = [text(&w["group"]), text(&w["resource"]), text(&w["subresource"])]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("/");
            writeln!(
                out,
                "|  |  | {} {resource} | {} |  |  |  |",
                text(&w["verb"]),
                num(w["count"].as_f64())
            )?;
        }
    }

    writeln!(out, "\n3. Operator memory and CPU (one operator process per repetition; medians)\n")?;
    writeln!(
        out,
        "| date | N | peak RSS (VmHWM) | RSS when Ready | CPU time while provisioning | reconciles (median) |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|")?;
    for &n in &sizes {
        writeln!(
            out,
            "| {date} | {n} | {} | {} | {} | workspace {}, permit {} |",
            mib(med(n, "operator", &["operator", "peak_rss_mib"])),
            mib(med(n, "operator", &["operator", "rss_mib"])),
            secs(med(n, "operator", &["operator", "cpu_s"])),
            num(med(n, "operator", &["reconciles", "workspace"])),
            num(med(n, "operator", &["reconciles", "permit"])),
        )?;
    }

    writeln!(out, "\n4. Teardown lag (from expiresAt)\n")?;
    writeln!(
        out,
        "| date | N | expiries spread over | access removed p50 / p99 / max | namespace deletion started p50 / p99 / max | operator's histogram (mean) | not Ready before expiry |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for r in of("teardown") {
        writeln!(
            out,
            "| {date} | {} | {} s | {} / {} / {} | {} / {} / {} | {} | {} |",
            r["n"],
            num(r["spread_s"].as_f64()),
            secs(r["access_lag"]["p50_s"].as_f64()),
            secs(r["access_lag"]["p99_s"].as_f64()),
            secs(r["access_lag"]["max_s"].as_f64()),
            secs(r["namespace_lag"]["p50_s"].as_f64()),
            secs(r["namespace_lag"]["p99_s"].as_f64()),
            secs(r["namespace_lag"]["max_s"].as_f64()),
            secs(r["operator_histogram_mean_s"].as_f64()),
            r["not_ready_before_expiry"],
        )?;
    }

    writeln!(out, "\n5. Cost growth (operator; medians)\n")?;
    writeln!(
        out,
        "| date | N | all Ready | per workspace | time × vs N × (from the smallest N) | peak RSS | floor per workspace |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    let base = sizes.first().and_then(|&n| med(n, "operator", &["total_s"]).map(|t| (n, t)));
    for &n in &sizes {
        let total = med(n, "operator", &["total_s"]);
        let growth = match (base, total) {
            (Some((n0, t0)), Some(t)) if t0 > 0.0 => {
                format!("{:.1}× vs {:.1}×", t / t0, n as f64 / n0 as f64)
            }
            _ => "–".into(),
        };
        writeln!(
            out,
            "| {date} | {n} | {} | {} | {growth} | {} | {} |",
            secs(total),
            millis(total.map(|t| t / n as f64)),
            mib(med(n, "operator", &["operator", "peak_rss_mib"])),
            millis(med(n, "floor", &["total_s"]).map(|t| t / n as f64)),
        )?;
    }
    for r in of("serial") {
        writeln!(out, "\nOne at a time (bench/workspace-ready.sh): {}", text(&r["text"]))?;
    }
    Ok(out)
}

fn at(record: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(record, |v, key| v.get(key))?.as_f64()
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

fn counts(v: &Value) -> String {
    let parts: Vec<String> = v
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, n)| n.as_f64().is_some_and(|n| n > 0.0))
        .map(|(k, n)| format!("{k} {}", num(n.as_f64())))
        .collect();
    if parts.is_empty() { "0".into() } else { parts.join(", ") }
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |s| if s < 10.0 { format!("{s:.2} s") } else { format!("{s:.1} s") })
}

fn millis(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |s| format!("{:.0} ms", s * 1000.0))
}

fn mib(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |m| format!("{m:.0} MiB"))
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |n| format!("{n:.0}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "–".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_of_medians_side_by_side() {
        let lines = [
            r#"{"figure":"provision","mode":"floor","n":50,"rep":1,"total_s":10.0,"latency":{"p50_s":5.0,"p99_s":9.0}}"#,
            r#"{"figure":"provision","mode":"floor","n":50,"rep":2,"total_s":12.0,"latency":{"p50_s":5.0,"p99_s":9.0}}"#,
            r#"{"figure":"provision","mode":"floor","n":50,"rep":3,"total_s":30.0,"latency":{"p50_s":5.0,"p99_s":9.0}}"#,
            r#"{"figure":"provision","mode":"operator","n":50,"rep":1,"total_s":15.0,"latency":{"p50_s":6.0,"p99_s":12.0},"operator":{"peak_rss_mib":40.0,"rss_mib":30.0,"cpu_s":2.0}}"#,
            "not json: ignored",
        ]
        .join("\n");
        let out = render(&lines).expect("renders");
        assert!(out.contains("| – | 50 | 3/1 | 12.0 s | 15.0 s | 1.25× |"), "{out}");
        assert!(out.contains("| – | 50 | 40 MiB | 30 MiB | 2.00 s |"), "{out}");
    }
}
