use tapline_proto::v1::streak_service_server::StreakService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::auth::Caller;
use crate::domain::validate;
use crate::error::Result;
use crate::streaks::{self, StreakAnswer, StreakJob, StreakOp};

impl Api {
    async fn streak_call(&self, caller: Caller, op: StreakOp) -> Result<StreakAnswer> {
        let job = StreakJob {
            caller,
            op,
            now: self.state.clock.now(),
        };
        self.state.writer.streak(job).await
    }
}

#[tonic::async_trait]
impl StreakService for Api {
    async fn get_streak(
        &self,
        req: Request<GetStreakRequest>,
    ) -> Result<Response<GetStreakResponse>, Status> {
        let caller = self.caller(&req).await?;
        let a = self.streak_call(caller, StreakOp::Get).await?;
        Ok(Response::new(GetStreakResponse {
            streak: Some(a.streak),
        }))
    }

    async fn get_streak_history(
        &self,
        req: Request<GetStreakHistoryRequest>,
    ) -> Result<Response<GetStreakHistoryResponse>, Status> {
        let caller = self.caller(&req).await?;
        let GetStreakHistoryRequest { year, month } = req.into_inner();
        let op = streaks::check_month(year, month)?;
        let a = self.streak_call(caller, op).await?;
        Ok(Response::new(GetStreakHistoryResponse { days: a.days }))
    }

    async fn schedule_pause(
        &self,
        req: Request<SchedulePauseRequest>,
    ) -> Result<Response<SchedulePauseResponse>, Status> {
        let caller = self.caller(&req).await?;
        let from = streaks::input_day("from_date", &req.get_ref().from_date)?;
        let to = streaks::input_day("to_date", &req.get_ref().to_date)?;
        let a = self
            .streak_call(caller, StreakOp::Pause { from, to })
            .await?;
        Ok(Response::new(SchedulePauseResponse { pause: a.pause }))
    }

    async fn cancel_pause(
        &self,
        req: Request<CancelPauseRequest>,
    ) -> Result<Response<CancelPauseResponse>, Status> {
        let caller = self.caller(&req).await?;
        let id = validate::id("pause_id", &req.get_ref().pause_id)?;
        self.streak_call(caller, StreakOp::Cancel { id }).await?;
        Ok(Response::new(CancelPauseResponse {}))
    }

    async fn set_calm_mode(
        &self,
        req: Request<SetCalmModeRequest>,
    ) -> Result<Response<SetCalmModeResponse>, Status> {
        let caller = self.caller(&req).await?;
        let a = self
            .streak_call(caller, StreakOp::Calm(req.get_ref().calm))
            .await?;
        Ok(Response::new(SetCalmModeResponse {
            streak: Some(a.streak),
        }))
    }
}
