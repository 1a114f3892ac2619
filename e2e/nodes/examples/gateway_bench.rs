//! `gateway_bench <target> <url> [requests] [connections] [label]`: small-request latency and throughput,
//! and WebSocket round trips, against one target (bench/gateway.sh runs it against the gateway,
//! a reference nginx doing the same job, and the environment directly, side by side).
//! `target` is `gateway` (logs ada in first; needs HAVEN_IDP_ENV and KUBECONFIG), or `plain`
//! (no login: nginx or the environment itself). `url` is the page to ask (the test
//! environment's `/`); its `/ws` echoes.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{SinkExt, StreamExt};
use haven_e2e_nodes::{Browser, IdpEnv};
use reqwest::{Client, Url};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(target), Some(url)) = (args.first(), args.get(1)) else {
        bail!("usage: gateway_bench <gateway|plain> <url> [requests] [connections] [label]");
    };
    let url = Url::parse(url)?;
    let requests: usize = args.get(2).map_or(Ok(3000), |n| n.parse())?;
    let connections: usize = args.get(3).map_or(Ok(8), |n| n.parse())?;
    let label = args.get(4).unwrap_or(target);
    let (client, cookie) = match target.as_str() {
        "gateway" => {
            let idp = IdpEnv::load()?;
            let workspace = url.host_str().and_then(|h| h.split('.').next()).context("workspace host")?;
            let browser = Browser::new(&idp, &[workspace])?;
            let response = browser.visit(&idp, idp.user("ada")?, url.clone()).await?;
            if !response.status().is_success() {
                bail!("ada was not let in: {}", response.status());
            }
            let cookie = browser.cookie_header(&url);
            (browser.client, cookie)
        }
        "plain" => {
            let client = Client::builder().danger_accept_invalid_certs(true).build()?;
            (client, String::new())
        }
        other => bail!("unknown target {other}"),
    };

    // Latency: one connection, one request at a time.
    let mut latencies = Vec::with_capacity(requests);
    for _ in 0..requests {
        let start = Instant::now();
        let response = client.get(url.clone()).send().await?;
        response.bytes().await?;
        latencies.push(start.elapsed());
    }
    latencies.sort();
    // Throughput: `connections` clients asking as fast as they can.
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url) = (client.clone(), url.clone());
        let share = requests / connections;
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                client.get(url.clone()).send().await?.bytes().await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let per_second = (requests / connections * connections) as f64 / start.elapsed().as_secs_f64();

    // WebSocket round trips on one connection.
    let mut ws_url = url.join("/ws")?;
    ws_url.set_scheme(if url.scheme() == "https" { "wss" } else { "ws" }).ok();
    let mut request = ws_url.as_str().into_client_request()?;
    if !cookie.is_empty() {
        request.headers_mut().insert("cookie", cookie.parse()?);
        request.headers_mut().insert("origin", url.origin().ascii_serialization().parse()?);
    }
    let address = if target == "gateway" {
        haven_e2e_nodes::node_address()?
    } else {
        let host = url.host_str().context("host")?;
        let port = url.port_or_known_default().context("port")?;
        tokio::net::lookup_host((host, port)).await?.next().context("address")?
    };
    let rtts = websocket_round_trips(request, &url, address, 1000).await?;
    println!(
        "{label:8} {per_second:>9.0} req/s ({connections} connections)  p50 {:.3} ms  p99 {:.3} ms  |  WebSocket RTT p50 {:.3} ms  p99 {:.3} ms",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&rtts, 0.5)),
        ms(percentile(&rtts, 0.99)),
    );
    Ok(())
}

async fn websocket_round_trips(
    request: tokio_tungstenite::tungstenite::handshake::client::Request,
    url: &Url,
    address: std::net::SocketAddr,
    count: usize,
) -> Result<Vec<Duration>> {
    let tcp =
        tokio::net::TcpStream::connect(address).await.with_context(|| format!("connecting to {address}"))?;
    tcp.set_nodelay(true)?;
    if url.scheme() == "https" {
        let name = rustls_pki_types::ServerName::try_from(url.host_str().context("host")?.to_owned())?;
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(insecure_client()?))
            .connect(name, tcp)
            .await?;
        round_trips(request, tls, count).await
    } else {
        round_trips(request, tcp, count).await
    }
}

async fn round_trips<S>(
    request: tokio_tungstenite::tungstenite::handshake::client::Request,
    stream: S,
    count: usize,
) -> Result<Vec<Duration>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream).await?;
    let mut rtts = Vec::with_capacity(count);
    for i in 0..count {
        let start = Instant::now();
        socket.send(Message::text(format!("ping {i}"))).await?;
        socket.next().await.context("closed")??;
        rtts.push(start.elapsed());
    }
    rtts.sort();
    Ok(rtts)
}

/// The benchmark measures speed, not trust: the targets' certificates are the cluster CA's.
fn insecure_client() -> Result<tokio_rustls::rustls::ClientConfig> {
    use tokio_rustls::rustls::{
        DigitallySignedStruct, SignatureScheme,
        client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        pki_types::{CertificateDer, ServerName, UnixTime},
    };
    #[derive(Debug)]
    struct AcceptAny;
    impl ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            tokio_rustls::rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
    Ok(tokio_rustls::rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .dangerous()
    .with_custom_certificate_verifier(std::sync::Arc::new(AcceptAny))
    .with_no_client_auth())
}
