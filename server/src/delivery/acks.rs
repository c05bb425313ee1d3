//! Acks: a device acknowledges everything up to a seq after it stored it; the server moves its
//! cursor, forgets the rows the ack covered when they are few (the usual case: the core acks
//! after each batch it stores) and leaves a long backlog's rows to [`crate::retention`]'s
//! bounded batches (so an ack is always a short transaction), and records DELIVERED for the
//! partner taps among them ([`crate::receipts`]).

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::retention::BATCH;

/// Most inbox rows one round of acks deletes in all; the rest wait for retention.
pub const FORGET_BUDGET: i64 = 16 * BATCH;

/// The acked `(device, was, now)` ranges whose rows go in the ack's own transaction: each at
/// most [`BATCH`] rows, [`FORGET_BUDGET`] in all. Only the range just acked: rows an earlier,
/// longer ack left behind stay for retention.
pub fn forget_now(ranges: &[(String, i64, i64)]) -> Vec<(String, i64, i64)> {
    let mut budget = FORGET_BUDGET;
    let mut out = Vec::new();
    for (device, was, now) in ranges {
        let rows = now - was;
        if rows <= BATCH && rows <= budget {
            budget -= rows;
            out.push((device.clone(), *was, *now));
        }
    }
    out
}
use crate::store::{AckedTap, CursorRow, Store};

/// An `AckEvents` call.
#[derive(Debug)]
pub struct AckJob {
    /// The acking device.
    pub device_id: String,
    /// Everything up to here was stored by the device.
    pub seq: u64,
    /// When.
    pub now: chrono::DateTime<chrono::Utc>,
}

/// Applies a batch of acks inside the group commit's transaction, given the devices' cursors
/// as read after the lock prologue: acking an older seq again is a no-op, acking beyond the
/// newest event is refused. Each device that moved costs one update and at most one range
/// delete whatever the number of its acks. Returns one answer per job and, for DELIVERED receipts,
/// every partner tap the acks covered with the acking device's account.
pub async fn apply<S: Store>(
    store: &mut S,
    cursors: &HashMap<String, CursorRow>,
    acks: &[AckJob],
) -> Result<(Vec<Result<()>>, Vec<(AckedTap, String)>)> {
    if acks.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    // device → (acked before, acked after)
    let mut moved: HashMap<&str, (i64, i64)> = HashMap::new();
    let mut answers = Vec::with_capacity(acks.len());
    for ack in acks {
        let Some(c) = cursors.get(&ack.device_id) else {
            answers.push(Err(Error::Unauthenticated));
            continue;
        };
        let seq = i64::try_from(ack.seq).unwrap_or(i64::MAX);
        if seq > c.next_seq {
            answers.push(Err(Error::invalid(
                "seq",
                format!("must not be beyond the newest event ({})", c.next_seq),
            )));
            continue;
        }
        let entry = moved
            .entry(c.device_id.as_str())
            .or_insert((c.acked_seq, c.acked_seq));
        entry.1 = entry.1.max(seq);
        answers.push(Ok(()));
    }
    let mut ranges: Vec<(String, i64, i64)> = moved
        .iter()
        .filter(|(_, (was, now))| now > was)
        .map(|(d, (was, now))| ((*d).to_owned(), *was, *now))
        .collect();
    ranges.sort_unstable();
    let covered = store.acked_taps(&ranges).await?;
    let forget = forget_now(&ranges);
    let sets: Vec<(String, i64)> = ranges.into_iter().map(|(d, _, n)| (d, n)).collect();
    store.set_acked(&sets, &forget).await?;
    let delivered = covered
        .into_iter()
        .filter_map(|t| {
            let account = cursors.get(&t.device_id)?.account_id.clone();
            Some((t, account))
        })
        .collect();
    Ok((answers, delivered))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_acks_forget_their_rows_and_long_backlogs_wait_for_retention() {
        let r = |d: &str, was: i64, now: i64| (d.to_owned(), was, now);
        assert_eq!(
            forget_now(&[
                r("a", 0, 3),
                r("b", 10, 10 + BATCH + 1),
                r("c", 7, 7 + BATCH)
            ]),
            [r("a", 0, 3), r("c", 7, 7 + BATCH)]
        );
        let many: Vec<_> = (0..40).map(|i| r(&format!("d{i:02}"), 0, BATCH)).collect();
        let forgotten = forget_now(&many);
        assert_eq!(
            forgotten.len() as i64,
            FORGET_BUDGET / BATCH,
            "within the budget"
        );
        assert_eq!(forgotten[..], many[..forgotten.len()]);
    }
}
