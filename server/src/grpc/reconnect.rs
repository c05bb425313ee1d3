use tapline_proto::v1::reconnect_service_server::ReconnectService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::reconnect;

#[tonic::async_trait]
impl ReconnectService for Api {
    async fn start_reconnect(
        &self,
        req: Request<StartReconnectRequest>,
    ) -> Result<Response<StartReconnectResponse>, Status> {
        let caller = self.caller(&req).await?;
        let time = reconnect::check_start(req.get_ref())?;
        let now = self.state.clock.now();
        let done = self
            .write(move |tx| {
                Box::pin(async move { reconnect::start(tx, &caller, time, now).await })
            })
            .await?;
        Ok(Response::new(done))
    }

    async fn accept_reconnect(
        &self,
        req: Request<AcceptReconnectRequest>,
    ) -> Result<Response<AcceptReconnectResponse>, Status> {
        let caller = self.caller(&req).await?;
        let id = reconnect::check_plan(&req.get_ref().plan_id)?;
        let now = self.state.clock.now();
        let done = self
            .write(move |tx| {
                Box::pin(async move { reconnect::accept(tx, &caller, &id, now).await })
            })
            .await?;
        Ok(Response::new(done))
    }

    async fn pause_reconnect(
        &self,
        req: Request<PauseReconnectRequest>,
    ) -> Result<Response<PauseReconnectResponse>, Status> {
        let caller = self.caller(&req).await?;
        let id = reconnect::check_plan(&req.get_ref().plan_id)?;
        let paused = req.get_ref().paused;
        let now = self.state.clock.now();
        let done = self
            .write(move |tx| {
                Box::pin(async move { reconnect::pause(tx, &caller, &id, paused, now).await })
            })
            .await?;
        Ok(Response::new(done))
    }

    async fn end_reconnect(
        &self,
        req: Request<EndReconnectRequest>,
    ) -> Result<Response<EndReconnectResponse>, Status> {
        let caller = self.caller(&req).await?;
        let id = reconnect::check_plan(&req.get_ref().plan_id)?;
        let now = self.state.clock.now();
        let done = self
            .write(move |tx| Box::pin(async move { reconnect::end(tx, &caller, &id, now).await }))
            .await?;
        Ok(Response::new(done))
    }

    async fn mark_reconnect_step(
        &self,
        req: Request<MarkReconnectStepRequest>,
    ) -> Result<Response<MarkReconnectStepResponse>, Status> {
        let caller = self.caller(&req).await?;
        let id = reconnect::check_plan(&req.get_ref().plan_id)?;
        let number = reconnect::check_number(req.get_ref().number)?;
        let now = self.state.clock.now();
        let done = self
            .write(move |tx| {
                Box::pin(async move { reconnect::mark(tx, &caller, &id, number, now).await })
            })
            .await?;
        Ok(Response::new(done))
    }

    async fn get_reconnect(
        &self,
        req: Request<GetReconnectRequest>,
    ) -> Result<Response<GetReconnectResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            reconnect::get(self.state.db.pool(), &caller).await?,
        ))
    }
}
