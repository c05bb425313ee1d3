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

fn plural(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
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
fn relative(t: SystemTime, now: SystemTime) -> String {
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
    } else {
        format!("{kind}; or: {}", quick.join(" / "))
    }
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

fn answer_state_key(s: &AnswerState) -> String {
    match s {
        AnswerState::Queued => "queued".into(),
        AnswerState::Sent => "sent".into(),
        AnswerState::Failed { reason } => format!("failed: {reason}"),
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
        "created_at": render::iso(a.created_at),
        "attempts": a.attempts,
    })
}

/// A check-in in a few lines: question and state, each partner's answer, how to answer.
pub fn checkin_lines(c: &CheckinInfo, partner: &str, now: SystemTime) -> Vec<String> {
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
        format!("“{}”  [{state}; {origin}]  {}", c.prompt.text, c.checkin_id),
        format!("  you: {mine} · {partner}: {theirs}"),
    ];
    if c.awaits_my_answer(now) {
        lines.push(format!("  answer with {}", answer_help(&c.prompt)));
    }
    lines
}

pub fn streak_json(s: &StreakInfo) -> Value {
    let day = |d: &Option<PersonDayInfo>| {
        d.as_ref()
            .map(|d| json!({ "date": d.date, "actions": d.actions }))
    };
    json!({
        "calm": s.calm,
        "current": s.current,
        "longest": s.longest,
        "freezes_held": s.freezes_held,
        "days_to_next_freeze": s.days_to_next_freeze,
        "next_milestone": s.next_milestone,
        "me_today": day(&s.me_today),
        "partner_today": day(&s.partner_today),
        "pauses": s.pauses.iter().map(|p| json!({
            "pause_id": p.pause_id, "from_date": p.from_date, "to_date": p.to_date, "by_me": p.by_me,
        })).collect::<Vec<_>>(),
    })
}

fn day_status_key(s: DayStatus) -> &'static str {
    match s {
        DayStatus::Open => "open",
        DayStatus::Connected => "connected",
        DayStatus::Frozen => "frozen",
        DayStatus::Paused => "paused",
        DayStatus::Skipped => "skipped",
        DayStatus::Missed => "missed",
    }
}

pub fn streak_day_json(d: &StreakDayInfo) -> Value {
    json!({ "date": d.date, "status": day_status_key(d.status), "my_actions": d.my_actions, "partner_actions": d.partner_actions })
}

/// The streak in a few lines: counts (or calm mode), today for each of you, pauses.
pub fn streak_lines(s: &StreakInfo, partner: &str) -> Vec<String> {
    let mut lines = Vec::new();
    if s.calm {
        lines.push(
            "Calm mode is on: no streak counts, no pressure (your history is kept).".to_owned(),
        );
    } else {
        let mut parts = vec![
            format!("Streak: {}", plural(s.current, "day", "days")),
            format!("longest {}", s.longest),
            format!("freezes {}/2", s.freezes_held),
        ];
        if s.freezes_held < 2 {
            parts.push(format!(
                "next freeze in {}",
                plural(s.days_to_next_freeze, "day", "days")
            ));
        }
        if let Some(m) = s.next_milestone {
            parts.push(format!("next milestone {m} days"));
        }
        lines.push(parts.join(" · "));
    }
    let today = |d: &Option<PersonDayInfo>| match d {
        Some(d) => format!("{} ({})", plural(d.actions, "action", "actions"), d.date),
        None => "?".into(),
    };
    lines.push(format!(
        "Today: you {}, {partner} {}",
        today(&s.me_today),
        today(&s.partner_today)
    ));
    for p in &s.pauses {
        lines.push(format!(
            "Paused {} to {} (by {}) · id {}",
            p.from_date,
            p.to_date,
            if p.by_me { "you" } else { partner },
            p.pause_id
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
pub fn routine_line(r: &RoutineInfo, now: SystemTime) -> String {
    let s = &r.spec;
    let next = match (s.paused, r.next_firing) {
        (true, _) => " · paused".to_owned(),
        (false, Some(t)) => format!(" · next {}", relative(t, now)),
        (false, None) => String::new(),
    };
    format!(
        "{}  {} — {} — {} at {:02}:{:02}{next}",
        r.routine_id,
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
            "date": date, "streak": streak_json(streak),
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

/// A sentence for the events of streaks, check-ins and routines (`None` for the others).
pub fn event_line(e: &ClientEvent) -> Option<String> {
    let now = SystemTime::now();
    Some(match e {
        ClientEvent::StreakUpdated {
            streak: s,
            change,
            milestone_days,
            date,
        } => match change {
            StreakChange::Grew => format!(
                "Streak: {} ({date} is connected).",
                plural(s.current, "day", "days")
            ),
            StreakChange::Milestone => format!(
                "🎉 {}-day streak! Well done, both of you.",
                milestone_days.unwrap_or(s.current)
            ),
            StreakChange::FreezeEarned => {
                format!("❄ Freeze earned: you hold {}/2.", s.freezes_held)
            }
            StreakChange::FreezeUsed => format!(
                "❄ A freeze kept your streak on {date}: still {}, {} left.",
                plural(s.current, "day", "days"),
                s.freezes_held
            ),
            StreakChange::Broken => format!(
                "Your streak ended on {date} (longest: {}). A new one starts with your next tap.",
                s.longest
            ),
            StreakChange::Settings if s.calm => "Streak: calm mode is on.".into(),
            StreakChange::Settings => format!(
                "Streak settings changed: {} scheduled.",
                plural(s.pauses.len() as u32, "pause", "pauses")
            ),
            StreakChange::Other => format!("Streak: {}.", plural(s.current, "day", "days")),
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
                    "Check-in revealed: “{q}” — you: {} · partner: {}",
                    mine.as_deref().unwrap_or("?"),
                    theirs.as_deref().unwrap_or("?")
                ),
                CheckinStatus::Expired => format!(
                    "Check-in over: “{q}” — you: {} · partner: {}",
                    mine.as_deref().unwrap_or("missed"),
                    theirs.as_deref().unwrap_or("missed")
                ),
                CheckinStatus::Open if c.awaits_my_answer(now) && c.partner_answered => format!(
                    "Your partner answered “{q}”. Answer to see theirs: tapline checkin answer VALUE ({})",
                    answer_help(&c.prompt)
                ),
                CheckinStatus::Open if c.awaits_my_answer(now) => format!(
                    "New check-in: “{q}” — tapline checkin answer VALUE ({})",
                    answer_help(&c.prompt)
                ),
                CheckinStatus::Open => format!("Check-in “{q}”: waiting for your partner."),
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
            Some(r) if !deleted => format!("Routine saved: {}", routine_line(r, now)),
            _ => format!("Routine {routine_id} was deleted."),
        },
        ClientEvent::AnswerStateChanged { answer } => match &answer.state {
            AnswerState::Failed { reason } => {
                format!("Your check-in answer was not accepted: {reason}")
            }
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
    fn checkins_show_both_sides_and_how_to_answer() {
        let c = checkin("0192f1a4-7b3c-7def-8123-456789abcdef");
        let lines = checkin_lines(&c, "Sam", SystemTime::now());
        assert_eq!(
            lines,
            vec![
                "“What would recharge you most tonight?”  [open, closes in 5 h; Sam asked]  0192f1a4-7b3c-7def-8123-456789abcdef".to_owned(),
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
        let lines = checkin_lines(&revealed, "Sam", SystemTime::now());
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
        };
        assert_eq!(
            streak_lines(&s, "Sam"),
            vec![
                "Streak: 1 day · longest 30 · freezes 2/2 · next milestone 3 days",
                "Today: you 1 action (2026-03-14), Sam ?",
                "Paused 2026-04-01 to 2026-04-03 (by Sam) · id p1",
            ]
        );
        let calm = StreakInfo { calm: true, ..s };
        assert!(streak_lines(&calm, "Sam")[0].starts_with("Calm mode is on"));
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
            },
            change: StreakChange::Milestone,
            milestone_days: Some(7),
            date: "2026-03-14".into(),
        };
        assert_eq!(
            event_line(&e).unwrap(),
            "🎉 7-day streak! Well done, both of you."
        );
        assert_eq!(event_json(&e).unwrap()["change"], "milestone");
        let c = ClientEvent::CheckinUpdated {
            checkin: checkin("c1"),
        };
        assert!(event_line(&c).unwrap().starts_with("Your partner answered"));
        assert!(event_line(&ClientEvent::CaughtUp).is_none());
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
