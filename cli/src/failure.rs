//! Failures and the exit codes they map to, with a hint that says what to do next.
//!
//! Exit codes: 0 ok, 1 internal, 2 usage, 3 server unreachable, 4 not signed in / signed out /
//! not paired, 5 invalid input or refused, 6 rate limited.

use tapline_core::{RefusalCode, TaplineError};

pub const INTERNAL: u8 = 1;
pub const USAGE: u8 = 2;
pub const UNREACHABLE: u8 = 3;
pub const NO_ACCOUNT: u8 = 4;
pub const REFUSED: u8 = 5;
pub const RATE_LIMITED: u8 = 6;

/// What kind of trouble a failure is, for its hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// The server could not be reached.
    Unreachable,
    /// No account here, or the server no longer accepts this device's token.
    NotSignedIn,
    /// Needs a partner.
    NotPaired,
    /// This profile has an account already.
    AlreadySignedIn,
    /// Too many requests.
    RateLimited,
    /// Anything else: the message says enough.
    Other,
}

/// A failure with the exit code it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: u8,
    pub message: String,
    /// Why, for scripts (`--json`): a stable name, e.g. "CODE_EXPIRED".
    pub reason: Option<&'static str>,
    /// For a rate limit: when to retry.
    pub retry_after_ms: Option<u64>,
    pub trouble: Trouble,
    /// The command has printed its result already (a tap left queued): exit with the code,
    /// print nothing more.
    pub shown: bool,
}

/// The exit code and stable reason of a refusal code (a refused tap or answer, or a refused
/// call): signed out and not paired are "not signed in or not paired" (4), the rest refused (5).
pub fn refusal_exit(code: RefusalCode) -> u8 {
    match code {
        RefusalCode::SignedOut | RefusalCode::NotPaired => NO_ACCOUNT,
        _ => REFUSED,
    }
}

fn refusal_trouble(code: RefusalCode) -> Trouble {
    match code {
        RefusalCode::SignedOut => Trouble::NotSignedIn,
        RefusalCode::NotPaired => Trouble::NotPaired,
        RefusalCode::AlreadySignedIn => Trouble::AlreadySignedIn,
        _ => Trouble::Other,
    }
}

/// Seconds, rounded up, for "retry in N s".
pub fn secs_up(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            reason: None,
            retry_after_ms: None,
            trouble: Trouble::Other,
            shown: false,
        }
    }

    pub fn with_reason(mut self, reason: &'static str) -> Failure {
        self.reason = Some(reason);
        self
    }

    /// A tap or answer the server (or the core) refused for good.
    pub fn refused(code: RefusalCode, message: impl Into<String>) -> Failure {
        Failure {
            code: refusal_exit(code),
            message: message.into(),
            reason: Some(code.as_str()),
            retry_after_ms: None,
            trouble: refusal_trouble(code),
            shown: false,
        }
    }

    /// This failure, for a command that has printed its result already.
    pub fn shown(self) -> Failure {
        Failure {
            shown: true,
            ..self
        }
    }

    /// The sentence to print: the message and what to do about it.
    pub fn text(&self, ctx: &HintContext) -> String {
        // The core says "not signed in" for a device whose token the server no longer takes.
        let message = if self.trouble == Trouble::NotSignedIn
            && ctx.has_account
            && self.message == "not signed in"
        {
            "this device was signed out"
        } else {
            self.message.as_str()
        };
        match hint(self.trouble, ctx) {
            Some(h) => format!("{message} ({h})"),
            None => message.to_owned(),
        }
    }
}

impl From<TaplineError> for Failure {
    fn from(e: TaplineError) -> Failure {
        let (code, reason, trouble) = match &e {
            TaplineError::Network { .. } => (UNREACHABLE, None, Trouble::Unreachable),
            TaplineError::Unauthenticated => {
                (NO_ACCOUNT, Some("UNAUTHENTICATED"), Trouble::NotSignedIn)
            }
            TaplineError::NotPaired => (NO_ACCOUNT, Some("NOT_PAIRED"), Trouble::NotPaired),
            TaplineError::InvalidInput { .. } => {
                (REFUSED, Some("INVALID_ARGUMENT"), Trouble::Other)
            }
            TaplineError::NotFound { .. } => (REFUSED, Some("NOT_FOUND"), Trouble::Other),
            TaplineError::Refused { code, .. } => (
                refusal_exit(*code),
                Some(code.as_str()),
                refusal_trouble(*code),
            ),
            TaplineError::RateLimited { .. } => {
                (RATE_LIMITED, Some("RATE_LIMITED"), Trouble::RateLimited)
            }
            TaplineError::Internal { .. } => (INTERNAL, None, Trouble::Other),
        };
        let retry_after_ms = match &e {
            TaplineError::RateLimited { retry_after_ms } => Some(*retry_after_ms),
            _ => None,
        };
        let message = match &e {
            TaplineError::RateLimited { retry_after_ms } => {
                format!(
                    "rate limited by the server: retry in {} s",
                    secs_up(*retry_after_ms)
                )
            }
            TaplineError::Unauthenticated => "not signed in".to_owned(),
            TaplineError::Refused {
                code: RefusalCode::AlreadySignedIn,
                ..
            } => "this profile has an account already".to_owned(),
            TaplineError::Refused {
                code: RefusalCode::SignedOut,
                ..
            } => "this device was signed out".to_owned(),
            other => other.to_string(),
        };
        Failure {
            code,
            message,
            reason,
            retry_after_ms,
            trouble,
            shown: false,
        }
    }
}

/// What the hints need to know about this profile.
#[derive(Debug, Clone, Default)]
pub struct HintContext {
    /// `--profile NAME` as typed, or empty for the default profile.
    pub profile_flag: String,
    /// Whether this profile holds an account.
    pub has_account: bool,
    /// Whether the server said this device is signed out.
    pub signed_out: bool,
}

impl HintContext {
    pub fn new(profile: &str, has_account: bool, signed_out: bool) -> HintContext {
        HintContext {
            profile_flag: if profile == "default" {
                String::new()
            } else {
                format!("--profile {profile} ")
            },
            has_account,
            signed_out,
        }
    }

    /// `tapline [--profile NAME] ARGS`, to suggest.
    pub fn command(&self, args: &str) -> String {
        format!("tapline {}{args}", self.profile_flag)
    }
}

/// What to do next, for a kind of trouble.
pub fn hint(trouble: Trouble, ctx: &HintContext) -> Option<String> {
    Some(match trouble {
        Trouble::Unreachable => {
            "is the server running? start it with `cargo run -p tapline-server`; \
             or pick another with --server URL (an https:// server with its own CA also \
             needs --ca-cert FILE)"
                .to_owned()
        }
        Trouble::NotSignedIn if ctx.has_account || ctx.signed_out => format!(
            "signed out from another device? run `{}` to remove the old account from this \
             profile, then `{}` or `{}`",
            ctx.command("account forget --yes"),
            ctx.command("account create --name NAME --tz ZONE"),
            ctx.command("link CODE"),
        ),
        Trouble::NotSignedIn => format!(
            "create an account with `{}`, or add this profile to yours with `{}`",
            ctx.command("account create --name NAME --tz ZONE"),
            ctx.command("link CODE"),
        ),
        Trouble::NotPaired => format!(
            "make a code with `{}`, or accept your partner's with `{}`",
            ctx.command("invite"),
            ctx.command("join CODE"),
        ),
        Trouble::AlreadySignedIn if ctx.signed_out => format!(
            "it was signed out: run `{}` first",
            ctx.command("account forget --yes")
        ),
        Trouble::AlreadySignedIn => {
            "pick another profile with `--profile NAME`, or remove this one's with `tapline account forget --yes`".to_owned()
        }
        Trouble::RateLimited => "queued taps go out with the next command after that".to_owned(),
        Trouble::Other => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(e: TaplineError) -> u8 {
        Failure::from(e).code
    }

    #[test]
    fn every_error_has_its_documented_exit_code() {
        assert_eq!(code_of(TaplineError::Network { reason: "x".into() }), 3);
        assert_eq!(code_of(TaplineError::Unauthenticated), 4);
        assert_eq!(code_of(TaplineError::NotPaired), 4);
        assert_eq!(
            code_of(TaplineError::InvalidInput { reason: "x".into() }),
            5
        );
        assert_eq!(code_of(TaplineError::NotFound { reason: "x".into() }), 5);
        assert_eq!(
            code_of(TaplineError::RateLimited {
                retry_after_ms: 1500
            }),
            6
        );
        assert_eq!(code_of(TaplineError::Internal { reason: "x".into() }), 1);
        let refused = |code| TaplineError::Refused {
            reason: "x".into(),
            code,
        };
        assert_eq!(code_of(refused(RefusalCode::CodeExpired)), 5);
        assert_eq!(code_of(refused(RefusalCode::AlreadySignedIn)), 5);
        assert_eq!(code_of(refused(RefusalCode::InvalidInput)), 5);
        assert_eq!(code_of(refused(RefusalCode::NotFound)), 5);
        assert_eq!(code_of(refused(RefusalCode::SignedOut)), 4);
        assert_eq!(code_of(refused(RefusalCode::NotPaired)), 4);
    }

    #[test]
    fn refusals_name_their_reason_and_rate_limits_their_delay() {
        let f = Failure::from(TaplineError::Refused {
            reason: "the code has expired".into(),
            code: RefusalCode::CodeExpired,
        });
        assert_eq!(f.reason, Some("CODE_EXPIRED"));
        let f = Failure::from(TaplineError::RateLimited {
            retry_after_ms: 1200,
        });
        assert_eq!(f.reason, Some("RATE_LIMITED"));
        assert_eq!(f.retry_after_ms, Some(1200));
        assert_eq!(f.message, "rate limited by the server: retry in 2 s");
        let f = Failure::refused(RefusalCode::SignedOut, "not sent: signed out");
        assert_eq!((f.code, f.reason), (4, Some("SIGNED_OUT")));
        assert_eq!(Failure::refused(RefusalCode::NotPaired, "x").code, 4);
        assert_eq!(Failure::refused(RefusalCode::OwnTap, "x").code, 5);
    }

    #[test]
    fn a_signed_out_device_is_told_to_forget_the_old_account() {
        let f = Failure::from(TaplineError::Unauthenticated);
        let fresh = f.text(&HintContext::new("default", false, false));
        assert!(
            fresh.contains("`tapline account create --name NAME --tz ZONE`"),
            "{fresh}"
        );
        assert!(!fresh.contains("forget"), "{fresh}");
        let revoked = f.text(&HintContext::new("alex", true, true));
        assert!(
            revoked.starts_with("this device was signed out ("),
            "{revoked}"
        );
        assert!(
            revoked.contains("`tapline --profile alex account forget --yes`"),
            "{revoked}"
        );
        assert!(
            revoked.contains("`tapline --profile alex link CODE`"),
            "{revoked}"
        );
        let twice = Failure::from(TaplineError::Refused {
            reason: "this device already has an account".into(),
            code: RefusalCode::AlreadySignedIn,
        })
        .text(&HintContext::new("alex", true, true));
        assert!(twice.contains("account forget --yes"), "{twice}");
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(secs_up(0), 1);
        assert_eq!(secs_up(1000), 1);
        assert_eq!(secs_up(1001), 2);
        assert_eq!(secs_up(59_500), 60);
    }
}
