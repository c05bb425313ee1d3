//! Apple Watch: watchOS has no Core Haptics. A watch app plays one of the fixed `WKHapticType`s
//! with `WKInterfaceDevice.current().play(_:)`, one at a time, and the system skips one played
//! while the previous is still going. So a pattern becomes a few timed haptics:
//!
//! - a beat (a vibrating segment after a silence, or a change to another strength) plays one
//!   haptic at its start, its type by strength: intensity 1-85 [`WatchHaptic::Click`], 86-170
//!   [`WatchHaptic::Start`], 171-255 [`WatchHaptic::Notification`];
//! - a long beat goes on as a [`WatchHaptic::Click`] every [`WATCH_REPEAT_MS`], so a hold still
//!   feels longer than a tap;
//! - two haptics never start less than [`WATCH_MIN_GAP_MS`] apart: a beat too close to the
//!   previous one is merged into it (at the earlier time, the stronger type), a repeat click
//!   too close to a beat is left out.
//!
//! The app schedules each step at `offsetMs` after the start, e.g. with
//! `DispatchQueue.main.asyncAfter`, and maps the case of the same name to `WKHapticType`.

use super::HapticFidelity;
use crate::model::HapticPattern;

/// Least time between the starts of two watch haptics, in ms. Apple documents no figure, only
/// that haptics play one at a time with a delay between them; a tenth of a second is about
/// the shortest spacing at which consecutive `play(_:)` calls are reliably all felt, and it
/// keeps a heartbeat's two beats (180 ms apart) distinct.
pub const WATCH_MIN_GAP_MS: u32 = 100;
/// Spacing of the clicks that continue a long beat, in ms: twice [`WATCH_MIN_GAP_MS`], so a
/// continuing click never crowds out a real beat and a 2 s hold is ten clicks, not twenty
/// (Apple asks for clicks to be spaced out rather than played in quick succession).
pub const WATCH_REPEAT_MS: u32 = 2 * WATCH_MIN_GAP_MS;
/// Highest intensity played as a click.
const CLICK_MAX: u8 = 85;
/// Highest intensity played as a start.
const START_MAX: u8 = 170;

/// The classic `WKHapticType` cases, named alike. The renderer plays `Click` (light), `Start`
/// (firm) and `Notification` (strongest); the rest complete the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum WatchHaptic {
    /// `.notification`.
    Notification,
    /// `.directionUp`.
    DirectionUp,
    /// `.directionDown`.
    DirectionDown,
    /// `.success`.
    Success,
    /// `.failure`.
    Failure,
    /// `.retry`.
    Retry,
    /// `.start`.
    Start,
    /// `.stop`.
    Stop,
    /// `.click`.
    Click,
}

impl WatchHaptic {
    /// The type played for a beat of `intensity`, none for a silence.
    fn for_intensity(intensity: u8) -> Option<WatchHaptic> {
        if intensity == 0 {
            None
        } else if intensity <= CLICK_MAX {
            Some(WatchHaptic::Click)
        } else if intensity <= START_MAX {
            Some(WatchHaptic::Start)
        } else {
            Some(WatchHaptic::Notification)
        }
    }

    /// How strongly it is felt, for choosing between two that collide.
    fn strength(self) -> u8 {
        match self {
            WatchHaptic::Click => 1,
            WatchHaptic::DirectionUp | WatchHaptic::DirectionDown => 2,
            WatchHaptic::Start | WatchHaptic::Stop => 3,
            WatchHaptic::Success | WatchHaptic::Failure | WatchHaptic::Retry => 4,
            WatchHaptic::Notification => 5,
        }
    }
}

/// One haptic of a watch rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct WatchHapticStep {
    /// When to play it, in ms after the pattern's start.
    pub offset_ms: u32,
    /// What to play.
    pub haptic: WatchHaptic,
}

/// A pattern as timed watch haptics, with its fidelity.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WatchRendering {
    /// In order of offset, never two closer than `min_gap_ms`.
    pub steps: Vec<WatchHapticStep>,
    /// Approximate when every beat plays at its own time and different intensities play as
    /// different types; simplified when beats were merged or different intensities share a
    /// type. Never exact: a watch cannot hold a vibration or set its strength.
    pub fidelity: HapticFidelity,
    /// The gap kept between steps, [`WATCH_MIN_GAP_MS`].
    pub min_gap_ms: u32,
}

/// A haptic that may be played, before the gap is enforced.
struct Candidate {
    offset: u64,
    haptic: WatchHaptic,
    /// A beat of the pattern, not a click continuing one.
    beat: bool,
}

/// The Apple Watch's rendering of a pattern (see the module's rules).
#[uniffi::export]
pub fn watch_rendering(pattern: &HapticPattern) -> WatchRendering {
    // Beats: runs of vibrating segments of one type, as (start, end, type).
    let mut runs: Vec<(u64, u64, WatchHaptic)> = Vec::new();
    // The first intensity seen for each type, to notice different ones played alike.
    let mut seen: Vec<(WatchHaptic, u8)> = Vec::new();
    let mut alike = false;
    let mut t = 0u64;
    let mut in_run = false;
    for s in &pattern.segments {
        let end = t + u64::from(s.duration_ms);
        match WatchHaptic::for_intensity(s.intensity) {
            None => in_run = false,
            Some(h) => {
                match seen.iter().find(|(k, _)| *k == h) {
                    Some((_, i)) => alike |= *i != s.intensity,
                    None => seen.push((h, s.intensity)),
                }
                match runs.last_mut() {
                    Some(run) if in_run && run.2 == h => run.1 = end,
                    _ => runs.push((t, end, h)),
                }
                in_run = true;
            }
        }
        t = end;
    }

    let repeat = u64::from(WATCH_REPEAT_MS);
    let candidates = runs.iter().flat_map(|&(start, end, haptic)| {
        let beat = Candidate {
            offset: start,
            haptic,
            beat: true,
        };
        let clicks = (1..)
            .map(move |k| start + k * repeat)
            .take_while(move |at| *at < end)
            .map(|offset| Candidate {
                offset,
                haptic: WatchHaptic::Click,
                beat: false,
            });
        std::iter::once(beat).chain(clicks)
    });

    let gap = u64::from(WATCH_MIN_GAP_MS);
    let mut kept: Vec<Candidate> = Vec::new();
    let mut merged = false;
    for c in candidates {
        // A continuing click gives way to a beat that follows too soon.
        while c.beat
            && kept
                .last()
                .is_some_and(|last| !last.beat && c.offset - last.offset < gap)
        {
            kept.pop();
        }
        match kept.last_mut() {
            Some(last) if c.offset - last.offset < gap => {
                if c.beat {
                    // Two beats too close: one haptic at the first's time, the stronger type.
                    merged = true;
                    if c.haptic.strength() > last.haptic.strength() {
                        last.haptic = c.haptic;
                    }
                }
            }
            _ => kept.push(c),
        }
    }

    WatchRendering {
        steps: kept
            .into_iter()
            .map(|c| WatchHapticStep {
                offset_ms: u32::try_from(c.offset).unwrap_or(u32::MAX),
                haptic: c.haptic,
            })
            .collect(),
        fidelity: if merged || alike {
            HapticFidelity::Simplified
        } else {
            HapticFidelity::Approximate
        },
        min_gap_ms: WATCH_MIN_GAP_MS,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{pattern_for, seg};
    use super::*;
    use crate::model::TapKind;

    const KINDS: [TapKind; 7] = [
        TapKind::Tap,
        TapKind::DoubleTap,
        TapKind::Heartbeat,
        TapKind::Squeeze,
        TapKind::Kiss,
        TapKind::Hug,
        TapKind::Custom,
    ];

    fn pattern(segments: &[(u32, u8)]) -> HapticPattern {
        HapticPattern {
            segments: segments.iter().map(|&(d, i)| seg(d, i)).collect(),
        }
    }

    /// Where each vibrating segment after a silence (or at the start) begins.
    fn beat_starts(p: &HapticPattern) -> Vec<u32> {
        let mut t = 0;
        let mut quiet = true;
        let mut out = Vec::new();
        for s in &p.segments {
            if s.intensity > 0 && quiet {
                out.push(t);
            }
            quiet = s.intensity == 0;
            t += s.duration_ms;
        }
        out
    }

    /// A deterministic spread of patterns: random-ish lengths (10-400 ms) and intensities.
    fn spread() -> impl Iterator<Item = HapticPattern> {
        let mut x = 0x2545_f491_u32;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        (0..500).map(move |_| {
            let n = 1 + next() % 12;
            HapticPattern {
                segments: (0..n)
                    .map(|_| {
                        let i = if next() % 3 == 0 { 0 } else { next() % 256 };
                        seg(10 + next() % 391, i as u8)
                    })
                    .collect(),
            }
        })
    }

    fn check_gap(r: &WatchRendering, what: &str) {
        assert_eq!(r.min_gap_ms, WATCH_MIN_GAP_MS);
        for pair in r.steps.windows(2) {
            assert!(
                pair[1].offset_ms >= pair[0].offset_ms + r.min_gap_ms,
                "{what}: {:?}",
                r.steps
            );
        }
    }

    #[test]
    fn watch_steps_never_crowd_each_other() {
        for kind in KINDS {
            check_gap(
                &watch_rendering(&pattern_for(kind, None)),
                &format!("{kind:?}"),
            );
        }
        for p in spread() {
            let r = watch_rendering(&p);
            check_gap(&r, &format!("{p:?}"));
            let end: u32 = p.segments.iter().map(|s| s.duration_ms).sum();
            assert!(
                r.steps.iter().all(|s| s.offset_ms < end),
                "within the pattern"
            );
        }
        // Taps 20 ms apart: fewer haptics than taps, so simplified.
        let r = watch_rendering(&pattern(&[
            (10, 200),
            (10, 0),
            (10, 200),
            (10, 0),
            (10, 200),
        ]));
        check_gap(&r, "burst");
        assert_eq!(r.steps.len(), 1);
        assert_eq!(r.fidelity, HapticFidelity::Simplified);
    }

    #[test]
    fn watch_types_follow_strength() {
        let first = |i| watch_rendering(&pattern(&[(80, i)])).steps[0];
        assert_eq!(first(255).haptic, WatchHaptic::Notification);
        assert_eq!(first(140).haptic, WatchHaptic::Start);
        assert_eq!(first(30).haptic, WatchHaptic::Click);
        assert_eq!(first(255).offset_ms, 0);
        // Stronger never plays weaker.
        for i in 1..255u8 {
            assert!(first(i).haptic.strength() <= first(i + 1).haptic.strength());
        }
        // A soft lead-in merged with a strong beat plays the strong type, on time.
        let r = watch_rendering(&pattern(&[(40, 30), (60, 255)]));
        assert_eq!(r.steps.len(), 1);
        assert_eq!(r.steps[0].haptic, WatchHaptic::Notification);
        assert_eq!(r.steps[0].offset_ms, 0);
        // Growing stronger without a pause is a new beat.
        let r = watch_rendering(&pattern(&[(150, 60), (150, 240)]));
        let beats: Vec<_> = r.steps.iter().map(|s| (s.offset_ms, s.haptic)).collect();
        assert_eq!(
            beats,
            [(0, WatchHaptic::Click), (150, WatchHaptic::Notification)]
        );
    }

    #[test]
    fn watch_keeps_a_heartbeat_and_simplifies_a_kiss() {
        // Lub-dub twice: four beats at their own times, strong then softer.
        let p = pattern_for(TapKind::Heartbeat, None);
        let r = watch_rendering(&p);
        let at: Vec<u32> = r.steps.iter().map(|s| s.offset_ms).collect();
        assert_eq!(at, beat_starts(&p));
        assert!(r.steps[0].haptic.strength() > r.steps[1].haptic.strength());
        assert_eq!(r.fidelity, HapticFidelity::Approximate);
        // A kiss's two touches are 90 ms apart: one haptic.
        let r = watch_rendering(&pattern_for(TapKind::Kiss, None));
        assert_eq!(r.steps.len(), 1);
        assert_eq!(r.fidelity, HapticFidelity::Simplified);
    }

    #[test]
    fn watch_holds_go_on_as_clicks() {
        let tap = watch_rendering(&pattern(&[(60, 200)]));
        let hold = watch_rendering(&pattern(&[(2000, 200)]));
        assert_eq!(tap.steps.len(), 1);
        assert_eq!(hold.steps[0].haptic, WatchHaptic::Notification);
        assert_eq!(hold.steps.len() as u32, 2000 / WATCH_REPEAT_MS);
        assert!(
            hold.steps[1..]
                .iter()
                .all(|s| s.haptic == WatchHaptic::Click)
        );
        check_gap(&hold, "hold");
        // Continuing clicks never push out a beat, and losing them is not a simplification.
        let r = watch_rendering(&pattern(&[(250, 200), (30, 0), (60, 200)]));
        let at: Vec<u32> = r.steps.iter().map(|s| s.offset_ms).collect();
        assert_eq!(at, [0, 280]);
        assert_eq!(r.fidelity, HapticFidelity::Approximate);
    }

    #[test]
    fn watch_fidelity_is_honest() {
        for p in spread().chain(KINDS.map(|k| pattern_for(k, None))) {
            let r = watch_rendering(&p);
            assert_ne!(r.fidelity, HapticFidelity::Exact);
            if r.fidelity == HapticFidelity::Approximate {
                // Every beat after a silence plays at its own time...
                for start in beat_starts(&p) {
                    assert!(r.steps.iter().any(|s| s.offset_ms == start), "{p:?}");
                }
                // ...and different intensities never play as the same type.
                for a in &p.segments {
                    for b in &p.segments {
                        let (ha, hb) = (
                            WatchHaptic::for_intensity(a.intensity),
                            WatchHaptic::for_intensity(b.intensity),
                        );
                        assert!(a.intensity == b.intensity || ha != hb || ha.is_none());
                    }
                }
            }
        }
        // Different strengths in one tier are played alike: simplified.
        let r = watch_rendering(&pattern(&[(100, 180), (200, 0), (100, 250)]));
        assert_eq!(r.fidelity, HapticFidelity::Simplified);
        assert_eq!(r.steps.len(), 2);
    }
}
