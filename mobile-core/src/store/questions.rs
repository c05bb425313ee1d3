//! The store's part for the deeper questions: the couple's progress as last heard, for the
//! glance ("a question waits for your answer") offline.

use prost::Message;
use rusqlite::Connection;
use tapline_proto::v1 as pb;

use super::Store;
use crate::error::CoreResult;

const KEY: &str = "questions";

impl Store {
    /// The deck's progress as last heard (none before the first call or event).
    pub fn question_progress(&self) -> CoreResult<Option<pb::QuestionProgress>> {
        let bytes: Option<Vec<u8>> = Self::kv_get(&self.lock(), KEY)?;
        Ok(bytes
            .map(|b| pb::QuestionProgress::decode(b.as_slice()))
            .transpose()?)
    }

    /// Keeps what the server said.
    pub fn set_question_progress(&self, p: &pb::QuestionProgress) -> CoreResult<()> {
        Self::tx_set_question_progress(&self.lock(), p)
    }

    /// Inside an event transaction (or under the lock): keeps the progress.
    pub fn tx_set_question_progress(conn: &Connection, p: &pb::QuestionProgress) -> CoreResult<()> {
        Self::kv_set(conn, KEY, p.encode_to_vec())
    }

    /// Forgets the progress (the couple ended, or the account left).
    pub fn tx_clear_questions(conn: &Connection) -> CoreResult<()> {
        conn.execute("DELETE FROM kv WHERE key = ?1", [KEY])?;
        Ok(())
    }
}
