//! One watch feeding a cache and several controllers.
//!
//! kube-runtime's shared streams hand each subscriber a reference that it then looks up in the
//! cache. When the object is deleted between the broadcast and the lookup, the subscriber's
//! stream (`ReflectHandle`, kube-runtime 5.0) returns `Pending` without arranging to be woken,
//! and that subscriber never sees another object: on the real node the workspace controller
//! stopped hearing of new Workspaces after one was deleted quickly. Here subscribers receive
//! the objects themselves, sent after the cache has them.

use std::sync::Arc;

use futures::{Stream, StreamExt, channel::mpsc, future};

/// Hands each object of a watch to every subscriber.
#[derive(Debug)]
pub struct Fanout<K> {
    senders: Vec<mpsc::UnboundedSender<Arc<K>>>,
}

impl<K> Default for Fanout<K> {
    fn default() -> Self {
        Self { senders: Vec::new() }
    }
}

impl<K: Send + Sync + 'static> Fanout<K> {
    /// A new subscriber, given every object sent from now on. Unbounded: controllers drain
    /// their triggers as they come (their schedulers keep them), so nothing piles up; a bounded
    /// channel would stall the watch, and with it every other subscriber, behind the slowest.
    pub fn subscribe(&mut self) -> mpsc::UnboundedReceiver<Arc<K>> {
        let (sender, receiver) = mpsc::unbounded();
        self.senders.push(sender);
        receiver
    }

    /// Hands each of `objects` (already in the cache) to every subscriber, until the watch
    /// ends. A subscriber that has gone is skipped.
    pub async fn run(self, objects: impl Stream<Item = K>) {
        objects
            .for_each(|object| {
                let object = Arc::new(object);
                for sender in &self.senders {
                    let _ = sender.unbounded_send(object.clone());
                }
                future::ready(())
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};

    use futures::task::{ArcWake, waker};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::{WatchStreamExt, reflector, watcher::Event};

    use super::*;

    fn config_map(name: &str) -> ConfigMap {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name, "namespace": "ns"}}))
            .expect("a map")
    }

    struct CountingWaker(AtomicUsize);
    impl ArcWake for CountingWaker {
        fn wake_by_ref(this: &Arc<Self>) {
            this.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Why this module exists; when this fails, kube-runtime has fixed its shared streams.
    #[tokio::test]
    async fn kube_runtimes_shared_subscriber_sleeps_for_good_after_a_quick_deletion() {
        let (_store, writer) = reflector::store_shared::<ConfigMap>(16);
        let mut subscriber = Box::pin(writer.subscribe().expect("shared"));
        let events =
            [Event::Apply(config_map("a")), Event::Delete(config_map("a")), Event::Apply(config_map("b"))];
        futures::stream::iter(events.map(Ok::<_, kube::runtime::watcher::Error>))
            .reflect_shared(writer)
            .for_each(|_| future::ready(()))
            .await;
        // "b" waits for the subscriber, but the reference to the deleted "a" comes first: the
        // subscriber says Pending and never asks to be woken again.
        let wakes = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = waker(wakes.clone());
        let polled = subscriber.as_mut().poll_next(&mut Context::from_waker(&waker));
        assert!(polled.is_pending());
        tokio::task::yield_now().await;
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "kube-runtime now wakes its subscriber");
    }

    #[tokio::test]
    async fn a_fanout_subscriber_is_handed_the_objects_themselves_so_no_cache_lookup_can_miss() {
        let mut fanout = Fanout::default();
        let mut subscriber = fanout.subscribe();
        fanout.run(futures::stream::iter([config_map("a"), config_map("b")])).await;
        let names: Vec<String> =
            (&mut subscriber).map(|m| m.metadata.name.clone().unwrap_or_default()).collect().await;
        assert_eq!(names, ["a", "b"]);
        assert!(matches!(
            subscriber.poll_next_unpin(&mut Context::from_waker(futures::task::noop_waker_ref())),
            Poll::Ready(None)
        ));
    }

    #[tokio::test]
    async fn every_subscriber_gets_every_object_in_order_even_after_another_has_gone() {
        let mut fanout = Fanout::default();
        let first = fanout.subscribe();
        let second = fanout.subscribe();
        drop(fanout.subscribe());
        fanout.run(futures::stream::iter(["a", "b", "c"])).await;
        let seen = |stream: std::pin::Pin<Box<dyn Stream<Item = Arc<&'static str>> + Send>>| async move {
            stream.map(|o| *o).collect::<Vec<_>>().await
        };
        assert_eq!(seen(Box::pin(first)).await, ["a", "b", "c"]);
        assert_eq!(seen(Box::pin(second)).await, ["a", "b", "c"]);
    }
}
