//! Code-guessing limits behind a reverse proxy: keyed by the client the trusted proxy names,
//! counting failed guesses only, per account as well as per address, and per instance.

use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_proto::v1::account_service_client::AccountServiceClient;
use tapline_server::Settings;
use tapline_server::proxy::TrustedProxies;
use tonic::{Code, Request, Status};

on_both_databases!(
    code_guesses_count_failures_per_client_behind_a_trusted_proxy,
    invite_guesses_count_per_account_and_per_address,
    many_redemptions_at_once_from_one_address_are_never_refused,
);

/// Attempts allowed per key in these tests.
const ATTEMPTS: u32 = 3;

fn settings() -> Settings {
    Settings {
        jobs_every: None,
        code_attempts_per_15_min: ATTEMPTS,
        // The test connects from 127.0.0.1, as a proxy on the same host would.
        trusted_proxies: TrustedProxies::parse(&["127.0.0.1", "::1"]).unwrap(),
        ..Settings::default()
    }
}

fn from<T>(client: &str, message: T) -> Request<T> {
    let mut req = Request::new(message);
    let hops = format!("{client}, 127.0.0.1");
    req.metadata_mut()
        .insert("x-forwarded-for", hops.parse().unwrap());
    req
}

async fn redeem(
    server_channel: tonic::transport::Channel,
    client: &str,
    code: &str,
) -> Result<pb::RedeemLinkCodeResponse, Status> {
    let device = device_info(pb::DeviceKind::Watch, pb::Platform::Watchos, "watch");
    AccountServiceClient::new(server_channel)
        .redeem_link_code(from(
            client,
            pb::RedeemLinkCodeRequest {
                code: code.into(),
                device: Some(device),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn link_code(phone: &Device) -> String {
    phone
        .accounts()
        .create_link_code(pb::CreateLinkCodeRequest {})
        .await
        .unwrap()
        .into_inner()
        .code
}

async fn code_guesses_count_failures_per_client_behind_a_trusted_proxy(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, settings()).await else {
        return;
    };
    let office = "198.51.100.7";
    // Many people linking their watches from one address (one office, one carrier NAT) all
    // succeed: successful redeems do not count.
    for i in 0..(ATTEMPTS * 3) {
        let phone = server.account(&format!("User {i}"), "UTC").await;
        let code = link_code(&phone).await;
        redeem(server.channel().await, office, &code)
            .await
            .unwrap_or_else(|e| panic!("user {i}'s valid code refused: {e:?}"));
    }
    // Wrong guesses from one client count, up to the limit.
    let guesser = "203.0.113.66";
    for _ in 0..ATTEMPTS {
        assert_status(
            redeem(server.channel().await, guesser, "ZZZZ-ZZZZ").await,
            Code::NotFound,
            "",
        );
    }
    let refused = redeem(server.channel().await, guesser, "ZZZZ-ZZZZ").await;
    assert_status(refused, Code::ResourceExhausted, "link-code attempts");
    // Even a valid code from the limited client waits; the office is unaffected.
    let phone = server.account("Late", "UTC").await;
    let code = link_code(&phone).await;
    assert_status(
        redeem(server.channel().await, guesser, &code).await,
        Code::ResourceExhausted,
        "",
    );
    redeem(server.channel().await, office, &code)
        .await
        .expect("another client is not limited by the guesser");

    // Limits are per instance (in memory): a second instance on the same database gives the
    // same client its own attempts.
    let (_state, stop, task, addr) = server.second_instance().await;
    let second = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    for _ in 0..ATTEMPTS {
        assert_status(
            redeem(second.clone(), guesser, "ZZZZ-ZZZZ").await,
            Code::NotFound,
            "",
        );
    }
    assert_status(
        redeem(second, guesser, "ZZZZ-ZZZZ").await,
        Code::ResourceExhausted,
        "",
    );
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    server.finish().await;
}

async fn invite_guesses_count_per_account_and_per_address(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, settings()).await else {
        return;
    };
    let accept = |who: &Device, client: &str, code: &str| {
        let mut pairing = who.pairing();
        let req = from(client, pb::AcceptInviteRequest { code: code.into() });
        async move { pairing.accept_invite(req).await }
    };
    let mallory = server.account("Mallory", "UTC").await;
    for i in 0..ATTEMPTS {
        // A new address each time: the account's own count still stops it.
        let client = format!("192.0.2.{}", 10 + i);
        assert_status(
            accept(&mallory, &client, "ZZZZ-ZZZZ").await,
            Code::NotFound,
            "",
        );
    }
    assert_status(
        accept(&mallory, "192.0.2.99", "ZZZZ-ZZZZ").await,
        Code::ResourceExhausted,
        "invite attempts",
    );
    // Another person behind the same proxy, from a fresh address, pairs at once; accepting a
    // valid invite costs no attempt, so partners who pair and unpair are never limited.
    let (alice, bob) = (
        server.account("Alice", "UTC").await,
        server.account("Bob", "UTC").await,
    );
    for round in 0..(ATTEMPTS + 1) {
        let code = alice
            .pairing()
            .create_invite(pb::CreateInviteRequest {})
            .await
            .unwrap()
            .into_inner()
            .code;
        accept(&bob, "198.51.100.20", &code)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        bob.pairing().unpair(pb::UnpairRequest {}).await.unwrap();
    }
    server.finish().await;
}

/// Twelve people behind one address redeem valid link codes all at once (four times the
/// attempts a key has): none is refused, since attempts in flight hold nothing.
async fn many_redemptions_at_once_from_one_address_are_never_refused(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, settings()).await else {
        return;
    };
    let n = ATTEMPTS as usize * 4;
    let mut codes = Vec::with_capacity(n);
    for i in 0..n {
        let phone = server.account(&format!("P{i}"), "UTC").await;
        codes.push(link_code(&phone).await);
    }
    let channel = server.channel().await;
    let mut all = tokio::task::JoinSet::new();
    for code in codes {
        let channel = channel.clone();
        all.spawn(async move { redeem(channel, "203.0.113.9", &code).await });
    }
    let mut refused = Vec::new();
    while let Some(r) = all.join_next().await {
        if let Err(s) = r.unwrap() {
            refused.push(s);
        }
    }
    assert!(refused.is_empty(), "{refused:?}");
    server.finish().await;
}
