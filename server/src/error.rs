//! The server's one error type and its mapping to gRPC statuses.
//!
//! Database and internal details are logged here and never sent to clients.

use std::time::Duration;

use tonic::{Code, Status};

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
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(&'static str),
    /// The request is valid but the state does not allow it (e.g. not paired).
    #[error("{0}")]
    FailedPrecondition(&'static str),
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
    /// A database failure (logged, never sent).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A failure on the group commit's own SQLite handle (logged, never sent).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A migration failure at start-up.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The group commit this request was part of failed; the cause was logged once for the
    /// whole batch. Nothing of the batch was stored, so a retry is safe.
    #[error("the group commit failed")]
    CommitFailed,
    /// A stored value could not be read back (logged, never sent).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// Start-up or I/O failure.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The gRPC transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An `InvalidArgument` for `field` breaking `rule`.
    pub fn invalid(field: &'static str, rule: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field,
            rule: rule.into(),
        }
    }
}

/// Header carrying the retry delay of a `RESOURCE_EXHAUSTED` answer, in milliseconds.
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        match err {
            Error::InvalidArgument { .. } => Status::invalid_argument(err.to_string()),
            Error::Unauthenticated => Status::unauthenticated(err.to_string()),
            Error::NotFound(_) => Status::not_found(err.to_string()),
            Error::PermissionDenied(_) => Status::permission_denied(err.to_string()),
            Error::FailedPrecondition(_) => Status::failed_precondition(err.to_string()),
            Error::RateLimited { retry_after, .. } => {
                let mut status = Status::resource_exhausted(err.to_string());
                let millis = retry_after.as_millis().max(1).to_string();
                if let Ok(value) = millis.parse() {
                    status.metadata_mut().insert(RETRY_AFTER_MS, value);
                }
                status
            }
            Error::ShuttingDown => Status::unavailable(err.to_string()),
            Error::Database(_)
            | Error::Sqlite(_)
            | Error::Migrate(_)
            | Error::Corrupt(_)
            | Error::CommitFailed
            | Error::Io(_)
            | Error::Transport(_) => {
                tracing::error!(error = %err, "request failed");
                Status::new(Code::Internal, "internal error")
            }
        }
    }
}
