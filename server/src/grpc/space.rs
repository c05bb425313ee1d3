use tapline_proto::v1::space_service_server::SpaceService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::error::Error;
use crate::space;

impl Api {
    /// Asks and answers share the taps limit: each buzzes the partner.
    pub(super) fn take_tap_allowance(&self, account_id: &str) -> Result<(), Status> {
        let now = self.state.clock.now();
        self.state
            .limits
            .taps
            .take(account_id, now)
            .map_err(|retry_after| {
                Error::RateLimited {
                    what: "too many taps and requests",
                    retry_after,
                }
                .into()
            })
    }
}

#[tonic::async_trait]
impl SpaceService for Api {
    async fn ask_for_space(
        &self,
        req: Request<AskForSpaceRequest>,
    ) -> Result<Response<AskForSpaceResponse>, Status> {
        let caller = self.caller(&req).await?;
        let ask = space::check_ask(req.get_ref())?;
        self.take_tap_allowance(&caller.account_id)?;
        let now = self.state.clock.now();
        let asked = self
            .write(move |tx| Box::pin(async move { space::ask(tx, &caller, ask, now).await }))
            .await?;
        Ok(Response::new(asked))
    }

    async fn answer_space(
        &self,
        req: Request<AnswerSpaceRequest>,
    ) -> Result<Response<AnswerSpaceResponse>, Status> {
        let caller = self.caller(&req).await?;
        let (id, answer) = space::check_answer(req.get_ref())?;
        self.take_tap_allowance(&caller.account_id)?;
        let now = self.state.clock.now();
        let answered = self
            .write(move |tx| {
                Box::pin(async move { space::answer(tx, &caller, &id, answer, now).await })
            })
            .await?;
        Ok(Response::new(answered))
    }

    async fn end_space(
        &self,
        req: Request<EndSpaceRequest>,
    ) -> Result<Response<EndSpaceResponse>, Status> {
        let caller = self.caller(&req).await?;
        let now = self.state.clock.now();
        let ended = self
            .write(move |tx| Box::pin(async move { space::end(tx, &caller, now).await }))
            .await?;
        Ok(Response::new(ended))
    }

    async fn get_space(
        &self,
        req: Request<GetSpaceRequest>,
    ) -> Result<Response<GetSpaceResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            space::get(self.state.db.pool(), &caller).await?,
        ))
    }
}
