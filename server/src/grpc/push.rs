use tapline_proto::v1::push_service_server::PushService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::domain::push::{self as rules, EndpointPolicy};
use crate::push;

#[tonic::async_trait]
impl PushService for Api {
    async fn register_push(
        &self,
        req: Request<RegisterPushRequest>,
    ) -> Result<Response<RegisterPushResponse>, Status> {
        let caller = self.caller(&req).await?;
        let policy = EndpointPolicy {
            allow_private: self.state.settings.push_allow_private_endpoints,
        };
        let target = rules::validate(req.get_ref(), policy)?;
        let now = self.state.clock.now();
        let done = self
            .write(move |tx| {
                Box::pin(async move { push::register(tx, &caller, target, now).await })
            })
            .await?;
        Ok(Response::new(done))
    }

    async fn remove_push(
        &self,
        req: Request<RemovePushRequest>,
    ) -> Result<Response<RemovePushResponse>, Status> {
        let caller = self.caller(&req).await?;
        let provider = req.get_ref().provider;
        let done = self
            .write(move |tx| Box::pin(async move { push::remove(tx, &caller, provider).await }))
            .await?;
        Ok(Response::new(done))
    }

    async fn get_push_settings(
        &self,
        req: Request<GetPushSettingsRequest>,
    ) -> Result<Response<GetPushSettingsResponse>, Status> {
        self.caller(&req).await?;
        let p = &self.state.push;
        let providers = [
            (p.apns.is_some(), PushProvider::Apns),
            (p.fcm.is_some(), PushProvider::Fcm),
            (p.web_push.is_some(), PushProvider::WebPush),
        ];
        Ok(Response::new(GetPushSettingsResponse {
            providers: providers
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, p)| *p as i32)
                .collect(),
            vapid_public_key: self
                .state
                .web_push
                .as_ref()
                .map(|w| w.public_key())
                .unwrap_or_default(),
        }))
    }

    async fn list_push_targets(
        &self,
        req: Request<ListPushTargetsRequest>,
    ) -> Result<Response<ListPushTargetsResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            push::list(self.state.db.pool(), &caller).await?,
        ))
    }
}
