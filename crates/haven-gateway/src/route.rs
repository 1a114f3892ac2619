//! Where a request is going, decided from its Host header and path alone (pure).

use percent_encoding::percent_decode_str;

use crate::config::Site;

/// What a request's host names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The gateway itself: login, callback, logout, the list of one's workspaces.
    Portal,
    /// A workspace's environment, `<workspace>.<domain>`.
    Workspace(String),
    /// Any other host: nothing here.
    Unknown,
}

/// The target of a request to `host` (the Host header, maybe with a port).
pub fn target(site: &Site, host: &str) -> Target {
    let host = host.trim_end_matches('.');
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
    .to_ascii_lowercase();
    if name == site.domain {
        return Target::Portal;
    }
    match name.strip_suffix(&site.domain).and_then(|rest| rest.strip_suffix('.')) {
        Some(label) if is_workspace_name(label) => Target::Workspace(label.to_owned()),
        _ => Target::Unknown,
    }
}

/// A Workspace's name: a DNS label (one, no dots), so `a.b.<domain>` names none.
fn is_workspace_name(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Why a path is refused before anything else is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathRefusal {
    #[error("the path must start with /")]
    NotAbsolute,
    #[error("the path has an empty segment (//)")]
    EmptySegment,
    #[error("the path has a . or .. segment, plain or encoded")]
    DotSegment,
    #[error("the path has an encoded slash or a backslash")]
    HiddenSeparator,
    #[error("the path has a control character")]
    ControlCharacter,
}

/// Refuses paths that servers and proxies may read differently: dot segments (raw or
/// percent-encoded), `//`, encoded slashes, backslashes and control characters. No path is
/// exempt from the check that follows: `/tunnel`, `/api` and `/ws` are ordinary paths here.
pub fn check_path(path: &str) -> Result<(), PathRefusal> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(PathRefusal::NotAbsolute);
    };
    if rest.is_empty() {
        return Ok(());
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    for (index, segment) in segments.iter().enumerate() {
        // One trailing slash is a directory; an empty segment anywhere else is `//`.
        if segment.is_empty() && index != last {
            return Err(PathRefusal::EmptySegment);
        }
        let decoded = percent_decode_str(segment).collect::<Vec<u8>>();
        if decoded.iter().any(|b| b.is_ascii_control()) {
            return Err(PathRefusal::ControlCharacter);
        }
        if decoded.iter().any(|&b| b == b'/' || b == b'\\') {
            return Err(PathRefusal::HiddenSeparator);
        }
        // Decoding twice catches `%252e`, which a second decoder downstream would turn into `.`;
        // Java servers (Tomcat, so Guacamole) drop `;parameters`, reading `..;x` as `..`.
        let twice = percent_decode_str(&String::from_utf8_lossy(&decoded)).collect::<Vec<u8>>();
        let dots = |d: &[u8]| {
            let name = d.split(|&b| b == b';').next().unwrap_or_default();
            name == b"." || name == b".."
        };
        if dots(&decoded) || dots(&twice) {
            return Err(PathRefusal::DotSegment);
        }
        if twice.iter().any(|&b| b == b'/' || b == b'\\' || b.is_ascii_control()) {
            return Err(PathRefusal::HiddenSeparator);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        Site::parse("https://haven.test:30443").expect("valid")
    }

    #[test]
    fn hosts_name_the_portal_a_workspace_or_nothing() {
        let site = site();
        assert_eq!(target(&site, "haven.test:30443"), Target::Portal);
        assert_eq!(target(&site, "HAVEN.test"), Target::Portal);
        assert_eq!(target(&site, "cancer.haven.test:30443"), Target::Workspace("cancer".into()));
        assert_eq!(target(&site, "cancer.haven.test."), Target::Workspace("cancer".into()));
        for host in
            ["a.b.haven.test", "evilhaven.test", "haven.test.evil", "-x.haven.test", ".haven.test", ""]
        {
            assert_eq!(target(&site, host), Target::Unknown, "{host}");
        }
    }

    #[test]
    fn ordinary_paths_pass_tunnel_and_api_paths_included() {
        for path in
            ["/", "/lab", "/lab/", "/api/kernels/1/channels", "/tunnel", "/ws", "/a%20b/c", "/x?y=../z"]
        {
            let path = path.split('?').next().unwrap_or_default();
            assert_eq!(check_path(path), Ok(()), "{path}");
        }
    }

    #[test]
    fn paths_that_parsers_disagree_on_are_refused() {
        let cases = [
            ("/%2e%2e/secret", PathRefusal::DotSegment),
            ("/%2E%2e/secret", PathRefusal::DotSegment),
            ("/a/../ws", PathRefusal::DotSegment),
            ("/a/./b", PathRefusal::DotSegment),
            ("/%252e%252e/x", PathRefusal::DotSegment),
            ("/..;/manager", PathRefusal::DotSegment),
            ("/a/.;x/b", PathRefusal::DotSegment),
            ("//tunnel", PathRefusal::EmptySegment),
            ("/api//kernels", PathRefusal::EmptySegment),
            ("/a%2fb", PathRefusal::HiddenSeparator),
            ("/a%5cb", PathRefusal::HiddenSeparator),
            ("/a\\b", PathRefusal::HiddenSeparator),
            ("/a%252fb", PathRefusal::HiddenSeparator),
            ("/a%00b", PathRefusal::ControlCharacter),
            ("/a%0d%0aX-Injected:1", PathRefusal::ControlCharacter),
            ("relative", PathRefusal::NotAbsolute),
        ];
        for (path, why) in cases {
            assert_eq!(check_path(path), Err(why), "{path}");
        }
    }
}
