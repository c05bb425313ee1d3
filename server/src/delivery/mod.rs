//! Durable per-device delivery: the inbox, the doorbell and the event stream.
//!
//! Every event is written into the inbox of each recipient device in the same transaction as
//! the change that caused it, numbered by the device's own gap-free sequence (`devices.next_seq`,
//! bumped inside that transaction). Devices are told only after commit (see [`doorbell`]).

pub mod cluster;
pub mod doorbell;
pub mod stream;
pub mod writer;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use prost::Message;
use sqlx::{AnyConnection, Row};
use tapline_proto::v1::{Event, event::Payload};
use uuid::Uuid;

use crate::db::{self, Db, timestamp_us, to_us};
use crate::error::{Error, Result};
use crate::sql::{Conn, Param, PerRow, Val, per_row, pg_id_numbers, pg_rows};

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
    devices_of(&mut Conn::Sqlx(conn), account_id).await
}

/// [`account_devices`] on any connection.
pub async fn devices_of(conn: &mut Conn<'_>, account_id: &str) -> Result<Vec<String>> {
    let rows = conn
        .fetch_all(
            "SELECT id FROM devices WHERE account_id = $1 AND revoked_at_us IS NULL ORDER BY id",
            &[Param::Text(account_id)],
        )
        .await?;
    rows.iter().map(|r| r.get::<String>("id")).collect()
}

/// Events appended in a transaction: numbered, sorted by device and seq; to hand to the
/// doorbell after commit ([`doorbell::Doorbell::deliver`]).
#[derive(Debug, Default)]
pub struct Appended(pub Vec<(String, Event)>);

impl Appended {
    /// The devices that got events, each once.
    pub fn devices(&self) -> Vec<&str> {
        let mut d: Vec<&str> = self.0.iter().map(|(d, _)| d.as_str()).collect();
        d.dedup();
        d
    }
}

/// Appends each `(device, event)` to that device's inbox, in order per device, and returns
/// them numbered, to deliver after commit (see [`ring_cluster`] for other instances). The
/// device rows are locked first, in id order.
pub async fn append_all(conn: &mut Conn<'_>, items: Vec<(String, Event)>) -> Result<Appended> {
    lock_devices(conn, items.iter().map(|(d, _)| d.as_str())).await?;
    append_locked(conn, items).await
}

/// Locks device rows on PostgreSQL, in id order, so writers that lock several devices cannot
/// deadlock (SQLite write transactions are serial already). Every writer takes its couple
/// locks before its device locks.
pub async fn lock_devices<'a>(
    conn: &mut Conn<'_>,
    devices: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    if conn.is_sqlite() {
        return Ok(());
    }
    let mut devices: Vec<&str> = devices.into_iter().collect();
    if devices.is_empty() {
        return Ok(());
    }
    devices.sort_unstable();
    devices.dedup();
    let sql = format!(
        "SELECT id FROM devices WHERE id IN ({}) ORDER BY id FOR UPDATE",
        db::json_list(false)
    );
    conn.execute(
        &sql,
        &[Param::Text(&db::json_strs(devices.iter().copied()))],
    )
    .await?;
    Ok(())
}

/// Queues the cross-instance doorbell for the devices that got events, on PostgreSQL,
/// delivered only if and when the transaction commits: one statement per transaction.
pub async fn ring_cluster(conn: &mut Conn<'_>, instance: &str, appended: &Appended) -> Result<()> {
    if appended.0.is_empty() || conn.is_sqlite() {
        return Ok(());
    }
    cluster::notify(conn, instance, &appended.devices()).await
}

/// Moves a device's `next_seq` on by a count; returns it.
const BUMP_SEQ: PerRow = per_row!(
    "UPDATE devices SET next_seq = next_seq +",
    sqlite: "$2 WHERE id = $1",
    postgres: concat!("v.n FROM ", pg_id_numbers!(), " WHERE devices.id = v.dev"),
    "RETURNING id, next_seq",
);

/// Stores one numbered event in a device's inbox.
const INSERT_EVENT: PerRow = per_row!(
    "INSERT INTO inbox (device_id, seq, event_id, payload, created_at_us)",
    sqlite: "VALUES ($1, $2, $3, $4, $5)",
    postgres: concat!(
        "SELECT j.value ->> 0, CAST(j.value ->> 1 AS BIGINT), j.value ->> 2, ",
        "decode(j.value ->> 3, 'hex'), CAST(j.value ->> 4 AS BIGINT) FROM ", pg_rows!()
    ),
);

/// [`append_all`] for device rows the caller has locked already: bumps every device's
/// `next_seq` once ([`BUMP_SEQ`]), then stores the rows ([`INSERT_EVENT`]); on PostgreSQL two
/// statements whatever the number of items.
pub async fn append_locked(
    conn: &mut Conn<'_>,
    mut items: Vec<(String, Event)>,
) -> Result<Appended> {
    if items.is_empty() {
        return Ok(Appended::default());
    }
    // Stable: each device's events keep their order.
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let mut counts: Vec<(&str, i64)> = Vec::new();
    for (device, _) in &items {
        match counts.last_mut() {
            Some((d, n)) if *d == device.as_str() => *n += 1,
            _ => counts.push((device.as_str(), 1)),
        }
    }
    let bumps: Vec<Vec<Val>> = counts
        .iter()
        .map(|(d, n)| vec![Val::from(*d), Val::Int(*n)])
        .collect();
    let rows = conn.per_row(BUMP_SEQ, &bumps).await?;
    let mut last: HashMap<String, i64> = HashMap::with_capacity(rows.len());
    for row in &rows {
        last.insert(row.get("id")?, row.get("next_seq")?);
    }
    // The first seq of each device's new events.
    let mut next: HashMap<&str, i64> = HashMap::with_capacity(counts.len());
    for (d, n) in &counts {
        let newest = *last
            .get(*d)
            .ok_or_else(|| Error::Corrupt(format!("device {d} vanished during append")))?;
        next.insert(d, newest - n + 1);
    }
    let mut rows = Vec::with_capacity(items.len());
    let mut seqs = Vec::with_capacity(items.len());
    for (device_id, event) in &items {
        let seq = next.get_mut(device_id.as_str()).expect("counted above");
        seqs.push(*seq as u64);
        let created_at_us = event
            .created_at
            .as_ref()
            .map_or(0, |t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000);
        rows.push(vec![
            Val::from(device_id),
            Val::Int(*seq),
            Val::from(&event.event_id),
            Val::Blob(event.encode_to_vec()),
            Val::Int(created_at_us),
        ]);
        *seq += 1;
    }
    conn.per_row(INSERT_EVENT, &rows).await?;
    for ((_, event), seq) in items.iter_mut().zip(seqs) {
        event.seq = seq;
    }
    Ok(Appended(items))
}

/// Appends `items` to their devices' inboxes, commits, and only then rings the doorbells: the
/// end of every transaction that tells devices something.
pub async fn commit(
    state: &crate::AppState,
    mut tx: crate::db::Tx,
    items: Vec<(String, Event)>,
) -> Result<()> {
    let mut conn = Conn::Sqlx(&mut tx);
    let appended = append_all(&mut conn, items).await?;
    ring_cluster(&mut conn, state.db.instance(), &appended).await?;
    tx.commit().await?;
    state.doorbell.deliver(appended.0);
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

/// Where a stream or fetch that asked for the events after `after` starts, at `now`: the
/// same place, or, with a `reset` event first, the last ack when `after` is older than what
/// the server keeps or ahead of the device's newest event (a restored backup, a confused app).
pub fn resume(c: Cursor, after: u64, now: DateTime<Utc>) -> (u64, Option<Event>) {
    use tapline_proto::v1::{Reset, ResetReason};
    let reason = if after < c.acked_seq {
        ResetReason::CursorForgotten
    } else if after > c.next_seq {
        ResetReason::CursorAhead
    } else {
        return (after, None);
    };
    let reset = Reset {
        acked_seq: c.acked_seq,
        reason: reason as i32,
        newest_seq: c.next_seq,
    };
    (c.acked_seq, Some(new_event(Payload::Reset(reset), now)))
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
