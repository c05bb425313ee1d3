//! The glance: what a watch complication or widget shows, read from the local store with no
//! network.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, NaiveDate, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use tapline_proto::v1 as pb;

use crate::model::CheckinInfo;
use crate::model::{
    MeetingInfo, QuestionInfo, QuestionProgress, QuietHours, ReceivedTap, ReconnectInfo,
    ReconnectStepInfo, SpaceInfo, TogetherInfo, TogetherState,
};

/// A no-network snapshot for complications and widgets.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Glance {
    /// Whether this device has an account.
    pub signed_in: bool,
    /// Whether the account is paired.
    pub paired: bool,
    /// The partner's name.
    pub partner_name: Option<String>,
    /// The partner's zone.
    pub partner_time_zone: Option<String>,
    /// The partner's local time now, "HH:MM".
    pub partner_local_time: Option<String>,
    /// The partner's offset from UTC now, in seconds.
    pub partner_utc_offset_seconds: Option<i32>,
    /// Whether the partner is in quiet hours now (so a tap arrives silently).
    pub partner_in_quiet_hours: bool,
    /// The last tap the partner sent.
    pub last_tap: Option<ReceivedTap>,
    /// Taps waiting in the outbox.
    pub unsent_count: u32,
    /// The streak's length (0 in calm mode), as last read; `None` before the first read.
    pub streak_current: Option<u32>,
    /// Freezes held, 0-2.
    pub streak_freezes_held: u32,
    /// Calm mode: show no streak pressure (no counts, no warnings).
    pub streak_calm: bool,
    /// This account's qualifying actions on its own date today, as of the last streak read
    /// (0 once that date is over).
    pub my_actions_today: u32,
    /// The partner's, on their own date today.
    pub partner_actions_today: u32,
    /// The newest open check-in this account has not answered (nor queued an answer to), with
    /// its prompt and quick replies.
    pub pending_checkin: Option<CheckinInfo>,
    /// This account's space ("I need a moment") in force, as last heard: show its end and an
    /// "I'm ready" button.
    pub my_space: Option<SpaceInfo>,
    /// The partner's space in force: show it gently (reason, until, one-tap answers); taps
    /// sent now wait until it ends.
    pub partner_space: Option<SpaceInfo>,
    /// Together time proposed (a partner's proposal shows a confirm button) or in force
    /// (phones down: taps wait until it ends), as last heard; gone once its `until` has
    /// passed.
    pub together: Option<TogetherInfo>,
    /// The next time we meet, as last heard: a countdown and the moment on both clocks. Shown
    /// until the together time it turns into would be over.
    pub meeting: Option<MeetingGlance>,
    /// The current deeper question when it waits for this account's answer (not paused), as
    /// last heard: an invitation, never a streak matter.
    pub question_waiting: Option<QuestionInfo>,
    /// Deeper questions revealed so far, of 36 (0 before the deck was opened).
    pub questions_revealed: u32,
    /// While the reconnect plan runs: this account's latest step that has come and is not
    /// marked done, as last heard.
    pub reconnect_step: Option<ReconnectStepInfo>,
    /// The partner proposed a reconnect plan: this account can accept or decline it.
    pub reconnect_awaits_me: bool,
    /// A gentle suggestion to start a reconnect plan (never a haptic or a notification): no
    /// plan is proposed, running or paused, today is not connected, and the 7 local dates
    /// before today (or more) had no connected day, as of the last streak read.
    pub reconnect_suggested: bool,
    /// A weekly recap that came by itself and has not been read yet.
    pub recap_ready: Option<RecapGlance>,
}

/// A weekly recap that came, in short, for a watch face or a widget.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RecapGlance {
    /// The seven dates covered, "YYYY-MM-DD".
    pub first_date: String,
    pub last_date: String,
    pub connected_days: u32,
    pub taps_sent: u32,
    pub taps_received: u32,
    /// Moments kept during the week.
    pub moments: u32,
}

impl RecapGlance {
    pub(crate) fn from_wire(r: &pb::Recap) -> RecapGlance {
        RecapGlance {
            first_date: r.first_date.clone(),
            last_date: r.last_date.clone(),
            connected_days: r.connected_days,
            taps_sent: r.taps_sent,
            taps_received: r.taps_received,
            moments: r.moments.len() as u32,
        }
    }
}

/// The next time we meet, for a watch face: a countdown and the moment on each partner's
/// own clock.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MeetingGlance {
    /// The meeting's id.
    pub meeting_id: String,
    /// Whether this account set it.
    pub set_by_me: bool,
    /// When it starts.
    pub starts_at: SystemTime,
    /// Seconds from the glance's instant until it starts; 0 once it has come.
    pub seconds_until: u64,
    /// The wait in short words: "in 3 days", "in 1 day 4 h", "in 4 h 20 min", "in 5 min",
    /// "now".
    pub countdown: String,
    /// The IANA zone it was set in.
    pub time_zone: String,
    /// Its date in `time_zone`, as set: "YYYY-MM-DD".
    pub local_date: String,
    /// Its time in `time_zone`, as set: "HH:MM".
    pub local_time: String,
    /// The moment on this account's clock, e.g. "Fri 18 Dec 19:30" (`None` when this
    /// account's zone is unknown here).
    pub my_local: Option<String>,
    /// The moment on the partner's clock, e.g. "Sat 19 Dec 16:30" (`None` when not paired or
    /// their zone is unknown here).
    pub partner_local: Option<String>,
    /// How long the together time it turns into lasts, in minutes.
    pub together_minutes: u32,
}

/// What the glance is computed from: the store's contents.
pub(crate) struct Inputs<'a> {
    pub signed_in: bool,
    /// This account's zone.
    pub my_time_zone: Option<&'a str>,
    pub couple: Option<&'a pb::Couple>,
    /// Newest first.
    pub received: &'a [ReceivedTap],
    pub unsent_count: u32,
    /// The last streak the server sent.
    pub streak: Option<&'a pb::Streak>,
    /// Stored check-ins with this device's queued answers applied.
    pub checkins: &'a [CheckinInfo],
    /// The spaces in force as last heard, already read for this account.
    pub spaces: (Option<SpaceInfo>, Option<SpaceInfo>),
    /// Together time and the next meeting as last heard, already read for this account.
    pub together: TogetherState,
    /// The deeper questions' progress as last heard, read for this account.
    pub questions: Option<QuestionProgress>,
    /// The latest reconnect plan as last heard, read for this account.
    pub reconnect: Option<ReconnectInfo>,
    /// The recap that came by itself and has not been read.
    pub recap_unread: Option<RecapGlance>,
}

/// Dates in a row without a connected day, before today, after which the glance suggests a
/// reconnect plan.
const RECONNECT_AFTER_DATES: i64 = 7;

/// Whether to suggest a reconnect plan at `now`: today (this account's date) is not connected
/// and at least [`RECONNECT_AFTER_DATES`] dates before it were not either. The dates are
/// counted after the last connected one, or from the first tracked date when none was.
fn reconnect_suggested(
    streak: &pb::Streak,
    my_zone: Tz,
    partner_zone: Option<Tz>,
    now: DateTime<Utc>,
) -> bool {
    let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    let reference = match date(&streak.last_connected_date) {
        Some(d) => d,
        None => match date(&streak.first_date).and_then(|d| d.pred_opt()) {
            Some(d) => d,
            None => return false,
        },
    };
    let connected_today = actions_today(streak.me_today.as_ref(), Some(my_zone), now) > 0
        && actions_today(streak.partner_today.as_ref(), partner_zone, now) > 0;
    let today = my_zone.from_utc_datetime(&now.naive_utc()).date_naive();
    let dates_without = (today - reference).num_days() - 1;
    !connected_today && dates_without >= RECONNECT_AFTER_DATES
}

/// A wait in short words: "now" at 0, then whole minutes rounded up ("in 1 min" … "in 59
/// min"), hours and minutes under a day ("in 4 h", "in 4 h 20 min"), a day and hours under
/// two ("in 1 day", "in 1 day 5 h"), whole days beyond ("in 3 days").
pub(crate) fn countdown_words(seconds: u64) -> String {
    if seconds == 0 {
        return "now".to_owned();
    }
    let minutes = seconds.div_ceil(60);
    let (days, hours, mins) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    match (days, hours, mins) {
        (0, 0, m) => format!("in {m} min"),
        (0, h, 0) => format!("in {h} h"),
        (0, h, m) => format!("in {h} h {m} min"),
        (1, 0, _) => "in 1 day".to_owned(),
        (1, h, _) => format!("in 1 day {h} h"),
        (d, _, _) => format!("in {d} days"),
    }
}

/// An instant on the clock of `zone`, short: "Fri 18 Dec 19:30".
pub(crate) fn clock_words(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%a %-d %b %H:%M")
        .to_string()
}

/// The meeting as a watch shows it at `now`, on this account's clock and the partner's;
/// `None` once the together time it turns into would be over.
pub(crate) fn meeting_glance(
    m: &MeetingInfo,
    my_zone: Option<Tz>,
    partner_zone: Option<Tz>,
    now: SystemTime,
) -> Option<MeetingGlance> {
    let over = m.starts_at + Duration::from_secs(u64::from(m.together_minutes) * 60);
    if now >= over {
        return None;
    }
    let seconds_until = m
        .starts_at
        .duration_since(now)
        .map_or(0, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0));
    let at: DateTime<Utc> = m.starts_at.into();
    Some(MeetingGlance {
        meeting_id: m.meeting_id.clone(),
        set_by_me: m.set_by_me,
        starts_at: m.starts_at,
        seconds_until,
        countdown: countdown_words(seconds_until),
        time_zone: m.time_zone.clone(),
        local_date: m.local_date.clone(),
        local_time: m.local_time.clone(),
        my_local: my_zone.map(|z| clock_words(at, z)),
        partner_local: partner_zone.map(|z| clock_words(at, z)),
        together_minutes: m.together_minutes,
    })
}

/// Actions of a snapshot's day, if that day is still `today` in `zone` (or the zone is unknown).
fn actions_today(day: Option<&pb::PersonDay>, zone: Option<Tz>, now: DateTime<Utc>) -> u32 {
    let Some(day) = day else { return 0 };
    match zone {
        Some(z) => {
            let today = z.from_utc_datetime(&now.naive_utc()).format("%Y-%m-%d");
            if day.date == today.to_string() {
                day.actions
            } else {
                0
            }
        }
        None => day.actions,
    }
}

/// Computes the glance at `now` from what the store holds.
pub(crate) fn compute(inputs: Inputs<'_>, now: SystemTime) -> Glance {
    let Inputs {
        signed_in,
        my_time_zone,
        couple,
        received,
        unsent_count,
        streak,
        checkins,
        spaces: (my_space, partner_space),
        together: TogetherState { together, meeting },
        questions,
        reconnect,
        recap_unread,
    } = inputs;
    let in_force = |s: Option<SpaceInfo>| s.filter(|s| s.in_force(now));
    let together = together.filter(|t| t.current_at(now));
    let (my_space, partner_space) = (in_force(my_space), in_force(partner_space));
    let pending_checkin = checkins
        .iter()
        .filter(|c| c.awaits_my_answer(now))
        .max_by_key(|c| c.opened_at)
        .cloned();
    let partner = couple.and_then(|c| c.partner.as_ref());
    let zone: Option<Tz> = partner
        .and_then(|p| p.clock.as_ref())
        .and_then(|c| c.time_zone.parse().ok());
    let now: DateTime<Utc> = now.into();
    let local = zone.map(|z| z.from_utc_datetime(&now.naive_utc()));
    let quiet =
        partner.and_then(|p| QuietHours::from_wire(p.quiet_start.as_ref(), p.quiet_end.as_ref()));
    let my_zone: Option<Tz> = my_time_zone.and_then(|z| z.parse().ok());
    let meeting = meeting.and_then(|m| meeting_glance(&m, my_zone, zone, now.into()));
    Glance {
        signed_in,
        paired: partner.is_some(),
        partner_name: partner.map(|p| p.display_name.clone()),
        partner_time_zone: zone.map(|z| z.name().to_owned()),
        partner_local_time: local.map(|l| l.format("%H:%M").to_string()),
        partner_utc_offset_seconds: local.map(|l| l.offset().fix().local_minus_utc()),
        partner_in_quiet_hours: match (local, quiet) {
            (Some(l), Some(q)) => q.contains(l.hour() * 60 + l.minute()),
            _ => false,
        },
        last_tap: received.iter().find(|t| !t.from_self).cloned(),
        unsent_count,
        streak_current: streak.map(|s| s.current),
        streak_freezes_held: streak.map_or(0, |s| s.freezes_held),
        streak_calm: streak.is_some_and(|s| s.calm),
        my_actions_today: actions_today(streak.and_then(|s| s.me_today.as_ref()), my_zone, now),
        partner_actions_today: actions_today(
            streak.and_then(|s| s.partner_today.as_ref()),
            zone,
            now,
        ),
        pending_checkin,
        my_space,
        partner_space,
        together,
        meeting,
        question_waiting: questions
            .as_ref()
            .filter(|q| q.waits_for_me())
            .and_then(|q| q.current.clone()),
        questions_revealed: questions.as_ref().map_or(0, |q| q.revealed),
        reconnect_step: reconnect.as_ref().and_then(ReconnectInfo::step_waiting),
        reconnect_awaits_me: reconnect
            .as_ref()
            .is_some_and(ReconnectInfo::awaits_my_acceptance),
        reconnect_suggested: partner.is_some()
            && !reconnect.as_ref().is_some_and(|r| r.state.is_open())
            && match (streak, my_zone) {
                (Some(s), Some(z)) => reconnect_suggested(s, z, zone, now),
                _ => false,
            },
        recap_ready: recap_unread,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        AnswerType, CheckinAnswer, CheckinStatus, PromptCategory, PromptInfo, QuickReplyInfo,
    };
    use std::time::{Duration, UNIX_EPOCH};

    fn couple(zone: &str, quiet: Option<((u32, u32), (u32, u32))>) -> pb::Couple {
        pb::Couple {
            couple_id: "c".into(),
            partner: Some(pb::Partner {
                account_id: "p".into(),
                display_name: "Robin".into(),
                clock: Some(pb::PersonClock {
                    time_zone: zone.into(),
                    ..Default::default()
                }),
                quiet_start: quiet.map(|q| pb::LocalTimeOfDay {
                    hour: q.0.0,
                    minute: q.0.1,
                }),
                quiet_end: quiet.map(|q| pb::LocalTimeOfDay {
                    hour: q.1.0,
                    minute: q.1.1,
                }),
            }),
            paired_since: None,
        }
    }

    fn inputs<'a>(couple: Option<&'a pb::Couple>, unsent_count: u32) -> Inputs<'a> {
        Inputs {
            signed_in: true,
            my_time_zone: None,
            couple,
            received: &[],
            unsent_count,
            streak: None,
            checkins: &[],
            spaces: (None, None),
            together: TogetherState::default(),
            questions: None,
            reconnect: None,
            recap_unread: None,
        }
    }

    #[test]
    fn the_partners_clock_moves_with_time_offline() {
        // 2026-07-01 21:30 UTC: 23:30 in Paris (summer time), quiet from 22:00.
        let t = UNIX_EPOCH + Duration::from_secs(1_782_941_400);
        let paris = couple("Europe/Paris", Some(((22, 0), (7, 0))));
        let g = compute(inputs(Some(&paris), 2), t);
        assert_eq!(g.partner_local_time.as_deref(), Some("23:30"));
        assert_eq!(g.partner_utc_offset_seconds, Some(7200));
        assert!(g.partner_in_quiet_hours);
        assert_eq!(g.unsent_count, 2);
        // Nine hours later it is 08:30 there: not quiet.
        let g = compute(inputs(Some(&paris), 0), t + Duration::from_secs(9 * 3600));
        assert_eq!(g.partner_local_time.as_deref(), Some("08:30"));
        assert!(!g.partner_in_quiet_hours);
    }

    #[test]
    fn unpaired_glance_is_empty_but_valid() {
        let g = compute(
            Inputs {
                signed_in: false,
                ..inputs(None, 0)
            },
            SystemTime::now(),
        );
        assert!(!g.signed_in && !g.paired && g.partner_name.is_none() && !g.partner_in_quiet_hours);
        assert_eq!(g.streak_current, None);
        assert_eq!((g.my_actions_today, g.partner_actions_today), (0, 0));
        assert!(g.pending_checkin.is_none());
    }

    fn day(date: &str, actions: u32) -> Option<pb::PersonDay> {
        Some(pb::PersonDay {
            date: date.into(),
            actions,
        })
    }

    #[test]
    fn todays_actions_follow_each_partners_own_date() {
        // 2026-07-01 21:30 UTC: still July 1st in New York (17:30), already July 2nd in Tokyo.
        let t = UNIX_EPOCH + Duration::from_secs(1_782_941_400);
        let tokyo = couple("Asia/Tokyo", None);
        let streak = pb::Streak {
            current: 12,
            freezes_held: 1,
            me_today: day("2026-07-01", 2),
            partner_today: day("2026-07-01", 3),
            ..Default::default()
        };
        let g = compute(
            Inputs {
                my_time_zone: Some("America/New_York"),
                streak: Some(&streak),
                ..inputs(Some(&tokyo), 0)
            },
            t,
        );
        assert_eq!(g.streak_current, Some(12));
        assert_eq!(g.streak_freezes_held, 1);
        assert!(!g.streak_calm);
        assert_eq!(g.my_actions_today, 2, "still July 1st for me");
        assert_eq!(g.partner_actions_today, 0, "July 1st is over in Tokyo");
        // A day later, my snapshot's day is over too.
        let g = compute(
            Inputs {
                my_time_zone: Some("America/New_York"),
                streak: Some(&streak),
                ..inputs(Some(&tokyo), 0)
            },
            t + Duration::from_secs(86_400),
        );
        assert_eq!(g.my_actions_today, 0);
        // Calm mode is passed on; an unknown zone keeps the snapshot's count.
        let calm = pb::Streak {
            calm: true,
            current: 0,
            ..streak
        };
        let g = compute(
            Inputs {
                streak: Some(&calm),
                ..inputs(None, 0)
            },
            t,
        );
        assert!(g.streak_calm);
        assert_eq!(g.streak_current, Some(0));
        assert_eq!(g.my_actions_today, 2);
    }

    fn checkin(id: &str, opened: u64, status: CheckinStatus, mine: Option<u8>) -> CheckinInfo {
        CheckinInfo {
            checkin_id: id.into(),
            prompt: PromptInfo {
                prompt_id: "energy-01".into(),
                category: Some(PromptCategory::Energy),
                text: format!("prompt of {id}"),
                answer_type: Some(AnswerType::Scale {
                    low_label: "Empty".into(),
                    high_label: "Full".into(),
                }),
                quick_replies: vec![QuickReplyInfo {
                    label: "Half full".into(),
                    answer: CheckinAnswer::Scale { value: 3 },
                }],
            },
            status,
            opened_by_account_id: None,
            opened_by_me: false,
            routine_id: Some("r".into()),
            opened_at: UNIX_EPOCH + Duration::from_secs(opened),
            expires_at: UNIX_EPOCH + Duration::from_secs(opened + 86_400),
            my_answer: mine.map(|value| CheckinAnswer::Scale { value }),
            my_answer_pending: false,
            partner_answered: false,
            partner_answer: None,
            i_missed: false,
            partner_missed: false,
        }
    }

    #[test]
    fn the_pending_checkin_is_the_newest_open_one_i_have_not_answered() {
        let now = UNIX_EPOCH + Duration::from_secs(100_000);
        let checkins = [
            checkin("answered", 90_000, CheckinStatus::Open, Some(4)),
            checkin("revealed", 95_000, CheckinStatus::Revealed, Some(2)),
            checkin("older", 50_000, CheckinStatus::Open, None),
            checkin("newer", 80_000, CheckinStatus::Open, None),
            // Opened more than a day ago: expired by now even if no event said so.
            checkin("stale", 10_000, CheckinStatus::Open, None),
        ];
        let g = compute(
            Inputs {
                checkins: &checkins,
                ..inputs(None, 0)
            },
            now,
        );
        let pending = g.pending_checkin.expect("a pending check-in");
        assert_eq!(pending.checkin_id, "newer");
        assert_eq!(pending.prompt.text, "prompt of newer");
        assert_eq!(pending.prompt.quick_replies[0].label, "Half full");
        // Once "newer" has a (queued) answer, "older" is next.
        let mut answered = checkins.clone();
        answered[3].my_answer = Some(CheckinAnswer::Scale { value: 5 });
        answered[3].my_answer_pending = true;
        let g = compute(
            Inputs {
                checkins: &answered,
                ..inputs(None, 0)
            },
            now,
        );
        assert_eq!(g.pending_checkin.unwrap().checkin_id, "older");
    }
    #[test]
    fn the_countdown_is_short_words() {
        let cases = [
            (0, "now"),
            (1, "in 1 min"),
            (60, "in 1 min"),
            (61, "in 2 min"),
            (59 * 60, "in 59 min"),
            (3599, "in 1 h"),
            (4 * 3600 + 20 * 60, "in 4 h 20 min"),
            (23 * 3600 + 59 * 60 + 30, "in 1 day"),
            (86_400, "in 1 day"),
            (86_400 + 5 * 3600, "in 1 day 5 h"),
            (2 * 86_400, "in 2 days"),
            (3 * 86_400 + 23 * 3600, "in 3 days"),
        ];
        for (seconds, words) in cases {
            assert_eq!(countdown_words(seconds), words, "{seconds} s");
        }
    }

    fn meeting(zone: &str, date: &str, time: &str, starts_at: u64) -> MeetingInfo {
        MeetingInfo {
            meeting_id: "m".into(),
            set_by_me: false,
            local_date: date.into(),
            local_time: time.into(),
            time_zone: zone.into(),
            starts_at: UNIX_EPOCH + Duration::from_secs(starts_at),
            together_minutes: 180,
            set_at: UNIX_EPOCH,
        }
    }

    fn with_meeting<'a>(
        my_zone: &'a str,
        couple: &'a pb::Couple,
        meeting: MeetingInfo,
    ) -> Inputs<'a> {
        Inputs {
            my_time_zone: Some(my_zone),
            together: TogetherState {
                together: None,
                meeting: Some(meeting),
            },
            ..inputs(Some(couple), 0)
        }
    }

    #[test]
    fn the_meeting_shows_on_both_clocks_even_on_different_dates() {
        // Friday 18 December 2026, 19:30 in Los Angeles (03:30 UTC on the 19th) is already
        // Saturday afternoon in Auckland.
        let la = couple("America/Los_Angeles", None);
        let m = meeting("America/Los_Angeles", "2026-12-18", "19:30", 1_797_651_000);
        let now = UNIX_EPOCH + Duration::from_secs(1_797_336_000); // 2026-12-15 12:00 UTC
        let g = compute(with_meeting("Pacific/Auckland", &la, m.clone()), now)
            .meeting
            .expect("a meeting");
        assert_eq!(g.partner_local.as_deref(), Some("Fri 18 Dec 19:30"));
        assert_eq!(g.my_local.as_deref(), Some("Sat 19 Dec 16:30"));
        assert_eq!(g.seconds_until, 87 * 3600 + 1800);
        assert_eq!(g.countdown, "in 3 days");
        assert_eq!(
            (g.local_date.as_str(), g.local_time.as_str()),
            ("2026-12-18", "19:30")
        );
        assert_eq!(g.time_zone, "America/Los_Angeles");

        // Hours before, then once it has come, then after the together time it became.
        let before = m.starts_at - Duration::from_secs(4 * 3600 + 20 * 60);
        let g = compute(with_meeting("Pacific/Auckland", &la, m.clone()), before).meeting;
        assert_eq!(g.unwrap().countdown, "in 4 h 20 min");
        let during = m.starts_at + Duration::from_secs(600);
        let g = compute(with_meeting("Pacific/Auckland", &la, m.clone()), during)
            .meeting
            .expect("shown while its together time lasts");
        assert_eq!((g.seconds_until, g.countdown.as_str()), (0, "now"));
        let after = m.starts_at + Duration::from_secs(180 * 60);
        assert!(
            compute(with_meeting("Pacific/Auckland", &la, m.clone()), after)
                .meeting
                .is_none()
        );

        // Not paired, zone unknown: only this account's clock.
        let g = compute(
            Inputs {
                my_time_zone: Some("Pacific/Auckland"),
                together: TogetherState {
                    together: None,
                    meeting: Some(m),
                },
                ..inputs(None, 0)
            },
            now,
        )
        .meeting
        .unwrap();
        assert_eq!((g.my_local.is_some(), g.partner_local), (true, None));
    }

    #[test]
    fn each_clock_is_read_at_the_meeting_not_now_across_a_clock_change() {
        // Set on 20 October 2026, when London is on summer time (UTC+1) and New York on EDT
        // (UTC-4), five hours apart. London falls back on 25 October, New York only on
        // 1 November: at the meeting, 18:00 in London (UTC) is 14:00 in New York, four hours.
        let london = couple("Europe/London", None);
        let m = meeting("Europe/London", "2026-10-28", "18:00", 1_793_210_400);
        let now = UNIX_EPOCH + Duration::from_secs(1_792_497_600); // 2026-10-20 12:00 UTC
        let g = compute(with_meeting("America/New_York", &london, m), now)
            .meeting
            .unwrap();
        assert_eq!(g.partner_local.as_deref(), Some("Wed 28 Oct 18:00"));
        assert_eq!(g.my_local.as_deref(), Some("Wed 28 Oct 14:00"));
        assert_eq!(g.countdown, "in 8 days");
    }

    fn together(confirmed: bool, ended: bool) -> TogetherInfo {
        TogetherInfo {
            together_id: "t".into(),
            started_by_me: false,
            proposed_at: UNIX_EPOCH + Duration::from_secs(1000),
            confirmed_at: confirmed.then(|| UNIX_EPOCH + Duration::from_secs(1100)),
            until: UNIX_EPOCH + Duration::from_secs(if confirmed { 8300 } else { 2800 }),
            minutes: 120,
            in_force: confirmed && !ended,
            awaits_my_confirmation: !confirmed && !ended,
            ended_at: ended.then(|| UNIX_EPOCH + Duration::from_secs(1200)),
            end: None,
            ended_by_me: false,
            held_taps: 0,
            meeting_id: None,
        }
    }

    #[test]
    fn together_time_shows_while_proposed_or_in_force() {
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        let glance = |t: TogetherInfo, now| {
            compute(
                Inputs {
                    together: TogetherState {
                        together: Some(t),
                        meeting: None,
                    },
                    ..inputs(None, 0)
                },
                now,
            )
            .together
        };
        let proposed = glance(together(false, false), at(2000)).expect("proposed");
        assert!(proposed.awaits_my_confirmation);
        assert!(
            glance(together(false, false), at(2800)).is_none(),
            "the proposal lapsed"
        );
        assert!(glance(together(true, false), at(8000)).unwrap().in_force);
        assert!(glance(together(true, false), at(8300)).is_none(), "over");
        assert!(glance(together(true, true), at(1300)).is_none(), "ended");
    }

    fn streak_since(last_connected: &str, first: &str, today: &str, both: bool) -> pb::Streak {
        pb::Streak {
            last_connected_date: last_connected.into(),
            first_date: first.into(),
            me_today: day(today, 1),
            partner_today: day(today, u32::from(both)),
            ..Default::default()
        }
    }

    /// 2026-07-15 10:00 UTC: noon in Paris, the caller's 15 July.
    const JULY_15: u64 = 1_784_109_600;

    fn suggested(streak: &pb::Streak, plan: Option<ReconnectInfo>, now: SystemTime) -> bool {
        let paris = couple("Europe/Paris", None);
        compute(
            Inputs {
                my_time_zone: Some("Europe/Paris"),
                streak: Some(streak),
                reconnect: plan,
                ..inputs(Some(&paris), 0)
            },
            now,
        )
        .reconnect_suggested
    }

    #[test]
    fn reconnect_is_suggested_after_seven_dates_in_a_row_without_a_connected_day() {
        let now = UNIX_EPOCH + Duration::from_secs(JULY_15);
        // Connected on 8 July: 9-14 July are six dates without; on 7 July: seven.
        let six = streak_since("2026-07-08", "2026-01-01", "2026-07-15", false);
        let seven = streak_since("2026-07-07", "2026-01-01", "2026-07-15", false);
        assert!(!suggested(&six, None, now), "six dates");
        assert!(suggested(&seven, None, now), "seven dates");
        // Today connected: no suggestion, however long it was.
        let today = streak_since("2026-06-01", "2026-01-01", "2026-07-15", true);
        assert!(!suggested(&today, None, now));
        // A day later on the caller's clock, the six become seven (the snapshot's today is
        // over, so its actions no longer count).
        assert!(suggested(&six, None, now + Duration::from_secs(86_400)));
        // Never connected: counted from the first tracked date (8 July is the seventh date
        // before 15 July; 9 July the sixth).
        let from_first = |first| streak_since("", first, "2026-07-15", false);
        assert!(suggested(&from_first("2026-07-08"), None, now));
        assert!(!suggested(&from_first("2026-07-09"), None, now));
        // An older server that sends neither date: no suggestion.
        assert!(!suggested(&from_first(""), None, now));
    }

    #[test]
    fn no_suggestion_while_a_plan_is_on_or_unpaired() {
        let now = UNIX_EPOCH + Duration::from_secs(JULY_15);
        let long = streak_since("2026-06-01", "2026-01-01", "2026-07-15", false);
        let plan = |state| ReconnectInfo {
            plan_id: "p".into(),
            state,
            started_by_me: false,
            local_time: "19:00".into(),
            proposed_at: UNIX_EPOCH,
            accepted_at: None,
            ended_at: None,
            ended_by_me: false,
            paused_by_me: false,
            steps: vec![],
            my_steps_come: 0,
            partner_steps_come: 0,
            my_next_step_at: None,
        };
        use crate::model::ReconnectState as S;
        for open in [S::Proposed, S::Running, S::Paused] {
            assert!(!suggested(&long, Some(plan(open)), now), "{open:?}");
        }
        for over in [S::Finished, S::Ended] {
            assert!(suggested(&long, Some(plan(over)), now), "{over:?}");
        }
        let g = compute(
            Inputs {
                my_time_zone: Some("Europe/Paris"),
                streak: Some(&long),
                ..inputs(None, 0)
            },
            now,
        );
        assert!(!g.reconnect_suggested, "not paired");
        // The partner's proposal shows as waiting for this account.
        let paris = couple("Europe/Paris", None);
        let g = compute(
            Inputs {
                reconnect: Some(plan(S::Proposed)),
                ..inputs(Some(&paris), 0)
            },
            now,
        );
        assert!(g.reconnect_awaits_me && g.reconnect_step.is_none());
    }

    #[test]
    fn the_waiting_step_and_an_unread_recap_show() {
        use crate::model::{ReconnectState, ReconnectStepKind};
        let step = |number, came: bool, done| ReconnectStepInfo {
            number,
            kind: ReconnectStepKind::Tap,
            title: format!("Step {number}"),
            prompt: "Send a tap".into(),
            came_at: came.then_some(UNIX_EPOCH),
            came_on: came.then(|| "2026-07-15".into()),
            i_done: done,
            partner_done: false,
        };
        let plan = ReconnectInfo {
            plan_id: "p".into(),
            state: ReconnectState::Running,
            started_by_me: true,
            local_time: "19:00".into(),
            proposed_at: UNIX_EPOCH,
            accepted_at: Some(UNIX_EPOCH),
            ended_at: None,
            ended_by_me: false,
            paused_by_me: false,
            steps: vec![
                step(1, true, true),
                step(2, true, false),
                step(3, false, false),
            ],
            my_steps_come: 2,
            partner_steps_come: 2,
            my_next_step_at: None,
        };
        let recap = pb::Recap {
            first_date: "2026-07-09".into(),
            last_date: "2026-07-15".into(),
            connected_days: 5,
            moments: vec![pb::Moment::default()],
            ..Default::default()
        };
        let g = compute(
            Inputs {
                reconnect: Some(plan),
                recap_unread: Some(RecapGlance::from_wire(&recap)),
                ..inputs(None, 0)
            },
            UNIX_EPOCH + Duration::from_secs(JULY_15),
        );
        assert_eq!(g.reconnect_step.map(|s| s.number), Some(2));
        assert!(!g.reconnect_awaits_me, "this account proposed it");
        let r = g.recap_ready.expect("unread recap");
        assert_eq!(
            (r.last_date.as_str(), r.connected_days, r.moments),
            ("2026-07-15", 5, 1)
        );
    }
}
