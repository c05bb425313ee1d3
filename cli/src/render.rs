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

/// The kind with no article: "heartbeat", "double tap".
pub fn kind_word(k: TapKind) -> &'static str {
    let label = kind_label(k);
    label.strip_prefix("a ").unwrap_or(label)
}

pub fn kind_key(k: TapKind) -> &'static str {
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
    json!({
        "account_id": a.account_id, "device_id": a.device_id, "display_name": a.display_name,
        "time_zone": a.time_zone, "signed_out": a.signed_out,
    })
}

/// "22:00-07:00".
pub fn quiet_span(q: &QuietHours) -> String {
    format!(
        "{:02}:{:02}-{:02}:{:02}",
        q.start_hour, q.start_minute, q.end_hour, q.end_minute
    )
}

fn quiet_json(q: &Option<QuietHours>) -> Value {
    q.map_or(Value::Null, |q| {
        json!({
            "start": format!("{:02}:{:02}", q.start_hour, q.start_minute),
            "end": format!("{:02}:{:02}", q.end_hour, q.end_minute),
        })
    })
}

pub fn partner_json(p: &PartnerInfo) -> Value {
    json!({
        "account_id": p.account_id, "name": p.display_name, "time_zone": p.time_zone,
        "local_time": p.local_time, "utc_offset_seconds": p.utc_offset_seconds,
        "in_quiet_hours": p.in_quiet_hours, "quiet_hours": quiet_json(&p.quiet_hours),
    })
}

pub fn couple_json(c: &CoupleInfo) -> Value {
    json!({
        "couple_id": c.couple_id,
        "partner": partner_json(&c.partner),
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

/// A tap's state in one word.
pub fn state_name(s: &TapState) -> &'static str {
    match s {
        TapState::Queued => "queued",
        TapState::Sent => "sent",
        TapState::Delivered => "delivered",
        TapState::Felt => "felt",
        TapState::Seen => "seen",
        TapState::Refused { .. } => "refused",
    }
}

/// Why a tap or answer was refused, in a few words.
pub fn refusal_words(code: RefusalCode, reason: &str) -> String {
    match code {
        RefusalCode::SignedOut => "this device was signed out".to_owned(),
        RefusalCode::NotPaired => "not paired".to_owned(),
        _ => reason.to_owned(),
    }
}

/// A tap's state in words: "delivered", "refused (not paired)".
pub fn state_words(s: &TapState) -> String {
    match s {
        TapState::Refused { reason, code } => format!("refused ({})", refusal_words(*code, reason)),
        other => state_name(other).to_owned(),
    }
}

/// `{"code": "NOT_PAIRED", "reason": "..."}` for a refusal.
pub fn refusal_json(code: RefusalCode, reason: &str) -> Value {
    json!({ "code": code.as_str(), "reason": reason })
}

pub fn local_tap_json(t: &LocalTap) -> Value {
    json!({
        "client_tap_id": t.client_tap_id, "tap_id": t.tap_id, "kind": kind_key(t.kind), "note": t.note,
        "rhythm": t.rhythm.as_ref().map(pattern_json), "state": state_name(&t.state), "created_at": iso(t.created_at),
        "attempts": t.attempts,
        "refusal": match &t.state { TapState::Refused { reason, code } => refusal_json(*code, reason), _ => Value::Null },
    })
}

pub fn received_json(t: &ReceivedTap) -> Value {
    json!({
        "tap_id": t.tap_id, "kind": kind_key(t.kind), "note": t.note, "rhythm": t.rhythm.as_ref().map(pattern_json),
        "sent_at": iso(t.sent_at), "silent": t.silent, "from_self": t.from_self,
    })
}

pub fn settings_json(s: &Settings) -> Value {
    json!({ "quiet_hours": quiet_json(&s.quiet_hours), "receipts_enabled": s.receipts_enabled })
}

pub fn settings_line(s: &Settings) -> String {
    let quiet = match &s.quiet_hours {
        Some(q) => format!("quiet hours {}", quiet_span(q)),
        None => "no quiet hours".into(),
    };
    format!(
        "Settings: {quiet}; receipts {}.",
        if s.receipts_enabled { "on" } else { "off" }
    )
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
