//! The systems under test, each run as its own process on `127.0.0.1:0`: the real
//! `tapline-server` on a scratch SQLite file or a scratch PostgreSQL database, or the bare relay
//! (this binary's hidden `relay-server` command). The listen address comes from the JSON log
//! line whose `fields.listen` holds it; the rest of stderr is kept for the report.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::mix::Delivered;
use crate::procfs;

/// How long a process gets to say where it listens (migrations included).
const START_PATIENCE: Duration = Duration::from_secs(60);
/// How long a process gets to exit after SIGTERM before it is killed.
const STOP_PATIENCE: Duration = Duration::from_secs(15);
/// Log lines kept for the report.
const KEPT_LINES: usize = 20;
/// How long a stopped server's PostgreSQL backends get to exit before its deadlocks are read.
const BACKENDS_PATIENCE: Duration = Duration::from_secs(5);

/// `warn` everywhere, except the start-up lines (target `tapline_server`, which carry the
/// listen address) and the shutdown lines; the per-request modules that log at `info`
/// (account creation, linking, pairing) stay at `warn`. The tap path logs nothing below warn.
const SERVER_LOG_FILTER: &str =
    "warn,tapline_server=info,tapline_server::accounts=warn,tapline_server::pairing=warn";

/// What a run is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Target {
    /// `tapline-server` on a fresh SQLite file.
    Sqlite,
    /// `tapline-server` on a fresh PostgreSQL database.
    Postgres,
    /// The bare tonic relay: same transport, in-memory fan-out, no database.
    Relay,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Sqlite => "sqlite",
            Target::Postgres => "postgres",
            Target::Relay => "relay",
        })
    }
}

/// Where the binaries and the PostgreSQL admin connection are.
#[derive(Debug, Clone)]
pub struct Env {
    /// The `tapline-server` binary.
    pub server_bin: PathBuf,
    /// This binary (started again as the relay).
    pub self_bin: PathBuf,
    /// Admin connection used to create and drop scratch databases.
    pub postgres_admin_url: String,
}

impl Env {
    /// Finds the server binary: the one given, else `tapline-server` next to this executable.
    pub fn locate(server_bin: Option<PathBuf>, postgres_admin_url: String) -> Result<Env, String> {
        let self_bin =
            std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let server_bin = match server_bin {
            Some(p) => p,
            None => self_bin
                .parent()
                .map(|d| d.join("tapline-server"))
                .unwrap_or_else(|| PathBuf::from("tapline-server")),
        };
        Ok(Env {
            server_bin,
            self_bin,
            postgres_admin_url,
        })
    }

    /// Fails with a hint when the server binary is missing (only needed for real targets).
    pub fn check_server_bin(&self) -> Result<(), String> {
        if self.server_bin.is_file() {
            Ok(())
        } else {
            Err(format!(
                "{} not found: build it first (cargo build --release -p tapline-server) or pass --server-bin",
                self.server_bin.display()
            ))
        }
    }

    /// Whether the PostgreSQL admin connection works (tried for at most 5 s).
    pub async fn postgres_reachable(&self) -> Result<(), String> {
        let connect = sqlx::PgConnection::connect(&self.postgres_admin_url);
        match tokio::time::timeout(Duration::from_secs(5), connect).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                Ok(())
            }
            Ok(Err(e)) => Err(format!(
                "PostgreSQL at {} unreachable: {e}",
                self.postgres_admin_url
            )),
            Err(_) => Err(format!(
                "PostgreSQL at {} did not answer within 5 s",
                self.postgres_admin_url
            )),
        }
    }
}

/// A database made for one server process and removed after it.
#[derive(Debug)]
enum Scratch {
    Dir(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl Scratch {
    /// Makes the scratch database and returns it with the URL the server gets.
    async fn create(env: &Env, target: Target) -> Result<Option<(Scratch, String)>, String> {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        match target {
            Target::Relay => Ok(None),
            Target::Sqlite => {
                let dir = std::env::temp_dir().join(format!("tapline-bench-{tag}"));
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("create {}: {e}", dir.display()))?;
                let url = format!("sqlite://{}/x.db", dir.display());
                Ok(Some((Scratch::Dir(dir), url)))
            }
            Target::Postgres => {
                let admin_url = env.postgres_admin_url.clone();
                let name = format!("tapline_bench_{tag}");
                let mut admin = admin(&admin_url).await?;
                // The name is ours: a fixed prefix and hex digits.
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .map_err(|e| format!("create database {name}: {e}"))?;
                let _ = admin.close().await;
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(b, _)| b);
                let url = format!("{base}/{name}");
                Ok(Some((Scratch::Postgres { admin_url, name }, url)))
            }
        }
    }

    /// Removes the database; for PostgreSQL, first reads its deadlock count once the server's
    /// backends are gone (a backend publishes its statistics when it exits).
    async fn remove(self) -> Option<u64> {
        match self {
            Scratch::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
                None
            }
            Scratch::Postgres { admin_url, name } => {
                let mut admin = admin(&admin_url).await.ok()?;
                let deadline = Instant::now() + BACKENDS_PATIENCE;
                while Instant::now() < deadline {
                    let left: Result<i64, _> = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1",
                    )
                    .bind(&name)
                    .fetch_one(&mut admin)
                    .await;
                    if !matches!(left, Ok(1..)) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let deadlocks = deadlocks(&mut admin, &name).await;
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await;
                let _ = admin.close().await;
                deadlocks
            }
        }
    }
}

/// An admin connection to PostgreSQL (tried for at most 30 s).
async fn admin(url: &str) -> Result<sqlx::PgConnection, String> {
    tokio::time::timeout(Duration::from_secs(30), sqlx::PgConnection::connect(url))
        .await
        .map_err(|_| format!("PostgreSQL at {url} did not answer within 30 s"))?
        .map_err(|e| format!("PostgreSQL at {url}: {e}"))
}

/// `deadlock detected` errors PostgreSQL has counted in database `name` so far.
async fn deadlocks(admin: &mut sqlx::PgConnection, name: &str) -> Option<u64> {
    let n: Option<i64> =
        sqlx::query_scalar("SELECT deadlocks FROM pg_stat_database WHERE datname = $1")
            .bind(name)
            .fetch_optional(admin)
            .await
            .ok()?;
    Some(n.unwrap_or(0).max(0) as u64)
}

/// What a process wrote to stderr besides its listen line.
#[derive(Debug, Default)]
struct LogSink {
    /// Lines at WARN or ERROR, or not JSON at all (a panic message, say).
    notable: u64,
    kept: Vec<String>,
}

impl LogSink {
    fn take_line(&mut self, line: &str, parsed: Option<&serde_json::Value>) {
        let level = parsed
            .and_then(|v| v.get("level"))
            .and_then(|l| l.as_str())
            .unwrap_or("");
        let notable = parsed.is_none() || matches!(level, "WARN" | "ERROR");
        if notable {
            self.notable += 1;
            if self.kept.len() < KEPT_LINES {
                self.kept.push(line.to_owned());
            }
        }
    }
}

/// A server process under test.
pub struct Server {
    /// What it is.
    pub target: Target,
    /// Where it listens.
    pub addr: SocketAddr,
    /// When it was spawned.
    pub spawned_at: Instant,
    /// From spawn to its listen line (for SQLite and PostgreSQL: migrations included).
    pub listening_after: Duration,
    /// The database URL the server was given (none for the relay).
    pub database_url: Option<String>,
    child: Child,
    scratch: Option<Scratch>,
    log: Arc<Mutex<LogSink>>,
}

/// How a server process ended.
#[derive(Debug)]
pub struct Stopped {
    /// Its exit status (`None` when it had to be killed).
    pub status: Option<ExitStatus>,
    /// WARN/ERROR (or non-JSON) lines it wrote.
    pub notable_lines: u64,
    /// The first of them.
    pub kept: Vec<String>,
    /// For PostgreSQL: deadlocks its database counted over the server's life
    /// (`pg_stat_database`), read after its backends exited.
    pub deadlocks: Option<u64>,
}

impl Server {
    /// Starts `target` on a fresh database and waits for its listen address. The relay
    /// derives DELIVERED receipts as `delivered` says (the server decides on its own).
    pub async fn start(env: &Env, target: Target, delivered: Delivered) -> Result<Server, String> {
        Server::start_with(env, target, delivered, &[]).await
    }

    /// [`Server::start`], with `extra` flags for `tapline-server` (not the relay).
    pub async fn start_with(
        env: &Env,
        target: Target,
        delivered: Delivered,
        extra: &[std::ffi::OsString],
    ) -> Result<Server, String> {
        let scratch = Scratch::create(env, target).await?;
        let database_url = scratch.as_ref().map(|(_, url)| url.clone());
        let mut cmd = match &scratch {
            None => {
                let mut c = Command::new(&env.self_bin);
                c.args(["relay-server", "--listen", "127.0.0.1:0", "--delivered"])
                    .arg(delivered.to_string());
                c
            }
            Some((_, url)) => {
                let mut c = Command::new(&env.server_bin);
                c.args([
                    "--listen",
                    "127.0.0.1:0",
                    "--database-url",
                    url,
                    "--taps-per-minute",
                    "100000",
                    "--log-format",
                    "json",
                    "--drain-secs",
                    "1",
                ])
                .args(extra)
                .env("TAPLINE_LOG", SERVER_LOG_FILTER);
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // No pre-exec hook (such as a parent-death signal): with one, std must fork the whole
        // bench (page tables of every idle stream it holds) instead of using posix_spawn, and
        // that cost would land in the cold-start figures. Children are stopped on every path
        // out of a run, killed on drop, and share the terminal's process group for Ctrl-C.
        let spawned_at = Instant::now();
        let spawn = cmd.spawn();
        let scratch = scratch.map(|(s, _)| s);
        let mut child = match spawn {
            Ok(c) => c,
            Err(e) => {
                if let Some(s) = scratch {
                    let _ = s.remove().await;
                }
                return Err(format!("start {target}: {e}"));
            }
        };
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(LogSink::default()));
        let (listen_tx, listen_rx) = tokio::sync::oneshot::channel::<SocketAddr>();
        let sink = log.clone();
        // A plain thread reads stderr to its end, so the process never blocks on a full pipe.
        std::thread::spawn(move || read_stderr(stderr, listen_tx, sink));

        let addr = match tokio::time::timeout(START_PATIENCE, listen_rx).await {
            Ok(Ok(addr)) => Ok(addr),
            Ok(Err(_)) => Err(format!("{target} exited before listening")),
            Err(_) => Err(format!(
                "{target} did not listen within {}s",
                START_PATIENCE.as_secs()
            )),
        };
        let listening_after = spawned_at.elapsed();
        let server = Server {
            target,
            addr: *addr
                .as_ref()
                .unwrap_or(&SocketAddr::from(([127, 0, 0, 1], 0))),
            spawned_at,
            listening_after,
            database_url,
            child,
            scratch,
            log,
        };
        match addr {
            Ok(_) => Ok(server),
            Err(e) => {
                let stopped = server.stop().await;
                Err(format!("{e}; its log: {}", stopped.kept.join("\n")))
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time the process has used so far (zero if unreadable).
    pub fn cpu_time(&self) -> Duration {
        procfs::cpu_time(self.pid()).unwrap_or_default()
    }

    /// For PostgreSQL: deadlocks its database has counted so far (`None` for the other targets
    /// or when unreadable). Recent ones may not be published yet; [`Server::stop`] reads the
    /// final count.
    pub async fn deadlocks(&self) -> Option<u64> {
        let Some(Scratch::Postgres { admin_url, name }) = &self.scratch else {
            return None;
        };
        let mut admin = admin(admin_url).await.ok()?;
        let n = deadlocks(&mut admin, name).await;
        let _ = admin.close().await;
        n
    }

    /// Current and peak resident memory (zero if unreadable).
    pub fn memory(&self) -> procfs::Memory {
        procfs::memory(self.pid()).unwrap_or_default()
    }

    /// Stops the process (SIGTERM, then SIGKILL after [`STOP_PATIENCE`]) and removes its
    /// database.
    pub async fn stop(mut self) -> Stopped {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill only sends a signal to our own child.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_PATIENCE;
        let mut status = None;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(s)) => {
                    status = Some(s);
                    break;
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(_) => break,
            }
        }
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let deadlocks = match self.scratch.take() {
            Some(s) => s.remove().await,
            None => None,
        };
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        Stopped {
            status,
            notable_lines: log.notable,
            kept: log.kept.clone(),
            deadlocks,
        }
    }
}

impl Drop for Server {
    /// A server left running by an error path is killed (its SQLite folder removed); a
    /// PostgreSQL scratch database needs `stop`.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(Scratch::Dir(dir)) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn read_stderr(
    stderr: std::process::ChildStderr,
    listen_tx: tokio::sync::oneshot::Sender<SocketAddr>,
    sink: Arc<Mutex<LogSink>>,
) {
    let mut listen_tx = Some(listen_tx);
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let parsed: Option<serde_json::Value> = serde_json::from_str(&line).ok();
        if let Some(addr) = parsed.as_ref().and_then(listen_address) {
            if let Some(tx) = listen_tx.take() {
                let _ = tx.send(addr);
            }
            continue;
        }
        sink.lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_line(&line, parsed.as_ref());
    }
}

/// The address in a JSON log line's `fields.listen`, if it has one.
pub fn listen_address(line: &serde_json::Value) -> Option<SocketAddr> {
    line.get("fields")?.get("listen")?.as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listen_line_gives_the_address() {
        let line: serde_json::Value = serde_json::from_str(
            r#"{"timestamp":"t","level":"INFO","fields":{"message":"serving","listen":"127.0.0.1:40123"},"target":"tapline_server"}"#,
        )
        .unwrap();
        assert_eq!(
            listen_address(&line),
            Some("127.0.0.1:40123".parse().unwrap())
        );
        let other: serde_json::Value =
            serde_json::from_str(r#"{"level":"INFO","fields":{"message":"database ready"}}"#)
                .unwrap();
        assert_eq!(listen_address(&other), None);
    }

    #[test]
    fn warnings_and_raw_lines_are_kept() {
        let mut sink = LogSink::default();
        let warn: serde_json::Value = serde_json::from_str(r#"{"level":"WARN"}"#).unwrap();
        let info: serde_json::Value = serde_json::from_str(r#"{"level":"INFO"}"#).unwrap();
        sink.take_line("w", Some(&warn));
        sink.take_line("i", Some(&info));
        sink.take_line("thread 'main' panicked", None);
        assert_eq!(sink.notable, 2);
        assert_eq!(sink.kept, vec!["w", "thread 'main' panicked"]);
    }
}
