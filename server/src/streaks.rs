//! The couple's streak as stored: one state row per couple, one row per (couple, date), the
//! partners' zone histories and pauses. The rules live in [`crate::domain::streaks`]; this
//! module applies them inside the group commit: qualifying actions (taps, answers) and the
//! streak calls (read, history, pauses, calm mode), set-based for a whole batch.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use uuid::Uuid;

use crate::auth::Caller;
use crate::couples::{Members, Sides};
use crate::db::{from_us, to_us};
use crate::delivery::new_event;
use crate::domain::streaks::{
    self as engine, DayRecord, DayStatus, MILESTONES, Outcome, PauseRange, Side, StreakState,
    ZoneHistory,
};
use crate::error::{Error, Refusal, Result};
use crate::store::{PauseRow, SpaceSpan, Store, StreakRows, TogetherSpan, day_str};

/// One qualifying action: who, in which couple, when.
#[derive(Debug, Clone)]
pub struct Action {
    /// The actor's couple.
    pub couple_id: String,
    /// The actor.
    pub account_id: String,
    /// When it happened.
    pub now: DateTime<Utc>,
}

/// A streak call.
#[derive(Debug, Clone)]
pub enum StreakOp {
    /// The streak now (settling first).
    Get,
    /// One month of history.
    History {
        /// The year.
        year: i32,
        /// The month, 1-12.
        month: u32,
    },
    /// The days from `first` to `last` (at most a few weeks), for a recap.
    Days {
        /// First date.
        first: NaiveDate,
        /// Last date.
        last: NaiveDate,
    },
    /// Schedule a pause (checked against the settled state).
    Pause {
        /// First date.
        from: NaiveDate,
        /// Last date.
        to: NaiveDate,
    },
    /// Cancel a pause that has not started.
    Cancel {
        /// The pause.
        id: String,
    },
    /// Calm mode on or off.
    Calm(bool),
}

/// A streak call in the group commit.
#[derive(Debug)]
pub struct StreakJob {
    /// Who calls.
    pub caller: Caller,
    /// What for.
    pub op: StreakOp,
    /// When.
    pub now: DateTime<Utc>,
}

/// What a streak call answers.
#[derive(Debug, Clone, Default)]
pub struct StreakAnswer {
    /// The streak as the caller sees it.
    pub streak: pb::Streak,
    /// For [`StreakOp::History`] and [`StreakOp::Days`]: the days asked for that have begun
    /// (from the couple's first day on).
    pub days: Vec<pb::StreakDay>,
    /// For [`StreakOp::Pause`]: the new pause.
    pub pause: Option<pb::Pause>,
}

/// Checks a `YYYY-MM-DD` request field.
pub fn input_day(field: &'static str, s: &str) -> Result<NaiveDate> {
    if s.len() != 10 {
        return Err(Error::invalid(field, "must be a date YYYY-MM-DD"));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| Error::invalid(field, "must be a date YYYY-MM-DD"))
}

/// Checks a history request's month.
pub fn check_month(year: i32, month: u32) -> Result<StreakOp> {
    if !(1..=12).contains(&month) {
        return Err(Error::invalid("month", "must be 1-12"));
    }
    if !(2000..=2200).contains(&year) {
        return Err(Error::invalid("year", "must be 2000-2200"));
    }
    Ok(StreakOp::History { year, month })
}

/// A stable number for a couple (for picking prompts).
pub fn couple_uuid(couple_id: &str) -> Uuid {
    Uuid::try_parse(couple_id).unwrap_or_else(|_| Uuid::nil())
}

/// Everything the streak of one couple needs, loaded once per batch.
struct Loaded {
    sides: Sides,
    a: ZoneHistory,
    b: ZoneHistory,
    state: StreakState,
    pauses: Vec<PauseRow>,
    /// Date ranges a partner spent partly in a space, on their own calendar (those that can
    /// still matter: ending on or after the first unsettled date).
    spaced: Vec<(NaiveDate, NaiveDate)>,
    /// Date ranges of confirmed together time, on each partner's own calendar (`[A, B]`).
    together: Vec<[(NaiveDate, NaiveDate); 2]>,
}

impl Loaded {
    fn history(&self, side: Side) -> &ZoneHistory {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    fn paused(&self, date: NaiveDate) -> bool {
        self.pauses.iter().any(|p| range(p).contains(date))
    }

    /// The date ranges of stored spaces, each on its asker's calendar.
    fn space_ranges(&self, spans: &[SpaceSpan]) -> Vec<(NaiveDate, NaiveDate)> {
        spans
            .iter()
            .map(|s| {
                let side = self.sides.side_of(&s.account_id);
                engine::space_dates(self.history(side), from_us(s.from_us), from_us(s.to_us))
            })
            .collect()
    }
}

impl Loaded {
    /// The date ranges of stored together times, on each partner's own calendar.
    fn together_ranges(&self, spans: &[TogetherSpan]) -> Vec<[(NaiveDate, NaiveDate); 2]> {
        spans
            .iter()
            .map(|s| {
                let (from, to) = (from_us(s.from_us), from_us(s.to_us));
                [
                    engine::space_dates(&self.a, from, to),
                    engine::space_dates(&self.b, from, to),
                ]
            })
            .collect()
    }
}

/// Whether `side` spent part of date `d` of their calendar in together time.
fn in_together(ranges: &[[(NaiveDate, NaiveDate); 2]], side: Side, d: NaiveDate) -> bool {
    let i = match side {
        Side::A => 0,
        Side::B => 1,
    };
    ranges.iter().any(|r| r[i].0 <= d && d <= r[i].1)
}

fn in_ranges(ranges: &[(NaiveDate, NaiveDate)], d: NaiveDate) -> bool {
    ranges.iter().any(|(lo, hi)| *lo <= d && d <= *hi)
}

fn range(p: &PauseRow) -> PauseRange {
    PauseRange {
        from: p.from,
        to: p.to,
    }
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
    /// A settings call changed something both partners should hear of.
    settings_changed: bool,
    /// Calm mode was switched on in this batch (said once, then nothing more).
    calm_switched_on: bool,
}

impl Pending {
    /// Settles, in memory, every date that is over for both partners at `now`: O(dates
    /// settled), from the unsettled dates loaded with the couple.
    fn settle(&mut self, now: DateTime<Utc>) {
        self.last_now = self.last_now.max(now);
        let through = engine::settle_through(&self.l.a, &self.l.b, now);
        if through <= self.l.state.settled_through {
            return;
        }
        let open = &mut self.open;
        let (a, b, pauses, spaced) = (&self.l.a, &self.l.b, &self.l.pauses, &self.l.spaced);
        let together = &self.l.together;
        let settlement = self.l.state.settle(
            through,
            |d| open.remove(&d),
            |d| pauses.iter().any(|p| range(p).contains(d)),
            |d| in_ranges(spaced, d),
            |side, d| in_together(together, side, d),
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

    /// The stored (or changed) record of `date`, if loaded.
    fn known_day(&self, date: NaiveDate) -> Option<&DayRecord> {
        self.dirty.get(&date).or_else(|| self.open.get(&date))
    }
}

/// Builds each couple's [`Pending`] from its stored rows.
fn from_rows(rows: StreakRows) -> Result<HashMap<String, Pending>> {
    let mut segments: HashMap<String, Vec<(DateTime<Utc>, chrono_tz::Tz)>> = HashMap::new();
    for (account, from, zone) in rows.zones {
        segments
            .entry(account)
            .or_default()
            .push((from_us(from), zone));
    }
    let mut history = |account: &str| {
        let mut s = segments.remove(account).unwrap_or_default();
        s.sort_by_key(|(at, _)| *at);
        ZoneHistory::from_segments(s)
            .ok_or_else(|| Error::Corrupt(format!("no zone history for {account}")))
    };
    let mut states: HashMap<String, StreakState> = rows.states.into_iter().collect();
    let mut pauses: HashMap<String, Vec<PauseRow>> = HashMap::new();
    for p in rows.pauses {
        pauses.entry(p.couple_id.clone()).or_default().push(p);
    }
    let mut open: HashMap<String, HashMap<NaiveDate, DayRecord>> = HashMap::new();
    for (couple, day) in rows.open_days {
        open.entry(couple).or_default().insert(day.date, day);
    }
    let mut pending = HashMap::with_capacity(rows.couples.len());
    for c in rows.couples {
        let a = history(&c.account_a)?;
        let b = history(&c.account_b)?;
        let state = match states.remove(&c.id) {
            Some(s) => s,
            // Created on first use: the first day is the later of the two local dates at pairing.
            None => StreakState::new(engine::first_day(&a, &b, from_us(c.created_at_us))),
        };
        let p = Pending {
            open: open.remove(&c.id).unwrap_or_default(),
            dirty: HashMap::new(),
            outcomes: Vec::new(),
            last_now: DateTime::<Utc>::MIN_UTC,
            settings_changed: false,
            calm_switched_on: false,
            l: Loaded {
                pauses: pauses.remove(&c.id).unwrap_or_default(),
                sides: Sides {
                    couple_id: c.id.clone(),
                    a: c.account_a,
                    b: c.account_b,
                },
                a,
                b,
                state,
                spaced: Vec::new(),
                together: Vec::new(),
            },
        };
        pending.insert(c.id, p);
    }
    Ok(pending)
}

async fn load_day<S: Store>(store: &mut S, couple_id: &str, date: NaiveDate) -> Result<DayRecord> {
    let prev = date.pred_opt().unwrap_or(date);
    Ok(store
        .days(couple_id, prev, date)
        .await?
        .pop()
        .unwrap_or_else(|| DayRecord::new(date)))
}

/// The day `date` of a pending couple: as changed or loaded, else as stored.
async fn day_of<S: Store>(store: &mut S, p: &Pending, date: NaiveDate) -> Result<DayRecord> {
    match p.known_day(date) {
        Some(d) => Ok(d.clone()),
        None if date <= p.l.state.settled_through => {
            load_day(store, &p.l.sides.couple_id, date).await
        }
        None => Ok(DayRecord::new(date)),
    }
}

/// The streak as `viewer` sees it at `now`.
async fn view<S: Store>(
    store: &mut S,
    p: &Pending,
    viewer: Side,
    now: DateTime<Utc>,
) -> Result<pb::Streak> {
    let l = &p.l;
    let person_day = |side: Side, record: &DayRecord| pb::PersonDay {
        date: day_str(record.date),
        actions: record.actions(side),
    };
    let today_a = l.a.local_date_at(now);
    let today_b = l.b.local_date_at(now);
    let rec_a = day_of(store, p, today_a).await?;
    let rec_b = if today_b == today_a {
        rec_a.clone()
    } else {
        day_of(store, p, today_b).await?
    };
    let (mine, theirs) = match viewer {
        Side::A => (person_day(Side::A, &rec_a), person_day(Side::B, &rec_b)),
        Side::B => (person_day(Side::B, &rec_b), person_day(Side::A, &rec_a)),
    };
    let latest_today = today_a.min(today_b);
    let pauses = l
        .pauses
        .iter()
        .filter(|p| p.to >= latest_today)
        .map(|p| pb::Pause {
            pause_id: p.id.clone(),
            from_date: day_str(p.from),
            to_date: day_str(p.to),
            by_account_id: p.by_account.clone(),
        })
        .collect();
    // The latest connected date: settled in this batch (not written yet), or as stored.
    let settled_now = p
        .dirty
        .values()
        .filter(|d| d.status == DayStatus::Connected)
        .map(|d| d.date)
        .max();
    let last_connected = store
        .last_connected(&l.sides.couple_id)
        .await?
        .max(settled_now);
    let last_connected_date = last_connected.map(day_str).unwrap_or_default();
    let first_date = day_str(l.state.first_day);
    let s = &l.state;
    if s.calm {
        // No streak numbers in calm mode; today's actions are what the two did, kept.
        return Ok(pb::Streak {
            calm: true,
            pauses,
            me_today: Some(mine),
            partner_today: Some(theirs),
            last_connected_date,
            first_date,
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
        last_connected_date,
        first_date,
    })
}

fn describe(o: &Outcome) -> (pb::StreakChange, u32, Option<NaiveDate>) {
    match *o {
        Outcome::StreakGrew { date, .. } => (pb::StreakChange::Grew, 0, Some(date)),
        Outcome::Milestone { days } => (pb::StreakChange::Milestone, days, None),
        Outcome::FreezeEarned { .. } => (pb::StreakChange::FreezeEarned, 0, None),
        Outcome::FreezeUsed { date } => (pb::StreakChange::FreezeUsed, 0, Some(date)),
        Outcome::StreakBroken { date, .. } => (pb::StreakChange::Broken, 0, Some(date)),
        Outcome::StreakRestored { date, .. } => (pb::StreakChange::Restored, 0, Some(date)),
    }
}

/// Events for both partners' devices: one per change, each with the streak as that partner
/// sees it. In calm mode nothing, except the switch itself (so both apps hide the streak).
async fn announce<S: Store>(
    store: &mut S,
    p: &Pending,
    members: &Members,
) -> Result<Vec<(String, pb::Event)>> {
    let mut changes: Vec<_> = p.outcomes.iter().map(describe).collect();
    if p.settings_changed {
        changes.push((pb::StreakChange::Settings, 0, None));
    }
    if changes.is_empty() || (p.l.state.calm && !p.calm_switched_on) {
        return Ok(Vec::new());
    }
    let now = p.last_now;
    let views = if p.l.state.calm {
        changes = vec![(pb::StreakChange::Settings, 0, None)];
        let calm = pb::Streak {
            calm: true,
            ..Default::default()
        };
        [calm.clone(), calm]
    } else {
        [
            view(store, p, Side::A, now).await?,
            view(store, p, Side::B, now).await?,
        ]
    };
    let sides = &p.l.sides;
    let devices = [members.devices_of(&sides.a), members.devices_of(&sides.b)];
    let mut items = Vec::new();
    for (change, milestone, date) in changes {
        let mut event = new_event(Payload::Heartbeat(pb::Heartbeat::default()), now);
        for (view, devices) in views.iter().zip(devices) {
            event.payload = Some(Payload::StreakUpdated(pb::StreakUpdated {
                streak: Some(view.clone()),
                change: change as i32,
                milestone_days: milestone,
                date: date.map(day_str).unwrap_or_default(),
            }));
            items.extend(devices.iter().map(|d| (d.clone(), event.clone())));
        }
    }
    Ok(items)
}

/// Applies qualifying actions and streak calls inside the group commit's transaction, after
/// the lock prologue: loads every couple concerned once, settles what is over, stamps each
/// actor's local date, answers each call, writes the changed rows back (two multi-row writes)
/// and returns the answers and the events to append. Only a change worth announcing (a settled
/// date, a milestone, a settings change) costs more than the loads and the two writes.
pub async fn apply<S: Store>(
    store: &mut S,
    members: &Members,
    actions: &[Action],
    jobs: &[StreakJob],
) -> Result<(Vec<Result<StreakAnswer>>, Vec<(String, pb::Event)>)> {
    let mut couples: Vec<String> = actions.iter().map(|a| a.couple_id.clone()).collect();
    couples.extend(
        jobs.iter()
            .filter_map(|j| members.couple_of(&j.caller.account_id).map(str::to_owned)),
    );
    couples.sort_unstable();
    couples.dedup();
    if couples.is_empty() {
        let refused = jobs
            .iter()
            .map(|_| Err(Error::Refused(Refusal::NotPaired)))
            .collect();
        return Ok((refused, Vec::new()));
    }
    let mut pending = from_rows(store.load_streaks(&couples).await?)?;
    // Spaces that can still make an unsettled date a space day: ending on or after the day
    // before the first unsettled date, in UTC (every zone is within a day of it).
    let bounds: Vec<(String, i64)> = pending
        .iter()
        .map(|(c, p)| {
            let first_open = p.l.state.settled_through - chrono::Duration::days(1);
            (
                c.clone(),
                to_us(first_open.and_time(chrono::NaiveTime::MIN).and_utc()),
            )
        })
        .collect();
    let mut spans: HashMap<String, Vec<SpaceSpan>> = HashMap::new();
    for s in store.space_spans(&bounds).await? {
        spans.entry(s.couple_id.clone()).or_default().push(s);
    }
    let mut together: HashMap<String, Vec<TogetherSpan>> = HashMap::new();
    for s in store.together_spans(&bounds).await? {
        together.entry(s.couple_id.clone()).or_default().push(s);
    }
    for (c, p) in pending.iter_mut() {
        if let Some(spans) = spans.get(c) {
            p.l.spaced = p.l.space_ranges(spans);
        }
        if let Some(spans) = together.get(c) {
            p.l.together = p.l.together_ranges(spans);
        }
    }
    for action in actions {
        let p = pending
            .get_mut(&action.couple_id)
            .ok_or_else(|| Error::Corrupt(format!("couple {} vanished", action.couple_id)))?;
        p.settle(action.now);
        let side = p.l.sides.side_of(&action.account_id);
        let date = p.l.history(side).local_date_at(action.now);
        // An older settled date is read when the actor flew back over the date line.
        let mut day = day_of(store, p, date).await?;
        let paused = p.l.paused(date);
        let outcomes = p.l.state.record_action(&mut day, side, paused);
        p.outcomes.extend(outcomes);
        let restores = p.l.state.restores(&day);
        if date > p.l.state.settled_through {
            p.open.insert(date, day.clone());
        }
        p.dirty.insert(date, day);
        if restores {
            restore(store, p, date).await?;
        }
    }
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        let Some(p) = members
            .couple_of(&job.caller.account_id)
            .and_then(|c| pending.get_mut(c))
        else {
            answers.push(Err(Error::Refused(Refusal::NotPaired)));
            continue;
        };
        answers.push(call(store, p, job).await);
    }
    let days: Vec<(String, DayRecord)> = pending
        .values()
        .flat_map(|p| {
            p.dirty
                .values()
                .map(|d| (p.l.sides.couple_id.clone(), d.clone()))
        })
        .collect();
    store.save_days(&days).await?;
    let states: Vec<(String, StreakState)> = pending
        .values()
        .map(|p| (p.l.sides.couple_id.clone(), p.l.state.clone()))
        .collect();
    store.save_states(&states).await?;
    let mut items = Vec::new();
    for c in &couples {
        items.extend(announce(store, &pending[c], members).await?);
    }
    Ok((answers, items))
}

/// Counts a couple's settled dates again after `date`, settled unconnected, was connected late
/// by a partner reliving it ([`StreakState::restore`]): reads the whole stored history (rare:
/// only a flight west over the date line after the partner's midnight does this) and marks
/// every date whose status changed for writing.
async fn restore<S: Store>(store: &mut S, p: &mut Pending, date: NaiveDate) -> Result<()> {
    let state = &p.l.state;
    let stored = store
        .days(
            &p.l.sides.couple_id,
            state.first_day - chrono::Duration::days(1),
            state.settled_through,
        )
        .await?;
    let mut days: HashMap<NaiveDate, DayRecord> = stored.into_iter().map(|d| (d.date, d)).collect();
    for (d, record) in p.open.iter().chain(p.dirty.iter()) {
        days.insert(*d, record.clone());
    }
    let every_space = store
        .space_spans(&[(p.l.sides.couple_id.clone(), i64::MIN)])
        .await?;
    let spaced = p.l.space_ranges(&every_space);
    let every_together = store
        .together_spans(&[(p.l.sides.couple_id.clone(), i64::MIN)])
        .await?;
    let together = p.l.together_ranges(&every_together);
    let (a, b, pauses) = (&p.l.a, &p.l.b, &p.l.pauses);
    let settlement = p.l.state.restore(
        date,
        |d| days.get(&d).cloned(),
        |d| pauses.iter().any(|p| range(p).contains(d)),
        |d| in_ranges(&spaced, d),
        |side, d| in_together(&together, side, d),
        |side, d| match side {
            Side::A => a.lived(d),
            Side::B => b.lived(d),
        },
    );
    for record in settlement.records {
        if days.get(&record.date).map(|d| d.status) != Some(record.status) {
            if p.open.contains_key(&record.date) {
                p.open.insert(record.date, record.clone());
            }
            p.dirty.insert(record.date, record);
        }
    }
    p.outcomes.extend(settlement.outcomes);
    Ok(())
}

/// The days `first..=last` that have begun for either partner, as `me` sees them, with what
/// this batch changed but has not written yet.
async fn days<S: Store>(
    store: &mut S,
    p: &Pending,
    me: Side,
    first: NaiveDate,
    last: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<pb::StreakDay>> {
    let mut rows = store
        .days(
            &p.l.sides.couple_id,
            first.pred_opt().unwrap_or(first),
            last,
        )
        .await?;
    rows.retain(|d| !p.dirty.contains_key(&d.date));
    rows.extend(
        p.dirty
            .values()
            .filter(|d| d.date >= first && d.date <= last)
            .cloned(),
    );
    let latest = p.l.a.local_date_at(now).max(p.l.b.local_date_at(now));
    Ok(engine::calendar_range(&p.l.state, first, last, rows)
        .into_iter()
        .filter(|d| d.date <= latest)
        .map(|d| pb::StreakDay {
            date: day_str(d.date),
            status: status_to_pb(d.status) as i32,
            my_actions: d.actions(me),
            partner_actions: d.actions(me.other()),
        })
        .collect())
}

/// Answers one streak call on its couple's pending streak (rules checked before anything is
/// written, so a refused call changes nothing).
async fn call<S: Store>(store: &mut S, p: &mut Pending, job: &StreakJob) -> Result<StreakAnswer> {
    let now = job.now;
    p.settle(now);
    let me = p.l.sides.side_of(&job.caller.account_id);
    let today = p.l.history(me).local_date_at(now);
    let mut answer = StreakAnswer::default();
    match &job.op {
        StreakOp::Get => {}
        StreakOp::History { year, month } => {
            let (first, last) = engine::month_bounds(*year, *month)
                .ok_or_else(|| Error::invalid("month", "must be a real month"))?;
            answer.days = days(store, p, me, first, last, now).await?;
        }
        StreakOp::Days { first, last } => {
            answer.days = days(store, p, me, *first, *last, now).await?;
        }

        StreakOp::Pause { from, to } => {
            let r = PauseRange::request(&p.l.state, today, *from, *to)
                .map_err(|e| Error::invalid("from_date", e.to_string()))?;
            let pause = PauseRow {
                id: Uuid::now_v7().to_string(),
                couple_id: p.l.sides.couple_id.clone(),
                from: r.from,
                to: r.to,
                by_account: job.caller.account_id.clone(),
            };
            store.insert_pause(&pause, to_us(now)).await?;
            answer.pause = Some(pb::Pause {
                pause_id: pause.id.clone(),
                from_date: day_str(pause.from),
                to_date: day_str(pause.to),
                by_account_id: pause.by_account.clone(),
            });
            p.l.pauses.push(pause);
            p.settings_changed = true;
        }
        StreakOp::Cancel { id } => {
            let i =
                p.l.pauses
                    .iter()
                    .position(|x| x.id == *id)
                    .ok_or(Error::NotFound("pause"))?;
            let from = p.l.pauses[i].from;
            if from <= today || p.l.state.is_settled(from) {
                return Err(Error::Refused(Refusal::PauseStarted));
            }
            store.cancel_pause(id).await?;
            p.l.pauses.remove(i);
            p.settings_changed = true;
        }
        StreakOp::Calm(calm) => {
            if *calm && !p.l.state.calm {
                p.calm_switched_on = true;
            }
            p.l.state.calm = *calm;
            p.settings_changed = true;
        }
    }
    answer.streak = view(store, p, me, now).await?;
    Ok(answer)
}

fn status_to_pb(s: DayStatus) -> pb::DayStatus {
    match s {
        DayStatus::Open => pb::DayStatus::Open,
        DayStatus::Connected => pb::DayStatus::Connected,
        DayStatus::Frozen => pb::DayStatus::Frozen,
        DayStatus::Paused => pb::DayStatus::Paused,
        DayStatus::Skipped => pb::DayStatus::Skipped,
        DayStatus::Space => pb::DayStatus::Space,
        DayStatus::Missed => pb::DayStatus::Missed,
    }
}
