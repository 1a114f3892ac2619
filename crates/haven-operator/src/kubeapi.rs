//! Small wrappers over the API: server-side apply under Haven's one field manager, deletes
//! that tolerate absence, and label selectors for pruning.

use std::fmt::Debug;

use haven_api::constants::{FIELD_MANAGER, labels};
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    applied::{Applied, fingerprint},
    error::{Error, Result},
};

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// Server-side applies a cluster-scoped object, unless the ledger shows it already stands.
pub async fn apply_cluster<K>(client: &Client, applied: &Applied, object: &K) -> Result<()>
where
    K: Resource<Scope = ClusterResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    apply_unless_current(&Api::all(client.clone()), applied, object).await
}

/// Server-side applies a namespaced object into its namespace, unless the ledger shows it
/// already stands.
pub async fn apply_namespaced<K>(client: &Client, applied: &Applied, object: &K) -> Result<()>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let namespace = object.namespace().unwrap_or_default();
    apply_unless_current(&Api::namespaced(client.clone(), &namespace), applied, object).await
}

async fn apply_unless_current<K>(api: &Api<K>, applied: &Applied, object: &K) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    let fingerprint = fingerprint(object);
    if applied.is_current(object, fingerprint) {
        return Ok(());
    }
    let returned = api
        .patch(&object.name_any(), &apply_params(), &Patch::Apply(object))
        .await
        .map_err(|error| Error::applying(format!("{} {}", K::kind(&()), object.name_any()), error))?;
    applied.record(&returned, fingerprint);
    Ok(())
}

/// Deletes `name` if it exists; absence is success.
pub async fn delete_if_exists<K>(api: &Api<K>, name: &str) -> Result<bool>
where
    K: Resource + Clone + Debug + DeserializeOwned,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// Deletes every object of `api` labelled with `workspace` whose name is not in `keep`.
pub async fn prune<K>(api: &Api<K>, workspace: &str, keep: &[String]) -> Result<()>
where
    K: Resource + Clone + Debug + DeserializeOwned,
{
    let selector =
        format!("{}={workspace},{}={}", labels::WORKSPACE, labels::MANAGED_BY, labels::MANAGED_BY_VALUE);
    for object in api.list_metadata(&ListParams::default().labels(&selector)).await? {
        let name = object.name_any();
        if !keep.contains(&name) {
            delete_if_exists(api, &name).await?;
        }
    }
    Ok(())
}
