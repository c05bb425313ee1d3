//! iPhone: Core Haptics plays a pattern exactly, one continuous event per vibrating segment.

use super::HapticFidelity;
use crate::model::HapticPattern;

/// One Core Haptics continuous event (`CHHapticEvent`, `.hapticContinuous`).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct HapticEvent {
    /// Start, relative to the pattern's start, in seconds.
    pub relative_time_s: f64,
    /// Length in seconds.
    pub duration_s: f64,
    /// `hapticIntensity`, 0.0-1.0.
    pub intensity: f32,
}

/// A pattern as Core Haptics events, with its fidelity.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CoreHapticsRendering {
    /// The events, for one `CHHapticPattern(events:parameters:)`.
    pub events: Vec<HapticEvent>,
    /// Always [`HapticFidelity::Exact`]: every segment keeps its time, length and intensity.
    pub fidelity: HapticFidelity,
}

/// The Core Haptics events of a pattern: one continuous event per vibrating segment.
#[uniffi::export]
pub fn core_haptics_events(pattern: &HapticPattern) -> Vec<HapticEvent> {
    let mut t = 0u64;
    let mut events = Vec::new();
    for s in &pattern.segments {
        if s.intensity > 0 {
            events.push(HapticEvent {
                relative_time_s: t as f64 / 1000.0,
                duration_s: f64::from(s.duration_ms) / 1000.0,
                intensity: f32::from(s.intensity) / 255.0,
            });
        }
        t += u64::from(s.duration_ms);
    }
    events
}

/// The iPhone's rendering: [`core_haptics_events`], exact.
#[uniffi::export]
pub fn core_haptics_rendering(pattern: &HapticPattern) -> CoreHapticsRendering {
    CoreHapticsRendering {
        events: core_haptics_events(pattern),
        fidelity: HapticFidelity::Exact,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{pattern_for, seg};
    use super::*;
    use crate::model::TapKind;

    #[test]
    fn core_haptics_plays_every_segment_at_its_time_and_strength() {
        for kind in [TapKind::Heartbeat, TapKind::Hug, TapKind::Kiss] {
            let p = pattern_for(kind, None);
            let r = core_haptics_rendering(&p);
            assert_eq!(r.fidelity, HapticFidelity::Exact);
            // Walk the pattern: each vibrating segment is one event at its start, for its
            // length, at its intensity; the silences are the gaps between events.
            let mut events = r.events.iter();
            let mut t = 0.0;
            for s in &p.segments {
                let d = f64::from(s.duration_ms) / 1000.0;
                if s.intensity > 0 {
                    let e = events.next().expect("an event per vibrating segment");
                    assert!((e.relative_time_s - t).abs() < 1e-9, "{kind:?} start");
                    assert!((e.duration_s - d).abs() < 1e-9, "{kind:?} length");
                    assert!((e.intensity - f32::from(s.intensity) / 255.0).abs() < 1e-6);
                }
                t += d;
            }
            assert!(events.next().is_none(), "no event for a silence");
            let last = r.events.last().unwrap();
            let end = p.segments.iter().map(|s| s.duration_ms).sum::<u32>();
            let ends_silent = p.segments.last().unwrap().intensity == 0;
            if !ends_silent {
                let played = last.relative_time_s + last.duration_s;
                assert!(
                    (played - f64::from(end) / 1000.0).abs() < 1e-9,
                    "sums to the pattern"
                );
            }
        }
        // Full strength is 1.0, a silence plays nothing.
        let r = core_haptics_rendering(&crate::model::HapticPattern {
            segments: vec![seg(50, 255), seg(50, 0)],
        });
        assert_eq!(r.events.len(), 1);
        assert_eq!(r.events[0].intensity, 1.0);
    }
}
