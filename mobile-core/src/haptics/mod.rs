//! Portable haptics: one pattern format (segments of a duration and an intensity), the capture
//! of a rhythm tapped on a screen, and one renderer per platform, each saying how faithfully
//! it plays the pattern ([`HapticFidelity`]):
//!
//! | platform | renderer | plays | fidelity |
//! | --- | --- | --- | --- |
//! | iPhone | [`core_haptics_rendering`] | continuous `CHHapticEvent`s | exact |
//! | Android, Wear OS with amplitude control | [`android_amplitude_rendering`] | a waveform with amplitudes | exact |
//! | Android, Wear OS without it | [`android_on_off_rendering`] | on/off pulses whose duty follows the intensity | approximate |
//! | Apple Watch | [`watch_rendering`] | timed `WKHapticType`s | approximate or simplified |
//!
//! [`render_for`] and [`haptic_fidelity`] pick the renderer from a [`HapticPlatform`], so the
//! sender can say what the partner's device will play.

mod android;
mod core_haptics;
mod watch;

pub use android::{
    ON_OFF_MIN_OFF_MS, ON_OFF_MIN_ON_MS, ON_OFF_PERIOD_MS, Waveform, WaveformRendering,
    android_amplitude_rendering, android_on_off_rendering, android_waveform, pattern_from_waveform,
};
pub use core_haptics::{
    CoreHapticsRendering, HapticEvent, core_haptics_events, core_haptics_rendering,
};
pub use watch::{
    WATCH_MIN_GAP_MS, WATCH_REPEAT_MS, WatchHaptic, WatchHapticStep, WatchRendering,
    watch_rendering,
};

use tapline_proto::limits;

use crate::model::{HapticPattern, HapticSegment, TapKind};

/// Most segments in a pattern.
pub const MAX_SEGMENTS: usize = limits::RHYTHM_SEGMENTS;
/// Shortest segment, in ms.
pub const MIN_SEGMENT_MS: u32 = *limits::SEGMENT_MS.start();
/// Longest segment, in ms.
pub const MAX_SEGMENT_MS: u32 = *limits::SEGMENT_MS.end();
/// Longest pattern, in ms.
pub const MAX_PATTERN_MS: u32 = limits::RHYTHM_MS;

fn seg(duration_ms: u32, intensity: u8) -> HapticSegment {
    HapticSegment {
        duration_ms,
        intensity,
    }
}

/// The pattern a tap of `kind` plays; a custom tap plays its own `rhythm` (checked and
/// clamped), or a plain tap when it has none.
#[uniffi::export]
pub fn pattern_for(kind: TapKind, rhythm: Option<HapticPattern>) -> HapticPattern {
    let segments = match (kind, rhythm) {
        (TapKind::Custom, Some(r)) => return normalize(r),
        (TapKind::Tap | TapKind::Custom, _) => vec![seg(60, 200)],
        (TapKind::DoubleTap, _) => vec![seg(50, 200), seg(90, 0), seg(50, 200)],
        (TapKind::Heartbeat, _) => vec![
            seg(70, 255),
            seg(110, 0),
            seg(110, 170),
            seg(500, 0),
            seg(70, 255),
            seg(110, 0),
            seg(110, 170),
        ],
        (TapKind::Squeeze, _) => vec![seg(120, 90), seg(400, 230), seg(150, 120)],
        (TapKind::Kiss, _) => vec![seg(30, 255), seg(60, 0), seg(25, 140)],
        (TapKind::Hug, _) => vec![seg(200, 60), seg(250, 130), seg(400, 200), seg(300, 110)],
    };
    HapticPattern { segments }
}

/// The space, together and reconnect patterns stay below this intensity, softer than any tap's peak
/// (checked in tests).
#[cfg(test)]
const SPACE_PEAK: u8 = 100;

/// What a partner's "I need a moment" plays: one slow, low swell and a long fade, distinct
/// from every tap (none is this long and this soft). Its answer ("I'm here", "Take your time")
/// plays [`space_answer_pattern`].
#[uniffi::export]
pub fn space_pattern() -> HapticPattern {
    HapticPattern {
        segments: vec![seg(500, 35), seg(700, 70), seg(900, 45), seg(600, 20)],
    }
}

/// What a partner's answer to a space plays: two soft, slow beats.
#[uniffi::export]
pub fn space_answer_pattern() -> HapticPattern {
    HapticPattern {
        segments: vec![seg(250, 60), seg(350, 0), seg(250, 45)],
    }
}

/// What a partner's proposal of together time plays: two soft, unhurried rises, like a hand
/// held out; as gentle as the space patterns and unlike them and every tap. Starting and
/// ending together time play nothing (phones down).
#[uniffi::export]
pub fn together_pattern() -> HapticPattern {
    HapticPattern {
        segments: vec![
            seg(300, 30),
            seg(300, 60),
            seg(250, 0),
            seg(300, 40),
            seg(400, 75),
            seg(500, 25),
        ],
    }
}

/// What a new reconnect step plays when it comes: one soft rise and a slow, low echo, like a
/// knock on the door; as gentle as the space and together patterns and unlike them.
#[uniffi::export]
pub fn reconnect_step_pattern() -> HapticPattern {
    HapticPattern {
        segments: vec![seg(350, 50), seg(400, 0), seg(600, 30), seg(400, 15)],
    }
}

/// Clamps a pattern into the bounds: at most 32 segments, 10-2000 ms each, 10 s in all.
#[uniffi::export]
pub fn normalize(pattern: HapticPattern) -> HapticPattern {
    let mut total = 0u32;
    let mut segments = Vec::new();
    for s in pattern.segments.into_iter().take(MAX_SEGMENTS) {
        let d = s.duration_ms.clamp(MIN_SEGMENT_MS, MAX_SEGMENT_MS);
        if total + d > MAX_PATTERN_MS {
            let rest = MAX_PATTERN_MS - total;
            if rest >= MIN_SEGMENT_MS {
                segments.push(seg(rest, s.intensity));
            }
            break;
        }
        total += d;
        segments.push(seg(d, s.intensity));
    }
    if segments.iter().all(|s| s.intensity == 0) {
        return pattern_for(TapKind::Tap, None);
    }
    HapticPattern { segments }
}

/// Checks a pattern against the bounds without changing it: 1-32 segments of 10-2000 ms, at
/// most 10 s in all, at least one that vibrates. The error names the rule.
pub fn validate(pattern: &HapticPattern) -> Result<HapticPattern, String> {
    // The server's rule, from the one place both use (the first segments are enough to tell
    // a pattern with too many).
    let segments: Vec<(u32, u32)> = pattern
        .segments
        .iter()
        .take(MAX_SEGMENTS + 1)
        .map(|s| (s.duration_ms, u32::from(s.intensity)))
        .collect();
    limits::rhythm(&segments).map_err(|v| v.to_string())?;
    Ok(pattern.clone())
}

/// How faithfully a device plays a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum HapticFidelity {
    /// Every segment at its time, length and intensity (Core Haptics, amplitude waveforms).
    Exact,
    /// Every beat at its time; intensity (and on a watch, length) only approximated.
    Approximate,
    /// Some beats merged or dropped, or different intensities played alike: "plays a
    /// simplified version".
    Simplified,
}

/// A device class, by what its haptics hardware and API can play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum HapticPlatform {
    /// iPhone: Core Haptics.
    IPhone,
    /// Apple Watch: `WKHapticType`s only (watchOS has no Core Haptics).
    AppleWatch,
    /// Android or Wear OS where `Vibrator.hasAmplitudeControl()` is true.
    AndroidAmplitude,
    /// Android or Wear OS without amplitude control: on or off only.
    AndroidOnOff,
}

/// What one platform plays for a pattern, from [`render_for`].
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum HapticRendering {
    /// Core Haptics events, for an iPhone.
    CoreHaptics {
        /// The events and their fidelity.
        rendering: CoreHapticsRendering,
    },
    /// A waveform for `VibrationEffect.createWaveform`, for Android and Wear OS.
    Android {
        /// The waveform and its fidelity.
        rendering: WaveformRendering,
    },
    /// Timed `WKHapticType`s, for an Apple Watch.
    Watch {
        /// The steps, their fidelity and the gap they keep.
        rendering: WatchRendering,
    },
}

impl HapticRendering {
    /// How faithful this rendering is.
    pub fn fidelity(&self) -> HapticFidelity {
        match self {
            HapticRendering::CoreHaptics { rendering } => rendering.fidelity,
            HapticRendering::Android { rendering } => rendering.fidelity,
            HapticRendering::Watch { rendering } => rendering.fidelity,
        }
    }
}

/// Renders a pattern with the renderer of `platform`.
#[uniffi::export]
pub fn render_for(platform: HapticPlatform, pattern: &HapticPattern) -> HapticRendering {
    match platform {
        HapticPlatform::IPhone => HapticRendering::CoreHaptics {
            rendering: core_haptics_rendering(pattern),
        },
        HapticPlatform::AppleWatch => HapticRendering::Watch {
            rendering: watch_rendering(pattern),
        },
        HapticPlatform::AndroidAmplitude => HapticRendering::Android {
            rendering: android_amplitude_rendering(pattern),
        },
        HapticPlatform::AndroidOnOff => HapticRendering::Android {
            rendering: android_on_off_rendering(pattern),
        },
    }
}

/// How faithfully a device of `platform` plays `pattern`: what the sender's app shows before
/// sending ("Alex's watch plays a simplified version").
#[uniffi::export]
pub fn haptic_fidelity(pattern: &HapticPattern, platform: HapticPlatform) -> HapticFidelity {
    render_for(platform, pattern).fidelity()
}

/// Length of one captured beat, in ms.
const BEAT_MS: u32 = 80;
/// Intensity of a captured beat.
const BEAT_INTENSITY: u8 = 220;

/// Turns the instants (ms since the first touch) at which the user tapped the screen into a
/// valid custom pattern: a beat at each tap, the pauses between them kept (clamped to
/// 10-2000 ms), at most 32 segments and 10 s. Unsorted or repeated instants are tolerated.
#[uniffi::export]
pub fn rhythm_from_taps(tap_times_ms: Vec<u64>) -> HapticPattern {
    let mut times = tap_times_ms;
    times.sort_unstable();
    times.dedup();
    if times.is_empty() {
        return pattern_for(TapKind::Tap, None);
    }
    let mut segments = Vec::new();
    for (i, t) in times.iter().enumerate() {
        if i > 0 {
            let gap = t - times[i - 1];
            let pause = gap
                .saturating_sub(u64::from(BEAT_MS))
                .min(u64::from(MAX_SEGMENT_MS)) as u32;
            if pause >= MIN_SEGMENT_MS {
                segments.push(seg(pause, 0));
            }
        }
        segments.push(seg(BEAT_MS, BEAT_INTENSITY));
    }
    // Never end on a pause, after clamping to the bounds.
    let mut p = normalize(HapticPattern { segments });
    while p.segments.last().is_some_and(|s| s.intensity == 0) {
        p.segments.pop();
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_together_and_reconnect_patterns_are_gentle_valid_and_unlike_any_tap() {
        for p in [
            space_pattern(),
            space_answer_pattern(),
            together_pattern(),
            reconnect_step_pattern(),
        ] {
            assert!(validate(&p).is_ok());
            assert!(p.segments.iter().all(|s| s.intensity <= SPACE_PEAK));
            for kind in [
                TapKind::Tap,
                TapKind::DoubleTap,
                TapKind::Heartbeat,
                TapKind::Squeeze,
                TapKind::Kiss,
                TapKind::Hug,
            ] {
                assert_ne!(p, pattern_for(kind, None));
                let peak = pattern_for(kind, None)
                    .segments
                    .iter()
                    .map(|s| s.intensity)
                    .max();
                assert!(peak > Some(SPACE_PEAK), "{kind:?} is firmer than a space");
            }
        }
        assert_ne!(space_pattern(), space_answer_pattern());
        assert_ne!(together_pattern(), space_pattern());
        assert_ne!(together_pattern(), space_answer_pattern());
        for other in [space_pattern(), space_answer_pattern(), together_pattern()] {
            assert_ne!(reconnect_step_pattern(), other);
        }
    }

    fn total(p: &HapticPattern) -> u32 {
        p.segments.iter().map(|s| s.duration_ms).sum()
    }

    fn valid(p: &HapticPattern) -> bool {
        !p.segments.is_empty()
            && p.segments.len() <= MAX_SEGMENTS
            && p.segments
                .iter()
                .all(|s| (MIN_SEGMENT_MS..=MAX_SEGMENT_MS).contains(&s.duration_ms))
            && total(p) <= MAX_PATTERN_MS
            && p.segments.iter().any(|s| s.intensity > 0)
    }

    #[test]
    fn every_kind_has_a_valid_pattern() {
        for kind in [
            TapKind::Tap,
            TapKind::DoubleTap,
            TapKind::Heartbeat,
            TapKind::Squeeze,
            TapKind::Kiss,
            TapKind::Hug,
            TapKind::Custom,
        ] {
            assert!(valid(&pattern_for(kind, None)), "{kind:?}");
        }
    }

    #[test]
    fn waveforms_round_trip_on_both_platforms() {
        for kind in [TapKind::Heartbeat, TapKind::Hug, TapKind::DoubleTap] {
            let p = pattern_for(kind, None);
            let w = android_waveform(&p);
            assert_eq!(w.timings_ms.len(), w.amplitudes.len());
            assert_eq!(w.timings_ms.iter().sum::<i64>(), i64::from(total(&p)));
            assert_eq!(pattern_from_waveform(&w), p, "Android round trip");
            // Core Haptics plays the same vibrating segments at the same offsets.
            let events = core_haptics_events(&p);
            assert_eq!(
                events.len(),
                p.segments.iter().filter(|s| s.intensity > 0).count()
            );
            let mut t = 0.0;
            let mut k = 0;
            for s in &p.segments {
                if s.intensity > 0 {
                    assert!((events[k].relative_time_s - t).abs() < 1e-9);
                    assert!((events[k].intensity - f32::from(s.intensity) / 255.0).abs() < 1e-6);
                    k += 1;
                }
                t += f64::from(s.duration_ms) / 1000.0;
            }
        }
    }

    #[test]
    fn captured_rhythms_keep_their_timing() {
        let p = rhythm_from_taps(vec![0, 300, 450, 1200]);
        let d: Vec<(u32, u8)> = p
            .segments
            .iter()
            .map(|s| (s.duration_ms, s.intensity))
            .collect();
        assert_eq!(
            d,
            [
                (80, 220),
                (220, 0),
                (80, 220),
                (70, 0),
                (80, 220),
                (670, 0),
                (80, 220)
            ]
        );
        assert!(valid(&p));
    }

    #[test]
    fn captured_rhythms_are_bounded() {
        // 100 taps over a minute: at most 32 segments and 10 s.
        let p = rhythm_from_taps((0..100).map(|i| i * 600).collect());
        assert!(valid(&p), "{p:?}");
        assert_eq!(p.segments.len(), 31, "ends on a beat");
        // Long silences are clamped to 2 s; taps too close together merge into beats.
        let p = rhythm_from_taps(vec![0, 60_000, 60_005, 60_005]);
        assert!(valid(&p));
        assert_eq!(p.segments[1].duration_ms, 2000);
        assert!(valid(&rhythm_from_taps(vec![])));
        assert!(valid(&rhythm_from_taps(vec![5, 3, 1])));
    }

    #[test]
    fn normalize_clamps_out_of_bounds_patterns() {
        let wild = HapticPattern {
            segments: vec![
                seg(5, 255),
                seg(9999, 10),
                seg(3000, 0),
                seg(3000, 40),
                seg(3000, 40),
                seg(3000, 40),
            ],
        };
        let p = normalize(wild);
        assert!(valid(&p), "{p:?}");
        assert_eq!(total(&p), MAX_PATTERN_MS);
        let silent = normalize(HapticPattern {
            segments: vec![seg(100, 0)],
        });
        assert!(valid(&silent));
    }

    const PLATFORMS: [HapticPlatform; 4] = [
        HapticPlatform::IPhone,
        HapticPlatform::AppleWatch,
        HapticPlatform::AndroidAmplitude,
        HapticPlatform::AndroidOnOff,
    ];

    #[test]
    fn every_kind_plays_on_every_platform() {
        let rhythm = rhythm_from_taps(vec![0, 300, 450, 1200]);
        let kinds = [
            TapKind::Tap,
            TapKind::DoubleTap,
            TapKind::Heartbeat,
            TapKind::Squeeze,
            TapKind::Kiss,
            TapKind::Hug,
        ];
        let patterns = kinds
            .iter()
            .map(|k| pattern_for(*k, None))
            .chain([pattern_for(TapKind::Custom, Some(rhythm))]);
        for p in patterns {
            for platform in PLATFORMS {
                let r = render_for(platform, &p);
                // Something is felt, and no longer than the pattern.
                let end = total(&p);
                match &r {
                    HapticRendering::CoreHaptics { rendering } => {
                        assert!(!rendering.events.is_empty());
                        let last = rendering.events.last().unwrap();
                        assert!(last.relative_time_s + last.duration_s <= f64::from(end) / 1e3);
                    }
                    HapticRendering::Android { rendering } => {
                        let w = &rendering.waveform;
                        assert!(w.amplitudes.iter().any(|a| *a > 0));
                        assert_eq!(w.timings_ms.iter().sum::<i64>(), i64::from(end));
                    }
                    HapticRendering::Watch { rendering } => {
                        assert!(!rendering.steps.is_empty());
                        assert!(rendering.steps.iter().all(|s| s.offset_ms < end));
                    }
                }
                assert_eq!(haptic_fidelity(&p, platform), r.fidelity(), "{platform:?}");
            }
        }
    }

    #[test]
    fn fidelity_is_what_the_docs_say() {
        use HapticFidelity::*;
        let of = |kind| PLATFORMS.map(|pl| haptic_fidelity(&pattern_for(kind, None), pl));
        // iPhone and amplitude control: exact. On/off: approximate (softer than full
        // strength). Watch: the heartbeat keeps its four beats and two strengths; the kiss's
        // touches are too close together and merge; the hug plays two strengths alike.
        assert_eq!(
            of(TapKind::Heartbeat),
            [Exact, Approximate, Exact, Approximate]
        );
        assert_eq!(of(TapKind::Kiss), [Exact, Simplified, Exact, Approximate]);
        assert_eq!(of(TapKind::Hug), [Exact, Simplified, Exact, Approximate]);
        // A captured rhythm at one strength, beats well apart: only approximate on a watch.
        let rhythm = rhythm_from_taps(vec![0, 300, 450, 1200]);
        assert_eq!(
            haptic_fidelity(&rhythm, HapticPlatform::AppleWatch),
            Approximate
        );
        // Full strength and silence alone: on/off plays it exactly.
        let plain = HapticPattern {
            segments: vec![seg(100, 255), seg(100, 0), seg(100, 255)],
        };
        assert_eq!(haptic_fidelity(&plain, HapticPlatform::AndroidOnOff), Exact);
    }
}
