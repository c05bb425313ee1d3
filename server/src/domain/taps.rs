//! The rules of a tap: kinds, custom rhythms and notes.

use tapline_proto::limits;
use tapline_proto::v1::{Rhythm, SendTapRequest, TapKind};
use uuid::Uuid;

use crate::domain::validate;
use crate::error::{Error, Result};

pub use tapline_proto::limits::{
    MAX_INTENSITY, NOTE_CHARS as MAX_NOTE_CHARS, RHYTHM_MS as MAX_RHYTHM_MS,
    RHYTHM_SEGMENTS as MAX_SEGMENTS, SEGMENT_MS,
};

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
    let note = limits::note(&req.note).map_err(validate::violation)?;
    Ok(NewTap {
        client_tap_id,
        kind,
        rhythm,
        note,
    })
}

/// Checks a custom rhythm: 1-32 segments of 10-2000 ms, intensity 0-255, at most 10 s, and at
/// least one segment that vibrates.
pub fn validate_rhythm(r: &Rhythm) -> Result<Rhythm> {
    let segments: Vec<(u32, u32)> = r
        .segments
        .iter()
        .take(MAX_SEGMENTS + 1)
        .map(|s| (s.duration_ms, s.intensity))
        .collect();
    limits::rhythm(&segments).map_err(validate::violation)?;
    Ok(r.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_proto::v1::HapticSegment;

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
