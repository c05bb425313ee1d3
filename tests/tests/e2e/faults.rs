//! Faults and the real core's traffic: receipts for every tap under load (no deadlocks), a
//! full disk, terminated PostgreSQL backends, undecodable requests, cursors ahead of the
//! inbox, and a database that cannot be opened at start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::Connection;
use tapline_e2e::*;
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use tapline_server::{Db, Settings};
use tonic::Code;
use tonic_types::StatusExt;

on_both_databases!(
    receipts_for_every_tap_never_deadlock,
    a_full_disk_answers_unavailable_then_recovers,
    invalid_utf8_is_invalid_argument_naming_the_field,
    a_cursor_ahead_of_the_inbox_is_reset,
    start_up_on_a_database_it_cannot_use_fails_fast,
);

fn generous() -> Settings {
    Settings {
        taps_per_minute: 100_000,
        ..Settings::default()
    }
}

/// PostgreSQL's count of deadlocks detected in the test database so far.
async fn deadlocks(url: &str) -> i64 {
    let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::query_scalar("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(&mut c)
        .await
        .expect("pg_stat_database")
}

/// Reads a recipient device's stream the way the core does: every event is "stored", then
/// acked at once (the ack records DELIVERED for partner taps); the phone reports FELT for
/// every second tap. Returns the taps received (by id, with how often) once `n` arrived.
async fn recipient(device: Device, n: usize, felt: bool) -> HashMap<String, usize> {
    let mut events = device.subscribe(0).await;
    let mut got: HashMap<String, usize> = HashMap::new();
    let mut i = 0usize;
    while got.len() < n {
        // The backlog (taps sent before this stream opened) and live events alike.
        let e = events.next().await;
        if let Some(Payload::TapReceived(t)) = &e.payload
            && !t.from_self
        {
            let id = t.tap.as_ref().unwrap().tap_id.clone();
            *got.entry(id.clone()).or_default() += 1;
            if felt && i.is_multiple_of(2) {
                device
                    .taps()
                    .report_tap(pb::ReportTapRequest {
                        tap_id: id,
                        kind: pb::ReceiptKind::Felt as i32,
                    })
                    .await
                    .expect("report felt");
            }
            i += 1;
        }
        if e.seq > 0 {
            device
                .events()
                .ack_events(pb::AckEventsRequest { seq: e.seq })
                .await
                .expect("ack");
        }
    }
    got
}

/// Every receipt of `kind` a device's whole inbox holds, per tap.
async fn receipts(device: &Device, kind: pb::ReceiptKind) -> HashMap<String, usize> {
    let (_, backlog) = device.subscribe_caught_up(0).await;
    let mut per_tap: HashMap<String, usize> = HashMap::new();
    for e in backlog {
        if let Some(Payload::TapReceipt(r)) = e.payload
            && r.kind == kind as i32
        {
            for id in std::iter::once(r.tap_id).chain(r.also_tap_ids) {
                *per_tap.entry(id).or_default() += 1;
            }
        }
    }
    per_tap
}

/// The scenario: each couple's watch sends taps fast while both partner devices ack
/// every event as it arrives (DELIVERED for each tap) and the phone reports FELT for half,
/// several couples at once; on PostgreSQL the partners use a second server instance. Every
/// tap succeeds, arrives once per device, and gets exactly one DELIVERED receipt on each of
/// the sender's devices; PostgreSQL detects no deadlock.
async fn receipts_for_every_tap_never_deadlock(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, generous()).await else {
        return;
    };
    const COUPLES: usize = 4;
    const TAPS: usize = 60;
    const SENDERS: usize = 6;
    let second = match backend {
        Backend::Postgres => Some(server.second_instance().await),
        Backend::Sqlite => None,
    };
    let before = match backend {
        Backend::Postgres => deadlocks(server.database_url()).await,
        Backend::Sqlite => 0,
    };
    let mut couples = Vec::new();
    for _ in 0..COUPLES {
        let mut c = server.couple().await;
        if let Some((_, _, _, addr)) = &second {
            c.bob.connect_to(*addr).await;
            c.bob_watch.connect_to(*addr).await;
        }
        couples.push(c);
    }
    let mut readers = Vec::new();
    let mut senders = Vec::new();
    for c in &couples {
        readers.push(tokio::spawn(recipient(c.bob.clone(), TAPS, true)));
        readers.push(tokio::spawn(recipient(c.bob_watch.clone(), TAPS, false)));
        for s in 0..SENDERS {
            let watch = c.alice_watch.clone();
            senders.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..TAPS / SENDERS {
                    let sent = watch
                        .tap(pb::TapKind::Heartbeat, &format!("{s}-{i}"))
                        .await
                        .expect("every tap succeeds");
                    ids.push(sent.tap.unwrap().tap_id);
                }
                ids
            }));
        }
    }
    let mut sent = Vec::new();
    for s in senders {
        sent.extend(s.await.unwrap());
    }
    assert_eq!(sent.len(), COUPLES * TAPS);
    for r in readers {
        let got = r.await.unwrap();
        assert_eq!(got.len(), TAPS);
        assert!(got.values().all(|n| *n == 1), "each tap once per device");
    }
    // Each of the sender's devices has exactly one DELIVERED receipt per tap, felt for half.
    for c in &couples {
        for device in [&c.alice, &c.alice_watch] {
            let delivered = receipts(device, pb::ReceiptKind::Delivered).await;
            assert_eq!(delivered.len(), TAPS, "a DELIVERED receipt for every tap");
            assert!(delivered.values().all(|n| *n == 1), "and only one");
            let felt = receipts(device, pb::ReceiptKind::Felt).await;
            assert_eq!(felt.len(), TAPS / 2);
        }
    }
    if backend == Backend::Postgres {
        assert_eq!(deadlocks(server.database_url()).await - before, 0);
    }
    if let Some((_, stop, task, _)) = second {
        let _ = stop.send(());
        let _ = task.await;
    }
    server.finish().await;
}

/// A small filesystem of our own (tmpfs), to fill. `None` (skipped with a notice) when this
/// process may not mount one, except under CI.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(mb: u32, owner: Option<&str>) -> Option<SmallDisk> {
        let path = std::env::temp_dir().join(format!("tapline-disk-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).unwrap();
        let mut opts = format!("size={mb}m,mode=0777");
        if let Some(user) = owner {
            let uid = std::process::Command::new("id").args(["-u", user]).output();
            if let Ok(out) = uid {
                opts.push_str(&format!(
                    ",uid={}",
                    String::from_utf8_lossy(&out.stdout).trim()
                ));
            }
        }
        let done = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(&path)
            .status();
        match done {
            Ok(s) if s.success() => Some(SmallDisk { path }),
            other => {
                let _ = std::fs::remove_dir(&path);
                assert!(
                    std::env::var_os("CI").is_none(),
                    "cannot mount a tmpfs under CI: {other:?}"
                );
                eprintln!("cannot mount a tmpfs ({other:?}); skipping the full-disk test");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Fills what is left with a file.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path.join("filler")).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
        let _ = f.flush();
    }

    fn free(&self) {
        std::fs::remove_file(self.path.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    /// Unmounts, but never under a PostgreSQL tablespace that still exists: PostgreSQL could
    /// then never checkpoint again (its dirty pages of that database would have nowhere to
    /// go). The database and tablespace are dropped first (a failed test never reached
    /// `finish`), with room made for the checkpoint that dropping takes.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path.join("filler"));
        let under = format!(
            "pg_tablespace_location(t.oid) LIKE '{}%'",
            self.path.display()
        );
        let psql = |sql: &str| -> Option<Vec<String>> {
            let out = std::process::Command::new("psql")
                .args(["-Atq", "-c", sql, &postgres_admin_url()])
                .output()
                .ok()?;
            out.status.success().then(|| {
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_owned)
                    .collect()
            })
        };
        let spaces = psql(&format!(
            "SELECT t.spcname FROM pg_tablespace t WHERE {under}"
        ));
        if spaces.as_ref().is_some_and(|s| !s.is_empty()) {
            let dbs = psql(&format!(
                "SELECT d.datname FROM pg_database d JOIN pg_tablespace t \
                 ON t.oid = d.dattablespace WHERE {under}"
            ))
            .unwrap_or_default();
            for db in dbs {
                psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
            }
            for space in spaces.unwrap_or_default() {
                psql(&format!("DROP TABLESPACE IF EXISTS {space}"));
            }
            let left = psql(&format!(
                "SELECT t.spcname FROM pg_tablespace t WHERE {under}"
            ));
            if !left.is_some_and(|l| l.is_empty()) {
                eprintln!(
                    "a tablespace is still on {}: left mounted so PostgreSQL keeps working",
                    self.path.display()
                );
                return;
            }
        }
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The database's disk fills up: writes answer UNAVAILABLE (reason DATABASE_UNAVAILABLE, a
/// retry delay) and health turns NOT_SERVING, reads still answer; once space returns, health is
/// SERVING again without a restart, every kind of write works (the request pool is not
/// poisoned), and the tap that failed is stored once when retried.
async fn a_full_disk_answers_unavailable_then_recovers(backend: Backend) {
    let owner = (backend == Backend::Postgres).then_some("postgres");
    let Some(disk) = SmallDisk::mount(24, owner) else {
        return;
    };
    let place = match backend {
        Backend::Sqlite => disk.path().to_path_buf(),
        // The tablespace folder must belong to the server's user and be empty.
        Backend::Postgres => {
            let dir = disk.path().join("pg");
            std::fs::create_dir(&dir).unwrap();
            let _ = std::process::Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status();
            dir
        }
    };
    let Some(server) = TestServer::start_in(backend, generous(), Some(&place)).await else {
        return;
    };
    let c = server.couple().await;
    let (mut bob_events, _) = c.bob.subscribe_caught_up(0).await;
    disk.fill();

    let mut failed = None;
    for i in 0..20_000 {
        let req = tap_request(pb::TapKind::Tap, &"x".repeat(80));
        match c.alice.send(req.clone()).await {
            Ok(_) => continue,
            Err(s) => {
                assert_eq!(s.code(), Code::Unavailable, "tap {i}: {}", s.message());
                assert_eq!(reason_of(&s), "DATABASE_UNAVAILABLE");
                assert!(s.get_error_details().retry_info().is_some());
                failed = Some(req);
                break;
            }
        }
    }
    let failed = failed.expect("a full disk refuses writes");
    server.wait_health(false).await;
    // Reads are served from the pool meanwhile.
    c.alice
        .accounts()
        .list_devices(pb::ListDevicesRequest {})
        .await
        .expect("reads still work");

    disk.free();
    server.wait_health(true).await;
    let first = c
        .alice
        .send(failed.clone())
        .await
        .expect("the retry is stored");
    assert!(!first.duplicate, "nothing of the failed attempt was stored");
    let again = c.alice.send(failed.clone()).await.unwrap();
    assert!(again.duplicate);
    let got = bob_events
        .wait_for(|p| matches!(p, Payload::TapReceived(t) if t.tap.as_ref().unwrap().client_tap_id == failed.client_tap_id))
        .await;
    assert!(got.seq > 0);
    // Every kind of write works again, on every pooled path.
    for _ in 0..8 {
        server.account("Carol", "Europe/Berlin").await;
        c.bob
            .settings()
            .update_settings(pb::UpdateSettingsRequest {
                receipts_enabled: Some(true),
                ..Default::default()
            })
            .await
            .expect("settings");
        tapline_proto::v1::streak_service_client::StreakServiceClient::new(
            c.alice.authed_channel(),
        )
        .get_streak(pb::GetStreakRequest {})
        .await
        .expect("streak");
    }
    server.finish().await;
    drop(disk);
}

/// A request field with invalid UTF-8 (sent as raw bytes, as a hostile or broken client
/// would) answers INVALID_ARGUMENT with the field named in BadRequest, and changes nothing.
async fn invalid_utf8_is_invalid_argument_naming_the_field(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let c = server.couple().await;
    // CreateAccountRequest { display_name: "Sam\xff\xfe", time_zone, device }.
    let mut account = vec![0x0a, 5, 0x53, 0x61, 0x6d, 0xff, 0xfe];
    account.extend([0x12, 12]);
    account.extend(b"Europe/Paris");
    let s = raw_call(
        &server,
        None,
        "/tapline.v1.AccountService/CreateAccount",
        account,
    )
    .await
    .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{}", s.message());
    let details = s.get_error_details();
    assert_eq!(
        details.bad_request().unwrap().field_violations[0].field,
        "display_name"
    );
    assert_eq!(reason_of(&s), "INVALID_ARGUMENT");
    // SendTapRequest { client_tap_id, kind: TAP, note: "hi\xc3(" }.
    let mut tap = vec![0x0a, 36];
    tap.extend(uuid::Uuid::now_v7().to_string().as_bytes());
    tap.extend([0x10, 1, 0x22, 4, 0x68, 0x69, 0xc3, 0x28]);
    let s = raw_call(
        &server,
        Some(&c.alice.token),
        "/tapline.v1.TapService/SendTap",
        tap,
    )
    .await
    .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    let details = s.get_error_details();
    assert_eq!(
        details.bad_request().unwrap().field_violations[0].field,
        "note"
    );
    let (_, backlog) = c.bob.subscribe_caught_up(0).await;
    assert!(backlog.iter().all(|e| tap_of(e).is_none()), "nothing sent");
    server.finish().await;
}

/// Sends `body` as the request message of `path`, byte for byte.
async fn raw_call(
    server: &TestServer,
    token: Option<&str>,
    path: &'static str,
    body: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let mut req = tonic::Request::new(body);
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    grpc.unary(
        req,
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .map(tonic::Response::into_inner)
}

/// A codec that sends and returns message bytes as they are.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// A cursor beyond the device's newest event (a restored backup, a confused app) gets a
/// `reset` on Subscribe and FetchEvents, then the events after the last ack, and later events
/// still reach the stream.
async fn a_cursor_ahead_of_the_inbox_is_reset(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let c = server.couple().await;
    c.alice.tap(pb::TapKind::Tap, "one").await.unwrap();
    let mut events = c.bob.subscribe(999).await;
    let first = events.next().await;
    match first.payload {
        Some(Payload::Reset(r)) => {
            assert_eq!(r.reason, pb::ResetReason::CursorAhead as i32);
            assert_eq!((r.acked_seq, r.newest_seq), (0, 2));
        }
        other => panic!("expected a reset, got {other:?}"),
    }
    let backlog = events.until_caught_up().await;
    let seqs: Vec<u64> = backlog.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2], "the events after the last ack follow");
    c.alice.tap(pb::TapKind::Tap, "two").await.unwrap();
    let (_, live) = events.next_tap().await;
    assert_eq!(live.tap.unwrap().note, "two", "later events still arrive");

    let fetched = c
        .bob
        .events()
        .fetch_events(pb::FetchEventsRequest {
            after_seq: 999,
            limit: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        fetched.events[0].payload,
        Some(Payload::Reset(pb::Reset { reason, .. })) if reason == pb::ResetReason::CursorAhead as i32
    ));
    assert_eq!(
        fetched.events[1..]
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    server.finish().await;
}

/// A database that cannot be opened or written fails start-up within about 2 s, and the
/// error names the cause.
async fn start_up_on_a_database_it_cannot_use_fails_fast(backend: Backend) {
    let cases: Vec<(String, &str)> = match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("tapline-ro-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            // A migrated database, then opened read-only.
            let url = format!("sqlite://{}/x.db", dir.display());
            Db::connect(&url).await.unwrap().close().await;
            vec![
                (format!("{url}?mode=ro"), "readonly"),
                (
                    format!("sqlite://{}/missing.db?mode=rw", dir.display()),
                    "unable to open",
                ),
            ]
        }
        Backend::Postgres => vec![
            ("postgres://postgres@127.0.0.1:1/x".to_owned(), "refused"),
            (
                "postgres://postgres@127.0.0.1:5432/tapline_no_such_database".to_owned(),
                "does not exist",
            ),
        ],
    };
    for (url, cause) in cases {
        let started = Instant::now();
        let e = Db::connect(&url).await.expect_err("cannot start");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "{url}: took {took:?}");
        let text = e.to_string();
        assert!(
            text.contains(cause),
            "{url}: {text:?} should name {cause:?}"
        );
    }
}

mod postgres_only {
    use super::*;

    /// Every PostgreSQL backend of the server is terminated (a failover, an operator): the
    /// next write answers UNAVAILABLE with a retry delay, health turns NOT_SERVING, then the
    /// writer reconnects by itself: health is SERVING again, the retried tap is stored once,
    /// reads work, and live streams resume after reconnecting.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn terminated_backends_answer_unavailable_then_recover() {
        let Some(server) = TestServer::start_with(Backend::Postgres, generous()).await else {
            return;
        };
        let c = server.couple().await;
        c.alice.tap(pb::TapKind::Tap, "before").await.unwrap();
        let url = server.database_url().to_owned();
        let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert!(killed.len() >= 2, "the writer's and the pool's connections");

        let req = tap_request(pb::TapKind::Tap, "during");
        let s = c
            .alice
            .send(req.clone())
            .await
            .expect_err("the writer lost its connection");
        assert_eq!(s.code(), Code::Unavailable, "{}", s.message());
        assert_eq!(reason_of(&s), "DATABASE_UNAVAILABLE");
        assert!(s.get_error_details().retry_info().is_some());

        server.wait_health(true).await;
        // As a client does: retry while UNAVAILABLE (each pooled connection that died fails
        // one call, then is replaced).
        let mut stored = None;
        for _ in 0..20 {
            match c.alice.send(req.clone()).await {
                Ok(r) => {
                    stored = Some(r);
                    break;
                }
                Err(s) => assert_eq!(s.code(), Code::Unavailable, "{}", s.message()),
            }
        }
        let stored = stored.expect("stored on retry");
        assert!(!stored.duplicate);
        assert!(c.alice.send(req.clone()).await.unwrap().duplicate);
        // Every pooled connection recovers: as many reads as the pool holds, then some.
        for _ in 0..20 {
            let r = c
                .bob
                .accounts()
                .list_devices(pb::ListDevicesRequest {})
                .await;
            match r {
                Ok(_) => {}
                Err(s) => assert_eq!(s.code(), Code::Unavailable, "a dead pooled connection"),
            }
        }
        for _ in 0..20 {
            c.bob
                .accounts()
                .list_devices(pb::ListDevicesRequest {})
                .await
                .expect("reads work again");
        }
        let (_, backlog) = c.bob.subscribe_caught_up(0).await;
        let notes: Vec<String> = backlog
            .iter()
            .filter_map(|e| tap_of(e).map(|t| t.note.clone()))
            .collect();
        assert_eq!(notes, ["before", "during"], "once each");
        server.finish().await;
    }
}
