//! `tapline-server`: parse flags, set up logs, open the database, serve until SIGINT/SIGTERM.

use std::sync::Arc;

use clap::Parser;
use tapline_server::config::{Config, LogFormat};
use tapline_server::{AppState, Db, SystemClock, db::redact, serve};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    let filter = EnvFilter::try_from_env("TAPLINE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "tapline-server failed");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> tapline_server::Result<()> {
    let url = config.database_url();
    let db = Db::connect(&url).await?;
    tracing::info!(database = %redact(&url), backend = ?db.backend(), "database ready");
    let state = AppState::new(db.clone(), Arc::new(SystemClock), config.settings()?).await?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "serving tapline.v1 (gRPC, gRPC-Web)");
    serve(listener, state, shutdown_signal()).await?;
    db.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
