//! Thin gRPC handlers: authenticate, check the request, then read from the pool or hand the
//! write to the group commit ([`crate::commit::Writer`]), and wrap the answer.

mod account;
mod checkins;
mod events;
mod moments;
mod pairing;
mod push;
mod questions;
mod reconnect;
mod routines;
mod settings;
mod space;
mod streaks;
mod taps;
mod together;

use tonic::Request;

use crate::auth::{Caller, authenticate};
use std::future::Future;

use crate::error::{Error, Result};
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

    /// The client's address as the rate limits key it: through `--trusted-proxy` hops only.
    fn client_addr<T>(&self, req: &Request<T>) -> String {
        crate::proxy::client_of(req, &self.state.settings.trusted_proxies)
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }

    /// Runs a code redemption under the code-guessing limit of every key in `keys` (an
    /// address, an account): refused while any of them has used up its attempts. Only a
    /// failed guess counts; one that succeeds, or that fails on our side (database,
    /// shutdown), costs nothing. Guesses already in flight when the last attempt is used
    /// still finish, so a burst can overshoot by the guesses it had in flight.
    async fn guess<T>(
        &self,
        what: &'static str,
        keys: &[String],
        attempt: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let limiter = &self.state.limits.code_guesses;
        let now = self.state.clock.now();
        // Checked first, counted after: attempts in flight hold nothing, so many people
        // redeeming at once through one proxy are never refused for each other's successes.
        for key in keys {
            if let Err(retry_after) = limiter.check(key, now) {
                self.state.metrics.refused(what);
                return Err(Error::RateLimited { what, retry_after });
            }
        }
        let done = attempt.await;
        if matches!(&done, Err(e) if e.is_failed_guess()) {
            keys.iter().for_each(|k| limiter.spend(k, now));
        }
        done
    }
}
