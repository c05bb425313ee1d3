//! Web Push end to end: the real server's worker posts to a fake push service on 127.0.0.1,
//! which checks the VAPID token with the server's public key and decrypts the RFC 8291 body
//! with the subscriber's keys. The body says only where to fetch; a burst is one push; a 410
//! removes the subscription.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use chrono::TimeDelta;
use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_server::{Settings, VapidKey};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use web_push_native::jwt_simple::prelude::*;
use web_push_native::p256;
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;

on_both_databases!(a_device_without_a_stream_is_woken_by_an_encrypted_content_free_push,);

/// One request the fake push service received.
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// A push service on 127.0.0.1 answering `status` to every post.
async fn fake_push_service() -> (String, Arc<AtomicU16>, mpsc::UnboundedReceiver<Received>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let status = Arc::new(AtomicU16::new(201));
    let (tx, rx) = mpsc::unbounded_channel();
    let answer = status.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
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
                    assert!(line.starts_with("POST "), "{line}");
                    let mut headers = HashMap::new();
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).await.unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (k, v) = h.split_once(':').unwrap();
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                    }
                    let len: usize = headers["content-length"].parse().unwrap();
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).await.unwrap();
                    let code = answer.load(Ordering::SeqCst);
                    let reply = format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\n\r\n");
                    r.get_mut().write_all(reply.as_bytes()).await.unwrap();
                    let _ = tx.send(Received {
                        path,
                        headers,
                        body,
                    });
                }
            });
        }
    });
    (base, status, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("a push within the patience")
        .unwrap()
}

fn base64url(s: &str) -> Vec<u8> {
    use web_push_native::jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder};
    Base64UrlSafeNoPadding::decode_to_vec(s, None).unwrap()
}

async fn a_device_without_a_stream_is_woken_by_an_encrypted_content_free_push(backend: Backend) {
    let vapid = ES256KeyPair::generate();
    let settings = Settings {
        web_push: Some(VapidKey {
            pem: vapid.to_pem().unwrap(),
            subject: "mailto:ops@example.net".into(),
        }),
        push_allow_private_endpoints: true,
        push_every: Duration::from_millis(20),
        ..Settings::default()
    };
    let Some(server) = TestServer::start_with(backend, settings).await else {
        return;
    };
    let (base, status, mut pushes) = fake_push_service().await;
    let c = server.couple().await;
    // The key an app subscribes with is the one the server signs with.
    let push_settings = c
        .bob_watch
        .push()
        .get_push_settings(pb::GetPushSettingsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(push_settings.providers, [pb::PushProvider::WebPush as i32]);
    assert_eq!(
        push_settings.vapid_public_key,
        vapid.public_key().public_key().to_bytes_uncompressed()
    );
    // Bob's watch subscribed through its UnifiedPush distributor.
    let secret = p256::SecretKey::from_bytes(&[7u8; 32].into()).unwrap();
    let auth = [5u8; 16];
    let endpoint = format!("{base}/wpush/bob-watch");
    c.bob_watch
        .push()
        .register_push(pb::RegisterPushRequest {
            target: Some(pb::register_push_request::Target::WebPush(
                pb::WebPushTarget {
                    endpoint: endpoint.clone(),
                    p256dh: secret
                        .public_key()
                        .to_encoded_point(false)
                        .as_bytes()
                        .to_vec(),
                    auth: auth.to_vec(),
                },
            )),
        })
        .await
        .unwrap();

    // A burst of two taps with private notes.
    c.alice
        .tap(pb::TapKind::Heartbeat, "secret note")
        .await
        .unwrap();
    c.alice.tap(pb::TapKind::Tap, "another").await.unwrap();
    server.clock.advance(TimeDelta::seconds(3));
    let got = next(&mut pushes).await;
    assert_eq!(got.path, "/wpush/bob-watch");
    assert_eq!(got.headers["content-encoding"], "aes128gcm");
    assert_eq!(got.headers["urgency"], "high", "a partner's tap");
    assert_eq!(got.headers["topic"], "tapline-wake");
    assert_eq!(got.headers["ttl"], (12 * 3600).to_string());
    // VAPID: a token for this push service, signed by the key whose public half it names.
    let vapid_header = &got.headers["authorization"];
    let (t, k) = vapid_header
        .strip_prefix("vapid t=")
        .and_then(|rest| rest.split_once(", k="))
        .expect("vapid t=…, k=…");
    let key = ES256PublicKey::from_bytes(&base64url(k)).unwrap();
    assert_eq!(
        key.to_bytes(),
        vapid.public_key().to_bytes(),
        "the server's key"
    );
    // The audience is the push service's origin: scheme, host and its (non-default) port.
    let options = VerificationOptions {
        allowed_audiences: Some(HashSet::from_strings(&[base.as_str()])),
        ..Default::default()
    };
    let claims = key
        .verify_token::<NoCustomClaims>(t, Some(options))
        .unwrap();
    assert_eq!(claims.subject.as_deref(), Some("mailto:ops@example.net"));
    // The subscriber, and only the subscriber, can read it; it carries no content.
    let plain = web_push_native::decrypt(got.body, &secret, &auth.into()).unwrap();
    let text = String::from_utf8(plain).unwrap();
    assert!(
        !text.contains("secret") && !text.contains("another"),
        "{text}"
    );
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["v"], 1);
    assert_eq!(body["urgent"], true);
    let first_seq = body["seq"].as_i64().unwrap();

    // The rest of the burst is one more push after the collapse window, about the newest
    // event.
    c.alice.tap(pb::TapKind::Tap, "third").await.unwrap();
    let newest = newest_seq(&server, &c.bob_watch.id).await;
    assert!(newest > first_seq);
    server.clock.advance(window());
    let got = next(&mut pushes).await;
    let plain = web_push_native::decrypt(got.body, &secret, &auth.into()).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(body["seq"].as_i64().unwrap(), newest);
    assert_eq!(body["quiet"], false);
    assert!(
        pushes.try_recv().is_err(),
        "one push for the rest of the burst"
    );

    // In Bob's quiet hours the wake-up still comes, marked quiet, without high urgency.
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
    c.alice.tap(pb::TapKind::Tap, "at night").await.unwrap();
    server.clock.advance(window());
    let got = next(&mut pushes).await;
    assert_eq!(got.headers["urgency"], "normal");
    let plain = web_push_native::decrypt(got.body, &secret, &auth.into()).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(
        (body["quiet"].clone(), body["urgent"].clone()),
        (true.into(), true.into())
    );

    // The subscription expired at the push service: 410, and the server forgets it.
    status.store(410, Ordering::SeqCst);
    c.alice.tap(pb::TapKind::Tap, "fourth").await.unwrap();
    server.clock.advance(window());
    next(&mut pushes).await;
    let gone = async {
        loop {
            let left = c
                .bob_watch
                .push()
                .list_push_targets(pb::ListPushTargetsRequest {})
                .await
                .unwrap()
                .into_inner()
                .targets;
            if left.is_empty() {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(PATIENCE, gone)
        .await
        .expect("the target is removed after a 410");
    server.finish().await;
}

/// Past the collapse window after a push.
fn window() -> TimeDelta {
    TimeDelta::from_std(tapline_server::push_outbox::COLLAPSE_WINDOW).unwrap()
        + TimeDelta::seconds(1)
}

/// The newest event in a device's inbox.
async fn newest_seq(server: &TestServer, device: &str) -> i64 {
    sqlx::query_scalar("SELECT next_seq FROM devices WHERE id = $1")
        .bind(device)
        .fetch_one(server.state.db.pool())
        .await
        .unwrap()
}
