//! The couple's streak as stored: one state row per couple, one row per (couple, date), the
//! partners' zone histories and pauses. The rules themselves live in [`crate::domain::streaks`].

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{AnyConnection, Row as _};
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::db::{from_us, to_us};
use crate::delivery::{commit, devices_of, new_event};
use crate::domain::streaks::{
    self as engine, DayRecord, DayStatus, MILESTONES, Outcome, PauseRange, Side, StreakState,
    ZoneHistory,
};
use crate::error::{Error, Refusal, Result};
use crate::pairing::require_couple;
use crate::sql::{Conn, Param, PerRow, Row, Val, per_row, pg_rows};

/// The two members of a couple: side A is `couples.account_a`.
#[derive(Debug, Clone)]
pub struct Sides {
    /// The couple.
    pub couple_id: String,
    /// Side A's account.
    pub a: String,
    /// Side B's account.
    pub b: String,
}

impl Sides {
    /// The side of `account_id`.
    pub fn side_of(&self, account_id: &str) -> Side {
        if self.a == account_id {
            Side::A
        } else {
            Side::B
        }
    }

    /// The account on `side`.
    pub fn account(&self, side: Side) -> &str {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }
}

/// Loads the members of a couple.
pub async fn sides(conn: &mut AnyConnection, couple_id: &str) -> Result<Sides> {
    let row = sqlx::query("SELECT account_a, account_b FROM couples WHERE id = $1")
        .bind(couple_id)
        .fetch_one(conn)
        .await?;
    Ok(Sides {
        couple_id: couple_id.to_owned(),
        a: row.try_get("account_a")?,
        b: row.try_get("account_b")?,
    })
}

/// Serialises writers of one couple's streak and check-ins: takes the couple row's lock on
/// PostgreSQL (a no-op write; SQLite write transactions are serial already). Take it before
/// any device rows, as every writer does, so writers cannot deadlock.
pub async fn lock_couple(conn: &mut AnyConnection, couple_id: &str) -> Result<()> {
    sqlx::query("UPDATE couples SET ended_by = ended_by WHERE id = $1")
        .bind(couple_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records that `account_id` is in `zone` from `at` on.
pub async fn record_zone(
    conn: &mut AnyConnection,
    account_id: &str,
    at: DateTime<Utc>,
    zone: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO zone_history (account_id, from_us, zone) VALUES ($1, $2, $3) \
         ON CONFLICT (account_id, from_us) DO UPDATE SET zone = excluded.zone",
    )
    .bind(account_id)
    .bind(to_us(at))
    .bind(zone)
    .execute(conn)
    .await?;
    Ok(())
}

async fn zone_history(conn: &mut AnyConnection, account_id: &str) -> Result<ZoneHistory> {
    let rows = sqlx::query(
        "SELECT from_us, zone FROM zone_history WHERE account_id = $1 ORDER BY from_us",
    )
    .bind(account_id)
    .fetch_all(conn)
    .await?;
    let mut segments = Vec::with_capacity(rows.len());
    for r in &rows {
        let zone: String = r.try_get("zone")?;
        let tz = zone
            .parse()
            .map_err(|_| Error::Corrupt(format!("zone {zone:?}")))?;
        segments.push((from_us(r.try_get("from_us")?), tz));
    }
    ZoneHistory::from_segments(segments)
        .ok_or_else(|| Error::Corrupt(format!("no zone history for {account_id}")))
}

fn parse_day(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| Error::Corrupt(format!("date {s:?}")))
}

fn day_str(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Everything the streak of one couple needs, loaded once per transaction.
struct Loaded {
    sides: Sides,
    a: ZoneHistory,
    b: ZoneHistory,
    state: StreakState,
    pauses: Vec<(String, PauseRange, String)>,
}

impl Loaded {
    fn history(&self, side: Side) -> &ZoneHistory {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    fn paused(&self, date: NaiveDate) -> bool {
        self.pauses.iter().any(|(_, p, _)| p.contains(date))
    }
}

/// Loads one couple's streak (see [`load_many`]).
async fn load(conn: &mut Conn<'_>, couple_id: &str) -> Result<Pending> {
    load_many(conn, &[couple_id])
        .await?
        .remove(couple_id)
        .ok_or_else(|| Error::Corrupt(format!("couple {couple_id} vanished")))
}

fn day_from_row(r: &Row) -> Result<DayRecord> {
    let status: String = r.get("status")?;
    Ok(DayRecord {
        date: parse_day(&r.get::<String>("day")?)?,
        actions_a: r.get::<i64>("actions_a")? as u32,
        actions_b: r.get::<i64>("actions_b")? as u32,
        status: status
            .parse()
            .map_err(|_| Error::Corrupt(format!("day status {status:?}")))?,
    })
}

async fn days_between(
    conn: &mut Conn<'_>,
    couple_id: &str,
    after: NaiveDate,
    through: NaiveDate,
) -> Result<Vec<DayRecord>> {
    let (after, through) = (day_str(after), day_str(through));
    let rows = conn
        .fetch_all(
            "SELECT day, actions_a, actions_b, status FROM streak_days WHERE couple_id = $1 AND day > $2 AND day <= $3 ORDER BY day",
            &[Param::Text(couple_id), Param::Text(&after), Param::Text(&through)],
        )
        .await?;
    rows.iter().map(day_from_row).collect()
}

async fn load_day(conn: &mut Conn<'_>, couple_id: &str, date: NaiveDate) -> Result<DayRecord> {
    let prev = date.pred_opt().unwrap_or(date);
    Ok(days_between(conn, couple_id, prev, date)
        .await?
        .pop()
        .unwrap_or_else(|| DayRecord::new(date)))
}

/// The streak as `viewer` sees it at `now`.
async fn view(
    conn: &mut Conn<'_>,
    l: &Loaded,
    viewer: Side,
    now: DateTime<Utc>,
) -> Result<pb::Streak> {
    let person_day = |side: Side, record: &DayRecord| pb::PersonDay {
        date: day_str(record.date),
        actions: record.actions(side),
    };
    let today_a = l.a.local_date_at(now);
    let today_b = l.b.local_date_at(now);
    let rec_a = load_day(conn, &l.sides.couple_id, today_a).await?;
    let rec_b = if today_b == today_a {
        rec_a.clone()
    } else {
        load_day(conn, &l.sides.couple_id, today_b).await?
    };
    let (mine, theirs) = match viewer {
        Side::A => (person_day(Side::A, &rec_a), person_day(Side::B, &rec_b)),
        Side::B => (person_day(Side::B, &rec_b), person_day(Side::A, &rec_a)),
    };
    let latest_today = today_a.min(today_b);
    let pauses = l
        .pauses
        .iter()
        .filter(|(_, p, _)| p.to >= latest_today)
        .map(|(id, p, by)| pb::Pause {
            pause_id: id.clone(),
            from_date: day_str(p.from),
            to_date: day_str(p.to),
            by_account_id: by.clone(),
        })
        .collect();
    let s = &l.state;
    if s.calm {
        // No counts in calm mode; the dates are still there for calendars.
        let date_only = |d: pb::PersonDay| pb::PersonDay {
            date: d.date,
            actions: 0,
        };
        return Ok(pb::Streak {
            calm: true,
            pauses,
            me_today: Some(date_only(mine)),
            partner_today: Some(date_only(theirs)),
            ..Default::default()
        });
    }
    Ok(pb::Streak {
        calm: false,
        current: s.current,
        longest: s.longest,
        freezes_held: s.freezes,
        days_to_next_freeze: if s.freezes >= engine::MAX_FREEZES {
            0
        } else {
            engine::DAYS_PER_FREEZE - s.freeze_progress()
        },
        next_milestone: MILESTONES
            .iter()
            .copied()
            .find(|m| *m > s.current)
            .unwrap_or(0),
        me_today: Some(mine),
        partner_today: Some(theirs),
        pauses,
    })
}

fn describe(o: &Outcome) -> (pb::StreakChange, u32, Option<NaiveDate>) {
    match *o {
        Outcome::StreakGrew { date, .. } => (pb::StreakChange::Grew, 0, Some(date)),
        Outcome::Milestone { days } => (pb::StreakChange::Milestone, days, None),
        Outcome::FreezeEarned { .. } => (pb::StreakChange::FreezeEarned, 0, None),
        Outcome::FreezeUsed { date } => (pb::StreakChange::FreezeUsed, 0, Some(date)),
        Outcome::StreakBroken { date, .. } => (pb::StreakChange::Broken, 0, Some(date)),
    }
}

/// Events for both partners' devices: one per change, each with the streak as that partner
/// sees it. Nothing in calm mode, except the switch itself.
async fn announce(
    conn: &mut Conn<'_>,
    l: &Loaded,
    changes: &[(pb::StreakChange, u32, Option<NaiveDate>)],
    now: DateTime<Utc>,
) -> Result<Vec<(String, pb::Event)>> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let mut items = Vec::new();
    let views = [
        view(conn, l, Side::A, now).await?,
        view(conn, l, Side::B, now).await?,
    ];
    let devices = [
        devices_of(conn, &l.sides.a).await?,
        devices_of(conn, &l.sides.b).await?,
    ];
    for (change, milestone, date) in changes {
        let mut event = new_event(Payload::Heartbeat(pb::Heartbeat::default()), now);
        for (view, devices) in views.iter().zip(&devices) {
            event.payload = Some(Payload::StreakUpdated(pb::StreakUpdated {
                streak: Some(view.clone()),
                change: *change as i32,
                milestone_days: *milestone,
                date: date.map(day_str).unwrap_or_default(),
            }));
            items.extend(devices.iter().map(|d| (d.clone(), event.clone())));
        }
    }
    Ok(items)
}

/// Counts a qualifying action (a tap, an answer) by `account_id` at `now`, inside the action's
/// own transaction: locks the couple, then as [`record_actions`].
pub async fn record_action(
    conn: &mut AnyConnection,
    couple_id: &str,
    account_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<(String, pb::Event)>> {
    lock_couple(conn, couple_id).await?;
    record_actions(
        &mut Conn::Sqlx(conn),
        &[Action {
            couple_id,
            account_id,
            now,
        }],
    )
    .await
}

/// One qualifying action: who, in which couple, when.
#[derive(Debug, Clone, Copy)]
pub struct Action<'a> {
    /// The actor's couple.
    pub couple_id: &'a str,
    /// The actor.
    pub account_id: &'a str,
    /// When it happened.
    pub now: DateTime<Utc>,
}

/// One couple's streak during a batch: what was loaded, the unsettled dates, and what changed.
struct Pending {
    l: Loaded,
    /// Stored dates from `settled_through` on (as loaded, then as changed): the unsettled
    /// ones, and the newest settled one, where most actions land once a day is connected.
    open: HashMap<NaiveDate, DayRecord>,
    /// Dates to write back.
    dirty: HashMap<NaiveDate, DayRecord>,
    outcomes: Vec<Outcome>,
    last_now: DateTime<Utc>,
}

impl Pending {
    /// Settles, in memory, every date that is over for both partners at `now`: O(dates
    /// settled), from the unsettled dates loaded with the couple.
    fn settle(&mut self, now: DateTime<Utc>) {
        let through = engine::settle_through(&self.l.a, &self.l.b, now);
        if through <= self.l.state.settled_through {
            return;
        }
        let open = &mut self.open;
        let (a, b, pauses) = (&self.l.a, &self.l.b, &self.l.pauses);
        let settlement = self.l.state.settle(
            through,
            |d| open.remove(&d),
            |d| pauses.iter().any(|(_, r, _)| r.contains(d)),
            |side, d| match side {
                Side::A => a.lived(d),
                Side::B => b.lived(d),
            },
        );
        for record in settlement.records {
            self.dirty.insert(record.date, record);
        }
        self.outcomes.extend(settlement.outcomes);
    }
}

/// Counts qualifying actions, in order, inside the caller's transaction (the couples must be
/// locked already): settles what is over, stamps each actor's local date, and returns the
/// events to append. Set-based: whatever the number of actions and couples, five indexed reads
/// load the couples' state and unsettled dates, and two multi-row writes store the day and
/// state rows; only a change worth announcing (a settled date, a milestone) costs more.
pub async fn record_actions(
    conn: &mut Conn<'_>,
    actions: &[Action<'_>],
) -> Result<Vec<(String, pb::Event)>> {
    if actions.is_empty() {
        return Ok(Vec::new());
    }
    let mut couples: Vec<&str> = actions.iter().map(|a| a.couple_id).collect();
    couples.sort_unstable();
    couples.dedup();
    let mut pending = load_many(conn, &couples).await?;
    for action in actions {
        let p = pending
            .get_mut(action.couple_id)
            .ok_or_else(|| Error::Corrupt(format!("couple {} vanished", action.couple_id)))?;
        let now = action.now;
        p.last_now = p.last_now.max(now);
        p.settle(now);
        let side = p.l.sides.side_of(action.account_id);
        let date = p.l.history(side).local_date_at(now);
        let mut day = match p.dirty.get(&date).or_else(|| p.open.get(&date)) {
            Some(d) => d.clone(),
            // An older settled date (the actor flew back over the date line).
            None if date <= p.l.state.settled_through => {
                load_day(conn, action.couple_id, date).await?
            }
            None => DayRecord::new(date),
        };
        let paused = p.l.paused(date);
        let outcomes = p.l.state.record_action(&mut day, side, paused);
        p.outcomes.extend(outcomes);
        if date > p.l.state.settled_through {
            p.open.insert(date, day.clone());
        }
        p.dirty.insert(date, day);
    }
    save_many(conn, &pending.values().collect::<Vec<_>>()).await?;
    let mut items = Vec::new();
    for couple in couples {
        let p = &pending[couple];
        if p.outcomes.is_empty() {
            continue;
        }
        let changes: Vec<_> = p.outcomes.iter().map(describe).collect();
        items.extend(announce(conn, &p.l, &changes, p.last_now).await?);
    }
    Ok(items)
}

/// Loads the streak of every couple in `couples` (sorted, distinct) with five statements.
async fn load_many(conn: &mut Conn<'_>, couples: &[&str]) -> Result<HashMap<String, Pending>> {
    let sqlite = conn.is_sqlite();
    let list = crate::db::json_list(sqlite);
    let couples_json = crate::db::json_strs(couples.iter().copied());
    let all = [Param::Text(&couples_json)];
    let sql =
        format!("SELECT id, account_a, account_b, created_at_us FROM couples WHERE id IN ({list})");
    let rows = conn.fetch_all(&sql, &all).await?;
    let mut members: Vec<(Sides, i64)> = Vec::with_capacity(rows.len());
    for r in &rows {
        members.push((
            Sides {
                couple_id: r.get("id")?,
                a: r.get("account_a")?,
                b: r.get("account_b")?,
            },
            r.get("created_at_us")?,
        ));
    }
    // Zone histories of both members of every couple.
    let accounts: Vec<&str> = members
        .iter()
        .flat_map(|(s, _)| [s.a.as_str(), s.b.as_str()])
        .collect();
    let sql = format!(
        "SELECT account_id, from_us, zone FROM zone_history WHERE account_id IN ({list}) \
         ORDER BY account_id, from_us"
    );
    let accounts = crate::db::json_strs(accounts.iter().copied());
    let mut segments: HashMap<String, Vec<(DateTime<Utc>, chrono_tz::Tz)>> = HashMap::new();
    for r in conn.fetch_all(&sql, &[Param::Text(&accounts)]).await? {
        let zone: String = r.get("zone")?;
        let tz = zone
            .parse()
            .map_err(|_| Error::Corrupt(format!("zone {zone:?}")))?;
        segments
            .entry(r.get("account_id")?)
            .or_default()
            .push((from_us(r.get("from_us")?), tz));
    }
    let mut history = |account: &str| {
        ZoneHistory::from_segments(segments.remove(account).unwrap_or_default())
            .ok_or_else(|| Error::Corrupt(format!("no zone history for {account}")))
    };
    let mut states: HashMap<String, StreakState> = HashMap::new();
    let sql = format!(
        "SELECT couple_id, first_day, settled_through, current_days, longest_days, freezes, calm \
         FROM couple_streaks WHERE couple_id IN ({list})"
    );
    for r in conn.fetch_all(&sql, &all).await? {
        states.insert(
            r.get("couple_id")?,
            StreakState {
                first_day: parse_day(&r.get::<String>("first_day")?)?,
                settled_through: parse_day(&r.get::<String>("settled_through")?)?,
                current: r.get::<i64>("current_days")? as u32,
                longest: r.get::<i64>("longest_days")? as u32,
                freezes: r.get::<i64>("freezes")? as u32,
                calm: r.get::<i64>("calm")? != 0,
            },
        );
    }
    let mut pauses: HashMap<String, Vec<(String, PauseRange, String)>> = HashMap::new();
    let sql = format!(
        "SELECT couple_id, id, from_day, to_day, by_account FROM streak_pauses \
         WHERE couple_id IN ({list}) AND cancelled = 0"
    );
    for r in conn.fetch_all(&sql, &all).await? {
        let range = PauseRange {
            from: parse_day(&r.get::<String>("from_day")?)?,
            to: parse_day(&r.get::<String>("to_day")?)?,
        };
        pauses.entry(r.get("couple_id")?).or_default().push((
            r.get("id")?,
            range,
            r.get("by_account")?,
        ));
    }
    // The unsettled dates and the newest settled one (today, once both partners acted):
    // a handful per couple, however long the history.
    let mut open: HashMap<String, HashMap<NaiveDate, DayRecord>> = HashMap::new();
    let sql = format!(
        "SELECT d.couple_id, d.day, d.actions_a, d.actions_b, d.status FROM streak_days d \
         JOIN couple_streaks s ON s.couple_id = d.couple_id \
         WHERE d.couple_id IN ({list}) AND d.day >= s.settled_through"
    );
    for r in conn.fetch_all(&sql, &all).await? {
        let day = day_from_row(&r)?;
        open.entry(r.get("couple_id")?)
            .or_default()
            .insert(day.date, day);
    }
    let mut pending = HashMap::with_capacity(members.len());
    for (sides, paired_us) in members {
        let a = history(&sides.a)?;
        let b = history(&sides.b)?;
        let state = match states.remove(&sides.couple_id) {
            Some(s) => s,
            // Created on first use: the first day is the later of the two local dates at pairing.
            None => StreakState::new(engine::first_day(&a, &b, from_us(paired_us))),
        };
        let couple_id = sides.couple_id.clone();
        let p = Pending {
            open: open.remove(&couple_id).unwrap_or_default(),
            dirty: HashMap::new(),
            outcomes: Vec::new(),
            last_now: DateTime::<Utc>::MIN_UTC,
            l: Loaded {
                pauses: pauses.remove(&couple_id).unwrap_or_default(),
                sides,
                a,
                b,
                state,
            },
        };
        pending.insert(couple_id, p);
    }
    Ok(pending)
}

/// Stores a couple's day.
const SAVE_DAY: PerRow = per_row!(
    "INSERT INTO streak_days (couple_id, day, actions_a, actions_b, status)",
    sqlite: "VALUES ($1, $2, $3, $4, $5)",
    postgres: concat!(
        "SELECT j.value ->> 0, j.value ->> 1, CAST(j.value ->> 2 AS BIGINT), ",
        "CAST(j.value ->> 3 AS BIGINT), j.value ->> 4 FROM ", pg_rows!(), " WHERE true"
    ),
    "ON CONFLICT (couple_id, day) DO UPDATE SET actions_a = excluded.actions_a, \
     actions_b = excluded.actions_b, status = excluded.status",
);

/// Stores a couple's streak state.
const SAVE_STATE: PerRow = per_row!(
    "INSERT INTO couple_streaks (couple_id, first_day, settled_through, current_days, \
     longest_days, freezes, calm)",
    sqlite: "VALUES ($1, $2, $3, $4, $5, $6, $7)",
    postgres: concat!(
        "SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, CAST(j.value ->> 3 AS BIGINT), ",
        "CAST(j.value ->> 4 AS BIGINT), CAST(j.value ->> 5 AS BIGINT), ",
        "CAST(j.value ->> 6 AS BIGINT) FROM ", pg_rows!(), " WHERE true"
    ),
    "ON CONFLICT (couple_id) DO UPDATE SET settled_through = excluded.settled_through, \
     current_days = excluded.current_days, longest_days = excluded.longest_days, \
     freezes = excluded.freezes, calm = excluded.calm",
);

/// Writes the changed day rows and every touched state row back ([`SAVE_DAY`], [`SAVE_STATE`]):
/// on PostgreSQL two statements.
async fn save_many(conn: &mut Conn<'_>, pending: &[&Pending]) -> Result<()> {
    let days: Vec<Vec<Val>> = pending
        .iter()
        .flat_map(|p| {
            let c = &p.l.sides.couple_id;
            p.dirty.values().map(move |d| {
                vec![
                    Val::from(c),
                    Val::from(day_str(d.date)),
                    Val::from(d.actions_a),
                    Val::from(d.actions_b),
                    Val::from(d.status.as_str()),
                ]
            })
        })
        .collect();
    conn.per_row(SAVE_DAY, &days).await?;
    let states: Vec<Vec<Val>> = pending
        .iter()
        .map(|p| {
            let s = &p.l.state;
            vec![
                Val::from(&p.l.sides.couple_id),
                Val::from(day_str(s.first_day)),
                Val::from(day_str(s.settled_through)),
                Val::from(s.current),
                Val::from(s.longest),
                Val::from(s.freezes),
                Val::Int(s.calm.into()),
            ]
        })
        .collect();
    conn.per_row(SAVE_STATE, &states).await?;
    Ok(())
}

/// The caller's streak now (settling first, and announcing what settling found).
pub async fn get_streak(state: &AppState, caller: &Caller) -> Result<pb::GetStreakResponse> {
    let now = state.clock.now();
    let mut tx = state.db.begin_write().await?;
    let (_, couple_id) = require_couple(&mut tx, &caller.account_id).await?;
    lock_couple(&mut tx, &couple_id).await?;
    let mut p = load(&mut Conn::Sqlx(&mut tx), &couple_id).await?;
    p.settle(now);
    save_many(&mut Conn::Sqlx(&mut tx), &[&p]).await?;
    let changes: Vec<_> = p.outcomes.iter().map(describe).collect();
    let l = &p.l;
    let items = announce(&mut Conn::Sqlx(&mut tx), l, &changes, now).await?;
    let streak = view(
        &mut Conn::Sqlx(&mut tx),
        l,
        l.sides.side_of(&caller.account_id),
        now,
    )
    .await?;
    commit(state, tx, items).await?;
    Ok(pb::GetStreakResponse {
        streak: Some(streak),
    })
}

/// One month of the couple's history, as the caller sees it.
pub async fn history(
    state: &AppState,
    caller: &Caller,
    year: i32,
    month: u32,
) -> Result<pb::GetStreakHistoryResponse> {
    if !(1..=12).contains(&month) {
        return Err(Error::invalid("month", "must be 1-12"));
    }
    if !(2000..=2200).contains(&year) {
        return Err(Error::invalid("year", "must be 2000-2200"));
    }
    // Settle first so the month shows what is final.
    get_streak(state, caller).await?;
    let now = state.clock.now();
    let mut conn = state.db.pool().acquire().await?;
    let (_, couple_id) = require_couple(&mut conn, &caller.account_id).await?;
    let l = load(&mut Conn::Sqlx(&mut conn), &couple_id).await?.l;
    let (first, last) = engine::month_bounds(year, month)
        .ok_or_else(|| Error::invalid("month", "must be a real month"))?;
    let rows = days_between(
        &mut Conn::Sqlx(&mut conn),
        &couple_id,
        first.pred_opt().unwrap_or(first),
        last,
    )
    .await?;
    let latest = l.a.local_date_at(now).max(l.b.local_date_at(now));
    let me = l.sides.side_of(&caller.account_id);
    let days = engine::calendar_month(&l.state, year, month, rows)
        .into_iter()
        .filter(|d| d.date <= latest)
        .map(|d| pb::StreakDay {
            date: day_str(d.date),
            status: status_to_pb(d.status) as i32,
            my_actions: d.actions(me),
            partner_actions: d.actions(me.other()),
        })
        .collect();
    Ok(pb::GetStreakHistoryResponse { days })
}

fn status_to_pb(s: DayStatus) -> pb::DayStatus {
    match s {
        DayStatus::Open => pb::DayStatus::Open,
        DayStatus::Connected => pb::DayStatus::Connected,
        DayStatus::Frozen => pb::DayStatus::Frozen,
        DayStatus::Paused => pb::DayStatus::Paused,
        DayStatus::Skipped => pb::DayStatus::Skipped,
        DayStatus::Missed => pb::DayStatus::Missed,
    }
}

fn input_day(field: &'static str, s: &str) -> Result<NaiveDate> {
    if s.len() != 10 {
        return Err(Error::invalid(field, "must be a date YYYY-MM-DD"));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| Error::invalid(field, "must be a date YYYY-MM-DD"))
}

/// A change of the streak's settings.
enum SettingsChange {
    Pause {
        id: String,
        from: NaiveDate,
        to: NaiveDate,
    },
    Cancel {
        id: String,
    },
    Calm(bool),
}

/// Settles, applies `change` (checking it against the settled state), saves, and tells both
/// partners, in one transaction.
async fn change_settings(
    state: &AppState,
    caller: &Caller,
    change: SettingsChange,
) -> Result<pb::Streak> {
    let now = state.clock.now();
    let mut tx = state.db.begin_write().await?;
    let (_, couple_id) = require_couple(&mut tx, &caller.account_id).await?;
    lock_couple(&mut tx, &couple_id).await?;
    let mut p = load(&mut Conn::Sqlx(&mut tx), &couple_id).await?;
    p.settle(now);
    let outcomes = std::mem::take(&mut p.outcomes);
    let me = p.l.sides.side_of(&caller.account_id);
    let today = p.l.history(me).local_date_at(now);
    let was_calm = p.l.state.calm;
    match change {
        SettingsChange::Pause { id, from, to } => {
            let range = PauseRange::request(&p.l.state, today, from, to)
                .map_err(|e| Error::invalid("from_date", e.to_string()))?;
            sqlx::query(
                "INSERT INTO streak_pauses (id, couple_id, from_day, to_day, by_account, created_at_us) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&id)
            .bind(&couple_id)
            .bind(day_str(range.from))
            .bind(day_str(range.to))
            .bind(&caller.account_id)
            .bind(to_us(now))
            .execute(&mut *tx)
            .await?;
            p.l.pauses.push((id, range, caller.account_id.clone()));
        }
        SettingsChange::Cancel { id } => {
            let i =
                p.l.pauses
                    .iter()
                    .position(|(p, _, _)| *p == id)
                    .ok_or(Error::NotFound("pause"))?;
            let from = p.l.pauses[i].1.from;
            if from <= today || p.l.state.is_settled(from) {
                return Err(Error::Refused(Refusal::PauseStarted));
            }
            sqlx::query("UPDATE streak_pauses SET cancelled = 1 WHERE id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            p.l.pauses.remove(i);
        }
        SettingsChange::Calm(calm) => p.l.state.calm = calm,
    }
    save_many(&mut Conn::Sqlx(&mut tx), &[&p]).await?;
    let mut changes: Vec<_> = outcomes.iter().map(describe).collect();
    changes.push((pb::StreakChange::Settings, 0, None));
    // Switching calm mode on is still said (so both apps hide the streak); then nothing more.
    let items = if p.l.state.calm && !was_calm {
        p.l.state.calm = false;
        let items = announce(
            &mut Conn::Sqlx(&mut tx),
            &p.l,
            &[(pb::StreakChange::Settings, 0, None)],
            now,
        )
        .await;
        p.l.state.calm = true;
        let mut items = items?;
        for (_, e) in &mut items {
            if let Some(Payload::StreakUpdated(u)) = &mut e.payload {
                u.streak = Some(pb::Streak {
                    calm: true,
                    ..Default::default()
                });
            }
        }
        items
    } else if p.l.state.calm {
        Vec::new()
    } else {
        announce(&mut Conn::Sqlx(&mut tx), &p.l, &changes, now).await?
    };
    let streak = view(&mut Conn::Sqlx(&mut tx), &p.l, me, now).await?;
    commit(state, tx, items).await?;
    Ok(streak)
}

/// Schedules a pause; both partners are told.
pub async fn schedule_pause(
    state: &AppState,
    caller: &Caller,
    req: pb::SchedulePauseRequest,
) -> Result<pb::SchedulePauseResponse> {
    let from = input_day("from_date", &req.from_date)?;
    let to = input_day("to_date", &req.to_date)?;
    let id = Uuid::now_v7().to_string();
    let streak = change_settings(
        state,
        caller,
        SettingsChange::Pause {
            id: id.clone(),
            from,
            to,
        },
    )
    .await?;
    let pause = streak.pauses.into_iter().find(|p| p.pause_id == id);
    Ok(pb::SchedulePauseResponse { pause })
}

/// Cancels a pause that has not started.
pub async fn cancel_pause(state: &AppState, caller: &Caller, pause_id: &str) -> Result<()> {
    let id = crate::domain::validate::id("pause_id", pause_id)?;
    change_settings(state, caller, SettingsChange::Cancel { id }).await?;
    Ok(())
}

/// Turns calm mode on or off.
pub async fn set_calm(
    state: &AppState,
    caller: &Caller,
    calm: bool,
) -> Result<pb::SetCalmModeResponse> {
    let streak = change_settings(state, caller, SettingsChange::Calm(calm)).await?;
    Ok(pb::SetCalmModeResponse {
        streak: Some(streak),
    })
}

/// Today's local date of an account (for picking prompts).
pub async fn local_today(
    conn: &mut AnyConnection,
    account_id: &str,
    now: DateTime<Utc>,
) -> Result<NaiveDate> {
    Ok(zone_history(conn, account_id).await?.local_date_at(now))
}

/// A stable number for a couple (for picking prompts).
pub fn couple_uuid(couple_id: &str) -> Uuid {
    Uuid::try_parse(couple_id).unwrap_or_else(|_| Uuid::nil())
}
