//! Together time (phones down, taps kept quietly until it ends) and the next time we meet, as
//! the apps see them: from this account's point of view.

use std::time::SystemTime;

use tapline_proto::v1 as pb;

use super::system_time;

/// How together time ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum TogetherEnd {
    /// A partner ended it by hand.
    ByHand,
    /// It reached its `until`.
    AtUntil,
    /// The proposer withdrew the proposal before it was confirmed.
    Withdrawn,
    /// The partner declined the proposal.
    Declined,
    /// Nobody confirmed the proposal within 30 minutes.
    NotConfirmed,
    /// The couple ended.
    CoupleEnded,
    /// An end this build does not know.
    Other,
}

/// What happened to together time or the next meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum TogetherChange {
    /// Together time was proposed: the partner can confirm it.
    Proposed,
    /// It was confirmed, or a meeting's time came: together time is in force.
    Started,
    /// It ended (see [`TogetherInfo::end`]); the kept taps arrived just before this event,
    /// silent and marked `released`.
    Ended,
    /// The next meeting was set or replaced.
    MeetingSet,
    /// The next meeting was cleared by a partner.
    MeetingCleared,
    /// A change this build does not know.
    Other,
}

/// Together time, proposed, in force or ended.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TogetherInfo {
    /// The server's id (to confirm it).
    pub together_id: String,
    /// Whether this account proposed it (for a meeting that turned into together time: set
    /// the meeting); else the partner did.
    pub started_by_me: bool,
    /// When it was proposed.
    pub proposed_at: SystemTime,
    /// When it was confirmed, once it was.
    pub confirmed_at: Option<SystemTime>,
    /// While proposed: when the proposal lapses. Once confirmed: when it ends by itself.
    pub until: SystemTime,
    /// How long it lasts once confirmed, 15-1440 minutes.
    pub minutes: u32,
    /// Confirmed and not ended (as last heard; see [`TogetherInfo::in_force_at`] for a given
    /// instant).
    pub in_force: bool,
    /// Proposed by the partner, neither confirmed nor ended: this account can confirm it.
    pub awaits_my_confirmation: bool,
    /// When it ended, once it has.
    pub ended_at: Option<SystemTime>,
    /// How it ended, once it has.
    pub end: Option<TogetherEnd>,
    /// This account ended it by hand, withdrew or declined.
    pub ended_by_me: bool,
    /// Taps kept so far (in force), or delivered when it ended, in both directions.
    pub held_taps: u32,
    /// The meeting it started from, if any.
    pub meeting_id: Option<String>,
}

/// The next time the two meet: a date and time on the clock of a named zone.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MeetingInfo {
    /// The server's id.
    pub meeting_id: String,
    /// Whether this account set it (else the partner did).
    pub set_by_me: bool,
    /// The local date in `time_zone`, as set: "YYYY-MM-DD".
    pub local_date: String,
    /// The local time in `time_zone`, as set: "HH:MM".
    pub local_time: String,
    /// The IANA zone the date and time are read in.
    pub time_zone: String,
    /// The same moment as an instant (a local time skipped by a clock change moves to the
    /// first minute after it).
    pub starts_at: SystemTime,
    /// How long the together time it turns into lasts, 15-1440 minutes.
    pub together_minutes: u32,
    /// When it was set.
    pub set_at: SystemTime,
}

/// The couple's together time (proposed or in force) and next meeting.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct TogetherState {
    /// Together time proposed or in force, if any.
    pub together: Option<TogetherInfo>,
    /// The next time we meet, if set.
    pub meeting: Option<MeetingInfo>,
}

impl TogetherEnd {
    fn from_wire(v: i32) -> Option<TogetherEnd> {
        Some(match pb::TogetherEnd::try_from(v) {
            Ok(pb::TogetherEnd::Unspecified) => return None,
            Ok(pb::TogetherEnd::ByHand) => TogetherEnd::ByHand,
            Ok(pb::TogetherEnd::AtUntil) => TogetherEnd::AtUntil,
            Ok(pb::TogetherEnd::Withdrawn) => TogetherEnd::Withdrawn,
            Ok(pb::TogetherEnd::Declined) => TogetherEnd::Declined,
            Ok(pb::TogetherEnd::NotConfirmed) => TogetherEnd::NotConfirmed,
            Ok(pb::TogetherEnd::CoupleEnded) => TogetherEnd::CoupleEnded,
            Err(_) => TogetherEnd::Other,
        })
    }
}

impl TogetherChange {
    pub(crate) fn from_wire(v: i32) -> TogetherChange {
        match pb::TogetherChange::try_from(v) {
            Ok(pb::TogetherChange::Proposed) => TogetherChange::Proposed,
            Ok(pb::TogetherChange::Started) => TogetherChange::Started,
            Ok(pb::TogetherChange::Ended) => TogetherChange::Ended,
            Ok(pb::TogetherChange::MeetingSet) => TogetherChange::MeetingSet,
            Ok(pb::TogetherChange::MeetingCleared) => TogetherChange::MeetingCleared,
            _ => TogetherChange::Other,
        }
    }
}

fn some_time(ts: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    ts.map(|t| system_time(Some(t)))
}

impl TogetherInfo {
    pub(crate) fn from_wire(t: &pb::Together, my_account: &str) -> TogetherInfo {
        let started_by_me = t.started_by_account_id == my_account;
        let confirmed_at = some_time(t.confirmed_at.as_ref());
        let ended_at = some_time(t.ended_at.as_ref());
        // An end is set with `ended_at`; a proposal that ended says how, even from a server
        // that sent no end.
        let end = TogetherEnd::from_wire(t.end)
            .or_else(|| ended_at.is_some().then_some(TogetherEnd::Other));
        TogetherInfo {
            together_id: t.together_id.clone(),
            started_by_me,
            proposed_at: system_time(t.proposed_at.as_ref()),
            confirmed_at,
            until: system_time(t.until.as_ref()),
            minutes: t.minutes,
            in_force: confirmed_at.is_some() && ended_at.is_none(),
            awaits_my_confirmation: !started_by_me && confirmed_at.is_none() && ended_at.is_none(),
            ended_at,
            end,
            ended_by_me: !t.ended_by_account_id.is_empty() && t.ended_by_account_id == my_account,
            held_taps: t.held_taps,
            meeting_id: (!t.meeting_id.is_empty()).then(|| t.meeting_id.clone()),
        }
    }

    /// Whether it is proposed or in force at `now`: not ended, and its `until` (the
    /// proposal's lapse, or the end of together time) not passed.
    pub fn current_at(&self, now: SystemTime) -> bool {
        self.ended_at.is_none() && self.until > now
    }

    /// Whether together time is in force at `now`: confirmed, not ended, `until` not passed.
    pub fn in_force_at(&self, now: SystemTime) -> bool {
        self.in_force && self.current_at(now)
    }
}

impl MeetingInfo {
    pub(crate) fn from_wire(m: &pb::Meeting, my_account: &str) -> MeetingInfo {
        MeetingInfo {
            meeting_id: m.meeting_id.clone(),
            set_by_me: m.set_by_account_id == my_account,
            local_date: m.local_date.clone(),
            local_time: m.local_time.clone(),
            time_zone: m.time_zone.clone(),
            starts_at: system_time(m.starts_at.as_ref()),
            together_minutes: m.together_minutes,
            set_at: system_time(m.set_at.as_ref()),
        }
    }
}

impl TogetherState {
    pub(crate) fn from_wire(s: &pb::GetTogetherResponse, my_account: &str) -> TogetherState {
        TogetherState {
            together: s
                .together
                .as_ref()
                .map(|t| TogetherInfo::from_wire(t, my_account)),
            meeting: s
                .meeting
                .as_ref()
                .map(|m| MeetingInfo::from_wire(m, my_account)),
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

    fn proposal() -> pb::Together {
        pb::Together {
            together_id: "t".into(),
            started_by_account_id: "me".into(),
            proposed_at: ts(100),
            confirmed_at: None,
            until: ts(1900),
            minutes: 120,
            ended_at: None,
            end: pb::TogetherEnd::Unspecified as i32,
            ended_by_account_id: String::new(),
            held_taps: 0,
            meeting_id: String::new(),
        }
    }

    #[test]
    fn a_proposal_awaits_the_partners_confirmation_only() {
        let mine = TogetherInfo::from_wire(&proposal(), "me");
        assert!(mine.started_by_me && !mine.in_force && !mine.awaits_my_confirmation);
        assert_eq!((mine.end, mine.meeting_id.as_deref()), (None, None));
        let theirs = TogetherInfo::from_wire(&proposal(), "partner");
        assert!(!theirs.started_by_me && theirs.awaits_my_confirmation);
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert!(theirs.current_at(at(1899)) && !theirs.current_at(at(1900)));
        assert!(!theirs.in_force_at(at(200)), "proposed, not in force");
    }

    #[test]
    fn together_time_reads_in_force_then_ended_with_who_ended_it() {
        let confirmed = pb::Together {
            confirmed_at: ts(200),
            until: ts(200 + 7200),
            held_taps: 2,
            meeting_id: "m".into(),
            ..proposal()
        };
        let t = TogetherInfo::from_wire(&confirmed, "partner");
        assert!(t.in_force && !t.awaits_my_confirmation);
        assert!(t.in_force_at(UNIX_EPOCH + Duration::from_secs(7399)));
        assert!(!t.in_force_at(UNIX_EPOCH + Duration::from_secs(7400)));
        assert_eq!(t.meeting_id.as_deref(), Some("m"));
        let ended = pb::Together {
            ended_at: ts(300),
            end: pb::TogetherEnd::ByHand as i32,
            ended_by_account_id: "partner".into(),
            ..confirmed.clone()
        };
        let t = TogetherInfo::from_wire(&ended, "partner");
        assert!(!t.in_force && t.ended_by_me);
        assert_eq!((t.end, t.held_taps), (Some(TogetherEnd::ByHand), 2));
        assert!(!TogetherInfo::from_wire(&ended, "me").ended_by_me);
        // An end this build does not know, or none from an older server, still reads as ended.
        for end in [99, 0] {
            let t = TogetherInfo::from_wire(
                &pb::Together {
                    end,
                    ..ended.clone()
                },
                "me",
            );
            assert_eq!(t.end, Some(TogetherEnd::Other));
        }
    }

    #[test]
    fn a_meeting_reads_from_the_wire_and_knows_who_set_it() {
        let wire = pb::Meeting {
            meeting_id: "m".into(),
            set_by_account_id: "me".into(),
            local_date: "2026-12-18".into(),
            local_time: "19:30".into(),
            time_zone: "America/Los_Angeles".into(),
            starts_at: ts(1_797_651_000),
            together_minutes: 180,
            set_at: ts(100),
        };
        let m = MeetingInfo::from_wire(&wire, "me");
        assert!(m.set_by_me);
        assert_eq!(
            (m.local_date.as_str(), m.local_time.as_str()),
            ("2026-12-18", "19:30")
        );
        assert_eq!(m.starts_at, UNIX_EPOCH + Duration::from_secs(1_797_651_000));
        assert!(!MeetingInfo::from_wire(&wire, "partner").set_by_me);
        assert_eq!(
            TogetherChange::from_wire(pb::TogetherChange::MeetingCleared as i32),
            TogetherChange::MeetingCleared
        );
        assert_eq!(TogetherChange::from_wire(99), TogetherChange::Other);
    }
}
