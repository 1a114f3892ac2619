//! Start-up and the listeners: TLS (re-read when the certificate changes) or plain HTTP, the
//! health port, the identity provider's discovery, the sweeper.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime},
};

use anyhow::Context;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::TcpListener;
use tokio_rustls::{
    TlsAcceptor,
    rustls::{self, ServerConfig},
};

use crate::{
    activity::Activity,
    authz::Authorizer,
    config::{GatewayArgs, Site},
    directory::Directory,
    evidence::Evidence,
    gateway::Gateway,
    identity::{SecondFactor, UsernameRule},
    login::Spent,
    oidc::{Oidc, OidcSettings},
    proxy,
    session::{Lifetimes, Sealer},
    tes::TesService,
    tracker::Tracker,
};

/// How long a client has for its TLS handshake, and then for each request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the identity provider's discovery document and keys are read again (key rotation).
const REDISCOVER: Duration = Duration::from_secs(900);

/// Runs the gateway until SIGTERM or Ctrl-C.
pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let site = Site::parse(&args.public_url)?;
    let key = std::fs::read(&args.cookie_key_file)
        .with_context(|| format!("reading --cookie-key-file {}", args.cookie_key_file.display()))?;
    let sealer = Sealer::new(&key, site.clone())?;
    let client_secret = std::fs::read_to_string(&args.oidc_client_secret_file).with_context(|| {
        format!("reading --oidc-client-secret-file {}", args.oidc_client_secret_file.display())
    })?;
    let extra_ca_pem = match &args.oidc_ca_file {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading --oidc-ca-file {}", path.display()))?)
        }
        None => None,
    };
    let tls = match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(cert), Some(key)) => Some(TlsFiles::load(cert.clone(), key.clone())?),
        _ => None,
    };
    let client = kube::Client::try_default().await.context("connecting to the Kubernetes API")?;
    let tes = match (&args.tes_listen, &args.tes_url) {
        (Some(_), Some(url)) => Some(TesService {
            url: url.trim_end_matches('/').to_owned(),
            token_lifetime: chrono::Duration::from_std(args.tes_token_lifetime)?,
            client: client.clone(),
        }),
        _ => None,
    };
    let directory = Directory::start(&client, args.ide_port);
    let evidence = Evidence::open(&args.access_log, Some((client.clone(), directory.clone())))
        .with_context(|| format!("opening the access log {}", args.access_log.display()))?;
    let ttl = args.recheck_interval.min(Duration::from_secs(2));
    let tracker = Tracker::new(evidence.clone());
    let gateway = Arc::new(Gateway {
        site: site.clone(),
        sealer,
        oidc: RwLock::new(None),
        directory: directory.clone(),
        authorizer: Authorizer::new(client.clone(), directory.clone(), ttl),
        tracker: tracker.clone(),
        evidence,
        activity: Activity::new(client),
        tes,
        upstream: proxy::upstream_client(),
        lifetimes: Lifetimes {
            idle: chrono::Duration::from_std(args.session_idle)?,
            absolute: chrono::Duration::from_std(args.session_lifetime)?,
        },
        spent: Spent::default(),
    });
    let settings = OidcSettings {
        issuer: args.oidc_issuer_url.clone(),
        client_id: args.oidc_client_id.clone(),
        client_secret: client_secret.trim().to_owned(),
        redirect_url: site.callback_url(),
        extra_ca_pem,
        scopes: args.oidc_scopes.clone(),
        username: UsernameRule {
            claim: args.oidc_username_claim.clone(),
            prefix: args.oidc_username_prefix.clone(),
            issuer: args.oidc_issuer_url.clone(),
        },
        second_factor: SecondFactor { amr: args.mfa_amr.clone(), acr: args.mfa_acr.clone() },
    };
    let ready = Arc::new(AtomicBool::new(false));
    tokio::spawn(discover(Arc::clone(&gateway), settings, directory, Arc::clone(&ready)));
    tokio::spawn(sweep(Arc::clone(&gateway), args.recheck_interval));
    tokio::spawn(health(args.metrics_address, Arc::clone(&ready), Arc::clone(&gateway.evidence.metrics)));
    let listener =
        TcpListener::bind(args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(listen = %args.listen, site = %site.portal_origin(), tls = tls.is_some(), "gateway listening");
    let tes_door = match args.tes_listen {
        Some(address) => {
            let listener = TcpListener::bind(address)
                .await
                .with_context(|| format!("listening on --tes-listen {address}"))?;
            tracing::info!(listen = %address, "TES API listening");
            Some(serve(listener, tls.clone(), Arc::clone(&gateway), Door::Tes))
        }
        None => None,
    };
    let tes_door = async move {
        match tes_door {
            Some(door) => door.await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = serve(listener, tls, Arc::clone(&gateway), Door::Browsers) => {}
        () = tes_door => {}
        () = shutdown_signal() => tracing::info!("stopping"),
    }
    tracker.end_all("gateway stopped");
    Ok(())
}

/// Reads the discovery document until it answers, then again now and then.
async fn discover(
    gateway: Arc<Gateway>,
    settings: OidcSettings,
    directory: Directory,
    ready: Arc<AtomicBool>,
) {
    let mut delay = Duration::from_secs(1);
    loop {
        match Oidc::discover(settings.clone()).await {
            Ok(oidc) => {
                *gateway.oidc.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(Arc::new(oidc));
                if !ready.load(Ordering::Relaxed) && directory.ready().await {
                    tracing::info!(issuer = %settings.issuer, "identity provider discovered; ready");
                    ready.store(true, Ordering::Relaxed);
                }
                delay = Duration::from_secs(1);
                tokio::time::sleep(REDISCOVER).await;
            }
            Err(error) => {
                tracing::warn!(%error, retry_in = ?delay, "identity provider not reachable");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

async fn sweep(gateway: Arc<Gateway>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        gateway.tracker.sweep(&gateway.authorizer, &gateway.activity, gateway.lifetimes.absolute).await;
    }
}

/// What a listener serves: people's browsers, or the workspaces' TES clients.
#[derive(Debug, Clone, Copy)]
enum Door {
    Browsers,
    Tes,
}

async fn serve(listener: TcpListener, tls: Option<TlsFiles>, gateway: Arc<Gateway>, door: Door) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let gateway = Arc::clone(&gateway);
        let acceptor = tls.as_ref().map(TlsFiles::acceptor);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let gateway = Arc::clone(&gateway);
                async move {
                    let response = match door {
                        Door::Browsers => gateway.handle(peer, request).await,
                        Door::Tes => gateway.tes(peer, request).await,
                    };
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            // A client that never finishes its headers does not hold a connection for long.
            http.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            let served = match acceptor {
                Some(acceptor) => match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        http.serve_connection(TokioIo::new(stream), service).with_upgrades().await
                    }
                    Ok(Err(error)) => return tracing::debug!(%error, %peer, "TLS handshake failed"),
                    Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                },
                None => http.serve_connection(TokioIo::new(stream), service).with_upgrades().await,
            };
            if let Err(error) = served {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
}

/// The certificate and key, re-read when either file changes (cert-manager renewals); their
/// modification times are looked at no more than every few seconds, not on every connection.
#[derive(Clone)]
struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
    current: Arc<RwLock<(Option<SystemTime>, TlsAcceptor)>>,
    looked: Arc<std::sync::Mutex<std::time::Instant>>,
}

/// How often the certificate files' times are looked at.
const TLS_RECHECK: Duration = Duration::from_secs(10);

impl TlsFiles {
    fn load(cert: PathBuf, key: PathBuf) -> anyhow::Result<Self> {
        let acceptor = acceptor_from(&cert, &key)?;
        let stamp = modified(&cert, &key);
        let looked = Arc::new(std::sync::Mutex::new(std::time::Instant::now()));
        Ok(Self { cert, key, current: Arc::new(RwLock::new((stamp, acceptor))), looked })
    }

    /// The acceptor for a new connection, re-reading the files first if they changed.
    fn acceptor(&self) -> TlsAcceptor {
        let (seen, acceptor) = self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        {
            let mut looked = self.looked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if looked.elapsed() < TLS_RECHECK {
                return acceptor;
            }
            *looked = std::time::Instant::now();
        }
        let stamp = modified(&self.cert, &self.key);
        if stamp == seen {
            return acceptor;
        }
        match acceptor_from(&self.cert, &self.key) {
            Ok(fresh) => {
                tracing::info!(cert = %self.cert.display(), "TLS certificate re-read");
                *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
                    (stamp, fresh.clone());
                fresh
            }
            // A half-written renewal: keep serving the old one and try again next time.
            Err(error) => {
                tracing::warn!(%error, "the new TLS certificate could not be read; keeping the old one");
                acceptor
            }
        }
    }
}

fn modified(cert: &Path, key: &Path) -> Option<SystemTime> {
    let time = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    time(cert).max(time(key))
}

fn acceptor_from(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS certificate and key do not go together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// `/healthz` (alive), `/readyz` (the identity provider and the watches are ready), `/metrics`.
async fn health(address: SocketAddr, ready: Arc<AtomicBool>, metrics: Arc<crate::metrics::Metrics>) {
    let listener = match TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(error) => return tracing::error!(%error, %address, "cannot serve health checks"),
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let ready = Arc::clone(&ready);
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let (status, text) = match request.uri().path() {
                    "/healthz" => (StatusCode::OK, "ok".to_owned()),
                    "/readyz" if ready.load(Ordering::Relaxed) => (StatusCode::OK, "ready".to_owned()),
                    "/readyz" => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "waiting for the identity provider and the watches".to_owned(),
                    ),
                    "/metrics" => (StatusCode::OK, metrics.encode()),
                    _ => (StatusCode::NOT_FOUND, "not found".to_owned()),
                };
                let mut response = Response::new(Full::new(Bytes::from(text)));
                *response.status_mut() = status;
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
