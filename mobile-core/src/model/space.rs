//! "I need a moment": a space one partner asks for, as the apps see it.

use std::time::SystemTime;

use tapline_proto::v1 as pb;

use super::system_time;

/// Why a space was asked for: a fixed, calm set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum SpaceReason {
    /// "I need some space."
    NeedSpace,
    /// "I'm overwhelmed."
    Overwhelmed,
    /// "Call me later."
    CallMeLater,
}

/// The partner's one-tap answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum SpaceAnswer {
    /// "I'm here."
    ImHere,
    /// "Take your time."
    TakeYourTime,
}

/// What happened to a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum SpaceChange {
    /// It was asked for.
    Asked,
    /// The partner answered.
    Answered,
    /// It ended; the taps held for it arrived just before this event (marked `released`).
    Ended,
    /// A change this build does not know.
    Other,
}

/// A space.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SpaceInfo {
    /// The server's id (to answer it).
    pub space_id: String,
    /// Whether this account asked for it (else the partner did).
    pub mine: bool,
    /// Why.
    pub reason: SpaceReason,
    /// When it started.
    pub started_at: SystemTime,
    /// When it ends by itself.
    pub until: SystemTime,
    /// The asker gave no end (it lasts until they end it, 48 hours at most).
    pub open_ended: bool,
    /// When it ended, once it has.
    pub ended_at: Option<SystemTime>,
    /// The partner's latest answer.
    pub answer: Option<SpaceAnswer>,
    /// Taps held for the asker (or delivered when it ended).
    pub held_taps: u32,
}

/// The spaces in force in the couple.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct SpaceState {
    /// This account's own space, if any.
    pub mine: Option<SpaceInfo>,
    /// The partner's, if any: taps sent to them wait until it ends.
    pub partners: Option<SpaceInfo>,
}

impl SpaceReason {
    pub(crate) fn to_wire(self) -> pb::SpaceReason {
        match self {
            SpaceReason::NeedSpace => pb::SpaceReason::NeedSpace,
            SpaceReason::Overwhelmed => pb::SpaceReason::Overwhelmed,
            SpaceReason::CallMeLater => pb::SpaceReason::CallMeLater,
        }
    }

    fn from_wire(v: i32) -> SpaceReason {
        match pb::SpaceReason::try_from(v) {
            Ok(pb::SpaceReason::Overwhelmed) => SpaceReason::Overwhelmed,
            Ok(pb::SpaceReason::CallMeLater) => SpaceReason::CallMeLater,
            // A reason this build does not know reads as the plainest one.
            _ => SpaceReason::NeedSpace,
        }
    }
}

impl SpaceAnswer {
    pub(crate) fn to_wire(self) -> pb::SpaceAnswer {
        match self {
            SpaceAnswer::ImHere => pb::SpaceAnswer::ImHere,
            SpaceAnswer::TakeYourTime => pb::SpaceAnswer::TakeYourTime,
        }
    }

    fn from_wire(v: i32) -> Option<SpaceAnswer> {
        match pb::SpaceAnswer::try_from(v) {
            Ok(pb::SpaceAnswer::ImHere) => Some(SpaceAnswer::ImHere),
            Ok(pb::SpaceAnswer::TakeYourTime) => Some(SpaceAnswer::TakeYourTime),
            _ => None,
        }
    }
}

impl SpaceChange {
    pub(crate) fn from_wire(v: i32) -> SpaceChange {
        match pb::SpaceChange::try_from(v) {
            Ok(pb::SpaceChange::Asked) => SpaceChange::Asked,
            Ok(pb::SpaceChange::Answered) => SpaceChange::Answered,
            Ok(pb::SpaceChange::Ended) => SpaceChange::Ended,
            _ => SpaceChange::Other,
        }
    }
}

impl SpaceInfo {
    pub(crate) fn from_wire(s: &pb::Space, my_account: &str) -> SpaceInfo {
        SpaceInfo {
            space_id: s.space_id.clone(),
            mine: s.asked_by_account_id == my_account,
            reason: SpaceReason::from_wire(s.reason),
            started_at: system_time(s.started_at.as_ref()),
            until: system_time(s.until.as_ref()),
            open_ended: s.open_ended,
            ended_at: s.ended_at.as_ref().map(|t| system_time(Some(t))),
            answer: SpaceAnswer::from_wire(s.answer),
            held_taps: s.held_taps,
        }
    }

    /// Whether it is in force at `now` (not ended, and its `until` not passed).
    pub fn in_force(&self, now: SystemTime) -> bool {
        self.ended_at.is_none() && self.until > now
    }
}

impl SpaceState {
    pub(crate) fn from_wire(s: &pb::GetSpaceResponse, my_account: &str) -> SpaceState {
        SpaceState {
            mine: s.mine.as_ref().map(|x| SpaceInfo::from_wire(x, my_account)),
            partners: s
                .partners
                .as_ref()
                .map(|x| SpaceInfo::from_wire(x, my_account)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn ts(secs: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp {
            seconds: secs,
            nanos: 0,
        })
    }

    #[test]
    fn a_space_reads_from_the_wire_and_knows_whose_it_is() {
        let wire = pb::Space {
            space_id: "s".into(),
            asked_by_account_id: "me".into(),
            reason: pb::SpaceReason::CallMeLater as i32,
            started_at: ts(100),
            until: ts(200),
            open_ended: false,
            ended_at: None,
            answer: pb::SpaceAnswer::ImHere as i32,
            answered_at: ts(150),
            held_taps: 3,
        };
        let mine = SpaceInfo::from_wire(&wire, "me");
        assert!(mine.mine);
        assert_eq!(mine.reason, SpaceReason::CallMeLater);
        assert_eq!(mine.answer, Some(SpaceAnswer::ImHere));
        assert_eq!(mine.held_taps, 3);
        assert!(mine.in_force(UNIX_EPOCH + Duration::from_secs(199)));
        assert!(!mine.in_force(UNIX_EPOCH + Duration::from_secs(200)));
        assert!(!SpaceInfo::from_wire(&wire, "partner").mine);
        let unknown = pb::Space {
            reason: 99,
            answer: 99,
            ..wire
        };
        let s = SpaceInfo::from_wire(&unknown, "me");
        assert_eq!((s.reason, s.answer), (SpaceReason::NeedSpace, None));
    }
}
