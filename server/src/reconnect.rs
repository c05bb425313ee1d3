//! The reconnect plan as stored: the plan (proposed, running, paused, finished, ended), each
//! partner's place in it (when their next step comes) and the steps that came. The jobs tick
//! delivers due steps one by one in the group commit; every change tells both partners, each
//! as they see the plan. The rules are in [`crate::domain::reconnect`].

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use uuid::Uuid;

use crate::accounts;
use crate::auth::Caller;
use crate::couples::{self, require_couple};
use crate::db::{timestamp_us, to_us};
use crate::delivery::{account_devices, new_event, to_each};
use crate::domain::reconnect::{self, STEPS, next_step};
use crate::domain::validate;
use crate::error::{Error, Refusal, Result};
use crate::store::{AccountRow, day_str, parse_day};
use crate::txn::WriteTx;

/// The caller's couple (locked for this transaction) and partner's account id.
async fn ours(conn: &mut AnyConnection, caller: &Caller) -> Result<(String, String)> {
    let (_, couple_id) = require_couple(conn, &caller.account_id).await?;
    couples::lock_any(conn, &[&couple_id]).await?;
    let partner = couples::partner(conn, &couple_id, &caller.account_id).await?;
    Ok((couple_id, partner.id))
}

/// A checked `StartReconnect`: the local time steps come at.
pub fn check_start(req: &pb::StartReconnectRequest) -> Result<NaiveTime> {
    reconnect::local_time("local_time", &req.local_time)
}

/// A checked plan id.
pub fn check_plan(plan_id: &str) -> Result<String> {
    Ok(validate::uuid("plan_id", plan_id)?.to_string())
}

/// A checked step number.
pub fn check_number(number: u32) -> Result<u32> {
    if (1..=STEPS).contains(&number) {
        Ok(number)
    } else {
        Err(Error::invalid("number", "must be 1-7"))
    }
}

/// A plan's state as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Proposed,
    Running,
    Paused,
    Finished,
    Ended,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Proposed => "proposed",
            State::Running => "running",
            State::Paused => "paused",
            State::Finished => "finished",
            State::Ended => "ended",
        }
    }

    fn parse(s: &str) -> Result<State> {
        Ok(match s {
            "proposed" => State::Proposed,
            "running" => State::Running,
            "paused" => State::Paused,
            "finished" => State::Finished,
            "ended" => State::Ended,
            other => return Err(Error::Corrupt(format!("reconnect state {other:?}"))),
        })
    }

    fn open(self) -> bool {
        matches!(self, State::Proposed | State::Running | State::Paused)
    }

    fn to_pb(self) -> pb::ReconnectState {
        match self {
            State::Proposed => pb::ReconnectState::Proposed,
            State::Running => pb::ReconnectState::Running,
            State::Paused => pb::ReconnectState::Paused,
            State::Finished => pb::ReconnectState::Finished,
            State::Ended => pb::ReconnectState::Ended,
        }
    }
}

const COLUMNS: &str = "id, couple_id, started_by, local_time, state, proposed_at_us, \
     accepted_at_us, ended_at_us, ended_by, paused_by";

/// A plan as stored.
#[derive(Debug, Clone)]
struct Plan {
    id: String,
    couple_id: String,
    started_by: String,
    time: NaiveTime,
    state: State,
    proposed_at_us: i64,
    accepted_at_us: Option<i64>,
    ended_at_us: Option<i64>,
    ended_by: Option<String>,
    paused_by: Option<String>,
}

fn from_row(r: &AnyRow) -> Result<Plan> {
    let time: String = r.try_get("local_time")?;
    Ok(Plan {
        id: r.try_get("id")?,
        couple_id: r.try_get("couple_id")?,
        started_by: r.try_get("started_by")?,
        time: NaiveTime::parse_from_str(&time, "%H:%M")
            .map_err(|_| Error::Corrupt(format!("reconnect time {time:?}")))?,
        state: State::parse(&r.try_get::<String, _>("state")?)?,
        proposed_at_us: r.try_get("proposed_at_us")?,
        accepted_at_us: r.try_get("accepted_at_us")?,
        ended_at_us: r.try_get("ended_at_us")?,
        ended_by: r.try_get("ended_by")?,
        paused_by: r.try_get("paused_by")?,
    })
}

async fn select(conn: &mut AnyConnection, filter: &str, binds: &[&str]) -> Result<Option<Plan>> {
    let sql = format!("SELECT {COLUMNS} FROM reconnect_plans WHERE {filter}");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(*b);
    }
    q.fetch_optional(conn)
        .await?
        .map(|r| from_row(&r))
        .transpose()
}

/// The couple's plan `id`, or NOT_FOUND.
async fn plan_of(conn: &mut AnyConnection, id: &str, couple_id: &str) -> Result<Plan> {
    select(conn, "id = $1 AND couple_id = $2", &[id, couple_id])
        .await?
        .ok_or(Error::NotFound("reconnect plan"))
}

async fn save(conn: &mut AnyConnection, p: &Plan) -> Result<()> {
    sqlx::query(
        "UPDATE reconnect_plans SET state = $1, open = $2, accepted_at_us = $3, \
         ended_at_us = $4, ended_by = $5, paused_by = $6 WHERE id = $7",
    )
    .bind(p.state.as_str())
    .bind(i64::from(p.state.open()))
    .bind(p.accepted_at_us)
    .bind(p.ended_at_us)
    .bind(p.ended_by.as_deref())
    .bind(p.paused_by.as_deref())
    .bind(&p.id)
    .execute(conn)
    .await?;
    Ok(())
}

/// One partner's steps that came: `(number, came_at µs, came_on, done)`.
type Came = Vec<(u32, i64, String, bool)>;

async fn came_of(conn: &mut AnyConnection, plan: &str, account: &str) -> Result<Came> {
    let rows = sqlx::query(
        "SELECT number, came_at_us, came_on, done_at_us FROM reconnect_steps \
         WHERE plan_id = $1 AND account_id = $2 ORDER BY number",
    )
    .bind(plan)
    .bind(account)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                u32::try_from(r.try_get::<i64, _>("number")?).unwrap_or(0),
                r.try_get("came_at_us")?,
                r.try_get("came_on")?,
                r.try_get::<Option<i64>, _>("done_at_us")?.is_some(),
            ))
        })
        .collect()
}

/// When `account`'s next step comes, if scheduled.
async fn next_due_of(conn: &mut AnyConnection, plan: &str, account: &str) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT next_due_us FROM reconnect_progress WHERE plan_id = $1 AND account_id = $2",
    )
    .bind(plan)
    .bind(account)
    .fetch_optional(conn)
    .await?
    .flatten())
}

/// A step as `me` sees it.
fn step_pb(number: u32, mine: &Came, theirs: &Came) -> pb::ReconnectStep {
    let s = reconnect::step(number);
    let came = mine.iter().find(|c| c.0 == number);
    pb::ReconnectStep {
        number,
        kind: s.map_or(0, |s| s.kind as i32),
        title: s.map(|s| s.title.to_owned()).unwrap_or_default(),
        prompt: s.map(|s| s.prompt.to_owned()).unwrap_or_default(),
        came_at: came.map(|c| timestamp_us(c.1)),
        came_on: came.map(|c| c.2.clone()).unwrap_or_default(),
        i_done: came.is_some_and(|c| c.3),
        partner_done: theirs.iter().any(|c| c.0 == number && c.3),
    }
}

/// The plan as `me` sees it (`partner` is the other partner's account id).
async fn view(
    conn: &mut AnyConnection,
    p: &Plan,
    me: &str,
    partner: &str,
) -> Result<pb::ReconnectPlan> {
    let mine = came_of(conn, &p.id, me).await?;
    let theirs = came_of(conn, &p.id, partner).await?;
    view_with(conn, p, me, &mine, &theirs).await
}

/// The plan as `me` sees it, with both partners' steps that came already loaded.
async fn view_with(
    conn: &mut AnyConnection,
    p: &Plan,
    me: &str,
    mine: &Came,
    theirs: &Came,
) -> Result<pb::ReconnectPlan> {
    let next = next_due_of(conn, &p.id, me).await?;
    Ok(pb::ReconnectPlan {
        plan_id: p.id.clone(),
        started_by_account_id: p.started_by.clone(),
        state: p.state.to_pb() as i32,
        local_time: p.time.format("%H:%M").to_string(),
        proposed_at: Some(timestamp_us(p.proposed_at_us)),
        accepted_at: p.accepted_at_us.map(timestamp_us),
        ended_at: p.ended_at_us.map(timestamp_us),
        ended_by_account_id: p.ended_by.clone().unwrap_or_default(),
        paused_by_account_id: p.paused_by.clone().unwrap_or_default(),
        steps: (1..=STEPS).map(|n| step_pb(n, mine, theirs)).collect(),
        my_steps_come: u32::try_from(mine.len()).unwrap_or(0),
        partner_steps_come: u32::try_from(theirs.len()).unwrap_or(0),
        my_next_step_at: next.filter(|_| p.state == State::Running).map(timestamp_us),
    })
}

/// Who gets told of a change, and how.
enum Audience<'a> {
    /// The partner (silently in their quiet hours) and the caller's other devices (silently).
    FromCaller(&'a Caller),
    /// Both partners' devices, silently (the jobs tick, the couple ending).
    BothSilently,
}

/// A `ReconnectUpdated` to each partner, as they see the plan. With [`Audience::FromCaller`],
/// `step` (a number of the caller's) goes to the partner too, as they see it.
async fn tell(
    tx: &mut WriteTx,
    p: &Plan,
    change: pb::ReconnectChange,
    audience: Audience<'_>,
    step: Option<u32>,
    now: DateTime<Utc>,
) -> Result<()> {
    let sides = couples::sides(tx.conn(), &p.couple_id).await?;
    let came_a = came_of(tx.conn(), &p.id, &sides.a).await?;
    let came_b = came_of(tx.conn(), &p.id, &sides.b).await?;
    for (me, mine, theirs) in [(&sides.a, &came_a, &came_b), (&sides.b, &came_b, &came_a)] {
        let conn = tx.conn();
        let mut devices = account_devices(conn, me).await?;
        let (silent, shown) = match &audience {
            Audience::FromCaller(c) if c.account_id == *me => {
                devices.retain(|d| *d != c.device_id);
                (true, None)
            }
            Audience::FromCaller(_) => {
                let partner = accounts::load(conn, me).await?;
                let shown = step.map(|n| step_pb(n, mine, theirs));
                (partner.clock(now).in_quiet_hours, shown)
            }
            Audience::BothSilently => (true, None),
        };
        if devices.is_empty() {
            continue;
        }
        let plan = view_with(conn, p, me, mine, theirs).await?;
        let event = updated(change, plan, shown, silent, now);
        tx.tell(to_each(&devices, &event));
    }
    Ok(())
}

fn updated(
    change: pb::ReconnectChange,
    plan: pb::ReconnectPlan,
    step: Option<pb::ReconnectStep>,
    silent: bool,
    now: DateTime<Utc>,
) -> pb::Event {
    new_event(
        Payload::ReconnectUpdated(Box::new(pb::ReconnectUpdated {
            change: change as i32,
            plan: Some(plan),
            step,
            silent,
        })),
        now,
    )
}

/// `StartReconnect`, in the group commit: at most one plan proposed or running per couple.
pub async fn start(
    tx: &mut WriteTx,
    caller: &Caller,
    time: NaiveTime,
    now: DateTime<Utc>,
) -> Result<pb::StartReconnectResponse> {
    let conn = tx.conn();
    let (couple_id, partner) = ours(conn, caller).await?;
    if select(conn, "couple_id = $1 AND open = 1", &[&couple_id])
        .await?
        .is_some()
    {
        return Err(Error::Refused(Refusal::ReconnectAlready));
    }
    let p = Plan {
        id: Uuid::now_v7().to_string(),
        couple_id: couple_id.clone(),
        started_by: caller.account_id.clone(),
        time,
        state: State::Proposed,
        proposed_at_us: to_us(now),
        accepted_at_us: None,
        ended_at_us: None,
        ended_by: None,
        paused_by: None,
    };
    sqlx::query(
        "INSERT INTO reconnect_plans (id, couple_id, started_by, local_time, state, open, \
         proposed_at_us) VALUES ($1, $2, $3, $4, $5, 1, $6)",
    )
    .bind(&p.id)
    .bind(&p.couple_id)
    .bind(&p.started_by)
    .bind(p.time.format("%H:%M").to_string())
    .bind(p.state.as_str())
    .bind(p.proposed_at_us)
    .execute(&mut *conn)
    .await?;
    tell(
        tx,
        &p,
        pb::ReconnectChange::Proposed,
        Audience::FromCaller(caller),
        None,
        now,
    )
    .await?;
    let plan = view(tx.conn(), &p, &caller.account_id, &partner).await?;
    Ok(pb::StartReconnectResponse { plan: Some(plan) })
}

/// Schedules `account`'s next step of a running plan from `now` (none once all seven came).
async fn schedule(
    conn: &mut AnyConnection,
    p: &Plan,
    account: &AccountRow,
    now: DateTime<Utc>,
) -> Result<()> {
    let came = came_of(conn, &p.id, &account.id).await?;
    schedule_after(conn, p, account, &came, now).await
}

/// Schedules `account`'s next step after the steps that `came` (as just loaded or written).
async fn schedule_after(
    conn: &mut AnyConnection,
    p: &Plan,
    account: &AccountRow,
    came: &Came,
    now: DateTime<Utc>,
) -> Result<()> {
    let last_day = came.last().map(|c| parse_day(&c.2)).transpose()?;
    let next = (came.len() < STEPS as usize)
        .then(|| next_step(now, account.zone, p.time, account.quiet, last_day))
        .flatten();
    write_progress(conn, &p.id, &account.id, next.map(|n| (n.deliver, n.day))).await
}

async fn write_progress(
    conn: &mut AnyConnection,
    plan: &str,
    account: &str,
    next: Option<(DateTime<Utc>, NaiveDate)>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO reconnect_progress (plan_id, account_id, next_due_us, next_day) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (plan_id, account_id) DO UPDATE SET \
         next_due_us = excluded.next_due_us, next_day = excluded.next_day",
    )
    .bind(plan)
    .bind(account)
    .bind(next.map(|n| to_us(n.0)))
    .bind(next.map(|n| day_str(n.1)))
    .execute(conn)
    .await?;
    Ok(())
}

async fn unschedule(conn: &mut AnyConnection, plan: &str) -> Result<()> {
    sqlx::query(
        "UPDATE reconnect_progress SET next_due_us = NULL, next_day = NULL WHERE plan_id = $1",
    )
    .bind(plan)
    .execute(conn)
    .await?;
    Ok(())
}

/// Schedules both partners' next steps of a running plan from `now`.
async fn schedule_both(conn: &mut AnyConnection, p: &Plan, now: DateTime<Utc>) -> Result<()> {
    let sides = couples::sides(conn, &p.couple_id).await?;
    for id in [&sides.a, &sides.b] {
        let account = accounts::load(conn, id).await?;
        schedule(conn, p, &account, now).await?;
    }
    Ok(())
}

/// `AcceptReconnect`, in the group commit: the partner accepts; each partner's first step
/// comes at the plan's next local time on their clock.
pub async fn accept(
    tx: &mut WriteTx,
    caller: &Caller,
    id: &str,
    now: DateTime<Utc>,
) -> Result<pb::AcceptReconnectResponse> {
    let conn = tx.conn();
    let (couple_id, partner) = ours(conn, caller).await?;
    let mut p = plan_of(conn, id, &couple_id).await?;
    match p.state {
        State::Proposed if p.started_by == caller.account_id => {
            return Err(Error::invalid(
                "plan_id",
                "is your own proposal; your partner accepts it",
            ));
        }
        State::Proposed => {
            p.state = State::Running;
            p.accepted_at_us = Some(to_us(now));
            save(conn, &p).await?;
            schedule_both(conn, &p, now).await?;
            tell(
                tx,
                &p,
                pb::ReconnectChange::Accepted,
                Audience::FromCaller(caller),
                None,
                now,
            )
            .await?;
        }
        // Accepted already (a retry): nothing changes.
        State::Running | State::Paused => {}
        State::Finished | State::Ended => return Err(Error::Refused(Refusal::ReconnectEnded)),
    }
    let plan = view(tx.conn(), &p, &caller.account_id, &partner).await?;
    Ok(pb::AcceptReconnectResponse { plan: Some(plan) })
}

/// `PauseReconnect`, in the group commit.
pub async fn pause(
    tx: &mut WriteTx,
    caller: &Caller,
    id: &str,
    paused: bool,
    now: DateTime<Utc>,
) -> Result<pb::PauseReconnectResponse> {
    let conn = tx.conn();
    let (couple_id, partner) = ours(conn, caller).await?;
    let mut p = plan_of(conn, id, &couple_id).await?;
    let change = match (p.state, paused) {
        (State::Running, true) => {
            p.state = State::Paused;
            p.paused_by = Some(caller.account_id.clone());
            save(conn, &p).await?;
            unschedule(conn, &p.id).await?;
            Some(pb::ReconnectChange::Paused)
        }
        (State::Paused, false) => {
            p.state = State::Running;
            p.paused_by = None;
            save(conn, &p).await?;
            schedule_both(conn, &p, now).await?;
            Some(pb::ReconnectChange::Resumed)
        }
        (State::Running, false) | (State::Paused, true) => None,
        (State::Proposed, _) => {
            return Err(Error::invalid("plan_id", "has not been accepted yet"));
        }
        (State::Finished | State::Ended, _) => {
            return Err(Error::Refused(Refusal::ReconnectEnded));
        }
    };
    if let Some(change) = change {
        tell(tx, &p, change, Audience::FromCaller(caller), None, now).await?;
    }
    let plan = view(tx.conn(), &p, &caller.account_id, &partner).await?;
    Ok(pb::PauseReconnectResponse { plan: Some(plan) })
}

/// Ends `p` now (`by`: who, when by hand).
async fn finish(
    conn: &mut AnyConnection,
    p: &mut Plan,
    state: State,
    by: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    p.state = state;
    p.ended_at_us = Some(to_us(now));
    p.ended_by = by.map(str::to_owned);
    p.paused_by = None;
    save(conn, p).await?;
    unschedule(conn, &p.id).await
}

/// `EndReconnect`, in the group commit: ends the plan, withdraws or declines a proposal
/// (again: no change).
pub async fn end(
    tx: &mut WriteTx,
    caller: &Caller,
    id: &str,
    now: DateTime<Utc>,
) -> Result<pb::EndReconnectResponse> {
    let conn = tx.conn();
    let (couple_id, partner) = ours(conn, caller).await?;
    let mut p = plan_of(conn, id, &couple_id).await?;
    if p.state.open() {
        finish(conn, &mut p, State::Ended, Some(&caller.account_id), now).await?;
        tell(
            tx,
            &p,
            pb::ReconnectChange::Ended,
            Audience::FromCaller(caller),
            None,
            now,
        )
        .await?;
    }
    let plan = view(tx.conn(), &p, &caller.account_id, &partner).await?;
    Ok(pb::EndReconnectResponse { plan: Some(plan) })
}

/// `MarkReconnectStep`, in the group commit: one of the caller's steps that came is done.
pub async fn mark(
    tx: &mut WriteTx,
    caller: &Caller,
    id: &str,
    number: u32,
    now: DateTime<Utc>,
) -> Result<pb::MarkReconnectStepResponse> {
    let conn = tx.conn();
    let (couple_id, partner) = ours(conn, caller).await?;
    let p = plan_of(conn, id, &couple_id).await?;
    let came = came_of(conn, &p.id, &caller.account_id).await?;
    let Some(step) = came.iter().find(|c| c.0 == number) else {
        return Err(Error::Refused(Refusal::ReconnectStepNotYet));
    };
    if !step.3 {
        sqlx::query(
            "UPDATE reconnect_steps SET done_at_us = $1 \
             WHERE plan_id = $2 AND account_id = $3 AND number = $4",
        )
        .bind(to_us(now))
        .bind(&p.id)
        .bind(&caller.account_id)
        .bind(i64::from(number))
        .execute(&mut *conn)
        .await?;
        // The partner hears of it with the step as they see it; the caller's other devices
        // get the plan.
        tell(
            tx,
            &p,
            pb::ReconnectChange::PartnerDone,
            Audience::FromCaller(caller),
            Some(number),
            now,
        )
        .await?;
    }
    let plan = view(tx.conn(), &p, &caller.account_id, &partner).await?;
    Ok(pb::MarkReconnectStepResponse { plan: Some(plan) })
}

/// `GetReconnect`: the couple's latest plan, as the caller sees it.
pub async fn get(pool: &AnyPool, caller: &Caller) -> Result<pb::GetReconnectResponse> {
    let mut conn = pool.acquire().await?;
    let (_, couple_id) = require_couple(&mut conn, &caller.account_id).await?;
    let partner = couples::partner(&mut conn, &couple_id, &caller.account_id)
        .await?
        .id;
    let latest = select(
        &mut conn,
        "couple_id = $1 ORDER BY proposed_at_us DESC, id DESC LIMIT 1",
        &[&couple_id],
    )
    .await?;
    let plan = match latest {
        Some(p) => Some(view(&mut conn, &p, &caller.account_id, &partner).await?),
        None => None,
    };
    Ok(pb::GetReconnectResponse { plan })
}

/// A partner's step that is due: `(plan, account, couple)`.
#[derive(Debug, Clone)]
pub struct Due {
    plan_id: String,
    account_id: String,
    couple_id: String,
}

/// The steps due at `now`, for the jobs tick.
pub async fn due(pool: &AnyPool, now: DateTime<Utc>) -> Result<Vec<Due>> {
    let rows = sqlx::query(
        "SELECT g.plan_id, g.account_id, p.couple_id FROM reconnect_progress g \
         JOIN reconnect_plans p ON p.id = g.plan_id \
         WHERE g.next_due_us IS NOT NULL AND g.next_due_us <= $1 \
         ORDER BY g.next_due_us LIMIT 500",
    )
    .bind(to_us(now))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Due {
                plan_id: r.try_get("plan_id")?,
                account_id: r.try_get("account_id")?,
                couple_id: r.try_get("couple_id")?,
            })
        })
        .collect()
}

/// Delivers a due step (safe from several instances: the second finds it delivered), and
/// schedules the next one for the following local date; the plan finishes once all seven
/// came for both. Whether this call delivered it.
pub async fn deliver(tx: &mut WriteTx, due: &Due, now: DateTime<Utc>) -> Result<bool> {
    let conn = tx.conn();
    couples::lock_any(conn, &[&due.couple_id]).await?;
    let row = sqlx::query(
        "SELECT next_due_us, next_day FROM reconnect_progress \
         WHERE plan_id = $1 AND account_id = $2",
    )
    .bind(&due.plan_id)
    .bind(&due.account_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let (at, day): (Option<i64>, Option<String>) =
        (row.try_get("next_due_us")?, row.try_get("next_day")?);
    let (Some(at), Some(day)) = (at, day) else {
        return Ok(false);
    };
    if at > to_us(now) {
        return Ok(false);
    }
    let Some(mut p) = select(conn, "id = $1", &[&due.plan_id]).await? else {
        return Ok(false);
    };
    if p.state != State::Running {
        return Ok(false);
    }
    let came = came_of(conn, &p.id, &due.account_id).await?;
    let number = u32::try_from(came.len()).unwrap_or(STEPS) + 1;
    if number > STEPS {
        write_progress(conn, &p.id, &due.account_id, None).await?;
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO reconnect_steps (plan_id, account_id, number, came_at_us, came_on) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&p.id)
    .bind(&due.account_id)
    .bind(i64::from(number))
    .bind(to_us(now))
    .bind(&day)
    .execute(&mut *conn)
    .await?;
    let account = accounts::load(conn, &due.account_id).await?;
    // The steps that came, with this one: no need to read them back.
    let mut mine = came;
    mine.push((number, to_us(now), day, false));
    schedule_after(conn, &p, &account, &mine, now).await?;
    let partner = couples::partner(conn, &p.couple_id, &account.id).await?;
    let theirs = came_of(conn, &p.id, &partner.id).await?;
    let step = step_pb(number, &mine, &theirs);
    let plan = view_with(conn, &p, &account.id, &mine, &theirs).await?;
    let devices = account_devices(conn, &account.id).await?;
    let quiet = account.clock(now).in_quiet_hours;
    let event = updated(pb::ReconnectChange::Step, plan, Some(step), quiet, now);
    tx.tell(to_each(&devices, &event));
    if mine.len() >= STEPS as usize && theirs.len() >= STEPS as usize {
        finish(tx.conn(), &mut p, State::Finished, None, now).await?;
        tell(
            tx,
            &p,
            pb::ReconnectChange::Finished,
            Audience::BothSilently,
            None,
            now,
        )
        .await?;
    }
    Ok(true)
}

/// Reschedules `account`'s next step after a change of zone or quiet hours: at the plan's
/// local time on the new clock, never a second step on a local date.
pub async fn reschedule_account(
    conn: &mut AnyConnection,
    account: &AccountRow,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(couple_id) = &account.couple_id else {
        return Ok(());
    };
    if let Some(p) = select(conn, "couple_id = $1 AND state = 'running'", &[couple_id]).await? {
        schedule(conn, &p, account, now).await?;
    }
    Ok(())
}

/// Ends a couple's plan when the couple ends.
pub async fn end_all(tx: &mut WriteTx, couple_id: &str, now: DateTime<Utc>) -> Result<()> {
    if let Some(mut p) = select(tx.conn(), "couple_id = $1 AND open = 1", &[couple_id]).await? {
        finish(tx.conn(), &mut p, State::Ended, None, now).await?;
        tell(
            tx,
            &p,
            pb::ReconnectChange::Ended,
            Audience::BothSilently,
            None,
            now,
        )
        .await?;
    }
    Ok(())
}
