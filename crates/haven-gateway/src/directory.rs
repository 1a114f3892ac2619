//! What the gateway knows of the cluster, kept by watches: Workspaces, DataPermits, the IDE
//! Services (their gateway annotations) and the IDE's EndpointSlices (where to connect; not
//! cluster DNS, so the gateway also works beside a local control plane).

use std::{net::SocketAddr, sync::Arc};

use futures::{StreamExt, future};
use haven_api::{
    DataPermit, Workspace,
    constants::{ENVIRONMENT_NAME, IDE_PORT_NAME, labels},
    validation::workspace_namespace,
};
use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use kube::{
    Api, Client, Resource,
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};

#[derive(Clone)]
pub struct Directory {
    workspaces: Store<Workspace>,
    permits: Store<DataPermit>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    ide_port: u16,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("workspaces", &self.workspaces.state().len())
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// Starts the watches; they run as long as the runtime does.
    pub fn start(client: &Client, ide_port: u16) -> Self {
        let managed = format!("{}={}", labels::MANAGED_BY, labels::MANAGED_BY_VALUE);
        let ide = format!("kubernetes.io/service-name={ENVIRONMENT_NAME}");
        Self {
            workspaces: keep(Api::all(client.clone()), watcher::Config::default()),
            permits: keep(Api::all(client.clone()), watcher::Config::default()),
            services: keep(Api::all(client.clone()), watcher::Config::default().labels(&managed)),
            slices: keep(Api::all(client.clone()), watcher::Config::default().labels(&ide)),
            ide_port,
        }
    }

    /// Waits until every watch has listed once.
    pub async fn ready(&self) -> bool {
        self.workspaces.wait_until_ready().await.is_ok()
            && self.permits.wait_until_ready().await.is_ok()
            && self.services.wait_until_ready().await.is_ok()
            && self.slices.wait_until_ready().await.is_ok()
    }

    pub fn workspace(&self, name: &str) -> Option<Arc<Workspace>> {
        self.workspaces.get(&ObjectRef::new(name))
    }

    pub fn permit(&self, name: &str) -> Option<Arc<DataPermit>> {
        self.permits.get(&ObjectRef::new(name))
    }

    /// The workspaces naming `user`, for the portal's list.
    pub fn workspaces_of(&self, user: &str) -> Vec<Arc<Workspace>> {
        let mut found: Vec<_> =
            self.workspaces.state().into_iter().filter(|w| w.spec.users.iter().any(|u| u == user)).collect();
        found.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
        found
    }

    /// The IDE Service's annotations (the tier's gateway controls, e.g. clipboard rules).
    pub fn ide_annotations(&self, workspace: &str) -> std::collections::BTreeMap<String, String> {
        let key = ObjectRef::new(ENVIRONMENT_NAME).within(&workspace_namespace(workspace));
        self.services.get(&key).and_then(|s| s.metadata.annotations.clone()).unwrap_or_default()
    }

    /// A ready address of the workspace's IDE, if its environment is running.
    pub fn upstream(&self, workspace: &str) -> Option<SocketAddr> {
        let namespace = workspace_namespace(workspace);
        self.slices
            .state()
            .iter()
            .filter(|slice| slice.metadata.namespace.as_deref() == Some(namespace.as_str()))
            .find_map(|slice| ready_address(slice, self.ide_port))
    }
}

fn keep<K>(api: Api<K>, config: watcher::Config) -> Store<K>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, config).default_backoff().reflect(writer).applied_objects();
    tokio::spawn(stream.for_each(|_| future::ready(())));
    reader
}

/// The first ready endpoint's address on the IDE port (named `ide`, else `ide_port`).
pub fn ready_address(slice: &EndpointSlice, ide_port: u16) -> Option<SocketAddr> {
    let port = slice.ports.as_ref().and_then(|ports| {
        let named = ports.iter().find(|p| p.name.as_deref() == Some(IDE_PORT_NAME));
        named.or_else(|| ports.iter().find(|p| p.port == Some(i32::from(ide_port)))).and_then(|p| p.port)
    })?;
    let port = u16::try_from(port).ok()?;
    slice
        .endpoints
        .iter()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false))
        .flat_map(|e| e.addresses.iter())
        .find_map(|address| address.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};

    use super::*;

    fn endpoint(address: &str, ready: Option<bool>) -> Endpoint {
        Endpoint {
            addresses: vec![address.into()],
            conditions: Some(EndpointConditions { ready, ..EndpointConditions::default() }),
            ..Endpoint::default()
        }
    }

    #[test]
    fn only_a_ready_endpoint_on_the_ide_port_is_an_upstream() {
        let slice = EndpointSlice {
            address_type: "IPv4".into(),
            endpoints: vec![
                endpoint("10.0.0.1", Some(false)),
                endpoint("10.0.0.2", None),
                endpoint("10.0.0.3", Some(true)),
            ],
            ports: Some(vec![
                EndpointPort { name: Some("metrics".into()), port: Some(9000), ..EndpointPort::default() },
                EndpointPort { name: Some("ide".into()), port: Some(8888), ..EndpointPort::default() },
            ]),
            ..EndpointSlice::default()
        };
        assert_eq!(ready_address(&slice, 1), Some("10.0.0.3:8888".parse().expect("addr")));
        let none_ready =
            EndpointSlice { endpoints: vec![endpoint("10.0.0.1", Some(false))], ..slice.clone() };
        assert_eq!(ready_address(&none_ready, 8888), None);
        let unnamed = EndpointSlice {
            ports: Some(vec![EndpointPort { port: Some(8888), ..EndpointPort::default() }]),
            ..slice
        };
        assert_eq!(ready_address(&unnamed, 8888), Some("10.0.0.3:8888".parse().expect("addr")));
    }
}
