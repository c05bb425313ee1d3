use tapline_proto::v1::account_service_server::AccountService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::accounts;

#[tonic::async_trait]
impl AccountService for Api {
    async fn create_account(
        &self,
        req: Request<CreateAccountRequest>,
    ) -> Result<Response<CreateAccountResponse>, Status> {
        Ok(Response::new(
            accounts::create_account(&self.state, req.into_inner()).await?,
        ))
    }

    async fn get_account(
        &self,
        req: Request<GetAccountRequest>,
    ) -> Result<Response<GetAccountResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            accounts::get_account(&self.state, &caller).await?,
        ))
    }

    async fn update_profile(
        &self,
        req: Request<UpdateProfileRequest>,
    ) -> Result<Response<UpdateProfileResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            accounts::update_profile(&self.state, &caller, req.into_inner()).await?,
        ))
    }

    async fn create_link_code(
        &self,
        req: Request<CreateLinkCodeRequest>,
    ) -> Result<Response<CreateLinkCodeResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            accounts::create_link_code(&self.state, &caller).await?,
        ))
    }

    async fn redeem_link_code(
        &self,
        req: Request<RedeemLinkCodeRequest>,
    ) -> Result<Response<RedeemLinkCodeResponse>, Status> {
        let peer = req
            .remote_addr()
            .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
        Ok(Response::new(
            accounts::redeem_link_code(&self.state, &peer, req.into_inner()).await?,
        ))
    }

    async fn list_devices(
        &self,
        req: Request<ListDevicesRequest>,
    ) -> Result<Response<ListDevicesResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            accounts::list_devices(&self.state, &caller).await?,
        ))
    }

    async fn revoke_device(
        &self,
        req: Request<RevokeDeviceRequest>,
    ) -> Result<Response<RevokeDeviceResponse>, Status> {
        let caller = self.caller(&req).await?;
        accounts::revoke_device(&self.state, &caller, &req.get_ref().device_id).await?;
        Ok(Response::new(RevokeDeviceResponse {}))
    }
}
