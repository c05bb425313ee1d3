use tapline_proto::v1::settings_service_server::SettingsService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::accounts;

#[tonic::async_trait]
impl SettingsService for Api {
    async fn get_settings(
        &self,
        req: Request<GetSettingsRequest>,
    ) -> Result<Response<GetSettingsResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            accounts::get_settings(&self.state, &caller).await?,
        ))
    }

    async fn update_settings(
        &self,
        req: Request<UpdateSettingsRequest>,
    ) -> Result<Response<UpdateSettingsResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            accounts::update_settings(&self.state, &caller, req.into_inner()).await?,
        ))
    }
}
