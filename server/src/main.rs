//! `tapline-server`: parse flags, set up logs, open the database, serve until SIGINT/SIGTERM.

use std::sync::Arc;

use clap::Parser;
use tapline_server::config::{Command, Config, LogFormat};
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
    let done = match &config.command {
        None => run(config).await,
        Some(Command::Gateway { gateway_keys_file }) => {
            gateway(&config, gateway_keys_file.clone()).await
        }
        Some(Command::GatewayKey) => gateway_key(),
        Some(Command::Backup { to }) => tapline_server::backup::run(&config.database_url(), to),
    };
    match done {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "tapline-server failed");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> tapline_server::Result<()> {
    let settings = config.settings()?;
    tapline_server::config::check_listener(
        config.listen,
        settings.tls.is_some(),
        config.allow_plaintext,
    )?;
    let url = config.database_url();
    let db = Db::connect(&url).await?;
    tracing::info!(database = %redact(&url), backend = ?db.backend(), "database ready");
    let tls = settings.tls.is_some();
    let state = AppState::new(db.clone(), Arc::new(SystemClock), settings).await?;
    if let Some(addr) = config.metrics_listen {
        let admin = tapline_server::metrics::bind_admin(addr).await?;
        tokio::spawn(tapline_server::metrics::serve_admin(admin, state.clone()));
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, tls, "serving tapline.v1 (gRPC, gRPC-Web)");
    serve(listener, state, shutdown_signal()).await?;
    db.close().await;
    Ok(())
}

/// `tapline-server gateway`: sends APNs/FCM wake-ups for the servers whose keys are listed.
async fn gateway(config: &Config, keys_file: std::path::PathBuf) -> tapline_server::Result<()> {
    let settings = config.settings()?;
    let (providers, health) = tapline_server::gateway::providers(&settings, Arc::new(SystemClock))?;
    let text = std::fs::read_to_string(&keys_file).map_err(|e| {
        tapline_server::Error::Config(format!("--gateway-keys-file {}: {e}", keys_file.display()))
    })?;
    let keys = tapline_server::gateway::Gateway::parse_keys(&text)?;
    if keys.is_empty() {
        return Err(tapline_server::Error::Config(format!(
            "--gateway-keys-file {} lists no server keys",
            keys_file.display()
        )));
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, servers = keys.len(), ?providers, "serving tapline.v1.PushGatewayService");
    let gw = Arc::new(tapline_server::gateway::Gateway::new(providers, keys));
    tapline_server::serve_gateway(listener, gw, health, shutdown_signal()).await
}

/// `tapline-server gateway-key`: a new server key on stdout, its keys-file line on stderr.
fn gateway_key() -> tapline_server::Result<()> {
    let (key, line) = tapline_server::gateway::new_key()?;
    println!("{key}");
    eprintln!("for the gateway's --gateway-keys-file: {line}");
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
