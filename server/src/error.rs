//! The server's one error type and its mapping to gRPC statuses.
//!
//! Every status carries standard details (tonic-types): `ErrorInfo` with a stable reason from
//! `tapline.v1.ErrorReason`, `BadRequest` for invalid fields, `RetryInfo` for limits and
//! outages. Database and internal details are logged here and never sent to clients.

use std::time::Duration;

use tapline_proto::codec::ERROR_DOMAIN;
use tapline_proto::v1::ErrorReason;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field broke a rule; the message names both.
    #[error("{field}: {rule}")]
    InvalidArgument {
        /// The request field, as named in the proto.
        field: &'static str,
        /// The rule it broke, in plain words.
        rule: String,
    },
    /// No valid bearer token.
    #[error("missing, malformed or revoked bearer token")]
    Unauthenticated,
    /// The thing does not exist, or is not the caller's to see.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is valid but the state does not allow it (e.g. not paired).
    #[error("{}", .0.message())]
    Refused(Refusal),
    /// Too many requests; the client may retry after the delay.
    #[error("{what}: try again in {} ms", retry_after.as_millis())]
    RateLimited {
        /// What was limited, in plain words.
        what: &'static str,
        /// How long until a retry can succeed.
        retry_after: Duration,
    },
    /// The server is draining.
    #[error("server is shutting down; reconnect")]
    ShuttingDown,
    /// The database cannot commit now (unreachable, full, read-only); the cause was logged.
    /// Nothing of the request was stored, so a retry is safe.
    #[error("the database is unavailable; nothing was stored, retry shortly")]
    Unavailable,
    /// A database failure (logged, never sent).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A failure on the group commit's own SQLite handle (logged, never sent).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A migration failure at start-up.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The group commit this request was part of failed for a reason other than an outage
    /// (logged once for the whole batch). Nothing of the batch was stored.
    #[error("the group commit failed")]
    CommitFailed,
    /// A stored value could not be read back (logged, never sent).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A setting that cannot work (a bad key file, a bad URL), found at start-up.
    #[error("configuration: {0}")]
    Config(String),
    /// Start-up or I/O failure.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The gRPC transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Why a valid request is refused in the current state (`FAILED_PRECONDITION`), each with its
/// stable reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The action needs a partner.
    NotPaired,
    /// The caller is paired already.
    AlreadyPaired,
    /// The inviter is paired already.
    InviterPaired,
    /// The caller redeemed their own invite.
    OwnInvite,
    /// The code was used already.
    CodeUsed,
    /// The code has expired.
    CodeExpired,
    /// Only the partner can report a tap.
    OwnTap,
    /// The check-in was answered differently already.
    AlreadyAnswered,
    /// The check-in has expired.
    CheckinExpired,
    /// The pause has started.
    PauseStarted,
    /// The couple has the most routines allowed.
    TooManyRoutines,
    /// The caller has a space in force already.
    SpaceAlreadyAsked,
    /// The space has ended.
    SpaceEnded,
    /// Together time is proposed or in force already.
    TogetherAlready,
    /// That together time has ended (or lapsed, or was withdrawn or declined).
    TogetherEnded,
    /// The deeper questions are paused.
    QuestionsPaused,
    /// Not the current question.
    QuestionLocked,
    /// A reconnect plan is proposed or running already.
    ReconnectAlready,
    /// That reconnect plan has ended (or finished, or was withdrawn or declined).
    ReconnectEnded,
    /// That step of the reconnect plan has not come yet.
    ReconnectStepNotYet,
    /// Nothing there to keep as a moment.
    NothingToKeep,
}

impl Refusal {
    /// The stable reason clients read.
    pub fn reason(self) -> ErrorReason {
        match self {
            Refusal::NotPaired => ErrorReason::NotPaired,
            Refusal::AlreadyPaired => ErrorReason::AlreadyPaired,
            Refusal::InviterPaired => ErrorReason::InviterPaired,
            Refusal::OwnInvite => ErrorReason::OwnInvite,
            Refusal::CodeUsed => ErrorReason::CodeUsed,
            Refusal::CodeExpired => ErrorReason::CodeExpired,
            Refusal::OwnTap => ErrorReason::OwnTap,
            Refusal::AlreadyAnswered => ErrorReason::AlreadyAnswered,
            Refusal::CheckinExpired => ErrorReason::CheckinExpired,
            Refusal::PauseStarted => ErrorReason::PauseStarted,
            Refusal::TooManyRoutines => ErrorReason::TooManyRoutines,
            Refusal::SpaceAlreadyAsked => ErrorReason::SpaceAlreadyAsked,
            Refusal::SpaceEnded => ErrorReason::SpaceEnded,
            Refusal::TogetherAlready => ErrorReason::TogetherAlready,
            Refusal::TogetherEnded => ErrorReason::TogetherEnded,
            Refusal::QuestionsPaused => ErrorReason::QuestionsPaused,
            Refusal::QuestionLocked => ErrorReason::QuestionLocked,
            Refusal::ReconnectAlready => ErrorReason::ReconnectAlready,
            Refusal::ReconnectEnded => ErrorReason::ReconnectEnded,
            Refusal::ReconnectStepNotYet => ErrorReason::ReconnectStepNotYet,
            Refusal::NothingToKeep => ErrorReason::NothingToKeep,
        }
    }

    /// The human message.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::NotPaired => "not paired: pair with your partner first",
            Refusal::AlreadyPaired => "you are already paired; unpair first",
            Refusal::InviterPaired => "the person who invited you is already paired",
            Refusal::OwnInvite => "this is your own invite; send it to your partner",
            Refusal::CodeUsed => "this code was already used; ask for a new one",
            Refusal::CodeExpired => "this code has expired; ask for a new one",
            Refusal::OwnTap => "you sent this tap; only your partner can report it",
            Refusal::AlreadyAnswered => "you already answered this differently (answers are final)",
            Refusal::CheckinExpired => "this check-in has expired",
            Refusal::PauseStarted => "this pause has started; it runs to its end",
            Refusal::TooManyRoutines => "a couple can keep at most 50 routines",
            Refusal::SpaceAlreadyAsked => "you have asked for space already; end it first",
            Refusal::SpaceEnded => "this space has ended",
            Refusal::TogetherAlready => "together time is proposed or in force already",
            Refusal::TogetherEnded => "this together time has ended",
            Refusal::QuestionsPaused => "the questions are paused; resume them first",
            Refusal::QuestionLocked => "that is not the current question",
            Refusal::ReconnectAlready => "a reconnect plan is proposed or running already",
            Refusal::ReconnectEnded => "this reconnect plan has ended",
            Refusal::ReconnectStepNotYet => "that step has not come yet",
            Refusal::NothingToKeep => {
                "only your partner's note or visible answer can be kept as a moment"
            }
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Header carrying the retry delay of a `RESOURCE_EXHAUSTED` answer, in milliseconds (the same
/// as `RetryInfo`, for clients that read no details).
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

/// How long a client should wait before retrying after an outage.
pub const OUTAGE_RETRY: Duration = Duration::from_secs(1);

impl Error {
    /// An `InvalidArgument` for `field` breaking `rule`.
    pub fn invalid(field: &'static str, rule: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field,
            rule: rule.into(),
        }
    }

    /// Whether this failure means the database cannot commit now (unreachable, terminated
    /// backend, full disk, read-only file, locked) rather than a bug: the request may be
    /// retried, and health reports NOT_SERVING until a commit succeeds again.
    pub fn is_outage(&self) -> bool {
        match self {
            Error::Unavailable => true,
            Error::Database(e) => sqlx_outage(e),
            Error::Sqlite(e) => rusqlite_outage(e),
            Error::Io(_) => true,
            _ => false,
        }
    }

    /// Whether this failure is a wrong guess at an invite or link code (unknown, malformed,
    /// used, expired, refused): such attempts count against the code-guessing limit, while
    /// failures on the server's side do not.
    pub fn is_failed_guess(&self) -> bool {
        match self {
            Error::InvalidArgument { .. } | Error::NotFound(_) | Error::Refused(_) => true,
            Error::Unauthenticated
            | Error::RateLimited { .. }
            | Error::ShuttingDown
            | Error::Unavailable
            | Error::Database(_)
            | Error::Sqlite(_)
            | Error::Migrate(_)
            | Error::CommitFailed
            | Error::Corrupt(_)
            | Error::Config(_)
            | Error::Io(_)
            | Error::Transport(_) => false,
        }
    }

    /// This error as an outage ([`Error::Unavailable`]) when it is one; itself otherwise.
    pub fn classify(self) -> Error {
        if self.is_outage() && !matches!(self, Error::Unavailable) {
            tracing::warn!(error = %self, "database unavailable");
            Error::Unavailable
        } else {
            self
        }
    }
}

/// SQLite primary result codes that mean "cannot write now", not "bad statement".
fn sqlite_code_is_outage(primary: i32) -> bool {
    use rusqlite::ffi;
    matches!(
        primary,
        ffi::SQLITE_BUSY
            | ffi::SQLITE_LOCKED
            | ffi::SQLITE_NOMEM
            | ffi::SQLITE_READONLY
            | ffi::SQLITE_IOERR
            | ffi::SQLITE_FULL
            | ffi::SQLITE_CANTOPEN
            | ffi::SQLITE_PROTOCOL
    )
}

fn rusqlite_outage(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => sqlite_code_is_outage(f.extended_code & 0xff),
        _ => false,
    }
}

fn sqlx_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            if let Some(e) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                // SQLite: its (extended) result code.
                let code = sqlx::error::DatabaseError::code(e)
                    .and_then(|c| c.parse::<i32>().ok())
                    .unwrap_or(0);
                return sqlite_code_is_outage(code & 0xff);
            }
            // PostgreSQL SQLSTATE: connection exceptions (08), insufficient resources such
            // as a full disk (53), operator intervention such as a terminated backend (57),
            // system errors (58), a deadlock or serialization failure (40) that a retry
            // resolves, a read-only transaction (25006).
            let code = db.code().unwrap_or_default();
            matches!(code.get(..2), Some("08" | "53" | "57" | "58" | "40")) || code == "25006"
        }
        _ => false,
    }
}

/// The `ErrorInfo.reason` text of `reason` (its proto name without the prefix).
pub fn reason_name(reason: ErrorReason) -> &'static str {
    reason
        .as_str_name()
        .strip_prefix("ERROR_REASON_")
        .unwrap_or("UNSPECIFIED")
}

/// A status with `ErrorInfo` (reason, domain, metadata) and whatever else `details` holds.
pub fn status(
    code: Code,
    message: impl Into<String>,
    reason: ErrorReason,
    metadata: &[(&str, &str)],
    mut details: ErrorDetails,
) -> Status {
    details.set_error_info(
        reason_name(reason),
        ERROR_DOMAIN,
        metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<std::collections::HashMap<_, _>>(),
    );
    Status::with_error_details(code, message, details)
}

/// A status that tells the client to retry after `delay` (`RetryInfo` and the header).
fn retry_status(code: Code, message: String, reason: ErrorReason, delay: Duration) -> Status {
    let delay = delay.max(Duration::from_millis(1));
    let mut s = status(
        code,
        message,
        reason,
        &[],
        ErrorDetails::with_retry_info(Some(delay)),
    );
    if let Ok(value) = delay.as_millis().to_string().parse() {
        s.metadata_mut().insert(RETRY_AFTER_MS, value);
    }
    s
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        let message = err.to_string();
        match err {
            Error::InvalidArgument { field, ref rule } => status(
                Code::InvalidArgument,
                message.clone(),
                ErrorReason::InvalidArgument,
                &[],
                ErrorDetails::with_bad_request_violation(field, rule.clone()),
            ),
            Error::Unauthenticated => status(
                Code::Unauthenticated,
                message,
                ErrorReason::Unauthenticated,
                &[],
                ErrorDetails::new(),
            ),
            Error::NotFound(what) => status(
                Code::NotFound,
                message,
                ErrorReason::NotFound,
                &[("resource", what)],
                ErrorDetails::new(),
            ),
            Error::Refused(r) => status(
                Code::FailedPrecondition,
                message,
                r.reason(),
                &[],
                ErrorDetails::new(),
            ),
            Error::RateLimited { retry_after, .. } => retry_status(
                Code::ResourceExhausted,
                message,
                ErrorReason::RateLimited,
                retry_after,
            ),
            Error::ShuttingDown => retry_status(
                Code::Unavailable,
                message,
                ErrorReason::ShuttingDown,
                OUTAGE_RETRY,
            ),
            Error::Unavailable => retry_status(
                Code::Unavailable,
                message,
                ErrorReason::DatabaseUnavailable,
                OUTAGE_RETRY,
            ),
            Error::Database(_) | Error::Sqlite(_) | Error::Io(_) if err.is_outage() => {
                tracing::warn!(error = %err, "request failed: database unavailable");
                Error::Unavailable.into()
            }
            Error::Database(_)
            | Error::Sqlite(_)
            | Error::Migrate(_)
            | Error::Corrupt(_)
            | Error::Config(_)
            | Error::CommitFailed
            | Error::Io(_)
            | Error::Transport(_) => {
                tracing::error!(error = %err, "request failed");
                status(
                    Code::Internal,
                    "internal error",
                    ErrorReason::Internal,
                    &[],
                    ErrorDetails::new(),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(s: &Status) -> (String, String) {
        let d = s.get_error_details();
        let i = d.error_info().expect("every status has ErrorInfo");
        (i.reason.clone(), i.domain.clone())
    }

    #[test]
    fn every_status_carries_a_stable_reason() {
        let s: Status = Error::invalid("note", "must be at most 80 characters").into();
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(info(&s), ("INVALID_ARGUMENT".into(), ERROR_DOMAIN.into()));
        let details = s.get_error_details();
        let v = &details.bad_request().unwrap().field_violations[0];
        assert_eq!(
            (v.field.as_str(), v.description.as_str()),
            ("note", "must be at most 80 characters")
        );

        let s: Status = Error::Refused(Refusal::NotPaired).into();
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(info(&s).0, "NOT_PAIRED");

        let s: Status = Error::NotFound("tap").into();
        let d = s.get_error_details();
        assert_eq!(d.error_info().unwrap().metadata["resource"], "tap");

        let s: Status = Error::RateLimited {
            what: "too many taps",
            retry_after: Duration::from_millis(1500),
        }
        .into();
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(info(&s).0, "RATE_LIMITED");
        assert_eq!(
            s.get_error_details().retry_info().unwrap().retry_delay,
            Some(Duration::from_millis(1500))
        );
        assert_eq!(s.metadata().get(RETRY_AFTER_MS).unwrap(), "1500");

        let s: Status = Error::Corrupt("secret detail".into()).into();
        assert_eq!(s.code(), Code::Internal);
        assert_eq!(s.message(), "internal error");
        assert_eq!(info(&s).0, "INTERNAL");
    }

    #[test]
    fn outages_are_unavailable_with_a_retry_delay() {
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            Some("database or disk is full".into()),
        );
        let e = Error::from(full);
        assert!(e.is_outage());
        let s: Status = e.into();
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(info(&s).0, "DATABASE_UNAVAILABLE");
        assert!(s.get_error_details().retry_info().is_some());
        assert!(!s.message().contains("disk"), "details stay in the log");

        assert!(Error::Database(sqlx::Error::PoolTimedOut).is_outage());
        let constraint = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
            None,
        );
        assert!(
            !Error::from(constraint).is_outage(),
            "a bug is not an outage"
        );
    }

    #[test]
    fn every_refusal_has_its_own_reason() {
        let all = [
            Refusal::NotPaired,
            Refusal::AlreadyPaired,
            Refusal::InviterPaired,
            Refusal::OwnInvite,
            Refusal::CodeUsed,
            Refusal::CodeExpired,
            Refusal::OwnTap,
            Refusal::AlreadyAnswered,
            Refusal::CheckinExpired,
            Refusal::PauseStarted,
            Refusal::TooManyRoutines,
            Refusal::SpaceAlreadyAsked,
            Refusal::SpaceEnded,
            Refusal::TogetherAlready,
            Refusal::TogetherEnded,
            Refusal::QuestionsPaused,
            Refusal::QuestionLocked,
            Refusal::ReconnectAlready,
            Refusal::ReconnectEnded,
            Refusal::ReconnectStepNotYet,
            Refusal::NothingToKeep,
        ];
        let mut names: Vec<&str> = all.iter().map(|r| reason_name(r.reason())).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }
}
