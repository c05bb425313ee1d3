//! "I need a moment" as stored: spaces asked for, answered and ended, and the taps held for
//! the asker while one is in force (the tap batch holds them, see [`crate::taps`]). Ending a
//! space (by hand, at its `until` from the jobs tick, or when the couple ends) delivers the
//! held taps together, tells both partners, and clears the holds, in one transaction.

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
use crate::domain::space::{ends_at, instant, is_due};
use crate::domain::validate;
use crate::error::{Error, Refusal, Result};
use crate::store::TAP_COLUMNS;
use crate::taps::{tap_from_any, tap_to_pb};
use crate::txn::WriteTx;

/// A checked `AskForSpace`.
#[derive(Debug, Clone)]
pub struct Ask {
    /// The client's id for the ask (a retry returns the same space).
    pub client_id: String,
    /// Why.
    pub reason: pb::SpaceReason,
    /// When it ends by itself, if the asker said.
    pub until: Option<DateTime<Utc>>,
}

/// Checks an `AskForSpace` request's shape (the `until` bounds are checked against the clock
/// when it is stored).
pub fn check_ask(req: &pb::AskForSpaceRequest) -> Result<Ask> {
    let client_id = validate::uuid("client_id", &req.client_id)?.to_string();
    let reason = match pb::SpaceReason::try_from(req.reason) {
        Ok(pb::SpaceReason::Unspecified) | Err(_) => {
            return Err(Error::invalid(
                "reason",
                "is required: NEED_SPACE, OVERWHELMED or CALL_ME_LATER",
            ));
        }
        Ok(r) => r,
    };
    let until = req
        .until
        .as_ref()
        .map(|t| instant("until", t))
        .transpose()?;
    Ok(Ask {
        client_id,
        reason,
        until,
    })
}

/// Checks an `AnswerSpace` request: the space id and the answer.
pub fn check_answer(req: &pb::AnswerSpaceRequest) -> Result<(String, pb::SpaceAnswer)> {
    let id = validate::uuid("space_id", &req.space_id)?.to_string();
    match pb::SpaceAnswer::try_from(req.answer) {
        Ok(pb::SpaceAnswer::Unspecified) | Err(_) => Err(Error::invalid(
            "answer",
            "is required: IM_HERE or TAKE_YOUR_TIME",
        )),
        Ok(a) => Ok((id, a)),
    }
}

const COLUMNS: &str = "id, couple_id, account_id, reason, started_at_us, until_us, open_ended, \
     ended_at_us, answer, answered_at_us";

/// A space as stored.
#[derive(Debug, Clone)]
struct SpaceRow {
    id: String,
    couple_id: String,
    account_id: String,
    reason: i64,
    started_at_us: i64,
    until_us: i64,
    open_ended: bool,
    ended_at_us: Option<i64>,
    answer: i64,
    answered_at_us: Option<i64>,
}

fn from_row(r: &AnyRow) -> Result<SpaceRow> {
    Ok(SpaceRow {
        id: r.try_get("id")?,
        couple_id: r.try_get("couple_id")?,
        account_id: r.try_get("account_id")?,
        reason: r.try_get("reason")?,
        started_at_us: r.try_get("started_at_us")?,
        until_us: r.try_get("until_us")?,
        open_ended: r.try_get::<i64, _>("open_ended")? != 0,
        ended_at_us: r.try_get("ended_at_us")?,
        answer: r.try_get("answer")?,
        answered_at_us: r.try_get("answered_at_us")?,
    })
}

async fn select(
    conn: &mut AnyConnection,
    filter: &str,
    binds: &[&str],
) -> Result<Option<SpaceRow>> {
    let sql = format!("SELECT {COLUMNS} FROM spaces WHERE {filter}");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(*b);
    }
    q.fetch_optional(conn)
        .await?
        .map(|r| from_row(&r))
        .transpose()
}

async fn held_count(conn: &mut AnyConnection, space_id: &str) -> Result<u32> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM held_taps WHERE space_id = $1")
        .bind(space_id)
        .fetch_one(conn)
        .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

fn to_pb(s: &SpaceRow, held_taps: u32) -> pb::Space {
    pb::Space {
        space_id: s.id.clone(),
        asked_by_account_id: s.account_id.clone(),
        reason: s.reason as i32,
        started_at: Some(timestamp_us(s.started_at_us)),
        until: Some(timestamp_us(s.until_us)),
        open_ended: s.open_ended,
        ended_at: s.ended_at_us.map(timestamp_us),
        answer: s.answer as i32,
        answered_at: s.answered_at_us.map(timestamp_us),
        held_taps,
    }
}

/// A `SpaceUpdated` event.
fn updated(
    space: &pb::Space,
    change: pb::SpaceChange,
    silent: bool,
    released: &[String],
    now: DateTime<Utc>,
) -> pb::Event {
    new_event(
        Payload::SpaceUpdated(Box::new(pb::SpaceUpdated {
            space: Some(space.clone()),
            change: change as i32,
            silent,
            released_tap_ids: released.to_vec(),
        })),
        now,
    )
}

/// The caller's devices but the one calling (it has the answer).
async fn other_devices(conn: &mut AnyConnection, caller: &Caller) -> Result<Vec<String>> {
    let mut devices = account_devices(conn, &caller.account_id).await?;
    devices.retain(|d| *d != caller.device_id);
    Ok(devices)
}

/// `AskForSpace`, in the group commit: idempotent on the client id; at most one space in force
/// per person. The partner's devices are told (silently inside their quiet hours, and the
/// asker is told so), the asker's other devices silently.
pub async fn ask(
    tx: &mut WriteTx,
    caller: &Caller,
    ask: Ask,
    now: DateTime<Utc>,
) -> Result<pb::AskForSpaceResponse> {
    let conn = tx.conn();
    let (_, couple_id) = require_couple(conn, &caller.account_id).await?;
    couples::lock_any(conn, &[&couple_id]).await?;
    let partner = couples::partner(conn, &couple_id, &caller.account_id).await?;
    let partner_clock = partner.clock(now);
    let arrives_silently = partner_clock.in_quiet_hours;
    if let Some(s) = select(
        conn,
        "account_id = $1 AND client_id = $2",
        &[&caller.account_id, &ask.client_id],
    )
    .await?
    {
        let held = held_count(conn, &s.id).await?;
        return Ok(pb::AskForSpaceResponse {
            space: Some(to_pb(&s, held)),
            partner_clock: Some(partner_clock),
            arrives_silently,
        });
    }
    if select(
        conn,
        "account_id = $1 AND ended_at_us IS NULL",
        &[&caller.account_id],
    )
    .await?
    .is_some()
    {
        return Err(Error::Refused(Refusal::SpaceAlreadyAsked));
    }
    let (until, open_ended) = ends_at(now, ask.until)?;
    let row = SpaceRow {
        id: Uuid::now_v7().to_string(),
        couple_id: couple_id.clone(),
        account_id: caller.account_id.clone(),
        reason: ask.reason as i64,
        started_at_us: to_us(now),
        until_us: to_us(until),
        open_ended,
        ended_at_us: None,
        answer: 0,
        answered_at_us: None,
    };
    sqlx::query(
        "INSERT INTO spaces (id, couple_id, account_id, client_id, reason, started_at_us, \
         until_us, open_ended) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(&row.couple_id)
    .bind(&row.account_id)
    .bind(&ask.client_id)
    .bind(row.reason)
    .bind(row.started_at_us)
    .bind(row.until_us)
    .bind(i64::from(row.open_ended))
    .execute(&mut *conn)
    .await?;
    let space = to_pb(&row, 0);
    let to_partner = account_devices(conn, &partner.id).await?;
    let mine = other_devices(conn, caller).await?;
    tx.tell(to_each(
        &to_partner,
        &updated(&space, pb::SpaceChange::Asked, arrives_silently, &[], now),
    ));
    tx.tell(to_each(
        &mine,
        &updated(&space, pb::SpaceChange::Asked, true, &[], now),
    ));
    Ok(pb::AskForSpaceResponse {
        space: Some(space),
        partner_clock: Some(partner_clock),
        arrives_silently,
    })
}

/// `AnswerSpace`, in the group commit: the partner's one-tap answer to a space in force (the
/// latest answer counts). The asker's devices are told (silently in their quiet hours).
pub async fn answer(
    tx: &mut WriteTx,
    caller: &Caller,
    space_id: &str,
    answer: pb::SpaceAnswer,
    now: DateTime<Utc>,
) -> Result<pb::AnswerSpaceResponse> {
    let conn = tx.conn();
    let (_, couple_id) = require_couple(conn, &caller.account_id).await?;
    couples::lock_any(conn, &[&couple_id]).await?;
    let Some(mut s) = select(
        conn,
        "id = $1 AND couple_id = $2",
        &[space_id, couple_id.as_str()],
    )
    .await?
    else {
        return Err(Error::NotFound("space"));
    };
    if s.account_id == caller.account_id {
        return Err(Error::invalid(
            "space_id",
            "is your own space; only your partner answers it",
        ));
    }
    if s.ended_at_us.is_some() {
        return Err(Error::Refused(Refusal::SpaceEnded));
    }
    s.answer = answer as i64;
    s.answered_at_us = Some(to_us(now));
    sqlx::query("UPDATE spaces SET answer = $1, answered_at_us = $2 WHERE id = $3")
        .bind(s.answer)
        .bind(s.answered_at_us)
        .bind(&s.id)
        .execute(&mut *conn)
        .await?;
    let space = to_pb(&s, held_count(conn, &s.id).await?);
    let asker = crate::accounts::load(conn, &s.account_id).await?;
    let quiet = asker.clock(now).in_quiet_hours;
    let to_asker = account_devices(conn, &asker.id).await?;
    let mine = other_devices(conn, caller).await?;
    tx.tell(to_each(
        &to_asker,
        &updated(&space, pb::SpaceChange::Answered, quiet, &[], now),
    ));
    tx.tell(to_each(
        &mine,
        &updated(&space, pb::SpaceChange::Answered, true, &[], now),
    ));
    Ok(pb::AnswerSpaceResponse { space: Some(space) })
}

/// Ends space `s` at `ended` (committed by the caller's transaction): delivers its held taps
/// to the asker's devices together (each marked `released`, silent in the asker's quiet
/// hours), tells both partners with the taps released, and clears the holds.
async fn release(
    tx: &mut WriteTx,
    mut s: SpaceRow,
    ended: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<pb::Space> {
    let conn = tx.conn();
    s.ended_at_us = Some(to_us(ended));
    sqlx::query("UPDATE spaces SET ended_at_us = $1 WHERE id = $2 AND ended_at_us IS NULL")
        .bind(s.ended_at_us)
        .bind(&s.id)
        .execute(&mut *conn)
        .await?;
    let sql = format!(
        "SELECT {TAP_COLUMNS} FROM taps WHERE id IN \
         (SELECT tap_id FROM held_taps WHERE space_id = $1) ORDER BY created_at_us, id"
    );
    let taps = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&s.id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(tap_from_any)
        .collect::<Result<Vec<_>>>()?;
    sqlx::query("DELETE FROM held_taps WHERE space_id = $1")
        .bind(&s.id)
        .execute(&mut *conn)
        .await?;
    let released: Vec<String> = taps.iter().map(|t| t.id.clone()).collect();
    let space = to_pb(&s, u32::try_from(released.len()).unwrap_or(u32::MAX));
    let asker = crate::accounts::load(conn, &s.account_id).await?;
    let quiet = asker.clock(now).in_quiet_hours;
    let to_asker = account_devices(conn, &asker.id).await?;
    for t in &taps {
        let event = new_event(
            Payload::TapReceived(pb::TapReceived {
                tap: Some(tap_to_pb(t)?),
                silent: quiet,
                from_self: false,
                released: true,
            }),
            now,
        );
        tx.tell(to_each(&to_asker, &event));
    }
    let conn = tx.conn();
    let partner = couples::partner(conn, &s.couple_id, &s.account_id).await;
    tx.tell(to_each(
        &to_asker,
        &updated(&space, pb::SpaceChange::Ended, true, &released, now),
    ));
    // The partner may be gone already (the couple ended with an account deleted).
    if let Ok(partner) = partner {
        let quiet = partner.clock(now).in_quiet_hours;
        let devices = account_devices(tx.conn(), &partner.id).await?;
        tx.tell(to_each(
            &devices,
            &updated(&space, pb::SpaceChange::Ended, quiet, &released, now),
        ));
    }
    Ok(space)
}

/// `EndSpace`, in the group commit: the asker ends their space in force now.
pub async fn end(
    tx: &mut WriteTx,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<pb::EndSpaceResponse> {
    let conn = tx.conn();
    let (_, couple_id) = require_couple(conn, &caller.account_id).await?;
    couples::lock_any(conn, &[&couple_id]).await?;
    let Some(s) = select(
        conn,
        "account_id = $1 AND ended_at_us IS NULL",
        &[&caller.account_id],
    )
    .await?
    else {
        return Err(Error::NotFound("space in force"));
    };
    let space = release(tx, s, now, now).await?;
    Ok(pb::EndSpaceResponse { space: Some(space) })
}

/// Spaces in force whose `until` has come, as `(space, couple)`, for the jobs tick.
pub async fn due(pool: &AnyPool, now: DateTime<Utc>) -> Result<Vec<(String, String)>> {
    crate::jobs::due_in_couples(
        pool,
        "SELECT id, couple_id FROM spaces WHERE ended_at_us IS NULL AND until_us <= $1 \
         ORDER BY until_us LIMIT 500",
        now,
    )
    .await
}

/// Ends a due space at its `until` (safe to run from several instances: the second finds it
/// ended). Whether this call ended it.
pub async fn expire(
    tx: &mut WriteTx,
    space_id: &str,
    couple_id: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let conn = tx.conn();
    couples::lock_any(conn, &[couple_id]).await?;
    let Some(s) = select(conn, "id = $1 AND ended_at_us IS NULL", &[space_id])
        .await?
        .filter(|s| is_due(from_us(s.until_us), now))
    else {
        return Ok(false);
    };
    let until = from_us(s.until_us);
    release(tx, s, until, now).await?;
    Ok(true)
}

/// Ends every space in force of a couple that is ending (its held taps are delivered: they
/// were sent while the two were together).
pub async fn end_all(tx: &mut WriteTx, couple_id: &str, now: DateTime<Utc>) -> Result<()> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM spaces WHERE couple_id = $1 AND ended_at_us IS NULL"
    )))
    .bind(couple_id)
    .fetch_all(tx.conn())
    .await?;
    for r in &rows {
        release(tx, from_row(r)?, now, now).await?;
    }
    Ok(())
}

/// `GetSpace`: the caller's and the partner's spaces in force.
pub async fn get(pool: &AnyPool, caller: &Caller) -> Result<pb::GetSpaceResponse> {
    let mut conn = pool.acquire().await?;
    let (_, couple_id) = require_couple(&mut conn, &caller.account_id).await?;
    let mut out = pb::GetSpaceResponse::default();
    let sql = format!("SELECT {COLUMNS} FROM spaces WHERE couple_id = $1 AND ended_at_us IS NULL");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&couple_id)
        .fetch_all(&mut *conn)
        .await?;
    for r in &rows {
        let s = from_row(r)?;
        let space = to_pb(&s, held_count(&mut conn, &s.id).await?);
        if s.account_id == caller.account_id {
            out.mine = Some(space);
        } else {
            out.partners = Some(space);
        }
    }
    Ok(out)
}
