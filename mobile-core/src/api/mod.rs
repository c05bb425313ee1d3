//! The exported API: the [`TaplineClient`] object the apps hold. Each file is one area of it
//! and stays thin: it checks arguments, calls the server or the engine, and converts.

mod account;
mod couple;
mod events;
mod moments;
mod push;
mod questions;
mod reconnect;
mod rituals;
mod space;
mod taps;
mod together;

use std::sync::Arc;

use crate::engine::Inner;
use crate::engine::backoff::RealTime;
use crate::error::TaplineError;
use crate::model::ClientConfig;
use crate::transport::HttpTransport;

pub use events::{EventListener, Subscription};

/// The Tapline client of one device.
#[derive(uniffi::Object)]
pub struct TaplineClient {
    pub(crate) inner: Arc<Inner>,
}

#[uniffi::export]
impl TaplineClient {
    /// A client on the native transport (phones, desktop, tests).
    #[uniffi::constructor]
    pub fn new(config: ClientConfig) -> Result<Arc<Self>, TaplineError> {
        Ok(Arc::new(TaplineClient {
            inner: Inner::open(config, None, Arc::new(RealTime))?,
        }))
    }

    /// A client that speaks gRPC-Web through the host app's HTTP stack (watches). Live
    /// subscriptions poll every `poll_interval_ms`; `sync_now` pulls on a push.
    #[uniffi::constructor]
    pub fn with_http_transport(
        config: ClientConfig,
        transport: Arc<dyn HttpTransport>,
    ) -> Result<Arc<Self>, TaplineError> {
        Ok(Arc::new(TaplineClient {
            inner: Inner::open(config, Some(transport), Arc::new(RealTime))?,
        }))
    }
}
