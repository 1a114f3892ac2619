//! A real browser through the door: headless Chromium (Debian's, driven over WebDriver by
//! chromedriver through fantoccini) with a profile of its own whose certificate store trusts
//! only the cluster CA, and `haven.test`, `*.haven.test` resolved to the real node. It opens a
//! workspace, logs in at the provider's own pages (username, password, then the one-time code
//! when asked), and reports where it landed; from the page it reached it can open a WebSocket.
//! e2e/build-browser.sh installs the browser.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::{GATEWAY_DOMAIN, IdpUser, node_address, totp_now, workspace_url};

/// A headless Chromium and its chromedriver; both stop when this is dropped (or `close`d).
#[derive(Debug)]
pub struct Chromium {
    pub client: Client,
    driver: Child,
    _home: tempfile::TempDir,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
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

/// Where a visit in the browser landed.
#[derive(Debug, Clone)]
pub struct Landed {
    pub url: String,
    pub title: String,
}

impl Chromium {
    /// Starts chromedriver and a browser whose profile trusts the CA in `ca_file`.
    pub async fn start(ca_file: &Path) -> Result<Self> {
        // fantoccini's client builds a rustls config from the process default.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let node = node_address()?.ip();
        let home = tempfile::tempdir()?;
        let nssdb = format!("sql:{}/.pki/nssdb", home.path().display());
        std::fs::create_dir_all(home.path().join(".pki/nssdb"))?;
        run("certutil", &["-d", &nssdb, "-N", "--empty-password"])?;
        let ca = ca_file.to_string_lossy().into_owned();
        run("certutil", &["-d", &nssdb, "-A", "-t", "C,,", "-n", "haven-cluster-ca", "-i", &ca])?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .env("HOME", home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver (e2e/build-browser.sh installs it)")?;
        let rules = format!("MAP {GATEWAY_DOMAIN} {node},MAP *.{GATEWAY_DOMAIN} {node}");
        let profile = home.path().join("profile");
        let capabilities = json!({"goog:chromeOptions": {"args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800",
            format!("--host-resolver-rules={rules}"), format!("--user-data-dir={}", profile.display()),
        ]}});
        let capabilities = capabilities.as_object().cloned().unwrap_or_default();
        let started = Instant::now();
        let client = loop {
            let connecting = ClientBuilder::rustls()?
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await;
            match connecting {
                Ok(client) => break client,
                Err(_) if started.elapsed() < Duration::from_secs(30) => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(error) => return Err(error).context("connecting to chromedriver"),
            }
        };
        Ok(Self { client, driver, _home: home })
    }

    /// Opens `workspace`'s `path`, logs `person` in at the provider's pages, and waits until
    /// the browser is back on this site; `settle` gives the page time to draw itself.
    pub async fn visit(
        &self,
        person: &IdpUser,
        workspace: &str,
        path: &str,
        settle: Duration,
    ) -> Result<Landed> {
        let browser = &self.client;
        browser.goto(workspace_url(workspace, path)?.as_str()).await?;
        let username =
            browser.wait().at_most(Duration::from_secs(30)).for_element(Locator::Id("username")).await?;
        username.send_keys(&person.email).await?;
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
                bail!("the browser is still at {here} a minute after logging in");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        tokio::time::sleep(settle).await;
        Ok(Landed {
            url: browser.current_url().await?.to_string(),
            title: browser.title().await.unwrap_or_default(),
        })
    }

    /// Opens a WebSocket from the page to `path` on its own origin and says what happened:
    /// `echoed: <text>`, `opened` (no echo within 3 s), `refused` or `no answer`.
    pub async fn websocket_from_page(&self, path: &str) -> Result<String> {
        let outcome = self
            .client
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                   const ws = new WebSocket(location.origin.replace("https", "wss") + arguments[0]);
                   ws.onopen = () => { ws.send("hello from the page"); setTimeout(() => done("opened"), 3000); };
                   ws.onmessage = (m) => { done("echoed: " + m.data); ws.close(); };
                   ws.onerror = () => done("refused");
                   setTimeout(() => done("no answer"), 10000);"#,
                vec![json!(path)],
            )
            .await?;
        Ok(outcome.as_str().unwrap_or_default().to_owned())
    }

    pub async fn screenshot(&self, to: &Path) -> Result<()> {
        std::fs::write(to, self.client.screenshot().await?)?;
        Ok(())
    }
}
