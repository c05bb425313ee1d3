//! `tapline moments` and `tapline recap`: words your partner sent (a tap's note, a check-in
//! answer) kept for you both, and the weekly recap as a small terminal chart.

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tapline_core::*;

use crate::failure::{Failure, REFUSED};
use crate::out::Out;
use crate::reconnect::on_clock;
use crate::{ids, render, ritual_words};

/// Examples shown under `tapline moments --help`.
pub const MOMENTS_EXAMPLES: &str = "Examples:
  tapline --profile sam moments                        every moment kept, newest first
  tapline --profile sam moments keep --tap 0192f1a4    a note Alex sent (ids: listen, status)
  tapline --profile sam moments keep --checkin 0192f1b7
  tapline --profile sam moments forget 0192f2c0
  tapline --profile alex --json moments";

/// Examples shown under `tapline recap --help`.
pub const RECAP_EXAMPLES: &str = "Examples:
  tapline --profile sam recap                          the last seven dates, ending today
  tapline --profile sam recap --last-date 2026-07-12
  tapline --profile sam recap at sun 19:00             every Sunday at 19:00, your time
  tapline --profile sam recap schedule                 when it comes (or that it is off)
  tapline --profile sam recap off
  tapline --profile sam --json recap";

/// What `tapline moments` does (without one: `list`).
#[derive(Debug, Subcommand)]
pub enum MomentsAction {
    /// Every moment kept by either of you, newest kept first, with short ids.
    #[command(after_help = "Examples:\n  tapline moments list\n  tapline --json moments list")]
    List,
    /// Keep a note your partner sent with a tap, or their answer to a check-in.
    #[command(
        group = clap::ArgGroup::new("source").required(true).args(["tap", "checkin"]),
        after_help = "Examples:
  tapline moments keep --tap 0192f1a4          a received tap's id, or its first characters
  tapline moments keep --checkin 0192f1b7      `tapline checkin history` lists the ids"
    )]
    Keep {
        /// A tap your partner sent with a note (`listen` and `status` show the ids).
        #[arg(long, value_name = "ID")]
        tap: Option<String>,
        /// A check-in your partner answered (revealed).
        #[arg(long, value_name = "ID")]
        checkin: Option<String>,
    },
    /// Let a moment you kept go.
    #[command(after_help = "Example:\n  tapline moments forget 0192f2c0")]
    Forget {
        /// The moment's id, or its first characters (`tapline moments` lists them).
        id: String,
    },
}

/// `tapline recap`'s arguments.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RecapArgs {
    /// The last of the seven dates, YYYY-MM-DD; today if not given.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub last_date: Option<String>,
    #[command(subcommand)]
    pub action: Option<RecapAction>,
}

/// What `tapline recap` does besides showing one.
#[derive(Debug, Subcommand)]
pub enum RecapAction {
    /// Have your weekly recap come on a weekday at a time on your clock.
    #[command(
        after_help = "Examples:\n  tapline recap at sun 19:00\n  tapline recap at monday 08:30"
    )]
    At {
        /// mon, tue, wed, thu, fri, sat or sun (or the full name).
        day: String,
        /// HH:MM on your clock.
        #[arg(value_name = "HH:MM")]
        time: String,
    },
    /// Stop the weekly recap (`tapline recap` still shows one any time).
    #[command(after_help = "Example:\n  tapline recap off")]
    Off,
    /// When your weekly recap comes, or that it is off.
    #[command(after_help = "Examples:\n  tapline recap schedule\n  tapline --json recap schedule")]
    Schedule,
}

const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A weekday, 1 = Monday … 7 = Sunday, from its name or its first three letters (any case).
pub fn parse_weekday(input: &str) -> Option<u32> {
    let w = input.trim().to_ascii_lowercase();
    if w.len() < 3 {
        return None;
    }
    DAYS.iter()
        .position(|d| d.starts_with(&w))
        .map(|i| i as u32 + 1)
}

fn kind_key(k: MomentKind) -> &'static str {
    match k {
        MomentKind::Note => "note",
        MomentKind::Answer => "answer",
        MomentKind::Appreciation => "appreciation",
        MomentKind::Other => "other",
    }
}

/// A moment as JSON.
pub fn moment_json(m: &MomentInfo) -> Value {
    json!({
        "moment_id": m.moment_id,
        "kind": kind_key(m.kind),
        "kept_by_me": m.kept_by_me,
        "written_by_me": m.written_by_me,
        "text": m.text,
        "prompt_text": m.prompt_text,
        "source_id": m.source_id,
        "happened_at": render::iso(m.happened_at),
        "kept_at": render::iso(m.kept_at),
    })
}

/// A moment in words: "“thinking of you” — a note from Alex, kept by you".
pub fn moment_words(m: &MomentInfo, partner: &str) -> String {
    let who = ritual_words::cap(partner);
    let author = if m.written_by_me { "you" } else { &who };
    let keeper = if m.kept_by_me { "you" } else { &who };
    let what = match m.kind {
        MomentKind::Note => format!("a note from {author}"),
        MomentKind::Appreciation => format!("an appreciation from {author}"),
        _ => format!("an answer from {author}"),
    };
    let prompt = m
        .prompt_text
        .as_deref()
        .map(|p| format!("{p} "))
        .unwrap_or_default();
    format!("{prompt}“{}” — {what}, kept by {keeper}", m.text)
}

/// The series of a recap, as the core gives them, with its days and totals.
pub fn recap_json(r: &RecapInfo) -> Value {
    json!({
        "first_date": r.first_date,
        "last_date": r.last_date,
        "made_at": render::iso(r.made_at),
        "days": r.days.iter().map(|d| json!({
            "date": d.date,
            "status": d.status.map(ritual_words::day_status_key),
            "connected": d.connected,
            "taps_sent": d.taps_sent,
            "taps_received": d.taps_received,
            "checkins": d.checkins,
            "my_mood": d.my_mood,
            "partner_mood": d.partner_mood,
            "my_energy": d.my_energy,
            "partner_energy": d.partner_energy,
        })).collect::<Vec<_>>(),
        "dates": r.dates,
        "taps_sent": r.taps_sent,
        "taps_received": r.taps_received,
        "my_mood": r.my_mood,
        "partner_mood": r.partner_mood,
        "my_energy": r.my_energy,
        "partner_energy": r.partner_energy,
        "connected": r.connected,
        "connected_days": r.connected_days,
        "total_taps_sent": r.total_taps_sent,
        "total_taps_received": r.total_taps_received,
        "total_checkins": r.total_checkins,
        "moments": r.moments.iter().map(moment_json).collect::<Vec<_>>(),
    })
}

/// A 1-5 answer as a sparkline character; "·" for none.
fn spark(v: Option<u32>) -> char {
    match v {
        Some(1) => '▁',
        Some(2) => '▂',
        Some(3) => '▃',
        Some(4) => '▄',
        Some(v) if v >= 5 => '▅',
        _ => '·',
    }
}

/// Widest a day's tap bar gets, in cells.
const BAR: u32 = 12;

/// Room for both bars of a day (each rounds up).
const BAR_ROOM: usize = BAR as usize + 2;

/// `n` of `max` as cells of a bar at most [`BAR`] wide (at least one for any tap).
fn cells(n: u32, max: u32) -> usize {
    if n == 0 || max == 0 {
        return 0;
    }
    (n * BAR).div_ceil(max).max(1) as usize
}

/// "Thu 9 Jul" for a "YYYY-MM-DD" date (the date itself if it does not read).
fn short_date(date: &str) -> String {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_or_else(|_| date.to_owned(), |d| d.format("%a %-d %b").to_string())
}

/// The recap as a terminal chart: a row per date with a bar of taps (█ sent, ░ received), a
/// mark for connected days, mood and energy as sparkline characters; then totals and moments.
pub fn recap_chart(r: &RecapInfo, partner: &str) -> String {
    let who = ritual_words::cap(partner);
    let max = r
        .days
        .iter()
        .map(|d| d.taps_sent + d.taps_received)
        .max()
        .unwrap_or(0);
    let mut lines = vec![
        format!(
            "Your week, {} to {}: {} of {} days connected.",
            short_date(&r.first_date),
            short_date(&r.last_date),
            r.connected_days,
            r.days.len()
        ),
        format!(
            "{:<12}   {:<width$}  sent/rcvd  mood  energy  (you, {who})",
            "",
            "taps",
            width = BAR_ROOM
        ),
    ];
    for d in &r.days {
        let mark = match d.status {
            Some(DayStatus::Connected) => '●',
            Some(DayStatus::Open) => '·',
            Some(_) => '○',
            // Before the couple's first day.
            None => ' ',
        };
        let sent = cells(d.taps_sent, max);
        let received = cells(d.taps_received, max);
        let bar = format!("{}{}", "█".repeat(sent), "░".repeat(received));
        lines.push(format!(
            "{:<12} {mark} {bar:<width$}  {:>3}/{:<3}    {}{}    {}{}",
            short_date(&d.date),
            d.taps_sent,
            d.taps_received,
            spark(d.my_mood),
            spark(d.partner_mood),
            spark(d.my_energy),
            spark(d.partner_energy),
            width = BAR_ROOM,
        ));
    }
    lines.push(
        "● connected  ○ not  · still open · mood and energy ▁ low … ▅ high, · no answer".into(),
    );
    lines.push(format!(
        "Taps: {} sent, {} received · check-ins: {}",
        r.total_taps_sent, r.total_taps_received, r.total_checkins
    ));
    if r.moments.is_empty() {
        lines.push("No moments kept these days.".into());
    } else {
        lines.push("Moments kept:".into());
        for m in &r.moments {
            lines.push(format!("  {}", moment_words(m, partner)));
        }
    }
    lines.join("\n")
}

/// A schedule as JSON.
pub fn schedule_json(s: &RecapScheduleInfo) -> Value {
    json!({
        "enabled": s.enabled,
        "weekday": s.weekday,
        "local_time": s.local_time,
        "next_at": s.next_at.map(render::iso),
    })
}

/// When a weekly recap comes, in words on the clock of `zone`: "Your weekly recap comes on
/// Sundays at 19:00 your time (next: Sun 6 Dec 19:00)."; none when it is off.
pub fn schedule_words(s: &RecapScheduleInfo, zone: &str) -> Option<String> {
    if !s.enabled {
        return None;
    }
    let day = DAYS
        .get(s.weekday.saturating_sub(1) as usize)
        .map_or("?".to_owned(), |d| ritual_words::cap(d));
    Some(format!(
        "Your weekly recap comes on {day}s at {} your time{}.",
        s.local_time,
        s.next_at
            .map(|t| format!(" (next: {})", on_clock(t, zone)))
            .unwrap_or_default()
    ))
}

/// What a `MomentKept` event says.
pub fn moment_event_line(m: &MomentInfo, forgotten: bool, partner: &str) -> String {
    let who = ritual_words::cap(partner);
    if forgotten {
        return format!("{who} let a moment go.");
    }
    if m.written_by_me {
        format!("{who} kept your words as a moment: “{}”.", m.text)
    } else {
        format!("Kept as a moment: “{}”.", m.text)
    }
}

/// What a `RecapReady` event says.
pub fn recap_event_line(r: &RecapInfo) -> String {
    format!(
        "Your weekly recap is ready ({} to {}): {} of {} days connected. `tapline recap` shows it.",
        short_date(&r.first_date),
        short_date(&r.last_date),
        r.connected_days,
        r.days.len()
    )
}

/// Every moment, page by page.
async fn all_moments(client: &TaplineClient) -> Result<Vec<MomentInfo>, Failure> {
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let page = client.list_moments(token).await?;
        all.extend(page.moments);
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => return Ok(all),
        }
    }
}

/// An id typed in full (a UUID): sent as it is when nothing here knows it.
fn full_id(input: &str) -> bool {
    input.trim().len() == 36
}

/// The received tap `input` names (an id or its first characters), among those this profile
/// has heard (a sync first brings in any still waiting).
async fn received_tap(client: &TaplineClient, input: &str) -> Result<String, Failure> {
    let _ = client.sync_now().await;
    let candidates: Vec<(String, String)> = client
        .received_taps(200)?
        .into_iter()
        .filter(|t| !t.from_self)
        .map(|t| {
            let note = t.note.map(|n| format!(" “{n}”")).unwrap_or_default();
            (t.tap_id, format!("{}{note}", render::kind_label(t.kind)))
        })
        .collect();
    resolve_or_full(input, &candidates, "tap", "`tapline listen`")
}

fn resolve_or_full(
    input: &str,
    candidates: &[(String, String)],
    what: &str,
    list_with: &str,
) -> Result<String, Failure> {
    match ids::resolve(input, candidates, what, list_with) {
        Ok(id) => Ok(id.to_owned()),
        Err(_) if full_id(input) => Ok(input.trim().to_owned()),
        Err(e) => Err(e),
    }
}

/// Runs `tapline moments …`.
pub async fn moments(
    client: &TaplineClient,
    out: &Out,
    action: Option<&MomentsAction>,
    partner: &str,
) -> Result<(), Failure> {
    match action.unwrap_or(&MomentsAction::List) {
        MomentsAction::List => {
            let all = all_moments(client).await?;
            let human = if all.is_empty() {
                "No moments kept yet. Keep a note your partner sent: \
                 tapline moments keep --tap ID (`listen` shows the ids)."
                    .to_owned()
            } else {
                let ids: Vec<&str> = all.iter().map(|m| m.moment_id.as_str()).collect();
                let mut lines = vec!["Moments, newest kept first:".to_owned()];
                for (m, short) in all.iter().zip(ids::short_ids(&ids)) {
                    lines.push(format!("  {short}  {}", moment_words(m, partner)));
                }
                lines.join("\n")
            };
            out.result(
                "moments",
                human,
                json!({ "moments": all.iter().map(moment_json).collect::<Vec<_>>() }),
            );
        }
        MomentsAction::Keep { tap, checkin } => {
            let kept = match (tap, checkin) {
                (Some(t), _) => {
                    let id = received_tap(client, t).await?;
                    client.keep_moment_tap(id).await?
                }
                (None, Some(c)) => {
                    let candidates: Vec<(String, String)> = client
                        .checkins(false)
                        .await?
                        .into_iter()
                        .map(|c| (c.checkin_id, format!("“{}”", c.prompt.text)))
                        .collect();
                    let id =
                        resolve_or_full(c, &candidates, "check-in", "`tapline checkin history`")?;
                    client.keep_moment_checkin(id).await?
                }
                (None, None) => unreachable!("clap requires --tap or --checkin"),
            };
            let human = format!(
                "{}: {}",
                if kept.already_kept {
                    "Kept already"
                } else {
                    "Kept for you both"
                },
                moment_words(&kept.moment, partner)
            );
            out.result(
                "moment_kept",
                human,
                json!({ "moment": moment_json(&kept.moment), "already_kept": kept.already_kept }),
            );
        }
        MomentsAction::Forget { id } => {
            let all = all_moments(client).await?;
            let candidates: Vec<(String, String)> = all
                .iter()
                .map(|m| (m.moment_id.clone(), format!("“{}”", m.text)))
                .collect();
            let id = resolve_or_full(id, &candidates, "moment", "`tapline moments`")?;
            client.forget_moment(id.clone()).await?;
            out.result("moment_forgotten", "Let go.", json!({ "moment_id": id }));
        }
    }
    Ok(())
}

/// Runs `tapline recap …`.
pub async fn recap(
    client: &TaplineClient,
    out: &Out,
    args: &RecapArgs,
    partner: &str,
) -> Result<(), Failure> {
    let zone = client.account().map(|a| a.time_zone).unwrap_or_default();
    let schedule = match &args.action {
        None => {
            let r = client.get_recap(args.last_date.clone()).await?;
            out.result(
                "recap",
                recap_chart(&r, partner),
                json!({ "recap": recap_json(&r) }),
            );
            return Ok(());
        }
        Some(RecapAction::At { day, time }) => {
            let weekday = parse_weekday(day).ok_or_else(|| {
                Failure::new(
                    REFUSED,
                    format!("{day:?} is not a weekday: mon, tue, wed, thu, fri, sat or sun"),
                )
                .with_reason("INVALID_ARGUMENT")
            })?;
            client
                .set_recap_schedule(true, weekday, time.clone())
                .await?
        }
        Some(RecapAction::Off) => client.set_recap_schedule(false, 0, String::new()).await?,
        Some(RecapAction::Schedule) => client.get_recap_schedule().await?,
    };
    let human = match schedule_words(&schedule, &zone) {
        Some(words) => words,
        None if matches!(args.action, Some(RecapAction::Schedule)) => {
            "Your weekly recap is off; `tapline recap at sun 19:00` turns it on.".to_owned()
        }
        None => "Weekly recap off; `tapline recap` still shows one any time.".to_owned(),
    };
    out.result(
        "recap_schedule",
        human,
        json!({ "schedule": schedule_json(&schedule) }),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn day(
        date: &str,
        status: DayStatus,
        sent: u32,
        received: u32,
        mood: Option<u32>,
    ) -> RecapDayInfo {
        RecapDayInfo {
            date: date.into(),
            status: Some(status),
            connected: status == DayStatus::Connected,
            taps_sent: sent,
            taps_received: received,
            checkins: 0,
            my_mood: mood,
            partner_mood: None,
            my_energy: Some(5),
            partner_energy: Some(1),
        }
    }

    #[test]
    fn weekdays_read_by_name_or_three_letters() {
        assert_eq!(parse_weekday("sun"), Some(7));
        assert_eq!(parse_weekday("Monday"), Some(1));
        assert_eq!(parse_weekday("THU"), Some(4));
        assert_eq!(parse_weekday("mo"), None);
        assert_eq!(parse_weekday("someday"), None);
    }

    #[test]
    fn a_schedule_reads_as_a_weekday_and_the_next_on_ones_clock() {
        let next = chrono::DateTime::parse_from_rfc3339("2026-12-06T18:00:00Z").unwrap();
        let on = RecapScheduleInfo {
            enabled: true,
            weekday: 7,
            local_time: "19:00".into(),
            next_at: Some(next.into()),
        };
        assert_eq!(
            schedule_words(&on, "Europe/Paris").as_deref(),
            Some("Your weekly recap comes on Sundays at 19:00 your time (next: Sun 6 Dec 19:00).")
        );
        let off = RecapScheduleInfo {
            enabled: false,
            weekday: 0,
            local_time: String::new(),
            next_at: None,
        };
        assert_eq!(schedule_words(&off, "Europe/Paris"), None);
    }

    #[test]
    fn the_chart_has_a_row_a_date_with_bars_marks_and_sparks() {
        let days = vec![
            day("2026-07-09", DayStatus::Connected, 4, 2, Some(4)),
            day("2026-07-10", DayStatus::Missed, 0, 0, None),
            day("2026-07-11", DayStatus::Open, 1, 0, Some(1)),
        ];
        let r = RecapInfo {
            first_date: "2026-07-09".into(),
            last_date: "2026-07-11".into(),
            dates: days.iter().map(|d| d.date.clone()).collect(),
            taps_sent: vec![4, 0, 1],
            taps_received: vec![2, 0, 0],
            my_mood: vec![Some(4), None, Some(1)],
            partner_mood: vec![None; 3],
            my_energy: vec![Some(5); 3],
            partner_energy: vec![Some(1); 3],
            connected: vec![true, false, false],
            days,
            connected_days: 1,
            total_taps_sent: 5,
            total_taps_received: 2,
            total_checkins: 0,
            moments: vec![],
            made_at: SystemTime::UNIX_EPOCH,
        };
        let chart = recap_chart(&r, "alex");
        let rows: Vec<&str> = chart.lines().collect();
        assert!(rows[0].contains("1 of 3 days connected"), "{chart}");
        assert!(
            rows[2].starts_with("Thu 9 Jul    ● ████████░░░░"),
            "{chart}"
        );
        assert!(
            rows[2].contains("4/2") && rows[2].contains("▄·") && rows[2].contains("▅▁"),
            "{chart}"
        );
        assert!(rows[3].starts_with("Fri 10 Jul   ○ "), "{chart}");
        assert!(rows[4].starts_with("Sat 11 Jul   · ██ "), "{chart}");
        assert!(chart.contains("Taps: 5 sent, 2 received"), "{chart}");
        let j = recap_json(&r);
        assert_eq!(j["my_mood"], json!([4, null, 1]));
        assert_eq!(j["days"][1]["status"], "missed");
    }

    #[test]
    fn a_date_before_the_couple_began_has_no_mark_and_no_status() {
        let mut before = day("2026-07-08", DayStatus::Open, 0, 0, None);
        before.status = None;
        let r = RecapInfo {
            first_date: "2026-07-08".into(),
            last_date: "2026-07-08".into(),
            dates: vec![before.date.clone()],
            taps_sent: vec![0],
            taps_received: vec![0],
            my_mood: vec![None],
            partner_mood: vec![None],
            my_energy: vec![None],
            partner_energy: vec![None],
            connected: vec![false],
            days: vec![before],
            connected_days: 0,
            total_taps_sent: 0,
            total_taps_received: 0,
            total_checkins: 0,
            moments: vec![],
            made_at: SystemTime::UNIX_EPOCH,
        };
        let chart = recap_chart(&r, "alex");
        assert!(
            chart.lines().nth(2).unwrap().starts_with("Wed 8 Jul      "),
            "{chart}"
        );
        assert!(recap_json(&r)["days"][0]["status"].is_null());
    }
}
