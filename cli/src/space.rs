//! `tapline space`: "I need a moment". Ask for space with a calm reason (taps to you wait on
//! the server until it ends), answer your partner's with one tap, end your own, show both.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use tapline_core::*;

use crate::failure::{Failure, REFUSED};
use crate::out::Out;
use crate::{events, render, ritual_words};

/// Examples shown under `tapline space --help`.
pub const SPACE_EXAMPLES: &str = "Examples:
  tapline --profile sam space ask --reason overwhelmed --until 30m
  tapline --profile sam space ask --reason call-me-later --until 18:30
  tapline --profile alex space answer im-here
  tapline --profile sam space end
  tapline --profile alex --json space status";

/// What `tapline space` does.
#[derive(Debug, Subcommand)]
pub enum SpaceAction {
    /// Ask for a moment: your partner is told gently, and their taps wait until it ends.
    #[command(after_help = "Examples:
  tapline space ask                                   until you end it (48 hours at most)
  tapline space ask --reason overwhelmed --until 45m
  tapline space ask --reason call-me-later --until 18:30   your local time, today or tomorrow")]
    Ask {
        /// Why, from a calm set.
        #[arg(long, value_enum, default_value_t = Reason::NeedSpace)]
        reason: Reason,
        /// When it ends by itself: a duration (30m, 2h, 1h30m) or a local time HH:MM (the
        /// next one). Between 5 minutes and 48 hours from now.
        #[arg(long, value_name = "WHEN")]
        until: Option<String>,
    },
    /// Answer your partner's moment with one tap.
    #[command(
        after_help = "Examples:\n  tapline space answer im-here\n  tapline space answer take-your-time"
    )]
    Answer {
        #[arg(value_enum)]
        answer: Answer,
    },
    /// End your moment now: the taps held for you arrive together.
    #[command(after_help = "Example:\n  tapline space end")]
    End,
    /// Show the moments in force (yours and your partner's).
    #[command(after_help = "Examples:\n  tapline space status\n  tapline --json space status")]
    Status,
}

/// A reason, as typed.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Reason {
    NeedSpace,
    Overwhelmed,
    CallMeLater,
}

impl From<Reason> for SpaceReason {
    fn from(r: Reason) -> SpaceReason {
        match r {
            Reason::NeedSpace => SpaceReason::NeedSpace,
            Reason::Overwhelmed => SpaceReason::Overwhelmed,
            Reason::CallMeLater => SpaceReason::CallMeLater,
        }
    }
}

/// An answer, as typed.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Answer {
    ImHere,
    TakeYourTime,
}

impl From<Answer> for SpaceAnswer {
    fn from(a: Answer) -> SpaceAnswer {
        match a {
            Answer::ImHere => SpaceAnswer::ImHere,
            Answer::TakeYourTime => SpaceAnswer::TakeYourTime,
        }
    }
}

/// Reads `--until`: a duration such as `30m`, `2h` or `1h30m`, or a wall-clock `HH:MM` in
/// `zone` (the next such instant after `now`). The server checks the 5 min – 48 h bounds.
pub fn parse_until(input: &str, zone: &str, now: DateTime<Utc>) -> Result<SystemTime, String> {
    let s = input.trim().to_ascii_lowercase();
    if let Ok(t) = NaiveTime::parse_from_str(&s, "%H:%M") {
        let tz: chrono_tz::Tz = zone
            .parse()
            .map_err(|_| format!("your time zone {zone:?} is unknown here"))?;
        let local = now.with_timezone(&tz);
        for day in 0..=2 {
            let date = local.date_naive() + chrono::Days::new(day);
            // In a spring-forward gap the earliest real instant after it is used.
            let at = tz
                .from_local_datetime(&date.and_time(t))
                .earliest()
                .or_else(|| {
                    tz.from_local_datetime(&(date.and_time(t) + chrono::Duration::hours(1)))
                        .earliest()
                });
            if let Some(at) = at.filter(|at| at.with_timezone(&Utc) > now) {
                return Ok(at.with_timezone(&Utc).into());
            }
        }
        return Err(format!("{input:?} does not come in the next two days"));
    }
    let secs = parse_duration(&s).ok_or_else(|| {
        format!("{input:?} is neither a duration (30m, 2h, 1h30m) nor a time HH:MM")
    })?;
    Ok(SystemTime::from(now) + Duration::from_secs(secs))
}

/// `30m`, `2h`, `1h30m`, `90s` → seconds (lower case, no spaces).
pub fn parse_duration(s: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut any = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
        any = true;
    }
    (digits.is_empty() && any).then_some(total)
}

/// A space as JSON (the same shape `listen` prints in `space_updated` events).
pub fn space_json(space: &SpaceInfo) -> Value {
    json!({
        "space_id": space.space_id,
        "mine": space.mine,
        "reason": format!("{:?}", space.reason),
        "started_at": render::iso(space.started_at),
        "until": render::iso(space.until),
        "open_ended": space.open_ended,
        "ended_at": space.ended_at.map(render::iso),
        "answer": space.answer.map(|a| format!("{a:?}")),
        "held_taps": space.held_taps,
    })
}

fn ends_words(space: &SpaceInfo) -> String {
    if space.open_ended {
        format!(
            "until it is ended (at the latest {})",
            render::iso(space.until)
        )
    } else {
        format!("until {}", render::iso(space.until))
    }
}

fn answer_words(a: Option<SpaceAnswer>) -> &'static str {
    match a {
        Some(SpaceAnswer::ImHere) => " They answered: \"I'm here.\"",
        Some(SpaceAnswer::TakeYourTime) => " They answered: \"Take your time.\"",
        None => "",
    }
}

/// The state in words.
pub fn state_lines(state: &SpaceState, partner: &str) -> String {
    let mut lines = Vec::new();
    if let Some(s) = &state.mine {
        lines.push(format!(
            "You asked for a moment, {}; {} tap(s) are waiting for you.{}",
            ends_words(s),
            s.held_taps,
            answer_words(s.answer)
        ));
    }
    if let Some(s) = &state.partners {
        lines.push(format!(
            "{} {}, {}. Your taps wait until it ends ({} so far).",
            ritual_words::cap(partner),
            events::space_reason_words(s.reason),
            ends_words(s),
            s.held_taps
        ));
    }
    if lines.is_empty() {
        "No moment in force.".to_owned()
    } else {
        lines.join("\n")
    }
}

/// Runs `tapline space …`.
pub async fn space(
    client: &TaplineClient,
    out: &Out,
    action: &SpaceAction,
    partner: &str,
) -> Result<(), Failure> {
    match action {
        SpaceAction::Ask { reason, until } => {
            let until = match until {
                None => None,
                Some(u) => {
                    let zone = client
                        .account()
                        .map(|a| a.time_zone)
                        .ok_or(TaplineError::Unauthenticated)?;
                    Some(parse_until(u, &zone, Utc::now()).map_err(|e| {
                        Failure::new(REFUSED, format!("--until: {e}"))
                            .with_reason("INVALID_ARGUMENT")
                    })?)
                }
            };
            let asked = client.ask_for_space((*reason).into(), until).await?;
            let mut human = format!(
                "You asked for a moment, {}. {} is told gently; their taps will wait for you.",
                ends_words(&asked.space),
                ritual_words::cap(partner)
            );
            if asked.arrives_silently {
                human.push_str(&format!(
                    "\n{} is in their quiet hours: it reaches them silently.",
                    ritual_words::cap(partner)
                ));
            }
            out.result(
                "space_asked",
                human,
                json!({ "space": space_json(&asked.space), "arrives_silently": asked.arrives_silently }),
            );
        }
        SpaceAction::Answer { answer } => {
            let state = client.spaces().await?;
            let Some(theirs) = state.partners else {
                return Err(Failure::new(
                    REFUSED,
                    format!("{} has not asked for a moment.", ritual_words::cap(partner)),
                )
                .with_reason("NOT_FOUND"));
            };
            let s = client
                .answer_space(theirs.space_id.clone(), (*answer).into())
                .await?;
            out.result(
                "space_answered",
                format!("Answered; {} sees it gently.", partner),
                json!({ "space": space_json(&s) }),
            );
        }
        SpaceAction::End => {
            let s = client.end_space().await?;
            out.result(
                "space_ended",
                format!(
                    "Your moment has ended; {} held tap(s) are on their way to you.",
                    s.held_taps
                ),
                json!({ "space": space_json(&s) }),
            );
        }
        SpaceAction::Status => {
            let state = client.spaces().await?;
            out.result(
                "space_status",
                state_lines(&state, partner),
                json!({
                    "mine": state.mine.as_ref().map(space_json),
                    "partners": state.partners.as_ref().map(space_json),
                }),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn durations_read_as_seconds() {
        assert_eq!(parse_duration("30m"), Some(1800));
        assert_eq!(parse_duration("2h"), Some(7200));
        assert_eq!(parse_duration("1h30m"), Some(5400));
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("30"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("2d"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn a_clock_time_is_the_next_one_in_the_accounts_zone() {
        let now = at("2027-03-10T16:00:00Z"); // 17:00 in Paris
        let later_today = parse_until("18:30", "Europe/Paris", now).unwrap();
        assert_eq!(render::iso(later_today), "2027-03-10T17:30:00Z");
        let tomorrow = parse_until("08:00", "Europe/Paris", now).unwrap();
        assert_eq!(render::iso(tomorrow), "2027-03-11T07:00:00Z");
    }

    #[test]
    fn a_clock_time_in_the_spring_gap_falls_after_it() {
        // 2027-03-28 02:30 does not exist in Paris (02:00 → 03:00).
        let now = at("2027-03-28T00:00:00Z");
        let t = parse_until("02:30", "Europe/Paris", now).unwrap();
        assert_eq!(render::iso(t), "2027-03-28T01:30:00Z");
    }

    #[test]
    fn nonsense_is_refused_with_the_accepted_forms() {
        let e = parse_until("soon", "Europe/Paris", Utc::now()).unwrap_err();
        assert!(e.contains("30m") && e.contains("HH:MM"), "{e}");
    }

    #[test]
    fn status_says_who_waits_for_whom() {
        let space = SpaceInfo {
            space_id: "s1".into(),
            mine: false,
            reason: SpaceReason::Overwhelmed,
            started_at: SystemTime::UNIX_EPOCH,
            until: SystemTime::UNIX_EPOCH + Duration::from_secs(3600),
            open_ended: false,
            ended_at: None,
            answer: None,
            held_taps: 2,
        };
        let line = state_lines(
            &SpaceState {
                mine: None,
                partners: Some(space.clone()),
            },
            "sam",
        );
        assert!(line.starts_with("Sam is feeling overwhelmed"), "{line}");
        assert!(line.contains("(2 so far)"), "{line}");
        assert_eq!(
            state_lines(&SpaceState::default(), "sam"),
            "No moment in force."
        );
        let j = space_json(&space);
        assert_eq!(j["reason"], "Overwhelmed");
        assert_eq!(j["held_taps"], 2);
    }
}
