//! "I need a moment": asking for space, answering the partner's with one tap, ending one's
//! own, and the spaces in force (kept for the glance).

use std::time::SystemTime;

use tapline_proto::v1 as pb;

use super::TaplineClient;
use crate::engine::runtime::run;
use crate::error::{CoreError, TaplineError};
use crate::model::*;

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let ms = millis(t);
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// What asking for space answered.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SpaceAsked {
    /// The space, in force.
    pub space: SpaceInfo,
    /// The partner is in their quiet hours: it reaches them silently.
    pub arrives_silently: bool,
}

#[uniffi::export(async_runtime = "tokio")]
impl TaplineClient {
    /// Asks for space ("I need a moment") with a reason from the calm set, until `until` (5
    /// minutes to 48 hours from now) or, without one, until `end_space` (48 hours at most).
    /// Taps to this account wait on the server until it ends. Refused with
    /// `SpaceAlreadyAsked` while one is in force.
    pub async fn ask_for_space(
        &self,
        reason: SpaceReason,
        until: Option<SystemTime>,
    ) -> Result<SpaceAsked, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let req = pb::AskForSpaceRequest {
                client_id: uuid::Uuid::now_v7().to_string(),
                reason: reason.to_wire() as i32,
                until: until.map(timestamp),
            };
            let resp = inner
                .space()
                .ask_for_space(inner.authed(req)?)
                .await?
                .into_inner();
            let space = resp
                .space
                .ok_or_else(|| CoreError::Invalid("server sent no space".into()))?;
            let mut kept = inner.store.spaces()?;
            kept.mine = Some(space.clone());
            inner.store.set_spaces(&kept)?;
            Ok(SpaceAsked {
                space: SpaceInfo::from_wire(&space, &me),
                arrives_silently: resp.arrives_silently,
            })
        })
        .await
    }

    /// Answers the partner's space with one tap ("I'm here", "Take your time").
    pub async fn answer_space(
        &self,
        space_id: String,
        answer: SpaceAnswer,
    ) -> Result<SpaceInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let req = pb::AnswerSpaceRequest {
                space_id,
                answer: answer.to_wire() as i32,
            };
            let space = inner
                .space()
                .answer_space(inner.authed(req)?)
                .await?
                .into_inner()
                .space
                .ok_or_else(|| CoreError::Invalid("server sent no space".into()))?;
            Ok(SpaceInfo::from_wire(&space, &me))
        })
        .await
    }

    /// Ends this account's space now: the taps held for it arrive together.
    pub async fn end_space(&self) -> Result<SpaceInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let space = inner
                .space()
                .end_space(inner.authed(pb::EndSpaceRequest {})?)
                .await?
                .into_inner()
                .space
                .ok_or_else(|| CoreError::Invalid("server sent no space".into()))?;
            let mut kept = inner.store.spaces()?;
            kept.mine = None;
            inner.store.set_spaces(&kept)?;
            Ok(SpaceInfo::from_wire(&space, &me))
        })
        .await
    }

    /// The spaces in force, fresh from the server (and kept for the glance).
    pub async fn spaces(&self) -> Result<SpaceState, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let resp = inner
                .space()
                .get_space(inner.authed(pb::GetSpaceRequest {})?)
                .await?
                .into_inner();
            inner.store.set_spaces(&resp)?;
            Ok(SpaceState::from_wire(&resp, &me))
        })
        .await
    }
}
