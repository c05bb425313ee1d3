use tapline_proto::v1::pairing_service_server::PairingService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::pairing;

#[tonic::async_trait]
impl PairingService for Api {
    async fn create_invite(
        &self,
        req: Request<CreateInviteRequest>,
    ) -> Result<Response<CreateInviteResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            pairing::create_invite(&self.state, &caller).await?,
        ))
    }

    async fn accept_invite(
        &self,
        req: Request<AcceptInviteRequest>,
    ) -> Result<Response<AcceptInviteResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            pairing::accept_invite(&self.state, &caller, &req.get_ref().code).await?,
        ))
    }

    async fn get_couple(
        &self,
        req: Request<GetCoupleRequest>,
    ) -> Result<Response<GetCoupleResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            pairing::get_couple(&self.state, &caller).await?,
        ))
    }

    async fn unpair(
        &self,
        req: Request<UnpairRequest>,
    ) -> Result<Response<UnpairResponse>, Status> {
        let caller = self.caller(&req).await?;
        pairing::unpair(&self.state, &caller).await?;
        Ok(Response::new(UnpairResponse {}))
    }
}
