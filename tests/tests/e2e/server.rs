//! The server as infrastructure: health, gRPC-Web over HTTP/1.1, heartbeats, graceful drain.

use std::time::Duration;

use prost::Message;
use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use tapline_server::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

on_both_databases!(
    health_reports_serving_then_draining,
    grpc_web_over_http1_works,
    idle_streams_get_heartbeats
);

async fn health_reports_serving_then_draining(backend: Backend) {
    let settings = Settings {
        drain: Duration::from_millis(300),
        ..Settings::default()
    };
    let Some(mut server) = TestServer::start_with(backend, settings).await else {
        return;
    };
    let mut health = HealthClient::new(server.channel().await);
    for service in ["", "tapline.v1.TapService", "tapline.v1.EventService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let mut watch = health
        .watch(HealthCheckRequest { service: "".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );

    let c = server.couple().await;
    let (mut live, _) = c.bob.subscribe_caught_up(0).await;
    server.stop().await;
    // Draining: health turned NOT_SERVING, and the live stream was told to reconnect. (The
    // health watch itself never ends on its own, so the drain bound closed the server.)
    let next = tokio::time::timeout(PATIENCE, watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    let status = live.end_status().await;
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("shutting down"));
    server.finish().await;
}

/// One gRPC-Web call over a plain HTTP/1.1 connection; returns the message and `grpc-status`.
async fn grpc_web_call(addr: std::net::SocketAddr, path: &str, body: &[u8]) -> (Vec<u8>, String) {
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(body);
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        frame.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&frame).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(PATIENCE, conn.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head")
        + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let mut body = raw[split..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    // Frames: data (flag 0x00) then trailers (flag 0x80).
    let (mut message, mut trailers) = (Vec::new(), String::new());
    let mut rest = body.as_slice();
    while rest.len() >= 5 {
        let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        let payload = &rest[5..5 + len];
        if rest[0] & 0x80 == 0 {
            message = payload.to_vec();
        } else {
            trailers = String::from_utf8_lossy(payload).to_lowercase();
        }
        rest = &rest[5 + len..];
    }
    let status = trailers
        .lines()
        .find_map(|l| l.strip_prefix("grpc-status:").map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| {
            head.lines()
                .find_map(|l| l.strip_prefix("grpc-status:").map(|v| v.trim().to_owned()))
                .unwrap_or_default()
        });
    (message, status)
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap().trim(), 16)
                .unwrap();
        body = &body[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

async fn grpc_web_over_http1_works(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let req = pb::CreateAccountRequest {
        display_name: "Watch Person".into(),
        time_zone: "Pacific/Kiritimati".into(),
        device: Some(device_info(
            pb::DeviceKind::Watch,
            pb::Platform::Watchos,
            "",
        )),
    };
    let (msg, status) = grpc_web_call(
        server.addr,
        "/tapline.v1.AccountService/CreateAccount",
        &req.encode_to_vec(),
    )
    .await;
    assert_eq!(status, "0");
    let created = pb::CreateAccountResponse::decode(msg.as_slice()).unwrap();
    assert_eq!(created.account.unwrap().time_zone, "Pacific/Kiritimati");

    // The token from the gRPC-Web call works over native gRPC, and errors come back as trailers.
    let bad = pb::CreateAccountRequest {
        display_name: String::new(),
        ..req
    };
    let (_, status) = grpc_web_call(
        server.addr,
        "/tapline.v1.AccountService/CreateAccount",
        &bad.encode_to_vec(),
    )
    .await;
    assert_eq!(status, (Code::InvalidArgument as i32).to_string());
    let mut client = tapline_proto::v1::account_service_client::AccountServiceClient::new(
        server.channel().await,
    );
    let mut get = tonic::Request::new(pb::GetAccountRequest {});
    get.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", created.token).parse().unwrap(),
    );
    let me = client.get_account(get).await.unwrap().into_inner();
    assert_eq!(me.account.unwrap().display_name, "Watch Person");
    server.finish().await;
}

async fn idle_streams_get_heartbeats(backend: Backend) {
    let settings = Settings {
        heartbeat: Duration::from_millis(50),
        ..Settings::default()
    };
    let Some(server) = TestServer::start_with(backend, settings).await else {
        return;
    };
    let alice = server.account("Alice", "UTC").await;
    let (mut events, backlog) = alice.subscribe_caught_up(0).await;
    assert!(backlog.is_empty());
    for _ in 0..2 {
        let e = events.next().await;
        assert!(matches!(e.payload, Some(Payload::Heartbeat(_))), "{e:?}");
        assert_eq!(e.seq, 0, "heartbeats are not stored");
    }
    server.finish().await;
}
