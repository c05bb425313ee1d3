//! Sending taps and their felt/seen receipts.

use prost::Message;
use sqlx::{AnyConnection, Row};
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use uuid::Uuid;

use crate::AppState;
use crate::accounts;
use crate::auth::Caller;
use crate::db::{timestamp_us, to_us};
use crate::delivery::{account_devices, commit, new_event, to_each};
use crate::domain::taps::{NewTap, validate_send};
use crate::domain::validate;
use crate::error::{Error, Result};
use crate::pairing::require_couple;

macro_rules! tap_select {
    ($where:literal) => {
        concat!(
            "SELECT id, couple_id, sender_account_id, sender_device_id, client_tap_id, kind, rhythm, ",
            "note, created_at_us FROM taps WHERE ",
            $where
        )
    };
}

fn tap_from_row(row: &sqlx::any::AnyRow) -> Result<(pb::Tap, String)> {
    let rhythm: Option<Vec<u8>> = row.try_get("rhythm")?;
    let rhythm = rhythm
        .map(|b| pb::Rhythm::decode(b.as_slice()))
        .transpose()
        .map_err(|e| Error::Corrupt(format!("tap rhythm: {e}")))?;
    let tap = pb::Tap {
        tap_id: row.try_get("id")?,
        client_tap_id: row.try_get("client_tap_id")?,
        sender_account_id: row.try_get("sender_account_id")?,
        sender_device_id: row.try_get("sender_device_id")?,
        kind: row.try_get::<i64, _>("kind")? as i32,
        rhythm,
        note: row.try_get("note")?,
        sent_at: Some(timestamp_us(row.try_get("created_at_us")?)),
    };
    Ok((tap, row.try_get("couple_id")?))
}

async fn find_by_client_id(
    conn: &mut AnyConnection,
    device_id: &str,
    client_tap_id: &str,
) -> Result<Option<pb::Tap>> {
    let row = sqlx::query(tap_select!("sender_device_id = $1 AND client_tap_id = $2"))
        .bind(device_id)
        .bind(client_tap_id)
        .fetch_optional(conn)
        .await?;
    row.map(|r| tap_from_row(&r).map(|(t, _)| t)).transpose()
}

/// Sends a tap: stores it once under (device, client id), writes it into every recipient
/// device's inbox in the same transaction, then rings their doorbells.
pub async fn send_tap(
    state: &AppState,
    caller: &Caller,
    req: pb::SendTapRequest,
) -> Result<pb::SendTapResponse> {
    let new = validate_send(&req)?;
    let client_tap_id = new.client_tap_id.to_string();

    // A retry of a stored tap answers with the first result, even when rate limited.
    let mut conn = state.db.pool().acquire().await?;
    if let Some(tap) = find_by_client_id(&mut conn, &caller.device_id, &client_tap_id).await? {
        let (me, couple_id) = require_couple(&mut conn, &caller.account_id).await?;
        let partner = accounts::partner(&mut conn, &couple_id, &me.id).await?;
        return Ok(pb::SendTapResponse {
            tap: Some(tap),
            duplicate: true,
            partner_clock: Some(partner.clock(state.clock.now())),
        });
    }
    drop(conn);

    let now = state.clock.now();
    state
        .limits
        .taps
        .take(&caller.account_id, now)
        .map_err(|retry_after| Error::RateLimited {
            what: "too many taps",
            retry_after,
        })?;

    let mut tx = state.db.begin_write().await?;
    let (me, couple_id) = require_couple(&mut tx, &caller.account_id).await?;
    let partner = accounts::partner(&mut tx, &couple_id, &me.id).await?;
    let tap = insert_tap(&mut tx, caller, &couple_id, &new, now).await?;
    let Some(tap) = tap else {
        // A concurrent retry stored it first.
        drop(tx);
        let mut conn = state.db.pool().acquire().await?;
        let tap = find_by_client_id(&mut conn, &caller.device_id, &client_tap_id)
            .await?
            .ok_or(Error::Corrupt("tap vanished after a conflict".into()))?;
        return Ok(pb::SendTapResponse {
            tap: Some(tap),
            duplicate: true,
            partner_clock: Some(partner.clock(now)),
        });
    };

    let partner_clock = partner.clock(now);
    // One event (one id) for every recipient; only the sender's own copies differ.
    let to_partner = new_event(
        Payload::TapReceived(pb::TapReceived {
            tap: Some(tap.clone()),
            silent: partner_clock.in_quiet_hours,
            from_self: false,
        }),
        now,
    );
    let mut to_self = to_partner.clone();
    // The sender's other devices show what was sent, without buzzing.
    to_self.payload = Some(Payload::TapReceived(pb::TapReceived {
        tap: Some(tap.clone()),
        silent: true,
        from_self: true,
    }));
    let mut items = to_each(&account_devices(&mut tx, &partner.id).await?, &to_partner);
    let own: Vec<String> = account_devices(&mut tx, &me.id)
        .await?
        .into_iter()
        .filter(|d| *d != caller.device_id)
        .collect();
    items.extend(to_each(&own, &to_self));
    // A tap is a qualifying action for the streak: same transaction, O(1).
    items.extend(crate::streaks::record_action(&mut tx, &couple_id, &me.id, now).await?);
    commit(state, tx, items).await?;
    Ok(pb::SendTapResponse {
        tap: Some(tap),
        duplicate: false,
        partner_clock: Some(partner_clock),
    })
}

async fn insert_tap(
    conn: &mut AnyConnection,
    caller: &Caller,
    couple_id: &str,
    new: &NewTap,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<pb::Tap>> {
    let tap = pb::Tap {
        tap_id: Uuid::now_v7().to_string(),
        client_tap_id: new.client_tap_id.to_string(),
        sender_account_id: caller.account_id.clone(),
        sender_device_id: caller.device_id.clone(),
        kind: new.kind as i32,
        rhythm: new.rhythm.clone(),
        note: new.note.clone(),
        sent_at: Some(timestamp_us(to_us(now))),
    };
    let inserted = sqlx::query(
        "INSERT INTO taps (id, couple_id, sender_account_id, sender_device_id, client_tap_id, kind, rhythm, note, created_at_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (sender_device_id, client_tap_id) DO NOTHING",
    )
    .bind(&tap.tap_id)
    .bind(couple_id)
    .bind(&tap.sender_account_id)
    .bind(&tap.sender_device_id)
    .bind(&tap.client_tap_id)
    .bind(i64::from(tap.kind))
    .bind(tap.rhythm.as_ref().map(Message::encode_to_vec))
    .bind(&tap.note)
    .bind(to_us(now))
    .execute(conn)
    .await?;
    Ok((inserted.rows_affected() == 1).then_some(tap))
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
    let (tap, _) = tap_from_row(&row)?;
    if tap.sender_account_id == me.id {
        return Err(Error::FailedPrecondition(
            "you sent this tap; only your partner can report it",
        ));
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
