//! The gateway's command line and the site it serves: `https://<domain>` for logins and
//! `https://<workspace>.<domain>` for each workspace.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use url::Url;

/// `haven gateway`: the one door into the workspaces.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayArgs {
    /// Where browsers connect (HTTPS with --tls-cert-file, else plain HTTP behind an Ingress).
    #[arg(long, env = "HAVEN_GATEWAY_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// The gateway's own address, e.g. `https://haven.example.org`; workspace `w` is served at
    /// `https://w.haven.example.org` (a wildcard DNS name and certificate).
    #[arg(long, env = "HAVEN_GATEWAY_PUBLIC_URL")]
    pub public_url: String,
    /// The TLS certificate chain (PEM), e.g. `tls.crt` of a cert-manager Secret; re-read when it changes.
    #[arg(long, requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// The TLS private key (PEM).
    #[arg(long, requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// The OpenID Connect issuer; its discovery document names every endpoint.
    #[arg(long, env = "HAVEN_OIDC_ISSUER_URL")]
    pub oidc_issuer_url: String,
    /// The gateway's client id at the issuer.
    #[arg(long, env = "HAVEN_OIDC_CLIENT_ID")]
    pub oidc_client_id: String,
    /// A file holding the client secret.
    #[arg(long)]
    pub oidc_client_secret_file: PathBuf,
    /// Extra CA certificates (PEM) to trust for the issuer.
    #[arg(long)]
    pub oidc_ca_file: Option<PathBuf>,
    /// The ID token claim that names the person, as the API server's --oidc-username-claim.
    #[arg(long, default_value = "email")]
    pub oidc_username_claim: String,
    /// Prefix for user names, as the API server's --oidc-username-prefix (unset: none for
    /// `email`, `<issuer>#` for other claims; `-`: none).
    #[arg(long)]
    pub oidc_username_prefix: Option<String>,
    /// Scopes to ask for, space separated (`openid` is always asked).
    #[arg(long, default_value = "openid email profile")]
    pub oidc_scopes: String,
    /// `amr` values that count as a second factor.
    #[arg(long, value_delimiter = ',', default_value = "otp,mfa,hwk,swk,totp")]
    pub mfa_amr: Vec<String>,
    /// `acr` values that count as a second factor.
    #[arg(long, value_delimiter = ',')]
    pub mfa_acr: Vec<String>,
    /// A file of at least 64 random bytes that seals the session cookies.
    #[arg(long)]
    pub cookie_key_file: PathBuf,
    /// The hash-chained access log (normally the data store's `audit/access.log`).
    #[arg(long)]
    pub access_log: PathBuf,
    /// The port of each workspace's IDE Service, when its EndpointSlice does not name `ide`.
    #[arg(long, default_value_t = 8888)]
    pub ide_port: u16,
    /// How often the access of everyone inside is asked again (open WebSockets included).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub recheck_interval: Duration,
    /// A session unused this long must log in again.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub session_idle: Duration,
    /// A session ends this long after its login, used or not.
    #[arg(long, default_value = "12h", value_parser = parse_duration)]
    pub session_lifetime: Duration,
    /// Where the workspaces' TES clients connect (GA4GH TES v1.1; TLS as --listen); off when
    /// unset. Only the workspaces of multi-site permits may reach it (the operator's
    /// `--gateway-tes-port` opens that one port to them).
    #[arg(long, requires = "tes_url")]
    pub tes_listen: Option<SocketAddr>,
    /// The TES API's address as the workspaces reach it, e.g.
    /// `https://haven-gateway-tes.haven-gateway.svc:8444` (shown with each token; the TLS
    /// certificate must name its host).
    #[arg(long, requires = "tes_listen")]
    pub tes_url: Option<String>,
    /// How long a TES token is good for (never past the session that minted it).
    #[arg(long, default_value = "8h", value_parser = parse_duration)]
    pub tes_token_lifetime: Duration,
    /// Plain HTTP for /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:9090")]
    pub metrics_address: SocketAddr,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    haven_api::validation::parse_duration(text)
        .and_then(|d| d.to_std().ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?} is not a duration such as 2s, 1h or 1h30m"))
}

/// The gateway's address as browsers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// `https` (cookies are `Secure`); `http` only for a loopback test.
    pub scheme: String,
    /// The gateway's host; workspaces are its sub-domains, and the session cookie's domain.
    pub domain: String,
    /// A port other than the scheme's default, carried into every workspace address.
    pub port: Option<u16>,
}

/// A `--public-url` the gateway cannot serve.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("--public-url {url:?}: {problem}")]
pub struct SiteError {
    url: String,
    problem: &'static str,
}

impl Site {
    pub fn parse(public_url: &str) -> Result<Self, SiteError> {
        let bad = |problem| SiteError { url: public_url.to_owned(), problem };
        let url = Url::parse(public_url).map_err(|_| bad("is not a URL"))?;
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err(bad("must be https://<host>"));
        }
        let Some(url::Host::Domain(domain)) = url.host() else {
            return Err(bad("must name a DNS host: workspaces are served at <workspace>.<host>"));
        };
        if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
            return Err(bad("must be the bare origin, without a path, query or user"));
        }
        Ok(Self { scheme: url.scheme().to_owned(), domain: domain.to_ascii_lowercase(), port: url.port() })
    }

    fn origin_of(&self, host: &str) -> String {
        match self.port {
            Some(port) => format!("{}://{host}:{port}", self.scheme),
            None => format!("{}://{host}", self.scheme),
        }
    }

    /// `https://<domain>`: logins, the callback, the list of one's workspaces.
    pub fn portal_origin(&self) -> String {
        self.origin_of(&self.domain)
    }

    /// `https://<workspace>.<domain>`.
    pub fn workspace_origin(&self, workspace: &str) -> String {
        self.origin_of(&format!("{workspace}.{}", self.domain))
    }

    pub fn callback_url(&self) -> String {
        format!("{}/_haven/callback", self.portal_origin())
    }

    pub fn secure(&self) -> bool {
        self.scheme == "https"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_serves_workspaces_as_subdomains_and_keeps_its_port() {
        let site = Site::parse("https://Haven.Test:30443").expect("valid");
        assert_eq!(site.portal_origin(), "https://haven.test:30443");
        assert_eq!(site.workspace_origin("cancer"), "https://cancer.haven.test:30443");
        assert_eq!(site.callback_url(), "https://haven.test:30443/_haven/callback");
        let plain = Site::parse("https://haven.example.org/").expect("valid");
        assert_eq!(plain.workspace_origin("w"), "https://w.haven.example.org");
    }

    #[test]
    fn a_public_url_with_a_path_or_an_address_is_refused() {
        for url in ["https://haven.test/gateway", "https://10.0.0.1", "ftp://haven.test", "haven.test"] {
            assert!(Site::parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn durations_read_as_the_operators_do() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
