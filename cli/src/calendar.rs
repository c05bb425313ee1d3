//! The streak month as a terminal calendar: weeks as rows, Monday to Sunday, each date marked
//! with how it ended.

use chrono::{Datelike, NaiveDate};
use tapline_core::{DayStatus, StreakDayInfo};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Width of one day's cell: two digits, the mark, and room for the today marker.
const CELL: usize = 4;

/// What the marks mean.
pub const LEGEND: &str =
    "● connected  ❄ frozen  ‖ paused  ↷ skipped  ~ space  ✗ missed  ○ open  · future  < today";

/// Days in `month` (1-12) of `year`.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    let first = NaiveDate::from_ymd_opt(year, month, 1);
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    match (first, next) {
        (Some(f), Some(n)) => (n - f).num_days() as u32,
        _ => 0,
    }
}

/// Monday = 0 ... Sunday = 6.
pub fn weekday(year: i32, month: u32, day: u32) -> u32 {
    NaiveDate::from_ymd_opt(year, month, day).map_or(0, |d| d.weekday().num_days_from_monday())
}

/// Parses YYYY-MM.
pub fn parse_month(s: &str) -> Option<(i32, u32)> {
    let (y, m) = s.trim().split_once('-')?;
    let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
    ((1..=9999).contains(&y) && (1..=12).contains(&m)).then_some((y, m))
}

/// A date as typed for a pause: YYYY-MM-DD, `today`, `tomorrow`, or `+N` / `+Nd` days after
/// `today` (the person's own date).
pub fn parse_day(input: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let s = input.trim().to_ascii_lowercase();
    let after = |n: u64| {
        today
            .checked_add_days(chrono::Days::new(n))
            .ok_or_else(|| format!("{input:?} is too far ahead"))
    };
    match s.as_str() {
        "today" => return Ok(today),
        "tomorrow" => return after(1),
        _ => {}
    }
    if let Some(n) = s.strip_prefix('+') {
        let n = n.strip_suffix('d').unwrap_or(n);
        return match n.parse::<u64>() {
            Ok(n) => after(n),
            Err(_) => Err(format!(
                "expected +N or +Nd (days from today), got {input:?}"
            )),
        };
    }
    NaiveDate::parse_from_str(&s, "%Y-%m-%d")
        .map_err(|_| format!("expected YYYY-MM-DD, today, tomorrow or +Nd, got {input:?}"))
}

/// Today's date in an IANA zone (UTC when the zone is unknown).
pub fn today_in(zone: &str, now: chrono::DateTime<chrono::Utc>) -> NaiveDate {
    match zone.parse::<chrono_tz::Tz>() {
        Ok(z) => now.with_timezone(&z).date_naive(),
        Err(_) => now.date_naive(),
    }
}

/// The month of a YYYY-MM-DD date.
pub fn month_of(date: &str) -> Option<(i32, u32)> {
    parse_month(date.get(..7)?)
}

fn mark(status: DayStatus) -> char {
    match status {
        DayStatus::Connected => '●',
        DayStatus::Frozen => '❄',
        DayStatus::Paused => '‖',
        DayStatus::Skipped => '↷',
        DayStatus::Space => '~',
        DayStatus::Missed => '✗',
        DayStatus::Open => '○',
    }
}

/// The month as a calendar. Dates the history leaves out are future ones (after `today` or
/// after the last date it has) or ones before the couple's first day (no mark).
pub fn render(year: i32, month: u32, days: &[StreakDayInfo], today: Option<&str>) -> String {
    let width = CELL * 7 - 1;
    let title = format!("{} {year}", MONTHS[(month as usize).clamp(1, 12) - 1]);
    let mut lines = vec![
        format!("{title:^width$}").trim_end().to_owned(),
        "Mo  Tu  We  Th  Fr  Sa  Su".to_owned(),
    ];
    let last_known = days.iter().map(|d| d.date.as_str()).max();
    let mut row = " ".repeat(CELL * weekday(year, month, 1) as usize);
    for day in 1..=days_in_month(year, month) {
        let date = format!("{year:04}-{month:02}-{day:02}");
        let status = days.iter().find(|d| d.date == date).map(|d| d.status);
        let future = today.is_some_and(|t| date.as_str() > t)
            || last_known.is_some_and(|l| date.as_str() > l);
        let symbol = match status {
            Some(s) => mark(s),
            None if future => '·',
            None => ' ',
        };
        let here = if today == Some(date.as_str()) {
            '<'
        } else {
            ' '
        };
        row.push_str(&format!("{day:>2}{symbol}{here}"));
        if weekday(year, month, day) == 6 {
            lines.push(row.trim_end().to_owned());
            row.clear();
        }
    }
    if !row.trim().is_empty() {
        lines.push(row.trim_end().to_owned());
    }
    lines.join("\n")
}

/// How many dates of each kind: "12 connected, 1 frozen, 2 missed" (kinds with none left out).
pub fn tally(days: &[StreakDayInfo]) -> String {
    let kinds = [
        (DayStatus::Connected, "connected"),
        (DayStatus::Frozen, "frozen"),
        (DayStatus::Paused, "paused"),
        (DayStatus::Skipped, "skipped"),
        (DayStatus::Space, "space"),
        (DayStatus::Missed, "missed"),
        (DayStatus::Open, "open"),
    ];
    let parts: Vec<String> = kinds
        .iter()
        .filter_map(|(k, name)| {
            let n = days.iter().filter(|d| d.status == *k).count();
            (n > 0).then(|| format!("{n} {name}"))
        })
        .collect();
    if parts.is_empty() {
        "no tracked days".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(date: &str, status: DayStatus) -> StreakDayInfo {
        StreakDayInfo {
            date: date.into(),
            status,
            my_actions: 1,
            partner_actions: 1,
        }
    }

    #[test]
    fn dates_know_their_weekday() {
        assert_eq!(weekday(1970, 1, 1), 3);
        assert_eq!(weekday(2026, 3, 1), 6, "1 March 2026 is a Sunday");
        assert_eq!(weekday(2024, 2, 29), 3);
        assert_eq!(weekday(2000, 1, 1), 5);
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(2026, 4), 30);
        assert_eq!(parse_month("2026-03"), Some((2026, 3)));
        assert_eq!(parse_month("2026-3"), Some((2026, 3)));
        assert_eq!(parse_month("2026-13"), None);
        assert_eq!(parse_month("March"), None);
        assert_eq!(month_of("2026-03-14"), Some((2026, 3)));
    }

    #[test]
    fn a_month_draws_weeks_from_monday_with_marks() {
        // The couple started on 2 March; today is 10 March, still open; the 5th used a freeze.
        let mut days: Vec<StreakDayInfo> = (2..=9)
            .map(|d| day(&format!("2026-03-{d:02}"), DayStatus::Connected))
            .collect();
        days[3].status = DayStatus::Frozen;
        days[5].status = DayStatus::Paused;
        days[6].status = DayStatus::Skipped;
        days[7].status = DayStatus::Missed;
        days.push(day("2026-03-10", DayStatus::Open));
        let cal = render(2026, 3, &days, Some("2026-03-10"));
        let expected = [
            "        March 2026",
            "Mo  Tu  We  Th  Fr  Sa  Su",
            "                         1",
            " 2●  3●  4●  5❄  6●  7‖  8↷",
            " 9✗ 10○<11· 12· 13· 14· 15·",
            "16· 17· 18· 19· 20· 21· 22·",
            "23· 24· 25· 26· 27· 28· 29·",
            "30· 31·",
        ];
        assert_eq!(cal, expected.join("\n"));
        assert_eq!(
            tally(&days),
            "4 connected, 1 frozen, 1 paused, 1 skipped, 1 missed, 1 open"
        );
    }

    #[test]
    fn a_month_before_the_couple_has_no_marks_and_a_later_one_is_all_future() {
        let before = render(2026, 2, &[], Some("2026-03-10"));
        assert!(!before.contains('·') && !before.contains('●'), "{before}");
        assert!(
            before.lines().nth(2).unwrap().ends_with(" 1"),
            "Feb 2026 starts on a Sunday"
        );
        let after = render(2026, 4, &[], Some("2026-03-10"));
        assert_eq!(after.matches('·').count(), 30);
        assert_eq!(tally(&[]), "no tracked days");
    }

    #[test]
    fn pause_dates_may_be_relative_to_today() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 30).unwrap();
        let day = |s| parse_day(s, today).map(|d| d.to_string());
        assert_eq!(day("today").as_deref(), Ok("2026-12-30"));
        assert_eq!(day("Tomorrow").as_deref(), Ok("2026-12-31"));
        assert_eq!(day("+3d").as_deref(), Ok("2027-01-02"));
        assert_eq!(day("+0").as_deref(), Ok("2026-12-30"));
        assert_eq!(day("2027-02-01").as_deref(), Ok("2027-02-01"));
        assert!(day("+x").is_err());
        assert!(day("-1d").is_err());
        assert!(day("2027-02-30").is_err());
        assert!(day("next week").is_err());
    }

    #[test]
    fn today_is_the_date_in_the_persons_zone() {
        use chrono::TimeZone;
        let t = chrono::Utc
            .with_ymd_and_hms(2026, 3, 10, 23, 30, 0)
            .unwrap();
        assert_eq!(today_in("Europe/Paris", t).to_string(), "2026-03-11");
        assert_eq!(today_in("America/New_York", t).to_string(), "2026-03-10");
        assert_eq!(today_in("Nowhere/Else", t).to_string(), "2026-03-10");
    }

    #[test]
    fn the_history_alone_says_what_is_future() {
        let days = [day("2024-02-28", DayStatus::Connected)];
        let cal = render(2024, 2, &days, None);
        assert!(cal.contains("28●") && cal.contains("29·"), "{cal}");
        assert!(cal.contains(" 1 "), "before the first day: no mark\n{cal}");
    }
}
