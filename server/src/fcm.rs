//! FCM HTTP v1, authorised with OAuth2 from a service-account file: the server signs an RS256
//! assertion with the account's key, trades it at the file's `token_uri` for an access token
//! (kept until shortly before it expires) and posts each message to
//! `/v1/projects/<project>/messages:send`. A message carries data only (where to fetch, and
//! for a partner's tap a localizable key with the partner's name), `android.priority` HIGH
//! only for such user-visible taps, and a collapse key per couple.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jwt_simple::prelude::*;
use serde_json::json;
use tapline_proto::v1 as pb;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::db::to_us;
use crate::domain::push::Target;
use crate::error::{Error, Result};
use crate::push_outbox::{
    MISCONFIGURED_RETRY, PushJob, PushOutcome, Pusher, backoff, http_client, retry_after,
};

/// Google's FCM host.
pub const FCM_URL: &str = "https://fcm.googleapis.com";
/// The OAuth2 scope for sending.
pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// How long FCM keeps an undelivered message.
pub const TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// The wait after a 429 without a longer `Retry-After`.
const THROTTLED: Duration = Duration::from_secs(60);
/// An access token is replaced this long before it expires.
const TOKEN_MARGIN: i64 = 5 * 60 * 1_000_000;
/// Deadline of one request.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// The parts of a service-account file the server uses.
#[derive(Clone)]
pub struct ServiceAccount {
    /// The Firebase project.
    pub project_id: String,
    /// The account's address (the assertion's issuer).
    pub client_email: String,
    /// Where assertions are traded for access tokens.
    pub token_uri: String,
    key: Arc<RS256KeyPair>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// Reads a service-account JSON file's text (as downloaded from the Firebase console).
    pub fn parse(json: &str) -> Result<ServiceAccount> {
        let bad = |what: &str| {
            Error::Config(format!(
                "the FCM service-account file (--fcm-service-account-file) {what}"
            ))
        };
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| bad(&format!("is not JSON ({e})")))?;
        let field = |name: &str| {
            v[name]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| bad(&format!("has no \"{name}\"")))
        };
        let token_uri = field("token_uri")?;
        if !(token_uri.starts_with("https://") || token_uri.starts_with("http://127.0.0.1")) {
            return Err(bad("has a token_uri that is not https"));
        }
        let key = RS256KeyPair::from_pem(&field("private_key")?)
            .map_err(|e| bad(&format!("has a private_key that is not an RSA key ({e})")))?;
        Ok(ServiceAccount {
            project_id: field("project_id")?,
            client_email: field("client_email")?,
            token_uri,
            key: Arc::new(key),
        })
    }

    /// The signed assertion for the token endpoint (RFC 7523), valid for an hour.
    fn assertion(&self, now_us: i64) -> Result<String> {
        let mut claims = Claims::with_custom_claims(
            json!({ "scope": SCOPE }),
            jwt_simple::prelude::Duration::from_hours(1),
        )
        .with_issuer(&self.client_email)
        .with_audience(&self.token_uri);
        let iat = (now_us / 1_000_000) as u64;
        claims.issued_at = Some(UnixTimeStamp::from_secs(iat));
        claims.expires_at = Some(UnixTimeStamp::from_secs(iat + 3600));
        claims.invalid_before = None;
        self.key
            .sign(claims)
            .map_err(|e| Error::Config(format!("cannot sign the FCM assertion ({e})")))
    }
}

/// The message for `job` to the registration token `token`.
pub fn message(job: &PushJob, token: &str) -> serde_json::Value {
    let mut data = json!({
        "v": "1",
        "seq": job.seq.to_string(),
        "urgent": job.urgent.to_string(),
        "quiet": job.quiet.to_string(),
    });
    let alert = job.alert();
    if let Some((loc_key, loc_args)) = &alert {
        data["loc_key"] = json!(loc_key);
        data["loc_args"] = json!(serde_json::to_string(loc_args).unwrap_or_default());
    }
    let mut android = json!({
        // High only for what the user will see (Google demotes apps that misuse it).
        "priority": if alert.is_some() { "HIGH" } else { "NORMAL" },
        "ttl": format!("{}s", TTL.as_secs()),
    });
    if !job.couple_id.is_empty() {
        android["collapse_key"] = json!(format!("tapline-{}", job.couple_id));
    }
    json!({ "message": { "token": token, "data": data, "android": android } })
}

/// What FCM's answer means: its status, `Retry-After`, and whether its error names the
/// token as unregistered.
pub fn outcome(
    status: u16,
    retry_after: Option<Duration>,
    unregistered: bool,
    attempts: i64,
) -> PushOutcome {
    match status {
        200..=299 => PushOutcome::Sent,
        404 => PushOutcome::Gone,
        _ if unregistered => PushOutcome::Gone,
        400 => PushOutcome::Dropped,
        401 | 403 => PushOutcome::Retry(MISCONFIGURED_RETRY),
        429 => PushOutcome::Retry(retry_after.unwrap_or(THROTTLED).max(THROTTLED)),
        500..=599 => PushOutcome::Retry(retry_after.unwrap_or_else(|| backoff(attempts))),
        _ => PushOutcome::Dropped,
    }
}

/// The FCM sender.
pub struct Fcm {
    client: reqwest::Client,
    base: String,
    account: ServiceAccount,
    clock: Arc<dyn Clock>,
    access: Mutex<Option<(String, i64)>>,
    health: watch::Sender<bool>,
}

impl std::fmt::Debug for Fcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fcm")
            .field("base", &self.base)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl Fcm {
    /// A sender for `account`, posting to Google (or to `url`, a local fake).
    pub fn new(account: ServiceAccount, url: Option<&str>, clock: Arc<dyn Clock>) -> Result<Fcm> {
        let client = http_client(POST_TIMEOUT)
            .build()
            .map_err(|e| Error::Config(format!("cannot set up the FCM client ({e})")))?;
        Ok(Fcm {
            client,
            base: url.unwrap_or(FCM_URL).trim_end_matches('/').to_owned(),
            account,
            clock,
            access: Mutex::new(None),
            health: watch::channel(true).0,
        })
    }

    /// False while Google refuses the credentials (401/403 or a failed token exchange).
    pub fn health(&self) -> watch::Receiver<bool> {
        self.health.subscribe()
    }

    /// The cached access token, or a new one from the token endpoint.
    async fn access_token(&self) -> std::result::Result<String, String> {
        let now = to_us(self.clock.now());
        if let Some((t, until)) = self
            .access
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            && until - TOKEN_MARGIN > now
        {
            return Ok(t);
        }
        let assertion = self.account.assertion(now).map_err(|e| e.to_string())?;
        let resp = self
            .client
            .post(&self.account.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
            ))
            .send()
            .await
            .map_err(|e| format!("token endpoint unreachable ({e})"))?;
        let status = resp.status();
        let body: serde_json::Value =
            serde_json::from_slice(&resp.bytes().await.unwrap_or_default()).unwrap_or_default();
        let (Some(token), true) = (body["access_token"].as_str(), status.is_success()) else {
            return Err(format!("token endpoint said {status}: {}", body["error"]));
        };
        let expires_in = body["expires_in"].as_i64().unwrap_or(3600);
        let until = now + expires_in * 1_000_000;
        *self.access.lock().unwrap_or_else(|e| e.into_inner()) = Some((token.to_owned(), until));
        Ok(token.to_owned())
    }

    async fn post(&self, job: &PushJob, target: &Target) -> PushOutcome {
        let token = match self.access_token().await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "no FCM access token: check --fcm-service-account-file; pushes wait");
                self.health.send_replace(false);
                return PushOutcome::Retry(backoff(job.attempts));
            }
        };
        let url = format!(
            "{}/v1/projects/{}/messages:send",
            self.base, self.account.project_id
        );
        let resp = match self
            .client
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(message(job, &target.address).to_string())
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "FCM unreachable; retrying");
                return PushOutcome::Retry(backoff(job.attempts));
            }
        };
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers());
        let body = resp.bytes().await.unwrap_or_default();
        let unregistered = String::from_utf8_lossy(&body).contains("UNREGISTERED");
        let outcome = outcome(status, retry_after, unregistered, job.attempts);
        match status {
            200..=299 => {
                self.health.send_replace(true);
            }
            401 | 403 => {
                tracing::error!(
                    status,
                    "FCM refused the credentials: check the service account and its project; pushes wait"
                );
                // A revoked or expired access token: the next attempt gets a new one.
                *self.access.lock().unwrap_or_else(|e| e.into_inner()) = None;
                self.health.send_replace(false);
            }
            _ if !matches!(outcome, PushOutcome::Retry(_)) => {
                tracing::info!(status, "FCM did not take a push");
            }
            _ => {}
        }
        outcome
    }
}

impl Pusher for Fcm {
    fn send<'a>(
        &'a self,
        job: &'a PushJob,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = PushOutcome> + Send + 'a>> {
        Box::pin(async move {
            if target.provider != pb::PushProvider::Fcm {
                return PushOutcome::Skipped;
            }
            self.post(job, target).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(urgent: bool) -> PushJob {
        PushJob {
            device_id: "d".into(),
            seq: 9,
            urgent,
            attempts: 1,
            quiet: false,
            couple_id: "c1".into(),
            partner_name: "Sam".into(),
            tap_kind: Some(pb::TapKind::Hug as i32),
            last_background_us: 0,
            targets: vec![],
        }
    }

    #[test]
    fn high_priority_only_for_what_the_user_sees() {
        let m = message(&job(true), "tok");
        assert_eq!(m["message"]["token"], "tok");
        assert_eq!(m["message"]["android"]["priority"], "HIGH");
        assert_eq!(m["message"]["android"]["collapse_key"], "tapline-c1");
        assert_eq!(m["message"]["data"]["loc_key"], "TAP_HUG");
        assert_eq!(m["message"]["data"]["loc_args"], "[\"Sam\"]");
        assert!(m["message"].get("notification").is_none(), "data only");
        let sync = message(&job(false), "tok");
        assert_eq!(sync["message"]["android"]["priority"], "NORMAL");
        assert!(sync["message"]["data"].get("loc_key").is_none());
    }

    #[test]
    fn google_answers_map_to_outcomes() {
        let s = Duration::from_secs;
        assert_eq!(outcome(200, None, false, 1), PushOutcome::Sent);
        assert_eq!(outcome(404, None, true, 1), PushOutcome::Gone);
        assert_eq!(outcome(400, None, true, 1), PushOutcome::Gone);
        assert_eq!(outcome(400, None, false, 1), PushOutcome::Dropped);
        assert_eq!(
            outcome(401, None, false, 1),
            PushOutcome::Retry(MISCONFIGURED_RETRY)
        );
        assert_eq!(
            outcome(429, Some(s(5)), false, 1),
            PushOutcome::Retry(s(60))
        );
        assert_eq!(
            outcome(429, Some(s(120)), false, 1),
            PushOutcome::Retry(s(120))
        );
        assert_eq!(outcome(503, Some(s(7)), false, 1), PushOutcome::Retry(s(7)));
        assert_eq!(outcome(500, None, false, 3), PushOutcome::Retry(backoff(3)));
    }
}
