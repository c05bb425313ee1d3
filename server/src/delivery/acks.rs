//! Acks: a device acknowledges everything up to a seq after it stored it; the server moves its
//! cursor (the rows are deleted later by [`crate::retention`], in small batches, so an ack of
//! a long backlog is still a short transaction) and records DELIVERED for the partner taps
//! among them ([`crate::receipts`]).

use std::collections::HashMap;

use crate::error::{Error, Result};
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
/// newest event is refused. Each device that moved costs one update
/// whatever the number of its acks. Returns one answer per job and, for DELIVERED receipts,
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
    let sets: Vec<(String, i64)> = ranges.into_iter().map(|(d, _, n)| (d, n)).collect();
    store.set_acked(&sets).await?;
    let delivered = covered
        .into_iter()
        .filter_map(|t| {
            let account = cursors.get(&t.device_id)?.account_id.clone();
            Some((t, account))
        })
        .collect();
    Ok((answers, delivered))
}
