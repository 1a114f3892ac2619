//! The permit's pseudonymisation key: a Secret in the operator's namespace, created once and
//! deleted (shredded) when the permit's data is destroyed. Only its fingerprint is ever shown.

use std::collections::BTreeMap;

use haven_api::constants::labels;
use haven_data::prepare::key_fingerprint as fingerprint;
use k8s_openapi::{ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use kube::{Api, api::PostParams};

use crate::{
    context::Context,
    error::{Error, Result},
};

const KEY_FIELD: &str = "key";

pub fn key_secret_name(permit: &str) -> String {
    format!("haven-key-{permit}")
}

/// A permit's key as preparation needs it.
#[derive(Clone)]
pub struct PermitKey {
    pub fingerprint: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for PermitKey {
    // Never print the key itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PermitKey").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

impl From<&Secret> for PermitKey {
    fn from(secret: &Secret) -> Self {
        let bytes =
            secret.data.as_ref().and_then(|d| d.get(KEY_FIELD)).map(|k| k.0.clone()).unwrap_or_default();
        Self { fingerprint: fingerprint(&bytes), bytes }
    }
}

fn secrets(ctx: &Context) -> Api<Secret> {
    Api::namespaced(ctx.client.clone(), &ctx.config.operator_namespace)
}

/// The key if it exists.
pub async fn existing_key(ctx: &Context, permit: &str) -> Result<Option<PermitKey>> {
    Ok(secrets(ctx).get_opt(&key_secret_name(permit)).await?.as_ref().map(PermitKey::from))
}

/// Creates the key if it does not exist; returns it.
pub async fn ensure_key(ctx: &Context, permit: &str) -> Result<PermitKey> {
    let api = secrets(ctx);
    let name = key_secret_name(permit);
    if let Some(existing) = api.get_opt(&name).await? {
        return Ok(PermitKey::from(&existing));
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(Error::data_store)?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(BTreeMap::from([
                (labels::PERMIT.to_owned(), permit.to_owned()),
                (labels::MANAGED_BY.to_owned(), labels::MANAGED_BY_VALUE.to_owned()),
            ])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(KEY_FIELD.to_owned(), ByteString(key.to_vec()))])),
        immutable: Some(true),
        ..Secret::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(created) => Ok(PermitKey::from(&created)),
        // Another reconcile (or a restarted operator) created it first: use that one.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(PermitKey::from(&api.get(&name).await?)),
        // Refused for good (a policy, a quota): the permit says so instead of retrying blind.
        Err(error) => Err(Error::applying(format!("Secret {}/{name}", ctx.config.operator_namespace), error)),
    }
}

/// Deletes the key; returns its fingerprint if it existed.
pub async fn shred_key(ctx: &Context, permit: &str) -> Result<Option<String>> {
    let api = secrets(ctx);
    let name = key_secret_name(permit);
    let Some(existing) = api.get_opt(&name).await? else { return Ok(None) };
    crate::kubeapi::delete_if_exists(&api, &name).await?;
    Ok(Some(PermitKey::from(&existing).fingerprint))
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn fingerprint_is_stable_short_and_not_the_key() {
        let key = [7u8; 32];
        assert_eq!(fingerprint(&key), fingerprint(&key));
        assert_eq!(fingerprint(&key).len(), "sha256:".len() + 16);
        assert!(!fingerprint(&key).contains(&hex::encode(key)));
        assert_ne!(fingerprint(&key), fingerprint(&[8u8; 32]));
    }
}
