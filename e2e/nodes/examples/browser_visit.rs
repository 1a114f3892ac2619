//! `cargo run -p haven-e2e-nodes --example browser_visit -- <user> <workspace> <screenshot.png> [ws-path]`:
//! a real browser through the door (`haven_e2e_nodes::chromium`): logs one of the provider's
//! people in at Keycloak's pages, saves a screenshot of what the workspace showed, and opens a
//! WebSocket from the page to `ws-path` (default `/ws`, the test environment's echo;
//! JupyterLab's event stream is `/api/events/subscribe`). `make demo` runs it.
//! Needs KUBECONFIG and HAVEN_IDP_ENV (e2e/cluster.sh env prints both), and e2e/build-browser.sh.

use std::{path::Path, time::Duration};

use anyhow::{Result, bail};
use haven_e2e_nodes::{IdpEnv, chromium::Chromium};

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (user, workspace, screenshot) = match args.as_slice() {
        [user, workspace, screenshot, ..] => (user, workspace, screenshot),
        _ => bail!("usage: browser_visit <ada|ben|cy|oli> <workspace> <screenshot.png> [ws-path]"),
    };
    let ws_path = args.get(3).map_or("/ws", String::as_str);
    let idp = IdpEnv::load()?;
    let person = idp.user(user)?;
    let browser = Chromium::start(&idp.ca_file).await?;
    // JupyterLab draws itself with scripts: give the page a few seconds.
    let landed = browser.visit(person, workspace, "/", Duration::from_secs(5)).await?;
    browser.screenshot(Path::new(screenshot)).await?;
    println!(
        "{} in a browser -> {}: \"{}\" (screenshot {screenshot})",
        person.email, landed.url, landed.title
    );
    println!("    a WebSocket from the page to {ws_path}: {}", browser.websocket_from_page(ws_path).await?);
    Ok(())
}
