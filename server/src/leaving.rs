//! Leaving with one's data: the export of everything the server keeps that a person may see
//! about themself (`ExportMyData`, format [`EXPORT_FORMAT`], described in docs/privacy.md),
//! and the deletion of their account (`DeleteAccount`).

use chrono::{DateTime, SecondsFormat, Utc};
use prost::Message;
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};
use tapline_proto::v1 as pb;
use tokio::sync::mpsc;

use crate::accounts;
use crate::auth::Caller;
use crate::checkins;
use crate::db::from_us;
use crate::domain::streaks::Side;
use crate::error::{Error, Result};
use crate::txn::WriteTx;

/// The `format` field of an export.
pub const EXPORT_FORMAT: &str = "tapline.export.v1";

/// What `DeleteAccount` needs in `confirm` (case-insensitive, surrounding spaces ignored).
pub const DELETE_CONFIRMATION: &str = "delete my account";

/// Taps read (and sent as one piece) at a time.
pub const TAP_PAGE: i64 = 500;

/// Pieces of an export waiting to be sent: a slow reader holds the export back, not memory.
const PIECES_IN_FLIGHT: usize = 4;

/// Checks the confirmation of a deletion.
pub fn check_confirm(confirm: &str) -> Result<()> {
    if confirm.trim().eq_ignore_ascii_case(DELETE_CONFIRMATION) {
        Ok(())
    } else {
        Err(Error::invalid(
            "confirm",
            format!("must be \"{DELETE_CONFIRMATION}\" (deleting an account cannot be undone)"),
        ))
    }
}

fn ts(us: i64) -> Value {
    Value::String(from_us(us).to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

fn opt_ts(us: Option<i64>) -> Value {
    us.map_or(Value::Null, ts)
}

/// An enum value's wire name without its prefix, in lower case (`DEVICE_KIND_WATCH` → `watch`).
fn enum_name(full: &str, prefix: &str) -> Value {
    Value::String(full.trim_start_matches(prefix).to_ascii_lowercase())
}

fn hhmm(minute: u32) -> Value {
    Value::String(format!("{:02}:{:02}", minute / 60, minute % 60))
}

fn answer(a: &Option<pb::Answer>) -> Value {
    use pb::answer::Value as A;
    match a.as_ref().and_then(|a| a.value.as_ref()) {
        None => Value::Null,
        Some(A::Scale(v)) => json!({ "scale": v }),
        Some(A::Choice(v)) => json!({ "choice": v }),
        Some(A::Emoji(v)) => json!({ "emoji": v }),
        Some(A::Text(v)) => json!({ "text": v }),
    }
}

/// One couple the person was (or is) in, as the export needs it.
struct CoupleOf {
    id: String,
    side: Side,
    partner_id: String,
}

impl CoupleOf {
    /// The couple from a `couples` row with `id`, `account_a` and `account_b`, seen by `me`.
    fn from_row(r: &AnyRow, me: &str) -> Result<CoupleOf> {
        let a: String = r.try_get("account_a")?;
        let b: String = r.try_get("account_b")?;
        let (side, partner_id) = if a == me { (Side::A, b) } else { (Side::B, a) };
        Ok(CoupleOf {
            id: r.try_get("id")?,
            side,
            partner_id,
        })
    }
}

/// What the tap pages need to know, read with the head.
struct TapScope {
    me: String,
    /// Partners whose felt/seen receipts the person may see (they share receipts).
    sharing_partners: Vec<String>,
}

/// Starts the export of the caller's data: the head (account, settings, devices, couples with
/// their streak, check-ins and routines) is read before this returns, so an error comes back
/// as the call's status; the taps follow page by page in the returned pieces.
pub async fn export(
    pool: &AnyPool,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<mpsc::Receiver<Result<String>>> {
    let mut conn = pool.acquire().await?;
    let (head, scope) = export_head(&mut conn, caller, now).await?;
    drop(conn);
    let (tx, rx) = mpsc::channel(PIECES_IN_FLIGHT);
    let pool = pool.clone();
    tokio::spawn(async move {
        if tx.send(Ok(head)).await.is_err() {
            return;
        }
        let mut after: Option<(i64, String)> = None;
        let mut first = true;
        loop {
            let page = match tap_page(&pool, &scope, after.as_ref()).await {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let Some((piece, last)) = page else { break };
            let piece = if first { piece } else { format!(",{piece}") };
            first = false;
            if tx.send(Ok(piece)).await.is_err() {
                return;
            }
            after = Some(last);
        }
        let _ = tx.send(Ok("]}".to_owned())).await;
    });
    Ok(rx)
}

async fn export_head(
    conn: &mut AnyConnection,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<(String, TapScope)> {
    let me = accounts::load(conn, &caller.account_id).await?;
    let zones = sqlx::query(
        "SELECT from_us, zone FROM zone_history WHERE account_id = $1 ORDER BY from_us",
    )
    .bind(&me.id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| Ok(json!({ "from": ts(r.try_get("from_us")?), "time_zone": r.try_get::<String, _>("zone")? })))
    .collect::<Result<Vec<_>>>()?;
    let devices = export_devices(conn, &me.id).await?;

    let couple_rows = sqlx::query(
        "SELECT id, account_a, account_b, created_at_us, ended_at_us, ended_by FROM couples \
         WHERE account_a = $1 OR account_b = $1 ORDER BY created_at_us",
    )
    .bind(&me.id)
    .fetch_all(&mut *conn)
    .await?;
    let mut couples_json = Vec::with_capacity(couple_rows.len());
    let mut sharing_partners = Vec::new();
    for r in &couple_rows {
        let c = CoupleOf::from_row(r, &me.id)?;
        let partner = accounts::load(conn, &c.partner_id).await?;
        if partner.receipts_enabled {
            sharing_partners.push(partner.id.clone());
        }
        let current = me.couple_id.as_deref() == Some(c.id.as_str());
        let ended_by: Option<String> = r.try_get("ended_by")?;
        couples_json.push(json!({
            "couple_id": c.id,
            "current": current,
            "partner": {
                "account_id": c.partner_id,
                // Only the partner of the current couple, as they are shown today.
                "display_name": if current { Value::String(partner.display_name.clone()) } else { Value::Null },
            },
            "started_at": ts(r.try_get("created_at_us")?),
            "ended_at": opt_ts(r.try_get("ended_at_us")?),
            "ended_by": match ended_by {
                None => Value::Null,
                Some(by) if by == me.id => Value::String("me".into()),
                Some(_) => Value::String("partner".into()),
            },
            "streak": export_streak(conn, &c).await?,
            "routines": export_routines(conn, &c, &me.id).await?,
            "checkins": export_checkins(conn, &c).await?,
            "spaces": export_spaces(conn, &c).await?,
            "together": export_together(conn, &c).await?,
            "meeting": export_meeting(conn, &c).await?,
            "questions": export_questions(conn, &c).await?,
            "reconnect": export_reconnect(conn, &c, &me.id).await?,
            "moments": export_moments(conn, &c, &me.id).await?,
        }));
    }

    let head = json!({
        "format": EXPORT_FORMAT,
        "exported_at": ts(now.timestamp_micros()),
        "account": {
            "account_id": me.id,
            "display_name": me.display_name,
            "time_zone": me.zone.name(),
            "created_at": ts(me.created_at_us),
        },
        "settings": {
            "quiet_hours": me.quiet.map_or(Value::Null, |q| json!({ "start": hhmm(q.start_min), "end": hhmm(q.end_min) })),
            "receipts_enabled": me.receipts_enabled,
        },
        "zone_history": zones,
        "devices": devices,
        "couples": couples_json,
    });
    // The document stays open: `"taps":[` and its pages follow.
    let mut head = serde_json::to_string(&head).map_err(|e| Error::Corrupt(e.to_string()))?;
    head.pop();
    head.push_str(",\"taps\":[");
    Ok((
        head,
        TapScope {
            me: me.id,
            sharing_partners,
        },
    ))
}

async fn export_devices(conn: &mut AnyConnection, me: &str) -> Result<Vec<Value>> {
    let rows = sqlx::query(
        "SELECT id, kind, platform, name, created_at_us, revoked_at_us FROM devices \
         WHERE account_id = $1 ORDER BY created_at_us, id",
    )
    .bind(me)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: String = r.try_get("id")?;
        let push = crate::push::of_device(conn, &id)
            .await?
            .into_iter()
            .map(|(target, at)| {
                json!({
                    "provider": enum_name(target.provider.as_str_name(), "PUSH_PROVIDER_"),
                    "registered_at": ts(at),
                })
            })
            .collect::<Vec<_>>();
        let kind = pb::DeviceKind::try_from(r.try_get::<i64, _>("kind")? as i32)
            .unwrap_or_default()
            .as_str_name();
        let platform = pb::Platform::try_from(r.try_get::<i64, _>("platform")? as i32)
            .unwrap_or_default()
            .as_str_name();
        out.push(json!({
            "device_id": id,
            "name": r.try_get::<String, _>("name")?,
            "kind": enum_name(kind, "DEVICE_KIND_"),
            "platform": enum_name(platform, "PLATFORM_"),
            "linked_at": ts(r.try_get("created_at_us")?),
            "signed_out_at": opt_ts(r.try_get("revoked_at_us")?),
            "push": push,
        }));
    }
    Ok(out)
}

async fn export_streak(conn: &mut AnyConnection, c: &CoupleOf) -> Result<Value> {
    let head = sqlx::query(
        "SELECT first_day, current_days, longest_days, freezes, calm FROM couple_streaks \
         WHERE couple_id = $1",
    )
    .bind(&c.id)
    .fetch_optional(&mut *conn)
    .await?;
    let days = sqlx::query(
        "SELECT day, actions_a, actions_b, status FROM streak_days WHERE couple_id = $1 \
         ORDER BY day",
    )
    .bind(&c.id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        let a: i64 = r.try_get("actions_a")?;
        let b: i64 = r.try_get("actions_b")?;
        let (mine, theirs) = if c.side == Side::A { (a, b) } else { (b, a) };
        Ok(json!({
            "date": r.try_get::<String, _>("day")?,
            "my_actions": mine,
            "partner_actions": theirs,
            "status": r.try_get::<String, _>("status")?,
        }))
    })
    .collect::<Result<Vec<_>>>()?;
    let pauses = sqlx::query(
        "SELECT from_day, to_day, by_account, created_at_us, cancelled FROM streak_pauses \
         WHERE couple_id = $1 ORDER BY created_at_us",
    )
    .bind(&c.id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        let by: String = r.try_get("by_account")?;
        Ok(json!({
            "from": r.try_get::<String, _>("from_day")?,
            "to": r.try_get::<String, _>("to_day")?,
            "by": if by == c.partner_id { "partner" } else { "me" },
            "set_at": ts(r.try_get("created_at_us")?),
            "cancelled": r.try_get::<i64, _>("cancelled")? != 0,
        }))
    })
    .collect::<Result<Vec<_>>>()?;
    let summary = match head {
        None => Value::Null,
        Some(r) => json!({
            "first_day": r.try_get::<String, _>("first_day")?,
            "current_days": r.try_get::<i64, _>("current_days")?,
            "longest_days": r.try_get::<i64, _>("longest_days")?,
            "freezes": r.try_get::<i64, _>("freezes")?,
            "calm": r.try_get::<i64, _>("calm")? != 0,
        }),
    };
    Ok(json!({ "summary": summary, "days": days, "pauses": pauses }))
}

async fn export_routines(conn: &mut AnyConnection, c: &CoupleOf, me: &str) -> Result<Vec<Value>> {
    let rows = sqlx::query(
        "SELECT id, spec, created_by, created_at_us FROM routines \
         WHERE couple_id = $1 AND deleted = 0 ORDER BY created_at_us",
    )
    .bind(&c.id)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: String = r.try_get("id")?;
        let bytes: Vec<u8> = r.try_get("spec")?;
        let spec = pb::RoutineSpec::decode(bytes.as_slice())
            .map_err(|e| Error::Corrupt(format!("routine spec: {e}")))?;
        let firings = sqlx::query(
            "SELECT scheduled_us, fired_at_us, skipped FROM routine_firings \
             WHERE routine_id = $1 AND account_id = $2 ORDER BY scheduled_us",
        )
        .bind(&id)
        .bind(me)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|f| {
            Ok(json!({
                "scheduled_for": ts(f.try_get("scheduled_us")?),
                "fired_at": opt_ts(f.try_get("fired_at_us")?),
                "skipped": f.try_get::<i64, _>("skipped")? != 0,
            }))
        })
        .collect::<Result<Vec<_>>>()?;
        let created_by: String = r.try_get("created_by")?;
        out.push(json!({
            "routine_id": id,
            "created_by": if created_by == me { "me" } else { "partner" },
            "created_at": ts(r.try_get("created_at_us")?),
            "name": spec.name,
            "kind": enum_name(spec.kind().as_str_name(), "ROUTINE_KIND_"),
            "checkin_category": enum_name(spec.checkin_category().as_str_name(), "PROMPT_CATEGORY_"),
            "reminder_text": spec.reminder_text,
            "days": spec.days().map(|d| enum_name(d.as_str_name(), "WEEKDAY_")).collect::<Vec<_>>(),
            "time": spec.time.map_or(Value::Null, |t| hhmm(t.hour * 60 + t.minute)),
            "paused": spec.paused,
            "my_firings": firings,
        }));
    }
    Ok(out)
}

fn who(by: Option<String>, c: &CoupleOf) -> Value {
    match by {
        None => Value::Null,
        Some(by) if by == c.partner_id => Value::String("partner".into()),
        Some(_) => Value::String("me".into()),
    }
}

async fn export_spaces(conn: &mut AnyConnection, c: &CoupleOf) -> Result<Vec<Value>> {
    let rows = sqlx::query(
        "SELECT id, account_id, reason, started_at_us, until_us, ended_at_us, answer \
         FROM spaces WHERE couple_id = $1 ORDER BY started_at_us",
    )
    .bind(&c.id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let reason = pb::SpaceReason::try_from(r.try_get::<i64, _>("reason")? as i32)
                .unwrap_or_default();
            let answer = pb::SpaceAnswer::try_from(r.try_get::<i64, _>("answer")? as i32)
                .unwrap_or_default();
            Ok(json!({
                "space_id": r.try_get::<String, _>("id")?,
                "asked_by": who(Some(r.try_get("account_id")?), c),
                "reason": enum_name(reason.as_str_name(), "SPACE_REASON_"),
                "started_at": ts(r.try_get("started_at_us")?),
                "until": ts(r.try_get("until_us")?),
                "ended_at": opt_ts(r.try_get("ended_at_us")?),
                "answer": enum_name(answer.as_str_name(), "SPACE_ANSWER_"),
            }))
        })
        .collect()
}

async fn export_together(conn: &mut AnyConnection, c: &CoupleOf) -> Result<Vec<Value>> {
    let rows = sqlx::query(
        "SELECT id, started_by, proposed_at_us, confirmed_at_us, until_us, ended_at_us, \
         end_kind, ended_by FROM together WHERE couple_id = $1 ORDER BY proposed_at_us",
    )
    .bind(&c.id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let end = pb::TogetherEnd::try_from(r.try_get::<i64, _>("end_kind")? as i32)
                .unwrap_or_default();
            Ok(json!({
                "together_id": r.try_get::<String, _>("id")?,
                "started_by": who(Some(r.try_get("started_by")?), c),
                "proposed_at": ts(r.try_get("proposed_at_us")?),
                "confirmed_at": opt_ts(r.try_get("confirmed_at_us")?),
                "until": ts(r.try_get("until_us")?),
                "ended_at": opt_ts(r.try_get("ended_at_us")?),
                "end": enum_name(end.as_str_name(), "TOGETHER_END_"),
                "ended_by": who(r.try_get("ended_by")?, c),
            }))
        })
        .collect()
}

async fn export_meeting(conn: &mut AnyConnection, c: &CoupleOf) -> Result<Value> {
    let row = sqlx::query(
        "SELECT set_by, local_date, local_time, time_zone, starts_at_us, together_minutes \
         FROM meetings WHERE couple_id = $1",
    )
    .bind(&c.id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else {
        return Ok(Value::Null);
    };
    Ok(json!({
        "set_by": who(Some(r.try_get("set_by")?), c),
        "local_date": r.try_get::<String, _>("local_date")?,
        "local_time": r.try_get::<String, _>("local_time")?,
        "time_zone": r.try_get::<String, _>("time_zone")?,
        "starts_at": ts(r.try_get("starts_at_us")?),
        "together_minutes": r.try_get::<i64, _>("together_minutes")?,
    }))
}

/// The couple's reconnect plans, with the steps that came for the caller (and which they
/// marked done).
async fn export_reconnect(conn: &mut AnyConnection, c: &CoupleOf, me: &str) -> Result<Value> {
    let plans = sqlx::query(
        "SELECT id, started_by, local_time, state, proposed_at_us, accepted_at_us, ended_at_us \
         FROM reconnect_plans WHERE couple_id = $1 ORDER BY proposed_at_us",
    )
    .bind(&c.id)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(plans.len());
    for p in &plans {
        let id: String = p.try_get("id")?;
        let steps = sqlx::query(
            "SELECT number, came_at_us, came_on, done_at_us FROM reconnect_steps \
             WHERE plan_id = $1 AND account_id = $2 ORDER BY number",
        )
        .bind(&id)
        .bind(me)
        .fetch_all(&mut *conn)
        .await?;
        let mut my_steps = Vec::with_capacity(steps.len());
        for s in &steps {
            let number: i64 = s.try_get("number")?;
            my_steps.push(json!({
                "number": number,
                "title": u32::try_from(number).ok().and_then(crate::domain::reconnect::step).map(|s| s.title),
                "came_at": ts(s.try_get("came_at_us")?),
                "came_on": s.try_get::<String, _>("came_on")?,
                "done_at": opt_ts(s.try_get("done_at_us")?),
            }));
        }
        let started_by: String = p.try_get("started_by")?;
        out.push(json!({
            "started_by": if started_by == me { "me" } else { "partner" },
            "local_time": p.try_get::<String, _>("local_time")?,
            "state": p.try_get::<String, _>("state")?,
            "proposed_at": ts(p.try_get("proposed_at_us")?),
            "accepted_at": opt_ts(p.try_get("accepted_at_us")?),
            "ended_at": opt_ts(p.try_get("ended_at_us")?),
            "my_steps": my_steps,
        }));
    }
    Ok(Value::Array(out))
}

/// The couple's moments, oldest kept first.
async fn export_moments(conn: &mut AnyConnection, c: &CoupleOf, me: &str) -> Result<Value> {
    let rows = sqlx::query(
        "SELECT id, kind, kept_by, text, prompt_text, source_id, happened_at_us, kept_at_us \
         FROM moments WHERE couple_id = $1 ORDER BY kept_at_us, id",
    )
    .bind(&c.id)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let kept_by: String = r.try_get("kept_by")?;
        let kind = i32::try_from(r.try_get::<i64, _>("kind")?)
            .ok()
            .and_then(|k| pb::MomentKind::try_from(k).ok())
            .unwrap_or_default();
        out.push(json!({
            "moment_id": r.try_get::<String, _>("id")?,
            "kind": enum_name(kind.as_str_name(), "MOMENT_KIND_"),
            "kept_by": if kept_by == me { "me" } else { "partner" },
            "text": r.try_get::<String, _>("text")?,
            "prompt": r.try_get::<String, _>("prompt_text")?,
            "source_id": r.try_get::<String, _>("source_id")?,
            "happened_at": ts(r.try_get("happened_at_us")?),
            "kept_at": ts(r.try_get("kept_at_us")?),
        }));
    }
    Ok(Value::Array(out))
}

/// The revealed deeper questions with both answers, and the caller's own answer to the
/// current one (the partner's stays hidden, as in the app).
async fn export_questions(conn: &mut AnyConnection, c: &CoupleOf) -> Result<Value> {
    let (mine, theirs) = match c.side {
        Side::A => ("answer_a", "answer_b"),
        Side::B => ("answer_b", "answer_a"),
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT position, {mine} AS mine, {theirs} AS theirs, revealed_at_us \
         FROM question_answers WHERE couple_id = $1 ORDER BY position"
    )))
    .bind(&c.id)
    .fetch_all(&mut *conn)
    .await?;
    let mut revealed = Vec::with_capacity(rows.len());
    for r in &rows {
        let position: i64 = r.try_get("position")?;
        revealed.push(json!({
            "number": position + 1,
            "question": crate::domain::questions::deck::question(position as usize).map(|(_, q)| q),
            "my_answer": r.try_get::<Option<String>, _>("mine")?,
            "partner_answer": r.try_get::<Option<String>, _>("theirs")?,
            "revealed_at": ts(r.try_get("revealed_at_us")?),
        }));
    }
    let current = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT position, paused, {mine} AS mine FROM question_progress WHERE couple_id = $1"
    )))
    .bind(&c.id)
    .fetch_optional(&mut *conn)
    .await?;
    let current = match current {
        None => Value::Null,
        Some(r) => json!({
            "number": r.try_get::<i64, _>("position")? + 1,
            "paused": r.try_get::<i64, _>("paused")? != 0,
            "my_answer": r.try_get::<Option<String>, _>("mine")?,
        }),
    };
    Ok(json!({ "revealed": revealed, "current": current }))
}

async fn export_checkins(conn: &mut AnyConnection, c: &CoupleOf) -> Result<Vec<Value>> {
    let all = checkins::all_of_couple(conn, &c.id).await?;
    Ok(all
        .iter()
        .map(|s| {
            let v = checkins::view(s, c.side);
            let prompt = v.prompt.clone().unwrap_or_default();
            json!({
                "checkin_id": v.checkin_id,
                "prompt_id": prompt.prompt_id,
                "prompt": prompt.text,
                "status": enum_name(v.status().as_str_name(), "CHECKIN_STATUS_"),
                "opened_by": match s.opened_by.as_deref() {
                    None => Value::Null,
                    Some(by) if by == c.partner_id => Value::String("partner".into()),
                    Some(_) => Value::String("me".into()),
                },
                "routine_id": s.routine_id,
                "opened_at": ts(s.state.opened_at.timestamp_micros()),
                "expires_at": ts(s.state.expires_at.timestamp_micros()),
                "my_answer": answer(&v.my_answer),
                "partner_answered": v.partner_answered,
                // Only once revealed to the person.
                "partner_answer": answer(&v.partner_answer),
            })
        })
        .collect())
}

/// The next page of taps of the person's couples after `after` (sent time, id), as a piece of
/// the `taps` array and the position of its last tap; `None` when there are no more.
async fn tap_page(
    pool: &AnyPool,
    scope: &TapScope,
    after: Option<&(i64, String)>,
) -> Result<Option<(String, (i64, String))>> {
    let mut conn = pool.acquire().await?;
    let (after_us, after_id) = after.cloned().unwrap_or((i64::MIN, String::new()));
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, couple_id, sender_account_id, sender_device_id, kind, rhythm, note, \
         created_at_us FROM taps \
         WHERE couple_id IN (SELECT id FROM couples WHERE account_a = $1 OR account_b = $1) \
         AND (created_at_us > $2 OR (created_at_us = $2 AND id > $3)) \
         ORDER BY created_at_us, id LIMIT {TAP_PAGE}"
    )))
    .bind(&scope.me)
    .bind(after_us)
    .bind(&after_id)
    .fetch_all(&mut *conn)
    .await?;
    let Some(last) = rows.last() else {
        return Ok(None);
    };
    let last = (last.try_get("created_at_us")?, last.try_get("id")?);
    let receipts = page_receipts(&mut conn, &rows).await?;
    let mut pieces = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: String = r.try_get("id")?;
        let sender: String = r.try_get("sender_account_id")?;
        let sent = sender == scope.me;
        let rhythm = r
            .try_get::<Option<Vec<u8>>, _>("rhythm")?
            .map(|b| pb::Rhythm::decode(b.as_slice()))
            .transpose()
            .map_err(|e| Error::Corrupt(format!("tap rhythm: {e}")))?
            .map_or(Value::Null, |rh| {
                rh.segments
                    .iter()
                    .map(|s| json!({ "intensity": s.intensity, "duration_ms": s.duration_ms }))
                    .collect()
            });
        let kind = pb::TapKind::try_from(r.try_get::<i64, _>("kind")? as i32)
            .unwrap_or_default()
            .as_str_name();
        let seen: Vec<Value> = receipts
            .iter()
            .filter(|(tap, by, kind, _)| {
                tap == &id
                    && (by == &scope.me
                        || *kind == pb::ReceiptKind::Delivered as i64
                        || scope.sharing_partners.contains(by))
            })
            .map(|(_, by, kind, at)| {
                let kind = pb::ReceiptKind::try_from(*kind as i32)
                    .unwrap_or_default()
                    .as_str_name();
                json!({
                    "kind": enum_name(kind, "RECEIPT_KIND_"),
                    "by": if by == &scope.me { "me" } else { "partner" },
                    "at": ts(*at),
                })
            })
            .collect();
        let tap = json!({
            "tap_id": id,
            "couple_id": r.try_get::<String, _>("couple_id")?,
            "direction": if sent { "sent" } else { "received" },
            "sent_at": ts(r.try_get("created_at_us")?),
            "kind": enum_name(kind, "TAP_KIND_"),
            "rhythm": rhythm,
            "note": r.try_get::<String, _>("note")?,
            "from_device_id": if sent { Value::String(r.try_get("sender_device_id")?) } else { Value::Null },
            "receipts": seen,
        });
        pieces.push(serde_json::to_string(&tap).map_err(|e| Error::Corrupt(e.to_string()))?);
    }
    Ok(Some((pieces.join(","), last)))
}

/// The receipts on a page's taps, as (tap, by account, kind, at µs), in the order given.
async fn page_receipts(
    conn: &mut AnyConnection,
    rows: &[AnyRow],
) -> Result<Vec<(String, String, i64, i64)>> {
    let marks: Vec<String> = (1..=rows.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT tap_id, account_id, kind, created_at_us FROM tap_receipts \
         WHERE tap_id IN ({}) ORDER BY created_at_us, kind",
        marks.join(",")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for r in rows {
        q = q.bind(r.try_get::<String, _>("id")?);
    }
    q.fetch_all(conn)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("tap_id")?,
                r.try_get("account_id")?,
                r.try_get("kind")?,
                r.try_get("created_at_us")?,
            ))
        })
        .collect()
}

/// Deletes the caller's account in one transaction (see `DeleteAccount` in the contract):
/// ends the couple telling only the partner, then removes the person's devices (with their
/// inboxes, push targets and wake-ups), codes, zone history, the taps they sent (with every
/// receipt on them and the partner's undelivered copies), their receipts, their check-in
/// answers, the routines they made and their schedule on the partner's routines, and blanks the
/// account row into a tombstone. Returns the devices whose tokens must be forgotten.
pub async fn delete_account(
    tx: &mut WriteTx,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let me = accounts::load(tx.conn(), &caller.account_id).await?;
    if let Some(couple) = &me.couple_id {
        crate::pairing::end_couple(tx, couple, &me.id, true, now).await?;
    }
    let conn = tx.conn();
    let ids = |rows: Vec<AnyRow>, col: &str| -> Result<Vec<String>> {
        rows.iter().map(|r| Ok(r.try_get(col)?)).collect()
    };
    let devices = ids(
        sqlx::query("SELECT id FROM devices WHERE account_id = $1 ORDER BY id")
            .bind(&me.id)
            .fetch_all(&mut *conn)
            .await?,
        "id",
    )?;
    let couple_rows = sqlx::query(
        "SELECT id, account_a, account_b FROM couples WHERE account_a = $1 OR account_b = $1",
    )
    .bind(&me.id)
    .fetch_all(&mut *conn)
    .await?;
    let mine = couple_rows
        .iter()
        .map(|r| CoupleOf::from_row(r, &me.id))
        .collect::<Result<Vec<_>>>()?;
    let mut partners: Vec<&str> = mine.iter().map(|c| c.partner_id.as_str()).collect();
    partners.sort_unstable();
    partners.dedup();

    // The taps they sent: the partner's copies not yet fetched, every receipt on them, then
    // the taps. Each statement reads through an index (inbox by device, taps by sending device,
    // receipts by tap).
    let my_taps = "SELECT id FROM taps WHERE sender_device_id IN \
                   (SELECT id FROM devices WHERE account_id = $2)";
    for partner in &partners {
        let theirs = ids(
            sqlx::query("SELECT id FROM devices WHERE account_id = $1")
                .bind(*partner)
                .fetch_all(&mut *conn)
                .await?,
            "id",
        )?;
        for device in &theirs {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM inbox WHERE device_id = $1 AND tap_id IN ({my_taps})"
            )))
            .bind(device)
            .bind(&me.id)
            .execute(&mut *conn)
            .await?;
        }
        // Their receipts on the partner's taps.
        sqlx::query(
            "DELETE FROM tap_receipts WHERE account_id = $2 AND tap_id IN (SELECT id FROM taps \
             WHERE sender_device_id IN (SELECT id FROM devices WHERE account_id = $1))",
        )
        .bind(*partner)
        .bind(&me.id)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM tap_receipts WHERE tap_id IN ({}) ",
        my_taps.replace("$2", "$1")
    )))
    .bind(&me.id)
    .execute(&mut *conn)
    .await?;
    for device in &devices {
        sqlx::query("DELETE FROM taps WHERE sender_device_id = $1")
            .bind(device)
            .execute(&mut *conn)
            .await?;
    }

    for c in &mine {
        // Their side of every check-in; the partner keeps their own answers.
        let column = if c.side == Side::A {
            "answer_a"
        } else {
            "answer_b"
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE checkins SET {column} = NULL WHERE couple_id = $1"
        )))
        .bind(&c.id)
        .execute(&mut *conn)
        .await?;
        // Their answers to the deeper questions (the partner keeps their own), and the
        // couple's place in the deck.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE question_answers SET {column} = NULL WHERE couple_id = $1"
        )))
        .bind(&c.id)
        .execute(&mut *conn)
        .await?;
        // Together times and the next meeting are the couple's: the couple has ended.
        for sql in [
            "DELETE FROM together_held_taps WHERE together_id IN \
             (SELECT id FROM together WHERE couple_id = $1)",
            "DELETE FROM together WHERE couple_id = $1",
            "DELETE FROM meetings WHERE couple_id = $1",
            "DELETE FROM question_progress WHERE couple_id = $1",
            "DELETE FROM reconnect_steps WHERE plan_id IN \
             (SELECT id FROM reconnect_plans WHERE couple_id = $1)",
            "DELETE FROM reconnect_progress WHERE plan_id IN \
             (SELECT id FROM reconnect_plans WHERE couple_id = $1)",
            "DELETE FROM reconnect_plans WHERE couple_id = $1",
            // Every moment is the person's words or kept by them.
            "DELETE FROM moments WHERE couple_id = $1",
        ] {
            sqlx::query(sql).bind(&c.id).execute(&mut *conn).await?;
        }
        // Their schedule of every routine of the couple, then the routines they made.
        for table in ["routine_firings", "routine_schedules"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE account_id = $2 AND routine_id IN \
                 (SELECT id FROM routines WHERE couple_id = $1)"
            )))
            .bind(&c.id)
            .bind(&me.id)
            .execute(&mut *conn)
            .await?;
        }
        let made = ids(
            sqlx::query("SELECT id FROM routines WHERE couple_id = $1 AND created_by = $2")
                .bind(&c.id)
                .bind(&me.id)
                .fetch_all(&mut *conn)
                .await?,
            "id",
        )?;
        for routine in &made {
            for sql in [
                "DELETE FROM routine_firings WHERE routine_id = $1",
                "DELETE FROM routine_schedules WHERE routine_id = $1",
                "DELETE FROM routines WHERE id = $1",
            ] {
                sqlx::query(sql).bind(routine).execute(&mut *conn).await?;
            }
        }
    }

    for sql in [
        "DELETE FROM codes WHERE account_id = $1",
        "DELETE FROM zone_history WHERE account_id = $1",
        "DELETE FROM held_taps WHERE space_id IN (SELECT id FROM spaces WHERE account_id = $1)",
        "DELETE FROM spaces WHERE account_id = $1",
        "DELETE FROM recap_schedules WHERE account_id = $1",
    ] {
        sqlx::query(sql).bind(&me.id).execute(&mut *conn).await?;
    }
    for device in &devices {
        sqlx::query("DELETE FROM inbox WHERE device_id = $1")
            .bind(device)
            .execute(&mut *conn)
            .await?;
        crate::push::remove_device(&mut *conn, device).await?;
        sqlx::query("DELETE FROM live_streams WHERE device_id = $1")
            .bind(device)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM devices WHERE id = $1")
            .bind(device)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "UPDATE accounts SET display_name = '', time_zone = 'UTC', quiet_start_min = NULL, \
         quiet_end_min = NULL, receipts_enabled = 0, couple_id = NULL, deleted_at_us = $1 \
         WHERE id = $2",
    )
    .bind(now.timestamp_micros())
    .bind(&me.id)
    .execute(&mut *conn)
    .await?;
    for device in &devices {
        tx.revoked(device.clone());
    }
    tracing::info!(account = %me.id, devices = devices.len(), "account deleted");
    Ok(devices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_needs_the_exact_words() {
        assert!(check_confirm("delete my account").is_ok());
        assert!(check_confirm("  Delete My Account ").is_ok());
        for wrong in [
            "",
            "yes",
            "delete",
            "delete my acount",
            "delete my account now",
        ] {
            assert!(check_confirm(wrong).is_err(), "{wrong:?} accepted");
        }
    }

    #[test]
    fn names_and_times_are_plain() {
        assert_eq!(
            enum_name("DEVICE_KIND_WATCH", "DEVICE_KIND_"),
            Value::String("watch".into())
        );
        assert_eq!(hhmm(22 * 60 + 5), Value::String("22:05".into()));
        assert_eq!(ts(1_000_000), Value::String("1970-01-01T00:00:01Z".into()));
        assert_eq!(answer(&None), Value::Null);
        let a = Some(pb::Answer {
            value: Some(pb::answer::Value::Scale(4)),
        });
        assert_eq!(answer(&a), json!({ "scale": 4 }));
    }
}
