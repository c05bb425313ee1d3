//! Thin gRPC handlers: authenticate, check the request, then read from the pool or hand the
//! write to the group commit ([`crate::commit::Writer`]), and wrap the answer.

mod account;
mod checkins;
mod events;
mod pairing;
mod push;
mod routines;
mod settings;
mod streaks;
mod taps;

use tonic::Request;

use crate::auth::{Caller, authenticate};
use crate::error::Result;
use crate::state::AppState;
use crate::txn::{TxFuture, WriteTx};

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
        authenticate(self.state.db.pool(), &self.state.tokens, req).await
    }

    /// Runs `f` in the group commit (see [`crate::commit::Writer::transact`]).
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut WriteTx) -> TxFuture<'a, T> + Send + 'static,
    {
        self.state.writer.transact(f).await
    }
}
