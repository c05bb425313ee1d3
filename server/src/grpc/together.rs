use tapline_proto::v1::together_service_server::TogetherService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::together;

#[tonic::async_trait]
impl TogetherService for Api {
    async fn start_together(
        &self,
        req: Request<StartTogetherRequest>,
    ) -> Result<Response<StartTogetherResponse>, Status> {
        let caller = self.caller(&req).await?;
        let (client_id, minutes) = together::check_start(req.get_ref())?;
        self.take_tap_allowance(&caller.account_id)?;
        let now = self.state.clock.now();
        let started = self
            .write(move |tx| {
                Box::pin(async move { together::start(tx, &caller, client_id, minutes, now).await })
            })
            .await?;
        Ok(Response::new(started))
    }

    async fn confirm_together(
        &self,
        req: Request<ConfirmTogetherRequest>,
    ) -> Result<Response<ConfirmTogetherResponse>, Status> {
        let caller = self.caller(&req).await?;
        let id = together::check_confirm(req.get_ref())?;
        let now = self.state.clock.now();
        let confirmed = self
            .write(move |tx| {
                Box::pin(async move { together::confirm(tx, &caller, &id, now).await })
            })
            .await?;
        Ok(Response::new(confirmed))
    }

    async fn end_together(
        &self,
        req: Request<EndTogetherRequest>,
    ) -> Result<Response<EndTogetherResponse>, Status> {
        let caller = self.caller(&req).await?;
        let now = self.state.clock.now();
        let ended = self
            .write(move |tx| Box::pin(async move { together::end(tx, &caller, now).await }))
            .await?;
        Ok(Response::new(ended))
    }

    async fn get_together(
        &self,
        req: Request<GetTogetherRequest>,
    ) -> Result<Response<GetTogetherResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            together::get(self.state.db.pool(), &caller).await?,
        ))
    }

    async fn set_meeting(
        &self,
        req: Request<SetMeetingRequest>,
    ) -> Result<Response<SetMeetingResponse>, Status> {
        let caller = self.caller(&req).await?;
        self.take_tap_allowance(&caller.account_id)?;
        let now = self.state.clock.now();
        let body = req.into_inner();
        let set = self
            .write(move |tx| {
                Box::pin(async move { together::set_meeting(tx, &caller, body, now).await })
            })
            .await?;
        Ok(Response::new(set))
    }

    async fn clear_meeting(
        &self,
        req: Request<ClearMeetingRequest>,
    ) -> Result<Response<ClearMeetingResponse>, Status> {
        let caller = self.caller(&req).await?;
        let now = self.state.clock.now();
        let cleared = self
            .write(move |tx| {
                Box::pin(async move { together::clear_meeting(tx, &caller, now).await })
            })
            .await?;
        Ok(Response::new(cleared))
    }
}
