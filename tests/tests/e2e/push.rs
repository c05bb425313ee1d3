//! Push targets: each device registers, replaces, lists and removes its own; input is checked
//! (tokens, keys, endpoints that would make the server post to its own network); signing a
//! device out removes its targets.

use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_server::Settings;
use tonic::Code;
use tonic_types::StatusExt;

use pb::register_push_request::Target;

on_both_databases!(
    a_device_keeps_one_target_per_provider_and_loses_them_when_signed_out,
    bad_targets_are_refused_naming_the_field,
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
