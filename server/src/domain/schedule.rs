//! Routine schedules: when a routine fires for one partner, in their own zone.
//!
//! A routine names a local time of day and a set of weekdays. It fires for each partner when
//! their own wall clock shows that time on one of those weekdays, so a morning routine at 08:00
//! reaches both partners at 08:00 local even when they live hours apart.
//!
//! Daylight saving is resolved with [`resolve_local`]: a wall time that a forward shift skips
//! fires at the first instant after the gap, and a wall time that a backward shift repeats fires
//! once, at its first occurrence. Everything here is pure.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Timelike, Utc, Weekday,
};
use chrono_tz::Tz;

pub use chrono::WeekdaySet;

use crate::domain::quiet::QuietHours;

/// How late a missed firing may be and still be made up at start-up.
pub const CATCH_UP_WINDOW: Duration = Duration::hours(1);

/// Minutes in a day.
const DAY_MINUTES: u32 = 24 * 60;

/// The first instant at which the wall clock in `zone` reads `local`.
///
/// A wall time skipped by a forward shift (inside a daylight-saving gap) resolves to the first
/// instant after the gap; a wall time repeated by a backward shift resolves to its first
/// occurrence.
pub fn resolve_local(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.with_timezone(&Utc).min(b.with_timezone(&Utc)),
        LocalResult::None => end_of_gap(zone, local),
    }
}

/// Every instant at which the wall clock in `zone` reads `local`, earliest first: one for an
/// ordinary time, two for a repeated time, and for a skipped time the first instant after the gap.
fn occurrences(zone: Tz, local: NaiveDateTime) -> Vec<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
            vec![a.min(b), a.max(b)]
        }
        LocalResult::None => vec![end_of_gap(zone, local)],
    }
}

/// The wall-clock reading in `zone` at `instant`.
fn wall(zone: Tz, instant: DateTime<Utc>) -> NaiveDateTime {
    instant.with_timezone(&zone).naive_local()
}

/// The first instant whose wall-clock reading in `zone` is at or after `local`, for a `local`
/// that falls in a gap. Offsets lie within -12 h..=+14 h, so the instant lies within 28 hours of
/// `local` read as UTC; the wall clock only moves forward around a gap, so bisection finds it.
fn end_of_gap(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let base = local.and_utc().timestamp();
    // At `lo` the wall clock reads at most `local - 1h`; at `hi` at least `local + 1h`.
    let (mut lo, mut hi) = (base - 15 * 3600, base + 13 * 3600);
    let at =
        |secs: i64| DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MIN_UTC);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if wall(zone, at(mid)) < local {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    at(hi)
}

/// The first instant strictly after `after` when a routine at local time `local` on `weekdays`
/// fires in `zone`; `None` when `weekdays` is empty.
///
/// The weekday is the weekday of the local date on which the routine is due. A time in a
/// daylight-saving gap fires at the end of the gap; a repeated time fires at its first
/// occurrence only.
pub fn next_firing(
    after: DateTime<Utc>,
    zone: Tz,
    local: NaiveTime,
    weekdays: WeekdaySet,
) -> Option<DateTime<Utc>> {
    if weekdays.is_empty() {
        return None;
    }
    // Start a day early: a firing resolved past a gap may land on the previous local date's
    // wall time. Eight days later every weekday has come round again; two spare days cover a
    // zone that skips a whole date.
    let start = wall(zone, after).date() - Duration::days(1);
    (0..11)
        .map(|i| start + Duration::days(i))
        .filter(|date| weekdays.contains(date.weekday()))
        .map(|date| resolve_local(zone, date.and_time(local)))
        .find(|&fire| fire > after)
}

/// The local date in `zone` of a firing due at `nominal`.
pub fn local_day(nominal: DateTime<Utc>, zone: Tz) -> NaiveDate {
    wall(zone, nominal).date()
}

/// The next firing after `after` in `zone` on a local date later than `last_day` (the date of
/// the latest firing, in the zone it fired in): a routine fires at most once per local date,
/// also when a change of zone brings a date round again.
pub fn next_new_day(
    after: DateTime<Utc>,
    zone: Tz,
    local: NaiveTime,
    weekdays: WeekdaySet,
    last_day: Option<NaiveDate>,
) -> Option<DateTime<Utc>> {
    let mut next = next_firing(after, zone, local, weekdays)?;
    // At most two dates can come round again (a move across the date line).
    for _ in 0..3 {
        if last_day.is_none_or(|l| local_day(next, zone) > l) {
            return Some(next);
        }
        next = next_firing(next, zone, local, weekdays)?;
    }
    Some(next)
}

/// Where a routine's next firing goes when its person moves from zone `old` to `new` at `now`:
/// `pending` is the firing that was due next in the old zone, `last_day` the date of the
/// latest firing.
///
/// When the move jumps past today's local time in the new zone while today's firing was still
/// to come (pending on today's date or earlier), it fires at the move (`now`; quiet hours then
/// defer it like any firing). Otherwise the next firing on a date that has not had one.
pub fn next_after_move(
    now: DateTime<Utc>,
    old: Tz,
    new: Tz,
    local: NaiveTime,
    weekdays: WeekdaySet,
    pending: Option<DateTime<Utc>>,
    last_day: Option<NaiveDate>,
) -> Option<DateTime<Utc>> {
    let today = local_day(now, new);
    let skipped_today = pending.is_some_and(|p| local_day(p, old) <= today)
        && weekdays.contains(today.weekday())
        && last_day.is_none_or(|l| l < today)
        && resolve_local(new, today.and_time(local)) <= now;
    if skipped_today {
        return Some(now);
    }
    next_new_day(now, new, local, weekdays, last_day)
}

/// Moves `instant` past the recipient's quiet hours: unchanged when they are not quiet at that
/// moment, otherwise the first instant after it at which their quiet hours end.
///
/// Quiet hours are read on the recipient's wall clock (start inclusive, end exclusive, possibly
/// crossing midnight). An end that falls in a daylight-saving gap ends at the close of the gap;
/// an end that happens twice ends at the next occurrence after `instant`.
pub fn defer_past_quiet(
    instant: DateTime<Utc>,
    zone: Tz,
    quiet: Option<QuietHours>,
) -> DateTime<Utc> {
    let Some(quiet) = quiet else {
        return instant;
    };
    let now = wall(zone, instant);
    if !quiet.contains(now.hour() * 60 + now.minute()) {
        return instant;
    }
    let end_min = quiet.end_min % DAY_MINUTES;
    let end = NaiveTime::from_hms_opt(end_min / 60, end_min % 60, 0).unwrap_or(NaiveTime::MIN);
    // Quiet that started before midnight ends on the next date.
    let mut date = now.date();
    if now.time() >= end {
        date += Duration::days(1);
    }
    for day in 0..3 {
        let candidate = date + Duration::days(day);
        if let Some(t) = occurrences(zone, candidate.and_time(end))
            .into_iter()
            .find(|&t| t > instant)
        {
            return t;
        }
    }
    instant
}

/// When a routine should next reach a recipient: its next firing after `after`, moved past their
/// quiet hours. Compute the following one from the firing, not from the deferred delivery.
pub fn next_delivery(
    after: DateTime<Utc>,
    zone: Tz,
    local: NaiveTime,
    weekdays: WeekdaySet,
    quiet: Option<QuietHours>,
) -> Option<DateTime<Utc>> {
    next_firing(after, zone, local, weekdays).map(|fire| defer_past_quiet(fire, zone, quiet))
}

/// What to do at start-up with a firing that was due while the server was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// Not due yet: leave it scheduled.
    NotDue,
    /// Less than [`CATCH_UP_WINDOW`] late: fire it now.
    FireNow,
    /// [`CATCH_UP_WINDOW`] late or more: skip it (the server records the skip).
    Skip,
}

/// Decides a firing scheduled at `scheduled` that has not happened by `now`.
pub fn catch_up(scheduled: DateTime<Utc>, now: DateTime<Utc>) -> CatchUp {
    if scheduled > now {
        CatchUp::NotDue
    } else if now - scheduled < CATCH_UP_WINDOW {
        CatchUp::FireNow
    } else {
        CatchUp::Skip
    }
}

/// The weekdays as a bit mask for storage: bit 0 is Monday, bit 6 Sunday.
pub fn weekdays_to_bits(set: WeekdaySet) -> u8 {
    set.iter(Weekday::Mon)
        .fold(0, |bits, day| bits | 1 << day.num_days_from_monday())
}

/// The weekdays stored by [`weekdays_to_bits`]; bit 7 is ignored.
pub fn weekdays_from_bits(bits: u8) -> WeekdaySet {
    let mut set = WeekdaySet::EMPTY;
    let mut day = Weekday::Mon;
    for i in 0..7 {
        if bits & (1 << i) != 0 {
            set.insert(day);
        }
        day = day.succ();
    }
    set
}

/// The local date of `date` at midnight, resolved like any other wall time.
pub(crate) fn start_of_date(zone: Tz, date: NaiveDate) -> DateTime<Utc> {
    resolve_local(zone, date.and_time(NaiveTime::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Weekday::*;

    fn tz(name: &str) -> Tz {
        name.parse().unwrap()
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn local(zone: &str, instant: DateTime<Utc>) -> String {
        instant
            .with_timezone(&tz(zone))
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    }

    fn quiet(start: u32, end: u32) -> Option<QuietHours> {
        Some(QuietHours {
            start_min: start,
            end_min: end,
        })
    }

    #[test]
    fn fires_at_the_local_time_on_the_next_matching_day() {
        let ny = tz("America/New_York");
        // Monday 2026-06-01 12:00 UTC is 08:00 EDT.
        let after = utc(2026, 6, 1, 12, 0);
        let fire = next_firing(after, ny, hm(9, 0), WeekdaySet::ALL).unwrap();
        assert_eq!(fire, utc(2026, 6, 1, 13, 0));
        let fire = next_firing(after, ny, hm(7, 0), WeekdaySet::ALL).unwrap();
        assert_eq!(fire, utc(2026, 6, 2, 11, 0));
        let weekend = WeekdaySet::from_array([Sat, Sun]);
        let fire = next_firing(after, ny, hm(7, 0), weekend).unwrap();
        assert_eq!(local("America/New_York", fire), "2026-06-06 07:00 EDT");
    }

    #[test]
    fn next_firing_is_strictly_after() {
        let london = tz("Europe/London");
        let fire = utc(2026, 1, 5, 8, 0); // Monday 08:00 GMT
        let days = WeekdaySet::from_array([Mon, Wed]);
        let next = next_firing(fire, london, hm(8, 0), days).unwrap();
        assert_eq!(next, utc(2026, 1, 7, 8, 0));
        let just_before = fire - Duration::seconds(1);
        assert_eq!(next_firing(just_before, london, hm(8, 0), days), Some(fire));
    }

    #[test]
    fn no_weekdays_never_fires() {
        let zone = tz("Europe/London");
        assert_eq!(
            next_firing(utc(2026, 1, 1, 0, 0), zone, hm(8, 0), WeekdaySet::EMPTY),
            None
        );
    }

    #[test]
    fn spring_forward_gap_fires_when_the_gap_ends() {
        let ny = tz("America/New_York");
        // 2026-03-08 02:30 does not exist in New York: clocks jump from 02:00 to 03:00 EDT.
        let fire = next_firing(utc(2026, 3, 7, 12, 0), ny, hm(2, 30), WeekdaySet::ALL).unwrap();
        assert_eq!(fire, utc(2026, 3, 8, 7, 0));
        assert_eq!(local("America/New_York", fire), "2026-03-08 03:00 EDT");
        // The next day is ordinary again.
        let next = next_firing(fire, ny, hm(2, 30), WeekdaySet::ALL).unwrap();
        assert_eq!(local("America/New_York", next), "2026-03-09 02:30 EDT");
    }

    #[test]
    fn fall_back_repeated_time_fires_once_at_the_first_occurrence() {
        let ny = tz("America/New_York");
        // 2026-11-01 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST).
        let first = next_firing(utc(2026, 11, 1, 0, 0), ny, hm(1, 30), WeekdaySet::ALL).unwrap();
        assert_eq!(first, utc(2026, 11, 1, 5, 30));
        let next = next_firing(first, ny, hm(1, 30), WeekdaySet::ALL).unwrap();
        assert_eq!(next, utc(2026, 11, 2, 6, 30));
        // Asking from inside the repeated hour does not produce the second occurrence either.
        let inside = utc(2026, 11, 1, 6, 0);
        assert_eq!(
            next_firing(inside, ny, hm(1, 30), WeekdaySet::ALL),
            Some(utc(2026, 11, 2, 6, 30))
        );
    }

    #[test]
    fn london_daylight_saving_both_ways() {
        let london = tz("Europe/London");
        // 2026-03-29: 01:00 GMT jumps to 02:00 BST.
        let fire = next_firing(utc(2026, 3, 28, 12, 0), london, hm(1, 30), WeekdaySet::ALL);
        assert_eq!(fire, Some(utc(2026, 3, 29, 1, 0)));
        // 2026-10-25: 02:00 BST falls back to 01:00 GMT; 01:30 happens at 00:30 and 01:30 UTC.
        let fire = next_firing(utc(2026, 10, 24, 12, 0), london, hm(1, 30), WeekdaySet::ALL);
        assert_eq!(fire, Some(utc(2026, 10, 25, 0, 30)));
        let next = next_firing(fire.unwrap(), london, hm(1, 30), WeekdaySet::ALL).unwrap();
        assert_eq!(local("Europe/London", next), "2026-10-26 01:30 GMT");
    }

    #[test]
    fn lord_howe_half_hour_shifts() {
        let lh = tz("Australia/Lord_Howe");
        // 2026-10-04 02:00 jumps to 02:30 (+10:30 to +11).
        let fire = next_firing(utc(2026, 10, 3, 0, 0), lh, hm(2, 15), WeekdaySet::ALL).unwrap();
        assert_eq!(fire, utc(2026, 10, 3, 15, 30));
        assert_eq!(fire.with_timezone(&lh).format("%H:%M").to_string(), "02:30");
        // 2026-04-05 02:00 falls back to 01:30 (+11 to +10:30): 01:45 happens twice.
        let fire = next_firing(utc(2026, 4, 4, 0, 0), lh, hm(1, 45), WeekdaySet::ALL).unwrap();
        assert_eq!(fire, utc(2026, 4, 4, 14, 45));
        let next = next_firing(fire, lh, hm(1, 45), WeekdaySet::ALL).unwrap();
        assert_eq!(next, utc(2026, 4, 5, 15, 15));
    }

    #[test]
    fn morning_routine_is_eight_local_for_both_partners() {
        let (london, tokyo) = (tz("Europe/London"), tz("Asia/Tokyo"));
        let after = utc(2026, 1, 10, 12, 0);
        let a = next_firing(after, london, hm(8, 0), WeekdaySet::ALL).unwrap();
        let b = next_firing(after, tokyo, hm(8, 0), WeekdaySet::ALL).unwrap();
        assert_eq!(local("Europe/London", a), "2026-01-11 08:00 GMT");
        assert_eq!(local("Asia/Tokyo", b), "2026-01-11 08:00 JST");
        assert_eq!(a - b, Duration::hours(9));
    }

    #[test]
    fn kiritimati_and_honolulu_fire_a_whole_day_apart() {
        let (kiri, hnl) = (tz("Pacific/Kiritimati"), tz("Pacific/Honolulu"));
        let after = utc(2026, 5, 1, 0, 0);
        let a = next_firing(after, kiri, hm(8, 0), WeekdaySet::single(Fri)).unwrap();
        let b = next_firing(after, hnl, hm(8, 0), WeekdaySet::single(Fri)).unwrap();
        // Friday 2026-05-01 08:00 in Kiritimati is Thursday 18:00 UTC, already past.
        assert_eq!(local("Pacific/Kiritimati", a), "2026-05-08 08:00 +14");
        assert_eq!(a, utc(2026, 5, 7, 18, 0));
        assert_eq!(local("Pacific/Honolulu", b), "2026-05-01 08:00 HST");
        assert_eq!(b, utc(2026, 5, 1, 18, 0));
    }

    #[test]
    fn quiet_hours_defer_to_their_end() {
        let london = tz("Europe/London");
        let q = quiet(22 * 60, 7 * 60);
        // 23:30 GMT waits for 07:00 the next morning; 03:00 for 07:00 the same morning.
        assert_eq!(
            defer_past_quiet(utc(2026, 1, 10, 23, 30), london, q),
            utc(2026, 1, 11, 7, 0)
        );
        assert_eq!(
            defer_past_quiet(utc(2026, 1, 11, 3, 0), london, q),
            utc(2026, 1, 11, 7, 0)
        );
        // Outside quiet hours, or with none, nothing moves.
        let noon = utc(2026, 1, 11, 12, 0);
        assert_eq!(defer_past_quiet(noon, london, q), noon);
        assert_eq!(defer_past_quiet(noon, london, None), noon);
        // The end is exclusive; the start inclusive.
        let seven = utc(2026, 1, 11, 7, 0);
        assert_eq!(defer_past_quiet(seven, london, q), seven);
        assert_eq!(
            defer_past_quiet(utc(2026, 1, 11, 22, 0), london, q),
            utc(2026, 1, 12, 7, 0)
        );
        // Equal start and end mean no quiet hours at all.
        assert_eq!(defer_past_quiet(noon, london, quiet(720, 720)), noon);
        // A daytime range.
        let lunch = quiet(12 * 60, 13 * 60);
        assert_eq!(
            defer_past_quiet(noon, london, lunch),
            utc(2026, 1, 11, 13, 0)
        );
    }

    #[test]
    fn quiet_hours_ending_in_a_gap_end_when_the_gap_ends() {
        let ny = tz("America/New_York");
        // Quiet 00:00-02:30; on 2026-03-08 02:30 does not exist, quiet ends at 03:00 EDT.
        let at = utc(2026, 3, 8, 6, 30); // 01:30 EST
        let end = defer_past_quiet(at, ny, quiet(0, 150));
        assert_eq!(end, utc(2026, 3, 8, 7, 0));
        let lh = tz("Australia/Lord_Howe");
        // Quiet 23:00-02:15 on the night of 2026-10-03: ends at 02:30 (+11).
        let at = utc(2026, 10, 3, 13, 0); // 23:30 +10:30
        assert_eq!(
            defer_past_quiet(at, lh, quiet(23 * 60, 2 * 60 + 15)),
            utc(2026, 10, 3, 15, 30)
        );
    }

    #[test]
    fn quiet_hours_ending_in_a_repeated_hour_end_at_the_next_occurrence() {
        let ny = tz("America/New_York");
        let q = quiet(0, 90); // 00:00-01:30
        // First pass through 01:10 (EDT) ends at 01:30 EDT.
        assert_eq!(
            defer_past_quiet(utc(2026, 11, 1, 5, 10), ny, q),
            utc(2026, 11, 1, 5, 30)
        );
        // Second pass through 01:10 (EST) ends at 01:30 EST.
        assert_eq!(
            defer_past_quiet(utc(2026, 11, 1, 6, 10), ny, q),
            utc(2026, 11, 1, 6, 30)
        );
    }

    #[test]
    fn delivery_combines_firing_and_quiet_hours() {
        let hnl = tz("Pacific/Honolulu");
        let after = utc(2026, 2, 1, 0, 0);
        // A 06:00 routine for someone quiet until 07:30 arrives at 07:30.
        let at = next_delivery(after, hnl, hm(6, 0), WeekdaySet::ALL, quiet(22 * 60, 450));
        assert_eq!(
            local("Pacific/Honolulu", at.unwrap()),
            "2026-02-01 07:30 HST"
        );
        assert_eq!(
            next_delivery(after, hnl, hm(6, 0), WeekdaySet::EMPTY, None),
            None
        );
    }

    #[test]
    fn missed_firings_are_made_up_within_an_hour() {
        let due = utc(2026, 1, 1, 8, 0);
        assert_eq!(catch_up(due, due - Duration::seconds(1)), CatchUp::NotDue);
        assert_eq!(catch_up(due, due), CatchUp::FireNow);
        assert_eq!(catch_up(due, due + Duration::minutes(59)), CatchUp::FireNow);
        assert_eq!(catch_up(due, due + Duration::minutes(60)), CatchUp::Skip);
        assert_eq!(catch_up(due, due + Duration::days(2)), CatchUp::Skip);
    }

    #[test]
    fn weekday_bits_round_trip() {
        let set = WeekdaySet::from_array([Mon, Fri, Sun]);
        assert_eq!(weekdays_to_bits(set), 0b101_0001);
        assert_eq!(weekdays_from_bits(0b101_0001), set);
        assert_eq!(weekdays_from_bits(0xff), WeekdaySet::ALL);
        assert_eq!(weekdays_to_bits(WeekdaySet::EMPTY), 0);
    }

    #[test]
    fn resolve_local_handles_gaps_repeats_and_a_skipped_date() {
        let ny = tz("America/New_York");
        let t = |h, m| {
            NaiveDate::from_ymd_opt(2026, 3, 8)
                .unwrap()
                .and_time(hm(h, m))
        };
        assert_eq!(resolve_local(ny, t(2, 0)), utc(2026, 3, 8, 7, 0));
        assert_eq!(resolve_local(ny, t(2, 59)), utc(2026, 3, 8, 7, 0));
        assert_eq!(resolve_local(ny, t(3, 0)), utc(2026, 3, 8, 7, 0));
        assert_eq!(resolve_local(ny, t(1, 59)), utc(2026, 3, 8, 6, 59));
        // Samoa skipped 2011-12-30 entirely: its midnight is the midnight of the 31st.
        let apia = tz("Pacific/Apia");
        let d30 = NaiveDate::from_ymd_opt(2011, 12, 30).unwrap();
        assert_eq!(
            start_of_date(apia, d30),
            start_of_date(apia, d30.succ_opt().unwrap())
        );
        assert_eq!(start_of_date(apia, d30), utc(2011, 12, 30, 10, 0));
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn flying_west_after_the_firing_does_not_fire_the_same_date_again() {
        let (paris, ny) = (tz("Europe/Paris"), tz("America/New_York"));
        // 2027-06-15 08:00 in Paris fired (06:00 UTC); the next was 06-16 08:00 Paris.
        let pending = utc(2027, 6, 16, 6, 0);
        // Lands in New York at 05:00 local (09:00 UTC), still 06-15 there.
        let now = utc(2027, 6, 15, 9, 0);
        let next = next_after_move(
            now,
            paris,
            ny,
            hm(8, 0),
            WeekdaySet::ALL,
            Some(pending),
            Some(day(2027, 6, 15)),
        )
        .unwrap();
        assert_eq!(local("America/New_York", next), "2027-06-16 08:00 EDT");
    }

    #[test]
    fn flying_east_past_the_time_fires_at_the_change() {
        let (ny, tokyo) = (tz("America/New_York"), tz("Asia/Tokyo"));
        // 06-16 08:00 New York was pending; the last firing was 06-15. At 07:00 New York
        // (11:00 UTC) she is in Tokyo, where it is 06-16 20:00: 08:00 there has passed.
        let now = utc(2027, 6, 16, 11, 0);
        let pending = utc(2027, 6, 16, 12, 0);
        let at = next_after_move(
            now,
            ny,
            tokyo,
            hm(8, 0),
            WeekdaySet::ALL,
            Some(pending),
            Some(day(2027, 6, 15)),
        );
        assert_eq!(at, Some(now), "today's firing is not lost");
        // After that firing (recorded for 06-16), the next is 06-17 08:00 Tokyo.
        let next = next_new_day(
            now,
            tokyo,
            hm(8, 0),
            WeekdaySet::ALL,
            Some(day(2027, 6, 16)),
        )
        .unwrap();
        assert_eq!(local("Asia/Tokyo", next), "2027-06-17 08:00 JST");
    }

    #[test]
    fn a_move_that_skips_nothing_keeps_the_plain_next_firing() {
        let (paris, london) = (tz("Europe/Paris"), tz("Europe/London"));
        // 06:00 Paris, routine at 08:00: after the move it is 05:00 in London.
        let now = utc(2027, 6, 15, 4, 0);
        let pending = utc(2027, 6, 15, 6, 0);
        let next = next_after_move(
            now,
            paris,
            london,
            hm(8, 0),
            WeekdaySet::ALL,
            Some(pending),
            Some(day(2027, 6, 14)),
        )
        .unwrap();
        assert_eq!(local("Europe/London", next), "2027-06-15 08:00 BST");
        // Not a routine day today: nothing fires at the move.
        let mut weekends = WeekdaySet::EMPTY;
        weekends.insert(Sat);
        weekends.insert(Sun);
        let tue_late = utc(2027, 6, 15, 20, 0);
        let next = next_after_move(
            tue_late,
            paris,
            tz("Asia/Tokyo"),
            hm(8, 0),
            weekends,
            Some(utc(2027, 6, 19, 6, 0)),
            Some(day(2027, 6, 13)),
        )
        .unwrap();
        assert_eq!(local("Asia/Tokyo", next), "2027-06-19 08:00 JST");
        // A routine that never fired and had nothing pending today does not fire at the move.
        let next = next_after_move(
            utc(2027, 6, 15, 12, 0),
            paris,
            tz("Asia/Tokyo"),
            hm(8, 0),
            WeekdaySet::ALL,
            Some(utc(2027, 6, 16, 6, 0)),
            None,
        )
        .unwrap();
        assert_eq!(local("Asia/Tokyo", next), "2027-06-16 08:00 JST");
    }
}
