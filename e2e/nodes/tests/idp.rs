//! The tests' OpenID provider (Keycloak, e2e/idp.sh), asked directly as the gateway will ask
//! it: an authorization code with PKCE for `haven-gateway`, the scripted browser login
//! (`haven_e2e_nodes::login`) in between. The ID token names the user by email and says which
//! factors were used: a password and a one-time code for ada, a password for ben, and the
//! same again when the provider's session cookie logs them in without a form.

use anyhow::{Context, Result, ensure};
use base64::Engine as _;
use haven_e2e_nodes::{IdpEnv, IdpUser, jwt_claims};
use reqwest::{Client, StatusCode, Url};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const CALLBACK: &str = "https://haven.test/_haven/callback";

fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

struct Endpoints {
    authorization: Url,
    token: Url,
}

async fn endpoints(idp: &IdpEnv, client: &Client) -> Result<Endpoints> {
    let discovery: Value = client
        .get(format!("{}/.well-known/openid-configuration", idp.issuer))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    ensure!(
        discovery["issuer"] == idp.issuer.as_str(),
        "issuer {} is not {}",
        discovery["issuer"],
        idp.issuer
    );
    let url =
        |key: &str| -> Result<Url> { Ok(Url::parse(discovery[key].as_str().context(key.to_owned())?)?) };
    Ok(Endpoints { authorization: url("authorization_endpoint")?, token: url("token_endpoint")? })
}

/// One authorization-code round as `haven-gateway` with `browser` (whose cookies may already
/// hold a provider session): returns the ID token's claims.
async fn id_token(idp: &IdpEnv, browser: &Client, at: &Endpoints, user: &IdpUser) -> Result<Value> {
    let (verifier, state, nonce) = (random_token()?, random_token()?, random_token()?);
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut authorize = at.authorization.clone();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &idp.client_id)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("scope", "openid email")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let back = idp.login(browser, authorize, user).await?;
    let location = back.headers().get(reqwest::header::LOCATION).context("no Location")?.to_str()?;
    let callback = Url::parse(location)?;
    ensure!(callback.as_str().starts_with(CALLBACK), "the provider sent the browser to {callback}");
    let query: std::collections::BTreeMap<_, _> = callback.query_pairs().into_owned().collect();
    ensure!(query.get("state") == Some(&state), "state {:?} is not ours", query.get("state"));
    let code = query.get("code").with_context(|| format!("no code in {callback}"))?;

    let tokens: Value = Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&idp.ca_pem)?)
        .build()?
        .post(at.token.clone())
        .basic_auth(&idp.client_id, Some(&idp.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let claims = jwt_claims(tokens["id_token"].as_str().context("no id_token")?)?;
    ensure!(claims["nonce"] == nonce.as_str(), "nonce {} is not ours", claims["nonce"]);
    ensure!(claims["iss"] == idp.issuer.as_str(), "iss {}", claims["iss"]);
    ensure!(
        claims["aud"] == idp.client_id.as_str()
            || claims["aud"].as_array().is_some_and(|a| a.contains(&json!(idp.client_id)))
    );
    Ok(claims)
}

#[tokio::test]
async fn id_tokens_name_the_user_by_email_and_list_the_factors_used() -> Result<()> {
    let idp = IdpEnv::load()?;
    for (name, factors) in [("ada", json!(["pwd", "otp"])), ("ben", json!(["pwd"]))] {
        let user = idp.user(name)?;
        let browser = idp.browser()?;
        let at = endpoints(&idp, &browser).await?;
        let claims = id_token(&idp, &browser, &at, user).await?;
        println!(
            "{name}: email {} email_verified {} amr {} acr {}",
            claims["email"], claims["email_verified"], claims["amr"], claims["acr"]
        );
        ensure!(claims["email"] == user.email.as_str(), "{name}: email {}", claims["email"]);
        ensure!(claims["email_verified"] == true, "{name}: email_verified {}", claims["email_verified"]);
        ensure!(
            claims["amr"] == factors,
            "{name}: amr {} after a login with the form, expected {factors}",
            claims["amr"]
        );
        // The provider's session cookie: no form this time, the same factors.
        let again = id_token(&idp, &browser, &at, user).await?;
        ensure!(
            again["amr"] == factors,
            "{name}: amr {} through the session cookie, expected {factors}",
            again["amr"]
        );
        ensure!(again["sid"] == claims["sid"], "{name}: a new provider session, not the cookie's");
    }
    Ok(())
}

#[tokio::test]
async fn the_gateway_client_takes_only_pkce_and_its_own_callback_and_wrong_passwords_fail() -> Result<()> {
    let idp = IdpEnv::load()?;
    let browser = idp.browser()?;
    let at = endpoints(&idp, &browser).await?;
    let request = |redirect: &str, pkce: bool| {
        let mut url = at.authorization.clone();
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &idp.client_id)
            .append_pair("redirect_uri", redirect)
            .append_pair("scope", "openid")
            .append_pair("state", "s");
        if pkce {
            query.append_pair("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
            query.append_pair("code_challenge_method", "S256");
        }
        drop(query);
        url
    };
    // Without PKCE the provider sends the browser back with an error, never a code.
    let answer = browser.get(request(CALLBACK, false)).send().await?;
    let location =
        answer.headers().get(reqwest::header::LOCATION).map(|l| l.to_str().unwrap_or_default().to_owned());
    ensure!(
        location.as_deref().is_some_and(|l| l.contains("error=invalid_request") && !l.contains("code=")),
        "an authorization request without PKCE: {} {location:?}",
        answer.status()
    );
    // A callback the client does not list is refused outright.
    let answer = browser.get(request("https://haven.test.example/_haven/callback", true)).send().await?;
    ensure!(answer.status() == StatusCode::BAD_REQUEST, "a foreign redirect URI: {}", answer.status());
    // With the gateway's port in the callback it is accepted (the login page is shown).
    let answer = browser.get(request("https://haven.test:30443/_haven/callback", true)).send().await?;
    ensure!(answer.status() == StatusCode::OK, "a callback with a port: {}", answer.status());
    // A wrong password leaves the browser on the provider's page with its error.
    let ben = idp.user("ben")?;
    let wrong = IdpUser { password: format!("{}x", ben.password), ..ben.clone() };
    let error = idp
        .login(&idp.browser()?, request(CALLBACK, true), &wrong)
        .await
        .err()
        .context("a wrong password logged in")?;
    ensure!(format!("{error:#}").contains("refused the password"), "{error:#}");
    Ok(())
}
