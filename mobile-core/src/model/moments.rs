//! Moments kept for both (a partner's note or answer, copied when kept) and the weekly recap,
//! with its days also laid out as series ready to plot.

use std::time::SystemTime;

use tapline_proto::v1 as pb;

use super::{DayStatus, system_time};

/// What a moment was kept from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum MomentKind {
    /// A tap's note.
    Note,
    /// An answer to a check-in.
    Answer,
    /// An answer to an appreciation or gratitude prompt.
    Appreciation,
    /// A kind this build does not know.
    Other,
}

/// A moment, as this account sees it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MomentInfo {
    /// The server's id (to let it go).
    pub moment_id: String,
    pub kind: MomentKind,
    /// This account kept it (and so may let it go); else the partner did.
    pub kept_by_me: bool,
    /// This account wrote the words (the partner kept them).
    pub written_by_me: bool,
    /// The note, or the answer in words.
    pub text: String,
    /// For answers: the prompt it answered.
    pub prompt_text: Option<String>,
    /// The tap or check-in it came from.
    pub source_id: String,
    /// When the note was sent or the check-in opened.
    pub happened_at: SystemTime,
    pub kept_at: SystemTime,
}

/// What keeping a moment did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct KeptMoment {
    pub moment: MomentInfo,
    /// It was kept already (nothing changed).
    pub already_kept: bool,
}

/// One page of moments, newest kept first.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MomentsPage {
    pub moments: Vec<MomentInfo>,
    /// For the next page; none on the last.
    pub next_page_token: Option<String>,
}

/// One local date of a recap, on this account's calendar.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RecapDayInfo {
    /// "YYYY-MM-DD".
    pub date: String,
    /// How the streak saw it (`Open` while it is still live); `None` before the couple's first
    /// day, or past the latest date either partner has reached.
    pub status: Option<DayStatus>,
    /// The date was connected.
    pub connected: bool,
    pub taps_sent: u32,
    pub taps_received: u32,
    /// Check-ins opened on the date.
    pub checkins: u32,
    /// Mood and energy answers, 1-5 (the latest of the date); none when not answered, or the
    /// partner's not visible yet.
    pub my_mood: Option<u32>,
    pub partner_mood: Option<u32>,
    pub my_energy: Option<u32>,
    pub partner_energy: Option<u32>,
}

/// Seven local dates, oldest first, as days and as series of the same length to plot.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RecapInfo {
    /// The first and last dates covered, "YYYY-MM-DD".
    pub first_date: String,
    pub last_date: String,
    pub days: Vec<RecapDayInfo>,
    /// The series: one entry per date of `dates`, in the same order.
    pub dates: Vec<String>,
    pub taps_sent: Vec<u32>,
    pub taps_received: Vec<u32>,
    pub my_mood: Vec<Option<u32>>,
    pub partner_mood: Vec<Option<u32>>,
    pub my_energy: Vec<Option<u32>>,
    pub partner_energy: Vec<Option<u32>>,
    pub connected: Vec<bool>,
    /// Totals over the seven dates.
    pub connected_days: u32,
    pub total_taps_sent: u32,
    pub total_taps_received: u32,
    pub total_checkins: u32,
    /// Moments kept during these dates, newest first.
    pub moments: Vec<MomentInfo>,
    pub made_at: SystemTime,
}

/// When this account's weekly recap comes.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RecapScheduleInfo {
    pub enabled: bool,
    /// 1 = Monday … 7 = Sunday.
    pub weekday: u32,
    /// "HH:MM" on this account's clock.
    pub local_time: String,
    /// When the next recap comes (none when off).
    pub next_at: Option<SystemTime>,
}

impl MomentKind {
    fn from_wire(v: i32) -> MomentKind {
        match pb::MomentKind::try_from(v) {
            Ok(pb::MomentKind::Note) => MomentKind::Note,
            Ok(pb::MomentKind::Answer) => MomentKind::Answer,
            Ok(pb::MomentKind::Appreciation) => MomentKind::Appreciation,
            _ => MomentKind::Other,
        }
    }
}

impl MomentInfo {
    pub(crate) fn from_wire(m: &pb::Moment, my_account: &str) -> MomentInfo {
        MomentInfo {
            moment_id: m.moment_id.clone(),
            kind: MomentKind::from_wire(m.kind),
            kept_by_me: m.kept_by_account_id == my_account,
            written_by_me: m.author_account_id == my_account,
            text: m.text.clone(),
            prompt_text: (!m.prompt_text.is_empty()).then(|| m.prompt_text.clone()),
            source_id: m.source_id.clone(),
            happened_at: system_time(m.happened_at.as_ref()),
            kept_at: system_time(m.kept_at.as_ref()),
        }
    }
}

/// A 1-5 answer from the wire, where 0 means none.
fn scale(v: u32) -> Option<u32> {
    (1..=5).contains(&v).then_some(v)
}

impl RecapDayInfo {
    fn from_wire(d: &pb::RecapDay) -> RecapDayInfo {
        let status = (d.status != 0).then(|| DayStatus::from_wire(d.status));
        RecapDayInfo {
            date: d.date.clone(),
            status,
            connected: status == Some(DayStatus::Connected),
            taps_sent: d.taps_sent,
            taps_received: d.taps_received,
            checkins: d.checkins,
            my_mood: scale(d.my_mood),
            partner_mood: scale(d.partner_mood),
            my_energy: scale(d.my_energy),
            partner_energy: scale(d.partner_energy),
        }
    }
}

impl RecapInfo {
    pub(crate) fn from_wire(r: &pb::Recap, my_account: &str) -> RecapInfo {
        let mut days: Vec<RecapDayInfo> = r.days.iter().map(RecapDayInfo::from_wire).collect();
        days.sort_by(|a, b| a.date.cmp(&b.date));
        let series = |f: fn(&RecapDayInfo) -> Option<u32>| days.iter().map(f).collect();
        RecapInfo {
            first_date: r.first_date.clone(),
            last_date: r.last_date.clone(),
            dates: days.iter().map(|d| d.date.clone()).collect(),
            taps_sent: days.iter().map(|d| d.taps_sent).collect(),
            taps_received: days.iter().map(|d| d.taps_received).collect(),
            my_mood: series(|d| d.my_mood),
            partner_mood: series(|d| d.partner_mood),
            my_energy: series(|d| d.my_energy),
            partner_energy: series(|d| d.partner_energy),
            connected: days.iter().map(|d| d.connected).collect(),
            connected_days: r.connected_days,
            total_taps_sent: r.taps_sent,
            total_taps_received: r.taps_received,
            total_checkins: r.checkins,
            moments: r
                .moments
                .iter()
                .map(|m| MomentInfo::from_wire(m, my_account))
                .collect(),
            made_at: system_time(r.made_at.as_ref()),
            days,
        }
    }
}

impl RecapScheduleInfo {
    pub(crate) fn from_wire(s: &pb::RecapSchedule) -> RecapScheduleInfo {
        RecapScheduleInfo {
            enabled: s.enabled,
            weekday: s.weekday,
            local_time: s.local_time.clone(),
            next_at: s.next_at.as_ref().map(|t| system_time(Some(t))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(date: &str, status: pb::DayStatus, sent: u32, mood: u32) -> pb::RecapDay {
        pb::RecapDay {
            date: date.into(),
            status: status as i32,
            taps_sent: sent,
            taps_received: 1,
            checkins: 1,
            my_mood: mood,
            partner_mood: 0,
            my_energy: 5,
            partner_energy: 2,
        }
    }

    #[test]
    fn the_series_follow_the_days_oldest_first_with_gaps_as_none() {
        let wire = pb::Recap {
            first_date: "2026-07-01".into(),
            last_date: "2026-07-03".into(),
            // Out of order on purpose: the series are sorted by date.
            days: vec![
                day("2026-07-03", pb::DayStatus::Open, 0, 0),
                day("2026-07-01", pb::DayStatus::Connected, 3, 4),
                day("2026-07-02", pb::DayStatus::Missed, 1, 2),
            ],
            connected_days: 1,
            taps_sent: 4,
            taps_received: 3,
            checkins: 3,
            moments: vec![pb::Moment {
                moment_id: "m".into(),
                kind: pb::MomentKind::Note as i32,
                kept_by_account_id: "me".into(),
                author_account_id: "partner".into(),
                text: "thinking of you".into(),
                ..Default::default()
            }],
            made_at: None,
        };
        let r = RecapInfo::from_wire(&wire, "me");
        assert_eq!(r.dates, ["2026-07-01", "2026-07-02", "2026-07-03"]);
        assert_eq!(r.taps_sent, [3, 1, 0]);
        assert_eq!(r.my_mood, [Some(4), Some(2), None]);
        assert_eq!(r.partner_mood, [None, None, None]);
        assert_eq!(r.partner_energy, [Some(2); 3]);
        assert_eq!(r.connected, [true, false, false]);
        assert_eq!(r.days[2].status, Some(DayStatus::Open));
        assert_eq!((r.connected_days, r.total_taps_sent), (1, 4));
        let m = &r.moments[0];
        assert!(m.kept_by_me && !m.written_by_me);
        assert_eq!((m.kind, m.prompt_text.as_deref()), (MomentKind::Note, None));
    }
}
