//! Push targets through the core: register, replace, list, remove; refusals come back typed.

use tapline_core::*;
use tapline_e2e::{Backend, TestServer};

use super::support::*;

tapline_e2e::on_both_databases!(
    a_watch_registers_its_own_push_targets,
    a_push_fetches_what_is_pending_once,
    a_push_gives_up_at_its_deadline_when_the_server_does_not_answer,
);

async fn a_watch_registers_its_own_push_targets(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, _bob) = paired_cores(&server).await;
    let watch = core(&server, DeviceKind::Watch);
    watch
        .redeem_link_code(alice.create_link_code().await.unwrap().code)
        .await
        .unwrap();
    let apns = PushTarget::Apns {
        device_token: "0f".repeat(32),
        topic: "app.tapline.watchkitapp".into(),
        sandbox: true,
        push_types: vec![ApnsPushKind::Alert, ApnsPushKind::Complication],
    };
    let settings = watch.push_settings().await.unwrap();
    assert!(
        settings.providers.is_empty(),
        "this test server has no VAPID key"
    );
    let got = watch.register_push(apns.clone()).await.unwrap();
    assert_eq!(got.target, apns);
    let mut p256dh = vec![4u8];
    p256dh.extend([1u8; 64]);
    let web = PushTarget::WebPush {
        endpoint: "https://up.example.net/UP?token=abc".into(),
        p256dh,
        auth: vec![2; 16],
    };
    watch.register_push(web.clone()).await.unwrap();
    let all: Vec<PushTarget> = watch
        .push_targets()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.target)
        .collect();
    assert_eq!(all, vec![apns, web]);
    assert!(alice.push_targets().await.unwrap().is_empty(), "per device");
    assert!(watch.remove_push(PushProvider::Apns).await.unwrap());
    assert!(!watch.remove_push(PushProvider::Apns).await.unwrap());
    assert_eq!(watch.push_targets().await.unwrap().len(), 1);

    let err = watch
        .register_push(PushTarget::WebPush {
            endpoint: "https://10.0.0.7/push".into(),
            p256dh: vec![4; 65],
            auth: vec![2; 16],
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TaplineError::InvalidInput { reason } if reason.starts_with("web_push.endpoint:")),
        "{err:?}"
    );
}

async fn a_push_fetches_what_is_pending_once(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = paired_cores(&server).await;
    let bob_events = Collector::subscribe(&bob);
    bob_events
        .wait_for(|e| matches!(e, ClientEvent::CaughtUp))
        .await;
    let watch = core(&server, DeviceKind::Watch);
    watch
        .redeem_link_code(bob.create_link_code().await.unwrap().code)
        .await
        .unwrap();
    alice
        .send_tap(TapKind::Hug, Some("for you".into()), None)
        .unwrap();
    alice.flush_outbox().await.unwrap();

    // The watch has no stream: the push brings the tap in, within the deadline.
    let got = watch.handle_push("{}".into(), 5000).await.unwrap();
    let taps: Vec<&ReceivedTap> = got
        .iter()
        .filter_map(|e| match e {
            ClientEvent::TapReceived { tap } => Some(tap),
            _ => None,
        })
        .collect();
    assert_eq!(taps.len(), 1, "{got:?}");
    assert_eq!(taps[0].note.as_deref(), Some("for you"));
    // The same push again (a provider's duplicate): nothing new.
    let again = watch.handle_push("{}".into(), 5000).await.unwrap();
    assert!(
        !again
            .iter()
            .any(|e| matches!(e, ClientEvent::TapReceived { .. })),
        "{again:?}"
    );

    // Bob's phone got the tap on its stream; a late push for it returns nothing twice.
    assert_eq!(bob_events.next_tap().await.note.as_deref(), Some("for you"));
    for payload in [r#"{"v":1,"seq":1,"urgent":true}"#, "{}", "not json"] {
        let late = bob.handle_push(payload.into(), 5000).await.unwrap();
        assert!(
            !late
                .iter()
                .any(|e| matches!(e, ClientEvent::TapReceived { .. })),
            "{payload}: {late:?}"
        );
    }
}

async fn a_push_gives_up_at_its_deadline_when_the_server_does_not_answer(backend: Backend) {
    let Some(mut server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = paired_cores(&server).await;
    alice
        .send_tap(TapKind::Hug, Some("before".into()), None)
        .unwrap();
    alice.flush_outbox().await.unwrap();
    // An FCM data message carries `seq` as a string; this one is new to Bob: it fetches.
    let got = bob
        .handle_push(r#"{"v":"1","seq":"1","urgent":"true"}"#.into(), 5000)
        .await
        .unwrap();
    assert!(
        got.iter()
            .any(|e| matches!(e, ClientEvent::TapReceived { .. })),
        "{got:?}"
    );

    // The server goes away and its address now accepts connections but never answers: the
    // push's fetch stops at its deadline instead of holding the extension.
    let addr = server.addr;
    server.stop().await;
    let hole = tokio::net::TcpListener::bind(addr).await.unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((sock, _)) = hole.accept().await {
            open.push(sock);
        }
    });
    let started = std::time::Instant::now();
    let err = bob
        .handle_push(r#"{"v":1,"seq":99}"#.into(), 300)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, TaplineError::Network { .. }), "{err:?}");
    assert!(
        took < std::time::Duration::from_secs(3),
        "gave up after {took:?}"
    );
    // What it stored before stays: the tap from the first push is still Bob's.
    assert!(
        bob.received_taps(10)
            .unwrap()
            .iter()
            .any(|t| t.note.as_deref() == Some("before"))
    );
    held.abort();
}
