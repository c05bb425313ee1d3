//! "I need a moment": the rules of a space one partner asks for. Pure: no I/O.
//!
//! A space starts when asked and ends by itself at its `until` (the asker's choice, 5 minutes
//! to 48 hours ahead, or 48 hours when they gave none), or earlier when the asker ends it.
//! While it is in force, taps to the asker are held and delivered together at its end. It
//! neither feeds nor breaks the streak (see [`super::streaks::space_dates`]).

use chrono::{DateTime, Duration, Utc};

use crate::error::{Error, Result};

/// Longest space, and how far ahead its `until` may be.
pub const MAX_SPACE: Duration = Duration::hours(48);
/// Nearest `until`: a space shorter than this would end before the partner saw it.
pub const MIN_SPACE: Duration = Duration::minutes(5);

/// When a space asked for at `now` ends by itself, and whether the asker left it open-ended.
pub fn ends_at(now: DateTime<Utc>, until: Option<DateTime<Utc>>) -> Result<(DateTime<Utc>, bool)> {
    match until {
        None => Ok((now + MAX_SPACE, true)),
        Some(u) if u < now + MIN_SPACE => Err(Error::invalid(
            "until",
            "must be at least 5 minutes from now",
        )),
        Some(u) if u > now + MAX_SPACE => {
            Err(Error::invalid("until", "must be at most 48 hours from now"))
        }
        Some(u) => Ok((u, false)),
    }
}

/// When a space in force with end `until` is over at `now` (taps are held until then).
pub fn is_due(until: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    until <= now
}

/// A request timestamp as an instant, or a clear error naming `field`.
pub fn instant(field: &'static str, t: &prost_types::Timestamp) -> Result<DateTime<Utc>> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(Error::invalid(field, "nanos must be 0-999999999"));
    }
    DateTime::from_timestamp(t.seconds, t.nanos as u32)
        .ok_or_else(|| Error::invalid(field, "is not a valid time"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn without_until_a_space_lasts_at_most_48_hours() {
        assert_eq!(ends_at(now(), None).unwrap(), (now() + MAX_SPACE, true));
    }

    #[test]
    fn until_is_bounded() {
        let in_an_hour = now() + Duration::hours(1);
        assert_eq!(
            ends_at(now(), Some(in_an_hour)).unwrap(),
            (in_an_hour, false)
        );
        assert!(ends_at(now(), Some(now() + Duration::minutes(4))).is_err());
        assert!(ends_at(now(), Some(now() - Duration::hours(1))).is_err());
        assert!(ends_at(now(), Some(now() + Duration::hours(49))).is_err());
        assert!(ends_at(now(), Some(now() + MAX_SPACE)).is_ok());
    }

    #[test]
    fn a_space_is_due_at_its_until() {
        assert!(!is_due(now(), now() - Duration::seconds(1)));
        assert!(is_due(now(), now()));
    }

    #[test]
    fn timestamps_are_checked() {
        let ok = prost_types::Timestamp {
            seconds: now().timestamp(),
            nanos: 0,
        };
        assert_eq!(instant("until", &ok).unwrap(), now());
        let bad = prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert!(instant("until", &bad).is_err());
        let huge = prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert!(instant("until", &huge).is_err());
    }
}
