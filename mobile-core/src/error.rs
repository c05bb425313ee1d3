//! Errors: a rich internal [`CoreError`] and the small public [`TaplineError`] the apps see.

use tonic::Code;

/// The error every exported method returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum TaplineError {
    /// The server could not be reached (offline, server down, timeout).
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
    /// The server refused in this state (expired or used code, already paired, ...).
    #[error("{reason}")]
    Refused {
        /// Why, in plain words.
        reason: String,
    },
    /// Anything else (a bug, a corrupt local store).
    #[error("internal: {reason}")]
    Internal {
        /// Details for logs.
        reason: String,
    },
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
    #[error("not signed in")]
    NotSignedIn,
    #[error("task: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Public(TaplineError),
}

pub(crate) type CoreResult<T> = Result<T, CoreError>;

impl From<TaplineError> for CoreError {
    fn from(e: TaplineError) -> Self {
        CoreError::Public(e)
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
            CoreError::Public(e) => e,
            e @ (CoreError::Store(_)
            | CoreError::Decode(_)
            | CoreError::Io(_)
            | CoreError::Join(_)) => TaplineError::Internal {
                reason: e.to_string(),
            },
        }
    }
}

fn from_status(s: &tonic::Status) -> TaplineError {
    let reason = s.message().to_owned();
    match s.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            TaplineError::Network { reason }
        }
        Code::Unauthenticated => TaplineError::Unauthenticated,
        Code::InvalidArgument | Code::OutOfRange => TaplineError::InvalidInput { reason },
        Code::ResourceExhausted => TaplineError::RateLimited {
            retry_after_ms: s
                .metadata()
                .get("retry-after-ms")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000),
        },
        Code::NotFound => TaplineError::NotFound { reason },
        Code::FailedPrecondition if reason.starts_with("not paired") => TaplineError::NotPaired,
        Code::FailedPrecondition | Code::PermissionDenied | Code::Aborted | Code::AlreadyExists => {
            TaplineError::Refused { reason }
        }
        Code::Ok | Code::Internal | Code::Unimplemented | Code::DataLoss => {
            TaplineError::Internal { reason }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_what_an_app_can_act_on() {
        let e: TaplineError =
            CoreError::Status(tonic::Status::failed_precondition("not paired: pair first")).into();
        assert_eq!(e, TaplineError::NotPaired);
        let mut limited = tonic::Status::resource_exhausted("too many taps");
        limited
            .metadata_mut()
            .insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(
            TaplineError::from(CoreError::Status(limited)),
            TaplineError::RateLimited {
                retry_after_ms: 1500
            }
        );
        let e: TaplineError = CoreError::Status(tonic::Status::unavailable("down")).into();
        assert!(e.is_transient());
        let e: TaplineError =
            CoreError::Status(tonic::Status::invalid_argument("note: too long")).into();
        assert_eq!(
            e,
            TaplineError::InvalidInput {
                reason: "note: too long".into()
            }
        );
        assert!(!e.is_transient());
    }
}
