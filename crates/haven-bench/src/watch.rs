//! Watches that timestamp what they see on arrival: the benchmark's clock for "Ready",
//! "Running", "access removed" and "namespace deleting".

use std::fmt::Debug;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use kube::{
    Api, Resource,
    runtime::{WatchStreamExt, watcher},
};
use serde::de::DeserializeOwned;
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

/// An object as a watch reported it.
#[derive(Debug)]
pub enum Change<K> {
    /// Listed, added or modified.
    Applied(K),
    Deleted(K),
}

/// What a watch saw, and when (monotonic, and wall clock for comparing with timestamps the
/// operator acts on such as `expiresAt`).
#[derive(Debug)]
pub struct Seen<T> {
    pub at: Instant,
    pub wall: DateTime<Utc>,
    pub what: T,
}

/// Watches `api`, sends `pick(change)` for every change where it returns something, and
/// resolves the returned receiver once the initial list has been delivered.
pub fn spawn<K, T>(
    api: Api<K>,
    config: watcher::Config,
    pick: impl Fn(Change<K>) -> Option<T> + Send + 'static,
    sink: mpsc::UnboundedSender<Seen<T>>,
) -> oneshot::Receiver<()>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    T: Send + 'static,
{
    let (synced, is_synced) = oneshot::channel();
    tokio::spawn(async move {
        let mut synced = Some(synced);
        let mut events = watcher(api, config).default_backoff().boxed();
        while let Some(event) = events.next().await {
            let change = match event {
                Ok(watcher::Event::Apply(k) | watcher::Event::InitApply(k)) => Change::Applied(k),
                Ok(watcher::Event::Delete(k)) => Change::Deleted(k),
                Ok(watcher::Event::InitDone) => {
                    if let Some(synced) = synced.take() {
                        let _ = synced.send(());
                    }
                    continue;
                }
                Ok(watcher::Event::Init) | Err(_) => continue,
            };
            let (at, wall) = (Instant::now(), Utc::now());
            if let Some(what) = pick(change)
                && sink.send(Seen { at, wall, what }).is_err()
            {
                return; // nobody listens any more
            }
        }
    });
    is_synced
}
