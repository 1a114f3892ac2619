//! `make demo`'s federated analysis: ada asks every site of a multi-site permit how its survey
//! respondents answered; each site runs the count beside its own extract, its own output
//! checker approves, and only the approved counts come back to her workspace at the hub, where
//! she pools them (a fixed-effect, inverse-variance estimate of the share answering 3). Run by
//! e2e/demo.sh through e2e/run-federation.sh, which brings the sites up and down.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use haven_api::{airlock::AirlockPhase, task::SiteTaskState};
use haven_e2e_federation::{
    scenario::{ADA, Federation, checker},
    testenv_image,
};

/// What ada estimates: the share of respondents who answered this.
const ANSWER: &str = "3";

#[tokio::main]
async fn main() -> Result<()> {
    let fed = Federation::start(&[]).await?;
    let sites: Vec<String> = fed.sites.iter().map(|s| s.name.clone()).collect();
    println!(
        "multi-site permit {} at {}; ada's workspace {} at the hub",
        fed.multi_site,
        sites.join(", "),
        fed.workspace
    );
    let command = [
        "/haven-testenv",
        "count",
        "--input",
        "/data/survey/data.csv",
        "--by",
        "answer",
        "--output",
        "/outputs/answers.csv",
    ];
    fed.submit(ADA, "answers", &testenv_image(), &command)?;
    println!("ada submitted AnalysisTask answers: {}", command.join(" "));
    for site in &sites {
        let request = fed.outputs_request(site, "answers", AirlockPhase::AwaitingReview).await?;
        let checks = request.status.as_ref().and_then(|s| s.checks.clone()).unwrap_or_default();
        println!(
            "{site}: ran beside {site}'s extract; its airlock checked the counts ({checks}); {} approves",
            checker(site)
        );
        fed.review(site, &request, &checker(site), "Approve", "counts per answer, every cell over 10")?;
    }
    let mut counts = BTreeMap::new();
    for site in &sites {
        let delivered = fed.site_reaches("answers", site, SiteTaskState::Delivered).await?;
        let file = fed.landed("answers", site).join("files/answers.csv");
        let text = std::fs::read_to_string(&file).with_context(|| file.display().to_string())?;
        println!(
            "{site}: delivered to {} (manifest sha256 {}):\n{}",
            delivered.delivered_to.unwrap_or_default(),
            delivered.manifest_sha256.unwrap_or_default(),
            text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
        );
        counts.insert(site.clone(), parse(&text)?);
    }
    let task = fed.tasks().await?.get("answers").await?;
    let status = task.status.unwrap_or_default();
    println!(
        "\nkubectl get analysistask answers: state {:?}, sites {}",
        status.state,
        status.summary.unwrap_or_default()
    );
    println!("\nada pools the sites' counts in her workspace (share answering {ANSWER}, 95% CI):");
    let (mut weights, mut weighted) = (0.0, 0.0);
    for (site, counts) in &counts {
        let n: u64 = counts.values().sum();
        let x = counts.get(ANSWER).copied().unwrap_or(0);
        let p = x as f64 / n as f64;
        let variance = p * (1.0 - p) / n as f64;
        let half = 1.96 * variance.sqrt();
        println!("  {site:>6}: {x:>4} of {n:>4} = {:.3} [{:.3}, {:.3}]", p, p - half, p + half);
        weights += 1.0 / variance;
        weighted += p / variance;
    }
    let (pooled, half) = (weighted / weights, 1.96 * (1.0 / weights).sqrt());
    println!(
        "  pooled: {pooled:.3} [{:.3}, {:.3}]  (fixed effect, inverse variance; no row left any site)",
        pooled - half,
        pooled + half
    );
    Ok(())
}

/// `answer,n` lines into counts per answer.
fn parse(text: &str) -> Result<BTreeMap<String, u64>> {
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (answer, n) = line.rsplit_once(',').with_context(|| format!("{line:?} is not answer,n"))?;
            Ok((answer.trim_matches('"').to_owned(), n.parse()?))
        })
        .collect()
}
