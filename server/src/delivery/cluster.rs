//! The doorbell across server instances on one PostgreSQL: a transaction that wrote inbox rows
//! sends one `NOTIFY` with the devices to ring (PostgreSQL delivers it only if and when the
//! transaction commits), and every other instance rings its own live streams (the sender has
//! handed the events to its own streams already, so it skips its own notifications). A lost
//! notification only means "read again": after the listener reconnects, every local stream is
//! rung.

use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::doorbell::Doorbell;
use crate::auth::TokenCache;
use crate::error::Result;
pub use crate::store::postgres::CHANNEL;

/// Device ids per notification (PostgreSQL's payload limit is 8000 bytes).
const IDS_PER_NOTIFY: usize = 150;

/// The doorbell notifications for `devices`, to send at commit: one per 150 devices
/// (PostgreSQL's payload limit). The cost of `NOTIFY` is the commit-time queue lock, taken
/// once per transaction however many notifications it holds. Each payload is
/// `INSTANCE/ID,ID,...`, `instance` being the sender ([`crate::db::Db::instance`]).
pub fn payloads(instance: &str, devices: &[&str]) -> Vec<String> {
    devices
        .chunks(IDS_PER_NOTIFY)
        .map(|c| format!("{instance}{FROM}{}", c.join(",")))
        .collect()
}

/// The notification that signs `device_id` out on every instance (its token forgotten, its
/// stream ended).
pub fn revoke_payload(device_id: &str) -> String {
    format!("{REVOKE}{device_id}")
}

/// Queues `payloads` on the group commit's general connection, sent at commit (PostgreSQL).
pub async fn notify_any(conn: &mut AnyConnection, payloads: &[String]) -> Result<()> {
    for p in payloads {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(p)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Between the sending instance and the device ids in a doorbell notification.
const FROM: char = '/';

/// The devices a doorbell notification rings, or `None` when this instance sent it (its own
/// streams were handed their events already). A payload with no sender rings its devices.
fn to_ring<'a>(payload: &'a str, me: &str) -> Option<impl Iterator<Item = &'a str>> {
    let ids = match payload.split_once(FROM) {
        Some((from, _)) if from == me => return None,
        Some((_, ids)) => ids,
        None => payload,
    };
    Some(ids.split(',').filter(|s| !s.is_empty()))
}

/// Prefix of a notification that signs a device out everywhere.
const REVOKE: &str = "revoke:";

/// What the listener needs: where to listen, who it is, and what to ring or forget.
#[derive(Clone)]
pub struct Listener {
    /// The database URL.
    pub url: String,
    /// This instance's id (its own notifications are skipped).
    pub instance: Arc<str>,
    /// Local live streams.
    pub doorbell: Doorbell,
    /// Local token cache.
    pub tokens: Arc<TokenCache>,
    /// Stops listening.
    pub shutdown: CancellationToken,
}

/// Starts listening for other instances' doorbells (before the server accepts connections, so
/// no doorbell is missed), then keeps listening in the background until shutdown.
pub async fn start(l: Listener) -> Result<()> {
    let listener = connect(&l.url).await?;
    tokio::spawn(listen(l, listener));
    Ok(())
}

async fn connect(url: &str) -> std::result::Result<PgListener, sqlx::Error> {
    let mut l = PgListener::connect(url).await?;
    l.listen(CHANNEL).await?;
    Ok(l)
}

async fn listen(l: Listener, mut listener: PgListener) {
    loop {
        loop {
            let next = tokio::select! {
                n = listener.try_recv() => n,
                _ = l.shutdown.cancelled() => return,
            };
            match next {
                Ok(Some(n)) if n.payload().starts_with(REVOKE) => {
                    let device = &n.payload()[REVOKE.len()..];
                    l.tokens.forget_device(device);
                    l.doorbell.revoke(device);
                }
                Ok(Some(n)) => {
                    if let Some(ids) = to_ring(n.payload(), &l.instance) {
                        let ids: Vec<String> = ids.map(str::to_owned).collect();
                        l.doorbell.ring(&ids);
                    }
                }
                // Reconnected underneath: notifications may have been lost.
                Ok(None) => {
                    l.tokens.clear();
                    l.doorbell.ring_all();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cluster doorbell: listener failed; reconnecting");
                    break;
                }
            }
        }
        listener = loop {
            if wait(&l.shutdown, Duration::from_millis(500)).await {
                return;
            }
            match connect(&l.url).await {
                Ok(x) => break x,
                Err(e) => tracing::warn!(error = %e, "cluster doorbell: cannot listen; retrying"),
            }
        };
        // Whatever was notified while we were away: everyone reads again, every token is
        // checked again.
        l.tokens.clear();
        l.doorbell.ring_all();
    }
}

/// Sleeps unless the server drains first; true when draining.
async fn wait(shutdown: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shutdown.cancelled() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_fit_postgres_and_name_their_sender() {
        let ids: Vec<String> = (0..151).map(|i| format!("{i:036}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let p = payloads("me", &ids);
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|p| p.len() < 8000 && p.starts_with("me/")));
        assert_eq!(to_ring(&p[1], "other").unwrap().count(), 1);
        assert_eq!(revoke_payload("d"), "revoke:d");
    }

    #[test]
    fn an_instance_skips_its_own_doorbells() {
        fn ring(payload: &str) -> Option<Vec<&str>> {
            to_ring(payload, "me").map(|ids| ids.collect())
        }
        assert_eq!(ring("me/a,b"), None);
        assert_eq!(ring("other/a,b"), Some(vec!["a", "b"]));
        assert_eq!(ring("a,b"), Some(vec!["a", "b"]));
    }
}
