//! How `tapline` shows streaks, check-ins and routines: sentences and JSON (the calendar is in
//! `calendar`).

use std::time::SystemTime;

use serde_json::{Value, json};
use tapline_core::*;

use crate::render;

/// The category as the `--category` flag spells it.
pub fn category_name(c: Option<PromptCategory>) -> &'static str {
    match c {
        Some(PromptCategory::Mood) => "mood",
        Some(PromptCategory::Energy) => "energy",
        Some(PromptCategory::OneWordDay) => "one-word-day",
        Some(PromptCategory::IFeel) => "i-feel",
        Some(PromptCategory::Appreciation) => "appreciation",
        Some(PromptCategory::NeedSupport) => "need-support",
        Some(PromptCategory::Gratitude) => "gratitude",
        Some(PromptCategory::Curiosity) => "curiosity",
        Some(PromptCategory::Playful) => "playful",
        Some(PromptCategory::Reconnecting) => "reconnecting",
        None => "other",
    }
}

fn category_key(c: Option<PromptCategory>) -> String {
    category_name(c).replace('-', "_")
}

pub fn plural(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The first letter upper case, for a name that starts a sentence ("your partner").
pub fn cap(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// "1 day", "5 days".
pub fn days(n: u32) -> String {
    plural(n, "day", "days")
}

/// A span of time in round words: "40 min", "5 h", "3 d".
fn span(secs: u64) -> String {
    match secs {
        s if s < 60 => "under a minute".into(),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// "in 5 h" or "5 h ago", from `now`.
pub fn relative(t: SystemTime, now: SystemTime) -> String {
    match t.duration_since(now) {
        Ok(d) => format!("in {}", span(d.as_secs())),
        Err(e) => format!("{} ago", span(e.duration().as_secs())),
    }
}

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// "every day", "weekdays", "weekends" or "Mon, Wed, Fri".
pub fn days_label(days: &[Weekday]) -> String {
    let mut d = days.to_vec();
    d.sort();
    d.dedup();
    if d.as_slice() == Weekday::ALL {
        "every day".into()
    } else if d.as_slice() == &Weekday::ALL[..5] {
        "weekdays".into()
    } else if d.as_slice() == &Weekday::ALL[5..] {
        "weekends".into()
    } else {
        d.iter()
            .map(|w| DAY_NAMES[Weekday::ALL.iter().position(|x| x == w).unwrap_or(0)])
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn day_key(d: Weekday) -> &'static str {
    match d {
        Weekday::Monday => "mon",
        Weekday::Tuesday => "tue",
        Weekday::Wednesday => "wed",
        Weekday::Thursday => "thu",
        Weekday::Friday => "fri",
        Weekday::Saturday => "sat",
        Weekday::Sunday => "sun",
    }
}

/// An answer in words: "3/5 (Half full)", "A walk", "☀️", "“Lovely”".
pub fn answer_label(prompt: &PromptInfo, a: &CheckinAnswer) -> String {
    let quick = prompt
        .quick_replies
        .iter()
        .find(|q| q.answer == *a)
        .map(|q| q.label.as_str());
    match a {
        CheckinAnswer::Scale { value } => match quick {
            Some(l) => format!("{value}/5 ({l})"),
            None => format!("{value}/5"),
        },
        CheckinAnswer::Choice { index } => match &prompt.answer_type {
            Some(AnswerType::Choice { options }) if (*index as usize) < options.len() => {
                options[*index as usize].clone()
            }
            _ => quick.map_or_else(|| format!("option {}", index + 1), str::to_owned),
        },
        CheckinAnswer::Emoji { emoji } => emoji.clone(),
        CheckinAnswer::Text { text } => format!("“{text}”"),
    }
}

/// How to answer a prompt, for a hint line.
pub fn answer_help(prompt: &PromptInfo) -> String {
    let kind = match &prompt.answer_type {
        Some(AnswerType::Scale {
            low_label,
            high_label,
        }) => format!("1 ({low_label}) to 5 ({high_label})"),
        Some(AnswerType::Choice { options }) => options
            .iter()
            .enumerate()
            .map(|(i, o)| format!("{} {o}", i + 1))
            .collect::<Vec<_>>()
            .join(" · "),
        Some(AnswerType::Emoji { options }) => options.join(" "),
        Some(AnswerType::Text { .. }) => "a few words".into(),
        None => "a quick reply".into(),
    };
    let quick: Vec<&str> = prompt
        .quick_replies
        .iter()
        .map(|q| q.label.as_str())
        .collect();
    if quick.is_empty() {
        kind
    } else if matches!(prompt.answer_type, Some(AnswerType::Text { .. })) {
        // On a text prompt a number picks a quick reply.
        let numbered: Vec<String> = quick
            .iter()
            .enumerate()
            .map(|(i, q)| format!("{} {q}", i + 1))
            .collect();
        format!("{kind}; or a quick reply: {}", numbered.join(" · "))
    } else {
        format!("{kind}; or: {}", quick.join(" / "))
    }
}

/// What a number typed as the answer to a text prompt stands for: its quick reply (counting
/// from 1). `None` when the input is not a number or the prompt is not a text prompt (the
/// core reads numbers on the other kinds). A number with no quick reply is an error.
pub fn numbered_quick_reply(
    prompt: &PromptInfo,
    input: &str,
) -> Option<Result<CheckinAnswer, String>> {
    if !matches!(prompt.answer_type, Some(AnswerType::Text { .. })) {
        return None;
    }
    let n: usize = input.trim().parse().ok()?;
    let replies = &prompt.quick_replies;
    Some(match n.checked_sub(1).and_then(|i| replies.get(i)) {
        Some(q) => Ok(q.answer.clone()),
        None if replies.is_empty() => Err(format!(
            "this prompt takes words and has no quick replies; to answer with the number itself, use --text {n}"
        )),
        None => Err(format!(
            "this prompt takes words; a number picks a quick reply (1-{}); to answer with the number itself, use --text {n}",
            replies.len()
        )),
    })
}

fn answer_json(prompt: &PromptInfo, a: &CheckinAnswer) -> Value {
    let label = answer_label(prompt, a);
    match a {
        CheckinAnswer::Scale { value } => json!({ "scale": value, "label": label }),
        CheckinAnswer::Choice { index } => json!({ "choice": index, "label": label }),
        CheckinAnswer::Emoji { emoji } => json!({ "emoji": emoji, "label": label }),
        CheckinAnswer::Text { text } => json!({ "text": text, "label": label }),
    }
}

fn answer_type_json(t: &Option<AnswerType>) -> Value {
    match t {
        Some(AnswerType::Scale {
            low_label,
            high_label,
        }) => json!({ "scale": { "low": low_label, "high": high_label } }),
        Some(AnswerType::Choice { options }) => json!({ "choice": options }),
        Some(AnswerType::Emoji { options }) => json!({ "emoji": options }),
        Some(AnswerType::Text { max_chars }) => json!({ "text": { "max_chars": max_chars } }),
        None => Value::Null,
    }
}

pub fn prompt_json(p: &PromptInfo) -> Value {
    json!({
        "prompt_id": p.prompt_id,
        "category": category_key(p.category),
        "text": p.text,
        "answer_type": answer_type_json(&p.answer_type),
        "quick_replies": p.quick_replies.iter().map(|q| json!({ "label": q.label, "answer": answer_json(p, &q.answer) })).collect::<Vec<_>>(),
    })
}

fn status_key(s: CheckinStatus) -> &'static str {
    match s {
        CheckinStatus::Open => "open",
        CheckinStatus::Revealed => "revealed",
        CheckinStatus::Expired => "expired",
    }
}

pub fn checkin_json(c: &CheckinInfo) -> Value {
    json!({
        "checkin_id": c.checkin_id,
        "prompt": prompt_json(&c.prompt),
        "status": status_key(c.status),
        "opened_by_me": c.opened_by_me,
        "routine_id": c.routine_id,
        "opened_at": render::iso(c.opened_at),
        "expires_at": render::iso(c.expires_at),
        "my_answer": c.my_answer.as_ref().map(|a| answer_json(&c.prompt, a)),
        "my_answer_pending": c.my_answer_pending,
        "partner_answered": c.partner_answered,
        "partner_answer": c.partner_answer.as_ref().map(|a| answer_json(&c.prompt, a)),
        "i_missed": c.i_missed,
        "partner_missed": c.partner_missed,
    })
}

pub fn answer_state_key(s: &AnswerState) -> String {
    match s {
        AnswerState::Queued => "queued".into(),
        AnswerState::Sent => "sent".into(),
        AnswerState::Refused { .. } => "refused".into(),
    }
}

pub fn local_answer_json(a: &LocalAnswer) -> Value {
    let answer = match &a.answer {
        CheckinAnswer::Scale { value } => json!({ "scale": value }),
        CheckinAnswer::Choice { index } => json!({ "choice": index }),
        CheckinAnswer::Emoji { emoji } => json!({ "emoji": emoji }),
        CheckinAnswer::Text { text } => json!({ "text": text }),
    };
    json!({
        "checkin_id": a.checkin_id,
        "answer": answer,
        "state": answer_state_key(&a.state),
        "refusal": match &a.state {
            AnswerState::Refused { reason, code } => render::refusal_json(*code, reason),
            _ => Value::Null,
        },
        "created_at": render::iso(a.created_at),
        "attempts": a.attempts,
    })
}

/// A check-in in a few lines: question and state, each partner's answer, how to answer.
/// `short` is the id as lists show it.
pub fn checkin_lines(c: &CheckinInfo, short: &str, partner: &str, now: SystemTime) -> Vec<String> {
    let state = match c.status {
        CheckinStatus::Open if c.expires_at > now => {
            format!("open, closes {}", relative(c.expires_at, now))
        }
        CheckinStatus::Open => "closing".into(),
        CheckinStatus::Revealed => "revealed".into(),
        CheckinStatus::Expired => "expired".into(),
    };
    let origin = if c.routine_id.is_some() {
        "from a routine".to_owned()
    } else if c.opened_by_me {
        "you asked".to_owned()
    } else {
        format!("{partner} asked")
    };
    let mine = match (&c.my_answer, c.i_missed) {
        (Some(a), _) if c.my_answer_pending => {
            format!("{} (queued on this device)", answer_label(&c.prompt, a))
        }
        (Some(a), _) => answer_label(&c.prompt, a),
        (None, true) => "missed".into(),
        (None, false) => "not yet".into(),
    };
    let theirs = match (&c.partner_answer, c.partner_missed, c.partner_answered) {
        (Some(a), _, _) => answer_label(&c.prompt, a),
        (None, true, _) => "missed".into(),
        (None, false, true) => "answered (hidden until you answer)".into(),
        (None, false, false) => "not yet".into(),
    };
    let mut lines = vec![
        format!("{short}  “{}”  [{state}; {origin}]", c.prompt.text),
        format!("  you: {mine} · {partner}: {theirs}"),
    ];
    if c.awaits_my_answer(now) {
        lines.push(format!("  answer with {}", answer_help(&c.prompt)));
    }
    lines
}

/// Each partner's actions on their own today. The streak has them, except in calm mode, where
/// the server sends no counts: then they come from the month's history, or are unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TodayCounts {
    pub mine: Option<u32>,
    pub theirs: Option<u32>,
}

impl TodayCounts {
    /// From the streak alone (unknown in calm mode).
    pub fn of(s: &StreakInfo) -> TodayCounts {
        if s.calm {
            return TodayCounts::default();
        }
        TodayCounts {
            mine: s.me_today.as_ref().map(|d| d.actions),
            theirs: s.partner_today.as_ref().map(|d| d.actions),
        }
    }

    /// From the streak, with calm mode's missing counts read from the history's rows for
    /// each partner's today.
    pub fn with_history(s: &StreakInfo, days: &[StreakDayInfo]) -> TodayCounts {
        if !s.calm {
            return TodayCounts::of(s);
        }
        let on = |d: &Option<PersonDayInfo>| {
            d.as_ref()
                .and_then(|d| days.iter().find(|h| h.date == d.date))
        };
        TodayCounts {
            mine: on(&s.me_today).map(|h| h.my_actions),
            theirs: on(&s.partner_today).map(|h| h.partner_actions),
        }
    }
}

/// The streak for `--json`. In calm mode the counts are `null`: the server does not send them.
pub fn streak_json(s: &StreakInfo, today: TodayCounts) -> Value {
    let day = |d: &Option<PersonDayInfo>, n: Option<u32>| {
        d.as_ref().map(|d| json!({ "date": d.date, "actions": n }))
    };
    let count = |n: u32| if s.calm { Value::Null } else { n.into() };
    json!({
        "calm": s.calm,
        "current": count(s.current),
        "longest": count(s.longest),
        "freezes_held": count(s.freezes_held),
        "days_to_next_freeze": count(s.days_to_next_freeze),
        "next_milestone": if s.calm { None } else { s.next_milestone },
        "me_today": day(&s.me_today, today.mine),
        "partner_today": day(&s.partner_today, today.theirs),
        "pauses": s.pauses.iter().map(|p| json!({
            "pause_id": p.pause_id, "from_date": p.from_date, "to_date": p.to_date, "by_me": p.by_me,
        })).collect::<Vec<_>>(),
    })
}

pub fn day_status_key(s: DayStatus) -> &'static str {
    match s {
        DayStatus::Open => "open",
        DayStatus::Connected => "connected",
        DayStatus::Frozen => "frozen",
        DayStatus::Paused => "paused",
        DayStatus::Skipped => "skipped",
        DayStatus::Space => "space",
        DayStatus::Missed => "missed",
    }
}

pub fn streak_day_json(d: &StreakDayInfo) -> Value {
    json!({ "date": d.date, "status": day_status_key(d.status), "my_actions": d.my_actions, "partner_actions": d.partner_actions })
}

/// The streak in a few lines: counts (or calm mode), today for each of you, pauses (with short
/// ids).
pub fn streak_lines(s: &StreakInfo, today: TodayCounts, partner: &str) -> Vec<String> {
    let mut lines = Vec::new();
    if s.calm {
        lines.push(
            "Calm mode is on: no streak counts, no pressure (your history is kept).".to_owned(),
        );
    } else {
        let mut parts = vec![
            format!("Streak: {}", days(s.current)),
            format!("longest {}", s.longest),
            format!("freezes {}/2", s.freezes_held),
        ];
        if s.freezes_held < 2 {
            parts.push(format!("next freeze in {}", days(s.days_to_next_freeze)));
        }
        if let Some(m) = s.next_milestone {
            parts.push(format!("next milestone {m} days"));
        }
        lines.push(parts.join(" · "));
    }
    let today_words = |d: &Option<PersonDayInfo>, n: Option<u32>| match (d, n) {
        (Some(d), Some(n)) => format!("{} ({})", plural(n, "action", "actions"), d.date),
        (Some(d), None) => format!("? actions ({})", d.date),
        (None, _) => "?".into(),
    };
    lines.push(format!(
        "Today: you {}, {partner} {}",
        today_words(&s.me_today, today.mine),
        today_words(&s.partner_today, today.theirs)
    ));
    let ids: Vec<&str> = s.pauses.iter().map(|p| p.pause_id.as_str()).collect();
    let shorts = crate::ids::short_ids(&ids);
    for (p, short) in s.pauses.iter().zip(shorts) {
        lines.push(format!(
            "Paused {} to {} (by {}) · id {short}",
            p.from_date,
            p.to_date,
            if p.by_me { "you" } else { partner },
        ));
    }
    lines
}

fn routine_what(spec: &RoutineSpec) -> String {
    match spec.kind {
        RoutineKind::Checkin => format!("check-in ({})", category_name(spec.checkin_category)),
        RoutineKind::Reminder => format!(
            "reminder “{}”",
            spec.reminder_text.as_deref().unwrap_or_default()
        ),
    }
}

/// One routine on one line.
/// `short` is the id as lists show it.
pub fn routine_line(r: &RoutineInfo, short: &str, now: SystemTime) -> String {
    let s = &r.spec;
    let next = match (s.paused, r.next_firing) {
        (true, _) => " · paused".to_owned(),
        (false, Some(t)) => format!(" · next {}", relative(t, now)),
        (false, None) => String::new(),
    };
    format!(
        "{short}  {} — {} — {} at {:02}:{:02}{next}",
        s.name,
        routine_what(s),
        days_label(&s.days),
        s.hour,
        s.minute
    )
}

pub fn routine_json(r: &RoutineInfo) -> Value {
    let s = &r.spec;
    json!({
        "routine_id": r.routine_id,
        "name": s.name,
        "kind": match s.kind { RoutineKind::Checkin => "checkin", RoutineKind::Reminder => "reminder" },
        "checkin_category": s.checkin_category.map(|c| category_key(Some(c))),
        "reminder_text": s.reminder_text,
        "days": s.days.iter().map(|d| day_key(*d)).collect::<Vec<_>>(),
        "time": format!("{:02}:{:02}", s.hour, s.minute),
        "paused": s.paused,
        "created_by_me": r.created_by_me,
        "created_at": render::iso(r.created_at),
        "next_firing": r.next_firing.map(render::iso),
        "recent_firings": r.recent_firings.iter().map(|f| json!({
            "mine": f.mine, "scheduled_for": render::iso(f.scheduled_for),
            "fired_at": f.fired_at.map(render::iso), "skipped": f.skipped,
        })).collect::<Vec<_>>(),
    })
}

fn change_key(c: StreakChange) -> &'static str {
    match c {
        StreakChange::Grew => "grew",
        StreakChange::Milestone => "milestone",
        StreakChange::FreezeEarned => "freeze_earned",
        StreakChange::FreezeUsed => "freeze_used",
        StreakChange::Broken => "broken",
        StreakChange::Settings => "settings",
        StreakChange::Restored => "restored",
        StreakChange::Other => "other",
    }
}

/// JSON for the events of streaks, check-ins and routines (`None` for the others).
pub fn event_json(e: &ClientEvent) -> Option<Value> {
    Some(match e {
        ClientEvent::StreakUpdated {
            streak,
            change,
            milestone_days,
            date,
        } => json!({
            "event": "streak_updated", "change": change_key(*change), "milestone_days": milestone_days,
            "date": if date.is_empty() { None } else { Some(date) },
            "streak": streak_json(streak, TodayCounts::of(streak)),
        }),
        ClientEvent::CheckinUpdated { checkin } => {
            json!({ "event": "checkin_updated", "checkin": checkin_json(checkin) })
        }
        ClientEvent::RoutineFired { routine, checkin } => json!({
            "event": "routine_fired", "routine": routine_json(routine), "checkin": checkin.as_ref().map(checkin_json),
        }),
        ClientEvent::RoutinesChanged {
            routine_id,
            routine,
            deleted,
        } => json!({
            "event": "routines_changed", "routine_id": routine_id, "deleted": deleted,
            "routine": routine.as_ref().map(routine_json),
        }),
        ClientEvent::AnswerStateChanged { answer } => {
            json!({ "event": "answer_state", "answer": local_answer_json(answer) })
        }
        _ => return None,
    })
}

/// A sentence for the events of streaks, check-ins and routines (`None` for the others);
/// `partner` is the partner's name.
pub fn event_line(e: &ClientEvent, partner: &str) -> Option<String> {
    let now = SystemTime::now();
    Some(match e {
        ClientEvent::StreakUpdated {
            streak: s,
            change,
            milestone_days,
            date,
        } => match change {
            StreakChange::Grew => format!("Streak: {} ({date} is connected).", days(s.current)),
            StreakChange::Milestone => format!(
                "🎉 {}-day streak! Well done, both of you.",
                milestone_days.unwrap_or(s.current)
            ),
            StreakChange::FreezeEarned => {
                format!("❄ Freeze earned: you hold {}/2.", s.freezes_held)
            }
            StreakChange::FreezeUsed => format!(
                "❄ A freeze kept your streak on {date}: still {}, {} left.",
                days(s.current),
                s.freezes_held
            ),
            StreakChange::Broken => format!(
                "Your streak ended on {date} (longest: {}). A new one starts with your next tap.",
                s.longest
            ),
            StreakChange::Restored => format!(
                "Streak restored: {date} counts after all, you are back to {}.",
                days(s.current)
            ),
            // What changed is told by `events::Notices`, which knows the streak before.
            StreakChange::Settings if s.calm => "Streak: calm mode is on.".into(),
            StreakChange::Settings => "Streak settings changed.".into(),
            StreakChange::Other => format!("Streak: {}.", days(s.current)),
        },
        ClientEvent::CheckinUpdated { checkin: c } => {
            let q = &c.prompt.text;
            let mine = c.my_answer.as_ref().map(|a| answer_label(&c.prompt, a));
            let theirs = c
                .partner_answer
                .as_ref()
                .map(|a| answer_label(&c.prompt, a));
            match c.status {
                CheckinStatus::Revealed => format!(
                    "Check-in revealed: “{q}” — you: {} · {partner}: {}",
                    mine.as_deref().unwrap_or("?"),
                    theirs.as_deref().unwrap_or("?")
                ),
                CheckinStatus::Expired => format!(
                    "Check-in over: “{q}” — you: {} · {partner}: {}",
                    mine.as_deref().unwrap_or("missed"),
                    theirs.as_deref().unwrap_or("missed")
                ),
                CheckinStatus::Open if c.awaits_my_answer(now) && c.partner_answered => format!(
                    "{} answered “{q}”. Answer to see theirs: tapline checkin answer VALUE ({})",
                    cap(partner),
                    answer_help(&c.prompt)
                ),
                CheckinStatus::Open if c.awaits_my_answer(now) => format!(
                    "New check-in: “{q}” — tapline checkin answer VALUE ({})",
                    answer_help(&c.prompt)
                ),
                CheckinStatus::Open => format!("Check-in “{q}”: waiting for {partner}."),
            }
        }
        ClientEvent::RoutineFired { routine, checkin } => match checkin {
            Some(c) => format!(
                "⏰ {}: “{}” — tapline checkin answer VALUE ({})",
                routine.spec.name,
                c.prompt.text,
                answer_help(&c.prompt)
            ),
            None => format!(
                "⏰ {}: {}",
                routine.spec.name,
                routine
                    .spec
                    .reminder_text
                    .as_deref()
                    .unwrap_or("(reminder)")
            ),
        },
        ClientEvent::RoutinesChanged {
            routine_id,
            routine,
            deleted,
        } => match routine {
            Some(r) if !deleted => format!(
                "Routine saved: {}",
                routine_line(r, &crate::ids::short_id(&r.routine_id, []), now)
            ),
            _ => format!(
                "Routine {} was deleted.",
                crate::ids::short_id(routine_id, [])
            ),
        },
        ClientEvent::AnswerStateChanged { answer } => match &answer.state {
            AnswerState::Refused { reason, code } => format!(
                "Your check-in answer was refused: {}",
                render::refusal_words(*code, reason)
            ),
            AnswerState::Sent => "Your check-in answer was sent.".into(),
            AnswerState::Queued => "Your check-in answer is queued.".into(),
        },
        _ => return None,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    fn prompt() -> PromptInfo {
        PromptInfo {
            prompt_id: "energy-02".into(),
            category: Some(PromptCategory::Energy),
            text: "What would recharge you most tonight?".into(),
            answer_type: Some(AnswerType::Choice {
                options: vec!["Sleep".into(), "A walk".into(), "Quiet time".into()],
            }),
            quick_replies: vec![QuickReplyInfo {
                label: "Sleep".into(),
                answer: CheckinAnswer::Choice { index: 0 },
            }],
        }
    }

    pub(crate) fn checkin(id: &str) -> CheckinInfo {
        let now = SystemTime::now();
        CheckinInfo {
            checkin_id: id.into(),
            prompt: prompt(),
            status: CheckinStatus::Open,
            opened_by_account_id: Some("p".into()),
            opened_by_me: false,
            routine_id: None,
            opened_at: now,
            expires_at: now + Duration::from_secs(5 * 3600 + 30),
            my_answer: None,
            my_answer_pending: false,
            partner_answered: true,
            partner_answer: None,
            i_missed: false,
            partner_missed: false,
        }
    }

    #[test]
    fn days_read_as_words() {
        assert_eq!(days_label(&Weekday::ALL), "every day");
        assert_eq!(days_label(&Weekday::ALL[..5]), "weekdays");
        assert_eq!(
            days_label(&[Weekday::Sunday, Weekday::Saturday]),
            "weekends"
        );
        assert_eq!(days_label(&[Weekday::Friday, Weekday::Monday]), "Mon, Fri");
    }

    #[test]
    fn answers_read_as_words() {
        let p = prompt();
        assert_eq!(
            answer_label(&p, &CheckinAnswer::Choice { index: 1 }),
            "A walk"
        );
        assert_eq!(
            answer_label(&p, &CheckinAnswer::Choice { index: 7 }),
            "option 8"
        );
        assert_eq!(answer_label(&p, &CheckinAnswer::Scale { value: 3 }), "3/5");
        assert_eq!(
            answer_label(&p, &CheckinAnswer::Text { text: "hi".into() }),
            "“hi”"
        );
        assert_eq!(
            answer_help(&p),
            "1 Sleep · 2 A walk · 3 Quiet time; or: Sleep"
        );
    }

    #[test]
    fn on_a_text_prompt_a_number_picks_a_quick_reply_or_is_refused() {
        let text = PromptInfo {
            prompt_id: "one-word-01".into(),
            category: Some(PromptCategory::OneWordDay),
            text: "Your day in one word?".into(),
            answer_type: Some(AnswerType::Text { max_chars: 40 }),
            quick_replies: vec![
                QuickReplyInfo {
                    label: "Lovely".into(),
                    answer: CheckinAnswer::Text {
                        text: "Lovely".into(),
                    },
                },
                QuickReplyInfo {
                    label: "Long".into(),
                    answer: CheckinAnswer::Text {
                        text: "Long".into(),
                    },
                },
            ],
        };
        assert_eq!(
            answer_help(&text),
            "a few words; or a quick reply: 1 Lovely · 2 Long"
        );
        assert_eq!(
            numbered_quick_reply(&text, "2"),
            Some(Ok(CheckinAnswer::Text {
                text: "Long".into()
            }))
        );
        let refused = numbered_quick_reply(&text, "3").unwrap().unwrap_err();
        assert!(
            refused.contains("1-2") && refused.contains("--text 3"),
            "{refused}"
        );
        assert!(numbered_quick_reply(&text, "0").unwrap().is_err());
        assert_eq!(
            numbered_quick_reply(&text, "lovely day"),
            None,
            "words are text"
        );
        assert_eq!(
            numbered_quick_reply(&prompt(), "2"),
            None,
            "a choice reads its own numbers"
        );
    }

    #[test]
    fn checkins_show_both_sides_and_how_to_answer() {
        let c = checkin("0192f1a4-7b3c-7def-8123-456789abcdef");
        let lines = checkin_lines(&c, "0192f1a4", "Sam", SystemTime::now());
        assert_eq!(
            lines,
            vec![
                "0192f1a4  “What would recharge you most tonight?”  [open, closes in 5 h; Sam asked]".to_owned(),
                "  you: not yet · Sam: answered (hidden until you answer)".to_owned(),
                "  answer with 1 Sleep · 2 A walk · 3 Quiet time; or: Sleep".to_owned(),
            ]
        );
        let revealed = CheckinInfo {
            status: CheckinStatus::Revealed,
            my_answer: Some(CheckinAnswer::Choice { index: 2 }),
            partner_answer: Some(CheckinAnswer::Choice { index: 0 }),
            ..c
        };
        let lines = checkin_lines(&revealed, "0192f1a4", "Sam", SystemTime::now());
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1], "  you: Quiet time · Sam: Sleep");
    }

    #[test]
    fn streaks_read_as_sentences() {
        let s = StreakInfo {
            calm: false,
            current: 1,
            longest: 30,
            freezes_held: 2,
            days_to_next_freeze: 6,
            next_milestone: Some(3),
            me_today: Some(PersonDayInfo {
                date: "2026-03-14".into(),
                actions: 1,
            }),
            partner_today: None,
            pauses: vec![PauseInfo {
                pause_id: "p1".into(),
                from_date: "2026-04-01".into(),
                to_date: "2026-04-03".into(),
                by_account_id: "x".into(),
                by_me: false,
            }],
            last_connected_date: None,
            first_date: None,
        };
        assert_eq!(
            streak_lines(&s, TodayCounts::of(&s), "Sam"),
            vec![
                "Streak: 1 day · longest 30 · freezes 2/2 · next milestone 3 days",
                "Today: you 1 action (2026-03-14), Sam ?",
                "Paused 2026-04-01 to 2026-04-03 (by Sam) · id p1",
            ]
        );
        // Calm mode: the server sends 0 for every count; the history has the real ones.
        let calm = StreakInfo {
            calm: true,
            current: 0,
            longest: 0,
            me_today: Some(PersonDayInfo {
                date: "2026-03-14".into(),
                actions: 0,
            }),
            partner_today: Some(PersonDayInfo {
                date: "2026-03-13".into(),
                actions: 0,
            }),
            ..s.clone()
        };
        let lines = streak_lines(&calm, TodayCounts::of(&calm), "Sam");
        assert!(lines[0].starts_with("Calm mode is on"));
        assert_eq!(
            lines[1],
            "Today: you ? actions (2026-03-14), Sam ? actions (2026-03-13)"
        );
        let history = [
            StreakDayInfo {
                date: "2026-03-13".into(),
                status: DayStatus::Open,
                my_actions: 9,
                partner_actions: 3,
            },
            StreakDayInfo {
                date: "2026-03-14".into(),
                status: DayStatus::Open,
                my_actions: 4,
                partner_actions: 0,
            },
        ];
        let today = TodayCounts::with_history(&calm, &history);
        assert_eq!(
            today,
            TodayCounts {
                mine: Some(4),
                theirs: Some(3)
            }
        );
        assert_eq!(
            streak_lines(&calm, today, "Sam")[1],
            "Today: you 4 actions (2026-03-14), Sam 3 actions (2026-03-13)"
        );
        let j = streak_json(&calm, today);
        assert!(j["current"].is_null() && j["longest"].is_null(), "{j}");
        assert_eq!(j["me_today"]["actions"], 4);
        assert_eq!(streak_json(&s, TodayCounts::of(&s))["current"], 1);
    }

    #[test]
    fn new_events_have_sentences_and_json() {
        let e = ClientEvent::StreakUpdated {
            streak: StreakInfo {
                calm: false,
                current: 7,
                longest: 7,
                freezes_held: 1,
                days_to_next_freeze: 7,
                next_milestone: Some(14),
                me_today: None,
                partner_today: None,
                pauses: vec![],
                last_connected_date: None,
                first_date: None,
            },
            change: StreakChange::Milestone,
            milestone_days: Some(7),
            date: "2026-03-14".into(),
        };
        assert_eq!(
            event_line(&e, "Sam").unwrap(),
            "🎉 7-day streak! Well done, both of you."
        );
        assert_eq!(event_json(&e).unwrap()["change"], "milestone");
        let c = ClientEvent::CheckinUpdated {
            checkin: checkin("c1"),
        };
        assert!(event_line(&c, "Sam").unwrap().starts_with("Sam answered"));
        assert!(event_line(&ClientEvent::CaughtUp, "Sam").is_none());
        assert!(event_json(&ClientEvent::CaughtUp).is_none());
    }

    #[test]
    fn spans_round_to_words() {
        assert_eq!(span(30), "under a minute");
        assert_eq!(span(600), "10 min");
        assert_eq!(span(5 * 3600 + 59), "5 h");
        assert_eq!(span(3 * 86_400), "3 d");
        let now = SystemTime::now();
        assert_eq!(relative(now + Duration::from_secs(120), now), "in 2 min");
        assert_eq!(relative(now - Duration::from_secs(7200), now), "2 h ago");
    }
}
