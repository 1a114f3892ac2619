//! `cargo run -p haven-e2e-nodes --example browser_visit -- <user> <workspace> <screenshot.png> [ws-path]`:
//! a real browser through the door. Headless Chromium (Debian's, driven over WebDriver by
//! chromedriver) with a fresh profile whose certificate store trusts only the cluster CA, and
//! `haven.test`, `*.haven.test` resolved to the real node. It opens the workspace, logs in at
//! the provider's own pages (username, password, then the one-time code when asked), saves a
//! screenshot of what it reached, and opens a WebSocket from the page to `ws-path` (default
//! `/ws`, the test environment's echo; JupyterLab's event stream is `/api/events/subscribe`),
//! reporting an echo, or that it opened, or that it was refused. `make demo` runs it.
//! Needs KUBECONFIG and HAVEN_IDP_ENV (e2e/cluster.sh env prints both), and e2e/build-browser.sh.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use fantoccini::{ClientBuilder, Locator};
use haven_e2e_nodes::{GATEWAY_DOMAIN, IdpEnv, node_address, totp_now, workspace_url};
use serde_json::json;

/// chromedriver, stopped when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    let status = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .with_context(|| program.to_owned())?;
    if !status.success() {
        bail!("{program} {args:?}: {status}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (user, workspace, screenshot) = match args.as_slice() {
        [user, workspace, screenshot, ..] => (user, workspace, screenshot),
        _ => bail!("usage: browser_visit <ada|ben|cy|oli> <workspace> <screenshot.png> [ws-path]"),
    };
    let ws_path = args.get(3).map_or("/ws", String::as_str);
    // fantoccini's client builds a rustls config from the process default.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let idp = IdpEnv::load()?;
    let person = idp.user(user)?;
    let node = node_address()?.ip();

    // A profile of its own: its NSS store trusts the cluster CA (the gateway's and the
    // provider's certificates), nothing is skipped.
    let home = tempfile::tempdir()?;
    let nssdb = format!("sql:{}/.pki/nssdb", home.path().display());
    std::fs::create_dir_all(home.path().join(".pki/nssdb"))?;
    run("certutil", &["-d", &nssdb, "-N", "--empty-password"])?;
    let ca = idp.ca_file.to_string_lossy().into_owned();
    run("certutil", &["-d", &nssdb, "-A", "-t", "C,,", "-n", "haven-cluster-ca", "-i", &ca])?;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let _driver = Driver(
        Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .env("HOME", home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver (e2e/build-browser.sh installs it)")?,
    );
    let rules = format!("MAP {GATEWAY_DOMAIN} {node},MAP *.{GATEWAY_DOMAIN} {node}");
    let profile = home.path().join("profile");
    let capabilities = json!({"goog:chromeOptions": {"args": [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800",
        format!("--host-resolver-rules={rules}"), format!("--user-data-dir={}", profile.display()),
    ]}});
    let capabilities = capabilities.as_object().cloned().unwrap_or_default();
    let started = Instant::now();
    let browser = loop {
        match ClientBuilder::rustls()?
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(browser) => break browser,
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(300)).await
            }
            Err(error) => return Err(error).context("connecting to chromedriver"),
        }
    };

    let url = workspace_url(workspace, "/")?;
    browser.goto(url.as_str()).await?;
    // The provider's login page, as a person sees it.
    browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Id("username"))
        .await?
        .send_keys(&person.email)
        .await?;
    browser.find(Locator::Id("password")).await?.send_keys(&person.password).await?;
    browser.find(Locator::Id("kc-login")).await?.click().await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let here = browser.current_url().await?;
        if here.host_str().is_some_and(|h| h.ends_with(GATEWAY_DOMAIN)) {
            break;
        }
        if let (Some(secret), Ok(otp)) = (&person.totp_secret, browser.find(Locator::Id("otp")).await) {
            otp.send_keys(&totp_now(secret)?).await?;
            browser.find(Locator::Id("kc-login")).await?.click().await?;
        }
        if Instant::now() > deadline {
            bail!("the browser is still at {here} after logging in");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Let the page finish (JupyterLab draws itself with scripts).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let here = browser.current_url().await?;
    let title = browser.title().await.unwrap_or_default();
    std::fs::write(screenshot, browser.screenshot().await?)?;
    println!("{} in a browser -> {here}: \"{title}\" (screenshot {screenshot})", person.email);

    // From the page itself: a WebSocket to the environment's echo (the test environment), or
    // just whether the gateway let the page's origin open one.
    let echo = browser
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               const ws = new WebSocket(location.origin.replace("https", "wss") + arguments[0]);
               ws.onopen = () => { ws.send("hello from the page"); setTimeout(() => done("opened"), 3000); };
               ws.onmessage = (m) => { done("echoed: " + m.data); ws.close(); };
               ws.onerror = () => done("refused");
               setTimeout(() => done("no answer"), 10000);"#,
            vec![json!(ws_path)],
        )
        .await?;
    println!("    a WebSocket from the page to {ws_path}: {}", echo.as_str().unwrap_or_default());
    browser.close().await?;
    Ok(())
}
