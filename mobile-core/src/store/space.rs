//! The store's part for spaces ("I need a moment"): the couple's spaces in force, as last
//! heard, for the glance and the apps offline.

use prost::Message;
use rusqlite::Connection;
use tapline_proto::v1 as pb;

use super::Store;
use crate::error::CoreResult;

const KEY: &str = "spaces";

impl Store {
    /// The spaces in force as last heard (mine, the partner's).
    pub fn spaces(&self) -> CoreResult<pb::GetSpaceResponse> {
        Self::tx_spaces(&self.lock())
    }

    /// Replaces them with what the server said.
    pub fn set_spaces(&self, spaces: &pb::GetSpaceResponse) -> CoreResult<()> {
        Self::kv_set(&self.lock(), KEY, spaces.encode_to_vec())
    }

    fn tx_spaces(conn: &Connection) -> CoreResult<pb::GetSpaceResponse> {
        let bytes: Option<Vec<u8>> = Self::kv_get(conn, KEY)?;
        Ok(bytes
            .map(|b| pb::GetSpaceResponse::decode(b.as_slice()))
            .transpose()?
            .unwrap_or_default())
    }

    /// Inside an event transaction: keeps a space that was asked for or answered in its slot
    /// (mine or the partner's), or clears the slot of one that ended. An update about an
    /// older space than the one kept changes nothing.
    pub fn tx_apply_space(
        conn: &Connection,
        space: &pb::Space,
        my_account: &str,
    ) -> CoreResult<()> {
        let mut spaces = Self::tx_spaces(conn)?;
        let slot = if space.asked_by_account_id == my_account {
            &mut spaces.mine
        } else {
            &mut spaces.partners
        };
        let newer = slot
            .as_ref()
            .is_none_or(|kept| kept.space_id <= space.space_id);
        if !newer {
            return Ok(());
        }
        *slot = space.ended_at.is_none().then(|| space.clone());
        Self::kv_set(conn, KEY, spaces.encode_to_vec())
    }

    /// Forgets the spaces (the couple ended, or the account left).
    pub fn tx_clear_spaces(conn: &Connection) -> CoreResult<()> {
        conn.execute("DELETE FROM kv WHERE key = ?1", [KEY])?;
        Ok(())
    }
}
