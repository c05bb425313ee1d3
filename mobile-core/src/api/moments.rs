//! Moments kept for both (a partner's note or answer) and the weekly recap. The newest recap
//! is kept, and one that came by itself shows in the glance until it is read.

use tapline_proto::v1 as pb;
use tapline_proto::v1::keep_moment_request::Source;

use super::TaplineClient;
use crate::engine::Inner;
use crate::engine::runtime::run;
use crate::error::{CoreError, CoreResult, TaplineError};
use crate::model::*;

async fn keep(inner: &Inner, source: Source) -> CoreResult<KeptMoment> {
    let me = inner.creds()?.account_id;
    let req = pb::KeepMomentRequest {
        source: Some(source),
    };
    let r = inner
        .moment_client()
        .keep_moment(inner.authed(req)?)
        .await?
        .into_inner();
    let moment = r
        .moment
        .ok_or_else(|| CoreError::Invalid("server sent no moment".into()))?;
    Ok(KeptMoment {
        moment: MomentInfo::from_wire(&moment, &me),
        already_kept: r.already_kept,
    })
}

#[uniffi::export(async_runtime = "tokio")]
impl TaplineClient {
    /// Keeps the note of a tap the partner sent as a moment for both (again: unchanged, with
    /// `already_kept`). Refused with `NothingToKeep` for one's own tap or one without a note.
    pub async fn keep_moment_tap(&self, tap_id: String) -> Result<KeptMoment, TaplineError> {
        let inner = self.inner.clone();
        run(async move { keep(&inner, Source::TapId(tap_id)).await }).await
    }

    /// Keeps the partner's answer to a check-in as a moment (an appreciation or gratitude
    /// answer as an appreciation). Refused with `NothingToKeep` for one's own answer or one
    /// still hidden.
    pub async fn keep_moment_checkin(
        &self,
        checkin_id: String,
    ) -> Result<KeptMoment, TaplineError> {
        let inner = self.inner.clone();
        run(async move { keep(&inner, Source::CheckinId(checkin_id)).await }).await
    }

    /// The couple's moments, newest kept first: the first page, or the one after
    /// `page_token`.
    pub async fn list_moments(
        &self,
        page_token: Option<String>,
    ) -> Result<MomentsPage, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let req = pb::ListMomentsRequest {
                page_size: 0,
                page_token: page_token.unwrap_or_default(),
            };
            let r = inner
                .moment_client()
                .list_moments(inner.authed(req)?)
                .await?
                .into_inner();
            Ok(MomentsPage {
                moments: r
                    .moments
                    .iter()
                    .map(|m| MomentInfo::from_wire(m, &me))
                    .collect(),
                next_page_token: (!r.next_page_token.is_empty()).then_some(r.next_page_token),
            })
        })
        .await
    }

    /// Lets a moment this account kept go (again: no change).
    pub async fn forget_moment(&self, moment_id: String) -> Result<(), TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            inner
                .moment_client()
                .forget_moment(inner.authed(pb::ForgetMomentRequest { moment_id })?)
                .await?;
            Ok(())
        })
        .await
    }

    /// The recap of the seven local dates ending on `last_date` ("YYYY-MM-DD"; none means
    /// this account's today). Reading it reads a recap that came for the same week or an
    /// earlier one.
    pub async fn get_recap(&self, last_date: Option<String>) -> Result<RecapInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let req = pb::GetRecapRequest {
                last_date: last_date.unwrap_or_default(),
            };
            let recap = inner
                .moment_client()
                .get_recap(inner.authed(req)?)
                .await?
                .into_inner()
                .recap
                .ok_or_else(|| CoreError::Invalid("server sent no recap".into()))?;
            inner.store.read_recap(&recap)?;
            Ok(RecapInfo::from_wire(&recap, &me))
        })
        .await
    }

    /// The newest recap heard, without the network (none before the first).
    pub fn last_recap(&self) -> Option<RecapInfo> {
        let me = self.inner.creds().ok()?.account_id;
        let recap = self.inner.store.recap().ok().flatten()?;
        Some(RecapInfo::from_wire(&recap, &me))
    }

    /// The recap that came by itself was seen: the glance stops showing it.
    pub fn mark_recap_seen(&self) -> Result<(), TaplineError> {
        Ok(self.inner.store.mark_recap_read()?)
    }

    /// Chooses when this account's weekly recap comes: `weekday` 1 (Monday) to 7 (Sunday) at
    /// `local_time` "HH:MM" on its own clock; `enabled` false turns it off (the rest is then
    /// ignored).
    pub async fn set_recap_schedule(
        &self,
        enabled: bool,
        weekday: u32,
        local_time: String,
    ) -> Result<RecapScheduleInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let req = pb::SetRecapScheduleRequest {
                enabled,
                weekday,
                local_time,
            };
            let schedule = inner
                .moment_client()
                .set_recap_schedule(inner.authed(req)?)
                .await?
                .into_inner()
                .schedule
                .ok_or_else(|| CoreError::Invalid("server sent no recap schedule".into()))?;
            Ok(RecapScheduleInfo::from_wire(&schedule))
        })
        .await
    }

    /// When this account's weekly recap comes (off until chosen with `set_recap_schedule`).
    pub async fn get_recap_schedule(&self) -> Result<RecapScheduleInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let schedule = inner
                .moment_client()
                .get_recap_schedule(inner.authed(pb::GetRecapScheduleRequest {})?)
                .await?
                .into_inner()
                .schedule
                .ok_or_else(|| CoreError::Invalid("server sent no recap schedule".into()))?;
            Ok(RecapScheduleInfo::from_wire(&schedule))
        })
        .await
    }
}
