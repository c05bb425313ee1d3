use tapline_proto::v1::settings_service_server::SettingsService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::profile;

#[tonic::async_trait]
impl SettingsService for Api {
    async fn get_settings(
        &self,
        req: Request<GetSettingsRequest>,
    ) -> Result<Response<GetSettingsResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            profile::get_settings(self.state.db.pool(), &caller).await?,
        ))
    }

    async fn update_settings(
        &self,
        req: Request<UpdateSettingsRequest>,
    ) -> Result<Response<UpdateSettingsResponse>, Status> {
        let caller = self.caller(&req).await?;
        let change = profile::check_settings(req.get_ref())?;
        let now = self.state.clock.now();
        let done = self
            .write(move |tx| {
                Box::pin(async move { profile::update_settings(tx, &caller, change, now).await })
            })
            .await?;
        Ok(Response::new(done))
    }
}
