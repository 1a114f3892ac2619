//! Start-up: the caches, the agent, and with `--listen` the requesting site's API over mutual
//! TLS (a peer is known by its certificate; an unknown one gets nothing).

use std::{convert::Infallible, sync::Arc, time::Duration};

use anyhow::Context;
use bytes::Bytes;
use futures::StreamExt;
use haven_api::{AnalysisTask, DataPermit, Site, Workspace};
use haven_data::DataStore;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::{
    Api, Client, Resource,
    api::PostParams,
    runtime::{
        events::Recorder,
        reflector::{self, Store},
        watcher,
    },
};
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::{
    agent::Agent,
    audit::Trail,
    config::FederationArgs,
    hub::{Hub, HubError},
    peer,
    wire::{OFFERS_PATH, PackageUpload, Report},
};

/// How long a peer has for its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest report a peer may send.
const MAX_REPORT_BYTES: usize = 64 << 10;

/// A cache of every `K` in the cluster, kept current by a watch.
fn cache<K>(client: &Client) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream =
        reflector::reflector(writer, watcher(Api::<K>::all(client.clone()), watcher::Config::default()));
    tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    reader
}

/// Runs this site's federation until the process ends.
pub async fn run(args: FederationArgs) -> anyhow::Result<()> {
    let client = Client::try_default().await.context("connecting to the API server")?;
    let store = DataStore::new(&args.data_root);
    let trail = Arc::new(Trail::open(&store).context("opening audit/federation.log")?);
    let sites = cache::<Site>(&client);
    sites.wait_until_ready().await.context("watching Sites")?;
    let me = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .context("asking the API server who this agent is")?
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .context("the API server did not say who this agent is")?;
    tracing::info!(site = %args.site, user = %me, "federation starting");
    if let Some(address) = args.listen {
        let hub = Arc::new(Hub {
            client: client.clone(),
            site: args.site.clone(),
            store: store.clone(),
            trail: Arc::clone(&trail),
            tasks: cache::<AnalysisTask>(&client),
            workspaces: cache::<Workspace>(&client),
            permits: cache::<DataPermit>(&client),
            sites: sites.clone(),
            recorder: Recorder::new(client.clone(), "haven-federation".into()),
        });
        // Nothing is offered from half-filled caches: an empty answer would read as "nothing to do".
        for ready in [
            hub.tasks.wait_until_ready().await,
            hub.workspaces.wait_until_ready().await,
            hub.permits.wait_until_ready().await,
        ] {
            ready.context("watching tasks, workspaces and permits")?;
        }
        let (cert, key) =
            (args.tls_cert.clone().context("--tls-cert")?, args.tls_key.clone().context("--tls-key")?);
        let listener = TcpListener::bind(address).await.with_context(|| format!("listening on {address}"))?;
        tracing::info!(%address, "serving the requesting site's API");
        tokio::spawn({
            let hub = Arc::clone(&hub);
            async move { hub.tidy().await }
        });
        tokio::spawn(serve(listener, hub, cert, key, args.max_package_bytes));
    }
    let agent = Arc::new(Agent::new(
        client,
        args.site.clone(),
        args.namespace.clone(),
        store,
        trail,
        sites,
        me,
        args.pull_interval(),
        args.max_package_bytes,
    ));
    tokio::select! {
        () = agent.run() => {}
        _ = tokio::signal::ctrl_c() => {}
        () = terminated() => {}
    }
    Ok(())
}

async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending::<()>().await,
    }
}

async fn serve(
    listener: TcpListener,
    hub: Arc<Hub>,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    max_package: u64,
) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let hub = Arc::clone(&hub);
        let (cert, key) = (cert.clone(), key.clone());
        tokio::spawn(async move {
            // Built per connection: a Site added or a certificate renewed counts at once.
            let config = match (std::fs::read(&cert), std::fs::read(&key)) {
                (Ok(cert), Ok(key)) => peer::server_config(&cert, &key, &hub.sites.state()),
                (Err(e), _) | (_, Err(e)) => Err(e.into()),
            };
            let config = match config {
                Ok(config) => config,
                Err(error) => return tracing::error!(error = format!("{error:#}"), "cannot serve TLS"),
            };
            let handshake = TlsAcceptor::from(Arc::new(config)).accept(stream);
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => return tracing::info!(%remote, %error, "TLS handshake refused"),
                Err(_) => return tracing::info!(%remote, "TLS handshake timed out"),
            };
            let certs = tls.get_ref().1.peer_certificates().unwrap_or_default().to_vec();
            let Some(peer) = peer::identify(&certs, &hub.sites.state()) else {
                return tracing::warn!(%remote, "a certificate no Site vouches for under its own name: connection closed");
            };
            let service = service_fn(move |request| {
                let (hub, peer, certs) = (Arc::clone(&hub), peer.clone(), certs.clone());
                async move {
                    // Asked again on every request of a kept-alive connection: a Site deleted,
                    // or its CA replaced, cuts its peer off at once.
                    if peer::identify(&certs, &hub.sites.state()).as_deref() != Some(peer.as_str()) {
                        return Ok::<_, Infallible>(refusal(
                            StatusCode::FORBIDDEN,
                            format!("site {peer} is no longer known here"),
                        ));
                    }
                    Ok(handle(&hub, &peer, request, max_package).await)
                }
            });
            let _ =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
        });
    }
}

async fn handle(
    hub: &Hub,
    peer: &str,
    request: Request<Incoming>,
    max_package: u64,
) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let result = match (&method, segments.as_slice()) {
        (&Method::GET, _) if path == OFFERS_PATH => json(&hub.offers(peer)),
        (&Method::POST, ["federation", "v1", "tasks", uid, "report"]) => {
            match body::<Report>(request, MAX_REPORT_BYTES).await {
                Ok(report) => hub.report(peer, uid, report).await.map(|()| empty()),
                Err(error) => Err(error),
            }
        }
        (&Method::PUT, ["federation", "v1", "tasks", uid, "package"]) => {
            // base64 and JSON around the bytes: a third more, and some room.
            let limit = usize::try_from(max_package.saturating_mul(3) / 2 + (1 << 20)).unwrap_or(usize::MAX);
            match body::<PackageUpload>(request, limit).await {
                Ok(upload) => hub.package(peer, uid, upload).await.and_then(|d| json(&d)),
                Err(error) => Err(error),
            }
        }
        _ => Err(HubError::NotFound(format!("no {method} {path}"))),
    };
    result.unwrap_or_else(|error| {
        let status = match &error {
            HubError::NotFound(_) => StatusCode::NOT_FOUND,
            HubError::NotNow(_) => StatusCode::CONFLICT,
            HubError::Never(_) => StatusCode::GONE,
            HubError::Invalid(_) => StatusCode::BAD_REQUEST,
            HubError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        tracing::info!(%peer, %method, %path, %status, %error, "refused");
        refusal(status, error.to_string())
    })
}

fn refusal(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message)));
    *response.status_mut() = status;
    response
}

async fn body<T: DeserializeOwned>(request: Request<Incoming>, limit: usize) -> Result<T, HubError> {
    let bytes = Limited::new(request.into_body(), limit)
        .collect()
        .await
        .map_err(|e| HubError::Invalid(format!("reading the request: {e}")))?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| HubError::Invalid(format!("the request is not what was expected: {e}")))
}

fn json<T: serde::Serialize>(value: &T) -> Result<Response<Full<Bytes>>, HubError> {
    let bytes = serde_json::to_vec(value).map_err(|e| HubError::Internal(e.to_string()))?;
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    Ok(response)
}

fn empty() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}
