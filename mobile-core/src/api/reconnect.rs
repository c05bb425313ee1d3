//! The reconnect plan: seven small steps, one a day at the same local time on each partner's
//! clock. Every answer is kept for the glance.

use tapline_proto::v1 as pb;

use super::TaplineClient;
use crate::engine::Inner;
use crate::engine::runtime::run;
use crate::error::{CoreError, CoreResult, TaplineError};
use crate::model::*;

fn plan_of(p: Option<pb::ReconnectPlan>) -> CoreResult<pb::ReconnectPlan> {
    p.ok_or_else(|| CoreError::Invalid("server sent no reconnect plan".into()))
}

/// Keeps the plan a call answered and reads it for this account.
fn keep(inner: &Inner, me: &str, p: Option<pb::ReconnectPlan>) -> CoreResult<ReconnectInfo> {
    let plan = plan_of(p)?;
    inner.store.set_reconnect(&plan)?;
    Ok(ReconnectInfo::from_wire(&plan, me))
}

#[uniffi::export(async_runtime = "tokio")]
impl TaplineClient {
    /// Proposes the plan to the partner, a step a day at `local_time` ("HH:MM" on each
    /// partner's own clock; none means 19:00). Refused with `ReconnectAlready` while a plan
    /// is proposed or running.
    pub async fn start_reconnect(
        &self,
        local_time: Option<String>,
    ) -> Result<ReconnectInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let req = pb::StartReconnectRequest {
                local_time: local_time.unwrap_or_default(),
            };
            let r = inner
                .reconnect_client()
                .start_reconnect(inner.authed(req)?)
                .await?
                .into_inner();
            keep(&inner, &me, r.plan)
        })
        .await
    }

    /// Accepts the partner's proposal: the first step comes at the next local time. Refused
    /// with `ReconnectEnded` once it ended, as invalid input for one's own proposal.
    pub async fn accept_reconnect(&self, plan_id: String) -> Result<ReconnectInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let r = inner
                .reconnect_client()
                .accept_reconnect(inner.authed(pb::AcceptReconnectRequest { plan_id })?)
                .await?
                .into_inner();
            keep(&inner, &me, r.plan)
        })
        .await
    }

    /// Pauses (`true`) or resumes a running plan, for both.
    pub async fn pause_reconnect(
        &self,
        plan_id: String,
        paused: bool,
    ) -> Result<ReconnectInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let req = pb::PauseReconnectRequest { plan_id, paused };
            let r = inner
                .reconnect_client()
                .pause_reconnect(inner.authed(req)?)
                .await?
                .into_inner();
            keep(&inner, &me, r.plan)
        })
        .await
    }

    /// Ends the plan, withdraws this account's proposal or declines the partner's.
    pub async fn end_reconnect(&self, plan_id: String) -> Result<ReconnectInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let r = inner
                .reconnect_client()
                .end_reconnect(inner.authed(pb::EndReconnectRequest { plan_id })?)
                .await?
                .into_inner();
            keep(&inner, &me, r.plan)
        })
        .await
    }

    /// Marks this account's step `number` (1-7) done, which tells the partner. Optional: the
    /// next step comes either way. Refused with `ReconnectStepNotYet` before it came.
    pub async fn mark_reconnect_step(
        &self,
        plan_id: String,
        number: u32,
    ) -> Result<ReconnectInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let req = pb::MarkReconnectStepRequest { plan_id, number };
            let r = inner
                .reconnect_client()
                .mark_reconnect_step(inner.authed(req)?)
                .await?
                .into_inner();
            keep(&inner, &me, r.plan)
        })
        .await
    }

    /// The couple's latest plan, running or not, fresh from the server (none if they never
    /// started one).
    pub async fn get_reconnect(&self) -> Result<Option<ReconnectInfo>, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let r = inner
                .reconnect_client()
                .get_reconnect(inner.authed(pb::GetReconnectRequest {})?)
                .await?
                .into_inner();
            r.plan.map(|p| keep(&inner, &me, Some(p))).transpose()
        })
        .await
    }
}
