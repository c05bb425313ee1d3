//! Backups: an online copy of a running server's database (`tapline-server backup` on SQLite,
//! `pg_dump` on PostgreSQL), restored after the cores moved on: both are reset and converge,
//! with nothing shown twice.

use std::path::{Path, PathBuf};
use std::process::Command;

use sqlx::Connection;
use tapline_core::*;
use tapline_e2e::{Backend, TestServer, postgres_admin_url};

use super::support::*;

tapline_e2e::on_both_databases!(a_restored_backup_resets_the_cores_ahead_of_it_and_they_converge,);

/// Whether a PostgreSQL client tool is on PATH.
fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run the tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An online backup of the running server's database into `dir`.
async fn backup(server: &TestServer, dir: &Path) -> PathBuf {
    let url = server.database_url().to_owned();
    if url.starts_with("sqlite:") {
        let to = dir.join("tapline-backup.db");
        let file = to.clone();
        tokio::task::spawn_blocking(move || tapline_server::backup::sqlite(&url, &file))
            .await
            .unwrap()
            .expect("tapline-server backup");
        to
    } else {
        let to = dir.join("tapline.dump");
        run(Command::new("pg_dump")
            .args(["--format=custom", "--file"])
            .arg(&to)
            .arg(&url));
        to
    }
}

/// Restores `file` for the stopped server and starts it on the restored database, as
/// docs/operations.md says (SQLite: the copy becomes the database file; PostgreSQL: the
/// database is recreated and pg_restore fills it).
async fn restore_and_restart(server: &mut TestServer, file: &Path) {
    let url = server.database_url().to_owned();
    server.stop().await;
    if url.starts_with("sqlite:") {
        // A folder of its own next to the old file (see TestServer::restart_on).
        let old = tapline_server::backup::sqlite_file(&url).unwrap();
        let db = old.parent().unwrap().join("restored").join("tapline.db");
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        std::fs::copy(file, &db).unwrap();
        server
            .restart_on(&format!("sqlite://{}", db.display()))
            .await;
    } else {
        let name = url.rsplit_once('/').unwrap().1;
        let mut admin = sqlx::PgConnection::connect(&postgres_admin_url())
            .await
            .unwrap();
        for sql in [
            format!("DROP DATABASE {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut admin)
                .await
                .unwrap();
        }
        run(Command::new("pg_restore")
            .args(["--no-owner", "--exit-on-error", "--dbname"])
            .arg(&url)
            .arg(file));
        server.restart().await;
    }
}

fn notes(taps: &[ReceivedTap]) -> Vec<String> {
    let mut n: Vec<String> = taps.iter().filter_map(|t| t.note.clone()).collect();
    n.sort();
    n
}

/// Alice's core taps Bob's (closed) app twice; the server is backed up while it runs; Bob's
/// app opens and gets those, then two more taps are stored, acked and reported DELIVERED
/// (both cores' cursors move past the backup); the server is stopped, restored from the copy
/// and started. Both cores get a `reset`, show nothing twice (Bob's is sent the two taps it
/// has again), a new tap reaches Bob once and is delivered, and a fresh start of Bob's core is
/// told nothing new (converged).
async fn a_restored_backup_resets_the_cores_ahead_of_it_and_they_converge(backend: Backend) {
    if backend == Backend::Postgres && !(have("pg_dump") && have("pg_restore")) {
        eprintln!("pg_dump/pg_restore not on PATH; skipping");
        return;
    }
    let Some(mut server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = paired_cores(&server).await;
    let alice_events = Collector::subscribe(&alice);
    alice_events
        .wait_for(|e| matches!(e, ClientEvent::CaughtUp))
        .await;
    // Bob's app is closed while Alice taps: the backup holds those taps un-acked.
    let bob_dir = bob.dir.clone();
    drop(bob);
    for note in ["one", "two"] {
        alice
            .send_tap(TapKind::Tap, Some(note.into()), None)
            .unwrap();
    }
    assert_eq!(alice.flush_outbox().await.unwrap().unsent, 0);
    let dir = PathBuf::from(temp_dir());
    std::fs::create_dir_all(&dir).unwrap();
    let file = backup(&server, &dir).await;

    let bob = reopen(&server, &bob_dir, DeviceKind::Phone);
    let bob_events = Collector::subscribe(&bob);
    let got = [bob_events.next_tap().await, bob_events.next_tap().await];
    assert_eq!(notes(&got), ["one", "two"]);
    let send = async |note: &str| {
        let t = alice
            .send_tap(TapKind::Tap, Some(note.into()), None)
            .unwrap();
        assert_eq!(bob_events.next_tap().await.note.as_deref(), Some(note));
        // Bob's ack reached the server: Alice hears DELIVERED.
        alice_events
            .wait_for_tap_state(&t.client_tap_id, TapState::Delivered)
            .await;
    };
    send("three").await;
    send("four").await;

    restore_and_restart(&mut server, &file).await;

    // Both cores reconnect on their own with cursors ahead of the restored database; Bob's
    // gets "one" and "two" again (un-acked in the copy) and drops them by event id.
    for events in [&bob_events, &alice_events] {
        events.wait_for(|e| matches!(e, ClientEvent::Reset)).await;
        loop {
            match events.next().await {
                ClientEvent::CaughtUp => break,
                ClientEvent::TapReceived { tap } => {
                    panic!("a tap shown already came again: {tap:?}")
                }
                _ => {}
            }
        }
    }
    let five = alice
        .send_tap(TapKind::Kiss, Some("five".into()), None)
        .unwrap();
    assert_eq!(
        bob_events.next_tap().await.note.as_deref(),
        Some("five"),
        "a new event below Bob's old cursor is applied, and nothing came before it"
    );
    alice_events
        .wait_for_tap_state(&five.client_tap_id, TapState::Delivered)
        .await;
    assert_eq!(
        notes(&bob.received_taps(20).unwrap()),
        ["five", "four", "one", "three", "two"],
        "each tap once on Bob's phone"
    );

    drop(bob_events);
    drop(bob);
    let bob = reopen(&server, &bob_dir, DeviceKind::Phone);
    let events = Collector::subscribe(&bob);
    assert!(
        matches!(events.next().await, ClientEvent::CaughtUp),
        "converged: no second reset, no replay"
    );
    drop(events);
    let _ = std::fs::remove_dir_all(&dir);
    server.finish().await;
}
