//! Events: subscriptions with a foreign listener, `sync_now` for push-woken watches, the
//! network-back hint and the no-network glance.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::TaplineClient;
use crate::engine::Delivery;
use crate::engine::intake::subscription_loop;
use crate::engine::runtime::{run, runtime};
use crate::error::TaplineError;
use crate::glance::{self, Glance};
use crate::model::*;
use crate::rituals;

/// Listens to a subscription. Called from one background thread, in order; an error (or an
/// exception in the app's code) is ignored and never ends the subscription.
#[uniffi::export(with_foreign)]
pub trait EventListener: Send + Sync {
    /// Something happened.
    fn on_event(&self, event: ClientEvent) -> Result<(), TaplineError>;
    /// The connection changed.
    fn on_connection_state(&self, state: ConnectionState) -> Result<(), TaplineError>;
}

/// A running subscription; cancelling or dropping it stops it.
#[derive(uniffi::Object)]
pub struct Subscription {
    cancel: CancellationToken,
}

#[uniffi::export]
impl Subscription {
    /// Stops the subscription (idempotent).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Whether it is still running.
    pub fn is_active(&self) -> bool {
        !self.cancel.is_cancelled()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl TaplineClient {
    /// Tells the core the network is back: queued sends and subscriptions retry at once.
    pub fn network_available(&self) {
        self.inner.network_available();
    }

    /// Starts delivering events and connection changes to `listener` until the returned
    /// subscription is cancelled or dropped. Reconnects by itself, stores each event and moves
    /// the cursor before acking it, and drops duplicates by event id.
    pub fn subscribe(&self, listener: Arc<dyn EventListener>) -> Arc<Subscription> {
        let cancel = self.inner.shutdown.child_token();
        let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
        self.inner.add_listener(tx.clone());
        // One thread calls the listener, in order, never under a lock.
        let spawned = std::thread::Builder::new()
            .name("tapline-listener".into())
            .spawn(move || {
                while let Some(d) = rx.blocking_recv() {
                    // An error or a panic in the app's listener is its own business: keep going.
                    let _ignored =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match d {
                            Delivery::Event(e) => listener.on_event(*e),
                            Delivery::State(s) => listener.on_connection_state(s),
                        }));
                }
            });
        if spawned.is_err() {
            cancel.cancel();
        }
        runtime().spawn(subscription_loop(
            Arc::downgrade(&self.inner),
            tx,
            cancel.clone(),
        ));
        Arc::new(Subscription { cancel })
    }

    /// Pulls pending events with unary calls (what a watch does when a push wakes it), stores
    /// them, acks them, and returns them; queued sends are retried too.
    pub async fn sync_now(&self) -> Result<Vec<ClientEvent>, TaplineError> {
        let inner = self.inner.clone();
        run(async move { inner.sync().await }).await
    }

    /// A no-network snapshot for complications and widgets.
    pub fn glance(&self) -> Glance {
        let store = &self.inner.store;
        let creds = store.credentials().ok().flatten();
        let me = creds.as_ref().map_or("", |c| c.account_id.as_str());
        let couple = store.couple().ok().flatten();
        let streak = store.streak().ok().flatten();
        let received = store.received(20).unwrap_or_default();
        let checkins = rituals::stored_checkins(store, me, true).unwrap_or_default();
        let spaces = store.spaces().unwrap_or_default();
        let read = |s: Option<&tapline_proto::v1::Space>| {
            s.map(|s| crate::model::SpaceInfo::from_wire(s, me))
        };
        glance::compute(
            glance::Inputs {
                signed_in: creds.is_some(),
                my_time_zone: creds.as_ref().map(|c| c.time_zone.as_str()),
                couple: couple.as_ref(),
                received: &received,
                unsent_count: store.unsent_count().unwrap_or(0),
                streak: streak.as_ref(),
                checkins: &checkins,
                spaces: (read(spaces.mine.as_ref()), read(spaces.partners.as_ref())),
                together: crate::model::TogetherState::from_wire(
                    &store.together().unwrap_or_default(),
                    me,
                ),
                questions: store
                    .question_progress()
                    .ok()
                    .flatten()
                    .map(|p| crate::model::QuestionProgress::from_wire(&p, me)),
                reconnect: store
                    .reconnect()
                    .ok()
                    .flatten()
                    .map(|p| crate::model::ReconnectInfo::from_wire(&p, me)),
                recap_unread: store
                    .unread_recap()
                    .ok()
                    .flatten()
                    .map(|r| glance::RecapGlance::from_wire(&r)),
            },
            SystemTime::now(),
        )
    }
}
