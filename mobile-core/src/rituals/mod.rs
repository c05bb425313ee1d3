//! Streaks, check-ins and routines: their rules (dates, ids, answers) and how their events
//! change the local store. The exported calls are in `api/rituals.rs`.

pub(crate) mod answers;

use std::collections::HashMap;

use chrono::NaiveDate;
use rusqlite::Connection;
use tapline_proto::v1 as pb;

use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::store::Store;

/// Longest pause, in days.
const MAX_PAUSE_DAYS: i64 = tapline_proto::limits::PAUSE_DAYS;
/// Check-ins asked for per list.
pub(crate) const LIST_CHECKINS: u32 = 50;
/// Attempts of one "ask my partner" call when the network fails (same client id each time).
pub(crate) const ASK_ATTEMPTS: u32 = 3;

fn parse_date(field: &str, s: &str) -> CoreResult<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| CoreError::Invalid(format!("{field}: expected a date YYYY-MM-DD, got {s:?}")))
}

/// Checks a pause's dates locally (the server also checks that it starts within 14 days).
pub(crate) fn pause_dates(from_date: &str, to_date: &str) -> CoreResult<(String, String)> {
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

pub(crate) fn id_arg(field: &str, id: &str) -> CoreResult<String> {
    let id = id.trim();
    if id.is_empty() || id.len() > 100 || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CoreError::Invalid(format!("{field}: is not an id")));
    }
    Ok(id.to_owned())
}

pub(crate) fn missing(what: &str) -> CoreError {
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

pub(crate) fn with_local_answers(
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
