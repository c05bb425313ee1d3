//! Together time and the next meeting: the rules. Pure: no I/O.
//!
//! Together time is proposed by one partner and lapses unless the other confirms it within
//! [`CONFIRM_WITHIN`]; once confirmed it lasts its length (15 minutes to 24 hours) unless a
//! partner ends it sooner. While it is in force, taps between the two are kept and delivered
//! quietly at its end, and each partner's dates it touched count as acted on for the streak.
//!
//! The next meeting is a local date and time in a named zone; at that instant it turns into
//! together time.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;

use super::schedule::resolve_local;
use crate::error::{Error, Result};

/// How long a proposal waits for the partner's confirmation.
pub const CONFIRM_WITHIN: Duration = Duration::minutes(30);
/// Shortest and longest together time, in minutes.
pub const MIN_MINUTES: u32 = 15;
/// Longest together time: a day.
pub const MAX_MINUTES: u32 = 24 * 60;
/// Together time's length when a proposal gives none.
pub const DEFAULT_MINUTES: u32 = 120;
/// A meeting's together time when it gives none.
pub const DEFAULT_MEETING_MINUTES: u32 = 180;
/// How far ahead a meeting may be set.
pub const MEETING_AHEAD: Duration = Duration::days(2 * 366);

/// A length in minutes as asked (0 means `default`), bounded.
pub fn minutes(field: &'static str, asked: u32, default: u32) -> Result<u32> {
    match asked {
        0 => Ok(default),
        m if (MIN_MINUTES..=MAX_MINUTES).contains(&m) => Ok(m),
        _ => Err(Error::invalid(
            field,
            "must be 15-1440 minutes (0 for the default)",
        )),
    }
}

/// A meeting as asked, checked: its local date and time, and the instant they stand for in
/// `zone`. The instant must be in the future (at `now`) and at most two years ahead.
pub fn meeting_instant(
    zone: Tz,
    local_date: &str,
    local_time: &str,
    now: DateTime<Utc>,
) -> Result<(NaiveDate, NaiveTime, DateTime<Utc>)> {
    let date = NaiveDate::parse_from_str(local_date.trim(), "%Y-%m-%d")
        .map_err(|_| Error::invalid("local_date", "must be a date, YYYY-MM-DD"))?;
    let time = crate::domain::validate::time_of_day("local_time", local_time)?;
    let at = resolve_local(zone, NaiveDateTime::new(date, time));
    if at <= now {
        return Err(Error::invalid("local_time", "is in the past"));
    }
    if at > now + MEETING_AHEAD {
        return Err(Error::invalid(
            "local_date",
            "must be at most two years ahead",
        ));
    }
    Ok((date, time, at))
}

/// When together time confirmed at `confirmed` for `minutes` ends by itself.
pub fn ends_at(confirmed: DateTime<Utc>, minutes: u32) -> DateTime<Utc> {
    confirmed + Duration::minutes(i64::from(minutes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, 10, 12, 0, 0).unwrap()
    }

    #[test]
    fn lengths_are_bounded_with_a_default() {
        assert_eq!(minutes("minutes", 0, DEFAULT_MINUTES).unwrap(), 120);
        assert_eq!(minutes("minutes", 15, DEFAULT_MINUTES).unwrap(), 15);
        assert_eq!(minutes("minutes", 1440, DEFAULT_MINUTES).unwrap(), 1440);
        assert!(minutes("minutes", 14, DEFAULT_MINUTES).is_err());
        assert!(minutes("minutes", 1441, DEFAULT_MINUTES).is_err());
    }

    #[test]
    fn a_meeting_is_read_on_its_zone_clock() {
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        let (d, t, at) = meeting_instant(tokyo, "2027-03-20", "19:30", now()).unwrap();
        assert_eq!(d.to_string(), "2027-03-20");
        assert_eq!(t.to_string(), "19:30:00");
        assert_eq!(at, Utc.with_ymd_and_hms(2027, 3, 20, 10, 30, 0).unwrap());
    }

    #[test]
    fn a_meeting_in_a_spring_gap_moves_to_the_first_minute_after_it() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 2027-03-14 02:30 does not exist in New York (clocks go 02:00 -> 03:00 EDT).
        let (_, _, at) = meeting_instant(ny, "2027-03-14", "02:30", now()).unwrap();
        assert_eq!(at, Utc.with_ymd_and_hms(2027, 3, 14, 7, 0, 0).unwrap());
    }

    #[test]
    fn a_meeting_must_be_ahead_and_well_formed() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        assert!(meeting_instant(paris, "2027-03-10", "12:00", now()).is_err());
        assert!(meeting_instant(paris, "2030-01-01", "12:00", now()).is_err());
        assert!(meeting_instant(paris, "2027-02-30", "12:00", now()).is_err());
        assert!(meeting_instant(paris, "2027-03-11", "25:00", now()).is_err());
        assert!(meeting_instant(paris, "tomorrow", "12:00", now()).is_err());
        assert!(meeting_instant(paris, "2027-03-11", "12:00", now()).is_ok());
    }

    #[test]
    fn together_time_ends_after_its_length() {
        assert_eq!(ends_at(now(), 90), now() + Duration::minutes(90));
    }
}
