//! The gateway's own pages: small, self-contained HTML with no script, each saying plainly
//! what happened and what to do.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use crate::proxy::Body;

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// A page; `head` is trusted markup (e.g. a refresh), `body` must already be escaped.
pub fn page(status: StatusCode, title: &str, head: &str, body: &str) -> Response<Body> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · Haven</title>{head}\
         <style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}}\
         h1{{font-size:1.4em}}code{{background:#eee;padding:0 .2em}}</style></head>\
         <body><h1>{title}</h1>{body}<p><small>Haven access gateway</small></p></body></html>",
        title = escape(title)
    );
    let mut response = Response::new(Full::new(Bytes::from(html)).map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // The gateway's own pages: no script, no framing, never cached.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Access refused, with the reason; `portal` is the gateway's own address (a workspace's
/// host would send `/_haven/...` to the environment); `step_up`, a login asking again for a
/// second factor.
pub fn refusal(status: StatusCode, reason: &str, portal: &str, step_up: Option<&str>) -> Response<Body> {
    let title = if status == StatusCode::NOT_FOUND { "Not found" } else { "Access refused" };
    let again = step_up.map_or_else(String::new, |url| {
        format!("<p><a href=\"{}\">Log in again with a second factor</a></p>", escape(url))
    });
    let body = format!(
        "<p>{}</p>{again}<p>This was recorded. If you think you should have access, ask your data access body or \
         project lead. <a href=\"{}/_haven/logout\">Log out</a></p>",
        escape(reason),
        escape(portal)
    );
    page(status, title, "", &body)
}

/// The environment is starting; the page reloads itself until it answers.
pub fn starting(workspace: &str) -> Response<Body> {
    let body = format!(
        "<p>Workspace <code>{}</code> was stopped while nobody used it and is starting again. \
         This page reloads by itself; your files are as you left them.</p>",
        escape(workspace)
    );
    let mut response = page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Starting your environment",
        "<meta http-equiv=\"refresh\" content=\"2\">",
        &body,
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    response
}

/// A workspace in the portal's list.
#[derive(Debug, Clone)]
pub struct WorkspaceLink {
    pub name: String,
    pub url: String,
    pub phase: String,
    /// Its TES token page, for the workspaces of multi-site permits.
    pub tes: Option<String>,
}

/// The portal: who is logged in and the workspaces that name them.
pub fn portal(user: &str, mfa: bool, workspaces: &[WorkspaceLink]) -> Response<Body> {
    let rows: String = workspaces
        .iter()
        .map(|w| {
            let tes = w.tes.as_ref().map_or_else(String::new, |url| {
                format!(" · <a href=\"{}\">token for TES clients</a>", escape(url))
            });
            format!(
                "<li><a href=\"{}\">{}</a> ({}){tes}</li>",
                escape(&w.url),
                escape(&w.name),
                escape(&w.phase)
            )
        })
        .collect();
    let list = if rows.is_empty() {
        "<p>No workspace names you.</p>".to_owned()
    } else {
        format!("<ul>{rows}</ul>")
    };
    let factor = if mfa { "with a second factor" } else { "without a second factor" };
    let body = format!(
        "<p>Logged in as <code>{}</code> ({factor}).</p>{list}<p><a href=\"/_haven/logout\">Log out</a></p>",
        escape(user)
    );
    page(StatusCode::OK, "Your workspaces", "", &body)
}

/// A TES token for one workspace: the address, the token, how to use it.
pub fn tes_token(workspace: &str, url: &str, token: &str, expires: &str) -> Response<Body> {
    let body = format!(
        "<p>For the GA4GH TES clients in workspace <code>{ws}</code> (e.g. py-tes). Tasks you submit \
         with it run at each data site of the workspace's multi-site permit, in your name; only what each \
         site's output checkers approve comes back, into <code>/home/imports/&lt;task&gt;/&lt;site&gt;/</code>.</p>\
         <p>TES address: <code id=\"tes-url\">{url}</code></p>\
         <p>Token (until {expires}; logging out ends it): <code id=\"tes-token\" style=\"word-break:break-all\">{token}</code></p>\
         <p>py-tes: <code>tes.HTTPClient(\"{url}\", token=\"&lt;token&gt;\")</code>. Results come back \
         only through each site's airlock: write them under <code>/outputs</code> and declare no TES outputs.</p>\
         <p>Keep it to yourself: anyone holding it can submit tasks as you in this workspace.</p>",
        ws = escape(workspace),
        url = escape(url),
        token = escape(token),
        expires = escape(expires),
    );
    page(StatusCode::OK, "TES token", "", &body)
}

/// Asks before logging out: a link in someone else's page must not log a person out.
pub fn logout_form() -> Response<Body> {
    let body = "<form method=\"post\" action=\"/_haven/logout\"><p>Log out of every workspace?</p>\
                <button type=\"submit\">Log out</button></form>";
    page(StatusCode::OK, "Log out", "", body)
}

/// A redirect.
pub fn redirect(location: &str) -> Response<Body> {
    let mut response = page(StatusCode::FOUND, "Redirecting", "", "<p>Redirecting…</p>");
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_pages_escape_what_they_quote() {
        let response =
            refusal(StatusCode::FORBIDDEN, "<script>alert(1)</script>", "https://haven.test", None);
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(escape("<a href='x'>&</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;");
        let csp = response.headers().get(header::CONTENT_SECURITY_POLICY).expect("csp");
        assert!(csp.to_str().expect("ascii").contains("default-src 'none'"));
    }
}
