//! The rules of a tap: kinds, custom rhythms and notes.

use tapline_proto::v1::{HapticSegment, Rhythm, SendTapRequest, TapKind};
use uuid::Uuid;

use crate::domain::validate;
use crate::error::{Error, Result};

/// Most segments in a custom rhythm.
pub const MAX_SEGMENTS: usize = 32;
/// Shortest and longest segment, in milliseconds.
pub const SEGMENT_MS: std::ops::RangeInclusive<u32> = 10..=2000;
/// Longest custom rhythm in all, in milliseconds.
pub const MAX_RHYTHM_MS: u32 = 10_000;
/// Strongest intensity.
pub const MAX_INTENSITY: u32 = 255;
/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 80;

/// A validated tap, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTap {
    /// The id the client made.
    pub client_tap_id: Uuid,
    /// A known kind (never unspecified).
    pub kind: TapKind,
    /// Present exactly for custom taps.
    pub rhythm: Option<Rhythm>,
    /// Possibly empty.
    pub note: String,
}

/// Checks a send request against every rule.
pub fn validate_send(req: &SendTapRequest) -> Result<NewTap> {
    let client_tap_id = validate::uuid("client_tap_id", &req.client_tap_id)?;
    let kind = match TapKind::try_from(req.kind) {
        Ok(TapKind::Unspecified) | Err(_) => {
            return Err(Error::invalid(
                "kind",
                "must be one of tap, double tap, heartbeat, squeeze, kiss, hug, custom",
            ));
        }
        Ok(kind) => kind,
    };
    let rhythm = match (kind, &req.rhythm) {
        (TapKind::Custom, Some(r)) => Some(validate_rhythm(r)?),
        (TapKind::Custom, None) => {
            return Err(Error::invalid("rhythm", "is required for a custom tap"));
        }
        (_, Some(_)) => return Err(Error::invalid("rhythm", "is only allowed on a custom tap")),
        (_, None) => None,
    };
    validate::short_text("note", &req.note, MAX_NOTE_CHARS)?;
    Ok(NewTap {
        client_tap_id,
        kind,
        rhythm,
        note: req.note.trim().to_owned(),
    })
}

/// Checks a custom rhythm: 1-32 segments of 10-2000 ms, intensity 0-255, at most 10 s, and at
/// least one segment that vibrates.
pub fn validate_rhythm(r: &Rhythm) -> Result<Rhythm> {
    if r.segments.is_empty() {
        return Err(Error::invalid(
            "rhythm.segments",
            "must have at least one segment",
        ));
    }
    if r.segments.len() > MAX_SEGMENTS {
        return Err(Error::invalid(
            "rhythm.segments",
            format!("must have at most {MAX_SEGMENTS} segments"),
        ));
    }
    let mut total: u32 = 0;
    for (
        i,
        HapticSegment {
            duration_ms,
            intensity,
        },
    ) in r.segments.iter().enumerate()
    {
        if !SEGMENT_MS.contains(duration_ms) {
            return Err(Error::invalid(
                "rhythm.segments.duration_ms",
                format!("segment {i} lasts {duration_ms} ms; each must last 10-2000 ms"),
            ));
        }
        if *intensity > MAX_INTENSITY {
            return Err(Error::invalid(
                "rhythm.segments.intensity",
                format!("segment {i} has intensity {intensity}; it must be 0-255"),
            ));
        }
        total += duration_ms;
    }
    if total > MAX_RHYTHM_MS {
        return Err(Error::invalid(
            "rhythm.segments",
            format!("lasts {total} ms in all; at most {MAX_RHYTHM_MS} ms"),
        ));
    }
    if r.segments.iter().all(|s| s.intensity == 0) {
        return Err(Error::invalid(
            "rhythm.segments",
            "must vibrate at least once (all intensities are 0)",
        ));
    }
    Ok(r.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(duration_ms: u32, intensity: u32) -> HapticSegment {
        HapticSegment {
            duration_ms,
            intensity,
        }
    }

    fn req(kind: TapKind, rhythm: Option<Rhythm>, note: &str) -> SendTapRequest {
        SendTapRequest {
            client_tap_id: Uuid::now_v7().to_string(),
            kind: kind as i32,
            rhythm,
            note: note.into(),
        }
    }

    fn field_of(r: Result<NewTap>) -> &'static str {
        match r {
            Err(Error::InvalidArgument { field, .. }) => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn plain_kinds_are_accepted_with_or_without_note() {
        let t = validate_send(&req(TapKind::Heartbeat, None, " miss you ")).unwrap();
        assert_eq!(t.kind, TapKind::Heartbeat);
        assert_eq!(t.note, "miss you");
        assert!(validate_send(&req(TapKind::Hug, None, "")).is_ok());
    }

    #[test]
    fn kind_must_be_known() {
        assert_eq!(
            field_of(validate_send(&req(TapKind::Unspecified, None, ""))),
            "kind"
        );
        let mut r = req(TapKind::Tap, None, "");
        r.kind = 99;
        assert_eq!(field_of(validate_send(&r)), "kind");
    }

    #[test]
    fn rhythm_only_and_always_on_custom() {
        let rhythm = Rhythm {
            segments: vec![seg(100, 200)],
        };
        assert_eq!(
            field_of(validate_send(&req(TapKind::Custom, None, ""))),
            "rhythm"
        );
        assert_eq!(
            field_of(validate_send(&req(TapKind::Tap, Some(rhythm.clone()), ""))),
            "rhythm"
        );
        assert!(validate_send(&req(TapKind::Custom, Some(rhythm), "")).is_ok());
    }

    #[test]
    fn rhythm_bounds() {
        let ok = Rhythm {
            segments: vec![
                seg(2000, 255),
                seg(10, 0),
                seg(2000, 1),
                seg(2000, 9),
                seg(2000, 9),
                seg(1990, 0),
            ],
        };
        assert!(validate_rhythm(&ok).is_ok(), "exactly 10 s is allowed");
        let cases = [
            (Rhythm { segments: vec![] }, "rhythm.segments"),
            (
                Rhythm {
                    segments: vec![seg(100, 10); 33],
                },
                "rhythm.segments",
            ),
            (
                Rhythm {
                    segments: vec![seg(9, 10)],
                },
                "rhythm.segments.duration_ms",
            ),
            (
                Rhythm {
                    segments: vec![seg(2001, 10)],
                },
                "rhythm.segments.duration_ms",
            ),
            (
                Rhythm {
                    segments: vec![seg(100, 256)],
                },
                "rhythm.segments.intensity",
            ),
            (
                Rhythm {
                    segments: vec![seg(2000, 10); 6],
                },
                "rhythm.segments",
            ),
            (
                Rhythm {
                    segments: vec![seg(100, 0)],
                },
                "rhythm.segments",
            ),
        ];
        for (r, field) in cases {
            match validate_rhythm(&r) {
                Err(Error::InvalidArgument { field: f, .. }) => assert_eq!(f, field, "{r:?}"),
                other => panic!("{r:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn note_is_bounded() {
        assert!(validate_send(&req(TapKind::Kiss, None, &"x".repeat(80))).is_ok());
        assert_eq!(
            field_of(validate_send(&req(TapKind::Kiss, None, &"x".repeat(81)))),
            "note"
        );
        assert_eq!(
            field_of(validate_send(&req(TapKind::Kiss, None, "a\u{0}b"))),
            "note"
        );
    }

    #[test]
    fn client_id_must_be_a_uuid() {
        let mut r = req(TapKind::Tap, None, "");
        r.client_tap_id = "1234".into();
        assert_eq!(field_of(validate_send(&r)), "client_tap_id");
    }
}
