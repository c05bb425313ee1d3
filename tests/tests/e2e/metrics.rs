//! `/metrics` scraped over HTTP after known traffic: the figures match what was done.

use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_server::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_both_databases!(metrics_match_the_traffic);

/// `GET path` on the admin listener; (status line, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The value of the sample `name{labels}` (labels as written), or 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.split(' ').next().unwrap().parse().unwrap())
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    body
}

async fn metrics_match_the_traffic(backend: Backend) {
    let settings = Settings {
        jobs_every: None,
        taps_per_minute: 3,
        ..Settings::default()
    };
    let Some(server) = TestServer::start_with(backend, settings).await else {
        return;
    };
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    tokio::spawn(tapline_server::metrics::serve_admin(
        admin,
        server.state.clone(),
    ));
    let c = server.couple().await;
    let before = scrape(admin_addr).await;
    let backlog_before = sample(&before, "tapline_inbox_backlog");

    let send_tap = r#"tapline_rpc_requests_total{method="/tapline.v1.TapService/SendTap""#;
    let (mut bob_events, _) = c.bob.subscribe_caught_up(0).await;
    for note in ["one", "two", "three"] {
        c.alice.tap(pb::TapKind::Hug, note).await.unwrap();
    }
    let limited = c.alice.tap(pb::TapKind::Hug, "four").await;
    assert_status(limited, tonic::Code::ResourceExhausted, "too many taps");
    assert_status(
        c.alice
            .with_token("not-a-token")
            .tap(pb::TapKind::Hug, "x")
            .await,
        tonic::Code::Unauthenticated,
        "",
    );
    for _ in 0..3 {
        bob_events.next_tap().await;
    }
    let after = scrape(admin_addr).await;

    assert_eq!(
        sample(&after, &format!(r#"{send_tap},code="OK"}}"#)),
        3.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            &format!(r#"{send_tap},code="RESOURCE_EXHAUSTED"}}"#)
        ),
        1.0
    );
    assert_eq!(
        sample(&after, &format!(r#"{send_tap},code="UNAUTHENTICATED"}}"#)),
        1.0
    );
    assert_eq!(
        sample(
            &after,
            r#"tapline_rpc_duration_seconds_count{method="/tapline.v1.TapService/SendTap",code="OK"}"#
        ),
        3.0
    );
    assert_eq!(
        sample(
            &after,
            r#"tapline_rate_limit_refusals_total{limit="too many taps"}"#
        ),
        1.0
    );
    // Bob's phone holds a stream open.
    assert_eq!(sample(&after, "tapline_live_streams"), 1.0, "{after}");
    // Each tap waits in three inboxes until they ack: Bob's phone (it read them on its stream
    // but has not acked), Bob's watch, and the sender's copy on Alice's watch.
    assert_eq!(
        sample(&after, "tapline_inbox_backlog") - backlog_before,
        9.0
    );
    // Every tap was a job of the group commit.
    assert!(
        sample(&after, "tapline_commit_batch_jobs_sum") >= 3.0,
        "{after}"
    );
    assert!(sample(&after, "tapline_commit_batch_duration_seconds_count") >= 1.0);
    assert!(
        after.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );

    // The stream's end is counted once it closes.
    drop(bob_events);
    let (status, _) = get(admin_addr, "/nope").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    server.finish().await;
}
