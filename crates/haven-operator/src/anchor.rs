//! The audit log anchored outside the data store. The hash chain finds an edited or dropped
//! record, but whoever can write the data store can cut the log short, or rewrite its tail and
//! chain it again. So the operator keeps the last line's `seq` and hash in a ConfigMap
//! ([`AUDIT_ANCHOR_CONFIG_MAP`]) every few seconds and on the way out; `audit verify` checks
//! the log still holds that exact line. What the anchor cannot see: lines written after the
//! last anchor (at most [`ANCHOR_EVERY`] of them, in time), and an attacker who can also write
//! that ConfigMap.

use std::{sync::Arc, time::Duration};

use haven_api::constants::{AUDIT_ANCHOR_CONFIG_MAP, FIELD_MANAGER};
use haven_data::audit::Anchor;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{ObjectMeta, Patch, PatchParams},
};

use crate::{context::Context, error::Result};

/// How often the head is anchored when it moved.
pub const ANCHOR_EVERY: Duration = Duration::from_secs(5);

/// Anchors the head whenever it moved, until the task is dropped.
pub async fn keep_anchored(ctx: Arc<Context>) {
    let mut anchored: Option<Anchor> = None;
    loop {
        let head = ctx.audit.head();
        if anchored.as_ref() != Some(&head) {
            match anchor(&ctx, &head).await {
                Ok(()) => anchored = Some(head),
                Err(error) => tracing::warn!(%error, "could not anchor the audit log; retrying"),
            }
        }
        tokio::time::sleep(ANCHOR_EVERY).await;
    }
}

/// Writes `head` to the anchor ConfigMap.
pub async fn anchor(ctx: &Context, head: &Anchor) -> Result<()> {
    let config_map = ConfigMap {
        metadata: ObjectMeta { name: Some(AUDIT_ANCHOR_CONFIG_MAP.into()), ..ObjectMeta::default() },
        data: Some(head.to_data(ctx.clock.now())),
        ..ConfigMap::default()
    };
    Api::<ConfigMap>::namespaced(ctx.client.clone(), &ctx.config.operator_namespace)
        .patch(
            AUDIT_ANCHOR_CONFIG_MAP,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&config_map),
        )
        .await?;
    Ok(())
}
