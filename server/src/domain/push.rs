//! The rules of a push target: what an APNs token, an FCM registration token and a Web Push
//! subscription must look like before the server keeps them. Pure: no I/O.

use std::net::IpAddr;

use tapline_proto::v1 as pb;

use crate::error::{Error, Result};

/// Longest APNs device token, in hex digits (Apple's are 64 today; room for growth).
pub const MAX_APNS_TOKEN_HEX: usize = 200;
/// Shortest APNs device token, in hex digits.
pub const MIN_APNS_TOKEN_HEX: usize = 64;
/// Longest APNs topic (a bundle id, possibly with a suffix such as `.complication`).
pub const MAX_TOPIC: usize = 255;
/// Longest FCM registration token.
pub const MAX_FCM_TOKEN: usize = 4096;
/// Longest Web Push endpoint URL.
pub const MAX_ENDPOINT: usize = 2048;
/// Length of an uncompressed P-256 public key.
pub const P256DH_BYTES: usize = 65;
/// Length of a Web Push authentication secret.
pub const AUTH_BYTES: usize = 16;

/// A checked target, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Which provider.
    pub provider: pb::PushProvider,
    /// APNs token (lower-case hex), FCM token, or Web Push endpoint.
    pub address: String,
    /// APNs topic (empty otherwise).
    pub topic: String,
    /// APNs environment (unspecified otherwise).
    pub environment: pb::ApnsEnvironment,
    /// APNs push types, one bit per `ApnsPushType` value (0 otherwise).
    pub push_types: i64,
    /// Web Push keys (empty otherwise).
    pub p256dh: Vec<u8>,
    /// Web Push secret (empty otherwise).
    pub auth: Vec<u8>,
}

/// Whether endpoints on loopback, private or link-local addresses are allowed (local fakes in
/// tests; a self-hosted push distributor on the LAN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndpointPolicy {
    /// Allow `http://` and private hosts.
    pub allow_private: bool,
}

/// Checks a registration request.
pub fn validate(req: &pb::RegisterPushRequest, policy: EndpointPolicy) -> Result<Target> {
    use pb::register_push_request::Target as T;
    match &req.target {
        None => Err(Error::invalid(
            "target",
            "is required: apns, fcm or web_push",
        )),
        Some(T::Apns(a)) => apns(a),
        Some(T::Fcm(f)) => fcm(f),
        Some(T::WebPush(w)) => web_push(w, policy),
    }
}

fn empty(provider: pb::PushProvider, address: String) -> Target {
    Target {
        provider,
        address,
        topic: String::new(),
        environment: pb::ApnsEnvironment::Unspecified,
        push_types: 0,
        p256dh: Vec::new(),
        auth: Vec::new(),
    }
}

fn apns(a: &pb::ApnsTarget) -> Result<Target> {
    let token = a.device_token.trim().to_ascii_lowercase();
    if !(MIN_APNS_TOKEN_HEX..=MAX_APNS_TOKEN_HEX).contains(&token.len())
        || !token.len().is_multiple_of(2)
        || !token.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(Error::invalid(
            "apns.device_token",
            format!(
                "must be the device token in hex ({MIN_APNS_TOKEN_HEX}-{MAX_APNS_TOKEN_HEX} hex digits)"
            ),
        ));
    }
    let topic = a.topic.trim();
    if topic.is_empty()
        || topic.len() > MAX_TOPIC
        || !topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    {
        return Err(Error::invalid(
            "apns.topic",
            "must be the app's bundle id, e.g. app.tapline.ios",
        ));
    }
    let environment = match pb::ApnsEnvironment::try_from(a.environment) {
        Ok(pb::ApnsEnvironment::Unspecified) | Err(_) => {
            return Err(Error::invalid(
                "apns.environment",
                "must be sandbox or production",
            ));
        }
        Ok(e) => e,
    };
    let mut push_types = 0i64;
    for t in &a.push_types {
        match pb::ApnsPushType::try_from(*t) {
            Ok(pb::ApnsPushType::Unspecified) | Err(_) => {
                return Err(Error::invalid(
                    "apns.push_types",
                    "each must be alert, background, complication or widgets",
                ));
            }
            Ok(t) => push_types |= 1 << (t as i32),
        }
    }
    if push_types == 0 {
        return Err(Error::invalid(
            "apns.push_types",
            "must name at least one push type",
        ));
    }
    Ok(Target {
        topic: topic.to_owned(),
        environment,
        push_types,
        ..empty(pb::PushProvider::Apns, token)
    })
}

fn fcm(f: &pb::FcmTarget) -> Result<Target> {
    let token = f.registration_token.trim();
    if token.is_empty()
        || token.len() > MAX_FCM_TOKEN
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.".contains(&b))
    {
        return Err(Error::invalid(
            "fcm.registration_token",
            format!("must be an FCM registration token (1-{MAX_FCM_TOKEN} characters)"),
        ));
    }
    Ok(empty(pb::PushProvider::Fcm, token.to_owned()))
}

fn web_push(w: &pb::WebPushTarget, policy: EndpointPolicy) -> Result<Target> {
    let endpoint = endpoint(w.endpoint.trim(), policy)?;
    if w.p256dh.len() != P256DH_BYTES || w.p256dh[0] != 0x04 {
        return Err(Error::invalid(
            "web_push.p256dh",
            "must be the subscriber's uncompressed P-256 public key (65 bytes, starting 0x04)",
        ));
    }
    if w.auth.len() != AUTH_BYTES {
        return Err(Error::invalid(
            "web_push.auth",
            "must be the subscriber's 16-byte authentication secret",
        ));
    }
    Ok(Target {
        p256dh: w.p256dh.clone(),
        auth: w.auth.clone(),
        ..empty(pb::PushProvider::WebPush, endpoint)
    })
}

/// A Web Push endpoint: an absolute https URL (http only when private hosts are allowed)
/// with a host, no credentials, and, unless allowed, not a loopback, private, link-local or
/// unspecified address (the server would otherwise post to its own network). Names are
/// checked again, resolved, when a push is sent.
pub fn endpoint(input: &str, policy: EndpointPolicy) -> Result<String> {
    const FIELD: &str = "web_push.endpoint";
    if input.is_empty() || input.len() > MAX_ENDPOINT || input.chars().any(char::is_control) {
        return Err(Error::invalid(
            FIELD,
            format!("must be an https URL of at most {MAX_ENDPOINT} characters"),
        ));
    }
    let rest = if let Some(rest) = input.strip_prefix("https://") {
        rest
    } else if let Some(rest) = input.strip_prefix("http://")
        && policy.allow_private
    {
        rest
    } else {
        return Err(Error::invalid(FIELD, "must be an https URL"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(Error::invalid(
            FIELD,
            "must name a host (and no user name or password)",
        ));
    }
    let host = host_of(authority);
    if host.is_empty() {
        return Err(Error::invalid(FIELD, "must name a host"));
    }
    if !policy.allow_private && is_private_host(host) {
        return Err(Error::invalid(
            FIELD,
            "must not point to a loopback, private or link-local address",
        ));
    }
    Ok(input.to_owned())
}

/// The host of `host[:port]` or `[v6]:port`.
fn host_of(authority: &str) -> &str {
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// Whether a host (a name or an address literal) is one the server must not post to.
pub fn is_private_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => is_private_ip(ip),
        Err(_) => false,
    }
}

/// Loopback, private (RFC 1918, unique-local), link-local, CGNAT, unspecified or broadcast.
pub fn is_private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_private_ip(IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::register_push_request::Target as T;

    fn strict() -> EndpointPolicy {
        EndpointPolicy::default()
    }

    fn field(r: Result<Target>) -> &'static str {
        match r {
            Err(Error::InvalidArgument { field, .. }) => field,
            other => panic!("expected an invalid argument, got {other:?}"),
        }
    }

    fn apns_req(token: &str, types: &[pb::ApnsPushType]) -> pb::RegisterPushRequest {
        pb::RegisterPushRequest {
            target: Some(T::Apns(pb::ApnsTarget {
                device_token: token.into(),
                topic: "app.tapline.ios".into(),
                environment: pb::ApnsEnvironment::Production as i32,
                push_types: types.iter().map(|t| *t as i32).collect(),
            })),
        }
    }

    fn web(endpoint: &str, p256dh: Vec<u8>, auth: Vec<u8>) -> pb::RegisterPushRequest {
        pb::RegisterPushRequest {
            target: Some(T::WebPush(pb::WebPushTarget {
                endpoint: endpoint.into(),
                p256dh,
                auth,
            })),
        }
    }

    fn key() -> Vec<u8> {
        let mut k = vec![0x04];
        k.extend([7u8; 64]);
        k
    }

    #[test]
    fn apns_tokens_are_hex_and_kept_in_lower_case_with_their_push_types() {
        let token = "AB".repeat(32);
        let t = validate(
            &apns_req(
                &token,
                &[pb::ApnsPushType::Alert, pb::ApnsPushType::Background],
            ),
            strict(),
        )
        .unwrap();
        assert_eq!(t.address, "ab".repeat(32));
        assert_eq!(t.push_types, 0b110);
        assert_eq!(t.environment, pb::ApnsEnvironment::Production);
        assert_eq!(
            field(validate(
                &apns_req("xyz", &[pb::ApnsPushType::Alert]),
                strict()
            )),
            "apns.device_token"
        );
        assert_eq!(
            field(validate(
                &apns_req(&"a".repeat(63), &[pb::ApnsPushType::Alert]),
                strict()
            )),
            "apns.device_token"
        );
        assert_eq!(
            field(validate(&apns_req(&token, &[]), strict())),
            "apns.push_types"
        );
    }

    #[test]
    fn fcm_tokens_are_bounded() {
        let ok = pb::RegisterPushRequest {
            target: Some(T::Fcm(pb::FcmTarget {
                registration_token: "dGVzdA:APA91b-xyz_1".into(),
            })),
        };
        assert_eq!(
            validate(&ok, strict()).unwrap().provider,
            pb::PushProvider::Fcm
        );
        let long = pb::RegisterPushRequest {
            target: Some(T::Fcm(pb::FcmTarget {
                registration_token: "a".repeat(MAX_FCM_TOKEN + 1),
            })),
        };
        assert_eq!(field(validate(&long, strict())), "fcm.registration_token");
        assert_eq!(
            field(validate(
                &pb::RegisterPushRequest { target: None },
                strict()
            )),
            "target"
        );
    }

    #[test]
    fn web_push_needs_its_keys_and_a_public_https_endpoint() {
        let good = "https://push.example.net/wpush/v2/abc?x=1";
        assert!(validate(&web(good, key(), vec![1; 16]), strict()).is_ok());
        assert_eq!(
            field(validate(&web(good, vec![4; 33], vec![1; 16]), strict())),
            "web_push.p256dh"
        );
        assert_eq!(
            field(validate(&web(good, key(), vec![1; 8]), strict())),
            "web_push.auth"
        );
        for bad in [
            "http://push.example.net/x",
            "https://127.0.0.1:8080/x",
            "https://localhost/x",
            "https://10.1.2.3/x",
            "https://192.168.0.1/x",
            "https://169.254.169.254/latest",
            "https://100.64.0.1/x",
            "https://[::1]:443/x",
            "https://[fd00::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://user:pw@push.example.net/x",
            "https:///x",
            "ftp://push.example.net/x",
        ] {
            assert_eq!(
                field(validate(&web(bad, key(), vec![1; 16]), strict())),
                "web_push.endpoint",
                "{bad}"
            );
        }
        // A local push distributor (or a test's fake) when the operator allows it.
        let allow = EndpointPolicy {
            allow_private: true,
        };
        assert!(validate(&web("http://127.0.0.1:9/up", key(), vec![1; 16]), allow).is_ok());
    }
}
