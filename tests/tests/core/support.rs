//! Helpers: cores on temporary folders, a collecting listener, a failing listener, and an
//! HTTP/1.1 host transport written with the standard library.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tapline_core::*;
use tapline_e2e::TestServer;
use tokio::sync::mpsc;

pub const PATIENCE: Duration = Duration::from_secs(15);

pub fn temp_dir() -> String {
    std::env::temp_dir()
        .join(format!(
            "tapline-core-e2e-{}",
            uuid::Uuid::new_v4().simple()
        ))
        .display()
        .to_string()
}

pub fn config(server: &TestServer, dir: &str, kind: DeviceKind) -> ClientConfig {
    ClientConfig {
        server_url: format!("http://{}", server.addr),
        data_dir: dir.into(),
        device_kind: kind,
        platform: if kind == DeviceKind::Watch {
            Platform::Watchos
        } else {
            Platform::Ios
        },
        device_name: String::new(),
        poll_interval_ms: 100,
        ca_cert_pem: None,
    }
}

/// A core and the folder it keeps its store in.
pub struct Core {
    pub client: Arc<TaplineClient>,
    pub dir: String,
}

impl std::ops::Deref for Core {
    type Target = TaplineClient;
    fn deref(&self) -> &TaplineClient {
        &self.client
    }
}

pub fn core(server: &TestServer, kind: DeviceKind) -> Core {
    reopen(server, &temp_dir(), kind)
}

pub fn reopen(server: &TestServer, dir: &str, kind: DeviceKind) -> Core {
    Core {
        client: TaplineClient::new(config(server, dir, kind)).unwrap(),
        dir: dir.into(),
    }
}

/// Alice (Europe/Paris) and Bob (America/New_York), paired, each with a phone core.
pub async fn paired_cores(server: &TestServer) -> (Core, Core) {
    let alice = core(server, DeviceKind::Phone);
    alice
        .create_account("Alice".into(), "Europe/Paris".into())
        .await
        .unwrap();
    let bob = core(server, DeviceKind::Phone);
    bob.create_account("Bob".into(), "America/New_York".into())
        .await
        .unwrap();
    let code = alice.create_invite().await.unwrap();
    let couple = bob.accept_invite(code.code).await.unwrap();
    assert_eq!(couple.partner.display_name, "Alice");
    (alice, bob)
}

/// A listener that forwards events to the test.
pub struct Collector {
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<ClientEvent>>,
    _sub: Arc<Subscription>,
}

struct Forward(mpsc::UnboundedSender<ClientEvent>);

impl EventListener for Forward {
    fn on_event(&self, event: ClientEvent) -> Result<(), TaplineError> {
        let _ = self.0.send(event);
        Ok(())
    }
    fn on_connection_state(&self, _state: ConnectionState) -> Result<(), TaplineError> {
        Ok(())
    }
}

impl Collector {
    pub fn subscribe(client: &TaplineClient) -> Collector {
        let (tx, rx) = mpsc::unbounded_channel();
        let sub = client.subscribe(Arc::new(Forward(tx)));
        Collector {
            rx: tokio::sync::Mutex::new(rx),
            _sub: sub,
        }
    }

    pub async fn next(&self) -> ClientEvent {
        let mut rx = self.rx.lock().await;
        tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .expect("an event within the patience bound")
            .expect("subscription alive")
    }

    pub async fn wait_for(&self, pred: impl Fn(&ClientEvent) -> bool) -> ClientEvent {
        loop {
            let e = self.next().await;
            if pred(&e) {
                return e;
            }
        }
    }

    pub async fn next_tap(&self) -> ReceivedTap {
        match self
            .wait_for(|e| matches!(e, ClientEvent::TapReceived { .. }))
            .await
        {
            ClientEvent::TapReceived { tap } => tap,
            _ => unreachable!(),
        }
    }

    pub async fn wait_for_tap_state(&self, client_tap_id: &str, state: TapState) -> LocalTap {
        match self
            .wait_for(|e| matches!(e, ClientEvent::TapStateChanged { tap } if tap.client_tap_id == client_tap_id && tap.state == state))
            .await
        {
            ClientEvent::TapStateChanged { tap } => tap,
            _ => unreachable!(),
        }
    }
}

/// A listener that fails on every event after forwarding it (and panics once).
pub struct FailingListener {
    tx: mpsc::UnboundedSender<ClientEvent>,
    panicked: Mutex<bool>,
}

impl FailingListener {
    pub fn new() -> (FailingListener, mpsc::UnboundedReceiver<ClientEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            FailingListener {
                tx,
                panicked: Mutex::new(false),
            },
            rx,
        )
    }
}

impl EventListener for FailingListener {
    fn on_event(&self, event: ClientEvent) -> Result<(), TaplineError> {
        let _ = self.tx.send(event);
        let mut p = self.panicked.lock().unwrap();
        if !*p {
            *p = true;
            panic!("a bug in the app's listener");
        }
        Err(TaplineError::Internal {
            reason: "the app's listener failed".into(),
        })
    }
    fn on_connection_state(&self, _state: ConnectionState) -> Result<(), TaplineError> {
        Err(TaplineError::Internal {
            reason: "also failing".into(),
        })
    }
}

/// gRPC-Web over HTTP/1.1 with `std::net`, as a host app would do with its own HTTP stack.
pub struct Http1Transport;

impl HttpTransport for Http1Transport {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TaplineError> {
        let net = |e: std::io::Error| TaplineError::Network {
            reason: e.to_string(),
        };
        let rest = request
            .url
            .strip_prefix("http://")
            .ok_or(TaplineError::Network {
                reason: "http only".into(),
            })?;
        let (host, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
        let mut conn = std::net::TcpStream::connect(host).map_err(net)?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(net)?;
        let mut head = format!(
            "{} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\ncontent-length: {}\r\n",
            request.method,
            request.body.len()
        );
        for h in &request.headers {
            if !h.name.eq_ignore_ascii_case("content-length")
                && !h.name.eq_ignore_ascii_case("host")
            {
                head.push_str(&format!("{}: {}\r\n", h.name, h.value));
            }
        }
        head.push_str("\r\n");
        conn.write_all(head.as_bytes()).map_err(net)?;
        conn.write_all(&request.body).map_err(net)?;
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).map_err(net)?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or(TaplineError::Network {
                reason: "bad response".into(),
            })?
            + 4;
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<HttpHeader> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| HttpHeader {
                name: n.trim().to_lowercase(),
                value: v.trim().to_owned(),
            })
            .collect();
        let mut body = raw[split..].to_vec();
        if headers
            .iter()
            .any(|h| h.name == "transfer-encoding" && h.value.contains("chunked"))
        {
            body = dechunk(&body);
        }
        let headers = headers
            .into_iter()
            .filter(|h| h.name != "transfer-encoding")
            .collect();
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&body[..end]).trim(), 16).unwrap_or(0);
        body = &body[end + 2..];
        if size == 0 || body.len() < size {
            break;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[(size + 2).min(body.len())..];
    }
    out
}
