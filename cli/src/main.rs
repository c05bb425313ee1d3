//! `tapline`: the terminal client. Everything goes through the mobile core's public API, so
//! what works here works the same in the apps.

mod calendar;
mod events;
mod failure;
mod ids;
mod moments;
mod out;
mod outbox;
mod push;
mod questions;
mod reconnect;
mod render;
mod ritual_words;
mod rituals;
mod space;
mod together;

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use tapline_core::*;

use crate::events::Notices;
use crate::failure::{Failure, HintContext, INTERNAL, NO_ACCOUNT, REFUSED, UNREACHABLE, USAGE};
use crate::out::Out;

/// The server a profile talks to when none is saved or given.
const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// How long `tap --wait` follows a tap when no time is given.
const DEFAULT_WAIT_SECS: &str = "30";

const TOP_HELP: &str = "Examples:
  tapline --profile sam account create --name Sam --tz Europe/Paris
  tapline --profile sam invite
  tapline --profile alex join CODE
  tapline --profile alex tap --kind heartbeat --note \"thinking of you\" --wait
  tapline --profile sam listen
  tapline --profile alex --json status

--server URL applies to one command; `tapline server set URL` saves it for the profile (so do
`account create` and `link CODE`, for the server the account lives on).
--json prints one JSON object per line; see docs/cli-json.md.

Exit codes: 0 ok, 1 internal error, 2 usage, 3 server unreachable, 4 not signed in, signed
out or not paired, 5 invalid input or refused, 6 rate limited.";

/// Tapline from a terminal: try it as a couple from two terminals with two profiles.
#[derive(Debug, Parser)]
#[command(name = "tapline", version, about, after_help = TOP_HELP)]
struct Cli {
    /// Identity to act as; each profile is its own device with its own local store.
    #[arg(
        long,
        global = true,
        env = "TAPLINE_PROFILE",
        default_value = "default"
    )]
    profile: String,
    /// Server URL for this command only (`tapline server set URL` saves one).
    #[arg(long, global = true, env = "TAPLINE_SERVER")]
    server: Option<String>,
    /// A CA certificate (PEM file) to trust for an `https://` server besides the system's
    /// roots (a self-hosted server with its own CA).
    #[arg(long, global = true, env = "TAPLINE_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Print one JSON object per line instead of sentences (docs/cli-json.md).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, show, change or forget this profile's account.
    #[command(after_help = "Examples:
  tapline --profile sam account create --name Sam --tz Europe/Paris
  tapline --profile sam account show
  tapline --profile sam account forget --yes")]
    Account {
        #[command(subcommand)]
        action: AccountAction,
    },
    /// Make an invite code for your partner.
    #[command(
        after_help = "Examples:\n  tapline --profile sam invite            a new code (the previous one stops working)\n  tapline --profile sam invite --revoke   withdraw it"
    )]
    Invite {
        /// Withdraw your pending invite instead.
        #[arg(long)]
        revoke: bool,
    },
    /// Accept your partner's invite code.
    #[command(after_help = "Example:\n  tapline --profile alex join 9FFV-7YHA")]
    Join {
        /// The 8-character code.
        code: String,
    },
    /// Send a tap; with --wait, follow it until it is seen.
    #[command(after_help = "Examples:
  tapline tap
  tapline tap --kind heartbeat --note \"thinking of you\"
  tapline tap --kind hug --wait            follow it to delivered and seen (30 s)
  tapline --json tap --wait=120            one JSON line per change")]
    Tap {
        /// What kind of tap.
        #[arg(long, value_enum, default_value_t = Kind::Tap)]
        kind: Kind,
        /// A short note (at most 80 characters).
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        wait: WaitArg,
    },
    /// Tap a rhythm with the space bar (Enter sends, q cancels) and send it.
    #[command(after_help = "Examples:
  tapline rhythm
  tapline rhythm --times 0,250,400,900 --note \"our song\"")]
    Rhythm {
        /// Instead of the keyboard, the tap instants in ms, e.g. 0,250,400,900.
        #[arg(long, value_delimiter = ',')]
        times: Option<Vec<u64>>,
        /// A short note.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        wait: WaitArg,
    },
    /// Show live events until Ctrl-C; taps from your partner are reported as seen.
    #[command(after_help = "Examples:
  tapline --profile sam listen
  tapline --profile sam --json listen | head -5")]
    Listen,
    /// You, your partner's local time and quiet hours, the streak, check-ins waiting, your
    /// recent taps and answers with their states (works offline).
    #[command(
        after_help = "Examples:\n  tapline --profile alex status\n  tapline --profile alex --json status"
    )]
    Status,
    /// Without a code: make a code that links another device. With a code: link this profile.
    #[command(after_help = "Examples:
  tapline --profile alex link                  a code, on a device of the account
  tapline --profile alex-watch link CODE       ...redeemed by a new profile
  tapline --profile alex link --revoke         withdraw every pending link code")]
    Link {
        /// A code made on a device of the account.
        code: Option<String>,
        /// Withdraw this account's pending link codes instead.
        #[arg(long, conflicts_with = "code")]
        revoke: bool,
    },
    /// List this account's devices, or sign one out.
    #[command(after_help = "Examples:
  tapline --profile alex devices
  tapline --profile alex devices --revoke 0192f1a4
  tapline --profile alex devices --rename 0192f1a4 --name \"Alex's watch\"")]
    Devices {
        /// Device id (or its first characters) to sign out.
        #[arg(long, value_name = "ID", conflicts_with = "rename")]
        revoke: Option<String>,
        /// Device id (or its first characters) to rename, with --name.
        #[arg(long, value_name = "ID", requires = "name")]
        rename: Option<String>,
        /// The new name (1-40 characters).
        #[arg(long, requires = "rename")]
        name: Option<String>,
    },
    /// Set quiet hours (in your zone), or turn them off.
    #[command(
        after_help = "Examples:\n  tapline quiet --start 22:00 --end 07:00\n  tapline quiet --off"
    )]
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
    #[command(after_help = "Example:\n  tapline receipts off")]
    Receipts {
        #[arg(value_enum)]
        state: OnOff,
    },
    /// End the couple.
    #[command(after_help = "Example:\n  tapline unpair")]
    Unpair,
    /// Your streak this month as a calendar; or pause it, or turn calm mode on or off.
    #[command(after_help = rituals::STREAK_EXAMPLES)]
    Streak(rituals::StreakArgs),
    /// Open check-ins; or ask your partner one, answer one, list the prompts.
    #[command(after_help = rituals::CHECKIN_EXAMPLES)]
    Checkin(rituals::CheckinArgs),
    /// Routines: a check-in or a reminder at a set time on chosen days, on each of your clocks.
    #[command(after_help = rituals::ROUTINE_EXAMPLES)]
    Routine {
        #[command(subcommand)]
        action: rituals::RoutineAction,
    },
    /// "I need a moment": ask for space (your partner's taps wait until it ends), answer
    /// your partner's with one tap, end yours, or show both.
    #[command(after_help = space::SPACE_EXAMPLES)]
    Space {
        #[command(subcommand)]
        action: space::SpaceAction,
    },
    /// Together time: phones down, taps between you wait quietly until it ends. Suggest it,
    /// confirm your partner's, end it, or show it with the next time you meet.
    #[command(after_help = together::TOGETHER_EXAMPLES)]
    Together {
        #[command(subcommand)]
        action: together::TogetherAction,
    },
    /// The next time you meet: set it (it turns into together time when it comes), clear it,
    /// or show the countdown on both your clocks (the default).
    #[command(after_help = together::MEET_EXAMPLES)]
    Meet {
        #[command(subcommand)]
        action: Option<together::MeetAction>,
    },
    /// The deeper questions, one at a time: your answer stays hidden until you have both
    /// answered, then both show and the next one unlocks (the default shows the current one).
    #[command(after_help = questions::QUESTIONS_EXAMPLES)]
    Questions {
        #[command(subcommand)]
        action: Option<questions::QuestionsAction>,
    },
    /// The reconnect plan: seven small steps, one a day at the same time on each of your
    /// clocks, for finding each other again after a stretch apart (the default shows it).
    #[command(after_help = reconnect::RECONNECT_EXAMPLES)]
    Reconnect {
        #[command(subcommand)]
        action: Option<reconnect::ReconnectAction>,
    },
    /// Moments kept for you both: a note your partner sent with a tap, or their answer to a
    /// check-in (the default lists them).
    #[command(after_help = moments::MOMENTS_EXAMPLES)]
    Moments {
        #[command(subcommand)]
        action: Option<moments::MomentsAction>,
    },
    /// The weekly recap as a chart: taps, connected days, mood and energy, moments kept; or
    /// when yours comes by itself.
    #[command(after_help = moments::RECAP_EXAMPLES)]
    Recap(moments::RecapArgs),
    /// This device's push targets: register a Web Push (UnifiedPush) endpoint, show, remove.
    #[command(after_help = push::PUSH_EXAMPLES)]
    Push {
        #[command(subcommand)]
        action: push::PushAction,
    },
    /// Show, save or reset the server this profile talks to.
    #[command(after_help = "Examples:
  tapline --profile sam server                      which server, and where it comes from
  tapline --profile sam server set http://127.0.0.1:50052
  tapline --profile sam server reset")]
    Server {
        #[command(subcommand)]
        action: Option<ServerAction>,
    },
    /// Print a shell completion script.
    #[command(after_help = "Examples:
  source <(tapline completions bash)
  tapline completions zsh > ~/.zfunc/_tapline
  tapline completions fish > ~/.config/fish/completions/tapline.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, clap::Args)]
struct WaitArg {
    /// Follow the tap for up to SECS seconds (default 30), printing each change, until it is
    /// seen or refused.
    #[arg(long, value_name = "SECS", num_args = 0..=1, require_equals = true, default_missing_value = DEFAULT_WAIT_SECS)]
    wait: Option<u64>,
}

#[derive(Debug, Subcommand)]
enum AccountAction {
    /// Create an account with this profile as its first device.
    #[command(
        after_help = "Example:\n  tapline --profile sam account create --name Sam --tz Europe/Paris"
    )]
    Create {
        /// Your display name.
        #[arg(long)]
        name: String,
        /// Your IANA time zone, e.g. Europe/Paris.
        #[arg(long)]
        tz: String,
    },
    /// Show this profile's account.
    #[command(after_help = "Example:\n  tapline --profile sam account show")]
    Show,
    /// Change your name or time zone.
    #[command(after_help = "Example:\n  tapline --profile sam account update --tz Asia/Tokyo")]
    Update {
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        tz: Option<String>,
    },
    /// Remove the account from this profile (after it was signed out), so that `account
    /// create` or `link CODE` work again. Unsent taps and answers are lost; the server is not
    /// told.
    #[command(after_help = "Example:\n  tapline --profile alex-watch account forget --yes")]
    Forget {
        /// Yes, remove it.
        #[arg(long)]
        yes: bool,
    },
    /// Download everything the server keeps about you, as one JSON document
    /// (docs/privacy.md describes every field).
    #[command(after_help = "Examples:
  tapline --profile sam account export --out sam-tapline.json
  tapline --profile sam account export | jq '.taps | length'")]
    Export {
        /// Write the document to FILE (which must not exist yet) instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Delete your account for good: the couple ends (your partner is told), every device is
    /// signed out and what you sent is removed from the server. Cannot be undone; export first.
    #[command(
        after_help = "Example:\n  tapline --profile sam account delete --confirm \"delete my account\""
    )]
    Delete {
        /// Type exactly: delete my account
        #[arg(long, value_name = "WORDS")]
        confirm: String,
    },
}

#[derive(Debug, Subcommand)]
enum ServerAction {
    /// Save the server URL for this profile.
    #[command(after_help = "Example:\n  tapline --profile sam server set http://127.0.0.1:50052")]
    Set {
        /// e.g. http://127.0.0.1:50051
        url: String,
    },
    /// Forget the saved URL (back to TAPLINE_SERVER or the default).
    #[command(after_help = "Example:\n  tapline --profile sam server reset")]
    Reset,
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

fn profile_dir(profile: &str) -> Result<PathBuf, Failure> {
    if profile.is_empty()
        || !profile
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Failure::new(
            USAGE,
            "--profile: use letters, digits, - and _",
        ));
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

/// Where the server URL of a command comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ServerSource {
    /// `--server` or TAPLINE_SERVER: this command only.
    Flag,
    /// Saved for the profile.
    Saved,
    Default,
}

/// The server for this command: `--server` (or TAPLINE_SERVER), else the profile's saved one,
/// else the default.
fn pick_server(flag: Option<&str>, saved: Option<&str>) -> (String, ServerSource) {
    match (flag, saved) {
        (Some(f), _) => (f.trim().to_owned(), ServerSource::Flag),
        (None, Some(s)) if !s.trim().is_empty() => (s.trim().to_owned(), ServerSource::Saved),
        _ => (DEFAULT_SERVER.to_owned(), ServerSource::Default),
    }
}

fn check_url(url: &str) -> Result<(), Failure> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(Failure::new(
            USAGE,
            format!("server URL: must start with http:// or https:// (got {url:?})"),
        ))
    }
}

struct Profile {
    name: String,
    dir: PathBuf,
    server: String,
    source: ServerSource,
    ca_cert: Option<PathBuf>,
}

impl Profile {
    fn load(cli: &Cli) -> Result<Profile, Failure> {
        let dir = profile_dir(&cli.profile)?;
        let saved = std::fs::read_to_string(dir.join("server")).ok();
        let (server, source) = pick_server(cli.server.as_deref(), saved.as_deref());
        Ok(Profile {
            name: cli.profile.clone(),
            dir,
            server,
            source,
            ca_cert: cli.ca_cert.clone(),
        })
    }

    fn save_server(&self, url: &str) -> Result<(), Failure> {
        std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(self.dir.join("server"), format!("{url}\n")))
            .map_err(|e| Failure::new(INTERNAL, format!("cannot save the server URL: {e}")))
    }

    fn open(&self) -> Result<Arc<TaplineClient>, Failure> {
        check_url(&self.server)?;
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            Failure::new(
                INTERNAL,
                format!("cannot create {}: {e}", self.dir.display()),
            )
        })?;
        let platform = if cfg!(target_os = "macos") {
            Platform::Macos
        } else if cfg!(windows) {
            Platform::Windows
        } else {
            Platform::Linux
        };
        let ca_cert_pem = match &self.ca_cert {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                Failure::new(
                    USAGE,
                    format!("--ca-cert {}: cannot read it: {e}", path.display()),
                )
            })?),
            None => None,
        };
        let config = ClientConfig {
            ca_cert_pem,
            server_url: self.server.clone(),
            data_dir: self.dir.display().to_string(),
            device_kind: DeviceKind::Desktop,
            platform,
            device_name: format!("tapline ({})", self.name),
            poll_interval_ms: 5000,
        };
        Ok(TaplineClient::new(config)?)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Out::new(cli.json);
    let mut client = None;
    let result = run(&cli, &out, &mut client).await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.shown {
                let account = client.as_ref().and_then(|c| c.account());
                let ctx = HintContext::new(
                    &cli.profile,
                    account.is_some(),
                    account.is_some_and(|a| a.signed_out),
                );
                let text = f.text(&ctx);
                if cli.json {
                    let mut error = json!({ "error": text, "exit_code": f.code });
                    if let Some(reason) = f.reason {
                        error["reason"] = reason.into();
                    }
                    if let Some(ms) = f.retry_after_ms {
                        error["retry_after_ms"] = ms.into();
                    }
                    out::stdout_line(&error.to_string());
                } else {
                    out::stderr_line(&format!("tapline: {text}"));
                }
            }
            ExitCode::from(f.code)
        }
    }
}

fn parse_hhmm(field: &str, s: &str) -> Result<(u8, u8), Failure> {
    let bad = || {
        Failure::new(REFUSED, format!("{field}: expected HH:MM, got {s:?}"))
            .with_reason("INVALID_ARGUMENT")
    };
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (u8, u8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok((h, m))
}

/// Whether a command sends what is queued first (every one that reaches the server, except
/// those that report their own flush and those with no account to flush for).
fn flushes_first(c: &Command) -> bool {
    !matches!(
        c,
        Command::Account {
            action: AccountAction::Create { .. }
                | AccountAction::Show
                | AccountAction::Forget { .. }
        } | Command::Link { code: Some(_), .. }
            | Command::Tap { .. }
            | Command::Rhythm { .. }
            | Command::Completions { .. }
            | Command::Server { .. }
    )
}

async fn run(cli: &Cli, out: &Out, slot: &mut Option<Arc<TaplineClient>>) -> Result<(), Failure> {
    let profile = Profile::load(cli)?;
    match &cli.command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "tapline", &mut script);
            out::stdout_line(String::from_utf8_lossy(&script).trim_end());
            return Ok(());
        }
        Command::Server { action } => return server(&profile, out, action.as_ref()),
        _ => {}
    }
    let client = profile.open()?;
    outbox::remember_queued(&client);
    *slot = Some(client.clone());
    if flushes_first(&cli.command) {
        outbox::flush_and_tell(&client, out).await;
    }
    match &cli.command {
        Command::Account {
            action: AccountAction::Create { name, tz },
        } => {
            let a = client.create_account(name.clone(), tz.clone()).await?;
            // The account lives on this server: keep talking to it.
            profile.save_server(&profile.server)?;
            out.result(
                "account",
                format!(
                    "Welcome, {} ({}). Next: `tapline --profile {} invite`, or join your partner's code.",
                    a.display_name, a.time_zone, cli.profile
                ),
                json!({ "account": render::account_json(&a) }),
            );
        }
        Command::Account {
            action: AccountAction::Show,
        } => {
            let a = client.account().ok_or(TaplineError::Unauthenticated)?;
            let human = format!(
                "{} ({}), account {}, this device {}{}\nServer: {}",
                a.display_name,
                a.time_zone,
                a.account_id,
                a.device_id,
                if a.signed_out {
                    " (signed out: see `tapline account forget`)"
                } else {
                    ""
                },
                profile.server
            );
            out.result(
                "account",
                human,
                json!({ "account": render::account_json(&a), "server": profile.server }),
            );
        }
        Command::Account {
            action: AccountAction::Update { name, tz },
        } => {
            let a = client.update_profile(name.clone(), tz.clone()).await?;
            out.result(
                "account",
                format!("Now {} ({}).", a.display_name, a.time_zone),
                json!({ "account": render::account_json(&a) }),
            );
        }
        Command::Account {
            action: AccountAction::Forget { yes },
        } => forget(&client, out, &cli.profile, *yes)?,
        Command::Account {
            action: AccountAction::Export { out: file },
        } => export(&client, out, file.as_deref()).await?,
        Command::Account {
            action: AccountAction::Delete { confirm },
        } => {
            client.delete_account(confirm.clone()).await?;
            out.result(
                "account",
                format!(
                    "Your account is deleted: its devices are signed out and what you sent is gone \
                     from the server. This profile has no account now (`tapline --profile {} \
                     account create` starts again).",
                    cli.profile
                ),
                json!({ "deleted": true }),
            );
        }
        Command::Invite { revoke: true } => {
            let revoked = client.revoke_invite().await?;
            out.result(
                "invite_revoked",
                if revoked {
                    "Your invite code no longer works."
                } else {
                    "You had no pending invite."
                },
                json!({ "revoked": revoked }),
            );
        }
        Command::Invite { revoke: false } => {
            let c = client.create_invite().await?;
            out.result(
                "invite",
                format!(
                    "Your invite code: {}  (valid 24 h, once). Your partner runs: tapline join {}",
                    c.code, c.code
                ),
                json!({ "code": c.code, "expires_at": render::iso(c.expires_at) }),
            );
        }
        Command::Join { code } => {
            let c = client.accept_invite(code.clone()).await?;
            out.result(
                "join",
                format!(
                    "Paired with {} ({}, {} there).",
                    c.partner.display_name,
                    c.partner.time_zone,
                    render::hhmm(&c.partner.local_time)
                ),
                json!({ "couple": render::couple_json(&c) }),
            );
        }
        Command::Tap { kind, note, wait } => {
            let tap = client.send_tap((*kind).into(), note.clone(), None)?;
            tap_sent(&client, out, tap, wait.wait).await?;
        }
        Command::Rhythm { times, note, wait } => {
            let times = match times {
                Some(t) => t.clone(),
                None => capture_rhythm()?,
            };
            let pattern = haptics::rhythm_from_taps(times);
            out.note(&render::bar(&pattern));
            let tap = client.send_tap(TapKind::Custom, note.clone(), Some(pattern))?;
            tap_sent(&client, out, tap, wait.wait).await?;
        }
        Command::Listen => listen(&client, out).await?,
        Command::Status => status(&client, out, &cli.profile).await?,
        Command::Link { revoke: true, .. } => {
            let n = client.revoke_link_codes().await?;
            out.result(
                "link_revoked",
                match n {
                    0 => "No pending link codes.".to_owned(),
                    1 => "Withdrew 1 link code.".to_owned(),
                    n => format!("Withdrew {n} link codes."),
                },
                json!({ "revoked": n }),
            );
        }
        Command::Link {
            code: None,
            revoke: false,
        } => {
            let c = client.create_link_code().await?;
            out.result(
                "link_code",
                format!(
                    "Link code: {}  (valid 10 minutes, once). On the new device: tapline --profile NEW link {}",
                    c.code, c.code
                ),
                json!({ "code": c.code, "expires_at": render::iso(c.expires_at) }),
            );
        }
        Command::Link {
            code: Some(code), ..
        } => {
            let a = client.redeem_link_code(code.clone()).await?;
            profile.save_server(&profile.server)?;
            out.result(
                "link",
                format!(
                    "This profile is now a device of {} ({}).",
                    a.display_name, a.time_zone
                ),
                json!({ "account": render::account_json(&a) }),
            );
        }
        Command::Devices {
            rename: Some(id),
            name: Some(name),
            ..
        } => {
            let (_, id) = device_by_prefix(&client, id).await?;
            let d = client.rename_device(id, name.clone()).await?;
            out.result(
                "device",
                format!("Renamed: {}", device_label(&d)),
                json!({ "device": render::device_json(&d) }),
            );
        }
        Command::Devices {
            revoke: Some(id), ..
        } => {
            let (devices, id) = device_by_prefix(&client, id).await?;
            let this = devices.iter().any(|d| d.device_id == id && d.current);
            client.revoke_device(id.clone()).await?;
            let label = devices
                .iter()
                .find(|d| d.device_id == id)
                .map_or("", |d| d.name.as_str());
            out.result(
                "revoke",
                format!(
                    "Signed out {} ({label}).{}",
                    ids::short_id(&id, []),
                    if this {
                        " That was this profile: it has no account now."
                    } else {
                        ""
                    }
                ),
                json!({ "revoked": id, "this_device": this }),
            );
        }
        Command::Devices { .. } => {
            let devices = client.devices().await?;
            let all: Vec<&str> = devices.iter().map(|d| d.device_id.as_str()).collect();
            let human: Vec<String> = devices
                .iter()
                .zip(ids::short_ids(&all))
                .map(|(d, short)| format!("{short:<13} {}", device_label(d)))
                .collect();
            out.result(
                "devices",
                human.join("\n"),
                json!({ "devices": devices.iter().map(render::device_json).collect::<Vec<_>>() }),
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
            out.result(
                "settings",
                render::settings_line(&s),
                json!({ "settings": render::settings_json(&s) }),
            );
        }
        Command::Receipts { state } => {
            let s = client
                .set_receipts_enabled(matches!(state, OnOff::On))
                .await?;
            out.result(
                "settings",
                render::settings_line(&s),
                json!({ "settings": render::settings_json(&s) }),
            );
        }
        Command::Unpair => {
            client.unpair().await?;
            out.result(
                "unpair",
                "Unpaired. Your history stays on this device.",
                json!({ "unpaired": true }),
            );
        }
        Command::Streak(args) => rituals::streak(&client, out, args).await?,
        Command::Checkin(args) => rituals::checkin(&client, out, args).await?,
        Command::Routine { action } => rituals::routine(&client, out, action).await?,
        Command::Push { action } => push::push(&client, out, action).await?,
        Command::Space { action } => {
            space::space(&client, out, action, &partner_name(&client)).await?
        }
        Command::Together { action } => {
            together::together(&client, out, action, &partner_name(&client)).await?
        }
        Command::Questions { action } => {
            questions::questions(&client, out, action.as_ref(), &partner_name(&client)).await?
        }
        Command::Reconnect { action } => {
            reconnect::reconnect(&client, out, action.as_ref(), &partner_name(&client)).await?
        }
        Command::Moments { action } => {
            moments::moments(&client, out, action.as_ref(), &partner_name(&client)).await?
        }
        Command::Recap(args) => moments::recap(&client, out, args, &partner_name(&client)).await?,
        Command::Meet { action } => {
            together::meet(&client, out, action.as_ref(), &partner_name(&client)).await?
        }
        Command::Completions { .. } | Command::Server { .. } => {}
    }
    Ok(())
}

/// The partner's name as last heard, or "your partner".
fn partner_name(client: &TaplineClient) -> String {
    client
        .glance()
        .partner_name
        .unwrap_or_else(|| "your partner".into())
}

/// `tapline account export [--out FILE]`.
async fn export(client: &TaplineClient, out: &Out, file: Option<&Path>) -> Result<(), Failure> {
    let doc = client.export_my_data().await?;
    let Some(file) = file else {
        out::stdout_line(&doc);
        return Ok(());
    };
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(doc.as_bytes())?;
            f.sync_all()
        });
    if let Err(e) = written {
        return Err(Failure::new(
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                USAGE
            } else {
                INTERNAL
            },
            format!("cannot write {}: {e}", file.display()),
        ));
    }
    let taps = serde_json::from_str::<serde_json::Value>(&doc)
        .ok()
        .and_then(|v| v["taps"].as_array().map(Vec::len))
        .unwrap_or(0);
    out.result(
        "export",
        format!(
            "Saved your data ({taps} tap{}, {} bytes) to {}.",
            if taps == 1 { "" } else { "s" },
            doc.len(),
            file.display()
        ),
        json!({ "saved": file.display().to_string(), "bytes": doc.len(), "taps": taps }),
    );
    Ok(())
}

/// This account's devices, and the id of the one `prefix` (an id or its first characters)
/// names.
async fn device_by_prefix(
    client: &TaplineClient,
    prefix: &str,
) -> Result<(Vec<DeviceSummary>, String), Failure> {
    let devices = client.devices().await?;
    let candidates: Vec<(String, String)> = devices
        .iter()
        .map(|d| (d.device_id.clone(), d.name.clone()))
        .collect();
    let id = ids::resolve(prefix, &candidates, "device", "`tapline devices`")?.to_owned();
    Ok((devices, id))
}

fn device_label(d: &DeviceSummary) -> String {
    format!(
        "{:<8} {:<8} {}{}",
        render::kind_name(d.kind),
        render::platform_name(d.platform),
        d.name,
        if d.current { "  (this one)" } else { "" }
    )
}

/// `tapline server [set URL | reset]`.
fn server(profile: &Profile, out: &Out, action: Option<&ServerAction>) -> Result<(), Failure> {
    match action {
        None => {
            let from = match profile.source {
                ServerSource::Flag => "from --server or TAPLINE_SERVER, for this command",
                ServerSource::Saved => "saved for this profile",
                ServerSource::Default => "the default",
            };
            out.result(
                "server",
                format!("{} ({from})", profile.server),
                json!({
                    "url": profile.server,
                    "source": match profile.source {
                        ServerSource::Flag => "flag",
                        ServerSource::Saved => "saved",
                        ServerSource::Default => "default",
                    },
                }),
            );
        }
        Some(ServerAction::Set { url }) => {
            let url = url.trim();
            check_url(url)?;
            profile.save_server(url)?;
            out.result(
                "server",
                format!("Profile {} now talks to {url}.", profile.name),
                json!({ "url": url, "source": "saved" }),
            );
        }
        Some(ServerAction::Reset) => {
            match std::fs::remove_file(profile.dir.join("server")) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Failure::new(INTERNAL, format!("cannot reset: {e}"))),
            }
            let (url, _) = pick_server(None, None);
            out.result(
                "server",
                format!(
                    "Profile {} has no saved server now (default {url}).",
                    profile.name
                ),
                json!({ "url": url, "source": "default" }),
            );
        }
    }
    Ok(())
}

/// `tapline account forget`.
fn forget(client: &TaplineClient, out: &Out, profile: &str, yes: bool) -> Result<(), Failure> {
    let Some(a) = client.account() else {
        out.result(
            "forget",
            "This profile has no account: nothing to forget.",
            json!({ "forgotten": false }),
        );
        return Ok(());
    };
    if !yes {
        return Err(Failure::new(
            USAGE,
            format!(
                "this removes {}'s account from profile {profile}, with its unsent taps and answers; the server is not told. Run again with --yes",
                a.display_name
            ),
        ));
    }
    client.forget_account()?;
    let still = if a.signed_out {
        String::new()
    } else {
        format!(
            " The server still counts this device ({}) as signed in: sign it out with `tapline devices --revoke {}` from another device of the account.",
            ids::short_id(&a.device_id, []),
            ids::short_id(&a.device_id, [])
        )
    };
    out.result(
        "forget",
        format!(
            "Forgot {}'s account on profile {profile}. Next: `tapline --profile {profile} account create --name NAME --tz ZONE` or `tapline --profile {profile} link CODE`.{still}",
            a.display_name
        ),
        json!({ "forgotten": true, "was_signed_out": a.signed_out, "device_id": a.device_id }),
    );
    Ok(())
}

/// What the tap result says: where it stands and how it lands.
fn tap_sentence(client: &TaplineClient, tap: &LocalTap, flushed: &outbox::Flush) -> String {
    let glance = client.glance();
    let partner = glance
        .partner_name
        .clone()
        .unwrap_or_else(|| "your partner".into());
    match &tap.state {
        TapState::Queued => format!(
            "Queued your {}: {}; it goes out with your next tapline command.",
            render::kind_word(tap.kind),
            flushed
                .blocked
                .as_ref()
                .map_or_else(|| "not sent yet".to_owned(), outbox::blocked_words)
        ),
        TapState::Refused { reason, .. } => format!("Not sent: {reason}"),
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
                render::kind_label(tap.kind)
            )
        }
    }
}

/// After `send_tap`: sends the outbox, says where the tap stands, and (with `--wait`) follows
/// it. The exit code is the tap's: refused by its code, still queued by why it waits.
async fn tap_sent(
    client: &Arc<TaplineClient>,
    out: &Out,
    tap: LocalTap,
    wait: Option<u64>,
) -> Result<(), Failure> {
    let flushed = outbox::flush(client).await;
    let mut now = client.local_tap(tap.client_tap_id.clone())?.unwrap_or(tap);
    if now.state == TapState::Queued && flushed.blocked.is_none() {
        // The background sender had it in hand: give it a moment.
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(t) = client.local_tap(now.client_tap_id.clone())? {
                now = t;
            }
            if now.state != TapState::Queued {
                break;
            }
        }
    }
    if client.glance().partner_name.is_none() && now.state != TapState::Queued {
        // Paired from the other side since this profile last synced: learn who the partner is.
        let _ = client.couple().await;
    }
    if let TapState::Refused { reason, code } = &now.state {
        return Err(Failure::refused(
            *code,
            format!("not sent: {}", render::refusal_words(*code, reason)),
        ));
    }
    if let Some(line) = outbox::describe_sent(&flushed)
        && !out.json
    {
        out::stderr_line(&line);
    }
    out.flushed(None, outbox::flush_json(&flushed));
    out.result(
        "tap",
        tap_sentence(client, &now, &flushed),
        json!({ "tap": render::local_tap_json(&now) }),
    );
    match wait {
        Some(secs) => follow(client, out, now, Duration::from_secs(secs)).await,
        None if now.state == TapState::Queued => Err(queued_failure(&flushed).shown()),
        None => Ok(()),
    }
}

/// Why a tap is still queued, as the exit code says it: unreachable unless the flush knew
/// better (rate limited 6, signed out 4).
fn queued_failure(f: &outbox::Flush) -> Failure {
    f.blocked_failure()
        .unwrap_or_else(|| Failure::new(UNREACHABLE, "not sent yet"))
}

enum Followed {
    Tap(LocalTap),
    Stopped,
}

struct Follower {
    client_tap_id: String,
    json: bool,
    tx: tokio::sync::mpsc::UnboundedSender<Followed>,
}

impl EventListener for Follower {
    fn on_event(&self, event: ClientEvent) -> Result<(), TaplineError> {
        if let ClientEvent::TapStateChanged { tap } = event
            && tap.client_tap_id == self.client_tap_id
        {
            let _ = self.tx.send(Followed::Tap(tap));
        }
        Ok(())
    }

    fn on_connection_state(&self, state: ConnectionState) -> Result<(), TaplineError> {
        match &state {
            ConnectionState::Offline { .. } | ConnectionState::Stopped { .. } if !self.json => {
                out::stderr_line(&format!("({})", events::connection_line(&state)));
            }
            _ => {}
        }
        if let ConnectionState::Stopped { .. } = state {
            let _ = self.tx.send(Followed::Stopped);
        }
        Ok(())
    }
}

fn is_final(s: &TapState) -> bool {
    matches!(s, TapState::Seen | TapState::Refused { .. })
}

/// `tap --wait`: prints each state change of the tap until it is seen or refused, or the time
/// is up. Still sent, delivered or felt at the end is success; refused exits by its code;
/// still queued by why it waits.
async fn follow(
    client: &Arc<TaplineClient>,
    out: &Out,
    tap: LocalTap,
    limit: Duration,
) -> Result<(), Failure> {
    out::exit_when_reader_leaves();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let id = tap.client_tap_id.clone();
    let subscription = client.subscribe(Arc::new(Follower {
        client_tap_id: id.clone(),
        json: out.json,
        tx,
    }));
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + limit;
    let mut last = tap;
    let mut stopped = false;
    while !is_final(&last.state) && !stopped {
        let next = tokio::select! {
            got = rx.recv() => match got {
                Some(Followed::Tap(t)) => Some(t),
                Some(Followed::Stopped) | None => { stopped = true; None }
            },
            _ = tokio::time::sleep(Duration::from_millis(500)) => client.local_tap(id.clone())?,
            _ = tokio::time::sleep_until(deadline) => break,
        };
        if let Some(t) = next
            && t.state != last.state
        {
            out.event(
                Some(&events::tap_state_line(&t)),
                &events::tap_state_json(&t),
            );
            last = t;
        }
    }
    subscription.cancel();
    let timed_out = !is_final(&last.state) && !stopped;
    let waited = started.elapsed();
    out.event(
        timed_out
            .then(|| {
                format!(
                    "(stopped waiting after {} s: it is {})",
                    waited.as_secs(),
                    render::state_name(&last.state)
                )
            })
            .as_deref(),
        &json!({
            "event": "wait_ended", "state": render::state_name(&last.state), "timed_out": timed_out,
            "waited_ms": waited.as_millis() as u64,
        }),
    );
    match &last.state {
        TapState::Refused { reason, code } => Err(Failure::refused(
            *code,
            format!("not sent: {}", render::refusal_words(*code, reason)),
        )
        .shown()),
        TapState::Queued => Err(queued_failure(&outbox::flush(client).await).shown()),
        _ if stopped && client.account().is_none_or(|a| a.signed_out) => {
            Err(Failure::from(TaplineError::Unauthenticated))
        }
        _ => Ok(()),
    }
}

/// A tap of this device on one line: id, kind and note, state, age.
fn own_tap_line(t: &LocalTap, short: &str, now: SystemTime) -> String {
    let note = t
        .note
        .as_deref()
        .filter(|n| !n.is_empty())
        .map(|n| format!(" “{n}”"))
        .unwrap_or_default();
    format!(
        "  {short}  {}{note} · {} · {}",
        render::kind_word(t.kind),
        render::state_words(&t.state),
        ritual_words::relative(t.created_at, now)
    )
}

/// Whether this profile is paired, as last heard (the rituals' reads need a partner).
fn g_paired(client: &TaplineClient) -> bool {
    client.glance().paired
}

async fn status(client: &TaplineClient, out: &Out, profile: &str) -> Result<(), Failure> {
    let account = client.account();
    let ctx = HintContext::new(
        profile,
        account.is_some(),
        account.as_ref().is_some_and(|a| a.signed_out),
    );
    let Some(me) = account.clone() else {
        let f = Failure::from(TaplineError::Unauthenticated);
        out.result(
            "status",
            format!(
                "Not signed in. {}",
                ritual_words::cap(&failure::hint(f.trouble, &ctx).unwrap_or_default())
            ),
            json!({ "online": false, "account": Value::Null, "signed_out": false }),
        );
        return Err(f.shown());
    };
    // Refresh what can be refreshed; the glance itself needs no network.
    let mut signed_out = me.signed_out;
    let online = if signed_out {
        false
    } else {
        match client.couple().await {
            Ok(_) => true,
            Err(TaplineError::Network { .. }) => false,
            Err(TaplineError::Unauthenticated) => {
                signed_out = true;
                false
            }
            Err(e) => return Err(e.into()),
        }
    };
    let streak = if online {
        client.streak().await.ok()
    } else {
        None
    };
    let today = match &streak {
        Some(s) => Some(rituals::today_counts(client, s).await),
        None => None,
    };
    if online {
        // Best effort: the glance shows what was last read if these fail.
        let _ = client.checkins(true).await;
        if g_paired(client) {
            let _ = client.spaces().await;
            let _ = client.together().await;
            let _ = client.questions().await;
            let _ = client.get_reconnect().await;
        }
    }
    let g = client.glance();
    let now = SystemTime::now();
    let partner = g
        .partner_name
        .clone()
        .unwrap_or_else(|| "your partner".into());
    let mut lines = vec![format!("You: {} ({})", me.display_name, me.time_zone)];
    if signed_out {
        let ctx = HintContext::new(profile, true, true);
        lines.push(format!(
            "Signed out: this device's sign-in was revoked, so nothing more goes out. {}.",
            ritual_words::cap(
                &failure::hint(failure::Trouble::NotSignedIn, &ctx).unwrap_or_default()
            )
        ));
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
        _ if signed_out => {}
        _ => lines.push(format!(
            "Not paired: `{}` or `{}`.",
            ctx.command("invite"),
            ctx.command("join CODE")
        )),
    }
    if let Some(t) = &g.last_tap {
        let keep = match &t.note {
            Some(n) => {
                let ids: Vec<String> = client
                    .received_taps(200)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| t.tap_id)
                    .collect();
                let short = ids::short_id(&t.tap_id, ids.iter().map(String::as_str));
                format!(" “{n}” (keep it: tapline moments keep --tap {short})")
            }
            None => String::new(),
        };
        lines.push(format!(
            "Last tap from {partner}: {}{keep} at {}",
            render::kind_label(t.kind),
            render::iso(t.sent_at)
        ));
    }
    // Counts: fresh when online (in calm mode from the history), else as last read (none in
    // calm mode: the server sends none).
    let (mine, theirs) = match today {
        Some(t) => (t.mine, t.theirs),
        None if g.streak_calm => (None, None),
        None => (Some(g.my_actions_today), Some(g.partner_actions_today)),
    };
    let n = |c: Option<u32>| c.map_or_else(|| "?".to_owned(), |c| c.to_string());
    match g.streak_current {
        Some(_) if g.streak_calm => lines.push(format!(
            "Streak: calm mode · today: you {}, {partner} {}",
            n(mine),
            n(theirs)
        )),
        Some(c) => lines.push(format!(
            "Streak: {} · freezes {} · today: you {}, {partner} {}",
            ritual_words::days(c),
            g.streak_freezes_held,
            n(mine),
            n(theirs)
        )),
        None => {}
    }
    let checkins = client.local_checkins(true).unwrap_or_default();
    let waiting: Vec<&CheckinInfo> = checkins
        .iter()
        .filter(|c| c.awaits_my_answer(now))
        .collect();
    match waiting.as_slice() {
        [] => {}
        [c] => lines.push(format!(
            "Check-in waiting for you: “{}” — tapline checkin answer VALUE ({})",
            c.prompt.text,
            ritual_words::answer_help(&c.prompt)
        )),
        many => lines.push(format!(
            "{} check-ins wait for your answer: `tapline checkin` lists them; answer with `tapline checkin answer ID VALUE`.",
            many.len()
        )),
    }
    if let Some(sp) = &g.my_space {
        lines.push(format!(
            "You asked for a moment, until {}; {} tap(s) wait for you (`tapline space end`).",
            render::iso(sp.until),
            sp.held_taps
        ));
    }
    if let Some(sp) = &g.partner_space {
        lines.push(format!(
            "{} asked for a moment, until {}: your taps wait until it ends.",
            ritual_words::cap(&partner),
            render::iso(sp.until)
        ));
    }
    if let Some(t) = &g.together {
        lines.push(together::together_words(t, &partner));
    }
    if let Some(m) = &g.meeting {
        lines.push(format!(
            "Next time you meet: {}{}.",
            m.countdown,
            m.my_local
                .as_deref()
                .map(|l| format!(" ({l} your time)"))
                .unwrap_or_default()
        ));
    }
    if let Some(q) = &g.question_waiting {
        lines.push(format!(
            "Question {} of 36 waits for your answer: “{}” (`tapline questions answer \"...\"`)",
            q.number, q.text
        ));
    }
    if g.reconnect_awaits_me {
        lines.push(format!(
            "{} suggests a reconnect plan: `tapline reconnect` shows it, `tapline reconnect accept` begins it.",
            ritual_words::cap(&partner)
        ));
    }
    if let Some(s) = &g.reconnect_step {
        lines.push(format!(
            "Reconnect step {} of 7 waits for you: {} — {} (`tapline reconnect done {}`)",
            s.number, s.title, s.prompt, s.number
        ));
    }
    if g.reconnect_suggested {
        lines.push(format!(
            "It has been a while since a day you both showed up. If you like, `tapline reconnect start` suggests seven small steps to {partner}."
        ));
    }
    if let Some(r) = &g.recap_ready {
        lines.push(format!(
            "Your weekly recap is ready ({} to {}, {} of 7 days connected): `tapline recap`.",
            r.first_date, r.last_date, r.connected_days
        ));
    }
    let taps = client.local_taps(5).unwrap_or_default();
    if !taps.is_empty() {
        lines.push("Your recent taps:".into());
        let ids: Vec<&str> = taps.iter().map(|t| t.client_tap_id.as_str()).collect();
        for (t, short) in taps.iter().zip(ids::short_ids(&ids)) {
            lines.push(own_tap_line(t, &short, now));
        }
    }
    let answers: Vec<LocalAnswer> = client
        .local_answers(20)
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.state != AnswerState::Sent)
        .take(5)
        .collect();
    let all_checkins = client.local_checkins(false).unwrap_or_default();
    if !answers.is_empty() {
        lines.push("Your answers not accepted yet:".into());
        for a in &answers {
            let prompt = all_checkins.iter().find(|c| c.checkin_id == a.checkin_id);
            let label = prompt.map_or_else(
                || match &a.answer {
                    CheckinAnswer::Scale { value } => format!("{value}/5"),
                    CheckinAnswer::Choice { index } => format!("option {}", index + 1),
                    CheckinAnswer::Emoji { emoji } => emoji.clone(),
                    CheckinAnswer::Text { text } => format!("“{text}”"),
                },
                |c| ritual_words::answer_label(&c.prompt, &a.answer),
            );
            let question = prompt.map_or_else(String::new, |c| format!(" to “{}”", c.prompt.text));
            let state = match &a.state {
                AnswerState::Refused { reason, code } => {
                    format!("refused ({})", render::refusal_words(*code, reason))
                }
                other => ritual_words::answer_state_key(other),
            };
            lines.push(format!("  {label}{question} · {state}"));
        }
    }
    let queued_taps = client
        .local_taps(500)
        .unwrap_or_default()
        .iter()
        .filter(|t| t.state == TapState::Queued)
        .count();
    let queued_answers = client
        .local_answers(500)
        .unwrap_or_default()
        .iter()
        .filter(|a| a.state == AnswerState::Queued)
        .count();
    let mut unsent = Vec::new();
    if queued_taps > 0 {
        unsent.push(ritual_words::plural(queued_taps as u32, "tap", "taps"));
    }
    if queued_answers > 0 {
        unsent.push(ritual_words::plural(
            queued_answers as u32,
            "answer",
            "answers",
        ));
    }
    lines.push(if unsent.is_empty() {
        "Nothing unsent.".to_owned()
    } else {
        format!(
            "Unsent: {} (sent by the next command that reaches the server).",
            unsent.join(" and ")
        )
    });
    if !online && !signed_out {
        lines.push("(offline: shown from this device's store)".into());
    }
    out.result(
        "status",
        lines.join("\n"),
        json!({
            "online": online,
            "signed_out": signed_out,
            "account": render::account_json(&me),
            "partner": g.partner_name.as_ref().map(|name| json!({
                "name": name,
                "time_zone": g.partner_time_zone,
                "local_time": g.partner_local_time,
                "in_quiet_hours": g.partner_in_quiet_hours,
            })),
            "last_tap": g.last_tap.as_ref().map(render::received_json),
            "streak": g.streak_current.map(|current| json!({
                "calm": g.streak_calm,
                "current": if g.streak_calm { Value::Null } else { current.into() },
                "freezes_held": if g.streak_calm { Value::Null } else { g.streak_freezes_held.into() },
                "my_actions_today": mine,
                "partner_actions_today": theirs,
            })),
            "pending_checkins": waiting.iter().map(|c| ritual_words::checkin_json(c)).collect::<Vec<_>>(),
            "my_space": g.my_space.as_ref().map(space::space_json),
            "partner_space": g.partner_space.as_ref().map(space::space_json),
            "together": g.together.as_ref().map(together::together_json),
            "meeting": g.meeting.as_ref().map(|m| json!({
                "starts_at": render::iso(m.starts_at),
                "countdown": m.countdown,
                "my_local": m.my_local,
                "partner_local": m.partner_local,
                "time_zone": m.time_zone,
            })),
            "question_waiting": g.question_waiting.as_ref().map(questions::question_json),
            "reconnect_step": g.reconnect_step.as_ref().map(reconnect::step_json),
            "reconnect_awaits_me": g.reconnect_awaits_me,
            "reconnect_suggested": g.reconnect_suggested,
            "recap_ready": g.recap_ready.as_ref().map(|r| json!({
                "first_date": r.first_date,
                "last_date": r.last_date,
                "connected_days": r.connected_days,
                "taps_sent": r.taps_sent,
                "taps_received": r.taps_received,
                "moments": r.moments,
            })),
            "taps": taps.iter().map(render::local_tap_json).collect::<Vec<_>>(),
            "answers": answers.iter().map(ritual_words::local_answer_json).collect::<Vec<_>>(),
            "unsent": { "taps": queued_taps, "answers": queued_answers },
        }),
    );
    if signed_out {
        return Err(Failure::new(NO_ACCOUNT, "signed out")
            .with_reason("SIGNED_OUT")
            .shown());
    }
    Ok(())
}

/// Prints a subscription's events and connection changes; reports partner taps seen.
struct Printer {
    json: bool,
    client: std::sync::Weak<TaplineClient>,
    notices: Mutex<Notices>,
    stopped: tokio::sync::mpsc::UnboundedSender<String>,
}

impl EventListener for Printer {
    fn on_event(&self, event: ClientEvent) -> Result<(), TaplineError> {
        let (line, json) = self
            .notices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .notice(&event);
        if self.json {
            out::stdout_line(&json.to_string());
        } else if let Some(line) = line {
            out::stdout_line(&line);
        }
        if let ClientEvent::TapReceived { tap } = &event
            && !tap.from_self
            && let Some(client) = self.client.upgrade()
        {
            client.report_tap(tap.tap_id.clone(), ReceiptKind::Seen)?;
        }
        Ok(())
    }

    fn on_connection_state(&self, state: ConnectionState) -> Result<(), TaplineError> {
        if self.json {
            out::stdout_line(&events::connection_json(&state).to_string());
        } else {
            out::stderr_line(&events::connection_line(&state));
        }
        if let ConnectionState::Stopped { reason } = state {
            let _ = self.stopped.send(reason);
        }
        Ok(())
    }
}

async fn listen(client: &Arc<TaplineClient>, out: &Out) -> Result<(), Failure> {
    let me = client.account().ok_or(TaplineError::Unauthenticated)?;
    if me.signed_out {
        return Err(TaplineError::Unauthenticated.into());
    }
    // What the events are compared with, to say what changed.
    let notices = Notices {
        partner: client.couple().await.ok().flatten().map(|c| c.partner),
        streak: client.streak().await.ok(),
        routine_ids: client
            .routines()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.routine_id)
            .collect(),
        tap_ids: client
            .received_taps(200)
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.tap_id)
            .collect(),
        my_zone: me.time_zone.clone(),
    };
    let (stopped_tx, mut stopped_rx) = tokio::sync::mpsc::unbounded_channel();
    let printer = Printer {
        json: out.json,
        client: Arc::downgrade(client),
        notices: Mutex::new(notices),
        stopped: stopped_tx,
    };
    out::exit_when_reader_leaves();
    let subscription = client.subscribe(Arc::new(printer));
    let stopped = tokio::select! {
        _ = tokio::signal::ctrl_c() => None,
        reason = stopped_rx.recv() => reason,
    };
    subscription.cancel();
    match stopped {
        // Said with the hint: what to do about it.
        Some(_) if client.account().is_none_or(|a| a.signed_out) => {
            Err(Failure::from(TaplineError::Unauthenticated))
        }
        // Another `listen` of this profile took the stream over.
        Some(reason) => {
            Err(Failure::new(REFUSED, format!("the event stream stopped: {reason}")).shown())
        }
        None => Ok(()),
    }
}

/// Reads space-bar taps from the terminal in raw mode; Enter finishes, q cancels.
fn capture_rhythm() -> Result<Vec<u64>, Failure> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::new(
            USAGE,
            "tapline rhythm needs a terminal (or pass --times 0,250,400)",
        ));
    }
    out::stderr_line("Tap a rhythm with the space bar (up to 10 s); Enter sends, q cancels.");
    let _raw = RawMode::enter()?;
    let mut times = Vec::new();
    let mut start: Option<Instant> = None;
    let mut byte = [0u8; 1];
    let mut lock = stdin.lock();
    loop {
        if lock
            .read(&mut byte)
            .map_err(|e| Failure::new(INTERNAL, e.to_string()))?
            == 0
        {
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
                out::stderr_line("");
                return Err(Failure::new(REFUSED, "cancelled"));
            }
            _ => {}
        }
    }
    out::stderr_line("");
    if times.is_empty() {
        return Err(Failure::new(REFUSED, "no taps recorded"));
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
                return Err(Failure::new(INTERNAL, "cannot read the terminal mode"));
            }
            let saved = t;
            t.c_lflag &= !(libc::ICANON | libc::ECHO);
            t.c_cc[libc::VMIN] = 1;
            t.c_cc[libc::VTIME] = 0;
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return Err(Failure::new(INTERNAL, "cannot set the terminal mode"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_an_example_in_its_help() {
        fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", c.get_name());
            let help = c
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            if !help.contains("Example") && c.get_name() != "help" && !c.has_subcommands() {
                missing.push(path.clone());
            }
            for s in c.get_subcommands() {
                walk(s, &path, missing);
            }
        }
        let mut missing = Vec::new();
        let cli = Cli::command();
        for s in cli.get_subcommands() {
            walk(s, "tapline", &mut missing);
        }
        assert!(missing.is_empty(), "no example in --help: {missing:?}");
        assert!(
            cli.get_after_help()
                .unwrap()
                .to_string()
                .contains("Exit codes: 0 ok")
        );
    }

    #[test]
    fn server_flags_are_for_one_command() {
        assert_eq!(
            pick_server(Some("http://h:1"), Some("http://saved:2\n")),
            ("http://h:1".to_owned(), ServerSource::Flag)
        );
        assert_eq!(
            pick_server(None, Some("http://saved:2\n")),
            ("http://saved:2".to_owned(), ServerSource::Saved)
        );
        assert_eq!(
            pick_server(None, Some("  ")),
            (DEFAULT_SERVER.to_owned(), ServerSource::Default)
        );
        assert!(check_url("ftp://x").is_err());
    }

    #[test]
    fn wait_takes_an_optional_number_of_seconds() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from(args).unwrap();
            match cli.command {
                Command::Tap { wait, .. } => wait.wait,
                _ => unreachable!(),
            }
        };
        assert_eq!(parse(&["tapline", "tap"]), None);
        assert_eq!(parse(&["tapline", "tap", "--wait"]), Some(30));
        assert_eq!(parse(&["tapline", "tap", "--wait=5"]), Some(5));
        assert!(Cli::try_parse_from(["tapline", "tap", "--wait=soon"]).is_err());
    }

    #[test]
    fn commands_that_reach_the_server_flush_first() {
        let cmd = |args: &[&str]| Cli::try_parse_from(args).unwrap().command;
        assert!(flushes_first(&cmd(&["tapline", "status"])));
        assert!(flushes_first(&cmd(&["tapline", "invite"])));
        assert!(flushes_first(&cmd(&["tapline", "listen"])));
        assert!(flushes_first(&cmd(&["tapline", "checkin"])));
        assert!(!flushes_first(&cmd(&["tapline", "account", "show"])));
        assert!(
            !flushes_first(&cmd(&["tapline", "tap"])),
            "tap tells its own flush"
        );
        assert!(!flushes_first(&cmd(&["tapline", "completions", "bash"])));
    }

    #[test]
    fn together_and_meet_take_their_lengths_and_meet_shows_by_default() {
        let cmd = |args: &[&str]| Cli::try_parse_from(args).unwrap().command;
        assert!(matches!(
            cmd(&["tapline", "together", "start", "--for", "90m"]),
            Command::Together {
                action: together::TogetherAction::Start { length: Some(l) }
            } if l == "90m"
        ));
        assert!(matches!(
            cmd(&["tapline", "meet"]),
            Command::Meet { action: None }
        ));
        match cmd(&[
            "tapline",
            "meet",
            "set",
            "2026-12-18",
            "19:30",
            "--tz",
            "Asia/Tokyo",
            "--for",
            "3h",
        ]) {
            Command::Meet {
                action:
                    Some(together::MeetAction::Set {
                        date,
                        time,
                        tz,
                        length,
                    }),
            } => assert_eq!(
                (
                    date.as_str(),
                    time.as_str(),
                    tz.as_deref(),
                    length.as_deref()
                ),
                ("2026-12-18", "19:30", Some("Asia/Tokyo"), Some("3h"))
            ),
            other => panic!("{other:?}"),
        }
        assert!(flushes_first(&cmd(&["tapline", "together", "status"])));
        assert!(Cli::try_parse_from(["tapline", "meet", "set", "2026-12-18"]).is_err());
    }
}
