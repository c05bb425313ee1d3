use tapline_proto::v1::moment_service_server::MomentService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::moments;

#[tonic::async_trait]
impl MomentService for Api {
    async fn keep_moment(
        &self,
        req: Request<KeepMomentRequest>,
    ) -> Result<Response<KeepMomentResponse>, Status> {
        let caller = self.caller(&req).await?;
        let source = moments::check_keep(req.get_ref())?;
        let now = self.state.clock.now();
        let done = self
            .write(move |tx| {
                Box::pin(async move { moments::keep(tx, &caller, &source, now).await })
            })
            .await?;
        Ok(Response::new(done))
    }

    async fn list_moments(
        &self,
        req: Request<ListMomentsRequest>,
    ) -> Result<Response<ListMomentsResponse>, Status> {
        let caller = self.caller(&req).await?;
        let (size, after) = moments::check_list(req.get_ref())?;
        Ok(Response::new(
            moments::list(self.state.db.pool(), &caller, size, after).await?,
        ))
    }

    async fn forget_moment(
        &self,
        req: Request<ForgetMomentRequest>,
    ) -> Result<Response<ForgetMomentResponse>, Status> {
        let caller = self.caller(&req).await?;
        let id = moments::check_moment(&req.get_ref().moment_id)?;
        let now = self.state.clock.now();
        let done = self
            .write(move |tx| Box::pin(async move { moments::forget(tx, &caller, &id, now).await }))
            .await?;
        Ok(Response::new(done))
    }

    async fn get_recap(
        &self,
        req: Request<GetRecapRequest>,
    ) -> Result<Response<GetRecapResponse>, Status> {
        let caller = self.caller(&req).await?;
        let last = moments::check_recap(req.get_ref())?;
        let now = self.state.clock.now();
        let recap = moments::recap(&self.state, &caller.account_id, last, now).await?;
        Ok(Response::new(GetRecapResponse { recap: Some(recap) }))
    }

    async fn set_recap_schedule(
        &self,
        req: Request<SetRecapScheduleRequest>,
    ) -> Result<Response<SetRecapScheduleResponse>, Status> {
        let caller = self.caller(&req).await?;
        let when = moments::check_schedule(req.get_ref())?;
        let now = self.state.clock.now();
        let done = self
            .write(move |tx| {
                Box::pin(async move { moments::set_schedule(tx, &caller, when, now).await })
            })
            .await?;
        Ok(Response::new(done))
    }

    async fn get_recap_schedule(
        &self,
        req: Request<GetRecapScheduleRequest>,
    ) -> Result<Response<GetRecapScheduleResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            moments::get_schedule(self.state.db.pool(), &caller).await?,
        ))
    }
}
