//! Pairing two accounts into a couple, and unpairing.

use chrono::{DateTime, Duration, Utc};
use sqlx::{AnyConnection, Row};
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use uuid::Uuid;

use crate::AppState;
use crate::accounts::{self, AccountRow, create_code, redeem_code};
use crate::auth::Caller;
use crate::db::{timestamp_us, to_us};
use crate::delivery::{account_devices, commit, new_event, to_each};
use crate::error::{Error, Refusal, Result};

/// How long an invite code lives.
pub const INVITE_TTL_HOURS: i64 = 24;

/// Creates an invite code for the caller's partner-to-be.
pub async fn create_invite(state: &AppState, caller: &Caller) -> Result<pb::CreateInviteResponse> {
    let mut conn = state.db.pool().acquire().await?;
    if accounts::load(&mut conn, &caller.account_id)
        .await?
        .couple_id
        .is_some()
    {
        return Err(Error::Refused(Refusal::AlreadyPaired));
    }
    drop(conn);
    let (code, expires) = create_code(
        state,
        "invite",
        &caller.account_id,
        Duration::hours(INVITE_TTL_HOURS),
    )
    .await?;
    Ok(pb::CreateInviteResponse {
        code,
        expires_at: Some(timestamp_us(to_us(expires))),
    })
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

/// Accepts an invite: makes the couple and tells both partners' devices.
pub async fn accept_invite(
    state: &AppState,
    caller: &Caller,
    code: &str,
) -> Result<pb::AcceptInviteResponse> {
    let now = state.clock.now();
    state
        .limits
        .code_guesses
        .take(&format!("invite:{}", caller.account_id), now)
        .map_err(|retry_after| Error::RateLimited {
            what: "too many invite attempts",
            retry_after,
        })?;
    let mut tx = state.db.begin_write().await?;
    let inviter_id = redeem_code(&mut tx, "invite", "code", code, now).await?;
    if inviter_id == caller.account_id {
        return Err(Error::Refused(Refusal::OwnInvite));
    }
    let mut me = accounts::load(&mut tx, &caller.account_id).await?;
    let mut inviter = accounts::load(&mut tx, &inviter_id).await?;
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
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE accounts SET couple_id = $1 WHERE id = $2 OR id = $3")
        .bind(&couple_id)
        .bind(&inviter.id)
        .bind(&me.id)
        .execute(&mut *tx)
        .await?;
    me.couple_id = Some(couple_id.clone());
    inviter.couple_id = Some(couple_id.clone());
    // One event (one id); each partner's copy shows the other one.
    let mut event = new_event(Payload::Paired(pb::Paired { couple: None }), now);
    let mut items = Vec::new();
    for (recipient, partner) in [(&me, &inviter), (&inviter, &me)] {
        let devices = account_devices(&mut tx, &recipient.id).await?;
        let couple = couple_view(&couple_id, since, partner, now);
        event.payload = Some(Payload::Paired(pb::Paired {
            couple: Some(couple),
        }));
        items.extend(to_each(&devices, &event));
    }
    commit(state, tx, items).await?;
    tracing::info!(couple = %couple_id, "paired");
    Ok(pb::AcceptInviteResponse {
        couple: Some(couple_view(&couple_id, since, &inviter, now)),
    })
}

/// The caller's couple id, or [`Refusal::NotPaired`].
pub async fn require_couple(
    conn: &mut AnyConnection,
    account_id: &str,
) -> Result<(AccountRow, String)> {
    let me = accounts::load(conn, account_id).await?;
    match me.couple_id.clone() {
        Some(c) => Ok((me, c)),
        None => Err(Error::Refused(Refusal::NotPaired)),
    }
}

/// The caller's couple, with the partner's clock now.
pub async fn get_couple(state: &AppState, caller: &Caller) -> Result<pb::GetCoupleResponse> {
    let mut conn = state.db.pool().acquire().await?;
    let (_, couple_id) = require_couple(&mut conn, &caller.account_id).await?;
    let partner = accounts::partner(&mut conn, &couple_id, &caller.account_id).await?;
    let since: i64 = sqlx::query("SELECT created_at_us FROM couples WHERE id = $1")
        .bind(&couple_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get("created_at_us")?;
    Ok(pb::GetCoupleResponse {
        couple: Some(couple_view(&couple_id, since, &partner, state.clock.now())),
    })
}

/// Ends the caller's couple; both partners' devices are told.
pub async fn unpair(state: &AppState, caller: &Caller) -> Result<()> {
    let now = state.clock.now();
    let mut tx = state.db.begin_write().await?;
    let (_, couple_id) = require_couple(&mut tx, &caller.account_id).await?;
    let partner = accounts::partner(&mut tx, &couple_id, &caller.account_id).await?;
    sqlx::query("UPDATE couples SET ended_at_us = $1, ended_by = $2 WHERE id = $3")
        .bind(to_us(now))
        .bind(&caller.account_id)
        .bind(&couple_id)
        .execute(&mut *tx)
        .await?;
    crate::routines::unschedule_couple(&mut tx, &couple_id).await?;
    sqlx::query("UPDATE accounts SET couple_id = NULL WHERE couple_id = $1")
        .bind(&couple_id)
        .execute(&mut *tx)
        .await?;
    let event = new_event(
        Payload::Unpaired(pb::Unpaired {
            couple_id: couple_id.clone(),
            by_account_id: caller.account_id.clone(),
        }),
        now,
    );
    let mut items = Vec::new();
    for account in [&caller.account_id, &partner.id] {
        items.extend(to_each(&account_devices(&mut tx, account).await?, &event));
    }
    commit(state, tx, items).await?;
    tracing::info!(couple = %couple_id, "unpaired");
    Ok(())
}
