//! A scripted browser for Haven's access gateway on the real node: it keeps cookies, trusts
//! only the cluster CA, resolves `haven.test` and its workspaces to the node's NodePort, and
//! logs in at the tests' OpenID provider when the gateway sends it there.

use std::{net::SocketAddr, sync::Arc};

use anyhow::{Context, Result, bail};
use haven_e2e::kubectl_ok;
use reqwest::{Client, Url, cookie::CookieStore, header::LOCATION};

use crate::{IdpEnv, IdpUser};

/// The gateway's NodePort (e2e/gateway-values.sh).
pub const GATEWAY_PORT: u16 = 30443;
/// The gateway's domain: the portal is `https://haven.test:30443`, workspace `w` is
/// `https://w.haven.test:30443`.
pub const GATEWAY_DOMAIN: &str = "haven.test";

/// `https://<workspace>.haven.test:30443<path>`.
pub fn workspace_url(workspace: &str, path: &str) -> Result<Url> {
    Ok(Url::parse(&format!("https://{workspace}.{GATEWAY_DOMAIN}:{GATEWAY_PORT}{path}"))?)
}

/// The real node's address, where the gateway's NodePort answers.
pub fn node_address() -> Result<SocketAddr> {
    let ip = kubectl_ok(&[
        "get",
        "nodes",
        "-o",
        "jsonpath={.items[0].status.addresses[?(@.type=='InternalIP')].address}",
    ])?;
    Ok(SocketAddr::new(ip.trim().parse().context("node InternalIP")?, GATEWAY_PORT))
}

/// A browser: cookies in `jar`, the cluster CA, haven.test and its workspaces at the node.
#[derive(Debug)]
pub struct Browser {
    pub client: Client,
    pub jar: Arc<reqwest::cookie::Jar>,
}

impl Browser {
    pub fn new(idp: &IdpEnv, workspaces: &[&str]) -> Result<Self> {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let node = node_address()?;
        let mut builder =
            idp.browser_builder()?.cookie_provider(Arc::clone(&jar)).resolve(GATEWAY_DOMAIN, node);
        for workspace in workspaces {
            builder = builder.resolve(&format!("{workspace}.{GATEWAY_DOMAIN}"), node);
        }
        Ok(Self { client: builder.build()?, jar })
    }

    /// The Cookie header this browser would send to `url`.
    pub fn cookie_header(&self, url: &Url) -> String {
        self.jar.cookies(url).and_then(|v| v.to_str().ok().map(str::to_owned)).unwrap_or_default()
    }

    /// GETs a workspace page, logging in at the provider when sent there; returns the final
    /// response (not a redirect).
    pub async fn visit(&self, idp: &IdpEnv, user: &IdpUser, url: Url) -> Result<reqwest::Response> {
        let mut response = self.client.get(url.clone()).send().await?;
        for _ in 0..10 {
            if !response.status().is_redirection() {
                return Ok(response);
            }
            let location =
                response.headers().get(LOCATION).context("redirect without Location")?.to_str()?.to_owned();
            let next = response.url().join(&location)?;
            response = if next.as_str().starts_with(idp.issuer.as_str()) {
                let back = crate::login_from(
                    &self.client,
                    &idp.issuer,
                    self.client.get(next).send().await?,
                    &user.email,
                    &user.password,
                    user.totp_secret.as_deref(),
                )
                .await?;
                let callback = back.headers().get(LOCATION).context("no callback")?.to_str()?.to_owned();
                self.client.get(callback).send().await?
            } else {
                self.client.get(next).send().await?
            };
        }
        bail!("too many redirects from {url}")
    }
}
