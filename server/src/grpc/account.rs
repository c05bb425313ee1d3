use tapline_proto::v1::account_service_server::AccountService;
use tapline_proto::v1::*;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use super::Api;
use crate::accounts;
use crate::domain::validate;
use crate::leaving;
use crate::profile;

/// The pieces of an export as they are read.
pub type ExportStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<ExportMyDataResponse, Status>> + Send>,
>;

#[tonic::async_trait]
impl AccountService for Api {
    type ExportMyDataStream = ExportStream;

    async fn rename_device(
        &self,
        req: Request<RenameDeviceRequest>,
    ) -> Result<Response<RenameDeviceResponse>, Status> {
        let caller = self.caller(&req).await?;
        let device = validate::id("device_id", &req.get_ref().device_id)?;
        let name = validate::display_name("name", &req.get_ref().name)?;
        let renamed = self
            .write(move |tx| {
                Box::pin(async move { accounts::rename_device(tx, &caller, &device, &name).await })
            })
            .await?;
        Ok(Response::new(renamed))
    }

    async fn revoke_link_codes(
        &self,
        req: Request<RevokeLinkCodesRequest>,
    ) -> Result<Response<RevokeLinkCodesResponse>, Status> {
        let caller = self.caller(&req).await?;
        let now = self.state.clock.now();
        let n = self
            .write(move |tx| {
                Box::pin(async move {
                    accounts::revoke_codes(tx.conn(), &caller.account_id, "link", now).await
                })
            })
            .await?;
        Ok(Response::new(RevokeLinkCodesResponse {
            revoked: u32::try_from(n).unwrap_or(u32::MAX),
        }))
    }

    async fn export_my_data(
        &self,
        req: Request<ExportMyDataRequest>,
    ) -> Result<Response<ExportStream>, Status> {
        let caller = self.caller(&req).await?;
        let now = self.state.clock.now();
        let pieces = leaving::export(self.state.db.pool(), &caller, now).await?;
        let stream = tokio_stream::wrappers::ReceiverStream::new(pieces).map(|piece| {
            piece
                .map(|json| ExportMyDataResponse { json })
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn delete_account(
        &self,
        req: Request<DeleteAccountRequest>,
    ) -> Result<Response<DeleteAccountResponse>, Status> {
        let caller = self.caller(&req).await?;
        leaving::check_confirm(&req.get_ref().confirm)?;
        let now = self.state.clock.now();
        let gone = self
            .write(move |tx| {
                Box::pin(async move { leaving::delete_account(tx, &caller, now).await })
            })
            .await?;
        for device in &gone {
            self.state.tokens.forget_device(device);
        }
        Ok(Response::new(DeleteAccountResponse {}))
    }

    async fn create_account(
        &self,
        req: Request<CreateAccountRequest>,
    ) -> Result<Response<CreateAccountResponse>, Status> {
        let new = accounts::check_create(req.get_ref())?;
        let now = self.state.clock.now();
        let created = self
            .write(move |tx| Box::pin(accounts::create_account(tx, new, now)))
            .await?;
        Ok(Response::new(created))
    }

    async fn get_account(
        &self,
        req: Request<GetAccountRequest>,
    ) -> Result<Response<GetAccountResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            accounts::get_account(self.state.db.pool(), &caller).await?,
        ))
    }

    async fn update_profile(
        &self,
        req: Request<UpdateProfileRequest>,
    ) -> Result<Response<UpdateProfileResponse>, Status> {
        let caller = self.caller(&req).await?;
        let change = profile::check_profile(req.get_ref())?;
        let now = self.state.clock.now();
        let done = self
            .write(move |tx| {
                Box::pin(async move { profile::update_profile(tx, &caller, change, now).await })
            })
            .await?;
        Ok(Response::new(done))
    }

    async fn create_link_code(
        &self,
        req: Request<CreateLinkCodeRequest>,
    ) -> Result<Response<CreateLinkCodeResponse>, Status> {
        let caller = self.caller(&req).await?;
        let now = self.state.clock.now();
        let code = self
            .write(move |tx| {
                Box::pin(async move { accounts::create_link_code(tx, &caller, now).await })
            })
            .await?;
        Ok(Response::new(code))
    }

    async fn redeem_link_code(
        &self,
        req: Request<RedeemLinkCodeRequest>,
    ) -> Result<Response<RedeemLinkCodeResponse>, Status> {
        let keys = [format!("link:{}", self.client_addr(&req))];
        let now = self.state.clock.now();
        let linked = self
            .guess("too many link-code attempts", &keys, async {
                let device = accounts::check_device(req.get_ref().device.as_ref())?;
                let code = accounts::check_code("code", &req.get_ref().code)?;
                self.write(move |tx| {
                    Box::pin(
                        async move { accounts::redeem_link_code(tx, &code, device, now).await },
                    )
                })
                .await
            })
            .await?;
        Ok(Response::new(linked))
    }

    async fn list_devices(
        &self,
        req: Request<ListDevicesRequest>,
    ) -> Result<Response<ListDevicesResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            accounts::list_devices(self.state.db.pool(), &caller).await?,
        ))
    }

    async fn revoke_device(
        &self,
        req: Request<RevokeDeviceRequest>,
    ) -> Result<Response<RevokeDeviceResponse>, Status> {
        let caller = self.caller(&req).await?;
        let device = validate::id("device_id", &req.get_ref().device_id)?;
        let now = self.state.clock.now();
        let forget = device.clone();
        self.write(move |tx| {
            Box::pin(async move { accounts::revoke_device(tx, &caller, &device, now).await })
        })
        .await?;
        self.state.tokens.forget_device(&forget);
        Ok(Response::new(RevokeDeviceResponse {}))
    }
}
