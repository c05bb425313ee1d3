//! The local store (SQLite): credentials, the outbox, the event cursor, events already applied,
//! received taps, and the couple, streak and check-in snapshots the glance reads. It survives
//! app kills.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use prost::Message;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tapline_proto::v1 as pb;

use crate::error::CoreResult;
use crate::model::ReceivedTap;

mod outbox;
mod questions;
mod recap;
mod reconnect;
mod rituals;
mod schema;
mod space;
mod together;

pub(crate) use outbox::{OutboxItem, OutboxKind};
pub(crate) use together::{apply_meeting, apply_together};

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

/// The local store.
pub(crate) struct Store {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Opens (and creates) the store in `dir`.
    pub fn open(dir: &Path) -> CoreResult<Store> {
        std::fs::create_dir_all(dir)?;
        let mut conn = Connection::open(dir.join("tapline-core.db"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a tap the user queued survives power loss.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::migrate(&mut conn)?;
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
        tx.execute("DELETE FROM kv WHERE key = 'signed_out'", [])?;
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

    /// Whether the server said this device's token is no longer valid.
    pub fn is_signed_out(&self) -> CoreResult<bool> {
        Ok(Self::kv_get::<i64>(&self.lock(), "signed_out")?.is_some_and(|v| v != 0))
    }

    /// Remembers that the server no longer knows this device's token.
    pub fn set_signed_out(&self) -> CoreResult<()> {
        Self::kv_set(&self.lock(), "signed_out", 1i64)
    }

    /// Forgets everything: account, outbox, events, snapshots (the schema stays).
    pub fn forget_all(&self) -> CoreResult<()> {
        self.transaction(|tx| {
            tx.execute_batch(
                "DELETE FROM kv; DELETE FROM outbox; DELETE FROM seen_events; \
                 DELETE FROM received; DELETE FROM checkins;",
            )?;
            Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RefusalCode;
    use crate::model::{TapKind, TapState};

    pub(super) fn temp_dir(tag: &str) -> std::path::PathBuf {
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
        assert_eq!(item.subject, req.client_tap_id);
        assert_eq!(item.kind, OutboxKind::Tap);
        store.reschedule(item.id, 5000).unwrap();
        assert_eq!(store.next_due(1000).unwrap().unwrap_err(), Some(5000));
        let sent = store.mark_sent(item.id, Some("tap-1")).unwrap().unwrap();
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

    #[test]
    fn a_store_from_before_versioning_is_upgraded_with_its_rows() {
        let dir = temp_dir("upgrade");
        std::fs::create_dir_all(&dir).unwrap();
        let tap = tap_req("from v1");
        let answer = pb::AnswerCheckinRequest {
            checkin_id: "c-1".into(),
            answer: Some(pb::Answer {
                value: Some(pb::answer::Value::Scale(4)),
            }),
        };
        let receipt = |kind: pb::ReceiptKind| {
            pb::ReportTapRequest {
                tap_id: "t-9".into(),
                kind: kind as i32,
            }
            .encode_to_vec()
        };
        {
            // A store as the first releases left it: no user_version, kinds in client ids.
            let conn = Connection::open(dir.join("tapline-core.db")).unwrap();
            conn.execute_batch(schema::V1).unwrap();
            let row = |id: &str, kind: &str, payload: Vec<u8>, state: &str, created: i64| {
                conn.execute(
                    "INSERT INTO outbox (client_id, kind, payload, state, failure, attempts, \
                     next_attempt_ms, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, 2, ?6, ?6)",
                    params![
                        id,
                        kind,
                        payload,
                        state,
                        (state == "failed").then_some("not paired"),
                        created
                    ],
                )
                .unwrap();
            };
            row(&tap.client_tap_id, "tap", tap.encode_to_vec(), "queued", 10);
            row(
                "felt:t-9",
                "receipt",
                receipt(pb::ReceiptKind::Felt),
                "queued",
                11,
            );
            row(
                "delivered:t-9",
                "receipt",
                receipt(pb::ReceiptKind::Delivered),
                "queued",
                12,
            );
            row("answer:c-1", "answer", answer.encode_to_vec(), "failed", 13);
            conn.execute("INSERT INTO kv (key, value) VALUES ('cursor', 42)", [])
                .unwrap();
            let v: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, 0);
        }
        let store = Store::open(&dir).unwrap();
        let v: i64 = store
            .lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, schema::LATEST);
        assert_eq!(store.cursor().unwrap(), 42, "the rest of the store is kept");

        // The queued tap is still first in line, typed, with its attempts.
        let first = store.next_due(100).unwrap().unwrap();
        assert_eq!(
            (first.kind, first.subject.as_str(), first.attempts),
            (OutboxKind::Tap, tap.client_tap_id.as_str(), 2)
        );
        store.mark_sent(first.id, Some("server-tap")).unwrap();
        // Then the felt receipt, about the received tap; the DELIVERED one is gone (acks carry
        // it now).
        let next = store.next_due(100).unwrap().unwrap();
        assert_eq!(
            (next.kind, next.subject.as_str()),
            (OutboxKind::Felt, "t-9")
        );
        store.mark_sent(next.id, None).unwrap();
        assert!(
            store.next_due(100).unwrap().is_err(),
            "nothing else is queued"
        );

        // The failed answer is refused, with its words, and may be replaced.
        let a = store.local_answer("c-1").unwrap().unwrap();
        assert_eq!(
            a.state,
            crate::model::AnswerState::Refused {
                reason: "not paired".into(),
                code: RefusalCode::Other
            }
        );
        // Opening again is a no-op.
        drop(store);
        let store = Store::open(&dir).unwrap();
        assert_eq!(
            store.local_taps(10).unwrap()[0].tap_id.as_deref(),
            Some("server-tap")
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_store_from_a_newer_build_is_refused_not_damaged() {
        let dir = temp_dir("newer");
        drop(Store::open(&dir).unwrap());
        {
            let conn = Connection::open(dir.join("tapline-core.db")).unwrap();
            conn.pragma_update(None, "user_version", schema::LATEST + 1)
                .unwrap();
        }
        let err = Store::open(&dir).unwrap_err().to_string();
        assert!(err.contains("newer version"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn refused_rows_keep_their_code_and_forget_wipes_everything() {
        let dir = temp_dir("refused");
        let store = Store::open(&dir).unwrap();
        let req = tap_req("x");
        store.enqueue_tap(&req.client_tap_id, &req, 1).unwrap();
        let item = store.next_due(1).unwrap().unwrap();
        let tap = store
            .mark_refused(item.id, RefusalCode::NotPaired, "pair first")
            .unwrap()
            .unwrap();
        assert_eq!(
            tap.state,
            TapState::Refused {
                reason: "pair first".into(),
                code: RefusalCode::NotPaired
            }
        );
        assert_eq!(store.unsent_count().unwrap(), 0, "refused is not unsent");
        store.set_signed_out().unwrap();
        assert!(store.is_signed_out().unwrap());
        store.forget_all().unwrap();
        assert!(!store.is_signed_out().unwrap());
        assert!(store.local_taps(10).unwrap().is_empty());
        assert!(store.credentials().unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
