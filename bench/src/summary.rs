//! The closing summary: every run's figures as Markdown tables (ready for BENCHMARKS.md), and
//! the targets marked hit or missed.

use crate::cold::ColdReport;
use crate::idle::IdleReport;
use crate::load::{LoadReport, Pace};
use crate::stats::ms;
use crate::target::Target;

/// Everything measured in one invocation.
#[derive(Default)]
pub struct Results {
    /// Load runs.
    pub loads: Vec<LoadReport>,
    /// Idle runs.
    pub idle: Vec<IdleReport>,
    /// Cold-start runs.
    pub cold: Vec<ColdReport>,
}

/// The throughput targets, fully delivered taps per second.
const SQLITE_FLOOR: f64 = 12_000.0;
const POSTGRES_FLOOR: f64 = 9_000.0;

impl Results {
    /// True when no load run broke exactly-once delivery.
    pub fn all_passed(&self) -> bool {
        self.loads.iter().all(|r| r.check.passed())
    }

    fn load(&self, target: Target, pace: impl Fn(Pace) -> bool) -> Option<&LoadReport> {
        self.loads
            .iter()
            .find(|r| r.target == target && pace(r.pace))
    }

    /// Prints the tables and the targets.
    pub fn print_markdown(&self) {
        println!("## Summary\n");
        if !self.loads.is_empty() {
            println!(
                "| pace | target | delivered taps/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | SendTap p50 / p99 ms | server µs CPU/tap | server / bench / machine (stolen) cores | peak RSS MiB | exactly once |"
            );
            println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
            let mut paces: Vec<Pace> = Vec::new();
            for r in &self.loads {
                if !paces.contains(&r.pace) {
                    paces.push(r.pace);
                }
            }
            for pace in paces {
                for r in self.loads.iter().filter(|r| r.pace == pace) {
                    let l = &r.latency;
                    println!(
                        "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} / {} | {:.0} | {:.2} / {:.2} / {:.2} ({:.2}) | {:.1} | {} |",
                        r.pace,
                        r.target,
                        r.delivered_per_sec,
                        ms(l.p50),
                        ms(l.p90),
                        ms(l.p99),
                        ms(l.p999),
                        ms(l.max),
                        ms(r.round_trip.p50),
                        ms(r.round_trip.p99),
                        r.cpu_us_per_tap,
                        r.server_cores,
                        r.bench_cores,
                        r.machine_cores,
                        r.steal_cores,
                        r.peak_rss_kib as f64 / 1024.0,
                        if r.check.passed() {
                            format!("OK ({} taps)", r.delivered)
                        } else {
                            "FAILED".to_owned()
                        }
                    );
                }
            }
            println!();
        }
        if !self.idle.is_empty() {
            println!(
                "| idle | devices | connections (streams each) | RSS before → after MiB | KiB per device | devices per GiB | idle CPU cores |"
            );
            println!("|---|---:|---:|---:|---:|---:|---:|");
            for r in &self.idle {
                println!(
                    "| {} | {} | {} ({}) | {:.1} → {:.1} | {:.1} | {:.0} | {:.3} |",
                    r.target,
                    r.devices,
                    r.connections,
                    r.streams_per_connection,
                    r.rss_before_kib as f64 / 1024.0,
                    r.rss_after_kib as f64 / 1024.0,
                    r.bytes_per_device() / 1024.0,
                    r.devices_per_gib(),
                    r.idle_cores
                );
            }
            println!();
        }
        if !self.cold.is_empty() {
            println!("| cold start | median ms | min ms | max ms | runs |");
            println!("|---|---:|---:|---:|---:|");
            for r in &self.cold {
                let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
                println!(
                    "| {} | {:.1} | {:.1} | {:.1} | {} |",
                    r.target,
                    ms(r.median()),
                    ms(r.first_rpc.first().copied().unwrap_or_default()),
                    ms(r.first_rpc.last().copied().unwrap_or_default()),
                    r.first_rpc.len()
                );
            }
            println!();
        }
        let targets = self.targets();
        if !targets.is_empty() {
            println!("| target | measured | |");
            println!("|---|---|---|");
            for (what, measured, hit) in targets {
                println!(
                    "| {what} | {measured} | {} |",
                    if hit { "hit" } else { "**miss**" }
                );
            }
            println!();
        }
    }

    /// The targets that this invocation measured: (target, measured, hit).
    fn targets(&self) -> Vec<(String, String, bool)> {
        let mut out = Vec::new();
        // Throughput under an offered load the server cannot quite keep up with.
        let busy = Pace::Rate(20_000);
        let relay_busy = self
            .load(Target::Relay, |p| p == busy)
            .map(|r| r.delivered_per_sec);
        for (target, floor) in [
            (Target::Sqlite, SQLITE_FLOOR),
            (Target::Postgres, POSTGRES_FLOOR),
        ] {
            if let Some(r) = self.load(target, |p| p == busy) {
                let share = relay_busy
                    .filter(|&v| v > 0.0)
                    .map(|relay| {
                        format!(
                            " ({:.0}% of the relay's {relay:.0})",
                            100.0 * r.delivered_per_sec / relay
                        )
                    })
                    .unwrap_or_default();
                out.push((
                    format!("{target} at a 20,000/s schedule ≥ {floor:.0} taps/s fully delivered"),
                    format!("{:.0}{share}", r.delivered_per_sec),
                    r.delivered_per_sec >= floor,
                ));
            }
        }
        let mut flats: Vec<Pace> = Vec::new();
        for r in &self.loads {
            if matches!(r.pace, Pace::Flat(_)) && !flats.contains(&r.pace) {
                flats.push(r.pace);
            }
        }
        for pace in flats {
            let Pace::Flat(n) = pace else { continue };
            let relay_flat = self
                .load(Target::Relay, |p| p == pace)
                .map(|r| r.delivered_per_sec);
            if let Some(r) = self.load(Target::Sqlite, |p| p == pace) {
                out.push((
                    format!("SQLite flat out ({n} senders) ≥ 12,000 taps/s fully delivered"),
                    format!("{:.0}", r.delivered_per_sec),
                    r.delivered_per_sec >= SQLITE_FLOOR,
                ));
                if let Some(relay) = relay_flat.filter(|&v| v > 0.0) {
                    let share = r.delivered_per_sec / relay;
                    out.push((
                        format!("SQLite ≥ 40% of the bare relay ({n} senders)"),
                        format!("{:.0}% of {relay:.0}", share * 100.0),
                        share >= 0.4,
                    ));
                }
            }
            if let Some(r) = self.load(Target::Postgres, |p| p == pace) {
                out.push((
                    format!("PostgreSQL flat out ({n} senders) ≥ 9,000 taps/s"),
                    format!("{:.0}", r.delivered_per_sec),
                    r.delivered_per_sec >= POSTGRES_FLOOR,
                ));
            }
        }
        for target in [Target::Sqlite, Target::Postgres] {
            if let Some(r) = self.load(target, |p| p == Pace::Rate(5_000)) {
                out.push((
                    format!("{target} at 5,000/s: p50 ≤ 0.7 ms, p99 ≤ 2 ms"),
                    format!(
                        "p50 {} ms, p99 {} ms ({:.0} taps/s delivered)",
                        ms(r.latency.p50),
                        ms(r.latency.p99),
                        r.delivered_per_sec
                    ),
                    r.latency.count > 0
                        && r.latency.p50 <= 0.7
                        && r.latency.p99 <= 2.0
                        && r.delivered_per_sec >= 0.95 * 5_000.0,
                ));
            }
            if let Some(r) = self.load(target, |p| p == Pace::Rate(20_000)) {
                out.push((
                    format!("{target} at 20,000/s: p99 ≤ 5 ms"),
                    format!(
                        "p99 {} ms ({:.0} taps/s delivered)",
                        ms(r.latency.p99),
                        r.delivered_per_sec
                    ),
                    r.latency.count > 0
                        && r.latency.p99 <= 5.0
                        && r.delivered_per_sec >= 0.95 * 20_000.0,
                ));
            }
        }
        for r in self.idle.iter().filter(|r| r.target != Target::Relay) {
            out.push((
                format!(
                    "{}, {} stream(s) per connection: ≥ 35,000 idle devices per GiB",
                    r.target, r.streams_per_connection
                ),
                format!("{:.0}", r.devices_per_gib()),
                r.devices_per_gib() >= 35_000.0,
            ));
        }
        if let Some(r) = self.cold.iter().find(|r| r.target == Target::Sqlite) {
            out.push((
                "SQLite cold start ≤ 50 ms".to_owned(),
                format!("{:.1} ms", r.median().as_secs_f64() * 1e3),
                r.median().as_secs_f64() <= 0.05,
            ));
        }
        out
    }
}
