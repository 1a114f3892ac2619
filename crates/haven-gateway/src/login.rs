//! The portal's routes: `/_haven/login`, `/_haven/callback`, `/_haven/logout` and `/`, the
//! list of one's workspaces.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use chrono::{DateTime, Utc};
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::{
    gateway::Gateway,
    pages,
    proxy::Body,
    session::{LOGIN_LIFETIME, LoginState, Session, random_token},
};

/// Login states already used and sessions logged out, until they could no longer be used
/// anyway. In memory: a restart forgets them (see docs/gateway.md).
#[derive(Debug, Default)]
pub struct Spent {
    states: Mutex<HashMap<String, DateTime<Utc>>>,
    sessions: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl Spent {
    /// Marks a login state used; false when it already was (a replayed callback).
    fn use_state(&self, state: &str, until: DateTime<Utc>) -> bool {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Utc::now();
        states.retain(|_, until| *until > now);
        states.insert(state.to_owned(), until).is_none()
    }

    pub fn end_session(&self, id: &str, until: DateTime<Utc>) {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Utc::now();
        sessions.retain(|_, until| *until > now);
        sessions.insert(id.to_owned(), until);
    }

    pub fn is_ended(&self, id: &str) -> bool {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).contains_key(id)
    }
}

fn query(request: &Request<Incoming>) -> HashMap<String, String> {
    let text = request.uri().query().unwrap_or_default();
    url::form_urlencoded::parse(text.as_bytes()).into_owned().collect()
}

impl Gateway {
    pub(crate) async fn portal(
        &self,
        request: Request<Incoming>,
        origin: &crate::evidence::Origin,
    ) -> Response<Body> {
        match request.uri().path() {
            "/_haven/login" => self.login(&request),
            "/_haven/callback" => self.callback(&request, origin).await,
            "/_haven/logout" if request.method() == http::Method::POST => self.logout(&request, origin),
            "/_haven/logout" => pages::logout_form(),
            path if path.starts_with("/_haven/tes/") => {
                let workspace = &path["/_haven/tes/".len()..];
                match self.session(request.headers()) {
                    Ok(session) => {
                        let wants_json = request
                            .headers()
                            .get(header::ACCEPT)
                            .and_then(|v| v.to_str().ok())
                            .is_some_and(|v| v.contains("application/json"));
                        self.tes_token_page(&session, workspace, wants_json, origin).await
                    }
                    Err(_) => pages::redirect(
                        &self.login_url(&format!("{}{path}", self.site.portal_origin()), false),
                    ),
                }
            }
            "/" => match self.session(request.headers()) {
                Ok(session) => self.portal_page(&session),
                Err(_) => pages::redirect(&self.login_url(&format!("{}/", self.site.portal_origin()), false)),
            },
            _ => self.refusal_page(StatusCode::NOT_FOUND, "There is nothing at this address.", None),
        }
    }

    /// Where a browser without a session is sent, to come back to `next`; `fresh` asks the
    /// identity provider to authenticate again (a second factor for a tier that needs one).
    pub(crate) fn login_url(&self, next: &str, fresh: bool) -> String {
        let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        let fresh = if fresh { "&fresh=1" } else { "" };
        format!("{}/_haven/login?next={next}{fresh}", self.site.portal_origin())
    }

    fn safe_next(&self, next: Option<&String>) -> String {
        safe_next(&self.site, next.map(String::as_str))
    }

    fn login(&self, request: &Request<Incoming>) -> Response<Body> {
        let Some(oidc) = self.oidc() else {
            let reason = "The identity provider cannot be reached yet; try again in a minute.";
            return self.refusal_page(StatusCode::SERVICE_UNAVAILABLE, reason, None);
        };
        let params = query(request);
        let start = oidc.start(params.contains_key("fresh"));
        let login = LoginState {
            state: start.state,
            nonce: start.nonce,
            pkce_verifier: start.pkce_verifier,
            next: self.safe_next(params.get("next")),
            started: Utc::now(),
        };
        let mut response = pages::redirect(&start.url);
        if let Ok(cookie) = HeaderValue::from_str(&self.sealer.seal_login(&login)) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    }

    async fn callback(
        &self,
        request: &Request<Incoming>,
        origin: &crate::evidence::Origin,
    ) -> Response<Body> {
        let refuse = |reason: &str| {
            self.evidence.login_refused(None, origin, reason);
            self.refusal_page(StatusCode::FORBIDDEN, &format!("Login refused: {reason}"), None)
        };
        let params = query(request);
        let Some(login) = self.sealer.open_login(request.headers()) else {
            return refuse(
                "no login is in progress in this browser (its login cookie is missing, altered or from another gateway); start again",
            );
        };
        if let Some(error) = params.get("error") {
            let description = params.get("error_description").map(String::as_str).unwrap_or_default();
            return refuse(&format!("the identity provider answered {error}: {description}"));
        }
        if params.get("state") != Some(&login.state) {
            return refuse("the login's state does not match (a forged or crossed callback)");
        }
        if Utc::now() - login.started > LOGIN_LIFETIME {
            return refuse("the login took too long; start again");
        }
        if !self.spent.use_state(&login.state, login.started + LOGIN_LIFETIME) {
            return refuse("this login was already used (a replayed callback)");
        }
        let (Some(code), Some(oidc)) = (params.get("code"), self.oidc()) else {
            return refuse("the callback has no code, or the identity provider cannot be reached");
        };
        let identity = match oidc.finish(code, &login.pkce_verifier, &login.nonce).await {
            Ok(identity) => identity,
            Err(error) => return refuse(&error.to_string()),
        };
        if let Err(error) = self.evidence.login(&identity.user, origin, &identity.amr, identity.mfa) {
            tracing::error!(%error, "the access log did not take a login");
            let reason = "The login could not be recorded, so it was not accepted.";
            return self.refusal_page(StatusCode::SERVICE_UNAVAILABLE, reason, None);
        }
        let now = Utc::now();
        let session = Session {
            id: random_token(16),
            user: identity.user,
            mfa: identity.mfa,
            amr: identity.amr,
            issued: now,
            seen: now,
        };
        let mut response = pages::redirect(&login.next);
        for cookie in [self.sealer.seal_session(&session), self.sealer.clear_login()] {
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        response
    }

    fn logout(&self, request: &Request<Incoming>, origin: &crate::evidence::Origin) -> Response<Body> {
        let from = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
        if from.is_some_and(|from| from != self.site.portal_origin()) {
            return self.refusal_page(
                StatusCode::FORBIDDEN,
                "A logout may come only from the gateway's own page.",
                None,
            );
        }
        if let Ok(session) = self.session(request.headers()) {
            self.spent.end_session(&session.id, session.issued + self.lifetimes.absolute);
            self.tracker.end_session(&session.id, "logged out");
            let detail = serde_json::json!({"source": origin.source});
            self.evidence.record_or_log(&session.user, "logout", "gateway", detail);
        }
        let mut response = pages::page(
            StatusCode::OK,
            "Logged out",
            "",
            "<p>You are logged out of every workspace.</p><p><a href=\"/\">Log in again</a></p>",
        );
        if let Ok(value) = HeaderValue::from_str(&self.sealer.clear_session()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        response
    }

    fn portal_page(&self, session: &Session) -> Response<Body> {
        let workspaces: Vec<pages::WorkspaceLink> = self
            .directory
            .workspaces_of(&session.user)
            .iter()
            .filter_map(|w| {
                let name = w.metadata.name.clone()?;
                let phase =
                    w.status.as_ref().map(|s| format!("{:?}", s.phase)).unwrap_or_else(|| "Pending".into());
                let multi_site =
                    self.directory.permit(&w.spec.permit).is_some_and(|p| p.spec.multi_site.is_some());
                let tes = (self.tes.is_some() && multi_site).then(|| format!("/_haven/tes/{name}"));
                Some(pages::WorkspaceLink {
                    url: format!("{}/", self.site.workspace_origin(&name)),
                    name,
                    phase,
                    tes,
                })
            })
            .collect();
        pages::portal(&session.user, session.mfa, &workspaces)
    }
}

/// `next` if it is an address on this site (the portal or a workspace), else the portal: a
/// login must never send the browser elsewhere (pure).
pub fn safe_next(site: &crate::config::Site, next: Option<&str>) -> String {
    let portal = format!("{}/", site.portal_origin());
    let Some(url) = next.and_then(|next| url::Url::parse(next).ok()) else { return portal };
    let host = url.host_str().unwrap_or_default();
    let on_site = url.scheme() == site.scheme
        && url.port() == site.port
        && url.username().is_empty()
        && url.password().is_none()
        && (host == site.domain
            || matches!(crate::route::target(site, host), crate::route::Target::Workspace(_)));
    if on_site { url.to_string() } else { portal }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Site;

    #[test]
    fn after_login_the_browser_goes_only_to_this_site() {
        let site = Site::parse("https://haven.test:30443").expect("site");
        let next = |url: &str| safe_next(&site, Some(url));
        assert_eq!(next("https://w.haven.test:30443/lab?x=1"), "https://w.haven.test:30443/lab?x=1");
        assert_eq!(next("https://haven.test:30443/"), "https://haven.test:30443/");
        for elsewhere in [
            "https://evil.example/",
            "https://w.haven.test.evil.example:30443/",
            "http://w.haven.test:30443/",
            "https://w.haven.test/",
            "https://user@w.haven.test:30443/",
            "https://a.b.haven.test:30443/",
            "//evil.example/",
            "javascript:alert(1)",
        ] {
            assert_eq!(next(elsewhere), "https://haven.test:30443/", "{elsewhere}");
        }
        assert_eq!(safe_next(&site, None), "https://haven.test:30443/");
    }
}
