//! Cold start: from exec of the server on a fresh database (migrations included) to the first
//! answered RPC, a gRPC health check. Several runs, each on its own fresh database; the median
//! is the figure. The database is created before the clock starts (for PostgreSQL, the
//! `CREATE DATABASE`), so only the server's own start-up is timed.

use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::fleet::connect;
use crate::mix::Delivered;
use crate::target::{Env, Server, Target};

/// What the cold-start runs measured.
#[derive(Debug, Clone)]
pub struct ColdReport {
    /// Against what.
    pub target: Target,
    /// Exec to first answered RPC, per run, sorted.
    pub first_rpc: Vec<Duration>,
    /// Exec to the listen log line, per run, sorted.
    pub listening: Vec<Duration>,
}

impl ColdReport {
    /// Median exec to first answered RPC.
    pub fn median(&self) -> Duration {
        median(&self.first_rpc)
    }
}

fn median(sorted: &[Duration]) -> Duration {
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

/// Starts `target` `runs` times and times each start to its first answered health check.
pub async fn run(env: &Env, target: Target, runs: usize) -> Result<ColdReport, String> {
    let mut first_rpc = Vec::with_capacity(runs);
    let mut listening = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let server = Server::start(env, target, Delivered::default()).await?;
        let answered = async {
            let channel = connect(server.addr, None).await?;
            HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map_err(|s| format!("health check: {:?}: {}", s.code(), s.message()))
        };
        let answer = tokio::time::timeout(Duration::from_secs(30), answered).await;
        let elapsed = server.spawned_at.elapsed();
        let listened = server.listening_after;
        server.stop().await;
        match answer {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("no health answer within 30 s".into()),
        }
        first_rpc.push(elapsed);
        listening.push(listened);
    }
    first_rpc.sort();
    listening.sort();
    Ok(ColdReport {
        target,
        first_rpc,
        listening,
    })
}

/// Prints the cold-start figures.
pub fn print(r: &ColdReport) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "cold start {} — exec to first answered RPC: median {:.1} ms (min {:.1}, max {:.1}; exec to listening: median {:.1} ms), {} runs",
        r.target,
        ms(r.median()),
        ms(r.first_rpc.first().copied().unwrap_or_default()),
        ms(r.first_rpc.last().copied().unwrap_or_default()),
        ms(median(&r.listening)),
        r.first_rpc.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[ms(1), ms(2), ms(9)]), ms(2));
        assert_eq!(median(&[ms(1), ms(3)]), ms(2));
        assert_eq!(median(&[]), Duration::ZERO);
    }
}
