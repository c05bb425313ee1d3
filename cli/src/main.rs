//! `tapline`: the terminal client. Everything goes through the mobile core's public API, so
//! what works here works the same in the apps.

mod calendar;
mod render;
mod ritual_words;
mod rituals;

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use tapline_core::*;

/// Tapline from a terminal: try it as a couple from two terminals with two profiles.
#[derive(Debug, Parser)]
#[command(name = "tapline", version, about, after_help = EXIT_CODES)]
struct Cli {
    /// Identity to act as; each profile is its own device with its own local store.
    #[arg(
        long,
        global = true,
        env = "TAPLINE_PROFILE",
        default_value = "default"
    )]
    profile: String,
    /// Server URL (remembered per profile once an account exists).
    #[arg(long, global = true, env = "TAPLINE_SERVER")]
    server: Option<String>,
    /// Print JSON instead of sentences.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 ok, 1 internal error, 2 usage, 3 server unreachable, \
4 not signed in or not paired, 5 invalid input or refused, 6 rate limited.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or show this profile's account.
    Account {
        #[command(subcommand)]
        action: AccountAction,
    },
    /// Make an invite code for your partner.
    Invite,
    /// Accept your partner's invite code.
    Join {
        /// The 8-character code.
        code: String,
    },
    /// Send a tap.
    Tap {
        /// What kind of tap.
        #[arg(long, value_enum, default_value_t = Kind::Tap)]
        kind: Kind,
        /// A short note (at most 80 characters).
        #[arg(long)]
        note: Option<String>,
    },
    /// Tap a rhythm with the space bar (Enter sends, q cancels) and send it.
    Rhythm {
        /// Instead of the keyboard, the tap instants in ms, e.g. 0,250,400,900.
        #[arg(long, value_delimiter = ',')]
        times: Option<Vec<u64>>,
        /// A short note.
        #[arg(long)]
        note: Option<String>,
    },
    /// Show live events until Ctrl-C; taps from your partner are reported as seen.
    Listen,
    /// Partner, their local time and quiet hours, streak, a waiting check-in, unsent taps
    /// (works offline).
    Status,
    /// Without a code: make a code that links another device. With a code: link this profile.
    Link {
        /// A code made on a device of the account.
        code: Option<String>,
    },
    /// List this account's devices, or sign one out.
    Devices {
        /// Device id to sign out.
        #[arg(long)]
        revoke: Option<String>,
    },
    /// Set quiet hours (in your zone), or turn them off.
    Quiet {
        /// Start, HH:MM.
        #[arg(long, required_unless_present = "off")]
        start: Option<String>,
        /// End, HH:MM.
        #[arg(long, required_unless_present = "off")]
        end: Option<String>,
        /// Turn quiet hours off.
        #[arg(long, conflicts_with_all = ["start", "end"])]
        off: bool,
    },
    /// Turn felt/seen receipts on or off.
    Receipts {
        #[arg(value_enum)]
        state: OnOff,
    },
    /// End the couple.
    Unpair,
    /// Your streak this month as a calendar; or pause it, or turn calm mode on or off.
    Streak(rituals::StreakArgs),
    /// Open check-ins; or ask your partner one, answer one, list the prompts.
    Checkin(rituals::CheckinArgs),
    /// Routines: a check-in or a reminder at a set time on chosen days, on each of your clocks.
    Routine {
        #[command(subcommand)]
        action: rituals::RoutineAction,
    },
}

#[derive(Debug, Subcommand)]
enum AccountAction {
    /// Create an account with this profile as its first device.
    Create {
        /// Your display name.
        #[arg(long)]
        name: String,
        /// Your IANA time zone, e.g. Europe/Paris.
        #[arg(long)]
        tz: String,
    },
    /// Show this profile's account.
    Show,
    /// Change your name or time zone.
    Update {
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        tz: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    Tap,
    DoubleTap,
    Heartbeat,
    Squeeze,
    Kiss,
    Hug,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OnOff {
    On,
    Off,
}

impl From<Kind> for TapKind {
    fn from(k: Kind) -> TapKind {
        match k {
            Kind::Tap => TapKind::Tap,
            Kind::DoubleTap => TapKind::DoubleTap,
            Kind::Heartbeat => TapKind::Heartbeat,
            Kind::Squeeze => TapKind::Squeeze,
            Kind::Kiss => TapKind::Kiss,
            Kind::Hug => TapKind::Hug,
        }
    }
}

/// A failure with the exit code it maps to.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
    /// Why, for scripts (`--json`): the refusal's stable name, e.g. "CODE_EXPIRED".
    reason: Option<&'static str>,
}

impl From<TaplineError> for Failure {
    fn from(e: TaplineError) -> Failure {
        let reason = match &e {
            TaplineError::Refused { code, .. } => Some(code.as_str()),
            TaplineError::NotPaired => Some("NOT_PAIRED"),
            _ => None,
        };
        let code = match e {
            TaplineError::Network { .. } => 3,
            TaplineError::Unauthenticated | TaplineError::NotPaired => 4,
            TaplineError::InvalidInput { .. }
            | TaplineError::NotFound { .. }
            | TaplineError::Refused { .. } => 5,
            TaplineError::RateLimited { .. } => 6,
            TaplineError::Internal { .. } => 1,
        };
        let hint = match e {
            TaplineError::Network { .. } => {
                " (is the server running? start it with `cargo run -p tapline-server`)"
            }
            TaplineError::Unauthenticated => {
                " (create an account with `tapline account create --name NAME --tz ZONE`)"
            }
            TaplineError::NotPaired => {
                " (make a code with `tapline invite`, or accept your partner's with `tapline join CODE`)"
            }
            TaplineError::Refused {
                code: RefusalCode::AlreadySignedIn,
                ..
            } => " (pick another with `--profile NAME`)",
            _ => "",
        };
        Failure {
            code,
            message: format!("{e}{hint}"),
            reason,
        }
    }
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
        reason: None,
    }
}

fn profile_dir(profile: &str) -> Result<PathBuf, Failure> {
    if profile.is_empty()
        || !profile
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(fail(2, "--profile: use letters, digits, - and _"));
    }
    let base = std::env::var_os("TAPLINE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_DATA_HOME").map(|d| PathBuf::from(d).join("tapline-cli")))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/tapline-cli"))
        })
        .unwrap_or_else(|| PathBuf::from(".tapline-cli"));
    Ok(base.join("profiles").join(profile))
}

fn open(cli: &Cli) -> Result<Arc<TaplineClient>, Failure> {
    let dir = profile_dir(&cli.profile)?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| fail(1, format!("cannot create {}: {e}", dir.display())))?;
    let remembered = std::fs::read_to_string(dir.join("server"))
        .ok()
        .map(|s| s.trim().to_owned());
    let server = cli
        .server
        .clone()
        .or(remembered)
        .unwrap_or_else(|| "http://127.0.0.1:50051".into());
    let _ = std::fs::write(dir.join("server"), &server);
    let platform = if cfg!(target_os = "macos") {
        Platform::Macos
    } else if cfg!(windows) {
        Platform::Windows
    } else {
        Platform::Linux
    };
    let config = ClientConfig {
        server_url: server,
        data_dir: dir.display().to_string(),
        device_kind: DeviceKind::Desktop,
        platform,
        device_name: format!("tapline ({})", cli.profile),
        poll_interval_ms: 5000,
    };
    Ok(TaplineClient::new(config)?)
}

struct Out {
    json: bool,
}

impl Out {
    fn print(&self, human: impl AsRef<str>, json: Value) {
        if self.json {
            println!("{json}");
        } else {
            println!("{}", human.as_ref());
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Out { json: cli.json };
    match run(&cli, &out).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if cli.json {
                let mut error = json!({ "error": f.message, "exit_code": f.code });
                if let Some(reason) = f.reason {
                    error["reason"] = reason.into();
                }
                println!("{error}");
            } else {
                eprintln!("tapline: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

fn parse_hhmm(field: &str, s: &str) -> Result<(u8, u8), Failure> {
    let bad = || fail(5, format!("{field}: expected HH:MM, got {s:?}"));
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (u8, u8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok((h, m))
}

async fn run(cli: &Cli, out: &Out) -> Result<(), Failure> {
    let client = open(cli)?;
    match &cli.command {
        Command::Account {
            action: AccountAction::Create { name, tz },
        } => {
            let a = client.create_account(name.clone(), tz.clone()).await?;
            out.print(
                format!("Welcome, {} ({}). Next: `tapline --profile {} invite`, or join your partner's code.", a.display_name, a.time_zone, cli.profile),
                render::account_json(&a),
            );
        }
        Command::Account {
            action: AccountAction::Show,
        } => {
            let a = client.account().ok_or(TaplineError::Unauthenticated)?;
            out.print(
                format!(
                    "{} ({}), account {}, this device {}",
                    a.display_name, a.time_zone, a.account_id, a.device_id
                ),
                render::account_json(&a),
            );
        }
        Command::Account {
            action: AccountAction::Update { name, tz },
        } => {
            let a = client.update_profile(name.clone(), tz.clone()).await?;
            out.print(
                format!("Now {} ({}).", a.display_name, a.time_zone),
                render::account_json(&a),
            );
        }
        Command::Invite => {
            let c = client.create_invite().await?;
            out.print(
                format!(
                    "Your invite code: {}  (valid 24 h, once). Your partner runs: tapline join {}",
                    c.code, c.code
                ),
                json!({ "code": c.code, "expires_at": render::iso(c.expires_at) }),
            );
        }
        Command::Join { code } => {
            let c = client.accept_invite(code.clone()).await?;
            out.print(
                format!(
                    "Paired with {} ({}, {} there).",
                    c.partner.display_name,
                    c.partner.time_zone,
                    render::hhmm(&c.partner.local_time)
                ),
                render::couple_json(&c),
            );
        }
        Command::Tap { kind, note } => {
            let tap = client.send_tap((*kind).into(), note.clone(), None)?;
            report_sent(&client, out, tap).await?;
        }
        Command::Rhythm { times, note } => {
            let times = match times {
                Some(t) => t.clone(),
                None => capture_rhythm()?,
            };
            let pattern = haptics::rhythm_from_taps(times);
            if !out.json {
                println!("{}", render::bar(&pattern));
            }
            let tap = client.send_tap(TapKind::Custom, note.clone(), Some(pattern))?;
            report_sent(&client, out, tap).await?;
        }
        Command::Listen => listen(&client, out).await?,
        Command::Status => status(&client, out).await?,
        Command::Link { code: None } => {
            let c = client.create_link_code().await?;
            out.print(
                format!("Link code: {}  (valid 10 minutes, once). On the new device: tapline --profile NEW link {}", c.code, c.code),
                json!({ "code": c.code, "expires_at": render::iso(c.expires_at) }),
            );
        }
        Command::Link { code: Some(code) } => {
            let a = client.redeem_link_code(code.clone()).await?;
            out.print(
                format!(
                    "This profile is now a device of {} ({}).",
                    a.display_name, a.time_zone
                ),
                render::account_json(&a),
            );
        }
        Command::Devices { revoke: Some(id) } => {
            client.revoke_device(id.clone()).await?;
            out.print(format!("Signed out {id}."), json!({ "revoked": id }));
        }
        Command::Devices { revoke: None } => {
            let devices = client.devices().await?;
            let human: Vec<String> = devices
                .iter()
                .map(|d| {
                    format!(
                        "{} {:<8} {:<8} {}{}",
                        d.device_id,
                        render::kind_name(d.kind),
                        render::platform_name(d.platform),
                        d.name,
                        if d.current { "  (this one)" } else { "" }
                    )
                })
                .collect();
            out.print(
                human.join("\n"),
                Value::Array(devices.iter().map(render::device_json).collect()),
            );
        }
        Command::Quiet { start, end, off } => {
            let quiet = if *off {
                None
            } else {
                let (sh, sm) = parse_hhmm("--start", start.as_deref().unwrap_or_default())?;
                let (eh, em) = parse_hhmm("--end", end.as_deref().unwrap_or_default())?;
                Some(QuietHours {
                    start_hour: sh,
                    start_minute: sm,
                    end_hour: eh,
                    end_minute: em,
                })
            };
            let s = client.set_quiet_hours(quiet).await?;
            out.print(render::settings_line(&s), render::settings_json(&s));
        }
        Command::Receipts { state } => {
            let s = client
                .set_receipts_enabled(matches!(state, OnOff::On))
                .await?;
            out.print(render::settings_line(&s), render::settings_json(&s));
        }
        Command::Unpair => {
            client.unpair().await?;
            out.print(
                "Unpaired. Your history stays on this device.",
                json!({ "unpaired": true }),
            );
        }
        Command::Streak(args) => rituals::streak(&client, out, args).await?,
        Command::Checkin(args) => rituals::checkin(&client, out, args).await?,
        Command::Routine { action } => rituals::routine(&client, out, action).await?,
    }
    Ok(())
}

/// Waits for the outbox, then says where the tap stands and how it lands.
async fn report_sent(client: &TaplineClient, out: &Out, tap: LocalTap) -> Result<(), Failure> {
    let unsent = client.flush_outbox().await?;
    let now = client
        .local_taps(50)?
        .into_iter()
        .find(|t| t.client_tap_id == tap.client_tap_id)
        .unwrap_or(tap);
    if client.glance().partner_name.is_none() && now.state != TapState::Queued {
        // Paired from the other side since this profile last synced: learn who the partner is.
        let _ = client.couple().await;
    }
    let glance = client.glance();
    let partner = glance
        .partner_name
        .clone()
        .unwrap_or_else(|| "your partner".into());
    let human = match &now.state {
        TapState::Queued => format!(
            "Queued ({unsent} unsent): the server is unreachable; it goes out with your next tapline command."
        ),
        TapState::Failed { reason } => return Err(fail(5, format!("not sent: {reason}"))),
        _ => {
            let when = glance
                .partner_local_time
                .as_deref()
                .map(|t| format!(" (it's {t} there)"))
                .unwrap_or_default();
            let quiet = if glance.partner_in_quiet_hours {
                "; quiet hours, so it arrives silently"
            } else {
                ""
            };
            format!(
                "Sent {} to {partner}{when}{quiet}.",
                render::kind_label(now.kind)
            )
        }
    };
    out.print(human, render::local_tap_json(&now));
    Ok(())
}

async fn status(client: &TaplineClient, out: &Out) -> Result<(), Failure> {
    // Refresh what can be refreshed; the glance itself needs no network.
    let online = match client.couple().await {
        Ok(_) => true,
        Err(TaplineError::Network { .. }) => false,
        Err(e) => return Err(e.into()),
    };
    if online {
        // Best effort: the glance shows what was last read if these fail.
        let _ = client.streak().await;
        let _ = client.checkins(true).await;
    }
    let g = client.glance();
    let account = client.account();
    let mut lines = Vec::new();
    match &account {
        Some(a) => lines.push(format!("You: {} ({})", a.display_name, a.time_zone)),
        None => lines.push("Not signed in.".to_owned()),
    }
    match (&g.partner_name, &g.partner_local_time) {
        (Some(name), Some(time)) => lines.push(format!(
            "Partner: {name}, {time} in {}{}",
            g.partner_time_zone.as_deref().unwrap_or("?"),
            if g.partner_in_quiet_hours {
                " (quiet hours)"
            } else {
                ""
            }
        )),
        _ => lines.push("Not paired.".to_owned()),
    }
    if let Some(t) = &g.last_tap {
        lines.push(format!(
            "Last tap from them: {} at {}",
            render::kind_label(t.kind),
            render::iso(t.sent_at)
        ));
    }
    let partner = g.partner_name.as_deref().unwrap_or("your partner");
    match g.streak_current {
        Some(_) if g.streak_calm => lines.push(format!(
            "Streak: calm mode · today: you {}, {partner} {}",
            g.my_actions_today, g.partner_actions_today
        )),
        Some(n) => lines.push(format!(
            "Streak: {n} day{} · freezes {} · today: you {}, {partner} {}",
            if n == 1 { "" } else { "s" },
            g.streak_freezes_held,
            g.my_actions_today,
            g.partner_actions_today
        )),
        None => {}
    }
    if let Some(c) = &g.pending_checkin {
        lines.push(format!(
            "Check-in waiting for you: “{}” — tapline checkin answer VALUE ({})",
            c.prompt.text,
            ritual_words::answer_help(&c.prompt)
        ));
    }
    lines.push(format!("Unsent taps: {}", g.unsent_count));
    if !online {
        lines.push("(offline: shown from this device's store)".into());
    }
    out.print(
        lines.join("\n"),
        json!({
            "online": online,
            "account": account.as_ref().map(render::account_json),
            "partner": g.partner_name.as_ref().map(|n| json!({
                "name": n,
                "time_zone": g.partner_time_zone,
                "local_time": g.partner_local_time,
                "in_quiet_hours": g.partner_in_quiet_hours,
            })),
            "last_tap": g.last_tap.as_ref().map(render::received_json),
            "unsent": g.unsent_count,
            "streak": g.streak_current.map(|current| json!({
                "current": current,
                "freezes_held": g.streak_freezes_held,
                "calm": g.streak_calm,
                "my_actions_today": g.my_actions_today,
                "partner_actions_today": g.partner_actions_today,
            })),
            "pending_checkin": g.pending_checkin.as_ref().map(ritual_words::checkin_json),
        }),
    );
    Ok(())
}

struct Printer {
    json: bool,
    client: std::sync::Weak<TaplineClient>,
}

impl EventListener for Printer {
    fn on_event(&self, event: ClientEvent) -> Result<(), TaplineError> {
        if self.json {
            println!("{}", render::event_json(&event));
        } else if let Some(line) = render::event_line(&event) {
            println!("{line}");
        }
        if let ClientEvent::TapReceived { tap } = &event
            && !tap.from_self
            && let Some(client) = self.client.upgrade()
        {
            client.report_tap(tap.tap_id.clone(), ReceiptKind::Seen)?;
        }
        let _ = std::io::stdout().flush();
        Ok(())
    }

    fn on_connection_state(&self, state: ConnectionState) -> Result<(), TaplineError> {
        if self.json {
            println!("{}", json!({ "connection": format!("{state:?}") }));
        } else {
            eprintln!("{}", render::state_line(&state));
        }
        Ok(())
    }
}

async fn listen(client: &Arc<TaplineClient>, out: &Out) -> Result<(), Failure> {
    client.account().ok_or(TaplineError::Unauthenticated)?;
    let printer = Printer {
        json: out.json,
        client: Arc::downgrade(client),
    };
    let subscription = client.subscribe(Arc::new(printer));
    let _ = tokio::signal::ctrl_c().await;
    subscription.cancel();
    Ok(())
}

/// Reads space-bar taps from the terminal in raw mode; Enter finishes, q cancels.
fn capture_rhythm() -> Result<Vec<u64>, Failure> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(fail(
            5,
            "tapline rhythm needs a terminal (or pass --times 0,250,400)",
        ));
    }
    eprintln!("Tap a rhythm with the space bar (up to 10 s); Enter sends, q cancels.");
    let _raw = RawMode::enter()?;
    let mut times = Vec::new();
    let mut start: Option<Instant> = None;
    let mut byte = [0u8; 1];
    let mut lock = stdin.lock();
    loop {
        if lock.read(&mut byte).map_err(|e| fail(1, e.to_string()))? == 0 {
            break;
        }
        match byte[0] {
            b' ' => {
                let t0 = *start.get_or_insert_with(Instant::now);
                let ms = t0.elapsed().as_millis() as u64;
                times.push(ms);
                eprint!("●");
                if ms >= 10_000 {
                    break;
                }
            }
            b'\r' | b'\n' => break,
            b'q' | 27 | 3 => {
                eprintln!();
                return Err(fail(5, "cancelled"));
            }
            _ => {}
        }
    }
    eprintln!();
    if times.is_empty() {
        return Err(fail(5, "no taps recorded"));
    }
    Ok(times)
}

/// The terminal in raw mode until dropped.
struct RawMode(libc::termios);

impl RawMode {
    fn enter() -> Result<RawMode, Failure> {
        // SAFETY: tcgetattr/tcsetattr on stdin with a zeroed termios that tcgetattr fills.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return Err(fail(1, "cannot read the terminal mode"));
            }
            let saved = t;
            t.c_lflag &= !(libc::ICANON | libc::ECHO);
            t.c_cc[libc::VMIN] = 1;
            t.c_cc[libc::VTIME] = 0;
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return Err(fail(1, "cannot set the terminal mode"));
            }
            Ok(RawMode(saved))
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the mode read in `enter`.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.0);
        }
    }
}
