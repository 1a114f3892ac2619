//! Sensitivity tiers. A permit declares a tier (0-4, as in the Turing Data Safe Haven); each
//! tier has a profile of controls, set in the Helm chart's `tiers`. The controls in force for a
//! permit are its tier's profile tightened by whatever the permit itself asks, never loosened:
//! [`TierProfiles::controls`] clamps, and [`TierProfiles::violations`] names each field that
//! asks for more than the tier allows (the admission policy [`crate::admission::tier_policy`]
//! rejects the same, so the operator only meets violations when the profiles were tightened
//! after the permit was admitted).
//!
//! The profiles travel as a ConfigMap of flat string keys (`<tier>.<control>`), because the
//! admission policy reads them as its parameters and CEL cannot parse YAML.

use std::collections::BTreeMap;

use chrono::Duration;

use crate::mirror::MirrorRules;
use crate::permit::{ControlsInForce, DataPermitSpec, EgressProfile};
use crate::validation::parse_duration;

/// The tiers, lowest (open data) to highest (most sensitive).
pub const TIERS: std::ops::RangeInclusive<u8> = 0..=4;

/// Annotation the access gateway sets on a Workspace when its user was last active (RFC 3339);
/// an environment idle for longer than its idle timeout is stopped.
pub const LAST_ACTIVE_ANNOTATION: &str = "haven.io/last-active";

/// A set of controls: a tier's profile (the loosest a permit of that tier may have), or the
/// controls in force for one permit ([`Controls`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierProfile {
    /// The most open egress.
    pub egress: EgressProfile,
    /// The fewest approvals an export needs.
    pub required_approvals: u32,
    /// The file types that may leave, at most.
    pub allowed_file_types: Vec<String>,
    /// Whether imports need a reviewer's approval.
    pub import_review: bool,
    /// The longest a workspace may live from its creation; `None`: until the permit ends.
    pub max_workspace_lifetime: Option<Duration>,
    /// How long an environment may sit idle before it is stopped; `None`: never stopped.
    pub idle_timeout: Option<Duration>,
    /// Whether the access gateway requires a second factor (the ID token's `amr`/`acr`) to
    /// enter the permit's workspaces.
    pub require_mfa: bool,
    /// Annotations for the access gateway on each workspace's Service (e.g. clipboard rules).
    pub gateway_annotations: BTreeMap<String, String>,
}

/// The controls in force for one permit: its tier's profile, tightened by the permit.
pub type Controls = TierProfile;

impl Controls {
    /// The record of these controls, in force for `spec`, for the permit's status.
    pub fn in_force(&self, spec: &DataPermitSpec) -> ControlsInForce {
        ControlsInForce {
            tier: spec.tier.min(4),
            egress: self.egress,
            required_approvals: self.required_approvals,
            allowed_file_types: self.allowed_file_types.clone(),
            import_review: self.import_review,
            max_workspace_lifetime: self.max_workspace_lifetime.map(format_duration),
            idle_timeout: self.idle_timeout.map(format_duration),
            require_mfa: self.require_mfa,
            dedicated_nodes: spec.environment.dedicated_nodes,
        }
    }
}

/// A field of a permit that asks for more than its tier allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierViolation {
    /// The field's path, e.g. `spec.environment.egress`.
    pub field: &'static str,
    /// What is wrong, starting with the field.
    pub message: String,
}

/// One profile per tier, and the platform's package mirror rules, which travel with them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierProfiles {
    profiles: [TierProfile; 5],
    mirror: MirrorRules,
}

/// A tier configuration that cannot be used; names the ConfigMap key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("tier configuration key {key}: {problem}")]
pub struct TierConfigError {
    pub key: String,
    pub problem: String,
}

impl Default for TierProfiles {
    /// Modelled on the Turing Data Safe Haven's tiers: 0-1 open internet and clipboard, 2-3 a
    /// package mirror at most, reviewed imports, MFA at the gateway and no clipboard, 4 no egress, two approvals, a
    /// shorter list of file types and bounded lifetimes. Tier 3, the default, keeps every limit
    /// Haven had before tiers (no workspace lifetime beyond its permit's), so existing permits
    /// and workspaces are not cut short by an upgrade.
    fn default() -> Self {
        let file_types = |types: &[&str]| types.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>();
        let standard_types = file_types(&["csv", "txt", "md", "pdf", "png", "json"]);
        let clipboard = |allowed: bool| {
            let value = if allowed { "enabled" } else { "disabled" };
            BTreeMap::from([
                ("haven.io/clipboard-in".to_owned(), value.to_owned()),
                ("haven.io/clipboard-out".to_owned(), value.to_owned()),
            ])
        };
        let hours = |h: i64| Some(Duration::hours(h));
        let open = TierProfile {
            egress: EgressProfile::Internet,
            required_approvals: 1,
            allowed_file_types: standard_types.clone(),
            import_review: false,
            max_workspace_lifetime: None,
            idle_timeout: None,
            require_mfa: false,
            gateway_annotations: clipboard(true),
        };
        let mirrored = TierProfile {
            egress: EgressProfile::PackageMirror,
            import_review: true,
            require_mfa: true,
            gateway_annotations: clipboard(false),
            ..open.clone()
        };
        Self {
            profiles: [
                open.clone(),
                open,
                mirrored.clone(),
                mirrored.clone(),
                TierProfile {
                    egress: EgressProfile::None,
                    required_approvals: 2,
                    allowed_file_types: file_types(&["csv", "txt", "md", "pdf"]),
                    max_workspace_lifetime: hours(720),
                    idle_timeout: hours(8),
                    ..mirrored
                },
            ],
            mirror: MirrorRules::default(),
        }
    }
}

impl TierProfiles {
    /// Where a permit's package mirror may be, whatever its tier.
    pub fn mirror_rules(&self) -> &MirrorRules {
        &self.mirror
    }

    /// The profile of `tier`; the schema admits 0-4, anything above is treated as 4.
    pub fn profile(&self, tier: u8) -> &TierProfile {
        &self.profiles[usize::from(tier.min(4))]
    }

    /// The controls in force for a permit: each of its tier's limits, tightened where the
    /// permit asks for less, never loosened where it asks for more.
    pub fn controls(&self, spec: &DataPermitSpec) -> Controls {
        let profile = self.profile(spec.tier);
        let airlock = &spec.airlock;
        let environment = &spec.environment;
        let allowed_file_types = match &airlock.allowed_file_types {
            Some(asked) => asked.iter().filter(|t| profile.allowed_file_types.contains(t)).cloned().collect(),
            None => profile.allowed_file_types.clone(),
        };
        Controls {
            egress: environment.egress.min(profile.egress),
            required_approvals: airlock.required_approvals.unwrap_or(0).max(profile.required_approvals),
            allowed_file_types,
            import_review: airlock.import_review.unwrap_or(false) || profile.import_review,
            max_workspace_lifetime: shorter(
                parsed(environment.max_workspace_lifetime.as_deref()),
                profile.max_workspace_lifetime,
            ),
            idle_timeout: shorter(parsed(environment.idle_timeout.as_deref()), profile.idle_timeout),
            require_mfa: environment.require_mfa.unwrap_or(false) || profile.require_mfa,
            gateway_annotations: profile.gateway_annotations.clone(),
        }
    }

    /// Every field of the permit that asks for more than its tier allows, in spec order.
    pub fn violations(&self, spec: &DataPermitSpec) -> Vec<TierViolation> {
        let tier = spec.tier;
        let profile = self.profile(tier);
        let environment = &spec.environment;
        let airlock = &spec.airlock;
        let mut found = Vec::new();
        if spec.reviewers.len() < profile.required_approvals as usize {
            found.push(TierViolation {
                field: "spec.reviewers",
                message: format!(
                    "spec.reviewers: tier {tier} needs {} approvals per export, but the permit names {} reviewer(s)",
                    profile.required_approvals,
                    spec.reviewers.len()
                ),
            });
        }
        if environment.egress > profile.egress {
            found.push(TierViolation {
                field: "spec.environment.egress",
                message: format!(
                    "spec.environment.egress: {:?} is more open than tier {tier} allows (at most {:?})",
                    environment.egress, profile.egress
                ),
            });
        }
        for (field, asked, limit) in [
            (
                "spec.environment.maxWorkspaceLifetime",
                environment.max_workspace_lifetime.as_deref(),
                profile.max_workspace_lifetime,
            ),
            ("spec.environment.idleTimeout", environment.idle_timeout.as_deref(), profile.idle_timeout),
        ] {
            if let (Some(text), Some(limit)) = (asked, limit)
                && parsed(Some(text)).is_none_or(|asked| asked > limit)
            {
                found.push(TierViolation {
                    field,
                    message: format!(
                        "{field}: {text} is longer than tier {tier} allows ({})",
                        format_duration(limit)
                    ),
                });
            }
        }
        if environment.require_mfa == Some(false) && profile.require_mfa {
            found.push(TierViolation {
                field: "spec.environment.requireMfa",
                message: format!(
                    "spec.environment.requireMfa: tier {tier} requires a second factor at the gateway"
                ),
            });
        }
        if let Some(approvals) = airlock.required_approvals.filter(|a| *a < profile.required_approvals) {
            found.push(TierViolation {
                field: "spec.airlock.requiredApprovals",
                message: format!(
                    "spec.airlock.requiredApprovals: {approvals} is fewer than tier {tier} requires ({})",
                    profile.required_approvals
                ),
            });
        }
        if airlock.import_review == Some(false) && profile.import_review {
            found.push(TierViolation {
                field: "spec.airlock.importReview",
                message: format!("spec.airlock.importReview: tier {tier} requires imports to be reviewed"),
            });
        }
        if let Some(asked) = &airlock.allowed_file_types {
            let refused: Vec<&str> = asked
                .iter()
                .filter(|t| !profile.allowed_file_types.contains(t))
                .map(String::as_str)
                .collect();
            if !refused.is_empty() {
                found.push(TierViolation {
                    field: "spec.airlock.allowedFileTypes",
                    message: format!(
                        "spec.airlock.allowedFileTypes: tier {tier} does not allow {}",
                        refused.join(", ")
                    ),
                });
            }
        }
        found
    }

    /// Reads the profiles from a ConfigMap's data: every key `<tier>.<control>` for tiers 0-4
    /// (see [`TierProfiles::to_config_map`]). A missing or malformed key is an error naming it:
    /// a half-configured tier must not silently fall back to something looser.
    pub fn from_config_map(data: &BTreeMap<String, String>) -> Result<Self, TierConfigError> {
        let mut profiles = Self::default().profiles;
        for tier in TIERS {
            profiles[usize::from(tier)] = profile_from(data, tier)?;
        }
        Ok(Self { profiles, mirror: MirrorRules::from_config_map(data)? })
    }

    /// The profiles as a ConfigMap's data, the form the chart renders and the admission
    /// policy reads: `<tier>.egress`, `.requiredApprovals`, `.allowedFileTypes` (comma
    /// separated), `.importReview`, `.maxWorkspaceLifetime` and `.idleTimeout` (a duration, or
    /// empty for no limit), `.requireMfa`, `.gatewayAnnotations` (a JSON object); and the mirror rules
    /// ([`MirrorRules::to_config_map`]).
    pub fn to_config_map(&self) -> BTreeMap<String, String> {
        let mut data = self.mirror.to_config_map();
        for tier in TIERS {
            let profile = self.profile(tier);
            let mut put = |control: &str, value: String| data.insert(format!("{tier}.{control}"), value);
            put("egress", format!("{:?}", profile.egress));
            put("requiredApprovals", profile.required_approvals.to_string());
            put("allowedFileTypes", profile.allowed_file_types.join(","));
            put("importReview", profile.import_review.to_string());
            put(
                "maxWorkspaceLifetime",
                profile.max_workspace_lifetime.map(format_duration).unwrap_or_default(),
            );
            put("idleTimeout", profile.idle_timeout.map(format_duration).unwrap_or_default());
            put("requireMfa", profile.require_mfa.to_string());
            put(
                "gatewayAnnotations",
                serde_json::to_string(&profile.gateway_annotations).unwrap_or_else(|_| "{}".into()),
            );
        }
        data
    }
}

fn profile_from(data: &BTreeMap<String, String>, tier: u8) -> Result<TierProfile, TierConfigError> {
    let value = |control: &str| {
        let key = format!("{tier}.{control}");
        match data.get(&key) {
            Some(value) => Ok((key, value.trim().to_owned())),
            None => Err(TierConfigError { key, problem: "is missing".into() }),
        }
    };
    let bad = |key: String, problem: &str| TierConfigError { key, problem: problem.into() };
    let (key, egress) = value("egress")?;
    let egress = match egress.as_str() {
        "None" => EgressProfile::None,
        "PackageMirror" => EgressProfile::PackageMirror,
        "Internet" => EgressProfile::Internet,
        _ => return Err(bad(key, "must be None, PackageMirror or Internet")),
    };
    let (key, approvals) = value("requiredApprovals")?;
    let required_approvals =
        approvals.parse().ok().filter(|a| (1..=5).contains(a)).ok_or_else(|| bad(key, "must be 1 to 5"))?;
    let (key, types) = value("allowedFileTypes")?;
    let allowed_file_types: Vec<String> =
        types.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect();
    if allowed_file_types.iter().any(|t| !t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())) {
        return Err(bad(key, "must be lower-case extensions without dots, separated by commas"));
    }
    let flag = |control: &str| {
        let (key, text) = value(control)?;
        text.parse().map_err(|_| bad(key, "must be true or false"))
    };
    let import_review = flag("importReview")?;
    let lifetime = |control: &str| {
        let (key, text) = value(control)?;
        if text.is_empty() {
            return Ok(None);
        }
        parse_duration(&text)
            .filter(|d| *d > Duration::zero())
            .map(Some)
            .ok_or_else(|| bad(key, "must be a duration such as 720h or 1h30m, or empty for no limit"))
    };
    let max_workspace_lifetime = lifetime("maxWorkspaceLifetime")?;
    let idle_timeout = lifetime("idleTimeout")?;
    let require_mfa = flag("requireMfa")?;
    let (key, annotations) = value("gatewayAnnotations")?;
    let gateway_annotations = if annotations.is_empty() {
        BTreeMap::new()
    } else {
        serde_json::from_str(&annotations)
            .map_err(|_| bad(key, "must be a JSON object of string annotations"))?
    };
    Ok(TierProfile {
        egress,
        required_approvals,
        allowed_file_types,
        import_review,
        max_workspace_lifetime,
        idle_timeout,
        require_mfa,
        gateway_annotations,
    })
}

fn parsed(text: Option<&str>) -> Option<Duration> {
    text.and_then(parse_duration)
}

/// The shorter of two limits, where `None` means no limit.
fn shorter(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A duration as the CRD and CEL's `duration()` both read it: whole hours as `720h`, else
/// seconds.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.num_seconds();
    if seconds % 3600 == 0 { format!("{}h", seconds / 3600) } else { format!("{seconds}s") }
}

#[cfg(test)]
#[path = "tier_tests.rs"]
mod tests;
