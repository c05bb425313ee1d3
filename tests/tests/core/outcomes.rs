//! What the outbox does with a send the server will not take: a signed-out device's tap is
//! refused for good (and the device can start over), a rate-limited one waits the server's
//! delay and stays queued.

use tapline_core::*;
use tapline_e2e::{Backend, TestServer};
use tapline_server::Settings;

use super::support::*;

tapline_e2e::on_both_databases!(
    a_signed_out_device_refuses_its_tap_and_can_start_over,
    a_rate_limited_tap_stays_queued_with_the_servers_delay,
    core_and_server_count_a_notes_characters_alike,
    taps_refused_for_good_do_not_count_against_the_rate_limit,
);

async fn a_signed_out_device_refuses_its_tap_and_can_start_over(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, _bob) = paired_cores(&server).await;
    let watch = core(&server, DeviceKind::Watch);
    let code = alice.create_link_code().await.unwrap();
    let me = watch.redeem_link_code(code.code).await.unwrap();
    assert!(!me.signed_out);
    // Alice signs her watch out from her phone.
    alice.revoke_device(me.device_id.clone()).await.unwrap();

    let tap = watch.send_tap(TapKind::Tap, None, None).unwrap();
    // Refused by this flush or by the background sender just before: either way, nothing is
    // left queued and nothing was sent.
    let report = watch.flush_outbox().await.unwrap();
    assert_eq!((report.sent_taps, report.unsent), (0, 0));
    let tap = watch.local_tap(tap.client_tap_id).unwrap().unwrap();
    assert!(
        matches!(
            tap.state,
            TapState::Refused {
                code: RefusalCode::SignedOut,
                ..
            }
        ),
        "{:?}",
        tap.state
    );
    assert!(watch.account().unwrap().signed_out, "the core remembers it");
    // Another flush sends nothing again: refused is final.
    assert_eq!(watch.flush_outbox().await.unwrap().refused, 0);

    // Not a dead end: creating an account says what to do, forgetting lets it start over.
    let err = watch
        .create_account("Alex".into(), "UTC".into())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TaplineError::Refused {
                code: RefusalCode::AlreadySignedIn,
                ..
            }
        ),
        "{err:?}"
    );
    watch.forget_account().unwrap();
    assert!(watch.account().is_none());
    assert!(watch.local_taps(10).unwrap().is_empty());
    let code = alice.create_link_code().await.unwrap();
    let again = watch.redeem_link_code(code.code).await.unwrap();
    assert!(!again.signed_out);
    assert_ne!(again.device_id, me.device_id, "a new device on the account");
    let tap = watch.send_tap(TapKind::Hug, None, None).unwrap();
    assert_eq!(watch.flush_outbox().await.unwrap().unsent, 0);
    assert!(matches!(
        watch.local_tap(tap.client_tap_id).unwrap().unwrap().state,
        TapState::Sent | TapState::Delivered
    ));
}

async fn a_rate_limited_tap_stays_queued_with_the_servers_delay(backend: Backend) {
    let settings = Settings {
        taps_per_minute: 3,
        ..Settings::default()
    };
    let Some(server) = TestServer::start_with(backend, settings).await else {
        return;
    };
    let (alice, _bob) = paired_cores(&server).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            alice
                .send_tap(TapKind::Tap, None, None)
                .unwrap()
                .client_tap_id,
        );
    }
    let err = alice.flush_outbox().await.unwrap_err();
    let TaplineError::RateLimited { retry_after_ms } = err else {
        panic!("expected a rate limit, got {err:?}");
    };
    assert!(
        retry_after_ms > 0 && retry_after_ms <= 60_000,
        "{retry_after_ms}"
    );
    let states: Vec<TapState> = ids
        .iter()
        .map(|id| alice.local_tap(id.clone()).unwrap().unwrap().state)
        .collect();
    let sent = states
        .iter()
        .filter(|s| !matches!(s, TapState::Queued))
        .count();
    assert_eq!(sent, 3, "three went out: {states:?}");
    // Strictly in order: the sent ones first, the rest still queued (not refused).
    assert!(
        states[3..].iter().all(|s| *s == TapState::Queued),
        "{states:?}"
    );
    assert_eq!(alice.glance().unsent_count, 2);
}

async fn core_and_server_count_a_notes_characters_alike(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = paired_cores(&server).await;
    let bob_events = Collector::subscribe(&bob);
    // 80 flags are 80 characters to a person (and to Swift), though 160 code points.
    let flags = "🇫🇷".repeat(80);
    let tap = alice
        .send_tap(TapKind::Tap, Some(flags.clone()), None)
        .unwrap();
    assert_eq!(alice.flush_outbox().await.unwrap().unsent, 0);
    assert!(
        matches!(
            alice.local_tap(tap.client_tap_id).unwrap().unwrap().state,
            TapState::Sent | TapState::Delivered
        ),
        "the server accepted what the core accepted"
    );
    assert_eq!(
        bob_events.next_tap().await.note.as_deref(),
        Some(flags.as_str())
    );
    // One more is refused on the device, naming the field, before anything is queued.
    let err = alice
        .send_tap(TapKind::Tap, Some("🇫🇷".repeat(81)), None)
        .unwrap_err();
    assert!(
        matches!(&err, TaplineError::InvalidInput { reason } if reason.starts_with("note:")),
        "{err:?}"
    );
    assert_eq!(alice.glance().unsent_count, 0);
}

async fn taps_refused_for_good_do_not_count_against_the_rate_limit(backend: Backend) {
    let settings = Settings {
        taps_per_minute: 3,
        ..Settings::default()
    };
    let Some(server) = TestServer::start_with(backend, settings).await else {
        return;
    };
    let alice = core(&server, DeviceKind::Phone);
    alice
        .create_account("Alice".into(), "UTC".into())
        .await
        .unwrap();
    // Three taps before pairing: each refused, NOT_PAIRED.
    for _ in 0..3 {
        let tap = alice.send_tap(TapKind::Tap, None, None).unwrap();
        alice.flush_outbox().await.unwrap();
        assert!(matches!(
            alice.local_tap(tap.client_tap_id).unwrap().unwrap().state,
            TapState::Refused {
                code: RefusalCode::NotPaired,
                ..
            }
        ));
    }
    let bob = core(&server, DeviceKind::Phone);
    bob.create_account("Bob".into(), "UTC".into())
        .await
        .unwrap();
    bob.accept_invite(alice.create_invite().await.unwrap().code)
        .await
        .unwrap();
    // Paired: the whole allowance is still there.
    for _ in 0..3 {
        alice.send_tap(TapKind::Tap, None, None).unwrap();
    }
    let report = alice.flush_outbox().await.unwrap();
    assert_eq!(report.unsent, 0, "none rate limited: {report:?}");
}
