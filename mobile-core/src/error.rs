//! Errors: a rich internal [`CoreError`] and the small public [`TaplineError`] the apps see.
//!
//! A server error is read from its standard details (tonic-types): `ErrorInfo.reason` (a
//! `tapline.v1.ErrorReason` name, domain [`ERROR_DOMAIN`]) picks the public error,
//! `BadRequest` names the field, `RetryInfo` says when to retry. The message text is only ever
//! shown, never matched. A status without details (an older server, a proxy) maps by its code.

use std::time::Duration;

use tapline_proto::codec::ERROR_DOMAIN;
use tapline_proto::v1::ErrorReason;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Header repeating `RetryInfo`'s delay in milliseconds (for clients that read no details).
const RETRY_AFTER_MS: &str = "retry-after-ms";
/// The wait after a `RESOURCE_EXHAUSTED` that names none.
const DEFAULT_RETRY: Duration = Duration::from_millis(1000);

/// The error every exported method returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum TaplineError {
    /// The server could not be reached (offline, server down, timeout), or it cannot serve now
    /// (shutting down, its database unavailable): a retry later may succeed.
    #[error("network: {reason}")]
    Network {
        /// What failed, for logs.
        reason: String,
    },
    /// No account on this device, or its token was revoked.
    #[error("not signed in (or this device was signed out)")]
    Unauthenticated,
    /// The action needs a partner.
    #[error("not paired: pair with your partner first")]
    NotPaired,
    /// The input broke a rule; the reason names the field.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// Field and rule, e.g. "note: must be at most 80 characters".
        reason: String,
    },
    /// Too many requests; retry after the delay.
    #[error("rate limited: retry in {retry_after_ms} ms")]
    RateLimited {
        /// Milliseconds until a retry can succeed.
        retry_after_ms: u64,
    },
    /// The thing does not exist (or is not yours).
    #[error("not found: {reason}")]
    NotFound {
        /// What was not found.
        reason: String,
    },
    /// The server (or the core) refused in this state (expired or used code, already
    /// paired, ...). Act on `code`; `reason` is for people and may change.
    #[error("{reason}")]
    Refused {
        /// Why, in plain words.
        reason: String,
        /// Why, for the app to act on.
        code: RefusalCode,
    },
    /// Anything else (a bug, a corrupt local store).
    #[error("internal: {reason}")]
    Internal {
        /// Details for logs.
        reason: String,
    },
}

/// Why a request was refused ([`TaplineError::Refused`]): the server's stable reason, or the
/// core's own for refusals it makes without asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum RefusalCode {
    /// This device (its `data_dir`) has an account already; use another folder for another.
    AlreadySignedIn,
    /// This person is paired already; unpair first.
    AlreadyPaired,
    /// The person who made the invite is paired already.
    InviterPaired,
    /// This is the person's own invite; their partner must accept it.
    OwnInvite,
    /// The invite or link code was used already; ask for a new one.
    CodeUsed,
    /// The invite or link code has expired; ask for a new one.
    CodeExpired,
    /// Only the partner can report a tap felt, seen or delivered.
    OwnTap,
    /// The check-in was answered already, differently (answers are final).
    AlreadyAnswered,
    /// The check-in has expired (or is closed).
    CheckinExpired,
    /// The pause has started; it runs to its end.
    PauseStarted,
    /// The couple keeps the most routines allowed.
    TooManyRoutines,
    /// This person has asked for space already; end that one first.
    SpaceAlreadyAsked,
    /// The space has ended.
    SpaceEnded,
    /// Together time is proposed or in force already; end it first.
    TogetherAlready,
    /// That together time has ended (or was withdrawn, declined or not confirmed in time).
    TogetherEnded,
    /// The deeper questions are paused; resume them first.
    QuestionsPaused,
    /// Not the current deeper question (revealed already, or not unlocked yet).
    QuestionLocked,
    /// A reconnect plan is proposed or running already; end it first.
    ReconnectAlready,
    /// That reconnect plan has ended (or was withdrawn or declined).
    ReconnectEnded,
    /// That reconnect step has not come yet.
    ReconnectStepNotYet,
    /// Nothing to keep as a moment: one's own tap or answer, a tap without a note, or an
    /// answer still hidden.
    NothingToKeep,
    /// This person may not do this.
    PermissionDenied,
    /// The server no longer knows this device (signed out from another device): queued sends
    /// are refused; `forget_account` starts over.
    SignedOut,
    /// The action needs a partner (for sends the outbox gave up on).
    NotPaired,
    /// The server found the request invalid (for sends the outbox gave up on).
    InvalidInput,
    /// What it was about no longer exists (for sends the outbox gave up on).
    NotFound,
    /// Another reason: one this core does not know (a newer server), or none given (an older
    /// server, a proxy).
    Other,
}

impl RefusalCode {
    /// The stable name: the server's `ErrorInfo.reason` (e.g. "CODE_EXPIRED"), or the core's
    /// own ("ALREADY_SIGNED_IN", "OTHER").
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::AlreadySignedIn => "ALREADY_SIGNED_IN",
            RefusalCode::AlreadyPaired => "ALREADY_PAIRED",
            RefusalCode::InviterPaired => "INVITER_PAIRED",
            RefusalCode::OwnInvite => "OWN_INVITE",
            RefusalCode::CodeUsed => "CODE_USED",
            RefusalCode::CodeExpired => "CODE_EXPIRED",
            RefusalCode::OwnTap => "OWN_TAP",
            RefusalCode::AlreadyAnswered => "ALREADY_ANSWERED",
            RefusalCode::CheckinExpired => "CHECKIN_EXPIRED",
            RefusalCode::PauseStarted => "PAUSE_STARTED",
            RefusalCode::TooManyRoutines => "TOO_MANY_ROUTINES",
            RefusalCode::SpaceAlreadyAsked => "SPACE_ALREADY_ASKED",
            RefusalCode::SpaceEnded => "SPACE_ENDED",
            RefusalCode::TogetherAlready => "TOGETHER_ALREADY",
            RefusalCode::TogetherEnded => "TOGETHER_ENDED",
            RefusalCode::QuestionsPaused => "QUESTIONS_PAUSED",
            RefusalCode::QuestionLocked => "QUESTION_LOCKED",
            RefusalCode::ReconnectAlready => "RECONNECT_ALREADY",
            RefusalCode::ReconnectEnded => "RECONNECT_ENDED",
            RefusalCode::ReconnectStepNotYet => "RECONNECT_STEP_NOT_YET",
            RefusalCode::NothingToKeep => "NOTHING_TO_KEEP",
            RefusalCode::PermissionDenied => "PERMISSION_DENIED",
            RefusalCode::SignedOut => "SIGNED_OUT",
            RefusalCode::NotPaired => "NOT_PAIRED",
            RefusalCode::InvalidInput => "INVALID_ARGUMENT",
            RefusalCode::NotFound => "NOT_FOUND",
            RefusalCode::Other => "OTHER",
        }
    }

    /// Every code.
    const ALL: [RefusalCode; 27] = [
        RefusalCode::AlreadySignedIn,
        RefusalCode::AlreadyPaired,
        RefusalCode::InviterPaired,
        RefusalCode::OwnInvite,
        RefusalCode::CodeUsed,
        RefusalCode::CodeExpired,
        RefusalCode::OwnTap,
        RefusalCode::AlreadyAnswered,
        RefusalCode::CheckinExpired,
        RefusalCode::PauseStarted,
        RefusalCode::TooManyRoutines,
        RefusalCode::SpaceAlreadyAsked,
        RefusalCode::SpaceEnded,
        RefusalCode::TogetherAlready,
        RefusalCode::TogetherEnded,
        RefusalCode::QuestionsPaused,
        RefusalCode::QuestionLocked,
        RefusalCode::ReconnectAlready,
        RefusalCode::ReconnectEnded,
        RefusalCode::ReconnectStepNotYet,
        RefusalCode::NothingToKeep,
        RefusalCode::PermissionDenied,
        RefusalCode::SignedOut,
        RefusalCode::NotPaired,
        RefusalCode::InvalidInput,
        RefusalCode::NotFound,
        RefusalCode::Other,
    ];

    /// The code of a stable name ([`RefusalCode::as_str`]); `Other` for a name this build does
    /// not know.
    pub(crate) fn from_name(name: &str) -> RefusalCode {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == name)
            .unwrap_or(RefusalCode::Other)
    }

    /// The refusal a server reason stands for, if it is one.
    fn from_reason(reason: ErrorReason) -> Option<RefusalCode> {
        Some(match reason {
            ErrorReason::AlreadyPaired => RefusalCode::AlreadyPaired,
            ErrorReason::InviterPaired => RefusalCode::InviterPaired,
            ErrorReason::OwnInvite => RefusalCode::OwnInvite,
            ErrorReason::CodeUsed => RefusalCode::CodeUsed,
            ErrorReason::CodeExpired => RefusalCode::CodeExpired,
            ErrorReason::OwnTap => RefusalCode::OwnTap,
            ErrorReason::AlreadyAnswered => RefusalCode::AlreadyAnswered,
            ErrorReason::CheckinExpired => RefusalCode::CheckinExpired,
            ErrorReason::PauseStarted => RefusalCode::PauseStarted,
            ErrorReason::TooManyRoutines => RefusalCode::TooManyRoutines,
            ErrorReason::SpaceAlreadyAsked => RefusalCode::SpaceAlreadyAsked,
            ErrorReason::SpaceEnded => RefusalCode::SpaceEnded,
            ErrorReason::TogetherAlready => RefusalCode::TogetherAlready,
            ErrorReason::TogetherEnded => RefusalCode::TogetherEnded,
            ErrorReason::QuestionsPaused => RefusalCode::QuestionsPaused,
            ErrorReason::QuestionLocked => RefusalCode::QuestionLocked,
            ErrorReason::ReconnectAlready => RefusalCode::ReconnectAlready,
            ErrorReason::ReconnectEnded => RefusalCode::ReconnectEnded,
            ErrorReason::ReconnectStepNotYet => RefusalCode::ReconnectStepNotYet,
            ErrorReason::NothingToKeep => RefusalCode::NothingToKeep,
            ErrorReason::PermissionDenied => RefusalCode::PermissionDenied,
            _ => return None,
        })
    }
}

impl TaplineError {
    /// Whether a retry later may succeed (the outbox keeps such sends queued).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TaplineError::Network { .. }
                | TaplineError::RateLimited { .. }
                | TaplineError::Internal { .. }
        )
    }

    /// For a send the outbox will not retry: why, as a code and in words. `None` for a
    /// failure a retry may cure (network, rate limit, a server error).
    pub(crate) fn final_refusal(&self) -> Option<(RefusalCode, String)> {
        let code = match self {
            TaplineError::Network { .. }
            | TaplineError::RateLimited { .. }
            | TaplineError::Internal { .. } => return None,
            TaplineError::Unauthenticated => RefusalCode::SignedOut,
            TaplineError::NotPaired => RefusalCode::NotPaired,
            TaplineError::InvalidInput { .. } => RefusalCode::InvalidInput,
            TaplineError::NotFound { .. } => RefusalCode::NotFound,
            TaplineError::Refused { code, .. } => *code,
        };
        Some((code, self.to_string()))
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for TaplineError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        TaplineError::Internal {
            reason: format!("callback failed: {}", e.reason),
        }
    }
}

/// What can go wrong inside the core.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CoreError {
    #[error("rpc: {0}")]
    Status(#[from] tonic::Status),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("local store: {0}")]
    Store(#[from] rusqlite::Error),
    #[error("decode: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Invalid(String),
    /// A refusal the core makes itself, without asking the server.
    #[error("{1}")]
    Refused(RefusalCode, String),
    /// The local store holds something this build cannot read.
    #[error("local store: {0}")]
    Corrupt(String),
    #[error("not signed in")]
    NotSignedIn,
    /// A deadline the app set passed.
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

pub(crate) type CoreResult<T> = Result<T, CoreError>;

impl CoreError {
    /// How long the server asked to wait before a retry (`RetryInfo`, or the header), if it
    /// did.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            CoreError::Status(s) => retry_after(s, &s.get_error_details()),
            _ => None,
        }
    }
}

impl From<tapline_proto::limits::Violation> for CoreError {
    fn from(v: tapline_proto::limits::Violation) -> Self {
        CoreError::Invalid(v.to_string())
    }
}

impl From<CoreError> for TaplineError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Status(s) => from_status(&s),
            CoreError::Transport(e) => TaplineError::Network {
                reason: e.to_string(),
            },
            CoreError::Invalid(reason) => TaplineError::InvalidInput { reason },
            CoreError::NotSignedIn => TaplineError::Unauthenticated,
            CoreError::Timeout(reason) => TaplineError::Network { reason },
            CoreError::Refused(code, reason) => TaplineError::Refused { reason, code },
            e @ (CoreError::Store(_)
            | CoreError::Corrupt(_)
            | CoreError::Decode(_)
            | CoreError::Io(_)
            | CoreError::Join(_)) => TaplineError::Internal {
                reason: e.to_string(),
            },
        }
    }
}

/// The Tapline reason of a status: its `ErrorInfo.reason` when the domain is Tapline's and the
/// name is one this core knows.
pub(crate) fn reason(s: &Status) -> Option<ErrorReason> {
    reason_in(&s.get_error_details())
}

fn reason_in(details: &ErrorDetails) -> Option<ErrorReason> {
    let info = details.error_info()?;
    if info.domain != ERROR_DOMAIN {
        return None;
    }
    ErrorReason::from_str_name(&format!("ERROR_REASON_{}", info.reason))
        .filter(|r| *r != ErrorReason::Unspecified)
}

/// The wait a status asks for: `RetryInfo`, else the `retry-after-ms` header.
pub(crate) fn retry_after(s: &Status, details: &ErrorDetails) -> Option<Duration> {
    details
        .retry_info()
        .and_then(|r| r.retry_delay)
        .or_else(|| {
            s.metadata()
                .get(RETRY_AFTER_MS)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis)
        })
}

/// "field: rule" for each `BadRequest` violation that names a field, or the message.
fn invalid_input(s: &Status, details: &ErrorDetails) -> TaplineError {
    let named: Vec<String> = details
        .bad_request()
        .map(|b| {
            b.field_violations
                .iter()
                .filter(|v| !v.field.is_empty())
                .map(|v| format!("{}: {}", v.field, v.description))
                .collect()
        })
        .unwrap_or_default();
    TaplineError::InvalidInput {
        reason: if named.is_empty() {
            s.message().to_owned()
        } else {
            named.join("; ")
        },
    }
}

fn rate_limited(s: &Status, details: &ErrorDetails) -> TaplineError {
    let wait = retry_after(s, details).unwrap_or(DEFAULT_RETRY);
    TaplineError::RateLimited {
        retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1),
    }
}

/// The public error of a status: by its reason, or by its code when it has none this core
/// knows.
pub(crate) fn from_status(s: &Status) -> TaplineError {
    let details = s.get_error_details();
    let text = || s.message().to_owned();
    if let Some(reason) = reason_in(&details) {
        if let Some(code) = RefusalCode::from_reason(reason) {
            return TaplineError::Refused {
                reason: text(),
                code,
            };
        }
        match reason {
            ErrorReason::InvalidArgument => return invalid_input(s, &details),
            ErrorReason::Unauthenticated | ErrorReason::DeviceSignedOut => {
                return TaplineError::Unauthenticated;
            }
            ErrorReason::NotFound => return TaplineError::NotFound { reason: text() },
            ErrorReason::NotPaired => return TaplineError::NotPaired,
            ErrorReason::RateLimited => return rate_limited(s, &details),
            ErrorReason::ShuttingDown | ErrorReason::DatabaseUnavailable => {
                return TaplineError::Network { reason: text() };
            }
            ErrorReason::Internal => return TaplineError::Internal { reason: text() },
            // A stream's own reason, or one with nothing more to say than its code.
            _ => {}
        }
    }
    match s.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            TaplineError::Network { reason: text() }
        }
        Code::Unauthenticated => TaplineError::Unauthenticated,
        Code::InvalidArgument | Code::OutOfRange => invalid_input(s, &details),
        Code::ResourceExhausted => rate_limited(s, &details),
        Code::NotFound => TaplineError::NotFound { reason: text() },
        Code::PermissionDenied => TaplineError::Refused {
            reason: text(),
            code: RefusalCode::PermissionDenied,
        },
        Code::FailedPrecondition | Code::Aborted | Code::AlreadyExists => TaplineError::Refused {
            reason: text(),
            code: RefusalCode::Other,
        },
        Code::Ok | Code::Internal | Code::Unimplemented | Code::DataLoss => {
            TaplineError::Internal { reason: text() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// A status as the server builds it: `ErrorInfo` with `reason`, plus `details`.
    fn server(code: Code, message: &str, reason: ErrorReason, mut details: ErrorDetails) -> Status {
        let name = reason.as_str_name().strip_prefix("ERROR_REASON_").unwrap();
        details.set_error_info(name, ERROR_DOMAIN, []);
        Status::with_error_details(code, message, details)
    }

    /// A status as the server builds it for a retryable failure: `RetryInfo` and the header.
    fn server_retry(code: Code, reason: ErrorReason, delay: Duration) -> Status {
        let mut s = server(
            code,
            "try again later",
            reason,
            ErrorDetails::with_retry_info(Some(delay)),
        );
        let value = delay.as_millis().to_string().parse().unwrap();
        s.metadata_mut().insert(RETRY_AFTER_MS, value);
        s
    }

    fn public(s: Status) -> TaplineError {
        CoreError::Status(s).into()
    }

    #[test]
    fn the_reason_decides_not_the_message() {
        // A message that says one thing and a reason that says another: the reason wins.
        let s = server(
            Code::FailedPrecondition,
            "not paired: pair with your partner first",
            ErrorReason::CodeExpired,
            ErrorDetails::new(),
        );
        assert_eq!(
            public(s),
            TaplineError::Refused {
                reason: "not paired: pair with your partner first".into(),
                code: RefusalCode::CodeExpired,
            }
        );
        let s = server(
            Code::FailedPrecondition,
            "Bitte zuerst koppeln",
            ErrorReason::NotPaired,
            ErrorDetails::new(),
        );
        assert_eq!(public(s), TaplineError::NotPaired);
    }

    #[test]
    fn every_known_reason_maps_to_what_an_app_can_act_on() {
        use ErrorReason as R;
        use TaplineError as T;
        let refused = |code| T::Refused {
            reason: "refused".into(),
            code,
        };
        let net = T::Network {
            reason: "refused".into(),
        };
        let table = [
            (
                R::InvalidArgument,
                Code::InvalidArgument,
                T::InvalidInput {
                    reason: "refused".into(),
                },
            ),
            (
                R::Unauthenticated,
                Code::Unauthenticated,
                T::Unauthenticated,
            ),
            (
                R::DeviceSignedOut,
                Code::Unauthenticated,
                T::Unauthenticated,
            ),
            (
                R::NotFound,
                Code::NotFound,
                T::NotFound {
                    reason: "refused".into(),
                },
            ),
            (
                R::PermissionDenied,
                Code::PermissionDenied,
                refused(RefusalCode::PermissionDenied),
            ),
            (R::NotPaired, Code::FailedPrecondition, T::NotPaired),
            (
                R::AlreadyPaired,
                Code::FailedPrecondition,
                refused(RefusalCode::AlreadyPaired),
            ),
            (
                R::InviterPaired,
                Code::FailedPrecondition,
                refused(RefusalCode::InviterPaired),
            ),
            (
                R::OwnInvite,
                Code::FailedPrecondition,
                refused(RefusalCode::OwnInvite),
            ),
            (
                R::CodeUsed,
                Code::FailedPrecondition,
                refused(RefusalCode::CodeUsed),
            ),
            (
                R::CodeExpired,
                Code::FailedPrecondition,
                refused(RefusalCode::CodeExpired),
            ),
            (
                R::OwnTap,
                Code::FailedPrecondition,
                refused(RefusalCode::OwnTap),
            ),
            (
                R::AlreadyAnswered,
                Code::FailedPrecondition,
                refused(RefusalCode::AlreadyAnswered),
            ),
            (
                R::CheckinExpired,
                Code::FailedPrecondition,
                refused(RefusalCode::CheckinExpired),
            ),
            (
                R::PauseStarted,
                Code::FailedPrecondition,
                refused(RefusalCode::PauseStarted),
            ),
            (
                R::TooManyRoutines,
                Code::FailedPrecondition,
                refused(RefusalCode::TooManyRoutines),
            ),
            (
                R::SpaceAlreadyAsked,
                Code::FailedPrecondition,
                refused(RefusalCode::SpaceAlreadyAsked),
            ),
            (
                R::SpaceEnded,
                Code::FailedPrecondition,
                refused(RefusalCode::SpaceEnded),
            ),
            (
                R::TogetherAlready,
                Code::FailedPrecondition,
                refused(RefusalCode::TogetherAlready),
            ),
            (
                R::TogetherEnded,
                Code::FailedPrecondition,
                refused(RefusalCode::TogetherEnded),
            ),
            (
                R::QuestionsPaused,
                Code::FailedPrecondition,
                refused(RefusalCode::QuestionsPaused),
            ),
            (
                R::QuestionLocked,
                Code::FailedPrecondition,
                refused(RefusalCode::QuestionLocked),
            ),
            (
                R::ReconnectAlready,
                Code::FailedPrecondition,
                refused(RefusalCode::ReconnectAlready),
            ),
            (
                R::ReconnectEnded,
                Code::FailedPrecondition,
                refused(RefusalCode::ReconnectEnded),
            ),
            (
                R::ReconnectStepNotYet,
                Code::FailedPrecondition,
                refused(RefusalCode::ReconnectStepNotYet),
            ),
            (
                R::NothingToKeep,
                Code::FailedPrecondition,
                refused(RefusalCode::NothingToKeep),
            ),
            (
                R::RateLimited,
                Code::ResourceExhausted,
                T::RateLimited {
                    retry_after_ms: 1000,
                },
            ),
            (R::ShuttingDown, Code::Unavailable, net.clone()),
            (R::DatabaseUnavailable, Code::Unavailable, net),
            (
                R::StreamReplaced,
                Code::Aborted,
                refused(RefusalCode::Other),
            ),
            (
                R::Internal,
                Code::Internal,
                T::Internal {
                    reason: "refused".into(),
                },
            ),
        ];
        for (reason, code, expected) in &table {
            let s = server(*code, "refused", *reason, ErrorDetails::new());
            assert_eq!(public(s), *expected, "{reason:?}");
        }
        // A reason added to the contract must be given its meaning here.
        let known = (0..1000)
            .filter_map(|n| ErrorReason::try_from(n).ok())
            .filter(|r| *r != R::Unspecified)
            .count();
        assert_eq!(known, table.len(), "every ErrorReason is in the table");
        // Refusal names are the server's reason names.
        for (reason, _, expected) in &table {
            if let T::Refused { code, .. } = expected
                && *code != RefusalCode::Other
            {
                assert_eq!(
                    format!("ERROR_REASON_{}", code.as_str()),
                    reason.as_str_name()
                );
            }
        }
    }

    #[test]
    fn invalid_input_names_the_field_from_bad_request() {
        let s = server(
            Code::InvalidArgument,
            "note: must be at most 80 characters",
            ErrorReason::InvalidArgument,
            ErrorDetails::with_bad_request_violation("note", "must be at most 80 characters"),
        );
        let e = public(s);
        assert_eq!(
            e,
            TaplineError::InvalidInput {
                reason: "note: must be at most 80 characters".into()
            }
        );
        assert!(!e.is_transient());

        // The field comes from the details, whatever the message says.
        let mut details = ErrorDetails::new();
        details
            .add_bad_request_violation("from_date", "must be YYYY-MM-DD")
            .add_bad_request_violation("to_date", "must not be before from_date");
        let s = server(
            Code::InvalidArgument,
            "bad dates",
            ErrorReason::InvalidArgument,
            details,
        );
        assert_eq!(
            public(s),
            TaplineError::InvalidInput {
                reason: "from_date: must be YYYY-MM-DD; to_date: must not be before from_date"
                    .into()
            }
        );

        // A request the server could not decode, answered by the shared codec.
        let name = [0x53, 0x61, 0x6d, 0xff, 0xfe];
        let mut device = vec![0x1a, name.len() as u8];
        device.extend(name);
        let mut req = vec![0x1a, device.len() as u8];
        req.extend(&device);
        let err = tapline_proto::v1::CreateAccountRequest::decode(req.as_slice()).unwrap_err();
        assert_eq!(
            public(tapline_proto::codec::undecodable(&err)),
            TaplineError::InvalidInput {
                reason: "device.name: must be valid UTF-8".into()
            }
        );
        // No field to name: the message says what happened.
        let err = tapline_proto::v1::SendTapRequest::decode(&[0x22, 0x10, 0x41][..]).unwrap_err();
        let s = tapline_proto::codec::undecodable(&err);
        let message = s.message().to_owned();
        assert_eq!(public(s), TaplineError::InvalidInput { reason: message });
    }

    #[test]
    fn limits_and_outages_carry_their_retry_delay() {
        let s = server_retry(
            Code::ResourceExhausted,
            ErrorReason::RateLimited,
            Duration::from_millis(1500),
        );
        assert_eq!(
            public(s),
            TaplineError::RateLimited {
                retry_after_ms: 1500
            }
        );
        // RetryInfo wins over the header.
        let mut s = server(
            Code::ResourceExhausted,
            "too many taps",
            ErrorReason::RateLimited,
            ErrorDetails::with_retry_info(Some(Duration::from_millis(2500))),
        );
        s.metadata_mut()
            .insert(RETRY_AFTER_MS, "10".parse().unwrap());
        assert_eq!(
            public(s),
            TaplineError::RateLimited {
                retry_after_ms: 2500
            }
        );
        // No RetryInfo: the header, then a second.
        let mut s = server(
            Code::ResourceExhausted,
            "too many taps",
            ErrorReason::RateLimited,
            ErrorDetails::new(),
        );
        s.metadata_mut()
            .insert(RETRY_AFTER_MS, "700".parse().unwrap());
        assert_eq!(
            public(s),
            TaplineError::RateLimited {
                retry_after_ms: 700
            }
        );

        for reason in [ErrorReason::DatabaseUnavailable, ErrorReason::ShuttingDown] {
            let s = server_retry(Code::Unavailable, reason, Duration::from_secs(1));
            let core = CoreError::Status(s);
            assert_eq!(core.retry_after(), Some(Duration::from_secs(1)));
            let e = TaplineError::from(core);
            assert!(matches!(e, TaplineError::Network { .. }), "{e:?}");
            assert!(e.is_transient());
        }
        assert_eq!(CoreError::NotSignedIn.retry_after(), None);
    }

    #[test]
    fn a_status_without_details_maps_by_its_code() {
        // An older server or a proxy: no ErrorInfo. The text is never read for meaning.
        let e = public(Status::failed_precondition("not paired: pair first"));
        assert_eq!(
            e,
            TaplineError::Refused {
                reason: "not paired: pair first".into(),
                code: RefusalCode::Other,
            }
        );
        assert!(public(Status::unavailable("down")).is_transient());
        assert!(matches!(
            public(Status::deadline_exceeded("slow")),
            TaplineError::Network { .. }
        ));
        assert_eq!(
            public(Status::invalid_argument("note: too long")),
            TaplineError::InvalidInput {
                reason: "note: too long".into()
            }
        );
        assert_eq!(
            public(Status::resource_exhausted("slow down")),
            TaplineError::RateLimited {
                retry_after_ms: 1000
            }
        );
        let mut limited = Status::resource_exhausted("slow down");
        limited
            .metadata_mut()
            .insert(RETRY_AFTER_MS, "1500".parse().unwrap());
        assert_eq!(
            public(limited),
            TaplineError::RateLimited {
                retry_after_ms: 1500
            }
        );
        assert_eq!(
            public(Status::unauthenticated("who?")),
            TaplineError::Unauthenticated
        );
        assert!(matches!(
            public(Status::not_found("tap not found")),
            TaplineError::NotFound { .. }
        ));
        assert!(matches!(
            public(Status::permission_denied("no")),
            TaplineError::Refused {
                code: RefusalCode::PermissionDenied,
                ..
            }
        ));
        assert!(matches!(
            public(Status::internal("bug")),
            TaplineError::Internal { .. }
        ));
        assert_eq!(
            CoreError::Status(Status::unavailable("down")).retry_after(),
            None
        );
    }

    #[test]
    fn foreign_or_unknown_reasons_fall_back_to_the_code() {
        // Another domain's ErrorInfo (a gateway) is not ours to read.
        let mut details = ErrorDetails::new();
        details.set_error_info("NOT_PAIRED", "googleapis.com", []);
        let s = Status::with_error_details(Code::FailedPrecondition, "nope", details);
        assert!(matches!(
            public(s),
            TaplineError::Refused {
                code: RefusalCode::Other,
                ..
            }
        ));
        // A reason from a newer server.
        let mut details = ErrorDetails::with_retry_info(Some(Duration::from_millis(300)));
        details.set_error_info("SOMETHING_NEW", ERROR_DOMAIN, []);
        let s = Status::with_error_details(Code::Unavailable, "later", details.clone());
        assert!(matches!(public(s), TaplineError::Network { .. }));
        let s = Status::with_error_details(Code::ResourceExhausted, "later", details);
        assert_eq!(
            public(s),
            TaplineError::RateLimited {
                retry_after_ms: 300
            }
        );
        // Details that do not decode are no details.
        let s = Status::with_details(
            Code::FailedPrecondition,
            "garbled",
            bytes::Bytes::from_static(b"\xff\xff\xff"),
        );
        assert!(matches!(
            public(s),
            TaplineError::Refused {
                code: RefusalCode::Other,
                ..
            }
        ));
    }
}
