use tapline_proto::v1::streak_service_server::StreakService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::streaks;

#[tonic::async_trait]
impl StreakService for Api {
    async fn get_streak(
        &self,
        req: Request<GetStreakRequest>,
    ) -> Result<Response<GetStreakResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            streaks::get_streak(&self.state, &caller).await?,
        ))
    }

    async fn get_streak_history(
        &self,
        req: Request<GetStreakHistoryRequest>,
    ) -> Result<Response<GetStreakHistoryResponse>, Status> {
        let caller = self.caller(&req).await?;
        let GetStreakHistoryRequest { year, month } = req.into_inner();
        Ok(Response::new(
            streaks::history(&self.state, &caller, year, month).await?,
        ))
    }

    async fn schedule_pause(
        &self,
        req: Request<SchedulePauseRequest>,
    ) -> Result<Response<SchedulePauseResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            streaks::schedule_pause(&self.state, &caller, req.into_inner()).await?,
        ))
    }

    async fn cancel_pause(
        &self,
        req: Request<CancelPauseRequest>,
    ) -> Result<Response<CancelPauseResponse>, Status> {
        let caller = self.caller(&req).await?;
        streaks::cancel_pause(&self.state, &caller, &req.get_ref().pause_id).await?;
        Ok(Response::new(CancelPauseResponse {}))
    }

    async fn set_calm_mode(
        &self,
        req: Request<SetCalmModeRequest>,
    ) -> Result<Response<SetCalmModeResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            streaks::set_calm(&self.state, &caller, req.get_ref().calm).await?,
        ))
    }
}
