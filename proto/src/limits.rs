//! The input rules both the server and the client core enforce, written once.
//!
//! Lengths are counted in **user-perceived characters**: extended grapheme clusters (Unicode
//! UAX #29), what Swift's `String.count` shows and what a person counts. "👍🏽", "🇫🇷" and "é"
//! written as `e` + combining accent are one character each. (Kotlin's `String.length` counts
//! UTF-16 units and Rust's `chars()` code points; neither is used.) Text is trimmed of
//! surrounding white space first, then measured, and may not contain control characters or
//! line breaks. Every check reports the field it was about and the rule it broke.

use std::ops::RangeInclusive;

use unicode_segmentation::UnicodeSegmentation;

/// Longest tap note.
pub const NOTE_CHARS: usize = 80;
/// Longest display name, device name or routine name.
pub const NAME_CHARS: usize = 40;
/// Longest reminder text of a routine.
pub const REMINDER_CHARS: usize = 120;
/// Longest free-text check-in answer.
pub const ANSWER_TEXT_CHARS: usize = 280;
/// Longest quick-reply label of a prompt.
pub const QUICK_REPLY_CHARS: usize = 18;
/// Most segments in a custom rhythm.
pub const RHYTHM_SEGMENTS: usize = 32;
/// Shortest and longest rhythm segment, in milliseconds.
pub const SEGMENT_MS: RangeInclusive<u32> = 10..=2000;
/// Longest custom rhythm in all, in milliseconds.
pub const RHYTHM_MS: u32 = 10_000;
/// Strongest segment intensity (0 is a pause).
pub const MAX_INTENSITY: u32 = 255;
/// Longest streak pause, in days (both ends included).
pub const PAUSE_DAYS: i64 = 14;
/// Latest start of a streak pause, in days from today.
pub const PAUSE_LEAD_DAYS: i64 = 14;

/// A broken rule: the field, and the rule in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The request field, e.g. `note` or `rhythm.segments.duration_ms`.
    pub field: &'static str,
    /// What the rule is, e.g. "must be at most 80 characters".
    pub rule: String,
}

impl Violation {
    /// A violation of `field`.
    pub fn new(field: &'static str, rule: impl Into<String>) -> Violation {
        Violation {
            field,
            rule: rule.into(),
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}

impl std::error::Error for Violation {}

/// The length of `s` in user-perceived characters (extended grapheme clusters).
pub fn char_count(s: &str) -> usize {
    s.graphemes(true).count()
}

/// Single-line text of at most `max` characters once trimmed (empty allowed); returns it
/// trimmed.
pub fn short_text(field: &'static str, input: &str, max: usize) -> Result<String, Violation> {
    let text = input.trim();
    // A grapheme cluster is rarely over 32 bytes; refusing by bytes first keeps a huge string
    // from being segmented at all.
    if text.len() > max.saturating_mul(32) || char_count(text) > max {
        return Err(Violation::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(Violation::new(
            field,
            "must not contain control characters or line breaks",
        ));
    }
    Ok(text.to_owned())
}

/// Like [`short_text`], and not empty.
pub fn required_text(field: &'static str, input: &str, max: usize) -> Result<String, Violation> {
    let text = short_text(field, input, max)?;
    if text.is_empty() {
        return Err(Violation::new(field, "must not be empty"));
    }
    Ok(text)
}

/// A tap note: at most [`NOTE_CHARS`], one line; returned trimmed.
pub fn note(input: &str) -> Result<String, Violation> {
    short_text("note", input, NOTE_CHARS)
}

/// A custom rhythm given as `(duration_ms, intensity)` per segment: 1 to [`RHYTHM_SEGMENTS`]
/// segments, each lasting [`SEGMENT_MS`] with intensity 0 to [`MAX_INTENSITY`], at most
/// [`RHYTHM_MS`] in all, and at least one segment that vibrates.
pub fn rhythm(segments: &[(u32, u32)]) -> Result<(), Violation> {
    if segments.is_empty() {
        return Err(Violation::new(
            "rhythm.segments",
            "must have at least one segment",
        ));
    }
    if segments.len() > RHYTHM_SEGMENTS {
        return Err(Violation::new(
            "rhythm.segments",
            format!("must have at most {RHYTHM_SEGMENTS} segments"),
        ));
    }
    let (low, high) = (SEGMENT_MS.start(), SEGMENT_MS.end());
    let mut total: u32 = 0;
    for (i, &(duration_ms, intensity)) in segments.iter().enumerate() {
        if !SEGMENT_MS.contains(&duration_ms) {
            return Err(Violation::new(
                "rhythm.segments.duration_ms",
                format!("segment {i} lasts {duration_ms} ms; each must last {low}-{high} ms"),
            ));
        }
        if intensity > MAX_INTENSITY {
            return Err(Violation::new(
                "rhythm.segments.intensity",
                format!("segment {i} has intensity {intensity}; it must be 0-{MAX_INTENSITY}"),
            ));
        }
        total += duration_ms;
    }
    if total > RHYTHM_MS {
        return Err(Violation::new(
            "rhythm.segments",
            format!("lasts {total} ms in all; at most {RHYTHM_MS} ms"),
        ));
    }
    if segments.iter().all(|&(_, intensity)| intensity == 0) {
        return Err(Violation::new(
            "rhythm.segments",
            "must vibrate at least once (all intensities are 0)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_are_what_a_person_counts() {
        assert_eq!(char_count("Sam"), 3);
        // A skin-toned thumb, a flag, a family, an accent written as two code points.
        assert_eq!(char_count("👍🏽"), 1);
        assert_eq!(char_count("🇫🇷"), 1);
        assert_eq!(char_count("👨‍👩‍👧"), 1);
        assert_eq!(char_count("e\u{301}"), 1);
        // 80 flags fit in a note, though they are 160 code points.
        let flags = "🇫🇷".repeat(80);
        assert_eq!(note(&flags).unwrap(), flags);
        assert!(note(&"🇫🇷".repeat(81)).is_err());
    }

    #[test]
    fn text_is_trimmed_then_measured_and_kept_on_one_line() {
        let padded = format!("  {}  ", "a".repeat(NOTE_CHARS));
        assert_eq!(note(&padded).unwrap(), "a".repeat(NOTE_CHARS));
        let err = note("two\nlines").unwrap_err();
        assert_eq!(err.field, "note");
        assert!(err.rule.contains("line breaks"));
        assert_eq!(
            note(&"a".repeat(NOTE_CHARS + 1)).unwrap_err().to_string(),
            "note: must be at most 80 characters"
        );
        assert!(required_text("display_name", "   ", NAME_CHARS).is_err());
        // A megabyte of text is refused without being segmented.
        assert!(note(&"a".repeat(1 << 20)).is_err());
    }

    #[test]
    fn rhythms_are_bounded_and_must_vibrate() {
        assert!(rhythm(&[(100, 200), (50, 0), (100, 255)]).is_ok());
        assert_eq!(rhythm(&[]).unwrap_err().field, "rhythm.segments");
        assert_eq!(
            rhythm(&[(5, 200)]).unwrap_err().field,
            "rhythm.segments.duration_ms"
        );
        assert_eq!(
            rhythm(&[(100, 256)]).unwrap_err().field,
            "rhythm.segments.intensity"
        );
        assert!(rhythm(&[(2000, 100); 6]).is_err(), "12 s in all");
        assert!(rhythm(&[(100, 100); 33]).is_err());
        assert!(rhythm(&[(100, 0)]).unwrap_err().rule.contains("vibrate"));
    }
}
