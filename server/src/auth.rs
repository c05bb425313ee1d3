//! Bearer-token authentication: the token in `authorization` becomes the caller's identity.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::{AnyPool, Row};
use tonic::Request;

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

/// How long a resolved token is trusted without asking the database again. Signing a device
/// out forgets its tokens at once on this instance and, through the cluster doorbell, on the
/// others; this bound only matters if that notification is lost.
pub const TOKEN_TTL: Duration = Duration::from_secs(10);
/// Most tokens remembered; past it the cache starts over.
const MAX_TOKENS: usize = 200_000;

/// Recently resolved tokens (by their SHA-256), so a request costs no database round trip to
/// authenticate. Only active devices are remembered; failures never are.
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<Vec<u8>, (Caller, Instant)>>,
}

impl TokenCache {
    fn get(&self, hash: &[u8], now: Instant) -> Option<Caller> {
        let tokens = self.lock();
        let (caller, at) = tokens.get(hash)?;
        (now.duration_since(*at) < TOKEN_TTL).then(|| caller.clone())
    }

    fn put(&self, hash: Vec<u8>, caller: Caller, now: Instant) {
        let mut tokens = self.lock();
        if tokens.len() >= MAX_TOKENS {
            tokens.clear();
        }
        tokens.insert(hash, (caller, now));
    }

    /// Forgets every token of a signed-out device.
    pub fn forget_device(&self, device_id: &str) {
        self.lock().retain(|_, (c, _)| c.device_id != device_id);
    }

    /// Forgets everything (after a lost cross-instance notification).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, (Caller, Instant)>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Resolves the request's token to an active device (through `tokens`, else the pool), or
/// fails with `Unauthenticated`.
pub async fn authenticate<T>(
    pool: &AnyPool,
    tokens: &TokenCache,
    req: &Request<T>,
) -> Result<Caller> {
    let token = bearer_token(req).ok_or(Error::Unauthenticated)?;
    let hash = hash_secret(token);
    let now = Instant::now();
    if let Some(caller) = tokens.get(&hash, now) {
        return Ok(caller);
    }
    let row = sqlx::query(
        "SELECT id, account_id FROM devices WHERE token_hash = $1 AND revoked_at_us IS NULL",
    )
    .bind(&hash)
    .fetch_optional(pool)
    .await?
    .ok_or(Error::Unauthenticated)?;
    let caller = Caller {
        device_id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
    };
    tokens.put(hash, caller.clone(), now);
    Ok(caller)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(device: &str) -> Caller {
        Caller {
            account_id: "a".into(),
            device_id: device.into(),
        }
    }

    #[test]
    fn tokens_are_remembered_until_forgotten_or_stale() {
        let cache = TokenCache::default();
        let t0 = Instant::now();
        cache.put(vec![1], caller("d1"), t0);
        cache.put(vec![2], caller("d2"), t0);
        assert_eq!(cache.get(&[1], t0), Some(caller("d1")));
        assert_eq!(cache.get(&[1], t0 + TOKEN_TTL), None, "stale after the TTL");
        cache.forget_device("d2");
        assert_eq!(
            cache.get(&[2], t0),
            None,
            "a signed-out device is forgotten"
        );
        assert_eq!(cache.get(&[1], t0), Some(caller("d1")));
        cache.clear();
        assert_eq!(cache.get(&[1], t0), None);
    }
}
