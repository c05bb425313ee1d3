//! Push targets through the core: register, replace, list, remove; refusals come back typed.

use tapline_core::*;
use tapline_e2e::{Backend, TestServer};

use super::support::*;

tapline_e2e::on_both_databases!(a_watch_registers_its_own_push_targets,);

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
