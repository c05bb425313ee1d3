//! Secrets handed to clients: bearer tokens and short human codes (invites, device links).
//! Only their SHA-256 hashes are stored.

use sha2::{Digest, Sha256};

/// Crockford base32 alphabet (no I, L, O, U).
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Length of invite and link codes.
pub const CODE_LEN: usize = 8;

/// Prefix that makes a Tapline token recognisable in logs and secret scanners.
const TOKEN_PREFIX: &str = "tpl_";

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS random source failing is not recoverable.
    getrandom::fill(&mut buf).expect("operating system random source failed");
    buf
}

/// A new 8-character Crockford base32 code (40 random bits).
pub fn new_code() -> String {
    let bytes = random_bytes::<5>();
    let mut bits: u64 = 0;
    for b in bytes {
        bits = (bits << 8) | u64::from(b);
    }
    (0..CODE_LEN)
        .rev()
        .map(|i| CROCKFORD[((bits >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// Reads a code as a person may type it: case, spaces and dashes are ignored, `I`/`L` read as
/// `1` and `O` as `0`. Returns `None` unless it is exactly 8 Crockford characters.
pub fn normalize_code(input: &str) -> Option<String> {
    if input.len() > 32 {
        return None;
    }
    let mut out = String::with_capacity(CODE_LEN);
    for c in input.chars() {
        let c = match c.to_ascii_uppercase() {
            ' ' | '-' => continue,
            'I' | 'L' => '1',
            'O' => '0',
            c => c,
        };
        if !c.is_ascii() || !CROCKFORD.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_LEN).then_some(out)
}

/// A new bearer token: a prefix and 256 random bits in hex.
pub fn new_token() -> String {
    let bytes = random_bytes::<32>();
    let mut out = String::with_capacity(TOKEN_PREFIX.len() + 64);
    out.push_str(TOKEN_PREFIX);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The hash under which a token or code is stored.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_eight_crockford_characters_and_differ() {
        let a = new_code();
        let b = new_code();
        assert_eq!(a.len(), 8);
        assert!(a.bytes().all(|c| CROCKFORD.contains(&c)));
        assert_ne!(a, b, "40 random bits should not repeat");
    }

    #[test]
    fn normalizing_forgives_how_people_type() {
        assert_eq!(normalize_code("abcd-efgh").as_deref(), Some("ABCDEFGH"));
        assert_eq!(normalize_code(" 0il1 o0zz ").as_deref(), Some("011100ZZ"));
        assert_eq!(normalize_code("ABCDEFG"), None, "too short");
        assert_eq!(normalize_code("ABCDEFGHJ"), None, "too long");
        assert_eq!(normalize_code("ABCDEFGU"), None, "U is not Crockford");
        assert_eq!(normalize_code("ABCDÉFGH"), None);
    }

    #[test]
    fn tokens_are_long_random_and_hash_stably() {
        let t = new_token();
        assert!(t.starts_with("tpl_") && t.len() == 68);
        assert_ne!(t, new_token());
        assert_eq!(hash_secret(&t), hash_secret(&t));
        assert_ne!(hash_secret(&t), hash_secret("tpl_other"));
        assert_eq!(hash_secret(&t).len(), 32);
    }
}
