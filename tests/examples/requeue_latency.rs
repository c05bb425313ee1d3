//! Measures how long a tap queued while the server is down takes to reach the partner once the
//! server is back: with the app telling the core the network is back (`network_available`),
//! and with the core's own retry back-off alone.
//!
//! `cargo run --release -p tapline-e2e --example requeue_latency`

use std::sync::Arc;
use std::time::{Duration, Instant};

use tapline_core::*;
use tapline_server::{AppState, Db, Settings, SystemClock};
use tokio::sync::{mpsc, oneshot};

struct Forward(mpsc::UnboundedSender<ClientEvent>);

impl EventListener for Forward {
    fn on_event(&self, event: ClientEvent) -> Result<(), TaplineError> {
        let _ = self.0.send(event);
        Ok(())
    }
    fn on_connection_state(&self, _: ConnectionState) -> Result<(), TaplineError> {
        Ok(())
    }
}

async fn start(
    url: &str,
    addr: std::net::SocketAddr,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<tapline_server::Result<()>>,
) {
    let db = Db::connect(url).await.expect("database");
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let state = AppState::new(
        db,
        Arc::new(SystemClock),
        Settings {
            jobs_every: None,
            ..Settings::default()
        },
    )
    .await
    .expect("group commit");
    let (tx, rx) = oneshot::channel::<()>();
    (
        tx,
        tokio::spawn(tapline_server::serve(listener, state, async move {
            let _ = rx.await;
        })),
    )
}

fn client(addr: std::net::SocketAddr, dir: &std::path::Path, name: &str) -> Arc<TaplineClient> {
    TaplineClient::new(ClientConfig {
        server_url: format!("http://{addr}"),
        data_dir: dir.join(name).display().to_string(),
        device_kind: DeviceKind::Phone,
        platform: Platform::Linux,
        device_name: name.into(),
        poll_interval_ms: 1000,
        ca_cert_pem: None,
    })
    .expect("client")
}

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("tapline-requeue-{}", std::process::id()));
    let url = format!("sqlite://{}/server.db", dir.display());
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (mut stop, mut task) = start(&url, addr).await;
    let alice = client(addr, &dir, "alice");
    let bob = client(addr, &dir, "bob");
    alice
        .create_account("Alice".into(), "UTC".into())
        .await
        .unwrap();
    bob.create_account("Bob".into(), "UTC".into())
        .await
        .unwrap();
    bob.accept_invite(alice.create_invite().await.unwrap().code)
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _sub = bob.subscribe(Arc::new(Forward(tx)));
    let (atx, mut arx) = mpsc::unbounded_channel();
    let _alice_sub = alice.subscribe(Arc::new(Forward(atx)));

    for (label, tell) in [("with network_available()", true), ("back-off only", false)] {
        let mut samples = Vec::new();
        for downtime_ms in [500u64, 2000, 5000] {
            let _ = stop.send(());
            task.await.unwrap().unwrap();
            let queued = alice.send_tap(TapKind::Tap, None, None).unwrap();
            // Let the outbox fail and back off while the server is down.
            tokio::time::sleep(Duration::from_millis(downtime_ms)).await;
            (stop, task) = start(&url, addr).await;
            let back = Instant::now();
            if tell {
                alice.network_available();
                bob.network_available();
            }
            let sent = loop {
                match tokio::time::timeout(Duration::from_secs(60), arx.recv()).await {
                    Ok(Some(ClientEvent::TapStateChanged { tap }))
                        if tap.client_tap_id == queued.client_tap_id
                            && tap.state == TapState::Sent =>
                    {
                        break back.elapsed();
                    }
                    Ok(Some(_)) => continue,
                    _ => panic!("the tap was never sent"),
                }
            };
            let arrived = loop {
                match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
                    Ok(Some(ClientEvent::TapReceived { .. })) => break back.elapsed(),
                    Ok(Some(_)) => continue,
                    _ => panic!("the tap never arrived"),
                }
            };
            samples.push((downtime_ms, sent, arrived));
        }
        for (down, sent, arrived) in samples {
            println!(
                "{label:<26} server down {down:>5} ms: sent {:>7.1} ms, at the partner {:>7.1} ms after the server was back",
                sent.as_secs_f64() * 1000.0,
                arrived.as_secs_f64() * 1000.0
            );
        }
    }
    let _ = stop.send(());
    let _ = task.await;
    let _ = std::fs::remove_dir_all(dir);
}
