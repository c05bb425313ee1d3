//! The store's part for the weekly recap: the newest recap heard (from a call or a
//! `RecapReady` event), and the one that came by itself and has not been read yet, for the
//! glance.

use prost::Message;
use rusqlite::Connection;
use tapline_proto::v1 as pb;

use super::Store;
use crate::error::CoreResult;

const LATEST: &str = "recap";
const UNREAD: &str = "recap_unread";

fn decode(bytes: Option<Vec<u8>>) -> CoreResult<Option<pb::Recap>> {
    Ok(bytes.map(|b| pb::Recap::decode(b.as_slice())).transpose()?)
}

impl Store {
    /// The recap with the latest `last_date` heard (none before the first).
    pub fn recap(&self) -> CoreResult<Option<pb::Recap>> {
        decode(Self::kv_get(&self.lock(), LATEST)?)
    }

    /// The recap that came by itself and has not been read.
    pub fn unread_recap(&self) -> CoreResult<Option<pb::Recap>> {
        decode(Self::kv_get(&self.lock(), UNREAD)?)
    }

    /// Keeps a recap read on demand; it counts as reading an unread one that ends on the
    /// same date or earlier.
    pub fn read_recap(&self, recap: &pb::Recap) -> CoreResult<()> {
        let conn = self.lock();
        Self::keep_latest(&conn, recap)?;
        Self::mark_read(&conn, &recap.last_date)
    }

    /// The unread recap was seen (whatever it covers).
    pub fn mark_recap_read(&self) -> CoreResult<()> {
        self.lock()
            .execute("DELETE FROM kv WHERE key = ?1", [UNREAD])?;
        Ok(())
    }

    /// Inside an event transaction: a recap that came by itself, unread until looked at.
    pub fn tx_recap_ready(conn: &Connection, recap: &pb::Recap) -> CoreResult<()> {
        Self::keep_latest(conn, recap)?;
        let newer = decode(Self::kv_get(conn, UNREAD)?)?
            .is_none_or(|kept| kept.last_date <= recap.last_date);
        if newer {
            Self::kv_set(conn, UNREAD, recap.encode_to_vec())?;
        }
        Ok(())
    }

    fn keep_latest(conn: &Connection, recap: &pb::Recap) -> CoreResult<()> {
        let newer = decode(Self::kv_get(conn, LATEST)?)?
            .is_none_or(|kept| kept.last_date <= recap.last_date);
        if newer {
            Self::kv_set(conn, LATEST, recap.encode_to_vec())?;
        }
        Ok(())
    }

    /// Reading a recap up to `last_date` reads an unread one that ends by then.
    fn mark_read(conn: &Connection, last_date: &str) -> CoreResult<()> {
        let covered =
            decode(Self::kv_get(conn, UNREAD)?)?.is_some_and(|u| u.last_date.as_str() <= last_date);
        if covered {
            conn.execute("DELETE FROM kv WHERE key = ?1", [UNREAD])?;
        }
        Ok(())
    }

    /// Forgets the recaps (the couple ended, or the account left).
    pub fn tx_clear_recap(conn: &Connection) -> CoreResult<()> {
        conn.execute("DELETE FROM kv WHERE key IN (?1, ?2)", [LATEST, UNREAD])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recap(last: &str) -> pb::Recap {
        pb::Recap {
            last_date: last.into(),
            connected_days: 3,
            ..Default::default()
        }
    }

    #[test]
    fn a_recap_that_came_stays_unread_until_a_recap_as_late_is_read() {
        let dir = super::super::tests::temp_dir("recap");
        let store = Store::open(&dir).unwrap();
        store
            .apply_event("e1", 1, |tx| {
                Store::tx_recap_ready(tx, &recap("2026-07-12"))
            })
            .unwrap();
        assert_eq!(
            store.unread_recap().unwrap().unwrap().last_date,
            "2026-07-12"
        );
        // Reading an older week leaves it unread, and the newest heard stays the latest.
        store.read_recap(&recap("2026-07-05")).unwrap();
        assert!(store.unread_recap().unwrap().is_some());
        assert_eq!(store.recap().unwrap().unwrap().last_date, "2026-07-12");
        // Reading that week (or a later one) reads it.
        store.read_recap(&recap("2026-07-13")).unwrap();
        assert_eq!(store.unread_recap().unwrap(), None);
        assert_eq!(store.recap().unwrap().unwrap().last_date, "2026-07-13");
        // Marking it read by hand does too.
        store
            .apply_event("e2", 2, |tx| {
                Store::tx_recap_ready(tx, &recap("2026-07-19"))
            })
            .unwrap();
        store.mark_recap_read().unwrap();
        assert_eq!(store.unread_recap().unwrap(), None);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
