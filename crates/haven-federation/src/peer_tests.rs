use haven_api::SiteSpec;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

use super::*;

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("a key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    Ca { cert: params.self_signed(&key).expect("a CA"), key }
}

/// A client certificate with common name `name`, issued by `ca`.
fn client(name: &str, ca: &Ca) -> CertificateDer<'static> {
    let key = KeyPair::generate().expect("a key");
    let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.signed_by(&key, &ca.cert, &ca.key).expect("a certificate").der().clone()
}

fn site(name: &str, ca: &Ca) -> Arc<Site> {
    Arc::new(Site::new(name, SiteSpec { endpoint: None, ca_bundle: ca.cert.pem(), credential_secret: None }))
}

#[test]
fn a_peer_is_the_site_named_by_its_certificate_and_vouched_for_by_its_own_ca() {
    let (north_ca, south_ca) = (ca("north CA"), ca("south CA"));
    let sites = [site("north", &north_ca), site("south", &south_ca)];
    assert_eq!(identify(&[client("north", &north_ca)], &sites).as_deref(), Some("north"));
    assert_eq!(identify(&[client("south", &south_ca)], &sites).as_deref(), Some("south"));
    // North's CA cannot issue south an identity, nor name a site nobody registered.
    assert_eq!(identify(&[client("south", &north_ca)], &sites), None);
    assert_eq!(identify(&[client("west", &north_ca)], &sites), None);
    assert_eq!(identify(&[], &sites), None);
}

#[test]
fn under_a_shared_federation_ca_the_common_name_still_decides() {
    let shared = ca("federation CA");
    let sites = [site("north", &shared), site("south", &shared)];
    assert_eq!(identify(&[client("north", &shared)], &sites).as_deref(), Some("north"));
    assert_eq!(identify(&[client("south", &shared)], &sites).as_deref(), Some("south"));
}

#[test]
fn the_server_verifies_clients_against_every_sites_ca_and_needs_at_least_one() {
    let north_ca = ca("north CA");
    let server_key = KeyPair::generate().expect("a key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, "hub");
    let server = params.signed_by(&server_key, &north_ca.cert, &north_ca.key).expect("a certificate");
    let (cert, key) = (server.pem(), server_key.serialize_pem());
    assert!(server_config(cert.as_bytes(), key.as_bytes(), &[site("north", &north_ca)]).is_ok());
    let none = server_config(cert.as_bytes(), key.as_bytes(), &[]).expect_err("no peer CA");
    assert!(none.to_string().contains("caBundle"), "{none}");
}
