//! Thin gRPC handlers: authenticate, call the use case, wrap the answer.

mod account;
mod checkins;
mod events;
mod pairing;
mod routines;
mod settings;
mod streaks;
mod taps;

use tonic::Request;

use crate::AppState;
use crate::auth::{Caller, authenticate};
use crate::error::Result;

/// Implements every `tapline.v1` service over the shared state.
#[derive(Debug, Clone)]
pub struct Api {
    state: AppState,
}

impl Api {
    /// Handlers over `state`.
    pub fn new(state: AppState) -> Self {
        Api { state }
    }

    async fn caller<T>(&self, req: &Request<T>) -> Result<Caller> {
        authenticate(&self.state, req).await
    }
}
