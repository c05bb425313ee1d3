use tapline_proto::v1::event_service_server::EventService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::delivery::acks::AckJob;
use crate::delivery::stream::{self, EventStream};
use crate::delivery::{self, MAX_BATCH};
use crate::error::Error;

/// Events returned by a fetch when the client asks for no particular number.
const DEFAULT_FETCH: u32 = 100;

#[tonic::async_trait]
impl EventService for Api {
    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        req: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let caller = self.caller(&req).await?;
        if self.state.shutdown.is_cancelled() {
            return Err(Error::ShuttingDown.into());
        }
        // Live before the first read: wake-ups from here on wait for this stream's ack.
        crate::presence::opened(&self.state, &caller.device_id).await?;
        Ok(Response::new(stream::open(
            self.state.streams(),
            caller,
            req.get_ref().after_seq,
        )))
    }

    async fn fetch_events(
        &self,
        req: Request<FetchEventsRequest>,
    ) -> Result<Response<FetchEventsResponse>, Status> {
        let caller = self.caller(&req).await?;
        let FetchEventsRequest { after_seq, limit } = req.into_inner();
        let limit = match limit {
            0 => DEFAULT_FETCH,
            1..=MAX_BATCH => limit,
            _ => return Err(Error::invalid("limit", format!("must be 0-{MAX_BATCH}")).into()),
        };
        let pool = self.state.db.pool();
        let cursor = delivery::cursor(pool, &caller.device_id).await?;
        let (after_seq, reset) = delivery::resume(cursor, after_seq, self.state.clock.now());
        let mut events: Vec<Event> = reset.into_iter().collect();
        // One more than asked tells whether more are waiting.
        let mut batch = delivery::read_after(pool, &caller.device_id, after_seq, limit + 1).await?;
        let has_more = batch.len() as u32 > limit;
        batch.truncate(limit as usize);
        events.extend(batch);
        Ok(Response::new(FetchEventsResponse { events, has_more }))
    }

    async fn ack_events(
        &self,
        req: Request<AckEventsRequest>,
    ) -> Result<Response<AckEventsResponse>, Status> {
        let caller = self.caller(&req).await?;
        let job = AckJob {
            device_id: caller.device_id,
            seq: req.get_ref().seq,
            now: self.state.clock.now(),
        };
        self.state.writer.ack(job).await?;
        Ok(Response::new(AckEventsResponse {}))
    }
}
