//! Command-line flags, each with an environment fallback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::Settings;

/// The Tapline server: taps and check-ins between partners' phones and watches.
#[derive(Debug, Parser)]
#[command(name = "tapline-server", version, about)]
pub struct Config {
    /// Run something else than the server.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on for gRPC, gRPC-Web and HTTP/1.1.
    #[arg(
        long,
        env = "TAPLINE_LISTEN",
        default_value = "127.0.0.1:50051",
        global = true
    )]
    pub listen: SocketAddr,

    /// TLS certificate chain (PEM) for the listener; needs --tls-key. Reloaded on SIGHUP and
    /// when the file changes, without closing open connections. Unset: plain TCP.
    #[arg(long, env = "TAPLINE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM: PKCS#8, RSA or SEC1) belonging to --tls-cert.
    #[arg(long, env = "TAPLINE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve plain TCP on a non-loopback --listen address (TLS terminated by a proxy on
    /// a private network). Without it, such an address needs --tls-cert.
    #[arg(long, env = "TAPLINE_ALLOW_PLAINTEXT")]
    pub allow_plaintext: bool,

    /// Address for Prometheus metrics (`GET /metrics`), e.g. 127.0.0.1:9090. Unset: none.
    #[arg(long, env = "TAPLINE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Reverse proxies (addresses or CIDRs, comma-separated in the variable) whose
    /// `Forwarded`/`X-Forwarded-For` headers name the client for rate limits. Unset: the
    /// headers are ignored and the peer address is the client.
    #[arg(long = "trusted-proxy", env = "TAPLINE_TRUSTED_PROXIES", value_delimiter = ',', num_args = 1..)]
    pub trusted_proxies: Vec<String>,

    /// Database URL: `sqlite://PATH` or `postgres://USER@HOST/DB`. Defaults to a SQLite file
    /// `tapline.db` in the data directory, created on first start.
    #[arg(long, env = "TAPLINE_DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// Folder for the default SQLite database. Defaults to `$XDG_DATA_HOME/tapline`, else
    /// `~/.local/share/tapline`.
    #[arg(long, env = "TAPLINE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, env = "TAPLINE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Taps one account may send per minute before RESOURCE_EXHAUSTED.
    #[arg(long, env = "TAPLINE_TAPS_PER_MINUTE", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub taps_per_minute: u32,

    /// Seconds between heartbeats on an idle event stream.
    #[arg(long, env = "TAPLINE_HEARTBEAT_SECS", default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub heartbeat_secs: u64,

    /// Seconds open streams and calls get to finish on SIGINT/SIGTERM.
    #[arg(long, env = "TAPLINE_DRAIN_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub drain_secs: u64,

    /// Accept Web Push endpoints on loopback or private addresses and plain http (a push
    /// distributor on your own network). Off: only public https endpoints.
    #[arg(long, env = "TAPLINE_PUSH_ALLOW_PRIVATE_ENDPOINTS")]
    pub push_allow_private_endpoints: bool,

    /// Web Push: a file holding the VAPID private key (P-256, PKCS#8 PEM), e.g. made with
    /// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`. Unset: no Web Push.
    #[arg(long, env = "TAPLINE_VAPID_KEY_FILE", requires = "vapid_subject")]
    pub vapid_key_file: Option<PathBuf>,

    /// Web Push: who runs this server, for push services (`mailto:you@example.net`).
    #[arg(long, env = "TAPLINE_VAPID_SUBJECT", requires = "vapid_key_file")]
    pub vapid_subject: Option<String>,

    /// APNs: the `.p8` provider key file from the Apple developer account. Needs
    /// --apns-key-id and --apns-team-id. Unset: no APNs (unless through --push-gateway-url).
    #[arg(long, env = "TAPLINE_APNS_KEY_FILE", requires_all = ["apns_key_id", "apns_team_id"], global = true)]
    pub apns_key_file: Option<PathBuf>,

    /// APNs: the key's id (10 characters).
    #[arg(long, env = "TAPLINE_APNS_KEY_ID", global = true)]
    pub apns_key_id: Option<String>,

    /// APNs: the team id (10 characters).
    #[arg(long, env = "TAPLINE_APNS_TEAM_ID", global = true)]
    pub apns_team_id: Option<String>,

    /// APNs: a base URL instead of Apple's two hosts (a proxy or a local fake; `http://` is
    /// spoken as h2c).
    #[arg(long, env = "TAPLINE_APNS_URL", global = true)]
    pub apns_url: Option<String>,

    /// FCM: the service-account JSON file from the Firebase console (its `token_uri` is
    /// used for OAuth2). Unset: no FCM (unless through --push-gateway-url).
    #[arg(long, env = "TAPLINE_FCM_SERVICE_ACCOUNT_FILE", global = true)]
    pub fcm_service_account_file: Option<PathBuf>,

    /// FCM: a base URL instead of `https://fcm.googleapis.com` (a local fake).
    #[arg(long, env = "TAPLINE_FCM_URL", global = true)]
    pub fcm_url: Option<String>,

    /// Send APNs and FCM wake-ups through the push gateway at this URL (the app publisher's
    /// `tapline-server gateway`) instead of holding those credentials here.
    #[arg(
        long,
        env = "TAPLINE_PUSH_GATEWAY_URL",
        requires = "push_gateway_key_file"
    )]
    pub push_gateway_url: Option<String>,

    /// A file holding this server's key for the push gateway (`tapline-server gateway-key`
    /// makes one).
    #[arg(
        long,
        env = "TAPLINE_PUSH_GATEWAY_KEY_FILE",
        requires = "push_gateway_url"
    )]
    pub push_gateway_key_file: Option<PathBuf>,

    /// Seconds between retention passes (acked inbox rows, used and expired codes, tap
    /// history beyond --tap-history-days); 0 turns retention off.
    #[arg(long, env = "TAPLINE_PRUNE_INTERVAL_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub prune_interval_secs: u64,

    /// Days of tap history (taps and their receipts) to keep; 0 keeps it forever.
    #[arg(long, env = "TAPLINE_TAP_HISTORY_DAYS", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=36_500))]
    pub tap_history_days: u32,
}

/// What to run instead of the server.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a push gateway: hold the APNs key and FCM service account (the --apns-* and
    /// --fcm-* flags) and send the wake-ups of the servers whose keys are listed.
    Gateway {
        /// A file of accepted server keys' SHA-256 hashes, one per line (a name may come
        /// first; `#` starts a comment).
        #[arg(long, env = "TAPLINE_GATEWAY_KEYS_FILE")]
        gateway_keys_file: PathBuf,
    },
    /// Print a new random server key for a push gateway, and the line for the gateway's
    /// keys file.
    GatewayKey,
    /// Write a consistent copy of the SQLite database to a new file while the server may be
    /// running (on PostgreSQL, use pg_dump instead).
    Backup {
        /// The file to create; an existing file is never overwritten.
        #[arg(long, env = "TAPLINE_BACKUP_TO")]
        to: PathBuf,
    },
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// The database URL to use, filling in the SQLite default.
    pub fn database_url(&self) -> String {
        if let Some(url) = &self.database_url {
            return url.clone();
        }
        let dir = self.data_dir.clone().unwrap_or_else(default_data_dir);
        format!("sqlite://{}", dir.join("tapline.db").display())
    }

    /// Server tunables from the flags (reads the VAPID key file, if one is named).
    pub fn settings(&self) -> crate::Result<Settings> {
        let read = |flag: &str, path: &PathBuf| {
            std::fs::read_to_string(path)
                .map_err(|e| crate::Error::Config(format!("--{flag} {}: {e}", path.display())))
        };
        let web_push = match (&self.vapid_key_file, &self.vapid_subject) {
            (Some(path), Some(subject)) => Some(crate::state::VapidKey {
                pem: read("vapid-key-file", path)?,
                subject: subject.clone(),
            }),
            _ => None,
        };
        let apns = match (&self.apns_key_file, &self.apns_key_id, &self.apns_team_id) {
            (Some(path), Some(key_id), Some(team_id)) => Some((
                crate::apns::ApnsKey {
                    pem: read("apns-key-file", path)?,
                    key_id: key_id.clone(),
                    team_id: team_id.clone(),
                },
                self.apns_url.clone(),
            )),
            _ => None,
        };
        let fcm = match &self.fcm_service_account_file {
            Some(path) => Some((
                read("fcm-service-account-file", path)?,
                self.fcm_url.clone(),
            )),
            None => None,
        };
        let push_gateway = match (&self.push_gateway_url, &self.push_gateway_key_file) {
            (Some(url), Some(path)) => Some((url.clone(), read("push-gateway-key-file", path)?)),
            _ => None,
        };
        Ok(Settings {
            apns,
            fcm,
            push_gateway,
            taps_per_minute: self.taps_per_minute,
            heartbeat: Duration::from_secs(self.heartbeat_secs),
            drain: Duration::from_secs(self.drain_secs),
            trusted_proxies: crate::proxy::TrustedProxies::parse(&self.trusted_proxies)?,
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(crate::tls::Certificates::load(cert, key)?),
                _ => None,
            },
            push_allow_private_endpoints: self.push_allow_private_endpoints,
            web_push,
            prune_every: (self.prune_interval_secs > 0)
                .then(|| Duration::from_secs(self.prune_interval_secs)),
            tap_history_days: self.tap_history_days,
            ..Settings::default()
        })
    }
}

/// Refuses plain TCP on an address other machines can reach, unless allowed.
pub fn check_listener(listen: SocketAddr, tls: bool, allow_plaintext: bool) -> crate::Result<()> {
    if tls || allow_plaintext || listen.ip().is_loopback() {
        return Ok(());
    }
    Err(crate::Error::Config(format!(
        "--listen {listen} is reachable from other machines: give --tls-cert and --tls-key, \
         or --allow-plaintext when a TLS proxy on a private network is in front"
    )))
}

fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("tapline");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/share/tapline"),
        None => PathBuf::from("tapline-data"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_default() {
        let c = Config::try_parse_from(["tapline-server", "--data-dir", "/tmp/tl"]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(c.database_url(), "sqlite:///tmp/tl/tapline.db");
        assert_eq!(c.settings().unwrap().taps_per_minute, 60);
        assert!(Config::try_parse_from(["tapline-server", "--log-format", "xml"]).is_err());
        assert!(Config::try_parse_from(["tapline-server", "--taps-per-minute", "0"]).is_err());
    }

    #[test]
    fn plain_tcp_is_for_loopback_unless_allowed() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(check_listener(at("127.0.0.1:50051"), false, false).is_ok());
        assert!(check_listener(at("[::1]:50051"), false, false).is_ok());
        let e = check_listener(at("0.0.0.0:50051"), false, false).unwrap_err();
        assert!(e.to_string().contains("--tls-cert"), "{e}");
        assert!(check_listener(at("0.0.0.0:50051"), true, false).is_ok());
        assert!(check_listener(at("10.1.2.3:50051"), false, true).is_ok());
    }

    #[test]
    fn proxies_and_tls_flags_need_their_pairs() {
        let c = Config::try_parse_from(["tapline-server", "--trusted-proxy", "10.0.0.0/8,::1"])
            .unwrap();
        assert_eq!(c.trusted_proxies, ["10.0.0.0/8", "::1"]);
        let bad = Config::try_parse_from(["tapline-server", "--trusted-proxy", "nope"]).unwrap();
        assert!(bad.settings().is_err());
        assert!(Config::try_parse_from(["tapline-server", "--tls-cert", "c.pem"]).is_err());
    }
}
