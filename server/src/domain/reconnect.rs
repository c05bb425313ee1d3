//! The reconnect plan's rules: its seven steps, and when each partner's next step comes on
//! their own clock. Pure; the storage is in [`crate::reconnect`].
//!
//! Each partner gets at most one step per local date, at the plan's local time, on
//! consecutive dates from the acceptance (the first one today when that time is still to
//! come). The wall time is resolved like a routine's (see [`schedule`]): skipped by a
//! daylight-saving change, it comes at the end of the gap; repeated, it comes once. A step due
//! in quiet hours waits until they end.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc, WeekdaySet};
use chrono_tz::Tz;
use tapline_proto::v1::ReconnectStepKind;

use crate::domain::quiet::QuietHours;
use crate::domain::schedule;
use crate::domain::validate;
use crate::error::Result;

/// Steps in the plan.
pub const STEPS: u32 = 7;

/// One step: what it is, its title, and what to do.
pub struct Step {
    /// Its kind on the wire.
    pub kind: ReconnectStepKind,
    /// A few words.
    pub title: &'static str,
    /// What to do, in a sentence.
    pub prompt: &'static str,
}

/// The steps, in order: small and wordless first, plans for more last.
pub const PLAN: [Step; STEPS as usize] = [
    Step {
        kind: ReconnectStepKind::Tap,
        title: "A tap",
        prompt: "Send one tap today. No words needed: it says you are thinking of them.",
    },
    Step {
        kind: ReconnectStepKind::OneWord,
        title: "One word",
        prompt: "Tell each other in a single word how today feels.",
    },
    Step {
        kind: ReconnectStepKind::Appreciation,
        title: "An appreciation",
        prompt: "Name one small thing your partner did, lately or long ago, that you value.",
    },
    Step {
        kind: ReconnectStepKind::SharedMemory,
        title: "A shared memory",
        prompt: "Bring up a moment the two of you lived that still makes you smile.",
    },
    Step {
        kind: ReconnectStepKind::DeeperQuestion,
        title: "A deeper question",
        prompt: "Open the next deeper question and answer it in your own time.",
    },
    Step {
        kind: ReconnectStepKind::PlanACall,
        title: "Plan a call",
        prompt: "Suggest a time this week to talk, even for ten minutes.",
    },
    Step {
        kind: ReconnectStepKind::DateIdea,
        title: "A date idea",
        prompt: "Offer one idea for your next date, near or far, big or small.",
    },
];

/// The step numbered `number` (1-7).
pub fn step(number: u32) -> Option<&'static Step> {
    number.checked_sub(1).and_then(|i| PLAN.get(i as usize))
}

/// The local time steps come at when none is asked for.
pub const DEFAULT_TIME: NaiveTime = match NaiveTime::from_hms_opt(19, 0, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

/// The plan's local time as asked: "HH:MM" (24 h), or empty for [`DEFAULT_TIME`].
pub fn local_time(field: &'static str, input: &str) -> Result<NaiveTime> {
    if input.trim().is_empty() {
        return Ok(DEFAULT_TIME);
    }
    validate::time_of_day(field, input)
}

/// When a partner's next step comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextStep {
    /// The wall time resolved in the partner's zone.
    pub nominal: DateTime<Utc>,
    /// When it is delivered: `nominal`, or the end of quiet hours it falls in.
    pub deliver: DateTime<Utc>,
    /// The partner's local date it is that date's step for.
    pub day: NaiveDate,
}

/// The partner's next step after `now`, on a local date later than `last_day` (the date of
/// the step that came last, if any): at most one step a local date, also across a change
/// of zone.
pub fn next_step(
    now: DateTime<Utc>,
    zone: Tz,
    time: NaiveTime,
    quiet: Option<QuietHours>,
    last_day: Option<NaiveDate>,
) -> Option<NextStep> {
    // "At or after now": a plan accepted at 19:00 sharp gets today's step at once.
    let after = now - chrono::Duration::microseconds(1);
    let nominal = schedule::next_new_day(after, zone, time, WeekdaySet::ALL, last_day)?;
    Some(NextStep {
        nominal,
        deliver: schedule::defer_past_quiet(nominal, zone, quiet),
        day: schedule::local_day(nominal, zone),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn the_steps_go_from_a_tap_to_a_date_idea() {
        let kinds: Vec<_> = (1..=STEPS).map(|n| step(n).unwrap().kind).collect();
        assert_eq!(
            kinds,
            [
                ReconnectStepKind::Tap,
                ReconnectStepKind::OneWord,
                ReconnectStepKind::Appreciation,
                ReconnectStepKind::SharedMemory,
                ReconnectStepKind::DeeperQuestion,
                ReconnectStepKind::PlanACall,
                ReconnectStepKind::DateIdea,
            ]
        );
        assert!(step(0).is_none() && step(8).is_none());
    }

    #[test]
    fn a_time_is_hh_mm_or_the_evening_default() {
        assert_eq!(local_time("t", "").unwrap(), hm(19, 0));
        assert_eq!(local_time("t", " 07:30 ").unwrap(), hm(7, 30));
        for bad in ["7", "24:00", "12:60", "noon", "07:30:00"] {
            assert!(local_time("t", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_first_step_comes_today_when_the_time_is_still_to_come() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        // 12:00 UTC is 13:00 in Paris (winter): 19:00 is still to come today.
        let s = next_step(utc(2027, 1, 10, 12, 0), paris, hm(19, 0), None, None).unwrap();
        assert_eq!(s.nominal, utc(2027, 1, 10, 18, 0));
        assert_eq!(s.day, NaiveDate::from_ymd_opt(2027, 1, 10).unwrap());
        // At 19:00 sharp it comes at once; a minute later it is tomorrow's.
        let at = utc(2027, 1, 10, 18, 0);
        assert_eq!(
            next_step(at, paris, hm(19, 0), None, None).unwrap().nominal,
            at
        );
        let s = next_step(
            at + chrono::Duration::minutes(1),
            paris,
            hm(19, 0),
            None,
            None,
        );
        assert_eq!(s.unwrap().nominal, utc(2027, 1, 11, 18, 0));
    }

    #[test]
    fn one_step_a_local_date_even_when_a_move_brings_the_date_round_again() {
        let honolulu: Tz = "Pacific/Honolulu".parse().unwrap();
        // The step of 05-06 came at 19:00 in Tokyo (10:00 UTC); the partner flies to Honolulu
        // where it is still the morning of 05-06: the next step is on 05-07 there.
        let came = NaiveDate::from_ymd_opt(2027, 5, 6).unwrap();
        let s = next_step(
            utc(2027, 5, 6, 12, 0),
            honolulu,
            hm(19, 0),
            None,
            Some(came),
        )
        .unwrap();
        assert_eq!(s.day, NaiveDate::from_ymd_opt(2027, 5, 7).unwrap());
    }

    #[test]
    fn a_step_in_a_daylight_saving_gap_comes_at_its_end() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 2027-03-14 02:30 does not exist in New York: it comes at 03:00 EDT (07:00 UTC).
        let s = next_step(utc(2027, 3, 14, 5, 0), ny, hm(2, 30), None, None).unwrap();
        assert_eq!(s.nominal, utc(2027, 3, 14, 7, 0));
        assert_eq!(s.day, NaiveDate::from_ymd_opt(2027, 3, 14).unwrap());
    }

    #[test]
    fn a_step_in_quiet_hours_waits_for_their_end() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let quiet = QuietHours {
            start_min: 18 * 60,
            end_min: 8 * 60,
        };
        let s = next_step(utc(2027, 1, 10, 12, 0), paris, hm(19, 0), Some(quiet), None).unwrap();
        assert_eq!(s.nominal, utc(2027, 1, 10, 18, 0));
        assert_eq!(s.deliver, utc(2027, 1, 11, 7, 0));
        // Still the step of the 10th.
        assert_eq!(s.day, NaiveDate::from_ymd_opt(2027, 1, 10).unwrap());
    }
}
