//! The caller's profile (name, zone) and settings (quiet hours, receipts); the partner is told
//! of every change.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::{AnyConnection, AnyPool};
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;

use crate::accounts::{self, load};
use crate::auth::Caller;
use crate::couples;
use crate::delivery::{account_devices, new_event, to_each};
use crate::domain::quiet::QuietHours;
use crate::domain::validate;
use crate::error::{Error, Result};
use crate::store::AccountRow;
use crate::txn::WriteTx;

/// Locks the couple (if any) and loads the caller's account.
async fn load_locked(conn: &mut AnyConnection, account_id: &str) -> Result<AccountRow> {
    let account = load(conn, account_id).await?;
    if let Some(c) = account.couple_id.as_deref() {
        couples::lock_any(conn, &[c]).await?;
    }
    load(conn, account_id).await
}

/// Tells the partner (if any) what changed in `account` (nothing when nothing did).
async fn tell_partner(
    tx: &mut WriteTx,
    account: &AccountRow,
    changed: Vec<pb::PartnerChange>,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(couple_id) = &account.couple_id else {
        return Ok(());
    };
    if changed.is_empty() {
        return Ok(());
    }
    let partner = couples::partner(tx.conn(), couple_id, &account.id).await?;
    let devices = account_devices(tx.conn(), &partner.id).await?;
    let event = new_event(
        Payload::PartnerUpdated(pb::PartnerUpdated {
            partner: Some(account.as_partner(now)),
            changed: changed.into_iter().map(|c| c as i32).collect(),
            receipts_enabled: account.receipts_enabled,
        }),
        now,
    );
    tx.tell(to_each(&devices, &event));
    Ok(())
}

/// A checked profile change.
#[derive(Debug, Clone)]
pub struct ProfileChange {
    name: Option<String>,
    zone: Option<Tz>,
}

/// Checks an `UpdateProfile` request.
pub fn check_profile(req: &pb::UpdateProfileRequest) -> Result<ProfileChange> {
    Ok(ProfileChange {
        name: req
            .display_name
            .as_deref()
            .map(|n| validate::display_name("display_name", n))
            .transpose()?,
        zone: req
            .time_zone
            .as_deref()
            .map(|z| validate::time_zone("time_zone", z))
            .transpose()?,
    })
}

/// Changes the caller's name and/or zone; the partner is told.
pub async fn update_profile(
    tx: &mut WriteTx,
    caller: &Caller,
    change: ProfileChange,
    now: DateTime<Utc>,
) -> Result<pb::UpdateProfileResponse> {
    let conn = tx.conn();
    let mut account = load_locked(conn, &caller.account_id).await?;
    let mut changed = Vec::new();
    if let Some(name) = change.name
        && name != account.display_name
    {
        account.display_name = name;
        changed.push(pb::PartnerChange::Name);
    }
    let moved = change.zone.filter(|z| *z != account.zone);
    let moved_from = moved.map(|_| account.zone);
    if let Some(zone) = moved {
        account.zone = zone;
        // Travel: the new zone is in force from now on, for streak dates and routines.
        accounts::record_zone(conn, &account.id, now, zone.name()).await?;
    }
    sqlx::query("UPDATE accounts SET display_name = $1, time_zone = $2 WHERE id = $3")
        .bind(&account.display_name)
        .bind(account.zone.name())
        .bind(&account.id)
        .execute(&mut *conn)
        .await?;
    if moved.is_some() {
        crate::routines::reschedule_account(conn, &account, moved_from, now).await?;
        crate::reconnect::reschedule_account(conn, &account, now).await?;
        crate::moments::reschedule_account(conn, &account, now).await?;
        changed.push(pb::PartnerChange::TimeZone);
    }
    tell_partner(tx, &account, changed, now).await?;
    Ok(pb::UpdateProfileResponse {
        account: Some(account.to_proto()),
    })
}

fn minute_of_day(field: &'static str, t: Option<&pb::LocalTimeOfDay>) -> Result<u32> {
    let t = t.ok_or_else(|| Error::invalid(field, "is required"))?;
    if t.hour > 23 || t.minute > 59 {
        return Err(Error::invalid(
            field,
            "must be a time of day: hour 0-23, minute 0-59",
        ));
    }
    Ok(t.hour * 60 + t.minute)
}

/// The caller's settings.
pub async fn get_settings(pool: &AnyPool, caller: &Caller) -> Result<pb::GetSettingsResponse> {
    let mut conn = pool.acquire().await?;
    let account = load(&mut conn, &caller.account_id).await?;
    Ok(pb::GetSettingsResponse {
        settings: Some(account.settings()),
    })
}

/// A checked settings change: quiet hours set or cleared, receipts on or off.
#[derive(Debug, Clone, Copy)]
pub struct SettingsChange {
    quiet: Option<Option<QuietHours>>,
    receipts: Option<bool>,
}

/// Checks an `UpdateSettings` request.
pub fn check_settings(req: &pb::UpdateSettingsRequest) -> Result<SettingsChange> {
    use pb::update_settings_request::QuietHoursChange;
    let quiet = match &req.quiet_hours_change {
        None => None,
        Some(QuietHoursChange::ClearQuietHours(false)) => {
            return Err(Error::invalid("clear_quiet_hours", "must be true when set"));
        }
        Some(QuietHoursChange::ClearQuietHours(true)) => Some(None),
        Some(QuietHoursChange::SetQuietHours(q)) => {
            let start_min = minute_of_day("set_quiet_hours.start", q.start.as_ref())?;
            let end_min = minute_of_day("set_quiet_hours.end", q.end.as_ref())?;
            if start_min == end_min {
                return Err(Error::invalid(
                    "set_quiet_hours",
                    "start and end must differ",
                ));
            }
            Some(Some(QuietHours { start_min, end_min }))
        }
    };
    Ok(SettingsChange {
        quiet,
        receipts: req.receipts_enabled,
    })
}

/// Changes quiet hours and/or receipts; the partner is told.
pub async fn update_settings(
    tx: &mut WriteTx,
    caller: &Caller,
    change: SettingsChange,
    now: DateTime<Utc>,
) -> Result<pb::UpdateSettingsResponse> {
    let conn = tx.conn();
    let mut account = load_locked(conn, &caller.account_id).await?;
    let mut changed = Vec::new();
    if let Some(q) = change.quiet
        && q != account.quiet
    {
        account.quiet = q;
        changed.push(pb::PartnerChange::QuietHours);
    }
    if let Some(r) = change.receipts
        && r != account.receipts_enabled
    {
        account.receipts_enabled = r;
        changed.push(pb::PartnerChange::Receipts);
    }
    sqlx::query(
        "UPDATE accounts SET quiet_start_min = $1, quiet_end_min = $2, receipts_enabled = $3 \
         WHERE id = $4",
    )
    .bind(account.quiet.map(|q| i64::from(q.start_min)))
    .bind(account.quiet.map(|q| i64::from(q.end_min)))
    .bind(i64::from(account.receipts_enabled))
    .bind(&account.id)
    .execute(&mut *conn)
    .await?;
    if changed.contains(&pb::PartnerChange::QuietHours) {
        // Routines wait for the end of quiet hours.
        crate::routines::reschedule_account(conn, &account, None, now).await?;
        crate::reconnect::reschedule_account(conn, &account, now).await?;
        crate::moments::reschedule_account(conn, &account, now).await?;
    }
    tell_partner(tx, &account, changed, now).await?;
    Ok(pb::UpdateSettingsResponse {
        settings: Some(account.settings()),
    })
}
