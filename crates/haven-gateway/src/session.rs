//! Sessions and login states, sealed (AES-256-GCM, the `cookie` crate's private jar) into
//! cookies the browser carries but cannot read or forge. Time is an input.

use chrono::{DateTime, Duration, Utc};
use cookie::{Cookie, CookieJar, Key, SameSite};
use http::HeaderMap;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::config::Site;

/// The session cookie: sent to the portal and every workspace (Domain=<domain>).
pub const SESSION_COOKIE: &str = "haven_session";
/// The login in progress: state, nonce and PKCE verifier, for the portal's host only.
pub const LOGIN_COOKIE: &str = "haven_login";
/// The same on https: the `__Host-` prefix makes browsers refuse it with a Domain, so a page
/// in a workspace cannot plant one for the portal (login CSRF through cookie tossing).
pub const SECURE_LOGIN_COOKIE: &str = "__Host-haven_login";

/// Whether a cookie name is the login cookie's, in either form.
pub fn is_login_cookie(name: &str) -> bool {
    name == LOGIN_COOKIE || name == SECURE_LOGIN_COOKIE
}
/// How long a login may take at the identity provider.
pub const LOGIN_LIFETIME: Duration = Duration::minutes(10);
/// The smallest key file: the private jar derives its AES key from 64 bytes.
pub const MIN_KEY_BYTES: usize = 64;

/// Who is logged in, as the identity provider said at login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Random; names the session in the access log and in the logged-out list.
    pub id: String,
    /// The Kubernetes user name (claim and prefix as the API server resolves them).
    pub user: String,
    /// Whether the login showed a second factor.
    pub mfa: bool,
    /// The login's `amr`, for the record.
    pub amr: Vec<String>,
    pub issued: DateTime<Utc>,
    pub seen: DateTime<Utc>,
}

/// A session's limits: an absolute lifetime from login and an idle one from last use.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub idle: Duration,
    pub absolute: Duration,
}

/// Why a sealed session no longer admits anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Expiry {
    #[error("the session ended {0} after login; log in again")]
    Absolute(&'static str),
    #[error("the session was unused for too long; log in again")]
    Idle,
}

impl Session {
    pub fn check(&self, now: DateTime<Utc>, limits: Lifetimes) -> Result<(), Expiry> {
        if now - self.issued > limits.absolute || now < self.issued - Duration::minutes(5) {
            return Err(Expiry::Absolute("its lifetime"));
        }
        if now - self.seen > limits.idle {
            return Err(Expiry::Idle);
        }
        Ok(())
    }

    /// Whether to re-issue the cookie with a fresh `seen`: at most once a minute, so a busy
    /// environment's requests do not each carry a new cookie.
    pub fn needs_refresh(&self, now: DateTime<Utc>) -> bool {
        now - self.seen > Duration::minutes(1)
    }
}

/// A login in progress, between the redirect to the identity provider and its callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Where to go after login: an address on this site (checked when it was accepted).
    pub next: String,
    pub started: DateTime<Utc>,
}

/// Seals and opens the gateway's cookies with one key.
#[derive(Clone)]
pub struct Sealer {
    key: Key,
    site: Site,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("site", &self.site).finish_non_exhaustive()
    }
}

/// A key file too short to seal with.
#[derive(Debug, thiserror::Error)]
#[error("the cookie key has {0} bytes; it needs at least {MIN_KEY_BYTES} random bytes")]
pub struct ShortKey(usize);

impl Sealer {
    pub fn new(key_bytes: &[u8], site: Site) -> Result<Self, ShortKey> {
        if key_bytes.len() < MIN_KEY_BYTES {
            return Err(ShortKey(key_bytes.len()));
        }
        Ok(Self { key: Key::from(&key_bytes[..MIN_KEY_BYTES]), site })
    }

    /// A sealed cookie: HttpOnly, Secure on https, SameSite=Lax (the identity provider's
    /// redirect back is a top-level navigation), on the whole site when `site_wide`.
    fn seal<T: Serialize>(
        &self,
        name: &'static str,
        value: &T,
        path: &'static str,
        site_wide: bool,
    ) -> String {
        let json = serde_json::to_string(value).unwrap_or_default();
        let mut cookie = Cookie::build((name, json))
            .path(path)
            .http_only(true)
            .secure(self.site.secure())
            .same_site(SameSite::Lax);
        if site_wide {
            cookie = cookie.domain(self.site.domain.clone());
        }
        let mut jar = CookieJar::new();
        jar.private_mut(&self.key).add(cookie.build());
        jar.get(name).map(|sealed| sealed.to_string()).unwrap_or_default()
    }

    /// Opens the one cookie of that name; two of them (one planted beside ours) open to nothing.
    fn open<T: DeserializeOwned>(&self, headers: &HeaderMap, name: &str) -> Option<T> {
        let mut found = request_cookies(headers).filter(|c| c.name() == name);
        let (Some(cookie), None) = (found.next(), found.next()) else { return None };
        let mut jar = CookieJar::new();
        jar.add_original(cookie.into_owned());
        let opened = jar.private(&self.key).get(name)?;
        serde_json::from_str(opened.value()).ok()
    }

    /// A bearer token: `value` sealed under `name` (the name is part of what is authenticated,
    /// so a token never opens as a session or a login, nor they as a token).
    pub fn seal_token<T: Serialize>(&self, name: &'static str, value: &T) -> String {
        let json = serde_json::to_string(value).unwrap_or_default();
        let mut jar = CookieJar::new();
        jar.private_mut(&self.key).add(Cookie::new(name, json));
        jar.get(name).map(|sealed| sealed.value().to_owned()).unwrap_or_default()
    }

    /// Opens a bearer token sealed by [`Sealer::seal_token`] under the same name.
    pub fn open_token<T: DeserializeOwned>(&self, name: &'static str, token: &str) -> Option<T> {
        let mut jar = CookieJar::new();
        jar.add_original(Cookie::new(name, token.to_owned()));
        let opened = jar.private(&self.key).get(name)?;
        serde_json::from_str(opened.value()).ok()
    }

    pub fn seal_session(&self, session: &Session) -> String {
        self.seal(SESSION_COOKIE, session, "/", true)
    }

    pub fn open_session(&self, headers: &HeaderMap) -> Option<Session> {
        self.open(headers, SESSION_COOKIE)
    }

    fn login_cookie(&self) -> &'static str {
        if self.site.secure() { SECURE_LOGIN_COOKIE } else { LOGIN_COOKIE }
    }

    pub fn seal_login(&self, login: &LoginState) -> String {
        self.seal(self.login_cookie(), login, "/", false)
    }

    pub fn open_login(&self, headers: &HeaderMap) -> Option<LoginState> {
        self.open(headers, self.login_cookie())
    }

    /// A Set-Cookie value that removes the login cookie.
    pub fn clear_login(&self) -> String {
        self.removal(self.login_cookie(), false)
    }

    /// A Set-Cookie value that removes the session cookie.
    pub fn clear_session(&self) -> String {
        self.removal(SESSION_COOKIE, true)
    }

    fn removal(&self, name: &'static str, site_wide: bool) -> String {
        let mut cookie = Cookie::build((name, "")).path("/").http_only(true).secure(self.site.secure());
        if site_wide {
            cookie = cookie.domain(self.site.domain.clone());
        }
        let mut cookie = cookie.build();
        cookie.make_removal();
        cookie.to_string()
    }
}

/// The cookies a request carries, from every Cookie header.
pub fn request_cookies(headers: &HeaderMap) -> impl Iterator<Item = Cookie<'_>> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
}

/// A random token of `bytes` bytes, hex.
pub fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).unwrap_or_else(|e| panic!("the system's random source failed: {e}"));
    hex::encode(buffer)
}

/// Fixtures for this module's tests and the TES token's.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub fn sealer(byte: u8) -> Sealer {
        Sealer::new(&[byte; 64], Site::parse("https://haven.test").expect("site")).expect("key")
    }

    /// Ada's session, logged in with a second factor at `now`.
    pub fn session(now: DateTime<Utc>) -> Session {
        Session {
            id: "s1".into(),
            user: "ada@haven.test".into(),
            mfa: true,
            amr: vec![],
            issued: now,
            seen: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::fixtures::{sealer, session};
    use super::*;

    fn request_with(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap_or_default().to_owned();
        let mut headers = HeaderMap::new();
        headers
            .insert(http::header::COOKIE, HeaderValue::from_str(&format!("other=1; {pair}")).expect("ascii"));
        headers
    }

    #[test]
    fn a_sealed_session_opens_with_its_key_only() {
        let now = Utc::now();
        let cookie = sealer(1).seal_session(&session(now));
        assert!(cookie.contains("HttpOnly") && cookie.contains("Secure") && cookie.contains("SameSite=Lax"));
        assert!(cookie.contains("Domain=haven.test") && !cookie.contains("ada@"), "{cookie}");
        assert_eq!(sealer(1).open_session(&request_with(&cookie)), Some(session(now)));
        assert_eq!(sealer(2).open_session(&request_with(&cookie)), None, "another key");
    }

    #[test]
    fn a_tampered_cookie_opens_to_nothing() {
        let cookie = sealer(1).seal_session(&session(Utc::now()));
        let (head, value) = cookie.split_once('=').expect("pair");
        let mut bytes = value.as_bytes().to_vec();
        bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{head}={}", String::from_utf8_lossy(&bytes));
        assert_eq!(sealer(1).open_session(&request_with(&tampered)), None);
        assert_eq!(
            sealer(1).open_session(&request_with("haven_session={\"user\":\"root\"}")),
            None,
            "plain JSON"
        );
    }

    #[test]
    fn sessions_end_after_their_lifetime_or_when_idle() {
        let now = Utc::now();
        let limits = Lifetimes { idle: Duration::hours(1), absolute: Duration::hours(12) };
        let mut s = session(now - Duration::hours(13));
        s.seen = now;
        assert_eq!(s.check(now, limits), Err(Expiry::Absolute("its lifetime")));
        let mut s = session(now - Duration::hours(2));
        s.seen = now - Duration::minutes(61);
        assert_eq!(s.check(now, limits), Err(Expiry::Idle));
        s.seen = now - Duration::minutes(59);
        assert_eq!(s.check(now, limits), Ok(()));
        assert!(s.needs_refresh(now) && !session(now).needs_refresh(now));
    }

    #[test]
    fn the_login_cookie_is_for_the_callback_only() {
        let login = LoginState {
            state: "s".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            next: "https://w.haven.test/".into(),
            started: Utc::now(),
        };
        let cookie = sealer(1).seal_login(&login);
        assert!(cookie.starts_with("__Host-haven_login=") && !cookie.contains("Domain="), "{cookie}");
        assert_eq!(sealer(1).open_login(&request_with(&cookie)), Some(login));
    }

    #[test]
    fn a_second_session_cookie_planted_beside_ours_opens_to_nothing() {
        let now = Utc::now();
        let ours = sealer(1).seal_session(&session(now));
        let pair = ours.split(';').next().unwrap_or_default().to_owned();
        let mut headers = HeaderMap::new();
        let both = format!("{pair}; {pair}");
        headers.insert(http::header::COOKIE, HeaderValue::from_str(&both).expect("ascii"));
        assert_eq!(sealer(1).open_session(&headers), None);
    }

    #[test]
    fn a_short_key_is_refused() {
        assert!(Sealer::new(&[0; 32], Site::parse("https://haven.test").expect("site")).is_err());
    }
}
