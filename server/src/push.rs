//! Push targets: where each device's content-free wake-up pushes go. Registering, replacing
//! and removing go through the group commit; listing reads from the pool.

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, AnyPool, Row};
use tapline_proto::v1 as pb;

use crate::auth::Caller;
use crate::db::{timestamp_us, to_us};
use crate::domain::push::Target;
use crate::error::{Error, Result};
use crate::txn::WriteTx;

/// Registers (or replaces) the caller's target for its provider. The same address held by
/// another device (an app reinstalled, a token moved) leaves that device: one owner each.
pub async fn register(
    tx: &mut WriteTx,
    caller: &Caller,
    target: Target,
    now: DateTime<Utc>,
) -> Result<pb::RegisterPushResponse> {
    let conn = tx.conn();
    let provider = target.provider as i64;
    sqlx::query(
        "DELETE FROM push_targets WHERE provider = $1 AND address = $2 AND device_id <> $3",
    )
    .bind(provider)
    .bind(&target.address)
    .bind(&caller.device_id)
    .execute(&mut *conn)
    .await?;
    let blob = |b: &[u8]| (!b.is_empty()).then(|| b.to_vec());
    sqlx::query(
        "INSERT INTO push_targets (device_id, provider, address, topic, environment, push_types, \
         p256dh, auth, registered_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (device_id, provider) DO UPDATE SET address = excluded.address, \
         topic = excluded.topic, environment = excluded.environment, \
         push_types = excluded.push_types, p256dh = excluded.p256dh, auth = excluded.auth, \
         registered_at_us = excluded.registered_at_us",
    )
    .bind(&caller.device_id)
    .bind(provider)
    .bind(&target.address)
    .bind(&target.topic)
    .bind(target.environment as i64)
    .bind(target.push_types)
    .bind(blob(&target.p256dh))
    .bind(blob(&target.auth))
    .bind(to_us(now))
    .execute(&mut *conn)
    .await?;
    tracing::info!(device = %caller.device_id, provider = ?target.provider, "push target registered");
    Ok(pb::RegisterPushResponse {
        target: Some(to_proto(&target, to_us(now))),
    })
}

/// Removes the caller's target for `provider`; says whether there was one.
pub async fn remove(
    tx: &mut WriteTx,
    caller: &Caller,
    provider: i32,
) -> Result<pb::RemovePushResponse> {
    let provider = match pb::PushProvider::try_from(provider) {
        Ok(pb::PushProvider::Unspecified) | Err(_) => {
            return Err(Error::invalid("provider", "must be apns, fcm or web_push"));
        }
        Ok(p) => p,
    };
    let done = sqlx::query("DELETE FROM push_targets WHERE device_id = $1 AND provider = $2")
        .bind(&caller.device_id)
        .bind(provider as i64)
        .execute(tx.conn())
        .await?;
    Ok(pb::RemovePushResponse {
        removed: done.rows_affected() > 0,
    })
}

/// Removes every target and pending wake-up of a device (it was signed out).
pub async fn remove_device(conn: &mut AnyConnection, device_id: &str) -> Result<()> {
    for sql in [
        "DELETE FROM push_jobs WHERE device_id = $1",
        "DELETE FROM push_targets WHERE device_id = $1",
    ] {
        sqlx::query(sql).bind(device_id).execute(&mut *conn).await?;
    }
    Ok(())
}

/// A device's targets, by provider, each with when it was registered (µs).
pub async fn of_device(conn: &mut AnyConnection, device_id: &str) -> Result<Vec<(Target, i64)>> {
    let rows = sqlx::query(
        "SELECT provider, address, topic, environment, push_types, p256dh, auth, \
         registered_at_us FROM push_targets WHERE device_id = $1 ORDER BY provider",
    )
    .bind(device_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(target_row).collect()
}

/// The targets of the jobs one claim leased, by device.
pub async fn of_lease(
    conn: &mut AnyConnection,
    lease_id: i64,
) -> Result<std::collections::HashMap<String, Vec<Target>>> {
    let rows = sqlx::query(
        "SELECT t.device_id, t.provider, t.address, t.topic, t.environment, t.push_types, \
         t.p256dh, t.auth, t.registered_at_us FROM push_targets t \
         JOIN push_jobs j ON j.device_id = t.device_id WHERE j.lease_id = $1 \
         ORDER BY t.device_id, t.provider",
    )
    .bind(lease_id)
    .fetch_all(conn)
    .await?;
    let mut out: std::collections::HashMap<String, Vec<Target>> = Default::default();
    for r in &rows {
        let device: String = r.try_get("device_id")?;
        out.entry(device).or_default().push(target_row(r)?.0);
    }
    Ok(out)
}

fn target_row(r: &sqlx::any::AnyRow) -> Result<(Target, i64)> {
    let target = Target {
        provider: pb::PushProvider::try_from(r.try_get::<i64, _>("provider")? as i32)
            .unwrap_or(pb::PushProvider::Unspecified),
        address: r.try_get("address")?,
        topic: r.try_get("topic")?,
        environment: pb::ApnsEnvironment::try_from(r.try_get::<i64, _>("environment")? as i32)
            .unwrap_or(pb::ApnsEnvironment::Unspecified),
        push_types: r.try_get("push_types")?,
        p256dh: r
            .try_get::<Option<Vec<u8>>, _>("p256dh")?
            .unwrap_or_default(),
        auth: r.try_get::<Option<Vec<u8>>, _>("auth")?.unwrap_or_default(),
    };
    Ok((target, r.try_get("registered_at_us")?))
}

/// The caller's targets, by provider.
pub async fn list(pool: &AnyPool, caller: &Caller) -> Result<pb::ListPushTargetsResponse> {
    let mut conn = pool.acquire().await?;
    let targets = of_device(&mut conn, &caller.device_id).await?;
    Ok(pb::ListPushTargetsResponse {
        targets: targets.iter().map(|(t, at)| to_proto(t, *at)).collect(),
    })
}

fn to_proto(t: &Target, registered_at_us: i64) -> pb::PushTarget {
    use pb::push_target::Target as T;
    let target = match t.provider {
        pb::PushProvider::Apns => Some(T::Apns(pb::ApnsTarget {
            device_token: t.address.clone(),
            topic: t.topic.clone(),
            environment: t.environment as i32,
            push_types: (1..=4)
                .filter(|bit| t.push_types & (1 << bit) != 0)
                .collect(),
        })),
        pb::PushProvider::Fcm => Some(T::Fcm(pb::FcmTarget {
            registration_token: t.address.clone(),
        })),
        pb::PushProvider::WebPush => Some(T::WebPush(pb::WebPushTarget {
            endpoint: t.address.clone(),
            p256dh: t.p256dh.clone(),
            auth: t.auth.clone(),
        })),
        pb::PushProvider::Unspecified => None,
    };
    pb::PushTarget {
        provider: t.provider as i32,
        target,
        registered_at: Some(timestamp_us(registered_at_us)),
    }
}
