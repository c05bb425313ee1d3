//! `tapline questions`: the deeper questions, one at a time. Your answer stays hidden from
//! your partner until you have both answered; then both are shown and the next one unlocks.

use clap::Subcommand;
use serde_json::{Value, json};
use tapline_core::*;

use crate::failure::Failure;
use crate::out::Out;
use crate::{render, ritual_words};

/// Examples shown under `tapline questions --help`.
pub const QUESTIONS_EXAMPLES: &str = "Examples:
  tapline --profile sam questions                     the current question and your progress
  tapline --profile sam questions answer \"Rain on a tin roof\"
  tapline --profile alex questions history            every question revealed, both answers
  tapline --profile alex questions pause              (resume to go on)
  tapline --profile sam --json questions";

/// What `tapline questions` does.
#[derive(Debug, Subcommand)]
pub enum QuestionsAction {
    /// The current question and your progress (the default).
    #[command(after_help = "Examples:\n  tapline questions show\n  tapline --json questions show")]
    Show,
    /// Answer the current question in your own words (1-500 characters). Answers are final.
    #[command(after_help = "Examples:\n  tapline questions answer \"A quiet breakfast outside\"")]
    Answer {
        /// Your answer.
        text: String,
    },
    /// Every question revealed so far, with both answers.
    #[command(
        after_help = "Examples:\n  tapline questions history\n  tapline --json questions history"
    )]
    History,
    /// Pause the questions for both of you.
    #[command(after_help = "Examples:\n  tapline questions pause")]
    Pause,
    /// Resume them.
    #[command(after_help = "Examples:\n  tapline questions resume")]
    Resume,
}

/// A question as JSON.
pub fn question_json(q: &QuestionInfo) -> Value {
    json!({
        "number": q.number,
        "set": q.set,
        "set_name": q.set_name,
        "number_in_set": q.number_in_set,
        "text": q.text,
        "my_answer": q.my_answer,
        "partner_answered": q.partner_answered,
        "partner_answer": q.partner_answer,
        "revealed_at": q.revealed_at.map(render::iso),
    })
}

/// Progress as JSON.
pub fn progress_json(p: &QuestionProgress) -> Value {
    json!({
        "current": p.current.as_ref().map(question_json),
        "revealed": p.revealed,
        "total": p.total,
        "paused": p.paused,
        "paused_by_me": p.paused_by_me,
        "finished": p.finished,
    })
}

/// The progress in words.
pub fn progress_lines(p: &QuestionProgress, partner: &str) -> String {
    let partner = ritual_words::cap(partner);
    let Some(q) = &p.current else {
        return format!(
            "All {} questions answered together. Look back with `tapline questions history`.",
            p.total
        );
    };
    let mut lines = vec![
        format!(
            "Question {} of {} ({}, {} of 12):",
            q.number, p.total, q.set_name, q.number_in_set
        ),
        format!("  {}", q.text),
    ];
    match (&q.my_answer, q.partner_answered) {
        (Some(a), true) => lines.push(format!("You answered \"{a}\"; so did {partner}.")),
        (Some(a), false) => lines.push(format!(
            "You answered \"{a}\". It stays hidden until {partner} answers too."
        )),
        (None, true) => lines.push(format!(
            "{partner} has answered; answer to see both: tapline questions answer \"...\""
        )),
        (None, false) => {
            lines.push("Answer in your own words: tapline questions answer \"...\"".into())
        }
    }
    if p.paused {
        lines.push(if p.paused_by_me {
            "Paused by you: `tapline questions resume` to go on.".to_owned()
        } else {
            format!("Paused by {partner}; no rush.")
        });
    }
    lines.join("\n")
}

/// A revealed question in words.
pub fn revealed_lines(q: &QuestionInfo, partner: &str) -> String {
    format!(
        "{}. {}\n   You: {}\n   {}: {}",
        q.number,
        q.text,
        q.my_answer.as_deref().unwrap_or("(gone)"),
        ritual_words::cap(partner),
        q.partner_answer.as_deref().unwrap_or("(gone)")
    )
}

/// The line and JSON of a `QuestionUpdated` event.
pub fn event_line(
    change: QuestionChange,
    progress: &QuestionProgress,
    revealed: Option<&QuestionInfo>,
    partner: &str,
) -> String {
    let who = ritual_words::cap(partner);
    match (change, revealed) {
        (QuestionChange::PartnerAnswered, _) => format!(
            "{who} answered question {}; answer it to see both.",
            progress.current.as_ref().map_or(0, |q| q.number)
        ),
        (QuestionChange::Revealed, Some(q)) => {
            format!("Both answered:\n{}", revealed_lines(q, partner))
        }
        (QuestionChange::Paused, _) => "The deeper questions are paused.".to_owned(),
        (QuestionChange::Resumed, _) => "The deeper questions are resumed.".to_owned(),
        _ => "The deeper questions changed.".to_owned(),
    }
}

/// Runs `tapline questions …`.
pub async fn questions(
    client: &TaplineClient,
    out: &Out,
    action: Option<&QuestionsAction>,
    partner: &str,
) -> Result<(), Failure> {
    match action.unwrap_or(&QuestionsAction::Show) {
        QuestionsAction::Show => {
            let v = client.questions().await?;
            out.result(
                "questions",
                progress_lines(&v.progress, partner),
                json!({ "progress": progress_json(&v.progress) }),
            );
        }
        QuestionsAction::History => {
            let v = client.questions().await?;
            let human = if v.revealed.is_empty() {
                "No question revealed yet.".to_owned()
            } else {
                v.revealed
                    .iter()
                    .map(|q| revealed_lines(q, partner))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            out.result(
                "questions_history",
                human,
                json!({
                    "progress": progress_json(&v.progress),
                    "revealed": v.revealed.iter().map(question_json).collect::<Vec<_>>(),
                }),
            );
        }
        QuestionsAction::Answer { text } => {
            let number = client
                .questions()
                .await?
                .progress
                .current
                .map_or(0, |q| q.number);
            let a = client.answer_question(number, text.clone()).await?;
            let human = match &a.revealed {
                Some(q) => format!("Both answered:\n{}", revealed_lines(q, partner)),
                None => format!(
                    "Kept. It stays hidden until {} answers too.",
                    ritual_words::cap(partner)
                ),
            };
            out.result(
                "question_answered",
                human,
                json!({
                    "progress": progress_json(&a.progress),
                    "revealed": a.revealed.as_ref().map(question_json),
                }),
            );
        }
        QuestionsAction::Pause | QuestionsAction::Resume => {
            let paused = matches!(action, Some(QuestionsAction::Pause));
            let p = client.pause_questions(paused).await?;
            out.result(
                if paused {
                    "questions_paused"
                } else {
                    "questions_resumed"
                },
                if paused {
                    "Paused for both of you.".to_owned()
                } else {
                    progress_lines(&p, partner)
                },
                json!({ "progress": progress_json(&p) }),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(my: Option<&str>, theirs: bool, paused: bool) -> QuestionProgress {
        QuestionProgress {
            current: Some(QuestionInfo {
                number: 14,
                set: 2,
                set_name: "Closer".into(),
                number_in_set: 2,
                text: "What does a good apology look like to you?".into(),
                my_answer: my.map(str::to_owned),
                partner_answered: theirs,
                partner_answer: None,
                revealed_at: None,
            }),
            revealed: 13,
            total: 36,
            paused,
            paused_by_me: false,
            finished: false,
        }
    }

    #[test]
    fn progress_reads_where_you_are_and_what_waits() {
        let s = progress_lines(&progress(None, true, false), "alex");
        assert!(s.starts_with("Question 14 of 36 (Closer, 2 of 12):"), "{s}");
        assert!(s.contains("Alex has answered"), "{s}");
        let s = progress_lines(&progress(Some("listening"), false, true), "alex");
        assert!(s.contains("hidden until Alex answers"), "{s}");
        assert!(s.contains("Paused by Alex"), "{s}");
        let j = progress_json(&progress(None, false, false));
        assert_eq!(j["current"]["number"], 14);
        assert_eq!(j["revealed"], 13);
    }
}
