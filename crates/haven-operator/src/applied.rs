//! What the operator last applied to each child, and the version the API server gave back.
//!
//! Two savings follow. A child whose desired state has not changed since it was applied, and
//! which nobody has touched since, is not applied again, so a converged workspace costs the
//! API server no writes. And a watch event that only echoes the operator's own write does
//! not wake the workspace again. Anything else (another writer, a controller's status, a
//! deletion, a re-listed watch) makes the operator forget the child and apply it afresh, so
//! the ledger can only save work, never hide drift.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::Mutex,
};

use kube::{Resource, ResourceExt};
use serde::Serialize;

/// One child: its kind, namespace (empty for cluster-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ChildKey {
    kind: String,
    namespace: String,
    name: String,
}

impl ChildKey {
    fn of<K: Resource<DynamicType = ()>>(object: &K) -> Self {
        Self {
            kind: K::kind(&()).into_owned(),
            namespace: object.namespace().unwrap_or_default(),
            name: object.name_any(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    desired: u64,
    version: String,
}

/// The ledger of applied children, shared by the reconciles and the watches.
#[derive(Debug, Default)]
pub struct Applied {
    entries: Mutex<HashMap<ChildKey, Entry>>,
    /// Per workspace, the fingerprint of the children kept by its last prune.
    pruned: Mutex<HashMap<String, u64>>,
}

/// A fingerprint of the desired object, as it would be sent.
pub fn fingerprint<K: Serialize>(desired: &K) -> u64 {
    let mut hasher = DefaultHasher::new();
    serde_json::to_vec(desired).unwrap_or_default().hash(&mut hasher);
    hasher.finish()
}

impl Applied {
    /// Whether `desired` (with this fingerprint) is what was last applied and still stands.
    pub fn is_current<K: Resource<DynamicType = ()>>(&self, desired: &K, fingerprint: u64) -> bool {
        self.lock().get(&ChildKey::of(desired)).is_some_and(|entry| entry.desired == fingerprint)
    }

    /// Remembers an apply of `desired` and the object the API server returned.
    pub fn record<K: Resource<DynamicType = ()>>(&self, returned: &K, fingerprint: u64) {
        let version = returned.resource_version().unwrap_or_default();
        self.lock().insert(ChildKey::of(returned), Entry { desired: fingerprint, version });
    }

    /// A child seen by a watch. Returns whether it changed since the operator's last apply
    /// (and so needs a reconcile); if it did, the child is forgotten.
    pub fn observe<K: Resource<DynamicType = ()>>(&self, seen: &K) -> bool {
        let key = ChildKey::of(seen);
        let mut entries = self.lock();
        let echo = entries
            .get(&key)
            .is_some_and(|entry| seen.resource_version().is_some_and(|v| v == entry.version));
        if !echo {
            entries.remove(&key);
        }
        !echo
    }

    /// Forgets a child the operator deletes or changes outside an apply.
    pub fn forget<K: Resource<DynamicType = ()>>(&self, namespace: &str, name: &str) {
        let key =
            ChildKey { kind: K::kind(&()).into_owned(), namespace: namespace.into(), name: name.into() };
        self.lock().remove(&key);
    }

    /// Forgets every child of a kind: its watch re-listed, so deletions may have been missed.
    pub fn forget_kind<K: Resource<DynamicType = ()>>(&self) {
        let kind = K::kind(&());
        self.lock().retain(|key, _| key.kind != kind);
    }

    /// Whether the workspace was last pruned down to this same set of children.
    pub fn is_pruned(&self, workspace: &str, kept: u64) -> bool {
        self.pruned.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(workspace) == Some(&kept)
    }

    /// Remembers a prune (a torn-down workspace's entry goes with the next restart).
    pub fn pruned(&self, workspace: &str, kept: u64) {
        self.pruned.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(workspace.into(), kept);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChildKey, Entry>> {
        // A panic while holding the lock leaves a plain map behind; keep using it.
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The newest copy of each object whose status the operator wrote. A reconcile woken by some
/// other change can start before the watch has delivered that write; reading the status from
/// here keeps it from writing (and announcing) the same change twice. Resource versions are
/// comparable integers (Kubernetes 1.34+, KEP-5504); an entry goes once the cache catches up.
#[derive(Debug)]
pub struct Written<K> {
    objects: Mutex<HashMap<String, K>>,
}

impl<K> Default for Written<K> {
    fn default() -> Self {
        Self { objects: Mutex::default() }
    }
}

fn version_number<K: Resource>(object: &K) -> Option<u64> {
    object.resource_version()?.parse().ok()
}

impl<K: Resource + Clone> Written<K> {
    /// `seen`, or the operator's own later write of it if the cache has not caught up yet.
    pub fn newest(&self, seen: &K) -> K {
        let Some(uid) = seen.uid() else { return seen.clone() };
        let mut objects = self.objects.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match objects.get(&uid) {
            Some(written) if version_number(written) > version_number(seen) => written.clone(),
            Some(_) => {
                objects.remove(&uid);
                seen.clone()
            }
            None => seen.clone(),
        }
    }

    /// Remembers the object the API server returned for a status write.
    pub fn record(&self, returned: K) {
        if let Some(uid) = returned.uid() {
            self.objects.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(uid, returned);
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::{core::v1::ConfigMap, networking::v1::NetworkPolicy};
    use kube::api::ObjectMeta;

    use super::*;

    fn config_map(version: Option<&str>, data: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("settings".into()),
                namespace: Some("ws-a".into()),
                resource_version: version.map(Into::into),
                ..ObjectMeta::default()
            },
            data: Some([("k".to_owned(), data.to_owned())].into()),
            ..ConfigMap::default()
        }
    }

    fn with_version(version: &str, data: &str) -> ConfigMap {
        let mut object = config_map(Some(version), data);
        object.metadata.uid = Some("uid-1".into());
        object
    }

    #[test]
    fn a_status_write_is_seen_until_the_cache_catches_up() {
        let written = Written::default();
        written.record(with_version("12", "written"));
        let stale = with_version("11", "stale");
        assert_eq!(written.newest(&stale).data, with_version("12", "written").data, "the write is newer");
        let caught_up = with_version("13", "newer still");
        assert_eq!(written.newest(&caught_up).data, caught_up.data, "the cache is newer");
        assert_eq!(written.newest(&stale).data, stale.data, "and the entry is gone");
    }

    #[test]
    fn an_applied_child_is_current_until_its_desired_state_changes() {
        let applied = Applied::default();
        let desired = config_map(None, "one");
        assert!(!applied.is_current(&desired, fingerprint(&desired)), "never applied");
        applied.record(&config_map(Some("7"), "one"), fingerprint(&desired));
        assert!(applied.is_current(&desired, fingerprint(&desired)));
        let changed = config_map(None, "two");
        assert!(!applied.is_current(&changed, fingerprint(&changed)));
    }

    #[test]
    fn the_echo_of_the_operators_own_write_needs_no_reconcile() {
        let applied = Applied::default();
        let desired = config_map(None, "one");
        applied.record(&config_map(Some("7"), "one"), fingerprint(&desired));
        assert!(!applied.observe(&config_map(Some("7"), "one")), "our own write coming back");
        assert!(applied.is_current(&desired, fingerprint(&desired)), "and it is still current");
    }

    #[test]
    fn a_change_by_anyone_else_is_reconciled_and_reapplied() {
        let applied = Applied::default();
        let desired = config_map(None, "one");
        applied.record(&config_map(Some("7"), "one"), fingerprint(&desired));
        assert!(applied.observe(&config_map(Some("8"), "edited")), "another version: reconcile");
        assert!(!applied.is_current(&desired, fingerprint(&desired)), "and apply again");
        assert!(applied.observe(&config_map(Some("9"), "x")), "an unknown child always reconciles");
    }

    #[test]
    fn forgetting_a_child_or_a_kind_makes_the_next_reconcile_apply() {
        let applied = Applied::default();
        let desired = config_map(None, "one");
        let policy = NetworkPolicy {
            metadata: ObjectMeta {
                name: Some("deny".into()),
                namespace: Some("ws-a".into()),
                resource_version: Some("3".into()),
                ..ObjectMeta::default()
            },
            ..NetworkPolicy::default()
        };
        applied.record(&config_map(Some("7"), "one"), fingerprint(&desired));
        applied.record(&policy, 1);
        applied.forget::<ConfigMap>("ws-a", "settings");
        assert!(!applied.is_current(&desired, fingerprint(&desired)));
        assert!(applied.is_current(&policy, 1), "other kinds are kept");
        applied.forget_kind::<NetworkPolicy>();
        assert!(!applied.is_current(&policy, 1));
    }
}
