//! Sending taps and their felt/seen receipts.

use prost::Message;
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use uuid::Uuid;

use std::collections::{HashMap, HashSet};

use crate::AppState;
use crate::accounts::{self, ACCOUNT_COLUMNS, AccountRow};
use crate::auth::Caller;
use crate::db::{self, timestamp_us, to_us};
use crate::delivery::writer::TapJob;
use crate::delivery::{account_devices, commit, new_event, to_each};
use crate::domain::taps::{NewTap, validate_send};
use crate::domain::validate;
use crate::error::{Error, Refusal, Result};
use crate::pairing::require_couple;
use crate::sql::{Conn, Param, PerRow, Row, Val, per_row, pg_rows};
use crate::streaks::{self, Action};

macro_rules! tap_select {
    ($where:literal) => {
        concat!(
            "SELECT id, couple_id, sender_account_id, sender_device_id, client_tap_id, kind, rhythm, ",
            "note, created_at_us FROM taps WHERE ",
            $where
        )
    };
}

fn tap_from_row(row: &Row) -> Result<(pb::Tap, String)> {
    let rhythm: Option<Vec<u8>> = row.get("rhythm")?;
    let rhythm = rhythm
        .map(|b| pb::Rhythm::decode(b.as_slice()))
        .transpose()
        .map_err(|e| Error::Corrupt(format!("tap rhythm: {e}")))?;
    let tap = pb::Tap {
        tap_id: row.get("id")?,
        client_tap_id: row.get("client_tap_id")?,
        sender_account_id: row.get("sender_account_id")?,
        sender_device_id: row.get("sender_device_id")?,
        kind: row.get::<i64>("kind")? as i32,
        rhythm,
        note: row.get("note")?,
        sent_at: Some(timestamp_us(row.get("created_at_us")?)),
    };
    Ok((tap, row.get("couple_id")?))
}

async fn find_by_client_id(
    conn: &mut Conn<'_>,
    device_id: &str,
    client_tap_id: &str,
) -> Result<Option<pb::Tap>> {
    let row = conn
        .fetch_optional(
            tap_select!("sender_device_id = $1 AND client_tap_id = $2"),
            &[Param::Text(device_id), Param::Text(client_tap_id)],
        )
        .await?;
    row.map(|r| tap_from_row(&r).map(|(t, _)| t)).transpose()
}

/// Sends a tap: validates it, takes it from the sender's rate limit, and hands it to the group
/// commit ([`apply_batch`]), which answers after the durable commit.
pub async fn send_tap(
    state: &AppState,
    caller: &Caller,
    req: pb::SendTapRequest,
) -> Result<pb::SendTapResponse> {
    let new = validate_send(&req)?;
    let now = state.clock.now();
    if let Err(retry_after) = state.limits.taps.take(&caller.account_id, now) {
        // A retry of a stored tap answers with the first result, even when rate limited.
        let mut conn = state.db.pool().acquire().await?;
        let client_tap_id = new.client_tap_id.to_string();
        let mut c = Conn::Sqlx(&mut conn);
        if let Some(tap) = find_by_client_id(&mut c, &caller.device_id, &client_tap_id).await? {
            let (me, couple_id) = require_couple(&mut conn, &caller.account_id).await?;
            let partner = accounts::partner(&mut conn, &couple_id, &me.id).await?;
            return Ok(pb::SendTapResponse {
                tap: Some(tap),
                duplicate: true,
                partner_clock: Some(partner.clock(now)),
            });
        }
        return Err(Error::RateLimited {
            what: "too many taps",
            retry_after,
        });
    }
    state
        .writer
        .send_tap(TapJob {
            caller: caller.clone(),
            new,
            now,
        })
        .await
}

/// Applies a batch of taps inside the group commit's transaction, set-based: locks the
/// senders' couples (PostgreSQL, in id order), reads every member and device in two
/// statements, stores every tap in one `INSERT` (a tap already stored under its device and
/// client id is answered as a duplicate, never stored twice), counts the taps for the streaks
/// ([`streaks::record_actions`]) and returns each job's answer with the events to append: to
/// the partner's devices, and silently to the sender's other devices.
pub async fn apply_batch(
    conn: &mut Conn<'_>,
    jobs: &[TapJob],
) -> Result<(Vec<Result<pb::SendTapResponse>>, Vec<(String, pb::Event)>)> {
    let sqlite = conn.is_sqlite();
    if jobs.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut answers: Vec<Option<Result<pb::SendTapResponse>>> = jobs.iter().map(|_| None).collect();
    let mut senders: Vec<&str> = jobs.iter().map(|j| j.caller.account_id.as_str()).collect();
    senders.sort_unstable();
    senders.dedup();
    let list = db::json_list(sqlite);
    let senders_json = db::json_strs(senders.iter().copied());
    let senders = [Param::Text(&senders_json)];
    if !sqlite {
        // The same lock every writer of a couple's streak takes first (see `lock_couple`).
        let sql = format!(
            "SELECT id FROM couples WHERE id IN (SELECT couple_id FROM accounts WHERE id IN ({list})) \
             ORDER BY id FOR UPDATE"
        );
        conn.execute(&sql, &senders).await?;
    }
    let mut members: HashMap<String, AccountRow> = HashMap::new();
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE couple_id IN \
         (SELECT couple_id FROM accounts WHERE id IN ({list}))"
    );
    for row in conn.fetch_all(&sql, &senders).await? {
        let account = accounts::account_from_row(&row)?;
        members.insert(account.id.clone(), account);
    }
    let mut devices: HashMap<String, Vec<String>> = HashMap::new();
    if !members.is_empty() {
        let ids = db::json_strs(members.keys().map(String::as_str));
        let sql = format!(
            "SELECT id, account_id FROM devices WHERE account_id IN ({list}) \
             AND revoked_at_us IS NULL ORDER BY id"
        );
        for row in conn.fetch_all(&sql, &[Param::Text(&ids)]).await? {
            devices
                .entry(row.get("account_id")?)
                .or_default()
                .push(row.get("id")?);
        }
    }
    // Each paired sender's partner.
    let partner_of = |account: &str| -> Option<&AccountRow> {
        let me = members.get(account)?;
        me.couple_id.as_ref()?;
        members
            .values()
            .find(|p| p.id != me.id && p.couple_id == me.couple_id)
    };
    // Store every tap of a paired sender in one statement.
    let mut stored: Vec<(usize, pb::Tap)> = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        if partner_of(&job.caller.account_id).is_some() {
            stored.push((i, new_tap(&job.caller, &job.new, job.now)));
        } else {
            answers[i] = Some(Err(Error::Refused(Refusal::NotPaired)));
        }
    }
    let inserted = insert_taps(conn, jobs, &members, &stored).await?;
    let mut items = Vec::new();
    let mut actions = Vec::new();
    for (i, tap) in stored {
        let job = &jobs[i];
        let me = &members[&job.caller.account_id];
        let partner = partner_of(&job.caller.account_id).expect("checked above");
        let partner_clock = partner.clock(job.now);
        if !inserted.contains(tap.tap_id.as_str()) {
            // Stored before (a retry), or earlier in this very batch.
            let first = find_by_client_id(conn, &job.caller.device_id, &tap.client_tap_id)
                .await?
                .ok_or(Error::Corrupt("tap vanished after a conflict".into()))?;
            answers[i] = Some(Ok(pb::SendTapResponse {
                tap: Some(first),
                duplicate: true,
                partner_clock: Some(partner_clock),
            }));
            continue;
        }
        // One event (one id) for every recipient; only the sender's own copies differ.
        let to_partner = new_event(
            Payload::TapReceived(pb::TapReceived {
                tap: Some(tap.clone()),
                silent: partner_clock.in_quiet_hours,
                from_self: false,
            }),
            job.now,
        );
        let mut to_self = to_partner.clone();
        // The sender's other devices show what was sent, without buzzing.
        to_self.payload = Some(Payload::TapReceived(pb::TapReceived {
            tap: Some(tap.clone()),
            silent: true,
            from_self: true,
        }));
        if let Some(ds) = devices.get(&partner.id) {
            items.extend(to_each(ds, &to_partner));
        }
        if let Some(ds) = devices.get(&me.id) {
            for d in ds.iter().filter(|d| **d != job.caller.device_id) {
                items.push((d.clone(), to_self.clone()));
            }
        }
        // A tap is a qualifying action for the streak: same transaction.
        actions.push(Action {
            couple_id: me.couple_id.as_deref().unwrap_or_default(),
            account_id: &job.caller.account_id,
            now: job.now,
        });
        answers[i] = Some(Ok(pb::SendTapResponse {
            tap: Some(tap),
            duplicate: false,
            partner_clock: Some(partner_clock),
        }));
    }
    items.extend(streaks::record_actions(conn, &actions).await?);
    let answers = answers
        .into_iter()
        .map(|a| a.unwrap_or(Err(Error::Corrupt("a tap job was not answered".into()))))
        .collect();
    Ok((answers, items))
}

fn new_tap(caller: &Caller, new: &NewTap, now: chrono::DateTime<chrono::Utc>) -> pb::Tap {
    pb::Tap {
        tap_id: Uuid::now_v7().to_string(),
        client_tap_id: new.client_tap_id.to_string(),
        sender_account_id: caller.account_id.clone(),
        sender_device_id: caller.device_id.clone(),
        kind: new.kind as i32,
        rhythm: new.rhythm.clone(),
        note: new.note.clone(),
        sent_at: Some(timestamp_us(to_us(now))),
    }
}

/// Stores a tap unless one is stored under its (device, client id) already; returns its id if
/// stored.
const INSERT_TAP: PerRow = per_row!(
    "INSERT INTO taps (id, couple_id, sender_account_id, sender_device_id, client_tap_id, kind, \
     rhythm, note, created_at_us)",
    sqlite: "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    postgres: concat!(
        "SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, ",
        "CAST(j.value ->> 5 AS BIGINT), decode(j.value ->> 6, 'hex'), j.value ->> 7, ",
        "CAST(j.value ->> 8 AS BIGINT) FROM ", pg_rows!(), " WHERE true"
    ),
    "ON CONFLICT (sender_device_id, client_tap_id) DO NOTHING RETURNING id",
);

/// Inserts the taps ([`INSERT_TAP`]), skipping any already stored under (device, client id);
/// returns the ids of those inserted.
async fn insert_taps(
    conn: &mut Conn<'_>,
    jobs: &[TapJob],
    members: &HashMap<String, AccountRow>,
    stored: &[(usize, pb::Tap)],
) -> Result<HashSet<String>> {
    let mut inserted = HashSet::with_capacity(stored.len());
    if stored.is_empty() {
        return Ok(inserted);
    }
    let rows: Vec<Vec<Val>> = stored
        .iter()
        .map(|(i, tap)| {
            vec![
                Val::from(&tap.tap_id),
                Val::from(members[&jobs[*i].caller.account_id].couple_id.as_ref()),
                Val::from(&tap.sender_account_id),
                Val::from(&tap.sender_device_id),
                Val::from(&tap.client_tap_id),
                Val::Int(tap.kind.into()),
                tap.rhythm
                    .as_ref()
                    .map_or(Val::Null, |r| Val::Blob(r.encode_to_vec())),
                Val::from(&tap.note),
                Val::Int(to_us(jobs[*i].now)),
            ]
        })
        .collect();
    for row in conn.per_row(INSERT_TAP, &rows).await? {
        inserted.insert(row.get::<String>("id")?);
    }
    Ok(inserted)
}

/// Records that a tap the caller's partner sent was delivered to, felt or seen by the caller.
/// The sender's devices are told of felt and seen unless the caller switched receipts off, and
/// of delivered always. Reporting the same thing twice is a no-op.
pub async fn report_tap(
    state: &AppState,
    caller: &Caller,
    req: pb::ReportTapRequest,
) -> Result<()> {
    let tap_id = validate::id("tap_id", &req.tap_id)?;
    let kind = match pb::ReceiptKind::try_from(req.kind) {
        Ok(pb::ReceiptKind::Unspecified) | Err(_) => {
            return Err(Error::invalid("kind", "must be delivered, felt or seen"));
        }
        Ok(k) => k,
    };
    let now = state.clock.now();
    let mut tx = state.db.begin_write().await?;
    let (me, couple_id) = require_couple(&mut tx, &caller.account_id).await?;
    let row = sqlx::query(tap_select!("id = $1 AND couple_id = $2"))
        .bind(&tap_id)
        .bind(&couple_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("tap"))?;
    let (tap, _) = tap_from_row(&row.into())?;
    if tap.sender_account_id == me.id {
        return Err(Error::Refused(Refusal::OwnTap));
    }
    let inserted = sqlx::query(
        "INSERT INTO tap_receipts (tap_id, account_id, kind, created_at_us) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tap_id, account_id, kind) DO NOTHING",
    )
    .bind(&tap_id)
    .bind(&me.id)
    .bind(kind as i64)
    .bind(to_us(now))
    .execute(&mut *tx)
    .await?;
    let mut items = Vec::new();
    let announce = kind == pb::ReceiptKind::Delivered || me.receipts_enabled;
    if inserted.rows_affected() == 1 && announce {
        let receipt = pb::TapReceipt {
            tap_id: tap_id.clone(),
            kind: kind as i32,
            at: Some(timestamp_us(to_us(now))),
        };
        let event = new_event(Payload::TapReceipt(receipt), now);
        items = to_each(
            &account_devices(&mut tx, &tap.sender_account_id).await?,
            &event,
        );
    }
    commit(state, tx, items).await?;
    Ok(())
}
