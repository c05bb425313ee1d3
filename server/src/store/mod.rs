//! The group commit's statements, one store per database: [`sqlite::SqliteStore`] runs them on
//! a rusqlite handle owned by the writer thread, [`postgres::PgStore`] on one sqlx
//! `PgConnection` with typed arrays (`UNNEST`, `= ANY`), one round trip per statement whatever
//! the batch size. Each file speaks one dialect; the batch logic above ([`crate::taps`],
//! [`crate::receipts`], [`crate::streaks`], …) is written once against [`Store`].
//!
//! Every method takes and returns plain rows; rules live with the callers. Methods that take a
//! set take it as slices (one row per element) and return rows in no particular order unless
//! they say so.

pub mod postgres;
pub mod sqlite;

use chrono::NaiveDate;
use chrono_tz::Tz;

use crate::domain::quiet::QuietHours;
use crate::domain::streaks::{DayRecord, StreakState};
use crate::error::Result;

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

/// A tap as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TapRow {
    /// Server id.
    pub id: String,
    /// The couple it was sent in.
    pub couple_id: String,
    /// Sender account.
    pub sender_account_id: String,
    /// Sender device.
    pub sender_device_id: String,
    /// The client's idempotency key.
    pub client_tap_id: String,
    /// `pb::TapKind` value.
    pub kind: i64,
    /// Encoded `pb::Rhythm`, if any.
    pub rhythm: Option<Vec<u8>>,
    /// Note text.
    pub note: String,
    /// When it was sent (µs).
    pub created_at_us: i64,
}

/// One event stored in one device's inbox.
#[derive(Debug, Clone)]
pub struct InboxRow {
    /// The recipient device.
    pub device_id: String,
    /// Its seq on that device.
    pub seq: i64,
    /// The event id (the same for every recipient).
    pub event_id: String,
    /// The encoded `pb::Event` (its `seq` field is filled in when read back).
    pub payload: Vec<u8>,
    /// When it was created (µs).
    pub created_at_us: i64,
    /// For a tap delivered to the partner: the tap, so an ack past it records DELIVERED.
    pub tap_id: Option<String>,
}

/// How long a new push job for a device with a live stream waits before it is due: long
/// enough for the stream's ack to cancel it (no push to a device in use). A device without
/// one is due at once.
pub const PUSH_GRACE_US: i64 = 2_000_000;

/// A pending wake-up for one device, collapsed over a batch's rows for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushWake {
    /// The device.
    pub device_id: String,
    /// The newest event it is about.
    pub seq: i64,
    /// 1 when one of the events is user-visible (a partner's tap), else 0.
    pub urgent: i64,
    /// When it is due (µs).
    pub due_at_us: i64,
    /// When it was made (µs).
    pub created_at_us: i64,
}

/// The wake-ups a batch of inbox rows asks for: one per device (the store writes them only
/// for devices with a push target).
pub fn push_wakes(rows: &[InboxRow]) -> Vec<PushWake> {
    let mut out: Vec<PushWake> = Vec::new();
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for r in rows {
        let urgent = i64::from(r.tap_id.is_some());
        match at.get(r.device_id.as_str()) {
            Some(&i) => {
                let w = &mut out[i];
                w.seq = w.seq.max(r.seq);
                w.urgent = w.urgent.max(urgent);
            }
            None => {
                at.insert(&r.device_id, out.len());
                out.push(PushWake {
                    device_id: r.device_id.clone(),
                    seq: r.seq,
                    urgent,
                    due_at_us: r.created_at_us + PUSH_GRACE_US,
                    created_at_us: r.created_at_us,
                });
            }
        }
    }
    // In device order: every writer of push_jobs rows takes them in one order (no lock cycle
    // with the push worker's outcomes on PostgreSQL).
    out.sort_by(|a, b| a.device_id.cmp(&b.device_id));
    out
}

/// A device's delivery cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorRow {
    /// The device.
    pub device_id: String,
    /// Its account.
    pub account_id: String,
    /// Acked through here.
    pub acked_seq: i64,
    /// The newest seq allocated.
    pub next_seq: i64,
}

/// A partner tap that an ack covered: the tap, who sent it, and the acking device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckedTap {
    /// The device whose ack covered it.
    pub device_id: String,
    /// The tap.
    pub tap_id: String,
    /// Who sent it.
    pub sender_account_id: String,
}

/// A felt/seen/delivered receipt.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReceiptRow {
    /// The tap.
    pub tap_id: String,
    /// The recipient account reporting it.
    pub account_id: String,
    /// `pb::ReceiptKind` value.
    pub kind: i64,
    /// When (µs).
    pub created_at_us: i64,
}

/// A couple's members: side A is `couples.account_a`.
#[derive(Debug, Clone)]
pub struct CoupleRow {
    /// The couple.
    pub id: String,
    /// Side A's account.
    pub account_a: String,
    /// Side B's account.
    pub account_b: String,
    /// When they paired (µs).
    pub created_at_us: i64,
}

/// A scheduled streak pause.
#[derive(Debug, Clone)]
pub struct PauseRow {
    /// Pause id.
    pub id: String,
    /// The couple.
    pub couple_id: String,
    /// First paused date.
    pub from: NaiveDate,
    /// Last paused date.
    pub to: NaiveDate,
    /// Who scheduled it.
    pub by_account: String,
}

/// A space ("I need a moment") as the streak sees it: who asked, from when to when (its end,
/// or its `until` while in force), µs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceSpan {
    /// The couple.
    pub couple_id: String,
    /// Who asked.
    pub account_id: String,
    /// When it started.
    pub from_us: i64,
    /// When it ended, or ends at the latest.
    pub to_us: i64,
}

/// A space in force: taps to `account_id` are held for `space_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceInForce {
    /// Who asked (whose incoming taps are held).
    pub account_id: String,
    /// The space.
    pub space_id: String,
    /// When it ends at the latest, µs.
    pub until_us: i64,
}

/// Together time in force: taps between the members of `couple_id` are held for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TogetherInForce {
    /// The couple.
    pub couple_id: String,
    /// The together time.
    pub together_id: String,
    /// When it ends at the latest, µs.
    pub until_us: i64,
}

/// Confirmed together time, for the streak: from its confirmation to its end (or `until`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TogetherSpan {
    /// The couple.
    pub couple_id: String,
    /// When it was confirmed.
    pub from_us: i64,
    /// When it ended, or ends at the latest.
    pub to_us: i64,
}

/// Everything the streak of some couples needs, as stored.
#[derive(Debug, Default)]
pub struct StreakRows {
    /// The couples.
    pub couples: Vec<CoupleRow>,
    /// Zone history segments `(account, from µs, zone)`, in order per account.
    pub zones: Vec<(String, i64, Tz)>,
    /// Stored states (a couple without one has never had a streak action).
    pub states: Vec<(String, StreakState)>,
    /// Active (not cancelled) pauses.
    pub pauses: Vec<PauseRow>,
    /// Each couple's unsettled dates and its newest settled one.
    pub open_days: Vec<(String, DayRecord)>,
}

/// A check-in as stored.
#[derive(Debug, Clone)]
pub struct CheckinRow {
    /// Its id.
    pub id: String,
    /// Its couple.
    pub couple_id: String,
    /// Catalogue prompt id.
    pub prompt_id: String,
    /// The routine that opened it.
    pub routine_id: Option<String>,
    /// Who asked.
    pub opened_by: Option<String>,
    /// Opened (µs).
    pub opened_at_us: i64,
    /// Expires (µs).
    pub expires_at_us: i64,
    /// `open`, `revealed` or `expired`.
    pub phase: String,
    /// Side A's encoded `pb::Answer`.
    pub answer_a: Option<Vec<u8>>,
    /// Side B's encoded `pb::Answer`.
    pub answer_b: Option<Vec<u8>>,
}

/// The columns of [`AccountRow`], in the order both stores read them.
pub const ACCOUNT_COLUMNS: &str = "id, display_name, time_zone, quiet_start_min, \
     quiet_end_min, receipts_enabled, couple_id, created_at_us";

/// The columns of [`TapRow`], in the order both stores read them.
pub const TAP_COLUMNS: &str = "id, couple_id, sender_account_id, sender_device_id, \
     client_tap_id, kind, rhythm, note, created_at_us";

/// The columns of [`CheckinRow`], in the order both stores read them.
pub const CHECKIN_COLUMNS: &str = "id, couple_id, prompt_id, routine_id, opened_by, \
     opened_at_us, expires_at_us, phase, answer_a, answer_b";

/// Quiet hours from their two stored columns (both set, or none).
pub fn quiet_hours(start: Option<i64>, end: Option<i64>) -> Option<QuietHours> {
    start.zip(end).map(|(s, e)| QuietHours {
        start_min: s as u32,
        end_min: e as u32,
    })
}

/// An account row from its stored fields (in [`ACCOUNT_COLUMNS`] order).
#[allow(clippy::too_many_arguments)]
pub fn account_row(
    id: String,
    display_name: String,
    time_zone: String,
    quiet_start: Option<i64>,
    quiet_end: Option<i64>,
    receipts_enabled: i64,
    couple_id: Option<String>,
    created_at_us: i64,
) -> Result<AccountRow> {
    Ok(AccountRow {
        zone: parse_zone(&time_zone)?,
        quiet: quiet_hours(quiet_start, quiet_end),
        receipts_enabled: receipts_enabled != 0,
        id,
        display_name,
        couple_id,
        created_at_us,
    })
}

/// A stored zone name.
pub fn parse_zone(zone: &str) -> Result<Tz> {
    zone.parse()
        .map_err(|_| crate::Error::Corrupt(format!("time zone {zone:?}")))
}

/// A stored local date (`YYYY-MM-DD`).
pub fn parse_day(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| crate::Error::Corrupt(format!("date {s:?}")))
}

/// A local date as stored.
pub fn day_str(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A stored day row.
pub fn day_record(day: &str, actions_a: i64, actions_b: i64, status: &str) -> Result<DayRecord> {
    Ok(DayRecord {
        date: parse_day(day)?,
        actions_a: actions_a as u32,
        actions_b: actions_b as u32,
        status: status
            .parse()
            .map_err(|_| crate::Error::Corrupt(format!("day status {status:?}")))?,
    })
}

/// A stored streak state row.
pub fn streak_state(
    first_day: &str,
    settled_through: &str,
    current: i64,
    longest: i64,
    freezes: i64,
    calm: i64,
) -> Result<StreakState> {
    Ok(StreakState {
        first_day: parse_day(first_day)?,
        settled_through: parse_day(settled_through)?,
        current: current as u32,
        longest: longest as u32,
        freezes: freezes as u32,
        calm: calm != 0,
    })
}

/// The group commit's statements. One implementation per database; the writer thread owns
/// the only one, so nothing else writes (see [`crate::couples`] for the lock order every
/// transaction follows on PostgreSQL).
#[allow(async_fn_in_trait)]
pub trait Store {
    /// Starts the batch's transaction (SQLite: `BEGIN IMMEDIATE`).
    async fn begin(&mut self) -> Result<()>;
    /// Commits it.
    async fn commit(&mut self) -> Result<()>;
    /// Rolls back whatever is open (after a failure; never fails itself).
    async fn rollback(&mut self);

    /// The couple (if any) of each of `accounts` that exists.
    async fn couples_of(&mut self, accounts: &[String]) -> Result<Vec<(String, Option<String>)>>;
    /// Reads couple rows, locking them in id order on PostgreSQL (SQLite transactions are
    /// serial already).
    async fn lock_couples(&mut self, couples: &[String]) -> Result<Vec<CoupleRow>>;
    /// The members of `couples` (both sides, each once).
    async fn members(&mut self, couples: &[String]) -> Result<Vec<AccountRow>>;
    /// The accounts `ids` (for callers without a couple).
    async fn accounts(&mut self, ids: &[String]) -> Result<Vec<AccountRow>>;
    /// Every active device of `accounts` as `(device, account)`, locked in id order on
    /// PostgreSQL.
    async fn lock_devices(&mut self, accounts: &[String]) -> Result<Vec<(String, String)>>;

    /// Taps stored under `(sender device, client id)` keys.
    async fn taps_by_client_id(&mut self, keys: &[(String, String)]) -> Result<Vec<TapRow>>;
    /// Taps by id.
    async fn taps_by_id(&mut self, ids: &[String]) -> Result<Vec<TapRow>>;
    /// Stores new taps (a key stored already is skipped); the ids of those stored.
    async fn insert_taps(&mut self, taps: &[TapRow]) -> Result<Vec<String>>;
    /// Stores receipts; returns those that were new.
    async fn insert_receipts(&mut self, receipts: &[ReceiptRow]) -> Result<Vec<ReceiptRow>>;

    /// Moves each device's `next_seq` on by its count; returns `(device, new next_seq)`.
    async fn bump_seqs(&mut self, counts: &[(String, i64)]) -> Result<Vec<(String, i64)>>;
    /// Stores numbered events.
    async fn insert_events(&mut self, rows: &[InboxRow]) -> Result<()>;
    /// PostgreSQL: queues the cross-instance doorbell payloads, sent at commit.
    async fn notify(&mut self, payloads: &[String]) -> Result<()>;
    /// Cursors of active devices among `devices`.
    async fn cursors(&mut self, devices: &[String]) -> Result<Vec<CursorRow>>;
    /// Partner taps in each `(device, after, through]` inbox range.
    async fn acked_taps(&mut self, ranges: &[(String, i64, i64)]) -> Result<Vec<AckedTap>>;
    /// Sets each device's `acked_seq`, drops the wake-ups it covers, and deletes the inbox
    /// rows in each `(device, after, through]` range of `forget` (the rest are left to
    /// [`crate::retention`]).
    async fn set_acked(
        &mut self,
        acks: &[(String, i64)],
        forget: &[(String, i64, i64)],
    ) -> Result<()>;

    /// The streak rows of `couples`.
    async fn load_streaks(&mut self, couples: &[String]) -> Result<StreakRows>;
    /// One couple's stored days in `(after, through]`, in order.
    async fn days(
        &mut self,
        couple: &str,
        after: NaiveDate,
        through: NaiveDate,
    ) -> Result<Vec<DayRecord>>;
    /// One couple's latest stored connected date, if any.
    async fn last_connected(&mut self, couple: &str) -> Result<Option<NaiveDate>>;
    /// Stores days (insert or replace).
    async fn save_days(&mut self, days: &[(String, DayRecord)]) -> Result<()>;
    /// Stores states (insert or replace).
    async fn save_states(&mut self, states: &[(String, StreakState)]) -> Result<()>;
    /// Stores a new pause.
    async fn insert_pause(&mut self, pause: &PauseRow, created_at_us: i64) -> Result<()>;
    /// Cancels a pause.
    async fn cancel_pause(&mut self, id: &str) -> Result<()>;

    /// The spaces of each couple that end at or after its bound (µs), oldest first.
    async fn space_spans(&mut self, couples: &[(String, i64)]) -> Result<Vec<SpaceSpan>>;
    /// The spaces in force of these accounts (at most one each).
    async fn spaces_in_force(&mut self, accounts: &[String]) -> Result<Vec<SpaceInForce>>;
    /// Keeps taps `(tap id, space id, µs)` until their space ends.
    async fn hold_taps(&mut self, rows: &[(String, String, i64)]) -> Result<()>;
    /// The confirmed together times of each couple that end at or after its bound (µs).
    async fn together_spans(&mut self, couples: &[(String, i64)]) -> Result<Vec<TogetherSpan>>;
    /// The together times in force of these couples (at most one each).
    async fn together_in_force(&mut self, couples: &[String]) -> Result<Vec<TogetherInForce>>;
    /// Keeps taps `(tap id, together id, µs)` until their together time ends.
    async fn hold_together_taps(&mut self, rows: &[(String, String, i64)]) -> Result<()>;

    /// A check-in of `couple`.
    async fn checkin(&mut self, id: &str, couple: &str) -> Result<Option<CheckinRow>>;
    /// Stores a check-in's phase and answers.
    async fn save_checkin(&mut self, c: &CheckinRow) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(device: &str, seq: i64, tap: bool) -> InboxRow {
        InboxRow {
            device_id: device.into(),
            seq,
            event_id: format!("e{seq}"),
            payload: vec![],
            created_at_us: 1_000_000 + seq,
            tap_id: tap.then(|| format!("t{seq}")),
        }
    }

    #[test]
    fn a_burst_is_one_wake_per_device_about_its_newest_event() {
        let wakes = push_wakes(&[
            row("w", 5, false),
            row("p", 9, false),
            row("w", 6, true),
            row("w", 7, false),
        ]);
        assert_eq!(wakes.len(), 2);
        // In device order.
        assert_eq!(
            (wakes[0].device_id.as_str(), wakes[0].seq, wakes[0].urgent),
            ("p", 9, 0)
        );
        assert_eq!(
            (wakes[1].device_id.as_str(), wakes[1].seq, wakes[1].urgent),
            ("w", 7, 1)
        );
        assert_eq!(
            wakes[1].due_at_us,
            1_000_005 + PUSH_GRACE_US,
            "due after the first's grace"
        );
    }
}
