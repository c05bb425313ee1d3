//! Deeper questions in stages: read the deck, answer the current question, pause or resume.
//! The latest progress is kept for the glance.

use tapline_proto::v1 as pb;

use super::TaplineClient;
use crate::engine::runtime::run;
use crate::error::{CoreError, TaplineError};
use crate::model::*;

fn progress_of(p: Option<pb::QuestionProgress>) -> Result<pb::QuestionProgress, CoreError> {
    p.ok_or_else(|| CoreError::Invalid("server sent no question progress".into()))
}

#[uniffi::export(async_runtime = "tokio")]
impl TaplineClient {
    /// The deck: where the couple is, and every question revealed so far with both answers.
    pub async fn questions(&self) -> Result<QuestionsView, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let r = inner
                .question_client()
                .get_questions(inner.authed(pb::GetQuestionsRequest {})?)
                .await?
                .into_inner();
            let progress = progress_of(r.progress)?;
            inner.store.set_question_progress(&progress)?;
            Ok(QuestionsView {
                progress: QuestionProgress::from_wire(&progress, &me),
                revealed: r.revealed.iter().map(QuestionInfo::from_wire).collect(),
            })
        })
        .await
    }

    /// Answers the current question (`number`, 1-36) in this account's own words (1-500
    /// characters). Answers are final: the same again changes nothing, another is refused
    /// (`AlreadyAnswered`); `QuestionLocked` for any other question, `QuestionsPaused` while
    /// paused.
    pub async fn answer_question(
        &self,
        number: u32,
        answer: String,
    ) -> Result<QuestionAnswered, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let r = inner
                .question_client()
                .answer_question(inner.authed(pb::AnswerQuestionRequest { number, answer })?)
                .await?
                .into_inner();
            let progress = progress_of(r.progress)?;
            inner.store.set_question_progress(&progress)?;
            Ok(QuestionAnswered {
                progress: QuestionProgress::from_wire(&progress, &me),
                revealed: r.revealed.as_ref().map(QuestionInfo::from_wire),
            })
        })
        .await
    }

    /// Pauses (`true`) or resumes the deck, for both partners.
    pub async fn pause_questions(&self, paused: bool) -> Result<QuestionProgress, TaplineError> {
        let inner = self.inner.clone();
        run(async move {
            let me = inner.creds()?.account_id;
            let r = inner
                .question_client()
                .pause_questions(inner.authed(pb::PauseQuestionsRequest { paused })?)
                .await?
                .into_inner();
            let progress = progress_of(r.progress)?;
            inner.store.set_question_progress(&progress)?;
            Ok(QuestionProgress::from_wire(&progress, &me))
        })
        .await
    }
}
