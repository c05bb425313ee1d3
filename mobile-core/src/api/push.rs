//! Push targets: register this device's APNs, FCM or Web Push target with the server, remove
//! it, list them.

use tapline_proto::v1 as pb;

use super::TaplineClient;
use crate::engine::runtime::run;
use crate::error::{CoreError, TaplineError};
use crate::model::*;

#[uniffi::export(async_runtime = "tokio")]
impl TaplineClient {
    /// Registers (or replaces) this device's target for its provider: where the server sends
    /// content-free wake-ups while the app has no live stream. Call it whenever the platform
    /// hands the app a new token.
    pub async fn register_push(
        &self,
        target: PushTarget,
    ) -> Result<PushRegistration, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .push_client()
                .register_push(inner.authed(target.to_wire())?)
                .await?
                .into_inner();
            resp.target
                .as_ref()
                .and_then(PushRegistration::from_wire)
                .ok_or_else(|| CoreError::Invalid("server sent no push target".into()))
        })
        .await
    }

    /// Removes this device's target for `provider`; says whether there was one.
    pub async fn remove_push(&self, provider: PushProvider) -> Result<bool, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let req = pb::RemovePushRequest {
                provider: provider.to_wire() as i32,
            };
            let resp = inner
                .push_client()
                .remove_push(inner.authed(req)?)
                .await?
                .into_inner();
            Ok(resp.removed)
        })
        .await
    }

    /// What the server pushes with, and the VAPID key to subscribe with.
    pub async fn push_settings(&self) -> Result<PushSettings, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .push_client()
                .get_push_settings(inner.authed(pb::GetPushSettingsRequest {})?)
                .await?
                .into_inner();
            Ok(PushSettings::from_wire(&resp))
        })
        .await
    }

    /// This device's push targets, as the server keeps them.
    pub async fn push_targets(&self) -> Result<Vec<PushRegistration>, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .push_client()
                .list_push_targets(inner.authed(pb::ListPushTargetsRequest {})?)
                .await?
                .into_inner();
            Ok(resp
                .targets
                .iter()
                .filter_map(PushRegistration::from_wire)
                .collect())
        })
        .await
    }
}
