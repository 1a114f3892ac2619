//! The operator's errors, each with a stable category for metrics and Events.

/// What can go wrong while reconciling.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("data store: {0}")]
    DataStore(String),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A step is waiting for the cluster (e.g. a pod to stop); retried shortly, not a failure.
    #[error("waiting for {0}")]
    NotYet(&'static str),
    #[error("cannot serve metrics and health on {0}: {1}")]
    Serve(std::net::SocketAddr, #[source] std::io::Error),
    #[error("leader election: {0}")]
    Lease(String),
    #[error("configuration: {0}")]
    Config(String),
    /// The API server refused a child for good (invalid, forbidden): retrying the same object
    /// cannot help, so the owner's status says which child and why until its spec changes.
    #[error("could not apply {child}: {message}")]
    ApplyRefused { child: String, message: String },
    /// The audit log could not take a record: the change it describes waits for it.
    #[error("audit log: {0}")]
    Audit(String),
}

impl Error {
    /// A short, stable label: `kube`, `data-store`, `finalizer`, `task`, `waiting`, `serve`,
    /// `lease`.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::DataStore(_) => "data-store",
            Self::Finalizer(_) => "finalizer",
            Self::Task(_) => "task",
            Self::NotYet(_) => "waiting",
            Self::Serve(..) => "serve",
            Self::Lease(_) => "lease",
            Self::Config(_) => "config",
            Self::ApplyRefused { .. } => "apply-refused",
            Self::Audit(_) => "audit",
        }
    }

    /// An apply's error: a refusal the API server will repeat (4xx but a conflict or rate
    /// limit) becomes [`Error::ApplyRefused`] naming the child; the rest stays transient.
    pub fn applying(child: String, error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status)
                if (400..500).contains(&status.code) && ![409, 429].contains(&status.code) =>
            {
                Self::ApplyRefused { child, message: status.message.clone() }
            }
            other => Self::Kube(other),
        }
    }

    pub fn data_store(error: impl std::fmt::Display) -> Self {
        Self::DataStore(error.to_string())
    }
}

/// When a child keeps being refused, try again after as long as it has been failing (so the
/// delay doubles), from 5 s up to 5 minutes; a change to the spec is tried at once.
pub fn refused_apply_backoff(
    now: chrono::DateTime<chrono::Utc>,
    failing_since: chrono::DateTime<chrono::Utc>,
) -> std::time::Duration {
    let failing = (now - failing_since).to_std().unwrap_or_default();
    failing.clamp(std::time::Duration::from_secs(5), std::time::Duration::from_secs(300))
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
