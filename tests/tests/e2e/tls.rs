//! TLS on the listener: gRPC and gRPC-Web on one port, a certificate reload that keeps open
//! streams and serves the new certificate to the next connection. Certificates are made here
//! (rcgen), signed by a test CA the clients trust.

use std::net::SocketAddr;
use std::sync::Arc;

use tapline_e2e::tls::{Ca, write_pair};
use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_server::Settings;
use tapline_server::tls::Certificates;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

on_both_databases!(grpc_and_grpc_web_over_tls_survive_a_certificate_reload);

/// A TLS connection to `addr` trusting `ca`, offering `alpn`.
async fn connect(
    addr: SocketAddr,
    ca: &Ca,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

/// The certificate the server presents to a new connection, and the protocol it chose.
async fn served(addr: SocketAddr, ca: &Ca) -> (Vec<u8>, Option<Vec<u8>>) {
    let tls = connect(addr, ca, b"h2").await;
    let (_, session) = tls.get_ref();
    let cert = session.peer_certificates().unwrap()[0].to_vec();
    (cert, session.alpn_protocol().map(<[u8]>::to_vec))
}

/// A gRPC-Web health check over HTTP/1.1 in TLS; the whole response as text.
async fn grpc_web_health(addr: SocketAddr, ca: &Ca) -> String {
    let mut tls = connect(addr, ca, b"http/1.1").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    // One empty HealthCheckRequest: flag 0, length 0.
    let body = [0u8, 0, 0, 0, 0];
    let head = format!(
        "POST /grpc.health.v1.Health/Check HTTP/1.1\r\nhost: localhost\r\n\
         content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&body).await.unwrap();
    let mut out = Vec::new();
    // The server closes after the answer (connection: close); a TLS close_notify or a
    // plain EOF both end the read.
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn grpc_and_grpc_web_over_tls_survive_a_certificate_reload(backend: Backend) {
    let dir = std::env::temp_dir().join(format!("tapline-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = Ca::new();
    let (cert1, key1, der1) = ca.server();
    let (cert_path, key_path) = write_pair(&dir, &cert1, &key1);
    let certs = Certificates::load(&cert_path, &key_path).expect("load the pair");
    let settings = Settings {
        jobs_every: None,
        tls: Some(certs.clone()),
        ..Settings::default()
    };
    let Some(mut server) = TestServer::start_with(backend, settings).await else {
        return;
    };
    let addr = server.addr;

    // Plain HTTP/2 to a TLS listener gets no answer.
    let plain = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plain {
        let refused = tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await;
        assert!(
            refused.is_err(),
            "plain text must not be served: {refused:?}"
        );
    }

    server.client_tls = Some(
        tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(ca.pem()))
            .domain_name("localhost"),
    );
    let c = server.couple().await;
    let (mut bob_events, _) = c.bob.subscribe_caught_up(0).await;
    assert_eq!(
        served(addr, &ca).await,
        (der1.clone(), Some(b"h2".to_vec()))
    );

    let web = grpc_web_health(addr, &ca).await;
    assert!(web.starts_with("HTTP/1.1 200"), "{web}");
    assert!(web.contains("application/grpc-web"), "{web}");
    assert!(
        web.contains("grpc-status:0"),
        "gRPC-Web trailers in the body: {web}"
    );

    // A new pair on disk: the watcher's check sees the change and swaps it in.
    let (cert2, key2, der2) = ca.server();
    assert_ne!(der1, der2);
    write_pair(&dir, &cert2, &key2);
    assert!(certs.reload_if_changed().expect("reload"), "files changed");
    assert!(!certs.reload_if_changed().expect("no change"), "read once");
    assert_eq!(
        served(addr, &ca).await.0,
        der2,
        "the next connection gets the new one"
    );

    // The stream opened before the reload still delivers.
    c.alice
        .tap(pb::TapKind::Hug, "after the reload")
        .await
        .unwrap();
    let (_, got) = bob_events.next_tap().await;
    assert_eq!(got.tap.unwrap().note, "after the reload");
    // New connections work end to end with the new certificate.
    let carol = server.account("Carol", "UTC").await;
    assert!(!carol.token.is_empty());

    // A broken key is refused and the current pair stays.
    std::fs::write(&key_path, "-----BEGIN PRIVATE KEY-----\nnot a key\n").unwrap();
    let err = certs.reload().unwrap_err().to_string();
    assert!(err.contains("--tls-key"), "{err}");
    write_pair(&dir, &cert2, &key1);
    let err = certs.reload().unwrap_err().to_string();
    assert!(err.contains("does not belong"), "{err}");
    assert_eq!(served(addr, &ca).await.0, der2, "still the last good pair");

    drop(bob_events);
    server.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
}
