//! The TES bearer token: minted at the portal for one person and one workspace, sealed with the
//! session key, bounded by the session that minted it (its lifetime, and its logout).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::session::{Sealer, Session};

/// The name the token is sealed under (never opens as a cookie, nor a cookie as a token).
const SEALED_AS: &str = "haven_tes";

/// Who may submit tasks, for which workspace, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TesToken {
    /// The session that minted it: logging out ends the token too.
    pub session: String,
    pub user: String,
    pub workspace: String,
    /// Whether that login showed a second factor (the workspace's tier may require one).
    pub mfa: bool,
    pub expires: DateTime<Utc>,
}

/// Why a request's token admits no one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadToken {
    #[error("no bearer token: get one for your workspace at the portal")]
    Missing,
    #[error("the bearer token is not one this gateway issued")]
    Forged,
    #[error("the bearer token has expired: get a new one at the portal")]
    Expired,
}

/// A token for `workspace` from `session`, good for `lifetime` but never past the session's
/// own absolute end.
pub fn mint(
    sealer: &Sealer,
    session: &Session,
    workspace: &str,
    now: DateTime<Utc>,
    lifetime: Duration,
    session_lifetime: Duration,
) -> (String, TesToken) {
    let token = TesToken {
        session: session.id.clone(),
        user: session.user.clone(),
        workspace: workspace.to_owned(),
        mfa: session.mfa,
        expires: (now + lifetime).min(session.issued + session_lifetime),
    };
    (sealer.seal_token(SEALED_AS, &token), token)
}

/// The token of an `Authorization: Bearer ...` header, if sealed by us and not expired.
pub fn open(sealer: &Sealer, authorization: Option<&str>, now: DateTime<Utc>) -> Result<TesToken, BadToken> {
    let sealed = authorization
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or(BadToken::Missing)?;
    let token: TesToken = sealer.open_token(SEALED_AS, sealed).ok_or(BadToken::Forged)?;
    if now >= token.expires {
        return Err(BadToken::Expired);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::fixtures::{sealer, session};

    #[test]
    fn a_token_opens_for_its_person_and_workspace_until_it_expires() {
        let now: DateTime<Utc> = "2026-12-07T10:00:00Z".parse().expect("time");
        let (sealed, minted) =
            mint(&sealer(1), &session(now), "w", now, Duration::hours(8), Duration::hours(12));
        let header = format!("Bearer {sealed}");
        let opened = open(&sealer(1), Some(&header), now + Duration::hours(1)).expect("opens");
        assert_eq!(opened, minted);
        assert_eq!(
            (opened.user.as_str(), opened.workspace.as_str(), opened.mfa),
            ("ada@haven.test", "w", true)
        );
        assert_eq!(open(&sealer(1), Some(&header), now + Duration::hours(8)), Err(BadToken::Expired));
    }

    #[test]
    fn a_token_never_outlives_the_session_that_minted_it() {
        let issued: DateTime<Utc> = "2026-12-07T10:00:00Z".parse().expect("time");
        let now = issued + Duration::hours(11);
        let (_, token) =
            mint(&sealer(1), &session(issued), "w", now, Duration::hours(8), Duration::hours(12));
        assert_eq!(token.expires, issued + Duration::hours(12));
    }

    #[test]
    fn forged_tampered_and_missing_tokens_are_refused() {
        let now: DateTime<Utc> = "2026-12-07T10:00:00Z".parse().expect("time");
        let (sealed, _) = mint(&sealer(1), &session(now), "w", now, Duration::hours(8), Duration::hours(12));
        assert_eq!(open(&sealer(2), Some(&format!("Bearer {sealed}")), now), Err(BadToken::Forged));
        let mut tampered = sealed.clone().into_bytes();
        tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert_eq!(open(&sealer(1), Some(&format!("Bearer {tampered}")), now), Err(BadToken::Forged));
        assert_eq!(open(&sealer(1), None, now), Err(BadToken::Missing));
        assert_eq!(open(&sealer(1), Some(&format!("Basic {sealed}")), now), Err(BadToken::Missing));
        // A session cookie's sealed value is not a token.
        let cookie = sealer(1).seal_session(&session(now));
        let value = cookie.split_once('=').and_then(|(_, v)| v.split(';').next()).expect("value");
        assert_eq!(open(&sealer(1), Some(&format!("Bearer {value}")), now), Err(BadToken::Forged));
    }
}
