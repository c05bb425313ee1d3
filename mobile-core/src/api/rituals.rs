//! Streaks, check-ins and routines: the exported calls.

use std::time::SystemTime;

use tapline_proto::v1 as pb;

use super::TaplineClient;
use crate::engine::Inner;
use crate::engine::backoff;
use crate::engine::runtime::{now_ms, run};
use crate::error::{self, CoreError, CoreResult, RefusalCode, TaplineError};
use crate::model::*;
use crate::rituals::{
    ASK_ATTEMPTS, LIST_CHECKINS, answers, id_arg, missing, pause_dates, stored_checkins,
    with_local_answers,
};

/// Keeps the streak for the glance and returns it as the app sees it.
fn keep_streak(inner: &Inner, streak: Option<pb::Streak>) -> CoreResult<StreakInfo> {
    let streak = streak.ok_or_else(|| missing("streak"))?;
    inner.store.set_streak(&streak)?;
    Ok(StreakInfo::from_wire(&streak, &inner.me()?))
}

#[uniffi::export(async_runtime = "tokio")]
impl TaplineClient {
    /// The streak now, with today's state for each partner (kept for the glance).
    pub async fn streak(&self) -> Result<StreakInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .streaks()
                .get_streak(inner.authed(pb::GetStreakRequest {})?)
                .await?
                .into_inner();
            keep_streak(&inner, resp.streak)
        })
        .await
    }

    /// One month of history for a calendar: every date from the couple's first day to the
    /// latest date either partner has reached (earlier and future dates are left out).
    pub async fn streak_history(
        &self,
        year: i32,
        month: u8,
    ) -> Result<Vec<StreakDayInfo>, TaplineError> {
        if !(1..=12).contains(&month) {
            return Err(CoreError::Invalid("month: must be 1-12".into()).into());
        }
        let inner = self.inner.clone();
        run(async move {
            let req = pb::GetStreakHistoryRequest {
                year,
                month: month.into(),
            };
            let resp = inner
                .streaks()
                .get_streak_history(inner.authed(req)?)
                .await?
                .into_inner();
            Ok(resp.days.iter().map(StreakDayInfo::from).collect())
        })
        .await
    }

    /// Pauses the streak from `from_date` to `to_date` (YYYY-MM-DD in this account's zone,
    /// inclusive, 1-14 days, starting within the next 14 days); both partners are told.
    pub async fn schedule_pause(
        &self,
        from_date: String,
        to_date: String,
    ) -> Result<PauseInfo, TaplineError> {
        let (from_date, to_date) = pause_dates(&from_date, &to_date)?;
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .streaks()
                .schedule_pause(inner.authed(pb::SchedulePauseRequest { from_date, to_date })?)
                .await?
                .into_inner();
            let pause = resp.pause.ok_or_else(|| missing("pause"))?;
            if let Some(mut streak) = inner.store.streak()? {
                streak.pauses.retain(|p| p.pause_id != pause.pause_id);
                streak.pauses.push(pause.clone());
                inner.store.set_streak(&streak)?;
            }
            Ok(PauseInfo::from_wire(&pause, &inner.me()?))
        })
        .await
    }

    /// Cancels a pause that has not started.
    pub async fn cancel_pause(&self, pause_id: String) -> Result<(), TaplineError> {
        let pause_id = id_arg("pause_id", &pause_id)?;
        let inner = self.inner.clone();
        run(async move {
            inner
                .streaks()
                .cancel_pause(inner.authed(pb::CancelPauseRequest {
                    pause_id: pause_id.clone(),
                })?)
                .await?;
            if let Some(mut streak) = inner.store.streak()? {
                streak.pauses.retain(|p| p.pause_id != pause_id);
                inner.store.set_streak(&streak)?;
            }
            Ok(())
        })
        .await
    }

    /// Turns calm mode on (no streak pressure; history is kept) or off.
    pub async fn set_calm_mode(&self, calm: bool) -> Result<StreakInfo, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .streaks()
                .set_calm_mode(inner.authed(pb::SetCalmModeRequest { calm })?)
                .await?
                .into_inner();
            keep_streak(&inner, resp.streak)
        })
        .await
    }

    /// The prompt catalogue, or one category of it.
    pub async fn prompts(
        &self,
        category: Option<PromptCategory>,
    ) -> Result<Vec<PromptInfo>, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let req = pb::ListPromptsRequest {
                category: category.map_or(pb::PromptCategory::Unspecified, |c| c.to_wire()) as i32,
            };
            let resp = inner
                .checkin_client()
                .list_prompts(inner.authed(req)?)
                .await?
                .into_inner();
            Ok(resp.prompts.iter().map(PromptInfo::from).collect())
        })
        .await
    }

    /// Opens a check-in for both partners: a prompt of `category` (it varies day to day), or
    /// the prompt named. Retried on network failures with the same id, so it opens once.
    pub async fn ask_partner(
        &self,
        category: Option<PromptCategory>,
        prompt_id: Option<String>,
    ) -> Result<CheckinInfo, TaplineError> {
        let prompt_id = prompt_id
            .map(|p| id_arg("prompt_id", &p))
            .transpose()?
            .unwrap_or_default();
        let inner = self.inner.clone();
        run(async move {
            let req = pb::AskPartnerRequest {
                client_checkin_id: uuid::Uuid::now_v7().to_string(),
                category: category.map_or(pb::PromptCategory::Unspecified, |c| c.to_wire()) as i32,
                prompt_id,
            };
            let mut failures = 0;
            let resp = loop {
                match inner
                    .checkin_client()
                    .ask_partner(inner.authed(req.clone())?)
                    .await
                {
                    Ok(resp) => break resp.into_inner(),
                    Err(status) => {
                        let network =
                            matches!(error::from_status(&status), TaplineError::Network { .. });
                        let e = CoreError::Status(status);
                        let asked = e.retry_after().unwrap_or_default();
                        failures += 1;
                        if !network || failures >= ASK_ATTEMPTS {
                            return Err(e);
                        }
                        tokio::time::sleep(
                            backoff::delay(failures, backoff::CAP, backoff::jitter()).max(asked),
                        )
                        .await;
                    }
                }
            };
            let c = resp.checkin.ok_or_else(|| missing("check-in"))?;
            inner.store.save_checkins(std::slice::from_ref(&c))?;
            let me = inner.me()?;
            let local = inner.store.local_answer(&c.checkin_id)?;
            Ok(CheckinInfo::from_wire(&c, &me).with_local_answer(local.as_ref()))
        })
        .await
    }

    /// Queues an answer and returns at once; the outbox sends it (now, or when the network is
    /// back) and reports it with `AnswerStateChanged`. Answers are final: the same answer again
    /// changes nothing (an answer the server already has comes back as `Sent`), another one is
    /// refused. Checked against the prompt when the check-in is known on this device.
    pub fn answer_checkin(
        &self,
        checkin_id: String,
        answer: CheckinAnswer,
    ) -> Result<LocalAnswer, TaplineError> {
        let inner = &self.inner;
        let me = inner.me()?;
        let checkin_id = id_arg("checkin_id", &checkin_id)?;
        let known = inner
            .store
            .checkin(&checkin_id)?
            .map(|c| CheckinInfo::from_wire(&c, &me));
        let answer = match &known {
            Some(c) => answers::validate(c.prompt.answer_type.as_ref(), answer)?,
            None => answer,
        };
        if let Some(c) = &known {
            match &c.my_answer {
                Some(given) if *given != answer => {
                    return Err(TaplineError::Refused {
                        reason: "answers are final: you already answered this check-in".into(),
                        code: RefusalCode::AlreadyAnswered,
                    });
                }
                Some(_) => {
                    // Already accepted (maybe from another device): nothing to send.
                    let local = inner.store.local_answer(&checkin_id)?;
                    return Ok(local
                        .filter(|l| !matches!(l.state, AnswerState::Refused { .. }))
                        .unwrap_or(LocalAnswer {
                            checkin_id,
                            answer,
                            state: AnswerState::Sent,
                            created_at: SystemTime::now(),
                            attempts: 0,
                        }));
                }
                None if c.status != CheckinStatus::Open || c.expires_at <= SystemTime::now() => {
                    return Err(TaplineError::Refused {
                        reason: "this check-in is closed".into(),
                        code: RefusalCode::CheckinExpired,
                    });
                }
                None => {}
            }
        }
        let local = inner.store.enqueue_answer(&checkin_id, &answer, now_ms())?;
        inner.outbox_wake.notify_one();
        Ok(local)
    }

    /// The newest answers this device gave, newest first, with their states.
    pub fn local_answers(&self, limit: u32) -> Result<Vec<LocalAnswer>, TaplineError> {
        Ok(self.inner.store.local_answers(limit)?)
    }

    /// Check-ins fresh from the server (kept for the glance and offline answers): open ones
    /// first, then the most recent. Answers still queued here show as `my_answer_pending`.
    pub async fn checkins(&self, open_only: bool) -> Result<Vec<CheckinInfo>, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let req = pb::ListCheckinsRequest {
                open_only,
                limit: LIST_CHECKINS,
                page_token: String::new(),
            };
            Ok(list_checkins(&inner, req).await?.0)
        })
        .await
    }

    /// One page of every check-in of the couple, open ones first, then the newest: `None` for
    /// the first page, then the page's `next_page_token` until it is `None`. A check-in that
    /// closed between two pages may come again with its new status (keep the latest).
    pub async fn checkin_history(
        &self,
        page_token: Option<String>,
        page_size: u32,
    ) -> Result<CheckinPage, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let req = pb::ListCheckinsRequest {
                open_only: false,
                limit: page_size,
                page_token: page_token.unwrap_or_default(),
            };
            let (checkins, next) = list_checkins(&inner, req).await?;
            Ok(CheckinPage {
                checkins,
                next_page_token: Some(next).filter(|t| !t.is_empty()),
            })
        })
        .await
    }

    /// The check-ins this device knows, newest first, with no network.
    pub fn local_checkins(&self, open_only: bool) -> Result<Vec<CheckinInfo>, TaplineError> {
        let me = self.inner.me()?;
        Ok(stored_checkins(&self.inner.store, &me, open_only)?)
    }

    /// The couple's routines.
    pub async fn routines(&self) -> Result<Vec<RoutineInfo>, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .routine_client()
                .list_routines(inner.authed(pb::ListRoutinesRequest {})?)
                .await?
                .into_inner();
            let me = inner.me()?;
            Ok(resp
                .routines
                .iter()
                .map(|r| RoutineInfo::from_wire(r, &me))
                .collect())
        })
        .await
    }

    /// Creates a routine; both partners are told.
    pub async fn create_routine(&self, spec: RoutineSpec) -> Result<RoutineInfo, TaplineError> {
        let spec = spec.to_wire()?;
        let inner = self.inner.clone();
        run(async move {
            let resp = inner
                .routine_client()
                .create_routine(inner.authed(pb::CreateRoutineRequest { spec: Some(spec) })?)
                .await?
                .into_inner();
            let routine = resp.routine.ok_or_else(|| missing("routine"))?;
            Ok(RoutineInfo::from_wire(&routine, &inner.me()?))
        })
        .await
    }

    /// Replaces a routine's settings (to pause it, set `paused`); both partners are told.
    pub async fn update_routine(
        &self,
        routine_id: String,
        spec: RoutineSpec,
    ) -> Result<RoutineInfo, TaplineError> {
        let routine_id = id_arg("routine_id", &routine_id)?;
        let spec = spec.to_wire()?;
        let inner = self.inner.clone();
        run(async move {
            let req = pb::UpdateRoutineRequest {
                routine_id,
                spec: Some(spec),
            };
            let resp = inner
                .routine_client()
                .update_routine(inner.authed(req)?)
                .await?
                .into_inner();
            let routine = resp.routine.ok_or_else(|| missing("routine"))?;
            Ok(RoutineInfo::from_wire(&routine, &inner.me()?))
        })
        .await
    }

    /// Deletes a routine; both partners are told.
    pub async fn delete_routine(&self, routine_id: String) -> Result<(), TaplineError> {
        let routine_id = id_arg("routine_id", &routine_id)?;
        let inner = self.inner.clone();
        run(async move {
            inner
                .routine_client()
                .delete_routine(inner.authed(pb::DeleteRoutineRequest { routine_id })?)
                .await?;
            Ok(())
        })
        .await
    }
}

/// One `ListCheckins` call: its check-ins, kept for the glance and offline answers, with this
/// device's queued answers, and the next page token.
async fn list_checkins(
    inner: &Inner,
    req: pb::ListCheckinsRequest,
) -> CoreResult<(Vec<CheckinInfo>, String)> {
    let resp = inner
        .checkin_client()
        .list_checkins(inner.authed(req)?)
        .await?
        .into_inner();
    inner.store.save_checkins(&resp.checkins)?;
    let checkins = with_local_answers(&inner.store, &inner.me()?, &resp.checkins)?;
    Ok((checkins, resp.next_page_token))
}
