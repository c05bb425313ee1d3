//! APNs over HTTP/2 with an ES256 provider token (a `.p8` key, its key id and the team id).
//!
//! One long-lived HTTP/2 connection per APNs host carries every push. The provider token is
//! kept in the database with its issue time ([`ProviderTokens`]), so every instance on one
//! PostgreSQL signs with the same token and only one of them renews it, after
//! [`TOKEN_REFRESH`] (Apple takes a new token at most every 20 minutes and refuses one older
//! than an hour). What a push contains is built by [`request`]: a localizable key and its
//! arguments for a partner's tap, or a background wake-up; never a note, an answer or a prompt.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jwt_simple::prelude::*;
use serde_json::json;
use sqlx::Row;
use tapline_proto::v1 as pb;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::commit::Writer;
use crate::db::to_us;
use crate::domain::push::Target;
use crate::error::{Error, Result};
use crate::push_outbox::{MISCONFIGURED_RETRY, PushJob, PushOutcome, Pusher, backoff, http_client};

/// Apple's production host.
pub const PRODUCTION_URL: &str = "https://api.push.apple.com";
/// Apple's development host.
pub const SANDBOX_URL: &str = "https://api.sandbox.push.apple.com";
/// A provider token is renewed once it is this old (Apple: between 20 and 60 minutes).
pub const TOKEN_REFRESH: Duration = Duration::from_secs(40 * 60);
/// Apple refuses a new token sooner than this after the last one.
pub const TOKEN_MIN_AGE: Duration = Duration::from_secs(20 * 60);
/// How long APNs keeps an undelivered push (`apns-expiration`).
pub const EXPIRATION: Duration = Duration::from_secs(12 * 60 * 60);
/// Deadline of one push.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// The provider key: the `.p8` file's PEM, its key id and the team id.
#[derive(Clone)]
pub struct ApnsKey {
    /// The P-256 private key (PKCS#8 PEM, as Apple's `.p8` file holds it).
    pub pem: String,
    /// The key's id (10 characters, from the developer account).
    pub key_id: String,
    /// The team id (10 characters).
    pub team_id: String,
}

impl std::fmt::Debug for ApnsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApnsKey")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .finish_non_exhaustive()
    }
}

/// Where a provider token is kept.
pub enum TokenHome {
    /// In the database, shared by every instance on it.
    Shared {
        /// For reading the current token.
        pool: sqlx::AnyPool,
        /// For writing a new one.
        writer: Writer,
    },
    /// In this process only (a gateway without a database).
    Local,
}

/// The provider token: made, stored, shared and renewed.
pub struct ProviderTokens {
    key: ES256KeyPair,
    team_id: String,
    name: String,
    home: TokenHome,
    clock: Arc<dyn Clock>,
    cache: Mutex<Option<(String, i64)>>,
}

impl ProviderTokens {
    /// Tokens signed with `key`, kept in `home`.
    pub fn new(key: &ApnsKey, home: TokenHome, clock: Arc<dyn Clock>) -> Result<ProviderTokens> {
        let pair = ES256KeyPair::from_pem(&key.pem)
            .map_err(|e| {
                Error::Config(format!(
                    "the APNs key (--apns-key-file) is not a P-256 private key ({e})"
                ))
            })?
            .with_key_id(&key.key_id);
        let id_ok = |s: &str| {
            !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_alphanumeric())
        };
        if !id_ok(&key.key_id) || !id_ok(&key.team_id) {
            return Err(Error::Config(
                "--apns-key-id and --apns-team-id must be the ids from the developer account \
                 (letters and digits)"
                    .into(),
            ));
        }
        Ok(ProviderTokens {
            key: pair,
            team_id: key.team_id.clone(),
            name: format!("apns:{}:{}", key.team_id, key.key_id),
            home,
            clock,
            cache: Mutex::new(None),
        })
    }

    /// The token to sign with now: the cached one while younger than [`TOKEN_REFRESH`], else
    /// the stored one if another instance renewed it, else a new one.
    pub async fn current(&self) -> Result<String> {
        self.get(TOKEN_REFRESH).await
    }

    /// After Apple called the token expired: renew it, unless it is younger than
    /// [`TOKEN_MIN_AGE`] (then the clock or the key is wrong, and renewing would not help).
    pub async fn renew(&self) -> Result<String> {
        self.get(TOKEN_MIN_AGE).await
    }

    async fn get(&self, max_age: Duration) -> Result<String> {
        let now = to_us(self.clock.now());
        let cutoff = now - max_age.as_micros() as i64;
        if let Some((token, at)) = self.cached()
            && at > cutoff
        {
            return Ok(token);
        }
        let (token, at) = match &self.home {
            TokenHome::Local => (self.make(now)?, now),
            TokenHome::Shared { pool, writer } => {
                let stored = sqlx::query(
                    "SELECT token, issued_at_us FROM provider_tokens WHERE provider = $1",
                )
                .bind(&self.name)
                .fetch_optional(pool)
                .await?;
                match stored {
                    Some(r) if r.try_get::<i64, _>("issued_at_us")? > cutoff => {
                        (r.try_get("token")?, r.try_get("issued_at_us")?)
                    }
                    _ => self.store(writer, self.make(now)?, now, cutoff).await?,
                }
            }
        };
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some((token.clone(), at));
        Ok(token)
    }

    fn cached(&self) -> Option<(String, i64)> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stores `token` unless another instance stored one newer than `cutoff` first; returns
    /// the one that is stored.
    async fn store(
        &self,
        writer: &Writer,
        token: String,
        now: i64,
        cutoff: i64,
    ) -> Result<(String, i64)> {
        let name = self.name.clone();
        writer
            .transact(move |tx| {
                Box::pin(async move {
                    let conn = tx.conn();
                    sqlx::query(
                        "INSERT INTO provider_tokens (provider, token, issued_at_us) \
                         VALUES ($1, $2, $3) ON CONFLICT (provider) DO UPDATE SET \
                         token = excluded.token, issued_at_us = excluded.issued_at_us \
                         WHERE provider_tokens.issued_at_us <= $4",
                    )
                    .bind(&name)
                    .bind(&token)
                    .bind(now)
                    .bind(cutoff)
                    .execute(&mut *conn)
                    .await?;
                    let r = sqlx::query(
                        "SELECT token, issued_at_us FROM provider_tokens WHERE provider = $1",
                    )
                    .bind(&name)
                    .fetch_one(&mut *conn)
                    .await?;
                    Ok((r.try_get("token")?, r.try_get("issued_at_us")?))
                })
            })
            .await
    }

    /// A new token: `{alg: ES256, kid}` and `{iss: team id, iat}`, as Apple asks (no expiry
    /// claim: Apple ages tokens by `iat`).
    fn make(&self, now_us: i64) -> Result<String> {
        let mut claims =
            Claims::create(jwt_simple::prelude::Duration::from_hours(1)).with_issuer(&self.team_id);
        claims.issued_at = Some(UnixTimeStamp::from_secs((now_us / 1_000_000) as u64));
        claims.expires_at = None;
        claims.invalid_before = None;
        self.key
            .sign(claims)
            .map_err(|e| Error::Config(format!("cannot sign an APNs provider token ({e})")))
    }
}

/// One push, ready to post.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `/3/device/<token>`.
    pub path: String,
    /// `apns-push-type`.
    pub push_type: &'static str,
    /// `apns-priority`: 10 for a user-visible alert, 5 for a background wake-up.
    pub priority: u8,
    /// `apns-collapse-id`: one notification per couple on the lock screen.
    pub collapse_id: Option<String>,
    /// The JSON body.
    pub body: serde_json::Value,
}

/// What to send `target` for `job`: an alert (priority 10, `mutable-content` so the app's
/// extension can fetch) for a partner's tap, passive and silent in the recipient's quiet
/// hours; else a background wake-up (priority 5). `None` when the device accepts neither.
pub fn request(job: &PushJob, target: &Target) -> Option<Request> {
    let accepts = |t: pb::ApnsPushType| target.push_types & (1 << t as i32) != 0;
    let path = format!("/3/device/{}", target.address);
    let collapse_id = (!job.couple_id.is_empty()).then(|| format!("tapline-{}", job.couple_id));
    match job.alert() {
        Some((loc_key, loc_args)) if accepts(pb::ApnsPushType::Alert) => {
            let mut aps = json!({
                "alert": { "loc-key": loc_key, "loc-args": loc_args },
                "mutable-content": 1,
                "interruption-level": if job.quiet { "passive" } else { "active" },
            });
            if let Some(c) = &collapse_id {
                aps["thread-id"] = json!(c);
            }
            if !job.quiet {
                aps["sound"] = json!("default");
            }
            Some(Request {
                path,
                push_type: "alert",
                priority: 10,
                collapse_id,
                body: json!({ "aps": aps, "seq": job.seq }),
            })
        }
        _ if accepts(pb::ApnsPushType::Background) => Some(Request {
            path,
            push_type: "background",
            priority: 5,
            collapse_id: None,
            body: json!({ "aps": { "content-available": 1 }, "seq": job.seq }),
        }),
        _ => None,
    }
}

/// What APNs's answer means: its status, its `reason` and, for 410, its `timestamp` (ms).
pub fn outcome(status: u16, reason: &str, timestamp_ms: Option<i64>, attempts: i64) -> PushOutcome {
    match (status, reason) {
        (200, _) => PushOutcome::Sent,
        (400, "BadDeviceToken" | "DeviceTokenNotForTopic") | (410, "ExpiredToken") => {
            PushOutcome::Gone
        }
        // Removed only if Apple's time is after the registration (checked when recorded).
        (410, _) => PushOutcome::GoneSince(timestamp_ms.map_or(i64::MAX, |ms| ms * 1000)),
        (403, _) => PushOutcome::Retry(MISCONFIGURED_RETRY),
        (429, _) | (500..=599, _) => PushOutcome::Retry(backoff(attempts)),
        // 400 (a bad payload or header), 404, 405, 413: this push will never be taken.
        _ => PushOutcome::Dropped,
    }
}

/// The APNs sender.
pub struct Apns {
    client: reqwest::Client,
    production: String,
    sandbox: String,
    tokens: ProviderTokens,
    clock: Arc<dyn Clock>,
    health: watch::Sender<bool>,
}

impl std::fmt::Debug for Apns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apns")
            .field("production", &self.production)
            .field("sandbox", &self.sandbox)
            .finish_non_exhaustive()
    }
}

impl Apns {
    /// A sender with `tokens`, posting to Apple (or to `url` for both environments: a local
    /// fake, spoken to over h2c when it is `http://`).
    pub fn new(tokens: ProviderTokens, url: Option<&str>, clock: Arc<dyn Clock>) -> Result<Apns> {
        let mut client = http_client(POST_TIMEOUT)
            .pool_idle_timeout(None)
            .http2_keep_alive_interval(Duration::from_secs(60))
            .http2_keep_alive_while_idle(true);
        if url.is_some_and(|u| u.starts_with("http://")) {
            client = client.http2_prior_knowledge();
        }
        let client = client
            .build()
            .map_err(|e| Error::Config(format!("cannot set up the APNs client ({e})")))?;
        let (production, sandbox) = match url {
            Some(u) => (
                u.trim_end_matches('/').to_owned(),
                u.trim_end_matches('/').to_owned(),
            ),
            None => (PRODUCTION_URL.to_owned(), SANDBOX_URL.to_owned()),
        };
        Ok(Apns {
            client,
            production,
            sandbox,
            tokens,
            clock,
            health: watch::channel(true).0,
        })
    }

    /// False while Apple refuses the provider credentials (403), true after a success.
    pub fn health(&self) -> watch::Receiver<bool> {
        self.health.subscribe()
    }

    async fn post(&self, job: &PushJob, target: &Target) -> PushOutcome {
        let Some(req) = request(job, target) else {
            return PushOutcome::Skipped;
        };
        let token = match self.tokens.current().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "no APNs provider token; retrying");
                return PushOutcome::Retry(backoff(job.attempts));
            }
        };
        let base = match target.environment {
            pb::ApnsEnvironment::Sandbox => &self.sandbox,
            _ => &self.production,
        };
        let expires = (self.clock.now() + EXPIRATION).timestamp();
        let mut post = self
            .client
            .post(format!("{base}{}", req.path))
            .bearer_auth(&token)
            .header("apns-topic", &target.topic)
            .header("apns-push-type", req.push_type)
            .header("apns-priority", req.priority.to_string())
            .header("apns-expiration", expires.to_string())
            .header("content-type", "application/json")
            .body(req.body.to_string());
        if let Some(c) = &req.collapse_id {
            post = post.header("apns-collapse-id", c);
        }
        let resp = match post.send().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "APNs unreachable; retrying");
                return PushOutcome::Retry(backoff(job.attempts));
            }
        };
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let reason = answer["reason"].as_str().unwrap_or_default();
        let outcome = outcome(status, reason, answer["timestamp"].as_i64(), job.attempts);
        if status == 403 {
            tracing::error!(
                reason,
                "APNs refused the provider credentials: check --apns-key-file, --apns-key-id, \
                 --apns-team-id and the topic; pushes wait"
            );
            self.health.send_replace(false);
            if reason == "ExpiredProviderToken"
                && let Err(e) = self.tokens.renew().await
            {
                tracing::warn!(error = %e, "cannot renew the APNs provider token");
            }
        } else if status == 200 {
            self.health.send_replace(true);
        } else if !matches!(outcome, PushOutcome::Retry(_)) {
            tracing::info!(status, reason, "APNs did not take a push");
        }
        outcome
    }
}

impl Pusher for Apns {
    fn send<'a>(
        &'a self,
        job: &'a PushJob,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = PushOutcome> + Send + 'a>> {
        Box::pin(async move {
            if target.provider != pb::PushProvider::Apns {
                return PushOutcome::Skipped;
            }
            self.post(job, target).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(urgent: bool, quiet: bool) -> PushJob {
        PushJob {
            device_id: "d".into(),
            seq: 7,
            urgent,
            attempts: 1,
            quiet,
            couple_id: "c1".into(),
            partner_name: "Sam".into(),
            tap_kind: Some(pb::TapKind::Heartbeat as i32),
            last_background_us: 0,
            targets: vec![],
        }
    }

    fn target(types: &[pb::ApnsPushType]) -> Target {
        Target {
            provider: pb::PushProvider::Apns,
            address: "ab".repeat(32),
            topic: "net.tapline.app".into(),
            environment: pb::ApnsEnvironment::Sandbox,
            push_types: types.iter().fold(0, |b, t| b | 1 << *t as i32),
            p256dh: vec![],
            auth: vec![],
        }
    }

    #[test]
    fn a_tap_is_an_alert_with_a_localizable_key_and_no_content() {
        let all = [pb::ApnsPushType::Alert, pb::ApnsPushType::Background];
        let r = request(&job(true, false), &target(&all)).unwrap();
        assert_eq!((r.push_type, r.priority), ("alert", 10));
        assert_eq!(r.collapse_id.as_deref(), Some("tapline-c1"));
        assert_eq!(r.body["aps"]["alert"]["loc-key"], "TAP_HEARTBEAT");
        assert_eq!(r.body["aps"]["alert"]["loc-args"], json!(["Sam"]));
        assert_eq!(r.body["aps"]["mutable-content"], 1);
        assert_eq!(r.body["aps"]["interruption-level"], "active");
        assert_eq!(r.body["aps"]["sound"], "default");
        assert_eq!(r.body["seq"], 7);

        let quiet = request(&job(true, true), &target(&all)).unwrap();
        assert_eq!(quiet.body["aps"]["interruption-level"], "passive");
        assert!(
            quiet.body["aps"].get("sound").is_none(),
            "no sound in quiet hours"
        );
    }

    #[test]
    fn a_sync_is_a_background_push_and_types_the_device_refuses_are_not_sent() {
        let bg = [pb::ApnsPushType::Background];
        let r = request(&job(false, false), &target(&bg)).unwrap();
        assert_eq!((r.push_type, r.priority), ("background", 5));
        assert_eq!(r.body["aps"]["content-available"], 1);
        assert!(r.collapse_id.is_none());
        // An alert-only device gets no background push; a background-only one a tap as one.
        assert!(request(&job(false, false), &target(&[pb::ApnsPushType::Alert])).is_none());
        assert_eq!(
            request(&job(true, false), &target(&bg)).unwrap().push_type,
            "background"
        );
    }

    #[test]
    fn apple_answers_map_to_outcomes() {
        assert_eq!(outcome(200, "", None, 1), PushOutcome::Sent);
        assert_eq!(outcome(400, "BadDeviceToken", None, 1), PushOutcome::Gone);
        assert_eq!(outcome(410, "ExpiredToken", None, 1), PushOutcome::Gone);
        assert_eq!(
            outcome(410, "Unregistered", Some(1_700_000_000_000), 1),
            PushOutcome::GoneSince(1_700_000_000_000_000)
        );
        assert_eq!(
            outcome(403, "InvalidProviderToken", None, 1),
            PushOutcome::Retry(MISCONFIGURED_RETRY)
        );
        assert_eq!(
            outcome(429, "TooManyRequests", None, 1),
            PushOutcome::Retry(backoff(1))
        );
        assert_eq!(
            outcome(503, "ServiceUnavailable", None, 2),
            PushOutcome::Retry(backoff(2))
        );
        assert_eq!(
            outcome(400, "PayloadTooLarge", None, 1),
            PushOutcome::Dropped
        );
    }
}
