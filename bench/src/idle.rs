//! Idle mode: many signed-in devices, each holding its event stream open and doing nothing.
//! Reports the server's resident memory per idle device (RSS with every stream open minus RSS
//! before any was opened, divided by devices), devices per GiB, and the CPU the idle streams
//! cost. Several streams share one HTTP/2 connection, as a tonic `Channel` carries many.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::fleet::{Fleet, authed, connect_many};
use crate::procfs;
use crate::target::{Server, Target};

/// Bound on opening one stream and reading its backlog.
const OPEN_PATIENCE: Duration = Duration::from_secs(60);
/// Streams opened at once.
const OPENING_PARALLEL: usize = 256;
/// Settling time before each memory reading.
const SETTLE: Duration = Duration::from_secs(1);

/// One idle run.
#[derive(Debug, Clone)]
pub struct IdleSpec {
    /// Streams per HTTP/2 connection.
    pub streams_per_connection: usize,
    /// How long all streams are held open before the reading.
    pub hold: Duration,
}

/// What an idle run measured.
#[derive(Debug, Clone)]
pub struct IdleReport {
    /// Against what.
    pub target: Target,
    /// Devices holding a stream.
    pub devices: usize,
    /// HTTP/2 connections they used.
    pub connections: usize,
    /// Streams per connection.
    pub streams_per_connection: usize,
    /// Time to sign the devices in.
    pub setup: Duration,
    /// Time to open every stream and read to `caught_up`.
    pub opening: Duration,
    /// Server RSS before any stream or connection, KiB.
    pub rss_before_kib: u64,
    /// Server RSS with every stream open, after the hold, KiB.
    pub rss_after_kib: u64,
    /// Peak server RSS at the end, KiB.
    pub peak_kib: u64,
    /// Server descriptors open with every stream open.
    pub server_fds: usize,
    /// Server CPU over the hold, in cores.
    pub idle_cores: f64,
    /// Load averages before and after.
    pub load: (String, String),
}

impl IdleReport {
    /// Server memory per idle device, bytes.
    pub fn bytes_per_device(&self) -> f64 {
        (self.rss_after_kib.saturating_sub(self.rss_before_kib) * 1024) as f64
            / self.devices.max(1) as f64
    }

    /// Idle devices one GiB of server memory holds at that rate.
    pub fn devices_per_gib(&self) -> f64 {
        let per = self.bytes_per_device();
        if per <= 0.0 {
            f64::INFINITY
        } else {
            (1u64 << 30) as f64 / per
        }
    }
}

/// Opens a stream for every device of `fleet` on the running server and measures memory.
pub async fn run(
    server: &Server,
    fleet: &Fleet,
    spec: &IdleSpec,
    setup: Duration,
) -> Result<IdleReport, String> {
    let load_before = procfs::load_average();
    let devices = fleet.devices.len();
    tokio::time::sleep(SETTLE).await;
    let before = server.memory();

    let opening_started = Instant::now();
    let per = spec.streams_per_connection.max(1);
    let channels = connect_many(server.addr, devices.div_ceil(per), 64).await?;
    let permits = Arc::new(Semaphore::new(OPENING_PARALLEL));
    let mut opening = JoinSet::new();
    for (d, cred) in fleet.devices.iter().enumerate() {
        let channel = authed(&channels[d / per], &cred.token)?;
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        opening.spawn(async move {
            let _permit = permit;
            let mut events =
                tapline_proto::v1::event_service_client::EventServiceClient::new(channel);
            let opened = async {
                let mut stream = events
                    .subscribe(pb::SubscribeRequest { after_seq: 0 })
                    .await
                    .map_err(|s| format!("subscribe: {:?}: {}", s.code(), s.message()))?
                    .into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(pb::SubscribeResponse {
                            event:
                                Some(pb::Event {
                                    payload: Some(Payload::CaughtUp(_)),
                                    ..
                                }),
                        })) => return Ok(stream),
                        Ok(Some(_)) => {}
                        Ok(None) => return Err("ended before caught_up".to_owned()),
                        Err(s) => return Err(format!("{:?}: {}", s.code(), s.message())),
                    }
                }
            };
            match tokio::time::timeout(OPEN_PATIENCE, opened).await {
                Ok(r) => r.map_err(|e| format!("device {d}: {e}")),
                Err(_) => Err(format!("device {d}: no caught_up in time")),
            }
        });
    }
    // Held, not read: an idle device has nothing to read but a heartbeat now and then.
    let mut streams = Vec::with_capacity(devices);
    while let Some(done) = opening.join_next().await {
        streams.push(done.map_err(|e| e.to_string())??);
    }
    let opening = opening_started.elapsed();

    tokio::time::sleep(SETTLE).await;
    let cpu_before = server.cpu_time();
    let held = Instant::now();
    tokio::time::sleep(spec.hold).await;
    let idle_cores =
        server.cpu_time().saturating_sub(cpu_before).as_secs_f64() / held.elapsed().as_secs_f64();
    let after = server.memory();
    let server_fds = procfs::open_fds(server.pid()).unwrap_or(0);
    let connections = channels.len();
    drop(streams);
    drop(channels);
    Ok(IdleReport {
        target: server.target,
        devices,
        connections,
        streams_per_connection: per,
        setup,
        opening,
        rss_before_kib: before.rss_kib,
        rss_after_kib: after.rss_kib,
        peak_kib: after.peak_kib,
        server_fds,
        idle_cores,
        load: (load_before, procfs::load_average()),
    })
}

/// Prints an idle run's figures.
pub fn print(r: &IdleReport) {
    println!(
        "idle {} — {} devices on {} connections ({} streams each); set up in {:.1} s, streams opened in {:.1} s",
        r.target,
        r.devices,
        r.connections,
        r.streams_per_connection,
        r.setup.as_secs_f64(),
        r.opening.as_secs_f64()
    );
    println!(
        "  server RSS {:.1} MiB before, {:.1} MiB with every stream open (peak {:.1} MiB), {} descriptors",
        r.rss_before_kib as f64 / 1024.0,
        r.rss_after_kib as f64 / 1024.0,
        r.peak_kib as f64 / 1024.0,
        r.server_fds
    );
    println!(
        "  {:.1} KiB per idle device = {:.0} idle devices per GiB; idle CPU {:.3} cores",
        r.bytes_per_device() / 1024.0,
        r.devices_per_gib(),
        r.idle_cores
    );
    println!("  load average: {} before, {} after", r.load.0, r.load.1);
}
