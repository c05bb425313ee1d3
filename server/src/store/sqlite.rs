//! [`Store`] on SQLite: a rusqlite handle owned by the writer thread, statements prepared once
//! and run row by row in place.
//!
//! sqlx runs every SQLite statement on a worker thread and hands each row back through a
//! channel, so a batch of a dozen statements and a thousand rows cost thousands of thread
//! wake-ups. The writer owns a thread already, so it owns this handle too: a set is one cached
//! statement run once per element, with no JSON to build or parse and no statement journal
//! for one-row writes.

use std::time::Duration;

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{
    ACCOUNT_COLUMNS, AccountRow, AckedTap, CHECKIN_COLUMNS, CheckinRow, CoupleRow, CursorRow,
    InboxRow, PauseRow, ReceiptRow, SpaceInForce, SpaceSpan, Store, StreakRows, TAP_COLUMNS,
    TapRow, TogetherInForce, TogetherSpan, account_row, day_record, day_str, parse_day, parse_zone,
    push_wakes, streak_state,
};
use crate::domain::streaks::{DayRecord, StreakState};
use crate::error::Result;

/// Every SQLite connection's settings: WAL for concurrent readers; FULL so an acknowledged tap
/// survives power loss; foreign keys on; wait for the write lock rather than fail.
pub const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;";

/// Prepared statements kept per handle: every statement here, with room to spare.
const STATEMENT_CACHE: usize = 64;
/// How often the [`Checkpointer`] copies the WAL back.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The writer's SQLite handle and its WAL checkpointer.
pub struct SqliteStore {
    conn: Connection,
    _checkpointer: Checkpointer,
}

impl SqliteStore {
    /// Opens the writer's handle on the file at `path`, with [`PRAGMAS`]. Statement journals
    /// stay in memory and the page cache holds 32 MiB (the default 2 MiB made the hot inbox and
    /// index pages a read each). The WAL is copied back by [`Checkpointer`] on another thread;
    /// this handle does it only if that one falls far behind.
    pub fn open(path: &str) -> Result<SqliteStore> {
        let conn = Connection::open(path)?;
        conn.execute_batch(PRAGMAS)?;
        conn.execute_batch(
            "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768; \
             PRAGMA wal_autocheckpoint = 16384;",
        )?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(SqliteStore {
            conn,
            _checkpointer: Checkpointer::start(path)?,
        })
    }

    /// The handle, for the group commit's other statements in the same transaction.
    pub fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Runs `sql` once per element of `items`, binding what `bind` gives, collecting the rows
    /// `read` makes of each result row.
    fn each<I, P, T>(
        &self,
        sql: &str,
        items: impl IntoIterator<Item = I>,
        bind: impl Fn(I) -> P,
        mut read: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>>
    where
        P: rusqlite::Params,
    {
        let mut st = self.conn.prepare_cached(sql)?;
        let mut out = Vec::new();
        for item in items {
            let mut rows = st.query(bind(item))?;
            while let Some(row) = rows.next()? {
                out.push(read(row)?);
            }
        }
        Ok(out)
    }

    /// Runs `sql` once per element of `items`; the rows changed.
    fn exec_each<I, P>(
        &self,
        sql: &str,
        items: impl IntoIterator<Item = I>,
        bind: impl Fn(I) -> P,
    ) -> Result<usize>
    where
        P: rusqlite::Params,
    {
        let mut st = self.conn.prepare_cached(sql)?;
        let mut n = 0;
        for item in items {
            n += st.execute(bind(item))?;
        }
        Ok(n)
    }
}

fn account(r: &Row<'_>) -> Result<AccountRow> {
    account_row(
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    )
}

fn tap(r: &Row<'_>) -> Result<TapRow> {
    Ok(TapRow {
        id: r.get(0)?,
        couple_id: r.get(1)?,
        sender_account_id: r.get(2)?,
        sender_device_id: r.get(3)?,
        client_tap_id: r.get(4)?,
        kind: r.get(5)?,
        rhythm: r.get(6)?,
        note: r.get(7)?,
        created_at_us: r.get(8)?,
    })
}

fn couple(r: &Row<'_>) -> Result<CoupleRow> {
    Ok(CoupleRow {
        id: r.get(0)?,
        account_a: r.get(1)?,
        account_b: r.get(2)?,
        created_at_us: r.get(3)?,
    })
}

fn day(r: &Row<'_>, at: usize) -> Result<DayRecord> {
    day_record(
        &r.get::<_, String>(at)?,
        r.get(at + 1)?,
        r.get(at + 2)?,
        &r.get::<_, String>(at + 3)?,
    )
}

impl Store for SqliteStore {
    async fn begin(&mut self) -> Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    async fn commit(&mut self) -> Result<()> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    async fn rollback(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    async fn couples_of(&mut self, accounts: &[String]) -> Result<Vec<(String, Option<String>)>> {
        self.each(
            "SELECT id, couple_id FROM accounts WHERE id = ?1",
            accounts,
            |a| [a],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    async fn lock_couples(&mut self, couples: &[String]) -> Result<Vec<CoupleRow>> {
        self.each(
            "SELECT id, account_a, account_b, created_at_us FROM couples WHERE id = ?1",
            couples,
            |c| [c],
            couple,
        )
    }

    async fn members(&mut self, couples: &[String]) -> Result<Vec<AccountRow>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE couple_id = ?1");
        self.each(&sql, couples, |c| [c], account)
    }

    async fn accounts(&mut self, ids: &[String]) -> Result<Vec<AccountRow>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1");
        self.each(&sql, ids, |c| [c], account)
    }

    async fn lock_devices(&mut self, accounts: &[String]) -> Result<Vec<(String, String)>> {
        self.each(
            "SELECT id, account_id FROM devices WHERE account_id = ?1 AND revoked_at_us IS NULL \
             ORDER BY id",
            accounts,
            |a| [a],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    async fn taps_by_client_id(&mut self, keys: &[(String, String)]) -> Result<Vec<TapRow>> {
        let sql = format!(
            "SELECT {TAP_COLUMNS} FROM taps WHERE sender_device_id = ?1 AND client_tap_id = ?2"
        );
        self.each(&sql, keys, |(d, c)| [d, c], tap)
    }

    async fn taps_by_id(&mut self, ids: &[String]) -> Result<Vec<TapRow>> {
        let sql = format!("SELECT {TAP_COLUMNS} FROM taps WHERE id = ?1");
        self.each(&sql, ids, |id| [id], tap)
    }

    async fn insert_taps(&mut self, taps: &[TapRow]) -> Result<Vec<String>> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO taps (id, couple_id, sender_account_id, sender_device_id, client_tap_id, \
             kind, rhythm, note, created_at_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (sender_device_id, client_tap_id) DO NOTHING",
        )?;
        let mut stored = Vec::with_capacity(taps.len());
        for t in taps {
            let n = st.execute((
                &t.id,
                &t.couple_id,
                &t.sender_account_id,
                &t.sender_device_id,
                &t.client_tap_id,
                &t.kind,
                &t.rhythm,
                &t.note,
                &t.created_at_us,
            ))?;
            if n == 1 {
                stored.push(t.id.clone());
            }
        }
        Ok(stored)
    }

    async fn insert_receipts(&mut self, receipts: &[ReceiptRow]) -> Result<Vec<ReceiptRow>> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO tap_receipts (tap_id, account_id, kind, created_at_us) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tap_id, account_id, kind) DO NOTHING",
        )?;
        let mut new = Vec::new();
        for r in receipts {
            if st.execute(params![r.tap_id, r.account_id, r.kind, r.created_at_us])? == 1 {
                new.push(r.clone());
            }
        }
        Ok(new)
    }

    async fn bump_seqs(&mut self, counts: &[(String, i64)]) -> Result<Vec<(String, i64)>> {
        self.each(
            "UPDATE devices SET next_seq = next_seq + ?2 WHERE id = ?1 RETURNING id, next_seq",
            counts,
            |(d, n)| (d, n),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    async fn insert_events(&mut self, rows: &[InboxRow]) -> Result<()> {
        self.exec_each(
            "INSERT INTO inbox (device_id, seq, event_id, payload, created_at_us, tap_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rows,
            |e| {
                (
                    &e.device_id,
                    &e.seq,
                    &e.event_id,
                    &e.payload,
                    &e.created_at_us,
                    &e.tap_id,
                )
            },
        )?;
        // A wake-up for each device with a push target, in the same transaction; a burst
        // collapses into the device's pending one.
        self.exec_each(
            "INSERT INTO push_jobs (device_id, seq, urgent, due_at_us, created_at_us) \
             SELECT ?1, ?2, ?3, CASE WHEN (SELECT live_until_us FROM live_streams \
             WHERE device_id = ?1) > ?5 THEN ?4 ELSE ?5 END, ?5 WHERE EXISTS \
             (SELECT 1 FROM push_targets WHERE device_id = ?1) \
             ON CONFLICT (device_id) DO UPDATE SET seq = MAX(seq, excluded.seq), \
             urgent = MAX(urgent, excluded.urgent)",
            push_wakes(rows),
            |w| (w.device_id, w.seq, w.urgent, w.due_at_us, w.created_at_us),
        )?;
        Ok(())
    }

    async fn notify(&mut self, _payloads: &[String]) -> Result<()> {
        Ok(())
    }

    async fn cursors(&mut self, devices: &[String]) -> Result<Vec<CursorRow>> {
        self.each(
            "SELECT id, account_id, acked_seq, next_seq FROM devices \
             WHERE id = ?1 AND revoked_at_us IS NULL",
            devices,
            |d| [d],
            |r| {
                Ok(CursorRow {
                    device_id: r.get(0)?,
                    account_id: r.get(1)?,
                    acked_seq: r.get(2)?,
                    next_seq: r.get(3)?,
                })
            },
        )
    }

    async fn acked_taps(&mut self, ranges: &[(String, i64, i64)]) -> Result<Vec<AckedTap>> {
        self.each(
            "SELECT i.device_id, i.tap_id, t.sender_account_id FROM inbox i \
             JOIN taps t ON t.id = i.tap_id \
             WHERE i.device_id = ?1 AND i.seq > ?2 AND i.seq <= ?3 AND i.tap_id IS NOT NULL",
            ranges,
            |(d, a, b)| (d, a, b),
            |r| {
                Ok(AckedTap {
                    device_id: r.get(0)?,
                    tap_id: r.get(1)?,
                    sender_account_id: r.get(2)?,
                })
            },
        )
    }

    async fn set_acked(
        &mut self,
        acks: &[(String, i64)],
        forget: &[(String, i64, i64)],
    ) -> Result<()> {
        self.exec_each(
            "UPDATE devices SET acked_seq = ?2 WHERE id = ?1",
            acks,
            |(d, n)| (d, n),
        )?;
        self.exec_each(
            "DELETE FROM inbox WHERE device_id = ?1 AND seq > ?2 AND seq <= ?3",
            forget,
            |(d, a, b)| (d, a, b),
        )?;
        // The device has what the pending wake-up was about: no push.
        self.exec_each(
            "DELETE FROM push_jobs WHERE device_id = ?1 AND seq <= ?2",
            acks,
            |(d, n)| (d, n),
        )?;
        Ok(())
    }

    async fn load_streaks(&mut self, couples: &[String]) -> Result<StreakRows> {
        let couple_rows = self.lock_couples(couples).await?;
        let accounts = couple_rows
            .iter()
            .flat_map(|c| [&c.account_a, &c.account_b]);
        let zones = self.each(
            "SELECT account_id, from_us, zone FROM zone_history WHERE account_id = ?1 \
             ORDER BY from_us",
            accounts,
            |a| [a],
            |r| Ok((r.get(0)?, r.get(1)?, parse_zone(&r.get::<_, String>(2)?)?)),
        )?;
        let states = self.each(
            "SELECT couple_id, first_day, settled_through, current_days, longest_days, freezes, \
             calm FROM couple_streaks WHERE couple_id = ?1",
            couples,
            |c| [c],
            |r| {
                let state = streak_state(
                    &r.get::<_, String>(1)?,
                    &r.get::<_, String>(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                )?;
                Ok((r.get(0)?, state))
            },
        )?;
        let pauses = self.each(
            "SELECT id, couple_id, from_day, to_day, by_account FROM streak_pauses \
             WHERE couple_id = ?1 AND cancelled = 0",
            couples,
            |c| [c],
            |r| {
                Ok(PauseRow {
                    id: r.get(0)?,
                    couple_id: r.get(1)?,
                    from: parse_day(&r.get::<_, String>(2)?)?,
                    to: parse_day(&r.get::<_, String>(3)?)?,
                    by_account: r.get(4)?,
                })
            },
        )?;
        let open_days = self.each(
            "SELECT d.couple_id, d.day, d.actions_a, d.actions_b, d.status FROM streak_days d \
             JOIN couple_streaks s ON s.couple_id = d.couple_id \
             WHERE d.couple_id = ?1 AND d.day >= s.settled_through",
            couples,
            |c| [c],
            |r| Ok((r.get(0)?, day(r, 1)?)),
        )?;
        Ok(StreakRows {
            couples: couple_rows,
            zones,
            states,
            pauses,
            open_days,
        })
    }

    async fn days(
        &mut self,
        couple: &str,
        after: NaiveDate,
        through: NaiveDate,
    ) -> Result<Vec<DayRecord>> {
        self.each(
            "SELECT day, actions_a, actions_b, status FROM streak_days \
             WHERE couple_id = ?1 AND day > ?2 AND day <= ?3 ORDER BY day",
            [(day_str(after), day_str(through))],
            |(a, t)| (couple, a, t),
            |r| day(r, 0),
        )
    }

    async fn last_connected(&mut self, couple: &str) -> Result<Option<NaiveDate>> {
        let day: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT MAX(day) FROM streak_days WHERE couple_id = ?1 AND status = 'connected'",
            )?
            .query_row([couple], |r| r.get(0))?;
        day.map(|d| parse_day(&d)).transpose()
    }

    async fn save_days(&mut self, days: &[(String, DayRecord)]) -> Result<()> {
        self.exec_each(
            "INSERT INTO streak_days (couple_id, day, actions_a, actions_b, status) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (couple_id, day) DO UPDATE SET \
             actions_a = excluded.actions_a, actions_b = excluded.actions_b, \
             status = excluded.status",
            days,
            |(c, d)| {
                (
                    c,
                    day_str(d.date),
                    d.actions_a,
                    d.actions_b,
                    d.status.as_str(),
                )
            },
        )?;
        Ok(())
    }

    async fn save_states(&mut self, states: &[(String, StreakState)]) -> Result<()> {
        self.exec_each(
            "INSERT INTO couple_streaks (couple_id, first_day, settled_through, current_days, \
             longest_days, freezes, calm) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (couple_id) DO UPDATE SET settled_through = excluded.settled_through, \
             current_days = excluded.current_days, longest_days = excluded.longest_days, \
             freezes = excluded.freezes, calm = excluded.calm",
            states,
            |(c, s)| {
                (
                    c,
                    day_str(s.first_day),
                    day_str(s.settled_through),
                    s.current,
                    s.longest,
                    s.freezes,
                    i64::from(s.calm),
                )
            },
        )?;
        Ok(())
    }

    async fn insert_pause(&mut self, p: &PauseRow, created_at_us: i64) -> Result<()> {
        self.conn.prepare_cached(
            "INSERT INTO streak_pauses (id, couple_id, from_day, to_day, by_account, created_at_us) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            p.id,
            p.couple_id,
            day_str(p.from),
            day_str(p.to),
            p.by_account,
            created_at_us
        ])?;
        Ok(())
    }

    async fn cancel_pause(&mut self, id: &str) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE streak_pauses SET cancelled = 1 WHERE id = ?1")?
            .execute([id])?;
        Ok(())
    }

    async fn space_spans(&mut self, couples: &[(String, i64)]) -> Result<Vec<SpaceSpan>> {
        self.each(
            "SELECT couple_id, account_id, started_at_us, COALESCE(ended_at_us, until_us) \
             FROM spaces WHERE couple_id = ?1 AND until_us >= ?2 ORDER BY started_at_us",
            couples,
            |(c, bound)| (c, *bound),
            |r| {
                Ok(SpaceSpan {
                    couple_id: r.get(0)?,
                    account_id: r.get(1)?,
                    from_us: r.get(2)?,
                    to_us: r.get(3)?,
                })
            },
        )
    }

    async fn spaces_in_force(&mut self, accounts: &[String]) -> Result<Vec<SpaceInForce>> {
        self.each(
            "SELECT account_id, id, until_us FROM spaces \
             WHERE account_id = ?1 AND ended_at_us IS NULL",
            accounts,
            |a| [a],
            |r| {
                Ok(SpaceInForce {
                    account_id: r.get(0)?,
                    space_id: r.get(1)?,
                    until_us: r.get(2)?,
                })
            },
        )
    }

    async fn hold_taps(&mut self, rows: &[(String, String, i64)]) -> Result<()> {
        self.exec_each(
            "INSERT INTO held_taps (tap_id, space_id, held_at_us) VALUES (?1, ?2, ?3) \
             ON CONFLICT (tap_id) DO NOTHING",
            rows,
            |(t, s, at)| (t, s, *at),
        )?;
        Ok(())
    }

    async fn together_spans(&mut self, couples: &[(String, i64)]) -> Result<Vec<TogetherSpan>> {
        self.each(
            "SELECT couple_id, confirmed_at_us, COALESCE(ended_at_us, until_us) FROM together \
             WHERE couple_id = ?1 AND confirmed_at_us IS NOT NULL AND until_us >= ?2 \
             ORDER BY confirmed_at_us",
            couples,
            |(c, bound)| (c, *bound),
            |r| {
                Ok(TogetherSpan {
                    couple_id: r.get(0)?,
                    from_us: r.get(1)?,
                    to_us: r.get(2)?,
                })
            },
        )
    }

    async fn together_in_force(&mut self, couples: &[String]) -> Result<Vec<TogetherInForce>> {
        self.each(
            "SELECT couple_id, id, until_us FROM together \
             WHERE couple_id = ?1 AND ended_at_us IS NULL AND confirmed_at_us IS NOT NULL",
            couples,
            |c| [c],
            |r| {
                Ok(TogetherInForce {
                    couple_id: r.get(0)?,
                    together_id: r.get(1)?,
                    until_us: r.get(2)?,
                })
            },
        )
    }

    async fn hold_together_taps(&mut self, rows: &[(String, String, i64)]) -> Result<()> {
        self.exec_each(
            "INSERT INTO together_held_taps (tap_id, together_id, held_at_us) \
             VALUES (?1, ?2, ?3) ON CONFLICT (tap_id) DO NOTHING",
            rows,
            |(t, s, at)| (t, s, *at),
        )?;
        Ok(())
    }

    async fn checkin(&mut self, id: &str, couple: &str) -> Result<Option<CheckinRow>> {
        let sql =
            format!("SELECT {CHECKIN_COLUMNS} FROM checkins WHERE id = ?1 AND couple_id = ?2");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([id, couple], |r| {
                Ok(CheckinRow {
                    id: r.get(0)?,
                    couple_id: r.get(1)?,
                    prompt_id: r.get(2)?,
                    routine_id: r.get(3)?,
                    opened_by: r.get(4)?,
                    opened_at_us: r.get(5)?,
                    expires_at_us: r.get(6)?,
                    phase: r.get(7)?,
                    answer_a: r.get(8)?,
                    answer_b: r.get(9)?,
                })
            })
            .optional()?)
    }

    async fn save_checkin(&mut self, c: &CheckinRow) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE checkins SET phase = ?1, answer_a = ?2, answer_b = ?3 WHERE id = ?4",
            )?
            .execute(params![c.phase, c.answer_a, c.answer_b, c.id])?;
        Ok(())
    }
}

/// Copies SQLite's WAL back into the database on its own thread (a passive checkpoint, which
/// never blocks the writer), so the group commit does not pay for it; stops, after a last
/// checkpoint, when dropped.
pub struct Checkpointer {
    _stop: std::sync::mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing the SQLite file at `path`.
    pub fn start(path: &str) -> Result<Checkpointer> {
        let conn = Connection::open(path)?;
        conn.execute_batch(PRAGMAS)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("tapline-checkpoint".into())
            .spawn(move || {
                loop {
                    let last = matches!(
                        stopped.recv_timeout(CHECKPOINT_EVERY),
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
                    );
                    if let Err(e) = checkpoint(&conn) {
                        tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                    }
                    if last {
                        break;
                    }
                }
            })?;
        Ok(Checkpointer { _stop: stop })
    }
}

/// One passive checkpoint: the WAL frames copied so far and in all.
fn checkpoint(conn: &Connection) -> Result<(i64, i64)> {
    Ok(conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(2)?, r.get::<_, i64>(1)?))
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkpointer_copies_the_wal_back_off_the_writer() {
        let dir = std::env::temp_dir().join(format!("tapline-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.db");
        let path = path.to_str().unwrap();
        let writer = SqliteStore::open(path).unwrap();
        writer
            .conn
            .execute_batch("CREATE TABLE t (v BLOB); INSERT INTO t VALUES (zeroblob(100000));")
            .unwrap();
        let other = Connection::open(path).unwrap();
        let (copied, frames) = checkpoint(&other).unwrap();
        assert!(
            frames > 20,
            "the writer left its pages in the WAL ({frames} frames)"
        );
        assert_eq!(copied, frames);
        // Dropping it stops its thread after a last checkpoint.
        drop(Checkpointer::start(path).unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }
}
