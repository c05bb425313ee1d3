//! The reads of the rituals: what a phone or watch asks for when it opens the weekly recap,
//! the moments or the streak, on a server whose couples have a week of taps, answered mood
//! check-ins and kept notes, and (with `--preload-taps`) a long history of taps beside them.
//!
//! Each couple: partner A sends `--taps` taps with a note, partner B keeps `--keep` of them as
//! moments (timed: KeepMoment), both answer two mood check-ins; then `--calls` reads of each
//! kind are made, `--concurrency` at a time, spread over the couples' phones: GetRecap,
//! ListMoments (first page) and GetStreak (the glance's streak with its last connected date).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tapline_proto::v1 as pb;
use tapline_proto::v1::moment_service_client::MomentServiceClient;
use tapline_proto::v1::streak_service_client::StreakServiceClient;
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::fleet::{Authed, DeviceClients, Fleet, PER_COUPLE, authed, connect};
use crate::stats::{Latencies, Summary};
use crate::target::Target;

/// What to build and how hard to read.
#[derive(Debug, Clone, clap::Args)]
pub struct ReadOpts {
    /// Couples.
    #[arg(long = "read-couples", default_value_t = 50)]
    pub couples: usize,
    /// Taps with a note each couple's partner A sends.
    #[arg(long = "read-taps", default_value_t = 200)]
    pub taps: usize,
    /// Of those, how many partner B keeps as moments.
    #[arg(long = "read-keep", default_value_t = 60)]
    pub keep: usize,
    /// Reads of each kind.
    #[arg(long = "read-calls", default_value_t = 2000)]
    pub calls: usize,
    /// Reads in flight at once.
    #[arg(long = "read-concurrency", default_value_t = 16)]
    pub concurrency: usize,
}

/// What the reads measured.
#[derive(Debug, Clone)]
pub struct ReadReport {
    /// Against what.
    pub target: Target,
    /// Taps stored in all (the couples' and any preloaded history).
    pub stored_taps: u64,
    /// KeepMoment, during the set-up.
    pub keep: Summary,
    /// GetRecap.
    pub recap: Summary,
    /// ListMoments, first page.
    pub moments: Summary,
    /// GetStreak.
    pub streak: Summary,
    /// Reads per second of each kind, in the order above (keep excluded).
    pub rates: [f64; 3],
    /// Server CPU per recap, in milliseconds (CPU during the recap reads / calls).
    pub cpu_ms_per_recap: f64,
    /// Calls that failed.
    pub failed: u64,
}

fn client_of(channel: &Channel, token: &str) -> Result<Authed, String> {
    authed(channel, token)
}

/// Builds the couples' week and measures the reads.
pub async fn run(
    server: &crate::target::Server,
    fleet: &Fleet,
    opts: &ReadOpts,
    preloaded: u64,
) -> Result<ReadReport, String> {
    let channel = connect(server.addr, None).await?;
    let couples = fleet.couples();
    let mut keep = Latencies::default();
    let mut failed = 0u64;
    // The week: A's notes, B keeps some, both answer two mood check-ins.
    for c in 0..couples {
        let a = DeviceClients::new(&channel, &fleet.devices[PER_COUPLE * c])?;
        let b = DeviceClients::new(&channel, &fleet.devices[PER_COUPLE * c + 2])?;
        let b_moments = MomentServiceClient::new(client_of(
            &channel,
            &fleet.devices[PER_COUPLE * c + 2].token,
        )?);
        let mut ids = Vec::with_capacity(opts.taps);
        for i in 0..opts.taps {
            let tap = a
                .taps
                .clone()
                .send_tap(pb::SendTapRequest {
                    client_tap_id: uuid::Uuid::now_v7().to_string(),
                    kind: pb::TapKind::Tap as i32,
                    rhythm: None,
                    note: format!("thinking of you ({i})"),
                })
                .await
                .map_err(|s| format!("send tap: {s}"))?;
            ids.push(tap.into_inner().tap.map(|t| t.tap_id).unwrap_or_default());
        }
        for id in ids.iter().take(opts.keep) {
            let started = Instant::now();
            let kept = b_moments
                .clone()
                .keep_moment(pb::KeepMomentRequest {
                    source: Some(pb::keep_moment_request::Source::TapId(id.clone())),
                })
                .await;
            keep.record(started.elapsed().as_nanos() as u64);
            if kept.is_err() {
                failed += 1;
            }
        }
        for _ in 0..2 {
            let c = a
                .checkins
                .clone()
                .ask_partner(pb::AskPartnerRequest {
                    client_checkin_id: uuid::Uuid::now_v7().to_string(),
                    category: 0,
                    prompt_id: "mood-01".into(),
                })
                .await
                .map_err(|s| format!("ask: {s}"))?
                .into_inner()
                .checkin
                .map(|c| c.checkin_id)
                .unwrap_or_default();
            for (d, v) in [(&a, 4), (&b, 2)] {
                d.checkins
                    .clone()
                    .answer_checkin(pb::AnswerCheckinRequest {
                        checkin_id: c.clone(),
                        answer: Some(pb::Answer {
                            value: Some(pb::answer::Value::Scale(v)),
                        }),
                    })
                    .await
                    .map_err(|s| format!("answer: {s}"))?;
            }
        }
    }

    let phones: Vec<Authed> = (0..couples * 2)
        .map(|i| client_of(&channel, &fleet.devices[2 * i].token))
        .collect::<Result<_, _>>()?;
    let cpu_before = server.cpu_time();
    let (recap, recap_rate, f1) = timed(&phones, opts, |ch| async move {
        MomentServiceClient::new(ch)
            .get_recap(pb::GetRecapRequest::default())
            .await
            .map(|r| r.into_inner().recap.is_some_and(|r| r.days.len() == 7))
    })
    .await;
    let recap_cpu = server.cpu_time().saturating_sub(cpu_before);
    let (moments, moments_rate, f2) = timed(&phones, opts, |ch| async move {
        MomentServiceClient::new(ch)
            .list_moments(pb::ListMomentsRequest::default())
            .await
            .map(|r| !r.into_inner().moments.is_empty())
    })
    .await;
    let (streak, streak_rate, f3) = timed(&phones, opts, |ch| async move {
        StreakServiceClient::new(ch)
            .get_streak(pb::GetStreakRequest {})
            .await
            .map(|r| r.into_inner().streak.is_some())
    })
    .await;
    Ok(ReadReport {
        target: server.target,
        stored_taps: preloaded + (couples * opts.taps) as u64,
        keep: keep.summary(),
        recap,
        moments,
        streak,
        rates: [recap_rate, moments_rate, streak_rate],
        cpu_ms_per_recap: recap_cpu.as_secs_f64() * 1e3 / opts.calls.max(1) as f64,
        failed: failed + f1 + f2 + f3,
    })
}

/// `opts.calls` calls of `call`, `opts.concurrency` at a time, round robin over `phones`; a
/// call that fails, or answers something unexpected (`Ok(false)`), counts as failed.
async fn timed<F, Fut>(phones: &[Authed], opts: &ReadOpts, call: F) -> (Summary, f64, u64)
where
    F: Fn(Authed) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = Result<bool, tonic::Status>> + Send,
{
    let latencies = Arc::new(Mutex::new(Latencies::default()));
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..opts.calls {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let ch = phones[i % phones.len()].clone();
        let call = call.clone();
        let latencies = latencies.clone();
        let failed = failed.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let t = Instant::now();
            let ok = tokio::time::timeout(Duration::from_secs(30), call(ch)).await;
            let ns = t.elapsed().as_nanos() as u64;
            latencies.lock().await.record(ns);
            if !matches!(ok, Ok(Ok(true))) {
                failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let rate = opts.calls as f64 / started.elapsed().as_secs_f64();
    let summary = latencies.lock().await.summary();
    (
        summary,
        rate,
        failed.load(std::sync::atomic::Ordering::Relaxed),
    )
}

/// Prints the read figures.
pub fn print(r: &ReadReport) {
    println!(
        "rituals {} ({} taps stored) — KeepMoment {}; GetRecap {} ({:.0}/s, server CPU {:.2} ms each); ListMoments {} ({:.0}/s); GetStreak {} ({:.0}/s); {} failed",
        r.target,
        r.stored_taps,
        r.keep,
        r.recap,
        r.rates[0],
        r.cpu_ms_per_recap,
        r.moments,
        r.rates[1],
        r.streak,
        r.rates[2],
        r.failed
    );
}
