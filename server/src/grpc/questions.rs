use tapline_proto::v1::question_service_server::QuestionService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::questions;

#[tonic::async_trait]
impl QuestionService for Api {
    async fn get_questions(
        &self,
        req: Request<GetQuestionsRequest>,
    ) -> Result<Response<GetQuestionsResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            questions::get(self.state.db.pool(), &caller).await?,
        ))
    }

    async fn answer_question(
        &self,
        req: Request<AnswerQuestionRequest>,
    ) -> Result<Response<AnswerQuestionResponse>, Status> {
        let caller = self.caller(&req).await?;
        let (position, text) = questions::check_answer(req.get_ref())?;
        let now = self.state.clock.now();
        let answered = self
            .write(move |tx| {
                Box::pin(async move { questions::answer(tx, &caller, position, text, now).await })
            })
            .await?;
        Ok(Response::new(answered))
    }

    async fn pause_questions(
        &self,
        req: Request<PauseQuestionsRequest>,
    ) -> Result<Response<PauseQuestionsResponse>, Status> {
        let caller = self.caller(&req).await?;
        let paused = req.get_ref().paused;
        let now = self.state.clock.now();
        let done = self
            .write(move |tx| {
                Box::pin(async move { questions::pause(tx, &caller, paused, now).await })
            })
            .await?;
        Ok(Response::new(done))
    }
}
