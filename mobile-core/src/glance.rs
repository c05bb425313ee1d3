//! The glance: what a watch complication or widget shows, read from the local store with no
//! network.

use std::time::SystemTime;

use chrono::{DateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use tapline_proto::v1 as pb;

use crate::model::CheckinInfo;
use crate::model::{QuietHours, ReceivedTap, SpaceInfo};

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
    } = inputs;
    let in_force = |s: Option<SpaceInfo>| s.filter(|s| s.in_force(now));
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
}
