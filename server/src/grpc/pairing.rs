use tapline_proto::v1::pairing_service_server::PairingService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::accounts::check_code;
use crate::pairing;

#[tonic::async_trait]
impl PairingService for Api {
    async fn create_invite(
        &self,
        req: Request<CreateInviteRequest>,
    ) -> Result<Response<CreateInviteResponse>, Status> {
        let caller = self.caller(&req).await?;
        let now = self.state.clock.now();
        let invite = self
            .write(move |tx| {
                Box::pin(async move { pairing::create_invite(tx, &caller, now).await })
            })
            .await?;
        Ok(Response::new(invite))
    }

    async fn revoke_invite(
        &self,
        req: Request<RevokeInviteRequest>,
    ) -> Result<Response<RevokeInviteResponse>, Status> {
        let caller = self.caller(&req).await?;
        let now = self.state.clock.now();
        let done = self
            .write(move |tx| {
                Box::pin(async move { pairing::revoke_invite(tx, &caller, now).await })
            })
            .await?;
        Ok(Response::new(done))
    }

    async fn accept_invite(
        &self,
        req: Request<AcceptInviteRequest>,
    ) -> Result<Response<AcceptInviteResponse>, Status> {
        let caller = self.caller(&req).await?;
        let now = self.state.clock.now();
        let keys = [
            format!("invite:{}", caller.account_id),
            format!("invite-from:{}", self.client_addr(&req)),
        ];
        let couple = self
            .guess("too many invite attempts", &keys, async {
                let code = check_code("code", &req.get_ref().code)?;
                self.write(move |tx| {
                    Box::pin(async move { pairing::accept_invite(tx, &caller, &code, now).await })
                })
                .await
            })
            .await?;
        Ok(Response::new(couple))
    }

    async fn get_couple(
        &self,
        req: Request<GetCoupleRequest>,
    ) -> Result<Response<GetCoupleResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            pairing::get_couple(self.state.db.pool(), &caller, self.state.clock.now()).await?,
        ))
    }

    async fn unpair(
        &self,
        req: Request<UnpairRequest>,
    ) -> Result<Response<UnpairResponse>, Status> {
        let caller = self.caller(&req).await?;
        let now = self.state.clock.now();
        self.write(move |tx| Box::pin(async move { pairing::unpair(tx, &caller, now).await }))
            .await?;
        Ok(Response::new(UnpairResponse {}))
    }
}
