//! APNs, FCM and the push gateway end to end, against local fakes on 127.0.0.1: a fake APNs
//! over h2c that checks the method, path, `apns-*` headers and the bearer JWT with the test
//! key; a fake FCM serving the OAuth2 token endpoint (checking the signed assertion) and the
//! send endpoint. The real server's worker sends; each provider answer leads to the
//! documented outcome.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use chrono::TimeDelta;
use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_proto::v1::register_push_request::Target;
use tapline_server::apns::{ApnsKey, ProviderTokens, TOKEN_REFRESH, TokenHome};
use tapline_server::push_outbox::{BACKGROUND_EVERY, COLLAPSE_WINDOW};
use tapline_server::{Clock, Settings};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tonic_health::pb::health_check_response::ServingStatus as Health;
use web_push_native::jwt_simple::prelude::*;

on_both_databases!(
    an_offline_device_gets_an_alert_that_says_no_content_and_a_live_one_none,
    apple_answers_keep_or_remove_the_token_as_documented,
    quiet_hours_are_passive_and_background_wake_ups_are_rationed,
    instances_share_one_provider_token,
    fcm_is_authorised_by_the_service_account_and_its_answers_are_honoured,
    a_self_hosted_server_pushes_through_the_gateway,
    wake_ups_pending_when_the_server_stops_are_all_sent_after_it_restarts,
);

const TEAM: &str = "TEAMID1234";
const KID: &str = "KEYID56789";
const TOPIC: &str = "net.tapline.app.watchkitapp";

/// One push the fake APNs received.
#[derive(Debug)]
struct ApnsHit {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: serde_json::Value,
    /// The bearer JWT verified with the test key, and named its team and key id.
    jwt_ok: bool,
    bearer: String,
}

/// A fake APNs over h2c answering `answer` (status, JSON body) to every push.
struct FakeApns {
    url: String,
    hits: mpsc::UnboundedReceiver<ApnsHit>,
    answer: Arc<Mutex<(u16, String)>>,
}

impl FakeApns {
    async fn start(key: ES256PublicKey) -> FakeApns {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, hits) = mpsc::unbounded_channel();
        let answer = Arc::new(Mutex::new((200u16, String::new())));
        let reply = answer.clone();
        let key = Arc::new(key);
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (tx, reply, key) = (tx.clone(), reply.clone(), key.clone());
                tokio::spawn(async move {
                    let Ok(mut conn) = h2::server::handshake(sock).await else {
                        return;
                    };
                    while let Some(Ok((req, mut respond))) = conn.accept().await {
                        let (tx, reply, key) = (tx.clone(), reply.clone(), key.clone());
                        tokio::spawn(async move {
                            let (parts, mut body) = req.into_parts();
                            let mut data = Vec::new();
                            while let Some(Ok(chunk)) = body.data().await {
                                let _ = body.flow_control().release_capacity(chunk.len());
                                data.extend_from_slice(&chunk);
                            }
                            let headers: HashMap<String, String> = parts
                                .headers
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                                .collect();
                            let bearer = headers
                                .get("authorization")
                                .and_then(|a| a.strip_prefix("Bearer "))
                                .unwrap_or_default()
                                .to_owned();
                            let jwt_ok = key
                                .verify_token::<NoCustomClaims>(&bearer, Some(any_time()))
                                .is_ok_and(|c| c.issuer.as_deref() == Some(TEAM))
                                && Token::decode_metadata(&bearer)
                                    .is_ok_and(|m| m.key_id() == Some(KID));
                            let (status, answer) = reply.lock().unwrap().clone();
                            let _ = tx.send(ApnsHit {
                                method: parts.method.to_string(),
                                path: parts.uri.path().to_owned(),
                                headers,
                                body: serde_json::from_slice(&data).unwrap_or_default(),
                                jwt_ok,
                                bearer,
                            });
                            let resp = http::Response::builder()
                                .status(status)
                                .header("apns-id", "00000000-0000-0000-0000-000000000001")
                                .body(())
                                .unwrap();
                            let Ok(mut send) = respond.send_response(resp, answer.is_empty())
                            else {
                                return;
                            };
                            if !answer.is_empty() {
                                let _ = send.send_data(Bytes::from(answer), true);
                            }
                        });
                    }
                });
            }
        });
        FakeApns { url, hits, answer }
    }

    fn answer(&self, status: u16, body: serde_json::Value) {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        *self.answer.lock().unwrap() = (status, body);
    }

    async fn next(&mut self) -> ApnsHit {
        tokio::time::timeout(PATIENCE, self.hits.recv())
            .await
            .expect("a push within the patience")
            .unwrap()
    }
}

fn apns_key() -> (ApnsKey, ES256PublicKey) {
    let pair = ES256KeyPair::generate();
    let key = ApnsKey {
        pem: pair.to_pem().unwrap(),
        key_id: KID.into(),
        team_id: TEAM.into(),
    };
    (key, pair.public_key())
}

fn apns_settings(key: ApnsKey, url: &str) -> Settings {
    Settings {
        apns: Some((key, Some(url.to_owned()))),
        push_every: Duration::from_millis(20),
        jobs_every: None,
        ..Settings::default()
    }
}

fn apns_target(token: &str, types: &[pb::ApnsPushType]) -> pb::RegisterPushRequest {
    pb::RegisterPushRequest {
        target: Some(Target::Apns(pb::ApnsTarget {
            device_token: token.into(),
            topic: TOPIC.into(),
            environment: pb::ApnsEnvironment::Sandbox as i32,
            push_types: types.iter().map(|t| *t as i32).collect(),
        })),
    }
}

/// Tokens are checked for signature and claims; their times follow the test's moved clock.
fn any_time() -> VerificationOptions {
    VerificationOptions {
        accept_future: true,
        time_tolerance: Some(web_push_native::jwt_simple::prelude::Duration::from_days(
            3650,
        )),
        ..Default::default()
    }
}

const BOTH: [pb::ApnsPushType; 2] = [pb::ApnsPushType::Alert, pb::ApnsPushType::Background];

async fn targets(device: &Device) -> Vec<pb::PushTarget> {
    device
        .push()
        .list_push_targets(pb::ListPushTargetsRequest {})
        .await
        .unwrap()
        .into_inner()
        .targets
}

/// Waits (bounded) until `cond` holds over the database.
async fn until<F, Fut>(what: &str, cond: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let waited = async {
        while !cond().await {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(PATIENCE, waited)
        .await
        .unwrap_or_else(|_| panic!("{what} within the patience"));
}

async fn job_of(server: &TestServer, device: &str) -> Option<(i64, i64)> {
    sqlx::query_as("SELECT due_at_us, attempts FROM push_jobs WHERE device_id = $1")
        .bind(device)
        .fetch_optional(server.state.db.pool())
        .await
        .unwrap()
}

fn past_window() -> TimeDelta {
    TimeDelta::from_std(COLLAPSE_WINDOW).unwrap() + TimeDelta::seconds(1)
}

async fn an_offline_device_gets_an_alert_that_says_no_content_and_a_live_one_none(
    backend: Backend,
) {
    let (key, public) = apns_key();
    let mut apns = FakeApns::start(public).await;
    let Some(server) = TestServer::start_with(backend, apns_settings(key, &apns.url)).await else {
        return;
    };
    let c = server.couple().await;
    let watch_token = "ab".repeat(32);
    let phone_token = "cd".repeat(32);
    c.bob_watch
        .push()
        .register_push(apns_target(&watch_token, &BOTH))
        .await
        .unwrap();
    let settings = c
        .bob_watch
        .push()
        .get_push_settings(pb::GetPushSettingsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(settings.providers, [pb::PushProvider::Apns as i32]);

    // Bob's watch has no stream: Alice's heartbeat wakes it at once, as an alert that names
    // her and the kind of tap, and nothing she wrote.
    let sent = c
        .alice
        .tap(pb::TapKind::Heartbeat, "a secret note")
        .await
        .unwrap();
    let hit = apns.next().await;
    assert_eq!(hit.method, "POST");
    assert_eq!(hit.path, format!("/3/device/{watch_token}"));
    assert_eq!(hit.headers["apns-topic"], TOPIC);
    assert_eq!(hit.headers["apns-push-type"], "alert");
    assert_eq!(hit.headers["apns-priority"], "10");
    let couple_id: String = sqlx::query_scalar("SELECT couple_id FROM accounts WHERE id = $1")
        .bind(&sent.tap.as_ref().unwrap().sender_account_id)
        .fetch_one(server.state.db.pool())
        .await
        .unwrap();
    assert_eq!(
        hit.headers["apns-collapse-id"],
        format!("tapline-{couple_id}")
    );
    assert!(
        hit.jwt_ok,
        "the provider token verifies with the team's key"
    );
    assert_eq!(hit.body["aps"]["alert"]["loc-key"], "TAP_HEARTBEAT");
    assert_eq!(
        hit.body["aps"]["alert"]["loc-args"],
        serde_json::json!(["Alice"])
    );
    assert_eq!(hit.body["aps"]["mutable-content"], 1);
    assert!(hit.body["seq"].as_i64().unwrap() > 0);
    assert!(!hit.body.to_string().contains("secret"), "{}", hit.body);

    // Now the watch has a live stream and Bob's phone (offline) a target too: a tap reaches
    // the watch on its stream and the phone by push; the watch gets none.
    c.bob
        .push()
        .register_push(apns_target(&phone_token, &BOTH))
        .await
        .unwrap();
    let (mut events, _) = c.bob_watch.subscribe_caught_up(0).await;
    server.clock.advance(past_window());
    c.alice.tap(pb::TapKind::Hug, "x").await.unwrap();
    let (event, _) = events.next_tap().await;
    c.bob_watch
        .events()
        .ack_events(pb::AckEventsRequest { seq: event.seq })
        .await
        .unwrap();
    let hit = apns.next().await;
    assert_eq!(
        hit.path,
        format!("/3/device/{phone_token}"),
        "only the phone"
    );
    let watch_id = c.bob_watch.id.clone();
    until("the watch's job cancelled by its ack", || async {
        job_of(&server, &watch_id).await.is_none_or(|(_, a)| a == 0)
    })
    .await;
    // Past the grace, the watch's ack has cancelled its job: nothing more is sent to it.
    server.clock.advance(past_window());
    c.alice.tap(pb::TapKind::Tap, "y").await.unwrap();
    let (event, _) = events.next_tap().await;
    c.bob_watch
        .events()
        .ack_events(pb::AckEventsRequest { seq: event.seq })
        .await
        .unwrap();
    let hit = apns.next().await;
    assert_eq!(hit.path, format!("/3/device/{phone_token}"));
    assert!(apns.hits.try_recv().is_err(), "no push to the live watch");
    drop(events);
    server.finish().await;
}

async fn apple_answers_keep_or_remove_the_token_as_documented(backend: Backend) {
    let (key, public) = apns_key();
    let mut apns = FakeApns::start(public).await;
    let Some(server) = TestServer::start_with(backend, apns_settings(key, &apns.url)).await else {
        return;
    };
    let c = server.couple().await;
    let watch = &c.bob_watch;
    let token = "ab".repeat(32);
    watch
        .push()
        .register_push(apns_target(&token, &BOTH))
        .await
        .unwrap();
    let registered_ms = server.clock.now().timestamp_millis();

    // 410 Unregistered from before the token was registered: a stale answer, kept.
    apns.answer(
        410,
        serde_json::json!({"reason": "Unregistered", "timestamp": registered_ms - 3_600_000}),
    );
    c.alice.tap(pb::TapKind::Tap, "1").await.unwrap();
    apns.next().await;
    until("the push recorded", || async {
        job_of(&server, &watch.id).await.is_none()
    })
    .await;
    assert_eq!(
        targets(watch).await.len(),
        1,
        "registered after Apple's time: kept"
    );

    // 429: the job stays, retried later.
    apns.answer(429, serde_json::json!({"reason": "TooManyRequests"}));
    c.alice.tap(pb::TapKind::Tap, "2").await.unwrap();
    apns.next().await;
    until("the retry scheduled", || async {
        job_of(&server, &watch.id).await.is_some_and(|(due, _)| {
            due > tapline_server::db::to_us(server.clock.now()) + 20_000_000
        })
    })
    .await;
    assert_eq!(targets(watch).await.len(), 1);

    // 403: a configuration error. Health says so; the token is kept; pushes wait.
    apns.answer(403, serde_json::json!({"reason": "InvalidProviderToken"}));
    server.clock.advance(TimeDelta::minutes(61));
    apns.next().await;
    until("APNs health down", || async {
        server.health_of("tapline.push.apns").await == Health::NotServing
    })
    .await;
    assert_eq!(targets(watch).await.len(), 1);
    // Fixed: the next push goes through and health recovers.
    apns.answer(200, serde_json::Value::Null);
    server.clock.advance(TimeDelta::minutes(10));
    apns.next().await;
    until("health back", || async {
        server.health_of("tapline.push.apns").await == Health::Serving
    })
    .await;

    // 410 Unregistered after the registration: removed.
    apns.answer(
        410,
        serde_json::json!({"reason": "Unregistered", "timestamp": server.clock.now().timestamp_millis()}),
    );
    server.clock.advance(past_window());
    c.alice.tap(pb::TapKind::Tap, "3").await.unwrap();
    apns.next().await;
    until("the token removed", || async {
        targets(watch).await.is_empty()
    })
    .await;

    // BadDeviceToken: removed.
    watch
        .push()
        .register_push(apns_target(&token, &BOTH))
        .await
        .unwrap();
    apns.answer(400, serde_json::json!({"reason": "BadDeviceToken"}));
    c.alice.tap(pb::TapKind::Tap, "4").await.unwrap();
    apns.next().await;
    until("the token removed", || async {
        targets(watch).await.is_empty()
    })
    .await;
    server.finish().await;
}

async fn quiet_hours_are_passive_and_background_wake_ups_are_rationed(backend: Backend) {
    let (key, public) = apns_key();
    let mut apns = FakeApns::start(public).await;
    let Some(server) = TestServer::start_with(backend, apns_settings(key, &apns.url)).await else {
        return;
    };
    let c = server.couple().await;
    let token = "ab".repeat(32);
    c.bob_watch
        .push()
        .register_push(apns_target(&token, &BOTH))
        .await
        .unwrap();
    c.bob
        .settings()
        .update_settings(pb::UpdateSettingsRequest {
            quiet_hours_change: Some(
                pb::update_settings_request::QuietHoursChange::SetQuietHours(pb::QuietHours {
                    start: Some(pb::LocalTimeOfDay { hour: 0, minute: 0 }),
                    end: Some(pb::LocalTimeOfDay {
                        hour: 23,
                        minute: 59,
                    }),
                }),
            ),
            receipts_enabled: None,
        })
        .await
        .unwrap();
    // In Bob's quiet hours the tap still arrives, passive and without sound.
    c.alice.tap(pb::TapKind::Tap, "night").await.unwrap();
    let hit = apns.next().await;
    assert_eq!(hit.headers["apns-push-type"], "alert");
    assert_eq!(hit.body["aps"]["interruption-level"], "passive");
    assert!(hit.body["aps"].get("sound").is_none(), "{}", hit.body);
    // Bob's watch catches up (as the woken app does).
    let newest = c
        .bob_watch
        .events()
        .fetch_events(pb::FetchEventsRequest {
            after_seq: 0,
            limit: 500,
        })
        .await
        .unwrap()
        .into_inner()
        .events
        .last()
        .unwrap()
        .seq;
    c.bob_watch
        .events()
        .ack_events(pb::AckEventsRequest { seq: newest })
        .await
        .unwrap();

    // Alice renames herself: a sync for Bob's watch, a background push (priority 5).
    let rename = |name: &'static str| {
        let mut accounts = c.alice.accounts();
        async move {
            accounts
                .update_profile(pb::UpdateProfileRequest {
                    display_name: Some(name.into()),
                    time_zone: None,
                })
                .await
        }
    };
    server.clock.advance(past_window());
    rename("Ali").await.unwrap();
    let hit = apns.next().await;
    assert_eq!(hit.headers["apns-push-type"], "background");
    assert_eq!(hit.headers["apns-priority"], "5");
    assert_eq!(hit.body["aps"]["content-available"], 1);
    assert!(!hit.headers.contains_key("apns-collapse-id"));
    // Another within 20 minutes waits for Apple's budget.
    server.clock.advance(past_window());
    rename("Alice").await.unwrap();
    let last_bg: i64 = sqlx::query_scalar("SELECT last_background_us FROM push_targets")
        .fetch_one(server.state.db.pool())
        .await
        .unwrap();
    let budget = last_bg + BACKGROUND_EVERY.as_micros() as i64;
    until("the background push held back", || async {
        job_of(&server, &c.bob_watch.id)
            .await
            .is_some_and(|(due, attempts)| attempts >= 1 && due >= budget)
    })
    .await;
    assert!(apns.hits.try_recv().is_err(), "held, not sent");
    // Once the 20 minutes are up, it goes.
    server.clock.advance(TimeDelta::minutes(20));
    let hit = apns.next().await;
    assert_eq!(hit.headers["apns-push-type"], "background");
    server.finish().await;
}

async fn instances_share_one_provider_token(backend: Backend) {
    let (key, public) = apns_key();
    let mut apns = FakeApns::start(public).await;
    let Some(mut server) =
        TestServer::start_with(backend, apns_settings(key.clone(), &apns.url)).await
    else {
        return;
    };
    let home = |s: &tapline_server::AppState| TokenHome::Shared {
        pool: s.db.pool().clone(),
        writer: s.writer.clone(),
    };
    let clock = server.clock.clone();
    let one = ProviderTokens::new(&key, home(&server.state), clock.clone()).unwrap();
    let (two_state, stop, task, _) = if backend == Backend::Postgres {
        let (s, stop, task, addr) = server.second_instance().await;
        (s, Some(stop), Some(task), Some(addr))
    } else {
        (server.state.clone(), None, None, None)
    };
    let two = ProviderTokens::new(&key, home(&two_state), clock.clone()).unwrap();
    let first = one.current().await.unwrap();
    assert_eq!(
        two.current().await.unwrap(),
        first,
        "the second uses the first's token"
    );
    // Past the refresh age both move to one new token, made once.
    server
        .clock
        .advance(TimeDelta::from_std(TOKEN_REFRESH).unwrap() + TimeDelta::seconds(1));
    let (a, b) = tokio::join!(one.current(), two.current());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b);
    assert_ne!(a, first);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM provider_tokens")
        .fetch_one(server.state.db.pool())
        .await
        .unwrap();
    assert_eq!(rows, 1);
    // And the server's own worker signs with that same token.
    let c = server.couple().await;
    c.bob_watch
        .push()
        .register_push(apns_target(&"ab".repeat(32), &BOTH))
        .await
        .unwrap();
    c.alice.tap(pb::TapKind::Tap, "t").await.unwrap();
    let hit = apns.next().await;
    assert!(hit.jwt_ok);
    assert_eq!(hit.bearer, a);
    if let (Some(stop), Some(task)) = (stop, task) {
        let _ = stop.send(());
        let _ = task.await;
    }
    server.stop().await;
    server.finish().await;
}

/// An RSA key for the fake service account (made once: key generation is slow).
fn rsa() -> &'static RS256KeyPair {
    static KEY: OnceLock<RS256KeyPair> = OnceLock::new();
    KEY.get_or_init(|| RS256KeyPair::generate(2048).unwrap())
}

/// One request the fake FCM received.
#[derive(Debug)]
struct FcmHit {
    path: String,
    headers: HashMap<String, String>,
    body: String,
}

/// A fake Google: `/token` (OAuth2) and `/v1/projects/<p>/messages:send`, answering `send`
/// (status, extra header, body) to sends.
struct FakeFcm {
    base: String,
    hits: mpsc::UnboundedReceiver<FcmHit>,
    send: Arc<Mutex<(u16, String, String)>>,
}

impl FakeFcm {
    async fn start() -> FakeFcm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, hits) = mpsc::unbounded_channel();
        let send = Arc::new(Mutex::new((200u16, String::new(), "{}".to_owned())));
        let answer = send.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (tx, answer) = (tx.clone(), answer.clone());
                tokio::spawn(async move {
                    let mut r = BufReader::new(stream);
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line
                            .split_whitespace()
                            .nth(1)
                            .unwrap_or_default()
                            .to_owned();
                        let mut headers = HashMap::new();
                        loop {
                            let mut h = String::new();
                            r.read_line(&mut h).await.unwrap();
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':') {
                                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                            }
                        }
                        let len: usize = headers
                            .get("content-length")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        let mut body = vec![0; len];
                        r.read_exact(&mut body).await.unwrap();
                        let body = String::from_utf8(body).unwrap();
                        let (status, extra, reply) = if path == "/token" {
                            (
                                200,
                                String::new(),
                                serde_json::json!({
                                "access_token": "ya29.fake-access", "expires_in": 3600,
                                "token_type": "Bearer"})
                                .to_string(),
                            )
                        } else {
                            answer.lock().unwrap().clone()
                        };
                        let _ = tx.send(FcmHit {
                            path,
                            headers,
                            body,
                        });
                        let resp = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n{reply}",
                            reply.len()
                        );
                        if r.get_mut().write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FakeFcm { base, hits, send }
    }

    fn answer(&self, status: u16, extra_header: &str, body: serde_json::Value) {
        *self.send.lock().unwrap() = (status, extra_header.to_owned(), body.to_string());
    }

    async fn next(&mut self) -> FcmHit {
        tokio::time::timeout(PATIENCE, self.hits.recv())
            .await
            .expect("a request within the patience")
            .unwrap()
    }

    fn service_account(&self) -> String {
        serde_json::json!({
            "type": "service_account",
            "project_id": "tapline-test",
            "private_key": rsa().to_pem().unwrap(),
            "client_email": "push@tapline-test.iam.gserviceaccount.com",
            "token_uri": format!("{}/token", self.base),
        })
        .to_string()
    }
}

fn fcm_target(token: &str) -> pb::RegisterPushRequest {
    pb::RegisterPushRequest {
        target: Some(Target::Fcm(pb::FcmTarget {
            registration_token: token.into(),
        })),
    }
}

async fn fcm_is_authorised_by_the_service_account_and_its_answers_are_honoured(backend: Backend) {
    let mut fcm = FakeFcm::start().await;
    let settings = Settings {
        fcm: Some((fcm.service_account(), Some(fcm.base.clone()))),
        push_every: Duration::from_millis(20),
        jobs_every: None,
        ..Settings::default()
    };
    let Some(server) = TestServer::start_with(backend, settings).await else {
        return;
    };
    let c = server.couple().await;
    let watch = &c.bob_watch;
    watch
        .push()
        .register_push(fcm_target("fcm-token-1"))
        .await
        .unwrap();

    c.alice
        .tap(pb::TapKind::Hug, "private words")
        .await
        .unwrap();
    // First the OAuth2 exchange: an RS256 assertion by the service account, for FCM's scope.
    let token = fcm.next().await;
    assert_eq!(token.path, "/token");
    let assertion = token.body.split("assertion=").nth(1).unwrap();
    assert!(
        token
            .body
            .starts_with("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")
    );
    let claims = rsa()
        .public_key()
        .verify_token::<serde_json::Value>(
            assertion,
            Some(VerificationOptions {
                allowed_audiences: Some(HashSet::from_strings(&[format!("{}/token", fcm.base)])),
                ..any_time()
            }),
        )
        .unwrap();
    assert_eq!(
        claims.issuer.as_deref(),
        Some("push@tapline-test.iam.gserviceaccount.com")
    );
    assert_eq!(
        claims.custom["scope"],
        "https://www.googleapis.com/auth/firebase.messaging"
    );
    // Then the message: data only, high priority for a tap, nothing written in it.
    let send = fcm.next().await;
    assert_eq!(send.path, "/v1/projects/tapline-test/messages:send");
    assert_eq!(send.headers["authorization"], "Bearer ya29.fake-access");
    let m: serde_json::Value = serde_json::from_str(&send.body).unwrap();
    assert_eq!(m["message"]["token"], "fcm-token-1");
    assert_eq!(m["message"]["android"]["priority"], "HIGH");
    assert_eq!(m["message"]["data"]["loc_key"], "TAP_HUG");
    assert!(!send.body.contains("private"), "{}", send.body);

    // 429 with a short Retry-After: waits at least a minute.
    fcm.answer(
        429,
        "retry-after: 5\r\n",
        serde_json::json!({"error": {"status": "RESOURCE_EXHAUSTED"}}),
    );
    server.clock.advance(past_window());
    c.alice.tap(pb::TapKind::Tap, "2").await.unwrap();
    let hit = fcm.next().await;
    assert!(
        hit.path.ends_with("messages:send"),
        "the access token was reused"
    );
    let now = tapline_server::db::to_us(server.clock.now());
    until("the retry a minute away", || async {
        job_of(&server, &watch.id)
            .await
            .is_some_and(|(due, _)| due >= now + 60_000_000)
    })
    .await;
    // 400 INVALID_ARGUMENT: this push is given up; the token stays.
    fcm.answer(
        400,
        "",
        serde_json::json!({"error": {"status": "INVALID_ARGUMENT"}}),
    );
    server.clock.advance(TimeDelta::minutes(2));
    fcm.next().await;
    until("the push given up", || async {
        job_of(&server, &watch.id).await.is_none()
    })
    .await;
    assert_eq!(targets(watch).await.len(), 1);
    // 401: a configuration error; health says so and a new access token is fetched next.
    fcm.answer(
        401,
        "",
        serde_json::json!({"error": {"status": "UNAUTHENTICATED"}}),
    );
    c.alice.tap(pb::TapKind::Tap, "3").await.unwrap();
    fcm.next().await;
    until("FCM health down", || async {
        server.health_of("tapline.push.fcm").await == Health::NotServing
    })
    .await;
    fcm.answer(
        200,
        "",
        serde_json::json!({"name": "projects/tapline-test/messages/1"}),
    );
    server.clock.advance(TimeDelta::minutes(6));
    assert_eq!(fcm.next().await.path, "/token", "a fresh access token");
    fcm.next().await;
    until("FCM health back", || async {
        server.health_of("tapline.push.fcm").await == Health::Serving
    })
    .await;
    // 404 UNREGISTERED: the token is removed.
    fcm.answer(404, "", serde_json::json!({"error": {"status": "NOT_FOUND", "details": [{"errorCode": "UNREGISTERED"}]}}));
    server.clock.advance(past_window());
    c.alice.tap(pb::TapKind::Tap, "4").await.unwrap();
    fcm.next().await;
    until("the token removed", || async {
        targets(watch).await.is_empty()
    })
    .await;
    server.finish().await;
}

async fn a_self_hosted_server_pushes_through_the_gateway(backend: Backend) {
    let (key, public) = apns_key();
    let mut apns = FakeApns::start(public).await;
    // The publisher's gateway holds the APNs key and accepts one server key.
    let server_key = "self-hosted-server-key-0123456789";
    let (providers, health) = tapline_server::gateway::providers(
        &apns_settings(key, &apns.url),
        Arc::new(tapline_server::SystemClock),
    )
    .unwrap();
    let keys = [tapline_server::gateway::key_hash(server_key)]
        .into_iter()
        .collect();
    let gw = Arc::new(tapline_server::gateway::Gateway::new(providers, keys));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw_url = format!("http://{}", listener.local_addr().unwrap());
    let (stop_gw, stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway = tokio::spawn(tapline_server::serve_gateway(listener, gw, health, async {
        let _ = stopped.await;
    }));
    // The self-hosted server has no APNs key, only its gateway key.
    let settings = Settings {
        push_gateway: Some((gw_url.clone(), server_key.into())),
        push_every: Duration::from_millis(20),
        jobs_every: None,
        ..Settings::default()
    };
    let Some(server) = TestServer::start_with(backend, settings).await else {
        return;
    };
    let c = server.couple().await;
    let token = "ab".repeat(32);
    c.bob_watch
        .push()
        .register_push(apns_target(&token, &BOTH))
        .await
        .unwrap();
    c.alice
        .tap(pb::TapKind::Heartbeat, "between us")
        .await
        .unwrap();
    let hit = apns.next().await;
    assert!(hit.jwt_ok, "signed by the gateway's key");
    assert_eq!(hit.path, format!("/3/device/{token}"));
    assert_eq!(hit.headers["apns-push-type"], "alert");
    assert_eq!(
        hit.body["aps"]["alert"]["loc-args"],
        serde_json::json!(["Alice"])
    );
    let collapse = &hit.headers["apns-collapse-id"];
    let couple_id: String =
        sqlx::query_scalar("SELECT couple_id FROM accounts WHERE display_name = 'Alice'")
            .fetch_one(server.state.db.pool())
            .await
            .unwrap();
    assert!(
        collapse.starts_with("tapline-") && !collapse.contains(&couple_id),
        "{collapse}"
    );
    assert!(!hit.body.to_string().contains("between"));

    // A server whose key the gateway does not know is refused.
    let channel = tonic::transport::Endpoint::from_shared(gw_url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = pb::push_gateway_service_client::PushGatewayServiceClient::new(channel);
    let mut req = tonic::Request::new(pb::DeliverRequest {
        provider: pb::PushProvider::Apns as i32,
        token: token.clone(),
        ..Default::default()
    });
    req.metadata_mut().insert(
        "authorization",
        "Bearer not-a-known-key-000000".parse().unwrap(),
    );
    let refused = client.deliver(req).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert!(apns.hits.try_recv().is_err(), "nothing sent for it");
    server.finish().await;
    let _ = stop_gw.send(());
    let _ = gateway.await;
}

async fn wake_ups_pending_when_the_server_stops_are_all_sent_after_it_restarts(backend: Backend) {
    let (key, public) = apns_key();
    let mut apns = FakeApns::start(public).await;
    let Some(mut server) = TestServer::start_with(backend, apns_settings(key, &apns.url)).await
    else {
        return;
    };
    let c = server.couple().await;
    let devices = [
        (&c.alice_watch, "a1".repeat(32)),
        (&c.bob, "b1".repeat(32)),
        (&c.bob_watch, "b2".repeat(32)),
    ];
    for (d, token) in &devices {
        d.push()
            .register_push(apns_target(token, &BOTH))
            .await
            .unwrap();
    }
    // Apple is down: every wake-up is tried once and left pending.
    apns.answer(503, serde_json::json!({"reason": "ServiceUnavailable"}));
    c.alice.tap(pb::TapKind::Tap, "to bob").await.unwrap();
    c.bob.tap(pb::TapKind::Tap, "to alice").await.unwrap();
    let mut tried = std::collections::HashSet::new();
    while tried.len() < 3 {
        tried.insert(apns.next().await.path);
    }
    for (d, _) in &devices {
        let id = d.id.clone();
        until("the retry recorded", || async {
            job_of(&server, &id)
                .await
                .is_some_and(|(_, attempts)| attempts >= 1)
        })
        .await;
    }
    // The server goes down with the jobs pending, and comes back once Apple is up again.
    apns.answer(200, serde_json::Value::Null);
    server.restart().await;
    server.clock.advance(TimeDelta::minutes(2));
    let mut sent = Vec::new();
    for _ in 0..3 {
        sent.push(apns.next().await.path);
    }
    sent.sort();
    let mut want: Vec<String> = devices
        .iter()
        .map(|(_, t)| format!("/3/device/{t}"))
        .collect();
    want.sort();
    assert_eq!(sent, want, "each pending wake-up once, none lost");
    server.clock.advance(past_window());
    for (d, _) in &devices {
        let id = d.id.clone();
        until("the job done", || async {
            job_of(&server, &id).await.is_none()
        })
        .await;
    }
    assert!(apns.hits.try_recv().is_err(), "none twice");
    server.finish().await;
}
