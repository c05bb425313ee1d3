//! Tap receipts: delivered, felt and seen, each recorded once per tap and recipient account
//! and passed on to every device of the sender.
//!
//! DELIVERED needs no call of its own: a device's ack says it stored the events up to that
//! seq, so an ack past a partner tap's event records DELIVERED for it (the delivery module
//! finds those taps, [`crate::delivery::acks`]). A `ReportTap(DELIVERED)` from an older client
//! is accepted the same way and changes nothing once the ack has recorded it. Felt and seen are
//! passed on unless the reporter switched receipts off.

use chrono::{DateTime, Utc};
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;

use crate::auth::Caller;
use crate::couples::Members;
use crate::db::{timestamp_us, to_us};
use crate::delivery::{new_event, to_each};
use crate::error::{Error, Refusal, Result};
use crate::store::{AckedTap, ReceiptRow, Store};

/// Most taps one DELIVERED event names.
pub const TAPS_PER_RECEIPT: usize = 200;

/// One `TapReceipt` event for `rows` (same kind, first one's instant) to every device of
/// `sender`.
fn receipt_events(
    members: &Members,
    sender: &str,
    rows: &[&ReceiptRow],
) -> Vec<(String, pb::Event)> {
    let Some(first) = rows.first() else {
        return Vec::new();
    };
    let receipt = pb::TapReceipt {
        tap_id: first.tap_id.clone(),
        kind: first.kind as i32,
        at: Some(timestamp_us(first.created_at_us)),
        also_tap_ids: rows[1..].iter().map(|r| r.tap_id.clone()).collect(),
    };
    let event = new_event(
        Payload::TapReceipt(receipt),
        crate::db::from_us(first.created_at_us),
    );
    to_each(members.devices_of(sender), &event)
}

/// A `ReportTap` call.
#[derive(Debug)]
pub struct ReceiptJob {
    /// The reporter (the tap's recipient).
    pub caller: Caller,
    /// The tap.
    pub tap_id: String,
    /// Delivered, felt or seen.
    pub kind: pb::ReceiptKind,
    /// When.
    pub now: DateTime<Utc>,
}

/// Records receipts inside the group commit's transaction: the reported ones (`jobs`, each
/// checked: the tap must be the caller's couple's and sent by the partner) and DELIVERED for
/// each partner tap an ack covered (`delivered`, with the acking device's account). Returns
/// one answer per job and the events for the senders' devices.
pub async fn apply<S: Store>(
    store: &mut S,
    members: &Members,
    jobs: &[ReceiptJob],
    delivered: &[(AckedTap, String)],
    now: DateTime<Utc>,
) -> Result<(Vec<Result<()>>, Vec<(String, pb::Event)>)> {
    if jobs.is_empty() && delivered.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let ids: Vec<String> = jobs.iter().map(|j| j.tap_id.clone()).collect();
    let taps: std::collections::HashMap<String, crate::store::TapRow> = store
        .taps_by_id(&ids)
        .await?
        .into_iter()
        .map(|t| (t.id.clone(), t))
        .collect();
    let mut answers = Vec::with_capacity(jobs.len());
    // (receipt, sender account, announce?)
    let mut wanted: Vec<(ReceiptRow, String, bool)> = Vec::new();
    for job in jobs {
        let me = members.accounts.get(&job.caller.account_id);
        let couple = members.couple_of(&job.caller.account_id);
        let tap = taps.get(&job.tap_id);
        match (me, couple, tap) {
            (Some(_), None, _) | (None, _, _) => {
                answers.push(Err(Error::Refused(Refusal::NotPaired)));
            }
            (Some(me), Some(couple), Some(tap)) if tap.couple_id == couple => {
                if tap.sender_account_id == me.id {
                    answers.push(Err(Error::Refused(Refusal::OwnTap)));
                    continue;
                }
                let announce = job.kind == pb::ReceiptKind::Delivered || me.receipts_enabled;
                wanted.push((
                    ReceiptRow {
                        tap_id: tap.id.clone(),
                        account_id: me.id.clone(),
                        kind: job.kind as i64,
                        created_at_us: to_us(job.now),
                    },
                    tap.sender_account_id.clone(),
                    announce,
                ));
                answers.push(Ok(()));
            }
            _ => answers.push(Err(Error::NotFound("tap"))),
        }
    }
    for (acked, account) in delivered {
        // Only while both are still a couple: the sender's devices are the ones locked.
        let same_couple = members.couple_of(account).is_some()
            && members.couple_of(account) == members.couple_of(&acked.sender_account_id);
        if same_couple && acked.sender_account_id != *account {
            wanted.push((
                ReceiptRow {
                    tap_id: acked.tap_id.clone(),
                    account_id: account.clone(),
                    kind: pb::ReceiptKind::Delivered as i64,
                    created_at_us: to_us(now),
                },
                acked.sender_account_id.clone(),
                true,
            ));
        }
    }
    // One row per (tap, account, kind), however many devices acked or reported it.
    let mut seen = std::collections::HashSet::new();
    wanted.retain(|(r, _, _)| seen.insert((r.tap_id.clone(), r.account_id.clone(), r.kind)));
    let rows: Vec<ReceiptRow> = wanted.iter().map(|(r, _, _)| r.clone()).collect();
    let new: std::collections::HashSet<ReceiptRow> =
        store.insert_receipts(&rows).await?.into_iter().collect();
    // DELIVERED for many taps to one sender goes as one event (per 200 taps); felt and seen
    // one tap at a time.
    let mut items = Vec::new();
    let mut delivered_to: std::collections::BTreeMap<&str, Vec<&ReceiptRow>> = Default::default();
    for (r, sender, announce) in &wanted {
        if !announce || !new.contains(r) {
            continue;
        }
        if r.kind == pb::ReceiptKind::Delivered as i64 {
            delivered_to.entry(sender.as_str()).or_default().push(r);
        } else {
            items.extend(receipt_events(members, sender, &[r]));
        }
    }
    for (sender, rows) in delivered_to {
        for chunk in rows.chunks(TAPS_PER_RECEIPT) {
            items.extend(receipt_events(members, sender, chunk));
        }
    }
    Ok((answers, items))
}
