//! The door in a real browser: headless Chromium (e2e/build-browser.sh) trusting only the
//! cluster CA logs ada in at Keycloak's own pages with her password and one-time code, lands in
//! the workspace through the gateway, and talks to the environment over a WebSocket opened by
//! the page; oli, the permit's output checker, logs in too and is shown that there is no such
//! workspace for him, and his page cannot open a WebSocket to it.

use std::time::Duration;

use anyhow::{Result, ensure};
use haven_e2e::{kubectl_ok, unique_name};
use haven_e2e_nodes::{IdpEnv, chromium::Chromium, permit_and_workspace_for};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_browser_the_permits_user_gets_in_with_her_second_factor_and_the_output_checker_does_not()
-> Result<()> {
    let idp = IdpEnv::load()?;
    let (ada, oli) = (idp.user("ada")?, idp.user("oli")?);
    let workspace = unique_name("browser");
    permit_and_workspace_for(&workspace, &[&ada.email], &oli.email, json!({}))?;

    let browser = Chromium::start(&idp.ca_file).await?;
    let landed = browser.visit(ada, &workspace, "/", Duration::from_secs(1)).await?;
    let page = browser.client.source().await?;
    ensure!(
        landed.url.starts_with(&format!("https://{workspace}.")) && page.contains("haven-testenv"),
        "ada landed at {} showing {page}",
        landed.url
    );
    let echo = browser.websocket_from_page("/ws").await?;
    ensure!(echo == "echoed: hello from the page", "ada's page's WebSocket: {echo}");
    drop(browser);

    let browser = Chromium::start(&idp.ca_file).await?;
    let landed = browser.visit(oli, &workspace, "/", Duration::from_secs(1)).await?;
    let page = browser.client.source().await?;
    ensure!(
        landed.title.starts_with("Not found")
            && page.contains("that you may enter")
            && !page.contains("haven-testenv"),
        "oli saw {}: {page}",
        landed.title
    );
    let socket = browser.websocket_from_page("/ws").await?;
    ensure!(socket == "refused", "oli's page's WebSocket: {socket}");
    println!(
        "browser: ada reached {} and echoed over a WebSocket; oli was shown {:?}",
        workspace, landed.title
    );

    kubectl_ok(&["delete", "workspace", &workspace, "--wait=false"])?;
    Ok(())
}
