use tapline_proto::v1::tap_service_server::TapService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::taps;

#[tonic::async_trait]
impl TapService for Api {
    async fn send_tap(
        &self,
        req: Request<SendTapRequest>,
    ) -> Result<Response<SendTapResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            taps::send_tap(&self.state, &caller, req.into_inner()).await?,
        ))
    }

    async fn report_tap(
        &self,
        req: Request<ReportTapRequest>,
    ) -> Result<Response<ReportTapResponse>, Status> {
        let caller = self.caller(&req).await?;
        taps::report_tap(&self.state, &caller, req.into_inner()).await?;
        Ok(Response::new(ReportTapResponse {}))
    }
}
