//! Push targets as the apps give and see them.

use std::time::SystemTime;

use tapline_proto::v1 as pb;

use super::system_time;

/// A push provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum PushProvider {
    /// Apple Push Notification service.
    Apns,
    /// Firebase Cloud Messaging.
    Fcm,
    /// UnifiedPush / Web Push.
    WebPush,
}

/// A kind of APNs push the device accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum ApnsPushKind {
    /// User-visible notifications (taps, check-ins).
    Alert,
    /// Silent wake-ups to sync.
    Background,
    /// Watch complication updates.
    Complication,
    /// Widget reloads.
    Widgets,
}

/// Where this device's wake-up pushes go.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PushTarget {
    /// An APNs device token, as the app (or an independent watch app) got it.
    Apns {
        /// The token in hex.
        device_token: String,
        /// The app's bundle id.
        topic: String,
        /// Development build (sandbox gateway) rather than App Store / TestFlight.
        sandbox: bool,
        /// What it accepts; at least one.
        push_types: Vec<ApnsPushKind>,
    },
    /// An FCM registration token.
    Fcm {
        /// The token.
        registration_token: String,
    },
    /// A UnifiedPush / Web Push subscription.
    WebPush {
        /// The push service's https endpoint.
        endpoint: String,
        /// The subscriber's uncompressed P-256 public key (65 bytes).
        p256dh: Vec<u8>,
        /// The subscriber's authentication secret (16 bytes).
        auth: Vec<u8>,
    },
}

/// What the server can push with.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PushSettings {
    /// The providers the server sends to now.
    pub providers: Vec<PushProvider>,
    /// The VAPID public key (65 bytes) a Web Push / UnifiedPush subscription is made with;
    /// empty when the server sends no Web Push.
    pub vapid_public_key: Vec<u8>,
}

impl PushSettings {
    pub(crate) fn from_wire(s: &pb::GetPushSettingsResponse) -> PushSettings {
        PushSettings {
            providers: s
                .providers
                .iter()
                .filter_map(|p| match pb::PushProvider::try_from(*p).ok()? {
                    pb::PushProvider::Apns => Some(PushProvider::Apns),
                    pb::PushProvider::Fcm => Some(PushProvider::Fcm),
                    pb::PushProvider::WebPush => Some(PushProvider::WebPush),
                    pb::PushProvider::Unspecified => None,
                })
                .collect(),
            vapid_public_key: s.vapid_public_key.clone(),
        }
    }
}

/// A target the server keeps for this device.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PushRegistration {
    /// The target.
    pub target: PushTarget,
    /// When it was registered.
    pub registered_at: SystemTime,
}

impl PushProvider {
    pub(crate) fn to_wire(self) -> pb::PushProvider {
        match self {
            PushProvider::Apns => pb::PushProvider::Apns,
            PushProvider::Fcm => pb::PushProvider::Fcm,
            PushProvider::WebPush => pb::PushProvider::WebPush,
        }
    }
}

impl ApnsPushKind {
    fn to_wire(self) -> pb::ApnsPushType {
        match self {
            ApnsPushKind::Alert => pb::ApnsPushType::Alert,
            ApnsPushKind::Background => pb::ApnsPushType::Background,
            ApnsPushKind::Complication => pb::ApnsPushType::Complication,
            ApnsPushKind::Widgets => pb::ApnsPushType::Widgets,
        }
    }

    fn from_wire(v: i32) -> Option<ApnsPushKind> {
        Some(match pb::ApnsPushType::try_from(v).ok()? {
            pb::ApnsPushType::Alert => ApnsPushKind::Alert,
            pb::ApnsPushType::Background => ApnsPushKind::Background,
            pb::ApnsPushType::Complication => ApnsPushKind::Complication,
            pb::ApnsPushType::Widgets => ApnsPushKind::Widgets,
            pb::ApnsPushType::Unspecified => return None,
        })
    }
}

impl PushTarget {
    pub(crate) fn to_wire(&self) -> pb::RegisterPushRequest {
        use pb::register_push_request::Target as T;
        let target = match self {
            PushTarget::Apns {
                device_token,
                topic,
                sandbox,
                push_types,
            } => T::Apns(pb::ApnsTarget {
                device_token: device_token.clone(),
                topic: topic.clone(),
                environment: if *sandbox {
                    pb::ApnsEnvironment::Sandbox
                } else {
                    pb::ApnsEnvironment::Production
                } as i32,
                push_types: push_types.iter().map(|t| t.to_wire() as i32).collect(),
            }),
            PushTarget::Fcm { registration_token } => T::Fcm(pb::FcmTarget {
                registration_token: registration_token.clone(),
            }),
            PushTarget::WebPush {
                endpoint,
                p256dh,
                auth,
            } => T::WebPush(pb::WebPushTarget {
                endpoint: endpoint.clone(),
                p256dh: p256dh.clone(),
                auth: auth.clone(),
            }),
        };
        pb::RegisterPushRequest {
            target: Some(target),
        }
    }
}

impl PushRegistration {
    pub(crate) fn from_wire(t: &pb::PushTarget) -> Option<PushRegistration> {
        use pb::push_target::Target as T;
        let target = match t.target.as_ref()? {
            T::Apns(a) => PushTarget::Apns {
                device_token: a.device_token.clone(),
                topic: a.topic.clone(),
                sandbox: a.environment == pb::ApnsEnvironment::Sandbox as i32,
                push_types: a
                    .push_types
                    .iter()
                    .filter_map(|v| ApnsPushKind::from_wire(*v))
                    .collect(),
            },
            T::Fcm(f) => PushTarget::Fcm {
                registration_token: f.registration_token.clone(),
            },
            T::WebPush(w) => PushTarget::WebPush {
                endpoint: w.endpoint.clone(),
                p256dh: w.p256dh.clone(),
                auth: w.auth.clone(),
            },
        };
        Some(PushRegistration {
            target,
            registered_at: system_time(t.registered_at.as_ref()),
        })
    }
}
