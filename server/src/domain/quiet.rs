//! Quiet hours and a person's clock, computed in their own IANA zone.

use chrono::{DateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// Quiet hours as minutes after local midnight: `start` inclusive, `end` exclusive. A range with
/// `start > end` crosses midnight (22:00-07:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// Minutes after local midnight when quiet starts.
    pub start_min: u32,
    /// Minutes after local midnight when quiet ends.
    pub end_min: u32,
}

impl QuietHours {
    /// Whether the local minute of day `minute` falls inside these quiet hours.
    pub fn contains(&self, minute: u32) -> bool {
        if self.start_min <= self.end_min {
            self.start_min <= minute && minute < self.end_min
        } else {
            minute >= self.start_min || minute < self.end_min
        }
    }
}

/// A person's clock at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonClock {
    /// Their IANA zone.
    pub zone: Tz,
    /// The local date and time there.
    pub local: DateTime<Tz>,
    /// Offset from UTC in seconds at that instant.
    pub utc_offset_seconds: i32,
    /// Whether they are inside their quiet hours.
    pub in_quiet_hours: bool,
}

/// The clock of someone in `zone` with `quiet` hours, at `now`.
pub fn person_clock(now: DateTime<Utc>, zone: Tz, quiet: Option<QuietHours>) -> PersonClock {
    let local = zone.from_utc_datetime(&now.naive_utc());
    let minute = local.hour() * 60 + local.minute();
    PersonClock {
        zone,
        utc_offset_seconds: local.offset().fix().local_minus_utc(),
        in_quiet_hours: quiet.is_some_and(|q| q.contains(minute)),
        local,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn same_day_range_is_half_open() {
        let q = QuietHours {
            start_min: 13 * 60,
            end_min: 14 * 60,
        };
        assert!(!q.contains(13 * 60 - 1));
        assert!(q.contains(13 * 60));
        assert!(q.contains(14 * 60 - 1));
        assert!(!q.contains(14 * 60));
    }

    #[test]
    fn overnight_range_wraps_midnight() {
        let q = QuietHours {
            start_min: 22 * 60,
            end_min: 7 * 60,
        };
        assert!(q.contains(23 * 60));
        assert!(q.contains(0));
        assert!(q.contains(6 * 60 + 59));
        assert!(!q.contains(7 * 60));
        assert!(!q.contains(12 * 60));
    }

    #[test]
    fn clock_uses_the_zone_in_force_including_dst() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let summer = person_clock(utc(2026, 7, 1, 12, 0), ny, None);
        assert_eq!(summer.utc_offset_seconds, -4 * 3600);
        assert_eq!(summer.local.hour(), 8);
        let winter = person_clock(utc(2026, 12, 1, 12, 0), ny, None);
        assert_eq!(winter.utc_offset_seconds, -5 * 3600);
        let kiritimati: Tz = "Pacific/Kiritimati".parse().unwrap();
        assert_eq!(
            person_clock(utc(2026, 1, 1, 12, 0), kiritimati, None).utc_offset_seconds,
            14 * 3600
        );
    }

    #[test]
    fn quiet_hours_are_read_on_the_local_clock() {
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        let q = Some(QuietHours {
            start_min: 22 * 60,
            end_min: 7 * 60,
        });
        // 14:00 UTC is 23:00 in Tokyo.
        assert!(person_clock(utc(2026, 3, 1, 14, 0), tokyo, q).in_quiet_hours);
        // 03:00 UTC is 12:00 in Tokyo.
        assert!(!person_clock(utc(2026, 3, 1, 3, 0), tokyo, q).in_quiet_hours);
    }
}
