//! One request, start to end: which host, whose session, may they enter, where is the
//! environment, then the proxy. Every refusal answers with a page and leaves a record.

use std::{
    net::SocketAddr,
    sync::{Arc, RwLock},
};

use chrono::Utc;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::{
    activity::Activity,
    authz::{Authorizer, Refusal},
    config::Site,
    directory::Directory,
    evidence::{Evidence, Origin, RefusedRequest},
    login::Spent,
    oidc::Oidc,
    pages,
    proxy::{self, Body, Forwarded, Upstream},
    route::{self, Target},
    session::{Expiry, Lifetimes, Sealer, Session},
    tracker::Tracker,
};

/// Everything a request needs, shared by all connections.
#[derive(Debug)]
pub struct Gateway {
    pub site: Site,
    pub sealer: Sealer,
    pub oidc: RwLock<Option<Arc<Oidc>>>,
    pub directory: Directory,
    pub authorizer: Authorizer,
    pub tracker: Tracker,
    pub evidence: Evidence,
    pub activity: Activity,
    pub upstream: Upstream,
    pub lifetimes: Lifetimes,
    pub spent: Spent,
    /// The GA4GH TES API for the workspaces' tools, when enabled.
    pub tes: Option<crate::tes::TesService>,
}

/// Why a request carries no usable session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSession {
    Missing,
    LoggedOut,
    Expired(Expiry),
}

impl NoSession {
    fn reason(self) -> String {
        match self {
            Self::Missing => "not logged in".into(),
            Self::LoggedOut => "the session was logged out".into(),
            Self::Expired(expiry) => expiry.to_string(),
        }
    }
}

fn is_websocket(headers: &HeaderMap) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    has(header::UPGRADE, "websocket") && has(header::CONNECTION, "upgrade")
}

impl Gateway {
    pub(crate) fn oidc(&self) -> Option<Arc<Oidc>> {
        self.oidc.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The request's session, if it is sealed by us, not logged out and within its lifetimes.
    pub(crate) fn session(&self, headers: &HeaderMap) -> Result<Session, NoSession> {
        let session = self.sealer.open_session(headers).ok_or(NoSession::Missing)?;
        if self.spent.is_ended(&session.id) {
            return Err(NoSession::LoggedOut);
        }
        session.check(Utc::now(), self.lifetimes).map_err(NoSession::Expired)?;
        Ok(session)
    }

    pub async fn handle(self: Arc<Self>, peer: SocketAddr, request: Request<Incoming>) -> Response<Body> {
        let header_text = |name: header::HeaderName| {
            request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
        };
        let origin = Origin { source: peer.ip().to_string(), user_agent: header_text(header::USER_AGENT) };
        let host = header_text(header::HOST);
        let mut response = match route::target(&self.site, &host) {
            Target::Portal => self.portal(request, &origin).await,
            Target::Workspace(workspace) => self.workspace(&workspace, peer, request, &origin).await,
            Target::Unknown => {
                self.refusal_page(StatusCode::NOT_FOUND, "There is nothing at this address.", None)
            }
        };
        proxy::security_headers(response.headers_mut(), self.site.secure());
        response
    }

    /// The refusal page, with the portal's address for its links.
    pub(crate) fn refusal_page(
        &self,
        status: StatusCode,
        shown: &str,
        step_up: Option<&str>,
    ) -> Response<Body> {
        pages::refusal(status, shown, &self.site.portal_origin(), step_up)
    }

    /// Answers with a refusal page and records the refusal (the record may say more than the page).
    fn refuse(
        &self,
        user: Option<&str>,
        workspace: &str,
        request: &Request<Incoming>,
        origin: &Origin,
        why: Why,
    ) -> Response<Body> {
        let refused = RefusedRequest {
            reason: &why.recorded,
            kind: why.kind,
            method: request.method().as_str(),
            path: request.uri().path(),
            status: why.status.as_u16(),
            origin,
        };
        self.evidence.refused(user, Some(workspace), &refused);
        self.refusal_page(why.status, &why.shown, why.step_up.as_deref())
    }

    async fn workspace(
        &self,
        workspace: &str,
        peer: SocketAddr,
        request: Request<Incoming>,
        origin: &Origin,
    ) -> Response<Body> {
        let websocket = is_websocket(request.headers());
        let session = self.session(request.headers());
        let user = session.as_ref().ok().map(|s| s.user.clone());
        if let Err(refusal) = route::check_path(request.uri().path()) {
            let why = Why::plain(StatusCode::BAD_REQUEST, "BadPath", format!("refused path: {refusal}"));
            return self.refuse(user.as_deref(), workspace, &request, origin, why);
        }
        let session = match session {
            Ok(session) => session,
            // A page to show: log in and come back. Anything else (a WebSocket, a POST, an
            // API call) is refused outright, never forwarded.
            Err(_) if request.method() == Method::GET && !websocket => {
                let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
                let back = format!("{}{path}", self.site.workspace_origin(workspace));
                return pages::redirect(&self.login_url(&back, false));
            }
            Err(missing) => {
                let why = Why::plain(StatusCode::UNAUTHORIZED, "NoSession", missing.reason());
                return self.refuse(None, workspace, &request, origin, why);
            }
        };
        if let Some(why) = self.cross_site(workspace, &request, websocket) {
            return self.refuse(Some(&session.user), workspace, &request, origin, why);
        }
        let grant = match self.authorizer.decide(workspace, &session.user, session.mfa).await {
            Ok(grant) => grant,
            Err(refusal) => {
                let step_up = matches!(refusal, Refusal::SecondFactorRequired(_)).then(|| {
                    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
                    self.login_url(&format!("{}{path}", self.site.workspace_origin(workspace)), true)
                });
                let why = Why {
                    status: refusal.status(),
                    kind: refusal.kind(),
                    recorded: refusal.to_string(),
                    shown: refusal.shown(),
                    step_up,
                };
                return self.refuse(Some(&session.user), workspace, &request, origin, why);
            }
        };
        let Some(upstream) = self.directory.upstream(workspace) else {
            // Stopped while idle (or still starting): this visit wakes it.
            self.activity.report(workspace, true);
            return pages::starting(workspace);
        };
        self.activity.report(workspace, false);
        let annotations = self.directory.ide_annotations(workspace);
        let forwarded = Forwarded {
            user: &session.user,
            source: peer,
            scheme: &self.site.scheme,
            annotations: &annotations,
            websocket,
        };
        let headers = proxy::upstream_headers(request.headers(), &forwarded);
        let secure = self.site.secure();
        let visit = if websocket {
            self.tracker.websocket(&session, workspace, &grant.permit, origin)
        } else {
            self.tracker.http_visit(&session, workspace, &grant.permit, origin).await
        };
        let visit = match visit {
            Ok(visit) => visit,
            Err(error) => {
                tracing::error!(%error, "the access log did not take a visit");
                let shown = "The visit could not be recorded, so it was not let in.";
                return self.refusal_page(StatusCode::SERVICE_UNAVAILABLE, shown, None);
            }
        };
        let proxied = if websocket {
            proxy::websocket(upstream, request, headers, Arc::clone(&visit), self.tracker.clone(), secure)
                .await
        } else {
            visit.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            visit.touch();
            proxy::http(&self.upstream, upstream, request, headers, &visit, secure).await
        };
        let mut response = match proxied {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(%error, %workspace, "the environment did not answer");
                if websocket {
                    self.tracker.end(&visit.id, &error.to_string());
                }
                return self.refusal_page(
                    StatusCode::BAD_GATEWAY,
                    "The environment did not answer; try again in a moment.",
                    None,
                );
            }
        };
        if session.needs_refresh(Utc::now()) {
            let refreshed = Session { seen: Utc::now(), ..session };
            if let Ok(value) = HeaderValue::from_str(&self.sealer.seal_session(&refreshed)) {
                response.headers_mut().append(header::SET_COOKIE, value);
                // A response carrying a session must never sit in a shared cache.
                response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
        }
        response
    }

    /// One site holds every workspace, so a page in one could use the person's cookie against
    /// another: WebSockets and writes come only from the workspace's own pages, and nothing but
    /// a navigation may come from another page of the site (a script's GET could carry data to
    /// a workspace of a more open tier).
    fn cross_site(&self, workspace: &str, request: &Request<Incoming>, websocket: bool) -> Option<Why> {
        let text = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        let own = self.site.workspace_origin(workspace);
        let from = text("origin");
        let state_changing =
            websocket || !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        if state_changing && (from.is_some_and(|from| from != own) || (websocket && from.is_none())) {
            let recorded =
                format!("a request from {} may not reach workspace {workspace}", from.unwrap_or("no origin"));
            return Some(Why::plain(StatusCode::FORBIDDEN, "CrossOrigin", recorded));
        }
        if text("sec-fetch-site") == Some("same-site") && text("sec-fetch-mode") != Some("navigate") {
            let recorded =
                format!("a script on another page of this site may not reach workspace {workspace}");
            return Some(Why::plain(StatusCode::FORBIDDEN, "CrossSite", recorded));
        }
        None
    }
}

/// Why a request is refused: its status, a stable kind for Events and metrics, what the
/// record says, what the page says (less, where the record would tell a stranger too much),
/// and a login that could satisfy it.
#[derive(Debug)]
struct Why {
    status: StatusCode,
    kind: &'static str,
    recorded: String,
    shown: String,
    step_up: Option<String>,
}

impl Why {
    fn plain(status: StatusCode, kind: &'static str, reason: String) -> Self {
        Self { status, kind, shown: reason.clone(), recorded: reason, step_up: None }
    }
}
