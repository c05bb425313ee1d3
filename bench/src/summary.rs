//! The closing summary: every run's figures as Markdown tables (ready for BENCHMARKS.md), and
//! the targets marked hit or missed. The load targets are the rows of [`FLOORS`],
//! judged by [`Floor::judge`] and nowhere else.

use crate::cold::ColdReport;
use crate::idle::IdleReport;
use crate::load::{LoadReport, Pace};
use crate::mix::Mix;
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

/// What a floor asks of a run.
#[derive(Debug, Clone, Copy)]
enum Bar {
    /// At least this many taps/s ([`LoadReport::rate`]: fully delivered, and in the realistic
    /// mix with both DELIVERED receipts back).
    Rate(f64),
    /// At least this share of the relay's rate in the same mix and pace.
    RelayShare(f64),
    /// p99 from send to the partner's devices at most this many ms, with the schedule kept
    /// (at least 95 % of it delivered).
    P99Ms(f64),
    /// At most this many PostgreSQL deadlocks during the run.
    Deadlocks(u64),
}

/// One of the load targets: a bar for every run of `mix` on `target` at `pace` (any
/// pace when `None`).
struct Floor {
    mix: Mix,
    target: Target,
    pace: Option<Pace>,
    bar: Bar,
}

/// The schedule the throughput floors are judged at: more than either database sustains.
const BUSY: Option<Pace> = Some(Pace::Rate(20_000));
/// The schedule the latency floor is judged at.
const STEADY: Option<Pace> = Some(Pace::Rate(5_000));

/// The load targets.
const FLOORS: &[Floor] = &[
    Floor {
        mix: Mix::Realistic,
        target: Target::Sqlite,
        pace: BUSY,
        bar: Bar::Rate(10_000.0),
    },
    Floor {
        mix: Mix::Realistic,
        target: Target::Sqlite,
        pace: BUSY,
        bar: Bar::RelayShare(0.45),
    },
    Floor {
        mix: Mix::Realistic,
        target: Target::Postgres,
        pace: BUSY,
        bar: Bar::Rate(8_000.0),
    },
    Floor {
        mix: Mix::Realistic,
        target: Target::Postgres,
        pace: None,
        bar: Bar::Deadlocks(0),
    },
    Floor {
        mix: Mix::Plain,
        target: Target::Sqlite,
        pace: BUSY,
        bar: Bar::Rate(12_000.0),
    },
    Floor {
        mix: Mix::Plain,
        target: Target::Postgres,
        pace: BUSY,
        bar: Bar::Rate(9_500.0),
    },
    Floor {
        mix: Mix::Realistic,
        target: Target::Sqlite,
        pace: STEADY,
        bar: Bar::P99Ms(10.0),
    },
    Floor {
        mix: Mix::Plain,
        target: Target::Sqlite,
        pace: STEADY,
        bar: Bar::P99Ms(10.0),
    },
];

impl Floor {
    /// Whether `r` is one of this floor's runs.
    fn applies(&self, r: &LoadReport) -> bool {
        r.mix == self.mix && r.target == self.target && self.pace.is_none_or(|p| p == r.pace)
    }

    /// The row for run `r`: what is asked, what was measured, whether it holds. `relay` is the
    /// relay's run in the same mix and pace; `None` when the bar needs it and it is missing
    /// (not measured, so not judged).
    fn judge(&self, r: &LoadReport, relay: Option<&LoadReport>) -> Option<(String, String, bool)> {
        let taps = match r.mix {
            Mix::Plain => "taps/s fully delivered",
            Mix::Realistic => "taps/s fully delivered with both DELIVERED receipts back",
        };
        let (asked, measured, hit) = match self.bar {
            Bar::Rate(min) => (
                format!("≥ {min:.0} {taps}"),
                format!("{:.0}", r.rate()),
                r.rate() >= min,
            ),
            Bar::RelayShare(min) => {
                let relay = relay.map(LoadReport::rate).filter(|&v| v > 0.0)?;
                let share = r.rate() / relay;
                (
                    format!("≥ {:.0}% of the relay's {taps}", min * 100.0),
                    format!("{:.0}% ({:.0} of {relay:.0})", share * 100.0, r.rate()),
                    share >= min,
                )
            }
            Bar::P99Ms(max) => {
                let kept = match r.pace {
                    Pace::Rate(rate) => r.delivered.per_sec() >= 0.95 * f64::from(rate),
                    Pace::Flat(_) => true,
                };
                (
                    format!("p99 send → partner ≤ {max} ms"),
                    format!(
                        "p99 {} ms ({:.0} taps/s delivered)",
                        ms(r.latency.p99),
                        r.delivered.per_sec()
                    ),
                    r.latency.count > 0 && r.latency.p99 <= max && kept,
                )
            }
            Bar::Deadlocks(max) => match r.deadlocks {
                Some(n) => (format!("≤ {max} deadlocks"), n.to_string(), n <= max),
                None => (format!("≤ {max} deadlocks"), "unknown".into(), false),
            },
        };
        Some((
            format!("{} {}, {}: {asked}", r.mix, r.target, r.pace),
            measured,
            hit,
        ))
    }
}

impl Results {
    /// True when no load run broke exactly-once delivery.
    pub fn all_passed(&self) -> bool {
        self.loads.iter().all(|r| r.check.passed())
    }

    /// The (pace, mix) pairs measured, in the order first run.
    fn groups(&self) -> Vec<(Pace, Mix)> {
        let mut groups = Vec::new();
        for r in &self.loads {
            if !groups.contains(&(r.pace, r.mix)) {
                groups.push((r.pace, r.mix));
            }
        }
        groups
    }

    /// The load runs, grouped by pace and mix.
    fn loads_grouped(&self) -> impl Iterator<Item = &LoadReport> {
        self.groups().into_iter().flat_map(move |(pace, mix)| {
            self.loads
                .iter()
                .filter(move |r| r.pace == pace && r.mix == mix)
        })
    }

    /// Prints the tables and the targets.
    pub fn print_markdown(&self) {
        println!("## Summary\n");
        if !self.loads.is_empty() {
            println!(
                "| pace | mix | target | delivered taps/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | SendTap p50 / p99 ms | server µs CPU/tap | server / bench / machine (stolen) cores | peak RSS MiB | exactly once |"
            );
            println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
            for r in self.loads_grouped() {
                let l = &r.latency;
                println!(
                    "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} / {} | {:.0} | {:.2} / {:.2} / {:.2} ({:.2}) | {:.1} | {} |",
                    r.pace,
                    r.mix,
                    r.target,
                    r.delivered.per_sec(),
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
                        format!("OK ({} taps)", r.delivered.taps)
                    } else {
                        "FAILED".to_owned()
                    }
                );
            }
            println!();
            println!(
                "| pace | mix | target | taps/s with receipts back | receipts/s DELIVERED + FELT/SEEN | answers/s | send → partner p50 / p99 ms | send → DELIVERED back p50 / p99 ms | AckEvents/s | failed calls | deadlocks |"
            );
            println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            for r in self.loads_grouped() {
                let dash = || "–".to_owned();
                let wall = r.wall.as_secs_f64().max(1e-9);
                println!(
                    "| {} | {} | {} | {} | {:.0} + {:.0} | {} | {} / {} | {} | {:.0} | {} | {} |",
                    r.pace,
                    r.mix,
                    r.target,
                    r.with_receipts
                        .map_or_else(dash, |w| format!("{:.0}", w.per_sec())),
                    r.receipts.delivered as f64 / wall,
                    r.receipts.attention as f64 / wall,
                    r.checkins.as_ref().map_or_else(dash, |c| format!(
                        "{:.0}",
                        c.answers.ok as f64 / r.sending.as_secs_f64().max(1e-9)
                    )),
                    ms(r.latency.p50),
                    ms(r.latency.p99),
                    if r.delivered_back.count == 0 {
                        dash()
                    } else {
                        format!(
                            "{} / {}",
                            ms(r.delivered_back.p50),
                            ms(r.delivered_back.p99)
                        )
                    },
                    r.acks.ok as f64 / wall,
                    r.failed_calls(),
                    match (r.target, r.deadlocks) {
                        (Target::Postgres, Some(n)) => n.to_string(),
                        (Target::Postgres, None) => "unknown".to_owned(),
                        _ => dash(),
                    }
                );
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
        for floor in FLOORS {
            for r in self.loads.iter().filter(|r| floor.applies(r)) {
                let relay = self
                    .loads
                    .iter()
                    .find(|x| x.target == Target::Relay && x.mix == r.mix && x.pace == r.pace);
                out.extend(floor.judge(r, relay));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{blank_report, one_second_of};

    fn busy(target: Target, mix: Mix, taps: u64, with_receipts: u64) -> LoadReport {
        let mut r = blank_report(target, Pace::Rate(20_000), mix);
        r.delivered = one_second_of(taps);
        if mix == Mix::Realistic {
            r.with_receipts = Some(one_second_of(with_receipts));
        }
        r
    }

    fn rows(loads: Vec<LoadReport>) -> Vec<(String, String, bool)> {
        Results {
            loads,
            ..Results::default()
        }
        .targets()
    }

    #[test]
    fn the_realistic_floors_judge_the_taps_with_their_receipts_back() {
        let sqlite = busy(Target::Sqlite, Mix::Realistic, 12_000, 9_000);
        let relay = busy(Target::Relay, Mix::Realistic, 20_000, 19_000);
        let out = rows(vec![sqlite.clone(), relay]);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!((out[0].1.as_str(), out[0].2), ("9000", false), "{out:?}");
        assert!(out[1].1.starts_with("47%") && out[1].2, "{out:?}");
        // Without the relay, the share is not measured: no row rather than a guess.
        assert_eq!(rows(vec![sqlite]).len(), 1);
    }

    #[test]
    fn postgres_is_judged_on_its_deadlocks_and_unknown_is_a_miss() {
        let mut pg = busy(Target::Postgres, Mix::Realistic, 9_000, 8_500);
        let out = rows(vec![pg.clone()]);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[0].2, "{out:?}");
        assert_eq!((out[1].1.as_str(), out[1].2), ("unknown", false));
        pg.deadlocks = Some(2);
        assert!(!rows(vec![pg.clone()])[1].2);
        pg.deadlocks = Some(0);
        assert!(rows(vec![pg])[1].2);
    }

    #[test]
    fn the_plain_floors_and_the_latency_floor() {
        let out = rows(vec![
            busy(Target::Sqlite, Mix::Plain, 12_100, 0),
            busy(Target::Postgres, Mix::Plain, 9_400, 0),
        ]);
        assert_eq!(
            out.iter().map(|r| r.2).collect::<Vec<_>>(),
            vec![true, false]
        );
        let mut steady = blank_report(Target::Sqlite, Pace::Rate(5_000), Mix::Plain);
        steady.delivered = one_second_of(5_000);
        steady.latency = crate::stats::Summary {
            count: 10,
            p99: 9.0,
            ..Default::default()
        };
        assert!(rows(vec![steady.clone()])[0].2);
        // The same p99 while the schedule slipped is a miss.
        steady.delivered = one_second_of(4_000);
        assert!(!rows(vec![steady])[0].2);
    }
}
