//! Errors as kubectl prints them, and the exit codes: 0 ok, 1 error, 2 usage.

use std::{fmt, process::ExitCode};

/// A refusal from the API server (admission, RBAC, validation), printed verbatim.
#[derive(Debug)]
pub struct ServerError {
    pub reason: String,
    pub message: String,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = if self.reason.is_empty() { "Unknown" } else { &self.reason };
        write!(f, "Error from server ({reason}): {}", self.message)
    }
}

impl std::error::Error for ServerError {}

/// The command line is well-formed for clap but not for the command (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// What a request was about, to name it when it is not found.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub namespace: Option<&'a str>,
}

impl<'a> Target<'a> {
    pub fn cluster(kind: &'a str, name: &'a str) -> Self {
        Self { kind, name, namespace: None }
    }

    pub fn namespaced(kind: &'a str, name: &'a str, namespace: &'a str) -> Self {
        Self { kind, name, namespace: Some(namespace) }
    }
}

/// Turns a client error about `target` into what a person should read: "not found" names the
/// object and namespace; any other refusal is the server's own message.
pub fn about(target: Target<'_>, error: kube::Error) -> anyhow::Error {
    match error {
        kube::Error::Api(status) if status.reason == "NotFound" => match target.namespace {
            Some(namespace) => {
                anyhow::anyhow!("{} {} not found in namespace {namespace}", target.kind, target.name)
            }
            None => anyhow::anyhow!("{} {} not found", target.kind, target.name),
        },
        other => listing(target.kind, other),
    }
}

/// A client error while listing or getting `kind` objects: the server's own message, or,
/// when the server has no such resource at all, a hint that Haven's CRDs are missing.
pub fn listing(kind: &str, error: kube::Error) -> anyhow::Error {
    match error {
        kube::Error::Api(status) if status.code == 404 && status.reason != "NotFound" => anyhow::anyhow!(
            "the server doesn't have a resource type \"{kind}s\": are Haven's CRDs installed? (kubectl apply -f crds/)"
        ),
        other => server(other),
    }
}

/// A client error that is not about one named object.
pub fn server(error: kube::Error) -> anyhow::Error {
    match error {
        kube::Error::Api(status) => {
            ServerError { reason: status.reason.clone(), message: status.message.clone() }.into()
        }
        other => anyhow::Error::new(other).context("talking to the API server"),
    }
}

/// Prints the failure as kubectl would and picks the exit code.
pub fn report(failure: &anyhow::Error) -> ExitCode {
    if let Some(usage) = failure.downcast_ref::<UsageError>() {
        eprintln!("error: {usage}");
        return ExitCode::from(2);
    }
    match failure.downcast_ref::<ServerError>() {
        Some(server) if failure.chain().count() == 1 => eprintln!("{server}"),
        _ => eprintln!("error: {failure:#}"),
    }
    ExitCode::from(1)
}

#[cfg(test)]
mod tests {
    use kube::core::Status;

    use super::*;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(Status::failure(message, reason).with_code(code)))
    }

    #[test]
    fn a_missing_request_is_named_with_its_namespace() {
        let error = about(Target::namespaced("airlockrequest", "foo", "bar"), api(404, "NotFound", "x"));
        assert_eq!(error.to_string(), "airlockrequest foo not found in namespace bar");
    }

    #[test]
    fn a_missing_resource_type_hints_at_the_crds() {
        let error = listing("datapermit", api(404, "Failed to parse error data", "404 page not found"));
        assert!(
            error.to_string().starts_with("the server doesn't have a resource type \"datapermits\""),
            "{error}"
        );
    }

    #[test]
    fn an_admission_denial_is_shown_verbatim() {
        let message = "airlockrequests.haven.io \"t\" is forbidden: ValidatingAdmissionPolicy 'p' denied request: spec.reviews: alice requested this and cannot review it (four-eyes)";
        let error = about(Target::namespaced("airlockrequest", "t", "ws"), api(403, "Forbidden", message));
        assert_eq!(error.to_string(), format!("Error from server (Forbidden): {message}"));
    }
}
