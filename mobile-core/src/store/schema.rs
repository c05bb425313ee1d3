//! The local schema and its versions (`PRAGMA user_version`): a new store is created at the
//! latest version; an older one is upgraded step by step, all in one transaction, so a crash
//! mid-upgrade leaves the old version whole.
//!
//! Versions: 0 = an empty file, or a store from before versioning (identical to 1);
//! 1 = the first schema (outbox kinds in client-id prefixes); 2 = typed outbox rows
//! (`kind`, `subject`, refusals with a code).

use rusqlite::Connection;

use crate::error::{CoreError, CoreResult};

/// The version this build writes.
pub(crate) const LATEST: i64 = 2;

/// The latest schema, for a new store.
const INIT: &str = "
CREATE TABLE kv (key TEXT PRIMARY KEY, value);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    -- What the row sends: a tap, a felt or seen receipt, a check-in answer.
    kind TEXT NOT NULL CHECK (kind IN ('tap', 'felt', 'seen', 'answer')),
    -- What it is about: the tap's client id (tap), the received tap's id (felt, seen), the
    -- check-in's id (answer). One row per kind and subject.
    subject TEXT NOT NULL,
    payload BLOB NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('queued', 'sent', 'delivered', 'felt', 'seen', 'refused')),
    -- For refused rows: the stable reason (a RefusalCode name) and the words shown.
    refusal_code TEXT,
    refusal TEXT,
    -- For taps, the server's id once sent.
    tap_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (kind, subject)
);
CREATE INDEX outbox_queued ON outbox (state, created_ms);
CREATE INDEX outbox_tap ON outbox (tap_id) WHERE tap_id IS NOT NULL;
CREATE TABLE seen_events (event_id TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE received (tap_id TEXT PRIMARY KEY, payload BLOB NOT NULL, n INTEGER NOT NULL);
CREATE TABLE checkins (checkin_id TEXT PRIMARY KEY, payload BLOB NOT NULL, opened_ms INTEGER NOT NULL);
";

/// Version 1, as the first releases created it (kept for upgrading stores from before
/// versioning: `IF NOT EXISTS` makes it a no-op on them).
pub(crate) const V1: &str = "
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value);
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
CREATE TABLE IF NOT EXISTS checkins (checkin_id TEXT PRIMARY KEY, payload BLOB NOT NULL, opened_ms INTEGER NOT NULL);
";

/// 1 → 2: typed outbox rows. Receipts were `felt:<tap id>` / `seen:<tap id>` and answers
/// `answer:<check-in id>`; queued `delivered:` receipts are dropped (acks carry DELIVERED
/// now); `failed` rows become `refused` with the code OTHER.
const V1_TO_V2: &str = "
ALTER TABLE outbox RENAME TO outbox_v1;
DROP INDEX IF EXISTS outbox_due;
DROP INDEX IF EXISTS outbox_tap;
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('tap', 'felt', 'seen', 'answer')),
    subject TEXT NOT NULL,
    payload BLOB NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('queued', 'sent', 'delivered', 'felt', 'seen', 'refused')),
    refusal_code TEXT,
    refusal TEXT,
    tap_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (kind, subject)
);
INSERT INTO outbox (kind, subject, payload, state, refusal_code, refusal, tap_id, attempts,
                    next_attempt_ms, created_ms)
SELECT CASE WHEN kind = 'receipt' THEN substr(client_id, 1, instr(client_id, ':') - 1)
            ELSE kind END,
       CASE WHEN kind = 'tap' THEN client_id
            ELSE substr(client_id, instr(client_id, ':') + 1) END,
       payload,
       CASE WHEN state IN ('queued', 'sent', 'delivered', 'felt', 'seen') THEN state
            ELSE 'refused' END,
       CASE WHEN state IN ('queued', 'sent', 'delivered', 'felt', 'seen') THEN NULL
            ELSE 'OTHER' END,
       failure, tap_id, attempts, next_attempt_ms, created_ms
FROM outbox_v1
WHERE kind IN ('tap', 'answer')
   OR (kind = 'receipt' AND (client_id LIKE 'felt:%' OR client_id LIKE 'seen:%'))
ORDER BY created_ms, rowid;
DROP TABLE outbox_v1;
CREATE INDEX outbox_queued ON outbox (state, created_ms);
CREATE INDEX outbox_tap ON outbox (tap_id) WHERE tap_id IS NOT NULL;
";

/// The upgrade from version `n` to `n + 1`, at index `n`.
const UPGRADES: [&str; LATEST as usize] = [V1, V1_TO_V2];

/// Brings the store to [`LATEST`]; refuses a store written by a newer build.
pub(crate) fn migrate(conn: &mut Connection) -> CoreResult<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > LATEST {
        return Err(CoreError::Invalid(format!(
            "data_dir: its local store is from a newer version of the app (schema {version}, \
             this build knows up to {LATEST})"
        )));
    }
    let empty: bool = tx.query_row(
        "SELECT COUNT(*) = 0 FROM sqlite_master WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    if empty {
        tx.execute_batch(INIT)?;
    } else {
        for step in &UPGRADES[version as usize..] {
            tx.execute_batch(step)?;
        }
    }
    tx.pragma_update(None, "user_version", LATEST)?;
    tx.commit()?;
    Ok(())
}
