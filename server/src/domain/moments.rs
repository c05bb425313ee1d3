//! Moments and the weekly recap: what a kept answer says in words, what kind of moment it is,
//! the seven dates a recap covers and when the next weekly recap comes. Pure; the storage is
//! in [`crate::moments`].
//!
//! A recap covers seven consecutive local dates on its reader's own calendar, ending on the
//! date asked for (the date of sending for a scheduled one). Each account chooses a weekday
//! and local time; it comes at most once per local date, at that wall time resolved like a
//! routine's (see [`schedule`]), and waits for the end of quiet hours.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc, Weekday, WeekdaySet};
use chrono_tz::Tz;

use crate::domain::checkins::{Answer, SCALE};
use crate::domain::prompts::{AnswerKind, Category};
use crate::domain::quiet::QuietHours;
use crate::domain::schedule;
use crate::domain::validate;
use crate::error::{Error, Result};

/// Dates in a recap.
pub const RECAP_DAYS: i64 = 7;
/// Moments listed per page when the request says 0.
pub const DEFAULT_PAGE: u32 = 50;
/// Most moments listed per page.
pub const MAX_PAGE: u32 = 100;

/// What was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A tap's note.
    Note,
    /// An answer to a check-in.
    Answer,
    /// An answer to an appreciation or gratitude prompt.
    Appreciation,
}

impl Kind {
    /// The kind of a kept answer to a prompt of `category`.
    pub fn of_answer(category: Category) -> Kind {
        match category {
            Category::Appreciation | Category::Gratitude => Kind::Appreciation,
            _ => Kind::Answer,
        }
    }
}

/// An answer in words, as a moment keeps it: "4 of 5", the option chosen, the emoji or the
/// text.
pub fn answer_words(kind: &AnswerKind, answer: &Answer) -> String {
    match (kind, answer) {
        (_, Answer::Scale(v)) => format!("{v} of {}", SCALE.end()),
        (AnswerKind::Choice(options), Answer::Choice(i)) => options
            .get(usize::from(*i))
            .map_or_else(|| format!("option {}", i + 1), |o| (*o).to_owned()),
        (_, Answer::Choice(i)) => format!("option {}", i + 1),
        (_, Answer::Emoji(e)) => e.clone(),
        (_, Answer::Text(t)) => t.clone(),
    }
}

/// Whether a prompt's answers feed the mood or the energy series: scale answers to mood and
/// energy prompts.
pub fn series_of(category: Category, kind: &AnswerKind) -> Option<Series> {
    match (category, kind) {
        (Category::Mood, AnswerKind::Scale { .. }) => Some(Series::Mood),
        (Category::Energy, AnswerKind::Scale { .. }) => Some(Series::Energy),
        _ => None,
    }
}

/// The value a scale answer adds to a series.
pub fn scale_value(answer: &Answer) -> Option<u32> {
    match answer {
        Answer::Scale(v) => Some(u32::from(*v)),
        _ => None,
    }
}

/// A series of scale answers in a recap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// Mood prompts.
    Mood,
    /// Energy prompts.
    Energy,
}

/// The first date of the recap ending on `last`.
pub fn first_date(last: NaiveDate) -> NaiveDate {
    last - Duration::days(RECAP_DAYS - 1)
}

/// The recap weekday of a request: 1 (Monday) to 7 (Sunday).
pub fn weekday(field: &'static str, n: u32) -> Result<Weekday> {
    match n {
        1..=7 => Ok(Weekday::try_from(u8::try_from(n - 1).unwrap_or(0)).unwrap_or(Weekday::Mon)),
        _ => Err(Error::invalid(field, "must be 1 (Monday) to 7 (Sunday)")),
    }
}

/// A recap time of a request: HH:MM, 00:00-23:59, both parts in two digits.
pub fn local_time(field: &'static str, input: &str) -> Result<NaiveTime> {
    if input.trim().len() != 5 {
        return Err(Error::invalid(field, "must be a time of day, HH:MM (24 h)"));
    }
    validate::time_of_day(field, input)
}

/// When a recap comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextRecap {
    /// When it is sent: the wall time, or the end of quiet hours it falls in.
    pub deliver: DateTime<Utc>,
    /// The local date it is that week's recap for.
    pub day: NaiveDate,
}

/// The next recap strictly after `now` on `weekday` at `time` in `zone`, on a local date later
/// than `last_day` (that of the latest recap): never two on one local date, also across a
/// change of zone.
pub fn next_recap(
    now: DateTime<Utc>,
    zone: Tz,
    weekday: Weekday,
    time: NaiveTime,
    quiet: Option<QuietHours>,
    last_day: Option<NaiveDate>,
) -> Option<NextRecap> {
    let nominal = schedule::next_new_day(now, zone, time, WeekdaySet::single(weekday), last_day)?;
    Some(NextRecap {
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

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn answers_read_as_words() {
        let scale = AnswerKind::Scale {
            low: "Low",
            high: "High",
        };
        assert_eq!(answer_words(&scale, &Answer::Scale(4)), "4 of 5");
        let choice = AnswerKind::Choice(&["Sunny", "Cloudy"]);
        assert_eq!(answer_words(&choice, &Answer::Choice(1)), "Cloudy");
        assert_eq!(answer_words(&choice, &Answer::Choice(9)), "option 10");
        assert_eq!(
            answer_words(&AnswerKind::Text, &Answer::Text("your laugh".into())),
            "your laugh"
        );
        assert_eq!(
            answer_words(&AnswerKind::Emoji(&["🌞"]), &Answer::Emoji("🌞".into())),
            "🌞"
        );
    }

    #[test]
    fn appreciation_and_gratitude_answers_are_appreciations() {
        assert_eq!(Kind::of_answer(Category::Appreciation), Kind::Appreciation);
        assert_eq!(Kind::of_answer(Category::Gratitude), Kind::Appreciation);
        assert_eq!(Kind::of_answer(Category::Mood), Kind::Answer);
    }

    #[test]
    fn only_mood_and_energy_scales_feed_the_series() {
        let scale = AnswerKind::Scale { low: "", high: "" };
        assert_eq!(series_of(Category::Mood, &scale), Some(Series::Mood));
        assert_eq!(series_of(Category::Energy, &scale), Some(Series::Energy));
        assert_eq!(series_of(Category::Mood, &AnswerKind::Text), None);
        assert_eq!(series_of(Category::Appreciation, &scale), None);
    }

    #[test]
    fn a_recap_covers_seven_dates() {
        assert_eq!(first_date(date(2027, 3, 7)), date(2027, 3, 1));
    }

    #[test]
    fn weekdays_and_times_are_checked() {
        assert_eq!(weekday("weekday", 1).unwrap(), Weekday::Mon);
        assert_eq!(weekday("weekday", 7).unwrap(), Weekday::Sun);
        assert!(weekday("weekday", 0).is_err());
        assert!(weekday("weekday", 8).is_err());
        assert_eq!(local_time("t", "18:30").unwrap(), hm(18, 30));
        assert!(local_time("t", "25:00").is_err());
        assert!(local_time("t", "").is_err());
        assert!(local_time("t", "7:00").is_err());
    }

    #[test]
    fn the_next_recap_is_the_next_chosen_weekday_strictly_after_now() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        // Sunday 2027-03-07 at 19:00 Paris is 18:00 UTC.
        let n = next_recap(
            utc(2027, 3, 4, 12, 0),
            paris,
            Weekday::Sun,
            hm(19, 0),
            None,
            None,
        )
        .unwrap();
        assert_eq!(n.deliver, utc(2027, 3, 7, 18, 0));
        assert_eq!(n.day, date(2027, 3, 7));
        // At that very instant, the next one is a week later.
        let n = next_recap(n.deliver, paris, Weekday::Sun, hm(19, 0), None, Some(n.day)).unwrap();
        assert_eq!(n.deliver, utc(2027, 3, 14, 18, 0));
        // After Paris moves to summer time the wall time stays 19:00 (17:00 UTC).
        let n = next_recap(n.deliver, paris, Weekday::Sun, hm(19, 0), None, Some(n.day)).unwrap();
        assert_eq!(n.deliver, utc(2027, 3, 21, 18, 0));
        let n = next_recap(n.deliver, paris, Weekday::Sun, hm(19, 0), None, Some(n.day)).unwrap();
        assert_eq!(n.deliver, utc(2027, 3, 28, 17, 0));
    }

    #[test]
    fn a_recap_in_quiet_hours_waits_for_their_end() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let quiet = Some(QuietHours {
            start_min: 22 * 60,
            end_min: 8 * 60,
        });
        let n = next_recap(
            utc(2027, 3, 4, 12, 0),
            paris,
            Weekday::Sun,
            hm(23, 0),
            quiet,
            None,
        )
        .unwrap();
        // Monday 08:00 Paris, still the Sunday's recap.
        assert_eq!(n.deliver, utc(2027, 3, 8, 7, 0));
        assert_eq!(n.day, date(2027, 3, 7));
    }

    #[test]
    fn a_date_that_comes_round_again_brings_no_second_recap() {
        let honolulu: Tz = "Pacific/Honolulu".parse().unwrap();
        // Sunday's recap came in Tokyo at 09:00 (00:00 UTC); flying to Honolulu makes it
        // Saturday again, and the next Sunday 09:00 there would still be 2027-03-07.
        let last = date(2027, 3, 7);
        let n = next_recap(
            utc(2027, 3, 7, 1, 0),
            honolulu,
            Weekday::Sun,
            hm(9, 0),
            None,
            Some(last),
        )
        .unwrap();
        assert_eq!(n.day, date(2027, 3, 14));
    }
}
