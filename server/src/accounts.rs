//! Accounts, their zone history, devices and device-link codes.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};
use tapline_proto::v1 as pb;
use uuid::Uuid;

use crate::auth::Caller;
use crate::db::{from_us, timestamp_us, to_us};
use crate::domain::codes::{hash_secret, new_code, new_token, normalize_code};
use crate::domain::quiet::person_clock;
use crate::domain::streaks::ZoneHistory;
use crate::domain::validate;
use crate::error::{Error, Refusal, Result};
use crate::store::{ACCOUNT_COLUMNS, AccountRow, account_row, parse_zone};
use crate::txn::WriteTx;

/// How long a device-link code lives.
pub const LINK_CODE_TTL_MINUTES: i64 = 10;

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

/// A minute of the day on the wire.
pub fn time_of_day(minute: u32) -> pb::LocalTimeOfDay {
    pb::LocalTimeOfDay {
        hour: minute / 60,
        minute: minute % 60,
    }
}

/// An account from a pool or general-connection row with [`ACCOUNT_COLUMNS`].
pub fn account_from_row(r: &AnyRow) -> Result<AccountRow> {
    account_row(
        r.try_get("id")?,
        r.try_get("display_name")?,
        r.try_get("time_zone")?,
        r.try_get("quiet_start_min")?,
        r.try_get("quiet_end_min")?,
        r.try_get("receipts_enabled")?,
        r.try_get("couple_id")?,
        r.try_get("created_at_us")?,
    )
}

/// The account matching `filter` (a `WHERE` clause over `$1..$n`, bound to `binds`), if any.
pub async fn load_where(
    conn: &mut AnyConnection,
    filter: &str,
    binds: &[&str],
) -> Result<Option<AccountRow>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE {filter}");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(*b);
    }
    q.fetch_optional(conn)
        .await?
        .map(|r| account_from_row(&r))
        .transpose()
}

/// Loads an account.
pub async fn load(conn: &mut AnyConnection, account_id: &str) -> Result<AccountRow> {
    load_where(conn, "id = $1", &[account_id])
        .await?
        .ok_or(Error::NotFound("account"))
}

/// Records that `account_id` is in `zone` from `at` on (travel: the zone in force for streak
/// dates and routines from then).
pub async fn record_zone(
    conn: &mut AnyConnection,
    account_id: &str,
    at: DateTime<Utc>,
    zone: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO zone_history (account_id, from_us, zone) VALUES ($1, $2, $3) \
         ON CONFLICT (account_id, from_us) DO UPDATE SET zone = excluded.zone",
    )
    .bind(account_id)
    .bind(to_us(at))
    .bind(zone)
    .execute(conn)
    .await?;
    Ok(())
}

/// An account's zones over time.
pub async fn zone_history(conn: &mut AnyConnection, account_id: &str) -> Result<ZoneHistory> {
    let rows = sqlx::query(
        "SELECT from_us, zone FROM zone_history WHERE account_id = $1 ORDER BY from_us",
    )
    .bind(account_id)
    .fetch_all(conn)
    .await?;
    let mut segments = Vec::with_capacity(rows.len());
    for r in &rows {
        let zone: String = r.try_get("zone")?;
        segments.push((from_us(r.try_get("from_us")?), parse_zone(&zone)?));
    }
    ZoneHistory::from_segments(segments)
        .ok_or_else(|| Error::Corrupt(format!("no zone history for {account_id}")))
}

/// Today's local date of an account, in the zone in force now.
pub async fn local_today(
    conn: &mut AnyConnection,
    account_id: &str,
    now: DateTime<Utc>,
) -> Result<chrono::NaiveDate> {
    Ok(zone_history(conn, account_id).await?.local_date_at(now))
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

/// What a device says about itself, checked.
#[derive(Debug, Clone)]
pub struct NewDevice {
    kind: pb::DeviceKind,
    platform: pb::Platform,
    name: String,
}

/// Checks what a device says about itself.
pub fn check_device(info: Option<&pb::DeviceInfo>) -> Result<NewDevice> {
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
    Ok(NewDevice {
        kind,
        platform,
        name,
    })
}

async fn insert_device(
    conn: &mut AnyConnection,
    account_id: &str,
    new: NewDevice,
    now: DateTime<Utc>,
) -> Result<(DeviceRow, String)> {
    let token = new_token();
    let row = DeviceRow {
        id: Uuid::now_v7().to_string(),
        kind: new.kind as i64,
        platform: new.platform as i64,
        name: new.name,
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

/// A new account's checked fields.
#[derive(Debug, Clone)]
pub struct NewAccount {
    name: String,
    zone: Tz,
    device: NewDevice,
}

/// Checks a `CreateAccount` request.
pub fn check_create(req: &pb::CreateAccountRequest) -> Result<NewAccount> {
    Ok(NewAccount {
        name: validate::display_name("display_name", &req.display_name)?,
        zone: validate::time_zone("time_zone", &req.time_zone)?,
        device: check_device(req.device.as_ref())?,
    })
}

/// Creates an account with its first device.
pub async fn create_account(
    tx: &mut WriteTx,
    new: NewAccount,
    now: DateTime<Utc>,
) -> Result<pb::CreateAccountResponse> {
    let account = AccountRow {
        id: Uuid::now_v7().to_string(),
        display_name: new.name,
        zone: new.zone,
        quiet: None,
        receipts_enabled: true,
        couple_id: None,
        created_at_us: to_us(now),
    };
    let conn = tx.conn();
    sqlx::query(
        "INSERT INTO accounts (id, display_name, time_zone, receipts_enabled, created_at_us) \
         VALUES ($1, $2, $3, 1, $4)",
    )
    .bind(&account.id)
    .bind(&account.display_name)
    .bind(account.zone.name())
    .bind(account.created_at_us)
    .execute(&mut *conn)
    .await?;
    record_zone(conn, &account.id, now, account.zone.name()).await?;
    let (device, token) = insert_device(conn, &account.id, new.device, now).await?;
    tracing::info!(account = %account.id, device = %device.id, "account created");
    Ok(pb::CreateAccountResponse {
        account: Some(account.to_proto()),
        device: Some(device.to_proto(&device.id)),
        token,
    })
}

/// The caller's account and device.
pub async fn get_account(pool: &AnyPool, caller: &Caller) -> Result<pb::GetAccountResponse> {
    let mut conn = pool.acquire().await?;
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
pub async fn list_devices(pool: &AnyPool, caller: &Caller) -> Result<pb::ListDevicesResponse> {
    let mut conn = pool.acquire().await?;
    let devices = load_devices(&mut conn, &caller.account_id).await?;
    Ok(pb::ListDevicesResponse {
        devices: devices
            .iter()
            .map(|d| d.to_proto(&caller.device_id))
            .collect(),
    })
}

/// Renames one of the caller's active devices.
pub async fn rename_device(
    tx: &mut WriteTx,
    caller: &Caller,
    device_id: &str,
    name: &str,
) -> Result<pb::RenameDeviceResponse> {
    let conn = tx.conn();
    let done = sqlx::query(
        "UPDATE devices SET name = $1 WHERE id = $2 AND account_id = $3 AND revoked_at_us IS NULL",
    )
    .bind(name)
    .bind(device_id)
    .bind(&caller.account_id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound("device"));
    }
    let device = load_devices(conn, &caller.account_id)
        .await?
        .into_iter()
        .find(|d| d.id == device_id)
        .ok_or(Error::NotFound("device"))?;
    Ok(pb::RenameDeviceResponse {
        device: Some(device.to_proto(&caller.device_id)),
    })
}

/// Withdraws the caller's pending codes of `purpose`; returns how many there were.
pub async fn revoke_codes(
    conn: &mut AnyConnection,
    account_id: &str,
    purpose: &'static str,
    now: DateTime<Utc>,
) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM codes WHERE account_id = $1 AND purpose = $2 AND used_at_us IS NULL \
         AND expires_at_us > $3",
    )
    .bind(account_id)
    .bind(purpose)
    .bind(to_us(now))
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Signs out one of the caller's devices (possibly itself); its token stops working and its
/// undelivered events are dropped.
pub async fn revoke_device(
    tx: &mut WriteTx,
    caller: &Caller,
    device_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let conn = tx.conn();
    let done = sqlx::query(
        "UPDATE devices SET revoked_at_us = $1 WHERE id = $2 AND account_id = $3 \
         AND revoked_at_us IS NULL",
    )
    .bind(to_us(now))
    .bind(device_id)
    .bind(&caller.account_id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound("device"));
    }
    sqlx::query("DELETE FROM inbox WHERE device_id = $1")
        .bind(device_id)
        .execute(&mut *conn)
        .await?;
    crate::push::remove_device(&mut *conn, device_id).await?;
    tx.revoked(device_id.to_owned());
    tracing::info!(account = %caller.account_id, device = %device_id, "device revoked");
    Ok(())
}

/// Stores a new single-use code for `purpose`, retrying on the (rare) hash collision.
pub async fn create_code(
    tx: &mut WriteTx,
    purpose: &'static str,
    account_id: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<(String, DateTime<Utc>)> {
    let conn = tx.conn();
    let expires = now + ttl;
    // Forget codes that expired a day ago; they can never be redeemed.
    sqlx::query("DELETE FROM codes WHERE expires_at_us < $1")
        .bind(to_us(now - Duration::days(1)))
        .execute(&mut *conn)
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
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok((code, expires));
        }
    }
    Err(Error::Corrupt("could not find a free code".into()))
}

/// A code as typed, normalized, or the field error.
pub fn check_code(field: &'static str, input: &str) -> Result<String> {
    normalize_code(input).ok_or_else(|| {
        Error::invalid(
            field,
            "must be 8 characters of Crockford base32 (0-9, A-Z without I, L, O, U)",
        )
    })
}

/// Redeems a (normalized) code of `purpose` inside the transaction: returns the account that
/// made it, or refuses a wrong, used or expired code.
pub async fn redeem_code(
    conn: &mut AnyConnection,
    purpose: &'static str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<String> {
    let row = sqlx::query(
        "SELECT account_id, expires_at_us, used_at_us FROM codes WHERE code_hash = $1 AND purpose = $2",
    )
    .bind(hash_secret(code))
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
        .bind(hash_secret(code))
        .execute(&mut *conn)
        .await?;
    Ok(row.try_get("account_id")?)
}

/// Creates a device-link code for the caller's account.
pub async fn create_link_code(
    tx: &mut WriteTx,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<pb::CreateLinkCodeResponse> {
    let (code, expires) = create_code(
        tx,
        "link",
        &caller.account_id,
        Duration::minutes(LINK_CODE_TTL_MINUTES),
        now,
    )
    .await?;
    Ok(pb::CreateLinkCodeResponse {
        code,
        expires_at: Some(timestamp_us(to_us(expires))),
    })
}

/// Redeems a (normalized) link code on a new device.
pub async fn redeem_link_code(
    tx: &mut WriteTx,
    code: &str,
    device: NewDevice,
    now: DateTime<Utc>,
) -> Result<pb::RedeemLinkCodeResponse> {
    let conn = tx.conn();
    let account_id = redeem_code(conn, "link", code, now).await?;
    let account = load(conn, &account_id).await?;
    let (device, token) = insert_device(conn, &account_id, device, now).await?;
    tracing::info!(account = %account_id, device = %device.id, "device linked");
    Ok(pb::RedeemLinkCodeResponse {
        account: Some(account.to_proto()),
        device: Some(device.to_proto(&device.id)),
        token,
    })
}
