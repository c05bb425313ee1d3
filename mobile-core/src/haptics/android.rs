//! Android and Wear OS: `VibrationEffect.createWaveform(timings, amplitudes, -1)`.
//!
//! Where `Vibrator.hasAmplitudeControl()` is true, one step per segment plays the pattern
//! exactly ([`android_amplitude_rendering`]). Elsewhere every non-zero amplitude plays at the
//! motor's one strength, so [`android_on_off_rendering`] turns each segment into on/off pulses
//! whose share of on-time (the duty) follows the segment's intensity: the motor's inertia
//! smooths pulses this short into a weaker buzz. Both give a [`Waveform`] the app plays the
//! same way:
//!
//! ```kotlin
//! val effect = VibrationEffect.createWaveform(
//!     r.waveform.timingsMs.toLongArray(), r.waveform.amplitudes.toIntArray(), -1)
//! ```

use super::{HapticFidelity, normalize, seg};
use crate::model::HapticPattern;

/// Nominal on+off period of the on/off rendering, in ms. Short enough that a vibration
/// motor (whose spin-up and spin-down take some tens of ms) smooths the pulses into a
/// steady, weaker buzz instead of separate knocks; long enough to leave room for a pulse
/// and a pause of at least [`ON_OFF_MIN_ON_MS`] and [`ON_OFF_MIN_OFF_MS`].
pub const ON_OFF_PERIOD_MS: u32 = 30;
/// Shortest on-pulse of the on/off rendering, in ms: shorter pulses barely move the motor
/// and fall within the vibrator service's timing jitter. Weak segments therefore play fewer
/// pulses of this length (further apart), and a weak segment too short even for one pulse
/// plays one pulse of this length rather than nothing.
pub const ON_OFF_MIN_ON_MS: u32 = 10;
/// Shortest pause between on-pulses, in ms: a shorter pause is not felt, so a segment strong
/// enough to need one plays continuously instead.
pub const ON_OFF_MIN_OFF_MS: u32 = 10;

/// Arrays for Android's `VibrationEffect.createWaveform(timings, amplitudes, -1)`: the same
/// length, timings in ms, amplitudes 0-255 (0 = off).
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct Waveform {
    /// Duration of each step, in ms.
    pub timings_ms: Vec<i64>,
    /// Amplitude of each step, 0-255.
    pub amplitudes: Vec<i32>,
}

/// A pattern as an Android waveform, with its fidelity.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WaveformRendering {
    /// For `VibrationEffect.createWaveform(timingsMs, amplitudes, -1)`.
    pub waveform: Waveform,
    /// Exact with amplitude control; approximate on/off (exact if the pattern is only full
    /// strength and silence).
    pub fidelity: HapticFidelity,
}

/// The Android waveform of a pattern: one step per segment.
#[uniffi::export]
pub fn android_waveform(pattern: &HapticPattern) -> Waveform {
    Waveform {
        timings_ms: pattern
            .segments
            .iter()
            .map(|s| i64::from(s.duration_ms))
            .collect(),
        amplitudes: pattern
            .segments
            .iter()
            .map(|s| i32::from(s.intensity))
            .collect(),
    }
}

/// The pattern back from an Android waveform (the inverse of [`android_waveform`]).
#[uniffi::export]
pub fn pattern_from_waveform(waveform: &Waveform) -> HapticPattern {
    normalize(HapticPattern {
        segments: waveform
            .timings_ms
            .iter()
            .zip(&waveform.amplitudes)
            .map(|(t, a)| {
                seg(
                    (*t).clamp(0, i64::from(u32::MAX)) as u32,
                    (*a).clamp(0, 255) as u8,
                )
            })
            .collect(),
    })
}

/// The rendering for a vibrator with amplitude control: [`android_waveform`], exact.
#[uniffi::export]
pub fn android_amplitude_rendering(pattern: &HapticPattern) -> WaveformRendering {
    WaveformRendering {
        waveform: android_waveform(pattern),
        fidelity: HapticFidelity::Exact,
    }
}

/// The rendering for a vibrator without amplitude control: amplitudes only 0 or 255, same
/// total length as the pattern. A silent segment stays off; a vibrating one starts with an
/// on-pulse at its start and is cut into pulses about [`ON_OFF_PERIOD_MS`] apart whose
/// on-time is its intensity's share of its length (within a few ms); see the `ON_OFF_*`
/// constants for the limits. Adjacent steps of the same amplitude are joined.
#[uniffi::export]
pub fn android_on_off_rendering(pattern: &HapticPattern) -> WaveformRendering {
    let mut steps = Steps::default();
    for s in &pattern.segments {
        on_off_segment(&mut steps, s.duration_ms, s.intensity);
    }
    let only_full_or_off = pattern
        .segments
        .iter()
        .all(|s| s.intensity == 0 || s.intensity == 255);
    WaveformRendering {
        waveform: steps.0,
        fidelity: if only_full_or_off {
            HapticFidelity::Exact
        } else {
            HapticFidelity::Approximate
        },
    }
}

const ON: i32 = 255;
const OFF: i32 = 0;

/// A waveform under construction, joining steps of the same amplitude.
#[derive(Default)]
struct Steps(Waveform);

impl Steps {
    fn push(&mut self, ms: u32, amplitude: i32) {
        if ms == 0 {
            return;
        }
        let w = &mut self.0;
        if w.amplitudes.last() == Some(&amplitude) {
            *w.timings_ms.last_mut().unwrap() += i64::from(ms);
        } else {
            w.timings_ms.push(i64::from(ms));
            w.amplitudes.push(amplitude);
        }
    }
}

/// One segment as on/off pulses, each pulse on first so a beat starts on time.
fn on_off_segment(steps: &mut Steps, duration_ms: u32, intensity: u8) {
    if intensity == 0 {
        steps.push(duration_ms, OFF);
        return;
    }
    let d = u64::from(duration_ms);
    let on = ((d * u64::from(intensity) + 127) / 255) as u32;
    let off = duration_ms - on;
    if off < ON_OFF_MIN_OFF_MS {
        // Too little pause to feel: play it solid.
        steps.push(duration_ms, ON);
        return;
    }
    if on < ON_OFF_MIN_ON_MS {
        // Too weak (or short) for a full pulse: one shortest pulse, never silence.
        let pulse = ON_OFF_MIN_ON_MS.min(duration_ms);
        steps.push(pulse, ON);
        steps.push(duration_ms - pulse, OFF);
        return;
    }
    // As many periods as fit, but never a pulse or a pause below its minimum: weak segments
    // get fewer, sparser pulses, strong ones fewer, longer pulses.
    let periods = (duration_ms + ON_OFF_PERIOD_MS / 2) / ON_OFF_PERIOD_MS;
    let n = periods
        .max(1)
        .min(on / ON_OFF_MIN_ON_MS)
        .min(off / ON_OFF_MIN_OFF_MS);
    // Spread the totals over the pulses so they sum exactly.
    let share = |total: u32, k: u32| {
        let total = u64::from(total);
        let (k, n) = (u64::from(k), u64::from(n));
        (total * (k + 1) / n - total * k / n) as u32
    };
    for k in 0..n {
        steps.push(share(on, k), ON);
        steps.push(share(off, k), OFF);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MAX_SEGMENT_MS, pattern_for};
    use super::*;
    use crate::model::{HapticSegment, TapKind};

    const KINDS: [TapKind; 7] = [
        TapKind::Tap,
        TapKind::DoubleTap,
        TapKind::Heartbeat,
        TapKind::Squeeze,
        TapKind::Kiss,
        TapKind::Hug,
        TapKind::Custom,
    ];

    fn total(p: &HapticPattern) -> i64 {
        p.segments.iter().map(|s| i64::from(s.duration_ms)).sum()
    }

    /// The on-time of a waveform within `[from, to)` ms.
    fn on_time(w: &Waveform, from: i64, to: i64) -> i64 {
        let mut t = 0;
        let mut on = 0;
        for (d, a) in w.timings_ms.iter().zip(&w.amplitudes) {
            if *a > 0 {
                on += (t + d).min(to).saturating_sub(t.max(from)).max(0);
            }
            t += d;
        }
        on
    }

    /// Whether the waveform vibrates at instant `at`.
    fn is_on_at(w: &Waveform, at: i64) -> bool {
        on_time(w, at, at + 1) == 1
    }

    /// Each segment's measured duty beside its intensity's share, with the segment.
    fn duties<'a>(p: &'a HapticPattern, w: &Waveform) -> Vec<(&'a HapticSegment, f64, f64)> {
        let mut t = 0;
        let mut out = Vec::new();
        for s in &p.segments {
            let d = i64::from(s.duration_ms);
            let duty = on_time(w, t, t + d) as f64 / d as f64;
            out.push((s, duty, f64::from(s.intensity) / 255.0));
            t += d;
        }
        out
    }

    #[test]
    fn amplitude_waveform_is_exact() {
        for kind in KINDS {
            let p = pattern_for(kind, None);
            let r = android_amplitude_rendering(&p);
            assert_eq!(r.fidelity, HapticFidelity::Exact);
            assert_eq!(
                r.waveform.timings_ms.iter().sum::<i64>(),
                total(&p),
                "{kind:?}"
            );
            assert_eq!(
                pattern_from_waveform(&r.waveform),
                p,
                "{kind:?} keeps every step"
            );
        }
    }

    #[test]
    fn on_off_waveform_is_only_on_or_off_and_as_long_as_the_pattern() {
        for kind in KINDS {
            let p = pattern_for(kind, None);
            let r = android_on_off_rendering(&p);
            let w = &r.waveform;
            assert_eq!(w.timings_ms.len(), w.amplitudes.len());
            assert!(
                w.amplitudes.iter().all(|a| *a == 0 || *a == 255),
                "{kind:?}"
            );
            assert!(w.timings_ms.iter().all(|t| *t > 0), "{kind:?}");
            assert_eq!(w.timings_ms.iter().sum::<i64>(), total(&p), "{kind:?}");
            // Every pulse is long enough for the motor to render.
            for (t, a) in w.timings_ms.iter().zip(&w.amplitudes) {
                assert!(
                    *a == 0 || *t >= i64::from(ON_OFF_MIN_ON_MS),
                    "{kind:?}: {w:?}"
                );
            }
            // Each beat starts on time, and no vibrating segment goes silent.
            let mut t = 0;
            for s in &p.segments {
                if s.intensity > 0 {
                    assert!(is_on_at(w, t), "{kind:?} beat at {t} ms");
                    assert!(on_time(w, t, t + i64::from(s.duration_ms)) > 0);
                } else {
                    assert_eq!(on_time(w, t, t + i64::from(s.duration_ms)), 0, "silence");
                }
                t += i64::from(s.duration_ms);
            }
            // Every built-in pattern has a softer-than-full segment, so this is approximate.
            assert_eq!(r.fidelity, HapticFidelity::Approximate, "{kind:?}");
        }
    }

    #[test]
    fn on_off_duty_follows_intensity() {
        // Every intensity on short, medium and longest segments, between silences.
        for d in [100, 400, MAX_SEGMENT_MS] {
            for i in 1..=255u8 {
                let p = HapticPattern {
                    segments: vec![seg(50, 0), seg(d, i), seg(50, 0)],
                };
                let w = android_on_off_rendering(&p).waveform;
                for (s, duty, want) in duties(&p, &w) {
                    // Off by at most one minimum pulse or pause (plus rounding) per segment.
                    let slack = f64::from(ON_OFF_MIN_ON_MS.max(ON_OFF_MIN_OFF_MS) + 1)
                        / f64::from(s.duration_ms);
                    assert!(
                        (duty - want).abs() <= slack,
                        "{s:?}: duty {duty:.3}, intensity {want:.3}"
                    );
                }
            }
        }
        // The built-in patterns too, and a weaker segment always plays less on-time.
        for kind in KINDS {
            let p = pattern_for(kind, None);
            for (s, duty, want) in duties(&p, &android_on_off_rendering(&p).waveform) {
                assert!(
                    (duty - want).abs() <= 0.2,
                    "{kind:?} {s:?}: {duty:.3} vs {want:.3}"
                );
            }
        }
        let duty_at = |i| {
            let p = HapticPattern {
                segments: vec![seg(400, i)],
            };
            duties(&p, &android_on_off_rendering(&p).waveform)[0].1
        };
        assert!(duty_at(60) < duty_at(130) && duty_at(130) < duty_at(200));
        assert_eq!(duty_at(255), 1.0);
    }

    #[test]
    fn on_off_pulses_near_the_nominal_period() {
        // A mid-strength hold becomes a train of pulses, not one long buzz.
        let p = HapticPattern {
            segments: vec![seg(600, 128)],
        };
        let w = android_on_off_rendering(&p).waveform;
        let pulses = w.amplitudes.iter().filter(|a| **a > 0).count() as u32;
        assert_eq!(pulses, 600 / ON_OFF_PERIOD_MS);
        // Full strength and silence alone need no approximation.
        let p = HapticPattern {
            segments: vec![seg(100, 255), seg(100, 0), seg(100, 255)],
        };
        let r = android_on_off_rendering(&p);
        assert_eq!(r.fidelity, HapticFidelity::Exact);
        assert_eq!(r.waveform, android_waveform(&p));
    }
}
