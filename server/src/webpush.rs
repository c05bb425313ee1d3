//! Web Push (UnifiedPush, browsers): a content-free wake-up encrypted for the subscriber
//! (RFC 8291 `aes128gcm`), signed with the server's VAPID key (RFC 8292), posted to the
//! subscription's endpoint. Redirects are never followed, and endpoints whose host resolves to
//! a loopback, private or link-local address are refused unless the operator allows them.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tapline_proto::v1 as pb;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256KeyPair};
use web_push_native::{Auth, WebPushBuilder, p256};

use crate::domain::push::{Target, is_private_host, is_private_ip};
use crate::error::{Error, Result};
use crate::push_outbox::{PushJob, PushOutcome, Pusher, backoff, http_client, retry_after};

/// How long a push service keeps an undelivered wake-up (`TTL`), and how long the VAPID token
/// is valid (RFC 8292 allows at most 24 hours): 12 hours.
pub const TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// Deadline of one post.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// The wait after a 429 without `Retry-After`.
const THROTTLED: Duration = Duration::from_secs(60);

/// The Web Push sender.
pub struct WebPush {
    client: reqwest::Client,
    vapid: ES256KeyPair,
    contact: String,
    allow_private: bool,
    /// VAPID tokens by push service origin, with when to sign a new one: one signature per
    /// service per [`TOKEN_REUSE`], not one per push.
    tokens: std::sync::Mutex<std::collections::HashMap<String, (String, std::time::Instant)>>,
}

/// How long one VAPID token is used for a push service (it is valid for [`TTL`]).
const TOKEN_REUSE: Duration = Duration::from_secs(60 * 60);

impl std::fmt::Debug for WebPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebPush")
            .field("contact", &self.contact)
            .finish_non_exhaustive()
    }
}

/// What the app's push handler receives, decrypted: no content, only where to fetch from,
/// whether a partner's tap is waiting, and whether the recipient is in quiet hours (show it
/// without sound).
pub fn payload(job: &PushJob) -> Vec<u8> {
    serde_json::json!({ "v": 1, "seq": job.seq, "urgent": job.urgent, "quiet": job.quiet })
        .to_string()
        .into_bytes()
}

/// What a push service's answer means (RFC 8030 §5, and what services send in practice).
pub fn outcome(status: u16, retry_after: Option<Duration>, attempts: i64) -> PushOutcome {
    match status {
        200..=299 => PushOutcome::Sent,
        // The subscription expired or was removed.
        404 | 410 => PushOutcome::Gone,
        429 => PushOutcome::Retry(retry_after.unwrap_or(THROTTLED).max(THROTTLED)),
        500..=599 => PushOutcome::Retry(retry_after.unwrap_or_else(|| backoff(attempts))),
        // 400, 401, 403, 413 and the rest: this request will never be taken.
        _ => PushOutcome::Gone,
    }
}

impl WebPush {
    /// A sender signing with the VAPID key in `pem` (a P-256 private key, PKCS#8 PEM) and
    /// naming `contact` (`mailto:` or `https:`) as the sender.
    pub fn new(pem: &str, contact: &str, allow_private: bool) -> Result<WebPush> {
        let vapid = ES256KeyPair::from_pem(pem).map_err(|e| {
            Error::Config(format!(
                "the VAPID key (--vapid-key-file) is not a P-256 private key ({e})"
            ))
        })?;
        if !(contact.starts_with("mailto:") || contact.starts_with("https://")) {
            return Err(Error::Config(
                "the VAPID subject (--vapid-subject) must be a mailto: or https: URL".into(),
            ));
        }
        let client = http_client(POST_TIMEOUT)
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(WebPush {
            client,
            vapid,
            contact: contact.to_owned(),
            allow_private,
            tokens: Default::default(),
        })
    }

    /// The public half of the VAPID key, uncompressed, as apps pass it to `subscribe`
    /// (`applicationServerKey`).
    pub fn public_key(&self) -> Vec<u8> {
        self.vapid.public_key().public_key().to_bytes_uncompressed()
    }

    /// `Authorization: vapid t=…, k=…` for the push service at `uri` (RFC 8292): a token for
    /// its origin (scheme, host and a non-default port), valid for [`TTL`], reused for
    /// [`TOKEN_REUSE`].
    fn vapid_header(&self, uri: &http::Uri) -> std::result::Result<String, String> {
        use web_push_native::jwt_simple::prelude::*;
        let scheme = uri.scheme_str().unwrap_or("https");
        let host = uri.host().unwrap_or_default();
        let origin = match uri.port_u16() {
            Some(p) if !((scheme == "https" && p == 443) || (scheme == "http" && p == 80)) => {
                format!("{scheme}://{host}:{p}")
            }
            _ => format!("{scheme}://{host}"),
        };
        let now = std::time::Instant::now();
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((token, renew_at)) = tokens.get(&origin)
            && *renew_at > now
        {
            return Ok(token.clone());
        }
        let claims = Claims::create(TTL.into())
            .with_audience(&origin)
            .with_subject(&self.contact);
        let jwt = self.vapid.sign(claims).map_err(|e| e.to_string())?;
        let key = web_push_native::jwt_simple::reexports::ct_codecs::Base64UrlSafeNoPadding::encode_to_string(
            self.public_key(),
        )
        .map_err(|e| e.to_string())?;
        let header = format!("vapid t={jwt}, k={key}");
        if tokens.len() > 10_000 {
            tokens.clear();
        }
        tokens.insert(origin, (header.clone(), now + TOKEN_REUSE));
        Ok(header)
    }

    async fn post(&self, job: &PushJob, target: &Target) -> PushOutcome {
        let refuse = |why: &str| {
            tracing::warn!(device = %job.device_id, endpoint = %target.address, why, "web push refused");
            PushOutcome::Gone
        };
        let Ok(uri) = target.address.parse::<http::Uri>() else {
            return refuse("not a URI");
        };
        let Some(host) = uri.host() else {
            return refuse("no host");
        };
        if !self.allow_private {
            if is_private_host(host) {
                return refuse("private host");
            }
            let port = uri.port_u16().unwrap_or(443);
            match tokio::net::lookup_host((host.trim_matches(['[', ']']), port)).await {
                Ok(addrs) => {
                    if addrs.into_iter().any(|a| is_private_ip(a.ip())) {
                        return refuse("resolves to a private address");
                    }
                }
                // Name service trouble: try again later.
                Err(_) => return PushOutcome::Retry(Duration::from_secs(60)),
            }
        }
        let (Ok(ua_public), Ok(auth)) = (
            p256::PublicKey::from_sec1_bytes(&target.p256dh),
            <[u8; 16]>::try_from(target.auth.as_slice()),
        ) else {
            return refuse("bad subscription keys");
        };
        let auth = Auth::from(auth);
        let vapid = match self.vapid_header(&uri) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "web push: could not sign the VAPID token");
                return PushOutcome::Retry(Duration::from_secs(300));
            }
        };
        let request = match WebPushBuilder::new(uri, ua_public, auth)
            .with_valid_duration(TTL)
            .build(payload(job))
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "web push: could not encrypt or sign");
                return PushOutcome::Retry(Duration::from_secs(300));
            }
        };
        let (parts, body) = request.into_parts();
        let post = self
            .client
            .post(parts.uri.to_string())
            .headers(parts.headers)
            .header("Authorization", vapid)
            // Quiet hours: still delivered, but not with the urgency that wakes a screen.
            .header(
                "Urgency",
                if job.urgent && !job.quiet {
                    "high"
                } else {
                    "normal"
                },
            )
            // One pending wake-up per subscription at the push service.
            .header("Topic", "tapline-wake")
            .body(body);
        match post.send().await {
            Ok(resp) => {
                let retry_after = retry_after(resp.headers());
                let status = resp.status().as_u16();
                let o = outcome(status, retry_after, job.attempts);
                if !matches!(o, PushOutcome::Sent) {
                    tracing::info!(device = %job.device_id, status, outcome = ?o, "web push answered");
                }
                o
            }
            Err(e) => {
                tracing::info!(device = %job.device_id, error = %e, "web push: post failed");
                PushOutcome::Retry(backoff(job.attempts))
            }
        }
    }
}

impl Pusher for WebPush {
    fn send<'a>(
        &'a self,
        job: &'a PushJob,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = PushOutcome> + Send + 'a>> {
        Box::pin(async move {
            if target.provider != pb::PushProvider::WebPush {
                return PushOutcome::Skipped;
            }
            self.post(job, target).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_service_answers_map_to_outcomes() {
        assert_eq!(outcome(201, None, 1), PushOutcome::Sent);
        assert_eq!(outcome(410, None, 1), PushOutcome::Gone);
        assert_eq!(outcome(404, None, 1), PushOutcome::Gone);
        assert_eq!(outcome(400, None, 1), PushOutcome::Gone);
        assert_eq!(
            outcome(429, Some(Duration::from_secs(5)), 1),
            PushOutcome::Retry(THROTTLED),
            "a 429 waits at least a minute"
        );
        assert_eq!(
            outcome(429, Some(Duration::from_secs(600)), 1),
            PushOutcome::Retry(Duration::from_secs(600))
        );
        assert_eq!(
            outcome(503, None, 1),
            PushOutcome::Retry(Duration::from_secs(60))
        );
        assert_eq!(
            outcome(503, None, 30),
            PushOutcome::Retry(Duration::from_secs(3600)),
            "capped"
        );
        assert_eq!(
            outcome(502, Some(Duration::from_secs(7)), 1),
            PushOutcome::Retry(Duration::from_secs(7))
        );
    }

    #[test]
    fn the_payload_says_only_where_to_fetch() {
        let job = PushJob {
            device_id: "d".into(),
            seq: 42,
            urgent: true,
            attempts: 1,
            quiet: false,
            couple_id: "c".into(),
            partner_name: "Sam".into(),
            tap_kind: Some(pb::TapKind::Hug as i32),
            last_background_us: 0,
            targets: vec![],
        };
        let v: serde_json::Value = serde_json::from_slice(&payload(&job)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"v": 1, "seq": 42, "urgent": true, "quiet": false})
        );
    }
}
