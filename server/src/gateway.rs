//! Gateway mode. A self-hosted server cannot hold the app publisher's APNs key or FCM
//! service account, so it forwards its content-free wake-ups to a push gateway that the
//! publisher runs (`tapline-server gateway`), which holds them and sends for every server
//! whose key it knows (`tapline.v1.PushGatewayService`).
//!
//! [`GatewayPusher`] is the server's side: a [`Pusher`] for APNs and FCM targets that calls
//! the gateway. [`Gateway`] is the gateway's side: it checks the caller's key against the
//! SHA-256 hashes it was given and hands the wake-up to its own APNs or FCM sender.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tapline_proto::v1 as pb;
use tapline_proto::v1::push_gateway_service_client::PushGatewayServiceClient;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::db::from_us;
use crate::domain::push::Target;
use crate::error::{Error, Result};
use crate::push_outbox::{Providers, PushJob, PushOutcome, Pusher, backoff};

/// Deadline of one call to the gateway (it waits for the provider).
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// The SHA-256 of a server key, hex: what a gateway's keys file lists.
pub fn key_hash(key: &str) -> String {
    Sha256::digest(key.trim().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An opaque collapse key for a couple: the same for all its wake-ups, and not its id.
fn collapse_key(couple_id: &str) -> String {
    if couple_id.is_empty() {
        return String::new();
    }
    key_hash(couple_id)[..32].to_owned()
}

/// The request for `job` to `target`.
pub fn deliver_request(job: &PushJob, target: &Target) -> pb::DeliverRequest {
    let types = (0..8)
        .filter(|b| target.push_types & (1 << b) != 0)
        .collect::<Vec<i32>>();
    pb::DeliverRequest {
        provider: target.provider as i32,
        token: target.address.clone(),
        apns_topic: target.topic.clone(),
        apns_environment: target.environment as i32,
        apns_push_types: types,
        seq: job.seq.max(0) as u64,
        urgent: job.urgent,
        quiet: job.quiet,
        collapse_key: collapse_key(&job.couple_id),
        partner_name: job.partner_name.clone(),
        tap_kind: job.tap_kind.unwrap_or_default(),
        attempt: job.attempts.clamp(0, u32::MAX as i64) as u32,
    }
}

/// The job and target a gateway rebuilds from a request (checked: bounded sizes).
pub fn from_request(req: &pb::DeliverRequest) -> Result<(PushJob, Target)> {
    let provider = pb::PushProvider::try_from(req.provider).unwrap_or_default();
    if !matches!(provider, pb::PushProvider::Apns | pb::PushProvider::Fcm) {
        return Err(Error::invalid("provider", "must be APNS or FCM"));
    }
    if req.token.is_empty() || req.token.len() > crate::domain::push::MAX_FCM_TOKEN {
        return Err(Error::invalid("token", "must be 1-4096 characters"));
    }
    if req.apns_topic.len() > crate::domain::push::MAX_TOPIC {
        return Err(Error::invalid(
            "apns_topic",
            "must be at most 255 characters",
        ));
    }
    if req.collapse_key.len() > 64 || req.partner_name.chars().count() > 200 {
        return Err(Error::invalid(
            "collapse_key",
            "collapse_key at most 64, partner_name at most 200 characters",
        ));
    }
    let push_types = req
        .apns_push_types
        .iter()
        .filter(|t| (0..8).contains(*t))
        .fold(0i64, |b, t| b | 1 << t);
    let target = Target {
        provider,
        address: req.token.clone(),
        topic: req.apns_topic.clone(),
        environment: pb::ApnsEnvironment::try_from(req.apns_environment).unwrap_or_default(),
        push_types,
        p256dh: Vec::new(),
        auth: Vec::new(),
    };
    let job = PushJob {
        device_id: String::new(),
        seq: req.seq.min(i64::MAX as u64) as i64,
        urgent: req.urgent,
        attempts: i64::from(req.attempt.max(1)),
        quiet: req.quiet,
        couple_id: req.collapse_key.clone(),
        partner_name: req.partner_name.clone(),
        tap_kind: req.urgent.then_some(req.tap_kind),
        last_background_us: 0,
        targets: Vec::new(),
    };
    Ok((job, target))
}

/// An outcome on the wire.
pub fn to_response(o: &PushOutcome) -> pb::DeliverResponse {
    use pb::DeliverOutcome as D;
    let mut r = pb::DeliverResponse::default();
    r.outcome = match o {
        PushOutcome::Sent => D::Sent,
        PushOutcome::Retry(d) => {
            r.retry_after = prost_types::Duration::try_from(*d).ok();
            D::Retry
        }
        PushOutcome::Gone => D::Gone,
        PushOutcome::GoneSince(us) => {
            let t = from_us(*us);
            r.gone_since = Some(prost_types::Timestamp {
                seconds: t.timestamp(),
                nanos: t.timestamp_subsec_nanos() as i32,
            });
            D::GoneSince
        }
        PushOutcome::Dropped => D::Dropped,
        PushOutcome::Skipped => D::Skipped,
    } as i32;
    r
}

/// An outcome from the wire (an answer it cannot read is retried).
pub fn from_response(r: &pb::DeliverResponse, attempts: i64) -> PushOutcome {
    use pb::DeliverOutcome as D;
    match D::try_from(r.outcome).unwrap_or_default() {
        D::Sent => PushOutcome::Sent,
        D::Gone => PushOutcome::Gone,
        D::GoneSince => match &r.gone_since {
            Some(t) => PushOutcome::GoneSince(
                t.seconds.saturating_mul(1_000_000) + i64::from(t.nanos / 1000),
            ),
            None => PushOutcome::GoneSince(i64::MAX),
        },
        D::Dropped => PushOutcome::Dropped,
        D::Skipped => PushOutcome::Skipped,
        D::Retry | D::Unspecified => PushOutcome::Retry(
            r.retry_after
                .and_then(|d| Duration::try_from(d).ok())
                .unwrap_or_else(|| backoff(attempts)),
        ),
    }
}

/// The server's side: forwards APNs and FCM wake-ups to a gateway.
#[derive(Clone)]
pub struct GatewayPusher {
    client: PushGatewayServiceClient<Channel>,
    bearer: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    url: String,
}

impl std::fmt::Debug for GatewayPusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayPusher")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl GatewayPusher {
    /// A client of the gateway at `url` (`https://` in production), calling with `key`.
    pub fn new(url: &str, key: &str) -> Result<GatewayPusher> {
        let bad = |what: String| Error::Config(format!("--push-gateway-url {url}: {what}"));
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(bad("must be an http(s) URL".into()));
        }
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| bad(e.to_string()))?
            .timeout(CALL_TIMEOUT)
            .connect_timeout(Duration::from_secs(5));
        let key = key.trim();
        if key.len() < 16 {
            return Err(Error::Config(
                "the push gateway key (--push-gateway-key-file) must be at least 16 characters"
                    .into(),
            ));
        }
        let bearer = format!("Bearer {key}")
            .parse()
            .map_err(|_| Error::Config("the push gateway key must be printable ASCII".into()))?;
        Ok(GatewayPusher {
            client: PushGatewayServiceClient::new(endpoint.connect_lazy()),
            bearer,
            url: url.to_owned(),
        })
    }
}

impl Pusher for GatewayPusher {
    fn send<'a>(
        &'a self,
        job: &'a PushJob,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = PushOutcome> + Send + 'a>> {
        Box::pin(async move {
            let mut req = Request::new(deliver_request(job, target));
            req.metadata_mut()
                .insert("authorization", self.bearer.clone());
            match self.client.clone().deliver(req).await {
                Ok(r) => from_response(r.get_ref(), job.attempts),
                Err(s) => {
                    if matches!(
                        s.code(),
                        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                    ) {
                        tracing::error!(gateway = %self.url, "the push gateway refused this server's key: check --push-gateway-key-file; pushes wait");
                        return PushOutcome::Retry(crate::push_outbox::MISCONFIGURED_RETRY);
                    }
                    tracing::warn!(gateway = %self.url, code = ?s.code(), "push gateway call failed; retrying");
                    PushOutcome::Retry(backoff(job.attempts))
                }
            }
        })
    }
}

/// The gateway's side: the providers it holds and the keys it accepts.
pub struct Gateway {
    providers: Providers,
    keys: HashSet<String>,
}

impl Gateway {
    /// A gateway sending with `providers` for callers whose key hashes to one of `key_hashes`
    /// (SHA-256, hex).
    pub fn new(providers: Providers, key_hashes: HashSet<String>) -> Gateway {
        Gateway {
            providers,
            keys: key_hashes,
        }
    }

    /// Reads a keys file: one SHA-256 hex hash per line, an optional name before it; `#`
    /// starts a comment.
    pub fn parse_keys(text: &str) -> Result<HashSet<String>> {
        let mut keys = HashSet::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            let Some(hash) = line.split_whitespace().last() else {
                continue;
            };
            if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(Error::Config(format!(
                    "--gateway-keys-file line {}: expected a SHA-256 hex hash \
                     (`tapline-server gateway-key` makes a key and its hash)",
                    n + 1
                )));
            }
            keys.insert(hash.to_ascii_lowercase());
        }
        Ok(keys)
    }

    fn authorised(&self, req: &Request<pb::DeliverRequest>) -> bool {
        req.metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|key| self.keys.contains(&key_hash(key)))
    }
}

#[tonic::async_trait]
impl pb::push_gateway_service_server::PushGatewayService for Gateway {
    async fn deliver(
        &self,
        req: Request<pb::DeliverRequest>,
    ) -> std::result::Result<Response<pb::DeliverResponse>, Status> {
        if !self.authorised(&req) {
            return Err(Error::Unauthenticated.into());
        }
        let (job, target) = from_request(req.get_ref())?;
        let outcome = self.providers.send(&job, &target).await;
        tracing::debug!(provider = ?target.provider, ?outcome, "gateway push");
        Ok(Response::new(to_response(&outcome)))
    }
}

/// The senders a gateway holds: APNs (its provider token kept in this process) and FCM.
pub fn providers(
    settings: &crate::Settings,
    clock: std::sync::Arc<dyn crate::Clock>,
) -> Result<(Providers, crate::state::PushHealth)> {
    let mut out = Providers::default();
    let mut health = crate::state::PushHealth::new();
    crate::state::direct_providers(
        settings,
        crate::apns::TokenHome::Local,
        clock,
        &mut out,
        &mut health,
    )?;
    if !out.any() {
        return Err(Error::Config(
            "a gateway needs APNs (--apns-key-file, --apns-key-id, --apns-team-id) or FCM \
             (--fcm-service-account-file)"
                .into(),
        ));
    }
    Ok((out, health))
}

/// A new random server key (64 hex digits) and its keys-file line.
pub fn new_key() -> Result<(String, String)> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let line = format!("server {}", key_hash(&key));
    Ok((key, line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_survive_the_wire() {
        for o in [
            PushOutcome::Sent,
            PushOutcome::Retry(Duration::from_secs(90)),
            PushOutcome::Gone,
            PushOutcome::GoneSince(1_700_000_000_123_456),
            PushOutcome::Dropped,
            PushOutcome::Skipped,
        ] {
            assert_eq!(from_response(&to_response(&o), 1), o);
        }
    }

    #[test]
    fn a_request_round_trips_without_the_couple_id() {
        let job = PushJob {
            device_id: "dev".into(),
            seq: 12,
            urgent: true,
            attempts: 2,
            quiet: true,
            couple_id: "couple-1".into(),
            partner_name: "Sam".into(),
            tap_kind: Some(pb::TapKind::Hug as i32),
            last_background_us: 0,
            targets: vec![],
        };
        let target = Target {
            provider: pb::PushProvider::Apns,
            address: "ab".repeat(32),
            topic: "net.tapline.app".into(),
            environment: pb::ApnsEnvironment::Production,
            push_types: 1 << 1 | 1 << 2,
            p256dh: vec![],
            auth: vec![],
        };
        let req = deliver_request(&job, &target);
        assert!(!format!("{req:?}").contains("couple-1"));
        let (j, t) = from_request(&req).unwrap();
        assert_eq!(t, target);
        assert_eq!((j.seq, j.urgent, j.quiet, j.attempts), (12, true, true, 2));
        assert_eq!(j.alert(), job.alert());
        assert_eq!(j.couple_id.len(), 32);
    }

    #[test]
    fn keys_files_hold_hashes() {
        let h = key_hash("server-key-0123456789");
        let keys = Gateway::parse_keys(&format!("# servers\nalice {h}\n\n")).unwrap();
        assert!(keys.contains(&h));
        assert!(Gateway::parse_keys("alice not-a-hash").is_err());
    }
}
