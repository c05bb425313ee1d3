//! `tapline push`: register a Web Push (UnifiedPush) endpoint for this device, show its push
//! targets, remove one. (The server keeps the targets; sending pushes to them is not built yet.)

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use tapline_core::*;

use crate::failure::{Failure, USAGE};
use crate::out::Out;

/// Examples shown under `tapline push --help`.
pub const PUSH_EXAMPLES: &str = "Examples:
  tapline --profile sam push web --endpoint https://up.example.net/UP?token=abc \\
      --p256dh BNc... --auth tBH...
  tapline --profile sam push status
  tapline --profile sam push remove web";

/// What `tapline push` does.
#[derive(Debug, Subcommand)]
pub enum PushAction {
    /// Register (or replace) this device's Web Push / UnifiedPush subscription.
    #[command(
        after_help = "Example:\n  tapline --profile sam push web --endpoint https://up.example.net/UP?token=abc --p256dh BNc... --auth tBH..."
    )]
    Web {
        /// The push service's endpoint URL (https).
        #[arg(long)]
        endpoint: String,
        /// The subscription's `keys.p256dh`, base64url (as a browser or distributor gives it).
        #[arg(long)]
        p256dh: String,
        /// The subscription's `keys.auth`, base64url.
        #[arg(long)]
        auth: String,
    },
    /// Show this device's push targets.
    #[command(after_help = "Example:\n  tapline --profile sam push status")]
    Status,
    /// Remove this device's target for a provider.
    #[command(after_help = "Example:\n  tapline --profile sam push remove web")]
    Remove {
        #[arg(value_enum)]
        provider: Provider,
    },
}

/// A provider, as typed.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Provider {
    Apns,
    Fcm,
    Web,
}

impl From<Provider> for PushProvider {
    fn from(p: Provider) -> PushProvider {
        match p {
            Provider::Apns => PushProvider::Apns,
            Provider::Fcm => PushProvider::Fcm,
            Provider::Web => PushProvider::WebPush,
        }
    }
}

/// Decodes base64url, with or without padding (subscriptions come both ways).
pub fn base64url(flag: &str, s: &str) -> Result<Vec<u8>, Failure> {
    let s = s.trim();
    URL_SAFE_NO_PAD
        .decode(s)
        .or_else(|_| URL_SAFE.decode(s))
        .map_err(|_| Failure::new(USAGE, format!("{flag}: must be base64url")))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A target in words and as JSON.
pub fn describe(r: &PushRegistration) -> (String, Value) {
    match &r.target {
        PushTarget::Apns {
            device_token,
            topic,
            sandbox,
            push_types,
        } => (
            format!(
                "APNs   {}… for {topic} ({}; {})",
                &device_token[..device_token.len().min(12)],
                if *sandbox { "sandbox" } else { "production" },
                push_types
                    .iter()
                    .map(|t| format!("{t:?}").to_lowercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            json!({
                "provider": "apns", "device_token": device_token, "topic": topic,
                "sandbox": sandbox,
                "push_types": push_types.iter().map(|t| format!("{t:?}").to_lowercase()).collect::<Vec<_>>(),
            }),
        ),
        PushTarget::Fcm { registration_token } => (
            format!(
                "FCM    {}…",
                &registration_token[..registration_token.len().min(16)]
            ),
            json!({ "provider": "fcm", "registration_token": registration_token }),
        ),
        PushTarget::WebPush {
            endpoint,
            p256dh,
            auth,
        } => (
            format!("Web    {endpoint}"),
            json!({
                "provider": "web_push", "endpoint": endpoint,
                "p256dh": b64(p256dh), "auth": b64(auth),
            }),
        ),
    }
}

/// Runs `tapline push …`.
pub async fn push(client: &TaplineClient, out: &Out, action: &PushAction) -> Result<(), Failure> {
    match action {
        PushAction::Web {
            endpoint,
            p256dh,
            auth,
        } => {
            let target = PushTarget::WebPush {
                endpoint: endpoint.trim().to_owned(),
                p256dh: base64url("--p256dh", p256dh)?,
                auth: base64url("--auth", auth)?,
            };
            let r = client.register_push(target).await?;
            let (line, j) = describe(&r);
            out.result(
                "push_registered",
                format!("Registered: {line}"),
                json!({ "target": j }),
            );
        }
        PushAction::Status => {
            let targets = client.push_targets().await?;
            let (lines, json): (Vec<String>, Vec<Value>) = targets.iter().map(describe).unzip();
            let human = if lines.is_empty() {
                "No push targets.".to_owned()
            } else {
                lines.join("\n")
            };
            out.result("push_targets", human, json!({ "targets": json }));
        }
        PushAction::Remove { provider } => {
            let removed = client.remove_push((*provider).into()).await?;
            out.result(
                "push_removed",
                if removed {
                    "Removed."
                } else {
                    "There was none to remove."
                },
                json!({ "removed": removed }),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_keys_decode_with_or_without_padding() {
        assert_eq!(base64url("--auth", "AQID").unwrap(), vec![1, 2, 3]);
        assert_eq!(base64url("--auth", "AQI=").unwrap(), vec![1, 2]);
        assert_eq!(base64url("--auth", "AQI").unwrap(), vec![1, 2]);
        assert_eq!(base64url("--auth", "-_8").unwrap(), vec![0xfb, 0xff]);
        let e = base64url("--p256dh", "not base64!").unwrap_err();
        assert_eq!(e.code, USAGE);
        assert!(e.message.starts_with("--p256dh"));
    }

    #[test]
    fn a_web_target_shows_its_endpoint_and_keys() {
        let r = PushRegistration {
            target: PushTarget::WebPush {
                endpoint: "https://up.example.net/x".into(),
                p256dh: vec![4, 1],
                auth: vec![2],
            },
            registered_at: std::time::SystemTime::UNIX_EPOCH,
        };
        let (line, j) = describe(&r);
        assert_eq!(line, "Web    https://up.example.net/x");
        assert_eq!(j["provider"], "web_push");
        assert_eq!(j["p256dh"], "BAE");
    }
}
