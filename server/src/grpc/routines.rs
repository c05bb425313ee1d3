use tapline_proto::v1::routine_service_server::RoutineService;
use tapline_proto::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::routines;

#[tonic::async_trait]
impl RoutineService for Api {
    async fn create_routine(
        &self,
        req: Request<CreateRoutineRequest>,
    ) -> Result<Response<CreateRoutineResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            routines::create(&self.state, &caller, req.into_inner().spec).await?,
        ))
    }

    async fn update_routine(
        &self,
        req: Request<UpdateRoutineRequest>,
    ) -> Result<Response<UpdateRoutineResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(
            routines::update(&self.state, &caller, req.into_inner()).await?,
        ))
    }

    async fn delete_routine(
        &self,
        req: Request<DeleteRoutineRequest>,
    ) -> Result<Response<DeleteRoutineResponse>, Status> {
        let caller = self.caller(&req).await?;
        routines::delete(&self.state, &caller, &req.get_ref().routine_id).await?;
        Ok(Response::new(DeleteRoutineResponse {}))
    }

    async fn list_routines(
        &self,
        req: Request<ListRoutinesRequest>,
    ) -> Result<Response<ListRoutinesResponse>, Status> {
        let caller = self.caller(&req).await?;
        Ok(Response::new(routines::list(&self.state, &caller).await?))
    }
}
