//! `tapline reconnect`: the reconnect plan, seven small steps, one a day at the same time on
//! each of your clocks, for finding each other again after a stretch apart.

use std::time::SystemTime;

use clap::Subcommand;
use serde_json::{Value, json};
use tapline_core::*;

use crate::failure::{Failure, REFUSED};
use crate::out::Out;
use crate::{render, ritual_words};

/// Examples shown under `tapline reconnect --help`.
pub const RECONNECT_EXAMPLES: &str = "Examples:
  tapline --profile sam reconnect start --at 20:30     a step a day at 20:30 on each clock
  tapline --profile alex reconnect accept
  tapline --profile alex reconnect                     the seven steps, what came, what is done
  tapline --profile alex reconnect done 1
  tapline --profile sam reconnect pause                (resume to go on)
  tapline --profile sam --json reconnect status";

/// What `tapline reconnect` does (without one: `status`).
#[derive(Debug, Subcommand)]
pub enum ReconnectAction {
    /// Suggest the plan to your partner; it starts once they accept.
    #[command(
        after_help = "Examples:\n  tapline reconnect start\n  tapline reconnect start --at 08:15"
    )]
    Start {
        /// The time of day each of you gets a step, HH:MM on your own clocks; 19:00 if not
        /// given.
        #[arg(long = "at", value_name = "HH:MM")]
        at: Option<String>,
    },
    /// Accept your partner's suggestion: the first step comes at the next step time.
    #[command(after_help = "Example:\n  tapline reconnect accept")]
    Accept,
    /// Pause the plan for both of you (no steps come).
    #[command(after_help = "Example:\n  tapline reconnect pause")]
    Pause,
    /// Resume it: the next step comes at the next step time.
    #[command(after_help = "Example:\n  tapline reconnect resume")]
    Resume,
    /// End the plan, withdraw your suggestion or decline your partner's.
    #[command(after_help = "Example:\n  tapline reconnect end")]
    End,
    /// Mark a step that came as done (optional; it tells your partner).
    #[command(after_help = "Example:\n  tapline reconnect done 3")]
    Done {
        /// The step's number, 1-7.
        number: u32,
    },
    /// The seven steps: which came and which are done, for you and your partner, and when
    /// your next one comes on your clock.
    #[command(
        after_help = "Examples:\n  tapline reconnect status\n  tapline --json reconnect status"
    )]
    Status,
}

pub fn state_key(s: ReconnectState) -> &'static str {
    match s {
        ReconnectState::Proposed => "proposed",
        ReconnectState::Running => "running",
        ReconnectState::Paused => "paused",
        ReconnectState::Finished => "finished",
        ReconnectState::Ended => "ended",
        ReconnectState::Other => "other",
    }
}

pub fn kind_key(k: ReconnectStepKind) -> &'static str {
    match k {
        ReconnectStepKind::Tap => "tap",
        ReconnectStepKind::OneWord => "one_word",
        ReconnectStepKind::Appreciation => "appreciation",
        ReconnectStepKind::SharedMemory => "shared_memory",
        ReconnectStepKind::DeeperQuestion => "deeper_question",
        ReconnectStepKind::PlanACall => "plan_a_call",
        ReconnectStepKind::DateIdea => "date_idea",
        ReconnectStepKind::Other => "other",
    }
}

pub fn change_key(c: ReconnectChange) -> &'static str {
    match c {
        ReconnectChange::Proposed => "proposed",
        ReconnectChange::Accepted => "accepted",
        ReconnectChange::Step => "step",
        ReconnectChange::PartnerDone => "partner_done",
        ReconnectChange::Paused => "paused",
        ReconnectChange::Resumed => "resumed",
        ReconnectChange::Ended => "ended",
        ReconnectChange::Finished => "finished",
        ReconnectChange::Other => "other",
    }
}

/// A step as JSON.
pub fn step_json(s: &ReconnectStepInfo) -> Value {
    json!({
        "number": s.number,
        "kind": kind_key(s.kind),
        "title": s.title,
        "prompt": s.prompt,
        "came_at": s.came_at.map(render::iso),
        "came_on": s.came_on,
        "i_done": s.i_done,
        "partner_done": s.partner_done,
    })
}

/// A plan as JSON.
pub fn plan_json(p: &ReconnectInfo) -> Value {
    json!({
        "plan_id": p.plan_id,
        "state": state_key(p.state),
        "started_by_me": p.started_by_me,
        "local_time": p.local_time,
        "proposed_at": render::iso(p.proposed_at),
        "accepted_at": p.accepted_at.map(render::iso),
        "ended_at": p.ended_at.map(render::iso),
        "ended_by_me": p.ended_by_me,
        "paused_by_me": p.paused_by_me,
        "my_steps_come": p.my_steps_come,
        "partner_steps_come": p.partner_steps_come,
        "my_next_step_at": p.my_next_step_at.map(render::iso),
        "steps": p.steps.iter().map(step_json).collect::<Vec<_>>(),
    })
}

/// An instant on the clock of `zone` (an IANA name), short: "Wed 15 Jul 19:00"; in UTC when
/// the zone is unknown.
pub fn on_clock(t: SystemTime, zone: &str) -> String {
    let at = chrono::DateTime::<chrono::Utc>::from(t);
    match zone.parse::<chrono_tz::Tz>() {
        Ok(z) => at.with_timezone(&z).format("%a %-d %b %H:%M").to_string(),
        Err(_) => at.format("%a %-d %b %H:%M UTC").to_string(),
    }
}

/// One step's line: what came and what is done, for each of you.
fn step_line(s: &ReconnectStepInfo, partner_steps_come: u32, partner: &str) -> String {
    let mine = match (&s.came_on, s.i_done) {
        (_, true) => "done".to_owned(),
        (Some(on), false) => format!("came {on}"),
        (None, false) => "not yet".to_owned(),
    };
    let theirs = if s.partner_done {
        "done"
    } else if s.number <= partner_steps_come {
        "came"
    } else {
        "not yet"
    };
    let mark = match (s.i_done, s.came_at.is_some()) {
        (true, _) => '✓',
        (false, true) => '•',
        (false, false) => ' ',
    };
    format!(
        "  {mark} {}. {:<22} you: {mine:<16} {partner}: {theirs}",
        s.number, s.title
    )
}

/// The plan in words: its state, the seven steps, the step waiting, the next step time.
pub fn plan_lines(p: &ReconnectInfo, partner: &str, my_zone: &str) -> String {
    let who = ritual_words::cap(partner);
    let by = if p.started_by_me { "you" } else { &who };
    let head = match p.state {
        ReconnectState::Proposed if p.started_by_me => format!(
            "You suggested a reconnect plan (a step a day at {}); waiting for {who} to accept.",
            p.local_time
        ),
        ReconnectState::Proposed => format!(
            "{who} suggests a reconnect plan: seven small steps, one a day at {} on each of your \
             clocks. `tapline reconnect accept` to begin, `tapline reconnect end` to decline.",
            p.local_time
        ),
        ReconnectState::Running => format!(
            "Reconnect plan (suggested by {by}): a step a day at {} on each of your clocks.",
            p.local_time
        ),
        ReconnectState::Paused => format!(
            "Reconnect plan paused by {}: `tapline reconnect resume` to go on.",
            if p.paused_by_me { "you" } else { &who }
        ),
        ReconnectState::Finished => "Reconnect plan finished: all seven steps came.".to_owned(),
        ReconnectState::Ended => format!(
            "The reconnect plan ended{}. `tapline reconnect start` suggests a new one.",
            if p.ended_by_me { " (by you)" } else { "" }
        ),
        ReconnectState::Other => {
            "The reconnect plan is in a state this build does not know.".into()
        }
    };
    let mut lines = vec![head];
    if p.state != ReconnectState::Proposed {
        lines.extend(
            p.steps
                .iter()
                .map(|s| step_line(s, p.partner_steps_come, &who)),
        );
    }
    if let Some(s) = p.step_waiting() {
        lines.push(format!(
            "Today's step: {} — {} (`tapline reconnect done {}` when you have)",
            s.title, s.prompt, s.number
        ));
    }
    if let Some(next) = p.my_next_step_at {
        lines.push(format!(
            "Your next step comes {} your time.",
            on_clock(next, my_zone)
        ));
    }
    lines.join("\n")
}

/// What a `ReconnectUpdated` event says, in words.
pub fn event_line(
    change: ReconnectChange,
    plan: &ReconnectInfo,
    step: Option<&ReconnectStepInfo>,
    partner: &str,
    my_zone: &str,
) -> String {
    let who = ritual_words::cap(partner);
    match (change, step) {
        (ReconnectChange::Proposed, _) if plan.started_by_me => {
            format!("You suggested a reconnect plan; waiting for {who} to accept.")
        }
        (ReconnectChange::Proposed, _) => format!(
            "{who} suggests a reconnect plan: seven small steps, one a day at {}. \
             `tapline reconnect accept` to begin.",
            plan.local_time
        ),
        (ReconnectChange::Accepted, _) => format!(
            "The reconnect plan has begun{}.",
            plan.my_next_step_at
                .map(|t| format!(": your first step comes {} your time", on_clock(t, my_zone)))
                .unwrap_or_default()
        ),
        (ReconnectChange::Step, Some(s)) => format!(
            "Reconnect step {} of 7: {}\n  {}\n  (`tapline reconnect done {}` when you have)",
            s.number, s.title, s.prompt, s.number
        ),
        (ReconnectChange::PartnerDone, Some(s)) => {
            format!("{who} did reconnect step {}: {}.", s.number, s.title)
        }
        (ReconnectChange::Paused, _) => "The reconnect plan is paused.".to_owned(),
        (ReconnectChange::Resumed, _) => "The reconnect plan is resumed.".to_owned(),
        (ReconnectChange::Ended, _) => "The reconnect plan ended.".to_owned(),
        (ReconnectChange::Finished, _) => {
            "The reconnect plan is finished: all seven steps came for you both.".to_owned()
        }
        _ => "The reconnect plan changed.".to_owned(),
    }
}

/// The JSON line of a `ReconnectUpdated` event.
pub fn event_json(
    change: ReconnectChange,
    plan: &ReconnectInfo,
    step: Option<&ReconnectStepInfo>,
    silent: bool,
) -> Value {
    json!({
        "event": "reconnect_updated",
        "change": change_key(change),
        "silent": silent,
        "plan": plan_json(plan),
        "step": step.map(step_json),
    })
}

/// The couple's plan, or a refusal saying how to start one.
async fn current(client: &TaplineClient) -> Result<ReconnectInfo, Failure> {
    client.get_reconnect().await?.ok_or_else(|| {
        Failure::new(
            REFUSED,
            "No reconnect plan yet: `tapline reconnect start` suggests one.",
        )
        .with_reason("NOT_FOUND")
    })
}

/// Runs `tapline reconnect …`.
pub async fn reconnect(
    client: &TaplineClient,
    out: &Out,
    action: Option<&ReconnectAction>,
    partner: &str,
) -> Result<(), Failure> {
    let zone = client.account().map(|a| a.time_zone).unwrap_or_default();
    let who = ritual_words::cap(partner);
    let (kind, plan, human) = match action.unwrap_or(&ReconnectAction::Status) {
        ReconnectAction::Status => {
            let plan = client.get_reconnect().await?;
            let human = match &plan {
                Some(p) => plan_lines(p, partner, &zone),
                None => "No reconnect plan yet: `tapline reconnect start` suggests one.".into(),
            };
            out.result(
                "reconnect",
                human,
                json!({ "plan": plan.as_ref().map(plan_json) }),
            );
            return Ok(());
        }
        ReconnectAction::Start { at } => {
            let p = client.start_reconnect(at.clone()).await?;
            let human = format!(
                "You suggested a reconnect plan: seven small steps, one a day at {} on each of \
                 your clocks, once {partner} accepts.",
                p.local_time
            );
            ("reconnect_started", p, human)
        }
        ReconnectAction::Accept => {
            let p = client
                .accept_reconnect(current(client).await?.plan_id)
                .await?;
            let human = format!(
                "The reconnect plan has begun{}.",
                p.my_next_step_at
                    .map(|t| format!(": your first step comes {} your time", on_clock(t, &zone)))
                    .unwrap_or_default()
            );
            ("reconnect_accepted", p, human)
        }
        ReconnectAction::Pause | ReconnectAction::Resume => {
            let paused = matches!(action, Some(ReconnectAction::Pause));
            let p = client
                .pause_reconnect(current(client).await?.plan_id, paused)
                .await?;
            if paused {
                let human = "Paused for both of you: no steps come until you resume.".to_owned();
                ("reconnect_paused", p, human)
            } else {
                let human = plan_lines(&p, partner, &zone);
                ("reconnect_resumed", p, human)
            }
        }
        ReconnectAction::End => {
            let p = client.end_reconnect(current(client).await?.plan_id).await?;
            ("reconnect_ended", p, "The reconnect plan ended.".to_owned())
        }
        ReconnectAction::Done { number } => {
            let p = client
                .mark_reconnect_step(current(client).await?.plan_id, *number)
                .await?;
            let title = p
                .steps
                .iter()
                .find(|s| s.number == *number)
                .map_or_else(String::new, |s| format!(" ({})", s.title));
            let human = format!("Step {number}{title} marked done; {who} will see it.");
            ("reconnect_step_done", p, human)
        }
    };
    out.result(kind, human, json!({ "plan": plan_json(&plan) }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(number: u32, came: bool, done: bool, partner_done: bool) -> ReconnectStepInfo {
        ReconnectStepInfo {
            number,
            kind: ReconnectStepKind::Appreciation,
            title: format!("Step {number}"),
            prompt: "Tell them one thing you liked today.".into(),
            came_at: came.then_some(SystemTime::UNIX_EPOCH),
            came_on: came.then(|| "2026-07-15".into()),
            i_done: done,
            partner_done,
        }
    }

    #[test]
    fn the_plan_reads_step_by_step_for_both() {
        let p = ReconnectInfo {
            plan_id: "p".into(),
            state: ReconnectState::Running,
            started_by_me: false,
            local_time: "19:00".into(),
            proposed_at: SystemTime::UNIX_EPOCH,
            accepted_at: Some(SystemTime::UNIX_EPOCH),
            ended_at: None,
            ended_by_me: false,
            paused_by_me: false,
            steps: vec![
                step(1, true, true, true),
                step(2, true, false, false),
                step(3, false, false, false),
            ],
            my_steps_come: 2,
            partner_steps_come: 1,
            // 2026-07-15 17:00 UTC: 19:00 in Paris.
            my_next_step_at: Some(
                SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_784_134_800),
            ),
        };
        let s = plan_lines(&p, "alex", "Europe/Paris");
        assert!(s.starts_with("Reconnect plan (suggested by Alex)"), "{s}");
        assert!(s.contains("✓ 1. Step 1"), "{s}");
        assert!(
            s.contains("you: came 2026-07-15") && s.contains("Alex: not yet"),
            "{s}"
        );
        assert!(s.contains("Today's step: Step 2"), "{s}");
        assert!(s.contains("Wed 15 Jul 19:00 your time"), "{s}");
        let j = plan_json(&p);
        assert_eq!(j["state"], "running");
        assert_eq!(j["steps"][2]["kind"], "appreciation");
        assert!(j["steps"][2]["came_at"].is_null());
        let line = event_line(
            ReconnectChange::Step,
            &p,
            Some(&p.steps[1]),
            "alex",
            "Europe/Paris",
        );
        assert!(
            line.starts_with("Reconnect step 2 of 7: Step 2\n  Tell them"),
            "{line}"
        );
    }
}
