//! Names shared by the operator, the plugin, the chart and the tests.

/// API group of every Haven resource.
pub const GROUP: &str = "haven.io";
/// API version served and stored.
pub const VERSION: &str = "v1alpha1";

/// The ConfigMap, in the operator's namespace, holding the audit log's last anchored line
/// (`seq`, `hash`, `anchoredAt`): the operator writes it, `audit verify` checks the log against
/// it, so a log cut short or rewritten in the data store is found out.
pub const AUDIT_ANCHOR_CONFIG_MAP: &str = "haven-audit-anchor";

/// Name of each workspace's analysis environment: its StatefulSet and its IDE Service, which the
/// access gateway finds by this name.
pub const ENVIRONMENT_NAME: &str = "workspace";
/// The IDE Service's port name.
pub const IDE_PORT_NAME: &str = "ide";

/// The one field manager for every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "haven-operator";

/// Prefix of the namespace that a Workspace owns: `ws-<workspace>` (the data store names
/// quarantines by it too).
pub use haven_data::names::WORKSPACE_NAMESPACE_PREFIX;

/// Label keys put on every object Haven creates, so it can be found and pruned.
pub mod labels {
    /// `app.kubernetes.io/managed-by`, set to [`MANAGED_BY_VALUE`].
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    pub const MANAGED_BY_VALUE: &str = "haven";
    /// The Workspace an object belongs to.
    pub const WORKSPACE: &str = "haven.io/workspace";
    /// The DataPermit an object belongs to.
    pub const PERMIT: &str = "haven.io/permit";
    /// Label and taint key of the nodes set aside for one permit (`dedicatedNodes`). Under the
    /// `node-restriction.kubernetes.io/` prefix, which the NodeRestriction admission plugin
    /// forbids kubelets to set on themselves: a compromised node cannot attract a permit's pods.
    pub const DEDICATED_NODE: &str = "node-restriction.kubernetes.io/haven-permit";
    /// Which part of a workspace an object is (`network`, `rbac`, `storage`, `environment`).
    pub const COMPONENT: &str = "haven.io/component";
    /// The dataset a volume carries.
    pub const DATASET: &str = "haven.io/dataset";
}

/// Finalizers, used only where state lives outside Kubernetes (files in the data store).
pub mod finalizers {
    /// A Workspace's files must be archived before its namespace goes.
    pub const WORKSPACE_ARCHIVE: &str = "haven.io/archive";
    /// A DataPermit's extracts, archives and key must be destroyed (after retention) before it goes.
    pub const PERMIT_DESTROY: &str = "haven.io/destroy";
}

/// Condition types written in `status.conditions`.
pub mod conditions {
    // DataPermit
    /// The permit's validity window has begun and it is neither expired nor revoked.
    pub const PERMIT_ACTIVE: &str = "Active";
    /// Every dataset of the permit has a verified extract.
    pub const DATASETS_PREPARED: &str = "DatasetsPrepared";
    /// The permit's data has been destroyed after retention.
    pub const DESTROYED: &str = "Destroyed";
    /// The permit asks for nothing its tier does not allow.
    pub const WITHIN_TIER: &str = "WithinTier";

    // Workspace
    /// The workspace is allowed by its permit (users, image, datasets, expiry, limits).
    pub const PERMIT_VALID: &str = "PermitValid";
    /// Network policies, Pod Security and quotas are in place.
    pub const ISOLATED: &str = "Isolated";
    /// Every dataset extract is mounted read-only.
    pub const DATA_MOUNTED: &str = "DataMounted";
    /// The permitted users have their RoleBindings.
    pub const ACCESS_GRANTED: &str = "AccessGranted";
    /// The analysis environment is running and reachable.
    pub const READY: &str = "Ready";
    /// The workspace's files are archived and verified.
    pub const ARCHIVED: &str = "Archived";

    // AirlockRequest
    /// The snapshot exists and every file has been checked.
    pub const CHECKED: &str = "Checked";
    /// Enough independent reviews have been recorded.
    pub const REVIEWED: &str = "Reviewed";
    /// The reviewed bytes have been delivered.
    pub const DELIVERED: &str = "Delivered";
}

/// Machine-readable reasons for conditions and Events (CamelCase, as Kubernetes expects).
pub mod reasons {
    pub const NOT_YET_VALID: &str = "NotYetValid";
    pub const VALID: &str = "Valid";
    pub const EXPIRED: &str = "Expired";
    pub const REVOKED: &str = "Revoked";
    pub const SUSPENDED: &str = "Suspended";
    pub const PERMIT_NOT_FOUND: &str = "PermitNotFound";
    pub const PERMIT_NOT_ACTIVE: &str = "PermitNotActive";
    pub const USER_NOT_PERMITTED: &str = "UserNotPermitted";
    pub const IMAGE_NOT_ALLOWED: &str = "ImageNotAllowed";
    pub const DATASET_NOT_PERMITTED: &str = "DatasetNotPermitted";
    pub const EXPIRY_AFTER_PERMIT: &str = "ExpiryAfterPermit";
    pub const WORKSPACE_LIMIT_REACHED: &str = "WorkspaceLimitReached";
    pub const RESOURCES_EXCEED_CEILING: &str = "ResourcesExceedCeiling";
    pub const INVALID_QUANTITY: &str = "InvalidQuantity";
    /// The permit's package mirror is too wide or link-local (stored before the schema refused it).
    pub const MIRROR_NOT_ALLOWED: &str = "MirrorNotAllowed";
    /// The API server refused one of the object's children (the message names it).
    pub const APPLY_FAILED: &str = "ApplyFailed";
    /// The environment's container is not running (crash loop, image pull, OOM...).
    pub const ENVIRONMENT_NOT_RUNNING: &str = "EnvironmentNotRunning";
    pub const PROVISIONED: &str = "Provisioned";
    pub const PROGRESSING: &str = "Progressing";
    pub const PAUSED: &str = "Paused";
    pub const IDLE: &str = "Idle";
    pub const UNSCHEDULABLE: &str = "Unschedulable";
    pub const LOOSENS_TIER: &str = "LoosensTier";
    pub const WITHIN_TIER: &str = "WithinTier";
    pub const ARCHIVE_VERIFIED: &str = "ArchiveVerified";
    pub const NOTHING_TO_ARCHIVE: &str = "NothingToArchive";
    pub const RETENTION_ENDED: &str = "RetentionEnded";
    pub const UNSAFE_PATH: &str = "UnsafePath";
    pub const PREPARATION_FAILED: &str = "PreparationFailed";
    pub const CHECKS_PASSED: &str = "ChecksPassed";
    pub const CHECKS_NEED_REVIEW: &str = "ChecksNeedReview";
    pub const CHECK_FAILED: &str = "CheckFailed";
    pub const APPROVED: &str = "Approved";
    pub const REVIEW_NOT_REQUIRED: &str = "ReviewNotRequired";
    pub const REJECTED: &str = "Rejected";
    pub const REVIEWER_NOT_PERMITTED: &str = "ReviewerNotPermitted";
    pub const CANCELLED: &str = "Cancelled";
    pub const WORKSPACE_NOT_FOUND: &str = "WorkspaceNotFound";
    pub const FILE_REFUSED: &str = "FileRefused";
    pub const SNAPSHOT_TAKEN: &str = "SnapshotTaken";
    pub const SNAPSHOT_CORRUPT: &str = "SnapshotCorrupt";
    pub const SNAPSHOT_REMOVED: &str = "SnapshotRemoved";
    pub const CHECKING: &str = "Checking";
    pub const AWAITING_REVIEW: &str = "AwaitingReview";
    pub const EXPORTED: &str = "Exported";
    pub const IMPORTED: &str = "Imported";
    pub const DELIVERY_FAILED: &str = "DeliveryFailed";
}
