//! Push targets: each device registers, replaces, lists and removes its own; input is checked
//! (tokens, keys, endpoints that would make the server post to its own network); signing a
//! device out removes its targets. The push outbox: a burst collapses into one wake-up, an ack
//! cancels it, a crash between claim and send only delays it, a provider's refusal retries it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::TimeDelta;
use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_server::push_outbox::{
    COLLAPSE_WINDOW, LEASE, PushJob, PushOutcome, Pusher, claim, finish, run_once,
};
use tapline_server::{Clock, Settings};
use tonic::Code;
use tonic_types::StatusExt;

use pb::register_push_request::Target;

on_both_databases!(
    a_device_keeps_one_target_per_provider_and_loses_them_when_signed_out,
    bad_targets_are_refused_naming_the_field,
    a_burst_wakes_an_offline_device_once_and_an_ack_cancels,
    a_push_is_retried_after_a_crash_or_a_refusal_and_a_gone_target_is_removed,
);

fn apns(token: &str) -> pb::RegisterPushRequest {
    pb::RegisterPushRequest {
        target: Some(Target::Apns(pb::ApnsTarget {
            device_token: token.into(),
            topic: "app.tapline.watchkitapp".into(),
            environment: pb::ApnsEnvironment::Sandbox as i32,
            push_types: vec![
                pb::ApnsPushType::Alert as i32,
                pb::ApnsPushType::Complication as i32,
            ],
        })),
    }
}

fn web(endpoint: &str) -> pb::RegisterPushRequest {
    let mut p256dh = vec![0x04];
    p256dh.extend([9u8; 64]);
    pb::RegisterPushRequest {
        target: Some(Target::WebPush(pb::WebPushTarget {
            endpoint: endpoint.into(),
            p256dh,
            auth: vec![3; 16],
        })),
    }
}

/// The fields a status's `BadRequest` names.
fn bad_request_fields(s: &tonic::Status) -> Vec<String> {
    s.get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

async fn targets(d: &Device) -> Vec<pb::PushTarget> {
    d.push()
        .list_push_targets(pb::ListPushTargetsRequest {})
        .await
        .unwrap()
        .into_inner()
        .targets
}

async fn a_device_keeps_one_target_per_provider_and_loses_them_when_signed_out(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let c = server.couple().await;
    let watch = &c.alice_watch;
    let first = "AB".repeat(32);
    let got = watch
        .push()
        .register_push(apns(&first))
        .await
        .unwrap()
        .into_inner()
        .target
        .unwrap();
    let Some(pb::push_target::Target::Apns(a)) = &got.target else {
        panic!("{got:?}");
    };
    assert_eq!(a.device_token, "ab".repeat(32), "kept in lower case");
    assert_eq!(
        a.push_types,
        [
            pb::ApnsPushType::Alert as i32,
            pb::ApnsPushType::Complication as i32
        ]
    );
    watch
        .push()
        .register_push(web("https://up.example.net/push/abc"))
        .await
        .unwrap();
    // Registering APNs again replaces the token: still one target per provider.
    let second = "cd".repeat(32);
    watch.push().register_push(apns(&second)).await.unwrap();
    let mine = targets(watch).await;
    assert_eq!(mine.len(), 2, "{mine:?}");
    match &mine[0].target {
        Some(pb::push_target::Target::Apns(a)) => assert_eq!(a.device_token, second),
        other => panic!("{other:?}"),
    }
    match &mine[1].target {
        Some(pb::push_target::Target::WebPush(w)) => {
            assert_eq!(w.endpoint, "https://up.example.net/push/abc");
            assert_eq!(w.auth, vec![3; 16]);
        }
        other => panic!("{other:?}"),
    }
    // Each device sees only its own; the same token moving to another device leaves this one.
    assert!(targets(&c.alice).await.is_empty());
    c.bob.push().register_push(apns(&second)).await.unwrap();
    assert_eq!(
        targets(watch).await.len(),
        1,
        "the token moved to Bob's phone"
    );
    assert_eq!(targets(&c.bob).await.len(), 1);

    let removed = watch
        .push()
        .remove_push(pb::RemovePushRequest {
            provider: pb::PushProvider::WebPush as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(removed.removed);
    let again = watch
        .push()
        .remove_push(pb::RemovePushRequest {
            provider: pb::PushProvider::WebPush as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!again.removed, "removing twice is no error");

    // Signing Bob's phone out (from his watch) removes its targets.
    c.bob_watch
        .accounts()
        .revoke_device(pb::RevokeDeviceRequest {
            device_id: c.bob.id.clone(),
        })
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM push_targets WHERE device_id = $1")
        .bind(&c.bob.id)
        .fetch_one(server.state.db.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert_status(
        c.bob
            .push()
            .list_push_targets(pb::ListPushTargetsRequest {})
            .await,
        Code::Unauthenticated,
        "",
    );
    server.finish().await;
}

async fn bad_targets_are_refused_naming_the_field(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let alice = server.account("Alice", "UTC").await;
    // Without a VAPID key the server pushes with nothing, and says so.
    let off = alice
        .push()
        .get_push_settings(pb::GetPushSettingsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(off.providers.is_empty() && off.vapid_public_key.is_empty());
    for (req, field) in [
        (apns("not hex"), "apns.device_token"),
        (web("https://127.0.0.1:8443/x"), "web_push.endpoint"),
        (
            web("https://169.254.169.254/latest/meta-data"),
            "web_push.endpoint",
        ),
        (web("http://up.example.net/x"), "web_push.endpoint"),
        (pb::RegisterPushRequest { target: None }, "target"),
    ] {
        let status = alice.push().register_push(req).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(bad_request_fields(&status), [field], "{status:?}");
    }
    assert!(targets(&alice).await.is_empty(), "nothing was stored");
    assert_status(
        alice
            .push()
            .remove_push(pb::RemovePushRequest { provider: 0 })
            .await,
        Code::InvalidArgument,
        "provider",
    );
    server.finish().await;

    // An operator who runs a push distributor on their own network can allow it.
    let settings = Settings {
        push_allow_private_endpoints: true,
        ..Settings::default()
    };
    let Some(server) = TestServer::start_with(backend, settings).await else {
        return;
    };
    let bob = server.account("Bob", "UTC").await;
    bob.push()
        .register_push(web("http://192.168.1.20:8080/UP?token=x"))
        .await
        .unwrap();
    server.finish().await;
}

/// A fake provider: records every push and answers what the test tells it to.
struct Recorder {
    sent: std::sync::Mutex<Vec<(String, i64, bool)>>,
    answer: std::sync::Mutex<PushOutcome>,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder {
            sent: std::sync::Mutex::new(Vec::new()),
            answer: std::sync::Mutex::new(PushOutcome::Sent),
        }
    }
    fn answer(&self, o: PushOutcome) {
        *self.answer.lock().unwrap() = o;
    }
    fn take(&self) -> Vec<(String, i64, bool)> {
        std::mem::take(&mut *self.sent.lock().unwrap())
    }
}

impl Pusher for Recorder {
    fn send<'a>(
        &'a self,
        job: &'a PushJob,
        target: &'a tapline_server::domain::push::Target,
    ) -> Pin<Box<dyn Future<Output = PushOutcome> + Send + 'a>> {
        assert_eq!(target.provider, pb::PushProvider::WebPush);
        self.sent
            .lock()
            .unwrap()
            .push((job.device_id.clone(), job.seq, job.urgent));
        let answer = self.answer.lock().unwrap().clone();
        Box::pin(async move { answer })
    }
}

async fn pending_jobs(server: &TestServer) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM push_jobs")
        .fetch_one(server.state.db.pool())
        .await
        .unwrap()
}

async fn a_burst_wakes_an_offline_device_once_and_an_ack_cancels(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let c = server.couple().await;
    let watch = &c.bob_watch;
    watch
        .push()
        .register_push(web("https://up.example.net/push/bob-watch"))
        .await
        .unwrap();
    let fake = Recorder::new();
    let round = |at| {
        let writer = server.state.writer.clone();
        let backend = server.state.db.backend();
        let fake = &fake;
        async move { run_once(&writer, backend, fake, at).await.unwrap() }
    };

    // A burst of three taps while the watch has no stream: one job, due at once.
    for note in ["a", "b", "c"] {
        c.alice.tap(pb::TapKind::Tap, note).await.unwrap();
    }
    assert_eq!(pending_jobs(&server).await, 1, "collapsed into one");
    assert_eq!(round(server.clock.now()).await, 1);
    let sent = fake.take();
    assert_eq!(sent.len(), 1, "one wake-up per burst: {sent:?}");
    assert_eq!(sent[0].0, watch.id);
    assert!(sent[0].2, "a partner's tap is user-visible");
    // More of the burst waits out the collapse window, then is one more wake-up at most.
    c.alice.tap(pb::TapKind::Tap, "d").await.unwrap();
    c.alice.tap(pb::TapKind::Tap, "e").await.unwrap();
    assert_eq!(round(server.clock.now()).await, 0, "inside the window");
    assert!(fake.take().is_empty());
    let window = TimeDelta::from_std(COLLAPSE_WINDOW).unwrap() + TimeDelta::seconds(1);
    server.clock.advance(window);
    assert_eq!(round(server.clock.now()).await, 1);
    assert_eq!(fake.take().len(), 1, "the rest of the burst: one push");
    server.clock.advance(window);
    assert_eq!(round(server.clock.now()).await, 0);
    assert_eq!(
        pending_jobs(&server).await,
        0,
        "nothing new: the job is gone"
    );
    // Bob's phone has no target: it never gets a job.
    assert!(fake.take().is_empty());

    // An ack past the events cancels the wake-up.
    c.alice.tap(pb::TapKind::Hug, "d").await.unwrap();
    assert_eq!(pending_jobs(&server).await, 1);
    let newest: i64 = sqlx::query_scalar("SELECT next_seq FROM devices WHERE id = $1")
        .bind(&watch.id)
        .fetch_one(server.state.db.pool())
        .await
        .unwrap();
    watch
        .events()
        .ack_events(pb::AckEventsRequest { seq: newest as u64 })
        .await
        .unwrap();
    server.clock.advance(TimeDelta::seconds(3));
    assert_eq!(round(server.clock.now()).await, 0);
    assert!(fake.take().is_empty(), "no push to a device that has it");
    assert_eq!(pending_jobs(&server).await, 0);
    server.finish().await;
}

async fn a_push_is_retried_after_a_crash_or_a_refusal_and_a_gone_target_is_removed(
    backend: Backend,
) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let c = server.couple().await;
    let watch = &c.bob_watch;
    watch
        .push()
        .register_push(web("https://up.example.net/push/bob-watch"))
        .await
        .unwrap();
    let writer = server.state.writer.clone();
    let backend = server.state.db.backend();
    let fake = Recorder::new();

    c.alice.tap(pb::TapKind::Tap, "x").await.unwrap();
    server.clock.advance(TimeDelta::seconds(3));
    // The worker claims the job and dies before sending (kill -9 between claim and send).
    let leased = claim(&writer, backend, server.clock.now()).await.unwrap();
    assert_eq!(leased.len(), 1);
    // While leased, no other round takes it.
    assert_eq!(
        run_once(&writer, backend, &fake, server.clock.now())
            .await
            .unwrap(),
        0
    );
    // Once the lease has run out, it is sent: at least once, never lost.
    server
        .clock
        .advance(TimeDelta::from_std(LEASE).unwrap() + TimeDelta::seconds(1));
    assert_eq!(
        run_once(&writer, backend, &fake, server.clock.now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(fake.take().len(), 1);
    // The first worker outlived its lease and reports late: the job is another claim's now,
    // so its report changes nothing (no second push, no retry an hour away).
    let stale = leased.into_iter().next().unwrap();
    let target = stale.targets[0].clone();
    let before: Vec<(i64, i64)> = sqlx::query_as("SELECT due_at_us, pushed_seq FROM push_jobs")
        .fetch_all(server.state.db.pool())
        .await
        .unwrap();
    finish(
        &writer,
        stale,
        vec![(target, PushOutcome::Retry(Duration::from_secs(3600)))],
        server.clock.now(),
    )
    .await
    .unwrap();
    let after: Vec<(i64, i64)> = sqlx::query_as("SELECT due_at_us, pushed_seq FROM push_jobs")
        .fetch_all(server.state.db.pool())
        .await
        .unwrap();
    assert_eq!(before, after);

    // The provider asks to wait: the job stays and goes out after the delay.
    c.alice.tap(pb::TapKind::Tap, "y").await.unwrap();
    server
        .clock
        .advance(TimeDelta::from_std(COLLAPSE_WINDOW).unwrap() + TimeDelta::seconds(1));
    fake.answer(PushOutcome::Retry(Duration::from_secs(60)));
    assert_eq!(
        run_once(&writer, backend, &fake, server.clock.now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(fake.take().len(), 1);
    assert_eq!(pending_jobs(&server).await, 1);
    server.clock.advance(TimeDelta::seconds(30));
    assert_eq!(
        run_once(&writer, backend, &fake, server.clock.now())
            .await
            .unwrap(),
        0
    );
    fake.answer(PushOutcome::Gone);
    server.clock.advance(TimeDelta::seconds(31));
    assert_eq!(
        run_once(&writer, backend, &fake, server.clock.now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(fake.take().len(), 1);
    // The endpoint is gone for good: the target and its job are removed.
    assert!(targets(watch).await.is_empty());
    assert_eq!(pending_jobs(&server).await, 0);
    c.alice.tap(pb::TapKind::Tap, "z").await.unwrap();
    assert_eq!(pending_jobs(&server).await, 0, "no target, no job");
    // /metrics counts each answer by provider, and the queue is empty.
    let text = server.state.metrics.render(&server.state).await;
    for (outcome, n) in [("sent", 1), ("retry", 1), ("gone", 1)] {
        let series =
            format!(r#"tapline_push_outcomes_total{{provider="webpush",outcome="{outcome}"}} {n}"#);
        assert!(text.lines().any(|l| l == series), "{series} in\n{text}");
    }
    assert!(
        text.lines().any(|l| l == "tapline_push_queue_depth 0"),
        "{text}"
    );
    server.finish().await;
}
