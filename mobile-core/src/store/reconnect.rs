//! The store's part for the reconnect plan: the couple's latest plan as last heard, for the
//! glance ("a step waits for you") and the apps offline.

use prost::Message;
use rusqlite::Connection;
use tapline_proto::v1 as pb;

use super::Store;
use crate::error::CoreResult;

const KEY: &str = "reconnect";

impl Store {
    /// The latest plan as last heard (none before the first call or event).
    pub fn reconnect(&self) -> CoreResult<Option<pb::ReconnectPlan>> {
        Self::tx_reconnect(&self.lock())
    }

    fn tx_reconnect(conn: &Connection) -> CoreResult<Option<pb::ReconnectPlan>> {
        let bytes: Option<Vec<u8>> = Self::kv_get(conn, KEY)?;
        Ok(bytes
            .map(|b| pb::ReconnectPlan::decode(b.as_slice()))
            .transpose()?)
    }

    /// Keeps what the server said (a call's answer).
    pub fn set_reconnect(&self, plan: &pb::ReconnectPlan) -> CoreResult<()> {
        Self::tx_set_reconnect(&self.lock(), plan)
    }

    /// Inside an event transaction (or under the lock): keeps `plan` unless the one kept is a
    /// newer plan (ids grow with time), so a late event about an old plan changes nothing.
    pub fn tx_set_reconnect(conn: &Connection, plan: &pb::ReconnectPlan) -> CoreResult<()> {
        let older = Self::tx_reconnect(conn)?.is_some_and(|kept| kept.plan_id > plan.plan_id);
        if older {
            return Ok(());
        }
        Self::kv_set(conn, KEY, plan.encode_to_vec())
    }

    /// Forgets the plan (the couple ended, or the account left).
    pub fn tx_clear_reconnect(conn: &Connection) -> CoreResult<()> {
        conn.execute("DELETE FROM kv WHERE key = ?1", [KEY])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(id: &str, state: pb::ReconnectState) -> pb::ReconnectPlan {
        pb::ReconnectPlan {
            plan_id: id.into(),
            state: state as i32,
            ..Default::default()
        }
    }

    #[test]
    fn the_latest_plan_is_kept_and_an_older_one_changes_nothing() {
        let dir = super::super::tests::temp_dir("reconnect");
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.reconnect().unwrap(), None);
        store
            .set_reconnect(&plan("p1", pb::ReconnectState::Ended))
            .unwrap();
        store
            .set_reconnect(&plan("p2", pb::ReconnectState::Proposed))
            .unwrap();
        store
            .set_reconnect(&plan("p2", pb::ReconnectState::Running))
            .unwrap();
        store
            .set_reconnect(&plan("p1", pb::ReconnectState::Ended))
            .unwrap();
        let kept = store.reconnect().unwrap().unwrap();
        assert_eq!(kept.plan_id, "p2");
        assert_eq!(kept.state, pb::ReconnectState::Running as i32);
        Store::tx_clear_reconnect(&store.lock()).unwrap();
        assert_eq!(store.reconnect().unwrap(), None);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
