//! Which devices have a live event stream, written to the database as a lease
//! (`live_streams`) so every instance's push worker knows: a wake-up for a live device
//! waits for the stream's ack (which cancels it) instead of being pushed. A stream marks its
//! device live before it starts; this instance renews its devices' leases every [`RENEW`] and
//! clears them when their streams close. A server without push providers keeps no marks (the
//! instances on one database share their push configuration). A crashed instance's leases run out after [`LEASE`],
//! and its devices' pending wake-ups are pushed then.

use std::collections::HashSet;
use std::time::Duration;

use crate::commit::Writer;
use crate::db::to_us;
use crate::error::Result;
use crate::state::AppState;

/// How long a live mark holds without renewal.
pub const LEASE: Duration = Duration::from_secs(60);
/// How often this instance renews its live devices' marks.
pub const RENEW: Duration = Duration::from_secs(20);
/// Devices written per transaction.
const CHUNK: usize = 500;

/// Marks `devices` live until `until_us` (0 clears them), in id order (two instances renewing
/// the same devices never wait on each other in a cycle).
pub async fn mark(writer: &Writer, mut devices: Vec<String>, until_us: i64) -> Result<()> {
    devices.sort();
    for chunk in devices.chunks(CHUNK) {
        let chunk = chunk.to_vec();
        writer
            .transact(move |tx| {
                Box::pin(async move {
                    let conn = tx.conn();
                    for d in &chunk {
                        sqlx::query(
                            "INSERT INTO live_streams (device_id, live_until_us) VALUES ($1, $2) \
                             ON CONFLICT (device_id) DO UPDATE SET live_until_us = excluded.live_until_us",
                        )
                        .bind(d)
                        .bind(until_us)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .await?;
    }
    Ok(())
}

/// Marks a device live as its stream opens (before any event is read). Without a push
/// provider nothing reads the marks, and none is written.
pub async fn opened(state: &AppState, device_id: &str) -> Result<()> {
    if !state.push.any() {
        return Ok(());
    }
    let until = to_us(state.clock.now()) + LEASE.as_micros() as i64;
    mark(&state.writer, vec![device_id.to_owned()], until).await
}

/// Renews this instance's live devices and clears the closed ones, until the server drains;
/// then clears them all.
pub async fn run(state: AppState) {
    let mut written: HashSet<String> = HashSet::new();
    let mut renew = tokio::time::interval(RENEW);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let full = tokio::select! {
            biased;
            _ = state.shutdown.cancelled() => {
                let _ = mark(&state.writer, written.into_iter().collect(), 0).await;
                return;
            }
            _ = renew.tick() => true,
            _ = state.doorbell.streams_changed() => false,
        };
        let live = state.doorbell.live_devices();
        let closed: Vec<String> = written.difference(&live).cloned().collect();
        let until = to_us(state.clock.now()) + LEASE.as_micros() as i64;
        // Opened streams marked themselves; a full round renews every live one.
        let renewed: Vec<String> = if full {
            live.iter().cloned().collect()
        } else {
            live.difference(&written).cloned().collect()
        };
        let done = async {
            mark(&state.writer, closed, 0).await?;
            mark(&state.writer, renewed, until).await
        };
        match done.await {
            Ok(()) => written = live,
            Err(e) => tracing::warn!(error = %e, "live-stream marks not written; retrying"),
        }
    }
}
