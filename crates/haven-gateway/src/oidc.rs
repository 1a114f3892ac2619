//! OpenID Connect login: authorization code with PKCE, through the `openidconnect` crate
//! (discovery, JWKS signature, issuer, audience, expiry and nonce checks are its).

use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
    core::{CoreAuthPrompt, CoreClient, CoreProviderMetadata, CoreResponseType},
    reqwest,
};

use crate::identity::{SecondFactor, UsernameRule};

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The relying party: one issuer, one client.
#[derive(Debug, Clone)]
pub struct Oidc {
    client: Client,
    http: reqwest::Client,
    scopes: Vec<String>,
    username: UsernameRule,
    second_factor: SecondFactor,
}

/// Everything a login can fail on, each a sentence for the refusal page and the access log.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the identity provider's discovery document at {issuer} could not be read: {detail}")]
    Discovery { issuer: String, detail: String },
    #[error("the identity provider did not exchange the login code: {0}")]
    Exchange(String),
    #[error("the identity provider returned no ID token")]
    NoIdToken,
    #[error("the ID token was refused: {0}")]
    InvalidToken(String),
    #[error("{0}")]
    NoUser(String),
}

/// Where to send the browser, and what to remember until it comes back.
#[derive(Debug)]
pub struct LoginStart {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// A verified login.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: String,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub mfa: bool,
}

#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_url: String,
    pub extra_ca_pem: Option<Vec<u8>>,
    pub scopes: String,
    pub username: UsernameRule,
    pub second_factor: SecondFactor,
}

impl Oidc {
    /// Reads the issuer's discovery document and keys.
    pub async fn discover(settings: OidcSettings) -> Result<Self, LoginError> {
        let discovery = |detail: String| LoginError::Discovery { issuer: settings.issuer.clone(), detail };
        // No redirects: a token endpoint that redirects could send the code elsewhere.
        let mut http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &settings.extra_ca_pem {
            for certificate in
                reqwest::Certificate::from_pem_bundle(pem).map_err(|e| discovery(e.to_string()))?
            {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http.build().map_err(|e| discovery(e.to_string()))?;
        let issuer = IssuerUrl::new(settings.issuer.clone()).map_err(|e| discovery(e.to_string()))?;
        let metadata =
            CoreProviderMetadata::discover_async(issuer, &http).await.map_err(|e| discovery(chain(&e)))?;
        let redirect =
            RedirectUrl::new(settings.redirect_url.clone()).map_err(|e| discovery(e.to_string()))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(settings.client_id.clone()),
            Some(ClientSecret::new(settings.client_secret.clone())),
        )
        .set_redirect_uri(redirect);
        let scopes =
            settings.scopes.split_whitespace().filter(|s| *s != "openid").map(str::to_owned).collect();
        Ok(Self { client, http, scopes, username: settings.username, second_factor: settings.second_factor })
    }

    /// A fresh login: random state and nonce, a PKCE S256 challenge; `reauthenticate` asks the
    /// provider to authenticate again rather than reuse its session (`prompt=login`), so a
    /// person can show the second factor a tier needs.
    pub fn start(&self, reauthenticate: bool) -> LoginStart {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        if reauthenticate {
            request = request.add_prompt(CoreAuthPrompt::Login);
        }
        let (url, state, nonce) = request.url();
        LoginStart {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        }
    }

    /// Exchanges the code (with the PKCE verifier) and verifies the ID token against the
    /// issuer's keys, our client id and the login's nonce.
    pub async fn finish(&self, code: &str, pkce_verifier: &str, nonce: &str) -> Result<Identity, LoginError> {
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| LoginError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| LoginError::Exchange(chain(&e)))?;
        let token = response.id_token().ok_or(LoginError::NoIdToken)?;
        let verifier = self.client.id_token_verifier();
        let claims = token
            .claims(&verifier, &Nonce::new(nonce.to_owned()))
            .map_err(|e| LoginError::InvalidToken(chain(&e)))?;
        let value = match self.username.claim.as_str() {
            "email" => claims.email().map(|e| e.as_str().to_owned()),
            "sub" => Some(claims.subject().as_str().to_owned()),
            "preferred_username" => claims.preferred_username().map(|u| u.as_str().to_owned()),
            other => return Err(LoginError::NoUser(format!("the username claim {other} is not supported"))),
        };
        let user =
            self.username.username(value.as_deref(), claims.email_verified()).map_err(LoginError::NoUser)?;
        let amr: Vec<String> =
            claims.auth_method_refs().into_iter().flatten().map(|m| m.as_str().to_owned()).collect();
        let acr = claims.auth_context_ref().map(|a| a.as_str().to_owned());
        let mfa = self.second_factor.shown_by(&amr, acr.as_deref());
        Ok(Identity { user, amr, acr, mfa })
    }
}

/// An error and its sources, on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
