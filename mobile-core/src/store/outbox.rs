//! The outbox: what this device made offline (taps, felt/seen receipts, check-in answers),
//! sent strictly in the order it was made, with each row's outcome.

use prost::Message;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tapline_proto::v1 as pb;

use super::Store;
use crate::error::{CoreError, CoreResult, RefusalCode};
use crate::model::{HapticPattern, LocalTap, TapKind, TapState, from_millis};

/// What an outbox row sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutboxKind {
    /// A tap (payload: `SendTapRequest`; subject: its client id).
    Tap,
    /// A felt receipt (payload: `ReportTapRequest`; subject: the received tap's id).
    Felt,
    /// A seen receipt (as `Felt`).
    Seen,
    /// A check-in answer (payload: `AnswerCheckinRequest`; subject: the check-in's id).
    Answer,
}

impl OutboxKind {
    /// The stored name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Tap => "tap",
            OutboxKind::Felt => "felt",
            OutboxKind::Seen => "seen",
            OutboxKind::Answer => "answer",
        }
    }

    fn parse(s: &str) -> CoreResult<OutboxKind> {
        Ok(match s {
            "tap" => OutboxKind::Tap,
            "felt" => OutboxKind::Felt,
            "seen" => OutboxKind::Seen,
            "answer" => OutboxKind::Answer,
            other => return Err(CoreError::Corrupt(format!("outbox kind {other:?}"))),
        })
    }
}

/// A queued row, ready to send.
#[derive(Debug, Clone)]
pub(crate) struct OutboxItem {
    pub id: i64,
    pub kind: OutboxKind,
    pub subject: String,
    pub payload: Vec<u8>,
    pub attempts: u32,
}

/// A tap's state as stored.
fn state_str(s: &TapState) -> &'static str {
    match s {
        TapState::Queued => "queued",
        TapState::Sent => "sent",
        TapState::Delivered => "delivered",
        TapState::Felt => "felt",
        TapState::Seen => "seen",
        TapState::Refused { .. } => "refused",
    }
}

/// States only move forward: queued < sent < delivered < felt/seen.
fn state_rank(s: &str) -> u8 {
    match s {
        "queued" => 0,
        "sent" => 1,
        "delivered" => 2,
        "felt" | "seen" => 3,
        _ => 4,
    }
}

const TAP_COLUMNS: &str =
    "subject, payload, state, refusal_code, refusal, tap_id, attempts, created_ms";

type TapRow = (
    String,
    Vec<u8>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

fn tap_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TapRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

/// A refused row's state parts: its code (by stable name) and its words.
pub(crate) fn refusal(code: Option<&str>, words: Option<String>) -> (String, RefusalCode) {
    (
        words.unwrap_or_default(),
        code.map_or(RefusalCode::Other, RefusalCode::from_name),
    )
}

fn local_tap(
    (subject, payload, state, code, words, tap_id, attempts, created_ms): TapRow,
) -> CoreResult<LocalTap> {
    let req = pb::SendTapRequest::decode(payload.as_slice())?;
    let state = match state.as_str() {
        "queued" => TapState::Queued,
        "sent" => TapState::Sent,
        "delivered" => TapState::Delivered,
        "felt" => TapState::Felt,
        "seen" => TapState::Seen,
        _ => {
            let (reason, code) = refusal(code.as_deref(), words);
            TapState::Refused { reason, code }
        }
    };
    Ok(LocalTap {
        client_tap_id: subject,
        tap_id,
        kind: TapKind::from_wire(req.kind),
        note: (!req.note.is_empty()).then_some(req.note),
        rhythm: req.rhythm.as_ref().map(HapticPattern::from_wire),
        state,
        created_at: from_millis(created_ms),
        attempts: attempts as u32,
    })
}

impl Store {
    /// Inside a transaction: queues a row; a second one of the same kind and subject is
    /// dropped (returns false).
    pub fn tx_enqueue(
        tx: &Connection,
        kind: OutboxKind,
        subject: &str,
        payload: &[u8],
        now_ms: i64,
    ) -> CoreResult<bool> {
        Ok(tx.execute(
            "INSERT INTO outbox (kind, subject, payload, state, next_attempt_ms, created_ms) \
             VALUES (?1, ?2, ?3, 'queued', ?4, ?4) ON CONFLICT (kind, subject) DO NOTHING",
            params![kind.as_str(), subject, payload, now_ms],
        )? == 1)
    }

    /// Queues a felt or seen receipt; a repeated one is kept once.
    pub fn enqueue_receipt(
        &self,
        kind: OutboxKind,
        tap_id: &str,
        payload: &[u8],
        now_ms: i64,
    ) -> CoreResult<()> {
        Self::tx_enqueue(&self.lock(), kind, tap_id, payload, now_ms)?;
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
        Self::tx_enqueue(
            &conn,
            OutboxKind::Tap,
            client_id,
            &req.encode_to_vec(),
            now_ms,
        )?;
        Self::tap_where(&conn, "subject = ?1", client_id)?
            .ok_or_else(|| CoreError::Corrupt("queued tap vanished".into()))
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
        // Felt and seen rank alike: either may follow the other. A refused tap stays so.
        if state_rank(new) < state_rank(&current)
            || (state_rank(new) == state_rank(&current) && new == current)
        {
            return Ok(None);
        }
        tx.execute(
            "UPDATE outbox SET state = ?1 WHERE tap_id = ?2 AND kind = 'tap'",
            params![new, tap_id],
        )?;
        Self::tap_where(tx, "tap_id = ?1", tap_id)
    }

    /// The oldest queued row if it is due at `now_ms`, or the instant it is due. Strictly
    /// first in, first out, so taps arrive in the order they were made.
    pub fn next_due(&self, now_ms: i64) -> CoreResult<Result<OutboxItem, Option<i64>>> {
        let conn = self.lock();
        let row = conn
            .query_row(
                "SELECT id, kind, subject, payload, attempts, next_attempt_ms FROM outbox \
                 WHERE state = 'queued' ORDER BY created_ms, id LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                },
            )
            .optional()?;
        Ok(match row {
            None => Err(None),
            Some((.., next)) if next > now_ms => Err(Some(next)),
            Some((id, kind, subject, payload, attempts, _)) => Ok(OutboxItem {
                id,
                kind: OutboxKind::parse(&kind)?,
                subject,
                payload,
                attempts: attempts as u32,
            }),
        })
    }

    /// Makes every queued row due now (the network came back, or a flush).
    pub fn make_all_due(&self, now_ms: i64) -> CoreResult<()> {
        self.lock().execute(
            "UPDATE outbox SET next_attempt_ms = ?1 WHERE state = 'queued' AND next_attempt_ms > ?1",
            [now_ms],
        )?;
        Ok(())
    }

    /// Marks a row sent (a tap gets its server id); returns the tap when it is one.
    pub fn mark_sent(&self, id: i64, tap_id: Option<&str>) -> CoreResult<Option<LocalTap>> {
        let conn = self.lock();
        conn.execute(
            "UPDATE outbox SET state = CASE WHEN state = 'queued' THEN 'sent' ELSE state END, \
             tap_id = COALESCE(?2, tap_id), attempts = attempts + 1 WHERE id = ?1",
            params![id, tap_id],
        )?;
        Self::tap_where(&conn, "id = ?1", &id.to_string())
    }

    /// Schedules another attempt.
    pub fn reschedule(&self, id: i64, next_ms: i64) -> CoreResult<()> {
        self.lock().execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?2 WHERE id = ?1",
            params![id, next_ms],
        )?;
        Ok(())
    }

    /// Gives up on a row for good, with why; returns the tap when it is one.
    pub fn mark_refused(
        &self,
        id: i64,
        code: RefusalCode,
        reason: &str,
    ) -> CoreResult<Option<LocalTap>> {
        let conn = self.lock();
        conn.execute(
            "UPDATE outbox SET state = 'refused', refusal_code = ?2, refusal = ?3, \
             attempts = attempts + 1 WHERE id = ?1",
            params![id, code.as_str(), reason],
        )?;
        Self::tap_where(&conn, "id = ?1", &id.to_string())
    }

    fn tap_where(conn: &Connection, cond: &str, arg: &str) -> CoreResult<Option<LocalTap>> {
        let sql = format!("SELECT {TAP_COLUMNS} FROM outbox WHERE kind = 'tap' AND {cond}");
        conn.query_row(&sql, [arg], tap_row)
            .optional()?
            .map(local_tap)
            .transpose()
    }

    /// One tap this device made, by its client id.
    pub fn local_tap(&self, client_tap_id: &str) -> CoreResult<Option<LocalTap>> {
        Self::tap_where(&self.lock(), "subject = ?1", client_tap_id)
    }

    /// The newest `limit` taps this device made, newest first.
    pub fn local_taps(&self, limit: u32) -> CoreResult<Vec<LocalTap>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {TAP_COLUMNS} FROM outbox WHERE kind = 'tap' \
             ORDER BY created_ms DESC, id DESC LIMIT ?1"
        ))?;
        let rows = stmt
            .query_map([limit], tap_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(local_tap).collect()
    }

    /// Taps not yet accepted by the server.
    pub fn unsent_count(&self) -> CoreResult<u32> {
        Ok(self.lock().query_row(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'tap' AND state = 'queued'",
            [],
            |r| r.get(0),
        )?)
    }

    /// Rows of every kind still queued.
    pub fn queued_count(&self) -> CoreResult<u32> {
        Ok(self.lock().query_row(
            "SELECT COUNT(*) FROM outbox WHERE state = 'queued'",
            [],
            |r| r.get(0),
        )?)
    }
}
