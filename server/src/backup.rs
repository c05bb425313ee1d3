//! `tapline-server backup --to FILE`: an online copy of the SQLite database.
//!
//! The copy is SQLite's `VACUUM INTO` on a read-only connection of its own: one read
//! transaction, so the file holds exactly the database as of one commit even while a server
//! keeps writing (WAL mode lets it go on meanwhile), compacted, with no WAL beside it. It is a
//! complete database: restore it by stopping the server, putting the file in place of the
//! database (and removing the old `-wal` and `-shm` files), and starting the server. Devices
//! that saw events newer than the copy get a `reset` and converge (docs/operations.md).
//!
//! PostgreSQL has its own tool for this (`pg_dump`), so a `postgres://` URL is refused with
//! a pointer to it.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::db::redact;
use crate::error::{Error, Result};

/// The file behind a `sqlite:` URL, or why there is none.
pub fn sqlite_file(url: &str) -> Result<PathBuf> {
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        return Err(Error::Config(format!(
            "{} is a PostgreSQL database: back it up with pg_dump (e.g. `pg_dump -Fc -f tapline.dump URL`) \
             and restore with pg_restore (see docs/operations.md)",
            redact(url)
        )));
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err(Error::Config(format!(
            "unsupported database URL {:?}: use sqlite://PATH",
            redact(url)
        )));
    };
    let rest = rest.trim_start_matches("//");
    let path = rest.split_once('?').map_or(rest, |(p, _)| p);
    if path.is_empty() || path == ":memory:" {
        return Err(Error::Config("the SQLite URL names no file".into()));
    }
    Ok(PathBuf::from(path))
}

/// Writes a consistent copy of the SQLite database at `url` to `to`, a file that must not
/// exist yet; returns its size in bytes.
pub fn sqlite(url: &str, to: &Path) -> Result<u64> {
    let from = sqlite_file(url)?;
    if to.exists() {
        return Err(Error::Config(format!(
            "--to {}: the file exists; a backup never overwrites one",
            to.display()
        )));
    }
    if !from.is_file() {
        return Err(Error::Config(format!(
            "no SQLite database at {}",
            from.display()
        )));
    }
    let conn = Connection::open_with_flags(
        &from,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // The server holds the write lock only for a commit; a checkpoint may hold it briefly.
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let target = to
        .to_str()
        .ok_or_else(|| Error::Config(format!("--to {}: not UTF-8", to.display())))?;
    if let Err(e) = conn.execute("VACUUM INTO ?1", [target]) {
        // Leave nothing half-written behind.
        let _ = std::fs::remove_file(to);
        return Err(e.into());
    }
    Ok(std::fs::metadata(to)?.len())
}

/// The `backup` command: copies the database at `url` to `to` and says where it went.
pub fn run(url: &str, to: &Path) -> Result<()> {
    let bytes = sqlite(url, to)?;
    tracing::info!(
        database = %redact(url),
        to = %to.display(),
        bytes,
        "backup written"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_file_and_postgres_points_to_pg_dump() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/tapline/tapline.db?mode=rwc").unwrap(),
            PathBuf::from("/var/lib/tapline/tapline.db")
        );
        assert_eq!(
            sqlite_file("sqlite:data/t.db").unwrap(),
            PathBuf::from("data/t.db")
        );
        let pg = sqlite_file("postgres://tapline:secret@db/tapline")
            .unwrap_err()
            .to_string();
        assert!(pg.contains("pg_dump"), "{pg}");
        assert!(!pg.contains("secret"), "the password is not printed: {pg}");
        assert!(sqlite_file("sqlite://:memory:").is_err());
        assert!(sqlite_file("mysql://x").is_err());
    }

    #[test]
    fn help_shows_the_new_flags_with_their_environment_variables() {
        use clap::CommandFactory;
        let mut cmd = crate::config::Config::command();
        let help = cmd.render_long_help().to_string();
        for s in [
            "--prune-interval-secs",
            "TAPLINE_PRUNE_INTERVAL_SECS",
            "--tap-history-days",
            "TAPLINE_TAP_HISTORY_DAYS",
            "backup",
        ] {
            assert!(help.contains(s), "{s} missing from --help:\n{help}");
        }
        let backup = cmd
            .find_subcommand_mut("backup")
            .unwrap()
            .render_long_help()
            .to_string();
        for s in [
            "--to",
            "TAPLINE_BACKUP_TO",
            "--database-url",
            "TAPLINE_DATABASE_URL",
        ] {
            assert!(
                backup.contains(s),
                "{s} missing from backup --help:\n{backup}"
            );
        }
    }

    #[test]
    fn a_copy_is_a_whole_database_and_never_overwrites() {
        let dir = std::env::temp_dir().join(format!("tapline-backup-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("live.db");
        let live = Connection::open(&db).unwrap();
        live.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2);",
        )
        .unwrap();
        let url = format!("sqlite://{}", db.display());
        let to = dir.join("copy.db");
        assert!(sqlite(&url, &to).unwrap() > 0);
        // Written while `live` is still open and its rows only in the WAL.
        let copy = Connection::open(&to).unwrap();
        let n: i64 = copy
            .query_row("SELECT SUM(x) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
        let again = sqlite(&url, &to).unwrap_err().to_string();
        assert!(again.contains("exists"), "{again}");
        assert!(
            sqlite(
                &format!("sqlite://{}", dir.join("none.db").display()),
                &dir.join("x.db")
            )
            .is_err()
        );
        drop((live, copy));
        let _ = std::fs::remove_dir_all(dir);
    }
}
