//! Together time and the next meeting as stored. A proposal lapses unless confirmed; together
//! time in force keeps the taps between the two (the tap batch holds them, see
//! [`crate::taps`]) and ending it (by hand, at its `until` from the jobs tick, or when the
//! couple ends) delivers them quietly, tells both partners and clears the holds, in one
//! transaction. A meeting whose time has come turns into together time from the jobs tick.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use uuid::Uuid;

use crate::auth::Caller;
use crate::couples::{self, require_couple};
use crate::db::{from_us, timestamp_us, to_us};
use crate::delivery::{account_devices, new_event, to_each};
use crate::domain::together::{
    CONFIRM_WITHIN, DEFAULT_MEETING_MINUTES, DEFAULT_MINUTES, ends_at, meeting_instant, minutes,
};
use crate::domain::validate;
use crate::error::{Error, Refusal, Result};
use crate::store::TAP_COLUMNS;
use crate::taps::{tap_from_any, tap_to_pb};
use crate::txn::WriteTx;

/// A checked `StartTogether`: the client's id and the length once confirmed.
pub fn check_start(req: &pb::StartTogetherRequest) -> Result<(String, u32)> {
    let client_id = validate::uuid("client_id", &req.client_id)?.to_string();
    Ok((client_id, minutes("minutes", req.minutes, DEFAULT_MINUTES)?))
}

/// A checked `ConfirmTogether`: the together id.
pub fn check_confirm(req: &pb::ConfirmTogetherRequest) -> Result<String> {
    Ok(validate::uuid("together_id", &req.together_id)?.to_string())
}

const COLUMNS: &str = "id, couple_id, started_by, proposed_at_us, confirmed_at_us, until_us, \
     minutes, ended_at_us, end_kind, ended_by, meeting_id";

/// Together time as stored.
#[derive(Debug, Clone)]
struct TogetherRow {
    id: String,
    couple_id: String,
    started_by: String,
    proposed_at_us: i64,
    confirmed_at_us: Option<i64>,
    until_us: i64,
    minutes: i64,
    ended_at_us: Option<i64>,
    end_kind: i64,
    ended_by: Option<String>,
    meeting_id: Option<String>,
}

fn from_row(r: &AnyRow) -> Result<TogetherRow> {
    Ok(TogetherRow {
        id: r.try_get("id")?,
        couple_id: r.try_get("couple_id")?,
        started_by: r.try_get("started_by")?,
        proposed_at_us: r.try_get("proposed_at_us")?,
        confirmed_at_us: r.try_get("confirmed_at_us")?,
        until_us: r.try_get("until_us")?,
        minutes: r.try_get("minutes")?,
        ended_at_us: r.try_get("ended_at_us")?,
        end_kind: r.try_get("end_kind")?,
        ended_by: r.try_get("ended_by")?,
        meeting_id: r.try_get("meeting_id")?,
    })
}

async fn select(
    conn: &mut AnyConnection,
    filter: &str,
    binds: &[&str],
) -> Result<Option<TogetherRow>> {
    let sql = format!("SELECT {COLUMNS} FROM together WHERE {filter}");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(*b);
    }
    q.fetch_optional(conn)
        .await?
        .map(|r| from_row(&r))
        .transpose()
}

/// The couple's together time proposed or in force.
async fn open_of(conn: &mut AnyConnection, couple_id: &str) -> Result<Option<TogetherRow>> {
    select(conn, "couple_id = $1 AND ended_at_us IS NULL", &[couple_id]).await
}

async fn held_count(conn: &mut AnyConnection, id: &str) -> Result<u32> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM together_held_taps WHERE together_id = $1")
            .bind(id)
            .fetch_one(conn)
            .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

fn to_pb(t: &TogetherRow, held_taps: u32) -> pb::Together {
    pb::Together {
        together_id: t.id.clone(),
        started_by_account_id: t.started_by.clone(),
        proposed_at: Some(timestamp_us(t.proposed_at_us)),
        confirmed_at: t.confirmed_at_us.map(timestamp_us),
        until: Some(timestamp_us(t.until_us)),
        minutes: u32::try_from(t.minutes).unwrap_or(0),
        ended_at: t.ended_at_us.map(timestamp_us),
        end: t.end_kind as i32,
        ended_by_account_id: t.ended_by.clone().unwrap_or_default(),
        held_taps,
        meeting_id: t.meeting_id.clone().unwrap_or_default(),
    }
}

/// A `TogetherUpdated` event.
fn updated(
    change: pb::TogetherChange,
    together: Option<&pb::Together>,
    meeting: Option<&pb::Meeting>,
    silent: bool,
    released: &[String],
    now: DateTime<Utc>,
) -> pb::Event {
    new_event(
        Payload::TogetherUpdated(Box::new(pb::TogetherUpdated {
            change: change as i32,
            together: together.cloned(),
            meeting: meeting.cloned(),
            silent,
            released_tap_ids: released.to_vec(),
        })),
        now,
    )
}

/// Tells every device of both partners, silently; the caller's own device (which has the
/// answer) is left out when given.
async fn tell_both_silently(
    tx: &mut WriteTx,
    couple_id: &str,
    but: Option<&str>,
    event: &pb::Event,
) -> Result<()> {
    let sides = couples::sides(tx.conn(), couple_id).await?;
    for account in [sides.a.clone(), sides.b.clone()] {
        let mut devices = account_devices(tx.conn(), &account).await?;
        devices.retain(|d| Some(d.as_str()) != but);
        tx.tell(to_each(&devices, event));
    }
    Ok(())
}

/// Tells the partner's devices (silently inside their quiet hours) and the caller's other
/// devices (silently).
async fn tell_partner(
    tx: &mut WriteTx,
    caller: &Caller,
    couple_id: &str,
    now: DateTime<Utc>,
    event: impl Fn(bool) -> pb::Event,
) -> Result<()> {
    let conn = tx.conn();
    let partner = couples::partner(conn, couple_id, &caller.account_id).await?;
    let quiet = partner.clock(now).in_quiet_hours;
    let to_partner = account_devices(conn, &partner.id).await?;
    let mut mine = account_devices(conn, &caller.account_id).await?;
    mine.retain(|d| *d != caller.device_id);
    tx.tell(to_each(&to_partner, &event(quiet)));
    tx.tell(to_each(&mine, &event(true)));
    Ok(())
}

/// `StartTogether`, in the group commit: idempotent on the client id; at most one together
/// time proposed or in force per couple.
pub async fn start(
    tx: &mut WriteTx,
    caller: &Caller,
    client_id: String,
    minutes: u32,
    now: DateTime<Utc>,
) -> Result<pb::StartTogetherResponse> {
    let conn = tx.conn();
    let (_, couple_id) = require_couple(conn, &caller.account_id).await?;
    couples::lock_any(conn, &[&couple_id]).await?;
    if let Some(t) = select(
        conn,
        "started_by = $1 AND client_id = $2",
        &[&caller.account_id, &client_id],
    )
    .await?
    {
        let held = held_count(conn, &t.id).await?;
        return Ok(pb::StartTogetherResponse {
            together: Some(to_pb(&t, held)),
        });
    }
    if open_of(conn, &couple_id).await?.is_some() {
        return Err(Error::Refused(Refusal::TogetherAlready));
    }
    let row = TogetherRow {
        id: Uuid::now_v7().to_string(),
        couple_id: couple_id.clone(),
        started_by: caller.account_id.clone(),
        proposed_at_us: to_us(now),
        confirmed_at_us: None,
        until_us: to_us(now + CONFIRM_WITHIN),
        minutes: i64::from(minutes),
        ended_at_us: None,
        end_kind: 0,
        ended_by: None,
        meeting_id: None,
    };
    insert(conn, &row, &client_id).await?;
    let together = to_pb(&row, 0);
    tell_partner(tx, caller, &couple_id, now, |silent| {
        updated(
            pb::TogetherChange::Proposed,
            Some(&together),
            None,
            silent,
            &[],
            now,
        )
    })
    .await?;
    Ok(pb::StartTogetherResponse {
        together: Some(together),
    })
}

async fn insert(conn: &mut AnyConnection, row: &TogetherRow, client_id: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO together (id, couple_id, started_by, client_id, proposed_at_us, \
         confirmed_at_us, until_us, minutes, meeting_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&row.id)
    .bind(&row.couple_id)
    .bind(&row.started_by)
    .bind(client_id)
    .bind(row.proposed_at_us)
    .bind(row.confirmed_at_us)
    .bind(row.until_us)
    .bind(row.minutes)
    .bind(row.meeting_id.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts a proposal in force at `at`: it lasts its length from then.
async fn put_in_force(
    conn: &mut AnyConnection,
    t: &mut TogetherRow,
    at: DateTime<Utc>,
) -> Result<()> {
    t.confirmed_at_us = Some(to_us(at));
    t.until_us = to_us(ends_at(at, u32::try_from(t.minutes).unwrap_or(0)));
    sqlx::query(
        "UPDATE together SET confirmed_at_us = $1, until_us = $2, minutes = $3, meeting_id = $4 \
         WHERE id = $5",
    )
    .bind(t.confirmed_at_us)
    .bind(t.until_us)
    .bind(t.minutes)
    .bind(t.meeting_id.as_deref())
    .bind(&t.id)
    .execute(conn)
    .await?;
    Ok(())
}

/// `ConfirmTogether`, in the group commit: the partner puts a proposal in force now.
pub async fn confirm(
    tx: &mut WriteTx,
    caller: &Caller,
    id: &str,
    now: DateTime<Utc>,
) -> Result<pb::ConfirmTogetherResponse> {
    let conn = tx.conn();
    let (_, couple_id) = require_couple(conn, &caller.account_id).await?;
    couples::lock_any(conn, &[&couple_id]).await?;
    let Some(mut t) = select(conn, "id = $1 AND couple_id = $2", &[id, &couple_id]).await? else {
        return Err(Error::NotFound("together time"));
    };
    if t.started_by == caller.account_id && t.meeting_id.is_none() {
        return Err(Error::invalid(
            "together_id",
            "is your own proposal; your partner confirms it",
        ));
    }
    if t.confirmed_at_us.is_some() && t.ended_at_us.is_none() {
        // Confirmed already (a retry, or both confirming): nothing changes.
        let held = held_count(conn, &t.id).await?;
        return Ok(pb::ConfirmTogetherResponse {
            together: Some(to_pb(&t, held)),
        });
    }
    if t.ended_at_us.is_some() || from_us(t.until_us) <= now {
        return Err(Error::Refused(Refusal::TogetherEnded));
    }
    put_in_force(conn, &mut t, now).await?;
    let together = to_pb(&t, 0);
    let event = updated(
        pb::TogetherChange::Started,
        Some(&together),
        None,
        true,
        &[],
        now,
    );
    tell_both_silently(tx, &couple_id, Some(&caller.device_id), &event).await?;
    Ok(pb::ConfirmTogetherResponse {
        together: Some(together),
    })
}

/// Ends together time `t` (committed by the caller's transaction): delivers the taps kept
/// during it to their recipients quietly (each marked `released`), tells both partners with
/// the taps released, and clears the holds.
async fn finish(
    tx: &mut WriteTx,
    mut t: TogetherRow,
    end: pb::TogetherEnd,
    by: Option<&str>,
    ended: DateTime<Utc>,
    now: DateTime<Utc>,
    but: Option<&str>,
) -> Result<pb::Together> {
    let conn = tx.conn();
    t.ended_at_us = Some(to_us(ended));
    t.end_kind = end as i64;
    t.ended_by = by.map(str::to_owned);
    sqlx::query(
        "UPDATE together SET ended_at_us = $1, end_kind = $2, ended_by = $3 \
         WHERE id = $4 AND ended_at_us IS NULL",
    )
    .bind(t.ended_at_us)
    .bind(t.end_kind)
    .bind(t.ended_by.as_deref())
    .bind(&t.id)
    .execute(&mut *conn)
    .await?;
    let sql = format!(
        "SELECT {TAP_COLUMNS} FROM taps WHERE id IN \
         (SELECT tap_id FROM together_held_taps WHERE together_id = $1) ORDER BY created_at_us, id"
    );
    let taps = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&t.id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(tap_from_any)
        .collect::<Result<Vec<_>>>()?;
    sqlx::query("DELETE FROM together_held_taps WHERE together_id = $1")
        .bind(&t.id)
        .execute(&mut *conn)
        .await?;
    let sides = couples::sides(conn, &t.couple_id).await?;
    let devices = [
        account_devices(conn, &sides.a).await?,
        account_devices(conn, &sides.b).await?,
    ];
    for tap in &taps {
        let event = new_event(
            Payload::TapReceived(pb::TapReceived {
                tap: Some(tap_to_pb(tap)?),
                silent: true,
                from_self: false,
                released: true,
            }),
            now,
        );
        let to = if tap.sender_account_id == sides.a {
            &devices[1]
        } else {
            &devices[0]
        };
        tx.tell(to_each(to, &event));
    }
    let released: Vec<String> = taps.iter().map(|t| t.id.clone()).collect();
    let together = to_pb(&t, u32::try_from(released.len()).unwrap_or(u32::MAX));
    let event = updated(
        pb::TogetherChange::Ended,
        Some(&together),
        None,
        true,
        &released,
        now,
    );
    for d in devices.iter() {
        let mut d = d.clone();
        d.retain(|x| Some(x.as_str()) != but);
        tx.tell(to_each(&d, &event));
    }
    Ok(together)
}

/// `EndTogether`, in the group commit: either partner ends together time in force, the
/// proposer withdraws a proposal, or the partner declines it.
pub async fn end(
    tx: &mut WriteTx,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<pb::EndTogetherResponse> {
    let conn = tx.conn();
    let (_, couple_id) = require_couple(conn, &caller.account_id).await?;
    couples::lock_any(conn, &[&couple_id]).await?;
    let Some(t) = open_of(conn, &couple_id).await? else {
        return Err(Error::NotFound("together time proposed or in force"));
    };
    let how = if t.confirmed_at_us.is_some() {
        pb::TogetherEnd::ByHand
    } else if t.started_by == caller.account_id {
        pb::TogetherEnd::Withdrawn
    } else {
        pb::TogetherEnd::Declined
    };
    let together = finish(
        tx,
        t,
        how,
        Some(&caller.account_id),
        now,
        now,
        Some(&caller.device_id),
    )
    .await?;
    Ok(pb::EndTogetherResponse {
        together: Some(together),
    })
}

const MEETING_COLUMNS: &str =
    "id, set_by, local_date, local_time, time_zone, starts_at_us, together_minutes, set_at_us";

fn meeting_from_row(r: &AnyRow) -> Result<pb::Meeting> {
    Ok(pb::Meeting {
        meeting_id: r.try_get("id")?,
        set_by_account_id: r.try_get("set_by")?,
        local_date: r.try_get("local_date")?,
        local_time: r.try_get("local_time")?,
        time_zone: r.try_get("time_zone")?,
        starts_at: Some(timestamp_us(r.try_get("starts_at_us")?)),
        together_minutes: u32::try_from(r.try_get::<i64, _>("together_minutes")?).unwrap_or(0),
        set_at: Some(timestamp_us(r.try_get("set_at_us")?)),
    })
}

async fn meeting_of(conn: &mut AnyConnection, couple_id: &str) -> Result<Option<pb::Meeting>> {
    let sql = format!("SELECT {MEETING_COLUMNS} FROM meetings WHERE couple_id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(couple_id)
        .fetch_optional(conn)
        .await?
        .map(|r| meeting_from_row(&r))
        .transpose()
}

/// `SetMeeting`, in the group commit: sets or replaces the couple's next meeting.
pub async fn set_meeting(
    tx: &mut WriteTx,
    caller: &Caller,
    req: pb::SetMeetingRequest,
    now: DateTime<Utc>,
) -> Result<pb::SetMeetingResponse> {
    let conn = tx.conn();
    let (me, couple_id) = require_couple(conn, &caller.account_id).await?;
    let zone = if req.time_zone.trim().is_empty() {
        me.zone
    } else {
        validate::time_zone("time_zone", &req.time_zone)?
    };
    let (date, time, at) = meeting_instant(zone, &req.local_date, &req.local_time, now)?;
    let together_minutes = minutes(
        "together_minutes",
        req.together_minutes,
        DEFAULT_MEETING_MINUTES,
    )?;
    couples::lock_any(conn, &[&couple_id]).await?;
    let meeting = pb::Meeting {
        meeting_id: Uuid::now_v7().to_string(),
        set_by_account_id: caller.account_id.clone(),
        local_date: date.format("%Y-%m-%d").to_string(),
        local_time: time.format("%H:%M").to_string(),
        time_zone: zone.name().to_owned(),
        starts_at: Some(timestamp_us(to_us(at))),
        together_minutes,
        set_at: Some(timestamp_us(to_us(now))),
    };
    sqlx::query("DELETE FROM meetings WHERE couple_id = $1")
        .bind(&couple_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO meetings (couple_id, id, set_by, local_date, local_time, time_zone, \
         starts_at_us, together_minutes, set_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&couple_id)
    .bind(&meeting.meeting_id)
    .bind(&caller.account_id)
    .bind(&meeting.local_date)
    .bind(&meeting.local_time)
    .bind(&meeting.time_zone)
    .bind(to_us(at))
    .bind(i64::from(together_minutes))
    .bind(to_us(now))
    .execute(&mut *conn)
    .await?;
    tell_partner(tx, caller, &couple_id, now, |silent| {
        updated(
            pb::TogetherChange::MeetingSet,
            None,
            Some(&meeting),
            silent,
            &[],
            now,
        )
    })
    .await?;
    Ok(pb::SetMeetingResponse {
        meeting: Some(meeting),
    })
}

/// `ClearMeeting`, in the group commit.
pub async fn clear_meeting(
    tx: &mut WriteTx,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<pb::ClearMeetingResponse> {
    let conn = tx.conn();
    let (_, couple_id) = require_couple(conn, &caller.account_id).await?;
    couples::lock_any(conn, &[&couple_id]).await?;
    let Some(meeting) = meeting_of(conn, &couple_id).await? else {
        return Ok(pb::ClearMeetingResponse { cleared: false });
    };
    sqlx::query("DELETE FROM meetings WHERE couple_id = $1")
        .bind(&couple_id)
        .execute(&mut *conn)
        .await?;
    tell_partner(tx, caller, &couple_id, now, |silent| {
        updated(
            pb::TogetherChange::MeetingCleared,
            None,
            Some(&meeting),
            silent,
            &[],
            now,
        )
    })
    .await?;
    Ok(pb::ClearMeetingResponse { cleared: true })
}

/// `GetTogether`: the couple's together time proposed or in force, and next meeting.
pub async fn get(pool: &AnyPool, caller: &Caller) -> Result<pb::GetTogetherResponse> {
    let mut conn = pool.acquire().await?;
    let (_, couple_id) = require_couple(&mut conn, &caller.account_id).await?;
    let together = match open_of(&mut conn, &couple_id).await? {
        Some(t) => Some(to_pb(&t, held_count(&mut conn, &t.id).await?)),
        None => None,
    };
    Ok(pb::GetTogetherResponse {
        together,
        meeting: meeting_of(&mut conn, &couple_id).await?,
    })
}

/// Together times whose `until` has come (proposals lapsing, together time ending), as
/// `(id, couple)`, for the jobs tick.
pub async fn due(pool: &AnyPool, now: DateTime<Utc>) -> Result<Vec<(String, String)>> {
    crate::jobs::due_in_couples(
        pool,
        "SELECT id, couple_id FROM together WHERE ended_at_us IS NULL AND until_us <= $1 \
         ORDER BY until_us LIMIT 500",
        now,
    )
    .await
}

/// Meetings whose time has come, as `(meeting, couple)`, for the jobs tick.
pub async fn meetings_due(pool: &AnyPool, now: DateTime<Utc>) -> Result<Vec<(String, String)>> {
    crate::jobs::due_in_couples(
        pool,
        "SELECT id, couple_id FROM meetings WHERE starts_at_us <= $1 \
         ORDER BY starts_at_us LIMIT 500",
        now,
    )
    .await
}

/// Ends due together time at its `until`: a proposal nobody confirmed lapses, together time in
/// force ends and its taps are delivered (safe from several instances: the second finds it
/// ended). Whether this call ended it.
pub async fn expire(
    tx: &mut WriteTx,
    id: &str,
    couple_id: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let conn = tx.conn();
    couples::lock_any(conn, &[couple_id]).await?;
    let Some(t) = select(conn, "id = $1 AND ended_at_us IS NULL", &[id])
        .await?
        .filter(|t| from_us(t.until_us) <= now)
    else {
        return Ok(false);
    };
    let how = if t.confirmed_at_us.is_some() {
        pb::TogetherEnd::AtUntil
    } else {
        pb::TogetherEnd::NotConfirmed
    };
    let until = from_us(t.until_us);
    finish(tx, t, how, None, until, now, None).await?;
    Ok(true)
}

/// Turns a due meeting into together time at its start (a proposal waiting then is confirmed
/// by it; together time in force already goes on). Whether this call did it.
pub async fn meet(
    tx: &mut WriteTx,
    meeting_id: &str,
    couple_id: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let conn = tx.conn();
    couples::lock_any(conn, &[couple_id]).await?;
    let Some(meeting) = meeting_of(conn, couple_id)
        .await?
        .filter(|m| m.meeting_id == meeting_id)
    else {
        return Ok(false);
    };
    let starts = meeting
        .starts_at
        .as_ref()
        .and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos as u32))
        .ok_or_else(|| Error::Corrupt(format!("meeting {meeting_id} has no start")))?;
    if starts > now {
        return Ok(false);
    }
    sqlx::query("DELETE FROM meetings WHERE couple_id = $1")
        .bind(couple_id)
        .execute(&mut *conn)
        .await?;
    let open = open_of(conn, couple_id).await?;
    let mut t = match open {
        Some(t) if t.confirmed_at_us.is_some() => {
            // Together already: the meeting is simply used up (both apps forget it).
            let held = held_count(conn, &t.id).await?;
            let event = updated(
                pb::TogetherChange::Started,
                Some(&to_pb(&t, held)),
                Some(&meeting),
                true,
                &[],
                now,
            );
            tell_both_silently(tx, couple_id, None, &event).await?;
            return Ok(true);
        }
        Some(mut t) => {
            t.minutes = i64::from(meeting.together_minutes);
            t.meeting_id = Some(meeting.meeting_id.clone());
            t
        }
        None => {
            let t = TogetherRow {
                id: Uuid::now_v7().to_string(),
                couple_id: couple_id.to_owned(),
                started_by: meeting.set_by_account_id.clone(),
                proposed_at_us: to_us(now),
                confirmed_at_us: None,
                until_us: to_us(now),
                minutes: i64::from(meeting.together_minutes),
                ended_at_us: None,
                end_kind: 0,
                ended_by: None,
                meeting_id: Some(meeting.meeting_id.clone()),
            };
            insert(conn, &t, &meeting.meeting_id).await?;
            t
        }
    };
    // It starts when it was planned, unless the tick came late by more than its length.
    let at = if ends_at(starts, meeting.together_minutes) > now {
        starts
    } else {
        now
    };
    put_in_force(conn, &mut t, at).await?;
    let together = to_pb(&t, 0);
    let event = updated(
        pb::TogetherChange::Started,
        Some(&together),
        Some(&meeting),
        true,
        &[],
        now,
    );
    tell_both_silently(tx, couple_id, None, &event).await?;
    Ok(true)
}

/// Ends a couple's together time (its kept taps are delivered) and forgets its next meeting,
/// when the couple ends.
pub async fn end_all(tx: &mut WriteTx, couple_id: &str, now: DateTime<Utc>) -> Result<()> {
    if let Some(t) = open_of(tx.conn(), couple_id).await? {
        finish(tx, t, pb::TogetherEnd::CoupleEnded, None, now, now, None).await?;
    }
    sqlx::query("DELETE FROM meetings WHERE couple_id = $1")
        .bind(couple_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}
