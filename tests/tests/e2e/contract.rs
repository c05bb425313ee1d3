//! Contract gaps closed: check-ins listed page by page, invites and link codes withdrawn (and
//! a new invite replacing the old), devices renamed, time zones in any case and old aliases
//! stored under their current name.

use std::collections::HashSet;

use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_proto::v1::account_service_client::AccountServiceClient;
use tapline_proto::v1::checkin_service_client::CheckinServiceClient;
use tapline_proto::v1::event::Payload;
use tonic::Code;

on_both_databases!(
    checkins_come_page_by_page_without_a_gap,
    invites_and_link_codes_can_be_withdrawn,
    devices_can_be_renamed,
    time_zones_are_read_in_any_case_and_aliases_stored_by_their_current_name,
);

fn checkins(d: &Device) -> CheckinServiceClient<Authed> {
    CheckinServiceClient::new(d.authed_channel())
}

async fn ask(d: &Device) -> String {
    checkins(d)
        .ask_partner(pb::AskPartnerRequest {
            client_checkin_id: uuid::Uuid::now_v7().to_string(),
            category: 0,
            prompt_id: "energy-01".into(),
        })
        .await
        .expect("ask")
        .into_inner()
        .checkin
        .unwrap()
        .checkin_id
}

async fn answer(d: &Device, id: &str, v: u32) {
    checkins(d)
        .answer_checkin(pb::AnswerCheckinRequest {
            checkin_id: id.into(),
            answer: Some(pb::Answer {
                value: Some(pb::answer::Value::Scale(v)),
            }),
        })
        .await
        .expect("answer");
}

async fn page(
    d: &Device,
    open_only: bool,
    limit: u32,
    token: &str,
) -> Result<pb::ListCheckinsResponse, tonic::Status> {
    checkins(d)
        .list_checkins(pb::ListCheckinsRequest {
            open_only,
            limit,
            page_token: token.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// 7 check-ins (3 open, 4 revealed) in pages of 3: open ones first, then the newest, each
/// exactly once; one revealed between two pages comes again, never lost; bad tokens refused.
async fn checkins_come_page_by_page_without_a_gap(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let c = server.couple().await;
    let mut asked = Vec::new();
    for i in 0..7 {
        server.clock.advance(chrono::Duration::minutes(1));
        let id = ask(&c.alice).await;
        if i % 2 == 0 {
            answer(&c.alice, &id, 3).await;
            answer(&c.bob, &id, 4).await;
        }
        asked.push(id);
    }
    // Newest first within each bucket: open (1, 3, 5) then revealed (0, 2, 4, 6).
    let expected: Vec<&str> = [5, 3, 1, 6, 4, 2, 0]
        .iter()
        .map(|i| asked[*i].as_str())
        .collect();
    let (mut seen, mut token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let p = page(&c.bob, false, 3, &token).await.expect("page");
        pages += 1;
        assert!(p.checkins.len() <= 3);
        seen.extend(p.checkins.iter().map(|k| k.checkin_id.clone()));
        if p.next_page_token.is_empty() {
            break;
        }
        token = p.next_page_token;
    }
    assert_eq!(seen, expected);
    assert_eq!(pages, 3);

    let open = page(&c.bob, true, 2, "").await.unwrap();
    let ids: Vec<&str> = open
        .checkins
        .iter()
        .map(|k| k.checkin_id.as_str())
        .collect();
    assert_eq!(ids, expected[..2]);
    let rest = page(&c.bob, true, 2, &open.next_page_token).await.unwrap();
    assert_eq!(rest.checkins.len(), 1);
    assert_eq!(rest.checkins[0].checkin_id, expected[2]);
    assert!(rest.next_page_token.is_empty());

    // The open check-in at the top is revealed between page 1 and page 2: it comes again,
    // revealed, and nothing is skipped.
    let first = page(&c.bob, false, 2, "").await.unwrap();
    answer(&c.alice, &asked[5], 2).await;
    answer(&c.bob, &asked[5], 2).await;
    let mut all: Vec<pb::Checkin> = first.checkins.clone();
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let p = page(&c.bob, false, 2, &token).await.unwrap();
        all.extend(p.checkins);
        token = p.next_page_token;
    }
    let distinct: HashSet<&str> = all.iter().map(|k| k.checkin_id.as_str()).collect();
    assert_eq!(distinct.len(), 7, "none skipped");
    let last_of_5 = all.iter().rev().find(|k| k.checkin_id == asked[5]).unwrap();
    assert_eq!(last_of_5.status, pb::CheckinStatus::Revealed as i32);

    let t = first_token(&c.bob).await;
    assert_status(
        page(&c.bob, true, 2, &t).await,
        Code::InvalidArgument,
        "page_token",
    );
    for bad in ["nope", "c1.0.0.1.x", &"9".repeat(200)] {
        assert_status(
            page(&c.bob, false, 2, bad).await,
            Code::InvalidArgument,
            "page_token",
        );
    }
    server.finish().await;
}

async fn first_token(d: &Device) -> String {
    let t = page(d, false, 1, "").await.unwrap().next_page_token;
    assert!(!t.is_empty());
    t
}

async fn redeem(
    server: &TestServer,
    code: &str,
) -> Result<pb::RedeemLinkCodeResponse, tonic::Status> {
    AccountServiceClient::new(server.channel().await)
        .redeem_link_code(pb::RedeemLinkCodeRequest {
            code: code.into(),
            device: Some(device_info(
                pb::DeviceKind::Watch,
                pb::Platform::WearOs,
                "watch",
            )),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// A second invite replaces the first; a withdrawn invite or link code is refused like a wrong
/// code; withdrawing twice says there was nothing left.
async fn invites_and_link_codes_can_be_withdrawn(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let alice = server.account("Alice", "Europe/Paris").await;
    let bob = server.account("Bob", "Europe/Paris").await;
    let invite = || async {
        alice
            .pairing()
            .create_invite(pb::CreateInviteRequest {})
            .await
            .unwrap()
            .into_inner()
            .code
    };
    let accept = |code: String| {
        let bob = &bob;
        async move {
            bob.pairing()
                .accept_invite(pb::AcceptInviteRequest { code })
                .await
        }
    };
    let revoke_invite = || async {
        alice
            .pairing()
            .revoke_invite(pb::RevokeInviteRequest {})
            .await
            .unwrap()
            .into_inner()
            .revoked
    };

    let old = invite().await;
    let new = invite().await;
    assert_status(accept(old).await, Code::NotFound, "");
    assert!(revoke_invite().await);
    assert!(!revoke_invite().await, "nothing left to withdraw");
    assert_status(accept(new).await, Code::NotFound, "");
    let fresh = invite().await;
    accept(fresh).await.expect("a fresh invite works");

    let codes: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..2 {
            v.push(
                alice
                    .accounts()
                    .create_link_code(pb::CreateLinkCodeRequest {})
                    .await
                    .unwrap()
                    .into_inner()
                    .code,
            );
        }
        v
    };
    let withdrawn = alice
        .accounts()
        .revoke_link_codes(pb::RevokeLinkCodesRequest {})
        .await
        .unwrap()
        .into_inner()
        .revoked;
    assert_eq!(withdrawn, 2);
    for code in &codes {
        assert_status(redeem(&server, code).await, Code::NotFound, "");
    }
    // Bob's codes are his: Alice's withdrawal did not touch them.
    let bobs = bob
        .accounts()
        .create_link_code(pb::CreateLinkCodeRequest {})
        .await
        .unwrap()
        .into_inner()
        .code;
    let none = alice
        .accounts()
        .revoke_link_codes(pb::RevokeLinkCodesRequest {})
        .await
        .unwrap()
        .into_inner()
        .revoked;
    assert_eq!(none, 0);
    redeem(&server, &bobs)
        .await
        .expect("Bob's code still works");
    server.finish().await;
}

/// A device is renamed by its own account only, within the name rules, and lists so.
async fn devices_can_be_renamed(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let c = server.couple().await;
    let rename = |d: &Device, id: &str, name: &str| {
        let (client, req) = (
            d.accounts(),
            pb::RenameDeviceRequest {
                device_id: id.into(),
                name: name.into(),
            },
        );
        async move {
            let mut client = client;
            client
                .rename_device(req)
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let done = rename(&c.alice, &c.alice_watch.id, "  Alice's Galaxy Watch ")
        .await
        .expect("rename");
    let device = done.device.unwrap();
    assert_eq!(device.name, "Alice's Galaxy Watch");
    assert!(!device.current);
    let listed = c
        .alice_watch
        .accounts()
        .list_devices(pb::ListDevicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .devices;
    let watch = listed
        .iter()
        .find(|d| d.device_id == c.alice_watch.id)
        .unwrap();
    assert_eq!(watch.name, "Alice's Galaxy Watch");
    assert!(watch.current);

    assert_status(
        rename(&c.bob, &c.alice_watch.id, "mine now").await,
        Code::NotFound,
        "device",
    );
    assert_status(
        rename(&c.alice, &c.alice.id, " ").await,
        Code::InvalidArgument,
        "name",
    );
    assert_status(
        rename(&c.alice, &c.alice.id, &"x".repeat(41)).await,
        Code::InvalidArgument,
        "name",
    );
    assert_status(
        rename(&c.alice, "not-an-id", "x").await,
        Code::InvalidArgument,
        "device_id",
    );
    server.finish().await;
}

/// "us/eastern" makes an account in America/New_York; an update to "ASIA/CALCUTTA" stores
/// Asia/Kolkata, which the partner is told; an unknown zone is still refused.
async fn time_zones_are_read_in_any_case_and_aliases_stored_by_their_current_name(
    backend: Backend,
) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let created = AccountServiceClient::new(server.channel().await)
        .create_account(pb::CreateAccountRequest {
            display_name: "Sam".into(),
            time_zone: "us/eastern".into(),
            device: Some(device_info(pb::DeviceKind::Phone, pb::Platform::Ios, "p")),
        })
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.account.unwrap().time_zone, "America/New_York");
    let sam = server.account("Sam", "europe/PARIS").await;
    let kim = server.account("Kim", "Etc/UTC").await;
    server.pair(&sam, &kim).await;
    let got = kim
        .accounts()
        .get_account(pb::GetAccountRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.account.unwrap().time_zone, "UTC");

    let (mut kim_live, _) = kim.subscribe_caught_up(0).await;
    let updated = sam
        .accounts()
        .update_profile(pb::UpdateProfileRequest {
            display_name: None,
            time_zone: Some("ASIA/CALCUTTA".into()),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.account.unwrap().time_zone, "Asia/Kolkata");
    let told = kim_live
        .wait_for(|p| matches!(p, Payload::PartnerUpdated(_)))
        .await;
    let Some(Payload::PartnerUpdated(u)) = told.payload else {
        unreachable!()
    };
    assert_eq!(u.partner.unwrap().clock.unwrap().time_zone, "Asia/Kolkata");
    let stored: String = sqlx::query_scalar("SELECT time_zone FROM accounts WHERE id = $1")
        .bind(&sam.account_id)
        .fetch_one(server.state.db.pool())
        .await
        .unwrap();
    assert_eq!(stored, "Asia/Kolkata");
    assert_status(
        sam.accounts()
            .update_profile(pb::UpdateProfileRequest {
                display_name: None,
                time_zone: Some("Mars/Olympus".into()),
            })
            .await,
        Code::InvalidArgument,
        "time_zone",
    );
    server.finish().await;
}
