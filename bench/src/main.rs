//! `tapline-bench`: the load generator of the "Speed and scale" issue.
//!
//! Every figure comes from the real `tapline-server` binary, started as a process on
//! `127.0.0.1:0` with a scratch SQLite file or PostgreSQL database, driven through the public
//! gRPC API, and measured from the outside (`/proc`). Beside it runs the bare relay (the same
//! generated services and tonic transport, fan-out in memory, no database) so each figure has
//! the stack's own ceiling next to it.
//!
//! ```text
//! cargo build --release -p tapline-server -p tapline-bench
//! target/release/tapline-bench all          # everything, with a Markdown summary
//! target/release/tapline-bench load --target sqlite --rate 5000
//! target/release/tapline-bench load --mix plain --mix realistic   # today's traffic and the core's
//! target/release/tapline-bench idle --target relay --devices 8000
//! target/release/tapline-bench cold-start
//! target/release/tapline-bench relay        # the load against the bare relay only
//! target/release/tapline-bench smoke        # a few seconds; fails on any loss or duplicate
//! target/release/tapline-bench push         # Web Push wake-ups: commit → push, worker rate
//! target/release/tapline-bench rituals      # recap, moments and streak reads on a week of data
//! ```

mod cold;
mod fleet;
mod idle;
mod load;
mod mix;
mod preload;
mod procfs;
mod push;
mod reads;
mod relay;
mod stats;
mod summary;
mod target;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use crate::fleet::Fleet;
use crate::load::{LoadSpec, Pace};
use crate::mix::{Delivered, Mix};
use crate::summary::Results;
use crate::target::{Env, Server, Target};

/// Load generator for the Tapline server: throughput, latency, CPU and memory per tap, idle
/// devices and cold start, each beside a bare tonic relay.
#[derive(Debug, Parser)]
#[command(name = "tapline-bench", version, about)]
struct Cli {
    /// The `tapline-server` binary (default: next to this executable).
    #[arg(long, global = true, env = "TAPLINE_SERVER_BIN")]
    server_bin: Option<PathBuf>,

    /// PostgreSQL admin connection; each run creates its own database there and drops it.
    #[arg(
        long,
        global = true,
        env = "TAPLINE_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Everything: load, idle and cold start on every target, then a Markdown summary.
    All(AllArgs),
    /// Taps at fixed rates and flat out, with every device's stream open.
    Load(LoadArgs),
    /// Many idle devices holding their streams: server memory per device.
    Idle(IdleArgs),
    /// Exec of the server to its first answered RPC, on a fresh database.
    ColdStart(ColdArgs),
    /// The load against the bare relay only (the stack's ceiling).
    Relay(RelayArgs),
    /// A few seconds of load on SQLite; fails on any loss or duplicate, never on speed.
    Smoke(SmokeArgs),
    /// Web Push wake-ups to a fake push service in the bench: commit → push latency with
    /// half the devices offline, and the push worker's rate on a backlog. Fails if a device
    /// with a live stream is pushed.
    Push(PushArgs),
    /// The reads of the rituals (GetRecap, ListMoments, GetStreak) and KeepMoment, on couples
    /// with a week of taps, kept notes and mood answers.
    Rituals(RitualArgs),
    /// The bare relay itself (started by the bench as a separate process).
    #[command(hide = true)]
    RelayServer {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Where DELIVERED receipts come from.
        #[arg(long, value_enum, default_value_t)]
        delivered: Delivered,
    },
}

#[derive(Debug, Clone, Args)]
struct Targets {
    /// What to measure (repeatable): sqlite, postgres, relay. Default: all three.
    #[arg(long = "target", value_enum)]
    targets: Vec<Target>,
}

impl Targets {
    fn or_all(&self) -> Vec<Target> {
        if self.targets.is_empty() {
            vec![Target::Sqlite, Target::Postgres, Target::Relay]
        } else {
            self.targets.clone()
        }
    }
}

/// The traffic beside the taps (see the `mix` module).
#[derive(Debug, Clone, Args)]
struct MixOpts {
    /// Traffic mix, one run each (repeatable): realistic (the mobile core's: acks as soon as
    /// stored, DELIVERED receipts, FELT/SEEN reports, a check-in answer per 50 taps) or plain
    /// (taps, and acks every --ack-every-ms). Default: realistic.
    #[arg(long = "mix", value_enum)]
    mixes: Vec<Mix>,
    /// Realistic mix: DELIVERED receipts derived by the server from the acks (ack), or also
    /// reported by every recipient device with ReportTap (report, what the old core did).
    #[arg(long, value_enum, default_value_t)]
    delivered: Delivered,
}

impl MixOpts {
    /// The mixes to run, each once, in the order given.
    fn or_default(&self) -> Vec<Mix> {
        let mut mixes = Vec::new();
        for &m in &self.mixes {
            if !mixes.contains(&m) {
                mixes.push(m);
            }
        }
        if mixes.is_empty() {
            mixes.push(Mix::default());
        }
        mixes
    }
}

#[derive(Debug, Clone, Args)]
struct LoadArgs {
    #[command(flatten)]
    targets: Targets,
    #[command(flatten)]
    opts: LoadOpts,
}

#[derive(Debug, Clone, Args)]
struct LoadOpts {
    /// Couples (each partner with a phone and a watch: four devices and streams per couple).
    #[arg(long, default_value_t = 100)]
    couples: usize,
    /// Seconds of sending per run.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Fixed rates to run, taps per second (repeatable; `--rate 0` runs none).
    #[arg(long = "rate", default_values_t = [5_000u32, 20_000])]
    rates: Vec<u32>,
    /// Concurrent senders of a flat-out run (repeatable; `--flat-senders 0` runs none). Each
    /// sender waits for its answer, so a run with N senders never has more than N taps to
    /// commit together: 64 measures the round trip, 400 (one per device) the capacity.
    #[arg(long = "flat-senders", default_values_t = [64usize, 400])]
    flat_senders: Vec<usize>,
    /// HTTP/2 connections the devices share.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Plain mix: each stream acks its newest event at most this often, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    ack_every_ms: u64,
    /// Calls in flight at most at a fixed rate (past it the schedule slips).
    #[arg(long, default_value_t = 2048)]
    max_in_flight: usize,
    /// Couples signed in at once during set-up.
    #[arg(long, default_value_t = 16)]
    setup_concurrency: usize,
    /// Taps already stored before the run (written straight into the database after the
    /// fleet signs in), to show that the cost per tap stays flat as history grows.
    #[arg(long, default_value_t = 0)]
    preload_taps: u64,
    #[command(flatten)]
    mix: MixOpts,
}

impl LoadOpts {
    fn paces(&self) -> Vec<Pace> {
        let mut paces: Vec<Pace> = self
            .rates
            .iter()
            .filter(|&&r| r > 0)
            .map(|&r| Pace::Rate(r))
            .collect();
        paces.extend(
            self.flat_senders
                .iter()
                .filter(|&&n| n > 0)
                .map(|&n| Pace::Flat(n)),
        );
        paces
    }

    fn spec(&self, pace: Pace, mix: Mix) -> LoadSpec {
        LoadSpec {
            pace,
            duration: Duration::from_secs(self.duration_secs),
            connections: self.connections,
            ack_every: Duration::from_millis(self.ack_every_ms),
            max_in_flight: self.max_in_flight,
            mix,
            delivered: self.mix.delivered,
        }
    }
}

#[derive(Debug, Clone, Args)]
struct IdleArgs {
    #[command(flatten)]
    targets: Targets,
    #[command(flatten)]
    opts: IdleOpts,
}

#[derive(Debug, Clone, Args)]
struct IdleOpts {
    /// Idle devices (rounded down to whole couples; capped by what the open-files limit allows
    /// at the given streams per connection).
    #[arg(long, default_value_t = 20_000)]
    devices: usize,
    /// Streams per HTTP/2 connection, one run each (repeatable). 1 is a phone's own
    /// connection; more share one, as a tonic `Channel` can.
    #[arg(long = "streams-per-connection", default_values_t = [1usize, 4])]
    streams_per_connection: Vec<usize>,
    /// Seconds every stream is held open before the memory reading (past the server's 25 s
    /// heartbeat, so the reading and the idle CPU include one).
    #[arg(long, default_value_t = 30)]
    hold_secs: u64,
    /// Couples signed in at once during set-up.
    #[arg(long, default_value_t = 32)]
    idle_setup_concurrency: usize,
}

#[derive(Debug, Clone, Args)]
struct ColdArgs {
    #[command(flatten)]
    targets: Targets,
    #[command(flatten)]
    opts: ColdOpts,
}

#[derive(Debug, Clone, Args)]
struct ColdOpts {
    /// Starts per target.
    #[arg(long, default_value_t = 11)]
    runs: usize,
}

#[derive(Debug, Clone, Args)]
struct AllArgs {
    #[command(flatten)]
    targets: Targets,
    #[command(flatten)]
    load: LoadOpts,
    #[command(flatten)]
    idle: IdleOpts,
    #[command(flatten)]
    cold: ColdOpts,
}

#[derive(Debug, Clone, Args)]
struct RitualArgs {
    /// What to measure (repeatable): sqlite, postgres. Default: both.
    #[arg(long = "target", value_enum)]
    targets: Vec<Target>,
    /// Taps of history stored beforehand (a year old), beside the couples' week.
    #[arg(long, default_value_t = 0)]
    preload_taps: u64,
    #[command(flatten)]
    opts: reads::ReadOpts,
}

#[derive(Debug, Clone, Args)]
struct RelayArgs {
    #[command(flatten)]
    opts: LoadOpts,
}

#[derive(Debug, Clone, Args)]
struct PushArgs {
    /// What to measure (repeatable): sqlite, postgres. Default: both.
    #[arg(long = "target", value_enum)]
    targets: Vec<Target>,
    #[command(flatten)]
    opts: push::PushOpts,
}

#[derive(Debug, Clone, Args)]
struct SmokeArgs {
    /// Couples.
    #[arg(long, default_value_t = 8)]
    couples: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 3)]
    duration_secs: u64,
    /// Concurrent senders.
    #[arg(long, default_value_t = 8)]
    senders: usize,
    #[command(flatten)]
    mix: MixOpts,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::RelayServer { listen, delivered } = cli.command {
        return match relay::serve(listen, delivered).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("relay: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // Children (the server) inherit the raised limit.
    let nofile = match procfs::raise_nofile_limit() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("warning: cannot raise the open-files limit: {e}");
            1024
        }
    };
    let env = match Env::locate(cli.server_bin.clone(), cli.postgres_url.clone()) {
        Ok(env) => env,
        Err(e) => {
            eprintln!("tapline-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match dispatch(cli.command, &env, nofile).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!(
                "tapline-bench: FAILED: a run broke exactly-once delivery of taps or receipts (see above)"
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("tapline-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command; `Ok(false)` when an exactly-once check failed.
async fn dispatch(command: Command, env: &Env, nofile: u64) -> Result<bool, String> {
    let mut results = Results::default();
    match command {
        Command::All(a) => {
            let targets = usable(env, a.targets.or_all()).await?;
            print_machine(nofile);
            // Cold starts first, while the bench itself is still small.
            for &t in &targets {
                run_cold(env, t, &a.cold, &mut results).await?;
            }
            for &t in &targets {
                run_loads(env, t, &a.load, &mut results).await?;
            }
            for &t in &targets {
                run_idle(env, t, &a.idle, nofile, &mut results).await?;
            }
            results.print_markdown();
        }
        Command::Load(a) => {
            print_machine(nofile);
            for t in usable(env, a.targets.or_all()).await? {
                run_loads(env, t, &a.opts, &mut results).await?;
            }
            results.print_markdown();
        }
        Command::Relay(a) => {
            print_machine(nofile);
            run_loads(env, Target::Relay, &a.opts, &mut results).await?;
            results.print_markdown();
        }
        Command::Idle(a) => {
            print_machine(nofile);
            for t in usable(env, a.targets.or_all()).await? {
                run_idle(env, t, &a.opts, nofile, &mut results).await?;
            }
            results.print_markdown();
        }
        Command::ColdStart(a) => {
            print_machine(nofile);
            for t in usable(env, a.targets.or_all()).await? {
                run_cold(env, t, &a.opts, &mut results).await?;
            }
            results.print_markdown();
        }
        Command::Smoke(a) => return smoke(env, &a).await,
        Command::Push(a) => {
            print_machine(nofile);
            let targets = if a.targets.is_empty() {
                vec![Target::Sqlite, Target::Postgres]
            } else {
                a.targets
            };
            let pushed = push::run(env, &usable(env, targets).await?, &a.opts).await?;
            if !pushed.passed() {
                return Err("FAILED: a device with a live stream was pushed (see above)".into());
            }
        }
        Command::Rituals(a) => {
            print_machine(nofile);
            let targets = if a.targets.is_empty() {
                vec![Target::Sqlite, Target::Postgres]
            } else {
                a.targets.clone()
            };
            for t in usable(env, targets).await? {
                if t == Target::Relay {
                    println!("rituals: the bare relay has no recap or moments; skipped");
                    continue;
                }
                let failed = run_rituals(env, t, &a).await?;
                if failed > 0 {
                    return Err(format!("rituals {t}: {failed} calls failed"));
                }
            }
        }
        Command::RelayServer { .. } => unreachable!("handled in main"),
    }
    Ok(results.all_passed())
}

/// The targets that can run here: the server binary must exist for the real ones; PostgreSQL
/// is skipped with a notice when unreachable, except under `CI`, where that is an error.
async fn usable(env: &Env, targets: Vec<Target>) -> Result<Vec<Target>, String> {
    if targets.iter().any(|&t| t != Target::Relay) {
        env.check_server_bin()?;
    }
    let mut out = Vec::new();
    for t in targets {
        if t == Target::Postgres
            && let Err(e) = env.postgres_reachable().await
        {
            if std::env::var_os("CI").is_some() {
                return Err(e);
            }
            eprintln!("skipping postgres: {e}");
            continue;
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

fn print_machine(nofile: u64) {
    println!(
        "machine: {}; open-files limit {nofile}; load average {}",
        procfs::machine(),
        procfs::load_average()
    );
}

/// One fresh server, one fresh fleet per mix and pace, so no run inherits another's data.
async fn run_loads(
    env: &Env,
    target: Target,
    opts: &LoadOpts,
    results: &mut Results,
) -> Result<(), String> {
    for mix in opts.mix.or_default() {
        for pace in opts.paces() {
            let spec = opts.spec(pace, mix);
            let fleet = (opts.couples, opts.setup_concurrency, opts.preload_taps);
            let report = run_load(env, target, &spec, fleet).await?;
            println!();
            results.loads.push(report);
        }
    }
    Ok(())
}

/// One load run on a fresh server, with a fresh fleet of `(couples, set-up concurrency, taps
/// stored beforehand)`. The server is stopped whatever happened; the run and the server's log
/// are printed.
async fn run_load(
    env: &Env,
    target: Target,
    spec: &LoadSpec,
    (couples, concurrency, preload_taps): (usize, usize, u64),
) -> Result<load::LoadReport, String> {
    let server = Server::start(env, target, spec.delivered).await?;
    let outcome = async {
        let fleet = Fleet::create(target, server.addr, couples, concurrency).await?;
        if let (Some(url), n @ 1..) = (&server.database_url, preload_taps) {
            let took = preload::history(url, n).await?;
            println!(
                "{target}: {n} taps stored beforehand ({:.0} s to write)",
                took.as_secs_f64()
            );
        }
        load::run(&server, &fleet, spec).await
    }
    .await;
    let stopped = server.stop().await;
    let outcome = outcome.map(|mut report| {
        report.settle(&stopped);
        report
    });
    if let Ok(report) = &outcome {
        load::print(report);
    }
    report_log(target, &stopped);
    outcome
}

/// One idle run per streams-per-connection value, each on a fresh server.
async fn run_idle(
    env: &Env,
    target: Target,
    opts: &IdleOpts,
    nofile: u64,
    results: &mut Results,
) -> Result<(), String> {
    for &per in &opts.streams_per_connection {
        run_idle_once(env, target, opts, per.max(1), nofile, results).await?;
    }
    Ok(())
}

async fn run_idle_once(
    env: &Env,
    target: Target,
    opts: &IdleOpts,
    per: usize,
    nofile: u64,
    results: &mut Results,
) -> Result<(), String> {
    let per = per as u64;
    // Each connection is a descriptor on both sides; keep some for everything else.
    let allowed = nofile.saturating_sub(512) * per;
    let mut devices = (opts.devices as u64).min(allowed) as usize;
    devices -= devices % fleet::PER_COUPLE;
    if devices < opts.devices {
        println!(
            "idle {target}: {devices} devices (the open-files limit {nofile} allows no more at {per} streams per connection)"
        );
    }
    let server = Server::start(env, target, Delivered::default()).await?;
    let outcome = async {
        let started = Instant::now();
        let fleet = Fleet::create(
            target,
            server.addr,
            devices / fleet::PER_COUPLE,
            opts.idle_setup_concurrency,
        )
        .await?;
        let spec = idle::IdleSpec {
            streams_per_connection: per as usize,
            hold: Duration::from_secs(opts.hold_secs),
        };
        idle::run(&server, &fleet, &spec, started.elapsed()).await
    }
    .await;
    let stopped = server.stop().await;
    if let Ok(report) = &outcome {
        idle::print(report);
    }
    report_log(target, &stopped);
    println!();
    let report = outcome?;
    results.idle.push(report);
    Ok(())
}

/// One rituals run on a fresh server; the number of calls that failed.
async fn run_rituals(env: &Env, target: Target, a: &RitualArgs) -> Result<u64, String> {
    let server = Server::start(env, target, Delivered::default()).await?;
    let outcome = async {
        let fleet = Fleet::create(target, server.addr, a.opts.couples, 16).await?;
        if let (Some(url), n @ 1..) = (&server.database_url, a.preload_taps) {
            preload::history(url, n).await?;
        }
        reads::run(&server, &fleet, &a.opts, a.preload_taps).await
    }
    .await;
    let stopped = server.stop().await;
    if let Ok(r) = &outcome {
        reads::print(r);
    }
    report_log(target, &stopped);
    outcome.map(|r| r.failed)
}

async fn run_cold(
    env: &Env,
    target: Target,
    opts: &ColdOpts,
    results: &mut Results,
) -> Result<(), String> {
    let report = cold::run(env, target, opts.runs).await?;
    cold::print(&report);
    println!();
    results.cold.push(report);
    Ok(())
}

/// Mentions what the server logged at WARN or above (part of the results: a slow pool shows
/// up there).
fn report_log(target: Target, stopped: &target::Stopped) {
    if stopped.notable_lines > 0 {
        println!(
            "  {target} logged {} warning/error lines, the first:",
            stopped.notable_lines
        );
        for line in stopped.kept.iter().take(3) {
            let short: String = line.chars().take(300).collect();
            println!("    {short}");
        }
    }
    if stopped.status.is_none() {
        println!("  {target} did not stop on SIGTERM and was killed");
    }
}

/// A few seconds of flat-out taps on SQLite between a few couples, in each mix asked for
/// (default realistic): passes when every tap sent OK arrived exactly once on each of its three
/// streams (and, in the realistic mix, came back as exactly one DELIVERED receipt on each of
/// its sender's devices) and no call failed, whatever the speed.
async fn smoke(env: &Env, args: &SmokeArgs) -> Result<bool, String> {
    env.check_server_bin()?;
    let mut passed = true;
    for mix in args.mix.or_default() {
        let spec = LoadSpec {
            pace: Pace::Flat(args.senders),
            duration: Duration::from_secs(args.duration_secs),
            connections: 4,
            ack_every: Duration::from_millis(100),
            max_in_flight: 256,
            mix,
            delivered: args.mix.delivered,
        };
        let report = run_load(env, Target::Sqlite, &spec, (args.couples, 8, 0)).await?;
        let failed = report.failed_calls();
        let ok = report.check.passed() && failed == 0 && report.sent_ok > 0;
        let receipts = match mix {
            Mix::Realistic => " and came back as one DELIVERED receipt on each sender device",
            Mix::Plain => "",
        };
        if ok {
            println!(
                "smoke ({mix}): OK: {} taps, each delivered exactly once to its 3 recipient streams{receipts}",
                report.delivered.taps
            );
        } else {
            println!(
                "smoke ({mix}): FAILED: {} OK sends, {failed} failed calls; exactly once: {}",
                report.sent_ok, report.check
            );
            if report.check.lost_receipts > 0 && report.receipts.delivered == 0 {
                println!(
                    "smoke ({mix}): no DELIVERED receipt came back at all: with --delivered {}, \
                     does the server derive them from acks? (--delivered report has every \
                     recipient report them)",
                    spec.delivered
                );
            }
        }
        passed &= ok;
    }
    Ok(passed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["tapline-bench", "all", "--rate", "100", "--devices", "8"])
            .unwrap();
        let Command::All(a) = cli.command else {
            panic!("all")
        };
        assert_eq!(
            a.load.paces(),
            vec![Pace::Rate(100), Pace::Flat(64), Pace::Flat(400)]
        );
        assert_eq!(a.idle.streams_per_connection, vec![1, 4]);
        assert_eq!(a.targets.or_all().len(), 3);
        let cli = Cli::try_parse_from(["tapline-bench", "load", "--rate", "0"]).unwrap();
        let Command::Load(l) = cli.command else {
            panic!("load")
        };
        assert_eq!(l.opts.paces(), vec![Pace::Flat(64), Pace::Flat(400)]);
        assert_eq!(l.opts.mix.or_default(), vec![Mix::Realistic]);
        assert_eq!(l.opts.mix.delivered, Delivered::Ack);
        let cli = Cli::try_parse_from([
            "tapline-bench",
            "smoke",
            "--mix",
            "plain",
            "--mix",
            "realistic",
            "--delivered",
            "report",
        ])
        .unwrap();
        let Command::Smoke(s) = cli.command else {
            panic!("smoke")
        };
        assert_eq!(s.mix.or_default(), vec![Mix::Plain, Mix::Realistic]);
        assert_eq!(s.mix.delivered, Delivered::Report);
    }
}
