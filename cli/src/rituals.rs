//! `tapline streak`, `tapline checkin` and `tapline routine`: arguments and commands.

use std::time::SystemTime;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use tapline_core::*;

use crate::failure::{Failure, INTERNAL, REFUSED, USAGE};
use crate::out::Out;
use crate::ritual_words::*;
use crate::{OnOff, calendar, ids, outbox, parse_hhmm, render};

// ---------------------------------------------------------------------------------------------
// Arguments

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct StreakArgs {
    /// The month to draw, YYYY-MM (default: this month).
    #[arg(long)]
    month: Option<String>,
    #[command(subcommand)]
    action: Option<StreakAction>,
}

pub const STREAK_EXAMPLES: &str = "Examples:
  tapline streak                          this month as a calendar
  tapline streak --month 2026-10
  tapline streak pause --from tomorrow --to +3d
  tapline streak calm on";

#[derive(Debug, Subcommand)]
enum StreakAction {
    /// Pause the streak for 1-14 days (dates in your zone, inclusive; from today at the
    /// earliest, starting at most 14 days ahead).
    #[command(after_help = "Examples:
  tapline streak pause --from tomorrow --to +3d
  tapline streak pause --from 2026-12-24 --to 2026-12-26")]
    Pause {
        /// First paused date: YYYY-MM-DD, today, tomorrow or +Nd (N days from today).
        #[arg(long, allow_hyphen_values = true)]
        from: String,
        /// Last paused date, the same forms (+Nd counts from today too; default: --from).
        #[arg(long, allow_hyphen_values = true)]
        to: Option<String>,
    },
    /// Cancel a pause that has not started.
    #[command(after_help = "Example:\n  tapline streak unpause 0192f1a4")]
    Unpause {
        /// The pause id, or its first characters (`tapline streak` lists them).
        pause_id: String,
    },
    /// Calm mode: no streak counts, no warnings (the history is kept).
    #[command(after_help = "Example:\n  tapline streak calm on")]
    Calm {
        #[arg(value_enum)]
        state: OnOff,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CheckinArgs {
    /// Also list recent check-ins that are over.
    #[arg(long)]
    all: bool,
    #[command(subcommand)]
    action: Option<CheckinAction>,
}

pub const CHECKIN_EXAMPLES: &str = "Examples:
  tapline checkin                         open check-ins, with their short ids
  tapline checkin ask --category energy
  tapline checkin answer \"half full\"
  tapline checkin answer 0192f1a4 3       when more than one waits for you";

#[derive(Debug, Subcommand)]
enum CheckinAction {
    /// Ask your partner a question you both answer (answers are revealed once both are in).
    #[command(
        group = clap::ArgGroup::new("what").required(true).args(["category", "prompt"]),
        after_help = "Examples:\n  tapline checkin ask --category mood\n  tapline checkin ask --prompt energy-01"
    )]
    Ask {
        /// A prompt of this category (it changes day to day).
        #[arg(long, value_enum)]
        category: Option<Category>,
        /// A prompt by id (`tapline checkin prompts` lists them).
        #[arg(long)]
        prompt: Option<String>,
    },
    /// Answer a check-in: the one waiting for you, or (when more wait) the one you name.
    ///
    /// VALUE is read against the prompt: on a 1-5 scale a number 1-5 (or the low/high word);
    /// on a choice an option's label or its number from 1; on an emoji prompt an emoji or its
    /// number; on a text prompt words, or a number that picks a quick reply (1 = the first). A
    /// quick reply's label works on any prompt. --text stores VALUE as typed. Answers are
    /// final: the same answer again changes nothing, a different one is refused. Offline, the
    /// answer is queued like a tap and goes out with a later command.
    #[command(after_help = "Examples:
  tapline checkin answer 4
  tapline checkin answer \"half full\"
  tapline checkin answer 0192f1a4 2           a check-in by its short id, then the answer
  tapline checkin answer --id 0192f1a4 --text 42")]
    Answer {
        /// The check-in, by id or its first characters (needed when more than one waits).
        #[arg(long)]
        id: Option<String>,
        /// Store VALUE as text, as typed (text prompts only).
        #[arg(long)]
        text: bool,
        /// An optional check-in id (or its first characters), then the answer.
        #[arg(required = true, num_args = 1.., value_name = "[CHECKIN_ID] VALUE")]
        words: Vec<String>,
    },
    /// List the prompts you can ask.
    #[command(after_help = "Example:\n  tapline checkin prompts --category gratitude")]
    Prompts {
        /// Only this category.
        #[arg(long, value_enum)]
        category: Option<Category>,
    },
    /// Every check-in of the couple, open ones first, then the newest (read page by page).
    #[command(after_help = "Examples:
  tapline checkin history
  tapline --json checkin history --page-size 100")]
    History {
        /// Check-ins asked of the server per page (1-100).
        #[arg(long, default_value_t = 50)]
        page_size: u32,
    },
}

pub const ROUTINE_EXAMPLES: &str = "Examples:
  tapline routine add --name \"Morning mood\" --kind checkin --category mood --days weekdays --at 08:00
  tapline routine list
  tapline routine pause 0192f1a4";

#[derive(Debug, Subcommand)]
pub enum RoutineAction {
    /// Add a routine: it reaches each of you at that time on your own clock.
    #[command(after_help = "Examples:
  tapline routine add --name \"Morning mood\" --kind checkin --category mood --days weekdays --at 08:00
  tapline routine add --name \"Date night\" --kind reminder --text \"Date night!\" --days fri --at 19:00")]
    Add {
        /// 1-40 characters.
        #[arg(long)]
        name: String,
        /// A check-in you both answer, or a reminder.
        #[arg(long, value_enum)]
        kind: RoutineKindArg,
        /// For check-ins: the category of the question.
        #[arg(long, value_enum, required_if_eq("kind", "checkin"))]
        category: Option<Category>,
        /// For reminders: what it says (1-120 characters).
        #[arg(long, required_if_eq("kind", "reminder"))]
        text: Option<String>,
        /// Days: mon,tue,... or weekdays, weekends, daily.
        #[arg(long, value_delimiter = ',', required = true)]
        days: Vec<String>,
        /// Local time, HH:MM.
        #[arg(long)]
        at: String,
    },
    /// List the couple's routines (with short ids).
    #[command(after_help = "Example:\n  tapline routine list")]
    List,
    /// Delete a routine.
    #[command(after_help = "Example:\n  tapline routine rm 0192f1a4")]
    Rm {
        /// The routine id, or its first characters.
        id: String,
    },
    /// Stop a routine from firing (until resumed).
    #[command(after_help = "Example:\n  tapline routine pause 0192f1a4")]
    Pause {
        /// The routine id, or its first characters.
        id: String,
    },
    /// Let a paused routine fire again.
    #[command(after_help = "Example:\n  tapline routine resume 0192f1a4")]
    Resume {
        /// The routine id, or its first characters.
        id: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoutineKindArg {
    Checkin,
    Reminder,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Category {
    Mood,
    Energy,
    OneWordDay,
    IFeel,
    Appreciation,
    NeedSupport,
    Gratitude,
    Curiosity,
    Playful,
    Reconnecting,
}

impl From<Category> for PromptCategory {
    fn from(c: Category) -> PromptCategory {
        match c {
            Category::Mood => PromptCategory::Mood,
            Category::Energy => PromptCategory::Energy,
            Category::OneWordDay => PromptCategory::OneWordDay,
            Category::IFeel => PromptCategory::IFeel,
            Category::Appreciation => PromptCategory::Appreciation,
            Category::NeedSupport => PromptCategory::NeedSupport,
            Category::Gratitude => PromptCategory::Gratitude,
            Category::Curiosity => PromptCategory::Curiosity,
            Category::Playful => PromptCategory::Playful,
            Category::Reconnecting => PromptCategory::Reconnecting,
        }
    }
}

const FULL_DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Parses `mon,tue,...` (full names too), `weekdays`, `weekends` or `daily`.
pub fn parse_days(words: &[String]) -> Result<Vec<Weekday>, Failure> {
    let mut days = Vec::new();
    for w in words {
        let w = w.trim().to_lowercase();
        match w.as_str() {
            "" => continue,
            "daily" | "everyday" | "every-day" | "all" => days.extend(Weekday::ALL),
            "weekdays" => days.extend(&Weekday::ALL[..5]),
            "weekends" | "weekend" => days.extend(&Weekday::ALL[5..]),
            _ => {
                let i = FULL_DAY_NAMES
                    .iter()
                    .position(|d| w.len() >= 2 && d.starts_with(w.as_str()))
                    .ok_or_else(|| {
                        Failure::new(
                            REFUSED,
                            format!(
                                "--days: {w:?} is not a day (use mon,tue,... or weekdays, weekends, daily)"
                            ),
                        )
                    })?;
                days.push(Weekday::ALL[i]);
            }
        }
    }
    days.sort();
    days.dedup();
    if days.is_empty() {
        return Err(Failure::new(REFUSED, "--days: name at least one day"));
    }
    Ok(days)
}

// ---------------------------------------------------------------------------------------------
// Commands

fn partner_name(client: &TaplineClient) -> String {
    client
        .glance()
        .partner_name
        .unwrap_or_else(|| "your partner".into())
}

/// Today for this account, in its own zone.
fn my_today(client: &TaplineClient) -> Result<chrono::NaiveDate, Failure> {
    let zone = client
        .account()
        .map(|a| a.time_zone)
        .ok_or(TaplineError::Unauthenticated)?;
    Ok(calendar::today_in(&zone, chrono::Utc::now()))
}

fn pause_date(flag: &str, input: &str, today: chrono::NaiveDate) -> Result<String, Failure> {
    calendar::parse_day(input, today)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|e| Failure::new(REFUSED, format!("{flag}: {e}")).with_reason("INVALID_ARGUMENT"))
}

/// The history rows that hold each partner's today (one month, or two across a month's end).
async fn today_rows(client: &TaplineClient, s: &StreakInfo) -> Vec<StreakDayInfo> {
    let mut months: Vec<(i32, u32)> = [&s.me_today, &s.partner_today]
        .into_iter()
        .flatten()
        .filter_map(|d| calendar::month_of(&d.date))
        .collect();
    months.sort();
    months.dedup();
    let mut rows = Vec::new();
    for (y, m) in months {
        if let Ok(days) = client.streak_history(y, m as u8).await {
            rows.extend(days);
        }
    }
    rows
}

/// Each partner's actions today, read from the history in calm mode (where the streak has no
/// counts).
pub async fn today_counts(client: &TaplineClient, s: &StreakInfo) -> TodayCounts {
    if s.calm {
        TodayCounts::with_history(s, &today_rows(client, s).await)
    } else {
        TodayCounts::of(s)
    }
}

fn pause_candidates(s: &StreakInfo) -> Vec<(String, String)> {
    s.pauses
        .iter()
        .map(|p| {
            (
                p.pause_id.clone(),
                format!("{} to {}", p.from_date, p.to_date),
            )
        })
        .collect()
}

/// `tapline streak ...`
pub async fn streak(client: &TaplineClient, out: &Out, args: &StreakArgs) -> Result<(), Failure> {
    let partner = partner_name(client);
    match &args.action {
        Some(StreakAction::Pause { from, to }) => {
            let today = my_today(client)?;
            let from = pause_date("--from", from, today)?;
            let to = match to {
                Some(t) => pause_date("--to", t, today)?,
                None => from.clone(),
            };
            let p = client.schedule_pause(from, to).await?;
            let others = client.streak().await.map(|s| s.pauses).unwrap_or_default();
            let short = ids::short_id(&p.pause_id, others.iter().map(|o| o.pause_id.as_str()));
            out.result(
                "streak_pause",
                format!(
                    "Streak paused from {} to {} (id {short}); {partner} is told. Cancel it with `tapline streak unpause {short}`.",
                    p.from_date, p.to_date
                ),
                json!({ "pause_id": p.pause_id, "from_date": p.from_date, "to_date": p.to_date, "by_me": p.by_me }),
            );
        }
        Some(StreakAction::Unpause { pause_id }) => {
            let s = client.streak().await?;
            let candidates = pause_candidates(&s);
            let id = ids::resolve(pause_id, &candidates, "pause", "`tapline streak`")?.to_owned();
            client.cancel_pause(id.clone()).await?;
            let (_, dates) = candidates
                .iter()
                .find(|(c, _)| *c == id)
                .cloned()
                .unwrap_or_default();
            out.result(
                "streak_unpause",
                format!("The pause from {dates} is cancelled."),
                json!({ "cancelled": id }),
            );
        }
        Some(StreakAction::Calm { state }) => {
            let s = client.set_calm_mode(matches!(state, OnOff::On)).await?;
            let today = today_counts(client, &s).await;
            let human = if s.calm {
                "Calm mode on: no streak counts or warnings. Your history is kept.".to_owned()
            } else {
                format!(
                    "Calm mode off. {}",
                    streak_lines(&s, today, &partner).join("\n")
                )
            };
            out.result(
                "streak_calm",
                human,
                json!({ "streak": streak_json(&s, today) }),
            );
        }
        None => {
            let s = client.streak().await?;
            let (year, month) = match &args.month {
                Some(m) => calendar::parse_month(m).ok_or_else(|| {
                    Failure::new(REFUSED, format!("--month: expected YYYY-MM, got {m:?}"))
                })?,
                None => s
                    .me_today
                    .as_ref()
                    .and_then(|d| calendar::month_of(&d.date))
                    .or_else(|| calendar::month_of(&render::iso(SystemTime::now())))
                    .ok_or_else(|| Failure::new(INTERNAL, "cannot tell this month"))?,
            };
            let days = client.streak_history(year, month as u8).await?;
            let today = if s.calm {
                let mut rows = days.clone();
                // Today may be in another month than the one drawn.
                if [&s.me_today, &s.partner_today]
                    .into_iter()
                    .flatten()
                    .any(|d| !rows.iter().any(|r| r.date == d.date))
                {
                    rows.extend(today_rows(client, &s).await);
                }
                TodayCounts::with_history(&s, &rows)
            } else {
                TodayCounts::of(&s)
            };
            let today_date = s.me_today.as_ref().map(|d| d.date.as_str());
            let mut human = vec![
                calendar::render(year, month, &days, today_date),
                String::new(),
                calendar::LEGEND.to_owned(),
                format!("This month: {}.", calendar::tally(&days)),
            ];
            human.extend(streak_lines(&s, today, &partner));
            out.result(
                "streak",
                human.join("\n"),
                json!({
                    "year": year, "month": month, "streak": streak_json(&s, today),
                    "days": days.iter().map(streak_day_json).collect::<Vec<_>>(),
                }),
            );
        }
    }
    Ok(())
}

/// The check-ins this profile can see: fresh when the server answers, stored otherwise.
async fn known_checkins(
    client: &TaplineClient,
    open_only: bool,
) -> Result<(Vec<CheckinInfo>, bool), Failure> {
    match client.checkins(open_only).await {
        Ok(list) => Ok((list, true)),
        Err(TaplineError::Network { .. }) => Ok((client.local_checkins(open_only)?, false)),
        Err(e) => Err(e.into()),
    }
}

fn checkin_candidates(list: &[&CheckinInfo]) -> Vec<(String, String)> {
    list.iter()
        .map(|c| (c.checkin_id.clone(), format!("“{}”", c.prompt.text)))
        .collect()
}

/// Whether a word may be the start of an id (4+ hex digits and dashes).
fn id_like(s: &str) -> bool {
    s.len() >= 4 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// Which check-in `tapline checkin answer` means, and the answer's words: `--id`, or a first
/// word that starts a known check-in's id when more words follow, or the one check-in waiting
/// for an answer (more than one: the caller must say which).
fn pick_checkin<'a>(
    id: Option<&str>,
    words: &[String],
    known: &'a [CheckinInfo],
    now: SystemTime,
) -> Result<(&'a CheckinInfo, String), Failure> {
    let all: Vec<&CheckinInfo> = known.iter().collect();
    let by_id = |input: &str| -> Result<&'a CheckinInfo, Failure> {
        let candidates = checkin_candidates(&all);
        let id = ids::resolve(input, &candidates, "check-in", "`tapline checkin --all`")?;
        Ok(known
            .iter()
            .find(|c| c.checkin_id == id)
            .expect("resolved from known"))
    };
    if let Some(id) = id {
        return Ok((by_id(id)?, words.join(" ")));
    }
    if let [first, rest @ ..] = words
        && !rest.is_empty()
        && id_like(first)
        && known.iter().any(|c| {
            c.checkin_id
                .to_ascii_lowercase()
                .starts_with(&first.to_ascii_lowercase())
        })
    {
        return Ok((by_id(first)?, rest.join(" ")));
    }
    let waiting: Vec<&CheckinInfo> = known.iter().filter(|c| c.awaits_my_answer(now)).collect();
    match waiting.as_slice() {
        [one] => Ok((one, words.join(" "))),
        [] => Err(Failure::new(
            REFUSED,
            "no check-in is waiting for your answer (ask one: tapline checkin ask --category mood)",
        )
        .with_reason("NOT_FOUND")),
        many => {
            let ids: Vec<&str> = many.iter().map(|c| c.checkin_id.as_str()).collect();
            let listed: Vec<String> = many
                .iter()
                .zip(ids::short_ids(&ids))
                .map(|(c, short)| format!("  {short}  “{}”", c.prompt.text))
                .collect();
            Err(Failure::new(
                REFUSED,
                format!(
                    "{} check-ins wait for your answer; say which: tapline checkin answer ID VALUE\n{}",
                    many.len(),
                    listed.join("\n")
                ),
            )
            .with_reason("AMBIGUOUS_ID"))
        }
    }
}

/// The answer `value` stands for on `prompt`: `--text` as it is; on a text prompt a number
/// picks a quick reply; otherwise the core reads it (a number, option, emoji, quick reply or
/// text).
fn answer_for(prompt: &PromptInfo, value: &str, as_text: bool) -> Result<CheckinAnswer, Failure> {
    if value.trim().is_empty() {
        return Err(Failure::new(REFUSED, "the answer is empty").with_reason("INVALID_ARGUMENT"));
    }
    if as_text {
        return Ok(CheckinAnswer::Text {
            text: value.trim().to_owned(),
        });
    }
    match numbered_quick_reply(prompt, value) {
        Some(Ok(a)) => Ok(a),
        Some(Err(why)) => Err(Failure::new(REFUSED, why).with_reason("INVALID_ARGUMENT")),
        None => Ok(resolve_answer(prompt, value)?),
    }
}

/// `tapline checkin ...`
pub async fn checkin(client: &TaplineClient, out: &Out, args: &CheckinArgs) -> Result<(), Failure> {
    let partner = partner_name(client);
    let now = SystemTime::now();
    match &args.action {
        None => {
            let (list, online) = known_checkins(client, !args.all).await?;
            let ids: Vec<&str> = list.iter().map(|c| c.checkin_id.as_str()).collect();
            let shorts = ids::short_ids(&ids);
            let mut human: Vec<String> = if list.is_empty() {
                vec!["No open check-ins. Ask one: tapline checkin ask --category mood".into()]
            } else {
                list.iter()
                    .zip(&shorts)
                    .flat_map(|(c, short)| checkin_lines(c, short, &partner, now))
                    .collect()
            };
            if !online {
                human.push("(offline: shown from this device's store)".into());
            }
            out.result(
                "checkins",
                human.join("\n"),
                json!({ "online": online, "checkins": list.iter().map(checkin_json).collect::<Vec<_>>() }),
            );
        }
        Some(CheckinAction::History { page_size }) => {
            let mut list: Vec<CheckinInfo> = Vec::new();
            let mut token = None;
            let mut pages = 0;
            loop {
                let page = client.checkin_history(token, *page_size).await?;
                pages += 1;
                for c in page.checkins {
                    // A check-in that closed between two pages comes again: keep the latest.
                    match list.iter_mut().find(|k| k.checkin_id == c.checkin_id) {
                        Some(k) => *k = c,
                        None => list.push(c),
                    }
                }
                token = page.next_page_token;
                if token.is_none() {
                    break;
                }
            }
            let ids: Vec<&str> = list.iter().map(|c| c.checkin_id.as_str()).collect();
            let shorts = ids::short_ids(&ids);
            let human: Vec<String> = if list.is_empty() {
                vec!["No check-ins yet. Ask one: tapline checkin ask --category mood".into()]
            } else {
                list.iter()
                    .zip(&shorts)
                    .flat_map(|(c, short)| checkin_lines(c, short, &partner, now))
                    .collect()
            };
            out.result(
                "checkins",
                human.join("\n"),
                json!({ "online": true, "pages": pages, "checkins": list.iter().map(checkin_json).collect::<Vec<_>>() }),
            );
        }
        Some(CheckinAction::Prompts { category }) => {
            let prompts = client.prompts(category.map(Into::into)).await?;
            let human: Vec<String> = prompts
                .iter()
                .map(|p| {
                    format!(
                        "{:<16} {:<14} {}",
                        p.prompt_id,
                        category_name(p.category),
                        p.text
                    )
                })
                .collect();
            out.result(
                "prompts",
                human.join("\n"),
                json!({ "prompts": prompts.iter().map(prompt_json).collect::<Vec<_>>() }),
            );
        }
        Some(CheckinAction::Ask { category, prompt }) => {
            let c = client
                .ask_partner(category.map(Into::into), prompt.clone())
                .await?;
            out.result(
                "checkin_ask",
                format!(
                    "Asked {partner}: “{}” (id {})\nAnswer it too: tapline checkin answer VALUE ({})",
                    c.prompt.text,
                    ids::short_id(
                        &c.checkin_id,
                        client
                            .local_checkins(false)
                            .unwrap_or_default()
                            .iter()
                            .map(|k| k.checkin_id.as_str())
                    ),
                    answer_help(&c.prompt),
                ),
                json!({ "checkin": checkin_json(&c) }),
            );
        }
        Some(CheckinAction::Answer { id, text, words }) => {
            answer(client, out, id.as_deref(), *text, words, &partner).await?
        }
    }
    Ok(())
}

async fn answer(
    client: &TaplineClient,
    out: &Out,
    id: Option<&str>,
    as_text: bool,
    words: &[String],
    partner: &str,
) -> Result<(), Failure> {
    let now = SystemTime::now();
    let (known, _) = known_checkins(client, false).await?;
    let (target, value) = pick_checkin(id, words, &known, now)?;
    let answer = answer_for(&target.prompt, &value, as_text)?;
    let target = target.clone();
    client.answer_checkin(target.checkin_id.clone(), answer.clone())?;
    let flushed = outbox::flush(client).await;
    let local = client
        .local_answers(50)?
        .into_iter()
        .find(|a| a.checkin_id == target.checkin_id);
    let now_state = client
        .local_checkins(false)?
        .into_iter()
        .find(|c| c.checkin_id == target.checkin_id)
        .unwrap_or(target);
    let label = answer_label(&now_state.prompt, &answer);
    let json = json!({
        "answer": local.as_ref().map(local_answer_json),
        "checkin": checkin_json(&now_state),
        "outbox": outbox::flush_json(&flushed),
    });
    let human = match local.as_ref().map(|a| &a.state) {
        Some(AnswerState::Refused { reason, code }) => {
            return Err(Failure::refused(
                *code,
                format!("your answer was refused: {reason}"),
            ));
        }
        Some(AnswerState::Queued) | None => {
            let why = flushed.blocked_failure().unwrap_or_else(|| {
                Failure::new(
                    crate::failure::UNREACHABLE,
                    "the server did not take it yet",
                )
            });
            let words = flushed
                .blocked
                .as_ref()
                .map_or_else(|| "it was not sent yet".to_owned(), outbox::blocked_words);
            out.result(
                "checkin_answer",
                format!(
                    "Queued your answer {label}: {words}; it goes out with your next tapline command."
                ),
                json,
            );
            return Err(why.shown());
        }
        Some(AnswerState::Sent) => match (now_state.status, &now_state.partner_answer) {
            (CheckinStatus::Revealed, Some(theirs)) => format!(
                "Revealed! “{}” — you: {label} · {partner}: {}",
                now_state.prompt.text,
                answer_label(&now_state.prompt, theirs)
            ),
            _ => format!(
                "Answered “{}” with {label}. {}'s answer shows once they have answered.",
                now_state.prompt.text,
                cap(partner)
            ),
        },
    };
    out.result("checkin_answer", human, json);
    Ok(())
}

fn routine_candidates(list: &[RoutineInfo]) -> Vec<(String, String)> {
    list.iter()
        .map(|r| (r.routine_id.clone(), r.spec.name.clone()))
        .collect()
}

/// `tapline routine ...`
pub async fn routine(
    client: &TaplineClient,
    out: &Out,
    action: &RoutineAction,
) -> Result<(), Failure> {
    let now = SystemTime::now();
    match action {
        RoutineAction::Add {
            name,
            kind,
            category,
            text,
            days,
            at,
        } => {
            let (hour, minute) = parse_hhmm("--at", at)?;
            let (kind, checkin_category, reminder_text) = match kind {
                RoutineKindArg::Checkin => {
                    if text.is_some() {
                        return Err(Failure::new(USAGE, "--text: only for --kind reminder"));
                    }
                    (RoutineKind::Checkin, category.map(Into::into), None)
                }
                RoutineKindArg::Reminder => {
                    if category.is_some() {
                        return Err(Failure::new(USAGE, "--category: only for --kind checkin"));
                    }
                    (RoutineKind::Reminder, None, text.clone())
                }
            };
            let spec = RoutineSpec {
                name: name.clone(),
                kind,
                checkin_category,
                reminder_text,
                days: parse_days(days)?,
                hour,
                minute,
                paused: false,
            };
            let r = client.create_routine(spec).await?;
            let others = client.routines().await.unwrap_or_default();
            let short = ids::short_id(&r.routine_id, others.iter().map(|o| o.routine_id.as_str()));
            out.result(
                "routine_add",
                format!(
                    "Added: {}\nIt reaches each of you at {:02}:{:02} on your own clock.",
                    routine_line(&r, &short, now),
                    r.spec.hour,
                    r.spec.minute
                ),
                json!({ "routine": routine_json(&r) }),
            );
        }
        RoutineAction::List => {
            let list = client.routines().await?;
            let ids: Vec<&str> = list.iter().map(|r| r.routine_id.as_str()).collect();
            let human = if list.is_empty() {
                "No routines yet. Add one: tapline routine add --name \"Morning mood\" --kind checkin --category mood --days weekdays --at 08:00".to_owned()
            } else {
                list.iter()
                    .zip(ids::short_ids(&ids))
                    .map(|(r, short)| routine_line(r, &short, now))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            out.result(
                "routines",
                human,
                json!({ "routines": list.iter().map(routine_json).collect::<Vec<_>>() }),
            );
        }
        RoutineAction::Rm { id } => {
            let list = client.routines().await?;
            let candidates = routine_candidates(&list);
            let id = ids::resolve(id, &candidates, "routine", "`tapline routine list`")?;
            client.delete_routine(id.to_owned()).await?;
            let name = list
                .iter()
                .find(|r| r.routine_id == id)
                .map_or("", |r| r.spec.name.as_str());
            out.result(
                "routine_rm",
                format!(
                    "Deleted routine {} ({name}).",
                    ids::short_id(id, list.iter().map(|r| r.routine_id.as_str()))
                ),
                json!({ "deleted": id }),
            );
        }
        RoutineAction::Pause { id } | RoutineAction::Resume { id } => {
            let paused = matches!(action, RoutineAction::Pause { .. });
            let list = client.routines().await?;
            let candidates = routine_candidates(&list);
            let id = ids::resolve(id, &candidates, "routine", "`tapline routine list`")?;
            let current = list
                .iter()
                .find(|r| r.routine_id == id)
                .expect("resolved from the list");
            let spec = RoutineSpec {
                paused,
                ..current.spec.clone()
            };
            let r = client.update_routine(id.to_owned(), spec).await?;
            out.result(
                if paused {
                    "routine_pause"
                } else {
                    "routine_resume"
                },
                format!(
                    "{}: {}",
                    if paused { "Paused" } else { "Resumed" },
                    routine_line(
                        &r,
                        &ids::short_id(&r.routine_id, list.iter().map(|o| o.routine_id.as_str())),
                        now
                    )
                ),
                json!({ "routine": routine_json(&r) }),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ritual_words::tests::checkin;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn days_parse_from_names_and_groups() {
        assert_eq!(
            parse_days(&words("mon wednesday FRI")).ok(),
            Some(vec![Weekday::Monday, Weekday::Wednesday, Weekday::Friday])
        );
        assert_eq!(
            parse_days(&words("weekdays")).ok().map(|d| d.len()),
            Some(5)
        );
        assert_eq!(
            parse_days(&words("weekends sat")).ok(),
            Some(vec![Weekday::Saturday, Weekday::Sunday])
        );
        assert_eq!(parse_days(&words("daily")).ok().map(|d| d.len()), Some(7));
        assert!(parse_days(&words("mon funday")).is_err());
        assert!(parse_days(&words("m")).is_err());
        assert!(parse_days(&[]).is_err());
    }

    #[test]
    fn the_first_word_names_a_checkin_only_when_it_is_one() {
        let now = SystemTime::now();
        let known = [checkin("0192f1a4-aaaa"), checkin("0192f1a4-bbbb")];
        let (c, value) = pick_checkin(None, &words("0192f1a4-b quiet time"), &known, now).unwrap();
        assert_eq!(
            (c.checkin_id.as_str(), value.as_str()),
            ("0192f1a4-bbbb", "quiet time")
        );
        let (c, value) = pick_checkin(Some("0192F1A4-A"), &words("3"), &known, now).unwrap();
        assert_eq!(
            (c.checkin_id.as_str(), value.as_str()),
            ("0192f1a4-aaaa", "3")
        );
        let e = pick_checkin(None, &words("0192 2"), &known, now).unwrap_err();
        assert_eq!((e.code, e.reason), (5, Some("AMBIGUOUS_ID")));
        // A word that starts no id is part of the answer.
        let one = [checkin("0192f1a4-aaaa")];
        let (c, value) = pick_checkin(None, &words("face 2"), &one, now).unwrap();
        assert_eq!(
            (c.checkin_id.as_str(), value.as_str()),
            ("0192f1a4-aaaa", "face 2")
        );
        let (_, value) = pick_checkin(None, &words("0192f1a4-aaaa"), &one, now).unwrap();
        assert_eq!(value, "0192f1a4-aaaa", "one word is the answer");
    }

    #[test]
    fn with_two_open_checkins_an_answer_must_name_one() {
        let now = SystemTime::now();
        let mut a = checkin("0192f1a4-7b3c-7def-8123-456789abcdef");
        a.prompt.text = "How full is your cup?".into();
        let b = checkin("0193aaaa-0000-7000-8000-000000000002");
        let known = [a, b];
        let e = pick_checkin(None, &words("3"), &known, now).unwrap_err();
        assert_eq!(e.code, 5);
        assert!(
            e.message.starts_with("2 check-ins wait for your answer"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("  0192f1a4  “How full is your cup?”"),
            "{}",
            e.message
        );
        assert!(e.message.contains("  0193aaaa  "), "{}", e.message);
        let (c, _) = pick_checkin(None, &words("0193 3"), &known, now).unwrap();
        assert_eq!(c.checkin_id, "0193aaaa-0000-7000-8000-000000000002");
        // An answered one no longer counts.
        let mut answered = known.clone();
        answered[1].my_answer = Some(CheckinAnswer::Choice { index: 0 });
        let (c, _) = pick_checkin(None, &words("3"), &answered, now).unwrap();
        assert_eq!(c.checkin_id, "0192f1a4-7b3c-7def-8123-456789abcdef");
        let none: [CheckinInfo; 0] = [];
        assert_eq!(
            pick_checkin(None, &words("3"), &none, now)
                .unwrap_err()
                .code,
            5
        );
    }

    #[test]
    fn text_forces_text_and_numbers_follow_the_prompt() {
        let c = checkin("c1");
        assert_eq!(
            answer_for(&c.prompt, "2", false).unwrap(),
            CheckinAnswer::Choice { index: 1 },
            "on a choice a number is an option"
        );
        assert_eq!(
            answer_for(&c.prompt, "42", true).unwrap(),
            CheckinAnswer::Text { text: "42".into() }
        );
        assert!(answer_for(&c.prompt, "  ", false).is_err());
    }
}
