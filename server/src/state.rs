//! What a running server shares between its handlers: the database, the group commit, the
//! doorbell, the clock, limits and settings.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::auth::TokenCache;
use crate::clock::Clock;
use crate::commit::Writer;
use crate::db::Db;
use crate::delivery::doorbell::Doorbell;
use crate::delivery::stream::{self, Streams};
use crate::error::Result;
use crate::ratelimit::RateLimiter;

/// Largest request message accepted, in bytes.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Tunables of a running server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Taps one account may send per minute.
    pub taps_per_minute: u32,
    /// Invite or link-code attempts per key per 15 minutes.
    pub code_attempts_per_15_min: u32,
    /// Interval between heartbeats on an idle stream.
    pub heartbeat: Duration,
    /// How long open streams and calls may take to finish at shutdown.
    pub drain: Duration,
    /// How often the background jobs (routines, check-in expiry) run; `None` runs none (tests
    /// call [`jobs::tick`] themselves).
    pub jobs_every: Option<Duration>,
    /// Accept Web Push endpoints on loopback or private addresses, and plain http (a push
    /// distributor on the LAN, local fakes in tests). Off by default.
    pub push_allow_private_endpoints: bool,
    /// Web Push: the VAPID key to sign with; `None` sends no Web Push.
    pub web_push: Option<VapidKey>,
    /// How often the push worker looks for due wake-ups.
    pub push_every: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            taps_per_minute: 60,
            code_attempts_per_15_min: 10,
            heartbeat: stream::DEFAULT_HEARTBEAT,
            drain: Duration::from_secs(5),
            jobs_every: Some(Duration::from_secs(1)),
            push_allow_private_endpoints: false,
            web_push: None,
            push_every: Duration::from_millis(500),
        }
    }
}

/// A VAPID signing key and the subject it names. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct VapidKey {
    /// The private key (P-256, PKCS#8 PEM).
    pub pem: String,
    /// Who runs the server: `mailto:` or `https:`.
    pub subject: String,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// The rate limiters.
#[derive(Debug)]
pub struct Limits {
    /// Taps per account.
    pub taps: RateLimiter,
    /// Invite and link-code attempts.
    pub code_guesses: RateLimiter,
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The source of "now".
    pub clock: Arc<dyn Clock>,
    /// Rings live streams after commit.
    pub doorbell: Doorbell,
    /// Rate limiters.
    pub limits: Arc<Limits>,
    /// Tunables.
    pub settings: Arc<Settings>,
    /// Cancelled when the server starts draining.
    pub shutdown: CancellationToken,
    /// The group commit: the only writer.
    pub writer: Writer,
    /// Recently resolved bearer tokens.
    pub tokens: Arc<TokenCache>,
    /// The Web Push sender, when configured.
    pub web_push: Option<Arc<crate::webpush::WebPush>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.db)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over an open database, a clock and settings; starts the group commit, which
    /// fails at once when the database cannot be opened for writing.
    pub async fn new(db: Db, clock: Arc<dyn Clock>, settings: Settings) -> Result<Self> {
        let limits = Limits {
            taps: RateLimiter::new(settings.taps_per_minute, Duration::from_secs(60)),
            code_guesses: RateLimiter::new(
                settings.code_attempts_per_15_min,
                Duration::from_secs(15 * 60),
            ),
        };
        let doorbell = Doorbell::default();
        let web_push = settings
            .web_push
            .as_ref()
            .map(|k| {
                crate::webpush::WebPush::new(
                    &k.pem,
                    &k.subject,
                    settings.push_allow_private_endpoints,
                )
            })
            .transpose()?
            .map(Arc::new);
        Ok(AppState {
            web_push,
            writer: Writer::start(db.clone(), doorbell.clone()).await?,
            tokens: Default::default(),
            db,
            clock,
            doorbell,
            limits: Arc::new(limits),
            settings: Arc::new(settings),
            shutdown: CancellationToken::new(),
        })
    }

    /// What live streams need.
    pub fn streams(&self) -> Streams {
        Streams {
            pool: self.db.pool().clone(),
            doorbell: self.doorbell.clone(),
            clock: self.clock.clone(),
            heartbeat: self.settings.heartbeat,
            shutdown: self.shutdown.clone(),
        }
    }
}
