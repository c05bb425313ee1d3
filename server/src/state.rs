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
    /// Reverse proxies whose `Forwarded`/`X-Forwarded-For` headers name the client (the
    /// rate-limit key); empty: the peer address is the client.
    pub trusted_proxies: crate::proxy::TrustedProxies,
    /// TLS on the listener (certificate and key, reloadable); `None`: plain TCP.
    pub tls: Option<std::sync::Arc<crate::tls::Certificates>>,
    /// How often the background jobs (routines, check-in expiry) run; `None` runs none (tests
    /// call [`jobs::tick`] themselves).
    pub jobs_every: Option<Duration>,
    /// Accept Web Push endpoints on loopback or private addresses, and plain http (a push
    /// distributor on the LAN, local fakes in tests). Off by default.
    pub push_allow_private_endpoints: bool,
    /// Web Push: the VAPID key to sign with; `None` sends no Web Push.
    pub web_push: Option<VapidKey>,
    /// How often the push worker looks for due wake-ups besides being woken by commits
    /// (retries, other instances' jobs).
    pub push_every: Duration,
    /// APNs: the provider key, and a base URL instead of Apple's (a local fake).
    pub apns: Option<(crate::apns::ApnsKey, Option<String>)>,
    /// FCM: the service-account file's text, and a base URL instead of Google's.
    pub fcm: Option<(String, Option<String>)>,
    /// A push gateway for APNs and FCM (URL, this server's key), instead of holding the
    /// credentials here.
    pub push_gateway: Option<(String, String)>,
    /// How often retention prunes ([`crate::retention`]); `None` never (tests call
    /// [`crate::retention::prune`] themselves).
    pub prune_every: Option<Duration>,
    /// Days of tap history (taps and their receipts) to keep; 0 keeps it forever.
    pub tap_history_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            taps_per_minute: 60,
            code_attempts_per_15_min: 10,
            heartbeat: stream::DEFAULT_HEARTBEAT,
            drain: Duration::from_secs(5),
            trusted_proxies: Default::default(),
            tls: None,
            jobs_every: Some(Duration::from_secs(1)),
            push_allow_private_endpoints: false,
            web_push: None,
            push_every: Duration::from_millis(500),
            apns: None,
            fcm: None,
            push_gateway: None,
            prune_every: Some(crate::retention::DEFAULT_EVERY),
            tap_history_days: 0,
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
    /// Every configured push sender, by provider.
    pub push: crate::push_outbox::Providers,
    /// Per provider: false while it refuses this server's credentials (health details).
    pub push_health: PushHealth,
    /// Counters and histograms for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
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
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let writer = Writer::start(db.clone(), doorbell.clone(), metrics.clone()).await?;
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
        let (push, push_health) =
            providers(&settings, web_push.clone(), &db, &writer, clock.clone())?;
        Ok(AppState {
            metrics,
            web_push,
            push,
            push_health,
            writer,
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
            metrics: self.metrics.clone(),
        }
    }
}

/// Health of each push sender, by name.
pub type PushHealth = Vec<(&'static str, tokio::sync::watch::Receiver<bool>)>;

/// The push senders the settings ask for. APNs is direct or through the gateway, never both;
/// the provider token is shared through the database.
fn providers(
    settings: &Settings,
    web_push: Option<Arc<crate::webpush::WebPush>>,
    db: &Db,
    writer: &Writer,
    clock: Arc<dyn Clock>,
) -> Result<(crate::push_outbox::Providers, PushHealth)> {
    use crate::push_outbox::Pusher;
    let mut out = crate::push_outbox::Providers {
        web_push: web_push.map(|w| w as Arc<dyn Pusher>),
        ..Default::default()
    };
    let mut health = PushHealth::new();
    if let Some((url, key)) = &settings.push_gateway {
        if settings.apns.is_some() || settings.fcm.is_some() {
            return Err(crate::Error::Config(
                "--push-gateway-url sends APNs and FCM through the gateway: drop the APNs and \
                 FCM credentials here (they belong on the gateway)"
                    .into(),
            ));
        }
        let gw: Arc<dyn Pusher> = Arc::new(crate::gateway::GatewayPusher::new(url, key)?);
        out.apns = Some(gw.clone());
        out.fcm = Some(gw);
        return Ok((out, health));
    }
    let home = crate::apns::TokenHome::Shared {
        pool: db.pool().clone(),
        writer: writer.clone(),
    };
    direct_providers(settings, home, clock, &mut out, &mut health)?;
    Ok((out, health))
}

/// The APNs and FCM senders that hold their credentials here (a server, or a gateway with
/// the provider token in `home`), added to `out` with their health.
pub fn direct_providers(
    settings: &Settings,
    home: crate::apns::TokenHome,
    clock: Arc<dyn Clock>,
    out: &mut crate::push_outbox::Providers,
    health: &mut PushHealth,
) -> Result<()> {
    if let Some((key, url)) = &settings.apns {
        let tokens = crate::apns::ProviderTokens::new(key, home, clock.clone())?;
        let apns = crate::apns::Apns::new(tokens, url.as_deref(), clock.clone())?;
        health.push(("tapline.push.apns", apns.health()));
        out.apns = Some(Arc::new(apns));
    }
    if let Some((account, url)) = &settings.fcm {
        let account = crate::fcm::ServiceAccount::parse(account)?;
        let fcm = crate::fcm::Fcm::new(account, url.as_deref(), clock)?;
        health.push(("tapline.push.fcm", fcm.health()));
        out.fcm = Some(Arc::new(fcm));
    }
    Ok(())
}
