//! [`Store`] on PostgreSQL: one sqlx `PgConnection` owned by the writer, every set bound as
//! typed arrays (`UNNEST($1::text[], …)`, `= ANY($1)`), so a statement is one round trip with
//! fixed text (prepared once per connection) whatever the number of rows.

use std::str::FromStr;

use chrono::NaiveDate;
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{Connection, Executor, PgConnection, Row};

use super::{
    ACCOUNT_COLUMNS, AccountRow, AckedTap, CHECKIN_COLUMNS, CheckinRow, CoupleRow, CursorRow,
    InboxRow, PauseRow, ReceiptRow, SpaceInForce, SpaceSpan, Store, StreakRows, TAP_COLUMNS,
    TapRow, TogetherInForce, TogetherSpan, account_row, day_record, day_str, parse_day, parse_zone,
    push_wakes, streak_state,
};
use crate::domain::streaks::{DayRecord, StreakState};
use crate::error::Result;

/// The channel instances listen on for each other's doorbells.
pub const CHANNEL: &str = "tapline_doorbell";

/// The writer's PostgreSQL connection.
pub struct PgStore {
    conn: PgConnection,
}

impl PgStore {
    /// Connects to `url`. This connection never plans a sequential scan where an index serves:
    /// every statement here looks rows up by key, but the inbox and device tables churn so fast
    /// that their statistics lag (a plan made while the inbox was nearly empty kept scanning
    /// all of it, dead rows included, for every batch of acks).
    pub async fn connect(url: &str) -> Result<PgStore> {
        let mut conn = PgConnection::connect_with(&PgConnectOptions::from_str(url)?).await?;
        conn.execute("SET enable_seqscan = off").await?;
        Ok(PgStore { conn })
    }

    /// The connection, for the group commit's other statements in the same transaction.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Closes the connection.
    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

fn account(r: &PgRow) -> Result<AccountRow> {
    account_row(
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
        r.try_get(6)?,
        r.try_get(7)?,
    )
}

fn tap(r: &PgRow) -> Result<TapRow> {
    Ok(TapRow {
        id: r.try_get(0)?,
        couple_id: r.try_get(1)?,
        sender_account_id: r.try_get(2)?,
        sender_device_id: r.try_get(3)?,
        client_tap_id: r.try_get(4)?,
        kind: r.try_get(5)?,
        rhythm: r.try_get(6)?,
        note: r.try_get(7)?,
        created_at_us: r.try_get(8)?,
    })
}

fn couple(r: &PgRow) -> Result<CoupleRow> {
    Ok(CoupleRow {
        id: r.try_get(0)?,
        account_a: r.try_get(1)?,
        account_b: r.try_get(2)?,
        created_at_us: r.try_get(3)?,
    })
}

fn day(r: &PgRow, at: usize) -> Result<DayRecord> {
    day_record(
        r.try_get::<&str, _>(at)?,
        r.try_get(at + 1)?,
        r.try_get(at + 2)?,
        r.try_get::<&str, _>(at + 3)?,
    )
}

/// Column `i` of every element, as a typed array to bind.
fn col<T, U>(items: &[T], f: impl Fn(&T) -> U) -> Vec<U> {
    items.iter().map(f).collect()
}

impl PgStore {
    async fn rows(
        &mut self,
        q: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<Vec<PgRow>> {
        Ok(q.fetch_all(&mut self.conn).await?)
    }
}

impl Store for PgStore {
    async fn begin(&mut self) -> Result<()> {
        self.conn.execute("BEGIN").await?;
        Ok(())
    }

    async fn commit(&mut self) -> Result<()> {
        self.conn.execute("COMMIT").await?;
        Ok(())
    }

    async fn rollback(&mut self) {
        let _ = self.conn.execute("ROLLBACK").await;
    }

    async fn couples_of(&mut self, accounts: &[String]) -> Result<Vec<(String, Option<String>)>> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query!(
            "SELECT id, couple_id FROM accounts WHERE id = ANY($1)",
            accounts
        )
        .fetch_all(&mut self.conn)
        .await?;
        Ok(rows.into_iter().map(|r| (r.id, r.couple_id)).collect())
    }

    async fn lock_couples(&mut self, couples: &[String]) -> Result<Vec<CoupleRow>> {
        if couples.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query_as!(
            CoupleRow,
            "SELECT id, account_a, account_b, created_at_us FROM couples WHERE id = ANY($1) \
             ORDER BY id FOR UPDATE",
            couples
        )
        .fetch_all(&mut self.conn)
        .await?;
        Ok(rows)
    }

    async fn members(&mut self, couples: &[String]) -> Result<Vec<AccountRow>> {
        if couples.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE couple_id = ANY($1)");
        let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(couples);
        self.rows(q).await?.iter().map(account).collect()
    }

    async fn accounts(&mut self, ids: &[String]) -> Result<Vec<AccountRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ANY($1)");
        let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ids);
        self.rows(q).await?.iter().map(account).collect()
    }

    async fn lock_devices(&mut self, accounts: &[String]) -> Result<Vec<(String, String)>> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query!(
            "SELECT id, account_id FROM devices WHERE account_id = ANY($1) \
             AND revoked_at_us IS NULL ORDER BY id FOR UPDATE",
            accounts
        )
        .fetch_all(&mut self.conn)
        .await?;
        Ok(rows.into_iter().map(|r| (r.id, r.account_id)).collect())
    }

    async fn taps_by_client_id(&mut self, keys: &[(String, String)]) -> Result<Vec<TapRow>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {TAP_COLUMNS} FROM taps WHERE (sender_device_id, client_tap_id) IN \
             (SELECT * FROM UNNEST($1::text[], $2::text[]))"
        );
        let q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(col(keys, |k| k.0.clone()))
            .bind(col(keys, |k| k.1.clone()));
        self.rows(q).await?.iter().map(tap).collect()
    }

    async fn taps_by_id(&mut self, ids: &[String]) -> Result<Vec<TapRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT {TAP_COLUMNS} FROM taps WHERE id = ANY($1)");
        let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ids);
        self.rows(q).await?.iter().map(tap).collect()
    }

    async fn insert_taps(&mut self, taps: &[TapRow]) -> Result<Vec<String>> {
        if taps.is_empty() {
            return Ok(Vec::new());
        }
        let stored = sqlx::query_scalar!(
            "INSERT INTO taps (id, couple_id, sender_account_id, sender_device_id, client_tap_id, \
             kind, rhythm, note, created_at_us) SELECT * FROM UNNEST($1::text[], $2::text[], \
             $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bytea[], $8::text[], \
             $9::bigint[]) ON CONFLICT (sender_device_id, client_tap_id) DO NOTHING RETURNING id",
            &col(taps, |t| t.id.clone())[..],
            &col(taps, |t| t.couple_id.clone())[..],
            &col(taps, |t| t.sender_account_id.clone())[..],
            &col(taps, |t| t.sender_device_id.clone())[..],
            &col(taps, |t| t.client_tap_id.clone())[..],
            &col(taps, |t| t.kind)[..],
            &col(taps, |t| t.rhythm.clone())[..] as &[Option<Vec<u8>>],
            &col(taps, |t| t.note.clone())[..],
            &col(taps, |t| t.created_at_us)[..],
        )
        .fetch_all(&mut self.conn)
        .await?;
        Ok(stored)
    }

    async fn insert_receipts(&mut self, receipts: &[ReceiptRow]) -> Result<Vec<ReceiptRow>> {
        if receipts.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query_as!(
            ReceiptRow,
            "INSERT INTO tap_receipts (tap_id, account_id, kind, created_at_us) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[]) \
             ON CONFLICT (tap_id, account_id, kind) DO NOTHING \
             RETURNING tap_id, account_id, kind, created_at_us",
            &col(receipts, |r| r.tap_id.clone())[..],
            &col(receipts, |r| r.account_id.clone())[..],
            &col(receipts, |r| r.kind)[..],
            &col(receipts, |r| r.created_at_us)[..],
        )
        .fetch_all(&mut self.conn)
        .await?;
        Ok(rows)
    }

    async fn bump_seqs(&mut self, counts: &[(String, i64)]) -> Result<Vec<(String, i64)>> {
        if counts.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query!(
            "UPDATE devices SET next_seq = next_seq + v.n \
             FROM UNNEST($1::text[], $2::bigint[]) AS v(dev, n) WHERE devices.id = v.dev \
             RETURNING devices.id, devices.next_seq",
            &col(counts, |c| c.0.clone())[..],
            &col(counts, |c| c.1)[..],
        )
        .fetch_all(&mut self.conn)
        .await?;
        Ok(rows.into_iter().map(|r| (r.id, r.next_seq)).collect())
    }

    async fn insert_events(&mut self, rows: &[InboxRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            "INSERT INTO inbox (device_id, seq, event_id, payload, created_at_us, tap_id) \
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::bytea[], \
             $5::bigint[], $6::text[])",
            &col(rows, |e| e.device_id.clone())[..],
            &col(rows, |e| e.seq)[..],
            &col(rows, |e| e.event_id.clone())[..],
            &col(rows, |e| e.payload.clone())[..],
            &col(rows, |e| e.created_at_us)[..],
            &col(rows, |e| e.tap_id.clone())[..] as &[Option<String>],
        )
        .execute(&mut self.conn)
        .await?;
        // A wake-up for each device with a push target, in the same transaction; a burst
        // collapses into the device's pending one.
        let wakes = push_wakes(rows);
        sqlx::query(
            "INSERT INTO push_jobs (device_id, seq, urgent, due_at_us, created_at_us) \
             SELECT v.dev, v.seq, v.urgent, \
             CASE WHEN l.live_until_us > v.created THEN v.due ELSE v.created END, v.created \
             FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) \
             AS v(dev, seq, urgent, due, created) LEFT JOIN live_streams l ON l.device_id = v.dev \
             WHERE EXISTS (SELECT 1 FROM push_targets p WHERE p.device_id = v.dev) \
             ON CONFLICT (device_id) DO UPDATE SET \
             seq = GREATEST(push_jobs.seq, excluded.seq), \
             urgent = GREATEST(push_jobs.urgent, excluded.urgent)",
        )
        .bind(col(&wakes, |w| w.device_id.clone()))
        .bind(col(&wakes, |w| w.seq))
        .bind(col(&wakes, |w| w.urgent))
        .bind(col(&wakes, |w| w.due_at_us))
        .bind(col(&wakes, |w| w.created_at_us))
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }

    async fn notify(&mut self, payloads: &[String]) -> Result<()> {
        if payloads.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            "SELECT pg_notify($1, p) FROM UNNEST($2::text[]) AS p",
            CHANNEL,
            payloads
        )
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }

    async fn cursors(&mut self, devices: &[String]) -> Result<Vec<CursorRow>> {
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query_as!(
            CursorRow,
            "SELECT id AS device_id, account_id, acked_seq, next_seq FROM devices \
             WHERE id = ANY($1) AND revoked_at_us IS NULL",
            devices
        )
        .fetch_all(&mut self.conn)
        .await?;
        Ok(rows)
    }

    async fn acked_taps(&mut self, ranges: &[(String, i64, i64)]) -> Result<Vec<AckedTap>> {
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query_as!(
            AckedTap,
            r#"SELECT i.device_id, t.id AS tap_id, t.sender_account_id
             FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) AS r(dev, after, through)
             JOIN inbox i ON i.device_id = r.dev AND i.seq > r.after AND i.seq <= r.through
             JOIN taps t ON t.id = i.tap_id"#,
            &col(ranges, |r| r.0.clone())[..],
            &col(ranges, |r| r.1)[..],
            &col(ranges, |r| r.2)[..],
        )
        .fetch_all(&mut self.conn)
        .await?;
        Ok(rows)
    }

    async fn set_acked(
        &mut self,
        acks: &[(String, i64)],
        forget: &[(String, i64, i64)],
    ) -> Result<()> {
        if acks.is_empty() {
            return Ok(());
        }
        let devices = col(acks, |a| a.0.clone());
        let seqs = col(acks, |a| a.1);
        sqlx::query!(
            "UPDATE devices SET acked_seq = v.n FROM UNNEST($1::text[], $2::bigint[]) AS v(dev, n) \
             WHERE devices.id = v.dev",
            &devices[..],
            &seqs[..],
        )
        .execute(&mut self.conn)
        .await?;
        if !forget.is_empty() {
            sqlx::query(
                "DELETE FROM inbox i USING UNNEST($1::text[], $2::bigint[], $3::bigint[]) \
                 AS v(dev, a, b) WHERE i.device_id = v.dev AND i.seq > v.a AND i.seq <= v.b",
            )
            .bind(col(forget, |f| f.0.clone()))
            .bind(col(forget, |f| f.1))
            .bind(col(forget, |f| f.2))
            .execute(&mut self.conn)
            .await?;
        }
        // The device has what the pending wake-up was about: no push.
        sqlx::query(
            "DELETE FROM push_jobs j USING UNNEST($1::text[], $2::bigint[]) AS v(dev, n) \
             WHERE j.device_id = v.dev AND j.seq <= v.n",
        )
        .bind(&devices[..])
        .bind(&seqs[..])
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }

    async fn load_streaks(&mut self, couples: &[String]) -> Result<StreakRows> {
        if couples.is_empty() {
            return Ok(StreakRows::default());
        }
        let q = sqlx::query(
            "SELECT id, account_a, account_b, created_at_us FROM couples WHERE id = ANY($1)",
        )
        .bind(couples);
        let couple_rows = self
            .rows(q)
            .await?
            .iter()
            .map(couple)
            .collect::<Result<Vec<_>>>()?;
        let accounts: Vec<&str> = couple_rows
            .iter()
            .flat_map(|c| [c.account_a.as_str(), c.account_b.as_str()])
            .collect();
        let q = sqlx::query(
            "SELECT account_id, from_us, zone FROM zone_history WHERE account_id = ANY($1) \
             ORDER BY account_id, from_us",
        )
        .bind(accounts);
        let zones = self
            .rows(q)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    parse_zone(r.try_get::<&str, _>(2)?)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let q = sqlx::query(
            "SELECT couple_id, first_day, settled_through, current_days, longest_days, freezes, \
             calm FROM couple_streaks WHERE couple_id = ANY($1)",
        )
        .bind(couples);
        let states = self
            .rows(q)
            .await?
            .iter()
            .map(|r| {
                let state = streak_state(
                    r.try_get::<&str, _>(1)?,
                    r.try_get::<&str, _>(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                    r.try_get(5)?,
                    r.try_get(6)?,
                )?;
                Ok((r.try_get(0)?, state))
            })
            .collect::<Result<Vec<_>>>()?;
        let q = sqlx::query(
            "SELECT id, couple_id, from_day, to_day, by_account FROM streak_pauses \
             WHERE couple_id = ANY($1) AND cancelled = 0",
        )
        .bind(couples);
        let pauses = self
            .rows(q)
            .await?
            .iter()
            .map(|r| {
                Ok(PauseRow {
                    id: r.try_get(0)?,
                    couple_id: r.try_get(1)?,
                    from: parse_day(r.try_get::<&str, _>(2)?)?,
                    to: parse_day(r.try_get::<&str, _>(3)?)?,
                    by_account: r.try_get(4)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let q = sqlx::query(
            "SELECT d.couple_id, d.day, d.actions_a, d.actions_b, d.status FROM streak_days d \
             JOIN couple_streaks s ON s.couple_id = d.couple_id \
             WHERE d.couple_id = ANY($1) AND d.day >= s.settled_through",
        )
        .bind(couples);
        let open_days = self
            .rows(q)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, day(r, 1)?)))
            .collect::<Result<Vec<_>>>()?;
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
        let q = sqlx::query(
            "SELECT day, actions_a, actions_b, status FROM streak_days \
             WHERE couple_id = $1 AND day > $2 AND day <= $3 ORDER BY day",
        )
        .bind(couple)
        .bind(day_str(after))
        .bind(day_str(through));
        self.rows(q).await?.iter().map(|r| day(r, 0)).collect()
    }

    async fn last_connected(&mut self, couple: &str) -> Result<Option<NaiveDate>> {
        let day: Option<String> = sqlx::query_scalar(
            "SELECT MAX(day) FROM streak_days WHERE couple_id = $1 AND status = 'connected'",
        )
        .bind(couple)
        .fetch_one(&mut self.conn)
        .await?;
        day.map(|d| parse_day(&d)).transpose()
    }

    async fn save_days(&mut self, days: &[(String, DayRecord)]) -> Result<()> {
        if days.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            "INSERT INTO streak_days (couple_id, day, actions_a, actions_b, status) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[]) \
             ON CONFLICT (couple_id, day) DO UPDATE SET actions_a = excluded.actions_a, \
             actions_b = excluded.actions_b, status = excluded.status",
            &col(days, |d| d.0.clone())[..],
            &col(days, |d| day_str(d.1.date))[..],
            &col(days, |d| i64::from(d.1.actions_a))[..],
            &col(days, |d| i64::from(d.1.actions_b))[..],
            &col(days, |d| d.1.status.as_str().to_owned())[..],
        )
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }

    async fn save_states(&mut self, states: &[(String, StreakState)]) -> Result<()> {
        if states.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            "INSERT INTO couple_streaks (couple_id, first_day, settled_through, current_days, \
             longest_days, freezes, calm) SELECT * FROM UNNEST($1::text[], $2::text[], \
             $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) \
             ON CONFLICT (couple_id) DO UPDATE SET settled_through = excluded.settled_through, \
             current_days = excluded.current_days, longest_days = excluded.longest_days, \
             freezes = excluded.freezes, calm = excluded.calm",
            &col(states, |s| s.0.clone())[..],
            &col(states, |s| day_str(s.1.first_day))[..],
            &col(states, |s| day_str(s.1.settled_through))[..],
            &col(states, |s| i64::from(s.1.current))[..],
            &col(states, |s| i64::from(s.1.longest))[..],
            &col(states, |s| i64::from(s.1.freezes))[..],
            &col(states, |s| i64::from(s.1.calm))[..],
        )
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }

    async fn insert_pause(&mut self, p: &PauseRow, created_at_us: i64) -> Result<()> {
        sqlx::query!(
            "INSERT INTO streak_pauses (id, couple_id, from_day, to_day, by_account, created_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            p.id,
            p.couple_id,
            day_str(p.from),
            day_str(p.to),
            p.by_account,
            created_at_us,
        )
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }

    async fn cancel_pause(&mut self, id: &str) -> Result<()> {
        sqlx::query!("UPDATE streak_pauses SET cancelled = 1 WHERE id = $1", id)
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }

    async fn space_spans(&mut self, couples: &[(String, i64)]) -> Result<Vec<SpaceSpan>> {
        if couples.is_empty() {
            return Ok(Vec::new());
        }
        let q = sqlx::query(
            "SELECT s.couple_id, s.account_id, s.started_at_us, \
             COALESCE(s.ended_at_us, s.until_us) FROM spaces s \
             JOIN UNNEST($1::text[], $2::bigint[]) AS b(couple_id, bound) \
             ON b.couple_id = s.couple_id WHERE s.until_us >= b.bound \
             ORDER BY s.started_at_us",
        )
        .bind(col(couples, |c| c.0.clone()))
        .bind(col(couples, |c| c.1));
        self.rows(q)
            .await?
            .iter()
            .map(|r| {
                Ok(SpaceSpan {
                    couple_id: r.try_get(0)?,
                    account_id: r.try_get(1)?,
                    from_us: r.try_get(2)?,
                    to_us: r.try_get(3)?,
                })
            })
            .collect()
    }

    async fn spaces_in_force(&mut self, accounts: &[String]) -> Result<Vec<SpaceInForce>> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let q = sqlx::query(
            "SELECT account_id, id, until_us FROM spaces \
             WHERE account_id = ANY($1) AND ended_at_us IS NULL",
        )
        .bind(accounts);
        self.rows(q)
            .await?
            .iter()
            .map(|r| {
                Ok(SpaceInForce {
                    account_id: r.try_get(0)?,
                    space_id: r.try_get(1)?,
                    until_us: r.try_get(2)?,
                })
            })
            .collect()
    }

    async fn together_spans(&mut self, couples: &[(String, i64)]) -> Result<Vec<TogetherSpan>> {
        if couples.is_empty() {
            return Ok(Vec::new());
        }
        let q = sqlx::query(
            "SELECT t.couple_id, t.confirmed_at_us, COALESCE(t.ended_at_us, t.until_us) \
             FROM together t JOIN UNNEST($1::text[], $2::bigint[]) AS b(couple_id, bound) \
             ON b.couple_id = t.couple_id \
             WHERE t.confirmed_at_us IS NOT NULL AND t.until_us >= b.bound \
             ORDER BY t.confirmed_at_us",
        )
        .bind(col(couples, |c| c.0.clone()))
        .bind(col(couples, |c| c.1));
        self.rows(q)
            .await?
            .iter()
            .map(|r| {
                Ok(TogetherSpan {
                    couple_id: r.try_get(0)?,
                    from_us: r.try_get(1)?,
                    to_us: r.try_get(2)?,
                })
            })
            .collect()
    }

    async fn together_in_force(&mut self, couples: &[String]) -> Result<Vec<TogetherInForce>> {
        if couples.is_empty() {
            return Ok(Vec::new());
        }
        let q = sqlx::query(
            "SELECT couple_id, id, until_us FROM together WHERE couple_id = ANY($1) \
             AND ended_at_us IS NULL AND confirmed_at_us IS NOT NULL",
        )
        .bind(couples);
        self.rows(q)
            .await?
            .iter()
            .map(|r| {
                Ok(TogetherInForce {
                    couple_id: r.try_get(0)?,
                    together_id: r.try_get(1)?,
                    until_us: r.try_get(2)?,
                })
            })
            .collect()
    }

    async fn hold_together_taps(&mut self, rows: &[(String, String, i64)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO together_held_taps (tap_id, together_id, held_at_us) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[]) \
             ON CONFLICT (tap_id) DO NOTHING",
        )
        .bind(col(rows, |r| r.0.clone()))
        .bind(col(rows, |r| r.1.clone()))
        .bind(col(rows, |r| r.2))
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }

    async fn hold_taps(&mut self, rows: &[(String, String, i64)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO held_taps (tap_id, space_id, held_at_us) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[]) \
             ON CONFLICT (tap_id) DO NOTHING",
        )
        .bind(col(rows, |r| r.0.clone()))
        .bind(col(rows, |r| r.1.clone()))
        .bind(col(rows, |r| r.2))
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }

    async fn checkin(&mut self, id: &str, couple: &str) -> Result<Option<CheckinRow>> {
        let sql =
            format!("SELECT {CHECKIN_COLUMNS} FROM checkins WHERE id = $1 AND couple_id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(couple)
            .fetch_optional(&mut self.conn)
            .await?;
        row.map(|r| {
            Ok(CheckinRow {
                id: r.try_get(0)?,
                couple_id: r.try_get(1)?,
                prompt_id: r.try_get(2)?,
                routine_id: r.try_get(3)?,
                opened_by: r.try_get(4)?,
                opened_at_us: r.try_get(5)?,
                expires_at_us: r.try_get(6)?,
                phase: r.try_get(7)?,
                answer_a: r.try_get(8)?,
                answer_b: r.try_get(9)?,
            })
        })
        .transpose()
    }

    async fn save_checkin(&mut self, c: &CheckinRow) -> Result<()> {
        sqlx::query!(
            "UPDATE checkins SET phase = $1, answer_a = $2, answer_b = $3 WHERE id = $4",
            c.phase,
            c.answer_a,
            c.answer_b,
            c.id,
        )
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }
}
