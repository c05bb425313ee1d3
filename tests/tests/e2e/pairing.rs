//! Accounts, devices, invites and unpairing.

use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use tonic::Code;

on_both_databases!(
    invites_refuse_wrong_expired_and_reused_codes,
    linking_a_watch,
    unpairing_stops_delivery,
    profile_changes_reach_the_partner
);

async fn invites_refuse_wrong_expired_and_reused_codes(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let alice = server.account("Alice", "Europe/Paris").await;
    let bob = server.account("Bob", "Asia/Tokyo").await;
    let carol = server.account("Carol", "UTC").await;
    let (mut alice_events, _) = alice.subscribe_caught_up(0).await;

    let invite = alice
        .pairing()
        .create_invite(pb::CreateInviteRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(invite.code.len(), 8);
    let expires = invite.expires_at.unwrap().seconds - start_instant().timestamp();
    assert_eq!(expires, 24 * 3600, "invites live 24 hours");

    // A code nobody made, a malformed code, and one's own code are refused.
    assert_status(
        bob.pairing()
            .accept_invite(pb::AcceptInviteRequest {
                code: "ZZZZZZZZ".into(),
            })
            .await,
        Code::NotFound,
        "code",
    );
    assert_status(
        bob.pairing()
            .accept_invite(pb::AcceptInviteRequest {
                code: "hello!".into(),
            })
            .await,
        Code::InvalidArgument,
        "code: must be 8 characters",
    );
    assert_status(
        alice
            .pairing()
            .accept_invite(pb::AcceptInviteRequest {
                code: invite.code.clone(),
            })
            .await,
        Code::FailedPrecondition,
        "own invite",
    );

    // An expired code is refused.
    server
        .clock
        .advance(chrono::Duration::hours(24) + chrono::Duration::seconds(1));
    assert_status(
        bob.pairing()
            .accept_invite(pb::AcceptInviteRequest {
                code: invite.code.clone(),
            })
            .await,
        Code::FailedPrecondition,
        "expired",
    );

    // A fresh code works however it is typed, once.
    let code = alice
        .pairing()
        .create_invite(pb::CreateInviteRequest {})
        .await
        .unwrap()
        .into_inner()
        .code;
    let typed = format!("{}-{}", &code[..4], &code[4..]).to_lowercase();
    let couple = bob
        .pairing()
        .accept_invite(pb::AcceptInviteRequest { code: typed })
        .await
        .unwrap()
        .into_inner()
        .couple
        .unwrap();
    let partner = couple.partner.unwrap();
    assert_eq!(partner.display_name, "Alice");
    assert_eq!(partner.clock.as_ref().unwrap().time_zone, "Europe/Paris");
    assert_status(
        carol
            .pairing()
            .accept_invite(pb::AcceptInviteRequest { code: code.clone() })
            .await,
        Code::FailedPrecondition,
        "already used",
    );

    // Alice's phone is told, with Bob's name and clock.
    match alice_events.next_significant().await.payload {
        Some(Payload::Paired(p)) => {
            let partner = p.couple.unwrap().partner.unwrap();
            assert_eq!(partner.display_name, "Bob");
            let clock = partner.clock.unwrap();
            assert_eq!(clock.time_zone, "Asia/Tokyo");
            assert_eq!(clock.utc_offset_seconds, 9 * 3600);
            // 2026-03-11 12:00:01 UTC is 21:00:01 in Tokyo.
            assert_eq!(clock.local_time, "2026-03-11T21:00:01+09:00");
        }
        other => panic!("expected paired, got {other:?}"),
    }
    let seen_by_alice = alice
        .pairing()
        .get_couple(pb::GetCoupleRequest {})
        .await
        .unwrap()
        .into_inner()
        .couple
        .unwrap();
    assert_eq!(seen_by_alice.couple_id, couple.couple_id);
    assert_eq!(seen_by_alice.partner.unwrap().display_name, "Bob");

    // Someone paired can neither invite nor accept.
    assert_status(
        alice
            .pairing()
            .create_invite(pb::CreateInviteRequest {})
            .await,
        Code::FailedPrecondition,
        "already paired",
    );
    let carol_code = carol
        .pairing()
        .create_invite(pb::CreateInviteRequest {})
        .await
        .unwrap()
        .into_inner()
        .code;
    assert_status(
        bob.pairing()
            .accept_invite(pb::AcceptInviteRequest { code: carol_code })
            .await,
        Code::FailedPrecondition,
        "already paired",
    );
    server.finish().await;
}

async fn linking_a_watch(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let alice = server.account("Alice", "Europe/Paris").await;
    let code = alice
        .accounts()
        .create_link_code(pb::CreateLinkCodeRequest {})
        .await
        .unwrap()
        .into_inner()
        .code;
    let anonymous = tapline_proto::v1::account_service_client::AccountServiceClient::new(
        server.channel().await,
    );
    let redeem = |code: String| {
        let mut client = anonymous.clone();
        async move {
            client
                .redeem_link_code(pb::RedeemLinkCodeRequest {
                    code,
                    device: Some(device_info(
                        pb::DeviceKind::Watch,
                        pb::Platform::WearOs,
                        "Pixel Watch",
                    )),
                })
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let linked = redeem(code.clone()).await.unwrap();
    assert_eq!(linked.account.unwrap().account_id, alice.account_id);
    assert_status(redeem(code).await, Code::FailedPrecondition, "already used");
    assert_status(redeem("00000000".into()).await, Code::NotFound, "code");

    let devices = alice
        .accounts()
        .list_devices(pb::ListDevicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .devices;
    assert_eq!(devices.len(), 2);
    assert!(devices[0].current && devices[0].kind == pb::DeviceKind::Phone as i32);
    assert_eq!(devices[1].name, "Pixel Watch");
    assert_eq!(devices[1].platform, pb::Platform::WearOs as i32);

    // The watch's own token works.
    let watch = alice.with_token(&linked.token);
    let me = watch
        .accounts()
        .get_account(pb::GetAccountRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.device.unwrap().kind, pb::DeviceKind::Watch as i32);

    // Link codes expire after 10 minutes.
    let code = alice
        .accounts()
        .create_link_code(pb::CreateLinkCodeRequest {})
        .await
        .unwrap()
        .into_inner()
        .code;
    server.clock.advance(chrono::Duration::minutes(10));
    assert_status(redeem(code).await, Code::FailedPrecondition, "expired");

    // Guessing is cut off: 10 attempts per 15 minutes from one address. The bucket refilled to
    // 10 while the clock moved 10 minutes, and the expired code took one: 9 are left.
    for _ in 0..9 {
        assert_status(redeem("ABCDEFGH".into()).await, Code::NotFound, "code");
    }
    let limited = assert_status(
        redeem("ABCDEFGH".into()).await,
        Code::ResourceExhausted,
        "too many link-code attempts",
    );
    let retry_ms: u64 = limited
        .metadata()
        .get("retry-after-ms")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_ms > 0 && retry_ms <= 90_000, "{retry_ms}");
    server.finish().await;
}

async fn unpairing_stops_delivery(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let c = server.couple().await;
    let (mut alice_events, _) = c.alice.subscribe_caught_up(0).await;
    let (mut bob_watch_events, _) = c.bob_watch.subscribe_caught_up(0).await;

    c.bob.pairing().unpair(pb::UnpairRequest {}).await.unwrap();
    for events in [&mut alice_events, &mut bob_watch_events] {
        match events.next_significant().await.payload {
            Some(Payload::Unpaired(u)) => assert_eq!(u.by_account_id, c.bob.account_id),
            other => panic!("expected unpaired, got {other:?}"),
        }
    }
    assert_status(
        c.alice.tap(pb::TapKind::Tap, "").await,
        Code::FailedPrecondition,
        "not paired",
    );
    assert_status(
        c.bob.tap(pb::TapKind::Tap, "").await,
        Code::FailedPrecondition,
        "not paired",
    );
    assert_status(
        c.alice.pairing().get_couple(pb::GetCoupleRequest {}).await,
        Code::FailedPrecondition,
        "not paired",
    );
    assert_status(
        c.alice.pairing().unpair(pb::UnpairRequest {}).await,
        Code::FailedPrecondition,
        "not paired",
    );

    // They can pair again, and taps flow again.
    server.pair(&c.bob, &c.alice).await;
    assert!(matches!(
        alice_events.next_significant().await.payload,
        Some(Payload::Paired(_))
    ));
    let sent = c.bob.tap(pb::TapKind::Hug, "again").await.unwrap();
    let (_, got) = alice_events.next_tap().await;
    assert_eq!(got.tap.unwrap().tap_id, sent.tap.unwrap().tap_id);
    server.finish().await;
}

async fn profile_changes_reach_the_partner(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let c = server.couple().await;
    let (mut bob_events, _) = c.bob.subscribe_caught_up(0).await;
    let updated = c
        .alice
        .accounts()
        .update_profile(pb::UpdateProfileRequest {
            display_name: Some("Ali".into()),
            time_zone: Some("Australia/Lord_Howe".into()),
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(
        (updated.display_name.as_str(), updated.time_zone.as_str()),
        ("Ali", "Australia/Lord_Howe")
    );
    match bob_events.next_significant().await.payload {
        Some(Payload::PartnerUpdated(p)) => {
            assert_eq!(
                p.changed,
                [
                    pb::PartnerChange::Name as i32,
                    pb::PartnerChange::TimeZone as i32
                ]
            );
            let partner = p.partner.unwrap();
            assert_eq!(partner.display_name, "Ali");
            // Lord Howe is on +11:00 (its 30-minute DST) on 10 March.
            assert_eq!(partner.clock.unwrap().utc_offset_seconds, 11 * 3600);
        }
        other => panic!("expected partner updated, got {other:?}"),
    }
    let couple = c
        .bob
        .pairing()
        .get_couple(pb::GetCoupleRequest {})
        .await
        .unwrap()
        .into_inner()
        .couple
        .unwrap();
    assert_eq!(
        couple.partner.unwrap().clock.unwrap().local_time,
        "2026-03-10T23:00:00+11:00"
    );
    assert_status(
        c.alice
            .accounts()
            .update_profile(pb::UpdateProfileRequest {
                display_name: None,
                time_zone: Some("Paris".into()),
            })
            .await,
        Code::InvalidArgument,
        "time_zone: unknown IANA time zone",
    );
    // Saving the same name again changes nothing, so Bob hears nothing before the next tap.
    c.alice
        .accounts()
        .update_profile(pb::UpdateProfileRequest {
            display_name: Some("Ali".into()),
            time_zone: None,
        })
        .await
        .unwrap();
    c.alice.tap(pb::TapKind::Tap, "after").await.unwrap();
    assert!(matches!(
        bob_events.next_significant().await.payload,
        Some(Payload::TapReceived(_))
    ));
    server.finish().await;
}
