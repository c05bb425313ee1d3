//! The local store (SQLite): credentials, the outbox, the event cursor, events already applied,
//! received taps, and the couple, streak and check-in snapshots the glance reads. It survives
//! app kills.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use prost::Message;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tapline_proto::v1 as pb;

use crate::error::CoreResult;
use crate::model::{HapticPattern, LocalTap, ReceivedTap, TapKind, TapState, from_millis};

mod rituals;

/// Received taps kept for history and the glance.
const KEEP_RECEIVED: i64 = 200;
/// Applied event ids kept for de-duplication.
const KEEP_SEEN: i64 = 5000;

/// This device's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub token: String,
    pub account_id: String,
    pub device_id: String,
    pub display_name: String,
    pub time_zone: String,
}

/// A pending request in the outbox.
#[derive(Debug, Clone)]
pub(crate) struct OutboxItem {
    pub client_id: String,
    pub kind: OutboxKind,
    pub payload: Vec<u8>,
    pub attempts: u32,
}

/// What an outbox row sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutboxKind {
    Tap,
    Receipt,
    /// A check-in answer (payload: an encoded `AnswerCheckinRequest`).
    Answer,
}

impl OutboxKind {
    fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Tap => "tap",
            OutboxKind::Receipt => "receipt",
            OutboxKind::Answer => "answer",
        }
    }

    fn parse(s: &str) -> OutboxKind {
        match s {
            "receipt" => OutboxKind::Receipt,
            "answer" => OutboxKind::Answer,
            _ => OutboxKind::Tap,
        }
    }
}

/// The local store.
pub(crate) struct Store {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

fn state_str(s: &TapState) -> &'static str {
    match s {
        TapState::Queued => "queued",
        TapState::Sent => "sent",
        TapState::Delivered => "delivered",
        TapState::Felt => "felt",
        TapState::Seen => "seen",
        TapState::Failed { .. } => "failed",
    }
}

fn state_rank(s: &str) -> u8 {
    match s {
        "queued" => 0,
        "sent" => 1,
        "delivered" => 2,
        "felt" | "seen" => 3,
        _ => 4,
    }
}

impl Store {
    /// Opens (and creates) the store in `dir`.
    pub fn open(dir: &Path) -> CoreResult<Store> {
        std::fs::create_dir_all(dir)?;
        let conn = Connection::open(dir.join("tapline-core.db"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a tap the user queued survives power loss.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value);
             CREATE TABLE IF NOT EXISTS outbox (
                 client_id TEXT PRIMARY KEY,
                 kind TEXT NOT NULL,
                 payload BLOB NOT NULL,
                 state TEXT NOT NULL,
                 failure TEXT,
                 tap_id TEXT,
                 attempts INTEGER NOT NULL DEFAULT 0,
                 next_attempt_ms INTEGER NOT NULL,
                 created_ms INTEGER NOT NULL
             );
             CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_ms);
             CREATE INDEX IF NOT EXISTS outbox_tap ON outbox (tap_id);
             CREATE TABLE IF NOT EXISTS seen_events (event_id TEXT PRIMARY KEY, n INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS received (tap_id TEXT PRIMARY KEY, payload BLOB NOT NULL, n INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS checkins (checkin_id TEXT PRIMARY KEY, payload BLOB NOT NULL, opened_ms INTEGER NOT NULL);",
        )?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn kv_get<T: rusqlite::types::FromSql>(conn: &Connection, key: &str) -> CoreResult<Option<T>> {
        Ok(conn
            .query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    fn kv_set(conn: &Connection, key: &str, value: impl rusqlite::ToSql) -> CoreResult<()> {
        conn.execute("INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value", params![key, value])?;
        Ok(())
    }

    /// The device's credentials, when signed in.
    pub fn credentials(&self) -> CoreResult<Option<Credentials>> {
        let conn = self.lock();
        let get = |k: &str| Self::kv_get::<String>(&conn, k);
        let (Some(token), Some(account_id), Some(device_id)) =
            (get("token")?, get("account_id")?, get("device_id")?)
        else {
            return Ok(None);
        };
        Ok(Some(Credentials {
            token,
            account_id,
            device_id,
            display_name: get("display_name")?.unwrap_or_default(),
            time_zone: get("time_zone")?.unwrap_or_default(),
        }))
    }

    /// Stores new credentials and starts a fresh event history for this device.
    pub fn save_credentials(&self, c: &Credentials) -> CoreResult<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for (k, v) in [
            ("token", &c.token),
            ("account_id", &c.account_id),
            ("device_id", &c.device_id),
            ("display_name", &c.display_name),
            ("time_zone", &c.time_zone),
        ] {
            Self::kv_set(&tx, k, v)?;
        }
        Self::kv_set(&tx, "cursor", 0i64)?;
        tx.execute("DELETE FROM seen_events", [])?;
        tx.commit()?;
        Ok(())
    }

    /// Updates the profile fields kept with the credentials.
    pub fn save_profile(&self, display_name: &str, time_zone: &str) -> CoreResult<()> {
        let conn = self.lock();
        Self::kv_set(&conn, "display_name", display_name)?;
        Self::kv_set(&conn, "time_zone", time_zone)
    }

    /// Forgets the account (after this device was signed out).
    pub fn clear_credentials(&self) -> CoreResult<()> {
        self.transaction(|tx| {
            tx.execute(
                "DELETE FROM kv WHERE key IN ('token', 'account_id', 'device_id', 'couple')",
                [],
            )?;
            Self::tx_clear_rituals(tx)
        })
    }

    /// The last event sequence number applied.
    pub fn cursor(&self) -> CoreResult<u64> {
        Ok(Self::kv_get::<i64>(&self.lock(), "cursor")?.unwrap_or(0) as u64)
    }

    /// Moves the cursor (after a `reset`).
    pub fn set_cursor(&self, seq: u64) -> CoreResult<()> {
        Self::kv_set(&self.lock(), "cursor", seq as i64)
    }

    /// The stored couple, if paired.
    pub fn couple(&self) -> CoreResult<Option<pb::Couple>> {
        let bytes: Option<Vec<u8>> = Self::kv_get(&self.lock(), "couple")?;
        Ok(bytes
            .map(|b| pb::Couple::decode(b.as_slice()))
            .transpose()?)
    }

    /// Replaces the stored couple.
    pub fn set_couple(&self, couple: Option<&pb::Couple>) -> CoreResult<()> {
        let conn = self.lock();
        Self::set_couple_in(&conn, couple)
    }

    fn set_couple_in(conn: &Connection, couple: Option<&pb::Couple>) -> CoreResult<()> {
        match couple {
            Some(c) => Self::kv_set(conn, "couple", c.encode_to_vec()),
            None => {
                conn.execute("DELETE FROM kv WHERE key = 'couple'", [])?;
                Ok(())
            }
        }
    }

    /// Applies one event exactly once: runs `effects` and moves the cursor in one transaction.
    /// Returns `None` when the event was applied before (a redelivery).
    pub fn apply_event<T>(
        &self,
        event_id: &str,
        seq: u64,
        effects: impl FnOnce(&Transaction<'_>) -> CoreResult<T>,
    ) -> CoreResult<Option<T>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let fresh = tx.execute(
            "INSERT INTO seen_events (event_id, n) VALUES (?1, (SELECT COALESCE(MAX(n), 0) + 1 FROM seen_events)) ON CONFLICT DO NOTHING",
            [event_id],
        )? == 1;
        let out = if fresh { Some(effects(&tx)?) } else { None };
        let cursor = Self::kv_get::<i64>(&tx, "cursor")?.unwrap_or(0) as u64;
        if seq > cursor {
            Self::kv_set(&tx, "cursor", seq as i64)?;
        }
        tx.execute(
            "DELETE FROM seen_events WHERE n <= (SELECT MAX(n) FROM seen_events) - ?1",
            [KEEP_SEEN],
        )?;
        tx.commit()?;
        Ok(out)
    }

    /// Inside an event transaction: stores the couple.
    pub fn tx_set_couple(tx: &Transaction<'_>, couple: Option<&pb::Couple>) -> CoreResult<()> {
        Self::set_couple_in(tx, couple)
    }

    /// Inside an event transaction: reads the couple.
    pub fn tx_couple(tx: &Transaction<'_>) -> CoreResult<Option<pb::Couple>> {
        let bytes: Option<Vec<u8>> = Self::kv_get(tx, "couple")?;
        Ok(bytes
            .map(|b| pb::Couple::decode(b.as_slice()))
            .transpose()?)
    }

    /// Inside an event transaction: keeps a received tap.
    pub fn tx_add_received(tx: &Transaction<'_>, tap: &pb::TapReceived) -> CoreResult<()> {
        let Some(t) = &tap.tap else { return Ok(()) };
        tx.execute(
            "INSERT INTO received (tap_id, payload, n) VALUES (?1, ?2, (SELECT COALESCE(MAX(n), 0) + 1 FROM received)) ON CONFLICT DO NOTHING",
            params![t.tap_id, tap.encode_to_vec()],
        )?;
        tx.execute(
            "DELETE FROM received WHERE n <= (SELECT MAX(n) FROM received) - ?1",
            [KEEP_RECEIVED],
        )?;
        Ok(())
    }

    /// Inside an event transaction: queues a receipt.
    pub fn tx_enqueue(
        tx: &Transaction<'_>,
        kind: OutboxKind,
        client_id: &str,
        payload: &[u8],
        now_ms: i64,
    ) -> CoreResult<()> {
        tx.execute(
            "INSERT INTO outbox (client_id, kind, payload, state, next_attempt_ms, created_ms) VALUES (?1, ?2, ?3, 'queued', ?4, ?4) ON CONFLICT DO NOTHING",
            params![client_id, kind.as_str(), payload, now_ms],
        )?;
        Ok(())
    }

    /// Inside an event transaction: moves a sent tap forward (never backward) on a receipt.
    pub fn tx_advance_tap(
        tx: &Transaction<'_>,
        tap_id: &str,
        state: &TapState,
    ) -> CoreResult<Option<LocalTap>> {
        let current: Option<String> = tx
            .query_row(
                "SELECT state FROM outbox WHERE tap_id = ?1 AND kind = 'tap'",
                [tap_id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(current) = current else {
            return Ok(None);
        };
        let new = state_str(state);
        if state_rank(new) < state_rank(&current)
            || (state_rank(new) == state_rank(&current) && new == current)
        {
            return Ok(None);
        }
        tx.execute(
            "UPDATE outbox SET state = ?1 WHERE tap_id = ?2 AND kind = 'tap'",
            params![new, tap_id],
        )?;
        Self::local_tap_where(tx, "tap_id = ?1", tap_id)
    }

    /// Queues a receipt (felt, seen); a repeated one is kept once.
    pub fn enqueue_receipt(&self, client_id: &str, payload: &[u8], now_ms: i64) -> CoreResult<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        Self::tx_enqueue(&tx, OutboxKind::Receipt, client_id, payload, now_ms)?;
        tx.commit()?;
        Ok(())
    }

    /// Queues a tap; returns it as stored.
    pub fn enqueue_tap(
        &self,
        client_id: &str,
        req: &pb::SendTapRequest,
        now_ms: i64,
    ) -> CoreResult<LocalTap> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO outbox (client_id, kind, payload, state, next_attempt_ms, created_ms) VALUES (?1, 'tap', ?2, 'queued', ?3, ?3)",
            params![client_id, req.encode_to_vec(), now_ms],
        )?;
        Self::local_tap_where(&conn, "client_id = ?1", client_id)?
            .ok_or_else(|| crate::error::CoreError::Invalid("queued tap vanished".into()))
    }

    /// The oldest queued item if it is due at `now_ms`, or the instant it is due. Strictly
    /// first in, first out, so taps arrive in the order they were made.
    pub fn next_due(&self, now_ms: i64) -> CoreResult<Result<OutboxItem, Option<i64>>> {
        let conn = self.lock();
        let row = conn
            .query_row(
                "SELECT client_id, kind, payload, attempts, next_attempt_ms FROM outbox WHERE state = 'queued' ORDER BY created_ms, rowid LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                },
            )
            .optional()?;
        Ok(match row {
            None => Err(None),
            Some((_, _, _, _, next)) if next > now_ms => Err(Some(next)),
            Some((client_id, kind, payload, attempts, _)) => Ok(OutboxItem {
                client_id,
                kind: OutboxKind::parse(&kind),
                payload,
                attempts: attempts as u32,
            }),
        })
    }

    /// Makes every queued item due now (the network came back).
    pub fn make_all_due(&self, now_ms: i64) -> CoreResult<()> {
        self.lock().execute("UPDATE outbox SET next_attempt_ms = ?1 WHERE state = 'queued' AND next_attempt_ms > ?1", [now_ms])?;
        Ok(())
    }

    /// Marks an item sent (a tap gets its server id; a receipt or an answer is done).
    pub fn mark_sent(&self, client_id: &str, tap_id: Option<&str>) -> CoreResult<Option<LocalTap>> {
        let conn = self.lock();
        conn.execute(
            "UPDATE outbox SET state = CASE WHEN state = 'queued' THEN 'sent' ELSE state END, tap_id = COALESCE(?2, tap_id), attempts = attempts + 1 WHERE client_id = ?1",
            params![client_id, tap_id],
        )?;
        Self::local_tap_where(&conn, "client_id = ?1 AND kind = 'tap'", client_id)
    }

    /// Schedules another attempt.
    pub fn reschedule(&self, client_id: &str, next_ms: i64) -> CoreResult<()> {
        self.lock().execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?2 WHERE client_id = ?1",
            params![client_id, next_ms],
        )?;
        Ok(())
    }

    /// Gives up on an item for good.
    pub fn mark_failed(&self, client_id: &str, reason: &str) -> CoreResult<Option<LocalTap>> {
        let conn = self.lock();
        conn.execute(
            "UPDATE outbox SET state = 'failed', failure = ?2, attempts = attempts + 1 WHERE client_id = ?1",
            params![client_id, reason],
        )?;
        Self::local_tap_where(&conn, "client_id = ?1 AND kind = 'tap'", client_id)
    }

    fn local_tap_where(conn: &Connection, cond: &str, arg: &str) -> CoreResult<Option<LocalTap>> {
        let sql = format!(
            "SELECT client_id, payload, state, failure, tap_id, attempts, created_ms FROM outbox WHERE kind = 'tap' AND {cond}"
        );
        let row = conn.query_row(&sql, [arg], row_to_parts).optional()?;
        row.map(parts_to_local_tap).transpose()
    }

    /// The newest `limit` taps this device sent, newest first.
    pub fn local_taps(&self, limit: u32) -> CoreResult<Vec<LocalTap>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT client_id, payload, state, failure, tap_id, attempts, created_ms FROM outbox WHERE kind = 'tap' ORDER BY created_ms DESC, rowid DESC LIMIT ?1",
        )?;
        let rows = stmt
            .query_map([limit], row_to_parts)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(parts_to_local_tap).collect()
    }

    /// Taps not yet accepted by the server.
    pub fn unsent_count(&self) -> CoreResult<u32> {
        Ok(self.lock().query_row(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'tap' AND state = 'queued'",
            [],
            |r| r.get(0),
        )?)
    }

    /// The newest received taps, newest first.
    pub fn received(&self, limit: u32) -> CoreResult<Vec<ReceivedTap>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT payload FROM received ORDER BY n DESC LIMIT ?1")?;
        let rows = stmt
            .query_map([limit], |r| r.get::<_, Vec<u8>>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for bytes in rows {
            if let Some(t) = ReceivedTap::from_wire(&pb::TapReceived::decode(bytes.as_slice())?) {
                out.push(t);
            }
        }
        Ok(out)
    }
}

type Parts = (
    String,
    Vec<u8>,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

fn row_to_parts(r: &rusqlite::Row<'_>) -> rusqlite::Result<Parts> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn parts_to_local_tap(
    (client_id, payload, state, failure, tap_id, attempts, created_ms): Parts,
) -> CoreResult<LocalTap> {
    let req = pb::SendTapRequest::decode(payload.as_slice())?;
    let state = match state.as_str() {
        "queued" => TapState::Queued,
        "sent" => TapState::Sent,
        "delivered" => TapState::Delivered,
        "felt" => TapState::Felt,
        "seen" => TapState::Seen,
        _ => TapState::Failed {
            reason: failure.unwrap_or_default(),
        },
    };
    Ok(LocalTap {
        client_tap_id: client_id,
        tap_id,
        kind: TapKind::from_wire(req.kind),
        note: (!req.note.is_empty()).then_some(req.note),
        rhythm: req.rhythm.as_ref().map(HapticPattern::from_wire),
        state,
        created_at: from_millis(created_ms),
        attempts: attempts as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "tapline-core-store-{tag}-{}",
            uuid::Uuid::new_v4().simple()
        ))
    }

    fn tap_req(note: &str) -> pb::SendTapRequest {
        pb::SendTapRequest {
            client_tap_id: uuid::Uuid::now_v7().to_string(),
            kind: pb::TapKind::Hug as i32,
            rhythm: None,
            note: note.into(),
        }
    }

    #[test]
    fn the_outbox_survives_reopening_and_moves_only_forward() {
        let dir = temp_dir("outbox");
        let req = tap_req("hi");
        {
            let store = Store::open(&dir).unwrap();
            let t = store.enqueue_tap(&req.client_tap_id, &req, 1000).unwrap();
            assert_eq!(t.state, TapState::Queued);
            assert_eq!(t.kind, TapKind::Hug);
        }
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.unsent_count().unwrap(), 1);
        let item = store.next_due(1000).unwrap().unwrap();
        assert_eq!(item.client_id, req.client_tap_id);
        store.reschedule(&item.client_id, 5000).unwrap();
        assert_eq!(store.next_due(1000).unwrap().unwrap_err(), Some(5000));
        let sent = store
            .mark_sent(&item.client_id, Some("tap-1"))
            .unwrap()
            .unwrap();
        assert_eq!((sent.state, sent.attempts), (TapState::Sent, 2));
        assert_eq!(store.unsent_count().unwrap(), 0);
        let seen = store
            .apply_event("e1", 1, |tx| {
                Store::tx_advance_tap(tx, "tap-1", &TapState::Seen)
            })
            .unwrap()
            .flatten();
        assert_eq!(seen.unwrap().state, TapState::Seen);
        let back = store
            .apply_event("e2", 2, |tx| {
                Store::tx_advance_tap(tx, "tap-1", &TapState::Delivered)
            })
            .unwrap()
            .flatten();
        assert!(
            back.is_none(),
            "a late delivered receipt does not move seen back"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn events_apply_once_and_move_the_cursor() {
        let dir = temp_dir("events");
        let store = Store::open(&dir).unwrap();
        let mut runs = 0;
        assert!(
            store
                .apply_event("e1", 5, |_| {
                    runs += 1;
                    Ok(())
                })
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .apply_event("e1", 5, |_| {
                    runs += 1;
                    Ok(())
                })
                .unwrap()
                .is_none()
        );
        assert_eq!(runs, 1);
        assert_eq!(store.cursor().unwrap(), 5);
        store.apply_event("e0", 3, |_| Ok(())).unwrap();
        assert_eq!(store.cursor().unwrap(), 5, "the cursor never moves back");
        let _ = std::fs::remove_dir_all(dir);
    }
}
