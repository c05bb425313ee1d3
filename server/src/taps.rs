//! Taps: storing a batch of them in the group commit, once per (device, client id), with the
//! events for every recipient device and the streak actions they count as.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use prost::Message;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use uuid::Uuid;

use crate::auth::Caller;
use crate::couples::{self, Members};
use crate::db::{timestamp_us, to_us};
use crate::delivery::{new_event, to_each};
use crate::domain::taps::NewTap;
use crate::error::{Error, Refusal, Result};
use crate::store::{SpaceInForce, Store, TAP_COLUMNS, TapRow, TogetherInForce};
use crate::streaks::Action;

/// A tap to store and deliver.
#[derive(Debug)]
pub struct TapJob {
    /// The sender.
    pub caller: Caller,
    /// The validated tap.
    pub new: NewTap,
    /// When it was sent.
    pub now: DateTime<Utc>,
}

/// A stored tap on the wire.
pub fn tap_to_pb(t: &TapRow) -> Result<pb::Tap> {
    let rhythm = t
        .rhythm
        .as_deref()
        .map(pb::Rhythm::decode)
        .transpose()
        .map_err(|e| Error::Corrupt(format!("tap rhythm: {e}")))?;
    Ok(pb::Tap {
        tap_id: t.id.clone(),
        client_tap_id: t.client_tap_id.clone(),
        sender_account_id: t.sender_account_id.clone(),
        sender_device_id: t.sender_device_id.clone(),
        kind: t.kind as i32,
        rhythm,
        note: t.note.clone(),
        sent_at: Some(timestamp_us(t.created_at_us)),
    })
}

/// A stored tap read through the general connection.
pub fn tap_from_any(r: &AnyRow) -> Result<TapRow> {
    Ok(TapRow {
        id: r.try_get("id")?,
        couple_id: r.try_get("couple_id")?,
        sender_account_id: r.try_get("sender_account_id")?,
        sender_device_id: r.try_get("sender_device_id")?,
        client_tap_id: r.try_get("client_tap_id")?,
        kind: r.try_get("kind")?,
        rhythm: r.try_get("rhythm")?,
        note: r.try_get("note")?,
        created_at_us: r.try_get("created_at_us")?,
    })
}

/// The first answer to a tap already stored under the caller's device and `client_tap_id`,
/// read from the pool (a rate-limited retry still gets it), or `None`.
pub async fn stored_answer(
    pool: &AnyPool,
    caller: &Caller,
    client_tap_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<pb::SendTapResponse>> {
    let mut conn = pool.acquire().await?;
    let sql = format!(
        "SELECT {TAP_COLUMNS} FROM taps WHERE sender_device_id = $1 AND client_tap_id = $2"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&caller.device_id)
        .bind(client_tap_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let tap = tap_to_pb(&tap_from_any(&row)?)?;
    let (me, couple_id) = couples::require_couple(&mut conn, &caller.account_id).await?;
    let partner = couples::partner(&mut conn, &couple_id, &me.id).await?;
    Ok(Some(pb::SendTapResponse {
        tap: Some(tap),
        duplicate: true,
        partner_clock: Some(partner.clock(now)),
        ..Default::default()
    }))
}

/// What a batch of taps produced: each job's answer, the events to append and the streak
/// actions to count, in job order.
pub struct Applied {
    /// One answer per job.
    pub answers: Vec<Result<pb::SendTapResponse>>,
    /// Events for recipient devices.
    pub items: Vec<(String, pb::Event)>,
    /// Qualifying actions.
    pub actions: Vec<Action>,
}

/// Applies a batch of taps inside the group commit's transaction, after the lock prologue
/// ([`couples::prologue`]) loaded `members`: a tap already stored under its (device, client id)
/// is answered as a duplicate with the first result, never stored twice; the others are stored
/// in one statement and produce one event for each of the partner's devices and a silent copy
/// for each of the sender's other devices.
pub async fn apply<S: Store>(store: &mut S, members: &Members, jobs: &[TapJob]) -> Result<Applied> {
    if jobs.is_empty() {
        return Ok(Applied {
            answers: Vec::new(),
            items: Vec::new(),
            actions: Vec::new(),
        });
    }
    // Pass 1: the row each paired job would store (the first of a key in this batch).
    let mut rows: Vec<Option<TapRow>> = Vec::with_capacity(jobs.len());
    let mut keys = Vec::with_capacity(jobs.len());
    let mut in_batch: HashMap<(String, String), usize> = HashMap::new();
    let mut candidates = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let key = (
            job.caller.device_id.clone(),
            job.new.client_tap_id.to_string(),
        );
        let me = members.accounts.get(&job.caller.account_id);
        let paired = me.is_some() && members.partner(&job.caller.account_id).is_some();
        let row = (paired && !in_batch.contains_key(&key)).then(|| {
            in_batch.insert(key.clone(), i);
            TapRow {
                id: Uuid::now_v7().to_string(),
                couple_id: me.and_then(|m| m.couple_id.clone()).unwrap_or_default(),
                sender_account_id: job.caller.account_id.clone(),
                sender_device_id: job.caller.device_id.clone(),
                client_tap_id: key.1.clone(),
                kind: job.new.kind as i64,
                rhythm: job.new.rhythm.as_ref().map(Message::encode_to_vec),
                note: job.new.note.clone(),
                created_at_us: to_us(job.now),
            }
        });
        if let Some(r) = &row {
            candidates.push(r.clone());
        }
        rows.push(row);
        keys.push(key);
    }
    // One insert; only the keys stored before (retries) are read back.
    let inserted: std::collections::HashSet<String> =
        store.insert_taps(&candidates).await?.into_iter().collect();
    let retried: Vec<(String, String)> = candidates
        .iter()
        .filter(|r| !inserted.contains(&r.id))
        .map(|r| (r.sender_device_id.clone(), r.client_tap_id.clone()))
        .collect();
    let mut first: HashMap<(String, String), TapRow> = HashMap::new();
    for t in store.taps_by_client_id(&retried).await? {
        first.insert((t.sender_device_id.clone(), t.client_tap_id.clone()), t);
    }
    for r in candidates.into_iter().filter(|r| inserted.contains(&r.id)) {
        first.insert((r.sender_device_id.clone(), r.client_tap_id.clone()), r);
    }
    // Spaces in force of the recipients: their taps are held, not delivered.
    let mut recipients: Vec<String> = jobs
        .iter()
        .filter_map(|j| members.partner(&j.caller.account_id).map(|p| p.id.clone()))
        .collect();
    recipients.sort_unstable();
    recipients.dedup();
    let spaces: HashMap<String, SpaceInForce> = store
        .spaces_in_force(&recipients)
        .await?
        .into_iter()
        .map(|s| (s.account_id.clone(), s))
        .collect();
    // Together time in force: taps between the two are kept, to be delivered quietly.
    let mut couples: Vec<String> = jobs
        .iter()
        .filter_map(|j| members.couple_of(&j.caller.account_id).map(str::to_owned))
        .collect();
    couples.sort_unstable();
    couples.dedup();
    let together: HashMap<String, TogetherInForce> = store
        .together_in_force(&couples)
        .await?
        .into_iter()
        .map(|t| (t.couple_id.clone(), t))
        .collect();
    let mut holds = Vec::new();
    let mut together_holds = Vec::new();
    // Pass 2: answers and events.
    let mut applied = Applied {
        answers: Vec::with_capacity(jobs.len()),
        items: Vec::new(),
        actions: Vec::new(),
    };
    for ((job, key), row) in jobs.iter().zip(keys).zip(rows) {
        let (Some(me), Some(partner)) = (
            members.accounts.get(&job.caller.account_id),
            members.partner(&job.caller.account_id),
        ) else {
            applied
                .answers
                .push(Err(Error::Refused(Refusal::NotPaired)));
            continue;
        };
        let partner_clock = partner.clock(job.now);
        let stored = first
            .get(&key)
            .ok_or_else(|| Error::Corrupt("a tap vanished after a conflict".into()))?;
        let new = row.is_some_and(|r| r.id == stored.id);
        let tap = tap_to_pb(stored)?;
        if !new {
            // Stored before (a retry), or earlier in this very batch.
            applied.answers.push(Ok(pb::SendTapResponse {
                tap: Some(tap),
                duplicate: true,
                partner_clock: Some(partner_clock),
                ..Default::default()
            }));
            continue;
        }
        let space = spaces.get(&partner.id);
        // The partner's own space comes first: it is about them; together time about both.
        let together = space
            .is_none()
            .then(|| together.get(&stored.couple_id))
            .flatten();
        // One event (one id) for every recipient; only the sender's own copies differ.
        let to_partner = new_event(
            Payload::TapReceived(pb::TapReceived {
                tap: Some(tap.clone()),
                silent: partner_clock.in_quiet_hours,
                from_self: false,
                released: false,
            }),
            job.now,
        );
        let mut to_self = to_partner.clone();
        // The sender's other devices show what was sent, without buzzing.
        to_self.payload = Some(Payload::TapReceived(pb::TapReceived {
            tap: Some(tap.clone()),
            silent: true,
            from_self: true,
            released: false,
        }));
        match (space, together) {
            // Kept for the partner until their space ends (delivered then, together).
            (Some(s), _) => holds.push((stored.id.clone(), s.space_id.clone(), to_us(job.now))),
            // Kept until together time ends (delivered then, quietly).
            (None, Some(t)) => {
                together_holds.push((stored.id.clone(), t.together_id.clone(), to_us(job.now)))
            }
            (None, None) => applied
                .items
                .extend(to_each(members.devices_of(&partner.id), &to_partner)),
        }
        for d in members.devices_of(&me.id) {
            if *d != job.caller.device_id {
                applied.items.push((d.clone(), to_self.clone()));
            }
        }
        // A tap is a qualifying action for the streak: same transaction.
        applied.actions.push(Action {
            couple_id: stored.couple_id.clone(),
            account_id: job.caller.account_id.clone(),
            now: job.now,
        });
        applied.answers.push(Ok(pb::SendTapResponse {
            tap: Some(tap),
            duplicate: false,
            partner_clock: Some(partner_clock),
            held: space.is_some() || together.is_some(),
            held_until: space
                .map(|s| s.until_us)
                .or(together.map(|t| t.until_us))
                .map(timestamp_us),
            held_together: together.is_some(),
        }));
    }
    store.hold_taps(&holds).await?;
    store.hold_together_taps(&together_holds).await?;
    Ok(applied)
}
