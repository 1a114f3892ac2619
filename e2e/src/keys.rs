//! A permit's key as the operator keeps it, and the archive and quarantine keys derived from
//! it, so a test can open a sealed archive or quarantine copy as an auditor holding the key
//! would.

use anyhow::{Context, Result};
use haven_data::SealKey;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

/// The permit's key (the Secret `haven-key-<permit>` in `haven-system`, field `key`), or
/// `None` once it is shredded.
pub async fn permit_key(client: &Client, permit: &str) -> Result<Option<Vec<u8>>> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "haven-system");
    let secret = secrets.get_opt(&format!("haven-key-{permit}")).await?;
    Ok(secret.and_then(|s| s.data).and_then(|data| data.get("key").map(|key| key.0.clone())))
}

/// The key the permit's archives are sealed with, derived as the operator derives it.
pub async fn archive_key(client: &Client, permit: &str) -> Result<SealKey> {
    let key = permit_key(client, permit).await?.with_context(|| format!("permit {permit} has no key"))?;
    Ok(SealKey::archive(&key)?)
}

/// The key the permit's airlock quarantine copies are sealed with, derived as the operator
/// derives it.
pub async fn quarantine_key(client: &Client, permit: &str) -> Result<SealKey> {
    let key = permit_key(client, permit).await?.with_context(|| format!("permit {permit} has no key"))?;
    Ok(SealKey::quarantine(&key)?)
}
