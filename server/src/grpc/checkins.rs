use tapline_proto::v1::checkin_service_server::CheckinService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::checkins;

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
        Ok(Response::new(
            checkins::ask_partner(&self.state, &caller, req.into_inner()).await?,
        ))
    }

    async fn answer_checkin(
        &self,
        req: Request<AnswerCheckinRequest>,
    ) -> Result<Response<AnswerCheckinResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            checkins::answer(&self.state, &caller, req.into_inner()).await?,
        ))
    }

    async fn list_checkins(
        &self,
        req: Request<ListCheckinsRequest>,
    ) -> Result<Response<ListCheckinsResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            checkins::list(&self.state, &caller, req.into_inner()).await?,
        ))
    }
}
