//! The store's part for streaks and check-ins: the streak snapshot and the check-ins the glance
//! reads, and answers waiting in the outbox.

use prost::Message;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tapline_proto::v1 as pb;

use super::Store;
use super::outbox::{OutboxKind, refusal};
use crate::error::{CoreError, CoreResult, RefusalCode};
use crate::model::{AnswerState, CheckinAnswer, LocalAnswer};
use crate::model::{from_millis, millis, system_time};

/// Check-ins kept for the glance and offline answers.
const KEEP_CHECKINS: i64 = 100;

type AnswerRow = (Vec<u8>, String, Option<String>, Option<String>, i64, i64);

fn answer_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AnswerRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn local_answer(
    (payload, state, code, words, attempts, created_ms): AnswerRow,
) -> CoreResult<LocalAnswer> {
    let req = pb::AnswerCheckinRequest::decode(payload.as_slice())?;
    let answer = CheckinAnswer::from_wire(req.answer.as_ref())
        .ok_or_else(|| CoreError::Corrupt("queued answer without a value".into()))?;
    Ok(LocalAnswer {
        checkin_id: req.checkin_id,
        answer,
        state: match state.as_str() {
            "queued" => AnswerState::Queued,
            "sent" => AnswerState::Sent,
            _ => {
                let (reason, code) = refusal(code.as_deref(), words);
                AnswerState::Refused { reason, code }
            }
        },
        created_at: from_millis(created_ms),
        attempts: attempts as u32,
    })
}

const ANSWER_COLUMNS: &str = "payload, state, refusal_code, refusal, attempts, created_ms";

impl Store {
    /// Runs `f` in one transaction.
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> CoreResult<T>,
    ) -> CoreResult<T> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// The last streak the server sent.
    pub fn streak(&self) -> CoreResult<Option<pb::Streak>> {
        Self::tx_streak(&self.lock())
    }

    /// Replaces the streak snapshot.
    pub fn set_streak(&self, streak: &pb::Streak) -> CoreResult<()> {
        Self::tx_set_streak(&self.lock(), streak)
    }

    /// The streak snapshot, on a connection or in a transaction.
    pub fn tx_streak(conn: &Connection) -> CoreResult<Option<pb::Streak>> {
        let bytes: Option<Vec<u8>> = Self::kv_get(conn, "streak")?;
        Ok(bytes
            .map(|b| pb::Streak::decode(b.as_slice()))
            .transpose()?)
    }

    /// Replaces the streak snapshot, on a connection or in a transaction.
    pub fn tx_set_streak(conn: &Connection, streak: &pb::Streak) -> CoreResult<()> {
        Self::kv_set(conn, "streak", streak.encode_to_vec())
    }

    /// Forgets the streak, the check-ins, the spaces, together time, the next meeting, the
    /// questions' progress, the reconnect plan and the recaps (the couple ended, or the account
    /// left).
    pub fn tx_clear_rituals(conn: &Connection) -> CoreResult<()> {
        conn.execute("DELETE FROM kv WHERE key = 'streak'", [])?;
        conn.execute("DELETE FROM checkins", [])?;
        Self::tx_clear_spaces(conn)?;
        Self::tx_clear_together(conn)?;
        Self::tx_clear_questions(conn)?;
        Self::tx_clear_reconnect(conn)?;
        Self::tx_clear_recap(conn)?;
        Ok(())
    }

    /// Keeps the newest state of check-ins.
    pub fn save_checkins(&self, checkins: &[pb::Checkin]) -> CoreResult<()> {
        self.transaction(|tx| {
            for c in checkins {
                Self::tx_save_checkin(tx, c)?;
            }
            Ok(())
        })
    }

    /// Keeps the newest state of a check-in, on a connection or in a transaction.
    pub fn tx_save_checkin(conn: &Connection, c: &pb::Checkin) -> CoreResult<()> {
        if c.checkin_id.is_empty() {
            return Ok(());
        }
        let opened_ms = millis(system_time(c.opened_at.as_ref()));
        conn.execute(
            "INSERT INTO checkins (checkin_id, payload, opened_ms) VALUES (?1, ?2, ?3) ON CONFLICT (checkin_id) DO UPDATE SET payload = excluded.payload, opened_ms = excluded.opened_ms",
            params![c.checkin_id, c.encode_to_vec(), opened_ms],
        )?;
        conn.execute(
            "DELETE FROM checkins WHERE checkin_id NOT IN (SELECT checkin_id FROM checkins ORDER BY opened_ms DESC LIMIT ?1)",
            [KEEP_CHECKINS],
        )?;
        Ok(())
    }

    /// A stored check-in.
    pub fn checkin(&self, checkin_id: &str) -> CoreResult<Option<pb::Checkin>> {
        let bytes: Option<Vec<u8>> = self
            .lock()
            .query_row(
                "SELECT payload FROM checkins WHERE checkin_id = ?1",
                [checkin_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(bytes
            .map(|b| pb::Checkin::decode(b.as_slice()))
            .transpose()?)
    }

    /// The stored check-ins, newest first.
    pub fn checkins(&self) -> CoreResult<Vec<pb::Checkin>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT payload FROM checkins ORDER BY opened_ms DESC")?;
        let rows = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        rows.iter()
            .map(|b| Ok(pb::Checkin::decode(b.as_slice())?))
            .collect()
    }

    /// Queues an answer. The same answer again returns the one queued; another answer to a
    /// check-in this device already answered is refused; a failed one may be replaced.
    pub fn enqueue_answer(
        &self,
        checkin_id: &str,
        answer: &CheckinAnswer,
        now_ms: i64,
    ) -> CoreResult<LocalAnswer> {
        self.transaction(|tx| {
            if let Some(existing) = Self::tx_local_answer(tx, checkin_id)? {
                match existing.state {
                    AnswerState::Refused { .. } => {
                        tx.execute(
                            "DELETE FROM outbox WHERE kind = 'answer' AND subject = ?1",
                            [checkin_id],
                        )?;
                    }
                    _ if existing.answer == *answer => return Ok(existing),
                    _ => {
                        return Err(CoreError::Refused(
                            RefusalCode::AlreadyAnswered,
                            "answers are final: you already answered this check-in".into(),
                        ));
                    }
                }
            }
            let req = pb::AnswerCheckinRequest {
                checkin_id: checkin_id.to_owned(),
                answer: Some(answer.to_wire()),
            };
            Self::tx_enqueue(
                tx,
                OutboxKind::Answer,
                checkin_id,
                &req.encode_to_vec(),
                now_ms,
            )?;
            Self::tx_local_answer(tx, checkin_id)?
                .ok_or_else(|| CoreError::Invalid("queued answer vanished".into()))
        })
    }

    /// The answer this device gave to a check-in, on a connection or in a transaction.
    pub fn tx_local_answer(conn: &Connection, checkin_id: &str) -> CoreResult<Option<LocalAnswer>> {
        let sql =
            format!("SELECT {ANSWER_COLUMNS} FROM outbox WHERE kind = 'answer' AND subject = ?1");
        conn.query_row(&sql, [checkin_id], answer_row)
            .optional()?
            .map(local_answer)
            .transpose()
    }

    /// The answer this device gave to a check-in.
    pub fn local_answer(&self, checkin_id: &str) -> CoreResult<Option<LocalAnswer>> {
        Self::tx_local_answer(&self.lock(), checkin_id)
    }

    /// The newest answers this device gave, newest first.
    pub fn local_answers(&self, limit: u32) -> CoreResult<Vec<LocalAnswer>> {
        let conn = self.lock();
        let sql = format!(
            "SELECT {ANSWER_COLUMNS} FROM outbox WHERE kind = 'answer' ORDER BY created_ms DESC, id DESC LIMIT ?1"
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt
            .query_map([limit], answer_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(local_answer).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OutboxKind;

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "tapline-core-rituals-{tag}-{}",
            uuid::Uuid::new_v4().simple()
        ))
    }

    #[test]
    fn answers_queue_once_and_are_final() {
        let dir = temp_dir("answers");
        let store = Store::open(&dir).unwrap();
        let four = CheckinAnswer::Scale { value: 4 };
        let a = store.enqueue_answer("c1", &four, 1000).unwrap();
        assert_eq!(
            (a.state, a.checkin_id.as_str()),
            (AnswerState::Queued, "c1")
        );
        // The same answer again: the one queued.
        let again = store.enqueue_answer("c1", &four, 2000).unwrap();
        assert_eq!(again.created_at, from_millis(1000));
        // Another answer: refused.
        let other = store.enqueue_answer("c1", &CheckinAnswer::Scale { value: 2 }, 3000);
        assert!(matches!(
            other,
            Err(CoreError::Refused(RefusalCode::AlreadyAnswered, _))
        ));
        // Answers go out through the outbox like taps, but do not count as unsent taps.
        assert_eq!(store.unsent_count().unwrap(), 0);
        let item = store.next_due(5000).unwrap().unwrap();
        assert_eq!(item.kind, OutboxKind::Answer);
        store
            .mark_refused(item.id, RefusalCode::CheckinExpired, "expired")
            .unwrap();
        assert_eq!(
            store.local_answer("c1").unwrap().unwrap().state,
            AnswerState::Refused {
                reason: "expired".into(),
                code: RefusalCode::CheckinExpired
            }
        );
        // A refused answer may be given again.
        let retry = store
            .enqueue_answer("c1", &CheckinAnswer::Scale { value: 2 }, 6000)
            .unwrap();
        assert_eq!(retry.state, AnswerState::Queued);
        let item = store.next_due(7000).unwrap().unwrap();
        store.mark_sent(item.id, None).unwrap();
        let all = store.local_answers(10).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].state, AnswerState::Sent);
        assert_eq!(all[0].answer, CheckinAnswer::Scale { value: 2 });
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn snapshots_are_kept_and_cleared() {
        let dir = temp_dir("snapshots");
        let store = Store::open(&dir).unwrap();
        assert!(store.streak().unwrap().is_none());
        store
            .set_streak(&pb::Streak {
                current: 5,
                ..Default::default()
            })
            .unwrap();
        let at = |s| {
            Some(prost_types::Timestamp {
                seconds: s,
                nanos: 0,
            })
        };
        store
            .save_checkins(&[
                pb::Checkin {
                    checkin_id: "old".into(),
                    opened_at: at(10),
                    ..Default::default()
                },
                pb::Checkin {
                    checkin_id: "new".into(),
                    opened_at: at(20),
                    ..Default::default()
                },
            ])
            .unwrap();
        store
            .save_checkins(&[pb::Checkin {
                checkin_id: "old".into(),
                opened_at: at(10),
                partner_answered: true,
                ..Default::default()
            }])
            .unwrap();
        let ids: Vec<_> = store
            .checkins()
            .unwrap()
            .into_iter()
            .map(|c| c.checkin_id)
            .collect();
        assert_eq!(ids, ["new", "old"]);
        assert!(store.checkin("old").unwrap().unwrap().partner_answered);
        assert_eq!(store.streak().unwrap().unwrap().current, 5);
        store.forget_all().unwrap();
        assert!(store.streak().unwrap().is_none());
        assert!(store.checkins().unwrap().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
