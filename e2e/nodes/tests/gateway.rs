//! The door, end to end on the real node: the gateway's pod from the chart (NodePort 30443 on
//! the node's address, TLS for haven.test and *.haven.test), the tests' Keycloak, and a
//! workspace whose environment (haven-testenv) answers HTTP and WebSocket behind it.
//!
//! A user with a second factor logs in (scripted browser) and reaches the environment, which
//! sees her name and none of her credentials; WebSocket echo; refusals, each answered and
//! recorded; then removing her from the workspace closes her open WebSocket (the gateway's
//! recheck: the environment runs on for the other user) and refuses her next request, and
//! revoking the permit closes the workspace to everyone. The access log's chain verifies and
//! holds all of it.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use futures::{SinkExt, StreamExt};
use haven_e2e::{kubectl_ok, unique_name};
use haven_e2e_nodes::{
    Browser, GATEWAY_DOMAIN, GATEWAY_PORT, IdpEnv, data_root, node_address, permit_and_workspace_for,
    workspace_url,
};
use reqwest::{StatusCode, Url, header::LOCATION};
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

const PORT: u16 = GATEWAY_PORT;
const DOMAIN: &str = GATEWAY_DOMAIN;
/// How long a revoked user's open WebSocket may stay open: generous (the design bound is the
/// 2 s recheck interval; the figure is printed).
const CUT_BOUND: Duration = Duration::from_secs(30);

fn portal() -> String {
    format!("https://{DOMAIN}:{PORT}")
}

/// A TLS connection to the gateway's NodePort for `host`, trusting only the cluster CA.
async fn tls_to_node(
    idp: &IdpEnv,
    host: &str,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for cert in <rustls_pki_types::CertificateDer<'_> as PemObject>::pem_slice_iter(&idp.ca_pem) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(node_address()?).await?;
    let name = rustls_pki_types::ServerName::try_from(host.to_owned())?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await?)
}

/// Sends one raw request over TLS (paths exactly as written, which an HTTP client would
/// normalise) and returns the status code.
async fn raw_status(idp: &IdpEnv, host: &str, request_line: &str, cookie: &str) -> Result<u16> {
    let mut tls = tls_to_node(idp, host).await?;
    let request =
        format!("{request_line}\r\nHost: {host}:{PORT}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    let status = text.split_whitespace().nth(1).context("no status line")?;
    Ok(status.parse()?)
}

/// Opens a WebSocket through the gateway with the browser's cookie and `origin`.
async fn websocket(
    idp: &IdpEnv,
    browser: &Browser,
    workspace: &str,
    origin: &str,
) -> Result<tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>> {
    let url = workspace_url(workspace, "/ws")?;
    let tls = tls_to_node(idp, &format!("{workspace}.{DOMAIN}")).await?;
    let ws_url = url.as_str().replacen("https://", "wss://", 1);
    let mut request = ws_url.into_client_request()?;
    request.headers_mut().insert("cookie", browser.cookie_header(&url).parse()?);
    request.headers_mut().insert("origin", origin.parse()?);
    let (socket, _) = tokio_tungstenite::client_async(request, tls).await?;
    Ok(socket)
}

fn access_log() -> Result<Vec<Value>> {
    let path = data_root()?.join("audit/access.log");
    let report = haven_data::audit::verify(&path).with_context(|| format!("verifying {}", path.display()))?;
    ensure!(report.records > 0, "the access log is empty");
    let text = std::fs::read_to_string(&path)?;
    text.lines().map(|line| Ok(serde_json::from_str(line)?)).collect()
}

fn has_record(records: &[Value], actor: &str, action: &str, check: impl Fn(&Value) -> bool) -> bool {
    records.iter().any(|r| r["actor"] == actor && r["action"] == action && check(&r["detail"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_permits_user_with_a_second_factor_gets_in_and_losing_access_closes_her_websocket()
-> Result<()> {
    let idp = IdpEnv::load()?;
    let (ada, ben, cy, oli) = (idp.user("ada")?, idp.user("ben")?, idp.user("cy")?, idp.user("oli")?);
    let (a, b) = (unique_name("gw-a"), unique_name("gw-b"));
    // Tier 3 (the default): a second factor required.
    permit_and_workspace_for(&a, &[&ada.email, &ben.email], &oli.email, json!({}))?;
    permit_and_workspace_for(&b, &[&cy.email], "checker@example.org", json!({}))?;

    // Ada: password and one-time code; the environment sees her name, not her credentials.
    let browser = Browser::new(&idp, &[&a, &b, "gw-nope"])?;
    let response = browser.visit(&idp, ada, workspace_url(&a, "/headers")?).await?;
    ensure!(response.status() == StatusCode::OK, "ada got {}: {}", response.status(), response.text().await?);
    let received: Vec<(String, String)> = response.json().await?;
    let header = |name: &str| received.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    ensure!(header("x-haven-user").as_deref() == Some(ada.email.as_str()), "x-haven-user: {received:?}");
    ensure!(header("authorization").is_none(), "Authorization reached the environment");
    ensure!(!header("cookie").unwrap_or_default().contains("haven_"), "our cookie reached the environment");
    ensure!(
        header("x-haven-clipboard-out").as_deref() == Some("disabled"),
        "tier 3's clipboard rule: {received:?}"
    );

    // WebSocket echo from the workspace's own origin.
    let own_origin = workspace_url(&a, "")?.origin().ascii_serialization();
    let mut socket = websocket(&idp, &browser, &a, &own_origin).await?;
    socket.send(Message::text("through the door")).await?;
    let echo = tokio::time::timeout(Duration::from_secs(10), socket.next()).await?.context("closed")??;
    ensure!(echo == Message::text("through the door"), "echo: {echo:?}");

    // Refusals, each with a status and a record.
    let other_origin = workspace_url(&b, "")?.origin().ascii_serialization();
    match websocket(&idp, &browser, &a, &other_origin).await {
        Err(error) => ensure!(error.to_string().contains("403"), "a WebSocket from {b}'s pages: {error}"),
        Ok(_) => anyhow::bail!("a WebSocket from {b}'s pages got in"),
    }
    let cookie = browser.cookie_header(&workspace_url(&a, "/")?);
    for (line, want) in [
        ("GET /%2e%2e/headers HTTP/1.1", 400),
        ("GET //tunnel HTTP/1.1", 400),
        ("GET /a/../ws HTTP/1.1", 400),
        ("GET /a%2fb HTTP/1.1", 400),
        ("GET /headers HTTP/1.1", 200),
    ] {
        let got = raw_status(&idp, &format!("{a}.{DOMAIN}"), line, &cookie).await?;
        ensure!(got == want, "{line}: {got}, wanted {want}");
    }
    for path in ["/tunnel", "/api/kernels", "/ws"] {
        let got = raw_status(&idp, &format!("{a}.{DOMAIN}"), &format!("POST {path} HTTP/1.1"), "").await?;
        ensure!(got == 401, "POST {path} without a session: {got}");
    }
    let tampered = cookie.replace("haven_session=", "haven_session=x");
    let got = raw_status(&idp, &format!("{a}.{DOMAIN}"), "POST /headers HTTP/1.1", &tampered).await?;
    ensure!(got == 401, "a tampered cookie: {got}");
    let got = raw_status(&idp, &format!("gw-nope.{DOMAIN}"), "GET / HTTP/1.1", &cookie).await?;
    ensure!(got == 404, "a workspace that does not exist: {got}");

    // Ben (password only) on a tier that needs a second factor is offered a login asking for
    // one; to cy (another workspace's user) and oli (the output checker) the workspace is not
    // there at all (the record says why).
    for (who, user, status, reason) in [
        ("ben", ben, StatusCode::FORBIDDEN, "Log in again with a second factor"),
        ("cy", cy, StatusCode::NOT_FOUND, "that you may enter"),
        ("oli", oli, StatusCode::NOT_FOUND, "that you may enter"),
    ] {
        let other = Browser::new(&idp, &[&a])?;
        let response = other.visit(&idp, user, workspace_url(&a, "/headers")?).await?;
        let got = response.status();
        let page = response.text().await?;
        ensure!(got == status && page.contains(reason), "{who}: {got}: {page}");
    }

    // A replayed callback: the same code and state again are refused.
    let replay = Browser::new(&idp, &[&a])?;
    let to_login = replay.client.get(format!("{}/_haven/login", portal())).send().await?;
    let login_cookie = replay.cookie_header(&Url::parse(&format!("{}/_haven/callback", portal()))?);
    let back = haven_e2e_nodes::login_from(
        &replay.client,
        &idp.issuer,
        to_login,
        &ada.email,
        &ada.password,
        ada.totp_secret.as_deref(),
    )
    .await?;
    let callback = back.headers().get(LOCATION).context("no callback")?.to_str()?.to_owned();
    ensure!(replay.client.get(&callback).send().await?.status() == StatusCode::FOUND, "the first callback");
    let again = replay.client.get(&callback).header("cookie", login_cookie).send().await?;
    let status = again.status();
    let page = again.text().await?;
    ensure!(
        status == StatusCode::FORBIDDEN && page.contains("already used"),
        "replayed callback: {status}: {page}"
    );

    // Ada is taken off the workspace: the gateway's recheck closes her open WebSocket while the
    // environment runs on for ben, and her next request is refused.
    let users = json!({"spec": {"users": [ben.email]}}).to_string();
    kubectl_ok(&["patch", "workspace", &a, "--type=merge", "-p", &users])?;
    let removed = Instant::now();
    let closed = tokio::time::timeout(CUT_BOUND, async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    ensure!(closed.is_ok(), "the WebSocket was still open {CUT_BOUND:?} after ada was removed");
    let ws_closed_after = removed.elapsed();
    let refused = browser.client.get(workspace_url(&a, "/headers")?).send().await?;
    let (status, page) = (refused.status(), refused.text().await?);
    ensure!(
        status == StatusCode::NOT_FOUND && page.contains("that you may enter"),
        "after removal: {status}: {page}"
    );
    println!(
        "removed from the workspace: her WebSocket closed {ws_closed_after:?} after the patch; next request {status}"
    );

    // Revoking the permit closes the workspace to everyone.
    let revoke = r#"{"spec":{"revoked":true,"revocationReason":"gateway test"}}"#;
    kubectl_ok(&["patch", "datapermit", &a, "--type=merge", "-p", revoke])?;
    let revoked = Instant::now();
    let ben_browser = Browser::new(&idp, &[&a])?;
    loop {
        let response = ben_browser.visit(&idp, ben, workspace_url(&a, "/headers")?).await?;
        let page = response.text().await?;
        if page.contains("nobody may enter") || page.contains("Revoked") {
            break;
        }
        ensure!(revoked.elapsed() < CUT_BOUND, "{CUT_BOUND:?} after revocation ben is told: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("revoked: the workspace refuses its users {:?} after the patch", revoked.elapsed());

    // The evidence: the chain verifies and holds the login, the visits and the refusals.
    let records = access_log()?;
    ensure!(has_record(&records, &ada.email, "login", |d| d["mfa"] == true), "ada's login");
    ensure!(has_record(&records, &ben.email, "login", |d| d["mfa"] == false), "ben's login");
    ensure!(
        has_record(&records, &ada.email, "visit-start", |d| d["kind"] == "websocket"),
        "ada's WebSocket visit"
    );
    let cut = |d: &Value| {
        d["kind"] == "websocket" && d["reason"].as_str().is_some_and(|r| r.starts_with("access removed"))
    };
    ensure!(has_record(&records, &ada.email, "visit-end", cut), "the WebSocket's end by the recheck");
    ensure!(has_record(&records, &ben.email, "refused", |d| d["status"] == 403), "ben's refusal");
    let not_a_user =
        |d: &Value| d["status"] == 404 && d["reason"].as_str().is_some_and(|r| r.contains("is not one of"));
    ensure!(has_record(&records, &oli.email, "refused", not_a_user), "oli's refusal, with its reason");
    ensure!(has_record(&records, "anonymous", "refused", |d| d["status"] == 401), "the session-less POSTs");
    ensure!(has_record(&records, &ada.email, "refused", |d| d["status"] == 400), "the path tricks");
    ensure!(records.iter().any(|r| r["action"] == "login-refused"), "the replayed callback");

    for name in [&a, &b] {
        kubectl_ok(&["delete", "workspace", name, "--wait=false"])?;
    }
    Ok(())
}
