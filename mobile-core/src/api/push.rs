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

    /// Handles a wake-up push (the decrypted Web Push body, the APNs payload or the FCM data,
    /// each with the `seq` of the newest waiting event): fetches,
    /// stores and acks what is pending within `deadline_ms` (what a notification service
    /// extension or a background task allows), and returns what arrived. Nothing is fetched
    /// when this device already has event `seq` (a live stream delivered it first), and an
    /// event a stream also delivers is never returned twice. A body without a `seq` still
    /// fetches. Fails with `Network` when the deadline passes; what was stored by then stays.
    pub async fn handle_push(
        &self,
        payload: String,
        deadline_ms: u32,
    ) -> Result<Vec<ClientEvent>, TaplineError> {
        let seq = serde_json::from_str::<serde_json::Value>(&payload)
            .ok()
            .and_then(|v| {
                // A number (Web Push, APNs) or a string (FCM data messages).
                let seq = v.get("seq")?;
                seq.as_u64().or_else(|| seq.as_str()?.parse().ok())
            });
        let inner = self.inner.clone();
        run(async move {
            if let Some(seq) = seq
                && inner.store.cursor()? >= seq
            {
                return Ok(Vec::new());
            }
            let deadline = std::time::Duration::from_millis(u64::from(deadline_ms.max(1)));
            match tokio::time::timeout(deadline, inner.sync()).await {
                Ok(events) => events,
                Err(_) => Err(CoreError::Timeout(format!(
                    "the push's fetch did not finish within {deadline_ms} ms"
                ))),
            }
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
