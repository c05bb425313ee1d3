//! Routines as stored: each partner's next firing, claimed once by compare-and-set, fired at
//! the local time in the partner's own zone, past their quiet hours, made up after downtime
//! when less than an hour late and otherwise skipped and recorded.

use chrono::{DateTime, NaiveTime, Utc, Weekday};
use prost::Message;
use sqlx::{AnyConnection, AnyPool, Row};
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use uuid::Uuid;

use crate::accounts;
use crate::auth::Caller;
use crate::checkins;
use crate::couples::{self, Sides, require_couple};
use crate::db::{timestamp_us, to_us};
use crate::delivery::{account_devices, new_event};
use crate::domain::prompts::{self, Category};
use crate::domain::schedule::{self, CatchUp, WeekdaySet};
use crate::domain::streaks::Side;
use crate::domain::validate;
use crate::error::{Error, Refusal, Result};
use crate::store::AccountRow;
use crate::streaks;
use crate::txn::WriteTx;

/// Longest reminder text, in characters.
pub const MAX_REMINDER_CHARS: usize = tapline_proto::limits::REMINDER_CHARS;
/// Firings listed per routine.
const RECENT_FIRINGS: i64 = 6;

/// A checked routine spec and what the scheduler needs of it.
#[derive(Debug, Clone)]
pub struct Spec {
    wire: pb::RoutineSpec,
    days: WeekdaySet,
    time: NaiveTime,
    category: Option<Category>,
}

fn weekday_from_pb(v: i32) -> Option<Weekday> {
    Some(match pb::Weekday::try_from(v).ok()? {
        pb::Weekday::Monday => Weekday::Mon,
        pb::Weekday::Tuesday => Weekday::Tue,
        pb::Weekday::Wednesday => Weekday::Wed,
        pb::Weekday::Thursday => Weekday::Thu,
        pb::Weekday::Friday => Weekday::Fri,
        pb::Weekday::Saturday => Weekday::Sat,
        pb::Weekday::Sunday => Weekday::Sun,
        pb::Weekday::Unspecified => return None,
    })
}

/// Checks a routine spec.
pub fn check_spec(spec: Option<pb::RoutineSpec>) -> Result<Spec> {
    let mut wire = spec.ok_or_else(|| Error::invalid("spec", "is required"))?;
    wire.name = validate::display_name("spec.name", &wire.name)?;
    let kind = pb::RoutineKind::try_from(wire.kind).unwrap_or(pb::RoutineKind::Unspecified);
    let mut category = None;
    match kind {
        pb::RoutineKind::Checkin => {
            category = Some(
                checkins::category_from_pb(wire.checkin_category).ok_or_else(|| {
                    Error::invalid(
                        "spec.checkin_category",
                        "is required for a check-in routine",
                    )
                })?,
            );
            wire.reminder_text.clear();
        }
        pb::RoutineKind::Reminder => {
            let text = wire.reminder_text.trim().to_owned();
            if text.is_empty() {
                return Err(Error::invalid(
                    "spec.reminder_text",
                    "is required for a reminder",
                ));
            }
            validate::short_text("spec.reminder_text", &text, MAX_REMINDER_CHARS)?;
            wire.reminder_text = text;
            wire.checkin_category = 0;
        }
        pb::RoutineKind::Unspecified => {
            return Err(Error::invalid("spec.kind", "must be checkin or reminder"));
        }
    }
    if wire.days.is_empty() || wire.days.len() > 7 {
        return Err(Error::invalid(
            "spec.days",
            "must name 1-7 days of the week",
        ));
    }
    let mut days = WeekdaySet::EMPTY;
    for d in &wire.days {
        days.insert(
            weekday_from_pb(*d)
                .ok_or_else(|| Error::invalid("spec.days", "must be days of the week"))?,
        );
    }
    wire.days.sort_unstable();
    wire.days.dedup();
    let t = wire
        .time
        .ok_or_else(|| Error::invalid("spec.time", "is required"))?;
    let time = NaiveTime::from_hms_opt(t.hour, t.minute, 0)
        .filter(|_| t.hour < 24 && t.minute < 60)
        .ok_or_else(|| {
            Error::invalid("spec.time", "must be a time of day: hour 0-23, minute 0-59")
        })?;
    Ok(Spec {
        wire,
        days,
        time,
        category,
    })
}

/// A stored routine.
#[derive(Debug, Clone)]
struct Stored {
    id: String,
    couple_id: String,
    spec: Spec,
    created_by: String,
    created_at_us: i64,
}

async fn load(conn: &mut AnyConnection, id: &str, couple_id: &str) -> Result<Stored> {
    let row = sqlx::query("SELECT id, couple_id, spec, created_by, created_at_us FROM routines WHERE id = $1 AND couple_id = $2 AND deleted = 0")
        .bind(id)
        .bind(couple_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(Error::NotFound("routine"))?;
    stored_from_row(&row)
}

fn stored_from_row(row: &sqlx::any::AnyRow) -> Result<Stored> {
    let bytes: Vec<u8> = row.try_get("spec")?;
    let wire = pb::RoutineSpec::decode(bytes.as_slice())
        .map_err(|e| Error::Corrupt(format!("routine spec: {e}")))?;
    Ok(Stored {
        id: row.try_get("id")?,
        couple_id: row.try_get("couple_id")?,
        spec: check_spec(Some(wire))
            .map_err(|e| Error::Corrupt(format!("stored routine spec: {e}")))?,
        created_by: row.try_get("created_by")?,
        created_at_us: row.try_get("created_at_us")?,
    })
}

/// The local date of the latest firing (or skip) of `routine` for `account`; firings stored
/// before dates were recorded are read in `fallback`.
async fn last_day(
    conn: &mut AnyConnection,
    routine_id: &str,
    account_id: &str,
    fallback: chrono_tz::Tz,
) -> Result<Option<chrono::NaiveDate>> {
    let row = sqlx::query(
        "SELECT local_day, scheduled_us FROM routine_firings \
         WHERE routine_id = $1 AND account_id = $2 ORDER BY scheduled_us DESC LIMIT 1",
    )
    .bind(routine_id)
    .bind(account_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(
        match row.try_get::<Option<String>, _>("local_day")? {
            Some(day) => crate::store::parse_day(&day)?,
            None => schedule::local_day(crate::db::from_us(row.try_get("scheduled_us")?), fallback),
        },
    ))
}

/// Sets (or clears, when paused) the next firing of `routine` for `account` after `after`, on
/// a local date that has not had one.
async fn schedule_for(
    conn: &mut AnyConnection,
    routine: &Stored,
    account: &AccountRow,
    after: DateTime<Utc>,
) -> Result<()> {
    let next = if routine.spec.wire.paused {
        None
    } else {
        let last = last_day(conn, &routine.id, &account.id, account.zone).await?;
        schedule::next_new_day(
            after,
            account.zone,
            routine.spec.time,
            routine.spec.days,
            last,
        )
    };
    write_schedule(conn, routine, account, next).await
}

/// Stores `next` as the next firing of `routine` for `account` (none: clears it).
async fn write_schedule(
    conn: &mut AnyConnection,
    routine: &Stored,
    account: &AccountRow,
    next: Option<DateTime<Utc>>,
) -> Result<()> {
    match next {
        Some(nominal) => {
            let deliver = schedule::defer_past_quiet(nominal, account.zone, account.quiet);
            sqlx::query(
                "INSERT INTO routine_schedules (routine_id, account_id, nominal_us, deliver_us) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (routine_id, account_id) DO UPDATE SET nominal_us = excluded.nominal_us, deliver_us = excluded.deliver_us",
            )
            .bind(&routine.id)
            .bind(&account.id)
            .bind(to_us(nominal))
            .bind(to_us(deliver))
            .execute(conn)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM routine_schedules WHERE routine_id = $1 AND account_id = $2")
                .bind(&routine.id)
                .bind(&account.id)
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}

/// Recomputes every routine of `account` (after a zone or quiet-hours change). After a move
/// from zone `moved_from`, a firing the move jumped past today fires at once (see
/// [`schedule::next_after_move`]); a routine never fires twice on one local date.
pub async fn reschedule_account(
    conn: &mut AnyConnection,
    account: &AccountRow,
    moved_from: Option<chrono_tz::Tz>,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(couple_id) = &account.couple_id else {
        return Ok(());
    };
    let rows = sqlx::query("SELECT id, couple_id, spec, created_by, created_at_us FROM routines WHERE couple_id = $1 AND deleted = 0")
        .bind(couple_id)
        .fetch_all(&mut *conn)
        .await?;
    for row in &rows {
        let routine = stored_from_row(row)?;
        let Some(old) = moved_from.filter(|_| !routine.spec.wire.paused) else {
            schedule_for(conn, &routine, account, now).await?;
            continue;
        };
        let pending: Option<i64> = sqlx::query_scalar(
            "SELECT nominal_us FROM routine_schedules WHERE routine_id = $1 AND account_id = $2",
        )
        .bind(&routine.id)
        .bind(&account.id)
        .fetch_optional(&mut *conn)
        .await?;
        let last = last_day(conn, &routine.id, &account.id, old).await?;
        let next = schedule::next_after_move(
            now,
            old,
            account.zone,
            routine.spec.time,
            routine.spec.days,
            pending.map(crate::db::from_us),
            last,
        );
        write_schedule(conn, &routine, account, next).await?;
    }
    Ok(())
}

/// Stops every routine of a couple from firing (at unpairing).
pub async fn unschedule_couple(conn: &mut AnyConnection, couple_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM routine_schedules WHERE routine_id IN (SELECT id FROM routines WHERE couple_id = $1)")
        .bind(couple_id)
        .execute(conn)
        .await?;
    Ok(())
}

async fn view(conn: &mut AnyConnection, r: &Stored, viewer: &str) -> Result<pb::Routine> {
    let next: Option<i64> = sqlx::query(
        "SELECT deliver_us FROM routine_schedules WHERE routine_id = $1 AND account_id = $2",
    )
    .bind(&r.id)
    .bind(viewer)
    .fetch_optional(&mut *conn)
    .await?
    .map(|row| row.try_get("deliver_us"))
    .transpose()?;
    let rows = sqlx::query(
        "SELECT account_id, scheduled_us, fired_at_us, skipped FROM routine_firings WHERE routine_id = $1 ORDER BY scheduled_us DESC LIMIT $2",
    )
    .bind(&r.id)
    .bind(RECENT_FIRINGS)
    .fetch_all(&mut *conn)
    .await?;
    let recent_firings = rows
        .iter()
        .map(|f| {
            Ok(pb::RoutineFiring {
                account_id: f.try_get("account_id")?,
                scheduled_for: Some(timestamp_us(f.try_get("scheduled_us")?)),
                fired_at: f
                    .try_get::<Option<i64>, _>("fired_at_us")?
                    .map(timestamp_us),
                skipped: f.try_get::<i64, _>("skipped")? != 0,
            })
        })
        .collect::<Result<_>>()?;
    Ok(pb::Routine {
        routine_id: r.id.clone(),
        spec: Some(r.spec.wire.clone()),
        created_by_account_id: r.created_by.clone(),
        created_at: Some(timestamp_us(r.created_at_us)),
        next_firing: next.map(timestamp_us),
        recent_firings,
    })
}

/// Tells both partners a routine changed (each with their own next firing).
async fn announce_change(
    tx: &mut WriteTx,
    sides: &Sides,
    routine: &Stored,
    deleted: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut event = new_event(Payload::Heartbeat(pb::Heartbeat::default()), now);
    for side in [Side::A, Side::B] {
        let account = sides.account(side);
        let routine_view = if deleted {
            None
        } else {
            Some(view(tx.conn(), routine, account).await?)
        };
        event.payload = Some(Payload::RoutinesChanged(pb::RoutinesChanged {
            routine: routine_view,
            routine_id: routine.id.clone(),
            deleted,
        }));
        let devices = account_devices(tx.conn(), account).await?;
        tx.tell(devices.into_iter().map(|d| (d, event.clone())));
    }
    Ok(())
}

async fn schedule_both(
    conn: &mut AnyConnection,
    sides: &Sides,
    routine: &Stored,
    now: DateTime<Utc>,
) -> Result<()> {
    for side in [Side::A, Side::B] {
        let account = accounts::load(conn, sides.account(side)).await?;
        schedule_for(conn, routine, &account, now).await?;
    }
    Ok(())
}

/// The caller's couple, locked (lock order step 1-2).
async fn locked_couple(conn: &mut AnyConnection, caller: &Caller) -> Result<String> {
    let (_, couple_id) = require_couple(conn, &caller.account_id).await?;
    couples::lock_any(conn, &[&couple_id]).await?;
    Ok(couple_id)
}

/// Creates a routine for the couple; both partners are told.
pub async fn create(
    tx: &mut WriteTx,
    caller: &Caller,
    spec: Spec,
    now: DateTime<Utc>,
) -> Result<pb::CreateRoutineResponse> {
    let conn = tx.conn();
    let couple_id = locked_couple(conn, caller).await?;
    let count: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM routines WHERE couple_id = $1 AND deleted = 0")
            .bind(&couple_id)
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?;
    if count >= 50 {
        return Err(Error::Refused(Refusal::TooManyRoutines));
    }
    let routine = Stored {
        id: Uuid::now_v7().to_string(),
        couple_id: couple_id.clone(),
        spec,
        created_by: caller.account_id.clone(),
        created_at_us: to_us(now),
    };
    sqlx::query(
        "INSERT INTO routines (id, couple_id, spec, created_by, created_at_us) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&routine.id)
    .bind(&couple_id)
    .bind(routine.spec.wire.encode_to_vec())
    .bind(&caller.account_id)
    .bind(routine.created_at_us)
    .execute(&mut *conn)
    .await?;
    let sides = couples::sides(conn, &couple_id).await?;
    schedule_both(conn, &sides, &routine, now).await?;
    announce_change(tx, &sides, &routine, false, now).await?;
    let out = view(tx.conn(), &routine, &caller.account_id).await?;
    Ok(pb::CreateRoutineResponse { routine: Some(out) })
}

/// Replaces a routine's spec (pausing or resuming it too); both partners are told.
pub async fn update(
    tx: &mut WriteTx,
    caller: &Caller,
    id: &str,
    spec: Spec,
    now: DateTime<Utc>,
) -> Result<pb::UpdateRoutineResponse> {
    let conn = tx.conn();
    let couple_id = locked_couple(conn, caller).await?;
    let mut routine = load(conn, id, &couple_id).await?;
    routine.spec = spec;
    sqlx::query("UPDATE routines SET spec = $1 WHERE id = $2")
        .bind(routine.spec.wire.encode_to_vec())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let sides = couples::sides(conn, &couple_id).await?;
    schedule_both(conn, &sides, &routine, now).await?;
    announce_change(tx, &sides, &routine, false, now).await?;
    let out = view(tx.conn(), &routine, &caller.account_id).await?;
    Ok(pb::UpdateRoutineResponse { routine: Some(out) })
}

/// Deletes a routine; both partners are told. Its history is kept.
pub async fn delete(tx: &mut WriteTx, caller: &Caller, id: &str, now: DateTime<Utc>) -> Result<()> {
    let conn = tx.conn();
    let couple_id = locked_couple(conn, caller).await?;
    let routine = load(conn, id, &couple_id).await?;
    sqlx::query("UPDATE routines SET deleted = 1 WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM routine_schedules WHERE routine_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let sides = couples::sides(conn, &couple_id).await?;
    announce_change(tx, &sides, &routine, true, now).await
}

/// The couple's routines, with the caller's next firing of each.
pub async fn list(pool: &AnyPool, caller: &Caller) -> Result<pb::ListRoutinesResponse> {
    let mut conn = pool.acquire().await?;
    let (_, couple_id) = require_couple(&mut conn, &caller.account_id).await?;
    let rows = sqlx::query(
        "SELECT id, couple_id, spec, created_by, created_at_us FROM routines \
         WHERE couple_id = $1 AND deleted = 0 ORDER BY created_at_us",
    )
    .bind(&couple_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut routines = Vec::with_capacity(rows.len());
    for row in &rows {
        let r = stored_from_row(row)?;
        routines.push(view(&mut conn, &r, &caller.account_id).await?);
    }
    Ok(pb::ListRoutinesResponse { routines })
}

/// A schedule row that is due.
#[derive(Debug, Clone)]
pub struct Due {
    routine_id: String,
    account_id: String,
    nominal_us: i64,
    deliver_us: i64,
}

/// The firings due at `now` (up to 200, oldest first).
pub async fn due(pool: &AnyPool, now: DateTime<Utc>) -> Result<Vec<Due>> {
    let rows = sqlx::query(
        "SELECT routine_id, account_id, nominal_us, deliver_us FROM routine_schedules \
         WHERE deliver_us <= $1 ORDER BY deliver_us LIMIT 200",
    )
    .bind(to_us(now))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Due {
                routine_id: row.try_get("routine_id")?,
                account_id: row.try_get("account_id")?,
                nominal_us: row.try_get("nominal_us")?,
                deliver_us: row.try_get("deliver_us")?,
            })
        })
        .collect()
}

/// Fires (or skips and records) one due firing, claimed by a compare-and-set of its schedule
/// row and recorded under a unique key: safe from several instances at once. `None` when
/// somebody else had claimed it, or the routine is gone.
pub async fn fire(tx: &mut WriteTx, due: &Due, now: DateTime<Utc>) -> Result<Option<CatchUp>> {
    let Due {
        routine_id,
        account_id,
        nominal_us,
        deliver_us,
    } = due;
    let (routine_id, account_id, nominal_us, deliver_us) = (
        routine_id.as_str(),
        account_id.as_str(),
        *nominal_us,
        *deliver_us,
    );
    let conn = tx.conn();
    let account = accounts::load(conn, account_id).await?;
    let Some(couple_id) = account.couple_id.clone() else {
        sqlx::query("DELETE FROM routine_schedules WHERE routine_id = $1 AND account_id = $2")
            .bind(routine_id)
            .bind(account_id)
            .execute(&mut *conn)
            .await?;
        return Ok(None);
    };
    couples::lock_any(conn, &[&couple_id]).await?;
    let routine = match load(conn, routine_id, &couple_id).await {
        Ok(r) => r,
        Err(Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    // Claim: move the schedule on, only if nobody else did.
    let nominal = crate::db::from_us(nominal_us);
    let next = schedule::next_firing(nominal, account.zone, routine.spec.time, routine.spec.days);
    let claimed = match next {
        Some(n) => {
            let d = schedule::defer_past_quiet(n, account.zone, account.quiet);
            sqlx::query(
                "UPDATE routine_schedules SET nominal_us = $1, deliver_us = $2 \
                 WHERE routine_id = $3 AND account_id = $4 AND nominal_us = $5",
            )
            .bind(to_us(n))
            .bind(to_us(d))
            .bind(routine_id)
            .bind(account_id)
            .bind(nominal_us)
            .execute(&mut *conn)
            .await?
        }
        None => {
            sqlx::query(
                "DELETE FROM routine_schedules \
                 WHERE routine_id = $1 AND account_id = $2 AND nominal_us = $3",
            )
            .bind(routine_id)
            .bind(account_id)
            .bind(nominal_us)
            .execute(&mut *conn)
            .await?
        }
    };
    if claimed.rows_affected() == 0 {
        return Ok(None);
    }
    let decision = schedule::catch_up(crate::db::from_us(deliver_us), now);
    let recorded = sqlx::query(
        "INSERT INTO routine_firings (routine_id, account_id, scheduled_us, fired_at_us, skipped, \
         local_day) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (routine_id, account_id, scheduled_us) DO NOTHING",
    )
    .bind(routine_id)
    .bind(account_id)
    .bind(deliver_us)
    .bind((decision == CatchUp::FireNow).then_some(to_us(now)))
    .bind(i64::from(decision == CatchUp::Skip))
    .bind(crate::store::day_str(schedule::local_day(
        nominal,
        account.zone,
    )))
    .execute(&mut *conn)
    .await?;
    if recorded.rows_affected() == 0 {
        return Ok(None);
    }
    if decision == CatchUp::FireNow {
        let sides = couples::sides(conn, &couple_id).await?;
        let me = sides.side_of(account_id);
        let checkin = match routine.spec.category {
            Some(category) => Some(routine_checkin(tx, &routine, &sides, me, category, now).await?),
            None => None,
        };
        let conn = tx.conn();
        if let Some(c) = &checkin {
            sqlx::query(
                "UPDATE routine_firings SET checkin_id = $1 \
                 WHERE routine_id = $2 AND account_id = $3 AND scheduled_us = $4",
            )
            .bind(&c.id)
            .bind(routine_id)
            .bind(account_id)
            .bind(deliver_us)
            .execute(&mut *conn)
            .await?;
        }
        let fired = pb::RoutineFired {
            routine: Some(view(conn, &routine, account_id).await?),
            checkin: checkin.as_ref().map(|c| checkins::view(c, me)),
        };
        let event = new_event(Payload::RoutineFired(Box::new(fired)), now);
        let devices = account_devices(conn, account_id).await?;
        tx.tell(devices.into_iter().map(|d| (d, event.clone())));
    } else {
        tracing::info!(
            routine = routine_id,
            account = account_id,
            "routine firing skipped: more than an hour late"
        );
    }
    Ok(Some(decision))
}

/// The check-in a firing asks `me` to answer: the one the partner's firing of this routine
/// opened and `me` has not been asked yet, or a new one.
async fn routine_checkin(
    tx: &mut WriteTx,
    routine: &Stored,
    sides: &Sides,
    me: Side,
    category: Category,
    now: DateTime<Utc>,
) -> Result<checkins::Stored> {
    let conn = tx.conn();
    let account_id = sides.account(me);
    let open = sqlx::query(
        "SELECT c.id FROM checkins c WHERE c.routine_id = $1 AND c.phase = 'open' AND NOT EXISTS \
         (SELECT 1 FROM routine_firings f WHERE f.checkin_id = c.id AND f.account_id = $2) \
         ORDER BY c.opened_at_us DESC LIMIT 1",
    )
    .bind(&routine.id)
    .bind(account_id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = open {
        let id: String = row.try_get("id")?;
        let c = checkins::load(conn, &id, &routine.couple_id).await?;
        return checkins::extend_for_late_partner(tx, c, me, sides, now).await;
    }
    let today = accounts::local_today(conn, account_id, now).await?;
    let prompt = prompts::pick(category, streaks::couple_uuid(&routine.couple_id), today);
    let c = checkins::open(
        conn,
        &routine.couple_id,
        prompt,
        None,
        None,
        Some(&routine.id),
        now,
    )
    .await?;
    Ok(c)
}
