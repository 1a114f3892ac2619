//! Who is at the other end: mutual TLS between sites. Each `Site` carries the CA that issues
//! that peer's certificates; a peer is the Site whose name is its certificate's common name
//! AND whose CA alone verifies it, so a site cannot speak for another even under a shared CA.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use haven_api::Site;
use kube::ResourceExt;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig, server::WebPkiClientVerifier};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(pem: &str) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert.context("reading a CA certificate")?).context("adding a CA certificate")?;
    }
    if roots.is_empty() {
        return Err(anyhow!("no CA certificate"));
    }
    Ok(roots)
}

fn chain(pem: &[u8]) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain: Vec<_> =
        CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().context("reading certificates")?;
    if chain.is_empty() {
        return Err(anyhow!("no certificate"));
    }
    Ok(chain)
}

/// The server side: this site's certificate, and every known peer's CA for client certificates.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8], sites: &[Arc<Site>]) -> anyhow::Result<ServerConfig> {
    let mut all = RootCertStore::empty();
    for site in sites {
        match roots(&site.spec.ca_bundle) {
            Ok(store) => all.roots.extend(store.roots),
            Err(error) => tracing::warn!(site = %site.name_any(), %error, "site's caBundle is unusable"),
        }
    }
    if all.is_empty() {
        return Err(anyhow!("no Site has a usable caBundle: no peer could be verified"));
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(all), provider()).build()?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).context("reading the TLS key")?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain(cert_pem)?, key)
        .context("the TLS certificate and key do not go together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The client side, towards `site`: its CA for the server, and our credential (`tls.crt`,
/// `tls.key` of its credential Secret).
pub fn client_config(site: &Site, cert_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<ClientConfig> {
    let key = PrivateKeyDer::from_pem_slice(key_pem).context("reading tls.key")?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(&site.spec.ca_bundle).context("spec.caBundle")?)
        .with_client_auth_cert(chain(cert_pem).context("tls.crt")?, key)
        .context("tls.crt and tls.key do not go together")?;
    Ok(config)
}

/// The Site that `certs` (the peer's chain, end entity first) belongs to, if any.
pub fn identify(certs: &[CertificateDer<'_>], sites: &[Arc<Site>]) -> Option<String> {
    let (end_entity, intermediates) = certs.split_first()?;
    let name = common_name(end_entity)?;
    let site = sites.iter().find(|s| s.name_any() == name)?;
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(&site.spec.ca_bundle).ok()?), provider())
            .build()
            .ok()?;
    verifier.verify_client_cert(end_entity, intermediates, UnixTime::now()).ok()?;
    Some(name)
}

fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let mut names = parsed.subject().iter_common_name();
    let name = names.next()?.as_str().ok()?.to_owned();
    // Two common names would make "which site" ambiguous.
    names.next().is_none().then_some(name)
}

#[cfg(test)]
#[path = "peer_tests.rs"]
mod tests;
