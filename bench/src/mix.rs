//! The traffic mix: what the devices do beside sending taps.
//!
//! - `plain`: every stream acks its newest seq at most once a second; nothing else.
//! - `realistic` (the default), what the mobile core does: every stream acks as soon as it has
//!   stored what was ready (it drains what the stream has, then acks the newest seq); the
//!   recipient partner's phone reports FELT for half of the partner's taps and SEEN for 30 %
//!   ([`attention`]); and one check-in is answered for every [`TAPS_PER_ANSWER`] taps sent
//!   ([`Checkins`]). DELIVERED receipts follow the acks (`--delivered ack`, the server derives
//!   them), or every recipient device also reports each partner tap as DELIVERED
//!   (`--delivered report`, what the old core did).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tapline_proto::v1 as pb;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tonic::Status;

use crate::fleet::{DeviceClients, PER_COUPLE, patient};

/// One check-in answer for every this many taps sent.
pub const TAPS_PER_ANSWER: u64 = 50;
/// Check-ins opened in one go when a couple runs short during a run.
const TOP_UP: usize = 8;

/// What the devices do beside sending taps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum Mix {
    /// Taps, and acks at most once per `--ack-every-ms`.
    Plain,
    /// The mobile core's traffic: acks as soon as stored, FELT/SEEN reports, check-in answers.
    #[default]
    Realistic,
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mix::Plain => "plain",
            Mix::Realistic => "realistic",
        })
    }
}

/// Where DELIVERED receipts come from in the realistic mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum Delivered {
    /// The server derives them from the recipient devices' acks.
    #[default]
    Ack,
    /// Every recipient device also calls `ReportTap(DELIVERED)` for every partner tap.
    Report,
}

impl fmt::Display for Delivered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Delivered::Ack => "ack",
            Delivered::Report => "report",
        })
    }
}

/// What the recipient partner's phone reports for tap `idx`: FELT for 50 % of the taps, SEEN
/// for 30 %, nothing for the rest, by a hash of the index (so every run reports the same taps).
pub fn attention(idx: u64) -> Option<pb::ReceiptKind> {
    // splitmix64's finaliser: consecutive indexes land in unrelated buckets.
    let mut z = idx.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    match (z ^ (z >> 31)) % 10 {
        0..5 => Some(pb::ReceiptKind::Felt),
        5..8 => Some(pb::ReceiptKind::Seen),
        _ => None,
    }
}

/// The `ReportTap` calls `device` makes for partner tap `idx` under `mix`: DELIVERED from every
/// recipient device with `--delivered report`, then the phone's FELT or SEEN.
pub fn reports(
    mix: Mix,
    delivered: Delivered,
    device: usize,
    idx: u64,
) -> impl Iterator<Item = pb::ReceiptKind> {
    let realistic = mix == Mix::Realistic;
    let phone = device.is_multiple_of(2);
    let delivered =
        (realistic && delivered == Delivered::Report).then_some(pb::ReceiptKind::Delivered);
    let felt = (realistic && phone).then(|| attention(idx)).flatten();
    [delivered, felt].into_iter().flatten()
}

/// An answer valid for `prompt`: the middle of a scale, the first choice or emoji, or a short
/// text.
pub fn answer_for(prompt: Option<&pb::Prompt>) -> pb::Answer {
    use pb::answer::Value;
    use pb::prompt::AnswerType;
    let value = match prompt.and_then(|p| p.answer_type.as_ref()) {
        Some(AnswerType::Scale(_)) => Value::Scale(3),
        Some(AnswerType::Choice(_)) => Value::Choice(0),
        Some(AnswerType::Emoji(e)) => Value::Emoji(e.options.first().cloned().unwrap_or_default()),
        Some(AnswerType::TextAnswer(_)) | None => Value::Text("all good".into()),
    };
    pb::Answer { value: Some(value) }
}

/// Results of one kind of call: how many were answered OK, and how many failed, by code.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Answered OK.
    pub ok: u64,
    /// Failed calls by gRPC code (a call with no answer in time is `DeadlineExceeded`).
    pub failed: BTreeMap<String, u64>,
    /// The last failure's message.
    pub last_error: Option<String>,
}

impl Tally {
    /// Counts one call's result.
    pub fn record<T>(&mut self, result: &Result<T, Status>) {
        match result {
            Ok(_) => self.ok += 1,
            Err(s) => {
                *self.failed.entry(format!("{:?}", s.code())).or_insert(0) += 1;
                self.last_error = Some(format!("{:?}: {}", s.code(), s.message()));
            }
        }
    }

    /// Failed calls.
    pub fn failures(&self) -> u64 {
        self.failed.values().sum()
    }

    /// Adds another tally's counts.
    pub fn merge(&mut self, other: &Tally) {
        self.ok += other.ok;
        for (code, n) in &other.failed {
            *self.failed.entry(code.clone()).or_insert(0) += n;
        }
        if other.last_error.is_some() {
            self.last_error.clone_from(&other.last_error);
        }
    }
}

/// A check-in opened for a couple, with the answer both partners give.
#[derive(Debug, Clone)]
struct Open {
    id: String,
    answer: pb::Answer,
}

/// The check-ins of a run: opened for every couple at set-up (`CheckinService.AskPartner`), and
/// answered during the load, one per [`TAPS_PER_ANSWER`] taps sent. Answer `j` goes to couple
/// `j % couples`; that couple's `k`-th answer is partner `k % 2`'s (from their phone) to its
/// check-in `k / 2`, so each partner answers each check-in once. A couple that runs out of
/// check-ins opens more during the run (counted apart).
pub struct Checkins {
    clients: Arc<Vec<DeviceClients>>,
    /// Per couple, its check-ins in the order they are answered.
    couples: Vec<tokio::sync::Mutex<Vec<Open>>>,
    opened_in_run: AtomicU64,
    answering: Mutex<JoinSet<Result<(), Status>>>,
}

/// What the check-ins of a run did.
#[derive(Debug, Default, Clone)]
pub struct CheckinReport {
    /// Opened at set-up.
    pub opened_at_setup: u64,
    /// Opened during the run because a couple ran out.
    pub opened_in_run: u64,
    /// `AnswerCheckin` calls (and the `AskPartner` calls made on the way).
    pub answers: Tally,
}

impl Checkins {
    /// Opens `per_couple` check-ins for every couple, `concurrency` couples at a time.
    pub async fn open(
        clients: Arc<Vec<DeviceClients>>,
        per_couple: usize,
        concurrency: usize,
    ) -> Result<Checkins, String> {
        let couples = clients.len() / PER_COUPLE;
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for c in 0..couples {
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| e.to_string())?;
            let clients = clients.clone();
            tasks.spawn(async move {
                let _permit = permit;
                (c, ask(&clients, c, 0, per_couple).await)
            });
        }
        let mut opened = vec![Vec::new(); couples];
        while let Some(done) = tasks.join_next().await {
            let (c, asked) = done.map_err(|e| format!("check-in task: {e}"))?;
            opened[c] = asked.map_err(|s| {
                format!("AskPartner for couple {c}: {:?}: {}", s.code(), s.message())
            })?;
        }
        Ok(Checkins {
            clients,
            couples: opened.into_iter().map(tokio::sync::Mutex::new).collect(),
            opened_in_run: AtomicU64::new(0),
            answering: Mutex::new(JoinSet::new()),
        })
    }

    /// Called for every tap sent, by index: every [`TAPS_PER_ANSWER`]th answers a check-in (in
    /// a task of its own).
    pub fn after_tap(self: &Arc<Self>, idx: u64) {
        if !(idx + 1).is_multiple_of(TAPS_PER_ANSWER) || self.couples.is_empty() {
            return;
        }
        let me = self.clone();
        self.answering
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .spawn(async move { me.answer(idx / TAPS_PER_ANSWER).await });
    }

    /// Answer `j` (see [`Checkins`]).
    async fn answer(&self, j: u64) -> Result<(), Status> {
        let n = self.couples.len() as u64;
        let (c, k) = ((j % n) as usize, j / n);
        let (nth, side) = ((k / 2) as usize, (k % 2) as usize);
        let open = {
            let mut list = self.couples[c].lock().await;
            if list.len() <= nth {
                let more = ask(&self.clients, c, list.len(), nth + TOP_UP - list.len()).await?;
                self.opened_in_run
                    .fetch_add(more.len() as u64, Ordering::Relaxed);
                list.extend(more);
            }
            list[nth].clone()
        };
        let mut client = self.clients[c * PER_COUPLE + 2 * side].checkins.clone();
        patient(client.answer_checkin(pb::AnswerCheckinRequest {
            checkin_id: open.id,
            answer: Some(open.answer),
        }))
        .await
        .map(drop)
    }

    /// Waits for every answer started and says how they went.
    pub async fn finish(&self, opened_at_setup: u64) -> CheckinReport {
        let mut tasks =
            std::mem::take(&mut *self.answering.lock().unwrap_or_else(|e| e.into_inner()));
        let mut answers = Tally::default();
        while let Some(done) = tasks.join_next().await {
            answers.record(&done.unwrap_or_else(|e| Err(Status::internal(e.to_string()))));
        }
        CheckinReport {
            opened_at_setup,
            opened_in_run: self.opened_in_run.load(Ordering::Relaxed),
            answers,
        }
    }
}

/// Opens `count` check-ins for couple `c` from the first partner's phone, the `from`th onwards
/// (each of the next category in turn, so the prompts vary).
async fn ask(
    clients: &[DeviceClients],
    c: usize,
    from: usize,
    count: usize,
) -> Result<Vec<Open>, Status> {
    let mut client = clients[c * PER_COUPLE].checkins.clone();
    let mut out = Vec::with_capacity(count);
    for n in from..from + count {
        let asked = patient(client.ask_partner(pb::AskPartnerRequest {
            client_checkin_id: uuid::Uuid::new_v4().to_string(),
            category: (1 + n % 10) as i32,
            prompt_id: String::new(),
        }))
        .await?;
        let checkin = asked.checkin.unwrap_or_default();
        out.push(Open {
            answer: answer_for(checkin.prompt.as_ref()),
            id: checkin.checkin_id,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_the_taps_are_felt_and_30_percent_seen() {
        let (mut felt, mut seen) = (0, 0);
        for idx in 0..100_000 {
            match attention(idx) {
                Some(pb::ReceiptKind::Felt) => felt += 1,
                Some(pb::ReceiptKind::Seen) => seen += 1,
                _ => {}
            }
        }
        assert!((49_000..51_000).contains(&felt), "{felt}");
        assert!((29_000..31_000).contains(&seen), "{seen}");
        assert_eq!(attention(42), attention(42));
    }

    #[test]
    fn only_the_realistic_mix_reports_and_only_the_phone_reports_attention() {
        let kinds = |mix, delivered, device| -> Vec<_> {
            (0..20)
                .flat_map(|idx| reports(mix, delivered, device, idx))
                .collect()
        };
        assert!(kinds(Mix::Plain, Delivered::Report, 0).is_empty());
        assert!(
            kinds(Mix::Realistic, Delivered::Ack, 1).is_empty(),
            "a watch"
        );
        let phone = kinds(Mix::Realistic, Delivered::Ack, 2);
        assert!(!phone.is_empty() && !phone.contains(&pb::ReceiptKind::Delivered));
        let watch = kinds(Mix::Realistic, Delivered::Report, 3);
        assert_eq!(watch, vec![pb::ReceiptKind::Delivered; 20]);
    }

    #[test]
    fn answers_fit_their_prompt() {
        use pb::answer::Value;
        use pb::prompt::AnswerType;
        let prompt = |t| pb::Prompt {
            answer_type: Some(t),
            ..Default::default()
        };
        let emoji = prompt(AnswerType::Emoji(pb::EmojiAnswerType {
            options: vec!["🙂".into(), "😴".into()],
        }));
        assert_eq!(
            answer_for(Some(&emoji)).value,
            Some(Value::Emoji("🙂".into()))
        );
        let scale = prompt(AnswerType::Scale(pb::ScaleAnswerType::default()));
        assert!(matches!(
            answer_for(Some(&scale)).value,
            Some(Value::Scale(1..=5))
        ));
        let choice = prompt(AnswerType::Choice(pb::ChoiceAnswerType::default()));
        assert_eq!(answer_for(Some(&choice)).value, Some(Value::Choice(0)));
    }

    #[test]
    fn tallies_count_by_code() {
        let mut t = Tally::default();
        t.record(&Ok::<(), Status>(()));
        t.record::<()>(&Err(Status::unavailable("down")));
        let mut all = Tally::default();
        all.merge(&t);
        all.merge(&t);
        assert_eq!((all.ok, all.failures()), (2, 2));
        assert_eq!(all.failed["Unavailable"], 2);
    }
}
