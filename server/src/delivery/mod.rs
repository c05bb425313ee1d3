//! Durable per-device delivery: the inbox, the doorbell and the event stream.
//!
//! Every event is written into the inbox of each recipient device in the same transaction as
//! the change that caused it, numbered by the device's own gap-free sequence (`devices.next_seq`,
//! bumped inside that transaction by the group commit, the only writer). Devices are told only
//! after commit (see [`doorbell`]).

pub mod acks;
pub mod cluster;
pub mod doorbell;
pub mod stream;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use prost::Message;
use sqlx::{AnyConnection, AnyPool, Row};
use tapline_proto::v1::{Event, event::Payload};
use uuid::Uuid;

use crate::db::{timestamp_us, to_us};
use crate::error::{Error, Result};
use crate::store::{InboxRow, Store};

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

/// The same event for every device in `devices`.
pub fn to_each(devices: &[String], event: &Event) -> Vec<(String, Event)> {
    devices.iter().map(|d| (d.clone(), event.clone())).collect()
}

/// The active (not signed-out) devices of an account, in id order.
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

    /// Adds what another part of the same commit appended.
    pub fn extend(&mut self, other: Appended) {
        self.0.extend(other.0);
    }
}

/// Items sorted by device (stable: each device's events keep their order) and how many each
/// device gets.
fn count_per_device(items: &mut [(String, Event)]) -> Vec<(String, i64)> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let mut counts: Vec<(String, i64)> = Vec::new();
    for (device, _) in items.iter() {
        match counts.last_mut() {
            Some((d, n)) if d == device => *n += 1,
            _ => counts.push((device.clone(), 1)),
        }
    }
    counts
}

/// Numbers `items` (sorted by [`count_per_device`]) from each device's new `next_seq`, and the
/// inbox rows to store.
fn number(
    items: &mut [(String, Event)],
    counts: &[(String, i64)],
    newest: &HashMap<String, i64>,
) -> Result<Vec<InboxRow>> {
    let mut next: HashMap<&str, i64> = HashMap::with_capacity(counts.len());
    for (d, n) in counts {
        let last = *newest
            .get(d)
            .ok_or_else(|| Error::Corrupt(format!("device {d} vanished during append")))?;
        next.insert(d, last - n + 1);
    }
    let mut rows = Vec::with_capacity(items.len());
    for (device_id, event) in items.iter_mut() {
        let seq = next.get_mut(device_id.as_str()).expect("counted above");
        event.seq = *seq as u64;
        *seq += 1;
        let tap_id = match &event.payload {
            Some(Payload::TapReceived(t)) if !t.from_self => {
                t.tap.as_ref().map(|t| t.tap_id.clone())
            }
            _ => None,
        };
        let created_at_us = event
            .created_at
            .as_ref()
            .map_or(0, |t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000);
        // The stored payload has no seq: the row's own seq is the truth.
        let seq = std::mem::take(&mut event.seq);
        let payload = event.encode_to_vec();
        event.seq = seq;
        rows.push(InboxRow {
            device_id: device_id.clone(),
            seq: seq as i64,
            event_id: event.event_id.clone(),
            payload,
            created_at_us,
            tap_id,
        });
    }
    Ok(rows)
}

/// Appends each `(device, event)` to that device's inbox, in order per device, inside the
/// group commit's transaction: one `next_seq` bump per device, then the rows (on PostgreSQL two
/// statements whatever the number of items). The device rows must be locked already (see
/// [`crate::couples`]).
pub async fn append<S: Store>(store: &mut S, mut items: Vec<(String, Event)>) -> Result<Appended> {
    if items.is_empty() {
        return Ok(Appended::default());
    }
    let counts = count_per_device(&mut items);
    let newest: HashMap<String, i64> = store.bump_seqs(&counts).await?.into_iter().collect();
    let rows = number(&mut items, &counts, &newest)?;
    store.insert_events(&rows).await?;
    Ok(Appended(items))
}

/// [`append`] through the group commit's general connection (for the few, rare writes that run
/// there): the same rows, one portable statement per device and per row.
pub async fn append_any(
    conn: &mut AnyConnection,
    mut items: Vec<(String, Event)>,
) -> Result<Appended> {
    if items.is_empty() {
        return Ok(Appended::default());
    }
    let counts = count_per_device(&mut items);
    let mut newest = HashMap::with_capacity(counts.len());
    for (device, n) in &counts {
        let row = sqlx::query(
            "UPDATE devices SET next_seq = next_seq + $2 WHERE id = $1 RETURNING next_seq",
        )
        .bind(device)
        .bind(n)
        .fetch_one(&mut *conn)
        .await?;
        newest.insert(device.clone(), row.try_get::<i64, _>("next_seq")?);
    }
    let rows = number(&mut items, &counts, &newest)?;
    for w in crate::store::push_wakes(&rows) {
        // As the batch stores do: one collapsed wake-up per device with a push target.
        sqlx::query(
            "INSERT INTO push_jobs (device_id, seq, urgent, due_at_us, created_at_us) \
             SELECT $1, $2, $3, CASE WHEN (SELECT live_until_us FROM live_streams \
             WHERE device_id = $1) > $5 THEN $4 ELSE $5 END, $5 WHERE EXISTS \
             (SELECT 1 FROM push_targets WHERE device_id = $1) \
             ON CONFLICT (device_id) DO UPDATE SET \
             seq = CASE WHEN excluded.seq > push_jobs.seq THEN excluded.seq ELSE push_jobs.seq END, \
             urgent = CASE WHEN excluded.urgent > push_jobs.urgent THEN excluded.urgent \
             ELSE push_jobs.urgent END",
        )
        .bind(w.device_id)
        .bind(w.seq)
        .bind(w.urgent)
        .bind(w.due_at_us)
        .bind(w.created_at_us)
        .execute(&mut *conn)
        .await?;
    }
    for r in rows {
        sqlx::query(
            "INSERT INTO inbox (device_id, seq, event_id, payload, created_at_us, tap_id) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(r.device_id)
        .bind(r.seq)
        .bind(r.event_id)
        .bind(r.payload)
        .bind(r.created_at_us)
        .bind(r.tap_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(Appended(items))
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
pub async fn cursor(pool: &AnyPool, device_id: &str) -> Result<Cursor> {
    let row = sqlx::query("SELECT acked_seq, next_seq FROM devices WHERE id = $1")
        .bind(device_id)
        .fetch_optional(pool)
        .await?
        .ok_or(Error::Unauthenticated)?;
    Ok(Cursor {
        acked_seq: row.try_get::<i64, _>("acked_seq")? as u64,
        next_seq: row.try_get::<i64, _>("next_seq")? as u64,
    })
}

/// Up to `limit` events of `device_id` after `after`, in order.
pub async fn read_after(
    pool: &AnyPool,
    device_id: &str,
    after: u64,
    limit: u32,
) -> Result<Vec<Event>> {
    let rows = sqlx::query(
        "SELECT seq, payload FROM inbox WHERE device_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(device_id)
    .bind(i64::try_from(after).unwrap_or(i64::MAX))
    .bind(i64::from(limit))
    .fetch_all(pool)
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

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_proto::v1 as pb;

    fn tap_event(tap: &str, from_self: bool) -> Event {
        let tap = pb::Tap {
            tap_id: tap.into(),
            ..Default::default()
        };
        new_event(
            Payload::TapReceived(pb::TapReceived {
                tap: Some(tap),
                silent: false,
                from_self,
                released: false,
            }),
            DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        )
    }

    #[test]
    fn events_are_numbered_per_device_in_order_and_partner_taps_are_marked() {
        let mut items = vec![
            ("b".to_owned(), tap_event("t1", false)),
            ("a".to_owned(), tap_event("t1", true)),
            ("b".to_owned(), tap_event("t2", false)),
        ];
        let counts = count_per_device(&mut items);
        assert_eq!(counts, [("a".to_owned(), 1), ("b".to_owned(), 2)]);
        let newest = HashMap::from([("a".to_owned(), 7), ("b".to_owned(), 3)]);
        let rows = number(&mut items, &counts, &newest).unwrap();
        let seqs: Vec<(&str, i64, Option<&str>)> = rows
            .iter()
            .map(|r| (r.device_id.as_str(), r.seq, r.tap_id.as_deref()))
            .collect();
        assert_eq!(
            seqs,
            [("a", 7, None), ("b", 2, Some("t1")), ("b", 3, Some("t2"))],
            "the sender's own copy records no delivery"
        );
        assert_eq!(items[1].1.seq, 2);
        let stored = Event::decode(rows[1].payload.as_slice()).unwrap();
        assert_eq!(stored.seq, 0, "the row's seq is the truth");
        assert!(number(&mut items, &counts, &HashMap::new()).is_err());
    }

    #[test]
    fn a_cursor_behind_the_acks_or_ahead_of_the_inbox_is_reset() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let c = Cursor {
            acked_seq: 5,
            next_seq: 9,
        };
        assert_eq!(resume(c, 7, now).0, 7);
        assert!(resume(c, 9, now).1.is_none());
        for (after, reason) in [
            (2, pb::ResetReason::CursorForgotten),
            (999, pb::ResetReason::CursorAhead),
        ] {
            let (start, reset) = resume(c, after, now);
            assert_eq!(start, 5);
            match reset.and_then(|e| e.payload) {
                Some(Payload::Reset(r)) => {
                    assert_eq!((r.acked_seq, r.reason, r.newest_seq), (5, reason as i32, 9))
                }
                other => panic!("expected a reset, got {other:?}"),
            }
        }
    }
}
