//! Checks on everything that becomes part of a store path. Object names are DNS-1123 labels
//! (what Kubernetes itself enforces for namespaces), so a name can never carry `/`, `..` or a
//! leading `.` — which is also why the store may use `.`-prefixed names for its own staging.

use thiserror::Error;

/// Prefix of the namespace that a Workspace owns: `ws-<workspace>`.
pub const WORKSPACE_NAMESPACE_PREFIX: &str = "ws-";

/// Longest DNS-1123 label.
pub const MAX_NAME_LEN: usize = 63;

/// Longest relative path accepted under `raw/`.
pub const MAX_PATH_LEN: usize = 1024;

/// Why a name is not a DNS-1123 label.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is {0} characters long; at most {MAX_NAME_LEN} are allowed")]
    TooLong(usize),
    #[error("character {0:?} is not allowed; use lowercase letters, digits and '-'")]
    InvalidCharacter(char),
    #[error("name must start and end with a lowercase letter or digit, not '-'")]
    EdgeHyphen,
}

/// Checks that `value` is a DNS-1123 label: 1..=63 of `[a-z0-9-]`, not starting or ending
/// with `-`.
pub fn check_name(value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::Empty);
    }
    let len = value.chars().count();
    if len > MAX_NAME_LEN {
        return Err(NameError::TooLong(len));
    }
    if let Some(bad) = value.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Err(NameError::InvalidCharacter(bad));
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Err(NameError::EdgeHyphen);
    }
    Ok(())
}

/// Why a relative path was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PathError {
    #[error("path is empty")]
    Empty,
    #[error("path is longer than {MAX_PATH_LEN} bytes")]
    TooLong,
    #[error("absolute paths are not allowed")]
    Absolute,
    #[error("'..' is not allowed: the path must stay inside its directory")]
    ParentDir,
    #[error("empty path segment ('//' or a trailing '/')")]
    EmptySegment,
    #[error("backslashes and control characters are not allowed")]
    ForbiddenCharacter,
    #[error("path names the directory itself, not something in it")]
    NoName,
}

/// Normalises a relative path that is safe to join onto a directory: no leading `/`, no `..`,
/// no empty segments, no backslash or control characters; `.` segments are dropped.
///
/// The one path check of the project: haven-api's `SafeRelativePath` uses it too. Symlinks
/// are not resolved here: callers that open files must not follow them.
pub fn check_relative_path(raw: &str) -> Result<String, PathError> {
    if raw.is_empty() {
        return Err(PathError::Empty);
    }
    if raw.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if raw.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(PathError::ForbiddenCharacter);
    }
    if raw.starts_with('/') {
        return Err(PathError::Absolute);
    }
    let mut kept = Vec::new();
    for segment in raw.split('/') {
        match segment {
            "" => return Err(PathError::EmptySegment),
            "." => {}
            ".." => return Err(PathError::ParentDir),
            name => kept.push(name),
        }
    }
    if kept.is_empty() {
        return Err(PathError::NoName);
    }
    Ok(kept.join("/"))
}

#[cfg(test)]
#[path = "names_tests.rs"]
mod tests;
