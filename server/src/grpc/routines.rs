use tapline_proto::v1::routine_service_server::RoutineService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::domain::validate;
use crate::routines;

#[tonic::async_trait]
impl RoutineService for Api {
    async fn create_routine(
        &self,
        req: Request<CreateRoutineRequest>,
    ) -> Result<Response<CreateRoutineResponse>, Status> {
        let caller = self.caller(&req).await?;
        let spec = routines::check_spec(req.into_inner().spec)?;
        let now = self.state.clock.now();
        let created = self
            .write(move |tx| {
                Box::pin(async move { routines::create(tx, &caller, spec, now).await })
            })
            .await?;
        Ok(Response::new(created))
    }

    async fn update_routine(
        &self,
        req: Request<UpdateRoutineRequest>,
    ) -> Result<Response<UpdateRoutineResponse>, Status> {
        let caller = self.caller(&req).await?;
        let req = req.into_inner();
        let id = validate::id("routine_id", &req.routine_id)?;
        let spec = routines::check_spec(req.spec)?;
        let now = self.state.clock.now();
        let updated = self
            .write(move |tx| {
                Box::pin(async move { routines::update(tx, &caller, &id, spec, now).await })
            })
            .await?;
        Ok(Response::new(updated))
    }

    async fn delete_routine(
        &self,
        req: Request<DeleteRoutineRequest>,
    ) -> Result<Response<DeleteRoutineResponse>, Status> {
        let caller = self.caller(&req).await?;
        let id = validate::id("routine_id", &req.get_ref().routine_id)?;
        let now = self.state.clock.now();
        self.write(move |tx| {
            Box::pin(async move { routines::delete(tx, &caller, &id, now).await })
        })
        .await?;
        Ok(Response::new(DeleteRoutineResponse {}))
    }

    async fn list_routines(
        &self,
        req: Request<ListRoutinesRequest>,
    ) -> Result<Response<ListRoutinesResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            routines::list(self.state.db.pool(), &caller).await?,
        ))
    }
}
