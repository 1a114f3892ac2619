//! An approved package arriving from a data site: it lands, read-only and verified byte for
//! byte against the manifest that site's output checkers approved, in the researcher's
//! workspace at `/home/imports/<task>/<site>/`, and the task records it as delivered.

use chrono::Utc;
use haven_api::{permit::PermitPhase, task::SiteTaskState};
use kube::ResourceExt;
use serde_json::json;

use super::{Hub, HubError, offers, progress, status};
use crate::wire::PackageUpload;

/// Where a package landed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The path inside the workspace.
    pub delivered_to: String,
    pub manifest_sha256: String,
}

impl Hub {
    /// Takes `upload` from `peer` for task `uid`, once that site reported the same approval.
    pub async fn package(&self, peer: &str, uid: &str, upload: PackageUpload) -> Result<Delivery, HubError> {
        let context = self.find(uid).ok_or_else(|| HubError::NotFound(format!("no task {uid}")))?;
        let scope = context.scope(&self.site);
        let targets = scope.as_ref().map_err(|e| HubError::NotFound(e.clone()))?;
        if !targets.sites.iter().any(|s| s == peer) {
            return Err(HubError::NotFound(format!("task {uid} is not for site {peer}")));
        }
        let (task, workspace) = (&context.task, offers::workspace_of(&context.task).unwrap_or_default());
        let phase = context.permit.as_ref().and_then(|p| p.status.as_ref()).map(|s| s.phase);
        match phase {
            Some(PermitPhase::Active) => {}
            Some(PermitPhase::Suspended) => {
                return Err(HubError::NotNow("the permit here is suspended".into()));
            }
            other => {
                return Err(HubError::Never(format!("the permit here is {other:?}: nothing more lands")));
            }
        }
        let progress = task.status.as_ref().and_then(|s| s.sites.iter().find(|p| p.site == peer));
        let approved = progress.and_then(|p| p.manifest_sha256.as_deref());
        let state = progress.map(|p| p.state);
        if approved != Some(upload.manifest_sha256.as_str())
            || !matches!(state, Some(SiteTaskState::Approved | SiteTaskState::Delivered))
        {
            return Err(HubError::NotNow(format!(
                "site {peer} has not reported the approval of manifest {} (it reported {state:?}, {approved:?})",
                upload.manifest_sha256
            )));
        }
        let delivered_to = format!("/home/imports/{}/{peer}", task.name_any());
        let target = self
            .store
            .workspace_imports(&workspace)
            .map_err(|e| HubError::Internal(e.to_string()))?
            .join(task.name_any())
            .join(peer);
        let expected = upload.manifest_sha256.clone();
        let landed = tokio::task::spawn_blocking(move || {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            haven_data::airlock::receive_package(&target, &upload.package, &expected)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| HubError::Internal(e.to_string()))?
        .map_err(|e| HubError::Invalid(format!("package refused: {e}")))?;
        let object = format!("analysistask/{}/{}", task.namespace().unwrap_or_default(), task.name_any());
        let detail = json!({
            "site": peer, "manifestSha256": landed.manifest_sha256, "files": landed.files,
            "bytes": landed.bytes, "deliveredTo": delivered_to,
        });
        self.trail
            .record(peer, "package-received", &object, detail)
            .map_err(|e| HubError::Internal(e.to_string()))?;
        let cancelled = task.spec.cancelled;
        let sha = landed.manifest_sha256.clone();
        status::update(&self.client, task, |old| {
            let mut next = progress::derive(old, &scope, cancelled, Utc::now());
            let Some(entry) = next.sites.iter_mut().find(|p| p.site == peer) else { return Ok(None) };
            // Checked again on the fresh status: only the approval this package answers.
            let approved = matches!(entry.state, SiteTaskState::Approved | SiteTaskState::Delivered)
                && entry.manifest_sha256.as_deref() == Some(sha.as_str());
            if !approved {
                return Err(HubError::NotNow(format!(
                    "site {peer}'s approval changed while its package landed"
                )));
            }
            let message = format!("{} file(s), {} bytes, in {delivered_to}", landed.files, landed.bytes);
            progress::record(
                entry,
                SiteTaskState::Delivered,
                "Delivered",
                &message,
                Utc::now(),
                Some(sha.clone()),
            );
            entry.delivered_to = Some(delivered_to.clone());
            Ok(Some(progress::derive(&next, &scope, cancelled, Utc::now())))
        })
        .await?;
        let note = format!(
            "site {peer}: {} file(s) in {delivered_to}, manifest {}",
            landed.files, landed.manifest_sha256
        );
        self.event(task, Some(peer), false, "Delivered", note).await;
        Ok(Delivery { delivered_to, manifest_sha256: landed.manifest_sha256 })
    }
}
