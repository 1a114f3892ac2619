//! This data site's line to a requesting site: HTTPS with this site's client certificate,
//! outbound only.

use std::time::Duration;

use anyhow::{Context, anyhow};
use bytes::Bytes;
use haven_api::Site;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use kube::ResourceExt;
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    peer,
    wire::{OFFERS_PATH, Offers, PackageUpload, Report, package_path, report_path},
};

/// The largest answer read from a requesting site.
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// The longest one call may take (a package of tens of MiB included).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A requesting site this site pulls from.
#[derive(Debug)]
pub struct Link {
    pub site: String,
    endpoint: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// What the requesting site said when it did not take a call.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {message}")]
pub struct Refused {
    pub status: StatusCode,
    pub message: String,
}

impl Link {
    pub fn new(site: &Site, cert_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<Self> {
        let endpoint = site
            .spec
            .endpoint
            .clone()
            .ok_or_else(|| anyhow!("site {} has no spec.endpoint", site.name_any()))?;
        let tls = peer::client_config(site, cert_pem, key_pem)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self { site: site.name_any(), endpoint: endpoint.trim_end_matches('/').to_owned(), client })
    }

    async fn call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> anyhow::Result<Bytes> {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.endpoint))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let exchange = async {
            let response = self.client.request(request).await.context("connecting")?;
            let status = response.status();
            // A peer's answer is bounded: offers of many tasks fit well within it.
            let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES);
            let bytes =
                body.collect().await.map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?.to_bytes();
            anyhow::Ok((status, bytes))
        };
        let (status, bytes) =
            tokio::time::timeout(CALL_TIMEOUT, exchange).await.context("no answer in time")??;
        if !status.is_success() {
            let message = String::from_utf8_lossy(&bytes).into_owned();
            return Err(Refused { status, message }.into());
        }
        Ok(bytes)
    }

    async fn send<T: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &T,
    ) -> anyhow::Result<R> {
        let bytes = self.call(method, path, Some(serde_json::to_vec(body)?)).await?;
        serde_json::from_slice(if bytes.is_empty() { b"null" } else { &bytes }).context("reading the answer")
    }

    pub async fn offers(&self) -> anyhow::Result<Offers> {
        let bytes = self.call(Method::GET, OFFERS_PATH, None).await?;
        serde_json::from_slice(&bytes).context("reading the offers")
    }

    pub async fn report(&self, uid: &str, report: &Report) -> anyhow::Result<()> {
        self.send::<_, serde_json::Value>(Method::POST, &report_path(uid), report).await.map(drop)
    }

    pub async fn push(&self, uid: &str, upload: &PackageUpload) -> anyhow::Result<serde_json::Value> {
        self.send(Method::PUT, &package_path(uid), upload).await
    }
}
