//! The proxy: HTTP/1.1 and WebSocket to the workspace's IDE, counting bytes each way. What
//! reaches the environment is decided here, in pure functions: never the session cookie, an
//! `Authorization` header or forwarding headers the browser made up; always the user's name.

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};

use crate::{
    relay::{Way, counted, relay},
    session::{SESSION_COOKIE, is_login_cookie, request_cookies},
    tracker::{Tracker, Visit},
};

/// How long the environment has to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every response body the gateway sends.
pub type Body = BoxBody<Bytes, BoxError>;
pub type Upstream = Client<HttpConnector, Body>;

/// The pooled client to environments.
pub fn upstream_client() -> Upstream {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector)
}

/// What the gateway tells the environment about a request.
#[derive(Debug, Clone)]
pub struct Forwarded<'a> {
    pub user: &'a str,
    pub source: SocketAddr,
    pub scheme: &'a str,
    /// The IDE Service's annotations; `haven.io/<rule>` becomes `X-Haven-<Rule>`.
    pub annotations: &'a BTreeMap<String, String>,
    pub websocket: bool,
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn is_ours_or_forged(name: &str) -> bool {
    name == "authorization"
        || name == "forwarded"
        || name == "x-real-ip"
        || name.starts_with("x-forwarded-")
        || name.starts_with("x-haven-")
}

/// The headers the environment receives (pure).
pub fn upstream_headers(original: &HeaderMap, forwarded: &Forwarded<'_>) -> HeaderMap {
    let named_by_connection: Vec<String> = original
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .collect();
    let mut headers = HeaderMap::new();
    for (name, value) in original {
        // CGI, WSGI, PHP and Rack read `X_Haven_User` as `X-Haven-User`: judge the name as they will.
        let lower = name.as_str().replace('_', "-");
        let hop = HOP_BY_HOP.contains(&lower.as_str()) || named_by_connection.contains(&lower);
        if hop || is_ours_or_forged(&lower) || lower == "cookie" {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    let kept: Vec<String> = request_cookies(original)
        .filter(|c| c.name() != SESSION_COOKIE && !is_login_cookie(c.name()))
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect();
    if let Ok(value) = HeaderValue::from_str(&kept.join("; "))
        && !kept.is_empty()
    {
        headers.insert(header::COOKIE, value);
    }
    if forwarded.websocket {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    let mut put = |name: &str, value: &str| {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
            headers.insert(name, value);
        }
    };
    // The tier's rules first, then who is asking: no annotation can stand in for the user.
    for (key, value) in forwarded.annotations {
        if let Some(rule) = key.strip_prefix("haven.io/").filter(|rule| *rule != "user") {
            put(&format!("x-haven-{rule}"), value);
        }
    }
    put("x-haven-user", forwarded.user);
    put("x-forwarded-for", &forwarded.source.ip().to_string());
    put("x-forwarded-proto", forwarded.scheme);
    if let Some(host) = original.get(header::HOST).and_then(|h| h.to_str().ok()) {
        put("x-forwarded-host", host);
    }
    headers
}

/// Cleans an environment's response headers in place (pure): no hop-by-hop headers, no
/// cookie for the whole site (an environment may set host-only cookies: with a Domain it
/// could plant cookies in every other workspace) and none named like ours; and the security
/// headers every response carries.
pub fn downstream_headers(headers: &mut HeaderMap, secure: bool, switching: bool) {
    if !switching {
        for name in HOP_BY_HOP {
            headers.remove(name);
        }
    }
    let cookies: Vec<HeaderValue> = headers.get_all(header::SET_COOKIE).iter().cloned().collect();
    headers.remove(header::SET_COOKIE);
    for value in cookies {
        let Ok(text) = value.to_str() else { continue };
        let Ok(cookie) = cookie::Cookie::parse(text) else { continue };
        if cookie.domain().is_none() && cookie.name() != SESSION_COOKIE && !is_login_cookie(cookie.name()) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    security_headers(headers, secure);
}

/// Headers on every response the gateway sends.
pub fn security_headers(headers: &mut HeaderMap, secure: bool) {
    if secure {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}

/// Why the environment could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the environment did not answer: {0}")]
    Unreachable(String),
}

fn upstream_uri(upstream: SocketAddr, request: &Request<Incoming>) -> String {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    format!("http://{upstream}{path}")
}

/// Forwards one HTTP request.
pub async fn http(
    client: &Upstream,
    upstream: SocketAddr,
    request: Request<Incoming>,
    headers: HeaderMap,
    visit: &Arc<Visit>,
    secure: bool,
) -> Result<Response<Body>, ProxyError> {
    let uri = upstream_uri(upstream, &request);
    let (parts, body) = request.into_parts();
    let mut outgoing = Request::builder()
        .method(parts.method)
        .uri(uri)
        .body(counted(body, visit, Way::In))
        .map_err(|e| ProxyError::Unreachable(e.to_string()))?;
    *outgoing.headers_mut() = headers;
    let response = client.request(outgoing).await.map_err(|e| ProxyError::Unreachable(e.to_string()))?;
    let (mut parts, body) = response.into_parts();
    downstream_headers(&mut parts.headers, secure, false);
    Ok(Response::from_parts(parts, counted(body, visit, Way::Out)))
}

/// Opens a WebSocket to the environment, answers the browser with the environment's
/// handshake, then relays bytes both ways until either side closes or the visit ends.
pub async fn websocket(
    upstream: SocketAddr,
    mut request: Request<Incoming>,
    headers: HeaderMap,
    visit: Arc<Visit>,
    tracker: Tracker,
    secure: bool,
) -> Result<Response<Body>, ProxyError> {
    let unreachable = |e: &dyn std::fmt::Display| ProxyError::Unreachable(e.to_string());
    let browser = hyper::upgrade::on(&mut request);
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(upstream))
        .await
        .map_err(|e| unreachable(&e))?
        .map_err(|e| unreachable(&e))?;
    stream.set_nodelay(true).map_err(|e| unreachable(&e))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
    tokio::spawn(connection.with_upgrades());
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let mut outgoing = Request::builder().uri(path).body(Empty::new()).map_err(|e| unreachable(&e))?;
    *outgoing.headers_mut() = headers;
    let mut response = sender.send_request(outgoing).await.map_err(|e| unreachable(&e))?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        tracker.end(&visit.id, &format!("the environment refused the WebSocket ({})", response.status()));
        let (mut parts, body) = response.into_parts();
        downstream_headers(&mut parts.headers, secure, false);
        return Ok(Response::from_parts(parts, body.map_err(Into::into).boxed()));
    }
    let environment = hyper::upgrade::on(&mut response);
    let mut answer = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *answer.headers_mut() = response.headers().clone();
    downstream_headers(answer.headers_mut(), secure, true);
    tokio::spawn(async move {
        let reason = match futures::future::try_join(browser, environment).await {
            Ok((browser, environment)) => {
                relay(TokioIo::new(browser), TokioIo::new(environment), &visit).await
            }
            Err(error) => format!("the upgrade failed: {error}"),
        };
        tracker.end(&visit.id, &reason);
    });
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::try_from(*name).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        headers
    }

    #[test]
    fn the_environment_never_sees_our_cookies_credentials_or_forged_identity() {
        let annotations = BTreeMap::from([
            ("haven.io/clipboard-out".to_owned(), "disabled".to_owned()),
            ("haven.io/user".to_owned(), "mallory".to_owned()),
            ("other.io/x".to_owned(), "y".to_owned()),
        ]);
        let forwarded = Forwarded {
            user: "ada@haven.test",
            source: "10.0.0.9:5555".parse().expect("addr"),
            scheme: "https",
            annotations: &annotations,
            websocket: false,
        };
        let original = request_headers(&[
            ("host", "w.haven.test"),
            ("cookie", "haven_session=sealed; _xsrf=abc"),
            ("cookie", "haven_login=x"),
            ("authorization", "Bearer token"),
            ("x-haven-user", "root"),
            ("x_haven_user", "ben"),
            ("X_Forwarded_For", "1.2.3.4"),
            ("x-forwarded-for", "1.2.3.4"),
            ("forwarded", "for=1.2.3.4"),
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "hop"),
            ("accept", "text/html"),
        ]);
        let headers = upstream_headers(&original, &forwarded);
        assert_eq!(headers.get("cookie").map(|v| v.to_str().ok()), Some(Some("_xsrf=abc")));
        assert!(headers.get("authorization").is_none() && headers.get("forwarded").is_none());
        assert!(headers.get("x-secret").is_none() && headers.get("connection").is_none());
        assert_eq!(headers.get_all("x-haven-user").iter().count(), 1);
        assert!(headers.keys().all(|name| !name.as_str().contains('_')), "underscored twins: {headers:?}");
        assert_eq!(headers.get("x-haven-user").map(|v| v.as_bytes()), Some(&b"ada@haven.test"[..]));
        assert_eq!(headers.get("x-forwarded-for").map(|v| v.as_bytes()), Some(&b"10.0.0.9"[..]));
        assert_eq!(headers.get("x-haven-clipboard-out").map(|v| v.as_bytes()), Some(&b"disabled"[..]));
        assert!(headers.get("x-haven-x").is_none());
        assert_eq!(headers.get("accept").map(|v| v.as_bytes()), Some(&b"text/html"[..]));
        let only_ours = request_headers(&[("cookie", "haven_session=sealed")]);
        assert!(upstream_headers(&only_ours, &forwarded).get("cookie").is_none());
    }

    #[test]
    fn a_websocket_keeps_its_upgrade() {
        let annotations = BTreeMap::new();
        let forwarded = Forwarded {
            user: "ada",
            source: "10.0.0.9:1".parse().expect("addr"),
            scheme: "https",
            annotations: &annotations,
            websocket: true,
        };
        let original = request_headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "k"),
            ("sec-websocket-version", "13"),
        ]);
        let headers = upstream_headers(&original, &forwarded);
        assert_eq!(headers.get("upgrade").map(|v| v.as_bytes()), Some(&b"websocket"[..]));
        assert_eq!(headers.get("connection").map(|v| v.as_bytes()), Some(&b"upgrade"[..]));
        assert!(headers.get("sec-websocket-key").is_some());
    }

    #[test]
    fn environments_may_set_only_host_only_cookies_and_never_ours() {
        let mut headers = request_headers(&[
            ("set-cookie", "_xsrf=1; Path=/"),
            ("set-cookie", "tossed=1; Domain=haven.test; Path=/"),
            ("set-cookie", "haven_session=forged; Path=/"),
            ("transfer-encoding", "chunked"),
        ]);
        downstream_headers(&mut headers, true, false);
        let cookies: Vec<_> =
            headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap_or_default()).collect();
        assert_eq!(cookies, ["_xsrf=1; Path=/"]);
        assert!(headers.get("transfer-encoding").is_none());
        assert!(headers.get("strict-transport-security").is_some());
        assert_eq!(headers.get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]));
    }
}
