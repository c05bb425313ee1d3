//! Bearer-token authentication: the token in `authorization` becomes the caller's identity.

use sqlx::Row;
use tonic::Request;

use crate::AppState;
use crate::domain::codes::hash_secret;
use crate::error::{Error, Result};

/// Who is calling: an active device of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's account.
    pub account_id: String,
    /// The device whose token was presented.
    pub device_id: String,
}

/// Longest token accepted (ours are 68 characters).
const MAX_TOKEN_LEN: usize = 128;

/// The bearer token of a request, if it has a well-formed one.
pub fn bearer_token<T>(req: &Request<T>) -> Option<&str> {
    let value = req.metadata().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= MAX_TOKEN_LEN)
        .then_some(token)
}

/// Resolves the request's token to an active device, or fails with `Unauthenticated`.
pub async fn authenticate<T>(state: &AppState, req: &Request<T>) -> Result<Caller> {
    let token = bearer_token(req).ok_or(Error::Unauthenticated)?;
    let row = sqlx::query(
        "SELECT id, account_id FROM devices WHERE token_hash = $1 AND revoked_at_us IS NULL",
    )
    .bind(hash_secret(token))
    .fetch_optional(state.db.pool())
    .await?
    .ok_or(Error::Unauthenticated)?;
    Ok(Caller {
        device_id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
    })
}
