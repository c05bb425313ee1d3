//! Moments and the weekly recap as stored. A moment copies the words of the partner's note or
//! answer when it is kept, so it outlasts the tap or check-in it came from. A recap is built
//! on demand from the taps, check-ins, streak days and moments of seven local dates on its
//! reader's calendar; a scheduled one is sent by the jobs tick. The rules are in
//! [`crate::domain::moments`].

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Timelike, Utc, Weekday};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use uuid::Uuid;

use crate::accounts;
use crate::auth::Caller;
use crate::checkins;
use crate::couples::{self, require_couple};
use crate::db::{from_us, timestamp_us, to_us};
use crate::delivery::{account_devices, new_event, to_each};
use crate::domain::checkins::PartnerAnswer;
use crate::domain::moments::{self, DEFAULT_PAGE, Kind, MAX_PAGE, Series};
use crate::domain::validate;
use crate::error::{Error, Refusal, Result};
use crate::state::AppState;
use crate::store::{AccountRow, day_str, parse_day};
use crate::streaks::{StreakJob, StreakOp, input_day};
use crate::txn::WriteTx;

/// What a `KeepMoment` keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A tap's note.
    Tap(String),
    /// The partner's answer to a check-in.
    Checkin(String),
}

/// A checked `KeepMoment`.
pub fn check_keep(req: &pb::KeepMomentRequest) -> Result<Source> {
    use pb::keep_moment_request::Source as S;
    match &req.source {
        Some(S::TapId(id)) => Ok(Source::Tap(validate::uuid("tap_id", id)?.to_string())),
        Some(S::CheckinId(id)) => Ok(Source::Checkin(
            validate::uuid("checkin_id", id)?.to_string(),
        )),
        None => Err(Error::invalid(
            "source",
            "a tap_id or a checkin_id is required",
        )),
    }
}

/// A checked moment id.
pub fn check_moment(id: &str) -> Result<String> {
    Ok(validate::uuid("moment_id", id)?.to_string())
}

/// Where a page of `ListMoments` ended: `m1.<kept_at_us>.<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    kept_at_us: i64,
    id: String,
}

impl PageToken {
    fn parse(token: &str) -> Result<PageToken> {
        let bad = || Error::invalid("page_token", "is not a token from this listing");
        if token.len() > 100 {
            return Err(bad());
        }
        let mut parts = token.splitn(3, '.');
        let (Some("m1"), Some(at), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        Ok(PageToken {
            kept_at_us: at.parse().map_err(|_| bad())?,
            id: validate::uuid("page_token", id)
                .map_err(|_| bad())?
                .to_string(),
        })
    }
}

impl std::fmt::Display for PageToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "m1.{}.{}", self.kept_at_us, self.id)
    }
}

/// A checked `ListMoments`: the page size and where to go on from.
pub fn check_list(req: &pb::ListMomentsRequest) -> Result<(u32, Option<PageToken>)> {
    let size = match req.page_size {
        0 => DEFAULT_PAGE,
        n if n <= MAX_PAGE => n,
        _ => return Err(Error::invalid("page_size", "must be at most 100")),
    };
    let token = (!req.page_token.is_empty())
        .then(|| PageToken::parse(&req.page_token))
        .transpose()?;
    Ok((size, token))
}

/// A checked `GetRecap`: its last date, if given.
pub fn check_recap(req: &pb::GetRecapRequest) -> Result<Option<NaiveDate>> {
    if req.last_date.is_empty() {
        return Ok(None);
    }
    let d = input_day("last_date", &req.last_date)?;
    if !(2000..=2200).contains(&chrono::Datelike::year(&d)) {
        return Err(Error::invalid(
            "last_date",
            "must be in the years 2000-2200",
        ));
    }
    Ok(Some(d))
}

/// A recap schedule: the weekday and local time.
pub type When = (Weekday, NaiveTime);

/// A checked `SetRecapSchedule`: when, or `None` for off.
pub fn check_schedule(req: &pb::SetRecapScheduleRequest) -> Result<Option<When>> {
    if !req.enabled {
        return Ok(None);
    }
    Ok(Some((
        moments::weekday("weekday", req.weekday)?,
        moments::local_time("local_time", &req.local_time)?,
    )))
}

fn kind_to_pb(k: Kind) -> pb::MomentKind {
    match k {
        Kind::Note => pb::MomentKind::Note,
        Kind::Answer => pb::MomentKind::Answer,
        Kind::Appreciation => pb::MomentKind::Appreciation,
    }
}

const COLUMNS: &str = "id, kind, kept_by, author, text, prompt_text, source_id, \
     happened_at_us, kept_at_us";

fn from_row(r: &AnyRow) -> Result<pb::Moment> {
    Ok(pb::Moment {
        moment_id: r.try_get("id")?,
        kind: i32::try_from(r.try_get::<i64, _>("kind")?).unwrap_or(0),
        kept_by_account_id: r.try_get("kept_by")?,
        author_account_id: r.try_get("author")?,
        text: r.try_get("text")?,
        prompt_text: r.try_get("prompt_text")?,
        source_id: r.try_get("source_id")?,
        happened_at: Some(timestamp_us(r.try_get("happened_at_us")?)),
        kept_at: Some(timestamp_us(r.try_get("kept_at_us")?)),
    })
}

/// The moment `kept_by` kept from `source_id`, if any.
async fn kept(
    conn: &mut AnyConnection,
    couple_id: &str,
    kept_by: &str,
    source_id: &str,
) -> Result<Option<pb::Moment>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM moments WHERE couple_id = $1 AND kept_by = $2 AND source_id = $3"
    )))
    .bind(couple_id)
    .bind(kept_by)
    .bind(source_id)
    .fetch_optional(conn)
    .await?
    .map(|r| from_row(&r))
    .transpose()
}

/// Tap `t` has reached its recipient: it is not held for their space or together time.
const NOT_HELD: &str = "NOT EXISTS (SELECT 1 FROM held_taps h WHERE h.tap_id = t.id) \
     AND NOT EXISTS (SELECT 1 FROM together_held_taps g WHERE g.tap_id = t.id)";

/// A moment about to be kept: its kind, author, words, prompt and when it happened.
struct Words {
    kind: Kind,
    author: String,
    text: String,
    prompt_text: String,
    happened_at_us: i64,
}

/// The partner's note on tap `id`, as the caller (`me`) received it.
async fn note_of(conn: &mut AnyConnection, couple_id: &str, me: &str, id: &str) -> Result<Words> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT t.sender_account_id, t.note, t.created_at_us FROM taps t \
         WHERE t.id = $1 AND t.couple_id = $2 AND {NOT_HELD}"
    )))
    .bind(id)
    .bind(couple_id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("tap"))?;
    let sender: String = row.try_get("sender_account_id")?;
    let note: String = row.try_get("note")?;
    if sender == me || note.trim().is_empty() {
        return Err(Error::Refused(Refusal::NothingToKeep));
    }
    Ok(Words {
        kind: Kind::Note,
        author: sender,
        text: note,
        prompt_text: String::new(),
        happened_at_us: row.try_get("created_at_us")?,
    })
}

/// The partner's visible answer to check-in `id`, as the caller (`me`) sees it.
async fn answer_of(conn: &mut AnyConnection, couple_id: &str, me: &str, id: &str) -> Result<Words> {
    let c = checkins::load(conn, id, couple_id).await?;
    let sides = couples::sides(conn, couple_id).await?;
    let side = sides.side_of(me);
    let PartnerAnswer::Revealed(answer) = c.state.partner_answer(side) else {
        return Err(Error::Refused(Refusal::NothingToKeep));
    };
    let prompt = c.state.prompt;
    Ok(Words {
        kind: Kind::of_answer(prompt.category),
        author: sides.account(side.other()).to_owned(),
        text: moments::answer_words(&prompt.kind, answer),
        prompt_text: prompt.text.to_owned(),
        happened_at_us: to_us(c.state.opened_at),
    })
}

/// A `MomentKept` for the partner's devices.
fn tell_partner(
    tx: &mut WriteTx,
    devices: &[String],
    moment: pb::Moment,
    forgotten: bool,
    now: DateTime<Utc>,
) {
    let event = new_event(
        Payload::MomentKept(Box::new(pb::MomentKept {
            moment: Some(moment),
            forgotten,
        })),
        now,
    );
    tx.tell(to_each(devices, &event));
}

/// `KeepMoment`, in the group commit: keeps the partner's note or visible answer (again:
/// the same moment, unchanged) and tells the partner.
pub async fn keep(
    tx: &mut WriteTx,
    caller: &Caller,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<pb::KeepMomentResponse> {
    let conn = tx.conn();
    let (_, couple_id) = require_couple(conn, &caller.account_id).await?;
    couples::lock_any(conn, &[&couple_id]).await?;
    let me = caller.account_id.as_str();
    let words = match source {
        Source::Tap(id) => note_of(conn, &couple_id, me, id).await?,
        Source::Checkin(id) => answer_of(conn, &couple_id, me, id).await?,
    };
    let source_id = match source {
        Source::Tap(id) | Source::Checkin(id) => id.as_str(),
    };
    if let Some(moment) = kept(conn, &couple_id, me, source_id).await? {
        return Ok(pb::KeepMomentResponse {
            moment: Some(moment),
            already_kept: true,
        });
    }
    let id = Uuid::now_v7().to_string();
    let kept_at_us = to_us(now);
    sqlx::query(
        "INSERT INTO moments (id, couple_id, kept_by, author, kind, text, prompt_text, \
         source_id, happened_at_us, kept_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&id)
    .bind(&couple_id)
    .bind(me)
    .bind(&words.author)
    .bind(kind_to_pb(words.kind) as i64)
    .bind(&words.text)
    .bind(&words.prompt_text)
    .bind(source_id)
    .bind(words.happened_at_us)
    .bind(kept_at_us)
    .execute(&mut *conn)
    .await?;
    let moment = pb::Moment {
        moment_id: id,
        kind: kind_to_pb(words.kind) as i32,
        kept_by_account_id: me.to_owned(),
        author_account_id: words.author.clone(),
        text: words.text,
        prompt_text: words.prompt_text,
        source_id: source_id.to_owned(),
        happened_at: Some(timestamp_us(words.happened_at_us)),
        kept_at: Some(timestamp_us(kept_at_us)),
    };
    let devices = account_devices(conn, &words.author).await?;
    tell_partner(tx, &devices, moment.clone(), false, now);
    Ok(pb::KeepMomentResponse {
        moment: Some(moment),
        already_kept: false,
    })
}

/// `ForgetMoment`, in the group commit: only the partner who kept it lets it go (again, or
/// one that is not there: no change).
pub async fn forget(
    tx: &mut WriteTx,
    caller: &Caller,
    id: &str,
    now: DateTime<Utc>,
) -> Result<pb::ForgetMomentResponse> {
    let conn = tx.conn();
    let (_, couple_id) = require_couple(conn, &caller.account_id).await?;
    couples::lock_any(conn, &[&couple_id]).await?;
    let kept_by: Option<String> =
        sqlx::query_scalar("SELECT kept_by FROM moments WHERE id = $1 AND couple_id = $2")
            .bind(id)
            .bind(&couple_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(kept_by) = kept_by else {
        return Ok(pb::ForgetMomentResponse {});
    };
    if kept_by != caller.account_id {
        return Err(Error::invalid(
            "moment_id",
            "was kept by your partner; only they can let it go",
        ));
    }
    sqlx::query("DELETE FROM moments WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let partner = couples::partner(conn, &couple_id, &caller.account_id).await?;
    let devices = account_devices(conn, &partner.id).await?;
    let moment = pb::Moment {
        moment_id: id.to_owned(),
        kept_by_account_id: kept_by,
        ..Default::default()
    };
    tell_partner(tx, &devices, moment, true, now);
    Ok(pb::ForgetMomentResponse {})
}

/// `ListMoments`: the couple's moments, newest kept first.
pub async fn list(
    pool: &AnyPool,
    caller: &Caller,
    size: u32,
    after: Option<PageToken>,
) -> Result<pb::ListMomentsResponse> {
    let mut conn = pool.acquire().await?;
    let (_, couple_id) = require_couple(&mut conn, &caller.account_id).await?;
    let (at, id) = after.map_or((i64::MAX, String::new()), |t| (t.kept_at_us, t.id));
    // One more than the page, to know whether another follows.
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM moments WHERE couple_id = $1 \
         AND (kept_at_us < $2 OR (kept_at_us = $2 AND id < $3)) \
         ORDER BY kept_at_us DESC, id DESC LIMIT {}",
        size + 1
    )))
    .bind(&couple_id)
    .bind(at)
    .bind(if id.is_empty() { "~" } else { id.as_str() })
    .fetch_all(&mut *conn)
    .await?;
    let more = rows.len() > size as usize;
    let rows = &rows[..rows.len().min(size as usize)];
    let moments = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    let next_page_token = match (rows.last(), moments.last()) {
        (Some(r), Some(m)) if more => PageToken {
            kept_at_us: r.try_get("kept_at_us")?,
            id: m.moment_id.clone(),
        }
        .to_string(),
        _ => String::new(),
    };
    Ok(pb::ListMomentsResponse {
        moments,
        next_page_token,
    })
}

/// The recap of the seven local dates ending on `last` (default: the account's today), on the
/// account's calendar (the zones it lived in).
pub async fn recap(
    state: &AppState,
    account_id: &str,
    last: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> Result<pb::Recap> {
    let pool = state.db.pool();
    let (couple_id, calendar) = {
        let mut conn = pool.acquire().await?;
        let (_, couple_id) = require_couple(&mut conn, account_id).await?;
        (
            couple_id,
            accounts::zone_history(&mut conn, account_id).await?,
        )
    };
    let last = last.unwrap_or_else(|| calendar.local_date_at(now));
    let first = moments::first_date(last);
    // The streak settles first, so that the status of every date that is over is final; no
    // connection is held while it waits for the group commit.
    let streak = state
        .writer
        .streak(StreakJob {
            caller: Caller {
                account_id: account_id.to_owned(),
                device_id: String::new(),
            },
            op: StreakOp::Days { first, last },
            now,
        })
        .await?;
    let status: HashMap<String, i32> = streak
        .days
        .into_iter()
        .map(|d| (d.date, d.status))
        .collect();
    let mut days: Vec<pb::RecapDay> = first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|d| {
            let date = day_str(d);
            pb::RecapDay {
                status: status.get(&date).copied().unwrap_or(0),
                date,
                ..Default::default()
            }
        })
        .collect();
    let mut conn = pool.acquire().await?;
    let index = |d: NaiveDate| -> Option<usize> {
        (d >= first && d <= last).then(|| usize::try_from((d - first).num_days()).unwrap_or(0))
    };
    // Every instant of these local dates lies within 15 hours of their UTC span.
    let margin = Duration::hours(15);
    let from = to_us(first.and_time(NaiveTime::MIN).and_utc() - margin);
    let to = to_us(
        (last + Duration::days(1))
            .and_time(NaiveTime::MIN)
            .and_utc()
            + margin,
    );

    let taps = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT t.sender_account_id, t.created_at_us FROM taps t \
         WHERE t.couple_id = $1 AND t.created_at_us >= $2 AND t.created_at_us < $3 \
         AND (t.sender_account_id = $4 OR {NOT_HELD})"
    )))
    .bind(&couple_id)
    .bind(from)
    .bind(to)
    .bind(account_id)
    .fetch_all(&mut *conn)
    .await?;
    for r in &taps {
        let at = from_us(r.try_get("created_at_us")?);
        let Some(i) = index(calendar.local_date_at(at)) else {
            continue;
        };
        if r.try_get::<String, _>("sender_account_id")? == account_id {
            days[i].taps_sent += 1;
        } else {
            days[i].taps_received += 1;
        }
    }

    let side = couples::sides(&mut conn, &couple_id)
        .await?
        .side_of(account_id);
    // Oldest first: the latest answer of a date is the last one written.
    for c in checkins::opened_between(&mut conn, &couple_id, from, to).await? {
        let Some(i) = index(calendar.local_date_at(c.state.opened_at)) else {
            continue;
        };
        let day = &mut days[i];
        day.checkins += 1;
        let prompt = c.state.prompt;
        let Some(series) = moments::series_of(prompt.category, &prompt.kind) else {
            continue;
        };
        let mine = c.state.answer_of(side).and_then(moments::scale_value);
        let theirs = match c.state.partner_answer(side) {
            PartnerAnswer::Revealed(a) => moments::scale_value(a),
            _ => None,
        };
        let (my, partner) = match series {
            Series::Mood => (&mut day.my_mood, &mut day.partner_mood),
            Series::Energy => (&mut day.my_energy, &mut day.partner_energy),
        };
        if let Some(v) = mine {
            *my = v;
        }
        if let Some(v) = theirs {
            *partner = v;
        }
    }

    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM moments WHERE couple_id = $1 AND kept_at_us >= $2 \
         AND kept_at_us < $3 ORDER BY kept_at_us DESC, id DESC"
    )))
    .bind(&couple_id)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    let mut kept = Vec::new();
    for r in &rows {
        let at: i64 = r.try_get("kept_at_us")?;
        if index(calendar.local_date_at(from_us(at))).is_some() {
            kept.push(from_row(r)?);
        }
    }

    let connected = pb::DayStatus::Connected as i32;
    Ok(pb::Recap {
        first_date: day_str(first),
        last_date: day_str(last),
        connected_days: u32::try_from(days.iter().filter(|d| d.status == connected).count())
            .unwrap_or(0),
        taps_sent: days.iter().map(|d| d.taps_sent).sum(),
        taps_received: days.iter().map(|d| d.taps_received).sum(),
        checkins: days.iter().map(|d| d.checkins).sum(),
        days,
        moments: kept,
        made_at: Some(timestamp_us(to_us(now))),
    })
}

/// A stored recap schedule (off when nothing is due next).
#[derive(Debug, Clone)]
struct Schedule {
    weekday: Weekday,
    time: NaiveTime,
    next_due_us: Option<i64>,
    next_day: Option<String>,
    last_day: Option<String>,
}

async fn schedule_of(conn: &mut AnyConnection, account_id: &str) -> Result<Option<Schedule>> {
    let Some(r) = sqlx::query(
        "SELECT weekday, minute, next_due_us, next_day, last_day FROM recap_schedules \
         WHERE account_id = $1",
    )
    .bind(account_id)
    .fetch_optional(conn)
    .await?
    else {
        return Ok(None);
    };
    let weekday: i64 = r.try_get("weekday")?;
    let minute: i64 = r.try_get("minute")?;
    let corrupt = || Error::Corrupt(format!("recap schedule of {account_id}"));
    let weekday =
        moments::weekday("weekday", u32::try_from(weekday).unwrap_or(0)).map_err(|_| corrupt())?;
    let minute = u32::try_from(minute).map_err(|_| corrupt())?;
    let time = NaiveTime::from_hms_opt(minute / 60, minute % 60, 0).ok_or_else(corrupt)?;
    Ok(Some(Schedule {
        weekday,
        time,
        next_due_us: r.try_get("next_due_us")?,
        next_day: r.try_get("next_day")?,
        last_day: r.try_get("last_day")?,
    }))
}

fn schedule_pb(s: Option<&Schedule>) -> pb::RecapSchedule {
    match s {
        Some(s) => pb::RecapSchedule {
            enabled: s.next_due_us.is_some(),
            weekday: s.weekday.number_from_monday(),
            local_time: s.time.format("%H:%M").to_string(),
            next_at: s.next_due_us.map(timestamp_us),
        },
        None => pb::RecapSchedule::default(),
    }
}

/// Plans `s`'s next recap for `account` strictly after `now`.
fn plan_next(s: &mut Schedule, account: &AccountRow, now: DateTime<Utc>) -> Result<()> {
    let last = s.last_day.as_deref().map(parse_day).transpose()?;
    let next = moments::next_recap(now, account.zone, s.weekday, s.time, account.quiet, last);
    s.next_due_us = next.map(|n| to_us(n.deliver));
    s.next_day = next.map(|n| day_str(n.day));
    Ok(())
}

async fn save(conn: &mut AnyConnection, account_id: &str, s: &Schedule) -> Result<()> {
    sqlx::query(
        "INSERT INTO recap_schedules (account_id, weekday, minute, next_due_us, next_day, \
         last_day) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id) DO UPDATE SET \
         weekday = excluded.weekday, minute = excluded.minute, \
         next_due_us = excluded.next_due_us, next_day = excluded.next_day, \
         last_day = excluded.last_day",
    )
    .bind(account_id)
    .bind(i64::from(s.weekday.number_from_monday()))
    .bind(i64::from(s.time.hour() * 60 + s.time.minute()))
    .bind(s.next_due_us)
    .bind(s.next_day.as_deref())
    .bind(s.last_day.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

/// `SetRecapSchedule`, in the group commit: when the caller's weekly recap comes, or off.
pub async fn set_schedule(
    tx: &mut WriteTx,
    caller: &Caller,
    when: Option<When>,
    now: DateTime<Utc>,
) -> Result<pb::SetRecapScheduleResponse> {
    let conn = tx.conn();
    let account = accounts::load(conn, &caller.account_id).await?;
    let old = schedule_of(conn, &account.id).await?;
    let s = match (when, old) {
        (Some((weekday, time)), old) => {
            let mut s = Schedule {
                weekday,
                time,
                next_due_us: None,
                next_day: None,
                // The latest recap's date is kept across changes: never two on one date.
                last_day: old.and_then(|o| o.last_day),
            };
            plan_next(&mut s, &account, now)?;
            s
        }
        // Off: the choice and the latest recap's date stay, for turning it on again.
        (None, Some(s)) => Schedule {
            next_due_us: None,
            next_day: None,
            ..s
        },
        (None, None) => {
            return Ok(pb::SetRecapScheduleResponse {
                schedule: Some(schedule_pb(None)),
            });
        }
    };
    save(conn, &account.id, &s).await?;
    Ok(pb::SetRecapScheduleResponse {
        schedule: Some(schedule_pb(Some(&s))),
    })
}

/// `GetRecapSchedule`.
pub async fn get_schedule(pool: &AnyPool, caller: &Caller) -> Result<pb::GetRecapScheduleResponse> {
    let mut conn = pool.acquire().await?;
    let s = schedule_of(&mut conn, &caller.account_id).await?;
    Ok(pb::GetRecapScheduleResponse {
        schedule: Some(schedule_pb(s.as_ref())),
    })
}

/// A recap that is due: whose, when, and the local date it ends on.
#[derive(Debug, Clone)]
pub struct Due {
    /// The account.
    pub account_id: String,
    due_us: i64,
    /// The local date the recap ends on.
    pub day: NaiveDate,
}

/// The recaps due at `now`, for the jobs tick.
pub async fn due(pool: &AnyPool, now: DateTime<Utc>) -> Result<Vec<Due>> {
    let rows = sqlx::query(
        "SELECT account_id, next_due_us, next_day FROM recap_schedules \
         WHERE next_due_us IS NOT NULL AND next_due_us <= $1 ORDER BY next_due_us LIMIT 200",
    )
    .bind(to_us(now))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let day: Option<String> = r.try_get("next_day")?;
            Ok(Due {
                account_id: r.try_get("account_id")?,
                due_us: r.try_get("next_due_us")?,
                day: parse_day(day.as_deref().unwrap_or_default())?,
            })
        })
        .collect()
}

/// Sends a due recap (`None` when the account is not in a couple: nothing to sum up) to the
/// account's devices and plans the next one; safe from several instances (the second finds
/// it sent). Whether this call sent it.
pub async fn send(
    tx: &mut WriteTx,
    due: &Due,
    recap: Option<pb::Recap>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let conn = tx.conn();
    let Some(mut s) = schedule_of(conn, &due.account_id).await? else {
        return Ok(false);
    };
    if s.next_due_us != Some(due.due_us) {
        return Ok(false);
    }
    let account = accounts::load(conn, &due.account_id).await?;
    s.last_day = s.next_day.take();
    plan_next(&mut s, &account, now)?;
    save(conn, &account.id, &s).await?;
    let Some(recap) = recap else {
        return Ok(false);
    };
    let devices = account_devices(conn, &account.id).await?;
    let event = new_event(
        Payload::RecapReady(Box::new(pb::RecapReady { recap: Some(recap) })),
        now,
    );
    tx.tell(to_each(&devices, &event));
    Ok(true)
}

/// Plans `account`'s next recap again after a change of zone or quiet hours.
pub async fn reschedule_account(
    conn: &mut AnyConnection,
    account: &AccountRow,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some(mut s) = schedule_of(conn, &account.id).await?
        && s.next_due_us.is_some()
    {
        plan_next(&mut s, account, now)?;
        save(conn, &account.id, &s).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        let t = PageToken {
            kept_at_us: 1_700_000_000_000_000,
            id: Uuid::now_v7().to_string(),
        };
        assert_eq!(PageToken::parse(&t.to_string()).unwrap(), t);
        for bad in [
            "",
            "x",
            "m1.x.y",
            "m2.1.00000000-0000-0000-0000-000000000000",
            "m1.1.",
        ] {
            assert!(PageToken::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn list_sizes_are_bounded() {
        let req = |n| pb::ListMomentsRequest {
            page_size: n,
            page_token: String::new(),
        };
        assert_eq!(check_list(&req(0)).unwrap().0, DEFAULT_PAGE);
        assert_eq!(check_list(&req(100)).unwrap().0, 100);
        assert!(check_list(&req(101)).is_err());
    }

    #[test]
    fn a_schedule_needs_a_weekday_and_a_time_only_when_on() {
        let req = |enabled, weekday, t: &str| pb::SetRecapScheduleRequest {
            enabled,
            weekday,
            local_time: t.into(),
        };
        assert_eq!(check_schedule(&req(false, 0, "")).unwrap(), None);
        assert_eq!(
            check_schedule(&req(true, 7, "19:30")).unwrap(),
            Some((Weekday::Sun, NaiveTime::from_hms_opt(19, 30, 0).unwrap()))
        );
        assert!(check_schedule(&req(true, 0, "19:30")).is_err());
        assert!(check_schedule(&req(true, 8, "19:30")).is_err());
        assert!(check_schedule(&req(true, 1, "24:00")).is_err());
    }
}
