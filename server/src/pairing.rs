//! Pairing two accounts into a couple, and unpairing.

use chrono::{DateTime, Duration, Utc};
use sqlx::{AnyConnection, AnyPool, Row};
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use uuid::Uuid;

use crate::accounts::{self, create_code, redeem_code};
use crate::auth::Caller;
use crate::couples::{self, require_couple};
use crate::db::{timestamp_us, to_us};
use crate::delivery::{account_devices, new_event, to_each};
use crate::error::{Error, Refusal, Result};
use crate::store::AccountRow;
use crate::txn::WriteTx;

/// How long an invite code lives.
pub const INVITE_TTL_HOURS: i64 = 24;

/// Creates an invite code for the caller's partner-to-be.
pub async fn create_invite(
    tx: &mut WriteTx,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<pb::CreateInviteResponse> {
    if accounts::load(tx.conn(), &caller.account_id)
        .await?
        .couple_id
        .is_some()
    {
        return Err(Error::Refused(Refusal::AlreadyPaired));
    }
    // Only the newest invite can be accepted.
    accounts::revoke_codes(tx.conn(), &caller.account_id, "invite", now).await?;
    let (code, expires) = create_code(
        tx,
        "invite",
        &caller.account_id,
        Duration::hours(INVITE_TTL_HOURS),
        now,
    )
    .await?;
    Ok(pb::CreateInviteResponse {
        code,
        expires_at: Some(timestamp_us(to_us(expires))),
    })
}

/// Withdraws the caller's pending invite.
pub async fn revoke_invite(
    tx: &mut WriteTx,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<pb::RevokeInviteResponse> {
    let n = accounts::revoke_codes(tx.conn(), &caller.account_id, "invite", now).await?;
    Ok(pb::RevokeInviteResponse { revoked: n > 0 })
}

/// The couple as `me` sees it at `now`.
fn couple_view(
    couple_id: &str,
    since_us: i64,
    partner: &AccountRow,
    now: DateTime<Utc>,
) -> pb::Couple {
    pb::Couple {
        couple_id: couple_id.to_owned(),
        partner: Some(partner.as_partner(now)),
        paired_since: Some(timestamp_us(since_us)),
    }
}

/// PostgreSQL: locks two accounts that have no couple yet (in id order, where a couple's row
/// would be locked), then their devices, so two instances cannot pair one account twice.
async fn lock_pair(conn: &mut AnyConnection, a: &str, b: &str) -> Result<()> {
    if crate::db::is_sqlite(conn) {
        return Ok(());
    }
    let (first, second) = if a < b { (a, b) } else { (b, a) };
    for id in [first, second] {
        sqlx::query("SELECT id FROM accounts WHERE id = $1 FOR UPDATE")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "SELECT id FROM devices WHERE account_id = $1 OR account_id = $2 ORDER BY id FOR UPDATE",
    )
    .bind(first)
    .bind(second)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Accepts a (normalized) invite code: makes the couple and tells both partners' devices.
pub async fn accept_invite(
    tx: &mut WriteTx,
    caller: &Caller,
    code: &str,
    now: DateTime<Utc>,
) -> Result<pb::AcceptInviteResponse> {
    let conn = tx.conn();
    let inviter_id = redeem_code(conn, "invite", code, now).await?;
    if inviter_id == caller.account_id {
        return Err(Error::Refused(Refusal::OwnInvite));
    }
    lock_pair(conn, &caller.account_id, &inviter_id).await?;
    let mut me = accounts::load(conn, &caller.account_id).await?;
    let mut inviter = accounts::load(conn, &inviter_id).await?;
    if me.couple_id.is_some() {
        return Err(Error::Refused(Refusal::AlreadyPaired));
    }
    if inviter.couple_id.is_some() {
        return Err(Error::Refused(Refusal::InviterPaired));
    }
    let couple_id = Uuid::now_v7().to_string();
    let since = to_us(now);
    sqlx::query(
        "INSERT INTO couples (id, account_a, account_b, created_at_us) VALUES ($1, $2, $3, $4)",
    )
    .bind(&couple_id)
    .bind(&inviter.id)
    .bind(&me.id)
    .bind(since)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE accounts SET couple_id = $1 WHERE id = $2 OR id = $3")
        .bind(&couple_id)
        .bind(&inviter.id)
        .bind(&me.id)
        .execute(&mut *conn)
        .await?;
    me.couple_id = Some(couple_id.clone());
    inviter.couple_id = Some(couple_id.clone());
    // One event (one id); each partner's copy shows the other one.
    let mut event = new_event(Payload::Paired(pb::Paired { couple: None }), now);
    for (recipient, partner) in [(&me, &inviter), (&inviter, &me)] {
        let devices = account_devices(tx.conn(), &recipient.id).await?;
        event.payload = Some(Payload::Paired(pb::Paired {
            couple: Some(couple_view(&couple_id, since, partner, now)),
        }));
        tx.tell(to_each(&devices, &event));
    }
    tracing::info!(couple = %couple_id, "paired");
    Ok(pb::AcceptInviteResponse {
        couple: Some(couple_view(&couple_id, since, &inviter, now)),
    })
}

/// The caller's couple, with the partner's clock now.
pub async fn get_couple(
    pool: &AnyPool,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<pb::GetCoupleResponse> {
    let mut conn = pool.acquire().await?;
    let (_, couple_id) = require_couple(&mut conn, &caller.account_id).await?;
    let partner = couples::partner(&mut conn, &couple_id, &caller.account_id).await?;
    let since: i64 = sqlx::query("SELECT created_at_us FROM couples WHERE id = $1")
        .bind(&couple_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get("created_at_us")?;
    Ok(pb::GetCoupleResponse {
        couple: Some(couple_view(&couple_id, since, &partner, now)),
    })
}

/// Ends the caller's couple; both partners' devices are told.
pub async fn unpair(tx: &mut WriteTx, caller: &Caller, now: DateTime<Utc>) -> Result<()> {
    let (_, couple_id) = require_couple(tx.conn(), &caller.account_id).await?;
    end_couple(tx, &couple_id, &caller.account_id, false, now).await?;
    tracing::info!(couple = %couple_id, "unpaired");
    Ok(())
}

/// Ends `couple_id` on behalf of `by` and tells the devices of both members, or only the
/// partner's when `by` is deleting their account (its devices are about to go).
pub async fn end_couple(
    tx: &mut WriteTx,
    couple_id: &str,
    by: &str,
    account_deleted: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    couples::lock_any(tx.conn(), &[couple_id]).await?;
    // Taps held for a partner who asked for space were sent while together: delivered now.
    crate::space::end_all(tx, couple_id, now).await?;
    crate::together::end_all(tx, couple_id, now).await?;
    crate::reconnect::end_all(tx, couple_id, now).await?;
    let conn = tx.conn();
    let partner = couples::partner(conn, couple_id, by).await?;
    sqlx::query("UPDATE couples SET ended_at_us = $1, ended_by = $2 WHERE id = $3")
        .bind(to_us(now))
        .bind(by)
        .bind(couple_id)
        .execute(&mut *conn)
        .await?;
    crate::routines::unschedule_couple(conn, couple_id).await?;
    sqlx::query("UPDATE accounts SET couple_id = NULL WHERE couple_id = $1")
        .bind(couple_id)
        .execute(&mut *conn)
        .await?;
    let event = new_event(
        Payload::Unpaired(pb::Unpaired {
            couple_id: couple_id.to_owned(),
            by_account_id: by.to_owned(),
            account_deleted,
        }),
        now,
    );
    let told: &[&str] = if account_deleted {
        &[&partner.id]
    } else {
        &[by, &partner.id]
    };
    for account in told {
        let devices = account_devices(tx.conn(), account).await?;
        tx.tell(to_each(&devices, &event));
    }
    Ok(())
}
