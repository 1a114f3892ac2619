//! A scripted browser for the tests' OpenID provider (Keycloak, started by e2e/idp.sh): it
//! follows a relying party's redirect to the provider, fills in the login form, then the
//! one-time code when the provider asks for one, and hands back the provider's redirect to
//! the relying party's callback for the caller to follow.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use regex::Regex;
use reqwest::{Client, Response, Url, header::LOCATION};

/// A user of the provider's realm, as e2e/idp.sh made them for this cluster.
#[derive(Debug, Clone)]
pub struct IdpUser {
    /// Also the username.
    pub email: String,
    pub password: String,
    /// Base32, as an authenticator app is given it; `None` for users without a second factor.
    pub totp_secret: Option<String>,
}

/// The provider of this cluster: `$state/idp.env`, written by e2e/idp.sh.
#[derive(Debug, Clone)]
pub struct IdpEnv {
    /// `https://<host end of the node's veth>:8443/realms/haven`.
    pub issuer: Url,
    /// The cluster CA, which signed the provider's certificate.
    pub ca_file: PathBuf,
    pub ca_pem: Vec<u8>,
    /// The gateway's confidential client (authorization code with PKCE S256 only).
    pub client_id: String,
    pub client_secret: String,
    /// A public client for command-line tools (PKCE to a loopback redirect, or the device flow).
    pub cli_client_id: String,
    /// The realm's administrator (`realm-admin` of realm haven; tokens from that realm's
    /// `admin-cli` client with the password grant).
    pub admin: IdpUser,
    /// By short name: `ada` (password and TOTP), `ben`, `cy`, `oli` (password only).
    pub users: BTreeMap<String, IdpUser>,
}

impl IdpEnv {
    /// `$HAVEN_IDP_ENV`, else `$HAVEN_CLUSTER_DIR/idp.env`.
    pub fn load() -> Result<Self> {
        let path = match std::env::var_os("HAVEN_IDP_ENV") {
            Some(path) => PathBuf::from(path),
            None => std::env::var_os("HAVEN_CLUSTER_DIR")
                .map(|dir| Path::new(&dir).join("idp.env"))
                .context("neither HAVEN_IDP_ENV nor HAVEN_CLUSTER_DIR is set: run e2e/run-nodes.sh")?,
        };
        Self::from_file(&path)
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading {} (is the cluster up with HAVEN_IDP=1?)", path.display()))?;
        let vars = parse_assignments(&text);
        let get = |key: &str| {
            vars.get(key).cloned().with_context(|| format!("{key} missing in {}", path.display()))
        };
        let ca_file = PathBuf::from(get("IDP_CA_FILE")?);
        let ca_pem = std::fs::read(&ca_file).with_context(|| format!("reading {}", ca_file.display()))?;
        let mut users = BTreeMap::new();
        for name in get("IDP_USERS")?.split_whitespace() {
            let upper = name.to_uppercase();
            users.insert(
                name.to_owned(),
                IdpUser {
                    email: get(&format!("IDP_{upper}_EMAIL"))?,
                    password: get(&format!("IDP_{upper}_PASSWORD"))?,
                    totp_secret: vars.get(&format!("IDP_{upper}_TOTP_SECRET")).cloned(),
                },
            );
        }
        Ok(Self {
            issuer: Url::parse(&get("IDP_ISSUER_URL")?).context("IDP_ISSUER_URL")?,
            ca_file,
            ca_pem,
            client_id: get("IDP_CLIENT_ID")?,
            client_secret: get("IDP_CLIENT_SECRET")?,
            cli_client_id: get("IDP_CLI_CLIENT_ID")?,
            admin: IdpUser {
                email: get("IDP_ADMIN_USER")?,
                password: get("IDP_ADMIN_PASSWORD")?,
                totp_secret: None,
            },
            users,
        })
    }

    pub fn user(&self, name: &str) -> Result<&IdpUser> {
        self.users.get(name).with_context(|| format!("no user {name:?} in the provider's realm"))
    }

    /// A client that behaves as a browser for [`login`]: it keeps cookies, trusts only the
    /// cluster CA and follows no redirect by itself. Add `.resolve(..)` for a relying party's
    /// name through [`IdpEnv::browser_builder`].
    pub fn browser(&self) -> Result<Client> {
        Ok(self.browser_builder()?.build()?)
    }

    pub fn browser_builder(&self) -> Result<reqwest::ClientBuilder> {
        Ok(Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&self.ca_pem)?)
            .timeout(Duration::from_secs(30)))
    }

    /// [`login`] as `user` at this provider.
    pub async fn login(&self, client: &Client, start: Url, user: &IdpUser) -> Result<Response> {
        login(client, &self.issuer, start, &user.email, &user.password, user.totp_secret.as_deref()).await
    }
}

/// `KEY=value` lines, values optionally single-quoted (as Python's `shlex.quote` writes them).
fn parse_assignments(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| {
            let value = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(value);
            (key.trim().to_owned(), value.replace("'\"'\"'", "'"))
        })
        .collect()
}

/// Logs in as a browser would: GETs `start` (a relying party's login URL or the provider's
/// authorization URL), then [`login_from`].
pub async fn login(
    client: &Client,
    idp: &Url,
    start: Url,
    username: &str,
    password: &str,
    totp_secret: Option<&str>,
) -> Result<Response> {
    let response = client.get(start.clone()).send().await.with_context(|| format!("GET {start}"))?;
    login_from(client, idp, response, username, password, totp_secret).await
}

/// Continues from a response (typically a relying party's redirect to the provider): follows
/// redirects, posts the username and password, then the current TOTP code if the provider
/// asks for one, and returns the provider's redirect that leaves it (to the relying party's
/// callback, with `code` and `state`), unfollowed. When the provider's session cookie is
/// still valid no form is shown and that redirect comes at once. `client` must keep cookies
/// and must not follow redirects itself ([`IdpEnv::browser`]).
pub async fn login_from(
    client: &Client,
    idp: &Url,
    mut response: Response,
    username: &str,
    password: &str,
    totp_secret: Option<&str>,
) -> Result<Response> {
    let (mut sent_password, mut sent_code) = (false, false);
    for _ in 0..20 {
        let url = response.url().clone();
        if response.status().is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .with_context(|| format!("{url} redirects without a Location"))?;
            let next = url.join(location).with_context(|| format!("Location {location:?}"))?;
            if same_origin(&url, idp) && !same_origin(&next, idp) {
                return Ok(response);
            }
            response = client.get(next.clone()).send().await.with_context(|| format!("GET {next}"))?;
            continue;
        }
        let status = response.status();
        ensure!(
            same_origin(&url, idp),
            "{url} answered {status} where a redirect to the provider was expected"
        );
        let page = response.text().await?;
        let form = LoginForm::find(&page, &url).with_context(|| {
            format!("the provider's page {url} ({status}) has no login form: {}", feedback(&page))
        })?;
        let mut fields = form.hidden;
        if form.inputs.iter().any(|i| i == "otp") {
            ensure!(!sent_code, "the provider refused the one-time code: {}", feedback(&page));
            let secret = totp_secret
                .context("the provider asks for a one-time code and the user has no TOTP secret")?;
            fields.push(("otp".into(), totp_now(secret)?));
            sent_code = true;
        } else if form.inputs.iter().any(|i| i == "password") {
            ensure!(!sent_password, "the provider refused the password: {}", feedback(&page));
            fields.push(("username".into(), username.into()));
            fields.push(("password".into(), password.into()));
            sent_password = true;
        } else {
            bail!("the provider's page {url} asks for {:?}: {}", form.inputs, feedback(&page));
        }
        response = client
            .post(form.action.clone())
            .form(&fields)
            .send()
            .await
            .with_context(|| format!("POST {}", form.action))?;
    }
    bail!("more than 20 steps without leaving the provider")
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The first form of a page that asks for a password or a one-time code.
#[derive(Debug)]
struct LoginForm {
    action: Url,
    /// Names of the visible inputs.
    inputs: Vec<String>,
    /// Hidden inputs with their values, sent back as they are.
    hidden: Vec<(String, String)>,
}

impl LoginForm {
    fn find(page: &str, base: &Url) -> Option<Self> {
        let forms = Regex::new(r"(?is)<form\b([^>]*)>(.*?)</form>").ok()?;
        let inputs = Regex::new(r"(?is)<input\b([^>]*)>").ok()?;
        forms.captures_iter(page).find_map(|form| {
            let action = base.join(attributes(&form[1]).get("action")?).ok()?;
            let (mut visible, mut hidden) = (Vec::new(), Vec::new());
            for input in inputs.captures_iter(&form[2]) {
                let input = attributes(&input[1]);
                let Some(name) = input.get("name") else { continue };
                match input.get("type").map(String::as_str) {
                    Some("hidden") => {
                        hidden.push((name.clone(), input.get("value").cloned().unwrap_or_default()))
                    }
                    Some("submit" | "button") => {}
                    _ => visible.push(name.clone()),
                }
            }
            visible.iter().any(|n| n == "password" || n == "otp").then_some(Self {
                action,
                inputs: visible,
                hidden,
            })
        })
    }
}

fn attributes(tag: &str) -> BTreeMap<String, String> {
    let Ok(attribute) = Regex::new(r#"(?s)([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)')"#)
    else {
        return BTreeMap::new();
    };
    attribute
        .captures_iter(tag)
        .map(|c| {
            let value = c.get(2).or_else(|| c.get(3)).map_or("", |m| m.as_str());
            (c[1].to_lowercase(), unescape(value))
        })
        .collect()
}

/// The HTML character references Keycloak's templates write into attributes and messages.
fn unescape(text: &str) -> String {
    let Ok(reference) = Regex::new(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|amp|lt|gt|quot|apos);") else {
        return text.to_owned();
    };
    reference
        .replace_all(text, |c: &regex::Captures<'_>| match &c[1] {
            "amp" => "&".to_owned(),
            "lt" => "<".to_owned(),
            "gt" => ">".to_owned(),
            "quot" => "\"".to_owned(),
            "apos" => "'".to_owned(),
            n => {
                let code = match n.strip_prefix("#x").or_else(|| n.strip_prefix("#X")) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => n[1..].parse().ok(),
                };
                code.and_then(char::from_u32).map_or_else(|| c[0].to_owned(), String::from)
            }
        })
        .into_owned()
}

/// What a provider's page says went wrong (its error message, else its title).
fn feedback(page: &str) -> String {
    let patterns = [
        r#"(?is)id="input-error[^"]*"[^>]*>\s*([^<]+?)\s*<"#,
        r#"(?is)class="[^"]*kc-feedback-text[^"]*"[^>]*>\s*([^<]+?)\s*<"#,
        r"(?is)<title>\s*([^<]+?)\s*</title>",
    ];
    patterns
        .iter()
        .filter_map(|p| Regex::new(p).ok())
        .find_map(|re| re.captures(page).map(|c| unescape(&c[1])))
        .unwrap_or_else(|| "(no message)".into())
}

/// The current RFC 6238 code (HMAC-SHA1, 30 s, 6 digits: the realm's OTP policy) for a
/// base32 secret.
pub fn totp_now(secret_base32: &str) -> Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    totp_at(secret_base32, now)
}

pub fn totp_at(secret_base32: &str, unix_seconds: u64) -> Result<String> {
    let key = base32_decode(secret_base32)?;
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key)?;
    mac.update(&(unix_seconds / 30).to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let word =
        u32::from_be_bytes([digest[offset], digest[offset + 1], digest[offset + 2], digest[offset + 3]]);
    Ok(format!("{:06}", (word & 0x7fff_ffff) % 1_000_000))
}

/// RFC 4648 base32, padding and case ignored.
fn base32_decode(text: &str) -> Result<Vec<u8>> {
    let (mut bits, mut buffer, mut out) = (0u32, 0u64, Vec::new());
    for c in text.trim_end_matches('=').chars().filter(|c| !c.is_whitespace()) {
        let value = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u64 - 'A' as u64,
            c @ '2'..='7' => c as u64 - '2' as u64 + 26,
            _ => bail!("{c:?} is not base32"),
        };
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Ok(out)
}

/// The claims of a JWT (an ID token), not verified: the tests ask the provider for the token
/// themselves, over TLS they trust.
pub fn jwt_claims(token: &str) -> Result<serde_json::Value> {
    let payload = token.split('.').nth(1).context("not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('='))?;
    Ok(serde_json::from_slice(&bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_rfc_6238_sha1_vectors() -> Result<()> {
        // RFC 6238 appendix B: key "12345678901234567890", 8 digits; the last 6 are ours.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        for (time, code) in
            [(59, "287082"), (1_111_111_109, "081804"), (1_234_567_890, "005924"), (2_000_000_000, "279037")]
        {
            assert_eq!(totp_at(secret, time)?, code, "at {time}");
        }
        Ok(())
    }

    #[test]
    fn login_form_is_found_with_its_action_unescaped_and_hidden_fields() {
        let page = r#"<form id="kc-form-login" action="https://10.250.0.1:8443/realms/haven/login-actions/authenticate?session_code=a&amp;execution=b&amp;client_id=haven-gateway" method="post">
            <input id="username" name="username" value="" type="text" autofocus/>
            <input id="password" name="password" type="password"/>
            <input type="hidden" id="id-hidden-input" name="credentialId"/>
            <input class="pf-c-button" name="login" id="kc-login" type="submit" value="Sign In"/></form>"#;
        let base = Url::parse("https://10.250.0.1:8443/realms/haven/protocol/openid-connect/auth").ok();
        let form = base.and_then(|b| LoginForm::find(page, &b));
        let form = form.as_ref();
        assert_eq!(
            form.map(|f| f.action.query()),
            Some(Some("session_code=a&execution=b&client_id=haven-gateway"))
        );
        assert_eq!(form.map(|f| f.inputs.clone()), Some(vec!["username".to_owned(), "password".to_owned()]));
        assert_eq!(form.map(|f| f.hidden.clone()), Some(vec![("credentialId".to_owned(), String::new())]));
    }

    #[test]
    fn env_file_values_may_be_shell_quoted() {
        let vars = parse_assignments("A=plain\nB='with space'\nC='it'\"'\"'s'\n");
        assert_eq!(vars.get("A").map(String::as_str), Some("plain"));
        assert_eq!(vars.get("B").map(String::as_str), Some("with space"));
        assert_eq!(vars.get("C").map(String::as_str), Some("it's"));
    }
}
