use tapline_proto::v1::checkin_service_server::CheckinService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::checkins::{self, AnswerJob};

#[tonic::async_trait]
impl CheckinService for Api {
    async fn list_prompts(
        &self,
        req: Request<ListPromptsRequest>,
    ) -> Result<Response<ListPromptsResponse>, Status> {
        self.caller(&req).await?;
        Ok(Response::new(checkins::list_prompts(
            req.get_ref().category,
        )?))
    }

    async fn ask_partner(
        &self,
        req: Request<AskPartnerRequest>,
    ) -> Result<Response<AskPartnerResponse>, Status> {
        let caller = self.caller(&req).await?;
        let ask = checkins::check_ask(req.get_ref())?;
        let now = self.state.clock.now();
        let asked = self
            .write(move |tx| {
                Box::pin(async move { checkins::ask_partner(tx, &caller, ask, now).await })
            })
            .await?;
        Ok(Response::new(asked))
    }

    async fn answer_checkin(
        &self,
        req: Request<AnswerCheckinRequest>,
    ) -> Result<Response<AnswerCheckinResponse>, Status> {
        let caller = self.caller(&req).await?;
        let (checkin_id, answer) = checkins::check_answer(req.get_ref())?;
        let job = AnswerJob {
            caller,
            checkin_id,
            answer,
            now: self.state.clock.now(),
        };
        Ok(Response::new(self.state.writer.answer(job).await?))
    }

    async fn list_checkins(
        &self,
        req: Request<ListCheckinsRequest>,
    ) -> Result<Response<ListCheckinsResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            checkins::list(self.state.db.pool(), &caller, req.into_inner()).await?,
        ))
    }
}
