//! Couple streaks: connected days, freezes, pauses, milestones and the day-by-day history.
//!
//! Everything here is pure. The server keeps one [`StreakState`] row per couple and one
//! [`DayRecord`] row per couple and local date, and drives the engine in two ways:
//!
//! 1. Before handling anything at instant `now`, it settles the days that are over for both
//!    partners: [`StreakState::settle`] with `through` = [`settle_through`]`(a, b, now)`.
//! 2. For each qualifying action (a tap sent, a check-in answered) it stamps the action with the
//!    actor's local date ([`ZoneHistory::local_date_at`]), loads or creates that date's
//!    [`DayRecord`] and calls [`StreakState::record_action`], which costs O(1).
//!
//! Both return what to announce ([`Outcome`]) and the rows to write back.
//!
//! # The rules
//!
//! * Local date D is *connected* when both partners have a qualifying action stamped D, each on
//!   their own calendar. A connected day adds one to the streak as soon as it becomes connected.
//! * A day is *over* for a partner once their local date has been past it, even if they later
//!   fly back across the date line into it ([`ZoneHistory::latest_date_by`]). A day is settled
//!   only when it is over for both. After that its status changes only one way: when a partner
//!   who flew back into it acts on it and both have now acted on it, it becomes connected and
//!   every later settled date is counted again ([`StreakState::restore`]), so a streak that
//!   broke on it is restored. Any other late action only adds to its action counts.
//! * A settled day that is not connected is, in this order of precedence: *paused* (inside a
//!   scheduled pause, which also wins over a connected day), *skipped* (a date one partner never
//!   lived, see [`ZoneHistory::lived`]), *space* (a partner asked for space during it),
//!   *frozen* (a freeze was held and is used up) or *missed* (the streak breaks). Paused,
//!   skipped and space days neither count nor break; a frozen day keeps the streak without
//!   growing it.
//! * Every time the streak reaches a multiple of [`DAYS_PER_FREEZE`] the couple earns a freeze,
//!   unless they already hold [`MAX_FREEZES`]. Neutral days in between do not reset the count.
//! * Reaching one of [`MILESTONES`] is announced. Calm mode keeps computing everything and
//!   recording history but announces nothing.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::domain::schedule::start_of_date;

/// Streak lengths that are announced to both partners.
pub const MILESTONES: [u32; 10] = [3, 7, 14, 30, 50, 100, 200, 365, 500, 1000];
/// Connected days of streak per freeze earned.
pub const DAYS_PER_FREEZE: u32 = 7;
/// Most freezes a couple can hold.
pub const MAX_FREEZES: u32 = 2;
/// Longest pause, in days, and how far ahead one may start.
pub const MAX_PAUSE_DAYS: i64 = tapline_proto::limits::PAUSE_DAYS;

/// One partner of a couple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The first partner (by the server's own stable ordering).
    A,
    /// The second partner.
    B,
}

impl Side {
    /// The other partner.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// What a local date turned out to be for the couple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DayStatus {
    /// Not settled yet: still live for at least one partner.
    Open,
    /// Both partners acted; the streak grew.
    Connected,
    /// Not connected, but a freeze was used; the streak held.
    Frozen,
    /// Inside a scheduled pause; neither counts nor breaks.
    Paused,
    /// A date one partner never lived (date line, zone change); neither counts nor breaks.
    Skipped,
    /// Not connected, but a partner asked for space ("I need a moment") during it, on their
    /// own calendar; neither counts nor breaks.
    Space,
    /// Not connected and no freeze: the streak broke (or there was none).
    Missed,
}

impl DayStatus {
    /// Every status, for storage round trips and tests.
    pub const ALL: [DayStatus; 7] = [
        DayStatus::Open,
        DayStatus::Connected,
        DayStatus::Frozen,
        DayStatus::Paused,
        DayStatus::Skipped,
        DayStatus::Space,
        DayStatus::Missed,
    ];

    /// The stable name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DayStatus::Open => "open",
            DayStatus::Connected => "connected",
            DayStatus::Frozen => "frozen",
            DayStatus::Paused => "paused",
            DayStatus::Skipped => "skipped",
            DayStatus::Space => "space",
            DayStatus::Missed => "missed",
        }
    }

    /// Whether the day is final.
    pub fn is_settled(self) -> bool {
        self != DayStatus::Open
    }
}

impl fmt::Display for DayStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored status name that is not one of [`DayStatus::as_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown day status {0:?}")]
pub struct UnknownDayStatus(pub String);

impl FromStr for DayStatus {
    type Err = UnknownDayStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DayStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownDayStatus(s.to_owned()))
    }
}

/// One local date of a couple's history (one row per couple and date).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRecord {
    /// The local date (each partner's actions are stamped on their own calendar).
    pub date: NaiveDate,
    /// Qualifying actions by partner A stamped with this date.
    pub actions_a: u32,
    /// Qualifying actions by partner B stamped with this date.
    pub actions_b: u32,
    /// What the day turned out to be, or [`DayStatus::Open`].
    pub status: DayStatus,
}

impl DayRecord {
    /// An open day with no actions.
    pub fn new(date: NaiveDate) -> Self {
        DayRecord {
            date,
            actions_a: 0,
            actions_b: 0,
            status: DayStatus::Open,
        }
    }

    /// Actions by one partner.
    pub fn actions(&self, side: Side) -> u32 {
        match side {
            Side::A => self.actions_a,
            Side::B => self.actions_b,
        }
    }

    /// Whether both partners have acted on this date.
    pub fn both_acted(&self) -> bool {
        self.actions_a > 0 && self.actions_b > 0
    }
}

/// Something to announce to both partners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `date` became connected and the streak is now `current` days.
    StreakGrew {
        /// The connected date.
        date: NaiveDate,
        /// The streak after it.
        current: u32,
    },
    /// The streak reached one of [`MILESTONES`].
    Milestone {
        /// The milestone, in days.
        days: u32,
    },
    /// A freeze was earned; the couple now holds `held`.
    FreezeEarned {
        /// Freezes held after earning this one.
        held: u32,
    },
    /// A freeze saved the streak on `date`.
    FreezeUsed {
        /// The date that was missed.
        date: NaiveDate,
    },
    /// `date`, settled as missed, frozen or skipped, became connected when a partner who had
    /// been past it flew back into it and acted: the days since were counted again and the
    /// streak is now `current` days (a streak that broke on `date` is back).
    StreakRestored {
        /// The date that became connected late.
        date: NaiveDate,
        /// The streak after counting again.
        current: u32,
    },
    /// `date` was missed and a streak of `was` days ended.
    StreakBroken {
        /// The missed date.
        date: NaiveDate,
        /// The streak before it broke.
        was: u32,
    },
}

/// The result of settling: rows to write back (one per settled date, in order) and outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settlement {
    /// Every newly settled date, with its final status.
    pub records: Vec<DayRecord>,
    /// What to announce, in date order (empty in calm mode).
    pub outcomes: Vec<Outcome>,
}

/// A couple's streak (one row per couple).
///
/// Invariants kept by the engine: `longest >= current`, `freezes <= MAX_FREEZES`, and every date
/// in `first_day..=settled_through` has a settled [`DayRecord`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreakState {
    /// The first date tracked: the later of the two partners' local dates when they paired.
    pub first_day: NaiveDate,
    /// Every date up to and including this one is settled (starts at `first_day - 1`).
    pub settled_through: NaiveDate,
    /// Current streak, in connected days.
    pub current: u32,
    /// Longest streak ever.
    pub longest: u32,
    /// Freezes held, at most [`MAX_FREEZES`].
    pub freezes: u32,
    /// Calm mode: keep computing, announce nothing.
    pub calm: bool,
}

impl StreakState {
    /// A fresh couple whose first tracked date is `first_day` (see [`first_day`]).
    pub fn new(first_day: NaiveDate) -> Self {
        StreakState {
            first_day,
            settled_through: first_day - Duration::days(1),
            current: 0,
            longest: 0,
            freezes: 0,
            calm: false,
        }
    }

    /// Connected days counted towards the next freeze (0..[`DAYS_PER_FREEZE`]).
    pub fn freeze_progress(&self) -> u32 {
        self.current % DAYS_PER_FREEZE
    }

    /// Whether `date` is settled (final).
    pub fn is_settled(&self, date: NaiveDate) -> bool {
        date <= self.settled_through
    }

    /// Records one qualifying action by `side` on `day` (the actor's local date), O(1).
    ///
    /// `paused` says whether `day.date` lies inside a scheduled pause. Call [`Self::settle`]
    /// first, for the same instant. The action always adds to the day's count. If it makes the
    /// next unsettled date connected (and that date is not paused), the date is settled as
    /// connected at once and the streak grows. An action on a date that is already settled
    /// only adds to the count; when [`Self::restores`] then says so, call [`Self::restore`].
    pub fn record_action(&mut self, day: &mut DayRecord, side: Side, paused: bool) -> Vec<Outcome> {
        match side {
            Side::A => day.actions_a = day.actions_a.saturating_add(1),
            Side::B => day.actions_b = day.actions_b.saturating_add(1),
        }
        let mut outcomes = Vec::new();
        if !self.is_settled(day.date)
            && day.date == self.settled_through + Duration::days(1)
            && day.both_acted()
            && !paused
        {
            day.status = DayStatus::Connected;
            self.settled_through = day.date;
            self.apply(day.date, DayStatus::Connected, &mut outcomes);
        }
        outcomes
    }

    /// Whether `day`, with an action just recorded on it, must be counted again with
    /// [`Self::restore`]: it is settled, not connected nor paused, and now both partners have
    /// acted on it. Only a partner reliving a date they had been past (flying west over the
    /// date line after the partner's midnight) can act on a settled date.
    pub fn restores(&self, day: &DayRecord) -> bool {
        self.is_settled(day.date)
            && day.both_acted()
            && matches!(
                day.status,
                DayStatus::Missed | DayStatus::Frozen | DayStatus::Skipped | DayStatus::Space
            )
    }

    /// Counts every settled date again from `first_day`, with the stored actions (`days`, as
    /// for [`Self::settle`]), after [`Self::restores`] said `date` became connected late.
    ///
    /// The current streak and freezes become what they would have been had the late action
    /// come in time, so a streak that broke on `date` is restored; the longest streak never
    /// goes down. Returns every settled record with its status as counted again, and one
    /// [`Outcome::StreakRestored`] (none in calm mode). Costs O(history), and happens only on a
    /// relived date.
    pub fn restore(
        &mut self,
        date: NaiveDate,
        days: impl FnMut(NaiveDate) -> Option<DayRecord>,
        paused: impl Fn(NaiveDate) -> bool,
        spaced: impl Fn(NaiveDate) -> bool,
        together: impl Fn(Side, NaiveDate) -> bool,
        lived: impl Fn(Side, NaiveDate) -> bool,
    ) -> Settlement {
        let mut again = StreakState {
            calm: true,
            ..StreakState::new(self.first_day)
        };
        let recounted = again.settle(self.settled_through, days, paused, spaced, together, lived);
        self.current = again.current;
        self.freezes = again.freezes;
        self.longest = self.longest.max(again.longest);
        let outcomes = if self.calm {
            Vec::new()
        } else {
            vec![Outcome::StreakRestored {
                date,
                current: self.current,
            }]
        };
        Settlement {
            records: recounted.records,
            outcomes,
        }
    }

    /// Settles every date after `settled_through` up to and including `through`, in order.
    ///
    /// `through` must be a date that is over for both partners ([`settle_through`]); an earlier
    /// one does nothing. `days` returns the stored record of a date (`None` when nobody acted),
    /// `paused` whether a date lies in a scheduled pause, `spaced` whether a partner asked for
    /// space during it ([`space_dates`]), `together` whether a partner spent part of a date of
    /// their own calendar in together time (it counts as their action on it), and `lived`
    /// whether a partner lived a date ([`ZoneHistory::lived`]). Costs O(days settled), never
    /// O(history).
    pub fn settle(
        &mut self,
        through: NaiveDate,
        mut days: impl FnMut(NaiveDate) -> Option<DayRecord>,
        paused: impl Fn(NaiveDate) -> bool,
        spaced: impl Fn(NaiveDate) -> bool,
        together: impl Fn(Side, NaiveDate) -> bool,
        lived: impl Fn(Side, NaiveDate) -> bool,
    ) -> Settlement {
        let mut settlement = Settlement::default();
        while self.settled_through < through {
            let date = self.settled_through + Duration::days(1);
            let mut record = days(date).unwrap_or_else(|| DayRecord::new(date));
            record.date = date;
            let status = if paused(date) {
                DayStatus::Paused
            } else if (record.actions(Side::A) > 0 || together(Side::A, date))
                && (record.actions(Side::B) > 0 || together(Side::B, date))
            {
                DayStatus::Connected
            } else if !lived(Side::A, date) || !lived(Side::B, date) {
                DayStatus::Skipped
            } else if spaced(date) {
                DayStatus::Space
            } else if self.freezes > 0 {
                DayStatus::Frozen
            } else {
                DayStatus::Missed
            };
            record.status = status;
            self.settled_through = date;
            self.apply(date, status, &mut settlement.outcomes);
            settlement.records.push(record);
        }
        settlement
    }

    /// Applies the final status of the next date to the counters.
    fn apply(&mut self, date: NaiveDate, status: DayStatus, outcomes: &mut Vec<Outcome>) {
        let mut emitted = Vec::new();
        match status {
            DayStatus::Connected => {
                self.current += 1;
                self.longest = self.longest.max(self.current);
                emitted.push(Outcome::StreakGrew {
                    date,
                    current: self.current,
                });
                if MILESTONES.contains(&self.current) {
                    emitted.push(Outcome::Milestone { days: self.current });
                }
                if self.current.is_multiple_of(DAYS_PER_FREEZE) && self.freezes < MAX_FREEZES {
                    self.freezes += 1;
                    emitted.push(Outcome::FreezeEarned { held: self.freezes });
                }
            }
            DayStatus::Frozen => {
                self.freezes = self.freezes.saturating_sub(1);
                emitted.push(Outcome::FreezeUsed { date });
            }
            DayStatus::Missed => {
                if self.current > 0 {
                    emitted.push(Outcome::StreakBroken {
                        date,
                        was: self.current,
                    });
                }
                self.current = 0;
            }
            DayStatus::Open | DayStatus::Paused | DayStatus::Skipped | DayStatus::Space => {}
        }
        if !self.calm {
            outcomes.extend(emitted);
        }
    }
}

/// Why a pause request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PauseError {
    /// The range ends before it starts.
    #[error("a pause must end on or after its first day")]
    Reversed,
    /// The range starts before the requester's today.
    #[error("a pause cannot start in the past")]
    InThePast,
    /// The range covers a date that is already settled.
    #[error("a pause cannot cover a day that is already settled")]
    AlreadySettled,
    /// The range starts more than [`MAX_PAUSE_DAYS`] after the requester's today.
    #[error("a pause must start within {MAX_PAUSE_DAYS} days")]
    TooFarAhead,
    /// The range is longer than [`MAX_PAUSE_DAYS`].
    #[error("a pause lasts at most {MAX_PAUSE_DAYS} days")]
    TooLong,
}

/// A scheduled pause: the local dates `from..=to`, which neither count nor break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PauseRange {
    /// First paused date.
    pub from: NaiveDate,
    /// Last paused date.
    pub to: NaiveDate,
}

impl PauseRange {
    /// Checks a pause requested by a partner whose local date is `today`: it lasts 1 to
    /// [`MAX_PAUSE_DAYS`] days, starts between `today` and `today + MAX_PAUSE_DAYS`, and covers
    /// no settled date.
    pub fn request(
        state: &StreakState,
        today: NaiveDate,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<PauseRange, PauseError> {
        if to < from {
            Err(PauseError::Reversed)
        } else if from < today {
            Err(PauseError::InThePast)
        } else if state.is_settled(from) {
            Err(PauseError::AlreadySettled)
        } else if (from - today).num_days() > tapline_proto::limits::PAUSE_LEAD_DAYS {
            Err(PauseError::TooFarAhead)
        } else if (to - from).num_days() + 1 > MAX_PAUSE_DAYS {
            Err(PauseError::TooLong)
        } else {
            Ok(PauseRange { from, to })
        }
    }

    /// Whether `date` is paused.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.from <= date && date <= self.to
    }
}

/// The local calendar date of `instant` in `zone`.
pub fn local_date(instant: DateTime<Utc>, zone: Tz) -> NaiveDate {
    instant.with_timezone(&zone).date_naive()
}

/// A partner's zones over time: each entry is in force from its instant until the next one.
/// The first entry also covers everything before its instant.
///
/// Within one zone the local date is assumed never to go backwards (true of every zone in
/// current use; backward steps only happen when the partner changes zone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneHistory {
    segments: Vec<(DateTime<Utc>, Tz)>,
    /// `reached[i]`: the latest local date lived by the end of segment `i` (for all but the last).
    reached: Vec<NaiveDate>,
}

impl ZoneHistory {
    /// Someone who has always been in `zone`.
    pub fn new(zone: Tz) -> Self {
        ZoneHistory {
            segments: vec![(DateTime::<Utc>::MIN_UTC, zone)],
            reached: Vec::new(),
        }
    }

    /// A history from `(from, zone)` entries in any order; `None` when empty. Of entries with
    /// the same instant the last one wins.
    pub fn from_segments(segments: impl IntoIterator<Item = (DateTime<Utc>, Tz)>) -> Option<Self> {
        let mut list: Vec<_> = segments.into_iter().collect();
        list.sort_by_key(|&(from, _)| from);
        let mut history: Option<ZoneHistory> = None;
        for (from, zone) in list {
            match history.as_mut() {
                None => {
                    let mut h = ZoneHistory::new(zone);
                    h.segments[0].0 = from;
                    history = Some(h);
                }
                Some(h) => h.moved(from, zone),
            }
        }
        history
    }

    /// Records that the partner is in `zone` from `from` on. An entry at the same instant as an
    /// existing one replaces it; a late report of an earlier move is put in its place.
    pub fn moved(&mut self, from: DateTime<Utc>, zone: Tz) {
        let (last_from, last_zone) = *self.segments.last().unwrap_or(&(from, zone));
        if from == last_from {
            if let Some(last) = self.segments.last_mut() {
                last.1 = zone;
            }
            return;
        }
        if from < last_from {
            let mut all = self.segments.clone();
            all.push((from, zone));
            if let Some(rebuilt) = ZoneHistory::from_segments(all) {
                *self = rebuilt;
            }
            return;
        }
        let end_date = local_date(from - Duration::nanoseconds(1), last_zone);
        let reached = self.reached.last().map_or(end_date, |&r| r.max(end_date));
        self.reached.push(reached);
        self.segments.push((from, zone));
    }

    /// The `(from, zone)` entries, in order.
    pub fn segments(&self) -> &[(DateTime<Utc>, Tz)] {
        &self.segments
    }

    /// Index of the segment in force at `instant`.
    fn index_at(&self, instant: DateTime<Utc>) -> usize {
        self.segments
            .partition_point(|&(from, _)| from <= instant)
            .saturating_sub(1)
    }

    /// The zone in force at `instant`.
    pub fn zone_at(&self, instant: DateTime<Utc>) -> Tz {
        self.segments[self.index_at(instant)].1
    }

    /// The local date at `instant`: how an action at that instant is stamped.
    pub fn local_date_at(&self, instant: DateTime<Utc>) -> NaiveDate {
        local_date(instant, self.zone_at(instant))
    }

    /// The latest local date the partner has lived by `instant`. Every earlier date is over for
    /// them, even if they fly back across the date line into it. O(log zone changes).
    pub fn latest_date_by(&self, instant: DateTime<Utc>) -> NaiveDate {
        let i = self.index_at(instant);
        let now = local_date(instant, self.segments[i].1);
        match i.checked_sub(1) {
            Some(prev) => now.max(self.reached[prev]),
            None => now,
        }
    }

    /// Whether the partner lived local date `date`: at some instant their local date, in the
    /// zone in force then, was `date`, and they had not yet been past it. A date jumped over
    /// (flying west across the date line, a zone skipping a date) is not lived; coming back to
    /// it later does not count either, since by then it was over for them. O(zone changes).
    pub fn lived(&self, date: NaiveDate) -> bool {
        for (i, &(from, zone)) in self.segments.iter().enumerate() {
            let before = i.checked_sub(1).map(|prev| self.reached[prev]);
            if before.is_some_and(|reached| reached >= date) {
                return false;
            }
            let start = (i > 0).then_some(from);
            let end = self.segments.get(i + 1).map(|&(next, _)| next);
            // The instants of `date` in `zone` are [day_start, day_end).
            let day_start = start_of_date(zone, date);
            let day_end = start_of_date(zone, date + Duration::days(1));
            let overlaps = day_start < day_end
                && end.is_none_or(|end| day_start < end)
                && start.is_none_or(|start| start < day_end);
            if overlaps {
                return true;
            }
        }
        false
    }
}

/// The last date that is over for both partners at `now`: settle through it.
pub fn settle_through(a: &ZoneHistory, b: &ZoneHistory, now: DateTime<Utc>) -> NaiveDate {
    a.latest_date_by(now).min(b.latest_date_by(now)) - Duration::days(1)
}

/// The dates, on one partner's own calendar, that a space ("I need a moment") asked for by
/// them from `from` to `to` touched: the first and last local date of the interval (also
/// across a change of zone in between). A date in the range is [`DayStatus::Space`] when
/// settled unconnected.
pub fn space_dates(
    history: &ZoneHistory,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> (NaiveDate, NaiveDate) {
    let mut lo = history.local_date_at(from);
    let mut hi = history.local_date_at(to.max(from));
    for (at, _) in history.segments() {
        if *at > from && *at < to {
            for d in [
                history.local_date_at(*at),
                history.local_date_at(*at - Duration::microseconds(1)),
            ] {
                lo = lo.min(d);
                hi = hi.max(d);
            }
        }
    }
    (lo, hi)
}

/// The first date to track for a couple who paired at `paired_at`: the later of their two local
/// dates, so no day starts already half over.
pub fn first_day(a: &ZoneHistory, b: &ZoneHistory, paired_at: DateTime<Utc>) -> NaiveDate {
    a.local_date_at(paired_at).max(b.local_date_at(paired_at))
}

/// The first and last date of a calendar month; `None` for an invalid month.
pub fn month_bounds(year: i32, month: u32) -> Option<(NaiveDate, NaiveDate)> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    Some((first, next - Duration::days(1)))
}

/// A month of history for a calendar view: one record per date of the month from the couple's
/// first day on, taken from `rows` (the stored records of that month) or an empty open day
/// where none is stored. Empty for an invalid month or one before the couple's first day.
pub fn calendar_month(
    state: &StreakState,
    year: i32,
    month: u32,
    rows: impl IntoIterator<Item = DayRecord>,
) -> Vec<DayRecord> {
    let Some((first, last)) = month_bounds(year, month) else {
        return Vec::new();
    };
    let days = calendar_range(state, first, last, rows);
    debug_assert!(days.iter().all(|d| d.date.month() == month));
    days
}

/// The days `first..=last` from the couple's first day on, as stored (`rows`, any order) or
/// still open when there is no row.
pub fn calendar_range(
    state: &StreakState,
    first: NaiveDate,
    last: NaiveDate,
    rows: impl IntoIterator<Item = DayRecord>,
) -> Vec<DayRecord> {
    let start = first.max(state.first_day);
    if start > last {
        return Vec::new();
    }
    let mut days: Vec<DayRecord> = start
        .iter_days()
        .take_while(|d| *d <= last)
        .map(DayRecord::new)
        .collect();
    for row in rows {
        if row.date >= start && row.date <= last {
            let i = (row.date - start).num_days() as usize;
            days[i] = row;
        }
    }
    days
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::collections::HashMap;

    use chrono::TimeZone;

    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn tz(name: &str) -> Tz {
        name.parse().unwrap()
    }

    /// A couple whose days are driven directly by date, with rows kept like the server would.
    struct Couple {
        state: StreakState,
        rows: HashMap<NaiveDate, DayRecord>,
        pauses: Vec<PauseRange>,
        never_lived: Vec<(Side, NaiveDate)>,
        spaced: Vec<NaiveDate>,
        together: Vec<(Side, NaiveDate)>,
        outcomes: Vec<Outcome>,
    }

    impl Couple {
        fn new(first: NaiveDate) -> Self {
            Couple {
                state: StreakState::new(first),
                rows: HashMap::new(),
                pauses: Vec::new(),
                never_lived: Vec::new(),
                spaced: Vec::new(),
                together: Vec::new(),
                outcomes: Vec::new(),
            }
        }

        fn act(&mut self, d: NaiveDate, side: Side) -> Vec<Outcome> {
            let paused = self.pauses.iter().any(|p| p.contains(d));
            let mut row = self.rows.get(&d).cloned().unwrap_or(DayRecord::new(d));
            let mut out = self.state.record_action(&mut row, side, paused);
            let restores = self.state.restores(&row);
            self.rows.insert(d, row);
            if restores {
                let rows = &self.rows;
                let pauses = &self.pauses;
                let never = &self.never_lived;
                let spaced = &self.spaced;
                let together = &self.together;
                let s = self.state.restore(
                    d,
                    |d| rows.get(&d).cloned(),
                    |d| pauses.iter().any(|p| p.contains(d)),
                    |d| spaced.contains(&d),
                    |side, d| together.contains(&(side, d)),
                    |side, d| !never.contains(&(side, d)),
                );
                for r in s.records {
                    self.rows.insert(r.date, r);
                }
                out.extend(s.outcomes);
            }
            self.outcomes.extend(out.iter().copied());
            out
        }

        fn both(&mut self, d: NaiveDate) -> Vec<Outcome> {
            self.act(d, Side::A);
            self.act(d, Side::B)
        }

        fn settle(&mut self, through: NaiveDate) -> Vec<Outcome> {
            let rows = &self.rows;
            let pauses = &self.pauses;
            let never = &self.never_lived;
            let spaced = &self.spaced;
            let together = &self.together;
            let s = self.state.settle(
                through,
                |d| rows.get(&d).cloned(),
                |d| pauses.iter().any(|p| p.contains(d)),
                |d| spaced.contains(&d),
                |side, d| together.contains(&(side, d)),
                |side, d| !never.contains(&(side, d)),
            );
            for r in &s.records {
                self.rows.insert(r.date, r.clone());
            }
            self.outcomes.extend(s.outcomes.iter().copied());
            s.outcomes
        }

        /// Connects `n` consecutive days starting at `from`, settling each before the next.
        fn connect_days(&mut self, from: NaiveDate, n: i64) -> Vec<Outcome> {
            let mut all = Vec::new();
            for i in 0..n {
                let d = from + Duration::days(i);
                all.extend(self.settle(d - Duration::days(1)));
                all.extend(self.both(d));
            }
            all
        }

        fn status(&self, d: NaiveDate) -> DayStatus {
            self.rows[&d].status
        }
    }

    fn d0() -> NaiveDate {
        date(2026, 1, 1)
    }

    fn day(n: i64) -> NaiveDate {
        d0() + Duration::days(n)
    }

    fn freezes_earned(outcomes: &[Outcome]) -> Vec<u32> {
        outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::FreezeEarned { held } => Some(*held),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_day_connects_when_both_act_and_grows_at_once() {
        let mut c = Couple::new(d0());
        assert_eq!(c.act(d0(), Side::A), vec![]);
        assert_eq!(c.status(d0()), DayStatus::Open);
        assert_eq!(
            c.act(d0(), Side::B),
            vec![Outcome::StreakGrew {
                date: d0(),
                current: 1
            }]
        );
        assert_eq!(c.status(d0()), DayStatus::Connected);
        assert_eq!(c.state.settled_through, d0());
        // More actions the same day only add to the counts.
        assert_eq!(c.act(d0(), Side::A), vec![]);
        assert_eq!(c.rows[&d0()].actions_a, 2);
        assert_eq!(c.rows[&d0()].actions_b, 1);
        assert_eq!(c.state.current, 1);
    }

    #[test]
    fn one_sided_day_is_missed_only_when_settled() {
        let mut c = Couple::new(d0());
        c.connect_days(d0(), 2);
        c.act(day(2), Side::A);
        // Not over for both yet: nothing happens.
        assert_eq!(c.settle(day(1)), vec![]);
        assert_eq!(c.state.current, 2);
        assert_eq!(
            c.settle(day(2)),
            vec![Outcome::StreakBroken {
                date: day(2),
                was: 2
            }]
        );
        assert_eq!(c.status(day(2)), DayStatus::Missed);
        assert_eq!(c.rows[&day(2)].actions_a, 1);
        assert_eq!(c.state.current, 0);
        assert_eq!(c.state.longest, 2);
    }

    #[test]
    fn freezes_are_earned_at_7_and_14_and_capped_at_2() {
        let mut c = Couple::new(d0());
        let out = c.connect_days(d0(), 6);
        assert!(freezes_earned(&out).is_empty());
        assert_eq!(c.state.freeze_progress(), 6);
        let out = c.connect_days(day(6), 1);
        assert_eq!(freezes_earned(&out), vec![1]);
        assert_eq!(c.state.freezes, 1);
        assert_eq!(c.state.freeze_progress(), 0);
        let out = c.connect_days(day(7), 7);
        assert_eq!(freezes_earned(&out), vec![2]);
        assert_eq!(c.state.current, 14);
        // At 21 and 28 the couple already holds two.
        let out = c.connect_days(day(14), 14);
        assert!(freezes_earned(&out).is_empty());
        assert_eq!(c.state.freezes, MAX_FREEZES);
        assert_eq!(c.state.current, 28);
    }

    #[test]
    fn a_missed_day_uses_a_freeze_and_the_streak_holds() {
        let mut c = Couple::new(d0());
        c.connect_days(d0(), 7);
        assert_eq!(c.state.freezes, 1);
        // Day 7: only B acts. Day 8 both.
        c.act(day(7), Side::B);
        assert_eq!(c.settle(day(7)), vec![Outcome::FreezeUsed { date: day(7) }]);
        assert_eq!(c.status(day(7)), DayStatus::Frozen);
        assert_eq!((c.state.current, c.state.freezes), (7, 0));
        let out = c.connect_days(day(8), 1);
        assert_eq!(
            out,
            vec![Outcome::StreakGrew {
                date: day(8),
                current: 8
            }]
        );
        // A second miss with no freeze left breaks it.
        assert_eq!(
            c.settle(day(9)),
            vec![Outcome::StreakBroken {
                date: day(9),
                was: 8
            }]
        );
        assert_eq!(c.status(day(9)), DayStatus::Missed);
        assert_eq!((c.state.current, c.state.longest), (0, 8));
    }

    #[test]
    fn two_freezes_cover_two_missed_days_in_a_row() {
        let mut c = Couple::new(d0());
        c.connect_days(d0(), 14);
        assert_eq!(c.state.freezes, 2);
        let out = c.settle(day(16));
        assert_eq!(
            out,
            vec![
                Outcome::FreezeUsed { date: day(14) },
                Outcome::FreezeUsed { date: day(15) },
                Outcome::StreakBroken {
                    date: day(16),
                    was: 14
                },
            ]
        );
    }

    #[test]
    fn freeze_progress_survives_neutral_days_and_frozen_days() {
        let mut c = Couple::new(d0());
        c.connect_days(d0(), 7);
        c.connect_days(day(7), 5); // current 12, progress 5
        c.settle(day(12)); // frozen
        assert_eq!(c.state.freeze_progress(), 5);
        let out = c.connect_days(day(13), 2);
        assert_eq!(c.state.current, 14);
        assert_eq!(freezes_earned(&out), vec![1]);
    }

    #[test]
    fn paused_days_neither_count_nor_break() {
        let mut c = Couple::new(d0());
        c.connect_days(d0(), 3);
        let pause = PauseRange::request(&c.state, day(3), day(3), day(5)).unwrap();
        c.pauses.push(pause);
        // Both act on a paused day: it still does not count.
        assert_eq!(c.both(day(4)), vec![]);
        assert_eq!(c.settle(day(5)), vec![]);
        for n in 3..=5 {
            assert_eq!(c.status(day(n)), DayStatus::Paused);
        }
        assert_eq!(c.rows[&day(4)].actions_a, 1);
        assert_eq!(c.state.current, 3);
        let out = c.connect_days(day(6), 1);
        assert_eq!(
            out,
            vec![Outcome::StreakGrew {
                date: day(6),
                current: 4
            }]
        );
    }

    #[test]
    fn pause_requests_are_checked() {
        let mut state = StreakState::new(d0());
        let today = day(5);
        state.settled_through = day(5);
        let req = |from: i64, to: i64| PauseRange::request(&state, today, day(from), day(to));
        assert_eq!(req(5, 6), Err(PauseError::AlreadySettled));
        assert_eq!(req(4, 6), Err(PauseError::InThePast));
        assert_eq!(req(7, 6), Err(PauseError::Reversed));
        assert_eq!(req(20, 21), Err(PauseError::TooFarAhead));
        assert_eq!(req(6, 20), Err(PauseError::TooLong));
        assert_eq!(
            req(6, 19),
            Ok(PauseRange {
                from: day(6),
                to: day(19)
            })
        );
        assert!(req(19, 32).is_ok());
        state.settled_through = day(4);
        assert!(PauseRange::request(&state, today, day(5), day(5)).is_ok());
    }

    #[test]
    fn a_date_one_partner_never_lived_neither_counts_nor_breaks() {
        let mut c = Couple::new(d0());
        c.connect_days(d0(), 2);
        c.act(day(2), Side::B);
        c.never_lived.push((Side::A, day(2)));
        assert_eq!(c.settle(day(2)), vec![]);
        assert_eq!(c.status(day(2)), DayStatus::Skipped);
        assert_eq!(c.state.current, 2);
        c.connect_days(day(3), 1);
        assert_eq!(c.state.current, 3);
    }

    #[test]
    fn milestones_are_announced_exactly_at_their_lengths() {
        let mut c = Couple::new(d0());
        let out = c.connect_days(d0(), 1000);
        let reached: Vec<u32> = out
            .iter()
            .filter_map(|o| match o {
                Outcome::Milestone { days } => Some(*days),
                _ => None,
            })
            .collect();
        assert_eq!(reached, MILESTONES.to_vec());
        assert_eq!(c.state.current, 1000);
        // After a break, a milestone is announced again when reached again.
        c.settle(day(1002));
        assert_eq!(c.state.current, 0);
        let out = c.connect_days(day(1003), 3);
        assert!(out.contains(&Outcome::Milestone { days: 3 }));
        assert_eq!(c.state.longest, 1000);
    }

    #[test]
    fn longest_is_kept_across_breaks() {
        let mut c = Couple::new(d0());
        c.connect_days(d0(), 5);
        c.settle(day(5));
        c.connect_days(day(6), 3);
        assert_eq!((c.state.current, c.state.longest), (3, 5));
        c.settle(day(9));
        c.connect_days(day(10), 6);
        assert_eq!((c.state.current, c.state.longest), (6, 6));
    }

    #[test]
    fn calm_mode_announces_nothing_but_keeps_counting() {
        let mut c = Couple::new(d0());
        c.state.calm = true;
        let mut out = c.connect_days(d0(), 8);
        out.extend(c.settle(day(9)));
        assert!(out.is_empty());
        assert_eq!(c.status(day(8)), DayStatus::Frozen);
        assert_eq!(c.status(day(9)), DayStatus::Missed);
        assert_eq!(
            (c.state.current, c.state.longest, c.state.freezes),
            (0, 8, 0)
        );
        c.state.calm = false;
        let out = c.connect_days(day(10), 1);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_late_action_that_connects_a_missed_day_restores_the_streak() {
        let mut c = Couple::new(d0());
        c.connect_days(d0(), 3);
        c.act(day(3), Side::A);
        assert_eq!(
            c.settle(day(3)),
            vec![Outcome::StreakBroken {
                date: day(3),
                was: 3
            }]
        );
        // B flies back across the date line into day 3, after A's midnight, and acts on it.
        assert_eq!(
            c.act(day(3), Side::B),
            vec![Outcome::StreakRestored {
                date: day(3),
                current: 4
            }]
        );
        assert_eq!(c.status(day(3)), DayStatus::Connected);
        assert_eq!((c.state.current, c.state.longest), (4, 4));
        // Acting there again changes nothing more.
        assert_eq!(c.act(day(3), Side::B), vec![]);
        assert_eq!(c.rows[&day(3)].actions_b, 2);
    }

    #[test]
    fn a_restored_day_gives_back_its_freeze_and_recounts_the_days_after_it() {
        let mut c = Couple::new(d0());
        c.connect_days(d0(), 7);
        assert_eq!(c.state.freezes, 1);
        // Day 7: only A acts; it is frozen. Day 8 connects; day 9 is settled as missed.
        c.act(day(7), Side::A);
        c.settle(day(7));
        assert_eq!(c.status(day(7)), DayStatus::Frozen);
        c.both(day(8));
        c.settle(day(9));
        assert_eq!((c.state.current, c.state.freezes), (0, 0));
        // B relives day 7 and acts: day 7 connects, so day 9 uses the freeze given back.
        c.act(day(7), Side::B);
        assert_eq!(c.status(day(7)), DayStatus::Connected);
        assert_eq!(c.status(day(9)), DayStatus::Frozen);
        assert_eq!(
            (c.state.current, c.state.longest, c.state.freezes),
            (9, 9, 0)
        );
    }

    #[test]
    fn a_late_action_that_does_not_connect_only_adds_to_the_history() {
        let mut c = Couple::new(d0());
        c.connect_days(d0(), 2);
        c.settle(day(2));
        assert_eq!(c.status(day(2)), DayStatus::Missed);
        // Only one partner acts on the settled date: it stays missed.
        assert_eq!(c.act(day(2), Side::B), vec![]);
        assert_eq!(c.status(day(2)), DayStatus::Missed);
        assert_eq!(c.state.current, 0);
        // A paused date never connects, however late.
        c.pauses.push(PauseRange {
            from: day(3),
            to: day(3),
        });
        c.both(day(3));
        c.settle(day(3));
        c.act(day(3), Side::A);
        assert_eq!(c.status(day(3)), DayStatus::Paused);
    }

    #[test]
    fn a_restore_in_calm_mode_says_nothing_but_counts() {
        let mut c = Couple::new(d0());
        c.state.calm = true;
        c.connect_days(d0(), 2);
        c.act(day(2), Side::A);
        c.settle(day(2));
        assert_eq!(c.act(day(2), Side::B), vec![]);
        assert_eq!(c.state.current, 3);
    }

    #[test]
    fn together_time_counts_as_each_partners_action_on_their_own_dates() {
        let mut c = Couple::new(d0());
        c.connect_days(d0(), 2);
        // Day 2: together time on both calendars, nobody tapped: connected.
        c.together = vec![(Side::A, day(2)), (Side::B, day(2))];
        assert!(c.settle(day(2)).contains(&Outcome::StreakGrew {
            date: day(2),
            current: 3
        }));
        assert_eq!(c.status(day(2)), DayStatus::Connected);
        assert_eq!(c.state.current, 3);
        // Day 3: together time touched only A's date 3 (B was already on day 4); B tapped on 3.
        c.together = vec![(Side::A, day(3)), (Side::B, day(4))];
        c.act(day(3), Side::B);
        c.settle(day(3));
        assert_eq!(c.status(day(3)), DayStatus::Connected);
        // Day 4: only B's together time and nobody else acted: A never did, not connected.
        c.settle(day(4));
        assert_ne!(c.status(day(4)), DayStatus::Connected);
    }

    #[test]
    fn a_day_with_a_space_neither_counts_nor_breaks_unless_connected() {
        let mut c = Couple::new(d0());
        c.connect_days(d0(), 3);
        c.spaced = vec![day(3), day(4)];
        // Day 3: only A acts, B asked for space: neither counts nor breaks.
        c.act(day(3), Side::A);
        assert_eq!(c.settle(day(3)), vec![]);
        assert_eq!(c.status(day(3)), DayStatus::Space);
        assert_eq!(c.state.current, 3);
        // Day 4: both act despite the space: it counts.
        c.both(day(4));
        assert_eq!(c.status(day(4)), DayStatus::Connected);
        assert_eq!(c.state.current, 4);
        // Day 5, no space: missed.
        c.settle(day(5));
        assert_eq!(c.status(day(5)), DayStatus::Missed);
    }

    #[test]
    fn space_dates_cover_the_askers_calendar_also_across_a_move() {
        let tokyo = ZoneHistory::new(tz("Asia/Tokyo"));
        // 22:00 to 02:00 Tokyo: two dates.
        assert_eq!(
            space_dates(&tokyo, utc(2026, 6, 1, 13, 0), utc(2026, 6, 1, 17, 0)),
            (date(2026, 6, 1), date(2026, 6, 2))
        );
        // 01:00 on 06-02 in Tokyo, then a flight lands in Honolulu on 06-01: both dates.
        let mut moved = tokyo.clone();
        moved.moved(utc(2026, 6, 1, 17, 0), tz("Pacific/Honolulu"));
        assert_eq!(
            space_dates(&moved, utc(2026, 6, 1, 16, 0), utc(2026, 6, 1, 18, 0)),
            (date(2026, 6, 1), date(2026, 6, 2))
        );
    }

    #[test]
    fn a_caller_that_forgot_to_settle_gets_the_same_result_from_settle() {
        let mut eager = Couple::new(d0());
        let mut lazy = Couple::new(d0());
        for n in [0, 1, 2, 4, 5] {
            eager.connect_days(day(n), 1);
            lazy.both(day(n));
        }
        eager.settle(day(5));
        // Consecutive days still settle as they connect; day 4 waits for day 3.
        assert_eq!(lazy.state.current, 3);
        assert_eq!(lazy.rows[&day(4)].status, DayStatus::Open);
        lazy.settle(day(5));
        assert_eq!(lazy.state, eager.state);
        assert_eq!(lazy.outcomes, eager.outcomes);
        for n in 0..=5 {
            assert_eq!(lazy.status(day(n)), eager.status(day(n)), "day {n}");
        }
    }

    #[test]
    fn settling_costs_only_the_new_days() {
        let mut state = StreakState::new(d0());
        let calls = Cell::new(0);
        let days = |_| {
            calls.set(calls.get() + 1);
            None
        };
        let s = state.settle(
            day(9),
            days,
            |_| false,
            |_| false,
            |_, _| false,
            |_, _| true,
        );
        assert_eq!(s.records.len(), 10);
        assert_eq!(calls.get(), 10);
        // Settling again, or through an earlier date, touches nothing.
        let s = state.settle(
            day(9),
            days,
            |_| false,
            |_| false,
            |_, _| false,
            |_, _| true,
        );
        assert!(s.records.is_empty());
        state.settle(
            day(3),
            days,
            |_| false,
            |_| false,
            |_, _| false,
            |_, _| true,
        );
        state.settle(
            day(12),
            days,
            |_| false,
            |_| false,
            |_, _| false,
            |_, _| true,
        );
        assert_eq!(calls.get(), 13);
        assert_eq!(state.settled_through, day(12));
        assert!(s.outcomes.is_empty());
    }

    #[test]
    fn kiritimati_and_honolulu_see_two_dates_at_one_instant() {
        let kiri = ZoneHistory::new(tz("Pacific/Kiritimati"));
        let hnl = ZoneHistory::new(tz("Pacific/Honolulu"));
        // 2026-03-10 12:00 UTC: 02:00 on the 11th in Kiritimati, 02:00 on the 10th in Honolulu.
        let t = utc(2026, 3, 10, 12, 0);
        assert_eq!(kiri.local_date_at(t), date(2026, 3, 11));
        assert_eq!(hnl.local_date_at(t), date(2026, 3, 10));
        assert_eq!(first_day(&kiri, &hnl, t), date(2026, 3, 11));

        let mut state = StreakState::new(date(2026, 3, 11));
        let mut rows: HashMap<NaiveDate, DayRecord> = HashMap::new();
        let mut act = |state: &mut StreakState, side: Side, at: DateTime<Utc>| {
            let zones = if side == Side::A { &kiri } else { &hnl };
            let through = settle_through(&kiri, &hnl, at);
            let s = state.settle(
                through,
                |d| rows.get(&d).cloned(),
                |_| false,
                |_| false,
                |_, _| false,
                |s, d| {
                    if s == Side::A {
                        kiri.lived(d)
                    } else {
                        hnl.lived(d)
                    }
                },
            );
            for r in s.records {
                rows.insert(r.date, r);
            }
            let d = zones.local_date_at(at);
            let row = rows.entry(d).or_insert_with(|| DayRecord::new(d));
            state.record_action(row, side, false)
        };
        // Both tap at the same instant: two different dates, nothing connects.
        let t1 = utc(2026, 3, 11, 20, 0); // 10:00 on the 12th / 10:00 on the 11th
        assert_eq!(act(&mut state, Side::A, t1), vec![]);
        assert_eq!(act(&mut state, Side::B, t1), vec![]);
        // A acted on the 12th and B on the 11th. The 11th is still running in Honolulu, so
        // it is not settled yet: it is missed only once Honolulu reaches the 12th.
        assert_eq!(settle_through(&kiri, &hnl, t1), date(2026, 3, 10));
        // Honolulu reaches the 12th at 10:00 UTC on the 12th and taps then.
        let t2 = utc(2026, 3, 12, 10, 0);
        assert_eq!(settle_through(&kiri, &hnl, t2), date(2026, 3, 11));
        assert_eq!(
            act(&mut state, Side::B, t2),
            vec![Outcome::StreakGrew {
                date: date(2026, 3, 12),
                current: 1
            }]
        );
        assert_eq!(rows[&date(2026, 3, 11)].status, DayStatus::Missed);
        assert_eq!(rows[&date(2026, 3, 12)].status, DayStatus::Connected);
    }

    #[test]
    fn day_is_not_over_until_over_for_both() {
        let london = ZoneHistory::new(tz("Europe/London"));
        let tokyo = ZoneHistory::new(tz("Asia/Tokyo"));
        // 2026-01-05 20:00 UTC: Tokyo is on the 6th, London still on the 5th.
        let t = utc(2026, 1, 5, 20, 0);
        assert_eq!(settle_through(&london, &tokyo, t), date(2026, 1, 4));
        let t = utc(2026, 1, 6, 0, 0);
        assert_eq!(settle_through(&london, &tokyo, t), date(2026, 1, 5));
    }

    #[test]
    fn flying_west_across_the_date_line_by_more_than_a_day_skips_a_date() {
        // Pago Pago (-11) until 2026-06-10 10:30 UTC (23:30 on the 9th), then Kiritimati (+14,
        // 00:30 on the 11th): the 10th is never lived.
        let hist = ZoneHistory::from_segments([
            (utc(2026, 1, 1, 0, 0), tz("Pacific/Pago_Pago")),
            (utc(2026, 6, 10, 10, 30), tz("Pacific/Kiritimati")),
        ])
        .unwrap();
        assert!(hist.lived(date(2026, 6, 9)));
        assert!(!hist.lived(date(2026, 6, 10)));
        assert!(hist.lived(date(2026, 6, 11)));
        assert!(hist.lived(date(2025, 12, 1)));
        assert_eq!(
            hist.latest_date_by(utc(2026, 6, 10, 10, 30)),
            date(2026, 6, 11)
        );
    }

    #[test]
    fn a_jump_of_exactly_a_day_lives_the_rest_of_the_next_date() {
        // Honolulu until 2026-06-10 08:00 UTC (22:00 on the 9th), then Kiritimati (22:00 on
        // the 10th): two hours of the 10th are still lived.
        let hist = ZoneHistory::from_segments([
            (utc(2026, 1, 1, 0, 0), tz("Pacific/Honolulu")),
            (utc(2026, 6, 10, 8, 0), tz("Pacific/Kiritimati")),
        ])
        .unwrap();
        assert!(hist.lived(date(2026, 6, 9)));
        assert!(hist.lived(date(2026, 6, 10)));
        assert_eq!(
            hist.latest_date_by(utc(2026, 6, 10, 8, 0)),
            date(2026, 6, 10)
        );
    }

    #[test]
    fn flying_east_across_the_date_line_relives_a_date_that_is_already_over() {
        // Kiritimati until 2026-06-10 08:00 UTC (22:00 on the 10th), then Honolulu (22:00 on
        // the 9th): the 9th comes round again, but it was already over.
        let hist = ZoneHistory::from_segments([
            (utc(2026, 1, 1, 0, 0), tz("Pacific/Kiritimati")),
            (utc(2026, 6, 10, 8, 0), tz("Pacific/Honolulu")),
        ])
        .unwrap();
        let back = utc(2026, 6, 10, 9, 0);
        assert_eq!(hist.local_date_at(back), date(2026, 6, 9));
        assert_eq!(hist.latest_date_by(back), date(2026, 6, 10));
        assert!(hist.lived(date(2026, 6, 9)));
        assert!(hist.lived(date(2026, 6, 10)));
        assert!(hist.lived(date(2026, 6, 11)));
    }

    #[test]
    fn a_date_jumped_over_and_then_revisited_is_not_lived() {
        // West over the line (skipping the 10th), then back east into the 10th.
        let hist = ZoneHistory::from_segments([
            (utc(2026, 1, 1, 0, 0), tz("Pacific/Pago_Pago")),
            (utc(2026, 6, 10, 10, 30), tz("Pacific/Kiritimati")),
            (utc(2026, 6, 10, 12, 0), tz("Pacific/Pago_Pago")),
        ])
        .unwrap();
        let back = utc(2026, 6, 10, 12, 0);
        assert_eq!(hist.local_date_at(back), date(2026, 6, 10));
        assert_eq!(hist.latest_date_by(back), date(2026, 6, 11));
        assert!(!hist.lived(date(2026, 6, 10)));
        assert!(hist.lived(date(2026, 6, 11)));
        assert!(hist.lived(date(2026, 6, 12)));
    }

    #[test]
    fn a_zone_that_skipped_a_date_did_not_live_it() {
        // Samoa moved across the date line at the end of 2011-12-29.
        let apia = ZoneHistory::new(tz("Pacific/Apia"));
        assert!(apia.lived(date(2011, 12, 29)));
        assert!(!apia.lived(date(2011, 12, 30)));
        assert!(apia.lived(date(2011, 12, 31)));
        // A move that starts after the skipped date does not revive it.
        let mut moved = ZoneHistory::new(tz("Pacific/Apia"));
        moved.moved(utc(2012, 1, 5, 0, 0), tz("Europe/London"));
        assert!(!moved.lived(date(2011, 12, 30)));
    }

    #[test]
    fn zone_history_entries_are_ordered_and_deduplicated() {
        let later = utc(2026, 5, 1, 0, 0);
        let hist = ZoneHistory::from_segments([
            (later, tz("Asia/Tokyo")),
            (utc(2026, 1, 1, 0, 0), tz("Europe/London")),
            (later, tz("Pacific/Honolulu")),
        ])
        .unwrap();
        assert_eq!(hist.segments().len(), 2);
        assert_eq!(hist.zone_at(later), tz("Pacific/Honolulu"));
        // A late report of an earlier move lands in its place.
        let mut late = hist.clone();
        late.moved(utc(2026, 3, 1, 0, 0), tz("Asia/Tokyo"));
        assert_eq!(late.segments().len(), 3);
        assert_eq!(late.zone_at(utc(2026, 4, 1, 0, 0)), tz("Asia/Tokyo"));
        assert_eq!(late.zone_at(later), tz("Pacific/Honolulu"));
        assert_eq!(
            late.latest_date_by(utc(2026, 6, 1, 0, 0)),
            date(2026, 5, 31)
        );
        assert_eq!(hist.zone_at(utc(2020, 1, 1, 0, 0)), tz("Europe/London"));
        assert!(ZoneHistory::from_segments([]).is_none());
    }

    #[test]
    fn local_date_uses_the_zone() {
        let t = utc(2026, 7, 1, 23, 30);
        assert_eq!(local_date(t, tz("Europe/London")), date(2026, 7, 2));
        assert_eq!(local_date(t, tz("America/New_York")), date(2026, 7, 1));
        assert_eq!(local_date(t, tz("Australia/Lord_Howe")), date(2026, 7, 2));
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in DayStatus::ALL {
            assert_eq!(status.as_str().parse::<DayStatus>(), Ok(status));
        }
        assert!("gone".parse::<DayStatus>().is_err());
        assert!(!DayStatus::Open.is_settled());
        assert!(DayStatus::Skipped.is_settled());
    }

    #[test]
    fn calendar_month_fills_gaps_from_the_first_day() {
        let mut c = Couple::new(date(2026, 2, 10));
        c.connect_days(date(2026, 2, 10), 3);
        c.settle(date(2026, 2, 13));
        let rows: Vec<DayRecord> = c.rows.values().cloned().collect();
        let feb = calendar_month(&c.state, 2026, 2, rows.clone());
        assert_eq!(feb.len(), 19); // 10th to 28th
        assert_eq!(feb[0].status, DayStatus::Connected);
        assert_eq!(feb[3].status, DayStatus::Missed);
        assert_eq!(feb[4], DayRecord::new(date(2026, 2, 14)));
        assert!(calendar_month(&c.state, 2026, 1, rows.clone()).is_empty());
        assert!(calendar_month(&c.state, 2026, 13, rows.clone()).is_empty());
        assert_eq!(calendar_month(&c.state, 2026, 12, rows).len(), 31);
        assert_eq!(
            month_bounds(2028, 2),
            Some((date(2028, 2, 1), date(2028, 2, 29)))
        );
    }
}
