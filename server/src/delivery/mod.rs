//! Durable per-device delivery: the inbox, the doorbell and the event stream.
//!
//! Every event is written into the inbox of each recipient device in the same transaction as
//! the change that caused it, numbered by the device's own gap-free sequence (`devices.next_seq`,
//! bumped inside that transaction). Devices are told only after commit (see [`doorbell`]).

pub mod cluster;
pub mod doorbell;
pub mod stream;

use chrono::{DateTime, Utc};
use prost::Message;
use sqlx::{AnyConnection, Row};
use tapline_proto::v1::{Event, event::Payload};
use uuid::Uuid;

use crate::db::{Db, timestamp_us, to_us};
use crate::error::{Error, Result};

/// Largest batch read from an inbox at once.
pub const MAX_BATCH: u32 = 500;

/// A new event (not yet numbered) with a fresh id.
pub fn new_event(payload: Payload, now: DateTime<Utc>) -> Event {
    Event {
        seq: 0,
        event_id: Uuid::now_v7().to_string(),
        created_at: Some(timestamp_us(to_us(now))),
        payload: Some(payload),
    }
}

/// The active (not signed-out) devices of an account.
pub async fn account_devices(conn: &mut AnyConnection, account_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT id FROM devices WHERE account_id = $1 AND revoked_at_us IS NULL ORDER BY id",
    )
    .bind(account_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("id")?))
        .collect()
}

/// Appends each `(device, event)` to that device's inbox and returns the devices to ring after
/// commit. Devices are locked in id order so concurrent writers cannot deadlock on PostgreSQL.
pub async fn append_all(
    conn: &mut AnyConnection,
    mut items: Vec<(String, Event)>,
) -> Result<Vec<String>> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let mut rung = Vec::with_capacity(items.len());
    for (device_id, event) in items {
        let seq: i64 = sqlx::query(
            "UPDATE devices SET next_seq = next_seq + 1 WHERE id = $1 RETURNING next_seq",
        )
        .bind(&device_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get("next_seq")?;
        let created_at_us = event
            .created_at
            .as_ref()
            .map_or(0, |t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000);
        sqlx::query(
            "INSERT INTO inbox (device_id, seq, event_id, payload, created_at_us) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&device_id)
        .bind(seq)
        .bind(&event.event_id)
        .bind(event.encode_to_vec())
        .bind(created_at_us)
        .execute(&mut *conn)
        .await?;
        rung.push(device_id);
    }
    rung.dedup();
    if !rung.is_empty() && conn.backend_name() == "PostgreSQL" {
        cluster::notify(conn, &rung).await?;
    }
    Ok(rung)
}

/// Appends `items` to their devices' inboxes, commits, and only then rings the doorbells: the
/// end of every transaction that tells devices something.
pub async fn commit(
    state: &crate::AppState,
    mut tx: crate::db::Tx,
    items: Vec<(String, Event)>,
) -> Result<()> {
    let ring = append_all(&mut tx, items).await?;
    tx.commit().await?;
    state.doorbell.ring(&ring);
    Ok(())
}

/// The same event for every device in `devices`.
pub fn to_each(devices: &[String], event: &Event) -> Vec<(String, Event)> {
    devices.iter().map(|d| (d.clone(), event.clone())).collect()
}

/// A device's cursor state: the last acknowledged and the last allocated sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Everything up to here was acknowledged and may be gone.
    pub acked_seq: u64,
    /// The newest event's sequence number.
    pub next_seq: u64,
}

/// Reads a device's cursor state.
pub async fn cursor(db: &Db, device_id: &str) -> Result<Cursor> {
    let row = sqlx::query("SELECT acked_seq, next_seq FROM devices WHERE id = $1")
        .bind(device_id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(Error::Unauthenticated)?;
    Ok(Cursor {
        acked_seq: row.try_get::<i64, _>("acked_seq")? as u64,
        next_seq: row.try_get::<i64, _>("next_seq")? as u64,
    })
}

/// Up to `limit` events of `device_id` after `after`, in order.
pub async fn read_after(db: &Db, device_id: &str, after: u64, limit: u32) -> Result<Vec<Event>> {
    let rows = sqlx::query(
        "SELECT seq, payload FROM inbox WHERE device_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(device_id)
    .bind(i64::try_from(after).unwrap_or(i64::MAX))
    .bind(i64::from(limit))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let seq: i64 = row.try_get("seq")?;
            let payload: Vec<u8> = row.try_get("payload")?;
            let mut event = Event::decode(payload.as_slice())
                .map_err(|e| Error::Corrupt(format!("inbox row {device_id}/{seq}: {e}")))?;
            event.seq = seq as u64;
            Ok(event)
        })
        .collect()
}

/// Acknowledges everything up to `seq` and forgets it. Acking an older seq again is a no-op;
/// acking beyond the newest event is refused.
pub async fn ack(db: &Db, device_id: &str, seq: u64) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let row = sqlx::query("SELECT acked_seq, next_seq FROM devices WHERE id = $1")
        .bind(device_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::Unauthenticated)?;
    let acked = row.try_get::<i64, _>("acked_seq")? as u64;
    let next = row.try_get::<i64, _>("next_seq")? as u64;
    if seq > next {
        return Err(Error::invalid(
            "seq",
            format!("must not be beyond the newest event ({next})"),
        ));
    }
    if seq <= acked {
        return Ok(());
    }
    let seq = seq as i64;
    sqlx::query("UPDATE devices SET acked_seq = $1 WHERE id = $2")
        .bind(seq)
        .bind(device_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM inbox WHERE device_id = $1 AND seq <= $2")
        .bind(device_id)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
