//! The doorbell across server instances on one PostgreSQL: a transaction that wrote inbox rows
//! sends one `NOTIFY` with the devices to ring (PostgreSQL delivers it only if and when the
//! transaction commits), and every other instance rings its own live streams (the sender has
//! handed the events to its own streams already, so it skips its own notifications). A lost
//! notification only means "read again": after the listener reconnects, every local stream is
//! rung.

use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::postgres::PgListener;

use crate::AppState;
use crate::error::Result;
use crate::sql::{Conn, Param};

/// The channel instances listen on.
pub const CHANNEL: &str = "tapline_doorbell";
/// Device ids per notification (PostgreSQL's payload limit is 8000 bytes).
const IDS_PER_NOTIFY: usize = 150;

/// Queues the doorbell for `devices`, sent at commit: one statement per committed batch, one
/// notification per 150 devices (PostgreSQL's payload limit). The cost of `NOTIFY` is the
/// commit-time queue lock, taken once per transaction however many notifications it holds.
/// Each payload is `INSTANCE/ID,ID,...`, `instance` being the sender ([`crate::db::Db::instance`]).
pub async fn notify(conn: &mut Conn<'_>, instance: &str, devices: &[&str]) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    let chunks: Vec<String> = devices
        .chunks(IDS_PER_NOTIFY)
        .map(|c| format!("{instance}{FROM}{}", c.join(",")))
        .collect();
    let calls: Vec<String> = (0..chunks.len())
        .map(|i| format!("pg_notify($1, ${})", i + 2))
        .collect();
    let sql = format!("SELECT {}", calls.join(", "));
    let mut params = vec![Param::Text(CHANNEL)];
    params.extend(chunks.iter().map(|c| Param::Text(c)));
    conn.execute(&sql, &params).await?;
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

/// On PostgreSQL, tells the other instances at commit that `device_id` was signed out, so they
/// forget its token and end its stream at once. Nothing to do on SQLite (one instance).
pub async fn revoke(conn: &mut AnyConnection, device_id: &str) -> Result<()> {
    if crate::db::is_sqlite(conn) {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(format!("{REVOKE}{device_id}"))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Starts listening for other instances' doorbells (before the server accepts connections, so
/// no doorbell is missed), then keeps listening in the background until shutdown.
pub async fn start(state: AppState) -> Result<()> {
    let listener = connect(&state).await?;
    tokio::spawn(listen(state, listener));
    Ok(())
}

async fn connect(state: &AppState) -> std::result::Result<PgListener, sqlx::Error> {
    let mut l = PgListener::connect(state.db.url()).await?;
    l.listen(CHANNEL).await?;
    Ok(l)
}

async fn listen(state: AppState, mut listener: PgListener) {
    loop {
        loop {
            let next = tokio::select! {
                n = listener.try_recv() => n,
                _ = state.shutdown.cancelled() => return,
            };
            match next {
                Ok(Some(n)) if n.payload().starts_with(REVOKE) => {
                    let device = &n.payload()[REVOKE.len()..];
                    state.tokens.forget_device(device);
                    state.doorbell.revoke(device);
                }
                Ok(Some(n)) => {
                    if let Some(ids) = to_ring(n.payload(), state.db.instance()) {
                        let ids: Vec<String> = ids.map(str::to_owned).collect();
                        state.doorbell.ring(&ids);
                    }
                }
                // Reconnected underneath: notifications may have been lost.
                Ok(None) => {
                    state.tokens.clear();
                    state.doorbell.ring_all();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cluster doorbell: listener failed; reconnecting");
                    break;
                }
            }
        }
        listener = loop {
            if wait(&state, Duration::from_millis(500)).await {
                return;
            }
            match connect(&state).await {
                Ok(l) => break l,
                Err(e) => tracing::warn!(error = %e, "cluster doorbell: cannot listen; retrying"),
            }
        };
        // Whatever was notified while we were away: everyone reads again, every token is
        // checked again.
        state.tokens.clear();
        state.doorbell.ring_all();
    }
}

/// Sleeps unless the server drains first; true when draining.
async fn wait(state: &AppState, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = state.shutdown.cancelled() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
