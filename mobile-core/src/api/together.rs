//! Together time (phones down: taps between the two are kept and delivered quietly when it
//! ends) and the next time we meet. Every answer is also kept for the glance.

use tapline_proto::v1 as pb;

use super::TaplineClient;
use crate::engine::runtime::run;
use crate::error::{CoreError, CoreResult, TaplineError};
use crate::model::*;
use crate::store::{apply_meeting, apply_together};

/// A length in minutes for the wire, where 0 means the server's default: `None` is the
/// default, and 0 itself is no length at all.
fn wire_minutes(field: &str, m: Option<u32>) -> CoreResult<u32> {
    match m {
        Some(0) => Err(CoreError::Invalid(format!(
            "{field}: must be 15-1440 minutes (or none for the default)"
        ))),
        m => Ok(m.unwrap_or(0)),
    }
}

fn together_of(t: Option<pb::Together>) -> CoreResult<pb::Together> {
    t.ok_or_else(|| CoreError::Invalid("server sent no together time".into()))
}

#[uniffi::export(async_runtime = "tokio")]
impl TaplineClient {
    /// Proposes together time to the partner for `minutes` (15-1440; none means 2 hours),
    /// counted from their confirmation, which must come within 30 minutes. Refused with
    /// `TogetherAlready` while together time is proposed or in force.
    pub async fn start_together(&self, minutes: Option<u32>) -> Result<TogetherInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let req = pb::StartTogetherRequest {
                client_id: uuid::Uuid::now_v7().to_string(),
                minutes: wire_minutes("minutes", minutes)?,
            };
            let together = together_of(
                inner
                    .together_client()
                    .start_together(inner.authed(req)?)
                    .await?
                    .into_inner()
                    .together,
            )?;
            inner
                .store
                .update_together(|s| apply_together(s, &together))?;
            Ok(TogetherInfo::from_wire(&together, &me))
        })
        .await
    }

    /// Confirms the partner's proposal: together time starts now. Refused with
    /// `TogetherEnded` once it was withdrawn, declined or lapsed, and as invalid input for
    /// one's own proposal. Confirming again changes nothing.
    pub async fn confirm_together(
        &self,
        together_id: String,
    ) -> Result<TogetherInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let req = pb::ConfirmTogetherRequest { together_id };
            let together = together_of(
                inner
                    .together_client()
                    .confirm_together(inner.authed(req)?)
                    .await?
                    .into_inner()
                    .together,
            )?;
            inner
                .store
                .update_together(|s| apply_together(s, &together))?;
            Ok(TogetherInfo::from_wire(&together, &me))
        })
        .await
    }

    /// Ends together time now, withdraws this account's proposal or declines the partner's:
    /// the taps kept during it are delivered quietly at once. Answers the together time that
    /// ended, with the number of taps delivered.
    pub async fn end_together(&self) -> Result<TogetherInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let together = together_of(
                inner
                    .together_client()
                    .end_together(inner.authed(pb::EndTogetherRequest {})?)
                    .await?
                    .into_inner()
                    .together,
            )?;
            inner
                .store
                .update_together(|s| apply_together(s, &together))?;
            Ok(TogetherInfo::from_wire(&together, &me))
        })
        .await
    }

    /// Together time (proposed or in force) and the next meeting, fresh from the server (and
    /// kept for the glance).
    pub async fn together(&self) -> Result<TogetherState, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let resp = inner
                .together_client()
                .get_together(inner.authed(pb::GetTogetherRequest {})?)
                .await?
                .into_inner();
            inner.store.set_together(&resp)?;
            Ok(TogetherState::from_wire(&resp, &me))
        })
        .await
    }

    /// Sets (or replaces) the next time we meet: `local_date` "YYYY-MM-DD" (today to two
    /// years ahead) and `local_time` "HH:MM" (24 h) on the clock of `time_zone` (an IANA
    /// name in any case; none means this account's zone). When it comes it turns into
    /// together time for `together_minutes` (15-1440; none means 3 hours).
    pub async fn set_meeting(
        &self,
        local_date: String,
        local_time: String,
        time_zone: Option<String>,
        together_minutes: Option<u32>,
    ) -> Result<MeetingInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let req = pb::SetMeetingRequest {
                local_date,
                local_time,
                time_zone: time_zone.unwrap_or_default(),
                together_minutes: wire_minutes("together_minutes", together_minutes)?,
            };
            let meeting = inner
                .together_client()
                .set_meeting(inner.authed(req)?)
                .await?
                .into_inner()
                .meeting
                .ok_or_else(|| CoreError::Invalid("server sent no meeting".into()))?;
            inner
                .store
                .update_together(|s| apply_meeting(s, &meeting))?;
            Ok(MeetingInfo::from_wire(&meeting, &me))
        })
        .await
    }

    /// Clears the next time we meet; answers whether there was one.
    pub async fn clear_meeting(&self) -> Result<bool, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let cleared = inner
                .together_client()
                .clear_meeting(inner.authed(pb::ClearMeetingRequest {})?)
                .await?
                .into_inner()
                .cleared;
            inner.store.update_together(|s| s.meeting = None)?;
            Ok(cleared)
        })
        .await
    }
}
