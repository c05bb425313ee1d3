//! Leaving through the real core: the export it returns is the whole document, and a deletion
//! forgets the account on this device while the partner's core learns why the couple ended.

use tapline_core::*;
use tapline_e2e::{Backend, TestServer};

use super::support::*;

tapline_e2e::on_both_databases!(the_core_exports_and_deletes,);

async fn the_core_exports_and_deletes(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = paired_cores(&server).await;
    bob.send_tap(TapKind::Heartbeat, Some("see you soon".into()), None)
        .unwrap();
    assert_eq!(bob.flush_outbox().await.unwrap().unsent, 0);

    let doc: serde_json::Value =
        serde_json::from_str(&bob.export_my_data().await.unwrap()).expect("one JSON document");
    assert_eq!(doc["account"]["display_name"], "Bob");
    assert_eq!(doc["couples"][0]["partner"]["display_name"], "Alice");
    let taps = doc["taps"].as_array().unwrap();
    assert_eq!(taps.len(), 1);
    assert_eq!(taps[0]["note"], "see you soon");
    assert_eq!(taps[0]["direction"], "sent");
    assert_eq!(taps[0]["kind"], "heartbeat");

    let wrong = bob.delete_account("sure".into()).await;
    assert!(
        matches!(wrong, Err(TaplineError::InvalidInput { .. })),
        "{wrong:?}"
    );
    assert!(
        bob.account().is_some(),
        "a refused deletion forgets nothing"
    );

    bob.delete_account("delete my account".into())
        .await
        .unwrap();
    assert!(
        bob.account().is_none(),
        "the core forgot the deleted account"
    );
    assert!(matches!(
        bob.export_my_data().await,
        Err(TaplineError::Unauthenticated)
    ));

    let events = alice.sync_now().await.unwrap();
    assert!(
        events.iter().any(|e| matches!(
            e,
            ClientEvent::Unpaired {
                by_partner: true,
                partner_deleted: true
            }
        )),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, ClientEvent::TapReceived { .. })),
        "Bob's tap was deleted before Alice fetched it: {events:?}"
    );
    assert!(alice.glance().partner_name.is_none());
    server.finish().await;
}
