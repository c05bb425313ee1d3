use tapline_proto::v1::tap_service_server::TapService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::domain::taps::validate_send;
use crate::domain::validate;
use crate::error::Error;
use crate::receipts::ReceiptJob;
use crate::taps::{self, TapJob};

#[tonic::async_trait]
impl TapService for Api {
    async fn send_tap(
        &self,
        req: Request<SendTapRequest>,
    ) -> Result<Response<SendTapResponse>, Status> {
        let caller = self.caller(&req).await?;
        let new = validate_send(req.get_ref())?;
        let now = self.state.clock.now();
        if let Err(retry_after) = self.state.limits.taps.take(&caller.account_id, now) {
            self.state.metrics.refused("too many taps");
            // A retry of a stored tap answers with the first result, even when rate limited.
            let client_tap_id = new.client_tap_id.to_string();
            let pool = self.state.db.pool();
            return match taps::stored_answer(pool, &caller, &client_tap_id, now).await? {
                Some(first) => Ok(Response::new(first)),
                None => Err(Error::RateLimited {
                    what: "too many taps",
                    retry_after,
                }
                .into()),
            };
        }
        let account_id = caller.account_id.clone();
        let job = TapJob { caller, new, now };
        match self.state.writer.send_tap(job).await {
            Ok(resp) => Ok(Response::new(resp)),
            Err(e) => {
                // Nothing was sent (not paired, an outage): it does not count against the limit.
                self.state.limits.taps.give_back(&account_id);
                Err(e.into())
            }
        }
    }

    async fn report_tap(
        &self,
        req: Request<ReportTapRequest>,
    ) -> Result<Response<ReportTapResponse>, Status> {
        let caller = self.caller(&req).await?;
        let tap_id = validate::id("tap_id", &req.get_ref().tap_id)?;
        let kind = match ReceiptKind::try_from(req.get_ref().kind) {
            Ok(ReceiptKind::Unspecified) | Err(_) => {
                return Err(Error::invalid("kind", "must be delivered, felt or seen").into());
            }
            Ok(k) => k,
        };
        let job = ReceiptJob {
            caller,
            tap_id,
            kind,
            now: self.state.clock.now(),
        };
        self.state.writer.report(job).await?;
        Ok(Response::new(ReportTapResponse {}))
    }
}
