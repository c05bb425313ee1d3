//! The types that cross the FFI, and their conversions from the wire.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tapline_proto::v1 as pb;

use crate::error::{CoreError, RefusalCode};
mod moments;
mod push;
mod questions;
mod reconnect;
mod rituals;
mod space;
mod together;

pub use moments::*;
pub use push::*;
pub use questions::*;
pub use reconnect::*;
pub use rituals::*;
pub use space::*;
pub use together::*;

/// The kind of device this core runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DeviceKind {
    /// A phone.
    Phone,
    /// A watch.
    Watch,
    /// A computer (and the terminal client).
    Desktop,
}

/// The operating system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Platform {
    /// iPhone.
    Ios,
    /// Apple Watch.
    Watchos,
    /// Android phone.
    Android,
    /// Wear OS watch.
    WearOs,
    /// macOS.
    Macos,
    /// Linux.
    Linux,
    /// Windows.
    Windows,
}

/// The kinds of tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum TapKind {
    /// One light tap.
    Tap,
    /// Two quick taps.
    DoubleTap,
    /// A heartbeat: lub-dub.
    Heartbeat,
    /// A long, firm squeeze.
    Squeeze,
    /// A quick kiss.
    Kiss,
    /// A slow, swelling hug.
    Hug,
    /// A rhythm of the sender's own.
    Custom,
}

/// What a receipt says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ReceiptKind {
    /// A partner's device stored the tap.
    Delivered,
    /// The partner felt it.
    Felt,
    /// The partner saw it.
    Seen,
}

/// One segment of a haptic pattern: vibrate at `intensity` (0 = pause) for `duration_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct HapticSegment {
    /// 10-2000 ms.
    pub duration_ms: u32,
    /// 0-255.
    pub intensity: u8,
}

/// A portable haptic pattern: at most 32 segments, at most 10 s.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HapticPattern {
    /// The segments in order.
    pub segments: Vec<HapticSegment>,
}

/// How a client connects and where it keeps its data.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ClientConfig {
    /// Server URL, e.g. `http://127.0.0.1:50051`.
    pub server_url: String,
    /// A folder the core owns for its local store.
    pub data_dir: String,
    /// This device's kind.
    pub device_kind: DeviceKind,
    /// This device's platform.
    pub platform: Platform,
    /// A name the user recognises (may be empty).
    #[uniffi(default = "")]
    pub device_name: String,
    /// How often a subscription on the host HTTP transport polls (it cannot hold a stream).
    #[uniffi(default = 5000)]
    pub poll_interval_ms: u32,
    /// For an `https://` server on the native transport: a CA certificate (PEM) trusted
    /// besides the platform's roots (a self-hosted server). The host transport uses the
    /// host's own trust settings.
    #[uniffi(default = None)]
    pub ca_cert_pem: Option<String>,
}

/// This device's account.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AccountInfo {
    /// Account id.
    pub account_id: String,
    /// This device's id.
    pub device_id: String,
    /// Display name.
    pub display_name: String,
    /// IANA time zone.
    pub time_zone: String,
    /// The server said this device is signed out (revoked): nothing more will be sent; see
    /// `forget_account`.
    pub signed_out: bool,
}

/// The partner and their clock.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PartnerInfo {
    /// Their account id.
    pub account_id: String,
    /// Their name.
    pub display_name: String,
    /// Their IANA zone.
    pub time_zone: String,
    /// Their local date and time, RFC 3339.
    pub local_time: String,
    /// Their offset from UTC, in seconds.
    pub utc_offset_seconds: i32,
    /// Whether they are in quiet hours now.
    pub in_quiet_hours: bool,
    /// Their quiet hours, when on.
    pub quiet_hours: Option<QuietHours>,
}

/// The couple this account belongs to.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CoupleInfo {
    /// Couple id.
    pub couple_id: String,
    /// The partner.
    pub partner: PartnerInfo,
    /// When they paired.
    pub paired_since: SystemTime,
}

/// A short single-use code (invite or device link).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ShortCode {
    /// 8 characters, Crockford base32.
    pub code: String,
    /// When it stops working.
    pub expires_at: SystemTime,
}

/// A device signed in to the account.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeviceSummary {
    /// Device id.
    pub device_id: String,
    /// Its kind.
    pub kind: Option<DeviceKind>,
    /// Its platform.
    pub platform: Option<Platform>,
    /// Its name.
    pub name: String,
    /// Whether it is this device.
    pub current: bool,
}

/// Quiet hours, in the owner's zone: start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct QuietHours {
    /// 0-23.
    pub start_hour: u8,
    /// 0-59.
    pub start_minute: u8,
    /// 0-23.
    pub end_hour: u8,
    /// 0-59.
    pub end_minute: u8,
}

/// This account's settings.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Settings {
    /// Quiet hours, when on.
    pub quiet_hours: Option<QuietHours>,
    /// Whether the partner is told of felt and seen.
    pub receipts_enabled: bool,
}

/// Where a tap this device sent stands.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum TapState {
    /// Stored locally, waiting to be sent.
    Queued,
    /// Stored by the server.
    Sent,
    /// Stored by a partner's device.
    Delivered,
    /// The partner felt it.
    Felt,
    /// The partner saw it.
    Seen,
    /// Refused for good (signed out, not paired, invalid); will not be retried.
    Refused {
        /// Why, in plain words.
        reason: String,
        /// Why, for the app to act on.
        code: RefusalCode,
    },
}

/// A tap in this device's outbox.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LocalTap {
    /// The id this device made.
    pub client_tap_id: String,
    /// The server's id, once sent.
    pub tap_id: Option<String>,
    /// Its kind.
    pub kind: TapKind,
    /// Its note, if any.
    pub note: Option<String>,
    /// Its rhythm, for custom taps.
    pub rhythm: Option<HapticPattern>,
    /// Where it stands.
    pub state: TapState,
    /// When it was made.
    pub created_at: SystemTime,
    /// Send attempts so far.
    pub attempts: u32,
}

/// One thing a partner update changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum PartnerChange {
    /// Their display name.
    Name,
    /// Their time zone (they travelled).
    TimeZone,
    /// Their quiet hours (set, moved or turned off).
    QuietHours,
    /// Whether they share felt/seen receipts.
    Receipts,
}

impl PartnerChange {
    pub(crate) fn from_wire(v: i32) -> Option<PartnerChange> {
        match pb::PartnerChange::try_from(v).ok()? {
            pb::PartnerChange::Name => Some(PartnerChange::Name),
            pb::PartnerChange::TimeZone => Some(PartnerChange::TimeZone),
            pb::PartnerChange::QuietHours => Some(PartnerChange::QuietHours),
            pb::PartnerChange::Receipts => Some(PartnerChange::Receipts),
            pb::PartnerChange::Unspecified => None,
        }
    }
}

/// What `flush_outbox` sent, and what is left.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct FlushReport {
    /// Taps the server accepted in this flush.
    pub sent_taps: u32,
    /// Check-in answers the server accepted in this flush.
    pub sent_answers: u32,
    /// Felt/seen receipts the server accepted in this flush.
    pub sent_receipts: u32,
    /// Rows refused for good in this flush (their state says why).
    pub refused: u32,
    /// Rows of every kind still queued.
    pub unsent: u32,
}

/// A tap that arrived on this device.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReceivedTap {
    /// The server's id (use it to report felt or seen).
    pub tap_id: String,
    /// Its kind.
    pub kind: TapKind,
    /// Its note, if any.
    pub note: Option<String>,
    /// Its rhythm, for custom taps.
    pub rhythm: Option<HapticPattern>,
    /// When it was sent.
    pub sent_at: SystemTime,
    /// Arrived in quiet hours (or is this account's own tap): show, do not buzz.
    pub silent: bool,
    /// Sent by another device of this account.
    pub from_self: bool,
    /// Kept by the server while this account had asked for space, or during together time,
    /// delivered when that ended (the held taps come together: play one haptic for the group;
    /// after together time they arrive silent).
    pub released: bool,
}

/// What a subscription tells the app.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum ClientEvent {
    /// A tap arrived (or this account sent one from another device).
    TapReceived {
        /// The tap.
        tap: ReceivedTap,
    },
    /// A tap this device sent moved on (sent, delivered, felt, seen).
    TapStateChanged {
        /// The tap, with its new state.
        tap: LocalTap,
    },
    /// This account was paired.
    Paired {
        /// The new couple.
        couple: CoupleInfo,
    },
    /// The couple ended.
    Unpaired {
        /// Whether the partner ended it.
        by_partner: bool,
        /// The partner ended it by deleting their account (their name and content are gone).
        partner_deleted: bool,
    },
    /// The partner changed their name, zone, quiet hours or receipts setting.
    PartnerUpdated {
        /// The partner as they are now.
        partner: PartnerInfo,
        /// What changed (empty only from an older server).
        changed: Vec<PartnerChange>,
        /// Whether the partner now shares felt/seen receipts (news when `changed` has
        /// `Receipts`).
        receipts_enabled: bool,
    },
    /// The streak moved (never sent in calm mode).
    StreakUpdated {
        /// The streak now.
        streak: StreakInfo,
        /// What moved it.
        change: StreakChange,
        /// For milestones: the days reached.
        milestone_days: Option<u32>,
        /// The day concerned, YYYY-MM-DD.
        date: String,
    },
    /// A check-in was opened, answered by the partner (answer hidden), revealed or expired.
    CheckinUpdated {
        /// The check-in as it is now.
        checkin: CheckinInfo,
    },
    /// A routine fired for this account now.
    RoutineFired {
        /// The routine (a reminder's text is in its spec).
        routine: RoutineInfo,
        /// For check-in routines: the check-in to answer.
        checkin: Option<CheckinInfo>,
    },
    /// A routine was created, changed or deleted by either partner.
    RoutinesChanged {
        /// The routine's id.
        routine_id: String,
        /// The routine as it is now; `None` when deleted.
        routine: Option<RoutineInfo>,
        /// Whether it was deleted.
        deleted: bool,
    },
    /// A space ("I need a moment") was asked for, answered or ended, by either partner. Never
    /// collapse it with taps.
    SpaceUpdated {
        /// The space as it is now.
        space: SpaceInfo,
        /// What happened.
        change: SpaceChange,
        /// Show without a haptic (the recipient's quiet hours, or this account's own action).
        silent: bool,
        /// What to play when not silent: the gentle space pattern for a partner's request,
        /// a softer one for their answer ([`crate::haptics::space_pattern`]).
        haptic: Option<HapticPattern>,
        /// For `Ended`: the taps that were held and have just arrived.
        released_tap_ids: Vec<String>,
    },
    /// The partner answered the current deeper question (answer hidden), both answers were
    /// revealed, or the deck was paused or resumed.
    QuestionUpdated {
        /// What happened.
        change: QuestionChange,
        /// The deck's progress as it is now.
        progress: QuestionProgress,
        /// For `Revealed`: the question with both answers.
        revealed: Option<QuestionInfo>,
        /// Show without a haptic (quiet hours, or this account's own action).
        silent: bool,
    },
    /// Together time was proposed, started or ended, or the next meeting set or cleared, by
    /// either partner. Never collapse it with taps.
    TogetherUpdated {
        /// What happened.
        change: TogetherChange,
        /// For `Proposed`, `Started` and `Ended`: the together time as it is now.
        together: Option<TogetherInfo>,
        /// For `MeetingSet`: the meeting; for `Started`: the meeting it came from, if any.
        meeting: Option<MeetingInfo>,
        /// Show without a haptic: the recipient's quiet hours, this account's own action, and
        /// always `Started` and `Ended` (phones down).
        silent: bool,
        /// What to play when not silent: the gentle together pattern for a partner's proposal
        /// ([`crate::haptics::together_pattern`]); nothing for the rest.
        haptic: Option<HapticPattern>,
        /// For `Ended`: the taps that were kept and have just arrived (silent).
        released_tap_ids: Vec<String>,
    },
    /// The reconnect plan was proposed, accepted, paused, resumed, ended or finished, a step
    /// came for this account, or the partner marked one done.
    ReconnectUpdated {
        /// What happened.
        change: ReconnectChange,
        /// The plan as it is now.
        plan: ReconnectInfo,
        /// For `Step`: the step that came; for `PartnerDone`: the step the partner marked.
        step: Option<ReconnectStepInfo>,
        /// Show without a haptic (quiet hours, or this account's own action).
        silent: bool,
        /// What to play when not silent: the gentle step pattern when a step came
        /// ([`crate::haptics::reconnect_step_pattern`]); nothing for the rest.
        haptic: Option<HapticPattern>,
    },
    /// The partner kept a moment, or let one go (then only `moment.moment_id` is meaningful).
    MomentKept { moment: MomentInfo, forgotten: bool },
    /// This account's weekly recap came (at the time it chose); shown in the glance until
    /// read with `get_recap` or `mark_recap_seen`.
    RecapReady { recap: RecapInfo },
    /// An answer this device queued was sent, or refused for good.
    AnswerStateChanged {
        /// The answer, with its new state.
        answer: LocalAnswer,
    },
    /// Everything waiting for this device has arrived.
    CaughtUp,
    /// The server forgot events this device never acknowledged: re-read state.
    Reset,
}

/// The connection of a subscription.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ConnectionState {
    /// Opening the stream.
    Connecting,
    /// Streaming live events.
    Live,
    /// Disconnected; retrying after the delay.
    Offline {
        /// Milliseconds until the next attempt.
        retry_in_ms: u64,
        /// What went wrong.
        reason: String,
    },
    /// Stopped for good (signed out, replaced by another stream, cancelled).
    Stopped {
        /// Why.
        reason: String,
    },
}

/// One HTTP header.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpHeader {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// A request the host app sends for the core (gRPC-Web over its HTTP stack).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpRequest {
    /// Full URL.
    pub url: String,
    /// Always POST for gRPC-Web.
    pub method: String,
    /// Headers to send.
    pub headers: Vec<HttpHeader>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// The host's answer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<HttpHeader>,
    /// The whole body.
    pub body: Vec<u8>,
}

pub(crate) fn system_time(ts: Option<&prost_types::Timestamp>) -> SystemTime {
    ts.map_or(UNIX_EPOCH, |t| {
        let ms = t.seconds.saturating_mul(1000) + i64::from(t.nanos) / 1_000_000;
        UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
    })
}

pub(crate) fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

impl ShortCode {
    pub(crate) fn from_wire(
        code: String,
        expires_at: Option<&prost_types::Timestamp>,
    ) -> ShortCode {
        ShortCode {
            code,
            expires_at: system_time(expires_at),
        }
    }
}

impl TapKind {
    pub(crate) fn to_wire(self) -> pb::TapKind {
        match self {
            TapKind::Tap => pb::TapKind::Tap,
            TapKind::DoubleTap => pb::TapKind::DoubleTap,
            TapKind::Heartbeat => pb::TapKind::Heartbeat,
            TapKind::Squeeze => pb::TapKind::Squeeze,
            TapKind::Kiss => pb::TapKind::Kiss,
            TapKind::Hug => pb::TapKind::Hug,
            TapKind::Custom => pb::TapKind::Custom,
        }
    }

    pub(crate) fn from_wire(k: i32) -> TapKind {
        match pb::TapKind::try_from(k) {
            Ok(pb::TapKind::DoubleTap) => TapKind::DoubleTap,
            Ok(pb::TapKind::Heartbeat) => TapKind::Heartbeat,
            Ok(pb::TapKind::Squeeze) => TapKind::Squeeze,
            Ok(pb::TapKind::Kiss) => TapKind::Kiss,
            Ok(pb::TapKind::Hug) => TapKind::Hug,
            Ok(pb::TapKind::Custom) => TapKind::Custom,
            // Kinds this build does not know yet play as a plain tap.
            _ => TapKind::Tap,
        }
    }
}

impl ReceiptKind {
    pub(crate) fn to_wire(self) -> pb::ReceiptKind {
        match self {
            ReceiptKind::Delivered => pb::ReceiptKind::Delivered,
            ReceiptKind::Felt => pb::ReceiptKind::Felt,
            ReceiptKind::Seen => pb::ReceiptKind::Seen,
        }
    }
}

impl DeviceKind {
    pub(crate) fn to_wire(self) -> pb::DeviceKind {
        match self {
            DeviceKind::Phone => pb::DeviceKind::Phone,
            DeviceKind::Watch => pb::DeviceKind::Watch,
            DeviceKind::Desktop => pb::DeviceKind::Desktop,
        }
    }

    fn from_wire(k: i32) -> Option<DeviceKind> {
        match pb::DeviceKind::try_from(k).ok()? {
            pb::DeviceKind::Phone => Some(DeviceKind::Phone),
            pb::DeviceKind::Watch => Some(DeviceKind::Watch),
            pb::DeviceKind::Desktop => Some(DeviceKind::Desktop),
            pb::DeviceKind::Unspecified => None,
        }
    }
}

impl Platform {
    pub(crate) fn to_wire(self) -> pb::Platform {
        match self {
            Platform::Ios => pb::Platform::Ios,
            Platform::Watchos => pb::Platform::Watchos,
            Platform::Android => pb::Platform::Android,
            Platform::WearOs => pb::Platform::WearOs,
            Platform::Macos => pb::Platform::Macos,
            Platform::Linux => pb::Platform::Linux,
            Platform::Windows => pb::Platform::Windows,
        }
    }

    fn from_wire(k: i32) -> Option<Platform> {
        Some(match pb::Platform::try_from(k).ok()? {
            pb::Platform::Ios => Platform::Ios,
            pb::Platform::Watchos => Platform::Watchos,
            pb::Platform::Android => Platform::Android,
            pb::Platform::WearOs => Platform::WearOs,
            pb::Platform::Macos => Platform::Macos,
            pb::Platform::Linux => Platform::Linux,
            pb::Platform::Windows => Platform::Windows,
            pb::Platform::Unspecified => return None,
        })
    }
}

impl From<&pb::Device> for DeviceSummary {
    fn from(d: &pb::Device) -> Self {
        DeviceSummary {
            device_id: d.device_id.clone(),
            kind: DeviceKind::from_wire(d.kind),
            platform: Platform::from_wire(d.platform),
            name: d.name.clone(),
            current: d.current,
        }
    }
}

impl HapticPattern {
    pub(crate) fn to_wire(&self) -> pb::Rhythm {
        pb::Rhythm {
            segments: self
                .segments
                .iter()
                .map(|s| pb::HapticSegment {
                    duration_ms: s.duration_ms,
                    intensity: u32::from(s.intensity),
                })
                .collect(),
        }
    }

    pub(crate) fn from_wire(r: &pb::Rhythm) -> HapticPattern {
        HapticPattern {
            segments: r
                .segments
                .iter()
                .map(|s| HapticSegment {
                    duration_ms: s.duration_ms,
                    intensity: s.intensity.min(255) as u8,
                })
                .collect(),
        }
    }
}

impl QuietHours {
    pub(crate) fn from_wire(
        start: Option<&pb::LocalTimeOfDay>,
        end: Option<&pb::LocalTimeOfDay>,
    ) -> Option<QuietHours> {
        let (s, e) = (start?, end?);
        Some(QuietHours {
            start_hour: s.hour as u8,
            start_minute: s.minute as u8,
            end_hour: e.hour as u8,
            end_minute: e.minute as u8,
        })
    }

    pub(crate) fn to_wire(self) -> pb::QuietHours {
        pb::QuietHours {
            start: Some(pb::LocalTimeOfDay {
                hour: self.start_hour.into(),
                minute: self.start_minute.into(),
            }),
            end: Some(pb::LocalTimeOfDay {
                hour: self.end_hour.into(),
                minute: self.end_minute.into(),
            }),
        }
    }

    /// Whether the local minute of day falls inside (start inclusive, end exclusive, may wrap).
    pub fn contains(&self, minute_of_day: u32) -> bool {
        let start = u32::from(self.start_hour) * 60 + u32::from(self.start_minute);
        let end = u32::from(self.end_hour) * 60 + u32::from(self.end_minute);
        if start <= end {
            start <= minute_of_day && minute_of_day < end
        } else {
            minute_of_day >= start || minute_of_day < end
        }
    }
}

impl From<&pb::Partner> for PartnerInfo {
    fn from(p: &pb::Partner) -> Self {
        let clock = p.clock.clone().unwrap_or_default();
        PartnerInfo {
            account_id: p.account_id.clone(),
            display_name: p.display_name.clone(),
            time_zone: clock.time_zone,
            local_time: clock.local_time,
            utc_offset_seconds: clock.utc_offset_seconds,
            in_quiet_hours: clock.in_quiet_hours,
            quiet_hours: QuietHours::from_wire(p.quiet_start.as_ref(), p.quiet_end.as_ref()),
        }
    }
}

impl CoupleInfo {
    pub(crate) fn from_wire(c: &pb::Couple) -> Result<Self, CoreError> {
        let partner = c
            .partner
            .as_ref()
            .ok_or_else(|| CoreError::Invalid("server sent a couple without a partner".into()))?;
        Ok(CoupleInfo {
            couple_id: c.couple_id.clone(),
            partner: partner.into(),
            paired_since: system_time(c.paired_since.as_ref()),
        })
    }
}

impl ReceivedTap {
    pub(crate) fn from_wire(t: &pb::TapReceived) -> Option<ReceivedTap> {
        let tap = t.tap.as_ref()?;
        Some(ReceivedTap {
            tap_id: tap.tap_id.clone(),
            kind: TapKind::from_wire(tap.kind),
            note: (!tap.note.is_empty()).then(|| tap.note.clone()),
            rhythm: tap.rhythm.as_ref().map(HapticPattern::from_wire),
            sent_at: system_time(tap.sent_at.as_ref()),
            silent: t.silent,
            from_self: t.from_self,
            released: t.released,
        })
    }
}
