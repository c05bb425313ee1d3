//! How `tapline` shows things: sentences, bars and JSON.

use std::time::SystemTime;

use serde_json::{Value, json};
use tapline_core::*;

/// RFC 3339 in UTC, to the second.
pub fn iso(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// "HH:MM" out of an RFC 3339 local time.
pub fn hhmm(rfc3339: &str) -> String {
    rfc3339.get(11..16).unwrap_or(rfc3339).to_owned()
}

pub fn kind_label(k: TapKind) -> &'static str {
    match k {
        TapKind::Tap => "a tap",
        TapKind::DoubleTap => "a double tap",
        TapKind::Heartbeat => "a heartbeat",
        TapKind::Squeeze => "a squeeze",
        TapKind::Kiss => "a kiss",
        TapKind::Hug => "a hug",
        TapKind::Custom => "a rhythm",
    }
}

fn kind_key(k: TapKind) -> &'static str {
    match k {
        TapKind::Tap => "tap",
        TapKind::DoubleTap => "double_tap",
        TapKind::Heartbeat => "heartbeat",
        TapKind::Squeeze => "squeeze",
        TapKind::Kiss => "kiss",
        TapKind::Hug => "hug",
        TapKind::Custom => "custom",
    }
}

pub fn kind_name(k: Option<DeviceKind>) -> &'static str {
    match k {
        Some(DeviceKind::Phone) => "phone",
        Some(DeviceKind::Watch) => "watch",
        Some(DeviceKind::Desktop) => "desktop",
        None => "?",
    }
}

pub fn platform_name(p: Option<Platform>) -> &'static str {
    match p {
        Some(Platform::Ios) => "ios",
        Some(Platform::Watchos) => "watchos",
        Some(Platform::Android) => "android",
        Some(Platform::WearOs) => "wear_os",
        Some(Platform::Macos) => "macos",
        Some(Platform::Linux) => "linux",
        Some(Platform::Windows) => "windows",
        None => "?",
    }
}

/// The pattern as a bar: one cell per 50 ms, height from intensity, a dot for a pause.
pub fn bar(p: &HapticPattern) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let mut s = String::new();
    for seg in &p.segments {
        let cells = (seg.duration_ms / 50).max(1);
        let c = if seg.intensity == 0 {
            '·'
        } else {
            LEVELS[(usize::from(seg.intensity) * 8 / 256).min(7)]
        };
        s.extend(std::iter::repeat_n(c, cells as usize));
    }
    s
}

pub fn account_json(a: &AccountInfo) -> Value {
    json!({ "account_id": a.account_id, "device_id": a.device_id, "display_name": a.display_name, "time_zone": a.time_zone })
}

pub fn couple_json(c: &CoupleInfo) -> Value {
    json!({
        "couple_id": c.couple_id,
        "partner": { "name": c.partner.display_name, "time_zone": c.partner.time_zone, "local_time": c.partner.local_time, "in_quiet_hours": c.partner.in_quiet_hours },
        "paired_since": iso(c.paired_since),
    })
}

pub fn device_json(d: &DeviceSummary) -> Value {
    json!({ "device_id": d.device_id, "kind": kind_name(d.kind), "platform": platform_name(d.platform), "name": d.name, "current": d.current })
}

fn pattern_json(p: &HapticPattern) -> Value {
    Value::Array(
        p.segments
            .iter()
            .map(|s| json!([s.duration_ms, s.intensity]))
            .collect(),
    )
}

fn state_name(s: &TapState) -> String {
    match s {
        TapState::Queued => "queued".into(),
        TapState::Sent => "sent".into(),
        TapState::Delivered => "delivered".into(),
        TapState::Felt => "felt".into(),
        TapState::Seen => "seen".into(),
        TapState::Failed { reason } => format!("failed: {reason}"),
    }
}

pub fn local_tap_json(t: &LocalTap) -> Value {
    json!({
        "client_tap_id": t.client_tap_id, "tap_id": t.tap_id, "kind": kind_key(t.kind), "note": t.note,
        "rhythm": t.rhythm.as_ref().map(pattern_json), "state": state_name(&t.state), "created_at": iso(t.created_at),
    })
}

pub fn received_json(t: &ReceivedTap) -> Value {
    json!({
        "tap_id": t.tap_id, "kind": kind_key(t.kind), "note": t.note, "rhythm": t.rhythm.as_ref().map(pattern_json),
        "sent_at": iso(t.sent_at), "silent": t.silent, "from_self": t.from_self,
    })
}

pub fn settings_json(s: &Settings) -> Value {
    json!({
        "quiet_hours": s.quiet_hours.map(|q| json!({ "start": format!("{:02}:{:02}", q.start_hour, q.start_minute), "end": format!("{:02}:{:02}", q.end_hour, q.end_minute) })),
        "receipts_enabled": s.receipts_enabled,
    })
}

pub fn settings_line(s: &Settings) -> String {
    let quiet = match s.quiet_hours {
        Some(q) => format!(
            "quiet hours {:02}:{:02}-{:02}:{:02}",
            q.start_hour, q.start_minute, q.end_hour, q.end_minute
        ),
        None => "no quiet hours".into(),
    };
    format!(
        "Settings: {quiet}; receipts {}.",
        if s.receipts_enabled { "on" } else { "off" }
    )
}

pub fn event_json(e: &ClientEvent) -> Value {
    match e {
        ClientEvent::TapReceived { tap } => {
            json!({ "event": "tap_received", "tap": received_json(tap) })
        }
        ClientEvent::TapStateChanged { tap } => {
            json!({ "event": "tap_state", "tap": local_tap_json(tap) })
        }
        ClientEvent::Paired { couple } => {
            json!({ "event": "paired", "couple": couple_json(couple) })
        }
        ClientEvent::Unpaired { by_partner } => {
            json!({ "event": "unpaired", "by_partner": by_partner })
        }
        ClientEvent::PartnerUpdated { partner } => {
            json!({ "event": "partner_updated", "name": partner.display_name, "time_zone": partner.time_zone })
        }
        ClientEvent::CaughtUp => json!({ "event": "caught_up" }),
        ClientEvent::Reset => json!({ "event": "reset" }),
        ClientEvent::StreakUpdated { .. }
        | ClientEvent::CheckinUpdated { .. }
        | ClientEvent::RoutineFired { .. }
        | ClientEvent::RoutinesChanged { .. }
        | ClientEvent::AnswerStateChanged { .. } => {
            crate::ritual_words::event_json(e).unwrap_or(Value::Null)
        }
    }
}

pub fn event_line(e: &ClientEvent) -> Option<String> {
    Some(match e {
        ClientEvent::TapReceived { tap } => {
            let who = if tap.from_self {
                "You sent"
            } else {
                "Your partner sent"
            };
            let note = tap
                .note
                .as_deref()
                .map(|n| format!(" “{n}”"))
                .unwrap_or_default();
            let silent = if tap.silent && !tap.from_self {
                " (silently: quiet hours)"
            } else {
                ""
            };
            let pattern = haptics::pattern_for(tap.kind, tap.rhythm.clone());
            format!(
                "{who} {}{note}{silent}\n  {}",
                kind_label(tap.kind),
                bar(&pattern)
            )
        }
        ClientEvent::TapStateChanged { tap } => format!(
            "Your {} is now {}.",
            &kind_label(tap.kind)[2..],
            state_name(&tap.state)
        ),
        ClientEvent::Paired { couple } => format!("Paired with {}.", couple.partner.display_name),
        ClientEvent::Unpaired { by_partner: true } => "Your partner ended the couple.".into(),
        ClientEvent::Unpaired { by_partner: false } => "You ended the couple.".into(),
        ClientEvent::PartnerUpdated { partner } => {
            format!("{} is now in {}.", partner.display_name, partner.time_zone)
        }
        ClientEvent::CaughtUp => "(up to date)".into(),
        ClientEvent::Reset => "(history was reset; state refreshed)".into(),
        ClientEvent::StreakUpdated { .. }
        | ClientEvent::CheckinUpdated { .. }
        | ClientEvent::RoutineFired { .. }
        | ClientEvent::RoutinesChanged { .. }
        | ClientEvent::AnswerStateChanged { .. } => return crate::ritual_words::event_line(e),
    })
}

pub fn state_line(s: &ConnectionState) -> String {
    match s {
        ConnectionState::Connecting => "connecting…".into(),
        ConnectionState::Live => "live".into(),
        ConnectionState::Offline {
            retry_in_ms,
            reason,
        } => format!(
            "offline ({reason}); retrying in {:.1} s",
            *retry_in_ms as f64 / 1000.0
        ),
        ConnectionState::Stopped { reason } => format!("stopped: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_render_in_utc() {
        assert_eq!(iso(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_782_941_400);
        assert_eq!(iso(t), "2026-07-01T21:30:00Z");
        assert_eq!(
            iso(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn bars_follow_the_rhythm() {
        let p = HapticPattern {
            segments: vec![
                HapticSegment {
                    duration_ms: 100,
                    intensity: 255,
                },
                HapticSegment {
                    duration_ms: 150,
                    intensity: 0,
                },
                HapticSegment {
                    duration_ms: 50,
                    intensity: 40,
                },
            ],
        };
        assert_eq!(bar(&p), "██···▂");
    }
}
