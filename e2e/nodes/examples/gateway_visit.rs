//! `cargo run -p haven-e2e-nodes --example gateway_visit -- <user> <workspace> [path]`: logs one
//! of the tests' provider's people (ada, ben, cy, oli) in through the access gateway, as their
//! browser would, and prints what the workspace answered. `make demo` shows the door with it.
//! Needs KUBECONFIG and HAVEN_IDP_ENV (e2e/cluster.sh env prints both).

use anyhow::{Context, Result};
use haven_e2e_nodes::{Browser, IdpEnv, workspace_url};

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(user), Some(workspace)) = (args.first(), args.get(1)) else {
        anyhow::bail!("usage: gateway_visit <ada|ben|cy|oli> <workspace> [path]");
    };
    let path = args.get(2).map_or("/", String::as_str);
    let idp = IdpEnv::load()?;
    let person = idp.user(user)?;
    let url = workspace_url(workspace, path)?;
    let browser = Browser::new(&idp, &[workspace])?;
    let response =
        browser.visit(&idp, person, url.clone()).await.with_context(|| format!("visiting {url}"))?;
    let status = response.status();
    let body = response.text().await?;
    let shown: String = if body.starts_with("<!doctype html>") {
        // The gateway's own page: its message, without the markup.
        let text = body.split("<p>").nth(1).unwrap_or_default();
        let text = text.split("</p>").next().unwrap_or_default();
        text.replace("&#39;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    } else {
        body.chars().take(400).collect()
    };
    println!("{} -> {url}: {status}\n    {}", person.email, shown.trim());
    Ok(())
}
