//! Authentication, authorisation between couples, and hostile input.

use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tonic::Code;

on_both_databases!(
    another_couples_ids_and_revoked_tokens_are_refused,
    bad_input_is_refused_and_writes_nothing
);

async fn another_couples_ids_and_revoked_tokens_are_refused(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let c = server.couple().await;
    let carol = server.account("Carol", "UTC").await;
    let dave = server.account("Dave", "UTC").await;
    server.pair(&carol, &dave).await;
    let (mut carol_events, _) = carol.subscribe_caught_up(0).await;

    let alices_tap = c
        .alice
        .tap(pb::TapKind::Kiss, "private")
        .await
        .unwrap()
        .tap
        .unwrap();
    // Carol cannot see or touch Alice's tap, devices or couple.
    assert_status(
        carol
            .taps()
            .report_tap(pb::ReportTapRequest {
                tap_id: alices_tap.tap_id.clone(),
                kind: 1,
            })
            .await,
        Code::NotFound,
        "tap",
    );
    assert_status(
        carol
            .accounts()
            .revoke_device(pb::RevokeDeviceRequest {
                device_id: c.alice_watch.id.clone(),
            })
            .await,
        Code::NotFound,
        "device",
    );
    let carols_couple = carol
        .pairing()
        .get_couple(pb::GetCoupleRequest {})
        .await
        .unwrap()
        .into_inner()
        .couple
        .unwrap();
    assert_eq!(carols_couple.partner.unwrap().display_name, "Dave");
    // Nothing of Alice's reached Carol: her next event is Dave's tap.
    let from_dave = dave.tap(pb::TapKind::Tap, "").await.unwrap().tap.unwrap();
    let (_, got) = carol_events.next_tap().await;
    assert_eq!(got.tap.unwrap().tap_id, from_dave.tap_id);

    // Missing and forged tokens.
    let mut anonymous = tapline_proto::v1::pairing_service_client::PairingServiceClient::new(
        server.channel().await,
    );
    assert_status(
        anonymous.get_couple(pb::GetCoupleRequest {}).await,
        Code::Unauthenticated,
        "bearer token",
    );
    assert_status(
        c.alice
            .with_token("tpl_forged")
            .pairing()
            .get_couple(pb::GetCoupleRequest {})
            .await,
        Code::Unauthenticated,
        "bearer token",
    );
    assert_status(
        c.alice
            .with_token(&"x".repeat(5000))
            .taps()
            .send_tap(tap_request(pb::TapKind::Tap, ""))
            .await,
        Code::Unauthenticated,
        "bearer token",
    );

    // Alice signs her watch out: its stream ends, its token stops working, its events stop.
    let (mut watch_events, _) = c.alice_watch.subscribe_caught_up(0).await;
    c.alice
        .accounts()
        .revoke_device(pb::RevokeDeviceRequest {
            device_id: c.alice_watch.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        watch_events.end_status().await.code(),
        Code::Unauthenticated
    );
    assert_status(
        c.alice_watch.tap(pb::TapKind::Tap, "").await,
        Code::Unauthenticated,
        "revoked",
    );
    assert_status(
        c.alice_watch
            .events()
            .fetch_events(pb::FetchEventsRequest {
                after_seq: 0,
                limit: 0,
            })
            .await,
        Code::Unauthenticated,
        "revoked",
    );
    let devices = c
        .alice
        .accounts()
        .list_devices(pb::ListDevicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .devices;
    assert_eq!(
        devices
            .iter()
            .map(|d| d.device_id.as_str())
            .collect::<Vec<_>>(),
        [c.alice.id.as_str()]
    );
    assert_status(
        c.alice
            .accounts()
            .revoke_device(pb::RevokeDeviceRequest {
                device_id: c.alice_watch.id.clone(),
            })
            .await,
        Code::NotFound,
        "device",
    );
    server.finish().await;
}

async fn bad_input_is_refused_and_writes_nothing(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let c = server.couple().await;
    let (mut bob_events, _) = c.bob.subscribe_caught_up(0).await;

    let custom = |segments: Vec<(u32, u32)>| {
        let mut r = tap_request(pb::TapKind::Custom, "");
        r.rhythm = Some(pb::Rhythm {
            segments: segments
                .into_iter()
                .map(|(d, i)| pb::HapticSegment {
                    duration_ms: d,
                    intensity: i,
                })
                .collect(),
        });
        r
    };
    let mut no_id = tap_request(pb::TapKind::Tap, "");
    no_id.client_tap_id.clear();
    let mut bad_id = tap_request(pb::TapKind::Tap, "");
    bad_id.client_tap_id = "'; DROP TABLE taps; --".into();
    let mut unknown_kind = tap_request(pb::TapKind::Tap, "");
    unknown_kind.kind = 42;
    let mut rhythm_on_plain = tap_request(pb::TapKind::Tap, "");
    rhythm_on_plain.rhythm = custom(vec![(100, 100)]).rhythm;
    let cases = [
        (no_id, "client_tap_id: must not be empty"),
        (bad_id, "client_tap_id: must be a UUID"),
        (
            tap_request(pb::TapKind::Unspecified, ""),
            "kind: must be one of",
        ),
        (unknown_kind, "kind: must be one of"),
        (
            tap_request(pb::TapKind::Tap, &"x".repeat(81)),
            "note: must be at most 80 characters",
        ),
        (
            tap_request(pb::TapKind::Tap, "line\nbreak"),
            "note: must not contain control characters",
        ),
        (
            tap_request(pb::TapKind::Custom, ""),
            "rhythm: is required for a custom tap",
        ),
        (rhythm_on_plain, "rhythm: is only allowed on a custom tap"),
        (
            custom(vec![(100, 100); 33]),
            "rhythm.segments: must have at most 32 segments",
        ),
        (custom(vec![(5, 100)]), "rhythm.segments.duration_ms"),
        (custom(vec![(100, 300)]), "rhythm.segments.intensity"),
        (custom(vec![(2000, 100); 6]), "lasts 12000 ms in all"),
    ];
    for (req, needle) in cases {
        assert_status(c.alice.send(req).await, Code::InvalidArgument, needle);
    }

    // Oversized messages are refused before they are decoded.
    let huge = tap_request(pb::TapKind::Tap, &"x".repeat(100_000));
    let status = c.alice.send(huge).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );

    // Account creation checks every field.
    let mut anon = tapline_proto::v1::account_service_client::AccountServiceClient::new(
        server.channel().await,
    );
    let phone = Some(device_info(
        pb::DeviceKind::Phone,
        pb::Platform::Android,
        "",
    ));
    let create =
        |name: &str, zone: &str, device: Option<pb::DeviceInfo>| pb::CreateAccountRequest {
            display_name: name.into(),
            time_zone: zone.into(),
            device,
        };
    for (req, needle) in [
        (
            create("", "UTC", phone.clone()),
            "display_name: must not be empty",
        ),
        (
            create(&"n".repeat(41), "UTC", phone.clone()),
            "display_name: must be at most 40 characters",
        ),
        (
            create("Sam", "Nowhere/City", phone.clone()),
            "time_zone: unknown IANA time zone",
        ),
        (create("Sam", "UTC", None), "device: is required"),
        (
            create(
                "Sam",
                "UTC",
                Some(device_info(
                    pb::DeviceKind::Unspecified,
                    pb::Platform::Ios,
                    "",
                )),
            ),
            "device.kind",
        ),
        (
            create(
                "Sam",
                "UTC",
                Some(device_info(
                    pb::DeviceKind::Phone,
                    pb::Platform::Unspecified,
                    "",
                )),
            ),
            "device.platform",
        ),
    ] {
        assert_status(
            anon.create_account(req).await,
            Code::InvalidArgument,
            needle,
        );
    }

    // None of it was written: Bob's next event is a good tap.
    let good = c
        .alice
        .tap(pb::TapKind::Tap, "fine")
        .await
        .unwrap()
        .tap
        .unwrap();
    let (event, got) = bob_events.next_tap().await;
    assert_eq!(got.tap.unwrap().tap_id, good.tap_id);
    assert_eq!(event.seq, 2, "only `paired` came before it");
    server.finish().await;
}
