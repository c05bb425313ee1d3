//! `tapline together` and `tapline meet`: together time (phones down; taps between you wait on
//! the server and arrive quietly when it ends) and the next time you meet, with a countdown on
//! both your clocks.

use chrono::{NaiveDate, NaiveTime};
use clap::Subcommand;
use serde_json::{Value, json};
use tapline_core::*;

use crate::failure::{Failure, REFUSED};
use crate::out::Out;
use crate::{render, ritual_words, space};

/// Examples shown under `tapline together --help`.
pub const TOGETHER_EXAMPLES: &str = "Examples:
  tapline --profile sam together start --for 90m
  tapline --profile alex together confirm
  tapline --profile alex together status
  tapline --profile sam together end
  tapline --profile alex --json together status";

/// Examples shown under `tapline meet --help`.
pub const MEET_EXAMPLES: &str = "Examples:
  tapline --profile sam meet set 2026-12-18 19:30 --tz America/Los_Angeles --for 4h
  tapline --profile alex meet
  tapline --profile alex --json meet show
  tapline --profile sam meet clear";

/// What `tapline together` does.
#[derive(Debug, Subcommand)]
pub enum TogetherAction {
    /// Suggest together time: once your partner confirms (within 30 minutes), taps between
    /// you wait quietly until it ends.
    #[command(after_help = "Examples:
  tapline together start               2 hours from when your partner confirms
  tapline together start --for 45m
  tapline together start --for 1h30m")]
    Start {
        /// How long, from the confirmation: 15m to 24h (e.g. 45m, 2h, 1h30m); 2h if not given.
        #[arg(long = "for", value_name = "LENGTH")]
        length: Option<String>,
    },
    /// Confirm your partner's suggestion: together time starts now.
    #[command(after_help = "Example:\n  tapline together confirm")]
    Confirm,
    /// End together time now, withdraw your suggestion or decline your partner's: the taps
    /// kept meanwhile arrive quietly.
    #[command(after_help = "Example:\n  tapline together end")]
    End,
    /// Show together time (suggested or on) and the next time you meet.
    #[command(
        after_help = "Examples:\n  tapline together status\n  tapline --json together status"
    )]
    Status,
}

/// What `tapline meet` does (without one: `show`).
#[derive(Debug, Subcommand)]
pub enum MeetAction {
    /// Set (or replace) the next time you meet; when it comes, it turns into together time.
    #[command(after_help = "Examples:
  tapline meet set 2026-12-18 19:30                          on your own clock
  tapline meet set 2026-12-18 19:30 --tz America/Los_Angeles --for 4h")]
    Set {
        /// The date, YYYY-MM-DD (today to two years ahead).
        #[arg(value_name = "YYYY-MM-DD")]
        date: String,
        /// The time of day, HH:MM (24 h).
        #[arg(value_name = "HH:MM")]
        time: String,
        /// The zone the date and time are in (IANA, e.g. Europe/Paris); yours if not given.
        #[arg(long, value_name = "ZONE")]
        tz: Option<String>,
        /// How long the together time it turns into lasts: 15m to 24h; 3h if not given.
        #[arg(long = "for", value_name = "LENGTH")]
        length: Option<String>,
    },
    /// Clear the next time you meet.
    #[command(after_help = "Example:\n  tapline meet clear")]
    Clear,
    /// The countdown to the next time you meet, on your clock and your partner's.
    #[command(after_help = "Examples:\n  tapline meet\n  tapline --json meet show")]
    Show,
}

fn invalid(message: String) -> Failure {
    Failure::new(REFUSED, message).with_reason("INVALID_ARGUMENT")
}

/// Reads a length such as `45m`, `2h` or `1h30m` as whole minutes. The server checks the
/// 15 min – 24 h bounds.
pub fn parse_minutes(input: &str) -> Result<u32, String> {
    let s = input.trim().to_ascii_lowercase();
    space::parse_duration(&s)
        .filter(|secs| *secs > 0 && secs % 60 == 0)
        .and_then(|secs| u32::try_from(secs / 60).ok())
        .ok_or_else(|| format!("{input:?} is not a length in whole minutes (45m, 2h, 1h30m)"))
}

/// Reads a meeting's date and time, as the server wants them: ("YYYY-MM-DD", "HH:MM").
pub fn parse_meeting(date: &str, time: &str) -> Result<(String, String), String> {
    let d = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
        .map_err(|_| format!("date: expected YYYY-MM-DD, got {date:?}"))?;
    let t = NaiveTime::parse_from_str(time.trim(), "%H:%M")
        .map_err(|_| format!("time: expected HH:MM (24 h), got {time:?}"))?;
    Ok((
        d.format("%Y-%m-%d").to_string(),
        t.format("%H:%M").to_string(),
    ))
}

/// A length in words: "45 min", "2 h", "1 h 30 min".
pub fn length_words(minutes: u32) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// The JSON name of how together time ended.
pub fn end_key(e: TogetherEnd) -> &'static str {
    match e {
        TogetherEnd::ByHand => "by_hand",
        TogetherEnd::AtUntil => "at_until",
        TogetherEnd::Withdrawn => "withdrawn",
        TogetherEnd::Declined => "declined",
        TogetherEnd::NotConfirmed => "not_confirmed",
        TogetherEnd::CoupleEnded => "couple_ended",
        TogetherEnd::Other => "other",
    }
}

/// The JSON name of a together change.
pub fn change_key(c: TogetherChange) -> &'static str {
    match c {
        TogetherChange::Proposed => "proposed",
        TogetherChange::Started => "started",
        TogetherChange::Ended => "ended",
        TogetherChange::MeetingSet => "meeting_set",
        TogetherChange::MeetingCleared => "meeting_cleared",
        TogetherChange::Other => "other",
    }
}

/// Together time as JSON (the same shape `listen` prints in `together_updated` events).
pub fn together_json(t: &TogetherInfo) -> Value {
    json!({
        "together_id": t.together_id,
        "started_by_me": t.started_by_me,
        "proposed_at": render::iso(t.proposed_at),
        "confirmed_at": t.confirmed_at.map(render::iso),
        "until": render::iso(t.until),
        "minutes": t.minutes,
        "in_force": t.in_force,
        "awaits_my_confirmation": t.awaits_my_confirmation,
        "ended_at": t.ended_at.map(render::iso),
        "end": t.end.map(end_key),
        "ended_by_me": t.ended_by_me,
        "held_taps": t.held_taps,
        "meeting_id": t.meeting_id,
    })
}

/// A meeting as JSON (the same shape `listen` prints in `together_updated` events).
pub fn meeting_json(m: &MeetingInfo) -> Value {
    json!({
        "meeting_id": m.meeting_id,
        "set_by_me": m.set_by_me,
        "local_date": m.local_date,
        "local_time": m.local_time,
        "time_zone": m.time_zone,
        "starts_at": render::iso(m.starts_at),
        "together_minutes": m.together_minutes,
        "set_at": render::iso(m.set_at),
    })
}

/// The `meeting` and `meeting_set` results: the meeting, its countdown and both clocks
/// (`null` when unknown).
pub fn meeting_result_json(m: Option<&MeetingInfo>, g: Option<&MeetingGlance>) -> Value {
    json!({
        "meeting": m.map(meeting_json),
        "seconds_until": g.map(|g| g.seconds_until),
        "countdown": g.map(|g| g.countdown.as_str()),
        "my_local": g.and_then(|g| g.my_local.as_deref()),
        "partner_local": g.and_then(|g| g.partner_local.as_deref()),
    })
}

fn held_words(n: u32, verb: &str) -> String {
    match n {
        0 => String::new(),
        1 => format!("; 1 held tap {verb} quietly"),
        n => format!("; {n} held taps {verb} quietly"),
    }
}

/// How together time ended, in words (`who` is the partner's name, capitalised).
fn ended_words(t: &TogetherInfo, who: &str) -> String {
    let by = if t.ended_by_me { "You" } else { who };
    match t.end {
        Some(TogetherEnd::Withdrawn) if t.ended_by_me => "You withdrew your suggestion.".into(),
        Some(TogetherEnd::Withdrawn) => format!("{who} withdrew the suggestion."),
        Some(TogetherEnd::Declined) if t.ended_by_me => "You declined, for now.".into(),
        Some(TogetherEnd::Declined) => format!("{who} declined together time, for now."),
        Some(TogetherEnd::NotConfirmed) => "The suggestion lapsed without a confirmation.".into(),
        Some(TogetherEnd::CoupleEnded) => "Together time ended with the couple.".into(),
        Some(TogetherEnd::AtUntil) => format!(
            "Together time is over{}.",
            held_words(t.held_taps, "delivered")
        ),
        Some(TogetherEnd::ByHand) => format!(
            "{by} ended together time{}.",
            held_words(t.held_taps, "delivered")
        ),
        Some(TogetherEnd::Other) | None => format!(
            "Together time has ended{}.",
            held_words(t.held_taps, "delivered")
        ),
    }
}

/// Together time as it stands, in words.
pub fn together_words(t: &TogetherInfo, partner: &str) -> String {
    let who = ritual_words::cap(partner);
    let until = render::iso(t.until);
    if t.ended_at.is_some() {
        return ended_words(t, &who);
    }
    if t.in_force {
        return format!(
            "Together time until {until}: phones down, taps wait quietly{}.",
            match t.held_taps {
                0 => String::new(),
                1 => " (1 so far)".to_owned(),
                n => format!(" ({n} so far)"),
            }
        );
    }
    let length = length_words(t.minutes);
    if t.started_by_me {
        format!("You suggested {length} of together time; {who} can confirm until {until}.")
    } else {
        format!(
            "{who} suggests {length} of together time, phones down (until {until}): \
             `tapline together confirm` to start, `tapline together end` to decline."
        )
    }
}

/// The next meeting in words, with its countdown and both clocks when the glance has them.
pub fn meeting_words(m: &MeetingInfo, g: Option<&MeetingGlance>, partner: &str) -> String {
    let who = ritual_words::cap(partner);
    let set = format!(
        "{} {} ({}), set by {}; then {} of together time.",
        m.local_date,
        m.local_time,
        m.time_zone,
        if m.set_by_me { "you" } else { &who },
        length_words(m.together_minutes)
    );
    let Some(g) = g else {
        return format!("Next time you meet: {set}");
    };
    let mut lines = vec![format!("Next time you meet: {}.", g.countdown)];
    if let Some(mine) = &g.my_local {
        lines.push(format!("  your clock:   {mine}"));
    }
    if let Some(theirs) = &g.partner_local {
        lines.push(format!("  {:<13} {theirs}", format!("{who}'s:")));
    }
    lines.push(format!("  {set}"));
    lines.join("\n")
}

/// What a `TogetherUpdated` event says, in words.
pub fn event_line(
    change: TogetherChange,
    together: Option<&TogetherInfo>,
    meeting: Option<&MeetingInfo>,
    partner: &str,
) -> String {
    let who = ritual_words::cap(partner);
    match (change, together, meeting) {
        (TogetherChange::Proposed, Some(t), _) if t.started_by_me => format!(
            "You suggested {} of together time; waiting for {who} to confirm.",
            length_words(t.minutes)
        ),
        (TogetherChange::Proposed, Some(t), _) => format!(
            "{who} suggests {} of together time, phones down: `tapline together confirm` to start.",
            length_words(t.minutes)
        ),
        (TogetherChange::Started, Some(t), _) if t.meeting_id.is_some() => format!(
            "Time to meet: together time until {}. Phones down; taps wait quietly.",
            render::iso(t.until)
        ),
        (TogetherChange::Started, Some(t), _) => format!(
            "Together time has started, until {}. Phones down; taps wait quietly.",
            render::iso(t.until)
        ),
        (TogetherChange::Ended, Some(t), _) => ended_words(t, &who),
        (TogetherChange::MeetingSet, _, Some(m)) => format!(
            "{} the next time you meet: {} {} ({}).",
            if m.set_by_me {
                "You set".to_owned()
            } else {
                format!("{who} set")
            },
            m.local_date,
            m.local_time,
            m.time_zone
        ),
        (TogetherChange::MeetingCleared, _, _) => "The next time you meet was cleared.".into(),
        _ => "Together time changed.".into(),
    }
}

/// The JSON line of a `TogetherUpdated` event.
pub fn event_json(
    change: TogetherChange,
    together: Option<&TogetherInfo>,
    meeting: Option<&MeetingInfo>,
    silent: bool,
    released_tap_ids: &[String],
) -> Value {
    json!({
        "event": "together_updated",
        "change": change_key(change),
        "silent": silent,
        "released_tap_ids": released_tap_ids,
        "together": together.map(together_json),
        "meeting": meeting.map(meeting_json),
    })
}

/// The glance's countdown for `meeting`, when it is the one the glance shows.
fn glance_of(client: &TaplineClient, meeting: &MeetingInfo) -> Option<MeetingGlance> {
    client
        .glance()
        .meeting
        .filter(|g| g.meeting_id == meeting.meeting_id)
}

/// Runs `tapline together …`.
pub async fn together(
    client: &TaplineClient,
    out: &Out,
    action: &TogetherAction,
    partner: &str,
) -> Result<(), Failure> {
    let who = ritual_words::cap(partner);
    match action {
        TogetherAction::Start { length } => {
            let minutes = match length {
                None => None,
                Some(l) => Some(parse_minutes(l).map_err(|e| invalid(format!("--for: {e}")))?),
            };
            let t = client.start_together(minutes).await?;
            out.result(
                "together_started",
                format!(
                    "You suggested {} of together time. {who} can confirm until {}; then taps \
                     between you wait quietly until it ends.",
                    length_words(t.minutes),
                    render::iso(t.until)
                ),
                json!({ "together": together_json(&t) }),
            );
        }
        TogetherAction::Confirm => {
            let state = client.together().await?;
            let t = match state.together {
                // Pending, or confirmed already (confirming again changes nothing).
                Some(t) if !t.started_by_me && t.ended_at.is_none() => t,
                Some(t) if !t.in_force => {
                    return Err(Failure::new(
                        REFUSED,
                        format!(
                            "Your suggestion waits for {who}; there is nothing for you to confirm."
                        ),
                    )
                    .with_reason("NOT_FOUND"));
                }
                Some(_) => {
                    return Err(Failure::new(
                        REFUSED,
                        "Together time is on already; there is nothing to confirm.",
                    )
                    .with_reason("NOT_FOUND"));
                }
                None => {
                    return Err(Failure::new(
                        REFUSED,
                        format!("{who} has not suggested together time."),
                    )
                    .with_reason("NOT_FOUND"));
                }
            };
            let t = client.confirm_together(t.together_id).await?;
            out.result(
                "together_confirmed",
                format!(
                    "Together time has started, until {}. Phones down; taps between you wait \
                     quietly until it ends.",
                    render::iso(t.until)
                ),
                json!({ "together": together_json(&t) }),
            );
        }
        TogetherAction::End => {
            let t = client.end_together().await?;
            out.result(
                "together_ended",
                ended_words(&t, &who),
                json!({ "together": together_json(&t) }),
            );
        }
        TogetherAction::Status => {
            let state = client.together().await?;
            let mut lines = vec![match &state.together {
                Some(t) => together_words(t, partner),
                None => "No together time now.".to_owned(),
            }];
            if let Some(m) = &state.meeting {
                lines.push(meeting_words(m, glance_of(client, m).as_ref(), partner));
            }
            out.result(
                "together_status",
                lines.join("\n"),
                json!({
                    "together": state.together.as_ref().map(together_json),
                    "meeting": state.meeting.as_ref().map(meeting_json),
                }),
            );
        }
    }
    Ok(())
}

/// Runs `tapline meet …` (`None`: show).
pub async fn meet(
    client: &TaplineClient,
    out: &Out,
    action: Option<&MeetAction>,
    partner: &str,
) -> Result<(), Failure> {
    match action {
        Some(MeetAction::Set {
            date,
            time,
            tz,
            length,
        }) => {
            let (date, time) = parse_meeting(date, time).map_err(invalid)?;
            let minutes = match length {
                None => None,
                Some(l) => Some(parse_minutes(l).map_err(|e| invalid(format!("--for: {e}")))?),
            };
            let m = client.set_meeting(date, time, tz.clone(), minutes).await?;
            let g = glance_of(client, &m);
            out.result(
                "meeting_set",
                meeting_words(&m, g.as_ref(), partner),
                meeting_result_json(Some(&m), g.as_ref()),
            );
        }
        Some(MeetAction::Clear) => {
            let cleared = client.clear_meeting().await?;
            out.result(
                "meeting_cleared",
                if cleared {
                    "Cleared the next time you meet."
                } else {
                    "There was no meeting to clear."
                },
                json!({ "cleared": cleared }),
            );
        }
        Some(MeetAction::Show) | None => {
            let state = client.together().await?;
            let g = state.meeting.as_ref().and_then(|m| glance_of(client, m));
            out.result(
                "meeting",
                match &state.meeting {
                    Some(m) => meeting_words(m, g.as_ref(), partner),
                    None => "No next meeting set (`tapline meet set YYYY-MM-DD HH:MM` sets one)."
                        .to_owned(),
                },
                meeting_result_json(state.meeting.as_ref(), g.as_ref()),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[test]
    fn lengths_read_as_whole_minutes() {
        assert_eq!(parse_minutes("90m"), Ok(90));
        assert_eq!(parse_minutes("2h"), Ok(120));
        assert_eq!(parse_minutes(" 1H30M "), Ok(90));
        assert_eq!(parse_minutes("24h"), Ok(1440));
        for bad in ["90s", "0m", "2", "soon", "", "1h30"] {
            let e = parse_minutes(bad).unwrap_err();
            assert!(e.contains("45m, 2h, 1h30m"), "{bad}: {e}");
        }
        assert_eq!(length_words(45), "45 min");
        assert_eq!(length_words(120), "2 h");
        assert_eq!(length_words(90), "1 h 30 min");
    }

    #[test]
    fn a_meeting_is_a_date_and_a_24_hour_time() {
        assert_eq!(
            parse_meeting("2026-12-18", "19:30"),
            Ok(("2026-12-18".into(), "19:30".into()))
        );
        assert_eq!(
            parse_meeting(" 2026-12-18 ", "9:05"),
            Ok(("2026-12-18".into(), "09:05".into()))
        );
        assert!(
            parse_meeting("2026-02-30", "19:30")
                .unwrap_err()
                .starts_with("date:")
        );
        assert!(
            parse_meeting("18/12/2026", "19:30")
                .unwrap_err()
                .starts_with("date:")
        );
        assert!(
            parse_meeting("2026-12-18", "7pm")
                .unwrap_err()
                .starts_with("time:")
        );
        assert!(
            parse_meeting("2026-12-18", "24:00")
                .unwrap_err()
                .starts_with("time:")
        );
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn together(started_by_me: bool) -> TogetherInfo {
        TogetherInfo {
            together_id: "t1".into(),
            started_by_me,
            proposed_at: at(0),
            confirmed_at: None,
            until: at(1800),
            minutes: 90,
            in_force: false,
            awaits_my_confirmation: !started_by_me,
            ended_at: None,
            end: None,
            ended_by_me: false,
            held_taps: 0,
            meeting_id: None,
        }
    }

    #[test]
    fn together_time_reads_calmly_for_each_side() {
        let theirs = together(false);
        let line = together_words(&theirs, "sam");
        assert!(
            line.starts_with("Sam suggests 1 h 30 min of together time"),
            "{line}"
        );
        assert!(line.contains("`tapline together confirm`"), "{line}");
        assert!(together_words(&together(true), "sam").starts_with("You suggested 1 h 30 min"));
        let on = TogetherInfo {
            confirmed_at: Some(at(60)),
            until: at(60 + 5400),
            in_force: true,
            awaits_my_confirmation: false,
            held_taps: 2,
            ..theirs.clone()
        };
        assert_eq!(
            together_words(&on, "sam"),
            "Together time until 1970-01-01T01:31:00Z: phones down, taps wait quietly (2 so far)."
        );
        let ended = |end, by_me| TogetherInfo {
            ended_at: Some(at(600)),
            end: Some(end),
            ended_by_me: by_me,
            in_force: false,
            ..on.clone()
        };
        assert_eq!(
            ended_words(&ended(TogetherEnd::ByHand, false), "Sam"),
            "Sam ended together time; 2 held taps delivered quietly."
        );
        assert_eq!(
            ended_words(&ended(TogetherEnd::AtUntil, false), "Sam"),
            "Together time is over; 2 held taps delivered quietly."
        );
        assert_eq!(
            ended_words(&ended(TogetherEnd::Withdrawn, true), "Sam"),
            "You withdrew your suggestion."
        );
        assert_eq!(
            ended_words(&ended(TogetherEnd::Declined, false), "Sam"),
            "Sam declined together time, for now."
        );
        let j = together_json(&ended(TogetherEnd::NotConfirmed, false));
        assert_eq!(j["end"], "not_confirmed");
        assert_eq!(j["held_taps"], 2);
        assert_eq!(j["confirmed_at"], "1970-01-01T00:01:00Z");
        assert!(j["meeting_id"].is_null());
        assert!(together_json(&theirs)["end"].is_null());
    }

    fn meeting() -> MeetingInfo {
        MeetingInfo {
            meeting_id: "m1".into(),
            set_by_me: false,
            local_date: "2026-12-18".into(),
            local_time: "19:30".into(),
            time_zone: "America/Los_Angeles".into(),
            starts_at: at(1_797_651_000),
            together_minutes: 180,
            set_at: at(100),
        }
    }

    fn glance() -> MeetingGlance {
        MeetingGlance {
            meeting_id: "m1".into(),
            set_by_me: false,
            starts_at: at(1_797_651_000),
            seconds_until: 315_000,
            countdown: "in 3 days".into(),
            time_zone: "America/Los_Angeles".into(),
            local_date: "2026-12-18".into(),
            local_time: "19:30".into(),
            my_local: Some("Sat 19 Dec 16:30".into()),
            partner_local: Some("Fri 18 Dec 19:30".into()),
            together_minutes: 180,
        }
    }

    #[test]
    fn the_meeting_shows_its_countdown_on_both_clocks() {
        let words = meeting_words(&meeting(), Some(&glance()), "sam");
        assert_eq!(
            words,
            "Next time you meet: in 3 days.\n  your clock:   Sat 19 Dec 16:30\n  Sam's:        Fri 18 Dec 19:30\n  2026-12-18 19:30 (America/Los_Angeles), set by Sam; then 3 h of together time."
        );
        assert_eq!(
            meeting_words(&meeting(), None, "sam"),
            "Next time you meet: 2026-12-18 19:30 (America/Los_Angeles), set by Sam; then 3 h of together time."
        );
        let j = meeting_result_json(Some(&meeting()), Some(&glance()));
        assert_eq!(j["countdown"], "in 3 days");
        assert_eq!(j["partner_local"], "Fri 18 Dec 19:30");
        assert_eq!(j["meeting"]["starts_at"], "2026-12-19T03:30:00Z");
        assert_eq!(j["meeting"]["together_minutes"], 180);
        let none = meeting_result_json(None, None);
        assert!(none["meeting"].is_null() && none["countdown"].is_null());
    }

    #[test]
    fn events_read_as_sentences_and_json() {
        let t = together(false);
        assert!(
            event_line(TogetherChange::Proposed, Some(&t), None, "sam")
                .starts_with("Sam suggests 1 h 30 min")
        );
        let on = TogetherInfo {
            in_force: true,
            confirmed_at: Some(at(60)),
            until: at(5460),
            ..t.clone()
        };
        assert_eq!(
            event_line(TogetherChange::Started, Some(&on), None, "sam"),
            "Together time has started, until 1970-01-01T01:31:00Z. Phones down; taps wait quietly."
        );
        let from_meeting = TogetherInfo {
            meeting_id: Some("m1".into()),
            ..on
        };
        assert!(
            event_line(TogetherChange::Started, Some(&from_meeting), None, "sam")
                .starts_with("Time to meet: together time until")
        );
        assert_eq!(
            event_line(TogetherChange::MeetingSet, None, Some(&meeting()), "sam"),
            "Sam set the next time you meet: 2026-12-18 19:30 (America/Los_Angeles)."
        );
        let j = event_json(
            TogetherChange::MeetingSet,
            None,
            Some(&meeting()),
            false,
            &[],
        );
        assert_eq!(j["event"], "together_updated");
        assert_eq!(j["change"], "meeting_set");
        assert!(j["together"].is_null());
        assert_eq!(j["meeting"]["local_time"], "19:30");
    }
}
