//! Streaks, check-ins and routines: the second half of [`TaplineClient`]'s API, and how their
//! events change the local store.

pub(crate) mod answers;
pub(crate) mod types;

use std::collections::HashMap;
use std::time::SystemTime;

use chrono::NaiveDate;
use prost::Message;
use rusqlite::Connection;
use tapline_proto::v1 as pb;
use tapline_proto::v1::checkin_service_client::CheckinServiceClient;
use tapline_proto::v1::routine_service_client::RoutineServiceClient;
use tapline_proto::v1::streak_service_client::StreakServiceClient;

use crate::client::{Inner, TaplineClient, backoff, now_ms, run};
use crate::error::{CoreError, CoreResult, RefusalCode, TaplineError};
use crate::model::ClientEvent;
use crate::store::Store;
use crate::transport::GrpcService;
use types::*;

/// Longest pause, in days.
const MAX_PAUSE_DAYS: i64 = 14;
/// Check-ins asked for per list.
const LIST_CHECKINS: u32 = 50;
/// Attempts of one "ask my partner" call when the network fails (same client id each time).
const ASK_ATTEMPTS: u32 = 3;

fn parse_date(field: &str, s: &str) -> CoreResult<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| CoreError::Invalid(format!("{field}: expected a date YYYY-MM-DD, got {s:?}")))
}

/// Checks a pause's dates locally (the server also checks that it starts within 14 days).
fn pause_dates(from_date: &str, to_date: &str) -> CoreResult<(String, String)> {
    let from = parse_date("from_date", from_date)?;
    let to = parse_date("to_date", to_date)?;
    if to < from {
        return Err(CoreError::Invalid(
            "to_date: must not be before from_date".into(),
        ));
    }
    if (to - from).num_days() + 1 > MAX_PAUSE_DAYS {
        return Err(CoreError::Invalid(format!(
            "to_date: a pause lasts at most {MAX_PAUSE_DAYS} days"
        )));
    }
    Ok((from.to_string(), to.to_string()))
}

fn id_arg(field: &str, id: &str) -> CoreResult<String> {
    let id = id.trim();
    if id.is_empty() || id.len() > 100 || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CoreError::Invalid(format!("{field}: is not an id")));
    }
    Ok(id.to_owned())
}

fn missing(what: &str) -> CoreError {
    CoreError::Invalid(format!("server sent no {what}"))
}

/// Stored check-ins as `me` sees them, with this device's answers applied, newest first.
pub(crate) fn stored_checkins(
    store: &Store,
    me: &str,
    open_only: bool,
) -> CoreResult<Vec<CheckinInfo>> {
    let checkins = store.checkins()?;
    Ok(with_local_answers(store, me, &checkins)?
        .into_iter()
        .filter(|c| !open_only || c.status == CheckinStatus::Open)
        .collect())
}

fn with_local_answers(
    store: &Store,
    me: &str,
    checkins: &[pb::Checkin],
) -> CoreResult<Vec<CheckinInfo>> {
    let local: HashMap<String, LocalAnswer> = store
        .local_answers(500)?
        .into_iter()
        .map(|a| (a.checkin_id.clone(), a))
        .collect();
    Ok(checkins
        .iter()
        .map(|c| CheckinInfo::from_wire(c, me).with_local_answer(local.get(&c.checkin_id)))
        .collect())
}

fn checkin_in_tx(tx: &Connection, c: &pb::Checkin, me: &str) -> CoreResult<CheckinInfo> {
    Store::tx_save_checkin(tx, c)?;
    let local = Store::tx_local_answer(tx, &c.checkin_id)?;
    Ok(CheckinInfo::from_wire(c, me).with_local_answer(local.as_ref()))
}

/// Applies a `StreakUpdated` event inside its transaction.
pub(crate) fn on_streak_updated(
    tx: &Connection,
    e: pb::StreakUpdated,
    me: &str,
) -> CoreResult<Vec<ClientEvent>> {
    let Some(streak) = e.streak else {
        return Ok(vec![]);
    };
    Store::tx_set_streak(tx, &streak)?;
    Ok(vec![ClientEvent::StreakUpdated {
        streak: StreakInfo::from_wire(&streak, me),
        change: StreakChange::from_wire(e.change),
        milestone_days: (e.milestone_days > 0).then_some(e.milestone_days),
        date: e.date,
    }])
}

/// Applies a `CheckinUpdated` event inside its transaction.
pub(crate) fn on_checkin_updated(
    tx: &Connection,
    e: pb::CheckinUpdated,
    me: &str,
) -> CoreResult<Vec<ClientEvent>> {
    let Some(c) = e.checkin else {
        return Ok(vec![]);
    };
    Ok(vec![ClientEvent::CheckinUpdated {
        checkin: checkin_in_tx(tx, &c, me)?,
    }])
}

/// Applies a `RoutineFired` event inside its transaction.
pub(crate) fn on_routine_fired(
    tx: &Connection,
    e: pb::RoutineFired,
    me: &str,
) -> CoreResult<Vec<ClientEvent>> {
    let Some(routine) = e.routine else {
        return Ok(vec![]);
    };
    let checkin = e.checkin.map(|c| checkin_in_tx(tx, &c, me)).transpose()?;
    Ok(vec![ClientEvent::RoutineFired {
        routine: RoutineInfo::from_wire(&routine, me),
        checkin,
    }])
}

/// Turns a `RoutinesChanged` event into what the app hears (routines are not stored).
pub(crate) fn on_routines_changed(e: pb::RoutinesChanged, me: &str) -> Vec<ClientEvent> {
    let routine = e
        .routine
        .filter(|_| !e.deleted)
        .map(|r| RoutineInfo::from_wire(&r, me));
    let routine_id = match (&routine, e.routine_id.is_empty()) {
        (Some(r), true) => r.routine_id.clone(),
        _ => e.routine_id,
    };
    vec![ClientEvent::RoutinesChanged {
        routine_id,
        routine,
        deleted: e.deleted,
    }]
}

impl Inner {
    fn streaks(&self) -> StreakServiceClient<GrpcService> {
        StreakServiceClient::new(self.grpc.clone())
    }
    fn checkin_client(&self) -> CheckinServiceClient<GrpcService> {
        CheckinServiceClient::new(self.grpc.clone())
    }
    fn routine_client(&self) -> RoutineServiceClient<GrpcService> {
        RoutineServiceClient::new(self.grpc.clone())
    }

    fn me(&self) -> CoreResult<String> {
        Ok(self.creds()?.account_id)
    }

    /// Keeps the streak for the glance and returns it as the app sees it.
    fn keep_streak(&self, streak: Option<pb::Streak>) -> CoreResult<StreakInfo> {
        let streak = streak.ok_or_else(|| missing("streak"))?;
        self.store.set_streak(&streak)?;
        Ok(StreakInfo::from_wire(&streak, &self.me()?))
    }

    /// Sends one queued answer; the check-in the server returns replaces the stored one.
    pub(crate) async fn send_answer(&self, payload: &[u8]) -> CoreResult<()> {
        let req = pb::AnswerCheckinRequest::decode(payload)?;
        let resp = self
            .checkin_client()
            .answer_checkin(self.authed(req)?)
            .await?
            .into_inner();
        if let Some(c) = resp.checkin {
            self.store.save_checkins(&[c])?;
        }
        Ok(())
    }

    /// Tells the app an answer was sent or refused (nothing while it is still queued).
    pub(crate) fn answer_moved(&self, client_id: &str) {
        let Some(checkin_id) = client_id.strip_prefix("answer:") else {
            return;
        };
        if let Ok(Some(answer)) = self.store.local_answer(checkin_id)
            && answer.state != AnswerState::Queued
        {
            self.dispatch(ClientEvent::AnswerStateChanged { answer });
        }
    }
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
            inner.keep_streak(resp.streak)
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
            inner.keep_streak(resp.streak)
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
                        let e = CoreError::Status(status);
                        let asked = e.retry_after().unwrap_or_default();
                        let e = TaplineError::from(e);
                        failures += 1;
                        if !matches!(e, TaplineError::Network { .. }) || failures >= ASK_ATTEMPTS {
                            return Err(e.into());
                        }
                        tokio::time::sleep(backoff(failures).max(asked)).await;
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
                    return Err(TaplineError::refused(
                        RefusalCode::AlreadyAnswered,
                        "answers are final: you already answered this check-in",
                    ));
                }
                Some(_) => {
                    // Already accepted (maybe from another device): nothing to send.
                    let local = inner.store.local_answer(&checkin_id)?;
                    return Ok(local
                        .filter(|l| !matches!(l.state, AnswerState::Failed { .. }))
                        .unwrap_or(LocalAnswer {
                            checkin_id,
                            answer,
                            state: AnswerState::Sent,
                            created_at: SystemTime::now(),
                            attempts: 0,
                        }));
                }
                None if c.status != CheckinStatus::Open || c.expires_at <= SystemTime::now() => {
                    return Err(TaplineError::refused(
                        RefusalCode::CheckinExpired,
                        "this check-in is closed",
                    ));
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
            };
            let resp = inner
                .checkin_client()
                .list_checkins(inner.authed(req)?)
                .await?
                .into_inner();
            inner.store.save_checkins(&resp.checkins)?;
            with_local_answers(&inner.store, &inner.me()?, &resp.checkins)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_are_checked_before_they_are_sent() {
        assert_eq!(
            pause_dates("2026-04-01", " 2026-04-14").unwrap(),
            ("2026-04-01".into(), "2026-04-14".into())
        );
        assert_eq!(
            pause_dates("2026-04-01", "2026-04-01").unwrap().1,
            "2026-04-01"
        );
        let invalid = |r: CoreResult<(String, String)>| match r {
            Err(CoreError::Invalid(reason)) => reason,
            other => panic!("expected invalid input, got {other:?}"),
        };
        assert!(invalid(pause_dates("2026-04-01", "2026-04-15")).contains("at most 14"));
        assert!(invalid(pause_dates("2026-04-02", "2026-04-01")).contains("before"));
        assert!(invalid(pause_dates("April 1st", "2026-04-01")).starts_with("from_date"));
        assert!(invalid(pause_dates("2026-02-29", "2026-03-01")).starts_with("from_date"));
    }

    #[test]
    fn ids_are_trimmed_and_checked() {
        assert_eq!(id_arg("x", " abc ").unwrap(), "abc");
        assert!(id_arg("x", "").is_err());
        assert!(id_arg("x", "a b").is_err());
        assert!(id_arg("x", &"a".repeat(101)).is_err());
    }

    fn streak_event() -> pb::StreakUpdated {
        pb::StreakUpdated {
            streak: Some(pb::Streak {
                current: 7,
                freezes_held: 1,
                ..Default::default()
            }),
            change: pb::StreakChange::Milestone as i32,
            milestone_days: 7,
            date: "2026-03-14".into(),
        }
    }

    #[test]
    fn events_update_the_snapshots_the_glance_reads() {
        let dir = std::env::temp_dir().join(format!(
            "tapline-core-ritual-events-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let store = Store::open(&dir).unwrap();
        let events = store
            .transaction(|tx| on_streak_updated(tx, streak_event(), "me"))
            .unwrap();
        assert_eq!(
            events,
            vec![ClientEvent::StreakUpdated {
                streak: StreakInfo::from_wire(&streak_event().streak.unwrap(), "me"),
                change: StreakChange::Milestone,
                milestone_days: Some(7),
                date: "2026-03-14".into(),
            }]
        );
        assert_eq!(store.streak().unwrap().unwrap().current, 7);

        store
            .enqueue_answer("c1", &CheckinAnswer::Choice { index: 1 }, 1)
            .unwrap();
        let opened = pb::CheckinUpdated {
            checkin: Some(pb::Checkin {
                checkin_id: "c1".into(),
                status: pb::CheckinStatus::Open as i32,
                partner_answered: true,
                ..Default::default()
            }),
        };
        let events = store
            .transaction(|tx| on_checkin_updated(tx, opened, "me"))
            .unwrap();
        let [ClientEvent::CheckinUpdated { checkin }] = events.as_slice() else {
            panic!("one check-in update, got {events:?}");
        };
        assert!(checkin.partner_answered);
        assert_eq!(checkin.my_answer, Some(CheckinAnswer::Choice { index: 1 }));
        assert!(checkin.my_answer_pending);
        assert_eq!(stored_checkins(&store, "me", true).unwrap().len(), 1);

        let fired = pb::RoutineFired {
            routine: Some(pb::Routine {
                routine_id: "r1".into(),
                ..Default::default()
            }),
            checkin: Some(pb::Checkin {
                checkin_id: "c2".into(),
                status: pb::CheckinStatus::Open as i32,
                routine_id: "r1".into(),
                ..Default::default()
            }),
        };
        let events = store
            .transaction(|tx| on_routine_fired(tx, fired, "me"))
            .unwrap();
        assert!(matches!(
            events.as_slice(),
            [ClientEvent::RoutineFired { routine, checkin: Some(c) }]
                if routine.routine_id == "r1" && c.routine_id.as_deref() == Some("r1")
        ));
        assert!(store.checkin("c2").unwrap().is_some());

        // Without a streak the event says nothing and keeps the snapshot.
        let empty = pb::StreakUpdated::default();
        assert!(
            store
                .transaction(|tx| on_streak_updated(tx, empty, "me"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.streak().unwrap().unwrap().current, 7);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn routine_changes_name_the_routine() {
        let deleted = on_routines_changed(
            pb::RoutinesChanged {
                routine: None,
                routine_id: "r1".into(),
                deleted: true,
            },
            "me",
        );
        assert_eq!(
            deleted,
            vec![ClientEvent::RoutinesChanged {
                routine_id: "r1".into(),
                routine: None,
                deleted: true
            }]
        );
        let changed = on_routines_changed(
            pb::RoutinesChanged {
                routine: Some(pb::Routine {
                    routine_id: "r2".into(),
                    created_by_account_id: "me".into(),
                    ..Default::default()
                }),
                routine_id: String::new(),
                deleted: false,
            },
            "me",
        );
        assert!(matches!(
            changed.as_slice(),
            [ClientEvent::RoutinesChanged { routine_id, routine: Some(r), deleted: false }]
                if routine_id == "r2" && r.created_by_me
        ));
    }
}
