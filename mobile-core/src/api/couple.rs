//! The couple (invite, accept, unpair) and this person's settings.

use tapline_proto::v1 as pb;

use super::TaplineClient;
use crate::engine::runtime::run;
use crate::error::{self, CoreError, TaplineError};
use crate::model::*;

#[uniffi::export(async_runtime = "tokio")]
impl TaplineClient {
    /// Makes an invite code for the partner (24 hours, single use).
    pub async fn create_invite(&self) -> Result<ShortCode, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .pairing()
                .create_invite(inner.authed(pb::CreateInviteRequest {})?)
                .await?
                .into_inner();
            Ok(ShortCode::from_wire(resp.code, resp.expires_at.as_ref()))
        })
        .await
    }

    /// Withdraws this account's pending invite (a new `create_invite` replaces it too);
    /// false when there was none.
    pub async fn revoke_invite(&self) -> Result<bool, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            Ok(inner
                .pairing()
                .revoke_invite(inner.authed(pb::RevokeInviteRequest {})?)
                .await?
                .into_inner()
                .revoked)
        })
        .await
    }

    /// Accepts the partner's invite.
    pub async fn accept_invite(&self, code: String) -> Result<CoupleInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .pairing()
                .accept_invite(inner.authed(pb::AcceptInviteRequest { code })?)
                .await?
                .into_inner();
            let couple = resp
                .couple
                .ok_or_else(|| CoreError::Invalid("server sent no couple".into()))?;
            inner.store.set_couple(Some(&couple))?;
            CoupleInfo::from_wire(&couple)
        })
        .await
    }

    /// The couple, fresh from the server (and kept for the glance); `None` when not paired.
    pub async fn couple(&self) -> Result<Option<CoupleInfo>, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            match inner
                .pairing()
                .get_couple(inner.authed(pb::GetCoupleRequest {})?)
                .await
            {
                Ok(resp) => {
                    let couple = resp
                        .into_inner()
                        .couple
                        .ok_or_else(|| CoreError::Invalid("server sent no couple".into()))?;
                    inner.store.set_couple(Some(&couple))?;
                    Ok(Some(CoupleInfo::from_wire(&couple)?))
                }
                Err(s) if error::reason(&s) == Some(pb::ErrorReason::NotPaired) => {
                    inner.store.set_couple(None)?;
                    Ok(None)
                }
                Err(s) => Err(CoreError::Status(s)),
            }
        })
        .await
    }

    /// Ends the couple; both partners are told.
    pub async fn unpair(&self) -> Result<(), TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            inner
                .pairing()
                .unpair(inner.authed(pb::UnpairRequest {})?)
                .await?;
            inner.store.set_couple(None)?;
            Ok(())
        })
        .await
    }

    /// This account's settings.
    pub async fn settings(&self) -> Result<Settings, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .settings_client()
                .get_settings(inner.authed(pb::GetSettingsRequest {})?)
                .await?
                .into_inner();
            Ok(settings_from(resp.settings))
        })
        .await
    }

    /// Turns quiet hours on (or moves them), or off with `None`.
    pub async fn set_quiet_hours(
        &self,
        quiet_hours: Option<QuietHours>,
    ) -> Result<Settings, TaplineError> {
        use pb::update_settings_request::QuietHoursChange;
        let change = match quiet_hours {
            Some(q) => QuietHoursChange::SetQuietHours(q.to_wire()),
            None => QuietHoursChange::ClearQuietHours(true),
        };
        self.update_settings(pb::UpdateSettingsRequest {
            quiet_hours_change: Some(change),
            receipts_enabled: None,
        })
        .await
    }

    /// Whether the partner is told when this person felt or saw a tap.
    pub async fn set_receipts_enabled(&self, enabled: bool) -> Result<Settings, TaplineError> {
        self.update_settings(pb::UpdateSettingsRequest {
            quiet_hours_change: None,
            receipts_enabled: Some(enabled),
        })
        .await
    }
}

impl TaplineClient {
    async fn update_settings(
        &self,
        req: pb::UpdateSettingsRequest,
    ) -> Result<Settings, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .settings_client()
                .update_settings(inner.authed(req)?)
                .await?
                .into_inner();
            Ok(settings_from(resp.settings))
        })
        .await
    }
}

fn settings_from(s: Option<pb::Settings>) -> Settings {
    let s = s.unwrap_or_default();
    Settings {
        quiet_hours: s
            .quiet_hours
            .as_ref()
            .and_then(|q| QuietHours::from_wire(q.start.as_ref(), q.end.as_ref())),
        receipts_enabled: s.receipts_enabled,
    }
}
