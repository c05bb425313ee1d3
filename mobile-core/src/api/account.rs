//! Accounts and devices: create, link, list, sign out, profile, forget.

use tapline_proto::v1 as pb;

use super::TaplineClient;
use crate::engine::runtime::run;
use crate::engine::{Inner, account_info};
use crate::error::TaplineError;
use crate::model::*;

#[uniffi::export(async_runtime = "tokio")]
impl TaplineClient {
    /// This device's account, from the local store.
    pub fn account(&self) -> Option<AccountInfo> {
        self.inner
            .store
            .credentials()
            .ok()
            .flatten()
            .map(|c| account_info(&c, self.inner.store.is_signed_out().unwrap_or(false)))
    }

    /// Creates an account with this device as its first device.
    pub async fn create_account(
        &self,
        display_name: String,
        time_zone: String,
    ) -> Result<AccountInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            inner.ensure_signed_out()?;
            let req = pb::CreateAccountRequest {
                display_name,
                time_zone,
                device: Some(inner.device_info()),
            };
            let resp = inner
                .accounts()
                .create_account(Inner::anonymous(req))
                .await?
                .into_inner();
            inner.save_account(resp.account, resp.device, resp.token)
        })
        .await
    }

    /// Makes a short code that signs another device (a watch) in to this account.
    pub async fn create_link_code(&self) -> Result<ShortCode, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .accounts()
                .create_link_code(inner.authed(pb::CreateLinkCodeRequest {})?)
                .await?
                .into_inner();
            Ok(ShortCode::from_wire(resp.code, resp.expires_at.as_ref()))
        })
        .await
    }

    /// Signs this device in to an account with a link code from one of its devices.
    pub async fn redeem_link_code(&self, code: String) -> Result<AccountInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            inner.ensure_signed_out()?;
            let req = pb::RedeemLinkCodeRequest {
                code,
                device: Some(inner.device_info()),
            };
            let resp = inner
                .accounts()
                .redeem_link_code(Inner::anonymous(req))
                .await?
                .into_inner();
            inner.save_account(resp.account, resp.device, resp.token)
        })
        .await
    }

    /// The devices signed in to this account.
    pub async fn devices(&self) -> Result<Vec<DeviceSummary>, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .accounts()
                .list_devices(inner.authed(pb::ListDevicesRequest {})?)
                .await?
                .into_inner();
            Ok(resp.devices.iter().map(DeviceSummary::from).collect())
        })
        .await
    }

    /// Signs a device of this account out (this one too, if named).
    pub async fn revoke_device(&self, device_id: String) -> Result<(), TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?;
            inner
                .accounts()
                .revoke_device(inner.authed(pb::RevokeDeviceRequest {
                    device_id: device_id.clone(),
                })?)
                .await?;
            if device_id == me.device_id {
                inner.store.forget_all()?;
            }
            Ok(())
        })
        .await
    }

    /// Everything the server keeps that this person may see about themself, as one JSON
    /// document (format `tapline.export.v1`, described in docs/privacy.md).
    pub async fn export_my_data(&self) -> Result<String, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let mut pieces = inner
                .accounts()
                .export_my_data(inner.authed(pb::ExportMyDataRequest {})?)
                .await?
                .into_inner();
            let mut doc = String::new();
            while let Some(piece) = pieces.message().await? {
                doc.push_str(&piece.json);
            }
            Ok(doc)
        })
        .await
    }

    /// Deletes this account for good: the couple ends (the partner is told), every device is
    /// signed out and the person's own content is removed from the server; this device forgets
    /// everything it kept. `confirm` must be "delete my account".
    pub async fn delete_account(&self, confirm: String) -> Result<(), TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            inner
                .accounts()
                .delete_account(inner.authed(pb::DeleteAccountRequest { confirm })?)
                .await?;
            inner.store.forget_all()?;
            Ok(())
        })
        .await
    }

    /// Renames a device of this account (1-40 characters).
    pub async fn rename_device(
        &self,
        device_id: String,
        name: String,
    ) -> Result<DeviceSummary, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .accounts()
                .rename_device(inner.authed(pb::RenameDeviceRequest { device_id, name })?)
                .await?
                .into_inner();
            Ok(DeviceSummary::from(&resp.device.unwrap_or_default()))
        })
        .await
    }

    /// Withdraws every pending link code of this account; returns how many there were.
    pub async fn revoke_link_codes(&self) -> Result<u32, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            Ok(inner
                .accounts()
                .revoke_link_codes(inner.authed(pb::RevokeLinkCodesRequest {})?)
                .await?
                .into_inner()
                .revoked)
        })
        .await
    }

    /// Changes the name and/or time zone; the partner is told.
    pub async fn update_profile(
        &self,
        display_name: Option<String>,
        time_zone: Option<String>,
    ) -> Result<AccountInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let req = pb::UpdateProfileRequest {
                display_name,
                time_zone,
            };
            let resp = inner
                .accounts()
                .update_profile(inner.authed(req)?)
                .await?
                .into_inner();
            let account = resp.account.unwrap_or_default();
            inner
                .store
                .save_profile(&account.display_name, &account.time_zone)?;
            Ok(account_info(&inner.creds()?, false))
        })
        .await
    }

    /// Forgets this device's account and everything kept for it (outbox, events, snapshots),
    /// with no network: what a signed-out device does before `create_account` or
    /// `redeem_link_code` again. Queued sends are lost; the server is not told.
    pub fn forget_account(&self) -> Result<(), TaplineError> {
        Ok(self.inner.store.forget_all()?)
    }
}
