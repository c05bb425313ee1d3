//! `tapline streak`, `tapline checkin` and `tapline routine`: arguments and commands.

use std::time::SystemTime;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use tapline_core::*;

use crate::ritual_words::*;
use crate::{Failure, OnOff, Out, calendar, fail, parse_hhmm, render};

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

#[derive(Debug, Subcommand)]
enum StreakAction {
    /// Pause the streak for 1-14 days (dates in your zone, inclusive; from today at the earliest).
    Pause {
        /// First paused date, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last paused date, YYYY-MM-DD (default: the same day).
        #[arg(long)]
        to: Option<String>,
    },
    /// Cancel a pause that has not started.
    Unpause {
        /// The pause id (`tapline streak` lists them).
        pause_id: String,
    },
    /// Calm mode: no streak counts, no warnings (the history is kept).
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

#[derive(Debug, Subcommand)]
enum CheckinAction {
    /// Ask your partner a question you both answer (answers are revealed once both are in).
    #[command(group = clap::ArgGroup::new("what").required(true).args(["category", "prompt"]))]
    Ask {
        /// A prompt of this category (it changes day to day).
        #[arg(long, value_enum)]
        category: Option<Category>,
        /// A prompt by id (`tapline checkin prompts` lists them).
        #[arg(long)]
        prompt: Option<String>,
    },
    /// Answer a check-in (without an id: the one waiting for you).
    ///
    /// VALUE is a number 1-5, an option or quick reply (its label, or its number from 1), an
    /// emoji, or text. Answers are final; offline, the answer is queued like a tap.
    Answer {
        /// An optional check-in id (or its first characters), then the answer.
        #[arg(required = true, num_args = 1.., value_name = "[CHECKIN_ID] VALUE")]
        words: Vec<String>,
    },
    /// List the prompts you can ask.
    Prompts {
        /// Only this category.
        #[arg(long, value_enum)]
        category: Option<Category>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoutineAction {
    /// Add a routine: it reaches each of you at that time on your own clock.
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
    /// List the couple's routines.
    List,
    /// Delete a routine.
    Rm {
        /// The routine id.
        id: String,
    },
    /// Stop a routine from firing (until resumed).
    Pause {
        /// The routine id.
        id: String,
    },
    /// Let a paused routine fire again.
    Resume {
        /// The routine id.
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
                        fail(
                            5,
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
        return Err(fail(5, "--days: name at least one day"));
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

/// `tapline streak ...`
pub async fn streak(client: &TaplineClient, out: &Out, args: &StreakArgs) -> Result<(), Failure> {
    let partner = partner_name(client);
    match &args.action {
        Some(StreakAction::Pause { from, to }) => {
            let to = to.clone().unwrap_or_else(|| from.clone());
            let p = client.schedule_pause(from.clone(), to).await?;
            out.print(
                format!(
                    "Streak paused from {} to {} (id {}); {partner} is told. Cancel with `tapline streak unpause {}`.",
                    p.from_date, p.to_date, p.pause_id, p.pause_id
                ),
                json!({ "pause_id": p.pause_id, "from_date": p.from_date, "to_date": p.to_date, "by_me": p.by_me }),
            );
        }
        Some(StreakAction::Unpause { pause_id }) => {
            client.cancel_pause(pause_id.clone()).await?;
            out.print(
                format!("Pause {pause_id} cancelled."),
                json!({ "cancelled": pause_id }),
            );
        }
        Some(StreakAction::Calm { state }) => {
            let s = client.set_calm_mode(matches!(state, OnOff::On)).await?;
            let human = if s.calm {
                "Calm mode on: no streak counts or warnings. Your history is kept.".to_owned()
            } else {
                format!("Calm mode off. {}", streak_lines(&s, &partner)[0])
            };
            out.print(human, streak_json(&s));
        }
        None => {
            let s = client.streak().await?;
            let (year, month) = match &args.month {
                Some(m) => calendar::parse_month(m)
                    .ok_or_else(|| fail(5, format!("--month: expected YYYY-MM, got {m:?}")))?,
                None => s
                    .me_today
                    .as_ref()
                    .and_then(|d| calendar::month_of(&d.date))
                    .or_else(|| calendar::month_of(&render::iso(SystemTime::now())))
                    .ok_or_else(|| fail(1, "cannot tell this month"))?,
            };
            let days = client.streak_history(year, month as u8).await?;
            let today = s.me_today.as_ref().map(|d| d.date.as_str());
            let mut human = vec![
                calendar::render(year, month, &days, today),
                String::new(),
                calendar::LEGEND.to_owned(),
                format!("This month: {}.", calendar::tally(&days)),
            ];
            human.extend(streak_lines(&s, &partner));
            out.print(
                human.join("\n"),
                json!({
                    "year": year, "month": month, "streak": streak_json(&s),
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

/// Which words of `tapline checkin answer` name the check-in: a first word that is a known id
/// or the unique start (4+ characters) of one, when more words follow.
fn split_answer_words(
    words: &[String],
    known: &[CheckinInfo],
) -> Result<(Option<String>, String), Failure> {
    if let [first, rest @ ..] = words
        && !rest.is_empty()
    {
        let matches: Vec<&CheckinInfo> = known
            .iter()
            .filter(|c| {
                c.checkin_id == *first
                    || (first.len() >= 4 && c.checkin_id.starts_with(first.as_str()))
            })
            .collect();
        match matches.as_slice() {
            [one] => return Ok((Some(one.checkin_id.clone()), rest.join(" "))),
            [_, _, ..] => {
                return Err(fail(
                    5,
                    format!("{first:?} starts more than one check-in id"),
                ));
            }
            [] if uuid_like(first) => {
                return Err(fail(5, format!("no check-in {first} on this profile")));
            }
            [] => {}
        }
    }
    Ok((None, words.join(" ")))
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// `tapline checkin ...`
pub async fn checkin(client: &TaplineClient, out: &Out, args: &CheckinArgs) -> Result<(), Failure> {
    let partner = partner_name(client);
    let now = SystemTime::now();
    match &args.action {
        None => {
            // Answers queued offline go out first, so the list shows them accepted.
            let _ = client.flush_outbox().await;
            let (list, online) = known_checkins(client, !args.all).await?;
            let mut human: Vec<String> = if list.is_empty() {
                vec!["No open check-ins. Ask one: tapline checkin ask --category mood".into()]
            } else {
                list.iter()
                    .flat_map(|c| checkin_lines(c, &partner, now))
                    .collect()
            };
            if !online {
                human.push("(offline: shown from this device's store)".into());
            }
            out.print(
                human.join("\n"),
                json!({ "online": online, "checkins": list.iter().map(checkin_json).collect::<Vec<_>>() }),
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
            out.print(
                human.join("\n"),
                Value::Array(prompts.iter().map(prompt_json).collect()),
            );
        }
        Some(CheckinAction::Ask { category, prompt }) => {
            let c = client
                .ask_partner(category.map(Into::into), prompt.clone())
                .await?;
            out.print(
                format!(
                    "Asked {partner}: “{}”\nAnswer it too: tapline checkin answer VALUE ({})\nid {}",
                    c.prompt.text,
                    answer_help(&c.prompt),
                    c.checkin_id
                ),
                checkin_json(&c),
            );
        }
        Some(CheckinAction::Answer { words }) => answer(client, out, words, &partner).await?,
    }
    Ok(())
}

async fn answer(
    client: &TaplineClient,
    out: &Out,
    words: &[String],
    partner: &str,
) -> Result<(), Failure> {
    let now = SystemTime::now();
    let (known, _) = known_checkins(client, false).await?;
    let (id, value) = split_answer_words(words, &known)?;
    let target = match id {
        Some(id) => known.into_iter().find(|c| c.checkin_id == id),
        None => known
            .into_iter()
            .filter(|c| c.awaits_my_answer(now))
            .max_by_key(|c| c.opened_at),
    };
    let Some(target) = target else {
        return Err(fail(
            5,
            "no check-in is waiting for your answer (ask one: tapline checkin ask --category mood)",
        ));
    };
    let answer = resolve_answer(&target.prompt, &value)?;
    client.answer_checkin(target.checkin_id.clone(), answer.clone())?;
    client.flush_outbox().await?;
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
    let human = match local.as_ref().map(|a| &a.state) {
        Some(AnswerState::Failed { reason }) => {
            return Err(fail(5, format!("not accepted: {reason}")));
        }
        Some(AnswerState::Queued) | None => format!(
            "Queued your answer {label}: the server is unreachable; it goes out with your next tapline command."
        ),
        Some(AnswerState::Sent) => match (now_state.status, &now_state.partner_answer) {
            (CheckinStatus::Revealed, Some(theirs)) => format!(
                "Revealed! “{}” — you: {label} · {partner}: {}",
                now_state.prompt.text,
                answer_label(&now_state.prompt, theirs)
            ),
            _ => format!(
                "Answered “{}” with {label}. {partner}'s answer shows once they have answered.",
                now_state.prompt.text
            ),
        },
    };
    out.print(
        human,
        json!({
            "answer": local.as_ref().map(local_answer_json),
            "checkin": checkin_json(&now_state),
        }),
    );
    Ok(())
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
                        return Err(fail(2, "--text: only for --kind reminder"));
                    }
                    (RoutineKind::Checkin, category.map(Into::into), None)
                }
                RoutineKindArg::Reminder => {
                    if category.is_some() {
                        return Err(fail(2, "--category: only for --kind checkin"));
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
            out.print(
                format!(
                    "Added: {}\nIt reaches each of you at {:02}:{:02} on your own clock.",
                    routine_line(&r, now),
                    r.spec.hour,
                    r.spec.minute
                ),
                routine_json(&r),
            );
        }
        RoutineAction::List => {
            let list = client.routines().await?;
            let human = if list.is_empty() {
                "No routines yet. Add one: tapline routine add --name \"Morning mood\" --kind checkin --category mood --days weekdays --at 08:00".to_owned()
            } else {
                list.iter()
                    .map(|r| routine_line(r, now))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            out.print(human, Value::Array(list.iter().map(routine_json).collect()));
        }
        RoutineAction::Rm { id } => {
            client.delete_routine(id.clone()).await?;
            out.print(format!("Deleted routine {id}."), json!({ "deleted": id }));
        }
        RoutineAction::Pause { id } | RoutineAction::Resume { id } => {
            let paused = matches!(action, RoutineAction::Pause { .. });
            let current = client
                .routines()
                .await?
                .into_iter()
                .find(|r| r.routine_id == *id)
                .ok_or_else(|| fail(5, format!("no routine {id}")))?;
            let spec = RoutineSpec {
                paused,
                ..current.spec
            };
            let r = client.update_routine(id.clone(), spec).await?;
            out.print(
                format!(
                    "{}: {}",
                    if paused { "Paused" } else { "Resumed" },
                    routine_line(&r, now)
                ),
                routine_json(&r),
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
        let known = [checkin("0192f1a4-aaaa"), checkin("0192f1a4-bbbb")];
        let (id, value) = split_answer_words(&words("0192f1a4-b quiet time"), &known).unwrap();
        assert_eq!(
            (id.as_deref(), value.as_str()),
            (Some("0192f1a4-bbbb"), "quiet time")
        );
        let (id, value) = split_answer_words(&words("quiet time"), &known).unwrap();
        assert_eq!((id, value.as_str()), (None, "quiet time"));
        let (id, value) = split_answer_words(&words("0192f1a4-aaaa"), &known).unwrap();
        assert_eq!(
            (id, value.as_str()),
            (None, "0192f1a4-aaaa"),
            "one word is the answer"
        );
        assert!(
            split_answer_words(&words("0192 2"), &known).is_err(),
            "ambiguous"
        );
        assert!(
            split_answer_words(&words("00000000-0000-0000-0000-000000000000 2"), &known).is_err()
        );
    }
}
