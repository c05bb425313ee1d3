//! Accounts, devices, device-link codes, profile and settings.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use sqlx::{AnyConnection, Row};
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::db::{timestamp_us, to_us};
use crate::delivery::{account_devices, commit, new_event, to_each};
use crate::domain::codes::{hash_secret, new_code, new_token, normalize_code};
use crate::domain::quiet::{QuietHours, person_clock};
use crate::domain::validate;
use crate::error::{Error, Refusal, Result};

/// How long a device-link code lives.
pub const LINK_CODE_TTL_MINUTES: i64 = 10;

/// An account as stored.
#[derive(Debug, Clone)]
pub struct AccountRow {
    /// Account id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// IANA zone.
    pub zone: Tz,
    /// Quiet hours, when on.
    pub quiet: Option<QuietHours>,
    /// Whether the partner is told of felt/seen.
    pub receipts_enabled: bool,
    /// The current couple.
    pub couple_id: Option<String>,
    /// Creation instant (µs).
    pub created_at_us: i64,
}

impl AccountRow {
    /// The account as sent on the wire.
    pub fn to_proto(&self) -> pb::Account {
        pb::Account {
            account_id: self.id.clone(),
            display_name: self.display_name.clone(),
            time_zone: self.zone.name().to_owned(),
            created_at: Some(timestamp_us(self.created_at_us)),
        }
    }

    /// This person's clock at `now`.
    pub fn clock(&self, now: DateTime<Utc>) -> pb::PersonClock {
        let c = person_clock(now, self.zone, self.quiet);
        pb::PersonClock {
            time_zone: self.zone.name().to_owned(),
            local_time: c.local.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            utc_offset_seconds: c.utc_offset_seconds,
            in_quiet_hours: c.in_quiet_hours,
        }
    }

    /// This person as their partner sees them at `now`.
    pub fn as_partner(&self, now: DateTime<Utc>) -> pb::Partner {
        pb::Partner {
            account_id: self.id.clone(),
            display_name: self.display_name.clone(),
            clock: Some(self.clock(now)),
            quiet_start: self.quiet.map(|q| time_of_day(q.start_min)),
            quiet_end: self.quiet.map(|q| time_of_day(q.end_min)),
        }
    }

    /// The settings as sent on the wire.
    pub fn settings(&self) -> pb::Settings {
        pb::Settings {
            quiet_hours: self.quiet.map(|q| pb::QuietHours {
                start: Some(time_of_day(q.start_min)),
                end: Some(time_of_day(q.end_min)),
            }),
            receipts_enabled: self.receipts_enabled,
        }
    }
}

fn time_of_day(minute: u32) -> pb::LocalTimeOfDay {
    pb::LocalTimeOfDay {
        hour: minute / 60,
        minute: minute % 60,
    }
}

macro_rules! account_columns {
    () => {
        "id, display_name, time_zone, quiet_start_min, quiet_end_min, receipts_enabled, \
         couple_id, created_at_us"
    };
}

macro_rules! account_select {
    ($where:literal) => {
        concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE ",
            $where
        )
    };
}

/// The columns [`account_from_row`] reads, for queries built elsewhere.
pub(crate) const ACCOUNT_COLUMNS: &str = account_columns!();

/// An account from a row with [`ACCOUNT_COLUMNS`].
pub(crate) fn account_from_row(row: &crate::sql::Row) -> Result<AccountRow> {
    let zone: String = row.get("time_zone")?;
    let start: Option<i64> = row.get("quiet_start_min")?;
    let end: Option<i64> = row.get("quiet_end_min")?;
    Ok(AccountRow {
        id: row.get("id")?,
        display_name: row.get("display_name")?,
        zone: zone
            .parse()
            .map_err(|_| Error::Corrupt(format!("time zone {zone:?}")))?,
        quiet: start.zip(end).map(|(s, e)| QuietHours {
            start_min: s as u32,
            end_min: e as u32,
        }),
        receipts_enabled: row.get::<i64>("receipts_enabled")? != 0,
        couple_id: row.get("couple_id")?,
        created_at_us: row.get("created_at_us")?,
    })
}

/// Loads an account.
pub async fn load(conn: &mut AnyConnection, account_id: &str) -> Result<AccountRow> {
    let row = sqlx::query(account_select!("id = $1"))
        .bind(account_id)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NotFound("account"))?;
    account_from_row(&row.into())
}

/// The other member of `couple_id`.
pub async fn partner(conn: &mut AnyConnection, couple_id: &str, me: &str) -> Result<AccountRow> {
    let row = sqlx::query(account_select!("couple_id = $1 AND id <> $2"))
        .bind(couple_id)
        .bind(me)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::Corrupt(format!("couple {couple_id} has no partner")))?;
    account_from_row(&row.into())
}

/// A device as stored.
#[derive(Debug, Clone)]
struct DeviceRow {
    id: String,
    kind: i64,
    platform: i64,
    name: String,
    created_at_us: i64,
}

impl DeviceRow {
    fn to_proto(&self, current: &str) -> pb::Device {
        pb::Device {
            device_id: self.id.clone(),
            kind: self.kind as i32,
            platform: self.platform as i32,
            name: self.name.clone(),
            created_at: Some(timestamp_us(self.created_at_us)),
            current: self.id == current,
        }
    }
}

/// Checks what a device says about itself.
fn validate_device(
    info: Option<&pb::DeviceInfo>,
) -> Result<(pb::DeviceKind, pb::Platform, String)> {
    let info = info.ok_or_else(|| Error::invalid("device", "is required"))?;
    let kind = match pb::DeviceKind::try_from(info.kind) {
        Ok(pb::DeviceKind::Unspecified) | Err(_) => {
            return Err(Error::invalid(
                "device.kind",
                "must be phone, watch or desktop",
            ));
        }
        Ok(k) => k,
    };
    let platform = match pb::Platform::try_from(info.platform) {
        Ok(pb::Platform::Unspecified) | Err(_) => {
            return Err(Error::invalid(
                "device.platform",
                "must be ios, watchos, android, wear_os, macos, linux or windows",
            ));
        }
        Ok(p) => p,
    };
    let name = validate::device_name("device.name", &info.name)?;
    Ok((kind, platform, name))
}

async fn insert_device(
    conn: &mut AnyConnection,
    account_id: &str,
    (kind, platform, name): (pb::DeviceKind, pb::Platform, String),
    now: DateTime<Utc>,
) -> Result<(DeviceRow, String)> {
    let token = new_token();
    let row = DeviceRow {
        id: Uuid::now_v7().to_string(),
        kind: kind as i64,
        platform: platform as i64,
        name,
        created_at_us: to_us(now),
    };
    sqlx::query(
        "INSERT INTO devices (id, account_id, kind, platform, name, token_hash, created_at_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&row.id)
    .bind(account_id)
    .bind(row.kind)
    .bind(row.platform)
    .bind(&row.name)
    .bind(hash_secret(&token))
    .bind(row.created_at_us)
    .execute(conn)
    .await?;
    Ok((row, token))
}

/// Creates an account with its first device.
pub async fn create_account(
    state: &AppState,
    req: pb::CreateAccountRequest,
) -> Result<pb::CreateAccountResponse> {
    let name = validate::display_name("display_name", &req.display_name)?;
    let zone = validate::time_zone("time_zone", &req.time_zone)?;
    let device = validate_device(req.device.as_ref())?;
    let now = state.clock.now();
    let account = AccountRow {
        id: Uuid::now_v7().to_string(),
        display_name: name,
        zone,
        quiet: None,
        receipts_enabled: true,
        couple_id: None,
        created_at_us: to_us(now),
    };
    let mut tx = state.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO accounts (id, display_name, time_zone, receipts_enabled, created_at_us) VALUES ($1, $2, $3, 1, $4)",
    )
    .bind(&account.id)
    .bind(&account.display_name)
    .bind(account.zone.name())
    .bind(account.created_at_us)
    .execute(&mut *tx)
    .await?;
    crate::streaks::record_zone(&mut tx, &account.id, now, account.zone.name()).await?;
    let (device, token) = insert_device(&mut tx, &account.id, device, now).await?;
    tx.commit().await?;
    tracing::info!(account = %account.id, device = %device.id, "account created");
    Ok(pb::CreateAccountResponse {
        account: Some(account.to_proto()),
        device: Some(device.to_proto(&device.id)),
        token,
    })
}

/// The caller's account and device.
pub async fn get_account(state: &AppState, caller: &Caller) -> Result<pb::GetAccountResponse> {
    let mut conn = state.db.pool().acquire().await?;
    let account = load(&mut conn, &caller.account_id).await?;
    let device = load_devices(&mut conn, &caller.account_id)
        .await?
        .into_iter()
        .find(|d| d.id == caller.device_id)
        .ok_or(Error::Unauthenticated)?;
    Ok(pb::GetAccountResponse {
        account: Some(account.to_proto()),
        device: Some(device.to_proto(&caller.device_id)),
    })
}

async fn load_devices(conn: &mut AnyConnection, account_id: &str) -> Result<Vec<DeviceRow>> {
    let rows = sqlx::query(
        "SELECT id, kind, platform, name, created_at_us FROM devices \
         WHERE account_id = $1 AND revoked_at_us IS NULL ORDER BY created_at_us, id",
    )
    .bind(account_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DeviceRow {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                platform: r.try_get("platform")?,
                name: r.try_get("name")?,
                created_at_us: r.try_get("created_at_us")?,
            })
        })
        .collect()
}

/// Lists the caller's active devices.
pub async fn list_devices(state: &AppState, caller: &Caller) -> Result<pb::ListDevicesResponse> {
    let mut conn = state.db.pool().acquire().await?;
    let devices = load_devices(&mut conn, &caller.account_id).await?;
    Ok(pb::ListDevicesResponse {
        devices: devices
            .iter()
            .map(|d| d.to_proto(&caller.device_id))
            .collect(),
    })
}

/// Signs out one of the caller's devices (possibly itself); its token stops working and its
/// undelivered events are dropped.
pub async fn revoke_device(state: &AppState, caller: &Caller, device_id: &str) -> Result<()> {
    let device_id = validate::id("device_id", device_id)?;
    let now = state.clock.now();
    let mut tx = state.db.begin_write().await?;
    let done = sqlx::query(
        "UPDATE devices SET revoked_at_us = $1 WHERE id = $2 AND account_id = $3 AND revoked_at_us IS NULL",
    )
    .bind(to_us(now))
    .bind(&device_id)
    .bind(&caller.account_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound("device"));
    }
    sqlx::query("DELETE FROM inbox WHERE device_id = $1")
        .bind(&device_id)
        .execute(&mut *tx)
        .await?;
    crate::delivery::cluster::revoke(&mut tx, &device_id).await?;
    tx.commit().await?;
    state.tokens.forget_device(&device_id);
    state.doorbell.revoke(&device_id);
    tracing::info!(account = %caller.account_id, device = %device_id, "device revoked");
    Ok(())
}

/// Stores a new single-use code for `purpose`, retrying on the (rare) hash collision.
pub async fn create_code(
    state: &AppState,
    purpose: &'static str,
    account_id: &str,
    ttl: Duration,
) -> Result<(String, DateTime<Utc>)> {
    let now = state.clock.now();
    let expires = now + ttl;
    // Forget codes that expired a day ago; they can never be redeemed.
    sqlx::query("DELETE FROM codes WHERE expires_at_us < $1")
        .bind(to_us(now - Duration::days(1)))
        .execute(state.db.pool())
        .await?;
    for _ in 0..5 {
        let code = new_code();
        let inserted = sqlx::query(
            "INSERT INTO codes (code_hash, purpose, account_id, created_at_us, expires_at_us) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (code_hash) DO NOTHING",
        )
        .bind(hash_secret(&code))
        .bind(purpose)
        .bind(account_id)
        .bind(to_us(now))
        .bind(to_us(expires))
        .execute(state.db.pool())
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok((code, expires));
        }
    }
    Err(Error::Corrupt("could not find a free code".into()))
}

/// Redeems a code of `purpose` inside `tx`: returns the account that made it, or refuses a
/// wrong, used or expired code.
pub async fn redeem_code(
    conn: &mut AnyConnection,
    purpose: &'static str,
    field: &'static str,
    input: &str,
    now: DateTime<Utc>,
) -> Result<String> {
    let code = normalize_code(input).ok_or_else(|| {
        Error::invalid(
            field,
            "must be 8 characters of Crockford base32 (0-9, A-Z without I, L, O, U)",
        )
    })?;
    let row = sqlx::query(
        "SELECT account_id, expires_at_us, used_at_us FROM codes WHERE code_hash = $1 AND purpose = $2",
    )
    .bind(hash_secret(&code))
    .bind(purpose)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound("code"))?;
    if row.try_get::<Option<i64>, _>("used_at_us")?.is_some() {
        return Err(Error::Refused(Refusal::CodeUsed));
    }
    if row.try_get::<i64, _>("expires_at_us")? <= to_us(now) {
        return Err(Error::Refused(Refusal::CodeExpired));
    }
    sqlx::query("UPDATE codes SET used_at_us = $1 WHERE code_hash = $2")
        .bind(to_us(now))
        .bind(hash_secret(&code))
        .execute(&mut *conn)
        .await?;
    Ok(row.try_get("account_id")?)
}

/// Creates a device-link code for the caller's account.
pub async fn create_link_code(
    state: &AppState,
    caller: &Caller,
) -> Result<pb::CreateLinkCodeResponse> {
    let (code, expires) = create_code(
        state,
        "link",
        &caller.account_id,
        Duration::minutes(LINK_CODE_TTL_MINUTES),
    )
    .await?;
    Ok(pb::CreateLinkCodeResponse {
        code,
        expires_at: Some(timestamp_us(to_us(expires))),
    })
}

/// Redeems a link code on a new device. `peer` keys the guessing limit.
pub async fn redeem_link_code(
    state: &AppState,
    peer: &str,
    req: pb::RedeemLinkCodeRequest,
) -> Result<pb::RedeemLinkCodeResponse> {
    let now = state.clock.now();
    state
        .limits
        .code_guesses
        .take(&format!("link:{peer}"), now)
        .map_err(|retry_after| Error::RateLimited {
            what: "too many link-code attempts",
            retry_after,
        })?;
    let device = validate_device(req.device.as_ref())?;
    let mut tx = state.db.begin_write().await?;
    let account_id = redeem_code(&mut tx, "link", "code", &req.code, now).await?;
    let account = load(&mut tx, &account_id).await?;
    let (device, token) = insert_device(&mut tx, &account_id, device, now).await?;
    tx.commit().await?;
    tracing::info!(account = %account_id, device = %device.id, "device linked");
    Ok(pb::RedeemLinkCodeResponse {
        account: Some(account.to_proto()),
        device: Some(device.to_proto(&device.id)),
        token,
    })
}

/// The events that tell the partner (if any) that `account` changed.
async fn tell_partner(
    conn: &mut AnyConnection,
    account: &AccountRow,
    now: DateTime<Utc>,
) -> Result<Vec<(String, pb::Event)>> {
    let Some(couple_id) = &account.couple_id else {
        return Ok(vec![]);
    };
    let partner = partner(conn, couple_id, &account.id).await?;
    let devices = account_devices(conn, &partner.id).await?;
    let event = new_event(
        Payload::PartnerUpdated(pb::PartnerUpdated {
            partner: Some(account.as_partner(now)),
        }),
        now,
    );
    Ok(to_each(&devices, &event))
}

/// Changes the caller's name and/or zone; the partner is told.
pub async fn update_profile(
    state: &AppState,
    caller: &Caller,
    req: pb::UpdateProfileRequest,
) -> Result<pb::UpdateProfileResponse> {
    let name = req
        .display_name
        .as_deref()
        .map(|n| validate::display_name("display_name", n))
        .transpose()?;
    let zone = req
        .time_zone
        .as_deref()
        .map(|z| validate::time_zone("time_zone", z))
        .transpose()?;
    let now = state.clock.now();
    let mut tx = state.db.begin_write().await?;
    let mut account = load(&mut tx, &caller.account_id).await?;
    if let Some(name) = name {
        account.display_name = name;
    }
    let moved = zone.filter(|z| *z != account.zone);
    if let Some(zone) = moved {
        account.zone = zone;
        // Travel: the new zone is in force from now on, for streak dates and routines.
        crate::streaks::record_zone(&mut tx, &account.id, now, zone.name()).await?;
    }
    sqlx::query("UPDATE accounts SET display_name = $1, time_zone = $2 WHERE id = $3")
        .bind(&account.display_name)
        .bind(account.zone.name())
        .bind(&account.id)
        .execute(&mut *tx)
        .await?;
    if moved.is_some() {
        crate::routines::reschedule_account(&mut tx, &account, now).await?;
    }
    let items = tell_partner(&mut tx, &account, now).await?;
    commit(state, tx, items).await?;
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
pub async fn get_settings(state: &AppState, caller: &Caller) -> Result<pb::GetSettingsResponse> {
    let mut conn = state.db.pool().acquire().await?;
    let account = load(&mut conn, &caller.account_id).await?;
    Ok(pb::GetSettingsResponse {
        settings: Some(account.settings()),
    })
}

/// Changes quiet hours and/or receipts; the partner is told.
pub async fn update_settings(
    state: &AppState,
    caller: &Caller,
    req: pb::UpdateSettingsRequest,
) -> Result<pb::UpdateSettingsResponse> {
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
    let now = state.clock.now();
    let mut tx = state.db.begin_write().await?;
    let mut account = load(&mut tx, &caller.account_id).await?;
    if let Some(q) = quiet {
        account.quiet = q;
    }
    if let Some(r) = req.receipts_enabled {
        account.receipts_enabled = r;
    }
    sqlx::query("UPDATE accounts SET quiet_start_min = $1, quiet_end_min = $2, receipts_enabled = $3 WHERE id = $4")
        .bind(account.quiet.map(|q| i64::from(q.start_min)))
        .bind(account.quiet.map(|q| i64::from(q.end_min)))
        .bind(i64::from(account.receipts_enabled))
        .bind(&account.id)
        .execute(&mut *tx)
        .await?;
    if quiet.is_some() {
        // Routines wait for the end of quiet hours.
        crate::routines::reschedule_account(&mut tx, &account, now).await?;
    }
    let items = tell_partner(&mut tx, &account, now).await?;
    commit(state, tx, items).await?;
    Ok(pb::UpdateSettingsResponse {
        settings: Some(account.settings()),
    })
}
